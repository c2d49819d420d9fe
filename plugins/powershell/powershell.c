/*
 * The "powershell" plugin: PowerShell remoting (PSRP) shells, each bridged
 * to one `pwsh -s` process.
 *
 * PSRP fragments pass through unchanged in both directions; the bridge
 * reads only fragment and message headers:
 *  - inbound, to route each message by the PID in its header (all zeros:
 *    the runspace pool; otherwise a pipeline) whatever CommandId the Send
 *    carried, and to drop fragments a client sends twice;
 *  - outbound, to mark the response that carries a pipeline's final
 *    PIPELINE_STATE with CommandState Done, and one that ends with a host
 *    call with CommandState Pending.
 *
 * WSMan ↔ pwsh: Create writes creationXml as the pool's first Data;
 * Command sends Command(G), waits for CommandAck, then Data(G) with the
 * CREATE_PIPELINE fragments and answers after DataAck; Send is one Data
 * per target lane, answered after DataAck; Signal ctrl_c (or PowerShell's
 * crtl_c) is Signal(G); terminate is Close(G); deleting the shell closes
 * every pipeline, then the pool, then pwsh's stdin.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <winrmd/plugin.h>

#include "buf.h"
#include "psrp.h"
#include "pwsh.h"

#define CLOSE_TIMEOUT_MS	15000
#define MAX_EARLY_OUTPUT	(64u * 1024 * 1024)

/* Fault codes of Windows' PowerShell plugin. */
#define PS_PROTOCOL_VERSION_MISMATCH	2152991685u	/* 0x80540BC5 */
#define PS_PROTOCOL_VERSION_NOT_FOUND	2152991687u	/* 0x80540BC7 */
#define PS_CONNECT_FAILED		2152992675u	/* 0x80540FA3 */
#define PS_SERVER_PROTOCOL_VERSION	"2.3"

extern char **environ;

static const struct wrm_host_api *host;

struct ps_shell;

struct ps_plugin {
	char *pwsh;
	char *refusal;		/* why shells cannot start, or NULL */
	struct ps_shell *spare;	/* a warm pwsh waiting for a shell */
	char *spare_locale;
	char *startup_script;	/* base64 UTF-16LE for -EncodedCommand */
	char *workdir;
	char *config_file;
	char *environment;
};

struct early {			/* output that came before receive() */
	uint8_t *p;
	size_t n;
	enum wrm_command_state state;
	struct early *next;
};

struct ps_shell;

struct ps_cmd {
	struct ps_shell *sh;
	char guid[37];
	struct wrm_request *create_req;
	struct wrm_request *recv;
	struct early *early, *early_tail;
	size_t early_bytes;
	bool acked;		/* CREATE_PIPELINE delivered */
	bool close_sent;
	bool done;		/* PIPELINE_STATE seen */
	bool released;
	bool pending;		/* last output was a host call */
	bool void_call;		/* the host call going out needs no answer */
	uint8_t pid[16];	/* the pipeline's id, .NET byte order */
	bool no_input;		/* CREATE_PIPELINE said NoInput */
	bool input_ended;	/* the client sent END_OF_PIPELINE_INPUT */
	struct ps_cmd *next;
};

struct inbound_obj {		/* a client message still arriving */
	uint64_t object_id;
	char guid[37];
	struct inbound_obj *next;
};

struct outbound_obj {		/* a pwsh message still going out */
	uint64_t object_id;
	uint32_t type;
	struct outbound_obj *next;
};

struct dedup {
	char guid[37];
	bool prompt;
	uint64_t obj, frag;
	struct dedup *next;
};

struct ps_shell {
	struct ps_plugin *plugin;
	struct pwsh *pw;
	struct wrm_request *recv;
	struct early *early, *early_tail;
	size_t early_bytes;
	uint8_t rpid[16];
	struct ps_cmd *cmds;
	struct inbound_obj *inbound;
	struct outbound_obj *outbound;
	struct dedup *dedup;
	bool closing;
	bool exited;
	bool broken;		/* pwsh exited without being asked to */
	bool held;		/* output reading stopped: a buffer is full */
	bool pool_pending;
	struct wrm_watch *close_timer;
	uint8_t *server_capability;	/* cached for Connect */
	size_t server_capability_len;
	uint8_t *private_data;
	size_t private_data_len;
	int min_rs, max_rs;		/* the pool's runspace counts */
	uint64_t next_oid;		/* ObjectIds of messages made here */
};

static const struct wrm_plugin_option ps_options[] = {
	{ "PwshPath", WRM_OPTION_PATH, false,
	    "pwsh to run (default: search PATH)" },
	{ "StartupScript", WRM_OPTION_PATH, false,
	    "Script run in every runspace before the client's commands" },
	{ "ModulesToImport", WRM_OPTION_STRING, false,
	    "Modules imported into every runspace (comma separated)" },
	{ "WorkingDirectory", WRM_OPTION_PATH, false,
	    "Initial directory (default: the user's home)" },
	{ "Environment", WRM_OPTION_STRING, false,
	    "Extra environment: NAME=VALUE pairs separated by ';'" },
	{ "ConfigurationFile", WRM_OPTION_PATH, false,
	    "PowerShell session configuration file (.pssc) given to pwsh" },
	{ NULL, 0, false, NULL },
};

/* ---- configuration ---- */

static char *
find_pwsh(void)
{
	const char *path = getenv("PATH"), *home = getenv("HOME");
	char *copy = strdup(path != NULL ? path : "/usr/bin:/bin");
	char *dir, *save = NULL, *cand = NULL;
	static const char *const extra[] = {
		"/usr/bin", "/usr/local/bin", "/opt/microsoft/powershell/7",
		"/snap/bin",
	};
	size_t i;

	for (dir = strtok_r(copy, ":", &save); dir != NULL;
	    dir = strtok_r(NULL, ":", &save)) {
		if (asprintf(&cand, "%s/pwsh", dir) >= 0 &&
		    access(cand, X_OK) == 0)
			goto out;
		free(cand);
		cand = NULL;
	}
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		if (asprintf(&cand, "%s/pwsh", extra[i]) >= 0 &&
		    access(cand, X_OK) == 0)
			goto out;
		free(cand);
		cand = NULL;
	}
	if (home != NULL && asprintf(&cand, "%s/.dotnet/tools/pwsh", home) >= 0 &&
	    access(cand, X_OK) != 0) {
		free(cand);
		cand = NULL;
	}
out:
	free(copy);
	return cand;
}

/* PowerShell text as -EncodedCommand wants it: base64 of UTF-16LE. */
static char *
encode_command(const char *text)
{
	struct wrm_buf u16;
	const unsigned char *s = (const unsigned char *)text;
	char *out = NULL;
	size_t len;

	wrm_buf_init(&u16, 0);
	for (; *s != '\0'; s++) {
		unsigned c = *s;

		if (c >= 0x80) {	/* decode UTF-8 (BMP is enough here) */
			if ((c & 0xe0) == 0xc0 && s[1] != '\0') {
				c = (c & 0x1fu) << 6 | (s[1] & 0x3fu);
				s++;
			} else if ((c & 0xf0) == 0xe0 && s[1] && s[2]) {
				c = (c & 0x0fu) << 12 | (s[1] & 0x3fu) << 6 |
				    (s[2] & 0x3fu);
				s += 2;
			} else
				c = '?';
		}
		wrm_buf_put_u16_le(&u16, (uint16_t)c);
	}
	len = wrm_b64_encoded_len(wrm_buf_len(&u16));
	if ((out = malloc(len + 1)) != NULL) {
		wrm_b64_encode(wrm_buf_ptr(&u16), wrm_buf_len(&u16), out);
		out[len] = '\0';
	}
	wrm_buf_free(&u16);
	return out;
}

/* The init script from StartupScript and ModulesToImport. */
static char *
init_script(void)
{
	const char *script = host->get_configuration("StartupScript");
	const char *modules = host->get_configuration("ModulesToImport");
	struct wrm_buf b;
	char *mods, *m, *save = NULL, *enc;

	if ((script == NULL || !*script) && (modules == NULL || !*modules))
		return NULL;
	wrm_buf_init(&b, 0);
	if (modules != NULL && (mods = strdup(modules)) != NULL) {
		for (m = strtok_r(mods, ", ", &save); m != NULL;
		    m = strtok_r(NULL, ", ", &save)) {
			wrm_buf_puts(&b, "Import-Module -Name '");
			for (const char *c = m; *c != '\0'; c++)
				wrm_buf_puts(&b, *c == '\'' ? "''" :
				    (char[]){ *c, 0 });
			wrm_buf_puts(&b, "'\n");
		}
		free(mods);
	}
	if (script != NULL && *script) {
		wrm_buf_puts(&b, ". '");
		for (const char *c = script; *c != '\0'; c++)
			wrm_buf_puts(&b, *c == '\'' ? "''" : (char[]){ *c, 0 });
		wrm_buf_puts(&b, "'\n");
	}
	enc = encode_command(wrm_buf_str(&b));
	wrm_buf_free(&b);
	return enc;
}

/*
 * pwsh -s honours a session configuration file (SessionType, LanguageMode,
 * Visible*, ...), but its RoleDefinitions check needs Windows groups: pwsh
 * then never opens the pool.  Refuse such a file with a clear reason.
 */
static char *
check_config_file(const char *path)
{
	char line[4096], *r = NULL;
	const char *p;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		if (asprintf(&r, "The session configuration file %s cannot be "
		    "read: %s. ", path, strerror(errno)) < 0)
			r = NULL;
		return r;
	}
	while (r == NULL && fgets(line, sizeof(line), f) != NULL) {
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		if (strncasecmp(p, "RoleDefinitions", 15) == 0 &&
		    asprintf(&r, "The session configuration file %s uses "
		    "RoleDefinitions, which PowerShell on Linux cannot apply "
		    "(role membership is checked against Windows groups); use "
		    "one file per role and the configuration's AllowUsers and "
		    "AllowGroups instead. ", path) < 0)
			r = NULL;
	}
	fclose(f);
	return r;
}

static void start_spare(struct ps_plugin *p, const char *locale);
static void ps_release_shell(void *ctx, void *shell_ctx);

static int
ps_startup(const struct wrm_plugin_startup *info, void **ctx_r)
{
	struct ps_plugin *p;
	const char *v;

	(void)info;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	v = host->get_configuration("PwshPath");
	p->pwsh = v != NULL && *v ? strdup(v) : find_pwsh();
	p->startup_script = init_script();
	if ((v = host->get_configuration("WorkingDirectory")) != NULL && *v)
		p->workdir = strdup(v);
	if ((v = host->get_configuration("ConfigurationFile")) != NULL && *v) {
		p->config_file = strdup(v);
		p->refusal = check_config_file(v);
	}
	if ((v = host->get_configuration("Environment")) != NULL && *v)
		p->environment = strdup(v);
	*ctx_r = p;
	if (WRM_HAS(info, warm_locale) && info->warm && p->pwsh != NULL &&
	    p->refusal == NULL)
		start_spare(p, info->warm_locale);
	return 0;
}

static void
ps_shutdown(void *ctx, enum wrm_shutdown_reason reason)
{
	struct ps_plugin *p = ctx;

	(void)reason;
	if (p->spare != NULL)
		ps_release_shell(p, p->spare);
	free(p->spare_locale);
	free(p->pwsh);
	free(p->refusal);
	free(p->startup_script);
	free(p->workdir);
	free(p->config_file);
	free(p->environment);
	free(p);
}

/* ---- output ---- */

static void
early_push(struct early **head, struct early **tail, size_t *bytes,
    const uint8_t *p, size_t n, enum wrm_command_state state)
{
	struct early *e = calloc(1, sizeof(*e));

	if (e == NULL || (e->p = malloc(n)) == NULL) {
		free(e);
		return;
	}
	memcpy(e->p, p, n);
	e->n = n;
	e->state = state;
	if (*tail != NULL)
		(*tail)->next = e;
	else
		*head = e;
	*tail = e;
	*bytes += n;
}

static void
early_free(struct early *e)
{
	struct early *n;

	for (; e != NULL; e = n) {
		n = e->next;
		free(e->p);
		free(e);
	}
}

static struct ps_cmd *
cmd_by_guid(struct ps_shell *sh, const char *guid)
{
	struct ps_cmd *c;

	for (c = sh->cmds; c != NULL; c = c->next)
		if (!c->released && strcmp(c->guid, guid) == 0)
			return c;
	return NULL;
}

/* The message type of the object a fragment belongs to. */
static uint32_t
outbound_type(struct ps_shell *sh, const struct psrp_frag *f)
{
	struct outbound_obj **pp, *o;
	struct psrp_msg_hdr h;
	uint32_t type = 0;

	if ((f->flags & PSRP_START) && psrp_msg_header(f, &h))
		type = h.type;
	for (pp = &sh->outbound; (o = *pp) != NULL; pp = &o->next)
		if (o->object_id == f->object_id)
			break;
	if (o != NULL && type == 0)
		type = o->type;
	if (f->flags & PSRP_END) {
		if (o != NULL) {
			*pp = o->next;
			free(o);
		}
	} else if (o == NULL && (o = calloc(1, sizeof(*o))) != NULL) {
		o->object_id = f->object_id;
		o->type = type;
		o->next = sh->outbound;
		sh->outbound = o;
	}
	return type;
}

static void
cache_pool_message(struct ps_shell *sh, const struct psrp_frag *f,
    uint32_t type)
{
	uint8_t **dst;
	size_t *dlen;

	if ((f->flags & (PSRP_START | PSRP_END)) != (PSRP_START | PSRP_END))
		return;
	if (type == PSRP_SESSION_CAPABILITY && sh->server_capability == NULL) {
		dst = &sh->server_capability;
		dlen = &sh->server_capability_len;
	} else if (type == PSRP_APPLICATION_PRIVATE_DATA &&
	    sh->private_data == NULL) {
		dst = &sh->private_data;
		dlen = &sh->private_data_len;
	} else
		return;
	if ((*dst = malloc(f->blob_len)) != NULL) {
		memcpy(*dst, f->blob, f->blob_len);
		*dlen = f->blob_len;
	}
}

/*
 * A buffer is full (BufferMode Block, nobody reading): stop reading pwsh
 * until the host asks for output again.  pwsh has one stdout for the pool
 * and its pipelines, so the whole shell waits.
 */
static void
hold_output(struct ps_shell *sh)
{
	if (sh->held || sh->pw == NULL)
		return;
	sh->held = true;
	pwsh_hold(sh->pw, true);
}

static void
release_output(struct ps_shell *sh)
{
	if (!sh->held || sh->pw == NULL)
		return;
	sh->held = false;
	pwsh_hold(sh->pw, false);
}

static void
cmd_deliver(struct ps_cmd *c, const uint8_t *p, size_t n,
    enum wrm_command_state state)
{
	if (c->recv == NULL) {
		if (c->early_bytes + n <= MAX_EARLY_OUTPUT)
			early_push(&c->early, &c->early_tail, &c->early_bytes,
			    p, n, state);
		return;
	}
	if (host->receive_result(c->recv, WRM_RESULT_ATOMIC | (state !=
	    WRM_COMMAND_STATE_NONE ? WRM_RESULT_NO_DROP : 0), "stdout", p, n,
	    state, 0) == WRM_RECEIVE_FULL)
		hold_output(c->sh);
}

static void
cmd_finish(struct ps_cmd *c)
{
	struct wrm_request *req = c->recv;

	c->recv = NULL;
	if (req != NULL)
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void close_done(void *arg, int err);

/* Answer the pool's Receive with what it holds (pwsh is gone). */
static void
cmd_finish_pool(struct ps_shell *sh)
{
	struct wrm_request *req = sh->recv;

	sh->recv = NULL;
	if (req != NULL)
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

/*
 * A pipeline's Receive once pwsh is gone: finished if the pipeline was
 * (or pwsh was closed on purpose), a fault if pwsh died under it.
 */
static void
cmd_after_exit(struct ps_cmd *c)
{
	struct wrm_request *req = c->recv;

	if (c->done || !c->sh->broken) {
		cmd_finish(c);
		return;
	}
	c->recv = NULL;
	host->operation_complete(req, WRM_ERROR_PLUGIN_FAILED, "The "
	    "PowerShell process of this shell ended unexpectedly; the "
	    "pipeline did not finish. ", NULL, 0);
}

/*
 * Whether a host call is one PowerShell makes without waiting for an
 * answer (its call id "ci" is -100, as for WriteLine or WriteProgress).
 */
static bool
host_call_is_void(const struct psrp_frag *f)
{
	struct psrp_msg_hdr h;
	char *ci;
	bool v;

	if (!psrp_msg_header(f, &h))
		return false;
	ci = psrp_clixml_value(h.data, h.data_len, "I64", "ci");
	v = ci != NULL && strcmp(ci, "-100") == 0;
	free(ci);
	return v;
}

/* One Data line of pwsh output for a pipeline. */
static void
pipeline_output(struct ps_shell *sh, struct ps_cmd *c, const uint8_t *p,
    size_t n)
{
	struct psrp_frag f;
	enum wrm_command_state st;
	uint32_t type;
	bool bad;

	while (psrp_frag_next(&p, &n, &f, &bad)) {
		type = outbound_type(sh, &f);
		st = WRM_COMMAND_STATE_NONE;
		if (type == PSRP_PIPELINE_HOST_CALL && (f.flags & PSRP_START))
			c->void_call = host_call_is_void(&f);
		if (type == PSRP_PIPELINE_STATE && (f.flags & PSRP_END)) {
			st = WRM_COMMAND_STATE_DONE;
		} else if (type == PSRP_PIPELINE_HOST_CALL &&
		    (f.flags & PSRP_END) && !c->void_call) {
			/* Pending only for calls the pipeline waits on. */
			st = WRM_COMMAND_STATE_PENDING;
			c->pending = true;
		} else if (c->pending) {
			st = WRM_COMMAND_STATE_RUNNING;
			c->pending = false;
		}
		cmd_deliver(c, f.raw, f.raw_len, st);
		if (st == WRM_COMMAND_STATE_DONE) {
			c->done = true;
			if (c->recv != NULL)
				cmd_finish(c);
			/* pwsh wants exactly one Close per pipeline. */
			if (!c->close_sent) {
				c->close_sent = true;
				pwsh_close(sh->pw, c->guid, NULL, NULL);
			}
			return;
		}
	}
	if (bad)
		host->log(LOG_WARNING, "powershell: malformed fragment from "
		    "pwsh for %s", c->guid);
}

static void
pool_output(struct ps_shell *sh, const uint8_t *p, size_t n)
{
	struct psrp_frag f;
	uint32_t type;
	bool bad;

	while (psrp_frag_next(&p, &n, &f, &bad)) {
		type = outbound_type(sh, &f);
		/*
		 * pwsh runs -wd as a pipeline of its own and reports its end
		 * on the pool lane; no client asked for it and Windows never
		 * sends one there.
		 */
		if (type == PSRP_PIPELINE_STATE)
			continue;
		cache_pool_message(sh, &f, type);
		if (sh->recv == NULL) {
			if (sh->early_bytes + f.raw_len <= MAX_EARLY_OUTPUT)
				early_push(&sh->early, &sh->early_tail,
				    &sh->early_bytes, f.raw, f.raw_len,
				    WRM_COMMAND_STATE_NONE);
			continue;
		}
		if (host->receive_result(sh->recv, WRM_RESULT_ATOMIC |
		    (type != PSRP_PIPELINE_OUTPUT ? WRM_RESULT_NO_DROP : 0),
		    "stdout", f.raw, f.raw_len, WRM_COMMAND_STATE_NONE, 0) ==
		    WRM_RECEIVE_FULL)
			hold_output(sh);
	}
	if (bad)
		host->log(LOG_WARNING, "powershell: malformed pool fragment");
}

static void
on_pwsh_data(void *arg, const char *guid, const uint8_t *p, size_t n)
{
	struct ps_shell *sh = arg;
	struct ps_cmd *c;

	if (strcmp(guid, PWSH_POOL_GUID) == 0) {
		pool_output(sh, p, n);
		return;
	}
	if ((c = cmd_by_guid(sh, guid)) != NULL && !c->done)
		pipeline_output(sh, c, p, n);
}

static void
on_pwsh_exited(void *arg, int status, const char *stderr_tail)
{
	struct ps_shell *sh = arg;
	struct wrm_request *req = sh->recv;
	struct ps_cmd *c;
	char msg[1200];
	bool expected = sh->closing;

	sh->exited = true;
	host->unwatch(sh->close_timer);
	sh->close_timer = NULL;
	if (!expected)
		host->log(LOG_ERR, "powershell: pwsh %ld exited (status %d): "
		    "%.300s", (long)pwsh_pid(sh->pw), WIFEXITED(status) ?
		    WEXITSTATUS(status) : 128 + WTERMSIG(status),
		    stderr_tail != NULL ? stderr_tail : "");
	sh->broken = !expected;
	for (c = sh->cmds; c != NULL; c = c->next)
		if (c->recv != NULL)
			cmd_after_exit(c);
	sh->recv = NULL;
	if (req == NULL)
		return;
	if (expected) {
		host->receive_result(req, 0, "stdout", NULL, 0,
		    WRM_COMMAND_STATE_DONE, 0);
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	/* An error on the shell's receive marks the shell broken. */
	snprintf(msg, sizeof(msg), "The PowerShell process of this shell "
	    "ended unexpectedly. %.1000s", stderr_tail ? stderr_tail : "");
	host->operation_complete(req, WRM_ERROR_PLUGIN_FAILED, msg, NULL, 0);
}

static const struct pwsh_callbacks pwsh_cb = {
	.data = on_pwsh_data,
	.exited = on_pwsh_exited,
};

/* ---- shell ---- */

static const char *
req_option(const struct wrm_request *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->n_options; i++)
		if (req->options[i].name != NULL &&
		    strcmp(req->options[i].name, name) == 0)
			return req->options[i].value ? req->options[i].value :
			    "";
	return NULL;
}

/* Windows' plugin checks protocolversion before anything else. */
static bool
check_protocol_version(struct wrm_request *req)
{
	const char *v = req_option(req, "protocolversion");
	char msg[400];

	if (v == NULL) {
		host->operation_complete(req, PS_PROTOCOL_VERSION_NOT_FOUND,
		    "The PowerShell plugin requires the protocolversion option "
		    "(MustComply) in the request. ", NULL, 0);
		return false;
	}
	if (strtol(v, NULL, 10) != 2 || strncmp(v, "2.", 2) != 0) {
		snprintf(msg, sizeof(msg), "<PSProtocolVersionError "
		    "ServerProtocolVersion=\"%s\" ServerBuildVersion=\"0.1.0\">"
		    "The client's PowerShell remoting protocol version %.16s is "
		    "not supported: its major version must be 2."
		    "</PSProtocolVersionError>", PS_SERVER_PROTOCOL_VERSION, v);
		host->operation_complete(req, PS_PROTOCOL_VERSION_MISMATCH,
		    msg, NULL, 0);
		return false;
	}
	return true;
}

/* "en-US" -> "en_US.UTF-8"; NULL if the tag looks wrong. */
static char *
locale_env(const char *tag)
{
	char lang[16], region[16];
	char *r;

	if (tag == NULL || sscanf(tag, "%15[A-Za-z]-%15[A-Za-z0-9]", lang,
	    region) != 2)
		return NULL;
	if (asprintf(&r, "%s_%s.UTF-8", lang, region) < 0)
		return NULL;
	return r;
}

static int
env_add(char ***env, size_t *n, const char *name, const char *value)
{
	char **ne, *s;
	size_t i, nl = strlen(name);

	if (value == NULL || asprintf(&s, "%s=%s", name, value) < 0)
		return -ENOMEM;
	for (i = 0; i < *n; i++)
		if (strncmp((*env)[i], name, nl) == 0 && (*env)[i][nl] == '=') {
			free((*env)[i]);
			(*env)[i] = s;
			return 0;
		}
	if ((ne = realloc(*env, (*n + 2) * sizeof(*ne))) == NULL) {
		free(s);
		return -ENOMEM;
	}
	ne[(*n)++] = s;
	ne[*n] = NULL;
	*env = ne;
	return 0;
}

static char **
build_env(const struct ps_plugin *p, const char *locale,
    const struct wrm_shell_startup *info)
{
	char **env = calloc(1, sizeof(*env)), *loc, *pairs, *kv, *save = NULL;
	size_t n = 0, i;

	for (i = 0; env != NULL && environ[i] != NULL; i++) {
		char *eq = strchr(environ[i], '=');

		if (eq == NULL || strncmp(environ[i], "LC_", 3) == 0)
			continue;
		*eq = '\0';
		env_add(&env, &n, environ[i], eq + 1);
		*eq = '=';
	}
	if (env == NULL)
		return NULL;
	env_add(&env, &n, "POWERSHELL_TELEMETRY_OPTOUT", "1");
	env_add(&env, &n, "POWERSHELL_UPDATECHECK", "Off");
	env_add(&env, &n, "TERM", "dumb");
	/* pwsh takes its culture from LC_ALL: the client's data locale. */
	loc = locale_env(locale);
	if (loc != NULL) {
		env_add(&env, &n, "LC_ALL", loc);
		free(loc);
	}
	for (i = 0; info != NULL && i < info->n_env; i++)
		if (info->env[i].name != NULL && *info->env[i].name)
			env_add(&env, &n, info->env[i].name,
			    info->env[i].value ? info->env[i].value : "");
	if (p->environment != NULL && (pairs = strdup(p->environment))) {
		for (kv = strtok_r(pairs, ";", &save); kv != NULL;
		    kv = strtok_r(NULL, ";", &save)) {
			char *eq = strchr(kv, '=');

			if (eq == NULL || eq == kv)
				continue;
			*eq = '\0';
			env_add(&env, &n, kv, eq + 1);
		}
		free(pairs);
	}
	return env;
}

static void
free_strv(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/*
 * Where the runspace starts: the client's or the configuration's directory
 * (*asked_r: pwsh must be told with -wd), else the home directory, where
 * pwsh -s starts by itself.  -wd costs a pipeline run before the pool
 * opens, so it is given only when needed.
 */
static const char *
start_dir(const struct ps_plugin *p, const struct wrm_shell_startup *info,
    char **env, bool *asked_r)
{
	const char *d = info != NULL ? info->working_directory : NULL;
	struct stat st;
	size_t i;

	*asked_r = true;
	if (d != NULL && *d && stat(d, &st) == 0 && S_ISDIR(st.st_mode))
		return d;
	if (p->workdir != NULL)
		return p->workdir;
	*asked_r = false;
	for (i = 0; env[i] != NULL; i++)
		if (strncmp(env[i], "HOME=", 5) == 0)
			return env[i] + 5;
	return NULL;
}

static int
start_pwsh(struct ps_shell *sh, const char *locale,
    const struct wrm_shell_startup *info)
{
	struct ps_plugin *p = sh->plugin;
	char *argv[14], **env;
	const char *dir;
	bool asked;
	int i = 0, r;

	if ((env = build_env(p, locale, info)) == NULL)
		return -ENOMEM;
	dir = start_dir(p, info, env, &asked);
	argv[i++] = p->pwsh;
	argv[i++] = (char *)"-NoLogo";
	argv[i++] = (char *)"-NoProfile";
	argv[i++] = (char *)"-s";
	if (dir != NULL && asked) {
		/* The runspace starts there (the process's cwd is not used). */
		argv[i++] = (char *)"-wd";
		argv[i++] = (char *)dir;
	}
	if (p->config_file != NULL) {
		argv[i++] = (char *)"-ConfigurationFile";
		argv[i++] = p->config_file;
	}
	if (p->startup_script != NULL) {
		argv[i++] = (char *)"-EncodedCommand";
		argv[i++] = p->startup_script;
	}
	argv[i] = NULL;
	r = pwsh_start(host, argv, env, dir, &pwsh_cb, sh, &sh->pw);
	free_strv(env);
	return r;
}

/* A warm pwsh started before any shell, for one locale. */
static void
start_spare(struct ps_plugin *p, const char *locale)
{
	struct ps_shell *sh = calloc(1, sizeof(*sh));

	if (sh == NULL)
		return;
	sh->plugin = p;
	if (start_pwsh(sh, locale != NULL && *locale ? locale : NULL,
	    NULL) != 0) {
		free(sh);
		return;
	}
	p->spare = sh;
	p->spare_locale = strdup(locale != NULL ? locale : "");
}

/* The spare, if it suits this request (same locale, nothing shell-specific). */
static struct ps_shell *
take_spare(struct ps_plugin *p, const struct wrm_request *req,
    const struct wrm_shell_startup *info)
{
	const char *want = req->data_locale ? req->data_locale :
	    req->locale ? req->locale : "";
	struct ps_shell *sh = p->spare;

	if (sh == NULL)
		return NULL;
	p->spare = NULL;
	if (sh->exited || info->n_env > 0 || (info->working_directory &&
	    *info->working_directory) || strcmp(want, p->spare_locale) != 0) {
		ps_release_shell(p, sh);
		return NULL;
	}
	return sh;
}

/*
 * Whether creationXml is whole fragments that end every message they
 * start, with an INIT_RUNSPACEPOOL among them: pwsh would wait for ever
 * on a cut one.
 */
static bool
creation_complete(const uint8_t *p, size_t n)
{
	struct psrp_frag f;
	struct psrp_msg_hdr h;
	bool bad, init = false, open_msg = false;

	if (!psrp_frags_whole(p, n))
		return false;
	while (psrp_frag_next(&p, &n, &f, &bad)) {
		if ((f.flags & PSRP_START) && psrp_msg_header(&f, &h) &&
		    h.type == PSRP_INIT_RUNSPACEPOOL)
			init = true;
		open_msg = !(f.flags & PSRP_END);
	}
	return init && !open_msg;
}

/* An I32 of a message's top level, or def. */
static int
clixml_int(const struct psrp_msg_hdr *h, const char *name, int def)
{
	char *v = psrp_clixml_value(h->data, h->data_len, "I32", name);
	int r = v != NULL ? (int)strtol(v, NULL, 10) : def;

	free(v);
	return r;
}

/* MinRunspaces and MaxRunspaces of the INIT_RUNSPACEPOOL in creationXml. */
static void
pool_counts(const uint8_t *p, size_t n, int *min_r, int *max_r)
{
	struct psrp_frag f;
	struct psrp_msg_hdr h;
	bool bad;

	while (psrp_frag_next(&p, &n, &f, &bad))
		if ((f.flags & PSRP_START) && psrp_msg_header(&f, &h) &&
		    h.type == PSRP_INIT_RUNSPACEPOOL) {
			*min_r = clixml_int(&h, "MinRunspaces", 1);
			*max_r = clixml_int(&h, "MaxRunspaces", 1);
		}
}

static void
ps_shell(void *ctx, struct wrm_request *req,
    const struct wrm_shell_startup *info)
{
	struct ps_plugin *p = ctx;
	struct ps_shell *sh;
	struct psrp_frag f;
	struct psrp_msg_hdr h;
	const uint8_t *in = info->inbound;
	size_t left = info->inbound_len;
	char msg[600];
	bool bad;
	int r, min_rs = 1, max_rs = 1;

	if (!check_protocol_version(req))
		return;
	if (in == NULL || !psrp_frag_next(&in, &left, &f, &bad) ||
	    !psrp_msg_header(&f, &h) || h.type != PSRP_SESSION_CAPABILITY) {
		host->operation_complete(req, WRM_ERROR_INVALID_PARAMETER,
		    "creationXml must start with a SESSION_CAPABILITY "
		    "message. ", NULL, 0);
		return;
	}
	if (!creation_complete(info->inbound, info->inbound_len)) {
		host->operation_complete(req, WRM_ERROR_INVALID_PARAMETER,
		    "creationXml must hold whole SESSION_CAPABILITY and "
		    "INIT_RUNSPACEPOOL messages. ", NULL, 0);
		return;
	}
	pool_counts(info->inbound, info->inbound_len, &min_rs, &max_rs);
	if (p->refusal != NULL) {
		host->operation_complete(req, WRM_ERROR_NOT_SUPPORTED,
		    p->refusal, NULL, 0);
		return;
	}
	if (p->pwsh == NULL) {
		host->operation_complete(req, WRM_ERROR_FILE_NOT_FOUND,
		    "This PowerShell session configuration needs pwsh "
		    "(PowerShell 7), which is not installed: pwsh was not found "
		    "on PATH, in /opt/microsoft/powershell/7 or "
		    "~/.dotnet/tools, and PwshPath is not set. ", NULL, 0);
		return;
	}
	if ((sh = take_spare(p, req, info)) != NULL) {
		memcpy(sh->rpid, h.rpid, 16);
		sh->min_rs = min_rs;
		sh->max_rs = max_rs;
		pwsh_data(sh->pw, PWSH_POOL_GUID, false, info->inbound,
		    info->inbound_len, NULL, NULL);
		host->report_context(req, sh);
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	if ((sh = calloc(1, sizeof(*sh))) == NULL) {
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	sh->plugin = p;
	memcpy(sh->rpid, h.rpid, 16);
	sh->min_rs = min_rs;
	sh->max_rs = max_rs;
	if ((r = start_pwsh(sh, req->data_locale ? req->data_locale :
	    req->locale, info)) != 0) {
		snprintf(msg, sizeof(msg), "pwsh (%s) could not be started: "
		    "%s. ", p->pwsh, strerror(-r));
		free(sh);
		host->operation_complete(req, r == -ENOENT ?
		    WRM_ERROR_FILE_NOT_FOUND : WRM_ERROR_PLUGIN_FAILED, msg,
		    NULL, 0);
		return;
	}
	pwsh_data(sh->pw, PWSH_POOL_GUID, false, info->inbound,
	    info->inbound_len, NULL, NULL);
	host->report_context(req, sh);
	host->operation_complete(req, WRM_OK, NULL, NULL, 0);
}

static void
ps_release_shell(void *ctx, void *shell_ctx)
{
	struct ps_shell *sh = shell_ctx;
	struct inbound_obj *i;
	struct outbound_obj *o;
	struct dedup *d;

	(void)ctx;
	host->unwatch(sh->close_timer);
	pwsh_free(sh->pw);
	early_free(sh->early);
	while ((i = sh->inbound) != NULL) {
		sh->inbound = i->next;
		free(i);
	}
	while ((o = sh->outbound) != NULL) {
		sh->outbound = o->next;
		free(o);
	}
	while ((d = sh->dedup) != NULL) {
		sh->dedup = d->next;
		free(d);
	}
	free(sh->server_capability);
	free(sh->private_data);
	free(sh);
}

/* ---- commands ---- */

struct op {
	struct ps_shell *sh;
	struct ps_cmd *cmd;
	struct wrm_request *req;
	uint8_t *data;
	size_t len;
	unsigned pending;
	int err;
};

static void
op_free(struct op *o)
{
	free(o->data);
	free(o);
}

static void
command_data_done(void *arg, int err)
{
	struct op *o = arg;

	o->cmd->create_req = NULL;
	if (err != 0) {
		host->operation_complete(o->req, WRM_ERROR_PLUGIN_FAILED,
		    "The PowerShell process did not accept the pipeline. ",
		    NULL, 0);
	} else {
		o->cmd->acked = true;
		host->operation_complete(o->req, WRM_OK, NULL, NULL, 0);
	}
	op_free(o);
}

static void
command_ack(void *arg, int err)
{
	struct op *o = arg;

	if (err != 0) {
		command_data_done(o, err);
		return;
	}
	pwsh_data(o->sh->pw, o->cmd->guid, false, o->data, o->len,
	    command_data_done, o);
}

static struct dedup *
dedup_for(struct ps_shell *sh, const char *guid, bool prompt)
{
	struct dedup *d;

	for (d = sh->dedup; d != NULL; d = d->next)
		if (d->prompt == prompt && strcmp(d->guid, guid) == 0)
			return d;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	snprintf(d->guid, sizeof(d->guid), "%s", guid);
	d->prompt = prompt;
	d->next = sh->dedup;
	sh->dedup = d;
	return d;
}

static void
dedup_reset(struct ps_shell *sh, const char *guid)
{
	struct dedup **pp, *d;

	for (pp = &sh->dedup; (d = *pp) != NULL;)
		if (strcmp(d->guid, guid) == 0) {
			*pp = d->next;
			free(d);
		} else
			pp = &d->next;
}

/* Record (and judge) a fragment: false if it was forwarded before. */
static bool
dedup_fresh(struct ps_shell *sh, const char *guid, bool prompt,
    const struct psrp_frag *f)
{
	struct dedup *d = dedup_for(sh, guid, prompt);

	if (d == NULL)
		return true;
	if (d->obj != 0 && (f->object_id < d->obj ||
	    (f->object_id == d->obj && f->fragment_id <= d->frag)))
		return false;
	d->obj = f->object_id;
	d->frag = f->fragment_id;
	return true;
}

static void
ps_command(void *ctx, struct wrm_request *req, void *shell_ctx,
    const char *command_line, const char *const *args, size_t n_args)
{
	struct ps_shell *sh = shell_ctx;
	struct psrp_frag f;
	struct psrp_msg_hdr h;
	struct ps_cmd *c;
	struct op *o;
	const uint8_t *p;
	uint8_t *data;
	size_t len = 0, left;
	bool bad;

	(void)ctx;
	(void)command_line;
	if (sh->exited || sh->closing || n_args < 1 || args[0] == NULL) {
		host->operation_complete(req, sh->exited ?
		    WRM_ERROR_PLUGIN_FAILED : WRM_ERROR_INVALID_PARAMETER,
		    NULL, NULL, 0);
		return;
	}
	if ((data = malloc(strlen(args[0]) / 4 * 3 + 3)) == NULL ||
	    wrm_b64_decode(args[0], strlen(args[0]), data, &len) != 0) {
		free(data);
		host->operation_complete(req, WRM_ERROR_INVALID_PARAMETER,
		    "The command's arguments are not base64 PSRP fragments. ",
		    NULL, 0);
		return;
	}
	p = data;
	left = len;
	if (!psrp_frag_next(&p, &left, &f, &bad) || !psrp_msg_header(&f, &h) ||
	    psrp_guid_is_zero(h.pid) || (h.type != PSRP_CREATE_PIPELINE &&
	    h.type != PSRP_GET_COMMAND_METADATA)) {
		free(data);
		host->operation_complete(req, WRM_ERROR_INVALID_PARAMETER,
		    "The command does not carry a CREATE_PIPELINE or "
		    "GET_COMMAND_METADATA message. ", NULL, 0);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (o = calloc(1, sizeof(*o))) == NULL) {
		free(c);
		free(data);
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	psrp_guid_text(h.pid, c->guid);
	memcpy(c->pid, h.pid, 16);
	{
		char *ni = psrp_clixml_value(h.data, h.data_len, "B",
		    "NoInput");

		c->no_input = ni != NULL && strcasecmp(ni, "true") == 0;
		free(ni);
	}
	if (cmd_by_guid(sh, c->guid) != NULL) {
		free(c);
		free(o);
		free(data);
		host->operation_complete(req, WRM_ERROR_INVALID_PARAMETER,
		    "A pipeline with this id is still open. ", NULL, 0);
		return;
	}
	c->sh = sh;
	c->create_req = req;
	c->next = sh->cmds;
	sh->cmds = c;
	dedup_reset(sh, c->guid);
	for (p = data, left = len; psrp_frag_next(&p, &left, &f, &bad);)
		dedup_fresh(sh, c->guid, false, &f);
	o->sh = sh;
	o->cmd = c;
	o->req = req;
	o->data = data;
	o->len = len;
	host->report_context(req, c);
	pwsh_command(sh->pw, c->guid, command_ack, o);
}

static void
ps_release_command(void *ctx, void *shell_ctx, void *cmd_ctx)
{
	struct ps_shell *sh = shell_ctx;
	struct ps_cmd *c = cmd_ctx, **pp;

	(void)ctx;
	if (!c->close_sent && sh->pw != NULL && !sh->exited) {
		c->close_sent = true;
		pwsh_close(sh->pw, c->guid, NULL, NULL);
	}
	for (pp = &sh->cmds; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	dedup_reset(sh, c->guid);
	early_free(c->early);
	free(c);
}

/* ---- send ---- */

static void
send_done(void *arg, int err)
{
	struct op *o = arg;

	if (err != 0 && o->err == 0)
		o->err = err;
	if (--o->pending > 0)
		return;
	host->operation_complete(o->req, o->err != 0 ?
	    WRM_ERROR_PLUGIN_FAILED : WRM_OK, o->err != 0 ? "The PowerShell "
	    "process is gone. " : NULL, NULL, 0);
	op_free(o);
}

/* The lane a fragment goes to: its message's PID, or its object's. */
static bool
fragment_lane(struct ps_shell *sh, const struct psrp_frag *f,
    struct ps_cmd *cmd, char guid[37])
{
	struct inbound_obj **pp, *io;
	struct psrp_msg_hdr h;

	for (pp = &sh->inbound; (io = *pp) != NULL; pp = &io->next)
		if (io->object_id == f->object_id)
			break;
	if ((f->flags & PSRP_START) && psrp_msg_header(f, &h)) {
		if (psrp_guid_is_zero(h.pid))
			strcpy(guid, PWSH_POOL_GUID);
		else
			psrp_guid_text(h.pid, guid);
	} else if (io != NULL)
		strcpy(guid, io->guid);
	else if (cmd != NULL)
		strcpy(guid, cmd->guid);
	else
		strcpy(guid, PWSH_POOL_GUID);
	if (f->flags & PSRP_END) {
		if (io != NULL) {
			*pp = io->next;
			free(io);
		}
	} else if (io == NULL && (io = calloc(1, sizeof(*io))) != NULL) {
		io->object_id = f->object_id;
		strcpy(io->guid, guid);
		io->next = sh->inbound;
		sh->inbound = io;
	}
	return strcmp(guid, PWSH_POOL_GUID) == 0 || cmd_by_guid(sh, guid);
}

/* What Connect must know later of a client's message. */
static void
note_client_message(struct ps_shell *sh, const struct psrp_frag *f)
{
	struct psrp_msg_hdr h;
	char guid[37];
	struct ps_cmd *c;

	if (!(f->flags & PSRP_START) || !psrp_msg_header(f, &h))
		return;
	if (h.type == PSRP_END_OF_PIPELINE_INPUT) {
		psrp_guid_text(h.pid, guid);
		if ((c = cmd_by_guid(sh, guid)) != NULL)
			c->input_ended = true;
	} else if (h.type == PSRP_SET_MAX_RUNSPACES)
		sh->max_rs = clixml_int(&h, "MaxRunspaces", sh->max_rs);
	else if (h.type == PSRP_SET_MIN_RUNSPACES)
		sh->min_rs = clixml_int(&h, "MinRunspaces", sh->min_rs);
}

static void
ps_send(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx,
    const char *stream, const uint8_t *data, size_t len, uint32_t flags)
{
	struct ps_shell *sh = shell_ctx;
	struct psrp_frag f;
	struct wrm_buf run;
	struct op *o;
	const uint8_t *p = data;
	char guid[37], run_guid[37] = "";
	size_t left = len;
	bool prompt = stream != NULL && strcasecmp(stream, "pr") == 0, bad;

	(void)ctx;
	(void)flags;
	if (sh->exited) {
		host->operation_complete(req, WRM_ERROR_PLUGIN_FAILED,
		    "The PowerShell process is gone. ", NULL, 0);
		return;
	}
	/* All or nothing: a cut fragment would desynchronise pwsh. */
	if (!psrp_frags_whole(data, len)) {
		host->operation_complete(req, WRM_ERROR_INVALID_PARAMETER,
		    "The Send data is not a sequence of whole PSRP "
		    "fragments. ", NULL, 0);
		return;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	o->sh = sh;
	o->req = req;
	o->pending = 1;
	wrm_buf_init(&run, 0);
	/* Group consecutive fragments per lane into one Data packet each. */
	while (psrp_frag_next(&p, &left, &f, &bad)) {
		bool ok = fragment_lane(sh, &f, cmd_ctx, guid);

		if (!ok || !dedup_fresh(sh, guid, prompt, &f))
			continue;
		note_client_message(sh, &f);
		if (run_guid[0] != '\0' && strcmp(run_guid, guid) != 0) {
			o->pending++;
			pwsh_data(sh->pw, run_guid, prompt, wrm_buf_ptr(&run),
			    wrm_buf_len(&run), send_done, o);
			wrm_buf_reset(&run);
		}
		strcpy(run_guid, guid);
		wrm_buf_put(&run, f.raw, f.raw_len);
	}
	if (bad)
		host->log(LOG_WARNING, "powershell: malformed fragment in a "
		    "Send; the rest of it was dropped");
	if (wrm_buf_len(&run) > 0) {
		o->pending++;
		pwsh_data(sh->pw, run_guid, prompt, wrm_buf_ptr(&run),
		    wrm_buf_len(&run), send_done, o);
	}
	wrm_buf_free(&run);
	send_done(o, 0);
}

/* ---- receive ---- */

static void
flush_early(struct wrm_request *req, struct early **head,
    struct early **tail, size_t *bytes)
{
	struct early *e = *head, *n;

	*head = *tail = NULL;
	*bytes = 0;
	for (; e != NULL; e = n) {
		n = e->next;
		host->receive_result(req, WRM_RESULT_ATOMIC, "stdout", e->p,
		    e->n, e->state, 0);
		free(e->p);
		free(e);
	}
}

static void
ps_receive(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx)
{
	struct ps_shell *sh = shell_ctx;
	struct ps_cmd *c = cmd_ctx;

	(void)ctx;
	if (c == NULL) {
		if (sh->recv != NULL) {
			release_output(sh);	/* resumed after FULL */
			return;
		}
		if (sh->broken && sh->early == NULL) {
			host->operation_complete(req, WRM_ERROR_PLUGIN_FAILED,
			    "The PowerShell process of this shell ended "
			    "unexpectedly. ", NULL, 0);
			return;
		}
		sh->recv = req;
		flush_early(req, &sh->early, &sh->early_tail,
		    &sh->early_bytes);
		if (sh->exited)
			cmd_finish_pool(sh);
		return;
	}
	if (c->recv != NULL) {
		release_output(sh);		/* resumed after FULL */
		return;
	}
	c->recv = req;
	if (c->early != NULL) {
		flush_early(req, &c->early, &c->early_tail, &c->early_bytes);
		if (c->done || sh->exited)
			cmd_finish(c);
		return;
	}
	if (c->done || sh->exited)
		cmd_after_exit(c);
}

/* ---- connect ---- */

#define OUR_OBJECT_IDS	0x7fff000000000000ull

/* One whole message as a single fragment: header then data. */
static int
put_message(struct wrm_buf *out, struct ps_shell *sh, uint32_t dest,
    uint32_t type, const uint8_t pid[16], const uint8_t *data, size_t len)
{
	uint8_t *blob, *frag;
	size_t bl = PSRP_MSG_HDR + len;
	int r;

	if ((blob = malloc(bl)) == NULL ||
	    (frag = malloc(PSRP_FRAG_HDR + bl)) == NULL) {
		free(blob);
		return -1;
	}
	wrm_set_u32_le(blob, dest);
	wrm_set_u32_le(blob + 4, type);
	memcpy(blob + 8, sh->rpid, 16);
	if (pid != NULL)
		memcpy(blob + 24, pid, 16);
	else
		memset(blob + 24, 0, 16);
	memcpy(blob + PSRP_MSG_HDR, data, len);
	r = wrm_buf_put(out, frag, psrp_frag_write(frag,
	    OUR_OBJECT_IDS + ++sh->next_oid, 0, PSRP_START | PSRP_END, blob,
	    (uint32_t)bl));
	free(blob);
	free(frag);
	return r;
}

/* "2.3" -> 203; -1 when it is not a version. */
static int
version_num(const char *v)
{
	int maj, min;

	if (v == NULL || sscanf(v, "%d.%d", &maj, &min) != 2 || maj < 0 ||
	    min < 0 || min > 99)
		return -1;
	return maj * 100 + min;
}

/*
 * Connect of a new client (psrp-bridge design, 3.4): pwsh -s cannot serve
 * CONNECT_RUNSPACEPOOL, so the answer is made here from what the pool's
 * opening left: pwsh's session capability (with the version the two
 * sides can speak) and the pool's runspace counts; pwsh's application
 * private data is sent on the pool again, as PowerShell's client waits
 * for it, and pipelines still taking input get their end of input, as
 * Windows completes their input on Connect.
 */
static void
ps_connect(void *ctx, struct wrm_request *req, void *shell_ctx,
    void *cmd_ctx, const uint8_t *data, size_t len)
{
	struct ps_shell *sh = shell_ctx;
	struct psrp_frag f1, f2;
	struct psrp_msg_hdr h1, h2;
	const uint8_t *p = data;
	struct wrm_buf out, init;
	struct ps_cmd *c;
	struct dedup *d;
	char *cv, *sv, *body = NULL, *at;
	size_t left = len, bl;
	int cn, sn, cmin, cmax, report;
	bool bad;

	(void)ctx;
	if (cmd_ctx != NULL) {
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	if (sh->exited || sh->closing) {
		host->operation_complete(req, WRM_ERROR_PLUGIN_FAILED, "The "
		    "PowerShell process of this shell is gone. ", NULL, 0);
		return;
	}
	if (!check_protocol_version(req))
		return;
	if (!psrp_frag_next(&p, &left, &f1, &bad) ||
	    !psrp_frag_next(&p, &left, &f2, &bad) || left != 0 ||
	    (f1.flags & 3) != 3 || (f2.flags & 3) != 3 ||
	    !psrp_msg_header(&f1, &h1) || !psrp_msg_header(&f2, &h2) ||
	    h1.type != PSRP_SESSION_CAPABILITY ||
	    h2.type != PSRP_CONNECT_RUNSPACEPOOL) {
		host->operation_complete(req, PS_CONNECT_FAILED, "connectXml "
		    "must be a whole SESSION_CAPABILITY message followed by a "
		    "whole CONNECT_RUNSPACEPOOL message. ", NULL, 0);
		return;
	}
	if (memcmp(h2.rpid, sh->rpid, 16) != 0) {
		host->operation_complete(req, PS_CONNECT_FAILED, "The "
		    "CONNECT_RUNSPACEPOOL names another runspace pool. ",
		    NULL, 0);
		return;
	}
	cmin = clixml_int(&h2, "MinRunspaces", sh->min_rs);
	cmax = clixml_int(&h2, "MaxRunspaces", sh->max_rs);
	if (cmin != sh->min_rs || cmax != sh->max_rs) {
		host->operation_complete(req, PS_CONNECT_FAILED, "The "
		    "runspace counts differ from the pool's. ", NULL, 0);
		return;
	}
	if (sh->server_capability == NULL ||
	    sh->server_capability_len < PSRP_MSG_HDR) {
		host->operation_complete(req, PS_CONNECT_FAILED, "The pool "
		    "never finished opening. ", NULL, 0);
		return;
	}
	/* The version both sides speak. */
	cv = psrp_clixml_value(h1.data, h1.data_len, "Version",
	    "protocolversion");
	sv = psrp_clixml_value(sh->server_capability + PSRP_MSG_HDR,
	    sh->server_capability_len - PSRP_MSG_HDR, "Version",
	    "protocolversion");
	cn = version_num(cv);
	sn = version_num(sv);
	if (cn < 202 || cn >= 300 || sn < 0) {
		host->operation_complete(req, PS_PROTOCOL_VERSION_MISMATCH,
		    "Connecting needs PowerShell remoting protocol 2.2 or "
		    "later. ", NULL, 0);
		free(cv);
		free(sv);
		return;
	}
	report = cn <= sn ? cn : sn;
	/* pwsh's capability, its version replaced when lower is spoken. */
	bl = sh->server_capability_len - PSRP_MSG_HDR;
	if ((body = malloc(bl + 16)) == NULL) {
		free(cv);
		free(sv);
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	memcpy(body, sh->server_capability + PSRP_MSG_HDR, bl);
	body[bl] = '\0';
	if (report != sn && (at = memmem(body, bl, sv, strlen(sv))) != NULL &&
	    strlen(sv) == 3) {
		char nv[8];

		snprintf(nv, sizeof(nv), "%d.%d", report / 100, report % 100);
		if (strlen(nv) == 3)
			memcpy(at, nv, 3);
	}
	free(cv);
	free(sv);
	wrm_buf_init(&out, 0);
	wrm_buf_init(&init, 0);
	wrm_buf_printf(&init, "\xef\xbb\xbf<Obj RefId=\"0\"><MS><I32 "
	    "N=\"MinRunspaces\">%d</I32><I32 N=\"MaxRunspaces\">%d</I32>"
	    "</MS></Obj>", sh->min_rs, sh->max_rs);
	if (put_message(&out, sh, 1, PSRP_SESSION_CAPABILITY, NULL,
	    (uint8_t *)body, bl) != 0 ||
	    put_message(&out, sh, 1, PSRP_RUNSPACEPOOL_INIT_DATA, NULL,
	    wrm_buf_ptr(&init), wrm_buf_len(&init)) != 0) {
		free(body);
		wrm_buf_free(&out);
		wrm_buf_free(&init);
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	free(body);
	wrm_buf_free(&init);
	/* A new client numbers its objects from 1 again. */
	while ((d = sh->dedup) != NULL) {
		sh->dedup = d->next;
		free(d);
	}
	host->operation_complete(req, WRM_OK, NULL, wrm_buf_ptr(&out),
	    wrm_buf_len(&out));
	wrm_buf_free(&out);
	/* Application private data again, on the pool. */
	if (sh->private_data != NULL &&
	    sh->private_data_len >= PSRP_MSG_HDR) {
		wrm_buf_init(&out, 0);
		if (put_message(&out, sh, 1, PSRP_APPLICATION_PRIVATE_DATA,
		    NULL, sh->private_data + PSRP_MSG_HDR,
		    sh->private_data_len - PSRP_MSG_HDR) == 0)
			pool_output(sh, wrm_buf_ptr(&out), wrm_buf_len(&out));
		wrm_buf_free(&out);
	}
	/* Input of pipelines still open for it ends here. */
	for (c = sh->cmds; c != NULL; c = c->next) {
		if (c->done || c->no_input || c->input_ended)
			continue;
		c->input_ended = true;
		wrm_buf_init(&out, 0);
		if (put_message(&out, sh, 2, PSRP_END_OF_PIPELINE_INPUT,
		    c->pid, NULL, 0) == 0)
			pwsh_data(sh->pw, c->guid, false, wrm_buf_ptr(&out),
			    wrm_buf_len(&out), NULL, NULL);
		wrm_buf_free(&out);
	}
}

/* ---- signal ---- */

static void
signal_done(void *arg, int err)
{
	struct op *o = arg;

	(void)err;
	host->operation_complete(o->req, WRM_OK, NULL, NULL, 0);
	op_free(o);
}

static void
close_done(void *arg, int err)
{
	struct op *o = arg;
	struct ps_cmd *c = o->cmd;

	(void)err;
	/* A closed pipeline produces nothing more. */
	if (c != NULL && c->recv != NULL)
		cmd_finish(c);
	if (o->req != NULL)
		host->operation_complete(o->req, WRM_OK, NULL, NULL, 0);
	op_free(o);
}

static void
close_timeout(void *arg)
{
	struct ps_shell *sh = arg;

	sh->close_timer = NULL;
	host->log(LOG_WARNING, "powershell: pwsh %ld did not close in time; "
	    "killing it", (long)pwsh_pid(sh->pw));
	pwsh_kill(sh->pw, SIGKILL);
}

static void
pool_closed(void *arg, int err)
{
	struct ps_shell *sh = arg;

	(void)err;
	/* After the pool's CloseAck only EOF may follow. */
	pwsh_eof(sh->pw);
}

/* Close every pipeline, then the pool, then stdin. */
static void
shell_close(struct ps_shell *sh)
{
	struct ps_cmd *c;
	struct op *o;

	if (sh->closing || sh->exited)
		return;
	sh->closing = true;
	for (c = sh->cmds; c != NULL; c = c->next) {
		if (c->close_sent)
			continue;
		c->close_sent = true;
		if ((o = calloc(1, sizeof(*o))) != NULL) {
			o->sh = sh;
			o->cmd = c;
		}
		pwsh_close(sh->pw, c->guid, o != NULL ? close_done : NULL, o);
	}
	pwsh_close(sh->pw, PWSH_POOL_GUID, pool_closed, sh);
	host->add_timer(CLOSE_TIMEOUT_MS, close_timeout, sh, &sh->close_timer);
}

static bool
is_stop(const char *code)
{
	size_t n = strlen(code);

	return (n >= 6 && strcasecmp(code + n - 6, "crtl_c") == 0) ||
	    (n >= 6 && strcasecmp(code + n - 6, "ctrl_c") == 0);
}

static void
ps_signal(void *ctx, struct wrm_request *req, void *shell_ctx, void *cmd_ctx,
    const char *code)
{
	struct ps_shell *sh = shell_ctx;
	struct ps_cmd *c = cmd_ctx;
	struct op *o;

	(void)ctx;
	if (c == NULL) {
		/* The shell is being deleted. */
		shell_close(sh);
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	if (sh->exited || c->done || (is_stop(code) && c->close_sent) ||
	    (!is_stop(code) && c->close_sent)) {
		if (!is_stop(code) && c->recv != NULL)
			cmd_finish(c);
		host->operation_complete(req, WRM_OK, NULL, NULL, 0);
		return;
	}
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		host->operation_complete(req, WRM_ERROR_NOT_ENOUGH_MEMORY,
		    NULL, NULL, 0);
		return;
	}
	o->sh = sh;
	o->cmd = c;
	o->req = req;
	if (is_stop(code)) {
		pwsh_signal(sh->pw, c->guid, signal_done, o);
		return;
	}
	c->close_sent = true;
	pwsh_close(sh->pw, c->guid, close_done, o);
}

static const struct wrm_plugin ps_plugin = {
	.abi_major = WRM_PLUGIN_ABI_MAJOR,
	.abi_minor = WRM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct wrm_plugin),
	.name = "powershell",
	.version = "1.0",
	.options = ps_options,
	.startup = ps_startup,
	.shutdown = ps_shutdown,
	.shell = ps_shell,
	.release_shell = ps_release_shell,
	.command = ps_command,
	.release_command = ps_release_command,
	.send = ps_send,
	.receive = ps_receive,
	.signal = ps_signal,
	.connect = ps_connect,
};

const struct wrm_plugin *
winrmd_plugin_entry(const struct wrm_host_api *h)
{
	host = h;
	return &ps_plugin;
}
