/*
 * sks_crypto.c - the cryptographic constructions of docs/protocol.md
 * section 5 (session key, MACs, encryption key, encrypted values,
 * attestation data), written once for the card and the issuer alike.
 * Only OpenSSL 3 EVP interfaces are used.
 */
#include "sks_crypto.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "sks_keys.h"

/* ---- Algorithms fetched once ------------------------------------------ */

/*
 * Passing EVP_sha256() or EVP_aes_256_cbc() to an *Init function, or
 * EVP_MAC_fetch() per call, makes OpenSSL 3 look the algorithm up by name
 * (a locked table walk) every time. The card and the issuer run these
 * constructions several times per call, so they are fetched once from the
 * default library context and kept for the life of the process. Fetched
 * algorithm objects are immutable and reference counted, so all threads
 * may share them; a failed fetch leaves NULL and the callers fall back to
 * the per-call lookup they did before.
 */
static CRYPTO_ONCE fetch_once = CRYPTO_ONCE_STATIC_INIT;
static EVP_MAC *fetched_hmac;
static EVP_MD *fetched_sha256;
static EVP_CIPHER *fetched_aes_256_cbc;
static EVP_CIPHER *fetched_aes_256_gcm;

static void fetch_algorithms(void)
{
    fetched_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    fetched_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    fetched_aes_256_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    fetched_aes_256_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static void fetch_all(void)
{
    /* On failure the pointers stay NULL and the callers fall back. */
    (void)CRYPTO_THREAD_run_once(&fetch_once, fetch_algorithms);
}

const EVP_MD *sks_md_sha256(void)
{
    fetch_all();
    return fetched_sha256 != NULL ? fetched_sha256 : EVP_sha256();
}

const EVP_CIPHER *sks_cipher_aes_256_gcm(void)
{
    fetch_all();
    return fetched_aes_256_gcm != NULL ? fetched_aes_256_gcm : EVP_aes_256_gcm();
}

static const EVP_CIPHER *cipher_aes_256_cbc(void)
{
    fetch_all();
    return fetched_aes_256_cbc != NULL ? fetched_aes_256_cbc : EVP_aes_256_cbc();
}

void sks_cleanse(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

int sks_mac_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* HMAC-SHA256(key, data) into out[32]. 0 or -1. */
static int hmac_sha256(const uint8_t *key, size_t klen, const uint8_t *data, size_t n,
                       uint8_t out[32])
{
    static const uint8_t empty[1] = {0};
    fetch_all();
    EVP_MAC *mac = fetched_hmac != NULL ? fetched_hmac : EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t outlen = 0;
    int ok = ctx != NULL && EVP_MAC_init(ctx, klen > 0 ? key : empty, klen, params) == 1 &&
             EVP_MAC_update(ctx, n > 0 ? data : empty, n) == 1 &&
             EVP_MAC_final(ctx, out, &outlen, 32) == 1 && outlen == 32;
    EVP_MAC_CTX_free(ctx);
    if (mac != fetched_hmac)
        EVP_MAC_free(mac);
    if (!ok)
        sks_cleanse(out, 32);
    return ok ? 0 : -1;
}

/* HMAC-SHA256 over a writer's contents; fails if the writer failed. */
static int hmac_writer(const uint8_t *key, size_t klen, const sks_writer *w, uint8_t out[32])
{
    if (w->failed)
        return -1;
    return hmac_sha256(key, klen, w->buf, w->len, out);
}

int sks_derive_session_key(const uint8_t *z, size_t zlen, sks_view client_session_id,
                           sks_view server_session_id, sks_view issuer_uri,
                           sks_view device_certificate, uint8_t sk[SKS_SK_LEN])
{
    sks_writer w;
    sks_writer_init(&w);
    sks_put_bytes(&w, client_session_id.ptr, client_session_id.len);
    sks_put_bytes(&w, server_session_id.ptr, server_session_id.len);
    sks_put_bytes(&w, issuer_uri.ptr, issuer_uri.len);
    sks_put_bytes(&w, device_certificate.ptr, device_certificate.len);
    int rc = hmac_writer(z, zlen, &w, sk);
    sks_writer_free(&w);
    return rc;
}

int sks_mac(const uint8_t sk[SKS_SK_LEN], const char *label, uint16_t counter, const uint8_t *data,
            size_t n, uint8_t mac[SKS_MAC_LEN])
{
    /* key = SK | MethodName | Counter (2 bytes, big-endian) */
    sks_writer key;
    sks_writer_init(&key);
    sks_put_raw(&key, sk, SKS_SK_LEN);
    sks_put_raw(&key, label, strlen(label));
    sks_put_short(&key, counter);
    int rc = key.failed ? -1 : hmac_sha256(key.buf, key.len, data, n, mac);
    sks_writer_free(&key);
    return rc;
}

int sks_encryption_key(const uint8_t sk[SKS_SK_LEN], uint8_t ek[32])
{
    return hmac_sha256(sk, SKS_SK_LEN, (const uint8_t *)SKS_LABEL_ENCRYPTION_KEY,
                       strlen(SKS_LABEL_ENCRYPTION_KEY), ek);
}

int sks_encrypt(const uint8_t ek[32], const uint8_t *iv, const uint8_t *pt, size_t n,
                sks_writer *out)
{
    uint8_t ivbuf[SKS_ENC_IV_LEN];
    uint8_t ct[SKS_ENC_MAX + SKS_ENC_IV_LEN];
    int len1 = 0, len2 = 0;

    if (n > SKS_ENC_MAX || (pt == NULL && n > 0))
        return -1;
    if (iv != NULL)
        memcpy(ivbuf, iv, sizeof ivbuf);
    else if (RAND_bytes(ivbuf, sizeof ivbuf) != 1)
        return -1;

    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok = ctx != NULL && EVP_EncryptInit_ex(ctx, cipher_aes_256_cbc(), NULL, ek, ivbuf) == 1 &&
             EVP_EncryptUpdate(ctx, ct, &len1, pt, (int)n) == 1 &&
             EVP_EncryptFinal_ex(ctx, ct + len1, &len2) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (ok) {
        sks_put_raw(out, ivbuf, sizeof ivbuf);
        sks_put_raw(out, ct, (size_t)len1 + (size_t)len2);
        ok = !out->failed;
    }
    return ok ? 0 : -1;
}

int sks_decrypt(const uint8_t ek[32], const uint8_t *ct, size_t n, uint8_t *pt, size_t *ptlen)
{
    int len1 = 0, len2 = 0;

    *ptlen = 0;
    /* IV plus at least one block, whole blocks only, and within int range. */
    if (ct == NULL || n < 2 * SKS_ENC_IV_LEN || n % SKS_ENC_IV_LEN != 0 ||
        n > SKS_ENC_MAX + 2 * SKS_ENC_IV_LEN)
        return -1;

    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ok =
        ctx != NULL && EVP_DecryptInit_ex(ctx, cipher_aes_256_cbc(), NULL, ek, ct) == 1 &&
        EVP_DecryptUpdate(ctx, pt, &len1, ct + SKS_ENC_IV_LEN, (int)(n - SKS_ENC_IV_LEN)) == 1 &&
        EVP_DecryptFinal_ex(ctx, pt + len1, &len2) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        sks_cleanse(pt, n);
        return -1;
    }
    *ptlen = (size_t)len1 + (size_t)len2;
    return 0;
}

int sks_session_attestation_digest(const uint8_t sk[SKS_SK_LEN], const sks_req_create_session *req,
                                   sks_view client_session_id, sks_view encrypted_session_key,
                                   uint8_t out[32])
{
    sks_writer w;
    sks_writer_init(&w);
    sks_put_byte(&w, req->session_key_alg);
    sks_put_bytes(&w, client_session_id.ptr, client_session_id.len);
    sks_put_bytes(&w, req->server_session_id.ptr, req->server_session_id.len);
    sks_put_bytes(&w, req->issuer_uri.ptr, req->issuer_uri.len);
    sks_put_bytes(&w, req->issuer_public_key.ptr, req->issuer_public_key.len);
    sks_put_bool(&w, req->updatable);
    sks_put_short(&w, req->client_operation_limit);
    sks_put_int(&w, req->session_life_time);
    sks_put_bytes(&w, encrypted_session_key.ptr, encrypted_session_key.len);
    int rc = hmac_writer(sk, SKS_SK_LEN, &w, out);
    sks_writer_free(&w);
    return rc;
}

static void put_view(sks_writer *w, sks_view v)
{
    sks_put_bytes(w, v.ptr, v.len);
}

int sks_key_attestation_data(sks_writer *w, const sks_policy_attestation *pol,
                             const sks_req_create_key_pair *req, sks_view public_key,
                             sks_view encrypted_private_key)
{
    sks_put_string(w, "PUK Policy=");
    if (!pol->has_puk) {
        sks_put_string(w, "No PUK");
    } else {
        sks_put_string(w, "Standard");
        put_view(w, pol->puk_id);
        sks_put_byte(w, pol->puk_retry_limit);
        put_view(w, pol->puk_value);
        sks_put_byte(w, pol->puk_format);
    }

    sks_put_string(w, "PIN Policy=");
    if (!pol->has_pin) {
        sks_put_string(w, "No PIN");
    } else {
        sks_put_string(w, "Standard");
        put_view(w, pol->pin_id);
        sks_put_bool(w, pol->user_defined);
        if (!pol->user_defined)
            put_view(w, pol->pin_value);
        sks_put_bool(w, pol->user_modifiable);
        sks_put_byte(w, pol->format);
        sks_put_byte(w, pol->retry_limit);
        sks_put_byte(w, pol->grouping);
        sks_put_byte(w, pol->pattern_restrictions);
        sks_put_byte(w, pol->min_length);
        sks_put_byte(w, pol->max_length);
        sks_put_bool(w, pol->caching_support);
        sks_put_byte(w, pol->input_method);
    }

    sks_put_string(w, "Key=");
    put_view(w, req->id);
    put_view(w, public_key);
    sks_put_bool(w, req->private_key_backup);
    sks_put_bool(w, req->migratable);
    sks_put_bool(w, req->updatable);
    sks_put_bool(w, req->delete_protected);
    sks_put_bool(w, req->import_private_key);
    sks_put_byte(w, req->key_usage);
    put_view(w, req->friendly_name);
    sks_put_byte(w, req->algorithm);
    sks_put_blob(w, encrypted_private_key.ptr, encrypted_private_key.len);
    put_view(w, req->mac);
    return w->failed ? -1 : 0;
}

int sks_close_attestation_data(sks_writer *w, sks_view close_mac)
{
    sks_put_string(w, "Success");
    put_view(w, close_mac);
    return w->failed ? -1 : 0;
}

int sks_sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    static const uint8_t empty[1] = {0};
    unsigned int len = 0;
    if (EVP_Digest(n > 0 ? p : empty, n, out, &len, sks_md_sha256(), NULL) != 1 || len != 32)
        return -1;
    return 0;
}

/* ---- SubjectPublicKeyInfo of P-256 keys -------------------------------- */

/*
 * OpenSSL 3.0 builds a decoder or encoder chain (a walk over every provider
 * algorithm) for each d2i_PUBKEY / i2d_PUBKEY, which costs several times an
 * ECDH. Every provisioning session moves a handful of P-256 public keys, so
 * the one DER form those keys have is handled directly, and everything else
 * goes through d2i_PUBKEY / i2d_PUBKEY as before.
 *
 * The form: SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 },
 * BIT STRING { 04 | X(32) | Y(32) } }, i.e. these 26 bytes, then the 65-byte
 * uncompressed point. It is exactly what i2d_PUBKEY writes for a P-256 key
 * with named-curve encoding and uncompressed points (OpenSSL's default).
 */
static const uint8_t p256_spki_head[26] = {
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
};
#define P256_POINT_LEN 65
#define P256_SPKI_LEN  (sizeof p256_spki_head + P256_POINT_LEN)

EVP_PKEY *sks_spki_decode(const uint8_t *der, size_t n)
{
    if (der == NULL || n == 0 || n > 0x7FFFFFFF)
        return NULL;
    if (n == P256_SPKI_LEN && memcmp(der, p256_spki_head, sizeof p256_spki_head) == 0 &&
        der[sizeof p256_spki_head] == 0x04) {
        /* Same point checks as the decoder (on the curve, coordinates < p). */
        return sks_ec_point_key(NULL, "prime256v1", der + sizeof p256_spki_head, P256_POINT_LEN);
    }
    const unsigned char *p = der;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)n);
    if (key != NULL && p != der + n) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    return key;
}

int sks_p256_point(const EVP_PKEY *key, uint8_t point[65])
{
    char group[32] = "", encoding[32] = "", format[32] = "";
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, encoding, sizeof encoding),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format, sizeof format),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, P256_POINT_LEN),
        OSSL_PARAM_END,
    };
    int ok = key != NULL && EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_params(key, params) == 1 &&
             OSSL_PARAM_modified(&params[0]) && OSSL_PARAM_modified(&params[1]) &&
             OSSL_PARAM_modified(&params[2]) && OSSL_PARAM_modified(&params[3]) &&
             strcmp(group, "prime256v1") == 0 &&
             strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) == 0 &&
             strcmp(format, OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) == 0 &&
             params[3].return_size == P256_POINT_LEN && point[0] == 0x04;
    return ok ? 0 : -1;
}

int sks_spki_encode(const EVP_PKEY *key, uint8_t **der, size_t *len)
{
    uint8_t point[P256_POINT_LEN];
    *der = NULL;
    *len = 0;
    if (key == NULL)
        return -1;
    if (sks_p256_point(key, point) == 0) {
        uint8_t *out = OPENSSL_malloc(P256_SPKI_LEN);
        if (out == NULL)
            return -1;
        memcpy(out, p256_spki_head, sizeof p256_spki_head);
        memcpy(out + sizeof p256_spki_head, point, P256_POINT_LEN);
        *der = out;
        *len = P256_SPKI_LEN;
        return 0;
    }
    unsigned char *out = NULL;
    int n = i2d_PUBKEY(key, &out);
    if (n <= 0) {
        OPENSSL_free(out);
        return -1;
    }
    *der = out;
    *len = (size_t)n;
    return 0;
}
