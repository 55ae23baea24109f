/*
 * test-token-issuer-inject.c - the issuer's side of secure key injection on
 * the issuer token (no-card mode), checked the way a card would read it,
 * with OpenSSL in the test's own library context:
 *   - CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP: the test decrypts the wrapped S1
 *     with K1's private key (RSAES-OAEP, SHA-256, MGF1-SHA-256, no label);
 *   - CKM_VENDOR_SKS_SESSION_KEY_ECDH: the test recomputes Z with K1's
 *     private key and the returned point, and S1 = HMAC-SHA256(Z,
 *     "SKS session key");
 *   - CKM_VENDOR_SKS_INJECT_KEY: the test opens AES-256-GCM with the S1 it
 *     knows, the returned IV and aad = SHA-256(K1's SubjectPublicKeyInfo) |
 *     len(ID) | ID | KeyUsage (docs/protocol.md 10.2, built here from K2's
 *     CKA_ID and usage attributes), and compares the PKCS#8 with K2;
 * and the refusals: wrong key types and sizes, an S1 never sent to a card,
 * an unextractable K2, a K2 without an ID or usage the card can take,
 * buffers too small (with the size needed), the mechanisms on a card token.
 * What the issuer token keeps between blobs must follow the objects: a K2
 * or K1 destroyed and made again from another key, even under the same
 * handle after C_Finalize, gives blobs of the new key.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "test-token-issuer-util.h"

static const unsigned char s1_value[32] = {
    0x53, 0x31, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d,
    0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d};

/* SHA-256 of a key's SubjectPublicKeyInfo, computed here. */
static void spki_hash(EVP_PKEY *pk, unsigned char out[32])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pk, &der);
    ck_assert_int_gt(len, 0);
    unsigned int n = 0;
    ck_assert(EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL));
    OPENSSL_free(der);
}

/* The largest AAD: the SPKI digest, the ID's length, a 32-byte ID, KeyUsage. */
#define AAD_MAX (32 + 1 + 32 + 1)

/*
 * The AAD a card uses for a blob (docs/protocol.md 10.2): SHA-256 of K1's
 * SubjectPublicKeyInfo, the ID's length as one byte, the ID, the KeyUsage
 * byte (1 sign, 2 decrypt, 4 key agreement). Its length.
 */
static size_t card_aad(EVP_PKEY *k1, const char *id, unsigned char usage,
                       unsigned char aad[AAD_MAX])
{
    size_t id_len = strlen(id);
    ck_assert(id_len >= 1 && id_len <= 32);
    spki_hash(k1, aad);
    aad[32] = (unsigned char)id_len;
    memcpy(aad + 33, id, id_len);
    aad[33 + id_len] = usage;
    return 33 + id_len + 1;
}

/* Open an injection blob (ciphertext | tag) with S1, the IV and the AAD: the PKCS#8. */
static unsigned char *open_blob(const unsigned char s1[32], const unsigned char iv[12],
                                const unsigned char *aad, size_t aad_len, const unsigned char *blob,
                                size_t len, int *out_len)
{
    ck_assert_uint_gt(len, 16);
    unsigned char *pt = malloc(len);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    ck_assert_int_eq(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s1, iv), 1);
    ck_assert_int_eq(EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len), 1);
    ck_assert_int_eq(EVP_DecryptUpdate(ctx, pt, &n, blob, (int)len - 16), 1);
    ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(blob + len - 16)),
                     1);
    ck_assert_int_eq(EVP_DecryptFinal_ex(ctx, pt + n, &fin), 1);
    EVP_CIPHER_CTX_free(ctx);
    *out_len = n + fin;
    return pt;
}

/* Does the blob open with this AAD? (The tag decides; nothing is returned.) */
static int blob_opens(const unsigned char s1[32], const unsigned char iv[12],
                      const unsigned char *aad, size_t aad_len, const unsigned char *blob,
                      size_t len)
{
    unsigned char *junk = malloc(len);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0;
    ck_assert_int_eq(EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, s1, iv), 1);
    ck_assert_int_eq(EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len), 1);
    ck_assert_int_eq(EVP_DecryptUpdate(ctx, junk, &n, blob, (int)len - 16), 1);
    ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(blob + len - 16)),
                     1);
    int ok = EVP_DecryptFinal_ex(ctx, junk + n, &n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    free(junk);
    return ok;
}

/* RSAES-OAEP (SHA-256, MGF1-SHA-256, no label) decryption with K1's private key: S1. */
static void oaep_decrypt(EVP_PKEY *k1, const unsigned char *wrapped, size_t len,
                         unsigned char s1[32])
{
    unsigned char plain[512];
    size_t plain_len = sizeof(plain);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k1, NULL);
    ck_assert_int_eq(EVP_PKEY_decrypt_init(ctx), 1);
    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING);
    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256());
    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256());
    ck_assert_int_eq(EVP_PKEY_decrypt(ctx, plain, &plain_len, wrapped, len), 1);
    EVP_PKEY_CTX_free(ctx);
    ck_assert_uint_eq(plain_len, 32);
    memcpy(s1, plain, 32);
}

/*
 * A session K2 made by C_CreateObject from an OpenSSL RSA key (all
 * components), CKA_SIGN true, with CKA_ID `id` unless NULL.
 */
static CK_OBJECT_HANDLE rsa_k2(ti_ctx *c, EVP_PKEY *pk, CK_BBOOL extractable, const char *id)
{
    static const char *const names[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    static const CK_ATTRIBUTE_TYPE types[] = {
        CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
        CKA_PRIME_2, CKA_EXPONENT_1,      CKA_EXPONENT_2,       CKA_COEFFICIENT};
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_ATTRIBUTE t[13] = {{CKA_CLASS, &cls, sizeof(cls)},
                          {CKA_KEY_TYPE, &kt, sizeof(kt)},
                          {CKA_EXTRACTABLE, &extractable, 1},
                          {CKA_SIGN, (void *)&ti_yes, 1}};
    unsigned char *bufs[8];
    for (int i = 0; i < 8; i++) {
        BIGNUM *bn = NULL;
        ck_assert(EVP_PKEY_get_bn_param(pk, names[i], &bn));
        bufs[i] = malloc((size_t)BN_num_bytes(bn));
        t[4 + i] = (CK_ATTRIBUTE){types[i], bufs[i], (CK_ULONG)BN_bn2bin(bn, bufs[i])};
        BN_clear_free(bn);
    }
    CK_ULONG n = 12;
    if (id != NULL)
        t[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, strlen(id)};
    CK_OBJECT_HANDLE h;
    TT_OK(c->f->C_CreateObject(c->s, t, n, &h));
    for (int i = 0; i < 8; i++)
        free(bufs[i]);
    return h;
}

START_TEST(t_rsa_oaep_and_inject)
{
    ti_ctx c;
    ti_start(&c);
    EVP_PKEY *k1 = ti_openssl_rsa(2048);
    CK_OBJECT_HANDLE k1_obj = ti_public_key_object(&c, k1, CK_TRUE);
    CK_OBJECT_HANDLE s1 = ti_aes_key(&c, s1_value, 32, CK_TRUE, CK_TRUE);
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, NULL, 0};

    /* The two-call convention: the modulus size, then the wrapped S1. */
    unsigned char wrapped[512];
    CK_ULONG len = 0;
    TT_OK(c.f->C_WrapKey(c.s, &m, k1_obj, s1, NULL, &len));
    ck_assert_uint_eq(len, 256);
    len = 255;
    TT_RV(c.f->C_WrapKey(c.s, &m, k1_obj, s1, wrapped, &len), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 256);
    len = sizeof(wrapped);
    TT_OK(c.f->C_WrapKey(c.s, &m, k1_obj, s1, wrapped, &len));
    ck_assert_uint_eq(len, 256);

    /* What the card does with K1. */
    unsigned char plain[32];
    oaep_decrypt(k1, wrapped, len, plain);
    ck_assert_mem_eq(plain, s1_value, 32);

    /* S1 is bound to K1 now: the AAD is SHA-256 of K1's SPKI; no other use, no second card. */
    unsigned char aad[32];
    spki_hash(k1, aad);
    size_t alen;
    unsigned char *binding = ti_attr(&c, s1, CKA_VENDOR_SKS_INJECTION_AAD, &alen);
    ck_assert_uint_eq(alen, 32);
    ck_assert_mem_eq(binding, aad, 32);
    free(binding);
    ck_assert(ti_bool(&c, s1, CKA_VENDOR_SKS_INJECTION_ONLY));
    len = sizeof(wrapped);
    TT_RV(c.f->C_WrapKey(c.s, &m, k1_obj, s1, wrapped, &len), CKR_KEY_NOT_WRAPPABLE);
    CK_MECHANISM gcm_m = {CKM_AES_ECB, NULL, 0};
    TT_RV(c.f->C_EncryptInit(c.s, &gcm_m, s1), CKR_KEY_FUNCTION_NOT_PERMITTED);

    /*
     * K2 from known components, ID "k2-rsa", CKA_SIGN only: the blob opens
     * with aad = binding | 6 | "k2-rsa" | 0x01 to K2's own PKCS#8, byte for byte.
     */
    EVP_PKEY *k2 = ti_openssl_rsa(2048);
    CK_OBJECT_HANDLE k2_obj = rsa_k2(&c, k2, CK_TRUE, "k2-rsa");
    CK_SKS_INJECT_PARAMS ip;
    memset(&ip, 0, sizeof(ip));
    CK_MECHANISM im = {CKM_VENDOR_SKS_INJECT_KEY, &ip, sizeof(ip)};
    unsigned char blob[4096];
    CK_ULONG blob_len = 0;
    TT_OK(c.f->C_WrapKey(c.s, &im, s1, k2_obj, NULL, &blob_len));
    CK_ULONG need = blob_len;
    blob_len = 100;
    TT_RV(c.f->C_WrapKey(c.s, &im, s1, k2_obj, blob, &blob_len), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(blob_len, need);
    blob_len = sizeof(blob);
    TT_OK(c.f->C_WrapKey(c.s, &im, s1, k2_obj, blob, &blob_len));
    ck_assert_uint_eq(blob_len, need);
    unsigned char full_aad[AAD_MAX];
    size_t aad_len = card_aad(k1, "k2-rsa", 0x01, full_aad);
    int p8_len = 0;
    unsigned char *p8 = open_blob(s1_value, ip.iv, full_aad, aad_len, blob, blob_len, &p8_len);
    unsigned char *want = NULL;
    PKCS8_PRIV_KEY_INFO *info = EVP_PKEY2PKCS8(k2);
    int want_len = i2d_PKCS8_PRIV_KEY_INFO(info, &want);
    PKCS8_PRIV_KEY_INFO_free(info);
    ck_assert_int_eq(p8_len, want_len);
    ck_assert_mem_eq(p8, want, (size_t)want_len);
    /* Each blob has its own IV. */
    unsigned char iv1[12];
    memcpy(iv1, ip.iv, 12);
    blob_len = sizeof(blob);
    TT_OK(c.f->C_WrapKey(c.s, &im, s1, k2_obj, blob, &blob_len));
    ck_assert(memcmp(iv1, ip.iv, 12) != 0);
    /* It opens with its AAD; another card's K1, another ID, another usage: it does not. */
    aad_len = card_aad(k1, "k2-rsa", 0x01, full_aad);
    ck_assert(blob_opens(s1_value, ip.iv, full_aad, aad_len, blob, blob_len));
    full_aad[0] ^= 1;
    ck_assert(!blob_opens(s1_value, ip.iv, full_aad, aad_len, blob, blob_len));
    aad_len = card_aad(k1, "k2-rsb", 0x01, full_aad);
    ck_assert(!blob_opens(s1_value, ip.iv, full_aad, aad_len, blob, blob_len));
    aad_len = card_aad(k1, "k2-rsa", 0x03, full_aad);
    ck_assert(!blob_opens(s1_value, ip.iv, full_aad, aad_len, blob, blob_len));

    OPENSSL_free(want);
    free(p8);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k1);
    ti_finish(&c);
}
END_TEST

START_TEST(t_ecdh_and_inject)
{
    ti_ctx c;
    ti_start(&c);
    EVP_PKEY *k1 = ti_openssl_p256();
    CK_OBJECT_HANDLE k1_obj = ti_public_key_object(&c, k1, CK_TRUE);
    /* S1 from C_GenerateKey: its value is replaced by the derived one. */
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG vlen = 32;
    CK_ATTRIBUTE st[] = {{CKA_VALUE_LEN, &vlen, sizeof(vlen)},
                         {CKA_SENSITIVE, (void *)&ti_no, 1},
                         {CKA_EXTRACTABLE, (void *)&ti_yes, 1}};
    CK_OBJECT_HANDLE s1;
    TT_OK(c.f->C_GenerateKey(c.s, &gen, st, 3, &s1));
    size_t old_len;
    unsigned char *old = ti_attr(&c, s1, CKA_VALUE, &old_len);

    unsigned char point[65], small[64], dummy[1];
    CK_SKS_ECDH_SESSION_KEY_PARAMS ep = {small, sizeof(small)};
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION_KEY_ECDH, &ep, sizeof(ep)};
    CK_ULONG len = 0;
    /* A length query: nothing done, both lengths given (the wrapped key's, the point's). */
    TT_OK(c.f->C_WrapKey(c.s, &m, k1_obj, s1, NULL, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(ep.ulPublicDataLen, 65);
    ck_assert_ptr_eq(ep.pPublicData, small);
    ep.ulPublicDataLen = sizeof(small); /* an in/out length: the buffer's size again */
    TT_RV(c.f->C_WrapKey(c.s, &m, k1_obj, s1, dummy, &len), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(ep.ulPublicDataLen, 65);
    /* Nothing happened: S1 is not bound. */
    CK_ATTRIBUTE none = {CKA_VENDOR_SKS_INJECTION_AAD, NULL, 0};
    TT_RV(c.f->C_GetAttributeValue(c.s, s1, &none, 1), CKR_ATTRIBUTE_TYPE_INVALID);
    ep.pPublicData = point;
    ep.ulPublicDataLen = sizeof(point);
    len = 0;
    TT_OK(c.f->C_WrapKey(c.s, &m, k1_obj, s1, dummy, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_eq(ep.ulPublicDataLen, 65);
    ck_assert_uint_eq(point[0], 0x04);

    /* The card's side: Z from K1's private key and the point, S1 = HMAC(Z, label). */
    OSSL_PARAM pp[] = {OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0),
                       OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, 65), OSSL_PARAM_END};
    EVP_PKEY_CTX *fctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *eph = NULL;
    ck_assert_int_eq(EVP_PKEY_fromdata_init(fctx), 1);
    ck_assert_int_eq(EVP_PKEY_fromdata(fctx, &eph, EVP_PKEY_PUBLIC_KEY, pp), 1);
    EVP_PKEY_CTX_free(fctx);
    EVP_PKEY_CTX *dctx = EVP_PKEY_CTX_new(k1, NULL);
    unsigned char z[32], s1_card[32];
    size_t zlen = sizeof(z), mlen = 0;
    ck_assert_int_eq(EVP_PKEY_derive_init(dctx), 1);
    ck_assert_int_eq(EVP_PKEY_derive_set_peer(dctx, eph), 1);
    ck_assert_int_eq(EVP_PKEY_derive(dctx, z, &zlen), 1);
    EVP_PKEY_CTX_free(dctx);
    ck_assert_ptr_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, z, zlen,
                                    (const unsigned char *)"SKS session key", 15, s1_card,
                                    sizeof(s1_card), &mlen));
    ck_assert_uint_eq(mlen, 32);
    size_t new_len;
    unsigned char *now = ti_attr(&c, s1, CKA_VALUE, &new_len);
    ck_assert_uint_eq(new_len, 32);
    ck_assert_mem_eq(now, s1_card, 32);
    ck_assert(memcmp(now, old, 32) != 0);

    /* An EC K2 generated on the token (ID "k2", sign and derive), injected under the derived S1. */
    CK_OBJECT_HANDLE pub, priv;
    ti_ec_pair(&c, 1, CK_FALSE, CK_TRUE, "k2", &pub, &priv);
    CK_SKS_INJECT_PARAMS ip;
    memset(&ip, 0, sizeof(ip));
    CK_MECHANISM im = {CKM_VENDOR_SKS_INJECT_KEY, &ip, sizeof(ip)};
    unsigned char blob[2048], aad[AAD_MAX];
    CK_ULONG blob_len = sizeof(blob);
    TT_OK(c.f->C_WrapKey(c.s, &im, s1, priv, blob, &blob_len));
    size_t aad_len = card_aad(k1, "k2", 0x01 | 0x04, aad);
    int p8_len = 0;
    unsigned char *p8 = open_blob(s1_card, ip.iv, aad, aad_len, blob, blob_len, &p8_len);
    const unsigned char *p = p8;
    PKCS8_PRIV_KEY_INFO *info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, p8_len);
    ck_assert_ptr_nonnull(info);
    EVP_PKEY *k2 = EVP_PKCS82PKEY(info);
    PKCS8_PRIV_KEY_INFO_free(info);
    EVP_PKEY *k2pub = ti_public_key(&c, pub);
    ck_assert_int_eq(EVP_PKEY_eq(k2, k2pub), 1);
    ck_assert_int_eq(EVP_PKEY_get_bits(k2), 384);

    free(p8);
    free(now);
    free(old);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k2pub);
    EVP_PKEY_free(eph);
    EVP_PKEY_free(k1);
    ti_finish(&c);
}
END_TEST

START_TEST(t_refusals)
{
    ti_ctx c;
    ti_start(&c);
    EVP_PKEY *rsa = ti_openssl_rsa(2048), *ec = ti_openssl_p256();
    CK_OBJECT_HANDLE k1_rsa = ti_public_key_object(&c, rsa, CK_TRUE);
    CK_OBJECT_HANDLE k1_ec = ti_public_key_object(&c, ec, CK_TRUE);
    CK_OBJECT_HANDLE k1_nowrap = ti_public_key_object(&c, rsa, CK_FALSE);
    CK_OBJECT_HANDLE s1 = ti_aes_key(&c, s1_value, 32, CK_TRUE, CK_TRUE);
    CK_OBJECT_HANDLE s1_short = ti_aes_key(&c, s1_value, 16, CK_TRUE, CK_TRUE);
    CK_OBJECT_HANDLE s1_locked = ti_aes_key(&c, s1_value, 32, CK_FALSE, CK_TRUE);
    CK_MECHANISM oaep = {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, NULL, 0};
    unsigned char out[4096];
    CK_ULONG len = sizeof(out);

    /* Session-key wraps: K1 of the wrong type or without CKA_WRAP; S1 of the wrong kind. */
    TT_RV(c.f->C_WrapKey(c.s, &oaep, k1_ec, s1, out, &len), CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
    TT_RV(c.f->C_WrapKey(c.s, &oaep, k1_nowrap, s1, out, &len), CKR_KEY_FUNCTION_NOT_PERMITTED);
    TT_RV(c.f->C_WrapKey(c.s, &oaep, k1_rsa, s1_short, out, &len), CKR_KEY_SIZE_RANGE);
    TT_RV(c.f->C_WrapKey(c.s, &oaep, k1_rsa, s1_locked, out, &len), CKR_KEY_UNEXTRACTABLE);
    TT_RV(c.f->C_WrapKey(c.s, &oaep, k1_rsa, k1_ec, out, &len), CKR_KEY_NOT_WRAPPABLE);
    unsigned char junk[4];
    CK_MECHANISM oaep_param = {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, junk, sizeof(junk)};
    TT_RV(c.f->C_WrapKey(c.s, &oaep_param, k1_rsa, s1, out, &len), CKR_MECHANISM_PARAM_INVALID);
    CK_MECHANISM ecdh_noparam = {CKM_VENDOR_SKS_SESSION_KEY_ECDH, NULL, 0};
    TT_RV(c.f->C_WrapKey(c.s, &ecdh_noparam, k1_ec, s1, out, &len), CKR_MECHANISM_PARAM_INVALID);
    unsigned char point[65];
    CK_SKS_ECDH_SESSION_KEY_PARAMS ep = {point, sizeof(point)};
    CK_MECHANISM ecdh = {CKM_VENDOR_SKS_SESSION_KEY_ECDH, &ep, sizeof(ep)};
    TT_RV(c.f->C_WrapKey(c.s, &ecdh, k1_rsa, s1, out, &len), CKR_WRAPPING_KEY_TYPE_INCONSISTENT);

    /* Injection: an S1 never sent to a card, K2 not extractable or not a private key. */
    CK_OBJECT_HANDLE pub, k2, pub_fixed, k2_fixed;
    ti_ec_pair(&c, 0, CK_FALSE, CK_TRUE, "k2", &pub, &k2);
    ti_ec_pair(&c, 0, CK_FALSE, CK_FALSE, "fixed", &pub_fixed, &k2_fixed);
    CK_SKS_INJECT_PARAMS ip;
    memset(&ip, 0, sizeof(ip));
    CK_MECHANISM inject = {CKM_VENDOR_SKS_INJECT_KEY, &ip, sizeof(ip)};
    len = sizeof(out);
    TT_RV(c.f->C_WrapKey(c.s, &inject, s1, k2, out, &len), CKR_WRAPPING_KEY_HANDLE_INVALID);
    TT_OK(c.f->C_WrapKey(c.s, &oaep, k1_rsa, s1, out, &len));
    len = sizeof(out);
    TT_RV(c.f->C_WrapKey(c.s, &inject, s1, k2_fixed, out, &len), CKR_KEY_UNEXTRACTABLE);
    TT_RV(c.f->C_WrapKey(c.s, &inject, s1, pub, out, &len), CKR_KEY_NOT_WRAPPABLE);
    TT_RV(c.f->C_WrapKey(c.s, &inject, k1_rsa, k2, out, &len), CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
    CK_MECHANISM inject_short = {CKM_VENDOR_SKS_INJECT_KEY, &ip, sizeof(ip) - 1};
    TT_RV(c.f->C_WrapKey(c.s, &inject_short, s1, k2, out, &len), CKR_MECHANISM_PARAM_INVALID);
    len = 10;
    TT_RV(c.f->C_WrapKey(c.s, &inject, s1, k2, out, &len), CKR_BUFFER_TOO_SMALL);
    CK_ULONG need = len;
    ck_assert_uint_gt(need, 16);
    TT_OK(c.f->C_WrapKey(c.s, &inject, s1, k2, out, &len));
    ck_assert_uint_eq(len, need);

    /*
     * The blob names the new key's ID and KeyUsage: a K2 without an ID, or
     * whose usage attributes give none the card can have (EC that decrypts,
     * RSA that derives, no usage at all), is not wrapped.
     */
    CK_OBJECT_HANDLE no_id = rsa_k2(&c, rsa, CK_TRUE, NULL);
    len = sizeof(out);
    TT_RV(c.f->C_WrapKey(c.s, &inject, s1, no_id, out, &len), CKR_KEY_NOT_WRAPPABLE);
    CK_ATTRIBUTE empty_id = {CKA_ID, NULL, 0};
    TT_OK(c.f->C_SetAttributeValue(c.s, k2, &empty_id, 1));
    TT_RV(c.f->C_WrapKey(c.s, &inject, s1, k2, out, &len), CKR_KEY_NOT_WRAPPABLE);
    CK_ATTRIBUTE id = {CKA_ID, "k2", 2};
    TT_OK(c.f->C_SetAttributeValue(c.s, k2, &id, 1));
    CK_ATTRIBUTE decrypt = {CKA_DECRYPT, (void *)&ti_yes, 1};
    TT_OK(c.f->C_SetAttributeValue(c.s, k2, &decrypt, 1));
    TT_RV(c.f->C_WrapKey(c.s, &inject, s1, k2, out, &len), CKR_KEY_NOT_WRAPPABLE);
    CK_ATTRIBUTE nothing[] = {{CKA_DECRYPT, (void *)&ti_no, 1},
                              {CKA_SIGN, (void *)&ti_no, 1},
                              {CKA_DERIVE, (void *)&ti_no, 1}};
    TT_OK(c.f->C_SetAttributeValue(c.s, k2, nothing, 3));
    TT_RV(c.f->C_WrapKey(c.s, &inject, s1, k2, out, &len), CKR_KEY_NOT_WRAPPABLE);
    CK_OBJECT_HANDLE rsa_derive = rsa_k2(&c, rsa, CK_TRUE, "rsa");
    CK_ATTRIBUTE derive = {CKA_DERIVE, (void *)&ti_yes, 1};
    TT_OK(c.f->C_WrapKey(c.s, &inject, s1, rsa_derive, out, &len));
    len = sizeof(out);
    TT_OK(c.f->C_SetAttributeValue(c.s, rsa_derive, &derive, 1));
    TT_RV(c.f->C_WrapKey(c.s, &inject, s1, rsa_derive, out, &len), CKR_KEY_NOT_WRAPPABLE);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    ti_finish(&c);
}
END_TEST

/*
 * One blob as a card would take it, checked: a fresh S1 (the known value)
 * wrapped under K1 with RSA-OAEP and recovered with K1's private key, its
 * binding SHA-256 of K1's SPKI; then K2 under S1, opened with the AAD of
 * `id` and `usage`: its PKCS#8 must be the key of `want` (the same public key).
 */
static void check_blob(ti_ctx *c, CK_OBJECT_HANDLE k1_obj, EVP_PKEY *k1, CK_OBJECT_HANDLE k2_obj,
                       EVP_PKEY *want, const char *id, unsigned char usage)
{
    CK_OBJECT_HANDLE s1 = ti_aes_key(c, s1_value, 32, CK_TRUE, CK_TRUE);
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, NULL, 0};
    unsigned char wrapped[512], got[32], hash[32];
    CK_ULONG len = sizeof(wrapped);
    TT_OK(c->f->C_WrapKey(c->s, &m, k1_obj, s1, wrapped, &len));
    oaep_decrypt(k1, wrapped, len, got);
    ck_assert_mem_eq(got, s1_value, 32);
    size_t blen;
    unsigned char *binding = ti_attr(c, s1, CKA_VENDOR_SKS_INJECTION_AAD, &blen);
    spki_hash(k1, hash);
    ck_assert_uint_eq(blen, 32);
    ck_assert_mem_eq(binding, hash, 32);
    free(binding);

    CK_SKS_INJECT_PARAMS ip;
    memset(&ip, 0, sizeof(ip));
    CK_MECHANISM im = {CKM_VENDOR_SKS_INJECT_KEY, &ip, sizeof(ip)};
    unsigned char blob[4096], aad[AAD_MAX];
    CK_ULONG blob_len = sizeof(blob);
    TT_OK(c->f->C_WrapKey(c->s, &im, s1, k2_obj, blob, &blob_len));
    size_t aad_len = card_aad(k1, id, usage, aad);
    int p8_len = 0;
    unsigned char *p8 = open_blob(s1_value, ip.iv, aad, aad_len, blob, blob_len, &p8_len);
    const unsigned char *p = p8;
    EVP_PKEY *k2 = d2i_AutoPrivateKey(NULL, &p, p8_len);
    ck_assert_ptr_nonnull(k2);
    ck_assert_ptr_eq(p, p8 + p8_len);
    ck_assert_int_eq(EVP_PKEY_eq(k2, want), 1);
    EVP_PKEY_free(k2);
    OPENSSL_cleanse(p8, (size_t)p8_len);
    free(p8);
    TT_OK(c->f->C_DestroyObject(c->s, s1));
}

/*
 * The issuer token keeps K1's key and SPKI digest and K2's PKCS#8 between
 * blobs; every blob still carries what the objects hold now: K2's key
 * cannot be changed, a change of its label (a session and a token object)
 * or usage leaves the key and moves the AAD, a K1 without CKA_WRAP is
 * refused, and objects destroyed and made again from other keys give blobs
 * of the new keys.
 */
START_TEST(t_cache_follows_objects)
{
    ti_ctx c;
    ti_start(&c);
    EVP_PKEY *k1 = ti_openssl_rsa(2048), *k2 = ti_openssl_rsa(2048), *k2b = ti_openssl_rsa(2048);
    CK_OBJECT_HANDLE k1_obj = ti_public_key_object(&c, k1, CK_TRUE);
    CK_OBJECT_HANDLE k2_obj = rsa_k2(&c, k2, CK_TRUE, "k2");
    check_blob(&c, k1_obj, k1, k2_obj, k2, "k2", 0x01);
    check_blob(&c, k1_obj, k1, k2_obj, k2, "k2", 0x01);

    /* K2's components are read-only; its label and usage are not. */
    unsigned char other_d[256];
    memset(other_d, 0x5A, sizeof(other_d));
    CK_ATTRIBUTE d = {CKA_PRIVATE_EXPONENT, other_d, sizeof(other_d)};
    TT_RV(c.f->C_SetAttributeValue(c.s, k2_obj, &d, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE label = {CKA_LABEL, "renamed", 7};
    TT_OK(c.f->C_SetAttributeValue(c.s, k2_obj, &label, 1));
    check_blob(&c, k1_obj, k1, k2_obj, k2, "k2", 0x01);
    CK_ATTRIBUTE decrypt = {CKA_DECRYPT, (void *)&ti_yes, 1};
    TT_OK(c.f->C_SetAttributeValue(c.s, k2_obj, &decrypt, 1));
    check_blob(&c, k1_obj, k1, k2_obj, k2, "k2", 0x03);

    /* K1's usage is checked on every wrap. */
    CK_ATTRIBUTE nowrap = {CKA_WRAP, (void *)&ti_no, 1}, wrap = {CKA_WRAP, (void *)&ti_yes, 1};
    TT_OK(c.f->C_SetAttributeValue(c.s, k1_obj, &nowrap, 1));
    CK_OBJECT_HANDLE s1 = ti_aes_key(&c, s1_value, 32, CK_TRUE, CK_TRUE);
    CK_MECHANISM oaep = {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, NULL, 0};
    unsigned char out[512];
    CK_ULONG len = sizeof(out);
    TT_RV(c.f->C_WrapKey(c.s, &oaep, k1_obj, s1, out, &len), CKR_KEY_FUNCTION_NOT_PERMITTED);
    TT_OK(c.f->C_SetAttributeValue(c.s, k1_obj, &wrap, 1));

    /* K2 destroyed: its handle is gone; made again from another key: a blob of that key. */
    TT_OK(c.f->C_DestroyObject(c.s, k2_obj));
    TT_OK(c.f->C_WrapKey(c.s, &oaep, k1_obj, s1, out, &len));
    CK_SKS_INJECT_PARAMS ip;
    memset(&ip, 0, sizeof(ip));
    CK_MECHANISM im = {CKM_VENDOR_SKS_INJECT_KEY, &ip, sizeof(ip)};
    unsigned char blob[4096];
    CK_ULONG blob_len = sizeof(blob);
    TT_RV(c.f->C_WrapKey(c.s, &im, s1, k2_obj, blob, &blob_len), CKR_KEY_HANDLE_INVALID);
    k2_obj = rsa_k2(&c, k2b, CK_TRUE, "k2");
    check_blob(&c, k1_obj, k1, k2_obj, k2b, "k2", 0x01);
    /* K1 destroyed and made again from another key: S1 goes to that key, bound to it. */
    EVP_PKEY *k1b = ti_openssl_rsa(2048);
    TT_OK(c.f->C_DestroyObject(c.s, k1_obj));
    k1_obj = ti_public_key_object(&c, k1b, CK_TRUE);
    check_blob(&c, k1_obj, k1b, k2_obj, k2b, "k2", 0x01);

    /* A token object K2 (its changes go through its file): the same. */
    CK_OBJECT_HANDLE tok_pub, tok_k2;
    ti_rsa_pair(&c, 2048, CK_TRUE, CK_TRUE, "tok", &tok_pub, &tok_k2);
    EVP_PKEY *tok_key = ti_public_key(&c, tok_pub);
    check_blob(&c, k1_obj, k1b, tok_k2, tok_key, "tok", 0x03);
    TT_OK(c.f->C_SetAttributeValue(c.s, tok_k2, &label, 1));
    check_blob(&c, k1_obj, k1b, tok_k2, tok_key, "tok", 0x03);
    CK_ATTRIBUTE sign_only[] = {{CKA_DECRYPT, (void *)&ti_no, 1}, {CKA_UNWRAP, (void *)&ti_no, 1}};
    TT_OK(c.f->C_SetAttributeValue(c.s, tok_k2, sign_only, 2));
    check_blob(&c, k1_obj, k1b, tok_k2, tok_key, "tok", 0x01);

    EVP_PKEY_free(tok_key);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k1b);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k2b);
    ti_finish(&c);
}
END_TEST

/*
 * After C_Finalize the module hands out the same handles again, and new
 * objects may even land at the old addresses: K1 and K2 made again there
 * from other keys give blobs of the new keys, never what was kept of the
 * old ones.
 */
START_TEST(t_cache_across_restart)
{
    ti_ctx c;
    ti_start(&c);
    EVP_PKEY *k1 = ti_openssl_rsa(2048), *k2 = ti_openssl_rsa(2048);
    CK_OBJECT_HANDLE k1_obj = ti_public_key_object(&c, k1, CK_TRUE);
    CK_OBJECT_HANDLE k2_obj = rsa_k2(&c, k2, CK_TRUE, "k2");
    check_blob(&c, k1_obj, k1, k2_obj, k2, "k2", 0x01);

    ti_restart(&c);
    EVP_PKEY *k1b = ti_openssl_rsa(2048), *k2b = ti_openssl_rsa(2048);
    CK_OBJECT_HANDLE k1b_obj = ti_public_key_object(&c, k1b, CK_TRUE);
    CK_OBJECT_HANDLE k2b_obj = rsa_k2(&c, k2b, CK_TRUE, "k2");
    ck_assert_msg(k1b_obj == k1_obj && k2b_obj == k2_obj,
                  "the handles are not reused after C_Finalize: this test no longer tests reuse");
    check_blob(&c, k1b_obj, k1b, k2b_obj, k2b, "k2", 0x01);

    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k1b);
    EVP_PKEY_free(k2b);
    ti_finish(&c);
}
END_TEST

START_TEST(t_card_token_refuses)
{
    /* The default configuration's embedded card: its free slot is a card token. */
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_open(f, tt_free_slot(f));
    unsigned char out[512];
    CK_ULONG len = sizeof(out);
    CK_MECHANISM oaep = {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, NULL, 0};
    TT_RV(f->C_WrapKey(s, &oaep, 1, 2, out, &len), CKR_MECHANISM_INVALID);
    CK_SKS_INJECT_PARAMS ip;
    memset(&ip, 0, sizeof(ip));
    CK_MECHANISM inject = {CKM_VENDOR_SKS_INJECT_KEY, &ip, sizeof(ip)};
    TT_RV(f->C_WrapKey(s, &inject, 1, 2, out, &len), CKR_MECHANISM_INVALID);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-issuer-inject");
    TCase *tc = tcase_create("inject");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, t_rsa_oaep_and_inject);
    tcase_add_test(tc, t_ecdh_and_inject);
    tcase_add_test(tc, t_refusals);
    tcase_add_test(tc, t_cache_follows_objects);
    tcase_add_test(tc, t_cache_across_restart);
    tcase_add_test(tc, t_card_token_refuses);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run_suite(suite());
}
