/*
 * Configuration: an INI file whose sections mirror Windows' winrm/config
 * tree ([Service], [Service/Auth], [Winrs], [Listener NAME],
 * [SessionConfiguration NAME]) with Include = GLOB lines.  Keys and
 * defaults are listed once, in conf-keys.h.  Later values override
 * earlier ones, so files in sessions.d refine the built-in session
 * configurations (Microsoft.PowerShell, PowerShell.7 and cmd).
 *
 * Owner: wrm_conf_load() returns a tree freed by wrm_conf_free(); it is
 * immutable afterwards (a reload builds a new tree and swaps).
 */
#ifndef WRM_CONF_H
#define WRM_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "conf-keys.h"

#define WRM_CONF_U64	uint64_t
#define WRM_CONF_BOOL	bool
#define WRM_CONF_STR	char *
#define WRM_CONF_LIST	char *
#define WRM_CONF_FIELD(field, key, type, def, doc)	WRM_CONF_##type field;

struct wrm_service_conf { WRM_SERVICE_KEYS(WRM_CONF_FIELD) };
struct wrm_auth_conf { WRM_AUTH_KEYS(WRM_CONF_FIELD) };
struct wrm_winrs_conf { WRM_WINRS_KEYS(WRM_CONF_FIELD) };

struct wrm_listener_conf {
	char *name;
	WRM_LISTENER_KEYS(WRM_CONF_FIELD)
};

struct wrm_certmap_conf {
	char *name;
	WRM_CERTMAP_KEYS(WRM_CONF_FIELD)
};

struct wrm_redirect_conf {
	char *name;
	WRM_REDIRECT_KEYS(WRM_CONF_FIELD)
};

struct wrm_fault_conf {
	char *name;
	WRM_FAULT_KEYS(WRM_CONF_FIELD)
};

struct wrm_kv {
	char *key;
	char *value;
};

struct wrm_session_conf {
	char *name;
	bool builtin;
	WRM_SESSION_KEYS(WRM_CONF_FIELD)
	struct wrm_kv *options;		/* plugin options (unknown keys) */
	size_t n_options;
};

struct wrm_conf {
	char *path;
	struct wrm_service_conf service;
	struct wrm_auth_conf auth;
	struct wrm_winrs_conf winrs;
	struct wrm_listener_conf *listeners;
	size_t n_listeners;
	struct wrm_session_conf *sessions;
	size_t n_sessions;
	struct wrm_certmap_conf *certmaps;
	size_t n_certmaps;
	struct wrm_redirect_conf *redirects;
	size_t n_redirects;
	struct wrm_fault_conf *faults;
	size_t n_faults;
	char **errors;			/* "file:line: text" */
	size_t n_errors;
	char **warnings;
	size_t n_warnings;
};

/* Defaults only (no file). */
int wrm_conf_defaults(struct wrm_conf **conf_r);
/*
 * Load path (and its includes).  On a syntax or value error the tree is
 * still returned with conf->n_errors > 0 so that -t can print them all.
 */
int wrm_conf_load(const char *path, struct wrm_conf **conf_r);
void wrm_conf_free(struct wrm_conf *conf);
/* Read one more file into conf (its keys override what came before). */
void wrm_conf_include(struct wrm_conf *conf, const char *path);
/* Print the effective configuration in the file's own syntax (-T). */
void wrm_conf_print(const struct wrm_conf *conf, FILE *f);
/* Apply "Section.Key=value" (command-line -o). */
int wrm_conf_set(struct wrm_conf *conf, const char *assignment);
/* Semantic checks; appends to errors/warnings.  Returns error count. */
size_t wrm_conf_check(struct wrm_conf *conf);

/* Session configuration for a resource URI (case-insensitive), or NULL. */
const struct wrm_session_conf *wrm_conf_session_by_uri(
    const struct wrm_conf *conf, const char *uri);
const struct wrm_session_conf *wrm_conf_session_by_name(
    const struct wrm_conf *conf, const char *name);
const char *wrm_conf_session_option(const struct wrm_session_conf *s,
    const char *key);

/* Drop the errors and warnings added after these counts. */
void wrm_conf_trim_messages(struct wrm_conf *conf, size_t n_errors,
    size_t n_warnings);
/* A key of [Service], [Service/Auth] or [Winrs] as text. */
int wrm_conf_get(const struct wrm_conf *conf, const char *section,
    const char *key, char *buf, size_t len);

/* Every key as "Section.Key" in table order (for the man page test). */
void wrm_conf_list_keys(FILE *f);

void wrm_conf_add_error(struct wrm_conf *conf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void wrm_conf_add_warning(struct wrm_conf *conf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define WRM_URI_CMD	"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
#define WRM_URI_PS_PREFIX "http://schemas.microsoft.com/powershell/"

#endif
