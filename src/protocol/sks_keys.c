/*
 * sks_keys.c - keys and certificate paths in the forms the SKS protocol
 * carries them (sks_keys.h). Only OpenSSL 3 EVP and encoder interfaces.
 */
#include "sks_keys.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/params.h>

uint8_t sks_key_algorithm(const EVP_PKEY *key)
{
    if (key == NULL)
        return 0;
    if (EVP_PKEY_is_a(key, "RSA")) {
        switch (EVP_PKEY_get_bits(key)) {
        case 2048:
            return SKS_KEYALG_RSA2048;
        case 3072:
            return SKS_KEYALG_RSA3072;
        case 4096:
            return SKS_KEYALG_RSA4096;
        default:
            return 0;
        }
    }
    char group[64];
    if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                                                    group, sizeof group, NULL) != 1)
        return 0;
    if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
        return SKS_KEYALG_EC_P256;
    if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
        return SKS_KEYALG_EC_P384;
    return 0;
}

EVP_PKEY *sks_ec_point_key(OSSL_LIB_CTX *libctx, const char *curve, const uint8_t *point,
                           size_t len)
{
    EVP_PKEY *key = NULL;
    if (curve == NULL || point == NULL || len == 0)
        return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curve, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, len),
        OSSL_PARAM_END,
    };
    /* id-ecPublicKey by its OID: the name "EC" would look for an engine of that type first. */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(libctx, "1.2.840.10045.2.1", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
    EVP_PKEY_CTX_free(ctx);
    return key;
}

int sks_pkcs8_encode(const EVP_PKEY *key, uint8_t **der, size_t *len)
{
    *der = NULL;
    *len = 0;
    if (key == NULL)
        return -1;
    OSSL_ENCODER_CTX *ctx =
        OSSL_ENCODER_CTX_new_for_pkey(key, EVP_PKEY_KEYPAIR, "DER", "PrivateKeyInfo", NULL);
    unsigned char *out = NULL;
    size_t out_len = 0;
    int ok = ctx != NULL && OSSL_ENCODER_CTX_get_num_encoders(ctx) > 0 &&
             OSSL_ENCODER_to_data(ctx, &out, &out_len) == 1 && out_len > 0;
    OSSL_ENCODER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_clear_free(out, out_len);
        return -1;
    }
    *der = out;
    *len = out_len;
    return 0;
}

/* The length of the DER element at p (header and body), or 0 if it is not a complete SEQUENCE. */
static size_t sequence_len(const uint8_t *p, size_t left)
{
    size_t head = 2, body;
    if (left < 2 || p[0] != 0x30)
        return 0;
    if (p[1] < 0x80) {
        body = p[1];
    } else {
        /* Long form: 1..4 length bytes; no indefinite length (0x80). */
        size_t nlen = p[1] & 0x7Fu;
        if (nlen < 1 || nlen > 4 || left < 2 + nlen)
            return 0;
        body = 0;
        for (size_t i = 0; i < nlen; i++)
            body = (body << 8) | p[2 + i];
        head += nlen;
    }
    return body <= left - head ? head + body : 0;
}

int sks_certpath_split(const uint8_t *der, size_t len, sks_certpath *path)
{
    size_t pos = 0;
    memset(path, 0, sizeof *path);
    if (der == NULL || len == 0)
        return -1;
    while (pos < len) {
        size_t n = sequence_len(der + pos, len - pos);
        if (n == 0 || n > SKS_WIRE_BYTES_MAX || path->count == SKS_CERT_PATH_MAX) {
            memset(path, 0, sizeof *path);
            return -1;
        }
        path->cert[path->count++] = (sks_view){der + pos, n};
        pos += n;
    }
    return 0;
}
