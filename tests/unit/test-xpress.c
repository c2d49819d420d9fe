/*
 * Unit tests for xpress.c: the MS-XCA LZ77+Huffman codec and the WinRM
 * chunk framing around it.
 *
 * The decoder is checked against the worked examples of MS-XCA 3.2 and
 * against streams built here bit by bit (struct tw follows the writer
 * described in MS-XCA 2.1.4.3, independently of the encoder under test),
 * which reach the cases an encoder would not produce: matches crossing a
 * block end, the 32-bit length form, the end-of-data symbol used as a
 * match, broken tables.  The encoder is checked by round trips.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xpress.h"

#define KIB	1024

/* MS-XCA 3.2: "abcdefghijklmnopqrstuvwxyz" as literals and end of data. */
static uint8_t spec_lit[276];
static const uint8_t spec_lit_bits[] = {
	0xd8, 0x52, 0x3e, 0xd7, 0x94, 0x11, 0x5b, 0xe9, 0x19, 0x5f,
	0xf9, 0xd6, 0x7c, 0xdf, 0x8d, 0x04, 0x00, 0x00, 0x00, 0x00,
};

/* MS-XCA 3.2: "abc" x 100 as abc, match(distance 3, length 297), EOF. */
static uint8_t spec_match[263];
static const uint8_t spec_match_bits[] = {
	0xa8, 0xdc, 0x00, 0x00, 0xff, 0x26, 0x01,
};

static void
spec_vectors(void)
{
	static const uint8_t lit_table[] = {
		0x50, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55,
		0x55, 0x55, 0x55, 0x45, 0x44, 0x04,
	};

	memset(spec_lit, 0, sizeof(spec_lit));
	memcpy(spec_lit + 48, lit_table, sizeof(lit_table));
	spec_lit[128] = 0x04;
	memcpy(spec_lit + 256, spec_lit_bits, sizeof(spec_lit_bits));

	memset(spec_match, 0, sizeof(spec_match));
	spec_match[48] = 0x30;
	spec_match[49] = 0x23;
	spec_match[128] = 0x02;
	spec_match[143] = 0x20;
	memcpy(spec_match + 256, spec_match_bits, sizeof(spec_match_bits));
}

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz";

static void
abc300(uint8_t *p)
{
	int i;

	for (i = 0; i < 300; i++)
		p[i] = (uint8_t)("abc"[i % 3]);
}

/* ---------------------------------------------------------------- */
/* Test data */

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

enum kind { K_RANDOM, K_REPEAT, K_TEXT, K_ZERO, K_MIXED, K_NKINDS };

static void
fill_text(uint64_t *s, uint8_t *p, size_t n)
{
	static const char *const words[] = {
		"<Obj RefId=\"", "\"><MS>", "<S N=\"Name\">", "</S>",
		"PowerShell", " ", " ", "\r\n", "Get-ChildItem", "0",
		"System.Management.Automation", "<I32 N=\"", "</Obj>",
		"the", "of", "and", "data", "stream", "1", "2", "42",
	};
	size_t i = 0, k, l;
	const char *w;

	while (i < n) {
		w = words[rnd(s) % (sizeof(words) / sizeof(words[0]))];
		l = strlen(w);
		for (k = 0; k < l && i < n; k++)
			p[i++] = (uint8_t)w[k];
		if (rnd(s) % 16 == 0 && i < n)
			p[i++] = (uint8_t)('A' + rnd(s) % 26);
	}
}

static void
fill_repeat(uint64_t *s, uint8_t *p, size_t n)
{
	size_t i, period = 1 + rnd(s) % 300;

	for (i = 0; i < n; i++) {
		if (i < period)
			p[i] = (uint8_t)rnd(s);
		else
			p[i] = p[i - period];
		if (rnd(s) % 997 == 0)
			p[i] = (uint8_t)rnd(s);
	}
}

static void
fill(uint64_t *s, enum kind k, uint8_t *p, size_t n)
{
	size_t i, seg;

	switch (k) {
	case K_RANDOM:
		for (i = 0; i < n; i++)
			p[i] = (uint8_t)rnd(s);
		break;
	case K_REPEAT:
		fill_repeat(s, p, n);
		break;
	case K_TEXT:
		fill_text(s, p, n);
		break;
	case K_ZERO:
		memset(p, 0, n);
		break;
	default:
		for (i = 0; i < n; i += seg) {
			seg = 1 + rnd(s) % 20000;
			if (seg > n - i)
				seg = n - i;
			fill(s, (enum kind)(rnd(s) % K_MIXED), p + i, seg);
		}
		break;
	}
}

/* ---------------------------------------------------------------- */
/* Hand-made streams (writer of MS-XCA 2.1.4.3) */

struct tw {
	uint8_t buf[4096];
	size_t op1;
	size_t op2;
	size_t pos;
	uint32_t next;
	int free_bits;
};

/* Start a block whose 256 table bytes all equal tbyte. */
static void
tw_block(struct tw *w, uint8_t tbyte)
{
	memset(w->buf + w->pos, tbyte, 256);
	w->op1 = w->pos + 256;
	w->op2 = w->pos + 258;
	w->pos += 260;
	w->next = 0;
	w->free_bits = 16;
}

static void
tw_bits(struct tw *w, int n, uint32_t v)
{
	if (w->free_bits >= n) {
		w->free_bits -= n;
		w->next = (w->next << n) + v;
		return;
	}
	w->next <<= w->free_bits;
	w->next += v >> (n - w->free_bits);
	w->free_bits -= n;
	w->buf[w->op1] = w->next & 0xff;
	w->buf[w->op1 + 1] = (w->next >> 8) & 0xff;
	w->op1 = w->op2;
	w->op2 = w->pos;
	w->pos += 2;
	w->free_bits += 16;
	w->next = v;
}

static void
tw_byte(struct tw *w, uint32_t v)
{
	w->buf[w->pos++] = v & 0xff;
}

static void
tw_u16(struct tw *w, uint32_t v)
{
	tw_byte(w, v);
	tw_byte(w, v >> 8);
}

static void
tw_u32(struct tw *w, uint32_t v)
{
	tw_u16(w, v & 0xffff);
	tw_u16(w, v >> 16);
}

static void
tw_flush(struct tw *w)
{
	w->next <<= w->free_bits;
	w->buf[w->op1] = w->next & 0xff;
	w->buf[w->op1 + 1] = (w->next >> 8) & 0xff;
	w->buf[w->op2] = 0;
	w->buf[w->op2 + 1] = 0;
}

/*
 * With table bytes 0x99 every symbol has a 9-bit code, and the canonical
 * code of symbol s is s itself.
 */
#define FLAT	0x99

static void
tw_sym(struct tw *w, uint32_t s)
{
	tw_bits(w, 9, s);
}

static int
hb(uint32_t d)
{
	return 31 - __builtin_clz(d);
}

/* A match in the flat code, length written in the form the spec uses. */
static void
tw_match(struct tw *w, uint32_t len, uint32_t dist)
{
	uint32_t l = len - 3;

	tw_sym(w, 256 + (l < 15 ? l : 15) + 16 * (uint32_t)hb(dist));
	if (l >= 15) {
		l -= 15;
		if (l < 255) {
			tw_byte(w, l);
		} else {
			tw_byte(w, 255);
			l += 15;
			if (l < 65536) {
				tw_u16(w, l);
			} else {
				tw_u16(w, 0);
				tw_u32(w, l);
			}
		}
	}
	tw_bits(w, hb(dist), dist - (1u << hb(dist)));
}

static int
tw_decode(struct tw *w, uint8_t *out, size_t out_len)
{
	return wrm_xpress_huff_decompress(w->buf, w->pos, out, out_len);
}

/* ---------------------------------------------------------------- */
/* Round-trip helpers */

static void
check_raw(const uint8_t *in, size_t n)
{
	uint8_t *c = NULL, *d;
	size_t clen = 0;

	assert_int_equal(wrm_xpress_huff_compress(in, n, &c, &clen), 0);
	assert_true(clen >= 260);
	d = malloc(n > 0 ? n : 1);
	assert_non_null(d);
	assert_int_equal(wrm_xpress_huff_decompress(c, clen, d, n), 0);
	assert_memory_equal(d, in, n);
	free(c);
	free(d);
}

/* Returns the framed length. */
static size_t
check_frame(const uint8_t *in, size_t n, int level)
{
	uint8_t *f = NULL, *d = NULL;
	size_t flen = 0, dlen = 1;

	assert_int_equal(wrm_xpress_frame_encode(in, n, level, &f, &flen), 0);
	assert_true(flen <= wrm_xpress_frame_bound(n));
	if (level == 0)
		assert_int_equal(flen, wrm_xpress_frame_bound(n));
	assert_int_equal(wrm_xpress_frame_decode(f, flen, &d, &dlen, n), 0);
	assert_int_equal(dlen, n);
	assert_memory_equal(d, in, n);
	free(f);
	free(d);
	return flen;
}

/* ---------------------------------------------------------------- */
/* Tests: MS-XCA examples */

static void
test_xpress_spec_literals(void **state)
{
	uint8_t out[26];

	(void)state;
	assert_int_equal(wrm_xpress_huff_decompress(spec_lit,
	    sizeof(spec_lit), out, sizeof(out)), 0);
	assert_memory_equal(out, alphabet, 26);
}

static void
test_xpress_spec_long_match(void **state)
{
	uint8_t out[300], want[300];

	(void)state;
	abc300(want);
	assert_int_equal(wrm_xpress_huff_decompress(spec_match,
	    sizeof(spec_match), out, sizeof(out)), 0);
	assert_memory_equal(out, want, 300);
}

static void
test_xpress_spec_framed(void **state)
{
	uint8_t f[4 + 276 + 4 + 263 + 4 + 3], want[26 + 300 + 3];
	uint8_t *d = NULL;
	size_t n = 0;

	(void)state;
	/* ulen - 1 = 25, plen - 1 = 275; ulen - 1 = 299, plen - 1 = 262. */
	memcpy(f, "\x19\x00\x13\x01", 4);
	memcpy(f + 4, spec_lit, 276);
	memcpy(f + 280, "\x2b\x01\x06\x01", 4);
	memcpy(f + 284, spec_match, 263);
	memcpy(f + 547, "\x02\x00\x02\x00xyz", 7);
	memcpy(want, alphabet, 26);
	abc300(want + 26);
	memcpy(want + 326, "xyz", 3);
	assert_int_equal(wrm_xpress_frame_decode(f, sizeof(f), &d, &n, 329),
	    0);
	assert_int_equal(n, 329);
	assert_memory_equal(d, want, 329);
	free(d);
	/* One byte less room than the data needs. */
	assert_int_equal(wrm_xpress_frame_decode(f, sizeof(f), &d, &n, 328),
	    WRM_ERR_LIMIT);
}

static void
test_xpress_spec_roundtrip(void **state)
{
	uint8_t abc[300];
	uint8_t *c = NULL;
	size_t clen = 0;

	(void)state;
	abc300(abc);
	check_raw((const uint8_t *)alphabet, 26);
	check_raw(abc, 300);
	/* The 300 bytes must come out as a few symbols after the table. */
	assert_int_equal(wrm_xpress_huff_compress(abc, 300, &c, &clen), 0);
	assert_true(clen <= 256 + 16);
	free(c);
}

/* ---------------------------------------------------------------- */
/* Tests: hand-made streams */

static void
test_xpress_length_forms(void **state)
{
	static const uint32_t lens[] = {
		3, 4, 17, 18, 19, 271, 272, 273, 274, 1000, 65535, 65536,
		65537, 65538, 65539, 65540, 70000, 200000,
	};
	struct tw w;
	uint8_t *out;
	size_t i, j;

	(void)state;
	out = malloc(200001);
	assert_non_null(out);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		w.pos = 0;
		tw_block(&w, FLAT);
		tw_sym(&w, 'k');
		tw_match(&w, lens[i], 1);
		tw_sym(&w, 256);
		tw_flush(&w);
		assert_int_equal(tw_decode(&w, out, lens[i] + 1), 0);
		for (j = 0; j < lens[i] + 1; j++)
			assert_int_equal(out[j], 'k');
		/* One output byte short: the match overruns. */
		assert_int_equal(tw_decode(&w, out, lens[i]), WRM_ERR_PARSE);
	}
	free(out);
}

static void
test_xpress_long_length_rules(void **state)
{
	struct tw w;
	uint8_t out[64];

	(void)state;
	/* 16-bit form below 15 is invalid. */
	w.pos = 0;
	tw_block(&w, FLAT);
	tw_sym(&w, 'a');
	tw_sym(&w, 256 + 15);
	tw_byte(&w, 255);
	tw_u16(&w, 14);
	tw_flush(&w);
	assert_int_equal(tw_decode(&w, out, 18), WRM_ERR_PARSE);
	/* 32-bit form below 15 is invalid too. */
	w.pos = 0;
	tw_block(&w, FLAT);
	tw_sym(&w, 'a');
	tw_sym(&w, 256 + 15);
	tw_byte(&w, 255);
	tw_u16(&w, 0);
	tw_u32(&w, 14);
	tw_flush(&w);
	assert_int_equal(tw_decode(&w, out, 18), WRM_ERR_PARSE);
	/* A 32-bit form that could have been shorter is still a length. */
	w.pos = 0;
	tw_block(&w, FLAT);
	tw_sym(&w, 'a');
	tw_sym(&w, 256 + 15);
	tw_byte(&w, 255);
	tw_u16(&w, 0);
	tw_u32(&w, 20);
	tw_sym(&w, 'b');
	tw_flush(&w);
	assert_int_equal(tw_decode(&w, out, 25), 0);
	assert_memory_equal(out, "aaaaaaaaaaaaaaaaaaaaaaaab", 25);
	/* Extra bytes cut short: the byte, the u16, the u32. */
	w.pos = 0;
	tw_block(&w, FLAT);
	tw_sym(&w, 'a');
	tw_sym(&w, 256 + 15);
	tw_byte(&w, 255);
	tw_u16(&w, 0);
	tw_u32(&w, 70000);
	tw_flush(&w);
	assert_int_equal(wrm_xpress_huff_decompress(w.buf, w.pos, out, 1),
	    0);
	assert_int_equal(wrm_xpress_huff_decompress(w.buf, w.pos - 2, out,
	    64), WRM_ERR_PARSE);
	assert_int_equal(wrm_xpress_huff_decompress(w.buf, w.pos - 5, out,
	    64), WRM_ERR_PARSE);
	assert_int_equal(wrm_xpress_huff_decompress(w.buf, w.pos - 6, out,
	    64), WRM_ERR_PARSE);
	assert_int_equal(wrm_xpress_huff_decompress(w.buf, w.pos - 7, out,
	    64), WRM_ERR_PARSE);
}

/* Distances with every number of extra bits, including 65535. */
static void
test_xpress_distances(void **state)
{
	static const uint32_t dists[] = {
		1, 2, 3, 4, 7, 8, 9, 255, 256, 1000, 4096, 32767, 32768,
		65534, 65535,
	};
	struct tw w;
	uint8_t *out, *want;
	size_t i, k, pre, n = 65535 + 5;
	uint32_t d;

	(void)state;
	out = malloc(n);
	want = malloc(n);
	assert_non_null(out);
	assert_non_null(want);
	for (i = 0; i < sizeof(dists) / sizeof(dists[0]); i++) {
		/* A prefix of max(d, 2) bytes "pqpq...", then match(5, d). */
		d = dists[i];
		pre = d > 2 ? d : 2;
		w.pos = 0;
		tw_block(&w, FLAT);
		for (k = 0; k < (pre < 8 ? pre : 2); k++)
			tw_sym(&w, (k % 2) ? 'q' : 'p');
		if (pre >= 8)
			tw_match(&w, (uint32_t)pre - 2, 2);
		tw_match(&w, 5, d);
		tw_flush(&w);
		for (k = 0; k < pre; k++)
			want[k] = (k % 2) ? 'q' : 'p';
		for (k = pre; k < pre + 5; k++)
			want[k] = want[k - d];
		assert_int_equal(tw_decode(&w, out, pre + 5), 0);
		assert_memory_equal(out, want, pre + 5);
		/* One byte less history: the distance reaches before it. */
		if (d > 2) {
			w.pos = 0;
			tw_block(&w, FLAT);
			tw_sym(&w, 'p');
			tw_sym(&w, 'q');
			if (d - 1 > 4)
				tw_match(&w, d - 3, 2);
			else
				for (k = 2; k < d - 1; k++)
					tw_sym(&w, 'p');
			tw_match(&w, 5, d);
			tw_flush(&w);
			assert_int_equal(tw_decode(&w, out, d - 1 + 5),
			    WRM_ERR_PARSE);
		}
	}
	free(out);
	free(want);
}

/* Block 1 ends inside a match; block 2 starts after it. */
static void
test_xpress_match_crosses_block(void **state)
{
	struct tw w;
	uint8_t *out;
	size_t i, n = 70002 + 3;

	(void)state;
	w.pos = 0;
	tw_block(&w, FLAT);
	tw_sym(&w, 'a');
	tw_sym(&w, 'b');
	tw_match(&w, 70000, 2);
	tw_flush(&w);
	/* Second block: 'x' 'y' 'z' and 256 get 2-bit codes 00 01 10 11. */
	memset(w.buf + w.pos, 0, 256);
	w.buf[w.pos + 'x' / 2] = 0x22;		/* 'x' low nibble, 'y' high */
	w.buf[w.pos + 'z' / 2] = 0x02;
	w.buf[w.pos + 128] = 0x02;		/* symbol 256 */
	w.op1 = w.pos + 256;
	w.op2 = w.pos + 258;
	w.pos += 260;
	w.next = 0;
	w.free_bits = 16;
	tw_bits(&w, 2, 0);
	tw_bits(&w, 2, 1);
	tw_bits(&w, 2, 2);
	tw_bits(&w, 2, 3);
	tw_flush(&w);

	out = malloc(n);
	assert_non_null(out);
	assert_int_equal(tw_decode(&w, out, n), 0);
	for (i = 0; i < 70002; i++)
		assert_int_equal(out[i], (i % 2) ? 'b' : 'a');
	assert_memory_equal(out + 70002, "xyz", 3);
	free(out);
}

/* Two blocks meeting exactly at 65536, the second with its own table. */
static void
test_xpress_block_boundary_exact(void **state)
{
	struct tw w;
	uint8_t *out;
	size_t i, n = 65536 + 4;

	(void)state;
	w.pos = 0;
	tw_block(&w, FLAT);
	tw_sym(&w, 'm');
	tw_match(&w, 65535, 1);
	tw_flush(&w);
	/* 'q' (0x71, odd) and 256 with one bit each: q = 0, 256 = 1. */
	memset(w.buf + w.pos, 0, 256);
	w.buf[w.pos + 0x71 / 2] = 0x10;
	w.buf[w.pos + 128] = 0x01;
	w.op1 = w.pos + 256;
	w.op2 = w.pos + 258;
	w.pos += 260;
	w.next = 0;
	w.free_bits = 16;
	for (i = 0; i < 4; i++)
		tw_bits(&w, 1, 0);
	tw_bits(&w, 1, 1);
	tw_flush(&w);

	out = malloc(n);
	assert_non_null(out);
	assert_int_equal(tw_decode(&w, out, n), 0);
	for (i = 0; i < 65536; i++)
		assert_int_equal(out[i], 'm');
	assert_memory_equal(out + 65536, "qqqq", 4);
	/* Without the second block the output cannot be completed. */
	assert_int_equal(wrm_xpress_huff_decompress(w.buf, w.pos - 260, out,
	    n), WRM_ERR_PARSE);
	free(out);
}

/* Before the output is complete, symbol 256 is length 3, distance 1. */
static void
test_xpress_eof_symbol_as_match(void **state)
{
	struct tw w;
	uint8_t out[8];

	(void)state;
	w.pos = 0;
	tw_block(&w, FLAT);
	tw_sym(&w, 'z');
	tw_sym(&w, 256);
	tw_sym(&w, 'y');
	tw_sym(&w, 256);
	tw_flush(&w);
	assert_int_equal(tw_decode(&w, out, 5), 0);
	assert_memory_equal(out, "zzzzy", 5);
}

static void
test_xpress_trailing_input_ignored(void **state)
{
	uint8_t in[276 + 10], out[26];

	(void)state;
	memcpy(in, spec_lit, 276);
	memset(in + 276, 0xa5, 10);
	assert_int_equal(wrm_xpress_huff_decompress(in, sizeof(in), out, 26),
	    0);
	assert_memory_equal(out, alphabet, 26);
	/* Shorter output stops early; nothing else is required. */
	assert_int_equal(wrm_xpress_huff_decompress(in, sizeof(in), out, 5),
	    0);
	assert_memory_equal(out, "abcde", 5);
	assert_int_equal(wrm_xpress_huff_decompress(NULL, 0, NULL, 0), 0);
}

/* ---------------------------------------------------------------- */
/* Tests: malformed raw streams */

static void
test_xpress_bad_tables(void **state)
{
	uint8_t in[300], out[16];

	(void)state;
	memset(in, 0, sizeof(in));
	/* All zero: no code at all. */
	assert_int_equal(wrm_xpress_huff_decompress(in, sizeof(in), out, 16),
	    WRM_ERR_PARSE);
	/* 512 codes of 8 bits: over-subscribed. */
	memset(in, 0x88, 256);
	assert_int_equal(wrm_xpress_huff_decompress(in, sizeof(in), out, 16),
	    WRM_ERR_PARSE);
	/* 512 codes of 10 bits: incomplete. */
	memset(in, 0xaa, 256);
	assert_int_equal(wrm_xpress_huff_decompress(in, sizeof(in), out, 16),
	    WRM_ERR_PARSE);
	/* A single one-bit code: incomplete. */
	memset(in, 0, 256);
	in[0] = 0x01;
	assert_int_equal(wrm_xpress_huff_decompress(in, sizeof(in), out, 16),
	    WRM_ERR_PARSE);
	/* Three one-bit codes: over-subscribed. */
	in[0] = 0x11;
	in[1] = 0x01;
	assert_int_equal(wrm_xpress_huff_decompress(in, sizeof(in), out, 16),
	    WRM_ERR_PARSE);
	/* Two 15-bit codes short of complete. */
	memset(in, 0, 256);
	in[0] = 0x21;		/* sym 0: 1 bit, sym 1: 2 bits */
	in[1] = 0x43;		/* 3, 4 */
	in[2] = 0x65;
	in[3] = 0x87;
	in[4] = 0xa9;
	in[5] = 0xcb;
	in[6] = 0xed;
	in[7] = 0x0f;		/* sym 14: 15 bits, sym 15 missing */
	assert_int_equal(wrm_xpress_huff_decompress(in, sizeof(in), out, 16),
	    WRM_ERR_PARSE);
	in[7] = 0xff;		/* now complete: codes of 1..15, 15 bits */
	assert_int_equal(wrm_xpress_huff_decompress(in, sizeof(in), out, 1),
	    0);
}

static void
test_xpress_match_before_start(void **state)
{
	struct tw w;
	uint8_t out[16];

	(void)state;
	w.pos = 0;
	tw_block(&w, FLAT);
	tw_match(&w, 4, 1);
	tw_flush(&w);
	assert_int_equal(tw_decode(&w, out, 4), WRM_ERR_PARSE);

	w.pos = 0;
	tw_block(&w, FLAT);
	tw_sym(&w, 'a');
	tw_match(&w, 4, 2);
	tw_flush(&w);
	assert_int_equal(tw_decode(&w, out, 5), WRM_ERR_PARSE);

	w.pos = 0;
	tw_block(&w, FLAT);
	tw_sym(&w, 'a');
	tw_sym(&w, 'b');
	tw_match(&w, 4, 2);
	tw_flush(&w);
	assert_int_equal(tw_decode(&w, out, 6), 0);
	assert_memory_equal(out, "ababab", 6);
}

static void
test_xpress_output_overflow(void **state)
{
	uint8_t out[300];

	(void)state;
	/* The example's 297-byte match does not fit in 299 - 3 bytes. */
	assert_int_equal(wrm_xpress_huff_decompress(spec_match,
	    sizeof(spec_match), out, 299), WRM_ERR_PARSE);
	assert_int_equal(wrm_xpress_huff_decompress(spec_match,
	    sizeof(spec_match), out, 4), WRM_ERR_PARSE);
	assert_int_equal(wrm_xpress_huff_decompress(spec_match,
	    sizeof(spec_match), out, 300), 0);
	/* One byte more: the end-of-data symbol reads as a 3-byte match. */
	assert_int_equal(wrm_xpress_huff_decompress(spec_lit,
	    sizeof(spec_lit), out, 27), WRM_ERR_PARSE);
	/* Far more: the symbols run out before the output does. */
	assert_int_equal(wrm_xpress_huff_decompress(spec_lit,
	    sizeof(spec_lit), out, 300), WRM_ERR_PARSE);
}

static void
test_xpress_truncated_raw(void **state)
{
	uint8_t want[300], out[300], *c = NULL, *cut;
	size_t clen = 0, k;
	uint64_t s = 7;
	int r;

	(void)state;
	abc300(want);
	/* The example needs every byte up to the 16-bit length. */
	for (k = 0; k < 263; k++) {
		cut = malloc(k > 0 ? k : 1);
		assert_non_null(cut);
		memcpy(cut, spec_match, k);
		assert_int_equal(wrm_xpress_huff_decompress(cut, k, out, 300),
		    WRM_ERR_PARSE);
		free(cut);
	}
	/* Any prefix of a real stream: an error or the right bytes. */
	fill(&s, K_TEXT, want, sizeof(want));
	assert_int_equal(wrm_xpress_huff_compress(want, 300, &c, &clen), 0);
	for (k = 0; k <= clen; k++) {
		cut = malloc(k > 0 ? k : 1);
		assert_non_null(cut);
		memcpy(cut, c, k);
		r = wrm_xpress_huff_decompress(cut, k, out, 300);
		if (r == 0)
			assert_memory_equal(out, want, 300);
		else
			assert_int_equal(r, WRM_ERR_PARSE);
		free(cut);
	}
	free(c);
}

/* Corrupted streams: whatever the result, no out-of-bounds access. */
static void
test_xpress_corrupted_raw(void **state)
{
	uint8_t *in, *c = NULL, *bad, *out;
	size_t n = 150000, clen = 0, i, pos;
	uint64_t s = 99;
	int round, r;

	(void)state;
	in = malloc(n);
	out = malloc(n);
	assert_non_null(in);
	assert_non_null(out);
	fill(&s, K_MIXED, in, n);
	assert_int_equal(wrm_xpress_huff_compress(in, n, &c, &clen), 0);
	bad = malloc(clen);
	assert_non_null(bad);
	for (round = 0; round < 300; round++) {
		memcpy(bad, c, clen);
		for (i = 0; i < 1 + rnd(&s) % 4; i++) {
			pos = rnd(&s) % clen;
			bad[pos] ^= (uint8_t)(1u << (rnd(&s) % 8));
		}
		r = wrm_xpress_huff_decompress(bad, clen, out, n);
		assert_true(r == 0 || r == WRM_ERR_PARSE);
	}
	free(bad);
	free(c);
	free(in);
	free(out);
}

/* ---------------------------------------------------------------- */
/* Tests: framing */

static void
test_xpress_frame_stored(void **state)
{
	uint8_t *f = NULL, *d = NULL;
	size_t flen = 0, dlen = 0;

	(void)state;
	assert_int_equal(wrm_xpress_frame_encode((const uint8_t *)"hello", 5,
	    0, &f, &flen), 0);
	assert_int_equal(flen, 9);
	assert_memory_equal(f, "\x04\x00\x04\x00hello", 9);
	assert_int_equal(wrm_xpress_frame_decode(f, flen, &d, &dlen, 5), 0);
	assert_int_equal(dlen, 5);
	assert_memory_equal(d, "hello", 5);
	free(f);
	free(d);
	/* Level 1 stores chunks under 266 bytes, as Windows does. */
	assert_int_equal(wrm_xpress_frame_encode((const uint8_t *)"hello", 5,
	    1, &f, &flen), 0);
	assert_memory_equal(f, "\x04\x00\x04\x00hello", 9);
	free(f);
	/* Empty in, empty out. */
	assert_int_equal(wrm_xpress_frame_encode(NULL, 0, 1, &f, &flen), 0);
	assert_int_equal(flen, 0);
	free(f);
	assert_int_equal(wrm_xpress_frame_decode(NULL, 0, &d, &dlen, 0), 0);
	assert_int_equal(dlen, 0);
	assert_non_null(d);
	free(d);
}

/* Broken preconditions and sizes the encoder cannot address. */
static void
test_xpress_bad_arguments(void **state)
{
	uint8_t buf[8], *p = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(wrm_xpress_huff_decompress(NULL, 1, buf, 1),
	    WRM_ERR_INTERNAL);
	assert_int_equal(wrm_xpress_huff_decompress(buf, 1, NULL, 1),
	    WRM_ERR_INTERNAL);
	assert_int_equal(wrm_xpress_huff_compress(NULL, 1, &p, &n),
	    WRM_ERR_INTERNAL);
	assert_int_equal(wrm_xpress_frame_encode(NULL, 1, 1, &p, &n),
	    WRM_ERR_INTERNAL);
	assert_int_equal(wrm_xpress_frame_decode(NULL, 1, &p, &n, 1),
	    WRM_ERR_INTERNAL);
	/* Lengths are checked before any byte is read. */
	assert_int_equal(wrm_xpress_huff_compress(buf, (size_t)UINT32_MAX,
	    &p, &n), WRM_ERR_LIMIT);
	assert_int_equal(wrm_xpress_frame_encode(buf, SIZE_MAX, 0, &p, &n),
	    WRM_ERR_LIMIT);
	assert_null(p);
}

static void
test_xpress_frame_bound(void **state)
{
	(void)state;
	assert_int_equal(wrm_xpress_frame_bound(0), 0);
	assert_int_equal(wrm_xpress_frame_bound(1), 5);
	assert_int_equal(wrm_xpress_frame_bound(65535), 65539);
	assert_int_equal(wrm_xpress_frame_bound(65536), 65540);
	assert_int_equal(wrm_xpress_frame_bound(65537), 65545);
	assert_int_equal(wrm_xpress_frame_bound(512000), 512000 + 8 * 4);
	assert_true(wrm_xpress_frame_bound(SIZE_MAX) == SIZE_MAX);
	assert_true(wrm_xpress_frame_bound(SIZE_MAX - 100) == SIZE_MAX);
}

/* Walk the chunk headers of a frame; returns the number of chunks. */
static size_t
chunks(const uint8_t *f, size_t flen, size_t *ulen, size_t *plen,
    size_t max)
{
	size_t off = 0, k = 0;

	while (off < flen && k < max) {
		ulen[k] = (size_t)(f[off] | f[off + 1] << 8) + 1;
		plen[k] = (size_t)(f[off + 2] | f[off + 3] << 8) + 1;
		off += 4 + plen[k];
		k++;
	}
	assert_int_equal(off, flen);
	return k;
}

static void
test_xpress_chunk_boundaries(void **state)
{
	static const size_t sizes[] = { 65535, 65536, 65537 };
	uint8_t *in, *f = NULL;
	size_t i, flen = 0, ulen[4], plen[4], nc, n;
	uint64_t s = 3;

	(void)state;
	in = malloc(65537);
	assert_non_null(in);
	for (i = 0; i < 3; i++) {
		n = sizes[i];
		fill(&s, K_TEXT, in, n);
		check_frame(in, n, 0);
		check_frame(in, n, 1);
		assert_int_equal(wrm_xpress_frame_encode(in, n, 0, &f, &flen),
		    0);
		nc = chunks(f, flen, ulen, plen, 4);
		assert_int_equal(nc, n > 65536 ? 2 : 1);
		assert_int_equal(ulen[0], n > 65536 ? 65536 : n);
		assert_int_equal(plen[0], ulen[0]);
		free(f);
		assert_int_equal(wrm_xpress_frame_encode(in, n, 1, &f, &flen),
		    0);
		nc = chunks(f, flen, ulen, plen, 4);
		assert_int_equal(nc, n > 65536 ? 2 : 1);
		assert_true(plen[0] < ulen[0]);		/* text packs */
		if (nc == 2) {
			assert_int_equal(ulen[1], 1);
			assert_int_equal(plen[1], 1);	/* stored */
		}
		free(f);
	}
	free(in);
}

static void
test_xpress_min_pack_size(void **state)
{
	uint8_t in[300], *f = NULL;
	size_t flen = 0, ulen[2], plen[2];

	(void)state;
	memset(in, 'a', sizeof(in));
	assert_int_equal(wrm_xpress_frame_encode(in, 265, 1, &f, &flen), 0);
	assert_int_equal(chunks(f, flen, ulen, plen, 2), 1);
	assert_int_equal(plen[0], 265);
	free(f);
	assert_int_equal(wrm_xpress_frame_encode(in, 266, 1, &f, &flen), 0);
	assert_int_equal(chunks(f, flen, ulen, plen, 2), 1);
	assert_true(plen[0] < 266);
	free(f);
	check_frame(in, 265, 1);
	check_frame(in, 266, 1);
	check_frame(in, 300, 1);
}

static void
test_xpress_incompressible_stored(void **state)
{
	uint8_t in[4096], *f = NULL;
	size_t flen = 0, ulen[2], plen[2];
	uint64_t s = 11;

	(void)state;
	fill(&s, K_RANDOM, in, sizeof(in));
	assert_int_equal(wrm_xpress_frame_encode(in, sizeof(in), 1, &f,
	    &flen), 0);
	assert_int_equal(chunks(f, flen, ulen, plen, 2), 1);
	assert_int_equal(plen[0], sizeof(in));
	assert_int_equal(flen, sizeof(in) + 4);
	free(f);
}

static void
test_xpress_frame_malformed(void **state)
{
	uint8_t f[64], *d = NULL;
	size_t dlen = 0;

	(void)state;
	memset(f, 0, sizeof(f));
	memcpy(f, "\x04\x00\x04\x00hello", 9);
	/* Truncated headers. */
	assert_int_equal(wrm_xpress_frame_decode(f, 1, &d, &dlen, 100),
	    WRM_ERR_PARSE);
	assert_int_equal(wrm_xpress_frame_decode(f, 3, &d, &dlen, 100),
	    WRM_ERR_PARSE);
	/* Payload past the end. */
	assert_int_equal(wrm_xpress_frame_decode(f, 8, &d, &dlen, 100),
	    WRM_ERR_PARSE);
	/* A stray byte or partial header after a good chunk. */
	assert_int_equal(wrm_xpress_frame_decode(f, 10, &d, &dlen, 100),
	    WRM_ERR_PARSE);
	assert_int_equal(wrm_xpress_frame_decode(f, 12, &d, &dlen, 100),
	    WRM_ERR_PARSE);
	/* The output bound. */
	assert_int_equal(wrm_xpress_frame_decode(f, 9, &d, &dlen, 4),
	    WRM_ERR_LIMIT);
	assert_int_equal(wrm_xpress_frame_decode(f, 9, &d, &dlen, 0),
	    WRM_ERR_LIMIT);
	assert_int_equal(wrm_xpress_frame_decode(f, 9, &d, &dlen, 5), 0);
	free(d);
	/* Claims 65536 bytes, payload of 5: not stored, not a stream. */
	memcpy(f, "\xff\xff\x04\x00hello", 9);
	assert_int_equal(wrm_xpress_frame_decode(f, 9, &d, &dlen, 1 << 20),
	    WRM_ERR_PARSE);
	/* Payload longer than the data it claims: treated as packed. */
	memcpy(f, "\x01\x00\x04\x00hello", 9);
	assert_int_equal(wrm_xpress_frame_decode(f, 9, &d, &dlen, 100),
	    WRM_ERR_PARSE);
}

static void
test_xpress_frame_packed_errors(void **state)
{
	uint8_t f[4 + 263], *d = NULL;
	size_t dlen = 0;

	(void)state;
	memcpy(f, "\x2b\x01\x06\x01", 4);
	memcpy(f + 4, spec_match, 263);
	assert_int_equal(wrm_xpress_frame_decode(f, sizeof(f), &d, &dlen,
	    300), 0);
	free(d);
	/* Claim 301 bytes: the stream ends before the output does. */
	f[0] = 0x2c;
	assert_int_equal(wrm_xpress_frame_decode(f, sizeof(f), &d, &dlen,
	    400), WRM_ERR_PARSE);
	/* Claim 299: the match overruns. */
	f[0] = 0x2a;
	assert_int_equal(wrm_xpress_frame_decode(f, sizeof(f), &d, &dlen,
	    400), WRM_ERR_PARSE);
	/* Broken table inside a frame. */
	f[0] = 0x2b;
	f[4 + 143] = 0x30;
	assert_int_equal(wrm_xpress_frame_decode(f, sizeof(f), &d, &dlen,
	    400), WRM_ERR_PARSE);
}

/* ---------------------------------------------------------------- */
/* Tests: random round trips */

static void
test_xpress_roundtrip_sizes(void **state)
{
	static const size_t fixed[] = {
		0, 1, 2, 3, 4, 17, 265, 266, 267, 1000, 4095, 4096, 65535,
		65536, 65537, 100000, 131071, 131072, 131073, 196608 + 3,
		300 * KIB,
	};
	uint8_t *in;
	size_t i, n, nsizes = sizeof(fixed) / sizeof(fixed[0]);
	uint64_t s = 0x5eed;
	int k;

	(void)state;
	in = malloc(300 * KIB);
	assert_non_null(in);
	for (i = 0; i < nsizes; i++) {
		for (k = 0; k < K_NKINDS; k++) {
			n = fixed[i];
			fill(&s, (enum kind)k, in, n);
			check_raw(in, n);
			check_frame(in, n, 0);
			check_frame(in, n, 1);
		}
	}
	free(in);
}

static void
test_xpress_roundtrip_random(void **state)
{
	uint8_t *in;
	size_t n, flen;
	uint64_t s = 0xc0ffee;
	int i;
	enum kind k;

	(void)state;
	in = malloc(300 * KIB);
	assert_non_null(in);
	for (i = 0; i < 60; i++) {
		n = rnd(&s) % (i % 3 == 0 ? 300 * KIB : 5000);
		k = (enum kind)(rnd(&s) % K_NKINDS);
		fill(&s, k, in, n);
		check_raw(in, n);
		flen = check_frame(in, n, 1);
		/* Zeros: a table and a few symbols per 64 KiB chunk. */
		if (k == K_ZERO && n >= WRM_XPRESS_MIN_PACK)
			assert_true(flen <= 280 * (n / 65536 + 1));
	}
	free(in);
}

/* The same input always encodes to the same bytes. */
static void
test_xpress_deterministic(void **state)
{
	uint8_t *in, *a = NULL, *b = NULL;
	size_t n = 100000, alen = 0, blen = 0;
	uint64_t s = 5;

	(void)state;
	in = malloc(n);
	assert_non_null(in);
	fill(&s, K_MIXED, in, n);
	assert_int_equal(wrm_xpress_frame_encode(in, n, 1, &a, &alen), 0);
	assert_int_equal(wrm_xpress_frame_encode(in, n, 1, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
	free(in);
}

/*
 * Skewed literals without matches: bytes 0..63 at random and rare bytes
 * 64..64+nrare-1 with Fibonacci counts 1, 2, 3, 5, ... (the end-of-data
 * symbol is the other count of 1 that starts the sequence), placed so
 * that no 3-byte string repeats within 4100 bytes and no 4-byte string
 * repeats at all.  The encoder then finds no match it would take.
 */
#define SK_FLAT	64
#define SK_ALPH	(SK_FLAT + 16)

static bool
sk_fresh(const uint8_t *p, size_t i, const uint32_t *last3,
    const uint8_t *seen4)
{
	size_t g3, g4;

	if (i < 3)
		return true;
	g3 = ((size_t)p[i - 2] * SK_ALPH + p[i - 1]) * SK_ALPH + p[i];
	g4 = (size_t)p[i - 3] * SK_ALPH * SK_ALPH * SK_ALPH + g3;
	if (last3[g3] != 0 && i - last3[g3] <= 4100)
		return false;
	return (seen4[g4 / 8] & (1u << (g4 % 8))) == 0;
}

static void
sk_mark(const uint8_t *p, size_t i, uint32_t *last3, uint8_t *seen4)
{
	size_t g3, g4;

	if (i < 3)
		return;
	g3 = ((size_t)p[i - 2] * SK_ALPH + p[i - 1]) * SK_ALPH + p[i];
	g4 = (size_t)p[i - 3] * SK_ALPH * SK_ALPH * SK_ALPH + g3;
	last3[g3] = (uint32_t)i;
	seen4[g4 / 8] |= (uint8_t)(1u << (g4 % 8));
}

/* Pick a rare byte weighted by the counts still to place; -1 if none. */
static int
sk_rare(uint64_t *s, size_t *left, unsigned int nrare, size_t todo,
    size_t room)
{
	size_t x;
	unsigned int k;

	if (todo == 0 || rnd(s) % room >= todo)
		return -1;
	x = rnd(s) % todo;
	for (k = 0; k < nrare; k++) {
		if (x < left[k])
			return (int)k;
		x -= left[k];
	}
	return -1;
}

static void
fill_skewed(uint64_t *s, uint8_t *p, size_t n, unsigned int nrare)
{
	uint32_t *last3;
	uint8_t *seen4;
	size_t i, left[16], todo = 0, f0 = 1, f1 = 2, t;
	unsigned int k, tries;
	int r;

	last3 = calloc((size_t)SK_ALPH * SK_ALPH * SK_ALPH, sizeof(*last3));
	seen4 = calloc((size_t)SK_ALPH * SK_ALPH * SK_ALPH * SK_ALPH / 8, 1);
	assert_true(last3 != NULL && seen4 != NULL && nrare <= 16);
	for (k = 0; k < nrare; k++) {
		todo += left[k] = f0;
		t = f0 + f1;
		f0 = f1;
		f1 = t;
	}
	for (i = 0; i < n; i++) {
		r = sk_rare(s, left, nrare, todo, n - i);
		p[i] = (uint8_t)(SK_FLAT + r);
		if (r < 0 || !sk_fresh(p, i, last3, seen4)) {
			r = -1;
			for (tries = 0; tries < 100; tries++) {
				p[i] = (uint8_t)(rnd(s) % SK_FLAT);
				if (sk_fresh(p, i, last3, seen4))
					break;
			}
		}
		if (r >= 0) {
			left[r]--;
			todo--;
		}
		sk_mark(p, i, last3, seen4);
	}
	free(last3);
	free(seen4);
}

/*
 * Deepest leaf of the shallowest optimal prefix code for the non-zero
 * counts: two queues, a leaf winning ties against a merged node.
 */
static unsigned int
huffman_depth(const size_t *count, size_t nsym)
{
	size_t w[1024], i, n = 0, leaf = 0, node, made, a, b;
	unsigned int up[1024], d[1024], maxd = 0;

	for (i = 0; i < nsym; i++)
		if (count[i] != 0)
			w[n++] = count[i];
	for (i = 1; i < n; i++)		/* insertion sort, ascending */
		for (a = i; a > 0 && w[a - 1] > w[a]; a--) {
			b = w[a];
			w[a] = w[a - 1];
			w[a - 1] = b;
		}
	for (node = made = n; made < 2 * n - 1; made++) {
		a = leaf < n && (node == made || w[leaf] <= w[node]) ?
		    leaf++ : node++;
		b = leaf < n && (node == made || w[leaf] <= w[node]) ?
		    leaf++ : node++;
		w[made] = w[a] + w[b];
		up[a] = up[b] = (unsigned int)made;
	}
	d[2 * n - 2] = 0;
	for (i = 2 * n - 2; i-- > 0;) {
		d[i] = d[up[i]] + 1;
		if (i < n && d[i] > maxd)
			maxd = d[i];
	}
	return maxd;
}

/*
 * Literal counts that give an optimal tree deeper than 15 levels: the
 * encoder has to fold it, and the result must still be a complete code
 * (the decoder rejects anything else) with its longest codes at 15 bits.
 */
static void
test_xpress_length_limit(void **state)
{
	uint8_t *in, *c = NULL, maxlen = 0;
	size_t n = 65536, clen = 0, i, count[257];
	uint64_t s = 17;

	(void)state;
	in = malloc(n);
	assert_non_null(in);
	fill_skewed(&s, in, n, 15);
	memset(count, 0, sizeof(count));
	for (i = 0; i < n; i++)
		count[in[i]]++;
	count[256] = 1;				/* end of data */
	assert_true(huffman_depth(count, 257) >= 17);
	assert_int_equal(wrm_xpress_huff_compress(in, n, &c, &clen), 0);
	for (i = 0; i < 256; i++) {
		if ((c[i] & 0x0f) > maxlen)
			maxlen = c[i] & 0x0f;
		if ((c[i] >> 4) > maxlen)
			maxlen = c[i] >> 4;
	}
	assert_int_equal(maxlen, 15);
	free(c);
	check_raw(in, n);
	check_frame(in, n, 1);
	free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xpress_spec_literals),
		cmocka_unit_test(test_xpress_spec_long_match),
		cmocka_unit_test(test_xpress_spec_framed),
		cmocka_unit_test(test_xpress_spec_roundtrip),
		cmocka_unit_test(test_xpress_length_forms),
		cmocka_unit_test(test_xpress_long_length_rules),
		cmocka_unit_test(test_xpress_distances),
		cmocka_unit_test(test_xpress_match_crosses_block),
		cmocka_unit_test(test_xpress_block_boundary_exact),
		cmocka_unit_test(test_xpress_eof_symbol_as_match),
		cmocka_unit_test(test_xpress_trailing_input_ignored),
		cmocka_unit_test(test_xpress_bad_tables),
		cmocka_unit_test(test_xpress_match_before_start),
		cmocka_unit_test(test_xpress_output_overflow),
		cmocka_unit_test(test_xpress_truncated_raw),
		cmocka_unit_test(test_xpress_corrupted_raw),
		cmocka_unit_test(test_xpress_bad_arguments),
		cmocka_unit_test(test_xpress_frame_stored),
		cmocka_unit_test(test_xpress_frame_bound),
		cmocka_unit_test(test_xpress_chunk_boundaries),
		cmocka_unit_test(test_xpress_min_pack_size),
		cmocka_unit_test(test_xpress_incompressible_stored),
		cmocka_unit_test(test_xpress_frame_malformed),
		cmocka_unit_test(test_xpress_frame_packed_errors),
		cmocka_unit_test(test_xpress_roundtrip_sizes),
		cmocka_unit_test(test_xpress_roundtrip_random),
		cmocka_unit_test(test_xpress_deterministic),
		cmocka_unit_test(test_xpress_length_limit),
	};

	spec_vectors();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
