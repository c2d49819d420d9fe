#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "err.h"
#include "log.h"
#include "misc.h"

void
wrm_random(void *p, size_t n)
{
	uint8_t *q = p;
	ssize_t got;

	while (n > 0) {
		got = getrandom(q, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			fatal_f("getrandom: %s", strerror(errno));
		}
		q += got;
		n -= (size_t)got;
	}
}

void
wrm_guid_new(char out[WRM_GUID_STRLEN + 1])
{
	uint8_t b[16];

	wrm_random(b, sizeof(b));
	b[7] = (uint8_t)((b[7] & 0x0f) | 0x40);	/* .NET order: version */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);	/* variant */
	wrm_guid_format_ms(b, true, out);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parse 32 hex digits in text order, dashes at 8,13,18,23. */
static int
guid_text_bytes(const char *s, uint8_t t[16])
{
	size_t i, j = 0;
	int hi, lo;

	bool brace;

	if (strncasecmp(s, "uuid:", 5) == 0)
		s += 5;
	if ((brace = *s == '{'))
		s++;
	for (i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return WRM_ERR_PARSE;
			continue;
		}
		if ((hi = hexval((unsigned char)s[i])) < 0 ||
		    (lo = hexval((unsigned char)s[i + 1])) < 0)
			return WRM_ERR_PARSE;
		t[j++] = (uint8_t)(hi << 4 | lo);
		i++;
	}
	s += 36;
	/* Braces come in pairs or not at all. */
	if (brace && *s++ != '}')
		return WRM_ERR_PARSE;
	return *s == '\0' ? 0 : WRM_ERR_PARSE;
}

int
wrm_guid_parse_ms(const char *s, uint8_t out[16])
{
	uint8_t t[16];
	int r;

	if ((r = guid_text_bytes(s, t)) != 0)
		return r;
	out[0] = t[3]; out[1] = t[2]; out[2] = t[1]; out[3] = t[0];
	out[4] = t[5]; out[5] = t[4];
	out[6] = t[7]; out[7] = t[6];
	memcpy(out + 8, t + 8, 8);
	return 0;
}

void
wrm_guid_format_ms(const uint8_t in[16], bool upper,
    char out[WRM_GUID_STRLEN + 1])
{
	snprintf(out, WRM_GUID_STRLEN + 1, upper ?
	    "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X" :
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    in[3], in[2], in[1], in[0], in[5], in[4], in[7], in[6],
	    in[8], in[9], in[10], in[11], in[12], in[13], in[14], in[15]);
}

int
wrm_guid_normalize(const char *s, char out[WRM_GUID_STRLEN + 1])
{
	uint8_t b[16];
	int r;

	if ((r = wrm_guid_parse_ms(s, b)) != 0)
		return r;
	wrm_guid_format_ms(b, true, out);
	return 0;
}

bool
wrm_guid_eq(const char *a, const char *b)
{
	if (strncasecmp(a, "uuid:", 5) == 0)
		a += 5;
	if (strncasecmp(b, "uuid:", 5) == 0)
		b += 5;
	return strcasecmp(a, b) == 0;
}

uint64_t
wrm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t
wrm_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define DUR_MAX	(UINT64_MAX / 2)

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > DUR_MAX - b ? DUR_MAX : a + b;
}

static uint64_t
sat_mul(uint64_t a, uint64_t b)
{
	if (a != 0 && b > DUR_MAX / a)
		return DUR_MAX;
	return a * b;
}

int
wrm_duration_parse(const char *s, uint64_t *ms_r)
{
	uint64_t total = 0, ip, frac_ms, unit;
	bool in_time = false, any = false;
	int digits;

	while (isspace((unsigned char)*s))
		s++;
	if (*s++ != 'P')
		return WRM_ERR_PARSE;
	while (*s != '\0' && !isspace((unsigned char)*s)) {
		if (*s == 'T') {
			if (in_time)
				return WRM_ERR_PARSE;
			in_time = true;
			s++;
			continue;
		}
		if (!isdigit((unsigned char)*s))
			return WRM_ERR_PARSE;
		for (ip = 0; isdigit((unsigned char)*s); s++)
			ip = sat_add(sat_mul(ip, 10), (uint64_t)(*s - '0'));
		frac_ms = 0;
		if (*s == '.') {
			s++;
			for (digits = 0; isdigit((unsigned char)*s); s++) {
				if (digits < 3)
					frac_ms = frac_ms * 10 + (uint64_t)(*s - '0');
				digits++;
			}
			if (digits == 0)
				return WRM_ERR_PARSE;
			for (; digits < 3; digits++)
				frac_ms *= 10;
			if (*s != 'S' || !in_time)
				return WRM_ERR_PARSE;
		}
		switch (*s) {
		case 'Y': unit = in_time ? 0 : 365ULL * 86400000; break;
		case 'M': unit = in_time ? 60000 : 30ULL * 86400000; break;
		case 'W': unit = in_time ? 0 : 7ULL * 86400000; break;
		case 'D': unit = in_time ? 0 : 86400000; break;
		case 'H': unit = in_time ? 3600000 : 0; break;
		case 'S': unit = in_time ? 1000 : 0; break;
		default: unit = 0; break;
		}
		if (unit == 0)
			return WRM_ERR_PARSE;
		total = sat_add(total, sat_add(sat_mul(ip, unit), frac_ms));
		any = true;
		s++;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (!any || *s != '\0')
		return WRM_ERR_PARSE;
	*ms_r = total;
	return 0;
}

void
wrm_duration_format_secs(uint64_t ms, char *out, size_t outlen)
{
	snprintf(out, outlen, "PT%llu.%03lluS", (unsigned long long)(ms / 1000),
	    (unsigned long long)(ms % 1000));
}

void
wrm_duration_format_dhms(uint64_t ms, char *out, size_t outlen)
{
	uint64_t s = ms / 1000;

	snprintf(out, outlen, "P%lluDT%lluH%lluM%lluS",
	    (unsigned long long)(s / 86400), (unsigned long long)(s / 3600 % 24),
	    (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
}

int
wrm_parse_bool(const char *s)
{
	if (s == NULL)
		return -1;
	static const char *const yes[] = { "true", "1", "yes", NULL };
	static const char *const no[] = { "false", "0", "no", NULL };
	size_t n, i;

	while (isspace((unsigned char)*s))
		s++;
	/* The whole word, trailing space allowed. */
	for (n = 0; s[n] != '\0' && !isspace((unsigned char)s[n]); n++)
		;
	for (i = n; s[i] != '\0'; i++)
		if (!isspace((unsigned char)s[i]))
			return -1;
	for (i = 0; yes[i] != NULL; i++)
		if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0)
			return 1;
	for (i = 0; no[i] != NULL; i++)
		if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0)
			return 0;
	return -1;
}

bool
wrm_thumbprint_normalize(const char *s, char out[41])
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		if (*s == ' ' || *s == ':')
			continue;
		if (!isxdigit((unsigned char)*s) || n == 40)
			return false;
		out[n++] = (char)toupper((unsigned char)*s);
	}
	out[n] = '\0';
	return n == 40;
}

bool
wrm_thumbprint_valid(const char *s)
{
	char t[41];

	return wrm_thumbprint_normalize(s, t);
}

int
wrm_parse_u64(const char *s, uint64_t *v_r)
{
	uint64_t v = 0;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return WRM_ERR_PARSE;
	for (; isdigit((unsigned char)*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return WRM_ERR_PARSE;
		v = v * 10 + d;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (*s != '\0')
		return WRM_ERR_PARSE;
	*v_r = v;
	return 0;
}

char *
wrm_strdup_trim(const char *s)
{
	const char *e;
	char *r;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	if ((r = malloc((size_t)(e - s) + 1)) == NULL)
		return NULL;
	memcpy(r, s, (size_t)(e - s));
	r[e - s] = '\0';
	return r;
}

char *
wrm_strdup0(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

bool
wrm_str_iprefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

void
wrm_freezero_str(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
