/*
 * tok_soft_key.c - software private keys as PKCS#11 attributes and back
 * (tok_soft.h). A software RSA key object holds every component of the
 * standard's table (CKA_MODULUS .. CKA_COEFFICIENT), an EC key object
 * CKA_EC_PARAMS and CKA_VALUE; both also hold CKA_PUBLIC_KEY_INFO, from
 * which the EC public point is taken. Keys are made in the module's own
 * library context (tok_ossl.h); every BIGNUM and buffer that held a private
 * value is cleared before it is freed.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/param_build.h>

#include "protocol/sks_keys.h"
#include "protocol/sks_proto.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

#define BN_MAX_BYTES 1024 /* the largest component accepted from attributes */

const tok_soft_rsa_part tok_soft_rsa_parts[TOK_SOFT_RSA_PARTS] = {
    {CKA_MODULUS, OSSL_PKEY_PARAM_RSA_N},
    {CKA_PUBLIC_EXPONENT, OSSL_PKEY_PARAM_RSA_E},
    {CKA_PRIVATE_EXPONENT, OSSL_PKEY_PARAM_RSA_D},
    {CKA_PRIME_1, OSSL_PKEY_PARAM_RSA_FACTOR1},
    {CKA_PRIME_2, OSSL_PKEY_PARAM_RSA_FACTOR2},
    {CKA_EXPONENT_1, OSSL_PKEY_PARAM_RSA_EXPONENT1},
    {CKA_EXPONENT_2, OSSL_PKEY_PARAM_RSA_EXPONENT2},
    {CKA_COEFFICIENT, OSSL_PKEY_PARAM_RSA_COEFFICIENT1},
};

int tok_soft_is_private_key(const tok_attrs *a)
{
    CK_ULONG cls, kt;
    if (a == NULL || !tok_attrs_get_ulong(a, CKA_CLASS, &cls) || cls != CKO_PRIVATE_KEY ||
        !tok_attrs_get_ulong(a, CKA_KEY_TYPE, &kt))
        return 0;
    const tok_attr *secret = kt == CKK_RSA  ? tok_attrs_find(a, CKA_PRIVATE_EXPONENT)
                             : kt == CKK_EC ? tok_attrs_find(a, CKA_VALUE)
                                            : NULL;
    return secret != NULL && secret->len > 0;
}

EVP_PKEY *tok_soft_keypair_from(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = tok_ossl_pkey_ctx(type);
    EVP_PKEY *key = NULL;
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params); /* secure BIGNUMs were copied into cleared memory */
    return key;
}

int tok_soft_push_bn(OSSL_PARAM_BLD *bld, const char *name, const void *value, size_t len,
                     BIGNUM **keep)
{
    if (value == NULL || len == 0 || len > BN_MAX_BYTES)
        return 0;
    *keep = BN_secure_new();
    return *keep != NULL && BN_bin2bn(value, (int)len, *keep) != NULL &&
           OSSL_PARAM_BLD_push_BN(bld, name, *keep) == 1;
}

/* Push an attribute's value as a BIGNUM (kept in *bn until the build is done). */
static int push_attr_bn(OSSL_PARAM_BLD *bld, const char *name, const tok_attr *e, BIGNUM **bn)
{
    return e != NULL && tok_soft_push_bn(bld, name, e->value, e->len, bn);
}

static EVP_PKEY *rsa_key(const tok_attrs *a)
{
    BIGNUM *bn[TOK_SOFT_RSA_PARTS] = {0};
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    int ok = bld != NULL;
    for (size_t i = 0; ok && i < TOK_SOFT_RSA_PARTS; i++)
        ok = push_attr_bn(bld, tok_soft_rsa_parts[i].name,
                          tok_attrs_find(a, tok_soft_rsa_parts[i].type), &bn[i]);
    EVP_PKEY *key = ok ? tok_soft_keypair_from("RSA", bld) : NULL;
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < TOK_SOFT_RSA_PARTS; i++)
        BN_clear_free(bn[i]);
    return key;
}

/* The encoded public point of a SubjectPublicKeyInfo attribute, into buf. 0 or -1. */
static int spki_point(const tok_attr *spki, uint8_t *buf, size_t cap, size_t *len)
{
    EVP_PKEY *pub = spki != NULL ? tok_ossl_spki(spki->value, spki->len) : NULL;
    int ok = pub != NULL && EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                            buf, cap, len) == 1;
    EVP_PKEY_free(pub);
    return ok ? 0 : -1;
}

static EVP_PKEY *ec_key(const tok_attrs *a)
{
    const tok_attr *params = tok_attrs_find(a, CKA_EC_PARAMS);
    const char *group = params != NULL ? tok_ec_group_name(params->value, params->len) : NULL;
    uint8_t point[1 + 2 * 66];
    size_t point_len = 0;
    if (group == NULL ||
        spki_point(tok_attrs_find(a, CKA_PUBLIC_KEY_INFO), point, sizeof(point), &point_len) != 0)
        return NULL;
    BIGNUM *d = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    int ok = bld != NULL &&
             push_attr_bn(bld, OSSL_PKEY_PARAM_PRIV_KEY, tok_attrs_find(a, CKA_VALUE), &d) &&
             OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
             OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len) == 1;
    EVP_PKEY *key = ok ? tok_soft_keypair_from("EC", bld) : NULL;
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return key;
}

EVP_PKEY *tok_soft_private_key(const tok_attrs *a)
{
    CK_ULONG kt;
    if (!tok_soft_is_private_key(a) || !tok_attrs_get_ulong(a, CKA_KEY_TYPE, &kt))
        return NULL;
    return kt == CKK_RSA ? rsa_key(a) : ec_key(a);
}

/* Set a key parameter as a big-endian attribute, `width` bytes (0: minimal). */
static CK_RV set_param_bn(tok_attrs *a, CK_ATTRIBUTE_TYPE type, EVP_PKEY *pk, const char *name,
                          size_t width)
{
    BIGNUM *bn = NULL;
    uint8_t buf[BN_MAX_BYTES];
    if (EVP_PKEY_get_bn_param(pk, name, &bn) != 1)
        return CKR_FUNCTION_FAILED;
    size_t n = width != 0 ? width : (size_t)BN_num_bytes(bn);
    CK_RV rv = CKR_FUNCTION_FAILED;
    if (n > 0 && n <= sizeof(buf) && BN_bn2binpad(bn, buf, (int)n) == (int)n)
        rv = tok_attrs_set(a, type, buf, (CK_ULONG)n);
    OPENSSL_cleanse(buf, sizeof(buf));
    BN_clear_free(bn);
    return rv;
}

CK_RV tok_soft_key_attrs(EVP_PKEY *pk, tok_attrs *a)
{
    uint8_t alg = sks_key_algorithm(pk);
    int rsa = EVP_PKEY_is_a(pk, "RSA");
    /* Any RSA size; EC only on the curves the module knows by OID. */
    if (!rsa && alg == 0)
        return CKR_KEY_TYPE_INCONSISTENT;
    CK_RV rv = tok_pkey_attrs(pk, CKO_PRIVATE_KEY, a);
    if (rv != CKR_OK)
        return rv;
    tok_attrs_remove(a, CKA_MODULUS_BITS); /* a public key attribute only */
    if (rsa) {
        for (size_t i = 2; rv == CKR_OK && i < TOK_SOFT_RSA_PARTS; i++)
            rv = set_param_bn(a, tok_soft_rsa_parts[i].type, pk, tok_soft_rsa_parts[i].name, 0);
        return rv;
    }
    size_t order_bytes = alg == SKS_KEYALG_EC_P256 ? 32 : 48;
    return set_param_bn(a, CKA_VALUE, pk, OSSL_PKEY_PARAM_PRIV_KEY, order_bytes);
}

EVP_PKEY *tok_soft_from_pkcs8(const uint8_t *der, size_t len)
{
    EVP_PKEY *pk = NULL;
    OSSL_DECODER_CTX *ctx = OSSL_DECODER_CTX_new_for_pkey(&pk, "DER", "PrivateKeyInfo", NULL,
                                                          EVP_PKEY_KEYPAIR, tok_ossl_ctx(), NULL);
    const unsigned char *p = der;
    size_t left = len;
    /* A key followed by anything else is not a PrivateKeyInfo. */
    if (ctx == NULL || OSSL_DECODER_from_data(ctx, &p, &left) != 1 || left != 0) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    OSSL_DECODER_CTX_free(ctx);
    return pk;
}
