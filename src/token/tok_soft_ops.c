/*
 * tok_soft_ops.c - what the module does with a software private key of the
 * issuer token (tok_soft.h): signatures exactly as a card key gives them
 * (PKCS#1 v1.5 with or without DigestInfo, PSS with MGF1 of the same hash,
 * ECDSA as r | s), RSA decryption (PKCS#1 v1.5, OAEP), ECDH's shared secret
 * Z, and the AES-256-GCM sealing that key injection and the issuer token's
 * files share. Everything runs in the module's library context.
 */
#include <limits.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "protocol/sks_keys.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

#define RSA_MAX_BYTES 512 /* RSA-4096 */
#define EC_DER_MAX    160 /* a DER ECDSA-Sig-Value up to P-521 */

/* A signing context for the mechanism's padding and hash. NULL on failure. */
static EVP_PKEY_CTX *sign_ctx(EVP_PKEY *key, const tok_sign_map *map)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(tok_ossl_ctx(), key, NULL);
    int ok = ctx != NULL && EVP_PKEY_sign_init(ctx) == 1 && tok_sign_ctx_params(ctx, map);
    if (!ok) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* A DER ECDSA-Sig-Value to r | s, each half of `sig_len` bytes. */
static CK_RV ecdsa_der_to_fixed(const uint8_t *der, size_t der_len, uint8_t *sig, size_t sig_len)
{
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    const BIGNUM *r = NULL, *s = NULL;
    size_t half = sig_len / 2;
    if (es != NULL)
        ECDSA_SIG_get0(es, &r, &s);
    int ok = es != NULL && p == der + der_len && BN_bn2binpad(r, sig, (int)half) == (int)half &&
             BN_bn2binpad(s, sig + half, (int)half) == (int)half;
    ECDSA_SIG_free(es);
    return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV tok_soft_sign(EVP_PKEY *key, const tok_sign_map *map, const uint8_t *tbs, size_t len,
                    uint8_t *sig, size_t sig_len)
{
    EVP_PKEY_CTX *ctx = sign_ctx(key, map);
    if (ctx == NULL)
        return CKR_FUNCTION_FAILED;
    CK_RV rv = CKR_FUNCTION_FAILED;
    if (map->alg == SKS_SIGN_ECDSA) {
        uint8_t der[EC_DER_MAX];
        size_t der_len = sizeof(der);
        if (EVP_PKEY_sign(ctx, der, &der_len, tbs, len) == 1)
            rv = ecdsa_der_to_fixed(der, der_len, sig, sig_len);
    } else {
        size_t n = sig_len;
        if (EVP_PKEY_sign(ctx, sig, &n, tbs, len) == 1 && n == sig_len)
            rv = CKR_OK;
    }
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

CK_RV tok_soft_rsa_decrypt(EVP_PKEY *key, const tok_rsa_crypt_map *map, const uint8_t *in,
                           size_t len, sks_writer *out)
{
    uint8_t plain[RSA_MAX_BYTES];
    size_t plain_len = sizeof(plain);
    if (!EVP_PKEY_is_a(key, "RSA") || (size_t)EVP_PKEY_get_size(key) > sizeof(plain))
        return CKR_KEY_TYPE_INCONSISTENT;
    if (len != (size_t)EVP_PKEY_get_size(key))
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(tok_ossl_ctx(), key, NULL);
    CK_RV rv = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1 && tok_rsa_padding(ctx, map)
                   ? CKR_OK
                   : CKR_FUNCTION_FAILED;
    if (rv == CKR_OK && EVP_PKEY_decrypt(ctx, plain, &plain_len, in, len) != 1)
        rv = CKR_ENCRYPTED_DATA_INVALID;
    EVP_PKEY_CTX_free(ctx);
    if (rv == CKR_OK) {
        sks_put_raw(out, plain, plain_len);
        if (out->failed)
            rv = CKR_HOST_MEMORY;
    }
    OPENSSL_cleanse(plain, sizeof(plain));
    return rv;
}

CK_RV tok_soft_ecdh(const tok_attrs *key, sks_view peer, uint8_t *z, size_t cap, size_t *zlen)
{
    const tok_attr *params = tok_attrs_find(key, CKA_EC_PARAMS);
    const char *group = params != NULL ? tok_ec_group_name(params->value, params->len) : NULL;
    if (group == NULL)
        return CKR_KEY_HANDLE_INVALID;
    if (peer.ptr == NULL || peer.len == 0)
        return CKR_MECHANISM_PARAM_INVALID;
    EVP_PKEY *pub = peer.ptr[0] == 0x30
                        ? tok_ossl_spki(peer.ptr, peer.len)
                        : sks_ec_point_key(tok_ossl_ctx(), group, peer.ptr, peer.len);
    if (pub == NULL)
        return CKR_MECHANISM_PARAM_INVALID;
    EVP_PKEY *priv = tok_soft_private_key(key);
    if (priv == NULL) {
        EVP_PKEY_free(pub);
        return CKR_KEY_HANDLE_INVALID;
    }
    /* Setting the peer checks the point is on the key's curve. */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(tok_ossl_ctx(), priv, NULL);
    CK_RV rv = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 ? CKR_OK : CKR_FUNCTION_FAILED;
    if (rv == CKR_OK && EVP_PKEY_derive_set_peer(ctx, pub) != 1)
        rv = CKR_MECHANISM_PARAM_INVALID;
    size_t n = cap;
    if (rv == CKR_OK && EVP_PKEY_derive(ctx, z, &n) != 1)
        rv = CKR_FUNCTION_FAILED;
    *zlen = rv == CKR_OK ? n : 0;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    return rv;
}

/* One AES-256-GCM pass; the tag is written (seal) or checked (open). */
static CK_RV gcm(const uint8_t key[32], const uint8_t iv[TOK_GCM_IV_LEN], const uint8_t *aad,
                 size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag,
                 int seal)
{
    const EVP_CIPHER *cipher = tok_ossl_cipher("AES-256-GCM");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    if (len > (size_t)INT_MAX || aad_len > (size_t)INT_MAX)
        return CKR_DATA_LEN_RANGE;
    /* The default IV length of GCM is 12 bytes. */
    int ok = cipher != NULL && ctx != NULL &&
             EVP_CipherInit_ex2(ctx, cipher, key, iv, seal, NULL) == 1 &&
             (aad_len == 0 || EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1) &&
             EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1 &&
             (seal || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TOK_GCM_TAG_LEN, tag) == 1);
    if (ok && EVP_CipherFinal_ex(ctx, out + n, &fin) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        OPENSSL_cleanse(out, len);
        return seal ? CKR_FUNCTION_FAILED : CKR_ENCRYPTED_DATA_INVALID;
    }
    if (ok && seal)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TOK_GCM_TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV tok_soft_gcm_seal(const uint8_t key[32], const uint8_t iv[TOK_GCM_IV_LEN], const uint8_t *aad,
                        size_t aad_len, const uint8_t *in, size_t len, uint8_t *out)
{
    return gcm(key, iv, aad, aad_len, in, len, out, out + len, 1);
}

CK_RV tok_soft_gcm_open(const uint8_t key[32], const uint8_t iv[TOK_GCM_IV_LEN], const uint8_t *aad,
                        size_t aad_len, const uint8_t *in, size_t len, uint8_t *out)
{
    if (len < TOK_GCM_TAG_LEN)
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    uint8_t tag[TOK_GCM_TAG_LEN];
    memcpy(tag, in + len - TOK_GCM_TAG_LEN, TOK_GCM_TAG_LEN);
    return gcm(key, iv, aad, aad_len, in, len - TOK_GCM_TAG_LEN, out, tag, 0);
}
