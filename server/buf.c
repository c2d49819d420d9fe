#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

#define BUF_DEFAULT_MAX	(SIZE_MAX / 4)

void
wrm_buf_init(struct wrm_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max ? max : BUF_DEFAULT_MAX;
}

void
wrm_buf_free(struct wrm_buf *b)
{
	if (b == NULL)
		return;
	if (b->d != NULL && b->secret)
		explicit_bzero(b->d, b->cap);
	free(b->d);
	b->d = NULL;
	b->off = b->len = b->cap = 0;
}

void
wrm_buf_reset(struct wrm_buf *b)
{
	if (b->d != NULL && b->secret)
		explicit_bzero(b->d, b->len);
	b->off = b->len = 0;
}

/* Make room for n more bytes plus a NUL; compacts or grows. */
static int
buf_room(struct wrm_buf *b, size_t n)
{
	size_t used = b->len - b->off, want, ncap;
	uint8_t *nd;

	if (n > b->max || used > b->max - n)
		return WRM_ERR_LIMIT;
	want = used + n + 1;
	if (b->len + n + 1 <= b->cap)
		return 0;
	if (b->off > 0 && want <= b->cap && b->off >= b->cap / 2) {
		memmove(b->d, b->d + b->off, used);
		b->off = 0;
		b->len = used;
		return 0;
	}
	ncap = b->cap ? b->cap : 256;
	while (ncap < want)
		ncap = ncap < SIZE_MAX / 2 ? ncap * 2 : want;
	if ((nd = malloc(ncap)) == NULL)
		return WRM_ERR_ALLOC;
	if (used)
		memcpy(nd, b->d + b->off, used);
	if (b->d != NULL && b->secret)
		explicit_bzero(b->d, b->cap);
	free(b->d);
	b->d = nd;
	b->cap = ncap;
	b->off = 0;
	b->len = used;
	return 0;
}

const char *
wrm_buf_str(struct wrm_buf *b)
{
	if (b->d == NULL && buf_room(b, 0) != 0)
		return "";
	b->d[b->len] = '\0';
	return (const char *)b->d + b->off;
}

int
wrm_buf_reserve(struct wrm_buf *b, size_t n, uint8_t **p_r)
{
	int r;

	if ((r = buf_room(b, n)) != 0)
		return r;
	*p_r = b->d + b->len;
	b->len += n;
	return 0;
}

int
wrm_buf_put(struct wrm_buf *b, const void *p, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	if ((r = buf_room(b, n)) != 0)
		return r;
	memcpy(b->d + b->len, p, n);
	b->len += n;
	return 0;
}

int
wrm_buf_puts(struct wrm_buf *b, const char *s)
{
	return wrm_buf_put(b, s, strlen(s));
}

int
wrm_buf_putc(struct wrm_buf *b, char c)
{
	return wrm_buf_put(b, &c, 1);
}

int
wrm_buf_vprintf(struct wrm_buf *b, const char *fmt, va_list ap)
{
	char small[256];
	va_list ap2;
	int n, r;

	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return WRM_ERR_INTERNAL;
	if ((size_t)n < sizeof(small))
		return wrm_buf_put(b, small, (size_t)n);
	if ((r = buf_room(b, (size_t)n)) != 0)
		return r;
	vsnprintf((char *)b->d + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
wrm_buf_printf(struct wrm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = wrm_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

int
wrm_buf_put_xmln(struct wrm_buf *b, const char *s, size_t n)
{
	size_t i, start = 0;
	const char *rep;
	int r;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		switch (c) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		case '\t': case '\n': case '\r':
			continue;
		default:
			if (c >= 0x20 && c != 0x7f)
				continue;
			rep = "?";
			break;
		}
		if ((r = wrm_buf_put(b, s + start, i - start)) != 0 ||
		    (r = wrm_buf_puts(b, rep)) != 0)
			return r;
		start = i + 1;
	}
	return wrm_buf_put(b, s + start, n - start);
}

int
wrm_buf_put_xml(struct wrm_buf *b, const char *s)
{
	return wrm_buf_put_xmln(b, s, strlen(s));
}

int
wrm_buf_put_b64(struct wrm_buf *b, const uint8_t *p, size_t n)
{
	size_t elen = wrm_b64_encoded_len(n);
	uint8_t *dst;
	int r;

	if ((r = buf_room(b, elen)) != 0)
		return r;
	dst = b->d + b->len;
	wrm_b64_encode(p, n, (char *)dst);
	b->len += elen;
	return 0;
}

int
wrm_buf_put_u8(struct wrm_buf *b, uint8_t v)
{
	return wrm_buf_put(b, &v, 1);
}

int
wrm_buf_put_u16_le(struct wrm_buf *b, uint16_t v)
{
	uint8_t t[2];

	wrm_set_u16_le(t, v);
	return wrm_buf_put(b, t, 2);
}

int
wrm_buf_put_u32_le(struct wrm_buf *b, uint32_t v)
{
	uint8_t t[4];

	wrm_set_u32_le(t, v);
	return wrm_buf_put(b, t, 4);
}

int
wrm_buf_put_u32_be(struct wrm_buf *b, uint32_t v)
{
	uint8_t t[4];

	wrm_set_u32_be(t, v);
	return wrm_buf_put(b, t, 4);
}

int
wrm_buf_put_u64_be(struct wrm_buf *b, uint64_t v)
{
	uint8_t t[8];

	wrm_set_u64_be(t, v);
	return wrm_buf_put(b, t, 8);
}

int
wrm_buf_put_u64_le(struct wrm_buf *b, uint64_t v)
{
	uint8_t t[8];

	wrm_set_u32_le(t, (uint32_t)v);
	wrm_set_u32_le(t + 4, (uint32_t)(v >> 32));
	return wrm_buf_put(b, t, 8);
}

void
wrm_buf_consume(struct wrm_buf *b, size_t n)
{
	if (n > b->len - b->off)
		n = b->len - b->off;
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void
wrm_buf_truncate(struct wrm_buf *b, size_t n)
{
	if (n < b->len - b->off)
		b->len = b->off + n;
}

uint8_t *
wrm_buf_steal(struct wrm_buf *b, size_t *len_r)
{
	uint8_t *p;
	size_t n = b->len - b->off;

	if (b->d == NULL) {
		if ((p = malloc(1)) == NULL)
			return NULL;
		*len_r = 0;
		return p;
	}
	if (b->off > 0)
		memmove(b->d, b->d + b->off, n);
	p = b->d;
	*len_r = n;
	b->d = NULL;
	b->off = b->len = b->cap = 0;
	return p;
}

int
wrm_cur_get(struct wrm_cur *c, void *dst, size_t n)
{
	if (n > c->left)
		return WRM_ERR_PARSE;
	memcpy(dst, c->p, n);
	c->p += n;
	c->left -= n;
	return 0;
}

int
wrm_cur_skip(struct wrm_cur *c, size_t n)
{
	if (n > c->left)
		return WRM_ERR_PARSE;
	c->p += n;
	c->left -= n;
	return 0;
}

int
wrm_cur_view(struct wrm_cur *c, size_t n, const uint8_t **p_r)
{
	if (n > c->left)
		return WRM_ERR_PARSE;
	*p_r = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

int
wrm_cur_get_u8(struct wrm_cur *c, uint8_t *v_r)
{
	return wrm_cur_get(c, v_r, 1);
}

int
wrm_cur_get_u16_le(struct wrm_cur *c, uint16_t *v_r)
{
	const uint8_t *p;
	int r;

	if ((r = wrm_cur_view(c, 2, &p)) != 0)
		return r;
	*v_r = wrm_get_u16_le(p);
	return 0;
}

int
wrm_cur_get_u32_le(struct wrm_cur *c, uint32_t *v_r)
{
	const uint8_t *p;
	int r;

	if ((r = wrm_cur_view(c, 4, &p)) != 0)
		return r;
	*v_r = wrm_get_u32_le(p);
	return 0;
}

int
wrm_cur_get_u32_be(struct wrm_cur *c, uint32_t *v_r)
{
	const uint8_t *p;
	int r;

	if ((r = wrm_cur_view(c, 4, &p)) != 0)
		return r;
	*v_r = wrm_get_u32_be(p);
	return 0;
}

int
wrm_cur_get_u64_be(struct wrm_cur *c, uint64_t *v_r)
{
	const uint8_t *p;
	int r;

	if ((r = wrm_cur_view(c, 8, &p)) != 0)
		return r;
	*v_r = wrm_get_u64_be(p);
	return 0;
}

int
wrm_cur_get_u64_le(struct wrm_cur *c, uint64_t *v_r)
{
	const uint8_t *p;
	int r;

	if ((r = wrm_cur_view(c, 8, &p)) != 0)
		return r;
	*v_r = (uint64_t)wrm_get_u32_le(p) |
	    (uint64_t)wrm_get_u32_le(p + 4) << 32;
	return 0;
}

/* Base64 */

static const char b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
wrm_b64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void
wrm_b64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i;
	uint32_t v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*out++ = b64_alpha[v >> 18];
		*out++ = b64_alpha[(v >> 12) & 63];
		*out++ = b64_alpha[(v >> 6) & 63];
		*out++ = b64_alpha[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		*out++ = b64_alpha[v >> 18];
		*out++ = b64_alpha[(v >> 12) & 63];
		*out++ = '=';
		*out++ = '=';
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*out++ = b64_alpha[v >> 18];
		*out++ = b64_alpha[(v >> 12) & 63];
		*out++ = b64_alpha[(v >> 6) & 63];
		*out++ = '=';
	}
}

static const int8_t b64_rev[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
	['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
	['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
	['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
	['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26,
	['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31,
	['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
	['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41,
	['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46,
	['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50, ['y'] = 51,
	['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
	['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61,
	['9'] = 62, ['+'] = 63, ['/'] = 64,
	[' '] = -1, ['\t'] = -1, ['\n'] = -1, ['\r'] = -1,
	['='] = -2,
};

int
wrm_b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len_r)
{
	uint32_t acc = 0;
	size_t i, o = 0;
	int q = 0, pad = 0, v;

	for (i = 0; i < n; i++) {
		v = b64_rev[(unsigned char)in[i]];
		if (v == -1)
			continue;
		if (v == -2) {
			pad++;
			continue;
		}
		if (v == 0 || pad > 0)
			return WRM_ERR_PARSE;
		acc = acc << 6 | (uint32_t)(v - 1);
		if (++q == 4) {
			out[o++] = (uint8_t)(acc >> 16);
			out[o++] = (uint8_t)(acc >> 8);
			out[o++] = (uint8_t)acc;
			q = 0;
			acc = 0;
		}
	}
	if (q == 1 || pad > 2 || (pad > 0 && q + pad != 4))
		return WRM_ERR_PARSE;
	if (q == 2) {
		out[o++] = (uint8_t)(acc >> 4);
	} else if (q == 3) {
		out[o++] = (uint8_t)(acc >> 10);
		out[o++] = (uint8_t)(acc >> 2);
	}
	*out_len_r = o;
	return 0;
}
