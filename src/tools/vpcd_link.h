/*
 * vpcd_link.h - the card side of vsmartcard's vpcd protocol: how sks-card
 * puts an SKS card into the "Virtual PCD" readers of pcscd.
 *
 * vpcd (the reader driver inside pcscd) listens on TCP; the card connects to
 * it as a client. Every message, both ways, is a 2-byte big-endian length and
 * that many payload bytes. A 1-byte payload from the reader is a control
 * code: power off, power on and reset get no answer, "get ATR" is answered
 * with the ATR. Any longer payload is a command APDU, answered with the
 * response APDU (data, SW1 SW2).
 *
 * The logic is kept apart from the daemon (options, logging back-end,
 * daemonizing) so that tests can drive it over a socket of their own.
 */
#ifndef SKS_VPCD_LINK_H
#define SKS_VPCD_LINK_H

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "card/sks_card.h"

#define VPCD_CTRL_OFF   0
#define VPCD_CTRL_ON    1
#define VPCD_CTRL_RESET 2
#define VPCD_CTRL_ATR   4

/* The 2-byte length field bounds every payload, both ways. */
#define VPCD_MAX_PAYLOAD 65535u

#define VPCD_DEFAULT_HOST "127.0.0.1"
#define VPCD_DEFAULT_PORT "35963"

/*
 * The card's ATR (ISO 7816-3), 19 bytes:
 *   3B             TS, direct convention
 *   8E             T0: TD1 follows, 14 historical bytes
 *   80             TD1: TD2 follows, protocol T=0
 *   01             TD2: protocol T=1 (so TCK is present)
 *   80             historical bytes: category 80, COMPACT-TLV objects follow
 *   58 "SKS card"  tag 5 (card issuer's data), 8 bytes
 *   73 80 00 C0    tag 7 (card capabilities): selection by full DF name;
 *                  data coding byte 00; command chaining and extended Lc/Le
 *   9B             TCK: XOR of T0 .. last historical byte
 */
#define VPCD_ATR_LEN 19
extern const uint8_t vpcd_atr[VPCD_ATR_LEN];

enum vpcd_log_level { VPCD_LOG_ERROR, VPCD_LOG_WARN, VPCD_LOG_INFO, VPCD_LOG_DEBUG };

/* Where the link logs: one line per call, without a trailing newline. */
typedef void (*vpcd_log_fn)(void *ctx, int level, const char *fmt, va_list ap);

typedef struct {
    sks_card *card;
    const char *host; /* the reader: vpcd's address and port */
    const char *port;
    int once;          /* vpcd_run() returns when the first connection ends */
    unsigned retry_ms; /* back-off between connection attempts */
    /*
     * Set (to non-zero) from a signal handler or another thread to stop the
     * link at the next message boundary: the APDU in progress is finished.
     */
    atomic_int *stop;
    /*
     * The signal mask while waiting for the socket or the back-off (ppoll):
     * the stop signals are blocked while an APDU is processed and unblocked
     * only while waiting, so none is lost between a check and a wait. NULL:
     * the caller's mask all the time.
     */
    const sigset_t *wait_mask;
    vpcd_log_fn log; /* NULL: no logging */
    void *log_ctx;
    int log_level; /* the most verbose level passed to log */

    /* Statistics, for logs and tests. */
    unsigned long connections; /* connections made */
    unsigned long messages;    /* messages received: control codes and APDUs */
    unsigned long apdus;       /* APDUs answered */
} vpcd_link;

/* Set the defaults (127.0.0.1:35963, 1 s back-off, no logging) for `card`. */
void vpcd_link_init(vpcd_link *link, sks_card *card);

/* How a connection ended. */
enum vpcd_end {
    VPCD_END_CLOSED = 0, /* the reader closed the connection (pcscd stopped) */
    VPCD_END_PROTOCOL,   /* the peer broke the protocol: zero or truncated length */
    VPCD_END_IO,         /* a socket error */
    VPCD_END_STOP,       /* *stop was set */
};

/*
 * Serve one connection on `fd` until it ends; the socket is left open for
 * the caller to close. Power off, power on and reset reset the card (its
 * volatile state: selection, verified PINs); card state on disk is never
 * affected by how a connection ends.
 */
enum vpcd_end vpcd_serve(vpcd_link *link, int fd);

/*
 * One connection attempt to link->host:link->port with TCP_NODELAY set.
 * Returns the socket, -1 when the reader is not there (refused, timed out),
 * -2 when stopped while connecting, or -3 when the address cannot be
 * resolved (a configuration error, not worth retrying).
 */
int vpcd_connect(vpcd_link *link);

/*
 * Connect, serve, reconnect (after link->retry_ms when the reader is not
 * there, logging the wait once) until *stop is set or, with link->once, the
 * first connection ended. Returns 0, or -1 when the address is unusable.
 */
int vpcd_run(vpcd_link *link);

#endif
