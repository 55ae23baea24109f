/*
 * transport.h - how the middleware reaches a card: one small interface with
 * one backend per way of talking to a card (embedded: the card engine linked
 * in-process; pcsc: a reader through pcsc-lite).
 *
 * Every PKCS#11 call that talks to the card brackets its APDUs with
 * begin()/end(), so no other application's APDUs (through pcscd) come
 * between them. begin() reports whether the card may have lost its volatile
 * state since the last end() (reset, another application used it): the
 * caller then SELECTs the SKS application again and treats PINs as no longer
 * verified.
 */
#ifndef SKS_TRANSPORT_H
#define SKS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sks_transport sks_transport;

enum sks_transport_status {
    SKS_TRANSPORT_OK = 0,
    SKS_TRANSPORT_RESET = 1,    /* begin(): card was reset or used by someone else */
    SKS_TRANSPORT_NO_CARD = -1, /* no card in the reader */
    SKS_TRANSPORT_REMOVED = -2, /* the card was removed since it was connected */
    SKS_TRANSPORT_ERROR = -3,   /* any other failure of the link */
};

struct sks_transport_ops {
    const char *name; /* "embedded", "pcsc" */
    int (*begin)(sks_transport *t);
    void (*end)(sks_transport *t);
    /* One APDU; resp holds SKS_APDU_MAX bytes. */
    int (*transmit)(sks_transport *t, const uint8_t *cmd, size_t n, uint8_t *resp,
                    size_t *resp_len);
    /* Does the link support extended-length APDUs? */
    int (*extended)(sks_transport *t);
    void (*close)(sks_transport *t);
};

struct sks_transport {
    const struct sks_transport_ops *ops;
    char reader[128]; /* reader name shown in the slot description */
    /* Optional APDU trace (configured by the module): called for each exchange. */
    void (*trace)(void *ctx, const uint8_t *cmd, size_t n, const uint8_t *resp, size_t m);
    void *trace_ctx;
};

/* Embedded backend: a card state directory, created (sks_card_init_state) if missing. */
sks_transport *sks_transport_embedded_open(const char *state_dir, char *err, size_t errlen);

/* Send one APDU through t, with tracing. */
int sks_transport_transmit(sks_transport *t, const uint8_t *cmd, size_t n, uint8_t *resp,
                           size_t *resp_len);

#endif
