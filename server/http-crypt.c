/*
 * HTTP message encryption (MS-WSMV 2.2.9.1): the multipart/encrypted body
 * clients send when they authenticated with Negotiate or Kerberos over
 * plain HTTP, and the one we answer with.  Written byte for byte the way
 * Windows writes it (clients strip fixed strings); read leniently (with
 * or without the TAB before MIME headers, with or without a CRLF before
 * the closing delimiter, either boundary spelling).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth-gss.h"
#include "err.h"
#include "http-crypt.h"

#define OCTET_STREAM	"application/octet-stream"

bool
wrm_crypt_content_type(const char *ct, char *protocol, size_t plen)
{
	const char *p, *e;
	size_t n;

	if (ct == NULL || (strncasecmp(ct, "multipart/encrypted", 19) != 0 &&
	    strncasecmp(ct, "multipart/x-multi-encrypted", 27) != 0))
		return false;
	if ((p = strcasestr(ct, "protocol=")) == NULL)
		return false;
	p += 9;
	if (*p == '"')
		p++;
	for (e = p; *e != '\0' && *e != '"' && *e != ';'; e++)
		;
	n = (size_t)(e - p);
	if (n == 0 || n >= plen)
		return false;
	memcpy(protocol, p, n);
	protocol[n] = '\0';
	return true;
}

/* The OriginalContent header's charset and Length. */
static int
original_content(const uint8_t *body, size_t len, bool *utf16_r,
    size_t *length_r)
{
	const char *oc, *cs, *ln;
	uint64_t v = 0;
	const uint8_t *end;

	oc = memmem(body, len, "OriginalContent:", 16);
	if (oc == NULL)
		return WRM_ERR_PARSE;
	end = memmem(oc, len - (size_t)((const uint8_t *)oc - body), "\r\n", 2);
	if (end == NULL)
		return WRM_ERR_PARSE;
	cs = memmem(oc, (size_t)(end - (const uint8_t *)oc), "charset=", 8);
	*utf16_r = cs != NULL && strncasecmp(cs + 8, "UTF-16", 6) == 0;
	ln = memmem(oc, (size_t)(end - (const uint8_t *)oc), "Length=", 7);
	if (ln == NULL)
		return WRM_ERR_PARSE;
	for (ln += 7; (const uint8_t *)ln < end && *ln >= '0' && *ln <= '9';
	    ln++)
		v = v * 10 + (uint64_t)(*ln - '0');
	*length_r = (size_t)v;
	return 0;
}

int
wrm_crypt_unseal(struct wrm_gss *g, const uint8_t *body, size_t len,
    struct wrm_buf *plain, bool *utf16_r)
{
	const uint8_t *p, *end = body + len, *sig, *data, *close;
	size_t want, sig_len, dlen;
	int r;

	if ((r = original_content(body, len, utf16_r, &want)) != 0)
		return r;
	p = memmem(body, len, OCTET_STREAM, strlen(OCTET_STREAM));
	if (p == NULL)
		return WRM_ERR_PARSE;
	p += strlen(OCTET_STREAM);
	if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
		return WRM_ERR_PARSE;
	p += 2;
	if (end - p < 4)
		return WRM_ERR_PARSE;
	sig_len = wrm_get_u32_le(p);
	p += 4;
	if (sig_len == 0 || sig_len > (size_t)(end - p))
		return WRM_ERR_PARSE;
	sig = p;
	data = p + sig_len;
	/* The closing delimiter ends the sealed data (a CRLF may precede). */
	close = NULL;
	for (const uint8_t *q = end - 2; q >= data && q >= end - 64; q--)
		if (memcmp(q, "--", 2) == 0 && q + 2 < end &&
		    (q[2] == 'E' || q[2] == ' ')) {
			close = q;
			break;
		}
	if (close == NULL)
		return WRM_ERR_PARSE;
	dlen = (size_t)(close - data);
	if (dlen >= want + 2 && close[-2] == '\r' && close[-1] == '\n' &&
	    dlen - 2 >= want)
		dlen -= 2;
	r = wrm_gss_unseal(g, sig, sig_len, data, dlen, plain);
	if (r != 0)
		return r;
	if (wrm_buf_len(plain) != want && !(wrm_buf_len(plain) > want &&
	    wrm_buf_len(plain) - want < 16)) {
		/* Windows checks the decrypted length; so do we. */
		return WRM_ERR_PARSE;
	}
	wrm_buf_truncate(plain, want);
	return 0;
}

int
wrm_crypt_seal(struct wrm_gss *g, const char *protocol,
    const uint8_t *plain, size_t len, bool utf16, struct wrm_buf *out,
    char **content_type_r)
{
	struct wrm_buf sig, sealed;
	int r;

	*content_type_r = NULL;
	wrm_buf_init(&sig, 0);
	wrm_buf_init(&sealed, 0);
	if ((r = wrm_gss_seal(g, plain, len, &sig, &sealed)) != 0)
		goto out;
	r = wrm_buf_printf(out, "--Encrypted Boundary\r\n"
	    "\tContent-Type: %s\r\n"
	    "\tOriginalContent: type=application/soap+xml;charset=%s;"
	    "Length=%zu\r\n"
	    "--Encrypted Boundary\r\n"
	    "\tContent-Type: " OCTET_STREAM "\r\n", protocol,
	    utf16 ? "UTF-16" : "UTF-8", len);
	if (r == 0)
		r = wrm_buf_put_u32_le(out, (uint32_t)wrm_buf_len(&sig));
	if (r == 0)
		r = wrm_buf_put(out, wrm_buf_ptr(&sig), wrm_buf_len(&sig));
	if (r == 0)
		r = wrm_buf_put(out, wrm_buf_ptr(&sealed), wrm_buf_len(&sealed));
	if (r == 0)
		r = wrm_buf_puts(out, "--Encrypted Boundary--\r\n");
	if (r == 0 && asprintf(content_type_r, "multipart/encrypted;"
	    "protocol=\"%s\";boundary=\"Encrypted Boundary\"", protocol) < 0) {
		*content_type_r = NULL;
		r = WRM_ERR_ALLOC;
	}
out:
	wrm_buf_free(&sig);
	wrm_buf_free(&sealed);
	return r;
}
