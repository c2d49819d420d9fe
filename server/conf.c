#include "config.h"

#include <errno.h>
#include <glob.h>
#include <gnutls/gnutls.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "err.h"
#include "log.h"
#include "misc.h"

#define MAX_INCLUDE_DEPTH	8

enum key_type { T_U64, T_BOOL, T_STR, T_LIST };

struct key_def {
	const char *key;
	enum key_type type;
	const char *def;
	const char *doc;
	size_t off;
};

#define KEYDEF(st, f, k, t, d, doc) { k, T_##t, d, doc, offsetof(st, f) },
#define SVC_ROW(f, k, t, d, doc) KEYDEF(struct wrm_service_conf, f, k, t, d, doc)
#define AUTH_ROW(f, k, t, d, doc) KEYDEF(struct wrm_auth_conf, f, k, t, d, doc)
#define WINRS_ROW(f, k, t, d, doc) KEYDEF(struct wrm_winrs_conf, f, k, t, d, doc)
#define LSN_ROW(f, k, t, d, doc) KEYDEF(struct wrm_listener_conf, f, k, t, d, doc)
#define SESS_ROW(f, k, t, d, doc) KEYDEF(struct wrm_session_conf, f, k, t, d, doc)
#define CMAP_ROW(f, k, t, d, doc) KEYDEF(struct wrm_certmap_conf, f, k, t, d, doc)
#define REDIR_ROW(f, k, t, d, doc) KEYDEF(struct wrm_redirect_conf, f, k, t, d, doc)
#define FAULT_ROW(f, k, t, d, doc) KEYDEF(struct wrm_fault_conf, f, k, t, d, doc)

static const struct key_def service_keys[] = { WRM_SERVICE_KEYS(SVC_ROW)
    { NULL, 0, NULL, NULL, 0 } };
static const struct key_def auth_keys[] = { WRM_AUTH_KEYS(AUTH_ROW)
    { NULL, 0, NULL, NULL, 0 } };
static const struct key_def winrs_keys[] = { WRM_WINRS_KEYS(WINRS_ROW)
    { NULL, 0, NULL, NULL, 0 } };
static const struct key_def listener_keys[] = { WRM_LISTENER_KEYS(LSN_ROW)
    { NULL, 0, NULL, NULL, 0 } };
static const struct key_def session_keys[] = { WRM_SESSION_KEYS(SESS_ROW)
    { NULL, 0, NULL, NULL, 0 } };
static const struct key_def certmap_keys[] = { WRM_CERTMAP_KEYS(CMAP_ROW)
    { NULL, 0, NULL, NULL, 0 } };
static const struct key_def redirect_keys[] = { WRM_REDIRECT_KEYS(REDIR_ROW)
    { NULL, 0, NULL, NULL, 0 } };
static const struct key_def fault_keys[] = { WRM_FAULT_KEYS(FAULT_ROW)
    { NULL, 0, NULL, NULL, 0 } };

static const struct {
	const char *section;
	const struct key_def *keys;
} tables[] = {
	{ "Service", service_keys },
	{ "Service/Auth", auth_keys },
	{ "Winrs", winrs_keys },
	{ "Listener", listener_keys },
	{ "SessionConfiguration", session_keys },
	{ "CertificateMapping", certmap_keys },
	{ "Redirect", redirect_keys },
	{ "FaultInjection", fault_keys },
};

static void
add_msg(char ***list, size_t *n, const char *fmt, va_list ap)
{
	char **nl, *s;

	if (vasprintf(&s, fmt, ap) < 0)
		return;
	if ((nl = realloc(*list, (*n + 1) * sizeof(*nl))) == NULL) {
		free(s);
		return;
	}
	nl[(*n)++] = s;
	*list = nl;
}

void
wrm_conf_add_error(struct wrm_conf *conf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_msg(&conf->errors, &conf->n_errors, fmt, ap);
	va_end(ap);
}

void
wrm_conf_add_warning(struct wrm_conf *conf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_msg(&conf->warnings, &conf->n_warnings, fmt, ap);
	va_end(ap);
}

/* Store value into the field described by k inside base. */
static int
set_value(void *base, const struct key_def *k, const char *value)
{
	void *field = (char *)base + k->off;
	uint64_t v;
	char *s;
	int b;

	switch (k->type) {
	case T_U64:
		if (wrm_parse_u64(value, &v) != 0)
			return WRM_ERR_PARSE;
		*(uint64_t *)field = v;
		return 0;
	case T_BOOL:
		if ((b = wrm_parse_bool(value)) < 0)
			return WRM_ERR_PARSE;
		*(bool *)field = b;
		return 0;
	case T_STR:
	case T_LIST:
		if ((s = wrm_strdup_trim(value)) == NULL)
			return WRM_ERR_ALLOC;
		free(*(char **)field);
		*(char **)field = s;
		return 0;
	}
	return WRM_ERR_INTERNAL;
}

static void
set_defaults(void *base, const struct key_def *keys)
{
	const struct key_def *k;

	for (k = keys; k->key != NULL; k++)
		if (set_value(base, k, k->def) != 0)
			fatal_f("bad built-in default for %s", k->key);
}

static void
free_strings(void *base, const struct key_def *keys)
{
	const struct key_def *k;

	for (k = keys; k->key != NULL; k++)
		if (k->type == T_STR || k->type == T_LIST)
			free(*(char **)((char *)base + k->off));
}

static const struct key_def *
find_key(const struct key_def *keys, const char *name)
{
	for (; keys->key != NULL; keys++)
		if (strcasecmp(keys->key, name) == 0)
			return keys;
	return NULL;
}

/*
 * The element called name of a named-section array (every element type
 * starts with its char *name), added with the defaults when missing.
 */
static void *
get_named(void **arr, size_t *n, size_t size, const struct key_def *keys,
    const char *name)
{
	char *base = *arr, *e;
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcasecmp(*(char **)(void *)(base + i * size), name) == 0)
			return base + i * size;
	if ((base = realloc(*arr, (*n + 1) * size)) == NULL)
		return NULL;
	*arr = base;
	e = base + (*n)++ * size;
	memset(e, 0, size);
	set_defaults(e, keys);
	*(char **)(void *)e = strdup(name);
	return e;
}

#define GET_NAMED(conf, arr, n, keys, name) \
	get_named((void **)&(conf)->arr, &(conf)->n, sizeof(*(conf)->arr), \
	    keys, name)

static struct wrm_session_conf *
get_session(struct wrm_conf *conf, const char *name)
{
	return GET_NAMED(conf, sessions, n_sessions, session_keys, name);
}

static int
session_set_option(struct wrm_session_conf *s, const char *key,
    const char *value)
{
	struct wrm_kv *kv;
	size_t i;

	for (i = 0; i < s->n_options; i++) {
		if (strcasecmp(s->options[i].key, key) == 0) {
			free(s->options[i].value);
			s->options[i].value = wrm_strdup_trim(value);
			return 0;
		}
	}
	kv = realloc(s->options, (s->n_options + 1) * sizeof(*kv));
	if (kv == NULL)
		return WRM_ERR_ALLOC;
	s->options = kv;
	kv[s->n_options].key = strdup(key);
	kv[s->n_options].value = wrm_strdup_trim(value);
	s->n_options++;
	return 0;
}

static void
add_builtin_session(struct wrm_conf *conf, const char *name,
    const char *plugin, const char *uri)
{
	struct wrm_session_conf *s = get_session(conf, name);

	if (s == NULL)
		fatal_f("out of memory");
	s->builtin = true;
	set_value(s, find_key(session_keys, "Plugin"), plugin);
	set_value(s, find_key(session_keys, "ResourceURI"), uri);
}

int
wrm_conf_defaults(struct wrm_conf **conf_r)
{
	struct wrm_conf *conf;

	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		return WRM_ERR_ALLOC;
	set_defaults(&conf->service, service_keys);
	set_defaults(&conf->auth, auth_keys);
	set_defaults(&conf->winrs, winrs_keys);
	add_builtin_session(conf, "Microsoft.PowerShell", "powershell",
	    WRM_URI_PS_PREFIX "Microsoft.PowerShell");
	add_builtin_session(conf, "PowerShell.7", "powershell",
	    WRM_URI_PS_PREFIX "PowerShell.7");
	add_builtin_session(conf, "cmd", "cmd", WRM_URI_CMD);
	*conf_r = conf;
	return 0;
}

struct parse_ctx {
	struct wrm_conf *conf;
	const char *file;
	int depth;
	unsigned line;
};

#define MAX_LINE	65536

static int parse_file(struct wrm_conf *conf, const char *path, int depth);

static void
do_include(struct parse_ctx *pc, const char *pattern)
{
	char *dir = NULL, *full = NULL, *tmp;
	glob_t g;
	size_t i;
	int r;

	if (pattern[0] != '/') {
		if ((tmp = strdup(pc->file)) == NULL)
			return;
		dir = strdup(dirname(tmp));
		free(tmp);
		if (dir == NULL || asprintf(&full, "%s/%s", dir, pattern) < 0) {
			free(dir);
			return;
		}
		free(dir);
	} else if ((full = strdup(pattern)) == NULL)
		return;
	r = glob(full, 0, NULL, &g);
	if (r == 0) {
		for (i = 0; i < g.gl_pathc; i++)
			parse_file(pc->conf, g.gl_pathv[i], pc->depth + 1);
		globfree(&g);
	} else if (r != GLOB_NOMATCH)
		wrm_conf_add_error(pc->conf, "%s:%u: Include %s: glob failed",
		    pc->file, pc->line, pattern);
	free(full);
}

static int
conf_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct parse_ctx *pc = user;
	struct wrm_conf *conf = pc->conf;
	const struct key_def *k = NULL;
	const char *sub = NULL;
	void *base = NULL;
	size_t i, tl;

	if (strcasecmp(name, "Include") == 0) {
		do_include(pc, value);
		return 1;
	}
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		tl = strlen(tables[i].section);
		if (strncasecmp(section, tables[i].section, tl) != 0)
			continue;
		if (section[tl] == '\0' && i < 3)
			break;
		if (section[tl] == ' ' && i >= 3) {
			sub = section + tl + 1;
			break;
		}
	}
	if (i == sizeof(tables) / sizeof(tables[0]) ||
	    (i >= 3 && (sub == NULL || *sub == '\0'))) {
		wrm_conf_add_error(conf, "%s:%u: unknown section [%s]",
		    pc->file, pc->line, section);
		return 1;
	}
	switch (i) {
	case 0: base = &conf->service; break;
	case 1: base = &conf->auth; break;
	case 2: base = &conf->winrs; break;
	case 3: base = GET_NAMED(conf, listeners, n_listeners, listener_keys,
	    sub); break;
	case 4: base = get_session(conf, sub); break;
	case 5: base = GET_NAMED(conf, certmaps, n_certmaps, certmap_keys,
	    sub); break;
	case 6: base = GET_NAMED(conf, redirects, n_redirects, redirect_keys,
	    sub); break;
	case 7: base = GET_NAMED(conf, faults, n_faults, fault_keys, sub);
	    break;
	}
	if (base == NULL)
		return 0;
	k = find_key(tables[i].keys, name);
	if (k == NULL && i == 4) {
		session_set_option(base, name, value);
		return 1;
	}
	if (k == NULL) {
		wrm_conf_add_error(conf, "%s:%u: unknown key %s in [%s]",
		    pc->file, pc->line, name, section);
		return 1;
	}
	if (set_value(base, k, value) != 0)
		wrm_conf_add_error(conf, "%s:%u: [%s] %s: bad value \"%s\"",
		    pc->file, pc->line, section, k->key, value);
	return 1;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
	    e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/*
 * The file format: "[Section NAME]" lines, "Key = value" lines, comments
 * starting with '#' or ';' as the first non-blank character, blank lines.
 * Lines may be of any length up to MAX_LINE.
 */
static int
parse_file(struct wrm_conf *conf, const char *path, int depth)
{
	struct parse_ctx pc = { conf, path, depth, 0 };
	char *line = NULL, *p, *eq, *section = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	if (depth > MAX_INCLUDE_DEPTH) {
		wrm_conf_add_error(conf, "%s: includes nested too deeply", path);
		return WRM_ERR_LIMIT;
	}
	if ((f = fopen(path, "re")) == NULL) {
		wrm_conf_add_error(conf, "%s: cannot open: %s", path,
		    strerror(errno));
		return WRM_ERR_SYSTEM;
	}
	if ((section = strdup("")) == NULL) {
		fclose(f);
		return WRM_ERR_ALLOC;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		pc.line++;
		if (n > MAX_LINE) {
			wrm_conf_add_error(conf, "%s:%u: line too long", path,
			    pc.line);
			continue;
		}
		p = trim(line);
		if (pc.line == 1 && strncmp(p, "\xef\xbb\xbf", 3) == 0)
			p = trim(p + 3);
		if (*p == '\0' || *p == '#' || *p == ';')
			continue;
		if (*p == '[') {
			char *e = strchr(p, ']');

			if (e == NULL || *trim(e + 1) != '\0') {
				wrm_conf_add_error(conf, "%s:%u: syntax error",
				    path, pc.line);
				continue;
			}
			*e = '\0';
			free(section);
			if ((section = strdup(trim(p + 1))) == NULL)
				break;
			continue;
		}
		if ((eq = strchr(p, '=')) == NULL || eq == p) {
			wrm_conf_add_error(conf, "%s:%u: syntax error", path,
			    pc.line);
			continue;
		}
		*eq = '\0';
		conf_handler(&pc, section, trim(p), trim(eq + 1));
	}
	free(line);
	free(section);
	fclose(f);
	return 0;
}

void
wrm_conf_include(struct wrm_conf *conf, const char *path)
{
	parse_file(conf, path, 1);
}

int
wrm_conf_load(const char *path, struct wrm_conf **conf_r)
{
	struct wrm_conf *conf;
	int r;

	*conf_r = NULL;
	if ((r = wrm_conf_defaults(&conf)) != 0)
		return r;
	conf->path = strdup(path);
	parse_file(conf, path, 0);
	*conf_r = conf;
	return 0;
}

void
wrm_conf_free(struct wrm_conf *conf)
{
	size_t i, j;

	if (conf == NULL)
		return;
	free_strings(&conf->service, service_keys);
	free_strings(&conf->auth, auth_keys);
	free_strings(&conf->winrs, winrs_keys);
	for (i = 0; i < conf->n_listeners; i++) {
		free_strings(&conf->listeners[i], listener_keys);
		free(conf->listeners[i].name);
	}
	free(conf->listeners);
	for (i = 0; i < conf->n_sessions; i++) {
		free_strings(&conf->sessions[i], session_keys);
		free(conf->sessions[i].name);
		for (j = 0; j < conf->sessions[i].n_options; j++) {
			free(conf->sessions[i].options[j].key);
			free(conf->sessions[i].options[j].value);
		}
		free(conf->sessions[i].options);
	}
	free(conf->sessions);
	for (i = 0; i < conf->n_certmaps; i++) {
		free_strings(&conf->certmaps[i], certmap_keys);
		free(conf->certmaps[i].name);
	}
	free(conf->certmaps);
	for (i = 0; i < conf->n_redirects; i++) {
		free_strings(&conf->redirects[i], redirect_keys);
		free(conf->redirects[i].name);
	}
	free(conf->redirects);
	for (i = 0; i < conf->n_faults; i++) {
		free_strings(&conf->faults[i], fault_keys);
		free(conf->faults[i].name);
	}
	free(conf->faults);
	for (i = 0; i < conf->n_errors; i++)
		free(conf->errors[i]);
	free(conf->errors);
	for (i = 0; i < conf->n_warnings; i++)
		free(conf->warnings[i]);
	free(conf->warnings);
	free(conf->path);
	free(conf);
}

static void
print_keys(FILE *f, const void *base, const struct key_def *keys)
{
	const struct key_def *k;
	const void *field;

	for (k = keys; k->key != NULL; k++) {
		field = (const char *)base + k->off;
		switch (k->type) {
		case T_U64:
			fprintf(f, "%s = %llu\n", k->key,
			    (unsigned long long)*(const uint64_t *)field);
			break;
		case T_BOOL:
			fprintf(f, "%s = %s\n", k->key,
			    *(const bool *)field ? "true" : "false");
			break;
		case T_STR:
		case T_LIST:
			fprintf(f, "%s = %s\n", k->key,
			    *(char *const *)field ? *(char *const *)field : "");
			break;
		}
	}
}

void
wrm_conf_print(const struct wrm_conf *conf, FILE *f)
{
	size_t i, j;

	fprintf(f, "[Service]\n");
	print_keys(f, &conf->service, service_keys);
	fprintf(f, "\n[Service/Auth]\n");
	print_keys(f, &conf->auth, auth_keys);
	fprintf(f, "\n[Winrs]\n");
	print_keys(f, &conf->winrs, winrs_keys);
	for (i = 0; i < conf->n_listeners; i++) {
		fprintf(f, "\n[Listener %s]\n", conf->listeners[i].name);
		print_keys(f, &conf->listeners[i], listener_keys);
	}
	for (i = 0; i < conf->n_sessions; i++) {
		fprintf(f, "\n[SessionConfiguration %s]\n",
		    conf->sessions[i].name);
		print_keys(f, &conf->sessions[i], session_keys);
		for (j = 0; j < conf->sessions[i].n_options; j++)
			fprintf(f, "%s = %s\n", conf->sessions[i].options[j].key,
			    conf->sessions[i].options[j].value);
	}
	for (i = 0; i < conf->n_certmaps; i++) {
		fprintf(f, "\n[CertificateMapping %s]\n", conf->certmaps[i].name);
		print_keys(f, &conf->certmaps[i], certmap_keys);
	}
	for (i = 0; i < conf->n_redirects; i++) {
		fprintf(f, "\n[Redirect %s]\n", conf->redirects[i].name);
		print_keys(f, &conf->redirects[i], redirect_keys);
	}
	for (i = 0; i < conf->n_faults; i++) {
		fprintf(f, "\n[FaultInjection %s]\n", conf->faults[i].name);
		print_keys(f, &conf->faults[i], fault_keys);
	}
}

int
wrm_conf_set(struct wrm_conf *conf, const char *assignment)
{
	char *copy, *eq, *dot;
	struct parse_ctx pc = { conf, "command line", 0, 0 };
	size_t before = conf->n_errors;

	if ((copy = strdup(assignment)) == NULL)
		return WRM_ERR_ALLOC;
	eq = strchr(copy, '=');
	dot = eq != NULL ? memrchr(copy, '.', (size_t)(eq - copy)) : NULL;
	if (eq == NULL || dot == NULL) {
		free(copy);
		return WRM_ERR_PARSE;
	}
	*eq = '\0';
	*dot = '\0';
	conf_handler(&pc, trim(copy), trim(dot + 1), trim(eq + 1));
	free(copy);
	return conf->n_errors > before ? WRM_ERR_PARSE : 0;
}

size_t
wrm_conf_check(struct wrm_conf *conf)
{
	const struct wrm_session_conf *s;
	const struct wrm_listener_conf *l;
	size_t i, j;

	if (wrm_log_level_parse(conf->service.log_level) < 0)
		wrm_conf_add_error(conf, "LogLevel: unknown level %s",
		    conf->service.log_level);
	if (strcasecmp(conf->auth.cbt_hardening_level, "None") != 0 &&
	    strcasecmp(conf->auth.cbt_hardening_level, "Relaxed") != 0 &&
	    strcasecmp(conf->auth.cbt_hardening_level, "Strict") != 0)
		wrm_conf_add_error(conf, "CbtHardeningLevel: must be None, "
		    "Relaxed or Strict");
	if (conf->service.max_envelope_size_kb < 8 ||
	    conf->service.max_envelope_size_kb > 1039440)
		wrm_conf_add_error(conf, "MaxEnvelopeSizekb: must be between "
		    "8 and 1039440");
	if (conf->service.max_timeout_ms < 500)
		wrm_conf_add_error(conf, "MaxTimeoutms: must be at least 500");
	for (i = 0; i < conf->n_listeners; i++) {
		l = &conf->listeners[i];
		if (strcasecmp(l->transport, "HTTP") != 0 &&
		    strcasecmp(l->transport, "HTTPS") != 0)
			wrm_conf_add_error(conf, "Listener %s: Transport must "
			    "be HTTP or HTTPS", l->name);
		if (l->port > 65535)
			wrm_conf_add_error(conf, "Listener %s: bad Port", l->name);
		if (strcasecmp(l->transport, "HTTPS") == 0) {
			gnutls_priority_t prio;
			const char *at = NULL;

			if (gnutls_priority_init(&prio, l->tls_priorities,
			    &at) < 0)
				wrm_conf_add_error(conf, "Listener %s: bad "
				    "TlsPriorities at \"%.40s\"", l->name,
				    at != NULL ? at : l->tls_priorities);
			else
				gnutls_priority_deinit(prio);
		}
		if (strcasecmp(l->transport, "HTTPS") == 0 && l->enabled &&
		    (l->certificate_file[0] == '\0' || l->key_file[0] == '\0'))
			wrm_conf_add_error(conf, "Listener %s: HTTPS needs "
			    "CertificateFile and KeyFile", l->name);
		for (j = 0; j < i; j++)
			if (conf->listeners[j].port == l->port && l->port != 0 &&
			    strcmp(conf->listeners[j].address, l->address) == 0)
				wrm_conf_add_error(conf, "Listener %s: same "
				    "address and port as %s", l->name,
				    conf->listeners[j].name);
	}
	for (i = 0; i < conf->n_certmaps; i++) {
		const struct wrm_certmap_conf *m = &conf->certmaps[i];

		if (m->subject[0] == '\0' || m->user_name[0] == '\0')
			wrm_conf_add_error(conf, "CertificateMapping %s: needs "
			    "Subject and UserName", m->name);
		if (!wrm_thumbprint_valid(m->issuer))
			wrm_conf_add_error(conf, "CertificateMapping %s: Issuer "
			    "must be a SHA-1 thumbprint (40 hex digits)",
			    m->name);
	}
	for (i = 0; i < conf->n_redirects; i++) {
		const struct wrm_redirect_conf *rd = &conf->redirects[i];

		if (rd->path[0] != '/')
			wrm_conf_add_error(conf, "Redirect %s: Path must be an "
			    "absolute path", rd->name);
		if (rd->status != 301 && rd->status != 302 &&
		    rd->status != 307 && rd->status != 308)
			wrm_conf_add_error(conf, "Redirect %s: Status must be "
			    "301, 302, 307 or 308", rd->name);
		if (rd->hops == 0 || rd->hops > 100)
			wrm_conf_add_error(conf, "Redirect %s: Hops must be "
			    "between 1 and 100", rd->name);
		if (strncasecmp(rd->location, "listener:", 9) == 0) {
			size_t k;

			for (k = 0; k < conf->n_listeners; k++)
				if (strcasecmp(conf->listeners[k].name,
				    rd->location + 9) == 0)
					break;
			if (k == conf->n_listeners)
				wrm_conf_add_error(conf, "Redirect %s: Location "
				    "%s names no listener", rd->name,
				    rd->location);
		}
	}
	for (i = 0; i < conf->n_faults; i++) {
		static const char *const kinds[] = { "delay", "timeout",
		    "fault", "quota", "http", "reset", "trickle", NULL };
		const struct wrm_fault_conf *f = &conf->faults[i];

		for (j = 0; kinds[j] != NULL; j++)
			if (strcasecmp(f->kind, kinds[j]) == 0)
				break;
		if (kinds[j] == NULL)
			wrm_conf_add_error(conf, "FaultInjection %s: unknown "
			    "Kind %s", f->name, f->kind);
		if (f->header[0] != '\0' && strchr(f->header, ':') == NULL)
			wrm_conf_add_error(conf, "FaultInjection %s: Header "
			    "must be \"Name: value\"", f->name);
	}
	if (conf->n_faults > 32)
		wrm_conf_add_error(conf, "at most 32 [FaultInjection] sections");
	if (conf->n_listeners == 0)
		wrm_conf_add_warning(conf, "no [Listener] section: nothing "
		    "will be served");
	for (i = 0; i < conf->n_sessions; i++) {
		s = &conf->sessions[i];
		if (s->plugin[0] == '\0')
			wrm_conf_add_error(conf, "SessionConfiguration %s: no "
			    "Plugin", s->name);
		if (strcasecmp(s->output_buffering_mode, "Block") != 0 &&
		    strcasecmp(s->output_buffering_mode, "Drop") != 0)
			wrm_conf_add_error(conf, "SessionConfiguration %s: "
			    "OutputBufferingMode must be Block or Drop", s->name);
		for (j = 0; j < i; j++)
			if (strcasecmp(conf->sessions[j].resource_uri,
			    s->resource_uri) == 0 && s->resource_uri[0] != '\0')
				wrm_conf_add_error(conf, "SessionConfiguration "
				    "%s: ResourceURI already used by %s",
				    s->name, conf->sessions[j].name);
	}
	return conf->n_errors;
}

const struct wrm_session_conf *
wrm_conf_session_by_uri(const struct wrm_conf *conf, const char *uri)
{
	const struct wrm_session_conf *s;
	size_t i, pl = strlen(WRM_URI_PS_PREFIX);

	for (i = 0; i < conf->n_sessions; i++) {
		s = &conf->sessions[i];
		if (s->resource_uri[0] != '\0') {
			if (strcasecmp(s->resource_uri, uri) == 0)
				return s;
		} else if (strncasecmp(uri, WRM_URI_PS_PREFIX, pl) == 0 &&
		    strcasecmp(uri + pl, s->name) == 0)
			return s;
	}
	return NULL;
}

const struct wrm_session_conf *
wrm_conf_session_by_name(const struct wrm_conf *conf, const char *name)
{
	size_t i;

	for (i = 0; i < conf->n_sessions; i++)
		if (strcasecmp(conf->sessions[i].name, name) == 0)
			return &conf->sessions[i];
	return NULL;
}

const char *
wrm_conf_session_option(const struct wrm_session_conf *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n_options; i++)
		if (strcasecmp(s->options[i].key, key) == 0)
			return s->options[i].value;
	return NULL;
}

void
wrm_conf_trim_messages(struct wrm_conf *conf, size_t n_errors,
    size_t n_warnings)
{
	while (conf->n_errors > n_errors)
		free(conf->errors[--conf->n_errors]);
	while (conf->n_warnings > n_warnings)
		free(conf->warnings[--conf->n_warnings]);
}

int
wrm_conf_get(const struct wrm_conf *conf, const char *section,
    const char *key, char *buf, size_t len)
{
	const struct key_def *k;
	const void *base, *field;
	size_t i;

	for (i = 0; i < 3; i++)
		if (strcasecmp(tables[i].section, section) == 0)
			break;
	if (i == 3 || (k = find_key(tables[i].keys, key)) == NULL)
		return WRM_ERR_NOT_FOUND;
	base = i == 0 ? (const void *)&conf->service : i == 1 ?
	    (const void *)&conf->auth : (const void *)&conf->winrs;
	field = (const char *)base + k->off;
	switch (k->type) {
	case T_U64:
		snprintf(buf, len, "%llu",
		    (unsigned long long)*(const uint64_t *)field);
		break;
	case T_BOOL:
		snprintf(buf, len, "%s", *(const bool *)field ? "true" :
		    "false");
		break;
	default:
		snprintf(buf, len, "%s", *(char *const *)field ?
		    *(char *const *)field : "");
		break;
	}
	return 0;
}

void
wrm_conf_list_keys(FILE *f)
{
	const struct key_def *k;
	size_t i;

	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		for (k = tables[i].keys; k->key != NULL; k++)
			fprintf(f, "%s.%s\t%s\t%s\n", tables[i].section, k->key,
			    k->def, k->doc);
}
