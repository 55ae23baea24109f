/*
 * tok_wait.c - blocking C_WaitForSlotEvent calls and C_Finalize. A waiting
 * thread holds no module lock; it registers its PC/SC wait here so that
 * C_Finalize can cancel it (SCardCancel) and wait until every waiter has
 * left before freeing the module's state. Cancelling is repeated until the
 * waiters are gone, since a cancel that arrives just before a waiter enters
 * pcscd's wait would otherwise be lost.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "token/tok.h"

#define MAX_WAITERS 64

static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond = PTHREAD_COND_INITIALIZER; /* a waiter left, or stop */
static sks_pcsc_wait *waiting[MAX_WAITERS];
static size_t nwaiters; /* threads inside tok_wait_block (with or without a PC/SC wait) */
static int stopping;
static pid_t owner; /* the process these belong to (a forked child starts over) */

/* Wait on wait_cond for at most ms milliseconds (wait_lock held). */
static void timed_wait(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int rc;
    do {
        rc = pthread_cond_timedwait(&wait_cond, &wait_lock, &ts);
    } while (rc == EINTR);
}

void tok_wait_start(void)
{
    if (owner != getpid()) {
        /*
         * First use, or a forked child: the parent's waiters do not exist
         * here (and one may have held the lock when it forked). Start over.
         */
        static const pthread_mutex_t fresh_lock = PTHREAD_MUTEX_INITIALIZER;
        static const pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
        memcpy(&wait_lock, &fresh_lock, sizeof(wait_lock));
        memcpy(&wait_cond, &fresh_cond, sizeof(wait_cond));
        memset(waiting, 0, sizeof(waiting));
        nwaiters = 0;
        owner = getpid();
    }
    pthread_mutex_lock(&wait_lock);
    stopping = 0;
    pthread_mutex_unlock(&wait_lock);
}

void tok_wait_stop(void)
{
    pthread_mutex_lock(&wait_lock);
    stopping = 1;
    while (nwaiters > 0) {
        for (size_t i = 0; i < MAX_WAITERS; i++) {
            if (waiting[i] != NULL)
                sks_pcsc_wait_cancel(waiting[i]);
        }
        pthread_cond_broadcast(&wait_cond); /* waiters that sleep instead */
        timed_wait(50);
    }
    pthread_mutex_unlock(&wait_lock);
}

CK_RV tok_wait_block(sks_pcsc_wait *w)
{
    pthread_mutex_lock(&wait_lock);
    if (stopping) {
        pthread_mutex_unlock(&wait_lock);
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    size_t slot = MAX_WAITERS;
    for (size_t i = 0; w != NULL && i < MAX_WAITERS && slot == MAX_WAITERS; i++) {
        if (waiting[i] == NULL)
            slot = i;
    }
    if (slot < MAX_WAITERS)
        waiting[slot] = w;
    nwaiters++;
    pthread_mutex_unlock(&wait_lock);

    /* Too many waiters to cancel each, or no service: sleep, C_Finalize wakes us. */
    int rc = slot < MAX_WAITERS ? sks_pcsc_wait_run(w) : -1;

    pthread_mutex_lock(&wait_lock);
    if (slot < MAX_WAITERS)
        waiting[slot] = NULL;
    if (rc < 0 && !stopping)
        timed_wait(1000); /* pcscd not reachable or failing: look again in a second */
    nwaiters--;
    int stop = stopping;
    pthread_cond_broadcast(&wait_cond);
    pthread_mutex_unlock(&wait_lock);
    return stop ? CKR_CRYPTOKI_NOT_INITIALIZED : CKR_OK;
}
