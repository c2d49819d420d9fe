/*
 * Starting winrmd-host processes.  posix_spawn only (never fork from the
 * daemon): the child gets its own session, an empty signal mask, default
 * dispositions, and on fd 3 a listening Unix socket bound to an abstract
 * address that the daemon connects to.  The host accepts only peers with
 * the daemon's uid (or root), checked with SO_PEERCRED.
 */
#ifndef WRM_SPAWN_H
#define WRM_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * Who a host runs as (system mode).  The host starts as root and drops to
 * this account (initgroups, setgid, setuid) before it loads any plugin.
 */
struct wrm_spawn_as {
	const char *user;
	uid_t uid;
	gid_t gid;
	char *const *env;	/* the account's environment */
	const char *pam_service;	/* account check and session, or NULL */
};

/* A command the host runs under (systemd-run --scope ...), or NULL. */
extern const char *const *wrm_spawn_wrapper;

/*
 * Spawn prog, as `as` when not NULL; *addr_r is the socket address
 * (malloc'd, without the leading NUL).
 */
int wrm_spawn_host(const char *prog, const char *log_level, bool use_syslog,
    const struct wrm_spawn_as *as, pid_t *pid_r, char **addr_r);
/* Connect to a host's abstract address; returns a non-blocking fd. */
int wrm_host_connect(const char *addr, int *fd_r);
/* Run "winrmd-host --check-plugin path"; *out_r gets its output. */
int wrm_spawn_check_plugin(const char *prog, const char *path, char **out_r);

#endif
