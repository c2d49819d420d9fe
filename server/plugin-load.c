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

char *
wrm_plugin_path(const char *dir, const char *name)
{
	char *p = NULL;
	struct stat st;

	if (strchr(name, '/') != NULL || name[0] == '.' || name[0] == '\0')
		return NULL;
	if (asprintf(&p, "%s/%s.so", dir, name) < 0)
		return NULL;
	if (stat(p, &st) == 0)
		return p;
	free(p);
	if (asprintf(&p, "%s/.libs/%s.so", dir, name) < 0)
		return NULL;
	if (stat(p, &st) == 0)
		return p;
	free(p);
	return NULL;
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

int
wrm_plugin_load(const char *path, const struct wrm_host_api *host,
    struct wrm_loaded_plugin *lp, char *why, size_t whylen)
{
	wrm_plugin_entry_fn entry;
	const struct wrm_plugin *p;
	void *h;

	memset(lp, 0, sizeof(*lp));
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
		return refuse(why, whylen, path, "cannot load: %s", dlerror());
	*(void **)&entry = dlsym(h, WRM_PLUGIN_ENTRY_SYMBOL);
	if (entry == NULL) {
		dlclose(h);
		return refuse(why, whylen, path, "no %s symbol",
		    WRM_PLUGIN_ENTRY_SYMBOL);
	}
	if ((p = entry(host)) == NULL) {
		dlclose(h);
		return refuse(why, whylen, path, "%s returned NULL",
		    WRM_PLUGIN_ENTRY_SYMBOL);
	}
	if (p->abi_major != WRM_PLUGIN_ABI_MAJOR) {
		dlclose(h);
		return refuse(why, whylen, path, "ABI %u.%u, host ABI %u.%u: "
		    "major version differs", p->abi_major, p->abi_minor,
		    WRM_PLUGIN_ABI_MAJOR, WRM_PLUGIN_ABI_MINOR);
	}
	if (p->abi_minor > WRM_PLUGIN_ABI_MINOR) {
		dlclose(h);
		return refuse(why, whylen, path, "ABI %u.%u, host ABI %u.%u: "
		    "built for a newer host", p->abi_major, p->abi_minor,
		    WRM_PLUGIN_ABI_MAJOR, WRM_PLUGIN_ABI_MINOR);
	}
	if (p->size < PLUGIN_SIZE_1_0) {
		dlclose(h);
		return refuse(why, whylen, path, "descriptor size %u is smaller "
		    "than ABI %u.0 requires (%zu)", p->size,
		    WRM_PLUGIN_ABI_MAJOR, (size_t)PLUGIN_SIZE_1_0);
	}
	if (p->startup == NULL || p->shutdown == NULL || p->shell == NULL ||
	    p->release_shell == NULL || p->command == NULL ||
	    p->release_command == NULL || p->send == NULL ||
	    p->receive == NULL || p->signal == NULL) {
		dlclose(h);
		return refuse(why, whylen, path, "a required callback is "
		    "missing");
	}
	if (p->name == NULL || p->version == NULL) {
		dlclose(h);
		return refuse(why, whylen, path, "no name or version");
	}
	lp->handle = h;
	lp->p = p;
	lp->path = strdup(path);
	return 0;
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
