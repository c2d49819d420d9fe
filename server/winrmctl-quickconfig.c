/*
 * winrmctl quickconfig: the first setup of a host for system mode, as
 * Enable-PSRemoting does on Windows.  Each step is taken only when what it
 * makes is missing, so running it again changes nothing; no existing file
 * is ever replaced.
 *
 *  1. the group of AllowGroups (groupadd --system);
 *  2. the PAM service file (/etc/pam.d/winrmd);
 *  3. a self-signed certificate and its key for the host name;
 *  4. the configuration: a new winrmd.conf with an HTTPS listener when
 *     there is none, or else, when no HTTPS listener is enabled, the file
 *     sessions.d/quickconfig-https.conf that enables one (the
 *     configuration reads sessions.d/ last, so its keys win).
 *
 * Everything is planned and checked first; --dry-run stops there.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <libgen.h>
#include <netdb.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "misc.h"
#include "winrmctl.h"

#define CERT_DAYS	825
#define DROPIN_NAME	"quickconfig-https.conf"

extern char **environ;

/* The PAM service files winrmd's packages install, by distribution. */
static const char pam_debian[] =
    "# PAM configuration for winrmd (Basic authentication in system mode,\n"
    "# and the account and session rules every shell goes through).\n"
    "@include common-auth\n"
    "@include common-account\n"
    "@include common-session-noninteractive\n";
static const char pam_redhat[] =
    "# PAM configuration for winrmd (Basic authentication in system mode,\n"
    "# and the account and session rules every shell goes through).\n"
    "auth       include      password-auth\n"
    "account    include      password-auth\n"
    "session    include      password-auth\n";
static const char pam_system_auth[] =
    "# PAM configuration for winrmd (Basic authentication in system mode,\n"
    "# and the account and session rules every shell goes through).\n"
    "auth       include      system-auth\n"
    "account    include      system-auth\n"
    "session    include      system-auth\n";
static const char pam_unix[] =
    "# PAM configuration for winrmd (Basic authentication in system mode,\n"
    "# and the account and session rules every shell goes through).\n"
    "auth       required     pam_unix.so\n"
    "account    required     pam_unix.so\n"
    "session    required     pam_unix.so\n";

struct qc {
	bool dry;
	bool port_given;
	unsigned port;
	const char *group;
	char *host;
	char *pam_file;
	char *confdir;
	char *cert;
	char *key;
	char *thumb;		/* SHA-1 of the certificate, when known */
	char *listener;		/* the HTTPS listener's name */
	bool changed_listener;	/* a listener was added or enabled */
	int failed;
};

static bool
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* "ok:", "would:" or "done:" and what. */
static void
report(const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
report(const char *tag, const char *fmt, ...)
{
	va_list ap;

	printf("  %-7s ", tag);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static bool
valid_word(const char *s, const char *extra, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max || s[0] == '-' || s[0] == '.')
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') ||
		    strchr(extra, s[i]) != NULL))
			return false;
	return true;
}

/* The host's name, fully qualified when the resolver knows it so. */
static char *
host_name(void)
{
	struct addrinfo hints, *ai = NULL;
	char h[256];
	char *r;

	if (gethostname(h, sizeof(h)) != 0)
		return ctl_xstrdup("localhost");
	h[sizeof(h) - 1] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_CANONNAME;
	if (strchr(h, '.') == NULL && getaddrinfo(h, NULL, &hints, &ai) == 0 &&
	    ai != NULL && ai->ai_canonname != NULL &&
	    strncasecmp(ai->ai_canonname, h, strlen(h)) == 0 &&
	    ai->ai_canonname[strlen(h)] == '.' &&
	    valid_word(ai->ai_canonname, ".-", 253))
		r = ctl_xstrdup(ai->ai_canonname);
	else
		r = ctl_xstrdup(h);
	if (ai != NULL)
		freeaddrinfo(ai);
	return r;
}

/* ---- certificate ---- */

static char *
thumbprint_of(gnutls_x509_crt_t crt)
{
	unsigned char d[20];
	size_t dl = sizeof(d), i;
	char *t;

	if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA1, d, &dl) < 0)
		return NULL;
	t = malloc(2 * dl + 1);
	if (t == NULL)
		return NULL;
	for (i = 0; i < dl; i++)
		snprintf(t + 2 * i, 3, "%02X", d[i]);
	return t;
}

/* The thumbprint of the first certificate in a PEM file, or NULL. */
static char *
file_thumbprint(const char *path)
{
	gnutls_datum_t data = { NULL, 0 };
	gnutls_x509_crt_t crt;
	char *t = NULL;

	if (gnutls_load_file(path, &data) < 0)
		return NULL;
	if (gnutls_x509_crt_init(&crt) >= 0) {
		if (gnutls_x509_crt_import(crt, &data,
		    GNUTLS_X509_FMT_PEM) >= 0)
			t = thumbprint_of(crt);
		gnutls_x509_crt_deinit(crt);
	}
	gnutls_free(data.data);
	return t;
}

/*
 * A self-signed server certificate for host (and its first label when it
 * has several), RSA 2048, SHA-256, valid for CERT_DAYS days.  Neither file
 * may exist; the key is written first, mode 0600.
 */
static int
make_self_signed(struct qc *q)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t out = { NULL, 0 };
	unsigned char serial[16];
	time_t now = time(NULL);
	char *shortname = NULL, *dot;
	bool reported = false;
	int r = -1;

	if (gnutls_x509_privkey_init(&key) < 0 ||
	    gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 2048, 0) < 0 ||
	    gnutls_x509_crt_init(&crt) < 0)
		goto out;
	wrm_random(serial, sizeof(serial));
	serial[0] &= 0x7f;
	shortname = ctl_xstrdup(q->host);
	if ((dot = strchr(shortname, '.')) != NULL)
		*dot = '\0';
	if (gnutls_x509_crt_set_version(crt, 3) < 0 ||
	    gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt,
	    now + CERT_DAYS * 86400L) < 0 ||
	    gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
	    q->host, (unsigned)strlen(q->host)) < 0 ||
	    gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
	    q->host, (unsigned)strlen(q->host), GNUTLS_FSAN_APPEND) < 0 ||
	    (dot != NULL && gnutls_x509_crt_set_subject_alt_name(crt,
	    GNUTLS_SAN_DNSNAME, shortname, (unsigned)strlen(shortname),
	    GNUTLS_FSAN_APPEND) < 0) ||
	    gnutls_x509_crt_set_key(crt, key) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
	    GNUTLS_KEY_KEY_ENCIPHERMENT) < 0 ||
	    gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER,
	    0) < 0 ||
	    gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ||
	    gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &out) < 0)
		goto out;
	{
		char *text = strndup((const char *)out.data, out.size);

		gnutls_memset(out.data, 0, out.size);
		gnutls_free(out.data);
		out.data = NULL;
		if (text == NULL)
			goto out;
		r = ctl_write_file(q->key, text, 0600, false);
		explicit_bzero(text, strlen(text));
		free(text);
		if (r != 0) {
			fprintf(stderr, "winrmctl: cannot write %s: %s\n",
			    q->key, strerror(errno));
			reported = true;
			goto out;
		}
	}
	r = -1;
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out) >= 0) {
		char *text = strndup((const char *)out.data, out.size);

		if (text != NULL)
			r = ctl_write_file(q->cert, text, 0644, false);
		if (r != 0)
			fprintf(stderr, "winrmctl: cannot write %s: %s\n",
			    q->cert, strerror(errno));
		reported = r != 0;
		free(text);
	}
	if (r != 0)
		unlink(q->key);
	else
		q->thumb = thumbprint_of(crt);
out:
	if (r != 0 && !reported)
		fprintf(stderr, "winrmctl: cannot generate the certificate\n");
	gnutls_free(out.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	free(shortname);
	return r;
}

/* ---- steps ---- */

static int
run_groupadd(const char *group)
{
	char *argv[] = { (char *)"groupadd", (char *)"--system",
	    (char *)group, NULL };
	pid_t pid;
	int status, r;

	if ((r = posix_spawnp(&pid, "groupadd", NULL, NULL, argv,
	    environ)) != 0) {
		fprintf(stderr, "winrmctl: cannot run groupadd: %s\n",
		    strerror(r));
		return -1;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void
step_group(struct qc *q)
{
	if (getgrnam(q->group) != NULL) {
		report("ok:", "group %s exists", q->group);
		return;
	}
	if (q->dry) {
		report("would:", "create group %s (groupadd --system %s)",
		    q->group, q->group);
		return;
	}
	if (run_groupadd(q->group) != 0) {
		fprintf(stderr, "winrmctl: groupadd --system %s failed\n",
		    q->group);
		q->failed = 1;
		return;
	}
	report("done:", "created group %s", q->group);
}

static bool
has_file(const char *dir, const char *name)
{
	char *p = ctl_xasprintf("%s/%s", dir, name);
	bool r = exists(p);

	free(p);
	return r;
}

static void
step_pam(struct qc *q)
{
	char *dir, *tmp;
	const char *text = pam_unix;

	if (exists(q->pam_file)) {
		report("ok:", "PAM service file %s exists", q->pam_file);
		return;
	}
	tmp = ctl_xstrdup(q->pam_file);
	dir = ctl_xstrdup(dirname(tmp));
	free(tmp);
	/* What the distribution's own services include. */
	if (has_file(dir, "common-auth"))
		text = pam_debian;
	else if (has_file(dir, "password-auth"))
		text = pam_redhat;
	else if (has_file(dir, "system-auth"))
		text = pam_system_auth;
	if (q->dry)
		report("would:", "write PAM service file %s (%s)", q->pam_file,
		    text == pam_debian ? "common-auth, common-account, "
		    "common-session-noninteractive" : text == pam_redhat ?
		    "password-auth" : text == pam_system_auth ? "system-auth" :
		    "pam_unix");
	else if (ctl_write_file(q->pam_file, text, 0644, false) != 0) {
		fprintf(stderr, "winrmctl: cannot write %s: %s\n", q->pam_file,
		    strerror(errno));
		q->failed = 1;
	} else
		report("done:", "wrote PAM service file %s", q->pam_file);
	free(dir);
}

static int
mkdir_p(const char *path, mode_t mode)
{
	char *copy = ctl_xstrdup(path), *p;
	int r = 0;

	for (p = copy + 1; *p != '\0' && r == 0; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) != 0 && errno != EEXIST)
			r = -1;
		*p = '/';
	}
	if (r == 0 && mkdir(copy, mode) != 0 && errno != EEXIST)
		r = -1;
	free(copy);
	return r;
}

static void
step_cert(struct qc *q)
{
	bool c = exists(q->cert), k = exists(q->key);

	if (c && k) {
		q->thumb = file_thumbprint(q->cert);
		report("ok:", "certificate %s and key %s exist%s%s", q->cert,
		    q->key, q->thumb != NULL ? "; thumbprint " : "",
		    q->thumb != NULL ? q->thumb : "");
		return;
	}
	if (c || k) {
		fprintf(stderr, "winrmctl: %s exists but %s does not; not "
		    "replacing it: remove it, or put the other one beside it\n",
		    c ? q->cert : q->key, c ? q->key : q->cert);
		q->failed = 1;
		return;
	}
	if (q->dry) {
		report("would:", "generate a self-signed certificate for %s, "
		    "valid %d days: %s, key %s", q->host, CERT_DAYS, q->cert,
		    q->key);
		return;
	}
	if (mkdir_p(q->confdir, 0755) != 0) {
		fprintf(stderr, "winrmctl: cannot create %s: %s\n", q->confdir,
		    strerror(errno));
		q->failed = 1;
		return;
	}
	if (make_self_signed(q) != 0) {
		q->failed = 1;
		return;
	}
	report("done:", "generated a self-signed certificate for %s: %s "
	    "(thumbprint %s), key %s", q->host, q->cert,
	    q->thumb != NULL ? q->thumb : "?", q->key);
}

static void
print_errors(const struct wrm_conf *conf)
{
	size_t i;

	for (i = 0; i < conf->n_errors; i++)
		fprintf(stderr, "error: %s\n", conf->errors[i]);
}

/* A new winrmd.conf. */
static void
step_new_config(struct qc *q)
{
	struct ctl_subst sub;
	struct wrm_conf *conf;
	char *text, *sdir;

	text = ctl_xasprintf(
	    "# winrmd.conf, written by winrmctl quickconfig: system mode, an\n"
	    "# HTTPS listener, Negotiate and Kerberos, Basic over HTTPS only.\n"
	    "# Every key and its default: winrmd.conf(5), or \"winrmd -T\".\n"
	    "\n[Service]\n"
	    "AllowUnencrypted = false\n"
	    "AllowGroups = %s\n"
	    "\n[Service/Auth]\n"
	    "Negotiate = true\n"
	    "Kerberos = true\n"
	    "# Basic is offered on HTTPS only while AllowUnencrypted is\n"
	    "# false.\n"
	    "Basic = true\n"
	    "\n[Listener HTTPS]\n"
	    "Transport = HTTPS\n"
	    "Port = %u\n"
	    "CertificateFile = %s\n"
	    "KeyFile = %s\n"
	    "Hostname = %s\n"
	    "\n# Session configurations (winrmctl config).\n"
	    "Include = sessions.d/*.conf\n",
	    q->group, q->port, q->cert, q->key, q->host);
	sub.path = ctl_config_path;
	sub.text = text;
	if (ctl_conf_load(ctl_config_path, &sub, 1, &conf) != 0)
		exit(1);
	if (conf->n_errors > 0) {
		print_errors(conf);
		fprintf(stderr, "winrmctl: the configuration would not "
		    "check\n");
		q->failed = 1;
	} else if (q->dry)
		report("would:", "write %s: HTTPS listener on port %u, "
		    "Negotiate, Kerberos, Basic on HTTPS only, "
		    "AllowUnencrypted = false, AllowGroups = %s",
		    ctl_config_path, q->port, q->group);
	else {
		sdir = ctl_xasprintf("%s/sessions.d", q->confdir);
		if (mkdir_p(sdir, 0755) != 0 ||
		    ctl_write_file(ctl_config_path, text, 0644, false) != 0) {
			fprintf(stderr, "winrmctl: cannot write %s: %s\n",
			    ctl_config_path, strerror(errno));
			q->failed = 1;
		} else
			report("done:", "wrote %s: HTTPS listener on port %u, "
			    "Negotiate, Kerberos, Basic on HTTPS only, "
			    "AllowUnencrypted = false, AllowGroups = %s",
			    ctl_config_path, q->port, q->group);
		free(sdir);
	}
	q->changed_listener = true;
	wrm_conf_free(conf);
	free(text);
}

/* An existing configuration: enable an HTTPS listener if none is. */
static void
step_listener(struct qc *q, const struct wrm_conf *cur)
{
	struct ctl_subst sub;
	struct wrm_conf *conf;
	char *path, *text;

	path = ctl_xasprintf("%s/sessions.d/%s", q->confdir, DROPIN_NAME);
	if (exists(path)) {
		fprintf(stderr, "winrmctl: no HTTPS listener is enabled, but "
		    "%s exists; not replacing it\n", path);
		q->failed = 1;
		free(path);
		return;
	}
	text = ctl_xasprintf(
	    "# The HTTPS listener, enabled by winrmctl quickconfig.  Keys set\n"
	    "# here win over the same keys in %s.\n"
	    "[Listener %s]\n"
	    "Transport = HTTPS\n"
	    "Port = %u\n"
	    "CertificateFile = %s\n"
	    "KeyFile = %s\n"
	    "Hostname = %s\n"
	    "Enabled = true\n", ctl_config_path, q->listener, q->port, q->cert,
	    q->key, q->host);
	sub.path = path;
	sub.text = text;
	if (ctl_conf_load(ctl_config_path, &sub, 1, &conf) != 0)
		exit(1);
	if (!sub.seen) {
		fprintf(stderr, "winrmctl: %s does not include "
		    "sessions.d/*.conf; add this section to it by hand:\n\n%s\n", ctl_config_path,
		    strchr(strchr(text, '\n') + 1, '\n') + 1);
		q->failed = 1;
	} else if (conf->n_errors > 0) {
		print_errors(conf);
		fprintf(stderr, "winrmctl: the configuration would not check "
		    "with %s\n", path);
		q->failed = 1;
	} else if (q->dry)
		report("would:", "write %s: enable HTTPS listener %s on "
		    "port %u", path, q->listener, q->port);
	else if (ctl_write_file(path, text, 0644, false) != 0) {
		fprintf(stderr, "winrmctl: cannot write %s: %s\n", path,
		    strerror(errno));
		q->failed = 1;
	} else
		report("done:", "wrote %s: HTTPS listener %s on port %u", path,
		    q->listener, q->port);
	q->changed_listener = true;
	wrm_conf_free(conf);
	free(text);
	free(path);
}

static bool
in_list(const char *list, const char *word)
{
	char *copy = ctl_xstrdup(list), *w, *save = NULL;
	bool found = false;

	for (w = strtok_r(copy, " ,\t", &save); w != NULL && !found;
	    w = strtok_r(NULL, " ,\t", &save))
		found = strcmp(w, word) == 0;
	free(copy);
	return found;
}

static void
remaining(const struct qc *q, const struct wrm_conf *cur)
{
	printf("\nWhat remains to be done:\n");
	if (cur != NULL && !in_list(cur->service.allow_groups, q->group))
		printf("  - AllowGroups in %s is \"%s\": add %s to it for its "
		    "members to connect.\n", ctl_config_path,
		    cur->service.allow_groups, q->group);
	if (cur != NULL && cur->service.allow_unencrypted)
		printf("  - AllowUnencrypted is true in %s: HTTP listeners "
		    "accept unencrypted requests and Basic.\n",
		    ctl_config_path);
	if (cur != NULL && !cur->auth.basic)
		printf("  - Basic is off in %s (Negotiate and Kerberos only); "
		    "Basic = true in\n    [Service/Auth] allows it over "
		    "HTTPS.\n",
		    ctl_config_path);
	if (cur != NULL && cur->service.user_mode)
		printf("  - UserMode is true in %s: shells run as winrmd's "
		    "user, and users come from winrmctl user add.\n",
		    ctl_config_path);
	printf("  - Check the configuration: winrmd -t%s%s\n",
	    strcmp(ctl_config_path, WRM_DEFAULT_CONFIG) != 0 ? " -f " : "",
	    strcmp(ctl_config_path, WRM_DEFAULT_CONFIG) != 0 ?
	    ctl_config_path : "");
	printf("  - Start winrmd and start it at boot: systemctl enable --now "
	    "winrmd%s\n", q->changed_listener ? "\n    (if it runs already, "
	    "restart it: a new listener opens at start, not on reload)" : "");
	printf("  - Open TCP port %u in the firewall, for example\n"
	    "    firewall-cmd --permanent --add-port=%u/tcp && "
	    "firewall-cmd --reload, or ufw allow %u/tcp\n", q->port, q->port,
	    q->port);
	printf("  - Add the users who may connect to group %s: usermod -aG "
	    "%s USER\n", q->group, q->group);
	printf("  - Clients must trust the certificate %s%s%s%s: on Windows,\n"
	    "    Import-Certificate -FilePath cert.pem -CertStoreLocation "
	    "Cert:\\LocalMachine\\Root,\n"
	    "    or connect with -SessionOption (New-PSSessionOption "
	    "-SkipCACheck -SkipCNCheck).\n"
	    "    Then: Enter-PSSession -ComputerName %s -UseSSL "
	    "-Credential USER\n", q->cert, q->thumb != NULL ?
	    " (thumbprint " : "", q->thumb != NULL ? q->thumb : "",
	    q->thumb != NULL ? ")" : "", q->host);
	printf("  - Clients that connect over HTTP with NTLM or Basic instead "
	    "need this host in\n    their TrustedHosts: Set-Item "
	    "WSMan:\\localhost\\Client\\TrustedHosts -Value %s -Concatenate\n",
	    q->host);
	printf("  - Kerberos: a keytab with HTTP/%s@REALM (Keytab in "
	    "[Service/Auth], default /etc/krb5.keytab)\n", q->host);
}

static void
qc_usage(void)
{
	ctl_usage();
}

int
ctl_cmd_quickconfig(int argc, char **argv)
{
	struct qc q;
	struct wrm_conf *cur = NULL;
	const struct wrm_listener_conf *on = NULL, *off = NULL;
	char *tmp;
	uint64_t v;
	size_t i;
	int k;

	memset(&q, 0, sizeof(q));
	q.port = 5986;
	q.group = "winrmd-users";
	for (k = 0; k < argc; k++) {
		const char *a = argv[k];

		if (strcmp(a, "--dry-run") == 0)
			q.dry = true;
		else if (k + 1 < argc && strcmp(a, "--https-port") == 0) {
			if (wrm_parse_u64(argv[++k], &v) != 0 || v == 0 ||
			    v > 65535)
				qc_usage();
			q.port = (unsigned)v;
			q.port_given = true;
		} else if (k + 1 < argc && strcmp(a, "--hostname") == 0)
			q.host = ctl_xstrdup(argv[++k]);
		else if (k + 1 < argc && strcmp(a, "--group") == 0)
			q.group = argv[++k];
		else if (k + 1 < argc && strcmp(a, "--pam-file") == 0)
			q.pam_file = ctl_xstrdup(argv[++k]);
		else
			qc_usage();
	}
	if (q.host == NULL)
		q.host = host_name();
	if (!valid_word(q.host, ".-", 253)) {
		fprintf(stderr, "winrmctl: bad host name %s\n", q.host);
		return 1;
	}
	if (!valid_word(q.group, "._-", 32)) {
		fprintf(stderr, "winrmctl: bad group name %s\n", q.group);
		return 1;
	}
	tmp = ctl_xstrdup(ctl_config_path);
	q.confdir = ctl_xstrdup(dirname(tmp));
	free(tmp);
	if (exists(ctl_config_path)) {
		if (ctl_conf_load(ctl_config_path, NULL, 0, &cur) != 0)
			return 1;
		if (cur->n_errors > 0) {
			print_errors(cur);
			fprintf(stderr, "winrmctl: %s does not check; fix it "
			    "first\n", ctl_config_path);
			wrm_conf_free(cur);
			return 1;
		}
		for (i = 0; i < cur->n_listeners; i++) {
			const struct wrm_listener_conf *l = &cur->listeners[i];

			if (strcasecmp(l->transport, "HTTPS") != 0)
				continue;
			if (l->enabled && on == NULL)
				on = l;
			else if (!l->enabled && off == NULL)
				off = l;
		}
		/* The listener quickconfig uses, and its files. */
		if (on != NULL || off != NULL) {
			const struct wrm_listener_conf *l = on ? on : off;

			q.listener = ctl_xstrdup(l->name);
			if (l->certificate_file[0] != '\0')
				q.cert = ctl_xstrdup(l->certificate_file);
			if (l->key_file[0] != '\0')
				q.key = ctl_xstrdup(l->key_file);
			if (!q.port_given)
				q.port = (unsigned)l->port;
		} else {
			q.listener = ctl_xstrdup("HTTPS");
			for (i = 0; i < cur->n_listeners; i++)
				if (strcasecmp(cur->listeners[i].name,
				    "HTTPS") == 0)
					break;
			if (i < cur->n_listeners) {
				free(q.listener);
				q.listener = ctl_xstrdup("HTTPS-quickconfig");
			}
		}
	}
	if (q.pam_file == NULL)
		q.pam_file = ctl_xasprintf("/etc/pam.d/%s", cur != NULL ?
		    cur->service.pam_service : "winrmd");
	if (q.cert == NULL)
		q.cert = ctl_xasprintf("%s/cert.pem", q.confdir);
	if (q.key == NULL)
		q.key = ctl_xasprintf("%s/key.pem", q.confdir);

	printf("%s %s, host %s:\n", q.dry ? "Plan (dry run: nothing is "
	    "changed) for" : "Setting up", ctl_config_path, q.host);
	step_group(&q);
	if (!q.failed)
		step_pam(&q);
	if (!q.failed)
		step_cert(&q);
	if (!q.failed) {
		if (cur == NULL)
			step_new_config(&q);
		else if (on != NULL)
			report("ok:", "HTTPS listener %s is enabled on port %u",
			    on->name, q.port);
		else
			step_listener(&q, cur);
	}
	if (!q.failed)
		remaining(&q, cur);
	wrm_conf_free(cur);
	free(q.host);
	free(q.pam_file);
	free(q.confdir);
	free(q.cert);
	free(q.key);
	free(q.thumb);
	free(q.listener);
	return q.failed ? 1 : 0;
}
