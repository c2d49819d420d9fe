/*
 * The daemon's local control socket, StateDirectory/control: one request
 * line from winrmctl, a reply, then the connection closes.  Only root and
 * the daemon's own user may use it (SO_PEERCRED).
 *
 *	status			counts of shells by state, hosts, requests
 *	shell show ID		a shell's fields and its commands
 *	shell disconnect ID	disconnect it, as its client could
 *	shell kill ID		delete it, its processes with it
 *
 * The reply's first line is "ok" or "error: TEXT".
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin.h"
#include "buf.h"
#include "err.h"
#include "evloop.h"
#include "http.h"
#include "log.h"
#include "misc.h"
#include "shell.h"

#define MAX_REQUEST	512

static int listen_fd = -1;
static struct wrm_io *listen_io;
static char *socket_path;

static void
put_shell(struct wrm_buf *b, const struct wrm_shell *sh)
{
	const struct wrm_command *c;
	uint64_t now = wrm_now_ms();

	wrm_buf_printf(b, "id\t%s\nname\t%s\nowner\t%s\naccount\t%s\n"
	    "configuration\t%s\nresource_uri\t%s\nstate\t%s\nclient\t%s\n"
	    "host_pid\t%ld\nidle_timeout_ms\t%llu\ninactive_ms\t%llu\n"
	    "buffer_mode\t%s\ncommands\t%zu\n", sh->id,
	    sh->name ? sh->name : "", sh->owner,
	    sh->local_user ? sh->local_user : "", sh->config,
	    sh->resource_uri ? sh->resource_uri : "",
	    wrm_shell_state_name(sh->state), sh->client_ip ? sh->client_ip : "",
	    sh->host != NULL ? (long)sh->host->pid : 0L,
	    (unsigned long long)sh->idle_timeout_ms,
	    (unsigned long long)(now - sh->last_activity),
	    sh->buffer_mode ? sh->buffer_mode : "", sh->n_cmds);
	for (c = sh->cmds; c != NULL; c = c->next)
		wrm_buf_printf(b, "command\t%s\t%s\t%s\n", c->id,
		    c->state == WRM_CMD_DONE ? "Done" : "Running",
		    c->command_line ? c->command_line : "");
}

static void
handle(const char *line, struct wrm_buf *b)
{
	char verb[32] = "", sub[32] = "", id[80] = "";
	struct wrm_shell *sh;
	size_t n[5] = { 0 };

	if (sscanf(line, "%31s %31s %79s", verb, sub, id) < 1) {
		wrm_buf_puts(b, "error: empty request\n");
		return;
	}
	if (strcmp(verb, "status") == 0) {
		for (sh = wrm_shell_first(); sh != NULL; sh = sh->next)
			if ((size_t)sh->state < 5)
				n[sh->state]++;
		wrm_buf_printf(b, "ok\npid\t%ld\nshells_connected\t%zu\n"
		    "shells_disconnected\t%zu\nshells_broken\t%zu\n"
		    "requests_active\t%zu\n", (long)getpid(),
		    n[WRM_SHELL_CONNECTED], n[WRM_SHELL_DISCONNECTED],
		    n[WRM_SHELL_BROKEN], wrm_http_active_requests());
		return;
	}
	if (strcmp(verb, "shell") != 0 || id[0] == '\0') {
		wrm_buf_puts(b, "error: unknown request\n");
		return;
	}
	if ((sh = wrm_shell_find(id)) == NULL ||
	    sh->state == WRM_SHELL_CLOSING || sh->state == WRM_SHELL_CREATING) {
		wrm_buf_printf(b, "error: no shell %s\n", id);
		return;
	}
	if (strcmp(sub, "show") == 0) {
		wrm_buf_puts(b, "ok\n");
		put_shell(b, sh);
	} else if (strcmp(sub, "disconnect") == 0) {
		if (sh->state != WRM_SHELL_CONNECTED) {
			wrm_buf_printf(b, "error: shell %s is %s\n", sh->id,
			    wrm_shell_state_name(sh->state));
			return;
		}
		wrm_shell_disconnected(sh, "admin");
		wrm_buf_puts(b, "ok\n");
	} else if (strcmp(sub, "kill") == 0) {
		wrm_shell_expire(sh, "admin");
		wrm_buf_puts(b, "ok\n");
	} else
		wrm_buf_puts(b, "error: unknown request\n");
}

static void
on_accept(int fd, uint32_t events, void *arg)
{
	struct timeval tv = { 1, 0 };
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	char req[MAX_REQUEST + 1];
	struct wrm_buf b;
	ssize_t r;
	size_t got = 0;
	int cfd;

	(void)events;
	(void)arg;
	if ((cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 ||
	    (cred.uid != 0 && cred.uid != getuid())) {
		close(cfd);
		return;
	}
	/* A local administrator's one line: read it with a short limit. */
	setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (got < MAX_REQUEST &&
	    (r = read(cfd, req + got, MAX_REQUEST - got)) > 0) {
		got += (size_t)r;
		if (memchr(req, '\n', got) != NULL)
			break;
	}
	req[got] = '\0';
	req[strcspn(req, "\r\n")] = '\0';
	wrm_buf_init(&b, 1024 * 1024);
	handle(req, &b);
	verbose("control: %s -> %.*s", req, (int)strcspn((char *)
	    wrm_buf_ptr(&b), "\n"), (char *)wrm_buf_ptr(&b));
	(void)!write(cfd, wrm_buf_ptr(&b), wrm_buf_len(&b));
	wrm_buf_free(&b);
	close(cfd);
}

int
wrm_admin_start(const char *state_dir)
{
	struct sockaddr_un sa;
	mode_t old;

	if (asprintf(&socket_path, "%s/control", state_dir) < 0)
		return WRM_ERR_ALLOC;
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		error("control socket path %s is too long", socket_path);
		return WRM_ERR_CONFIG;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, socket_path);
	if ((listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return WRM_ERR_SYSTEM;
	unlink(socket_path);
	old = umask(077);
	if (bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(listen_fd, 8) != 0) {
		umask(old);
		error("control socket %s: %s", socket_path, strerror(errno));
		close(listen_fd);
		listen_fd = -1;
		return WRM_ERR_SYSTEM;
	}
	umask(old);
	return wrm_loop_watch(D.loop, listen_fd, WRM_LOOP_READ, on_accept,
	    NULL, &listen_io);
}

void
wrm_admin_stop(void)
{
	wrm_loop_unwatch(listen_io);
	listen_io = NULL;
	if (listen_fd >= 0) {
		close(listen_fd);
		listen_fd = -1;
		unlink(socket_path);
	}
	free(socket_path);
	socket_path = NULL;
}
