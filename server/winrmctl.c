/*
 * winrmctl: administer winrmd: its store (lab users, shells, audit log),
 * its session configurations (winrmctl-config.c) and the first setup of
 * a host (winrmctl-quickconfig.c).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "conf.h"
#include "daemon.h"
#include "err.h"
#include "log.h"
#include "misc.h"
#include "store.h"
#include "winrmctl.h"

/* auth.c's hashing is shared with the daemon, which owns this. */
struct wrm_daemon D;

const char *ctl_config_path = WRM_DEFAULT_CONFIG;
char **ctl_overrides;
size_t ctl_n_overrides;

void
ctl_usage(void)
{
	fprintf(stderr,
	    "usage: winrmctl [-f config] [-o Section.Key=value] COMMAND ...\n"
	    "       winrmctl [-f config] user add NAME [--password-stdin]\n"
	    "       winrmctl [-f config] user passwd NAME [--password-stdin]\n"
	    "       winrmctl [-f config] user del NAME\n"
	    "       winrmctl [-f config] user list\n"
	    "       winrmctl [-f config] shells\n"
	    "       winrmctl [-f config] shell show|disconnect|kill SHELL_ID\n"
	    "       winrmctl [-f config] status\n"
	    "       winrmctl [-f config] audit [--since ID] [--max N]\n"
	    "       winrmctl [-f config] config list\n"
	    "       winrmctl [-f config] config show NAME\n"
	    "       winrmctl [-f config] config register NAME --plugin PLUGIN\n"
	    "                [--resource-uri URI] [--reload] [Key=Value ...]\n"
	    "       winrmctl [-f config] config set NAME [--reload] "
	    "Key=Value ...\n"
	    "       winrmctl [-f config] config enable|disable|unregister NAME "
	    "[--reload]\n"
	    "       winrmctl [-f config] quickconfig [--dry-run] "
	    "[--https-port PORT]\n"
	    "                [--hostname NAME] [--group GROUP] "
	    "[--pam-file PATH]\n");
	exit(2);
}

static char *ntlm_file;	/* where NT hashes go, or NULL */

/* One request to the daemon; 0 ok, 1 refused, 2 daemon unreachable. */
int
ctl_admin_request(const char *state_dir, const char *request, FILE *out)
{
	struct sockaddr_un sa;
	char buf[4096];
	ssize_t r;
	int fd, rc = 1;
	bool first = true;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control",
	    state_dir) >= sizeof(sa.sun_path))
		return 2;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 2;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return 2;
	}
	if (write(fd, request, strlen(request)) < 0 || write(fd, "\n", 1) < 0) {
		close(fd);
		return 2;
	}
	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		size_t skip = 0;

		if (first) {
			rc = r >= 3 && strncmp(buf, "ok\n", 3) == 0 ? 0 : 1;
			skip = rc == 0 ? 3 : 0;
			first = false;
		}
		fwrite(buf + skip, 1, (size_t)r - skip, rc == 0 ? out : stderr);
	}
	close(fd);
	return rc;
}

/* The configuration file, then the -o assignments. */
static int
load_conf(struct wrm_conf **conf_r)
{
	size_t i;
	int r;

	if ((r = wrm_conf_load(ctl_config_path, conf_r)) != 0)
		return r;
	for (i = 0; i < ctl_n_overrides; i++)
		if (wrm_conf_set(*conf_r, ctl_overrides[i]) != 0)
			wrm_conf_add_error(*conf_r, "-o %s: bad assignment",
			    ctl_overrides[i]);
	return 0;
}

/* The StateDirectory of the configuration. */
static char *
state_dir(void)
{
	struct wrm_conf *conf;
	char *d;

	if (load_conf(&conf) != 0 || conf->n_errors > 0) {
		fprintf(stderr, "winrmctl: cannot read %s\n", ctl_config_path);
		exit(1);
	}
	d = strdup(conf->service.state_directory);
	wrm_conf_free(conf);
	return d;
}

/* status, shell show|disconnect|kill ID: asked of the running daemon. */
static int
cmd_daemon(int argc, char **argv)
{
	char req[256], *dir;
	int r;

	if (strcmp(argv[0], "status") == 0 && argc == 1)
		snprintf(req, sizeof(req), "status");
	else if (strcmp(argv[0], "shell") == 0 && argc == 3 &&
	    (strcmp(argv[1], "show") == 0 ||
	    strcmp(argv[1], "disconnect") == 0 ||
	    strcmp(argv[1], "kill") == 0) && strlen(argv[2]) < 80 &&
	    strpbrk(argv[2], " \t\r\n") == NULL)
		snprintf(req, sizeof(req), "shell %s %s", argv[1], argv[2]);
	else
		ctl_usage();
	dir = state_dir();
	r = ctl_admin_request(dir, req, stdout);
	if (r == 2)
		fprintf(stderr, "winrmctl: winrmd is not running (no control "
		    "socket in %s)\n", dir);
	free(dir);
	return r;
}

static struct wrm_store *
open_store(bool readonly)
{
	struct wrm_conf *conf;
	struct wrm_store *st;
	char *path;

	if (load_conf(&conf) != 0 || conf->n_errors > 0) {
		fprintf(stderr, "winrmctl: cannot read %s%s%s\n",
		    ctl_config_path,
		    conf != NULL && conf->n_errors > 0 ? ": " : "",
		    conf != NULL && conf->n_errors > 0 ? conf->errors[0] : "");
		exit(1);
	}
	if (asprintf(&path, "%s/state.db", conf->service.state_directory) < 0)
		exit(1);
	if (conf->auth.ntlm_user_file[0] != '\0')
		ntlm_file = strdup(conf->auth.ntlm_user_file);
	else if (asprintf(&ntlm_file, "%s/ntlm-users",
	    conf->service.state_directory) < 0)
		ntlm_file = NULL;
	wrm_conf_free(conf);
	if (wrm_store_open(path, readonly, &st) != 0) {
		fprintf(stderr, "winrmctl: cannot open %s\n", path);
		exit(1);
	}
	free(path);
	return st;
}

static char *
read_password(bool from_stdin)
{
	char buf[1024], again[1024];
	struct termios old, quiet;
	bool tty = !from_stdin && isatty(STDIN_FILENO);
	size_t n;

	if (tty) {
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
		fprintf(stderr, "Password: ");
	}
	if (fgets(buf, sizeof(buf), stdin) == NULL)
		buf[0] = '\0';
	if (tty) {
		fprintf(stderr, "\nAgain: ");
		if (fgets(again, sizeof(again), stdin) == NULL)
			again[0] = '\0';
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		fprintf(stderr, "\n");
		if (strcmp(buf, again) != 0) {
			fprintf(stderr, "winrmctl: passwords differ\n");
			exit(1);
		}
		explicit_bzero(again, sizeof(again));
	}
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	if (n == 0) {
		fprintf(stderr, "winrmctl: empty password\n");
		exit(1);
	}
	return strdup(buf);
}

static int
cmd_user(int argc, char **argv)
{
	struct wrm_store *st;
	struct wrm_store_user *u;
	char *pw, *hash, nt[33];
	size_t n, i;
	bool from_stdin = argc > 2 && strcmp(argv[2], "--password-stdin") == 0;
	int r;

	if (argc < 1)
		ctl_usage();
	if (strcmp(argv[0], "list") == 0) {
		st = open_store(true);
		if (wrm_store_user_list(st, &u, &n) != 0)
			return 1;
		for (i = 0; i < n; i++)
			printf("%s\n", u[i].name);
		wrm_store_user_list_free(u, n);
		wrm_store_close(st);
		return 0;
	}
	if (argc < 2)
		ctl_usage();
	if (strcmp(argv[0], "del") == 0) {
		st = open_store(false);
		r = wrm_store_user_del(st, argv[1]);
		if (r == 0 && ntlm_file != NULL)
			wrm_auth_write_ntlm_file(st, ntlm_file);
		wrm_store_close(st);
		if (r != 0)
			fprintf(stderr, "winrmctl: %s: %s\n", argv[1], wrm_err(r));
		return r != 0;
	}
	if (strcmp(argv[0], "add") != 0 && strcmp(argv[0], "passwd") != 0)
		ctl_usage();
	if (strchr(argv[1], ':') != NULL || argv[1][0] == '\0') {
		fprintf(stderr, "winrmctl: bad user name\n");
		return 1;
	}
	pw = read_password(from_stdin);
	r = wrm_auth_hash_password(pw, &hash);
	if (r == 0)
		r = wrm_auth_nt_hash(pw, nt);
	wrm_freezero_str(pw);
	if (r != 0) {
		fprintf(stderr, "winrmctl: cannot hash the password\n");
		return 1;
	}
	st = open_store(false);
	if (strcmp(argv[0], "passwd") == 0) {
		char *old = NULL;

		if (wrm_store_user_get_hash(st, argv[1], &old) != 0) {
			fprintf(stderr, "winrmctl: %s: no such user\n", argv[1]);
			wrm_store_close(st);
			free(hash);
			return 1;
		}
		free(old);
	}
	r = wrm_store_user_set(st, argv[1], hash, nt, strcmp(argv[0], "add") ==
	    0);
	explicit_bzero(nt, sizeof(nt));
	free(hash);
	if (r == 0 && ntlm_file != NULL &&
	    wrm_auth_write_ntlm_file(st, ntlm_file) != 0)
		fprintf(stderr, "winrmctl: cannot write %s\n", ntlm_file);
	wrm_store_close(st);
	if (r == WRM_ERR_EXISTS)
		fprintf(stderr, "winrmctl: %s exists (use passwd)\n", argv[1]);
	else if (r != 0)
		fprintf(stderr, "winrmctl: %s\n", wrm_err(r));
	return r != 0;
}

static int
cmd_shells(void)
{
	struct wrm_store *st = open_store(true);
	struct wrm_store_shell *s;
	char when[32];
	size_t n, i;
	time_t t;

	if (wrm_store_shell_list(st, &s, &n) != 0)
		return 1;
	printf("%-36s  %-12s  %-20s  %-12s  %-8s  %s\n", "SHELLID", "STATE",
	    "CONFIGURATION", "OWNER", "PID", "CREATED");
	for (i = 0; i < n; i++) {
		t = (time_t)(s[i].created / 1000);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		printf("%-36s  %-12s  %-20s  %-12s  %-8lld  %s\n", s[i].id,
		    s[i].state, s[i].configuration, s[i].owner,
		    (long long)s[i].host_pid, when);
	}
	wrm_store_shell_list_free(s, n);
	wrm_store_close(st);
	return 0;
}

static int
cmd_audit(int argc, char **argv)
{
	struct wrm_store *st;
	struct wrm_store_audit *a;
	uint64_t since = 0, max = 100;
	char when[32];
	size_t n, i;
	time_t t;
	int k;

	for (k = 0; k < argc; k++) {
		if (strcmp(argv[k], "--since") == 0 && k + 1 < argc)
			wrm_parse_u64(argv[++k], &since);
		else if (strcmp(argv[k], "--max") == 0 && k + 1 < argc)
			wrm_parse_u64(argv[++k], &max);
		else
			ctl_usage();
	}
	st = open_store(true);
	if (wrm_store_audit_list(st, (int64_t)since, max, &a, &n) != 0)
		return 1;
	for (i = 0; i < n; i++) {
		t = (time_t)(a[i].ts / 1000);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
		printf("%lld %s %s %s\n", (long long)a[i].id, when, a[i].event,
		    a[i].detail ? a[i].detail : "");
	}
	wrm_store_audit_list_free(a, n);
	wrm_store_close(st);
	return 0;
}

int
main(int argc, char **argv)
{
	int ch;

	wrm_log_init("winrmctl", WRM_LOG_ERROR, false);
	while ((ch = getopt(argc, argv, "+f:o:h")) != -1) {
		switch (ch) {
		case 'f':
			ctl_config_path = optarg;
			break;
		case 'o':
			ctl_overrides = realloc(ctl_overrides,
			    (ctl_n_overrides + 1) * sizeof(*ctl_overrides));
			if (ctl_overrides == NULL)
				exit(1);
			ctl_overrides[ctl_n_overrides++] = optarg;
			break;
		default:
			ctl_usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1)
		ctl_usage();
	if (strcmp(argv[0], "user") == 0)
		return cmd_user(argc - 1, argv + 1);
	if (strcmp(argv[0], "shells") == 0)
		return cmd_shells();
	if (strcmp(argv[0], "shell") == 0 || strcmp(argv[0], "status") == 0)
		return cmd_daemon(argc, argv);
	if (strcmp(argv[0], "audit") == 0)
		return cmd_audit(argc - 1, argv + 1);
	if (strcmp(argv[0], "config") == 0)
		return ctl_cmd_config(argc - 1, argv + 1);
	if (strcmp(argv[0], "quickconfig") == 0)
		return ctl_cmd_quickconfig(argc - 1, argv + 1);
	ctl_usage();
	return 2;
}
