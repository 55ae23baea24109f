/*
 * bench_prov.c - provisioning: the issuer of src/issuer against the card
 * engine of src/card in one process (bench_prov.h), and the `prov` command.
 *
 * `prov` times full sessions (createProvisioningSession with ECDH P-256,
 * createPINPolicy, createKeyPair EC P-256, setCertificatePath with a
 * certificate the issuer signs, closeProvisioningSession; every
 * attestation verified) on the card in --state-dir, and the bound: the raw
 * libcrypto cost of the public-key operations one session needs,
 *
 *   card:   P-256 key generation x2 (ECDH ephemeral, the new key),
 *           ECDH x1, ECDSA sign x1 (session attestation)
 *   issuer: ECDH x1, ECDSA verify x2 (device certificate, session
 *           attestation), ECDSA sign x1 (the key's certificate)
 *
 * (MACs, AES and hashes are left out: the bound is only what the public-key
 * operations alone allow.) Keys: prov.<name>.sessions_s,
 * prov.bound_sessions_s and the per-operation costs prov.raw.*_us.
 */
#include "bench_prov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "bench_main.h"
#include "bench_util.h"
#include "card/sks_card.h"
#include "issuer/sks_issuer.h"
#include "protocol/sks_msg.h"

#define ISSUER_URI "https://issuer.example/sks/bench"

struct bench_issuer {
    sks_card *card;
    X509_STORE *trusted;
    EVP_PKEY *issuer_key;
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    sks_writer answer;
    uint64_t serial;
};

bench_issuer *bench_issuer_open(const char *card_dir)
{
    char path[4200], err[256] = "";
    bench_issuer *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    sks_writer_init(&b->answer);
    snprintf(path, sizeof(path), "%s/card.db", card_dir);
    if (access(path, F_OK) != 0 && sks_card_init_state(card_dir, NULL, err, sizeof(err)) != 0) {
        bench_note("cannot create a card in %s: %s", card_dir, err);
        bench_issuer_close(b);
        return NULL;
    }
    b->card = sks_card_open(card_dir, err, sizeof(err));
    snprintf(path, sizeof(path), "%s/manufacturer/ca-cert.pem", card_dir);
    if (b->card == NULL || (b->trusted = sks_issuer_trust_pem(path)) == NULL ||
        (b->issuer_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
        sks_issuer_ca_new("sks-bench issuer CA", &b->ca_key, &b->ca_cert) != 0) {
        bench_note("cannot open the card in %s or set up the issuer: %s", card_dir, err);
        bench_issuer_close(b);
        return NULL;
    }
    return b;
}

void bench_issuer_close(bench_issuer *b)
{
    if (b == NULL)
        return;
    sks_card_close(b->card);
    X509_STORE_free(b->trusted);
    EVP_PKEY_free(b->issuer_key);
    EVP_PKEY_free(b->ca_key);
    X509_free(b->ca_cert);
    sks_writer_free(&b->answer);
    free(b);
}

/* Run one call on the card; 0 only when it answers OK. */
static int card_call(bench_issuer *b, uint8_t method, const void *req, void *resp)
{
    const sks_msgdesc *d = sks_msg_find(method);
    sks_writer w;
    uint8_t status = 0xFF;
    sks_view msg = {NULL, 0};
    sks_writer_init(&w);
    if (d == NULL || sks_msg_encode_request(d, req, &w) != 0 || w.failed) {
        sks_writer_free(&w);
        bench_note("cannot encode a call of method %u", method);
        return -1;
    }
    sks_writer_reset(&b->answer);
    sks_card_call(b->card, w.buf, w.len, &b->answer);
    sks_writer_free(&w);
    if (sks_msg_decode_response(d, b->answer.buf, b->answer.len, resp, &status, &msg) != 0) {
        bench_note("%s: malformed answer", d->name);
        return -1;
    }
    if (status != SKS_OK) {
        bench_note("%s: %s (%.*s)", d->name, sks_status_name(status), (int)msg.len,
                   (const char *)msg.ptr);
        return -1;
    }
    return 0;
}

/* An issuer step that must succeed. */
static int issuer_ok(sks_issuer_session *s, int rc, const char *what)
{
    if (rc != 0)
        bench_note("issuer: %s: %s", what, sks_issuer_error(s));
    return rc;
}

/* createKeyPair, attestation check, certificate, setCertificatePath for key i. */
static int one_key(bench_issuer *b, sks_issuer_session *s, const char *policy_id, uint32_t policy,
                   sks_view pin, unsigned i)
{
    char id[32], name[32];
    sks_issuer_msg m;
    sks_req_create_key_pair kp;
    sks_resp_create_key_pair kp_r;
    sks_req_set_certificate_path cp;
    sks_writer der;
    X509 *cert = NULL;
    int rc = -1;
    snprintf(id, sizeof(id), BENCH_KEY_ID_FMT, i);
    snprintf(name, sizeof(name), BENCH_KEY_LABEL_FMT, i);
    sks_issuer_key_spec ks = {
        .id = id,
        .pin_policy_id = policy_id,
        .pin = pin,
        .key_usage = SKS_USAGE_SIGN,
        .friendly_name = name,
        .algorithm = SKS_KEYALG_EC_P256,
    };
    sks_issuer_msg_init(&m);
    sks_writer_init(&der);
    if (issuer_ok(s, sks_issuer_prepare_key_pair(s, &ks, policy, &m, &kp), "createKeyPair") != 0 ||
        card_call(b, SKS_M_CREATE_KEY_PAIR, &kp, &kp_r) != 0 ||
        issuer_ok(s, sks_issuer_verify_key_attestation(s, &m, &kp_r), "key attestation") != 0)
        goto out;
    uint32_t handle = kp_r.key_handle;
    cert = sks_issuer_issue_cert(b->ca_key, b->ca_cert, kp_r.public_key, name, ++b->serial);
    if (cert == NULL || sks_issuer_cert_der(cert, &der) != 0) {
        bench_note("cannot issue the certificate of key %u", i);
        goto out;
    }
    sks_view path[1] = {{der.buf, der.len}};
    if (issuer_ok(s, sks_issuer_prepare_certificate_path(s, id, handle, path, 1, &m, &cp),
                  "setCertificatePath") != 0 ||
        card_call(b, SKS_M_SET_CERTIFICATE_PATH, &cp, NULL) != 0)
        goto out;
    rc = 0;
out:
    X509_free(cert);
    sks_writer_free(&der);
    sks_issuer_msg_free(&m);
    return rc;
}

/* The policy of the session: created (*policy 0) or declared from an earlier session. */
static int session_policy(bench_issuer *b, sks_issuer_session *s, const char *policy_id,
                          const char *pin, uint32_t *policy)
{
    sks_issuer_pin_policy p = {
        .id = policy_id,
        .user_modifiable = 1,
        .format = SKS_PIN_NUMERIC,
        .retry_limit = 10,
        .grouping = SKS_GROUPING_SHARED,
        .min_length = 4,
        .max_length = 8,
        .caching_support = 1,
    };
    if (*policy != 0) {
        sks_req_verify_pin vp = {*policy, {(const uint8_t *)pin, strlen(pin)}};
        return card_call(b, SKS_M_VERIFY_PIN, &vp, NULL) != 0 ||
                       issuer_ok(s, sks_issuer_declare_pin_policy(s, &p), "declared PIN policy")
                   ? -1
                   : 0;
    }
    sks_issuer_msg m;
    sks_req_create_pin_policy pp;
    sks_resp_create_pin_policy pp_r;
    sks_issuer_msg_init(&m);
    int rc = issuer_ok(s, sks_issuer_prepare_pin_policy(s, &p, 0, &m, &pp), "createPINPolicy");
    if (rc == 0)
        rc = card_call(b, SKS_M_CREATE_PIN_POLICY, &pp, &pp_r);
    if (rc == 0)
        *policy = pp_r.pin_policy_handle;
    sks_issuer_msg_free(&m);
    return rc;
}

int bench_issuer_session(bench_issuer *b, const char *policy_id, const char *pin, uint32_t *policy,
                         unsigned first, unsigned n)
{
    sks_issuer_session *s = sks_issuer_session_new(SKS_SKALG_ECDH_P256, ISSUER_URI, b->issuer_key);
    sks_issuer_msg m;
    sks_req_create_session cs;
    sks_resp_create_session cs_r;
    sks_req_close_session cl;
    sks_resp_close_session cl_r;
    int rc = -1;
    if (s == NULL)
        return -1;
    /* A key of a later session takes the verified PIN: PINValue empty. */
    sks_view key_pin = {(const uint8_t *)pin, *policy == 0 ? strlen(pin) : 0};
    sks_issuer_msg_init(&m);
    if (issuer_ok(s, sks_issuer_request(s, 0, 0, 3600, &cs), "session request") != 0 ||
        card_call(b, SKS_M_CREATE_PROVISIONING_SESSION, &cs, &cs_r) != 0 ||
        issuer_ok(s, sks_issuer_accept(s, b->trusted, &cs_r), "session attestation") != 0 ||
        session_policy(b, s, policy_id, pin, policy) != 0)
        goto out;
    for (unsigned i = first; i < first + n; i++)
        if (one_key(b, s, policy_id, *policy, key_pin, i) != 0)
            goto out;
    if (issuer_ok(s, sks_issuer_prepare_close(s, &m, &cl), "closeProvisioningSession") != 0 ||
        card_call(b, SKS_M_CLOSE_PROVISIONING_SESSION, &cl, &cl_r) != 0 ||
        issuer_ok(s, sks_issuer_verify_close(s, &m, &cl_r), "close attestation") != 0)
        goto out;
    rc = 0;
out:
    sks_issuer_msg_free(&m);
    sks_issuer_session_free(s);
    return rc;
}

/* ---- the raw crypto bound --------------------------------------------- */

typedef struct {
    EVP_PKEY *key;  /* own P-256 key */
    EVP_PKEY *peer; /* another P-256 key (ECDH peer) */
    uint8_t sig[80];
    size_t siglen;
} raw_ctx;

static const uint8_t digest[32] = "sks-bench: a 32-byte digest....";

static int op_keygen(void *arg)
{
    (void)arg;
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY_free(k);
    return k != NULL ? 0 : -1;
}

static int op_ecdh(void *arg)
{
    raw_ctx *r = arg;
    uint8_t z[32];
    size_t zlen = sizeof(z);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, r->key, NULL);
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, r->peer) == 1 && EVP_PKEY_derive(ctx, z, &zlen) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int op_sign(void *arg)
{
    raw_ctx *r = arg;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    r->siglen = sizeof(r->sig);
    int ok = m != NULL && EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, r->key) == 1 &&
             EVP_DigestSign(m, r->sig, &r->siglen, digest, sizeof(digest)) == 1;
    EVP_MD_CTX_free(m);
    return ok ? 0 : -1;
}

static int op_verify(void *arg)
{
    raw_ctx *r = arg;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = m != NULL && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, r->key) == 1 &&
             EVP_DigestVerify(m, r->sig, r->siglen, digest, sizeof(digest)) == 1;
    EVP_MD_CTX_free(m);
    return ok ? 0 : -1;
}

/* Seconds per operation of the four kinds; the bound in sessions per second, or -1. */
static double raw_bound(double seconds)
{
    static const struct {
        const char *name;
        int (*op)(void *);
        int per_session;
    } ops[] = {
        {"keygen", op_keygen, 2},
        {"ecdh", op_ecdh, 2},
        {"sign", op_sign, 2},
        {"verify", op_verify, 2},
    };
    raw_ctx r = {EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
                 EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
                 {0},
                 0};
    double total = 0;
    int ok = r.key != NULL && r.peer != NULL && op_sign(&r) == 0;
    for (size_t i = 0; ok && i < sizeof(ops) / sizeof(ops[0]); i++) {
        void *ctx[1] = {&r};
        double rate = bench_run_threads(1, seconds, ops[i].op, ctx);
        char key[64];
        snprintf(key, sizeof(key), "prov.raw.%s_us", ops[i].name);
        ok = rate > 0;
        if (ok) {
            bench_result(key, 1e6 / rate);
            total += ops[i].per_session / rate;
        }
    }
    EVP_PKEY_free(r.key);
    EVP_PKEY_free(r.peer);
    return ok ? 1.0 / total : -1;
}

int bench_cmd_prov(const bench_opts *o)
{
    char key[96], policy[32];
    snprintf(key, sizeof(key), "prov.%s.sessions_s", o->name);
    double bound = raw_bound(o->seconds / 4);
    if (bound > 0)
        bench_result("prov.bound_sessions_s", bound);
    else
        bench_result_na("prov.bound_sessions_s", "libcrypto operation failed");
    if (o->state_dir == NULL) {
        bench_result_na(key, "no --state-dir");
        return 2;
    }
    bench_issuer *b = bench_issuer_open(o->state_dir);
    if (b == NULL) {
        bench_result_na(key, "cannot open the card");
        return 1;
    }
    /* One session first (not timed): the card's first use loads its keys. */
    unsigned done = 0;
    int rc = 0;
    uint32_t handle = 0;
    snprintf(policy, sizeof(policy), "bench-%u", done++);
    rc = bench_issuer_session(b, policy, "123456", &handle, 1, 1);
    double t0 = bench_now(), dt = 0;
    unsigned timed = 0;
    while (rc == 0 && (dt < o->seconds || timed < 3)) {
        snprintf(policy, sizeof(policy), "bench-%u", done++);
        handle = 0;
        rc = bench_issuer_session(b, policy, "123456", &handle, 1, 1);
        timed += rc == 0;
        dt = bench_now() - t0;
    }
    if (rc != 0)
        bench_result_na(key, "a provisioning session failed");
    else
        bench_result(key, timed / dt);
    bench_issuer_close(b);
    return rc == 0 ? 0 : 1;
}
