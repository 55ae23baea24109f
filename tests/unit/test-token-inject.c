/*
 * test-token-inject.c - secure key injection through the module, card side
 * (C_UnwrapKey with CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP / _ECDH and
 * CKM_VENDOR_SKS_INJECT_KEY), on the embedded card.
 *
 * The issuer's blobs are made here with OpenSSL EVP (inject-issuer.c) from
 * the K1 public key testlib's issuer received when it provisioned K1, never
 * with the module's or the card's code; an injected key must then sign
 * through the module so that OpenSSL verifies with the key the test made,
 * and its certificate must show as a CKO_CERTIFICATE. The session key S1
 * must be refused by every standard mechanism, must not be readable, and
 * must be released on the card when its object goes (checked by filling the
 * card's SKS_SESSION_KEYS_MAX places again). A blob is bound to the ID and
 * KeyUsage the issuer meant (the AAD): the tests seal it for the ones the
 * template asks for unless they play a relay that changes them; and S1
 * serves one blob, so every try that reaches the card takes a fresh S1.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "inject-issuer.h"
#include "pkcs11/sks-pkcs11.h"
#include "test-token-util.h"

#define PIN  "1234"
#define U(s) ((CK_UTF8CHAR_PTR)(s))

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
static CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY, private_class = CKO_PRIVATE_KEY;
static CK_KEY_TYPE aes_type = CKK_AES;

/* ---- set-up ------------------------------------------------------------------ */

/* Keys on the card before the module starts: `count` keys of `alg` and `usage`. */
static void provision(tt_env *e, uint8_t alg, uint8_t usage, const char *pin, int no_caching,
                      size_t count, tl_key *k)
{
    tl_key_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.algorithm = alg;
    spec.key_usage = usage;
    spec.pin = pin;
    spec.pin_no_caching = (uint8_t)no_caching;
    spec.key_count = count;
    tl_provision_key(e->card, &spec, k);
}

/* What every test starts with: K1 "key1" on the card, the module, a session on K1's token. */
typedef struct {
    tt_env e;
    tl_key k1;
    const char *pin; /* K1's PIN; NULL: K1 is on the no-PIN token */
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE s;  /* the user logged in when K1 has a PIN */
    CK_OBJECT_HANDLE k1h; /* K1's private key object */
    EVP_PKEY *k1_pub;     /* K1's public key as testlib's issuer received it */
} fixture;

/* K1 of `alg` and `usage` (under PIN policy "pin" when `pin`) on a fresh card; no module yet. */
static void begin_card(fixture *x, uint8_t alg, uint8_t usage, const char *pin, int no_caching)
{
    memset(x, 0, sizeof(*x));
    tt_env_with_card(&x->e, NULL);
    provision(&x->e, alg, usage, pin, no_caching, 1, &x->k1);
    x->pin = pin;
    x->k1_pub = x->k1.public_key[0];
}

/* The module started on that card, the session opened, K1 found. */
static void begin_module(fixture *x)
{
    x->f = tt_init();
    x->s = tt_user_session(x->f, x->pin != NULL ? "pin" : "SKS (no PIN)", x->pin);
    x->k1h = tt_find_id(x->f, x->s, CKO_PRIVATE_KEY, "key1");
}

static void begin(fixture *x, uint8_t alg, uint8_t usage, const char *pin, int no_caching)
{
    begin_card(x, alg, usage, pin, no_caching);
    begin_module(x);
}

static void finish(fixture *x)
{
    TT_OK(x->f->C_Finalize(NULL));
    tl_key_free(&x->k1);
    tt_env_free(&x->e);
}

/* ---- the two unwraps ---------------------------------------------------------- */

static CK_ATTRIBUTE s1_template[] = {
    {CKA_CLASS, &secret_class, sizeof(secret_class)},
    {CKA_KEY_TYPE, &aes_type, sizeof(aes_type)},
    {CKA_LABEL, "S1", 2},
};

/* A random S1 wrapped under K1 by RSA-OAEP, unwrapped through the module. */
static CK_RV unwrap_rsa_s1(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k1,
                           EVP_PKEY *k1_pub, uint8_t s1[TI_S1_LEN], CK_OBJECT_HANDLE *h)
{
    sks_writer enc;
    sks_writer_init(&enc);
    ti_random_s1(s1);
    ti_oaep_wrap(k1_pub, s1, TI_S1_LEN, &enc);
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, NULL, 0};
    CK_RV rv = f->C_UnwrapKey(s, &m, k1, enc.buf, enc.len, s1_template, 3, h);
    sks_writer_free(&enc);
    return rv;
}

/* S1 agreed with K1 through a fresh ephemeral key, unwrapped through the module. */
static CK_RV unwrap_ecdh_s1(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k1,
                            EVP_PKEY *k1_pub, uint8_t s1[TI_S1_LEN], CK_OBJECT_HANDLE *h)
{
    uint8_t point[TI_POINT_LEN];
    ti_ecdh_s1(k1_pub, point, s1);
    CK_SKS_ECDH_SESSION_KEY_PARAMS p = {point, sizeof(point)};
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION_KEY_ECDH, &p, sizeof(p)};
    return f->C_UnwrapKey(s, &m, k1, NULL, 0, s1_template, 3, h);
}

typedef struct {
    CK_KEY_TYPE type;
    const char *id;
    CK_BBOOL sign, decrypt, derive, extractable;
    int usage_given; /* CKA_SIGN.. in the template; else the key generation defaults */
    int omit_id;     /* no CKA_ID in the template */
    sks_writer *cert;
    /* The blob, made by the test (random IV) unless `tamper` changes it. */
    EVP_PKEY *aad_key;   /* the K1 whose SPKI is the aad; NULL: the real K1 */
    const char *blob_id; /* the ID the blob is sealed for; NULL: the template's */
    uint8_t blob_usage;  /* the KeyUsage it is sealed for; 0: the template's */
    int tamper;          /* 1 ciphertext, 2 tag, 3 IV */
} inject_spec;

/*
 * The KeyUsage a template asks for, by the rule of C_GenerateKeyPair
 * (docs/token.md): CKA_SIGN sign, CKA_DECRYPT decrypt, CKA_DERIVE key
 * agreement; none given: all the key type can do.
 */
static uint8_t template_usage(const inject_spec *is)
{
    if (!is->usage_given)
        return SKS_USAGE_SIGN | (is->type == CKK_RSA ? SKS_USAGE_DECRYPT : SKS_USAGE_KEY_AGREEMENT);
    return (uint8_t)((is->sign ? SKS_USAGE_SIGN : 0) | (is->decrypt ? SKS_USAGE_DECRYPT : 0) |
                     (is->derive ? SKS_USAGE_KEY_AGREEMENT : 0));
}

/* Inject K2 under S1 through the module. */
static CK_RV inject(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h1,
                    const uint8_t s1[TI_S1_LEN], EVP_PKEY *k1_pub, EVP_PKEY *k2,
                    const inject_spec *is, CK_OBJECT_HANDLE *out)
{
    CK_SKS_INJECT_PARAMS p;
    sks_writer blob;
    sks_writer_init(&blob);
    memset(&p, 0, sizeof(p));
    ti_wrap_k2(s1, is->aad_key != NULL ? is->aad_key : k1_pub, k2,
               is->blob_id != NULL ? is->blob_id : is->id,
               is->blob_usage != 0 ? is->blob_usage : template_usage(is), p.iv, &blob);
    if (is->tamper == 1)
        blob.buf[3] ^= 0x10;
    else if (is->tamper == 2)
        blob.buf[blob.len - 2] ^= 0x10;
    else if (is->tamper == 3)
        p.iv[11] ^= 0x10;
    if (is->cert != NULL) {
        p.pCertificatePath = is->cert->buf;
        p.ulCertificatePathLen = is->cert->len;
    }
    CK_ATTRIBUTE t[8] = {
        {CKA_CLASS, &private_class, sizeof(private_class)},
        {CKA_KEY_TYPE, (void *)&is->type, sizeof(is->type)},
        {CKA_LABEL, "injected", 8},
        {CKA_EXTRACTABLE, (void *)&is->extractable, sizeof(CK_BBOOL)},
        {CKA_ID, (void *)is->id, strlen(is->id)},
        {CKA_SIGN, (void *)&is->sign, sizeof(CK_BBOOL)},
        {CKA_DECRYPT, (void *)&is->decrypt, sizeof(CK_BBOOL)},
        {CKA_DERIVE, (void *)&is->derive, sizeof(CK_BBOOL)},
    };
    if (is->omit_id)
        t[4] = t[3]; /* CKA_EXTRACTABLE twice, with one value: no CKA_ID */
    CK_MECHANISM m = {CKM_VENDOR_SKS_INJECT_KEY, &p, sizeof(p)};
    CK_RV rv = f->C_UnwrapKey(s, &m, h1, blob.buf, blob.len, t, is->usage_given ? 8 : 5, out);
    sks_writer_free(&blob);
    return rv;
}
/* ---- tests -------------------------------------------------------------------- */

/* RSA-OAEP S1 under an RSA K1 with PIN; an RSA K2 with its certificate, then it signs. */
START_TEST(t_rsa_session_key_rsa_injection)
{
    uint8_t s1[TI_S1_LEN];
    CK_OBJECT_HANDLE h1, k2h;
    fixture x;
    begin(&x, SKS_KEYALG_RSA2048, SKS_USAGE_DECRYPT | SKS_USAGE_SIGN, PIN, 0);
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &h1));

    /* S1 as the module shows it: nothing but an injection key, no value. */
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, h1, CKA_VENDOR_SKS_INJECTION_ONLY), CK_TRUE);
    ck_assert_uint_eq(tt_get_ulong(x.f, x.s, h1, CKA_CLASS), CKO_SECRET_KEY);
    ck_assert_uint_eq(tt_get_ulong(x.f, x.s, h1, CKA_KEY_TYPE), CKK_AES);
    ck_assert_uint_eq(tt_get_ulong(x.f, x.s, h1, CKA_VALUE_LEN), 32);
    ck_assert_uint_ne(tt_get_ulong(x.f, x.s, h1, CKA_VENDOR_SKS_CARD_HANDLE), 0);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, h1, CKA_SENSITIVE), CK_TRUE);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, h1, CKA_EXTRACTABLE), CK_FALSE);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, h1, CKA_TOKEN), CK_FALSE);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, h1, CKA_UNWRAP), CK_TRUE);
    static const CK_ATTRIBUTE_TYPE unused[] = {CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN,
                                               CKA_VERIFY,  CKA_WRAP,    CKA_DERIVE};
    for (size_t i = 0; i < sizeof(unused) / sizeof(unused[0]); i++)
        ck_assert_uint_eq(tt_get_bool(x.f, x.s, h1, unused[i]), CK_FALSE);
    uint8_t value[64];
    CK_ATTRIBUTE va = {CKA_VALUE, value, sizeof(value)};
    TT_RV(x.f->C_GetAttributeValue(x.s, h1, &va, 1), CKR_ATTRIBUTE_SENSITIVE);
    ck_assert_uint_eq(va.ulValueLen, CK_UNAVAILABLE_INFORMATION);

    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    sks_writer cert, spki;
    sks_writer_init(&cert);
    sks_writer_init(&spki);
    ti_cert(k2, &cert);
    ti_spki(k2, &spki);
    inject_spec is = {.type = CKK_RSA, .id = "inj", .cert = &cert};
    TT_OK(inject(x.f, x.s, h1, s1, x.k1_pub, k2, &is, &k2h));

    /* The new key: what the module says of it, its public key, its certificate. */
    ck_assert_uint_eq(tt_get_ulong(x.f, x.s, k2h, CKA_CLASS), CKO_PRIVATE_KEY);
    ck_assert_uint_eq(tt_get_ulong(x.f, x.s, k2h, CKA_KEY_TYPE), CKK_RSA);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, k2h, CKA_TOKEN), CK_TRUE);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, k2h, CKA_PRIVATE), CK_TRUE);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, k2h, CKA_EXTRACTABLE), CK_FALSE);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, k2h, CKA_LOCAL), CK_FALSE);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, k2h, CKA_SIGN), CK_TRUE);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, k2h, CKA_DECRYPT), CK_TRUE); /* the RSA default */
    CK_OBJECT_HANDLE pub = tt_find_id(x.f, x.s, CKO_PUBLIC_KEY, "inj");
    tt_assert_bytes(x.f, x.s, pub, CKA_PUBLIC_KEY_INFO, spki.buf, spki.len);
    CK_OBJECT_HANDLE ch = tt_find_id(x.f, x.s, CKO_CERTIFICATE, "inj");
    tt_assert_bytes(x.f, x.s, ch, CKA_VALUE, cert.buf, cert.len);
    tt_sign_and_verify(x.f, x.s, k2h, k2);

    /*
     * S1 served its one blob: the module shows it names no card key any
     * more, and a second injection with it (a relay replaying the blob
     * under another ID) is refused without creating anything.
     */
    ck_assert_uint_eq(tt_get_ulong(x.f, x.s, h1, CKA_VENDOR_SKS_CARD_HANDLE), 0);
    CK_ULONG keys = tt_count_id(x.f, x.s, CKO_PRIVATE_KEY, NULL, NULL);
    is.id = "inj-twice";
    is.cert = NULL;
    CK_OBJECT_HANDLE again;
    TT_RV(inject(x.f, x.s, h1, s1, x.k1_pub, k2, &is, &again), CKR_UNWRAPPING_KEY_HANDLE_INVALID);
    ck_assert_uint_eq(tt_count_id(x.f, x.s, CKO_PRIVATE_KEY, NULL, NULL), keys);
    ck_assert_uint_eq(tt_count_id(x.f, x.s, CKO_PRIVATE_KEY, "inj-twice", NULL), 0);

    /* Another session sees the key too: it is a token object of the card. */
    CK_SESSION_HANDLE s2 = tt_open(x.f, tt_slot_by_label(x.f, "pin"));
    ck_assert_uint_eq(tt_find_id(x.f, s2, CKO_PRIVATE_KEY, "inj"), k2h);
    TT_OK(x.f->C_CloseSession(s2));

    sks_writer_free(&cert);
    sks_writer_free(&spki);
    EVP_PKEY_free(k2);
    finish(&x);
}
END_TEST

/* ECDH S1 under an EC K1 without PIN; EC keys of both curves, each under its own S1. */
START_TEST(t_ecdh_session_key_ec_injection)
{
    uint8_t s1[TI_S1_LEN];
    CK_OBJECT_HANDLE h1, k2h;
    fixture x;
    begin(&x, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, NULL, 0);
    TT_OK(unwrap_ecdh_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &h1));
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, h1, CKA_PRIVATE), CK_FALSE); /* as K1 */
    static const char *curves[] = {"P-256", "P-384"}, *ids[] = {"p256", "p384"};
    for (size_t i = 0; i < 2; i++) {
        if (i > 0)
            TT_OK(unwrap_ecdh_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &h1));
        EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
        sks_writer cert;
        sks_writer_init(&cert);
        ti_cert(k2, &cert);
        inject_spec is = {.type = CKK_EC, .id = ids[i], .cert = &cert};
        TT_OK(inject(x.f, x.s, h1, s1, x.k1_pub, k2, &is, &k2h));
        ck_assert_uint_eq(tt_get_ulong(x.f, x.s, k2h, CKA_KEY_TYPE), CKK_EC);
        ck_assert_uint_eq(tt_get_bool(x.f, x.s, k2h, CKA_DERIVE), CK_TRUE); /* the EC default */
        ck_assert_uint_eq(tt_count_id(x.f, x.s, CKO_CERTIFICATE, ids[i], NULL), 1);
        tt_sign_and_verify(x.f, x.s, k2h, k2);
        sks_writer_free(&cert);
        EVP_PKEY_free(k2);
    }
    /* Without a certificate path there is no certificate object. */
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    inject_spec is = {.type = CKK_EC, .id = "nocert", .sign = CK_TRUE, .usage_given = 1};
    TT_OK(unwrap_ecdh_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &h1));
    TT_OK(inject(x.f, x.s, h1, s1, x.k1_pub, k2, &is, &k2h));
    ck_assert_uint_eq(tt_count_id(x.f, x.s, CKO_CERTIFICATE, "nocert", NULL), 0);
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, k2h, CKA_DERIVE), CK_FALSE);
    tt_sign_and_verify(x.f, x.s, k2h, k2);
    EVP_PKEY_free(k2);
    finish(&x);
}
END_TEST

/* S1 is refused by every standard mechanism and cannot be copied, changed or forged. */
START_TEST(t_s1_only_for_injection)
{
    uint8_t s1[TI_S1_LEN];
    CK_OBJECT_HANDLE h1, aes, out;
    fixture x;
    begin(&x, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, PIN, 0);
    TT_OK(unwrap_ecdh_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &h1));
    CK_ULONG len32 = 32;
    CK_ATTRIBUTE aes_t[] = {{CKA_VALUE_LEN, &len32, sizeof(len32)},
                            {CKA_EXTRACTABLE, &yes, sizeof(yes)}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    TT_OK(x.f->C_GenerateKey(x.s, &gen, aes_t, 2, &aes));

    uint8_t iv[16] = {0}, buf[256];
    CK_ULONG buf_len = sizeof(buf);
    CK_MECHANISM cbc = {CKM_AES_CBC, iv, sizeof(iv)};
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_MECHANISM wrap = {CKM_AES_KEY_WRAP, NULL, 0};
    TT_RV(x.f->C_EncryptInit(x.s, &cbc, h1), CKR_KEY_FUNCTION_NOT_PERMITTED);
    TT_RV(x.f->C_DecryptInit(x.s, &ecb, h1), CKR_KEY_FUNCTION_NOT_PERMITTED);
    TT_RV(x.f->C_WrapKey(x.s, &wrap, h1, aes, buf, &buf_len), CKR_KEY_FUNCTION_NOT_PERMITTED);
    TT_RV(x.f->C_UnwrapKey(x.s, &wrap, h1, buf, 40, s1_template, 2, &out),
          CKR_KEY_FUNCTION_NOT_PERMITTED);
    CK_ECDH1_DERIVE_PARAMS dp = {CKD_NULL, 0, NULL, 65, buf};
    CK_MECHANISM derive = {CKM_ECDH1_DERIVE, &dp, sizeof(dp)};
    TT_RV(x.f->C_DeriveKey(x.s, &derive, h1, s1_template, 2, &out), CKR_KEY_FUNCTION_NOT_PERMITTED);
    /* Nor can it leave as the key being wrapped or digested. */
    buf_len = sizeof(buf);
    CK_RV rv = x.f->C_WrapKey(x.s, &wrap, aes, h1, buf, &buf_len);
    ck_assert_msg(rv == CKR_KEY_UNEXTRACTABLE || rv == CKR_KEY_NOT_WRAPPABLE, "wrap S1: 0x%lx",
                  (unsigned long)rv);
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    TT_OK(x.f->C_DigestInit(x.s, &sha));
    TT_RV(x.f->C_DigestKey(x.s, h1), CKR_KEY_INDIGESTIBLE);
    /* Copy, change, forge. */
    TT_RV(x.f->C_CopyObject(x.s, h1, NULL, 0, &out), CKR_ACTION_PROHIBITED);
    CK_ATTRIBUTE off = {CKA_VENDOR_SKS_INJECTION_ONLY, &no, sizeof(no)};
    TT_RV(x.f->C_SetAttributeValue(x.s, h1, &off, 1), CKR_ACTION_PROHIBITED);
    CK_ATTRIBUTE forged[] = {{CKA_CLASS, &secret_class, sizeof(secret_class)},
                             {CKA_KEY_TYPE, &aes_type, sizeof(aes_type)},
                             {CKA_VALUE, s1, sizeof(s1)},
                             {CKA_VENDOR_SKS_INJECTION_ONLY, &yes, sizeof(yes)}};
    TT_RV(x.f->C_CreateObject(x.s, forged, 4, &out), CKR_ATTRIBUTE_READ_ONLY);
    /* An ordinary AES key is no injection key, even with the right value. */
    forged[3].type = CKA_UNWRAP;
    CK_OBJECT_HANDLE plain_aes;
    TT_OK(x.f->C_CreateObject(x.s, forged, 4, &plain_aes));
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    inject_spec is = {.type = CKK_EC, .id = "inj"};
    TT_RV(inject(x.f, x.s, plain_aes, s1, x.k1_pub, k2, &is, &out),
          CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    /* S1 itself still works. */
    TT_OK(inject(x.f, x.s, h1, s1, x.k1_pub, k2, &is, &out));
    tt_sign_and_verify(x.f, x.s, out, k2);

    /* Templates that would make S1 anything else. */
    static const struct {
        CK_ATTRIBUTE_TYPE type;
        CK_BBOOL value;
        CK_RV want;
    } bad[] = {{CKA_EXTRACTABLE, CK_TRUE, CKR_TEMPLATE_INCONSISTENT},
               {CKA_SENSITIVE, CK_FALSE, CKR_TEMPLATE_INCONSISTENT},
               {CKA_ENCRYPT, CK_TRUE, CKR_TEMPLATE_INCONSISTENT},
               {CKA_UNWRAP, CK_FALSE, CKR_TEMPLATE_INCONSISTENT},
               {CKA_TOKEN, CK_TRUE, CKR_ATTRIBUTE_VALUE_INVALID}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CK_BBOOL v = bad[i].value;
        CK_ATTRIBUTE t[] = {s1_template[0], s1_template[1], {bad[i].type, &v, sizeof(v)}};
        uint8_t point[TI_POINT_LEN];
        ti_ecdh_s1(x.k1_pub, point, s1);
        CK_SKS_ECDH_SESSION_KEY_PARAMS p = {point, sizeof(point)};
        CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION_KEY_ECDH, &p, sizeof(p)};
        TT_RV(x.f->C_UnwrapKey(x.s, &m, x.k1h, NULL, 0, t, 3, &out), bad[i].want);
    }
    EVP_PKEY_free(k2);
    finish(&x);
}
END_TEST

/* Refusals of both steps; afterwards the token holds no key it did not hold before. */
START_TEST(t_refusals_create_nothing)
{
    tl_key other;
    uint8_t s1[TI_S1_LEN];
    CK_OBJECT_HANDLE h1, out;
    fixture x;
    begin_card(&x, SKS_KEYALG_RSA2048, SKS_USAGE_DECRYPT, PIN, 0);
    provision(&x.e, SKS_KEYALG_RSA2048, SKS_USAGE_SIGN, NULL, 0, 1, &other);
    begin_module(&x);
    EVP_PKEY *k1_pub = x.k1_pub;
    CK_ULONG keys_before = tt_count_id(x.f, x.s, CKO_PRIVATE_KEY, NULL, NULL);

    /* Session key: a K1 without decrypt usage, of the wrong type, of another card. */
    CK_SESSION_HANDLE s_nopin = tt_user_session(x.f, "SKS (no PIN)", NULL);
    CK_OBJECT_HANDLE sign_only = tt_find_id(x.f, s_nopin, CKO_PRIVATE_KEY, "key1");
    TT_RV(unwrap_rsa_s1(x.f, s_nopin, sign_only, other.public_key[0], s1, &h1),
          CKR_KEY_FUNCTION_NOT_PERMITTED);
    uint8_t point[TI_POINT_LEN];
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ti_ecdh_s1(ec, point, s1);
    CK_SKS_ECDH_SESSION_KEY_PARAMS ep = {point, sizeof(point)};
    CK_MECHANISM em = {CKM_VENDOR_SKS_SESSION_KEY_ECDH, &ep, sizeof(ep)};
    TT_RV(x.f->C_UnwrapKey(x.s, &em, x.k1h, NULL, 0, s1_template, 3, &h1),
          CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    EVP_PKEY *another_card = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    TT_RV(unwrap_rsa_s1(x.f, x.s, x.k1h, another_card, s1, &h1), CKR_WRAPPED_KEY_INVALID);
    /* A wrapped S1 of the wrong length, and a wrapped key of 16 bytes. */
    sks_writer enc;
    sks_writer_init(&enc);
    ti_oaep_wrap(k1_pub, s1, 16, &enc);
    CK_MECHANISM rm = {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, NULL, 0};
    TT_RV(x.f->C_UnwrapKey(x.s, &rm, x.k1h, enc.buf, enc.len - 1, s1_template, 3, &h1),
          CKR_WRAPPED_KEY_LEN_RANGE);
    TT_RV(x.f->C_UnwrapKey(x.s, &rm, x.k1h, enc.buf, enc.len, s1_template, 3, &h1),
          CKR_WRAPPED_KEY_INVALID);
    sks_writer_free(&enc);

    /*
     * Injection: tampered blobs, a blob for another K1, or sealed for
     * another ID or KeyUsage than the template's (a relay changing them),
     * certificates that do not fit. Each try the card decrypts spends its
     * S1, so each takes a fresh one.
     */
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *stranger = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    sks_writer cert, stranger_cert;
    sks_writer_init(&cert);
    sks_writer_init(&stranger_cert);
    ti_cert(k2, &cert);
    ti_cert(stranger, &stranger_cert);
    for (int t = 1; t <= 3; t++) {
        inject_spec is = {.type = CKK_EC, .id = "inj", .cert = &cert, .tamper = t};
        TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, k1_pub, s1, &h1));
        TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_WRAPPED_KEY_INVALID);
        /* ... and the relay cannot try again, not even with the blob as it was made. */
        is.tamper = 0;
        TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_UNWRAPPING_KEY_HANDLE_INVALID);
    }
    inject_spec is = {.type = CKK_EC, .id = "inj", .cert = &cert, .aad_key = another_card};
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, k1_pub, s1, &h1));
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_WRAPPED_KEY_INVALID);
    is.aad_key = NULL;
    is.blob_id = "inj-issuer";
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, k1_pub, s1, &h1));
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_WRAPPED_KEY_INVALID);
    is.blob_id = NULL;
    is.blob_usage = SKS_USAGE_SIGN; /* the template asks for sign and key agreement */
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, k1_pub, s1, &h1));
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_WRAPPED_KEY_INVALID);
    is.blob_usage = 0;
    is.cert = &stranger_cert;
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, k1_pub, s1, &h1));
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_MECHANISM_PARAM_INVALID);
    sks_writer junk;
    sks_writer_init(&junk);
    sks_put_raw(&junk, "\x30\x03\x02\x01\x01", 5);
    is.cert = &junk;
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, k1_pub, s1, &h1));
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_MECHANISM_PARAM_INVALID);
    is.cert = &cert;
    /* Templates: the wrong key type (by usage, and sign-only). */
    is.type = CKK_RSA;
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, k1_pub, s1, &h1));
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_WRAPPED_KEY_INVALID);
    inject_spec sign_only_rsa = {.type = CKK_RSA, .id = "inj", .sign = CK_TRUE, .usage_given = 1};
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, k1_pub, s1, &h1));
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &sign_only_rsa, &out), CKR_WRAPPED_KEY_INVALID);
    /* Refused by the module before the card sees them (S1 kept): exportable, an ID in use, no ID.
     */
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, k1_pub, s1, &h1));
    is.type = CKK_EC;
    is.extractable = CK_TRUE;
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_ATTRIBUTE_VALUE_INVALID);
    is.extractable = CK_FALSE;
    is.id = "key1";
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_ATTRIBUTE_VALUE_INVALID);
    is.id = "inj";
    is.omit_id = 1;
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_TEMPLATE_INCOMPLETE);
    is.omit_id = 0;
    /* A read-only session cannot make a token key. */
    CK_SESSION_HANDLE ro;
    TT_OK(x.f->C_OpenSession(tt_slot_by_label(x.f, "pin"), CKF_SERIAL_SESSION, NULL, NULL, &ro));
    CK_OBJECT_HANDLE h1_ro;
    uint8_t s1_ro[TI_S1_LEN];
    TT_OK(unwrap_rsa_s1(x.f, ro, x.k1h, k1_pub, s1_ro, &h1_ro));
    TT_RV(inject(x.f, ro, h1_ro, s1_ro, k1_pub, k2, &is, &out), CKR_SESSION_READ_ONLY);

    ck_assert_uint_eq(tt_count_id(x.f, x.s, CKO_PRIVATE_KEY, NULL, NULL), keys_before);
    ck_assert_uint_eq(tt_count_id(x.f, x.s, CKO_PRIVATE_KEY, "inj", NULL), 0);
    ck_assert_uint_eq(tt_count_id(x.f, x.s, CKO_CERTIFICATE, "inj", NULL), 0);
    /* The S1 the module refused before the card saw it still injects the right key, once. */
    TT_OK(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out));
    ck_assert_uint_eq(tt_count_id(x.f, x.s, CKO_PRIVATE_KEY, NULL, NULL), keys_before + 1);
    tt_sign_and_verify(x.f, x.s, out, k2);
    is.id = "inj-again";
    TT_RV(inject(x.f, x.s, h1, s1, k1_pub, k2, &is, &out), CKR_UNWRAPPING_KEY_HANDLE_INVALID);
    ck_assert_uint_eq(tt_count_id(x.f, x.s, CKO_PRIVATE_KEY, NULL, NULL), keys_before + 1);

    sks_writer_free(&cert);
    sks_writer_free(&stranger_cert);
    sks_writer_free(&junk);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(stranger);
    EVP_PKEY_free(another_card);
    tl_key_free(&other);
    finish(&x);
}
END_TEST

/* Fill the card's places for session keys through `s`; the one after is refused. */
static void fill_session_keys(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k1h,
                              EVP_PKEY *k1_pub, CK_OBJECT_HANDLE h[SKS_SESSION_KEYS_MAX])
{
    uint8_t s1[TI_S1_LEN];
    CK_OBJECT_HANDLE extra;
    for (size_t i = 0; i < SKS_SESSION_KEYS_MAX; i++)
        TT_OK(unwrap_ecdh_s1(f, s, k1h, k1_pub, s1, &h[i]));
    TT_RV(unwrap_ecdh_s1(f, s, k1h, k1_pub, s1, &extra), CKR_DEVICE_MEMORY);
}

/* S1 goes from the card with its object: destroyed, its session closed, logout. */
START_TEST(t_session_keys_released)
{
    CK_OBJECT_HANDLE h[SKS_SESSION_KEYS_MAX], one;
    uint8_t s1[TI_S1_LEN];
    fixture x;
    begin(&x, SKS_KEYALG_EC_P256, SKS_USAGE_KEY_AGREEMENT, PIN, 0);
    fill_session_keys(x.f, x.s, x.k1h, x.k1_pub, h);
    /* C_DestroyObject frees one place. */
    TT_OK(x.f->C_DestroyObject(x.s, h[2]));
    TT_OK(unwrap_ecdh_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &one));
    /* Closing the session frees them all (a second session keeps the login). */
    CK_SESSION_HANDLE b = tt_open(x.f, tt_slot_by_label(x.f, "pin"));
    TT_OK(x.f->C_CloseSession(x.s));
    fill_session_keys(x.f, b, x.k1h, x.k1_pub, h);
    /* Logout destroys private session objects: S1 is private like K1. */
    TT_OK(x.f->C_Logout(b));
    CK_ULONG size;
    TT_RV(x.f->C_GetObjectSize(b, h[0], &size), CKR_OBJECT_HANDLE_INVALID);
    TT_OK(x.f->C_Login(b, CKU_USER, U(PIN), 4));
    fill_session_keys(x.f, b, x.k1h, x.k1_pub, h);
    finish(&x);
}
END_TEST

/* K1 under a policy without PIN caching: each import uses up the login's verification. */
START_TEST(t_pin_of_k1)
{
    CK_OBJECT_HANDLE h1;
    uint8_t s1[TI_S1_LEN];
    fixture x;
    begin(&x, SKS_KEYALG_RSA2048, SKS_USAGE_DECRYPT, PIN, 1);
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &h1));
    TT_RV(unwrap_rsa_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &h1), CKR_USER_NOT_LOGGED_IN);
    TT_OK(x.f->C_Logout(x.s));
    /* Logged out, K1 is not even visible. */
    TT_RV(unwrap_rsa_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &h1), CKR_UNWRAPPING_KEY_HANDLE_INVALID);
    TT_OK(x.f->C_Login(x.s, CKU_USER, U(PIN), 4));
    TT_OK(unwrap_rsa_s1(x.f, x.s, x.k1h, x.k1_pub, s1, &h1));
    /* The injected key joins K1's policy: CKA_ALWAYS_AUTHENTICATE like K1. */
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    inject_spec is = {.type = CKK_EC, .id = "inj"};
    CK_OBJECT_HANDLE k2h;
    TT_OK(inject(x.f, x.s, h1, s1, x.k1_pub, k2, &is, &k2h));
    ck_assert_uint_eq(tt_get_bool(x.f, x.s, k2h, CKA_ALWAYS_AUTHENTICATE), CK_TRUE);
    EVP_PKEY_free(k2);
    finish(&x);
}
END_TEST

static Suite *token_inject_suite(void)
{
    Suite *s = suite_create("token-inject");
    TCase *tc = tcase_create("token-inject");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_rsa_session_key_rsa_injection);
    tcase_add_test(tc, t_ecdh_session_key_ec_injection);
    tcase_add_test(tc, t_s1_only_for_injection);
    tcase_add_test(tc, t_refusals_create_nothing);
    tcase_add_test(tc, t_session_keys_released);
    tcase_add_test(tc, t_pin_of_k1);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run_suite(token_inject_suite());
}
