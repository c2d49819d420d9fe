/*
 * winrmd's daemon-wide state and the objects requests work on.
 *
 * Everything here belongs to the main loop thread.  Worker threads
 * (work.c) only run jobs that hand their result back through
 * wrm_loop_post().
 *
 * struct wrm_op is one WS-Management operation: the parsed envelope, who
 * asked, and where the answer goes.  It is created by http.c when a
 * request body is complete and authenticated, handed to the dispatch table
 * (wsman.c), and finished exactly once with wrm_op_reply() or
 * wrm_op_fault(), possibly later (a host reply, a parked Receive).  The
 * HTTP layer owns it and frees it when the response has been sent or the
 * connection died.
 */
#ifndef WRM_DAEMON_H
#define WRM_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "conf.h"
#include "evloop.h"
#include "fault.h"
#include "plugin-codes.h"
#include "soap.h"

struct wrm_store;
struct wrm_http_req;
struct wrm_shell;
struct wrm_command;
struct wrm_host;

/* Who is asking (filled by the authentication layer). */
struct wrm_identity {
	char *user;		/* as shown to clients (Owner) */
	char *local_user;	/* the Linux account shells run as */
	uid_t uid;
	gid_t gid;
	const char *mechanism;	/* "Basic", "Negotiate", ... */
	bool is_admin;
	bool denied;		/* authenticated, but not allowed to connect */
};

enum wrm_op_state {
	WRM_OP_NEW = 0,
	WRM_OP_WAITING,		/* waiting for a host reply or data */
	WRM_OP_DONE,		/* reply or fault recorded */
};

struct wrm_op {
	struct wrm_http_req *http;
	const char *action_name;	/* the dispatch table's short name */
	char *counted_user;		/* counted in MaxConcurrentOperations */
	/* Fault injection: rules that matched at HTTP level, and what the
	 * answer must do (inject.h kinds and their parameters). */
	uint32_t inject_mask;
	int inject_kind;
	uint64_t inject_delay_ms;
	uint64_t inject_trickle;
	unsigned inject_http_status;
	struct wrm_soap_req soap;
	const struct wrm_identity *who;
	const char *client_ip;
	const char *listener_url;	/* e.g. http://127.0.0.1:5985/wsman */
	bool utf16;
	uint64_t max_envelope;		/* effective response limit, bytes */
	uint64_t timeout_ms;		/* effective OperationTimeout */
	enum wrm_op_state state;
	/* Result */
	int http_status;
	struct wrm_buf out;
	/* Receive bookkeeping */
	struct wrm_shell *shell;	/* referenced shell (not owned) */
	struct wrm_command *cmd;
	struct wrm_timer *timer;
	uint64_t delivery;		/* host delivery to commit, 0 none */
	char *delivery_cmd;		/* its command id, NULL shell-level */
	char *delivery_shell;
	bool parked;
	bool pull_in_flight;
	struct wrm_op *next_parked;
	unsigned host_pending;		/* host requests not yet answered */
	bool orphaned;			/* the HTTP request is gone */
	bool cancelled;			/* timed out while a pull ran */
	uint64_t started;
};

/* Finish an operation (loop thread).  Consumes nothing from the caller. */
void wrm_op_reply(struct wrm_op *op);	/* op->out holds the envelope */
void wrm_op_fault(struct wrm_op *op, const struct wrm_fault_info *fi);
void wrm_op_fault_id(struct wrm_op *op, enum wrm_fault id);
void wrm_op_fault_msg(struct wrm_op *op, enum wrm_fault id, uint32_t code,
    const char *message);
/*
 * Bracket host requests made for an op: host_request_sent() before
 * sending, host_reply_begin() first thing in the reply callback; the
 * latter returns false (and may free op) when the client is gone, in which
 * case the callback must not touch op.
 */
void wrm_op_host_request_sent(struct wrm_op *op);
bool wrm_op_host_reply_begin(struct wrm_op *op);

struct wrm_daemon {
	struct wrm_conf *conf;
	struct wrm_loop *loop;
	struct wrm_store *store;
	char machine[256];
	char *run_dir;		/* host sockets */
	char *state_dir;
	char *plugin_dir;
	char *host_prog;
	bool user_mode;
	bool lab;
	uid_t uid;
	bool stopping;
	uint64_t next_delivery;
	char *config_path;
	int64_t started_wall;	/* ms since the epoch */
};

extern struct wrm_daemon D;

/* Per-process limits derived from the configuration. */
static inline uint64_t
wrm_max_envelope(void)
{
	return D.conf->service.max_envelope_size_kb * 1024;
}

#endif
