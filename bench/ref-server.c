/*
 * ref-server: the yardstick the benchmarks measure winrmd against.
 *
 * A deliberately small WinRM endpoint, as docs/performance-notes.md §3.1
 * describes it: libmicrohttpd with a pool of two threads, no
 * authentication, libxml2 to parse every request and to serialise every
 * reply.  It answers Identify and a minimal WinRS shell: Create, Command
 * (/bin/sh -c LINE through posix_spawn with three pipes), Receive
 * (base64 output, Running or Done with the exit code), Signal and Delete.
 * There is no Send: a command's stdin is closed at once.
 *
 * A Receive blocks its MHD thread until output arrives, the command ends
 * or the operation timeout passes.  Output is read straight from the
 * child's pipe, at most what fits in the client's MaxEnvelopeSize (capped
 * by -e), so memory stays flat however much a command writes.  Receive
 * buffers are reused per thread, and base64 goes into the reply without
 * an escaping pass (a "textnoenc" node).
 *
 * The pool threads use poll(), not epoll: with epoll, MHD 0.9.75 stalls a
 * worker that holds exactly 128 busy connections (seen at c=128 as about
 * ten requests a second), and a yardstick must not stall.
 *
 * It trusts its client, keeps no store and is not a product.
 *
 * usage: ref-server [-p PORT] [-P PORTFILE] [-e MAXENV_KB]
 *                   [-c CERT.pem -k KEY.pem]
 */

#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <microhttpd.h>

#define NS_SOAP	"http://www.w3.org/2003/05/soap-envelope"
#define NS_ADDR	"http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define NS_WSMAN "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define NS_XFER	"http://schemas.xmlsoap.org/ws/2004/09/transfer"
#define NS_SHELL "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
#define NS_ID	"http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
#define ANON	NS_ADDR "/role/anonymous"
#define URI_CMD	NS_SHELL "/cmd"
#define STATE	NS_SHELL "/CommandState/"

#define MAX_BODY	(1024 * 1024)
#define ENV_OVERHEAD	2048		/* envelope around the streams */
#define PIPE_SIZE	(1024 * 1024)
#define X(s)		((const xmlChar *)(s))

extern char **environ;

/* One running or finished command.  Lives on the cmds list, which owns it. */
struct cmd {
	struct cmd	*next;
	char		 id[37];
	char		 shell[37];
	pid_t		 pid;		/* 0 once reaped */
	int		 out[2];	/* stdout, stderr read ends; -1 at EOF */
	int		 status;	/* wait status once reaped */
	bool		 busy;		/* a Receive is reading it */
};

struct shell {
	struct shell	*next;
	char		 id[37];
};

/* Body of one HTTP request, collected across upload callbacks. */
struct req {
	char	*data;
	size_t	 len, cap;
	bool	 too_big;
};

/* What the handlers need from a parsed request; strings from libxml2. */
struct msg {
	xmlDoc	*doc;
	xmlNode	*op;			/* first element in s:Body */
	char	*action, *msgid, *shellid;
	size_t	 max_env;
	int	 timeout_ms;
};

/* A reply under construction. */
struct reply {
	xmlDoc	*doc;
	xmlNode	*body;
	xmlNs	*s, *a, *w, *x, *rsp;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct shell *shells;		/* under lock */
static struct cmd *cmds;		/* under lock */
static size_t max_env_cap = 500 * 1024;

static void
guid_new(char out[37])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		memset(b, 0x5a, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
	    "%02X%02X%02X%02X%02X%02X", b[0], b[1], b[2], b[3], b[4], b[5],
	    b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static size_t
base64_encode(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *o = out;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		*o++ = tab[in[i] >> 2];
		*o++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*o++ = tab[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*o++ = tab[in[i + 2] & 63];
	}
	if (i < n) {
		*o++ = tab[in[i] >> 2];
		if (i + 1 < n) {
			*o++ = tab[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			*o++ = tab[(in[i + 1] & 15) << 2];
		} else {
			*o++ = tab[(in[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	return (size_t)(o - out);
}

/* ---- request ---------------------------------------------------------- */

static bool
is(const xmlNode *n, const char *ns, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE &&
	    strcmp((const char *)n->name, name) == 0 && (ns == NULL ||
	    (n->ns != NULL && strcmp((const char *)n->ns->href, ns) == 0));
}

static xmlNode *
child(const xmlNode *n, const char *ns, const char *name)
{
	xmlNode *c;

	for (c = n != NULL ? n->children : NULL; c != NULL; c = c->next)
		if (is(c, ns, name))
			return c;
	return NULL;
}

static char *
text(const xmlNode *n)
{
	return n != NULL ? (char *)xmlNodeGetContent(n) : NULL;
}

static char *
attr(const xmlNode *n, const char *name)
{
	return n != NULL ? (char *)xmlGetProp(n, X(name)) : NULL;
}

/* Milliseconds in an xs:duration of seconds (PT20S, PT60.000S). */
static int
duration_ms(const char *s)
{
	double v = s != NULL && strncmp(s, "PT", 2) == 0 ? strtod(s + 2, NULL) : 0;

	return v <= 0 || v > 60 ? 60000 : (int)(v * 1000);
}

static int
msg_parse(const struct req *rq, struct msg *m)
{
	xmlNode *env, *body, *c, *sel;
	char *v;

	memset(m, 0, sizeof(*m));
	m->max_env = max_env_cap;
	m->timeout_ms = 60000;
	m->doc = xmlReadMemory(rq->data, (int)rq->len, NULL, NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	env = xmlDocGetRootElement(m->doc);
	if (!is(env, NS_SOAP, "Envelope"))
		return -1;
	body = child(env, NS_SOAP, "Body");
	for (c = body != NULL ? body->children : NULL; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE) {
			m->op = c;
			break;
		}
	c = child(env, NS_SOAP, "Header");
	for (c = c != NULL ? c->children : NULL; c != NULL; c = c->next) {
		if (is(c, NS_ADDR, "Action"))
			m->action = text(c);
		else if (is(c, NS_ADDR, "MessageID"))
			m->msgid = text(c);
		else if (is(c, NS_WSMAN, "MaxEnvelopeSize")) {
			v = text(c);
			m->max_env = strtoul(v, NULL, 10);
			if (m->max_env > max_env_cap)
				m->max_env = max_env_cap;
			xmlFree(v);
		} else if (is(c, NS_WSMAN, "OperationTimeout")) {
			v = text(c);
			m->timeout_ms = duration_ms(v);
			xmlFree(v);
		} else if (is(c, NS_WSMAN, "SelectorSet")) {
			sel = child(c, NS_WSMAN, "Selector");
			v = attr(sel, "Name");
			if (v != NULL && strcasecmp(v, "ShellId") == 0)
				m->shellid = text(sel);
			xmlFree(v);
		}
	}
	return 0;
}

static void
msg_free(struct msg *m)
{
	xmlFree(m->action);
	xmlFree(m->msgid);
	xmlFree(m->shellid);
	xmlFreeDoc(m->doc);
}

static bool
action_is(const struct msg *m, const char *tail)
{
	size_t n, t = strlen(tail);

	if (m->action == NULL || (n = strlen(m->action)) < t)
		return false;
	return strcmp(m->action + n - t, tail) == 0;
}

/* ---- reply ------------------------------------------------------------ */

static xmlNode *
el(xmlNode *parent, xmlNs *ns, const char *name, const char *value)
{
	return value != NULL ? xmlNewTextChild(parent, ns, X(name), X(value)) :
	    xmlNewChild(parent, ns, X(name), NULL);
}

static void
prop(xmlNode *n, const char *name, const char *value)
{
	xmlNewProp(n, X(name), X(value));
}

static void
reply_new(struct reply *r, const struct msg *m, const char *action)
{
	xmlNode *env, *hdr;
	char id[42] = "uuid:";

	r->doc = xmlNewDoc(X("1.0"));
	env = xmlNewNode(NULL, X("Envelope"));
	xmlDocSetRootElement(r->doc, env);
	r->s = xmlNewNs(env, X(NS_SOAP), X("s"));
	r->a = xmlNewNs(env, X(NS_ADDR), X("a"));
	r->x = xmlNewNs(env, X(NS_XFER), X("x"));
	r->w = xmlNewNs(env, X(NS_WSMAN), X("w"));
	r->rsp = xmlNewNs(env, X(NS_SHELL), X("rsp"));
	xmlSetNs(env, r->s);
	prop(env, "xml:lang", "en-US");
	hdr = el(env, r->s, "Header", NULL);
	r->body = el(env, r->s, "Body", NULL);
	if (action == NULL)
		return;
	guid_new(id + 5);
	el(hdr, r->a, "Action", action);
	el(hdr, r->a, "MessageID", id);
	el(hdr, r->a, "To", ANON);
	el(hdr, r->a, "RelatesTo", m->msgid != NULL ? m->msgid : "");
}

static enum MHD_Result
reply_send(struct MHD_Connection *conn, struct reply *r, unsigned status)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	xmlChar *out;
	int len;

	xmlDocDumpMemory(r->doc, &out, &len);
	xmlFreeDoc(r->doc);
	if (out == NULL)
		return MHD_NO;
	resp = MHD_create_response_from_buffer_with_free_callback(
	    (size_t)len, out, xmlFree);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "application/soap+xml;charset=UTF-8");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
fault(struct MHD_Connection *conn, const struct msg *m, const char *code,
    const char *subcode, const char *reason)
{
	struct reply r;
	xmlNode *f, *c;
	char sub[96];

	reply_new(&r, m, NS_ADDR "/fault");
	snprintf(sub, sizeof(sub), "w:%s", subcode);
	f = el(r.body, r.s, "Fault", NULL);
	c = el(f, r.s, "Code", NULL);
	el(c, r.s, "Value", code);
	el(el(c, r.s, "Subcode", NULL), r.s, "Value", sub);
	c = el(el(f, r.s, "Reason", NULL), r.s, "Text", reason);
	prop(c, "xml:lang", "en-US");
	return reply_send(conn, &r, MHD_HTTP_INTERNAL_SERVER_ERROR);
}

static enum MHD_Result
bad_selector(struct MHD_Connection *conn, const struct msg *m)
{
	return fault(conn, m, "s:Sender", "InvalidSelectors",
	    "The request contained invalid selectors for the resource.");
}

/* ---- shells and commands (callers hold lock) -------------------------- */

static struct shell *
shell_find(const char *id)
{
	struct shell *s;

	for (s = shells; id != NULL && s != NULL; s = s->next)
		if (strcasecmp(s->id, id) == 0)
			return s;
	return NULL;
}

static struct cmd *
cmd_find(const char *id)
{
	struct cmd *c;

	for (c = cmds; id != NULL && c != NULL; c = c->next)
		if (strcasecmp(c->id, id) == 0)
			return c;
	return NULL;
}

/* Unlink, kill if still running, reap, close and free. */
static void
cmd_destroy(struct cmd *c)
{
	struct cmd **pp;

	for (pp = &cmds; *pp != NULL && *pp != c; pp = &(*pp)->next)
		;
	if (*pp != NULL)
		*pp = c->next;
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (c->out[0] >= 0)
		close(c->out[0]);
	if (c->out[1] >= 0)
		close(c->out[1]);
	free(c);
}

/* Start /bin/sh -c line with three pipes; stdin is closed at once. */
static int
spawn(const char *line, struct cmd *c)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, def;
	int p[6] = { -1, -1, -1, -1, -1, -1 }, i, r = -1;
	char *argv[] = { "sh", "-c", (char *)line, NULL };

	for (i = 0; i < 3; i++)
		if (pipe2(p + 2 * i, O_CLOEXEC) != 0)
			goto out;
	fcntl(p[2], F_SETPIPE_SZ, PIPE_SIZE);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[0], 0);
	posix_spawn_file_actions_adddup2(&fa, p[3], 1);
	posix_spawn_file_actions_adddup2(&fa, p[5], 2);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setflags(&at,
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	r = posix_spawn(&c->pid, "/bin/sh", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r == 0) {
		fcntl(p[2], F_SETFL, O_NONBLOCK);
		fcntl(p[4], F_SETFL, O_NONBLOCK);
		c->out[0] = p[2];
		c->out[1] = p[4];
		p[2] = p[4] = -1;
	}
out:
	for (i = 0; i < 6; i++)
		if (p[i] >= 0)
			close(p[i]);
	return r == 0 ? 0 : -1;
}

/*
 * Fill buf[0..1] (room bytes in all) from the command's pipes: wait up to
 * timeout_ms until something is readable, then take what is there
 * without waiting again.  Returns 0, or -1 on timeout.
 */
static int
collect(struct cmd *c, char *buf[2], size_t room, size_t got[2],
    int timeout_ms)
{
	struct pollfd pf[2];
	struct timespec t0, t1;
	int i, n, waited = 0;
	ssize_t k;

	got[0] = got[1] = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		for (i = 0; i < 2; i++)
			while (c->out[i] >= 0 && got[0] + got[1] < room) {
				k = read(c->out[i], buf[i] + got[i],
				    room - got[0] - got[1]);
				if (k > 0)
					got[i] += (size_t)k;
				else if (k < 0 && errno == EINTR)
					continue;
				else {
					if (k == 0 || errno != EAGAIN) {
						close(c->out[i]);
						c->out[i] = -1;
					}
					break;
				}
			}
		if (got[0] + got[1] > 0 || (c->out[0] < 0 && c->out[1] < 0))
			return 0;
		if (waited >= timeout_ms)
			return -1;
		for (i = 0, n = 0; i < 2; i++)
			if (c->out[i] >= 0) {
				pf[n].fd = c->out[i];
				pf[n++].events = POLLIN;
			}
		poll(pf, (nfds_t)n, timeout_ms - waited);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited = (int)((t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000);
	}
}

/* ---- operations ------------------------------------------------------- */

static enum MHD_Result
op_identify(struct MHD_Connection *conn, const struct msg *m)
{
	struct reply r;
	xmlNode *id;
	xmlNs *ns;

	reply_new(&r, m, NULL);
	id = el(r.body, NULL, "IdentifyResponse", NULL);
	ns = xmlNewNs(id, X(NS_ID), X("wsmid"));
	xmlSetNs(id, ns);
	el(id, ns, "ProtocolVersion", NS_WSMAN);
	el(id, ns, "ProductVendor", "ref-server");
	el(id, ns, "ProductVersion", "OS: 0.0.0 SP: 0.0 Stack: 3.0");
	return reply_send(conn, &r, MHD_HTTP_OK);
}

static enum MHD_Result
op_create(struct MHD_Connection *conn, const struct msg *m)
{
	struct reply r;
	struct shell *s;
	xmlNode *rc, *rp, *sh;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MHD_NO;
	guid_new(s->id);
	pthread_mutex_lock(&lock);
	s->next = shells;
	shells = s;
	pthread_mutex_unlock(&lock);

	reply_new(&r, m, NS_XFER "/CreateResponse");
	rc = el(r.body, r.x, "ResourceCreated", NULL);
	el(rc, r.a, "Address", ANON);
	rp = el(rc, r.a, "ReferenceParameters", NULL);
	el(rp, r.w, "ResourceURI", URI_CMD);
	prop(el(el(rp, r.w, "SelectorSet", NULL), r.w, "Selector", s->id),
	    "Name", "ShellId");
	sh = el(r.body, r.rsp, "Shell", NULL);
	el(sh, r.rsp, "ShellId", s->id);
	el(sh, r.rsp, "ResourceUri", URI_CMD);
	el(sh, r.rsp, "InputStreams", "stdin");
	el(sh, r.rsp, "OutputStreams", "stdout stderr");
	return reply_send(conn, &r, MHD_HTTP_OK);
}

static enum MHD_Result
op_command(struct MHD_Connection *conn, const struct msg *m)
{
	struct reply r;
	struct cmd *c = NULL;
	xmlNode *n;
	char *line = NULL, *v, *t;
	size_t len = 0;
	bool ok;

	/* The command line is Command, then each Arguments, space-separated. */
	for (n = m->op != NULL ? m->op->children : NULL; n; n = n->next) {
		if (!is(n, NS_SHELL, "Command") && !is(n, NS_SHELL, "Arguments"))
			continue;
		v = text(n);
		if ((t = realloc(line, len + strlen(v) + 2)) != NULL) {
			line = t;
			len += (size_t)sprintf(line + len, "%s%s",
			    len > 0 ? " " : "", v);
		}
		xmlFree(v);
	}
	pthread_mutex_lock(&lock);
	ok = shell_find(m->shellid) != NULL;
	pthread_mutex_unlock(&lock);
	if (!ok || line == NULL || (c = calloc(1, sizeof(*c))) == NULL ||
	    spawn(line, c) != 0) {
		free(line);
		free(c);
		return !ok ? bad_selector(conn, m) : fault(conn, m,
		    "s:Receiver", "InternalError", "Cannot start the command.");
	}
	free(line);
	guid_new(c->id);
	snprintf(c->shell, sizeof(c->shell), "%s", m->shellid);
	pthread_mutex_lock(&lock);
	c->next = cmds;
	cmds = c;
	pthread_mutex_unlock(&lock);

	reply_new(&r, m, NS_SHELL "/CommandResponse");
	el(el(r.body, r.rsp, "CommandResponse", NULL), r.rsp, "CommandId",
	    c->id);
	return reply_send(conn, &r, MHD_HTTP_OK);
}

static void
add_stream(struct reply *r, xmlNode *parent, const char *name,
    const char *id, const char *b64, size_t len, bool end)
{
	xmlNode *s = el(parent, r->rsp, "Stream", NULL), *t;

	prop(s, "Name", name);
	prop(s, "CommandId", id);
	if (end)
		prop(s, "End", "true");
	/* Base64 needs no escaping: a "textnoenc" node is written as is. */
	if (len > 0 && (t = xmlNewTextLen(X(b64), (int)len)) != NULL) {
		t->name = xmlStringTextNoenc;
		xmlAddChild(s, t);
	}
}

/* Buffers reused by every Receive on one thread: stdout, stderr, base64. */
struct tbuf {
	char	*p;
	size_t	 size;
};

static pthread_key_t tbuf_key;

static void
tbuf_free(void *arg)
{
	struct tbuf *tb = arg;
	int i;

	for (i = 0; i < 3; i++)
		free(tb[i].p);
	free(tb);
}

static bool
grow(struct tbuf *b, size_t n)
{
	char *p;

	if (b->size >= n)
		return true;
	if ((p = realloc(b->p, n)) == NULL)
		return false;
	b->p = p;
	b->size = n;
	return true;
}

static enum MHD_Result
op_receive(struct MHD_Connection *conn, const struct msg *m)
{
	static const char *names[2] = { "stdout", "stderr" };
	struct reply r;
	struct cmd *c;
	xmlNode *rr, *st;
	struct tbuf *tb = pthread_getspecific(tbuf_key);
	char *id, *buf[2], *b64, code[16], cid[37];
	size_t room, got[2], n;
	int i, rc = -2, wait_ms;
	bool done;

	id = attr(child(m->op, NS_SHELL, "DesiredStream"), "CommandId");
	pthread_mutex_lock(&lock);
	c = cmd_find(id);
	if (c != NULL && (c->busy || m->shellid == NULL ||
	    strcasecmp(c->shell, m->shellid) != 0))
		c = NULL;
	if (c != NULL)
		c->busy = true;
	pthread_mutex_unlock(&lock);
	xmlFree(id);
	if (c == NULL)
		return bad_selector(conn, m);

	/* Raw bytes that fit the envelope once base64-encoded. */
	room = m->max_env > ENV_OVERHEAD + 8192 ?
	    (m->max_env - ENV_OVERHEAD) / 4 * 3 : 4096;
	/* Answer a little before the client's own deadline. */
	wait_ms = m->timeout_ms > 1000 ? m->timeout_ms - 500 : m->timeout_ms;
	if (tb == NULL && (tb = calloc(3, sizeof(*tb))) != NULL &&
	    pthread_setspecific(tbuf_key, tb) != 0) {
		free(tb);
		tb = NULL;
	}
	if (tb != NULL && grow(&tb[0], room) && grow(&tb[1], room) &&
	    grow(&tb[2], room / 3 * 4 + 8)) {
		buf[0] = tb[0].p;
		buf[1] = tb[1].p;
		b64 = tb[2].p;
		rc = collect(c, buf, room, got, wait_ms);
	}
	done = rc == 0 && c->out[0] < 0 && c->out[1] < 0;
	if (done && c->pid > 0) {
		while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
			;
		c->pid = 0;
	}
	/* Copy what the reply needs: once not busy, c may go away. */
	memcpy(cid, c->id, sizeof(cid));
	snprintf(code, sizeof(code), "%d", WIFEXITED(c->status) ?
	    WEXITSTATUS(c->status) : 128 + WTERMSIG(c->status));
	pthread_mutex_lock(&lock);
	c->busy = false;
	pthread_mutex_unlock(&lock);
	if (rc != 0)
		return rc == -1 ? fault(conn, m, "s:Receiver", "TimedOut",
		    "The WS-Management service cannot complete the operation "
		    "within the time specified in OperationTimeout.") : MHD_NO;

	reply_new(&r, m, NS_SHELL "/ReceiveResponse");
	rr = el(r.body, r.rsp, "ReceiveResponse", NULL);
	for (i = 0; i < 2; i++)
		if (got[i] > 0) {
			n = base64_encode((unsigned char *)buf[i], got[i], b64);
			add_stream(&r, rr, names[i], cid, b64, n, false);
		}
	if (done) {
		add_stream(&r, rr, names[0], cid, NULL, 0, true);
		add_stream(&r, rr, names[1], cid, NULL, 0, true);
	}
	st = el(rr, r.rsp, "CommandState", NULL);
	prop(st, "CommandId", cid);
	prop(st, "State", done ? STATE "Done" : STATE "Running");
	if (done)
		el(st, r.rsp, "ExitCode", code);
	return reply_send(conn, &r, MHD_HTTP_OK);
}

static enum MHD_Result
op_signal(struct MHD_Connection *conn, const struct msg *m)
{
	struct reply r;
	struct cmd *c;
	char *id, *code;
	size_t n;

	id = attr(m->op, "CommandId");
	code = text(child(m->op, NS_SHELL, "Code"));
	n = code != NULL ? strlen(code) : 0;
	pthread_mutex_lock(&lock);
	c = cmd_find(id);
	if (c != NULL && !c->busy && n >= 9 &&
	    strcasecmp(code + n - 9, "terminate") == 0)
		cmd_destroy(c);
	else if (c != NULL && c->pid > 0)
		kill(c->pid, SIGINT);
	pthread_mutex_unlock(&lock);
	xmlFree(id);
	xmlFree(code);
	if (c == NULL)
		return bad_selector(conn, m);
	reply_new(&r, m, NS_SHELL "/SignalResponse");
	el(r.body, r.rsp, "SignalResponse", NULL);
	return reply_send(conn, &r, MHD_HTTP_OK);
}

static enum MHD_Result
op_delete(struct MHD_Connection *conn, const struct msg *m)
{
	struct reply r;
	struct shell *s, **pp;
	struct cmd *c, *next;

	pthread_mutex_lock(&lock);
	if ((s = shell_find(m->shellid)) != NULL) {
		for (pp = &shells; *pp != s; pp = &(*pp)->next)
			;
		*pp = s->next;
		for (c = cmds; c != NULL; c = next) {
			next = c->next;
			if (!c->busy && strcasecmp(c->shell, s->id) == 0)
				cmd_destroy(c);
		}
		free(s);
	}
	pthread_mutex_unlock(&lock);
	if (s == NULL)
		return bad_selector(conn, m);
	reply_new(&r, m, NS_XFER "/DeleteResponse");
	return reply_send(conn, &r, MHD_HTTP_OK);
}

/* ---- HTTP ------------------------------------------------------------- */

static enum MHD_Result
answer(struct MHD_Connection *conn, struct req *rq)
{
	struct msg m;
	enum MHD_Result ret;

	if (rq->too_big || msg_parse(rq, &m) != 0) {
		if (!rq->too_big)
			msg_free(&m);
		return fault(conn, &(struct msg){ 0 }, "s:Sender",
		    "EncodingLimit", "Not a SOAP envelope, or too large.");
	}
	if (m.action == NULL && is(m.op, NULL, "Identify"))
		ret = op_identify(conn, &m);
	else if (action_is(&m, "/transfer/Create"))
		ret = op_create(conn, &m);
	else if (action_is(&m, "/shell/Command"))
		ret = op_command(conn, &m);
	else if (action_is(&m, "/shell/Receive"))
		ret = op_receive(conn, &m);
	else if (action_is(&m, "/shell/Signal"))
		ret = op_signal(conn, &m);
	else if (action_is(&m, "/transfer/Delete"))
		ret = op_delete(conn, &m);
	else
		ret = fault(conn, &m, "s:Sender", "ActionNotSupported",
		    "The action is not supported by the service.");
	msg_free(&m);
	return ret;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct req *rq = *con_cls;
	size_t n = *upload_size;
	char *t;

	if (rq == NULL) {
		*con_cls = rq = calloc(1, sizeof(*rq));
		return rq != NULL ? MHD_YES : MHD_NO;
	}
	if (n == 0)
		return answer(conn, rq);
	*upload_size = 0;
	if (rq->len + n > MAX_BODY)
		rq->too_big = true;
	if (rq->too_big)
		return MHD_YES;
	if (rq->len + n > rq->cap) {
		if ((t = realloc(rq->data, (rq->len + n) * 2)) == NULL)
			return MHD_NO;
		rq->data = t;
		rq->cap = (rq->len + n) * 2;
	}
	memcpy(rq->data + rq->len, upload, n);
	rq->len += n;
	return MHD_YES;
}

static void
request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	if (rq != NULL) {
		free(rq->data);
		free(rq);
		*con_cls = NULL;
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: ref-server [-p PORT] [-P PORTFILE] "
	    "[-e MAXENV_KB] [-c CERT -k KEY]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *di;
	struct sockaddr_in sin;
	gnutls_datum_t cert = { NULL, 0 }, key = { NULL, 0 };
	char *portfile = NULL;
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
	    MHD_USE_SUPPRESS_DATE_NO_CLOCK;
	sigset_t ss;
	int ch, sig, port = 0;
	FILE *f;

	while ((ch = getopt(argc, argv, "c:e:k:p:P:")) != -1) {
		switch (ch) {
		case 'c':
			if (gnutls_load_file(optarg, &cert) != 0)
				usage();
			break;
		case 'e':
			max_env_cap = strtoul(optarg, NULL, 10) * 1024;
			break;
		case 'k':
			if (gnutls_load_file(optarg, &key) != 0)
				usage();
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 'P':
			portfile = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (cert.data == NULL) != (key.data == NULL) ||
	    max_env_cap < 8192)
		usage();
	if (cert.data != NULL)
		flags |= MHD_USE_TLS;

	/* SIGTERM and SIGINT reach only the sigwait below. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	xmlInitParser();
	if (pthread_key_create(&tbuf_key, tbuf_free) != 0)
		return 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL,
	    access_handler, NULL,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_THREAD_POOL_SIZE, 2u,
	    MHD_OPTION_CONNECTION_LIMIT, 2000u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 120u,
	    MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
	    cert.data != NULL ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
	    cert.data, MHD_OPTION_HTTPS_MEM_KEY, key.data,
	    MHD_OPTION_HTTPS_PRIORITIES,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
	    MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "ref-server: cannot start on port %d\n", port);
		return 1;
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = di != NULL ? di->port : port;
	if (portfile != NULL && (f = fopen(portfile, "w")) != NULL) {
		fprintf(f, "%d\n", port);
		fclose(f);
	} else
		printf("%d\n", port);
	fflush(stdout);

	while (sigwait(&ss, &sig) != 0)
		;
	MHD_stop_daemon(d);
	while (cmds != NULL)
		cmd_destroy(cmds);
	return 0;
}
