/*
 * Redirections ([Redirect NAME]) and fault injection ([FaultInjection
 * NAME], applied only with [Service] FaultInjection = true): the rules,
 * how requests match them, and the count of matches each rule has seen
 * (kept by rule name across reloads).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "daemon.h"
#include "inject.h"
#include "log.h"
#include "misc.h"

struct hits {
	char name[64];
	uint64_t n;
};

#define MAX_RULES	64

static struct hits hits[MAX_RULES];

static uint64_t *
hit_counter(const char *name)
{
	size_t i;

	for (i = 0; i < MAX_RULES && hits[i].name[0] != '\0'; i++)
		if (strcasecmp(hits[i].name, name) == 0)
			return &hits[i].n;
	if (i == MAX_RULES)
		return NULL;
	snprintf(hits[i].name, sizeof(hits[i].name), "%s", name);
	return &hits[i].n;
}

/* path, or path/k with 1 <= k < hops: which hop (hops for path itself). */
static uint64_t
redirect_hop(const struct wrm_redirect_conf *rd, const char *url)
{
	size_t pl = strlen(rd->path);
	uint64_t k;

	if (strncasecmp(url, rd->path, pl) != 0)
		return 0;
	if (url[pl] == '\0')
		return rd->hops > 0 ? rd->hops : 1;
	if (url[pl] != '/' || wrm_parse_u64(url + pl + 1, &k) != 0 ||
	    k == 0 || k >= rd->hops)
		return 0;
	return k;
}

const struct wrm_redirect_conf *
wrm_redirect_match(const char *url, const char *client_ip, const char *user,
    uint64_t *hop_r)
{
	const struct wrm_redirect_conf *rd;
	size_t i;
	uint64_t hop;

	for (i = 0; i < D.conf->n_redirects; i++) {
		rd = &D.conf->redirects[i];
		if (!rd->enabled || rd->path[0] == '\0' ||
		    (hop = redirect_hop(rd, url)) == 0)
			continue;
		if (rd->client[0] != '\0' && (client_ip == NULL ||
		    strcmp(rd->client, client_ip) != 0))
			continue;
		/* Rules for a user wait for authentication. */
		if ((rd->user[0] != '\0') != (user != NULL))
			continue;
		if (user != NULL && strcasecmp(rd->user, user) != 0)
			continue;
		*hop_r = hop;
		return rd;
	}
	return NULL;
}

bool
wrm_redirect_is_path(const char *url)
{
	size_t i;

	for (i = 0; i < D.conf->n_redirects; i++)
		if (D.conf->redirects[i].enabled &&
		    D.conf->redirects[i].path[0] != '\0' &&
		    redirect_hop(&D.conf->redirects[i], url) != 0)
			return true;
	return false;
}

uint32_t
wrm_inject_http_candidates(const char *url,
    const char *(*header)(void *ctx, const char *name), void *ctx)
{
	const struct wrm_fault_conf *f;
	uint32_t mask = 0;
	char name[128];
	const char *colon, *v, *want;
	size_t i;

	if (!D.conf->service.fault_injection)
		return 0;
	for (i = 0; i < D.conf->n_faults && i < 32; i++) {
		f = &D.conf->faults[i];
		if (!f->enabled)
			continue;
		if (f->path[0] != '\0' && strcasecmp(f->path, url) != 0)
			continue;
		if (f->header[0] != '\0') {
			if ((colon = strchr(f->header, ':')) == NULL ||
			    (size_t)(colon - f->header) >= sizeof(name))
				continue;
			snprintf(name, sizeof(name), "%.*s",
			    (int)(colon - f->header), f->header);
			want = colon + 1;
			while (*want == ' ')
				want++;
			if ((v = header(ctx, name)) == NULL ||
			    strcmp(v, want) != 0)
				continue;
		}
		mask |= 1u << i;
	}
	return mask;
}

const struct wrm_fault_conf *
wrm_inject_decide(uint32_t mask, const char *action, const char *config)
{
	const struct wrm_fault_conf *f;
	uint64_t *n;
	size_t i;

	if (!D.conf->service.fault_injection || mask == 0)
		return NULL;
	for (i = 0; i < D.conf->n_faults && i < 32; i++) {
		if (!(mask & (1u << i)))
			continue;
		f = &D.conf->faults[i];
		if (f->action[0] != '\0' && (action == NULL ||
		    strcasecmp(f->action, action) != 0))
			continue;
		if (f->configuration[0] != '\0' && (config == NULL ||
		    strcasecmp(f->configuration, config) != 0))
			continue;
		if ((n = hit_counter(f->name)) == NULL)
			continue;
		++*n;
		if ((f->nth != 0 && *n != f->nth) ||
		    (f->every > 1 && *n % f->every != 0))
			continue;
		wrm_audit("FAULT_INJECTED", "rule=%s kind=%s action=%s match=%llu",
		    f->name, f->kind, action ? action : "-",
		    (unsigned long long)*n);
		return f;
	}
	return NULL;
}

enum wrm_inject_kind
wrm_inject_kind(const struct wrm_fault_conf *f)
{
	static const struct { const char *name; enum wrm_inject_kind k; }
	    kinds[] = {
		{ "delay", WRM_INJECT_DELAY }, { "timeout", WRM_INJECT_TIMEOUT },
		{ "fault", WRM_INJECT_FAULT }, { "quota", WRM_INJECT_QUOTA },
		{ "http", WRM_INJECT_HTTP }, { "reset", WRM_INJECT_RESET },
		{ "trickle", WRM_INJECT_TRICKLE },
	};
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcasecmp(f->kind, kinds[i].name) == 0)
			return kinds[i].k;
	return WRM_INJECT_NONE;
}
