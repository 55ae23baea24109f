/*
 * test-token-objects.c - the object model: card keys as private key, public
 * key and certificate with the attributes docs/token.md promises (checked
 * against values computed here with OpenSSL from testlib's own records of
 * the keys, not from the module), private objects hidden until login,
 * finding by class/ID/label with an interrupted search, session objects that
 * die with their session, token objects stored on the card (create, read
 * back after a restart, change, copy, destroy), the attribute rules, and
 * changing a card key's label and ID.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "test-token-util.h"

#define PIN  "1234"
#define U(s) ((CK_UTF8CHAR_PTR)(s))

static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* Two EC P-256 sign keys "key1", "key2" under PIN policy "pin", friendly name "alice". */
static void provision(tt_env *e, tl_key *key, uint8_t flags)
{
    tl_key_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.pin = PIN;
    spec.user_modifiable = 1;
    spec.key_count = 2;
    spec.flags = flags;
    spec.friendly_name = "alice";
    tl_provision_key(e->card, &spec, key);
}

START_TEST(t_private_hidden_until_login)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", NULL);
    ck_assert_uint_eq(tt_count_id(f, s, CKO_PRIVATE_KEY, NULL, NULL), 0);
    ck_assert_uint_eq(tt_count_id(f, s, CKO_PUBLIC_KEY, NULL, NULL), 2);
    ck_assert_uint_eq(tt_count_id(f, s, CKO_CERTIFICATE, NULL, NULL), 2);
    CK_OBJECT_HANDLE all[32];
    ck_assert_uint_eq(tt_find(f, s, NULL, 0, all, 32), 4);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), 4));
    ck_assert_uint_eq(tt_count_id(f, s, CKO_PRIVATE_KEY, NULL, NULL), 2);
    ck_assert_uint_eq(tt_find(f, s, NULL, 0, all, 32), 6);
    CK_OBJECT_HANDLE priv = tt_find_id(f, s, CKO_PRIVATE_KEY, "key1");
    TT_OK(f->C_Logout(s));
    /* Its handle is no use without login either. */
    CK_ULONG size;
    TT_RV(f->C_GetObjectSize(s, priv, &size), CKR_OBJECT_HANDLE_INVALID);
    ck_assert_uint_eq(tt_count_id(f, s, CKO_PRIVATE_KEY, NULL, NULL), 0);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

START_TEST(t_card_key_attributes)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", PIN);
    CK_OBJECT_HANDLE priv = tt_find_id(f, s, CKO_PRIVATE_KEY, "key1");
    CK_OBJECT_HANDLE pub = tt_find_id(f, s, CKO_PUBLIC_KEY, "key1");
    CK_OBJECT_HANDLE cert = tt_find_id(f, s, CKO_CERTIFICATE, "key1");

    /* The private key. */
    ck_assert_uint_eq(tt_get_ulong(f, s, priv, CKA_KEY_TYPE), CKK_EC);
    ck_assert(tt_get_bool(f, s, priv, CKA_TOKEN));
    ck_assert(tt_get_bool(f, s, priv, CKA_PRIVATE));
    ck_assert(tt_get_bool(f, s, priv, CKA_SENSITIVE));
    ck_assert(tt_get_bool(f, s, priv, CKA_ALWAYS_SENSITIVE));
    ck_assert(!tt_get_bool(f, s, priv, CKA_EXTRACTABLE));
    ck_assert(tt_get_bool(f, s, priv, CKA_NEVER_EXTRACTABLE));
    ck_assert(tt_get_bool(f, s, priv, CKA_LOCAL)); /* generated on the card */
    ck_assert_uint_eq(tt_get_ulong(f, s, priv, CKA_KEY_GEN_MECHANISM), CKM_EC_KEY_PAIR_GEN);
    ck_assert(tt_get_bool(f, s, priv, CKA_SIGN));
    ck_assert(!tt_get_bool(f, s, priv, CKA_DECRYPT));
    ck_assert(!tt_get_bool(f, s, priv, CKA_DERIVE));
    ck_assert(!tt_get_bool(f, s, priv, CKA_ALWAYS_AUTHENTICATE));
    tt_assert_bytes(f, s, priv, CKA_LABEL, "alice", 5);
    /* P-256 is OID 1.2.840.10045.3.1.7 (RFC 5480), DER 06 08 2A 86 48 CE 3D 03 01 07. */
    static const uint8_t p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
    tt_assert_bytes(f, s, priv, CKA_EC_PARAMS, p256, sizeof(p256));
    uint8_t v[64];
    CK_ATTRIBUTE secret = {CKA_VALUE, v, sizeof(v)};
    TT_RV(f->C_GetAttributeValue(s, priv, &secret, 1), CKR_ATTRIBUTE_SENSITIVE);
    ck_assert_uint_eq(secret.ulValueLen, CK_UNAVAILABLE_INFORMATION);

    /* The public key: EC_POINT is a DER OCTET STRING (04 41) around the point. */
    uint8_t point[65 + 2];
    size_t point_len = 0;
    ck_assert(EVP_PKEY_get_octet_string_param(key.public_key[0], OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                              point + 2, sizeof(point) - 2, &point_len));
    ck_assert_uint_eq(point_len, 65);
    point[0] = 0x04;
    point[1] = 0x41;
    tt_assert_bytes(f, s, pub, CKA_EC_POINT, point, sizeof(point));
    tt_assert_bytes(f, s, pub, CKA_EC_PARAMS, p256, sizeof(p256));
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(key.public_key[0], &spki);
    tt_assert_bytes(f, s, pub, CKA_PUBLIC_KEY_INFO, spki, (size_t)spki_len);
    OPENSSL_free(spki);
    ck_assert(!tt_get_bool(f, s, pub, CKA_PRIVATE));
    ck_assert(tt_get_bool(f, s, pub, CKA_VERIFY));
    ck_assert(!tt_get_bool(f, s, pub, CKA_ENCRYPT));

    /* The certificate. */
    unsigned char *der = NULL;
    int der_len = i2d_X509(key.cert[0], &der);
    tt_assert_bytes(f, s, cert, CKA_VALUE, der, (size_t)der_len);
    uint8_t sha1[20];
    ck_assert(EVP_Digest(der, (size_t)der_len, sha1, NULL, EVP_sha1(), NULL));
    tt_assert_bytes(f, s, cert, CKA_CHECK_VALUE, sha1, 3);
    OPENSSL_free(der);
    unsigned char *name = NULL;
    int name_len = i2d_X509_NAME(X509_get_subject_name(key.cert[0]), &name);
    tt_assert_bytes(f, s, cert, CKA_SUBJECT, name, (size_t)name_len);
    tt_assert_bytes(f, s, priv, CKA_SUBJECT, name, (size_t)name_len);
    OPENSSL_free(name);
    name = NULL;
    name_len = i2d_X509_NAME(X509_get_issuer_name(key.cert[0]), &name);
    tt_assert_bytes(f, s, cert, CKA_ISSUER, name, (size_t)name_len);
    OPENSSL_free(name);
    ck_assert_uint_eq(tt_get_ulong(f, s, cert, CKA_CERTIFICATE_TYPE), CKC_X_509);
    ck_assert_uint_eq(tt_get_ulong(f, s, cert, CKA_CERTIFICATE_CATEGORY), 1);
    ck_assert(!tt_get_bool(f, s, cert, CKA_TRUSTED));
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

/* Migratable keys are extractable (and so never "never extractable"). */
START_TEST(t_migratable_key)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, SKS_KEYFLAG_MIGRATABLE | SKS_KEYFLAG_IMPORT_PRIVATE_KEY);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", PIN);
    CK_OBJECT_HANDLE priv = tt_find_id(f, s, CKO_PRIVATE_KEY, "key2");
    ck_assert(tt_get_bool(f, s, priv, CKA_EXTRACTABLE));
    ck_assert(!tt_get_bool(f, s, priv, CKA_NEVER_EXTRACTABLE));
    ck_assert(!tt_get_bool(f, s, priv, CKA_LOCAL)); /* imported */
    ck_assert_uint_eq(tt_get_ulong(f, s, priv, CKA_KEY_GEN_MECHANISM), CK_UNAVAILABLE_INFORMATION);
    /* Still sensitive: the private value never shows. */
    uint8_t v[64];
    CK_ATTRIBUTE secret = {CKA_VALUE, v, sizeof(v)};
    TT_RV(f->C_GetAttributeValue(s, priv, &secret, 1), CKR_ATTRIBUTE_SENSITIVE);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

START_TEST(t_get_attribute_semantics)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", NULL);
    CK_OBJECT_HANDLE pub = tt_find_id(f, s, CKO_PUBLIC_KEY, "key2");
    uint8_t small[2], label[16];
    CK_ULONG cls = 0;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},      {CKA_EC_POINT, small, sizeof(small)}, /* too small */
        {CKA_MODULUS, label, sizeof(label)},                    /* not an EC attribute */
        {CKA_LABEL, label, sizeof(label)},   {CKA_ID, NULL, 0}, /* length only */
    };
    CK_RV rv = f->C_GetAttributeValue(s, pub, t, 5);
    ck_assert(rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID);
    ck_assert_uint_eq(cls, CKO_PUBLIC_KEY);
    ck_assert_uint_eq(t[1].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    ck_assert_uint_eq(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
    ck_assert_uint_eq(t[3].ulValueLen, 5);
    ck_assert(memcmp(label, "alice", 5) == 0);
    ck_assert_uint_eq(t[4].ulValueLen, 4); /* "key2" */
    CK_ULONG size = 0;
    TT_OK(f->C_GetObjectSize(s, pub, &size));
    ck_assert_uint_gt(size, 65);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

static CK_OBJECT_HANDLE make_data(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_BBOOL token,
                                  CK_BBOOL private_, const char *label, const char *value)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_TOKEN, &token, sizeof(token)},
        {CKA_PRIVATE, &private_, sizeof(private_)},
        {CKA_LABEL, (void *)label, strlen(label)},
        {CKA_APPLICATION, "test", 4},
        {CKA_VALUE, (void *)value, strlen(value)},
    };
    CK_OBJECT_HANDLE h = 0;
    TT_OK(f->C_CreateObject(s, t, 6, &h));
    return h;
}

static CK_ULONG count_label(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, const char *label)
{
    CK_ATTRIBUTE t = {CKA_LABEL, (void *)label, strlen(label)};
    CK_OBJECT_HANDLE h[32];
    return tt_find(f, s, &t, 1, h, 32);
}

/* The result of a search is fixed at C_FindObjectsInit. */
START_TEST(t_interrupted_find)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", PIN);
    CK_OBJECT_HANDLE d1 = make_data(f, s, no, no, "alice", "one");
    make_data(f, s, no, no, "bob", "two");
    /* "alice": two private keys, two public keys, two certificates, one data object. */
    CK_ATTRIBUTE t = {CKA_LABEL, "alice", 5};
    CK_OBJECT_HANDLE h[16], first[16];
    CK_ULONG got, total = 0;
    TT_OK(f->C_FindObjectsInit(s, &t, 1));
    TT_RV(f->C_FindObjectsInit(s, &t, 1), CKR_OPERATION_ACTIVE);
    TT_OK(f->C_FindObjects(s, first, 2, &got));
    ck_assert_uint_eq(got, 2);
    memcpy(h, first, 2 * sizeof(*h));
    total = got;
    /* Other work in the middle: a new match and a destroyed one. */
    make_data(f, s, no, no, "alice", "three");
    TT_OK(f->C_DestroyObject(s, d1));
    CK_TOKEN_INFO ti;
    TT_OK(f->C_GetTokenInfo(tt_slot_by_label(f, "pin"), &ti));
    do {
        TT_OK(f->C_FindObjects(s, h + total, 1, &got));
        total += got;
    } while (got > 0);
    ck_assert_uint_eq(total, 7);
    for (CK_ULONG i = 0; i < total; i++) {
        for (CK_ULONG j = i + 1; j < total; j++)
            ck_assert_uint_ne(h[i], h[j]);
    }
    TT_OK(f->C_FindObjectsFinal(s));
    TT_RV(f->C_FindObjects(s, h, 1, &got), CKR_OPERATION_NOT_INITIALIZED);
    TT_RV(f->C_FindObjectsFinal(s), CKR_OPERATION_NOT_INITIALIZED);
    /* A new search sees the change. */
    ck_assert_uint_eq(count_label(f, s, "alice"), 7);
    ck_assert_uint_eq(count_label(f, s, "bob"), 1);
    /* By ID: the key's three objects. */
    CK_ATTRIBUTE by_id = {CKA_ID, "key1", 4};
    ck_assert_uint_eq(tt_find(f, s, &by_id, 1, h, 16), 3);
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE cert_of[] = {{CKA_ID, "key1", 4}, {CKA_CLASS, &cls, sizeof(cls)}};
    ck_assert_uint_eq(tt_find(f, s, cert_of, 2, h, 16), 1);
    CK_ATTRIBUTE none = {CKA_ID, "key9", 4};
    ck_assert_uint_eq(tt_find(f, s, &none, 1, h, 16), 0);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

START_TEST(t_session_objects_die_with_session)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_free_slot(f);
    CK_SESSION_HANDLE a = tt_open(f, slot), b = tt_open(f, slot);
    CK_OBJECT_HANDLE h = make_data(f, a, no, no, "memo", "hello");
    ck_assert_uint_eq(count_label(f, b, "memo"), 1);
    tt_assert_bytes(f, b, h, CKA_VALUE, "hello", 5);
    ck_assert(!tt_get_bool(f, b, h, CKA_TOKEN));
    TT_OK(f->C_CloseSession(a));
    ck_assert_uint_eq(count_label(f, b, "memo"), 0);
    CK_ULONG size;
    TT_RV(f->C_GetObjectSize(b, h, &size), CKR_OBJECT_HANDLE_INVALID);
    /* A private session object needs a logged-in user. */
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_PRIVATE, (void *)&yes, 1}};
    TT_RV(f->C_CreateObject(b, t, 2, &h), CKR_USER_NOT_LOGGED_IN);
    /* The free slot has no token to store objects in. */
    CK_ATTRIBUTE tok[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, (void *)&yes, 1}};
    TT_RV(f->C_CreateObject(b, tok, 2, &h), CKR_TOKEN_WRITE_PROTECTED);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* Token objects live on the card: they survive the module and follow login rules. */
START_TEST(t_token_objects)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", NULL);
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, (void *)&yes, 1}};
    CK_OBJECT_HANDLE h;
    TT_RV(f->C_CreateObject(s, t, 2, &h), CKR_USER_NOT_LOGGED_IN);
    CK_SESSION_HANDLE ro;
    TT_OK(f->C_OpenSession(tt_slot_by_label(f, "pin"), CKF_SERIAL_SESSION, NULL, NULL, &ro));
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), 4));
    TT_RV(f->C_CreateObject(ro, t, 2, &h), CKR_SESSION_READ_ONLY);
    /* The card stores no secret keys: they are session objects only. */
    CK_OBJECT_CLASS secret = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    uint8_t key16[16] = {0};
    CK_ATTRIBUTE secret_on_token[] = {{CKA_CLASS, &secret, sizeof(secret)},
                                      {CKA_KEY_TYPE, &aes, sizeof(aes)},
                                      {CKA_VALUE, key16, sizeof(key16)},
                                      {CKA_TOKEN, (void *)&yes, 1}};
    TT_RV(f->C_CreateObject(s, secret_on_token, 4, &h), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_OBJECT_HANDLE pub = make_data(f, s, yes, no, "public memo", "for all");
    CK_OBJECT_HANDLE priv = make_data(f, s, yes, yes, "private memo", "for me");
    ck_assert(tt_get_bool(f, s, pub, CKA_TOKEN));
    ck_assert(tt_get_bool(f, s, priv, CKA_PRIVATE));
    tt_assert_bytes(f, s, priv, CKA_VALUE, "for me", 6);
    TT_OK(f->C_Finalize(NULL));

    /* A new module instance reads them back from the card. */
    f = tt_init();
    s = tt_user_session(f, "pin", NULL);
    ck_assert_uint_eq(count_label(f, s, "public memo"), 1);
    ck_assert_uint_eq(count_label(f, s, "private memo"), 0);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), 4));
    ck_assert_uint_eq(count_label(f, s, "private memo"), 1);
    CK_ATTRIBUTE q = {CKA_LABEL, "private memo", 12};
    ck_assert_uint_eq(tt_find(f, s, &q, 1, &priv, 1), 1);
    tt_assert_bytes(f, s, priv, CKA_VALUE, "for me", 6);
    tt_assert_bytes(f, s, priv, CKA_APPLICATION, "test", 4);
    ck_assert_uint_eq(tt_get_ulong(f, s, priv, CKA_CLASS), CKO_DATA);

    /* Change it, copy it, destroy it. */
    CK_ATTRIBUTE relabel = {CKA_LABEL, "renamed memo", 12};
    TT_OK(f->C_SetAttributeValue(s, priv, &relabel, 1));
    ck_assert_uint_eq(count_label(f, s, "renamed memo"), 1);
    ck_assert_uint_eq(count_label(f, s, "private memo"), 0);
    CK_ATTRIBUTE to_session[] = {{CKA_TOKEN, (void *)&no, 1}, {CKA_LABEL, "copy", 4}};
    CK_OBJECT_HANDLE copy;
    TT_OK(f->C_CopyObject(s, priv, to_session, 2, &copy));
    ck_assert(!tt_get_bool(f, s, copy, CKA_TOKEN));
    tt_assert_bytes(f, s, copy, CKA_VALUE, "for me", 6);
    CK_ATTRIBUTE to_token = {CKA_LABEL, "token copy", 10};
    TT_OK(f->C_CopyObject(s, priv, &to_token, 1, &copy));
    ck_assert(tt_get_bool(f, s, copy, CKA_TOKEN));
    TT_OK(f->C_DestroyObject(s, priv));
    ck_assert_uint_eq(count_label(f, s, "renamed memo"), 0);
    TT_OK(f->C_Finalize(NULL));

    f = tt_init();
    s = tt_user_session(f, "pin", PIN);
    ck_assert_uint_eq(count_label(f, s, "renamed memo"), 0);
    ck_assert_uint_eq(count_label(f, s, "token copy"), 1);
    ck_assert_uint_eq(count_label(f, s, "copy"), 0); /* the session copy is gone */
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

START_TEST(t_create_certificate_and_public_key)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", PIN);

    /* A certificate: class, type, subject and value suffice; the rest is derived. */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ck_assert_ptr_nonnull(rsa);
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(rsa, &spki);
    sks_writer der;
    sks_writer_init(&der);
    tl_issue_cert_der((sks_view){spki, (size_t)spki_len}, &der);
    const unsigned char *p = der.buf;
    X509 *x = d2i_X509(NULL, &p, (long)der.len);
    unsigned char *subject = NULL, *serial = NULL;
    int subject_len = i2d_X509_NAME(X509_get_subject_name(x), &subject);
    int serial_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &serial);
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE type = CKC_X_509;
    CK_ATTRIBUTE ct[] = {
        {CKA_CLASS, &cls, sizeof(cls)},   {CKA_CERTIFICATE_TYPE, &type, sizeof(type)},
        {CKA_TOKEN, (void *)&yes, 1},     {CKA_SUBJECT, subject, (CK_ULONG)subject_len},
        {CKA_VALUE, der.buf, der.len},    {CKA_ID, "rsa", 3},
        {CKA_LABEL, "imported cert", 13},
    };
    CK_OBJECT_HANDLE cert;
    TT_RV(f->C_CreateObject(s, ct, 4, &cert), CKR_TEMPLATE_INCOMPLETE); /* no CKA_VALUE */
    TT_OK(f->C_CreateObject(s, ct, 7, &cert));
    tt_assert_bytes(f, s, cert, CKA_SERIAL_NUMBER, serial, (size_t)serial_len);
    tt_assert_bytes(f, s, cert, CKA_PUBLIC_KEY_INFO, spki, (size_t)spki_len);
    /* A certificate that is not one. */
    CK_ATTRIBUTE junk[] = {ct[0], ct[1], ct[3], {CKA_VALUE, "junk", 4}};
    TT_RV(f->C_CreateObject(s, junk, 4, &cert), CKR_ATTRIBUTE_VALUE_INVALID);

    /* An RSA public key from modulus and exponent. */
    BIGNUM *n = NULL, *ex = NULL;
    ck_assert(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n));
    ck_assert(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, &ex));
    uint8_t mod[256], exp[8];
    int mod_len = BN_bn2bin(n, mod), exp_len = BN_bn2bin(ex, exp);
    CK_OBJECT_CLASS pcls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt = CKK_RSA;
    CK_ATTRIBUTE pt[] = {
        {CKA_CLASS, &pcls, sizeof(pcls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, (void *)&yes, 1},
        {CKA_MODULUS, mod, (CK_ULONG)mod_len},
        {CKA_PUBLIC_EXPONENT, exp, (CK_ULONG)exp_len},
        {CKA_ID, "rsa", 3},
    };
    CK_OBJECT_HANDLE pub;
    TT_OK(f->C_CreateObject(s, pt, 6, &pub));
    ck_assert_uint_eq(tt_get_ulong(f, s, pub, CKA_MODULUS_BITS), 2048);
    tt_assert_bytes(f, s, pub, CKA_PUBLIC_KEY_INFO, spki, (size_t)spki_len);
    CK_ULONG bits = 1024;
    CK_ATTRIBUTE with_bits[] = {
        pt[0], pt[1], pt[3], pt[4], {CKA_MODULUS_BITS, &bits, sizeof(bits)}};
    TT_RV(f->C_CreateObject(s, with_bits, 5, &pub), CKR_ATTRIBUTE_READ_ONLY);
    TT_OK(f->C_Finalize(NULL));

    /* Both come back from the card, found by their ID. */
    f = tt_init();
    s = tt_user_session(f, "pin", NULL);
    CK_ATTRIBUTE by_id = {CKA_ID, "rsa", 3};
    CK_OBJECT_HANDLE h[4];
    ck_assert_uint_eq(tt_find(f, s, &by_id, 1, h, 4), 2);
    ck_assert_uint_eq(tt_count_id(f, s, CKO_CERTIFICATE, NULL, NULL), 3);
    TT_OK(f->C_Finalize(NULL));
    BN_free(n);
    BN_free(ex);
    OPENSSL_free(spki);
    OPENSSL_free(subject);
    OPENSSL_free(serial);
    X509_free(x);
    sks_writer_free(&der);
    EVP_PKEY_free(rsa);
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

/* The attribute rules table at work. */
START_TEST(t_attribute_rules)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_open(f, tt_free_slot(f));
    CK_OBJECT_CLASS data = CKO_DATA, secret = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_ULONG four = 4;
    CK_OBJECT_HANDLE h;
    uint8_t key16[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    CK_ATTRIBUTE no_class = {CKA_LABEL, "x", 1};
    TT_RV(f->C_CreateObject(s, &no_class, 1, &h), CKR_TEMPLATE_INCOMPLETE);
    CK_ATTRIBUTE foreign[] = {{CKA_CLASS, &data, sizeof(data)}, {CKA_MODULUS, "x", 1}};
    TT_RV(f->C_CreateObject(s, foreign, 2, &h), CKR_ATTRIBUTE_TYPE_INVALID);
    CK_ATTRIBUTE bad_bool[] = {{CKA_CLASS, &data, sizeof(data)},
                               {CKA_PRIVATE, &four, sizeof(four)}};
    TT_RV(f->C_CreateObject(s, bad_bool, 2, &h), CKR_ATTRIBUTE_VALUE_INVALID);
    CK_ATTRIBUTE twice[] = {
        {CKA_CLASS, &data, sizeof(data)}, {CKA_LABEL, "a", 1}, {CKA_LABEL, "b", 1}};
    TT_RV(f->C_CreateObject(s, twice, 3, &h), CKR_TEMPLATE_INCONSISTENT);
    CK_ATTRIBUTE trusted[] = {{CKA_CLASS, &secret, sizeof(secret)},
                              {CKA_KEY_TYPE, &aes, sizeof(aes)},
                              {CKA_VALUE, key16, 16},
                              {CKA_TRUSTED, (void *)&yes, 1}};
    TT_RV(f->C_CreateObject(s, trusted, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE local[] = {trusted[0], trusted[1], trusted[2], {CKA_LOCAL, (void *)&yes, 1}};
    TT_RV(f->C_CreateObject(s, local, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE short_key[] = {trusted[0], trusted[1], {CKA_VALUE, key16, 15}};
    TT_RV(f->C_CreateObject(s, short_key, 3, &h), CKR_ATTRIBUTE_VALUE_INVALID);
    /* The free slot's token stores nothing (t_token_objects: secret keys never go on a token). */
    CK_ATTRIBUTE on_token[] = {trusted[0], trusted[1], trusted[2], {CKA_TOKEN, (void *)&yes, 1}};
    TT_RV(f->C_CreateObject(s, on_token, 4, &h), CKR_TOKEN_WRITE_PROTECTED);

    /* An AES session key: readable until made sensitive, then never again. */
    TT_OK(f->C_CreateObject(s, trusted, 3, &h));
    tt_assert_bytes(f, s, h, CKA_VALUE, key16, 16);
    ck_assert_uint_eq(tt_get_ulong(f, s, h, CKA_VALUE_LEN), 16);
    CK_ATTRIBUTE sens = {CKA_SENSITIVE, (void *)&yes, 1};
    TT_OK(f->C_SetAttributeValue(s, h, &sens, 1));
    uint8_t out[16];
    CK_ATTRIBUTE value = {CKA_VALUE, out, sizeof(out)};
    TT_RV(f->C_GetAttributeValue(s, h, &value, 1), CKR_ATTRIBUTE_SENSITIVE);
    CK_ATTRIBUTE unsens = {CKA_SENSITIVE, (void *)&no, 1};
    TT_RV(f->C_SetAttributeValue(s, h, &unsens, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE len = {CKA_VALUE_LEN, &four, sizeof(four)};
    TT_RV(f->C_SetAttributeValue(s, h, &len, 1), CKR_ATTRIBUTE_READ_ONLY);
    /* An unmodifiable object. */
    CK_ATTRIBUTE frozen[] = {{CKA_CLASS, &data, sizeof(data)}, {CKA_MODIFIABLE, (void *)&no, 1}};
    TT_OK(f->C_CreateObject(s, frozen, 2, &h));
    CK_ATTRIBUTE relabel = {CKA_LABEL, "new", 3};
    TT_RV(f->C_SetAttributeValue(s, h, &relabel, 1), CKR_ACTION_PROHIBITED);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* A card key's label and ID change on the card; its other attributes are fixed. */
START_TEST(t_set_card_key_attributes)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", PIN);
    CK_OBJECT_HANDLE priv = tt_find_id(f, s, CKO_PRIVATE_KEY, "key1");
    CK_OBJECT_HANDLE cert = tt_find_id(f, s, CKO_CERTIFICATE, "key1");
    CK_ATTRIBUTE t[] = {{CKA_LABEL, "bob", 3}, {CKA_ID, "bob-id", 6}};
    TT_OK(f->C_SetAttributeValue(s, priv, t, 2));
    ck_assert_uint_eq(count_label(f, s, "bob"), 3);
    CK_ATTRIBUTE by_id = {CKA_ID, "bob-id", 6};
    CK_OBJECT_HANDLE h[8];
    ck_assert_uint_eq(tt_find(f, s, &by_id, 1, h, 8), 3);
    CK_ATTRIBUTE sign = {CKA_SIGN, (void *)&yes, 1}; /* as it is: accepted */
    TT_OK(f->C_SetAttributeValue(s, priv, &sign, 1));
    CK_ATTRIBUTE nosign = {CKA_SIGN, (void *)&no, 1};
    TT_RV(f->C_SetAttributeValue(s, priv, &nosign, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_ATTRIBUTE long_id = {CKA_ID, "0123456789012345678901234567890123", 33};
    TT_RV(f->C_SetAttributeValue(s, priv, &long_id, 1), CKR_ATTRIBUTE_VALUE_INVALID);
    TT_RV(f->C_SetAttributeValue(s, cert, t, 1), CKR_ACTION_PROHIBITED);
    TT_OK(f->C_Finalize(NULL));
    f = tt_init();
    s = tt_user_session(f, "pin", NULL);
    ck_assert_uint_eq(count_label(f, s, "bob"), 2); /* public key and certificate */
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

START_TEST(t_destroy_card_key)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", PIN);
    CK_OBJECT_HANDLE priv = tt_find_id(f, s, CKO_PRIVATE_KEY, "key1");
    CK_OBJECT_HANDLE pub = tt_find_id(f, s, CKO_PUBLIC_KEY, "key1");
    CK_OBJECT_HANDLE copy;
    TT_RV(f->C_CopyObject(s, priv, NULL, 0, &copy), CKR_ACTION_PROHIBITED);
    TT_RV(f->C_DestroyObject(s, pub), CKR_ACTION_PROHIBITED);
    TT_OK(f->C_DestroyObject(s, priv));
    CK_ATTRIBUTE by_id = {CKA_ID, "key1", 4};
    CK_OBJECT_HANDLE h[8];
    ck_assert_uint_eq(tt_find(f, s, &by_id, 1, h, 8), 0);
    CK_ATTRIBUTE other = {CKA_ID, "key2", 4};
    ck_assert_uint_eq(tt_find(f, s, &other, 1, h, 8), 3);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

/*
 * Destroying the private key deletes the card key; its public key and
 * certificate went with it, so destroying them next succeeds once (as
 * pkcs11-tool --test-ec does), while handles that never existed, or are
 * destroyed twice, stay invalid.
 */
START_TEST(t_destroy_private_then_public)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", PIN);
    CK_OBJECT_HANDLE priv = tt_find_id(f, s, CKO_PRIVATE_KEY, "key1");
    CK_OBJECT_HANDLE pub = tt_find_id(f, s, CKO_PUBLIC_KEY, "key1");
    CK_OBJECT_HANDLE cert = tt_find_id(f, s, CKO_CERTIFICATE, "key1");
    CK_OBJECT_HANDLE pub2 = tt_find_id(f, s, CKO_PUBLIC_KEY, "key2");
    /* While the key lives, only its private key destroys it. */
    TT_RV(f->C_DestroyObject(s, pub), CKR_ACTION_PROHIBITED);
    TT_RV(f->C_DestroyObject(s, cert), CKR_ACTION_PROHIBITED);
    TT_OK(f->C_DestroyObject(s, priv));
    TT_OK(f->C_DestroyObject(s, pub));
    TT_OK(f->C_DestroyObject(s, cert));
    /* Gone for every other function, and destroyed once only. */
    CK_ULONG size;
    TT_RV(f->C_GetObjectSize(s, pub, &size), CKR_OBJECT_HANDLE_INVALID);
    TT_RV(f->C_DestroyObject(s, pub), CKR_OBJECT_HANDLE_INVALID);
    TT_RV(f->C_DestroyObject(s, cert), CKR_OBJECT_HANDLE_INVALID);
    TT_RV(f->C_DestroyObject(s, priv), CKR_OBJECT_HANDLE_INVALID);
    TT_RV(f->C_DestroyObject(s, (CK_OBJECT_HANDLE)0x7777), CKR_OBJECT_HANDLE_INVALID);
    /* The other key is untouched. */
    TT_RV(f->C_DestroyObject(s, pub2), CKR_ACTION_PROHIBITED);
    ck_assert_uint_eq(tt_count_id(f, s, CKO_PUBLIC_KEY, NULL, NULL), 1);
    ck_assert_uint_eq(tt_count_id(f, s, CKO_PRIVATE_KEY, NULL, NULL), 1);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

/*
 * The public key is a view of the same card key as the private key: a new
 * CKA_LABEL or CKA_ID given to it changes every object of the key.
 * CKA_SUBJECT (the certificate's subject) accepts only its current value.
 */
START_TEST(t_set_public_key_attributes)
{
    tt_env e;
    tl_key key;
    tt_env_with_card(&e, NULL);
    provision(&e, &key, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_user_session(f, "pin", PIN);
    CK_OBJECT_HANDLE pub = tt_find_id(f, s, CKO_PUBLIC_KEY, "key1");
    CK_ATTRIBUTE t[] = {{CKA_LABEL, "carol", 5}, {CKA_ID, "carol-id", 8}};
    TT_OK(f->C_SetAttributeValue(s, pub, t, 2));
    ck_assert_uint_eq(count_label(f, s, "carol"), 3);
    CK_OBJECT_HANDLE priv = tt_find_id(f, s, CKO_PRIVATE_KEY, "carol-id");
    tt_find_id(f, s, CKO_CERTIFICATE, "carol-id"); /* asserts exactly one */

    /* The subject of the key's certificate, encoded here with OpenSSL. */
    unsigned char *name = NULL;
    int name_len = i2d_X509_NAME(X509_get_subject_name(key.cert[0]), &name);
    ck_assert_int_gt(name_len, 2);
    CK_ATTRIBUTE subject = {CKA_SUBJECT, name, (CK_ULONG)name_len};
    TT_OK(f->C_SetAttributeValue(s, pub, &subject, 1));
    TT_OK(f->C_SetAttributeValue(s, priv, &subject, 1));
    /* Another name: read-only, and the whole template is refused. */
    X509_NAME *other = X509_NAME_new();
    ck_assert(X509_NAME_add_entry_by_txt(other, "CN", MBSTRING_UTF8, (const unsigned char *)"other",
                                         -1, -1, 0));
    unsigned char *other_der = NULL;
    int other_len = i2d_X509_NAME(other, &other_der);
    ck_assert_int_gt(other_len, 2);
    CK_ATTRIBUTE change[] = {{CKA_LABEL, "dave", 4}, {CKA_SUBJECT, other_der, (CK_ULONG)other_len}};
    TT_RV(f->C_SetAttributeValue(s, pub, change, 2), CKR_ATTRIBUTE_READ_ONLY);
    TT_RV(f->C_SetAttributeValue(s, priv, change + 1, 1), CKR_ATTRIBUTE_READ_ONLY);
    ck_assert_uint_eq(count_label(f, s, "dave"), 0);
    tt_assert_bytes(f, s, pub, CKA_SUBJECT, name, (size_t)name_len);
    OPENSSL_free(other_der);
    X509_NAME_free(other);
    OPENSSL_free(name);

    /* The card kept the new label and ID. */
    TT_OK(f->C_Finalize(NULL));
    f = tt_init();
    s = tt_user_session(f, "pin", NULL);
    ck_assert_uint_eq(count_label(f, s, "carol"), 2); /* public key and certificate */
    tt_find_id(f, s, CKO_PUBLIC_KEY, "carol-id");
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

/* Keys from C_GenerateKeyPair share the local issuer's CA: one CA certificate per token. */
START_TEST(t_shared_ca_certificate)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, "ca-test", 7);
    TT_OK(f->C_InitToken(tt_free_slot(f), U("so-pin-1"), 8, label));
    CK_SESSION_HANDLE s = tt_open(f, tt_slot_by_label(f, "ca-test"));
    TT_OK(f->C_Login(s, CKU_SO, U("so-pin-1"), 8));
    TT_OK(f->C_InitPIN(s, U(PIN), 4));
    TT_OK(f->C_Logout(s));
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), 4));
    static const uint8_t p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    for (int i = 0; i < 2; i++) {
        char id[2] = {(char)('a' + i), 0};
        CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
                              {CKA_TOKEN, (void *)&yes, 1}};
        CK_ATTRIBUTE priv[] = {{CKA_ID, id, 1},
                               {CKA_TOKEN, (void *)&yes, 1},
                               {CKA_SIGN, (void *)&yes, 1},
                               {CKA_LABEL, "gen", 3}};
        CK_OBJECT_HANDLE hpub, hpriv;
        TT_OK(f->C_GenerateKeyPair(s, &m, pub, 2, priv, 4, &hpub, &hpriv));
    }
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ULONG authority = 2;
    CK_ATTRIBUTE ca[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_CERTIFICATE_CATEGORY, &authority, sizeof(authority)}};
    CK_OBJECT_HANDLE h[8];
    ck_assert_uint_eq(tt_count_id(f, s, CKO_CERTIFICATE, NULL, NULL), 3);
    ck_assert_uint_eq(tt_find(f, s, ca, 2, h, 8), 1);
    /* Its CKA_ID is the SHA-1 of its subjectPublicKey bits, not a key's ID. */
    CK_ULONG len;
    uint8_t *der = tt_get_value(f, s, h[0], CKA_VALUE, &len);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    ck_assert_ptr_nonnull(x);
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
    uint8_t sha1[20];
    ck_assert(EVP_Digest(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), sha1, NULL,
                         EVP_sha1(), NULL));
    tt_assert_bytes(f, s, h[0], CKA_ID, sha1, sizeof(sha1));
    X509_free(x);
    free(der);
    /* Each generated key: its own end-entity certificate under its ID. */
    CK_ATTRIBUTE by_id[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, "b", 1}};
    ck_assert_uint_eq(tt_find(f, s, by_id, 2, h, 8), 1);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-objects");
    TCase *tc = tcase_create("objects");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_private_hidden_until_login);
    tcase_add_test(tc, t_card_key_attributes);
    tcase_add_test(tc, t_migratable_key);
    tcase_add_test(tc, t_get_attribute_semantics);
    tcase_add_test(tc, t_interrupted_find);
    tcase_add_test(tc, t_session_objects_die_with_session);
    tcase_add_test(tc, t_token_objects);
    tcase_add_test(tc, t_create_certificate_and_public_key);
    tcase_add_test(tc, t_attribute_rules);
    tcase_add_test(tc, t_set_card_key_attributes);
    tcase_add_test(tc, t_destroy_card_key);
    tcase_add_test(tc, t_shared_ca_certificate);
    tcase_add_test(tc, t_destroy_private_then_public);
    tcase_add_test(tc, t_set_public_key_attributes);
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
