/*
 * Unit tests for misc.c: GUIDs in .NET byte order, xs:duration parsing and
 * formatting, booleans and integers as clients write them, small string
 * helpers and clocks.
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
#include <time.h>

#include "err.h"
#include "misc.h"

/*
 * Text form and Guid.ToByteArray() of the same GUID.  The second is the
 * example of .NET's Guid.ToByteArray documentation; the third is the
 * RunspacePool id of tests/data/client-requests/pypsrp-runspacepool-
 * basic-http-01.txt, whose creationXml carries these bytes.
 */
static const struct {
	const char *text;
	uint8_t bytes[16];
} guid_vectors[] = {
	{ "00112233-4455-6677-8899-AABBCCDDEEFF",
	  { 0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
	    0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff } },
	{ "35918BC9-196D-40EA-9779-889D79B753F0",
	  { 0xc9, 0x8b, 0x91, 0x35, 0x6d, 0x19, 0xea, 0x40,
	    0x97, 0x79, 0x88, 0x9d, 0x79, 0xb7, 0x53, 0xf0 } },
	{ "27A3EB43-F792-4D33-96DD-B5A52AC8668A",
	  { 0x43, 0xeb, 0xa3, 0x27, 0x92, 0xf7, 0x33, 0x4d,
	    0x96, 0xdd, 0xb5, 0xa5, 0x2a, 0xc8, 0x66, 0x8a } },
	{ "00000000-0000-0000-0000-000000000000", { 0 } },
};

static void
test_guid_vectors(void **state)
{
	char text[WRM_GUID_STRLEN + 1], lower[WRM_GUID_STRLEN + 1];
	uint8_t b[16];
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(guid_vectors) / sizeof(guid_vectors[0]); i++) {
		memset(b, 0x5a, sizeof(b));
		assert_int_equal(wrm_guid_parse_ms(guid_vectors[i].text, b), 0);
		assert_memory_equal(b, guid_vectors[i].bytes, 16);
		wrm_guid_format_ms(guid_vectors[i].bytes, true, text);
		assert_string_equal(text, guid_vectors[i].text);
		wrm_guid_format_ms(guid_vectors[i].bytes, false, lower);
		for (j = 0; j < WRM_GUID_STRLEN; j++)
			assert_int_equal(lower[j], text[j] >= 'A' &&
			    text[j] <= 'F' ? text[j] - 'A' + 'a' : text[j]);
		/* Lower-case input parses to the same bytes. */
		assert_int_equal(wrm_guid_parse_ms(lower, b), 0);
		assert_memory_equal(b, guid_vectors[i].bytes, 16);
	}
}

static void
test_guid_forms(void **state)
{
	static const char *const good[] = {
		"35918bc9-196d-40ea-9779-889d79b753f0",
		"uuid:35918BC9-196D-40EA-9779-889D79B753F0",
		"UUID:35918bc9-196d-40ea-9779-889d79b753f0",
		"{35918BC9-196D-40EA-9779-889D79B753F0}",
		"uuid:{35918BC9-196D-40EA-9779-889D79B753F0}",
	};
	static const char *const bad[] = {
		"",
		"uuid:",
		"35918BC9-196D-40EA-9779-889D79B753F",		/* short */
		"35918BC9-196D-40EA-9779-889D79B753F00",	/* long */
		"35918BC9196D-40EA-9779-889D79B753F0-",		/* dash moved */
		"35918BC9-196D-40EA-9779_889D79B753F0",
		"35918BC9-196D-40EA-9779-889D79B753G0",		/* not hex */
		"35918BC9-196D-40EA-9779-889D79B753F0 ",	/* trailing */
		" 35918BC9-196D-40EA-9779-889D79B753F0",
		"35918BC9196D40EA9779889D79B753F0",		/* no dashes */
		"urn:uuid:35918BC9-196D-40EA-9779-889D79B753F0",
		"{35918BC9-196D-40EA-9779-889D79B753F0}}",
		"{35918BC9-196D-40EA-9779-889D79B753F0",	/* unbalanced */
		"35918BC9-196D-40EA-9779-889D79B753F0}",
	};
	uint8_t b[16];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (wrm_guid_parse_ms(good[i], b) != 0)
			fail_msg("\"%s\" was refused", good[i]);
		assert_memory_equal(b, guid_vectors[1].bytes, 16);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (wrm_guid_parse_ms(bad[i], b) != WRM_ERR_PARSE)
			fail_msg("\"%s\" was accepted", bad[i]);
}

static void
test_guid_normalize_eq(void **state)
{
	char out[WRM_GUID_STRLEN + 1];

	(void)state;
	assert_int_equal(wrm_guid_normalize(
	    "uuid:27a3eb43-f792-4d33-96dd-b5a52ac8668a", out), 0);
	assert_string_equal(out, "27A3EB43-F792-4D33-96DD-B5A52AC8668A");
	assert_int_equal(wrm_guid_normalize("{00112233-4455-6677-8899-"
	    "aabbccddeeff}", out), 0);
	assert_string_equal(out, "00112233-4455-6677-8899-AABBCCDDEEFF");
	assert_int_equal(wrm_guid_normalize("not-a-guid", out), WRM_ERR_PARSE);

	assert_true(wrm_guid_eq("uuid:27A3EB43-F792-4D33-96DD-B5A52AC8668A",
	    "27a3eb43-f792-4d33-96dd-b5a52ac8668a"));
	assert_true(wrm_guid_eq("UUID:27A3EB43-F792-4D33-96DD-B5A52AC8668A",
	    "uuid:27A3EB43-F792-4D33-96DD-B5A52AC8668A"));
	assert_false(wrm_guid_eq("27A3EB43-F792-4D33-96DD-B5A52AC8668A",
	    "27A3EB43-F792-4D33-96DD-B5A52AC8668B"));
	assert_false(wrm_guid_eq("27A3EB43-F792-4D33-96DD-B5A52AC8668A",
	    "27A3EB43-F792-4D33-96DD-B5A52AC8668"));
}

static void
test_guid_new(void **state)
{
	char a[WRM_GUID_STRLEN + 1], b[WRM_GUID_STRLEN + 1];
	uint8_t bytes[16];
	size_t i;

	(void)state;
	for (i = 0; i < 64; i++) {
		wrm_guid_new(a);
		wrm_guid_new(b);
		assert_int_equal(strlen(a), WRM_GUID_STRLEN);
		assert_string_not_equal(a, b);
		assert_int_equal(strspn(a, "0123456789ABCDEF-"),
		    WRM_GUID_STRLEN);
		assert_int_equal(a[14], '4');		/* version 4 */
		assert_non_null(strchr("89AB", a[19]));	/* RFC 4122 variant */
		assert_int_equal(wrm_guid_parse_ms(a, bytes), 0);
	}
}

static uint64_t
dur(const char *s)
{
	uint64_t ms = 0xdeadbeef;

	if (wrm_duration_parse(s, &ms) != 0)
		fail_msg("\"%s\" was refused", s);
	return ms;
}

#define SEC	1000ULL
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define DAY	(24 * HOUR)

static void
test_duration_parse(void **state)
{
	(void)state;
	/* Forms real clients send. */
	assert_true(dur("PT20S") == 20 * SEC);
	assert_true(dur("PT60S") == 60 * SEC);
	assert_true(dur("PT60.000S") == 60 * SEC);
	assert_true(dur("PT60.0S") == 60 * SEC);
	assert_true(dur("PT1M1S") == 61 * SEC);
	assert_true(dur("P1W2DT3H") == 7 * DAY + 2 * DAY + 3 * HOUR);
	assert_true(dur("PT0.5S") == 500);
	assert_true(dur("PT7200.000S") == 7200 * SEC);
	assert_true(dur("P0DT0H0M2S") == 2 * SEC);
	/* Every designator. */
	assert_true(dur("P1Y") == 365 * DAY);
	assert_true(dur("P1M") == 30 * DAY);
	assert_true(dur("P1W") == 7 * DAY);
	assert_true(dur("P1D") == DAY);
	assert_true(dur("PT1H") == HOUR);
	assert_true(dur("PT1M") == MIN);
	assert_true(dur("PT1S") == SEC);
	assert_true(dur("P1Y2M3W4DT5H6M7.089S") == 365 * DAY + 60 * DAY +
	    21 * DAY + 4 * DAY + 5 * HOUR + 6 * MIN + 7 * SEC + 89);
	/* Fractions: milliseconds kept, finer digits dropped. */
	assert_true(dur("PT0.001S") == 1);
	assert_true(dur("PT0.05S") == 50);
	assert_true(dur("PT1.2345S") == 1234);
	assert_true(dur("PT0S") == 0);
	assert_true(dur("PT0.000S") == 0);
	/* Surrounding whitespace is trimmed. */
	assert_true(dur("  PT5S\r\n") == 5 * SEC);
	assert_true(dur("\tPT1M ") == MIN);
}

static void
test_duration_invalid(void **state)
{
	static const char *const bad[] = {
		"", " ", "P", "PT", "T1S", "1S", "20", "PT1", "PT1X",
		"PTS", "PT.5S", "PT1.S", "P1.5D", "PT1.5M", "PT1.5H",
		"P1H", "P1S", "PT1D", "PT1W", "PT1Y", "PT1ST1S", "PT1S1",
		"PT1S junk", "PT 1S", "pt1s", "P1d", "XPT1S", "PT1,5S",
		"PT0x10S",
		/* negative and signed values */
		"-PT1S", "PT-1S", "P-1D", "PT+1S", "+PT1S",
	};
	uint64_t ms;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 77;
		if (wrm_duration_parse(bad[i], &ms) != WRM_ERR_PARSE)
			fail_msg("\"%s\" was accepted (%llu ms)", bad[i],
			    (unsigned long long)ms);
		assert_true(ms == 77);		/* untouched on error */
	}
}

static void
test_duration_saturates(void **state)
{
	const uint64_t max = UINT64_MAX / 2;

	(void)state;
	assert_true(dur("PT99999999999999999999999999999S") == max);
	assert_true(dur("PT18446744073709551615S") == max);
	assert_true(dur("P99999999999999999999Y") == max);
	assert_true(dur("P9223372036854775807D") == max);
	assert_true(dur("P300000000000000YT1S") == max);
	/* Each part fits, the sum does not. */
	assert_true(dur("P200000000000000YT200000000000000H") == max);
	/* Just below the limit is exact. */
	assert_true(dur("PT9223372036854775.807S") == max);
	assert_true(dur("PT9223372036854775.806S") == max - 1);
}

static void
test_duration_format(void **state)
{
	char out[64], small[6];
	uint64_t v[] = { 0, 1, 500, 999, 1000, 20000, 61001, 7200000,
	    86400000, 90061000 };
	size_t i;

	(void)state;
	wrm_duration_format_secs(7200000, out, sizeof(out));
	assert_string_equal(out, "PT7200.000S");
	wrm_duration_format_secs(500, out, sizeof(out));
	assert_string_equal(out, "PT0.500S");
	wrm_duration_format_secs(0, out, sizeof(out));
	assert_string_equal(out, "PT0.000S");
	wrm_duration_format_secs(61001, out, sizeof(out));
	assert_string_equal(out, "PT61.001S");

	wrm_duration_format_dhms(0, out, sizeof(out));
	assert_string_equal(out, "P0DT0H0M0S");
	wrm_duration_format_dhms(2999, out, sizeof(out));
	assert_string_equal(out, "P0DT0H0M2S");
	wrm_duration_format_dhms(90061000, out, sizeof(out));
	assert_string_equal(out, "P1DT1H1M1S");
	wrm_duration_format_dhms(45 * DAY + 23 * HOUR + 59 * MIN + 59 * SEC,
	    out, sizeof(out));
	assert_string_equal(out, "P45DT23H59M59S");

	/* Output is cut, never overrun. */
	memset(small, 'x', sizeof(small));
	wrm_duration_format_secs(7200000, small, sizeof(small));
	assert_string_equal(small, "PT720");

	/* What we write, we read back. */
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		wrm_duration_format_secs(v[i], out, sizeof(out));
		assert_true(dur(out) == v[i]);
		wrm_duration_format_dhms(v[i], out, sizeof(out));
		assert_true(dur(out) == v[i] / 1000 * 1000);
	}
}

static void
test_parse_bool(void **state)
{
	static const char *const yes[] = {
		"TRUE", "True", "true", "tRuE", "1", "yes", "YES",
		" true", "TRUE\n", "\t1 ",
	};
	static const char *const no[] = {
		"FALSE", "False", "false", "0", "no", "NO", " false ", "0\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (wrm_parse_bool(yes[i]) != 1)
			fail_msg("\"%s\" is not true", yes[i]);
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (wrm_parse_bool(no[i]) != 0)
			fail_msg("\"%s\" is not false", no[i]);
	assert_int_equal(wrm_parse_bool(NULL), -1);
	assert_int_equal(wrm_parse_bool(""), -1);
	assert_int_equal(wrm_parse_bool("2"), -1);
	assert_int_equal(wrm_parse_bool("maybe"), -1);
	assert_int_equal(wrm_parse_bool("tru"), -1);
	assert_int_equal(wrm_parse_bool("t"), -1);
	assert_int_equal(wrm_parse_bool("-1"), -1);
}

/* A word that merely starts like a boolean is not one. */
static void
test_parse_bool_whole_word(void **state)
{
	static const char *const bad[] = {
		"truex", "True1", "10", "01", "00", "yesterday", "none",
		"nope", "falsely", "0x1", "1.0", "true false",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (wrm_parse_bool(bad[i]) != -1)
			fail_msg("\"%s\" parsed as %d", bad[i],
			    wrm_parse_bool(bad[i]));
}

static void
test_parse_u64(void **state)
{
	static const char *const bad[] = {
		"", " ", "-1", "+1", "1.5", "12abc", "0x10", "1 2",
		"18446744073709551616", "99999999999999999999",
	};
	uint64_t v;
	size_t i;

	(void)state;
	assert_int_equal(wrm_parse_u64("0", &v), 0);
	assert_true(v == 0);
	assert_int_equal(wrm_parse_u64("153600", &v), 0);
	assert_true(v == 153600);
	assert_int_equal(wrm_parse_u64(" 42\n", &v), 0);
	assert_true(v == 42);
	assert_int_equal(wrm_parse_u64("007", &v), 0);
	assert_true(v == 7);
	assert_int_equal(wrm_parse_u64("18446744073709551609", &v), 0);
	assert_true(v == UINT64_MAX - 6);
	/* The largest value there is. */
	assert_int_equal(wrm_parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 5;
		if (wrm_parse_u64(bad[i], &v) != WRM_ERR_PARSE)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_true(v == 5);
	}
}

static void
test_strings(void **state)
{
	char *s;

	(void)state;
	s = wrm_strdup_trim("  \t a b \r\n");
	assert_string_equal(s, "a b");
	free(s);
	s = wrm_strdup_trim(" \n ");
	assert_string_equal(s, "");
	free(s);
	s = wrm_strdup_trim("");
	assert_string_equal(s, "");
	free(s);
	assert_null(wrm_strdup0(NULL));
	s = wrm_strdup0("x");
	assert_string_equal(s, "x");
	wrm_freezero_str(s);
	wrm_freezero_str(NULL);
	assert_true(wrm_str_iprefix("HTTP://schemas", "http://"));
	assert_true(wrm_str_iprefix("abc", ""));
	assert_false(wrm_str_iprefix("ab", "abc"));
	assert_false(wrm_str_iprefix("xabc", "abc"));
}

static void
test_clocks(void **state)
{
	uint64_t a, b;
	int64_t w;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	(void)state;
	a = wrm_now_ms();
	nanosleep(&ts, NULL);
	b = wrm_now_ms();
	assert_true(b >= a + 19);
	assert_true(b < a + 10000);
	w = wrm_wall_ms();
	assert_true(w / 1000 >= (int64_t)time(NULL) - 2);
	assert_true(w / 1000 <= (int64_t)time(NULL) + 2);
}

static void
test_random(void **state)
{
	uint8_t a[32], b[32], z[32];

	(void)state;
	memset(z, 0, sizeof(z));
	wrm_random(a, sizeof(a));
	wrm_random(b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_memory_not_equal(a, z, sizeof(a));
	wrm_random(a, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guid_vectors),
		cmocka_unit_test(test_guid_forms),
		cmocka_unit_test(test_guid_normalize_eq),
		cmocka_unit_test(test_guid_new),
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_invalid),
		cmocka_unit_test(test_duration_saturates),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_parse_bool_whole_word),
		cmocka_unit_test(test_parse_u64),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
