/*
 * WS-Management dispatch: one table from the request's Action URI to its
 * handler.  Common header checks (ResourceURI, OperationTimeout,
 * MaxEnvelopeSize, options) happen once, before the handler runs.
 */
#ifndef WRM_WSMAN_H
#define WRM_WSMAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"

struct wrm_http_req;

struct wrm_op *wsman_op_new(struct wrm_http_req *http,
    const struct wrm_identity *who, const char *client_ip,
    const char *listener_url, bool utf16);
/* Parse body and run the handler; the op finishes now or later. */
void wsman_dispatch(struct wrm_op *op, const uint8_t *body, size_t len);
/* The HTTP response went out (ok) or failed; commit or roll back. */
void wsman_op_finished(struct wrm_op *op, bool ok);
/* Answer now with a fault because the daemon stops. */
void wsman_op_abort(struct wrm_op *op);
void wsman_op_free(struct wrm_op *op);
/* Quick check for an unauthenticated Identify body. */
/*
 * Whether body is an Identify (the one request answered without
 * authentication); when it is, req holds it for wsman_dispatch_identify,
 * which takes it over (so the envelope is parsed once).
 */
bool wsman_parse_identify(const uint8_t *body, size_t len, bool utf16,
    struct wrm_soap_req *req);
void wsman_dispatch_identify(struct wrm_op *op, struct wrm_soap_req *req);

/* Handlers (one file per family). */
void wsman_identify(struct wrm_op *op);
void wsman_get(struct wrm_op *op);
void wsman_put(struct wrm_op *op);
/* wsman-config.c: winrm/config resources; false when uri is not one. */
bool wsman_config_get(struct wrm_op *op);
bool wsman_config_put(struct wrm_op *op);
/* StateDirectory/winrm-config.conf when it exists (malloc'd), else NULL. */
char *wsman_config_put_file(const char *state_dir);
struct wrm_listener_conf;
int wsman_put_listener(struct wrm_buf *b, const struct wrm_listener_conf *l);
int wsman_put_plugin(struct wrm_buf *b, const struct wrm_session_conf *sc);
void wsman_create(struct wrm_op *op);
void wsman_delete(struct wrm_op *op);
void wsman_command(struct wrm_op *op);
void wsman_send(struct wrm_op *op);
void wsman_signal(struct wrm_op *op);
void wsman_receive(struct wrm_op *op);
void wsman_enumerate(struct wrm_op *op);
void wsman_pull(struct wrm_op *op);
void wsman_release(struct wrm_op *op);
void wsman_disconnect(struct wrm_op *op);
void wsman_reconnect(struct wrm_op *op);
void wsman_connect(struct wrm_op *op);

/* Helpers shared by handlers. */
struct wrm_shell;
/* The shell the request's ShellId selector names; faults and NULL if not. */
struct wrm_shell *wsman_op_shell(struct wrm_op *op);
/* Cancel a parked Receive (timer, parking). */
void wsman_receive_unpark(struct wrm_op *op);
void wsman_enum_expire_all(void);
/* One rsp:Shell description (full: the PowerShell field set; extra:
 * MemoryUsed and ChildProcesses, as Get and Enumerate have). */
int wsman_put_shell(struct wrm_buf *b, const struct wrm_shell *sh, bool full,
    bool extra);

#endif
