/*
 * bench_inject.c - `sks-bench inject`: the issuer's side of secure key
 * injection through the module in no-card mode (transport = none in the
 * SKS_PKCS11_CONF the caller sets), blobs per second, beside the raw
 * libcrypto work of one blob timed in the same process.
 *
 * A blob is what examples/issuer_inject.c makes for one card:
 *   S1 = C_GenerateKey(CKM_AES_KEY_GEN, 32 bytes)
 *   C_WrapKey(CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, K1, S1)
 *   C_WrapKey(CKM_VENDOR_SKS_INJECT_KEY, S1, K2)
 *   C_DestroyObject(S1)
 * K1 is the public key object of an RSA-2048 key made here with OpenSSL;
 * K2 an extractable software key pair of the issuer token (RSA-2048, then
 * P-256; ID "bench-k2", sign only), generated once before timing: key
 * generation is not blob making. The raw bound: random S1 and IV,
 * RSA-OAEP-SHA256 encryption of S1 and AES-256-GCM of K2's PKCS#8 (the same
 * length) with the blob's AAD (docs/protocol.md 10.2: SHA-256 of K1's
 * SubjectPublicKeyInfo, the ID's length, the ID, the KeyUsage byte).
 * Raw and module slices alternate (four rounds) so that other load on the
 * machine weighs on both alike.
 *
 * The first blob of each K2 is checked before anything is timed: S1 is
 * recovered with K1's private key, the blob decrypted and authenticated
 * with it, and the PKCS#8 inside must be the private key of K2's public key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "bench_main.h"
#include "bench_util.h"
#include "pkcs11/sks-pkcs11.h"

#define SO_PIN   "87654321"
#define ROUNDS   4
#define S1_LEN   32
#define IV_LEN   12
#define TAG_LEN  16
#define BLOB_MAX 8192
#define K2_ID    "bench-k2"
#define K2_USAGE 0x01 /* KeyUsage sign: K2 has CKA_SIGN only */
#define AAD_LEN  (32 + 1 + sizeof(K2_ID) - 1 + 1)

static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* The state of one K2's figures: the module side and the raw side. */
typedef struct {
    bench_p11 *m;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE k1, k2;
    unsigned char wrapped[512], blob[BLOB_MAX];
    CK_ULONG wlen, blen;
    CK_SKS_INJECT_PARAMS ip;
    /* raw */
    EVP_PKEY_CTX *oaep;         /* K1 public, RSA-OAEP-SHA256, prepared once */
    EVP_CIPHER_CTX *gcm;        /* reused for every blob */
    unsigned char aad[AAD_LEN]; /* SHA-256 of K1's SubjectPublicKeyInfo | 8 | K2_ID | K2_USAGE */
    unsigned char *pkcs8;       /* K2's PKCS#8 (from the checked blob) */
    size_t pkcs8_len;
    unsigned char out[BLOB_MAX + TAG_LEN];
} inject_ctx;

/* One blob through the module: S1 made, wrapped under K1, K2 wrapped under S1, S1 gone. */
static int op_module(void *arg)
{
    inject_ctx *c = arg;
    CK_FUNCTION_LIST *f = c->m->f;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = S1_LEN;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ATTRIBUTE st[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_KEY_TYPE, &kt, sizeof(kt)},
                         {CKA_VALUE_LEN, &len, sizeof(len)},
                         {CKA_TOKEN, (void *)&no, sizeof(no)},
                         {CKA_SENSITIVE, (void *)&yes, sizeof(yes)},
                         {CKA_EXTRACTABLE, (void *)&yes, sizeof(yes)},
                         {CKA_WRAP, (void *)&yes, sizeof(yes)}};
    CK_OBJECT_HANDLE s1 = CK_INVALID_HANDLE;
    CK_MECHANISM wm = {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, NULL, 0};
    CK_MECHANISM im = {CKM_VENDOR_SKS_INJECT_KEY, &c->ip, sizeof(c->ip)};
    memset(&c->ip, 0, sizeof(c->ip));
    c->wlen = sizeof(c->wrapped);
    c->blen = sizeof(c->blob);
    CK_RV rv = f->C_GenerateKey(c->s, &gen, st, 7, &s1);
    if (rv == CKR_OK)
        rv = f->C_WrapKey(c->s, &wm, c->k1, s1, c->wrapped, &c->wlen);
    if (rv == CKR_OK)
        rv = f->C_WrapKey(c->s, &im, s1, c->k2, c->blob, &c->blen);
    if (s1 != CK_INVALID_HANDLE && f->C_DestroyObject(c->s, s1) != CKR_OK && rv == CKR_OK)
        rv = CKR_GENERAL_ERROR;
    if (rv != CKR_OK)
        fprintf(stderr, "sks-bench inject: a blob failed: %s\n", bench_rv_name(rv));
    return rv == CKR_OK ? 0 : -1;
}

/* The same cryptography with libcrypto directly. */
static int op_raw(void *arg)
{
    inject_ctx *c = arg;
    unsigned char s1[S1_LEN], iv[IV_LEN], rsa_out[512];
    size_t rlen = sizeof(rsa_out);
    int n = 0, fin = 0;
    int ok = RAND_bytes(s1, sizeof(s1)) == 1 && RAND_bytes(iv, sizeof(iv)) == 1 &&
             EVP_PKEY_encrypt(c->oaep, rsa_out, &rlen, s1, sizeof(s1)) == 1 &&
             EVP_EncryptInit_ex(c->gcm, EVP_aes_256_gcm(), NULL, s1, iv) == 1 &&
             EVP_EncryptUpdate(c->gcm, NULL, &n, c->aad, sizeof(c->aad)) == 1 &&
             EVP_EncryptUpdate(c->gcm, c->out, &n, c->pkcs8, (int)c->pkcs8_len) == 1 &&
             EVP_EncryptFinal_ex(c->gcm, c->out + n, &fin) == 1 &&
             EVP_CIPHER_CTX_ctrl(c->gcm, EVP_CTRL_GCM_GET_TAG, TAG_LEN, c->out + n + fin) == 1;
    OPENSSL_cleanse(s1, sizeof(s1));
    return ok ? 0 : -1;
}

/* K1's public key object (RSA, CKA_WRAP) on the issuer token, a session object. */
static CK_RV make_k1(inject_ctx *c, EVP_PKEY *k1)
{
    unsigned char nbuf[512], ebuf[8];
    BIGNUM *n = NULL, *e = NULL;
    CK_RV rv = CKR_GENERAL_ERROR;
    if (EVP_PKEY_get_bn_param(k1, OSSL_PKEY_PARAM_RSA_N, &n) &&
        EVP_PKEY_get_bn_param(k1, OSSL_PKEY_PARAM_RSA_E, &e) && BN_num_bytes(n) <= 512 &&
        BN_num_bytes(e) <= 8) {
        CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
        CK_KEY_TYPE kt = CKK_RSA;
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                            {CKA_KEY_TYPE, &kt, sizeof(kt)},
                            {CKA_TOKEN, (void *)&no, sizeof(no)},
                            {CKA_MODULUS, nbuf, (CK_ULONG)BN_bn2bin(n, nbuf)},
                            {CKA_PUBLIC_EXPONENT, ebuf, (CK_ULONG)BN_bn2bin(e, ebuf)},
                            {CKA_WRAP, (void *)&yes, sizeof(yes)}};
        rv = c->m->f->C_CreateObject(c->s, t, 6, &c->k1);
    }
    BN_free(n);
    BN_free(e);
    return rv;
}

/* K2: an extractable software key pair (RSA-2048 or P-256), session objects. */
static CK_RV make_k2(inject_ctx *c, int ec, CK_OBJECT_HANDLE *pub)
{
    static const unsigned char p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                         0xCE, 0x3D, 0x03, 0x01, 0x07};
    static const unsigned char e[] = {0x01, 0x00, 0x01};
    CK_ULONG bits = 2048;
    CK_MECHANISM gen = {ec ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub_rsa[] = {{CKA_TOKEN, (void *)&no, sizeof(no)},
                              {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                              {CKA_PUBLIC_EXPONENT, (void *)e, sizeof(e)}};
    CK_ATTRIBUTE pub_ec[] = {{CKA_TOKEN, (void *)&no, sizeof(no)},
                             {CKA_EC_PARAMS, (void *)p256, sizeof(p256)}};
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, (void *)&no, sizeof(no)},
                           {CKA_SENSITIVE, (void *)&yes, sizeof(yes)},
                           {CKA_EXTRACTABLE, (void *)&yes, sizeof(yes)},
                           {CKA_SIGN, (void *)&yes, sizeof(yes)},
                           {CKA_ID, (void *)K2_ID, sizeof(K2_ID) - 1}};
    return c->m->f->C_GenerateKeyPair(c->s, &gen, ec ? pub_ec : pub_rsa, ec ? 2 : 3, priv, 5, pub,
                                      &c->k2);
}

/* K2's public key from its CKA_PUBLIC_KEY_INFO, or NULL. */
static EVP_PKEY *k2_public(inject_ctx *c, CK_OBJECT_HANDLE pub)
{
    unsigned char spki[1024];
    CK_ATTRIBUTE a = {CKA_PUBLIC_KEY_INFO, spki, sizeof(spki)};
    if (c->m->f->C_GetAttributeValue(c->s, pub, &a, 1) != CKR_OK)
        return NULL;
    const unsigned char *p = spki;
    return d2i_PUBKEY(NULL, &p, (long)a.ulValueLen);
}

/*
 * Check the last blob (see the top of the file) and keep its PKCS#8 for the
 * raw side. 0, or -1 with a message.
 */
static int check_blob(inject_ctx *c, EVP_PKEY *k1, EVP_PKEY *k2pub)
{
    unsigned char s1[512];
    size_t s1_len = sizeof(s1);
    EVP_PKEY_CTX *dec = EVP_PKEY_CTX_new_from_pkey(NULL, k1, NULL);
    EVP_CIPHER_CTX *g = EVP_CIPHER_CTX_new();
    unsigned char *plain = malloc(BLOB_MAX);
    int n = 0, fin = 0, ok = 0;
    const char *what = "S1 does not decrypt under K1 (RSA-OAEP-SHA256)";
    if (dec != NULL && EVP_PKEY_decrypt_init(dec) == 1 &&
        EVP_PKEY_CTX_set_rsa_padding(dec, RSA_PKCS1_OAEP_PADDING) == 1 &&
        EVP_PKEY_CTX_set_rsa_oaep_md(dec, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set_rsa_mgf1_md(dec, EVP_sha256()) == 1 &&
        EVP_PKEY_decrypt(dec, s1, &s1_len, c->wrapped, c->wlen) == 1 && s1_len == S1_LEN) {
        what = "the blob does not decrypt and authenticate under S1 (AES-256-GCM)";
        if (g != NULL && plain != NULL && c->blen > TAG_LEN &&
            EVP_DecryptInit_ex(g, EVP_aes_256_gcm(), NULL, s1, c->ip.iv) == 1 &&
            EVP_DecryptUpdate(g, NULL, &n, c->aad, sizeof(c->aad)) == 1 &&
            EVP_DecryptUpdate(g, plain, &n, c->blob, (int)(c->blen - TAG_LEN)) == 1 &&
            EVP_CIPHER_CTX_ctrl(g, EVP_CTRL_GCM_SET_TAG, TAG_LEN, c->blob + c->blen - TAG_LEN) ==
                1 &&
            EVP_DecryptFinal_ex(g, plain + n, &fin) == 1) {
            const unsigned char *p = plain;
            EVP_PKEY *k2 = d2i_AutoPrivateKey(NULL, &p, n + fin);
            what = "the blob's PKCS#8 is not K2's private key";
            ok = k2 != NULL && p == plain + n + fin && EVP_PKEY_eq(k2, k2pub) == 1;
            EVP_PKEY_free(k2);
        }
    }
    if (ok) {
        c->pkcs8 = plain;
        c->pkcs8_len = (size_t)(n + fin);
    } else {
        fprintf(stderr, "sks-bench inject: %s\n", what);
        if (plain != NULL)
            OPENSSL_cleanse(plain, BLOB_MAX);
        free(plain);
    }
    OPENSSL_cleanse(s1, sizeof(s1));
    EVP_PKEY_CTX_free(dec);
    EVP_CIPHER_CTX_free(g);
    return ok ? 0 : -1;
}

/* C_InitToken, C_InitPIN by the SO, and a R/W session logged in as the user. */
static CK_RV open_issuer_token(bench_p11 *m, const char *pin, CK_SESSION_HANDLE *s)
{
    CK_SLOT_ID slots[4];
    CK_ULONG n = 4;
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, "bench issuer", 12);
    CK_RV rv = m->f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv == CKR_OK && n != 1)
        rv = CKR_SLOT_ID_INVALID; /* no-card mode shows exactly one slot */
    if (rv == CKR_OK)
        rv = m->f->C_InitToken(slots[0], (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label);
    if (rv == CKR_OK)
        rv = m->f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
    if (rv == CKR_OK)
        rv = m->f->C_Login(*s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN));
    if (rv == CKR_OK)
        rv = m->f->C_InitPIN(*s, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv == CKR_OK)
        rv = m->f->C_Logout(*s);
    if (rv == CKR_OK)
        rv = m->f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    return rv;
}

/* Both figures of one K2 kind, alternating raw and module slices. 0, or -1. */
static int measure(inject_ctx *c, int ec, EVP_PKEY *k1, double seconds)
{
    const char *kind = ec ? "ec" : "rsa";
    char key[64];
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
    EVP_PKEY *k2pub = NULL;
    CK_RV rv = make_k2(c, ec, &pub);
    int ok = rv == CKR_OK && (k2pub = k2_public(c, pub)) != NULL && op_module(c) == 0 &&
             check_blob(c, k1, k2pub) == 0;
    if (rv != CKR_OK)
        fprintf(stderr, "sks-bench inject: C_GenerateKeyPair(K2 %s): %s\n", kind,
                bench_rv_name(rv));
    double module_rate = 0, raw_rate = 0;
    void *ctx[1] = {c};
    for (int r = 0; ok && r < ROUNDS; r++) {
        double a = bench_run_threads(1, seconds / (2 * ROUNDS), op_raw, ctx);
        double b = bench_run_threads(1, seconds / (2 * ROUNDS), op_module, ctx);
        ok = a > 0 && b > 0;
        raw_rate += a / ROUNDS;
        module_rate += b / ROUNDS;
    }
    snprintf(key, sizeof(key), "prov.inject.%s.blobs_s", kind);
    if (ok)
        bench_result(key, module_rate);
    else
        bench_result_na(key, "an issuer-side injection failed");
    snprintf(key, sizeof(key), "prov.inject.%s.raw_s", kind);
    if (ok)
        bench_result(key, raw_rate);
    else
        bench_result_na(key, "an issuer-side injection failed");
    snprintf(key, sizeof(key), "prov.inject.%s.pkcs8_bytes", kind);
    if (ok)
        bench_result(key, (double)c->pkcs8_len);
    if (c->k2 != CK_INVALID_HANDLE)
        c->m->f->C_DestroyObject(c->s, c->k2);
    if (pub != CK_INVALID_HANDLE)
        c->m->f->C_DestroyObject(c->s, pub);
    c->k2 = CK_INVALID_HANDLE;
    if (c->pkcs8 != NULL)
        OPENSSL_cleanse(c->pkcs8, c->pkcs8_len);
    free(c->pkcs8);
    c->pkcs8 = NULL;
    EVP_PKEY_free(k2pub);
    return ok ? 0 : -1;
}

/* The raw side's fixed parts: K1's OAEP context, the GCM context, the AAD. */
static int prepare_raw(inject_ctx *c, EVP_PKEY *k1)
{
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(k1, &spki);
    unsigned int dlen = 0;
    c->aad[32] = (unsigned char)(sizeof(K2_ID) - 1);
    memcpy(c->aad + 33, K2_ID, sizeof(K2_ID) - 1);
    c->aad[AAD_LEN - 1] = K2_USAGE;
    int ok = spki_len > 0 &&
             EVP_Digest(spki, (size_t)spki_len, c->aad, &dlen, EVP_sha256(), NULL) == 1 &&
             dlen == 32 && (c->oaep = EVP_PKEY_CTX_new_from_pkey(NULL, k1, NULL)) &&
             EVP_PKEY_encrypt_init(c->oaep) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(c->oaep, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(c->oaep, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(c->oaep, EVP_sha256()) == 1 &&
             (c->gcm = EVP_CIPHER_CTX_new()) != NULL;
    OPENSSL_free(spki);
    return ok ? 0 : -1;
}

int bench_cmd_inject(const bench_opts *o)
{
    static const char *const keys[] = {"prov.inject.rsa.blobs_s", "prov.inject.rsa.raw_s",
                                       "prov.inject.ec.blobs_s", "prov.inject.ec.raw_s"};
    if (o->module == NULL || o->pin == NULL) {
        fprintf(stderr, "sks-bench inject: --module and --pin are needed\n");
        return 2;
    }
    bench_p11 m;
    inject_ctx c;
    memset(&c, 0, sizeof(c));
    c.m = &m;
    const char *why = NULL;
    EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    CK_RV rv = CKR_OK;
    if (bench_p11_load(&m, o->module) != 0)
        return 2;
    if (k1 == NULL || prepare_raw(&c, k1) != 0)
        why = "libcrypto operation failed";
    else if ((rv = bench_p11_init(&m)) != CKR_OK ||
             (rv = open_issuer_token(&m, o->pin, &c.s)) != CKR_OK ||
             (rv = make_k1(&c, k1)) != CKR_OK)
        why = "the issuer token (transport = none) could not be set up";
    if (why != NULL) {
        fprintf(stderr, "sks-bench inject: %s (%s)\n", why, bench_rv_name(rv));
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            bench_result_na(keys[i], why);
    }
    int rc = why != NULL;
    if (why == NULL) {
        rc |= measure(&c, 0, k1, o->seconds) != 0;
        rc |= measure(&c, 1, k1, o->seconds) != 0;
    }
    EVP_PKEY_CTX_free(c.oaep);
    EVP_CIPHER_CTX_free(c.gcm);
    EVP_PKEY_free(k1);
    bench_p11_unload(&m);
    return rc;
}
