/*
 * winrmd plugin ABI.
 *
 * A session configuration names a plugin: a shared object that exports one
 * symbol, winrmd_plugin_entry().  The plugin runs inside winrmd-host, one
 * process per shell, with the identity of the authenticated user; it never
 * runs inside the network-facing daemon and never with the daemon's
 * privileges.
 *
 * The callbacks mirror the Windows WSMan plugin API (WSManPluginStartup,
 * WSManPluginShell, WSManPluginCommand, WSManPluginSend, WSManPluginReceive,
 * WSManPluginSignal, WSManPluginConnect, WSManPluginRelease*Context,
 * WSManPluginShutdown) and the host offers the matching services
 * (WSManPluginReportContext, WSManPluginReceiveResult,
 * WSManPluginOperationComplete, WSManPluginGetConfiguration).
 *
 * Rules (see winrmd-plugin(3) for the long form):
 *
 *  - Versioning.  Both structures start with abi_major, abi_minor and size.
 *    The host refuses a plugin whose major differs from its own or whose
 *    minor is newer, before calling any plugin code other than the entry
 *    point.  A member that lies beyond a structure's size is absent.
 *    BOTH STRUCTURES ONLY EVER GROW AT THEIR END.  Members are never
 *    removed, reordered or retyped within one major version.
 *
 *  - Completion.  Every operation callback returns void and is finished by
 *    exactly one call to host->operation_complete() for its request, now or
 *    later, from any thread.  A plugin never blocks the host's loop: it
 *    either uses the loop services below (watch_fd, add_timer, watch_child)
 *    or runs its own threads.
 *
 *  - Threading.  Callbacks run on the host's loop thread.  report_context,
 *    receive_result, operation_complete and log may be called from any
 *    thread; every other host function only from the loop thread.
 *
 *  - Ownership.  Whoever allocates frees.  Requests and the data passed to
 *    a callback are borrowed and stay valid until operation_complete() for
 *    that request returns.  receive_result() copies its data.  Shell and
 *    command contexts belong to the plugin and are handed back in
 *    release_shell / release_command, after which the host never uses them.
 *
 *  - Strings are UTF-8 and NUL-terminated; binary data is a pointer and a
 *    length.
 */
#ifndef WINRMD_PLUGIN_H
#define WINRMD_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WRM_PLUGIN_ABI_MAJOR	1
#define WRM_PLUGIN_ABI_MINOR	0

/* The one exported symbol. */
#define WRM_PLUGIN_ENTRY_SYMBOL	"winrmd_plugin_entry"

#if defined(__GNUC__)
#define WRM_PLUGIN_EXPORT	__attribute__((visibility("default")))
#else
#define WRM_PLUGIN_EXPORT
#endif

/* True when structure S (with a size member) contains member M. */
#define WRM_HAS(s, m) \
	((s)->size >= offsetof(__typeof__(*(s)), m) + sizeof((s)->m))

/*
 * Error codes passed to operation_complete().  They are Windows error
 * numbers, so that clients see the codes they already know: 0 is success,
 * small numbers are Win32 errors (87 "The parameter is incorrect", 5
 * "Access is denied"), values with the top bits set are HRESULTs or WS-Man
 * codes (2150858843 "unknown shell or command").  The daemon maps each to
 * the SOAP fault Windows sends for it; an unknown code becomes an
 * InternalError fault carrying that code.
 */
#define WRM_OK				0u
#define WRM_ERROR_ACCESS_DENIED		5u
#define WRM_ERROR_BUSY			170u
#define WRM_ERROR_INVALID_PARAMETER	87u
#define WRM_ERROR_NOT_ENOUGH_MEMORY	8u
#define WRM_ERROR_FILE_NOT_FOUND	2147942402u	/* HRESULT 0x80070002 */
#define WRM_ERROR_NOT_SUPPORTED		2147942450u	/* HRESULT 0x80070032 */
#define WRM_ERROR_INVALID_SELECTORS	2150858843u	/* 0x8033805B */
#define WRM_ERROR_SHELL_INVALID_INPUT_STREAM 2150859147u
#define WRM_ERROR_PLUGIN_FAILED		2150859049u	/* plugin-reported failure */

/* Command states reported with receive_result(). */
enum wrm_command_state {
	WRM_COMMAND_STATE_NONE = 0,	/* no state change with this result */
	WRM_COMMAND_STATE_RUNNING = 1,
	WRM_COMMAND_STATE_PENDING = 2,	/* waiting for client input (host call) */
	WRM_COMMAND_STATE_DONE = 3,	/* last result; exit_code is valid */
};

/* receive_result() flags. */
#define WRM_RESULT_ATOMIC	0x1u	/* never split this chunk across responses */
#define WRM_RESULT_NO_DROP	0x2u	/* never discard (Drop buffering mode) */
/*
 * With WRM_COMMAND_STATE_DONE: end every output stream of the shell
 * (WinRS style: the final response carries an empty End="true" stream
 * element for each output stream before the Done state).
 */
#define WRM_RESULT_END_STREAMS	0x4u

/* receive_result() return values (non-negative). */
#define WRM_RECEIVE_MORE	0	/* keep producing */
#define WRM_RECEIVE_FULL	1	/* buffer full: pause until receive() again */

/* send() flags. */
#define WRM_SEND_END		0x1u	/* no more data on this stream */

/* shutdown() reasons. */
enum wrm_shutdown_reason {
	WRM_SHUTDOWN_NORMAL = 0,	/* the last shell of the host closed */
	WRM_SHUTDOWN_DAEMON = 1,	/* the daemon asked the host to exit */
	WRM_SHUTDOWN_IDLE = 2,		/* the shell expired */
};

/* A name/value option from the request's wsman:OptionSet. */
struct wrm_option {
	const char *name;
	const char *value;
	bool must_comply;
};

/* An environment variable from rsp:Environment. */
struct wrm_env_var {
	const char *name;
	const char *value;
};

/*
 * One operation (WSMAN_PLUGIN_REQUEST).  Owned by the host; valid until
 * operation_complete() returns for it.
 */
struct wrm_request {
	uint32_t size;
	const char *user;		/* authenticated user, as shown to clients */
	const char *auth_mechanism;	/* "Basic", "Negotiate", ... */
	const char *client_ip;
	const char *resource_uri;
	const char *locale;		/* wsman:Locale, may be NULL */
	const char *data_locale;	/* wsmv:DataLocale, may be NULL */
	const char *shell_id;
	const char *command_id;		/* NULL for shell-level operations */
	const struct wrm_option *options;
	size_t n_options;
	/*
	 * Set to non-zero by the host when the client or the daemon gave up
	 * on this operation (WSMAN_PLUGIN_REQUEST.shutdownNotification).  The
	 * plugin must still call operation_complete().
	 */
	volatile int shutdown_notification;
};

/* What a shell is created with (WSMAN_SHELL_STARTUP_INFO + inbound data). */
struct wrm_shell_startup {
	uint32_t size;
	const char *name;		/* rsp:Name, may be NULL */
	const char *working_directory;	/* may be NULL */
	const struct wrm_env_var *env;
	size_t n_env;
	const char *input_streams;	/* space separated, e.g. "stdin" */
	const char *output_streams;	/* e.g. "stdout stderr" */
	uint64_t idle_timeout_ms;
	const uint8_t *inbound;		/* e.g. PSRP creationXml, decoded */
	size_t inbound_len;
};

/* Plugin start-up information (WSManPluginStartup). */
struct wrm_plugin_startup {
	uint32_t size;
	const char *configuration;	/* session configuration name */
	const char *resource_uri;	/* its resource URI */
	/*
	 * True when the host was started ahead of demand (the configuration's
	 * WarmPoolSize): the plugin may prepare what a shell will need, such
	 * as a child process, for a shell with warm_locale (a language tag
	 * like "en-US"); the next shell() may or may not match it.
	 */
	bool warm;
	const char *warm_locale;
};

/* Option keys a plugin accepts in its session configuration. */
enum wrm_option_type {
	WRM_OPTION_STRING = 0,
	WRM_OPTION_BOOL = 1,
	WRM_OPTION_INT = 2,
	WRM_OPTION_PATH = 3,
};

struct wrm_plugin_option {
	const char *name;
	enum wrm_option_type type;
	bool required;
	const char *description;
};

struct wrm_watch;	/* opaque: an fd watch or a timer */

#define WRM_EV_READ	0x1u
#define WRM_EV_WRITE	0x2u
#define WRM_EV_ERROR	0x4u	/* error or hang-up; always reported */

typedef void (*wrm_fd_fn)(int fd, uint32_t events, void *arg);
typedef void (*wrm_timer_fn)(void *arg);
typedef void (*wrm_child_fn)(pid_t pid, int wait_status, void *arg);

/*
 * Services of the host.  Obtained from winrmd_plugin_entry()'s argument;
 * valid for the life of the process.
 */
struct wrm_host_api {
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size;

	/* Version 1.0 */

	/* Associate the plugin's context with a shell or command request. */
	void (*report_context)(struct wrm_request *req, void *ctx);

	/*
	 * Hand output to the host (WSManPluginReceiveResult).  req is the
	 * request given to receive().  stream is an output stream name; data
	 * is copied.  state/exit_code report a command state change together
	 * with this chunk (len may be 0).  Returns WRM_RECEIVE_MORE, or
	 * WRM_RECEIVE_FULL when the host's buffer for this command passed its
	 * limit: the plugin should stop producing (stop reading its child)
	 * until the host calls receive() again; output handed over meanwhile
	 * is still accepted.  Returns a negative value if the request is gone.
	 */
	int (*receive_result)(struct wrm_request *req, uint32_t flags,
	    const char *stream, const uint8_t *data, size_t len,
	    enum wrm_command_state state, uint32_t exit_code);

	/*
	 * Finish an operation (WSManPluginOperationComplete).  error is 0 or
	 * one of the codes described at WRM_OK; message is a human-readable
	 * text for the fault (may be NULL).  data/len carry an operation's
	 * result payload where one exists (Connect: the connect response).
	 */
	void (*operation_complete)(struct wrm_request *req, uint32_t error,
	    const char *message, const uint8_t *data, size_t len);

	/*
	 * The value of an option of the plugin's session configuration, or
	 * NULL (WSManPluginGetConfiguration).
	 */
	const char *(*get_configuration)(const char *name);

	/* Log a line (syslog priority; LOG_ERR ... LOG_DEBUG). */
	void (*log)(int priority, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

	/* Loop services (loop thread only). */
	int (*watch_fd)(int fd, uint32_t events, wrm_fd_fn fn, void *arg,
	    struct wrm_watch **watch_r);
	int (*modify_fd)(struct wrm_watch *watch, uint32_t events);
	int (*add_timer)(uint64_t ms, wrm_timer_fn fn, void *arg,
	    struct wrm_watch **watch_r);
	/* Removes an fd watch or cancels a timer; NULL is a no-op. */
	void (*unwatch)(struct wrm_watch *watch);
	/*
	 * Call fn once when child pid exits (the host reaps it).  The host is
	 * a child subreaper: descendants that the plugin's children orphan
	 * are reaped by the host as well.
	 */
	int (*watch_child)(pid_t pid, wrm_child_fn fn, void *arg);

	/* New members are added here, at the end. */
};

/* The plugin's description (the WSMan plugin's exports). */
struct wrm_plugin {
	uint16_t abi_major;		/* WRM_PLUGIN_ABI_MAJOR built with */
	uint16_t abi_minor;		/* WRM_PLUGIN_ABI_MINOR built with */
	uint32_t size;			/* sizeof(struct wrm_plugin) */
	const char *name;
	const char *version;
	/* Accepted configuration options, terminated by a NULL name. */
	const struct wrm_plugin_option *options;

	/* Version 1.0 */

	/* Once per process; returns 0 or a negative errno-style value. */
	int (*startup)(const struct wrm_plugin_startup *info,
	    void **plugin_ctx_r);
	void (*shutdown)(void *plugin_ctx, enum wrm_shutdown_reason reason);

	/*
	 * Create a shell: report_context(req, shell_ctx), then
	 * operation_complete(req, ...).
	 */
	void (*shell)(void *plugin_ctx, struct wrm_request *req,
	    const struct wrm_shell_startup *info);
	void (*release_shell)(void *plugin_ctx, void *shell_ctx);

	/*
	 * Start a command: report_context(req, cmd_ctx), then
	 * operation_complete(req, ...).  command_line is rsp:Command; args
	 * are the rsp:Arguments elements, decoded.
	 */
	void (*command)(void *plugin_ctx, struct wrm_request *req,
	    void *shell_ctx, const char *command_line,
	    const char *const *args, size_t n_args);
	void (*release_command)(void *plugin_ctx, void *shell_ctx,
	    void *cmd_ctx);

	/* Input for a command (cmd_ctx non-NULL) or the shell. */
	void (*send)(void *plugin_ctx, struct wrm_request *req,
	    void *shell_ctx, void *cmd_ctx, const char *stream,
	    const uint8_t *data, size_t len, uint32_t flags);

	/*
	 * Start, or resume after WRM_RECEIVE_FULL, the output of a command
	 * (or of the shell when cmd_ctx is NULL).  The plugin calls
	 * receive_result() with this req until it reports
	 * WRM_COMMAND_STATE_DONE, then operation_complete(req, ...).
	 */
	void (*receive)(void *plugin_ctx, struct wrm_request *req,
	    void *shell_ctx, void *cmd_ctx);

	/* A signal code URI (terminate, ctrl_c, ...) for a command or shell. */
	void (*signal)(void *plugin_ctx, struct wrm_request *req,
	    void *shell_ctx, void *cmd_ctx, const char *code);

	/*
	 * A client re-attached (rsp:Connect).  Optional: NULL means the
	 * configuration cannot serve Connect.  Finishes with
	 * operation_complete(req, 0, NULL, response, len).
	 */
	void (*connect)(void *plugin_ctx, struct wrm_request *req,
	    void *shell_ctx, void *cmd_ctx, const uint8_t *data, size_t len);

	/* New members are added here, at the end. */
};

typedef const struct wrm_plugin *(*wrm_plugin_entry_fn)(
    const struct wrm_host_api *host);

/*
 * Every plugin defines this function and nothing else is exported.  It
 * must not do anything but return the plugin's static description (or
 * NULL to refuse loading); real work belongs in startup().
 */
WRM_PLUGIN_EXPORT const struct wrm_plugin *winrmd_plugin_entry(
    const struct wrm_host_api *host);

#ifdef __cplusplus
}
#endif

#endif /* WINRMD_PLUGIN_H */
