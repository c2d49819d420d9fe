/*
 * Negotiate (SPNEGO: Kerberos or NTLM), Kerberos and NTLM through MIT
 * GSSAPI, with gss-ntlmssp as the NTLM mechanism.  One security context
 * per TCP connection: it is built over the 401 legs and then seals and
 * unseals that connection's messages (HTTP message encryption).
 *
 * wrm_gss_step() may run on a worker thread (accepting reads the keytab,
 * the replay cache and the NTLM user file); everything else runs on the
 * loop thread.  A context is never used by two threads at once: one
 * connection carries one request at a time.
 */
#ifndef WRM_AUTH_GSS_H
#define WRM_AUTH_GSS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct wrm_gss;

enum wrm_gss_status {
	WRM_GSS_CONTINUE,	/* send out_token in a 401 */
	WRM_GSS_COMPLETE,	/* authenticated; out_token (if any) on the 200 */
	WRM_GSS_FAILED,
};

struct wrm_gss_step {
	enum wrm_gss_status status;
	char *out_token;	/* base64, or NULL */
	char *principal;	/* "user@REALM" or "DOMAIN\user" */
	char *local_name;	/* from gss_localname, or NULL */
	bool is_ntlm;
	bool channel_bound;	/* the client's channel bindings matched */
	char *error;		/* text of a failure */
};

/* Environment the mechanisms read (keytab, NTLM user file). */
void wrm_gss_setup(const char *keytab, const char *ntlm_user_file);
/*
 * One handshake leg on *g (created on first use).  cbt_data/cbt_len is the
 * tls-server-end-point application data for HTTPS, or NULL.
 */
void wrm_gss_accept(struct wrm_gss **g, const char *token_b64,
    const uint8_t *cbt_data, size_t cbt_len, struct wrm_gss_step *out);
void wrm_gss_step_clear(struct wrm_gss_step *s);
void wrm_gss_free(struct wrm_gss *g);
bool wrm_gss_complete(const struct wrm_gss *g);
bool wrm_gss_is_ntlm(const struct wrm_gss *g);

/*
 * HTTP message encryption (MS-WSMV 2.2.9.1): seal plain into the
 * multipart/encrypted body form: *sig_r (length L) and the sealed payload.
 */
int wrm_gss_seal(struct wrm_gss *g, const uint8_t *plain, size_t len,
    struct wrm_buf *sig, struct wrm_buf *sealed);
/* Unseal: sig (L bytes) then the payload. */
int wrm_gss_unseal(struct wrm_gss *g, const uint8_t *sig, size_t sig_len,
    const uint8_t *sealed, size_t len, struct wrm_buf *plain);

#endif
