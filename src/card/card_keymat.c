/*
 * card_keymat.c - key material inside the card: key pairs of the SKS
 * algorithms (RSA 2048/3072/4096 with e = 65537, EC P-256/P-384), their
 * PKCS#8 and SubjectPublicKeyInfo encodings, and the checks that a key is of
 * a supported algorithm and that a certificate holds a given public key.
 *
 * Private key DER only ever lives in card_buf (zeroized when freed) or in
 * OpenSSL buffers released with OPENSSL_clear_free().
 */
#include "card_keymat.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "../protocol/sks_keys.h"
#include "../protocol/sks_proto.h"

int card_keymat_alg_supported(uint8_t alg)
{
    switch (alg) {
    case SKS_KEYALG_RSA2048:
    case SKS_KEYALG_RSA3072:
    case SKS_KEYALG_RSA4096:
    case SKS_KEYALG_EC_P256:
    case SKS_KEYALG_EC_P384:
        return 1;
    default:
        return 0;
    }
}

/* RSA modulus size of an RSA algorithm, 0 for the others. */
static unsigned int rsa_bits_of(uint8_t alg)
{
    switch (alg) {
    case SKS_KEYALG_RSA2048:
        return 2048;
    case SKS_KEYALG_RSA3072:
        return 3072;
    case SKS_KEYALG_RSA4096:
        return 4096;
    default:
        return 0;
    }
}

/* OpenSSL curve name of an EC algorithm, NULL for the others. */
static const char *curve_of(uint8_t alg)
{
    switch (alg) {
    case SKS_KEYALG_EC_P256:
        return "P-256";
    case SKS_KEYALG_EC_P384:
        return "P-384";
    default:
        return NULL;
    }
}

/* PKCS#8 PrivateKeyInfo DER of a key into `out`. 0 or -1. */
static int pkcs8_of(const EVP_PKEY *key, card_buf *out)
{
    uint8_t *der;
    size_t len;
    if (sks_pkcs8_encode(key, &der, &len) != 0)
        return -1;
    int rc = card_buf_set(out, der, len);
    OPENSSL_clear_free(der, len);
    return rc;
}

int card_keymat_spki(const EVP_PKEY *key, card_buf *spki)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(key, &der);
    int rc = len > 0 ? card_buf_set(spki, der, (size_t)len) : -1;
    OPENSSL_free(der);
    return rc;
}

/* A fresh key of `alg`, or NULL. */
static EVP_PKEY *generate(uint8_t alg)
{
    unsigned int bits = rsa_bits_of(alg);
    const char *curve = curve_of(alg);
    EVP_PKEY *key = NULL;

    if (bits != 0) {
        /* EVP_PKEY_Q_keygen's RSA form always uses e = 65537. */
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    } else if (curve != NULL) {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    }
    return key;
}

int card_keymat_generate(uint8_t alg, card_buf *pkcs8, card_buf *spki)
{
    if (!card_keymat_alg_supported(alg))
        return SKS_ERR_ALGORITHM;
    EVP_PKEY *key = generate(alg);
    if (key == NULL)
        return SKS_ERR_CRYPTO;
    int ok = pkcs8_of(key, pkcs8) == 0 && card_keymat_spki(key, spki) == 0;
    EVP_PKEY_free(key);
    if (!ok) {
        card_buf_free(pkcs8);
        card_buf_free(spki);
        return SKS_ERR_CRYPTO;
    }
    return SKS_OK;
}

EVP_PKEY *card_keymat_load(const uint8_t *pkcs8, size_t n)
{
    if (pkcs8 == NULL || n == 0 || n > 0x7FFFFFFF)
        return NULL;
    const unsigned char *p = pkcs8;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
    EVP_PKEY *key = NULL;
    /* Strict: the whole input must be one PrivateKeyInfo. */
    if (p8 != NULL && p == pkcs8 + n)
        key = EVP_PKCS82PKEY(p8);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return key;
}

uint8_t card_keymat_alg_of(const EVP_PKEY *key)
{
    return sks_key_algorithm(key);
}

int card_keymat_cert_matches(const uint8_t *cert_der, size_t n, const uint8_t *spki,
                             size_t spki_len)
{
    if (cert_der == NULL || n == 0 || n > 0x7FFFFFFF || spki == NULL || spki_len == 0 ||
        spki_len > 0x7FFFFFFF)
        return 0;
    const unsigned char *p = cert_der;
    X509 *cert = d2i_X509(NULL, &p, (long)n);
    int match = 0;
    if (cert != NULL && p == cert_der + n) {
        /* Compare the DER of the certificate's SubjectPublicKeyInfo with `spki`. */
        unsigned char *der = NULL;
        int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
        match = len > 0 && (size_t)len == spki_len && memcmp(der, spki, spki_len) == 0;
        OPENSSL_free(der);
    }
    X509_free(cert);
    return match;
}
