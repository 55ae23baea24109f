/*
 * testlib.h - what the card tests share: a fresh card in a temporary
 * directory (removed at the end), a trust store holding the card's
 * development manufacturer CA, one SKS call through sks_card_call, an issuer
 * session opened with the card and its calls one at a time, "provision one
 * key" done end to end through the real issuer (src/issuer) with every
 * attestation verified, OpenSSL's verdict on a signature, and main()'s
 * suite runner.
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
 * The same for the issuer holding `issuer_key` (long-lived, so that a later
 * session is the same issuer; NULL: a fresh key) under `uri`: ECDH P-256,
 * no operation limit, one hour.
 */
sks_issuer_session *tl_open_session_of(tl_card *c, const char *uri, EVP_PKEY *issuer_key,
                                       uint8_t updatable);

/*
 * closeProvisioningSession of `is`; on success the issuer verifies the
 * close attestation (a failure fails the test). Returns the card's status.
 */
int tl_close_session(tl_card *c, sks_issuer_session *is);

/* ---- One call of a session, prepared by the issuer (asserted) ---------- */

/* createPUKPolicy `id` with the value `puk`; the card's handle. */
uint32_t tl_create_puk_policy(tl_card *c, sks_issuer_session *is, const char *id, const char *puk,
                              uint8_t format, uint8_t retry_limit);
/* The PIN policy most tests use: numeric, 4..8 digits, 3 tries, shared, cached. */
void tl_pin_policy(sks_issuer_pin_policy *pp, const char *id, const char *puk_id);
/* createPINPolicy `pp` under the card's PUK policy `puk_handle` (0: none); the card's handle. */
uint32_t tl_create_pin_policy(tl_card *c, sks_issuer_session *is, const sks_issuer_pin_policy *pp,
                              uint32_t puk_handle);
/*
 * createKeyPair of `ks` under the card's PIN policy `pin_handle` (0: none),
 * its attestation verified. The views of `resp` point into `answer`.
 */
void tl_create_key_pair(tl_card *c, sks_issuer_session *is, const sks_issuer_key_spec *ks,
                        uint32_t pin_handle, sks_resp_create_key_pair *resp, sks_writer *answer);
/*
 * setCertificatePath of key `id` (card handle `key`): one certificate from
 * the test issuer CA for `spki`, its DER appended to `der` unless NULL.
 */
void tl_set_certificate(tl_card *c, sks_issuer_session *is, const char *id, uint32_t key,
                        sks_view spki, sks_writer *der);
/* Both: a complete key. Its card handle; its SPKI appended to `spki` unless NULL. */
uint32_t tl_make_key(tl_card *c, sks_issuer_session *is, const sks_issuer_key_spec *ks,
                     uint32_t pin_handle, sks_writer *spki);
/*
 * The issuer prepares the post-provisioning call `method` (SKS_M_POST_*)
 * naming key `id` (SPKI `pub`, card handle `key`) and, for postUpdateKey,
 * the new key `new_id` / `new_key`. The issuer library's result (0: ready).
 */
int tl_prepare_post(sks_issuer_session *is, uint8_t method, const char *id, sks_view pub,
                    uint32_t key, const char *new_id, uint32_t new_key, sks_issuer_msg *m,
                    sks_req_post_key *req);

/*
 * Recompute the MAC (into m->mac, same counter) of a message the issuer
 * prepared for `method` and the test then changed in `req`: a call only
 * the issuer could make, but its library would not prepare.
 */
void tl_remac(sks_issuer_session *is, uint8_t method, const void *req, sks_issuer_msg *m);

/* getKeyAttributes of `key`: SKS_OK while it exists, NO_KEY once it is gone. */
int tl_key_status(tl_card *c, uint32_t key);
/* verifyPIN of the PIN policy `policy`: the card's status. */
int tl_verify_pin(tl_card *c, uint32_t policy, const char *pin);

/* The process's test issuer CA (EC P-256), made on first use. */
void tl_issuer_ca(EVP_PKEY **key, X509 **cert);

/* A certificate from the test issuer CA for `spki`, as DER appended to `der`. */
void tl_issue_cert_der(sks_view spki, sks_writer *der);
/*
 * A certificate path: tl_issue_cert_der, then the test issuer CA's
 * certificate, both appended to `der`. The end-entity certificate's length.
 */
size_t tl_issue_cert_path_der(sks_view spki, sks_writer *der);

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

/* Run a suite with Check (CK_NORMAL) and free it: the exit status for main(). */
int tl_run_suite(Suite *s);

/* ---- What OpenSSL says (testlib-verify.c) ------------------------------ */

/*
 * 1 if `sig` is a signature by `key` of SHA-256(msg) as the card and the
 * module make them: ECDSA as r | s (converted to DER here), RSA PKCS#1
 * v1.5, or RSA-PSS with MGF1-SHA-256 and a 32-byte salt when `pss`.
 * Checked with OpenSSL's default library context, nothing of the project.
 */
int tl_signature_ok(EVP_PKEY *key, int pss, const void *msg, size_t n, const uint8_t *sig,
                    size_t sig_len);

#endif
