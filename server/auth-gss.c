#include "config.h"

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth-gss.h"
#include "err.h"
#include "log.h"
#include "misc.h"

#define MAX_TOKEN	(64 * 1024)

struct wrm_gss {
	gss_ctx_id_t ctx;
	bool complete;
	bool is_ntlm;
};

/* 1.3.6.1.4.1.311.2.2.10, the NTLM mechanism gss-ntlmssp registers. */
static const uint8_t ntlm_oid[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37,
	0x02, 0x02, 0x0a };

void
wrm_gss_setup(const char *keytab, const char *ntlm_user_file)
{
	if (keytab != NULL && *keytab)
		setenv("KRB5_KTNAME", keytab, 1);
	if (ntlm_user_file != NULL && *ntlm_user_file)
		setenv("NTLM_USER_FILE", ntlm_user_file, 1);
}

static char *
status_text(OM_uint32 major, OM_uint32 minor)
{
	OM_uint32 min2, ctx = 0;
	gss_buffer_desc msg;
	struct wrm_buf b;
	size_t len;

	wrm_buf_init(&b, 4096);
	do {
		if (gss_display_status(&min2, major, GSS_C_GSS_CODE,
		    GSS_C_NO_OID, &ctx, &msg) != GSS_S_COMPLETE)
			break;
		wrm_buf_put(&b, msg.value, msg.length);
		gss_release_buffer(&min2, &msg);
	} while (ctx != 0);
	if (minor != 0) {
		ctx = 0;
		wrm_buf_puts(&b, ": ");
		do {
			if (gss_display_status(&min2, minor, GSS_C_MECH_CODE,
			    GSS_C_NO_OID, &ctx, &msg) != GSS_S_COMPLETE)
				break;
			wrm_buf_put(&b, msg.value, msg.length);
			gss_release_buffer(&min2, &msg);
		} while (ctx != 0);
	}
	wrm_buf_putc(&b, '\0');
	return (char *)wrm_buf_steal(&b, &len);
}

static char *
name_text(gss_name_t name)
{
	OM_uint32 minor;
	gss_buffer_desc buf;
	char *s;

	if (gss_display_name(&minor, name, &buf, NULL) != GSS_S_COMPLETE)
		return NULL;
	s = strndup(buf.value, buf.length);
	gss_release_buffer(&minor, &buf);
	return s;
}

static bool
mech_is_ntlm(gss_ctx_id_t ctx, gss_OID mech)
{
	OM_uint32 minor;
	gss_OID m = mech;

	if (m == GSS_C_NO_OID && gss_inquire_context(&minor, ctx, NULL, NULL,
	    NULL, &m, NULL, NULL, NULL) != GSS_S_COMPLETE)
		return false;
	return m != GSS_C_NO_OID && m->length == sizeof(ntlm_oid) &&
	    memcmp(m->elements, ntlm_oid, sizeof(ntlm_oid)) == 0;
}

void
wrm_gss_accept(struct wrm_gss **gp, const char *token_b64,
    const uint8_t *cbt_data, size_t cbt_len, struct wrm_gss_step *out)
{
	struct gss_channel_bindings_struct cb;
	gss_buffer_desc in, tok = GSS_C_EMPTY_BUFFER, local;
	gss_name_t src = GSS_C_NO_NAME;
	gss_OID mech = GSS_C_NO_OID;
	OM_uint32 major, minor, min2, flags = 0;
	struct wrm_gss *g = *gp;
	uint8_t *raw;
	size_t tl = strlen(token_b64), rl;

	memset(out, 0, sizeof(*out));
	out->status = WRM_GSS_FAILED;
	if (tl == 0 || tl > MAX_TOKEN || (raw = malloc(tl / 4 * 3 + 3)) == NULL) {
		out->error = strdup("empty or oversized token");
		return;
	}
	if (wrm_b64_decode(token_b64, tl, raw, &rl) != 0) {
		free(raw);
		out->error = strdup("token is not base64");
		return;
	}
	if (g != NULL && g->complete) {
		/* A new handshake on an authenticated connection. */
		wrm_gss_free(g);
		g = *gp = NULL;
	}
	if (g == NULL && (g = *gp = calloc(1, sizeof(*g))) == NULL) {
		free(raw);
		out->error = strdup("out of memory");
		return;
	}
	memset(&cb, 0, sizeof(cb));
	cb.initiator_addrtype = GSS_C_AF_UNSPEC;
	cb.acceptor_addrtype = GSS_C_AF_UNSPEC;
	cb.application_data.length = cbt_len;
	cb.application_data.value = (void *)cbt_data;
	in.length = rl;
	in.value = raw;
	major = gss_accept_sec_context(&minor, &g->ctx, GSS_C_NO_CREDENTIAL, &in,
	    cbt_data != NULL ? &cb : GSS_C_NO_CHANNEL_BINDINGS, &src, &mech,
	    &tok, &flags, NULL, NULL);
	free(raw);
	if (tok.length > 0) {
		out->out_token = malloc(wrm_b64_encoded_len(tok.length) + 1);
		if (out->out_token != NULL) {
			wrm_b64_encode(tok.value, tok.length, out->out_token);
			out->out_token[wrm_b64_encoded_len(tok.length)] = '\0';
		}
	}
	gss_release_buffer(&min2, &tok);
	if (major == GSS_S_CONTINUE_NEEDED) {
		out->status = WRM_GSS_CONTINUE;
		return;
	}
	if (GSS_ERROR(major)) {
		out->error = status_text(major, minor);
		gss_delete_sec_context(&min2, &g->ctx, GSS_C_NO_BUFFER);
		free(g);
		*gp = NULL;
		return;
	}
	g->complete = true;
	g->is_ntlm = mech_is_ntlm(g->ctx, mech);
	out->status = WRM_GSS_COMPLETE;
	out->is_ntlm = g->is_ntlm;
	out->channel_bound = (flags & GSS_C_CHANNEL_BOUND_FLAG) != 0;
	out->principal = name_text(src);
	if (gss_localname(&minor, src, GSS_C_NO_OID, &local) ==
	    GSS_S_COMPLETE) {
		out->local_name = strndup(local.value, local.length);
		gss_release_buffer(&minor, &local);
	}
	gss_release_name(&minor, &src);
}

void
wrm_gss_step_clear(struct wrm_gss_step *s)
{
	free(s->out_token);
	free(s->principal);
	free(s->local_name);
	free(s->error);
	memset(s, 0, sizeof(*s));
}

void
wrm_gss_free(struct wrm_gss *g)
{
	OM_uint32 minor;

	if (g == NULL)
		return;
	if (g->ctx != GSS_C_NO_CONTEXT)
		gss_delete_sec_context(&minor, &g->ctx, GSS_C_NO_BUFFER);
	free(g);
}

bool
wrm_gss_complete(const struct wrm_gss *g)
{
	return g != NULL && g->complete;
}

bool
wrm_gss_is_ntlm(const struct wrm_gss *g)
{
	return g != NULL && g->is_ntlm;
}

int
wrm_gss_seal(struct wrm_gss *g, const uint8_t *plain, size_t len,
    struct wrm_buf *sig, struct wrm_buf *sealed)
{
	gss_iov_buffer_desc iov[3];
	gss_buffer_desc in, out;
	OM_uint32 major, minor;
	int conf = 0, r;

	if (!wrm_gss_complete(g))
		return WRM_ERR_STATE;
	if (g->is_ntlm) {
		/* gss-ntlmssp: 16-byte signature followed by the sealed data. */
		in.length = len;
		in.value = (void *)plain;
		major = gss_wrap(&minor, g->ctx, 1, GSS_C_QOP_DEFAULT, &in,
		    &conf, &out);
		if (GSS_ERROR(major) || !conf || out.length < 16) {
			gss_release_buffer(&minor, &out);
			return WRM_ERR_AUTH;
		}
		r = wrm_buf_put(sig, out.value, 16);
		if (r == 0)
			r = wrm_buf_put(sealed, (uint8_t *)out.value + 16,
			    out.length - 16);
		gss_release_buffer(&minor, &out);
		return r;
	}
	/* Kerberos: header-only layout, as Windows and its clients use. */
	if ((r = wrm_buf_put(sealed, plain, len)) != 0)
		return r;
	memset(iov, 0, sizeof(iov));
	iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER | GSS_IOV_BUFFER_FLAG_ALLOCATE;
	iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
	iov[1].buffer.length = len;
	iov[1].buffer.value = sealed->d + sealed->off;
	iov[2].type = GSS_IOV_BUFFER_TYPE_PADDING |
	    GSS_IOV_BUFFER_FLAG_ALLOCATE;
	major = gss_wrap_iov(&minor, g->ctx, 1, GSS_C_QOP_DEFAULT, &conf, iov,
	    3);
	if (GSS_ERROR(major) || !conf) {
		gss_release_iov_buffer(&minor, iov, 3);
		return WRM_ERR_AUTH;
	}
	r = wrm_buf_put(sig, iov[0].buffer.value, iov[0].buffer.length);
	if (r == 0 && iov[2].buffer.length > 0)
		r = wrm_buf_put(sealed, iov[2].buffer.value,
		    iov[2].buffer.length);
	gss_release_iov_buffer(&minor, iov, 3);
	return r;
}

int
wrm_gss_unseal(struct wrm_gss *g, const uint8_t *sig, size_t sig_len,
    const uint8_t *sealed, size_t len, struct wrm_buf *plain)
{
	gss_iov_buffer_desc iov[3];
	gss_buffer_desc in, out;
	OM_uint32 major, minor;
	uint8_t *joined;
	int conf = 0, r;

	if (!wrm_gss_complete(g))
		return WRM_ERR_STATE;
	if (g->is_ntlm) {
		if ((joined = malloc(sig_len + len)) == NULL)
			return WRM_ERR_ALLOC;
		memcpy(joined, sig, sig_len);
		memcpy(joined + sig_len, sealed, len);
		in.length = sig_len + len;
		in.value = joined;
		major = gss_unwrap(&minor, g->ctx, &in, &out, &conf, NULL);
		free(joined);
		if (GSS_ERROR(major))
			return WRM_ERR_AUTH;
		r = wrm_buf_put(plain, out.value, out.length);
		gss_release_buffer(&minor, &out);
		return r;
	}
	if ((r = wrm_buf_put(plain, sealed, len)) != 0)
		return r;
	memset(iov, 0, sizeof(iov));
	iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
	iov[0].buffer.length = sig_len;
	iov[0].buffer.value = (void *)sig;
	iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
	iov[1].buffer.length = len;
	iov[1].buffer.value = plain->d + plain->off + wrm_buf_len(plain) - len;
	iov[2].type = GSS_IOV_BUFFER_TYPE_DATA;
	major = gss_unwrap_iov(&minor, g->ctx, &conf, NULL, iov, 3);
	if (GSS_ERROR(major))
		return WRM_ERR_AUTH;
	/* Any padding sits at the end of the decrypted data. */
	if (iov[1].buffer.length < len)
		wrm_buf_truncate(plain, wrm_buf_len(plain) - (len -
		    iov[1].buffer.length));
	return 0;
}
