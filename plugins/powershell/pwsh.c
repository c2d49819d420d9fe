#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "buf.h"
#include "pwsh.h"

#define MAX_LINE	(4u * 1024 * 1024)
#define STDERR_TAIL	8192
#define READ_CHUNK	65536

enum pkt_kind { PKT_DATA, PKT_COMMAND, PKT_CLOSE, PKT_SIGNAL };

struct pkt {
	enum pkt_kind kind;
	char *line;
	size_t len;
	pwsh_done_fn fn;
	void *arg;
	struct pkt *next;
};

struct lane {
	char guid[37];
	struct pkt *head, *tail;	/* waiting to be written */
	struct pkt *inflight;		/* written, awaiting its ack */
	struct pkt *signals;		/* written Signals awaiting acks */
	struct lane *next;
};

struct pwsh {
	const struct wrm_host_api *host;
	const struct pwsh_callbacks *cb;
	void *arg;
	pid_t pid;
	int in_fd, out_fd, err_fd;
	struct wrm_watch *in_w, *out_w, *err_w;
	struct wrm_buf wq;		/* bytes for pwsh's stdin */
	struct wrm_buf line;		/* partial line from stdout */
	char tail[STDERR_TAIL];
	size_t tail_len;
	struct lane *lanes;
	bool eof_wanted;
	bool reaped;
	int status;
	bool exited_reported;
	bool freed_pending;
	unsigned junk_lines;
};

static void write_some(struct pwsh *p);
static void maybe_exited(struct pwsh *p);

static struct lane *
lane_get(struct pwsh *p, const char *guid, bool create)
{
	struct lane *l;

	for (l = p->lanes; l != NULL; l = l->next)
		if (strcasecmp(l->guid, guid) == 0)
			return l;
	if (!create || (l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	snprintf(l->guid, sizeof(l->guid), "%s", guid);
	for (char *c = l->guid; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'F')
			*c = (char)(*c - 'A' + 'a');
	l->next = p->lanes;
	p->lanes = l;
	return l;
}

static void
pkt_done(struct pkt *k, int err)
{
	if (k->fn != NULL)
		k->fn(k->arg, err);
	free(k->line);
	free(k);
}

static void
queue_line(struct pwsh *p, const char *line, size_t len)
{
	if (p->in_fd < 0)
		return;
	if (wrm_buf_put(&p->wq, line, len) != 0)
		p->host->log(LOG_ERR, "powershell: input queue full");
	write_some(p);
}

/* Write the lane's next gated packet if none is awaiting an ack. */
static void
lane_kick(struct pwsh *p, struct lane *l)
{
	struct pkt *k;

	if (l->inflight != NULL || (k = l->head) == NULL)
		return;
	l->head = k->next;
	if (l->head == NULL)
		l->tail = NULL;
	k->next = NULL;
	l->inflight = k;
	queue_line(p, k->line, k->len);
}

static void
submit(struct pwsh *p, const char *guid, enum pkt_kind kind, char *line,
    pwsh_done_fn fn, void *arg)
{
	struct lane *l;
	struct pkt *k, **pp;

	if (line == NULL || p->in_fd < 0 || p->reaped ||
	    (l = lane_get(p, guid, true)) == NULL ||
	    (k = calloc(1, sizeof(*k))) == NULL) {
		free(line);
		if (fn != NULL)
			fn(arg, -EPIPE);
		return;
	}
	k->kind = kind;
	k->line = line;
	k->len = strlen(line);
	k->fn = fn;
	k->arg = arg;
	if (kind == PKT_SIGNAL) {
		for (pp = &l->signals; *pp != NULL; pp = &(*pp)->next)
			;
		*pp = k;
		queue_line(p, k->line, k->len);
		return;
	}
	if (l->tail != NULL)
		l->tail->next = k;
	else
		l->head = k;
	l->tail = k;
	lane_kick(p, l);
}

void
pwsh_data(struct pwsh *p, const char *guid, bool prompt_response,
    const uint8_t *data, size_t len, pwsh_done_fn fn, void *arg)
{
	size_t head, b64 = wrm_b64_encoded_len(len);
	char *line;

	if (len == 0) {
		/* Nothing to say; never write an empty Data. */
		if (fn != NULL)
			fn(arg, 0);
		return;
	}
	head = strlen("<Data Stream='PromptResponse' PSGuid=''>") + 36;
	if ((line = malloc(head + b64 + 16)) == NULL) {
		if (fn != NULL)
			fn(arg, -ENOMEM);
		return;
	}
	head = (size_t)sprintf(line, "<Data Stream='%s' PSGuid='%s'>",
	    prompt_response ? "PromptResponse" : "Default", guid);
	wrm_b64_encode(data, len, line + head);
	strcpy(line + head + b64, "</Data>\n");
	submit(p, guid, PKT_DATA, line, fn, arg);
}

static char *
element(const char *name, const char *guid)
{
	char *s;

	if (asprintf(&s, "<%s PSGuid='%s' />\n", name, guid) < 0)
		return NULL;
	return s;
}

void
pwsh_command(struct pwsh *p, const char *guid, pwsh_done_fn fn, void *arg)
{
	submit(p, guid, PKT_COMMAND, element("Command", guid), fn, arg);
}

void
pwsh_signal(struct pwsh *p, const char *guid, pwsh_done_fn fn, void *arg)
{
	submit(p, guid, PKT_SIGNAL, element("Signal", guid), fn, arg);
}

void
pwsh_close(struct pwsh *p, const char *guid, pwsh_done_fn fn, void *arg)
{
	submit(p, guid, PKT_CLOSE, element("Close", guid), fn, arg);
}

static void
close_fd(struct pwsh *p, int *fd, struct wrm_watch **w)
{
	p->host->unwatch(*w);
	*w = NULL;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void
pwsh_eof(struct pwsh *p)
{
	p->eof_wanted = true;
	if (wrm_buf_len(&p->wq) == 0)
		close_fd(p, &p->in_fd, &p->in_w);
}

static void
write_some(struct pwsh *p)
{
	ssize_t n;

	while (p->in_fd >= 0 && wrm_buf_len(&p->wq) > 0) {
		n = write(p->in_fd, wrm_buf_ptr(&p->wq), wrm_buf_len(&p->wq));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			wrm_buf_reset(&p->wq);
			close_fd(p, &p->in_fd, &p->in_w);
			return;
		}
		wrm_buf_consume(&p->wq, (size_t)n);
	}
	if (p->in_fd < 0)
		return;
	if (wrm_buf_len(&p->wq) == 0 && p->eof_wanted)
		close_fd(p, &p->in_fd, &p->in_w);
	else if (p->in_w != NULL)
		p->host->modify_fd(p->in_w, wrm_buf_len(&p->wq) > 0 ?
		    WRM_EV_WRITE : 0);
}

static void
on_stdin(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	write_some(arg);
}

/* The PSGuid attribute value, lower-cased into out. */
static bool
attr_guid(const char *line, char out[37])
{
	const char *p = strstr(line, "PSGuid=");
	char q;
	size_t i;

	if (p == NULL)
		return false;
	p += 7;
	q = *p++;
	if (q != '\'' && q != '"')
		return false;
	for (i = 0; i < 36 && p[i] != '\0' && p[i] != q; i++)
		out[i] = (char)(p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 'a' :
		    p[i]);
	out[i] = '\0';
	return p[i] == q && i == 36;
}

static void
on_ack(struct pwsh *p, const char *elem, const char *guid)
{
	struct lane *l = lane_get(p, guid, false);
	struct pkt *k;
	enum pkt_kind want;

	if (l == NULL) {
		p->host->log(LOG_DEBUG, "powershell: %s for unknown %s", elem,
		    guid);
		return;
	}
	if (strcmp(elem, "SignalAck") == 0) {
		if ((k = l->signals) != NULL) {
			l->signals = k->next;
			pkt_done(k, 0);
		}
		return;
	}
	want = strcmp(elem, "DataAck") == 0 ? PKT_DATA :
	    strcmp(elem, "CommandAck") == 0 ? PKT_COMMAND : PKT_CLOSE;
	if ((k = l->inflight) == NULL || k->kind != want) {
		p->host->log(LOG_DEBUG, "powershell: unexpected %s for %s",
		    elem, guid);
		return;
	}
	l->inflight = NULL;
	pkt_done(k, 0);
	lane_kick(p, l);
}

/* Offset of the last packet start tag in line, 0 if none or at 0. */
static size_t
packet_start(const char *line, size_t len)
{
	static const char *const tags[] = { "<Data ", "<DataAck ",
	    "<CommandAck ", "<SignalAck ", "<CloseAck ", NULL };
	size_t i, t;

	for (i = len; i-- > 0;) {
		if (line[i] != '<')
			continue;
		for (t = 0; tags[t] != NULL; t++)
			if (len - i >= strlen(tags[t]) &&
			    strncmp(line + i, tags[t], strlen(tags[t])) == 0)
				return i;
	}
	return 0;
}

static void
on_line(struct pwsh *p, char *line, size_t len)
{
	char guid[37], elem[16];
	const char *gt, *end;
	uint8_t *data;
	size_t dl, i, start;

	if (len >= 3 && (uint8_t)line[0] == 0xef && (uint8_t)line[1] == 0xbb &&
	    (uint8_t)line[2] == 0xbf) {
		line += 3;
		len -= 3;
	}
	/*
	 * pwsh writes each packet as one whole line, but something else in
	 * the process (a child writing to the same stdout without a newline)
	 * may have written before it: the packet is what starts at the last
	 * packet tag.
	 */
	if ((start = packet_start(line, len)) > 0) {
		if (p->junk_lines++ < 20)
			p->host->log(LOG_WARNING, "powershell: ignored %zu "
			    "bytes pwsh wrote before a protocol packet", start);
		line += start;
		len -= start;
	}
	for (i = 0; i < sizeof(elem) - 1 && i + 1 < len && line[i + 1] != ' ' &&
	    line[i + 1] != '>' && line[i + 1] != '/'; i++)
		elem[i] = line[i + 1];
	elem[i] = '\0';
	if (len == 0 || line[0] != '<' || !attr_guid(line, guid))
		goto junk;
	if (strcmp(elem, "Data") == 0) {
		if ((gt = strchr(line, '>')) == NULL ||
		    (end = strstr(gt, "</Data>")) == NULL)
			goto junk;
		gt++;
		if ((data = malloc((size_t)(end - gt) / 4 * 3 + 3)) == NULL)
			return;
		if (wrm_b64_decode(gt, (size_t)(end - gt), data, &dl) == 0)
			p->cb->data(p->arg, guid, data, dl);
		else
			p->host->log(LOG_WARNING, "powershell: bad Data line");
		free(data);
		return;
	}
	if (strcmp(elem, "DataAck") == 0 || strcmp(elem, "CommandAck") == 0 ||
	    strcmp(elem, "SignalAck") == 0 || strcmp(elem, "CloseAck") == 0) {
		on_ack(p, elem, guid);
		return;
	}
junk:
	if (p->junk_lines++ < 20)
		p->host->log(LOG_WARNING, "powershell: ignored a line pwsh "
		    "wrote that is not a protocol packet (%zu bytes)", len);
}

static void
on_stdout(int fd, uint32_t events, void *arg)
{
	struct pwsh *p = arg;
	uint8_t *nl, *buf;
	size_t n;
	ssize_t r;

	(void)events;
	if (wrm_buf_reserve(&p->line, READ_CHUNK, &buf) != 0) {
		p->host->log(LOG_ERR, "powershell: line from pwsh too long");
		pwsh_kill(p, SIGKILL);
		close_fd(p, &p->out_fd, &p->out_w);
		return;
	}
	r = read(fd, buf, READ_CHUNK);
	wrm_buf_truncate(&p->line, wrm_buf_len(&p->line) - READ_CHUNK +
	    (r > 0 ? (size_t)r : 0));
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		close_fd(p, &p->out_fd, &p->out_w);
		maybe_exited(p);
		return;
	}
	while ((nl = memchr(wrm_buf_ptr(&p->line), '\n',
	    wrm_buf_len(&p->line))) != NULL) {
		n = (size_t)(nl - wrm_buf_ptr(&p->line));
		*nl = '\0';
		if (n > 0 && nl[-1] == '\r')
			nl[-1] = '\0';
		on_line(p, (char *)p->line.d + p->line.off,
		    strlen((char *)p->line.d + p->line.off));
		if (p->freed_pending)
			return;
		wrm_buf_consume(&p->line, n + 1);
	}
}

static void
on_stderr(int fd, uint32_t events, void *arg)
{
	struct pwsh *p = arg;
	char buf[STDERR_TAIL / 2];
	ssize_t r;
	size_t n, keep;

	(void)events;
	r = read(fd, buf, sizeof(buf));
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		close_fd(p, &p->err_fd, &p->err_w);
		return;
	}
	/* buf is smaller than the tail, so it always fits after a shift. */
	n = (size_t)r;
	keep = p->tail_len + n > STDERR_TAIL - 1 ? STDERR_TAIL - 1 - n :
	    p->tail_len;
	memmove(p->tail, p->tail + p->tail_len - keep, keep);
	memcpy(p->tail + keep, buf, n);
	p->tail_len = keep + n;
	p->tail[p->tail_len] = '\0';
	p->host->log(LOG_DEBUG, "powershell: pwsh stderr: %.*s", (int)n, buf);
}

static void
fail_all(struct pwsh *p)
{
	struct lane *l;
	struct pkt *k;

	for (l = p->lanes; l != NULL; l = l->next) {
		if ((k = l->inflight) != NULL) {
			l->inflight = NULL;
			pkt_done(k, -EPIPE);
		}
		while ((k = l->head) != NULL) {
			l->head = k->next;
			pkt_done(k, -EPIPE);
		}
		l->tail = NULL;
		while ((k = l->signals) != NULL) {
			l->signals = k->next;
			pkt_done(k, -EPIPE);
		}
	}
}

static void
maybe_exited(struct pwsh *p)
{
	if (!p->reaped || p->out_fd >= 0 || p->exited_reported)
		return;
	p->exited_reported = true;
	close_fd(p, &p->in_fd, &p->in_w);
	fail_all(p);
	p->cb->exited(p->arg, p->status, p->tail);
}

static void
on_exit_status(pid_t pid, int status, void *arg)
{
	struct pwsh *p = arg;

	(void)pid;
	p->reaped = true;
	p->status = status;
	/*
	 * pwsh may be a launcher whose child (dotnet) holds the pipes: what
	 * is left of its process group goes with it, so that stdout ends.
	 */
	kill(-p->pid, SIGKILL);
	if (p->freed_pending) {
		close_fd(p, &p->out_fd, &p->out_w);
		close_fd(p, &p->err_fd, &p->err_w);
		wrm_buf_free(&p->wq);
		wrm_buf_free(&p->line);
		free(p);
		return;
	}
	maybe_exited(p);
}

int
pwsh_start(const struct wrm_host_api *host, char *const argv[],
    char *const envp[], const char *dir, const struct pwsh_callbacks *cb,
    void *arg, struct pwsh **p_r)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, defs;
	int in[2], out[2], err[2], r;
	struct pwsh *p;

	*p_r = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->host = host;
	p->cb = cb;
	p->arg = arg;
	wrm_buf_init(&p->wq, 0);
	wrm_buf_init(&p->line, MAX_LINE);
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
	    pipe2(err, O_CLOEXEC) != 0) {
		free(p);
		return -errno;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	if (dir != NULL)
		posix_spawn_file_actions_addchdir_np(&fa, dir);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&defs);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &defs);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	r = posix_spawn(&p->pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	if (r != 0) {
		close(in[1]);
		close(out[0]);
		close(err[0]);
		free(p);
		return -r;
	}
	p->in_fd = in[1];
	p->out_fd = out[0];
	p->err_fd = err[0];
	fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
	fcntl(p->out_fd, F_SETPIPE_SZ, 1024 * 1024);
	host->watch_fd(p->in_fd, 0, on_stdin, p, &p->in_w);
	host->watch_fd(p->out_fd, WRM_EV_READ, on_stdout, p, &p->out_w);
	host->watch_fd(p->err_fd, WRM_EV_READ, on_stderr, p, &p->err_w);
	host->watch_child(p->pid, on_exit_status, p);
	*p_r = p;
	return 0;
}

void
pwsh_hold(struct pwsh *p, bool hold)
{
	if (p->out_w != NULL)
		p->host->modify_fd(p->out_w, hold ? 0 : WRM_EV_READ);
}

void
pwsh_kill(struct pwsh *p, int sig)
{
	if (!p->reaped && p->pid > 0)
		kill(-p->pid, sig);
}

bool
pwsh_running(const struct pwsh *p)
{
	return !p->reaped;
}

pid_t
pwsh_pid(const struct pwsh *p)
{
	return p->pid;
}

static void
free_chain(struct pkt *k)
{
	struct pkt *n;

	for (; k != NULL; k = n) {
		n = k->next;
		free(k->line);
		free(k);
	}
}

void
pwsh_free(struct pwsh *p)
{
	struct lane *l;

	if (p == NULL)
		return;
	close_fd(p, &p->in_fd, &p->in_w);
	while ((l = p->lanes) != NULL) {
		/* The owner is going away: free packets without callbacks. */
		p->lanes = l->next;
		free_chain(l->inflight);
		free_chain(l->head);
		free_chain(l->signals);
		free(l);
	}
	if (!p->reaped) {
		/* Freed by the exit watcher once reaped. */
		p->freed_pending = true;
		pwsh_kill(p, SIGKILL);
		close_fd(p, &p->out_fd, &p->out_w);
		close_fd(p, &p->err_fd, &p->err_w);
		return;
	}
	close_fd(p, &p->out_fd, &p->out_w);
	close_fd(p, &p->err_fd, &p->err_w);
	wrm_buf_free(&p->wq);
	wrm_buf_free(&p->line);
	free(p);
}
