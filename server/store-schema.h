/*
 * Schema migrations, in order.  migrations[i] brings user_version i to
 * i + 1.  Never edit a shipped step; append a new one.
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE users ("
	" name TEXT PRIMARY KEY COLLATE NOCASE,"
	" hash TEXT NOT NULL,"
	" created INTEGER NOT NULL);"
	"CREATE TABLE shells ("
	" id TEXT PRIMARY KEY COLLATE NOCASE,"
	" name TEXT, owner TEXT NOT NULL, client_ip TEXT,"
	" configuration TEXT NOT NULL, resource_uri TEXT NOT NULL,"
	" state TEXT NOT NULL, created INTEGER NOT NULL,"
	" last_activity INTEGER NOT NULL,"
	" idle_timeout_ms INTEGER NOT NULL, max_idle_timeout_ms INTEGER NOT NULL,"
	" buffer_mode TEXT NOT NULL, host_pid INTEGER, host_socket TEXT,"
	" session_id TEXT, locale TEXT, data_locale TEXT,"
	" compression INTEGER NOT NULL DEFAULT 0,"
	" input_streams TEXT, output_streams TEXT, uid INTEGER);"
	"CREATE TABLE commands ("
	" shell_id TEXT NOT NULL COLLATE NOCASE"
	"   REFERENCES shells(id) ON DELETE CASCADE,"
	" id TEXT NOT NULL COLLATE NOCASE,"
	" command_line TEXT, state TEXT NOT NULL, created INTEGER NOT NULL,"
	" PRIMARY KEY (shell_id, id));"
	"CREATE TABLE audit ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" ts INTEGER NOT NULL, event TEXT NOT NULL, detail TEXT);",
	/* 1 -> 2: NT hashes of lab users, for NTLM */
	"ALTER TABLE users ADD COLUMN nt_hash TEXT;",
};
