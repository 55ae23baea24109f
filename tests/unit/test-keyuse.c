/*
 * test-keyuse.c - the card's Key User API (docs/protocol.md section 7) on
 * keys provisioned end to end through the real issuer (testlib).
 *
 * Every signature is verified by OpenSSL against the key's public key as
 * the issuer received it, every decryption is of a ciphertext OpenSSL made,
 * every ECDH secret is compared with the one OpenSSL derives on the other
 * side; so the card is checked against an independent implementation, not
 * against itself. The PIN tests count the retry counter down through
 * enumeratePINPolicies, and a crash test shows the counter is committed
 * before the PIN is compared. A policy with CachingSupport false must see
 * its PIN verified again for every key use.
 */
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "card/card_internal.h"
#include "testlib.h"

/* ---- Helpers ------------------------------------------------------------ */

static sks_view str_view(const char *s)
{
    sks_view v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static sks_view bytes_view(const void *p, size_t n)
{
    sks_view v = {p, n};
    return v;
}

/* The OpenSSL digest of an SKS Hash byte (written out here, not taken from the card). */
static const EVP_MD *md_of(uint8_t hash)
{
    switch (hash) {
    case SKS_HASH_SHA1:
        return EVP_sha1();
    case SKS_HASH_SHA224:
        return EVP_sha224();
    case SKS_HASH_SHA256:
        return EVP_sha256();
    case SKS_HASH_SHA384:
        return EVP_sha384();
    case SKS_HASH_SHA512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

static const uint8_t message[] = "The quick brown fox jumps over the lazy dog";

/* Digest of `message` with `md` into out (64 bytes); its length. */
static size_t digest_of(const EVP_MD *md, uint8_t out[EVP_MAX_MD_SIZE])
{
    unsigned int n = 0;
    ck_assert(EVP_Digest(message, sizeof(message), out, &n, md, NULL) == 1);
    return n;
}

static int verify_pin(tl_card *c, uint32_t policy, const char *pin)
{
    sks_req_verify_pin req = {.pin_policy_handle = policy, .pin = str_view(pin)};
    return tl_call(c, SKS_M_VERIFY_PIN, &req, NULL, NULL);
}

static int change_pin(tl_card *c, uint32_t policy, const char *old_pin, const char *new_pin)
{
    sks_req_change_pin req = {
        .pin_policy_handle = policy, .old_pin = str_view(old_pin), .new_pin = str_view(new_pin)};
    return tl_call(c, SKS_M_CHANGE_PIN, &req, NULL, NULL);
}

static int unlock_pin(tl_card *c, uint32_t policy, const char *puk, const char *new_pin)
{
    sks_req_unlock_pin req = {
        .pin_policy_handle = policy, .puk = str_view(puk), .new_pin = str_view(new_pin)};
    return tl_call(c, SKS_M_UNLOCK_PIN, &req, NULL, NULL);
}

static int verify_puk(tl_card *c, uint32_t policy, const char *puk)
{
    sks_req_verify_puk req = {.pin_policy_handle = policy, .puk = str_view(puk)};
    return tl_call(c, SKS_M_VERIFY_PUK, &req, NULL, NULL);
}

static int logout(tl_card *c, uint32_t policy)
{
    sks_req_logout req = {.pin_policy_handle = policy};
    return tl_call(c, SKS_M_LOGOUT, &req, NULL, NULL);
}

/* signHashedData; the signature is copied into `sig`. */
static int sign_data(tl_card *c, uint32_t key, uint8_t alg, uint8_t hash, uint16_t salt,
                     const uint8_t *data, size_t n, sks_writer *sig)
{
    sks_req_sign req = {.key_handle = key,
                        .algorithm = alg,
                        .hash = hash,
                        .salt_length = salt,
                        .data = bytes_view(data, n)};
    sks_resp_sign resp;
    memset(&resp, 0, sizeof(resp));
    int st = tl_call(c, SKS_M_SIGN_HASHED_DATA, &req, &resp, NULL);
    sks_writer_reset(sig);
    if (st == SKS_OK)
        sks_put_raw(sig, resp.signature.ptr, resp.signature.len);
    return st;
}

/* A sign call whose result is not needed. */
static int try_sign(tl_card *c, uint32_t key, uint8_t alg, uint8_t hash, size_t n)
{
    uint8_t data[64];
    sks_writer sig;
    memset(data, 0x5A, sizeof(data));
    ck_assert(n <= sizeof(data));
    sks_writer_init(&sig);
    int st = sign_data(c, key, alg, hash, 0, data, n, &sig);
    sks_writer_free(&sig);
    return st;
}

/* asymmetricDecrypt; the plaintext is copied into `pt`. */
static int decrypt_data(tl_card *c, uint32_t key, uint8_t alg, uint8_t hash, uint8_t mgf,
                        sks_view label, sks_view data, sks_writer *pt)
{
    sks_req_decrypt req = {.key_handle = key,
                           .algorithm = alg,
                           .hash = hash,
                           .mgf_hash = mgf,
                           .label = label,
                           .data = data};
    sks_resp_decrypt resp;
    memset(&resp, 0, sizeof(resp));
    int st = tl_call(c, SKS_M_ASYMMETRIC_DECRYPT, &req, &resp, NULL);
    sks_writer_reset(pt);
    if (st == SKS_OK)
        sks_put_raw(pt, resp.plaintext.ptr, resp.plaintext.len);
    return st;
}

/* keyAgreement; the shared secret is copied into `secret`. */
static int agree(tl_card *c, uint32_t key, sks_view peer, sks_writer *secret)
{
    sks_req_key_agreement req = {.key_handle = key, .peer_public_key = peer};
    sks_resp_key_agreement resp;
    memset(&resp, 0, sizeof(resp));
    int st = tl_call(c, SKS_M_KEY_AGREEMENT, &req, &resp, NULL);
    sks_writer_reset(secret);
    if (st == SKS_OK)
        sks_put_raw(secret, resp.shared_secret.ptr, resp.shared_secret.len);
    return st;
}

static int get_attributes(tl_card *c, uint32_t key, sks_resp_get_key_attributes *resp)
{
    sks_req_key_handle req = {.key_handle = key};
    memset(resp, 0, sizeof(*resp));
    return tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &req, resp, NULL);
}

static int delete_key(tl_card *c, uint32_t key, const char *authorization)
{
    sks_req_delete_key req = {.key_handle = key, .authorization = str_view(authorization)};
    return tl_call(c, SKS_M_DELETE_KEY, &req, NULL, NULL);
}

/* The enumeratePINPolicies record of `policy`; 0 if it is not listed. */
static int find_policy(tl_card *c, uint32_t policy, sks_pin_policy_info *out)
{
    sks_resp_enumerate_pin_policies resp;
    uint8_t none = 0;
    int found = 0;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_PIN_POLICIES, &none, &resp, NULL));
    sks_reader r;
    sks_reader_init(&r, resp.policies.ptr, resp.policies.len);
    while (r.pos < r.len) {
        sks_pin_policy_info info;
        ck_assert_int_eq(sks_fields_read(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq,
                                         SKS_FF_WIRE, &r, &info, NULL),
                         SKS_OK);
        if (info.handle == policy) {
            *out = info;
            found = 1;
        }
    }
    ck_assert_int_eq(sks_reader_finish(&r), 0);
    return found;
}

static unsigned pin_tries_left(tl_card *c, uint32_t policy)
{
    sks_pin_policy_info info;
    ck_assert(find_policy(c, policy, &info));
    return info.tries_left;
}

static unsigned puk_tries_left(tl_card *c, uint32_t policy)
{
    sks_pin_policy_info info;
    ck_assert(find_policy(c, policy, &info));
    return info.puk_tries_left;
}

/* 1 if enumerateKeys (from the start, one page) lists `key`. */
static int key_listed(tl_card *c, uint32_t key)
{
    sks_req_enumerate_keys req = {.after_handle = 0};
    sks_resp_enumerate_keys resp;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_KEYS, &req, &resp, NULL));
    for (size_t i = 0; i + 4 <= resp.handles.len; i += 4)
        if (sks_be32_get(resp.handles.ptr + i) == key)
            return 1;
    return 0;
}

/* Provision with a spec; most tests use one key under PIN "1234". */
static tl_card *card_with_key(tl_key_spec *spec, tl_key *key)
{
    tl_card *c = tl_card_new();
    tl_provision_key(c, spec, key);
    return c;
}

/* ---- Signature verification with OpenSSL ---------------------------------- */

/* RSA signature over `message` (PKCS#1 v1.5, or PSS with saltlen and MGF1 = md). */
static int rsa_verify(EVP_PKEY *pub, int padding, const EVP_MD *md, int saltlen,
                      const sks_writer *sig)
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = m != NULL && EVP_DigestVerifyInit(m, &pctx, md, NULL, pub) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, padding) == 1;
    if (ok && padding == RSA_PKCS1_PSS_PADDING)
        ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) == 1;
    ok = ok && EVP_DigestVerify(m, sig->buf, sig->len, message, sizeof(message)) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

/* r | s back to a DER ECDSA-Sig-Value (appended to der). */
static void rs_to_der(const sks_writer *rs, sks_writer *der)
{
    size_t half = rs->len / 2;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs->buf, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(rs->buf + half, (int)half, NULL);
    ck_assert(sig != NULL && r != NULL && s != NULL);
    ck_assert(ECDSA_SIG_set0(sig, r, s) == 1);
    unsigned char *p = NULL;
    int n = i2d_ECDSA_SIG(sig, &p);
    ck_assert_int_gt(n, 0);
    sks_put_raw(der, p, (size_t)n);
    OPENSSL_free(p);
    ECDSA_SIG_free(sig);
}

/* ECDSA r | s over `message` with md, or over `data` as the hash when md is NULL. */
static int ecdsa_verify(EVP_PKEY *pub, const EVP_MD *md, const uint8_t *data, size_t n,
                        const sks_writer *rs)
{
    size_t order_len = ((size_t)EVP_PKEY_get_bits(pub) + 7) / 8;
    ck_assert_uint_eq(rs->len, 2 * order_len);
    sks_writer der;
    sks_writer_init(&der);
    rs_to_der(rs, &der);
    int ok;
    if (md != NULL) {
        EVP_MD_CTX *m = EVP_MD_CTX_new();
        ok = m != NULL && EVP_DigestVerifyInit(m, NULL, md, NULL, pub) == 1 &&
             EVP_DigestVerify(m, der.buf, der.len, message, sizeof(message)) == 1;
        EVP_MD_CTX_free(m);
    } else {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
        ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_verify(ctx, der.buf, der.len, data, n) == 1;
        EVP_PKEY_CTX_free(ctx);
    }
    sks_writer_free(&der);
    return ok;
}

/* ---- getDeviceInfo --------------------------------------------------------- */

START_TEST(test_device_info)
{
    sks_card_init_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.max_keys = 7;
    tl_card *c = tl_card_new_opts(&opts);
    sks_resp_get_device_info info;
    uint8_t none = 0;

    TL_OK(c, tl_call(c, SKS_M_GET_DEVICE_INFO, &none, &info, NULL));
    ck_assert_uint_eq(info.api_level, SKS_API_LEVEL);
    ck_assert_uint_eq(info.max_keys, 7);
    ck_assert_uint_eq(info.used_keys, 0);
    ck_assert_uint_gt(info.serial.len, 0);
    for (size_t i = 0; i < info.serial.len; i++)
        ck_assert(info.serial.ptr[i] >= 0x20 && info.serial.ptr[i] < 0x7F);
    /* docs/protocol.md 6.6 lists the five algorithms the card offers. */
    const uint8_t wanted[] = {SKS_KEYALG_RSA2048, SKS_KEYALG_RSA3072, SKS_KEYALG_RSA4096,
                              SKS_KEYALG_EC_P256, SKS_KEYALG_EC_P384};
    for (size_t w = 0; w < sizeof(wanted); w++)
        ck_assert_ptr_nonnull(memchr(info.key_algorithms.ptr, wanted[w], info.key_algorithms.len));

    /* The device path verifies against the development manufacturer CA. */
    ck_assert_uint_ge(info.device_certificate_path.count, 1);
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509 *leaf = NULL;
    for (size_t i = 0; i < info.device_certificate_path.count; i++) {
        const unsigned char *p = info.device_certificate_path.cert[i].ptr;
        X509 *x = d2i_X509(NULL, &p, (long)info.device_certificate_path.cert[i].len);
        ck_assert_ptr_nonnull(x);
        if (i == 0)
            leaf = x;
        else
            sk_X509_push(untrusted, x);
    }
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    ck_assert(X509_STORE_CTX_init(vctx, c->trusted, leaf, untrusted) == 1);
    ck_assert_msg(X509_verify_cert(vctx) == 1, "device path: %s",
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
    X509_STORE_CTX_free(vctx);
    X509_free(leaf);
    sk_X509_pop_free(untrusted, X509_free);

    /* UsedKeys counts a provisioned key. */
    tl_key_spec spec = {.key_count = 2};
    tl_key key;
    tl_provision_key(c, &spec, &key);
    TL_OK(c, tl_call(c, SKS_M_GET_DEVICE_INFO, &none, &info, NULL));
    ck_assert_uint_eq(info.used_keys, 2);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- signHashedData ------------------------------------------------------- */

START_TEST(test_sign_rsa)
{
    tl_key_spec spec = {.algorithm = SKS_KEYALG_RSA2048, .pin = "1234"};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t k = key.key[0];
    EVP_PKEY *pub = key.public_key[0];
    sks_writer sig;
    uint8_t h[EVP_MAX_MD_SIZE];
    sks_writer_init(&sig);
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));

    for (uint8_t hash = SKS_HASH_SHA1; hash <= SKS_HASH_SHA512; hash++) {
        const EVP_MD *md = md_of(hash);
        size_t hlen = digest_of(md, h);

        TL_OK(c, sign_data(c, k, SKS_SIGN_RSA_PKCS1, hash, 0, h, hlen, &sig));
        ck_assert_uint_eq(sig.len, 256);
        ck_assert_msg(rsa_verify(pub, RSA_PKCS1_PADDING, md, 0, &sig), "PKCS#1 hash %u", hash);

        /* PSS: no salt, salt of the hash size, and the largest salt of a 2048-bit key
         * (RFC 8017 9.1.1: emLen 256 - hLen - 2). */
        const uint16_t salts[] = {0, (uint16_t)hlen, (uint16_t)(256 - hlen - 2)};
        for (size_t s = 0; s < 3; s++) {
            TL_OK(c, sign_data(c, k, SKS_SIGN_RSA_PSS, hash, salts[s], h, hlen, &sig));
            ck_assert_msg(rsa_verify(pub, RSA_PKCS1_PSS_PADDING, md, salts[s], &sig),
                          "PSS hash %u salt %u", hash, salts[s]);
        }
        ck_assert_int_eq(
            sign_data(c, k, SKS_SIGN_RSA_PSS, hash, (uint16_t)(256 - hlen - 1), h, hlen, &sig),
            SKS_ERR_OPTION);
        /* A value that is not of the hash's size. */
        ck_assert_int_eq(sign_data(c, k, SKS_SIGN_RSA_PKCS1, hash, 0, h, hlen - 1, &sig),
                         SKS_ERR_OPTION);
    }

    /* Hash 0 with a complete DigestInfo: the SHA-256 prefix of RFC 8017 9.2 note 1. */
    static const uint8_t sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                            0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                            0x01, 0x05, 0x00, 0x04, 0x20};
    uint8_t digest_info[sizeof(sha256_prefix) + 32];
    memcpy(digest_info, sha256_prefix, sizeof(sha256_prefix));
    ck_assert_uint_eq(digest_of(EVP_sha256(), h), 32);
    memcpy(digest_info + sizeof(sha256_prefix), h, 32);
    TL_OK(c, sign_data(c, k, SKS_SIGN_RSA_PKCS1, SKS_HASH_NONE, 0, digest_info, sizeof(digest_info),
                       &sig));
    ck_assert(rsa_verify(pub, RSA_PKCS1_PADDING, EVP_sha256(), 0, &sig));

    /* Hash 0 with any data: raw PKCS#1 type 1 padding, recovered by OpenSSL. */
    TL_OK(c,
          sign_data(c, k, SKS_SIGN_RSA_PKCS1, SKS_HASH_NONE, 0, (const uint8_t *)"hello", 5, &sig));
    EVP_PKEY_CTX *rctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    uint8_t recovered[256];
    size_t rlen = sizeof(recovered);
    ck_assert(EVP_PKEY_verify_recover_init(rctx) == 1);
    ck_assert(EVP_PKEY_CTX_set_rsa_padding(rctx, RSA_PKCS1_PADDING) == 1);
    ck_assert(EVP_PKEY_verify_recover(rctx, recovered, &rlen, sig.buf, sig.len) == 1);
    ck_assert_uint_eq(rlen, 5);
    ck_assert_mem_eq(recovered, "hello", 5);
    EVP_PKEY_CTX_free(rctx);

    /* Limits: modulus size - 11 for raw data; PSS needs a hash; algorithm fits the key. */
    uint8_t big[246];
    memset(big, 1, sizeof(big));
    TL_OK(c, sign_data(c, k, SKS_SIGN_RSA_PKCS1, SKS_HASH_NONE, 0, big, 245, &sig));
    ck_assert_int_eq(sign_data(c, k, SKS_SIGN_RSA_PKCS1, SKS_HASH_NONE, 0, big, 246, &sig),
                     SKS_ERR_OPTION);
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_RSA_PSS, SKS_HASH_NONE, 32), SKS_ERR_ALGORITHM);
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32), SKS_ERR_ALGORITHM);
    ck_assert_int_eq(try_sign(c, k, 9, SKS_HASH_SHA256, 32), SKS_ERR_ALGORITHM);
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_RSA_PKCS1, 6, 32), SKS_ERR_ALGORITHM);
    ck_assert_int_eq(sign_data(c, k, SKS_SIGN_RSA_PKCS1, SKS_HASH_SHA256, 8, h, 32, &sig),
                     SKS_ERR_OPTION); /* SaltLength is for PSS only */

    sks_writer_free(&sig);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ECDSA on the curve of loop index _i (P-256, then P-384); the key has no PIN. */
START_TEST(test_sign_ecdsa)
{
    const uint8_t algs[] = {SKS_KEYALG_EC_P256, SKS_KEYALG_EC_P384};
    const size_t order_len[] = {32, 48};
    tl_key_spec spec = {.algorithm = algs[_i]};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t k = key.key[0];
    EVP_PKEY *pub = key.public_key[0];
    sks_writer sig;
    uint8_t h[EVP_MAX_MD_SIZE + 1]; /* one more for the oversize case */
    sks_writer_init(&sig);

    for (uint8_t hash = SKS_HASH_SHA1; hash <= SKS_HASH_SHA512; hash++) {
        const EVP_MD *md = md_of(hash);
        size_t hlen = digest_of(md, h);
        TL_OK(c, sign_data(c, k, SKS_SIGN_ECDSA, hash, 0, h, hlen, &sig));
        ck_assert_uint_eq(sig.len, 2 * order_len[_i]);
        ck_assert_msg(ecdsa_verify(pub, md, NULL, 0, &sig), "ECDSA hash %u", hash);
        ck_assert_int_eq(sign_data(c, k, SKS_SIGN_ECDSA, hash, 0, h, hlen + 1, &sig),
                         SKS_ERR_OPTION);
    }
    /* Hash 0: Data is the hash value, whatever its length. */
    const uint8_t raw[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
    TL_OK(c, sign_data(c, k, SKS_SIGN_ECDSA, SKS_HASH_NONE, 0, raw, sizeof(raw), &sig));
    ck_assert(ecdsa_verify(pub, NULL, raw, sizeof(raw), &sig));

    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_NONE, 0), SKS_ERR_OPTION);
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_RSA_PKCS1, SKS_HASH_SHA256, 32), SKS_ERR_ALGORITHM);
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_RSA_PSS, SKS_HASH_SHA256, 32), SKS_ERR_ALGORITHM);
    sks_writer_free(&sig);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- asymmetricDecrypt ------------------------------------------------------ */

/* Encrypt with OpenSSL: PKCS#1 v1.5 when md is NULL, else OAEP(md, mgf, label). */
static void rsa_encrypt(EVP_PKEY *pub, const EVP_MD *md, const EVP_MD *mgf, sks_view label,
                        const uint8_t *pt, size_t n, sks_writer *ct)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    uint8_t out[512];
    size_t outlen = sizeof(out);
    ck_assert(ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1);
    if (md == NULL) {
        ck_assert(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1);
    } else {
        ck_assert(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1);
        ck_assert(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md) == 1);
        ck_assert(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, mgf) == 1);
        if (label.len > 0) {
            void *l = OPENSSL_memdup(label.ptr, label.len);
            ck_assert(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, (int)label.len) == 1);
        }
    }
    ck_assert(EVP_PKEY_encrypt(ctx, out, &outlen, pt, n) == 1);
    sks_writer_reset(ct);
    sks_put_raw(ct, out, outlen);
    EVP_PKEY_CTX_free(ctx);
}

START_TEST(test_decrypt_rsa)
{
    tl_key_spec spec = {
        .algorithm = SKS_KEYALG_RSA2048, .key_usage = SKS_USAGE_DECRYPT, .pin = "1234"};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t k = key.key[0];
    EVP_PKEY *pub = key.public_key[0];
    const uint8_t secret[] = "session key 0123456789abcdef";
    sks_view label = str_view("my label");
    sks_view none = {NULL, 0};
    sks_writer ct, pt;
    sks_writer_init(&ct);
    sks_writer_init(&pt);

    rsa_encrypt(pub, NULL, NULL, none, secret, sizeof(secret), &ct);
    ck_assert_int_eq(
        decrypt_data(c, k, SKS_DECRYPT_RSA_PKCS1, 0, 0, none, bytes_view(ct.buf, ct.len), &pt),
        SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));

    /* PKCS#1 v1.5. */
    TL_OK(c,
          decrypt_data(c, k, SKS_DECRYPT_RSA_PKCS1, 0, 0, none, bytes_view(ct.buf, ct.len), &pt));
    ck_assert_uint_eq(pt.len, sizeof(secret));
    ck_assert_mem_eq(pt.buf, secret, sizeof(secret));

    /* OAEP with every hash, with MGF1 of another hash, with and without a label. */
    for (uint8_t hash = SKS_HASH_SHA1; hash <= SKS_HASH_SHA512; hash++) {
        uint8_t mgf = hash == SKS_HASH_SHA1 ? SKS_HASH_SHA256 : hash;
        rsa_encrypt(pub, md_of(hash), md_of(mgf), label, secret, sizeof(secret), &ct);
        TL_OK(c, decrypt_data(c, k, SKS_DECRYPT_RSA_OAEP, hash, mgf, label,
                              bytes_view(ct.buf, ct.len), &pt));
        ck_assert_uint_eq(pt.len, sizeof(secret));
        ck_assert_mem_eq(pt.buf, secret, sizeof(secret));
        /* The label is bound: another label (or none) fails. */
        ck_assert_int_eq(decrypt_data(c, k, SKS_DECRYPT_RSA_OAEP, hash, mgf, str_view("other"),
                                      bytes_view(ct.buf, ct.len), &pt),
                         SKS_ERR_CRYPTO);
        ck_assert_int_eq(decrypt_data(c, k, SKS_DECRYPT_RSA_OAEP, hash, mgf, none,
                                      bytes_view(ct.buf, ct.len), &pt),
                         SKS_ERR_CRYPTO);
    }
    rsa_encrypt(pub, EVP_sha256(), EVP_sha256(), none, secret, sizeof(secret), &ct);
    TL_OK(c, decrypt_data(c, k, SKS_DECRYPT_RSA_OAEP, SKS_HASH_SHA256, SKS_HASH_SHA256, none,
                          bytes_view(ct.buf, ct.len), &pt));
    ck_assert_mem_eq(pt.buf, secret, sizeof(secret));

    /* Wrong arguments. */
    sks_view data = bytes_view(ct.buf, ct.len);
    ck_assert_int_eq(decrypt_data(c, k, SKS_DECRYPT_RSA_OAEP, SKS_HASH_SHA256, SKS_HASH_SHA256,
                                  none, bytes_view(ct.buf, ct.len - 1), &pt),
                     SKS_ERR_OPTION);
    ck_assert_int_eq(
        decrypt_data(c, k, SKS_DECRYPT_RSA_OAEP, SKS_HASH_NONE, SKS_HASH_SHA256, none, data, &pt),
        SKS_ERR_ALGORITHM);
    ck_assert_int_eq(decrypt_data(c, k, SKS_DECRYPT_RSA_OAEP, SKS_HASH_SHA256, 7, none, data, &pt),
                     SKS_ERR_ALGORITHM);
    ck_assert_int_eq(decrypt_data(c, k, SKS_DECRYPT_RSA_PKCS1, 0, 0, label, data, &pt),
                     SKS_ERR_OPTION);
    ck_assert_int_eq(decrypt_data(c, k, 3, 0, 0, none, data, &pt), SKS_ERR_ALGORITHM);
    /* This key is for decryption only. */
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_RSA_PKCS1, SKS_HASH_SHA256, 32), SKS_ERR_NOT_ALLOWED);

    sks_writer_free(&ct);
    sks_writer_free(&pt);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- keyAgreement ------------------------------------------------------------ */

/* The uncompressed point of an EC key. */
static void point_of(EVP_PKEY *k, sks_writer *w)
{
    uint8_t buf[200];
    size_t len = 0;
    ck_assert(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof(buf), &len) ==
              1);
    ck_assert_uint_eq(buf[0], 0x04);
    sks_writer_reset(w);
    sks_put_raw(w, buf, len);
}

static void spki_of(EVP_PKEY *k, sks_writer *w)
{
    unsigned char *p = NULL;
    int n = i2d_PUBKEY(k, &p);
    ck_assert_int_gt(n, 0);
    sks_writer_reset(w);
    sks_put_raw(w, p, (size_t)n);
    OPENSSL_free(p);
}

/* The ECDH secret OpenSSL computes from the peer's side. */
static void openssl_ecdh(EVP_PKEY *priv, EVP_PKEY *pub, sks_writer *w)
{
    uint8_t buf[100];
    size_t len = sizeof(buf);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    ck_assert(ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
              EVP_PKEY_derive_set_peer(ctx, pub) == 1 && EVP_PKEY_derive(ctx, buf, &len) == 1);
    EVP_PKEY_CTX_free(ctx);
    sks_writer_reset(w);
    sks_put_raw(w, buf, len);
}

START_TEST(test_key_agreement)
{
    const uint8_t algs[] = {SKS_KEYALG_EC_P256, SKS_KEYALG_EC_P384};
    const char *curves[] = {"P-256", "P-384"};
    const char *other_curves[] = {"P-384", "P-256"};
    tl_key_spec spec = {.algorithm = algs[_i], .key_usage = SKS_USAGE_KEY_AGREEMENT};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t k = key.key[0];
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[_i]);
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", other_curves[_i]);
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    sks_writer expected, got, enc;
    sks_writer_init(&expected);
    sks_writer_init(&got);
    sks_writer_init(&enc);
    ck_assert(peer != NULL && other != NULL && rsa != NULL);

    openssl_ecdh(peer, key.public_key[0], &expected);
    ck_assert_uint_eq(expected.len, _i == 0 ? 32 : 48);

    point_of(peer, &enc);
    TL_OK(c, agree(c, k, bytes_view(enc.buf, enc.len), &got));
    ck_assert_uint_eq(got.len, expected.len);
    ck_assert_mem_eq(got.buf, expected.buf, expected.len);

    spki_of(peer, &enc);
    TL_OK(c, agree(c, k, bytes_view(enc.buf, enc.len), &got));
    ck_assert_uint_eq(got.len, expected.len);
    ck_assert_mem_eq(got.buf, expected.buf, expected.len);

    /* Another curve, as a point and as SPKI; an RSA key. */
    point_of(other, &enc);
    ck_assert_int_eq(agree(c, k, bytes_view(enc.buf, enc.len), &got), SKS_ERR_ALGORITHM);
    spki_of(other, &enc);
    ck_assert_int_eq(agree(c, k, bytes_view(enc.buf, enc.len), &got), SKS_ERR_ALGORITHM);
    spki_of(rsa, &enc);
    ck_assert_int_eq(agree(c, k, bytes_view(enc.buf, enc.len), &got), SKS_ERR_ALGORITHM);

    /* A point off the curve (last byte of Y changed), a compressed point, garbage. */
    point_of(peer, &enc);
    enc.buf[enc.len - 1] ^= 0x01;
    ck_assert_int_eq(agree(c, k, bytes_view(enc.buf, enc.len), &got), SKS_ERR_CRYPTO);
    enc.buf[0] = 0x02;
    ck_assert_int_eq(agree(c, k, bytes_view(enc.buf, 1 + expected.len), &got), SKS_ERR_OPTION);
    spki_of(peer, &enc);
    ck_assert_int_eq(agree(c, k, bytes_view(enc.buf, enc.len - 3), &got), SKS_ERR_CRYPTO);
    ck_assert_int_eq(agree(c, k, bytes_view(NULL, 0), &got), SKS_ERR_OPTION);

    /* This key is for key agreement only. */
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32), SKS_ERR_NOT_ALLOWED);

    EVP_PKEY_free(peer);
    EVP_PKEY_free(other);
    EVP_PKEY_free(rsa);
    sks_writer_free(&expected);
    sks_writer_free(&got);
    sks_writer_free(&enc);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- KeyUsage -------------------------------------------------------------------- */

START_TEST(test_usage_enforced)
{
    tl_key_spec spec = {.algorithm = SKS_KEYALG_EC_P256, .key_usage = SKS_USAGE_SIGN};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t k = key.key[0];
    sks_writer w, enc;
    sks_writer_init(&w);
    sks_writer_init(&enc);
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(peer);

    /* A sign-only EC key: no key agreement, no decryption (usage before algorithm). */
    point_of(peer, &enc);
    ck_assert_int_eq(agree(c, k, bytes_view(enc.buf, enc.len), &w), SKS_ERR_NOT_ALLOWED);
    uint8_t ct[256] = {0};
    ck_assert_int_eq(decrypt_data(c, k, SKS_DECRYPT_RSA_PKCS1, 0, 0, bytes_view(NULL, 0),
                                  bytes_view(ct, sizeof(ct)), &w),
                     SKS_ERR_NOT_ALLOWED);
    TL_OK(c, try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32));
    /* Unknown key handles. */
    ck_assert_int_eq(try_sign(c, k + 1000, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32), SKS_ERR_NO_KEY);
    ck_assert_int_eq(try_sign(c, 0, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32), SKS_ERR_NO_KEY);

    EVP_PKEY_free(peer);
    sks_writer_free(&w);
    sks_writer_free(&enc);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- Verification state ----------------------------------------------------------- */

START_TEST(test_pin_verification_state)
{
    tl_key_spec spec = {.pin = "1234"};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t k = key.key[0];
    sks_pin_policy_info info;

    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32),
                     SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    ck_assert(find_policy(c, key.pin_policy, &info));
    ck_assert_uint_eq(info.verified, 1);
    TL_OK(c, try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32));

    /* logout of the policy, and of all. */
    TL_OK(c, logout(c, key.pin_policy));
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32),
                     SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    TL_OK(c, logout(c, 0));
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32),
                     SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(logout(c, key.pin_policy + 1000), SKS_ERR_NO_POLICY);

    /* A card reset forgets the verification. */
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    sks_card_reset(c->card);
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32),
                     SKS_ERR_NOT_AUTHENTICATED);
    ck_assert(find_policy(c, key.pin_policy, &info));
    ck_assert_uint_eq(info.verified, 0);

    /* A failed verification forgets an earlier one. */
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    ck_assert_int_eq(verify_pin(c, key.pin_policy, "9999"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32),
                     SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(verify_pin(c, key.pin_policy + 1000, "1234"), SKS_ERR_NO_POLICY);

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- CachingSupport (docs/protocol.md 6.5, 7.0) ----------------------------------- */

/* CachingSupport false: every successful key use consumes the PIN verification. */
START_TEST(test_no_caching_consumes_verification)
{
    tl_key_spec spec = {.pin = "1234",
                        .pin_no_caching = 1,
                        .key_count = 2,
                        .key_usage = SKS_USAGE_SIGN | SKS_USAGE_KEY_AGREEMENT};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t k = key.key[0], other = key.key[1];
    uint8_t h[EVP_MAX_MD_SIZE];
    size_t hlen = digest_of(EVP_sha256(), h);
    sks_writer sig, enc;
    sks_writer_init(&sig);
    sks_writer_init(&enc);
    sks_pin_policy_info info;

    ck_assert(find_policy(c, key.pin_policy, &info));
    ck_assert_uint_eq(info.caching_support, 0);

    /* One verifyPIN, one signature (a valid one); the second needs the PIN again. */
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    TL_OK(c, sign_data(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen, &sig));
    ck_assert(ecdsa_verify(key.public_key[0], EVP_sha256(), NULL, 0, &sig));
    ck_assert(find_policy(c, key.pin_policy, &info));
    ck_assert_uint_eq(info.verified, 0);
    ck_assert_int_eq(sign_data(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen, &sig),
                     SKS_ERR_NOT_AUTHENTICATED);

    /* A verifyPIN before each use: every signature goes through. */
    for (int i = 0; i < 3; i++) {
        TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
        TL_OK(c, sign_data(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen, &sig));
        ck_assert(ecdsa_verify(key.public_key[0], EVP_sha256(), NULL, 0, &sig));
    }
    /* The counter was never touched by the uses. */
    ck_assert_uint_eq(pin_tries_left(c, key.pin_policy), 3);

    /* A failed operation leaves the verification in place. */
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    ck_assert_int_eq(sign_data(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen - 1, &sig),
                     SKS_ERR_OPTION);
    TL_OK(c, sign_data(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen, &sig));

    /* The verification belongs to the policy: a use of one key consumes it for the other. */
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    TL_OK(c, sign_data(c, other, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen, &sig));
    ck_assert(ecdsa_verify(key.public_key[1], EVP_sha256(), NULL, 0, &sig));
    ck_assert_int_eq(sign_data(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen, &sig),
                     SKS_ERR_NOT_AUTHENTICATED);

    /* keyAgreement consumes it as well. */
    EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(peer);
    point_of(peer, &enc);
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    TL_OK(c, agree(c, k, bytes_view(enc.buf, enc.len), &sig));
    ck_assert_int_eq(agree(c, k, bytes_view(enc.buf, enc.len), &sig), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(sign_data(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen, &sig),
                     SKS_ERR_NOT_AUTHENTICATED);

    EVP_PKEY_free(peer);
    sks_writer_free(&sig);
    sks_writer_free(&enc);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* asymmetricDecrypt under CachingSupport false: one decryption per verifyPIN. */
START_TEST(test_no_caching_decrypt)
{
    tl_key_spec spec = {.algorithm = SKS_KEYALG_RSA2048,
                        .key_usage = SKS_USAGE_DECRYPT,
                        .pin = "1234",
                        .pin_no_caching = 1};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    const uint8_t secret[] = "session key 0123456789abcdef";
    sks_view none = {NULL, 0};
    sks_writer ct, pt;
    sks_writer_init(&ct);
    sks_writer_init(&pt);

    rsa_encrypt(key.public_key[0], EVP_sha256(), EVP_sha256(), none, secret, sizeof(secret), &ct);
    sks_view data = bytes_view(ct.buf, ct.len);
    for (int i = 0; i < 2; i++) {
        TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
        TL_OK(c, decrypt_data(c, key.key[0], SKS_DECRYPT_RSA_OAEP, SKS_HASH_SHA256, SKS_HASH_SHA256,
                              none, data, &pt));
        ck_assert_uint_eq(pt.len, sizeof(secret));
        ck_assert_mem_eq(pt.buf, secret, sizeof(secret));
        ck_assert_int_eq(decrypt_data(c, key.key[0], SKS_DECRYPT_RSA_OAEP, SKS_HASH_SHA256,
                                      SKS_HASH_SHA256, none, data, &pt),
                         SKS_ERR_NOT_AUTHENTICATED);
    }

    sks_writer_free(&ct);
    sks_writer_free(&pt);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* CachingSupport true (testlib's default): one verifyPIN serves many uses. */
START_TEST(test_caching_keeps_verification)
{
    tl_key_spec spec = {.pin = "1234"};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint8_t h[EVP_MAX_MD_SIZE];
    size_t hlen = digest_of(EVP_sha256(), h);
    sks_writer sig;
    sks_writer_init(&sig);
    sks_pin_policy_info info;

    ck_assert(find_policy(c, key.pin_policy, &info));
    ck_assert_uint_eq(info.caching_support, 1);
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    for (int i = 0; i < 5; i++) {
        TL_OK(c, sign_data(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen, &sig));
        ck_assert(ecdsa_verify(key.public_key[0], EVP_sha256(), NULL, 0, &sig));
    }
    ck_assert(find_policy(c, key.pin_policy, &info));
    ck_assert_uint_eq(info.verified, 1);

    sks_writer_free(&sig);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- Retry counters ---------------------------------------------------------------- */

START_TEST(test_pin_counter)
{
    tl_key_spec spec = {.pin = "1234", .pin_retry_limit = 3};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t pol = key.pin_policy;
    sks_pin_policy_info info;

    ck_assert(find_policy(c, pol, &info));
    ck_assert_uint_eq(info.retry_limit, 3);
    ck_assert_uint_eq(info.tries_left, 3);
    ck_assert_uint_eq(info.pin_set, 1);
    ck_assert_uint_eq(info.min_length, 4);
    ck_assert_uint_eq(info.max_length, 16);
    ck_assert_uint_eq(info.provisioning_handle, key.session);
    ck_assert_uint_eq(info.id.len, 3);
    ck_assert_mem_eq(info.id.ptr, "pin", 3);

    /* A wrong PIN costs a try; a right one restores the counter. */
    ck_assert_int_eq(verify_pin(c, pol, "9999"), SKS_ERR_AUTHENTICATION);
    ck_assert_ptr_null(strstr(c->error, "9999"));
    ck_assert_uint_eq(pin_tries_left(c, pol), 2);
    TL_OK(c, verify_pin(c, pol, "1234"));
    ck_assert_uint_eq(pin_tries_left(c, pol), 3);

    /* Shorter, longer and prefix values are wrong too. */
    ck_assert_int_eq(verify_pin(c, pol, "123"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(verify_pin(c, pol, "12345"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(verify_pin(c, pol, ""), SKS_ERR_AUTHENTICATION);
    ck_assert_uint_eq(pin_tries_left(c, pol), 0);

    /* Blocked: even the right PIN is refused, without spending anything. */
    ck_assert_int_eq(verify_pin(c, pol, "1234"), SKS_ERR_PIN_BLOCKED);
    ck_assert_int_eq(verify_pin(c, pol, "1234"), SKS_ERR_PIN_BLOCKED);
    ck_assert_uint_eq(pin_tries_left(c, pol), 0);
    ck_assert_int_eq(try_sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32),
                     SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(change_pin(c, pol, "1234", "5678"), SKS_ERR_NOT_ALLOWED); /* not modifiable */

    /* The counter lives in the card's storage: a power cycle keeps it. */
    tl_card_reopen(c);
    ck_assert_int_eq(verify_pin(c, pol, "1234"), SKS_ERR_PIN_BLOCKED);
    /* No PUK on this policy: it cannot be unlocked. */
    ck_assert_int_eq(unlock_pin(c, pol, "1234", "5678"), SKS_ERR_NOT_ALLOWED);

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

START_TEST(test_unlock_with_puk)
{
    tl_key_spec spec = {
        .pin = "1234", .puk = "12345678", .pin_retry_limit = 2, .puk_retry_limit = 3};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t pol = key.pin_policy;
    sks_pin_policy_info info;

    ck_assert(find_policy(c, pol, &info));
    ck_assert_uint_eq(info.puk_policy_handle, key.puk_policy);
    ck_assert_uint_eq(info.puk_retry_limit, 3);
    ck_assert_uint_eq(info.puk_tries_left, 3);

    ck_assert_int_eq(verify_pin(c, pol, "0000"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(verify_pin(c, pol, "0000"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(verify_pin(c, pol, "1234"), SKS_ERR_PIN_BLOCKED);

    /* A new PIN outside the policy is refused before the PUK is tried. */
    ck_assert_int_eq(unlock_pin(c, pol, "12345678", "12"), SKS_ERR_OPTION);
    ck_assert_int_eq(unlock_pin(c, pol, "12345678", "12AB"), SKS_ERR_OPTION);
    ck_assert_uint_eq(puk_tries_left(c, pol), 3);

    /* A wrong PUK costs a PUK try and changes nothing else. */
    ck_assert_int_eq(unlock_pin(c, pol, "87654321", "5678"), SKS_ERR_AUTHENTICATION);
    ck_assert_ptr_null(strstr(c->error, "87654321"));
    ck_assert_uint_eq(puk_tries_left(c, pol), 2);
    ck_assert_int_eq(verify_pin(c, pol, "5678"), SKS_ERR_PIN_BLOCKED);

    /* The right PUK: new PIN, both counters full, the old PIN gone. */
    TL_OK(c, unlock_pin(c, pol, "12345678", "5678"));
    ck_assert(find_policy(c, pol, &info));
    ck_assert_uint_eq(info.puk_tries_left, 3);
    ck_assert_uint_eq(info.tries_left, 2);
    ck_assert_uint_eq(info.verified, 0);
    ck_assert_int_eq(verify_pin(c, pol, "1234"), SKS_ERR_AUTHENTICATION);
    TL_OK(c, verify_pin(c, pol, "5678"));
    TL_OK(c, try_sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32));

    /* Wrong PUKs count down to a blocked PUK that refuses the right value. */
    for (unsigned i = 3; i > 0; i--) {
        ck_assert_int_eq(unlock_pin(c, pol, "00000000", "4321"), SKS_ERR_AUTHENTICATION);
        ck_assert_uint_eq(puk_tries_left(c, pol), i - 1);
    }
    ck_assert_int_eq(unlock_pin(c, pol, "12345678", "4321"), SKS_ERR_PIN_BLOCKED);
    TL_OK(c, verify_pin(c, pol, "5678")); /* the PIN is untouched */

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

START_TEST(test_puk_without_limit)
{
    tl_key_spec spec = {.pin = "1234", .puk = "12345678", .puk_retry_limit = 0};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t pol = key.pin_policy;
    unsigned before = puk_tries_left(c, pol);

    /* More wrong PUKs than any counter would allow: no counter, nothing changes. */
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(unlock_pin(c, pol, "00000000", "5678"), SKS_ERR_AUTHENTICATION);
    ck_assert_uint_eq(puk_tries_left(c, pol), before);

    /* An unlock while the PIN is verified: the old verification is forgotten. */
    TL_OK(c, verify_pin(c, pol, "1234"));
    TL_OK(c, unlock_pin(c, pol, "12345678", "5678"));
    ck_assert_int_eq(try_sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32),
                     SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, pol, "5678"));
    TL_OK(c, try_sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32));

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- verifyPUK ---------------------------------------------------------------------- */

START_TEST(test_verify_puk)
{
    tl_key_spec spec = {.pin = "1234", .puk = "12345678", .puk_retry_limit = 3};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t pol = key.pin_policy, k = key.key[0];

    /* An empty PUK without verifyPUK: refused without spending a try. */
    ck_assert_int_eq(unlock_pin(c, pol, "", "5678"), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_uint_eq(puk_tries_left(c, pol), 3);
    TL_OK(c, verify_pin(c, pol, "1234")); /* the PIN is unchanged */

    /* A wrong PUK costs a try; the right one restores the counter. */
    ck_assert_int_eq(verify_puk(c, pol, "87654321"), SKS_ERR_AUTHENTICATION);
    ck_assert_ptr_null(strstr(c->error, "87654321"));
    ck_assert_uint_eq(puk_tries_left(c, pol), 2);
    ck_assert_int_eq(unlock_pin(c, pol, "", "5678"), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_puk(c, pol, "12345678"));
    ck_assert_uint_eq(puk_tries_left(c, pol), 3);

    /* PUK verified: unlockPIN takes an empty PUK (and spends nothing). */
    TL_OK(c, unlock_pin(c, pol, "", "5678"));
    ck_assert_uint_eq(puk_tries_left(c, pol), 3);
    /* unlockPIN forgot the PIN verification, not the PUK's. */
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32),
                     SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(verify_pin(c, pol, "1234"), SKS_ERR_AUTHENTICATION);
    TL_OK(c, verify_pin(c, pol, "5678"));
    TL_OK(c, unlock_pin(c, pol, "", "2468"));
    TL_OK(c, verify_pin(c, pol, "2468"));
    /* The new PIN must still satisfy the policy. */
    ck_assert_int_eq(unlock_pin(c, pol, "", "12"), SKS_ERR_OPTION);
    /* A verified PUK does not verify the PIN. */
    TL_OK(c, logout(c, 0));
    TL_OK(c, verify_puk(c, pol, "12345678"));
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32),
                     SKS_ERR_NOT_AUTHENTICATED);

    /* A failed check of the PUK forgets the mark: in verifyPUK ... */
    ck_assert_int_eq(verify_puk(c, pol, "00000000"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(unlock_pin(c, pol, "", "1357"), SKS_ERR_NOT_AUTHENTICATED);
    /* ... and in unlockPIN. */
    TL_OK(c, verify_puk(c, pol, "12345678"));
    ck_assert_int_eq(unlock_pin(c, pol, "00000000", "1357"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(unlock_pin(c, pol, "", "1357"), SKS_ERR_NOT_AUTHENTICATED);
    /* A right PUK given to unlockPIN works as before, with or without the mark. */
    TL_OK(c, unlock_pin(c, pol, "12345678", "1357"));
    TL_OK(c, verify_pin(c, pol, "1357"));

    /* logout of the policy, logout of all and a card reset forget the mark. */
    TL_OK(c, verify_puk(c, pol, "12345678"));
    TL_OK(c, logout(c, pol));
    ck_assert_int_eq(unlock_pin(c, pol, "", "1470"), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_puk(c, pol, "12345678"));
    TL_OK(c, logout(c, 0));
    ck_assert_int_eq(unlock_pin(c, pol, "", "1470"), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_puk(c, pol, "12345678"));
    sks_card_reset(c->card);
    ck_assert_int_eq(unlock_pin(c, pol, "", "1470"), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, pol, "1357"));

    /* Wrong PUKs block it; a blocked PUK refuses the right value and unlocks nothing. */
    TL_OK(c, verify_puk(c, pol, "12345678"));
    for (unsigned i = 3; i > 0; i--) {
        ck_assert_int_eq(verify_puk(c, pol, "00000000"), SKS_ERR_AUTHENTICATION);
        ck_assert_uint_eq(puk_tries_left(c, pol), i - 1);
    }
    ck_assert_int_eq(verify_puk(c, pol, "12345678"), SKS_ERR_PIN_BLOCKED);
    ck_assert_int_eq(unlock_pin(c, pol, "", "1470"), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(unlock_pin(c, pol, "12345678", "1470"), SKS_ERR_PIN_BLOCKED);
    TL_OK(c, verify_pin(c, pol, "1357"));

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* verifyPUK's other statuses; deleteKey's failed Authorization forgets the mark too. */
START_TEST(test_verify_puk_statuses)
{
    tl_key_spec nopuk = {.pin = "1234"};
    tl_key_spec prot = {.pin = "1234",
                        .puk = "12345678",
                        .puk_retry_limit = 5,
                        .flags = SKS_KEYFLAG_DELETE_PROTECTED};
    tl_key a, b;
    tl_card *c = card_with_key(&nopuk, &a);
    tl_provision_key(c, &prot, &b);

    ck_assert_int_eq(verify_puk(c, a.pin_policy, "12345678"), SKS_ERR_NOT_ALLOWED);
    ck_assert_int_eq(unlock_pin(c, a.pin_policy, "", "5678"), SKS_ERR_NOT_ALLOWED);
    ck_assert_int_eq(verify_puk(c, b.pin_policy + 1000, "12345678"), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(verify_puk(c, 0, "12345678"), SKS_ERR_NO_POLICY);
    /* A PUK policy handle is not a PIN policy handle. */
    ck_assert_int_eq(verify_puk(c, b.puk_policy, "12345678"), SKS_ERR_NO_POLICY);

    /* The mark is per PIN policy. */
    TL_OK(c, verify_puk(c, b.pin_policy, "12345678"));
    ck_assert_int_eq(unlock_pin(c, a.pin_policy, "", "5678"), SKS_ERR_NOT_ALLOWED);
    TL_OK(c, verify_pin(c, b.pin_policy, "1234"));
    ck_assert_int_eq(delete_key(c, b.key[0], "00000000"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(unlock_pin(c, b.pin_policy, "", "5678"), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert(key_listed(c, b.key[0]));

    tl_key_free(&a);
    tl_key_free(&b);
    tl_card_free(c);
}
END_TEST

/* Elapsed wall time of one call in milliseconds. */
static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1000.0 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* A PUK without a retry limit is compared only after the card's delay (1 s by default). */
START_TEST(test_puk_delay)
{
    tl_key_spec spec = {.pin = "1234", .puk = "12345678", .puk_retry_limit = 0};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    char err[256];
    struct timespec t0;

    /* A card as sks_card_open leaves it (testlib sets the delay to 0). */
    sks_card_close(c->card);
    c->card = sks_card_open(c->dir, err, sizeof(err));
    ck_assert_msg(c->card != NULL, "%s", err);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(verify_puk(c, key.pin_policy, "00000000"), SKS_ERR_AUTHENTICATION);
    double waited = ms_since(&t0);
    ck_assert_msg(waited >= 900.0, "a PUK without limit was checked after %.0f ms", waited);
    /* No counter: nothing was spent or blocked. */
    sks_card_set_puk_delay_ms(c->card, 0);
    TL_OK(c, verify_puk(c, key.pin_policy, "12345678"));
    TL_OK(c, unlock_pin(c, key.pin_policy, "", "5678"));

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

START_TEST(test_change_pin)
{
    tl_key_spec spec = {.pin = "1234", .user_modifiable = 1, .pin_retry_limit = 3};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t pol = key.pin_policy;

    /* New PINs outside the policy cost no try. */
    ck_assert_int_eq(change_pin(c, pol, "1234", "123"), SKS_ERR_OPTION);
    ck_assert_int_eq(change_pin(c, pol, "1234", "12345678901234567"), SKS_ERR_OPTION);
    ck_assert_int_eq(change_pin(c, pol, "1234", "12a4"), SKS_ERR_OPTION);
    ck_assert_uint_eq(pin_tries_left(c, pol), 3);

    /* A wrong old PIN costs one. */
    ck_assert_int_eq(change_pin(c, pol, "1111", "5678"), SKS_ERR_AUTHENTICATION);
    ck_assert_uint_eq(pin_tries_left(c, pol), 2);

    TL_OK(c, change_pin(c, pol, "1234", "5678"));
    ck_assert_uint_eq(pin_tries_left(c, pol), 3);
    ck_assert_int_eq(verify_pin(c, pol, "1234"), SKS_ERR_AUTHENTICATION);
    TL_OK(c, verify_pin(c, pol, "5678"));
    TL_OK(c, try_sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32));
    /* The new PIN survives a power cycle. */
    tl_card_reopen(c);
    TL_OK(c, verify_pin(c, pol, "5678"));

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

START_TEST(test_change_pin_not_modifiable)
{
    tl_key_spec spec = {.pin = "1234", .user_modifiable = 0};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);

    ck_assert_int_eq(change_pin(c, key.pin_policy, "1234", "5678"), SKS_ERR_NOT_ALLOWED);
    ck_assert_uint_eq(pin_tries_left(c, key.pin_policy), 3);
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/*
 * The counter is committed before the compare: a child process verifies
 * the right PIN and dies at its n-th storage write, for n = 1, 2, ... until
 * a run completes. After every crash the counter must be either untouched
 * or one down (never restored without the decrement having been durable),
 * and at least one crash - the one at the restoring write - must leave it
 * one down.
 */
START_TEST(test_pin_counter_survives_crash)
{
    tl_key_spec spec = {.pin = "1234", .pin_retry_limit = 5};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t pol = key.pin_policy;
    int completed = 0, crashes = 0, one_down = 0;

    for (long n = 1; n <= 40 && !completed; n++) {
        sks_card_close(c->card);
        c->card = NULL;
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            char err[256];
            c->card = sks_card_open(c->dir, err, sizeof(err));
            if (c->card == NULL)
                _exit(2);
            card_store_set_crash_after(c->card->store, n);
            _exit(verify_pin(c, pol, "1234") == SKS_OK ? 0 : 1);
        }
        int wstatus = 0;
        ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
        ck_assert(WIFEXITED(wstatus));
        tl_card_reopen(c);
        unsigned tries = pin_tries_left(c, pol);
        if (WEXITSTATUS(wstatus) == 0) {
            completed = 1;
            ck_assert_uint_eq(tries, 5);
            continue;
        }
        ck_assert_int_eq(WEXITSTATUS(wstatus), CARD_STORE_CRASH_EXIT);
        crashes++;
        if (n == 1)
            ck_assert_uint_eq(tries, 5); /* died before anything was committed */
        ck_assert_msg(tries == 5 || tries == 4, "crash at write %ld left %u tries", n, tries);
        if (tries == 4) {
            one_down++;
            TL_OK(c, verify_pin(c, pol, "1234")); /* back to 5 for the next round */
        }
    }
    ck_assert(completed);
    ck_assert_int_ge(crashes, 2);
    ck_assert_int_ge(one_down, 1);

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- Objects the Key User API must not see --------------------------------------- */

START_TEST(test_open_session_invisible)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    sks_issuer_msg m;
    sks_issuer_msg_init(&m);

    sks_issuer_pin_policy p;
    memset(&p, 0, sizeof(p));
    p.id = "pin";
    p.retry_limit = 3;
    p.min_length = 4;
    p.max_length = 8;
    sks_req_create_pin_policy preq;
    sks_resp_create_pin_policy presp;
    ck_assert(sks_issuer_prepare_pin_policy(is, &p, 0, &m, &preq) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_PIN_POLICY, &preq, &presp, NULL));

    sks_issuer_key_spec ks;
    memset(&ks, 0, sizeof(ks));
    ks.id = "open";
    ks.pin_policy_id = "pin";
    ks.pin = str_view("1234");
    ks.key_usage = SKS_USAGE_SIGN;
    ks.migratable = 1;
    ks.algorithm = SKS_KEYALG_EC_P256;
    sks_req_create_key_pair kreq;
    sks_resp_create_key_pair kresp;
    ck_assert(sks_issuer_prepare_key_pair(is, &ks, presp.pin_policy_handle, &m, &kreq) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_KEY_PAIR, &kreq, &kresp, NULL));
    uint32_t k = kresp.key_handle, pol = presp.pin_policy_handle;

    sks_resp_get_key_attributes attrs;
    sks_pin_policy_info info;
    ck_assert_int_eq(get_attributes(c, k, &attrs), SKS_ERR_NO_KEY);
    ck_assert(!key_listed(c, k));
    ck_assert(!find_policy(c, pol, &info));
    ck_assert_int_eq(verify_pin(c, pol, "1234"), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(verify_puk(c, pol, "12345678"), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(try_sign(c, k, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32), SKS_ERR_NO_KEY);
    ck_assert_int_eq(delete_key(c, k, ""), SKS_ERR_NO_KEY);
    sks_req_key_handle ereq = {.key_handle = k};
    ck_assert_int_eq(tl_call(c, SKS_M_EXPORT_KEY, &ereq, NULL, NULL), SKS_ERR_NO_KEY);

    sks_issuer_msg_free(&m);
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/* A closed session with a PUK and a PIN policy but no key: the PIN was never set. */
START_TEST(test_pin_never_set)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    sks_issuer_msg m;
    sks_issuer_msg_init(&m);

    sks_req_create_puk_policy ureq;
    sks_resp_create_puk_policy uresp;
    ck_assert(sks_issuer_prepare_puk_policy(is, "puk", str_view("87654321"), SKS_PIN_NUMERIC, 3, &m,
                                            &ureq) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_PUK_POLICY, &ureq, &uresp, NULL));
    sks_issuer_pin_policy p;
    memset(&p, 0, sizeof(p));
    p.id = "pin";
    p.puk_id = "puk";
    p.user_modifiable = 1;
    p.retry_limit = 3;
    p.min_length = 4;
    p.max_length = 8;
    sks_req_create_pin_policy preq;
    sks_resp_create_pin_policy presp;
    ck_assert(sks_issuer_prepare_pin_policy(is, &p, uresp.puk_policy_handle, &m, &preq) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_PIN_POLICY, &preq, &presp, NULL));
    TL_OK(c, tl_close_session(c, is));
    uint32_t pol = presp.pin_policy_handle;

    sks_pin_policy_info info;
    ck_assert(find_policy(c, pol, &info));
    ck_assert_uint_eq(info.pin_set, 0);
    ck_assert_int_eq(verify_pin(c, pol, "1234"), SKS_ERR_NOT_ALLOWED);
    ck_assert_int_eq(change_pin(c, pol, "1234", "5678"), SKS_ERR_NOT_ALLOWED);
    ck_assert_uint_eq(pin_tries_left(c, pol), 3);

    /* unlockPIN sets the first PIN (docs/protocol.md section 7). */
    TL_OK(c, unlock_pin(c, pol, "87654321", "2468"));
    ck_assert(find_policy(c, pol, &info));
    ck_assert_uint_eq(info.pin_set, 1);
    TL_OK(c, verify_pin(c, pol, "2468"));

    sks_issuer_msg_free(&m);
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/* ---- Key objects ------------------------------------------------------------------- */

START_TEST(test_key_attributes_and_enumeration)
{
    tl_key_spec spec = {
        .pin = "1234", .key_count = 3, .friendly_name = "My key", .key_usage = SKS_USAGE_SIGN};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    sks_resp_get_key_attributes a;

    TL_OK(c, get_attributes(c, key.key[1], &a));
    ck_assert_uint_eq(a.id.len, 4);
    ck_assert_mem_eq(a.id.ptr, "key2", 4);
    ck_assert_uint_eq(a.friendly_name.len, 6);
    ck_assert_mem_eq(a.friendly_name.ptr, "My key", 6);
    ck_assert_uint_eq(a.algorithm, SKS_KEYALG_EC_P256);
    ck_assert_uint_eq(a.key_usage, SKS_USAGE_SIGN);
    ck_assert_uint_eq(a.flags, SKS_KEYFLAG_COMPLETE | SKS_KEYFLAG_GENERATED_ON_CARD);
    ck_assert_uint_eq(a.pin_policy_handle, key.pin_policy);
    ck_assert_uint_eq(a.provisioning_handle, key.session);
    const unsigned char *p = a.public_key.ptr;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)a.public_key.len);
    ck_assert_ptr_nonnull(pub);
    ck_assert_int_eq(EVP_PKEY_eq(pub, key.public_key[1]), 1);
    EVP_PKEY_free(pub);
    ck_assert_uint_eq(a.certificate_path.count, 1);
    p = a.certificate_path.cert[0].ptr;
    X509 *cert = d2i_X509(NULL, &p, (long)a.certificate_path.cert[0].len);
    ck_assert_ptr_nonnull(cert);
    ck_assert_int_eq(X509_cmp(cert, key.cert[1]), 0);
    X509_free(cert);

    /* A second session's keys come after the first's, all in one ascending page. */
    tl_key more;
    tl_key_spec spec2 = {.key_count = 2};
    tl_provision_key(c, &spec2, &more);
    sks_req_enumerate_keys req = {.after_handle = 0};
    sks_resp_enumerate_keys resp;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_KEYS, &req, &resp, NULL));
    ck_assert_uint_eq(resp.more, 0);
    ck_assert_uint_eq(resp.handles.len, 5 * 4);
    const uint32_t all[5] = {key.key[0], key.key[1], key.key[2], more.key[0], more.key[1]};
    for (size_t i = 0; i < 5; i++)
        ck_assert_uint_eq(sks_be32_get(resp.handles.ptr + 4 * i), all[i]);
    /* Starting after a handle. */
    req.after_handle = key.key[1];
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_KEYS, &req, &resp, NULL));
    ck_assert_uint_eq(resp.handles.len, 3 * 4);
    ck_assert_uint_eq(sks_be32_get(resp.handles.ptr), key.key[2]);
    req.after_handle = more.key[1];
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_KEYS, &req, &resp, NULL));
    ck_assert_uint_eq(resp.handles.len, 0);
    ck_assert_uint_eq(resp.more, 0);

    /* Attributes are public: no PIN needed; unknown handles are NO_KEY. */
    ck_assert_int_eq(get_attributes(c, key.session, &a), SKS_ERR_NO_KEY);
    ck_assert_int_eq(get_attributes(c, 0xFFFFFFFFu, &a), SKS_ERR_NO_KEY);

    tl_key_free(&more);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

START_TEST(test_delete_key)
{
    tl_key_spec spec = {.pin = "1234", .key_count = 2};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    sks_resp_get_key_attributes a;

    ck_assert_int_eq(delete_key(c, key.key[0], ""), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    TL_OK(c, try_sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32));
    TL_OK(c, delete_key(c, key.key[0], ""));
    ck_assert_int_eq(get_attributes(c, key.key[0], &a), SKS_ERR_NO_KEY);
    ck_assert_int_eq(try_sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32), SKS_ERR_NO_KEY);
    ck_assert(!key_listed(c, key.key[0]));
    ck_assert_int_eq(delete_key(c, key.key[0], ""), SKS_ERR_NO_KEY);
    /* The other key of the policy is still there and usable. */
    ck_assert(key_listed(c, key.key[1]));
    TL_OK(c, try_sign(c, key.key[1], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 32));

    /* A key without PIN is deleted right away. */
    tl_key free_key;
    tl_key_spec spec2 = {0};
    tl_provision_key(c, &spec2, &free_key);
    TL_OK(c, delete_key(c, free_key.key[0], ""));
    ck_assert(!key_listed(c, free_key.key[0]));

    tl_key_free(&free_key);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

START_TEST(test_delete_protected_key)
{
    tl_key_spec spec = {.pin = "1234",
                        .puk = "12345678",
                        .puk_retry_limit = 3,
                        .flags = SKS_KEYFLAG_DELETE_PROTECTED};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t k = key.key[0];

    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    /* The PUK is needed and checked like unlockPIN's: wrong values cost PUK tries. */
    ck_assert_int_eq(delete_key(c, k, ""), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(delete_key(c, k, "1234"), SKS_ERR_AUTHENTICATION);
    ck_assert_uint_eq(puk_tries_left(c, key.pin_policy), 1);
    ck_assert(key_listed(c, k));
    TL_OK(c, delete_key(c, k, "12345678"));
    ck_assert_uint_eq(puk_tries_left(c, key.pin_policy), 3);
    ck_assert(!key_listed(c, k));

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

START_TEST(test_delete_protected_needs_pin_first)
{
    tl_key_spec spec = {.pin = "1234", .puk = "12345678", .flags = SKS_KEYFLAG_DELETE_PROTECTED};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);

    /* Without the PIN, the PUK is not even tried. */
    ck_assert_int_eq(delete_key(c, key.key[0], "12345678"), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert(key_listed(c, key.key[0]));

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* Export a key; its PKCS#8 into pkcs8 (status returned). */
static int export_key(tl_card *c, uint32_t k, sks_writer *pkcs8)
{
    sks_req_key_handle req = {.key_handle = k};
    sks_resp_export_key resp;
    memset(&resp, 0, sizeof(resp));
    int st = tl_call(c, SKS_M_EXPORT_KEY, &req, &resp, NULL);
    sks_writer_reset(pkcs8);
    if (st == SKS_OK)
        sks_put_raw(pkcs8, resp.private_key.ptr, resp.private_key.len);
    return st;
}

START_TEST(test_export_key)
{
    tl_key_spec spec = {.pin = "1234", .flags = SKS_KEYFLAG_MIGRATABLE, .key_count = 1};
    tl_key key;
    tl_card *c = card_with_key(&spec, &key);
    uint32_t k = key.key[0];
    sks_writer pkcs8;
    sks_resp_get_key_attributes a;
    sks_writer_init(&pkcs8);

    TL_OK(c, get_attributes(c, k, &a));
    ck_assert_uint_eq(a.flags & SKS_KEYFLAG_GENERATED_ON_CARD, SKS_KEYFLAG_GENERATED_ON_CARD);
    ck_assert_int_eq(export_key(c, k, &pkcs8), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    TL_OK(c, export_key(c, k, &pkcs8));

    /* The PKCS#8 is the private half of the key's public key. */
    const unsigned char *p = pkcs8.buf;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)pkcs8.len);
    ck_assert_ptr_nonnull(p8);
    ck_assert(p == pkcs8.buf + pkcs8.len);
    EVP_PKEY *priv = EVP_PKCS82PKEY(p8);
    ck_assert_ptr_nonnull(priv);
    ck_assert_int_eq(EVP_PKEY_eq(priv, key.public_key[0]), 1);
    EVP_PKEY_free(priv);
    PKCS8_PRIV_KEY_INFO_free(p8);

    /* It has now left the card. */
    TL_OK(c, get_attributes(c, k, &a));
    ck_assert_uint_eq(a.flags & SKS_KEYFLAG_GENERATED_ON_CARD, 0);
    ck_assert_uint_eq(a.flags & SKS_KEYFLAG_MIGRATABLE, SKS_KEYFLAG_MIGRATABLE);

    /* A key that is not Migratable stays. */
    tl_key fixed;
    tl_key_spec spec2 = {0};
    tl_provision_key(c, &spec2, &fixed);
    ck_assert_int_eq(export_key(c, fixed.key[0], &pkcs8), SKS_ERR_NOT_ALLOWED);
    ck_assert_int_eq(export_key(c, fixed.key[0] + 1000, &pkcs8), SKS_ERR_NO_KEY);

    sks_writer_free(&pkcs8);
    tl_key_free(&fixed);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/*
 * Signing with more keys than the card caches (ten keys of two curves in
 * three sessions), round after round and across a power cycle: every
 * signature is made by the key that was asked for.
 */
START_TEST(test_key_cache)
{
    const tl_key_spec specs[3] = {
        {.key_count = 4, .algorithm = SKS_KEYALG_EC_P256},
        {.key_count = 4, .algorithm = SKS_KEYALG_EC_P384},
        {.key_count = 2, .algorithm = SKS_KEYALG_EC_P256},
    };
    tl_key sets[3];
    tl_card *c = tl_card_new();
    for (size_t s = 0; s < 3; s++)
        tl_provision_key(c, &specs[s], &sets[s]);
    uint8_t h[EVP_MAX_MD_SIZE];
    size_t hlen = digest_of(EVP_sha256(), h);
    sks_writer sig;
    sks_writer_init(&sig);

    for (int round = 0; round < 3; round++) {
        for (size_t s = 0; s < 3; s++) {
            for (size_t i = 0; i < sets[s].nkeys; i++) {
                TL_OK(c, sign_data(c, sets[s].key[i], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, h, hlen,
                                   &sig));
                ck_assert(ecdsa_verify(sets[s].public_key[i], EVP_sha256(), NULL, 0, &sig));
            }
        }
        if (round == 1)
            tl_card_reopen(c);
    }

    sks_writer_free(&sig);
    for (size_t s = 0; s < 3; s++)
        tl_key_free(&sets[s]);
    tl_card_free(c);
}
END_TEST

static Suite *keyuse_suite(void)
{
    Suite *s = suite_create("keyuse");
    TCase *tc = tcase_create("keyuse");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_device_info);
    tcase_add_test(tc, test_sign_rsa);
    tcase_add_loop_test(tc, test_sign_ecdsa, 0, 2);
    tcase_add_test(tc, test_decrypt_rsa);
    tcase_add_loop_test(tc, test_key_agreement, 0, 2);
    tcase_add_test(tc, test_usage_enforced);
    tcase_add_test(tc, test_pin_verification_state);
    tcase_add_test(tc, test_no_caching_consumes_verification);
    tcase_add_test(tc, test_no_caching_decrypt);
    tcase_add_test(tc, test_caching_keeps_verification);
    tcase_add_test(tc, test_pin_counter);
    tcase_add_test(tc, test_unlock_with_puk);
    tcase_add_test(tc, test_puk_without_limit);
    tcase_add_test(tc, test_verify_puk);
    tcase_add_test(tc, test_verify_puk_statuses);
    tcase_add_test(tc, test_puk_delay);
    tcase_add_test(tc, test_change_pin);
    tcase_add_test(tc, test_change_pin_not_modifiable);
    tcase_add_test(tc, test_pin_counter_survives_crash);
    tcase_add_test(tc, test_open_session_invisible);
    tcase_add_test(tc, test_pin_never_set);
    tcase_add_test(tc, test_key_attributes_and_enumeration);
    tcase_add_test(tc, test_delete_key);
    tcase_add_test(tc, test_delete_protected_key);
    tcase_add_test(tc, test_delete_protected_needs_pin_first);
    tcase_add_test(tc, test_export_key);
    tcase_add_test(tc, test_key_cache);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(keyuse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
