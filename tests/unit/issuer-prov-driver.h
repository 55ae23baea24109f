/*
 * issuer-prov-driver.h - the issuer side of provisioning as the tests of
 * test-token-issuer-prov.c drive it, in two ways with one interface:
 *
 *   core_driver    the functions of src/token/tok_issuer_prov_core.h,
 *                  compiled into the test;
 *   module_driver  the built sks-pkcs11.so (dlopen) with `transport = none`:
 *                  its issuer token, initialised and logged into, holds the
 *                  issuer's keys and the trust anchor as objects, and every
 *                  step is a C_GenerateKey / C_DeriveKey.
 */
#ifndef ISSUER_PROV_DRIVER_H
#define ISSUER_PROV_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "pkcs11/sks-pkcs11.h"

/*
 * What a scenario asks of the issuer side. Keys and the trust anchor are
 * given as what each driver needs (an EVP_PKEY / X509, or an object handle
 * on the issuer token), made by the driver from the test's own material.
 */
typedef struct {
    const char *name;
    void (*setup)(void);
    void (*teardown)(void);
    /* The issuer's own key on the issuer side (NULL key: none, a fresh one per session). */
    void *(*issuer_key)(EVP_PKEY *key);
    /* The manufacturer CA as a trust anchor. */
    void *(*anchor)(X509 *ca);
    CK_RV (*open)(CK_SKS_ISSUER_SESSION_PARAMS *p, void *issuer_key);
    CK_RV (*accept)(void *anchor, CK_SKS_SESSION_PARAMS *card);
    CK_RV (*call)(CK_MECHANISM_TYPE mech, CK_SKS_ISSUER_CALL_PARAMS *call);
    /* On success *spki (caller's OPENSSL_free) is the public key the issuer side now holds. */
    CK_RV (*verify_key)(CK_SKS_KEY_PAIR_PARAMS *card, uint8_t **spki, size_t *spki_len);
    CK_RV (*verify_close)(CK_SKS_CLOSE_PARAMS *card);
    /* The private key to import, as a driver handle. */
    void *(*private_key)(EVP_PKEY *key);
    /*
     * CKM_VENDOR_SKS_DECLARE_KEY of a key of an earlier session by its ID and
     * SubjectPublicKeyInfo; the module driver names the CKO_PUBLIC_KEY of the
     * issuer token that VERIFY_KEY_PAIR made for it (found by ID and key).
     */
    CK_RV (*declare_key)(const char *id, const uint8_t *spki, size_t spki_len);
} issuer_driver;

extern const issuer_driver core_driver, module_driver;

/* ---- the module driver's state and helpers, for tests of the module alone ---- */
#define USER_PIN "user-secret"
extern CK_FUNCTION_LIST *p11;
extern CK_SESSION_HANDLE mod_session; /* R/W, the user logged in */
extern CK_SLOT_ID mod_slot;           /* the issuer token */
extern CK_OBJECT_HANDLE mod_prov;     /* the issuer's provisioning object, or CK_INVALID_HANDLE */

/* An OpenSSL key as a private key object of the issuer token with `usage` true. */
CK_OBJECT_HANDLE mod_import_key(EVP_PKEY *key, CK_ATTRIBUTE_TYPE usage, CK_BBOOL extractable);
/* The same as a token object with CKA_ID `id` (not extractable). */
CK_OBJECT_HANDLE mod_import_token_key(EVP_PKEY *key, CK_ATTRIBUTE_TYPE usage, const char *id);
/* C_Finalize and C_Initialize again, as a new process would: a new session, the user logged in. */
void mod_restart(void);
/* C_DeriveKey of an issuer-side mechanism on mod_prov; *out is its result. */
CK_RV mod_derive(CK_MECHANISM_TYPE mech, void *param, CK_ULONG len, CK_ATTRIBUTE *t, CK_ULONG n,
                 CK_OBJECT_HANDLE *out);
/* An in-session call (CK_SKS_ISSUER_CALL_PARAMS) that makes no object. */
CK_RV mod_call(CK_MECHANISM_TYPE mech, CK_SKS_ISSUER_CALL_PARAMS *call);
/* The CKO_PUBLIC_KEY of the issuer token with this ID and SubjectPublicKeyInfo (asserted). */
CK_OBJECT_HANDLE mod_find_public_key(const char *id, const uint8_t *spki, size_t spki_len);

#endif
