/*
 * HTTP listeners (libmicrohttpd in external-epoll mode inside winrmd's own
 * loop).  One MHD daemon per [Listener].  A request body is collected up
 * to MaxEnvelopeSizekb (413 beyond), authenticated (auth.h), parsed and
 * dispatched (wsman.h).  An operation that cannot answer at once suspends
 * its connection; wrm_http_resume() wakes it when the operation is done.
 *
 * Owner: http.c owns listeners, connections (struct wrm_http_conn, one per
 * TCP connection: authentication contexts live there) and requests
 * (struct wrm_http_req, freed by MHD's completion callback).
 */
#ifndef WRM_HTTP_H
#define WRM_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "conf.h"
#include "daemon.h"

struct wrm_listener;

int wrm_http_start(struct wrm_listener_conf *lc, struct wrm_listener **l_r);
void wrm_http_stop(struct wrm_listener *l);
/* The metrics listener ("ADDRESS:PORT"), stopped with the others. */
int wrm_http_start_metrics(const char *spec);
void wrm_http_stop_metrics(void);
/*
 * SIGHUP: read the certificate, key and ClientCAFile again from lc (the
 * reloaded configuration's listener of the same name).  Connections keep
 * running; new handshakes get the new certificate.  On error the listener
 * keeps what it had.
 */
int wrm_http_reload(struct wrm_listener *l, const struct wrm_listener_conf *lc);
uint16_t wrm_http_port(const struct wrm_listener *l);
bool wrm_http_is_tls(const struct wrm_listener *l);
const char *wrm_http_name(const struct wrm_listener *l);

/* The operation's answer is ready (called by wrm_op_reply/fault). */
void wrm_http_op_done(struct wrm_op *op);
/* Answer every suspended request with a fault (daemon stop). */
void wrm_http_abort_all(void);
size_t wrm_http_active_requests(void);

#endif
