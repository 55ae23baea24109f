/*
 * test-token-prov-util.h - a test relay for SKS provisioning through the
 * module's vendor mechanisms: the issuer is the project's issuer library
 * (src/issuer) in the test process, the client side is nothing but
 * PKCS#11 calls on the module (C_GenerateKey(CKM_VENDOR_SKS_SESSION),
 * C_DeriveKey with the in-session mechanisms). Preparing a call and
 * sending it are separate steps, so tests can tamper with, replay or
 * reorder prepared calls as a hostile relay would.
 */
#ifndef TEST_TOKEN_PROV_UTIL_H
#define TEST_TOKEN_PROV_UTIL_H

#include "pkcs11/sks-pkcs11.h"
#include "test-token-util.h"

/* The module on a fresh embedded card, an R/W session on its free slot. */
typedef struct {
    tt_env e;
    CK_FUNCTION_LIST *f;
    CK_ULONG slots; /* slots with a token before any provisioning */
    CK_SESSION_HANDLE s;
} tp_env;

void tp_env_open(tp_env *x);
/* C_Finalize and the environment removed. */
void tp_env_close(tp_env *x);

/* One provisioning session: the issuer's half and the module's object. */
typedef struct {
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s; /* the PKCS#11 session the calls go through */
    sks_issuer_session *is;
    CK_OBJECT_HANDLE prov; /* the CKO_VENDOR_SKS_PROVISIONING object */
    uint32_t card_handle;  /* its CKA_VENDOR_SKS_CARD_HANDLE */
    CK_SKS_SESSION_PARAMS sp;
    CK_BYTE uri[64];
    CK_BYTE issuer_key[1024];
    CK_BYTE session_key[CKS_SESSION_KEY_MAX];
    CK_BYTE attestation[CKS_ATTESTATION_MAX];
    CK_BYTE device_path[16384];
} tp_relay;

/*
 * Open a provisioning session: the issuer's request, C_GenerateKey on the
 * module, the issuer's acceptance (device path, SK, session attestation),
 * all asserted. `limit`: ClientOperationLimit; `lifetime` in seconds (0: 3600).
 */
void tp_open(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, X509_STORE *trusted,
             uint8_t session_key_alg, uint16_t limit, uint32_t lifetime);
/* The same for an issuer with a long-lived key (a reference is taken): its policies outlive
 * sessions. */
void tp_open_key(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, X509_STORE *trusted,
                 EVP_PKEY *issuer_key);
/* The same under IssuerURI `uri`, asking for an Updatable session when `updatable`. */
void tp_open_as(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, X509_STORE *trusted,
                EVP_PKEY *issuer_key, const char *uri, uint8_t updatable);
/*
 * Only the issuer's request, in r->sp with buffers of the relay's sizes
 * (r->session_key, r->attestation, r->device_path), nothing sent.
 */
void tp_request(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, uint8_t session_key_alg,
                uint16_t limit, uint32_t lifetime);
/* Send r->sp (C_GenerateKey), then accept the answer as tp_open does. */
void tp_open_sent(tp_relay *r, X509_STORE *trusted);
/* Forget the issuer's session (the module's object is left alone). */
void tp_free(tp_relay *r);

/* One prepared in-session call, ready for tp_send; it must stay in place until sent. */
typedef struct {
    CK_MECHANISM_TYPE mech;
    sks_issuer_msg m; /* MAC and encrypted value */
    union {
        CK_SKS_PUK_POLICY_PARAMS puk;
        CK_SKS_PIN_POLICY_PARAMS pin;
        CK_SKS_KEY_PAIR_PARAMS kp;
        CK_SKS_CERTIFICATE_PATH_PARAMS cp;
        CK_SKS_PRIVATE_KEY_PARAMS pk;
        CK_SKS_CLOSE_PARAMS close;
    } p;
    CK_BYTE id[SKS_ID_MAX];
    CK_BYTE name[64];
    CK_BYTE public_key[CKS_PUBLIC_KEY_MAX];
    CK_BYTE backup[4096];
    sks_writer der; /* a certificate path's DER */
} tp_call;

void tp_call_free(tp_call *c);

/* createPUKPolicy (numeric PUK, 5 tries). */
void tp_puk(tp_relay *r, tp_call *c, const char *id, const char *puk);
/* createPINPolicy of tl_pin_policy (testlib.h) under the PUK policy `puk_id` / hPuk. */
void tp_pin(tp_relay *r, tp_call *c, const char *id, const char *puk_id, CK_OBJECT_HANDLE hPuk);

/* createKeyPair. */
typedef struct {
    const char *id;
    const char *pin_id; /* NULL: no PIN */
    CK_OBJECT_HANDLE hPin;
    const char *pin;
    uint8_t algorithm; /* SKS_KEYALG_* */
    uint8_t usage;     /* SKS_USAGE_* */
    uint8_t import;    /* ImportPrivateKey */
    uint8_t backup;    /* PrivateKeyBackup */
    const char *name;
} tp_key_spec;
void tp_key(tp_relay *r, tp_call *c, const tp_key_spec *k);
/* Verify the key attestation of a sent createKeyPair (asserted); the key's SPKI is recorded. */
void tp_verify_key(tp_relay *r, tp_call *c);
/* The SubjectPublicKeyInfo the card returned in a sent createKeyPair. */
sks_view tp_spki(const tp_call *key);

/* setCertificatePath: an end-entity certificate from the test CA for `spki`, then the CA. */
void tp_cert(tp_relay *r, tp_call *c, const char *key_id, CK_OBJECT_HANDLE hKey, sks_view spki);
/* importPrivateKey of an issuer-made key. */
void tp_import(tp_relay *r, tp_call *c, const char *key_id, CK_OBJECT_HANDLE hKey, EVP_PKEY *key);
/* restorePrivateKey of a key backed up earlier (decrypted by the issuer). */
void tp_restore(tp_relay *r, tp_call *c, const char *key_id, CK_OBJECT_HANDLE hKey, EVP_PKEY *key);
/* closeProvisioningSession; tp_verify_close checks the attested response (asserted). */
void tp_close(tp_relay *r, tp_call *c);
void tp_verify_close(tp_relay *r, tp_call *c);

/* C_DeriveKey(c->mech, hBaseKey = r->prov) with the prepared parameters. */
CK_RV tp_send(tp_relay *r, tp_call *c, CK_OBJECT_HANDLE *out);

/*
 * createKeyPair of `k` sent and its attestation verified, then
 * setCertificatePath for the key's SPKI sent (both CKR_OK, asserted).
 */
void tp_key_with_cert(tp_relay *r, tp_call *key, tp_call *cert, const tp_key_spec *k,
                      CK_OBJECT_HANDLE *hkey, CK_OBJECT_HANDLE *hcert);
/*
 * closeProvisioningSession prepared and sent; when the module answers
 * CKR_OK, it returned no object and the attested close verifies
 * (asserted). The module's answer.
 */
CK_RV tp_close_session(tp_relay *r);

/* ---- what the card holds ----------------------------------------------------- */
/*
 * Assert that a provisioning session left nothing: the card (read directly,
 * not through the module) holds `keys` keys and `policies` visible PIN
 * policies, answers NO_SESSION for the session, and the module lists
 * `slots` slots.
 */
void tp_assert_gone(tt_env *e, CK_FUNCTION_LIST *f, uint32_t card_handle, uint32_t keys,
                    size_t policies, CK_ULONG slots);
/* The number of slots with a token. */
CK_ULONG tp_slot_count(CK_FUNCTION_LIST *f);

/*
 * Sign with the private key handle on the token and check the signature
 * with the public key of the certificate object `cert` (its CKA_VALUE
 * parsed by OpenSSL): tt_sign_and_verify.
 */
void tp_sign_and_verify(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                        CK_OBJECT_HANDLE cert);

#endif
