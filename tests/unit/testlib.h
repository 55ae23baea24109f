/*
 * testlib.h - what the card tests share: a fresh card in a temporary
 * directory (removed at the end), a trust store holding the card's
 * development manufacturer CA, one SKS call through sks_card_call, an issuer
 * session opened with the card, and "provision one key" done end to end
 * through the real issuer (src/issuer) with every attestation verified.
 *
 * The helpers that set things up fail the running Check test (ck_assert)
 * instead of returning errors; tl_call() returns the card's status, since
 * that is what tests look at.
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "card/sks_card.h"
#include "issuer/sks_issuer.h"
#include "protocol/sks_msg.h"

/* A card in its own temporary state directory. */
typedef struct {
    char dir[256];       /* the card's state directory */
    sks_card *card;      /* open card */
    X509_STORE *trusted; /* <dir>/manufacturer/ca-cert.pem */
    sks_writer answer;   /* answer of the last tl_call() without its own writer */
    char error[256];     /* error string of the last failed call ("" after OK) */
} tl_card;

/*
 * A fresh, open card (default options, or `opts`). Never NULL. Cards opened
 * here and by tl_card_reopen() check a PUK without retry limit at once
 * (sks_card_set_puk_delay_ms 0); the default delay has its own test.
 */
tl_card *tl_card_new(void);
tl_card *tl_card_new_opts(const sks_card_init_opts *opts);
/* Power down and up: sks_card_close + sks_card_open (the clock is reset too). */
void tl_card_reopen(tl_card *c);
/* Close the card and remove its directory. */
void tl_card_free(tl_card *c);

/*
 * Run one call: encode `req` for `method`, pass it to sks_card_call, decode
 * the answer into `resp` (may be NULL). Views in `resp` point into `answer`
 * (the caller's writer) or, when `answer` is NULL, into c->answer, valid
 * until the next such call. Returns the status; c->error holds the card's
 * message. A malformed answer fails the test.
 */
int tl_call(tl_card *c, uint8_t method, const void *req, void *resp, sks_writer *answer);
/* The same for raw call bytes (method byte first); the answer is in c->answer. */
int tl_call_raw(tl_card *c, const uint8_t *call, size_t n);

/* Fail the test unless `status` is SKS_OK, showing the card's message. */
#define TL_OK(c, status)                                                                           \
    ck_assert_msg((status) == SKS_OK, "card said %s: %s", sks_status_name((uint8_t)(status)),      \
                  (c)->error)

/*
 * An issuer session opened with the card: createProvisioningSession sent,
 * answer accepted (device path, SK, session attestation all verified).
 * `limit` is ClientOperationLimit, `lifetime` SessionLifeTime (0: 3600).
 */
sks_issuer_session *tl_open_session(tl_card *c, uint8_t session_key_alg, uint8_t updatable,
                                    uint16_t limit, uint32_t lifetime);

/*
 * closeProvisioningSession of `is`; on success the issuer verifies the
 * close attestation (a failure fails the test). Returns the card's status.
 */
int tl_close_session(tl_card *c, sks_issuer_session *is);

/* The process's test issuer CA (EC P-256), made on first use. */
void tl_issuer_ca(EVP_PKEY **key, X509 **cert);

/* A certificate from the test issuer CA for `spki`, as DER appended to `der`. */
void tl_issue_cert_der(sks_view spki, sks_writer *der);

/* ---- Provision keys in one session ------------------------------------ */

#define TL_MAX_KEYS 4

/*
 * What tl_provision_key() creates. Zero means the default given in brackets.
 * The keys get IDs "key1".."keyN" and share the one PIN policy (if any).
 */
typedef struct {
    uint8_t session_key_alg; /* SKS_SKALG_* [ECDH P-256] */
    uint8_t algorithm;       /* SKS_KEYALG_* [EC P-256] */
    uint8_t key_usage;       /* SKS_USAGE_* [sign] */
    /*
     * createKeyPair flags as SKS_KEYFLAG_*: PRIVATE_KEY_BACKUP, MIGRATABLE,
     * UPDATABLE (the session is made Updatable too), DELETE_PROTECTED,
     * IMPORT_PRIVATE_KEY (the issuer generates the key and imports it).
     */
    uint8_t flags;
    size_t key_count;          /* keys under the PIN policy [1], at most TL_MAX_KEYS */
    const char *pin;           /* PIN value; NULL: no PIN policy */
    const char *puk;           /* PUK value; NULL: no PUK policy (needs a PIN) */
    uint8_t pin_format;        /* SKS_PIN_* [numeric] */
    uint8_t puk_format;        /* SKS_PIN_* [numeric] */
    uint8_t pin_retry_limit;   /* [3] */
    uint8_t puk_retry_limit;   /* 0 is "no limit" */
    uint8_t pin_min_length;    /* [4] */
    uint8_t pin_max_length;    /* [16] */
    uint8_t user_modifiable;   /* PIN may be changed */
    uint8_t pin_user_defined;  /* PIN sent in the clear as chosen by the user */
    uint8_t pin_no_caching;    /* CachingSupport false: each key use needs its own verifyPIN */
    const char *friendly_name; /* [none] */
} tl_key_spec;

typedef struct {
    uint32_t session;    /* ProvisioningHandle (closed) */
    uint32_t pin_policy; /* 0 without PIN */
    uint32_t puk_policy; /* 0 without PUK */
    size_t nkeys;
    uint32_t key[TL_MAX_KEYS];          /* key handles */
    EVP_PKEY *public_key[TL_MAX_KEYS];  /* each key's public key */
    EVP_PKEY *private_key[TL_MAX_KEYS]; /* the issuer's copy (import or backup), else NULL */
    X509 *cert[TL_MAX_KEYS];            /* end-entity certificate from the test issuer CA */
} tl_key;

/*
 * Provision keys as `spec` says in one session, verifying every attestation,
 * and close it: the keys are usable. Fails the test on any error.
 */
void tl_provision_key(tl_card *c, const tl_key_spec *spec, tl_key *out);
void tl_key_free(tl_key *k);

#endif
