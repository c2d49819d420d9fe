/*
 * Lab mode (winrmd --lab DIR): a ready endpoint for tests and client CI.
 * DIR holds a generated configuration, the store with one lab user whose
 * password is stored as a crypt hash, a lab CA with the listener's
 * certificate and a client certificate for the lab user, and lab.json
 * describing it all (mode 0600: it holds the password).
 */
#ifndef WRM_LAB_H
#define WRM_LAB_H

#include <stdint.h>

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
	int port;		/* -1: from the configuration */
};

/* Create DIR and its files when missing; fills lab. */
int wrm_lab_prepare(struct wrm_lab *lab);
/* After the listeners started: write lab.json and print the summary. */
int wrm_lab_announce(struct wrm_lab *lab, const char *http_url,
    const char *https_url);
void wrm_lab_free(struct wrm_lab *lab);

#endif
