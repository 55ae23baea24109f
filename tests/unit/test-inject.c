/*
 * test-inject.c - secure key injection on the card (docs/protocol.md
 * section 10): importSessionKey, injectPrivateKey, deleteSessionKey.
 *
 * The issuer's half of every blob is computed here with OpenSSL EVP
 * (inject-issuer.c), from K1's public key as the card reports it, not with
 * the card's code: a random S1 under RSA-OAEP-SHA256, or S1 from ECDH with a
 * fresh ephemeral key and HMAC-SHA256, and K2's PKCS#8 under AES-256-GCM
 * with aad = SHA-256 of K1's SubjectPublicKeyInfo | len(ID) | ID |
 * KeyUsage. An injected key must then sign (and decrypt) so that OpenSSL
 * verifies with the key the test made. Every refused call is checked to
 * leave the card as it was: the same number of keys and the same
 * ChangeCounter. A session key serves one blob: every call that reaches
 * the decryption spends it, so those tests import a fresh one each time.
 */
#include <string.h>

#include <check.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "card/card_internal.h"
#include "inject-issuer.h"
#include "testlib.h"

#define PIN "1234"

/* ---- card calls ----------------------------------------------------------- */

static sks_view view_of(const void *p, size_t n)
{
    sks_view v = {p, n};
    return v;
}

/* K1's public key as getKeyAttributes reports it. */
static EVP_PKEY *card_public_key(tl_card *c, uint32_t key)
{
    sks_req_key_handle req = {.key_handle = key};
    sks_resp_get_key_attributes resp;
    TL_OK(c, tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &req, &resp, NULL));
    const unsigned char *p = resp.public_key.ptr;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)resp.public_key.len);
    ck_assert_ptr_nonnull(pub);
    return pub;
}

static int import_s1(tl_card *c, uint32_t k1, uint8_t alg, sks_view enc, uint32_t *handle)
{
    sks_req_import_session_key req = {.key_handle = k1, .algorithm = alg, .encrypted_key = enc};
    sks_resp_import_session_key resp;
    memset(&resp, 0, sizeof(resp));
    int st = tl_call(c, SKS_M_IMPORT_SESSION_KEY, &req, &resp, NULL);
    *handle = st == SKS_OK ? resp.session_key_handle : 0;
    return st;
}

/* A random S1 wrapped under RSA K1 and imported; SKS_OK or the card's status. */
static int import_rsa_s1(tl_card *c, uint32_t k1, uint8_t s1[TI_S1_LEN], uint32_t *handle)
{
    sks_writer enc;
    sks_writer_init(&enc);
    EVP_PKEY *pub = card_public_key(c, k1);
    ti_random_s1(s1);
    ti_oaep_wrap(pub, s1, TI_S1_LEN, &enc);
    int st = import_s1(c, k1, SKS_SKIMPORT_RSA_OAEP_SHA256, view_of(enc.buf, enc.len), handle);
    sks_writer_free(&enc);
    EVP_PKEY_free(pub);
    return st;
}

/* S1 agreed with EC K1 through a fresh ephemeral key, and imported. */
static int import_ecdh_s1(tl_card *c, uint32_t k1, uint8_t s1[TI_S1_LEN], uint32_t *handle)
{
    uint8_t point[TI_POINT_LEN];
    EVP_PKEY *pub = card_public_key(c, k1);
    ti_ecdh_s1(pub, point, s1);
    EVP_PKEY_free(pub);
    return import_s1(c, k1, SKS_SKIMPORT_ECDH_P256, view_of(point, sizeof(point)), handle);
}

typedef struct {
    uint32_t s1_handle;
    uint8_t iv[TI_IV_LEN];
    sks_writer blob;
    const char *id;
    const char *name;
    uint8_t usage;
    sks_view cert[2];
    uint8_t ncert;
} inject_args;

static int inject(tl_card *c, const inject_args *a, uint32_t *key)
{
    sks_req_inject_private_key req;
    sks_resp_inject_private_key resp;
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.session_key_handle = a->s1_handle;
    req.iv = view_of(a->iv, sizeof(a->iv));
    req.encrypted_private_key = view_of(a->blob.buf, a->blob.len);
    req.id = view_of(a->id, strlen(a->id));
    req.friendly_name = view_of(a->name, a->name != NULL ? strlen(a->name) : 0);
    req.key_usage = a->usage;
    req.certificate_path.count = a->ncert;
    for (size_t i = 0; i < a->ncert; i++)
        req.certificate_path.cert[i] = a->cert[i];
    int st = tl_call(c, SKS_M_INJECT_PRIVATE_KEY, &req, &resp, NULL);
    if (key != NULL)
        *key = st == SKS_OK ? resp.key_handle : 0;
    return st;
}

static int delete_s1(tl_card *c, uint32_t handle)
{
    sks_req_delete_session_key req = {.session_key_handle = handle};
    return tl_call(c, SKS_M_DELETE_SESSION_KEY, &req, NULL, NULL);
}

/* UsedKeys and ChangeCounter of getDeviceInfo. */
static void card_state(tl_card *c, uint32_t *used, uint32_t *changes)
{
    sks_resp_get_device_info info;
    TL_OK(c, tl_call(c, SKS_M_GET_DEVICE_INFO, NULL, &info, NULL));
    *used = info.used_keys;
    *changes = info.change_counter;
}

/* ---- keys and certificates ------------------------------------------------- */

/* One key on a fresh session: `alg`, `usage`, with PIN policy "pin" when `pin`. */
static void provision(tl_card *c, uint8_t alg, uint8_t usage, int pin, int no_caching, tl_key *k)
{
    tl_key_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.algorithm = alg;
    spec.key_usage = usage;
    spec.pin = pin ? PIN : NULL;
    spec.pin_no_caching = (uint8_t)no_caching;
    tl_provision_key(c, &spec, k);
}

/* The card signs SHA-256 of a message with `key`; OpenSSL verifies with `k2`. */
static void sign_and_verify(tl_card *c, uint32_t key, EVP_PKEY *k2)
{
    static const uint8_t msg[] = "injected key at work";
    uint8_t hash[32];
    unsigned int hash_len = 0;
    ck_assert_int_eq(EVP_Digest(msg, sizeof(msg), hash, &hash_len, EVP_sha256(), NULL), 1);
    sks_req_sign req = {.key_handle = key,
                        .algorithm = EVP_PKEY_is_a(k2, "EC") ? SKS_SIGN_ECDSA : SKS_SIGN_RSA_PKCS1,
                        .hash = SKS_HASH_SHA256,
                        .data = view_of(hash, hash_len)};
    sks_resp_sign resp;
    TL_OK(c, tl_call(c, SKS_M_SIGN_HASHED_DATA, &req, &resp, NULL));
    ck_assert(tl_signature_ok(k2, 0, msg, sizeof(msg), resp.signature.ptr, resp.signature.len));
}

/*
 * The K2 blob sealed for `k1_pub` under S1 into a->blob (a fresh random IV
 * into a->iv), replacing what was there.
 */
static void rewrap(inject_args *a, const uint8_t s1[TI_S1_LEN], EVP_PKEY *k1_pub, EVP_PKEY *k2)
{
    sks_writer_reset(&a->blob);
    ti_wrap_k2(s1, k1_pub, k2, a->id, a->usage, a->iv, &a->blob);
}

/*
 * injectPrivateKey of K2 as "injected" with ID `id` and `usage`, sealed
 * under S1 (card handle `s1_handle`) for `k1_pub`; with the certificate
 * `cert` unless NULL.
 */
static void args_init(inject_args *a, uint32_t s1_handle, const char *id, uint8_t usage,
                      const uint8_t s1[TI_S1_LEN], EVP_PKEY *k1_pub, EVP_PKEY *k2,
                      const sks_writer *cert)
{
    memset(a, 0, sizeof(*a));
    sks_writer_init(&a->blob);
    a->s1_handle = s1_handle;
    a->id = id;
    a->name = "injected";
    a->usage = usage;
    rewrap(a, s1, k1_pub, k2);
    if (cert != NULL) {
        a->cert[0] = view_of(cert->buf, cert->len);
        a->ncert = 1;
    }
}

/* ---- tests ------------------------------------------------------------------ */

/*
 * A fresh card with K1 (key agreement for EC, decrypt for RSA; under PIN
 * policy "pin", verified, when `pin`) and S1 imported under it (ECDH or
 * RSA-OAEP as K1 is).
 */
typedef struct {
    tl_card *c;
    tl_key k1;
    EVP_PKEY *k1_pub; /* K1's public key as the card reports it */
    uint8_t s1[TI_S1_LEN];
    uint32_t h; /* S1's handle on the card */
} with_s1;

static void s1_begin(with_s1 *x, uint8_t alg, int pin)
{
    int rsa = alg != SKS_KEYALG_EC_P256;
    x->c = tl_card_new();
    provision(x->c, alg, rsa ? SKS_USAGE_DECRYPT : SKS_USAGE_KEY_AGREEMENT, pin, 0, &x->k1);
    if (pin)
        TL_OK(x->c, tl_verify_pin(x->c, x->k1.pin_policy, PIN));
    if (rsa)
        TL_OK(x->c, import_rsa_s1(x->c, x->k1.key[0], x->s1, &x->h));
    else
        TL_OK(x->c, import_ecdh_s1(x->c, x->k1.key[0], x->s1, &x->h));
    ck_assert_uint_ne(x->h, 0);
    x->k1_pub = card_public_key(x->c, x->k1.key[0]);
}

static void s1_end(with_s1 *x)
{
    EVP_PKEY_free(x->k1_pub);
    tl_key_free(&x->k1);
    tl_card_free(x->c);
}

/* RSA-OAEP session key under an RSA K1 with PIN; an RSA K2 with its certificate. */
START_TEST(test_rsa_session_key_rsa_injection)
{
    with_s1 x;
    uint32_t key, used0, ch0, used1, ch1;
    s1_begin(&x, SKS_KEYALG_RSA2048, 1);

    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    sks_writer cert, k2_spki;
    sks_writer_init(&cert);
    sks_writer_init(&k2_spki);
    ti_cert(k2, &cert);
    ti_spki(k2, &k2_spki);
    inject_args a;
    args_init(&a, x.h, "inj-rsa", SKS_USAGE_SIGN | SKS_USAGE_DECRYPT, x.s1, x.k1_pub, k2, &cert);
    card_state(x.c, &used0, &ch0);
    TL_OK(x.c, inject(x.c, &a, &key));
    card_state(x.c, &used1, &ch1);
    ck_assert_uint_eq(used1, used0 + 1);
    ck_assert_uint_eq(ch1, ch0 + 1);

    /* Its attributes: K1's PIN policy, imported (not generated), nothing exportable. */
    sks_req_key_handle kh = {.key_handle = key};
    sks_resp_get_key_attributes attrs;
    TL_OK(x.c, tl_call(x.c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attrs, NULL));
    ck_assert_uint_eq(attrs.id.len, 7);
    ck_assert_mem_eq(attrs.id.ptr, "inj-rsa", 7);
    ck_assert_uint_eq(attrs.friendly_name.len, 8);
    ck_assert_mem_eq(attrs.friendly_name.ptr, "injected", 8);
    ck_assert_uint_eq(attrs.algorithm, SKS_KEYALG_RSA2048);
    ck_assert_uint_eq(attrs.key_usage, SKS_USAGE_SIGN | SKS_USAGE_DECRYPT);
    ck_assert_uint_eq(attrs.flags, SKS_KEYFLAG_IMPORT_PRIVATE_KEY | SKS_KEYFLAG_COMPLETE);
    ck_assert_uint_eq(attrs.pin_policy_handle, x.k1.pin_policy);
    ck_assert_uint_eq(attrs.provisioning_handle, 0);
    ck_assert_uint_eq(attrs.public_key.len, k2_spki.len);
    ck_assert_mem_eq(attrs.public_key.ptr, k2_spki.buf, k2_spki.len);
    ck_assert_uint_eq(attrs.certificate_path.count, 1);
    ck_assert_uint_eq(attrs.certificate_path.cert[0].len, cert.len);
    ck_assert_mem_eq(attrs.certificate_path.cert[0].ptr, cert.buf, cert.len);

    /* It signs and decrypts as K2. */
    sign_and_verify(x.c, key, k2);
    uint8_t secret[20];
    memset(secret, 0x42, sizeof(secret));
    sks_writer ct;
    sks_writer_init(&ct);
    ti_oaep_wrap(k2, secret, sizeof(secret), &ct);
    sks_req_decrypt dec = {.key_handle = key,
                           .algorithm = SKS_DECRYPT_RSA_OAEP,
                           .hash = SKS_HASH_SHA256,
                           .mgf_hash = SKS_HASH_SHA256,
                           .data = view_of(ct.buf, ct.len)};
    sks_resp_decrypt plain;
    TL_OK(x.c, tl_call(x.c, SKS_M_ASYMMETRIC_DECRYPT, &dec, &plain, NULL));
    ck_assert_uint_eq(plain.plaintext.len, sizeof(secret));
    ck_assert_mem_eq(plain.plaintext.ptr, secret, sizeof(secret));
    /* Not migratable: it never leaves the card. */
    ck_assert_int_eq(tl_call(x.c, SKS_M_EXPORT_KEY, &kh, NULL, NULL), SKS_ERR_NOT_ALLOWED);
    /* It joined K1's PIN policy: after logout it needs the PIN. */
    sks_req_logout lo = {.pin_policy_handle = x.k1.pin_policy};
    TL_OK(x.c, tl_call(x.c, SKS_M_LOGOUT, &lo, NULL, NULL));
    uint8_t hash[32] = {0};
    sks_req_sign sreq = {.key_handle = key,
                         .algorithm = SKS_SIGN_RSA_PKCS1,
                         .hash = SKS_HASH_SHA256,
                         .data = view_of(hash, sizeof(hash))};
    ck_assert_int_eq(tl_call(x.c, SKS_M_SIGN_HASHED_DATA, &sreq, NULL, NULL),
                     SKS_ERR_NOT_AUTHENTICATED);
    /* The injection used S1 up: there is nothing left to delete. */
    ck_assert_int_eq(delete_s1(x.c, x.h), SKS_ERR_NO_KEY);

    sks_writer_free(&ct);
    sks_writer_free(&a.blob);
    sks_writer_free(&cert);
    sks_writer_free(&k2_spki);
    EVP_PKEY_free(k2);
    s1_end(&x);
}
END_TEST

/*
 * ECDH session key under an EC K1 without PIN; EC keys P-256 and P-384,
 * each under its own S1. A second injection with an S1 already used is
 * refused, whatever the ID, and creates nothing.
 */
START_TEST(test_ecdh_session_key_ec_injection)
{
    with_s1 x;
    uint32_t key, used0, ch0, used1, ch1;
    s1_begin(&x, SKS_KEYALG_EC_P256, 0);
    static const char *curves[] = {"P-256", "P-384"};
    static const uint8_t algs[] = {SKS_KEYALG_EC_P256, SKS_KEYALG_EC_P384};
    static const char *ids[] = {"inj-p256", "inj-p384"};
    EVP_PKEY *k2 = NULL;
    inject_args a;
    for (size_t i = 0; i < 2; i++) {
        if (i > 0) {
            TL_OK(x.c, import_ecdh_s1(x.c, x.k1.key[0], x.s1, &x.h));
            sks_writer_free(&a.blob);
            EVP_PKEY_free(k2);
        }
        k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
        sks_writer cert;
        sks_writer_init(&cert);
        ti_cert(k2, &cert);
        args_init(&a, x.h, ids[i], SKS_USAGE_SIGN | SKS_USAGE_KEY_AGREEMENT, x.s1, x.k1_pub, k2,
                  &cert);
        TL_OK(x.c, inject(x.c, &a, &key));
        sks_req_key_handle kh = {.key_handle = key};
        sks_resp_get_key_attributes attrs;
        TL_OK(x.c, tl_call(x.c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attrs, NULL));
        ck_assert_uint_eq(attrs.algorithm, algs[i]);
        ck_assert_uint_eq(attrs.pin_policy_handle, 0);
        sign_and_verify(x.c, key, k2);
        sks_writer_free(&cert);
        a.ncert = 0;
    }
    /*
     * The relay replays the last blob with its S1: under a new ID (the
     * issuer's blob bound to that ID too, so only S1 can stop it), then as
     * it was. S1 is gone: NO_KEY, nothing created.
     */
    card_state(x.c, &used0, &ch0);
    a.id = "inj-again";
    rewrap(&a, x.s1, x.k1_pub, k2);
    ck_assert_int_eq(inject(x.c, &a, NULL), SKS_ERR_NO_KEY);
    a.id = ids[1];
    rewrap(&a, x.s1, x.k1_pub, k2);
    ck_assert_int_eq(inject(x.c, &a, NULL), SKS_ERR_NO_KEY);
    card_state(x.c, &used1, &ch1);
    ck_assert_uint_eq(used1, used0);
    ck_assert_uint_eq(ch1, ch0);
    /* Nor does a deleted S1 inject. */
    TL_OK(x.c, import_ecdh_s1(x.c, x.k1.key[0], x.s1, &x.h));
    TL_OK(x.c, delete_s1(x.c, x.h));
    a.s1_handle = x.h;
    a.id = "inj-late";
    rewrap(&a, x.s1, x.k1_pub, k2);
    ck_assert_int_eq(inject(x.c, &a, NULL), SKS_ERR_NO_KEY);
    sks_writer_free(&a.blob);
    EVP_PKEY_free(k2);
    s1_end(&x);
}
END_TEST

/* Wrong K1, wrong algorithm, wrong lengths, wrong S1: refused, no S1 kept. */
START_TEST(test_import_refusals)
{
    tl_card *c = tl_card_new(), *other = tl_card_new();
    tl_key rsa, sign_only, ec, ec384, other_rsa;
    uint8_t s1[TI_S1_LEN];
    uint32_t h;
    provision(c, SKS_KEYALG_RSA2048, SKS_USAGE_DECRYPT, 0, 0, &rsa);
    provision(c, SKS_KEYALG_RSA2048, SKS_USAGE_SIGN, 0, 0, &sign_only);
    provision(c, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, 0, 0, &ec);
    provision(c, SKS_KEYALG_EC_P384, SKS_USAGE_KEY_AGREEMENT, 0, 0, &ec384);
    provision(other, SKS_KEYALG_RSA2048, SKS_USAGE_DECRYPT, 0, 0, &other_rsa);
    EVP_PKEY *rsa_pub = card_public_key(c, rsa.key[0]);
    EVP_PKEY *other_pub = card_public_key(other, other_rsa.key[0]);
    sks_writer enc;
    sks_writer_init(&enc);

    ck_assert_int_eq(import_s1(c, rsa.key[0], 3, view_of("x", 1), &h), SKS_ERR_ALGORITHM);
    ck_assert_int_eq(import_s1(c, 0x7FFFFFF0u, SKS_SKIMPORT_RSA_OAEP_SHA256, view_of("x", 1), &h),
                     SKS_ERR_NO_KEY);
    /* A key without decrypt usage; ECDH with a key without key agreement. */
    ck_assert_int_eq(import_rsa_s1(c, sign_only.key[0], s1, &h), SKS_ERR_NOT_ALLOWED);
    uint8_t point[TI_POINT_LEN];
    EVP_PKEY *ec_pub = card_public_key(c, ec.key[0]);
    ti_ecdh_s1(ec_pub, point, s1);
    ck_assert_int_eq(
        import_s1(c, rsa.key[0], SKS_SKIMPORT_ECDH_P256, view_of(point, sizeof(point)), &h),
        SKS_ERR_NOT_ALLOWED);
    /* ECDH session keys are P-256 only. */
    ck_assert_int_eq(
        import_s1(c, ec384.key[0], SKS_SKIMPORT_ECDH_P256, view_of(point, sizeof(point)), &h),
        SKS_ERR_ALGORITHM);
    /* Lengths: not the modulus size; not a 65-byte point; a point off the curve. */
    ti_random_s1(s1);
    ti_oaep_wrap(rsa_pub, s1, sizeof(s1), &enc);
    ck_assert_int_eq(
        import_s1(c, rsa.key[0], SKS_SKIMPORT_RSA_OAEP_SHA256, view_of(enc.buf, 255), &h),
        SKS_ERR_OPTION);
    ck_assert_int_eq(import_s1(c, ec.key[0], SKS_SKIMPORT_ECDH_P256, view_of(point, 64), &h),
                     SKS_ERR_OPTION);
    point[TI_POINT_LEN - 1] ^= 1;
    ck_assert_int_eq(
        import_s1(c, ec.key[0], SKS_SKIMPORT_ECDH_P256, view_of(point, sizeof(point)), &h),
        SKS_ERR_CRYPTO);
    /* S1 of 16 and of 33 bytes. */
    static const size_t bad_len[] = {16, 33};
    for (size_t i = 0; i < 2; i++) {
        uint8_t bytes[33] = {0};
        sks_writer_reset(&enc);
        ti_oaep_wrap(rsa_pub, bytes, bad_len[i], &enc);
        ck_assert_int_eq(
            import_s1(c, rsa.key[0], SKS_SKIMPORT_RSA_OAEP_SHA256, view_of(enc.buf, enc.len), &h),
            SKS_ERR_CRYPTO);
    }
    /* S1 wrapped for another card's K1. */
    sks_writer_reset(&enc);
    ti_oaep_wrap(other_pub, s1, sizeof(s1), &enc);
    ck_assert_int_eq(
        import_s1(c, rsa.key[0], SKS_SKIMPORT_RSA_OAEP_SHA256, view_of(enc.buf, enc.len), &h),
        SKS_ERR_CRYPTO);
    /* A tampered ciphertext. */
    sks_writer_reset(&enc);
    ti_oaep_wrap(rsa_pub, s1, sizeof(s1), &enc);
    enc.buf[10] ^= 0x01;
    ck_assert_int_eq(
        import_s1(c, rsa.key[0], SKS_SKIMPORT_RSA_OAEP_SHA256, view_of(enc.buf, enc.len), &h),
        SKS_ERR_CRYPTO);

    /* None of these kept a session key: all SKS_SESSION_KEYS_MAX slots are free. */
    uint32_t handles[SKS_SESSION_KEYS_MAX];
    for (size_t i = 0; i < SKS_SESSION_KEYS_MAX; i++)
        TL_OK(c, import_ecdh_s1(c, ec.key[0], s1, &handles[i]));

    sks_writer_free(&enc);
    EVP_PKEY_free(ec_pub);
    EVP_PKEY_free(rsa_pub);
    EVP_PKEY_free(other_pub);
    tl_key_free(&rsa);
    tl_key_free(&sign_only);
    tl_key_free(&ec);
    tl_key_free(&ec384);
    tl_key_free(&other_rsa);
    tl_card_free(c);
    tl_card_free(other);
}
END_TEST

/* At most SKS_SESSION_KEYS_MAX at once, distinct handles; a deleted one frees a place. */
START_TEST(test_session_key_limit)
{
    tl_card *c = tl_card_new();
    tl_key ec;
    uint8_t s1[TI_S1_LEN];
    uint32_t h[SKS_SESSION_KEYS_MAX], extra;
    provision(c, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, 0, 0, &ec);
    for (size_t i = 0; i < SKS_SESSION_KEYS_MAX; i++) {
        TL_OK(c, import_ecdh_s1(c, ec.key[0], s1, &h[i]));
        ck_assert_uint_ne(h[i], 0);
        for (size_t j = 0; j < i; j++)
            ck_assert_uint_ne(h[i], h[j]);
    }
    ck_assert_int_eq(import_ecdh_s1(c, ec.key[0], s1, &extra), SKS_ERR_NOT_ALLOWED);
    TL_OK(c, delete_s1(c, h[3]));
    TL_OK(c, import_ecdh_s1(c, ec.key[0], s1, &extra));
    ck_assert_int_eq(import_ecdh_s1(c, ec.key[0], s1, &extra), SKS_ERR_NOT_ALLOWED);
    tl_key_free(&ec);
    tl_card_free(c);
}
END_TEST

/* S1 is volatile: a reset or a power cycle forgets it, and it is never stored. */
START_TEST(test_session_keys_gone_after_reset)
{
    tl_card *c = tl_card_new();
    tl_key ec;
    uint8_t s1[TI_S1_LEN];
    uint32_t h, used0, ch0, used1, ch1;
    provision(c, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, 0, 0, &ec);
    EVP_PKEY *k1_pub = card_public_key(c, ec.key[0]);
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    for (int power_cycle = 0; power_cycle < 2; power_cycle++) {
        card_state(c, &used0, &ch0);
        TL_OK(c, import_ecdh_s1(c, ec.key[0], s1, &h));
        card_state(c, &used1, &ch1);
        ck_assert_uint_eq(ch1, ch0); /* nothing was written */
        if (power_cycle)
            tl_card_reopen(c);
        else
            sks_card_reset(c->card);
        inject_args a;
        args_init(&a, h, "inj", SKS_USAGE_SIGN, s1, k1_pub, k2, NULL);
        ck_assert_int_eq(inject(c, &a, NULL), SKS_ERR_NO_KEY);
        ck_assert_int_eq(delete_s1(c, h), SKS_ERR_NO_KEY);
        sks_writer_free(&a.blob);
    }
    EVP_PKEY_free(k1_pub);
    EVP_PKEY_free(k2);
    tl_key_free(&ec);
    tl_card_free(c);
}
END_TEST

/* K1's PIN: needed, and consumed by the import under a policy without CachingSupport. */
START_TEST(test_pin_rules)
{
    tl_card *c = tl_card_new();
    tl_key caching, no_caching;
    uint8_t s1[TI_S1_LEN];
    uint32_t h;
    provision(c, SKS_KEYALG_RSA2048, SKS_USAGE_DECRYPT, 1, 0, &caching);
    ck_assert_int_eq(import_rsa_s1(c, caching.key[0], s1, &h), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, tl_verify_pin(c, caching.pin_policy, PIN));
    TL_OK(c, import_rsa_s1(c, caching.key[0], s1, &h));
    TL_OK(c, import_rsa_s1(c, caching.key[0], s1, &h));

    provision(c, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, 1, 1, &no_caching);
    ck_assert_int_eq(import_ecdh_s1(c, no_caching.key[0], s1, &h), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, tl_verify_pin(c, no_caching.pin_policy, PIN));
    TL_OK(c, import_ecdh_s1(c, no_caching.key[0], s1, &h));
    ck_assert_int_eq(import_ecdh_s1(c, no_caching.key[0], s1, &h), SKS_ERR_NOT_AUTHENTICATED);
    /* A failed import does not consume the verification. */
    TL_OK(c, tl_verify_pin(c, no_caching.pin_policy, PIN));
    ck_assert_int_eq(
        import_s1(c, no_caching.key[0], SKS_SKIMPORT_ECDH_P256, view_of("\x04", 1), &h),
        SKS_ERR_OPTION);
    TL_OK(c, import_ecdh_s1(c, no_caching.key[0], s1, &h));

    /* The injection itself needs no PIN: S1 is the authorisation. */
    sks_req_logout lo = {.pin_policy_handle = SKS_HANDLE_NONE};
    TL_OK(c, tl_call(c, SKS_M_LOGOUT, &lo, NULL, NULL));
    EVP_PKEY *k1_pub = card_public_key(c, no_caching.key[0]);
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    inject_args a;
    uint32_t key;
    args_init(&a, h, "inj", SKS_USAGE_SIGN, s1, k1_pub, k2, NULL);
    TL_OK(c, inject(c, &a, &key));
    sks_req_key_handle kh = {.key_handle = key};
    sks_resp_get_key_attributes attrs;
    TL_OK(c, tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attrs, NULL));
    ck_assert_uint_eq(attrs.pin_policy_handle, no_caching.pin_policy);
    /* ... and the key it made follows its policy: PIN per use. */
    TL_OK(c, tl_verify_pin(c, no_caching.pin_policy, PIN));
    sign_and_verify(c, key, k2);
    uint8_t hash[32] = {0};
    sks_req_sign sreq = {.key_handle = key,
                         .algorithm = SKS_SIGN_ECDSA,
                         .hash = SKS_HASH_SHA256,
                         .data = view_of(hash, sizeof(hash))};
    ck_assert_int_eq(tl_call(c, SKS_M_SIGN_HASHED_DATA, &sreq, NULL, NULL),
                     SKS_ERR_NOT_AUTHENTICATED);
    sks_writer_free(&a.blob);
    EVP_PKEY_free(k1_pub);
    EVP_PKEY_free(k2);
    tl_key_free(&caching);
    tl_key_free(&no_caching);
    tl_card_free(c);
}
END_TEST

/* Run one injection that must fail with `want`, and check nothing changed on the card. */
static void inject_refused(tl_card *c, const inject_args *a, int want, const char *what)
{
    uint32_t used0, ch0, used1, ch1, key = 1;
    card_state(c, &used0, &ch0);
    int st = inject(c, a, &key);
    ck_assert_msg(st == want, "%s: card said %s (%s), expected %s", what,
                  sks_status_name((uint8_t)st), c->error, sks_status_name((uint8_t)want));
    card_state(c, &used1, &ch1);
    ck_assert_msg(used1 == used0 && ch1 == ch0, "%s: the card changed", what);
}

/* A sealed plaintext under S1 for K1, a->id and a->usage (not necessarily a key). */
static void seal_plain(inject_args *a, const uint8_t s1[TI_S1_LEN], EVP_PKEY *k1_pub,
                       const uint8_t *plain, size_t n)
{
    uint8_t aad[TI_AAD_MAX];
    size_t aad_len = ti_aad(k1_pub, a->id, a->usage, aad);
    sks_writer_reset(&a->blob);
    memset(a->iv, 7, sizeof(a->iv));
    ti_seal(s1, a->iv, aad, aad_len, plain, n, &a->blob);
}

/*
 * Does the card still hold session key `h`? Asked without spending it: a
 * KeyUsage of 0 is refused (OPTION) before the blob is tried, and an
 * unknown session key before that (NO_KEY).
 */
static int s1_held(tl_card *c, uint32_t h)
{
    static const uint8_t zeros[TI_TAG_LEN + 1] = {0};
    inject_args probe;
    memset(&probe, 0, sizeof(probe));
    sks_writer_init(&probe.blob);
    sks_put_raw(&probe.blob, zeros, sizeof(zeros));
    probe.s1_handle = h;
    probe.id = "probe";
    int st = inject(c, &probe, NULL);
    sks_writer_free(&probe.blob);
    ck_assert_msg(st == SKS_ERR_OPTION || st == SKS_ERR_NO_KEY, "probe: %s",
                  sks_status_name((uint8_t)st));
    return st == SKS_ERR_OPTION;
}

/* A fresh S1 for K1 (ECDH) into s1 and a->s1_handle, and K2's blob sealed under it (a->id,
 * a->usage). */
static void renew(tl_card *c, uint32_t k1, EVP_PKEY *k1_pub, EVP_PKEY *k2, uint8_t s1[TI_S1_LEN],
                  inject_args *a)
{
    TL_OK(c, import_ecdh_s1(c, k1, s1, &a->s1_handle));
    rewrap(a, s1, k1_pub, k2);
}

START_TEST(test_inject_refusals)
{
    tl_card *c = tl_card_new();
    tl_key k1, other;
    uint8_t s1[TI_S1_LEN], s1b[TI_S1_LEN];
    uint32_t h, hb, key;
    provision(c, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, 0, 0, &k1);
    provision(c, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, 0, 0, &other);
    TL_OK(c, import_ecdh_s1(c, k1.key[0], s1, &h));
    EVP_PKEY *k1_pub = card_public_key(c, k1.key[0]);
    EVP_PKEY *other_pub = card_public_key(c, other.key[0]);
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *stranger = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    sks_writer good, cert, stranger_cert, p8;
    sks_writer_init(&good);
    sks_writer_init(&cert);
    sks_writer_init(&stranger_cert);
    sks_writer_init(&p8);
    ti_cert(k2, &cert);
    ti_cert(stranger, &stranger_cert);
    inject_args a;
    args_init(&a, h, "inj", SKS_USAGE_SIGN, s1, k1_pub, k2, NULL);

    /*
     * Refused before the blob is tried, S1 kept: KeyUsage empty or with
     * unknown bits, an ID another key has, an unknown session key.
     */
    a.usage = 0;
    inject_refused(c, &a, SKS_ERR_OPTION, "KeyUsage 0");
    a.usage = 0x08;
    inject_refused(c, &a, SKS_ERR_OPTION, "KeyUsage 0x08");
    a.usage = SKS_USAGE_SIGN;
    a.id = "key1";
    inject_refused(c, &a, SKS_ERR_OPTION, "ID in use");
    a.id = "inj";
    a.s1_handle = h ^ 0x5A5A5A5Au;
    inject_refused(c, &a, SKS_ERR_NO_KEY, "unknown session key");
    a.s1_handle = h;
    ck_assert(s1_held(c, h));

    /*
     * Tampered ciphertext, tag, IV; truncated. Each spends its S1: the
     * relay cannot try again, not even with the blob as the issuer made it.
     */
    static const struct {
        int where; /* 0 ciphertext, 1 tag, 2 IV, 3 truncated */
        const char *what;
    } flips[] = {{0, "ciphertext"}, {1, "tag"}, {2, "IV"}, {3, "truncated blob"}};
    for (size_t i = 0; i < 4; i++) {
        if (i > 0)
            renew(c, k1.key[0], k1_pub, k2, s1, &a);
        sks_writer_reset(&good);
        sks_put_raw(&good, a.blob.buf, a.blob.len);
        uint8_t good_iv[TI_IV_LEN];
        memcpy(good_iv, a.iv, sizeof(good_iv));
        if (flips[i].where == 0)
            a.blob.buf[5] ^= 0x80;
        else if (flips[i].where == 1)
            a.blob.buf[a.blob.len - 1] ^= 0x01;
        else if (flips[i].where == 2)
            a.iv[0] ^= 0x01;
        else
            a.blob.len--;
        inject_refused(c, &a, SKS_ERR_CRYPTO, flips[i].what);
        ck_assert(!s1_held(c, a.s1_handle));
        sks_writer_reset(&a.blob);
        sks_put_raw(&a.blob, good.buf, good.len);
        memcpy(a.iv, good_iv, sizeof(a.iv));
        inject_refused(c, &a, SKS_ERR_NO_KEY, "the good blob after a failed one");
    }
    /*
     * The blob is bound to the issuer's ID and KeyUsage: the same blob under
     * another ID, or with another KeyUsage, does not open, creates nothing
     * and spends S1.
     */
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    a.id = "inj-other";
    inject_refused(c, &a, SKS_ERR_CRYPTO, "blob under another ID");
    ck_assert(!s1_held(c, a.s1_handle));
    a.id = "inj";
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    a.usage = SKS_USAGE_SIGN | SKS_USAGE_KEY_AGREEMENT;
    inject_refused(c, &a, SKS_ERR_CRYPTO, "blob with another KeyUsage");
    a.usage = SKS_USAGE_SIGN;
    /* Made for another K1 (aad mismatch), or under another S1 (which it spends, not the other). */
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    rewrap(&a, s1, other_pub, k2);
    inject_refused(c, &a, SKS_ERR_CRYPTO, "blob for another K1");
    TL_OK(c, import_ecdh_s1(c, k1.key[0], s1, &h));
    TL_OK(c, import_ecdh_s1(c, k1.key[0], s1b, &hb));
    a.s1_handle = hb;
    rewrap(&a, s1, k1_pub, k2);
    inject_refused(c, &a, SKS_ERR_CRYPTO, "blob under another S1");
    ck_assert(!s1_held(c, hb));
    ck_assert(s1_held(c, h));
    TL_OK(c, delete_s1(c, h));
    /* Plaintexts that are not a supported PKCS#8 key (they open: the tag is right). */
    static const uint8_t garbage[] = "not a private key at all";
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    seal_plain(&a, s1, k1_pub, garbage, sizeof(garbage));
    inject_refused(c, &a, SKS_ERR_CRYPTO, "garbage plaintext");
    ti_pkcs8(k2, &p8);
    sks_put_byte(&p8, 0);
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    seal_plain(&a, s1, k1_pub, p8.buf, p8.len);
    inject_refused(c, &a, SKS_ERR_CRYPTO, "PKCS#8 with a trailing byte");
    ck_assert(!s1_held(c, a.s1_handle));
    EVP_PKEY *unsupported[] = {EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024),
                               EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"),
                               EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521")};
    for (size_t i = 0; i < 3; i++) {
        renew(c, k1.key[0], k1_pub, unsupported[i], s1, &a);
        inject_refused(c, &a, SKS_ERR_ALGORITHM, "unsupported key");
        EVP_PKEY_free(unsupported[i]);
    }
    /* The certificate must hold the injected key. */
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    a.cert[0] = view_of(stranger_cert.buf, stranger_cert.len);
    a.ncert = 1;
    inject_refused(c, &a, SKS_ERR_OPTION, "certificate of another key");
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    a.cert[0] = view_of("\x30\x03\x02\x01\x01", 5);
    inject_refused(c, &a, SKS_ERR_OPTION, "not a certificate");
    a.cert[0] = view_of(cert.buf, cert.len);
    /* Decrypt with an EC key: the issuer sealed that usage, the card still refuses it. */
    a.usage = SKS_USAGE_SIGN | SKS_USAGE_DECRYPT;
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    inject_refused(c, &a, SKS_ERR_ALGORITHM, "decrypt with an EC key");
    a.usage = SKS_USAGE_SIGN;

    /* A good blob under a fresh S1 works; the same ID then is taken. */
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    TL_OK(c, inject(c, &a, &key));
    sign_and_verify(c, key, k2);
    renew(c, k1.key[0], k1_pub, k2, s1, &a);
    inject_refused(c, &a, SKS_ERR_OPTION, "ID just injected");

    /* K1 deleted: its session keys inject nothing. */
    sks_req_delete_key del = {.key_handle = k1.key[0], .authorization = {NULL, 0}};
    TL_OK(c, tl_call(c, SKS_M_DELETE_KEY, &del, NULL, NULL));
    a.id = "inj2";
    rewrap(&a, s1, k1_pub, k2);
    inject_refused(c, &a, SKS_ERR_NO_KEY, "K1 deleted");

    sks_writer_free(&a.blob);
    sks_writer_free(&good);
    sks_writer_free(&cert);
    sks_writer_free(&stranger_cert);
    sks_writer_free(&p8);
    EVP_PKEY_free(k1_pub);
    EVP_PKEY_free(other_pub);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(stranger);
    tl_key_free(&k1);
    tl_key_free(&other);
    tl_card_free(c);
}
END_TEST

/* A K2 blob made for card A cannot be injected into card B, by either session key path. */
START_TEST(test_blob_for_another_card)
{
    tl_card *a_card = tl_card_new(), *b_card = tl_card_new();
    tl_key a_rsa, a_ec, b_rsa, b_ec;
    uint8_t s1[TI_S1_LEN];
    uint32_t h, used0, ch0, used1, ch1;
    provision(a_card, SKS_KEYALG_RSA2048, SKS_USAGE_DECRYPT, 0, 0, &a_rsa);
    provision(a_card, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, 0, 0, &a_ec);
    provision(b_card, SKS_KEYALG_RSA2048, SKS_USAGE_DECRYPT, 0, 0, &b_rsa);
    provision(b_card, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, 0, 0, &b_ec);
    EVP_PKEY *a_rsa_pub = card_public_key(a_card, a_rsa.key[0]);
    EVP_PKEY *a_ec_pub = card_public_key(a_card, a_ec.key[0]);
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    card_state(b_card, &used0, &ch0);

    /* RSA: B cannot recover A's S1 at all. */
    sks_writer enc;
    sks_writer_init(&enc);
    ti_random_s1(s1);
    ti_oaep_wrap(a_rsa_pub, s1, sizeof(s1), &enc);
    ck_assert_int_eq(import_s1(b_card, b_rsa.key[0], SKS_SKIMPORT_RSA_OAEP_SHA256,
                               view_of(enc.buf, enc.len), &h),
                     SKS_ERR_CRYPTO);

    /* ECDH: B agrees another S1 from A's point, and A's blob does not open under it. */
    uint8_t point[TI_POINT_LEN];
    ti_ecdh_s1(a_ec_pub, point, s1);
    TL_OK(b_card, import_s1(b_card, b_ec.key[0], SKS_SKIMPORT_ECDH_P256,
                            view_of(point, sizeof(point)), &h));
    inject_args a;
    args_init(&a, h, "inj", SKS_USAGE_SIGN, s1, a_ec_pub, k2, NULL);
    ck_assert_int_eq(inject(b_card, &a, NULL), SKS_ERR_CRYPTO);
    card_state(b_card, &used1, &ch1);
    ck_assert_uint_eq(used1, used0);
    ck_assert_uint_eq(ch1, ch0);

    /* The same blob is good on A (the test is not refusing everything). */
    uint32_t ha, key;
    TL_OK(a_card, import_s1(a_card, a_ec.key[0], SKS_SKIMPORT_ECDH_P256,
                            view_of(point, sizeof(point)), &ha));
    a.s1_handle = ha;
    TL_OK(a_card, inject(a_card, &a, &key));
    sign_and_verify(a_card, key, k2);

    sks_writer_free(&a.blob);
    sks_writer_free(&enc);
    EVP_PKEY_free(a_rsa_pub);
    EVP_PKEY_free(a_ec_pub);
    EVP_PKEY_free(k2);
    tl_key_free(&a_rsa);
    tl_key_free(&a_ec);
    tl_key_free(&b_rsa);
    tl_key_free(&b_ec);
    tl_card_free(a_card);
    tl_card_free(b_card);
}
END_TEST

/* The injected key survives a power cycle: it was committed, S1 was not. */
START_TEST(test_injected_key_persists)
{
    with_s1 x;
    uint32_t key;
    s1_begin(&x, SKS_KEYALG_RSA2048, 0);
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    inject_args a;
    args_init(&a, x.h, "inj3072", SKS_USAGE_SIGN, x.s1, x.k1_pub, k2, NULL);
    TL_OK(x.c, inject(x.c, &a, &key));
    tl_card_reopen(x.c);
    sign_and_verify(x.c, key, k2);
    sks_writer_free(&a.blob);
    EVP_PKEY_free(k2);
    s1_end(&x);
}
END_TEST

static Suite *inject_suite(void)
{
    Suite *s = suite_create("inject");
    TCase *tc = tcase_create("inject");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rsa_session_key_rsa_injection);
    tcase_add_test(tc, test_ecdh_session_key_ec_injection);
    tcase_add_test(tc, test_import_refusals);
    tcase_add_test(tc, test_session_key_limit);
    tcase_add_test(tc, test_session_keys_gone_after_reset);
    tcase_add_test(tc, test_pin_rules);
    tcase_add_test(tc, test_inject_refusals);
    tcase_add_test(tc, test_blob_for_another_card);
    tcase_add_test(tc, test_injected_key_persists);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run_suite(inject_suite());
}
