/*
 * The state store (SQLite): lab users, shells and commands as they change
 * state, and the audit log.  All SQL lives in store.c.  WAL journal with
 * synchronous=NORMAL; the schema version is PRAGMA user_version and
 * migrations run in order at open.  Writes happen on state transitions,
 * never per Receive.
 *
 * Owner: the daemon's main loop (one connection; not thread-safe);
 * winrmctl opens its own.
 */
#ifndef WRM_STORE_H
#define WRM_STORE_H

#include <stdbool.h>
#include <stdint.h>

struct wrm_store;

/* A shell row; strings are owned by the row (wrm_store_shell_row_free). */
struct wrm_store_shell {
	char *id;
	char *name;
	char *owner;
	char *client_ip;
	char *configuration;
	char *resource_uri;
	char *state;		/* "Connected", "Disconnected", ... */
	int64_t created;	/* ms since epoch */
	int64_t last_activity;
	uint64_t idle_timeout_ms;
	uint64_t max_idle_timeout_ms;
	char *buffer_mode;
	int64_t host_pid;
	char *host_socket;
	char *session_id;
	char *locale;
	char *data_locale;
	bool compression;
	char *input_streams;
	char *output_streams;
	uint64_t uid;
};

struct wrm_store_user {
	char *name;
	int64_t created;
	char *nt_hash;		/* 32 hex digits, or NULL */
};

struct wrm_store_audit {
	int64_t id;
	int64_t ts;
	char *event;
	char *detail;
};

int wrm_store_open(const char *path, bool readonly, struct wrm_store **st_r);
void wrm_store_close(struct wrm_store *st);
int wrm_store_schema_version(struct wrm_store *st);

int wrm_store_user_set(struct wrm_store *st, const char *name,
    const char *hash, const char *nt_hash, bool create_only);
int wrm_store_user_get_hash(struct wrm_store *st, const char *name,
    char **hash_r);
int wrm_store_user_del(struct wrm_store *st, const char *name);
int wrm_store_user_list(struct wrm_store *st, struct wrm_store_user **u_r,
    size_t *n_r);
void wrm_store_user_list_free(struct wrm_store_user *u, size_t n);

int wrm_store_shell_put(struct wrm_store *st, const struct wrm_store_shell *s);
int wrm_store_shell_set_state(struct wrm_store *st, const char *id,
    const char *state, int64_t last_activity);
int wrm_store_shell_del(struct wrm_store *st, const char *id);
int wrm_store_shell_list(struct wrm_store *st, struct wrm_store_shell **s_r,
    size_t *n_r);
void wrm_store_shell_row_free(struct wrm_store_shell *s);
void wrm_store_shell_list_free(struct wrm_store_shell *s, size_t n);

int wrm_store_command_put(struct wrm_store *st, const char *shell_id,
    const char *command_id, const char *command_line, const char *state);
int wrm_store_command_del(struct wrm_store *st, const char *shell_id,
    const char *command_id);

int wrm_store_audit_add(struct wrm_store *st, const char *event,
    const char *detail);
int wrm_store_audit_list(struct wrm_store *st, int64_t since_id, size_t max,
    struct wrm_store_audit **a_r, size_t *n_r);
void wrm_store_audit_list_free(struct wrm_store_audit *a, size_t n);
/* Remove the audit entries older than before_ms (wall clock, ms). */
int wrm_store_audit_prune(struct wrm_store *st, int64_t before_ms,
    int64_t *removed);

/* Passive WAL checkpoint (call off the request path). */
int wrm_store_checkpoint(struct wrm_store *st);

#endif
