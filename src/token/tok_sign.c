/*
 * tok_sign.c - signatures and their verification.
 *
 * Signing is hash-then-sign: the module hashes the data (the CKM_SHA*_...
 * mechanisms) and the card signs the hash with signHashedData, one card
 * call per signature; CKM_RSA_PKCS, CKM_RSA_PKCS_PSS and CKM_ECDSA hand the
 * caller's DigestInfo or hash to the card as it is. ECDSA signatures come
 * back as r | s, as PKCS#11 wants them. Verification runs in the module with
 * OpenSSL and the key's public key.
 *
 * The signing path allocates nothing after the first operation of a
 * session: the digest context and the card's answer buffer are reused.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "protocol/sks_crypto.h"
#include "token/tok_crypto.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

#define MAX_HASH      64   /* SHA-512 */
#define ECDSA_RAW_MAX 1024 /* CKM_ECDSA input: a hash value (longer ones are truncated) */
#define EC_SIG_MAX    132  /* r | s up to P-521 */

/* The largest input a mechanism without module hashing accepts for a key. */
static size_t raw_max(const tok_op_state *st)
{
    switch (st->sign.alg) {
    case SKS_SIGN_RSA_PKCS1:
        return st->block_len > 11 ? st->block_len - 11 : 0;
    case SKS_SIGN_RSA_PSS:
        return tok_hash_len(st->sign.hash);
    default:
        return ECDSA_RAW_MAX;
    }
}

/* Is `len` an acceptable input for a mechanism without module hashing? */
static CK_RV raw_len_check(const tok_op_state *st, size_t len)
{
    if (len == 0 || len > raw_max(st))
        return CKR_DATA_LEN_RANGE;
    if (st->sign.alg == SKS_SIGN_RSA_PSS && len != tok_hash_len(st->sign.hash))
        return CKR_DATA_LEN_RANGE;
    return CKR_OK;
}

/* The signature size of a key: the modulus size, or twice the order size. */
static size_t signature_len(uint8_t alg, CK_ULONG bits)
{
    size_t bytes = ((size_t)bits + 7) / 8;
    return alg == SKS_SIGN_ECDSA ? 2 * bytes : bytes;
}

/* PSS: the salt must fit the key (RFC 8017 9.1.1: emLen >= hLen + sLen + 2). */
static CK_RV pss_fits(const tok_sign_map *map, CK_ULONG bits)
{
    if (map->alg != SKS_SIGN_RSA_PSS)
        return CKR_OK;
    size_t em_len = ((size_t)bits - 1 + 7) / 8;
    return tok_hash_len(map->hash) + map->salt + 2 <= em_len ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
}

/* Start the module's hash of the data, reusing the session's digest context. */
static CK_RV hash_start(tok_operation *op, uint8_t hash)
{
    if (op->md == NULL && (op->md = EVP_MD_CTX_new()) == NULL)
        return CKR_HOST_MEMORY;
    return EVP_DigestInit_ex2(op->md, tok_hash_md(hash), NULL) == 1 ? CKR_OK : CKR_FUNCTION_FAILED;
}

/* The bytes to sign or verify: the finished module hash, or the collected/given data. */
static CK_RV tbs_of(tok_operation *op, const tok_op_state *st, const uint8_t *data, size_t len,
                    uint8_t hash[MAX_HASH], const uint8_t **tbs, size_t *tbs_len)
{
    if (st->sign.module_hash != SKS_HASH_NONE) {
        unsigned int n = 0;
        if ((len > 0 && EVP_DigestUpdate(op->md, data, len) != 1) ||
            EVP_DigestFinal_ex(op->md, hash, &n) != 1)
            return CKR_FUNCTION_FAILED;
        *tbs = hash;
        *tbs_len = n;
        return CKR_OK;
    }
    CK_RV rv = raw_len_check(st, len);
    *tbs = data;
    *tbs_len = len;
    return rv;
}

/* Add data to a multi-part operation. */
static CK_RV update(tok_operation *op, const uint8_t *data, CK_ULONG len)
{
    tok_op_state *st = op->extra;
    op->multi = 1;
    if (st->sign.module_hash != SKS_HASH_NONE)
        return len == 0 || EVP_DigestUpdate(op->md, data, len) == 1 ? CKR_OK : CKR_FUNCTION_FAILED;
    return tok_op_collect(op, data, len, raw_max(st));
}

/* ---- signing on the card --------------------------------------------------- */

CK_RV tok_sign_init(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    tok_operation *op = &s->sign;
    const tok_mech *d;
    tok_sign_map map;
    tok_object obj;
    tok_op_state *st;

    if (op->kind != TOK_OPER_NONE)
        return CKR_OPERATION_ACTIVE;
    CK_RV rv = tok_mech_check(m, CKF_SIGN, &d);
    if (rv == CKR_OK)
        rv = tok_mech_sign_map(m, &map);
    if (rv == CKR_OK)
        rv = tok_op_key(s, key, CKO_PRIVATE_KEY, d->key, CKA_SIGN, &obj);
    /* A software key of the issuer token (no-card mode) signs in the module (tok_soft.h). */
    EVP_PKEY *soft =
        rv == CKR_OK && obj.where == TOK_OBJ_SESSION ? tok_soft_private_key(obj.attrs) : NULL;
    if (rv == CKR_OK && soft == NULL && (obj.where != TOK_OBJ_CARD_KEY || obj.key == NULL))
        rv = CKR_KEY_HANDLE_INVALID;
    CK_ULONG bits = rv == CKR_OK ? tok_key_bits(&obj) : 0;
    if (rv == CKR_OK)
        rv = tok_key_size_check(d, bits);
    if (rv == CKR_OK)
        rv = pss_fits(&map, bits);
    if (rv == CKR_OK)
        rv = tok_op_begin(op, TOK_OPER_SIGN, m->mechanism, key, &st);
    if (rv != CKR_OK) {
        EVP_PKEY_free(soft);
        return rv;
    }
    st->card = obj.card; /* NULL for a software key, which st->pub then holds */
    st->card_key = soft == NULL ? obj.key->handle : 0;
    op->auth_pending = soft == NULL ? obj.key->always_authenticate : 0;
    st->pub = soft;
    st->sign = map;
    st->block_len = signature_len(map.alg, bits);
    if (map.module_hash != SKS_HASH_NONE && (rv = hash_start(op, map.module_hash)) != CKR_OK)
        tok_op_end(op);
    return rv;
}

/* signHashedData of `tbs`; the signature (block_len bytes) goes to `sig`. */
static CK_RV card_sign(tok_op_state *st, const uint8_t *tbs, size_t len, uint8_t *sig)
{
    if (st->card == NULL) /* a software key of the issuer token (no-card mode) */
        return tok_soft_sign(st->pub, &st->sign, tbs, len, sig, st->block_len);
    sks_req_sign req = {
        .key_handle = st->card_key,
        .algorithm = st->sign.alg,
        .hash = st->sign.hash,
        .salt_length = st->sign.salt,
        .data = {tbs, len},
    };
    sks_resp_sign resp;
    uint8_t status = SKS_OK;
    st->answer.len = 0;
    CK_RV rv =
        tok_card_call(st->card, SKS_M_SIGN_HASHED_DATA, &req, &resp, &st->answer, &status, NULL, 0);
    if (rv != CKR_OK)
        return rv;
    if (status != SKS_OK)
        return tok_status_to_rv(status, SKS_M_SIGN_HASHED_DATA);
    if (resp.signature.len != st->block_len)
        return CKR_DEVICE_ERROR;
    memcpy(sig, resp.signature.ptr, resp.signature.len);
    return CKR_OK;
}

/* Sign (data, len) after an earlier Update phase or not, into sig. */
static CK_RV sign_now(tok_operation *op, const uint8_t *data, size_t len, uint8_t *sig)
{
    tok_op_state *st = op->extra;
    uint8_t hash[MAX_HASH];
    const uint8_t *tbs;
    size_t tbs_len;
    /* An always-authenticate key is used only after its context login (C_Login). */
    CK_RV rv = op->auth_pending ? CKR_USER_NOT_LOGGED_IN : CKR_OK;
    if (rv == CKR_OK)
        rv = tbs_of(op, st, data, len, hash, &tbs, &tbs_len);
    if (rv == CKR_OK)
        rv = card_sign(st, tbs, tbs_len, sig);
    return rv;
}

CK_RV tok_sign(tok_session *s, const uint8_t *data, CK_ULONG len, uint8_t *sig, CK_ULONG *siglen)
{
    tok_operation *op = &s->sign;
    int query = 0;
    CK_RV rv = tok_op_active(op, TOK_OPER_SIGN);
    if (rv != CKR_OK)
        return rv;
    const tok_op_state *st = op->extra;
    if (op->multi)
        return tok_op_done(op, CKR_OPERATION_ACTIVE, 0);
    rv = tok_out_check(sig, siglen, st->block_len, &query);
    if (rv == CKR_OK && !query)
        rv = sign_now(op, data, len, sig);
    return tok_op_done(op, rv, query);
}

CK_RV tok_sign_update(tok_session *s, const uint8_t *data, CK_ULONG len)
{
    tok_operation *op = &s->sign;
    CK_RV rv = tok_op_active(op, TOK_OPER_SIGN);
    if (rv != CKR_OK)
        return rv;
    rv = update(op, data, len);
    return rv == CKR_OK ? rv : tok_op_done(op, rv, 0);
}

CK_RV tok_sign_final(tok_session *s, uint8_t *sig, CK_ULONG *siglen)
{
    tok_operation *op = &s->sign;
    int query = 0;
    CK_RV rv = tok_op_active(op, TOK_OPER_SIGN);
    if (rv != CKR_OK)
        return rv;
    const tok_op_state *st = op->extra;
    rv = tok_out_check(sig, siglen, st->block_len, &query);
    if (rv == CKR_OK && !query) {
        if (st->sign.module_hash != SKS_HASH_NONE)
            rv = sign_now(op, NULL, 0, sig);
        else
            rv = sign_now(op, op->buffered.buf, op->buffered.len, sig);
    }
    return tok_op_done(op, rv, query);
}

/* ---- verification in the module ------------------------------------------- */

int tok_sign_ctx_params(EVP_PKEY_CTX *ctx, const tok_sign_map *map)
{
    if (map->alg == SKS_SIGN_ECDSA)
        return 1;
    const EVP_MD *md = tok_hash_md(map->hash);
    int pss = map->alg == SKS_SIGN_RSA_PSS;
    return EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) ==
               1 &&
           (md == NULL || EVP_PKEY_CTX_set_signature_md(ctx, md) == 1) &&
           (!pss || (md != NULL && EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
                     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)map->salt) == 1));
}

/* A verification context for the mechanism's padding and hash. */
static CK_RV verify_ctx(tok_op_state *st)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(tok_ossl_ctx(), st->pub, NULL);
    int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 && tok_sign_ctx_params(ctx, &st->sign);
    if (!ok) {
        EVP_PKEY_CTX_free(ctx);
        return CKR_FUNCTION_FAILED;
    }
    st->pctx = ctx;
    return CKR_OK;
}

CK_RV tok_verify_init(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    tok_operation *op = &s->verify;
    const tok_mech *d;
    tok_sign_map map;
    tok_object obj;
    tok_op_state *st;

    if (op->kind != TOK_OPER_NONE)
        return CKR_OPERATION_ACTIVE;
    CK_RV rv = tok_mech_check(m, CKF_VERIFY, &d);
    if (rv == CKR_OK)
        rv = tok_mech_sign_map(m, &map);
    if (rv == CKR_OK)
        rv = tok_op_key(s, key, CKO_PUBLIC_KEY, d->key, CKA_VERIFY, &obj);
    if (rv != CKR_OK)
        return rv;
    EVP_PKEY *pub = NULL;
    if (obj.where == TOK_OBJ_CARD_KEY && obj.key != NULL && obj.key->public_key != NULL) {
        if (EVP_PKEY_up_ref(obj.key->public_key) == 1)
            pub = obj.key->public_key;
    } else {
        pub = tok_pkey_from_attrs(obj.attrs);
    }
    if (pub == NULL)
        return CKR_KEY_HANDLE_INVALID;
    CK_ULONG bits = (CK_ULONG)EVP_PKEY_get_bits(pub);
    rv = tok_key_size_check(d, bits);
    if (rv == CKR_OK)
        rv = pss_fits(&map, bits);
    if (rv == CKR_OK)
        rv = tok_op_begin(op, TOK_OPER_VERIFY, m->mechanism, key, &st);
    if (rv != CKR_OK) {
        EVP_PKEY_free(pub);
        return rv;
    }
    st->pub = pub;
    st->sign = map;
    st->block_len = signature_len(map.alg, bits);
    rv = verify_ctx(st);
    if (rv == CKR_OK && map.module_hash != SKS_HASH_NONE)
        rv = hash_start(op, map.module_hash);
    if (rv != CKR_OK)
        tok_op_end(op);
    return rv;
}

/* r | s (each n bytes) to a DER ECDSA-Sig-Value. */
static int ecdsa_fixed_to_der(const uint8_t *sig, size_t len, uint8_t *der, size_t *der_len)
{
    size_t n = len / 2;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)n, NULL), *sv = BN_bin2bn(sig + n, (int)n, NULL);
    int ok = es != NULL && r != NULL && sv != NULL && ECDSA_SIG_set0(es, r, sv) == 1;
    if (!ok) {
        BN_free(r);
        BN_free(sv);
    } else {
        unsigned char *p = der;
        int m = i2d_ECDSA_SIG(es, NULL);
        ok = m > 0 && (size_t)m <= *der_len && i2d_ECDSA_SIG(es, &p) == m;
        *der_len = ok ? (size_t)m : 0;
    }
    ECDSA_SIG_free(es);
    return ok;
}

/* Check `sig` over (data, len) after any Update phase. */
static CK_RV verify_now(tok_operation *op, const uint8_t *data, size_t len, const uint8_t *sig,
                        size_t siglen)
{
    tok_op_state *st = op->extra;
    uint8_t hash[MAX_HASH], der[EC_SIG_MAX + 16];
    const uint8_t *tbs;
    size_t tbs_len;

    CK_RV rv = tbs_of(op, st, data, len, hash, &tbs, &tbs_len);
    if (rv != CKR_OK)
        return rv;
    if (siglen != st->block_len)
        return CKR_SIGNATURE_LEN_RANGE;
    if (st->sign.alg == SKS_SIGN_ECDSA) {
        size_t der_len = sizeof(der);
        if (!ecdsa_fixed_to_der(sig, siglen, der, &der_len))
            return CKR_SIGNATURE_INVALID;
        sig = der;
        siglen = der_len;
    }
    return EVP_PKEY_verify(st->pctx, sig, siglen, tbs, tbs_len) == 1 ? CKR_OK
                                                                     : CKR_SIGNATURE_INVALID;
}

CK_RV tok_verify(tok_session *s, const uint8_t *data, CK_ULONG len, const uint8_t *sig,
                 CK_ULONG siglen)
{
    tok_operation *op = &s->verify;
    CK_RV rv = tok_op_active(op, TOK_OPER_VERIFY);
    if (rv != CKR_OK)
        return rv;
    rv = op->multi ? CKR_OPERATION_ACTIVE : verify_now(op, data, len, sig, siglen);
    return tok_op_done(op, rv, 0);
}

CK_RV tok_verify_update(tok_session *s, const uint8_t *data, CK_ULONG len)
{
    tok_operation *op = &s->verify;
    CK_RV rv = tok_op_active(op, TOK_OPER_VERIFY);
    if (rv != CKR_OK)
        return rv;
    rv = update(op, data, len);
    return rv == CKR_OK ? rv : tok_op_done(op, rv, 0);
}

CK_RV tok_verify_final(tok_session *s, const uint8_t *sig, CK_ULONG siglen)
{
    tok_operation *op = &s->verify;
    CK_RV rv = tok_op_active(op, TOK_OPER_VERIFY);
    if (rv != CKR_OK)
        return rv;
    const tok_op_state *st = op->extra;
    if (st->sign.module_hash != SKS_HASH_NONE)
        rv = verify_now(op, NULL, 0, sig, siglen);
    else
        rv = verify_now(op, op->buffered.buf, op->buffered.len, sig, siglen);
    return tok_op_done(op, rv, 0);
}
