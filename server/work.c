#include "config.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "err.h"
#include "log.h"
#include "work.h"

struct job {
	wrm_work_fn run, done;
	void *arg;
	struct job *next;
};

static struct {
	struct wrm_loop *loop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	pthread_t *threads;
	int n;
	bool stop;
} W = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static void
job_done(void *arg)
{
	struct job *j = arg;

	if (j->done != NULL)
		j->done(j->arg);
	free(j);
}

static void *
worker(void *unused)
{
	struct job *j;

	(void)unused;
	for (;;) {
		pthread_mutex_lock(&W.lock);
		while (W.head == NULL && !W.stop)
			pthread_cond_wait(&W.cond, &W.lock);
		if (W.head == NULL) {
			pthread_mutex_unlock(&W.lock);
			return NULL;
		}
		j = W.head;
		W.head = j->next;
		if (W.head == NULL)
			W.tail = NULL;
		pthread_mutex_unlock(&W.lock);
		j->run(j->arg);
		if (wrm_loop_post(W.loop, job_done, j) != 0)
			error_f("cannot hand a finished job to the loop");
	}
}

int
wrm_work_init(struct wrm_loop *loop, int nthreads)
{
	sigset_t all, old;
	int i;

	W.loop = loop;
	if ((W.threads = calloc((size_t)nthreads, sizeof(pthread_t))) == NULL)
		return WRM_ERR_ALLOC;
	/* Workers never take signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&W.threads[i], NULL, worker, NULL) != 0)
			break;
		W.n++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return W.n > 0 ? 0 : WRM_ERR_SYSTEM;
}

void
wrm_work_shutdown(void)
{
	int i;

	pthread_mutex_lock(&W.lock);
	W.stop = true;
	pthread_cond_broadcast(&W.cond);
	pthread_mutex_unlock(&W.lock);
	for (i = 0; i < W.n; i++)
		pthread_join(W.threads[i], NULL);
	free(W.threads);
	W.threads = NULL;
	W.n = 0;
}

int
wrm_work_submit(wrm_work_fn run, wrm_work_fn done, void *arg)
{
	struct job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return WRM_ERR_ALLOC;
	j->run = run;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&W.lock);
	if (W.stop || W.n == 0) {
		pthread_mutex_unlock(&W.lock);
		free(j);
		return WRM_ERR_CLOSED;	/* the caller runs it itself */
	}
	if (W.tail != NULL)
		W.tail->next = j;
	else
		W.head = j;
	W.tail = j;
	pthread_cond_signal(&W.cond);
	pthread_mutex_unlock(&W.lock);
	return 0;
}
