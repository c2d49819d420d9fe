#include "config.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "plugin-load.h"

/* The size of struct wrm_plugin in ABI 1.0: everything through connect. */
#define PLUGIN_SIZE_1_0	(offsetof(struct wrm_plugin, connect) + \
	sizeof(((struct wrm_plugin *)0)->connect))

/* dir/name.so, or dir/.libs/name.so (an uninstalled libtool build). */
static char *
plugin_in(const char *dir, size_t dl, const char *name)
{
	char *p = NULL;
	struct stat st;

	if (asprintf(&p, "%.*s/%s.so", (int)dl, dir, name) < 0)
		return NULL;
	if (stat(p, &st) == 0)
		return p;
	free(p);
	if (asprintf(&p, "%.*s/.libs/%s.so", (int)dl, dir, name) < 0)
		return NULL;
	if (stat(p, &st) == 0)
		return p;
	free(p);
	return NULL;
}

char *
wrm_plugin_path(const char *dirs, const char *name)
{
	const char *d = dirs, *e;
	char *p;

	if (strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0')
		return NULL;
	/* A colon-separated search path; the first directory with it wins. */
	for (;;) {
		e = strchr(d, ':');
		if ((e != NULL ? e : d + strlen(d)) > d &&
		    (p = plugin_in(d, e != NULL ? (size_t)(e - d) : strlen(d),
		    name)) != NULL)
			return p;
		if (e == NULL)
			return NULL;
		d = e + 1;
	}
}

static int
refuse(char *why, size_t whylen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
refuse(char *why, size_t whylen, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(why, whylen, "plugin %s refused: %s", path, msg);
	return WRM_ERR_PLUGIN;
}

/* The first required callback p lacks, or NULL. */
static const char *
missing_callback(const struct wrm_plugin *p)
{
	if (p->startup == NULL)
		return "startup";
	if (p->shutdown == NULL)
		return "shutdown";
	if (p->shell == NULL)
		return "shell";
	if (p->release_shell == NULL)
		return "release_shell";
	if (p->command == NULL)
		return "command";
	if (p->release_command == NULL)
		return "release_command";
	if (p->send == NULL)
		return "send";
	if (p->receive == NULL)
		return "receive";
	if (p->signal == NULL)
		return "signal";
	return NULL;
}

/*
 * Every reason is formatted while the library is still loaded (it may
 * read the descriptor), and only then is the library closed.
 */
int
wrm_plugin_load(const char *path, const struct wrm_host_api *host,
    struct wrm_loaded_plugin *lp, char *why, size_t whylen)
{
	wrm_plugin_entry_fn entry;
	const struct wrm_plugin *p;
	const char *cb;
	void *h;
	int r;

	memset(lp, 0, sizeof(*lp));
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
		return refuse(why, whylen, path, "cannot load: %s", dlerror());
	*(void **)&entry = dlsym(h, WRM_PLUGIN_ENTRY_SYMBOL);
	if (entry == NULL)
		r = refuse(why, whylen, path, "no %s symbol",
		    WRM_PLUGIN_ENTRY_SYMBOL);
	else if ((p = entry(host)) == NULL)
		r = refuse(why, whylen, path, "%s returned NULL",
		    WRM_PLUGIN_ENTRY_SYMBOL);
	else if (p->abi_major != WRM_PLUGIN_ABI_MAJOR)
		r = refuse(why, whylen, path, "ABI %u.%u, host ABI %u.%u: "
		    "major version differs", p->abi_major, p->abi_minor,
		    WRM_PLUGIN_ABI_MAJOR, WRM_PLUGIN_ABI_MINOR);
	else if (p->abi_minor > WRM_PLUGIN_ABI_MINOR)
		r = refuse(why, whylen, path, "ABI %u.%u, host ABI %u.%u: "
		    "built for a newer host", p->abi_major, p->abi_minor,
		    WRM_PLUGIN_ABI_MAJOR, WRM_PLUGIN_ABI_MINOR);
	else if (p->size < PLUGIN_SIZE_1_0)
		r = refuse(why, whylen, path, "descriptor size %u is smaller "
		    "than ABI %u.0 requires (%zu)", p->size,
		    WRM_PLUGIN_ABI_MAJOR, (size_t)PLUGIN_SIZE_1_0);
	else if ((cb = missing_callback(p)) != NULL)
		r = refuse(why, whylen, path, "required callback %s is "
		    "missing", cb);
	else if (p->name == NULL || p->version == NULL)
		r = refuse(why, whylen, path, "no name or version");
	else {
		lp->handle = h;
		lp->p = p;
		lp->path = strdup(path);
		return 0;
	}
	dlclose(h);
	return r;
}

const struct wrm_plugin_option *
wrm_plugin_find_option(const struct wrm_plugin *p, const char *name)
{
	const struct wrm_plugin_option *o;

	for (o = p->options; o != NULL && o->name != NULL; o++)
		if (strcasecmp(o->name, name) == 0)
			return o;
	return NULL;
}
