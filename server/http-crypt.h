/* HTTP message encryption: multipart/encrypted bodies (see http-crypt.c). */
#ifndef WRM_HTTP_CRYPT_H
#define WRM_HTTP_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct wrm_gss;

/* Whether ct is an encrypted body; protocol receives its protocol= value. */
bool wrm_crypt_content_type(const char *ct, char *protocol, size_t plen);
/* Unseal an encrypted request body into plain (the SOAP envelope). */
int wrm_crypt_unseal(struct wrm_gss *g, const uint8_t *body, size_t len,
    struct wrm_buf *plain, bool *utf16_r);
/* Seal a response; *content_type_r is malloc'd. */
int wrm_crypt_seal(struct wrm_gss *g, const char *protocol,
    const uint8_t *plain, size_t len, bool utf16, struct wrm_buf *out,
    char **content_type_r);

#endif
