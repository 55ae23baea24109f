/*
 * pcsc-fault.c - PC/SC faults on demand for t-pcsc-faults.sh: an LD_PRELOAD
 * library that wraps SCardTransmit and SCardBeginTransaction of the process
 * it is loaded into (the real ones are found with dlsym RTLD_NEXT) and, as
 * the environment asks, answers some SKS calls itself instead of sending
 * them to the card. The module then meets, against a real pcscd and card,
 * what is hard to cause from outside at the right moment: a reset or a
 * deselection just before one given call, pcscd gone at the next
 * transaction, a card of an older protocol.
 *
 * An SKS call is a command APDU 80 10 00 00 with the call as its data: the
 * first data byte is the method (docs/protocol.md, sections 2 and 4). Only
 * calls sent in one APDU are looked at (all of them through vpcd, which
 * carries extended APDUs); the parts of a chained call pass untouched. A
 * call is named M[:N]: the N-th call (default: the first) of method M in
 * this process, M in decimal as in docs/protocol.md.
 *
 *   SKS_FAULT_RESET_ON_TRANSMIT=M[:N]  that call returns SCARD_W_RESET_CARD
 *       (another application reset the card) without reaching the card
 *   SKS_FAULT_FAKE_6985=M[:N]  that call is answered 69 85 (the SKS
 *       application is not selected) without reaching the card
 *   SKS_FAULT_BEGIN_AFTER=no-service|reset  the first SCardBeginTransaction
 *       after one of those two faults: no-service returns SCARD_E_NO_SERVICE
 *       (pcscd gone) without asking pcscd; reset first resets the card
 *       through a connection of its own, as another application would, so
 *       that pcscd itself answers SCARD_W_RESET_CARD
 *   SKS_FAULT_NO_METHODS=M,M...  calls of these methods are answered with
 *       the SKS status NO_METHOD, as a card of an older protocol answers,
 *       without reaching the card
 *
 * Every fault is reported on stderr ("pcsc-fault: ..."), so that a test can
 * tell it happened. A malformed setting ends the process (status 2).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <winscard.h>

/* From docs/protocol.md (written out here, not taken from the module's headers). */
#define SKS_CALL_CLA         0x80 /* an SKS call, the only or last part */
#define SKS_CHAIN_CLA        0x90 /* an SKS call, more parts follow */
#define SKS_CALL_INS         0x10
#define SKS_STATUS_NO_METHOD 15 /* section 3 */

typedef enum { BEGIN_AS_IS, BEGIN_NO_SERVICE, BEGIN_RESET } begin_fault;

/* One call the environment names: the nth call of a method. */
typedef struct {
    int method; /* -1: none named */
    unsigned long nth;
    unsigned long seen; /* calls of that method so far */
} call_fault;

typedef LONG (*transmit_fn)(SCARDHANDLE, const SCARD_IO_REQUEST *, LPCBYTE, DWORD,
                            SCARD_IO_REQUEST *, LPBYTE, LPDWORD);
typedef LONG (*begin_fn)(SCARDHANDLE);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static transmit_fn real_transmit;
static begin_fn real_begin;
static call_fault reset_call = {-1, 0, 0}, deselect_call = {-1, 0, 0};
static unsigned char no_method[256]; /* 1: answer NO_METHOD to this method */
static begin_fault begin_after = BEGIN_AS_IS;
static int begin_armed; /* a call fault happened: the next begin gets begin_after */
static int in_chain;    /* parts of a chained call are passing */

static void bad_setting(const char *name, const char *value)
{
    fprintf(stderr, "pcsc-fault: bad %s '%s'\n", name, value);
    exit(2);
}

/* A method number 0..255 at *p; *p moves past it. -1 when there is none. */
static int parse_method(const char **p)
{
    char *end;
    unsigned long m = strtoul(*p, &end, 10);
    if (end == *p || m > 255)
        return -1;
    *p = end;
    return (int)m;
}

/* M[:N] from the environment variable NAME, if set. */
static void parse_call(const char *name, call_fault *f)
{
    const char *v = getenv(name), *p = v;
    if (v == NULL || *v == '\0')
        return;
    f->method = parse_method(&p);
    f->nth = 1;
    if (f->method >= 0 && *p == ':') {
        char *end;
        f->nth = strtoul(p + 1, &end, 10);
        p = end;
    }
    if (f->method < 0 || f->nth == 0 || *p != '\0')
        bad_setting(name, v);
}

static void setup(void)
{
    real_transmit = (transmit_fn)dlsym(RTLD_NEXT, "SCardTransmit");
    real_begin = (begin_fn)dlsym(RTLD_NEXT, "SCardBeginTransaction");
    if (real_transmit == NULL || real_begin == NULL) {
        fprintf(stderr, "pcsc-fault: the real PC/SC functions are not loaded\n");
        exit(2);
    }
    parse_call("SKS_FAULT_RESET_ON_TRANSMIT", &reset_call);
    parse_call("SKS_FAULT_FAKE_6985", &deselect_call);
    const char *v = getenv("SKS_FAULT_BEGIN_AFTER");
    if (v != NULL && strcmp(v, "no-service") == 0)
        begin_after = BEGIN_NO_SERVICE;
    else if (v != NULL && strcmp(v, "reset") == 0)
        begin_after = BEGIN_RESET;
    else if (v != NULL && *v != '\0')
        bad_setting("SKS_FAULT_BEGIN_AFTER", v);
    v = getenv("SKS_FAULT_NO_METHODS");
    for (const char *p = v; p != NULL && *p != '\0';) {
        int m = parse_method(&p);
        if (m < 0 || (*p != ',' && *p != '\0'))
            bad_setting("SKS_FAULT_NO_METHODS", v);
        no_method[m] = 1;
        p += *p == ',';
    }
}

/*
 * The method of an SKS call sent in one APDU, or -1 (another command, or a
 * part of a chained call). Short form: Lc at byte 4, data from byte 5;
 * extended form: 00, a two-byte Lc, data from byte 7.
 */
static int call_method(const BYTE *apdu, DWORD n)
{
    int sks = n >= 5 && (apdu[0] == SKS_CALL_CLA || apdu[0] == SKS_CHAIN_CLA) &&
              apdu[1] == SKS_CALL_INS && apdu[2] == 0 && apdu[3] == 0;
    int part = in_chain;
    in_chain = sks && apdu[0] == SKS_CHAIN_CLA; /* a SELECT abandons a chain, too */
    if (!sks || part || in_chain)
        return -1;
    if (apdu[4] != 0)
        return n > 5 ? apdu[5] : -1;
    return n > 7 && (apdu[5] != 0 || apdu[6] != 0) ? apdu[7] : -1;
}

/* Is this call (method m) the one f names? Counts the calls of that method. */
static int is_named_call(call_fault *f, int m)
{
    return f->method == m && ++f->seen == f->nth;
}

/* Answer with these response bytes (data, then the status word) instead of the card. */
static LONG answer(const BYTE *resp, DWORD n, LPBYTE out, LPDWORD out_len)
{
    if (out_len == NULL || out == NULL || *out_len < n)
        return SCARD_E_INSUFFICIENT_BUFFER;
    memcpy(out, resp, n);
    *out_len = n;
    return SCARD_S_SUCCESS;
}

LONG SCardTransmit(SCARDHANDLE card, const SCARD_IO_REQUEST *send_pci, LPCBYTE cmd, DWORD n,
                   SCARD_IO_REQUEST *recv_pci, LPBYTE resp, LPDWORD resp_len)
{
    pthread_once(&once, setup);
    pthread_mutex_lock(&lock);
    int m = cmd != NULL ? call_method(cmd, n) : -1;
    enum { PASS, RESET, DESELECT, NO_METHOD } what = PASS;
    if (m >= 0 && no_method[m])
        what = NO_METHOD;
    else if (m >= 0 && is_named_call(&reset_call, m))
        what = RESET;
    else if (m >= 0 && is_named_call(&deselect_call, m))
        what = DESELECT;
    if (what == RESET || what == DESELECT)
        begin_armed = 1;
    pthread_mutex_unlock(&lock);

    switch (what) {
    case RESET:
        fprintf(stderr, "pcsc-fault: method %d call %lu: SCARD_W_RESET_CARD\n", m, reset_call.nth);
        return SCARD_W_RESET_CARD;
    case DESELECT: {
        static const BYTE sw[] = {0x69, 0x85};
        fprintf(stderr, "pcsc-fault: method %d call %lu: 69 85\n", m, deselect_call.nth);
        return answer(sw, sizeof(sw), resp, resp_len);
    }
    case NO_METHOD: {
        /* Status NO_METHOD, then the message as a byte[] (2-byte length), then SW 90 00. */
        static const BYTE no[] = {
            SKS_STATUS_NO_METHOD, 0, 9, 'N', 'O', '_', 'M', 'E', 'T', 'H', 'O', 'D', 0x90, 0x00};
        fprintf(stderr, "pcsc-fault: method %d: NO_METHOD\n", m);
        return answer(no, sizeof(no), resp, resp_len);
    }
    default:
        return real_transmit(card, send_pci, cmd, n, recv_pci, resp, resp_len);
    }
}

/* Reset the card in this handle's reader through a connection of our own. */
static void reset_from_elsewhere(SCARDHANDLE card)
{
    char reader[MAX_READERNAME];
    BYTE atr[MAX_ATR_SIZE];
    DWORD reader_len = sizeof(reader), state = 0, proto = 0, atr_len = sizeof(atr);
    SCARDCONTEXT ctx;
    SCARDHANDLE other;
    LONG rv = SCardStatus(card, reader, &reader_len, &state, &proto, atr, &atr_len);
    if (rv == SCARD_S_SUCCESS)
        rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
    if (rv != SCARD_S_SUCCESS) {
        fprintf(stderr, "pcsc-fault: no second connection: %s\n", pcsc_stringify_error(rv));
        return;
    }
    rv = SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                      &other, &proto);
    if (rv == SCARD_S_SUCCESS)
        rv = SCardDisconnect(other, SCARD_RESET_CARD);
    SCardReleaseContext(ctx);
    fprintf(stderr, "pcsc-fault: another connection reset the card: 0x%08lx\n", (unsigned long)rv);
}

LONG SCardBeginTransaction(SCARDHANDLE card)
{
    pthread_once(&once, setup);
    pthread_mutex_lock(&lock);
    begin_fault what = begin_armed ? begin_after : BEGIN_AS_IS;
    begin_armed = 0;
    pthread_mutex_unlock(&lock);

    if (what == BEGIN_NO_SERVICE) {
        fprintf(stderr, "pcsc-fault: SCardBeginTransaction: SCARD_E_NO_SERVICE\n");
        return SCARD_E_NO_SERVICE;
    }
    if (what == BEGIN_RESET)
        reset_from_elsewhere(card);
    LONG rv = real_begin(card);
    if (what == BEGIN_RESET)
        fprintf(stderr, "pcsc-fault: SCardBeginTransaction after the reset: 0x%08lx\n",
                (unsigned long)rv);
    return rv;
}
