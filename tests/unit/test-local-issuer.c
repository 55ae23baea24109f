/*
 * test-local-issuer.c - the local issuer emulation against a real card
 * engine (linked in, reached through sks_card_call): tokens, generated and
 * imported keys, their certificate paths, the persistence of the issuer's
 * state, and the refusal of a card whose device certificate does not chain
 * to the configured manufacturer CA.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "card/sks_card.h"
#include "issuer/sks_issuer.h"
#include "protocol/sks_msg.h"
#include "provision/local_issuer.h"

static char dir[256];
static char card_dir[300];
static char issuer_dir[300];
static sks_card *card;
static sks_local_issuer *li;
static sks_card_link link_;
static char err[256];

/* The card link: encode, run below the APDU layer, decode. */
static int card_link_call(void *ctx, uint8_t method, const void *req, void *resp,
                          sks_writer *answer, uint8_t *status, char *errmsg, size_t errlen)
{
    const sks_msgdesc *d = sks_msg_find(method);
    sks_writer call;
    sks_view es = {NULL, 0};
    sks_writer_init(&call);
    if (d == NULL || sks_msg_encode_request(d, req, &call) != 0) {
        sks_writer_free(&call);
        return -1;
    }
    sks_card_call(ctx, call.buf, call.len, answer);
    sks_writer_free(&call);
    uint8_t any[512];
    if (sks_msg_decode_response(d, answer->buf, answer->len, resp != NULL ? resp : any, status,
                                &es) != 0)
        return -1;
    if (*status != SKS_OK)
        snprintf(errmsg, errlen, "%.*s", (int)es.len, (const char *)es.ptr);
    return 0;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test-local-issuer-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(card_dir, sizeof(card_dir), "%s/card", dir);
    snprintf(issuer_dir, sizeof(issuer_dir), "%s/issuer", dir);
    ck_assert_int_eq(sks_card_init_state(card_dir, NULL, err, sizeof(err)), 0);
    card = sks_card_open(card_dir, err, sizeof(err));
    ck_assert_ptr_nonnull(card);
    li = sks_local_issuer_open(issuer_dir, NULL, err, sizeof(err));
    ck_assert_msg(li != NULL, "%s", err);
    link_.call = card_link_call;
    link_.ctx = card;
}

static void teardown(void)
{
    char cmd[400];
    sks_local_issuer_close(li);
    sks_card_close(card);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* getKeyAttributes of a key; the answer stays in *answer. */
static void key_attributes(uint32_t handle, sks_resp_get_key_attributes *resp, sks_writer *answer)
{
    sks_req_key_handle req = {handle};
    uint8_t status;
    char msg[128];
    sks_writer_init(answer);
    ck_assert_int_eq(card_link_call(card, SKS_M_GET_KEY_ATTRIBUTES, &req, resp, answer, &status,
                                    msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(status, SKS_OK);
}

static X509 *parse_cert(sks_view v)
{
    const unsigned char *p = v.ptr;
    X509 *c = d2i_X509(NULL, &p, (long)v.len);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* The key's certificate path is [EE, CA], the EE verifies under the CA and holds the key. */
static X509 *check_path(const sks_resp_get_key_attributes *a, const char *cn)
{
    ck_assert_int_eq(a->certificate_path.count, 2);
    X509 *ee = parse_cert(a->certificate_path.cert[0]);
    X509 *ca = parse_cert(a->certificate_path.cert[1]);
    char name[256];
    X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, name, sizeof(name));
    ck_assert_str_eq(name, "SKS Local Issuer");
    X509_NAME_get_text_by_NID(X509_get_subject_name(ee), NID_commonName, name, sizeof(name));
    ck_assert_str_eq(name, cn);
    ck_assert_int_eq(X509_verify(ee, X509_get0_pubkey(ca)), 1);
    ck_assert_int_eq(X509_check_issued(ca, ee), X509_V_OK);
    /* 10 years: notAfter is more than 9 years away. */
    time_t nine_years = time(NULL) + 9L * 365 * 86400;
    ck_assert_int_gt(ASN1_TIME_cmp_time_t(X509_get0_notAfter(ee), nine_years), 0);
    ck_assert_int_gt(ASN1_TIME_cmp_time_t(X509_get0_notAfter(ca), nine_years), 0);
    /* The EE public key is the key's. */
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(X509_get0_pubkey(ee), &der);
    ck_assert_int_eq((size_t)n, a->public_key.len);
    ck_assert_mem_eq(der, a->public_key.ptr, (size_t)n);
    OPENSSL_free(der);
    X509_free(ca);
    return ee;
}

/* Sign a SHA-256 hash on the card and verify it with the key's public key. */
static void sign_and_verify(uint32_t handle, const sks_resp_get_key_attributes *a, int rsa)
{
    uint8_t hash[32];
    for (size_t i = 0; i < sizeof(hash); i++)
        hash[i] = (uint8_t)(i * 7 + 1);
    sks_req_sign req = {handle,
                        rsa ? SKS_SIGN_RSA_PKCS1 : SKS_SIGN_ECDSA,
                        SKS_HASH_SHA256,
                        0,
                        {hash, sizeof(hash)}};
    sks_resp_sign resp;
    sks_writer answer;
    uint8_t status;
    char msg[128];
    sks_writer_init(&answer);
    ck_assert_int_eq(
        card_link_call(card, SKS_M_SIGN_HASHED_DATA, &req, &resp, &answer, &status, msg, 128), 0);
    ck_assert_msg(status == SKS_OK, "%s", msg);

    const unsigned char *p = a->public_key.ptr;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)a->public_key.len);
    ck_assert_ptr_nonnull(pub);
    uint8_t der[160];
    const uint8_t *sig = resp.signature.ptr;
    size_t siglen = resp.signature.len;
    if (!rsa) { /* r | s to DER */
        size_t h = siglen / 2;
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)h, NULL), BN_bin2bn(sig + h, (int)h, NULL));
        unsigned char *q = der;
        siglen = (size_t)i2d_ECDSA_SIG(es, &q);
        ECDSA_SIG_free(es);
        sig = der;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
    ck_assert_int_eq(EVP_PKEY_verify_init(ctx), 1);
    if (rsa) {
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
        EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256());
    }
    ck_assert_int_eq(EVP_PKEY_verify(ctx, sig, siglen, hash, sizeof(hash)), 1);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pub);
    sks_writer_free(&answer);
}

START_TEST(token_policies)
{
    uint32_t pin_policy = 0;
    int rc = sks_local_issuer_create_token(li, &link_, "alice",
                                           (sks_view){(const uint8_t *)"12345678", 8}, &pin_policy,
                                           err, sizeof(err));
    ck_assert_msg(rc == SKS_OK, "%d %s", rc, err);
    ck_assert_uint_ne(pin_policy, 0);

    sks_resp_enumerate_pin_policies resp;
    sks_writer answer;
    uint8_t status;
    char msg[128];
    sks_writer_init(&answer);
    ck_assert_int_eq(card_link_call(card, SKS_M_ENUMERATE_PIN_POLICIES, NULL, &resp, &answer,
                                    &status, msg, sizeof(msg)),
                     0);
    ck_assert_int_eq(status, SKS_OK);
    sks_reader r;
    sks_pin_policy_info info;
    const char *why;
    sks_reader_init(&r, resp.policies.ptr, resp.policies.len);
    ck_assert_int_eq(sks_fields_read(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq,
                                     SKS_FF_WIRE, &r, &info, &why),
                     0);
    ck_assert_uint_eq(info.handle, pin_policy);
    ck_assert_uint_eq(info.id.len, 5);
    ck_assert_mem_eq(info.id.ptr, "alice", 5);
    ck_assert_uint_eq(info.format, SKS_PIN_UTF8);
    ck_assert_uint_eq(info.retry_limit, 3);
    ck_assert_uint_eq(info.min_length, 4);
    ck_assert_uint_eq(info.max_length, 64);
    ck_assert_uint_eq(info.user_modifiable, 1);
    ck_assert_uint_eq(info.pin_set, 0);
    ck_assert_uint_ne(info.puk_policy_handle, 0);
    ck_assert_uint_eq(info.puk_retry_limit, 10);
    ck_assert_uint_eq(info.puk_tries_left, 10);
    sks_writer_free(&answer);

    /* A label beyond 32 bytes cannot be a policy ID. */
    rc = sks_local_issuer_create_token(li, &link_, "0123456789abcdef0123456789abcdefX",
                                       (sks_view){(const uint8_t *)"1234", 4}, &pin_policy, err,
                                       sizeof(err));
    ck_assert_int_eq(rc, SKS_ERR_OPTION);
}
END_TEST

/* One Key User call that takes no answer fields; returns the status. */
static uint8_t simple_call(uint8_t method, const void *req)
{
    sks_writer answer;
    uint8_t status = SKS_ERR_INTERNAL;
    char msg[128];
    sks_writer_init(&answer);
    ck_assert_int_eq(card_link_call(card, method, req, NULL, &answer, &status, msg, sizeof(msg)),
                     0);
    sks_writer_free(&answer);
    return status;
}

START_TEST(keys_under_a_token_pin)
{
    uint32_t policy = 0, handle = 0;
    const sks_view so = {(const uint8_t *)"so-secret", 9}, pin = {(const uint8_t *)"1234", 4};
    ck_assert_int_eq(
        sks_local_issuer_create_token(li, &link_, "bob", so, &policy, err, sizeof(err)), SKS_OK);
    sks_local_key_spec spec = {.pin_policy = policy,
                               .algorithm = SKS_KEYALG_EC_P256,
                               .id = {(const uint8_t *)"pk", 2},
                               .label = {(const uint8_t *)"bob's key", 9},
                               .usage = SKS_USAGE_SIGN};
    /* No PIN set yet: a later session cannot be the one that sets it. */
    int rc = sks_local_issuer_generate(li, &link_, &spec, &handle, err, sizeof(err));
    ck_assert_int_eq(rc, SKS_ERR_NOT_ALLOWED);
    /* C_InitPIN: unlockPIN with the PUK sets the first PIN. */
    sks_req_unlock_pin unlock = {policy, so, pin};
    ck_assert_int_eq(simple_call(SKS_M_UNLOCK_PIN, &unlock), SKS_OK);
    /* Set but not verified in this card session. */
    sks_card_reset(card);
    rc = sks_local_issuer_generate(li, &link_, &spec, &handle, err, sizeof(err));
    ck_assert_int_eq(rc, SKS_ERR_NOT_AUTHENTICATED);
    /* Logged in: the key is made under the token's PIN. */
    sks_req_verify_pin verify = {policy, pin};
    ck_assert_int_eq(simple_call(SKS_M_VERIFY_PIN, &verify), SKS_OK);
    rc = sks_local_issuer_generate(li, &link_, &spec, &handle, err, sizeof(err));
    ck_assert_msg(rc == SKS_OK, "%d %s", rc, err);
    sks_resp_get_key_attributes a;
    sks_writer answer;
    key_attributes(handle, &a, &answer);
    ck_assert_uint_eq(a.pin_policy_handle, policy);
    sign_and_verify(handle, &a, 0);
    sks_writer_free(&answer);
    /* An imported key joins it too, from a fresh issuer object (state on disk). */
    sks_local_issuer_close(li);
    li = sks_local_issuer_open(issuer_dir, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(li);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    spec.id = (sks_view){(const uint8_t *)"pk2", 3};
    spec.algorithm = 0; /* taken from the key */
    rc = sks_local_issuer_import(li, &link_, &spec, key, &handle, err, sizeof(err));
    ck_assert_msg(rc == SKS_OK, "%d %s", rc, err);
    key_attributes(handle, &a, &answer);
    ck_assert_uint_eq(a.pin_policy_handle, policy);
    sign_and_verify(handle, &a, 1);
    sks_writer_free(&answer);
    EVP_PKEY_free(key);
    /* A policy handle that is not a token of this card. */
    spec.pin_policy = 0x7777;
    spec.algorithm = SKS_KEYALG_EC_P256;
    spec.id = (sks_view){(const uint8_t *)"pk3", 3};
    ck_assert_int_eq(sks_local_issuer_generate(li, &link_, &spec, &handle, err, sizeof(err)),
                     SKS_ERR_NO_POLICY);
}
END_TEST

START_TEST(generate_rsa_and_ec)
{
    static const struct {
        uint8_t alg;
        int rsa;
    } cases[] = {{SKS_KEYALG_RSA2048, 1}, {SKS_KEYALG_EC_P256, 0}, {SKS_KEYALG_EC_P384, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char id[8], label[16];
        snprintf(id, sizeof(id), "k%zu", i);
        snprintf(label, sizeof(label), "key %zu", i);
        sks_local_key_spec spec = {
            .algorithm = cases[i].alg,
            .id = {(const uint8_t *)id, strlen(id)},
            .label = {(const uint8_t *)label, strlen(label)},
            .usage = SKS_USAGE_SIGN | (cases[i].rsa ? SKS_USAGE_DECRYPT : SKS_USAGE_KEY_AGREEMENT),
        };
        uint32_t handle = 0;
        int rc = sks_local_issuer_generate(li, &link_, &spec, &handle, err, sizeof(err));
        ck_assert_msg(rc == SKS_OK, "%d %s", rc, err);
        sks_resp_get_key_attributes a;
        sks_writer answer;
        key_attributes(handle, &a, &answer);
        ck_assert_uint_eq(a.id.len, strlen(id));
        ck_assert_mem_eq(a.id.ptr, id, strlen(id));
        ck_assert_uint_eq(a.friendly_name.len, strlen(label));
        ck_assert_uint_eq(a.algorithm, cases[i].alg);
        ck_assert_uint_eq(a.key_usage, spec.usage);
        ck_assert_uint_eq(a.pin_policy_handle, 0);
        ck_assert(a.flags & SKS_KEYFLAG_COMPLETE);
        ck_assert(a.flags & SKS_KEYFLAG_GENERATED_ON_CARD);
        ck_assert(!(a.flags & SKS_KEYFLAG_MIGRATABLE));
        X509 *ee = check_path(&a, label);
        uint32_t ku = X509_get_key_usage(ee);
        ck_assert(ku & KU_DIGITAL_SIGNATURE);
        if (cases[i].rsa)
            ck_assert(ku & KU_KEY_ENCIPHERMENT);
        else
            ck_assert(ku & KU_KEY_AGREEMENT);
        X509_free(ee);
        sign_and_verify(handle, &a, cases[i].rsa);
        sks_writer_free(&answer);
    }
}
END_TEST

START_TEST(binary_id_and_default_name)
{
    const uint8_t id[] = {0x00, 0x11, 0x00, 0xff};
    sks_local_key_spec spec = {
        .algorithm = SKS_KEYALG_EC_P256,
        .id = {id, sizeof(id)},
        .usage = SKS_USAGE_SIGN,
        .migratable = 1,
    };
    uint32_t handle = 0;
    int rc = sks_local_issuer_generate(li, &link_, &spec, &handle, err, sizeof(err));
    ck_assert_msg(rc == SKS_OK, "%d %s", rc, err);
    sks_resp_get_key_attributes a;
    sks_writer answer;
    key_attributes(handle, &a, &answer);
    ck_assert_uint_eq(a.id.len, sizeof(id));
    ck_assert_mem_eq(a.id.ptr, id, sizeof(id));
    ck_assert_uint_eq(a.friendly_name.len, 0);
    ck_assert(a.flags & SKS_KEYFLAG_MIGRATABLE);
    X509 *ee = check_path(&a, "SKS key 001100ff");
    X509_free(ee);
    sks_writer_free(&answer);
}
END_TEST

START_TEST(import_keys)
{
    static const char *const types[][2] = {{"EC", "P-384"}, {"RSA", NULL}};
    for (size_t i = 0; i < 2; i++) {
        EVP_PKEY *key = types[i][1] != NULL
                            ? EVP_PKEY_Q_keygen(NULL, NULL, types[i][0], types[i][1])
                            : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        ck_assert_ptr_nonnull(key);
        char id[8];
        snprintf(id, sizeof(id), "imp%zu", i);
        sks_local_key_spec spec = {
            .id = {(const uint8_t *)id, strlen(id)},
            .label = {(const uint8_t *)"imported", 8},
            .usage = SKS_USAGE_SIGN,
        };
        uint32_t handle = 0;
        int rc = sks_local_issuer_import(li, &link_, &spec, key, &handle, err, sizeof(err));
        ck_assert_msg(rc == SKS_OK, "%d %s", rc, err);
        sks_resp_get_key_attributes a;
        sks_writer answer;
        key_attributes(handle, &a, &answer);
        ck_assert(a.flags & SKS_KEYFLAG_IMPORT_PRIVATE_KEY);
        ck_assert(!(a.flags & SKS_KEYFLAG_GENERATED_ON_CARD));
        ck_assert_uint_eq(a.algorithm, i == 0 ? SKS_KEYALG_EC_P384 : SKS_KEYALG_RSA3072);
        /* The card's public key is the imported key's. */
        unsigned char *der = NULL;
        int n = i2d_PUBKEY(key, &der);
        ck_assert_uint_eq(a.public_key.len, (size_t)n);
        ck_assert_mem_eq(a.public_key.ptr, der, (size_t)n);
        OPENSSL_free(der);
        X509_free(check_path(&a, "imported"));
        sign_and_verify(handle, &a, i == 1);
        sks_writer_free(&answer);
        EVP_PKEY_free(key);
    }
    /* A key size the card does not hold is refused before any session. */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    sks_local_key_spec spec = {.id = {(const uint8_t *)"x", 1}, .usage = SKS_USAGE_SIGN};
    uint32_t handle = 0;
    ck_assert_int_eq(sks_local_issuer_import(li, &link_, &spec, small, &handle, err, sizeof(err)),
                     SKS_ERR_ALGORITHM);
    EVP_PKEY_free(small);
}
END_TEST

START_TEST(state_persists)
{
    uint32_t h1 = 0, h2 = 0;
    sks_local_key_spec spec = {.algorithm = SKS_KEYALG_EC_P256,
                               .id = {(const uint8_t *)"a", 1},
                               .label = {(const uint8_t *)"a", 1},
                               .usage = SKS_USAGE_SIGN};
    ck_assert_int_eq(sks_local_issuer_generate(li, &link_, &spec, &h1, err, sizeof(err)), SKS_OK);
    sks_local_issuer_close(li);
    li = sks_local_issuer_open(issuer_dir, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(li);
    spec.id = (sks_view){(const uint8_t *)"b", 1};
    ck_assert_int_eq(sks_local_issuer_generate(li, &link_, &spec, &h2, err, sizeof(err)), SKS_OK);

    /* Both keys carry the same CA certificate: the issuer kept its state. */
    sks_resp_get_key_attributes a1, a2;
    sks_writer w1, w2;
    key_attributes(h1, &a1, &w1);
    key_attributes(h2, &a2, &w2);
    ck_assert_uint_eq(a1.certificate_path.cert[1].len, a2.certificate_path.cert[1].len);
    ck_assert_mem_eq(a1.certificate_path.cert[1].ptr, a2.certificate_path.cert[1].ptr,
                     a1.certificate_path.cert[1].len);
    /* ... and the CA copy for users matches it. */
    char path[400];
    snprintf(path, sizeof(path), "%s/ca-cert.pem", issuer_dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(ca);
    unsigned char *der = NULL;
    int n = i2d_X509(ca, &der);
    ck_assert_uint_eq((size_t)n, a1.certificate_path.cert[1].len);
    ck_assert_mem_eq(der, a1.certificate_path.cert[1].ptr, (size_t)n);
    OPENSSL_free(der);
    X509_free(ca);
    /* The state file is private. */
    struct stat st;
    snprintf(path, sizeof(path), "%s/local-issuer.pem", issuer_dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 077, 0);
    sks_writer_free(&w1);
    sks_writer_free(&w2);
}
END_TEST

/* Count the card's keys. */
static size_t key_count(void)
{
    sks_req_enumerate_keys req = {0};
    sks_resp_enumerate_keys resp;
    sks_writer answer;
    uint8_t status;
    char msg[128];
    sks_writer_init(&answer);
    ck_assert_int_eq(
        card_link_call(card, SKS_M_ENUMERATE_KEYS, &req, &resp, &answer, &status, msg, sizeof(msg)),
        0);
    ck_assert_int_eq(status, SKS_OK);
    size_t n = resp.handles.len / 4;
    sks_writer_free(&answer);
    return n;
}

START_TEST(manufacturer_ca)
{
    /* The card's own development CA: accepted. */
    char ca_file[400];
    snprintf(ca_file, sizeof(ca_file), "%s/manufacturer/ca-cert.pem", card_dir);
    sks_local_issuer *trusting = sks_local_issuer_open(issuer_dir, ca_file, err, sizeof(err));
    ck_assert_msg(trusting != NULL, "%s", err);
    sks_local_key_spec spec = {
        .algorithm = SKS_KEYALG_EC_P256, .id = {(const uint8_t *)"m", 1}, .usage = SKS_USAGE_SIGN};
    uint32_t handle = 0;
    ck_assert_int_eq(sks_local_issuer_generate(trusting, &link_, &spec, &handle, err, sizeof(err)),
                     SKS_OK);
    sks_local_issuer_close(trusting);
    ck_assert_uint_eq(key_count(), 1);

    /* An unrelated CA: the session is refused and aborted, nothing is left. */
    EVP_PKEY *other_key = NULL;
    X509 *other = NULL;
    ck_assert_int_eq(sks_issuer_ca_new("Other CA", &other_key, &other), 0);
    snprintf(ca_file, sizeof(ca_file), "%s/other-ca.pem", dir);
    FILE *f = fopen(ca_file, "w");
    ck_assert_ptr_nonnull(f);
    PEM_write_X509(f, other);
    fclose(f);
    X509_free(other);
    EVP_PKEY_free(other_key);
    sks_local_issuer *strict = sks_local_issuer_open(issuer_dir, ca_file, err, sizeof(err));
    ck_assert_ptr_nonnull(strict);
    spec.id = (sks_view){(const uint8_t *)"n", 1};
    ck_assert_int_eq(sks_local_issuer_generate(strict, &link_, &spec, &handle, err, sizeof(err)),
                     SKS_ERR_CRYPTO);
    ck_assert_ptr_nonnull(strstr(err, "device certificate"));
    sks_local_issuer_close(strict);
    ck_assert_uint_eq(key_count(), 1);

    /* A missing CA file fails to open. */
    ck_assert_ptr_null(sks_local_issuer_open(issuer_dir, "/nonexistent/ca.pem", err, sizeof(err)));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("local-issuer");
    TCase *tc = tcase_create("local-issuer");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, token_policies);
    tcase_add_test(tc, keys_under_a_token_pin);
    tcase_add_test(tc, generate_rsa_and_ec);
    tcase_add_test(tc, binary_id_and_default_name);
    tcase_add_test(tc, import_keys);
    tcase_add_test(tc, state_persists);
    tcase_add_test(tc, manufacturer_ca);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
