/*
 * Disconnect, Reconnect and Connect (MS-WSMV 3.1.4.15-17), for PSRP and
 * WinRS shells alike.
 *
 *	CONNECTED --Disconnect--> DISCONNECTED --Reconnect/Connect--> CONNECTED
 *	CONNECTED --no client activity for IdleTimeOut (PSRP)--> DISCONNECTED
 *	DISCONNECTED --IdleTimeOut without a client--> (deleted, audited)
 *
 * The output a shell produces while disconnected stays in its host, which
 * holds it (BufferMode Block: the plugin is paused when the buffer is
 * full) or keeps only the newest (Drop).  Connect, by a new client, goes
 * to the plugin, which answers with the connect response (PSRP: the
 * session capability and the pool's runspace counts); Reconnect, by the
 * client that disconnected, needs nothing from it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "conf.h"
#include "err.h"
#include "log.h"
#include "misc.h"
#include "ns.h"
#include "shell.h"
#include "soap.h"
#include "wsman.h"

#define NS_PS	"http://schemas.microsoft.com/powershell"

static void
reply_empty(struct wrm_op *op, const char *action)
{
	if (wrm_soap_begin(&op->out, action, op->soap.message_id,
	    WRM_NS_P) != 0 || wrm_soap_end(&op->out) != 0) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	wrm_op_reply(op);
}

/* The CommandId of a command-level request (attribute or child). */
static char *
body_command_id(const struct wrm_op *op)
{
	const xmlNode *p = op->soap.payload, *c;
	char *id;

	if (p == NULL)
		return NULL;
	if ((id = wrm_xml_attr(p, "CommandId")) != NULL)
		return id;
	if ((c = wrm_xml_child(p, NS_SHELL, "CommandId")) != NULL)
		return wrm_xml_text(c, false);
	return NULL;
}

/* Tell the host a shell's buffering rule (Block or Drop) and state. */
static void
host_buffering(struct wrm_shell *sh, uint16_t type)
{
	struct wrm_buf b;
	size_t st;

	if (sh->host == NULL || sh->host->dead)
		return;
	wrm_buf_init(&b, 0);
	/* No reply wanted: request id 0. */
	if (wrm_hmsg_begin(&b, type, 0, &st) == 0 &&
	    wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id) == 0 &&
	    wrm_hmsg_put_str(&b, HT_NAME, sh->buffer_mode) == 0 &&
	    wrm_hmsg_end(&b, st) == 0)
		wrm_host_send_noreply(sh->host, &b);
	wrm_buf_free(&b);
}

void
wrm_shell_disconnected(struct wrm_shell *sh, const char *why)
{
	sh->state = WRM_SHELL_DISCONNECTED;
	wrm_shell_touch(sh);
	wrm_receive_release(sh);
	host_buffering(sh, HM_DISCONNECT);
	wrm_shell_store(sh);
	wrm_audit("SHELL_DISCONNECT", "shell=%s user=%s reason=%s "
	    "idle_timeout_ms=%llu buffer_mode=%s", sh->id, sh->owner, why,
	    (unsigned long long)sh->idle_timeout_ms, sh->buffer_mode);
}

static void
connected(struct wrm_op *op, struct wrm_shell *sh, const char *event)
{
	sh->state = WRM_SHELL_CONNECTED;
	free(sh->session_id);
	sh->session_id = wrm_strdup0(op->soap.session_id);
	free(sh->client_ip);
	sh->client_ip = wrm_strdup0(op->client_ip);
	wrm_shell_touch(sh);
	host_buffering(sh, HM_RECONNECT);
	wrm_shell_store(sh);
	wrm_audit(event, "shell=%s user=%s client=%s", sh->id, sh->owner,
	    op->client_ip);
}

void
wsman_disconnect(struct wrm_op *op)
{
	struct wrm_shell *sh;
	const xmlNode *n;
	uint64_t idle = 0;
	char *v;
	bool have_idle = false;

	if ((sh = wsman_op_shell(op)) == NULL)
		return;
	if (sh->state != WRM_SHELL_CONNECTED) {
		wrm_op_fault_id(op, WRM_FAULT_SHELL_DISCONNECTED);
		return;
	}
	if (op->soap.payload != NULL &&
	    (n = wrm_xml_child(op->soap.payload, NS_SHELL, "IdleTimeOut")) !=
	    NULL) {
		v = wrm_xml_text(n, false);
		if (v == NULL || wrm_duration_parse(v, &idle) != 0) {
			free(v);
			wrm_op_fault_msg(op, WRM_FAULT_INVALID_PARAMETER, 0,
			    "The IdleTimeOut of the Disconnect is not a "
			    "duration. ");
			return;
		}
		free(v);
		have_idle = true;
	}
	if (op->soap.payload != NULL &&
	    (n = wrm_xml_child(op->soap.payload, NS_SHELL, "BufferMode")) !=
	    NULL) {
		v = wrm_xml_text(n, false);
		if (v == NULL || (strcasecmp(v, "Block") != 0 &&
		    strcasecmp(v, "Drop") != 0)) {
			free(v);
			wrm_op_fault_msg(op, WRM_FAULT_INVALID_PARAMETER, 0,
			    "The BufferMode must be Block or Drop. ");
			return;
		}
		free(sh->buffer_mode);
		sh->buffer_mode = strdup(strcasecmp(v, "Drop") == 0 ? "Drop" :
		    "Block");
		free(v);
	}
	if (have_idle)
		sh->idle_timeout_ms = wrm_shell_clamp_idle(sh, idle);
	wrm_shell_disconnected(sh, "client");
	reply_empty(op, A_SHELL "DisconnectResponse");
}

/*
 * The configuration's permissions apply at Connect and Reconnect as at
 * Create: a user removed from it, or a configuration disabled, since the
 * shell was made no longer gets it back.  Faults op when refused.
 */
static bool
config_refuses(struct wrm_op *op, const struct wrm_shell *sh,
    const char *what)
{
	const struct wrm_session_conf *sc;

	sc = wrm_conf_session_by_name(D.conf, sh->config);
	if (sc == NULL || (sc->enabled &&
	    wrm_auth_session_allows(op->who, sc)))
		return false;
	wrm_audit("ACCESS_DENIED", "user=%s config=%s shell=%s "
	    "reason=\"the configuration refuses %s\"", op->who->user,
	    sh->config, sh->id, what);
	wrm_op_fault_id(op, WRM_FAULT_ACCESS_DENIED);
	return true;
}

void
wsman_reconnect(struct wrm_op *op)
{
	struct wrm_shell *sh;
	char *cid;

	if ((sh = wsman_op_shell(op)) == NULL)
		return;
	cid = body_command_id(op);
	if (cid != NULL && wrm_command_find(sh, cid) == NULL) {
		free(cid);
		wrm_op_fault_id(op, WRM_FAULT_INVALID_COMMAND);
		return;
	}
	free(cid);
	if (sh->state == WRM_SHELL_CONNECTED) {
		/* Windows answers a repeated Reconnect by its client. */
		if (sh->session_id != NULL && op->soap.session_id != NULL &&
		    strcasecmp(sh->session_id, op->soap.session_id) != 0) {
			wrm_op_fault_id(op, WRM_FAULT_ALREADY_CONNECTED);
			return;
		}
		reply_empty(op, A_SHELL "ReconnectResponse");
		return;
	}
	if (config_refuses(op, sh, "Reconnect"))
		return;
	connected(op, sh, "SHELL_RECONNECT");
	reply_empty(op, A_SHELL "ReconnectResponse");
}

struct connect_ctx {
	struct wrm_op *op;
	char *shell_id;
};

static void
connect_reply(struct wrm_host *h, const struct wrm_hmsg *m, void *arg)
{
	struct connect_ctx *cc = arg;
	struct wrm_op *op = cc->op;
	struct wrm_shell *sh;
	const struct wrm_hfield *d;
	char *msg = NULL, *b64 = NULL;
	uint32_t err = wrm_hreply_error(m, &msg);
	int r;

	(void)h;
	if (!wrm_op_host_reply_begin(op))
		goto out;
	sh = wrm_shell_find(cc->shell_id);
	if (sh == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_SELECTORS);
		goto out;
	}
	if (err != 0) {
		/* The plugin refused it: the shell stays as it was. */
		wrm_op_fault_msg(op, err == WRM_ERROR_NOT_SUPPORTED ?
		    WRM_FAULT_DISCONNECT_NOT_SUPPORTED :
		    wrm_fault_for_code(err), err, msg);
		goto out;
	}
	if (sh->state != WRM_SHELL_DISCONNECTED) {
		/* Another client connected meanwhile. */
		wrm_op_fault_id(op, WRM_FAULT_ALREADY_CONNECTED);
		goto out;
	}
	d = wrm_hmsg_get(m, HT_DATA);
	if (d != NULL && d->len > 0) {
		if ((b64 = malloc(wrm_b64_encoded_len(d->len) + 1)) == NULL) {
			wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
			goto out;
		}
		wrm_b64_encode(d->p, d->len, b64);
		b64[wrm_b64_encoded_len(d->len)] = '\0';
	}
	connected(op, sh, "SHELL_CONNECT");
	r = wrm_soap_begin(&op->out, A_SHELL "ConnectResponse",
	    op->soap.message_id, WRM_NS_RSP | WRM_NS_P);
	if (r == 0) r = wrm_buf_puts(&op->out, "<rsp:ConnectResponse>"
	    "<rsp:InputStreams>");
	if (r == 0) r = wrm_buf_put_xml(&op->out, sh->input_streams);
	if (r == 0) r = wrm_buf_puts(&op->out, "</rsp:InputStreams>"
	    "<rsp:OutputStreams>");
	if (r == 0) r = wrm_buf_put_xml(&op->out, sh->output_streams);
	if (r == 0) r = wrm_buf_puts(&op->out, "</rsp:OutputStreams>");
	if (r == 0 && b64 != NULL)
		r = wrm_buf_printf(&op->out, "<connectResponseXml xmlns=\""
		    NS_PS "\">%s</connectResponseXml>", b64);
	if (r == 0) r = wrm_buf_puts(&op->out, "</rsp:ConnectResponse>");
	if (r == 0) r = wrm_soap_end(&op->out);
	if (r != 0)
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
	else
		wrm_op_reply(op);
out:
	free(b64);
	free(msg);
	free(cc->shell_id);
	free(cc);
}

void
wsman_connect(struct wrm_op *op)
{
	struct wrm_shell *sh;
	struct connect_ctx *cc;
	struct wrm_buf b;
	const xmlNode *x;
	char *cid, *text = NULL;
	uint8_t *data = NULL;
	size_t dlen = 0, st;
	uint32_t reqid;
	int r;

	if ((sh = wsman_op_shell(op)) == NULL)
		return;
	cid = body_command_id(op);
	if (cid != NULL) {
		/* Command-level: the pool was connected; just resume it. */
		if (wrm_command_find(sh, cid) == NULL)
			wrm_op_fault_id(op, WRM_FAULT_INVALID_COMMAND);
		else if (sh->state != WRM_SHELL_CONNECTED)
			wrm_op_fault_id(op, WRM_FAULT_SHELL_DISCONNECTED);
		else {
			wrm_shell_touch(sh);
			if (wrm_soap_begin(&op->out, A_SHELL "ConnectResponse",
			    op->soap.message_id, WRM_NS_RSP | WRM_NS_P) != 0 ||
			    wrm_buf_puts(&op->out,
			    "<rsp:ConnectResponse/>") != 0 ||
			    wrm_soap_end(&op->out) != 0)
				wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
			else
				wrm_op_reply(op);
		}
		free(cid);
		return;
	}
	if (sh->state == WRM_SHELL_CONNECTED) {
		wrm_op_fault_id(op, WRM_FAULT_ALREADY_CONNECTED);
		return;
	}
	if (config_refuses(op, sh, "Connect"))
		return;
	if (sh->host == NULL || sh->host->dead) {
		wrm_op_fault_id(op, WRM_FAULT_SHELL_BROKEN);
		return;
	}
	if (op->soap.payload != NULL &&
	    (x = wrm_xml_child(op->soap.payload, NS_PS, "connectXml")) !=
	    NULL && (text = wrm_xml_text(x, false)) != NULL) {
		size_t tl = strlen(text);

		if ((data = malloc(tl / 4 * 3 + 3)) == NULL ||
		    wrm_b64_decode(text, tl, data, &dlen) != 0) {
			free(text);
			free(data);
			wrm_op_fault_msg(op, WRM_FAULT_INVALID_PARAMETER, 0,
			    "connectXml is not base64. ");
			return;
		}
		free(text);
	}
	if ((cc = calloc(1, sizeof(*cc))) == NULL ||
	    (cc->shell_id = strdup(sh->id)) == NULL) {
		free(cc);
		free(data);
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	cc->op = op;
	reqid = wrm_host_next_reqid(sh->host);
	wrm_buf_init(&b, 0);
	r = wrm_hmsg_begin(&b, HM_CONNECT, reqid, &st);
	if (r == 0) r = wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id);
	if (r == 0 && dlen > 0) r = wrm_hmsg_put(&b, HT_DATA, data, dlen);
	if (r == 0) r = wrm_put_request_options(&b, op);
	if (r == 0) r = wrm_hmsg_end(&b, st);
	free(data);
	free(op->delivery_shell);
	op->delivery_shell = strdup(sh->id);
	if (r != 0) {
		wrm_buf_free(&b);
		free(cc->shell_id);
		free(cc);
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	wrm_op_host_request_sent(op);
	wrm_host_request(sh->host, &b, reqid, connect_reply, cc);
	wrm_buf_free(&b);
}
