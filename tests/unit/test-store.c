/*
 * Unit tests for store.c against real SQLite databases in a scratch
 * directory: migrations and user_version, the lab users, shell and
 * command rows, the audit log, reopening, and refusing a database written
 * by a newer program.  The database file is also inspected directly with
 * SQLite, independently of the code under test.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "misc.h"
#include "store.h"
#include "store-schema.h"
#include "util.h"

struct fixture {
	char *dir;
	char *db;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	fx->dir = tu_mkdtemp();
	fx->db = tu_asprintf("%s/state.db", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	tu_rmtree(fx->dir);
	free(fx->dir);
	free(fx->db);
	free(fx);
	return 0;
}

static struct wrm_store *
open_rw(const struct fixture *fx)
{
	struct wrm_store *st = NULL;

	assert_int_equal(wrm_store_open(fx->db, false, &st), 0);
	assert_non_null(st);
	return st;
}

/* One integer from a query run directly on the file. */
static long long
sql_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	long long v = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static char *
sql_text(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	char *v = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
	    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL)
		v = strdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void
sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
test_store_migrations(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st = open_rw(fx);
	char *mode;
	int v = wrm_store_schema_version(st);

	assert_true(v >= 1);
	assert_int_equal(sql_int(fx->db, "PRAGMA user_version"), v);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM sqlite_master "
	    "WHERE type = 'table' AND name IN ('users', 'shells', 'commands', "
	    "'audit')"), 4);
	mode = sql_text(fx->db, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	free(mode);
	assert_int_equal(wrm_store_checkpoint(st), 0);
	wrm_store_close(st);
	wrm_store_close(NULL);
}

static void
test_store_users(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st = open_rw(fx);
	struct wrm_store_user *u;
	int64_t before = wrm_wall_ms();
	char *hash;
	size_t n;

	assert_int_equal(wrm_store_user_set(st, "carol", "$6$c", NULL, true), 0);
	assert_int_equal(wrm_store_user_set(st, "alice", "$6$a", NULL, true), 0);
	assert_int_equal(wrm_store_user_set(st, "bob", "$6$b",
	    "8846F7EAEE8FB117AD06BDD830B7586C", false), 0);
	/* create_only refuses an existing name, in any case. */
	assert_int_equal(wrm_store_user_set(st, "alice", "$6$x", NULL, true),
	    WRM_ERR_EXISTS);
	assert_int_equal(wrm_store_user_set(st, "ALICE", "$6$x", NULL, true),
	    WRM_ERR_EXISTS);
	assert_int_equal(wrm_store_user_get_hash(st, "alice", &hash), 0);
	assert_string_equal(hash, "$6$a");
	free(hash);
	/* Without create_only the hash is replaced. */
	assert_int_equal(wrm_store_user_set(st, "Alice", "$6$new", NULL,
	    false), 0);
	assert_int_equal(wrm_store_user_get_hash(st, "ALICE", &hash), 0);
	assert_string_equal(hash, "$6$new");
	free(hash);
	hash = (char *)"sentinel";
	assert_int_equal(wrm_store_user_get_hash(st, "dave", &hash),
	    WRM_ERR_NOT_FOUND);
	assert_null(hash);

	assert_int_equal(wrm_store_user_list(st, &u, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(u[0].name, "alice");	/* name order */
	assert_string_equal(u[1].name, "bob");
	assert_string_equal(u[2].name, "carol");
	assert_null(u[0].nt_hash);
	assert_string_equal(u[1].nt_hash, "8846F7EAEE8FB117AD06BDD830B7586C");
	assert_true(u[0].created >= before - 1000);
	assert_true(u[0].created <= wrm_wall_ms() + 1000);
	wrm_store_user_list_free(u, n);

	assert_int_equal(wrm_store_user_del(st, "BOB"), 0);
	assert_int_equal(wrm_store_user_del(st, "bob"), WRM_ERR_NOT_FOUND);
	assert_int_equal(wrm_store_user_get_hash(st, "bob", &hash),
	    WRM_ERR_NOT_FOUND);
	assert_int_equal(wrm_store_user_list(st, &u, &n), 0);
	assert_int_equal(n, 2);
	wrm_store_user_list_free(u, n);
	wrm_store_close(st);
}

static void
fill_shell(struct wrm_store_shell *s, const char *id, int64_t created)
{
	memset(s, 0, sizeof(*s));
	s->id = (char *)id;
	s->name = (char *)"lab shell";
	s->owner = (char *)"alice";
	s->client_ip = (char *)"127.0.0.1";
	s->configuration = (char *)"Microsoft.PowerShell";
	s->resource_uri = (char *)
	    "http://schemas.microsoft.com/powershell/Microsoft.PowerShell";
	s->state = (char *)"Connected";
	s->created = created;
	s->last_activity = created + 5;
	s->idle_timeout_ms = 7200000;
	s->max_idle_timeout_ms = (1ULL << 63) + 5;	/* beyond int64 */
	s->buffer_mode = (char *)"Block";
	s->host_pid = 4242;
	s->host_socket = (char *)"/run/winrmd/host-1.sock";
	s->session_id = (char *)"uuid:28DC45E5-9A77-47C1-8520-254470DB9B53";
	s->locale = (char *)"en-US";
	s->data_locale = (char *)"de-DE";
	s->compression = true;
	s->input_streams = (char *)"stdin pr";
	s->output_streams = (char *)"stdout";
	s->uid = 1000;
}

static void
assert_shell_eq(const struct wrm_store_shell *a,
    const struct wrm_store_shell *b)
{
#define STR_EQ(f) do { \
	if (a->f == NULL || b->f == NULL) \
		assert_ptr_equal(a->f, b->f); \
	else \
		assert_string_equal(a->f, b->f); \
} while (0)
	STR_EQ(id);
	STR_EQ(name);
	STR_EQ(owner);
	STR_EQ(client_ip);
	STR_EQ(configuration);
	STR_EQ(resource_uri);
	STR_EQ(state);
	STR_EQ(buffer_mode);
	STR_EQ(host_socket);
	STR_EQ(session_id);
	STR_EQ(locale);
	STR_EQ(data_locale);
	STR_EQ(input_streams);
	STR_EQ(output_streams);
#undef STR_EQ
	assert_true(a->created == b->created);
	assert_true(a->last_activity == b->last_activity);
	assert_true(a->idle_timeout_ms == b->idle_timeout_ms);
	assert_true(a->max_idle_timeout_ms == b->max_idle_timeout_ms);
	assert_true(a->host_pid == b->host_pid);
	assert_int_equal(a->compression, b->compression);
	assert_true(a->uid == b->uid);
}

static void
test_store_shells(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st = open_rw(fx);
	struct wrm_store_shell s1, s2, *v;
	size_t n;

	fill_shell(&s1, "27A3EB43-F792-4D33-96DD-B5A52AC8668A", 2000);
	fill_shell(&s2, "0A1B2C3D-0000-1111-2222-333344445555", 1000);
	/* Optional columns may be NULL. */
	s2.name = NULL;
	s2.client_ip = NULL;
	s2.host_socket = NULL;
	s2.session_id = NULL;
	s2.locale = NULL;
	s2.data_locale = NULL;
	s2.input_streams = NULL;
	s2.output_streams = NULL;
	s2.compression = false;
	s2.configuration = (char *)"cmd";
	assert_int_equal(wrm_store_shell_put(st, &s1), 0);
	assert_int_equal(wrm_store_shell_put(st, &s2), 0);
	assert_int_equal(wrm_store_shell_list(st, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_shell_eq(&v[0], &s2);		/* creation order */
	assert_shell_eq(&v[1], &s1);
	wrm_store_shell_list_free(v, n);

	/* Put replaces the row with the same id. */
	s1.state = (char *)"Disconnected";
	s1.host_pid = 99;
	assert_int_equal(wrm_store_shell_put(st, &s1), 0);
	/* State transitions touch state and activity only. */
	assert_int_equal(wrm_store_shell_set_state(st,
	    "0a1b2c3d-0000-1111-2222-333344445555", "Disconnected", 7777), 0);
	assert_int_equal(wrm_store_shell_list(st, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_shell_eq(&v[1], &s1);
	assert_string_equal(v[0].state, "Disconnected");
	assert_true(v[0].last_activity == 7777);
	assert_true(v[0].created == 1000);
	assert_string_equal(v[0].owner, "alice");
	wrm_store_shell_list_free(v, n);

	assert_int_equal(wrm_store_shell_del(st, s1.id), 0);
	assert_int_equal(wrm_store_shell_list(st, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].id, s2.id);
	wrm_store_shell_list_free(v, n);
	assert_int_equal(wrm_store_shell_del(st, s2.id), 0);
	assert_int_equal(wrm_store_shell_list(st, &v, &n), 0);
	assert_int_equal(n, 0);
	wrm_store_shell_list_free(v, n);
	wrm_store_close(st);
}

static void
test_store_commands(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st = open_rw(fx);
	struct wrm_store_shell s;
	char *cl;

	fill_shell(&s, "27A3EB43-F792-4D33-96DD-B5A52AC8668A", 1000);
	assert_int_equal(wrm_store_shell_put(st, &s), 0);
	assert_int_equal(wrm_store_command_put(st, s.id,
	    "11111111-2222-3333-4444-555555555555", "dir C:\\", "Running"), 0);
	assert_int_equal(wrm_store_command_put(st, s.id,
	    "66666666-2222-3333-4444-555555555555", NULL, "Running"), 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM commands"), 2);
	cl = sql_text(fx->db, "SELECT command_line FROM commands WHERE id = "
	    "'11111111-2222-3333-4444-555555555555'");
	assert_string_equal(cl, "dir C:\\");
	free(cl);
	/* Put again updates the state. */
	assert_int_equal(wrm_store_command_put(st, s.id,
	    "11111111-2222-3333-4444-555555555555", "dir C:\\", "Done"), 0);
	cl = sql_text(fx->db, "SELECT state FROM commands WHERE id = "
	    "'11111111-2222-3333-4444-555555555555'");
	assert_string_equal(cl, "Done");
	free(cl);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM commands"), 2);
	assert_int_equal(wrm_store_command_del(st, s.id,
	    "11111111-2222-3333-4444-555555555555"), 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM commands"), 1);
	/* A command needs its shell. */
	assert_int_not_equal(wrm_store_command_put(st,
	    "99999999-2222-3333-4444-555555555555",
	    "77777777-2222-3333-4444-555555555555", "x", "Running"), 0);
	/* Deleting the shell deletes its commands. */
	assert_int_equal(wrm_store_shell_del(st, s.id), 0);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM commands"), 0);
	wrm_store_close(st);
}

static void
test_store_audit(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st = open_rw(fx);
	struct wrm_store_audit *a;
	int64_t before = wrm_wall_ms();
	char detail[32];
	size_t n;
	int i;

	for (i = 0; i < 5; i++) {
		snprintf(detail, sizeof(detail), "user=u%d", i);
		assert_int_equal(wrm_store_audit_add(st, i % 2 ? "LOGIN_FAILED" :
		    "SHELL_CREATE", i == 4 ? NULL : detail), 0);
	}
	assert_int_equal(wrm_store_audit_list(st, 0, 100, &a, &n), 0);
	assert_int_equal(n, 5);
	for (i = 0; i < 5; i++) {
		if (i > 0)
			assert_true(a[i].id > a[i - 1].id);
		assert_true(a[i].ts >= before - 1000);
		assert_string_equal(a[i].event, i % 2 ? "LOGIN_FAILED" :
		    "SHELL_CREATE");
	}
	assert_string_equal(a[0].detail, "user=u0");
	assert_null(a[4].detail);
	/* Paging: after an id, at most max rows. */
	{
		int64_t third = a[2].id;

		wrm_store_audit_list_free(a, n);
		assert_int_equal(wrm_store_audit_list(st, third, 100, &a, &n),
		    0);
		assert_int_equal(n, 2);
		assert_string_equal(a[0].detail, "user=u3");
		wrm_store_audit_list_free(a, n);
	}
	assert_int_equal(wrm_store_audit_list(st, 0, 2, &a, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(a[1].detail, "user=u1");
	wrm_store_audit_list_free(a, n);
	assert_int_equal(wrm_store_audit_list(st, 0, 0, &a, &n), 0);
	assert_int_equal(n, 0);
	wrm_store_audit_list_free(a, n);
	wrm_store_close(st);
}

/* Entries older than the cut go, the others stay, and the count is told. */
static void
test_store_audit_prune(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st = open_rw(fx);
	struct wrm_store_audit *a;
	int64_t now = wrm_wall_ms(), removed = -1;
	size_t n;
	int i;

	for (i = 0; i < 4; i++)
		assert_int_equal(wrm_store_audit_add(st, "SHELL_CREATE", NULL),
		    0);
	/* The first two become 100 days old. */
	sql_int(fx->db, "UPDATE audit SET ts = ts - 8640000000 WHERE id <= 2");
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM audit WHERE "
	    "ts < strftime('%s', 'now') * 1000 - 86400000"), 2);
	/* 101 days: nothing is that old. */
	assert_int_equal(wrm_store_audit_prune(st, now - 8726400000LL,
	    &removed), 0);
	assert_int_equal(removed, 0);
	/* 90 days: the two old ones. */
	assert_int_equal(wrm_store_audit_prune(st, now - 7776000000LL,
	    &removed), 0);
	assert_int_equal(removed, 2);
	assert_int_equal(wrm_store_audit_list(st, 0, 100, &a, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(a[0].id, 3);
	wrm_store_audit_list_free(a, n);
	/* New events still get new numbers. */
	assert_int_equal(wrm_store_audit_add(st, "SHELL_DELETE", NULL), 0);
	assert_int_equal(wrm_store_audit_list(st, 0, 100, &a, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(a[2].id, 5);
	wrm_store_audit_list_free(a, n);
	wrm_store_close(st);
}

static void
test_store_reopen(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st = open_rw(fx);
	struct wrm_store_shell s, *v;
	struct wrm_store_audit *a;
	char *hash;
	size_t n;
	int version;

	fill_shell(&s, "27A3EB43-F792-4D33-96DD-B5A52AC8668A", 1000);
	assert_int_equal(wrm_store_user_set(st, "alice", "$6$a", NULL, true), 0);
	assert_int_equal(wrm_store_shell_put(st, &s), 0);
	assert_int_equal(wrm_store_audit_add(st, "SHELL_CREATE", "x"), 0);
	version = wrm_store_schema_version(st);
	wrm_store_close(st);

	st = open_rw(fx);
	assert_int_equal(wrm_store_user_get_hash(st, "alice", &hash), 0);
	assert_string_equal(hash, "$6$a");
	free(hash);
	assert_int_equal(wrm_store_shell_list(st, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_shell_eq(&v[0], &s);
	wrm_store_shell_list_free(v, n);
	assert_int_equal(wrm_store_audit_list(st, 0, 10, &a, &n), 0);
	assert_int_equal(n, 1);
	wrm_store_audit_list_free(a, n);
	wrm_store_close(st);
	assert_int_equal(sql_int(fx->db, "PRAGMA user_version"), version);

	/* Read-only access (winrmctl) sees the same data. */
	assert_int_equal(wrm_store_open(fx->db, true, &st), 0);
	assert_int_equal(wrm_store_user_get_hash(st, "alice", &hash), 0);
	assert_string_equal(hash, "$6$a");
	free(hash);
	assert_int_not_equal(wrm_store_audit_add(st, "X", NULL), 0);
	wrm_store_close(st);
}

/*
 * A database left at each older schema version, with data in it, is
 * brought to the current version by the remaining steps, keeping the
 * data.
 */
static void
test_store_migrate_each_step(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st;
	struct wrm_store_user *u;
	size_t steps = sizeof(migrations) / sizeof(migrations[0]), v, i, n;
	char *sql;

	for (v = 1; v < steps; v++) {
		remove(fx->db);
		for (i = 0; i < v; i++)
			sql_exec(fx->db, migrations[i]);
		sql = tu_asprintf("PRAGMA user_version = %zu", v);
		sql_exec(fx->db, sql);
		free(sql);
		sql_exec(fx->db, "INSERT INTO users(name, hash, created) "
		    "VALUES ('old', '$6$old', 1)");
		st = open_rw(fx);
		assert_int_equal(sql_int(fx->db, "PRAGMA user_version"),
		    (long long)steps);
		assert_int_equal(wrm_store_schema_version(st), (int)steps);
		assert_int_equal(wrm_store_user_list(st, &u, &n), 0);
		assert_int_equal(n, 1);
		assert_string_equal(u[0].name, "old");
		assert_true(u[0].created == 1);
		wrm_store_user_list_free(u, n);
		wrm_store_close(st);
	}
}

/* A database from a newer program is refused and left untouched. */
static void
test_store_newer_version(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st = open_rw(fx);
	char *sql;
	int newer = wrm_store_schema_version(st) + 1;

	wrm_store_close(st);
	sql = tu_asprintf("PRAGMA user_version = %d", newer);
	sql_exec(fx->db, sql);
	free(sql);
	st = (struct wrm_store *)&st;
	assert_int_not_equal(wrm_store_open(fx->db, false, &st), 0);
	assert_null(st);
	assert_int_not_equal(wrm_store_open(fx->db, true, &st), 0);
	assert_null(st);
	assert_int_equal(sql_int(fx->db, "PRAGMA user_version"), newer);
}

/* An existing file without the schema is migrated, unless read-only. */
static void
test_store_old_version(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st;

	sql_exec(fx->db, "CREATE TABLE unrelated (x INTEGER)");
	assert_int_not_equal(wrm_store_open(fx->db, true, &st), 0);
	assert_null(st);
	assert_int_equal(sql_int(fx->db, "PRAGMA user_version"), 0);
	st = open_rw(fx);
	assert_int_equal(sql_int(fx->db, "PRAGMA user_version"),
	    wrm_store_schema_version(st));
	assert_int_equal(wrm_store_user_set(st, "a", "h", NULL, true), 0);
	wrm_store_close(st);
	assert_int_equal(sql_int(fx->db, "SELECT count(*) FROM unrelated"), 0);
}

static void
test_store_open_errors(void **state)
{
	struct fixture *fx = *state;
	struct wrm_store *st;
	char *path = tu_asprintf("%s/no/such/dir/state.db", fx->dir);

	assert_int_not_equal(wrm_store_open(path, false, &st), 0);
	assert_null(st);
	free(path);
	path = tu_asprintf("%s/absent.db", fx->dir);
	assert_int_not_equal(wrm_store_open(path, true, &st), 0);
	assert_null(st);
	free(path);
	/* Not a database at all. */
	tu_write_file(fx->db, "this is not an SQLite database, just text that "
	    "is long enough to fill the header of one.\n", 90);
	assert_int_not_equal(wrm_store_open(fx->db, false, &st), 0);
	assert_null(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_migrations,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_users,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_shells,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_commands,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_audit,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_audit_prune,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_reopen,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_migrate_each_step,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_newer_version,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_old_version,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_open_errors,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
