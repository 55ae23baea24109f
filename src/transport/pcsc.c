/*
 * pcsc.c - the PC/SC transport: an SKS card in a reader, reached through
 * pcsc-lite (pcscd). The connection is shared (other applications may use
 * the same card between our transactions); every PKCS#11 call's APDUs run
 * in one PC/SC transaction (begin/end), so nobody else's come between them.
 * A call of one APDU needs none, and the token layer sends the private-key
 * operations that way when it can (tok_card.c, single_apdu_call).
 *
 * A card that another application reset (SCARD_W_RESET_CARD) is
 * reconnected without a new reset and reported as SKS_TRANSPORT_RESET: the
 * caller SELECTs the SKS application again and forgets verified PINs. A card
 * that another application only talked to (its own SELECTs) is not visible
 * here at all; the SKS card then answers 6985 (not selected) to our next
 * call, and the caller re-SELECTs and retries, which costs nothing while
 * nobody else uses the card.
 *
 * Extended-length APDUs are used when the reader reports it can carry the
 * longest one (SCARD_ATTR_MAXINPUT), or, when it does not say, when an
 * extended SELECT works (tried once per connection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <reader.h>
#include <winscard.h>

#include "protocol/sks_apdu.h"
#include "transport/pcsc_internal.h"
#include "transport/transport.h"

/* The longest command APDU extended framing sends: header, Lc (3), data, Le (2). */
#define EXTENDED_APDU_MAX (4u + 3u + SKS_EXTENDED_CHUNK + 2u)

typedef struct {
    sks_transport base; /* first: the transport pointer is this struct */
    SCARDCONTEXT ctx;   /* the context the card was connected in (pcscd alive?) */
    SCARDHANDLE card;
    DWORD protocol;
    int connected;
    int in_txn;
    int extended; /* 1 yes, 0 no, -1 not known yet (probe with an extended SELECT) */
    int probing;  /* a failure now only means "no extended APDUs": report it at once */
    uint32_t events;
} pcsc_transport;

static const struct sks_transport_ops pcsc_ops;

int sks_transport_is_pcsc(const sks_transport *t)
{
    return t != NULL && t->ops == &pcsc_ops;
}

uint32_t sks_transport_pcsc_events(const sks_transport *t)
{
    return sks_transport_is_pcsc(t) ? ((const pcsc_transport *)t)->events : 0;
}

/* After a reset by someone else: reconnect without resetting again. */
static int reconnect(pcsc_transport *p)
{
    DWORD proto = 0;
    LONG rv = SCardReconnect(p->card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                             SCARD_LEAVE_CARD, &proto);
    if (rv != SCARD_S_SUCCESS) {
        int st = sks_pcsc_status(rv);
        return st == SKS_TRANSPORT_RESET ? SKS_TRANSPORT_ERROR : st;
    }
    p->protocol = proto;
    return SKS_TRANSPORT_OK;
}

static int pcsc_begin(sks_transport *t)
{
    pcsc_transport *p = (pcsc_transport *)t;
    if (!p->connected)
        return SKS_TRANSPORT_REMOVED;
    if (p->in_txn)
        return SKS_TRANSPORT_OK;
    int st = sks_pcsc_status(SCardBeginTransaction(p->card));
    int reset = 0;
    if (st == SKS_TRANSPORT_RESET) {
        reset = 1;
        st = reconnect(p);
        if (st == SKS_TRANSPORT_OK)
            st = sks_pcsc_status(SCardBeginTransaction(p->card));
        if (st == SKS_TRANSPORT_RESET)
            st = SKS_TRANSPORT_ERROR; /* reset again at once: give up for this call */
    }
    if (st != SKS_TRANSPORT_OK)
        return st;
    p->in_txn = 1;
    return reset ? SKS_TRANSPORT_RESET : SKS_TRANSPORT_OK;
}

static void pcsc_end(sks_transport *t)
{
    pcsc_transport *p = (pcsc_transport *)t;
    if (!p->in_txn)
        return;
    SCardEndTransaction(p->card, SCARD_LEAVE_CARD);
    p->in_txn = 0;
}

/*
 * A transmission failed without saying why (SCARD_E_NOT_TRANSACTED): when
 * the card was pulled during the exchange, pcscd notices only at its next
 * presence poll (a few hundred ms) and reports the card as present until
 * then. Watch the card's status for up to SETTLE_MS: removed, or (still
 * there) a genuine failure. Only failed transmissions pay for this.
 */
#define SETTLE_MS      1000
#define SETTLE_STEP_MS 50
static int failure_cause(pcsc_transport *p)
{
    for (int waited = 0; waited <= SETTLE_MS; waited += SETTLE_STEP_MS) {
        DWORD state = 0, proto = 0, name_len = 0, atr_len = 0;
        LONG rv = SCardStatus(p->card, NULL, &name_len, &state, &proto, NULL, &atr_len);
        int st = sks_pcsc_status(rv);
        if (st == SKS_TRANSPORT_REMOVED || st == SKS_TRANSPORT_NO_CARD)
            return SKS_TRANSPORT_REMOVED;
        if (rv == SCARD_S_SUCCESS && (state & SCARD_ABSENT))
            return SKS_TRANSPORT_REMOVED;
        /*
         * Reset while we talked: the answer is lost. A pcscd that is
         * shutting down powers its cards down first, so a reset is the
         * answer only when the service is still there.
         */
        if (st == SKS_TRANSPORT_RESET)
            return SCardIsValidContext(p->ctx) == SCARD_S_SUCCESS ? SKS_TRANSPORT_ERROR
                                                                  : SKS_TRANSPORT_REMOVED;
        struct timespec ts = {0, SETTLE_STEP_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return SCardIsValidContext(p->ctx) == SCARD_S_SUCCESS ? SKS_TRANSPORT_ERROR
                                                          : SKS_TRANSPORT_REMOVED;
}

static int pcsc_transmit(sks_transport *t, const uint8_t *cmd, size_t n, uint8_t *resp,
                         size_t *resp_len)
{
    pcsc_transport *p = (pcsc_transport *)t;
    if (!p->connected)
        return SKS_TRANSPORT_REMOVED;
    if (n == 0 || n > MAX_BUFFER_SIZE_EXTENDED)
        return SKS_TRANSPORT_ERROR;
    DWORD len = SKS_APDU_MAX < MAX_BUFFER_SIZE_EXTENDED ? SKS_APDU_MAX : MAX_BUFFER_SIZE_EXTENDED;
    const SCARD_IO_REQUEST *pci = p->protocol == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    LONG rv = SCardTransmit(p->card, pci, cmd, (DWORD)n, NULL, resp, &len);
    int st = sks_pcsc_status(rv);
    if (st == SKS_TRANSPORT_RESET) {
        /* Reset before the command reached the card: reconnect, keep our transaction. */
        int in_txn = p->in_txn;
        p->in_txn = 0;
        st = reconnect(p);
        if (st == SKS_TRANSPORT_OK && in_txn) {
            st = sks_pcsc_status(SCardBeginTransaction(p->card));
            p->in_txn = st == SKS_TRANSPORT_OK;
        }
        return st == SKS_TRANSPORT_OK ? SKS_TRANSPORT_RESET : st;
    }
    if (st == SKS_TRANSPORT_ERROR && !p->probing)
        st = failure_cause(p);
    if (st != SKS_TRANSPORT_OK)
        return st;
    if (len < 2 || len > SKS_APDU_MAX)
        return SKS_TRANSPORT_ERROR; /* every response ends with a status word */
    *resp_len = len;
    return SKS_TRANSPORT_OK;
}

/* An extended SELECT of the SKS application: does the link carry extended APDUs? */
static int probe_extended(pcsc_transport *p)
{
    sks_writer cmd;
    sks_writer_init(&cmd);
    int ok = 0;
    uint8_t *resp = malloc(SKS_APDU_MAX);
    if (resp != NULL && sks_apdu_build(&cmd, SKS_CLA_ISO, SKS_INS_SELECT, 0x04, 0x00, sks_aid,
                                       SKS_AID_LEN, 65536, 1) == 0) {
        size_t len = 0;
        p->probing = 1;
        if (sks_transport_transmit(&p->base, cmd.buf, cmd.len, resp, &len) == SKS_TRANSPORT_OK)
            ok = len >= 2 && resp[len - 2] == 0x90 && resp[len - 1] == 0x00;
        p->probing = 0;
    }
    free(resp);
    sks_writer_free(&cmd);
    return ok;
}

/* Called after the SKS application was selected, inside begin()/end(). */
static int pcsc_extended(sks_transport *t)
{
    pcsc_transport *p = (pcsc_transport *)t;
    if (p->extended < 0)
        p->extended = p->protocol == SCARD_PROTOCOL_T1 && probe_extended(p);
    return p->extended;
}

static void pcsc_close(sks_transport *t)
{
    pcsc_transport *p = (pcsc_transport *)t;
    if (p->connected) {
        pcsc_end(t);
        /* Leave the card as it is: other applications may be logged in to it. */
        SCardDisconnect(p->card, SCARD_LEAVE_CARD);
    }
    free(p);
}

static const struct sks_transport_ops pcsc_ops = {
    "pcsc", pcsc_begin, pcsc_end, pcsc_transmit, pcsc_extended, pcsc_close,
};

/* What the reader says about extended APDUs: 1, 0, or -1 when it does not say. */
static int reader_extended(SCARDHANDLE card)
{
    uint8_t buf[8];
    DWORD len = sizeof(buf);
    if (SCardGetAttrib(card, SCARD_ATTR_MAXINPUT, buf, &len) != SCARD_S_SUCCESS || len != 4)
        return -1;
    uint32_t max;
    memcpy(&max, buf, sizeof(max)); /* a DWORD-sized value in host order */
    if (max == 0)
        return -1;
    return max >= EXTENDED_APDU_MAX;
}

sks_transport *sks_transport_pcsc_open(sks_pcsc *pc, const char *reader, int *status, char *err,
                                       size_t errlen)
{
    *status = SKS_TRANSPORT_ERROR;
    if (pc == NULL || !pc->have_ctx || reader == NULL) {
        snprintf(err, errlen, "no PC/SC service");
        return NULL;
    }
    const sks_pcsc_reader *r = sks_pcsc_reader_find(pc, reader);
    pcsc_transport *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    LONG rv = SCardConnect(pc->ctx, reader, SCARD_SHARE_SHARED,
                           SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &p->card, &p->protocol);
    if (rv != SCARD_S_SUCCESS) {
        *status = sks_pcsc_status(rv);
        if (*status == SKS_TRANSPORT_OK || *status == SKS_TRANSPORT_RESET)
            *status = SKS_TRANSPORT_ERROR;
        snprintf(err, errlen, "%s", pcsc_stringify_error(rv));
        free(p);
        return NULL;
    }
    p->connected = 1;
    p->extended = p->protocol == SCARD_PROTOCOL_T1 ? reader_extended(p->card) : 0;
    p->events = r != NULL ? r->events : 0;
    p->base.ops = &pcsc_ops;
    p->ctx = pc->ctx;
    snprintf(p->base.reader, sizeof(p->base.reader), "%s", reader);
    *status = SKS_TRANSPORT_OK;
    return &p->base;
}
