/*
 * test-keycache.c - the card's memory between calls (card_keycache.c) on
 * keys provisioned through the real issuer (testlib):
 *
 *   - a key used from memory is never one that another process sharing the
 *     card state deleted meanwhile; one whose row another process changed
 *     (a new friendly name) still signs, with the same key;
 *   - the checks of 7.0 still run on every use from memory: KeyUsage, the
 *     PIN verified (logout, CachingSupport false);
 *   - signatures made with a kept signing context verify with OpenSSL,
 *     also when the parameters change between calls (RSA PKCS#1 and PSS,
 *     several hashes), and ECDSA r | s taken from the DER signature verify
 *     for hundreds of signatures (so values with leading zero bytes occur);
 *   - getDeviceInfo's UsedKeys and ChangeCounter follow what another process
 *     does.
 *
 * The other process is a second sks_card opened on the same directory: it
 * shares nothing with the first but the files, as a second process would.
 * Every signature is checked by OpenSSL with the public key the issuer
 * received, never by the card itself.
 */
#include <string.h>

#include <check.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "card/card_internal.h"
#include "testlib.h"

#define PIN "1234"

static sks_view str_view(const char *s)
{
    sks_view v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static int verify_pin(tl_card *c, uint32_t policy, const char *pin)
{
    sks_req_verify_pin req = {policy, str_view(pin)};
    return tl_call(c, SKS_M_VERIFY_PIN, &req, NULL, NULL);
}

/* A card handle standing for a second process on c's state directory. */
static tl_card *other_process(tl_card *c)
{
    tl_card *o = calloc(1, sizeof(*o));
    char err[256] = "";
    ck_assert_ptr_nonnull(o);
    memcpy(o->dir, c->dir, sizeof(o->dir));
    o->card = sks_card_open(c->dir, err, sizeof(err));
    ck_assert_msg(o->card != NULL, "second open: %s", err);
    o->trusted = c->trusted; /* borrowed */
    sks_writer_init(&o->answer);
    return o;
}

static void other_close(tl_card *o)
{
    sks_card_close(o->card);
    sks_writer_free(&o->answer);
    free(o);
}

/* Sign `n` bytes of 0x5A with the key; the status, and the signature into sig. */
static int sign(tl_card *c, uint32_t key, uint8_t alg, uint8_t hash, uint16_t salt, size_t n,
                uint8_t *sig, size_t *siglen)
{
    uint8_t data[64];
    sks_resp_sign resp;
    sks_writer answer;
    memset(data, 0x5A, sizeof(data));
    sks_req_sign req = {key, alg, hash, salt, {data, n}};
    sks_writer_init(&answer);
    int status = tl_call(c, SKS_M_SIGN_HASHED_DATA, &req, &resp, &answer);
    if (status == SKS_OK && sig != NULL) {
        ck_assert_uint_le(resp.signature.len, *siglen);
        memcpy(sig, resp.signature.ptr, resp.signature.len);
        *siglen = resp.signature.len;
    }
    sks_writer_free(&answer);
    return status;
}

/* r | s (each half the length) as a DER ECDSA-Sig-Value, verified with OpenSSL. */
static int ecdsa_ok(EVP_PKEY *pub, const uint8_t *tbs, size_t tbslen, const uint8_t *rs, size_t n)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, (int)(n / 2), NULL), *s = BN_bin2bn(rs + n / 2, (int)(n / 2), NULL);
    unsigned char *der = NULL;
    int ok = 0;
    if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
        r = s = NULL;
        int len = i2d_ECDSA_SIG(sig, &der);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
        ok = len > 0 && ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_verify(ctx, der, (size_t)len, tbs, tbslen) == 1;
        EVP_PKEY_CTX_free(ctx);
    }
    BN_free(r);
    BN_free(s);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return ok;
}

/* An RSA signature over a digest, verified with OpenSSL (PKCS#1 v1.5 or PSS). */
static int rsa_ok(EVP_PKEY *pub, const EVP_MD *md, int pss, int salt, const uint8_t *digest,
                  size_t dlen, const uint8_t *sig, size_t siglen)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    int ok =
        ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) == 1 &&
        EVP_PKEY_CTX_set_signature_md(ctx, md) == 1 &&
        (!pss || (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) == 1)) &&
        EVP_PKEY_verify(ctx, sig, siglen, digest, dlen) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static void provision(tl_card *c, uint8_t alg, int no_caching, tl_key *key)
{
    tl_key_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.pin = PIN;
    spec.algorithm = alg;
    spec.pin_no_caching = (uint8_t)no_caching;
    spec.friendly_name = "cached";
    tl_provision_key(c, &spec, key);
}

/* ---- another process deletes or changes the key ------------------------ */

START_TEST(t_deleted_by_other_process)
{
    tl_card *c = tl_card_new();
    tl_key key;
    provision(c, SKS_KEYALG_EC_P256, 0, &key);
    TL_OK(c, verify_pin(c, key.pin_policy, PIN));
    TL_OK(c, sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, NULL, NULL));
    TL_OK(c, sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, NULL, NULL));

    tl_card *o = other_process(c);
    TL_OK(o, verify_pin(o, key.pin_policy, PIN));
    sks_req_delete_key del = {key.key[0], {NULL, 0}};
    TL_OK(o, tl_call(o, SKS_M_DELETE_KEY, &del, NULL, NULL));
    /* The first card still holds the parsed key, but must not use it. */
    ck_assert_int_eq(sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, NULL, NULL),
                     SKS_ERR_NO_KEY);
    other_close(o);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

START_TEST(t_changed_by_other_process)
{
    tl_card *c = tl_card_new();
    tl_key key;
    uint8_t sig[128], hash[32];
    size_t siglen = sizeof(sig);
    provision(c, SKS_KEYALG_EC_P256, 0, &key);
    TL_OK(c, verify_pin(c, key.pin_policy, PIN));
    TL_OK(c, sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, sig, &siglen));

    tl_card *o = other_process(c);
    TL_OK(o, verify_pin(o, key.pin_policy, PIN));
    sks_req_set_key_attributes set = {key.key[0], str_view("key1"), str_view("renamed")};
    TL_OK(o, tl_call(o, SKS_M_SET_KEY_ATTRIBUTES, &set, NULL, NULL));
    other_close(o);
    /* The row changed, the key did not: it still signs, and with the same key. */
    siglen = sizeof(sig);
    TL_OK(c, sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, sig, &siglen));
    memset(hash, 0x5A, sizeof(hash));
    ck_assert(ecdsa_ok(key.public_key[0], hash, sizeof(hash), sig, siglen));
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- the checks of 7.0 on keys in memory -------------------------------- */

START_TEST(t_pin_checked_every_use)
{
    tl_card *c = tl_card_new();
    tl_key key;
    provision(c, SKS_KEYALG_EC_P256, 0, &key);
    ck_assert_int_eq(sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, NULL, NULL),
                     SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, key.pin_policy, PIN));
    TL_OK(c, sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, NULL, NULL));
    /* logout changes nothing in card.db: the key stays in memory, the PIN rule still holds. */
    sks_req_logout lo = {key.pin_policy};
    TL_OK(c, tl_call(c, SKS_M_LOGOUT, &lo, NULL, NULL));
    ck_assert_int_eq(sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, NULL, NULL),
                     SKS_ERR_NOT_AUTHENTICATED);
    /* KeyUsage comes before the PIN: a signing key is not for key agreement. */
    uint8_t point[65] = {0x04};
    sks_req_key_agreement ka = {key.key[0], {point, sizeof(point)}};
    ck_assert_int_eq(tl_call(c, SKS_M_KEY_AGREEMENT, &ka, NULL, NULL), SKS_ERR_NOT_ALLOWED);
    TL_OK(c, verify_pin(c, key.pin_policy, PIN));
    ck_assert_int_eq(tl_call(c, SKS_M_KEY_AGREEMENT, &ka, NULL, NULL), SKS_ERR_NOT_ALLOWED);
    TL_OK(c, sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, NULL, NULL));
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

START_TEST(t_no_caching_consumed_every_use)
{
    tl_card *c = tl_card_new();
    tl_key key;
    provision(c, SKS_KEYALG_EC_P256, 1, &key);
    for (int i = 0; i < 3; i++) {
        TL_OK(c, verify_pin(c, key.pin_policy, PIN));
        TL_OK(c, sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, NULL, NULL));
        ck_assert_int_eq(sign(c, key.key[0], SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, 32, NULL, NULL),
                         SKS_ERR_NOT_AUTHENTICATED);
    }
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- signatures with kept contexts --------------------------------------- */

/* Many ECDSA signatures: about one r or s in 128 has a leading zero byte. */
static void many_ecdsa(uint8_t alg, size_t hash_len, uint8_t hash_alg, int count)
{
    tl_card *c = tl_card_new();
    tl_key key;
    uint8_t sig[200], tbs[64];
    provision(c, alg, 0, &key);
    TL_OK(c, verify_pin(c, key.pin_policy, PIN));
    memset(tbs, 0x5A, sizeof(tbs));
    for (int i = 0; i < count; i++) {
        size_t siglen = sizeof(sig);
        TL_OK(c, sign(c, key.key[0], SKS_SIGN_ECDSA, hash_alg, 0, hash_len, sig, &siglen));
        ck_assert_uint_eq(siglen, alg == SKS_KEYALG_EC_P256 ? 64 : 96);
        ck_assert_msg(ecdsa_ok(key.public_key[0], tbs, hash_len, sig, siglen),
                      "signature %d does not verify", i);
    }
    tl_key_free(&key);
    tl_card_free(c);
}

START_TEST(t_ecdsa_p256_many)
{
    many_ecdsa(SKS_KEYALG_EC_P256, 32, SKS_HASH_SHA256, 600);
}
END_TEST

START_TEST(t_ecdsa_p384_many)
{
    many_ecdsa(SKS_KEYALG_EC_P384, 48, SKS_HASH_SHA384, 200);
}
END_TEST

START_TEST(t_rsa_parameters_change)
{
    static const struct {
        uint8_t alg, hash;
        uint16_t salt;
    } runs[] = {
        {SKS_SIGN_RSA_PKCS1, SKS_HASH_SHA256, 0}, {SKS_SIGN_RSA_PKCS1, SKS_HASH_SHA256, 0},
        {SKS_SIGN_RSA_PSS, SKS_HASH_SHA256, 32},  {SKS_SIGN_RSA_PSS, SKS_HASH_SHA256, 0},
        {SKS_SIGN_RSA_PKCS1, SKS_HASH_SHA384, 0}, {SKS_SIGN_RSA_PSS, SKS_HASH_SHA512, 20},
        {SKS_SIGN_RSA_PKCS1, SKS_HASH_SHA256, 0},
    };
    tl_card *c = tl_card_new();
    tl_key key;
    uint8_t sig[512], digest[64];
    provision(c, SKS_KEYALG_RSA2048, 0, &key);
    TL_OK(c, verify_pin(c, key.pin_policy, PIN));
    memset(digest, 0x5A, sizeof(digest));
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        const EVP_MD *md = runs[i].hash == SKS_HASH_SHA256   ? EVP_sha256()
                           : runs[i].hash == SKS_HASH_SHA384 ? EVP_sha384()
                                                             : EVP_sha512();
        size_t dlen = (size_t)EVP_MD_get_size(md), siglen = sizeof(sig);
        TL_OK(c, sign(c, key.key[0], runs[i].alg, runs[i].hash, runs[i].salt, dlen, sig, &siglen));
        ck_assert_uint_eq(siglen, 256);
        ck_assert_msg(rsa_ok(key.public_key[0], md, runs[i].alg == SKS_SIGN_RSA_PSS, runs[i].salt,
                             digest, dlen, sig, siglen),
                      "run %zu does not verify", i);
    }
    /* A request the context cannot take fails cleanly; the next one works again. */
    ck_assert_int_eq(
        sign(c, key.key[0], SKS_SIGN_RSA_PKCS1, SKS_HASH_SHA256, 0, 31, sig, &(size_t){512}),
        SKS_ERR_OPTION);
    size_t siglen = sizeof(sig);
    TL_OK(c, sign(c, key.key[0], SKS_SIGN_RSA_PKCS1, SKS_HASH_SHA256, 0, 32, sig, &siglen));
    ck_assert(rsa_ok(key.public_key[0], EVP_sha256(), 0, 0, digest, 32, sig, siglen));
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- getDeviceInfo ---------------------------------------------------------- */

static void device_counts(tl_card *c, uint32_t *used, uint32_t *changes)
{
    sks_resp_get_device_info info;
    TL_OK(c, tl_call(c, SKS_M_GET_DEVICE_INFO, NULL, &info, NULL));
    *used = info.used_keys;
    *changes = info.change_counter;
}

START_TEST(t_device_info_follows_other_process)
{
    tl_card *c = tl_card_new();
    tl_key a, b;
    uint32_t used0, changes0, used, changes;
    provision(c, SKS_KEYALG_EC_P256, 0, &a);
    device_counts(c, &used0, &changes0);
    device_counts(c, &used, &changes);
    ck_assert_uint_eq(used, used0);
    ck_assert_uint_eq(changes, changes0);

    /* Another process provisions a key: one key more, the counter moved. */
    tl_card *o = other_process(c);
    tl_provision_key(o, &(tl_key_spec){.friendly_name = "other"}, &b);
    device_counts(c, &used, &changes);
    ck_assert_uint_eq(used, used0 + 1);
    ck_assert_uint_gt(changes, changes0);
    uint32_t provisioned = changes;
    /* ... and deletes it (no PIN: no verification needed): one commit (7.1). */
    sks_req_delete_key del = {b.key[0], {NULL, 0}};
    TL_OK(o, tl_call(o, SKS_M_DELETE_KEY, &del, NULL, NULL));
    device_counts(c, &used, &changes);
    ck_assert_uint_eq(used, used0);
    ck_assert_uint_eq(changes, provisioned + 1);
    other_close(o);
    /* The card's own commits count too: a successful verifyPIN moves it twice (7.1). */
    TL_OK(c, verify_pin(c, a.pin_policy, PIN));
    device_counts(c, &used, &changes);
    ck_assert_uint_eq(changes, provisioned + 3);
    tl_key_free(&a);
    tl_key_free(&b);
    tl_card_free(c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("keycache");
    TCase *other = tcase_create("other process");
    tcase_set_timeout(other, 60);
    tcase_add_test(other, t_deleted_by_other_process);
    tcase_add_test(other, t_changed_by_other_process);
    tcase_add_test(other, t_device_info_follows_other_process);
    suite_add_tcase(s, other);
    TCase *rules = tcase_create("rules");
    tcase_set_timeout(rules, 60);
    tcase_add_test(rules, t_pin_checked_every_use);
    tcase_add_test(rules, t_no_caching_consumed_every_use);
    suite_add_tcase(s, rules);
    TCase *sigs = tcase_create("signatures");
    tcase_set_timeout(sigs, 120);
    tcase_add_test(sigs, t_ecdsa_p256_many);
    tcase_add_test(sigs, t_ecdsa_p384_many);
    tcase_add_test(sigs, t_rsa_parameters_change);
    suite_add_tcase(s, sigs);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
