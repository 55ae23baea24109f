/*
 * tok_soft_gen.c - software key pairs on the issuer token (tok_soft.h):
 * C_GenerateKeyPair (CKM_RSA_PKCS_KEY_PAIR_GEN 2048..4096 bits, any public
 * exponent OpenSSL accepts, 65537 by default; CKM_EC_KEY_PAIR_GEN on P-256
 * or P-384) and C_CreateObject of an RSA (all eight components) or EC
 * (CKA_EC_PARAMS, CKA_VALUE) private key.
 *
 * Each half of a pair is made from its own template, as the standard has
 * it (nothing is copied from one to the other), then completed with the
 * key's own attributes and the standard's defaults: a private key is
 * CKA_PRIVATE, CKA_SENSITIVE and not CKA_EXTRACTABLE unless the template
 * says otherwise (an injected K2 or an archived key must be given
 * CKA_EXTRACTABLE true). CKA_TOKEN true makes a token object, stored in the
 * issuer token's files; that needs a R/W session and the user logged in.
 */
#include <string.h>

#include <openssl/bn.h>

#include "token/tok_issuer_token.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

CK_RV tok_soft_may_store(const tok_session *s, const tok_slot *slot, const CK_ATTRIBUTE *t,
                         CK_ULONG n, CK_BBOOL private_default)
{
    CK_BBOOL token = CK_FALSE, private_ = private_default;
    tok_tmpl_get_bool(t, n, CKA_TOKEN, &token);
    tok_tmpl_get_bool(t, n, CKA_PRIVATE, &private_);
    if (token)
        return tok_issuer_write_allowed(s, slot);
    return private_ && !tok_logged_in(slot) ? CKR_USER_NOT_LOGGED_IN : CKR_OK;
}

CK_RV tok_soft_key_object(EVP_PKEY *pk, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, const CK_ATTRIBUTE *t,
                          CK_ULONG n, enum tok_op op, CK_MECHANISM_TYPE gen_mech, tok_attrs *a)
{
    int generated = op == TOK_OP_GENERATE;
    CK_RV rv = tok_attrs_merge_tmpl(a, t, n);
    if (rv == CKR_OK)
        rv = cls == CKO_PUBLIC_KEY ? tok_pkey_attrs(pk, CKO_PUBLIC_KEY, a)
                                   : tok_soft_key_attrs(pk, a);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(a, CKA_LOCAL, generated);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(a, CKA_KEY_GEN_MECHANISM,
                                 generated ? gen_mech : CK_UNAVAILABLE_INFORMATION);
    if (rv == CKR_OK)
        rv = tok_rules_defaults(cls, kt, op, a);
    return rv;
}

/* Generate an RSA key (bits, optional exponent) or an EC key (group) in the module's context. */
static CK_RV generate(const char *type, CK_ULONG bits, const CK_ATTRIBUTE *e, const char *group,
                      EVP_PKEY **out)
{
    EVP_PKEY_CTX *ctx = tok_ossl_pkey_ctx(type);
    BIGNUM *exp = NULL;
    int ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1;
    if (ok && group != NULL)
        ok = EVP_PKEY_CTX_set_group_name(ctx, group) == 1;
    if (ok && group == NULL)
        ok = EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) == 1;
    CK_RV rv = ok ? CKR_OK : CKR_FUNCTION_FAILED;
    if (rv == CKR_OK && e != NULL) {
        exp = e->ulValueLen > 0 && e->ulValueLen <= 8
                  ? BN_bin2bn(e->pValue, (int)e->ulValueLen, NULL)
                  : NULL;
        /* An even exponent, or one below 3, makes no RSA key. */
        if (exp == NULL || !BN_is_odd(exp) || BN_cmp(exp, BN_value_one()) <= 0 ||
            EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, exp) != 1)
            rv = CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (rv == CKR_OK && EVP_PKEY_keygen(ctx, out) != 1)
        rv = CKR_FUNCTION_FAILED;
    BN_free(exp);
    EVP_PKEY_CTX_free(ctx);
    return rv;
}

/* The OpenSSL group of CKA_EC_PARAMS: P-256 or P-384. */
static CK_RV ec_group(const CK_ATTRIBUTE *params, const char **group)
{
    const char *g = params != NULL && params->pValue != NULL
                        ? tok_ec_group_name(params->pValue, params->ulValueLen)
                        : NULL;
    if (g != NULL && (strcmp(g, "prime256v1") == 0 || strcmp(g, "secp384r1") == 0)) {
        *group = g;
        return CKR_OK;
    }
    if (g != NULL ||
        (params != NULL && params->ulValueLen > 2 && ((const uint8_t *)params->pValue)[0] == 0x06))
        return CKR_CURVE_NOT_SUPPORTED;
    return CKR_DOMAIN_PARAMS_INVALID;
}

/* Undo a half-made pair: the public key stored before the private key failed. */
static void discard(tok_session *s, tok_slot *slot, CK_OBJECT_HANDLE h)
{
    tok_object o;
    if (tok_object_get(s, h, &o) != CKR_OK || o.where != TOK_OBJ_SESSION)
        return;
    if (o.sobj->token_id != 0)
        tok_issuer_object_destroy(s, slot, o.sobj);
    else
        tok_object_destroy_session_object(o.sobj);
}

CK_RV tok_soft_generate_key_pair(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                                 const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv,
                                 CK_ULONG npriv, CK_OBJECT_HANDLE *pub_out,
                                 CK_OBJECT_HANDLE *priv_out)
{
    const tok_mech *d;
    const char *group = NULL;
    CK_ULONG bits = 0;
    EVP_PKEY *pk = NULL;
    tok_attrs pa = {0}, ka = {0};

    CK_KEY_TYPE kt;
    CK_RV rv = tok_mech_key_pair_gen(m, &d, &kt);
    if (rv != CKR_OK)
        return rv;
    int rsa = kt == CKK_RSA;
    rv = tok_rules_check(CKO_PUBLIC_KEY, kt, TOK_OP_GENERATE, pub, npub);
    if (rv == CKR_OK)
        rv = tok_rules_check(CKO_PRIVATE_KEY, kt, TOK_OP_GENERATE, priv, npriv);
    if (rv == CKR_OK && rsa) {
        tok_tmpl_get_ulong(pub, npub, CKA_MODULUS_BITS, &bits); /* required: checked above */
        rv = tok_key_size_check(d, bits);
    } else if (rv == CKR_OK) {
        rv = ec_group(tok_tmpl_find(pub, npub, CKA_EC_PARAMS), &group);
    }
    if (rv == CKR_OK)
        rv = tok_soft_may_store(s, slot, pub, npub, CK_FALSE);
    if (rv == CKR_OK)
        rv = tok_soft_may_store(s, slot, priv, npriv, CK_TRUE);
    if (rv == CKR_OK)
        rv = generate(rsa ? "RSA" : "EC", bits, tok_tmpl_find(pub, npub, CKA_PUBLIC_EXPONENT),
                      group, &pk);
    if (rv == CKR_OK)
        rv = tok_soft_key_object(pk, CKO_PUBLIC_KEY, kt, pub, npub, TOK_OP_GENERATE, m->mechanism,
                                 &pa);
    if (rv == CKR_OK)
        rv = tok_soft_key_object(pk, CKO_PRIVATE_KEY, kt, priv, npriv, TOK_OP_GENERATE,
                                 m->mechanism, &ka);
    if (rv == CKR_OK)
        rv = tok_issuer_store_object(s, slot, &pa, pub_out);
    if (rv == CKR_OK && (rv = tok_issuer_store_object(s, slot, &ka, priv_out)) != CKR_OK)
        discard(s, slot, *pub_out);
    tok_attrs_free(&pa);
    tok_attrs_free(&ka);
    EVP_PKEY_free(pk);
    return rv;
}

CK_RV tok_soft_create_private_key(tok_session *s, tok_slot *slot, const CK_ATTRIBUTE *tmpl,
                                  CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;
    EVP_PKEY *pk = NULL;
    tok_attrs a = {0};
    if (!tok_tmpl_get_ulong(tmpl, n, CKA_KEY_TYPE, &kt))
        return tok_tmpl_find(tmpl, n, CKA_KEY_TYPE) ? CKR_ATTRIBUTE_VALUE_INVALID
                                                    : CKR_TEMPLATE_INCOMPLETE;
    if (kt != CKK_RSA && kt != CKK_EC)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_RV rv = tok_rules_check(CKO_PRIVATE_KEY, kt, TOK_OP_CREATE, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_soft_may_store(s, slot, tmpl, n, CK_TRUE);
    if (rv == CKR_OK)
        rv = tok_private_key_from_template(tmpl, n, kt, &pk);
    if (rv == CKR_OK)
        rv = tok_soft_key_object(pk, CKO_PRIVATE_KEY, kt, tmpl, n, TOK_OP_CREATE,
                                 CK_UNAVAILABLE_INFORMATION, &a);
    if (rv == CKR_OK)
        rv = tok_issuer_store_object(s, slot, &a, out);
    tok_attrs_free(&a);
    EVP_PKEY_free(pk);
    return rv;
}
