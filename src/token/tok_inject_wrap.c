/*
 * tok_inject_wrap.c - secure key injection, issuer side: C_WrapKey on the
 * issuer token of no-card mode makes exactly what the card's
 * importSessionKey and injectPrivateKey take (docs/protocol.md section 10,
 * docs/provisioning.md "No-card mode"):
 *
 *   CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP (no parameter), hWrappingKey = K1's
 *   public key (RSA 2048..4096, CKA_WRAP), hKey = S1 (CKK_AES, 32 bytes,
 *   extractable): RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label) of S1's
 *   value; the output is the modulus size.
 *
 *   CKM_VENDOR_SKS_SESSION_KEY_ECDH (CK_SKS_ECDH_SESSION_KEY_PARAMS),
 *   hWrappingKey = K1's public key (EC P-256, CKA_WRAP), hKey = S1: an
 *   ephemeral P-256 key, Z = the x coordinate of its ECDH with K1, and S1's
 *   value REPLACED by HMAC-SHA256(key = Z, "SKS session key"); the
 *   ephemeral public point (65 bytes, uncompressed) goes to pPublicData and
 *   the wrapped output is empty (length 0; pWrappedKey must still be
 *   non-NULL, as a NULL pointer only asks for the lengths: the wrapped
 *   key's, 0, and the point's, 65 in ulPublicDataLen).
 *
 *   After either, S1 is bound to K1: CKA_VENDOR_SKS_INJECTION_AAD holds
 *   SHA-256 of K1's SubjectPublicKeyInfo DER and
 *   CKA_VENDOR_SKS_INJECTION_ONLY is true (tok_op_key() then refuses S1 to
 *   every standard mechanism). A bound S1 is not wrapped again.
 *
 *   CKM_VENDOR_SKS_INJECT_KEY (CK_SKS_INJECT_PARAMS), hWrappingKey = a bound
 *   S1, hKey = K2 (a software private key of the issuer token, RSA
 *   2048/3072/4096 or EC P-256/P-384, CKA_EXTRACTABLE true, a CKA_ID of 1
 *   to 32 bytes and a usage the card can give it): AES-256-GCM(S1, a random
 *   12-byte IV, aad = the binding | len(ID) | ID | KeyUsage) of K2's PKCS#8
 *   PrivateKeyInfo DER, the 16-byte tag appended; the IV goes to
 *   CK_SKS_INJECT_PARAMS.iv (pCertificatePath is not used here). The card
 *   creates the key only under that ID and KeyUsage, and takes one blob
 *   per S1.
 *
 * What does not change between blobs (K1's EVP_PKEY, SPKI digest and OAEP
 * context, K2's PKCS#8) is kept with the objects (tok_soft_cache.c).
 *
 * On a card token these wraps are CKR_MECHANISM_INVALID: there the same
 * mechanisms unwrap (tok_inject_unwrap.c).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>

#include "pkcs11/sks-pkcs11.h"
#include "protocol/sks_keys.h"
#include "token/tok_issuer_token.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"
#include "token/tok_vendor.h"

#define S1_LEN         32
#define ECDH_POINT_LEN 65
#define S1_LABEL       "SKS session key"
#define INJECT_AAD_MAX (32 + 1 + SKS_ID_MAX + 1)

/* ---- S1 -------------------------------------------------------------------------- */

/*
 * The S1 to wrap under K1: an AES-256 secret key with its value, extractable,
 * not yet bound to a card key, and (a token object) one the session may change.
 */
static CK_RV session_key(tok_session *s, tok_slot *slot, CK_OBJECT_HANDLE h, const tok_object *k1,
                         tok_object *s1)
{
    CK_RV rv = tok_object_get(s, h, s1);
    if (rv == CKR_OBJECT_HANDLE_INVALID)
        return CKR_KEY_HANDLE_INVALID;
    if (rv != CKR_OK)
        return rv;
    const tok_attr *value = tok_attrs_find(s1->attrs, CKA_VALUE);
    if (s1->where != TOK_OBJ_SESSION || s1->cls != CKO_SECRET_KEY || s1->key_type != CKK_AES ||
        value == NULL || value->value == NULL)
        return CKR_KEY_NOT_WRAPPABLE;
    if (value->len != S1_LEN)
        return CKR_KEY_SIZE_RANGE;
    if (!tok_attrs_bool(s1->attrs, CKA_EXTRACTABLE, CK_FALSE))
        return CKR_KEY_UNEXTRACTABLE;
    /* One S1, one card key: a bound S1 is not sent to another. */
    if (tok_attrs_find(s1->attrs, CKA_VENDOR_SKS_INJECTION_AAD) != NULL)
        return CKR_KEY_NOT_WRAPPABLE;
    if (tok_attrs_bool(s1->attrs, CKA_WRAP_WITH_TRUSTED, CK_FALSE) &&
        !tok_attrs_bool(k1->attrs, CKA_TRUSTED, CK_FALSE))
        return CKR_KEY_NOT_WRAPPABLE;
    /* The binding is written before anything leaves the module. */
    return s1->sobj->token_id != 0 ? tok_issuer_write_allowed(s, slot) : CKR_OK;
}

/*
 * K1's public key object for a session-key mechanism, and what the issuer
 * token keeps of it (tok_soft_cache.c: its EVP_PKEY and SPKI digest).
 */
static CK_RV card_public_key(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE h,
                             tok_object *k1, tok_soft_public_view *pub)
{
    int ec = m->mechanism == CKM_VENDOR_SKS_SESSION_KEY_ECDH;
    CK_RV rv = tok_op_key(s, h, CKO_PUBLIC_KEY, ec ? TOK_MK_EC : TOK_MK_RSA, CKA_WRAP, k1);
    if (rv == CKR_KEY_HANDLE_INVALID)
        return CKR_WRAPPING_KEY_HANDLE_INVALID;
    if (rv == CKR_KEY_TYPE_INCONSISTENT)
        return CKR_WRAPPING_KEY_TYPE_INCONSISTENT;
    if (rv != CKR_OK)
        return rv;
    if (k1->sobj == NULL) /* every object of the issuer token is in module memory */
        return CKR_WRAPPING_KEY_HANDLE_INVALID;
    rv = tok_soft_cache_public(k1->sobj, pub);
    if (rv == CKR_KEY_HANDLE_INVALID)
        return CKR_WRAPPING_KEY_HANDLE_INVALID;
    if (rv != CKR_OK)
        return rv;
    const tok_mech *d = tok_mech_find(m->mechanism);
    int fits = d != NULL && tok_key_size_check(d, pub->bits) == CKR_OK &&
               (!ec || pub->alg == SKS_KEYALG_EC_P256);
    return fits ? CKR_OK : CKR_WRAPPING_KEY_SIZE_RANGE;
}

/* Bind S1 to K1 (and, for ECDH, give it its derived value): its attributes replaced. */
static CK_RV bind_session_key(tok_session *s, tok_slot *slot, const tok_object *s1,
                              const uint8_t hash[32], const uint8_t *value)
{
    tok_attrs a = {0};
    CK_RV rv = tok_attrs_copy(&a, s1->attrs);
    if (rv == CKR_OK && value != NULL) {
        rv = tok_attrs_set(&a, CKA_VALUE, value, S1_LEN);
        tok_attrs_remove(&a, CKA_CHECK_VALUE); /* it was the old value's */
    }
    if (rv == CKR_OK)
        rv = tok_attrs_set(&a, CKA_VENDOR_SKS_INJECTION_AAD, hash, 32);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(&a, CKA_VENDOR_SKS_INJECTION_ONLY, CK_TRUE);
    if (rv == CKR_OK)
        rv = tok_issuer_object_replace(s, slot, s1->sobj, &a);
    tok_attrs_free(&a);
    return rv;
}

/* ---- CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP ------------------------------------------- */

static CK_RV wrap_rsa_oaep(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                           CK_OBJECT_HANDLE k1_handle, CK_OBJECT_HANDLE s1_handle, uint8_t *out,
                           CK_ULONG *out_len)
{
    tok_object k1, s1;
    tok_soft_public_view pub;
    int query = 0;
    if (m->pParameter != NULL || m->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv = card_public_key(s, m, k1_handle, &k1, &pub);
    if (rv == CKR_OK)
        rv = session_key(s, slot, s1_handle, &k1, &s1);
    size_t k = rv == CKR_OK ? pub.size : 0;
    if (rv == CKR_OK)
        rv = tok_out_check(out, out_len, k, &query);
    if (rv == CKR_OK && !query) {
        const tok_attr *value = tok_attrs_find(s1.attrs, CKA_VALUE);
        size_t n = k;
        rv = tok_soft_cache_oaep(k1.sobj, value->value, value->len, out, &n);
        if (rv == CKR_OK)
            rv = bind_session_key(s, slot, &s1, pub.spki_hash, NULL);
        *out_len = rv == CKR_OK ? (CK_ULONG)n : 0;
    }
    return rv;
}

/* ---- CKM_VENDOR_SKS_SESSION_KEY_ECDH ------------------------------------------------ */

/* A fresh P-256 key pair in the module's context, or NULL. */
static EVP_PKEY *ephemeral_p256(void)
{
    EVP_PKEY_CTX *ctx = tok_ossl_pkey_ctx("EC");
    EVP_PKEY *key = NULL;
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_group_name(ctx, "prime256v1") != 1 || EVP_PKEY_keygen(ctx, &key) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* S1 = HMAC-SHA256(key = Z, "SKS session key") of the ECDH of `eph` with K1; the point too. */
static CK_RV ecdh_session_key(EVP_PKEY *eph, EVP_PKEY *k1, uint8_t s1[S1_LEN],
                              uint8_t point[ECDH_POINT_LEN])
{
    uint8_t z[32];
    size_t z_len = sizeof(z), mac_len = 0, point_len = 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(tok_ossl_ctx(), eph, NULL);
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, k1) == 1 && EVP_PKEY_derive(ctx, z, &z_len) == 1 &&
             z_len == sizeof(z);
    EVP_PKEY_CTX_free(ctx);
    ok = ok &&
         EVP_Q_mac(tok_ossl_ctx(), "HMAC", NULL, "SHA256", NULL, z, z_len,
                   (const unsigned char *)S1_LABEL, strlen(S1_LABEL), s1, S1_LEN,
                   &mac_len) != NULL &&
         mac_len == S1_LEN;
    ok = ok &&
         EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         ECDH_POINT_LEN, &point_len) == 1 &&
         point_len == ECDH_POINT_LEN && point[0] == 0x04;
    OPENSSL_cleanse(z, sizeof(z));
    if (!ok)
        OPENSSL_cleanse(s1, S1_LEN);
    return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

static CK_RV wrap_ecdh(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                       CK_OBJECT_HANDLE k1_handle, CK_OBJECT_HANDLE s1_handle, uint8_t *out,
                       CK_ULONG *out_len)
{
    tok_object k1, s1;
    tok_soft_public_view pub;
    EVP_PKEY *eph = NULL;
    uint8_t value[S1_LEN], point[ECDH_POINT_LEN];
    int query = 0;
    if (m->pParameter == NULL || m->ulParameterLen != sizeof(CK_SKS_ECDH_SESSION_KEY_PARAMS))
        return CKR_MECHANISM_PARAM_INVALID;
    CK_SKS_ECDH_SESSION_KEY_PARAMS *p = m->pParameter;
    CK_RV rv = card_public_key(s, m, k1_handle, &k1, &pub);
    if (rv == CKR_OK)
        rv = session_key(s, slot, s1_handle, &k1, &s1);
    if (rv == CKR_OK)
        rv = tok_out_check(out, out_len, 0, &query);
    /* A size query gives the point's length too; so does a point buffer too small. */
    if (rv == CKR_OK && (query || p->pPublicData == NULL || p->ulPublicDataLen < ECDH_POINT_LEN)) {
        p->ulPublicDataLen = ECDH_POINT_LEN;
        rv = query ? CKR_OK : CKR_BUFFER_TOO_SMALL;
    }
    if (rv != CKR_OK || query)
        return rv;
    eph = ephemeral_p256();
    rv = eph != NULL ? ecdh_session_key(eph, pub.key, value, point) : CKR_FUNCTION_FAILED;
    if (rv == CKR_OK)
        rv = bind_session_key(s, slot, &s1, pub.spki_hash, value);
    if (rv == CKR_OK) {
        memcpy(p->pPublicData, point, ECDH_POINT_LEN);
        p->ulPublicDataLen = ECDH_POINT_LEN;
    }
    *out_len = 0;
    OPENSSL_cleanse(value, sizeof(value));
    EVP_PKEY_free(eph); /* the ephemeral private key is gone with it */
    return rv;
}

/* ---- CKM_VENDOR_SKS_INJECT_KEY ------------------------------------------------------- */

/* The wrapping key of an injection: a bound S1 with its value and CKA_WRAP. */
static CK_RV bound_session_key(tok_session *s, CK_OBJECT_HANDLE h, tok_object *s1,
                               const uint8_t **key, const uint8_t **binding)
{
    CK_RV rv = tok_object_get(s, h, s1);
    if (rv == CKR_OBJECT_HANDLE_INVALID)
        return CKR_WRAPPING_KEY_HANDLE_INVALID;
    if (rv != CKR_OK)
        return rv;
    if (s1->cls != CKO_SECRET_KEY || s1->key_type != CKK_AES)
        return CKR_WRAPPING_KEY_TYPE_INCONSISTENT;
    const tok_attr *value = tok_attrs_find(s1->attrs, CKA_VALUE);
    const tok_attr *bound = tok_attrs_find(s1->attrs, CKA_VENDOR_SKS_INJECTION_AAD);
    /* Never sent to a card under a K1 (or a card's own S1, which has no value here). */
    if (s1->where != TOK_OBJ_SESSION || value == NULL || value->value == NULL || bound == NULL ||
        bound->len != 32)
        return CKR_WRAPPING_KEY_HANDLE_INVALID;
    if (value->len != S1_LEN)
        return CKR_WRAPPING_KEY_SIZE_RANGE;
    if (!tok_attrs_bool(s1->attrs, CKA_WRAP, CK_FALSE))
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    *key = value->value;
    *binding = bound->value;
    return CKR_OK;
}

/*
 * K2's KeyUsage, derived from its attributes as the card token derives the
 * new key's from C_UnwrapKey's template (C_GenerateKeyPair's rule,
 * tok_keypair.c): CKA_SIGN sign, CKA_DECRYPT or CKA_UNWRAP decrypt,
 * CKA_DERIVE key agreement. 0 when no card key could have it (none, or one
 * the key type cannot serve: RSA does not agree keys, EC does not decrypt).
 */
static uint8_t k2_usage(const tok_attrs *a, int rsa)
{
    uint8_t usage = 0;
    if (tok_attrs_bool(a, CKA_SIGN, CK_FALSE))
        usage |= SKS_USAGE_SIGN;
    if (tok_attrs_bool(a, CKA_DECRYPT, CK_FALSE) || tok_attrs_bool(a, CKA_UNWRAP, CK_FALSE))
        usage |= SKS_USAGE_DECRYPT;
    if (tok_attrs_bool(a, CKA_DERIVE, CK_FALSE))
        usage |= SKS_USAGE_KEY_AGREEMENT;
    uint8_t possible = SKS_USAGE_SIGN | (rsa ? SKS_USAGE_DECRYPT : SKS_USAGE_KEY_AGREEMENT);
    return (usage & ~possible) == 0 ? usage : 0;
}

/*
 * The AAD of a blob (docs/protocol.md 10.2): the binding (SHA-256 of K1's
 * SubjectPublicKeyInfo), the length of K2's CKA_ID as one byte, the ID,
 * K2's KeyUsage. Its length.
 */
static size_t blob_aad(const uint8_t binding[32], const tok_attr *id, uint8_t usage,
                       uint8_t aad[INJECT_AAD_MAX])
{
    memcpy(aad, binding, 32);
    aad[32] = (uint8_t)id->len; /* 1..SKS_ID_MAX (injected_key) */
    memcpy(aad + 33, id->value, id->len);
    aad[33 + id->len] = usage;
    return 33 + id->len + 1;
}

/*
 * K2: an extractable software private key of a kind the card takes, with
 * a CKA_ID the card can give the new key and a KeyUsage it can serve; its
 * PKCS#8, made once and kept with the object (tok_soft_cache.c).
 */
static CK_RV injected_key(tok_session *s, CK_OBJECT_HANDLE h, const tok_object *s1,
                          tok_soft_private_view *k2_view, const tok_attr **id, uint8_t *usage)
{
    tok_object k2;
    CK_RV rv = tok_object_get(s, h, &k2);
    if (rv == CKR_OBJECT_HANDLE_INVALID)
        return CKR_KEY_HANDLE_INVALID;
    if (rv != CKR_OK)
        return rv;
    if (k2.where != TOK_OBJ_SESSION || !tok_soft_is_private_key(k2.attrs))
        return CKR_KEY_NOT_WRAPPABLE;
    if (!tok_attrs_bool(k2.attrs, CKA_EXTRACTABLE, CK_FALSE))
        return CKR_KEY_UNEXTRACTABLE;
    if (tok_attrs_bool(k2.attrs, CKA_WRAP_WITH_TRUSTED, CK_FALSE) &&
        !tok_attrs_bool(s1->attrs, CKA_TRUSTED, CK_FALSE))
        return CKR_KEY_NOT_WRAPPABLE;
    /* The blob is bound to the new key's ID and KeyUsage: both must be ones the card takes. */
    *id = tok_attrs_find(k2.attrs, CKA_ID);
    *usage = k2_usage(k2.attrs, k2.key_type == CKK_RSA);
    if (*id == NULL || (*id)->len < 1 || (*id)->len > SKS_ID_MAX || *usage == 0)
        return CKR_KEY_NOT_WRAPPABLE;
    rv = tok_soft_cache_private(k2.sobj, k2_view);
    if (rv == CKR_OK && k2_view->alg == 0)
        rv = CKR_KEY_SIZE_RANGE; /* the card takes RSA 2048/3072/4096, EC P-256/P-384 */
    return rv;
}

static CK_RV wrap_inject(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE s1_handle,
                         CK_OBJECT_HANDLE k2_handle, uint8_t *out, CK_ULONG *out_len)
{
    tok_object s1;
    tok_soft_private_view k2;
    const uint8_t *key = NULL, *binding = NULL;
    const tok_attr *id = NULL;
    uint8_t usage = 0;
    int query = 0;
    if (m->pParameter == NULL || m->ulParameterLen != sizeof(CK_SKS_INJECT_PARAMS))
        return CKR_MECHANISM_PARAM_INVALID;
    CK_SKS_INJECT_PARAMS *p = m->pParameter;
    CK_RV rv = bound_session_key(s, s1_handle, &s1, &key, &binding);
    if (rv == CKR_OK)
        rv = injected_key(s, k2_handle, &s1, &k2, &id, &usage);
    if (rv == CKR_OK)
        rv = tok_out_check(out, out_len, k2.len + TOK_GCM_TAG_LEN, &query);
    if (rv == CKR_OK && !query) {
        uint8_t iv[TOK_GCM_IV_LEN], aad[INJECT_AAD_MAX];
        size_t aad_len = blob_aad(binding, id, usage, aad);
        rv = tok_ossl_random(iv, sizeof(iv)) == 0 ? CKR_OK : CKR_FUNCTION_FAILED;
        if (rv == CKR_OK)
            rv = tok_soft_gcm_seal(key, iv, aad, aad_len, k2.der, k2.len, out);
        if (rv == CKR_OK)
            memcpy(p->iv, iv, sizeof(iv));
        else
            *out_len = 0;
    }
    return rv;
}

CK_RV tok_inject_wrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                      CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, uint8_t *out,
                      CK_ULONG *out_len)
{
    /* A card token unwraps with these mechanisms; only the issuer token wraps. */
    if (slot->kind != TOK_SLOT_ISSUER)
        return CKR_MECHANISM_INVALID;
    switch (m->mechanism) {
    case CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP:
        return wrap_rsa_oaep(s, slot, m, wrapping_key, key, out, out_len);
    case CKM_VENDOR_SKS_SESSION_KEY_ECDH:
        return wrap_ecdh(s, slot, m, wrapping_key, key, out, out_len);
    case CKM_VENDOR_SKS_INJECT_KEY:
        return wrap_inject(s, m, wrapping_key, key, out, out_len);
    default:
        return CKR_MECHANISM_INVALID;
    }
}
