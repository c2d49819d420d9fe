/*
 * Unit tests for conf.c: defaults, parsing real files (every section,
 * includes, overrides, errors), -o assignments, session configuration
 * lookup and the semantic checks of wrm_conf_check.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "err.h"
#include "util.h"

#define PS_URI	"http://schemas.microsoft.com/powershell/"

struct fixture {
	char *dir;
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	fx->dir = tu_mkdtemp();
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	tu_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

/* Write text to DIR/name and return the malloc'd path. */
static char *
write_conf(const struct fixture *fx, const char *name, const char *text)
{
	char *path = tu_asprintf("%s/%s", fx->dir, name);

	tu_write_file(path, text, strlen(text));
	return path;
}

static struct wrm_conf *
load_text(const struct fixture *fx, const char *text)
{
	struct wrm_conf *conf = NULL;
	char *path = write_conf(fx, "winrmd.conf", text);

	assert_int_equal(wrm_conf_load(path, &conf), 0);
	assert_non_null(conf);
	free(path);
	return conf;
}

/* Index of the first message containing every given substring, or -1. */
static int
find_msg(char **msgs, size_t n, const char *a, const char *b)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strstr(msgs[i], a) != NULL &&
		    (b == NULL || strstr(msgs[i], b) != NULL))
			return (int)i;
	return -1;
}

static void
dump_errors(const struct wrm_conf *conf)
{
	size_t i;

	for (i = 0; i < conf->n_errors; i++)
		print_message("error: %s\n", conf->errors[i]);
}

static void
assert_no_errors(const struct wrm_conf *conf)
{
	if (conf->n_errors != 0) {
		dump_errors(conf);
		fail_msg("%zu configuration errors", conf->n_errors);
	}
}

static void
assert_error(const struct wrm_conf *conf, const char *a, const char *b)
{
	if (find_msg(conf->errors, conf->n_errors, a, b) < 0) {
		dump_errors(conf);
		fail_msg("no error mentions \"%s\"%s%s", a, b ? " and " : "",
		    b ? b : "");
	}
}

static void
test_conf_defaults(void **state)
{
	const struct wrm_session_conf *s;
	struct wrm_conf *conf;

	(void)state;
	assert_int_equal(wrm_conf_defaults(&conf), 0);
	/* winrm/config and winrm/config/service on a current Windows. */
	assert_true(conf->service.max_envelope_size_kb == 500);
	assert_true(conf->service.max_timeout_ms == 60000);
	assert_true(conf->service.max_batch_items == 32000);
	assert_true(conf->service.max_connections == 300);
	assert_true(conf->service.max_concurrent_operations_per_user == 1500);
	assert_true(conf->service.enumeration_timeout_ms == 240000);
	assert_true(conf->service.max_packet_retrieval_time_seconds == 120);
	assert_false(conf->service.allow_unencrypted);
	assert_true(conf->service.allow_remote_access);
	/* winrm/config/service/auth */
	assert_false(conf->auth.basic);
	assert_true(conf->auth.kerberos);
	assert_true(conf->auth.negotiate);
	assert_false(conf->auth.certificate);
	assert_false(conf->auth.credssp);
	assert_string_equal(conf->auth.cbt_hardening_level, "Relaxed");
	/* winrm/config/winrs */
	assert_true(conf->winrs.allow_remote_shell_access);
	assert_true(conf->winrs.idle_timeout == 7200000);
	assert_true(conf->winrs.max_concurrent_users == 2147483647);
	assert_true(conf->winrs.max_shell_run_time == 2147483647);
	assert_true(conf->winrs.max_processes_per_shell == 2147483647);
	assert_true(conf->winrs.max_memory_per_shell_mb == 2147483647);
	assert_true(conf->winrs.max_shells_per_user == 2147483647);
	/* No listener unless configured. */
	assert_int_equal(conf->n_listeners, 0);
	assert_int_equal(conf->n_errors, 0);

	/* The built-in session configurations. */
	s = wrm_conf_session_by_name(conf, "Microsoft.PowerShell");
	assert_non_null(s);
	assert_true(s->builtin);
	assert_string_equal(s->plugin, "powershell");
	assert_string_equal(s->resource_uri, PS_URI "Microsoft.PowerShell");
	assert_true(s->enabled);
	assert_true(s->idle_timeout_ms == 7200000);
	assert_true(s->max_idle_timeout_ms == 2147483647);
	assert_string_equal(s->output_buffering_mode, "Block");
	assert_false(s->use_shared_process);
	s = wrm_conf_session_by_name(conf, "PowerShell.7");
	assert_non_null(s);
	assert_string_equal(s->plugin, "powershell");
	s = wrm_conf_session_by_name(conf, "cmd");
	assert_non_null(s);
	assert_string_equal(s->plugin, "cmd");
	assert_string_equal(s->resource_uri, WRM_URI_CMD);
	assert_null(wrm_conf_session_by_name(conf, "nothing"));
	wrm_conf_free(conf);
	wrm_conf_free(NULL);
}

static const char every_section[] =
	"; a comment\n"
	"# another comment\n"
	"[Service]\n"
	"MaxEnvelopeSizekb = 8192\n"
	"MaxTimeoutms = 120000\n"
	"MaxBatchItems = 20\n"
	"MaxConnections = 25\n"
	"MaxConcurrentOperationsPerUser = 100\n"
	"EnumerationTimeoutms = 60000\n"
	"MaxPacketRetrievalTimeSeconds = 30\n"
	"AllowUnencrypted = true\n"
	"AllowRemoteAccess = FALSE\n"
	"StateDirectory = /var/tmp/wrm-state\n"
	"PluginDirectory = /opt/wrm/plugins\n"
	"HostProgram = /opt/wrm/winrmd-host\n"
	"LogLevel = DEBUG2\n"
	"HostName = lab.example\n"
	"UserMode = 1\n"
	"\n"
	"[Service/Auth]\n"
	"Basic = True\n"
	"Kerberos = false\n"
	"Negotiate = 0\n"
	"Certificate = yes\n"
	"CredSSP = TRUE\n"
	"CbtHardeningLevel = Strict\n"
	"\n"
	"[Winrs]\n"
	"AllowRemoteShellAccess = false\n"
	"IdleTimeout = 60000\n"
	"MaxConcurrentUsers = 10\n"
	"MaxShellRunTime = 28800000\n"
	"MaxProcessesPerShell = 25\n"
	"MaxMemoryPerShellMB = 1024\n"
	"MaxShellsPerUser = 30\n"
	"\n"
	"[Listener http]\n"
	"Address = 127.0.0.1\n"
	"Port = 15985\n"
	"\n"
	"[Listener secure]\n"
	"Address = ::1\n"
	"Port = 15986\n"
	"Transport = HTTPS\n"
	"URLPrefix = wsman-tls\n"
	"CertificateFile = /etc/wrm/cert.pem\n"
	"KeyFile = /etc/wrm/key.pem\n"
	"Enabled = false\n"
	"Hostname = lab.example\n"
	"\n"
	"[SessionConfiguration echo]\n"
	"Plugin = echo\n"
	"ResourceURI = http://example.org/echo\n"
	"Enabled = false\n"
	"AllowUsers = alice, bob\n"
	"AllowGroups = wheel\n"
	"RunAsUser = nobody\n"
	"OutputBufferingMode = Drop\n"
	"IdleTimeoutms = 300000\n"
	"MaxIdleTimeoutms = 600000\n"
	"UseSharedProcess = true\n"
	"MaxShellsPerUser = 2\n"
	"MaxConcurrentUsers = 3\n"
	"MaxConcurrentCommandsPerShell = 4\n"
	"MaxMemoryPerShellMB = 5\n"
	"MaxProcessesPerShell = 6\n"
	"OutputBufferSizekb = 7\n"
	"Greeting = hello there  \n"
	"Mode = fast\n";

static void
check_service_values(const struct wrm_conf *conf)
{
	assert_true(conf->service.max_envelope_size_kb == 8192);
	assert_true(conf->service.max_timeout_ms == 120000);
	assert_true(conf->service.max_batch_items == 20);
	assert_true(conf->service.max_connections == 25);
	assert_true(conf->service.max_concurrent_operations_per_user == 100);
	assert_true(conf->service.enumeration_timeout_ms == 60000);
	assert_true(conf->service.max_packet_retrieval_time_seconds == 30);
	assert_true(conf->service.allow_unencrypted);
	assert_false(conf->service.allow_remote_access);
	assert_string_equal(conf->service.state_directory, "/var/tmp/wrm-state");
	assert_string_equal(conf->service.plugin_directory, "/opt/wrm/plugins");
	assert_string_equal(conf->service.host_program, "/opt/wrm/winrmd-host");
	assert_string_equal(conf->service.log_level, "DEBUG2");
	assert_string_equal(conf->service.host_name, "lab.example");
	assert_true(conf->service.user_mode);

	assert_true(conf->auth.basic);
	assert_false(conf->auth.kerberos);
	assert_false(conf->auth.negotiate);
	assert_true(conf->auth.certificate);
	assert_true(conf->auth.credssp);
	assert_string_equal(conf->auth.cbt_hardening_level, "Strict");

	assert_false(conf->winrs.allow_remote_shell_access);
	assert_true(conf->winrs.idle_timeout == 60000);
	assert_true(conf->winrs.max_concurrent_users == 10);
	assert_true(conf->winrs.max_shell_run_time == 28800000);
	assert_true(conf->winrs.max_processes_per_shell == 25);
	assert_true(conf->winrs.max_memory_per_shell_mb == 1024);
	assert_true(conf->winrs.max_shells_per_user == 30);
}

static void
check_listener_values(const struct wrm_conf *conf)
{
	const struct wrm_listener_conf *l;

	assert_int_equal(conf->n_listeners, 2);
	l = &conf->listeners[0];
	assert_string_equal(l->name, "http");
	assert_string_equal(l->address, "127.0.0.1");
	assert_true(l->port == 15985);
	assert_string_equal(l->transport, "HTTP");	/* default */
	assert_string_equal(l->url_prefix, "wsman");
	assert_true(l->enabled);
	l = &conf->listeners[1];
	assert_string_equal(l->name, "secure");
	assert_string_equal(l->address, "::1");
	assert_true(l->port == 15986);
	assert_string_equal(l->transport, "HTTPS");
	assert_string_equal(l->url_prefix, "wsman-tls");
	assert_string_equal(l->certificate_file, "/etc/wrm/cert.pem");
	assert_string_equal(l->key_file, "/etc/wrm/key.pem");
	assert_false(l->enabled);
	assert_string_equal(l->hostname, "lab.example");
}

static void
check_session_values(const struct wrm_conf *conf)
{
	const struct wrm_session_conf *s;

	s = wrm_conf_session_by_name(conf, "echo");
	assert_non_null(s);
	assert_false(s->builtin);
	assert_string_equal(s->plugin, "echo");
	assert_string_equal(s->resource_uri, "http://example.org/echo");
	assert_false(s->enabled);
	assert_string_equal(s->allow_users, "alice, bob");
	assert_string_equal(s->allow_groups, "wheel");
	assert_string_equal(s->run_as_user, "nobody");
	assert_string_equal(s->output_buffering_mode, "Drop");
	assert_true(s->idle_timeout_ms == 300000);
	assert_true(s->max_idle_timeout_ms == 600000);
	assert_true(s->use_shared_process);
	assert_true(s->max_shells_per_user == 2);
	assert_true(s->max_concurrent_users == 3);
	assert_true(s->max_concurrent_commands_per_shell == 4);
	assert_true(s->max_memory_per_shell_mb == 5);
	assert_true(s->max_processes_per_shell == 6);
	assert_true(s->output_buffer_kb == 7);
	/* Unknown keys of a session configuration are plugin options. */
	assert_int_equal(s->n_options, 2);
	assert_string_equal(wrm_conf_session_option(s, "Greeting"),
	    "hello there");
	assert_string_equal(wrm_conf_session_option(s, "GREETING"),
	    "hello there");
	assert_string_equal(wrm_conf_session_option(s, "mode"), "fast");
	assert_null(wrm_conf_session_option(s, "Other"));
	/* The built-in ones are still there. */
	assert_non_null(wrm_conf_session_by_name(conf, "cmd"));
	assert_non_null(wrm_conf_session_by_name(conf, "Microsoft.PowerShell"));
}

static void
test_conf_every_section(void **state)
{
	struct wrm_conf *conf = load_text(*state, every_section);

	assert_no_errors(conf);
	check_service_values(conf);
	check_listener_values(conf);
	check_session_values(conf);
	assert_string_equal(conf->path + strlen(conf->path) - 12,
	    "/winrmd.conf");
	wrm_conf_free(conf);
}

/* Section and key names are matched case-insensitively. */
static void
test_conf_case_insensitive_names(void **state)
{
	struct wrm_conf *conf = load_text(*state,
	    "[service]\nmaxtimeoutms = 1000\n"
	    "[SERVICE/AUTH]\nbasic = true\n"
	    "[winrs]\nMAXSHELLSPERUSER = 3\n"
	    "[listener A]\nport = 1\n"
	    "[Listener a]\nPort = 2\n"
	    "[sessionconfiguration X]\nplugin = p\n");

	assert_no_errors(conf);
	assert_true(conf->service.max_timeout_ms == 1000);
	assert_true(conf->auth.basic);
	assert_true(conf->winrs.max_shells_per_user == 3);
	assert_int_equal(conf->n_listeners, 1);
	assert_true(conf->listeners[0].port == 2);
	assert_string_equal(wrm_conf_session_by_name(conf, "x")->plugin, "p");
	wrm_conf_free(conf);
}

static void
test_conf_include_glob(void **state)
{
	struct fixture *fx = *state;
	struct wrm_conf *conf;
	char *sub, *path, *p;

	sub = tu_asprintf("%s/sessions.d", fx->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	p = write_conf(fx, "sessions.d/10-echo.conf",
	    "[SessionConfiguration echo]\nPlugin = echo\nGreeting = first\n"
	    "[Service]\nMaxTimeoutms = 1000\n");
	free(p);
	p = write_conf(fx, "sessions.d/20-echo.conf",
	    "[SessionConfiguration echo]\nGreeting = second\n"
	    "[SessionConfiguration sleepy]\nPlugin = sleepy\n"
	    "[Service]\nMaxTimeoutms = 2000\n");
	free(p);
	/* Not matched by the pattern. */
	p = write_conf(fx, "sessions.d/30-ignored.txt",
	    "[SessionConfiguration ignored]\nPlugin = x\n");
	free(p);
	p = write_conf(fx, "abs.conf", "[Winrs]\nMaxShellsPerUser = 9\n");
	free(p);
	path = tu_asprintf("Include = sessions.d/*.conf\n"
	    "Include = %s/abs.conf\n"
	    "Include = nowhere/*.conf\n"
	    "[Service]\n"
	    "LogLevel = VERBOSE\n", fx->dir);
	conf = load_text(fx, path);
	free(path);
	assert_no_errors(conf);
	/* Included in name order: the later file wins. */
	assert_true(conf->service.max_timeout_ms == 2000);
	assert_string_equal(wrm_conf_session_option(
	    wrm_conf_session_by_name(conf, "echo"), "Greeting"), "second");
	assert_string_equal(wrm_conf_session_by_name(conf, "echo")->plugin,
	    "echo");
	assert_non_null(wrm_conf_session_by_name(conf, "sleepy"));
	assert_null(wrm_conf_session_by_name(conf, "ignored"));
	assert_true(conf->winrs.max_shells_per_user == 9);
	assert_string_equal(conf->service.log_level, "VERBOSE");
	wrm_conf_free(conf);
	free(sub);
}

/* A file including itself stops with an error instead of looping. */
static void
test_conf_include_loop(void **state)
{
	struct wrm_conf *conf = load_text(*state,
	    "[Service]\nMaxTimeoutms = 1234\nInclude = winrmd.conf\n");

	assert_true(conf->n_errors >= 1);
	assert_error(conf, "nested too deeply", NULL);
	assert_true(conf->service.max_timeout_ms == 1234);
	wrm_conf_free(conf);
}

static void
test_conf_unknown_section_key(void **state)
{
	struct wrm_conf *conf = load_text(*state,
	    "[Service]\nMaxTimeoutms = 1000\nNoSuchKey = 1\n"
	    "[Bogus]\nKey = 1\n"
	    "[ServiceX]\nMaxTimeoutms = 5\n"
	    "[Listener]\nPort = 80\n"
	    "[SessionConfiguration]\nPlugin = x\n"
	    "[Winrs]\nIdleTimeoutms = 5\n"
	    "[Listener l]\nCertificate = x\n");
	size_t i;

	assert_error(conf, "NoSuchKey", "[Service]");
	assert_error(conf, "unknown section", "[Bogus]");
	assert_error(conf, "unknown section", "[ServiceX]");
	assert_error(conf, "unknown section", "[Listener]");
	assert_error(conf, "unknown section", "[SessionConfiguration]");
	assert_error(conf, "IdleTimeoutms", "[Winrs]");
	assert_error(conf, "Certificate", "[Listener l]");
	assert_int_equal(conf->n_errors, 7);
	/* Every error names the file. */
	for (i = 0; i < conf->n_errors; i++)
		assert_non_null(strstr(conf->errors[i], "winrmd.conf"));
	assert_true(conf->service.max_timeout_ms == 1000);
	/* No session was created from the nameless section. */
	assert_int_equal(conf->n_sessions, 3);
	wrm_conf_free(conf);
}

static void
test_conf_bad_values(void **state)
{
	struct wrm_conf *conf = load_text(*state,
	    "[Service]\n"
	    "MaxEnvelopeSizekb = lots\n"
	    "MaxTimeoutms = -5\n"
	    "MaxConnections = 12abc\n"
	    "MaxBatchItems =\n"
	    "AllowUnencrypted = maybe\n"
	    "[Listener l]\n"
	    "Port = 99999999999999999999999\n"
	    "Enabled = 2\n");

	assert_error(conf, "MaxEnvelopeSizekb", "lots");
	assert_error(conf, "MaxTimeoutms", "-5");
	assert_error(conf, "MaxConnections", "12abc");
	assert_error(conf, "MaxBatchItems", NULL);
	assert_error(conf, "AllowUnencrypted", "maybe");
	assert_error(conf, "Port", "99999999999999999999999");
	assert_error(conf, "Enabled", "2");
	assert_int_equal(conf->n_errors, 7);
	/* Defaults survive a bad value. */
	assert_true(conf->service.max_envelope_size_kb == 500);
	assert_true(conf->service.max_timeout_ms == 60000);
	assert_true(conf->service.max_connections == 300);
	assert_true(conf->service.max_batch_items == 32000);
	assert_false(conf->service.allow_unencrypted);
	assert_true(conf->listeners[0].port == 5985);
	assert_true(conf->listeners[0].enabled);
	wrm_conf_free(conf);
}

static void
test_conf_syntax_error(void **state)
{
	struct wrm_conf *conf = load_text(*state,
	    "[Service]\nMaxTimeoutms = 1000\nthis line has no equals sign\n"
	    "MaxConnections = 7\n");

	assert_error(conf, "winrmd.conf:3", "syntax");
	/* Parsing continues after the bad line. */
	assert_true(conf->service.max_connections == 7);
	wrm_conf_free(conf);
}

static void
test_conf_missing_file(void **state)
{
	struct fixture *fx = *state;
	struct wrm_conf *conf = NULL;
	char *path = tu_asprintf("%s/absent.conf", fx->dir);

	assert_int_equal(wrm_conf_load(path, &conf), 0);
	assert_non_null(conf);
	assert_error(conf, "absent.conf", "cannot open");
	/* Defaults are still in place. */
	assert_true(conf->service.max_timeout_ms == 60000);
	wrm_conf_free(conf);
	free(path);
}

/* A long value (a user list, a path) is read whole or refused clearly. */
static void
test_conf_long_value(void **state)
{
	struct wrm_conf *conf;
	char users[600], *text;
	size_t i;

	users[0] = '\0';
	for (i = 0; i < 50; i++)
		snprintf(users + strlen(users), sizeof(users) - strlen(users),
		    "%suser%02zu", i ? ", " : "", i);
	assert_true(strlen(users) > 300);
	text = tu_asprintf("[SessionConfiguration big]\nPlugin = echo\n"
	    "AllowUsers = %s\nEnabled = false\n", users);
	conf = load_text(*state, text);
	if (conf->n_errors == 0) {
		assert_string_equal(wrm_conf_session_by_name(conf,
		    "big")->allow_users, users);
		assert_false(wrm_conf_session_by_name(conf, "big")->enabled);
	} else if (find_msg(conf->errors, conf->n_errors, "too long",
	    NULL) < 0) {
		dump_errors(conf);
		print_message("AllowUsers read as \"%s\"\n",
		    wrm_conf_session_by_name(conf, "big")->allow_users);
		fail_msg("a %zu-character line was neither read whole nor "
		    "refused as too long", strlen(users) + 13);
	}
	wrm_conf_free(conf);
	free(text);
}

static void
test_conf_later_overrides(void **state)
{
	const struct wrm_session_conf *s;
	struct wrm_conf *conf = load_text(*state,
	    "[Service]\nMaxTimeoutms = 1000\n"
	    "[SessionConfiguration echo]\nPlugin = one\nGreeting = a\n"
	    "[Service]\nMaxTimeoutms = 2000\nMaxTimeoutms = 3000\n"
	    "[SessionConfiguration echo]\nPlugin = two\nGreeting = b\n"
	    "[SessionConfiguration cmd]\nEnabled = false\n"
	    "[SessionConfiguration microsoft.powershell]\n"
	    "IdleTimeoutms = 1000\n");

	assert_no_errors(conf);
	assert_true(conf->service.max_timeout_ms == 3000);
	s = wrm_conf_session_by_name(conf, "echo");
	assert_string_equal(s->plugin, "two");
	assert_int_equal(s->n_options, 1);
	assert_string_equal(wrm_conf_session_option(s, "greeting"), "b");
	/* Built-in configurations are refined, not duplicated. */
	assert_int_equal(conf->n_sessions, 4);
	s = wrm_conf_session_by_name(conf, "cmd");
	assert_true(s->builtin);
	assert_false(s->enabled);
	assert_string_equal(s->plugin, "cmd");
	s = wrm_conf_session_by_name(conf, "Microsoft.PowerShell");
	assert_true(s->idle_timeout_ms == 1000);
	assert_string_equal(s->resource_uri, PS_URI "Microsoft.PowerShell");

	/* Command-line assignments come last of all. */
	assert_int_equal(wrm_conf_set(conf, "Service.MaxTimeoutms=4000"), 0);
	assert_true(conf->service.max_timeout_ms == 4000);
	assert_int_equal(wrm_conf_set(conf,
	    "SessionConfiguration echo.Plugin=three"), 0);
	assert_string_equal(wrm_conf_session_by_name(conf, "echo")->plugin,
	    "three");
	assert_int_equal(wrm_conf_set(conf,
	    "SessionConfiguration Microsoft.PowerShell.Enabled=false"), 0);
	assert_false(wrm_conf_session_by_name(conf,
	    "Microsoft.PowerShell")->enabled);
	assert_int_equal(wrm_conf_set(conf,
	    "Service.PluginDirectory=/a/b.c/d"), 0);
	assert_string_equal(conf->service.plugin_directory, "/a/b.c/d");
	assert_int_equal(wrm_conf_set(conf, "Listener new.Port=0"), 0);
	assert_int_equal(conf->n_listeners, 1);
	assert_true(conf->listeners[0].port == 0);
	assert_no_errors(conf);
	wrm_conf_free(conf);
}

static void
test_conf_set_errors(void **state)
{
	struct wrm_conf *conf;

	(void)state;
	assert_int_equal(wrm_conf_defaults(&conf), 0);
	assert_int_equal(wrm_conf_set(conf, "Service.MaxTimeoutms"),
	    WRM_ERR_PARSE);
	assert_int_equal(wrm_conf_set(conf, "MaxTimeoutms=5"), WRM_ERR_PARSE);
	assert_int_equal(wrm_conf_set(conf, "Service.NoSuchKey=5"),
	    WRM_ERR_PARSE);
	assert_int_equal(wrm_conf_set(conf, "Service.MaxTimeoutms=x"),
	    WRM_ERR_PARSE);
	assert_int_equal(wrm_conf_set(conf, "Nowhere.Key=1"), WRM_ERR_PARSE);
	assert_true(conf->service.max_timeout_ms == 60000);
	wrm_conf_free(conf);
}

static void
test_conf_session_lookup(void **state)
{
	const struct wrm_session_conf *s;
	struct wrm_conf *conf = load_text(*state,
	    "[SessionConfiguration echo]\nPlugin = echo\n"
	    "[SessionConfiguration Custom]\nPlugin = echo\n"
	    "ResourceURI = http://example.org/Custom/Shell\n");

	assert_no_errors(conf);
	/* Built-in URIs, any case. */
	s = wrm_conf_session_by_uri(conf, PS_URI "Microsoft.PowerShell");
	assert_non_null(s);
	assert_string_equal(s->name, "Microsoft.PowerShell");
	assert_ptr_equal(wrm_conf_session_by_uri(conf,
	    "http://schemas.microsoft.com/powershell/microsoft.powershell"), s);
	assert_ptr_equal(wrm_conf_session_by_uri(conf,
	    "HTTP://SCHEMAS.MICROSOFT.COM/POWERSHELL/MICROSOFT.POWERSHELL"), s);
	s = wrm_conf_session_by_uri(conf, WRM_URI_CMD);
	assert_non_null(s);
	assert_string_equal(s->name, "cmd");
	assert_ptr_equal(wrm_conf_session_by_uri(conf,
	    "http://schemas.microsoft.com/wbem/wsman/1/windows/SHELL/CMD"), s);
	s = wrm_conf_session_by_uri(conf, PS_URI "PowerShell.7");
	assert_non_null(s);
	assert_string_equal(s->name, "PowerShell.7");
	/* Without ResourceURI: the PowerShell URI of the name. */
	s = wrm_conf_session_by_uri(conf, PS_URI "echo");
	assert_non_null(s);
	assert_string_equal(s->name, "echo");
	assert_ptr_equal(wrm_conf_session_by_uri(conf,
	    "http://schemas.microsoft.com/PowerShell/ECHO"), s);
	/* With one: only that URI. */
	s = wrm_conf_session_by_uri(conf, "http://example.org/custom/shell");
	assert_non_null(s);
	assert_string_equal(s->name, "Custom");
	assert_null(wrm_conf_session_by_uri(conf, PS_URI "Custom"));
	/* Unknown or partial URIs. */
	assert_null(wrm_conf_session_by_uri(conf, PS_URI "nothing"));
	assert_null(wrm_conf_session_by_uri(conf, PS_URI));
	assert_null(wrm_conf_session_by_uri(conf, PS_URI "echo2"));
	assert_null(wrm_conf_session_by_uri(conf, PS_URI "ech"));
	assert_null(wrm_conf_session_by_uri(conf, "echo"));
	assert_null(wrm_conf_session_by_uri(conf, ""));
	assert_null(wrm_conf_session_by_uri(conf, WRM_URI_CMD "/x"));
	wrm_conf_free(conf);
}

static void
test_conf_check_clean(void **state)
{
	struct wrm_conf *conf = load_text(*state,
	    "[Listener a]\nAddress = 127.0.0.1\nPort = 15985\n"
	    "[Listener b]\nAddress = 127.0.0.1\nPort = 15986\n"
	    "Transport = https\nCertificateFile = c.pem\nKeyFile = k.pem\n"
	    "[Listener c]\nTransport = HTTPS\nEnabled = false\n"
	    "[Listener d]\nPort = 0\n[Listener e]\nPort = 0\n"
	    "[Service]\nMaxEnvelopeSizekb = 8\nMaxTimeoutms = 500\n"
	    "LogLevel = debug\n"
	    "[Service/Auth]\nCbtHardeningLevel = none\n"
	    "[SessionConfiguration x]\nPlugin = echo\n"
	    "OutputBufferingMode = drop\n");

	assert_int_equal(wrm_conf_check(conf), 0);
	assert_no_errors(conf);
	wrm_conf_free(conf);

	conf = load_text(*state, "[Service]\nMaxEnvelopeSizekb = 1039440\n");
	assert_int_equal(wrm_conf_check(conf), 0);
	/* Nothing to serve is worth a warning, not an error. */
	assert_true(find_msg(conf->warnings, conf->n_warnings, "Listener",
	    NULL) >= 0);
	wrm_conf_free(conf);
}

static void
test_conf_check_errors(void **state)
{
	struct wrm_conf *conf = load_text(*state,
	    "[Service]\nLogLevel = CHATTY\nMaxEnvelopeSizekb = 7\n"
	    "MaxTimeoutms = 499\n"
	    "[Service/Auth]\nCbtHardeningLevel = Medium\n"
	    "[Listener ftp]\nTransport = FTP\nPort = 21\n"
	    "[Listener big]\nPort = 65536\n"
	    "[Listener tls]\nTransport = HTTPS\nPort = 5986\n"
	    "[Listener one]\nAddress = 10.0.0.1\nPort = 8080\n"
	    "[Listener two]\nAddress = 10.0.0.1\nPort = 8080\n"
	    "[SessionConfiguration noplugin]\nEnabled = true\n"
	    "[SessionConfiguration queue]\nPlugin = echo\n"
	    "OutputBufferingMode = Queue\n"
	    "[SessionConfiguration dup]\nPlugin = echo\n"
	    "ResourceURI = " WRM_URI_CMD "\n");
	size_t n = wrm_conf_check(conf);

	assert_error(conf, "LogLevel", "CHATTY");
	assert_error(conf, "MaxEnvelopeSizekb", NULL);
	assert_error(conf, "MaxTimeoutms", NULL);
	assert_error(conf, "CbtHardeningLevel", NULL);
	assert_error(conf, "Listener ftp", "Transport");
	assert_error(conf, "Listener big", "Port");
	assert_error(conf, "Listener tls", "CertificateFile");
	assert_error(conf, "Listener two", "one");
	assert_error(conf, "noplugin", "Plugin");
	assert_error(conf, "queue", "OutputBufferingMode");
	assert_error(conf, "dup", "ResourceURI");
	assert_int_equal(n, 11);
	assert_int_equal(conf->n_errors, 11);
	wrm_conf_free(conf);

	conf = load_text(*state, "[Service]\nMaxEnvelopeSizekb = 1039441\n");
	assert_int_equal(wrm_conf_check(conf), 1);
	assert_error(conf, "MaxEnvelopeSizekb", NULL);
	wrm_conf_free(conf);
}

/* -T output is itself a valid configuration with the same values. */
static void
test_conf_print_roundtrip(void **state)
{
	struct fixture *fx = *state;
	struct wrm_conf *conf = load_text(fx, every_section), *again;
	char *path = tu_asprintf("%s/printed.conf", fx->dir), *a, *b;
	char *pa = tu_asprintf("%s/a.txt", fx->dir);
	char *pb = tu_asprintf("%s/b.txt", fx->dir);
	FILE *f;
	size_t la, lb;

	assert_non_null(f = fopen(path, "w"));
	wrm_conf_print(conf, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(wrm_conf_load(path, &again), 0);
	assert_no_errors(again);
	assert_non_null(f = fopen(pa, "w"));
	wrm_conf_print(conf, f);
	fclose(f);
	assert_non_null(f = fopen(pb, "w"));
	wrm_conf_print(again, f);
	fclose(f);
	a = (char *)tu_read_file(pa, &la);
	b = (char *)tu_read_file(pb, &lb);
	assert_string_equal(a, b);
	assert_non_null(strstr(a, "[SessionConfiguration echo]\n"));
	assert_non_null(strstr(a, "Greeting = hello there\n"));
	assert_non_null(strstr(a, "[Listener secure]\n"));
	wrm_conf_free(conf);
	wrm_conf_free(again);
	free(a);
	free(b);
	free(pa);
	free(pb);
	free(path);
}

static void
test_conf_list_keys(void **state)
{
	struct fixture *fx = *state;
	char *path = tu_asprintf("%s/keys.txt", fx->dir), *text;
	FILE *f;
	size_t len;

	assert_non_null(f = fopen(path, "w"));
	wrm_conf_list_keys(f);
	assert_int_equal(fclose(f), 0);
	text = (char *)tu_read_file(path, &len);
	assert_non_null(strstr(text, "Service.MaxEnvelopeSizekb\t500\t"));
	assert_non_null(strstr(text, "Service/Auth.Basic\tfalse\t"));
	assert_non_null(strstr(text, "Winrs.IdleTimeout\t7200000\t"));
	assert_non_null(strstr(text, "Listener.Port\t5985\t"));
	assert_non_null(strstr(text,
	    "SessionConfiguration.OutputBufferingMode\tBlock\t"));
	free(text);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conf_defaults),
		cmocka_unit_test_setup_teardown(test_conf_every_section,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_conf_case_insensitive_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_include_glob,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_include_loop,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_unknown_section_key,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_bad_values,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_syntax_error,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_missing_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_long_value,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_later_overrides,
		    setup, teardown),
		cmocka_unit_test(test_conf_set_errors),
		cmocka_unit_test_setup_teardown(test_conf_session_lookup,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_check_clean,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_check_errors,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_print_roundtrip,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_list_keys,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
