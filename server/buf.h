/*
 * Byte buffers.
 *
 * struct wrm_buf is a growable buffer with a hard maximum size: every
 * append fails with WRM_ERR_LIMIT instead of growing past max, and with
 * WRM_ERR_ALLOC when memory runs out; the buffer is unchanged on failure.
 * It is used for request bodies, SOAP output and host messages.  Data can
 * be consumed from the front (wrm_buf_consume) without moving it until the
 * next append needs the room.
 *
 * struct wrm_cur is a read cursor over borrowed bytes: every get checks
 * the remaining length and fails with WRM_ERR_PARSE on short input.
 * Endianness is always explicit in the name; no accessor uses host order.
 *
 * Owner: whoever embeds or allocates the struct; wrm_buf_free() releases
 * the storage (wiping it first when the buffer was marked secret).
 */
#ifndef WRM_BUF_H
#define WRM_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wrm_buf {
	uint8_t *d;		/* storage; NULL until the first append */
	size_t off;		/* start of unconsumed data */
	size_t len;		/* end of data (off <= len <= cap) */
	size_t cap;
	size_t max;		/* maximum len - off; 0 means SIZE_MAX/2 */
	bool secret;		/* wipe on free and on regrowth */
};

void wrm_buf_init(struct wrm_buf *b, size_t max);
void wrm_buf_free(struct wrm_buf *b);
void wrm_buf_reset(struct wrm_buf *b);
static inline size_t wrm_buf_len(const struct wrm_buf *b)
{ return b->len - b->off; }
static inline const uint8_t *wrm_buf_ptr(const struct wrm_buf *b)
{ return b->d != NULL ? b->d + b->off : (const uint8_t *)""; }
/* NUL-terminated view of the contents (a NUL is kept after the data). */
const char *wrm_buf_str(struct wrm_buf *b);
int wrm_buf_reserve(struct wrm_buf *b, size_t n, uint8_t **p_r);
int wrm_buf_put(struct wrm_buf *b, const void *p, size_t n);
int wrm_buf_puts(struct wrm_buf *b, const char *s);
int wrm_buf_putc(struct wrm_buf *b, char c);
int wrm_buf_printf(struct wrm_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int wrm_buf_vprintf(struct wrm_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* XML-escape s (&<>"'); control characters other than TAB/LF/CR become '?'. */
int wrm_buf_put_xml(struct wrm_buf *b, const char *s);
int wrm_buf_put_xmln(struct wrm_buf *b, const char *s, size_t n);
int wrm_buf_put_b64(struct wrm_buf *b, const uint8_t *p, size_t n);
int wrm_buf_put_u8(struct wrm_buf *b, uint8_t v);
int wrm_buf_put_u16_le(struct wrm_buf *b, uint16_t v);
int wrm_buf_put_u32_le(struct wrm_buf *b, uint32_t v);
int wrm_buf_put_u32_be(struct wrm_buf *b, uint32_t v);
int wrm_buf_put_u64_be(struct wrm_buf *b, uint64_t v);
int wrm_buf_put_u64_le(struct wrm_buf *b, uint64_t v);
void wrm_buf_consume(struct wrm_buf *b, size_t n);
/* Truncate contents to n bytes (n <= len). */
void wrm_buf_truncate(struct wrm_buf *b, size_t n);
/* Move the storage out: *p_r must be freed with free(); b is reset. */
uint8_t *wrm_buf_steal(struct wrm_buf *b, size_t *len_r);

struct wrm_cur {
	const uint8_t *p;
	size_t left;
};

static inline void wrm_cur_init(struct wrm_cur *c, const void *p, size_t n)
{ c->p = p; c->left = n; }
int wrm_cur_get(struct wrm_cur *c, void *dst, size_t n);
int wrm_cur_skip(struct wrm_cur *c, size_t n);
int wrm_cur_view(struct wrm_cur *c, size_t n, const uint8_t **p_r);
int wrm_cur_get_u8(struct wrm_cur *c, uint8_t *v_r);
int wrm_cur_get_u16_le(struct wrm_cur *c, uint16_t *v_r);
int wrm_cur_get_u32_le(struct wrm_cur *c, uint32_t *v_r);
int wrm_cur_get_u32_be(struct wrm_cur *c, uint32_t *v_r);
int wrm_cur_get_u64_be(struct wrm_cur *c, uint64_t *v_r);
int wrm_cur_get_u64_le(struct wrm_cur *c, uint64_t *v_r);

/* Unaligned explicit-endian helpers for fixed layouts. */
static inline uint16_t wrm_get_u16_le(const uint8_t *p)
{ return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t wrm_get_u32_le(const uint8_t *p)
{ return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
    (uint32_t)p[3] << 24; }
static inline uint32_t wrm_get_u32_be(const uint8_t *p)
{ return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 |
    (uint32_t)p[0] << 24; }
static inline uint64_t wrm_get_u64_be(const uint8_t *p)
{ return (uint64_t)wrm_get_u32_be(p) << 32 | wrm_get_u32_be(p + 4); }
static inline void wrm_set_u16_le(uint8_t *p, uint16_t v)
{ p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void wrm_set_u32_le(uint8_t *p, uint32_t v)
{ p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24); }
static inline void wrm_set_u32_be(uint8_t *p, uint32_t v)
{ p[3] = (uint8_t)v; p[2] = (uint8_t)(v >> 8); p[1] = (uint8_t)(v >> 16);
  p[0] = (uint8_t)(v >> 24); }
static inline void wrm_set_u64_be(uint8_t *p, uint64_t v)
{ wrm_set_u32_be(p, (uint32_t)(v >> 32)); wrm_set_u32_be(p + 4, (uint32_t)v); }

/* Base64 (RFC 4648, with padding). */
size_t wrm_b64_encoded_len(size_t n);
void wrm_b64_encode(const uint8_t *in, size_t n, char *out);
/*
 * Decode, skipping ASCII whitespace; fails with WRM_ERR_PARSE on any other
 * non-alphabet byte or bad padding.  out must hold n * 3 / 4 + 3 bytes.
 */
int wrm_b64_decode(const char *in, size_t n, uint8_t *out, size_t *out_len_r);

#endif
