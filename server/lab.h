/*
 * Lab mode (winrmd --lab DIR): a ready endpoint for tests and client CI.
 * DIR holds a generated configuration, the store with one lab user whose
 * password is stored as a crypt hash, a self-signed certificate, and
 * lab.json describing it all (mode 0600: it holds the password).
 */
#ifndef WRM_LAB_H
#define WRM_LAB_H

#include <stdint.h>

struct wrm_lab {
	char *dir;
	char *config;
	char *cert;
	char *key;
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
/* Generate a self-signed certificate for localhost into the two files. */
int wrm_lab_make_cert(const char *cert_path, const char *key_path,
    const char *cn);

#endif
