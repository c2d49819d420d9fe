#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "misc.h"
#include "plugin-codes.h"
#include "shell-limits.h"
#include "shell.h"
#include "spawn.h"
#include "store.h"

/* Host error code meaning "the host process is gone". */
#define HOST_DIED_CODE	0xffffffffu

struct wrm_pending {
	uint32_t reqid;
	wrm_host_reply_fn fn;
	void *arg;
	struct wrm_pending *next;
};

static struct wrm_shell *shells;
static struct wrm_host *hosts;

/*
 * Warm hosts: started ahead of demand for one (owner, configuration,
 * locale) and handed only to a Create with the same key.
 */
struct wrm_warm {
	struct wrm_host *host;
	char *owner;
	char *config;
	char *locale;
	bool ready;			/* PREPARE answered */
	struct wrm_timer *expiry;
	struct wrm_warm *next;
};

static struct wrm_warm *warm_hosts;

struct wrm_shell *
wrm_shell_first(void)
{
	return shells;
}

struct wrm_shell *
wrm_shell_find(const char *id)
{
	struct wrm_shell *sh;

	if (id == NULL)
		return NULL;
	for (sh = shells; sh != NULL; sh = sh->next)
		if (wrm_guid_eq(sh->id, id))
			return sh;
	return NULL;
}

struct wrm_command *
wrm_command_find(struct wrm_shell *sh, const char *id)
{
	struct wrm_command *c;

	if (sh == NULL || id == NULL)
		return NULL;
	for (c = sh->cmds; c != NULL; c = c->next)
		if (wrm_guid_eq(c->id, id))
			return c;
	return NULL;
}

size_t
wrm_shell_count_user(const char *owner, const char *config)
{
	struct wrm_shell *sh;
	size_t n = 0;

	for (sh = shells; sh != NULL; sh = sh->next)
		if (strcmp(sh->owner, owner) == 0 &&
		    (config == NULL || strcasecmp(sh->config, config) == 0))
			n++;
	return n;
}

size_t
wrm_shell_count_users(const char *config, const char *owner_excl)
{
	struct wrm_shell *sh, *o;
	size_t n = 0;
	bool seen;

	for (sh = shells; sh != NULL; sh = sh->next) {
		if (config != NULL && strcasecmp(sh->config, config) != 0)
			continue;
		if (owner_excl != NULL && strcmp(sh->owner, owner_excl) == 0)
			continue;
		seen = false;
		for (o = shells; o != sh; o = o->next)
			if (strcmp(o->owner, sh->owner) == 0 &&
			    (config == NULL || strcasecmp(o->config,
			    config) == 0))
				seen = true;
		if (!seen)
			n++;
	}
	return n;
}

const char *
wrm_shell_state_name(enum wrm_shell_state s)
{
	switch (s) {
	case WRM_SHELL_CREATING:
		return "Creating";
	case WRM_SHELL_CONNECTED:
		return "Connected";
	case WRM_SHELL_DISCONNECTED:
		return "Disconnected";
	case WRM_SHELL_CLOSING:
		return "Closing";
	case WRM_SHELL_BROKEN:
		return "Broken";
	}
	return "?";
}

void
wrm_shell_touch(struct wrm_shell *sh)
{
	sh->last_activity = wrm_now_ms();
}

uint64_t
wrm_shell_clamp_idle(const struct wrm_shell *sh, uint64_t ms)
{
	if (ms < D.conf->service.min_idle_timeout_ms)
		ms = D.conf->service.min_idle_timeout_ms;
	if (sh->max_idle_timeout_ms != 0 && ms > sh->max_idle_timeout_ms)
		ms = sh->max_idle_timeout_ms;
	return ms;
}

/* A client is waiting on it (a parked Receive): not idle. */
static bool
shell_waited_on(const struct wrm_shell *sh)
{
	const struct wrm_command *c;

	if (sh->parked != NULL)
		return true;
	for (c = sh->cmds; c != NULL; c = c->next)
		if (c->parked != NULL)
			return true;
	return false;
}

static struct wrm_timer *sweep_timer;

/*
 * Idle shells: a disconnected one past its IdleTimeOut is deleted; a
 * connected one whose client stopped polling for IdleTimeOut is deleted
 * too when it is a WinRS shell (as Windows deletes idle shells) and is
 * disconnected when it is a PowerShell one (as Windows does: its client
 * can connect again until the IdleTimeOut passes once more).
 */
static void
sweep(void *arg)
{
	struct wrm_shell *sh, *next;
	uint64_t now = wrm_now_ms();

	(void)arg;
	sweep_timer = NULL;
	for (sh = shells; sh != NULL; sh = next) {
		next = sh->next;
		if ((sh->state != WRM_SHELL_CONNECTED &&
		    sh->state != WRM_SHELL_DISCONNECTED) ||
		    shell_waited_on(sh) ||
		    now - sh->last_activity < sh->idle_timeout_ms)
			continue;
		if (sh->state == WRM_SHELL_DISCONNECTED || sh->is_winrs)
			wrm_shell_expire(sh, "idle");
		else
			wrm_shell_disconnected(sh, "idle");
	}
	wrm_timer_add(D.loop, 1000, sweep, NULL, &sweep_timer);
}

void
wrm_shells_start_sweep(void)
{
	if (sweep_timer == NULL)
		wrm_timer_add(D.loop, 1000, sweep, NULL, &sweep_timer);
}

uint32_t
wrm_hreply_error(const struct wrm_hmsg *m, char **message_r)
{
	if (message_r != NULL)
		*message_r = wrm_hmsg_str(m, HT_MESSAGE);
	return (uint32_t)wrm_hmsg_u64(m, HT_ERROR, 0);
}

/* ---- hosts ---- */

uint32_t
wrm_host_next_reqid(struct wrm_host *h)
{
	if (++h->next_reqid == 0)
		h->next_reqid = 1;
	return h->next_reqid;
}

static void host_fail_pending(struct wrm_host *h);

/*
 * fn is always called exactly once: with the host's reply, or with
 * HOST_DIED_CODE when the host is or becomes unreachable (possibly before
 * this returns).
 */
int
wrm_host_request(struct wrm_host *h, struct wrm_buf *b, uint32_t reqid,
    wrm_host_reply_fn fn, void *arg)
{
	struct wrm_pending *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal_f("out of memory");
	p->reqid = reqid;
	p->fn = fn;
	p->arg = arg;
	p->next = h->pending;
	h->pending = p;
	if (h->dead || h->conn == NULL) {
		wrm_buf_reset(b);
		host_fail_pending(h);
		return WRM_ERR_CLOSED;
	}
	if (wrm_hconn_send(h->conn, b) != 0)
		return WRM_ERR_CLOSED;	/* the close callback answered p */
	return 0;
}

void
wrm_host_send_noreply(struct wrm_host *h, struct wrm_buf *b)
{
	if (h->dead || h->conn == NULL) {
		wrm_buf_reset(b);
		return;
	}
	wrm_hconn_send(h->conn, b);
}

void
wrm_host_forget(struct wrm_host *h, void *arg)
{
	struct wrm_pending *p;

	for (p = h->pending; p != NULL; p = p->next)
		if (p->arg == arg)
			p->fn = NULL;
}

static void warm_forget_host(struct wrm_host *h);
static void host_idle(struct wrm_host *h, const char *config);
static void warm_refill(const struct wrm_shell *sh,
    const struct wrm_session_conf *sc);
static void put_conf_options(struct wrm_buf *b,
    const struct wrm_session_conf *sc);

static void
host_free(struct wrm_host *h)
{
	struct wrm_host **pp;

	warm_forget_host(h);
	wrm_timer_cancel(h->idle_timer);
	free(h->owner);
	free(h->config);
	free(h->locale);
	wrm_limits_release(h->pid);
	for (pp = &hosts; *pp != NULL; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	wrm_hconn_free(h->conn);
	free(h->socket_path);
	free(h);
}

/*
 * A dead host is freed once its last shell is, but never while one of its
 * callbacks is running: those may free shells under the caller's feet.
 */
static void
host_release(struct wrm_host *h)
{
	if (--h->hold == 0 && h->n_shells == 0 && h->dead)
		host_free(h);
}

/*
 * Answer every pending request of a dead host with HOST_DIED_CODE.  The
 * host may be freed when this returns (when no shell uses it any more).
 */
static void
host_fail_pending(struct wrm_host *h)
{
	struct wrm_pending *p, *list;
	struct wrm_hmsg m;
	struct wrm_hfield f;
	uint8_t code[8];

	wrm_set_u64_be(code, HOST_DIED_CODE);
	f.tag = HT_ERROR;
	f.len = 8;
	f.p = code;
	h->hold++;
	list = h->pending;
	h->pending = NULL;
	while ((p = list) != NULL) {
		list = p->next;
		m.type = HM_REPLY;
		m.reqid = p->reqid;
		m.f = &f;
		m.n = 1;
		if (p->fn != NULL)
			p->fn(h, &m, p->arg);
		free(p);
	}
	host_release(h);
}

static void
host_died(struct wrm_host *h)
{
	struct wrm_shell *sh, *next;

	if (h->dead)
		return;
	h->dead = true;
	host_fail_pending(h);
	for (sh = shells; sh != NULL; sh = next) {
		next = sh->next;
		if (sh->host == h && sh->state != WRM_SHELL_CLOSING)
			wrm_shell_broken(sh);
	}
}

static void
host_on_msg(struct wrm_hconn *c, const struct wrm_hmsg *m, void *arg)
{
	struct wrm_host *h = arg;
	struct wrm_pending **pp, *p;
	struct wrm_shell *sh;
	struct wrm_command *cmd = NULL;
	char *sid, *cid;

	(void)c;
	if (m->type == HM_REPLY) {
		for (pp = &h->pending; (p = *pp) != NULL; pp = &p->next)
			if (p->reqid == m->reqid)
				break;
		if (p == NULL) {
			debug_f("reply to unknown request %u", m->reqid);
			return;
		}
		*pp = p->next;
		if (p->fn != NULL)
			p->fn(h, m, p->arg);
		free(p);
		return;
	}
	sid = wrm_hmsg_str(m, HT_SHELL_ID);
	cid = wrm_hmsg_str(m, HT_COMMAND_ID);
	sh = wrm_shell_find(sid);
	if (sh != NULL && sh->host == h) {
		if (cid != NULL)
			cmd = wrm_command_find(sh, cid);
		if (m->type == HM_EV_OUTPUT && (cid == NULL || cmd != NULL))
			wrm_receive_output_ready(sh, cmd);
		else if (m->type == HM_EV_SHELL_GONE)
			wrm_shell_broken(sh);
	}
	free(sid);
	free(cid);
}

static void
host_on_close(struct wrm_hconn *c, void *arg)
{
	struct wrm_host *h = arg;

	(void)c;
	if (!D.stopping)
		debug("host %ld closed its control connection", (long)h->pid);
	h->hold++;
	host_died(h);
	h->dead = true;
	host_release(h);
}

/* A fresh environment for the account (system mode). */
static char **
account_env(const struct passwd *pw)
{
	char **env, *names, *n, *save = NULL;
	const char *v;
	size_t k = 0, cap = 16;

	if ((env = calloc(cap, sizeof(*env))) == NULL)
		return NULL;
	if (asprintf(&env[k++], "HOME=%s", pw->pw_dir) < 0 ||
	    asprintf(&env[k++], "USER=%s", pw->pw_name) < 0 ||
	    asprintf(&env[k++], "LOGNAME=%s", pw->pw_name) < 0 ||
	    asprintf(&env[k++], "SHELL=%s", pw->pw_shell && *pw->pw_shell ?
	    pw->pw_shell : "/bin/sh") < 0 ||
	    asprintf(&env[k++], "PATH=%s", pw->pw_uid == 0 ?
	    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" :
	    "/usr/local/bin:/usr/bin:/bin") < 0)
		return env;	/* best effort */
	names = strdup(D.conf->service.host_pass_environment);
	for (n = names ? strtok_r(names, " ,", &save) : NULL; n != NULL;
	    n = strtok_r(NULL, " ,", &save)) {
		if ((v = getenv(n)) == NULL)
			continue;
		if (k + 2 >= cap) {
			char **ne = realloc(env, cap * 2 * sizeof(*ne));

			if (ne == NULL)
				break;
			env = ne;
			cap *= 2;
		}
		if (asprintf(&env[k], "%s=%s", n, v) >= 0)
			k++;
	}
	free(names);
	env[k] = NULL;
	return env;
}

static void
env_free(char **env)
{
	size_t i;

	for (i = 0; env != NULL && env[i] != NULL; i++)
		free(env[i]);
	free(env);
}

/*
 * Start a host process and connect to it.  In system mode it runs as
 * local_user (which must exist); in user mode as the daemon.
 */
/* The configuration's (and [Winrs]') memory and process limits. */
static void
shell_limits(const struct wrm_session_conf *sc, uint64_t *mem,
    uint64_t *procs)
{
	*mem = D.conf->winrs.max_memory_per_shell_mb;
	*procs = D.conf->winrs.max_processes_per_shell;
	if (sc != NULL && sc->max_memory_per_shell_mb < *mem)
		*mem = sc->max_memory_per_shell_mb;
	if (sc != NULL && sc->max_processes_per_shell < *procs)
		*procs = sc->max_processes_per_shell;
}

static void
host_limits(pid_t pid, const struct wrm_session_conf *sc)
{
	uint64_t mem, procs;

	shell_limits(sc, &mem, &procs);
	wrm_limits_apply(pid, mem, procs);
}

static const char *const *
host_wrapper(const struct wrm_session_conf *sc)
{
	uint64_t mem, procs;

	shell_limits(sc, &mem, &procs);
	return wrm_limits_wrapper(mem, procs);
}

static int
host_start(struct wrm_host **h_r, const char *local_user,
    const struct wrm_session_conf *sc)
{
	struct wrm_spawn_as as;
	struct passwd *pw = NULL;
	struct wrm_host *h;
	char **env = NULL;
	int fd, r;

	*h_r = NULL;
	if (!D.user_mode) {
		if (local_user == NULL || (pw = getpwnam(local_user)) == NULL) {
			error("no local account %s for a shell", local_user ?
			    local_user : "(none)");
			return WRM_ERR_NOT_FOUND;
		}
		env = account_env(pw);
		as.user = pw->pw_name;
		as.uid = pw->pw_uid;
		as.gid = pw->pw_gid;
		as.env = env;
		as.pam_service = D.conf->service.pam_service;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		env_free(env);
		return WRM_ERR_ALLOC;
	}
	wrm_spawn_wrapper = host_wrapper(sc);
	/* The daemon's effective level, -d included. */
	r = wrm_spawn_host(D.host_prog,
	    wrm_log_level_name(wrm_log_get_level()), false,
	    pw != NULL ? &as : NULL, &h->pid, &h->socket_path);
	env_free(env);
	if (r != 0) {
		error_fr(r, "cannot start %s", D.host_prog);
		free(h);
		return r;
	}
	/* Before it starts anything: its tree's limits. */
	host_limits(h->pid, sc);
	if ((r = wrm_host_connect(h->socket_path, &fd)) != 0 ||
	    (r = wrm_hconn_new(D.loop, fd, host_on_msg, host_on_close, h,
	    &h->conn)) != 0) {
		error_fr(r, "cannot connect to host %ld", (long)h->pid);
		kill(h->pid, SIGKILL);
		free(h->socket_path);
		free(h);
		return r;
	}
	h->next = hosts;
	hosts = h;
	*h_r = h;
	return 0;
}

static void
command_free(struct wrm_command *c)
{
	free(c->id);
	free(c->command_line);
	free(c);
}

void
wrm_command_remove(struct wrm_command *cmd)
{
	struct wrm_shell *sh = cmd->shell;
	struct wrm_command **pp;

	/* A Receive may wait on a command the host never started. */
	if (cmd->parked != NULL)
		wrm_op_fault_id(cmd->parked, WRM_FAULT_INVALID_COMMAND);
	for (pp = &sh->cmds; *pp != NULL; pp = &(*pp)->next)
		if (*pp == cmd) {
			*pp = cmd->next;
			sh->n_cmds--;
			break;
		}
	if (D.store != NULL)
		wrm_store_command_del(D.store, sh->id, cmd->id);
	command_free(cmd);
}

void
wrm_shell_free(struct wrm_shell *sh)
{
	struct wrm_shell **pp;
	struct wrm_command *c;
	size_t i;

	for (pp = &shells; *pp != NULL; pp = &(*pp)->next)
		if (*pp == sh) {
			*pp = sh->next;
			break;
		}
	wrm_receive_shell_gone(sh);	/* none should be parked by now */
	while ((c = sh->cmds) != NULL) {
		sh->cmds = c->next;
		command_free(c);
	}
	wrm_timer_cancel(sh->idle_timer);
	if (sh->host != NULL) {
		sh->host->n_shells--;
		if (sh->host->n_shells == 0 && sh->host->dead &&
		    sh->host->hold == 0)
			host_free(sh->host);
		else if (sh->host->n_shells == 0) {
			wrm_host_forget(sh->host, sh);
			host_idle(sh->host, sh->config);
		}
	}
	for (i = 0; i < sh->n_env; i++) {
		free(sh->env[i].name);
		free(sh->env[i].value);
	}
	free(sh->env);
	free(sh->id);
	free(sh->name);
	free(sh->owner);
	free(sh->local_user);
	free(sh->client_ip);
	free(sh->config);
	free(sh->resource_uri);
	free(sh->plugin);
	free(sh->buffer_mode);
	free(sh->input_streams);
	free(sh->output_streams);
	free(sh->locale);
	free(sh->data_locale);
	free(sh->session_id);
	free(sh->workdir);
	free(sh);
}

void
wrm_shell_broken(struct wrm_shell *sh)
{
	if (sh->state == WRM_SHELL_BROKEN)
		return;
	if (sh->state != WRM_SHELL_CREATING)
		wrm_audit("SHELL_BROKEN", "shell=%s user=%s config=%s", sh->id,
		    sh->owner, sh->config);
	sh->state = WRM_SHELL_BROKEN;
	wrm_receive_shell_gone(sh);
	if (D.store != NULL)
		wrm_store_shell_del(D.store, sh->id);
}

void
wrm_shell_store(struct wrm_shell *sh)
{
	struct wrm_store_shell row;

	if (D.store == NULL)
		return;
	memset(&row, 0, sizeof(row));
	row.id = sh->id;
	row.name = sh->name;
	row.owner = sh->owner;
	row.client_ip = sh->client_ip;
	row.configuration = sh->config;
	row.resource_uri = sh->resource_uri;
	row.state = (char *)wrm_shell_state_name(sh->state);
	row.created = sh->created;
	/* Wall time of the last activity, for expiry across restarts. */
	row.last_activity = wrm_wall_ms() - (int64_t)(wrm_now_ms() -
	    sh->last_activity);
	row.idle_timeout_ms = sh->idle_timeout_ms;
	row.max_idle_timeout_ms = sh->max_idle_timeout_ms;
	row.buffer_mode = sh->buffer_mode;
	row.host_pid = sh->host ? sh->host->pid : 0;
	row.host_socket = sh->host ? sh->host->socket_path : NULL;
	row.session_id = sh->session_id;
	row.locale = sh->locale;
	row.data_locale = sh->data_locale;
	row.compression = sh->compression;
	row.input_streams = sh->input_streams;
	row.output_streams = sh->output_streams;
	row.uid = sh->uid;
	wrm_store_shell_put(D.store, &row);
}

struct create_ctx {
	struct wrm_op *op;
	struct wrm_shell *sh;
};

void wrm_shell_created(struct wrm_op *op, struct wrm_shell *sh,
    uint32_t error, const char *message);

static void
create_reply(struct wrm_host *h, const struct wrm_hmsg *m, void *arg)
{
	struct create_ctx *cc = arg;
	char *msg = NULL;
	uint32_t err = wrm_hreply_error(m, &msg);

	(void)h;
	if (!wrm_op_host_reply_begin(cc->op)) {
		/* The client went away: keep a created shell (it idles out). */
		if (err == 0)
			cc->sh->state = WRM_SHELL_CONNECTED;
		else
			wrm_shell_free(cc->sh);
		free(msg);
		free(cc);
		return;
	}
	if (err == 0) {
		const struct wrm_session_conf *sc =
		    wrm_conf_session_by_name(D.conf, cc->sh->config);

		cc->sh->state = WRM_SHELL_CONNECTED;
		wrm_shell_store(cc->sh);
		if (sc != NULL && sc->warm_pool_size > 0)
			warm_refill(cc->sh, sc);
		wrm_audit("SHELL_CREATE", "shell=%s user=%s client=%s config=%s "
		    "host_pid=%ld", cc->sh->id, cc->sh->owner,
		    cc->sh->client_ip, cc->sh->config, (long)cc->sh->host->pid);
	}
	wrm_shell_created(cc->op, cc->sh, err == HOST_DIED_CODE ?
	    WRM_ERROR_PLUGIN_FAILED : err, err == HOST_DIED_CODE ?
	    "The shell's host process ended while creating the shell. " : msg);
	free(msg);
	free(cc);
}

int
wrm_put_request_options(struct wrm_buf *b, const struct wrm_op *op)
{
	size_t i;
	int r = 0;

	for (i = 0; r == 0 && i < op->soap.n_options; i++) {
		r = wrm_hmsg_put_str(b, HT_OPT_NAME, op->soap.options[i].name);
		if (r == 0)
			r = wrm_hmsg_put_str(b, HT_OPT_VALUE,
			    op->soap.options[i].value ?
			    op->soap.options[i].value : "");
		if (r == 0)
			r = wrm_hmsg_put_u64(b, HT_OPT_MC,
			    op->soap.options[i].must_comply);
	}
	return r;
}

static void
put_env_and_opts(struct wrm_buf *b, struct wrm_op *op, struct wrm_shell *sh,
    const struct wrm_session_conf *sc)
{
	size_t i;

	for (i = 0; i < sh->n_env; i++) {
		wrm_hmsg_put_str(b, HT_ENV_NAME, sh->env[i].name);
		wrm_hmsg_put_str(b, HT_ENV_VALUE, sh->env[i].value);
	}
	wrm_put_request_options(b, op);
	put_conf_options(b, sc);
}

static void
put_conf_options(struct wrm_buf *b, const struct wrm_session_conf *sc)
{
	size_t i;

	for (i = 0; i < sc->n_options; i++) {
		wrm_hmsg_put_str(b, HT_CONF_NAME, sc->options[i].key);
		wrm_hmsg_put_str(b, HT_CONF_VALUE, sc->options[i].value);
	}
}

/* ---- warm hosts ---- */

static const char *
shell_locale(const struct wrm_shell *sh)
{
	return sh->data_locale != NULL ? sh->data_locale :
	    sh->locale != NULL ? sh->locale : "";
}

static void
warm_free(struct wrm_warm *w)
{
	struct wrm_warm **pp;

	for (pp = &warm_hosts; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	wrm_timer_cancel(w->expiry);
	free(w->owner);
	free(w->config);
	free(w->locale);
	free(w);
}

static void
warm_forget_host(struct wrm_host *h)
{
	struct wrm_warm *w, *n;

	for (w = warm_hosts; w != NULL; w = n) {
		n = w->next;
		if (w->host == h)
			warm_free(w);
	}
}

static void
warm_shutdown_host(struct wrm_host *h)
{
	struct wrm_buf b;
	uint32_t reqid;
	size_t st;

	if (h->dead || h->conn == NULL)
		return;
	wrm_buf_init(&b, 0);
	reqid = wrm_host_next_reqid(h);
	if (wrm_hmsg_begin(&b, HM_SHUTDOWN, reqid, &st) == 0 &&
	    wrm_hmsg_end(&b, st) == 0)
		wrm_host_send_noreply(h, &b);
	wrm_buf_free(&b);
}

static void
warm_expired(void *arg)
{
	struct wrm_warm *w = arg;
	struct wrm_host *h = w->host;

	w->expiry = NULL;
	warm_free(w);
	warm_shutdown_host(h);
}

/* A ready warm host for this shell, removed from the pool; or NULL. */
static struct wrm_host *
warm_take(const struct wrm_shell *sh)
{
	struct wrm_warm *w;
	struct wrm_host *h;

	for (w = warm_hosts; w != NULL; w = w->next) {
		if (!w->ready || w->host->dead ||
		    strcmp(w->owner, sh->owner) != 0 ||
		    strcasecmp(w->config, sh->config) != 0 ||
		    strcmp(w->locale, shell_locale(sh)) != 0)
			continue;
		h = w->host;
		warm_free(w);
		return h;
	}
	return NULL;
}

static size_t
warm_count(const struct wrm_shell *sh)
{
	struct wrm_warm *w;
	size_t n = 0;

	for (w = warm_hosts; w != NULL; w = w->next)
		if (strcmp(w->owner, sh->owner) == 0 &&
		    strcasecmp(w->config, sh->config) == 0 &&
		    strcmp(w->locale, shell_locale(sh)) == 0)
			n++;
	return n;
}

static void
warm_prepared(struct wrm_host *h, const struct wrm_hmsg *m, void *arg)
{
	struct wrm_warm *w;

	(void)arg;
	for (w = warm_hosts; w != NULL; w = w->next)
		if (w->host == h)
			break;
	if (w == NULL)
		return;
	if (wrm_hreply_error(m, NULL) != 0) {
		warm_free(w);
		warm_shutdown_host(h);
		return;
	}
	w->ready = true;
}

/* Keep WarmPoolSize hosts ready for this shell's owner and locale. */
static void
warm_refill(const struct wrm_shell *sh, const struct wrm_session_conf *sc)
{
	struct wrm_warm *w;
	struct wrm_host *h;
	struct wrm_buf b;
	uint32_t reqid;
	size_t st;

	while (!D.stopping && warm_count(sh) < sc->warm_pool_size) {
		if (host_start(&h, sh->local_user, sc) != 0 ||
		    (w = calloc(1, sizeof(*w))) == NULL)
			return;
		w->host = h;
		w->owner = strdup(sh->owner);
		w->config = strdup(sh->config);
		w->locale = strdup(shell_locale(sh));
		w->next = warm_hosts;
		warm_hosts = w;
		wrm_timer_add(D.loop, sc->warm_pool_ttl_s * 1000, warm_expired,
		    w, &w->expiry);
		reqid = wrm_host_next_reqid(h);
		wrm_buf_init(&b, 0);
		wrm_hmsg_begin(&b, HM_PREPARE, reqid, &st);
		wrm_hmsg_put_str(&b, HT_CONFIG, sh->config);
		wrm_hmsg_put_str(&b, HT_PLUGIN, sh->plugin);
		wrm_hmsg_put_str(&b, HT_PLUGIN_DIR, D.plugin_dir);
		wrm_hmsg_put_str(&b, HT_RESOURCE_URI, sh->resource_uri);
		wrm_hmsg_put_str(&b, HT_LOCALE, w->locale);
		wrm_hmsg_put_u64(&b, HT_BUFFER_LIMIT,
		    sc->output_buffer_kb * 1024);
		put_conf_options(&b, sc);
		if (wrm_hmsg_end(&b, st) == 0)
			wrm_host_request(h, &b, reqid, warm_prepared, NULL);
		wrm_buf_free(&b);
	}
}

/* ---- shared hosts (UseSharedProcess) ---- */

/* A live shared host of this shell's owner, configuration and locale. */
static struct wrm_host *
shared_take(const struct wrm_shell *sh)
{
	struct wrm_host *h;

	for (h = hosts; h != NULL; h = h->next) {
		if (!h->shared || h->dead || h->conn == NULL ||
		    strcmp(h->owner, sh->owner) != 0 ||
		    strcasecmp(h->config, sh->config) != 0 ||
		    strcmp(h->locale, shell_locale(sh)) != 0)
			continue;
		wrm_timer_cancel(h->idle_timer);
		h->idle_timer = NULL;
		return h;
	}
	return NULL;
}

/* h, new or warm, becomes the shared host of sh's owner and config. */
static void
shared_adopt(struct wrm_host *h, const struct wrm_shell *sh)
{
	h->owner = wrm_strdup0(sh->owner);
	h->config = wrm_strdup0(sh->config);
	h->locale = wrm_strdup0(shell_locale(sh));
	h->shared = h->owner != NULL && h->config != NULL &&
	    h->locale != NULL;
}

static void
shared_expired(void *arg)
{
	struct wrm_host *h = arg;

	h->idle_timer = NULL;
	if (h->n_shells == 0)
		warm_shutdown_host(h);
}

/*
 * h has no shell left.  A shared host waits WarmPoolTtlSeconds for the
 * next shell of its user (unless its configuration no longer shares);
 * any other is told to end, which it does by itself anyway, except a
 * host that a configuration shared before a restart.
 */
static void
host_idle(struct wrm_host *h, const char *config)
{
	const struct wrm_session_conf *sc;

	if (D.stopping || h->dead || h->hold > 0)
		return;
	sc = wrm_conf_session_by_name(D.conf, config);
	if (h->shared && sc != NULL && sc->use_shared_process &&
	    sc->warm_pool_ttl_s > 0) {
		wrm_timer_cancel(h->idle_timer);
		wrm_timer_add(D.loop, sc->warm_pool_ttl_s * 1000,
		    shared_expired, h, &h->idle_timer);
		return;
	}
	h->shared = false;
	warm_shutdown_host(h);
}

void
wrm_warm_flush(void)
{
	struct wrm_host *h;

	while (warm_hosts != NULL) {
		h = warm_hosts->host;
		warm_free(warm_hosts);
		warm_shutdown_host(h);
	}
}

int
wrm_shell_create(struct wrm_op *op, struct wrm_shell *sh,
    const struct wrm_session_conf *sc, const uint8_t *inbound, size_t len)
{
	struct create_ctx *cc;
	struct wrm_buf b;
	uint32_t reqid;
	size_t st;
	int r;

	if (sc->use_shared_process)
		sh->host = shared_take(sh);
	if (sh->host == NULL && (sh->host = warm_take(sh)) == NULL &&
	    (r = host_start(&sh->host, sh->local_user, sc)) != 0)
		return r;
	if (sc->use_shared_process && !sh->host->shared)
		shared_adopt(sh->host, sh);
	sh->host->n_shells++;
	sh->state = WRM_SHELL_CREATING;
	sh->next = shells;
	shells = sh;
	if ((cc = calloc(1, sizeof(*cc))) == NULL)
		return WRM_ERR_ALLOC;
	cc->op = op;
	cc->sh = sh;
	reqid = wrm_host_next_reqid(sh->host);
	wrm_buf_init(&b, 0);
	r = wrm_hmsg_begin(&b, HM_SHELL_CREATE, reqid, &st);
	wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id);
	wrm_hmsg_put_str(&b, HT_USER, sh->owner);
	wrm_hmsg_put_str(&b, HT_AUTH, op->who->mechanism);
	wrm_hmsg_put_str(&b, HT_CLIENT_IP, sh->client_ip);
	wrm_hmsg_put_str(&b, HT_RESOURCE_URI, sh->resource_uri);
	wrm_hmsg_put_str(&b, HT_CONFIG, sh->config);
	wrm_hmsg_put_str(&b, HT_PLUGIN, sh->plugin);
	wrm_hmsg_put_str(&b, HT_PLUGIN_DIR, D.plugin_dir);
	wrm_hmsg_put_str(&b, HT_LOCALE, sh->locale);
	wrm_hmsg_put_str(&b, HT_DATA_LOCALE, sh->data_locale);
	wrm_hmsg_put_str(&b, HT_NAME, sh->name);
	wrm_hmsg_put_str(&b, HT_WORKDIR, sh->workdir);
	wrm_hmsg_put_str(&b, HT_IN_STREAMS, sh->input_streams);
	wrm_hmsg_put_str(&b, HT_OUT_STREAMS, sh->output_streams);
	wrm_hmsg_put_u64(&b, HT_IDLE_MS, sh->idle_timeout_ms);
	wrm_hmsg_put_u64(&b, HT_BUFFER_LIMIT, sc->output_buffer_kb * 1024);
	if (sh->host->shared)
		wrm_hmsg_put_u64(&b, HT_SHARED, 1);
	if (len > 0)
		wrm_hmsg_put(&b, HT_DATA, inbound, len);
	put_env_and_opts(&b, op, sh, sc);
	if (r == 0)
		r = wrm_hmsg_end(&b, st);
	if (r == 0) {
		wrm_op_host_request_sent(op);
		/* A send failure is answered by the host's close handler. */
		wrm_host_request(sh->host, &b, reqid, create_reply, cc);
	}
	wrm_buf_free(&b);
	if (r != 0)
		free(cc);
	return r;
}

static void
shutdown_reply(struct wrm_host *h, const struct wrm_hmsg *m, void *arg)
{
	(void)h;
	(void)m;
	(void)arg;
}

/* Reap the children among pids; returns how many are still running. */
static size_t
reap(pid_t *pids, size_t n)
{
	size_t i, left = 0;
	pid_t r;

	for (i = 0; i < n; i++) {
		if (pids[i] <= 0)
			continue;
		r = waitpid(pids[i], NULL, WNOHANG);
		if (r == pids[i] || (r < 0 && errno == ECHILD))
			pids[i] = 0;
		else
			left++;
	}
	return left;
}

static bool
host_keeps_disconnected(const struct wrm_host *h)
{
	const struct wrm_shell *sh;

	if (h->dead)
		return false;
	for (sh = shells; sh != NULL; sh = sh->next)
		if (sh->host == h && sh->state == WRM_SHELL_DISCONNECTED)
			return true;
	return false;
}

/*
 * Daemon stop: ask every host to close its shells, give them two seconds
 * to exit, then terminate what is left, so that no host outlives the
 * daemon (one that never read its shutdown message included).
 */
void
wrm_hosts_shutdown(void)
{
	struct wrm_host *h, *next;
	struct wrm_buf b;
	uint32_t reqid;
	size_t st, n = 0, i, tries;
	pid_t *pids = NULL, *np;

	wrm_warm_flush();
	for (h = hosts; h != NULL; h = next) {
		if (host_keeps_disconnected(h)) {
			/* Disconnected sessions outlive the daemon. */
			logit("host %ld keeps its disconnected shells",
			    (long)h->pid);
			next = h->next;
			continue;
		}
		if (h->pid > 0 && (np = realloc(pids, (n + 1) *
		    sizeof(*pids))) != NULL) {
			pids = np;
			pids[n++] = h->pid;
		}
		/*
		 * A host that has gone already fails the send, and its close
		 * would free it under us: hold it until its next is read.
		 */
		h->hold++;
		if (!h->dead) {
			wrm_buf_init(&b, 0);
			reqid = wrm_host_next_reqid(h);
			if (wrm_hmsg_begin(&b, HM_SHUTDOWN, reqid, &st) == 0 &&
			    wrm_hmsg_end(&b, st) == 0 &&
			    wrm_host_request(h, &b, reqid, shutdown_reply,
			    NULL) == 0)
				wrm_hconn_flush(h->conn, 1000);
			wrm_buf_free(&b);
		}
		next = h->next;
		host_release(h);
	}
	for (tries = 0; tries < 40 && reap(pids, n) > 0; tries++)
		usleep(50 * 1000);
	if (reap(pids, n) > 0) {
		for (i = 0; i < n; i++)
			if (pids[i] > 0) {
				logit("host %ld did not exit; terminating it",
				    (long)pids[i]);
				kill(pids[i], SIGTERM);
			}
		for (tries = 0; tries < 20 && reap(pids, n) > 0; tries++)
			usleep(50 * 1000);
		for (i = 0; i < n; i++)
			if (pids[i] > 0)
				kill(pids[i], SIGKILL);
		reap(pids, n);
	}
	free(pids);
}

/* Whether pid is a winrmd-host (not a process that reused the number). */
static bool
is_host_process(pid_t pid)
{
	char path[64], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "winrmd-host") != NULL;
}

/* ---- restart: shells recorded by an earlier run ---- */

struct restore_ctx {
	char *shell_id;
};

/*
 * The host's snapshot (HELLO reply): the shell ids it serves, each
 * followed by its command ids.  A shell the host no longer has is gone.
 */
static void
restore_reply(struct wrm_host *h, const struct wrm_hmsg *m, void *arg)
{
	struct restore_ctx *rc = arg;
	struct wrm_shell *sh = wrm_shell_find(rc->shell_id);
	struct wrm_command *c;
	bool mine = false, found = false;
	char *v;
	size_t i;

	(void)h;
	if (sh == NULL)
		goto out;
	if (wrm_hreply_error(m, NULL) != 0) {
		wrm_shell_broken(sh);
		goto out;
	}
	for (i = 0; i < m->n; i++) {
		if (m->f[i].tag == HT_SHELL_ID) {
			v = wrm_hfield_str(&m->f[i]);
			mine = v != NULL && strcasecmp(v, sh->id) == 0;
			found |= mine;
			free(v);
		} else if (m->f[i].tag == HT_COMMAND_ID && mine) {
			if ((c = calloc(1, sizeof(*c))) == NULL ||
			    (c->id = wrm_hfield_str(&m->f[i])) == NULL) {
				free(c);
				continue;
			}
			c->state = WRM_CMD_RUNNING;
			c->shell = sh;
			c->next = sh->cmds;
			sh->cmds = c;
			sh->n_cmds++;
		}
	}
	if (!found) {
		wrm_audit("SHELL_EXPIRED", "shell=%s user=%s reason=\"its host "
		    "no longer has it\"", sh->id, sh->owner);
		if (D.store != NULL)
			wrm_store_shell_del(D.store, sh->id);
		sh->state = WRM_SHELL_CLOSING;
		wrm_shell_free(sh);
		goto out;
	}
	wrm_audit("SHELL_RESTORE", "shell=%s user=%s commands=%zu host_pid=%ld",
	    sh->id, sh->owner, sh->n_cmds, (long)sh->host->pid);
out:
	free(rc->shell_id);
	free(rc);
}

static struct wrm_host *
host_by_pid(pid_t pid)
{
	struct wrm_host *h;

	for (h = hosts; h != NULL; h = h->next)
		if (h->pid == pid && !h->dead)
			return h;
	return NULL;
}

/* Connect to a host an earlier daemon started. */
static struct wrm_host *
host_attach(pid_t pid, const char *socket_path)
{
	struct wrm_host *h;
	int fd;

	if ((h = host_by_pid(pid)) != NULL)
		return h;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	h->pid = pid;
	if ((h->socket_path = strdup(socket_path)) == NULL ||
	    wrm_host_connect(h->socket_path, &fd) != 0 ||
	    wrm_hconn_new(D.loop, fd, host_on_msg, host_on_close, h,
	    &h->conn) != 0) {
		free(h->socket_path);
		free(h);
		return NULL;
	}
	h->next = hosts;
	hosts = h;
	return h;
}

/* A shell of an earlier run, from its row, attached to its host. */
static int
restore_shell(const struct wrm_store_shell *row)
{
	const struct wrm_session_conf *sc;
	struct restore_ctx *rc;
	struct wrm_shell *sh;
	struct wrm_host *h;
	struct passwd *pw;
	struct wrm_buf b;
	int64_t idle_for = wrm_wall_ms() - row->last_activity;
	uint32_t reqid;
	size_t st;

	if (row->host_pid <= 0 || row->host_socket == NULL ||
	    !is_host_process((pid_t)row->host_pid))
		return WRM_ERR_NOT_FOUND;
	if ((h = host_attach((pid_t)row->host_pid, row->host_socket)) == NULL)
		return WRM_ERR_SYSTEM;
	if ((sh = calloc(1, sizeof(*sh))) == NULL ||
	    (rc = calloc(1, sizeof(*rc))) == NULL) {
		free(sh);
		return WRM_ERR_ALLOC;
	}
	sc = wrm_conf_session_by_name(D.conf, row->configuration);
	sh->id = wrm_strdup0(row->id);
	sh->name = wrm_strdup0(row->name);
	sh->owner = wrm_strdup0(row->owner);
	pw = getpwuid((uid_t)row->uid);
	sh->local_user = wrm_strdup0(pw != NULL ? pw->pw_name : row->owner);
	sh->uid = (uid_t)row->uid;
	sh->client_ip = wrm_strdup0(row->client_ip);
	sh->config = wrm_strdup0(row->configuration);
	sh->resource_uri = wrm_strdup0(row->resource_uri);
	sh->plugin = wrm_strdup0(sc != NULL ? sc->plugin : "");
	sh->is_winrs = sc != NULL && strcasecmp(sc->plugin, "cmd") == 0;
	/* Its client's connection did not survive the restart. */
	sh->state = WRM_SHELL_DISCONNECTED;
	sh->created = row->created;
	sh->last_activity = wrm_now_ms() - (uint64_t)(idle_for > 0 ?
	    idle_for : 0);
	sh->idle_timeout_ms = row->idle_timeout_ms;
	sh->max_idle_timeout_ms = row->max_idle_timeout_ms;
	sh->buffer_mode = wrm_strdup0(row->buffer_mode ? row->buffer_mode :
	    "Block");
	sh->input_streams = wrm_strdup0(row->input_streams);
	sh->output_streams = wrm_strdup0(row->output_streams);
	sh->locale = wrm_strdup0(row->locale);
	sh->data_locale = wrm_strdup0(row->data_locale);
	sh->session_id = wrm_strdup0(row->session_id);
	sh->compression = row->compression;
	sh->host = h;
	h->n_shells++;
	sh->next = shells;
	shells = sh;
	rc->shell_id = strdup(sh->id);
	wrm_shell_store(sh);
	wrm_buf_init(&b, 0);
	reqid = wrm_host_next_reqid(h);
	if (wrm_hmsg_begin(&b, HM_HELLO, reqid, &st) == 0 &&
	    wrm_hmsg_put_u64(&b, HT_VERSION, WRM_HOSTPROTO_VERSION) == 0 &&
	    wrm_hmsg_end(&b, st) == 0)
		wrm_host_request(h, &b, reqid, restore_reply, rc);
	else {
		free(rc->shell_id);
		free(rc);
	}
	wrm_buf_free(&b);
	/* The host keeps buffering as the shell's BufferMode says. */
	wrm_buf_init(&b, 0);
	if (wrm_hmsg_begin(&b, HM_DISCONNECT, 0, &st) == 0 &&
	    wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id) == 0 &&
	    wrm_hmsg_put_str(&b, HT_NAME, sh->buffer_mode) == 0 &&
	    wrm_hmsg_end(&b, st) == 0)
		wrm_host_send_noreply(h, &b);
	wrm_buf_free(&b);
	return 0;
}

/*
 * At start: the shells an earlier run left (disconnected ones survive an
 * ordinary stop, every one a crash) come back, Disconnected, attached to
 * their hosts; those whose host is gone are forgotten.  Those past their
 * IdleTimeOut go at the first sweep.
 */
void
wrm_shells_restore(void)
{
	struct wrm_store_shell *rows;
	size_t n, i;

	if (D.store == NULL || wrm_store_shell_list(D.store, &rows, &n) != 0)
		return;
	for (i = 0; i < n; i++) {
		if (restore_shell(&rows[i]) == 0)
			continue;
		wrm_store_shell_del(D.store, rows[i].id);
		wrm_audit("SHELL_EXPIRED", "shell=%s user=%s reason=\"its host "
		    "is gone\"", rows[i].id, rows[i].owner);
	}
	wrm_store_shell_list_free(rows, n);
}

size_t
wrm_hosts_count(void)
{
	const struct wrm_host *h;
	size_t n = 0;

	for (h = hosts; h != NULL; h = h->next)
		if (!h->dead)
			n++;
	return n;
}

size_t
wrm_warm_count_all(void)
{
	const struct wrm_warm *w;
	size_t n = 0;

	for (w = warm_hosts; w != NULL; w = w->next)
		n++;
	return n;
}

size_t
wrm_parked_count(void)
{
	const struct wrm_shell *sh;
	const struct wrm_command *c;
	size_t n = 0;

	for (sh = shells; sh != NULL; sh = sh->next) {
		n += sh->parked != NULL;
		for (c = sh->cmds; c != NULL; c = c->next)
			n += c->parked != NULL;
	}
	return n;
}
