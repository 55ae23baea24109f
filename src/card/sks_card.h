/*
 * sks_card.h - the SKS card engine as a library: what a transport (the
 * embedded one, or the sks-card daemon behind vpcd) and sks-tool see.
 *
 * A card is a state directory: card.db (the SQLite credential database,
 * secrets sealed under the master key) and master.key (0600). The engine
 * links nothing from the middleware side.
 */
#ifndef SKS_CARD_H
#define SKS_CARD_H

#include <stddef.h>
#include <stdint.h>

#include "../protocol/sks_wire.h"

typedef struct sks_card sks_card;

typedef struct {
    /* Device attestation key: SKS_KEYALG_EC_P256 (default) or SKS_KEYALG_RSA2048. */
    uint8_t attestation_alg;
    /*
     * Manufacturer CA that issues the device certificate (PEM files). When
     * NULL, a development CA is created in <dir>/manufacturer/ and used.
     */
    const char *ca_key_file;
    const char *ca_cert_file;
    uint32_t max_keys; /* 0: default (100000) */
} sks_card_init_opts;

/* Create a new card state in `dir` (created if missing; must not hold a card). */
int sks_card_init_state(const char *dir, const sks_card_init_opts *opts, char *err, size_t errlen);

/* Open an existing card state. NULL on failure with a message in err. */
sks_card *sks_card_open(const char *dir, char *err, size_t errlen);
void sks_card_close(sks_card *card);

/*
 * The ISO 7816 entry point: one command APDU in, one response APDU (data and
 * SW1 SW2) out. `resp` must hold SKS_APDU_MAX bytes. Returns the response
 * length (always >= 2). Never fails on any input.
 */
size_t sks_card_apdu(sks_card *card, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap);

/*
 * Power cycle / warm reset: verified PINs, selection, chaining and injection
 * session keys are forgotten.
 */
void sks_card_reset(sks_card *card);

/*
 * One SKS call below the APDU framing: method byte and arguments in, the SKS
 * answer (status byte, then results or error string) appended to `answer`.
 * Used by tests and by the fuzzer; transports use sks_card_apdu().
 */
void sks_card_call(sks_card *card, const uint8_t *call, size_t n, sks_writer *answer);

/* Replace the clock (seconds since the epoch) - for session lifetime tests. */
void sks_card_set_clock(sks_card *card, uint64_t (*now)(void *ctx), void *ctx);

/*
 * A PUK with RetryLimit 0 has no counter; instead every check of it waits
 * `ms` milliseconds before the comparison (default 1000) to slow down
 * exhaustive search. Tests set 0.
 */
void sks_card_set_puk_delay_ms(sks_card *card, unsigned ms);

#endif
