#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "misc.h"
#include "store.h"
#include "store-schema.h"

enum stmt_id {
	S_USER_INSERT, S_USER_UPSERT, S_USER_GET, S_USER_DEL, S_USER_LIST,
	S_SHELL_PUT, S_SHELL_STATE, S_SHELL_DEL, S_SHELL_LIST,
	S_CMD_PUT, S_CMD_DEL, S_AUDIT_ADD, S_AUDIT_LIST, S_AUDIT_PRUNE,
	S_MAX_
};

static const char *const stmt_sql[S_MAX_] = {
	[S_USER_INSERT] = "INSERT INTO users(name, hash, created, nt_hash) "
	    "VALUES (?1, ?2, ?3, ?4)",
	[S_USER_UPSERT] = "INSERT INTO users(name, hash, created, nt_hash) "
	    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET "
	    "hash = ?2, nt_hash = ?4",
	[S_USER_GET] = "SELECT hash FROM users WHERE name = ?1",
	[S_USER_DEL] = "DELETE FROM users WHERE name = ?1",
	[S_USER_LIST] = "SELECT name, created, nt_hash FROM users ORDER BY name",
	[S_SHELL_PUT] = "INSERT OR REPLACE INTO shells(id, name, owner, "
	    "client_ip, configuration, resource_uri, state, created, "
	    "last_activity, idle_timeout_ms, max_idle_timeout_ms, buffer_mode, "
	    "host_pid, host_socket, session_id, locale, data_locale, "
	    "compression, input_streams, output_streams, uid) VALUES (?1, ?2, "
	    "?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
	    "?17, ?18, ?19, ?20, ?21)",
	[S_SHELL_STATE] = "UPDATE shells SET state = ?2, last_activity = ?3 "
	    "WHERE id = ?1",
	[S_SHELL_DEL] = "DELETE FROM shells WHERE id = ?1",
	[S_SHELL_LIST] = "SELECT id, name, owner, client_ip, configuration, "
	    "resource_uri, state, created, last_activity, idle_timeout_ms, "
	    "max_idle_timeout_ms, buffer_mode, host_pid, host_socket, "
	    "session_id, locale, data_locale, compression, input_streams, "
	    "output_streams, uid FROM shells ORDER BY created",
	[S_CMD_PUT] = "INSERT OR REPLACE INTO commands(shell_id, id, "
	    "command_line, state, created) VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_CMD_DEL] = "DELETE FROM commands WHERE shell_id = ?1 AND id = ?2",
	[S_AUDIT_ADD] = "INSERT INTO audit(ts, event, detail) "
	    "VALUES (?1, ?2, ?3)",
	[S_AUDIT_LIST] = "SELECT id, ts, event, detail FROM audit "
	    "WHERE id > ?1 ORDER BY id LIMIT ?2",
	[S_AUDIT_PRUNE] = "DELETE FROM audit WHERE ts < ?1",
};

struct wrm_store {
	sqlite3 *db;
	sqlite3_stmt *st[S_MAX_];
	bool readonly;
};

static int
db_err(struct wrm_store *st, const char *what)
{
	error("store: %s: %s", what, sqlite3_errmsg(st->db));
	return WRM_ERR_STORE;
}

static int
exec_sql(struct wrm_store *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		error("store: %s", msg ? msg : "exec failed");
		sqlite3_free(msg);
		return WRM_ERR_STORE;
	}
	return 0;
}

static int
migrate(struct wrm_store *st)
{
	sqlite3_stmt *s;
	int version, target = (int)(sizeof(migrations) / sizeof(migrations[0]));
	char pragma[64];

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s,
	    NULL) != SQLITE_OK)
		return db_err(st, "user_version");
	version = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	if (version > target) {
		error("store: schema version %d is newer than this program "
		    "(%d)", version, target);
		return WRM_ERR_VERSION;
	}
	if (version == target)
		return 0;
	if (st->readonly)
		return WRM_ERR_VERSION;
	if (exec_sql(st, "BEGIN IMMEDIATE") != 0)
		return WRM_ERR_STORE;
	for (; version < target; version++) {
		if (exec_sql(st, migrations[version]) != 0) {
			exec_sql(st, "ROLLBACK");
			return WRM_ERR_STORE;
		}
	}
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", target);
	if (exec_sql(st, pragma) != 0 || exec_sql(st, "COMMIT") != 0) {
		exec_sql(st, "ROLLBACK");
		return WRM_ERR_STORE;
	}
	return 0;
}

int
wrm_store_open(const char *path, bool readonly, struct wrm_store **st_r)
{
	struct wrm_store *st;
	int flags, i, r;

	*st_r = NULL;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return WRM_ERR_ALLOC;
	st->readonly = readonly;
	flags = readonly ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_NOMUTEX,
	    NULL) != SQLITE_OK) {
		error("store: open %s: %s", path, st->db ?
		    sqlite3_errmsg(st->db) : "out of memory");
		wrm_store_close(st);
		return WRM_ERR_STORE;
	}
	sqlite3_busy_timeout(st->db, 5000);
	if ((!readonly && (exec_sql(st, "PRAGMA journal_mode = WAL") != 0 ||
	    exec_sql(st, "PRAGMA synchronous = NORMAL") != 0)) ||
	    exec_sql(st, "PRAGMA foreign_keys = ON") != 0 ||
	    (r = migrate(st)) != 0) {
		wrm_store_close(st);
		return WRM_ERR_STORE;
	}
	for (i = 0; i < S_MAX_; i++) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &st->st[i], NULL) != SQLITE_OK) {
			r = db_err(st, stmt_sql[i]);
			wrm_store_close(st);
			return r;
		}
	}
	*st_r = st;
	return 0;
}

void
wrm_store_close(struct wrm_store *st)
{
	int i;

	if (st == NULL)
		return;
	for (i = 0; i < S_MAX_; i++)
		sqlite3_finalize(st->st[i]);
	sqlite3_close(st->db);
	free(st);
}

int
wrm_store_schema_version(struct wrm_store *st)
{
	(void)st;
	return (int)(sizeof(migrations) / sizeof(migrations[0]));
}

/* Run a write statement whose parameters are bound; resets it. */
static int
step_done(struct wrm_store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_CONSTRAINT)
		return WRM_ERR_EXISTS;
	if (rc != SQLITE_DONE)
		return db_err(st, what);
	return 0;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

static char *
col_dup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t != NULL ? strdup((const char *)t) : NULL;
}

int
wrm_store_user_set(struct wrm_store *st, const char *name,
    const char *hash, const char *nt_hash, bool create_only)
{
	sqlite3_stmt *s = st->st[create_only ? S_USER_INSERT : S_USER_UPSERT];

	bind_text(s, 1, name);
	bind_text(s, 2, hash);
	sqlite3_bind_int64(s, 3, wrm_wall_ms());
	bind_text(s, 4, nt_hash);
	return step_done(st, s, "user set");
}

int
wrm_store_user_get_hash(struct wrm_store *st, const char *name,
    char **hash_r)
{
	sqlite3_stmt *s = st->st[S_USER_GET];
	int rc, r = WRM_ERR_NOT_FOUND;

	*hash_r = NULL;
	bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*hash_r = col_dup(s, 0);
		r = *hash_r != NULL ? 0 : WRM_ERR_ALLOC;
	} else if (rc != SQLITE_DONE)
		r = db_err(st, "user get");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return r;
}

int
wrm_store_user_del(struct wrm_store *st, const char *name)
{
	int r;

	bind_text(st->st[S_USER_DEL], 1, name);
	if ((r = step_done(st, st->st[S_USER_DEL], "user del")) != 0)
		return r;
	return sqlite3_changes(st->db) > 0 ? 0 : WRM_ERR_NOT_FOUND;
}

int
wrm_store_user_list(struct wrm_store *st, struct wrm_store_user **u_r,
    size_t *n_r)
{
	sqlite3_stmt *s = st->st[S_USER_LIST];
	struct wrm_store_user *u = NULL, *nu;
	size_t n = 0;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((nu = realloc(u, (n + 1) * sizeof(*u))) == NULL) {
			wrm_store_user_list_free(u, n);
			sqlite3_reset(s);
			return WRM_ERR_ALLOC;
		}
		u = nu;
		u[n].name = col_dup(s, 0);
		u[n].created = sqlite3_column_int64(s, 1);
		u[n].nt_hash = col_dup(s, 2);
		n++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		wrm_store_user_list_free(u, n);
		return db_err(st, "user list");
	}
	*u_r = u;
	*n_r = n;
	return 0;
}

void
wrm_store_user_list_free(struct wrm_store_user *u, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(u[i].name);
		if (u[i].nt_hash != NULL)
			explicit_bzero(u[i].nt_hash, strlen(u[i].nt_hash));
		free(u[i].nt_hash);
	}
	free(u);
}

int
wrm_store_shell_put(struct wrm_store *st, const struct wrm_store_shell *sh)
{
	sqlite3_stmt *s = st->st[S_SHELL_PUT];

	bind_text(s, 1, sh->id);
	bind_text(s, 2, sh->name);
	bind_text(s, 3, sh->owner);
	bind_text(s, 4, sh->client_ip);
	bind_text(s, 5, sh->configuration);
	bind_text(s, 6, sh->resource_uri);
	bind_text(s, 7, sh->state);
	sqlite3_bind_int64(s, 8, sh->created);
	sqlite3_bind_int64(s, 9, sh->last_activity);
	sqlite3_bind_int64(s, 10, (sqlite3_int64)sh->idle_timeout_ms);
	sqlite3_bind_int64(s, 11, (sqlite3_int64)sh->max_idle_timeout_ms);
	bind_text(s, 12, sh->buffer_mode);
	sqlite3_bind_int64(s, 13, sh->host_pid);
	bind_text(s, 14, sh->host_socket);
	bind_text(s, 15, sh->session_id);
	bind_text(s, 16, sh->locale);
	bind_text(s, 17, sh->data_locale);
	sqlite3_bind_int(s, 18, sh->compression);
	bind_text(s, 19, sh->input_streams);
	bind_text(s, 20, sh->output_streams);
	sqlite3_bind_int64(s, 21, (sqlite3_int64)sh->uid);
	return step_done(st, s, "shell put");
}

int
wrm_store_shell_set_state(struct wrm_store *st, const char *id,
    const char *state, int64_t last_activity)
{
	sqlite3_stmt *s = st->st[S_SHELL_STATE];

	bind_text(s, 1, id);
	bind_text(s, 2, state);
	sqlite3_bind_int64(s, 3, last_activity);
	return step_done(st, s, "shell state");
}

int
wrm_store_shell_del(struct wrm_store *st, const char *id)
{
	bind_text(st->st[S_SHELL_DEL], 1, id);
	return step_done(st, st->st[S_SHELL_DEL], "shell del");
}

void
wrm_store_shell_row_free(struct wrm_store_shell *s)
{
	if (s == NULL)
		return;
	free(s->id);
	free(s->name);
	free(s->owner);
	free(s->client_ip);
	free(s->configuration);
	free(s->resource_uri);
	free(s->state);
	free(s->buffer_mode);
	free(s->host_socket);
	free(s->session_id);
	free(s->locale);
	free(s->data_locale);
	free(s->input_streams);
	free(s->output_streams);
}

void
wrm_store_shell_list_free(struct wrm_store_shell *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		wrm_store_shell_row_free(&s[i]);
	free(s);
}

int
wrm_store_shell_list(struct wrm_store *st, struct wrm_store_shell **s_r,
    size_t *n_r)
{
	sqlite3_stmt *s = st->st[S_SHELL_LIST];
	struct wrm_store_shell *v = NULL, *nv, *sh;
	size_t n = 0;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((nv = realloc(v, (n + 1) * sizeof(*v))) == NULL) {
			wrm_store_shell_list_free(v, n);
			sqlite3_reset(s);
			return WRM_ERR_ALLOC;
		}
		v = nv;
		sh = &v[n++];
		memset(sh, 0, sizeof(*sh));
		sh->id = col_dup(s, 0);
		sh->name = col_dup(s, 1);
		sh->owner = col_dup(s, 2);
		sh->client_ip = col_dup(s, 3);
		sh->configuration = col_dup(s, 4);
		sh->resource_uri = col_dup(s, 5);
		sh->state = col_dup(s, 6);
		sh->created = sqlite3_column_int64(s, 7);
		sh->last_activity = sqlite3_column_int64(s, 8);
		sh->idle_timeout_ms = (uint64_t)sqlite3_column_int64(s, 9);
		sh->max_idle_timeout_ms = (uint64_t)sqlite3_column_int64(s, 10);
		sh->buffer_mode = col_dup(s, 11);
		sh->host_pid = sqlite3_column_int64(s, 12);
		sh->host_socket = col_dup(s, 13);
		sh->session_id = col_dup(s, 14);
		sh->locale = col_dup(s, 15);
		sh->data_locale = col_dup(s, 16);
		sh->compression = sqlite3_column_int(s, 17) != 0;
		sh->input_streams = col_dup(s, 18);
		sh->output_streams = col_dup(s, 19);
		sh->uid = (uint64_t)sqlite3_column_int64(s, 20);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		wrm_store_shell_list_free(v, n);
		return db_err(st, "shell list");
	}
	*s_r = v;
	*n_r = n;
	return 0;
}

int
wrm_store_command_put(struct wrm_store *st, const char *shell_id,
    const char *command_id, const char *command_line, const char *state)
{
	sqlite3_stmt *s = st->st[S_CMD_PUT];

	bind_text(s, 1, shell_id);
	bind_text(s, 2, command_id);
	bind_text(s, 3, command_line);
	bind_text(s, 4, state);
	sqlite3_bind_int64(s, 5, wrm_wall_ms());
	return step_done(st, s, "command put");
}

int
wrm_store_command_del(struct wrm_store *st, const char *shell_id,
    const char *command_id)
{
	sqlite3_stmt *s = st->st[S_CMD_DEL];

	bind_text(s, 1, shell_id);
	bind_text(s, 2, command_id);
	return step_done(st, s, "command del");
}

int
wrm_store_audit_add(struct wrm_store *st, const char *event,
    const char *detail)
{
	sqlite3_stmt *s = st->st[S_AUDIT_ADD];

	sqlite3_bind_int64(s, 1, wrm_wall_ms());
	bind_text(s, 2, event);
	bind_text(s, 3, detail);
	return step_done(st, s, "audit add");
}

int
wrm_store_audit_prune(struct wrm_store *st, int64_t before_ms,
    int64_t *removed)
{
	sqlite3_stmt *s = st->st[S_AUDIT_PRUNE];
	int r;

	sqlite3_bind_int64(s, 1, before_ms);
	if ((r = step_done(st, s, "audit prune")) != 0)
		return r;
	if (removed != NULL)
		*removed = sqlite3_changes(st->db);
	return 0;
}

int
wrm_store_audit_list(struct wrm_store *st, int64_t since_id, size_t max,
    struct wrm_store_audit **a_r, size_t *n_r)
{
	sqlite3_stmt *s = st->st[S_AUDIT_LIST];
	struct wrm_store_audit *a = NULL, *na;
	size_t n = 0;
	int rc;

	sqlite3_bind_int64(s, 1, since_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((na = realloc(a, (n + 1) * sizeof(*a))) == NULL) {
			wrm_store_audit_list_free(a, n);
			sqlite3_reset(s);
			return WRM_ERR_ALLOC;
		}
		a = na;
		a[n].id = sqlite3_column_int64(s, 0);
		a[n].ts = sqlite3_column_int64(s, 1);
		a[n].event = col_dup(s, 2);
		a[n].detail = col_dup(s, 3);
		n++;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		wrm_store_audit_list_free(a, n);
		return db_err(st, "audit list");
	}
	*a_r = a;
	*n_r = n;
	return 0;
}

void
wrm_store_audit_list_free(struct wrm_store_audit *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(a[i].event);
		free(a[i].detail);
	}
	free(a);
}

int
wrm_store_checkpoint(struct wrm_store *st)
{
	if (sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    NULL, NULL) != SQLITE_OK)
		return db_err(st, "checkpoint");
	return 0;
}
