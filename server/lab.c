#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/pkcs12.h>
#include <gnutls/x509.h>
#include <gssapi/gssapi.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "err.h"
#include "lab.h"
#include "log.h"
#include "misc.h"
#include "store.h"

#define LAB_USER	"lab"
#define PASSWORD_LEN	20
#define DAY		86400L
#define LAB_JSON_FORMAT	1

static char *
path_in(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

int
wrm_lab_write_file(const char *path, const void *data, size_t len,
    mode_t mode)
{
	char *tmp;
	int fd, r = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return WRM_ERR_ALLOC;
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    mode);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || fsync(fd) != 0)
		r = WRM_ERR_SYSTEM;
	if (fd >= 0)
		close(fd);
	if (r == 0 && rename(tmp, path) != 0)
		r = WRM_ERR_SYSTEM;
	if (r != 0)
		unlink(tmp);
	free(tmp);
	return r;
}

char *
wrm_lab_read_small(const char *path)
{
	char buf[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

/* The string value of "key" in a flat JSON object we wrote ourselves. */
static char *
json_string(const char *json, const char *key)
{
	char pat[64];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	if (json == NULL || (p = strstr(json, pat)) == NULL)
		return NULL;
	p += strlen(pat);
	if ((e = strchr(p, '"')) == NULL)
		return NULL;
	return strndup(p, (size_t)(e - p));
}

static char *
new_password(void)
{
	static const char alphabet[] =
	    "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
	uint8_t rnd[PASSWORD_LEN];
	char *p = malloc(PASSWORD_LEN + 1);
	size_t i;

	if (p == NULL)
		return NULL;
	wrm_random(rnd, sizeof(rnd));
	for (i = 0; i < PASSWORD_LEN; i++)
		p[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
	p[PASSWORD_LEN] = '\0';
	return p;
}

static bool
missing(const char *path)
{
	struct stat sb;

	return path == NULL || stat(path, &sb) != 0;
}

/* -- the listeners' scenarios ------------------------------------------ */

/*
 * What a client does to pass or fail a listener's check.  <ca_file>,
 * <crl_file> and <certificate> stand for the lab.json values (the last is
 * the listener's own "certificate").
 */
struct client_opt {
	const char *client;
	const char *options;
};

struct scenario {
	const char *name;	/* lab.json "scenario" */
	const char *listener;	/* [Listener NAME] */
	const char *file;	/* DIR/FILE.pem, DIR/FILE-key.pem; NULL: own */
	int offset;		/* --port P puts it on P + offset */
	const char *description;
	const struct client_opt *passes;
	const struct client_opt *fails;
};

#define IGNORING_CLIENTS \
	{ "pywinrm", "server_cert_validation='ignore' (pywinrm 0.3.0 " \
	    "validates anyway while REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is " \
	    "set)" }, \
	{ "pypsrp", "cert_validation=False" }, \
	{ "go-winrm", "NewEndpoint(host, port, true, true, nil, nil, nil, " \
	    "0): insecure" }, \
	{ "ruby-winrm", "transport: :ssl, no_ssl_peer_verification: true" }, \
	{ "ansible", "ansible_winrm_server_cert_validation=ignore" }, \
	{ "curl", "--insecure" }

static const struct client_opt http_passes[] = {
	{ "pywinrm", "transport='basic', 'ntlm' or 'kerberos'" },
	{ "pypsrp", "ssl=False; auth='basic' with encryption='never', or "
	    "auth='ntlm', 'negotiate' or 'kerberos'" },
	{ "go-winrm", "NewEndpoint(host, port, false, false, nil, nil, nil, "
	    "0): Basic; NTLM with NewClientNTLMWithDial as the "
	    "TransportDecorator" },
	{ "ruby-winrm", "transport: :plaintext, basic_auth_only: true; or "
	    ":negotiate; or :kerberos" },
	{ "ansible", "ansible_winrm_scheme=http with "
	    "ansible_winrm_transport=ntlm or kerberos, or basic with "
	    "ansible_winrm_message_encryption=never" },
	{ "powershell", "-Authentication Negotiate with the host in the "
	    "client's TrustedHosts; -Authentication Basic also needs "
	    "WSMan:\\localhost\\Client\\AllowUnencrypted = true" },
	{ NULL, NULL }
};

static const struct client_opt http_fails[] = {
	{ "powershell", "-Authentication Negotiate or Basic to a host that is "
	    "not in TrustedHosts: the client refuses before it connects" },
	{ "powershell", "-Authentication Basic without the client's "
	    "AllowUnencrypted = true" },
	{ NULL, NULL }
};

static const struct client_opt valid_passes[] = {
	{ "pywinrm", "server_cert_validation='validate', "
	    "ca_trust_path=<ca_file>" },
	{ "pypsrp", "ssl=True, cert_validation=<ca_file>" },
	{ "go-winrm", "NewEndpoint(host, port, true, false, <ca_file> "
	    "contents, nil, nil, 0)" },
	{ "ruby-winrm", "transport: :ssl, ca_trust_path: <ca_file>" },
	{ "ansible", "ansible_winrm_server_cert_validation=validate, "
	    "ansible_winrm_ca_trust_path=<ca_file>" },
	{ "powershell", "-UseSSL with the lab CA in Cert:\\LocalMachine\\Root "
	    "and either <crl_file> in the intermediate store (certutil "
	    "-addstore CA) or New-PSSessionOption -SkipRevocationCheck" },
	{ "curl", "--cacert <ca_file>, with or without --crlfile "
	    "<crl_file>" },
	{ "python-ssl", "ssl.create_default_context(cafile=<ca_file>), also "
	    "with <crl_file> loaded and VERIFY_CRL_CHECK_LEAF" },
	{ NULL, NULL }
};

static const struct client_opt valid_fails[] = {
	{ "any", "default validation against the system's trusted CAs, which "
	    "do not include the lab CA: unable to get local issuer "
	    "certificate (OpenSSL), certificate signed by unknown authority "
	    "(Go)" },
	{ NULL, NULL }
};

static const struct client_opt wrong_name_passes[] = {
	IGNORING_CLIENTS,
	{ "powershell", "New-PSSessionOption -SkipCNCheck (and -SkipCACheck "
	    "unless the lab CA is trusted)" },
	{ "python-ssl", "cafile=<ca_file> with check_hostname=False" },
	{ NULL, NULL }
};

static const struct client_opt wrong_name_fails[] = {
	{ "pywinrm", "server_cert_validation='validate', "
	    "ca_trust_path=<ca_file>: hostname '127.0.0.1' doesn't match "
	    "'wrong-name.invalid' (urllib3 1.x; with urllib3 2, OpenSSL's IP "
	    "address mismatch or Hostname mismatch)" },
	{ "go-winrm", "<ca_file>, insecure false: x509: cannot validate "
	    "certificate for 127.0.0.1 because it doesn't contain any IP SANs "
	    "(by name: certificate is valid for wrong-name.invalid)" },
	{ "curl", "--cacert <ca_file>: no alternative certificate subject "
	    "name matches" },
	{ "powershell", "-UseSSL without -SkipCNCheck: the certificate's "
	    "name does not match the host name" },
	{ NULL, NULL }
};

static const struct client_opt expired_passes[] = {
	IGNORING_CLIENTS,
	{ NULL, NULL }
};

static const struct client_opt expired_fails[] = {
	{ "pywinrm", "server_cert_validation='validate', "
	    "ca_trust_path=<ca_file>: certificate verify failed: certificate "
	    "has expired" },
	{ "go-winrm", "<ca_file>, insecure false: x509: certificate has "
	    "expired or is not yet valid" },
	{ "curl", "--cacert <ca_file>: certificate has expired" },
	{ "powershell", "-UseSSL: no New-PSSessionOption switch is documented "
	    "to accept an expired certificate (-SkipCACheck, -SkipCNCheck and "
	    "-SkipRevocationCheck cover the other checks)" },
	{ NULL, NULL }
};

static const struct client_opt self_signed_passes[] = {
	IGNORING_CLIENTS,
	{ "pywinrm", "server_cert_validation='validate', "
	    "ca_trust_path=<certificate>: the certificate itself trusted" },
	{ "go-winrm", "<certificate> contents as the CA" },
	{ "powershell", "New-PSSessionOption -SkipCACheck" },
	{ NULL, NULL }
};

static const struct client_opt self_signed_fails[] = {
	{ "pywinrm", "server_cert_validation='validate', "
	    "ca_trust_path=<ca_file>: certificate verify failed: self-signed "
	    "certificate" },
	{ "go-winrm", "<ca_file>, insecure false: x509: certificate signed by "
	    "unknown authority" },
	{ "curl", "--cacert <ca_file>: self-signed certificate" },
	{ "powershell", "-UseSSL without -SkipCACheck: the certificate is not "
	    "from a trusted authority" },
	{ NULL, NULL }
};

static const struct client_opt revoked_passes[] = {
	{ "pywinrm", "server_cert_validation='validate', "
	    "ca_trust_path=<ca_file>: requests does not check revocation" },
	{ "pypsrp", "cert_validation=<ca_file>: no revocation check" },
	{ "go-winrm", "<ca_file>, insecure false: crypto/tls does not check "
	    "revocation" },
	{ "ruby-winrm", "ca_trust_path: <ca_file>: OpenSSL without a CRL" },
	{ "ansible", "ansible_winrm_ca_trust_path=<ca_file> (pywinrm)" },
	{ "curl", "--cacert <ca_file> without --crlfile" },
	{ "powershell", "New-PSSessionOption -SkipRevocationCheck, with the "
	    "lab CA trusted" },
	{ NULL, NULL }
};

static const struct client_opt revoked_fails[] = {
	{ "python-ssl", "cafile=<ca_file>, load_verify_locations(<crl_file>), "
	    "verify_flags |= VERIFY_CRL_CHECK_LEAF: certificate verify failed: "
	    "certificate revoked" },
	{ "curl", "--cacert <ca_file> --crlfile <crl_file>: certificate "
	    "revoked" },
	{ "powershell", "-UseSSL without -SkipRevocationCheck: revoked once "
	    "<crl_file> is in the client's intermediate store; otherwise the "
	    "check cannot complete (the distribution point is a file on the "
	    "lab host), which fails as well" },
	{ NULL, NULL }
};

static const struct scenario scenarios[] = {
	{ "http", "HTTP", NULL, 0,
	  "Plain HTTP: Basic (the lab allows unencrypted messages), Negotiate "
	  "(NTLM, and Kerberos when the lab realm runs) and Kerberos, with or "
	  "without message encryption.",
	  http_passes, http_fails },
	{ "valid", "HTTPS", NULL, 1,
	  "HTTPS with a certificate from the lab CA for localhost, the host "
	  "name, 127.0.0.1 and ::1.  Also accepts the lab user's client "
	  "certificate.",
	  valid_passes, valid_fails },
	{ "wrong-name", "HTTPS-wrong-name", "wrong-name", 2,
	  "HTTPS with a certificate from the lab CA for wrong-name.invalid "
	  "only: the name check fails whatever name or address the client "
	  "uses.",
	  wrong_name_passes, wrong_name_fails },
	{ "expired", "HTTPS-expired", "expired", 3,
	  "HTTPS with a certificate from the lab CA, with the valid "
	  "listener's names, that was valid from 60 to 30 days ago.",
	  expired_passes, expired_fails },
	{ "self-signed", "HTTPS-self-signed", "self-signed", 4,
	  "HTTPS with a self-signed certificate, with the valid listener's "
	  "names, not issued by the lab CA.",
	  self_signed_passes, self_signed_fails },
	{ "revoked", "HTTPS-revoked", "revoked", 5,
	  "HTTPS with a certificate from the lab CA, with the valid "
	  "listener's names, that the lab CRL (<crl_file>, also named by the "
	  "certificate's CRL distribution point) lists as revoked.  Only "
	  "clients that check revocation notice.",
	  revoked_passes, revoked_fails },
};

#define N_SCENARIOS	(sizeof(scenarios) / sizeof(scenarios[0]))

static const struct scenario *
scenario_of(const char *listener)
{
	size_t i;

	for (i = 0; i < N_SCENARIOS; i++)
		if (strcasecmp(scenarios[i].listener, listener) == 0)
			return &scenarios[i];
	return NULL;
}

/* -- certificates ------------------------------------------------------ */

enum cert_kind { CERT_CA, CERT_SERVER, CERT_CLIENT };

struct cert_spec {
	enum cert_kind kind;
	const char *cn;
	bool only_cn;		/* no other names */
	long from_days;		/* validity, relative to now */
	long to_days;
	const char *crl_url;	/* CRL distribution point, or NULL */
	bool ec;		/* ECDSA P-256 (quick to make), else RSA 2048 */
};

/* A DER UTF8String (short lengths only: names here are small). */
static int
der_utf8(const char *s, unsigned char *out, size_t outlen, size_t *len_r)
{
	size_t n = strlen(s);

	if (n > 127 || n + 2 > outlen)
		return WRM_ERR_LIMIT;
	out[0] = 0x0c;
	out[1] = (unsigned char)n;
	memcpy(out + 2, s, n);
	*len_r = n + 2;
	return 0;
}

static int
set_names(gnutls_x509_crt_t crt, const struct cert_spec *s)
{
	unsigned char ip4[4] = { 127, 0, 0, 1 }, ip6[16] = { 0 }, upn[130];
	const char *cn = s->cn;
	char host[256];
	size_t ul;

	if (gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    cn, (unsigned)strlen(cn)) < 0)
		return WRM_ERR_INTERNAL;
	if (s->kind == CERT_CA)
		return gnutls_x509_crt_set_dn_by_oid(crt,
		    GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "winrmd lab", 10) < 0 ?
		    WRM_ERR_INTERNAL : 0;
	if (s->kind == CERT_CLIENT) {
		/* The UPN a certificate mapping matches, as Windows wants. */
		char name[200];

		snprintf(name, sizeof(name), "%s@localhost", cn);
		if (der_utf8(name, upn, sizeof(upn), &ul) != 0 ||
		    gnutls_x509_crt_set_subject_alt_othername(crt,
		    "1.3.6.1.4.1.311.20.2.3", upn, (unsigned)ul,
		    GNUTLS_FSAN_APPEND) < 0)
			return WRM_ERR_INTERNAL;
		return 0;
	}
	if (gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, cn,
	    (unsigned)strlen(cn), GNUTLS_FSAN_APPEND) < 0)
		return WRM_ERR_INTERNAL;
	if (s->only_cn)
		return 0;
	ip6[15] = 1;
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	if ((strcmp(host, cn) != 0 &&
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host,
	    (unsigned)strlen(host), GNUTLS_FSAN_APPEND) < 0) ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip4,
	    sizeof(ip4), GNUTLS_FSAN_APPEND) < 0 ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip6,
	    sizeof(ip6), GNUTLS_FSAN_APPEND) < 0)
		return WRM_ERR_INTERNAL;
	return 0;
}

/* Subject and authority key identifiers, which Windows chains by. */
static int
set_key_ids(gnutls_x509_crt_t crt, gnutls_x509_crt_t ca)
{
	unsigned char id[64];
	size_t len = sizeof(id);
	unsigned crit;

	if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id,
	    &len) < 0 || gnutls_x509_crt_set_subject_key_id(crt, id, len) < 0)
		return WRM_ERR_INTERNAL;
	len = sizeof(id);
	if (ca != NULL && gnutls_x509_crt_get_subject_key_id(ca, id, &len,
	    &crit) >= 0 &&
	    gnutls_x509_crt_set_authority_key_id(crt, id, len) < 0)
		return WRM_ERR_INTERNAL;
	return 0;
}

/*
 * Generate a key and a certificate as spec says, signed by ca/ca_key
 * (self-signed when ca is NULL), and write both as PEM.  The objects are
 * returned when crt_r/key_r are not NULL.
 */
static int
make_cert(const struct cert_spec *spec, gnutls_x509_crt_t ca,
    gnutls_x509_privkey_t ca_key, const char *cert_path,
    const char *key_path, gnutls_x509_crt_t *crt_r,
    gnutls_x509_privkey_t *key_r)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t out = { NULL, 0 };
	unsigned char serial[16];
	time_t now = time(NULL);
	time_t from = spec->from_days != 0 ? now + spec->from_days * DAY :
	    now - 3600;
	time_t to = now + (spec->to_days != 0 ? spec->to_days : 825) * DAY;
	unsigned usage = spec->kind == CERT_CA ? GNUTLS_KEY_KEY_CERT_SIGN |
	    GNUTLS_KEY_CRL_SIGN | GNUTLS_KEY_DIGITAL_SIGNATURE :
	    spec->ec ? GNUTLS_KEY_DIGITAL_SIGNATURE :
	    GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT;
	int r = WRM_ERR_INTERNAL;

	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_privkey_generate(key, spec->ec ? GNUTLS_PK_ECDSA :
	    GNUTLS_PK_RSA, spec->ec ? GNUTLS_CURVE_TO_BITS(
	    GNUTLS_ECC_CURVE_SECP256R1) : 2048, 0) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0)
		goto out;
	wrm_random(serial, sizeof(serial));
	serial[0] &= 0x7f;
	serial[0] |= 0x01;
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, from) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, to) < 0 ||
	    set_names(crt, spec) != 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    set_key_ids(crt, ca) != 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, spec->kind == CERT_CA,
	    -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, usage) < 0 ||
	    (spec->kind != CERT_CA && gnutls_x509_crt_set_key_purpose_oid(crt,
	    spec->kind == CERT_SERVER ? GNUTLS_KP_TLS_WWW_SERVER :
	    GNUTLS_KP_TLS_WWW_CLIENT, 0) < 0) ||
	    (spec->crl_url != NULL && gnutls_x509_crt_set_crl_dist_points(crt,
	    GNUTLS_SAN_URI, spec->crl_url, 0) < 0) ||
	    gnutls_x509_crt_sign2(crt, ca != NULL ? ca : crt,
	    ca_key != NULL ? ca_key : key, GNUTLS_DIG_SHA256, 0) < 0)
		goto out;
	if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &out) < 0)
		goto out;
	r = wrm_lab_write_file(key_path, out.data, out.size, 0600);
	gnutls_memset(out.data, 0, out.size);
	gnutls_free(out.data);
	out.data = NULL;
	if (r != 0)
		goto out;
	r = WRM_ERR_INTERNAL;
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out) < 0)
		goto out;
	r = wrm_lab_write_file(cert_path, out.data, out.size, 0644);
	if (r == 0 && crt_r != NULL) {
		*crt_r = crt;
		crt = NULL;
	}
	if (r == 0 && key_r != NULL) {
		*key_r = key;
		key = NULL;
	}
out:
	gnutls_free(out.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return r;
}

static int
load_crt(const char *path, gnutls_x509_crt_t *crt_r)
{
	gnutls_datum_t d = { NULL, 0 };
	int r;

	*crt_r = NULL;
	if (gnutls_load_file(path, &d) < 0)
		return WRM_ERR_NOT_FOUND;
	r = gnutls_x509_crt_init(crt_r) < 0 ||
	    gnutls_x509_crt_import(*crt_r, &d, GNUTLS_X509_FMT_PEM) < 0 ?
	    WRM_ERR_PARSE : 0;
	gnutls_free(d.data);
	if (r != 0 && *crt_r != NULL) {
		gnutls_x509_crt_deinit(*crt_r);
		*crt_r = NULL;
	}
	return r;
}

static int
load_key(const char *path, gnutls_x509_privkey_t *key_r)
{
	gnutls_datum_t d = { NULL, 0 };
	int r;

	*key_r = NULL;
	if (gnutls_load_file(path, &d) < 0)
		return WRM_ERR_NOT_FOUND;
	r = gnutls_x509_privkey_init(key_r) < 0 ||
	    gnutls_x509_privkey_import(*key_r, &d, GNUTLS_X509_FMT_PEM) < 0 ?
	    WRM_ERR_PARSE : 0;
	gnutls_memset(d.data, 0, d.size);
	gnutls_free(d.data);
	if (r != 0 && *key_r != NULL) {
		gnutls_x509_privkey_deinit(*key_r);
		*key_r = NULL;
	}
	return r;
}

/* "file:///abs/DIR/ca.crl", percent-encoding what a URI path may not hold. */
static char *
file_url(const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	struct wrm_buf b;
	const unsigned char *p;
	char *abs = realpath(path, NULL), *s;

	if (abs == NULL)
		return NULL;
	wrm_buf_init(&b, 0);
	wrm_buf_puts(&b, "file://");
	for (p = (const unsigned char *)abs; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/-._~", *p) != NULL)
			wrm_buf_putc(&b, (char)*p);
		else {
			wrm_buf_putc(&b, '%');
			wrm_buf_putc(&b, hex[*p >> 4]);
			wrm_buf_putc(&b, hex[*p & 15]);
		}
	}
	wrm_buf_puts(&b, "/ca.crl");
	free(abs);
	s = strdup(wrm_buf_str(&b));
	wrm_buf_free(&b);
	return s;
}

static int
write_certmap(const struct wrm_lab *lab, gnutls_x509_crt_t ca)
{
	unsigned char d[20];
	size_t dl = sizeof(d), i;
	char thumb[41], *text;
	int r;

	if (gnutls_x509_crt_get_fingerprint(ca, GNUTLS_DIG_SHA1, d, &dl) < 0)
		return WRM_ERR_INTERNAL;
	for (i = 0; i < dl; i++)
		snprintf(thumb + 2 * i, 3, "%02X", d[i]);
	if (asprintf(&text,
	    "# Generated with the lab certificates: the lab user's client\n"
	    "# certificate (%s) maps to the lab user.\n"
	    "[CertificateMapping lab]\n"
	    "Subject = %s@localhost\n"
	    "Issuer = %s\n"
	    "UserName = %s\n", lab->client_cert, lab->user, thumb,
	    lab->user) < 0)
		return WRM_ERR_ALLOC;
	r = wrm_lab_write_file(lab->certmap, text, strlen(text), 0644);
	free(text);
	return r;
}

/*
 * The lab CA's CRL, listing the revoked listener's certificate.  Written
 * at every start, so that it never expires under a lab in use.
 */
static int
make_crl(const struct wrm_lab *lab, gnutls_x509_crt_t ca,
    gnutls_x509_privkey_t ca_key)
{
	gnutls_x509_crl_t crl = NULL;
	gnutls_x509_crt_t rev = NULL;
	gnutls_datum_t out = { NULL, 0 };
	unsigned char id[64], num[8];
	size_t len = sizeof(id), i;
	time_t now = time(NULL);
	char *rev_path;
	unsigned crit;
	int r;

	if ((rev_path = path_in(lab->dir, "revoked.pem")) == NULL)
		return WRM_ERR_ALLOC;
	r = load_crt(rev_path, &rev);
	free(rev_path);
	if (r != 0)
		return r;
	for (i = 0; i < sizeof(num); i++)
		num[i] = (unsigned char)((uint64_t)now >> (56 - 8 * i));
	r = WRM_ERR_INTERNAL;
	if (gnutls_x509_crl_init(&crl) < 0 ||
	    gnutls_x509_crl_set_version(crl, 2) < 0 ||
	    gnutls_x509_crl_set_this_update(crl, now - 3600) < 0 ||
	    gnutls_x509_crl_set_next_update(crl, now + 365 * DAY) < 0 ||
	    gnutls_x509_crl_set_crt(crl, rev, now - 3600) < 0 ||
	    gnutls_x509_crl_set_number(crl, num, sizeof(num)) < 0)
		goto out;
	if (gnutls_x509_crt_get_subject_key_id(ca, id, &len, &crit) >= 0 &&
	    gnutls_x509_crl_set_authority_key_id(crl, id, len) < 0)
		goto out;
	if (gnutls_x509_crl_sign2(crl, ca, ca_key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &out) < 0)
		goto out;
	r = wrm_lab_write_file(lab->crl, out.data, out.size, 0644);
out:
	gnutls_free(out.data);
	if (crl != NULL)
		gnutls_x509_crl_deinit(crl);
	gnutls_x509_crt_deinit(rev);
	return r;
}

/* lab->client_thumb: what Windows' -CertificateThumbprint takes. */
static int
client_thumbprint(struct wrm_lab *lab)
{
	gnutls_x509_crt_t crt;
	unsigned char d[20];
	size_t dl = sizeof(d), i;
	int r;

	if ((r = load_crt(lab->client_cert, &crt)) != 0)
		return r;
	if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA1, d, &dl) < 0)
		r = WRM_ERR_INTERNAL;
	for (i = 0; r == 0 && i < dl && i < 20; i++)
		snprintf(lab->client_thumb + 2 * i, 3, "%02X", d[i]);
	gnutls_x509_crt_deinit(crt);
	return r;
}

/*
 * client.pfx: the lab user's certificate, its key and the lab CA in
 * PKCS#12, protected by the lab password with PKCS#12 3DES and a SHA-1
 * MAC, which every Windows version imports.  Deriving the keys takes a
 * while, so it is written only when the certificate or the password is
 * new.
 */
static int
make_pfx(struct wrm_lab *lab, gnutls_x509_crt_t ca)
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_x509_privkey_t key = NULL;
	gnutls_pkcs12_t p12 = NULL;
	gnutls_pkcs12_bag_t cbag = NULL, kbag = NULL;
	gnutls_datum_t out = { NULL, 0 }, kid;
	unsigned char id[64];
	size_t len = sizeof(id);
	int r, ci, ki;

	if ((r = load_crt(lab->client_cert, &crt)) != 0)
		return r;
	if ((r = load_key(lab->client_key, &key)) != 0)
		goto out;
	r = WRM_ERR_INTERNAL;
	if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id,
	    &len) < 0)
		goto out;
	kid.data = id;
	kid.size = (unsigned)len;
	if (gnutls_pkcs12_bag_init(&cbag) < 0 ||
	    (ci = gnutls_pkcs12_bag_set_crt(cbag, crt)) < 0 ||
	    gnutls_pkcs12_bag_set_key_id(cbag, (unsigned)ci, &kid) < 0 ||
	    gnutls_pkcs12_bag_set_friendly_name(cbag, (unsigned)ci,
	    "winrmd lab client") < 0 ||
	    gnutls_pkcs12_bag_set_crt(cbag, ca) < 0 ||
	    gnutls_pkcs12_bag_encrypt(cbag, lab->password,
	    GNUTLS_PKCS_PKCS12_3DES) < 0)
		goto out;
	if (gnutls_pkcs12_bag_init(&kbag) < 0 ||
	    (ki = gnutls_pkcs12_bag_set_privkey(kbag, key, lab->password,
	    GNUTLS_PKCS_PKCS12_3DES)) < 0 ||
	    gnutls_pkcs12_bag_set_key_id(kbag, (unsigned)ki, &kid) < 0 ||
	    gnutls_pkcs12_bag_set_friendly_name(kbag, (unsigned)ki,
	    "winrmd lab client") < 0)
		goto out;
	if (gnutls_pkcs12_init(&p12) < 0 ||
	    gnutls_pkcs12_set_bag(p12, cbag) < 0 ||
	    gnutls_pkcs12_set_bag(p12, kbag) < 0 ||
	    gnutls_pkcs12_generate_mac2(p12, GNUTLS_MAC_SHA1,
	    lab->password) < 0 ||
	    gnutls_pkcs12_export2(p12, GNUTLS_X509_FMT_DER, &out) < 0)
		goto out;
	r = wrm_lab_write_file(lab->pfx, out.data, out.size, 0600);
out:
	gnutls_free(out.data);
	if (p12 != NULL)
		gnutls_pkcs12_deinit(p12);
	if (cbag != NULL)
		gnutls_pkcs12_bag_deinit(cbag);
	if (kbag != NULL)
		gnutls_pkcs12_bag_deinit(kbag);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	gnutls_x509_crt_deinit(crt);
	return r;
}

/*
 * The lab's certificates: a CA; the HTTPS listener's certificate for
 * localhost signed by it; a client certificate for the lab user (UPN
 * user@localhost) that the generated certificate mapping accepts; one
 * certificate per failing scenario; the CRL; the PKCS#12 file.  Files that
 * are missing are made again with the CA there is; a missing or broken CA
 * makes everything anew (the mapping names the CA by thumbprint).
 */
static int
make_certs(struct wrm_lab *lab)
{
	static const struct cert_spec ca_spec = { CERT_CA, "winrmd lab CA",
		false, 0, 0, NULL, false };
	gnutls_x509_crt_t ca = NULL;
	gnutls_x509_privkey_t ca_key = NULL;
	char *ca_key_path, *crl_url = NULL, *cp = NULL, *kp = NULL;
	bool fresh = false, new_client = false;
	size_t i;
	int r;

	if ((ca_key_path = path_in(lab->dir, "ca-key.pem")) == NULL)
		return WRM_ERR_ALLOC;
	if (load_crt(lab->ca, &ca) != 0 ||
	    load_key(ca_key_path, &ca_key) != 0) {
		if (ca != NULL)
			gnutls_x509_crt_deinit(ca);
		ca = NULL;
		fresh = true;
		r = make_cert(&ca_spec, NULL, NULL, lab->ca, ca_key_path, &ca,
		    &ca_key);
		if (r != 0) {
			error_fr(r, "lab: cannot create the lab CA");
			goto out;
		}
		logit("lab: created a new lab CA, %s", lab->ca);
	}
	if ((crl_url = file_url(lab->dir)) == NULL) {
		r = WRM_ERR_ALLOC;
		goto out;
	}
	if (fresh || missing(lab->cert) || missing(lab->key)) {
		struct cert_spec s = { CERT_SERVER, "localhost", false, 0, 0,
			crl_url, false };

		if ((r = make_cert(&s, ca, ca_key, lab->cert, lab->key, NULL,
		    NULL)) != 0)
			goto out;
	}
	if (fresh || missing(lab->client_cert) || missing(lab->client_key)) {
		struct cert_spec s = { CERT_CLIENT, lab->user, false, 0, 0,
			NULL, false };

		if ((r = make_cert(&s, ca, ca_key, lab->client_cert,
		    lab->client_key, NULL, NULL)) != 0)
			goto out;
		new_client = true;
	}
	for (i = 0; i < N_SCENARIOS; i++) {
		const struct scenario *sc = &scenarios[i];
		struct cert_spec s = { CERT_SERVER, "localhost", false, 0, 0,
			crl_url, true };
		bool self = false;

		if (sc->file == NULL)
			continue;
		free(cp);
		free(kp);
		if (asprintf(&cp, "%s/%s.pem", lab->dir, sc->file) < 0 ||
		    asprintf(&kp, "%s/%s-key.pem", lab->dir, sc->file) < 0) {
			cp = kp = NULL;
			r = WRM_ERR_ALLOC;
			goto out;
		}
		if (!fresh && !missing(cp) && !missing(kp))
			continue;
		if (strcmp(sc->name, "wrong-name") == 0) {
			s.cn = "wrong-name.invalid";
			s.only_cn = true;
		} else if (strcmp(sc->name, "expired") == 0) {
			s.from_days = -60;
			s.to_days = -30;
		} else if (strcmp(sc->name, "self-signed") == 0) {
			self = true;
			s.crl_url = NULL;
		}
		if ((r = make_cert(&s, self ? NULL : ca, self ? NULL : ca_key,
		    cp, kp, NULL, NULL)) != 0)
			goto out;
	}
	if ((fresh || missing(lab->certmap)) &&
	    (r = write_certmap(lab, ca)) != 0)
		goto out;
	if ((r = make_crl(lab, ca, ca_key)) != 0) {
		error_fr(r, "lab: cannot write %s", lab->crl);
		goto out;
	}
	if ((r = client_thumbprint(lab)) != 0) {
		error_fr(r, "lab: cannot read %s", lab->client_cert);
		goto out;
	}
	if ((new_client || lab->password_new || missing(lab->pfx)) &&
	    (r = make_pfx(lab, ca)) != 0) {
		/* Optional: the PEM files are what most clients use. */
		error_fr(r, "lab: cannot write %s", lab->pfx);
		unlink(lab->pfx);
		r = 0;
	}
out:
	free(cp);
	free(kp);
	free(crl_url);
	free(ca_key_path);
	if (ca != NULL)
		gnutls_x509_crt_deinit(ca);
	if (ca_key != NULL)
		gnutls_x509_privkey_deinit(ca_key);
	return r;
}

/* -- configuration ----------------------------------------------------- */

#define RUN_CONF_INCLUDE \
	"# lab-run.conf is rewritten at every start: the certificate\n" \
	"# scenario listeners with this run's ports, and the Kerberos\n" \
	"# keytab while the lab realm runs.  Override them in\n" \
	"# sessions.d/*.conf.\n" \
	"Include = lab-run.conf\n"

static int
write_config(const struct wrm_lab *lab)
{
	char *text;
	int r, http = lab->port >= 0 ? lab->port : 5985;
	int https = lab->port > 0 ? lab->port + 1 : lab->port == 0 ? 0 : 5986;

	if (asprintf(&text,
	    "# winrmd lab configuration (generated by winrmd --lab).\n"
	    "# Loopback only; Basic authentication over plain HTTP is\n"
	    "# allowed here, which a production endpoint must not do.\n"
	    "\n[Service]\n"
	    "StateDirectory = %s\n"
	    "UserMode = true\n"
	    "AllowUnencrypted = true\n"
	    "LogLevel = INFO\n"
	    "\n[Service/Auth]\n"
	    "Basic = true\n"
	    "Certificate = true\n"
	    "\n[Listener HTTP]\n"
	    "Address = 127.0.0.1\n"
	    "Port = %d\n"
	    "Transport = HTTP\n"
	    "\n[Listener HTTPS]\n"
	    "Address = 127.0.0.1\n"
	    "Port = %d\n"
	    "Transport = HTTPS\n"
	    "CertificateFile = %s\n"
	    "KeyFile = %s\n"
	    "ClientCAFile = %s\n"
	    "\n" RUN_CONF_INCLUDE
	    "Include = certmapping.conf\n"
	    "Include = sessions.d/*.conf\n",
	    lab->dir, http, https, lab->cert, lab->key, lab->ca) < 0)
		return WRM_ERR_ALLOC;
	r = wrm_lab_write_file(lab->config, text, strlen(text), 0644);
	free(text);
	return r;
}

/*
 * A winrmd.conf from before lab-run.conf existed gets its Include, before
 * that of sessions.d as in a new one (or at the end).  A file that names
 * lab-run.conf at all, even in a comment, is left as it is.
 */
static int
upgrade_config(const struct wrm_lab *lab)
{
	char *text = wrm_lab_read_small(lab->config), *n, *at;
	size_t head;
	int r;

	if (text == NULL || strstr(text, "lab-run.conf") != NULL) {
		free(text);
		return 0;
	}
	at = strstr(text, "\nInclude = sessions.d/");
	head = at != NULL ? (size_t)(at - text) + 1 : strlen(text);
	if (asprintf(&n, "%.*s%s\n# Added by a later winrmd --lab.\n"
	    RUN_CONF_INCLUDE "%s", (int)head, text, head > 0 &&
	    text[head - 1] != '\n' ? "\n" : "", text + head) < 0) {
		free(text);
		return WRM_ERR_ALLOC;
	}
	free(text);
	r = wrm_lab_write_file(lab->config, n, strlen(n), 0644);
	free(n);
	if (r == 0)
		logit("lab: %s now includes lab-run.conf", lab->config);
	return r;
}

/* Whether a listener could bind 127.0.0.1:port now (as MHD binds). */
static bool
port_free(int port)
{
	struct sockaddr_in a;
	int s, one = 1;
	bool ok;

	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return true;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 ||
	    errno != EADDRINUSE;
	close(s);
	return ok;
}

/*
 * PORT + offset, or with --port 0 a free port.  A scenario port something
 * else holds gets a free port instead: the lab must start, and lab.json
 * has the real URLs.
 */
static int
scenario_port(const struct wrm_lab *lab, const struct scenario *sc)
{
	int port;

	if (lab->port == 0)
		return 0;
	port = (lab->port > 0 ? lab->port : 5985) + sc->offset;
	if (!port_free(port)) {
		logit("lab: port %d is in use; listener %s gets a free port",
		    port, sc->listener);
		return 0;
	}
	return port;
}

/*
 * The redirections and injected failures the lab offers.  The faults are
 * chosen by a request header, so that ordinary requests never meet them.
 */
static const struct lab_redirect {
	const char *name, *path, *location, *purpose;
	unsigned status, hops;
} lab_redirects[] = {
	{ "lab-once", "/wsman-redirect", "", "one 307 to this listener's "
	    "/wsman", 307, 1 },
	{ "lab-chain", "/wsman-redirect/chain", "", "three 307s, then "
	    "/wsman: a client allowing fewer than 3 redirections stops",
	    307, 3 },
	{ "lab-too-many", "/wsman-redirect/too-many", "", "six 307s: more "
	    "than PowerShell's default MaximumConnectionRedirectionCount (5)",
	    307, 6 },
	{ "lab-https", "/wsman-redirect/https", "listener:HTTPS", "one 307 "
	    "from HTTP to the HTTPS listener", 307, 1 },
};

#define FAULT_HEADER	"X-Winrmd-Fault"

static const struct lab_fault {
	const char *value, *kind, *settings, *purpose;
} lab_faults[] = {
	{ "delay", "delay", "DelayMs = 3000", "the answer comes 3 s late" },
	{ "timeout", "timeout", NULL, "w:TimedOut (2150858793) at once, as "
	    "when OperationTimeout passes" },
	{ "access-denied", "fault", "FaultCode = 5\nMessage = Access is "
	    "denied.", "a w:AccessDenied fault, code 5" },
	{ "quota", "quota", NULL, "the operations quota fault (2150859174) "
	    "with its MSFT_WmiError detail" },
	{ "http-503", "http", "HttpStatus = 503", "HTTP 503 without a body" },
	{ "http-500", "http", "HttpStatus = 500", "HTTP 500 without a body" },
	{ "reset", "reset", NULL, "half the answer, then the connection "
	    "closes" },
	{ "trickle", "trickle", "TrickleBytes = 64\nDelayMs = 20",
	    "the answer in 64-byte pieces, 20 ms apart" },
};

#define N_LAB_REDIRECTS	(sizeof(lab_redirects) / sizeof(lab_redirects[0]))
#define N_LAB_FAULTS	(sizeof(lab_faults) / sizeof(lab_faults[0]))

static void
put_lab_rules(struct wrm_buf *b)
{
	size_t i;

	wrm_buf_puts(b, "\n# Redirections and header-selected faults "
	    "(docs/lab.md)\n[Service]\nFaultInjection = true\n");
	for (i = 0; i < N_LAB_REDIRECTS; i++) {
		const struct lab_redirect *rd = &lab_redirects[i];

		wrm_buf_printf(b, "\n# %s\n[Redirect %s]\nPath = %s\n"
		    "Status = %u\nHops = %u\n", rd->purpose, rd->name,
		    rd->path, rd->status, rd->hops);
		if (rd->location[0] != '\0')
			wrm_buf_printf(b, "Location = %s\n", rd->location);
	}
	for (i = 0; i < N_LAB_FAULTS; i++) {
		const struct lab_fault *f = &lab_faults[i];

		wrm_buf_printf(b, "\n# %s\n[FaultInjection lab-%s]\n"
		    "Header = %s: %s\nKind = %s\n", f->purpose, f->value,
		    FAULT_HEADER, f->value, f->kind);
		if (f->settings != NULL)
			wrm_buf_printf(b, "%s\n", f->settings);
	}
}

static int
write_run_conf(const struct wrm_lab *lab)
{
	struct wrm_buf b;
	size_t i;
	int r = 0;

	wrm_buf_init(&b, 0);
	wrm_buf_puts(&b,
	    "# Rewritten by winrmd --lab at every start; winrmd.conf\n"
	    "# includes it.  Change these settings in sessions.d/*.conf\n"
	    "# (read later) or with -o.\n");
	for (i = 0; i < N_SCENARIOS; i++) {
		const struct scenario *sc = &scenarios[i];

		if (sc->file == NULL)
			continue;
		wrm_buf_printf(&b, "\n# Scenario %s (docs/lab.md)\n"
		    "[Listener %s]\n"
		    "Address = 127.0.0.1\n"
		    "Port = %d\n"
		    "Transport = HTTPS\n"
		    "CertificateFile = %s/%s.pem\n"
		    "KeyFile = %s/%s-key.pem\n", sc->name, sc->listener,
		    scenario_port(lab, sc), lab->dir, sc->file, lab->dir,
		    sc->file);
	}
	wrm_buf_printf(&b, "\n# Client certificates are checked against the "
	    "lab CRL\n[Listener HTTPS]\nClientCRLFile = %s\n", lab->crl);
	put_lab_rules(&b);
	if (lab->kdc.available)
		wrm_buf_printf(&b, "\n# The lab's Kerberos realm %s\n"
		    "[Service/Auth]\n"
		    "Keytab = %s\n", WRM_LAB_REALM, lab->kdc.keytab);
	if (b.len == 0)
		r = WRM_ERR_ALLOC;
	else
		r = wrm_lab_write_file(lab->run_conf, wrm_buf_ptr(&b), wrm_buf_len(&b),
		    0644);
	wrm_buf_free(&b);
	return r;
}

static int
ensure_user(struct wrm_lab *lab)
{
	struct wrm_store *st;
	char *path, *json, *hash = NULL, nt[33];
	int r;

	if ((path = path_in(lab->dir, "state.db")) == NULL)
		return WRM_ERR_ALLOC;
	r = wrm_store_open(path, false, &st);
	free(path);
	if (r != 0)
		return r;
	json = wrm_lab_read_small(lab->json);
	lab->user = json_string(json, "user");
	lab->password = json_string(json, "password");
	if (json != NULL) {
		explicit_bzero(json, strlen(json));
		free(json);
	}
	if (lab->user == NULL)
		lab->user = strdup(LAB_USER);
	if (lab->password == NULL ||
	    wrm_store_user_get_hash(st, lab->user, &hash) != 0 ||
	    !wrm_auth_verify_hash(lab->password, hash)) {
		free(hash);
		hash = NULL;
		wrm_freezero_str(lab->password);
		lab->password_new = true;
		if ((lab->password = new_password()) == NULL) {
			wrm_store_close(st);
			return WRM_ERR_ALLOC;
		}
	}
	free(hash);
	/* (Re)write both hashes: NTLM needs the NT one. */
	if ((r = wrm_auth_hash_password(lab->password, &hash)) == 0 &&
	    (r = wrm_auth_nt_hash(lab->password, nt)) == 0)
		r = wrm_store_user_set(st, lab->user, hash, nt, false);
	explicit_bzero(nt, sizeof(nt));
	free(hash);
	wrm_store_close(st);
	return r;
}

int
wrm_lab_prepare(struct wrm_lab *lab)
{
	struct stat st;
	char *sessions;
	int r;

	if (mkdir(lab->dir, 0700) != 0 && errno != EEXIST) {
		error("lab: cannot create %s: %s", lab->dir, strerror(errno));
		return WRM_ERR_SYSTEM;
	}
	/*
	 * The lab trusts what it finds there (users, configuration, keys):
	 * a directory someone else made or may write to is not ours.
	 */
	if (lstat(lab->dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
		error("lab: %s must be a directory of this user's (uid %ld) "
		    "that no one else may write to", lab->dir,
		    (long)geteuid());
		return WRM_ERR_DENIED;
	}
	if (lab->port > 0 && lab->port + 5 > 65535) {
		error("lab: --port %d leaves no room for the certificate "
		    "scenario listeners (PORT+2 to PORT+5)", lab->port);
		return WRM_ERR_CONFIG;
	}
	if ((lab->config = path_in(lab->dir, "winrmd.conf")) == NULL ||
	    (lab->cert = path_in(lab->dir, "cert.pem")) == NULL ||
	    (lab->key = path_in(lab->dir, "key.pem")) == NULL ||
	    (lab->ca = path_in(lab->dir, "ca.pem")) == NULL ||
	    (lab->client_cert = path_in(lab->dir, "client.pem")) == NULL ||
	    (lab->client_key = path_in(lab->dir, "client-key.pem")) == NULL ||
	    (lab->certmap = path_in(lab->dir, "certmapping.conf")) == NULL ||
	    (lab->json = path_in(lab->dir, "lab.json")) == NULL ||
	    (lab->crl = path_in(lab->dir, "ca.crl")) == NULL ||
	    (lab->pfx = path_in(lab->dir, "client.pfx")) == NULL ||
	    (lab->run_conf = path_in(lab->dir, "lab-run.conf")) == NULL ||
	    (sessions = path_in(lab->dir, "sessions.d")) == NULL)
		return WRM_ERR_ALLOC;
	mkdir(sessions, 0755);
	free(sessions);
	if ((r = ensure_user(lab)) != 0) {
		error_fr(r, "lab: cannot set up the lab user");
		return r;
	}
	if ((r = make_certs(lab)) != 0) {
		error_fr(r, "lab: cannot create the certificates");
		return r;
	}
	if (missing(lab->config)) {
		if ((r = write_config(lab)) != 0) {
			error_fr(r, "lab: cannot write %s", lab->config);
			return r;
		}
	} else if ((r = upgrade_config(lab)) != 0) {
		error_fr(r, "lab: cannot update %s", lab->config);
		return r;
	}
	/* Never fatal: the lab goes on without Kerberos. */
	wrm_lab_kdc_start(&lab->kdc, lab->dir, lab->user, lab->password);
	if ((r = write_run_conf(lab)) != 0) {
		error_fr(r, "lab: cannot write %s", lab->run_conf);
		return r;
	}
	return 0;
}

/* -- lab.json ----------------------------------------------------------- */

void
wrm_lab_listener_started(struct wrm_lab *lab,
    const struct wrm_listener_conf *lc, bool tls, unsigned port)
{
	struct wrm_lab_listener *n, *l;
	const char *a = lc->address, *prefix = lc->url_prefix;
	char *host = NULL;

	if (a == NULL || *a == '\0' || strcmp(a, "*") == 0 ||
	    strcmp(a, "0.0.0.0") == 0)
		host = strdup("127.0.0.1");
	else if (strcmp(a, "::") == 0)
		host = strdup("[::1]");
	else if (strchr(a, ':') != NULL) {
		if (asprintf(&host, "[%s]", a) < 0)
			host = NULL;
	} else
		host = strdup(a);
	if (host == NULL)
		return;
	while (prefix != NULL && *prefix == '/')
		prefix++;
	n = realloc(lab->listeners, (lab->n_listeners + 1) * sizeof(*n));
	if (n == NULL) {
		free(host);
		return;
	}
	lab->listeners = n;
	l = &n[lab->n_listeners];
	memset(l, 0, sizeof(*l));
	l->tls = tls;
	if (asprintf(&l->url, "%s://%s:%u/%s", tls ? "https" : "http", host,
	    port, prefix != NULL ? prefix : "wsman") < 0 ||
	    (l->name = strdup(lc->name)) == NULL) {
		free(l->url);
		free(host);
		return;
	}
	if (tls && lc->certificate_file != NULL && *lc->certificate_file)
		l->certificate = strdup(lc->certificate_file);
	lab->n_listeners++;
	free(host);
}

static void
add_listener(struct wrm_lab *lab, const char *name, const char *url,
    bool tls, const char *cert)
{
	struct wrm_lab_listener *n;

	if (url == NULL || (n = realloc(lab->listeners,
	    (lab->n_listeners + 1) * sizeof(*n))) == NULL)
		return;
	lab->listeners = n;
	n += lab->n_listeners;
	n->name = strdup(name);
	n->url = strdup(url);
	n->certificate = cert != NULL ? strdup(cert) : NULL;
	n->tls = tls;
	if (n->name != NULL && n->url != NULL)
		lab->n_listeners++;
	else {
		free(n->name);
		free(n->url);
		free(n->certificate);
	}
}

static const char *
url_of(const struct wrm_lab *lab, const char *name)
{
	size_t i;

	for (i = 0; i < lab->n_listeners; i++)
		if (strcasecmp(lab->listeners[i].name, name) == 0)
			return lab->listeners[i].url;
	return NULL;
}

/* NTLM needs the gss-ntlmssp mechanism. */
static bool
have_ntlm(void)
{
	static gss_OID_desc ntlm = { 10,
		(void *)"\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a" };
	gss_OID_set mechs = GSS_C_NO_OID_SET;
	OM_uint32 major, minor;
	int present = 0;

	major = gss_indicate_mechs(&minor, &mechs);
	if (GSS_ERROR(major))
		return false;
	gss_test_oid_set_member(&minor, &ntlm, mechs, &present);
	gss_release_oid_set(&minor, &mechs);
	return present != 0;
}

/* A JSON writer over a buffer that remembers its first error. */
struct jw {
	struct wrm_buf b;
	int err;
};

static void
jw_raw(struct jw *w, const char *s)
{
	if (w->err == 0)
		w->err = wrm_buf_puts(&w->b, s);
}

static void
jw_fmt(struct jw *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
jw_fmt(struct jw *w, const char *fmt, ...)
{
	va_list ap;

	if (w->err != 0)
		return;
	va_start(ap, fmt);
	w->err = wrm_buf_vprintf(&w->b, fmt, ap);
	va_end(ap);
}

static void
jw_str(struct jw *w, const char *s)
{
	char esc[8];

	if (s == NULL) {
		jw_raw(w, "null");
		return;
	}
	jw_raw(w, "\"");
	for (; *s && w->err == 0; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			esc[2] = '\0';
			jw_raw(w, esc);
		} else if (c < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			jw_raw(w, esc);
		} else
			w->err = wrm_buf_putc(&w->b, (char)c);
	}
	jw_raw(w, "\"");
}

/* "  "key": " at the given indentation, after a comma unless first. */
static void
jw_key(struct jw *w, int indent, bool first, const char *key)
{
	jw_fmt(w, "%s\n%*s\"%s\": ", first ? "" : ",", indent, "", key);
}

static void
jw_kstr(struct jw *w, int indent, bool first, const char *key,
    const char *value)
{
	jw_key(w, indent, first, key);
	jw_str(w, value);
}

static void
jw_opts(struct jw *w, const char *key, const struct client_opt *o)
{
	bool first = true;

	jw_key(w, 6, false, key);
	jw_raw(w, "[");
	for (; o != NULL && o->client != NULL; o++, first = false) {
		jw_fmt(w, "%s\n        {\"client\": ", first ? "" : ",");
		jw_str(w, o->client);
		jw_raw(w, ", \"options\": ");
		jw_str(w, o->options);
		jw_raw(w, "}");
	}
	jw_raw(w, first ? "]" : "\n      ]");
}

static void
jw_listener(struct jw *w, const struct wrm_lab_listener *l, bool first)
{
	const struct scenario *sc = scenario_of(l->name);

	jw_raw(w, first ? "\n    {" : ",\n    {");
	jw_kstr(w, 6, true, "name", l->name);
	jw_kstr(w, 6, false, "url", l->url);
	jw_kstr(w, 6, false, "transport", l->tls ? "https" : "http");
	jw_kstr(w, 6, false, "scenario", sc != NULL ? sc->name : "custom");
	jw_kstr(w, 6, false, "description", sc != NULL ? sc->description :
	    "A listener from the configuration, not one of the lab's "
	    "scenarios.");
	jw_kstr(w, 6, false, "certificate", l->certificate);
	jw_opts(w, "passes_with", sc != NULL ? sc->passes : NULL);
	jw_opts(w, "fails_with", sc != NULL ? sc->fails : NULL);
	jw_raw(w, "\n    }");
}

static char *
lab_json(struct wrm_lab *lab, const char *http_url, const char *https_url)
{
	const struct wrm_lab_kdc *k = &lab->kdc;
	struct jw w;
	size_t i;
	char *s;

	memset(&w, 0, sizeof(w));
	wrm_buf_init(&w.b, 0);
	w.b.secret = true;
	/* The keys of the first lab.json, first and one per line. */
	jw_raw(&w, "{");
	jw_kstr(&w, 2, true, "http_url", http_url != NULL ? http_url : "");
	jw_kstr(&w, 2, false, "https_url", https_url != NULL ? https_url : "");
	jw_kstr(&w, 2, false, "user", lab->user);
	jw_kstr(&w, 2, false, "password", lab->password);
	jw_kstr(&w, 2, false, "ca_file", lab->ca);
	jw_kstr(&w, 2, false, "client_cert", lab->client_cert);
	jw_kstr(&w, 2, false, "client_key", lab->client_key);
	jw_kstr(&w, 2, false, "config", lab->config);
	jw_key(&w, 2, false, "pid");
	jw_fmt(&w, "%ld", (long)getpid());

	jw_key(&w, 2, false, "format");
	jw_fmt(&w, "%d", LAB_JSON_FORMAT);
	jw_kstr(&w, 2, false, "winrmd_version", PACKAGE_VERSION);
	jw_kstr(&w, 2, false, "dir", lab->dir);
	jw_kstr(&w, 2, false, "crl_file", lab->crl);

	jw_key(&w, 2, false, "listeners");
	jw_raw(&w, "[");
	for (i = 0; i < lab->n_listeners; i++)
		jw_listener(&w, &lab->listeners[i], i == 0);
	jw_raw(&w, lab->n_listeners > 0 ? "\n  ]" : "]");

	/* One line per user, so that "password" stays a top-level line. */
	jw_key(&w, 2, false, "users");
	jw_raw(&w, "[\n    {\"name\": ");
	jw_str(&w, lab->user);
	jw_raw(&w, ", \"password\": ");
	jw_str(&w, lab->password);
	jw_raw(&w, ", \"auth\": [\"basic\", \"negotiate\"");
	if (have_ntlm())
		jw_raw(&w, ", \"ntlm\"");
	if (k->available)
		jw_raw(&w, ", \"kerberos\"");
	jw_raw(&w, ", \"certificate\"]}\n  ]");

	jw_key(&w, 2, false, "client_certificate");
	jw_raw(&w, "{");
	jw_kstr(&w, 4, true, "cert", lab->client_cert);
	jw_kstr(&w, 4, false, "key", lab->client_key);
	jw_key(&w, 4, false, "upn");
	jw_fmt(&w, "\"%s@localhost\"", lab->user);
	jw_kstr(&w, 4, false, "thumbprint",
	    lab->client_thumb[0] ? lab->client_thumb : NULL);
	jw_kstr(&w, 4, false, "pfx", missing(lab->pfx) ? NULL : lab->pfx);
	jw_key(&w, 4, false, "pfx_password");
	jw_str(&w, missing(lab->pfx) ? NULL : lab->password);
	jw_raw(&w, "\n  }");

	jw_key(&w, 2, false, "kerberos");
	jw_raw(&w, "{");
	jw_key(&w, 4, true, "available");
	jw_raw(&w, k->available ? "true" : "false");
	jw_kstr(&w, 4, false, "realm", k->available ? WRM_LAB_REALM : NULL);
	jw_kstr(&w, 4, false, "krb5_conf", k->available ? k->krb5_conf : NULL);
	jw_kstr(&w, 4, false, "kdc", k->available ? k->kdc : NULL);
	jw_kstr(&w, 4, false, "principal", k->available ? k->principal : NULL);
	jw_key(&w, 4, false, "service_principals");
	jw_raw(&w, "[");
	for (i = 0; k->available && i < k->n_spns; i++) {
		jw_raw(&w, i == 0 ? "" : ", ");
		jw_str(&w, k->spns[i]);
	}
	jw_raw(&w, "]");
	jw_kstr(&w, 4, false, "keytab", k->available ? k->keytab : NULL);
	jw_kstr(&w, 4, false, "reason", k->available ? NULL : k->reason);
	jw_raw(&w, "\n  }");

	jw_key(&w, 2, false, "redirects");
	jw_raw(&w, "[");
	for (i = 0; i < N_LAB_REDIRECTS; i++) {
		const struct lab_redirect *rd = &lab_redirects[i];

		jw_raw(&w, i == 0 ? "\n    {" : ",\n    {");
		jw_kstr(&w, 6, true, "name", rd->name);
		jw_kstr(&w, 6, false, "path", rd->path);
		jw_key(&w, 6, false, "url");
		if (http_url != NULL && *http_url) {
			const char *end = strstr(http_url + 8, "/");

			jw_fmt(&w, "\"%.*s%s\"", end != NULL ?
			    (int)(end - http_url) : (int)strlen(http_url),
			    http_url, rd->path);
		} else
			jw_raw(&w, "null");
		jw_key(&w, 6, false, "status");
		jw_fmt(&w, "%u", rd->status);
		jw_key(&w, 6, false, "hops");
		jw_fmt(&w, "%u", rd->hops);
		jw_kstr(&w, 6, false, "location", rd->location[0] != '\0' ?
		    rd->location : "/wsman");
		jw_kstr(&w, 6, false, "description", rd->purpose);
		jw_raw(&w, "\n    }");
	}
	jw_raw(&w, i == 0 ? "]" : "\n  ]");
	jw_key(&w, 2, false, "faults");
	jw_raw(&w, "[");
	for (i = 0; i < N_LAB_FAULTS; i++) {
		const struct lab_fault *f = &lab_faults[i];

		jw_raw(&w, i == 0 ? "\n    {" : ",\n    {");
		jw_fmt(&w, "\n      \"name\": \"lab-%s\"", f->value);
		jw_kstr(&w, 6, false, "header", FAULT_HEADER);
		jw_kstr(&w, 6, false, "value", f->value);
		jw_kstr(&w, 6, false, "kind", f->kind);
		jw_kstr(&w, 6, false, "description", f->purpose);
		jw_raw(&w, "\n    }");
	}
	jw_raw(&w, i == 0 ? "]" : "\n  ]");
	jw_raw(&w, "\n}\n");
	if (w.err != 0) {
		wrm_buf_free(&w.b);
		return NULL;
	}
	s = strdup(wrm_buf_str(&w.b));
	wrm_buf_free(&w.b);
	return s;
}

int
wrm_lab_announce(struct wrm_lab *lab, const char *http_url,
    const char *https_url)
{
	const struct wrm_lab_kdc *k = &lab->kdc;
	char *json;
	size_t i;
	int r;

	if (lab->n_listeners == 0) {
		/* winrmd did not report its listeners one by one. */
		add_listener(lab, "HTTP", http_url, false, NULL);
		add_listener(lab, "HTTPS", https_url, true, lab->cert);
	}
	if (url_of(lab, "HTTP") != NULL)
		http_url = url_of(lab, "HTTP");
	if (url_of(lab, "HTTPS") != NULL)
		https_url = url_of(lab, "HTTPS");
	if ((json = lab_json(lab, http_url, https_url)) == NULL)
		return WRM_ERR_ALLOC;
	r = wrm_lab_write_file(lab->json, json, strlen(json), 0600);
	explicit_bzero(json, strlen(json));
	free(json);
	if (r != 0)
		return r;
	printf("winrmd lab endpoint is ready.\n"
	    "  HTTP:      %s\n"
	    "  HTTPS:     %s (CA: %s)\n"
	    "  user:      %s\n"
	    "  password:  %s\n"
	    "  details:   %s\n",
	    http_url ? http_url : "-", https_url ? https_url : "-", lab->ca,
	    lab->user, lab->password, lab->json);
	for (i = 0; i < lab->n_listeners; i++) {
		const struct scenario *sc = scenario_of(lab->listeners[i].name);

		if (sc != NULL && sc->file == NULL)
			continue;
		printf("  %-11s %s\n", sc != NULL ? sc->name :
		    lab->listeners[i].name, lab->listeners[i].url);
	}
	if (k->available)
		printf("  Kerberos:  realm %s, KDC %s; KRB5_CONFIG=%s "
		    "kinit %s\n", WRM_LAB_REALM, k->kdc, k->krb5_conf,
		    k->principal);
	else
		printf("  Kerberos:  unavailable: %s\n",
		    k->reason != NULL ? k->reason : "unknown");
	printf("Try: python3 -c \"import winrm; print(winrm.Session('%s', "
	    "auth=('%s', '%s'), transport='basic').run_cmd('uname', ['-a'])."
	    "std_out.decode())\"\n",
	    http_url ? http_url : https_url, lab->user, lab->password);
	fflush(stdout);
	return 0;
}

void
wrm_lab_stop(struct wrm_lab *lab)
{
	(void)lab;
	wrm_lab_kdc_stop();
}

void
wrm_lab_free(struct wrm_lab *lab)
{
	size_t i;

	free(lab->config);
	free(lab->cert);
	free(lab->key);
	free(lab->ca);
	free(lab->client_cert);
	free(lab->client_key);
	free(lab->certmap);
	free(lab->json);
	free(lab->user);
	wrm_freezero_str(lab->password);
	free(lab->crl);
	free(lab->pfx);
	free(lab->run_conf);
	for (i = 0; i < lab->n_listeners; i++) {
		free(lab->listeners[i].name);
		free(lab->listeners[i].url);
		free(lab->listeners[i].certificate);
	}
	free(lab->listeners);
	wrm_lab_kdc_free(&lab->kdc);
	memset(lab, 0, sizeof(*lab));
}
