/*
 * tok_soft.h - software keys: the private keys the issuer token of no-card
 * mode holds in module memory (and, as token objects, in its files), and
 * the operations the module runs with them in its own OpenSSL library
 * context (tok_ossl.h). A card's private keys never take this path: a
 * software private key object is one that carries its private components
 * (CKA_PRIVATE_EXPONENT and the CRT values for RSA, CKA_VALUE for EC),
 * which the attributes of a card key never do.
 *
 *   tok_soft_key.c   EVP_PKEY <-> PKCS#11 attributes, PKCS#8 in (out:
 *                    sks_pkcs8_encode of src/protocol/sks_keys.h)
 *   tok_soft_ops.c   signing, RSA decryption and ECDH with a software key
 *   tok_soft_gen.c   C_GenerateKeyPair and C_CreateObject of private keys
 *   tok_soft_wrap.c  C_WrapKey/C_UnwrapKey of private keys (PKCS#8 under
 *                    an AES key wrap) and the issuer token's key calls
 *   tok_soft_cache.c what injection keeps per key object between blobs
 */
#ifndef SKS_TOK_SOFT_H
#define SKS_TOK_SOFT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "token/tok.h"
#include "token/tok_crypto.h"

/* ---- keys and attributes (tok_soft_key.c) ---------------------------------- */

/*
 * The RSA private key components in the standard's order (CKA_MODULUS ..
 * CKA_COEFFICIENT): each attribute and its OpenSSL parameter name.
 */
typedef struct {
    CK_ATTRIBUTE_TYPE type;
    const char *name;
} tok_soft_rsa_part;
#define TOK_SOFT_RSA_PARTS 8
extern const tok_soft_rsa_part tok_soft_rsa_parts[TOK_SOFT_RSA_PARTS];
/*
 * Building a private key from its components in the module's library
 * context (software keys, and keys imported into a card): push one
 * big-endian component of 1..1024 bytes as a secure BIGNUM, kept in *keep
 * until the build is done (the caller BN_clear_frees it), 1 or 0; then
 * the key pair of `type` ("RSA", "EC") from what was pushed, or NULL.
 */
int tok_soft_push_bn(OSSL_PARAM_BLD *bld, const char *name, const void *value, size_t len,
                     BIGNUM **keep);
EVP_PKEY *tok_soft_keypair_from(const char *type, OSSL_PARAM_BLD *bld);

/*
 * The EVP_PKEY (module library context) of a software private key object:
 * a new reference the caller frees. NULL if the attributes are not those
 * of a software RSA or EC private key.
 */
EVP_PKEY *tok_soft_private_key(const tok_attrs *a);
/* Does the object carry the private components of a software key? (cheap, no parsing) */
int tok_soft_is_private_key(const tok_attrs *a);
/*
 * The key attributes of a software private key object made from `pk`:
 * CKA_KEY_TYPE, CKA_PUBLIC_KEY_INFO, RSA CKA_MODULUS, CKA_PUBLIC_EXPONENT,
 * CKA_PRIVATE_EXPONENT, CKA_PRIME_1/2, CKA_EXPONENT_1/2, CKA_COEFFICIENT, or
 * EC CKA_EC_PARAMS and CKA_VALUE (the scalar, as long as the order).
 * CKR_KEY_TYPE_INCONSISTENT for keys other than RSA and EC P-256/P-384.
 */
CK_RV tok_soft_key_attrs(EVP_PKEY *pk, tok_attrs *a);
/* A private key from PKCS#8 PrivateKeyInfo DER (exactly `len` bytes); NULL if it is none. */
EVP_PKEY *tok_soft_from_pkcs8(const uint8_t *der, size_t len);

/* ---- operations (tok_soft_ops.c) --------------------------------------------- */

/* Sign `tbs` as the card would for `map`; the signature is exactly `sig_len` bytes. */
CK_RV tok_soft_sign(EVP_PKEY *key, const tok_sign_map *map, const uint8_t *tbs, size_t len,
                    uint8_t *sig, size_t sig_len);
/* RSA decryption (PKCS#1 v1.5 or OAEP); the plaintext is appended to `out`. */
CK_RV tok_soft_rsa_decrypt(EVP_PKEY *key, const tok_rsa_crypt_map *map, const uint8_t *in,
                           size_t len, sks_writer *out);
/*
 * ECDH with a software EC private key object and a peer public key (an
 * uncompressed point or a SubjectPublicKeyInfo): Z, the x coordinate, into
 * z (cap bytes). CKR_MECHANISM_PARAM_INVALID for a peer key that is not on
 * the key's curve.
 */
CK_RV tok_soft_ecdh(const tok_attrs *key, sks_view peer, uint8_t *z, size_t cap, size_t *zlen);
/*
 * AES-256-GCM with a 12-byte IV, as key injection and the issuer token's
 * files use it: seal writes len + 16 bytes (ciphertext | tag) to out; open
 * takes ciphertext | tag (len >= 16) and writes len - 16 bytes, or returns
 * CKR_ENCRYPTED_DATA_INVALID when the tag does not verify.
 */
#define TOK_GCM_IV_LEN  12
#define TOK_GCM_TAG_LEN 16
CK_RV tok_soft_gcm_seal(const uint8_t key[32], const uint8_t iv[TOK_GCM_IV_LEN], const uint8_t *aad,
                        size_t aad_len, const uint8_t *in, size_t len, uint8_t *out);
CK_RV tok_soft_gcm_open(const uint8_t key[32], const uint8_t iv[TOK_GCM_IV_LEN], const uint8_t *aad,
                        size_t aad_len, const uint8_t *in, size_t len, uint8_t *out);

/* ---- key management (tok_soft_gen.c, tok_soft_wrap.c) --------------------------- */

/*
 * May an object made from this template be stored now (checked before any
 * work is done)? A token object needs tok_issuer_write_allowed(), a private
 * one (CKA_PRIVATE, default `private_default`) the user logged in.
 */
CK_RV tok_soft_may_store(const tok_session *s, const tok_slot *slot, const CK_ATTRIBUTE *t,
                         CK_ULONG n, CK_BBOOL private_default);
/*
 * The attributes of a new key object made from `pk` for operation `op`:
 * its template, the key's own (the public ones for CKO_PUBLIC_KEY, all of
 * them for CKO_PRIVATE_KEY), CKA_LOCAL and CKA_KEY_GEN_MECHANISM (gen_mech
 * when generated), and the standard's defaults.
 */
CK_RV tok_soft_key_object(EVP_PKEY *pk, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, const CK_ATTRIBUTE *t,
                          CK_ULONG n, enum tok_op op, CK_MECHANISM_TYPE gen_mech, tok_attrs *a);

CK_RV tok_soft_generate_key_pair(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                                 const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv,
                                 CK_ULONG npriv, CK_OBJECT_HANDLE *pub_out,
                                 CK_OBJECT_HANDLE *priv_out);
CK_RV tok_soft_create_private_key(tok_session *s, tok_slot *slot, const CK_ATTRIBUTE *tmpl,
                                  CK_ULONG n, CK_OBJECT_HANDLE *out);
/*
 * The issuer token's C_GenerateKey, C_WrapKey, C_UnwrapKey and C_DeriveKey
 * for the standard mechanisms (p11_keys.c sends the vendor ones to
 * tok_vendor.h first): secret keys may be token objects here, and private
 * keys are wrapped and unwrapped as PKCS#8 under CKM_AES_KEY_WRAP(_PAD).
 */
CK_RV tok_soft_generate_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                            const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV tok_soft_wrap_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                        CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, uint8_t *out,
                        CK_ULONG *out_len);
CK_RV tok_soft_unwrap_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                          CK_OBJECT_HANDLE unwrapping_key, const uint8_t *wrapped,
                          CK_ULONG wrapped_len, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                          CK_OBJECT_HANDLE *out);
CK_RV tok_soft_derive_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                          CK_OBJECT_HANDLE base, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                          CK_OBJECT_HANDLE *out);

/* ---- per-object cache for injection (tok_soft_cache.c) ---------------------------- */

/* A software private key object (K2) as an injection blob carries it. */
typedef struct {
    const uint8_t *der; /* its PKCS#8 PrivateKeyInfo DER; NULL when alg is 0 */
    size_t len;
    uint8_t alg; /* SKS_KEYALG_*, 0: a key the card does not take */
} tok_soft_private_view;
/* A public key object (K1) as the session-key mechanisms use it. */
typedef struct {
    EVP_PKEY *key;         /* the module's library context */
    uint8_t spki_hash[32]; /* SHA-256 of its SubjectPublicKeyInfo DER (i2d_PUBKEY) */
    CK_ULONG bits;
    uint8_t alg; /* SKS_KEYALG_*, 0: none the card has */
    size_t size; /* EVP_PKEY_get_size */
} tok_soft_public_view;
/*
 * The cached view of an object, made on first use and checked against the
 * object's attributes on every use (remade when they changed). What a view
 * points to belongs to the cache: valid until the next call into the
 * cache or the object's change; never freed by the caller.
 * tok_soft_cache_private: CKR_KEY_NOT_WRAPPABLE when the object is not a
 * software private key. tok_soft_cache_public: CKR_KEY_HANDLE_INVALID when
 * the object holds no public key.
 */
CK_RV tok_soft_cache_private(const tok_session_object *o, tok_soft_private_view *out);
CK_RV tok_soft_cache_public(const tok_session_object *o, tok_soft_public_view *out);
/*
 * RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label) of `len` bytes under the
 * RSA public key object `o`, with a context kept with its cache entry;
 * *out_len in: the room at out (at least the modulus size), out: the length.
 */
CK_RV tok_soft_cache_oaep(const tok_session_object *o, const uint8_t *in, size_t len, uint8_t *out,
                          size_t *out_len);
/*
 * Drop (PKCS#8 cleansed) what is cached for an object: it is going away
 * or its attributes were replaced.
 */
void tok_soft_cache_forget(const tok_session_object *o);

#endif
