/*
 * tok_pkey.c - public keys and certificates translated between OpenSSL
 * objects and PKCS#11 attributes: RSA modulus/exponent, EC parameters and
 * points (CKA_EC_POINT is a DER OCTET STRING around the uncompressed point),
 * CKA_PUBLIC_KEY_INFO, and the attributes an X.509 certificate implies.
 * Every key and certificate is made in the module's own library context
 * (tok_ossl.h), never through an application's default engine or providers.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "token/tok.h"
#include "token/tok_ossl.h"

/* The named curves the card supports, with their DER OIDs (CKA_EC_PARAMS). */
static const struct {
    const char *group;
    uint8_t der[10];
    size_t len;
} curves[] = {
    {SN_X9_62_prime256v1, {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07}, 10},
    {SN_secp384r1, {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22}, 7},
    {SN_secp521r1, {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23}, 7},
};

const char *tok_ec_group_name(const uint8_t *params, size_t len)
{
    for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
        if (len == curves[i].len && memcmp(params, curves[i].der, len) == 0)
            return curves[i].group;
    }
    return NULL;
}

static CK_RV set_bn(tok_attrs *a, CK_ATTRIBUTE_TYPE type, EVP_PKEY *pk, const char *name)
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(pk, name, &bn))
        return CKR_GENERAL_ERROR;
    int n = BN_num_bytes(bn);
    uint8_t *buf = n > 0 ? OPENSSL_malloc((size_t)n) : NULL;
    CK_RV rv = buf == NULL ? CKR_HOST_MEMORY : CKR_GENERAL_ERROR;
    if (buf != NULL && BN_bn2bin(bn, buf) == n)
        rv = tok_attrs_set(a, type, buf, (CK_ULONG)n);
    OPENSSL_free(buf);
    BN_free(bn);
    return rv;
}

/* CKA_EC_POINT: the DER OCTET STRING around the encoded point. */
static CK_RV set_octet_string(tok_attrs *a, CK_ATTRIBUTE_TYPE type, const uint8_t *p, size_t n)
{
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    unsigned char *der = NULL;
    CK_RV rv = CKR_HOST_MEMORY;
    if (os != NULL && ASN1_OCTET_STRING_set(os, p, (int)n)) {
        int len = i2d_ASN1_OCTET_STRING(os, &der);
        if (len > 0)
            rv = tok_attrs_set(a, type, der, (CK_ULONG)len);
    }
    OPENSSL_free(der);
    ASN1_OCTET_STRING_free(os);
    return rv;
}

CK_RV tok_pkey_attrs(EVP_PKEY *pk, CK_OBJECT_CLASS cls, tok_attrs *a)
{
    CK_RV rv;
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(pk, &spki);
    if (spki_len <= 0)
        return CKR_GENERAL_ERROR;
    rv = tok_attrs_set(a, CKA_PUBLIC_KEY_INFO, spki, (CK_ULONG)spki_len);
    OPENSSL_free(spki);
    if (rv != CKR_OK)
        return rv;
    if (EVP_PKEY_is_a(pk, "RSA")) {
        if ((rv = tok_attrs_set_ulong(a, CKA_KEY_TYPE, CKK_RSA)) != CKR_OK ||
            (rv = set_bn(a, CKA_MODULUS, pk, OSSL_PKEY_PARAM_RSA_N)) != CKR_OK ||
            (rv = set_bn(a, CKA_PUBLIC_EXPONENT, pk, OSSL_PKEY_PARAM_RSA_E)) != CKR_OK)
            return rv;
        return tok_attrs_set_ulong(a, CKA_MODULUS_BITS, (CK_ULONG)EVP_PKEY_get_bits(pk));
    }
    if (!EVP_PKEY_is_a(pk, "EC"))
        return CKR_KEY_TYPE_INCONSISTENT;
    char group[64];
    if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL))
        return CKR_KEY_TYPE_INCONSISTENT;
    int nid = OBJ_sn2nid(group);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(group);
    unsigned char *oid = NULL;
    int oid_len = nid != NID_undef ? i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &oid) : -1;
    if (oid_len <= 0)
        return CKR_KEY_TYPE_INCONSISTENT;
    rv = tok_attrs_set_ulong(a, CKA_KEY_TYPE, CKK_EC);
    if (rv == CKR_OK)
        rv = tok_attrs_set(a, CKA_EC_PARAMS, oid, (CK_ULONG)oid_len);
    OPENSSL_free(oid);
    if (rv != CKR_OK || cls != CKO_PUBLIC_KEY)
        return rv;
    uint8_t point[160];
    size_t point_len = 0;
    if (!EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         sizeof(point), &point_len))
        return CKR_GENERAL_ERROR;
    return set_octet_string(a, CKA_EC_POINT, point, point_len);
}

/* The raw point inside CKA_EC_POINT: a DER OCTET STRING, or (leniently) the bare point. */
static int ec_point_raw(const tok_attr *e, uint8_t *buf, size_t cap, size_t *n)
{
    const unsigned char *in = e->value;
    ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &in, (long)e->len);
    const uint8_t *src = e->value;
    size_t len = e->len;
    if (os != NULL && in == e->value + e->len) {
        src = ASN1_STRING_get0_data(os);
        len = (size_t)ASN1_STRING_length(os);
    }
    int ok = len <= cap;
    if (ok)
        memcpy(buf, src, len);
    *n = len;
    ASN1_OCTET_STRING_free(os);
    return ok ? 0 : -1;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = tok_ossl_pkey_ctx(type);
    if (params != NULL && ctx != NULL && EVP_PKEY_fromdata_init(ctx) > 0)
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

EVP_PKEY *tok_pkey_from_attrs(const tok_attrs *a)
{
    const tok_attr *spki = tok_attrs_find(a, CKA_PUBLIC_KEY_INFO);
    if (spki != NULL && spki->len > 0)
        return tok_ossl_spki(spki->value, spki->len);
    CK_ULONG kt;
    if (!tok_attrs_get_ulong(a, CKA_KEY_TYPE, &kt))
        return NULL;
    EVP_PKEY *pk = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld == NULL)
        return NULL;
    if (kt == CKK_RSA) {
        const tok_attr *n = tok_attrs_find(a, CKA_MODULUS);
        const tok_attr *e = tok_attrs_find(a, CKA_PUBLIC_EXPONENT);
        BIGNUM *bn = n && n->len ? BN_bin2bn(n->value, (int)n->len, NULL) : NULL;
        BIGNUM *be = e && e->len ? BN_bin2bn(e->value, (int)e->len, NULL) : NULL;
        if (bn != NULL && be != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
            pk = from_params("RSA", bld);
        BN_free(bn);
        BN_free(be);
    } else if (kt == CKK_EC) {
        const tok_attr *params = tok_attrs_find(a, CKA_EC_PARAMS);
        const tok_attr *point = tok_attrs_find(a, CKA_EC_POINT);
        const char *group = params ? tok_ec_group_name(params->value, params->len) : NULL;
        uint8_t raw[160];
        size_t raw_len;
        if (group != NULL && point != NULL && point->len > 0 &&
            ec_point_raw(point, raw, sizeof(raw), &raw_len) == 0 &&
            OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, raw, raw_len))
            pk = from_params("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    return pk;
}

/* CK_DATE (YYYYMMDD) from an ASN1_TIME. */
static CK_RV set_date(tok_attrs *a, CK_ATTRIBUTE_TYPE type, const ASN1_TIME *t, int only_missing)
{
    if (only_missing && tok_attrs_find(a, type) != NULL)
        return CKR_OK;
    struct tm tm;
    char buf[16];
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm) || tm.tm_year + 1900 > 9999 ||
        snprintf(buf, sizeof(buf), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) !=
            8)
        return tok_attrs_set(a, type, NULL, 0);
    return tok_attrs_set(a, type, buf, 8);
}

/* Set DER produced by an i2d call (len <= 0: failure). */
static CK_RV set_der(tok_attrs *a, CK_ATTRIBUTE_TYPE type, unsigned char *der, int len,
                     int only_missing)
{
    CK_RV rv = CKR_GENERAL_ERROR;
    if (only_missing && tok_attrs_find(a, type) != NULL)
        rv = CKR_OK;
    else if (len > 0)
        rv = tok_attrs_set(a, type, der, (CK_ULONG)len);
    OPENSSL_free(der);
    return rv;
}

CK_RV tok_cert_attrs(const uint8_t *der, size_t len, tok_attrs *a, int only_missing)
{
    X509 *x = tok_ossl_cert(der, len);
    if (x == NULL)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_RV rv;
    unsigned char *out = NULL;
    int n = i2d_X509_NAME(X509_get_subject_name(x), &out);
    rv = set_der(a, CKA_SUBJECT, out, n, only_missing);
    if (rv == CKR_OK) {
        out = NULL;
        n = i2d_X509_NAME(X509_get_issuer_name(x), &out);
        rv = set_der(a, CKA_ISSUER, out, n, only_missing);
    }
    if (rv == CKR_OK) {
        out = NULL;
        n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &out);
        rv = set_der(a, CKA_SERIAL_NUMBER, out, n, only_missing);
    }
    if (rv == CKR_OK) {
        out = NULL;
        n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &out);
        rv = set_der(a, CKA_PUBLIC_KEY_INFO, out, n, only_missing);
    }
    if (rv == CKR_OK && !(only_missing && tok_attrs_find(a, CKA_CHECK_VALUE) != NULL)) {
        uint8_t sha1[SHA_DIGEST_LENGTH];
        unsigned int md_len = 0;
        const EVP_MD *md = tok_ossl_md("SHA1");
        rv = md != NULL && EVP_Digest(der, len, sha1, &md_len, md, NULL)
                 ? tok_attrs_set(a, CKA_CHECK_VALUE, sha1, 3)
                 : CKR_GENERAL_ERROR;
    }
    if (rv == CKR_OK)
        rv = set_date(a, CKA_START_DATE, X509_get0_notBefore(x), only_missing);
    if (rv == CKR_OK)
        rv = set_date(a, CKA_END_DATE, X509_get0_notAfter(x), only_missing);
    X509_free(x);
    return rv;
}

void tok_cert_common_name(const uint8_t *der, size_t len, char *buf, size_t cap)
{
    buf[0] = '\0';
    X509 *x = tok_ossl_cert(der, len);
    if (x == NULL)
        return;
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)cap);
    if (n < 0)
        buf[0] = '\0';
    X509_free(x);
}

int tok_cert_key_id(const uint8_t *der, size_t len, uint8_t id[20])
{
    X509 *x = tok_ossl_cert(der, len);
    const EVP_MD *md = tok_ossl_md("SHA1");
    unsigned int n = 0;
    int ok = x != NULL && md != NULL && X509_pubkey_digest(x, md, id, &n) && n == 20;
    X509_free(x);
    return ok ? 0 : -1;
}
