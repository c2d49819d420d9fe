/*
 * skeleton: a complete, minimal winrmd plugin to copy and rename.
 *
 * It implements a toy shell whose commands print their command line and
 * then echo back every byte sent to their stdin, finishing when the
 * client sends End.  Every callback is here, with the contract it must
 * keep.  Build one out of tree with:
 *
 *	cc -shared -fPIC $(pkg-config --cflags winrmd-plugin) -o myshell.so \
 *	    skeleton.c
 *
 * then name it in a session configuration ([SessionConfiguration X],
 * Plugin = myshell, ResourceURI = ...) and check it with winrmd -t.
 *
 * Threading: every callback runs on the host's loop thread.  This plugin
 * completes everything synchronously; a plugin with slow work would start
 * it (a thread, or an fd watched with host->watch_fd) and call
 * host->operation_complete() later.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <winrmd/plugin.h>

static const struct wrm_host_api *host;

struct sk_shell {
	int unused;
};

struct sk_command {
	struct wrm_request *recv;	/* the RECEIVE request, until done */
	char *greeting;			/* output waiting for receive() */
	bool done;
};

/* Options this plugin accepts in its [SessionConfiguration] section. */
static const struct wrm_plugin_option sk_options[] = {
	{ "Greeting", WRM_OPTION_STRING, false,
	    "Text printed before the command line" },
	{ NULL, 0, false, NULL },
};

/* Once per host process.  Return 0, or a negative errno value to refuse. */
static int
sk_startup(const struct wrm_plugin_startup *info, void **ctx_r)
{
	(void)info;
	*ctx_r = NULL;
	return 0;
}

static void
sk_shutdown(void *ctx, enum wrm_shutdown_reason reason)
{
	(void)ctx;
	(void)reason;
}

/* Create: report the shell's context, then complete the request. */
static void
sk_shell(void *ctx, struct wrm_request *req,
    const struct wrm_shell_startup *info)
{
	struct sk_shell *sh = calloc(1, sizeof(*sh));

	(void)ctx;
	(void)info;
	if (sh == NULL) {
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	host->report_context(req, sh);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

/* The host is done with the shell: free what shell() allocated. */
static void
sk_release_shell(void *ctx, void *shell_ctx)
{
	(void)ctx;
	free(shell_ctx);
}

static void
sk_command(void *ctx, struct wrm_request *req, void *shell_ctx,
    const char *command_line, const char *const *args, size_t n_args)
{
	const char *greeting = host->get_configuration("Greeting");
	struct sk_command *c = calloc(1, sizeof(*c));
	size_t i, len;

	(void)ctx;
	(void)shell_ctx;
	if (c == NULL) {
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	len = strlen(greeting ? greeting : "") + strlen(command_line) + 4;
	for (i = 0; i < n_args; i++)
		len += strlen(args[i]) + 1;
	if ((c->greeting = malloc(len)) != NULL) {
		strcpy(c->greeting, greeting ? greeting : "");
		if (greeting != NULL)
			strcat(c->greeting, " ");
		strcat(c->greeting, command_line);
		for (i = 0; i < n_args; i++) {
			strcat(c->greeting, " ");
			strcat(c->greeting, args[i]);
		}
		strcat(c->greeting, "\n");
	}
	host->report_context(req, c);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
sk_release_command(void *ctx, void *shell_ctx, void *cmd_ctx)
{
	struct sk_command *c = cmd_ctx;

	(void)ctx;
	(void)shell_ctx;
	free(c->greeting);
	free(c);
}

static void
finish(struct sk_command *c)
{
	struct wrm_request *req = c->recv;

	if (req == NULL || c->done)
		return;
	c->done = true;
	c->recv = NULL;
	host->receive_result(req, WRM_RESULT_END_STREAMS, "stdout", NULL, 0,
	    WRM_COMMAND_STATE_DONE, 0);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

/* Input: echo it as output; End finishes the command. */
static void
sk_send(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx,
    const char *stream, const uint8_t *data, size_t len, uint32_t flags)
{
	struct sk_command *c = cmd_ctx;

	(void)ctx;
	(void)shell_ctx;
	(void)stream;
	if (c == NULL) {
		host->operation_complete(req, WRM_ERROR_INVALID_PARAMETER,
		    NULL, NULL, 0);
		return;
	}
	if (c->recv != NULL && len > 0)
		host->receive_result(c->recv, 0, "stdout", data, len,
		    WRM_COMMAND_STATE_RUNNING, 0);
	if (flags & WRM_SEND_END)
		finish(c);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

/*
 * Output: keep req and call receive_result() with it; a last result with
 * WRM_COMMAND_STATE_DONE, then operation_complete(req).
 */
static void
sk_receive(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx)
{
	struct sk_command *c = cmd_ctx;

	(void)ctx;
	(void)shell_ctx;
	if (c == NULL) {
		/* No shell-level output. */
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	if (c->recv != NULL)
		return;		/* resumed after WRM_RECEIVE_FULL */
	c->recv = req;
	if (c->greeting != NULL)
		host->receive_result(req, 0, "stdout",
		    (const uint8_t *)c->greeting, strlen(c->greeting),
		    WRM_COMMAND_STATE_RUNNING, 0);
}

/* terminate (or ctrl_c) ends the command. */
static void
sk_signal(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx,
    const char *code)
{
	(void)ctx;
	(void)shell_ctx;
	(void)code;
	if (cmd_ctx != NULL)
		finish(cmd_ctx);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static const struct wrm_plugin sk_plugin = {
	.abi_major = WRM_PLUGIN_ABI_MAJOR,
	.abi_minor = WRM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct wrm_plugin),
	.name = "skeleton",
	.version = "1.0",
	.options = sk_options,
	.startup = sk_startup,
	.shutdown = sk_shutdown,
	.shell = sk_shell,
	.release_shell = sk_release_shell,
	.command = sk_command,
	.release_command = sk_release_command,
	.send = sk_send,
	.receive = sk_receive,
	.signal = sk_signal,
	.connect = NULL,
};

/* The only exported symbol. */
const struct wrm_plugin *
winrmd_plugin_entry(const struct wrm_host_api *h)
{
	host = h;
	return &sk_plugin;
}
