/*
 * Receive: the long poll.
 *
 * A Receive pulls whatever output its host holds for the target (a command,
 * or the shell itself for PowerShell's pool stream).  With nothing to send
 * it parks: the connection stays suspended, a timer runs, and the host's
 * EV_OUTPUT event makes it pull again.  The timer answers with the
 * w:TimedOut fault a second before the client's own deadline; clients
 * then poll again.  Output taken by a pull stays in the host until the
 * HTTP response that carries it was written (COMMIT); if writing fails it
 * goes back (ROLLBACK) and the next Receive gets it again.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "log.h"
#include "misc.h"
#include "ns.h"
#include "shell.h"
#include "wsman.h"
#include "xpress.h"

#define HOST_DIED_CODE		0xffffffffu
#define ENVELOPE_OVERHEAD	1536
#define STREAM_OVERHEAD		200

static void pull(struct wrm_op *op);

static struct wrm_op **
park_slot(struct wrm_op *op)
{
	if (op->shell == NULL)
		return NULL;
	return op->cmd != NULL ? &op->cmd->parked : &op->shell->parked;
}

void
wsman_receive_unpark(struct wrm_op *op)
{
	struct wrm_op **slot;

	wrm_timer_cancel(op->timer);
	op->timer = NULL;
	if (op->parked && (slot = park_slot(op)) != NULL && *slot == op)
		*slot = NULL;
	op->parked = false;
	op->shell = NULL;
	op->cmd = NULL;
}

static void
timed_out(void *arg)
{
	struct wrm_op *op = arg;

	op->timer = NULL;
	if (op->pull_in_flight) {
		/* Let the pull's answer decide: data beats a time-out. */
		op->cancelled = true;
		return;
	}
	wrm_op_fault_id(op, WRM_FAULT_TIMED_OUT);
}

/* When to give up: a second before the client would. */
static uint64_t
park_ms(const struct wrm_op *op)
{
	uint64_t t = op->timeout_ms, elapsed = wrm_now_ms() - op->started;

	t = t > 2000 ? t - 1000 : t * 3 / 4;
	if (t < 500)
		t = 500;
	return t > elapsed ? t - elapsed : 1;
}

static int
put_stream(struct wrm_buf *b, const char *name, const char *cid,
    const uint8_t *data, size_t len, bool compress)
{
	uint8_t *frame = NULL;
	size_t flen;
	int r;

	r = wrm_buf_puts(b, "<rsp:Stream Name=\"");
	if (r == 0) r = wrm_buf_put_xml(b, name);
	if (r == 0 && cid != NULL) {
		r = wrm_buf_puts(b, "\" CommandId=\"");
		if (r == 0) r = wrm_buf_put_xml(b, cid);
	}
	if (r == 0) r = wrm_buf_puts(b, "\">");
	if (r == 0 && len > 0) {
		if (compress) {
			if (wrm_xpress_frame_encode(data, len, 0, &frame,
			    &flen) != 0)
				return WRM_ERR_ALLOC;
			r = wrm_buf_put_b64(b, frame, flen);
			free(frame);
		} else
			r = wrm_buf_put_b64(b, data, len);
	}
	if (r == 0) r = wrm_buf_puts(b, "</rsp:Stream>");
	return r;
}

static int
put_state(struct wrm_buf *b, const char *cid, uint64_t state, uint64_t code)
{
	static const char *const names[] = { NULL, "Running", "Pending",
	    "Done" };
	int r;

	if (cid == NULL || state == 0 || state > 3)
		return 0;
	r = wrm_buf_puts(b, "<rsp:CommandState CommandId=\"");
	if (r == 0) r = wrm_buf_put_xml(b, cid);
	if (r == 0) r = wrm_buf_printf(b, "\" State=\"" URI_SHELL_STATE
	    "%s\">", names[state]);
	if (r == 0 && state == 3)
		r = wrm_buf_printf(b, "<rsp:ExitCode>%llu</rsp:ExitCode>",
		    (unsigned long long)code);
	if (r == 0) r = wrm_buf_puts(b, "</rsp:CommandState>");
	return r;
}

/* End every output stream (WinRS final response). */
static int
put_ends(struct wrm_buf *b, const char *streams, const char *cid)
{
	char *copy = strdup(streams != NULL ? streams : "stdout"), *s, *save;
	int r = 0;

	if (copy == NULL)
		return WRM_ERR_ALLOC;
	for (s = strtok_r(copy, " ", &save); s != NULL && r == 0;
	    s = strtok_r(NULL, " ", &save)) {
		r = wrm_buf_puts(b, "<rsp:Stream Name=\"");
		if (r == 0) r = wrm_buf_put_xml(b, s);
		if (r == 0 && cid != NULL) {
			r = wrm_buf_puts(b, "\" CommandId=\"");
			if (r == 0) r = wrm_buf_put_xml(b, cid);
		}
		if (r == 0) r = wrm_buf_puts(b, "\" End=\"true\"></rsp:Stream>");
	}
	free(copy);
	return r;
}

/* Build the ReceiveResponse from a pull reply that carried chunks. */
static int
build_response(struct wrm_op *op, struct wrm_shell *sh,
    const struct wrm_hmsg *m)
{
	const char *cid = op->delivery_cmd;
	const char *stream = NULL;
	uint64_t state = wrm_hmsg_u64(m, HT_STATE, 0);
	uint64_t flags = wrm_hmsg_u64(m, HT_FLAGS, 0);
	char *sname = NULL;
	size_t i;
	int r;

	r = wrm_soap_begin(&op->out, A_SHELL "ReceiveResponse",
	    op->soap.message_id, WRM_NS_RSP | WRM_NS_P);
	if (r == 0) r = wrm_buf_puts(&op->out, "<rsp:ReceiveResponse>");
	for (i = 0; r == 0 && i < m->n; i++) {
		if (m->f[i].tag == HT_CHUNK_STREAM) {
			free(sname);
			sname = wrm_hfield_str(&m->f[i]);
			stream = sname;
		} else if (m->f[i].tag == HT_CHUNK_DATA && stream != NULL &&
		    m->f[i].len > 0)
			r = put_stream(&op->out, stream, cid, m->f[i].p,
			    m->f[i].len, sh->compression);
	}
	free(sname);
	if (r == 0 && state == WRM_COMMAND_STATE_DONE &&
	    (flags & WRM_RESULT_END_STREAMS) && cid != NULL)
		r = put_ends(&op->out, sh->output_streams, cid);
	if (r == 0)
		r = put_state(&op->out, cid, state,
		    wrm_hmsg_u64(m, HT_EXIT_CODE, 0));
	if (r == 0) r = wrm_buf_puts(&op->out, "</rsp:ReceiveResponse>");
	if (r == 0) r = wrm_soap_end(&op->out);
	return r;
}

struct pull_ctx {
	struct wrm_op *op;
	uint64_t delivery;
	char *shell_id;
	char *cmd_id;
};

static void
rollback(const char *shell_id, const char *cmd_id, uint64_t delivery)
{
	struct wrm_shell *sh = wrm_shell_find(shell_id);
	struct wrm_buf b;
	size_t st;

	if (sh == NULL || sh->host == NULL)
		return;
	wrm_buf_init(&b, 0);
	if (wrm_hmsg_begin(&b, HM_ROLLBACK, 0, &st) == 0 &&
	    wrm_hmsg_put_str(&b, HT_SHELL_ID, shell_id) == 0 &&
	    wrm_hmsg_put_str(&b, HT_COMMAND_ID, cmd_id) == 0 &&
	    wrm_hmsg_put_u64(&b, HT_DELIVERY, delivery) == 0 &&
	    wrm_hmsg_end(&b, st) == 0)
		wrm_host_send_noreply(sh->host, &b);
	wrm_buf_free(&b);
}

static void
pull_ctx_free(struct pull_ctx *pc)
{
	free(pc->shell_id);
	free(pc->cmd_id);
	free(pc);
}

static void
park(struct wrm_op *op, struct wrm_shell *sh, struct wrm_command *cmd)
{
	struct wrm_op **slot = cmd != NULL ? &cmd->parked : &sh->parked;

	if (*slot != NULL && *slot != op)
		wrm_op_fault_id(*slot, WRM_FAULT_TIMED_OUT);
	op->shell = sh;
	op->cmd = cmd;
	op->parked = true;
	*slot = op;
	if (op->timer == NULL)
		wrm_timer_add(D.loop, park_ms(op), timed_out, op, &op->timer);
}

static void
pull_reply(struct wrm_host *h, const struct wrm_hmsg *m, void *arg)
{
	struct pull_ctx *pc = arg;
	struct wrm_op *op = pc->op;
	struct wrm_shell *sh;
	struct wrm_command *cmd = NULL;
	char *msg = NULL;
	uint32_t err = wrm_hreply_error(m, &msg);
	bool has_data = wrm_hmsg_get(m, HT_STATE) != NULL;

	(void)h;
	if (!wrm_op_host_reply_begin(op)) {
		if (has_data)
			rollback(pc->shell_id, pc->cmd_id, pc->delivery);
		free(msg);
		pull_ctx_free(pc);
		return;
	}
	op->pull_in_flight = false;
	sh = wrm_shell_find(pc->shell_id);
	if (sh != NULL && pc->cmd_id != NULL)
		cmd = wrm_command_find(sh, pc->cmd_id);
	if (op->state == WRM_OP_DONE) {
		/* Answered meanwhile (deleted, superseded). */
		if (has_data)
			rollback(pc->shell_id, pc->cmd_id, pc->delivery);
	} else if (err == HOST_DIED_CODE || sh == NULL) {
		wrm_op_fault_id(op, sh != NULL ? WRM_FAULT_SHELL_BROKEN :
		    WRM_FAULT_INVALID_SELECTORS);
	} else if (err != 0 && err != WRM_ERROR_INVALID_SELECTORS) {
		/*
		 * The plugin failed the command (its error, as a fault) or
		 * the shell's own output (the shell is broken).
		 */
		if (cmd != NULL)
			cmd->state = WRM_CMD_DONE;
		else if (pc->cmd_id == NULL)
			wrm_shell_broken(sh);
		wrm_op_fault_msg(op, wrm_fault_for_code(err), err,
		    msg != NULL && *msg != '\0' ? msg : NULL);
	} else if (err != 0 || (pc->cmd_id != NULL && cmd == NULL)) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_COMMAND);
	} else if (has_data) {
		op->delivery = pc->delivery;
		if (build_response(op, sh, m) != 0) {
			wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		} else {
			if (cmd != NULL && wrm_hmsg_u64(m, HT_STATE, 0) ==
			    WRM_COMMAND_STATE_DONE)
				cmd->state = WRM_CMD_DONE;
			wrm_shell_touch(sh);
			wrm_op_reply(op);
		}
	} else if (op->cancelled) {
		wrm_op_fault_id(op, WRM_FAULT_TIMED_OUT);
	} else {
		park(op, sh, cmd);
	}
	free(msg);
	pull_ctx_free(pc);
}

static void
pull(struct wrm_op *op)
{
	struct wrm_shell *sh = wrm_shell_find(op->delivery_shell);
	struct pull_ctx *pc;
	struct wrm_buf b;
	uint64_t budget = op->max_envelope;
	uint32_t reqid;
	size_t st;
	int r;

	if (sh == NULL || sh->host == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_SELECTORS);
		return;
	}
	if (op->utf16)
		budget /= 2;
	budget = budget > ENVELOPE_OVERHEAD + 4096 ?
	    budget - ENVELOPE_OVERHEAD : 4096;
	if ((pc = calloc(1, sizeof(*pc))) == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	pc->op = op;
	pc->delivery = ++D.next_delivery;
	pc->shell_id = strdup(sh->id);
	pc->cmd_id = wrm_strdup0(op->delivery_cmd);
	reqid = wrm_host_next_reqid(sh->host);
	wrm_buf_init(&b, 0);
	r = wrm_hmsg_begin(&b, HM_PULL, reqid, &st);
	if (r == 0) r = wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id);
	if (r == 0) r = wrm_hmsg_put_str(&b, HT_COMMAND_ID, op->delivery_cmd);
	if (r == 0) r = wrm_hmsg_put_u64(&b, HT_BUDGET, budget);
	if (r == 0) r = wrm_hmsg_put_u64(&b, HT_CHUNK_OVERHEAD,
	    STREAM_OVERHEAD + (sh->compression ? 64 : 0));
	if (r == 0) r = wrm_hmsg_put_u64(&b, HT_DELIVERY, pc->delivery);
	if (r == 0) r = wrm_hmsg_end(&b, st);
	if (r != 0) {
		wrm_buf_free(&b);
		pull_ctx_free(pc);
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	op->pull_in_flight = true;
	wrm_op_host_request_sent(op);
	wrm_host_request(sh->host, &b, reqid, pull_reply, pc);
	wrm_buf_free(&b);
}

void
wsman_receive(struct wrm_op *op)
{
	const xmlNode *body = op->soap.payload, *ds;
	struct wrm_shell *sh;
	struct wrm_command *cmd = NULL;
	char *cid;

	if ((sh = wsman_op_shell(op)) == NULL)
		return;
	if (sh->state == WRM_SHELL_DISCONNECTED) {
		wrm_op_fault_id(op, WRM_FAULT_SHELL_DISCONNECTED);
		return;
	}
	if (body == NULL || !wrm_xml_is(body, NS_SHELL, "Receive")) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return;
	}
	ds = wrm_xml_child(body, NS_SHELL, "DesiredStream");
	cid = ds != NULL ? wrm_xml_attr(ds, "CommandId") : NULL;
	if (cid == NULL && sh->is_winrs) {
		wrm_op_fault_id(op, WRM_FAULT_RECEIVE_NO_COMMAND);
		return;
	}
	if (cid != NULL && (cmd = wrm_command_find(sh, cid)) == NULL) {
		free(cid);
		wrm_op_fault_id(op, WRM_FAULT_INVALID_COMMAND);
		return;
	}
	free(cid);
	wrm_shell_touch(sh);
	free(op->delivery_shell);
	op->delivery_shell = strdup(sh->id);
	free(op->delivery_cmd);
	op->delivery_cmd = cmd != NULL ? strdup(cmd->id) : NULL;
	/* A newer Receive for the same target replaces a parked one. */
	park(op, sh, cmd);
	pull(op);
}

void
wrm_receive_output_ready(struct wrm_shell *sh, struct wrm_command *cmd)
{
	struct wrm_op *op = cmd != NULL ? cmd->parked : sh->parked;

	if (op == NULL || op->pull_in_flight || op->state == WRM_OP_DONE)
		return;
	pull(op);
}

static void
release_one(struct wrm_op *op)
{
	if (op == NULL)
		return;
	if (op->pull_in_flight)
		op->cancelled = true;	/* data, if any, still goes out */
	else
		wrm_op_fault_id(op, WRM_FAULT_TIMED_OUT);
}

void
wrm_receive_release(struct wrm_shell *sh)
{
	struct wrm_command *c;

	for (c = sh->cmds; c != NULL; c = c->next)
		release_one(c->parked);
	release_one(sh->parked);
}

void
wrm_receive_shell_gone(struct wrm_shell *sh)
{
	enum wrm_fault f = sh->state == WRM_SHELL_BROKEN ?
	    WRM_FAULT_SHELL_BROKEN : WRM_FAULT_INVALID_SELECTORS;
	struct wrm_command *c;

	for (c = sh->cmds; c != NULL; c = c->next)
		if (c->parked != NULL)
			wrm_op_fault_id(c->parked, f);
	if (sh->parked != NULL)
		wrm_op_fault_id(sh->parked, f);
}
