/*
 * Unit tests for buf.c: the bounded growable buffer, the read cursor,
 * explicit-endian accessors, base64 and XML escaping.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

/* Contents of b compared with a string. */
static void
assert_buf_eq(struct wrm_buf *b, const char *want)
{
	assert_int_equal(wrm_buf_len(b), strlen(want));
	assert_memory_equal(wrm_buf_ptr(b), want, strlen(want));
	assert_string_equal(wrm_buf_str(b), want);
}

static void
test_buf_empty(void **state)
{
	struct wrm_buf b;

	(void)state;
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_buf_len(&b), 0);
	assert_non_null(wrm_buf_ptr(&b));
	assert_string_equal(wrm_buf_str(&b), "");
	assert_int_equal(wrm_buf_put(&b, "x", 0), 0);
	assert_int_equal(wrm_buf_len(&b), 0);
	wrm_buf_consume(&b, 10);
	assert_int_equal(wrm_buf_len(&b), 0);
	wrm_buf_free(&b);
	wrm_buf_free(&b);		/* a second free is harmless */
	wrm_buf_free(NULL);
}

static void
test_buf_limit(void **state)
{
	struct wrm_buf b;
	uint8_t *p;

	(void)state;
	wrm_buf_init(&b, 16);
	assert_int_equal(wrm_buf_puts(&b, "0123456789abcdef"), 0);
	assert_int_equal(wrm_buf_len(&b), 16);
	/* Every kind of append fails past max and leaves b unchanged. */
	assert_int_equal(wrm_buf_putc(&b, 'x'), WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_puts(&b, "yz"), WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_printf(&b, "%d", 7), WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_put_u32_be(&b, 1), WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_put_b64(&b, (const uint8_t *)"a", 1),
	    WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_put_xml(&b, "<"), WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_reserve(&b, 1, &p), WRM_ERR_LIMIT);
	assert_buf_eq(&b, "0123456789abcdef");
	wrm_buf_free(&b);

	/* A single append larger than max, on an empty buffer. */
	wrm_buf_init(&b, 16);
	assert_int_equal(wrm_buf_put(&b, "0123456789abcdefg", 17),
	    WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_len(&b), 0);
	assert_int_equal(wrm_buf_put(&b, "0123456789abcdef", 16), 0);
	wrm_buf_free(&b);

	/* Huge lengths must not wrap around. */
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_buf_puts(&b, "abc"), 0);
	assert_int_equal(wrm_buf_reserve(&b, SIZE_MAX - 1, &p), WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_reserve(&b, SIZE_MAX / 2, &p), WRM_ERR_LIMIT);
	assert_buf_eq(&b, "abc");
	wrm_buf_free(&b);
}

static void
test_buf_limit_counts_unconsumed(void **state)
{
	struct wrm_buf b;

	(void)state;
	wrm_buf_init(&b, 16);
	assert_int_equal(wrm_buf_puts(&b, "0123456789abcdef"), 0);
	wrm_buf_consume(&b, 10);
	assert_buf_eq(&b, "abcdef");
	/* 6 left + 10 new = 16: allowed; one more is not. */
	assert_int_equal(wrm_buf_puts(&b, "ghijklmnop"), 0);
	assert_buf_eq(&b, "abcdefghijklmnop");
	assert_int_equal(wrm_buf_putc(&b, 'q'), WRM_ERR_LIMIT);
	assert_buf_eq(&b, "abcdefghijklmnop");
	wrm_buf_free(&b);
}

static void
test_buf_growth(void **state)
{
	struct wrm_buf b;
	size_t i;

	(void)state;
	wrm_buf_init(&b, 0);
	for (i = 0; i < 100000; i++)
		assert_int_equal(wrm_buf_putc(&b, (char)('a' + i % 26)), 0);
	assert_int_equal(wrm_buf_len(&b), 100000);
	assert_true(b.cap > 100000);		/* room for the NUL */
	for (i = 0; i < 100000; i++)
		assert_int_equal(wrm_buf_ptr(&b)[i], 'a' + i % 26);
	assert_int_equal(strlen(wrm_buf_str(&b)), 100000);
	wrm_buf_free(&b);
	assert_null(b.d);
	assert_int_equal(wrm_buf_len(&b), 0);
}

static void
test_buf_printf(void **state)
{
	struct wrm_buf b;
	char big[1000];

	(void)state;
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_buf_printf(&b, "%s=%d;", "n", 42), 0);
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* Longer than the formatter's stack buffer. */
	assert_int_equal(wrm_buf_printf(&b, "[%s]", big), 0);
	assert_int_equal(wrm_buf_len(&b), 5 + 2 + 999);
	assert_memory_equal(wrm_buf_ptr(&b), "n=42;[zzz", 9);
	assert_int_equal(wrm_buf_ptr(&b)[wrm_buf_len(&b) - 1], ']');
	wrm_buf_free(&b);

	/* The long path respects the limit too. */
	wrm_buf_init(&b, 500);
	assert_int_equal(wrm_buf_printf(&b, "%s", big), WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_len(&b), 0);
	wrm_buf_free(&b);
}

static void
test_buf_consume_compaction(void **state)
{
	struct wrm_buf b;
	size_t cap, i;
	char want[300];

	(void)state;
	wrm_buf_init(&b, 0);
	for (i = 0; i < 200; i++)
		want[i] = (char)('0' + i % 10);
	assert_int_equal(wrm_buf_put(&b, want, 200), 0);
	cap = b.cap;
	/* Consume past half the storage, then append: data moves to 0. */
	wrm_buf_consume(&b, 150);
	assert_int_equal(wrm_buf_len(&b), 50);
	assert_memory_equal(wrm_buf_ptr(&b), want + 150, 50);
	assert_true(b.off > 0);
	assert_int_equal(wrm_buf_put(&b, want, cap - 60), 0);
	assert_int_equal(b.cap, cap);		/* compacted, not grown */
	assert_int_equal(b.off, 0);
	assert_int_equal(wrm_buf_len(&b), 50 + cap - 60);
	assert_memory_equal(wrm_buf_ptr(&b), want + 150, 50);
	assert_memory_equal(wrm_buf_ptr(&b) + 50, want, cap - 60);

	/* Consuming everything resets the offsets. */
	wrm_buf_consume(&b, wrm_buf_len(&b));
	assert_int_equal(wrm_buf_len(&b), 0);
	assert_int_equal(b.off, 0);
	/* Over-consuming is clamped. */
	assert_int_equal(wrm_buf_puts(&b, "abc"), 0);
	wrm_buf_consume(&b, 1);
	assert_buf_eq(&b, "bc");
	wrm_buf_consume(&b, 99);
	assert_int_equal(wrm_buf_len(&b), 0);

	/* Growth after a consume keeps the unconsumed data only. */
	assert_int_equal(wrm_buf_puts(&b, "0123456789"), 0);
	wrm_buf_consume(&b, 4);
	for (i = 0; i < 300; i++)
		want[i] = 'k';
	assert_int_equal(wrm_buf_put(&b, want, 300), 0);
	assert_int_equal(wrm_buf_len(&b), 306);
	assert_memory_equal(wrm_buf_ptr(&b), "456789kkk", 9);
	wrm_buf_free(&b);
}

static void
test_buf_truncate_reset_reserve(void **state)
{
	struct wrm_buf b;
	uint8_t *p;
	char big[260];

	(void)state;
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_buf_puts(&b, "hello world"), 0);
	wrm_buf_consume(&b, 6);
	wrm_buf_truncate(&b, 3);
	assert_buf_eq(&b, "wor");
	wrm_buf_truncate(&b, 10);		/* never extends */
	assert_buf_eq(&b, "wor");
	assert_int_equal(wrm_buf_reserve(&b, 4, &p), 0);
	memcpy(p, "ld!!", 4);
	assert_buf_eq(&b, "world!!");
	wrm_buf_reset(&b);
	assert_int_equal(wrm_buf_len(&b), 0);
	assert_int_equal(wrm_buf_puts(&b, "again"), 0);
	assert_buf_eq(&b, "again");
	wrm_buf_free(&b);

	/* Secret buffers behave the same way. */
	wrm_buf_init(&b, 0);
	b.secret = true;
	assert_int_equal(wrm_buf_puts(&b, "password"), 0);
	memset(big, '7', sizeof(big));
	assert_int_equal(wrm_buf_put(&b, big, sizeof(big)), 0);
	assert_int_equal(wrm_buf_len(&b), 268);
	assert_memory_equal(wrm_buf_ptr(&b), "password777", 11);
	wrm_buf_reset(&b);
	wrm_buf_free(&b);
}

static void
test_buf_steal(void **state)
{
	struct wrm_buf b;
	uint8_t *p;
	size_t n = 99;

	(void)state;
	wrm_buf_init(&b, 0);
	p = wrm_buf_steal(&b, &n);
	assert_non_null(p);
	assert_int_equal(n, 0);
	free(p);

	assert_int_equal(wrm_buf_puts(&b, "abcdef"), 0);
	wrm_buf_consume(&b, 2);
	p = wrm_buf_steal(&b, &n);
	assert_int_equal(n, 4);
	assert_memory_equal(p, "cdef", 4);
	free(p);
	assert_null(b.d);
	assert_int_equal(wrm_buf_len(&b), 0);
	/* The buffer is usable again. */
	assert_int_equal(wrm_buf_puts(&b, "x"), 0);
	assert_buf_eq(&b, "x");
	wrm_buf_free(&b);
}

static void
test_buf_endian_put(void **state)
{
	static const uint8_t want[] = {
		0xab,
		0x34, 0x12,
		0x78, 0x56, 0x34, 0x12,
		0x12, 0x34, 0x56, 0x78,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
	};
	struct wrm_buf b;

	(void)state;
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_buf_put_u8(&b, 0xab), 0);
	assert_int_equal(wrm_buf_put_u16_le(&b, 0x1234), 0);
	assert_int_equal(wrm_buf_put_u32_le(&b, 0x12345678), 0);
	assert_int_equal(wrm_buf_put_u32_be(&b, 0x12345678), 0);
	assert_int_equal(wrm_buf_put_u64_be(&b, 0x0102030405060708ULL), 0);
	assert_int_equal(wrm_buf_put_u64_le(&b, 0x0102030405060708ULL), 0);
	assert_int_equal(wrm_buf_len(&b), sizeof(want));
	assert_memory_equal(wrm_buf_ptr(&b), want, sizeof(want));
	wrm_buf_free(&b);
}

static void
test_cur_endian_get(void **state)
{
	static const uint8_t in[] = {
		0xab,
		0x34, 0x12,
		0x78, 0x56, 0x34, 0x12,
		0x12, 0x34, 0x56, 0x78,
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		0xfe, 0xff,
	};
	struct wrm_cur c;
	uint8_t u8, two[2];
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *v;

	(void)state;
	wrm_cur_init(&c, in, sizeof(in));
	assert_int_equal(wrm_cur_get_u8(&c, &u8), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(wrm_cur_get_u16_le(&c, &u16), 0);
	assert_int_equal(u16, 0x1234);
	assert_int_equal(wrm_cur_get_u32_le(&c, &u32), 0);
	assert_int_equal(u32, 0x12345678);
	assert_int_equal(wrm_cur_get_u32_be(&c, &u32), 0);
	assert_int_equal(u32, 0x12345678);
	assert_int_equal(wrm_cur_get_u64_be(&c, &u64), 0);
	assert_true(u64 == 0x0102030405060708ULL);
	assert_int_equal(wrm_cur_get_u64_le(&c, &u64), 0);
	assert_true(u64 == 0x0102030405060708ULL);
	assert_int_equal(c.left, 2);

	/* Short reads fail and do not move the cursor. */
	assert_int_equal(wrm_cur_get_u32_le(&c, &u32), WRM_ERR_PARSE);
	assert_int_equal(wrm_cur_get_u32_be(&c, &u32), WRM_ERR_PARSE);
	assert_int_equal(wrm_cur_get_u64_le(&c, &u64), WRM_ERR_PARSE);
	assert_int_equal(wrm_cur_get_u64_be(&c, &u64), WRM_ERR_PARSE);
	assert_int_equal(wrm_cur_skip(&c, 3), WRM_ERR_PARSE);
	assert_int_equal(wrm_cur_view(&c, 3, &v), WRM_ERR_PARSE);
	assert_int_equal(wrm_cur_get(&c, two, 3), WRM_ERR_PARSE);
	assert_int_equal(c.left, 2);
	assert_ptr_equal(c.p, in + sizeof(in) - 2);
	assert_int_equal(wrm_cur_view(&c, 1, &v), 0);
	assert_int_equal(*v, 0xfe);
	assert_int_equal(wrm_cur_get(&c, two, 1), 0);
	assert_int_equal(two[0], 0xff);
	assert_int_equal(c.left, 0);
	assert_int_equal(wrm_cur_get_u8(&c, &u8), WRM_ERR_PARSE);
	assert_int_equal(wrm_cur_skip(&c, 0), 0);
}

static void
test_endian_inline(void **state)
{
	uint8_t t[8];

	(void)state;
	wrm_set_u16_le(t, 0xbeef);
	assert_int_equal(t[0], 0xef);
	assert_int_equal(t[1], 0xbe);
	assert_int_equal(wrm_get_u16_le(t), 0xbeef);
	wrm_set_u32_le(t, 0xdeadbeef);
	assert_memory_equal(t, "\xef\xbe\xad\xde", 4);
	assert_int_equal(wrm_get_u32_le(t), 0xdeadbeef);
	wrm_set_u32_be(t, 0xdeadbeef);
	assert_memory_equal(t, "\xde\xad\xbe\xef", 4);
	assert_int_equal(wrm_get_u32_be(t), 0xdeadbeef);
	wrm_set_u64_be(t, 0x8000000000000001ULL);
	assert_memory_equal(t, "\x80\0\0\0\0\0\0\x01", 8);
	assert_true(wrm_get_u64_be(t) == 0x8000000000000001ULL);
}

/* RFC 4648 section 10 test vectors. */
static const struct {
	const char *plain;
	const char *b64;
} b64_vectors[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static int
b64_dec(const char *in, uint8_t *out, size_t *n_r)
{
	return wrm_b64_decode(in, strlen(in), out, n_r);
}

static void
test_b64_vectors(void **state)
{
	char enc[64];
	uint8_t dec[64];
	struct wrm_buf b;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(b64_vectors) / sizeof(b64_vectors[0]); i++) {
		const char *p = b64_vectors[i].plain, *e = b64_vectors[i].b64;

		assert_int_equal(wrm_b64_encoded_len(strlen(p)), strlen(e));
		memset(enc, 0, sizeof(enc));
		wrm_b64_encode((const uint8_t *)p, strlen(p), enc);
		assert_string_equal(enc, e);
		n = 999;
		assert_int_equal(b64_dec(e, dec, &n), 0);
		assert_int_equal(n, strlen(p));
		assert_memory_equal(dec, p, n);

		wrm_buf_init(&b, 0);
		assert_int_equal(wrm_buf_puts(&b, "<"), 0);
		assert_int_equal(wrm_buf_put_b64(&b, (const uint8_t *)p,
		    strlen(p)), 0);
		assert_int_equal(wrm_buf_puts(&b, ">"), 0);
		assert_int_equal(wrm_buf_len(&b), strlen(e) + 2);
		assert_memory_equal(wrm_buf_ptr(&b) + 1, e, strlen(e));
		assert_int_equal(wrm_buf_ptr(&b)[strlen(e) + 1], '>');
		wrm_buf_free(&b);
	}
}

static void
test_b64_whitespace(void **state)
{
	uint8_t dec[64];
	size_t n;

	(void)state;
	assert_int_equal(b64_dec("Zm9v\r\nYmFy\r\n", dec, &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(dec, "foobar", 6);
	assert_int_equal(b64_dec("  Z m\t9 v\nYg\n=\r=  ", dec, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(dec, "foob", 4);
	assert_int_equal(b64_dec(" \t\r\n", dec, &n), 0);
	assert_int_equal(n, 0);
}

static void
test_b64_bad_padding(void **state)
{
	static const char *const bad[] = {
		"Z",		/* one character of a quantum */
		"Zm9vY",
		"Zg=",		/* short padding */
		"Zm9vYg=",
		"Z===",		/* three pad characters */
		"Zg===",
		"Zm9v=",	/* padding after a whole quantum */
		"Zm9v====",
		"=Zm9",		/* padding first */
		"Zg==Zg==",	/* data after padding */
		"Zm8=Zm9v",
		"Zg=a",
	};
	uint8_t dec[64];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (b64_dec(bad[i], dec, &n) != WRM_ERR_PARSE)
			fail_msg("\"%s\" was accepted", bad[i]);
}

static void
test_b64_invalid_chars(void **state)
{
	static const char *const bad[] = {
		"Zm9v!",
		"Zm-v",		/* base64url alphabet */
		"Zm_v",
		"Zm9v\v",	/* vertical tab is not skipped */
		"Zm9v.",
		"\xc3\xa9Zm9",
		"Zm9\x80",
		"Zm9\xff",
	};
	uint8_t dec[64];
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (b64_dec(bad[i], dec, &n) != WRM_ERR_PARSE)
			fail_msg("bad input %zu was accepted", i);
	/* An embedded NUL inside the given length is invalid too. */
	assert_int_equal(wrm_b64_decode("Zm\0v", 4, dec, &n), WRM_ERR_PARSE);
}

static void
test_b64_roundtrip(void **state)
{
	uint8_t in[300], dec[300 * 3 / 4 + 300];
	char enc[404 + 1];
	size_t len, n, i;
	uint32_t x = 12345;

	(void)state;
	for (len = 0; len <= sizeof(in); len++) {
		for (i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			in[i] = (uint8_t)(x >> 16);
		}
		wrm_b64_encode(in, len, enc);
		n = wrm_b64_encoded_len(len);
		enc[n] = '\0';
		assert_int_equal(n % 4, 0);
		assert_int_equal(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789+/="), n);
		assert_int_equal(wrm_b64_decode(enc, n, dec, &n), 0);
		assert_int_equal(n, len);
		assert_memory_equal(dec, in, len);
	}
}

static void
test_xml_escape(void **state)
{
	struct wrm_buf b;

	(void)state;
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_buf_put_xml(&b, "a&b<c>d\"e'f"), 0);
	assert_buf_eq(&b, "a&amp;b&lt;c&gt;d&quot;e&apos;f");
	wrm_buf_reset(&b);
	assert_int_equal(wrm_buf_put_xml(&b, "plain text"), 0);
	assert_buf_eq(&b, "plain text");
	wrm_buf_reset(&b);
	assert_int_equal(wrm_buf_put_xml(&b, ""), 0);
	assert_int_equal(wrm_buf_len(&b), 0);
	/* UTF-8 passes through untouched. */
	assert_int_equal(wrm_buf_put_xml(&b, "caf\xc3\xa9 \xe2\x82\xac "
	    "\xf0\x9f\x98\x80"), 0);
	assert_buf_eq(&b, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	wrm_buf_free(&b);
}

static void
test_xml_escape_control(void **state)
{
	struct wrm_buf b;
	char in[2], want[8];
	int c;

	(void)state;
	wrm_buf_init(&b, 0);
	for (c = 1; c < 0x20; c++) {
		in[0] = (char)c;
		in[1] = '\0';
		wrm_buf_reset(&b);
		assert_int_equal(wrm_buf_put_xml(&b, in), 0);
		if (c == '\t' || c == '\n' || c == '\r')
			snprintf(want, sizeof(want), "%c", c);
		else
			snprintf(want, sizeof(want), "?");
		if (wrm_buf_len(&b) != strlen(want) ||
		    memcmp(wrm_buf_ptr(&b), want, strlen(want)) != 0)
			fail_msg("control character 0x%02x escaped wrongly", c);
	}
	wrm_buf_reset(&b);
	assert_int_equal(wrm_buf_put_xml(&b, "a\x01" "b\x1f" "c\td\ne\rf"
	    "\x1b[0m"), 0);
	assert_buf_eq(&b, "a?b?c\td\ne\rf?[0m");
	/* With an explicit length a NUL byte is a control character too. */
	wrm_buf_reset(&b);
	assert_int_equal(wrm_buf_put_xmln(&b, "x\0y&", 4), 0);
	assert_buf_eq(&b, "x?y&amp;");
	/* Only n bytes are read. */
	wrm_buf_reset(&b);
	assert_int_equal(wrm_buf_put_xmln(&b, "<ab>", 2), 0);
	assert_buf_eq(&b, "&lt;a");
	wrm_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_empty),
		cmocka_unit_test(test_buf_limit),
		cmocka_unit_test(test_buf_limit_counts_unconsumed),
		cmocka_unit_test(test_buf_growth),
		cmocka_unit_test(test_buf_printf),
		cmocka_unit_test(test_buf_consume_compaction),
		cmocka_unit_test(test_buf_truncate_reset_reserve),
		cmocka_unit_test(test_buf_steal),
		cmocka_unit_test(test_buf_endian_put),
		cmocka_unit_test(test_cur_endian_get),
		cmocka_unit_test(test_endian_inline),
		cmocka_unit_test(test_b64_vectors),
		cmocka_unit_test(test_b64_whitespace),
		cmocka_unit_test(test_b64_bad_padding),
		cmocka_unit_test(test_b64_invalid_chars),
		cmocka_unit_test(test_b64_roundtrip),
		cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_xml_escape_control),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
