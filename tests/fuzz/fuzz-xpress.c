/*
 * libFuzzer harness for xpress.c.
 *
 * Each input is used three ways:
 *  - as a framed Stream payload; when it decodes, the result is framed
 *    again at level 1 and must decode back to the same bytes;
 *  - as a raw LZ77+Huffman stream after a 3-byte prefix that gives the
 *    output size (up to 256 KiB, so streams of several blocks are reached);
 *    when it decodes, the result must survive a compress/decompress trip;
 *  - as plain data, framed at levels 0 and 1, which must decode back.
 * Any mismatch aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xpress.h"

#define FUZZ_MAX_OUT	(4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Frame p at the given level and check that it decodes back to p. */
static void
frame_trip(const uint8_t *p, size_t n, int level)
{
	uint8_t *f = NULL, *d = NULL;
	size_t flen = 0, dlen = 0;

	if (wrm_xpress_frame_encode(p, n, level, &f, &flen) != 0)
		abort();
	if (flen > wrm_xpress_frame_bound(n))
		abort();
	if (wrm_xpress_frame_decode(f, flen, &d, &dlen, n) != 0)
		abort();
	if (dlen != n || memcmp(d, p, n) != 0)
		abort();
	free(f);
	free(d);
}

static void
raw_trip(const uint8_t *p, size_t n)
{
	uint8_t *c = NULL, *d;
	size_t clen = 0;

	if (wrm_xpress_huff_compress(p, n, &c, &clen) != 0)
		abort();
	if ((d = malloc(n > 0 ? n : 1)) == NULL)
		abort();
	if (wrm_xpress_huff_decompress(c, clen, d, n) != 0)
		abort();
	if (memcmp(d, p, n) != 0)
		abort();
	free(c);
	free(d);
}

static void
try_frame(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL;
	size_t n = 0;

	if (wrm_xpress_frame_decode(data, size, &out, &n, FUZZ_MAX_OUT) != 0)
		return;
	frame_trip(out, n, 1);
	free(out);
}

static void
try_raw(const uint8_t *data, size_t size)
{
	uint8_t *out;
	size_t n;

	if (size < 3)
		return;
	n = ((size_t)data[0] | (size_t)data[1] << 8 |
	    (size_t)(data[2] & 3) << 16) + 1;
	if ((out = malloc(n)) == NULL)
		abort();
	if (wrm_xpress_huff_decompress(data + 3, size - 3, out, n) == 0)
		raw_trip(out, n);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	try_frame(data, size);
	try_raw(data, size);
	frame_trip(data, size, 0);
	frame_trip(data, size, 1);
	return 0;
}
