/*
 * pcsc_readers.c - the middleware's handle on the PC/SC service: its
 * context, established at the first scan and again after pcscd restarts,
 * and the readers a scan sees with their card state and event count.
 * A scan never blocks: it asks for the current states with a zero timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winscard.h>

#include "transport/pcsc_internal.h"
#include "transport/transport.h"

sks_pcsc *sks_pcsc_new(void)
{
    return calloc(1, sizeof(sks_pcsc));
}

static void drop_context(sks_pcsc *p)
{
    if (p->have_ctx)
        SCardReleaseContext(p->ctx);
    p->have_ctx = 0;
    p->nreaders = 0;
    p->pnp_state = 0;
}

void sks_pcsc_free(sks_pcsc *p)
{
    if (p == NULL)
        return;
    drop_context(p);
    free(p);
}

/* The reader names (a multi-string) into *out (caller frees); 0 readers is not an error. */
static LONG list_readers(SCARDCONTEXT ctx, char **out)
{
    DWORD len = 0;
    *out = NULL;
    LONG rv = SCardListReaders(ctx, NULL, NULL, &len);
    if (rv == SCARD_E_NO_READERS_AVAILABLE || (rv == SCARD_S_SUCCESS && len <= 1))
        return SCARD_S_SUCCESS;
    if (rv != SCARD_S_SUCCESS)
        return rv;
    char *buf = calloc(1, len + 1); /* one more NUL: a multi-string ends with two */
    if (buf == NULL)
        return SCARD_E_NO_MEMORY;
    rv = SCardListReaders(ctx, NULL, buf, &len);
    if (rv == SCARD_E_NO_READERS_AVAILABLE) {
        free(buf);
        return SCARD_S_SUCCESS;
    }
    if (rv != SCARD_S_SUCCESS) {
        free(buf);
        return rv;
    }
    *out = buf;
    return SCARD_S_SUCCESS;
}

/* One attempt: 0 done, 1 the reader list changed meanwhile (try again), -1 failure. */
static int scan_once(sks_pcsc *p, char *err, size_t errlen)
{
    char *names = NULL;
    LONG rv = list_readers(p->ctx, &names);
    if (rv == SCARD_E_INSUFFICIENT_BUFFER)
        return 1;
    if (rv != SCARD_S_SUCCESS) {
        snprintf(err, errlen, "listing readers: %s", pcsc_stringify_error(rv));
        if (sks_pcsc_service_lost(rv))
            drop_context(p);
        return -1;
    }
    SCARD_READERSTATE states[SKS_PCSC_MAX_READERS + 1];
    size_t n = 0;
    memset(states, 0, sizeof(states));
    for (const char *s = names; s != NULL && *s != '\0'; s += strlen(s) + 1) {
        if (strlen(s) >= sizeof(p->readers[0].name) || n == SKS_PCSC_MAX_READERS)
            continue; /* longer than PC/SC allows, or more readers than one wait can watch */
        states[n].szReader = s;
        states[n].dwCurrentState = SCARD_STATE_UNAWARE;
        n++;
    }
    states[n].szReader = SKS_PCSC_PNP_READER;
    states[n].dwCurrentState = SCARD_STATE_UNAWARE;
    rv = SCardGetStatusChange(p->ctx, 0, states, (DWORD)(n + 1));
    if (rv == SCARD_E_TIMEOUT)
        rv = SCARD_S_SUCCESS; /* nothing changed: the states are still filled in */
    if (rv == SCARD_E_UNKNOWN_READER) {
        free(names);
        return 1; /* a reader went away between the two calls */
    }
    if (rv != SCARD_S_SUCCESS) {
        free(names);
        snprintf(err, errlen, "reading reader states: %s", pcsc_stringify_error(rv));
        if (sks_pcsc_service_lost(rv))
            drop_context(p);
        return -1;
    }
    p->nreaders = 0;
    for (size_t i = 0; i < n; i++) {
        sks_pcsc_reader *r = &p->readers[p->nreaders++];
        DWORD st = states[i].dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
        snprintf(r->name, sizeof(r->name), "%s", states[i].szReader);
        r->state = (uint32_t)st;
        r->events = (uint32_t)(st >> 16) & 0xFFFF;
        r->card_present = (st & SCARD_STATE_PRESENT) && !(st & SCARD_STATE_MUTE) &&
                          !(st & (SCARD_STATE_UNAVAILABLE | SCARD_STATE_UNKNOWN));
    }
    p->pnp_state = (uint32_t)(states[n].dwEventState & ~(DWORD)SCARD_STATE_CHANGED);
    free(names);
    return 0;
}

int sks_pcsc_scan(sks_pcsc *p, char *err, size_t errlen)
{
    if (p == NULL) {
        snprintf(err, errlen, "no PC/SC handle");
        return -1;
    }
    for (int attempt = 0; attempt < 4; attempt++) {
        if (!p->have_ctx) {
            LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->ctx);
            if (rv != SCARD_S_SUCCESS) {
                p->nreaders = 0;
                snprintf(err, errlen, "%s", pcsc_stringify_error(rv));
                return -1;
            }
            p->have_ctx = 1;
        }
        int had_ctx = p->have_ctx;
        int rc = scan_once(p, err, errlen);
        if (rc == 0)
            return 0;
        /* A context from before a pcscd restart fails once: try with a new one. */
        if (rc < 0 && !(had_ctx && !p->have_ctx && attempt == 0)) {
            p->nreaders = 0;
            return -1;
        }
    }
    p->nreaders = 0;
    snprintf(err, errlen, "the reader list keeps changing");
    return -1;
}

size_t sks_pcsc_reader_count(const sks_pcsc *p)
{
    return p != NULL ? p->nreaders : 0;
}

const sks_pcsc_reader *sks_pcsc_reader_at(const sks_pcsc *p, size_t i)
{
    return p != NULL && i < p->nreaders ? &p->readers[i] : NULL;
}

const sks_pcsc_reader *sks_pcsc_reader_find(const sks_pcsc *p, const char *name)
{
    for (size_t i = 0; p != NULL && name != NULL && i < p->nreaders; i++) {
        if (strcmp(p->readers[i].name, name) == 0)
            return &p->readers[i];
    }
    return NULL;
}
