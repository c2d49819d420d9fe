/*
 * Counters for the optional metrics listener ([Service] MetricsListen),
 * rendered in the Prometheus text format.  Loop thread only.
 */
#ifndef WRM_METRICS_H
#define WRM_METRICS_H

#include "buf.h"

/* A response went out: the operation's short name ("-" when none). */
void wrm_metrics_request(const char *action, unsigned status);
void wrm_metrics_auth_failure(const char *scheme);
void wrm_metrics_auth_success(const char *scheme);
/* The whole exposition. */
int wrm_metrics_render(struct wrm_buf *b);

#endif
