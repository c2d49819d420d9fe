/*
 * winrmd-host: the process behind one shell.  Started by winrmd with
 * posix_spawn, in a session of its own, with a listening Unix socket on
 * fd 3 that only winrmd's uid may use.  It outlives winrmd: a restarted
 * daemon connects again and carries on.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include "err.h"
#include "host-pam.h"
#include "host.h"
#include "log.h"
#include "misc.h"
#include "plugin-load.h"

struct wrm_loop *host_loop;
uint64_t host_buffer_limit = 16u * 1024 * 1024;

static struct wrm_hconn *ctl;
static struct wrm_io *listen_io;
static int listen_fd = -1;
static uid_t daemon_uid;
static bool ever_had_shell;
static bool shared;		/* UseSharedProcess: the daemon ends us */
static bool exiting;

void host_reap_children(void);

void
host_send(struct wrm_buf *b)
{
	if (ctl == NULL) {
		wrm_buf_reset(b);
		return;
	}
	wrm_hconn_send(ctl, b);
}

void
host_reply(uint32_t reqid, uint32_t error, const char *message,
    const uint8_t *data, size_t len)
{
	struct wrm_buf b;
	size_t st;

	if (reqid == 0)
		return;
	wrm_buf_init(&b, 0);
	if (wrm_hmsg_begin(&b, HM_REPLY, reqid, &st) == 0 &&
	    wrm_hmsg_put_u64(&b, HT_ERROR, error) == 0 &&
	    wrm_hmsg_put_str(&b, HT_MESSAGE, message) == 0 &&
	    (len == 0 || wrm_hmsg_put(&b, HT_DATA, data, len) == 0) &&
	    wrm_hmsg_end(&b, st) == 0)
		host_send(&b);
	wrm_buf_free(&b);
}

void
host_maybe_exit(void)
{
	if (host_shell_count() > 0 || !ever_had_shell || exiting)
		return;
	/* A shared host waits for more shells while the daemon is there. */
	if (shared && ctl != NULL)
		return;
	exiting = true;
	host_shutdown_all(WRM_SHUTDOWN_NORMAL);
	if (ctl != NULL)
		wrm_hconn_flush(ctl, 2000);
	wrm_loop_stop(host_loop);
}

static void
on_hello(const struct wrm_hmsg *m)
{
	struct wrm_buf b;
	size_t st;

	wrm_buf_init(&b, 0);
	if (wrm_hmsg_begin(&b, HM_REPLY, m->reqid, &st) == 0 &&
	    wrm_hmsg_put_u64(&b, HT_ERROR, 0) == 0 &&
	    wrm_hmsg_put_u64(&b, HT_VERSION, WRM_HOSTPROTO_VERSION) == 0 &&
	    wrm_hmsg_put_u64(&b, HT_PID, (uint64_t)getpid()) == 0) {
		host_snapshot(&b);
		if (wrm_hmsg_end(&b, st) == 0)
			host_send(&b);
	}
	wrm_buf_free(&b);
}

static void
on_msg(struct wrm_hconn *c, const struct wrm_hmsg *m, void *arg)
{
	(void)c;
	(void)arg;
	switch (m->type) {
	case HM_HELLO:
		on_hello(m);
		break;
	case HM_SHELL_CREATE:
		ever_had_shell = true;
		if (wrm_hmsg_u64(m, HT_SHARED, 0) != 0)
			shared = true;
		host_buffer_limit = wrm_hmsg_u64(m, HT_BUFFER_LIMIT,
		    host_buffer_limit);
		host_on_shell_create(m);
		break;
	case HM_PREPARE: {
		char why[512];
		uint32_t err = 0;

		host_buffer_limit = wrm_hmsg_u64(m, HT_BUFFER_LIMIT,
		    host_buffer_limit);
		if (host_plugin_ensure(m, true, why, sizeof(why)) != 0) {
			error("%s", why);
			err = WRM_ERROR_PLUGIN_FAILED;
		}
		host_reply(m->reqid, err, err ? why : NULL, NULL, 0);
		break;
	}
	case HM_COMMAND:
		host_on_command(m);
		break;
	case HM_SEND:
		host_on_send(m);
		break;
	case HM_PULL:
		host_on_pull(m);
		break;
	case HM_COMMIT:
		host_on_commit(m, true);
		break;
	case HM_ROLLBACK:
		host_on_commit(m, false);
		break;
	case HM_SIGNAL:
		host_on_signal(m);
		break;
	case HM_DELETE:
		host_on_delete(m);
		break;
	case HM_CONNECT:
		host_on_connect(m);
		break;
	case HM_DISCONNECT:
		host_on_buffering(m, true);
		break;
	case HM_RECONNECT:
		host_on_buffering(m, false);
		break;
	case HM_SHUTDOWN:
		host_reply(m->reqid, 0, NULL, NULL, 0);
		host_shutdown_all(WRM_SHUTDOWN_DAEMON);
		if (ctl != NULL)
			wrm_hconn_flush(ctl, 2000);
		wrm_loop_stop(host_loop);
		break;
	default:
		host_reply(m->reqid, WRM_ERROR_NOT_SUPPORTED,
		    "unknown request", NULL, 0);
		break;
	}
}

static void
on_close(struct wrm_hconn *c, void *arg)
{
	(void)arg;
	debug_f("daemon connection closed");
	if (c == ctl) {
		wrm_hconn_free(ctl);
		ctl = NULL;
	}
	/*
	 * Keep running: a restarted daemon connects again, to the shells.
	 * A host without any (a warm one, a shared one between shells) has
	 * nothing it would come back for.
	 */
	if (host_shell_count() == 0) {
		ever_had_shell = true;
		host_maybe_exit();
	}
}

static void
on_accept(int fd, uint32_t events, void *arg)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int cfd;

	(void)events;
	(void)arg;
	cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (cfd < 0)
		return;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    (cred.uid != daemon_uid && cred.uid != 0)) {
		error("control connection from uid %ld refused",
		    (long)cred.uid);
		close(cfd);
		return;
	}
	if (ctl != NULL) {
		/* A new daemon replaces the old connection. */
		wrm_hconn_free(ctl);
		ctl = NULL;
	}
	if (wrm_hconn_new(host_loop, cfd, on_msg, on_close, NULL, &ctl) != 0)
		close(cfd);
}

static void
on_signal(int signo, void *arg)
{
	(void)arg;
	if (signo == SIGCHLD) {
		host_reap_children();
		return;
	}
	verbose("signal %d: closing every shell", signo);
	exiting = true;
	host_shutdown_all(WRM_SHUTDOWN_DAEMON);
	wrm_loop_stop(host_loop);
}

static int
check_plugin(const char *path)
{
	struct wrm_loaded_plugin lp;
	const struct wrm_plugin_option *o;
	char why[512];

	if (wrm_plugin_load(path, &host_api, &lp, why, sizeof(why)) != 0) {
		printf("refused\t%s\n", why);
		return 1;
	}
	printf("ok\t%s\t%s\tABI %u.%u\n", lp.p->name, lp.p->version,
	    lp.p->abi_major, lp.p->abi_minor);
	for (o = lp.p->options; o != NULL && o->name != NULL; o++)
		printf("option\t%s\t%d\t%d\n", o->name, (int)o->type,
		    o->required);
	free(lp.path);
	return 0;
}

/*
 * Become the shell's user before any plugin code runs: supplementary
 * groups, group, user, and make sure root cannot be regained.
 */
static void
drop_privileges(const char *user, uid_t uid, gid_t gid)
{
	const char *home = getenv("HOME");

	if (getuid() != 0 && geteuid() != 0) {
		if (getuid() != uid)
			fatal("cannot become %s (uid %lu) without root", user,
			    (unsigned long)uid);
		return;
	}
	if (initgroups(user, gid) != 0 || setgid(gid) != 0 ||
	    setuid(uid) != 0)
		fatal("cannot become %s (uid %lu): %s", user,
		    (unsigned long)uid, strerror(errno));
	if (uid != 0 && (setuid(0) == 0 || geteuid() == 0))
		fatal("root privileges could be regained after dropping them");
	if (home == NULL || chdir(home) != 0)
		(void)!chdir("/");
}

static void
usage(void)
{
	fprintf(stderr, "usage: winrmd-host --socket-fd FD --daemon-uid UID "
	    "[--log-level LEVEL] [--syslog]\n"
	    "       winrmd-host --check-plugin PATH\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket-fd", required_argument, NULL, 's' },
		{ "daemon-uid", required_argument, NULL, 'u' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "check-plugin", required_argument, NULL, 'c' },
		{ "user", required_argument, NULL, 'U' },
		{ "uid", required_argument, NULL, 'I' },
		{ "gid", required_argument, NULL, 'G' },
		{ "pam-service", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	enum wrm_log_level level = WRM_LOG_INFO;
	bool use_syslog = false;
	const char *as_user = NULL, *pam_service = NULL;
	uint64_t as_uid = UINT64_MAX, as_gid = UINT64_MAX;
	int ch, lv;
	uint64_t v;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			if (wrm_parse_u64(optarg, &v) != 0)
				usage();
			listen_fd = (int)v;
			break;
		case 'u':
			if (wrm_parse_u64(optarg, &v) != 0)
				usage();
			daemon_uid = (uid_t)v;
			break;
		case 'l':
			if ((lv = wrm_log_level_parse(optarg)) < 0)
				usage();
			level = (enum wrm_log_level)lv;
			break;
		case 'S':
			use_syslog = true;
			break;
		case 'U':
			as_user = optarg;
			break;
		case 'I':
			if (wrm_parse_u64(optarg, &as_uid) != 0)
				usage();
			break;
		case 'G':
			if (wrm_parse_u64(optarg, &as_gid) != 0)
				usage();
			break;
		case 'P':
			pam_service = optarg;
			break;
		case 'c':
			wrm_log_init("winrmd-host", WRM_LOG_ERROR, false);
			return check_plugin(optarg);
		default:
			usage();
		}
	}
	if (listen_fd < 0 || (as_user != NULL && (as_uid == UINT64_MAX ||
	    as_gid == UINT64_MAX)))
		usage();
	wrm_log_init("winrmd-host", level, use_syslog);
	if (as_user != NULL && pam_service != NULL && geteuid() == 0 &&
	    host_pam_session(pam_service, as_user, listen_fd) != 0)
		exit(3);
	if (as_user != NULL) {
		drop_privileges(as_user, (uid_t)as_uid, (gid_t)as_gid);
		/* Credentials changed: ask again to go with the PAM parent. */
		if (pam_service != NULL)
			prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	}
	if (fcntl(listen_fd, F_SETFD, FD_CLOEXEC) != 0)
		fatal("control socket fd %d: %s", listen_fd, strerror(errno));
	fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	if (getsid(0) != getpid())
		setsid();
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	if (wrm_loop_new(&host_loop) != 0)
		fatal("cannot create event loop");
	if (wrm_loop_signal(host_loop, SIGCHLD, on_signal, NULL) != 0 ||
	    wrm_loop_signal(host_loop, SIGTERM, on_signal, NULL) != 0 ||
	    wrm_loop_signal(host_loop, SIGINT, on_signal, NULL) != 0)
		fatal("cannot watch signals");
	if (wrm_loop_watch(host_loop, listen_fd, WRM_LOOP_READ, on_accept, NULL,
	    &listen_io) != 0)
		fatal("cannot watch control socket");
	wrm_loop_run(host_loop);
	if (ctl != NULL) {
		wrm_hconn_flush(ctl, 1000);
		wrm_hconn_free(ctl);
	}
	return 0;
}
