/*
 * crashy: a test plugin that creates shells normally and calls abort()
 * as soon as a command is started, so that the tests can check what the
 * daemon does when a shell's host process dies under it.  A shell named
 * "abort" makes it abort while the shell is being created instead.
 */
#include <stdlib.h>
#include <string.h>

#include <winrmd/plugin.h>

static const struct wrm_host_api *host;

static int
crashy_startup(const struct wrm_plugin_startup *info, void **ctx_r)
{
	(void)info;
	*ctx_r = NULL;
	return 0;
}

static void
crashy_shutdown(void *ctx, enum wrm_shutdown_reason reason)
{
	(void)ctx;
	(void)reason;
}

static void
crashy_shell(void *ctx, struct wrm_request *req,
    const struct wrm_shell_startup *info)
{
	static int shell_ctx;

	(void)ctx;
	if (info->name != NULL && strcmp(info->name, "abort") == 0)
		abort();
	host->report_context(req, &shell_ctx);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
crashy_release_shell(void *ctx, void *shell_ctx)
{
	(void)ctx;
	(void)shell_ctx;
}

static void
crashy_command(void *ctx, struct wrm_request *req, void *shell_ctx,
    const char *command_line, const char *const *args, size_t n_args)
{
	(void)ctx;
	(void)req;
	(void)shell_ctx;
	(void)command_line;
	(void)args;
	(void)n_args;
	abort();
}

static void
crashy_release_command(void *ctx, void *shell_ctx, void *cmd_ctx)
{
	(void)ctx;
	(void)shell_ctx;
	(void)cmd_ctx;
}

static void
crashy_send(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx, const char *stream, const uint8_t *data, size_t len,
    uint32_t flags)
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

/* No shell-level output. */
static void
crashy_receive(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx)
{
	(void)ctx;
	(void)shell_ctx;
	(void)cmd_ctx;
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
crashy_signal(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx, const char *code)
{
	(void)ctx;
	(void)shell_ctx;
	(void)cmd_ctx;
	(void)code;
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static const struct wrm_plugin crashy_plugin = {
	.abi_major = WRM_PLUGIN_ABI_MAJOR,
	.abi_minor = WRM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct wrm_plugin),
	.name = "crashy",
	.version = "1.0",
	.options = NULL,
	.startup = crashy_startup,
	.shutdown = crashy_shutdown,
	.shell = crashy_shell,
	.release_shell = crashy_release_shell,
	.command = crashy_command,
	.release_command = crashy_release_command,
	.send = crashy_send,
	.receive = crashy_receive,
	.signal = crashy_signal,
	.connect = NULL,
};

const struct wrm_plugin *
winrmd_plugin_entry(const struct wrm_host_api *h)
{
	host = h;
	return &crashy_plugin;
}
