/*
 * test-token-issuer-prov.c - the issuer side of SKS provisioning through
 * PKCS#11 (no-card mode, include/pkcs11/sks-pkcs11.h "Issuer side"), against
 * a real card engine.
 *
 * The test plays the relay between the two sides: the issuer side fills the
 * card side's parameter structs (MACs, encrypted PUK, PIN and private key),
 * the test sends them to the card engine (src/card) as the card side of the
 * module would, puts the card's answers into the card side's structs, and
 * hands those back to the issuer side's verification mechanisms.
 *
 * Every scenario runs twice, through the two drivers of the issuer side
 * (issuer-prov-driver.h): its core functions on their own, and the built
 * module on its issuer token, where the issuer's key and the manufacturer
 * CA are objects and every step is a C_GenerateKey / C_DeriveKey. The card
 * side is issuer-prov-relay.h, the scenarios' steps issuer-prov-scenario.h;
 * post-provisioning is test-token-issuer-post.c.
 * What proves the issuer side right is the card: it accepts the MACs and
 * decrypts the values (a wrong PIN is refused, the right one signs), and the
 * expected sizes come from the protocol's definition (5.3: a 16-byte IV and
 * PKCS#7 blocks), not from the implementation.
 */
#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "issuer-prov-scenario.h"
#include "protocol/sks_crypto.h"
#include "protocol/sks_keys.h"
#include "test-token-util.h"

/* ---- scenarios -------------------------------------------------------------------- */

/*
 * The SKS seed's sample session: PUK, PIN policy, an attested P-256 key
 * with the issuer's PIN, its certificate, close; plus a second key the
 * issuer made and imports. Every answer verified on the issuer side, then
 * the card proves the values arrived: the PIN opens the keys, both sign.
 */
static void sample_session(CK_ULONG alg, EVP_PKEY *issuer_key_material)
{
    session s;
    uint8_t puk_buf[64];
    session_init(&s);
    void *issuer_key = drv->issuer_key(issuer_key_material);
    open_accepted(&s, alg, issuer_key);
    make_policies(&s, puk_buf, sizeof puk_buf);

    key_pair k1, k2;
    key_pair_init(&k1, "Key.1", CK_FALSE);
    make_key_pair(&s, &k1, 0);
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    ck_assert_uint_eq(drv->verify_key(&k1.p, &spki, &spki_len), CKR_OK);
    /* The issuer side holds the card's public key, byte for byte. */
    ck_assert_uint_eq(spki_len, k1.p.ulPublicKeyLen);
    ck_assert(memcmp(spki, k1.p.pPublicKey, spki_len) == 0);
    certify(&s, "Key.1", spki, spki_len, s.r.key[0]);

    /* Key.2: the issuer's own key, imported (ImportPrivateKey). */
    EVP_PKEY *k2_priv = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(k2_priv);
    key_pair_init(&k2, "Key.2", CK_TRUE);
    make_key_pair(&s, &k2, 1);
    ck_assert_uint_eq(k2.p.ulPublicKeyLen, 0);
    uint8_t *none = NULL;
    size_t none_len = 1;
    ck_assert_uint_eq(drv->verify_key(&k2.p, &none, &none_len), CKR_OK);
    ck_assert_uint_eq(none_len, 0);
    uint8_t enc[1024];
    CK_SKS_PRIVATE_KEY_PARAMS put = {.pEncryptedPrivateKey = enc, .ulEncryptedPrivateKeyLen = 16};
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&put, sizeof put, "Key.2", NULL);
    c.hPrivateKey = (CK_OBJECT_HANDLE)(uintptr_t)drv->private_key(k2_priv);
    /* A short buffer: the size needed comes back, nothing is prepared. */
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY, &c), CKR_BUFFER_TOO_SMALL);
    unsigned char *p8 = NULL;
    PKCS8_PRIV_KEY_INFO *pki = EVP_PKEY2PKCS8(k2_priv);
    int p8_len = i2d_PKCS8_PRIV_KEY_INFO(pki, &p8);
    PKCS8_PRIV_KEY_INFO_free(pki);
    ck_assert_int_gt(p8_len, 0);
    OPENSSL_clear_free(p8, (size_t)p8_len);
    ck_assert_uint_eq(put.ulEncryptedPrivateKeyLen, 16 + 16 * ((size_t)p8_len / 16 + 1));
    put.ulEncryptedPrivateKeyLen = sizeof enc;
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY, &c), CKR_OK);
    TL_OK(s.r.c, relay_put_key(&s.r, SKS_M_IMPORT_PRIVATE_KEY, &put, s.r.key[1]));
    unsigned char *k2_spki = NULL;
    int k2_spki_len = i2d_PUBKEY(k2_priv, &k2_spki);
    certify(&s, "Key.2", k2_spki, (size_t)k2_spki_len, s.r.key[1]);

    ck_assert_uint_eq(close_session(&s, 2, 0), CKR_OK);
    /* The session is over on the issuer side too. */
    ck_assert_uint_eq(issuer_close(2), CKR_VENDOR_SKS_NO_SESSION);

    /* The card got the issuer's PIN (a wrong one is refused) and both keys sign. */
    ck_assert_int_eq(verify_pin(&s, "9999"), SKS_ERR_AUTHENTICATION);
    TL_OK(s.r.c, verify_pin(&s, PIN_VALUE));
    EVP_PKEY *k1_pub = spki_key(spki, spki_len);
    ck_assert(card_signs(&s, s.r.key[0], k1_pub));
    ck_assert(card_signs(&s, s.r.key[1], k2_priv));

    EVP_PKEY_free(k1_pub);
    OPENSSL_free(k2_spki);
    EVP_PKEY_free(k2_priv);
    OPENSSL_free(spki);
    session_free(&s);
}

START_TEST(test_sample_session_ecdh)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(key);
    sample_session(CKS_SESSION_KEY_ECDH_P256, key);
    EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_sample_session_rsa)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ck_assert_ptr_nonnull(key);
    sample_session(CKS_SESSION_KEY_RSA_OAEP_SHA256, key);
    EVP_PKEY_free(key);
}
END_TEST

/* A fresh issuer key per session (hIssuerKey = CK_INVALID_HANDLE) works as well. */
START_TEST(test_sample_session_fresh_key)
{
    sample_session(CKS_SESSION_KEY_ECDH_P256, NULL);
}
END_TEST

/*
 * Refused arguments change nothing: a short buffer, a duplicate ID, an
 * unknown reference, a certificate before its key is verified; after them
 * the card still accepts every MAC (no counter value was taken).
 */
START_TEST(test_refusals_change_nothing)
{
    session s;
    uint8_t puk_buf[64], small[8];
    session_init(&s);
    open_accepted(&s, CKS_SESSION_KEY_ECDH_P256, drv->issuer_key(NULL));

    CK_SKS_PUK_POLICY_PARAMS puk = {.pId = (CK_BYTE_PTR) "PUK",
                                    .ulIdLen = 3,
                                    .pEncryptedValue = small,
                                    .ulEncryptedValueLen = sizeof small};
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&puk, sizeof puk, NULL, PUK_VALUE);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_PUK_POLICY, &c), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(puk.ulEncryptedValueLen, 32);
    c.ulCallLen = sizeof puk - 1;
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_PUK_POLICY, &c), CKR_MECHANISM_PARAM_INVALID);

    make_policies(&s, puk_buf, sizeof puk_buf);
    /* "PUK" again, and a PIN policy naming a PUK policy the session does not have. */
    puk.pEncryptedValue = puk_buf;
    puk.ulEncryptedValueLen = sizeof puk_buf;
    c = call_of(&puk, sizeof puk, NULL, PUK_VALUE);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_PUK_POLICY, &c), CKR_MECHANISM_PARAM_INVALID);
    CK_SKS_PIN_POLICY_PARAMS pin = {.pId = (CK_BYTE_PTR) "PIN2",
                                    .ulIdLen = 4,
                                    .ulMinLength = 4,
                                    .ulMaxLength = 8,
                                    .ulRetryLimit = 3};
    c = call_of(&pin, sizeof pin, "NOPUK", NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_PIN_POLICY, &c), CKR_MECHANISM_PARAM_INVALID);
    /* A value where the call takes none; a bool that is not CK_TRUE/CK_FALSE. */
    c = call_of(&pin, sizeof pin, "PUK", "1234");
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_PIN_POLICY, &c), CKR_MECHANISM_PARAM_INVALID);
    pin.bUserDefined = 2;
    c = call_of(&pin, sizeof pin, "PUK", NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_PIN_POLICY, &c), CKR_MECHANISM_PARAM_INVALID);

    key_pair k;
    key_pair_init(&k, "Key.1", CK_FALSE);
    make_key_pair(&s, &k, 0);
    /* The certificate needs the verified public key first. */
    sks_writer der;
    sks_writer_init(&der);
    cert_path(k.p.pPublicKey, k.p.ulPublicKeyLen, &der);
    CK_SKS_CERTIFICATE_PATH_PARAMS cp = {.pCertificatePath = der.buf,
                                         .ulCertificatePathLen = der.len};
    c = call_of(&cp, sizeof cp, "Key.1", NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_CERTIFICATE_PATH, &c),
                      CKR_OPERATION_NOT_INITIALIZED);
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    ck_assert_uint_eq(drv->verify_key(&k.p, &spki, &spki_len), CKR_OK);
    /* Not DER certificates. */
    uint8_t junk[4] = {0x30, 0x05, 0x00, 0x00};
    CK_SKS_CERTIFICATE_PATH_PARAMS bad = {.pCertificatePath = junk, .ulCertificatePathLen = 4};
    c = call_of(&bad, sizeof bad, "Key.1", NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_CERTIFICATE_PATH, &c), CKR_MECHANISM_PARAM_INVALID);

    bind_cert(&s, "Key.1", &der, s.r.key[0]);
    /* The close needs every key verified: here it is, and the card takes every MAC. */
    ck_assert_uint_eq(close_session(&s, 1, 0), CKR_OK);
    TL_OK(s.r.c, verify_pin(&s, PIN_VALUE));

    OPENSSL_free(spki);
    sks_writer_free(&der);
    session_free(&s);
}
END_TEST

/* Which answer of the card the relay tampers with. */
enum tamper {
    T_SESSION_ATTESTATION,
    T_DEVICE_PATH,
    T_KEY_ATTESTATION,
    T_PUBLIC_KEY,
    T_CLOSE_ATTESTATION,
};

/* Flip a bit in the device certificate's signature (its last bytes). */
static void flip_device_signature(session *s)
{
    sks_certpath path;
    ck_assert_int_eq(sks_certpath_split(s->path, s->cs.ulDeviceCertificatePathLen, &path), 0);
    s->path[path.cert[0].len - 10] ^= 0x01;
}

/* One flipped bit in the card's answer: CKR_VENDOR_SKS_ATTESTATION, and the session is over. */
static void tampered(enum tamper t)
{
    session s;
    uint8_t puk_buf[64];
    session_init(&s);
    void *key = drv->issuer_key(NULL);
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, key), CKR_OK);
    TL_OK(s.r.c, card_session(&s));
    if (t == T_SESSION_ATTESTATION || t == T_DEVICE_PATH) {
        if (t == T_SESSION_ATTESTATION)
            s.att[s.cs.ulSessionAttestationLen / 2] ^= 0x01;
        else
            flip_device_signature(&s);
        ck_assert_uint_eq(drv->accept(s.anchor, &s.cs), CKR_VENDOR_SKS_ATTESTATION);
        ck_assert_uint_eq(issuer_close(0), CKR_VENDOR_SKS_NO_SESSION);
        session_free(&s);
        return;
    }
    ck_assert_uint_eq(drv->accept(s.anchor, &s.cs), CKR_OK);
    make_policies(&s, puk_buf, sizeof puk_buf);
    key_pair k;
    key_pair_init(&k, "Key.1", CK_FALSE);
    make_key_pair(&s, &k, 0);
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    if (t == T_KEY_ATTESTATION || t == T_PUBLIC_KEY) {
        if (t == T_KEY_ATTESTATION) {
            k.p.attestedPublicKey[0] ^= 0x80;
        } else {
            /* Another P-256 key in place of the card's. */
            EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
            unsigned char *q = k.pub;
            ck_assert_int_eq(i2d_PUBKEY(other, &q), (int)k.p.ulPublicKeyLen);
            EVP_PKEY_free(other);
        }
        ck_assert_uint_eq(drv->verify_key(&k.p, &spki, &spki_len), CKR_VENDOR_SKS_ATTESTATION);
        ck_assert_ptr_null(spki);
        ck_assert_uint_eq(issuer_close(1), CKR_VENDOR_SKS_NO_SESSION);
        session_free(&s);
        return;
    }
    ck_assert_uint_eq(drv->verify_key(&k.p, &spki, &spki_len), CKR_OK);
    certify(&s, "Key.1", spki, spki_len, s.r.key[0]);
    ck_assert_uint_eq(close_session(&s, 1, 1), CKR_VENDOR_SKS_ATTESTATION);
    OPENSSL_free(spki);
    session_free(&s);
}

START_TEST(test_tampered)
{
    tampered((enum tamper)_i);
}
END_TEST

/* A device certificate path that does not lead to the trusted CA is refused. */
START_TEST(test_untrusted_device)
{
    session s;
    session_init(&s);
    EVP_PKEY *other_key;
    X509 *other_ca;
    tl_issuer_ca(&other_key, &other_ca); /* a CA that issued no device certificate */
    void *other = drv->anchor(other_ca);
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, drv->issuer_key(NULL)), CKR_OK);
    TL_OK(s.r.c, card_session(&s));
    ck_assert_uint_eq(drv->accept(other, &s.cs), CKR_VENDOR_SKS_ATTESTATION);
    /* Once failed, even the right anchor does not revive the session. */
    ck_assert_uint_eq(drv->accept(s.anchor, &s.cs), CKR_VENDOR_SKS_NO_SESSION);
    session_free(&s);
}
END_TEST

/*
 * The wrong issuer key: the relay swaps the issuer's public key in the
 * request for another one, so the card encrypts the session secret to a key
 * the issuer does not hold; and a key of the wrong type is refused at once.
 */
START_TEST(test_wrong_issuer_key)
{
    session s;
    session_init(&s);
    EVP_PKEY *mine = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *theirs = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, drv->issuer_key(mine)), CKR_OK);
    unsigned char *q = s.issuer_spki;
    ck_assert_int_eq(i2d_PUBKEY(theirs, &q), (int)s.is.ulIssuerPublicKeyLen);
    TL_OK(s.r.c, card_session(&s));
    ck_assert_uint_eq(drv->accept(s.anchor, &s.cs), CKR_VENDOR_SKS_ATTESTATION);

    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, drv->issuer_key(rsa)),
                      CKR_KEY_TYPE_INCONSISTENT);
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_RSA_OAEP_SHA256, drv->issuer_key(mine)),
                      CKR_KEY_TYPE_INCONSISTENT);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(mine);
    EVP_PKEY_free(theirs);
    session_free(&s);
}
END_TEST

/* The issuer's outputs: the SPKI of its key, a random server session ID, exact sizes. */
START_TEST(test_request_outputs)
{
    session s;
    session_init(&s);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(key, &spki);
    void *h = drv->issuer_key(key);
    /* Too small a buffer for the key: the size comes back. */
    memset(&s.is, 0, sizeof s.is);
    s.is.ulSessionKeyAlgorithm = CKS_SESSION_KEY_ECDH_P256;
    s.is.pIssuerUri = (CK_UTF8CHAR_PTR)ISSUER_URI;
    s.is.ulIssuerUriLen = strlen(ISSUER_URI);
    s.is.ulSessionLifeTime = 3600;
    s.is.pIssuerPublicKey = s.issuer_spki;
    s.is.ulIssuerPublicKeyLen = 10;
    ck_assert_uint_eq(drv->open(&s.is, h), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(s.is.ulIssuerPublicKeyLen, (CK_ULONG)spki_len);
    /* Bad inputs. */
    s.is.ulIssuerPublicKeyLen = sizeof s.issuer_spki;
    s.is.ulSessionLifeTime = 0;
    ck_assert_uint_eq(drv->open(&s.is, h), CKR_MECHANISM_PARAM_INVALID);
    s.is.ulSessionLifeTime = 3600;
    s.is.ulClientOperationLimit = 70000;
    ck_assert_uint_eq(drv->open(&s.is, h), CKR_MECHANISM_PARAM_INVALID);
    s.is.ulClientOperationLimit = 0;
    s.is.ulSessionKeyAlgorithm = 3;
    ck_assert_uint_eq(drv->open(&s.is, h), CKR_MECHANISM_PARAM_INVALID);

    uint8_t first_id[CKS_SESSION_ID_LEN];
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, h), CKR_OK);
    ck_assert_uint_eq(s.is.ulIssuerPublicKeyLen, (CK_ULONG)spki_len);
    ck_assert(memcmp(s.issuer_spki, spki, (size_t)spki_len) == 0);
    memcpy(first_id, s.is.serverSessionId, sizeof first_id);
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, h), CKR_OK);
    ck_assert(memcmp(first_id, s.is.serverSessionId, sizeof first_id) != 0);
    /* Calls before the card's answer is accepted. */
    ck_assert_uint_eq(issuer_close(0), CKR_OPERATION_NOT_INITIALIZED);

    OPENSSL_free(spki);
    EVP_PKEY_free(key);
    session_free(&s);
}
END_TEST

/* ---- the module only: objects, handles, login ------------------------------------- */

/* The provisioning object: what it shows, and that it goes with C_DestroyObject. */
START_TEST(test_module_object)
{
    session s;
    session_init(&s);
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, drv->issuer_key(NULL)), CKR_OK);
    CK_OBJECT_CLASS cls = 0;
    CK_BBOOL priv = CK_FALSE, token = CK_TRUE;
    uint8_t id[64], label[64];
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},     {CKA_PRIVATE, &priv, sizeof priv},
        {CKA_TOKEN, &token, sizeof token}, {CKA_ID, id, sizeof id},
        {CKA_LABEL, label, sizeof label},
    };
    TT_OK(p11->C_GetAttributeValue(mod_session, mod_prov, t, 5));
    ck_assert_uint_eq(cls, CKO_VENDOR_SKS_PROVISIONING);
    ck_assert(priv == CK_TRUE && token == CK_FALSE);
    ck_assert_uint_eq(t[3].ulValueLen, CKS_SESSION_ID_LEN);
    ck_assert(memcmp(id, s.is.serverSessionId, CKS_SESSION_ID_LEN) == 0);
    ck_assert_uint_eq(t[4].ulValueLen, strlen(ISSUER_URI));
    ck_assert(memcmp(label, ISSUER_URI, strlen(ISSUER_URI)) == 0);

    /* A template makes no sense for a call that makes no object. */
    CK_SKS_SESSION_ACCEPT_PARAMS ap = {(CK_OBJECT_HANDLE)(uintptr_t)s.anchor, &s.cs};
    CK_OBJECT_HANDLE h;
    TT_RV(mod_derive(CKM_VENDOR_SKS_SESSION_ACCEPT, &ap, sizeof ap, t, 1, &h),
          CKR_TEMPLATE_INCONSISTENT);
    TT_RV(mod_derive(CKM_VENDOR_SKS_SESSION_ACCEPT, &ap, sizeof ap - 1, NULL, 0, &h),
          CKR_MECHANISM_PARAM_INVALID);
    /* The trust anchor must be a certificate; the base object a provisioning object. */
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CK_SKS_SESSION_ACCEPT_PARAMS not_cert = {(CK_OBJECT_HANDLE)(uintptr_t)drv->issuer_key(ec),
                                             &s.cs};
    EVP_PKEY_free(ec);
    TT_RV(mod_derive(CKM_VENDOR_SKS_SESSION_ACCEPT, &not_cert, sizeof not_cert, NULL, 0, &h),
          CKR_MECHANISM_PARAM_INVALID);
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION_ACCEPT, &ap, sizeof ap};
    TT_RV(p11->C_DeriveKey(mod_session, &m, not_cert.hTrustAnchor, NULL, 0, &h),
          CKR_KEY_TYPE_INCONSISTENT);

    /* Destroyed: the handle leads nowhere any more. */
    TT_OK(p11->C_DestroyObject(mod_session, mod_prov));
    TT_RV(mod_derive(CKM_VENDOR_SKS_SESSION_ACCEPT, &ap, sizeof ap, NULL, 0, &h),
          CKR_KEY_HANDLE_INVALID);
    mod_prov = CK_INVALID_HANDLE;

    /* One made in another PKCS#11 session goes when that session is closed. */
    CK_SESSION_HANDLE other = tt_open(p11, mod_slot);
    CK_MECHANISM gen = {CKM_VENDOR_SKS_SESSION, &s.is, sizeof s.is};
    s.is.hIssuerKey = CK_INVALID_HANDLE;
    s.is.ulIssuerPublicKeyLen = sizeof s.issuer_spki;
    TT_OK(p11->C_GenerateKey(other, &gen, NULL, 0, &h));
    TT_OK(p11->C_CloseSession(other));
    m.pParameter = &ap;
    TT_RV(p11->C_DeriveKey(mod_session, &m, h, NULL, 0, &h), CKR_KEY_HANDLE_INVALID);
    session_free(&s);
}
END_TEST

/* The issuer token lists and describes the issuer side's mechanisms. */
START_TEST(test_module_mechanisms)
{
    static const CK_MECHANISM_TYPE want[] = {
        CKM_VENDOR_SKS_SESSION,
        CKM_VENDOR_SKS_PUK_POLICY,
        CKM_VENDOR_SKS_PIN_POLICY,
        CKM_VENDOR_SKS_KEY_PAIR,
        CKM_VENDOR_SKS_CERTIFICATE_PATH,
        CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY,
        CKM_VENDOR_SKS_CLOSE,
        CKM_VENDOR_SKS_SESSION_ACCEPT,
        CKM_VENDOR_SKS_VERIFY_KEY_PAIR,
        CKM_VENDOR_SKS_VERIFY_CLOSE,
        CKM_VENDOR_SKS_POST_DELETE_KEY,
        CKM_VENDOR_SKS_POST_UNLOCK_KEY,
        CKM_VENDOR_SKS_POST_UPDATE_KEY,
        CKM_VENDOR_SKS_DECLARE_KEY,
        CKM_VENDOR_SKS_DECLARE_PUK_POLICY,
        CKM_VENDOR_SKS_DECLARE_PIN_POLICY,
    };
    CK_MECHANISM_TYPE list[256];
    CK_ULONG n = 256;
    TT_OK(p11->C_GetMechanismList(mod_slot, list, &n));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int listed = 0;
        for (CK_ULONG j = 0; j < n; j++)
            listed |= list[j] == want[i];
        ck_assert_msg(listed, "mechanism 0x%lx not listed", (unsigned long)want[i]);
        CK_MECHANISM_INFO mi;
        TT_OK(p11->C_GetMechanismInfo(mod_slot, want[i], &mi));
        ck_assert(mi.flags & (i == 0 ? CKF_GENERATE : CKF_DERIVE));
        ck_assert(!(mi.flags & CKF_HW));
    }
}
END_TEST

/* Keys must be fit for their use; the issuer's session needs the user logged in. */
START_TEST(test_module_keys)
{
    session s;
    session_init(&s);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    /* An EC key without CKA_DERIVE cannot agree on the session secret. */
    CK_OBJECT_HANDLE sign_only = mod_import_key(ec, CKA_SIGN, CK_FALSE);
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, (void *)(uintptr_t)sign_only),
                      CKR_KEY_FUNCTION_NOT_PERMITTED);
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, (void *)(uintptr_t)12345),
                      CKR_KEY_HANDLE_INVALID);

    /* A key that may not leave the token is not imported into the card. */
    uint8_t puk_buf[64];
    open_accepted(&s, CKS_SESSION_KEY_ECDH_P256, drv->issuer_key(ec));
    make_policies(&s, puk_buf, sizeof puk_buf);
    /* The card key's public key may be kept as a token object, labelled as the template says. */
    key_pair k1;
    key_pair_init(&k1, "Key.1", CK_FALSE);
    make_key_pair(&s, &k1, 1);
    static CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE keep[] = {{CKA_TOKEN, &yes, sizeof yes}, {CKA_LABEL, "card key", 8}};
    CK_OBJECT_HANDLE pub;
    TT_OK(mod_derive(CKM_VENDOR_SKS_VERIFY_KEY_PAIR, &k1.p, sizeof k1.p, keep, 2, &pub));
    CK_BBOOL token = CK_FALSE;
    uint8_t label[16], id[16];
    CK_ATTRIBUTE got[] = {{CKA_TOKEN, &token, sizeof token},
                          {CKA_LABEL, label, sizeof label},
                          {CKA_ID, id, sizeof id}};
    TT_OK(p11->C_GetAttributeValue(mod_session, pub, got, 3));
    ck_assert(token == CK_TRUE);
    ck_assert(got[1].ulValueLen == 8 && memcmp(label, "card key", 8) == 0);
    ck_assert(got[2].ulValueLen == 5 && memcmp(id, "Key.1", 5) == 0);

    key_pair k;
    key_pair_init(&k, "Key.2", CK_TRUE);
    make_key_pair(&s, &k, 0);
    uint8_t enc[1024];
    CK_SKS_PRIVATE_KEY_PARAMS put = {.pEncryptedPrivateKey = enc,
                                     .ulEncryptedPrivateKeyLen = sizeof enc};
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&put, sizeof put, "Key.2", NULL);
    c.hPrivateKey = mod_import_key(ec, CKA_SIGN, CK_FALSE);
    TT_RV(mod_call(CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY, &c), CKR_KEY_UNEXTRACTABLE);
    /* ... nor may another call carry a key. */
    CK_SKS_CLOSE_PARAMS cl = {.ulGeneratedKeys = 1};
    CK_SKS_ISSUER_CALL_PARAMS cc = call_of(&cl, sizeof cl, NULL, NULL);
    cc.hPrivateKey = c.hPrivateKey;
    TT_RV(mod_call(CKM_VENDOR_SKS_CLOSE, &cc), CKR_MECHANISM_PARAM_INVALID);

    /* Logging out ends the issuer's session (a private object); a new one needs the user. */
    CK_OBJECT_HANDLE old = mod_prov;
    mod_prov = CK_INVALID_HANDLE;
    TT_OK(p11->C_Logout(mod_session));
    ck_assert_uint_eq(issuer_request(&s, CKS_SESSION_KEY_ECDH_P256, NULL), CKR_USER_NOT_LOGGED_IN);
    TT_OK(p11->C_Login(mod_session, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
    CK_OBJECT_CLASS cls;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof cls};
    TT_RV(p11->C_GetAttributeValue(mod_session, old, &t, 1), CKR_OBJECT_HANDLE_INVALID);
    EVP_PKEY_free(ec);
    session_free(&s);
}
END_TEST

/* ---- the DER splitter (the relay format of certificate paths) ------------------ */

START_TEST(test_split_certs)
{
    sks_certpath path;
    /* Two SEQUENCEs, short and long form lengths (built by hand). */
    uint8_t two[2 + 3 + 3 + 130];
    two[0] = 0x30, two[1] = 0x03, two[2] = 1, two[3] = 2, two[4] = 3;
    two[5] = 0x30, two[6] = 0x81, two[7] = 130;
    memset(two + 8, 0x55, 130);
    ck_assert_int_eq(sks_certpath_split(two, sizeof two, &path), 0);
    ck_assert_uint_eq(path.count, 2);
    ck_assert_uint_eq(path.cert[0].len, 5);
    ck_assert_uint_eq(path.cert[1].len, 133);
    ck_assert_ptr_eq(path.cert[1].ptr, two + 5);
    ck_assert_int_eq(sks_certpath_split(two, sizeof two - 1, &path), -1);
    ck_assert_uint_eq(path.count, 0);
    ck_assert_int_eq(sks_certpath_split(two, 0, &path), -1);
    uint8_t indefinite[4] = {0x30, 0x80, 0x00, 0x00};
    ck_assert_int_eq(sks_certpath_split(indefinite, 4, &path), -1);
    uint8_t not_seq[2] = {0x31, 0x00};
    ck_assert_int_eq(sks_certpath_split(not_seq, 2, &path), -1);
    uint8_t huge[6] = {0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF};
    ck_assert_int_eq(sks_certpath_split(huge, 6, &path), -1);
    /* Eleven certificates are one too many (SKS_CERT_PATH_MAX = 10). */
    uint8_t eleven[22];
    for (size_t i = 0; i < 11; i++)
        eleven[2 * i] = 0x30, eleven[2 * i + 1] = 0x00;
    ck_assert_int_eq(sks_certpath_split(eleven, 20, &path), 0);
    ck_assert_uint_eq(path.count, 10);
    ck_assert_int_eq(sks_certpath_split(eleven, 22, &path), -1);
    /* A certificate of 65536 bytes does not fit the wire's byte[] (65535). */
    static uint8_t big[4 + 65532 + 1];
    big[0] = 0x30, big[1] = 0x82, big[2] = 0xFF, big[3] = 0xFC; /* 4 + 65532 = 65536 */
    ck_assert_int_eq(sks_certpath_split(big, 4 + 65532, &path), -1);
    big[3] = 0xFB; /* 4 + 65531 = 65535 */
    ck_assert_int_eq(sks_certpath_split(big, 4 + 65531, &path), 0);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------ */

static void add_scenarios(TCase *tc)
{
    tcase_add_test(tc, test_sample_session_ecdh);
    tcase_add_test(tc, test_sample_session_rsa);
    tcase_add_test(tc, test_sample_session_fresh_key);
    tcase_add_test(tc, test_refusals_change_nothing);
    tcase_add_loop_test(tc, test_tampered, T_SESSION_ATTESTATION, T_CLOSE_ATTESTATION + 1);
    tcase_add_test(tc, test_untrusted_device);
    tcase_add_test(tc, test_wrong_issuer_key);
    tcase_add_test(tc, test_request_outputs);
}

int main(void)
{
    TCase *core, *module;
    Suite *s = driver_suite("token-issuer-prov", add_scenarios, &core, &module);
    tcase_add_test(core, test_split_certs);
    tcase_add_test(module, test_module_object);
    tcase_add_test(module, test_module_keys);
    tcase_add_test(module, test_module_mechanisms);
    return tl_run_suite(s);
}
