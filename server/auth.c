#include "config.h"

#include <crypt.h>
#include <stdio.h>
#include <gnutls/crypto.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "err.h"
#include "log.h"
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

static const struct scheme schemes[] = {
	{ "Basic", basic_usable, basic_check, "Basic realm=\"WSMAN\"" },
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
	memset(res, 0, sizeof(*res));
}

void
wrm_auth_challenges(bool tls, struct wrm_auth_result *res)
{
	size_t i;

	res->status = WRM_AUTH_CHALLENGE;
	res->n_challenges = 0;
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (schemes[i].usable(tls) &&
		    res->n_challenges < WRM_AUTH_MAX_CHALLENGES)
			res->challenges[res->n_challenges++] =
			    schemes[i].challenge;
}

static void
fail(const struct wrm_auth_input *in, struct wrm_auth_result *res,
    const char *scheme, const char *user, const char *why)
{
	wrm_audit("AUTH_FAIL", "scheme=%s user=%s client=%s reason=\"%s\"",
	    scheme, user ? user : "-", in->client_ip, why);
	wrm_auth_challenges(in->tls, res);
}

void
wrm_auth_check(const struct wrm_auth_input *in, struct wrm_auth_result *res,
    wrm_auth_done_fn done, void *arg)
{
	const char *h = in->authorization, *sp;
	size_t i, nl;

	memset(res, 0, sizeof(*res));
	if (h == NULL || *h == '\0') {
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

/* The account shells run as in user mode: the daemon's own. */
static int
fill_identity(struct wrm_identity *who, const char *user)
{
	struct passwd *pw = getpwuid(getuid());

	who->user = strdup(user);
	who->local_user = strdup(pw != NULL ? pw->pw_name : "root");
	who->uid = getuid();
	who->gid = getgid();
	who->mechanism = "Basic";
	who->is_admin = true;
	return who->user != NULL && who->local_user != NULL ? 0 :
	    WRM_ERR_ALLOC;
}

struct basic_job {
	char *user;
	char *pass;
	char *hash;		/* NULL: unknown user */
	bool ok;
	uint8_t key[32];
	struct wrm_auth_input in;
	char *client_ip;
	struct wrm_auth_result *res;
	wrm_auth_done_fn done;
	void *arg;
};


static void
basic_run(void *arg)
{
	struct basic_job *j = arg;

	j->ok = wrm_auth_verify_hash(j->pass, j->hash ? j->hash :
	    dummy_hash ? dummy_hash : "*") && j->hash != NULL;
}

static void
basic_done(void *arg)
{
	struct basic_job *j = arg;

	j->in.client_ip = j->client_ip;
	if (j->ok && fill_identity(&j->res->who, j->user) == 0) {
		cache_put(j->key, j->user);
		j->res->status = WRM_AUTH_OK;
		wrm_audit("AUTH_OK", "scheme=Basic user=%s client=%s", j->user,
		    j->client_ip);
	} else
		fail(&j->in, j->res, "Basic", j->user, j->hash ?
		    "wrong password" : "unknown user");
	j->done(j->arg, j->res);
	wrm_freezero_str(j->pass);
	free(j->user);
	free(j->hash);
	free(j->client_ip);
	free(j);
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
	cache_key(j->user, j->pass, j->key);
	if ((s = cache_find(j->key)) != NULL &&
	    fill_identity(&res->who, s->user) == 0) {
		res->status = WRM_AUTH_OK;
		wrm_freezero_str(j->pass);
		free(j->user);
		free(j);
		return;
	}
	if (D.store != NULL)
		wrm_store_user_get_hash(D.store, j->user, &j->hash);
	j->in = *in;
	j->client_ip = strdup(in->client_ip ? in->client_ip : "-");
	j->res = res;
	j->done = done;
	j->arg = arg;
	res->status = WRM_AUTH_PENDING;
	if (wrm_work_submit(basic_run, basic_done, j) != 0) {
		basic_run(j);
		/* Without workers, finish on a later loop turn. */
		wrm_loop_post(D.loop, basic_done, j);
	}
}
