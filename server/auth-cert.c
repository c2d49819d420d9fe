#include "config.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth-cert.h"
#include "conf.h"
#include "err.h"
#include "log.h"
#include "misc.h"

#define MAX_CHAIN	8
#define MAX_PATH	(MAX_CHAIN + 4)
#define MAX_NAMES	16
#define OID_MS_UPN	"1.3.6.1.4.1.311.20.2.3"

gnutls_x509_trust_list_t
wrm_cert_trust_load(const char *path, const char *crl_path)
{
	gnutls_x509_trust_list_t tl;

	if (path == NULL || *path == '\0' ||
	    gnutls_x509_trust_list_init(&tl, 0) < 0)
		return NULL;
	if (gnutls_x509_trust_list_add_trust_file(tl, path, NULL,
	    GNUTLS_X509_FMT_PEM, 0, 0) <= 0) {
		gnutls_x509_trust_list_deinit(tl, 1);
		return NULL;
	}
	/* Only CRLs a trusted CA signed are kept (GNUTLS_TL_VERIFY_CRL). */
	if (crl_path != NULL && *crl_path != '\0' &&
	    gnutls_x509_trust_list_add_trust_file(tl, NULL, crl_path,
	    GNUTLS_X509_FMT_PEM, GNUTLS_TL_VERIFY_CRL, 0) <= 0) {
		error("%s: no CRL signed by a ClientCAFile authority",
		    crl_path);
		gnutls_x509_trust_list_deinit(tl, 1);
		return NULL;
	}
	return tl;
}

void
wrm_cert_match_clear(struct wrm_cert_match *m)
{
	free(m->user);
	free(m->subject);
	memset(m, 0, sizeof(*m));
}

/*
 * The UTF8String inside an otherName value, with or without its [0]
 * EXPLICIT wrapper.  Short-form and one- or two-byte long-form lengths.
 */
static char *
der_utf8(const unsigned char *p, size_t n)
{
	size_t len, hl;

	while (n >= 2) {
		len = p[1];
		hl = 2;
		if (len == 0x81 && n >= 3) {
			len = p[2];
			hl = 3;
		} else if (len == 0x82 && n >= 4) {
			len = (size_t)p[2] << 8 | p[3];
			hl = 4;
		} else if (len >= 0x80)
			return NULL;
		if (hl + len > n)
			return NULL;
		if (p[0] == 0x0c)
			return memchr(p + hl, '\0', len) != NULL ? NULL :
			    strndup((const char *)p + hl, len);
		if (p[0] != 0xa0)
			return NULL;
		p += hl;
		n = len;
	}
	return NULL;
}

/* UPN and e-mail subject alternative names, lower-cased. */
static size_t
subject_names(gnutls_x509_crt_t crt, char **names, size_t max)
{
	unsigned char buf[1024];
	char oid[128];
	size_t size, osize, n = 0;
	unsigned seq, crit;
	char *v, *c;
	int t;

	for (seq = 0; n < max; seq++) {
		size = sizeof(buf) - 1;
		t = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &size,
		    &crit);
		if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (t < 0)
			continue;
		v = NULL;
		if (t == GNUTLS_SAN_OTHERNAME_MSUSERPRINCIPAL ||
		    t == GNUTLS_SAN_RFC822NAME) {
			if (memchr(buf, '\0', size) == NULL)
				v = strndup((char *)buf, size);
		} else if (t == GNUTLS_SAN_OTHERNAME) {
			osize = sizeof(oid);
			if (gnutls_x509_crt_get_subject_alt_othername_oid(crt,
			    seq, oid, &osize) >= 0 &&
			    strcmp(oid, OID_MS_UPN) == 0)
				v = der_utf8(buf, size);
		}
		if (v == NULL)
			continue;
		if (*v == '\0') {
			free(v);
			continue;
		}
		for (c = v; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		names[n++] = v;
	}
	return n;
}

/* "*" matches anything; "*x" matches names ending in x; else equal. */
static int
subject_matches(const char *pattern, const char *name)
{
	size_t pl = strlen(pattern), nl = strlen(name);

	if (strcmp(pattern, "*") == 0)
		return 1;
	if (pattern[0] == '*')
		return nl >= pl - 1 &&
		    strcasecmp(name + nl - (pl - 1), pattern + 1) == 0 ? 1 : 0;
	return strcasecmp(pattern, name) == 0 ? 2 : 0;
}

static bool
thumbprint(gnutls_x509_crt_t crt, char out[41])
{
	unsigned char d[20];
	size_t n = sizeof(d), i;

	if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA1, d, &n) < 0 ||
	    n != sizeof(d))
		return false;
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02X", d[i]);
	return true;
}

/*
 * The thumbprints of the CAs on the verified path above the leaf.  Only a
 * certificate that really signed the one below it counts: a client may send
 * extra certificates that verification ignores, and those must not be
 * offered to the mapping as issuers.  Past the certificates the client sent,
 * the path continues through the trust list up to a self-issued root.
 */
static size_t
issuer_path(gnutls_x509_trust_list_t trust, gnutls_x509_crt_t *chain,
    unsigned nc, char cas[][41])
{
	gnutls_x509_crt_t cur = chain[0], owned = NULL, next;
	unsigned used[MAX_CHAIN] = { 0 }, i, st;
	size_t n = 0;

	while (n < MAX_PATH) {
		next = NULL;
		if (gnutls_x509_trust_list_get_issuer(trust, cur, &next,
		    GNUTLS_TL_GET_COPY) >= 0 && next != NULL) {
			if (gnutls_x509_crt_equals(cur, next)) {
				gnutls_x509_crt_deinit(next);
				break;	/* a trusted root: done */
			}
		} else {
			next = NULL;
			for (i = 1; i < nc && next == NULL; i++) {
				if (used[i] || !gnutls_x509_crt_check_issuer(
				    cur, chain[i]))
					continue;
				st = 1;
				if (gnutls_x509_crt_verify(cur, &chain[i], 1,
				    GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &st) >= 0
				    && st == 0) {
					used[i] = 1;
					next = chain[i];
				}
			}
			if (next == NULL)
				break;
		}
		if (!thumbprint(next, cas[n]))
			break;
		n++;
		if (owned != NULL)
			gnutls_x509_crt_deinit(owned);
		owned = NULL;
		for (i = 1; i < nc; i++)
			if (next == chain[i])
				break;
		if (i == nc)
			owned = next;	/* a trust list copy */
		cur = next;
		if (gnutls_x509_crt_check_issuer(cur, cur))
			break;		/* self-issued */
	}
	if (owned != NULL)
		gnutls_x509_crt_deinit(owned);
	return n;
}

int
wrm_cert_map(const struct wrm_cert_peer *p, const struct wrm_conf *conf,
    struct wrm_cert_match *m, const char **why_r)
{
	gnutls_x509_crt_t chain[MAX_CHAIN];
	gnutls_typed_vdata_st purpose = { GNUTLS_DT_KEY_PURPOSE_OID,
	    (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 };
	char cas[MAX_PATH][41], want[41], *names[MAX_NAMES];
	size_t n_cas = 0, n_names = 0, i, j, k;
	unsigned nc = 0, status = 0;
	int best = 0, score, r = WRM_ERR_AUTH;
	const struct wrm_certmap_conf *hit = NULL;
	const char *hit_name = NULL, *hit_ca = NULL;

	memset(m, 0, sizeof(*m));
	*why_r = "no client certificate";
	if (p == NULL || p->n == 0)
		return WRM_ERR_AUTH;
	*why_r = "the listener has no ClientCAFile";
	if (p->trust == NULL)
		return WRM_ERR_AUTH;
	*why_r = "unreadable client certificate chain";
	for (nc = 0; nc < p->n && nc < MAX_CHAIN; nc++) {
		if (gnutls_x509_crt_init(&chain[nc]) < 0)
			goto out;
		if (gnutls_x509_crt_import(chain[nc], &p->chain[nc],
		    GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(chain[nc]);
			goto out;
		}
	}
	if (gnutls_x509_trust_list_verify_crt2(p->trust, chain, nc, &purpose,
	    1, 0, &status, NULL) < 0 || status != 0) {
		gnutls_datum_t txt = { NULL, 0 };

		if (gnutls_certificate_verification_status_print(status,
		    GNUTLS_CRT_X509, &txt, 0) >= 0 && txt.data != NULL)
			verbose("client certificate: %s", (char *)txt.data);
		gnutls_free(txt.data);
		*why_r = status & GNUTLS_CERT_REVOKED ? "client certificate "
		    "revoked" : status & GNUTLS_CERT_EXPIRED ? "client "
		    "certificate expired" : status & GNUTLS_CERT_NOT_ACTIVATED ? "client "
		    "certificate not yet valid" : status &
		    GNUTLS_CERT_PURPOSE_MISMATCH ? "client certificate is not "
		    "for client authentication" : "client certificate not "
		    "issued by a ClientCAFile authority";
		goto out;
	}
	n_cas = issuer_path(p->trust, chain, nc, cas);
	n_names = subject_names(chain[0], names, MAX_NAMES);
	*why_r = "the client certificate has no UPN or e-mail name";
	if (n_names == 0)
		goto out;
	for (i = 0; i < conf->n_certmaps; i++) {
		const struct wrm_certmap_conf *cm = &conf->certmaps[i];

		if (!cm->enabled || !wrm_thumbprint_normalize(cm->issuer, want))
			continue;
		for (j = 0; j < n_cas; j++) {
			if (strcmp(cas[j], want) != 0)
				continue;
			for (k = 0; k < n_names; k++) {
				score = subject_matches(cm->subject, names[k]);
				if (score > best) {
					best = score;
					hit = cm;
					hit_name = names[k];
					hit_ca = cas[j];
				}
			}
		}
	}
	*why_r = "no CertificateMapping for this certificate";
	if (hit == NULL)
		goto out;
	m->user = strdup(hit->user_name);
	m->subject = strdup(hit_name);
	memcpy(m->issuer, hit_ca, sizeof(m->issuer));
	if (m->user == NULL || m->subject == NULL) {
		wrm_cert_match_clear(m);
		*why_r = "out of memory";
		r = WRM_ERR_ALLOC;
		goto out;
	}
	*why_r = NULL;
	r = 0;
out:
	for (i = 0; i < n_names; i++)
		free(names[i]);
	for (i = 0; i < nc; i++)
		gnutls_x509_crt_deinit(chain[i]);
	return r;
}
