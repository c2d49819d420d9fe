/*
 * Shells and commands as the daemon sees them, and their hosts.
 *
 * A shell lives in a winrmd-host process (struct wrm_host) reached over
 * a Unix socket.  The daemon keeps the metadata clients read (Create,
 * Enumerate), the commands' states, and the parked Receives; the output
 * itself stays in the host until a response carrying it was written.
 *
 * Shell states:
 *
 *	CREATING --host created it--> CONNECTED --Delete--> CLOSING --> (freed)
 *	CREATING --host failed--> (freed; Create faults)
 *	any --host process died--> BROKEN --Delete--> (freed)
 *
 * Command states:
 *
 *	STARTING --host started it--> RUNNING --Done delivered--> DONE
 *	RUNNING/DONE --Signal terminate--> (freed)
 *	STARTING --host failed--> (freed; Command faults)
 *
 * Invariants: at most one parked Receive per command and one per shell
 * (shell-level stream); a parked Receive always has a timer; a shell in
 * CLOSING or BROKEN has no parked Receives.
 */
#ifndef WRM_SHELL_H
#define WRM_SHELL_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon.h"
#include "hostproto.h"

enum wrm_shell_state {
	WRM_SHELL_CREATING = 0,
	WRM_SHELL_CONNECTED,
	WRM_SHELL_DISCONNECTED,
	WRM_SHELL_CLOSING,
	WRM_SHELL_BROKEN,
};

enum wrm_cmd_state {
	WRM_CMD_STARTING = 0,
	WRM_CMD_RUNNING,
	WRM_CMD_DONE,
};

struct wrm_command {
	char *id;
	char *command_line;
	enum wrm_cmd_state state;
	struct wrm_shell *shell;
	struct wrm_op *parked;		/* parked Receive, or NULL */
	bool output_ready;		/* host said output is waiting */
	struct wrm_command *next;
};

struct wrm_env_pair {
	char *name;
	char *value;
};

struct wrm_shell {
	char *id;			/* upper-case GUID */
	char *name;
	char *owner;
	char *local_user;
	uid_t uid;
	char *client_ip;
	char *config;			/* session configuration name */
	char *resource_uri;
	char *plugin;
	bool is_winrs;			/* the WinRS cmd shell */
	enum wrm_shell_state state;
	int64_t created;		/* wall ms */
	uint64_t last_activity;		/* monotonic ms */
	uint64_t idle_timeout_ms;
	uint64_t max_idle_timeout_ms;
	char *buffer_mode;
	char *input_streams;
	char *output_streams;
	char *locale;
	char *data_locale;
	char *session_id;
	char *workdir;
	struct wrm_env_pair *env;
	size_t n_env;
	bool compression;
	bool profile_loaded;
	struct wrm_host *host;
	struct wrm_command *cmds;
	size_t n_cmds;
	struct wrm_op *parked;		/* shell-level parked Receive */
	bool output_ready;
	struct wrm_timer *idle_timer;
	struct wrm_shell *next;
};

/* A winrmd-host process and its control connection. */
struct wrm_host {
	pid_t pid;
	char *socket_path;
	struct wrm_hconn *conn;
	uint32_t next_reqid;
	struct wrm_pending *pending;	/* requests awaiting a REPLY */
	size_t n_shells;
	unsigned hold;			/* callbacks running: do not free */
	bool dead;
	/* UseSharedProcess: whose shells it takes, and its idle timer. */
	bool shared;
	char *owner, *config, *locale;
	struct wrm_timer *idle_timer;
	struct wrm_host *next;
};

typedef void (*wrm_host_reply_fn)(struct wrm_host *h,
    const struct wrm_hmsg *m, void *arg);

/* shell.c */
struct wrm_shell *wrm_shell_find(const char *id);
struct wrm_shell *wrm_shell_first(void);
struct wrm_command *wrm_command_find(struct wrm_shell *sh, const char *id);
size_t wrm_shell_count_user(const char *owner, const char *config);
size_t wrm_shell_count_users(const char *config, const char *owner_excl);
int wrm_shell_create(struct wrm_op *op, struct wrm_shell *sh,
    const struct wrm_session_conf *sc, const uint8_t *inbound, size_t len);
void wrm_shell_free(struct wrm_shell *sh);
void wrm_shell_touch(struct wrm_shell *sh);
const char *wrm_shell_state_name(enum wrm_shell_state s);
void wrm_shell_broken(struct wrm_shell *sh);
/* Record the shell's row (state, timeouts, host) in the store. */
void wrm_shell_store(struct wrm_shell *sh);
/* An IdleTimeOut a client asked for, within MinIdleTimeoutms and the
 * configuration's MaxIdleTimeoutms. */
uint64_t wrm_shell_clamp_idle(const struct wrm_shell *sh, uint64_t ms);
/* wsman-disconnect.c: mark sh Disconnected (why: "client", "idle"...). */
void wrm_shell_disconnected(struct wrm_shell *sh, const char *why);
/* Delete a shell the service gave up on (idle), as Delete would. */
void wrm_shell_expire(struct wrm_shell *sh, const char *why);
/* A request's options as HT_OPT_* fields of a host message. */
int wrm_put_request_options(struct wrm_buf *b, const struct wrm_op *op);
/* For metrics: live hosts, unused warm hosts, parked Receives. */
size_t wrm_hosts_count(void);
size_t wrm_warm_count_all(void);
size_t wrm_parked_count(void);
/* Start the once-a-second sweep for idle shells. */
void wrm_shells_start_sweep(void);
void wrm_command_remove(struct wrm_command *cmd);

/* Send a request to sh's host; fn(arg) gets the REPLY (or a synthesized
 * failure when the host dies).  Encoded by the callback-free builder. */
int wrm_host_request(struct wrm_host *h, struct wrm_buf *b, uint32_t reqid,
    wrm_host_reply_fn fn, void *arg);
uint32_t wrm_host_next_reqid(struct wrm_host *h);
void wrm_host_send_noreply(struct wrm_host *h, struct wrm_buf *b);
/* Forget every pending callback whose arg is arg (its op went away). */
void wrm_host_forget(struct wrm_host *h, void *arg);
void wrm_hosts_shutdown(void);
/* Stop every warm host (configuration reload, daemon stop). */
void wrm_warm_flush(void);
void wrm_shells_restore(void);

/* Events from hosts (wsman-receive.c) */
void wrm_receive_output_ready(struct wrm_shell *sh, struct wrm_command *cmd);
void wrm_receive_shell_gone(struct wrm_shell *sh);
/* Answer the shell's parked Receives (it is being disconnected). */
void wrm_receive_release(struct wrm_shell *sh);

/* Reply helpers */
uint32_t wrm_hreply_error(const struct wrm_hmsg *m, char **message_r);

#endif
