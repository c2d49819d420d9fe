#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "err.h"
#include "evloop.h"
#include "log.h"
#include "misc.h"

struct wrm_io {
	struct wrm_loop *loop;
	int fd;
	uint32_t events;
	wrm_io_fn fn;
	void *arg;
	bool dead;
	struct wrm_io *next_dead;
};

struct wrm_timer {
	struct wrm_loop *loop;
	uint64_t due;
	uint64_t seq;
	size_t idx;		/* position in the heap */
	wrm_timer_cb fn;
	void *arg;
};

struct post {
	wrm_post_fn fn;
	void *arg;
	struct post *next;
};

#define MAX_SIGNALS	8

struct wrm_loop {
	int epfd;
	int tfd;
	int efd;
	int sfd;
	bool stop;
	struct wrm_timer **heap;
	size_t nheap, capheap;
	uint64_t seq;
	uint64_t armed;		/* due time the timerfd is armed for; 0 none */
	pthread_mutex_t post_lock;
	struct post *posts, *posts_tail;
	struct wrm_io *dead;	/* unwatched ios, freed after dispatch */
	sigset_t sigs;
	struct { int signo; wrm_signal_fn fn; void *arg; } sig[MAX_SIGNALS];
	size_t nsig;
	struct wrm_io tio, eio, sio;	/* internal watches */
};

static uint32_t
to_epoll(uint32_t ev)
{
	uint32_t e = 0;

	if (ev & WRM_LOOP_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (ev & WRM_LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

static int
add_internal(struct wrm_loop *loop, struct wrm_io *io, int fd)
{
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = io };

	io->loop = loop;
	io->fd = fd;
	return epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &e) == 0 ? 0 :
	    WRM_ERR_SYSTEM;
}

int
wrm_loop_new(struct wrm_loop **loop_r)
{
	struct wrm_loop *loop;

	*loop_r = NULL;
	if ((loop = calloc(1, sizeof(*loop))) == NULL)
		return WRM_ERR_ALLOC;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	loop->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	loop->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	loop->sfd = -1;
	pthread_mutex_init(&loop->post_lock, NULL);
	sigemptyset(&loop->sigs);
	if (loop->epfd < 0 || loop->tfd < 0 || loop->efd < 0 ||
	    add_internal(loop, &loop->tio, loop->tfd) != 0 ||
	    add_internal(loop, &loop->eio, loop->efd) != 0) {
		wrm_loop_free(loop);
		return WRM_ERR_SYSTEM;
	}
	*loop_r = loop;
	return 0;
}

static void
free_dead(struct wrm_loop *loop)
{
	struct wrm_io *io;

	while ((io = loop->dead) != NULL) {
		loop->dead = io->next_dead;
		free(io);
	}
}

void
wrm_loop_free(struct wrm_loop *loop)
{
	struct post *p;
	size_t i;

	if (loop == NULL)
		return;
	for (i = 0; i < loop->nheap; i++)
		free(loop->heap[i]);
	free(loop->heap);
	while ((p = loop->posts) != NULL) {
		loop->posts = p->next;
		free(p);
	}
	free_dead(loop);
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->tfd >= 0)
		close(loop->tfd);
	if (loop->efd >= 0)
		close(loop->efd);
	if (loop->sfd >= 0)
		close(loop->sfd);
	pthread_mutex_destroy(&loop->post_lock);
	free(loop);
}

int
wrm_loop_watch(struct wrm_loop *loop, int fd, uint32_t events,
    wrm_io_fn fn, void *arg, struct wrm_io **io_r)
{
	struct epoll_event e;
	struct wrm_io *io;

	if ((io = calloc(1, sizeof(*io))) == NULL)
		return WRM_ERR_ALLOC;
	io->loop = loop;
	io->fd = fd;
	io->events = events;
	io->fn = fn;
	io->arg = arg;
	e.events = to_epoll(events);
	e.data.ptr = io;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
		free(io);
		return WRM_ERR_SYSTEM;
	}
	if (io_r != NULL)
		*io_r = io;
	return 0;
}

int
wrm_loop_modify(struct wrm_io *io, uint32_t events)
{
	struct epoll_event e;

	if (io->events == events)
		return 0;
	e.events = to_epoll(events);
	e.data.ptr = io;
	if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &e) != 0)
		return WRM_ERR_SYSTEM;
	io->events = events;
	return 0;
}

void
wrm_loop_unwatch(struct wrm_io *io)
{
	if (io == NULL || io->dead)
		return;
	epoll_ctl(io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->dead = true;
	io->next_dead = io->loop->dead;
	io->loop->dead = io;
}

/* Timer heap ordered by (due, seq). */

static bool
tless(const struct wrm_timer *a, const struct wrm_timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
hswap(struct wrm_loop *loop, size_t i, size_t j)
{
	struct wrm_timer *t = loop->heap[i];

	loop->heap[i] = loop->heap[j];
	loop->heap[j] = t;
	loop->heap[i]->idx = i;
	loop->heap[j]->idx = j;
}

static void
hup(struct wrm_loop *loop, size_t i)
{
	while (i > 0 && tless(loop->heap[i], loop->heap[(i - 1) / 2])) {
		hswap(loop, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
hdown(struct wrm_loop *loop, size_t i)
{
	size_t l, m;

	for (;;) {
		l = 2 * i + 1;
		m = i;
		if (l < loop->nheap && tless(loop->heap[l], loop->heap[m]))
			m = l;
		if (l + 1 < loop->nheap && tless(loop->heap[l + 1], loop->heap[m]))
			m = l + 1;
		if (m == i)
			return;
		hswap(loop, i, m);
		i = m;
	}
}

static void
rearm(struct wrm_loop *loop)
{
	struct itimerspec its;
	uint64_t due, now;

	memset(&its, 0, sizeof(its));
	due = loop->nheap ? loop->heap[0]->due : 0;
	if (due == loop->armed)
		return;
	loop->armed = due;
	if (due != 0) {
		now = wrm_now_ms();
		if (due <= now)
			due = now + 1;
		its.it_value.tv_sec = (time_t)(due / 1000);
		its.it_value.tv_nsec = (long)(due % 1000) * 1000000;
	}
	if (timerfd_settime(loop->tfd, due ? TFD_TIMER_ABSTIME : 0, &its,
	    NULL) != 0)
		error_f("timerfd_settime: %s", strerror(errno));
}

int
wrm_timer_add(struct wrm_loop *loop, uint64_t ms, wrm_timer_cb fn,
    void *arg, struct wrm_timer **t_r)
{
	struct wrm_timer *t, **nh;
	size_t ncap;

	if (loop->nheap == loop->capheap) {
		ncap = loop->capheap ? loop->capheap * 2 : 64;
		if ((nh = realloc(loop->heap, ncap * sizeof(*nh))) == NULL)
			return WRM_ERR_ALLOC;
		loop->heap = nh;
		loop->capheap = ncap;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return WRM_ERR_ALLOC;
	t->loop = loop;
	t->due = wrm_now_ms() + (ms ? ms : 1);
	t->seq = ++loop->seq;
	t->fn = fn;
	t->arg = arg;
	t->idx = loop->nheap;
	loop->heap[loop->nheap++] = t;
	hup(loop, t->idx);
	rearm(loop);
	if (t_r != NULL)
		*t_r = t;
	return 0;
}

static void
heap_remove(struct wrm_loop *loop, struct wrm_timer *t)
{
	size_t i = t->idx;

	loop->nheap--;
	if (i != loop->nheap) {
		hswap(loop, i, loop->nheap);
		hdown(loop, i);
		hup(loop, i);
	}
}

void
wrm_timer_cancel(struct wrm_timer *t)
{
	struct wrm_loop *loop;

	if (t == NULL)
		return;
	loop = t->loop;
	heap_remove(loop, t);
	free(t);
	rearm(loop);
}

static void
run_timers(struct wrm_loop *loop)
{
	uint64_t now = wrm_now_ms(), junk;
	struct wrm_timer *t;
	wrm_timer_cb fn;
	void *arg;

	while (read(loop->tfd, &junk, sizeof(junk)) > 0)
		;
	loop->armed = 0;
	while (loop->nheap > 0 && loop->heap[0]->due <= now && !loop->stop) {
		t = loop->heap[0];
		heap_remove(loop, t);
		fn = t->fn;
		arg = t->arg;
		free(t);
		fn(arg);
	}
	rearm(loop);
}

int
wrm_loop_post(struct wrm_loop *loop, wrm_post_fn fn, void *arg)
{
	struct post *p;
	uint64_t one = 1;

	if ((p = malloc(sizeof(*p))) == NULL)
		return WRM_ERR_ALLOC;
	p->fn = fn;
	p->arg = arg;
	p->next = NULL;
	pthread_mutex_lock(&loop->post_lock);
	if (loop->posts_tail != NULL)
		loop->posts_tail->next = p;
	else
		loop->posts = p;
	loop->posts_tail = p;
	pthread_mutex_unlock(&loop->post_lock);
	if (write(loop->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return WRM_ERR_SYSTEM;
	return 0;
}

static void
run_posts(struct wrm_loop *loop)
{
	struct post *p, *list;
	uint64_t junk;

	while (read(loop->efd, &junk, sizeof(junk)) > 0)
		;
	pthread_mutex_lock(&loop->post_lock);
	list = loop->posts;
	loop->posts = loop->posts_tail = NULL;
	pthread_mutex_unlock(&loop->post_lock);
	while ((p = list) != NULL) {
		list = p->next;
		p->fn(p->arg);
		free(p);
	}
}

int
wrm_loop_signal(struct wrm_loop *loop, int signo, wrm_signal_fn fn,
    void *arg)
{
	int fd;

	if (loop->nsig == MAX_SIGNALS)
		return WRM_ERR_LIMIT;
	sigaddset(&loop->sigs, signo);
	if (sigprocmask(SIG_BLOCK, &loop->sigs, NULL) != 0)
		return WRM_ERR_SYSTEM;
	fd = signalfd(loop->sfd, &loop->sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return WRM_ERR_SYSTEM;
	if (loop->sfd < 0 && add_internal(loop, &loop->sio, fd) != 0) {
		close(fd);
		return WRM_ERR_SYSTEM;
	}
	loop->sfd = fd;
	loop->sig[loop->nsig].signo = signo;
	loop->sig[loop->nsig].fn = fn;
	loop->sig[loop->nsig].arg = arg;
	loop->nsig++;
	return 0;
}

static void
run_signals(struct wrm_loop *loop)
{
	struct signalfd_siginfo si;
	size_t i;

	while (read(loop->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		for (i = 0; i < loop->nsig; i++)
			if (loop->sig[i].signo == (int)si.ssi_signo)
				loop->sig[i].fn((int)si.ssi_signo,
				    loop->sig[i].arg);
	}
}

void
wrm_loop_stop(struct wrm_loop *loop)
{
	uint64_t one = 1;

	loop->stop = true;
	/* The flag alone is enough when called on the loop thread. */
	(void)!write(loop->efd, &one, sizeof(one));
}

bool
wrm_loop_stopping(const struct wrm_loop *loop)
{
	return loop->stop;
}

int
wrm_loop_run(struct wrm_loop *loop)
{
	struct epoll_event evs[64];
	struct wrm_io *io;
	uint32_t ev;
	int n, i;

	loop->stop = false;
	while (!loop->stop) {
		n = epoll_wait(loop->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return WRM_ERR_SYSTEM;
		}
		for (i = 0; i < n && !loop->stop; i++) {
			io = evs[i].data.ptr;
			if (io == &loop->tio) {
				run_timers(loop);
				continue;
			}
			if (io == &loop->eio) {
				run_posts(loop);
				continue;
			}
			if (io == &loop->sio) {
				run_signals(loop);
				continue;
			}
			if (io->dead)
				continue;
			ev = 0;
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
				ev |= WRM_LOOP_READ;
			if (evs[i].events & EPOLLOUT)
				ev |= WRM_LOOP_WRITE;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				ev |= WRM_LOOP_ERROR;
			io->fn(io->fd, ev, io->arg);
		}
		free_dead(loop);
	}
	return 0;
}
