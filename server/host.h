/*
 * winrmd-host internals.  One process serves one shell (or, with
 * UseSharedProcess, the shells of one user on one configuration).  It runs
 * the plugin, owns the children through the plugin, and keeps every
 * command's output until the daemon confirms it reached the client.
 *
 * Objects (all owned by the host's loop thread):
 *   struct hshell   a shell; owns its commands and its shell-level target
 *   struct hcmd     a command; owns its target
 *   struct htarget  an output queue (chunks), the in-flight delivery and
 *                   the command state the plugin last reported
 *   struct hreq     one plugin operation (embeds struct wrm_request); it
 *                   answers one daemon request when completed, except the
 *                   long-lived RECEIVE requests, one per target
 *
 * Output delivery is two-phase: PULL moves chunks into the target's
 * in-flight delivery, COMMIT frees them once the daemon wrote the HTTP
 * response completely, ROLLBACK puts them back at the head.  At most one
 * delivery per target is in flight.
 */
#ifndef WRM_HOST_H
#define WRM_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include <winrmd/plugin.h>

#include "buf.h"
#include "evloop.h"
#include "hostproto.h"

struct hchunk {
	char *stream;
	uint8_t *data;
	size_t len;
	uint32_t flags;
	struct hchunk *next;
};

struct htarget {
	struct hshell *shell;
	struct hcmd *cmd;		/* NULL: shell-level */
	struct hchunk *head, *tail;
	size_t bytes;			/* queued + in flight */
	struct hchunk *inflight;	/* delivered, not yet committed */
	uint64_t inflight_id;
	bool inflight_done;		/* the delivery carried DONE */
	enum wrm_command_state state;	/* last state reported */
	bool state_fresh;		/* state not yet delivered */
	bool done;			/* plugin reported DONE */
	bool done_delivered;		/* DONE committed to a client */
	uint32_t exit_code;
	uint32_t done_flags;
	uint32_t error;			/* the plugin failed the command */
	char *error_msg;
	bool paused;			/* plugin was told FULL */
	bool drop;			/* BufferMode Drop while disconnected */
	uint64_t dropped;		/* chunks discarded by Drop */
	bool notify_pending;
	struct wrm_watch *notify_timer;
	struct hreq *receive_req;	/* the plugin's RECEIVE request */
};

struct hcmd {
	char *id;
	struct hshell *shell;
	void *ctx;
	bool ctx_reported;
	bool terminated;
	bool released;
	struct htarget out;
	struct hcmd *next;
};

struct hshell {
	char *id;
	void *ctx;
	bool ctx_reported;
	bool created;		/* shell() completed successfully */
	bool deleting;
	bool delete_setup;	/* host_on_delete still issuing signals */
	uint32_t delete_reqid;
	struct wrm_watch *delete_timer;
	struct htarget out;
	struct hcmd *cmds;
	struct hshell *next;
	/* strings for requests on this shell */
	char *user, *auth, *client_ip, *resource_uri, *locale, *data_locale;
};

enum hreq_kind {
	HREQ_SHELL, HREQ_COMMAND, HREQ_SEND, HREQ_RECEIVE, HREQ_SIGNAL,
	HREQ_CONNECT, HREQ_DELETE,
};

struct hreq {
	struct wrm_request pub;		/* must be first */
	enum hreq_kind kind;
	uint32_t reqid;			/* daemon request to answer; 0 none */
	struct hshell *shell;
	struct hcmd *cmd;
	struct htarget *target;		/* RECEIVE */
	bool completed;
	bool is_terminate;
	struct wrm_option *opts;
	char **strings;			/* owned strings to free */
	size_t n_strings;
	uint8_t *data;			/* owned inbound data */
	size_t len;
};

/* host-main.c */
extern struct wrm_loop *host_loop;
extern uint64_t host_buffer_limit;
void host_send(struct wrm_buf *b);
void host_reply(uint32_t reqid, uint32_t error, const char *message,
    const uint8_t *data, size_t len);
void host_maybe_exit(void);

/* host-shell.c */
extern const struct wrm_host_api host_api;
/* Load and start the plugin a SHELL_CREATE or PREPARE names. */
int host_plugin_ensure(const struct wrm_hmsg *m, bool warm, char *why,
    size_t whylen);
void host_on_shell_create(const struct wrm_hmsg *m);
void host_on_command(const struct wrm_hmsg *m);
void host_on_send(const struct wrm_hmsg *m);
void host_on_pull(const struct wrm_hmsg *m);
void host_on_signal(const struct wrm_hmsg *m);
void host_on_delete(const struct wrm_hmsg *m);
void host_on_connect(const struct wrm_hmsg *m);
/* HM_DISCONNECT / HM_RECONNECT: the shell's buffering rule. */
void host_on_buffering(const struct wrm_hmsg *m, bool disconnected);
void host_on_commit(const struct wrm_hmsg *m, bool commit);
size_t host_shell_count(void);
void host_shutdown_all(enum wrm_shutdown_reason reason);
void host_snapshot(struct wrm_buf *b);

#endif
