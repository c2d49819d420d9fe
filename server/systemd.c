/*
 * The two systemd protocols winrmd speaks without linking libsystemd:
 * readiness notification (a datagram to $NOTIFY_SOCKET) and socket
 * activation (listening sockets passed as fds 3.. with LISTEN_FDS and
 * LISTEN_PID).  Both are no-ops when the variables are absent.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "misc.h"
#include "systemd.h"

#define MAX_PASSED	16

static int passed[MAX_PASSED];
static bool taken[MAX_PASSED];
static size_t n_passed;

void
wrm_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t sl;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sa.sun_path))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (path[0] == '@')
		sa.sun_path[0] = '\0';	/* abstract namespace */
	sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sa, sl) < 0)
		debug("sd_notify: %s", strerror(errno));
	close(fd);
}

void
wrm_sd_take_listen_fds(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	uint64_t p, n, i;

	if (pid == NULL || fds == NULL || wrm_parse_u64(pid, &p) != 0 ||
	    p != (uint64_t)getpid() || wrm_parse_u64(fds, &n) != 0)
		goto out;
	for (i = 0; i < n && n_passed < MAX_PASSED; i++) {
		int fd = 3 + (int)i;

		fcntl(fd, F_SETFD, FD_CLOEXEC);
		passed[n_passed++] = fd;
	}
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

/* Whether the bound address of fd is address:port ("*": any address). */
static bool
fd_matches(int fd, const char *address, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
	int type = 0;
	socklen_t tl = sizeof(type);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 ||
	    type != SOCK_STREAM)
		return false;
	if (ss.ss_family == AF_INET) {
		if (ntohs(s4->sin_port) != port)
			return false;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		return strcmp(address, ip) == 0 || (strcmp(address, "*") == 0 &&
		    s4->sin_addr.s_addr == htonl(INADDR_ANY));
	}
	if (ss.ss_family == AF_INET6) {
		if (ntohs(s6->sin6_port) != port)
			return false;
		if (strcmp(address, "*") == 0)
			return IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip,
			    sizeof(ip));
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		return strcmp(address, ip) == 0;
	}
	return false;
}

int
wrm_sd_listen_fd(const char *address, uint16_t port)
{
	size_t i;

	for (i = 0; i < n_passed; i++)
		if (!taken[i] && fd_matches(passed[i], address, port)) {
			taken[i] = true;
			return passed[i];
		}
	return -1;
}

void
wrm_sd_close_unused(void)
{
	size_t i;

	for (i = 0; i < n_passed; i++)
		if (!taken[i]) {
			error("systemd passed a socket (fd %d) that no "
			    "[Listener] names; closing it", passed[i]);
			close(passed[i]);
			taken[i] = true;
		}
}
