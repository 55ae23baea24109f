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

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "../protocol/sks_crypto.h"
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

/*
 * PKCS#8 of a P-256 key generate() made, written directly: the OpenSSL 3.0
 * encoder chain that sks_pkcs8_encode builds costs about two key
 * generations, and the card writes one of these for every key it
 * generates. The bytes are exactly what that encoder writes for a
 * named-curve key with uncompressed points that includes its public key,
 * OpenSSL's defaults, which generate() leaves as they are (the
 * include-public flag cannot be read back, hence only for those keys):
 *   PrivateKeyInfo { 0, { id-ecPublicKey, prime256v1 },
 *     OCTET STRING { ECPrivateKey { 1, OCTET STRING d(32), [1] BIT STRING point } } }
 * Any other key returns 1 and goes through the encoder. 0, 1, or -1.
 */
#define P256_PKCS8_LEN 138

static int generated_p256_pkcs8(const EVP_PKEY *key, card_buf *out)
{
    static const uint8_t head[] = {
        0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86,
        0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
        0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20,
    };
    static const uint8_t mid[] = {0xa1, 0x44, 0x03, 0x42, 0x00};
    uint8_t point[65];
    if (sks_p256_point(key, point) != 0)
        return 1;
    BIGNUM *d = NULL;
    uint8_t der[P256_PKCS8_LEN];
    uint8_t *p = der;
    memcpy(p, head, sizeof head);
    p += sizeof head;
    int ok = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1 &&
             BN_bn2binpad(d, p, 32) == 32;
    BN_clear_free(d);
    p += 32;
    memcpy(p, mid, sizeof mid);
    p += sizeof mid;
    memcpy(p, point, sizeof point);
    ok = ok && card_buf_set(out, der, sizeof der) == 0;
    OPENSSL_cleanse(der, sizeof der);
    return ok ? 0 : -1;
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
    uint8_t *der = NULL;
    size_t len = 0;
    int rc = sks_spki_encode(key, &der, &len) == 0 ? card_buf_set(spki, der, len) : -1;
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
    int fast = generated_p256_pkcs8(key, pkcs8);
    int ok =
        (fast == 0 || (fast == 1 && pkcs8_of(key, pkcs8) == 0)) && card_keymat_spki(key, spki) == 0;
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

/*
 * A library context with no algorithms (only the "null" provider), for
 * parsing certificates whose public key is compared as bytes and never
 * used. d2i_X509 decodes the public key only opportunistically (a
 * certificate with a key of an unknown algorithm still parses, and the
 * parse neither fails nor differs otherwise), but in the default context
 * that attempt builds an OpenSSL 3.0 decoder chain, about ten times the
 * cost of the rest of the parse. Parsing under this context accepts and
 * rejects exactly the certificates d2i_X509 does and leaves the same
 * SubjectPublicKeyInfo fields. Created once, shared read-only by all
 * threads, kept for the life of the process; NULL if it cannot be set up
 * (then the default context is used).
 */
static OSSL_LIB_CTX *keyless_ctx;
static CRYPTO_ONCE keyless_once = CRYPTO_ONCE_STATIC_INIT;

static void keyless_init(void)
{
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    if (ctx != NULL && OSSL_PROVIDER_load(ctx, "null") == NULL) {
        OSSL_LIB_CTX_free(ctx);
        ctx = NULL;
    }
    keyless_ctx = ctx;
}

/* d2i_X509(NULL, ...) without decoding the public key. */
static X509 *parse_cert_keyless(const unsigned char **p, long n)
{
    (void)CRYPTO_THREAD_run_once(&keyless_once, keyless_init);
    return (X509 *)ASN1_item_d2i_ex(NULL, p, n, ASN1_ITEM_rptr(X509), keyless_ctx, NULL);
}

int card_keymat_cert_matches(const uint8_t *cert_der, size_t n, const uint8_t *spki,
                             size_t spki_len)
{
    if (cert_der == NULL || n == 0 || n > 0x7FFFFFFF || spki == NULL || spki_len == 0 ||
        spki_len > 0x7FFFFFFF)
        return 0;
    const unsigned char *p = cert_der;
    X509 *cert = parse_cert_keyless(&p, (long)n);
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
