/*
 * winrmctl's parts: the session configuration commands
 * (winrmctl-config.c), quickconfig (winrmctl-quickconfig.c) and what
 * they share with winrmctl.c.
 */
#ifndef WRM_WINRMCTL_H
#define WRM_WINRMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct wrm_conf;

/* The -f file and the -o assignments of the command line. */
extern const char *ctl_config_path;
extern char **ctl_overrides;
extern size_t ctl_n_overrides;

/* One request to the daemon's control socket; 0 ok, 1 refused, 2 down. */
int ctl_admin_request(const char *state_dir, const char *request, FILE *out);

/*
 * A file whose contents are replaced, for a configuration load that sees
 * a change before it is made: text is the new contents, or NULL for a
 * file that is to be removed.
 */
struct ctl_subst {
	const char *path;
	const char *text;
	bool seen;		/* set when the load read it */
};

/*
 * Load the configuration at path as winrmd would: the file and its
 * includes, with the files in subst replaced (a file to be created is read
 * where an Include pattern would find it), then the settings kept from
 * WS-Management Put, then the -o assignments, then wrm_conf_check().  The
 * tree is returned even with errors (conf->n_errors).
 */
int ctl_conf_load(const char *path, struct ctl_subst *subst, size_t n_subst,
    struct wrm_conf **conf_r);

/* Where plugins and winrmd-host are found for conf (malloc'd). */
char *ctl_plugin_dir(const struct wrm_conf *conf);
char *ctl_host_program(const struct wrm_conf *conf);

/*
 * Write text to path: a hidden temporary file in the same directory,
 * fsync, then rename (replace true) or link (never replaces an existing
 * file).  Mode as given.  0, or -1 with errno set.
 */
int ctl_write_file(const char *path, const char *text, int mode, bool replace);

/* Allocation that ends winrmctl (status 1) when memory runs out. */
void *ctl_xmalloc(size_t n);
char *ctl_xstrdup(const char *s);
char *ctl_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "config ..." and "quickconfig ...": exit statuses. */
int ctl_cmd_config(int argc, char **argv);
int ctl_cmd_quickconfig(int argc, char **argv);
void ctl_usage(void) __attribute__((noreturn));

#endif
