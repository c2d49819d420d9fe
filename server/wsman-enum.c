/*
 * Enumerate, Pull and Release of shells (Get-PSSession -ComputerName,
 * pypsrp's get_runspace_pools) and of one shell's commands.  An optimized
 * Enumerate answers with the items in w:Items; otherwise (or when more
 * items remain than MaxElements) the rendered items wait in a context that
 * Pull drains and that expires after EnumerationTimeoutms.
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

#define MAX_CONTEXTS	256

struct enum_item {
	char *xml;
};

struct enum_ctx {
	char id[WRM_GUID_STRLEN + 6];	/* "uuid:" + GUID */
	char *owner;
	struct enum_item *items;
	size_t n, next;
	struct wrm_timer *timer;
	struct enum_ctx *prev, *nextc;
};

static struct enum_ctx *contexts;
static size_t n_contexts;

static void
ctx_free(struct enum_ctx *c)
{
	size_t i;

	if (c->prev != NULL)
		c->prev->nextc = c->nextc;
	else
		contexts = c->nextc;
	if (c->nextc != NULL)
		c->nextc->prev = c->prev;
	wrm_timer_cancel(c->timer);
	for (i = 0; i < c->n; i++)
		free(c->items[i].xml);
	free(c->items);
	free(c->owner);
	free(c);
	n_contexts--;
}

static void
ctx_expired(void *arg)
{
	struct enum_ctx *c = arg;

	c->timer = NULL;
	ctx_free(c);
}

void
wsman_enum_expire_all(void)
{
	while (contexts != NULL)
		ctx_free(contexts);
}

static int
add_item(struct enum_ctx *c, struct wrm_buf *b)
{
	struct enum_item *ni;
	size_t len;

	if ((ni = realloc(c->items, (c->n + 1) * sizeof(*ni))) == NULL)
		return WRM_ERR_ALLOC;
	c->items = ni;
	if ((ni[c->n].xml = (char *)wrm_buf_steal(b, &len)) == NULL)
		return WRM_ERR_ALLOC;
	ni[c->n].xml[len] = '\0';
	c->n++;
	return 0;
}

static bool
visible(const struct wrm_op *op, const struct wrm_shell *sh)
{
	if (sh->state == WRM_SHELL_CREATING || sh->state == WRM_SHELL_CLOSING)
		return false;
	return op->who->is_admin || strcmp(sh->owner, op->who->user) == 0;
}

static int
collect_shells(struct wrm_op *op, struct enum_ctx *c)
{
	struct wrm_shell *sh;
	struct wrm_buf b;
	int r = 0;

	for (sh = wrm_shell_first(); sh != NULL && r == 0; sh = sh->next) {
		if (!visible(op, sh))
			continue;
		wrm_buf_init(&b, 0);
		r = wsman_put_shell(&b, sh, true, true);
		if (r == 0)
			r = wrm_buf_putc(&b, '\0');
		if (r == 0) {
			wrm_buf_truncate(&b, wrm_buf_len(&b) - 1);
			r = add_item(c, &b);
		}
		wrm_buf_free(&b);
	}
	return r;
}

/* The ShellId of a SelectorFilter (wsman:Filter or wsen:Filter). */
static char *
filter_shell(const xmlNode *en)
{
	const xmlNode *f = wrm_xml_child(en, NS_WSMAN, "Filter"), *s;

	if (f == NULL)
		f = wrm_xml_child(en, NS_ENUM, "Filter");
	if (f == NULL)
		return NULL;
	s = wrm_xml_child(f, NS_WSMAN, "SelectorSet");
	for (s = s != NULL ? s->children : NULL; s != NULL; s = s->next) {
		char *name;

		if (!wrm_xml_is(s, NS_WSMAN, "Selector"))
			continue;
		name = wrm_xml_attr(s, "Name");
		if (name != NULL && strcasecmp(name, "ShellId") == 0) {
			free(name);
			return wrm_xml_text(s, false);
		}
		free(name);
	}
	return NULL;
}

static int
collect_commands(struct wrm_op *op, const xmlNode *en, struct enum_ctx *c)
{
	char *sid = filter_shell(en);
	struct wrm_shell *sh = wrm_shell_find(sid);
	struct wrm_command *cmd;
	struct wrm_buf b;
	int r = 0;

	free(sid);
	if (sh == NULL || !visible(op, sh))
		return WRM_ERR_NOT_FOUND;
	for (cmd = sh->cmds; cmd != NULL && r == 0; cmd = cmd->next) {
		wrm_buf_init(&b, 0);
		r = wrm_buf_puts(&b, "<rsp:Command xmlns:rsp=\"" NS_SHELL "\">"
		    "<rsp:CommandId>");
		if (r == 0) r = wrm_buf_put_xml(&b, cmd->id);
		if (r == 0) r = wrm_buf_puts(&b, "</rsp:CommandId>"
		    "<rsp:CommandLine>");
		if (r == 0 && sh->is_winrs && cmd->command_line != NULL)
			r = wrm_buf_put_xml(&b, cmd->command_line);
		if (r == 0) r = wrm_buf_printf(&b, "</rsp:CommandLine>"
		    "<rsp:CommandState>%s</rsp:CommandState></rsp:Command>",
		    cmd->state == WRM_CMD_DONE ? "Done" : "Running");
		if (r == 0)
			r = add_item(c, &b);
		wrm_buf_free(&b);
	}
	return r;
}

/* winrm/config/plugin: every session configuration. */
static int
collect_plugins(struct enum_ctx *c)
{
	struct wrm_buf b;
	size_t i;
	int r = 0;

	for (i = 0; r == 0 && i < D.conf->n_sessions; i++) {
		wrm_buf_init(&b, 0);
		r = wsman_put_plugin(&b, &D.conf->sessions[i]);
		if (r == 0)
			r = add_item(c, &b);
		wrm_buf_free(&b);
	}
	return r;
}

/* winrm/config/listener: every configured listener. */
static int
collect_listeners(struct enum_ctx *c)
{
	struct wrm_buf b;
	size_t i;
	int r = 0;

	for (i = 0; r == 0 && i < D.conf->n_listeners; i++) {
		wrm_buf_init(&b, 0);
		r = wsman_put_listener(&b, &D.conf->listeners[i]);
		if (r == 0)
			r = add_item(c, &b);
		wrm_buf_free(&b);
	}
	return r;
}

static uint64_t
max_elements(const xmlNode *parent, const char *ns)
{
	char *s = wrm_xml_text(wrm_xml_child(parent, ns, "MaxElements"), false);
	uint64_t v = 1;

	if (s != NULL && (wrm_parse_u64(s, &v) != 0 || v == 0))
		v = 1;
	free(s);
	if (v > D.conf->service.max_batch_items)
		v = D.conf->service.max_batch_items;
	return v;
}

/* Items from c->next on, at most max, within the envelope budget. */
static int
put_items(struct wrm_buf *b, struct enum_ctx *c, uint64_t max,
    size_t budget)
{
	size_t start = wrm_buf_len(b);
	uint64_t k;
	int r = 0;

	for (k = 0; k < max && c->next < c->n && r == 0; k++) {
		size_t len = strlen(c->items[c->next].xml);

		if (k > 0 && wrm_buf_len(b) - start + len > budget)
			break;
		r = wrm_buf_puts(b, c->items[c->next].xml);
		c->next++;
	}
	return r;
}

static struct enum_ctx *
ctx_new(const struct wrm_op *op)
{
	struct enum_ctx *c;

	if (n_contexts >= MAX_CONTEXTS) {
		/* Drop the oldest (the list's tail). */
		for (c = contexts; c->nextc != NULL; c = c->nextc)
			;
		ctx_free(c);
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	strcpy(c->id, "uuid:");
	wrm_guid_new(c->id + 5);
	c->owner = strdup(op->who->user);
	return c;
}

static void
ctx_keep(struct enum_ctx *c)
{
	c->nextc = contexts;
	if (contexts != NULL)
		contexts->prev = c;
	contexts = c;
	n_contexts++;
	wrm_timer_add(D.loop, D.conf->service.enumeration_timeout_ms,
	    ctx_expired, c, &c->timer);
}

static void
discard_ctx(struct enum_ctx *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->items[i].xml);
	free(c->items);
	free(c->owner);
	free(c);
}

void
wsman_enumerate(struct wrm_op *op)
{
	const xmlNode *en = op->soap.payload;
	const char *uri = op->soap.resource_uri;
	struct enum_ctx *c;
	bool optimized, done;
	size_t budget;
	int r;

	if (en == NULL || !wrm_xml_is(en, NS_ENUM, "Enumerate")) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return;
	}
	if (uri == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_DESTINATION_UNREACHABLE);
		return;
	}
	if ((c = ctx_new(op)) == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	if (strcasecmp(uri, URI_CONFIG "/listener") == 0 ||
	    strcasecmp(uri, URI_CONFIG "/plugin") == 0) {
		if (!op->who->is_admin && !D.user_mode) {
			discard_ctx(c);
			wrm_op_fault_id(op, WRM_FAULT_ACCESS_DENIED);
			return;
		}
		r = strcasecmp(uri, URI_CONFIG "/plugin") == 0 ?
		    collect_plugins(c) : collect_listeners(c);
	} else if (strcasecmp(uri, URI_SHELL_COMMANDS) == 0)
		r = collect_commands(op, en, c);
	else if (strcasecmp(uri, URI_SHELLS) == 0 ||
	    strcasecmp(uri, WRM_URI_CMD) == 0 ||
	    wrm_conf_session_by_uri(D.conf, uri) != NULL)
		r = collect_shells(op, c);
	else {
		discard_ctx(c);
		wrm_op_fault_id(op, WRM_FAULT_DESTINATION_UNREACHABLE);
		return;
	}
	if (r == WRM_ERR_NOT_FOUND) {
		discard_ctx(c);
		wrm_op_fault_id(op, WRM_FAULT_INVALID_SELECTORS);
		return;
	}
	optimized = wrm_xml_child(en, NS_WSMAN, "OptimizeEnumeration") != NULL;
	budget = op->max_envelope > 2048 ? op->max_envelope - 2048 : 1024;
	r = wrm_soap_begin(&op->out, A_ENUM "EnumerateResponse",
	    op->soap.message_id, WRM_NS_N | WRM_NS_P);
	if (r == 0 && optimized) {
		struct wrm_buf items;

		wrm_buf_init(&items, 0);
		r = put_items(&items, c, max_elements(en, NS_WSMAN), budget);
		done = c->next >= c->n;
		if (r == 0)
			r = wrm_buf_printf(&op->out, "<n:EnumerateResponse>"
			    "<n:EnumerationContext>%s</n:EnumerationContext>",
			    done ? "" : c->id);
		if (r == 0 && wrm_buf_len(&items) > 0)
			r = wrm_buf_printf(&op->out, "<w:Items>%s</w:Items>",
			    wrm_buf_str(&items));
		if (r == 0 && done)
			r = wrm_buf_puts(&op->out, "<w:EndOfSequence/>");
		if (r == 0)
			r = wrm_buf_puts(&op->out, "</n:EnumerateResponse>");
		wrm_buf_free(&items);
	} else if (r == 0) {
		done = false;
		r = wrm_buf_printf(&op->out, "<n:EnumerateResponse>"
		    "<n:EnumerationContext>%s</n:EnumerationContext>"
		    "</n:EnumerateResponse>", c->id);
	} else
		done = true;
	if (r == 0)
		r = wrm_soap_end(&op->out);
	if (r != 0) {
		discard_ctx(c);
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	if (done)
		discard_ctx(c);
	else
		ctx_keep(c);
	wrm_op_reply(op);
}

static struct enum_ctx *
find_ctx(struct wrm_op *op, const xmlNode *body)
{
	char *id = wrm_xml_text(wrm_xml_child(body, NS_ENUM,
	    "EnumerationContext"), false);
	struct enum_ctx *c;

	for (c = contexts; id != NULL && c != NULL; c = c->nextc)
		if (strcasecmp(c->id, id) == 0 &&
		    strcmp(c->owner, op->who->user) == 0)
			break;
	free(id);
	return c;
}

void
wsman_pull(struct wrm_op *op)
{
	const xmlNode *body = op->soap.payload;
	struct enum_ctx *c;
	struct wrm_buf items;
	bool done;
	int r;

	if (body == NULL || !wrm_xml_is(body, NS_ENUM, "Pull")) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return;
	}
	if ((c = find_ctx(op, body)) == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_ENUM_CONTEXT);
		return;
	}
	wrm_buf_init(&items, 0);
	r = put_items(&items, c, max_elements(body, NS_ENUM),
	    op->max_envelope > 2048 ? op->max_envelope - 2048 : 1024);
	done = c->next >= c->n;
	if (r == 0)
		r = wrm_soap_begin(&op->out, A_ENUM "PullResponse",
		    op->soap.message_id, WRM_NS_N | WRM_NS_P);
	if (r == 0)
		r = wrm_buf_puts(&op->out, "<n:PullResponse>");
	if (r == 0 && !done)
		r = wrm_buf_printf(&op->out, "<n:EnumerationContext>%s"
		    "</n:EnumerationContext>", c->id);
	if (r == 0)
		r = wrm_buf_printf(&op->out, "<n:Items>%s</n:Items>",
		    wrm_buf_str(&items));
	if (r == 0 && done)
		r = wrm_buf_puts(&op->out, "<n:EndOfSequence/>");
	if (r == 0)
		r = wrm_buf_puts(&op->out, "</n:PullResponse>");
	if (r == 0)
		r = wrm_soap_end(&op->out);
	wrm_buf_free(&items);
	if (done)
		ctx_free(c);
	if (r != 0) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	wrm_op_reply(op);
}

void
wsman_release(struct wrm_op *op)
{
	const xmlNode *body = op->soap.payload;
	struct enum_ctx *c;

	if (body == NULL || !wrm_xml_is(body, NS_ENUM, "Release")) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_PARAMETER);
		return;
	}
	if ((c = find_ctx(op, body)) == NULL) {
		wrm_op_fault_id(op, WRM_FAULT_INVALID_ENUM_CONTEXT);
		return;
	}
	ctx_free(c);
	if (wrm_soap_begin(&op->out, A_ENUM "ReleaseResponse",
	    op->soap.message_id, WRM_NS_N | WRM_NS_P) != 0 ||
	    wrm_soap_end(&op->out) != 0) {
		wrm_op_fault_id(op, WRM_FAULT_INTERNAL);
		return;
	}
	wrm_op_reply(op);
}
