/*
 * sleepy: a test plugin whose commands produce slow output, for the
 * OperationTimeout, idle and buffering tests.
 *
 * A command prints "line 1\n", "line 2\n", ... one every IntervalMs
 * milliseconds.  It finishes (exit code 0) after Lines lines, or when it
 * is terminated; with Lines = 0 it runs until terminated.  The command's
 * first two arguments, when given, override IntervalMs and Lines.  When
 * the host reports its buffer full, the plugin stops producing until the
 * host asks for output again.  Input is accepted and discarded.
 *
 * The command line "fail-late" is refused, but only half a second after
 * it was asked for: a command the client may already be receiving from.
 *
 * Options: IntervalMs (default 100), Lines (default 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <winrmd/plugin.h>

static const struct wrm_host_api *host;

struct sleepy_cmd {
	struct wrm_request *recv;	/* the RECEIVE request, until done */
	struct wrm_watch *timer;	/* NULL once fired or cancelled */
	uint64_t interval_ms;
	uint64_t lines;			/* 0: unlimited */
	uint64_t produced;
	bool paused;
	bool done;
};

static const struct wrm_plugin_option sleepy_options[] = {
	{ "IntervalMs", WRM_OPTION_INT, false,
	    "Milliseconds between two lines (default 100)" },
	{ "Lines", WRM_OPTION_INT, false,
	    "Lines before the command ends; 0 runs until terminated" },
	{ NULL, 0, false, NULL },
};

static uint64_t
number(const char *arg, const char *option, uint64_t def)
{
	const char *s = arg != NULL ? arg : host->get_configuration(option);

	return s != NULL && *s != '\0' ? strtoull(s, NULL, 10) : def;
}

static int
sleepy_startup(const struct wrm_plugin_startup *info, void **ctx_r)
{
	(void)info;
	*ctx_r = NULL;
	return 0;
}

static void
sleepy_shutdown(void *ctx, enum wrm_shutdown_reason reason)
{
	(void)ctx;
	(void)reason;
}

static void
sleepy_shell(void *ctx, struct wrm_request *req,
    const struct wrm_shell_startup *info)
{
	static int shell_ctx;

	(void)ctx;
	(void)info;
	host->report_context(req, &shell_ctx);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
sleepy_release_shell(void *ctx, void *shell_ctx)
{
	(void)ctx;
	(void)shell_ctx;
}

static void
fail_late(void *arg)
{
	host->operation_complete(arg, WRM_ERROR_INVALID_PARAMETER,
	    "fail-late: refused as asked. ", NULL, 0);
}

static void
sleepy_command(void *ctx, struct wrm_request *req, void *shell_ctx,
    const char *command_line, const char *const *args, size_t n_args)
{
	struct sleepy_cmd *c;
	struct wrm_watch *w;

	(void)ctx;
	(void)shell_ctx;
	if (command_line != NULL && strcmp(command_line, "fail-late") == 0) {
		if (host->add_timer(500, fail_late, req, &w) != 0)
			fail_late(req);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	c->interval_ms = number(n_args > 0 ? args[0] : NULL, "IntervalMs",
	    100);
	c->lines = number(n_args > 1 ? args[1] : NULL, "Lines", 0);
	host->report_context(req, c);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
finish(struct sleepy_cmd *c)
{
	struct wrm_request *req = c->recv;

	host->unwatch(c->timer);
	c->timer = NULL;
	if (c->done || req == NULL) {
		c->done = true;
		return;
	}
	c->done = true;
	c->recv = NULL;
	host->receive_result(req, WRM_RESULT_END_STREAMS, "stdout", NULL, 0,
	    WRM_COMMAND_STATE_DONE, 0);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void tick(void *arg);

static void
arm(struct sleepy_cmd *c)
{
	if (c->timer == NULL && !c->done && !c->paused &&
	    host->add_timer(c->interval_ms, tick, c, &c->timer) != 0)
		c->timer = NULL;
}

static void
tick(void *arg)
{
	struct sleepy_cmd *c = arg;
	char line[32];
	int n, r;

	c->timer = NULL;		/* the host freed the fired timer */
	if (c->done || c->recv == NULL)
		return;
	n = snprintf(line, sizeof(line), "line %llu\n",
	    (unsigned long long)++c->produced);
	r = host->receive_result(c->recv, 0, "stdout", (const uint8_t *)line,
	    (size_t)n, WRM_COMMAND_STATE_RUNNING, 0);
	if (c->lines != 0 && c->produced >= c->lines) {
		finish(c);
		return;
	}
	if (r == WRM_RECEIVE_FULL)
		c->paused = true;
	arm(c);
}

static void
sleepy_release_command(void *ctx, void *shell_ctx, void *cmd_ctx)
{
	struct sleepy_cmd *c = cmd_ctx;

	(void)ctx;
	(void)shell_ctx;
	host->unwatch(c->timer);
	free(c);
}

static void
sleepy_send(void *ctx, struct wrm_request *req, void *shell_ctx,
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

static void
sleepy_receive(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx)
{
	struct sleepy_cmd *c = cmd_ctx;

	(void)ctx;
	(void)shell_ctx;
	if (c == NULL || c->done) {	/* no shell-level output */
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	c->recv = req;
	c->paused = false;
	arm(c);
}

static void
sleepy_signal(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx, const char *code)
{
	size_t n = strlen(code);

	(void)ctx;
	(void)shell_ctx;
	if (cmd_ctx != NULL && ((n >= 9 && strcasecmp(code + n - 9,
	    "terminate") == 0) || (n >= 6 && strcasecmp(code + n - 6,
	    "ctrl_c") == 0)))
		finish(cmd_ctx);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static const struct wrm_plugin sleepy_plugin = {
	.abi_major = WRM_PLUGIN_ABI_MAJOR,
	.abi_minor = WRM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct wrm_plugin),
	.name = "sleepy",
	.version = "1.0",
	.options = sleepy_options,
	.startup = sleepy_startup,
	.shutdown = sleepy_shutdown,
	.shell = sleepy_shell,
	.release_shell = sleepy_release_shell,
	.command = sleepy_command,
	.release_command = sleepy_release_command,
	.send = sleepy_send,
	.receive = sleepy_receive,
	.signal = sleepy_signal,
	.connect = NULL,
};

const struct wrm_plugin *
winrmd_plugin_entry(const struct wrm_host_api *h)
{
	host = h;
	return &sleepy_plugin;
}
