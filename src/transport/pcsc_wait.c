/*
 * pcsc_wait.c - waiting for reader events (C_WaitForSlotEvent) without
 * holding the module lock: a snapshot of the reader states the last scan
 * saw, watched with SCardGetStatusChange on a PC/SC context of its own (a
 * context is busy for as long as a wait runs on it), so that another thread
 * can wake it with SCardCancel.
 *
 * pcsc-lite notices added or removed readers through the "\\?PnP?\Notification"
 * pseudo reader, but only those after the wait started; the reader list is
 * therefore compared with the snapshot before each wait, and each wait is
 * bounded (WAIT_SLICE_MS) so that nothing slips between the two.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <winscard.h>

#include "transport/pcsc_internal.h"
#include "transport/transport.h"

#define WAIT_SLICE_MS 5000

struct sks_pcsc_wait {
    pthread_mutex_t lock; /* guards cancelled and have_ctx against sks_pcsc_wait_cancel */
    int cancelled;
    SCARDCONTEXT ctx;
    int have_ctx;
    size_t n; /* readers; states[n] is the PnP pseudo reader */
    char names[SKS_PCSC_MAX_READERS][128];
    SCARD_READERSTATE states[SKS_PCSC_MAX_READERS + 1];
};

sks_pcsc_wait *sks_pcsc_wait_new(const sks_pcsc *p)
{
    if (p == NULL || !p->have_ctx)
        return NULL;
    sks_pcsc_wait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return NULL;
    }
    w->n = p->nreaders;
    for (size_t i = 0; i < w->n; i++) {
        memcpy(w->names[i], p->readers[i].name, sizeof(w->names[i]));
        w->states[i].szReader = w->names[i];
        w->states[i].dwCurrentState = p->readers[i].state;
    }
    w->states[w->n].szReader = SKS_PCSC_PNP_READER;
    w->states[w->n].dwCurrentState = p->pnp_state;
    return w;
}

void sks_pcsc_wait_free(sks_pcsc_wait *w)
{
    if (w == NULL)
        return;
    if (w->have_ctx)
        SCardReleaseContext(w->ctx);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void sks_pcsc_wait_cancel(sks_pcsc_wait *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->cancelled = 1;
    if (w->have_ctx)
        SCardCancel(w->ctx);
    pthread_mutex_unlock(&w->lock);
}

static int is_cancelled(sks_pcsc_wait *w)
{
    pthread_mutex_lock(&w->lock);
    int c = w->cancelled;
    pthread_mutex_unlock(&w->lock);
    return c;
}

/* Does the service list exactly the snapshot's readers? 1 yes, 0 no, -1 error. */
static int same_readers(sks_pcsc_wait *w)
{
    DWORD len = 0;
    LONG rv = SCardListReaders(w->ctx, NULL, NULL, &len);
    if (rv == SCARD_E_NO_READERS_AVAILABLE)
        return w->n == 0;
    if (rv != SCARD_S_SUCCESS)
        return -1;
    char *buf = calloc(1, len + 1);
    if (buf == NULL)
        return -1;
    rv = SCardListReaders(w->ctx, NULL, buf, &len);
    if (rv != SCARD_S_SUCCESS) {
        free(buf);
        return rv == SCARD_E_NO_READERS_AVAILABLE  ? w->n == 0
               : rv == SCARD_E_INSUFFICIENT_BUFFER ? 0
                                                   : -1;
    }
    size_t count = 0;
    int same = 1;
    for (const char *s = buf; *s != '\0' && same; s += strlen(s) + 1) {
        if (strlen(s) >= sizeof(w->names[0]))
            continue; /* the scan skips these too */
        same = count < w->n && strcmp(s, w->names[count]) == 0;
        count++;
    }
    free(buf);
    return same && (count == w->n || count > SKS_PCSC_MAX_READERS);
}

int sks_pcsc_wait_run(sks_pcsc_wait *w)
{
    if (w == NULL)
        return -1;
    if (!w->have_ctx) {
        SCARDCONTEXT ctx;
        if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx) != SCARD_S_SUCCESS)
            return -1;
        pthread_mutex_lock(&w->lock);
        w->ctx = ctx;
        w->have_ctx = 1;
        pthread_mutex_unlock(&w->lock);
    }
    for (;;) {
        if (is_cancelled(w))
            return 1;
        int same = same_readers(w);
        if (same <= 0)
            return same < 0 ? -1 : 0;
        LONG rv = SCardGetStatusChange(w->ctx, WAIT_SLICE_MS, w->states, (DWORD)(w->n + 1));
        if (rv == SCARD_S_SUCCESS || rv == SCARD_E_UNKNOWN_READER)
            return 0; /* something differs from the snapshot */
        if (rv == SCARD_E_CANCELLED) {
            if (is_cancelled(w))
                return 1;
            continue;
        }
        if (rv != SCARD_E_TIMEOUT)
            return -1;
    }
}
