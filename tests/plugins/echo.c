/*
 * echo: a test plugin whose commands echo their input.
 *
 * Commands:
 *   exit N       no output; finishes at once with exit code N.
 *   anything     prints its arguments (space separated, then a newline)
 *                when it has any, then copies every byte sent to it to
 *                its output until the client ends the input (exit code
 *                0) or sends a terminate or ctrl_c signal (exit code
 *                130 for ctrl_c, 0 for terminate).
 *
 * Shell-level stream: input sent to the shell itself (no CommandId) comes
 * back on the shell's own output, so Send/Receive without a command can
 * be tested; it ends when the shell is terminated.
 *
 * Options ([SessionConfiguration] keys):
 *   Banner        a line printed when a command starts
 *   OutputStream  the stream output goes to (default stdout)
 *
 * Input that arrives before the host asked for output is kept and
 * delivered with the first receive().  Every callback completes its
 * request exactly once, synchronously.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <winrmd/plugin.h>

static const struct wrm_host_api *host;

/* Output waiting for a receive() request. */
struct pending {
	uint8_t *data;
	size_t len;
};

/* Output of a shell or of a command. */
struct target {
	struct wrm_request *recv;	/* the RECEIVE request, until done */
	struct pending pend;
	bool end_pending;		/* finish once recv exists */
	uint32_t exit_code;
	bool done;
};

struct echo_shell {
	struct target out;		/* shell-level stream */
};

struct echo_cmd {
	struct target out;
};

static const struct wrm_plugin_option echo_options[] = {
	{ "Banner", WRM_OPTION_STRING, false,
	    "A line printed when a command starts" },
	{ "OutputStream", WRM_OPTION_STRING, false,
	    "Stream that receives the echoed bytes (default stdout)" },
	{ NULL, 0, false, NULL },
};

static const char *
out_stream(void)
{
	const char *s = host->get_configuration("OutputStream");

	return s != NULL && *s != '\0' ? s : "stdout";
}

static int
pend_add(struct pending *p, const uint8_t *data, size_t len)
{
	uint8_t *n;

	if (len == 0)
		return 0;
	if ((n = realloc(p->data, p->len + len)) == NULL)
		return -1;
	memcpy(n + p->len, data, len);
	p->data = n;
	p->len += len;
	return 0;
}

static void
target_finish(struct target *t)
{
	struct wrm_request *req = t->recv;

	if (t->done)
		return;
	if (req == NULL) {
		t->end_pending = true;
		return;
	}
	t->done = true;
	t->recv = NULL;
	host->receive_result(req, WRM_RESULT_END_STREAMS, out_stream(), NULL,
	    0, WRM_COMMAND_STATE_DONE, t->exit_code);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

/* Hand over what is pending, then finish if that was asked for. */
static void
target_flush(struct target *t)
{
	if (t->recv == NULL)
		return;
	if (t->pend.len > 0) {
		host->receive_result(t->recv, 0, out_stream(), t->pend.data,
		    t->pend.len, WRM_COMMAND_STATE_RUNNING, 0);
		free(t->pend.data);
		t->pend.data = NULL;
		t->pend.len = 0;
	}
	if (t->end_pending)
		target_finish(t);
}

static int
target_output(struct target *t, const uint8_t *data, size_t len)
{
	if (t->done)
		return 0;
	if (pend_add(&t->pend, data, len) != 0)
		return -1;
	target_flush(t);
	return 0;
}

static void
target_free(struct target *t)
{
	free(t->pend.data);
}

static int
echo_startup(const struct wrm_plugin_startup *info, void **ctx_r)
{
	(void)info;
	*ctx_r = NULL;
	return 0;
}

static void
echo_shutdown(void *ctx, enum wrm_shutdown_reason reason)
{
	(void)ctx;
	(void)reason;
}

static void
echo_shell(void *ctx, struct wrm_request *req,
    const struct wrm_shell_startup *info)
{
	struct echo_shell *sh = calloc(1, sizeof(*sh));

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

static void
echo_release_shell(void *ctx, void *shell_ctx)
{
	struct echo_shell *sh = shell_ctx;

	(void)ctx;
	target_free(&sh->out);
	free(sh);
}

static void
echo_command(void *ctx, struct wrm_request *req, void *shell_ctx,
    const char *command_line, const char *const *args, size_t n_args)
{
	const char *banner = host->get_configuration("Banner");
	struct echo_cmd *c = calloc(1, sizeof(*c));
	const char *p;
	size_t i;
	int r = 0;

	(void)ctx;
	(void)shell_ctx;
	if (c == NULL) {
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	if (command_line == NULL)
		command_line = "";
	if (strncasecmp(command_line, "exit", 4) == 0 &&
	    (command_line[4] == '\0' || command_line[4] == ' ')) {
		p = command_line[4] != '\0' ? command_line + 5 :
		    n_args > 0 ? args[0] : "0";
		c->out.exit_code = (uint32_t)strtoul(p, NULL, 10);
		c->out.end_pending = true;
	} else {
		if (banner != NULL) {
			r |= pend_add(&c->out.pend, (const uint8_t *)banner,
			    strlen(banner));
			r |= pend_add(&c->out.pend, (const uint8_t *)"\n", 1);
		}
		for (i = 0; i < n_args; i++) {
			if (i > 0)
				r |= pend_add(&c->out.pend,
				    (const uint8_t *)" ", 1);
			r |= pend_add(&c->out.pend, (const uint8_t *)args[i],
			    strlen(args[i]));
		}
		if (n_args > 0)
			r |= pend_add(&c->out.pend, (const uint8_t *)"\n", 1);
	}
	if (r != 0) {
		target_free(&c->out);
		free(c);
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	host->report_context(req, c);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
echo_release_command(void *ctx, void *shell_ctx, void *cmd_ctx)
{
	struct echo_cmd *c = cmd_ctx;

	(void)ctx;
	(void)shell_ctx;
	target_free(&c->out);
	free(c);
}

static struct target *
target_of(void *shell_ctx, void *cmd_ctx)
{
	if (cmd_ctx != NULL)
		return &((struct echo_cmd *)cmd_ctx)->out;
	return &((struct echo_shell *)shell_ctx)->out;
}

static void
echo_send(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx,
    const char *stream, const uint8_t *data, size_t len, uint32_t flags)
{
	struct target *t = target_of(shell_ctx, cmd_ctx);

	(void)ctx;
	(void)stream;
	if (target_output(t, data, len) != 0) {
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	if ((flags & WRM_SEND_END) && cmd_ctx != NULL)
		target_finish(t);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
echo_receive(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx)
{
	struct target *t = target_of(shell_ctx, cmd_ctx);

	(void)ctx;
	if (t->done) {
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	/* Called again after WRM_RECEIVE_FULL: nothing is held back. */
	if (t->recv == NULL)
		t->recv = req;
	target_flush(t);
}

static void
echo_signal(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx, const char *code)
{
	struct target *t = target_of(shell_ctx, cmd_ctx);
	size_t n = strlen(code);

	(void)ctx;
	if (n >= 6 && strcasecmp(code + n - 6, "ctrl_c") == 0) {
		t->exit_code = 130;
		target_finish(t);
	} else if (n >= 9 && strcasecmp(code + n - 9, "terminate") == 0)
		target_finish(t);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static const struct wrm_plugin echo_plugin = {
	.abi_major = WRM_PLUGIN_ABI_MAJOR,
	.abi_minor = WRM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct wrm_plugin),
	.name = "echo",
	.version = "1.0",
	.options = echo_options,
	.startup = echo_startup,
	.shutdown = echo_shutdown,
	.shell = echo_shell,
	.release_shell = echo_release_shell,
	.command = echo_command,
	.release_command = echo_release_command,
	.send = echo_send,
	.receive = echo_receive,
	.signal = echo_signal,
	.connect = NULL,
};

const struct wrm_plugin *
winrmd_plugin_entry(const struct wrm_host_api *h)
{
	host = h;
	return &echo_plugin;
}
