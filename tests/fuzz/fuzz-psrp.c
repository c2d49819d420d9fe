/*
 * libFuzzer harness for the PSRP framing code of the powershell plugin
 * (plugins/powershell/psrp.c): psrp_frag_next, psrp_msg_header,
 * psrp_clixml_value, and the helpers around them.
 *
 * Each input is read the way the plugin reads a decoded creationXml,
 * Command argument, Send stream or pwsh Data packet: as a run of
 * fragments.  For every fragment the parser returns, the harness checks
 * that it lies inside the input, that the bytes consumed add up, that
 * writing it back with psrp_frag_write gives the same bytes, and that a
 * message header read from it agrees with a decoding done here.  The
 * CLIXML scanner is run over each message body and over the whole input,
 * and what it returns must be a part of the text it was given.  Any
 * disagreement aborts.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "psrp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) abort(); } while (0)

/* The tag/name pairs the plugin and a bridge look up in CLIXML. */
static const char *const lookups[][2] = {
	{ "I32", "RunspaceState" },
	{ "I32", "PipelineState" },
	{ "B", "NoInput" },
	{ "I64", "ci" },
	{ "I32", "MinRunspaces" },
	{ "I32", "MaxRunspaces" },
	{ "Version", "protocolversion" },
};

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	    (uint32_t)p[3];
}

static uint64_t
be64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void
check_clixml(const uint8_t *text, size_t len)
{
	char close[32];
	size_t i, n;
	char *v;

	for (i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		v = psrp_clixml_value(text, len, lookups[i][0], lookups[i][1]);
		if (v == NULL)
			continue;
		n = strlen(v);
		CHECK(n < len);
		/* The value is text that follows the opening tag. */
		CHECK(n == 0 || memmem(text, len, v, n) != NULL);
		/* It ends at the first closing tag. */
		snprintf(close, sizeof(close), "</%s>", lookups[i][0]);
		CHECK(strstr(v, close) == NULL);
		free(v);
	}
}

static void
check_guid(const uint8_t g[16])
{
	char text[37];
	size_t i;
	bool zero = true;

	psrp_guid_text(g, text);
	CHECK(strlen(text) == 36);
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			CHECK(text[i] == '-');
		else
			CHECK((text[i] >= '0' && text[i] <= '9') ||
			    (text[i] >= 'a' && text[i] <= 'f'));
	}
	for (i = 0; i < 16; i++)
		if (g[i] != 0)
			zero = false;
	CHECK(psrp_guid_is_zero(g) == zero);
	CHECK(zero == (strcmp(text, "00000000-0000-0000-0000-000000000000") == 0));
}

static void
check_fragment(const uint8_t *base, size_t size, const uint8_t *at,
    const struct psrp_frag *f)
{
	struct psrp_msg_hdr h;
	uint8_t *copy;
	size_t n;

	/* Where it is and what the header says. */
	CHECK(f->raw == at);
	CHECK(f->raw >= base && f->raw_len <= size - (size_t)(f->raw - base));
	CHECK(f->raw_len == PSRP_FRAG_HDR + (size_t)f->blob_len);
	CHECK(f->blob == f->raw + PSRP_FRAG_HDR);
	CHECK(f->object_id == be64(f->raw));
	CHECK(f->fragment_id == be64(f->raw + 8));
	CHECK(f->flags == f->raw[16] && (f->flags & ~3u) == 0);
	CHECK(f->blob_len == be32(f->raw + 17));

	/* Written back, it is the same bytes. */
	CHECK((copy = malloc(f->raw_len)) != NULL);
	n = psrp_frag_write(copy, f->object_id, f->fragment_id, f->flags,
	    f->blob, f->blob_len);
	CHECK(n == f->raw_len && memcmp(copy, f->raw, n) == 0);
	free(copy);

	/* A message header only at the start of a message. */
	if (!psrp_msg_header(f, &h)) {
		CHECK(!(f->flags & PSRP_START) || f->fragment_id != 0 ||
		    f->blob_len < PSRP_MSG_HDR);
		return;
	}
	CHECK((f->flags & PSRP_START) && f->fragment_id == 0 &&
	    f->blob_len >= PSRP_MSG_HDR);
	CHECK(h.destination == le32(f->blob));
	CHECK(h.type == le32(f->blob + 4));
	CHECK(memcmp(h.rpid, f->blob + 8, 16) == 0);
	CHECK(memcmp(h.pid, f->blob + 24, 16) == 0);
	CHECK(h.data == f->blob + PSRP_MSG_HDR);
	CHECK(h.data_len == f->blob_len - PSRP_MSG_HDR);
	CHECK(psrp_type_name(h.type) != NULL);
	check_guid(h.rpid);
	check_guid(h.pid);
	check_clixml(h.data, h.data_len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *at;
	size_t left = size, before;
	struct psrp_frag f;
	bool bad = true;

	for (;;) {
		at = p;
		before = left;
		if (!psrp_frag_next(&p, &left, &f, &bad))
			break;
		CHECK(!bad);
		CHECK(p == at + f.raw_len && left == before - f.raw_len);
		check_fragment(data, size, at, &f);
	}
	/* It stopped at the end, or at the first bytes that are no fragment. */
	CHECK(p == at && left == before);
	CHECK(bad == (left != 0));
	CHECK((size_t)(p - data) + left == size);
	check_clixml(data, size);
	return 0;
}
