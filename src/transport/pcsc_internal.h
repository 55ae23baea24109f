/*
 * pcsc_internal.h - what the PC/SC backend's files share: the service
 * handle (context) and the readers its last scan saw. Not used outside
 * src/transport.
 */
#ifndef SKS_PCSC_INTERNAL_H
#define SKS_PCSC_INTERNAL_H

#include <winscard.h>

#include "transport/transport.h"

/* pcsc-lite refuses SCardGetStatusChange with more entries; one is the PnP pseudo reader. */
#define SKS_PCSC_MAX_READERS (PCSCLITE_MAX_READERS_CONTEXTS - 1)

/* The pseudo reader whose state changes when a reader is added or removed. */
#define SKS_PCSC_PNP_READER "\\\\?PnP?\\Notification"

struct sks_pcsc {
    SCARDCONTEXT ctx;
    int have_ctx;
    sks_pcsc_reader readers[SKS_PCSC_MAX_READERS];
    size_t nreaders;
    uint32_t pnp_state; /* the PnP pseudo reader's state at the last scan */
};

/* The service is gone (pcscd stopped or restarted): a new context is needed. */
int sks_pcsc_service_lost(LONG rv);

#endif
