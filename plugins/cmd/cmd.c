/*
 * The "cmd" plugin: the WinRS shell (resource URI .../windows/shell/cmd).
 *
 * A command line is Command followed by each Arguments value, separated by
 * single spaces, as Windows builds it.  It runs as /bin/sh -c LINE, or
 * directly (split the way Windows splits a command line) when the client
 * sets WINRS_SKIP_CMD_SHELL.  A line whose first word is PowerShell,
 * powershell.exe, pwsh or pwsh.exe runs pwsh with the same arguments when
 * pwsh is installed; a private directory holding "PowerShell" and
 * "powershell.exe" links to pwsh and a no-op chcp.com is put first on
 * PATH, so scripts that start PowerShell again (Ansible's module wrapper
 * does) find it.
 *
 * Each command is its own session and process group: ctrl_c sends SIGINT
 * to the group, ctrl_break SIGQUIT, terminate SIGTERM and, two seconds
 * later, SIGKILL.  stdin is fed from a buffer that Send appends to, so a
 * Send never waits for the child; stdout and stderr are read through
 * 1 MiB pipes and handed to the host, which buffers them for Receive.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <winrmd/plugin.h>

#define READ_CHUNK		(256u * 1024)
#define PIPE_SIZE		(1024 * 1024)
#define MAX_STDIN_BUFFER	(256u * 1024 * 1024)
#define KILL_GRACE_MS		2000
#define DRAIN_AFTER_EXIT_MS	100

/* ERROR_DIRECTORY as an HRESULT: "The directory name is invalid." */
#define ERROR_BAD_DIRECTORY	2147942667u

extern char **environ;

static const struct wrm_host_api *host;

struct cmd_plugin {
	char *pwsh;		/* pwsh path, or NULL */
	char *shim_dir;		/* PATH directory with the shims, or NULL */
	bool shim_private;	/* made for this host alone: remove it */
};

struct cmd_shell {
	char **env;		/* NAME=VALUE, NULL-terminated */
	char *workdir;
	struct cmd_command *cmds;
};

struct cmd_command {
	struct cmd_shell *shell;
	struct cmd_command *next;
	pid_t pid;		/* also the process group and session */
	bool exited;
	bool reaped;
	int status;
	bool released;
	int in_fd, out_fd, err_fd;
	struct wrm_watch *in_w, *out_w, *err_w;
	uint8_t *in_buf;
	size_t in_len, in_off;
	bool in_eof;
	struct wrm_request *recv;	/* RECEIVE request, until DONE */
	bool paused;
	bool running_reported;
	bool done;
	struct wrm_watch *kill_timer;
	struct wrm_watch *drain_timer;
};

static const struct wrm_plugin_option cmd_options[] = {
	{ "PwshPath", WRM_OPTION_PATH, false,
	    "pwsh to run for PowerShell command lines (default: search PATH)" },
	{ NULL, 0, false, NULL },
};

static char *
find_in_path(const char *name)
{
	const char *path = getenv("PATH");
	const char *home = getenv("HOME");
	char *copy, *dir, *save = NULL, *cand = NULL;
	static const char *const extra[] = {
		"/usr/bin", "/usr/local/bin", "/opt/microsoft/powershell/7",
		"/snap/bin",
	};
	size_t i;

	copy = strdup(path != NULL ? path : "/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		if (asprintf(&cand, "%s/%s", dir, name) < 0)
			break;
		if (access(cand, X_OK) == 0)
			goto found;
		free(cand);
		cand = NULL;
	}
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		if (asprintf(&cand, "%s/%s", extra[i], name) < 0)
			break;
		if (access(cand, X_OK) == 0)
			goto found;
		free(cand);
		cand = NULL;
	}
	if (home != NULL && asprintf(&cand, "%s/.dotnet/tools/%s", home,
	    name) >= 0) {
		if (access(cand, X_OK) == 0)
			goto found;
		free(cand);
		cand = NULL;
	}
found:
	free(copy);
	return cand;
}

static const char *const shim_links[] = {
	"PowerShell", "powershell", "powershell.exe", "PowerShell.exe",
	"pwsh.exe",
};
static const char *const shim_noops[] = { "chcp.com", "chcp" };

/* Fill dir with the shims for pwsh. */
static void
fill_shims(const char *dir, const char *pwsh)
{
	char path[4400];
	size_t i;
	int fd;

	for (i = 0; i < sizeof(shim_links) / sizeof(shim_links[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, shim_links[i]);
		if (symlink(pwsh, path) != 0)
			host->log(LOG_WARNING, "cmd: symlink %s: %s", path,
			    strerror(errno));
	}
	for (i = 0; i < sizeof(shim_noops) / sizeof(shim_noops[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, shim_noops[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
		if (fd >= 0) {
			if (write(fd, "#!/bin/sh\nexit 0\n", 17) != 17)
				host->log(LOG_WARNING, "cmd: write %s", path);
			close(fd);
		}
	}
}

/* Whether dir is this user's private shim directory for pwsh. */
static bool
shims_usable(const char *dir, const char *pwsh)
{
	char path[4200], target[4096];
	struct stat st;
	ssize_t n;

	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != getuid() || (st.st_mode & 077) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/%s", dir, shim_links[0]);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, pwsh) == 0;
}

/*
 * The directory put first on commands' PATH, in which PowerShell and
 * powershell.exe lead to pwsh and chcp does nothing.  It is made once
 * per user and pwsh (TMPDIR/winrmd-shims-UID, mode 0700, checked to be
 * the user's own before use) and kept, since every shell of every host
 * needs the same; it is made privately for this host (and removed with
 * it) only when that one cannot be used.
 */
static void remove_shims(struct cmd_plugin *p);

static int
make_shims(struct cmd_plugin *p)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096], fresh[4200];

	if (tmp == NULL || tmp[0] != '/')
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/winrmd-shims-%lu", tmp,
	    (unsigned long)getuid());
	if (shims_usable(dir, p->pwsh)) {
		p->shim_dir = strdup(dir);
		return 0;
	}
	/* Build it aside, then move it in place (another host may race). */
	snprintf(fresh, sizeof(fresh), "%s.XXXXXX", dir);
	if (mkdtemp(fresh) == NULL)
		return -errno;
	fill_shims(fresh, p->pwsh);
	if (rename(fresh, dir) == 0 || shims_usable(dir, p->pwsh)) {
		if (access(fresh, F_OK) == 0) {
			p->shim_dir = strdup(fresh);
			p->shim_private = true;
			remove_shims(p);
			free(p->shim_dir);
			p->shim_private = false;
		}
		p->shim_dir = strdup(dir);
		return 0;
	}
	/* Someone else's file is in the way: keep a private one. */
	p->shim_dir = strdup(fresh);
	p->shim_private = true;
	return 0;
}

static void
remove_shims(struct cmd_plugin *p)
{
	char path[4200];
	size_t i;

	if (p->shim_dir == NULL || !p->shim_private)
		return;
	for (i = 0; i < sizeof(shim_links) / sizeof(shim_links[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", p->shim_dir,
		    shim_links[i]);
		unlink(path);
	}
	for (i = 0; i < sizeof(shim_noops) / sizeof(shim_noops[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", p->shim_dir,
		    shim_noops[i]);
		unlink(path);
	}
	rmdir(p->shim_dir);
}

static int
cmd_startup(const struct wrm_plugin_startup *info, void **ctx_r)
{
	struct cmd_plugin *p;
	const char *opt = host->get_configuration("PwshPath");

	(void)info;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	if (opt != NULL && opt[0] != '\0')
		p->pwsh = access(opt, X_OK) == 0 ? strdup(opt) : NULL;
	else
		p->pwsh = find_in_path("pwsh");
	if (p->pwsh != NULL)
		make_shims(p);
	*ctx_r = p;
	return 0;
}

static void
cmd_shutdown(void *ctx, enum wrm_shutdown_reason reason)
{
	struct cmd_plugin *p = ctx;

	(void)reason;
	remove_shims(p);
	free(p->shim_dir);
	free(p->pwsh);
	free(p);
}

static const char *
option(const struct wrm_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->n_options; i++)
		if (req->options[i].name != NULL &&
		    strcasecmp(req->options[i].name, name) == 0)
			return req->options[i].value;
	return NULL;
}

static bool
truthy(const char *v)
{
	return v != NULL && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static int
env_push(char ***env, size_t *n, const char *name, const char *value)
{
	char **ne, *s;
	size_t i, nl = strlen(name);

	if (asprintf(&s, "%s=%s", name, value) < 0)
		return -ENOMEM;
	for (i = 0; i < *n; i++) {
		if (strncmp((*env)[i], name, nl) == 0 && (*env)[i][nl] == '=') {
			free((*env)[i]);
			(*env)[i] = s;
			return 0;
		}
	}
	if ((ne = realloc(*env, (*n + 2) * sizeof(*ne))) == NULL) {
		free(s);
		return -ENOMEM;
	}
	ne[(*n)++] = s;
	ne[*n] = NULL;
	*env = ne;
	return 0;
}

static void
env_free(char **env)
{
	size_t i;

	for (i = 0; env != NULL && env[i] != NULL; i++)
		free(env[i]);
	free(env);
}

static const char *
env_get(char **env, const char *name)
{
	size_t i, nl = strlen(name);

	for (i = 0; env != NULL && env[i] != NULL; i++)
		if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=')
			return env[i] + nl + 1;
	return NULL;
}

/* The host's environment, the shell's variables and the PATH shims. */
static char **
build_env(struct cmd_plugin *p, const struct wrm_shell_startup *info)
{
	const char *path, *home, *tmp;
	char **env = NULL, *np;
	size_t i, n = 0;

	if ((env = calloc(1, sizeof(*env))) == NULL)
		return NULL;
	for (i = 0; environ[i] != NULL; i++) {
		char *eq = strchr(environ[i], '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		env_push(&env, &n, environ[i], eq + 1);
		*eq = '=';
	}
	home = env_get(env, "HOME");
	tmp = env_get(env, "TMPDIR");
	if (env_get(env, "TEMP") == NULL)
		env_push(&env, &n, "TEMP", tmp != NULL ? tmp : "/tmp");
	if (env_get(env, "TMP") == NULL)
		env_push(&env, &n, "TMP", tmp != NULL ? tmp : "/tmp");
	if (home != NULL && env_get(env, "USERPROFILE") == NULL)
		env_push(&env, &n, "USERPROFILE", home);
	env_push(&env, &n, "TERM", "dumb");
	env_push(&env, &n, "POWERSHELL_TELEMETRY_OPTOUT", "1");
	env_push(&env, &n, "POWERSHELL_UPDATECHECK", "Off");
	for (i = 0; i < info->n_env; i++)
		if (info->env[i].name != NULL && info->env[i].name[0] != '\0')
			env_push(&env, &n, info->env[i].name,
			    info->env[i].value ? info->env[i].value : "");
	if (p->shim_dir != NULL) {
		path = env_get(env, "PATH");
		if (asprintf(&np, "%s:%s", p->shim_dir,
		    path != NULL ? path : "/usr/bin:/bin") >= 0) {
			env_push(&env, &n, "PATH", np);
			free(np);
		}
	}
	return env;
}

static void
cmd_shell(void *ctx, struct wrm_request *req,
    const struct wrm_shell_startup *info)
{
	struct cmd_plugin *p = ctx;
	struct cmd_shell *sh;

	if ((sh = calloc(1, sizeof(*sh))) == NULL ||
	    (sh->env = build_env(p, info)) == NULL) {
		free(sh);
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	if (info->working_directory != NULL && info->working_directory[0])
		sh->workdir = strdup(info->working_directory);
	host->report_context(req, sh);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
cmd_release_shell(void *ctx, void *shell_ctx)
{
	struct cmd_shell *sh = shell_ctx;

	(void)ctx;
	env_free(sh->env);
	free(sh->workdir);
	free(sh);
}

/*
 * Split a command line the way Windows programs split theirs: blanks
 * separate words, double quotes group, 2n backslashes before a quote give
 * n backslashes and an active quote, 2n+1 give n and a literal quote, "" in
 * a quoted part is a literal quote.
 */
static char **
split_windows(const char *s, size_t *n_r)
{
	char **argv = NULL, **na, *w;
	size_t n = 0, len, bs, i;
	bool inq, any;

	len = strlen(s);
	w = malloc(len + 1);
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (*s == '\0' || w == NULL)
			break;
		i = 0;
		inq = false;
		any = false;
		while (*s != '\0' && (inq || (*s != ' ' && *s != '\t' &&
		    *s != '\n' && *s != '\r'))) {
			any = true;
			if (*s == '\\') {
				for (bs = 0; *s == '\\'; s++)
					bs++;
				if (*s == '"') {
					for (; bs >= 2; bs -= 2)
						w[i++] = '\\';
					if (bs == 1) {
						w[i++] = '"';
						s++;
					}
				} else
					for (; bs > 0; bs--)
						w[i++] = '\\';
				continue;
			}
			if (*s == '"') {
				if (inq && s[1] == '"') {
					w[i++] = '"';
					s += 2;
					continue;
				}
				inq = !inq;
				s++;
				continue;
			}
			w[i++] = *s++;
		}
		if (!any)
			break;
		w[i] = '\0';
		if ((na = realloc(argv, (n + 2) * sizeof(*na))) == NULL)
			break;
		argv = na;
		argv[n++] = strdup(w);
		argv[n] = NULL;
	}
	free(w);
	if (argv == NULL && (argv = calloc(1, sizeof(*argv))) == NULL)
		return NULL;
	*n_r = n;
	return argv;
}

static void
argv_free(char **argv)
{
	size_t i;

	for (i = 0; argv != NULL && argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
}

static bool
is_powershell(const char *word)
{
	static const char *const names[] = {
		"powershell", "powershell.exe", "pwsh", "pwsh.exe",
	};
	const char *base = strrchr(word, '\\');
	size_t i;

	base = base != NULL ? base + 1 : word;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(base, names[i]) == 0)
			return true;
	return false;
}

static char *
join_command_line(const char *command, const char *const *args,
    size_t n_args)
{
	size_t len = strlen(command ? command : "") + 1, i;
	char *line;

	for (i = 0; i < n_args; i++)
		len += strlen(args[i] ? args[i] : "") + 1;
	if ((line = malloc(len)) == NULL)
		return NULL;
	strcpy(line, command ? command : "");
	for (i = 0; i < n_args; i++) {
		if (args[i] == NULL)
			continue;
		strcat(line, " ");
		strcat(line, args[i]);
	}
	return line;
}

/* Build argv for the line: sh -c, pwsh, or a direct exec. */
static char **
command_argv(struct cmd_plugin *p, const char *line, bool skip_shell)
{
	char **words, **argv;
	size_t n, i;

	if ((words = split_windows(line, &n)) == NULL)
		return NULL;
	if (n > 0 && p->pwsh != NULL && is_powershell(words[0])) {
		free(words[0]);
		words[0] = strdup(p->pwsh);
		return words;
	}
	if (skip_shell && n > 0)
		return words;
	argv_free(words);
	if ((argv = calloc(4, sizeof(*argv))) == NULL)
		return NULL;
	argv[0] = strdup("/bin/sh");
	argv[1] = strdup("-c");
	argv[2] = strdup(line);
	for (i = 0; i < 3; i++)
		if (argv[i] == NULL) {
			argv_free(argv);
			return NULL;
		}
	return argv;
}

static void
close_fd(int *fd, struct wrm_watch **w)
{
	host->unwatch(*w);
	*w = NULL;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
command_free(struct cmd_command *c)
{
	close_fd(&c->in_fd, &c->in_w);
	close_fd(&c->out_fd, &c->out_w);
	close_fd(&c->err_fd, &c->err_w);
	host->unwatch(c->kill_timer);
	host->unwatch(c->drain_timer);
	free(c->in_buf);
	free(c);
}

static void
command_unlink(struct cmd_command *c)
{
	struct cmd_command **pp;

	if (c->shell == NULL)
		return;
	for (pp = &c->shell->cmds; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->shell = NULL;
}

static uint32_t
exit_code_of(int status)
{
	if (WIFEXITED(status))
		return (uint32_t)WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128u + (uint32_t)WTERMSIG(status);
	return 1;
}

/* Report DONE once the child is reaped and its output is drained. */
static void
maybe_finish(struct cmd_command *c, bool force)
{
	struct wrm_request *req = c->recv;

	if (c->done || req == NULL || !c->reaped)
		return;
	if (!force && (c->out_fd >= 0 || c->err_fd >= 0))
		return;
	c->done = true;
	close_fd(&c->out_fd, &c->out_w);
	close_fd(&c->err_fd, &c->err_w);
	host->unwatch(c->drain_timer);
	c->drain_timer = NULL;
	c->recv = NULL;
	host->receive_result(req, WRM_RESULT_END_STREAMS, "stdout", NULL, 0,
	    WRM_COMMAND_STATE_DONE, exit_code_of(c->status));
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
drain_timeout(void *arg)
{
	struct cmd_command *c = arg;

	c->drain_timer = NULL;
	maybe_finish(c, true);
}

static void
set_output_watch(struct cmd_command *c)
{
	uint32_t ev = c->paused ? 0 : WRM_EV_READ;

	if (c->out_w != NULL)
		host->modify_fd(c->out_w, ev);
	if (c->err_w != NULL)
		host->modify_fd(c->err_w, ev);
}

static void
on_output(int fd, uint32_t events, void *arg)
{
	struct cmd_command *c = arg;
	bool is_err = fd == c->err_fd;
	uint8_t *buf;
	ssize_t n;
	int r;

	(void)events;
	if ((buf = malloc(READ_CHUNK)) == NULL)
		return;
	n = read(fd, buf, READ_CHUNK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		free(buf);
		return;
	}
	if (n <= 0) {
		free(buf);
		if (is_err)
			close_fd(&c->err_fd, &c->err_w);
		else
			close_fd(&c->out_fd, &c->out_w);
		maybe_finish(c, false);
		return;
	}
	if (c->recv != NULL) {
		r = host->receive_result(c->recv, 0, is_err ? "stderr" :
		    "stdout", buf, (size_t)n, c->running_reported ?
		    WRM_COMMAND_STATE_NONE : WRM_COMMAND_STATE_RUNNING, 0);
		c->running_reported = true;
		if (r == WRM_RECEIVE_FULL) {
			c->paused = true;
			set_output_watch(c);
		}
	}
	free(buf);
}

static void
on_child_exit(pid_t pid, int status, void *arg)
{
	struct cmd_command *c = arg;

	(void)pid;
	c->reaped = true;
	c->exited = true;
	c->status = status;
	host->unwatch(c->kill_timer);
	c->kill_timer = NULL;
	if (c->released) {
		command_free(c);
		return;
	}
	/* Input for a finished command is dropped. */
	close_fd(&c->in_fd, &c->in_w);
	free(c->in_buf);
	c->in_buf = NULL;
	c->in_len = c->in_off = 0;
	if (c->out_fd >= 0 || c->err_fd >= 0)
		host->add_timer(DRAIN_AFTER_EXIT_MS, drain_timeout, c,
		    &c->drain_timer);
	maybe_finish(c, false);
}

static void
flush_stdin(struct cmd_command *c)
{
	ssize_t n;

	while (c->in_fd >= 0 && c->in_off < c->in_len) {
		n = write(c->in_fd, c->in_buf + c->in_off, c->in_len - c->in_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {	/* EPIPE: the child stopped reading */
			close_fd(&c->in_fd, &c->in_w);
			c->in_len = c->in_off = 0;
			return;
		}
		c->in_off += (size_t)n;
	}
	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
		if (c->in_eof)
			close_fd(&c->in_fd, &c->in_w);
		else if (c->in_w != NULL)
			host->modify_fd(c->in_w, 0);
	} else if (c->in_w != NULL)
		host->modify_fd(c->in_w, WRM_EV_WRITE);
}

static void
on_stdin(int fd, uint32_t events, void *arg)
{
	struct cmd_command *c = arg;

	(void)fd;
	/*
	 * The child closed its end: epoll reports that whatever the watch
	 * asks for, so the pipe must go now or it reports it again and
	 * again until the child is reaped.
	 */
	if (events & WRM_EV_ERROR) {
		close_fd(&c->in_fd, &c->in_w);
		c->in_len = c->in_off = 0;
		return;
	}
	flush_stdin(c);
}

static int
make_pipe(int p[2], bool parent_reads)
{
	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	fcntl(p[parent_reads ? 0 : 1], F_SETFL, O_NONBLOCK);
	if (parent_reads)
		fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);
	return 0;
}

static int
spawn(struct cmd_command *c, char **argv, char **env, const char *dir)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, defs;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int r;

	if ((r = make_pipe(in, false)) != 0 || (r = make_pipe(out, true)) != 0 ||
	    (r = make_pipe(err, true)) != 0)
		goto fail;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	if (dir != NULL)
		posix_spawn_file_actions_addchdir_np(&fa, dir);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&defs);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &defs);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	r = posix_spawnp(&c->pid, argv[0], &fa, &at, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r != 0) {
		r = -r;
		goto fail;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	c->in_fd = in[1];
	c->out_fd = out[0];
	c->err_fd = err[0];
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	return r;
}

static const char *
workdir_of(struct cmd_shell *sh)
{
	if (sh->workdir != NULL)
		return sh->workdir;
	return env_get(sh->env, "HOME");
}

static void
cmd_command(void *ctx, struct wrm_request *req, void *shell_ctx,
    const char *command_line, const char *const *args, size_t n_args)
{
	struct cmd_plugin *p = ctx;
	struct cmd_shell *sh = shell_ctx;
	struct cmd_command *c;
	char *line, **argv;
	const char *dir;
	struct stat st;
	int r;

	line = join_command_line(command_line, args, n_args);
	argv = line != NULL ? command_argv(p, line,
	    truthy(option(req, "WINRS_SKIP_CMD_SHELL"))) : NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL || argv == NULL ||
	    argv[0] == NULL) {
		uint32_t err = argv != NULL && argv[0] == NULL ?
		    WRM_ERROR_INVALID_PARAMETER : WRM_ERROR_NOT_ENOUGH_MEMORY;

		free(c);
		free(line);
		argv_free(argv);
		host->operation_complete(req, err, NULL, NULL, 0);
		return;
	}
	c->in_fd = c->out_fd = c->err_fd = -1;
	dir = workdir_of(sh);
	if (dir != NULL && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
		if (sh->workdir != NULL) {
			free(c);
			free(line);
			argv_free(argv);
			host->operation_complete(req, ERROR_BAD_DIRECTORY,
			    "The directory name is invalid. ", NULL, 0);
			return;
		}
		dir = NULL;
	}
	r = spawn(c, argv, sh->env, dir);
	free(line);
	argv_free(argv);
	if (r != 0) {
		free(c);
		host->operation_complete(req, r == -ENOENT ?
		    WRM_ERROR_FILE_NOT_FOUND : WRM_ERROR_PLUGIN_FAILED,
		    r == -ENOENT ? "The system cannot find the file "
		    "specified. " : strerror(-r), NULL, 0);
		return;
	}
	c->shell = sh;
	c->next = sh->cmds;
	sh->cmds = c;
	host->watch_fd(c->in_fd, 0, on_stdin, c, &c->in_w);
	host->watch_child(c->pid, on_child_exit, c);
	host->report_context(req, c);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
cmd_release_command(void *ctx, void *shell_ctx, void *cmd_ctx)
{
	struct cmd_command *c = cmd_ctx;

	(void)ctx;
	(void)shell_ctx;
	command_unlink(c);
	c->released = true;
	if (!c->reaped) {
		/* Freed when the child is reaped. */
		kill(-c->pid, SIGKILL);
		close_fd(&c->in_fd, &c->in_w);
		close_fd(&c->out_fd, &c->out_w);
		close_fd(&c->err_fd, &c->err_w);
		return;
	}
	command_free(c);
}

static void
cmd_send(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx,
    const char *stream, const uint8_t *data, size_t len, uint32_t flags)
{
	struct cmd_command *c = cmd_ctx;
	uint8_t *nb;

	(void)ctx;
	(void)shell_ctx;
	if (c == NULL) {
		host->operation_complete(req, WRM_ERROR_INVALID_PARAMETER,
		    NULL, NULL, 0);
		return;
	}
	if (stream != NULL && strcasecmp(stream, "stdin") != 0) {
		host->operation_complete(req,
		    WRM_ERROR_SHELL_INVALID_INPUT_STREAM, NULL, NULL, 0);
		return;
	}
	if (c->exited || c->in_fd < 0 || c->in_eof) {
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	if (len > 0) {
		if (c->in_len + len > MAX_STDIN_BUFFER) {
			host->operation_complete(req,
			    WRM_ERROR_NOT_ENOUGH_MEMORY, "The command is not "
			    "reading its input. ", NULL, 0);
			return;
		}
		if (c->in_off > 0) {
			memmove(c->in_buf, c->in_buf + c->in_off,
			    c->in_len - c->in_off);
			c->in_len -= c->in_off;
			c->in_off = 0;
		}
		if ((nb = realloc(c->in_buf, c->in_len + len)) == NULL) {
			host->operation_complete(req,
			    WRM_ERROR_NOT_ENOUGH_MEMORY, NULL, NULL, 0);
			return;
		}
		c->in_buf = nb;
		memcpy(c->in_buf + c->in_len, data, len);
		c->in_len += len;
	}
	if (flags & WRM_SEND_END)
		c->in_eof = true;
	flush_stdin(c);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
cmd_receive(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx)
{
	struct cmd_command *c = cmd_ctx;

	(void)ctx;
	(void)shell_ctx;
	if (c == NULL) {
		/* The WinRS shell itself has no output. */
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	if (c->recv == NULL) {
		c->recv = req;
		if (c->out_fd >= 0)
			host->watch_fd(c->out_fd, WRM_EV_READ, on_output, c,
			    &c->out_w);
		if (c->err_fd >= 0)
			host->watch_fd(c->err_fd, WRM_EV_READ, on_output, c,
			    &c->err_w);
		maybe_finish(c, false);
		return;
	}
	/* Called again after WRM_RECEIVE_FULL: resume reading. */
	c->paused = false;
	set_output_watch(c);
}

static void
kill_timeout(void *arg)
{
	struct cmd_command *c = arg;

	c->kill_timer = NULL;
	if (!c->reaped)
		kill(-c->pid, SIGKILL);
}

static void
signal_command(struct cmd_command *c, const char *what)
{
	if (c->reaped)
		return;
	if (strcasecmp(what, "ctrl_c") == 0)
		kill(-c->pid, SIGINT);
	else if (strcasecmp(what, "ctrl_break") == 0)
		kill(-c->pid, SIGQUIT);
	else {
		kill(-c->pid, SIGTERM);
		kill(-c->pid, SIGCONT);
		if (c->kill_timer == NULL)
			host->add_timer(KILL_GRACE_MS, kill_timeout, c,
			    &c->kill_timer);
	}
}

static void
cmd_signal(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx,
    const char *code)
{
	struct cmd_shell *sh = shell_ctx;
	struct cmd_command *c;
	const char *what = strrchr(code, '/');

	(void)ctx;
	what = what != NULL ? what + 1 : code;
	if (strcasecmp(what, "ctrl_c") != 0 &&
	    strcasecmp(what, "ctrl_break") != 0 &&
	    strcasecmp(what, "terminate") != 0) {
		host->operation_complete(req, WRM_ERROR_INVALID_PARAMETER,
		    NULL, NULL, 0);
		return;
	}
	if (cmd_ctx != NULL)
		signal_command(cmd_ctx, what);
	else
		for (c = sh->cmds; c != NULL; c = c->next)
			signal_command(c, what);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static const struct wrm_plugin cmd_plugin = {
	.abi_major = WRM_PLUGIN_ABI_MAJOR,
	.abi_minor = WRM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct wrm_plugin),
	.name = "cmd",
	.version = "1.0",
	.options = cmd_options,
	.startup = cmd_startup,
	.shutdown = cmd_shutdown,
	.shell = cmd_shell,
	.release_shell = cmd_release_shell,
	.command = cmd_command,
	.release_command = cmd_release_command,
	.send = cmd_send,
	.receive = cmd_receive,
	.signal = cmd_signal,
	.connect = NULL,
};

const struct wrm_plugin *
winrmd_plugin_entry(const struct wrm_host_api *h)
{
	host = h;
	return &cmd_plugin;
}
