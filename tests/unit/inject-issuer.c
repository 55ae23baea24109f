/*
 * inject-issuer.c - the issuer side of secure key injection for the tests,
 * on OpenSSL EVP only, certificates from testlib's test CA (see
 * inject-issuer.h).
 */
#include <string.h>

#include <check.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "inject-issuer.h"
#include "testlib.h"

void ti_random_s1(uint8_t s1[TI_S1_LEN])
{
    ck_assert_int_eq(RAND_bytes(s1, TI_S1_LEN), 1);
}

void ti_oaep_wrap(EVP_PKEY *k1_pub, const uint8_t *plain, size_t n, sks_writer *out)
{
    uint8_t ct[512];
    size_t ct_len = sizeof(ct);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k1_pub, NULL);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(EVP_PKEY_encrypt_init(ctx), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()), 1);
    ck_assert_int_eq(EVP_PKEY_encrypt(ctx, ct, &ct_len, plain, n), 1);
    EVP_PKEY_CTX_free(ctx);
    sks_put_raw(out, ct, ct_len);
}

void ti_ecdh_s1(EVP_PKEY *k1_pub, uint8_t point[TI_POINT_LEN], uint8_t s1[TI_S1_LEN])
{
    static const char label[] = "SKS session key";
    uint8_t z[32];
    size_t z_len = sizeof(z), point_len = 0, mac_len = 0;
    EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(eph);
    ck_assert_int_eq(EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                                     TI_POINT_LEN, &point_len),
                     1);
    ck_assert_uint_eq(point_len, TI_POINT_LEN);
    ck_assert_uint_eq(point[0], 0x04);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(EVP_PKEY_derive_init(ctx), 1);
    ck_assert_int_eq(EVP_PKEY_derive_set_peer(ctx, k1_pub), 1);
    ck_assert_int_eq(EVP_PKEY_derive(ctx, z, &z_len), 1);
    ck_assert_uint_eq(z_len, 32);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(eph);
    ck_assert_ptr_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, z, z_len,
                                    (const unsigned char *)label, strlen(label), s1, TI_S1_LEN,
                                    &mac_len));
    ck_assert_uint_eq(mac_len, TI_S1_LEN);
}

void ti_spki(EVP_PKEY *key, sks_writer *out)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    ck_assert_int_gt(len, 0);
    sks_put_raw(out, der, (size_t)len);
    OPENSSL_free(der);
}

void ti_spki_hash(EVP_PKEY *key, uint8_t out[32])
{
    unsigned char *der = NULL;
    unsigned int n = 0;
    int len = i2d_PUBKEY(key, &der);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL), 1);
    OPENSSL_free(der);
}

void ti_pkcs8(EVP_PKEY *key, sks_writer *out)
{
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    unsigned char *der = NULL;
    ck_assert_ptr_nonnull(p8);
    int len = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    ck_assert_int_gt(len, 0);
    sks_put_raw(out, der, (size_t)len);
    OPENSSL_clear_free(der, (size_t)len);
    PKCS8_PRIV_KEY_INFO_free(p8);
}

size_t ti_aad(EVP_PKEY *k1_pub, const char *id, uint8_t usage, uint8_t aad[TI_AAD_MAX])
{
    size_t id_len = strlen(id);
    ck_assert(id_len >= 1 && id_len <= 32);
    ti_spki_hash(k1_pub, aad);
    aad[32] = (uint8_t)id_len;
    memcpy(aad + 33, id, id_len);
    aad[33 + id_len] = usage;
    return 33 + id_len + 1;
}

void ti_seal(const uint8_t s1[TI_S1_LEN], const uint8_t iv[TI_IV_LEN], const uint8_t *aad,
             size_t aad_len, const uint8_t *plain, size_t n, sks_writer *out)
{
    uint8_t tag[TI_TAG_LEN];
    uint8_t *ct = OPENSSL_malloc(n + 16);
    int len = 0, fin = 0;
    ck_assert_ptr_nonnull(ct);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(EVP_EncryptInit_ex2(ctx, EVP_aes_256_gcm(), s1, iv, NULL), 1);
    ck_assert_int_eq(EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aad_len), 1);
    ck_assert_int_eq(EVP_EncryptUpdate(ctx, ct, &len, plain, (int)n), 1);
    ck_assert_int_eq(EVP_EncryptFinal_ex(ctx, ct + len, &fin), 1);
    ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TI_TAG_LEN, tag), 1);
    EVP_CIPHER_CTX_free(ctx);
    sks_put_raw(out, ct, (size_t)(len + fin));
    sks_put_raw(out, tag, sizeof(tag));
    OPENSSL_clear_free(ct, n + 16);
}

void ti_wrap_k2(const uint8_t s1[TI_S1_LEN], EVP_PKEY *k1_pub, EVP_PKEY *k2, const char *id,
                uint8_t usage, uint8_t iv[TI_IV_LEN], sks_writer *out)
{
    uint8_t aad[TI_AAD_MAX];
    sks_writer p8;
    sks_writer_init(&p8);
    ck_assert_int_eq(RAND_bytes(iv, TI_IV_LEN), 1);
    size_t aad_len = ti_aad(k1_pub, id, usage, aad);
    ti_pkcs8(k2, &p8);
    ck_assert(!p8.failed);
    ti_seal(s1, iv, aad, aad_len, p8.buf, p8.len, out);
    sks_writer_free(&p8);
}

void ti_cert(EVP_PKEY *k2, sks_writer *der)
{
    sks_writer spki;
    sks_writer_init(&spki);
    ti_spki(k2, &spki);
    tl_issue_cert_der((sks_view){spki.buf, spki.len}, der);
    sks_writer_free(&spki);
}
