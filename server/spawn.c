#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "misc.h"
#include "spawn.h"

extern char **environ;

static socklen_t
abstract_addr(struct sockaddr_un *sa, const char *name)
{
	size_t n = strlen(name);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n > sizeof(sa->sun_path) - 1)
		n = sizeof(sa->sun_path) - 1;
	memcpy(sa->sun_path + 1, name, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

static void
spawn_attrs(posix_spawnattr_t *at)
{
	sigset_t none, defs;

	posix_spawnattr_init(at);
	sigemptyset(&none);
	sigfillset(&defs);
	posix_spawnattr_setsigmask(at, &none);
	posix_spawnattr_setsigdefault(at, &defs);
	posix_spawnattr_setflags(at, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

const char *const *wrm_spawn_wrapper;

int
wrm_spawn_host(const char *prog, const char *log_level, bool use_syslog,
    const struct wrm_spawn_as *as, pid_t *pid_r, char **addr_r)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	struct sockaddr_un sa;
	char name[64], uidbuf[32], asuid[32], asgid[32], *argv[40];
	uint8_t rnd[12];
	socklen_t sl;
	int lfd, r, i = 0;

	*addr_r = NULL;
	wrm_random(rnd, sizeof(rnd));
	snprintf(name, sizeof(name), "winrmd-host/%ld/", (long)getpid());
	for (size_t k = 0; k < sizeof(rnd); k++)
		snprintf(name + strlen(name), sizeof(name) - strlen(name),
		    "%02x", rnd[k]);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return WRM_ERR_SYSTEM;
	sl = abstract_addr(&sa, name);
	if (bind(lfd, (struct sockaddr *)&sa, sl) != 0 || listen(lfd, 8) != 0) {
		close(lfd);
		return WRM_ERR_SYSTEM;
	}
	snprintf(uidbuf, sizeof(uidbuf), "%lu", (unsigned long)getuid());
	/* A wrapper execs the host in the same process (pid unchanged). */
	for (size_t w = 0; wrm_spawn_wrapper != NULL &&
	    wrm_spawn_wrapper[w] != NULL && i < 20; w++)
		argv[i++] = (char *)wrm_spawn_wrapper[w];
	argv[i++] = (char *)prog;
	argv[i++] = (char *)"--socket-fd=3";
	argv[i++] = (char *)"--daemon-uid";
	argv[i++] = uidbuf;
	argv[i++] = (char *)"--log-level";
	argv[i++] = (char *)log_level;
	if (use_syslog)
		argv[i++] = (char *)"--syslog";
	if (as != NULL) {
		snprintf(asuid, sizeof(asuid), "%lu", (unsigned long)as->uid);
		snprintf(asgid, sizeof(asgid), "%lu", (unsigned long)as->gid);
		argv[i++] = (char *)"--user";
		argv[i++] = (char *)as->user;
		argv[i++] = (char *)"--uid";
		argv[i++] = asuid;
		argv[i++] = (char *)"--gid";
		argv[i++] = asgid;
		if (as->pam_service != NULL && *as->pam_service) {
			argv[i++] = (char *)"--pam-service";
			argv[i++] = (char *)as->pam_service;
		}
	}
	argv[i] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, lfd, 3);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	spawn_attrs(&at);
	r = posix_spawn(pid_r, argv[0], &fa, &at, argv, as != NULL &&
	    as->env != NULL ? as->env : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(lfd);
	if (r != 0) {
		errno = r;
		return WRM_ERR_SYSTEM;
	}
	if ((*addr_r = strdup(name)) == NULL)
		return WRM_ERR_ALLOC;
	return 0;
}

int
wrm_host_connect(const char *addr, int *fd_r)
{
	struct sockaddr_un sa;
	socklen_t sl = abstract_addr(&sa, addr), cl = sizeof(struct ucred);
	struct ucred cred;
	int fd;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return WRM_ERR_SYSTEM;
	if (connect(fd, (struct sockaddr *)&sa, sl) != 0) {
		close(fd);
		return WRM_ERR_SYSTEM;
	}
	/*
	 * The daemon made the listening socket before the host started, so
	 * its credentials are the daemon's.  Abstract names are visible to
	 * every local user: after a restart, one of them may have taken the
	 * name of a host that died meanwhile.
	 */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 ||
	    cred.uid != geteuid()) {
		close(fd);
		errno = EACCES;
		return WRM_ERR_SYSTEM;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	*fd_r = fd;
	return 0;
}

int
wrm_spawn_check_plugin(const char *prog, const char *path, char **out_r)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	char *argv[4], buf[4096];
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int p[2], r, status;

	*out_r = NULL;
	if (pipe2(p, O_CLOEXEC) != 0)
		return WRM_ERR_SYSTEM;
	argv[0] = (char *)prog;
	argv[1] = (char *)"--check-plugin";
	argv[2] = (char *)path;
	argv[3] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	spawn_attrs(&at);
	r = posix_spawn(&pid, prog, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(p[1]);
	if (r != 0) {
		close(p[0]);
		errno = r;
		return WRM_ERR_SYSTEM;
	}
	while (len < sizeof(buf) - 1 &&
	    (n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	*out_r = strdup(buf);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 :
	    WRM_ERR_PLUGIN;
}
