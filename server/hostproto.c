#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "hostproto.h"
#include "log.h"

#define WQ_MAX	(512u * 1024 * 1024)

int
wrm_hmsg_begin(struct wrm_buf *b, uint16_t type, uint32_t reqid,
    size_t *start_r)
{
	uint8_t hdr[12];

	*start_r = wrm_buf_len(b);
	wrm_set_u32_be(hdr, 0);
	hdr[4] = (uint8_t)(type >> 8);
	hdr[5] = (uint8_t)type;
	hdr[6] = hdr[7] = 0;
	wrm_set_u32_be(hdr + 8, reqid);
	return wrm_buf_put(b, hdr, sizeof(hdr));
}

int
wrm_hmsg_put(struct wrm_buf *b, uint16_t tag, const void *p, size_t len)
{
	uint8_t hdr[6];
	int r;

	if (len > WRM_HOSTPROTO_MAX_FRAME)
		return WRM_ERR_LIMIT;
	hdr[0] = (uint8_t)(tag >> 8);
	hdr[1] = (uint8_t)tag;
	wrm_set_u32_be(hdr + 2, (uint32_t)len);
	if ((r = wrm_buf_put(b, hdr, sizeof(hdr))) != 0)
		return r;
	return wrm_buf_put(b, p, len);
}

int
wrm_hmsg_put_str(struct wrm_buf *b, uint16_t tag, const char *s)
{
	if (s == NULL)
		return 0;
	return wrm_hmsg_put(b, tag, s, strlen(s));
}

int
wrm_hmsg_put_u64(struct wrm_buf *b, uint16_t tag, uint64_t v)
{
	uint8_t t[8];

	wrm_set_u64_be(t, v);
	return wrm_hmsg_put(b, tag, t, sizeof(t));
}

int
wrm_hmsg_end(struct wrm_buf *b, size_t start)
{
	size_t len = wrm_buf_len(b) - start - 4;

	if (len > WRM_HOSTPROTO_MAX_FRAME)
		return WRM_ERR_LIMIT;
	wrm_set_u32_be(b->d + b->off + start, (uint32_t)len);
	return 0;
}

int
wrm_hmsg_decode(const uint8_t *p, size_t len, struct wrm_hmsg *m)
{
	struct wrm_cur c;
	struct wrm_hfield *nf;
	uint16_t tag;
	uint32_t flen;
	size_t cap = 0;
	const uint8_t *fp;

	memset(m, 0, sizeof(*m));
	if (len < 8)
		return WRM_ERR_PARSE;
	m->type = (uint16_t)(p[0] << 8 | p[1]);
	m->reqid = wrm_get_u32_be(p + 4);
	wrm_cur_init(&c, p + 8, len - 8);
	while (c.left > 0) {
		if (c.left < 6)
			goto bad;
		tag = (uint16_t)(c.p[0] << 8 | c.p[1]);
		flen = wrm_get_u32_be(c.p + 2);
		wrm_cur_skip(&c, 6);
		if (wrm_cur_view(&c, flen, &fp) != 0)
			goto bad;
		if (m->n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nf = realloc(m->f, cap * sizeof(*nf))) == NULL) {
				wrm_hmsg_free(m);
				return WRM_ERR_ALLOC;
			}
			m->f = nf;
		}
		m->f[m->n].tag = tag;
		m->f[m->n].len = flen;
		m->f[m->n].p = fp;
		m->n++;
	}
	return 0;
bad:
	wrm_hmsg_free(m);
	return WRM_ERR_PARSE;
}

void
wrm_hmsg_free(struct wrm_hmsg *m)
{
	free(m->f);
	m->f = NULL;
	m->n = 0;
}

const struct wrm_hfield *
wrm_hmsg_get(const struct wrm_hmsg *m, uint16_t tag)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (m->f[i].tag == tag)
			return &m->f[i];
	return NULL;
}

char *
wrm_hfield_str(const struct wrm_hfield *f)
{
	char *s;

	if (f == NULL)
		return NULL;
	if ((s = malloc(f->len + 1)) == NULL)
		return NULL;
	memcpy(s, f->p, f->len);
	s[f->len] = '\0';
	return s;
}

uint64_t
wrm_hfield_u64(const struct wrm_hfield *f)
{
	return f != NULL && f->len == 8 ? wrm_get_u64_be(f->p) : 0;
}

char *
wrm_hmsg_str(const struct wrm_hmsg *m, uint16_t tag)
{
	return wrm_hfield_str(wrm_hmsg_get(m, tag));
}

uint64_t
wrm_hmsg_u64(const struct wrm_hmsg *m, uint16_t tag, uint64_t def)
{
	const struct wrm_hfield *f = wrm_hmsg_get(m, tag);

	return f != NULL && f->len == 8 ? wrm_get_u64_be(f->p) : def;
}

struct wrm_hconn {
	struct wrm_loop *loop;
	int fd;
	struct wrm_io *io;
	struct wrm_buf rbuf;
	struct wrm_buf wbuf;
	wrm_hconn_msg_fn on_msg;
	wrm_hconn_close_fn on_close;
	void *arg;
	bool closed;
	bool in_dispatch;
	bool free_pending;
};

static void hconn_io(int fd, uint32_t events, void *arg);

int
wrm_hconn_new(struct wrm_loop *loop, int fd, wrm_hconn_msg_fn on_msg,
    wrm_hconn_close_fn on_close, void *arg, struct wrm_hconn **c_r)
{
	struct wrm_hconn *c;
	int r, fl;

	*c_r = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return WRM_ERR_ALLOC;
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	c->loop = loop;
	c->fd = fd;
	c->on_msg = on_msg;
	c->on_close = on_close;
	c->arg = arg;
	wrm_buf_init(&c->rbuf, WRM_HOSTPROTO_MAX_FRAME + 16);
	wrm_buf_init(&c->wbuf, WQ_MAX);
	if ((r = wrm_loop_watch(loop, fd, WRM_LOOP_READ, hconn_io, c,
	    &c->io)) != 0) {
		free(c);
		return r;
	}
	*c_r = c;
	return 0;
}

static void
hconn_destroy(struct wrm_hconn *c)
{
	wrm_loop_unwatch(c->io);
	if (c->fd >= 0)
		close(c->fd);
	wrm_buf_free(&c->rbuf);
	wrm_buf_free(&c->wbuf);
	free(c);
}

void
wrm_hconn_free(struct wrm_hconn *c)
{
	if (c == NULL)
		return;
	c->closed = true;
	if (c->in_dispatch) {
		c->free_pending = true;
		return;
	}
	hconn_destroy(c);
}

int
wrm_hconn_fd(const struct wrm_hconn *c)
{
	return c->fd;
}

static void
hconn_fail(struct wrm_hconn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	wrm_loop_unwatch(c->io);
	c->io = NULL;
	if (c->on_close != NULL)
		c->on_close(c, c->arg);
}

static int
hconn_write(struct wrm_hconn *c)
{
	ssize_t n;

	while (wrm_buf_len(&c->wbuf) > 0) {
		n = write(c->fd, wrm_buf_ptr(&c->wbuf), wrm_buf_len(&c->wbuf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return WRM_ERR_SYSTEM;
		}
		wrm_buf_consume(&c->wbuf, (size_t)n);
	}
	if (c->io != NULL)
		wrm_loop_modify(c->io, WRM_LOOP_READ |
		    (wrm_buf_len(&c->wbuf) > 0 ? WRM_LOOP_WRITE : 0));
	return 0;
}

int
wrm_hconn_send(struct wrm_hconn *c, struct wrm_buf *b)
{
	int r;

	if (c->closed)
		return WRM_ERR_CLOSED;
	if (wrm_buf_len(&c->wbuf) == 0 && b->off == 0 && b->d != NULL) {
		/* Swap buffers to avoid a copy. */
		struct wrm_buf t = c->wbuf;

		c->wbuf = *b;
		c->wbuf.max = t.max;
		b->d = t.d;
		b->cap = t.cap;
		b->off = b->len = 0;
	} else if ((r = wrm_buf_put(&c->wbuf, wrm_buf_ptr(b),
	    wrm_buf_len(b))) != 0) {
		wrm_buf_reset(b);
		return r;
	} else
		wrm_buf_reset(b);
	if (hconn_write(c) != 0) {
		hconn_fail(c);
		return WRM_ERR_CLOSED;
	}
	return 0;
}

void
wrm_hconn_flush(struct wrm_hconn *c, int ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

	while (!c->closed && wrm_buf_len(&c->wbuf) > 0) {
		if (poll(&pfd, 1, ms) <= 0)
			return;
		if (hconn_write(c) != 0)
			return;
	}
}

/* Decode and dispatch every whole frame in rbuf; false if c was freed. */
static bool
hconn_dispatch(struct wrm_hconn *c)
{
	struct wrm_hmsg m;
	uint32_t len;
	size_t consumed;
	int r;

	c->in_dispatch = true;
	while (!c->closed && wrm_buf_len(&c->rbuf) >= 4) {
		len = wrm_get_u32_be(wrm_buf_ptr(&c->rbuf));
		if (len > WRM_HOSTPROTO_MAX_FRAME) {
			error_f("control frame too large (%u)", len);
			hconn_fail(c);
			break;
		}
		if (wrm_buf_len(&c->rbuf) < 4 + (size_t)len)
			break;
		if ((r = wrm_hmsg_decode(wrm_buf_ptr(&c->rbuf) + 4, len,
		    &m)) != 0) {
			error_fr(r, "bad control frame");
			hconn_fail(c);
			break;
		}
		consumed = 4 + (size_t)len;
		c->on_msg(c, &m, c->arg);
		wrm_hmsg_free(&m);
		wrm_buf_consume(&c->rbuf, consumed);
	}
	c->in_dispatch = false;
	if (c->free_pending) {
		hconn_destroy(c);
		return false;
	}
	return true;
}

static void
hconn_io(int fd, uint32_t events, void *arg)
{
	struct wrm_hconn *c = arg;
	uint8_t *p;
	size_t want;
	ssize_t n;

	if (events & WRM_LOOP_WRITE) {
		if (hconn_write(c) != 0) {
			hconn_fail(c);
			return;
		}
	}
	if (!(events & (WRM_LOOP_READ | WRM_LOOP_ERROR)))
		return;
	for (;;) {
		/*
		 * Never more than one frame's worth past what is decoded:
		 * whole frames are dispatched as they complete, so a host
		 * that writes faster than this reads cannot fill the buffer.
		 */
		want = c->rbuf.max - wrm_buf_len(&c->rbuf);
		if (want > 65536)
			want = 65536;
		if (want == 0 || wrm_buf_reserve(&c->rbuf, want, &p) != 0) {
			error_f("control read buffer full");
			hconn_fail(c);
			return;
		}
		n = read(fd, p, want);
		wrm_buf_truncate(&c->rbuf, wrm_buf_len(&c->rbuf) - want +
		    (n > 0 ? (size_t)n : 0));
		if (n > 0) {
			if ((size_t)n < want)
				break;
			if (!hconn_dispatch(c) || c->closed)
				return;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		/* EOF or error: dispatch what is complete, then close. */
		if (hconn_dispatch(c))
			hconn_fail(c);
		return;
	}
	hconn_dispatch(c);
}
