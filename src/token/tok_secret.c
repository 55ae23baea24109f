/*
 * tok_secret.c - session secret keys: C_GenerateKey (AES, generic secret),
 * C_WrapKey and C_UnwrapKey of secret keys (AES key wrap RFC 3394 / RFC
 * 5649 in the module; RSA PKCS#1 v1.5 or OAEP with the card decrypting),
 * and the one place that turns a template and a value into a secret key
 * object.
 *
 * Secret keys live in module memory only (the card stores no secret keys):
 * CKA_TOKEN true is refused with CKR_ATTRIBUTE_VALUE_INVALID.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "protocol/sks_crypto.h"
#include "token/tok_crypto.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

#define SECRET_MAX 512 /* bytes of a generic secret */

CK_RV tok_secret_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_KEY_TYPE dflt,
                          CK_KEY_TYPE *key_type, CK_ULONG *value_len)
{
    CK_ULONG cls = CKO_SECRET_KEY, kt = dflt, len = 0;
    CK_BBOOL token = CK_FALSE;
    if (tok_tmpl_find(tmpl, n, CKA_CLASS) != NULL && !tok_tmpl_get_ulong(tmpl, n, CKA_CLASS, &cls))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    if (tok_tmpl_find(tmpl, n, CKA_KEY_TYPE) != NULL &&
        !tok_tmpl_get_ulong(tmpl, n, CKA_KEY_TYPE, &kt))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    if (tok_tmpl_find(tmpl, n, CKA_VALUE_LEN) != NULL &&
        !tok_tmpl_get_ulong(tmpl, n, CKA_VALUE_LEN, &len))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    if (cls != CKO_SECRET_KEY || (kt != CKK_AES && kt != CKK_GENERIC_SECRET))
        return CKR_TEMPLATE_INCONSISTENT;
    if (tok_tmpl_get_bool(tmpl, n, CKA_TOKEN, &token) && token)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    *key_type = kt;
    *value_len = len;
    return CKR_OK;
}

/* Is `len` a valid value length for a key type? */
static int value_len_ok(CK_KEY_TYPE kt, size_t len)
{
    if (kt == CKK_AES)
        return len == 16 || len == 24 || len == 32;
    return len >= 1 && len <= SECRET_MAX;
}

CK_RV tok_secret_new(tok_session *s, const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_KEY_TYPE key_type,
                     const uint8_t *value, size_t len, const tok_secret_origin *origin,
                     CK_OBJECT_HANDLE *out)
{
    tok_attrs a = {0};
    CK_RV rv = tok_rules_check(CKO_SECRET_KEY, key_type, origin->op, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_attrs_merge_tmpl(&a, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(&a, CKA_CLASS, CKO_SECRET_KEY);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(&a, CKA_KEY_TYPE, key_type);
    if (rv == CKR_OK)
        rv = tok_attrs_set(&a, CKA_VALUE, value, (CK_ULONG)len);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(&a, CKA_VALUE_LEN, (CK_ULONG)len);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(&a, CKA_LOCAL, origin->op == TOK_OP_GENERATE);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(&a, CKA_KEY_GEN_MECHANISM,
                                 origin->op == TOK_OP_GENERATE ? origin->gen_mech
                                                               : CK_UNAVAILABLE_INFORMATION);
    if (rv == CKR_OK)
        rv = tok_rules_defaults(CKO_SECRET_KEY, key_type, origin->op, &a);
    if (rv == CKR_OK) {
        /* The standard's rules for the two history attributes. */
        CK_BBOOL sensitive = tok_attrs_bool(&a, CKA_SENSITIVE, CK_FALSE);
        CK_BBOOL extractable = tok_attrs_bool(&a, CKA_EXTRACTABLE, CK_TRUE);
        CK_BBOOL always = sensitive, never = !extractable;
        if (origin->op == TOK_OP_UNWRAP) {
            always = CK_FALSE;
            never = CK_FALSE;
        } else if (origin->op == TOK_OP_DERIVE) {
            always = origin->base_always_sensitive && sensitive;
            never = origin->base_never_extractable && !extractable;
        }
        rv = tok_attrs_set_bool(&a, CKA_ALWAYS_SENSITIVE, always);
        if (rv == CKR_OK)
            rv = tok_attrs_set_bool(&a, CKA_NEVER_EXTRACTABLE, never);
    }
    if (rv == CKR_OK)
        rv = tok_object_add_session(s, &a, out);
    tok_attrs_free(&a);
    return rv;
}

/* ---- C_GenerateKey ----------------------------------------------------------- */

CK_RV tok_generate_secret(tok_session *s, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                          CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const tok_mech *d;
    CK_KEY_TYPE kt;
    CK_ULONG len;
    uint8_t value[SECRET_MAX];

    CK_RV rv = tok_mech_check(m, CKF_GENERATE, &d);
    if (rv != CKR_OK)
        return rv;
    if (m->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_KEY_TYPE want = m->mechanism == CKM_AES_KEY_GEN ? CKK_AES : CKK_GENERIC_SECRET;
    rv = tok_secret_template(tmpl, n, want, &kt, &len);
    if (rv != CKR_OK)
        return rv;
    if (kt != want)
        return CKR_TEMPLATE_INCONSISTENT;
    if (tok_tmpl_find(tmpl, n, CKA_VALUE_LEN) == NULL)
        return CKR_TEMPLATE_INCOMPLETE;
    if (!value_len_ok(kt, len))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    if (tok_ossl_random_secret(value, len) != 0)
        return CKR_FUNCTION_FAILED;
    const tok_secret_origin origin = {TOK_OP_GENERATE, m->mechanism, CK_FALSE, CK_FALSE};
    rv = tok_secret_new(s, tmpl, n, kt, value, len, &origin, out);
    sks_cleanse(value, sizeof(value));
    return rv;
}

/* ---- wrapping ------------------------------------------------------------------ */

static int is_aes_wrap(CK_MECHANISM_TYPE m)
{
    return m == CKM_AES_KEY_WRAP || m == CKM_AES_KEY_WRAP_PAD;
}

/* The IV of an AES key wrap: none (the default), 8 bytes (KEY_WRAP) or 4 (KEY_WRAP_PAD). */
static CK_RV wrap_iv(const CK_MECHANISM *m, const uint8_t **iv)
{
    *iv = NULL;
    if (m->ulParameterLen == 0)
        return CKR_OK;
    size_t want = m->mechanism == CKM_AES_KEY_WRAP ? 8 : 4;
    if (m->pParameter == NULL || m->ulParameterLen != want)
        return CKR_MECHANISM_PARAM_INVALID;
    *iv = m->pParameter;
    return CKR_OK;
}

/* AES key wrap or unwrap in one go; out holds in_len + 16 bytes. */
static CK_RV aes_wrap(const CK_MECHANISM *m, const tok_attr *key, const uint8_t *in, size_t in_len,
                      uint8_t *out, size_t *out_len, int wrap)
{
    const uint8_t *iv;
    CK_RV rv = wrap_iv(m, &iv);
    if (rv != CKR_OK)
        return rv;
    const EVP_CIPHER *cipher = tok_aes_cipher(m->mechanism, key->len);
    if (cipher == NULL)
        return wrap ? CKR_WRAPPING_KEY_SIZE_RANGE : CKR_UNWRAPPING_KEY_SIZE_RANGE;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    int ok = ctx != NULL && EVP_CipherInit_ex2(ctx, cipher, key->value, iv, wrap, NULL) == 1 &&
             EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) == 1 &&
             EVP_CipherFinal_ex(ctx, out + n, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    *out_len = ok ? (size_t)n + (size_t)fin : 0;
    if (!ok)
        return wrap ? CKR_FUNCTION_FAILED : CKR_WRAPPED_KEY_INVALID;
    return CKR_OK;
}

/* The wrapped size of a key value. */
static size_t wrapped_len(CK_MECHANISM_TYPE m, size_t len, size_t rsa_block)
{
    if (m == CKM_AES_KEY_WRAP)
        return len + 8;
    if (m == CKM_AES_KEY_WRAP_PAD)
        return (len + 7) / 8 * 8 + 8;
    return rsa_block;
}

/* Resolve a wrapping or unwrapping key for a mechanism. */
static CK_RV wrapping_key(tok_session *s, CK_MECHANISM_TYPE m, CK_OBJECT_HANDLE h, int wrap,
                          tok_object *obj)
{
    CK_OBJECT_CLASS cls = is_aes_wrap(m) ? CKO_SECRET_KEY : wrap ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY;
    uint8_t kind = is_aes_wrap(m) ? TOK_MK_AES : TOK_MK_RSA;
    CK_RV rv = tok_op_key(s, h, cls, kind, wrap ? CKA_WRAP : CKA_UNWRAP, obj);
    if (rv == CKR_KEY_HANDLE_INVALID)
        return wrap ? CKR_WRAPPING_KEY_HANDLE_INVALID : CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    if (rv == CKR_KEY_TYPE_INCONSISTENT)
        return wrap ? CKR_WRAPPING_KEY_TYPE_INCONSISTENT : CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
    return rv;
}

/* The public key of an RSA key object (a reference of its own), or NULL. */
static EVP_PKEY *rsa_public_key(const tok_object *obj)
{
    if (obj->where == TOK_OBJ_CARD_KEY && obj->key != NULL && obj->key->public_key != NULL)
        return EVP_PKEY_up_ref(obj->key->public_key) == 1 ? obj->key->public_key : NULL;
    return tok_pkey_from_attrs(obj->attrs);
}

CK_RV tok_wrap_key(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE wrapping,
                   CK_OBJECT_HANDLE key, uint8_t *out, CK_ULONG *out_len)
{
    const tok_mech *d;
    tok_object wk, k;
    tok_rsa_crypt_map map;
    EVP_PKEY *pub = NULL;
    int query = 0;

    CK_RV rv = tok_mech_check(m, CKF_WRAP, &d);
    if (rv == CKR_OK && !is_aes_wrap(m->mechanism))
        rv = tok_mech_rsa_crypt_map(m, &map);
    if (rv == CKR_OK)
        rv = wrapping_key(s, m->mechanism, wrapping, 1, &wk);
    if (rv != CKR_OK)
        return rv;
    rv = tok_object_get(s, key, &k);
    if (rv == CKR_OBJECT_HANDLE_INVALID)
        return CKR_KEY_HANDLE_INVALID;
    if (rv != CKR_OK)
        return rv;
    const tok_attr *value = k.cls == CKO_SECRET_KEY ? tok_attrs_find(k.attrs, CKA_VALUE) : NULL;
    if (value == NULL || value->value == NULL)
        return CKR_KEY_NOT_WRAPPABLE;
    if (!tok_attrs_bool(k.attrs, CKA_EXTRACTABLE, CK_FALSE))
        return CKR_KEY_UNEXTRACTABLE;
    if (tok_attrs_bool(k.attrs, CKA_WRAP_WITH_TRUSTED, CK_FALSE) &&
        !tok_attrs_bool(wk.attrs, CKA_TRUSTED, CK_FALSE))
        return CKR_KEY_NOT_WRAPPABLE;

    if (is_aes_wrap(m->mechanism)) {
        const tok_attr *kek = tok_attrs_find(wk.attrs, CKA_VALUE);
        if (kek == NULL || kek->value == NULL)
            return CKR_WRAPPING_KEY_HANDLE_INVALID;
        if (m->mechanism == CKM_AES_KEY_WRAP && (value->len % 8 != 0 || value->len < 16))
            return CKR_KEY_SIZE_RANGE;
        rv = tok_out_check(out, out_len, wrapped_len(m->mechanism, value->len, 0), &query);
        if (rv != CKR_OK || query)
            return rv;
        size_t n = 0;
        rv = aes_wrap(m, kek, value->value, value->len, out, &n, 1);
        *out_len = (CK_ULONG)n;
        return rv;
    }
    pub = rsa_public_key(&wk);
    if (pub == NULL)
        return CKR_WRAPPING_KEY_HANDLE_INVALID;
    rv = tok_key_size_check(d, (CK_ULONG)EVP_PKEY_get_bits(pub));
    if (rv == CKR_KEY_SIZE_RANGE)
        rv = CKR_WRAPPING_KEY_SIZE_RANGE;
    size_t k_len = (size_t)EVP_PKEY_get_size(pub);
    if (rv == CKR_OK)
        rv = tok_out_check(out, out_len, k_len, &query);
    if (rv == CKR_OK && !query) {
        size_t n = k_len;
        rv = tok_rsa_public_encrypt(pub, &map, value->value, value->len, out, &n);
        if (rv == CKR_DATA_LEN_RANGE)
            rv = CKR_KEY_SIZE_RANGE;
        *out_len = (CK_ULONG)n;
    }
    EVP_PKEY_free(pub);
    return rv;
}

/* Unwrap with an RSA card key: the card decrypts. */
static CK_RV rsa_unwrap(const CK_MECHANISM *m, const tok_object *uk, const uint8_t *wrapped,
                        size_t len, sks_writer *plain)
{
    tok_rsa_crypt_map map;
    sks_writer answer;
    CK_RV rv = tok_mech_rsa_crypt_map(m, &map);
    if (rv != CKR_OK)
        return rv;
    /* A software key of the issuer token (no-card mode) decrypts in the module. */
    EVP_PKEY *soft = uk->where == TOK_OBJ_SESSION ? tok_soft_private_key(uk->attrs) : NULL;
    if (soft != NULL) {
        rv = tok_soft_rsa_decrypt(soft, &map, wrapped, len, plain);
        EVP_PKEY_free(soft);
    } else if (uk->where != TOK_OBJ_CARD_KEY || uk->key == NULL || uk->key->public_key == NULL) {
        return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    } else if (len != (size_t)EVP_PKEY_get_size(uk->key->public_key)) {
        return CKR_WRAPPED_KEY_LEN_RANGE;
    } else {
        sks_writer_init(&answer);
        rv = tok_rsa_card_decrypt(uk->card, uk->key->handle, &map, wrapped, len, &answer, plain);
        sks_writer_free(&answer);
    }
    if (rv == CKR_ENCRYPTED_DATA_INVALID)
        rv = CKR_WRAPPED_KEY_INVALID;
    else if (rv == CKR_ENCRYPTED_DATA_LEN_RANGE)
        rv = CKR_WRAPPED_KEY_LEN_RANGE;
    return rv;
}

CK_RV tok_unwrap_key(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE unwrapping,
                     const uint8_t *wrapped, CK_ULONG wrapped_len, const CK_ATTRIBUTE *tmpl,
                     CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const tok_mech *d;
    tok_object uk;
    CK_KEY_TYPE kt;
    CK_ULONG want_len;
    sks_writer plain;

    CK_RV rv = tok_mech_check(m, CKF_UNWRAP, &d);
    if (rv == CKR_OK)
        rv = wrapping_key(s, m->mechanism, unwrapping, 0, &uk);
    if (rv == CKR_OK)
        rv = tok_secret_template(tmpl, n, CKK_GENERIC_SECRET, &kt, &want_len);
    if (rv != CKR_OK)
        return rv;
    sks_writer_init(&plain);
    if (is_aes_wrap(m->mechanism)) {
        const tok_attr *kek = tok_attrs_find(uk.attrs, CKA_VALUE);
        if (kek == NULL || kek->value == NULL)
            rv = CKR_UNWRAPPING_KEY_HANDLE_INVALID;
        else if (wrapped_len < 16 || wrapped_len % 8 != 0 || wrapped_len > SECRET_MAX + 16)
            rv = CKR_WRAPPED_KEY_LEN_RANGE;
        else {
            uint8_t buf[SECRET_MAX + 32];
            size_t got = 0;
            rv = aes_wrap(m, kek, wrapped, wrapped_len, buf, &got, 0);
            if (rv == CKR_OK)
                sks_put_raw(&plain, buf, got);
            sks_cleanse(buf, sizeof(buf));
        }
    } else {
        rv = rsa_unwrap(m, &uk, wrapped, wrapped_len, &plain);
    }
    if (rv == CKR_OK && plain.failed)
        rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK && want_len != 0 && want_len != plain.len)
        rv = CKR_TEMPLATE_INCONSISTENT;
    if (rv == CKR_OK && !value_len_ok(kt, plain.len))
        rv = CKR_WRAPPED_KEY_INVALID;
    if (rv == CKR_OK) {
        const tok_secret_origin origin = {TOK_OP_UNWRAP, CK_UNAVAILABLE_INFORMATION, CK_FALSE,
                                          CK_FALSE};
        rv = tok_secret_new(s, tmpl, n, kt, plain.buf, plain.len, &origin, out);
    }
    sks_writer_free(&plain);
    return rv;
}

/* AES key wrap or unwrap for the software keys of the issuer token (no-card mode). */
CK_RV tok_aes_key_wrap(const CK_MECHANISM *m, const tok_attr *kek, const uint8_t *in, size_t in_len,
                       uint8_t *out, size_t *out_len, int wrap)
{
    if (!is_aes_wrap(m->mechanism))
        return CKR_MECHANISM_INVALID;
    if (in_len > (1u << 20)) /* far beyond any key; the cipher takes an int */
        return CKR_DATA_LEN_RANGE;
    return aes_wrap(m, kek, in, in_len, out, out_len, wrap);
}
