/*
 * Lab mode (winrmd --lab DIR): a ready endpoint for tests and client CI.
 * DIR holds a generated configuration, the store with one lab user whose
 * password is stored as a crypt hash, a lab CA with the listeners'
 * certificates (one valid, and one per failure a client must be able to
 * report: wrong name, expired, self-signed, revoked), a CRL, a client
 * certificate for the lab user, a Kerberos realm when MIT krb5-kdc is
 * installed (lab-kdc.h), and lab.json describing it all (mode 0600: it
 * holds the password).  docs/lab.md describes the files and lab.json.
 */
#ifndef WRM_LAB_H
#define WRM_LAB_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "lab-kdc.h"

/* A listener that started, as lab.json reports it. */
struct wrm_lab_listener {
	char *name;
	char *url;
	char *certificate;	/* CertificateFile, or NULL for HTTP */
	bool tls;
};

struct wrm_lab {
	char *dir;
	char *config;
	char *cert;
	char *key;
	char *ca;		/* the lab CA (ca_file in lab.json) */
	char *client_cert;	/* the lab user's client certificate */
	char *client_key;
	char *certmap;		/* certmapping.conf, included by config */
	char *json;
	char *user;
	char *password;
	bool password_new;	/* made by this start */
	int port;		/* -1: from the configuration */
	char *crl;		/* ca.crl: the lab CA's CRL (PEM) */
	char *pfx;		/* client.pfx: client certificate, key, CA */
	char *run_conf;		/* lab-run.conf, made at each start */
	char client_thumb[41];	/* client_cert's SHA-1 thumbprint */
	struct wrm_lab_listener *listeners;
	size_t n_listeners;
	struct wrm_lab_kdc kdc;
};

/*
 * Create DIR and its files when missing, write lab-run.conf, start the
 * Kerberos realm when possible; fills lab.  Call before anything uses
 * GSSAPI: it may set KRB5_CONFIG.
 */
int wrm_lab_prepare(struct wrm_lab *lab);
/*
 * For each listener started, in lab mode (winrmd.c start_listeners):
 * lab.json reports its URL with the port it got.
 */
void wrm_lab_listener_started(struct wrm_lab *lab,
    const struct wrm_listener_conf *lc, bool tls, unsigned port);
/*
 * After the listeners started: write lab.json and print the summary.
 * Without wrm_lab_listener_started() calls, lab.json lists http_url and
 * https_url as the HTTP and HTTPS listeners.
 */
int wrm_lab_announce(struct wrm_lab *lab, const char *http_url,
    const char *https_url);
/* Stop what the lab started (the KDC).  Idempotent; also run at exit. */
void wrm_lab_stop(struct wrm_lab *lab);
void wrm_lab_free(struct wrm_lab *lab);

#endif
