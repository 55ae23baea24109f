/*
 * issuer-prov-driver.c - the two drivers of the issuer side
 * (issuer-prov-driver.h).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>

#include "issuer-prov-driver.h"
#include "test-token-util.h"
#include "token/tok_issuer_prov_core.h"

/* ---- driver 1: the core functions ------------------------------------------ */

static tok_iprov *core_ip;

static void core_setup(void)
{
    core_ip = NULL;
}

static void core_teardown(void)
{
    tok_iprov_free(core_ip);
    core_ip = NULL;
}

static void *core_key(EVP_PKEY *key)
{
    return key;
}

static void *core_anchor(X509 *ca)
{
    return ca;
}

static CK_RV core_open(CK_SKS_ISSUER_SESSION_PARAMS *p, void *key)
{
    tok_iprov_free(core_ip);
    core_ip = NULL;
    return tok_iprov_new(p, key, &core_ip);
}

static CK_RV core_accept(void *anchor, CK_SKS_SESSION_PARAMS *card)
{
    return tok_iprov_accept(core_ip, anchor, card);
}

/* The core takes the import key as an EVP_PKEY: tests pass it in hPrivateKey. */
static CK_RV core_call(CK_MECHANISM_TYPE mech, CK_SKS_ISSUER_CALL_PARAMS *call)
{
    EVP_PKEY *key = (EVP_PKEY *)(uintptr_t)call->hPrivateKey;
    CK_SKS_ISSUER_CALL_PARAMS copy = *call;
    copy.hPrivateKey = CK_INVALID_HANDLE;
    return tok_iprov_prepare(core_ip, mech, &copy, key);
}

static CK_RV core_verify_key(CK_SKS_KEY_PAIR_PARAMS *card, uint8_t **spki, size_t *spki_len)
{
    EVP_PKEY *pub = NULL;
    const char *id = NULL, *label = NULL;
    *spki = NULL;
    *spki_len = 0;
    CK_RV rv = tok_iprov_verify_key_pair(core_ip, card, &pub, &id, &label);
    if (rv == CKR_OK && pub != NULL) {
        int n = i2d_PUBKEY(pub, spki);
        ck_assert_int_gt(n, 0);
        *spki_len = (size_t)n;
        ck_assert_uint_eq(strlen(id), card->ulIdLen);
        ck_assert(memcmp(id, card->pId, card->ulIdLen) == 0);
    }
    EVP_PKEY_free(pub);
    return rv;
}

static CK_RV core_verify_close(CK_SKS_CLOSE_PARAMS *card)
{
    return tok_iprov_verify_close(core_ip, card);
}

static void *core_private_key(EVP_PKEY *key)
{
    return key;
}

static CK_RV core_declare_key(const char *id, const uint8_t *spki, size_t spki_len)
{
    const unsigned char *q = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &q, (long)spki_len);
    ck_assert_ptr_nonnull(pub);
    CK_SKS_DECLARE_KEY_PARAMS p = {(CK_BYTE_PTR)id, strlen(id), CK_INVALID_HANDLE};
    CK_RV rv = tok_iprov_declare_key(core_ip, &p, pub);
    EVP_PKEY_free(pub);
    return rv;
}

const issuer_driver core_driver = {
    .name = "core",
    .setup = core_setup,
    .teardown = core_teardown,
    .issuer_key = core_key,
    .anchor = core_anchor,
    .open = core_open,
    .accept = core_accept,
    .call = core_call,
    .verify_key = core_verify_key,
    .verify_close = core_verify_close,
    .private_key = core_private_key,
    .declare_key = core_declare_key,
};

/* ---- driver 2: the module on its issuer token ------------------------------- */

#define SO_PIN "so-secret"

static tt_env mod_env;
CK_FUNCTION_LIST *p11;
CK_SESSION_HANDLE mod_session;
CK_SLOT_ID mod_slot;
CK_OBJECT_HANDLE mod_prov;

/* The issuer token (the only slot of no-card mode), initialised, the user logged in. */
static void mod_setup(void)
{
    CK_SLOT_ID ids[4];
    CK_ULONG n;
    tt_env_init(&mod_env, "transport = none");
    p11 = tt_init();
    tt_slots(p11, ids, 4, &n);
    ck_assert_uint_eq(n, 1);
    mod_slot = ids[0];
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof label);
    memcpy(label, "issuer", 6);
    TT_OK(p11->C_InitToken(mod_slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label));
    mod_session = tt_open(p11, mod_slot);
    TT_OK(p11->C_Login(mod_session, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)));
    TT_OK(p11->C_InitPIN(mod_session, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
    TT_OK(p11->C_Logout(mod_session));
    TT_OK(p11->C_Login(mod_session, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
    mod_prov = CK_INVALID_HANDLE;
}

static void mod_teardown(void)
{
    TT_OK(p11->C_Finalize(NULL));
    tt_env_free(&mod_env);
}

/* A big-endian parameter of a key as an attribute value (buf holds it). */
static CK_ULONG bn_param(EVP_PKEY *key, const char *name, uint8_t *buf, size_t cap)
{
    BIGNUM *bn = NULL;
    ck_assert(EVP_PKEY_get_bn_param(key, name, &bn) == 1);
    int n = BN_num_bytes(bn);
    ck_assert(n > 0 && (size_t)n <= cap);
    BN_bn2bin(bn, buf);
    BN_clear_free(bn);
    return (CK_ULONG)n;
}

/*
 * An OpenSSL key as a software private key object of the issuer token
 * (C_CreateObject with its components), usable as `usage` says; a token
 * object with CKA_ID `token_id`, or a session object (NULL).
 */
static CK_OBJECT_HANDLE import_key(EVP_PKEY *key, CK_ATTRIBUTE_TYPE usage, CK_BBOOL extractable,
                                   const char *token_id)
{
    /* DER of the OID prime256v1 (1.2.840.10045.3.1.7), from RFC 5480. */
    static const uint8_t p256_oid[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
    static CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    static CK_BBOOL yes = CK_TRUE;
    CK_KEY_TYPE kt = EVP_PKEY_is_a(key, "RSA") ? CKK_RSA : CKK_EC;
    uint8_t v[8][512];
    CK_ATTRIBUTE t[16] = {
        {CKA_CLASS, &cls, sizeof cls},     {CKA_KEY_TYPE, &kt, sizeof kt},
        {usage, &yes, sizeof yes},         {CKA_EXTRACTABLE, &extractable, sizeof extractable},
        {CKA_SENSITIVE, &yes, sizeof yes},
    };
    CK_ULONG n = 5;
    if (token_id != NULL) {
        t[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof yes};
        t[n++] = (CK_ATTRIBUTE){CKA_ID, (void *)token_id, strlen(token_id)};
    }
    if (kt == CKK_EC) {
        t[n++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)p256_oid, sizeof p256_oid};
        t[n] = (CK_ATTRIBUTE){CKA_VALUE, v[0], 0};
        t[n].ulValueLen = bn_param(key, "priv", v[0], sizeof v[0]);
        n++;
    } else {
        static const struct {
            CK_ATTRIBUTE_TYPE type;
            const char *name;
        } rsa[] = {
            {CKA_MODULUS, "n"},
            {CKA_PUBLIC_EXPONENT, "e"},
            {CKA_PRIVATE_EXPONENT, "d"},
            {CKA_PRIME_1, "rsa-factor1"},
            {CKA_PRIME_2, "rsa-factor2"},
            {CKA_EXPONENT_1, "rsa-exponent1"},
            {CKA_EXPONENT_2, "rsa-exponent2"},
            {CKA_COEFFICIENT, "rsa-coefficient1"},
        };
        for (size_t i = 0; i < 8; i++) {
            t[n] = (CK_ATTRIBUTE){rsa[i].type, v[i], 0};
            t[n].ulValueLen = bn_param(key, rsa[i].name, v[i], sizeof v[i]);
            n++;
        }
    }
    CK_OBJECT_HANDLE h;
    TT_OK(p11->C_CreateObject(mod_session, t, n, &h));
    OPENSSL_cleanse(v, sizeof v);
    return h;
}

CK_OBJECT_HANDLE mod_import_key(EVP_PKEY *key, CK_ATTRIBUTE_TYPE usage, CK_BBOOL extractable)
{
    return import_key(key, usage, extractable, NULL);
}

CK_OBJECT_HANDLE mod_import_token_key(EVP_PKEY *key, CK_ATTRIBUTE_TYPE usage, const char *id)
{
    return import_key(key, usage, CK_FALSE, id);
}

void mod_restart(void)
{
    TT_OK(p11->C_Finalize(NULL));
    TT_OK(p11->C_Initialize(NULL));
    mod_session = tt_open(p11, mod_slot);
    TT_OK(p11->C_Login(mod_session, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
    mod_prov = CK_INVALID_HANDLE;
}

static void *mod_key(EVP_PKEY *key)
{
    if (key == NULL)
        return (void *)(uintptr_t)CK_INVALID_HANDLE;
    CK_ATTRIBUTE_TYPE usage = EVP_PKEY_is_a(key, "RSA") ? CKA_DECRYPT : CKA_DERIVE;
    return (void *)(uintptr_t)mod_import_key(key, usage, CK_FALSE);
}

/* A certificate object (session object) of the issuer token. */
static CK_OBJECT_HANDLE mod_cert(X509 *x)
{
    static CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    static CK_CERTIFICATE_TYPE ct = CKC_X_509;
    unsigned char *der = NULL, *subject = NULL;
    int n = i2d_X509(x, &der);
    int sn = i2d_X509_NAME(X509_get_subject_name(x), &subject);
    ck_assert(n > 0 && sn > 0);
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_CERTIFICATE_TYPE, &ct, sizeof ct},
        {CKA_VALUE, der, (CK_ULONG)n},
        {CKA_SUBJECT, subject, (CK_ULONG)sn},
    };
    CK_OBJECT_HANDLE h;
    TT_OK(p11->C_CreateObject(mod_session, t, 4, &h));
    OPENSSL_free(der);
    OPENSSL_free(subject);
    return h;
}

static void *mod_anchor(X509 *ca)
{
    return (void *)(uintptr_t)mod_cert(ca);
}

static CK_RV mod_open(CK_SKS_ISSUER_SESSION_PARAMS *p, void *key)
{
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION, p, sizeof *p};
    p->hIssuerKey = (CK_OBJECT_HANDLE)(uintptr_t)key;
    if (mod_prov != CK_INVALID_HANDLE)
        TT_OK(p11->C_DestroyObject(mod_session, mod_prov));
    mod_prov = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = p11->C_GenerateKey(mod_session, &m, NULL, 0, &h);
    if (rv == CKR_OK) {
        ck_assert(h != CK_INVALID_HANDLE);
        mod_prov = h;
    }
    return rv;
}

/* C_DeriveKey of an issuer-side mechanism on the provisioning object; *out its result. */
CK_RV mod_derive(CK_MECHANISM_TYPE mech, void *param, CK_ULONG len, CK_ATTRIBUTE *t, CK_ULONG n,
                 CK_OBJECT_HANDLE *out)
{
    CK_MECHANISM m = {mech, param, len};
    *out = (CK_OBJECT_HANDLE)-1;
    CK_RV rv = p11->C_DeriveKey(mod_session, &m, mod_prov, t, n, out);
    return rv;
}

/* A derive that makes no object: the handle comes back CK_INVALID_HANDLE. */
static CK_RV mod_derive_none(CK_MECHANISM_TYPE mech, void *param, CK_ULONG len)
{
    CK_OBJECT_HANDLE h;
    CK_RV rv = mod_derive(mech, param, len, NULL, 0, &h);
    if (rv == CKR_OK)
        ck_assert_uint_eq(h, CK_INVALID_HANDLE);
    return rv;
}

static CK_RV mod_accept(void *anchor, CK_SKS_SESSION_PARAMS *card)
{
    CK_SKS_SESSION_ACCEPT_PARAMS p = {(CK_OBJECT_HANDLE)(uintptr_t)anchor, card};
    return mod_derive_none(CKM_VENDOR_SKS_SESSION_ACCEPT, &p, sizeof p);
}

CK_RV mod_call(CK_MECHANISM_TYPE mech, CK_SKS_ISSUER_CALL_PARAMS *call)
{
    return mod_derive_none(mech, call, sizeof *call);
}

/* The public key object VERIFY_KEY_PAIR makes: its SPKI, its ID and label checked. */
static CK_RV mod_verify_key(CK_SKS_KEY_PAIR_PARAMS *card, uint8_t **spki, size_t *spki_len)
{
    CK_OBJECT_HANDLE h;
    *spki = NULL;
    *spki_len = 0;
    CK_RV rv = mod_derive(CKM_VENDOR_SKS_VERIFY_KEY_PAIR, card, sizeof *card, NULL, 0, &h);
    if (rv != CKR_OK || h == CK_INVALID_HANDLE)
        return rv;
    CK_OBJECT_CLASS cls = 0;
    uint8_t id[64], label[300], info[CKS_PUBLIC_KEY_MAX];
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_ID, id, sizeof id},
        {CKA_LABEL, label, sizeof label},
        {CKA_PUBLIC_KEY_INFO, info, sizeof info},
    };
    TT_OK(p11->C_GetAttributeValue(mod_session, h, t, 4));
    ck_assert_uint_eq(cls, CKO_PUBLIC_KEY);
    ck_assert_uint_eq(t[1].ulValueLen, card->ulIdLen);
    ck_assert(memcmp(id, card->pId, card->ulIdLen) == 0);
    ck_assert_uint_eq(t[2].ulValueLen, card->ulFriendlyNameLen);
    ck_assert(memcmp(label, card->pFriendlyName, card->ulFriendlyNameLen) == 0);
    *spki = OPENSSL_malloc(t[3].ulValueLen);
    ck_assert_ptr_nonnull(*spki);
    memcpy(*spki, info, t[3].ulValueLen);
    *spki_len = t[3].ulValueLen;
    return rv;
}

static CK_RV mod_verify_close(CK_SKS_CLOSE_PARAMS *card)
{
    return mod_derive_none(CKM_VENDOR_SKS_VERIFY_CLOSE, card, sizeof *card);
}

static void *mod_private_key(EVP_PKEY *key)
{
    return (void *)(uintptr_t)mod_import_key(key, CKA_SIGN, CK_TRUE);
}

CK_OBJECT_HANDLE mod_find_public_key(const char *id, const uint8_t *spki, size_t spki_len)
{
    static CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_ID, (void *)id, strlen(id)},
        {CKA_PUBLIC_KEY_INFO, (void *)spki, spki_len},
    };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    TT_OK(p11->C_FindObjectsInit(mod_session, t, 3));
    TT_OK(p11->C_FindObjects(mod_session, found, 2, &n));
    TT_OK(p11->C_FindObjectsFinal(mod_session));
    ck_assert_uint_eq(n, 1);
    return found[0];
}

static CK_RV mod_declare_key(const char *id, const uint8_t *spki, size_t spki_len)
{
    CK_SKS_DECLARE_KEY_PARAMS p = {(CK_BYTE_PTR)id, strlen(id),
                                   mod_find_public_key(id, spki, spki_len)};
    return mod_derive_none(CKM_VENDOR_SKS_DECLARE_KEY, &p, sizeof p);
}

const issuer_driver module_driver = {
    .name = "module",
    .setup = mod_setup,
    .teardown = mod_teardown,
    .issuer_key = mod_key,
    .anchor = mod_anchor,
    .open = mod_open,
    .accept = mod_accept,
    .call = mod_call,
    .verify_key = mod_verify_key,
    .verify_close = mod_verify_close,
    .private_key = mod_private_key,
    .declare_key = mod_declare_key,
};
