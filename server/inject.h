/*
 * Redirections and fault injection: matching requests to the
 * [Redirect NAME] and [FaultInjection NAME] rules (see inject.c).
 */
#ifndef WRM_INJECT_H
#define WRM_INJECT_H

#include <stdbool.h>
#include <stdint.h>

struct wrm_redirect_conf;
struct wrm_fault_conf;

enum wrm_inject_kind {
	WRM_INJECT_NONE = 0,
	WRM_INJECT_DELAY,	/* the answer waits DelayMs */
	WRM_INJECT_TIMEOUT,	/* w:TimedOut at once, nothing done */
	WRM_INJECT_FAULT,	/* a fault with FaultCode, nothing done */
	WRM_INJECT_QUOTA,	/* the operations quota fault, nothing done */
	WRM_INJECT_HTTP,	/* HTTP status HttpStatus, nothing done */
	WRM_INJECT_RESET,	/* done, then the connection closes mid-answer */
	WRM_INJECT_TRICKLE,	/* done, answered TrickleBytes at a time */
};

/*
 * The redirection for url: before authentication (user NULL) rules
 * without User, after it those naming the user.  *hop_r: the hop of a
 * chain the request is at (1: the last, answered with Location).
 */
const struct wrm_redirect_conf *wrm_redirect_match(const char *url,
    const char *client_ip, const char *user, uint64_t *hop_r);
/* Whether url is a redirection path (so not a 404). */
bool wrm_redirect_is_path(const char *url);

/* Fault rules whose path and header match, as a bit mask. */
uint32_t wrm_inject_http_candidates(const char *url,
    const char *(*header)(void *ctx, const char *name), void *ctx);
/* Of those, the one that applies to this operation now (counted), or NULL. */
const struct wrm_fault_conf *wrm_inject_decide(uint32_t mask,
    const char *action, const char *config);
enum wrm_inject_kind wrm_inject_kind(const struct wrm_fault_conf *f);

#endif
