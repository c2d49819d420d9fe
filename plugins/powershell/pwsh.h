/*
 * One `pwsh -s` process and its stdio packet protocol: one XML element per
 * line (Data, Command, Signal, Close and their acks), a PSGuid naming the
 * runspace pool (all zeros) or a pipeline.
 *
 * Ordering rules pwsh needs are kept here: per GUID, at most one Data,
 * Command or Close awaits its ack (the next waits in that GUID's queue);
 * a Signal goes out at once; an empty line is never written.  Every
 * request's callback runs exactly once: with 0 when pwsh acknowledged it,
 * or with a negative errno when pwsh went away first.
 */
#ifndef PWSH_H
#define PWSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <winrmd/plugin.h>

#define PWSH_POOL_GUID	"00000000-0000-0000-0000-000000000000"

struct pwsh;

struct pwsh_callbacks {
	/* The decoded payload of one Data line pwsh wrote for guid. */
	void (*data)(void *arg, const char *guid, const uint8_t *p, size_t n);
	/* pwsh exited (wait status); stderr_tail holds its last lines. */
	void (*exited)(void *arg, int status, const char *stderr_tail);
};

typedef void (*pwsh_done_fn)(void *arg, int err);

int pwsh_start(const struct wrm_host_api *host, char *const argv[],
    char *const envp[], const char *dir, const struct pwsh_callbacks *cb,
    void *arg, struct pwsh **p_r);
void pwsh_data(struct pwsh *p, const char *guid, bool prompt_response,
    const uint8_t *data, size_t len, pwsh_done_fn fn, void *arg);
void pwsh_command(struct pwsh *p, const char *guid, pwsh_done_fn fn,
    void *arg);
void pwsh_signal(struct pwsh *p, const char *guid, pwsh_done_fn fn,
    void *arg);
void pwsh_close(struct pwsh *p, const char *guid, pwsh_done_fn fn,
    void *arg);
/* Close pwsh's stdin (after Close of the pool). */
void pwsh_eof(struct pwsh *p);
/* Signal pwsh's whole process group. */
void pwsh_kill(struct pwsh *p, int sig);
/*
 * Stop (or resume) reading pwsh's output: pwsh then blocks in its writes,
 * which is how a full buffer (BufferMode Block) pauses a PowerShell shell.
 */
void pwsh_hold(struct pwsh *p, bool hold);
bool pwsh_running(const struct pwsh *p);
pid_t pwsh_pid(const struct pwsh *p);
/* Free; kills the process group if it still runs. */
void pwsh_free(struct pwsh *p);

#endif
