/*
 * The control protocol between winrmd and winrmd-host, over a Unix
 * stream socket.  Each frame is
 *
 *	u32 BE length of what follows
 *	u16 BE message type
 *	u16 BE flags (0)
 *	u32 BE request id (0 for events)
 *	fields: { u16 BE tag, u32 BE length, bytes }*
 *
 * Fields may repeat (arguments, environment); unknown tags are ignored so
 * either side can be upgraded while the other runs (hosts outlive a
 * daemon restart).  HELLO carries WRM_HOSTPROTO_VERSION.  Integers inside
 * fields are u64 BE.
 *
 * struct wrm_hconn is one end of such a socket on an event loop: a read
 * buffer decoded into messages, and a bounded write queue.  Owner: the
 * daemon's struct wrm_host or the host's main.
 */
#ifndef WRM_HOSTPROTO_H
#define WRM_HOSTPROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "evloop.h"

#define WRM_HOSTPROTO_VERSION	1
#define WRM_HOSTPROTO_MAX_FRAME	(64u * 1024 * 1024)

enum wrm_hmsg_type {
	/* daemon -> host requests (each gets exactly one REPLY) */
	HM_HELLO = 1,
	HM_SHELL_CREATE = 2,
	HM_COMMAND = 3,
	HM_SEND = 4,
	HM_PULL = 5,
	HM_SIGNAL = 6,
	HM_DELETE = 7,
	HM_CONNECT = 8,
	HM_DISCONNECT = 9,
	HM_RECONNECT = 10,
	HM_SNAPSHOT = 11,
	HM_SHUTDOWN = 12,
	HM_PREPARE = 13,	/* load the plugin ahead of a shell (warm) */
	/* daemon -> host, no reply */
	HM_COMMIT = 20,
	HM_ROLLBACK = 21,
	/* host -> daemon */
	HM_REPLY = 40,
	HM_EV_OUTPUT = 41,	/* new output or state for a target */
	HM_EV_SHELL_GONE = 42,	/* the shell ended on the host's side */
};

enum wrm_hmsg_tag {
	HT_VERSION = 1,
	HT_SHELL_ID = 2,
	HT_COMMAND_ID = 3,
	HT_USER = 4,
	HT_AUTH = 5,
	HT_CLIENT_IP = 6,
	HT_RESOURCE_URI = 7,
	HT_CONFIG = 8,
	HT_PLUGIN = 9,
	HT_LOCALE = 10,
	HT_DATA_LOCALE = 11,
	HT_NAME = 12,
	HT_WORKDIR = 13,
	HT_ENV_NAME = 14,	/* followed by HT_ENV_VALUE */
	HT_ENV_VALUE = 15,
	HT_IN_STREAMS = 16,
	HT_OUT_STREAMS = 17,
	HT_IDLE_MS = 18,
	HT_DATA = 19,
	HT_OPT_NAME = 20,	/* request option, then HT_OPT_VALUE, HT_OPT_MC */
	HT_OPT_VALUE = 21,
	HT_OPT_MC = 22,
	HT_CONF_NAME = 23,	/* session configuration option */
	HT_CONF_VALUE = 24,
	HT_COMMAND_LINE = 25,
	HT_ARG = 26,
	HT_STREAM = 27,
	HT_END = 28,
	HT_BUDGET = 29,
	HT_DELIVERY = 30,
	HT_CODE = 31,		/* signal code URI */
	HT_ERROR = 32,		/* u64 error code */
	HT_MESSAGE = 33,
	HT_CHUNK_STREAM = 34,	/* repeated: stream, data, flags */
	HT_CHUNK_DATA = 35,
	HT_CHUNK_FLAGS = 36,
	HT_STATE = 37,		/* enum wrm_command_state */
	HT_EXIT_CODE = 38,
	HT_PID = 39,
	HT_PLUGIN_DIR = 40,
	HT_BUFFER_LIMIT = 41,
	HT_CHUNK_OVERHEAD = 42,
	HT_MORE = 43,		/* more output is waiting */
	HT_FLAGS = 44,
	HT_SHARED = 45,		/* u64 1: UseSharedProcess, stay without shells */
};

struct wrm_hfield {
	uint16_t tag;
	uint32_t len;
	const uint8_t *p;
};

struct wrm_hmsg {
	uint16_t type;
	uint32_t reqid;
	struct wrm_hfield *f;
	size_t n;
};

/* Encoding into b (appends one frame). */
int wrm_hmsg_begin(struct wrm_buf *b, uint16_t type, uint32_t reqid,
    size_t *start_r);
int wrm_hmsg_put(struct wrm_buf *b, uint16_t tag, const void *p, size_t len);
int wrm_hmsg_put_str(struct wrm_buf *b, uint16_t tag, const char *s);
int wrm_hmsg_put_u64(struct wrm_buf *b, uint16_t tag, uint64_t v);
int wrm_hmsg_end(struct wrm_buf *b, size_t start);

/* Decoding: parse one frame body (after the length). */
int wrm_hmsg_decode(const uint8_t *p, size_t len, struct wrm_hmsg *m);
void wrm_hmsg_free(struct wrm_hmsg *m);
const struct wrm_hfield *wrm_hmsg_get(const struct wrm_hmsg *m, uint16_t tag);
/* Malloc'd NUL-terminated copy of a field, or NULL when absent. */
char *wrm_hmsg_str(const struct wrm_hmsg *m, uint16_t tag);
uint64_t wrm_hmsg_u64(const struct wrm_hmsg *m, uint16_t tag, uint64_t def);
char *wrm_hfield_str(const struct wrm_hfield *f);
uint64_t wrm_hfield_u64(const struct wrm_hfield *f);

struct wrm_hconn;
typedef void (*wrm_hconn_msg_fn)(struct wrm_hconn *c,
    const struct wrm_hmsg *m, void *arg);
typedef void (*wrm_hconn_close_fn)(struct wrm_hconn *c, void *arg);

/* Takes ownership of fd (non-blocking is set). */
int wrm_hconn_new(struct wrm_loop *loop, int fd, wrm_hconn_msg_fn on_msg,
    wrm_hconn_close_fn on_close, void *arg, struct wrm_hconn **c_r);
/* Closes the fd; no callbacks afterwards. */
void wrm_hconn_free(struct wrm_hconn *c);
/* Queue an encoded buffer (one or more frames); b is emptied. */
int wrm_hconn_send(struct wrm_hconn *c, struct wrm_buf *b);
int wrm_hconn_fd(const struct wrm_hconn *c);
/* Write everything queued, blocking up to ms (used at exit). */
void wrm_hconn_flush(struct wrm_hconn *c, int ms);

#endif
