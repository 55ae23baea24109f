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
    /*
     * Does the link support extended-length APDUs? Ask inside begin()/end()
     * with the SKS application selected: PC/SC may try an extended SELECT.
     */
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

/* ---- PC/SC backend (pcsc.c, pcsc_readers.c, pcsc_wait.c) ------------------
 *
 * sks_pcsc is the middleware's connection to the PC/SC service (pcscd) and
 * what the last scan saw of its readers. It never blocks: a missing service
 * is an error of sks_pcsc_scan(), retried at the next scan. Every call on one
 * sks_pcsc and its transports must be serialised by the caller (the module
 * lock); waiting for reader events uses a context of its own
 * (sks_pcsc_wait), so it can block without that lock.
 */
typedef struct sks_pcsc sks_pcsc;

typedef struct {
    char name[128];   /* the reader's name as PC/SC lists it */
    uint32_t state;   /* SCARD_STATE_* flags seen by the scan */
    uint32_t events;  /* the reader's event count: moves when a card comes or goes */
    int card_present; /* a powered, responsive card is in the reader */
} sks_pcsc_reader;

/* A handle on the PC/SC service; nothing is asked of pcscd until the first scan. */
sks_pcsc *sks_pcsc_new(void);
/* Close every transport opened from p first. */
void sks_pcsc_free(sks_pcsc *p);
/*
 * Ask pcscd for its readers and their states (non-blocking). 0, or -1 with a
 * reason in err when the service cannot be reached: then no reader is listed.
 */
int sks_pcsc_scan(sks_pcsc *p, char *err, size_t errlen);
size_t sks_pcsc_reader_count(const sks_pcsc *p);
const sks_pcsc_reader *sks_pcsc_reader_at(const sks_pcsc *p, size_t i);
const sks_pcsc_reader *sks_pcsc_reader_find(const sks_pcsc *p, const char *name);

/*
 * Connect to the card in `reader` (shared, T=0 or T=1). NULL with *status
 * (enum sks_transport_status) and a reason in err when there is no usable
 * card. The transport does not SELECT anything: the caller recognises an
 * SKS card by SELECTing its application.
 */
sks_transport *sks_transport_pcsc_open(sks_pcsc *p, const char *reader, int *status, char *err,
                                       size_t errlen);
/* The reader's event count when t connected: a different count means another card. */
uint32_t sks_transport_pcsc_events(const sks_transport *t);
/* Is t a PC/SC transport? */
int sks_transport_is_pcsc(const sks_transport *t);

/* What a PC/SC result code (LONG) means for a transport (enum sks_transport_status). */
int sks_pcsc_status(long scard_rv);

/*
 * Waiting for reader events: a snapshot of what p's last scan saw, waited on
 * with a PC/SC context of its own. NULL when p has no service (or no memory).
 */
typedef struct sks_pcsc_wait sks_pcsc_wait;
sks_pcsc_wait *sks_pcsc_wait_new(const sks_pcsc *p);
/*
 * Block until a reader comes or goes or a card is inserted into or removed
 * from one of the snapshot's readers (0), sks_pcsc_wait_cancel() (1), or the
 * service fails (-1). Needs no lock; only one thread may run a wait object.
 */
int sks_pcsc_wait_run(sks_pcsc_wait *w);
/* Wake sks_pcsc_wait_run() from another thread (may be repeated; never blocks long). */
void sks_pcsc_wait_cancel(sks_pcsc_wait *w);
void sks_pcsc_wait_free(sks_pcsc_wait *w);

/* Send one APDU through t, with tracing. */
int sks_transport_transmit(sks_transport *t, const uint8_t *cmd, size_t n, uint8_t *resp,
                           size_t *resp_len);

#endif
