/* Create, Delete and Get of shells; Get of the configuration. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "err.h"
#include "log.h"
#include "misc.h"
#include "ns.h"
#include "shell.h"
#include "store.h"
#include "wsman.h"

#define MAX_INBOUND		(16u * 1024 * 1024)

static int
put_text(struct wrm_buf *b, const char *tag, const char *text)
{
	int r;

	if ((r = wrm_buf_printf(b, "<rsp:%s>", tag)) != 0 ||
	    (r = wrm_buf_put_xml(b, text != NULL ? text : "")) != 0)
		return r;
	return wrm_buf_printf(b, "</rsp:%s>", tag);
}

static int
put_duration(struct wrm_buf *b, const char *tag, uint64_t ms, bool dhms)
{
	char d[64];

	if (dhms)
		wrm_duration_format_dhms(ms, d, sizeof(d));
	else
		wrm_duration_format_secs(ms, d, sizeof(d));
	return put_text(b, tag, d);
}

static uint64_t
memory_used_mb(const struct wrm_shell *sh)
{
	char path[64], line[256];
	unsigned long kb = 0;
	FILE *f;

	if (sh->host == NULL || sh->host->dead)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)sh->host->pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb / 1024;
}

/*
 * One rsp:Shell description.  full selects the disconnect-capable field
 * set Windows sends for PowerShell shells and for Get/Enumerate; the WinRS
 * CreateResponse has the short form with the echoed environment.
 */
int
wsman_put_shell(struct wrm_buf *b, const struct wrm_shell *sh, bool full,
    bool extra)
{
	uint64_t now = wrm_now_ms();
	int64_t wall = wrm_wall_ms();
	size_t i;
	int r;

	r = wrm_buf_puts(b, "<rsp:Shell xmlns:rsp=\"" NS_SHELL "\">");
	if (r == 0) r = put_text(b, "ShellId", sh->id);
	if (r == 0 && full && sh->name != NULL) r = put_text(b, "Name", sh->name);
	if (r == 0) r = put_text(b, "ResourceUri", sh->resource_uri);
	if (r == 0) r = put_text(b, "Owner", sh->owner);
	if (r == 0) r = put_text(b, "ClientIP", sh->client_ip);
	if (r == 0 && full)
		r = wrm_buf_printf(b, "<rsp:ProcessId>%ld</rsp:ProcessId>",
		    sh->host != NULL ? (long)sh->host->pid : 0L);
	if (r == 0 && !full && sh->workdir != NULL)
		r = put_text(b, "WorkingDirectory", sh->workdir);
	if (r == 0 && !full && sh->n_env > 0) {
		r = wrm_buf_puts(b, "<rsp:Environment>");
		for (i = 0; r == 0 && i < sh->n_env; i++) {
			r = wrm_buf_puts(b, "<rsp:Variable Name=\"");
			if (r == 0) r = wrm_buf_put_xml(b, sh->env[i].name);
			if (r == 0) r = wrm_buf_puts(b, "\">");
			if (r == 0) r = wrm_buf_put_xml(b, sh->env[i].value);
			if (r == 0) r = wrm_buf_puts(b, "</rsp:Variable>");
		}
		if (r == 0) r = wrm_buf_puts(b, "</rsp:Environment>");
	}
	if (r == 0) r = put_duration(b, "IdleTimeOut", sh->idle_timeout_ms, false);
	if (r == 0) r = put_text(b, "InputStreams", sh->input_streams);
	if (r == 0) r = put_text(b, "OutputStreams", sh->output_streams);
	if (r == 0 && full) {
		r = put_duration(b, "MaxIdleTimeOut", sh->max_idle_timeout_ms,
		    false);
		if (r == 0) r = put_text(b, "Locale", sh->locale ?
		    sh->locale : "en-US");
		if (r == 0) r = put_text(b, "DataLocale", sh->data_locale ?
		    sh->data_locale : "en-US");
		if (r == 0) r = put_text(b, "CompressionMode", sh->compression ?
		    "XpressCompression" : "NoCompression");
		if (r == 0) r = put_text(b, "ProfileLoaded",
		    sh->profile_loaded ? "Yes" : "No");
		if (r == 0) r = put_text(b, "Encoding", "UTF8");
		if (r == 0) r = put_text(b, "BufferMode", sh->buffer_mode);
		if (r == 0) r = put_text(b, "State",
		    sh->state == WRM_SHELL_DISCONNECTED ? "Disconnected" :
		    "Connected");
	}
	if (r == 0) r = put_duration(b, "ShellRunTime",
	    wall > sh->created ? (uint64_t)(wall - sh->created) : 0, true);
	if (r == 0) r = put_duration(b, "ShellInactivity",
	    now > sh->last_activity ? now - sh->last_activity : 0, true);
	if (r == 0 && extra)
		r = wrm_buf_printf(b, "<rsp:MemoryUsed>%lluMB</rsp:MemoryUsed>"
		    "<rsp:ChildProcesses>0</rsp:ChildProcesses>",
		    (unsigned long long)memory_used_mb(sh));
	if (r == 0) r = wrm_buf_puts(b, "</rsp:Shell>");
	return r;
}

static void
reply_created(struct wrm_op *op, struct wrm_shell *sh)
{
	const char *addr = op->soap.to != NULL && op->soap.to[0] != '\0' ?
	    op->soap.to : op->listener_url;
	int r;

	r = wrm_soap_begin(&op->out, A_TRANSFER "CreateResponse",
	    op->soap.message_id, WRM_NS_X | WRM_NS_RSP | WRM_NS_P);
	if (r == 0) r = wrm_buf_puts(&op->out, "<x:ResourceCreated><a:Address>");
	if (r == 0) r = wrm_buf_put_xml(&op->out, addr);
	if (r == 0) r = wrm_buf_puts(&op->out, "</a:Address>"
	    "<a:ReferenceParameters><w:ResourceURI>");
	if (r == 0) r = wrm_buf_put_xml(&op->out, sh->resource_uri);
	if (r == 0) r = wrm_buf_puts(&op->out, "</w:ResourceURI><w:SelectorSet>"
	    "<w:Selector Name=\"ShellId\">");
	if (r == 0) r = wrm_buf_put_xml(&op->out, sh->id);
	if (r == 0) r = wrm_buf_puts(&op->out, "</w:Selector></w:SelectorSet>"
	    "</a:ReferenceParameters></x:ResourceCreated>");
	if (r == 0) r = wsman_put_shell(&op->out, sh, !sh->is_winrs, false);
	if (r == 0) r = wrm_soap_end(&op->out);
	if (r != 0) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	wrm_op_reply(op);
}

/* Called by shell.c when the host answered the creation. */
void wrm_shell_created(struct wrm_op *op, struct wrm_shell *sh,
    uint32_t error, const char *message);
void
wrm_shell_created(struct wrm_op *op, struct wrm_shell *sh, uint32_t error,
    const char *message)
{
	if (error != 0) {
		wrm_op_fault_msg(op, wrm_fault_for_code(error), error, message);
		if (sh->host != NULL && !sh->host->dead)
			sh->state = WRM_SHELL_CLOSING;
		wrm_shell_free(sh);
		return;
	}
	wrm_shell_touch(sh);
	reply_created(op, sh);
}

static char *
child_text(const xmlNode *parent, const char *ns, const char *name)
{
	return wrm_xml_text(wrm_xml_child(parent, ns, name), false);
}

/* Read the rsp:Shell body of a Create into sh. */
static int
parse_shell_body(struct wrm_op *op, struct wrm_shell *sh, uint8_t **in_r,
    size_t *in_len_r)
{
	const xmlNode *body = op->soap.payload, *env, *v;
	struct wrm_env_pair *ne;
	char *s;
	uint64_t ms;

	*in_r = NULL;
	*in_len_r = 0;
	if (body == NULL || !wrm_xml_is(body, NS_SHELL, "Shell"))
		return WRM_ERR_PARSE;
	if ((s = wrm_xml_attr(body, "Name")) != NULL)
		sh->name = s;
	if ((s = child_text(body, NS_SHELL, "Name")) != NULL) {
		free(sh->name);
		sh->name = s;
	}
	sh->workdir = child_text(body, NS_SHELL, "WorkingDirectory");
	if ((s = child_text(body, NS_SHELL, "InputStreams")) != NULL) {
		free(sh->input_streams);
		sh->input_streams = s;
	}
	if ((s = child_text(body, NS_SHELL, "OutputStreams")) != NULL) {
		free(sh->output_streams);
		sh->output_streams = s;
	}
	if ((s = child_text(body, NS_SHELL, "IdleTimeOut")) != NULL) {
		if (wrm_duration_parse(s, &ms) == 0)
			sh->idle_timeout_ms = ms;
		free(s);
	}
	env = wrm_xml_child(body, NS_SHELL, "Environment");
	for (v = env != NULL ? env->children : NULL; v != NULL; v = v->next) {
		if (!wrm_xml_is(v, NS_SHELL, "Variable"))
			continue;
		ne = realloc(sh->env, (sh->n_env + 1) * sizeof(*ne));
		if (ne == NULL)
			return WRM_ERR_ALLOC;
		sh->env = ne;
		ne[sh->n_env].name = wrm_xml_attr(v, "Name");
		ne[sh->n_env].value = wrm_xml_text(v, true);
		if (ne[sh->n_env].name == NULL) {
			free(ne[sh->n_env].value);
			continue;
		}
		sh->n_env++;
	}
	if ((s = child_text(body, NS_POWERSHELL, "creationXml")) != NULL) {
		size_t n = strlen(s);

		if (n > MAX_INBOUND * 4 / 3 ||
		    (*in_r = malloc(n / 4 * 3 + 3)) == NULL ||
		    wrm_b64_decode(s, n, *in_r, in_len_r) != 0) {
			free(s);
			free(*in_r);
			*in_r = NULL;
			return WRM_ERR_PARSE;
		}
		free(s);
	}
	return 0;
}

static const char *
option_value(struct wrm_op *op, const char *name)
{
	const struct wrm_soap_option *o = wrm_soap_option(&op->soap, name);

	return o != NULL ? o->value : NULL;
}

static void
quota_shells_fault(struct wrm_op *op, uint64_t max)
{
	char msg[300];

	snprintf(msg, sizeof(msg), "The WS-Management service cannot "
	    "process the request. This user is allowed a maximum number of "
	    "%llu concurrent shells, which has been exceeded. Close existing "
	    "shells or raise the quota for this user. ",
	    (unsigned long long)max);
	wrm_op_fault_msg(op, WRM_FAULT_QUOTA_SHELLS, 0, msg);
}

/*
 * Quota and policy checks before a shell is created.  [Winrs] quotas count
 * every shell of the service, a session configuration's own quotas only
 * its shells; each must hold.
 */
static bool
create_allowed(struct wrm_op *op, const struct wrm_session_conf *sc)
{
	const char *user = op->who->user;

	if (!sc->enabled) {
		wrm_op_fault_id(op, WRM_FAULT_ACCESS_DENIED);
		return false;
	}
	if (!wrm_auth_session_allows(op->who, sc)) {
		wrm_audit("ACCESS_DENIED", "user=%s config=%s reason=\"the "
		    "configuration's Allow or Deny lists\"", user, sc->name);
		wrm_op_fault_id(op, WRM_FAULT_ACCESS_DENIED);
		return false;
	}
	if (!D.conf->winrs.allow_remote_shell_access) {
		wrm_op_fault_id(op, WRM_FAULT_SHELLS_NOT_ALLOWED);
		return false;
	}
	if (wrm_shell_count_user(user, NULL) >=
	    D.conf->winrs.max_shells_per_user) {
		quota_shells_fault(op, D.conf->winrs.max_shells_per_user);
		return false;
	}
	if (wrm_shell_count_user(user, sc->name) >= sc->max_shells_per_user) {
		quota_shells_fault(op, sc->max_shells_per_user);
		return false;
	}
	if ((wrm_shell_count_user(user, NULL) == 0 &&
	    wrm_shell_count_users(NULL, NULL) >=
	    D.conf->winrs.max_concurrent_users) ||
	    (wrm_shell_count_user(user, sc->name) == 0 &&
	    wrm_shell_count_users(sc->name, NULL) >=
	    sc->max_concurrent_users)) {
		wrm_op_fault_id(op, WRM_FAULT_QUOTA_USERS);
		return false;
	}
	return true;
}

void
wsman_create(struct wrm_op *op)
{
	const struct wrm_session_conf *sc;
	struct wrm_shell *sh;
	uint8_t *inbound = NULL;
	size_t in_len = 0;
	char *id;
	const char *v;
	int r;

	if (op->soap.resource_uri == NULL ||
	    (sc = wrm_conf_session_by_uri(D.conf, op->soap.resource_uri)) ==
	    NULL) {
		wrm_op_fault_id(op, WRM_FAULT_DESTINATION_UNREACHABLE);
		return;
	}
	if (!create_allowed(op, sc))
		return;
	if ((sh = calloc(1, sizeof(*sh))) == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	sh->is_winrs = strcasecmp(sc->plugin, "cmd") == 0;
	sh->input_streams = strdup(sh->is_winrs ? "stdin" : "stdin pr");
	sh->output_streams = strdup(sh->is_winrs ? "stdout stderr" : "stdout");
	sh->idle_timeout_ms = sh->is_winrs ? D.conf->winrs.idle_timeout :
	    sc->idle_timeout_ms;
	if (parse_shell_body(op, sh, &inbound, &in_len) != 0) {
		wrm_shell_free(sh);
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return;
	}
	id = op->soap.payload != NULL ? wrm_xml_attr(op->soap.payload,
	    "ShellId") : NULL;
	if (id != NULL) {
		char norm[WRM_GUID_STRLEN + 1];

		if (wrm_guid_normalize(id, norm) != 0 || wrm_shell_find(norm)) {
			free(id);
			free(inbound);
			wrm_shell_free(sh);
			wrm_op_fault_msg(op, WRM_FAULT_INVALID_PARAMETER, 0,
			    "The ShellId is not a GUID or is already in use. ");
			return;
		}
		sh->id = id;
	} else {
		sh->id = malloc(WRM_GUID_STRLEN + 1);
		if (sh->id != NULL)
			wrm_guid_new(sh->id);
	}
	sh->owner = strdup(op->who->user);
	/*
	 * RunAsUser: every shell of the configuration runs as that account
	 * (system mode; in user mode all run as the daemon's user anyway).
	 */
	sh->local_user = strdup(sc->run_as_user[0] != '\0' && !D.user_mode ?
	    sc->run_as_user : op->who->local_user);
	sh->uid = op->who->uid;
	sh->client_ip = strdup(op->client_ip);
	sh->config = strdup(sc->name);
	sh->resource_uri = strdup(op->soap.resource_uri);
	sh->plugin = strdup(sc->plugin);
	sh->buffer_mode = strdup(sc->output_buffering_mode);
	sh->locale = wrm_strdup0(op->soap.locale);
	sh->data_locale = wrm_strdup0(op->soap.data_locale);
	sh->session_id = wrm_strdup0(op->soap.session_id);
	sh->created = wrm_wall_ms();
	sh->max_idle_timeout_ms = sc->max_idle_timeout_ms;
	sh->idle_timeout_ms = wrm_shell_clamp_idle(sh, sh->idle_timeout_ms);
	v = option_value(op, "WINRS_NOPROFILE");
	sh->profile_loaded = !(v != NULL && wrm_parse_bool(v) == 1);
	sh->compression = op->soap.compression_type != NULL &&
	    strcasecmp(op->soap.compression_type, "xpress") == 0;
	wrm_shell_touch(sh);
	if (sh->id == NULL || sh->owner == NULL || sh->resource_uri == NULL) {
		free(inbound);
		wrm_shell_free(sh);
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	r = wrm_shell_create(op, sh, sc, inbound, in_len);
	free(inbound);
	if (r != 0) {
		wrm_op_fault_msg(op, WRM_FAULT_INTERNAL, 0, "The shell's host "
		    "process could not be started. ");
		if (sh->host != NULL)
			sh->state = WRM_SHELL_CLOSING;
		wrm_shell_free(sh);
	}
}

struct delete_ctx {
	struct wrm_op *op;
	char *shell_id;
};

static void
delete_finish(struct wrm_op *op, struct wrm_shell *sh)
{
	if (sh != NULL) {
		wrm_audit("SHELL_DELETE", "shell=%s user=%s", sh->id, sh->owner);
		if (D.store != NULL)
			wrm_store_shell_del(D.store, sh->id);
		wrm_shell_free(sh);
	}
	if (op == NULL)
		return;
	if (wrm_soap_begin(&op->out, A_TRANSFER "DeleteResponse",
	    op->soap.message_id, WRM_NS_P) != 0 ||
	    wrm_soap_end(&op->out) != 0) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	wrm_op_reply(op);
}

static void
delete_reply(struct wrm_host *h, const struct wrm_hmsg *m, void *arg)
{
	struct delete_ctx *dc = arg;

	(void)h;
	(void)m;
	if (dc->op == NULL || !wrm_op_host_reply_begin(dc->op))
		delete_finish(NULL, wrm_shell_find(dc->shell_id));
	else
		delete_finish(dc->op, wrm_shell_find(dc->shell_id));
	free(dc->shell_id);
	free(dc);
}

static void delete_on_host(struct wrm_op *op, struct wrm_shell *sh);

void
wsman_delete(struct wrm_op *op)
{
	struct wrm_shell *sh;

	if (op->soap.resource_uri != NULL &&
	    strcasecmp(op->soap.resource_uri, URI_CONFIG) == 0) {
		wrm_op_fault_id(op, WRM_FAULT_ACTION_NOT_SUPPORTED);
		return;
	}
	if ((sh = wsman_op_shell(op)) == NULL)
		return;
	if (sh->state == WRM_SHELL_BROKEN || sh->host == NULL ||
	    sh->host->dead) {
		delete_finish(op, sh);
		return;
	}
	delete_on_host(op, sh);
}

/* Ask the host to delete sh; op (or NULL) is answered when it has. */
static void
delete_on_host(struct wrm_op *op, struct wrm_shell *sh)
{
	struct delete_ctx *dc;
	struct wrm_buf b;
	uint32_t reqid;
	size_t st;
	int r;

	sh->state = WRM_SHELL_CLOSING;
	wrm_receive_shell_gone(sh);
	if ((dc = calloc(1, sizeof(*dc))) == NULL ||
	    (dc->shell_id = strdup(sh->id)) == NULL) {
		free(dc);
		delete_finish(op, sh);
		return;
	}
	dc->op = op;
	reqid = wrm_host_next_reqid(sh->host);
	wrm_buf_init(&b, 0);
	r = wrm_hmsg_begin(&b, HM_DELETE, reqid, &st);
	if (r == 0) r = wrm_hmsg_put_str(&b, HT_SHELL_ID, sh->id);
	if (r == 0) r = wrm_hmsg_end(&b, st);
	if (op != NULL) {
		free(op->delivery_shell);
		op->delivery_shell = strdup(sh->id);
	}
	if (r == 0) {
		if (op != NULL)
			wrm_op_host_request_sent(op);
		/* On failure the host's close handler answers dc. */
		wrm_host_request(sh->host, &b, reqid, delete_reply, dc);
	}
	wrm_buf_free(&b);
	if (r != 0) {
		delete_finish(op, wrm_shell_find(dc->shell_id));
		free(dc->shell_id);
		free(dc);
	}
}

void
wrm_shell_expire(struct wrm_shell *sh, const char *why)
{
	wrm_audit("SHELL_EXPIRED", "shell=%s user=%s config=%s reason=%s",
	    sh->id, sh->owner, sh->config, why);
	if (sh->state == WRM_SHELL_BROKEN || sh->host == NULL ||
	    sh->host->dead) {
		delete_finish(NULL, sh);
		return;
	}
	delete_on_host(NULL, sh);
}


void
wsman_get(struct wrm_op *op)
{
	const char *uri = op->soap.resource_uri;
	struct wrm_shell *sh;
	int r;

	if (uri == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_DESTINATION_UNREACHABLE);
		return;
	}
	if (wsman_config_get(op))
		return;
	if (strcasecmp(uri, URI_SHELLS) != 0 &&
	    wrm_conf_session_by_uri(D.conf, uri) == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_DESTINATION_UNREACHABLE);
		return;
	}
	if ((sh = wsman_op_shell(op)) == NULL)
		return;
	r = wrm_soap_begin(&op->out, A_TRANSFER "GetResponse",
	    op->soap.message_id, WRM_NS_X | WRM_NS_RSP | WRM_NS_P);
	if (r == 0) r = wsman_put_shell(&op->out, sh, true, true);
	if (r == 0) r = wrm_soap_end(&op->out);
	if (r != 0) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	wrm_op_reply(op);
}
