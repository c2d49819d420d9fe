#include "config.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/md4.h>
#include <stdio.h>
#include <gnutls/crypto.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth-cert.h"
#include "auth-gss.h"
#include "auth-pam.h"
#include "auth.h"
#include "conf.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "misc.h"
#include "store.h"
#include "work.h"

#define CACHE_SLOTS	256
#define CACHE_TTL_MS	(5 * 60 * 1000)
#define MAX_CREDENTIAL	1024

/*
 * Verified credentials, keyed by SHA-256(user NUL password): a client that
 * sends Basic on every request costs one hash check per five minutes.
 */
struct cache_slot {
	uint8_t key[32];
	uint64_t expires;
	char *user;
};

static struct cache_slot cache[CACHE_SLOTS];

/* A hash of the same kind, checked when the user does not exist. */
static char *dummy_hash;

struct scheme {
	const char *name;
	/* Whether the scheme may be used on this kind of listener. */
	bool (*usable)(bool tls);
	/* Start checking token (the text after "Name "). */
	void (*check)(const char *token, const struct wrm_auth_input *in,
	    struct wrm_auth_result *res, wrm_auth_done_fn done, void *arg);
	const char *challenge;
};

static bool basic_usable(bool tls);
static void basic_check(const char *token, const struct wrm_auth_input *in,
    struct wrm_auth_result *res, wrm_auth_done_fn done, void *arg);
static bool negotiate_usable(bool tls);
static bool kerberos_usable(bool tls);
static void negotiate_check(const char *token,
    const struct wrm_auth_input *in, struct wrm_auth_result *res,
    wrm_auth_done_fn done, void *arg);
static void kerberos_check(const char *token,
    const struct wrm_auth_input *in, struct wrm_auth_result *res,
    wrm_auth_done_fn done, void *arg);
static bool cert_usable(bool tls);
static void cert_check(const char *token, const struct wrm_auth_input *in,
    struct wrm_auth_result *res, wrm_auth_done_fn done, void *arg);

#define CERT_SCHEME \
	"http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"

/*
 * Challenges go out in this order, one WWW-Authenticate line each.  NTLM
 * is accepted when a client sends it but never advertised (Windows does
 * not advertise it, and clients prefer it when they see it).
 */
static const struct scheme schemes[] = {
	{ "Negotiate", negotiate_usable, negotiate_check, "Negotiate" },
	{ "Kerberos", kerberos_usable, kerberos_check, "Kerberos" },
	{ "Basic", basic_usable, basic_check, "Basic realm=\"WSMAN\"" },
	{ "NTLM", negotiate_usable, negotiate_check, NULL },
	/* Client certificates: the value is the profile URI alone. */
	{ CERT_SCHEME, cert_usable, cert_check, NULL },
};

int
wrm_auth_init(void)
{
	char pw[33];
	uint8_t rnd[16];
	size_t i;

	wrm_random(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
	return wrm_auth_hash_password(pw, &dummy_hash);
}

void
wrm_auth_flush_cache(void)
{
	size_t i;

	for (i = 0; i < CACHE_SLOTS; i++) {
		free(cache[i].user);
		memset(&cache[i], 0, sizeof(cache[i]));
	}
}

void
wrm_auth_shutdown(void)
{
	wrm_auth_flush_cache();
	free(dummy_hash);
	dummy_hash = NULL;
}

void
wrm_identity_clear(struct wrm_identity *who)
{
	free(who->user);
	free(who->local_user);
	memset(who, 0, sizeof(*who));
}

void
wrm_auth_result_clear(struct wrm_auth_result *res)
{
	wrm_identity_clear(&res->who);
	free(res->challenge_buf);
	free(res->mutual);
	memset(res, 0, sizeof(*res));
}

int
wrm_identity_copy(struct wrm_identity *dst, const struct wrm_identity *src)
{
	*dst = *src;
	dst->user = wrm_strdup0(src->user);
	dst->local_user = wrm_strdup0(src->local_user);
	return dst->user != NULL && dst->local_user != NULL ? 0 :
	    WRM_ERR_ALLOC;
}

void
wrm_auth_conn_clear(struct wrm_auth_conn *c)
{
	wrm_gss_free(c->gss);
	wrm_identity_clear(&c->who);
	memset(c, 0, sizeof(*c));
}

void
wrm_auth_challenges(bool tls, struct wrm_auth_result *res)
{
	size_t i;

	res->status = WRM_AUTH_CHALLENGE;
	res->n_challenges = 0;
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (schemes[i].challenge != NULL && schemes[i].usable(tls) &&
		    res->n_challenges < WRM_AUTH_MAX_CHALLENGES)
			res->challenges[res->n_challenges++] =
			    schemes[i].challenge;
}

/*
 * Failed logins per client address and per user name in the current
 * minute; past MaxAuthFailures the next attempts are refused unchecked.
 */
#define FAIL_SLOTS	512

struct fail_slot {
	char key[128];
	uint64_t window;	/* minute the count belongs to */
	uint64_t count;
};

static struct fail_slot fails[FAIL_SLOTS];

static struct fail_slot *
fail_slot(const char *kind, const char *key)
{
	char k[128];
	uint32_t h = 2166136261u;
	const char *c;

	snprintf(k, sizeof(k), "%s:%s", kind, key);
	for (c = k; *c != '\0'; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	return &fails[h % FAIL_SLOTS];
}

static void
note_failure(const char *kind, const char *key)
{
	struct fail_slot *s;
	uint64_t minute = wrm_now_ms() / 60000;
	char k[128];

	if (key == NULL)
		return;
	snprintf(k, sizeof(k), "%s:%s", kind, key);
	s = fail_slot(kind, key);
	if (strcmp(s->key, k) != 0 || s->window != minute) {
		snprintf(s->key, sizeof(s->key), "%s", k);
		s->window = minute;
		s->count = 0;
	}
	s->count++;
}

static bool
over_limit(const char *kind, const char *key)
{
	struct fail_slot *s;
	char k[128];

	if (key == NULL || D.conf->service.max_auth_failures == 0)
		return false;
	snprintf(k, sizeof(k), "%s:%s", kind, key);
	s = fail_slot(kind, key);
	return strcmp(s->key, k) == 0 && s->window == wrm_now_ms() / 60000 &&
	    s->count >= D.conf->service.max_auth_failures;
}

static void
fail(const struct wrm_auth_input *in, struct wrm_auth_result *res,
    const char *scheme, const char *user, const char *why)
{
	wrm_audit("AUTH_FAIL", "scheme=%s user=%s client=%s reason=\"%s\"",
	    scheme, user ? user : "-", in->client_ip, why);
	wrm_metrics_auth_failure(scheme);
	note_failure("ip", in->client_ip);
	note_failure("user", user);
	wrm_auth_challenges(in->tls, res);
}

static bool
throttled(const struct wrm_auth_input *in, struct wrm_auth_result *res,
    const char *scheme, const char *user)
{
	if (!over_limit("ip", in->client_ip) && !over_limit("user", user))
		return false;
	wrm_audit("AUTH_THROTTLED", "scheme=%s user=%s client=%s", scheme,
	    user ? user : "-", in->client_ip);
	wrm_auth_challenges(in->tls, res);
	return true;
}

void
wrm_auth_check(const struct wrm_auth_input *in, struct wrm_auth_result *res,
    wrm_auth_done_fn done, void *arg)
{
	const char *h = in->authorization, *sp;
	size_t i, nl;

	memset(res, 0, sizeof(*res));
	if (h == NULL || *h == '\0') {
		if (in->conn != NULL && in->conn->established &&
		    wrm_identity_copy(&res->who, &in->conn->who) == 0) {
			res->status = WRM_AUTH_OK;
			res->sealed_session = true;
			return;
		}
		wrm_auth_challenges(in->tls, res);
		return;
	}
	sp = strchr(h, ' ');
	nl = sp != NULL ? (size_t)(sp - h) : strlen(h);
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strlen(schemes[i].name) != nl ||
		    strncasecmp(h, schemes[i].name, nl) != 0)
			continue;
		if (!schemes[i].usable(in->tls)) {
			fail(in, res, schemes[i].name, NULL, in->tls ?
			    "scheme disabled" : "scheme disabled or needs "
			    "AllowUnencrypted on HTTP");
			return;
		}
		while (sp != NULL && *sp == ' ')
			sp++;
		schemes[i].check(sp != NULL ? sp : "", in, res, done, arg);
		return;
	}
	fail(in, res, "unknown", NULL, "unsupported authorization scheme");
}

/* ---- password hashes ---- */

int
wrm_auth_hash_password(const char *password, char **hash_r)
{
	struct crypt_data *cd;
	char *salt, *h;

	*hash_r = NULL;
	if ((salt = crypt_gensalt_ra(NULL, 0, NULL, 0)) == NULL)
		return WRM_ERR_SYSTEM;
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		free(salt);
		return WRM_ERR_ALLOC;
	}
	h = crypt_r(password, salt, cd);
	free(salt);
	if (h == NULL || h[0] == '*') {
		free(cd);
		return WRM_ERR_SYSTEM;
	}
	*hash_r = strdup(h);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return *hash_r != NULL ? 0 : WRM_ERR_ALLOC;
}

bool
wrm_auth_verify_hash(const char *password, const char *hash)
{
	struct crypt_data *cd;
	const char *h;
	bool ok;

	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return false;
	h = crypt_r(password, hash, cd);
	ok = h != NULL && h[0] != '*' && strlen(h) == strlen(hash) &&
	    memcmp(h, hash, strlen(hash)) == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

int
wrm_auth_nt_hash(const char *password, char hex[33])
{
	struct md4_ctx md4;
	struct wrm_buf u16;
	const unsigned char *s = (const unsigned char *)password;
	uint8_t digest[MD4_DIGEST_SIZE];
	uint32_t c;
	size_t i;

	wrm_buf_init(&u16, 0);
	u16.secret = true;
	while (*s != '\0') {
		/* UTF-8 to UTF-16LE; invalid bytes count as themselves. */
		c = *s++;
		if ((c & 0xe0) == 0xc0 && (s[0] & 0xc0) == 0x80) {
			c = (c & 0x1f) << 6 | (s[0] & 0x3f);
			s++;
		} else if ((c & 0xf0) == 0xe0 && (s[0] & 0xc0) == 0x80 &&
		    (s[1] & 0xc0) == 0x80) {
			c = (c & 0x0f) << 12 | (uint32_t)(s[0] & 0x3f) << 6 |
			    (s[1] & 0x3f);
			s += 2;
		} else if ((c & 0xf8) == 0xf0 && (s[0] & 0xc0) == 0x80 &&
		    (s[1] & 0xc0) == 0x80 && (s[2] & 0xc0) == 0x80) {
			c = (c & 0x07) << 18 | (uint32_t)(s[0] & 0x3f) << 12 |
			    (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
			s += 3;
			c -= 0x10000;
			wrm_buf_put_u16_le(&u16, (uint16_t)(0xd800 + (c >> 10)));
			c = 0xdc00 + (c & 0x3ff);
		}
		if (wrm_buf_put_u16_le(&u16, (uint16_t)c) != 0) {
			wrm_buf_free(&u16);
			return WRM_ERR_ALLOC;
		}
	}
	md4_init(&md4);
	md4_update(&md4, wrm_buf_len(&u16), wrm_buf_ptr(&u16));
	md4_digest(&md4, sizeof(digest), digest);
	wrm_buf_free(&u16);
	for (i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02X", digest[i]);
	explicit_bzero(digest, sizeof(digest));
	return 0;
}

/*
 * The NetBIOS names gss-ntlmssp puts in its CHALLENGE: the computer name
 * (the short host name in upper case) and the domain (WORKGROUP), unless
 * its environment variables name others.
 */
static void
netbios_names(char computer[64], char domain[64])
{
	const char *e;
	char *p;

	if ((e = getenv("NETBIOS_COMPUTER_NAME")) != NULL && *e != '\0')
		snprintf(computer, 64, "%s", e);
	else {
		if (gethostname(computer, 64) != 0)
			snprintf(computer, 64, "localhost");
		computer[63] = '\0';
		if ((p = strchr(computer, '.')) != NULL)
			*p = '\0';
		for (p = computer; *p != '\0'; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 'a' + 'A');
	}
	if ((e = getenv("NETBIOS_DOMAIN_NAME")) != NULL && *e != '\0')
		snprintf(domain, 64, "%s", e);
	else
		snprintf(domain, 64, "WORKGROUP");
}

/*
 * NTLMv2 proofs are keyed with the domain name the client chose, and
 * gss-ntlmssp verifies with the domain of the matching line (or none).
 * Clients given a bare user name (Windows SSPI, go-ntlmssp) use the
 * server's computer name from the CHALLENGE, others send no domain or
 * ".": so every account is listed under each of those, qualified lines
 * first, then unqualified.
 */
int
wrm_auth_write_ntlm_file(struct wrm_store *st, const char *path)
{
	struct wrm_store_user *u;
	struct wrm_buf b;
	char computer[64], domain[64], *tmp;
	const char *quals[4];
	size_t n, i, q;
	int fd, r;

	netbios_names(computer, domain);
	quals[0] = computer;
	quals[1] = domain;
	quals[2] = ".";
	quals[3] = NULL;
	if ((r = wrm_store_user_list(st, &u, &n)) != 0)
		return r;
	wrm_buf_init(&b, 0);
	b.secret = true;
	for (q = 0; q < 4; q++)
		for (i = 0; i < n; i++)
			if (u[i].nt_hash != NULL && strlen(u[i].nt_hash) == 32)
				wrm_buf_printf(&b, "%s%s%s:%zu:"
				    "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:%s:"
				    "[U          ]:LCT-00000000:\n",
				    quals[q] ? quals[q] : "", quals[q] ?
				    "\\" : "", u[i].name, 1000 + i,
				    u[i].nt_hash);
	wrm_store_user_list_free(u, n);
	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		wrm_buf_free(&b);
		return WRM_ERR_ALLOC;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	r = fd < 0 || write(fd, wrm_buf_ptr(&b), wrm_buf_len(&b)) !=
	    (ssize_t)wrm_buf_len(&b) ? WRM_ERR_SYSTEM : 0;
	if (fd >= 0)
		close(fd);
	if (r == 0 && rename(tmp, path) != 0)
		r = WRM_ERR_SYSTEM;
	if (r != 0)
		unlink(tmp);
	free(tmp);
	wrm_buf_free(&b);
	return r;
}

/* ---- Basic ---- */

static bool
basic_usable(bool tls)
{
	return D.conf->auth.basic &&
	    (tls || D.conf->service.allow_unencrypted);
}

static void
cache_key(const char *user, const char *pass, uint8_t key[32])
{
	size_t ul = strlen(user), pl = strlen(pass);
	uint8_t *buf = malloc(ul + 1 + pl);

	if (buf == NULL) {
		memset(key, 0, 32);
		return;
	}
	memcpy(buf, user, ul);
	buf[ul] = 0;
	memcpy(buf + ul + 1, pass, pl);
	gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, ul + 1 + pl, key);
	explicit_bzero(buf, ul + 1 + pl);
	free(buf);
}

static struct cache_slot *
cache_find(const uint8_t key[32])
{
	struct cache_slot *s = &cache[key[0] ^ key[31]];

	if (s->user != NULL && s->expires > wrm_now_ms() &&
	    memcmp(s->key, key, 32) == 0)
		return s;
	return NULL;
}

static void
cache_put(const uint8_t key[32], const char *user)
{
	struct cache_slot *s = &cache[key[0] ^ key[31]];

	free(s->user);
	memcpy(s->key, key, 32);
	s->user = strdup(user);
	s->expires = wrm_now_ms() + CACHE_TTL_MS;
}

/* Whether account (primary group gid) is in one of the listed groups. */
static bool
in_groups(const char *account, gid_t gid, const char *groups)
{
	gid_t have[256];
	int n = 256, i;
	char *list, *g, *save = NULL;
	struct group *gr;
	bool ok = false;

	if (groups == NULL || *groups == '\0')
		return false;
	if (getgrouplist(account, gid, have, &n) < 0)
		n = 0;
	if ((list = strdup(groups)) == NULL)
		return false;
	for (g = strtok_r(list, " ,", &save); g != NULL && !ok;
	    g = strtok_r(NULL, " ,", &save)) {
		if ((gr = getgrnam(g)) == NULL)
			continue;
		for (i = 0; i < n && !ok; i++)
			ok = have[i] == gr->gr_gid;
	}
	free(list);
	return ok;
}

static bool
in_list(const char *name, const char *list)
{
	char *copy, *w, *save = NULL;
	bool ok = false;

	if (name == NULL || list == NULL || (copy = strdup(list)) == NULL)
		return false;
	for (w = strtok_r(copy, " ,", &save); w != NULL && !ok;
	    w = strtok_r(NULL, " ,", &save))
		ok = strcasecmp(w, name) == 0;
	free(copy);
	return ok;
}

/* Service-wide allow list: root, and members of AllowGroups. */
static bool
may_connect(const struct passwd *pw)
{
	if (D.user_mode || pw->pw_uid == 0)
		return true;
	return in_groups(pw->pw_name, pw->pw_gid,
	    D.conf->service.allow_groups);
}

static bool
in_user_or_group_lists(const struct wrm_identity *who, const char *users,
    const char *groups)
{
	if (in_list(who->user, users) || in_list(who->local_user, users))
		return true;
	return !D.user_mode && who->local_user != NULL &&
	    in_groups(who->local_user, who->gid, groups);
}

bool
wrm_auth_session_allows(const struct wrm_identity *who,
    const struct wrm_session_conf *sc)
{
	if (in_user_or_group_lists(who, sc->deny_users, sc->deny_groups))
		return false;
	if (sc->allow_users[0] == '\0' && sc->allow_groups[0] == '\0')
		return true;
	return in_user_or_group_lists(who, sc->allow_users, sc->allow_groups);
}

/*
 * The account shells run as: in user mode the daemon's own, otherwise the
 * Linux account the authenticated name maps to (which must exist).
 */
/*
 * User mode: the daemon's own account, looked up once rather than read
 * from the user database on every request.
 */
static struct passwd self_pw;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

static void
self_lookup(void)
{
	struct passwd *pw = getpwuid(getuid());

	if (pw == NULL || (self_pw.pw_name = strdup(pw->pw_name)) == NULL)
		return;
	self_pw.pw_uid = pw->pw_uid;
	self_pw.pw_gid = pw->pw_gid;
}

static int
map_identity(struct wrm_identity *who, const char *name, const char *mech)
{
	struct passwd *pw;

	if (D.user_mode) {
		pthread_once(&self_once, self_lookup);
		pw = self_pw.pw_name != NULL ? &self_pw : NULL;
	} else
		pw = getpwnam(name);
	if (pw == NULL)
		return WRM_ERR_NOT_FOUND;
	who->user = strdup(name);
	who->local_user = strdup(pw->pw_name);
	who->uid = pw->pw_uid;
	who->gid = pw->pw_gid;
	who->mechanism = mech;
	who->is_admin = !D.user_mode && pw->pw_uid == 0;
	who->denied = !may_connect(pw);
	if (who->denied)
		wrm_audit("AUTH_DENIED", "user=%s account=%s reason=\"not root "
		    "and not in AllowGroups (%s)\"", name, pw->pw_name,
		    D.conf->service.allow_groups);
	return who->user != NULL && who->local_user != NULL ? 0 :
	    WRM_ERR_ALLOC;
}

/* A request waiting for the answer to a verification already running. */
struct basic_waiter {
	struct wrm_auth_input in;
	char *client_ip;
	struct wrm_auth_result *res;
	wrm_auth_done_fn done;
	void *arg;
	struct basic_waiter *next;
};

struct basic_job {
	char *user;
	char *pass;
	char *hash;		/* NULL: unknown user */
	char *pam_service;	/* system mode: check with PAM instead */
	char *pam_why;
	bool ok;
	uint8_t key[32];
	struct basic_waiter self;	/* the request that started it */
	struct basic_waiter *waiters;	/* the same credentials meanwhile */
	struct basic_job *next;		/* in the list of running jobs */
};

/*
 * Verifications under way (yescrypt costs milliseconds and megabytes):
 * a request with the same user and password joins the running one
 * instead of hashing again.  Touched on the loop thread only.
 */
static struct basic_job *basic_running;


static void
basic_run(void *arg)
{
	struct basic_job *j = arg;

	if (j->pam_service != NULL) {
		j->ok = wrm_pam_check(j->pam_service, j->user, j->pass,
		    j->self.client_ip, &j->pam_why) == 0;
		return;
	}
	j->ok = wrm_auth_verify_hash(j->pass, j->hash ? j->hash :
	    dummy_hash ? dummy_hash : "*") && j->hash != NULL;
}

/* Answer one request of a finished verification. */
static void
basic_answer(struct basic_job *j, struct basic_waiter *w)
{
	w->in.client_ip = w->client_ip;
	if (j->ok && map_identity(&w->res->who, j->user, "Basic") == 0) {
		cache_put(j->key, j->user);
		w->res->status = WRM_AUTH_OK;
		wrm_metrics_auth_success("Basic");
		wrm_audit("AUTH_OK", "scheme=Basic user=%s client=%s", j->user,
		    w->client_ip);
	} else
		fail(&w->in, w->res, "Basic", j->user, j->ok ?
		    "no such local account" : j->pam_service != NULL ?
		    (j->pam_why ? j->pam_why : "PAM refused") : j->hash ?
		    "wrong password" : "unknown user");
	w->done(w->arg, w->res);
	free(w->client_ip);
}

static void
basic_done(void *arg)
{
	struct basic_job *j = arg, **pp;
	struct basic_waiter *w;

	for (pp = &basic_running; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	basic_answer(j, &j->self);
	while ((w = j->waiters) != NULL) {
		j->waiters = w->next;
		basic_answer(j, w);
		free(w);
	}
	wrm_freezero_str(j->pass);
	free(j->user);
	free(j->hash);
	free(j->pam_service);
	free(j->pam_why);
	free(j);
}

/* Join a running verification of the same credentials, if there is one. */
static bool
basic_join(const uint8_t key[32], const struct wrm_auth_input *in,
    struct wrm_auth_result *res, wrm_auth_done_fn done, void *arg)
{
	struct basic_job *j;
	struct basic_waiter *w, **pp;

	/*
	 * PAM sees the client's address (pam_access and the like may judge
	 * by it): there, only a verification for the same address is shared.
	 */
	for (j = basic_running; j != NULL; j = j->next)
		if (memcmp(j->key, key, 32) == 0 && (j->pam_service == NULL ||
		    (j->self.client_ip != NULL && strcmp(j->self.client_ip,
		    in->client_ip ? in->client_ip : "-") == 0)))
			break;
	if (j == NULL || (w = calloc(1, sizeof(*w))) == NULL)
		return false;
	w->in = *in;
	if ((w->client_ip = strdup(in->client_ip ? in->client_ip : "-")) ==
	    NULL) {
		free(w);
		return false;
	}
	w->res = res;
	w->done = done;
	w->arg = arg;
	for (pp = &j->waiters; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = w;
	res->status = WRM_AUTH_PENDING;
	debug("Basic: %s joins the verification under way", j->user);
	return true;
}

/* "DOMAIN\user" and "user@domain" name the local account "user". */
static char *
local_name(const char *given)
{
	const char *bs = strrchr(given, '\\');
	const char *at;
	char *r;

	if (bs != NULL)
		return strdup(bs + 1);
	if ((at = strchr(given, '@')) != NULL) {
		if ((r = strndup(given, (size_t)(at - given))) == NULL)
			return NULL;
		return r;
	}
	return strdup(given);
}

static void
basic_check(const char *token, const struct wrm_auth_input *in,
    struct wrm_auth_result *res, wrm_auth_done_fn done, void *arg)
{
	struct basic_job *j;
	struct cache_slot *s;
	uint8_t raw[MAX_CREDENTIAL];
	size_t len, tl = strlen(token);
	char *colon;
	bool cached;

	if (tl > MAX_CREDENTIAL || wrm_b64_decode(token, tl, raw, &len) != 0 ||
	    len >= sizeof(raw) || memchr(raw, '\0', len) != NULL) {
		fail(in, res, "Basic", NULL, "malformed credentials");
		return;
	}
	raw[len] = '\0';
	if ((colon = strchr((char *)raw, ':')) == NULL || colon == (char *)raw) {
		explicit_bzero(raw, sizeof(raw));
		fail(in, res, "Basic", NULL, "malformed credentials");
		return;
	}
	*colon = '\0';
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->user = local_name((char *)raw)) == NULL ||
	    (j->pass = strdup(colon + 1)) == NULL) {
		explicit_bzero(raw, sizeof(raw));
		if (j != NULL) {
			free(j->user);
			free(j);
		}
		fail(in, res, "Basic", NULL, "out of memory");
		return;
	}
	explicit_bzero(raw, sizeof(raw));
	if (throttled(in, res, "Basic", j->user)) {
		wrm_freezero_str(j->pass);
		free(j->user);
		free(j);
		return;
	}
	cache_key(j->user, j->pass, j->key);
	cached = (s = cache_find(j->key)) != NULL &&
	    map_identity(&res->who, s->user, "Basic") == 0;
	if (cached)
		res->status = WRM_AUTH_OK;
	if (cached || basic_join(j->key, in, res, done, arg)) {
		wrm_freezero_str(j->pass);
		free(j->user);
		free(j);
		return;
	}
	if (!D.user_mode)
		j->pam_service = strdup(D.conf->service.pam_service);
	else if (D.store != NULL)
		wrm_store_user_get_hash(D.store, j->user, &j->hash);
	j->self.in = *in;
	j->self.client_ip = strdup(in->client_ip ? in->client_ip : "-");
	j->self.res = res;
	j->self.done = done;
	j->self.arg = arg;
	j->next = basic_running;
	basic_running = j;
	res->status = WRM_AUTH_PENDING;
	debug("Basic: verifying the password of %s", j->user);
	if (wrm_work_submit(basic_run, basic_done, j) != 0) {
		basic_run(j);
		/* Without workers, finish on a later loop turn. */
		wrm_loop_post(D.loop, basic_done, j);
	}
}

/* ---- Negotiate, Kerberos (and NTLM when a client names it) ---- */

static bool
negotiate_usable(bool tls)
{
	(void)tls;
	return D.conf->auth.negotiate;
}

static bool
kerberos_usable(bool tls)
{
	(void)tls;
	return D.conf->auth.kerberos;
}

struct gss_job {
	struct wrm_auth_conn *conn;
	char *token;
	char scheme[16];
	uint8_t *cbt;
	size_t cbt_len;
	struct wrm_gss_step step;
	struct wrm_auth_input in;
	char *client_ip;
	struct wrm_auth_result *res;
	wrm_auth_done_fn done;
	void *arg;
};

static void
gss_run(void *arg)
{
	struct gss_job *j = arg;

	wrm_gss_accept(&j->conn->gss, j->token, j->cbt, j->cbt_len, &j->step);
}

/*
 * The account a GSSAPI name maps to: what gss_localname says (for
 * Kerberos, krb5_aname_to_localname: auth_to_local rules, or the first
 * component of a principal of the default realm).  A Kerberos principal
 * it cannot map has no account; an NTLM "DOMAIN\user" names "user".
 */
static char *
account_of(const struct wrm_gss_step *st)
{
	const char *p = st->principal;

	if (st->local_name != NULL && *st->local_name)
		return strdup(st->local_name);
	if (p == NULL || !st->is_ntlm)
		return NULL;
	return local_name(p);
}

/* User mode: whether name is in winrmd's user table. */
static bool
user_known(const char *name)
{
	char *hash = NULL;
	bool ok = D.store != NULL &&
	    wrm_store_user_get_hash(D.store, name, &hash) == 0;

	free(hash);
	return ok;
}

static void
gss_complete(struct gss_job *j)
{
	struct wrm_gss_step *st = &j->step;
	struct wrm_auth_conn *c = j->conn;
	char *account = account_of(st);
	const char *mech = st->is_ntlm ? "NTLM" : "Kerberos";
	const char *why = NULL;

	if (j->cbt != NULL && !st->channel_bound &&
	    strcasecmp(D.conf->auth.cbt_hardening_level, "Strict") == 0)
		why = "no channel binding (CbtHardeningLevel Strict)";
	else if (account == NULL)
		why = st->is_ntlm ? "no account name in the credentials" :
		    "no local account for this principal (auth_to_local)";
	else if (D.user_mode && !user_known(account))
		why = "not a winrmd user";
	else if (map_identity(&c->who, account, strcmp(j->scheme,
	    "Kerberos") == 0 ? "Kerberos" : "Negotiate") != 0)
		why = "no such local account";
	if (why != NULL) {
		wrm_identity_clear(&c->who);
		wrm_gss_free(c->gss);
		c->gss = NULL;
		fail(&j->in, j->res, j->scheme, st->principal, why);
		free(account);
		return;
	}
	c->established = true;
	snprintf(c->scheme, sizeof(c->scheme), "%s", j->scheme);
	wrm_identity_copy(&j->res->who, &c->who);
	j->res->status = WRM_AUTH_OK;
	j->res->sealed_session = true;
	if (st->out_token != NULL &&
	    asprintf(&j->res->mutual, "%s %s", j->scheme, st->out_token) < 0)
		j->res->mutual = NULL;
	wrm_metrics_auth_success(j->scheme);
	wrm_audit("AUTH_OK", "scheme=%s mech=%s user=%s principal=%s "
	    "client=%s%s", j->scheme, mech, account, st->principal ?
	    st->principal : "-", j->client_ip, st->channel_bound ?
	    " channel_bound=yes" : "");
	free(account);
}

static void
gss_done(void *arg)
{
	struct gss_job *j = arg;

	j->in.client_ip = j->client_ip;
	switch (j->step.status) {
	case WRM_GSS_CONTINUE:
		j->res->status = WRM_AUTH_CHALLENGE;
		if (asprintf(&j->res->challenge_buf, "%s %s", j->scheme,
		    j->step.out_token != NULL ? j->step.out_token : "") < 0)
			j->res->challenge_buf = NULL;
		j->res->challenges[0] = j->res->challenge_buf;
		j->res->n_challenges = j->res->challenge_buf != NULL;
		break;
	case WRM_GSS_COMPLETE:
		gss_complete(j);
		break;
	case WRM_GSS_FAILED:
		fail(&j->in, j->res, j->scheme, NULL, j->step.error ?
		    j->step.error : "authentication failed");
		break;
	}
	j->done(j->arg, j->res);
	wrm_gss_step_clear(&j->step);
	free(j->token);
	free(j->cbt);
	free(j->client_ip);
	free(j);
}

static void
gss_check(const char *scheme, const char *token,
    const struct wrm_auth_input *in, struct wrm_auth_result *res,
    wrm_auth_done_fn done, void *arg)
{
	struct gss_job *j;

	if (throttled(in, res, scheme, NULL))
		return;
	if (in->conn == NULL || (j = calloc(1, sizeof(*j))) == NULL) {
		fail(in, res, scheme, NULL, "no connection state");
		return;
	}
	/* A fresh handshake replaces whatever the connection had. */
	if (in->conn->established || in->conn->cert_ok) {
		wrm_identity_clear(&in->conn->who);
		in->conn->established = false;
		in->conn->cert_ok = false;
	}
	j->conn = in->conn;
	j->token = strdup(token);
	snprintf(j->scheme, sizeof(j->scheme), "%s", scheme);
	if (in->cbt != NULL &&
	    strcasecmp(D.conf->auth.cbt_hardening_level, "None") != 0 &&
	    (j->cbt = malloc(in->cbt_len)) != NULL) {
		memcpy(j->cbt, in->cbt, in->cbt_len);
		j->cbt_len = in->cbt_len;
	}
	j->in = *in;
	j->client_ip = strdup(in->client_ip ? in->client_ip : "-");
	j->res = res;
	j->done = done;
	j->arg = arg;
	res->status = WRM_AUTH_PENDING;
	if (wrm_work_submit(gss_run, gss_done, j) != 0) {
		gss_run(j);
		wrm_loop_post(D.loop, gss_done, j);
	}
}

static void
negotiate_check(const char *token, const struct wrm_auth_input *in,
    struct wrm_auth_result *res, wrm_auth_done_fn done, void *arg)
{
	gss_check(strncasecmp(in->authorization, "NTLM", 4) == 0 ? "NTLM" :
	    "Negotiate", token, in, res, done, arg);
}

static void
kerberos_check(const char *token, const struct wrm_auth_input *in,
    struct wrm_auth_result *res, wrm_auth_done_fn done, void *arg)
{
	gss_check("Kerberos", token, in, res, done, arg);
}

/* ---- Client certificates ---- */

static bool
cert_usable(bool tls)
{
	return tls && D.conf->auth.certificate;
}

static void
cert_check(const char *token, const struct wrm_auth_input *in,
    struct wrm_auth_result *res, wrm_auth_done_fn done, void *arg)
{
	struct wrm_cert_match m;
	const char *why = NULL;
	char *hash = NULL;

	(void)token;
	(void)done;
	(void)arg;
	/* The chain cannot change on a connection: verify it once. */
	if (in->conn != NULL && in->conn->cert_ok &&
	    wrm_identity_copy(&res->who, &in->conn->who) == 0) {
		res->status = WRM_AUTH_OK;
		return;
	}
	if (throttled(in, res, "Certificate", NULL))
		return;
	if (wrm_cert_map(in->peer, D.conf, &m, &why) != 0) {
		fail(in, res, "Certificate", NULL, why);
		return;
	}
	/* In user mode the mapped account must be in the lab user table. */
	if (D.user_mode && (D.store == NULL ||
	    wrm_store_user_get_hash(D.store, m.user, &hash) != 0))
		why = "mapped UserName is not a winrmd user";
	else if (map_identity(&res->who, m.user, "Certificate") != 0)
		why = "mapped UserName is not a local account";
	free(hash);
	if (why != NULL) {
		wrm_identity_clear(&res->who);
		fail(in, res, "Certificate", m.user, why);
		wrm_cert_match_clear(&m);
		return;
	}
	res->status = WRM_AUTH_OK;
	if (in->conn != NULL && !in->conn->established &&
	    wrm_identity_copy(&in->conn->who, &res->who) == 0)
		in->conn->cert_ok = true;
	wrm_metrics_auth_success("Certificate");
	wrm_audit("AUTH_OK", "scheme=Certificate user=%s subject=%s "
	    "issuer=%s client=%s", m.user, m.subject, m.issuer, in->client_ip);
	wrm_cert_match_clear(&m);
}
