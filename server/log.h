/*
 * Logging.  Levels follow OpenSSH: fatal, error, info, verbose, debug1-3.
 * Every line carries the request context set with wrm_log_ctx_set()
 * ("client= user= shell= action="), so a reader can follow one client.
 * Never log credentials, tokens or payloads above debug3.
 */
#ifndef WRM_LOG_H
#define WRM_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum wrm_log_level {
	WRM_LOG_QUIET = 0,
	WRM_LOG_FATAL,
	WRM_LOG_ERROR,
	WRM_LOG_INFO,
	WRM_LOG_VERBOSE,
	WRM_LOG_DEBUG1,
	WRM_LOG_DEBUG2,
	WRM_LOG_DEBUG3,
};

struct wrm_log_ctx {
	const char *client;
	const char *user;
	const char *shell;
	const char *action;
};

/* ident: program name; to_syslog: else stderr.  May be called again. */
void wrm_log_init(const char *ident, enum wrm_log_level level, bool to_syslog);
void wrm_log_set_level(enum wrm_log_level level);
enum wrm_log_level wrm_log_get_level(void);
int wrm_log_level_parse(const char *name);	/* -1 if unknown */
const char *wrm_log_level_name(enum wrm_log_level level);

/* Per-thread context; the strings are borrowed until the next set/clear. */
void wrm_log_ctx_set(const struct wrm_log_ctx *ctx);
void wrm_log_ctx_clear(void);

void wrm_log(enum wrm_log_level level, const char *func, int err,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void wrm_logv(enum wrm_log_level level, const char *func, int err,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));
void wrm_fatal(const char *func, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

/*
 * Audit events: a stable UPPER_SNAKE name plus key=value pairs, logged at
 * info level and also handed to the audit hook (the store) when set.
 */
typedef void (*wrm_audit_fn)(const char *event, const char *detail);
void wrm_audit_hook(wrm_audit_fn fn);
void wrm_audit(const char *event, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define fatal(...)	wrm_fatal(NULL, 0, __VA_ARGS__)
#define fatal_f(...)	wrm_fatal(__func__, 0, __VA_ARGS__)
#define fatal_fr(r, ...) wrm_fatal(__func__, r, __VA_ARGS__)
#define error(...)	wrm_log(WRM_LOG_ERROR, NULL, 0, __VA_ARGS__)
#define error_f(...)	wrm_log(WRM_LOG_ERROR, __func__, 0, __VA_ARGS__)
#define error_fr(r, ...) wrm_log(WRM_LOG_ERROR, __func__, r, __VA_ARGS__)
#define logit(...)	wrm_log(WRM_LOG_INFO, NULL, 0, __VA_ARGS__)
#define verbose(...)	wrm_log(WRM_LOG_VERBOSE, NULL, 0, __VA_ARGS__)
#define verbose_f(...)	wrm_log(WRM_LOG_VERBOSE, __func__, 0, __VA_ARGS__)
#define debug(...)	wrm_log(WRM_LOG_DEBUG1, NULL, 0, __VA_ARGS__)
#define debug_f(...)	wrm_log(WRM_LOG_DEBUG1, __func__, 0, __VA_ARGS__)
#define debug_fr(r, ...) wrm_log(WRM_LOG_DEBUG1, __func__, r, __VA_ARGS__)
#define debug2_f(...)	wrm_log(WRM_LOG_DEBUG2, __func__, 0, __VA_ARGS__)
#define debug3_f(...)	wrm_log(WRM_LOG_DEBUG3, __func__, 0, __VA_ARGS__)

#endif
