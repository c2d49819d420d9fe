#include "config.h"

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth-cert.h"
#include "auth-gss.h"
#include "auth.h"
#include "err.h"
#include "http-crypt.h"
#include "http.h"
#include "inject.h"
#include "metrics.h"
#include "systemd.h"
#include "log.h"
#include "misc.h"
#include "soap.h"
#include "wsman.h"

#define SERVER_HEADER	"Microsoft-HTTPAPI/2.0 winrmd/" PACKAGE_VERSION
#define CT_SOAP_UTF8	"application/soap+xml;charset=UTF-8"
#define CT_SOAP_UTF16	"application/soap+xml;charset=UTF-16"
#define MHD_MEMORY	(64 * 1024)
#define MAX_CHAIN	8
#define DRAIN_LIMIT	(64ull * 1024 * 1024)

/*
 * What an HTTPS listener presents and trusts.  Read at start and again on
 * SIGHUP; a replaced set stays allocated until the listener stops, since
 * a handshake in progress may still point into it.
 */
struct tls_creds {
	gnutls_pcert_st pcerts[MAX_CHAIN];
	unsigned n_pcerts;
	gnutls_privkey_t key;
	gnutls_x509_trust_list_t client_ca;	/* ClientCAFile, or NULL */
	struct tls_creds *older;
};

struct wrm_listener {
	struct wrm_listener_conf *conf;
	struct MHD_Daemon *mhd;
	struct wrm_io *io;
	struct wrm_timer *timer;
	bool run_posted;
	bool tls;
	bool metrics;		/* the metrics listener: GET /metrics only */
	uint16_t port;
	char *prefix;		/* "/wsman" */
	struct tls_creds *creds;
	char *ca_pem;		/* ClientCAFile at start: enables requests */
	struct wrm_listener *next;
};

/* One TCP connection. */
struct wrm_http_conn {
	struct wrm_listener *l;
	char client_ip[INET6_ADDRSTRLEN];
	struct wrm_auth_conn auth;
	unsigned busy;		/* requests on it not yet completed */
	bool closed;
	bool cbt_done;
	uint8_t cbt[64 + 32];	/* tls-server-end-point channel binding */
	size_t cbt_len;
};

enum req_stage {
	RS_BODY = 0,		/* collecting the body */
	RS_AUTH,		/* waiting for a worker */
	RS_OP,			/* waiting for the operation */
	RS_READY,		/* response ready to queue */
	RS_QUEUED,
};

struct wrm_http_req {
	struct wrm_listener *l;
	struct wrm_http_conn *hc;
	struct MHD_Connection *conn;
	enum req_stage stage;
	struct wrm_buf body;
	bool too_large;
	uint64_t received;	/* body bytes read, kept or not */
	bool suspended;
	bool in_handler;
	char *authorization;
	char *content_type;
	char *location;		/* a redirection's Location, or NULL */
	int inject_kind;	/* inject.h: how the answer goes out */
	uint64_t inject_delay_ms, inject_trickle;
	struct wrm_timer *inject_timer;
	char *url;
	char *method;
	bool anon_identify;
	bool encrypted;		/* body was sealed: seal the answer */
	bool utf16;		/* the envelope is UTF-16 */
	char protocol[64];	/* its protocol= label */
	struct wrm_auth_result auth;
	struct wrm_op *op;
	int status;
	struct wrm_buf resp;
	const char *resp_type;
	char *sealed_type;
	struct wrm_http_req *next_active;	/* active list */
	struct wrm_http_req *prev_active;
};

static struct wrm_listener *listeners;

static void tls_peer(struct wrm_http_req *r, struct wrm_cert_peer *peer);
static struct wrm_http_req *active;
static size_t n_active;

static void listener_run(struct wrm_listener *l);

static void
active_add(struct wrm_http_req *r)
{
	r->next_active = active;
	r->prev_active = NULL;
	if (active != NULL)
		active->prev_active = r;
	active = r;
	n_active++;
}

static void
active_del(struct wrm_http_req *r)
{
	if (r->prev_active != NULL)
		r->prev_active->next_active = r->next_active;
	else if (active == r)
		active = r->next_active;
	if (r->next_active != NULL)
		r->next_active->prev_active = r->prev_active;
	r->next_active = r->prev_active = NULL;
	n_active--;
}

size_t
wrm_http_active_requests(void)
{
	return n_active;
}

static void
run_posted(void *arg)
{
	struct wrm_listener *l = arg;

	l->run_posted = false;
	listener_run(l);
}

static void
schedule_run(struct wrm_listener *l)
{
	if (l->run_posted)
		return;
	l->run_posted = true;
	wrm_loop_post(D.loop, run_posted, l);
}

static void
timer_fired(void *arg)
{
	struct wrm_listener *l = arg;

	l->timer = NULL;
	listener_run(l);
}

/* Let MHD work, then re-arm its timeout. */
static void
listener_run(struct wrm_listener *l)
{
	MHD_UNSIGNED_LONG_LONG to;

	if (l->mhd == NULL)
		return;
	MHD_run(l->mhd);
	wrm_timer_cancel(l->timer);
	l->timer = NULL;
	if (MHD_get_timeout(l->mhd, &to) == MHD_YES) {
		if (to == 0)
			schedule_run(l);
		else
			wrm_timer_add(D.loop, to, timer_fired, l, &l->timer);
	}
}

static void
listener_io(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	listener_run(arg);
}

static void
req_free(struct wrm_http_req *r)
{
	if (r->op != NULL)
		wsman_op_free(r->op);
	wrm_auth_result_clear(&r->auth);
	wrm_buf_free(&r->body);
	wrm_buf_free(&r->resp);
	free(r->authorization);
	free(r->content_type);
	free(r->location);
	wrm_timer_cancel(r->inject_timer);
	free(r->url);
	free(r->method);
	free(r->sealed_type);
	free(r);
}

/*
 * Fault injection on the way out: "reset" sends half of the answer and
 * then closes the connection; "trickle" sends it inject_trickle bytes at
 * a time, inject_delay_ms apart (the connection waits suspended).
 */
struct injected {
	uint8_t *data;
	size_t len;
	int kind;
	size_t piece;
	uint64_t pause_ms;
	bool ready;
	struct MHD_Connection *conn;
	struct wrm_listener *l;
	struct wrm_timer *timer;
};

static void
injected_resume(void *arg)
{
	struct injected *in = arg;

	in->timer = NULL;
	in->ready = true;
	MHD_resume_connection(in->conn);
	schedule_run(in->l);
}

static ssize_t
injected_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct injected *in = cls;
	size_t n;

	if (pos >= in->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (in->kind == WRM_INJECT_RESET) {
		if (pos >= in->len / 2)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		n = in->len / 2 - (size_t)pos;
	} else {
		if (!in->ready) {
			MHD_suspend_connection(in->conn);
			wrm_timer_add(D.loop, in->pause_ms, injected_resume, in,
			    &in->timer);
			return 0;
		}
		in->ready = false;
		n = in->len - (size_t)pos;
		if (n > in->piece)
			n = in->piece;
	}
	if (n > max)
		n = max;
	memcpy(buf, in->data + pos, n);
	return (ssize_t)n;
}

static void
injected_free(void *cls)
{
	struct injected *in = cls;

	wrm_timer_cancel(in->timer);
	free(in->data);
	free(in);
}

static struct MHD_Response *
injected_response(struct wrm_http_req *r, uint8_t *data, size_t len)
{
	struct injected *in;
	struct MHD_Response *resp;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return NULL;
	in->data = data;
	in->len = len;
	in->kind = r->inject_kind;
	in->piece = r->inject_trickle > 0 ? (size_t)r->inject_trickle : 64;
	in->pause_ms = r->inject_delay_ms > 0 ? r->inject_delay_ms : 100;
	in->ready = true;
	in->conn = r->conn;
	in->l = r->l;
	resp = MHD_create_response_from_callback(len, 4096, injected_read, in,
	    injected_free);
	if (resp == NULL)
		free(in);
	return resp;
}

static enum MHD_Result
queue_response(struct wrm_http_req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len, i;
	uint8_t *data;

	data = wrm_buf_steal(&r->resp, &len);
	if (data == NULL)
		return MHD_NO;
	if ((r->inject_kind == WRM_INJECT_RESET ||
	    r->inject_kind == WRM_INJECT_TRICKLE) && len > 0)
		resp = injected_response(r, data, len);
	else
		resp = MHD_create_response_from_buffer_with_free_callback(len,
		    data, free);
	if (resp == NULL) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, SERVER_HEADER);
	if (r->location != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
		    r->location);
	if (len > 0 && r->resp_type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    r->resp_type);
	if (r->status == MHD_HTTP_UNAUTHORIZED)
		for (i = 0; i < r->auth.n_challenges; i++)
			MHD_add_response_header(resp,
			    MHD_HTTP_HEADER_WWW_AUTHENTICATE,
			    r->auth.challenges[i]);
	else if (r->auth.mutual != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    r->auth.mutual);
	r->stage = RS_QUEUED;
	if (!r->l->metrics)
		wrm_metrics_request(r->op != NULL ? r->op->action_name : NULL,
		    (unsigned)r->status);
	ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Set a response without a SOAP body. */
static void
set_plain(struct wrm_http_req *r, int status)
{
	wrm_buf_reset(&r->resp);
	r->status = status;
	r->resp_type = NULL;
	r->stage = RS_READY;
}

/* Seal r->resp with the connection's context (faults included). */
static int
seal_response(struct wrm_http_req *r, bool utf16)
{
	struct wrm_buf sealed;
	int rc;

	wrm_buf_init(&sealed, 0);
	free(r->sealed_type);
	r->sealed_type = NULL;
	rc = wrm_crypt_seal(r->hc->auth.gss, r->protocol, wrm_buf_ptr(&r->resp),
	    wrm_buf_len(&r->resp), utf16, &sealed, &r->sealed_type);
	if (rc == 0) {
		wrm_buf_free(&r->resp);
		r->resp = sealed;
		r->resp_type = r->sealed_type;
	} else
		wrm_buf_free(&sealed);
	return rc;
}

static void
wake(struct wrm_http_req *r)
{
	if (r->in_handler || !r->suspended)
		return;
	r->suspended = false;
	MHD_resume_connection(r->conn);
	schedule_run(r->l);
}

/*
 * Whether the client has closed its side while its request waited.  A
 * response written now would still be accepted by the kernel and count
 * as delivered, so output it carries must be kept for the next Receive.
 */
static bool
peer_closed(struct wrm_http_req *r)
{
	const union MHD_ConnectionInfo *ci;
	struct pollfd p;

	ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return false;
	p.fd = ci->connect_fd;
	p.events = POLLRDHUP;
	p.revents = 0;
	return poll(&p, 1, 0) == 1 &&
	    (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

static void
delayed_wake(void *arg)
{
	struct wrm_http_req *r = arg;

	r->inject_timer = NULL;
	r->stage = RS_READY;
	wake(r);
}

void
wrm_http_op_done(struct wrm_op *op)
{
	struct wrm_http_req *r = op->http;
	int rc;

	if (r == NULL)
		return;
	wrm_buf_reset(&r->resp);
	r->status = op->http_status ? op->http_status : MHD_HTTP_OK;
	if (op->utf16) {
		rc = wrm_utf8_to_utf16le(wrm_buf_ptr(&op->out),
		    wrm_buf_len(&op->out), &r->resp);
		r->resp_type = CT_SOAP_UTF16;
	} else {
		rc = wrm_buf_put(&r->resp, wrm_buf_ptr(&op->out),
		    wrm_buf_len(&op->out));
		r->resp_type = CT_SOAP_UTF8;
	}
	if (rc == 0 && r->encrypted)
		rc = seal_response(r, op->utf16);
	if (rc != 0) {
		error_fr(rc, "cannot build the response");
		set_plain(r, MHD_HTTP_INTERNAL_SERVER_ERROR);
	}
	if (op->delivery != 0 && r->conn != NULL && peer_closed(r)) {
		verbose("client=%s closed its connection before the answer; "
		    "output kept", r->hc->client_ip);
		wsman_op_finished(op, false);
	}
	r->inject_kind = op->inject_kind;
	r->inject_delay_ms = op->inject_delay_ms;
	r->inject_trickle = op->inject_trickle;
	if (op->inject_kind == WRM_INJECT_HTTP)
		set_plain(r, (int)op->inject_http_status);
	if (op->inject_kind == WRM_INJECT_DELAY && op->inject_delay_ms > 0 &&
	    r->inject_timer == NULL) {
		/* Ready only when the delay is over. */
		wrm_timer_add(D.loop, op->inject_delay_ms, delayed_wake, r,
		    &r->inject_timer);
		return;
	}
	r->stage = RS_READY;
	wake(r);
}

static bool
content_is_utf16(const char *ct)
{
	const char *cs;

	if (ct == NULL || (cs = strcasestr(ct, "charset")) == NULL)
		return false;
	cs += 7;
	while (*cs == ' ' || *cs == '=' || *cs == '"')
		cs++;
	return strncasecmp(cs, "utf-16", 6) == 0;
}

static bool
path_matches(const struct wrm_listener *l, const char *url, bool *anon_r)
{
	size_t n = strlen(l->prefix);

	/* As http.sys: paths match whatever their case. */
	*anon_r = false;
	if (strncasecmp(url, l->prefix, n) == 0 &&
	    (url[n] == '\0' || (url[n] == '/' && url[n + 1] == '\0')))
		return true;
	if (strcasecmp(url, "/wsman-anon") == 0 ||
	    strcasecmp(url, "/wsman-anon/") == 0 ||
	    strcasecmp(url, "/wsman-anon/identify") == 0) {
		*anon_r = true;
		return true;
	}
	return false;
}

static const char *
req_header(void *ctx, const char *name)
{
	struct wrm_http_req *r = ctx;

	return r->conn != NULL ? MHD_lookup_connection_value(r->conn,
	    MHD_HEADER_KIND, name) : NULL;
}

/*
 * The URL of the running listener called name, on the host the client
 * named (the request's Host without its port): an HTTP listener can send
 * its clients to the HTTPS one whatever ports they were given.
 */
static char *
listener_url(struct wrm_http_req *r, const char *name)
{
	const struct wrm_listener *l;
	const char *host = req_header(r, MHD_HTTP_HEADER_HOST), *end;
	char *url;
	size_t n;

	for (l = listeners; l != NULL; l = l->next)
		if (!l->metrics && l->conf != NULL &&
		    strcasecmp(l->conf->name, name) == 0)
			break;
	if (l == NULL)
		return NULL;
	if (host == NULL)
		host = "localhost";
	/* "[::1]:5985" keeps its brackets; "name:5985" loses the port. */
	if (host[0] == '[' && (end = strchr(host, ']')) != NULL)
		n = (size_t)(end - host) + 1;
	else
		n = strcspn(host, ":");
	if (asprintf(&url, "%s://%.*s:%u%s", l->tls ? "https" : "http",
	    (int)n, host, l->port, l->prefix) < 0)
		return NULL;
	return url;
}

/*
 * A [Redirect] rule for r (user: NULL before authentication): answered
 * with its status and Location, absolute on this listener when the rule
 * gives a path, the next hop of a chain until the last.
 */
static bool
redirect(struct wrm_http_req *r, const char *user)
{
	const struct wrm_redirect_conf *rd;
	const char *host, *to;
	char next[600];
	uint64_t hop;

	if ((rd = wrm_redirect_match(r->url, r->hc->client_ip, user, &hop)) ==
	    NULL)
		return false;
	if (hop > 1) {
		snprintf(next, sizeof(next), "%s/%llu", rd->path,
		    (unsigned long long)(hop - 1));
		to = next;
	} else
		to = rd->location[0] != '\0' ? rd->location : r->l->prefix;
	free(r->location);
	r->location = NULL;
	if (strncasecmp(to, "listener:", 9) == 0)
		r->location = listener_url(r, to + 9);
	else if (strncasecmp(to, "http://", 7) == 0 ||
	    strncasecmp(to, "https://", 8) == 0)
		r->location = strdup(to);
	else {
		host = req_header(r, MHD_HTTP_HEADER_HOST);
		if (asprintf(&r->location, "%s://%s%s%s",
		    r->l->tls ? "https" : "http", host != NULL ? host :
		    "localhost", to[0] == '/' ? "" : "/", to) < 0)
			r->location = NULL;
	}
	wrm_audit("REDIRECT", "rule=%s client=%s status=%llu location=%s",
	    rd->name, r->hc->client_ip, (unsigned long long)rd->status,
	    r->location ? r->location : "-");
	set_plain(r, (int)rd->status);
	return true;
}

/* Create the operation; pre, when not NULL, is its parsed Identify. */
static void
start_op_parsed(struct wrm_http_req *r, struct wrm_soap_req *pre)
{
	struct wrm_op *op;
	char url[300];

	snprintf(url, sizeof(url), "%s://%s:%u%s", r->l->tls ? "https" : "http",
	    "localhost", (unsigned)r->l->port, r->l->prefix);
	op = wsman_op_new(r, &r->auth.who, r->hc->client_ip, url, r->utf16);
	if (op == NULL) {
		if (pre != NULL)
			wrm_soap_req_free(pre);
		set_plain(r, MHD_HTTP_INTERNAL_SERVER_ERROR);
		return;
	}
	r->op = op;
	r->stage = RS_OP;
	op->inject_mask = wrm_inject_http_candidates(r->url, req_header, r);
	if (pre != NULL)
		wsman_dispatch_identify(op, pre);
	else
		wsman_dispatch(op, wrm_buf_ptr(&r->body), wrm_buf_len(&r->body));
}

static void
start_op(struct wrm_http_req *r)
{
	start_op_parsed(r, NULL);
}

/* Replace a sealed body by its plaintext; false (400) if it cannot be. */
static bool
unseal_body(struct wrm_http_req *r)
{
	struct wrm_buf plain;

	if (!r->hc->auth.established || r->hc->auth.gss == NULL) {
		verbose("client=%s sealed body on a connection without a "
		    "security context", r->hc->client_ip);
		return false;
	}
	wrm_buf_init(&plain, wrm_max_envelope());
	if (wrm_crypt_unseal(r->hc->auth.gss, wrm_buf_ptr(&r->body),
	    wrm_buf_len(&r->body), &plain, &r->utf16) != 0) {
		verbose("client=%s sealed body could not be unsealed",
		    r->hc->client_ip);
		wrm_buf_free(&plain);
		return false;
	}
	wrm_buf_free(&r->body);
	r->body = plain;
	r->encrypted = true;
	return true;
}

static void
after_auth(struct wrm_http_req *r)
{
	struct wrm_log_ctx ctx = { r->hc->client_ip, NULL, NULL, "auth" };
	bool anon;

	if (r->auth.status == WRM_AUTH_CHALLENGE) {
		set_plain(r, MHD_HTTP_UNAUTHORIZED);
		return;
	}
	ctx.user = r->auth.who.user;
	wrm_log_ctx_set(&ctx);
	if (redirect(r, r->auth.who.user)) {
		wrm_log_ctx_clear();
		return;
	}
	if (!path_matches(r->l, r->url, &anon)) {
		/* A redirection path no rule took for this user. */
		set_plain(r, MHD_HTTP_NOT_FOUND);
		wrm_log_ctx_clear();
		return;
	}
	if (wrm_buf_len(&r->body) == 0) {
		/* An authentication-only POST. */
		set_plain(r, MHD_HTTP_OK);
	} else if (wrm_crypt_content_type(r->content_type, r->protocol,
	    sizeof(r->protocol))) {
		if (unseal_body(r))
			start_op(r);
		else
			set_plain(r, MHD_HTTP_BAD_REQUEST);
	} else if (!r->l->tls && !D.conf->service.allow_unencrypted) {
		/* As Windows: no clear-text SOAP on HTTP (AllowUnencrypted). */
		wrm_audit("AUTH_FAIL", "scheme=%s user=%s client=%s "
		    "reason=\"unencrypted request refused (AllowUnencrypted "
		    "is false)\"", r->auth.who.mechanism ?
		    r->auth.who.mechanism : "-", r->auth.who.user,
		    r->hc->client_ip);
		wrm_auth_result_clear(&r->auth);
		wrm_auth_challenges(false, &r->auth);
		set_plain(r, MHD_HTTP_UNAUTHORIZED);
	} else {
		r->utf16 = content_is_utf16(r->content_type);
		start_op(r);
	}
	wrm_log_ctx_clear();
}

static void
auth_done(void *arg, struct wrm_auth_result *res)
{
	struct wrm_http_req *r = arg;

	(void)res;
	after_auth(r);
	if (r->stage == RS_READY)
		wake(r);
}

/* The whole request is in: decide what to do with it. */
static void
process(struct wrm_http_req *r)
{
	struct wrm_auth_input in;
	struct wrm_soap_req pre;
	struct wrm_cert_peer peer;
	bool anon;

	if (strcmp(r->method, "POST") != 0) {
		set_plain(r, MHD_HTTP_METHOD_NOT_ALLOWED);
		return;
	}
	debug("client=%s %s %s (%zu bytes)", r->hc->client_ip, r->method,
	    r->url, wrm_buf_len(&r->body));
	if (redirect(r, NULL))
		return;
	if (!path_matches(r->l, r->url, &anon) &&
	    !wrm_redirect_is_path(r->url)) {
		verbose("client=%s %s: no such path (404)", r->hc->client_ip,
		    r->url);
		set_plain(r, MHD_HTTP_NOT_FOUND);
		return;
	}
	if (r->too_large) {
		verbose("client=%s request larger than MaxEnvelopeSizekb "
		    "(%llu KiB)", r->hc->client_ip, (unsigned long long)
		    D.conf->service.max_envelope_size_kb);
		set_plain(r, MHD_HTTP_CONTENT_TOO_LARGE);
		return;
	}
	if ((anon || r->anon_identify) && wrm_buf_len(&r->body) > 0 &&
	    wsman_parse_identify(wrm_buf_ptr(&r->body), wrm_buf_len(&r->body),
	    content_is_utf16(r->content_type), &pre)) {
		r->utf16 = content_is_utf16(r->content_type);
		r->auth.status = WRM_AUTH_OK;
		r->auth.who.mechanism = NULL;
		start_op_parsed(r, &pre);
		return;
	}
	memset(&in, 0, sizeof(in));
	in.authorization = r->authorization;
	in.tls = r->l->tls;
	in.client_ip = r->hc->client_ip;
	in.conn = &r->hc->auth;
	if (r->l->tls) {
		tls_peer(r, &peer);
		in.peer = &peer;
		if (r->hc->cbt_len > 0) {
			in.cbt = r->hc->cbt;
			in.cbt_len = r->hc->cbt_len;
		}
	}
	r->stage = RS_AUTH;
	wrm_auth_check(&in, &r->auth, auth_done, r);
	if (r->auth.status != WRM_AUTH_PENDING)
		after_auth(r);
}

/* The metrics listener: GET /metrics, the Prometheus text format. */
static enum MHD_Result
serve_metrics(struct wrm_http_req *r)
{
	wrm_buf_reset(&r->resp);
	if (strcmp(r->method, "GET") != 0)
		set_plain(r, MHD_HTTP_METHOD_NOT_ALLOWED);
	else if (strcmp(r->url, "/metrics") != 0)
		set_plain(r, MHD_HTTP_NOT_FOUND);
	else {
		wrm_metrics_render(&r->resp);
		r->status = MHD_HTTP_OK;
		r->resp_type = "text/plain; version=0.0.4; charset=utf-8";
	}
	return queue_response(r);
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_size, void **con_cls)
{
	struct wrm_listener *l = cls;
	struct wrm_http_req *r = *con_cls;
	const union MHD_ConnectionInfo *ci;
	const char *v;
	uint64_t clen = 0;
	bool early;
	enum MHD_Result ret;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->l = l;
		r->conn = conn;
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->hc = ci != NULL ? ci->socket_context : NULL;
		if (r->hc == NULL) {
			free(r);
			return MHD_NO;
		}
		wrm_buf_init(&r->body, wrm_max_envelope());
		wrm_buf_init(&r->resp, 0);
		r->url = strdup(url);
		r->method = strdup(method);
		if ((v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_AUTHORIZATION)) != NULL)
			r->authorization = strdup(v);
		if ((v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_TYPE)) != NULL)
			r->content_type = strdup(v);
		v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    "WSMANIDENTIFY");
		r->anon_identify = v != NULL && strcasecmp(v,
		    "unauthenticated") == 0;
		v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (v != NULL && wrm_parse_u64(v, &clen) == 0 &&
		    clen > wrm_max_envelope())
			r->too_large = true;
		/*
		 * A body too large is read and dropped, so that the client,
		 * still writing, gets the 413 rather than a reset; past
		 * DRAIN_LIMIT the connection is refused at once.
		 */
		early = r->too_large && clen > DRAIN_LIMIT;
		active_add(r);
		*con_cls = r;
		if (r->url == NULL || r->method == NULL)
			return MHD_NO;
		if (l->metrics)
			return serve_metrics(r);
		if (early) {
			set_plain(r, MHD_HTTP_CONTENT_TOO_LARGE);
			return queue_response(r);
		}
		if (r->too_large)
			wrm_buf_free(&r->body);
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!r->too_large && wrm_buf_put(&r->body, upload_data,
		    *upload_size) != 0) {
			r->too_large = true;
			wrm_buf_free(&r->body);
		}
		r->received += *upload_size;
		*upload_size = 0;
		/* An endless oversized body: give up on the connection. */
		return r->too_large && r->received > DRAIN_LIMIT ? MHD_NO :
		    MHD_YES;
	}
	if (r->stage == RS_QUEUED)
		return MHD_YES;
	r->in_handler = true;
	if (r->stage == RS_BODY)
		process(r);
	r->in_handler = false;
	if (r->stage == RS_READY)
		return queue_response(r);
	/* Waiting for a worker, a host or a parked Receive. */
	r->suspended = true;
	MHD_suspend_connection(conn);
	ret = MHD_YES;
	return ret;
}

static void
request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct wrm_http_req *r = *con_cls;

	(void)cls;
	(void)conn;
	if (r == NULL)
		return;
	if (r->op != NULL)
		wsman_op_finished(r->op,
		    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	active_del(r);
	if (r->stage == RS_AUTH) {
		/* A worker still holds r: let it finish into nothing. */
		r->conn = NULL;
	}
	req_free(r);
	*con_cls = NULL;
}

static void
connection_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
    enum MHD_ConnectionNotificationCode toe)
{
	struct wrm_listener *l = cls;
	struct wrm_http_conn *hc;
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	const struct sockaddr_in6 *s6;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		if ((hc = *socket_ctx) != NULL) {
			wrm_auth_conn_clear(&hc->auth);
			free(hc);
		}
		*socket_ctx = NULL;
		return;
	}
	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return;
	hc->l = l;
	strcpy(hc->client_ip, "-");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && (sa = ci->client_addr) != NULL) {
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->
			    sin_addr, hc->client_ip, sizeof(hc->client_ip));
		else if (sa->sa_family == AF_INET6) {
			s6 = (const struct sockaddr_in6 *)sa;
			if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
				inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12],
				    hc->client_ip, sizeof(hc->client_ip));
			else
				inet_ntop(AF_INET6, &s6->sin6_addr,
				    hc->client_ip, sizeof(hc->client_ip));
		}
	}
	*socket_ctx = hc;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	debug("http: %s", msg);
}

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	struct wrm_buf b;
	char chunk[4096];
	size_t n, len;

	if (f == NULL)
		return NULL;
	wrm_buf_init(&b, 1024 * 1024);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (wrm_buf_put(&b, chunk, n) != 0)
			break;
	fclose(f);
	wrm_buf_putc(&b, '\0');
	return (char *)wrm_buf_steal(&b, &len);
}

/*
 * tls-server-end-point channel binding data (RFC 5929): the prefix and the
 * hash of the certificate this connection was served, SHA-256 when its
 * signature used MD5 or SHA-1, else the signature's own hash.
 */
static void
compute_cbt(struct wrm_http_conn *hc, const gnutls_datum_t *der)
{
	static const char prefix[] = "tls-server-end-point:";
	gnutls_x509_crt_t crt;
	gnutls_digest_algorithm_t dig = GNUTLS_DIG_SHA256;
	int sign;
	size_t hl;

	hc->cbt_len = 0;
	if (der == NULL || gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(crt);
		return;
	}
	sign = gnutls_x509_crt_get_signature_algorithm(crt);
	if (sign > 0) {
		dig = gnutls_sign_get_hash_algorithm((gnutls_sign_algorithm_t)
		    sign);
		if (dig == GNUTLS_DIG_MD5 || dig == GNUTLS_DIG_SHA1 ||
		    dig == GNUTLS_DIG_UNKNOWN)
			dig = GNUTLS_DIG_SHA256;
	}
	hl = gnutls_hash_get_len(dig);
	if (hl > 0 && sizeof(prefix) - 1 + hl <= sizeof(hc->cbt) &&
	    gnutls_hash_fast(dig, der->data, der->size,
	    hc->cbt + sizeof(prefix) - 1) == 0) {
		memcpy(hc->cbt, prefix, sizeof(prefix) - 1);
		hc->cbt_len = sizeof(prefix) - 1 + hl;
	}
	gnutls_x509_crt_deinit(crt);
}

/* The TLS facts of r's connection: peer chain, CAs, channel binding. */
static void
tls_peer(struct wrm_http_req *r, struct wrm_cert_peer *peer)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t s = NULL;
	unsigned n = 0;

	memset(peer, 0, sizeof(*peer));
	ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (ci != NULL)
		s = (gnutls_session_t)ci->tls_session;
	if (s == NULL)
		return;
	peer->chain = gnutls_certificate_get_peers(s, &n);
	peer->n = peer->chain != NULL ? n : 0;
	peer->trust = r->l->creds != NULL ? r->l->creds->client_ca : NULL;
	if (!r->hc->cbt_done) {
		compute_cbt(r->hc, gnutls_certificate_get_ours(s));
		r->hc->cbt_done = true;
	}
}

static void
creds_free(struct tls_creds *c)
{
	struct tls_creds *next;
	unsigned i;

	for (; c != NULL; c = next) {
		next = c->older;
		for (i = 0; i < c->n_pcerts; i++)
			gnutls_pcert_deinit(&c->pcerts[i]);
		if (c->key != NULL)
			gnutls_privkey_deinit(c->key);
		if (c->client_ca != NULL)
			gnutls_x509_trust_list_deinit(c->client_ca, 1);
		free(c);
	}
}

static char *read_file(const char *path);

/* Read a listener's certificate chain, key and client CAs. */
static int
creds_load(const struct wrm_listener_conf *lc, struct tls_creds **c_r)
{
	struct tls_creds *c;
	gnutls_datum_t d;
	char *pem;
	int r;

	*c_r = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return WRM_ERR_ALLOC;
	if ((pem = read_file(lc->certificate_file)) == NULL) {
		error("listener %s: cannot read %s", lc->name,
		    lc->certificate_file);
		goto fail;
	}
	d.data = (unsigned char *)pem;
	d.size = (unsigned)strlen(pem);
	c->n_pcerts = MAX_CHAIN;
	r = gnutls_pcert_list_import_x509_raw(c->pcerts, &c->n_pcerts, &d,
	    GNUTLS_X509_FMT_PEM, 0);
	free(pem);
	if (r < 0 || c->n_pcerts == 0) {
		c->n_pcerts = 0;
		error("listener %s: %s: %s", lc->name, lc->certificate_file,
		    r < 0 ? gnutls_strerror(r) : "no certificate");
		goto fail;
	}
	if ((pem = read_file(lc->key_file)) == NULL) {
		error("listener %s: cannot read %s", lc->name, lc->key_file);
		goto fail;
	}
	d.data = (unsigned char *)pem;
	d.size = (unsigned)strlen(pem);
	r = gnutls_privkey_init(&c->key);
	if (r >= 0)
		r = gnutls_privkey_import_x509_raw(c->key, &d,
		    GNUTLS_X509_FMT_PEM, NULL, 0);
	explicit_bzero(pem, d.size);
	free(pem);
	if (r < 0) {
		error("listener %s: %s: %s", lc->name, lc->key_file,
		    gnutls_strerror(r));
		goto fail;
	}
	if (lc->client_ca_file[0] != '\0' &&
	    (c->client_ca = wrm_cert_trust_load(lc->client_ca_file,
	    lc->client_crl_file)) == NULL) {
		error("listener %s: no CA certificate in %s, or no usable CRL "
		    "in %s", lc->name, lc->client_ca_file,
		    lc->client_crl_file[0] != '\0' ? lc->client_crl_file :
		    "(none)");
		goto fail;
	}
	*c_r = c;
	return 0;
fail:
	creds_free(c);
	return WRM_ERR_CONFIG;
}

/* Whether a listener configured for lc is bound to the address in ss. */
static bool
same_address(const struct wrm_listener_conf *lc,
    const struct sockaddr_storage *ss)
{
	char ip[INET6_ADDRSTRLEN];
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
		    ip, sizeof(ip));
	else if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, sizeof(ip));
	else
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
	return strcmp(lc->address, ip) == 0;
}

/* The HTTPS listener a TLS session arrived on (by its local address). */
static struct wrm_listener *
listener_of(gnutls_session_t s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct wrm_listener *l, *found = NULL;
	uint16_t port;
	int fd = gnutls_transport_get_int(s);

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return NULL;
	if (ss.ss_family == AF_INET)
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		return NULL;
	for (l = listeners; l != NULL; l = l->next) {
		if (!l->tls || l->port != port || l->creds == NULL)
			continue;
		if (found != NULL)
			return same_address(l->conf, &ss) ? l : found;
		found = l;
	}
	return found;
}

/* gnutls asks which certificate to present (see tls_creds). */
static int
cert_callback(gnutls_session_t s, const gnutls_datum_t *req_ca_dn,
    int nreqs, const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
    gnutls_pcert_st **pcert, unsigned int *pcert_length,
    gnutls_privkey_t *key)
{
	struct wrm_listener *l = listener_of(s);

	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (l == NULL)
		return -1;
	*pcert = l->creds->pcerts;
	*pcert_length = l->creds->n_pcerts;
	*key = l->creds->key;
	return 0;
}

int
wrm_http_reload(struct wrm_listener *l, const struct wrm_listener_conf *lc)
{
	struct tls_creds *c;
	int r;

	if (!l->tls)
		return 0;
	if ((r = creds_load(lc, &c)) != 0) {
		error("listener %s: keeping the certificate it has", lc->name);
		return r;
	}
	if (c->client_ca != NULL && l->ca_pem == NULL)
		logit("listener %s: ClientCAFile takes effect at the next "
		    "start (client certificates are not requested yet)",
		    lc->name);
	c->older = l->creds;
	l->creds = c;
	logit("listener %s: certificate reloaded", lc->name);
	return 0;
}

static int
bind_address(const struct wrm_listener_conf *lc, struct sockaddr_storage *ss,
    unsigned *flags)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (strcmp(lc->address, "*") == 0 || lc->address[0] == '\0') {
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons((uint16_t)lc->port);
		*flags |= MHD_USE_DUAL_STACK;
		return 0;
	}
	if (inet_pton(AF_INET, lc->address, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)lc->port);
		return 0;
	}
	if (inet_pton(AF_INET6, lc->address, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)lc->port);
		*flags |= MHD_USE_IPv6;
		return 0;
	}
	return WRM_ERR_CONFIG;
}

static void
opt(struct MHD_OptionItem *ops, size_t *n, enum MHD_OPTION o, intptr_t v,
    void *p)
{
	ops[*n].option = o;
	ops[*n].value = v;
	ops[*n].ptr_value = p;
	(*n)++;
}

int
wrm_http_start(struct wrm_listener_conf *lc, struct wrm_listener **l_r)
{
	struct MHD_OptionItem ops[16];
	size_t n = 0;
	int lfd;
	struct wrm_listener *l;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
	    MHD_USE_ERROR_LOG | MHD_USE_SUPPRESS_DATE_NO_CLOCK;
	uint64_t timeout = D.conf->service.max_packet_retrieval_time_seconds;
	int r;

	*l_r = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return WRM_ERR_ALLOC;
	l->conf = lc;
	l->tls = strcasecmp(lc->transport, "HTTPS") == 0;
	if (asprintf(&l->prefix, "/%s", lc->url_prefix[0] == '/' ?
	    lc->url_prefix + 1 : lc->url_prefix) < 0) {
		free(l);
		return WRM_ERR_ALLOC;
	}
	if ((r = bind_address(lc, &ss, &flags)) != 0) {
		error("listener %s: bad Address %s", lc->name, lc->address);
		goto fail;
	}
	if (l->tls) {
		flags |= MHD_USE_TLS;
		if ((r = creds_load(lc, &l->creds)) != 0)
			goto fail;
		if (lc->client_ca_file[0] != '\0' &&
		    (l->ca_pem = read_file(lc->client_ca_file)) == NULL) {
			r = WRM_ERR_CONFIG;
			goto fail;
		}
	}
	if (timeout < 180)
		timeout = 180;
	/* Certificates come from cert_callback so that SIGHUP can swap them. */
	/*
	 * Options as an MHD_OPTION_ARRAY: integers in value, a single
	 * pointer in ptr_value, (function, closure) pairs as value and
	 * ptr_value.  A socket systemd passed for this address and port
	 * replaces binding one.
	 */
	lfd = wrm_sd_listen_fd(lc->address, (uint16_t)lc->port);
	opt(ops, &n, MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL);
	if (lfd >= 0) {
		opt(ops, &n, MHD_OPTION_LISTEN_SOCKET, lfd, NULL);
		flags &= ~(unsigned)(MHD_USE_DUAL_STACK | MHD_USE_IPv6);
		logit("listener %s: using the socket systemd passed (fd %d)",
		    lc->name, lfd);
	} else
		opt(ops, &n, MHD_OPTION_SOCK_ADDR, 0, &ss);
	opt(ops, &n, MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)request_completed,
	    l);
	opt(ops, &n, MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)connection_notify,
	    l);
	opt(ops, &n, MHD_OPTION_CONNECTION_LIMIT,
	    (intptr_t)(D.conf->service.max_connections + 64), NULL);
	opt(ops, &n, MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout, NULL);
	opt(ops, &n, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)MHD_MEMORY,
	    NULL);
	if (l->tls) {
		opt(ops, &n, MHD_OPTION_HTTPS_CERT_CALLBACK, 0,
		    (void *)cert_callback);
		opt(ops, &n, MHD_OPTION_HTTPS_PRIORITIES, 0,
		    lc->tls_priorities);
		if (l->ca_pem != NULL)
			opt(ops, &n, MHD_OPTION_HTTPS_MEM_TRUST, 0,
			    l->ca_pem);
	}
	opt(ops, &n, MHD_OPTION_END, 0, NULL);
	l->mhd = MHD_start_daemon(flags, (uint16_t)lc->port, NULL, NULL,
	    access_handler, l, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
	if (l->mhd == NULL) {
		error("listener %s: cannot listen on %s port %llu: %s",
		    lc->name, lc->address, (unsigned long long)lc->port,
		    strerror(errno));
		r = WRM_ERR_SYSTEM;
		goto fail;
	}
	di = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_BIND_PORT);
	l->port = di != NULL ? di->port : (uint16_t)lc->port;
	di = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL || (r = wrm_loop_watch(D.loop, di->epoll_fd,
	    WRM_LOOP_READ, listener_io, l, &l->io)) != 0) {
		MHD_stop_daemon(l->mhd);
		r = WRM_ERR_SYSTEM;
		goto fail;
	}
	l->next = listeners;
	listeners = l;
	logit("listening on %s://%s:%u%s (%s)", l->tls ? "https" : "http",
	    lc->address, (unsigned)l->port, l->prefix, lc->name);
	listener_run(l);
	*l_r = l;
	return 0;
fail:
	free(l->prefix);
	creds_free(l->creds);
	free(l->ca_pem);
	free(l);
	return r;
}

/*
 * [Service] MetricsListen: ADDRESS:PORT or [ADDRESS]:PORT.  A listener of
 * its own, without authentication: bind it to loopback or a management
 * network.
 */
static struct wrm_listener_conf mc;
static struct wrm_listener *metrics_listener;

int
wrm_http_start_metrics(const char *spec)
{
	struct wrm_listener *l;
	const char *colon = strrchr(spec, ':');
	uint64_t port;
	int r;

	if (colon == NULL || wrm_parse_u64(colon + 1, &port) != 0 ||
	    port > 65535)
		return WRM_ERR_CONFIG;
	memset(&mc, 0, sizeof(mc));
	mc.name = (char *)"metrics";
	if (spec[0] == '[' && colon > spec + 1 && colon[-1] == ']')
		mc.address = strndup(spec + 1, (size_t)(colon - spec - 2));
	else
		mc.address = strndup(spec, (size_t)(colon - spec));
	mc.port = port;
	mc.transport = (char *)"HTTP";
	mc.url_prefix = (char *)"metrics";
	mc.certificate_file = mc.key_file = mc.client_ca_file = (char *)"";
	mc.client_crl_file = (char *)"";
	mc.tls_priorities = (char *)"";
	mc.hostname = (char *)"";
	mc.enabled = true;
	if (mc.address == NULL)
		return WRM_ERR_ALLOC;
	if ((r = wrm_http_start(&mc, &l)) != 0) {
		free(mc.address);
		mc.address = NULL;
		return r;
	}
	l->metrics = true;
	metrics_listener = l;
	return 0;
}

void
wrm_http_stop_metrics(void)
{
	wrm_http_stop(metrics_listener);
	metrics_listener = NULL;
	free(mc.address);
	mc.address = NULL;
}

void
wrm_http_abort_all(void)
{
	struct wrm_http_req *r;

	for (r = active; r != NULL; r = r->next_active)
		if (r->op != NULL && r->stage == RS_OP)
			wsman_op_abort(r->op);
}

void
wrm_http_stop(struct wrm_listener *l)
{
	struct wrm_listener **pp;

	if (l == NULL)
		return;
	for (pp = &listeners; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	wrm_loop_unwatch(l->io);
	wrm_timer_cancel(l->timer);
	if (l->mhd != NULL)
		MHD_stop_daemon(l->mhd);
	free(l->prefix);
	creds_free(l->creds);
	free(l->ca_pem);
	free(l);
}

uint16_t
wrm_http_port(const struct wrm_listener *l)
{
	return l->port;
}

bool
wrm_http_is_tls(const struct wrm_listener *l)
{
	return l->tls;
}

const char *
wrm_http_name(const struct wrm_listener *l)
{
	return l->conf->name;
}
