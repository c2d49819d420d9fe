#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <syslog.h>

#include "err.h"
#include "host.h"
#include "log.h"
#include "misc.h"
#include "plugin-load.h"

#define NOTIFY_COALESCE_MS	5
#define URI_TERMINATE_FOR_DELETE \
	"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
#define RELEASE_TIMEOUT_MS	10000

static struct wrm_loaded_plugin plugin;
static void *plugin_ctx;
static bool plugin_started;
static struct wrm_kv_list { char *k, *v; } *conf_opts;
static size_t n_conf_opts;
static struct hshell *shells;
static pthread_t loop_thread;
static bool loop_thread_set;

struct wrm_watch {
	struct wrm_io *io;
	struct wrm_timer *timer;
	int fd;
	wrm_fd_fn fd_fn;
	wrm_timer_fn timer_fn;
	void *arg;
};

struct child_watch {
	pid_t pid;
	wrm_child_fn fn;
	void *arg;
	struct child_watch *next;
};
static struct child_watch *child_watches;

static void complete_req(struct hreq *req, uint32_t error, const char *msg,
    const uint8_t *data, size_t len);
static void target_notify(struct htarget *t, bool now);
static void set_drop(struct hshell *sh, bool drop);
static void cmd_try_release(struct hcmd *cmd);
static void shell_try_finish_delete(struct hshell *sh);

static bool
on_loop_thread(void)
{
	if (!loop_thread_set) {
		loop_thread = pthread_self();
		loop_thread_set = true;
	}
	return pthread_equal(loop_thread, pthread_self());
}

/* ---- requests ---- */

static struct hreq *
req_new(enum hreq_kind kind, uint32_t reqid, struct hshell *sh,
    struct hcmd *cmd)
{
	struct hreq *req;

	if ((req = calloc(1, sizeof(*req))) == NULL)
		return NULL;
	req->pub.size = sizeof(req->pub);
	req->kind = kind;
	req->reqid = reqid;
	req->shell = sh;
	req->cmd = cmd;
	if (sh != NULL) {
		req->pub.user = sh->user;
		req->pub.auth_mechanism = sh->auth;
		req->pub.client_ip = sh->client_ip;
		req->pub.resource_uri = sh->resource_uri;
		req->pub.locale = sh->locale;
		req->pub.data_locale = sh->data_locale;
		req->pub.shell_id = sh->id;
	}
	if (cmd != NULL)
		req->pub.command_id = cmd->id;
	return req;
}

/* Keep s alive for the request's lifetime; returns s (NULL on failure). */
static char *
req_keep(struct hreq *req, char *s)
{
	char **n;

	if (s == NULL)
		return NULL;
	if ((n = realloc(req->strings, (req->n_strings + 1) *
	    sizeof(*n))) == NULL) {
		free(s);
		return NULL;
	}
	req->strings = n;
	req->strings[req->n_strings++] = s;
	return s;
}

static void
req_free(struct hreq *req)
{
	size_t i;

	if (req == NULL)
		return;
	for (i = 0; i < req->n_strings; i++)
		free(req->strings[i]);
	free(req->strings);
	free(req->opts);
	free(req->data);
	free(req);
}

/* Request options (wsman:OptionSet) from a message. */
static void
req_options(struct hreq *req, const struct wrm_hmsg *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->n; i++)
		if (m->f[i].tag == HT_OPT_NAME)
			n++;
	if (n == 0 || (req->opts = calloc(n, sizeof(*req->opts))) == NULL)
		return;
	n = 0;
	for (i = 0; i < m->n; i++) {
		if (m->f[i].tag == HT_OPT_NAME)
			req->opts[n++].name = req_keep(req,
			    wrm_hfield_str(&m->f[i]));
		else if (m->f[i].tag == HT_OPT_VALUE && n > 0)
			req->opts[n - 1].value = req_keep(req,
			    wrm_hfield_str(&m->f[i]));
		else if (m->f[i].tag == HT_OPT_MC && n > 0)
			req->opts[n - 1].must_comply = wrm_hfield_u64(&m->f[i]);
	}
	req->pub.options = req->opts;
	req->pub.n_options = n;
}

/* ---- output targets ---- */

static void
chunks_free(struct hchunk *c)
{
	struct hchunk *n;

	for (; c != NULL; c = n) {
		n = c->next;
		free(c->stream);
		free(c->data);
		free(c);
	}
}

static void
target_init(struct htarget *t, struct hshell *sh, struct hcmd *cmd)
{
	memset(t, 0, sizeof(*t));
	t->shell = sh;
	t->cmd = cmd;
}

static void
target_clear(struct htarget *t)
{
	chunks_free(t->head);
	chunks_free(t->inflight);
	t->head = t->tail = t->inflight = NULL;
	t->bytes = 0;
	free(t->error_msg);
	t->error_msg = NULL;
	host_api.unwatch(t->notify_timer);
	t->notify_timer = NULL;
	if (t->receive_req != NULL) {
		t->receive_req->target = NULL;
		t->receive_req = NULL;
	}
}

static void
notify_fire(void *arg)
{
	struct htarget *t = arg;

	t->notify_timer = NULL;
	target_notify(t, true);
}

/* Tell the daemon output is waiting (coalesced). */
static void
target_notify(struct htarget *t, bool now)
{
	struct wrm_buf b;
	size_t st;

	if (t->notify_pending)
		return;
	if (!now) {
		if (t->notify_timer == NULL)
			host_api.add_timer(NOTIFY_COALESCE_MS, notify_fire, t,
			    &t->notify_timer);
		return;
	}
	if (t->notify_timer != NULL) {
		host_api.unwatch(t->notify_timer);
		t->notify_timer = NULL;
	}
	t->notify_pending = true;
	wrm_buf_init(&b, 0);
	if (wrm_hmsg_begin(&b, HM_EV_OUTPUT, 0, &st) == 0 &&
	    wrm_hmsg_put_str(&b, HT_SHELL_ID, t->shell->id) == 0 &&
	    (t->cmd == NULL || wrm_hmsg_put_str(&b, HT_COMMAND_ID,
	    t->cmd->id) == 0) && wrm_hmsg_end(&b, st) == 0)
		host_send(&b);
	wrm_buf_free(&b);
}

static int
target_append(struct htarget *t, struct hchunk *c)
{
	if (t->tail != NULL)
		t->tail->next = c;
	else
		t->head = c;
	t->tail = c;
	t->bytes += c->len;
	return 0;
}

/*
 * A chunk's flags word carries the cumulative command state in bits 8-15
 * and the chunk's own WRM_RESULT_* flags in bits 0-7; the exit code rides
 * in a separate field on DONE.
 */
#define CHUNK_STATE_SHIFT	8
#define CHUNK_STATE(c)		(((c)->flags >> CHUNK_STATE_SHIFT) & 0xff)

/*
 * BufferMode Drop: make room by discarding the oldest ordinary output,
 * never a chunk that carries a state change or that the plugin marked
 * WRM_RESULT_NO_DROP (PowerShell's state, host call and key messages).
 */
static void
drop_oldest(struct htarget *t)
{
	struct hchunk *c, *prev = NULL, *next;

	for (c = t->head; c != NULL && t->bytes > host_buffer_limit;
	    c = next) {
		next = c->next;
		if ((c->flags & WRM_RESULT_NO_DROP) ||
		    CHUNK_STATE(c) == WRM_COMMAND_STATE_DONE ||
		    CHUNK_STATE(c) == WRM_COMMAND_STATE_PENDING) {
			prev = c;
			continue;
		}
		if (prev != NULL)
			prev->next = next;
		else
			t->head = next;
		if (t->tail == c)
			t->tail = prev;
		t->bytes -= c->len;
		c->next = NULL;
		chunks_free(c);
		t->dropped++;
	}
}

static int
result_on_loop(struct hreq *req, struct hchunk *c, enum wrm_command_state state,
    uint32_t exit_code)
{
	struct htarget *t = req->target;

	if (req->completed || t == NULL || t->done) {
		chunks_free(c);
		return -1;
	}
	if (state != WRM_COMMAND_STATE_NONE) {
		t->state = state;
		t->state_fresh = true;
	}
	c->flags |= (uint32_t)t->state << CHUNK_STATE_SHIFT;
	if (state == WRM_COMMAND_STATE_DONE) {
		t->done = true;
		t->exit_code = exit_code;
		t->done_flags = c->flags;
	}
	if (c->len == 0 && state == WRM_COMMAND_STATE_NONE) {
		chunks_free(c);
		return 0;
	}
	target_append(t, c);
	target_notify(t, t->done || (c->flags & WRM_RESULT_ATOMIC));
	if (t->bytes > host_buffer_limit && t->drop)
		drop_oldest(t);
	if (t->bytes > host_buffer_limit && !t->drop) {
		t->paused = true;
		return WRM_RECEIVE_FULL;
	}
	return WRM_RECEIVE_MORE;
}

struct result_msg {
	struct hreq *req;
	struct hchunk *c;
	enum wrm_command_state state;
	uint32_t exit_code;
};

static void
result_post_fn(void *arg)
{
	struct result_msg *rm = arg;

	result_on_loop(rm->req, rm->c, rm->state, rm->exit_code);
	free(rm);
}

static int
api_receive_result(struct wrm_request *pub, uint32_t flags,
    const char *stream, const uint8_t *data, size_t len,
    enum wrm_command_state state, uint32_t exit_code)
{
	struct hreq *req = (struct hreq *)pub;
	struct result_msg *rm;
	struct hchunk *c;

	if (req == NULL || req->kind != HREQ_RECEIVE)
		return -1;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	c->stream = strdup(stream != NULL ? stream : "stdout");
	c->flags = flags & 0xff;
	c->len = len;
	if (len > 0 && (c->data = malloc(len)) != NULL)
		memcpy(c->data, data, len);
	if (c->stream == NULL || (len > 0 && c->data == NULL)) {
		chunks_free(c);
		return -1;
	}
	if (on_loop_thread())
		return result_on_loop(req, c, state, exit_code);
	if ((rm = malloc(sizeof(*rm))) == NULL) {
		chunks_free(c);
		return -1;
	}
	rm->req = req;
	rm->c = c;
	rm->state = state;
	rm->exit_code = exit_code;
	wrm_loop_post(host_loop, result_post_fn, rm);
	return WRM_RECEIVE_MORE;
}

static struct hshell *
find_shell(const char *id)
{
	struct hshell *sh;

	if (id == NULL)
		return NULL;
	for (sh = shells; sh != NULL; sh = sh->next)
		if (wrm_guid_eq(sh->id, id) || strcasecmp(sh->id, id) == 0)
			return sh;
	return NULL;
}

static struct hcmd *
find_cmd(struct hshell *sh, const char *id)
{
	struct hcmd *c;

	if (sh == NULL || id == NULL)
		return NULL;
	for (c = sh->cmds; c != NULL; c = c->next)
		if (!c->released && strcasecmp(c->id, id) == 0)
			return c;
	return NULL;
}

/* Resolve the target a message names; NULL when unknown. */
static struct htarget *
msg_target(const struct wrm_hmsg *m, struct hshell **sh_r, struct hcmd **cmd_r)
{
	char *sid = wrm_hmsg_str(m, HT_SHELL_ID);
	char *cid = wrm_hmsg_str(m, HT_COMMAND_ID);
	struct hshell *sh = find_shell(sid);
	struct hcmd *cmd = NULL;
	struct htarget *t = NULL;

	if (sh != NULL && cid != NULL) {
		cmd = find_cmd(sh, cid);
		t = cmd != NULL && !cmd->terminated ? &cmd->out : NULL;
	} else if (sh != NULL)
		t = &sh->out;
	free(sid);
	free(cid);
	*sh_r = sh;
	*cmd_r = cmd;
	return t;
}

static size_t
b64_cost(size_t len, size_t overhead)
{
	return (len + 2) / 3 * 4 + overhead;
}

void
host_on_pull(const struct wrm_hmsg *m)
{
	uint64_t budget = wrm_hmsg_u64(m, HT_BUDGET, 65536);
	uint64_t overhead = wrm_hmsg_u64(m, HT_CHUNK_OVERHEAD, 200);
	uint64_t delivery = wrm_hmsg_u64(m, HT_DELIVERY, 0);
	struct hchunk *c, *taken = NULL, **tailp = &taken, *split;
	struct hshell *sh;
	struct hcmd *cmd;
	struct htarget *t = msg_target(m, &sh, &cmd);
	struct wrm_buf b;
	size_t st, used = 0, n, cost;
	uint32_t state = 0;
	bool done = false;

	wrm_buf_init(&b, 0);
	if (t == NULL) {
		host_reply(m->reqid, WRM_ERROR_INVALID_SELECTORS, NULL, NULL, 0);
		return;
	}
	t->notify_pending = false;
	if (t->error != 0 && t->head == NULL && t->inflight == NULL) {
		host_reply(m->reqid, t->error, t->error_msg, NULL, 0);
		return;
	}
	if (t->inflight == NULL && !t->inflight_done) {
		while ((c = t->head) != NULL) {
			cost = b64_cost(c->len, overhead);
			if (used + cost > budget && taken != NULL &&
			    ((c->flags & WRM_RESULT_ATOMIC) ||
			    budget - used < overhead + 64))
				break;
			if (used + cost > budget && !(c->flags &
			    WRM_RESULT_ATOMIC) && budget > used + overhead + 4) {
				n = (budget - used - overhead) / 4 * 3;
				if (n == 0)
					n = 1;
				if (n < c->len) {
					if ((split = calloc(1, sizeof(*split))) ==
					    NULL || (split->stream =
					    strdup(c->stream)) == NULL ||
					    (split->data = malloc(n)) == NULL) {
						chunks_free(split);
						break;
					}
					memcpy(split->data, c->data, n);
					split->len = n;
					split->flags = (c->flags & 0xff) |
					    ((uint32_t)WRM_COMMAND_STATE_RUNNING <<
					    CHUNK_STATE_SHIFT);
					if (CHUNK_STATE(c) !=
					    WRM_COMMAND_STATE_RUNNING)
						split->flags = c->flags & 0xff;
					memmove(c->data, c->data + n, c->len - n);
					c->len -= n;
					*tailp = split;
					tailp = &split->next;
					used += b64_cost(n, overhead);
					break;
				}
			}
			t->head = c->next;
			if (t->head == NULL)
				t->tail = NULL;
			c->next = NULL;
			*tailp = c;
			tailp = &c->next;
			used += cost;
			if (CHUNK_STATE(c) == WRM_COMMAND_STATE_DONE)
				break;
		}
	}
	if (wrm_hmsg_begin(&b, HM_REPLY, m->reqid, &st) != 0)
		goto out;
	wrm_hmsg_put_u64(&b, HT_ERROR, 0);
	for (c = taken; c != NULL; c = c->next) {
		state = CHUNK_STATE(c);
		if (state == WRM_COMMAND_STATE_DONE)
			done = true;
		if (c->len == 0 && state == 0)
			continue;
		wrm_hmsg_put_str(&b, HT_CHUNK_STREAM, c->stream);
		wrm_hmsg_put(&b, HT_CHUNK_DATA, c->data, c->len);
		wrm_hmsg_put_u64(&b, HT_CHUNK_FLAGS, c->flags & 0xff);
	}
	if (taken != NULL) {
		wrm_hmsg_put_u64(&b, HT_STATE, state);
		wrm_hmsg_put_u64(&b, HT_DELIVERY, delivery);
		if (done) {
			wrm_hmsg_put_u64(&b, HT_EXIT_CODE, t->exit_code);
			wrm_hmsg_put_u64(&b, HT_FLAGS, t->done_flags & 0xff);
		}
		t->inflight = taken;
		t->inflight_id = delivery;
		t->inflight_done = done;
	}
	if (t->head != NULL)
		wrm_hmsg_put_u64(&b, HT_MORE, 1);
	if (wrm_hmsg_end(&b, st) == 0)
		host_send(&b);
out:
	wrm_buf_free(&b);
}

void
host_on_commit(const struct wrm_hmsg *m, bool commit)
{
	uint64_t delivery = wrm_hmsg_u64(m, HT_DELIVERY, 0);
	struct hshell *sh;
	struct hcmd *cmd;
	struct htarget *t = msg_target(m, &sh, &cmd);
	struct hchunk *c, *last;
	size_t n = 0;

	if (t == NULL || t->inflight_id != delivery ||
	    (t->inflight == NULL && !t->inflight_done))
		return;
	if (commit) {
		for (c = t->inflight; c != NULL; c = c->next)
			n += c->len;
		chunks_free(t->inflight);
		t->bytes -= n < t->bytes ? n : t->bytes;
		if (t->inflight_done)
			t->done_delivered = true;
	} else if (t->inflight != NULL) {
		for (last = t->inflight; last->next != NULL; last = last->next)
			;
		last->next = t->head;
		t->head = t->inflight;
		if (t->tail == NULL)
			t->tail = last;
	}
	t->inflight = NULL;
	t->inflight_done = false;
	if (t->paused && t->bytes < host_buffer_limit / 2 &&
	    t->receive_req != NULL && !t->receive_req->completed) {
		t->paused = false;
		plugin.p->receive(plugin_ctx, &t->receive_req->pub,
		    t->shell->ctx, t->cmd != NULL ? t->cmd->ctx : NULL);
	}
	if (t->head != NULL)
		target_notify(t, true);
}

/* ---- completion ---- */

static void
start_receive(struct htarget *t)
{
	struct hreq *req = req_new(HREQ_RECEIVE, 0, t->shell, t->cmd);

	if (req == NULL)
		return;
	req->target = t;
	t->receive_req = req;
	plugin.p->receive(plugin_ctx, &req->pub, t->shell->ctx,
	    t->cmd != NULL ? t->cmd->ctx : NULL);
}

static void
shell_unlink(struct hshell *sh)
{
	struct hshell **pp;

	for (pp = &shells; *pp != NULL; pp = &(*pp)->next)
		if (*pp == sh) {
			*pp = sh->next;
			break;
		}
}

static void
shell_free(struct hshell *sh)
{
	struct hcmd *c, *n;

	target_clear(&sh->out);
	host_api.unwatch(sh->delete_timer);
	for (c = sh->cmds; c != NULL; c = n) {
		n = c->next;
		target_clear(&c->out);
		free(c->id);
		free(c);
	}
	free(sh->id);
	free(sh->user);
	free(sh->auth);
	free(sh->client_ip);
	free(sh->resource_uri);
	free(sh->locale);
	free(sh->data_locale);
	free(sh);
}

static void
cmd_unlink(struct hcmd *cmd)
{
	struct hcmd **pp;

	for (pp = &cmd->shell->cmds; *pp != NULL; pp = &(*pp)->next)
		if (*pp == cmd) {
			*pp = cmd->next;
			break;
		}
}

static void
cmd_try_release(struct hcmd *cmd)
{
	struct hshell *sh = cmd->shell;

	if (cmd->released || !cmd->terminated)
		return;
	if (cmd->out.receive_req != NULL && !cmd->out.receive_req->completed)
		return;
	cmd->released = true;
	if (cmd->ctx_reported)
		plugin.p->release_command(plugin_ctx, sh->ctx, cmd->ctx);
	cmd_unlink(cmd);
	target_clear(&cmd->out);
	free(cmd->id);
	free(cmd);
	if (sh->deleting)
		shell_try_finish_delete(sh);
}

static void
shell_try_finish_delete(struct hshell *sh)
{
	uint32_t reqid = sh->delete_reqid;

	if (sh->cmds != NULL || sh->delete_setup)
		return;
	if (sh->out.receive_req != NULL && !sh->out.receive_req->completed)
		return;
	if (sh->ctx_reported)
		plugin.p->release_shell(plugin_ctx, sh->ctx);
	shell_unlink(sh);
	shell_free(sh);
	if (reqid != 0)
		host_reply(reqid, 0, NULL, NULL, 0);
	host_maybe_exit();
}

static void
complete_on_loop(struct hreq *req, uint32_t error, const char *msg,
    const uint8_t *data, size_t len)
{
	struct hshell *sh = req->shell;
	struct hcmd *cmd = req->cmd;

	if (req->completed) {
		error_f("operation completed twice; ignored");
		return;
	}
	req->completed = true;
	switch (req->kind) {
	case HREQ_SHELL:
		host_reply(req->reqid, error, msg, NULL, 0);
		if (error != 0) {
			if (sh->ctx_reported)
				plugin.p->release_shell(plugin_ctx, sh->ctx);
			shell_unlink(sh);
			shell_free(sh);
			req_free(req);
			host_maybe_exit();
			return;
		}
		sh->created = true;
		start_receive(&sh->out);
		break;
	case HREQ_COMMAND:
		host_reply(req->reqid, error, msg, NULL, 0);
		if (error != 0) {
			cmd->terminated = true;
			cmd_try_release(cmd);
			break;
		}
		start_receive(&cmd->out);
		break;
	case HREQ_RECEIVE:
		if (req->target != NULL && error != 0 &&
		    !req->target->done) {
			/*
			 * The plugin failed the output of the command (or of
			 * the whole shell): the next Receive gets the
			 * plugin's error as a fault, after whatever output
			 * came before it.
			 */
			req->target->receive_req = NULL;
			req->target->done = true;
			req->target->error = error;
			req->target->error_msg = wrm_strdup0(msg);
			target_notify(req->target, true);
		} else if (req->target != NULL) {
			req->target->receive_req = NULL;
			if (!req->target->done) {
				/* Finished without DONE: report DONE now. */
				struct hchunk *c = calloc(1, sizeof(*c));

				if (c != NULL && (c->stream = strdup("stdout"))) {
					req->completed = false;
					result_on_loop(req, c,
					    WRM_COMMAND_STATE_DONE, error);
					req->completed = true;
				} else
					chunks_free(c);
			}
		}
		if (cmd != NULL)
			cmd_try_release(cmd);
		else if (sh != NULL && sh->deleting)
			shell_try_finish_delete(sh);
		break;
	case HREQ_SIGNAL:
		if (req->reqid != 0)
			host_reply(req->reqid, error, msg, NULL, 0);
		if (req->is_terminate && cmd != NULL && error == 0) {
			cmd->terminated = true;
			cmd_try_release(cmd);
		}
		break;
	case HREQ_SEND:
	case HREQ_CONNECT:
	case HREQ_DELETE:
		host_reply(req->reqid, error, msg, data, len);
		break;
	}
	req_free(req);
}

struct complete_msg {
	struct hreq *req;
	uint32_t error;
	char *msg;
	uint8_t *data;
	size_t len;
};

static void
complete_post_fn(void *arg)
{
	struct complete_msg *cm = arg;

	complete_on_loop(cm->req, cm->error, cm->msg, cm->data, cm->len);
	free(cm->msg);
	free(cm->data);
	free(cm);
}

static void
complete_req(struct hreq *req, uint32_t error, const char *msg,
    const uint8_t *data, size_t len)
{
	struct complete_msg *cm;

	if (on_loop_thread()) {
		complete_on_loop(req, error, msg, data, len);
		return;
	}
	if ((cm = calloc(1, sizeof(*cm))) == NULL)
		return;
	cm->req = req;
	cm->error = error;
	cm->msg = wrm_strdup0(msg);
	if (len > 0 && (cm->data = malloc(len)) != NULL) {
		memcpy(cm->data, data, len);
		cm->len = len;
	}
	wrm_loop_post(host_loop, complete_post_fn, cm);
}

static void
api_operation_complete(struct wrm_request *pub, uint32_t error,
    const char *message, const uint8_t *data, size_t len)
{
	if (pub == NULL)
		return;
	complete_req((struct hreq *)pub, error, message, data, len);
}

struct ctx_msg {
	struct hreq *req;
	void *ctx;
};

static void
report_on_loop(struct hreq *req, void *ctx)
{
	if (req->kind == HREQ_SHELL && req->shell != NULL) {
		req->shell->ctx = ctx;
		req->shell->ctx_reported = true;
	} else if (req->kind == HREQ_COMMAND && req->cmd != NULL) {
		req->cmd->ctx = ctx;
		req->cmd->ctx_reported = true;
	}
}

static void
report_post_fn(void *arg)
{
	struct ctx_msg *cm = arg;

	report_on_loop(cm->req, cm->ctx);
	free(cm);
}

static void
api_report_context(struct wrm_request *pub, void *ctx)
{
	struct ctx_msg *cm;

	if (pub == NULL)
		return;
	if (on_loop_thread()) {
		report_on_loop((struct hreq *)pub, ctx);
		return;
	}
	if ((cm = malloc(sizeof(*cm))) == NULL)
		return;
	cm->req = (struct hreq *)pub;
	cm->ctx = ctx;
	wrm_loop_post(host_loop, report_post_fn, cm);
}

static const char *
api_get_configuration(const char *name)
{
	size_t i;

	for (i = 0; i < n_conf_opts; i++)
		if (strcasecmp(conf_opts[i].k, name) == 0)
			return conf_opts[i].v;
	return NULL;
}

static void
api_log(int priority, const char *fmt, ...)
{
	enum wrm_log_level l;
	va_list ap;

	if (priority <= LOG_ERR)
		l = WRM_LOG_ERROR;
	else if (priority <= LOG_NOTICE)
		l = WRM_LOG_INFO;
	else if (priority == LOG_INFO)
		l = WRM_LOG_VERBOSE;
	else
		l = WRM_LOG_DEBUG1;
	va_start(ap, fmt);
	wrm_logv(l, NULL, 0, fmt, ap);
	va_end(ap);
}

static void
watch_io_fn(int fd, uint32_t events, void *arg)
{
	struct wrm_watch *w = arg;
	uint32_t ev = 0;

	if (events & WRM_LOOP_READ)
		ev |= WRM_EV_READ;
	if (events & WRM_LOOP_WRITE)
		ev |= WRM_EV_WRITE;
	if (events & WRM_LOOP_ERROR)
		ev |= WRM_EV_ERROR;
	w->fd_fn(fd, ev, w->arg);
}

static uint32_t
to_loop_events(uint32_t ev)
{
	return ((ev & WRM_EV_READ) ? WRM_LOOP_READ : 0) |
	    ((ev & WRM_EV_WRITE) ? WRM_LOOP_WRITE : 0);
}

static int
api_watch_fd(int fd, uint32_t events, wrm_fd_fn fn, void *arg,
    struct wrm_watch **watch_r)
{
	struct wrm_watch *w;
	int r;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->fd = fd;
	w->fd_fn = fn;
	w->arg = arg;
	if ((r = wrm_loop_watch(host_loop, fd, to_loop_events(events),
	    watch_io_fn, w, &w->io)) != 0) {
		free(w);
		return -errno;
	}
	*watch_r = w;
	return 0;
}

static int
api_modify_fd(struct wrm_watch *w, uint32_t events)
{
	if (w == NULL || w->io == NULL)
		return -EINVAL;
	return wrm_loop_modify(w->io, to_loop_events(events)) == 0 ? 0 :
	    -errno;
}

static void
watch_timer_fn(void *arg)
{
	struct wrm_watch *w = arg;
	wrm_timer_fn fn = w->timer_fn;
	void *a = w->arg;

	free(w);
	fn(a);
}

static int
api_add_timer(uint64_t ms, wrm_timer_fn fn, void *arg,
    struct wrm_watch **watch_r)
{
	struct wrm_watch *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->timer_fn = fn;
	w->arg = arg;
	if (wrm_timer_add(host_loop, ms, watch_timer_fn, w, &w->timer) != 0) {
		free(w);
		return -ENOMEM;
	}
	if (watch_r != NULL)
		*watch_r = w;
	return 0;
}

static void
api_unwatch(struct wrm_watch *w)
{
	if (w == NULL)
		return;
	if (w->io != NULL)
		wrm_loop_unwatch(w->io);
	if (w->timer != NULL)
		wrm_timer_cancel(w->timer);
	free(w);
}

static int
api_watch_child(pid_t pid, wrm_child_fn fn, void *arg)
{
	struct child_watch *cw;

	if ((cw = calloc(1, sizeof(*cw))) == NULL)
		return -ENOMEM;
	cw->pid = pid;
	cw->fn = fn;
	cw->arg = arg;
	cw->next = child_watches;
	child_watches = cw;
	return 0;
}

/* Reap every exited child; call the watchers of the ones watched. */
void host_reap_children(void);
void
host_reap_children(void)
{
	struct child_watch **pp, *cw;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (pp = &child_watches; (cw = *pp) != NULL; pp = &cw->next) {
			if (cw->pid != pid)
				continue;
			*pp = cw->next;
			cw->fn(pid, status, cw->arg);
			free(cw);
			break;
		}
	}
}

const struct wrm_host_api host_api = {
	.abi_major = WRM_PLUGIN_ABI_MAJOR,
	.abi_minor = WRM_PLUGIN_ABI_MINOR,
	.size = sizeof(struct wrm_host_api),
	.report_context = api_report_context,
	.receive_result = api_receive_result,
	.operation_complete = api_operation_complete,
	.get_configuration = api_get_configuration,
	.log = api_log,
	.watch_fd = api_watch_fd,
	.modify_fd = api_modify_fd,
	.add_timer = api_add_timer,
	.unwatch = api_unwatch,
	.watch_child = api_watch_child,
};

/* ---- daemon requests ---- */

static int
plugin_load_named(const struct wrm_hmsg *create, char *why, size_t whylen)
{
	char *dir = wrm_hmsg_str(create, HT_PLUGIN_DIR);
	char *name = wrm_hmsg_str(create, HT_PLUGIN), *path;
	int r;

	path = wrm_plugin_path(dir != NULL ? dir : ".", name != NULL ? name :
	    "");
	if (path == NULL) {
		snprintf(why, whylen, "plugin %s not found in %s",
		    name ? name : "?", dir ? dir : ".");
		r = WRM_ERR_PLUGIN;
	} else
		r = wrm_plugin_load(path, &host_api, &plugin, why, whylen);
	free(path);
	free(dir);
	free(name);
	return r;
}

int
host_plugin_ensure(const struct wrm_hmsg *create, bool warm, char *why,
    size_t whylen)
{
	struct wrm_plugin_startup info;
	char *cfg, *uri, *locale, *name;
	size_t i;
	int r;

	if (plugin_started) {
		name = wrm_hmsg_str(create, HT_PLUGIN);
		r = name != NULL && strcmp(plugin.p->name, name) != 0 &&
		    strstr(plugin.path, name) == NULL;
		if (r)
			snprintf(why, whylen, "host already runs plugin %s",
			    plugin.p->name);
		free(name);
		return r ? WRM_ERR_PLUGIN : 0;
	}
	on_loop_thread();
	if ((r = plugin_load_named(create, why, whylen)) != 0)
		return r;
	for (i = 0; i < create->n; i++) {
		if (create->f[i].tag == HT_CONF_NAME) {
			void *n = realloc(conf_opts, (n_conf_opts + 1) *
			    sizeof(*conf_opts));
			if (n == NULL)
				break;
			conf_opts = n;
			conf_opts[n_conf_opts].k = wrm_hfield_str(&create->f[i]);
			conf_opts[n_conf_opts].v = NULL;
			n_conf_opts++;
		} else if (create->f[i].tag == HT_CONF_VALUE && n_conf_opts > 0)
			conf_opts[n_conf_opts - 1].v =
			    wrm_hfield_str(&create->f[i]);
	}
	cfg = wrm_hmsg_str(create, HT_CONFIG);
	uri = wrm_hmsg_str(create, HT_RESOURCE_URI);
	locale = wrm_hmsg_str(create, HT_LOCALE);
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	info.configuration = cfg;
	info.resource_uri = uri;
	info.warm = warm;
	info.warm_locale = locale;
	r = plugin.p->startup(&info, &plugin_ctx);
	free(cfg);
	free(uri);
	free(locale);
	if (r != 0) {
		snprintf(why, whylen, "plugin %s failed to start (%d)",
		    plugin.p->name, r);
		return WRM_ERR_PLUGIN;
	}
	plugin_started = true;
	debug_f("plugin %s %s loaded", plugin.p->name, plugin.p->version);
	return 0;
}

void
host_on_shell_create(const struct wrm_hmsg *m)
{
	struct wrm_shell_startup info;
	struct wrm_env_var *env = NULL;
	struct hshell *sh;
	struct hreq *req;
	const struct wrm_hfield *data;
	char why[512];
	size_t i, n_env = 0;
	int r;

	if ((r = host_plugin_ensure(m, false, why, sizeof(why))) != 0) {
		error("%s", why);
		host_reply(m->reqid, WRM_ERROR_PLUGIN_FAILED, why, NULL, 0);
		host_maybe_exit();
		return;
	}
	if ((sh = calloc(1, sizeof(*sh))) == NULL) {
		host_reply(m->reqid, WRM_ERROR_NOT_ENOUGH_MEMORY, NULL, NULL, 0);
		return;
	}
	sh->id = wrm_hmsg_str(m, HT_SHELL_ID);
	sh->user = wrm_hmsg_str(m, HT_USER);
	sh->auth = wrm_hmsg_str(m, HT_AUTH);
	sh->client_ip = wrm_hmsg_str(m, HT_CLIENT_IP);
	sh->resource_uri = wrm_hmsg_str(m, HT_RESOURCE_URI);
	sh->locale = wrm_hmsg_str(m, HT_LOCALE);
	sh->data_locale = wrm_hmsg_str(m, HT_DATA_LOCALE);
	target_init(&sh->out, sh, NULL);
	sh->next = shells;
	shells = sh;
	if ((req = req_new(HREQ_SHELL, m->reqid, sh, NULL)) == NULL) {
		host_reply(m->reqid, WRM_ERROR_NOT_ENOUGH_MEMORY, NULL, NULL, 0);
		shell_unlink(sh);
		shell_free(sh);
		return;
	}
	req_options(req, m);
	for (i = 0; i < m->n; i++)
		if (m->f[i].tag == HT_ENV_NAME)
			n_env++;
	if (n_env > 0 && (env = calloc(n_env, sizeof(*env))) != NULL) {
		n_env = 0;
		for (i = 0; i < m->n; i++) {
			if (m->f[i].tag == HT_ENV_NAME)
				env[n_env++].name = req_keep(req,
				    wrm_hfield_str(&m->f[i]));
			else if (m->f[i].tag == HT_ENV_VALUE && n_env > 0)
				env[n_env - 1].value = req_keep(req,
				    wrm_hfield_str(&m->f[i]));
		}
	}
	memset(&info, 0, sizeof(info));
	info.size = sizeof(info);
	info.name = req_keep(req, wrm_hmsg_str(m, HT_NAME));
	info.working_directory = req_keep(req, wrm_hmsg_str(m, HT_WORKDIR));
	info.env = env;
	info.n_env = env != NULL ? n_env : 0;
	info.input_streams = req_keep(req, wrm_hmsg_str(m, HT_IN_STREAMS));
	info.output_streams = req_keep(req, wrm_hmsg_str(m, HT_OUT_STREAMS));
	info.idle_timeout_ms = wrm_hmsg_u64(m, HT_IDLE_MS, 0);
	if ((data = wrm_hmsg_get(m, HT_DATA)) != NULL && data->len > 0 &&
	    (req->data = malloc(data->len)) != NULL) {
		memcpy(req->data, data->p, data->len);
		req->len = data->len;
		info.inbound = req->data;
		info.inbound_len = req->len;
	}
	/* env array lives as long as the request: keep it in strings. */
	if (env != NULL)
		req_keep(req, (char *)env);
	plugin.p->shell(plugin_ctx, &req->pub, &info);
}

void
host_on_command(const struct wrm_hmsg *m)
{
	char *sid = wrm_hmsg_str(m, HT_SHELL_ID);
	char *cid = wrm_hmsg_str(m, HT_COMMAND_ID);
	struct hshell *sh = find_shell(sid);
	const char **args = NULL;
	struct hcmd *cmd;
	struct hreq *req;
	size_t i, n = 0;

	free(sid);
	if (sh == NULL || !sh->created || sh->deleting || cid == NULL) {
		host_reply(m->reqid, WRM_ERROR_INVALID_SELECTORS, NULL, NULL, 0);
		free(cid);
		return;
	}
	if (find_cmd(sh, cid) != NULL) {
		host_reply(m->reqid, WRM_ERROR_INVALID_PARAMETER,
		    "A command with this CommandId exists. ", NULL, 0);
		free(cid);
		return;
	}
	if ((cmd = calloc(1, sizeof(*cmd))) == NULL ||
	    (req = req_new(HREQ_COMMAND, m->reqid, sh, cmd)) == NULL) {
		free(cmd);
		free(cid);
		host_reply(m->reqid, WRM_ERROR_NOT_ENOUGH_MEMORY, NULL, NULL, 0);
		return;
	}
	cmd->id = cid;
	cmd->shell = sh;
	req->pub.command_id = cmd->id;
	target_init(&cmd->out, sh, cmd);
	cmd->next = sh->cmds;
	sh->cmds = cmd;
	req_options(req, m);
	for (i = 0; i < m->n; i++)
		if (m->f[i].tag == HT_ARG)
			n++;
	args = calloc(n + 1, sizeof(*args));
	n = 0;
	for (i = 0; args != NULL && i < m->n; i++)
		if (m->f[i].tag == HT_ARG)
			args[n++] = req_keep(req, wrm_hfield_str(&m->f[i]));
	if (args != NULL)
		req_keep(req, (char *)args);
	plugin.p->command(plugin_ctx, &req->pub, sh->ctx,
	    req_keep(req, wrm_hmsg_str(m, HT_COMMAND_LINE)), args,
	    args != NULL ? n : 0);
}

void
host_on_send(const struct wrm_hmsg *m)
{
	const struct wrm_hfield *data = wrm_hmsg_get(m, HT_DATA);
	struct hshell *sh;
	struct hcmd *cmd;
	char *cid = wrm_hmsg_str(m, HT_COMMAND_ID);
	struct htarget *t = msg_target(m, &sh, &cmd);
	struct hreq *req;

	if (sh == NULL || (cid != NULL && cmd == NULL)) {
		free(cid);
		host_reply(m->reqid, WRM_ERROR_INVALID_SELECTORS, NULL, NULL, 0);
		return;
	}
	free(cid);
	if (t == NULL || (cmd != NULL && cmd->terminated)) {
		/* Input for a finished command is discarded, as on Windows. */
		host_reply(m->reqid, 0, NULL, NULL, 0);
		return;
	}
	if ((req = req_new(HREQ_SEND, m->reqid, sh, cmd)) == NULL) {
		host_reply(m->reqid, WRM_ERROR_NOT_ENOUGH_MEMORY, NULL, NULL, 0);
		return;
	}
	req_options(req, m);
	if (data != NULL && data->len > 0) {
		if ((req->data = malloc(data->len)) == NULL) {
			req_free(req);
			host_reply(m->reqid, WRM_ERROR_NOT_ENOUGH_MEMORY, NULL,
			    NULL, 0);
			return;
		}
		memcpy(req->data, data->p, data->len);
		req->len = data->len;
	}
	plugin.p->send(plugin_ctx, &req->pub, sh->ctx,
	    cmd != NULL ? cmd->ctx : NULL,
	    req_keep(req, wrm_hmsg_str(m, HT_STREAM)), req->data, req->len,
	    wrm_hmsg_u64(m, HT_END, 0) ? WRM_SEND_END : 0);
}

static bool
is_terminate(const char *code)
{
	size_t n = strlen(code), k = strlen("terminate");

	return n >= k && strcasecmp(code + n - k, "terminate") == 0;
}

void
host_on_signal(const struct wrm_hmsg *m)
{
	char *cid = wrm_hmsg_str(m, HT_COMMAND_ID);
	char *code = wrm_hmsg_str(m, HT_CODE);
	struct hshell *sh;
	struct hcmd *cmd;
	struct hreq *req;

	msg_target(m, &sh, &cmd);
	if (sh == NULL || (cid != NULL && cmd == NULL) || code == NULL) {
		host_reply(m->reqid, WRM_ERROR_INVALID_SELECTORS, NULL, NULL, 0);
		free(cid);
		free(code);
		return;
	}
	free(cid);
	if (cmd != NULL && cmd->terminated) {
		/* Already terminated: success, nothing to do. */
		host_reply(m->reqid, 0, NULL, NULL, 0);
		free(code);
		return;
	}
	if ((req = req_new(HREQ_SIGNAL, m->reqid, sh, cmd)) == NULL) {
		host_reply(m->reqid, WRM_ERROR_NOT_ENOUGH_MEMORY, NULL, NULL, 0);
		free(code);
		return;
	}
	req->is_terminate = is_terminate(code);
	req_options(req, m);
	plugin.p->signal(plugin_ctx, &req->pub, sh->ctx,
	    cmd != NULL ? cmd->ctx : NULL, req_keep(req, code));
}

static void
delete_timeout(void *arg)
{
	struct hshell *sh = arg;
	struct hcmd *c;

	sh->delete_timer = NULL;
	error("shell %s: plugin did not finish closing in time; forcing",
	    sh->id);
	for (c = sh->cmds; c != NULL; c = c->next) {
		c->terminated = true;
		if (c->out.receive_req != NULL)
			c->out.receive_req->completed = true;
	}
	if (sh->out.receive_req != NULL)
		sh->out.receive_req->completed = true;
	while (sh->cmds != NULL)
		cmd_try_release(sh->cmds);
	shell_try_finish_delete(sh);
}

void
host_on_delete(const struct wrm_hmsg *m)
{
	char *sid = wrm_hmsg_str(m, HT_SHELL_ID);
	struct hshell *sh = find_shell(sid);
	struct hcmd *c, *next;
	struct hreq *req;

	free(sid);
	if (sh == NULL || sh->deleting) {
		host_reply(m->reqid, WRM_ERROR_INVALID_SELECTORS, NULL, NULL, 0);
		return;
	}
	sh->deleting = true;
	sh->delete_setup = true;
	sh->delete_reqid = m->reqid;
	for (c = sh->cmds; c != NULL; c = next) {
		next = c->next;
		if (c->terminated)
			continue;
		if ((req = req_new(HREQ_SIGNAL, 0, sh, c)) == NULL)
			continue;
		req->is_terminate = true;
		plugin.p->signal(plugin_ctx, &req->pub, sh->ctx, c->ctx,
		    URI_TERMINATE_FOR_DELETE);
	}
	if ((req = req_new(HREQ_SIGNAL, 0, sh, NULL)) != NULL) {
		req->is_terminate = true;
		plugin.p->signal(plugin_ctx, &req->pub, sh->ctx, NULL,
		    URI_TERMINATE_FOR_DELETE);
	}
	host_api.add_timer(RELEASE_TIMEOUT_MS, delete_timeout, sh,
	    &sh->delete_timer);
	sh->delete_setup = false;
	shell_try_finish_delete(sh);
}

void
host_on_connect(const struct wrm_hmsg *m)
{
	const struct wrm_hfield *d = wrm_hmsg_get(m, HT_DATA);
	struct hshell *sh;
	struct hcmd *cmd;
	struct hreq *req;

	msg_target(m, &sh, &cmd);
	if (sh == NULL) {
		host_reply(m->reqid, WRM_ERROR_INVALID_SELECTORS, NULL, NULL, 0);
		return;
	}
	if (plugin.p->connect == NULL) {
		host_reply(m->reqid, WRM_ERROR_NOT_SUPPORTED, "This session "
		    "configuration does not support connecting to a "
		    "disconnected shell from another client. ", NULL, 0);
		return;
	}
	if ((req = req_new(HREQ_CONNECT, m->reqid, sh, cmd)) == NULL) {
		host_reply(m->reqid, WRM_ERROR_NOT_ENOUGH_MEMORY, NULL, NULL, 0);
		return;
	}
	req_options(req, m);
	/* A new client: Drop no longer applies, output flows again. */
	set_drop(sh, false);
	if (d != NULL && d->len > 0 && (req->data = malloc(d->len)) != NULL) {
		memcpy(req->data, d->p, d->len);
		req->len = d->len;
	}
	plugin.p->connect(plugin_ctx, &req->pub, sh->ctx,
	    cmd != NULL ? cmd->ctx : NULL, req->data, req->len);
}

static void
set_drop(struct hshell *sh, bool drop)
{
	struct hcmd *c;

	sh->out.drop = drop;
	for (c = sh->cmds; c != NULL; c = c->next)
		c->out.drop = drop;
}

void
host_on_buffering(const struct wrm_hmsg *m, bool disconnected)
{
	struct hshell *sh;
	struct hcmd *cmd;
	char *mode = wrm_hmsg_str(m, HT_NAME);

	msg_target(m, &sh, &cmd);
	if (sh != NULL)
		set_drop(sh, disconnected && mode != NULL &&
		    strcasecmp(mode, "Drop") == 0);
	free(mode);
}

size_t
host_shell_count(void)
{
	struct hshell *sh;
	size_t n = 0;

	for (sh = shells; sh != NULL; sh = sh->next)
		n++;
	return n;
}

void
host_shutdown_all(enum wrm_shutdown_reason reason)
{
	struct hshell *sh;
	struct hcmd *c;

	while ((sh = shells) != NULL) {
		for (c = sh->cmds; c != NULL; c = c->next)
			if (c->ctx_reported && !c->released)
				plugin.p->release_command(plugin_ctx, sh->ctx,
				    c->ctx);
		if (sh->ctx_reported)
			plugin.p->release_shell(plugin_ctx, sh->ctx);
		shells = sh->next;
		shell_free(sh);		/* and its commands */
	}
	if (plugin_started) {
		plugin.p->shutdown(plugin_ctx, reason);
		plugin_started = false;
	}
}

void
host_snapshot(struct wrm_buf *b)
{
	struct hshell *sh;
	struct hcmd *c;

	for (sh = shells; sh != NULL; sh = sh->next) {
		wrm_hmsg_put_str(b, HT_SHELL_ID, sh->id);
		for (c = sh->cmds; c != NULL; c = c->next)
			wrm_hmsg_put_str(b, HT_COMMAND_ID, c->id);
	}
}
