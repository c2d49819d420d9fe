/*
 * Memory and process limits for the process tree of each shell (see
 * shell-limits.c).
 */
#ifndef WRM_SHELL_LIMITS_H
#define WRM_SHELL_LIMITS_H

#include <stdint.h>
#include <sys/types.h>

/* Find (and prepare) the mechanism; once, at start, as root or not. */
void wrm_limits_init(void);
/* What wrm_limits_init chose (or would choose), for winrmd -T. */
const char *wrm_limits_mechanism(void);
const char *wrm_limits_probe(void);
/* Put host pid (and so its commands) under the limits; 2147483647 or
 * more means none. */
int wrm_limits_apply(pid_t pid, uint64_t memory_mb, uint64_t processes);
/*
 * The command to start a host under (systemd-run --scope with the
 * limits), when limits come from systemd scopes; else NULL.
 */
const char *const *wrm_limits_wrapper(uint64_t memory_mb, uint64_t processes);
/* The host exited: remove its control groups. */
void wrm_limits_release(pid_t pid);

#endif
