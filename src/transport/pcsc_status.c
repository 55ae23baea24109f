/*
 * pcsc_status.c - what PC/SC result codes mean to the middleware. One table,
 * so that every PC/SC call of the backend treats a removed card, a reset
 * card, a vanished reader and a stopped service alike.
 */
#include <winscard.h>

#include "transport/pcsc_internal.h"
#include "transport/transport.h"

int sks_pcsc_status(long scard_rv)
{
    switch ((LONG)scard_rv) {
    case SCARD_S_SUCCESS:
        return SKS_TRANSPORT_OK;
    /* The card lost its volatile state but is still there: reconnect, re-SELECT. */
    case SCARD_W_RESET_CARD:
    case SCARD_W_UNPOWERED_CARD:
        return SKS_TRANSPORT_RESET;
    /* No (usable) card in the reader. */
    case SCARD_E_NO_SMARTCARD:
    case SCARD_W_UNRESPONSIVE_CARD:
    case SCARD_W_UNSUPPORTED_CARD:
        return SKS_TRANSPORT_NO_CARD;
    /* The card, its reader or the whole service went away since we connected. */
    case SCARD_W_REMOVED_CARD:
    case SCARD_E_READER_UNAVAILABLE:
    case SCARD_E_UNKNOWN_READER:
    case SCARD_E_NO_READERS_AVAILABLE:
    case SCARD_E_NO_SERVICE:
    case SCARD_E_SERVICE_STOPPED:
    case SCARD_E_INVALID_HANDLE:
    case SCARD_F_COMM_ERROR:
        return SKS_TRANSPORT_REMOVED;
    default:
        return SKS_TRANSPORT_ERROR;
    }
}

int sks_pcsc_service_lost(LONG rv)
{
    return rv == SCARD_E_NO_SERVICE || rv == SCARD_E_SERVICE_STOPPED ||
           rv == SCARD_E_INVALID_HANDLE || rv == SCARD_F_COMM_ERROR;
}
