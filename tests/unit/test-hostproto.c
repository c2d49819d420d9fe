/*
 * Unit tests for hostproto.c: the frame layout, encode/decode round
 * trips, repeated and unknown fields, truncated and oversized frames,
 * and struct wrm_hconn moving frames over a real socket pair on an event
 * loop.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "evloop.h"
#include "hostproto.h"

static const uint8_t binary[] = { 0, 1, 2, 0xff, 0, '\n', 0x80 };

/* A COMMAND request with repeated arguments and a binary field. */
static void
encode_command(struct wrm_buf *b)
{
	size_t start;

	assert_int_equal(wrm_hmsg_begin(b, HM_COMMAND, 0x01020304, &start), 0);
	assert_int_equal(wrm_hmsg_put_str(b, HT_SHELL_ID,
	    "27A3EB43-F792-4D33-96DD-B5A52AC8668A"), 0);
	assert_int_equal(wrm_hmsg_put_str(b, HT_COMMAND_LINE, "cmd.exe"), 0);
	assert_int_equal(wrm_hmsg_put_str(b, HT_ARG, "/c"), 0);
	assert_int_equal(wrm_hmsg_put_str(b, HT_ARG, ""), 0);
	assert_int_equal(wrm_hmsg_put_str(b, HT_ARG, "echo \"hi\""), 0);
	assert_int_equal(wrm_hmsg_put_u64(b, HT_IDLE_MS,
	    0x0102030405060708ULL), 0);
	assert_int_equal(wrm_hmsg_put(b, HT_DATA, binary, sizeof(binary)), 0);
	assert_int_equal(wrm_hmsg_put_str(b, HT_USER, NULL), 0); /* absent */
	assert_int_equal(wrm_hmsg_end(b, start), 0);
}

static void
check_command(const struct wrm_hmsg *m)
{
	static const char *const args[] = { "/c", "", "echo \"hi\"" };
	const struct wrm_hfield *f;
	size_t i, k = 0;
	char *s;

	assert_int_equal(m->type, HM_COMMAND);
	assert_int_equal(m->n, 7);
	s = wrm_hmsg_str(m, HT_SHELL_ID);
	assert_string_equal(s, "27A3EB43-F792-4D33-96DD-B5A52AC8668A");
	free(s);
	s = wrm_hmsg_str(m, HT_COMMAND_LINE);
	assert_string_equal(s, "cmd.exe");
	free(s);
	/* Repeated fields keep their order; get returns the first. */
	for (i = 0; i < m->n; i++) {
		if (m->f[i].tag != HT_ARG)
			continue;
		s = wrm_hfield_str(&m->f[i]);
		assert_string_equal(s, args[k]);
		free(s);
		k++;
	}
	assert_int_equal(k, 3);
	s = wrm_hmsg_str(m, HT_ARG);
	assert_string_equal(s, "/c");
	free(s);
	assert_true(wrm_hmsg_u64(m, HT_IDLE_MS, 0) == 0x0102030405060708ULL);
	assert_true(wrm_hfield_u64(wrm_hmsg_get(m, HT_IDLE_MS)) ==
	    0x0102030405060708ULL);
	f = wrm_hmsg_get(m, HT_DATA);
	assert_non_null(f);
	assert_int_equal(f->len, sizeof(binary));
	assert_memory_equal(f->p, binary, sizeof(binary));
	/* Absent fields. */
	assert_null(wrm_hmsg_get(m, HT_USER));
	assert_null(wrm_hmsg_str(m, HT_USER));
	assert_true(wrm_hmsg_u64(m, HT_USER, 77) == 77);
	assert_null(wrm_hfield_str(NULL));
	assert_true(wrm_hfield_u64(NULL) == 0);
	/* A field of the wrong size is not an integer. */
	assert_true(wrm_hmsg_u64(m, HT_COMMAND_LINE, 5) == 5);
}

static void
test_hostproto_layout(void **state)
{
	struct wrm_buf b;
	const uint8_t *p;
	size_t len;

	(void)state;
	wrm_buf_init(&b, 0);
	encode_command(&b);
	p = wrm_buf_ptr(&b);
	len = wrm_buf_len(&b);
	/* u32 BE length of what follows, u16 BE type, u16 flags, u32 reqid */
	assert_int_equal(wrm_get_u32_be(p), len - 4);
	assert_int_equal(p[4], 0);
	assert_int_equal(p[5], HM_COMMAND);
	assert_int_equal(p[6], 0);
	assert_int_equal(p[7], 0);
	assert_int_equal(wrm_get_u32_be(p + 8), 0x01020304);
	/* First field: u16 BE tag, u32 BE length, bytes. */
	assert_int_equal(p[12], 0);
	assert_int_equal(p[13], HT_SHELL_ID);
	assert_int_equal(wrm_get_u32_be(p + 14), 36);
	assert_memory_equal(p + 18, "27A3EB43", 8);
	/* Integers are u64 BE. */
	assert_non_null(memmem(p, len, "\x00\x12\x00\x00\x00\x08\x01\x02\x03"
	    "\x04\x05\x06\x07\x08", 14));
	wrm_buf_free(&b);
}

static void
test_hostproto_roundtrip(void **state)
{
	struct wrm_hmsg m;
	struct wrm_buf b;

	(void)state;
	wrm_buf_init(&b, 0);
	encode_command(&b);
	assert_int_equal(wrm_hmsg_decode(wrm_buf_ptr(&b) + 4,
	    wrm_buf_len(&b) - 4, &m), 0);
	check_command(&m);
	assert_int_equal(m.reqid, 0x01020304);
	wrm_hmsg_free(&m);
	assert_null(m.f);
	assert_int_equal(m.n, 0);
	wrm_hmsg_free(&m);
	wrm_buf_free(&b);
}

/* Frames appended after consumed data, and several frames in a row. */
static void
test_hostproto_several_frames(void **state)
{
	struct wrm_hmsg m;
	struct wrm_buf b;
	const uint8_t *p;
	size_t start, first;
	int i;

	(void)state;
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_buf_puts(&b, "0123456789abcdefghij"), 0);
	wrm_buf_consume(&b, 10);
	encode_command(&b);
	first = wrm_buf_len(&b);
	assert_int_equal(wrm_hmsg_begin(&b, HM_REPLY, 7, &start), 0);
	assert_int_equal(start, first);
	assert_int_equal(wrm_hmsg_put_u64(&b, HT_ERROR, 87), 0);
	assert_int_equal(wrm_hmsg_put_str(&b, HT_MESSAGE, "bad"), 0);
	assert_int_equal(wrm_hmsg_end(&b, start), 0);
	/* An empty event. */
	assert_int_equal(wrm_hmsg_begin(&b, HM_EV_SHELL_GONE, 0, &start), 0);
	assert_int_equal(wrm_hmsg_end(&b, start), 0);

	p = wrm_buf_ptr(&b);
	assert_memory_equal(p, "abcdefghij", 10);
	p += 10;
	for (i = 0; i < 3; i++) {
		assert_int_equal(wrm_hmsg_decode(p + 4, wrm_get_u32_be(p), &m),
		    0);
		if (i == 0)
			check_command(&m);
		else if (i == 1) {
			assert_int_equal(m.type, HM_REPLY);
			assert_int_equal(m.reqid, 7);
			assert_true(wrm_hmsg_u64(&m, HT_ERROR, 0) == 87);
		} else {
			assert_int_equal(m.type, HM_EV_SHELL_GONE);
			assert_int_equal(m.reqid, 0);
			assert_int_equal(m.n, 0);
		}
		p += 4 + wrm_get_u32_be(p);
		wrm_hmsg_free(&m);
	}
	assert_ptr_equal(p, wrm_buf_ptr(&b) + wrm_buf_len(&b));
	wrm_buf_free(&b);
}

/* Fields a reader does not know are skipped, whatever their tag. */
static void
test_hostproto_unknown_tags(void **state)
{
	struct wrm_hmsg m;
	struct wrm_buf b;
	size_t start;
	char *s;

	(void)state;
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_hmsg_begin(&b, 999, 3, &start), 0);
	assert_int_equal(wrm_hmsg_put(&b, 0, "zero", 4), 0);
	assert_int_equal(wrm_hmsg_put_str(&b, HT_SHELL_ID, "S"), 0);
	assert_int_equal(wrm_hmsg_put(&b, 65535, "\x00\x01", 2), 0);
	assert_int_equal(wrm_hmsg_put(&b, 1000, "", 0), 0);
	assert_int_equal(wrm_hmsg_put_u64(&b, HT_PID, 4242), 0);
	assert_int_equal(wrm_hmsg_end(&b, start), 0);
	assert_int_equal(wrm_hmsg_decode(wrm_buf_ptr(&b) + 4,
	    wrm_buf_len(&b) - 4, &m), 0);
	assert_int_equal(m.type, 999);
	assert_int_equal(m.n, 5);
	s = wrm_hmsg_str(&m, HT_SHELL_ID);
	assert_string_equal(s, "S");
	free(s);
	assert_true(wrm_hmsg_u64(&m, HT_PID, 0) == 4242);
	assert_int_equal(wrm_hmsg_get(&m, 1000)->len, 0);
	s = wrm_hmsg_str(&m, 1000);
	assert_string_equal(s, "");
	free(s);
	wrm_hmsg_free(&m);
	wrm_buf_free(&b);
}

/* Many fields: the field array grows. */
static void
test_hostproto_many_fields(void **state)
{
	struct wrm_hmsg m;
	struct wrm_buf b;
	size_t start, i;

	(void)state;
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_hmsg_begin(&b, HM_SHELL_CREATE, 1, &start), 0);
	for (i = 0; i < 1000; i++) {
		assert_int_equal(wrm_hmsg_put_str(&b, HT_ENV_NAME, "N"), 0);
		assert_int_equal(wrm_hmsg_put_u64(&b, HT_ENV_VALUE, i), 0);
	}
	assert_int_equal(wrm_hmsg_end(&b, start), 0);
	assert_int_equal(wrm_hmsg_decode(wrm_buf_ptr(&b) + 4,
	    wrm_buf_len(&b) - 4, &m), 0);
	assert_int_equal(m.n, 2000);
	for (i = 0; i < 1000; i++) {
		assert_int_equal(m.f[2 * i].tag, HT_ENV_NAME);
		assert_int_equal(m.f[2 * i + 1].tag, HT_ENV_VALUE);
		assert_true(wrm_hfield_u64(&m.f[2 * i + 1]) == i);
	}
	wrm_hmsg_free(&m);
	wrm_buf_free(&b);
}

/*
 * Every cut of a frame body is refused, except cuts that fall exactly
 * after a whole field (a shorter, valid message).
 */
static void
test_hostproto_truncated(void **state)
{
	struct wrm_hmsg m;
	struct wrm_buf b;
	const uint8_t *body;
	size_t len, cut, next_field, nfields;
	int r;

	(void)state;
	wrm_buf_init(&b, 0);
	encode_command(&b);
	body = wrm_buf_ptr(&b) + 4;
	len = wrm_buf_len(&b) - 4;
	for (cut = 0; cut < len; cut++) {
		r = wrm_hmsg_decode(body, cut, &m);
		/* Find whether cut is a field boundary. */
		next_field = 8;
		nfields = 0;
		while (next_field < cut) {
			next_field += 6 + wrm_get_u32_be(body + next_field + 2);
			nfields++;
		}
		if (cut >= 8 && next_field == cut) {
			assert_int_equal(r, 0);
			assert_int_equal(m.n, nfields);
		} else {
			if (r != WRM_ERR_PARSE)
				fail_msg("a frame cut at %zu of %zu bytes was "
				    "accepted", cut, len);
			assert_null(m.f);
			assert_int_equal(m.n, 0);
		}
		wrm_hmsg_free(&m);
	}
	wrm_buf_free(&b);
}

static void
test_hostproto_bad_lengths(void **state)
{
	/* type 1, flags, reqid 1, then a field claiming 2^32-1 bytes */
	static const uint8_t huge[] = {
		0, 1, 0, 0, 0, 0, 0, 1,
		0, 2, 0xff, 0xff, 0xff, 0xff, 'a', 'b',
	};
	/* a field header cut after the tag */
	static const uint8_t half[] = {
		0, 1, 0, 0, 0, 0, 0, 1,
		0, 2, 0, 0, 0, 1, 'x',
		0, 3,
	};
	struct wrm_hmsg m;
	struct wrm_buf b;
	size_t start;

	(void)state;
	assert_int_equal(wrm_hmsg_decode(huge, sizeof(huge), &m),
	    WRM_ERR_PARSE);
	assert_int_equal(wrm_hmsg_decode(half, sizeof(half), &m),
	    WRM_ERR_PARSE);
	assert_int_equal(wrm_hmsg_decode(half, 15, &m), 0);
	assert_int_equal(m.n, 1);
	wrm_hmsg_free(&m);

	/* A field larger than a frame may be is refused before copying. */
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_hmsg_begin(&b, HM_SEND, 1, &start), 0);
	assert_int_equal(wrm_hmsg_put(&b, HT_DATA, binary,
	    (size_t)WRM_HOSTPROTO_MAX_FRAME + 1), WRM_ERR_LIMIT);
	assert_int_equal(wrm_buf_len(&b), 12);
	assert_int_equal(wrm_hmsg_end(&b, start), 0);
	wrm_buf_free(&b);
}

/* ---- wrm_hconn over a socket pair ---- */

struct peer {
	struct wrm_loop *loop;
	struct wrm_hconn *c;
	int got;
	int want;
	bool closed;
	size_t big_len;
	struct wrm_timer *guard;	/* bounds each run */
};

static void
on_msg(struct wrm_hconn *c, const struct wrm_hmsg *m, void *arg)
{
	struct peer *p = arg;
	const struct wrm_hfield *f;
	size_t i;

	(void)c;
	assert_int_equal(m->reqid, (uint32_t)p->got);
	if (m->type == HM_COMMAND)
		check_command(m);
	else if (m->type == HM_SEND) {
		f = wrm_hmsg_get(m, HT_DATA);
		assert_non_null(f);
		assert_int_equal(f->len, p->big_len);
		for (i = 0; i < f->len; i += 4099)
			assert_int_equal(f->p[i], (uint8_t)(i * 7));
	}
	if (++p->got == p->want)
		wrm_loop_stop(p->loop);
}

static void
on_close(struct wrm_hconn *c, void *arg)
{
	struct peer *p = arg;

	(void)c;
	p->closed = true;
	wrm_loop_stop(p->loop);
}

static void
give_up(void *arg)
{
	struct peer *p = arg;

	print_message("timed out waiting for frames\n");
	p->guard = NULL;
	wrm_loop_stop(p->loop);
}

static void
test_hconn_socketpair(void **state)
{
	struct wrm_loop *loop;
	struct wrm_hconn *a;
	struct wrm_buf b;
	struct peer pb;
	uint8_t *big;
	size_t start, i;
	int sv[2];

	(void)state;
	assert_int_equal(wrm_loop_new(&loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	memset(&pb, 0, sizeof(pb));
	pb.loop = loop;
	pb.want = 4;
	pb.big_len = 3u << 20;
	assert_int_equal(wrm_hconn_new(loop, sv[0], on_msg, on_close, &pb, &a),
	    0);
	assert_int_equal(wrm_hconn_new(loop, sv[1], on_msg, on_close, &pb,
	    &pb.c), 0);
	assert_int_equal(wrm_hconn_fd(a), sv[0]);

	/* Frame 0: a command; 1: 3 MiB of data; 2, 3: empty events. */
	wrm_buf_init(&b, 0);
	encode_command(&b);
	/* encode_command used reqid 0x01020304; rewrite it to 0. */
	wrm_set_u32_be(b.d + b.off + 8, 0);
	assert_int_equal(wrm_hconn_send(a, &b), 0);
	assert_int_equal(wrm_buf_len(&b), 0);
	assert_non_null(big = malloc(pb.big_len));
	for (i = 0; i < pb.big_len; i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(wrm_hmsg_begin(&b, HM_SEND, 1, &start), 0);
	assert_int_equal(wrm_hmsg_put(&b, HT_DATA, big, pb.big_len), 0);
	assert_int_equal(wrm_hmsg_end(&b, start), 0);
	assert_int_equal(wrm_hconn_send(a, &b), 0);
	free(big);
	for (i = 2; i < 4; i++) {
		assert_int_equal(wrm_hmsg_begin(&b, HM_EV_OUTPUT, (uint32_t)i,
		    &start), 0);
		assert_int_equal(wrm_hmsg_end(&b, start), 0);
	}
	assert_int_equal(wrm_hconn_send(a, &b), 0);
	wrm_buf_free(&b);

	assert_int_equal(wrm_timer_add(loop, 10000, give_up, &pb,
	    &pb.guard), 0);
	assert_int_equal(wrm_loop_run(loop), 0);
	assert_int_equal(pb.got, 4);
	assert_false(pb.closed);

	/* Closing one end is seen by the other. */
	wrm_hconn_free(a);
	pb.want = -1;
	assert_int_equal(wrm_loop_run(loop), 0);
	assert_true(pb.closed);
	wrm_buf_init(&b, 0);
	assert_int_equal(wrm_hmsg_begin(&b, HM_EV_OUTPUT, 9, &start), 0);
	assert_int_equal(wrm_hmsg_end(&b, start), 0);
	assert_int_equal(wrm_hconn_send(pb.c, &b), WRM_ERR_CLOSED);
	wrm_buf_free(&b);
	wrm_timer_cancel(pb.guard);
	wrm_hconn_free(pb.c);
	wrm_loop_free(loop);
}

/*
 * A frame of nearly the largest size, then many small ones, all written
 * before the reader runs: the reader must not buffer past one frame
 * (it once read everything available first and gave up on a full buffer,
 * and could never take a frame close to the limit).
 */
static void
test_hconn_largest_frame_then_many(void **state)
{
	struct wrm_loop *loop;
	struct wrm_hconn *a;
	struct wrm_buf b;
	struct peer pb;
	uint8_t *big;
	size_t start, i;
	int sv[2];

	(void)state;
	assert_int_equal(wrm_loop_new(&loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	memset(&pb, 0, sizeof(pb));
	pb.loop = loop;
	pb.want = 1 + 300;
	pb.big_len = WRM_HOSTPROTO_MAX_FRAME - 64;
	assert_int_equal(wrm_hconn_new(loop, sv[0], on_msg, on_close, &pb, &a),
	    0);
	assert_int_equal(wrm_hconn_new(loop, sv[1], on_msg, on_close, &pb,
	    &pb.c), 0);
	wrm_buf_init(&b, 0);
	assert_non_null(big = malloc(pb.big_len));
	for (i = 0; i < pb.big_len; i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(wrm_hmsg_begin(&b, HM_SEND, 0, &start), 0);
	assert_int_equal(wrm_hmsg_put(&b, HT_DATA, big, pb.big_len), 0);
	assert_int_equal(wrm_hmsg_end(&b, start), 0);
	free(big);
	for (i = 1; i <= 300; i++) {
		assert_int_equal(wrm_hmsg_begin(&b, HM_EV_OUTPUT, (uint32_t)i,
		    &start), 0);
		assert_int_equal(wrm_hmsg_put(&b, HT_DATA, "x", 1), 0);
		assert_int_equal(wrm_hmsg_end(&b, start), 0);
	}
	assert_int_equal(wrm_hconn_send(a, &b), 0);
	wrm_buf_free(&b);
	assert_int_equal(wrm_timer_add(loop, 60000, give_up, &pb,
	    &pb.guard), 0);
	assert_int_equal(wrm_loop_run(loop), 0);
	assert_int_equal(pb.got, pb.want);
	assert_false(pb.closed);
	wrm_timer_cancel(pb.guard);
	wrm_hconn_free(a);
	wrm_hconn_free(pb.c);
	wrm_loop_free(loop);
}

/* A peer announcing an oversized frame is dropped, not buffered. */
static void
test_hconn_oversized_frame(void **state)
{
	struct wrm_loop *loop;
	struct peer pb;
	uint8_t hdr[12];
	int sv[2];

	(void)state;
	assert_int_equal(wrm_loop_new(&loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	memset(&pb, 0, sizeof(pb));
	pb.loop = loop;
	pb.want = 1;
	assert_int_equal(wrm_hconn_new(loop, sv[1], on_msg, on_close, &pb,
	    &pb.c), 0);
	wrm_set_u32_be(hdr, WRM_HOSTPROTO_MAX_FRAME + 1);
	memset(hdr + 4, 0, 8);
	assert_int_equal(write(sv[0], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	assert_int_equal(wrm_timer_add(loop, 10000, give_up, &pb,
	    &pb.guard), 0);
	assert_int_equal(wrm_loop_run(loop), 0);
	assert_true(pb.closed);
	assert_int_equal(pb.got, 0);
	wrm_timer_cancel(pb.guard);
	wrm_hconn_free(pb.c);
	close(sv[0]);
	wrm_loop_free(loop);
}

/* A malformed frame body closes the connection too. */
static void
test_hconn_malformed_frame(void **state)
{
	static const uint8_t frame[] = {
		0, 0, 0, 14, 0, 1, 0, 0, 0, 0, 0, 0,
		0, 2, 0, 0, 0, 9,	/* field longer than the frame */
	};
	struct wrm_loop *loop;
	struct peer pb;
	int sv[2];

	(void)state;
	assert_int_equal(wrm_loop_new(&loop), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	memset(&pb, 0, sizeof(pb));
	pb.loop = loop;
	pb.want = 1;
	assert_int_equal(wrm_hconn_new(loop, sv[1], on_msg, on_close, &pb,
	    &pb.c), 0);
	assert_int_equal(write(sv[0], frame, sizeof(frame)),
	    (ssize_t)sizeof(frame));
	assert_int_equal(wrm_timer_add(loop, 10000, give_up, &pb,
	    &pb.guard), 0);
	assert_int_equal(wrm_loop_run(loop), 0);
	assert_true(pb.closed);
	assert_int_equal(pb.got, 0);
	wrm_timer_cancel(pb.guard);
	wrm_hconn_free(pb.c);
	close(sv[0]);
	wrm_loop_free(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostproto_layout),
		cmocka_unit_test(test_hostproto_roundtrip),
		cmocka_unit_test(test_hostproto_several_frames),
		cmocka_unit_test(test_hostproto_unknown_tags),
		cmocka_unit_test(test_hostproto_many_fields),
		cmocka_unit_test(test_hostproto_truncated),
		cmocka_unit_test(test_hostproto_bad_lengths),
		cmocka_unit_test(test_hconn_socketpair),
		cmocka_unit_test(test_hconn_largest_frame_then_many),
		cmocka_unit_test(test_hconn_oversized_frame),
		cmocka_unit_test(test_hconn_malformed_frame),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
