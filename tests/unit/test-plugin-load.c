/*
 * Unit tests for plugin-load.c with the plugins of tests/plugins: the
 * good ones load; every defective one is refused with a one-line reason
 * that names the file and what is wrong (both ABI versions when the
 * version is the problem); plugin names resolve the way the daemon and
 * the host look them up.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "plugin-load.h"
#include "util.h"

static const struct wrm_host_api test_host = {
	.abi_major = WRM_PLUGIN_ABI_MAJOR,
	.abi_minor = WRM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct wrm_host_api),
};

/* Path of a built test plugin; fails the test when it was not built. */
static char *
plugin(const char *name)
{
	char *dir = tu_buildpath("tests/plugins");
	char *path = wrm_plugin_path(dir, name);

	if (path == NULL)
		fail_msg("test plugin %s not found in %s (make check builds it)",
		    name, dir);
	free(dir);
	return path;
}

static void
unload(struct wrm_loaded_plugin *lp)
{
	if (lp->handle != NULL)
		dlclose(lp->handle);
	free(lp->path);
	memset(lp, 0, sizeof(*lp));
}

static void
test_load_good(void **state)
{
	static const char *const good[] = { "echo", "sleepy", "crashy" };
	struct wrm_loaded_plugin lp;
	char why[512], *path;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		path = plugin(good[i]);
		why[0] = '\0';
		if (wrm_plugin_load(path, &test_host, &lp, why,
		    sizeof(why)) != 0)
			fail_msg("%s refused: %s", path, why);
		assert_non_null(lp.handle);
		assert_non_null(lp.p);
		assert_string_equal(lp.p->name, good[i]);
		assert_non_null(lp.p->version);
		assert_int_equal(lp.p->abi_major, WRM_PLUGIN_ABI_MAJOR);
		assert_string_equal(lp.path, path);
		unload(&lp);
		free(path);
	}
}

static void
test_find_option(void **state)
{
	struct wrm_loaded_plugin lp;
	const struct wrm_plugin_option *o;
	char why[512], *path = plugin("sleepy");

	(void)state;
	assert_int_equal(wrm_plugin_load(path, &test_host, &lp, why,
	    sizeof(why)), 0);
	o = wrm_plugin_find_option(lp.p, "IntervalMs");
	assert_non_null(o);
	assert_int_equal(o->type, WRM_OPTION_INT);
	assert_ptr_equal(wrm_plugin_find_option(lp.p, "intervalms"), o);
	assert_non_null(wrm_plugin_find_option(lp.p, "LINES"));
	assert_null(wrm_plugin_find_option(lp.p, "Interval"));
	unload(&lp);
	free(path);

	/* A plugin without an option table accepts none. */
	path = plugin("crashy");
	assert_int_equal(wrm_plugin_load(path, &test_host, &lp, why,
	    sizeof(why)), 0);
	assert_null(lp.p->options);
	assert_null(wrm_plugin_find_option(lp.p, "Anything"));
	unload(&lp);
	free(path);
}

/*
 * Load name, expect a refusal; the reason is one line, names the file and
 * contains every given fragment.
 */
static void
expect_refusal(const char *path, const char *const *frags, size_t n)
{
	struct wrm_loaded_plugin lp;
	char why[1024];
	size_t i;

	memset(&lp, 0x5a, sizeof(lp));
	memset(why, 0, sizeof(why));
	assert_int_equal(wrm_plugin_load(path, &test_host, &lp, why,
	    sizeof(why)), WRM_ERR_PLUGIN);
	assert_null(lp.handle);
	assert_null(lp.p);
	assert_null(lp.path);
	print_message("%s\n", why);
	assert_null(strchr(why, '\n'));
	if (strstr(why, path) == NULL)
		fail_msg("reason does not name the file: %s", why);
	for (i = 0; i < n; i++)
		if (strstr(why, frags[i]) == NULL)
			fail_msg("reason lacks \"%s\": %s", frags[i], why);
}

static void
test_refuse_versions(void **state)
{
	char plugin_v[32], host_v[32], *path;
	const char *frags[3];

	(void)state;
	snprintf(host_v, sizeof(host_v), "%u.%u", WRM_PLUGIN_ABI_MAJOR,
	    WRM_PLUGIN_ABI_MINOR);
	frags[1] = host_v;

	path = plugin("abi-newer-minor");
	snprintf(plugin_v, sizeof(plugin_v), "%u.%u", WRM_PLUGIN_ABI_MAJOR,
	    WRM_PLUGIN_ABI_MINOR + 1);
	frags[0] = plugin_v;
	frags[2] = "newer";
	expect_refusal(path, frags, 3);
	free(path);

	path = plugin("abi-other-major");
	snprintf(plugin_v, sizeof(plugin_v), "%u.%u", WRM_PLUGIN_ABI_MAJOR + 1,
	    WRM_PLUGIN_ABI_MINOR);
	frags[0] = plugin_v;
	frags[2] = "major";
	expect_refusal(path, frags, 3);
	free(path);
}

static void
test_refuse_entry(void **state)
{
	const char *frags[2] = { "winrmd_plugin_entry", NULL };
	char *path;

	(void)state;
	path = plugin("no-entry");
	expect_refusal(path, frags, 1);
	free(path);

	path = plugin("null-entry");
	frags[1] = "NULL";
	expect_refusal(path, frags, 2);
	free(path);
}

static void
test_refuse_descriptor(void **state)
{
	const char *frags[1];
	char *path;

	(void)state;
	/* The reason says which callback is missing. */
	path = plugin("missing-callback");
	frags[0] = "signal";
	expect_refusal(path, frags, 1);
	free(path);

	path = plugin("short-size");
	frags[0] = "size";
	expect_refusal(path, frags, 1);
	free(path);

	path = plugin("no-name");
	frags[0] = "name";
	expect_refusal(path, frags, 1);
	free(path);
}

static void
test_refuse_unloadable(void **state)
{
	const char *frags[1] = { "cannot load" };
	char *dir = tu_mkdtemp();
	char *path = tu_asprintf("%s/absent.so", dir);

	(void)state;
	expect_refusal(path, frags, 1);
	free(path);
	path = tu_asprintf("%s/text.so", dir);
	tu_write_file(path, "not an ELF object\n", 18);
	expect_refusal(path, frags, 1);
	free(path);
	tu_rmtree(dir);
	free(dir);
}

/* A short reason buffer is filled, never overrun. */
static void
test_refuse_short_buffer(void **state)
{
	struct wrm_loaded_plugin lp;
	char why[24];
	char *path = plugin("abi-other-major");

	(void)state;
	memset(why, 'x', sizeof(why));
	assert_int_equal(wrm_plugin_load(path, &test_host, &lp, why, 16),
	    WRM_ERR_PLUGIN);
	assert_int_equal(strlen(why), 15);
	assert_int_equal(why[16], 'x');
	free(path);
}

static void
test_plugin_path(void **state)
{
	char *dir = tu_mkdtemp(), *libs, *p, *want;

	(void)state;
	libs = tu_asprintf("%s/.libs", dir);
	assert_int_equal(mkdir(libs, 0700), 0);
	p = tu_asprintf("%s/both.so", dir);
	tu_write_file(p, "", 0);
	free(p);
	p = tu_asprintf("%s/both.so", libs);
	tu_write_file(p, "", 0);
	free(p);
	p = tu_asprintf("%s/built.so", libs);
	tu_write_file(p, "", 0);
	free(p);

	/* NAME.so first, then .libs/NAME.so. */
	p = wrm_plugin_path(dir, "both");
	want = tu_asprintf("%s/both.so", dir);
	assert_string_equal(p, want);
	free(p);
	free(want);
	p = wrm_plugin_path(dir, "built");
	want = tu_asprintf("%s/.libs/built.so", dir);
	assert_string_equal(p, want);
	free(p);
	free(want);
	assert_null(wrm_plugin_path(dir, "absent"));
	/* Names never leave the directory. */
	assert_null(wrm_plugin_path(dir, ".libs/built"));
	assert_null(wrm_plugin_path(dir, "../built"));
	assert_null(wrm_plugin_path(dir, "/etc/passwd"));
	assert_null(wrm_plugin_path(dir, ".hidden"));
	assert_null(wrm_plugin_path(dir, ""));
	free(libs);
	tu_rmtree(dir);
	free(dir);

	/* The built test plugins resolve the same way. */
	p = plugin("echo");
	assert_non_null(strstr(p, "tests/plugins/"));
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_good),
		cmocka_unit_test(test_find_option),
		cmocka_unit_test(test_refuse_versions),
		cmocka_unit_test(test_refuse_entry),
		cmocka_unit_test(test_refuse_descriptor),
		cmocka_unit_test(test_refuse_unloadable),
		cmocka_unit_test(test_refuse_short_buffer),
		cmocka_unit_test(test_plugin_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
