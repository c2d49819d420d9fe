/*
 * The lab's Kerberos realm (winrmd --lab DIR, when MIT krb5-kdc is
 * installed): a database, a keytab and configuration files in DIR/kdc, the
 * lab user's principal with the lab password, HTTP/ service principals for
 * the names a client on this host uses, and krb5kdc running as a child of
 * winrmd on a free loopback port until winrmd exits.
 *
 * Everything happens before the daemon first uses GSSAPI: on success
 * KRB5_CONFIG names the lab's krb5.conf in winrmd's environment.  Any
 * failure leaves Kerberos out of the lab, with the reason in
 * kdc->reason, and the rest of the lab starts as usual.
 */
#ifndef WRM_LAB_KDC_H
#define WRM_LAB_KDC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define WRM_LAB_REALM	"WINRMD.LAB"

/*
 * Files of the lab directory (lab.c): written whole through a new
 * temporary file and a rename; read whole when under 64 KiB (NULL if
 * missing or unreadable).
 */
int wrm_lab_write_file(const char *path, const void *data, size_t len,
    mode_t mode);
char *wrm_lab_read_small(const char *path);

struct wrm_lab_kdc {
	bool available;
	char *reason;		/* why not available, else NULL */
	char *dir;		/* DIR/kdc */
	char *krb5_conf;
	char *keytab;
	char *kdc;		/* "127.0.0.1:PORT" */
	char *principal;	/* user@REALM */
	char **spns;		/* HTTP/name@REALM */
	size_t n_spns;
};

/*
 * Set up the realm in labdir/kdc and start its KDC.  Returns 0 when
 * Kerberos is available; otherwise nonzero with kdc->reason set (the
 * caller goes on without Kerberos).
 */
int wrm_lab_kdc_start(struct wrm_lab_kdc *kdc, const char *labdir,
    const char *user, const char *password);
/* Stop the KDC if it runs (idempotent; also registered with atexit). */
void wrm_lab_kdc_stop(void);
void wrm_lab_kdc_free(struct wrm_lab_kdc *kdc);

#endif
