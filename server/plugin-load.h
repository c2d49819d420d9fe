/*
 * Loading a plugin: dlopen(RTLD_NOW | RTLD_LOCAL), find
 * winrmd_plugin_entry, call it, and check the result before any other
 * plugin code runs: ABI major equal to ours, minor not newer, size at
 * least the 1.0 size, every required callback present.  Each refusal
 * returns a one-line reason naming the file and both versions.
 */
#ifndef WRM_PLUGIN_LOAD_H
#define WRM_PLUGIN_LOAD_H

#include <stddef.h>

#include <winrmd/plugin.h>

struct wrm_loaded_plugin {
	void *handle;
	const struct wrm_plugin *p;
	char *path;
};

/*
 * Resolve NAME in dirs, a colon-separated search path (in each: NAME.so,
 * then .libs/NAME.so); malloc'd or NULL.
 */
char *wrm_plugin_path(const char *dirs, const char *name);
int wrm_plugin_load(const char *path, const struct wrm_host_api *host,
    struct wrm_loaded_plugin *lp, char *why, size_t whylen);
/* Find a declared option; NULL if the plugin does not accept it. */
const struct wrm_plugin_option *wrm_plugin_find_option(
    const struct wrm_plugin *p, const char *name);

#endif
