/*
 * The event loop: epoll for fds, one timerfd for a min-heap of timers, an
 * eventfd through which other threads post calls to the loop thread, and
 * signalfd for signals.  Single-threaded: everything except
 * wrm_loop_post() and wrm_loop_stop() runs on the loop thread.
 *
 * Owner: the program's main(); watches and timers belong to whoever
 * created them and are released with wrm_loop_unwatch()/wrm_timer_cancel().
 */
#ifndef WRM_EVLOOP_H
#define WRM_EVLOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define WRM_LOOP_READ	0x1u
#define WRM_LOOP_WRITE	0x2u
#define WRM_LOOP_ERROR	0x4u

struct wrm_loop;
struct wrm_io;		/* an fd watch */
struct wrm_timer;

typedef void (*wrm_io_fn)(int fd, uint32_t events, void *arg);
typedef void (*wrm_timer_cb)(void *arg);
typedef void (*wrm_post_fn)(void *arg);
typedef void (*wrm_signal_fn)(int signo, void *arg);

int wrm_loop_new(struct wrm_loop **loop_r);
void wrm_loop_free(struct wrm_loop *loop);
/* Run until wrm_loop_stop() (may be run again afterwards). */
int wrm_loop_run(struct wrm_loop *loop);
void wrm_loop_stop(struct wrm_loop *loop);
bool wrm_loop_stopping(const struct wrm_loop *loop);

int wrm_loop_watch(struct wrm_loop *loop, int fd, uint32_t events,
    wrm_io_fn fn, void *arg, struct wrm_io **io_r);
int wrm_loop_modify(struct wrm_io *io, uint32_t events);
/* Stops watching (does not close fd); safe inside the io's own callback. */
void wrm_loop_unwatch(struct wrm_io *io);

int wrm_timer_add(struct wrm_loop *loop, uint64_t ms, wrm_timer_cb fn,
    void *arg, struct wrm_timer **t_r);
/* Cancel and free; NULL and already-fired-and-freed are the caller's care. */
void wrm_timer_cancel(struct wrm_timer *t);

/* Any thread: run fn(arg) on the loop thread soon. */
int wrm_loop_post(struct wrm_loop *loop, wrm_post_fn fn, void *arg);

/* Deliver signo through the loop (blocks it for the whole process). */
int wrm_loop_signal(struct wrm_loop *loop, int signo, wrm_signal_fn fn,
    void *arg);

#endif
