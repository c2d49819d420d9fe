/*
 * libFuzzer harness for the host protocol decoder (hostproto.c).
 *
 * The input is what arrives on the control socket: length-prefixed
 * frames, cut the way wrm_hconn cuts them.  Every frame that decodes is
 * read through the field accessors and encoded again; the re-encoded
 * frame must equal the input frame (with the flags word, which writers
 * set to zero, cleared).  Anything else aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "hostproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
reencode(const uint8_t *frame, size_t len, const struct wrm_hmsg *m)
{
	struct wrm_buf b;
	size_t start, i;
	const uint8_t *p;

	wrm_buf_init(&b, 0);
	if (wrm_hmsg_begin(&b, m->type, m->reqid, &start) != 0)
		abort();
	for (i = 0; i < m->n; i++)
		if (wrm_hmsg_put(&b, m->f[i].tag, m->f[i].p, m->f[i].len) != 0)
			abort();
	if (wrm_hmsg_end(&b, start) != 0)
		abort();
	p = wrm_buf_ptr(&b);
	if (wrm_buf_len(&b) != len + 4 || wrm_get_u32_be(p) != len)
		abort();
	/* type, then flags (written as zero), then the rest verbatim */
	if (memcmp(p + 4, frame, 2) != 0 || p[6] != 0 || p[7] != 0 ||
	    memcmp(p + 8, frame + 4, len - 4) != 0)
		abort();
	wrm_buf_free(&b);
}

static void
one_frame(const uint8_t *frame, size_t len)
{
	static const uint16_t tags[] = {
		HT_VERSION, HT_SHELL_ID, HT_COMMAND_ID, HT_DATA, HT_ARG,
		HT_ERROR, HT_STATE, HT_BUDGET,
	};
	struct wrm_hmsg m;
	size_t i;
	char *s;

	if (wrm_hmsg_decode(frame, len, &m) != 0) {
		if (m.f != NULL || m.n != 0)
			abort();	/* a failed decode leaves nothing */
		return;
	}
	for (i = 0; i < m.n; i++) {
		if (m.f[i].p < frame || m.f[i].p + m.f[i].len > frame + len)
			abort();
		s = wrm_hfield_str(&m.f[i]);
		if (s == NULL || strlen(s) > m.f[i].len)
			abort();
		free(s);
		(void)wrm_hfield_u64(&m.f[i]);
	}
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		s = wrm_hmsg_str(&m, tags[i]);
		free(s);
		(void)wrm_hmsg_u64(&m, tags[i], 0);
	}
	reencode(frame, len, &m);
	wrm_hmsg_free(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t len;

	while (size >= 4) {
		len = wrm_get_u32_be(data);
		if (len > WRM_HOSTPROTO_MAX_FRAME || size - 4 < len)
			break;
		one_frame(data + 4, len);
		data += 4 + (size_t)len;
		size -= 4 + (size_t)len;
	}
	return 0;
}
