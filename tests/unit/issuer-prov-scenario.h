/*
 * issuer-prov-scenario.h - the material and steps of the provisioning
 * scenarios of test-token-issuer-prov.c and test-token-issuer-post.c: one
 * session's buffers on both sides, the issuer side's steps through the
 * driver of the running test case (issuer-prov-driver.h), each relayed to
 * the card engine (issuer-prov-relay.h), and what the tests then ask the
 * card (a PIN, a signature).
 */
#ifndef ISSUER_PROV_SCENARIO_H
#define ISSUER_PROV_SCENARIO_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "issuer-prov-driver.h"
#include "issuer-prov-relay.h"
#include "pkcs11/sks-pkcs11.h"
#include "testlib.h"

#define ISSUER_URI "https://issuer.example/sks"
#define PUK_VALUE  "12345678"
#define PIN_VALUE  "1234"

/* The driver of the running test case (set by the fixtures below). */
extern const issuer_driver *drv;

/* Buffers of one provisioning session on both sides. */
typedef struct {
    relay r;       /* its card and the card's handles; they outlive a session */
    int updatable; /* the next request asks for an Updatable session */
    uint8_t issuer_spki[1024];
    CK_SKS_ISSUER_SESSION_PARAMS is;
    CK_SKS_SESSION_PARAMS cs;
    uint8_t esk[CKS_SESSION_KEY_MAX], att[CKS_ATTESTATION_MAX], path[16384];
    X509 *ca;
    void *anchor;
} session;

/* Key pair buffers. */
typedef struct {
    CK_SKS_KEY_PAIR_PARAMS p;
    uint8_t pin[64], pub[CKS_PUBLIC_KEY_MAX], enc[64];
} key_pair;

/* The card's manufacturer CA (its development CA file). */
X509 *manufacturer_ca(const tl_card *c);

/* A new card, its manufacturer CA as the driver's trust anchor. */
void session_init(session *s);
/* Ready for another session on the same card (the relay's handles stay). */
void session_next(session *s);
void session_free(session *s);

/* The issuer's request (CKM_VENDOR_SKS_SESSION on the issuer side), ISSUER_URI. */
CK_RV issuer_request(session *s, CK_ULONG alg, void *issuer_key);
/* The relay copies the request into the card side's struct and runs it on the card. */
int card_session(session *s);
/* Open, relay and accept: the session is ready for calls. */
void open_accepted(session *s, CK_ULONG alg, void *issuer_key);

/* The issuer's call parameters around one card-side struct. */
CK_SKS_ISSUER_CALL_PARAMS call_of(void *card_struct, CK_ULONG size, const char *ref,
                                  const char *value);

/*
 * The card side's structs of the PUK policy "PUK" (numeric, 3 tries; its
 * encrypted value into enc_buf) and the PIN policy "PIN" (numeric, 4..8
 * digits, 3 tries, issuer-set, user-modifiable, cached) of the scenarios.
 */
CK_SKS_PUK_POLICY_PARAMS puk_policy_params(uint8_t *enc_buf, CK_ULONG enc_cap);
CK_SKS_PIN_POLICY_PARAMS pin_policy_params(void);
/* createPUKPolicy "PUK" (PUK_VALUE) and createPINPolicy "PIN" under it, prepared and relayed. */
void make_policies(session *s, uint8_t *puk_buf, CK_ULONG puk_cap);
/* A P-256 signing key "My key" with its buffers (not Updatable). */
void key_pair_init(key_pair *k, const char *id, CK_BBOOL import);
/* Prepare createKeyPair under "PIN" and relay it; the card's answer is in k. */
void make_key_pair(session *s, key_pair *k, size_t slot);
/* A certificate for spki from the test issuer CA, followed by that CA: a 2-certificate path. */
void cert_path(const uint8_t *spki, size_t spki_len, sks_writer *der);
void bind_cert(session *s, const char *key_id, const sks_writer *der, uint32_t key_handle);
/* Both: a path for `spki` bound to the key `key_id` (card handle `key_handle`). */
void certify(session *s, const char *key_id, const uint8_t *spki, size_t spki_len,
             uint32_t key_handle);

/* The issuer side's close of a session with `keys` keys, prepared only: the driver's answer. */
CK_RV issuer_close(CK_ULONG keys);

/* Prepare and relay the close `cl` (its counts), then verify it (one bit flipped with `flip`). */
CK_RV close_with(session *s, CK_SKS_CLOSE_PARAMS *cl, int flip);
/* The same for a session with `keys` keys and nothing else. */
CK_RV close_session(session *s, CK_ULONG keys, int flip);

/* ECDSA with SHA-256 by the card key, verified with `pub` by OpenSSL: 1 if it verifies. */
int card_signs(session *s, uint32_t key, EVP_PKEY *pub);
/* verifyPIN of the card's policy s->r.pin: the card's status. */
int verify_pin(session *s, const char *pin);
/* A SubjectPublicKeyInfo as a key (asserted). */
EVP_PKEY *spki_key(const uint8_t *p, size_t n);

/* Check fixtures: the core driver or the module driver for a test case. */
void use_core(void);
void use_module(void);
void driver_done(void);
/*
 * A suite `name` of two test cases, "core" and "module" (the drivers),
 * each with what add_scenarios adds; tests of one driver only go to
 * *core or *module; tl_run_suite (testlib.h) runs it.
 */
Suite *driver_suite(const char *name, void (*add_scenarios)(TCase *tc), TCase **core,
                    TCase **module);

#endif
