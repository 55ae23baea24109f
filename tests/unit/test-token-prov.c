/*
 * test-token-prov.c - SKS provisioning through the module's vendor
 * mechanisms, on the embedded card: the issuer is the project's issuer
 * library in this process, the client side only PKCS#11 calls
 * (test-token-prov-util.h). The SKS seed's sample session with both
 * session key algorithms, an RSA key, an issuer-made key imported into the
 * card, a backed-up key, the buffer-size rule, the vendor objects'
 * attributes and templates. Every key ends up signing through ordinary
 * PKCS#11 with a signature that OpenSSL verifies against the certificate
 * the issuer bound to it. The failure cases are in test-token-prov-neg.c.
 */
#include <check.h>
#include <string.h>

#include "test-token-prov-util.h"

#define PIN "271828"
#define PUK "12345678"

/* The sample session: PUK, PIN, attested P-256 key, certificate path, close; then a signature. */
static void sample_session(uint8_t session_key_alg, CK_ULONG session_key_len)
{
    tp_env x;
    tp_env_open(&x);
    CK_FUNCTION_LIST *f = x.f;
    CK_SESSION_HANDLE s = x.s;

    tp_relay r;
    tp_open(&r, f, s, x.e.card->trusted, session_key_alg, 0, 0);
    ck_assert_uint_eq(r.sp.ulEncryptedSessionKeyLen, session_key_len);
    ck_assert_uint_eq(tt_get_ulong(f, s, r.prov, CKA_CLASS), CKO_VENDOR_SKS_PROVISIONING);

    tp_call puk, pin, key, cert;
    CK_OBJECT_HANDLE hpuk, hpin, hkey, hcert;
    tp_puk(&r, &puk, "puk", PUK);
    TT_OK(tp_send(&r, &puk, &hpuk));
    tp_pin(&r, &pin, "pin", "puk", hpuk);
    TT_OK(tp_send(&r, &pin, &hpin));
    tp_key_spec ks = {.id = "key1", .pin_id = "pin", .hPin = hpin, .pin = PIN, .name = "mail"};
    tp_key_with_cert(&r, &key, &cert, &ks, &hkey, &hcert);
    ck_assert_uint_eq(key.p.kp.ulPublicKeyLen, 91); /* P-256 SubjectPublicKeyInfo */
    ck_assert_uint_eq(key.p.kp.ulEncryptedPrivateKeyLen, 0);

    /* The policies are session objects on the slot the session went through. */
    ck_assert_uint_eq(tt_find_id(f, s, CKO_VENDOR_SKS_PUK_POLICY, "puk"), hpuk);
    ck_assert_uint_eq(tt_find_id(f, s, CKO_VENDOR_SKS_PIN_POLICY, "pin"), hpin);
    ck_assert(!tt_get_bool(f, s, hpin, CKA_TOKEN));
    ck_assert_uint_ne(tt_get_ulong(f, s, hpin, CKA_VENDOR_SKS_CARD_HANDLE), 0);
    /* Nothing of the open session is a token yet. */
    ck_assert_uint_eq(tp_slot_count(f), x.slots);

    TT_OK(tp_close_session(&r));

    /* The new PIN policy is a new token holding the key, its public key and certificate. */
    ck_assert_uint_eq(tp_slot_count(f), x.slots + 1);
    CK_SESSION_HANDLE us = tt_user_session(f, "pin", PIN);
    ck_assert_uint_eq(tt_find_id(f, us, CKO_PRIVATE_KEY, "key1"), hkey);
    ck_assert_uint_eq(tt_find_id(f, us, CKO_PUBLIC_KEY, "key1"), key.p.kp.hPublicKey);
    ck_assert_uint_eq(tt_find_id(f, us, CKO_CERTIFICATE, "key1"), hcert);
    tt_assert_bytes(f, us, hkey, CKA_LABEL, "mail", 4);
    uint8_t der[4096];
    CK_ULONG n = tt_get_bytes(f, us, hcert, CKA_VALUE, der, sizeof(der));
    ck_assert_uint_lt(n, cert.der.len); /* the end-entity certificate, the CA follows it */
    ck_assert(memcmp(der, cert.der.buf, n) == 0);
    tp_sign_and_verify(f, us, hkey, hcert);
    /* The PUK is the token's SO PIN. */
    TT_OK(f->C_Logout(us));
    TT_OK(f->C_Login(us, CKU_SO, (CK_UTF8CHAR_PTR)PUK, strlen(PUK)));
    TT_OK(f->C_Logout(us));

    /* Destroying the provisioning object of a closed session takes nothing with it. */
    TT_OK(f->C_DestroyObject(s, r.prov));
    TT_OK(f->C_Login(us, CKU_USER, (CK_UTF8CHAR_PTR)PIN, strlen(PIN)));
    tp_sign_and_verify(f, us, hkey, hcert);

    tp_call_free(&puk);
    tp_call_free(&pin);
    tp_call_free(&key);
    tp_call_free(&cert);
    tp_free(&r);
    tp_env_close(&x);
}

START_TEST(t_sample_session_ecdh)
{
    sample_session(SKS_SKALG_ECDH_P256, 91); /* the card's ephemeral P-256 SPKI */
}
END_TEST

START_TEST(t_sample_session_rsa_oaep)
{
    sample_session(SKS_SKALG_RSA_OAEP_SHA256, 256); /* OAEP under the issuer's RSA-2048 key */
}
END_TEST

/* An RSA-2048 key for signing and decryption, under a PIN policy without PUK. */
START_TEST(t_rsa_key)
{
    tp_env x;
    tp_env_open(&x);
    tp_relay r;
    tp_open(&r, x.f, x.s, x.e.card->trusted, SKS_SKALG_RSA_OAEP_SHA256, 0, 0);
    tp_call pin, key, cert;
    CK_OBJECT_HANDLE hpin, hkey, hcert;
    tp_pin(&r, &pin, "rsa", NULL, CK_INVALID_HANDLE);
    TT_OK(tp_send(&r, &pin, &hpin));
    tp_key_spec ks = {.id = "rsa1",
                      .pin_id = "rsa",
                      .hPin = hpin,
                      .pin = PIN,
                      .algorithm = SKS_KEYALG_RSA2048,
                      .usage = SKS_USAGE_SIGN | SKS_USAGE_DECRYPT};
    tp_key_with_cert(&r, &key, &cert, &ks, &hkey, &hcert);
    ck_assert_uint_eq(key.p.kp.ulPublicKeyLen, 294); /* RSA-2048 SPKI, e = 65537 */
    TT_OK(tp_close_session(&r));

    CK_SESSION_HANDLE us = tt_user_session(x.f, "rsa", PIN);
    ck_assert_uint_eq(tt_get_ulong(x.f, us, hkey, CKA_KEY_TYPE), CKK_RSA);
    ck_assert_uint_eq(tt_get_ulong(x.f, us, hkey, CKA_MODULUS_BITS), 2048);
    tp_sign_and_verify(x.f, us, hkey, hcert);
    tp_call_free(&pin);
    tp_call_free(&key);
    tp_call_free(&cert);
    tp_free(&r);
    tp_env_close(&x);
}
END_TEST

/* importPrivateKey: the issuer's own P-384 key goes into the card; it signs there. */
START_TEST(t_import_private_key)
{
    tp_env x;
    tp_env_open(&x);
    CK_FUNCTION_LIST *f = x.f;
    tp_relay r;
    tp_open(&r, f, x.s, x.e.card->trusted, SKS_SKALG_ECDH_P256, 0, 0);
    tp_call pin, key, imp, cert;
    CK_OBJECT_HANDLE hpin, hkey, himp, hcert;
    tp_pin(&r, &pin, "imp", NULL, CK_INVALID_HANDLE);
    TT_OK(tp_send(&r, &pin, &hpin));
    tp_key_spec ks = {.id = "k2",
                      .pin_id = "imp",
                      .hPin = hpin,
                      .pin = PIN,
                      .algorithm = SKS_KEYALG_EC_P384,
                      .import = 1};
    tp_key(&r, &key, &ks);
    TT_OK(tp_send(&r, &key, &hkey));
    ck_assert_uint_eq(key.p.kp.ulPublicKeyLen, 0); /* the issuer brings the key */
    tp_verify_key(&r, &key);

    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ck_assert_ptr_nonnull(k2);
    tp_import(&r, &imp, "k2", hkey, k2);
    TT_OK(tp_send(&r, &imp, &himp));
    ck_assert_uint_eq(himp, hkey);
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(k2, &spki);
    ck_assert_int_gt(spki_len, 0);
    tp_cert(&r, &cert, "k2", hkey, (sks_view){spki, (size_t)spki_len});
    TT_OK(tp_send(&r, &cert, &hcert));
    TT_OK(tp_close_session(&r));

    CK_SESSION_HANDLE us = tt_user_session(f, "imp", PIN);
    tt_assert_bytes(f, us, key.p.kp.hPublicKey, CKA_PUBLIC_KEY_INFO, spki, (size_t)spki_len);
    ck_assert(!tt_get_bool(f, us, hkey, CKA_LOCAL)); /* made by the issuer, not on the card */
    tp_sign_and_verify(f, us, hkey, hcert);

    OPENSSL_free(spki);
    EVP_PKEY_free(k2);
    tp_call_free(&pin);
    tp_call_free(&key);
    tp_call_free(&imp);
    tp_call_free(&cert);
    tp_free(&r);
    tp_env_close(&x);
}
END_TEST

/*
 * A later session of the same issuer (same IssuerURI and issuer key) adds a
 * key under the PIN policy object of an earlier, closed session
 * (docs/protocol.md 6.9): the policy object outlives its session, and the
 * token gets a second key.
 */
START_TEST(t_policy_of_earlier_session)
{
    tp_env x;
    tp_env_open(&x);
    EVP_PKEY *issuer_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(issuer_key);

    tp_relay r;
    tp_call pin, k1, c1, k2, c2;
    CK_OBJECT_HANDLE hpin, hk1, hc1, hk2, hc2;
    tp_open_key(&r, x.f, x.s, x.e.card->trusted, issuer_key);
    tp_pin(&r, &pin, "team", NULL, CK_INVALID_HANDLE);
    TT_OK(tp_send(&r, &pin, &hpin));
    tp_key_spec first = {.id = "first", .pin_id = "team", .hPin = hpin, .pin = PIN};
    tp_key_with_cert(&r, &k1, &c1, &first, &hk1, &hc1);
    TT_OK(tp_close_session(&r));
    tp_free(&r);

    tp_open_key(&r, x.f, x.s, x.e.card->trusted, issuer_key);
    sks_issuer_pin_policy pp;
    tl_pin_policy(&pp, "team", NULL);
    ck_assert(sks_issuer_declare_pin_policy(r.is, &pp) == 0);
    tp_key_spec second = {.id = "second", .pin_id = "team", .hPin = hpin, .pin = PIN};
    tp_key_with_cert(&r, &k2, &c2, &second, &hk2, &hc2);
    TT_OK(tp_close_session(&r));

    ck_assert_uint_eq(tp_slot_count(x.f), x.slots + 1);
    CK_SESSION_HANDLE us = tt_user_session(x.f, "team", PIN);
    tp_sign_and_verify(x.f, us, hk1, hc1);
    tp_sign_and_verify(x.f, us, hk2, hc2);
    tp_call_free(&pin);
    tp_call_free(&k1);
    tp_call_free(&c1);
    tp_call_free(&k2);
    tp_call_free(&c2);
    tp_free(&r);
    EVP_PKEY_free(issuer_key);
    tp_env_close(&x);
}
END_TEST

/*
 * Output buffers too small: CKR_BUFFER_TOO_SMALL with the sizes needed and
 * nothing done on the card, so the very same prepared call then succeeds.
 * A PrivateKeyBackup key's encrypted private key comes back in the bound
 * announced and decrypts, at the issuer, to the key the card holds; a later
 * session restores it (restorePrivateKey) into a second key entry.
 */
START_TEST(t_buffer_sizes)
{
    tp_env x;
    tp_env_open(&x);
    CK_FUNCTION_LIST *f = x.f;
    CK_SESSION_HANDLE s = x.s;
    tp_relay r;
    tp_request(&r, f, s, SKS_SKALG_ECDH_P256, 0, 0);
    r.sp.ulSessionAttestationLen = 8;
    r.sp.pDeviceCertificatePath = NULL;
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION, &r.sp, sizeof(r.sp)};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    TT_RV(f->C_GenerateKey(s, &m, NULL, 0, &h), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(h, CK_INVALID_HANDLE);
    ck_assert_uint_eq(r.sp.ulEncryptedSessionKeyLen, 91);
    /* The embedded card's device key is EC P-256: a DER ECDSA signature is at most 72 bytes. */
    ck_assert_uint_eq(r.sp.ulSessionAttestationLen, 72);
    ck_assert_uint_gt(r.sp.ulDeviceCertificatePathLen, 100);
    ck_assert_uint_le(r.sp.ulDeviceCertificatePathLen, sizeof(r.device_path));
    tp_assert_gone(&x.e, f, 1, 0, 0, x.slots); /* handle 1: the card's first, never made */
    /* The sizes announced are enough. */
    r.sp.pDeviceCertificatePath = r.device_path;
    tp_open_sent(&r, x.e.card->trusted);

    tp_call key;
    CK_OBJECT_HANDLE hkey = CK_INVALID_HANDLE;
    tp_key_spec ks = {.id = "b1", .backup = 1};
    tp_key(&r, &key, &ks);
    key.p.kp.pPublicKey = NULL;
    key.p.kp.ulEncryptedPrivateKeyLen = 16;
    TT_RV(tp_send(&r, &key, &hkey), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(key.p.kp.ulPublicKeyLen, 91);
    /* 16-byte IV + a padded PKCS#8 bound of 150 bytes for P-256. */
    ck_assert_uint_eq(key.p.kp.ulEncryptedPrivateKeyLen, 16 + 160);
    key.p.kp.pPublicKey = key.public_key;
    TT_OK(tp_send(&r, &key, &hkey));
    ck_assert_uint_eq(key.p.kp.ulPublicKeyLen, 91);
    ck_assert_uint_gt(key.p.kp.ulEncryptedPrivateKeyLen, 16);
    ck_assert_uint_le(key.p.kp.ulEncryptedPrivateKeyLen, 16 + 160);
    tp_verify_key(&r, &key);
    EVP_PKEY *backup =
        sks_issuer_decrypt_backup(r.is, (sks_view){key.backup, key.p.kp.ulEncryptedPrivateKeyLen});
    ck_assert_ptr_nonnull(backup);
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(backup, &spki);
    ck_assert_int_eq(spki_len, 91);
    ck_assert(memcmp(spki, key.public_key, 91) == 0);
    OPENSSL_free(spki);

    tp_call cert;
    CK_OBJECT_HANDLE hcert;
    tp_cert(&r, &cert, "b1", hkey, tp_spki(&key));
    TT_OK(tp_send(&r, &cert, &hcert));
    TT_OK(tp_close_session(&r));
    tp_free(&r);

    /* The backup restored into a new entry of a new session. */
    tp_call key2, restore, cert2;
    CK_OBJECT_HANDLE hkey2, hrestored, hcert2;
    tp_open(&r, f, s, x.e.card->trusted, SKS_SKALG_RSA_OAEP_SHA256, 0, 0);
    tp_key_spec ks2 = {.id = "b2", .import = 1};
    tp_key(&r, &key2, &ks2);
    TT_OK(tp_send(&r, &key2, &hkey2));
    tp_verify_key(&r, &key2);
    tp_restore(&r, &restore, "b2", hkey2, backup);
    TT_OK(tp_send(&r, &restore, &hrestored));
    ck_assert_uint_eq(hrestored, hkey2);
    tp_cert(&r, &cert2, "b2", hkey2, tp_spki(&key));
    TT_OK(tp_send(&r, &cert2, &hcert2));
    TT_OK(tp_close_session(&r));
    EVP_PKEY_free(backup);

    /* Keys without PIN: the no-PIN token. Both entries hold the one key pair. */
    CK_SESSION_HANDLE us = tt_user_session(f, "SKS (no PIN)", NULL);
    tp_sign_and_verify(f, us, hkey, hcert);
    tp_sign_and_verify(f, us, hkey2, hcert2);
    tt_assert_bytes(f, us, key2.p.kp.hPublicKey, CKA_PUBLIC_KEY_INFO, key.public_key, 91);
    tp_call_free(&key);
    tp_call_free(&cert);
    tp_call_free(&key2);
    tp_call_free(&restore);
    tp_call_free(&cert2);
    tp_free(&r);
    tp_env_close(&x);
}
END_TEST

/*
 * The vendor objects follow the attribute rules: their templates, what may
 * change, what the mechanisms accept and where. Refusals before hBaseKey is
 * resolved leave the session alone; any refusal after it aborts the session.
 */
START_TEST(t_objects_and_templates)
{
    tp_env x;
    tp_env_open(&x);
    CK_FUNCTION_LIST *f = x.f;
    CK_SLOT_ID free_slot = tt_free_slot(f);
    CK_SESSION_HANDLE s = x.s;

    CK_MECHANISM_INFO mi;
    TT_OK(f->C_GetMechanismInfo(free_slot, CKM_VENDOR_SKS_SESSION, &mi));
    TT_OK(f->C_GetMechanismInfo(free_slot, CKM_VENDOR_SKS_KEY_PAIR, &mi));
    ck_assert(mi.flags & CKF_DERIVE);

    /* Read-only session; a template with read-only or foreign attributes. */
    tp_relay r;
    CK_SESSION_HANDLE ro;
    TT_OK(f->C_OpenSession(free_slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
    tp_request(&r, f, ro, SKS_SKALG_ECDH_P256, 0, 0);
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION, &r.sp, sizeof(r.sp)};
    CK_OBJECT_HANDLE h;
    TT_RV(f->C_GenerateKey(ro, &m, NULL, 0, &h), CKR_SESSION_READ_ONLY);
    CK_ULONG card_handle = 7;
    CK_ATTRIBUTE bad[] = {{CKA_VENDOR_SKS_CARD_HANDLE, &card_handle, sizeof(card_handle)}};
    TT_RV(f->C_GenerateKey(s, &m, bad, 1, &h), CKR_ATTRIBUTE_READ_ONLY);
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE sign[] = {{CKA_SIGN, &yes, sizeof(yes)}};
    TT_RV(f->C_GenerateKey(s, &m, sign, 1, &h), CKR_ATTRIBUTE_TYPE_INVALID);
    m.ulParameterLen = sizeof(r.sp) - 1;
    TT_RV(f->C_GenerateKey(s, &m, NULL, 0, &h), CKR_MECHANISM_PARAM_INVALID);
    m.ulParameterLen = sizeof(r.sp);
    r.sp.ulClientOperationLimit = 65536; /* does not fit the protocol's short */
    TT_RV(f->C_GenerateKey(s, &m, NULL, 0, &h), CKR_MECHANISM_PARAM_INVALID);
    tp_free(&r);

    /* A label is accepted and may change; the class is given correctly. */
    tp_request(&r, f, s, SKS_SKALG_ECDH_P256, 0, 0);
    CK_OBJECT_CLASS cls = CKO_VENDOR_SKS_PROVISIONING;
    CK_ATTRIBUTE good[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, "enroll", 6}};
    TT_OK(f->C_GenerateKey(s, &m, good, 2, &r.prov));
    tt_assert_bytes(f, s, r.prov, CKA_LABEL, "enroll", 6);
    CK_ATTRIBUTE relabel = {CKA_LABEL, "renamed", 7};
    TT_OK(f->C_SetAttributeValue(s, r.prov, &relabel, 1));
    CK_ATTRIBUTE rehandle = {CKA_VENDOR_SKS_CARD_HANDLE, &card_handle, sizeof(card_handle)};
    TT_RV(f->C_SetAttributeValue(s, r.prov, &rehandle, 1), CKR_ATTRIBUTE_READ_ONLY);
    CK_OBJECT_HANDLE copy;
    TT_RV(f->C_CopyObject(s, r.prov, NULL, 0, &copy), CKR_ACTION_PROHIBITED);
    CK_OBJECT_HANDLE found[4];
    CK_ATTRIBUTE by_class = {CKA_CLASS, &cls, sizeof(cls)};
    ck_assert_uint_eq(tt_find(f, s, &by_class, 1, found, 4), 1);
    ck_assert_uint_eq(found[0], r.prov);
    tp_free(&r);

    /* A provisioning object in a visible session: the key handle refusals. */
    CK_MECHANISM puk_mech = {CKM_VENDOR_SKS_PUK_POLICY, NULL, 0};
    CK_SKS_PUK_POLICY_PARAMS pp;
    memset(&pp, 0, sizeof(pp));
    puk_mech.pParameter = &pp;
    puk_mech.ulParameterLen = sizeof(pp);
    TT_RV(f->C_DeriveKey(s, &puk_mech, 0x12345, NULL, 0, &h), CKR_KEY_HANDLE_INVALID);
    tp_open(&r, f, s, x.e.card->trusted, SKS_SKALG_ECDH_P256, 0, 0);
    tp_call puk;
    CK_OBJECT_HANDLE hpuk;
    tp_puk(&r, &puk, "p", PUK);
    TT_OK(tp_send(&r, &puk, &hpuk));
    /* The policy is no provisioning object; a read-only session may not provision. */
    TT_RV(f->C_DeriveKey(s, &puk_mech, hpuk, NULL, 0, &h), CKR_KEY_TYPE_INCONSISTENT);
    TT_RV(f->C_DeriveKey(ro, &puk_mech, r.prov, NULL, 0, &h), CKR_SESSION_READ_ONLY);
    tp_call_free(&puk);
    tp_free(&r);
    tp_env_close(&x);
}
END_TEST

static Suite *suite(void)
{
    Suite *su = suite_create("token-prov");
    TCase *tc = tcase_create("provisioning");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_sample_session_ecdh);
    tcase_add_test(tc, t_sample_session_rsa_oaep);
    tcase_add_test(tc, t_rsa_key);
    tcase_add_test(tc, t_import_private_key);
    tcase_add_test(tc, t_policy_of_earlier_session);
    tcase_add_test(tc, t_buffer_sizes);
    tcase_add_test(tc, t_objects_and_templates);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    return tl_run_suite(suite());
}
