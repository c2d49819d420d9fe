#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"

static enum wrm_log_level log_level = WRM_LOG_INFO;
static bool log_syslog;
static const char *log_ident = "winrmd";
static wrm_audit_fn audit_fn;
static __thread struct wrm_log_ctx log_ctx;

static const char *const level_names[] = {
	"QUIET", "FATAL", "ERROR", "INFO", "VERBOSE",
	"DEBUG1", "DEBUG2", "DEBUG3",
};

void
wrm_log_init(const char *ident, enum wrm_log_level level, bool to_syslog)
{
	if (log_syslog)
		closelog();
	log_ident = ident;
	log_level = level;
	log_syslog = to_syslog;
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
wrm_log_set_level(enum wrm_log_level level)
{
	log_level = level;
}

enum wrm_log_level
wrm_log_get_level(void)
{
	return log_level;
}

int
wrm_log_level_parse(const char *name)
{
	size_t i;

	if (strcasecmp(name, "DEBUG") == 0)
		return WRM_LOG_DEBUG1;
	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcasecmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
wrm_log_level_name(enum wrm_log_level level)
{
	if ((size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

void
wrm_log_ctx_set(const struct wrm_log_ctx *ctx)
{
	log_ctx = *ctx;
}

void
wrm_log_ctx_clear(void)
{
	memset(&log_ctx, 0, sizeof(log_ctx));
}

static int
syslog_prio(enum wrm_log_level level)
{
	switch (level) {
	case WRM_LOG_FATAL:
		return LOG_CRIT;
	case WRM_LOG_ERROR:
		return LOG_ERR;
	case WRM_LOG_INFO:
	case WRM_LOG_VERBOSE:
		return LOG_INFO;
	default:
		return LOG_DEBUG;
	}
}

void
wrm_logv(enum wrm_log_level level, const char *func, int err,
    const char *fmt, va_list ap)
{
	char msg[2048], ctx[512], ts[32];
	int saved = errno;
	struct timespec now;
	struct tm tm;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	ctx[0] = '\0';
	if (log_ctx.client != NULL || log_ctx.user != NULL ||
	    log_ctx.shell != NULL || log_ctx.action != NULL)
		snprintf(ctx, sizeof(ctx), " [client=%s user=%s shell=%s "
		    "action=%s]", log_ctx.client ? log_ctx.client : "-",
		    log_ctx.user ? log_ctx.user : "-",
		    log_ctx.shell ? log_ctx.shell : "-",
		    log_ctx.action ? log_ctx.action : "-");
	errno = saved;
	if (log_syslog) {
		syslog(syslog_prio(level), "%s%s%s%s%s%s%s",
		    level == WRM_LOG_FATAL ? "fatal: " : "",
		    func ? func : "", func ? ": " : "", msg,
		    err ? ": " : "", err ? wrm_err(err) : "", ctx);
	} else {
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s[%ld] %s: %s%s%s%s%s%s\n", ts,
		    now.tv_nsec / 1000000, log_ident, (long)getpid(),
		    level_names[level], func ? func : "", func ? ": " : "",
		    msg, err ? ": " : "", err ? wrm_err(err) : "", ctx);
	}
	errno = saved;
}

void
wrm_log(enum wrm_log_level level, const char *func, int err,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wrm_logv(level, func, err, fmt, ap);
	va_end(ap);
}

void
wrm_fatal(const char *func, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wrm_logv(WRM_LOG_FATAL, func, err, fmt, ap);
	va_end(ap);
	exit(255);
}

void
wrm_audit_hook(wrm_audit_fn fn)
{
	audit_fn = fn;
}

void
wrm_audit(const char *event, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	wrm_log(WRM_LOG_INFO, NULL, 0, "%s %s", event, detail);
	if (audit_fn != NULL)
		audit_fn(event, detail);
}
