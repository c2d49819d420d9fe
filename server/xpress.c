/*
 * Xpress compression of WinRM shell streams: the LZ77+Huffman codec of
 * MS-XCA 2.1/2.2 and the chunk framing WinRM puts around it (xpress.h).
 *
 * Compressed stream, per block of 65536 output bytes:
 *
 *	256 bytes	code length of symbol 2i in the low nibble of byte i,
 *			of symbol 2i + 1 in the high nibble (0: unused)
 *	bit stream	little-endian 16-bit words, most significant bit first,
 *			with the extra bytes of long match lengths in between
 *
 * Symbols 0-255 are literals.  Symbol 256 + 16 * b + n is a match whose
 * distance has its highest set bit at position b (the b bits below it
 * follow the symbol in the bit stream) and whose length is n + 3, or for
 * n == 15 is given by the extra bytes after the symbol: one byte v < 255
 * means v + 18, otherwise a u16 w != 0 means w + 3, otherwise a u32 x
 * means x + 3.  Symbol 256 also serves as the end-of-data mark after the
 * last byte.
 *
 * Where the extra bytes sit follows from the reader: it holds the current
 * word and the next one, loads the word after them as soon as the current
 * one is used up, and takes extra bytes from the position after the last
 * word loaded.  The writer keeps two word slots reserved for the same
 * reason (struct xh_in, struct xh_out).
 *
 * The stream decoder checks every read against the input and every write
 * against the output size it was given; it allocates nothing.  The encoder
 * is a greedy hash-chain LZ77 followed by a canonical Huffman code limited
 * to 15 bits.  Neither keeps state between calls.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "xpress.h"

#define XH_BLOCK	65536		/* output bytes per block */
#define XH_TABLE	256		/* bytes of code lengths per block */
#define XH_HEAD		(XH_TABLE + 4)	/* table plus the two first words */
#define XH_NSYM		512
#define XH_EOF		256		/* end-of-data symbol */
#define XH_MAXBITS	15		/* longest code */
#define XH_FASTBITS	11		/* codes found with one table lookup */
#define XH_MIN_MATCH	3
#define XH_MAX_DIST	65535
#define XH_CHAIN	16		/* candidates examined per position */
#define XH_NICE		192		/* a match this long ends the search */
#define XH_FAR3		4096		/* farther 3-byte matches cost more
					   than three literals */

static inline uint32_t
get_le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static inline uint32_t
get_le32(const uint8_t *p)
{
	return get_le16(p) | get_le16(p + 2) << 16;
}

static inline void
put_le16(uint8_t *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
}

/* Index of the highest set bit of d; d > 0. */
static inline unsigned int
high_bit(uint32_t d)
{
	return 31 - (unsigned int)__builtin_clz(d);
}

/* ---------------------------------------------------------------- */
/* Decoder */

/*
 * Canonical code of one block.  Codes are handed out in order of
 * (length, symbol value), each length starting right after the last code
 * of the shorter lengths, so the first code of length l is first[l] and
 * the symbols having it are sorted[start[l] ...].
 */
struct xh_dtab {
	uint16_t fast[1 << XH_FASTBITS];	/* len << 9 | sym, 0: longer */
	uint16_t first[XH_MAXBITS + 1];
	uint16_t count[XH_MAXBITS + 1];		/* symbols per length */
	uint16_t start[XH_MAXBITS + 1];
	uint16_t sorted[XH_NSYM];		/* by (length, value) */
};

/*
 * Bit reader.  Between two symbols, bits holds 16 + extra unread bits
 * (0 <= extra <= 16), most significant first, and pos is the byte after
 * the last word loaded, where extra length bytes are read.  A word is
 * loaded as soon as fewer than 16 bits are left, never earlier.
 */
struct xh_in {
	const uint8_t *p;
	size_t len;
	size_t pos;
	uint32_t bits;
	int extra;
};

/* Fill t->fast from the sorted code; needs a complete code. */
static void
xh_dtab_fill(struct xh_dtab *t)
{
	unsigned int l, k, j, n;
	uint32_t code;
	uint16_t e;

	memset(t->fast, 0, sizeof(t->fast));
	for (l = 1; l <= XH_FASTBITS; l++) {
		n = 1u << (XH_FASTBITS - l);
		for (k = 0; k < t->count[l]; k++) {
			code = (uint32_t)(t->first[l] + k) << (XH_FASTBITS - l);
			e = (uint16_t)(l << 9 | t->sorted[t->start[l] + k]);
			for (j = 0; j < n; j++)
				t->fast[code + j] = e;
		}
	}
}

/* Build the code from the 256-byte length table at p. */
static int
xh_dtab_build(struct xh_dtab *t, const uint8_t *p)
{
	uint8_t len[XH_NSYM];
	uint16_t next[XH_MAXBITS + 1];
	uint32_t code = 0, space = 0;
	unsigned int i, l, k = 0;

	memset(t->count, 0, sizeof(t->count));
	for (i = 0; i < XH_TABLE; i++) {
		len[2 * i] = p[i] & 0x0f;
		len[2 * i + 1] = p[i] >> 4;
		t->count[len[2 * i]]++;
		t->count[len[2 * i + 1]]++;
	}
	/* A complete code covers each of the 2^15 15-bit strings once. */
	for (l = 1; l <= XH_MAXBITS; l++)
		space += (uint32_t)t->count[l] << (XH_MAXBITS - l);
	if (space != 1u << XH_MAXBITS)
		return WRM_ERR_PARSE;
	for (l = 1; l <= XH_MAXBITS; l++) {
		t->first[l] = (uint16_t)code;
		t->start[l] = next[l] = (uint16_t)k;
		k += t->count[l];
		code = (code + t->count[l]) << 1;
	}
	for (i = 0; i < XH_NSYM; i++)
		if (len[i] != 0)
			t->sorted[next[len[i]]++] = (uint16_t)i;
	xh_dtab_fill(t);
	return 0;
}

/*
 * Look up a code longer than XH_FASTBITS in the 15-bit string peek.
 * Returns len << 9 | sym, or 0 if no code matches (impossible for a
 * complete code, checked anyway).
 */
static unsigned int
xh_slow(const struct xh_dtab *t, uint32_t peek)
{
	unsigned int l;
	uint32_t code;

	for (l = XH_FASTBITS + 1; l <= XH_MAXBITS; l++) {
		code = peek >> (XH_MAXBITS - l);
		if (code - t->first[l] < (uint32_t)t->count[l])
			return l << 9 | t->sorted[t->start[l] + code -
			    t->first[l]];
	}
	return 0;
}

/* Drop n <= 15 bits, loading the next word if fewer than 16 remain. */
static inline int
xh_skip(struct xh_in *r, unsigned int n)
{
	r->bits <<= n;
	r->extra -= (int)n;
	if (r->extra >= 0)
		return 0;
	if (r->len - r->pos < 2)
		return WRM_ERR_PARSE;
	r->bits |= get_le16(r->p + r->pos) << -r->extra;
	r->pos += 2;
	r->extra += 16;
	return 0;
}

static inline int
xh_symbol(struct xh_in *r, const struct xh_dtab *t, unsigned int *sym_r)
{
	uint32_t peek = r->bits >> (32 - XH_MAXBITS);
	unsigned int e = t->fast[peek >> (XH_MAXBITS - XH_FASTBITS)];

	if (e == 0 && (e = xh_slow(t, peek)) == 0)
		return WRM_ERR_PARSE;
	*sym_r = e & 0x1ff;
	return xh_skip(r, e >> 9);
}

/* Match length for low nibble n of a match symbol; reads extra bytes. */
static int
xh_match_len(struct xh_in *r, unsigned int n, size_t *len_r)
{
	size_t v;

	if (n < 15) {
		*len_r = n + XH_MIN_MATCH;
		return 0;
	}
	if (r->pos >= r->len)
		return WRM_ERR_PARSE;
	v = r->p[r->pos++];
	if (v < 255) {
		*len_r = v + 15 + XH_MIN_MATCH;
		return 0;
	}
	if (r->len - r->pos < 2)
		return WRM_ERR_PARSE;
	v = get_le16(r->p + r->pos);
	r->pos += 2;
	if (v == 0) {
		if (r->len - r->pos < 4)
			return WRM_ERR_PARSE;
		v = get_le32(r->p + r->pos);
		r->pos += 4;
	}
	/* Lengths below 18 have shorter forms; MS-XCA rejects them here. */
	if (v < 15 || v > SIZE_MAX - XH_MIN_MATCH)
		return WRM_ERR_PARSE;
	*len_r = v + XH_MIN_MATCH;
	return 0;
}

/*
 * Copy n bytes from dist bytes back; the source may overlap the
 * destination (dist < n repeats the last dist bytes).  The region
 * [src, dst) always holds whole periods, so it can double each round.
 */
static void
xh_copy(uint8_t *dst, size_t dist, size_t n)
{
	const uint8_t *src = dst - dist;
	size_t span = dist;

	if (dist == 1) {
		memset(dst, *src, n);
		return;
	}
	while (n > span) {
		memcpy(dst, src, span);
		dst += span;
		n -= span;
		span *= 2;
	}
	memcpy(dst, src, n);
}

/*
 * Decode one block: at least 65536 bytes (a final match may run past the
 * block end; the next block then starts after it) or up to out_len.
 * *op_r is the output position, updated on success.
 */
static int
xh_decode_block(struct xh_in *rd, const struct xh_dtab *t, uint8_t *out,
    size_t out_len, size_t *op_r)
{
	struct xh_in r = *rd;
	size_t op = *op_r, end, len, dist;
	unsigned int sym, nb;
	int rc;

	end = out_len - op > XH_BLOCK ? op + XH_BLOCK : out_len;
	while (op < end) {
		if ((rc = xh_symbol(&r, t, &sym)) != 0)
			return rc;
		if (sym < 256) {
			out[op++] = (uint8_t)sym;
			continue;
		}
		if ((rc = xh_match_len(&r, sym & 15, &len)) != 0)
			return rc;
		nb = (sym >> 4) & 15;
		dist = (size_t)1 << nb;
		if (nb > 0)
			dist |= r.bits >> (32 - nb);
		if ((rc = xh_skip(&r, nb)) != 0)
			return rc;
		if (dist > op || len > out_len - op)
			return WRM_ERR_PARSE;
		xh_copy(out + op, dist, len);
		op += len;
	}
	*rd = r;
	*op_r = op;
	return 0;
}

int
wrm_xpress_huff_decompress(const uint8_t *in, size_t in_len, uint8_t *out,
    size_t out_len)
{
	struct xh_in r = { .p = in, .len = in_len };
	struct xh_dtab t;
	size_t op = 0;
	int rc;

	if ((in == NULL && in_len != 0) || (out == NULL && out_len != 0))
		return WRM_ERR_INTERNAL;
	while (op < out_len) {
		/* Every block starts with its table and two words. */
		if (in_len - r.pos < XH_HEAD)
			return WRM_ERR_PARSE;
		if ((rc = xh_dtab_build(&t, in + r.pos)) != 0)
			return rc;
		r.pos += XH_TABLE;
		r.bits = get_le16(in + r.pos) << 16 | get_le16(in + r.pos + 2);
		r.pos += 4;
		r.extra = 16;
		if ((rc = xh_decode_block(&r, &t, out, out_len, &op)) != 0)
			return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* Encoder */

/*
 * LZ77 items of a block, one 32-bit word each: (length - 3) << 16 |
 * distance for a match (distance 1..65535, length 3..65536), byte << 16
 * for a literal (distance 0).
 */
#define TOK_LIT(b)	((uint32_t)(b) << 16)
#define TOK_MATCH(l, d)	((uint32_t)((l) - XH_MIN_MATCH) << 16 | (uint32_t)(d))

/*
 * Encoder state for one input.  Positions are stored plus one, so 0 ends
 * a chain.  prev[] is indexed by position & pmask; pmask + 1 is either at
 * least the input length or 65536, so no live entry is overwritten while
 * it is within reach.
 */
struct xh_enc {
	uint32_t *head;		/* hash of 3 bytes -> newest position */
	uint32_t *prev;		/* position -> older one with same hash */
	uint32_t *tok;		/* items of the current block */
	size_t ntok;
	uint32_t pmask;
	unsigned int hbits;
	uint32_t freq[XH_NSYM];	/* symbol counts of the current block */
	uint8_t len[XH_NSYM];	/* code lengths, 0 for unused symbols */
	uint16_t code[XH_NSYM];
};

/*
 * Bit writer, the mirror of struct xh_in: the word being filled goes to
 * slot1, the next word's place slot2 is already reserved, and extra
 * length bytes go to pos, after both.  A word is stored only when a code
 * does not fit in it, the moment the reader loads a new word.  Running
 * out of cap sets full; later writes stay inside the buffer and the
 * caller discards the result.
 */
struct xh_out {
	uint8_t *p;
	size_t cap;
	size_t slot1;
	size_t slot2;
	size_t pos;
	uint32_t word;		/* pending bits, right-aligned */
	unsigned int used;	/* number of pending bits, 0..16 */
	bool full;
};

static void
xh_enc_free(struct xh_enc *e)
{
	free(e->head);
	free(e->prev);
	free(e->tok);
}

/* Size the tables for inputs of up to n bytes. */
static int
xh_enc_init(struct xh_enc *e, size_t n)
{
	size_t psize = 1;

	memset(e, 0, sizeof(*e));
	if (n > XH_BLOCK)
		n = XH_BLOCK;
	while (psize < n)
		psize <<= 1;
	e->pmask = (uint32_t)(psize - 1);
	for (e->hbits = 8; e->hbits < 15 && (1u << e->hbits) < n; e->hbits++)
		continue;
	e->head = calloc((size_t)1 << e->hbits, sizeof(*e->head));
	e->prev = malloc(psize * sizeof(*e->prev));
	e->tok = malloc((n > 0 ? n : 1) * sizeof(*e->tok));
	if (e->head == NULL || e->prev == NULL || e->tok == NULL) {
		xh_enc_free(e);
		return WRM_ERR_ALLOC;
	}
	return 0;
}

/* Forget all positions, before compressing an unrelated input. */
static void
xh_enc_reset(struct xh_enc *e)
{
	memset(e->head, 0, ((size_t)1 << e->hbits) * sizeof(*e->head));
}

static inline uint32_t
xh_hash(const uint8_t *p, unsigned int bits)
{
	uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	    (uint32_t)p[2] << 16;

	return (v * 0x9e3779b1u) >> (32 - bits);
}

/* Enter pos (with 3 bytes available) into its hash chain. */
static inline void
xh_insert(struct xh_enc *e, const uint8_t *in, size_t pos)
{
	uint32_t h = xh_hash(in + pos, e->hbits);

	e->prev[pos & e->pmask] = e->head[h];
	e->head[h] = (uint32_t)pos + 1;
}

/* Length of the common prefix of a and b, at most max. */
static inline size_t
xh_common(const uint8_t *a, const uint8_t *b, size_t max)
{
	uint64_t x, y;
	size_t n = 0;

	while (max - n >= 8) {
		memcpy(&x, a + n, 8);
		memcpy(&y, b + n, 8);
		if (x != y) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return n + (size_t)__builtin_ctzll(x ^ y) / 8;
#else
			return n + (size_t)__builtin_clzll(x ^ y) / 8;
#endif
		}
		n += 8;
	}
	while (n < max && a[n] == b[n])
		n++;
	return n;
}

/*
 * Longest match for pos among earlier positions of the same hash, at most
 * maxlen (>= 3) bytes; inserts pos.  Returns 0 if nothing worth a match.
 */
static size_t
xh_longest(struct xh_enc *e, const uint8_t *in, size_t pos, size_t maxlen,
    size_t *dist_r)
{
	uint32_t h = xh_hash(in + pos, e->hbits), cand = e->head[h];
	size_t best = 0, bdist = 0, c, l;
	unsigned int depth;

	e->prev[pos & e->pmask] = cand;
	e->head[h] = (uint32_t)pos + 1;
	for (depth = XH_CHAIN; cand != 0 && depth > 0; depth--) {
		c = cand - 1;
		if (pos - c > XH_MAX_DIST)
			break;
		cand = e->prev[c & e->pmask];
		/* best < maxlen here, so both reads are inside the input. */
		if (in[c + best] != in[pos + best])
			continue;
		l = xh_common(in + c, in + pos, maxlen);
		if (l > best) {
			best = l;
			bdist = pos - c;
			if (l >= XH_NICE || l == maxlen)
				break;
		}
	}
	if (best < XH_MIN_MATCH || (best == XH_MIN_MATCH && bdist > XH_FAR3))
		return 0;
	*dist_r = bdist;
	return best;
}

static inline unsigned int
xh_match_sym(size_t len, size_t dist)
{
	size_t l = len - XH_MIN_MATCH;

	return XH_EOF + (unsigned int)(l < 15 ? l : 15) +
	    16 * high_bit((uint32_t)dist);
}

/*
 * Greedy LZ77 over in[bs, be): matches stay inside the block and reach at
 * most 65535 bytes back (into earlier blocks too).  Fills tok and freq.
 */
static void
xh_lz_block(struct xh_enc *e, const uint8_t *in, size_t in_len, size_t bs,
    size_t be)
{
	size_t pos = bs, len, dist = 0, k;

	e->ntok = 0;
	memset(e->freq, 0, sizeof(e->freq));
	while (pos < be) {
		len = 0;
		if (be - pos >= XH_MIN_MATCH)
			len = xh_longest(e, in, pos, be - pos, &dist);
		else if (in_len - pos >= XH_MIN_MATCH)
			xh_insert(e, in, pos);
		if (len == 0) {
			e->freq[in[pos]]++;
			e->tok[e->ntok++] = TOK_LIT(in[pos]);
			pos++;
			continue;
		}
		e->freq[xh_match_sym(len, dist)]++;
		e->tok[e->ntok++] = TOK_MATCH(len, dist);
		for (k = pos + 1; k < pos + len && in_len - k >= 3; k++)
			xh_insert(e, in, k);
		pos += len;
	}
}

static int
xh_key_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/*
 * The used symbols in ascending order of (frequency, value).  A complete
 * code needs two symbols at least, so up to two unused ones get count 1.
 */
static unsigned int
xh_sorted_symbols(struct xh_enc *e, uint16_t *sym)
{
	uint32_t key[XH_NSYM];
	unsigned int i, n = 0;

	for (i = 0; i < XH_NSYM; i++)
		n += e->freq[i] != 0;
	for (i = 0; n < 2; i++)
		if (e->freq[i] == 0) {
			e->freq[i] = 1;
			n++;
		}
	n = 0;
	for (i = 0; i < XH_NSYM; i++)
		if (e->freq[i] != 0)
			key[n++] = e->freq[i] << 9 | i;	/* freq < 2^17 */
	qsort(key, n, sizeof(key[0]), xh_key_cmp);
	for (i = 0; i < n; i++)
		sym[i] = key[i] & 0x1ff;
	return n;
}

/* Next node to merge: the lighter of the next leaf and the next merged. */
static inline unsigned int
xh_pick(const uint32_t *w, unsigned int n, unsigned int *leaf,
    unsigned int *node, unsigned int made)
{
	if (*leaf < n && (*node == made || w[*leaf] <= w[*node]))
		return (*leaf)++;
	return (*node)++;
}

/*
 * Huffman tree over the n >= 2 ascending weights w[0..n-1], built with two
 * queues (merged nodes come out in ascending weight order, nodes n..2n-2).
 * Counts leaves per depth into bl[0..n-1]; returns the largest depth.
 */
static unsigned int
xh_tree(uint32_t *w, unsigned int n, unsigned int *bl)
{
	uint16_t up[2 * XH_NSYM], depth[2 * XH_NSYM];
	unsigned int leaf = 0, node = n, made, a, b, i, maxd = 0;

	for (made = n; made < 2 * n - 1; made++) {
		a = xh_pick(w, n, &leaf, &node, made);
		b = xh_pick(w, n, &leaf, &node, made);
		w[made] = w[a] + w[b];
		up[a] = up[b] = (uint16_t)made;
	}
	depth[2 * n - 2] = 0;
	for (i = 2 * n - 2; i-- > 0;)
		depth[i] = depth[up[i]] + 1;
	memset(bl, 0, n * sizeof(*bl));
	for (i = 0; i < n; i++) {
		bl[depth[i]]++;
		if (depth[i] > maxd)
			maxd = depth[i];
	}
	return maxd;
}

/*
 * Bring every depth down to 15 or less.  The two deepest leaves (always a
 * pair) move up one level; a shallower leaf at depth j becomes a node
 * with two leaves at j + 1.  The Kraft sum stays exactly 1 and the leaf
 * count stays the same.  A leaf at depth <= i - 2 exists because fewer
 * than 2^14 leaves cannot fill only the two deepest levels.
 */
static void
xh_limit(unsigned int *bl, unsigned int maxd)
{
	unsigned int i, j;

	for (i = maxd; i > XH_MAXBITS; i--) {
		while (bl[i] > 0) {
			for (j = i - 2; j > 0 && bl[j] == 0; j--)
				continue;
			bl[i] -= 2;
			bl[i - 1]++;
			bl[j + 1] += 2;
			bl[j]--;
		}
	}
}

/* Lengths by frequency (most frequent shortest), then canonical codes. */
static void
xh_assign(struct xh_enc *e, const uint16_t *sym, unsigned int n,
    const unsigned int *bl)
{
	unsigned int l, k, i = n, next[XH_MAXBITS + 1];
	uint32_t code = 0;

	memset(e->len, 0, sizeof(e->len));
	for (l = 1; l <= XH_MAXBITS && l < n; l++)
		for (k = 0; k < bl[l]; k++)
			e->len[sym[--i]] = (uint8_t)l;
	for (l = 1; l <= XH_MAXBITS; l++) {
		next[l] = code;
		code = (code + (l < n ? bl[l] : 0)) << 1;
	}
	for (i = 0; i < XH_NSYM; i++)
		if (e->len[i] != 0)
			e->code[i] = (uint16_t)next[e->len[i]]++;
}

/* Length-limited canonical code for the block's frequencies. */
static void
xh_make_code(struct xh_enc *e)
{
	uint16_t sym[XH_NSYM];
	uint32_t w[2 * XH_NSYM];
	unsigned int bl[XH_NSYM], n, i, maxd;

	n = xh_sorted_symbols(e, sym);
	for (i = 0; i < n; i++)
		w[i] = e->freq[sym[i]];
	maxd = xh_tree(w, n, bl);
	xh_limit(bl, maxd);
	xh_assign(e, sym, n, bl);
}

/* Make sure n more bytes fit at pos; sets full otherwise. */
static inline bool
xh_room(struct xh_out *w, size_t n)
{
	if (w->cap - w->pos >= n)
		return true;
	w->full = true;
	return false;
}

/* Append the n <= 15 low bits of v. */
static inline void
xh_put_bits(struct xh_out *w, unsigned int n, uint32_t v)
{
	unsigned int rest;

	if (w->used + n <= 16) {
		w->word = w->word << n | v;
		w->used += n;
		return;
	}
	rest = w->used + n - 16;
	put_le16(w->p + w->slot1, w->word << (n - rest) | v >> rest);
	if (xh_room(w, 2)) {
		w->slot1 = w->slot2;
		w->slot2 = w->pos;
		w->pos += 2;
	}
	w->word = v & ((1u << rest) - 1);
	w->used = rest;
}

/*
 * Extra bytes of a match length; l = length - 3 >= 15.  A match never
 * leaves its block, so l <= 65533 and the 32-bit form (a zero u16, then
 * a u32) that longer matches would need is never written.
 */
static void
xh_put_length(struct xh_out *w, size_t l)
{
	if (l - 15 < 255) {
		if (xh_room(w, 1))
			w->p[w->pos++] = (uint8_t)(l - 15);
		return;
	}
	if (xh_room(w, 3)) {
		w->p[w->pos] = 255;
		put_le16(w->p + w->pos + 1, (uint32_t)l);
		w->pos += 3;
	}
}

/* Length table and the two first word slots of a block. */
static void
xh_block_begin(struct xh_out *w, const uint8_t *len)
{
	unsigned int i;

	if (!xh_room(w, XH_HEAD))
		return;
	for (i = 0; i < XH_TABLE; i++)
		w->p[w->pos + i] = (uint8_t)(len[2 * i] | len[2 * i + 1] << 4);
	w->slot1 = w->pos + XH_TABLE;
	w->slot2 = w->slot1 + 2;
	w->pos += XH_HEAD;
	w->word = 0;
	w->used = 0;
}

/* Store the partial word and a zero word in the two reserved slots. */
static void
xh_block_end(struct xh_out *w)
{
	put_le16(w->p + w->slot1, w->word << (16 - w->used));
	put_le16(w->p + w->slot2, 0);
}

static void
xh_emit_block(struct xh_enc *e, struct xh_out *w, bool last)
{
	size_t i, l;
	uint32_t t, d;
	unsigned int s, nb;

	xh_block_begin(w, e->len);
	for (i = 0; i < e->ntok && !w->full; i++) {
		t = e->tok[i];
		d = t & 0xffff;
		if (d == 0) {
			s = t >> 16;
			xh_put_bits(w, e->len[s], e->code[s]);
			continue;
		}
		l = t >> 16;
		nb = high_bit(d);
		s = XH_EOF + (unsigned int)(l < 15 ? l : 15) + 16 * nb;
		xh_put_bits(w, e->len[s], e->code[s]);
		if (l >= 15)
			xh_put_length(w, l);
		xh_put_bits(w, nb, d - (1u << nb));
	}
	if (last)
		xh_put_bits(w, e->len[XH_EOF], e->code[XH_EOF]);
	xh_block_end(w);
}

/*
 * Compress in[0, in_len) into out[0, cap).  WRM_ERR_LIMIT if it does not
 * fit.  The chains in e must not hold positions of another input.
 */
static int
xh_compress(struct xh_enc *e, const uint8_t *in, size_t in_len,
    uint8_t *out, size_t cap, size_t *out_len_r)
{
	struct xh_out w = { .p = out, .cap = cap };
	size_t bs = 0, be;
	bool last;

	if (cap < XH_HEAD)
		return WRM_ERR_LIMIT;
	do {
		be = in_len - bs > XH_BLOCK ? bs + XH_BLOCK : in_len;
		last = be == in_len;
		xh_lz_block(e, in, in_len, bs, be);
		if (last)
			e->freq[XH_EOF]++;
		xh_make_code(e);
		xh_emit_block(e, &w, last);
		if (w.full)
			return WRM_ERR_LIMIT;
		bs = be;
	} while (!last);
	*out_len_r = w.pos;
	return 0;
}

/* Give back the unused tail of a buffer; keeps it if realloc fails. */
static uint8_t *
shrink(uint8_t *p, size_t n)
{
	uint8_t *q = realloc(p, n > 0 ? n : 1);

	return q != NULL ? q : p;
}

int
wrm_xpress_huff_compress(const uint8_t *in, size_t in_len, uint8_t **out_r,
    size_t *out_len_r)
{
	struct xh_enc e;
	uint8_t *out;
	size_t cap, n = 0;
	int r;

	if (in == NULL && in_len != 0)
		return WRM_ERR_INTERNAL;
	if (in_len > UINT32_MAX - XH_BLOCK || in_len > SIZE_MAX / 4)
		return WRM_ERR_LIMIT;
	/* At most 15 bits per byte, plus table, words and EOF per block. */
	cap = 2 * in_len + (in_len / XH_BLOCK + 1) * (XH_HEAD + 8);
	if ((out = malloc(cap)) == NULL)
		return WRM_ERR_ALLOC;
	if ((r = xh_enc_init(&e, in_len)) != 0) {
		free(out);
		return r;
	}
	r = xh_compress(&e, in, in_len, out, cap, &n);
	xh_enc_free(&e);
	if (r != 0) {
		free(out);
		return WRM_ERR_INTERNAL;	/* cap is a true bound */
	}
	*out_r = shrink(out, n);
	*out_len_r = n;
	return 0;
}

/* ---------------------------------------------------------------- */
/* WinRM framing */

size_t
wrm_xpress_frame_bound(size_t in_len)
{
	size_t chunks = in_len / WRM_XPRESS_CHUNK_MAX +
	    (in_len % WRM_XPRESS_CHUNK_MAX != 0);

	if (in_len > SIZE_MAX - 1 - WRM_XPRESS_CHUNK_HDR * chunks)
		return SIZE_MAX;
	return in_len + WRM_XPRESS_CHUNK_HDR * chunks;
}

/*
 * Check that the chunk headers tile in[0, in_len) and sum the uncompressed
 * lengths, stopping at max_out.  A packed payload too short to hold even a
 * code table is refused here, before any output is allocated.
 */
static int
xf_scan(const uint8_t *in, size_t in_len, size_t max_out, size_t *total_r)
{
	size_t off = 0, total = 0, ulen, plen;

	while (off < in_len) {
		if (in_len - off < WRM_XPRESS_CHUNK_HDR)
			return WRM_ERR_PARSE;
		ulen = get_le16(in + off) + 1;
		plen = get_le16(in + off + 2) + 1;
		off += WRM_XPRESS_CHUNK_HDR;
		if (plen > in_len - off || (plen != ulen && plen < XH_HEAD))
			return WRM_ERR_PARSE;
		if (ulen > max_out - total)
			return WRM_ERR_LIMIT;
		total += ulen;		/* total <= max_out */
		off += plen;
	}
	*total_r = total;
	return 0;
}

int
wrm_xpress_frame_decode(const uint8_t *in, size_t in_len, uint8_t **out_r,
    size_t *out_len_r, size_t max_out)
{
	uint8_t *out;
	size_t off = 0, op = 0, total, ulen, plen;
	int r;

	if (in == NULL && in_len != 0)
		return WRM_ERR_INTERNAL;
	if ((r = xf_scan(in, in_len, max_out, &total)) != 0)
		return r;
	if ((out = malloc(total > 0 ? total : 1)) == NULL)
		return WRM_ERR_ALLOC;
	/* xf_scan proved that every header and payload lies inside in. */
	for (; off < in_len; off += WRM_XPRESS_CHUNK_HDR + plen, op += ulen) {
		ulen = get_le16(in + off) + 1;
		plen = get_le16(in + off + 2) + 1;
		if (plen == ulen) {
			memcpy(out + op, in + off + WRM_XPRESS_CHUNK_HDR, ulen);
			continue;
		}
		r = wrm_xpress_huff_decompress(in + off + WRM_XPRESS_CHUNK_HDR,
		    plen, out + op, ulen);
		if (r != 0) {
			free(out);
			return r;
		}
	}
	*out_r = out;
	*out_len_r = total;
	return 0;
}

/* Emit chunks of at most 64 KiB; e is NULL for stored chunks only. */
static size_t
xf_chunks(struct xh_enc *e, const uint8_t *in, size_t in_len, uint8_t *out)
{
	size_t off, n, plen, op = 0;
	uint8_t *payload;

	for (off = 0; off < in_len; off += n) {
		n = in_len - off;
		if (n > WRM_XPRESS_CHUNK_MAX)
			n = WRM_XPRESS_CHUNK_MAX;
		payload = out + op + WRM_XPRESS_CHUNK_HDR;
		plen = n;
		if (e != NULL && n >= WRM_XPRESS_MIN_PACK) {
			/* Only a strictly shorter payload reads as packed. */
			xh_enc_reset(e);
			if (xh_compress(e, in + off, n, payload, n - 1,
			    &plen) != 0)
				plen = n;
		}
		if (plen == n)
			memcpy(payload, in + off, n);
		put_le16(out + op, (uint32_t)(n - 1));
		put_le16(out + op + 2, (uint32_t)(plen - 1));
		op += WRM_XPRESS_CHUNK_HDR + plen;
	}
	return op;
}

int
wrm_xpress_frame_encode(const uint8_t *in, size_t in_len, int level,
    uint8_t **out_r, size_t *out_len_r)
{
	struct xh_enc enc, *e = NULL;
	uint8_t *out;
	size_t cap, n;
	int r;

	if (in == NULL && in_len != 0)
		return WRM_ERR_INTERNAL;
	if ((cap = wrm_xpress_frame_bound(in_len)) == SIZE_MAX)
		return WRM_ERR_LIMIT;
	if ((out = malloc(cap > 0 ? cap : 1)) == NULL)
		return WRM_ERR_ALLOC;
	if (level > 0 && in_len >= WRM_XPRESS_MIN_PACK) {
		if ((r = xh_enc_init(&enc, in_len)) != 0) {
			free(out);
			return r;
		}
		e = &enc;
	}
	n = xf_chunks(e, in, in_len, out);
	if (e != NULL)
		xh_enc_free(e);
	*out_r = n < cap ? shrink(out, n) : out;
	*out_len_r = n;
	return 0;
}
