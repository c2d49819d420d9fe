#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "err.h"
#include "lab.h"
#include "log.h"
#include "misc.h"
#include "store.h"

#define LAB_USER	"lab"
#define PASSWORD_LEN	20

static char *
path_in(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

static int
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp;
	int fd, r = 0;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return WRM_ERR_ALLOC;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
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

static char *
read_small(const char *path)
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

enum cert_kind { CERT_CA, CERT_SERVER, CERT_CLIENT };

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
set_names(gnutls_x509_crt_t crt, enum cert_kind kind, const char *cn)
{
	unsigned char ip4[4] = { 127, 0, 0, 1 }, ip6[16] = { 0 }, upn[130];
	char host[256];
	size_t ul;

	if (gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    cn, (unsigned)strlen(cn)) < 0)
		return WRM_ERR_INTERNAL;
	if (kind == CERT_CA)
		return gnutls_x509_crt_set_dn_by_oid(crt,
		    GNUTLS_OID_X520_ORGANIZATION_NAME, 0, "winrmd lab", 10) < 0 ?
		    WRM_ERR_INTERNAL : 0;
	if (kind == CERT_CLIENT) {
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
	ip6[15] = 1;
	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	if (gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, cn,
	    (unsigned)strlen(cn), GNUTLS_FSAN_APPEND) < 0 ||
	    (strcmp(host, cn) != 0 &&
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host,
	    (unsigned)strlen(host), GNUTLS_FSAN_APPEND) < 0) ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip4,
	    sizeof(ip4), GNUTLS_FSAN_APPEND) < 0 ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip6,
	    sizeof(ip6), GNUTLS_FSAN_APPEND) < 0)
		return WRM_ERR_INTERNAL;
	return 0;
}

/*
 * Generate a key and a certificate of the given kind, signed by ca/ca_key
 * (self-signed when ca is NULL), and write both as PEM.  The objects are
 * returned when crt_r/key_r are not NULL.
 */
static int
make_cert(enum cert_kind kind, const char *cn, gnutls_x509_crt_t ca,
    gnutls_x509_privkey_t ca_key, const char *cert_path,
    const char *key_path, gnutls_x509_crt_t *crt_r,
    gnutls_x509_privkey_t *key_r)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t out = { NULL, 0 };
	unsigned char serial[16];
	time_t now = time(NULL);
	unsigned usage = kind == CERT_CA ? GNUTLS_KEY_KEY_CERT_SIGN |
	    GNUTLS_KEY_CRL_SIGN | GNUTLS_KEY_DIGITAL_SIGNATURE :
	    GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_ENCIPHERMENT;
	int r = WRM_ERR_INTERNAL;

	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 2048, 0) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0)
		goto out;
	wrm_random(serial, sizeof(serial));
	serial[0] &= 0x7f;
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + 825L * 86400) < 0 ||
	    set_names(crt, kind, cn) != 0 ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, kind == CERT_CA,
	    -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, usage) < 0 ||
	    (kind != CERT_CA && gnutls_x509_crt_set_key_purpose_oid(crt,
	    kind == CERT_SERVER ? GNUTLS_KP_TLS_WWW_SERVER :
	    GNUTLS_KP_TLS_WWW_CLIENT, 0) < 0) ||
	    gnutls_x509_crt_sign2(crt, ca != NULL ? ca : crt,
	    ca_key != NULL ? ca_key : key, GNUTLS_DIG_SHA256, 0) < 0)
		goto out;
	if (gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &out) < 0)
		goto out;
	r = write_file(key_path, out.data, out.size, 0600);
	gnutls_memset(out.data, 0, out.size);
	gnutls_free(out.data);
	out.data = NULL;
	if (r != 0)
		goto out;
	r = WRM_ERR_INTERNAL;
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out) < 0)
		goto out;
	r = write_file(cert_path, out.data, out.size, 0644);
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

/*
 * The lab's certificates: a CA, the listener's certificate for localhost
 * signed by it, and a client certificate for the lab user (UPN
 * user@localhost) that the generated certificate mapping accepts.  The
 * mapping names the CA by thumbprint, so it is rewritten with them.
 */
static int
make_certs(struct wrm_lab *lab)
{
	gnutls_x509_crt_t ca = NULL;
	gnutls_x509_privkey_t ca_key = NULL;
	unsigned char d[20];
	size_t dl = sizeof(d), i;
	char thumb[41], *text, *ca_key_path;
	int r;

	if ((ca_key_path = path_in(lab->dir, "ca-key.pem")) == NULL)
		return WRM_ERR_ALLOC;
	r = make_cert(CERT_CA, "winrmd lab CA", NULL, NULL, lab->ca,
	    ca_key_path, &ca, &ca_key);
	free(ca_key_path);
	if (r == 0)
		r = make_cert(CERT_SERVER, "localhost", ca, ca_key, lab->cert,
		    lab->key, NULL, NULL);
	if (r == 0)
		r = make_cert(CERT_CLIENT, lab->user, ca, ca_key,
		    lab->client_cert, lab->client_key, NULL, NULL);
	if (r == 0 && gnutls_x509_crt_get_fingerprint(ca, GNUTLS_DIG_SHA1, d,
	    &dl) < 0)
		r = WRM_ERR_INTERNAL;
	if (ca != NULL)
		gnutls_x509_crt_deinit(ca);
	if (ca_key != NULL)
		gnutls_x509_privkey_deinit(ca_key);
	if (r != 0)
		return r;
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
	r = write_file(lab->certmap, text, strlen(text), 0644);
	free(text);
	return r;
}

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
	    "\nInclude = certmapping.conf\n"
	    "Include = sessions.d/*.conf\n",
	    lab->dir, http, https, lab->cert, lab->key, lab->ca) < 0)
		return WRM_ERR_ALLOC;
	r = write_file(lab->config, text, strlen(text), 0644);
	free(text);
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
	json = read_small(lab->json);
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

/* Nonzero when the lab CA's key is missing. */
static int
stat_key(const struct wrm_lab *lab)
{
	struct stat sb;
	char *p = path_in(lab->dir, "ca-key.pem");
	int r = p == NULL || stat(p, &sb) != 0;

	free(p);
	return r;
}

int
wrm_lab_prepare(struct wrm_lab *lab)
{
	char *sessions;
	struct stat sb;
	int r;

	if (mkdir(lab->dir, 0700) != 0 && errno != EEXIST) {
		error("lab: cannot create %s: %s", lab->dir, strerror(errno));
		return WRM_ERR_SYSTEM;
	}
	if ((lab->config = path_in(lab->dir, "winrmd.conf")) == NULL ||
	    (lab->cert = path_in(lab->dir, "cert.pem")) == NULL ||
	    (lab->key = path_in(lab->dir, "key.pem")) == NULL ||
	    (lab->ca = path_in(lab->dir, "ca.pem")) == NULL ||
	    (lab->client_cert = path_in(lab->dir, "client.pem")) == NULL ||
	    (lab->client_key = path_in(lab->dir, "client-key.pem")) == NULL ||
	    (lab->certmap = path_in(lab->dir, "certmapping.conf")) == NULL ||
	    (lab->json = path_in(lab->dir, "lab.json")) == NULL ||
	    (sessions = path_in(lab->dir, "sessions.d")) == NULL)
		return WRM_ERR_ALLOC;
	mkdir(sessions, 0755);
	free(sessions);
	if ((r = ensure_user(lab)) != 0) {
		error_fr(r, "lab: cannot set up the lab user");
		return r;
	}
	if ((r = stat_key(lab)) != 0 ||
	    stat(lab->ca, &sb) != 0 || stat(lab->cert, &sb) != 0 ||
	    stat(lab->key, &sb) != 0 || stat(lab->client_cert, &sb) != 0 ||
	    stat(lab->client_key, &sb) != 0 || stat(lab->certmap, &sb) != 0) {
		if ((r = make_certs(lab)) != 0) {
			error_fr(r, "lab: cannot create the certificates");
			return r;
		}
	}
	if (stat(lab->config, &sb) != 0 && (r = write_config(lab)) != 0) {
		error_fr(r, "lab: cannot write %s", lab->config);
		return r;
	}
	return 0;
}

int
wrm_lab_announce(struct wrm_lab *lab, const char *http_url,
    const char *https_url)
{
	char *json;
	int r;

	if (asprintf(&json, "{\n"
	    "  \"http_url\": \"%s\",\n"
	    "  \"https_url\": \"%s\",\n"
	    "  \"user\": \"%s\",\n"
	    "  \"password\": \"%s\",\n"
	    "  \"ca_file\": \"%s\",\n"
	    "  \"client_cert\": \"%s\",\n"
	    "  \"client_key\": \"%s\",\n"
	    "  \"config\": \"%s\",\n"
	    "  \"pid\": %ld\n"
	    "}\n", http_url ? http_url : "", https_url ? https_url : "",
	    lab->user, lab->password, lab->ca, lab->client_cert,
	    lab->client_key, lab->config, (long)getpid()) < 0)
		return WRM_ERR_ALLOC;
	r = write_file(lab->json, json, strlen(json), 0600);
	explicit_bzero(json, strlen(json));
	free(json);
	if (r != 0)
		return r;
	printf("winrmd lab endpoint is ready.\n"
	    "  HTTP:      %s\n"
	    "  HTTPS:     %s (CA: %s)\n"
	    "  user:      %s\n"
	    "  password:  %s\n"
	    "  details:   %s\n"
	    "Try: python3 -c \"import winrm; print(winrm.Session('%s', "
	    "auth=('%s', '%s'), transport='basic').run_cmd('uname', ['-a'])."
	    "std_out.decode())\"\n",
	    http_url ? http_url : "-", https_url ? https_url : "-", lab->ca,
	    lab->user, lab->password, lab->json,
	    http_url ? http_url : https_url, lab->user, lab->password);
	fflush(stdout);
	return 0;
}

void
wrm_lab_free(struct wrm_lab *lab)
{
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
}
