#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "lab-kdc.h"
#include "log.h"
#include "misc.h"

extern char **environ;

#define TOOL_TIMEOUT_MS	30000	/* kdb5_util, kadmin.local, kinit */
#define KDC_START_MS	10000	/* until krb5kdc accepts connections */
#define KDC_STOP_MS	5000	/* SIGTERM, then SIGKILL */
#define KDC_TRIES	3	/* ports tried */
#define OUT_MAX		65536

/* The running KDC, for wrm_lab_kdc_stop() (also run by atexit). */
static pid_t kdc_pid = -1;
static int kdc_pidfd = -1;
static pid_t kdc_owner = -1;
static char *kdc_pidfile;
static bool atexit_set;

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static char *
join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return NULL;
	return p;
}

static int
put_file(const char *path, const char *text, mode_t mode)
{
	return wrm_lab_write_file(path, text, strlen(text), mode);
}

static void
append_log(const char *path, const char *what, const char *text)
{
	FILE *f = fopen(path, "ae");

	if (f == NULL)
		return;
	fprintf(f, "--- %s\n%s%s", what, text,
	    *text && text[strlen(text) - 1] != '\n' ? "\n" : "");
	fclose(f);
}

/* A program in PATH or in the sbin directories, which PATH often lacks. */
static char *
find_tool(const char *name)
{
	static const char *const sbin[] = { "/usr/sbin", "/usr/local/sbin",
		"/sbin", NULL };
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL, *cand;
	size_t i;

	copy = strdup(path != NULL ? path : "");
	for (dir = copy != NULL ? strtok_r(copy, ":", &save) : NULL;
	    dir != NULL; dir = strtok_r(NULL, ":", &save)) {
		if (*dir == '\0' || (cand = join(dir, name)) == NULL)
			continue;
		if (access(cand, X_OK) == 0) {
			free(copy);
			return cand;
		}
		free(cand);
	}
	free(copy);
	for (i = 0; sbin[i] != NULL; i++) {
		if ((cand = join(sbin[i], name)) == NULL)
			return NULL;
		if (access(cand, X_OK) == 0)
			return cand;
		free(cand);
	}
	return NULL;
}

/* The environment of the Kerberos tools: ours, with the lab's files. */
static char **
tool_env(const struct wrm_lab_kdc *k, const char *profile,
    const char *ccache)
{
	static const char *const drop[] = { "KRB5_CONFIG=",
		"KRB5_KDC_PROFILE=", "KRB5CCNAME=", "KRB5_KTNAME=",
		"KRB5_CLIENT_KTNAME=", NULL };
	size_t n = 0, i, j, o = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 4, sizeof(*env))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		for (j = 0; drop[j] != NULL; j++)
			if (strncmp(environ[i], drop[j], strlen(drop[j])) == 0)
				break;
		if (drop[j] == NULL && (env[o++] = strdup(environ[i])) == NULL)
			goto fail;
	}
	if (asprintf(&env[o++], "KRB5_CONFIG=%s", k->krb5_conf) < 0 ||
	    asprintf(&env[o++], "KRB5_KDC_PROFILE=%s", profile) < 0 ||
	    asprintf(&env[o++], "KRB5CCNAME=%s", ccache) < 0)
		goto fail;
	return env;
fail:
	env[o > 0 ? o - 1 : 0] = NULL;
	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	free(env);
	return NULL;
}

static void
free_env(char **env)
{
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; env[i] != NULL; i++)
		free(env[i]);
	free(env);
}

/*
 * Children start with an empty signal mask and default dispositions (the
 * daemon may ignore SIGPIPE, and exec keeps ignored signals ignored).
 */
static void
child_attrs(posix_spawnattr_t *at)
{
	sigset_t none, dflt;

	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGCHLD);
	posix_spawnattr_init(at);
	posix_spawnattr_setsigmask(at, &none);
	posix_spawnattr_setsigdefault(at, &dflt);
	posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETSIGDEF);
}

static void
close_others(posix_spawn_file_actions_t *fa)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	posix_spawn_file_actions_addclosefrom_np(fa, 3);
#else
	(void)fa;
#endif
}

/*
 * Run argv (argv[0] a full path) with env, input on its standard input;
 * both output streams (at most OUT_MAX bytes) into *out_r.  Returns the
 * exit status, or -1 when it did not run, died of a signal or outlived
 * TOOL_TIMEOUT_MS (then it is killed).
 */
static int
run_tool(char *const argv[], char *const env[], const char *input,
    char **out_r)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	struct sigaction ign, old;
	char *out = NULL;
	size_t len = 0;
	uint64_t deadline = wrm_now_ms() + TOOL_TIMEOUT_MS;
	int in[2] = { -1, -1 }, op[2] = { -1, -1 }, status = 0, r;
	bool done = false;
	pid_t pid;

	*out_r = NULL;
	if ((out = malloc(OUT_MAX + 1)) == NULL)
		return -1;
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(op, O_CLOEXEC) != 0) {
		r = errno;
		if (in[0] >= 0) {
			close(in[0]);
			close(in[1]);
		}
		free(out);
		if (asprintf(out_r, "pipe: %s", strerror(r)) < 0)
			*out_r = NULL;
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_adddup2(&fa, op[1], 2);
	close_others(&fa);
	child_attrs(&at);
	r = posix_spawn(&pid, argv[0], &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(in[0]);
	close(op[1]);
	if (r != 0) {
		close(in[1]);
		close(op[0]);
		free(out);
		if (asprintf(out_r, "cannot run %s: %s", argv[0],
		    strerror(r)) < 0)
			*out_r = NULL;
		return -1;
	}
	/* A child that exits without reading must not kill us (SIGPIPE). */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old);
	if (input != NULL && write(in[1], input, strlen(input)) < 0)
		debug_f("%s: writing its input: %s", argv[0], strerror(errno));
	sigaction(SIGPIPE, &old, NULL);
	close(in[1]);
	for (;;) {
		struct pollfd p = { op[0], POLLIN, 0 };
		uint64_t now = wrm_now_ms();
		ssize_t n;

		if (now >= deadline)
			break;
		if (poll(&p, 1, (int)(deadline - now)) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p.revents == 0)
			continue;
		n = read(op[0], out + len, len < OUT_MAX ? OUT_MAX - len : 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 && len < OUT_MAX) {
			done = true;
			break;
		}
		if (n > 0)
			len += (size_t)n;
		else {
			/* Full: drain and drop the rest. */
			char sink[4096];

			if (read(op[0], sink, sizeof(sink)) <= 0) {
				done = true;
				break;
			}
		}
	}
	close(op[0]);
	out[len] = '\0';
	*out_r = out;
	while (done) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (wrm_now_ms() >= deadline)
			break;
		sleep_ms(5);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	error("lab: %s did not finish within %d s; killed", argv[0],
	    TOOL_TIMEOUT_MS / 1000);
	return -1;
}

/* Replace every occurrence of secret in s with asterisks. */
static void
scrub(char *s, const char *secret)
{
	size_t n = strlen(secret);
	char *p;

	if (s == NULL || n == 0)
		return;
	while ((p = strstr(s, secret)) != NULL)
		memset(p, '*', n);
}

/* The last non-empty line of out, for an error message (malloc'd). */
static char *
last_line(const char *out)
{
	const char *e, *s;

	if (out == NULL)
		return strdup("no output");
	e = out + strlen(out);
	while (e > out && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' '))
		e--;
	s = e;
	while (s > out && s[-1] != '\n')
		s--;
	return s < e ? strndup(s, (size_t)(e - s)) : strdup("no output");
}

/*
 * kadmin.local exits 0 whatever its commands did: its errors are the
 * lines "command: message while doing".  The first such line other than
 * "already exists" (malloc'd), or NULL.
 */
static char *
kadmin_error(const char *out)
{
	const char *line = out, *e;

	while (line != NULL && *line) {
		e = strchr(line, '\n');
		if (e == NULL)
			e = line + strlen(line);
		if (memmem(line, (size_t)(e - line), " while ", 7) != NULL &&
		    memmem(line, (size_t)(e - line), "already exists",
		    14) == NULL)
			return strndup(line, (size_t)(e - line));
		line = *e ? e + 1 : NULL;
	}
	return NULL;
}

/* A loopback port free for both TCP and UDP (krb5kdc binds both). */
static int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int t, u, port, tries, ok;

	for (tries = 0; tries < 20; tries++) {
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
			return -1;
		al = sizeof(a);
		if (bind(t, (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    getsockname(t, (struct sockaddr *)&a, &al) != 0) {
			close(t);
			return -1;
		}
		port = ntohs(a.sin_port);
		if ((u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
			close(t);
			return -1;
		}
		ok = bind(u, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(u);
		close(t);
		if (ok)
			return port;
	}
	return -1;
}

static bool
accepts_connections(int port)
{
	struct sockaddr_in a;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (s < 0)
		return false;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

/* Running: neither gone nor a zombie its new parent has not reaped. */
static bool
running(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	if (kill(pid, 0) != 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p == NULL || p[1] != ' ' || p[2] != 'Z';
}

/*
 * A KDC left running by a lab winrmd that was killed: its pid file names
 * it, and its command line names the pid file.
 */
static void
kill_stale(const char *pidfile)
{
	char *text = wrm_lab_read_small(pidfile), path[64], cmd[4096];
	ssize_t n;
	long pid;
	int fd, i;

	if (text == NULL)
		return;
	pid = strtol(text, NULL, 10);
	free(text);
	if (pid <= 1 || pid == (long)getpid())
		goto out;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		goto out;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		goto out;
	for (i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	cmd[n] = '\0';
	if (strstr(cmd, "krb5kdc") == NULL || strstr(cmd, pidfile) == NULL)
		goto out;
	logit("lab: stopping krb5kdc pid %ld left by an earlier run", pid);
	kill((pid_t)pid, SIGTERM);
	for (i = 0; i < 100 && running((pid_t)pid); i++)
		sleep_ms(20);
	if (running((pid_t)pid))
		kill((pid_t)pid, SIGKILL);
out:
	unlink(pidfile);
}

static bool
same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	char *ra;
	bool same;

	if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
		return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
	ra = realpath(a, NULL);
	same = ra != NULL ? strcmp(ra, b) == 0 : strcmp(a, b) == 0;
	free(ra);
	return same;
}

static bool
simple_word(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-' &&
		    *s != '_')
			return false;
	return true;
}

static int
add_spn(struct wrm_lab_kdc *k, const char *host)
{
	char **n, *spn;
	size_t i;

	if (asprintf(&spn, "HTTP/%s@%s", host, WRM_LAB_REALM) < 0)
		return WRM_ERR_ALLOC;
	for (i = 0; i < k->n_spns; i++)
		if (strcmp(k->spns[i], spn) == 0) {
			free(spn);
			return 0;
		}
	if ((n = realloc(k->spns, (k->n_spns + 1) * sizeof(*n))) == NULL) {
		free(spn);
		return WRM_ERR_ALLOC;
	}
	k->spns = n;
	k->spns[k->n_spns++] = spn;
	return 0;
}

static void
set_reason(struct wrm_lab_kdc *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_reason(struct wrm_lab_kdc *k, const char *fmt, ...)
{
	va_list ap;

	free(k->reason);
	va_start(ap, fmt);
	if (vasprintf(&k->reason, fmt, ap) < 0)
		k->reason = NULL;
	va_end(ap);
}

static int
write_confs(const struct wrm_lab_kdc *k, const char *profile, int port,
    const char *hostname)
{
	char *text;
	int r;

	if (asprintf(&text,
	    "# The lab's Kerberos realm (winrmd --lab), rewritten at every\n"
	    "# start.  Clients: KRB5_CONFIG=%s kinit\n"
	    "[libdefaults]\n"
	    " default_realm = %s\n"
	    " dns_lookup_kdc = false\n"
	    " dns_lookup_realm = false\n"
	    " rdns = false\n"
	    " dns_canonicalize_hostname = false\n"
	    " udp_preference_limit = 1\n"
	    " default_ccache_name = FILE:%s/ccache\n"
	    "[realms]\n"
	    " %s = {\n"
	    "  kdc = 127.0.0.1:%d\n"
	    " }\n"
	    "[domain_realm]\n"
	    " localhost = %s\n"
	    " 127.0.0.1 = %s\n"
	    "%s%s%s%s",
	    k->krb5_conf, WRM_LAB_REALM, k->dir, WRM_LAB_REALM, port,
	    WRM_LAB_REALM, WRM_LAB_REALM,
	    hostname != NULL ? " " : "", hostname != NULL ? hostname : "",
	    hostname != NULL ? " = " WRM_LAB_REALM : "",
	    hostname != NULL ? "\n" : "") < 0)
		return WRM_ERR_ALLOC;
	r = put_file(k->krb5_conf, text, 0644);
	free(text);
	if (r != 0)
		return r;
	if (asprintf(&text,
	    "# The lab KDC (winrmd --lab), rewritten at every start.\n"
	    "[kdcdefaults]\n"
	    " kdc_listen = 127.0.0.1:%d\n"
	    " kdc_tcp_listen = 127.0.0.1:%d\n"
	    "[realms]\n"
	    " %s = {\n"
	    "  database_name = %s/principal\n"
	    "  key_stash_file = %s/stash\n"
	    "  acl_file = %s/kadm5.acl\n"
	    "  max_life = 24h\n"
	    "  max_renewable_life = 7d\n"
	    "  supported_enctypes = aes256-cts-hmac-sha1-96:normal "
	    "aes128-cts-hmac-sha1-96:normal\n"
	    " }\n"
	    "[logging]\n"
	    " kdc = FILE:%s/kdc.log\n"
	    " default = FILE:%s/kdc.log\n",
	    port, port, WRM_LAB_REALM, k->dir, k->dir, k->dir, k->dir,
	    k->dir) < 0)
		return WRM_ERR_ALLOC;
	r = put_file(profile, text, 0600);
	free(text);
	return r;
}

static void
remove_realm(const struct wrm_lab_kdc *k)
{
	static const char *const files[] = { "principal", "principal.kadm5",
		"principal.kadm5.lock", "principal.ok", "stash", "http.keytab",
		"principals", NULL };
	char *p;
	size_t i;

	for (i = 0; files[i] != NULL; i++)
		if ((p = join(k->dir, files[i])) != NULL) {
			unlink(p);
			free(p);
		}
}

/* Start krb5kdc and wait until it accepts connections on port. */
static int
spawn_kdc(const char *prog, char **env, const char *pidfile,
    const char *logfile, int port, char **why_r)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char *argv[] = { (char *)prog, (char *)"-n", (char *)"-P",
		(char *)pidfile, NULL };
	uint64_t deadline;
	int r, status;
	pid_t pid;

	*why_r = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, logfile,
	    O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	close_others(&fa);
	child_attrs(&at);
	r = posix_spawn(&pid, prog, &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r != 0) {
		if (asprintf(why_r, "cannot run %s: %s", prog,
		    strerror(r)) < 0)
			*why_r = NULL;
		return WRM_ERR_SYSTEM;
	}
	deadline = wrm_now_ms() + KDC_START_MS;
	while (wrm_now_ms() < deadline) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			if (asprintf(why_r, "krb5kdc exited (%s %d) at start; "
			    "see %s", WIFEXITED(status) ? "status" : "signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) :
			    WTERMSIG(status), logfile) < 0)
				*why_r = NULL;
			return WRM_ERR_SYSTEM;
		}
		if (accepts_connections(port)) {
			kdc_pid = pid;
			kdc_owner = getpid();
#ifdef SYS_pidfd_open
			kdc_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
			if (kdc_pidfd >= 0)
				fcntl(kdc_pidfd, F_SETFD, FD_CLOEXEC);
#endif
			return 0;
		}
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (asprintf(why_r, "krb5kdc did not accept connections on "
	    "127.0.0.1:%d within %d s; see %s", port, KDC_START_MS / 1000,
	    logfile) < 0)
		*why_r = NULL;
	return WRM_ERR_TIMEOUT;
}

static bool
kdc_alive_wait(long ms)
{
	uint64_t deadline = wrm_now_ms() + (uint64_t)ms;
	int status;
	pid_t r;

	for (;;) {
#ifdef SYS_pidfd_open
		if (kdc_pidfd >= 0) {
			struct pollfd p = { kdc_pidfd, POLLIN, 0 };
			uint64_t now = wrm_now_ms();

			if (now >= deadline)
				break;
			if (poll(&p, 1, (int)(deadline - now)) > 0) {
				/* Exited: reap it unless the daemon did. */
				waitpid(kdc_pid, &status, WNOHANG);
				return false;
			}
			continue;
		}
#endif
		r = waitpid(kdc_pid, &status, WNOHANG);
		if (r == kdc_pid || (r < 0 && errno == ECHILD))
			return false;
		if (wrm_now_ms() >= deadline)
			break;
		sleep_ms(10);
	}
	return true;
}

static void
kdc_signal(int sig)
{
#if defined(SYS_pidfd_send_signal)
	if (kdc_pidfd >= 0) {
		syscall(SYS_pidfd_send_signal, kdc_pidfd, sig, NULL, 0);
		return;
	}
#endif
	kill(kdc_pid, sig);
}

void
wrm_lab_kdc_stop(void)
{
	if (kdc_pid <= 0 || getpid() != kdc_owner)
		return;
	kdc_signal(SIGTERM);
	if (kdc_alive_wait(KDC_STOP_MS)) {
		error("lab: krb5kdc (pid %ld) did not stop on SIGTERM; killing "
		    "it", (long)kdc_pid);
		kdc_signal(SIGKILL);
		kdc_alive_wait(1000);
	}
	if (kdc_pidfd >= 0)
		close(kdc_pidfd);
	kdc_pidfd = -1;
	kdc_pid = -1;
	if (kdc_pidfile != NULL)
		unlink(kdc_pidfile);
	free(kdc_pidfile);
	kdc_pidfile = NULL;
}

/* Check the whole path with the password: an AS exchange through kinit. */
static int
self_check(struct wrm_lab_kdc *k, const char *profile, const char *password,
    const char *setup_log)
{
	char *kinit = find_tool("kinit"), **env, *out = NULL, *line, *input;
	char *argv[3];
	int st;

	if (kinit == NULL)
		return 0;	/* no krb5-user: nothing to check with */
	env = tool_env(k, profile, "MEMORY:winrmd-lab-check");
	if (env == NULL || asprintf(&input, "%s\n", password) < 0) {
		free_env(env);
		free(kinit);
		return WRM_ERR_ALLOC;
	}
	argv[0] = kinit;
	argv[1] = k->principal;
	argv[2] = NULL;
	st = run_tool(argv, env, input, &out);
	explicit_bzero(input, strlen(input));
	free(input);
	free_env(env);
	free(kinit);
	scrub(out, password);
	append_log(setup_log, "kinit (self-check)", out != NULL ? out : "");
	if (st != 0) {
		line = last_line(out);
		set_reason(k, "kinit %s failed: %s", k->principal, line);
		free(line);
		free(out);
		return WRM_ERR_AUTH;
	}
	free(out);
	return 0;
}

int
wrm_lab_kdc_start(struct wrm_lab_kdc *k, const char *labdir,
    const char *user, const char *password)
{
	char *krb5kdc = NULL, *kdb5_util = NULL, *kadmin = NULL, *abs = NULL;
	char *profile = NULL, *pidfile = NULL, *logfile = NULL, *list = NULL;
	char *setup_log = NULL, *db = NULL, *old = NULL, *out = NULL;
	char *why = NULL, **env = NULL, *ec;
	char host[256], master[33], *hostname = NULL;
	struct wrm_buf lb, kb;
	struct stat sb;
	bool rebuild;
	uint8_t rnd[16];
	size_t i;
	int r = WRM_ERR_ALLOC, port = -1, tries, st;

	memset(k, 0, sizeof(*k));
	wrm_buf_init(&lb, 0);
	wrm_buf_init(&kb, 0);
	kb.secret = true;
	krb5kdc = find_tool("krb5kdc");
	kdb5_util = find_tool("kdb5_util");
	kadmin = find_tool("kadmin.local");
	if (krb5kdc == NULL || kdb5_util == NULL || kadmin == NULL) {
		set_reason(k, "MIT krb5-kdc is not installed (krb5kdc, "
		    "kdb5_util and kadmin.local were not all found in PATH, "
		    "/usr/sbin, /usr/local/sbin or /sbin)");
		r = WRM_ERR_NOT_FOUND;
		goto out;
	}
	if ((abs = realpath(labdir, NULL)) == NULL ||
	    (k->dir = join(abs, "kdc")) == NULL ||
	    (k->krb5_conf = join(k->dir, "krb5.conf")) == NULL ||
	    (k->keytab = join(k->dir, "http.keytab")) == NULL ||
	    (profile = join(k->dir, "kdc.conf")) == NULL ||
	    (pidfile = join(k->dir, "krb5kdc.pid")) == NULL ||
	    (logfile = join(k->dir, "kdc.log")) == NULL ||
	    (setup_log = join(k->dir, "setup.log")) == NULL ||
	    (list = join(k->dir, "principals")) == NULL ||
	    (db = join(k->dir, "principal")) == NULL ||
	    asprintf(&k->principal, "%s@%s", user, WRM_LAB_REALM) < 0) {
		set_reason(k, "out of memory");
		goto out;
	}
	if ((ec = getenv("KRB5_CONFIG")) != NULL && *ec &&
	    !same_file(ec, k->krb5_conf)) {
		set_reason(k, "KRB5_CONFIG is set in winrmd's environment "
		    "(%s): winrmd keeps that Kerberos configuration and the "
		    "lab starts no realm of its own", ec);
		r = WRM_ERR_CONFIG;
		goto out;
	}
	if (!simple_word(user) || !simple_word(password)) {
		set_reason(k, "the lab user name or password has characters "
		    "kadmin.local would need quoted");
		r = WRM_ERR_CONFIG;
		goto out;
	}
	if (mkdir(k->dir, 0700) != 0 && errno != EEXIST) {
		set_reason(k, "cannot create %s: %s", k->dir, strerror(errno));
		r = WRM_ERR_SYSTEM;
		goto out;
	}
	kill_stale(pidfile);

	/* The names a client on this host puts in a URL. */
	if (add_spn(k, "localhost") != 0 || add_spn(k, "127.0.0.1") != 0)
		goto out;
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		for (i = 0; host[i]; i++)
			host[i] = (char)tolower((unsigned char)host[i]);
		if (simple_word(host) && strcmp(host, "localhost") != 0) {
			hostname = host;
			if (add_spn(k, host) != 0)
				goto out;
		}
	}
	for (i = 0; i < k->n_spns; i++)
		if (wrm_buf_printf(&lb, "%s\n", k->spns[i]) != 0)
			goto out;
	old = wrm_lab_read_small(list);
	rebuild = stat(db, &sb) != 0 || stat(k->keytab, &sb) != 0 ||
	    old == NULL || strcmp(old, wrm_buf_str(&lb)) != 0;

	if ((port = free_port()) < 0) {
		set_reason(k, "no free loopback port for the KDC");
		r = WRM_ERR_SYSTEM;
		goto out;
	}
	if ((r = write_confs(k, profile, port, hostname)) != 0) {
		set_reason(k, "cannot write %s or %s: %s", k->krb5_conf,
		    profile, strerror(errno));
		goto out;
	}
	r = WRM_ERR_ALLOC;
	if ((env = tool_env(k, profile, "MEMORY:winrmd-lab")) == NULL)
		goto out;
	if (rebuild) {
		char *argv[] = { kdb5_util, (char *)"create", (char *)"-s",
			(char *)"-r", (char *)WRM_LAB_REALM, (char *)"-P",
			master, NULL };

		remove_realm(k);
		wrm_random(rnd, sizeof(rnd));
		for (i = 0; i < sizeof(rnd); i++)
			snprintf(master + 2 * i, 3, "%02x", rnd[i]);
		st = run_tool(argv, env, NULL, &out);
		explicit_bzero(master, sizeof(master));
		append_log(setup_log, "kdb5_util create", out ? out : "");
		if (st != 0) {
			char *l = last_line(out);

			set_reason(k, "kdb5_util create failed: %s (see %s)", l,
			    setup_log);
			free(l);
			r = WRM_ERR_SYSTEM;
			goto out;
		}
		free(out);
		out = NULL;
		for (i = 0; i < k->n_spns; i++)
			if (wrm_buf_printf(&kb, "addprinc -randkey %s\n",
			    k->spns[i]) != 0)
				goto out;
		if (wrm_buf_printf(&kb, "ktadd -k %s", k->keytab) != 0)
			goto out;
		for (i = 0; i < k->n_spns; i++)
			if (wrm_buf_printf(&kb, " %s", k->spns[i]) != 0)
				goto out;
		if (wrm_buf_puts(&kb, "\n") != 0)
			goto out;
	}
	/* Create the user, or set its password (which may be new). */
	if (wrm_buf_printf(&kb, "addprinc -pw %s %s\ncpw -pw %s %s\n",
	    password, k->principal, password, k->principal) != 0)
		goto out;
	{
		char *argv[] = { kadmin, (char *)"-r", (char *)WRM_LAB_REALM,
			NULL };
		char *bad;

		st = run_tool(argv, env, wrm_buf_str(&kb), &out);
		scrub(out, password);
		append_log(setup_log, "kadmin.local", out ? out : "");
		bad = st == 0 ? kadmin_error(out) : last_line(out);
		if (bad != NULL) {
			set_reason(k, "kadmin.local: %s (see %s)", bad,
			    setup_log);
			free(bad);
			r = WRM_ERR_SYSTEM;
			goto out;
		}
		free(out);
		out = NULL;
	}
	if (rebuild) {
		if (stat(k->keytab, &sb) != 0) {
			set_reason(k, "kadmin.local wrote no %s (see %s)",
			    k->keytab, setup_log);
			r = WRM_ERR_SYSTEM;
			goto out;
		}
		put_file(list, wrm_buf_str(&lb), 0600);
	}

	/* Start the KDC; another port if krb5kdc cannot bind this one. */
	for (tries = 0;; tries++) {
		free(why);
		why = NULL;
		if ((r = spawn_kdc(krb5kdc, env, pidfile, logfile, port,
		    &why)) == 0)
			break;
		if (tries + 1 >= KDC_TRIES || r == WRM_ERR_TIMEOUT) {
			set_reason(k, "%s", why != NULL ? why :
			    "krb5kdc did not start");
			goto out;
		}
		if ((port = free_port()) < 0 ||
		    write_confs(k, profile, port, hostname) != 0) {
			set_reason(k, "%s", why != NULL ? why :
			    "krb5kdc did not start");
			r = WRM_ERR_SYSTEM;
			goto out;
		}
	}
	kdc_pidfile = pidfile;
	pidfile = NULL;
	if (!atexit_set && atexit(wrm_lab_kdc_stop) == 0)
		atexit_set = true;
	if ((r = self_check(k, profile, password, setup_log)) != 0) {
		wrm_lab_kdc_stop();
		goto out;
	}
	if (asprintf(&k->kdc, "127.0.0.1:%d", port) < 0) {
		wrm_lab_kdc_stop();
		r = WRM_ERR_ALLOC;
		goto out;
	}
	/* Before the daemon's first GSSAPI call. */
	setenv("KRB5_CONFIG", k->krb5_conf, 1);
	k->available = true;
	logit("lab: Kerberos realm %s: KDC on %s (pid %ld), %s, keytab %s",
	    WRM_LAB_REALM, k->kdc, (long)kdc_pid, k->krb5_conf, k->keytab);
	r = 0;
out:
	if (r != 0 && k->reason == NULL)
		set_reason(k, "out of memory");
	if (r != 0) {
		if (r == WRM_ERR_NOT_FOUND || r == WRM_ERR_CONFIG)
			logit("lab: no Kerberos realm: %s", k->reason);
		else
			error("lab: no Kerberos realm: %s", k->reason);
	}
	free_env(env);
	wrm_buf_free(&lb);
	wrm_buf_free(&kb);
	free(krb5kdc);
	free(kdb5_util);
	free(kadmin);
	free(abs);
	free(profile);
	free(pidfile);
	free(logfile);
	free(setup_log);
	free(list);
	free(db);
	free(old);
	free(out);
	free(why);
	return r;
}

void
wrm_lab_kdc_free(struct wrm_lab_kdc *k)
{
	size_t i;

	free(k->reason);
	free(k->dir);
	free(k->krb5_conf);
	free(k->keytab);
	free(k->kdc);
	free(k->principal);
	for (i = 0; i < k->n_spns; i++)
		free(k->spns[i]);
	free(k->spns);
	memset(k, 0, sizeof(*k));
}
