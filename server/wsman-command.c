/* Command, Send and Signal. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "misc.h"
#include "ns.h"
#include "shell.h"
#include "store.h"
#include "wsman.h"
#include "xpress.h"

#define HOST_DIED_CODE	0xffffffffu

typedef void op_reply_fn(struct wrm_op *op, struct wrm_shell *sh,
    const struct wrm_hmsg *m, uint32_t err, const char *msg, void *arg);

/*
 * Every host request made on behalf of an operation goes through here: the
 * callback gets the op back; if the op went away or the host died, the
 * callback is not called and release (if any) gets its argument instead.
 */
struct op_req {
	struct wrm_op *op;
	op_reply_fn *fn;
	void (*release)(void *arg);
	void *arg;
};

static void
op_req_reply(struct wrm_host *h, const struct wrm_hmsg *m, void *arg)
{
	struct op_req *or = arg;
	struct wrm_op *op = or->op;
	struct wrm_shell *sh;
	char *msg = NULL;
	uint32_t err;

	(void)h;
	if (!wrm_op_host_reply_begin(op)) {
		if (or->release != NULL)
			or->release(or->arg);
		free(or);
		return;
	}
	err = wrm_hreply_error(m, &msg);
	sh = wrm_shell_find(op->delivery_shell);
	if (err == HOST_DIED_CODE) {
		wrm_op_fault_id(op, WRM_FAULT_SHELL_BROKEN);
		if (or->release != NULL)
			or->release(or->arg);
	} else
		or->fn(op, sh, m, err, msg, or->arg);
	free(msg);
	free(or);
}

/* Send b (a request with id reqid) for op; consumes b's contents. */
static int
op_host_request(struct wrm_op *op, struct wrm_shell *sh, struct wrm_buf *b,
    uint32_t reqid, op_reply_fn *fn, void (*release)(void *), void *arg)
{
	struct op_req *or;
	int r;

	if ((or = calloc(1, sizeof(*or))) == NULL)
		return WRM_ERR_ALLOC;
	or->op = op;
	or->fn = fn;
	or->release = release;
	or->arg = arg;
	if (op->delivery_shell == NULL)
		op->delivery_shell = strdup(sh->id);
	wrm_op_host_request_sent(op);
	/* A failure is answered through op_req_reply. */
	(void)wrm_host_request(sh->host, b, reqid, op_req_reply, or);
	(void)r;
	return 0;
}

static void
fault_from_host(struct wrm_op *op, uint32_t err, const char *msg,
    bool winrs)
{
	struct wrm_fault_info fi;

	memset(&fi, 0, sizeof(fi));
	fi.id = wrm_fault_for_code(err);
	fi.code = err;
	fi.message = msg != NULL && msg[0] != '\0' ? msg : NULL;
	if (winrs && fi.id == WRM_FAULT_INTERNAL) {
		fi.provider = "Shell cmd plugin";
		fi.provider_path = "%systemroot%\\system32\\winrscmd.dll";
	}
	if (fi.id == WRM_FAULT_INVALID_COMMAND)
		fi.message = NULL;
	wrm_op_fault(op, &fi);
}

static void
reply_simple(struct wrm_op *op, const char *action, const char *body)
{
	if (wrm_soap_begin(&op->out, action, op->soap.message_id,
	    WRM_NS_X | WRM_NS_RSP | WRM_NS_P) != 0 ||
	    wrm_buf_puts(&op->out, body) != 0 ||
	    wrm_soap_end(&op->out) != 0) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	wrm_op_reply(op);
}

/* Shell checks common to Command, Send and Signal. */
static struct wrm_shell *
usable_shell(struct wrm_op *op)
{
	struct wrm_shell *sh = wsman_op_shell(op);

	if (sh == NULL)
		return NULL;
	if (sh->state == WRM_SHELL_DISCONNECTED) {
		wrm_op_fault_id(op, WRM_FAULT_SHELL_DISCONNECTED);
		return NULL;
	}
	wrm_shell_touch(sh);
	return sh;
}

static void
put_options(struct wrm_buf *b, const struct wrm_op *op)
{
	size_t i;

	for (i = 0; i < op->soap.n_options; i++) {
		wrm_hmsg_put_str(b, HT_OPT_NAME, op->soap.options[i].name);
		wrm_hmsg_put_str(b, HT_OPT_VALUE, op->soap.options[i].value ?
		    op->soap.options[i].value : "");
		wrm_hmsg_put_u64(b, HT_OPT_MC, op->soap.options[i].must_comply);
	}
}

/* ---- Command ---- */

static void
command_done(struct wrm_op *op, struct wrm_shell *sh, const struct wrm_hmsg *m,
    uint32_t err, const char *msg, void *arg)
{
	char *id = arg;
	struct wrm_command *cmd = sh != NULL ? wrm_command_find(sh, id) : NULL;
	struct wrm_buf body;

	(void)m;
	if (err != 0 || cmd == NULL) {
		if (cmd != NULL)
			wrm_command_remove(cmd);
		if (err == 0)
			err = WRM_ERROR_INVALID_SELECTORS;
		fault_from_host(op, err, msg, sh != NULL && sh->is_winrs);
		free(id);
		return;
	}
	cmd->state = WRM_CMD_RUNNING;
	if (D.store != NULL)
		wrm_store_command_put(D.store, sh->id, cmd->id,
		    cmd->command_line, "Running");
	wrm_buf_init(&body, 0);
	if (wrm_buf_puts(&body, "<rsp:CommandResponse><rsp:CommandId>") != 0 ||
	    wrm_buf_put_xml(&body, cmd->id) != 0 ||
	    wrm_buf_puts(&body, "</rsp:CommandId></rsp:CommandResponse>") != 0)
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
	else
		reply_simple(op, A_SHELL "CommandResponse", wrm_buf_str(&body));
	wrm_buf_free(&body);
	free(id);
}

static uint64_t
max_commands(const struct wrm_shell *sh)
{
	const struct wrm_session_conf *sc = wrm_conf_session_by_name(D.conf,
	    sh->config);

	return sc != NULL ? sc->max_concurrent_commands_per_shell : UINT64_MAX;
}

void
wsman_command(struct wrm_op *op)
{
	const xmlNode *cl = op->soap.payload, *a;
	struct wrm_shell *sh;
	struct wrm_command *cmd;
	struct wrm_buf b;
	char *id, *line, *arg, *cid;
	uint32_t reqid;
	size_t st;
	int r;

	if ((sh = usable_shell(op)) == NULL)
		return;
	if (cl == NULL || !wrm_xml_is(cl, NS_SHELL, "CommandLine")) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return;
	}
	if (sh->n_cmds >= max_commands(sh)) {
		wrm_op_fault_msg(op, WRM_FAULT_QUOTA_OPERATIONS, 0,
		    "The WS-Management service cannot process the request "
		    "because the shell has reached its maximum number of "
		    "commands (MaxConcurrentCommandsPerShell). ");
		return;
	}
	id = wrm_xml_attr(cl, "CommandId");
	if (id == NULL) {
		if ((id = malloc(WRM_GUID_STRLEN + 1)) == NULL) {
			wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
			return;
		}
		wrm_guid_new(id);
	}
	if (wrm_command_find(sh, id) != NULL) {
		free(id);
		wrm_op_fault_msg(op, WRM_FAULT_INVALID_PARAMETER, 0,
		    "A command with this CommandId already exists. ");
		return;
	}
	line = wrm_xml_text(wrm_xml_child(cl, NS_SHELL, "Command"), false);
	if ((cmd = calloc(1, sizeof(*cmd))) == NULL ||
	    (cmd->id = strdup(id)) == NULL) {
		free(cmd);
		free(id);
		free(line);
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	cmd->command_line = line;
	cmd->shell = sh;
	cmd->next = sh->cmds;
	sh->cmds = cmd;
	sh->n_cmds++;
	reqid = wrm_host_next_reqid(sh->host);
	wrm_buf_init(&b, 0);
	r = wrm_hmsg_begin(&b, HM_COMMAND, reqid, &st);
	wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id);
	wrm_hmsg_put_str(&b, HT_COMMAND_ID, cmd->id);
	wrm_hmsg_put_str(&b, HT_COMMAND_LINE, line != NULL ? line : "");
	for (a = cl->children; a != NULL; a = a->next) {
		if (!wrm_xml_is(a, NS_SHELL, "Arguments"))
			continue;
		if ((arg = wrm_xml_text(a, true)) != NULL) {
			wrm_hmsg_put_str(&b, HT_ARG, arg);
			free(arg);
		}
	}
	put_options(&b, op);
	if (r == 0)
		r = wrm_hmsg_end(&b, st);
	cid = id;
	if (r == 0)
		r = op_host_request(op, sh, &b, reqid, command_done, free,
		    cid);
	wrm_buf_free(&b);
	if (r != 0) {
		free(cid);
		wrm_command_remove(cmd);
		wrm_op_fault_id(op, WRM_FAULT_SHELL_BROKEN);
	}
}

/* ---- Send ---- */

struct send_ctx {
	size_t pending;
	uint32_t first_err;
	char *first_msg;
};

static void
send_done(struct wrm_op *op, struct wrm_shell *sh, const struct wrm_hmsg *m,
    uint32_t err, const char *msg, void *arg)
{
	struct send_ctx *sc = arg;

	(void)m;
	if (err != 0 && sc->first_err == 0) {
		sc->first_err = err;
		sc->first_msg = wrm_strdup0(msg);
	}
	if (--sc->pending > 0) {
		if (op->state != WRM_OP_DONE)
			op->state = WRM_OP_WAITING;
		return;
	}
	if (sc->first_err != 0)
		fault_from_host(op, sc->first_err, sc->first_msg,
		    sh != NULL && sh->is_winrs);
	else
		reply_simple(op, A_SHELL "SendResponse", "<rsp:SendResponse/>");
	free(sc->first_msg);
	free(sc);
}

/* A stream's request ended without send_done (op gone, host died). */
static void
send_release(void *arg)
{
	struct send_ctx *sc = arg;

	if (--sc->pending > 0)
		return;
	free(sc->first_msg);
	free(sc);
}

static bool
stream_declared(const char *list, const char *name)
{
	const char *p = list;
	size_t n = strlen(name);

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		if (strncasecmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '\0'))
			return true;
		p = strchr(p, ' ');
	}
	return false;
}

/* Decode one rsp:Stream's content (base64, then xpress when on). */
static int
stream_payload(const struct wrm_shell *sh, const xmlNode *s, uint8_t **data_r,
    size_t *len_r)
{
	char *text = wrm_xml_text(s, true);
	uint8_t *raw;
	size_t tl, rl;
	int r;

	*data_r = NULL;
	*len_r = 0;
	if (text == NULL)
		return WRM_ERR_ALLOC;
	tl = strlen(text);
	if ((raw = malloc(tl / 4 * 3 + 3)) == NULL) {
		free(text);
		return WRM_ERR_ALLOC;
	}
	r = wrm_b64_decode(text, tl, raw, &rl);
	free(text);
	if (r != 0) {
		free(raw);
		return r;
	}
	if (sh->compression && rl > 0) {
		r = wrm_xpress_frame_decode(raw, rl, data_r, len_r,
		    wrm_max_envelope() * 64);
		free(raw);
		return r == 0 ? 0 : WRM_ERR_PARSE;
	}
	*data_r = raw;
	*len_r = rl;
	return 0;
}

void
wsman_send(struct wrm_op *op)
{
	const xmlNode *body = op->soap.payload, *s;
	struct wrm_shell *sh;
	struct send_ctx *sc;
	struct wrm_buf b;
	char *name, *cid, *end;
	uint8_t *data;
	size_t len, st, n = 0;
	uint32_t reqid;
	int r = 0;

	if ((sh = usable_shell(op)) == NULL)
		return;
	if (body == NULL || !wrm_xml_is(body, NS_SHELL, "Send")) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return;
	}
	/* Validate every stream before sending any. */
	for (s = body->children; s != NULL; s = s->next) {
		if (!wrm_xml_is(s, NS_SHELL, "Stream"))
			continue;
		name = wrm_xml_attr(s, "Name");
		cid = wrm_xml_attr(s, "CommandId");
		if (name == NULL || !stream_declared(sh->input_streams, name))
			r = WRM_ERR_PARSE;
		else if (cid != NULL && wrm_command_find(sh, cid) == NULL)
			r = WRM_ERR_NOT_FOUND;
		free(name);
		free(cid);
		if (r != 0)
			break;
		n++;
	}
	if (r == WRM_ERR_PARSE) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_STREAM);
		return;
	}
	if (r == WRM_ERR_NOT_FOUND) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_COMMAND);
		return;
	}
	if (n == 0) {
		reply_simple(op, A_SHELL "SendResponse", "<rsp:SendResponse/>");
		return;
	}
	if ((sc = calloc(1, sizeof(*sc))) == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	sc->pending = n;
	for (s = body->children; s != NULL; s = s->next) {
		if (!wrm_xml_is(s, NS_SHELL, "Stream"))
			continue;
		if (stream_payload(sh, s, &data, &len) != 0) {
			if (sc->first_err == 0)
				sc->first_err = WRM_ERROR_INVALID_PARAMETER;
			if (--sc->pending == 0) {
				free(sc);
				wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
				return;
			}
			continue;
		}
		name = wrm_xml_attr(s, "Name");
		cid = wrm_xml_attr(s, "CommandId");
		end = wrm_xml_attr(s, "End");
		reqid = wrm_host_next_reqid(sh->host);
		wrm_buf_init(&b, 0);
		r = wrm_hmsg_begin(&b, HM_SEND, reqid, &st);
		wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id);
		wrm_hmsg_put_str(&b, HT_COMMAND_ID, cid);
		wrm_hmsg_put_str(&b, HT_STREAM, name);
		wrm_hmsg_put(&b, HT_DATA, data, len);
		wrm_hmsg_put_u64(&b, HT_END, wrm_parse_bool(end) == 1);
		put_options(&b, op);
		free(name);
		free(cid);
		free(end);
		free(data);
		if (r == 0)
			r = wrm_hmsg_end(&b, st);
		if (r == 0)
			r = op_host_request(op, sh, &b, reqid, send_done,
			    send_release, sc);
		wrm_buf_free(&b);
		if (r != 0) {
			/* The host is gone: its close handler answers. */
			if (--sc->pending == 0) {
				free(sc);
				wrm_op_fault_id(op, WRM_FAULT_SHELL_BROKEN);
			}
			return;
		}
	}
}

/* ---- Signal ---- */

static bool
code_is(const char *code, const char *what)
{
	size_t n = strlen(code), k = strlen(what);

	return n >= k && strcasecmp(code + n - k, what) == 0 &&
	    (n == k || code[n - k - 1] == '/');
}

static void
signal_done(struct wrm_op *op, struct wrm_shell *sh, const struct wrm_hmsg *m,
    uint32_t err, const char *msg, void *arg)
{
	char *cid = arg;
	struct wrm_command *cmd;

	(void)m;
	if (err != 0) {
		fault_from_host(op, err, msg, sh != NULL && sh->is_winrs);
		free(cid);
		return;
	}
	if (sh != NULL && cid != NULL && op->soap.payload != NULL) {
		char *code = wrm_xml_text(wrm_xml_child(op->soap.payload,
		    NS_SHELL, "Code"), false);

		if (code != NULL && code_is(code, "terminate") &&
		    (cmd = wrm_command_find(sh, cid)) != NULL)
			wrm_command_remove(cmd);
		free(code);
	}
	reply_simple(op, A_SHELL "SignalResponse", "<rsp:SignalResponse/>");
	free(cid);
}

void
wsman_signal(struct wrm_op *op)
{
	const xmlNode *body = op->soap.payload;
	struct wrm_shell *sh;
	struct wrm_buf b;
	char *cid, *code;
	uint32_t reqid;
	size_t st;
	int r;

	if ((sh = usable_shell(op)) == NULL)
		return;
	if (body == NULL || !wrm_xml_is(body, NS_SHELL, "Signal")) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return;
	}
	code = wrm_xml_text(wrm_xml_child(body, NS_SHELL, "Code"), false);
	cid = wrm_xml_attr(body, "CommandId");
	if (code == NULL || code[0] == '\0') {
		free(code);
		free(cid);
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return;
	}
	if (cid != NULL && wrm_command_find(sh, cid) == NULL) {
		free(code);
		free(cid);
		wrm_op_fault_id(op, WRM_FAULT_INVALID_COMMAND);
		return;
	}
	reqid = wrm_host_next_reqid(sh->host);
	wrm_buf_init(&b, 0);
	r = wrm_hmsg_begin(&b, HM_SIGNAL, reqid, &st);
	wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id);
	wrm_hmsg_put_str(&b, HT_COMMAND_ID, cid);
	wrm_hmsg_put_str(&b, HT_CODE, code);
	put_options(&b, op);
	free(code);
	if (r == 0)
		r = wrm_hmsg_end(&b, st);
	if (r == 0)
		r = op_host_request(op, sh, &b, reqid, signal_done, free,
		    cid);
	wrm_buf_free(&b);
	if (r != 0) {
		free(cid);
		wrm_op_fault_id(op, WRM_FAULT_SHELL_BROKEN);
	}
}
