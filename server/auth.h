/*
 * Authentication.  A table of schemes (Negotiate, Kerberos, Basic, NTLM
 * and client certificates; CredSSP slots in as a row) decides from the request's
 * Authorization header, the connection's state and the listener whether
 * the request is authenticated, needs another 401 leg, or must wait for a
 * worker (password hashing and PAM never run on the loop thread).
 *
 * Authentication is mandatory on every path except the unauthenticated
 * Identify; a request without an Authorization header never reaches the
 * dispatcher.
 */
#ifndef WRM_AUTH_H
#define WRM_AUTH_H

#include <stdbool.h>

#include "buf.h"
#include "daemon.h"

enum wrm_auth_status {
	WRM_AUTH_OK = 0,	/* identity filled */
	WRM_AUTH_CHALLENGE,	/* answer 401 with the challenge headers */
	WRM_AUTH_PENDING,	/* a worker is checking; done() follows */
};

struct wrm_gss;
struct wrm_cert_peer;

/*
 * Authentication state of one TCP connection (owned by http.c, cleared
 * with wrm_auth_conn_clear when the connection closes).  NTLM, Kerberos
 * and their message sealing live here: clients authenticate a connection
 * once and then send requests on it without an Authorization header.
 */
struct wrm_auth_conn {
	struct wrm_gss *gss;
	char scheme[16];		/* "Negotiate" or "Kerberos" */
	bool established;
	bool cert_ok;			/* who came from the client certificate */
	struct wrm_identity who;
};

struct wrm_auth_input {
	const char *authorization;	/* header value or NULL */
	bool tls;
	const char *client_ip;
	struct wrm_auth_conn *conn;
	/* tls-server-end-point channel binding data (HTTPS), or NULL */
	const uint8_t *cbt;
	size_t cbt_len;
	/* HTTPS: the client's certificate chain and the listener's CAs */
	const struct wrm_cert_peer *peer;
};

/* Up to this many WWW-Authenticate values on a 401. */
#define WRM_AUTH_MAX_CHALLENGES	6

struct wrm_auth_result {
	enum wrm_auth_status status;
	struct wrm_identity who;
	const char *challenges[WRM_AUTH_MAX_CHALLENGES];
	size_t n_challenges;
	char *challenge_buf;		/* storage for a token challenge */
	char *mutual;			/* WWW-Authenticate for the 200, or NULL */
	bool sealed_session;		/* identity came from a GSS context */
};

typedef void (*wrm_auth_done_fn)(void *arg, struct wrm_auth_result *res);

int wrm_auth_init(void);
void wrm_auth_shutdown(void);
/*
 * Authenticate.  Returns OK or CHALLENGE synchronously in res, or PENDING:
 * then done(arg, res) is called later on the loop thread (never before
 * this returns).
 */
void wrm_auth_check(const struct wrm_auth_input *in,
    struct wrm_auth_result *res, wrm_auth_done_fn done, void *arg);
void wrm_auth_result_clear(struct wrm_auth_result *res);
void wrm_identity_clear(struct wrm_identity *who);
int wrm_identity_copy(struct wrm_identity *dst, const struct wrm_identity *src);
void wrm_auth_conn_clear(struct wrm_auth_conn *c);
/* The challenge set for a fresh 401 on this kind of listener. */
void wrm_auth_challenges(bool tls, struct wrm_auth_result *res);
/* Forget cached verifications (user table changed, SIGHUP). */
void wrm_auth_flush_cache(void);

/*
 * Whether who may use a session configuration: not named in its
 * DenyUsers nor a member of its DenyGroups, and, when it has AllowUsers
 * or AllowGroups, named or a member there.  Users are matched by the name
 * the client authenticated as or the local account; groups by the local
 * account's membership (system mode only: in user mode every shell runs
 * as the daemon's own account, so only the user lists tell users apart).
 */
struct wrm_session_conf;
bool wrm_auth_session_allows(const struct wrm_identity *who,
    const struct wrm_session_conf *sc);

/* Password hashing for the lab user table (crypt(3), yescrypt or SHA-512). */
int wrm_auth_hash_password(const char *password, char **hash_r);
bool wrm_auth_verify_hash(const char *password, const char *hash);
/* The NT hash of a password (MD4 of its UTF-16LE form), as hex. */
int wrm_auth_nt_hash(const char *password, char hex[33]);
/* Write the NTLM account file (smbpasswd format, mode 0600) from st. */
struct wrm_store;
int wrm_auth_write_ntlm_file(struct wrm_store *st, const char *path);

#endif
