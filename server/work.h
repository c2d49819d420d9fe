/*
 * A small pool of worker threads for work that must not run on the loop
 * thread: password hashing, PAM, spawning.  run(arg) runs on a worker;
 * done(arg) then runs on the loop thread.  Nothing else is shared.
 */
#ifndef WRM_WORK_H
#define WRM_WORK_H

#include "evloop.h"

typedef void (*wrm_work_fn)(void *arg);

int wrm_work_init(struct wrm_loop *loop, int nthreads);
void wrm_work_shutdown(void);
int wrm_work_submit(wrm_work_fn run, wrm_work_fn done, void *arg);

#endif
