/*
 * test-token-issuer-util.c - helpers for the tests of no-card mode
 * (test-token-issuer-util.h).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>

#include "test-token-issuer-util.h"

const CK_BBOOL ti_yes = CK_TRUE, ti_no = CK_FALSE;
/* 1.2.840.10045.3.1.7 and 1.3.132.0.34 in DER (openssl asn1parse of `openssl ecparam -name`). */
const unsigned char ti_p256_oid[10] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
const unsigned char ti_p384_oid[7] = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22};

void ti_open(ti_ctx *c)
{
    memset(c, 0, sizeof(*c));
    tt_env_init(&c->env, "transport = none");
    c->f = tt_init();
    CK_SLOT_ID ids[4];
    CK_ULONG n;
    tt_slots(c->f, ids, 4, &n);
    ck_assert_uint_eq(n, 1);
    c->slot = ids[0];
}

static void login_user(ti_ctx *c)
{
    c->s = tt_open(c->f, c->slot);
    TT_OK(c->f->C_Login(c->s, CKU_USER, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)));
}

void ti_start(ti_ctx *c)
{
    ti_open(c);
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, "SKS issuer", 10);
    TT_OK(c->f->C_InitToken(c->slot, TI_U(TI_SO_PIN), strlen(TI_SO_PIN), label));
    CK_SESSION_HANDLE so = tt_open(c->f, c->slot);
    TT_OK(c->f->C_Login(so, CKU_SO, TI_U(TI_SO_PIN), strlen(TI_SO_PIN)));
    TT_OK(c->f->C_InitPIN(so, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)));
    TT_OK(c->f->C_CloseSession(so));
    login_user(c);
}

void ti_restart(ti_ctx *c)
{
    TT_OK(c->f->C_Finalize(NULL));
    TT_OK(c->f->C_Initialize(NULL));
    login_user(c);
}

void ti_finish(ti_ctx *c)
{
    TT_OK(c->f->C_Finalize(NULL));
    tt_env_free(&c->env);
}

unsigned char *ti_attr(ti_ctx *c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, size_t *len)
{
    CK_ULONG n;
    unsigned char *v = tt_get_value(c->f, c->s, h, type, &n);
    *len = n;
    return v;
}

CK_BBOOL ti_bool(ti_ctx *c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type)
{
    return tt_get_bool(c->f, c->s, h, type);
}

CK_OBJECT_HANDLE ti_find_one(ti_ctx *c, CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_OBJECT_HANDLE h[4];
    ck_assert_uint_eq(tt_find(c->f, c->s, t, n, h, 4), 1);
    return h[0];
}

EVP_PKEY *ti_public_key(ti_ctx *c, CK_OBJECT_HANDLE h)
{
    size_t len;
    unsigned char *spki = ti_attr(c, h, CKA_PUBLIC_KEY_INFO, &len);
    const unsigned char *p = spki;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)len);
    ck_assert_ptr_nonnull(pk);
    free(spki);
    return pk;
}

void ti_rsa_pair(ti_ctx *c, CK_ULONG bits, CK_BBOOL token, CK_BBOOL extractable, const char *id,
                 CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM m = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, (void *)&token, 1},
                         {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                         {CKA_ID, (void *)id, strlen(id)},
                         {CKA_ENCRYPT, (void *)&ti_yes, 1},
                         {CKA_VERIFY, (void *)&ti_yes, 1}};
    CK_ATTRIBUTE kt[] = {
        {CKA_TOKEN, (void *)&token, 1},   {CKA_EXTRACTABLE, (void *)&extractable, 1},
        {CKA_ID, (void *)id, strlen(id)}, {CKA_LABEL, (void *)"rsa key", 7},
        {CKA_SIGN, (void *)&ti_yes, 1},   {CKA_DECRYPT, (void *)&ti_yes, 1},
        {CKA_UNWRAP, (void *)&ti_yes, 1}};
    TT_OK(c->f->C_GenerateKeyPair(c->s, &m, pt, 5, kt, 7, pub, priv));
}

void ti_ec_pair(ti_ctx *c, int p384, CK_BBOOL token, CK_BBOOL extractable, const char *id,
                CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_TOKEN, (void *)&token, 1},
                         {CKA_EC_PARAMS, (void *)(p384 ? ti_p384_oid : ti_p256_oid),
                          p384 ? sizeof(ti_p384_oid) : sizeof(ti_p256_oid)},
                         {CKA_ID, (void *)id, strlen(id)}};
    CK_ATTRIBUTE kt[] = {
        {CKA_TOKEN, (void *)&token, 1},   {CKA_EXTRACTABLE, (void *)&extractable, 1},
        {CKA_ID, (void *)id, strlen(id)}, {CKA_LABEL, (void *)"ec key", 6},
        {CKA_SIGN, (void *)&ti_yes, 1},   {CKA_DERIVE, (void *)&ti_yes, 1}};
    TT_OK(c->f->C_GenerateKeyPair(c->s, &m, pt, 3, kt, 6, pub, priv));
}

/* A BIGNUM parameter of a key as big-endian bytes (*len set). */
static unsigned char *bn_param(EVP_PKEY *pk, const char *name, size_t *len)
{
    BIGNUM *bn = NULL;
    ck_assert(EVP_PKEY_get_bn_param(pk, name, &bn));
    *len = (size_t)BN_num_bytes(bn);
    unsigned char *buf = malloc(*len + 1);
    BN_bn2bin(bn, buf);
    BN_free(bn);
    return buf;
}

CK_OBJECT_HANDLE ti_public_key_object(ti_ctx *c, EVP_PKEY *pk, CK_BBOOL wrap)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_OBJECT_HANDLE h;
    if (EVP_PKEY_is_a(pk, "RSA")) {
        CK_KEY_TYPE kt = CKK_RSA;
        size_t nl, el;
        unsigned char *n = bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &nl);
        unsigned char *e = bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &el);
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                            {CKA_KEY_TYPE, &kt, sizeof(kt)},
                            {CKA_MODULUS, n, nl},
                            {CKA_PUBLIC_EXPONENT, e, el},
                            {CKA_WRAP, (void *)&wrap, 1}};
        TT_OK(c->f->C_CreateObject(c->s, t, 5, &h));
        free(n);
        free(e);
        return h;
    }
    CK_KEY_TYPE kt = CKK_EC;
    unsigned char point[200], os[210];
    size_t plen = 0;
    ck_assert(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                              sizeof(point), &plen));
    ck_assert_uint_lt(plen, 128);
    os[0] = 0x04; /* CKA_EC_POINT: DER OCTET STRING around the point */
    os[1] = (unsigned char)plen;
    memcpy(os + 2, point, plen);
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &kt, sizeof(kt)},
                        {CKA_EC_PARAMS, (void *)ti_p256_oid, sizeof(ti_p256_oid)},
                        {CKA_EC_POINT, os, plen + 2},
                        {CKA_WRAP, (void *)&wrap, 1}};
    TT_OK(c->f->C_CreateObject(c->s, t, 5, &h));
    return h;
}

CK_OBJECT_HANDLE ti_aes_key(ti_ctx *c, const unsigned char *value, size_t len, CK_BBOOL extractable,
                            CK_BBOOL sensitive)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},         {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE, (void *)value, len},        {CKA_EXTRACTABLE, (void *)&extractable, 1},
        {CKA_SENSITIVE, (void *)&sensitive, 1}, {CKA_WRAP, (void *)&ti_yes, 1},
        {CKA_UNWRAP, (void *)&ti_yes, 1}};
    TT_OK(c->f->C_CreateObject(c->s, t, 7, &h));
    return h;
}

EVP_PKEY *ti_openssl_rsa(int bits)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    ck_assert_ptr_nonnull(pk);
    return pk;
}

EVP_PKEY *ti_openssl_p256(void)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(pk);
    return pk;
}
