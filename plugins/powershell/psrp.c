#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "psrp.h"

bool
psrp_frag_next(const uint8_t **p, size_t *left, struct psrp_frag *f,
    bool *bad)
{
	uint32_t len;

	*bad = false;
	if (*left == 0)
		return false;
	if (*left < PSRP_FRAG_HDR) {
		*bad = true;
		return false;
	}
	f->object_id = wrm_get_u64_be(*p);
	f->fragment_id = wrm_get_u64_be(*p + 8);
	f->flags = (*p)[16];
	len = wrm_get_u32_be(*p + 17);
	if ((size_t)len > *left - PSRP_FRAG_HDR || (f->flags & ~3u) != 0) {
		*bad = true;
		return false;
	}
	f->blob = *p + PSRP_FRAG_HDR;
	f->blob_len = len;
	f->raw = *p;
	f->raw_len = PSRP_FRAG_HDR + (size_t)len;
	*p += f->raw_len;
	*left -= f->raw_len;
	return true;
}

bool
psrp_frags_whole(const uint8_t *p, size_t len)
{
	struct psrp_frag f;
	bool bad;

	if (len == 0)
		return false;
	while (psrp_frag_next(&p, &len, &f, &bad))
		;
	return !bad;
}

bool
psrp_msg_header(const struct psrp_frag *f, struct psrp_msg_hdr *h)
{
	if (!(f->flags & PSRP_START) || f->fragment_id != 0 ||
	    f->blob_len < PSRP_MSG_HDR)
		return false;
	h->destination = wrm_get_u32_le(f->blob);
	h->type = wrm_get_u32_le(f->blob + 4);
	memcpy(h->rpid, f->blob + 8, 16);
	memcpy(h->pid, f->blob + 24, 16);
	h->data = f->blob + PSRP_MSG_HDR;
	h->data_len = f->blob_len - PSRP_MSG_HDR;
	return true;
}

bool
psrp_guid_is_zero(const uint8_t g[16])
{
	size_t i;

	for (i = 0; i < 16; i++)
		if (g[i] != 0)
			return false;
	return true;
}

void
psrp_guid_text(const uint8_t g[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", g[3], g[2], g[1], g[0], g[5], g[4],
	    g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

char *
psrp_clixml_value(const uint8_t *data, size_t len, const char *tag,
    const char *name)
{
	char pat[128];
	const char *s = (const char *)data, *p, *v, *e;
	size_t pl;

	snprintf(pat, sizeof(pat), "<%s N=\"%s\">", tag, name);
	pl = strlen(pat);
	if ((p = memmem(s, len, pat, pl)) == NULL)
		return NULL;
	v = p + pl;
	snprintf(pat, sizeof(pat), "</%s>", tag);
	if ((e = memmem(v, len - (size_t)(v - s), pat, strlen(pat))) == NULL)
		return NULL;
	return strndup(v, (size_t)(e - v));
}

size_t
psrp_frag_write(uint8_t *out, uint64_t obj, uint64_t frag, uint8_t flags,
    const uint8_t *blob, uint32_t len)
{
	wrm_set_u64_be(out, obj);
	wrm_set_u64_be(out + 8, frag);
	out[16] = flags;
	wrm_set_u32_be(out + 17, len);
	memcpy(out + PSRP_FRAG_HDR, blob, len);
	return PSRP_FRAG_HDR + (size_t)len;
}

const char *
psrp_type_name(uint32_t type)
{
	switch (type) {
	case PSRP_SESSION_CAPABILITY: return "SESSION_CAPABILITY";
	case PSRP_INIT_RUNSPACEPOOL: return "INIT_RUNSPACEPOOL";
	case PSRP_RUNSPACEPOOL_STATE: return "RUNSPACEPOOL_STATE";
	case PSRP_CREATE_PIPELINE: return "CREATE_PIPELINE";
	case PSRP_APPLICATION_PRIVATE_DATA: return "APPLICATION_PRIVATE_DATA";
	case PSRP_PIPELINE_STATE: return "PIPELINE_STATE";
	case PSRP_PIPELINE_OUTPUT: return "PIPELINE_OUTPUT";
	case PSRP_PIPELINE_HOST_CALL: return "PIPELINE_HOST_CALL";
	case PSRP_RUNSPACEPOOL_HOST_CALL: return "RUNSPACEPOOL_HOST_CALL";
	default: return "message";
	}
}
