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
CK_RV tok_import_private_key(tok_session *s, tok_slot *slot, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                             CK_OBJECT_HANDLE *out);
/*
 * The private key of a C_CreateObject template (RSA: the eight components;
 * EC P-256/P-384: CKA_EC_PARAMS and CKA_VALUE), in the module's context.
 */
CK_RV tok_private_key_from_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_KEY_TYPE kt,
                                    EVP_PKEY **out);

/* ---- mechanism table (tok_mech.c) ---------------------------------------- */

/* The kind of key a mechanism works with. */
enum tok_mech_key {
    TOK_MK_NONE, /* digests */
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
const EVP_MD *tok_hash_md(uint8_t sks_hash);   /* NULL for SKS_HASH_NONE or unknown */
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
/*
 * Give a signing or verification context, after its init, the RSA padding
 * and hashes of a sign map (nothing to do for ECDSA). 1, or 0 on failure.
 * tok_sign.c; the module's verification and the software keys' signing.
 */
int tok_sign_ctx_params(EVP_PKEY_CTX *ctx, const tok_sign_map *map);

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
/*
 * A C_GenerateKeyPair mechanism (CKM_RSA_PKCS_KEY_PAIR_GEN or
 * CKM_EC_KEY_PAIR_GEN): offered, without parameter; *kt the key type it
 * makes. For a card's and for a software key alike.
 */
CK_RV tok_mech_key_pair_gen(const CK_MECHANISM *m, const tok_mech **out, CK_KEY_TYPE *kt);

/* The enum tok_mech_key of a PKCS#11 key type. */
uint8_t tok_mech_key_of(CK_KEY_TYPE key_type);

/* ---- operation state (tok_ops.c) ------------------------------------------ */

/*
 * What an active operation keeps besides tok_operation's own fields; hung on
 * tok_operation.extra, allocated by the first operation of its kind in a
 * session and reused by the next ones (the signing path allocates nothing).
 */
typedef struct {
    /* The key. */
    tok_card *card;     /* card keys: their card */
    uint32_t card_key;  /* card keys: the card's key handle */
    size_t block_len;   /* RSA modulus bytes, or 2 x EC order bytes (signature size) */
    EVP_PKEY *pub;      /* verify, encrypt: a reference of its own */
    EVP_PKEY_CTX *pctx; /* verify, encrypt: set up at Init */
    tok_sign_map sign;
    tok_rsa_crypt_map crypt; /* label points into `params` */
    /* AES. */
    const EVP_CIPHER *cipher;
    uint8_t aes_key[32];
    size_t aes_key_len;
    int started;         /* op->cipher holds the running multi-part state */
    uint8_t partial[16]; /* ECB/CBC: bytes waiting for a full block */
    size_t partial_len;
    size_t tag_len;                          /* GCM */
    size_t iv_off, iv_len, aad_off, aad_len; /* GCM/CBC: into `params` */
    /* Storage. */
    sks_writer params;       /* deep copies of the mechanism's pointed-to data */
    sks_writer answer;       /* card answers (reused) */
    sks_writer result;       /* an output kept for the call after CKR_BUFFER_TOO_SMALL */
    sks_writer result_input; /* the input that produced `result` */
} tok_op_state;

/* Start an operation: CKR_OPERATION_ACTIVE if one is active; *st is reset state. */
CK_RV tok_op_begin(tok_operation *op, enum tok_op_kind kind, CK_MECHANISM_TYPE mech,
                   CK_OBJECT_HANDLE key, tok_op_state **st);
/* CKR_OPERATION_NOT_INITIALIZED unless an operation of `kind` is active. */
CK_RV tok_op_active(const tok_operation *op, enum tok_op_kind kind);
/* End an operation, zeroize its secrets, keep its allocations for the next one. */
void tok_op_end(tok_operation *op);
/*
 * The end of a call that produces output: the operation stays active after
 * CKR_BUFFER_TOO_SMALL and after a successful length query, and ends
 * otherwise. Returns rv.
 */
CK_RV tok_op_done(tok_operation *op, CK_RV rv, int length_query);
/*
 * The two-call convention: sets *out_len = need; CKR_OK with *query = 1 when
 * out is NULL, CKR_BUFFER_TOO_SMALL when *out_len was smaller, CKR_OK with
 * *query = 0 when the output fits.
 */
CK_RV tok_out_check(const uint8_t *out, CK_ULONG *out_len, size_t need, int *query);
/* Append `data` to the operation's collected input (single-part-only mechanisms). */
CK_RV tok_op_collect(tok_operation *op, const uint8_t *data, CK_ULONG len, size_t max);

/*
 * Resolve the key of an operation: a key object of class `cls`, of the kind
 * of key `mech_key`, with the attribute `usage` true. CKR_KEY_HANDLE_INVALID,
 * CKR_KEY_TYPE_INCONSISTENT, CKR_KEY_FUNCTION_NOT_PERMITTED.
 */
CK_RV tok_op_key(tok_session *s, CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls, uint8_t mech_key,
                 CK_ATTRIBUTE_TYPE usage, tok_object *out);
/* The size in bits of an RSA or EC key object (modulus / order), 0 if unknown. */
CK_ULONG tok_key_bits(const tok_object *key);
/* Is a key of `bits` within the mechanism's range? CKR_KEY_SIZE_RANGE if not. */
CK_RV tok_key_size_check(const tok_mech *m, CK_ULONG bits);

/* ---- signatures (tok_sign.c) ------------------------------------------------ */
CK_RV tok_sign_init(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
CK_RV tok_sign(tok_session *s, const uint8_t *data, CK_ULONG len, uint8_t *sig, CK_ULONG *siglen);
CK_RV tok_sign_update(tok_session *s, const uint8_t *data, CK_ULONG len);
CK_RV tok_sign_final(tok_session *s, uint8_t *sig, CK_ULONG *siglen);
CK_RV tok_verify_init(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
CK_RV tok_verify(tok_session *s, const uint8_t *data, CK_ULONG len, const uint8_t *sig,
                 CK_ULONG siglen);
CK_RV tok_verify_update(tok_session *s, const uint8_t *data, CK_ULONG len);
CK_RV tok_verify_final(tok_session *s, const uint8_t *sig, CK_ULONG siglen);

/* ---- encryption and decryption (tok_cipher.c: RSA; tok_aes.c: AES) ----------- */
CK_RV tok_encrypt_init(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
CK_RV tok_encrypt(tok_session *s, const uint8_t *in, CK_ULONG len, uint8_t *out, CK_ULONG *out_len);
CK_RV tok_encrypt_update(tok_session *s, const uint8_t *in, CK_ULONG len, uint8_t *out,
                         CK_ULONG *out_len);
CK_RV tok_encrypt_final(tok_session *s, uint8_t *out, CK_ULONG *out_len);
CK_RV tok_decrypt_init(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
CK_RV tok_decrypt(tok_session *s, const uint8_t *in, CK_ULONG len, uint8_t *out, CK_ULONG *out_len);
CK_RV tok_decrypt_update(tok_session *s, const uint8_t *in, CK_ULONG len, uint8_t *out,
                         CK_ULONG *out_len);
CK_RV tok_decrypt_final(tok_session *s, uint8_t *out, CK_ULONG *out_len);

/* RSA (tok_cipher.c), reached through the functions above. */
CK_RV tok_rsa_crypt_init(tok_session *s, tok_operation *op, const CK_MECHANISM *m,
                         CK_OBJECT_HANDLE key, int encrypt);
CK_RV tok_rsa_crypt(tok_operation *op, const uint8_t *in, size_t len, uint8_t *out,
                    CK_ULONG *out_len);
/*
 * One RSA decryption on the card of a card key (also C_UnwrapKey):
 * plaintext appended to `out`.
 */
CK_RV tok_rsa_card_decrypt(tok_card *card, uint32_t card_key, const tok_rsa_crypt_map *map,
                           const uint8_t *in, size_t len, sks_writer *answer, sks_writer *out);
/* One software RSA encryption with a public key (also C_WrapKey); out holds the block size. */
CK_RV tok_rsa_public_encrypt(EVP_PKEY *pub, const tok_rsa_crypt_map *map, const uint8_t *in,
                             size_t len, uint8_t *out, size_t *out_len);
/* Configure an RSA encryption/decryption context for `map` (PKCS#1 v1.5 or OAEP). 1 or 0. */
int tok_rsa_padding(EVP_PKEY_CTX *ctx, const tok_rsa_crypt_map *map);

/* AES (tok_aes.c), reached through the functions above. */
CK_RV tok_aes_init(tok_session *s, tok_operation *op, const CK_MECHANISM *m, CK_OBJECT_HANDLE key,
                   int encrypt);
CK_RV tok_aes_single(tok_operation *op, const uint8_t *in, size_t len, uint8_t *out,
                     CK_ULONG *out_len, int encrypt);
CK_RV tok_aes_update(tok_operation *op, const uint8_t *in, size_t len, uint8_t *out,
                     CK_ULONG *out_len, int encrypt);
CK_RV tok_aes_final(tok_operation *op, uint8_t *out, CK_ULONG *out_len, int encrypt);
/* The AES-ECB/CBC/GCM cipher for a key length, or NULL. */
const EVP_CIPHER *tok_aes_cipher(CK_MECHANISM_TYPE mech, size_t key_len);

/* ---- digests (tok_digest.c) --------------------------------------------------- */
CK_RV tok_digest_init(tok_session *s, const CK_MECHANISM *m);
CK_RV tok_digest(tok_session *s, const uint8_t *data, CK_ULONG len, uint8_t *out,
                 CK_ULONG *out_len);
CK_RV tok_digest_update(tok_session *s, const uint8_t *data, CK_ULONG len);
CK_RV tok_digest_key(tok_session *s, CK_OBJECT_HANDLE key);
CK_RV tok_digest_final(tok_session *s, uint8_t *out, CK_ULONG *out_len);

/* ---- keys (tok_secret.c, tok_keypair.c, tok_derive.c) ------------------------ */
CK_RV tok_generate_secret(tok_session *s, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                          CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV tok_wrap_key(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE wrapping_key,
                   CK_OBJECT_HANDLE key, uint8_t *out, CK_ULONG *out_len);
CK_RV tok_unwrap_key(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE unwrapping_key,
                     const uint8_t *wrapped, CK_ULONG wrapped_len, const CK_ATTRIBUTE *tmpl,
                     CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV tok_derive_key(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE base,
                     const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV tok_generate_key_pair(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                            const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv,
                            CK_ULONG npriv, CK_OBJECT_HANDLE *pub_out, CK_OBJECT_HANDLE *priv_out);

/* What a private key template asks of a new card key (tok_keypair.c). */
typedef struct {
    uint8_t id[SKS_ID_MAX]; /* CKA_ID, or 16 random bytes when absent */
    size_t id_len;
    const uint8_t *label; /* CKA_LABEL (points into the template), may be NULL */
    size_t label_len;
    uint8_t usage;   /* SKS KeyUsage from CKA_SIGN/DECRYPT/UNWRAP/DERIVE, or the defaults */
    int extractable; /* CKA_EXTRACTABLE true */
} tok_key_template;
/*
 * Read a private key template as C_GenerateKeyPair does: CKA_TOKEN and
 * CKA_SENSITIVE false are CKR_ATTRIBUTE_VALUE_INVALID, a usage the key type
 * cannot serve CKR_TEMPLATE_INCONSISTENT.
 */
CK_RV tok_keypair_template(const CK_ATTRIBUTE *priv, CK_ULONG n, int rsa, tok_key_template *out);

/* How a new session secret key came to be (its CKA_LOCAL, CKA_ALWAYS_SENSITIVE...). */
typedef struct {
    enum tok_op op;             /* TOK_OP_GENERATE, TOK_OP_UNWRAP or TOK_OP_DERIVE */
    CK_MECHANISM_TYPE gen_mech; /* CKA_KEY_GEN_MECHANISM (generated keys) */
    CK_BBOOL base_always_sensitive, base_never_extractable; /* derived keys */
} tok_secret_origin;

/*
 * The key type a template asks for (CKA_KEY_TYPE; `dflt` when absent) and
 * the CKA_VALUE_LEN it gives (0 when absent), after checking CKA_CLASS is
 * CKO_SECRET_KEY and the type is AES or generic secret.
 */
CK_RV tok_secret_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_KEY_TYPE dflt,
                          CK_KEY_TYPE *key_type, CK_ULONG *value_len);
/*
 * AES key wrap (CKM_AES_KEY_WRAP, RFC 3394) or with padding
 * (CKM_AES_KEY_WRAP_PAD, RFC 5649) of `in` under the key value `kek`, or
 * the unwrap (wrap = 0); out holds in_len + 16 bytes (tok_secret.c).
 */
CK_RV tok_aes_key_wrap(const CK_MECHANISM *m, const tok_attr *kek, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t *out_len, int wrap);
/* Create a session secret key object holding `value` from a checked template. */
CK_RV tok_secret_new(tok_session *s, const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_KEY_TYPE key_type,
                     const uint8_t *value, size_t len, const tok_secret_origin *origin,
                     CK_OBJECT_HANDLE *out);

#endif
