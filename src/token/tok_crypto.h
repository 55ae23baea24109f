/*
 * tok_crypto.h - the token's cryptographic operations as the rest of the
 * token layer sees them (the mechanism table, resetting a session's
 * operations, importing a private key through the local issuer), and the
 * internals the crypto files share (mechanism descriptors, the map from a
 * PKCS#11 mechanism to the card's algorithm numbers, hash helpers).
 */
#ifndef SKS_TOK_CRYPTO_H
#define SKS_TOK_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "token/tok.h"

/* C_GetMechanismList semantics: list == NULL returns the count only. */
CK_RV tok_mech_list(CK_MECHANISM_TYPE *list, CK_ULONG *count);
/* C_GetMechanismInfo for one mechanism (CKR_MECHANISM_INVALID if not offered). */
CK_RV tok_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);
/* End every active cryptographic operation of a session and free its state. */
void tok_session_ops_reset(tok_session *s);
/* C_CreateObject of a CKO_PRIVATE_KEY: import it onto the card via the local issuer. */
CK_RV tok_import_private_key(tok_session *s, tok_slot *slot, const CK_ATTRIBUTE *tmpl,
                             CK_ULONG n, CK_OBJECT_HANDLE *out);

/* ---- mechanism table (tok_mech.c) ---------------------------------------- */

/* The kind of key a mechanism works with. */
enum tok_mech_key {
    TOK_MK_NONE,    /* digests */
    TOK_MK_RSA,
    TOK_MK_EC,
    TOK_MK_AES,
    TOK_MK_GENERIC, /* generic secret */
};

typedef struct {
    CK_MECHANISM_TYPE type;
    CK_ULONG min_key, max_key; /* as C_GetMechanismInfo reports them */
    CK_FLAGS flags;
    uint8_t key;         /* enum tok_mech_key */
    uint8_t sign_alg;    /* enum sks_sign_alg for sign mechanisms, else 0 */
    uint8_t module_hash; /* enum sks_hash_alg the module hashes the data with; 0: none */
    uint8_t single_part; /* the standard defines only single-part use: Update buffers */
} tok_mech;

/* The descriptor of an offered mechanism, or NULL. */
const tok_mech *tok_mech_find(CK_MECHANISM_TYPE type);

/* SKS hash numbers and the digests behind them (fetched once). */
const EVP_MD *tok_hash_md(uint8_t sks_hash);  /* NULL for SKS_HASH_NONE or unknown */
size_t tok_hash_len(uint8_t sks_hash);         /* 0 for SKS_HASH_NONE or unknown */
uint8_t tok_hash_of_mech(CK_MECHANISM_TYPE m); /* CKM_SHA256 -> SKS_HASH_SHA256; 0 if none */
uint8_t tok_hash_of_mgf(CK_ULONG mgf);         /* CKG_MGF1_SHA256 -> SKS_HASH_SHA256; 0 */

/* What the card is asked to do for a sign mechanism (signHashedData arguments). */
typedef struct {
    uint8_t alg;         /* enum sks_sign_alg */
    uint8_t hash;        /* Hash byte sent to the card */
    uint8_t module_hash; /* the module hashes the data with this first; 0: data as given */
    uint16_t salt;       /* PSS salt length */
} tok_sign_map;

/*
 * Map a sign/verify mechanism and its parameter to the card's algorithm.
 * CKR_MECHANISM_INVALID for non-sign mechanisms, CKR_MECHANISM_PARAM_INVALID
 * for a bad parameter.
 */
CK_RV tok_mech_sign_map(const CK_MECHANISM *m, tok_sign_map *out);

/* What asymmetricDecrypt (and the software RSA encryption) uses. */
typedef struct {
    uint8_t alg;      /* enum sks_decrypt_alg */
    uint8_t hash;     /* OAEP */
    uint8_t mgf_hash; /* OAEP */
    const uint8_t *label;
    size_t label_len;
} tok_rsa_crypt_map;

/* Map CKM_RSA_PKCS / CKM_RSA_PKCS_OAEP (with its parameter) to the card's algorithm. */
CK_RV tok_mech_rsa_crypt_map(const CK_MECHANISM *m, tok_rsa_crypt_map *out);

/* Check a mechanism exists and allows `flag` (CKF_SIGN...): CKR_MECHANISM_INVALID otherwise. */
CK_RV tok_mech_check(const CK_MECHANISM *m, CK_FLAGS flag, const tok_mech **out);

/* The enum tok_mech_key of a PKCS#11 key type. */
uint8_t tok_mech_key_of(CK_KEY_TYPE key_type);

#endif
