/*
 * test-token-crypto.c - the token's cryptographic functions through the
 * built module, as an application sees them: dlopen sks-pkcs11.so, take its
 * function list, and run it on an embedded card in a fresh state directory
 * (SKS_PKCS11_CONF names a configuration with its own state_dir).
 *
 * Every result is checked against OpenSSL directly (signatures verified
 * with the public key read from the token, ciphertexts made or opened by
 * OpenSSL, ECDH computed on the other side, the X9.63 KDF by OpenSSL's
 * X963KDF), never against values taken from the module itself.
 *
 * The keys are generated once, on a token made for them with C_InitToken
 * (the free slot's uninitialised token holds no keys); each test then runs
 * in its own process with a fresh C_Initialize and logs in to that token.
 */
#include <check.h>

#include "pkcs11/sks-pkcs11.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#ifndef SKS_MODULE_PATH
#define SKS_MODULE_PATH "src/token/.libs/sks-pkcs11.so"
#endif

#define CK(call)                                                                                   \
    do {                                                                                           \
        CK_RV rv_ = (call);                                                                        \
        ck_assert_msg(rv_ == CKR_OK, "%s -> 0x%lx", #call, (unsigned long)rv_);                    \
    } while (0)
#define CK_EQ(call, want)                                                                          \
    do {                                                                                           \
        CK_RV rv_ = (call);                                                                        \
        ck_assert_msg(rv_ == (want), "%s -> 0x%lx, want %s", #call, (unsigned long)rv_, #want);    \
    } while (0)

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static char state[256];
static void *dl;
static CK_FUNCTION_LIST_PTR p11;
static CK_SESSION_HANDLE sess;

/* The keys generated once for the whole run. */
static struct {
    CK_OBJECT_HANDLE pub, priv;
} rsa2048, p256, p384, rsa_decrypt_only;

/* ---- module set-up --------------------------------------------------------- */

static void load_module(void)
{
    const char *path = getenv("SKS_PKCS11_MODULE");
    dl = dlopen(path != NULL ? path : SKS_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(dl != NULL, "dlopen: %s", dlerror());
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    ck_assert_ptr_nonnull(get);
    CK(get(&p11));
    CK(p11->C_Initialize(NULL));
}

/* The free slot: the one whose token is not initialised. */
static CK_SLOT_ID free_slot(void)
{
    CK_SLOT_ID slots[32];
    CK_ULONG n = 32;
    CK(p11->C_GetSlotList(CK_TRUE, slots, &n));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK(p11->C_GetTokenInfo(slots[i], &ti));
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            return slots[i];
    }
    ck_abort_msg("no free slot");
    return 0;
}

/* The slot whose token has this label. */
static CK_SLOT_ID slot_by_label(const char *label)
{
    CK_SLOT_ID slots[32];
    CK_ULONG n = 32;
    CK(p11->C_GetSlotList(CK_TRUE, slots, &n));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CK(p11->C_GetTokenInfo(slots[i], &ti));
        size_t len = strlen(label);
        if (memcmp(ti.label, label, len) == 0 && (len == 32 || ti.label[len] == ' '))
            return slots[i];
    }
    ck_abort_msg("no token %s", label);
    return 0;
}

/* The token that holds the test keys, and its PINs. */
#define KEYS_TOKEN  "keys"
#define KEYS_SO_PIN "keys-so-pin"
#define KEYS_PIN    "keys-pin"

static CK_SLOT_ID keys_slot(void)
{
    return slot_by_label(KEYS_TOKEN);
}

/* A R/W session on the keys token with the user logged in (in `sess`). */
static void open_keys_session(void)
{
    CK(p11->C_OpenSession(keys_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sess));
    CK(p11->C_Login(sess, CKU_USER, (CK_UTF8CHAR_PTR)KEYS_PIN, strlen(KEYS_PIN)));
}

static void gen_pair(CK_MECHANISM_TYPE mech, CK_ULONG bits, const uint8_t *ec_params, size_t ec_len,
                     const char *label, int sign, int decrypt_or_derive, CK_OBJECT_HANDLE *pub,
                     CK_OBJECT_HANDLE *priv)
{
    CK_MECHANISM m = {mech, NULL, 0};
    CK_ATTRIBUTE pubt[] = {
        {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {mech == CKM_RSA_PKCS_KEY_PAIR_GEN ? CKA_MODULUS_BITS : CKA_EC_PARAMS,
         mech == CKM_RSA_PKCS_KEY_PAIR_GEN ? (void *)&bits : (void *)ec_params,
         mech == CKM_RSA_PKCS_KEY_PAIR_GEN ? sizeof(bits) : ec_len},
    };
    CK_BBOOL s = sign ? CK_TRUE : CK_FALSE, o = decrypt_or_derive ? CK_TRUE : CK_FALSE;
    CK_ATTRIBUTE privt[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_SIGN, &s, sizeof(s)},
        {mech == CKM_RSA_PKCS_KEY_PAIR_GEN ? CKA_DECRYPT : CKA_DERIVE, &o, sizeof(o)},
    };
    CK(p11->C_GenerateKeyPair(sess, &m, pubt, 3, privt, 3, pub, priv));
}

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22};

/* Once, in the parent: a state directory, a configuration, and the test keys. */
static void setup_once(void)
{
    char conf[300];
    snprintf(state, sizeof(state), "/tmp/test-token-crypto-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(state));
    snprintf(conf, sizeof(conf), "%s/sks-pkcs11.conf", state);
    FILE *f = fopen(conf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "# test configuration\nstate_dir = %s\nlog_level = error\n", state);
    fclose(f);
    setenv("SKS_PKCS11_CONF", conf, 1);

    load_module();
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, KEYS_TOKEN, strlen(KEYS_TOKEN));
    CK(p11->C_InitToken(free_slot(), (CK_UTF8CHAR_PTR)KEYS_SO_PIN, strlen(KEYS_SO_PIN), label));
    CK(p11->C_OpenSession(keys_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &sess));
    CK(p11->C_Login(sess, CKU_SO, (CK_UTF8CHAR_PTR)KEYS_SO_PIN, strlen(KEYS_SO_PIN)));
    CK(p11->C_InitPIN(sess, (CK_UTF8CHAR_PTR)KEYS_PIN, strlen(KEYS_PIN)));
    CK(p11->C_CloseSession(sess));
    open_keys_session();
    gen_pair(CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, NULL, 0, "rsa2048", 1, 1, &rsa2048.pub,
             &rsa2048.priv);
    gen_pair(CKM_EC_KEY_PAIR_GEN, 0, oid_p256, sizeof(oid_p256), "p256", 1, 1, &p256.pub,
             &p256.priv);
    gen_pair(CKM_EC_KEY_PAIR_GEN, 0, oid_p384, sizeof(oid_p384), "p384", 1, 1, &p384.pub,
             &p384.priv);
    gen_pair(CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, NULL, 0, "decrypt only", 0, 1, &rsa_decrypt_only.pub,
             &rsa_decrypt_only.priv);
    CK(p11->C_CloseSession(sess));
    CK(p11->C_Finalize(NULL));
}

static void teardown_once(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", state);
    ck_assert_int_eq(system(cmd), 0);
}

/* Each test (its own process): initialise again, open a session on the keys token, log in. */
static void setup(void)
{
    if (p11 == NULL)
        load_module();
    else
        CK(p11->C_Initialize(NULL));
    open_keys_session();
}

static void teardown(void)
{
    CK(p11->C_CloseSession(sess));
    CK(p11->C_Finalize(NULL));
}

/* ---- helpers ------------------------------------------------------------------ */

/* The OpenSSL public key of a public key object (CKA_PUBLIC_KEY_INFO). */
static EVP_PKEY *public_key(CK_OBJECT_HANDLE h)
{
    uint8_t spki[2048];
    CK_ATTRIBUTE a = {CKA_PUBLIC_KEY_INFO, spki, sizeof(spki)};
    CK(p11->C_GetAttributeValue(sess, h, &a, 1));
    const unsigned char *p = spki;
    EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)a.ulValueLen);
    ck_assert_ptr_nonnull(key);
    return key;
}

static const EVP_MD *md_of(CK_MECHANISM_TYPE hash)
{
    switch (hash) {
    case CKM_SHA_1:
        return EVP_sha1();
    case CKM_SHA224:
        return EVP_sha224();
    case CKM_SHA256:
        return EVP_sha256();
    case CKM_SHA384:
        return EVP_sha384();
    default:
        return EVP_sha512();
    }
}

static CK_ULONG mgf_of(CK_MECHANISM_TYPE hash)
{
    switch (hash) {
    case CKM_SHA_1:
        return CKG_MGF1_SHA1;
    case CKM_SHA224:
        return CKG_MGF1_SHA224;
    case CKM_SHA256:
        return CKG_MGF1_SHA256;
    case CKM_SHA384:
        return CKG_MGF1_SHA384;
    default:
        return CKG_MGF1_SHA512;
    }
}

static size_t hash_data(CK_MECHANISM_TYPE hash, const uint8_t *data, size_t n, uint8_t *out)
{
    unsigned int len = 0;
    ck_assert_int_eq(EVP_Digest(data, n, out, &len, md_of(hash), NULL), 1);
    return len;
}

/* A DigestInfo for CKM_RSA_PKCS: the DER prefix of RFC 8017 9.2 note 1, then the hash. */
static size_t digest_info_sha256(const uint8_t *data, size_t n, uint8_t *out)
{
    static const uint8_t prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                     0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
    memcpy(out, prefix, sizeof(prefix));
    return sizeof(prefix) + hash_data(CKM_SHA256, data, n, out + sizeof(prefix));
}

/* Verify with OpenSSL: RSA PKCS#1 / PSS over `tbs` (a hash unless md == NULL), or ECDSA r|s. */
static int openssl_verify(EVP_PKEY *key, int pss, const EVP_MD *md, int salt, const uint8_t *tbs,
                          size_t tbs_len, const uint8_t *sig, size_t siglen)
{
    uint8_t der[256];
    if (EVP_PKEY_is_a(key, "EC")) {
        size_t h = siglen / 2;
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)h, NULL), BN_bin2bn(sig + h, (int)h, NULL));
        unsigned char *q = der;
        siglen = (size_t)i2d_ECDSA_SIG(es, &q);
        ECDSA_SIG_free(es);
        sig = der;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    int ok = EVP_PKEY_verify_init(ctx) == 1;
    if (ok && EVP_PKEY_is_a(key, "RSA")) {
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) ==
                 1 &&
             (md == NULL || EVP_PKEY_CTX_set_signature_md(ctx, md) == 1) &&
             (!pss || EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, salt) == 1);
    }
    ok = ok && EVP_PKEY_verify(ctx, sig, siglen, tbs, tbs_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* Sign with the two-call convention; returns the signature length. */
static CK_ULONG sign(CK_MECHANISM *m, CK_OBJECT_HANDLE key, const uint8_t *data, size_t n,
                     uint8_t *sig)
{
    CK_ULONG len = 0;
    CK(p11->C_SignInit(sess, m, key));
    CK(p11->C_Sign(sess, (CK_BYTE_PTR)data, n, NULL, &len));
    ck_assert_uint_gt(len, 0);
    CK(p11->C_Sign(sess, (CK_BYTE_PTR)data, n, sig, &len));
    return len;
}

static void verify_ok(CK_MECHANISM *m, CK_OBJECT_HANDLE key, const uint8_t *data, size_t n,
                      const uint8_t *sig, CK_ULONG len)
{
    CK(p11->C_VerifyInit(sess, m, key));
    CK(p11->C_Verify(sess, (CK_BYTE_PTR)data, n, (CK_BYTE_PTR)sig, len));
}

static CK_OBJECT_HANDLE secret_key(CK_MECHANISM_TYPE gen, CK_ULONG len)
{
    CK_MECHANISM m = {gen, NULL, 0};
    CK_ATTRIBUTE t[] = {
        {CKA_VALUE_LEN, &len, sizeof(len)},   {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_ENCRYPT, &yes, sizeof(yes)},
        {CKA_DECRYPT, &yes, sizeof(yes)},     {CKA_WRAP, &yes, sizeof(yes)},
        {CKA_UNWRAP, &yes, sizeof(yes)},
    };
    CK_OBJECT_HANDLE h;
    CK(p11->C_GenerateKey(sess, &m, t, 7, &h));
    return h;
}

static size_t key_value(CK_OBJECT_HANDLE h, uint8_t *out, size_t cap)
{
    CK_ATTRIBUTE a = {CKA_VALUE, out, cap};
    CK(p11->C_GetAttributeValue(sess, h, &a, 1));
    return a.ulValueLen;
}

static const uint8_t message[] = "The quick brown fox jumps over the lazy dog, twice over.";

/* ---- mechanisms ------------------------------------------------------------------ */

START_TEST(mechanism_list_and_info)
{
    static const CK_MECHANISM_TYPE want[] = {
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        CKM_EC_KEY_PAIR_GEN,
        CKM_RSA_PKCS,
        CKM_RSA_PKCS_PSS,
        CKM_RSA_PKCS_OAEP,
        CKM_SHA1_RSA_PKCS,
        CKM_SHA224_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_SHA384_RSA_PKCS,
        CKM_SHA512_RSA_PKCS,
        CKM_SHA1_RSA_PKCS_PSS,
        CKM_SHA224_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_SHA384_RSA_PKCS_PSS,
        CKM_SHA512_RSA_PKCS_PSS,
        CKM_ECDSA,
        CKM_ECDSA_SHA1,
        CKM_ECDSA_SHA224,
        CKM_ECDSA_SHA256,
        CKM_ECDSA_SHA384,
        CKM_ECDSA_SHA512,
        CKM_ECDH1_DERIVE,
        CKM_SHA_1,
        CKM_SHA224,
        CKM_SHA256,
        CKM_SHA384,
        CKM_SHA512,
        CKM_AES_KEY_GEN,
        CKM_AES_ECB,
        CKM_AES_CBC,
        CKM_AES_CBC_PAD,
        CKM_AES_GCM,
        CKM_AES_KEY_WRAP,
        CKM_AES_KEY_WRAP_PAD,
        CKM_GENERIC_SECRET_KEY_GEN,
        CKM_VENDOR_SKS_SESSION,
        CKM_VENDOR_SKS_PUK_POLICY,
        CKM_VENDOR_SKS_PIN_POLICY,
        CKM_VENDOR_SKS_KEY_PAIR,
        CKM_VENDOR_SKS_CERTIFICATE_PATH,
        CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY,
        CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY,
        CKM_VENDOR_SKS_CLOSE,
        CKM_VENDOR_SKS_POST_DELETE_KEY,
        CKM_VENDOR_SKS_POST_UNLOCK_KEY,
        CKM_VENDOR_SKS_POST_UPDATE_KEY,
        CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP,
        CKM_VENDOR_SKS_SESSION_KEY_ECDH,
        CKM_VENDOR_SKS_INJECT_KEY,
        CKM_VENDOR_SKS_DKEK_WRAP,
    };
    const size_t nwant = sizeof(want) / sizeof(want[0]);
    CK_SLOT_ID slot = keys_slot();
    CK_MECHANISM_TYPE list[64];
    CK_ULONG n = 0;
    CK(p11->C_GetMechanismList(slot, NULL, &n));
    ck_assert_uint_eq(n, nwant);
    n = 1;
    CK_EQ(p11->C_GetMechanismList(slot, list, &n), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, nwant);
    n = 64;
    CK(p11->C_GetMechanismList(slot, list, &n));
    for (size_t i = 0; i < nwant; i++) {
        int found = 0;
        for (CK_ULONG j = 0; j < n; j++)
            found |= list[j] == want[i];
        ck_assert_msg(found, "mechanism 0x%lx missing", (unsigned long)want[i]);
    }
    /* No raw RSA: the card does not allow it. */
    for (CK_ULONG j = 0; j < n; j++)
        ck_assert_uint_ne(list[j], CKM_RSA_X_509);

    CK_MECHANISM_INFO info;
    CK(p11->C_GetMechanismInfo(slot, CKM_RSA_PKCS, &info));
    ck_assert_uint_eq(info.ulMinKeySize, 2048);
    ck_assert_uint_eq(info.ulMaxKeySize, 4096);
    ck_assert((info.flags & (CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT)) ==
              (CKF_HW | CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT));
    CK(p11->C_GetMechanismInfo(slot, CKM_ECDSA_SHA256, &info));
    ck_assert_uint_eq(info.ulMinKeySize, 256);
    ck_assert_uint_eq(info.ulMaxKeySize, 384);
    ck_assert(
        (info.flags & (CKF_HW | CKF_SIGN | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)) ==
        (CKF_HW | CKF_SIGN | CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS));
    ck_assert(!(info.flags & CKF_DECRYPT));
    CK(p11->C_GetMechanismInfo(slot, CKM_ECDH1_DERIVE, &info));
    ck_assert(info.flags & CKF_DERIVE);
    ck_assert(info.flags & CKF_HW);
    CK(p11->C_GetMechanismInfo(slot, CKM_EC_KEY_PAIR_GEN, &info));
    ck_assert(info.flags & CKF_GENERATE_KEY_PAIR);
    CK(p11->C_GetMechanismInfo(slot, CKM_SHA256, &info));
    ck_assert(info.flags & CKF_DIGEST);
    ck_assert(!(info.flags & CKF_HW));
    CK(p11->C_GetMechanismInfo(slot, CKM_AES_GCM, &info));
    ck_assert(!(info.flags & CKF_HW));
    ck_assert_uint_eq(info.ulMinKeySize, 16);
    ck_assert_uint_eq(info.ulMaxKeySize, 32);
    CK_EQ(p11->C_GetMechanismInfo(slot, CKM_RSA_X_509, &info), CKR_MECHANISM_INVALID);
    CK_EQ(p11->C_GetMechanismInfo(slot, CKM_MD5, &info), CKR_MECHANISM_INVALID);

    /* The issuer token's own mechanisms are neither listed nor usable on a card token. */
    static const CK_MECHANISM_TYPE issuer_only[] = {
        CKM_VENDOR_SKS_SESSION_ACCEPT,     CKM_VENDOR_SKS_VERIFY_KEY_PAIR,
        CKM_VENDOR_SKS_VERIFY_CLOSE,       CKM_VENDOR_SKS_DECLARE_KEY,
        CKM_VENDOR_SKS_DECLARE_PUK_POLICY, CKM_VENDOR_SKS_DECLARE_PIN_POLICY,
    };
    CK_SESSION_HANDLE rw;
    CK(p11->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw));
    for (size_t i = 0; i < sizeof(issuer_only) / sizeof(issuer_only[0]); i++) {
        for (CK_ULONG j = 0; j < n; j++)
            ck_assert_uint_ne(list[j], issuer_only[i]);
        CK_EQ(p11->C_GetMechanismInfo(slot, issuer_only[i], &info), CKR_MECHANISM_INVALID);
        CK_SKS_ISSUER_CALL_PARAMS call;
        memset(&call, 0, sizeof(call));
        CK_MECHANISM m = {issuer_only[i], &call, sizeof(call)};
        CK_OBJECT_HANDLE out;
        CK_EQ(p11->C_DeriveKey(rw, &m, 1, NULL, 0, &out), CKR_MECHANISM_INVALID);
    }
    CK(p11->C_CloseSession(rw));
}
END_TEST

/* ---- RSA signatures ------------------------------------------------------------------ */

static const CK_MECHANISM_TYPE hashes[] = {CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384,
                                           CKM_SHA512};

START_TEST(rsa_sign_every_mechanism)
{
    static const CK_MECHANISM_TYPE pkcs[] = {CKM_SHA1_RSA_PKCS, CKM_SHA224_RSA_PKCS,
                                             CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS,
                                             CKM_SHA512_RSA_PKCS};
    static const CK_MECHANISM_TYPE pss[] = {CKM_SHA1_RSA_PKCS_PSS, CKM_SHA224_RSA_PKCS_PSS,
                                            CKM_SHA256_RSA_PKCS_PSS, CKM_SHA384_RSA_PKCS_PSS,
                                            CKM_SHA512_RSA_PKCS_PSS};
    EVP_PKEY *key = public_key(rsa2048.pub);
    uint8_t sig[512], hash[64];
    for (size_t i = 0; i < 5; i++) {
        size_t hlen = hash_data(hashes[i], message, sizeof(message), hash);
        /* CKM_SHA*_RSA_PKCS: the module hashes, the card signs. */
        CK_MECHANISM m = {pkcs[i], NULL, 0};
        CK_ULONG len = sign(&m, rsa2048.priv, message, sizeof(message), sig);
        ck_assert_uint_eq(len, 256);
        ck_assert(openssl_verify(key, 0, md_of(hashes[i]), 0, hash, hlen, sig, len));
        verify_ok(&m, rsa2048.pub, message, sizeof(message), sig, len);

        /* CKM_SHA*_RSA_PKCS_PSS with a salt as long as the hash. */
        CK_RSA_PKCS_PSS_PARAMS pp = {hashes[i], mgf_of(hashes[i]), hlen};
        CK_MECHANISM mp = {pss[i], &pp, sizeof(pp)};
        len = sign(&mp, rsa2048.priv, message, sizeof(message), sig);
        ck_assert(openssl_verify(key, 1, md_of(hashes[i]), (int)hlen, hash, hlen, sig, len));
        verify_ok(&mp, rsa2048.pub, message, sizeof(message), sig, len);

        /* CKM_RSA_PKCS_PSS over the hash, salt 0. */
        CK_RSA_PKCS_PSS_PARAMS p0 = {hashes[i], mgf_of(hashes[i]), 0};
        CK_MECHANISM m0 = {CKM_RSA_PKCS_PSS, &p0, sizeof(p0)};
        len = sign(&m0, rsa2048.priv, hash, hlen, sig);
        ck_assert(openssl_verify(key, 1, md_of(hashes[i]), 0, hash, hlen, sig, len));
        verify_ok(&m0, rsa2048.pub, hash, hlen, sig, len);
    }
    /* CKM_RSA_PKCS over a DigestInfo made here. */
    uint8_t di[64];
    size_t dilen = digest_info_sha256(message, sizeof(message), di);
    CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
    CK_ULONG len = sign(&m, rsa2048.priv, di, dilen, sig);
    hash_data(CKM_SHA256, message, sizeof(message), hash);
    ck_assert(openssl_verify(key, 0, EVP_sha256(), 0, hash, 32, sig, len));
    verify_ok(&m, rsa2048.pub, di, dilen, sig, len);
    EVP_PKEY_free(key);
}
END_TEST

START_TEST(ecdsa_every_mechanism)
{
    static const CK_MECHANISM_TYPE ecdsa[] = {CKM_ECDSA_SHA1, CKM_ECDSA_SHA224, CKM_ECDSA_SHA256,
                                              CKM_ECDSA_SHA384, CKM_ECDSA_SHA512};
    const struct {
        CK_OBJECT_HANDLE pub, priv;
        CK_ULONG siglen;
    } keys[] = {{p256.pub, p256.priv, 64}, {p384.pub, p384.priv, 96}};
    uint8_t sig[256], hash[64];
    for (size_t k = 0; k < 2; k++) {
        EVP_PKEY *key = public_key(keys[k].pub);
        for (size_t i = 0; i < 5; i++) {
            size_t hlen = hash_data(hashes[i], message, sizeof(message), hash);
            CK_MECHANISM m = {ecdsa[i], NULL, 0};
            CK_ULONG len = sign(&m, keys[k].priv, message, sizeof(message), sig);
            ck_assert_uint_eq(len, keys[k].siglen);
            ck_assert(openssl_verify(key, 0, NULL, 0, hash, hlen, sig, len));
            verify_ok(&m, keys[k].pub, message, sizeof(message), sig, len);
            /* CKM_ECDSA over the same hash. */
            CK_MECHANISM raw = {CKM_ECDSA, NULL, 0};
            len = sign(&raw, keys[k].priv, hash, hlen, sig);
            ck_assert_uint_eq(len, keys[k].siglen);
            ck_assert(openssl_verify(key, 0, NULL, 0, hash, hlen, sig, len));
            verify_ok(&raw, keys[k].pub, hash, hlen, sig, len);
        }
        EVP_PKEY_free(key);
    }
}
END_TEST

START_TEST(multi_part_equals_single_part)
{
    /* PKCS#1 v1.5 signatures are deterministic: both ways give the same bytes. */
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    uint8_t one[256], two[256];
    CK_ULONG len1 = sign(&m, rsa2048.priv, message, sizeof(message), one);
    CK_ULONG len2 = sizeof(two);
    CK(p11->C_SignInit(sess, &m, rsa2048.priv));
    CK(p11->C_SignUpdate(sess, (CK_BYTE_PTR)message, 10));
    CK(p11->C_SignUpdate(sess, NULL, 0));
    CK(p11->C_SignUpdate(sess, (CK_BYTE_PTR)message + 10, sizeof(message) - 10));
    CK(p11->C_SignFinal(sess, two, &len2));
    ck_assert_uint_eq(len1, len2);
    ck_assert_mem_eq(one, two, len1);

    /* Multi-part verification of both, and of an ECDSA signature. */
    CK(p11->C_VerifyInit(sess, &m, rsa2048.pub));
    CK(p11->C_VerifyUpdate(sess, (CK_BYTE_PTR)message, 5));
    CK(p11->C_VerifyUpdate(sess, (CK_BYTE_PTR)message + 5, sizeof(message) - 5));
    CK(p11->C_VerifyFinal(sess, two, len2));
    CK_MECHANISM e = {CKM_ECDSA_SHA384, NULL, 0};
    CK(p11->C_SignInit(sess, &e, p256.priv));
    CK(p11->C_SignUpdate(sess, (CK_BYTE_PTR)message, 3));
    CK(p11->C_SignUpdate(sess, (CK_BYTE_PTR)message + 3, sizeof(message) - 3));
    len2 = sizeof(two);
    CK(p11->C_SignFinal(sess, two, &len2));
    verify_ok(&e, p256.pub, message, sizeof(message), two, len2);
    /* Single-part-only mechanisms accept Update too (collected until Final). */
    uint8_t hash[32];
    hash_data(CKM_SHA256, message, sizeof(message), hash);
    CK_MECHANISM raw = {CKM_ECDSA, NULL, 0};
    CK(p11->C_SignInit(sess, &raw, p256.priv));
    CK(p11->C_SignUpdate(sess, hash, 16));
    CK(p11->C_SignUpdate(sess, hash + 16, 16));
    len2 = sizeof(two);
    CK(p11->C_SignFinal(sess, two, &len2));
    verify_ok(&raw, p256.pub, hash, 32, two, len2);
}
END_TEST

START_TEST(two_call_convention)
{
    CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
    uint8_t sig[256];
    CK_ULONG len = 0;
    CK(p11->C_SignInit(sess, &m, rsa2048.priv));
    CK(p11->C_Sign(sess, (CK_BYTE_PTR)message, sizeof(message), NULL, &len));
    ck_assert_uint_eq(len, 256);
    len = 255;
    CK_EQ(p11->C_Sign(sess, (CK_BYTE_PTR)message, sizeof(message), sig, &len),
          CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 256);
    /* Still active: a second Init is refused, the real call works. */
    CK_EQ(p11->C_SignInit(sess, &m, rsa2048.priv), CKR_OPERATION_ACTIVE);
    CK(p11->C_Sign(sess, (CK_BYTE_PTR)message, sizeof(message), sig, &len));
    CK_EQ(p11->C_Sign(sess, (CK_BYTE_PTR)message, sizeof(message), sig, &len),
          CKR_OPERATION_NOT_INITIALIZED);

    /* SignFinal and digests follow the same rule. */
    CK(p11->C_SignInit(sess, &m, rsa2048.priv));
    CK(p11->C_SignUpdate(sess, (CK_BYTE_PTR)message, sizeof(message)));
    len = 0;
    CK(p11->C_SignFinal(sess, NULL, &len));
    ck_assert_uint_eq(len, 256);
    len = 1;
    CK_EQ(p11->C_SignFinal(sess, sig, &len), CKR_BUFFER_TOO_SMALL);
    len = sizeof(sig);
    CK(p11->C_SignFinal(sess, sig, &len));
    verify_ok(&m, rsa2048.pub, message, sizeof(message), sig, len);

    CK_MECHANISM d = {CKM_SHA384, NULL, 0};
    uint8_t out[48], want[48];
    CK(p11->C_DigestInit(sess, &d));
    len = 0;
    CK(p11->C_Digest(sess, (CK_BYTE_PTR)message, sizeof(message), NULL, &len));
    ck_assert_uint_eq(len, 48);
    len = 47;
    CK_EQ(p11->C_Digest(sess, (CK_BYTE_PTR)message, sizeof(message), out, &len),
          CKR_BUFFER_TOO_SMALL);
    len = 48;
    CK(p11->C_Digest(sess, (CK_BYTE_PTR)message, sizeof(message), out, &len));
    hash_data(CKM_SHA384, message, sizeof(message), want);
    ck_assert_mem_eq(out, want, 48);
}
END_TEST

START_TEST(sign_errors)
{
    uint8_t sig[512];
    CK_ULONG len = sizeof(sig);
    CK_MECHANISM rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_MECHANISM ec = {CKM_ECDSA_SHA256, NULL, 0};

    CK_EQ(p11->C_Sign(sess, (CK_BYTE_PTR)message, 4, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
    CK_EQ(p11->C_SignFinal(sess, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
    CK_EQ(p11->C_VerifyFinal(sess, sig, 4), CKR_OPERATION_NOT_INITIALIZED);
    /* Wrong key type for the mechanism. */
    CK_EQ(p11->C_SignInit(sess, &ec, rsa2048.priv), CKR_KEY_TYPE_INCONSISTENT);
    CK_EQ(p11->C_SignInit(sess, &rsa, p256.priv), CKR_KEY_TYPE_INCONSISTENT);
    CK_OBJECT_HANDLE aes = secret_key(CKM_AES_KEY_GEN, 16);
    CK_EQ(p11->C_SignInit(sess, &rsa, aes), CKR_KEY_TYPE_INCONSISTENT);
    /* A key without CKA_SIGN, and a public key. */
    CK_EQ(p11->C_SignInit(sess, &rsa, rsa_decrypt_only.priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_EQ(p11->C_SignInit(sess, &rsa, rsa2048.pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_EQ(p11->C_SignInit(sess, &rsa, (CK_OBJECT_HANDLE)0x7777), CKR_KEY_HANDLE_INVALID);
    /* Unknown mechanisms, and mechanisms that do not sign. */
    CK_MECHANISM md5 = {CKM_MD5_RSA_PKCS, NULL, 0};
    CK_EQ(p11->C_SignInit(sess, &md5, rsa2048.priv), CKR_MECHANISM_INVALID);
    CK_MECHANISM oaep = {CKM_SHA256, NULL, 0};
    CK_EQ(p11->C_SignInit(sess, &oaep, rsa2048.priv), CKR_MECHANISM_INVALID);
    /* Bad PSS parameters: MGF of another hash, a hash not of the mechanism, no parameter. */
    CK_RSA_PKCS_PSS_PARAMS pp = {CKM_SHA256, CKG_MGF1_SHA1, 32};
    CK_MECHANISM pss = {CKM_SHA256_RSA_PKCS_PSS, &pp, sizeof(pp)};
    CK_EQ(p11->C_SignInit(sess, &pss, rsa2048.priv), CKR_MECHANISM_PARAM_INVALID);
    pp = (CK_RSA_PKCS_PSS_PARAMS){CKM_SHA384, CKG_MGF1_SHA384, 32};
    CK_EQ(p11->C_SignInit(sess, &pss, rsa2048.priv), CKR_MECHANISM_PARAM_INVALID);
    pss.pParameter = NULL;
    pss.ulParameterLen = 0;
    CK_EQ(p11->C_SignInit(sess, &pss, rsa2048.priv), CKR_MECHANISM_PARAM_INVALID);
    /* A salt that does not fit a 2048-bit key (256 - 64 - 2 = 190 is the most for SHA-512). */
    pp = (CK_RSA_PKCS_PSS_PARAMS){CKM_SHA512, CKG_MGF1_SHA512, 191};
    CK_MECHANISM pss512 = {CKM_SHA512_RSA_PKCS_PSS, &pp, sizeof(pp)};
    CK_EQ(p11->C_SignInit(sess, &pss512, rsa2048.priv), CKR_MECHANISM_PARAM_INVALID);
    CK_MECHANISM with_param = {CKM_SHA256_RSA_PKCS, &pp, sizeof(pp)};
    CK_EQ(p11->C_SignInit(sess, &with_param, rsa2048.priv), CKR_MECHANISM_PARAM_INVALID);

    /* An active operation refuses a second Init; an error ends it. */
    CK(p11->C_SignInit(sess, &rsa, rsa2048.priv));
    CK_EQ(p11->C_SignInit(sess, &rsa, rsa2048.priv), CKR_OPERATION_ACTIVE);
    CK_EQ(p11->C_Sign(sess, NULL, 4, sig, &len), CKR_ARGUMENTS_BAD);
    CK_EQ(p11->C_Sign(sess, (CK_BYTE_PTR)message, 4, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
    /* Data lengths: CKM_RSA_PKCS takes at most k - 11 bytes; PSS exactly a hash. */
    CK_MECHANISM raw = {CKM_RSA_PKCS, NULL, 0};
    uint8_t big[246] = {1};
    CK(p11->C_SignInit(sess, &raw, rsa2048.priv));
    len = sizeof(sig);
    CK_EQ(p11->C_Sign(sess, big, sizeof(big), sig, &len), CKR_DATA_LEN_RANGE);
    CK_EQ(p11->C_Sign(sess, big, 245, sig, &len), CKR_OPERATION_NOT_INITIALIZED);
    CK(p11->C_SignInit(sess, &raw, rsa2048.priv));
    len = sizeof(sig);
    CK(p11->C_Sign(sess, big, 245, sig, &len));
    pp = (CK_RSA_PKCS_PSS_PARAMS){CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM rawpss = {CKM_RSA_PKCS_PSS, &pp, sizeof(pp)};
    CK(p11->C_SignInit(sess, &rawpss, rsa2048.priv));
    len = sizeof(sig);
    CK_EQ(p11->C_Sign(sess, big, 31, sig, &len), CKR_DATA_LEN_RANGE);

    /* Verification failures. */
    len = sign(&rsa, rsa2048.priv, message, sizeof(message), sig);
    sig[10] ^= 1;
    CK(p11->C_VerifyInit(sess, &rsa, rsa2048.pub));
    CK_EQ(p11->C_Verify(sess, (CK_BYTE_PTR)message, sizeof(message), sig, len),
          CKR_SIGNATURE_INVALID);
    CK(p11->C_VerifyInit(sess, &rsa, rsa2048.pub));
    CK_EQ(p11->C_Verify(sess, (CK_BYTE_PTR)message, sizeof(message), sig, len - 1),
          CKR_SIGNATURE_LEN_RANGE);
    CK_EQ(p11->C_VerifyInit(sess, &rsa, rsa2048.priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_EQ(p11->C_VerifyInit(sess, &ec, rsa2048.pub), CKR_KEY_TYPE_INCONSISTENT);
    len = sign(&ec, p256.priv, message, sizeof(message), sig);
    CK(p11->C_VerifyInit(sess, &ec, p256.pub));
    CK_EQ(p11->C_Verify(sess, (CK_BYTE_PTR)message, sizeof(message) - 1, sig, len),
          CKR_SIGNATURE_INVALID);
}
END_TEST

START_TEST(not_supported_functions)
{
    CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
    uint8_t buf[16];
    CK_ULONG len = sizeof(buf);
    CK_EQ(p11->C_SignRecoverInit(sess, &m, rsa2048.priv), CKR_FUNCTION_NOT_SUPPORTED);
    CK_EQ(p11->C_SignRecover(sess, buf, 4, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    CK_EQ(p11->C_VerifyRecoverInit(sess, &m, rsa2048.pub), CKR_FUNCTION_NOT_SUPPORTED);
    CK_EQ(p11->C_VerifyRecover(sess, buf, 4, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    CK_EQ(p11->C_DigestEncryptUpdate(sess, buf, 4, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    CK_EQ(p11->C_DecryptDigestUpdate(sess, buf, 4, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    CK_EQ(p11->C_SignEncryptUpdate(sess, buf, 4, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    CK_EQ(p11->C_DecryptVerifyUpdate(sess, buf, 4, buf, &len), CKR_FUNCTION_NOT_SUPPORTED);
    CK_EQ(p11->C_SignRecoverInit(0x7777, &m, rsa2048.priv), CKR_SESSION_HANDLE_INVALID);
    CK_EQ(p11->C_SeedRandom(sess, buf, 4), CKR_RANDOM_SEED_NOT_SUPPORTED);
    uint8_t r1[64] = {0}, r2[64] = {0};
    CK(p11->C_GenerateRandom(sess, r1, sizeof(r1)));
    CK(p11->C_GenerateRandom(sess, r2, sizeof(r2)));
    ck_assert(memcmp(r1, r2, sizeof(r1)) != 0);
    CK_EQ(p11->C_GenerateRandom(sess, NULL, 4), CKR_ARGUMENTS_BAD);
}
END_TEST

/* ---- RSA encryption and decryption ----------------------------------------------- */

/* Encrypt with OpenSSL (OAEP when md != NULL). */
static size_t openssl_encrypt(EVP_PKEY *key, const EVP_MD *md, const char *label, const uint8_t *pt,
                              size_t n, uint8_t *ct)
{
    size_t len = 512;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    ck_assert_int_eq(EVP_PKEY_encrypt_init(ctx), 1);
    if (md == NULL) {
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
    } else {
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, md), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
        if (label != NULL) {
            void *l = OPENSSL_strdup(label);
            ck_assert_int_eq(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, (int)strlen(label)), 1);
        }
    }
    ck_assert_int_eq(EVP_PKEY_encrypt(ctx, ct, &len, pt, n), 1);
    EVP_PKEY_CTX_free(ctx);
    return len;
}

START_TEST(rsa_decrypt_openssl_ciphertexts)
{
    EVP_PKEY *key = public_key(rsa2048.pub);
    uint8_t ct[512], pt[512];
    const char *label = "sks label";
    const struct {
        CK_MECHANISM_TYPE hash; /* 0: PKCS#1 v1.5 */
        const char *label;
    } cases[] = {{0, NULL},
                 {CKM_SHA_1, NULL},
                 {CKM_SHA_1, "sks label"},
                 {CKM_SHA256, NULL},
                 {CKM_SHA256, "sks label"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t ctlen = openssl_encrypt(key, cases[i].hash ? md_of(cases[i].hash) : NULL,
                                       cases[i].label, message, 40, ct);
        CK_RSA_PKCS_OAEP_PARAMS op = {cases[i].hash, mgf_of(cases[i].hash), CKZ_DATA_SPECIFIED,
                                      (void *)cases[i].label,
                                      cases[i].label ? strlen(cases[i].label) : 0};
        CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};
        if (cases[i].hash) {
            m.mechanism = CKM_RSA_PKCS_OAEP;
            m.pParameter = &op;
            m.ulParameterLen = sizeof(op);
        }
        CK_ULONG len = 0;
        CK(p11->C_DecryptInit(sess, &m, rsa2048.priv));
        CK(p11->C_Decrypt(sess, ct, ctlen, NULL, &len));
        ck_assert_uint_ge(len, 40);
        CK(p11->C_Decrypt(sess, ct, ctlen, pt, &len));
        ck_assert_uint_eq(len, 40);
        ck_assert_mem_eq(pt, message, 40);
    }
    /* A wrong label: the ciphertext does not decrypt. */
    size_t ctlen = openssl_encrypt(key, EVP_sha256(), label, message, 40, ct);
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, "other", 5};
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    CK_ULONG len = sizeof(pt);
    CK(p11->C_DecryptInit(sess, &m, rsa2048.priv));
    CK_EQ(p11->C_Decrypt(sess, ct, ctlen, pt, &len), CKR_ENCRYPTED_DATA_INVALID);
    /* A small buffer that holds the plaintext works; one that does not keeps the result. */
    op.pSourceData = (void *)label;
    op.ulSourceDataLen = strlen(label);
    CK(p11->C_DecryptInit(sess, &m, rsa2048.priv));
    len = 10;
    CK_EQ(p11->C_Decrypt(sess, ct, ctlen, pt, &len), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 40);
    CK(p11->C_Decrypt(sess, ct, ctlen, pt, &len));
    ck_assert_uint_eq(len, 40);
    ck_assert_mem_eq(pt, message, 40);
    CK(p11->C_DecryptInit(sess, &m, rsa2048.priv));
    len = 40;
    CK(p11->C_Decrypt(sess, ct, ctlen, pt, &len));
    ck_assert_uint_eq(len, 40);
    /* Wrong lengths, bad parameters, wrong keys. */
    CK(p11->C_DecryptInit(sess, &m, rsa2048.priv));
    len = sizeof(pt);
    CK_EQ(p11->C_Decrypt(sess, ct, ctlen - 1, pt, &len), CKR_ENCRYPTED_DATA_LEN_RANGE);
    op.source = 7;
    CK_EQ(p11->C_DecryptInit(sess, &m, rsa2048.priv), CKR_MECHANISM_PARAM_INVALID);
    op.source = CKZ_DATA_SPECIFIED;
    op.mgf = 0x99;
    CK_EQ(p11->C_DecryptInit(sess, &m, rsa2048.priv), CKR_MECHANISM_PARAM_INVALID);
    op.mgf = CKG_MGF1_SHA256;
    CK_EQ(p11->C_DecryptInit(sess, &m, p256.priv), CKR_KEY_TYPE_INCONSISTENT);
    CK_EQ(p11->C_DecryptInit(sess, &m, rsa2048.pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
    /* The decrypt-only key decrypts. */
    EVP_PKEY *other = public_key(rsa_decrypt_only.pub);
    ctlen = openssl_encrypt(other, EVP_sha256(), NULL, message, 16, ct);
    op.pSourceData = NULL;
    op.ulSourceDataLen = 0;
    CK(p11->C_DecryptInit(sess, &m, rsa_decrypt_only.priv));
    len = sizeof(pt);
    CK(p11->C_Decrypt(sess, ct, ctlen, pt, &len));
    ck_assert_uint_eq(len, 16);
    ck_assert_mem_eq(pt, message, 16);
    EVP_PKEY_free(other);
    EVP_PKEY_free(key);
}
END_TEST

START_TEST(rsa_encrypt_decrypt_round_trip)
{
    uint8_t ct[256], pt[256];
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, "L", 1};
    CK_MECHANISM mechs[] = {{CKM_RSA_PKCS, NULL, 0}, {CKM_RSA_PKCS_OAEP, &op, sizeof(op)}};
    for (size_t i = 0; i < 2; i++) {
        CK_ULONG len = 0;
        CK(p11->C_EncryptInit(sess, &mechs[i], rsa2048.pub));
        CK(p11->C_Encrypt(sess, (CK_BYTE_PTR)message, 32, NULL, &len));
        ck_assert_uint_eq(len, 256);
        CK(p11->C_Encrypt(sess, (CK_BYTE_PTR)message, 32, ct, &len));
        ck_assert_uint_eq(len, 256);
        CK_ULONG plen = sizeof(pt);
        CK(p11->C_DecryptInit(sess, &mechs[i], rsa2048.priv));
        CK(p11->C_Decrypt(sess, ct, len, pt, &plen));
        ck_assert_uint_eq(plen, 32);
        ck_assert_mem_eq(pt, message, 32);
        /* Multi-part: collected, done in Final. */
        CK(p11->C_EncryptInit(sess, &mechs[i], rsa2048.pub));
        CK_ULONG part = 0;
        CK(p11->C_EncryptUpdate(sess, (CK_BYTE_PTR)message, 16, ct, &part));
        ck_assert_uint_eq(part, 0);
        CK(p11->C_EncryptUpdate(sess, (CK_BYTE_PTR)message + 16, 16, ct, &part));
        len = sizeof(ct);
        CK(p11->C_EncryptFinal(sess, ct, &len));
        CK(p11->C_DecryptInit(sess, &mechs[i], rsa2048.priv));
        part = sizeof(pt);
        CK(p11->C_DecryptUpdate(sess, ct, 100, pt, &part));
        CK(p11->C_DecryptUpdate(sess, ct + 100, len - 100, pt, &part));
        plen = sizeof(pt);
        CK(p11->C_DecryptFinal(sess, pt, &plen));
        ck_assert_uint_eq(plen, 32);
        ck_assert_mem_eq(pt, message, 32);
    }
    /* Too much data for the padding: 256 - 2 * 32 - 2 = 190 bytes at most for OAEP SHA-256. */
    uint8_t big[191] = {0};
    CK_ULONG len = sizeof(ct);
    CK(p11->C_EncryptInit(sess, &mechs[1], rsa2048.pub));
    CK_EQ(p11->C_Encrypt(sess, big, sizeof(big), ct, &len), CKR_DATA_LEN_RANGE);
    CK_EQ(p11->C_EncryptInit(sess, &mechs[1], p256.pub), CKR_KEY_TYPE_INCONSISTENT);
    CK_EQ(p11->C_EncryptInit(sess, &mechs[1], rsa2048.priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_MECHANISM pss = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK_EQ(p11->C_EncryptInit(sess, &pss, rsa2048.pub), CKR_MECHANISM_INVALID);
}
END_TEST

/* ---- ECDH ----------------------------------------------------------------------------- */

/* X9.63 KDF by OpenSSL's own implementation. */
static void x963(const EVP_MD *md, const uint8_t *z, size_t zlen, const uint8_t *info,
                 size_t info_len, uint8_t *out, size_t n)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "X963KDF", NULL);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)EVP_MD_get0_name(md), 0),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, zlen),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len),
        OSSL_PARAM_END,
    };
    ck_assert_int_eq(EVP_KDF_derive(ctx, out, n, params), 1);
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
}

static void ecdh_case(CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv, const char *curve, size_t coord)
{
    EVP_PKEY *card = public_key(pub);
    EVP_PKEY *mine = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    uint8_t point[1 + 2 * 48 + 2], z[48], got[64], want[64];
    size_t point_len = 0, zlen = sizeof(z);
    ck_assert_int_eq(EVP_PKEY_get_octet_string_param(mine, OSSL_PKEY_PARAM_PUB_KEY, point + 2,
                                                     sizeof(point) - 2, &point_len),
                     1);
    ck_assert_uint_eq(point_len, 1 + 2 * coord);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(mine, NULL);
    ck_assert_int_eq(EVP_PKEY_derive_init(ctx), 1);
    ck_assert_int_eq(EVP_PKEY_derive_set_peer(ctx, card), 1);
    ck_assert_int_eq(EVP_PKEY_derive(ctx, z, &zlen), 1);
    ck_assert_uint_eq(zlen, coord);
    EVP_PKEY_CTX_free(ctx);

    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE generic = CKK_GENERIC_SECRET, aes = CKK_AES;
    CK_ULONG len16 = 16, len32 = 32;
    /* CKD_NULL, whole secret, point as it is. */
    CK_ECDH1_DERIVE_PARAMS p = {CKD_NULL, 0, NULL, (CK_ULONG)point_len, point + 2};
    CK_MECHANISM m = {CKM_ECDH1_DERIVE, &p, sizeof(p)};
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &generic, sizeof(generic)},
                        {CKA_SENSITIVE, &no, sizeof(no)},
                        {CKA_EXTRACTABLE, &yes, sizeof(yes)}};
    CK_OBJECT_HANDLE k;
    CK(p11->C_DeriveKey(sess, &m, priv, t, 4, &k));
    ck_assert_uint_eq(key_value(k, got, sizeof(got)), coord);
    ck_assert_mem_eq(got, z, coord);
    /* CKD_NULL, 16 bytes: the last 16 bytes of Z; the point in a DER OCTET STRING. */
    point[0] = 0x04;
    point[1] = (uint8_t)point_len;
    p.pPublicData = point;
    p.ulPublicDataLen = (CK_ULONG)point_len + 2;
    CK_ATTRIBUTE t16[] = {{CKA_KEY_TYPE, &generic, sizeof(generic)},
                          {CKA_VALUE_LEN, &len16, sizeof(len16)},
                          {CKA_SENSITIVE, &no, sizeof(no)}};
    CK(p11->C_DeriveKey(sess, &m, priv, t16, 3, &k));
    ck_assert_uint_eq(key_value(k, got, sizeof(got)), 16);
    ck_assert_mem_eq(got, z + coord - 16, 16);
    /* CKD_SHA256_KDF with shared data -> an AES-256 key. */
    uint8_t info[] = "shared info";
    CK_ECDH1_DERIVE_PARAMS pk = {CKD_SHA256_KDF, sizeof(info), info, (CK_ULONG)point_len,
                                 point + 2};
    CK_MECHANISM mk = {CKM_ECDH1_DERIVE, &pk, sizeof(pk)};
    CK_ATTRIBUTE ta[] = {{CKA_KEY_TYPE, &aes, sizeof(aes)},
                         {CKA_VALUE_LEN, &len32, sizeof(len32)},
                         {CKA_SENSITIVE, &no, sizeof(no)},
                         {CKA_ENCRYPT, &yes, sizeof(yes)}};
    CK(p11->C_DeriveKey(sess, &mk, priv, ta, 4, &k));
    ck_assert_uint_eq(key_value(k, got, sizeof(got)), 32);
    x963(EVP_sha256(), z, coord, info, sizeof(info), want, 32);
    ck_assert_mem_eq(got, want, 32);
    CK_KEY_TYPE kt = 0;
    CK_BBOOL local = CK_TRUE;
    CK_ATTRIBUTE q[] = {{CKA_KEY_TYPE, &kt, sizeof(kt)}, {CKA_LOCAL, &local, sizeof(local)}};
    CK(p11->C_GetAttributeValue(sess, k, q, 2));
    ck_assert_uint_eq(kt, CKK_AES);
    ck_assert_uint_eq(local, CK_FALSE);
    /* CKD_SHA1_KDF, 50 bytes (three SHA-1 blocks), no shared data. */
    CK_ULONG len50 = 50;
    pk.kdf = CKD_SHA1_KDF;
    pk.ulSharedDataLen = 0;
    pk.pSharedData = NULL;
    CK_ATTRIBUTE t50[] = {{CKA_VALUE_LEN, &len50, sizeof(len50)}, {CKA_SENSITIVE, &no, sizeof(no)}};
    CK(p11->C_DeriveKey(sess, &mk, priv, t50, 2, &k));
    ck_assert_uint_eq(key_value(k, got, sizeof(got)), 50);
    x963(EVP_sha1(), z, coord, NULL, 0, want, 50);
    ck_assert_mem_eq(got, want, 50);

    /* Errors: shared data with CKD_NULL, an unknown KDF, a point off the curve, AES without length.
     */
    p.ulSharedDataLen = 4;
    p.pSharedData = info;
    CK_EQ(p11->C_DeriveKey(sess, &m, priv, t, 4, &k), CKR_MECHANISM_PARAM_INVALID);
    p.ulSharedDataLen = 0;
    p.pSharedData = NULL;
    p.kdf = 0x55;
    CK_EQ(p11->C_DeriveKey(sess, &m, priv, t, 4, &k), CKR_MECHANISM_PARAM_INVALID);
    p.kdf = CKD_NULL;
    point[2 + coord] ^= 1; /* x changed: no longer on the curve */
    CK_EQ(p11->C_DeriveKey(sess, &m, priv, t, 4, &k), CKR_MECHANISM_PARAM_INVALID);
    point[2 + coord] ^= 1;
    CK_ATTRIBUTE t_aes[] = {{CKA_KEY_TYPE, &aes, sizeof(aes)}};
    CK_EQ(p11->C_DeriveKey(sess, &m, priv, t_aes, 1, &k), CKR_TEMPLATE_INCOMPLETE);
    CK_EQ(p11->C_DeriveKey(sess, &m, rsa2048.priv, t, 4, &k), CKR_KEY_TYPE_INCONSISTENT);
    EVP_PKEY_free(mine);
    EVP_PKEY_free(card);
}

START_TEST(ecdh_derive_matches_openssl)
{
    ecdh_case(p256.pub, p256.priv, "P-256", 32);
    ecdh_case(p384.pub, p384.priv, "P-384", 48);
}
END_TEST

/* ---- digests ---------------------------------------------------------------------------- */

START_TEST(digests_match_openssl)
{
    uint8_t out[64], want[64];
    for (size_t i = 0; i < 5; i++) {
        CK_MECHANISM m = {hashes[i], NULL, 0};
        size_t n = hash_data(hashes[i], message, sizeof(message), want);
        CK_ULONG len = sizeof(out);
        CK(p11->C_DigestInit(sess, &m));
        CK(p11->C_Digest(sess, (CK_BYTE_PTR)message, sizeof(message), out, &len));
        ck_assert_uint_eq(len, n);
        ck_assert_mem_eq(out, want, n);
        CK(p11->C_DigestInit(sess, &m));
        CK(p11->C_DigestUpdate(sess, (CK_BYTE_PTR)message, 7));
        CK(p11->C_DigestUpdate(sess, (CK_BYTE_PTR)message + 7, sizeof(message) - 7));
        len = sizeof(out);
        CK(p11->C_DigestFinal(sess, out, &len));
        ck_assert_uint_eq(len, n);
        ck_assert_mem_eq(out, want, n);
    }
    /* C_DigestKey of a secret key = the digest of its value. */
    CK_OBJECT_HANDLE k = secret_key(CKM_GENERIC_SECRET_KEY_GEN, 40);
    uint8_t value[40];
    ck_assert_uint_eq(key_value(k, value, sizeof(value)), 40);
    CK_MECHANISM m = {CKM_SHA256, NULL, 0};
    CK(p11->C_DigestInit(sess, &m));
    CK(p11->C_DigestUpdate(sess, (CK_BYTE_PTR)message, 5));
    CK(p11->C_DigestKey(sess, k));
    CK_ULONG len = sizeof(out);
    CK(p11->C_DigestFinal(sess, out, &len));
    uint8_t both[45];
    memcpy(both, message, 5);
    memcpy(both + 5, value, 40);
    hash_data(CKM_SHA256, both, sizeof(both), want);
    ck_assert_mem_eq(out, want, 32);
    /* Card keys are not in the module: not digestible. */
    CK(p11->C_DigestInit(sess, &m));
    CK_EQ(p11->C_DigestKey(sess, rsa2048.priv), CKR_KEY_INDIGESTIBLE);
    CK_EQ(p11->C_DigestFinal(sess, out, &len), CKR_OPERATION_NOT_INITIALIZED);
    CK(p11->C_DigestInit(sess, &m));
    CK_EQ(p11->C_DigestInit(sess, &m), CKR_OPERATION_ACTIVE);
    CK_MECHANISM bad = {CKM_SHA256_RSA_PKCS, NULL, 0};
    CK(p11->C_DigestFinal(sess, out, &len));
    CK_EQ(p11->C_DigestInit(sess, &bad), CKR_MECHANISM_INVALID);
}
END_TEST

/* ---- AES ----------------------------------------------------------------------------------- */

/* OpenSSL's answer for an AES mode. */
static size_t openssl_aes(const char *name, const uint8_t *key, const uint8_t *iv, size_t iv_len,
                          const uint8_t *aad, size_t aad_len, int pad, const uint8_t *in, size_t n,
                          uint8_t *out, size_t tag_len)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int a = 0, b = 0;
    ck_assert_ptr_nonnull(c);
    if (tag_len > 0) {
        OSSL_PARAM p[] = {OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &iv_len), OSSL_PARAM_END};
        ck_assert_int_eq(EVP_EncryptInit_ex2(ctx, c, NULL, NULL, p), 1);
        ck_assert_int_eq(EVP_EncryptInit_ex2(ctx, NULL, key, iv, NULL), 1);
        if (aad_len > 0)
            ck_assert_int_eq(EVP_EncryptUpdate(ctx, NULL, &a, aad, (int)aad_len), 1);
    } else {
        ck_assert_int_eq(EVP_EncryptInit_ex2(ctx, c, key, iv, NULL), 1);
        EVP_CIPHER_CTX_set_padding(ctx, pad);
    }
    ck_assert_int_eq(EVP_EncryptUpdate(ctx, out, &a, in, (int)n), 1);
    ck_assert_int_eq(EVP_EncryptFinal_ex(ctx, out + a, &b), 1);
    size_t len = (size_t)(a + b);
    if (tag_len > 0) {
        ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, (int)tag_len, out + len),
                         1);
        len += tag_len;
    }
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(c);
    return len;
}

/* Encrypt in odd-sized parts with the two-call convention; returns the total. */
static size_t encrypt_parts(CK_MECHANISM *m, CK_OBJECT_HANDLE k, const uint8_t *in, size_t n,
                            uint8_t *out, int decrypt)
{
    static const size_t parts[] = {1, 15, 2, 31, 16, 5, 1000};
    size_t done = 0, pos = 0;
    CK((decrypt ? p11->C_DecryptInit : p11->C_EncryptInit)(sess, m, k));
    for (size_t i = 0; pos < n; i++) {
        size_t take = parts[i % 7] < n - pos ? parts[i % 7] : n - pos;
        CK_ULONG len = 0;
        CK((decrypt ? p11->C_DecryptUpdate : p11->C_EncryptUpdate)(sess, (CK_BYTE_PTR)in + pos,
                                                                   take, NULL, &len));
        CK_ULONG want = len;
        CK((decrypt ? p11->C_DecryptUpdate : p11->C_EncryptUpdate)(sess, (CK_BYTE_PTR)in + pos,
                                                                   take, out + done, &len));
        ck_assert_uint_eq(len, want);
        done += len;
        pos += take;
    }
    CK_ULONG len = 0;
    CK((decrypt ? p11->C_DecryptFinal : p11->C_EncryptFinal)(sess, NULL, &len));
    CK_ULONG bound = len;
    CK((decrypt ? p11->C_DecryptFinal : p11->C_EncryptFinal)(sess, out + done, &len));
    ck_assert_uint_le(len, bound);
    return done + len;
}

START_TEST(aes_modes_match_openssl)
{
    static const CK_ULONG sizes[] = {16, 24, 32};
    static const char *const bits[] = {"128", "192", "256"};
    uint8_t data[100], key[32], iv[16], ct[200], pt[200], want[200], parts[200];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 13);
    RAND_bytes(iv, sizeof(iv));
    for (size_t s = 0; s < 3; s++) {
        CK_OBJECT_HANDLE k = secret_key(CKM_AES_KEY_GEN, sizes[s]);
        ck_assert_uint_eq(key_value(k, key, sizeof(key)), sizes[s]);
        char name[32];
        const struct {
            CK_MECHANISM_TYPE mech;
            const char *mode;
            int pad;
            size_t n;
        } modes[] = {{CKM_AES_ECB, "ECB", 0, 96},
                     {CKM_AES_CBC, "CBC", 0, 96},
                     {CKM_AES_CBC_PAD, "CBC", 1, 100},
                     {CKM_AES_CBC_PAD, "CBC", 1, 96}};
        for (size_t j = 0; j < 4; j++) {
            CK_MECHANISM m = {modes[j].mech, modes[j].mech == CKM_AES_ECB ? NULL : iv,
                              modes[j].mech == CKM_AES_ECB ? 0 : 16};
            snprintf(name, sizeof(name), "AES-%s-%s", bits[s], modes[j].mode);
            size_t wlen = openssl_aes(name, key, modes[j].mech == CKM_AES_ECB ? NULL : iv, 16, NULL,
                                      0, modes[j].pad, data, modes[j].n, want, 0);
            CK_ULONG len = 0;
            CK(p11->C_EncryptInit(sess, &m, k));
            CK(p11->C_Encrypt(sess, data, modes[j].n, NULL, &len));
            ck_assert_uint_eq(len, wlen);
            CK(p11->C_Encrypt(sess, data, modes[j].n, ct, &len));
            ck_assert_uint_eq(len, wlen);
            ck_assert_mem_eq(ct, want, wlen);
            ck_assert_uint_eq(encrypt_parts(&m, k, data, modes[j].n, parts, 0), wlen);
            ck_assert_mem_eq(parts, want, wlen);
            CK(p11->C_DecryptInit(sess, &m, k));
            len = sizeof(pt);
            CK(p11->C_Decrypt(sess, ct, wlen, pt, &len));
            ck_assert_uint_eq(len, modes[j].n);
            ck_assert_mem_eq(pt, data, modes[j].n);
            ck_assert_uint_eq(encrypt_parts(&m, k, ct, wlen, parts, 1), modes[j].n);
            ck_assert_mem_eq(parts, data, modes[j].n);
        }
        /* GCM with AAD, a 12-byte IV and a 16-byte tag; and a 96-bit tag. */
        for (CK_ULONG tag = 96; tag <= 128; tag += 32) {
            uint8_t aad[] = "header";
            CK_GCM_PARAMS gp = {iv, 12, 96, aad, sizeof(aad), tag};
            CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
            snprintf(name, sizeof(name), "AES-%s-GCM", bits[s]);
            size_t wlen =
                openssl_aes(name, key, iv, 12, aad, sizeof(aad), 0, data, 77, want, tag / 8);
            CK_ULONG len = sizeof(ct);
            CK(p11->C_EncryptInit(sess, &m, k));
            CK(p11->C_Encrypt(sess, data, 77, ct, &len));
            ck_assert_uint_eq(len, wlen);
            ck_assert_mem_eq(ct, want, wlen);
            ck_assert_uint_eq(encrypt_parts(&m, k, data, 77, parts, 0), wlen);
            ck_assert_mem_eq(parts, want, wlen);
            ck_assert_uint_eq(encrypt_parts(&m, k, ct, wlen, parts, 1), 77);
            ck_assert_mem_eq(parts, data, 77);
            CK(p11->C_DecryptInit(sess, &m, k));
            len = sizeof(pt);
            CK(p11->C_Decrypt(sess, ct, wlen, pt, &len));
            ck_assert_uint_eq(len, 77);
            ck_assert_mem_eq(pt, data, 77);
            /* A changed tag is refused, and no plaintext comes out. */
            ct[wlen - 1] ^= 1;
            CK(p11->C_DecryptInit(sess, &m, k));
            len = sizeof(pt);
            CK_EQ(p11->C_Decrypt(sess, ct, wlen, pt, &len), CKR_ENCRYPTED_DATA_INVALID);
        }
    }
}
END_TEST

START_TEST(aes_errors)
{
    CK_OBJECT_HANDLE k = secret_key(CKM_AES_KEY_GEN, 32);
    uint8_t iv[16] = {0}, buf[64], out[64];
    memset(buf, 7, sizeof(buf));
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_MECHANISM cbc = {CKM_AES_CBC, iv, 16};
    CK_MECHANISM pad = {CKM_AES_CBC_PAD, iv, 16};
    CK_ULONG len = sizeof(out);
    /* Not a multiple of the block. */
    CK(p11->C_EncryptInit(sess, &ecb, k));
    CK_EQ(p11->C_Encrypt(sess, buf, 15, out, &len), CKR_DATA_LEN_RANGE);
    CK(p11->C_DecryptInit(sess, &cbc, k));
    len = sizeof(out);
    CK_EQ(p11->C_Decrypt(sess, buf, 17, out, &len), CKR_ENCRYPTED_DATA_LEN_RANGE);
    CK(p11->C_EncryptInit(sess, &cbc, k));
    len = sizeof(out);
    CK(p11->C_EncryptUpdate(sess, buf, 20, out, &len));
    ck_assert_uint_eq(len, 16);
    len = sizeof(out);
    CK_EQ(p11->C_EncryptFinal(sess, out, &len), CKR_DATA_LEN_RANGE);
    /* Bad padding: a ciphertext whose last plaintext byte is 0x00, which no
     * PKCS#7 padding ends with (made with plain CBC under the same key and IV). */
    {
        uint8_t plain[32], cipher[32];
        CK_ULONG clen = sizeof(cipher);
        memset(plain, 7, sizeof(plain));
        plain[31] = 0x00;
        CK(p11->C_EncryptInit(sess, &cbc, k));
        CK(p11->C_Encrypt(sess, plain, sizeof(plain), cipher, &clen));
        ck_assert_uint_eq(clen, 32);
        CK(p11->C_DecryptInit(sess, &pad, k));
        len = sizeof(out);
        CK_EQ(p11->C_Decrypt(sess, cipher, 32, out, &len), CKR_ENCRYPTED_DATA_INVALID);
    }
    /* Bad parameters and keys. */
    CK_MECHANISM short_iv = {CKM_AES_CBC, iv, 8};
    CK_EQ(p11->C_EncryptInit(sess, &short_iv, k), CKR_MECHANISM_PARAM_INVALID);
    CK_GCM_PARAMS gp = {iv, 12, 96, NULL, 0, 24};
    CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
    CK_EQ(p11->C_EncryptInit(sess, &gcm, k), CKR_MECHANISM_PARAM_INVALID);
    gp.ulTagBits = 128;
    gp.ulIvLen = 0;
    CK_EQ(p11->C_EncryptInit(sess, &gcm, k), CKR_MECHANISM_PARAM_INVALID);
    CK_EQ(p11->C_EncryptInit(sess, &ecb, rsa2048.pub), CKR_KEY_TYPE_INCONSISTENT);
    CK_OBJECT_HANDLE g = secret_key(CKM_GENERIC_SECRET_KEY_GEN, 16);
    CK_EQ(p11->C_EncryptInit(sess, &ecb, g), CKR_KEY_TYPE_INCONSISTENT);
    /* The two-call convention in an Update keeps the operation and its input. */
    CK(p11->C_EncryptInit(sess, &ecb, k));
    len = 0;
    CK(p11->C_EncryptUpdate(sess, buf, 40, NULL, &len));
    ck_assert_uint_eq(len, 32);
    len = 16;
    CK_EQ(p11->C_EncryptUpdate(sess, buf, 40, out, &len), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(len, 32);
    len = sizeof(out);
    CK(p11->C_EncryptUpdate(sess, buf, 40, out, &len));
    ck_assert_uint_eq(len, 32);
    len = sizeof(out);
    CK(p11->C_EncryptUpdate(sess, buf, 8, out, &len));
    ck_assert_uint_eq(len, 16);
    len = sizeof(out);
    CK(p11->C_EncryptFinal(sess, out, &len));
    ck_assert_uint_eq(len, 0);
    /* Templates: AES needs a valid CKA_VALUE_LEN; secret keys are session objects. */
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG l20 = 20;
    CK_ATTRIBUTE t20[] = {{CKA_VALUE_LEN, &l20, sizeof(l20)}};
    CK_OBJECT_HANDLE h;
    CK_EQ(p11->C_GenerateKey(sess, &gen, t20, 1, &h), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_EQ(p11->C_GenerateKey(sess, &gen, NULL, 0, &h), CKR_TEMPLATE_INCOMPLETE);
    CK_ULONG l16 = 16;
    CK_ATTRIBUTE tok[] = {{CKA_VALUE_LEN, &l16, sizeof(l16)}, {CKA_TOKEN, &yes, sizeof(yes)}};
    CK_EQ(p11->C_GenerateKey(sess, &gen, tok, 2, &h), CKR_ATTRIBUTE_VALUE_INVALID);
}
END_TEST

/* ---- wrapping ----------------------------------------------------------------------------- */

START_TEST(wrap_and_unwrap)
{
    CK_OBJECT_HANDLE kek = secret_key(CKM_AES_KEY_GEN, 32);
    CK_OBJECT_HANDLE target = secret_key(CKM_AES_KEY_GEN, 16);
    CK_OBJECT_HANDLE odd = secret_key(CKM_GENERIC_SECRET_KEY_GEN, 20);
    uint8_t kv[32], tv[32], ov[32], wrapped[512], want[64], got[64];
    key_value(kek, kv, sizeof(kv));
    key_value(target, tv, sizeof(tv));
    key_value(odd, ov, sizeof(ov));

    /* AES key wrap (RFC 3394) equals OpenSSL's. */
    CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_ULONG len = 0;
    CK(p11->C_WrapKey(sess, &m, kek, target, NULL, &len));
    ck_assert_uint_eq(len, 24);
    CK(p11->C_WrapKey(sess, &m, kek, target, wrapped, &len));
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER *wrap = EVP_CIPHER_fetch(NULL, "AES-256-WRAP", NULL);
    int a = 0, b = 0;
    ck_assert_int_eq(EVP_EncryptInit_ex2(ctx, wrap, kv, NULL, NULL), 1);
    ck_assert_int_eq(EVP_EncryptUpdate(ctx, want, &a, tv, 16), 1);
    ck_assert_int_eq(EVP_EncryptFinal_ex(ctx, want + a, &b), 1);
    ck_assert_int_eq(a + b, 24);
    ck_assert_mem_eq(wrapped, want, 24);
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(wrap);

    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES, generic = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &aes, sizeof(aes)},
                        {CKA_SENSITIVE, &no, sizeof(no)},
                        {CKA_EXTRACTABLE, &yes, sizeof(yes)}};
    CK_OBJECT_HANDLE h;
    CK(p11->C_UnwrapKey(sess, &m, kek, wrapped, len, t, 4, &h));
    ck_assert_uint_eq(key_value(h, got, sizeof(got)), 16);
    ck_assert_mem_eq(got, tv, 16);
    wrapped[3] ^= 1;
    CK_EQ(p11->C_UnwrapKey(sess, &m, kek, wrapped, len, t, 4, &h), CKR_WRAPPED_KEY_INVALID);
    CK_EQ(p11->C_UnwrapKey(sess, &m, kek, wrapped, 20, t, 4, &h), CKR_WRAPPED_KEY_LEN_RANGE);

    /* KEY_WRAP_PAD (RFC 5649) for a 20-byte secret; KEY_WRAP refuses it. */
    CK_EQ(p11->C_WrapKey(sess, &m, kek, odd, wrapped, &len), CKR_KEY_SIZE_RANGE);
    CK_MECHANISM mp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    len = sizeof(wrapped);
    CK(p11->C_WrapKey(sess, &mp, kek, odd, wrapped, &len));
    ck_assert_uint_eq(len, 32);
    CK_ATTRIBUTE tg[] = {{CKA_KEY_TYPE, &generic, sizeof(generic)},
                         {CKA_SENSITIVE, &no, sizeof(no)}};
    CK(p11->C_UnwrapKey(sess, &mp, kek, wrapped, len, tg, 2, &h));
    ck_assert_uint_eq(key_value(h, got, sizeof(got)), 20);
    ck_assert_mem_eq(got, ov, 20);

    /* RSA OAEP: wrapped in the module with the card's public key, unwrapped by the card. */
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM mr = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    len = sizeof(wrapped);
    CK(p11->C_WrapKey(sess, &mr, rsa2048.pub, target, wrapped, &len));
    ck_assert_uint_eq(len, 256);
    CK(p11->C_UnwrapKey(sess, &mr, rsa2048.priv, wrapped, len, t, 4, &h));
    ck_assert_uint_eq(key_value(h, got, sizeof(got)), 16);
    ck_assert_mem_eq(got, tv, 16);

    /* What cannot be wrapped. */
    CK_EQ(p11->C_WrapKey(sess, &m, kek, rsa2048.priv, wrapped, &len), CKR_KEY_NOT_WRAPPABLE);
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG l16 = 16;
    CK_ATTRIBUTE fixed[] = {{CKA_VALUE_LEN, &l16, sizeof(l16)}, {CKA_EXTRACTABLE, &no, sizeof(no)}};
    CK_OBJECT_HANDLE locked;
    CK(p11->C_GenerateKey(sess, &gen, fixed, 2, &locked));
    len = sizeof(wrapped);
    CK_EQ(p11->C_WrapKey(sess, &m, kek, locked, wrapped, &len), CKR_KEY_UNEXTRACTABLE);
    CK_EQ(p11->C_WrapKey(sess, &m, rsa2048.pub, target, wrapped, &len),
          CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
}
END_TEST

/* ---- key pair generation ---------------------------------------------------------------- */

START_TEST(generate_key_pairs_then_sign)
{
    /* Generating needs a R/W session and, on a PIN token, the user logged in (setup did). */
    CK_OBJECT_HANDLE pub, priv;
    gen_pair(CKM_RSA_PKCS_KEY_PAIR_GEN, 3072, NULL, 0, "rsa3072", 1, 1, &pub, &priv);
    CK_MECHANISM m = {CKM_SHA384_RSA_PKCS, NULL, 0};
    uint8_t sig[512], hash[64];
    CK_ULONG len = sign(&m, priv, message, sizeof(message), sig);
    ck_assert_uint_eq(len, 384);
    EVP_PKEY *key = public_key(pub);
    ck_assert_int_eq(EVP_PKEY_get_bits(key), 3072);
    hash_data(CKM_SHA384, message, sizeof(message), hash);
    ck_assert(openssl_verify(key, 0, EVP_sha384(), 0, hash, 48, sig, len));
    EVP_PKEY_free(key);

    /* The key's attributes say how it was made. */
    CK_ULONG bits = 0, gen_mech = 0;
    CK_BBOOL local = CK_FALSE, sensitive = CK_FALSE, token = CK_FALSE;
    CK_ATTRIBUTE q[] = {{CKA_LOCAL, &local, sizeof(local)},
                        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
                        {CKA_TOKEN, &token, sizeof(token)},
                        {CKA_KEY_GEN_MECHANISM, &gen_mech, sizeof(gen_mech)}};
    CK(p11->C_GetAttributeValue(sess, priv, q, 4));
    ck_assert(local && sensitive && token);
    ck_assert_uint_eq(gen_mech, CKM_RSA_PKCS_KEY_PAIR_GEN);
    CK_ATTRIBUTE qb = {CKA_MODULUS_BITS, &bits, sizeof(bits)};
    CK(p11->C_GetAttributeValue(sess, pub, &qb, 1));
    ck_assert_uint_eq(bits, 3072);

    /* An ID from the template. */
    uint8_t id[] = {0x00, 0x42, 0x00};
    CK_MECHANISM ecgen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pubt[] = {{CKA_EC_PARAMS, (void *)oid_p384, sizeof(oid_p384)},
                           {CKA_ID, id, sizeof(id)}};
    CK_ATTRIBUTE privt[] = {{CKA_ID, id, sizeof(id)}, {CKA_SIGN, &yes, sizeof(yes)}};
    CK(p11->C_GenerateKeyPair(sess, &ecgen, pubt, 2, privt, 2, &pub, &priv));
    uint8_t got[8];
    CK_ATTRIBUTE qi = {CKA_ID, got, sizeof(got)};
    CK(p11->C_GetAttributeValue(sess, priv, &qi, 1));
    ck_assert_uint_eq(qi.ulValueLen, sizeof(id));
    ck_assert_mem_eq(got, id, sizeof(id));
    CK_MECHANISM e = {CKM_ECDSA_SHA512, NULL, 0};
    len = sign(&e, priv, message, sizeof(message), sig);
    ck_assert_uint_eq(len, 96);
    key = public_key(pub);
    hash_data(CKM_SHA512, message, sizeof(message), hash);
    ck_assert(openssl_verify(key, 0, NULL, 0, hash, 64, sig, len));
    EVP_PKEY_free(key);
    /* Signing only: no derive. */
    CK_ECDH1_DERIVE_PARAMS dp = {CKD_NULL, 0, NULL, 0, NULL};
    CK_MECHANISM d = {CKM_ECDH1_DERIVE, &dp, sizeof(dp)};
    CK_OBJECT_HANDLE k;
    CK_EQ(p11->C_DeriveKey(sess, &d, priv, NULL, 0, &k), CKR_KEY_FUNCTION_NOT_PERMITTED);

    /* Templates the card cannot meet. */
    CK_ULONG odd = 1024;
    CK_MECHANISM rsagen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE small[] = {{CKA_MODULUS_BITS, &odd, sizeof(odd)}};
    CK_EQ(p11->C_GenerateKeyPair(sess, &rsagen, small, 1, NULL, 0, &pub, &priv),
          CKR_KEY_SIZE_RANGE);
    CK_EQ(p11->C_GenerateKeyPair(sess, &rsagen, NULL, 0, NULL, 0, &pub, &priv),
          CKR_TEMPLATE_INCOMPLETE);
    static const uint8_t oid_p521[] = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23};
    CK_ATTRIBUTE p521[] = {{CKA_EC_PARAMS, (void *)oid_p521, sizeof(oid_p521)}};
    CK_EQ(p11->C_GenerateKeyPair(sess, &ecgen, p521, 1, NULL, 0, &pub, &priv),
          CKR_CURVE_NOT_SUPPORTED);
    CK_ATTRIBUTE session_key[] = {{CKA_TOKEN, &no, sizeof(no)}};
    CK_ATTRIBUTE p256t[] = {{CKA_EC_PARAMS, (void *)oid_p256, sizeof(oid_p256)}};
    CK_EQ(p11->C_GenerateKeyPair(sess, &ecgen, p256t, 1, session_key, 1, &pub, &priv),
          CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE ec_decrypt[] = {{CKA_DECRYPT, &yes, sizeof(yes)}};
    CK_EQ(p11->C_GenerateKeyPair(sess, &ecgen, p256t, 1, ec_decrypt, 1, &pub, &priv),
          CKR_TEMPLATE_INCONSISTENT);
}
END_TEST

START_TEST(generate_needs_rw_session)
{
    CK_SESSION_HANDLE ro;
    CK(p11->C_OpenSession(keys_slot(), CKF_SERIAL_SESSION, NULL, NULL, &ro));
    CK_MECHANISM ecgen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE p256t[] = {{CKA_EC_PARAMS, (void *)oid_p256, sizeof(oid_p256)}};
    CK_OBJECT_HANDLE pub, priv;
    CK_EQ(p11->C_GenerateKeyPair(ro, &ecgen, p256t, 1, NULL, 0, &pub, &priv),
          CKR_SESSION_READ_ONLY);
    CK(p11->C_CloseSession(ro));
}
END_TEST

START_TEST(import_private_keys)
{
    /* An EC key made by OpenSSL, imported with C_CreateObject, signs for its public key. */
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIGNUM *d = NULL;
    ck_assert_int_eq(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
    uint8_t dv[32];
    ck_assert_int_eq(BN_bn2binpad(d, dv, 32), 32);
    BN_free(d);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    uint8_t id[] = "imported";
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &yes, sizeof(yes)}, {CKA_ID, id, sizeof(id) - 1},
        {CKA_SIGN, &yes, sizeof(yes)},  {CKA_EC_PARAMS, (void *)oid_p256, sizeof(oid_p256)},
        {CKA_VALUE, dv, sizeof(dv)}};
    CK_OBJECT_HANDLE priv;
    CK(p11->C_CreateObject(sess, t, 7, &priv));
    CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
    uint8_t sig[64], hash[32];
    CK_ULONG len = sign(&m, priv, message, sizeof(message), sig);
    hash_data(CKM_SHA256, message, sizeof(message), hash);
    ck_assert(openssl_verify(key, 0, NULL, 0, hash, 32, sig, len));
    /* Its CKA_LOCAL is false: it was not made on the card. */
    CK_BBOOL local = CK_TRUE;
    CK_ATTRIBUTE q = {CKA_LOCAL, &local, sizeof(local)};
    CK(p11->C_GetAttributeValue(sess, priv, &q, 1));
    ck_assert_uint_eq(local, CK_FALSE);
    EVP_PKEY_free(key);
    /* A private scalar out of range. */
    memset(dv, 0xFF, sizeof(dv));
    CK_EQ(p11->C_CreateObject(sess, t, 7, &priv), CKR_ATTRIBUTE_VALUE_INVALID);
}
END_TEST

START_TEST(keys_on_a_pin_token)
{
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, "crypto", 6);
    CK(p11->C_InitToken(free_slot(), (CK_UTF8CHAR_PTR) "so-pin-1", 8, label));
    CK_SESSION_HANDLE s2;
    CK(p11->C_OpenSession(slot_by_label("crypto"), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                          &s2));
    CK(p11->C_Login(s2, CKU_SO, (CK_UTF8CHAR_PTR) "so-pin-1", 8));
    CK(p11->C_InitPIN(s2, (CK_UTF8CHAR_PTR) "user-pin", 8));
    CK(p11->C_Logout(s2));

    /* Keys of a PIN token need the user logged in. */
    CK_MECHANISM ecgen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE p256t[] = {{CKA_EC_PARAMS, (void *)oid_p256, sizeof(oid_p256)}};
    CK_ATTRIBUTE privt[] = {{CKA_SIGN, &yes, sizeof(yes)}, {CKA_DERIVE, &yes, sizeof(yes)}};
    CK_OBJECT_HANDLE pub, priv;
    CK_EQ(p11->C_GenerateKeyPair(s2, &ecgen, p256t, 1, privt, 2, &pub, &priv),
          CKR_USER_NOT_LOGGED_IN);
    CK(p11->C_Login(s2, CKU_USER, (CK_UTF8CHAR_PTR) "user-pin", 8));
    CK(p11->C_GenerateKeyPair(s2, &ecgen, p256t, 1, privt, 2, &pub, &priv));

    CK_SESSION_HANDLE keep = sess;
    sess = s2;
    CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
    uint8_t sig[64], hash[32];
    CK_ULONG len = sign(&m, priv, message, sizeof(message), sig);
    EVP_PKEY *key = public_key(pub);
    hash_data(CKM_SHA256, message, sizeof(message), hash);
    ck_assert(openssl_verify(key, 0, NULL, 0, hash, 32, sig, len));
    EVP_PKEY_free(key);
    /* Its private key is private: gone from view after logout. */
    CK_BBOOL priv_attr = CK_FALSE;
    CK_ATTRIBUTE q = {CKA_PRIVATE, &priv_attr, sizeof(priv_attr)};
    CK(p11->C_GetAttributeValue(sess, priv, &q, 1));
    ck_assert_uint_eq(priv_attr, CK_TRUE);
    /* An operation started before logout: the card no longer has the PIN verified. */
    CK(p11->C_SignInit(sess, &m, priv));
    CK(p11->C_Logout(s2));
    len = sizeof(sig);
    CK_EQ(p11->C_Sign(sess, (CK_BYTE_PTR)message, sizeof(message), sig, &len),
          CKR_USER_NOT_LOGGED_IN);
    CK_EQ(p11->C_SignInit(sess, &m, priv), CKR_KEY_HANDLE_INVALID);
    sess = keep;
    CK(p11->C_CloseSession(s2));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-crypto");
    TCase *tc = tcase_create("token-crypto");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, setup_once, teardown_once);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mechanism_list_and_info);
    tcase_add_test(tc, rsa_sign_every_mechanism);
    tcase_add_test(tc, ecdsa_every_mechanism);
    tcase_add_test(tc, multi_part_equals_single_part);
    tcase_add_test(tc, two_call_convention);
    tcase_add_test(tc, sign_errors);
    tcase_add_test(tc, not_supported_functions);
    tcase_add_test(tc, rsa_decrypt_openssl_ciphertexts);
    tcase_add_test(tc, rsa_encrypt_decrypt_round_trip);
    tcase_add_test(tc, ecdh_derive_matches_openssl);
    tcase_add_test(tc, digests_match_openssl);
    tcase_add_test(tc, aes_modes_match_openssl);
    tcase_add_test(tc, aes_errors);
    tcase_add_test(tc, wrap_and_unwrap);
    tcase_add_test(tc, generate_key_pairs_then_sign);
    tcase_add_test(tc, generate_needs_rw_session);
    tcase_add_test(tc, import_private_keys);
    tcase_add_test(tc, keys_on_a_pin_token);
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
