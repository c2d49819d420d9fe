/*
 * hclient: a small keep-alive HTTP/1.1 load client for WinRM endpoints.
 *
 * Modes (one line of key=value results on stdout):
 *   identify  anonymous Identify POSTs, N threads for D seconds or -n total
 *   cycle     WinRS cycles: Create, Command, Receive until Done,
 *             Signal terminate, Delete; rate, p50/p99 latency, faults
 *   stream    one cycle whose command writes -s BYTES; Receive with
 *             MaxEnvelopeSize -e; MB/s, envelopes, largest envelope.
 *             The command is `head -c BYTES /dev/zero`, or -x CMD, which
 *             must then write exactly -s BYTES
 *   spawn     no HTTP: posix_spawn /bin/sh -c 'echo hi' with three pipes,
 *             read to EOF and reap, the bare cost a cycle is built on
 *
 * Responses are parsed just enough to go on: the ShellId selector, the
 * CommandId, the length of each base64 stream and CommandState Done.
 * The bytes received are counted and compared with what the command
 * wrote; any mismatch, HTTP error or oversized envelope is a fault.
 *
 * With -m PID the client also samples that server process (and its
 * children named by -M) every 50 ms: CPU time and resident memory.
 *
 * With -N the -a credentials are used for NTLM instead of Basic (HTTP
 * Negotiate through GSSAPI and gss-ntlmssp, once per connection), and
 * every request and response is sealed as MS-WSMV 2.2.9.1 describes
 * (multipart/encrypted, the 16-byte NTLM signature in front of the
 * sealed bytes).  The client's own CPU time is reported as cli_cpu_s.
 *
 * Every loop is bounded by the -d deadline, a count, or socket timeouts.
 */

#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>

#define NS_SHELL "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
#define URI_CMD	NS_SHELL "/cmd"
#define A_XFER	"http://schemas.xmlsoap.org/ws/2004/09/transfer/"
#define ENVELOPE_OPEN \
	"<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" " \
	"xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" " \
	"xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" " \
	"xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\" " \
	"xmlns:rsp=\"" NS_SHELL "\">"
#define IDENTIFY_BODY \
	"<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" " \
	"xmlns:wsmid=\"http://schemas.dmtf.org/wbem/wsman/identity/1/" \
	"wsmanidentity.xsd\"><s:Header/><s:Body><wsmid:Identify/></s:Body>" \
	"</s:Envelope>"
#define MAX_RECEIVES	100000		/* per command */
#define IO_TIMEOUT_S	30
#define SEAL_PROTOCOL	"application/HTTP-SPNEGO-session-encrypted"
#define SEAL_BOUNDARY	"--Encrypted Boundary"
#define OCTET_STREAM	"\tContent-Type: application/octet-stream\r\n"

extern char **environ;

enum mode { M_IDENTIFY, M_CYCLE, M_STREAM, M_SPAWN };

static struct {
	enum mode	 mode;
	char		 host[64];
	int		 port;
	char		 path[256];
	char		 auth[512];	/* "Authorization: Basic ...\r\n" or "" */
	int		 threads;
	double		 seconds;
	long		 count;		/* identify: total requests, 0 = by time */
	long long	 size;		/* stream: bytes the command writes */
	long		 max_env;	/* MaxEnvelopeSize sent */
	int		 pause_ms;	/* stream: pause after Done */
	const char	*command;	/* stream: -x, instead of head */
	bool		 verbose;	/* each request's time on stderr */
	bool		 ntlm;		/* -N: NTLM, sealed */
	char		 user[256], password[256];
	pid_t		 mon_pid;
	const char	*mon_comm;
} opt = {
	.threads = 1, .seconds = 5, .size = 1 << 30, .max_env = 153600,
	.port = 80,
};

/* A keep-alive connection and its receive buffer. */
struct conn {
	int	 fd;
	char	*buf;
	size_t	 cap, len;
	int	 status;
	char	*body;			/* into buf */
	size_t	 body_len;
	char	*req;			/* request being built */
	size_t	 req_cap;
	uint64_t rng;			/* for MessageIDs */
	bool	 sealed;		/* the response is multipart/encrypted */
	gss_ctx_id_t ctx;		/* -N: this connection's context */
	char	*plain;			/* -N: the unsealed response */
	size_t	 plain_cap;
	char	*out;			/* -N: the sealed request */
	size_t	 out_cap;
};

/* One worker's results. */
struct worker {
	pthread_t	 tid;
	int		 index;
	double		*lat;		/* microseconds, one per operation */
	size_t		 n, cap;
	long		 faults;
	long long	 bytes;
	long		 envelopes;
	size_t		 max_envelope;
	double		 stream_s;	/* stream: Command to Done */
	long		 left;		/* identify -n: requests still to send */
};

static double t_end;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "hclient: %s\n", what);
	exit(1);
}

static void
lat_add(struct worker *w, double us)
{
	double *p;

	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 4096;
		if ((p = realloc(w->lat, w->cap * sizeof(*p))) == NULL)
			die("out of memory");
		w->lat = p;
	}
	w->lat[w->n++] = us;
}

static void
b64_encode(const void *in, size_t n, char *out)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *s = in;
	size_t i;

	for (i = 0; i < n; i += 3) {
		unsigned v = s[i] << 16 | (i + 1 < n ? s[i + 1] << 8 : 0) |
		    (i + 2 < n ? s[i + 2] : 0);

		*out++ = t[v >> 18];
		*out++ = t[(v >> 12) & 63];
		*out++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
		*out++ = i + 2 < n ? t[v & 63] : '=';
	}
	*out = '\0';
}

/* ---- HTTP ------------------------------------------------------------- */

static void
conn_close(struct conn *c)
{
	OM_uint32 minor;

	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &c->ctx, GSS_C_NO_BUFFER);
	c->ctx = GSS_C_NO_CONTEXT;
}

static int
conn_open(struct conn *c)
{
	struct sockaddr_in sin;
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	int one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &sin.sin_addr) != 1)
		die("the host must be an IPv4 address");
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		conn_close(c);
		return -1;
	}
	return 0;
}

static int
send_all(int fd, struct iovec *iov, int n)
{
	ssize_t k;

	while (n > 0) {
		if ((k = writev(fd, iov, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

/* Read one response with a Content-Length body.  -2: closed before any. */
static int
read_response(struct conn *c)
{
	char *hend = NULL, *p;
	size_t need = 0;
	bool close_after = false;
	ssize_t k;

	c->len = 0;
	for (;;) {
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 262144;
			if ((p = realloc(c->buf, c->cap + 1)) == NULL)
				die("out of memory");
			c->buf = p;
			hend = NULL;
		}
		k = read(c->fd, c->buf + c->len, c->cap - c->len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return c->len == 0 && k == 0 ? -2 : -1;
		c->len += (size_t)k;
		c->buf[c->len] = '\0';
		if (hend == NULL) {
			if ((hend = strstr(c->buf, "\r\n\r\n")) == NULL)
				continue;
			*hend = '\0';
			if (sscanf(c->buf, "HTTP/1.%*d %d", &c->status) != 1)
				return -1;
			if ((p = strcasestr(c->buf, "\r\nContent-Length:")) ==
			    NULL)
				return -1;
			need = strtoul(p + 17, NULL, 10);
			close_after = strcasestr(c->buf,
			    "\r\nConnection: close") != NULL;
			c->sealed = strcasestr(c->buf,
			    "\r\nContent-Type: multipart/encrypted") != NULL;
			*hend = '\r';
			hend += 4;
		}
		if (c->len >= (size_t)(hend - c->buf) + need)
			break;
	}
	c->body = hend;
	c->body_len = need;
	c->body[need] = '\0';
	if (close_after)
		conn_close(c);
	return 0;
}

/* ---- NTLM (-N) ---------------------------------------------------------- */

static gss_OID_desc ntlm_oid = {
	10, (void *)"\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a"
};
static gss_cred_id_t ntlm_cred = GSS_C_NO_CREDENTIAL;
static gss_name_t ntlm_target = GSS_C_NO_NAME;

static void
gss_die(const char *what, OM_uint32 major, OM_uint32 minor)
{
	OM_uint32 m, ctx = 0;
	gss_buffer_desc t;

	fprintf(stderr, "hclient: %s:", what);
	gss_display_status(&m, major, GSS_C_GSS_CODE, GSS_C_NO_OID, &ctx, &t);
	fprintf(stderr, " %.*s", (int)t.length, (char *)t.value);
	gss_release_buffer(&m, &t);
	ctx = 0;
	gss_display_status(&m, minor, GSS_C_MECH_CODE, &ntlm_oid, &ctx, &t);
	fprintf(stderr, " (%.*s)\n", (int)t.length, (char *)t.value);
	gss_release_buffer(&m, &t);
	exit(1);
}

static void
ntlm_init(void)
{
	gss_buffer_desc b;
	gss_OID_set_desc mechs = { 1, &ntlm_oid };
	gss_name_t user;
	OM_uint32 major, minor;
	char target[96];

	b.value = opt.user;
	b.length = strlen(opt.user);
	major = gss_import_name(&minor, &b, GSS_C_NT_USER_NAME, &user);
	if (GSS_ERROR(major))
		gss_die("gss_import_name", major, minor);
	b.value = opt.password;
	b.length = strlen(opt.password);
	major = gss_acquire_cred_with_password(&minor, user, &b,
	    GSS_C_INDEFINITE, &mechs, GSS_C_INITIATE, &ntlm_cred, NULL, NULL);
	gss_release_name(&minor, &user);
	if (GSS_ERROR(major))
		gss_die("gss_acquire_cred_with_password (for NTLM, OPENSSL_CONF "
		    "must enable the legacy provider)", major, minor);
	snprintf(target, sizeof(target), "HTTP@%s", opt.host);
	b.value = target;
	b.length = strlen(target);
	major = gss_import_name(&minor, &b, GSS_C_NT_HOSTBASED_SERVICE,
	    &ntlm_target);
	if (GSS_ERROR(major))
		gss_die("gss_import_name", major, minor);
}

static size_t
b64_decode(const char *in, uint8_t *out, size_t cap)
{
	static const char t[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned v = 0, bits = 0;
	size_t n = 0;
	const char *p;

	for (; *in != '\0' && *in != '=' && *in != '\r' && *in != ','; in++) {
		if ((p = strchr(t, *in)) == NULL)
			break;
		v = v << 6 | (unsigned)(p - t);
		if ((bits += 6) >= 8) {
			bits -= 8;
			if (n < cap)
				out[n++] = (uint8_t)(v >> bits);
		}
	}
	return n;
}

/* A request with only headers; 0 once a response was read. */
static int
send_headers(struct conn *c, const char *auth_token)
{
	char hdr[8192];
	struct iovec iov;
	int n;

	n = snprintf(hdr, sizeof(hdr), "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
	    "Connection: keep-alive\r\nAuthorization: Negotiate %s\r\n"
	    "Content-Length: 0\r\n\r\n", opt.path, opt.host, opt.port,
	    auth_token);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -1;
	iov.iov_base = hdr;
	iov.iov_len = (size_t)n;
	if (send_all(c->fd, &iov, 1) != 0)
		return -1;
	return read_response(c);
}

/* Authenticate this connection: NEGOTIATE, CHALLENGE, AUTHENTICATE. */
static int
ntlm_handshake(struct conn *c)
{
	gss_buffer_desc in = GSS_C_EMPTY_BUFFER, out = GSS_C_EMPTY_BUFFER;
	OM_uint32 major, minor;
	uint8_t tok[4096];
	char enc[8192], *h, save;
	int leg;

	for (leg = 0; leg < 4; leg++) {
		major = gss_init_sec_context(&minor, ntlm_cred, &c->ctx,
		    ntlm_target, &ntlm_oid, GSS_C_INTEG_FLAG | GSS_C_CONF_FLAG |
		    GSS_C_MUTUAL_FLAG, 0, GSS_C_NO_CHANNEL_BINDINGS,
		    in.length > 0 ? &in : GSS_C_NO_BUFFER, NULL, &out, NULL,
		    NULL);
		if (GSS_ERROR(major)) {
			gss_release_buffer(&minor, &out);
			return -1;
		}
		if (out.length == 0 || out.length * 4 / 3 + 4 >= sizeof(enc)) {
			gss_release_buffer(&minor, &out);
			return -1;
		}
		b64_encode(out.value, out.length, enc);
		gss_release_buffer(&minor, &out);
		if (send_headers(c, enc) != 0)
			return -1;
		if (c->status == 200)
			return major == GSS_S_COMPLETE ? 0 : -1;
		if (c->status != 401 || major == GSS_S_COMPLETE)
			return -1;
		/* The server's token, from the headers only. */
		save = c->body[-2];
		c->body[-2] = '\0';
		h = strcasestr(c->buf, "\r\nWWW-Authenticate: Negotiate ");
		in.length = h != NULL ? b64_decode(h + 30, tok, sizeof(tok)) : 0;
		c->body[-2] = save;
		if (in.length == 0)
			return -1;
		in.value = tok;
	}
	return -1;
}

static void
grow(char **p, size_t *cap, size_t need)
{
	char *q;

	if (need <= *cap)
		return;
	*cap = need + need / 4;
	if ((q = realloc(*p, *cap)) == NULL)
		die("out of memory");
	*p = q;
}

/* Seal body into c->out; returns its length, 0 on failure. */
static size_t
ntlm_seal(struct conn *c, const char *body, size_t len)
{
	gss_buffer_desc in, out;
	OM_uint32 major, minor;
	char head[512];
	size_t n, h;
	int conf = 0;

	in.value = (void *)body;
	in.length = len;
	major = gss_wrap(&minor, c->ctx, 1, GSS_C_QOP_DEFAULT, &in, &conf,
	    &out);
	if (GSS_ERROR(major) || !conf || out.length < 16) {
		gss_release_buffer(&minor, &out);
		return 0;
	}
	h = (size_t)snprintf(head, sizeof(head), SEAL_BOUNDARY "\r\n"
	    "\tContent-Type: " SEAL_PROTOCOL "\r\n"
	    "\tOriginalContent: type=application/soap+xml;charset=UTF-8;"
	    "Length=%zu\r\n" SEAL_BOUNDARY "\r\n" OCTET_STREAM, len);
	n = h + 4 + out.length + sizeof(SEAL_BOUNDARY "--\r\n") - 1;
	grow(&c->out, &c->out_cap, n);
	memcpy(c->out, head, h);
	c->out[h] = 16, c->out[h + 1] = c->out[h + 2] = c->out[h + 3] = 0;
	memcpy(c->out + h + 4, out.value, out.length);
	memcpy(c->out + h + 4 + out.length, SEAL_BOUNDARY "--\r\n",
	    sizeof(SEAL_BOUNDARY "--\r\n") - 1);
	gss_release_buffer(&minor, &out);
	return n;
}

/* Replace c->body by its unsealed text.  0 or -1. */
static int
ntlm_unseal(struct conn *c)
{
	gss_buffer_desc in, out;
	OM_uint32 major, minor;
	const char *b = c->body, *p, *end = c->body + c->body_len;
	size_t want, sig;
	int conf = 0;

	if ((p = memmem(b, c->body_len, "Length=", 7)) == NULL)
		return -1;
	want = strtoul(p + 7, NULL, 10);
	if ((p = memmem(b, c->body_len, OCTET_STREAM,
	    sizeof(OCTET_STREAM) - 1)) == NULL)
		return -1;
	p += sizeof(OCTET_STREAM) - 1;
	if (end - p < 4)
		return -1;
	sig = (uint8_t)p[0] | (uint8_t)p[1] << 8 | (uint8_t)p[2] << 16 |
	    (size_t)(uint8_t)p[3] << 24;
	p += 4;
	if (sig != 16 || (size_t)(end - p) < sig + want)
		return -1;
	in.value = (void *)p;		/* signature, then the sealed bytes */
	in.length = sig + want;
	major = gss_unwrap(&minor, c->ctx, &in, &out, &conf, NULL);
	if (GSS_ERROR(major) || !conf || out.length != want) {
		gss_release_buffer(&minor, &out);
		return -1;
	}
	grow(&c->plain, &c->plain_cap, want + 1);
	memcpy(c->plain, out.value, want);
	c->plain[want] = '\0';
	gss_release_buffer(&minor, &out);
	c->body = c->plain;
	c->body_len = want;
	return 0;
}

/* ---- requests --------------------------------------------------------- */

/* POST body; retry once on a fresh connection if a kept one was closed. */
static int
post(struct conn *c, const char *body, size_t len, const char *extra)
{
	char hdr[1024];
	struct iovec iov[2];
	int try, r, n;

	for (try = 0; try < 2; try++) {
		bool fresh = c->fd < 0;
		const char *out = body;
		size_t out_len = len;

		if (fresh && conn_open(c) != 0)
			return -1;
		if (opt.ntlm) {
			if (c->ctx == GSS_C_NO_CONTEXT &&
			    ntlm_handshake(c) != 0) {
				conn_close(c);
				return -1;
			}
			if ((out_len = ntlm_seal(c, body, len)) == 0) {
				conn_close(c);
				return -1;
			}
			out = c->out;
		}
		n = snprintf(hdr, sizeof(hdr), "POST %s HTTP/1.1\r\n"
		    "Host: %s:%d\r\nConnection: keep-alive\r\n"
		    "Content-Type: %s\r\n%s%sContent-Length: %zu\r\n\r\n",
		    opt.path, opt.host, opt.port, opt.ntlm ?
		    "multipart/encrypted;protocol=\"" SEAL_PROTOCOL "\";"
		    "boundary=\"Encrypted Boundary\"" :
		    "application/soap+xml;charset=UTF-8", opt.auth, extra,
		    out_len);
		iov[0].iov_base = hdr;
		iov[0].iov_len = (size_t)n;
		iov[1].iov_base = (void *)out;
		iov[1].iov_len = out_len;
		r = send_all(c->fd, iov, 2) == 0 ? 0 : -2;
		if (r == 0)
			r = read_response(c);
		if (r == 0 && opt.ntlm && c->body_len > 0 &&
		    (!c->sealed || ntlm_unseal(c) != 0)) {
			conn_close(c);	/* a fault: not sealed, or wrongly */
			return -1;
		}
		if (r == 0)
			return 0;
		conn_close(c);
		if (fresh || r == -1)
			return -1;
	}
	return -1;
}

/* ---- WS-Man requests -------------------------------------------------- */

static void
uuid(struct conn *c, char out[37])
{
	uint64_t a, b;

	c->rng ^= c->rng << 13, c->rng ^= c->rng >> 7, c->rng ^= c->rng << 17;
	a = c->rng;
	c->rng ^= c->rng << 13, c->rng ^= c->rng >> 7, c->rng ^= c->rng << 17;
	b = c->rng;
	snprintf(out, 37, "%08x-%04x-4%03x-a%03x-%012llx",
	    (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
	    (unsigned)a & 0xfff, (unsigned)(b >> 48) & 0xfff,
	    (unsigned long long)b & 0xffffffffffffULL);
}

/* Send one WinRS request in the shape pywinrm uses.  0 only on HTTP 200. */
static int
wsman(struct conn *c, const char *action, const char *shell,
    const char *options, const char *body)
{
	char id[37];
	double t;
	int n, r;

	if (c->req == NULL && (c->req = malloc(c->req_cap = 8192)) == NULL)
		die("out of memory");
	uuid(c, id);
	n = snprintf(c->req, c->req_cap, ENVELOPE_OPEN "<s:Header>"
	    "<a:To>http://%s:%d%s</a:To><a:ReplyTo><a:Address "
	    "mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/08/"
	    "addressing/role/anonymous</a:Address></a:ReplyTo>"
	    "<w:MaxEnvelopeSize mustUnderstand=\"true\">%ld</w:MaxEnvelopeSize>"
	    "<a:MessageID>uuid:%s</a:MessageID>"
	    "<w:Locale mustUnderstand=\"false\" xml:lang=\"en-US\"/>"
	    "<p:DataLocale mustUnderstand=\"false\" xml:lang=\"en-US\"/>"
	    "<w:OperationTimeout>PT20S</w:OperationTimeout>"
	    "<w:ResourceURI mustUnderstand=\"true\">" URI_CMD "</w:ResourceURI>"
	    "<a:Action mustUnderstand=\"true\">%s</a:Action>"
	    "%s%s%s%s%s%s</s:Header><s:Body>%s</s:Body></s:Envelope>",
	    opt.host, opt.port, opt.path, opt.max_env, id, action,
	    shell ? "<w:SelectorSet><w:Selector Name=\"ShellId\">" : "",
	    shell ? shell : "", shell ? "</w:Selector></w:SelectorSet>" : "",
	    options ? "<w:OptionSet>" : "", options ? options : "",
	    options ? "</w:OptionSet>" : "", body);
	if (n < 0 || (size_t)n >= c->req_cap)
		die("request too long");
	t = now();
	r = post(c, c->req, (size_t)n, "") != 0 || c->status != 200 ? -1 : 0;
	if (opt.verbose)
		fprintf(stderr, "%s %d %.3f ms\n", strrchr(action, '/') + 1,
		    r == 0 ? 200 : c->status, (now() - t) * 1e3);
	return r;
}

/* Text of the element or selector whose start tag ends with "key>". */
static int
find_value(const char *s, const char *key, char *out, size_t n)
{
	const char *p, *e;

	if ((p = strstr(s, key)) == NULL)
		return -1;
	p += strlen(key);
	if ((e = strchr(p, '<')) == NULL || (size_t)(e - p) >= n || e == p)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

/*
 * Count the decoded bytes of every output Stream in a ReceiveResponse.
 * Returns 1 when the command is Done, 0 when not, -1 on a bad response.
 */
static int
scan_receive(const char *body, long long *bytes)
{
	const char *p = body, *q, *e;
	size_t n;

	while ((p = strstr(p, "Stream Name=\"")) != NULL) {
		if ((q = strchr(p, '>')) == NULL)
			return -1;
		p = q + 1;
		if (q[-1] == '/')
			continue;
		if ((e = strchr(p, '<')) == NULL)
			return -1;
		n = (size_t)(e - p);
		while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' ||
		    p[n - 1] == ' '))
			n--;
		if (n % 4 != 0)
			return -1;
		*bytes += (long long)(n / 4 * 3) - (n > 0 && p[n - 1] == '=') -
		    (n > 1 && p[n - 2] == '=');
		p = e;
	}
	if (strstr(body, "CommandState/Done\"") != NULL)
		return strstr(body, "ExitCode>") != NULL ? 1 : -1;
	return strstr(body, "CommandState") != NULL ? 0 : -1;
}

/*
 * One WinRS cycle running `line`.  Adds to w's counters; returns 0, or -1
 * after a fault (the shell is still deleted if it was created).
 */
static int
cycle(struct conn *c, struct worker *w, const char *line, long long expect,
    int pause_ms)
{
	char shell[64], cmd[64], buf[1024];
	long long got = 0;
	double t0 = 0;
	int i, r = -1, done = 0;

	if (wsman(c, A_XFER "Create", NULL, "<w:Option Name=\""
	    "WINRS_NOPROFILE\">FALSE</w:Option><w:Option Name=\""
	    "WINRS_CODEPAGE\">65001</w:Option>", "<rsp:Shell><rsp:InputStreams>"
	    "stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr"
	    "</rsp:OutputStreams></rsp:Shell>") != 0 ||
	    find_value(c->body, "Name=\"ShellId\">", shell, sizeof(shell)))
		return -1;
	snprintf(buf, sizeof(buf), "<rsp:CommandLine><rsp:Command>%s"
	    "</rsp:Command></rsp:CommandLine>", line);
	if (wsman(c, NS_SHELL "/Command", shell, "<w:Option Name=\""
	    "WINRS_CONSOLEMODE_STDIN\">TRUE</w:Option><w:Option Name=\""
	    "WINRS_SKIP_CMD_SHELL\">FALSE</w:Option>", buf) != 0 ||
	    find_value(c->body, "CommandId>", cmd, sizeof(cmd)) != 0)
		goto out;
	t0 = now();
	snprintf(buf, sizeof(buf), "<rsp:Receive><rsp:DesiredStream "
	    "CommandId=\"%s\">stdout stderr</rsp:DesiredStream></rsp:Receive>",
	    cmd);
	for (i = 0; i < MAX_RECEIVES && done == 0; i++) {
		if (wsman(c, NS_SHELL "/Receive", shell, "<w:Option Name=\""
		    "WSMAN_CMDSHELL_OPTION_KEEPALIVE\">TRUE</w:Option>",
		    buf) != 0 || (done = scan_receive(c->body, &got)) < 0)
			goto out;
		w->envelopes++;
		if (c->body_len > w->max_envelope)
			w->max_envelope = c->body_len;
	}
	w->stream_s += now() - t0;
	if (pause_ms > 0)
		poll(NULL, 0, pause_ms);
	snprintf(buf, sizeof(buf), "<rsp:Signal CommandId=\"%s\"><rsp:Code>"
	    NS_SHELL "/signal/terminate</rsp:Code></rsp:Signal>", cmd);
	if (wsman(c, NS_SHELL "/Signal", shell, NULL, buf) != 0)
		goto out;
	r = done == 1 && got == expect ? 0 : -1;
out:
	w->bytes += got;
	if (wsman(c, A_XFER "Delete", shell, NULL, "") != 0)
		r = -1;
	return r;
}

/* ---- the bare spawn probe --------------------------------------------- */

static int
spawn_echo(void)
{
	posix_spawn_file_actions_t fa;
	int p[6], i, open_fds = 2, st;
	char *argv[] = { "sh", "-c", "echo hi", NULL }, b[256];
	struct pollfd pf[2];
	pid_t pid;
	ssize_t k;

	for (i = 0; i < 3; i++)
		if (pipe2(p + 2 * i, O_CLOEXEC) != 0)
			die("pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[0], 0);
	posix_spawn_file_actions_adddup2(&fa, p[3], 1);
	posix_spawn_file_actions_adddup2(&fa, p[5], 2);
	i = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[0]), close(p[1]), close(p[3]), close(p[5]);
	if (i != 0) {
		close(p[2]), close(p[4]);
		return -1;
	}
	pf[0].fd = p[2];
	pf[1].fd = p[4];
	pf[0].events = pf[1].events = POLLIN;
	while (open_fds > 0 && poll(pf, 2, IO_TIMEOUT_S * 1000) > 0)
		for (i = 0; i < 2; i++)
			if (pf[i].fd >= 0 && pf[i].revents != 0 &&
			    (k = read(pf[i].fd, b, sizeof(b))) <= 0) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_fds--;
			}
	for (i = 0; i < 2; i++)
		if (pf[i].fd >= 0)
			close(pf[i].fd);
	return waitpid(pid, &st, 0) == pid && st == 0 ? 0 : -1;
}

/* ---- workers ---------------------------------------------------------- */

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct conn c = { .fd = -1 };
	char line[512];
	double t;
	int r;

	c.rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)w->index << 32) ^
	    (uint64_t)getpid();
	if (opt.command != NULL)
		snprintf(line, sizeof(line), "%s", opt.command);
	else
		snprintf(line, sizeof(line), "head -c %lld /dev/zero",
		    opt.size);
	while (opt.mode == M_STREAM || (opt.count > 0 ? w->left-- > 0 :
	    now() < t_end)) {
		t = now();
		switch (opt.mode) {
		case M_IDENTIFY:
			r = post(&c, IDENTIFY_BODY, sizeof(IDENTIFY_BODY) - 1,
			    "WSMANIDENTIFY: unauthenticated\r\n");
			if (r == 0 && (c.status != 200 ||
			    strstr(c.body, "IdentifyResponse") == NULL))
				r = -1;
			break;
		case M_CYCLE:
			r = cycle(&c, w, "echo hi", 3, 0);
			break;
		case M_STREAM:
			r = cycle(&c, w, line, opt.size, opt.pause_ms);
			if (r == 0 && w->max_envelope > (size_t)opt.max_env)
				r = -1;
			break;
		default:
			r = spawn_echo();
			break;
		}
		if (r != 0) {
			w->faults++;
			conn_close(&c);
		} else
			lat_add(w, (now() - t) * 1e6);
		if (opt.mode == M_STREAM)
			break;
	}
	conn_close(&c);
	free(c.buf);
	free(c.req);
	free(c.plain);
	free(c.out);
	return NULL;
}

/* ---- process monitor (-m) --------------------------------------------- */

struct proc_sample {
	int	 ppid;
	char	 comm[32];
	long	 ticks;			/* utime + stime */
	long	 rss_kb;
};

static int
proc_read(pid_t pid, struct proc_sample *ps)
{
	char path[64], b[1024], *p;
	long v[24];
	int fd, i;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0 || (b[n] = '\0', p = strrchr(b, ')')) == NULL)
		return -1;
	*p = '\0';
	snprintf(ps->comm, sizeof(ps->comm), "%s", strchr(b, '(') + 1);
	for (p += 3, i = 0; i < 24 && *p != '\0'; i++)
		v[i] = strtol(p, &p, 10);
	if (i < 24)
		return -1;
	ps->ppid = (int)v[0];		/* field 4 */
	ps->ticks = v[10] + v[11];	/* fields 14, 15 */
	ps->rss_kb = v[20] * (sysconf(_SC_PAGESIZE) / 1024);	/* field 24 */
	return 0;
}

static struct {
	volatile bool	 stop;
	bool		 initial;	/* helpers seen now existed before */
	long		 base, last, rss_start, rss_max, helper_rss_max;
	int		 n;
	struct { pid_t pid; long base, last; } h[256];
} mon;

static void
mon_sample(void)
{
	struct proc_sample ps;
	struct dirent *de;
	DIR *d;
	long rss = 0;
	pid_t pid;
	int i;

	if (proc_read(opt.mon_pid, &ps) == 0) {
		mon.last = ps.ticks;
		if (ps.rss_kb > mon.rss_max)
			mon.rss_max = ps.rss_kb;
	}
	if (opt.mon_comm == NULL || (d = opendir("/proc")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if ((pid = (pid_t)atoi(de->d_name)) <= 0 ||
		    proc_read(pid, &ps) != 0 || ps.ppid != opt.mon_pid ||
		    strcmp(ps.comm, opt.mon_comm) != 0)
			continue;
		rss += ps.rss_kb;
		for (i = 0; i < mon.n && mon.h[i].pid != pid; i++)
			;
		if (i == mon.n && mon.n < 256) {
			mon.h[mon.n].pid = pid;
			mon.h[mon.n++].base = mon.initial ? ps.ticks : 0;
		}
		if (i < 256)
			mon.h[i].last = ps.ticks;
	}
	closedir(d);
	if (rss > mon.helper_rss_max)
		mon.helper_rss_max = rss;
}

static void *
mon_main(void *arg)
{
	while (!mon.stop) {
		poll(NULL, 0, 50);
		mon_sample();
	}
	return NULL;
}

/* ---- main ------------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
usage(void)
{
	fprintf(stderr, "usage: hclient [-u URL] [-a USER:PASS] [-c THREADS] "
	    "[-d SECONDS] [-n COUNT]\n\t[-s BYTES] [-e MAXENVELOPE] "
	    "[-W PAUSE_MS] [-x COMMAND] [-m PID [-M COMM]] [-N] [-v]\n"
	    "\tidentify|cycle|stream|spawn\n");
	exit(2);
}

static void
parse_url(const char *u)
{
	if (strncmp(u, "http://", 7) != 0 ||
	    sscanf(u + 7, "%63[^:/]:%d%255s", opt.host, &opt.port,
	    opt.path) != 3)
		die("URL must be http://IPV4:PORT/PATH");
}

int
main(int argc, char **argv)
{
	struct worker *w;
	struct proc_sample ps;
	pthread_t mon_tid;
	char cred[256] = "", enc[360];
	struct rusage ru;
	double t0, el, *all;
	size_t n = 0;
	long faults = 0, envs = 0, tick = sysconf(_SC_CLK_TCK), hcpu = 0;
	long long bytes = 0;
	size_t maxenv = 0;
	int ch, k;

	snprintf(opt.host, sizeof(opt.host), "127.0.0.1");
	snprintf(opt.path, sizeof(opt.path), "/wsman");
	while ((ch = getopt(argc, argv, "a:c:d:e:m:M:n:Ns:u:vW:x:")) != -1) {
		switch (ch) {
		case 'a':
			snprintf(cred, sizeof(cred), "%s", optarg);
			b64_encode(cred, strlen(cred), enc);
			snprintf(opt.auth, sizeof(opt.auth),
			    "Authorization: Basic %s\r\n", enc);
			break;
		case 'c': opt.threads = atoi(optarg); break;
		case 'd': opt.seconds = atof(optarg); break;
		case 'e': opt.max_env = atol(optarg); break;
		case 'm': opt.mon_pid = (pid_t)atoi(optarg); break;
		case 'M': opt.mon_comm = optarg; break;
		case 'n': opt.count = atol(optarg); break;
		case 'N': opt.ntlm = true; break;
		case 's': opt.size = atoll(optarg); break;
		case 'u': parse_url(optarg); break;
		case 'v': opt.verbose = true; break;
		case 'W': opt.pause_ms = atoi(optarg); break;
		case 'x': opt.command = optarg; break;
		default: usage();
		}
	}
	if (argc - optind != 1 || opt.threads < 1 || opt.threads > 4096 ||
	    opt.seconds <= 0 || opt.seconds > 3600 || opt.max_env < 1024)
		usage();
	if (opt.command != NULL && (strlen(opt.command) >= 480 ||
	    strpbrk(opt.command, "<&") != NULL))
		die("-x: at most 479 characters, without < or &");
	if (opt.ntlm) {
		char *colon = strchr(cred, ':');

		if (opt.auth[0] == '\0' || colon == NULL)
			die("-N needs -a USER:PASS");
		opt.auth[0] = '\0';	/* no Basic header */
		*colon = '\0';
		snprintf(opt.user, sizeof(opt.user), "%s", cred);
		snprintf(opt.password, sizeof(opt.password), "%s", colon + 1);
		explicit_bzero(cred, sizeof(cred));
		ntlm_init();
	}
	if (strcmp(argv[optind], "identify") == 0)
		opt.mode = M_IDENTIFY;
	else if (strcmp(argv[optind], "cycle") == 0)
		opt.mode = M_CYCLE;
	else if (strcmp(argv[optind], "stream") == 0)
		opt.mode = M_STREAM;
	else if (strcmp(argv[optind], "spawn") == 0)
		opt.mode = M_SPAWN;
	else
		usage();
	signal(SIGPIPE, SIG_IGN);

	if (opt.mon_pid > 0) {
		if (proc_read(opt.mon_pid, &ps) != 0)
			die("cannot read the monitored process");
		mon.base = mon.last = ps.ticks;
		mon.rss_start = mon.rss_max = ps.rss_kb;
		mon.initial = true;
		mon_sample();
		mon.initial = false;
		if (pthread_create(&mon_tid, NULL, mon_main, NULL) != 0)
			die("pthread_create");
	}
	if ((w = calloc((size_t)opt.threads, sizeof(*w))) == NULL)
		die("out of memory");
	t0 = now();
	t_end = t0 + opt.seconds;
	for (k = 0; k < opt.threads; k++) {
		w[k].index = k;
		w[k].left = opt.count / opt.threads +
		    (k < opt.count % opt.threads);
		if (pthread_create(&w[k].tid, NULL, worker_main, &w[k]) != 0)
			die("pthread_create");
	}
	for (k = 0; k < opt.threads; k++) {
		pthread_join(w[k].tid, NULL);
		n += w[k].n;
	}
	el = now() - t0;
	if (opt.mon_pid > 0) {
		mon.stop = true;
		pthread_join(mon_tid, NULL);
		mon_sample();
	}
	if ((all = malloc((n + 1) * sizeof(*all))) == NULL)
		die("out of memory");
	for (n = 0, k = 0; k < opt.threads; k++) {
		memcpy(all + n, w[k].lat, w[k].n * sizeof(*all));
		n += w[k].n;
		faults += w[k].faults;
		bytes += w[k].bytes;
		envs += w[k].envelopes;
		if (w[k].max_envelope > maxenv)
			maxenv = w[k].max_envelope;
		free(w[k].lat);
	}
	qsort(all, n, sizeof(*all), cmp_double);
	printf("mode=%s threads=%d seconds=%.3f ops=%zu rate=%.1f "
	    "p50_ms=%.3f p99_ms=%.3f faults=%ld", argv[optind], opt.threads,
	    el, n, (double)n / el, n ? all[n / 2] / 1e3 : 0,
	    n ? all[(size_t)((double)n * 0.99)] / 1e3 : 0, faults);
	if (opt.mode == M_STREAM)
		printf(" bytes=%lld mbps=%.1f envelopes=%ld max_envelope=%zu",
		    bytes, w[0].stream_s > 0 ? (double)bytes / 1e6 /
		    w[0].stream_s : 0, envs, maxenv);
	if (opt.mon_pid > 0) {
		for (k = 0; k < mon.n; k++)
			hcpu += mon.h[k].last - mon.h[k].base;
		printf(" srv_cpu_s=%.2f helper_cpu_s=%.2f srv_rss_start_kb=%ld "
		    "srv_rss_max_kb=%ld helper_rss_max_kb=%ld helpers=%d",
		    (double)(mon.last - mon.base) / (double)tick,
		    (double)hcpu / (double)tick, mon.rss_start, mon.rss_max,
		    mon.helper_rss_max, mon.n);
	}
	if (opt.ntlm || opt.mode == M_STREAM) {
		getrusage(RUSAGE_SELF, &ru);
		printf(" cli_cpu_s=%.2f", (double)(ru.ru_utime.tv_sec +
		    ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec +
		    ru.ru_stime.tv_usec) / 1e6);
	}
	printf("\n");
	free(all);
	free(w);
	return faults > 0 ? 3 : 0;
}
