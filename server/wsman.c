#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include "err.h"
#include "http.h"
#include "log.h"
#include "misc.h"
#include "ns.h"
#include "shell.h"
#include "inject.h"
#include "wsman.h"

/* What the dispatch table knows about an action. */
#define ACT_SHELL	0x1u	/* names a shell: log its id */

struct action {
	const char *uri;
	const char *name;
	void (*fn)(struct wrm_op *op);
	unsigned flags;
};

static const struct action actions[] = {
	{ A_TRANSFER "Get", "Get", wsman_get, 0 },
	{ A_TRANSFER "Put", "Put", wsman_put, 0 },
	{ A_TRANSFER "Create", "Create", wsman_create, 0 },
	{ A_TRANSFER "Delete", "Delete", wsman_delete, ACT_SHELL },
	{ A_SHELL "Command", "Command", wsman_command, ACT_SHELL },
	{ A_SHELL "Send", "Send", wsman_send, ACT_SHELL },
	{ A_SHELL "Receive", "Receive", wsman_receive, ACT_SHELL },
	{ A_SHELL "Signal", "Signal", wsman_signal, ACT_SHELL },
	{ A_SHELL "Disconnect", "Disconnect", wsman_disconnect, ACT_SHELL },
	{ A_SHELL "Reconnect", "Reconnect", wsman_reconnect, ACT_SHELL },
	{ A_SHELL "Connect", "Connect", wsman_connect, ACT_SHELL },
	{ A_ENUM "Enumerate", "Enumerate", wsman_enumerate, 0 },
	{ A_ENUM "Pull", "Pull", wsman_pull, 0 },
	{ A_ENUM "Release", "Release", wsman_release, 0 },
};

struct wrm_op *
wsman_op_new(struct wrm_http_req *http, const struct wrm_identity *who,
    const char *client_ip, const char *listener_url, bool utf16)
{
	struct wrm_op *op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->http = http;
	op->who = who;
	op->client_ip = client_ip;
	op->listener_url = strdup(listener_url);
	op->utf16 = utf16;
	op->max_envelope = wrm_max_envelope();
	op->timeout_ms = D.conf->service.max_timeout_ms;
	op->started = wrm_now_ms();
	wrm_buf_init(&op->out, 0);
	return op;
}

/*
 * Operations in progress per user (MaxConcurrentOperationsPerUser): from
 * dispatch until answered (a parked Receive counts while it waits).
 */
struct user_ops {
	char *user;
	uint64_t n;
	struct user_ops *next;
};

static struct user_ops *user_ops;

static struct user_ops *
user_ops_get(const char *user, bool create)
{
	struct user_ops *u;

	for (u = user_ops; u != NULL; u = u->next)
		if (strcmp(u->user, user) == 0)
			return u;
	if (!create || (u = calloc(1, sizeof(*u))) == NULL)
		return NULL;
	if ((u->user = strdup(user)) == NULL) {
		free(u);
		return NULL;
	}
	u->next = user_ops;
	user_ops = u;
	return u;
}

static void
op_uncount(struct wrm_op *op)
{
	struct user_ops *u, **pp;

	if (op->counted_user == NULL)
		return;
	if ((u = user_ops_get(op->counted_user, false)) != NULL &&
	    u->n > 0 && --u->n == 0) {
		for (pp = &user_ops; *pp != u; pp = &(*pp)->next)
			;
		*pp = u->next;
		free(u->user);
		free(u);
	}
	free(op->counted_user);
	op->counted_user = NULL;
}

/* Count op for its user; false when that passes the quota. */
static bool
op_count(struct wrm_op *op)
{
	struct user_ops *u = user_ops_get(op->who->user, true);

	if (u == NULL)
		return true;
	if (u->n >= D.conf->service.max_concurrent_operations_per_user)
		return false;
	u->n++;
	op->counted_user = strdup(op->who->user);
	if (op->counted_user == NULL)
		u->n--;
	return true;
}

static void
op_destroy(struct wrm_op *op)
{
	op_uncount(op);
	wrm_soap_req_free(&op->soap);
	wrm_buf_free(&op->out);
	free((char *)op->listener_url);
	free(op->delivery_cmd);
	free(op->delivery_shell);
	free(op);
}

void
wsman_op_free(struct wrm_op *op)
{
	if (op == NULL)
		return;
	wsman_receive_unpark(op);
	op->http = NULL;
	if (op->host_pending > 0) {
		/* Freed when the last host reply arrives. */
		op->orphaned = true;
		return;
	}
	op_destroy(op);
}

void
wrm_op_host_request_sent(struct wrm_op *op)
{
	op->host_pending++;
	op->state = WRM_OP_WAITING;
}

bool
wrm_op_host_reply_begin(struct wrm_op *op)
{
	if (op->host_pending > 0)
		op->host_pending--;
	if (!op->orphaned)
		return true;
	if (op->host_pending == 0)
		op_destroy(op);
	return false;
}

static void
finish(struct wrm_op *op)
{
	op->state = WRM_OP_DONE;
	op_uncount(op);
	wsman_receive_unpark(op);
	wrm_http_op_done(op);
}

void
wrm_op_reply(struct wrm_op *op)
{
	struct wrm_fault_info fi = { .id = WRM_FAULT_ENCODING_LIMIT };

	if (op->state == WRM_OP_DONE)
		return;
	if (wrm_buf_len(&op->out) > op->max_envelope &&
	    op->http_status < 400) {
		wrm_op_fault(op, &fi);
		return;
	}
	if (op->http_status == 0)
		op->http_status = 200;
	finish(op);
}

void
wrm_op_fault(struct wrm_op *op, const struct wrm_fault_info *fi)
{
	int r;

	if (op->state == WRM_OP_DONE)
		return;
	/* Output that was taken for this response goes back. */
	if (op->delivery != 0)
		wsman_op_finished(op, false);
	wrm_buf_reset(&op->out);
	r = wrm_soap_fault(&op->out, fi, op->soap.message_id, D.machine);
	if (r != 0)
		wrm_buf_reset(&op->out);
	op->http_status = 500;
	if (fi->id != WRM_FAULT_TIMED_OUT)
		verbose("fault %s (%s) for %s", wrm_fault_name(fi->id),
		    fi->message ? fi->message : wrm_fault_def(fi->id)->reason,
		    op->soap.action ? op->soap.action : "request");
	finish(op);
}

void
wrm_op_fault_id(struct wrm_op *op, enum wrm_fault id)
{
	struct wrm_fault_info fi = { .id = id };

	wrm_op_fault(op, &fi);
}

void
wrm_op_fault_msg(struct wrm_op *op, enum wrm_fault id, uint32_t code,
    const char *message)
{
	struct wrm_fault_info fi = { .id = id, .code = code,
	    .message = message };

	wrm_op_fault(op, &fi);
}

void
wsman_op_abort(struct wrm_op *op)
{
	wrm_op_fault_id(op, WRM_FAULT_SERVICE_STOPPING);
}

void
wsman_op_finished(struct wrm_op *op, bool ok)
{
	struct wrm_shell *sh;
	struct wrm_buf b;
	size_t st;

	if (op->delivery == 0)
		return;
	sh = wrm_shell_find(op->delivery_shell);
	if (sh != NULL && sh->host != NULL) {
		wrm_buf_init(&b, 0);
		if (wrm_hmsg_begin(&b, ok ? HM_COMMIT : HM_ROLLBACK, 0,
		    &st) == 0 &&
		    wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id) == 0 &&
		    wrm_hmsg_put_str(&b, HT_COMMAND_ID, op->delivery_cmd) == 0 &&
		    wrm_hmsg_put_u64(&b, HT_DELIVERY, op->delivery) == 0 &&
		    wrm_hmsg_end(&b, st) == 0)
			wrm_host_send_noreply(sh->host, &b);
		wrm_buf_free(&b);
		if (!ok)
			debug("response for shell %s not delivered; output "
			    "kept for the next Receive", sh->id);
	}
	op->delivery = 0;
}

/*
 * Options a client may mark MustComply: those winrmd implements.  Any
 * other with MustComply is refused as Windows does ([WSMV <50>]); without
 * MustComply unknown options are ignored.
 */
static bool inject(struct wrm_op *op);

/* Put: only winrm/config resources can be changed. */
void
wsman_put(struct wrm_op *op)
{
	if (!wsman_config_put(op))
		wrm_op_fault_id(op, WRM_FAULT_ACTION_NOT_SUPPORTED);
}

static bool
bad_options(struct wrm_op *op)
{
	static const char *const known[] = {
		"WINRS_NOPROFILE", "WINRS_CODEPAGE", "WINRS_CONSOLEMODE_STDIN",
		"WINRS_SKIP_CMD_SHELL", "WSMAN_CMDSHELL_OPTION_KEEPALIVE",
		"protocolversion", NULL
	};
	const char *name;
	size_t i, k;

	for (i = 0; i < op->soap.n_options; i++) {
		if (!op->soap.options[i].must_comply)
			continue;
		name = op->soap.options[i].name ? op->soap.options[i].name : "";
		for (k = 0; known[k] != NULL; k++)
			if (strcasecmp(name, known[k]) == 0)
				break;
		if (known[k] == NULL) {
			verbose("option %s with MustComply is not supported",
			    name);
			return true;
		}
	}
	return false;
}

void
wsman_dispatch(struct wrm_op *op, const uint8_t *body, size_t len)
{
	const struct action *a = NULL;
	struct wrm_log_ctx ctx;
	struct wrm_fault_info fi;
	size_t i;
	int r;

	if ((r = wrm_soap_parse(body, len, op->utf16, &op->soap)) != 0) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	if (op->soap.fault != WRM_FAULT_NONE) {
		memset(&fi, 0, sizeof(fi));
		fi.id = op->soap.fault;
		fi.message = op->soap.fault_message;
		wrm_op_fault(op, &fi);
		return;
	}
	if (op->soap.is_identify) {
		op->action_name = "Identify";
		if (!inject(op))
			wsman_identify(op);
		return;
	}
	if (op->who == NULL || op->who->user == NULL || op->who->denied) {
		/* Only Identify runs unauthenticated or unauthorised. */
		wrm_op_fault_id(op, WRM_FAULT_ACCESS_DENIED);
		return;
	}
	if (op->soap.has_timeout && op->soap.operation_timeout_ms <
	    op->timeout_ms)
		op->timeout_ms = op->soap.operation_timeout_ms;
	if (op->soap.max_envelope_size != 0 &&
	    op->soap.max_envelope_size < op->max_envelope)
		op->max_envelope = op->soap.max_envelope_size;
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (strcmp(op->soap.action, actions[i].uri) == 0) {
			a = &actions[i];
			break;
		}
	memset(&ctx, 0, sizeof(ctx));
	ctx.client = op->client_ip;
	ctx.user = op->who->user;
	ctx.shell = wrm_soap_selector(&op->soap, "ShellId");
	ctx.action = a != NULL ? a->name : "unknown";
	wrm_log_ctx_set(&ctx);
	debug2_f("%s", op->soap.action);
	if (a != NULL)
		op->action_name = a->name;
	if (a == NULL)
		wrm_op_fault_id(op, WRM_FAULT_ACTION_NOT_SUPPORTED);
	else if (!D.conf->service.allow_remote_access)
		wrm_op_fault_id(op, WRM_FAULT_ACCESS_DENIED);
	else if (bad_options(op))
		wrm_op_fault_id(op, WRM_FAULT_INVALID_OPTIONS);
	else if (inject(op))
		;	/* answered by a fault injection rule */
	else if (!op_count(op)) {
		/* Ansible recognises this one by its MSFT_WmiError code. */
		struct wrm_fault_info qi = { .id = WRM_FAULT_QUOTA_OPERATIONS,
		    .wmierror = 1 };

		wrm_audit("QUOTA", "user=%s quota=MaxConcurrentOperationsPerUser"
		    " limit=%llu", op->who->user, (unsigned long long)
		    D.conf->service.max_concurrent_operations_per_user);
		wrm_op_fault(op, &qi);
	} else
		a->fn(op);
	wrm_log_ctx_clear();
}

/*
 * [FaultInjection] rules for this operation: those that answer instead of
 * the operation do so here (true); the others are noted for the answer.
 */
static bool
inject(struct wrm_op *op)
{
	const struct wrm_session_conf *sc = op->soap.resource_uri != NULL ?
	    wrm_conf_session_by_uri(D.conf, op->soap.resource_uri) : NULL;
	const struct wrm_fault_conf *f;
	struct wrm_fault_info fi;

	if ((f = wrm_inject_decide(op->inject_mask, op->action_name,
	    sc != NULL ? sc->name : NULL)) == NULL)
		return false;
	memset(&fi, 0, sizeof(fi));
	switch (wrm_inject_kind(f)) {
	case WRM_INJECT_TIMEOUT:
		wrm_op_fault_id(op, WRM_FAULT_TIMED_OUT);
		return true;
	case WRM_INJECT_FAULT:
		fi.id = wrm_fault_for_code((uint32_t)f->fault_code);
		fi.code = (uint32_t)f->fault_code;
		fi.message = f->message[0] != '\0' ? f->message : NULL;
		wrm_op_fault(op, &fi);
		return true;
	case WRM_INJECT_QUOTA:
		fi.id = WRM_FAULT_QUOTA_OPERATIONS;
		fi.wmierror = 1;
		wrm_op_fault(op, &fi);
		return true;
	case WRM_INJECT_HTTP:
		op->inject_kind = WRM_INJECT_HTTP;
		op->inject_http_status = (unsigned)f->http_status;
		wrm_op_reply(op);
		return true;
	case WRM_INJECT_DELAY:
	case WRM_INJECT_RESET:
	case WRM_INJECT_TRICKLE:
		op->inject_kind = wrm_inject_kind(f);
		op->inject_delay_ms = f->delay_ms;
		op->inject_trickle = f->trickle_bytes > 0 ? f->trickle_bytes :
		    64;
		return false;
	default:
		return false;
	}
}

bool
wsman_parse_identify(const uint8_t *body, size_t len, bool utf16,
    struct wrm_soap_req *req)
{
	if (wrm_soap_parse(body, len, utf16, req) != 0)
		return false;
	if (req->fault == WRM_FAULT_NONE && req->is_identify)
		return true;
	wrm_soap_req_free(req);
	return false;
}

void
wsman_dispatch_identify(struct wrm_op *op, struct wrm_soap_req *req)
{
	op->action_name = "Identify";
	op->soap = *req;
	memset(req, 0, sizeof(*req));
	if (!inject(op))
		wsman_identify(op);
}

void
wsman_identify(struct wrm_op *op)
{
	struct utsname u;
	bool authed = op->who != NULL && op->who->user != NULL;
	char osv[64] = "0.0.0";
	int r;

	if (authed && uname(&u) == 0) {
		unsigned a = 0, b = 0, c = 0;

		if (sscanf(u.release, "%u.%u.%u", &a, &b, &c) >= 2)
			snprintf(osv, sizeof(osv), "%u.%u.%u", a, b, c);
	}
	r = wrm_buf_puts(&op->out, "<s:Envelope xml:lang=\"en-US\" "
	    "xmlns:s=\"" NS_SOAP "\"><s:Header/><s:Body>"
	    "<wsmid:IdentifyResponse xmlns:wsmid=\"" NS_IDENTITY "\">"
	    "<wsmid:ProtocolVersion>" NS_WSMAN "</wsmid:ProtocolVersion>"
	    "<wsmid:ProductVendor>winrmd</wsmid:ProductVendor>");
	if (r == 0)
		r = wrm_buf_printf(&op->out, "<wsmid:ProductVersion>OS: %s "
		    "SP: 0.0 Stack: 3.0</wsmid:ProductVersion>", osv);
	if (r == 0 && authed) {
		r = wrm_buf_puts(&op->out, "<wsmid:SecurityProfiles>");
		if (r == 0 && D.conf->auth.basic)
			r = wrm_buf_puts(&op->out, "<wsmid:SecurityProfileName>"
			    URI_SECPROFILE "http/basic</wsmid:SecurityProfileName>"
			    "<wsmid:SecurityProfileName>" URI_SECPROFILE
			    "https/basic</wsmid:SecurityProfileName>");
		if (r == 0 && (D.conf->auth.negotiate || D.conf->auth.kerberos))
			r = wrm_buf_puts(&op->out, "<wsmid:SecurityProfileName>"
			    URI_SECPROFILE "http/spnego-kerberos"
			    "</wsmid:SecurityProfileName>"
			    "<wsmid:SecurityProfileName>" URI_SECPROFILE
			    "https/spnego-kerberos</wsmid:SecurityProfileName>");
		if (r == 0 && D.conf->auth.certificate)
			r = wrm_buf_puts(&op->out, "<wsmid:SecurityProfileName>"
			    URI_SECPROFILE "https/mutual"
			    "</wsmid:SecurityProfileName>");
		if (r == 0)
			r = wrm_buf_puts(&op->out, "</wsmid:SecurityProfiles>");
	}
	if (r == 0)
		r = wrm_buf_puts(&op->out, "</wsmid:IdentifyResponse>"
		    "</s:Body></s:Envelope>");
	if (r != 0) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	wrm_op_reply(op);
}

struct wrm_shell *
wsman_op_shell(struct wrm_op *op)
{
	const char *id = wrm_soap_selector(&op->soap, "ShellId");
	struct wrm_shell *sh;

	if (id == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INSUFFICIENT_SELECTORS);
		return NULL;
	}
	sh = wrm_shell_find(id);
	if (sh == NULL || sh->state == WRM_SHELL_CREATING ||
	    sh->state == WRM_SHELL_CLOSING) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_SELECTORS);
		return NULL;
	}
	/*
	 * Another user's shell: refused, as Windows refuses it.  Account
	 * names are case-sensitive on Linux.  An administrator may look at,
	 * disconnect and remove any shell, but only its owner may run
	 * commands in it or connect to it again.
	 */
	if (op->who != NULL && strcmp(sh->owner, op->who->user) != 0 &&
	    (!op->who->is_admin ||
	    (strcmp(op->soap.action, A_TRANSFER "Get") != 0 &&
	    strcmp(op->soap.action, A_TRANSFER "Delete") != 0 &&
	    strcmp(op->soap.action, A_SHELL "Disconnect") != 0))) {
		wrm_op_fault_id(op, WRM_FAULT_ACCESS_DENIED);
		return NULL;
	}
	if (sh->state == WRM_SHELL_BROKEN &&
	    strcmp(op->soap.action, A_TRANSFER "Delete") != 0) {
		wrm_op_fault_id(op, WRM_FAULT_SHELL_BROKEN);
		return NULL;
	}
	/* A disconnected shell takes only these until a client is back. */
	if (sh->state == WRM_SHELL_DISCONNECTED &&
	    strcmp(op->soap.action, A_TRANSFER "Delete") != 0 &&
	    strcmp(op->soap.action, A_TRANSFER "Get") != 0 &&
	    strcmp(op->soap.action, A_SHELL "Disconnect") != 0 &&
	    strcmp(op->soap.action, A_SHELL "Reconnect") != 0 &&
	    strcmp(op->soap.action, A_SHELL "Connect") != 0) {
		wrm_op_fault_id(op, WRM_FAULT_SHELL_DISCONNECTED);
		return NULL;
	}
	return sh;
}
