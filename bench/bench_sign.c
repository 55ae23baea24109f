/*
 * bench_sign.c - signature rates, one thread and N threads:
 *
 *   raw   libcrypto itself (EVP_PKEY_sign in a loop), the limit: RSA-2048
 *         PKCS#1 v1.5 over the SHA-256 of a 32-byte message (the digest is
 *         computed in the loop, as CKM_SHA256_RSA_PKCS does), and ECDSA
 *         P-256 over a 32-byte hash;
 *   sign  a PKCS#11 module: C_SignInit + C_Sign with CKM_SHA256_RSA_PKCS on
 *         the token's RSA key and CKM_ECDSA on its EC key, each thread with
 *         its own session, the user logged in once; and its ratio to raw
 *         libcrypto timed in alternating slices in the same process, so
 *         that other load on the machine weighs on both alike.
 *
 * The first signature of every PKCS#11 run is verified (C_Verify with the
 * key's public key object) and every raw key's first signature with
 * EVP_PKEY_verify, so a broken signing path is never timed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "bench_main.h"
#include "bench_util.h"

#define SIG_MAX 512
#define ROUNDS  8 /* interleaved raw / module slices per figure */

static const uint8_t message[32] = "sks-bench: the signed message..";

/* ---- raw libcrypto ---------------------------------------------------- */

typedef struct {
    EVP_PKEY_CTX *ctx;
    int rsa;
} raw_signer;

/* One raw signature: digest (RSA) and EVP_PKEY_sign on the thread's context. */
static int raw_op(void *arg)
{
    raw_signer *r = arg;
    uint8_t digest[32], sig[SIG_MAX];
    size_t siglen = sizeof(sig);
    unsigned int dlen = sizeof(digest);
    const uint8_t *tbs = message;
    if (r->rsa) {
        if (EVP_Digest(message, sizeof(message), digest, &dlen, EVP_sha256(), NULL) != 1)
            return -1;
        tbs = digest;
    }
    return EVP_PKEY_sign(r->ctx, sig, &siglen, tbs, 32) == 1 ? 0 : -1;
}

/* A signing context of `key` as the PKCS#11 mechanism uses it. */
static EVP_PKEY_CTX *raw_ctx(EVP_PKEY *key, int rsa)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 ||
        (rsa && (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
                 EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1))) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Sign once and verify: the loop then times a path known to work. */
static int raw_selftest(EVP_PKEY *key, int rsa)
{
    uint8_t digest[32], sig[SIG_MAX];
    size_t siglen = sizeof(sig);
    unsigned int dlen = sizeof(digest);
    const uint8_t *tbs = message;
    if (rsa) {
        if (EVP_Digest(message, sizeof(message), digest, &dlen, EVP_sha256(), NULL) != 1)
            return -1;
        tbs = digest;
    }
    EVP_PKEY_CTX *s = raw_ctx(key, rsa);
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int ok = s != NULL && v != NULL && EVP_PKEY_sign(s, sig, &siglen, tbs, 32) == 1 &&
             EVP_PKEY_verify_init(v) == 1 &&
             (!rsa || (EVP_PKEY_CTX_set_rsa_padding(v, RSA_PKCS1_PADDING) == 1 &&
                       EVP_PKEY_CTX_set_signature_md(v, EVP_sha256()) == 1)) &&
             EVP_PKEY_verify(v, sig, siglen, tbs, 32) == 1;
    EVP_PKEY_CTX_free(s);
    EVP_PKEY_CTX_free(v);
    return ok ? 0 : -1;
}

/* Rate of one key on n threads; -1 on failure. */
static double raw_rate(EVP_PKEY *key, int rsa, int n, double seconds)
{
    raw_signer r[BENCH_MAX_THREADS];
    void *ctx[BENCH_MAX_THREADS];
    double rate = -1;
    int made = 0;
    for (; made < n; made++) {
        r[made].rsa = rsa;
        r[made].ctx = raw_ctx(key, rsa);
        ctx[made] = &r[made];
        if (r[made].ctx == NULL)
            break;
    }
    if (made == n)
        rate = bench_run_threads(n, seconds, raw_op, ctx);
    for (int i = 0; i < made; i++)
        EVP_PKEY_CTX_free(r[i].ctx);
    return rate;
}

/* Print raw.<alg>.t1 and raw.<alg>.tN for one key. */
static void raw_key(const char *alg, EVP_PKEY *key, int rsa, const bench_opts *o)
{
    char k1[64], kn[64];
    snprintf(k1, sizeof(k1), "raw.%s.t1", alg);
    snprintf(kn, sizeof(kn), "raw.%s.tN", alg);
    if (key == NULL || raw_selftest(key, rsa) != 0) {
        bench_result_na(k1, "libcrypto key or signature failed");
        bench_result_na(kn, "libcrypto key or signature failed");
        return;
    }
    bench_result(k1, raw_rate(key, rsa, 1, o->seconds));
    bench_result(kn, raw_rate(key, rsa, o->threads, o->seconds));
}

int bench_cmd_raw(const bench_opts *o)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    raw_key("rsa", rsa, 1, o);
    raw_key("ec", ec, 0, o);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return 0;
}

/* ---- a PKCS#11 module ------------------------------------------------- */

typedef struct {
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE key;
    CK_MECHANISM_TYPE mech;
} p11_signer;

static int p11_op(void *arg)
{
    p11_signer *p = arg;
    CK_MECHANISM mech = {p->mech, NULL, 0};
    CK_BYTE sig[SIG_MAX];
    CK_ULONG siglen = sizeof(sig);
    if (p->f->C_SignInit(p->session, &mech, p->key) != CKR_OK)
        return -1;
    return p->f->C_Sign(p->session, (CK_BYTE_PTR)message, sizeof(message), sig, &siglen) == CKR_OK
               ? 0
               : -1;
}

/* Sign once with `priv` and verify with `pub` through the module. */
static CK_RV p11_selftest(bench_p11 *m, CK_SESSION_HANDLE s, CK_MECHANISM_TYPE type,
                          CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
    CK_MECHANISM mech = {type, NULL, 0};
    CK_BYTE sig[SIG_MAX];
    CK_ULONG siglen = sizeof(sig);
    CK_RV rv = m->f->C_SignInit(s, &mech, priv);
    if (rv == CKR_OK)
        rv = m->f->C_Sign(s, (CK_BYTE_PTR)message, sizeof(message), sig, &siglen);
    if (rv == CKR_OK)
        rv = m->f->C_VerifyInit(s, &mech, pub);
    if (rv == CKR_OK)
        rv = m->f->C_Verify(s, (CK_BYTE_PTR)message, sizeof(message), sig, siglen);
    return rv;
}

/* Rate of one key on n threads, each with its own session; -1 on failure. */
static double p11_rate(bench_p11 *m, CK_SLOT_ID slot, CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mech,
                       int n, double seconds)
{
    p11_signer p[BENCH_MAX_THREADS];
    void *ctx[BENCH_MAX_THREADS];
    int opened = 0;
    double rate = -1;
    for (; opened < n; opened++) {
        p[opened] = (p11_signer){m->f, 0, key, mech};
        ctx[opened] = &p[opened];
        if (bench_p11_open(m, slot, NULL, &p[opened].session) != CKR_OK)
            break;
    }
    if (opened == n)
        rate = bench_run_threads(n, seconds, p11_op, ctx);
    for (int i = 0; i < opened; i++)
        m->f->C_CloseSession(p[i].session);
    return rate;
}

/*
 * The rate of the module on n threads and its ratio to raw libcrypto
 * measured in the same moments: ROUNDS rounds, each a slice of raw signing
 * then a slice through the module, so that a machine busy with other work
 * slows both alike. Prints sign.<peer>.<alg>.<t> (median rate) and
 * .<t>.ratio (median of the rounds' ratios).
 */
static void p11_cell(bench_p11 *m, CK_SLOT_ID slot, CK_OBJECT_HANDLE priv, CK_MECHANISM_TYPE mech,
                     EVP_PKEY *raw_key, int rsa, int n, const char *key, const bench_opts *o)
{
    double rates[ROUNDS], ratios[ROUNDS], slice = o->seconds / ROUNDS;
    char k[128];
    if (slice < 0.05)
        slice = 0.05;
    for (int r = 0; r < ROUNDS; r++) {
        double raw = raw_key != NULL ? raw_rate(raw_key, rsa, n, slice) : -1;
        rates[r] = p11_rate(m, slot, priv, mech, n, slice);
        if (rates[r] < 0) {
            bench_result_na(key, "signing through the module failed");
            return;
        }
        ratios[r] = raw > 0 ? rates[r] / raw : -1;
    }
    bench_result(key, bench_median(rates, ROUNDS));
    snprintf(k, sizeof(k), "%s.ratio", key);
    if (raw_key != NULL)
        bench_result(k, bench_median(ratios, ROUNDS));
}

/* sign.<peer>.<alg>.t1/tN for the key pair labelled `label`. */
static void p11_key(bench_p11 *m, CK_SLOT_ID slot, CK_SESSION_HANDLE s, const char *alg,
                    const char *label, CK_MECHANISM_TYPE mech, EVP_PKEY *raw_key, int rsa,
                    const bench_opts *o)
{
    char k1[96], kn[96], why[160];
    CK_OBJECT_HANDLE priv, pub;
    CK_ULONG n1 = 0, n2 = 0;
    snprintf(k1, sizeof(k1), "sign.%s.%s.t1", o->peer, alg);
    snprintf(kn, sizeof(kn), "sign.%s.%s.tN", o->peer, alg);
    CK_RV rv = bench_p11_find(m, s, CKO_PRIVATE_KEY, label, NULL, 0, &priv, 1, &n1);
    if (rv == CKR_OK)
        rv = bench_p11_find(m, s, CKO_PUBLIC_KEY, label, NULL, 0, &pub, 1, &n2);
    if (rv == CKR_OK && (n1 != 1 || n2 != 1))
        rv = CKR_OBJECT_HANDLE_INVALID;
    if (rv == CKR_OK)
        rv = p11_selftest(m, s, mech, priv, pub);
    if (rv != CKR_OK) {
        snprintf(why, sizeof(why), "key '%s': sign and verify failed (%s)", label,
                 bench_rv_name(rv));
        bench_result_na(k1, why);
        bench_result_na(kn, why);
        return;
    }
    if (raw_key != NULL && raw_selftest(raw_key, rsa) != 0)
        raw_key = NULL;
    p11_cell(m, slot, priv, mech, raw_key, rsa, 1, k1, o);
    p11_cell(m, slot, priv, mech, raw_key, rsa, o->threads, kn, o);
}

int bench_cmd_sign(const bench_opts *o)
{
    bench_p11 m;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    char why[200];
    if (bench_p11_load(&m, o->module) != 0)
        return 1;
    CK_RV rv = bench_p11_init(&m);
    if (rv == CKR_OK)
        rv = bench_p11_slot(&m, o->token, &slot);
    if (rv == CKR_OK)
        rv = bench_p11_open(&m, slot, o->pin, &s);
    if (rv != CKR_OK) {
        snprintf(why, sizeof(why), "token '%s': %s", o->token, bench_rv_name(rv));
        const char *algs[] = {"rsa", "ec"};
        for (int i = 0; i < 2; i++) {
            char k[96];
            snprintf(k, sizeof(k), "sign.%s.%s.t1", o->peer, algs[i]);
            bench_result_na(k, why);
            snprintf(k, sizeof(k), "sign.%s.%s.tN", o->peer, algs[i]);
            bench_result_na(k, why);
        }
        bench_p11_unload(&m);
        return 1;
    }
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    p11_key(&m, slot, s, "rsa", o->rsa_label, CKM_SHA256_RSA_PKCS, rsa, 1, o);
    p11_key(&m, slot, s, "ec", o->ec_label, CKM_ECDSA, ec, 0, o);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    m.f->C_CloseSession(s);
    bench_p11_unload(&m);
    return 0;
}
