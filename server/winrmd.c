/*
 * winrmd: the WinRM / PowerShell Remoting endpoint.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth-gss.h"
#include "admin.h"
#include "shell-limits.h"
#include "systemd.h"
#include "auth.h"
#include "conf.h"
#include "err.h"
#include "http.h"
#include "lab.h"
#include "log.h"
#include "plugin-load.h"
#include "misc.h"
#include "shell.h"
#include "soap.h"
#include "spawn.h"
#include "store.h"
#include "work.h"
#include "wsman.h"

#define MAX_LISTENERS	16

struct wrm_daemon D;

static struct wrm_listener *listeners[MAX_LISTENERS];
static size_t n_listeners;
static char **overrides;
static size_t n_overrides;
static struct wrm_timer *checkpoint_timer;

static void
usage(void)
{
	fprintf(stderr,
	    "usage: winrmd [-dtTqV] [-f config] [-o Section.Key=value]\n"
	    "       winrmd --lab DIR [--port PORT] [-d]\n"
	    "       winrmd --list-keys | --version\n");
	exit(2);
}

/* Directory of this executable, for running from a build tree. */
static char *
exe_dir(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return strdup(dirname(buf));
}

static void
resolve_paths(void)
{
	char *dir = exe_dir(), *p;
	struct stat st;

	free(D.host_prog);
	free(D.plugin_dir);
	D.host_prog = NULL;
	D.plugin_dir = NULL;
	if (D.conf->service.host_program[0] != '\0')
		D.host_prog = strdup(D.conf->service.host_program);
	else if (dir != NULL && asprintf(&p, "%s/winrmd-host", dir) >= 0) {
		if (stat(p, &st) == 0 && strcmp(dir, WRM_DEFAULT_SBINDIR) != 0)
			D.host_prog = p;
		else
			free(p);
	}
	if (D.host_prog == NULL)
		D.host_prog = strdup(WRM_DEFAULT_HOSTPROG);
	if (D.conf->service.plugin_directory[0] != '\0')
		D.plugin_dir = strdup(D.conf->service.plugin_directory);
	else if (dir != NULL && asprintf(&p, "%s/plugins", dir) >= 0) {
		if (stat(p, &st) == 0 && strcmp(dir, WRM_DEFAULT_SBINDIR) != 0)
			D.plugin_dir = p;
		else
			free(p);
	}
	if (D.plugin_dir == NULL)
		D.plugin_dir = strdup(WRM_DEFAULT_PLUGINDIR);
	free(dir);
}

static void
set_machine_name(void)
{
	if (D.conf->service.host_name[0] != '\0') {
		snprintf(D.machine, sizeof(D.machine), "%s",
		    D.conf->service.host_name);
		return;
	}
	if (gethostname(D.machine, sizeof(D.machine)) != 0)
		strcpy(D.machine, "localhost");
	D.machine[sizeof(D.machine) - 1] = '\0';
}

static int
load_config(const char *path, struct wrm_conf **conf_r)
{
	struct wrm_conf *conf;
	char *put;
	size_t i;
	int r;

	if ((r = wrm_conf_load(path, &conf)) != 0)
		return r;
	/* Settings changed with WS-Management Put come after the file. */
	if ((put = wsman_config_put_file(conf->service.state_directory)) !=
	    NULL) {
		wrm_conf_include(conf, put);
		free(put);
	}
	for (i = 0; i < n_overrides; i++)
		if (wrm_conf_set(conf, overrides[i]) != 0)
			wrm_conf_add_error(conf, "-o %s: bad assignment",
			    overrides[i]);
	wrm_conf_check(conf);
	*conf_r = conf;
	return 0;
}

/* Where the powershell plugin would find pwsh, or NULL. */
static char *
find_pwsh(const struct wrm_session_conf *sc)
{
	const char *opt = wrm_conf_session_option(sc, "PwshPath");
	const char *path = getenv("PATH"), *home = getenv("HOME");
	char *copy, *dir, *save = NULL, *cand;

	if (opt != NULL && *opt)
		return access(opt, X_OK) == 0 ? strdup(opt) : NULL;
	copy = strdup(path != NULL ? path : "/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		if (asprintf(&cand, "%s/pwsh", dir) < 0)
			break;
		if (access(cand, X_OK) == 0) {
			free(copy);
			return cand;
		}
		free(cand);
	}
	free(copy);
	if (access("/opt/microsoft/powershell/7/pwsh", X_OK) == 0)
		return strdup("/opt/microsoft/powershell/7/pwsh");
	if (home != NULL && asprintf(&cand, "%s/.dotnet/tools/pwsh", home) >= 0) {
		if (access(cand, X_OK) == 0)
			return cand;
		free(cand);
	}
	return NULL;
}

/* -t: configuration problems, and every plugin's ABI check. */
static int
check_config(struct wrm_conf *conf)
{
	const struct wrm_session_conf *sc;
	char *path, *out;
	size_t i, j;
	int r;

	D.conf = conf;
	resolve_paths();
	if (access(D.host_prog, X_OK) != 0)
		wrm_conf_add_error(conf, "HostProgram %s: %s", D.host_prog,
		    strerror(errno));
	for (i = 0; i < conf->n_sessions; i++) {
		sc = &conf->sessions[i];
		path = wrm_plugin_path(D.plugin_dir, sc->plugin);
		if (path == NULL) {
			if (sc->builtin && !sc->enabled)
				continue;
			wrm_conf_add_error(conf, "SessionConfiguration %s: "
			    "plugin %s not found in %s", sc->name, sc->plugin,
			    D.plugin_dir);
			continue;
		}
		if (strcmp(sc->plugin, "powershell") == 0 && sc->enabled) {
			char *pw = find_pwsh(sc);

			if (pw == NULL)
				wrm_conf_add_warning(conf, "SessionConfiguration "
				    "%s: pwsh not found (set PwshPath or install "
				    "PowerShell 7); its shells will fail",
				    sc->name);
			free(pw);
		}
		r = wrm_spawn_check_plugin(D.host_prog, path, &out);
		if (r != 0)
			wrm_conf_add_error(conf, "SessionConfiguration %s: %s",
			    sc->name, out != NULL && strncmp(out, "refused\t",
			    8) == 0 ? out + 8 : "plugin check failed");
		else
			for (j = 0; j < sc->n_options; j++) {
				char pat[300];

				snprintf(pat, sizeof(pat), "option\t%s\t",
				    sc->options[j].key);
				if (out == NULL || strcasestr(out, pat) == NULL)
					wrm_conf_add_error(conf,
					    "SessionConfiguration %s: plugin %s "
					    "has no option %s", sc->name,
					    sc->plugin, sc->options[j].key);
			}
		free(out);
		free(path);
	}
	for (i = 0; i < conf->n_warnings; i++)
		fprintf(stderr, "warning: %s\n", conf->warnings[i]);
	for (i = 0; i < conf->n_errors; i++)
		fprintf(stderr, "error: %s\n", conf->errors[i]);
	return conf->n_errors > 0 ? 1 : 0;
}

/* Kerberos keytab and NTLM accounts for the GSSAPI mechanisms. */
static void
setup_gss(void)
{
	char *ntlm = NULL;

	if (D.conf->auth.ntlm_user_file[0] != '\0')
		ntlm = strdup(D.conf->auth.ntlm_user_file);
	else if (D.user_mode && D.store != NULL &&
	    asprintf(&ntlm, "%s/ntlm-users",
	    D.conf->service.state_directory) >= 0) {
		if (wrm_auth_write_ntlm_file(D.store, ntlm) != 0)
			error("cannot write %s: %s", ntlm, strerror(errno));
	}
	wrm_gss_setup(D.conf->auth.keytab, ntlm);
	free(ntlm);
}

static void
on_sigchld(int signo, void *arg)
{
	int status;

	pid_t pid;

	(void)signo;
	(void)arg;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		wrm_limits_release(pid);
}

static void
on_stop(int signo, void *arg)
{
	(void)arg;
	logit("received signal %d; stopping", signo);
	wrm_sd_notify("STOPPING=1");
	D.stopping = true;
	wrm_loop_stop(D.loop);
}

static void
on_hup(int signo, void *arg)
{
	struct wrm_conf *nc;
	size_t i;
	int lv;

	(void)signo;
	(void)arg;
	wrm_sd_notify("RELOADING=1");
	if (D.config_path == NULL || load_config(D.config_path, &nc) != 0) {
		wrm_sd_notify("READY=1");
		error("reload: cannot read the configuration");
		return;
	}
	if (nc->n_errors > 0) {
		error("reload: %s; keeping the running configuration",
		    nc->errors[0]);
		wrm_conf_free(nc);
		wrm_sd_notify("READY=1");
		return;
	}
	/*
	 * Listeners keep running with the settings they started with, except
	 * their certificates, read again; everything read per request takes
	 * the new values.
	 */
	for (i = 0; i < n_listeners; i++) {
		const struct wrm_listener_conf *lc = NULL;
		size_t j;

		for (j = 0; j < nc->n_listeners; j++)
			if (strcasecmp(nc->listeners[j].name,
			    wrm_http_name(listeners[i])) == 0)
				lc = &nc->listeners[j];
		if (lc != NULL)
			wrm_http_reload(listeners[i], lc);
	}
	{
		struct wrm_conf *old = D.conf;
		struct wrm_listener_conf *keep = old->listeners;
		size_t n = old->n_listeners;

		old->listeners = nc->listeners;
		old->n_listeners = nc->n_listeners;
		nc->listeners = keep;
		nc->n_listeners = n;
		D.conf = nc;
		wrm_conf_free(old);
	}
	if ((lv = wrm_log_level_parse(D.conf->service.log_level)) >= 0)
		wrm_log_set_level((enum wrm_log_level)lv);
	resolve_paths();
	wrm_auth_flush_cache();
	setup_gss();
	wrm_warm_flush();
	logit("configuration reloaded");
	wrm_sd_notify("READY=1");
}

static void
checkpoint(void *arg)
{
	(void)arg;
	checkpoint_timer = NULL;
	if (D.store != NULL)
		wrm_store_checkpoint(D.store);
	wrm_timer_add(D.loop, 60000, checkpoint, NULL, &checkpoint_timer);
}

static void
audit_to_store(const char *event, const char *detail)
{
	if (D.store != NULL)
		wrm_store_audit_add(D.store, event, detail);
}

#define AUDIT_PRUNE_EVERY_MS	(3600 * 1000)

/* Audit entries older than AuditRetentionDays go, at start and hourly. */
static void
audit_prune(void *arg)
{
	uint64_t days = D.conf->service.audit_retention_days;
	int64_t removed = 0;

	(void)arg;
	if (days > 0 && days < 1000000 && D.store != NULL &&
	    wrm_store_audit_prune(D.store, wrm_wall_ms() -
	    (int64_t)days * 86400 * 1000, &removed) == 0 && removed > 0)
		logit("audit: removed %lld entries older than %llu days",
		    (long long)removed, (unsigned long long)days);
	wrm_timer_add(D.loop, AUDIT_PRUNE_EVERY_MS, audit_prune, NULL, NULL);
}

static int
open_store(void)
{
	char *path;
	int r;

	if (mkdir(D.conf->service.state_directory, 0755) != 0 &&
	    errno != EEXIST) {
		error("cannot create %s: %s", D.conf->service.state_directory,
		    strerror(errno));
		return WRM_ERR_SYSTEM;
	}
	if (asprintf(&path, "%s/state.db", D.conf->service.state_directory) < 0)
		return WRM_ERR_ALLOC;
	r = wrm_store_open(path, false, &D.store);
	free(path);
	if (r == 0)
		wrm_audit_hook(audit_to_store);
	return r;
}

static int
start_listeners(struct wrm_lab *lab, char **http_url_r, char **https_url_r)
{
	struct wrm_listener *l;
	size_t i;
	int r;

	for (i = 0; i < D.conf->n_listeners && n_listeners < MAX_LISTENERS;
	    i++) {
		if (!D.conf->listeners[i].enabled)
			continue;
		if ((r = wrm_http_start(&D.conf->listeners[i], &l)) != 0)
			return r;
		listeners[n_listeners++] = l;
		if (lab != NULL)
			wrm_lab_listener_started(lab, &D.conf->listeners[i],
			    wrm_http_is_tls(l), wrm_http_port(l));
		if (http_url_r != NULL && !wrm_http_is_tls(l) &&
		    *http_url_r == NULL &&
		    asprintf(http_url_r, "http://127.0.0.1:%u/%s",
		    wrm_http_port(l), D.conf->listeners[i].url_prefix) < 0)
			*http_url_r = NULL;
		if (https_url_r != NULL && wrm_http_is_tls(l) &&
		    *https_url_r == NULL &&
		    asprintf(https_url_r, "https://127.0.0.1:%u/%s",
		    wrm_http_port(l), D.conf->listeners[i].url_prefix) < 0)
			*https_url_r = NULL;
	}
	return 0;
}

static void
drain_loop_once(void *arg)
{
	(void)arg;
	wrm_loop_stop(D.loop);
}

static void
shutdown_all(void)
{
	size_t i;

	/* Answer every waiting request, let the answers go out, then stop. */
	wrm_http_abort_all();
	for (i = 0; i < 20 && wrm_http_active_requests() > 0; i++) {
		wrm_timer_add(D.loop, 25, drain_loop_once, NULL, NULL);
		wrm_loop_run(D.loop);
	}
	/*
	 * An authentication step may still run on a worker, using its
	 * connection's state: finish the workers and deliver their results
	 * while the connections exist, before the listeners free them.
	 */
	wrm_work_shutdown();
	wrm_timer_add(D.loop, 25, drain_loop_once, NULL, NULL);
	wrm_loop_run(D.loop);
	wrm_admin_stop();
	wrm_http_stop_metrics();
	wrm_hosts_shutdown();
	for (i = 0; i < n_listeners; i++)
		wrm_http_stop(listeners[i]);
	n_listeners = 0;
	wsman_enum_expire_all();
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "lab", required_argument, NULL, 'L' },
		{ "port", required_argument, NULL, 'P' },
		{ "version", no_argument, NULL, 'V' },
		{ "list-keys", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct wrm_lab lab;
	const char *config = WRM_DEFAULT_CONFIG;
	char *http_url = NULL, *https_url = NULL;
	bool test_only = false, print = false, debug_flag = false;
	bool quiet = false;
	uint64_t port;
	int ch, lv, r, rc = 0;

	/* Before anything opens a file: sockets systemd may have passed. */
	wrm_sd_take_listen_fds();
	/*
	 * Responses are built in buffers of up to a few MiB that are freed
	 * once sent.  By default glibc gives such memory back to the kernel
	 * at once and the next response faults it in again, page by page
	 * (about half the daemon's time when streaming output).  Keep it.
	 */
	mallopt(M_MMAP_THRESHOLD, 8 << 20);
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
	memset(&lab, 0, sizeof(lab));
	lab.port = -1;
	while ((ch = getopt_long(argc, argv, "df:o:qtTVh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'd':
			debug_flag = true;
			break;
		case 'f':
			config = optarg;
			break;
		case 'o':
			overrides = realloc(overrides, (n_overrides + 1) *
			    sizeof(*overrides));
			if (overrides == NULL)
				fatal("out of memory");
			overrides[n_overrides++] = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 't':
			test_only = true;
			break;
		case 'T':
			print = true;
			break;
		case 'L':
			lab.dir = optarg;
			break;
		case 'P':
			if (wrm_parse_u64(optarg, &port) != 0 || port > 65534)
				usage();
			lab.port = (int)port;
			break;
		case 'V':
			printf("winrmd %s\n", PACKAGE_VERSION);
			return 0;
		case 'K':
			wrm_conf_list_keys(stdout);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	wrm_log_init("winrmd", quiet ? WRM_LOG_ERROR : WRM_LOG_INFO, false);
	wrm_soap_init();
	if (lab.dir != NULL) {
		if (wrm_lab_prepare(&lab) != 0)
			return 1;
		config = lab.config;
		D.lab = true;
		if (lab.port >= 0) {
			char *o1, *o2;

			if (asprintf(&o1, "Listener HTTP.Port=%d",
			    lab.port) < 0 || asprintf(&o2,
			    "Listener HTTPS.Port=%d",
			    lab.port == 0 ? 0 : lab.port + 1) < 0)
				fatal("out of memory");
			overrides = realloc(overrides, (n_overrides + 2) *
			    sizeof(*overrides));
			overrides[n_overrides++] = o1;
			overrides[n_overrides++] = o2;
		}
	}
	D.config_path = strdup(config);
	if (load_config(config, &D.conf) != 0)
		fatal("cannot read %s", config);
	if (print) {
		printf("# shell memory and process limits: %s\n",
		    wrm_limits_probe());
		wrm_conf_print(D.conf, stdout);
		return D.conf->n_errors > 0 ? 1 : 0;
	}
	if (test_only)
		return check_config(D.conf);
	if (D.conf->n_errors > 0) {
		size_t i;

		for (i = 0; i < D.conf->n_errors; i++)
			error("%s", D.conf->errors[i]);
		return 1;
	}
	lv = wrm_log_level_parse(D.conf->service.log_level);
	wrm_log_set_level(debug_flag ? WRM_LOG_DEBUG1 :
	    quiet ? WRM_LOG_ERROR : (enum wrm_log_level)(lv >= 0 ? lv :
	    WRM_LOG_INFO));
	resolve_paths();
	set_machine_name();
	D.user_mode = D.conf->service.user_mode || getuid() != 0;
	D.uid = getuid();
	signal(SIGPIPE, SIG_IGN);
	if (wrm_loop_new(&D.loop) != 0)
		fatal("cannot create the event loop");
	if (wrm_loop_signal(D.loop, SIGTERM, on_stop, NULL) != 0 ||
	    wrm_loop_signal(D.loop, SIGINT, on_stop, NULL) != 0 ||
	    wrm_loop_signal(D.loop, SIGHUP, on_hup, NULL) != 0 ||
	    wrm_loop_signal(D.loop, SIGCHLD, on_sigchld, NULL) != 0)
		fatal("cannot watch signals");
	if (wrm_work_init(D.loop, 2) != 0)
		fatal("cannot start worker threads");
	if ((r = wrm_auth_init()) != 0)
		fatal_fr(r, "authentication setup");
	if ((r = open_store()) != 0)
		fatal_fr(r, "cannot open the state store");
	wrm_limits_init();
	logit("shell limits: %s", wrm_limits_mechanism());
	wrm_shells_restore();
	wrm_shells_start_sweep();
	audit_prune(NULL);
	if (wrm_admin_start(D.conf->service.state_directory) != 0)
		error("no control socket: winrmctl shell and status will not "
		    "reach this daemon");
	setup_gss();
	if (start_listeners(lab.dir != NULL ? &lab : NULL, &http_url,
	    &https_url) != 0) {
		error("cannot start the listeners");
		rc = 1;
		goto out;
	}
	wrm_sd_close_unused();
	if (D.lab && wrm_lab_announce(&lab, http_url, https_url) != 0)
		error("lab: cannot write %s", lab.json);
	D.started_wall = wrm_wall_ms();
	if (D.conf->service.metrics_listen[0] != '\0' &&
	    wrm_http_start_metrics(D.conf->service.metrics_listen) != 0)
		error("metrics listener %s could not start",
		    D.conf->service.metrics_listen);
	wrm_sd_notify("READY=1\nSTATUS=serving");
	wrm_audit("SERVICE_START", "pid=%ld version=%s", (long)getpid(),
	    PACKAGE_VERSION);
	wrm_timer_add(D.loop, 60000, checkpoint, NULL, &checkpoint_timer);
	if (wrm_loop_run(D.loop) != 0)
		error("event loop failed: %s", strerror(errno));
out:
	D.stopping = true;
	wrm_timer_cancel(checkpoint_timer);
	shutdown_all();
	wrm_audit("SERVICE_STOP", "pid=%ld", (long)getpid());
	wrm_audit_hook(NULL);
	wrm_store_close(D.store);
	wrm_auth_shutdown();
	wrm_conf_free(D.conf);
	wrm_loop_free(D.loop);
	wrm_lab_stop(&lab);
	wrm_lab_free(&lab);
	free(http_url);
	free(https_url);
	free(D.host_prog);
	free(D.plugin_dir);
	free(D.config_path);
	logit("stopped");
	return rc;
}
