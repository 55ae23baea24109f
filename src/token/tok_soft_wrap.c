/*
 * tok_soft_wrap.c - the key management calls of the issuer token (no-card
 * mode, tok_soft.h) for the standard mechanisms:
 *
 *   C_WrapKey of a software private key: its PKCS#8 PrivateKeyInfo DER
 *   under CKM_AES_KEY_WRAP_PAD (RFC 5649; or CKM_AES_KEY_WRAP when the DER
 *   is a multiple of 8 bytes), for key archival. The key must be
 *   CKA_EXTRACTABLE; a sensitive key can be wrapped, never read.
 *   C_UnwrapKey with a CKO_PRIVATE_KEY template: the reverse; the template
 *   gives CKA_KEY_TYPE (it must match the key) and the usual attributes.
 *   Everything else goes to the card tokens' code (tok_secret.c,
 *   tok_derive.c), which runs in the module and knows software keys.
 *
 * Secret keys may be token objects on the issuer token: for C_GenerateKey,
 * C_UnwrapKey and C_DeriveKey a template's CKA_TOKEN true is taken off, the
 * key made as a session key, then stored as a token object.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "protocol/sks_keys.h"
#include "token/tok_issuer_token.h"
#include "token/tok_soft.h"

#define WRAPPED_MAX (16u * 1024u + 16u) /* a PKCS#8 RSA-4096 key is about 2.4 KiB */

/* ---- token secret keys --------------------------------------------------------- */

/* A template without its CKA_TOKEN entries (a copy, freed by the caller), and what they asked. */
static CK_RV without_token(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE **out, CK_ULONG *nout,
                           CK_BBOOL *token)
{
    int seen = 0;
    *out = NULL;
    *nout = 0;
    *token = CK_FALSE;
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].type != CKA_TOKEN)
            continue;
        if (t[i].pValue == NULL || t[i].ulValueLen != sizeof(CK_BBOOL) ||
            *(const CK_BBOOL *)t[i].pValue > CK_TRUE)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        CK_BBOOL v = *(const CK_BBOOL *)t[i].pValue;
        if (seen && v != *token)
            return CKR_TEMPLATE_INCONSISTENT;
        *token = v;
        seen = 1;
    }
    *out = calloc(n > 0 ? n : 1, sizeof(**out));
    if (*out == NULL)
        return CKR_HOST_MEMORY;
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].type != CKA_TOKEN)
            (*out)[(*nout)++] = t[i];
    }
    return CKR_OK;
}

enum secret_op {
    SECRET_GENERATE,
    SECRET_UNWRAP,
    SECRET_DERIVE,
};

typedef struct {
    enum secret_op op;
    const CK_MECHANISM *m;
    CK_OBJECT_HANDLE key;   /* unwrapping or base key */
    const uint8_t *wrapped; /* unwrap */
    CK_ULONG wrapped_len;
} secret_call;

/* Make a secret key with the card tokens' code, then store it as a token object if asked. */
static CK_RV secret_key(tok_session *s, tok_slot *slot, const secret_call *c,
                        const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE *t = NULL;
    CK_ULONG tn = 0;
    CK_BBOOL token = CK_FALSE;
    CK_RV rv = without_token(tmpl, n, &t, &tn, &token);
    if (rv == CKR_OK && token)
        rv = tok_issuer_write_allowed(s, slot);
    if (rv == CKR_OK) {
        switch (c->op) {
        case SECRET_GENERATE:
            rv = tok_generate_secret(s, c->m, t, tn, out);
            break;
        case SECRET_UNWRAP:
            rv = tok_unwrap_key(s, c->m, c->key, c->wrapped, c->wrapped_len, t, tn, out);
            break;
        default:
            rv = tok_derive_key(s, c->m, c->key, t, tn, out);
            break;
        }
    }
    if (rv == CKR_OK && token)
        rv = tok_issuer_promote(s, slot, *out);
    free(t);
    return rv;
}

CK_RV tok_soft_generate_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                            const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const secret_call c = {SECRET_GENERATE, m, CK_INVALID_HANDLE, NULL, 0};
    return secret_key(s, slot, &c, tmpl, n, out);
}

CK_RV tok_soft_derive_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                          CK_OBJECT_HANDLE base, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                          CK_OBJECT_HANDLE *out)
{
    const secret_call c = {SECRET_DERIVE, m, base, NULL, 0};
    return secret_key(s, slot, &c, tmpl, n, out);
}

/* ---- private keys under an AES key wrap ------------------------------------------ */

static int is_aes_wrap(CK_MECHANISM_TYPE m)
{
    return m == CKM_AES_KEY_WRAP || m == CKM_AES_KEY_WRAP_PAD;
}

/*
 * The mechanism and the AES key encryption key of a private key's wrap
 * (usage CKA_WRAP) or unwrap (CKA_UNWRAP): only an AES key wrap takes or
 * gives a private key.
 */
static CK_RV private_key_kek(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE h, int wrap,
                             const tok_attr **kek)
{
    const tok_mech *d;
    CK_RV rv = tok_mech_check(m, wrap ? CKF_WRAP : CKF_UNWRAP, &d);
    if (rv != CKR_OK)
        return rv;
    if (!is_aes_wrap(m->mechanism))
        return wrap ? CKR_KEY_NOT_WRAPPABLE : CKR_TEMPLATE_INCONSISTENT;
    tok_object o;
    rv = tok_op_key(s, h, CKO_SECRET_KEY, TOK_MK_AES, wrap ? CKA_WRAP : CKA_UNWRAP, &o);
    if (rv == CKR_KEY_HANDLE_INVALID)
        return wrap ? CKR_WRAPPING_KEY_HANDLE_INVALID : CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    if (rv == CKR_KEY_TYPE_INCONSISTENT)
        return wrap ? CKR_WRAPPING_KEY_TYPE_INCONSISTENT : CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
    if (rv != CKR_OK)
        return rv;
    *kek = tok_attrs_find(o.attrs, CKA_VALUE);
    if (*kek == NULL || (*kek)->value == NULL)
        return wrap ? CKR_WRAPPING_KEY_HANDLE_INVALID : CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    return CKR_OK;
}

/* Wrap the software private key `k` (its PKCS#8) under an AES key. */
static CK_RV wrap_private(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE wrapping,
                          const tok_object *k, uint8_t *out, CK_ULONG *out_len)
{
    const tok_attr *kek = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int query = 0;
    CK_RV rv = private_key_kek(s, m, wrapping, 1, &kek);
    if (rv != CKR_OK)
        return rv;
    if (!tok_attrs_bool(k->attrs, CKA_EXTRACTABLE, CK_FALSE))
        return CKR_KEY_UNEXTRACTABLE;
    tok_object wk;
    if (tok_attrs_bool(k->attrs, CKA_WRAP_WITH_TRUSTED, CK_FALSE) &&
        (tok_object_get(s, wrapping, &wk) != CKR_OK ||
         !tok_attrs_bool(wk.attrs, CKA_TRUSTED, CK_FALSE)))
        return CKR_KEY_NOT_WRAPPABLE;
    EVP_PKEY *pk = tok_soft_private_key(k->attrs);
    if (pk == NULL)
        rv = CKR_KEY_HANDLE_INVALID;
    else if (sks_pkcs8_encode(pk, &der, &der_len) != 0)
        rv = CKR_FUNCTION_FAILED;
    EVP_PKEY_free(pk);
    if (rv == CKR_OK && m->mechanism == CKM_AES_KEY_WRAP && der_len % 8 != 0)
        rv = CKR_KEY_SIZE_RANGE;
    size_t need = m->mechanism == CKM_AES_KEY_WRAP ? der_len + 8 : (der_len + 7) / 8 * 8 + 8;
    if (rv == CKR_OK)
        rv = tok_out_check(out, out_len, need, &query);
    if (rv == CKR_OK && !query) {
        size_t n = 0;
        rv = tok_aes_key_wrap(m, kek, der, der_len, out, &n, 1);
        *out_len = rv == CKR_OK ? (CK_ULONG)n : 0;
    }
    OPENSSL_clear_free(der, der_len);
    return rv;
}

CK_RV tok_soft_wrap_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                        CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, uint8_t *out,
                        CK_ULONG *out_len)
{
    (void)slot;
    tok_object k;
    if (tok_object_get(s, key, &k) == CKR_OK && tok_soft_is_private_key(k.attrs))
        return wrap_private(s, m, wrapping_key, &k, out, out_len);
    return tok_wrap_key(s, m, wrapping_key, key, out, out_len);
}

/* Unwrap a PKCS#8 private key under an AES key into a new key object. */
static CK_RV unwrap_private(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                            CK_OBJECT_HANDLE unwrapping, const uint8_t *wrapped, CK_ULONG len,
                            const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const tok_attr *kek = NULL;
    CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;
    EVP_PKEY *pk = NULL;
    tok_attrs a = {0};
    CK_RV rv = private_key_kek(s, m, unwrapping, 0, &kek);
    if (rv != CKR_OK)
        return rv;
    if (!tok_tmpl_get_ulong(tmpl, n, CKA_KEY_TYPE, &kt))
        return tok_tmpl_find(tmpl, n, CKA_KEY_TYPE) ? CKR_ATTRIBUTE_VALUE_INVALID
                                                    : CKR_TEMPLATE_INCOMPLETE;
    if (kt != CKK_RSA && kt != CKK_EC)
        return CKR_TEMPLATE_INCONSISTENT;
    rv = tok_rules_check(CKO_PRIVATE_KEY, kt, TOK_OP_UNWRAP, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_soft_may_store(s, slot, tmpl, n, CK_TRUE);
    if (rv == CKR_OK && (len < 16 || len % 8 != 0 || len > WRAPPED_MAX))
        rv = CKR_WRAPPED_KEY_LEN_RANGE;
    if (rv != CKR_OK)
        return rv;
    uint8_t *plain = OPENSSL_malloc(len + 16);
    size_t plain_len = 0;
    rv = plain != NULL ? tok_aes_key_wrap(m, kek, wrapped, len, plain, &plain_len, 0)
                       : CKR_HOST_MEMORY;
    if (rv == CKR_OK && (pk = tok_soft_from_pkcs8(plain, plain_len)) == NULL)
        rv = CKR_WRAPPED_KEY_INVALID;
    if (rv == CKR_OK && (EVP_PKEY_is_a(pk, "RSA") ? CKK_RSA : CKK_EC) != kt)
        rv = CKR_TEMPLATE_INCONSISTENT;
    if (rv == CKR_OK) {
        rv = tok_soft_key_object(pk, CKO_PRIVATE_KEY, kt, tmpl, n, TOK_OP_UNWRAP,
                                 CK_UNAVAILABLE_INFORMATION, &a);
        if (rv == CKR_KEY_TYPE_INCONSISTENT) /* a curve the module does not hold */
            rv = CKR_WRAPPED_KEY_INVALID;
    }
    if (rv == CKR_OK)
        rv = tok_issuer_store_object(s, slot, &a, out);
    OPENSSL_clear_free(plain, len + 16);
    tok_attrs_free(&a);
    EVP_PKEY_free(pk);
    return rv;
}

CK_RV tok_soft_unwrap_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                          CK_OBJECT_HANDLE unwrapping_key, const uint8_t *wrapped,
                          CK_ULONG wrapped_len, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                          CK_OBJECT_HANDLE *out)
{
    CK_ULONG cls;
    if (tok_tmpl_get_ulong(tmpl, n, CKA_CLASS, &cls) && cls == CKO_PRIVATE_KEY)
        return unwrap_private(s, slot, m, unwrapping_key, wrapped, wrapped_len, tmpl, n, out);
    const secret_call c = {SECRET_UNWRAP, m, unwrapping_key, wrapped, wrapped_len};
    return secret_key(s, slot, &c, tmpl, n, out);
}
