/*
 * Unit tests for evloop.c: timer order and cancellation, calls posted
 * from other threads, fd watches (including removal inside a callback),
 * stop and restart, and signals.  Every run is bounded by a guard timer.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "evloop.h"
#include "misc.h"

#define GUARD_MS	10000

struct ctx {
	struct wrm_loop *loop;
	int order[2048];
	uint64_t when[2048];
	int n;
	int stop_after;
	struct wrm_timer *guard;
	bool timed_out;
	struct wrm_timer *victim;
	struct wrm_io *io[2];
	uint32_t events[2];
	int fd_calls[2];
	pthread_t loop_thread;
	bool wrong_thread;
};

static void
guard_fired(void *arg)
{
	struct ctx *c = arg;

	c->guard = NULL;
	c->timed_out = true;
	wrm_loop_stop(c->loop);
}

static void
ctx_init(struct ctx *c, int stop_after)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(wrm_loop_new(&c->loop), 0);
	c->stop_after = stop_after;
	c->loop_thread = pthread_self();
	assert_int_equal(wrm_timer_add(c->loop, GUARD_MS, guard_fired, c,
	    &c->guard), 0);
}

static void
ctx_run(struct ctx *c)
{
	assert_int_equal(wrm_loop_run(c->loop), 0);
	if (c->timed_out)
		fail_msg("the loop did not finish within %d ms", GUARD_MS);
}

static void
ctx_done(struct ctx *c)
{
	wrm_timer_cancel(c->guard);
	wrm_loop_free(c->loop);
}

/* A labelled callback argument. */
struct tick {
	struct ctx *c;
	int label;
};

static void
record(struct ctx *c, int label)
{
	if (!pthread_equal(pthread_self(), c->loop_thread))
		c->wrong_thread = true;
	c->order[c->n] = label;
	c->when[c->n] = wrm_now_ms();
	if (++c->n == c->stop_after)
		wrm_loop_stop(c->loop);
}

static void
tick(void *arg)
{
	struct tick *t = arg;

	record(t->c, t->label);
}

static void
test_timers_in_order(void **state)
{
	struct tick t[6];
	static const int ms[6] = { 60, 20, 40, 20, 0, 1 };
	struct ctx c;
	uint64_t start;
	int i;

	(void)state;
	ctx_init(&c, 6);
	start = wrm_now_ms();
	for (i = 0; i < 6; i++) {
		t[i].c = &c;
		t[i].label = i;
		assert_int_equal(wrm_timer_add(c.loop, (uint64_t)ms[i], tick,
		    &t[i], NULL), 0);
	}
	ctx_run(&c);
	assert_int_equal(c.n, 6);
	/* By due time; equal delays in the order they were added. */
	assert_int_equal(c.order[0], 4);
	assert_int_equal(c.order[1], 5);
	assert_int_equal(c.order[2], 1);
	assert_int_equal(c.order[3], 3);
	assert_int_equal(c.order[4], 2);
	assert_int_equal(c.order[5], 0);
	/* Never early. */
	for (i = 0; i < 6; i++)
		assert_true(c.when[i] >= start + (uint64_t)ms[c.order[i]]);
	assert_false(c.wrong_thread);
	ctx_done(&c);
}

static void
test_timers_many(void **state)
{
	static struct tick t[1000];
	uint64_t due[1000], x = 88172645463325252ULL;
	struct ctx c;
	int i;

	(void)state;
	ctx_init(&c, 1000);
	for (i = 0; i < 1000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		t[i].c = &c;
		t[i].label = i;
		due[i] = wrm_now_ms() + 1 + x % 50;
		assert_int_equal(wrm_timer_add(c.loop, due[i] - wrm_now_ms(),
		    tick, &t[i], NULL), 0);
	}
	ctx_run(&c);
	assert_int_equal(c.n, 1000);
	/* Fired in order of due time (ties: order of adding). */
	for (i = 1; i < 1000; i++) {
		int a = c.order[i - 1], b = c.order[i];

		if (due[a] > due[b] + 1)
			fail_msg("timer %d (due %llu) fired before %d (due %llu)",
			    a, (unsigned long long)due[a], b,
			    (unsigned long long)due[b]);
	}
	ctx_done(&c);
}

static void
cancel_victim(void *arg)
{
	struct tick *t = arg;

	record(t->c, t->label);
	wrm_timer_cancel(t->c->victim);
	t->c->victim = NULL;
}

static void
stop_loop(void *arg)
{
	struct ctx *c = arg;

	wrm_loop_stop(c->loop);
}

static void
test_timer_cancel(void **state)
{
	struct tick t[5];
	struct wrm_timer *head, *mid, *last;
	struct ctx c;
	int i;

	(void)state;
	ctx_init(&c, 100);
	for (i = 0; i < 5; i++) {
		t[i].c = &c;
		t[i].label = i;
	}
	assert_int_equal(wrm_timer_add(c.loop, 5, tick, &t[0], &head), 0);
	assert_int_equal(wrm_timer_add(c.loop, 10, tick, &t[1], &mid), 0);
	assert_int_equal(wrm_timer_add(c.loop, 15, tick, &t[2], NULL), 0);
	/* t[3] cancels t[4], due after it, from its callback. */
	assert_int_equal(wrm_timer_add(c.loop, 20, cancel_victim, &t[3],
	    NULL), 0);
	assert_int_equal(wrm_timer_add(c.loop, 25, tick, &t[4], &c.victim), 0);
	assert_int_equal(wrm_timer_add(c.loop, 60, stop_loop, &c, &last), 0);
	wrm_timer_cancel(head);			/* the earliest */
	wrm_timer_cancel(mid);
	wrm_timer_cancel(NULL);
	ctx_run(&c);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.order[0], 2);
	assert_int_equal(c.order[1], 3);
	assert_null(c.victim);
	ctx_done(&c);
}

/* Cancelling everything leaves a loop that only the guard can stop. */
static void
test_timer_cancel_all(void **state)
{
	struct wrm_timer *a, *b;
	struct tick t = { NULL, 0 };
	struct ctx c;

	(void)state;
	ctx_init(&c, 1);
	t.c = &c;
	assert_int_equal(wrm_timer_add(c.loop, 1, tick, &t, &a), 0);
	assert_int_equal(wrm_timer_add(c.loop, 2, tick, &t, &b), 0);
	wrm_timer_cancel(b);
	wrm_timer_cancel(a);
	assert_int_equal(wrm_timer_add(c.loop, 30, stop_loop, &c, NULL), 0);
	ctx_run(&c);
	assert_int_equal(c.n, 0);
	ctx_done(&c);
}

static void
readd(void *arg)
{
	struct tick *t = arg;

	record(t->c, t->label);
	if (t->c->n < 5)
		assert_int_equal(wrm_timer_add(t->c->loop, 0, readd, t, NULL),
		    0);
}

static void
test_timer_from_callback(void **state)
{
	struct tick t;
	struct ctx c;

	(void)state;
	ctx_init(&c, 5);
	t.c = &c;
	t.label = 7;
	assert_int_equal(wrm_timer_add(c.loop, 0, readd, &t, NULL), 0);
	ctx_run(&c);
	assert_int_equal(c.n, 5);
	ctx_done(&c);
}

/* ---- posts ---- */

struct poster {
	struct ctx *c;
	struct tick t[1000];
	int n;
};

static void
posted(void *arg)
{
	tick(arg);
}

static void *
poster_main(void *arg)
{
	struct poster *p = arg;
	int i;

	for (i = 0; i < p->n; i++) {
		if (wrm_loop_post(p->c->loop, posted, &p->t[i]) != 0)
			abort();
		if (i % 100 == 0)
			sched_yield();
	}
	return NULL;
}

static void
test_post_from_thread(void **state)
{
	static struct poster p;
	pthread_t th;
	struct ctx c;
	int i;

	(void)state;
	ctx_init(&c, 1000);
	p.c = &c;
	p.n = 1000;
	for (i = 0; i < p.n; i++) {
		p.t[i].c = &c;
		p.t[i].label = i;
	}
	assert_int_equal(pthread_create(&th, NULL, poster_main, &p), 0);
	ctx_run(&c);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(c.n, 1000);
	/* In order, and on the loop's thread. */
	for (i = 0; i < 1000; i++)
		assert_int_equal(c.order[i], i);
	assert_false(c.wrong_thread);
	ctx_done(&c);
}

static void
post_again(void *arg)
{
	struct tick *t = arg;

	record(t->c, t->label);
	if (t->c->n < 3)
		assert_int_equal(wrm_loop_post(t->c->loop, post_again, t), 0);
}

/* Posting from the loop thread works too (and before run). */
static void
test_post_from_loop(void **state)
{
	struct tick t;
	struct ctx c;

	(void)state;
	ctx_init(&c, 3);
	t.c = &c;
	t.label = 1;
	assert_int_equal(wrm_loop_post(c.loop, post_again, &t), 0);
	ctx_run(&c);
	assert_int_equal(c.n, 3);
	ctx_done(&c);
}

static void *
stopper_main(void *arg)
{
	struct ctx *c = arg;
	struct timespec ts = { 0, 30 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	wrm_loop_stop(c->loop);
	return NULL;
}

static void
test_stop_from_thread_and_rerun(void **state)
{
	struct tick t;
	pthread_t th;
	struct ctx c;

	(void)state;
	ctx_init(&c, 100);
	assert_int_equal(pthread_create(&th, NULL, stopper_main, &c), 0);
	ctx_run(&c);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(wrm_loop_stopping(c.loop));
	/* The loop can run again. */
	t.c = &c;
	t.label = 3;
	c.stop_after = 1;
	assert_int_equal(wrm_timer_add(c.loop, 1, tick, &t, NULL), 0);
	ctx_run(&c);
	assert_int_equal(c.n, 1);
	ctx_done(&c);
}

/* ---- fd watches ---- */

static void
on_fd(int fd, uint32_t events, void *arg)
{
	struct ctx *c = arg;
	char buf[64];

	c->events[0] |= events;
	c->fd_calls[0]++;
	if (events & WRM_LOOP_READ)
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	record(c, (int)events);
}

static void
write_byte(void *arg)
{
	int *fd = arg;

	assert_int_equal(write(*fd, "x", 1), 1);
}

static void
test_fd_watch(void **state)
{
	struct wrm_io *io;
	struct ctx c;
	int p[2];

	(void)state;
	ctx_init(&c, 1);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(wrm_loop_watch(c.loop, p[0], WRM_LOOP_READ, on_fd,
	    &c, &io), 0);
	/* Nothing readable yet: a timer writes later. */
	assert_int_equal(wrm_timer_add(c.loop, 20, write_byte, &p[1], NULL),
	    0);
	ctx_run(&c);
	assert_int_equal(c.fd_calls[0], 1);
	assert_true(c.events[0] & WRM_LOOP_READ);

	/* Writability, after a modify. */
	c.n = 0;
	c.events[0] = 0;
	assert_int_equal(wrm_loop_modify(io, WRM_LOOP_READ), 0);  /* no-op */
	wrm_loop_unwatch(io);
	assert_int_equal(wrm_loop_watch(c.loop, p[1], 0, on_fd, &c, &io), 0);
	assert_int_equal(wrm_loop_modify(io, WRM_LOOP_WRITE), 0);
	ctx_run(&c);
	assert_true(c.events[0] & WRM_LOOP_WRITE);
	wrm_loop_unwatch(io);
	wrm_loop_unwatch(io);			/* twice is harmless */
	wrm_loop_unwatch(NULL);

	/* Hang-up: the writer closes. */
	c.n = 0;
	c.events[0] = 0;
	assert_int_equal(wrm_loop_watch(c.loop, p[0], WRM_LOOP_READ, on_fd,
	    &c, &io), 0);
	close(p[1]);
	ctx_run(&c);
	assert_true(c.events[0] & (WRM_LOOP_READ | WRM_LOOP_ERROR));
	wrm_loop_unwatch(io);
	close(p[0]);

	/* A bad fd is refused. */
	assert_int_equal(wrm_loop_watch(c.loop, -1, WRM_LOOP_READ, on_fd, &c,
	    &io), WRM_ERR_SYSTEM);
	ctx_done(&c);
}

/* Each of two ready fds removes the other: only one callback runs. */
static void
unwatch_other(int fd, uint32_t events, void *arg)
{
	struct ctx *c = arg;
	int me = fd == c->fd_calls[1] ? 1 : 0;

	(void)events;
	c->events[me]++;
	wrm_loop_unwatch(c->io[!me]);
	wrm_loop_unwatch(c->io[me]);		/* and itself */
	c->io[0] = c->io[1] = NULL;
	record(c, me);
}

static void
test_unwatch_in_callback(void **state)
{
	struct ctx c;
	int a[2], b[2];

	(void)state;
	ctx_init(&c, 100);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a),
	    0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b),
	    0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	c.fd_calls[1] = b[0];		/* tells the callback which is which */
	assert_int_equal(wrm_loop_watch(c.loop, a[0], WRM_LOOP_READ,
	    unwatch_other, &c, &c.io[0]), 0);
	assert_int_equal(wrm_loop_watch(c.loop, b[0], WRM_LOOP_READ,
	    unwatch_other, &c, &c.io[1]), 0);
	assert_int_equal(wrm_timer_add(c.loop, 50, stop_loop, &c, NULL), 0);
	ctx_run(&c);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.events[0] + c.events[1], 1);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	ctx_done(&c);
}

/* ---- signals ---- */

static void
on_signal(int signo, void *arg)
{
	struct ctx *c = arg;

	record(c, signo);
}

static void
test_signal(void **state)
{
	struct ctx c;

	(void)state;
	ctx_init(&c, 2);
	assert_int_equal(wrm_loop_signal(c.loop, SIGUSR1, on_signal, &c), 0);
	assert_int_equal(wrm_loop_signal(c.loop, SIGUSR2, on_signal, &c), 0);
	assert_int_equal(kill(getpid(), SIGUSR2), 0);
	assert_int_equal(kill(getpid(), SIGUSR1), 0);
	ctx_run(&c);
	assert_int_equal(c.n, 2);
	assert_true((c.order[0] == SIGUSR1 && c.order[1] == SIGUSR2) ||
	    (c.order[0] == SIGUSR2 && c.order[1] == SIGUSR1));
	ctx_done(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_in_order),
		cmocka_unit_test(test_timers_many),
		cmocka_unit_test(test_timer_cancel),
		cmocka_unit_test(test_timer_cancel_all),
		cmocka_unit_test(test_timer_from_callback),
		cmocka_unit_test(test_post_from_thread),
		cmocka_unit_test(test_post_from_loop),
		cmocka_unit_test(test_stop_from_thread_and_rerun),
		cmocka_unit_test(test_fd_watch),
		cmocka_unit_test(test_unwatch_in_callback),
		cmocka_unit_test(test_signal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
