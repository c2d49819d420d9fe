#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "daemon.h"
#include "http.h"
#include "metrics.h"
#include "misc.h"
#include "shell.h"

#define MAX_SERIES	96

struct series {
	char a[32];		/* action or scheme */
	unsigned status;
	uint64_t n;
};

static struct series requests[MAX_SERIES];
static struct series auth_fail[16], auth_ok[16];
static uint64_t requests_dropped;

static void
bump(struct series *s, size_t max, const char *a, unsigned status)
{
	size_t i;

	if (a == NULL)
		a = "-";
	for (i = 0; i < max && s[i].a[0] != '\0'; i++)
		if (s[i].status == status && strcmp(s[i].a, a) == 0) {
			s[i].n++;
			return;
		}
	if (i == max) {
		requests_dropped++;
		return;
	}
	snprintf(s[i].a, sizeof(s[i].a), "%s", a);
	s[i].status = status;
	s[i].n = 1;
}

void
wrm_metrics_request(const char *action, unsigned status)
{
	bump(requests, MAX_SERIES, action, status);
}

void
wrm_metrics_auth_failure(const char *scheme)
{
	bump(auth_fail, 16, strncasecmp(scheme, "http", 4) == 0 ?
	    "Certificate" : scheme, 0);
}

void
wrm_metrics_auth_success(const char *scheme)
{
	bump(auth_ok, 16, scheme, 0);
}

int
wrm_metrics_render(struct wrm_buf *b)
{
	const struct wrm_shell *sh, *o;
	size_t i, n;
	bool seen;

	wrm_buf_puts(b, "# HELP winrmd_requests_total WS-Management requests "
	    "answered, by operation and HTTP status.\n"
	    "# TYPE winrmd_requests_total counter\n");
	for (i = 0; i < MAX_SERIES && requests[i].a[0] != '\0'; i++)
		wrm_buf_printf(b, "winrmd_requests_total{action=\"%s\","
		    "status=\"%u\"} %llu\n", requests[i].a, requests[i].status,
		    (unsigned long long)requests[i].n);
	wrm_buf_puts(b, "# HELP winrmd_auth_failures_total Failed or refused "
	    "authentications, by scheme.\n"
	    "# TYPE winrmd_auth_failures_total counter\n");
	for (i = 0; i < 16 && auth_fail[i].a[0] != '\0'; i++)
		wrm_buf_printf(b, "winrmd_auth_failures_total{scheme=\"%s\"} "
		    "%llu\n", auth_fail[i].a, (unsigned long long)auth_fail[i].n);
	wrm_buf_puts(b, "# HELP winrmd_auth_successes_total Successful "
	    "authentications, by scheme.\n"
	    "# TYPE winrmd_auth_successes_total counter\n");
	for (i = 0; i < 16 && auth_ok[i].a[0] != '\0'; i++)
		wrm_buf_printf(b, "winrmd_auth_successes_total{scheme=\"%s\"} "
		    "%llu\n", auth_ok[i].a, (unsigned long long)auth_ok[i].n);
	wrm_buf_puts(b, "# HELP winrmd_shells Open shells, by session "
	    "configuration and state.\n# TYPE winrmd_shells gauge\n");
	/* One line per (configuration, state) present. */
	for (sh = wrm_shell_first(); sh != NULL; sh = sh->next) {
		seen = false;
		for (o = wrm_shell_first(); o != sh; o = o->next)
			if (o->state == sh->state &&
			    strcasecmp(o->config, sh->config) == 0)
				seen = true;
		if (seen)
			continue;
		n = 0;
		for (o = sh; o != NULL; o = o->next)
			if (o->state == sh->state &&
			    strcasecmp(o->config, sh->config) == 0)
				n++;
		wrm_buf_printf(b, "winrmd_shells{configuration=\"%s\","
		    "state=\"%s\"} %zu\n", sh->config,
		    wrm_shell_state_name(sh->state), n);
	}
	wrm_buf_printf(b, "# HELP winrmd_host_processes Host processes "
	    "(winrmd-host), serving shells or started ahead of demand.\n"
	    "# TYPE winrmd_host_processes gauge\n"
	    "winrmd_host_processes %zu\n"
	    "# HELP winrmd_warm_hosts Hosts started ahead of demand and "
	    "not yet used (WarmPoolSize).\n# TYPE winrmd_warm_hosts gauge\n"
	    "winrmd_warm_hosts %zu\n"
	    "# HELP winrmd_parked_receives Receives waiting for output.\n"
	    "# TYPE winrmd_parked_receives gauge\n"
	    "winrmd_parked_receives %zu\n"
	    "# HELP winrmd_requests_in_progress HTTP requests being served.\n"
	    "# TYPE winrmd_requests_in_progress gauge\n"
	    "winrmd_requests_in_progress %zu\n"
	    "# HELP winrmd_start_time_seconds When the daemon started.\n"
	    "# TYPE winrmd_start_time_seconds gauge\n"
	    "winrmd_start_time_seconds %lld\n",
	    wrm_hosts_count(), wrm_warm_count_all(), wrm_parked_count(),
	    wrm_http_active_requests(), (long long)(D.started_wall / 1000));
	return 0;
}
