/*
 * issuer_internal.h - the issuer session object and the records it keeps of
 * the PUK policies, PIN policies and keys it asked the card for. Shared by
 * the files of src/issuer only.
 *
 * Records are allocated one by one (arrays of pointers), so a request view
 * pointing into a record stays valid while the session lives.
 */
#ifndef ISSUER_INTERNAL_H
#define ISSUER_INTERNAL_H

#include <stdarg.h>

#include "../protocol/sks_crypto.h"
#include "sks_issuer.h"

typedef struct {
    uint8_t id[SKS_ID_MAX];
    size_t id_len;
    uint8_t value[SKS_PIN_MAX]; /* clear PUK; unknown (empty) when earlier */
    size_t value_len;
    uint8_t format;
    uint8_t retry_limit;
    int earlier; /* declared: a policy of an earlier session (6.9) */
} issuer_puk_rec;

typedef struct {
    uint8_t id[SKS_ID_MAX];
    size_t id_len;
    int puk;                 /* index into puks, -1 for none */
    sks_issuer_pin_policy p; /* p.id and p.puk_id are not kept (NULL) */
    int earlier;             /* declared: a policy of an earlier session (6.9) */
} issuer_pin_rec;

typedef struct {
    uint8_t id[SKS_ID_MAX];
    size_t id_len;
    int pin;                        /* index into pins, -1 for none */
    uint8_t pin_value[SKS_PIN_MAX]; /* clear PIN */
    size_t pin_len;
    sks_issuer_key_spec k; /* k.id, k.pin_policy_id, k.pin, k.friendly_name not kept */
    uint8_t friendly_name[SKS_FRIENDLY_NAME_MAX];
    size_t friendly_name_len;
    uint8_t mac[SKS_MAC_LEN]; /* of the createKeyPair call */
    uint8_t *public_key;      /* SPKI as the card holds it, NULL until known */
    size_t public_key_len;
} issuer_key_rec;

/*
 * A key of an earlier, closed session of this issuer that a
 * post-provisioning call of this session names (6.10): what the issuer
 * recorded when it made the key, and what this session does with it.
 */
typedef struct {
    uint8_t id[SKS_ID_MAX];
    size_t id_len;
    uint8_t *public_key; /* SPKI DER as the card holds it */
    size_t public_key_len;
    uint8_t post_op; /* SKS_M_POST_* of the call naming it in this session; 0: none yet */
    int new_key;     /* postUpdateKey: index into keys of the replacing key; else -1 */
} issuer_earlier_key_rec;

struct sks_issuer_session {
    uint8_t session_key_alg;
    uint8_t *issuer_uri;
    size_t issuer_uri_len;
    EVP_PKEY *issuer_key;
    uint8_t *issuer_spki;
    size_t issuer_spki_len;
    sks_req_create_session request; /* as sent; views point into this object */
    uint8_t server_session_id[SKS_SESSION_ID_LEN];
    int requested;
    int accepted;
    uint32_t provisioning_handle;
    uint8_t sk[SKS_SK_LEN];
    uint32_t counter; /* next sequence number */
    issuer_puk_rec **puks;
    size_t npuks;
    issuer_pin_rec **pins;
    size_t npins;
    issuer_key_rec **keys;
    size_t nkeys;
    issuer_earlier_key_rec **earlier_keys; /* declared, for post-provisioning */
    size_t nearlier_keys;
    char error[256];
};

/* Set the error message and return -1. */
int issuer_fail(sks_issuer_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Take the next counter value (fails past 65535). */
int issuer_take_counter(sks_issuer_session *s, uint16_t *counter);

/* Enc(value) under the session's EK into the message's value. */
int issuer_encrypt(sks_issuer_session *s, const uint8_t *value, size_t n, sks_issuer_msg *m);

/* Parse SubjectPublicKeyInfo DER, insisting on no trailing bytes. NULL if bad. */
EVP_PKEY *issuer_parse_spki(const uint8_t *p, size_t n);

/*
 * Parse certificate DER (the whole input), as d2i_X509(NULL, ...), from a
 * process-wide cache of recently parsed certificates (the caller owns one
 * reference and must not modify the object). NULL if malformed.
 */
X509 *issuer_cert_parse_kept(const uint8_t *der, size_t n);

/* Is `key` an EC key on P-256? */
int issuer_is_p256(const EVP_PKEY *key);

/*
 * Shared with issuer_post.c (defined in issuer_calls.c): start a prepared
 * message; MAC a request under the next counter value (and reserve one
 * for the card's attestation when `attested`); the index of this
 * session's key `id` in keys, or -1.
 */
int issuer_begin(sks_issuer_session *s, sks_issuer_msg *m);
int issuer_mac_request(sks_issuer_session *s, uint8_t method_id, const void *req, sks_issuer_msg *m,
                       int attested);
int issuer_find_key(const sks_issuer_session *s, const char *id);

/* issuer_post.c: the post-provisioning counts of the close, and freeing its records. */
void issuer_post_counts(const sks_issuer_session *s, uint16_t *deleted, uint16_t *replaced);
void issuer_post_free(sks_issuer_session *s);

#endif
