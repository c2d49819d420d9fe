/* Small helpers: ids, time, durations, strings. */
#ifndef WRM_MISC_H
#define WRM_MISC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WRM_GUID_STRLEN	36	/* without NUL */

/* A new random (version 4) GUID as 36 upper-case characters plus NUL. */
void wrm_guid_new(char out[WRM_GUID_STRLEN + 1]);
/*
 * Parse "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX", optionally prefixed by
 * "uuid:" and/or braced, into the 16 bytes of .NET's Guid.ToByteArray()
 * (first three groups little-endian).  Returns 0 or WRM_ERR_PARSE.
 */
int wrm_guid_parse_ms(const char *s, uint8_t out[16]);
/* Format 16 .NET-order bytes as text; upper selects the case. */
void wrm_guid_format_ms(const uint8_t in[16], bool upper,
    char out[WRM_GUID_STRLEN + 1]);
/* Normalise a GUID string (strip "uuid:", braces; upper-case) in place-ish. */
int wrm_guid_normalize(const char *s, char out[WRM_GUID_STRLEN + 1]);
/* Case-insensitive GUID comparison ignoring a "uuid:" prefix. */
bool wrm_guid_eq(const char *a, const char *b);

uint64_t wrm_now_ms(void);		/* CLOCK_MONOTONIC */
int64_t wrm_wall_ms(void);		/* CLOCK_REALTIME, ms since epoch */

/*
 * xs:duration "PnYnMnWnDTnHnMn.nS" (leading '-' is an error here) into
 * milliseconds; years are 365 days and months 30.  Saturates at
 * UINT64_MAX / 2.  Returns 0 or WRM_ERR_PARSE.
 */
int wrm_duration_parse(const char *s, uint64_t *ms_r);
/* "PT7200.000S" */
void wrm_duration_format_secs(uint64_t ms, char *out, size_t outlen);
/* "P0DT0H2M5S" */
void wrm_duration_format_dhms(uint64_t ms, char *out, size_t outlen);

/* TRUE/True/true/1/yes -> 1; FALSE/.../0/no -> 0; else -1. */
int wrm_parse_bool(const char *s);
/* Decimal unsigned integer, whole string, no sign; 0 or WRM_ERR_PARSE. */
int wrm_parse_u64(const char *s, uint64_t *v_r);

/*
 * Certificate thumbprints as Windows shows them: hex, any case, with
 * optional spaces or colons.  Normalized form: 40 upper-case digits.
 */
bool wrm_thumbprint_valid(const char *s);
/* Normalize into out (41 bytes); false if s is not a thumbprint. */
bool wrm_thumbprint_normalize(const char *s, char out[41]);

/* Copy of s without leading/trailing ASCII whitespace (malloc'd). */
char *wrm_strdup_trim(const char *s);
/* strdup that returns NULL for NULL. */
char *wrm_strdup0(const char *s);
bool wrm_str_iprefix(const char *s, const char *prefix);
/* Fill with random bytes from getrandom(2); aborts on failure. */
void wrm_random(void *p, size_t n);
/* Wipe and free a string; NULL is a no-op. */
void wrm_freezero_str(char *s);

#endif
