/*
 * Plugins the loader must refuse, one per build of this file:
 *
 *   -DREFUSE_NEWER_MINOR      abi_minor = WRM_PLUGIN_ABI_MINOR + 1
 *   -DREFUSE_OTHER_MAJOR      abi_major = WRM_PLUGIN_ABI_MAJOR + 1
 *   -DREFUSE_NO_ENTRY         no winrmd_plugin_entry symbol (a misspelt
 *                             one instead)
 *   -DREFUSE_NULL_ENTRY       winrmd_plugin_entry returns NULL
 *   -DREFUSE_MISSING_CALLBACK the required signal callback is NULL
 *   -DREFUSE_SHORT_SIZE       size smaller than ABI 1.0's structure
 *   -DREFUSE_NO_NAME          no name
 *
 * Apart from the defect, each is a complete plugin: if the loader let one
 * through, its callbacks would work.
 */
#include <stddef.h>

#include <winrmd/plugin.h>

static const struct wrm_host_api *host;

static int
r_startup(const struct wrm_plugin_startup *info, void **ctx_r)
{
	(void)info;
	*ctx_r = NULL;
	return 0;
}

static void
r_shutdown(void *ctx, enum wrm_shutdown_reason reason)
{
	(void)ctx;
	(void)reason;
}

static void
r_shell(void *ctx, struct wrm_request *req,
    const struct wrm_shell_startup *info)
{
	static int shell_ctx;

	(void)ctx;
	(void)info;
	host->report_context(req, &shell_ctx);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
r_release_shell(void *ctx, void *shell_ctx)
{
	(void)ctx;
	(void)shell_ctx;
}

static void
r_command(void *ctx, struct wrm_request *req, void *shell_ctx,
    const char *command_line, const char *const *args, size_t n_args)
{
	(void)ctx;
	(void)shell_ctx;
	(void)command_line;
	(void)args;
	(void)n_args;
	host->operation_complete(req, WRM_ERROR_NOT_SUPPORTED, NULL, NULL, 0);
}

static void
r_release_command(void *ctx, void *shell_ctx, void *cmd_ctx)
{
	(void)ctx;
	(void)shell_ctx;
	(void)cmd_ctx;
}

static void
r_send(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx,
    const char *stream, const uint8_t *data, size_t len, uint32_t flags)
{
	(void)ctx;
	(void)shell_ctx;
	(void)cmd_ctx;
	(void)stream;
	(void)data;
	(void)len;
	(void)flags;
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
r_receive(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx)
{
	(void)ctx;
	(void)shell_ctx;
	(void)cmd_ctx;
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static __attribute__((unused)) void
r_signal(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx,
    const char *code)
{
	(void)ctx;
	(void)shell_ctx;
	(void)cmd_ctx;
	(void)code;
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static const struct wrm_plugin r_plugin = {
#ifdef REFUSE_OTHER_MAJOR
	.abi_major = WRM_PLUGIN_ABI_MAJOR + 1,
#else
	.abi_major = WRM_PLUGIN_ABI_MAJOR,
#endif
#ifdef REFUSE_NEWER_MINOR
	.abi_minor = WRM_PLUGIN_ABI_MINOR + 1,
#else
	.abi_minor = WRM_PLUGIN_ABI_MINOR,
#endif
#ifdef REFUSE_SHORT_SIZE
	.size = offsetof(struct wrm_plugin, startup),
#else
	.size = sizeof(struct wrm_plugin),
#endif
#ifdef REFUSE_NO_NAME
	.name = NULL,
#else
	.name = "refused",
#endif
	.version = "1.0",
	.options = NULL,
	.startup = r_startup,
	.shutdown = r_shutdown,
	.shell = r_shell,
	.release_shell = r_release_shell,
	.command = r_command,
	.release_command = r_release_command,
	.send = r_send,
	.receive = r_receive,
#ifdef REFUSE_MISSING_CALLBACK
	.signal = NULL,		/* r_signal exists, but is not given */
#else
	.signal = r_signal,
#endif
	.connect = NULL,
};

#ifdef REFUSE_NO_ENTRY
/* The entry point under a wrong name: the loader must not find it. */
const struct wrm_plugin *winrmd_plugin_init(const struct wrm_host_api *h);

const struct wrm_plugin *
winrmd_plugin_init(const struct wrm_host_api *h)
{
	host = h;
	return &r_plugin;
}
#else
const struct wrm_plugin *
winrmd_plugin_entry(const struct wrm_host_api *h)
{
	host = h;
#ifdef REFUSE_NULL_ENTRY
	(void)r_plugin;
	return NULL;
#else
	return &r_plugin;
#endif
}
#endif
