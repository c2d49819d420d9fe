/*
 * Client certificate authentication (HTTPS, the secprofile/https/mutual
 * Authorization value).  The chain the client presented in the TLS
 * handshake is verified against the listener's ClientCAFile (time,
 * signatures, the clientAuth key purpose) and mapped to a local account by
 * the [CertificateMapping] sections, as winrm/config/service/certmapping
 * does on Windows: the issuing CA's thumbprint and the certificate's UPN
 * (or e-mail) subject alternative name select the UserName.
 */
#ifndef WRM_AUTH_CERT_H
#define WRM_AUTH_CERT_H

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

struct wrm_conf;

struct wrm_cert_peer {
	const gnutls_datum_t *chain;	/* DER, leaf first, as sent */
	unsigned n;
	gnutls_x509_trust_list_t trust;	/* the listener's CAs, or NULL */
};

struct wrm_cert_match {
	char *user;		/* the mapping's UserName */
	char *subject;		/* the name that matched */
	char issuer[41];	/* thumbprint of the CA that matched */
};

/*
 * Verify and map.  0 fills m (free with wrm_cert_match_clear); otherwise
 * an error code and *why_r a static explanation for the audit log.
 */
int wrm_cert_map(const struct wrm_cert_peer *p, const struct wrm_conf *conf,
    struct wrm_cert_match *m, const char **why_r);
void wrm_cert_match_clear(struct wrm_cert_match *m);

/* Read a PEM CA bundle into a new trust list; NULL if none could be read. */
gnutls_x509_trust_list_t wrm_cert_trust_load(const char *path,
    const char *crl_path);

#endif
