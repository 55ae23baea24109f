/*
 * issuer-prov-scenario.c - the material and steps of the provisioning
 * scenarios both sides play (issuer-prov-scenario.h).
 */
#include <check.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "issuer-prov-scenario.h"

const issuer_driver *drv;

/* The card's manufacturer CA (its development CA file). */
X509 *manufacturer_ca(const tl_card *c)
{
    char path[300];
    snprintf(path, sizeof path, "%s/manufacturer/ca-cert.pem", c->dir);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(x);
    return x;
}

/* The issuer's request (CKM_VENDOR_SKS_SESSION on the issuer side). */
CK_RV issuer_request(session *s, CK_ULONG alg, void *issuer_key)
{
    memset(&s->is, 0, sizeof s->is);
    s->is.ulSessionKeyAlgorithm = alg;
    s->is.pIssuerUri = (CK_UTF8CHAR_PTR)ISSUER_URI;
    s->is.ulIssuerUriLen = strlen(ISSUER_URI);
    s->is.bUpdatable = s->updatable ? CK_TRUE : CK_FALSE;
    s->is.ulClientOperationLimit = 50;
    s->is.ulSessionLifeTime = 3600;
    s->is.pIssuerPublicKey = s->issuer_spki;
    s->is.ulIssuerPublicKeyLen = sizeof s->issuer_spki;
    return drv->open(&s->is, issuer_key);
}

/* The relay copies the request into the card side's struct and runs it on the card. */
int card_session(session *s)
{
    memset(&s->cs, 0, sizeof s->cs);
    s->cs.ulSessionKeyAlgorithm = s->is.ulSessionKeyAlgorithm;
    memcpy(s->cs.serverSessionId, s->is.serverSessionId, CKS_SESSION_ID_LEN);
    s->cs.pIssuerUri = s->is.pIssuerUri;
    s->cs.ulIssuerUriLen = s->is.ulIssuerUriLen;
    s->cs.pIssuerPublicKey = s->is.pIssuerPublicKey;
    s->cs.ulIssuerPublicKeyLen = s->is.ulIssuerPublicKeyLen;
    s->cs.bUpdatable = s->is.bUpdatable;
    s->cs.ulClientOperationLimit = s->is.ulClientOperationLimit;
    s->cs.ulSessionLifeTime = s->is.ulSessionLifeTime;
    s->cs.pEncryptedSessionKey = s->esk;
    s->cs.ulEncryptedSessionKeyLen = sizeof s->esk;
    s->cs.pSessionAttestation = s->att;
    s->cs.ulSessionAttestationLen = sizeof s->att;
    s->cs.pDeviceCertificatePath = s->path;
    s->cs.ulDeviceCertificatePathLen = sizeof s->path;
    return relay_session(&s->r, &s->cs);
}

void session_init(session *s)
{
    memset(s, 0, sizeof *s);
    s->r.c = tl_card_new();
    sks_writer_init(&s->r.ans);
    s->ca = manufacturer_ca(s->r.c);
    s->anchor = drv->anchor(s->ca);
}

void session_next(session *s)
{
    memset(&s->is, 0, sizeof s->is);
    memset(&s->cs, 0, sizeof s->cs);
    s->r.session = 0;
}

void session_free(session *s)
{
    sks_writer_free(&s->r.ans);
    X509_free(s->ca);
    tl_card_free(s->r.c);
}

/* Open, relay and accept: the session is ready for calls. */
void open_accepted(session *s, CK_ULONG alg, void *issuer_key)
{
    ck_assert_uint_eq(issuer_request(s, alg, issuer_key), CKR_OK);
    TL_OK(s->r.c, card_session(s));
    CK_RV rv = drv->accept(s->anchor, &s->cs);
    ck_assert_msg(rv == CKR_OK, "accept: 0x%lx", (unsigned long)rv);
}

/* The issuer's call parameters around one card-side struct. */
CK_SKS_ISSUER_CALL_PARAMS call_of(void *card_struct, CK_ULONG size, const char *ref,
                                  const char *value)
{
    CK_SKS_ISSUER_CALL_PARAMS c;
    memset(&c, 0, sizeof c);
    c.pCall = card_struct;
    c.ulCallLen = size;
    if (ref != NULL) {
        c.pReferenceId = (CK_BYTE_PTR)ref;
        c.ulReferenceIdLen = strlen(ref);
    }
    if (value != NULL) {
        c.pValue = (CK_BYTE_PTR)value;
        c.ulValueLen = strlen(value);
    }
    c.hPrivateKey = CK_INVALID_HANDLE;
    return c;
}

CK_SKS_PUK_POLICY_PARAMS puk_policy_params(uint8_t *enc_buf, CK_ULONG enc_cap)
{
    CK_SKS_PUK_POLICY_PARAMS puk = {
        .pId = (CK_BYTE_PTR) "PUK",
        .ulIdLen = 3,
        .pEncryptedValue = enc_buf,
        .ulEncryptedValueLen = enc_cap,
        .ulFormat = SKS_PIN_NUMERIC,
        .ulRetryLimit = 3,
    };
    return puk;
}

CK_SKS_PIN_POLICY_PARAMS pin_policy_params(void)
{
    CK_SKS_PIN_POLICY_PARAMS pin = {
        .pId = (CK_BYTE_PTR) "PIN",
        .ulIdLen = 3,
        .bUserDefined = CK_FALSE,
        .bUserModifiable = CK_TRUE,
        .ulFormat = SKS_PIN_NUMERIC,
        .ulRetryLimit = 3,
        .ulMinLength = 4,
        .ulMaxLength = 8,
        .bCachingSupport = CK_TRUE,
    };
    return pin;
}

void make_policies(session *s, uint8_t *puk_buf, CK_ULONG puk_cap)
{
    CK_SKS_PUK_POLICY_PARAMS puk = puk_policy_params(puk_buf, puk_cap);
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&puk, sizeof puk, NULL, PUK_VALUE);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_PUK_POLICY, &c), CKR_OK);
    /* Enc of 8 bytes (docs/protocol.md 5.3): a 16-byte IV and one padded block. */
    ck_assert_uint_eq(puk.ulEncryptedValueLen, 32);
    TL_OK(s->r.c, relay_puk(&s->r, &puk));

    CK_SKS_PIN_POLICY_PARAMS pin = pin_policy_params();
    c = call_of(&pin, sizeof pin, "PUK", NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_PIN_POLICY, &c), CKR_OK);
    TL_OK(s->r.c, relay_pin(&s->r, &pin, s->r.puk));
}

void key_pair_init(key_pair *k, const char *id, CK_BBOOL import)
{
    memset(k, 0, sizeof *k);
    k->p.pId = (CK_BYTE_PTR)id;
    k->p.ulIdLen = strlen(id);
    k->p.pPinValue = k->pin;
    k->p.ulPinValueLen = sizeof k->pin;
    k->p.bImportPrivateKey = import;
    k->p.ulKeyUsage = SKS_USAGE_SIGN;
    k->p.pFriendlyName = (CK_UTF8CHAR_PTR) "My key";
    k->p.ulFriendlyNameLen = 6;
    k->p.ulAlgorithm = SKS_KEYALG_EC_P256;
    k->p.pPublicKey = k->pub;
    k->p.ulPublicKeyLen = sizeof k->pub;
    k->p.pEncryptedPrivateKey = k->enc;
    k->p.ulEncryptedPrivateKeyLen = sizeof k->enc;
}

/* Prepare createKeyPair under "PIN" and relay it; the card's answer is in k. */
void make_key_pair(session *s, key_pair *k, size_t slot)
{
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&k->p, sizeof k->p, "PIN", PIN_VALUE);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_KEY_PAIR, &c), CKR_OK);
    /* The PIN travels encrypted: Enc of 4 bytes is 32 (5.3), never the clear PIN. */
    ck_assert_uint_eq(k->p.ulPinValueLen, 32);
    TL_OK(s->r.c, relay_key_pair(&s->r, &k->p, s->r.pin, slot));
}

/* A certificate for spki from the test issuer CA, followed by that CA: a 2-certificate path. */
void cert_path(const uint8_t *spki, size_t spki_len, sks_writer *der)
{
    tl_issue_cert_path_der((sks_view){spki, spki_len}, der);
}

void bind_cert(session *s, const char *key_id, const sks_writer *der, uint32_t key_handle)
{
    CK_SKS_CERTIFICATE_PATH_PARAMS cp = {
        .pCertificatePath = der->buf,
        .ulCertificatePathLen = der->len,
    };
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&cp, sizeof cp, key_id, NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_CERTIFICATE_PATH, &c), CKR_OK);
    TL_OK(s->r.c, relay_cert(&s->r, &cp, key_handle));
}

void certify(session *s, const char *key_id, const uint8_t *spki, size_t spki_len,
             uint32_t key_handle)
{
    sks_writer der;
    sks_writer_init(&der);
    cert_path(spki, spki_len, &der);
    bind_cert(s, key_id, &der, key_handle);
    sks_writer_free(&der);
}

CK_RV issuer_close(CK_ULONG keys)
{
    CK_SKS_CLOSE_PARAMS cl = {.ulGeneratedKeys = keys};
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&cl, sizeof cl, NULL, NULL);
    return drv->call(CKM_VENDOR_SKS_CLOSE, &c);
}

CK_RV close_with(session *s, CK_SKS_CLOSE_PARAMS *cl, int flip)
{
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(cl, sizeof *cl, NULL, NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_CLOSE, &c), CKR_OK);
    TL_OK(s->r.c, relay_close(&s->r, cl));
    if (flip)
        cl->attestedResponse[7] ^= 0x01;
    return drv->verify_close(cl);
}

CK_RV close_session(session *s, CK_ULONG keys, int flip)
{
    CK_SKS_CLOSE_PARAMS cl = {.ulGeneratedKeys = keys};
    return close_with(s, &cl, flip);
}

/* ECDSA with SHA-256 by the card key, verified with `pub` by OpenSSL. */
int card_signs(session *s, uint32_t key, EVP_PKEY *pub)
{
    uint8_t hash[32];
    const char *msg = "issued through PKCS#11";
    ck_assert(EVP_Digest(msg, strlen(msg), hash, NULL, EVP_sha256(), NULL) == 1);
    sks_req_sign req = {.key_handle = key,
                        .algorithm = SKS_SIGN_ECDSA,
                        .hash = SKS_HASH_NONE,
                        .data = {hash, sizeof hash}};
    sks_resp_sign resp;
    int st = tl_call(s->r.c, SKS_M_SIGN_HASHED_DATA, &req, &resp, &s->r.ans);
    if (st != SKS_OK)
        return 0;
    ck_assert_uint_eq(resp.signature.len, 64);
    return tl_signature_ok(pub, 0, msg, strlen(msg), resp.signature.ptr, resp.signature.len);
}

int verify_pin(session *s, const char *pin)
{
    return tl_verify_pin(s->r.c, s->r.pin, pin);
}

EVP_PKEY *spki_key(const uint8_t *p, size_t n)
{
    const unsigned char *q = p;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &q, (long)n);
    ck_assert_ptr_nonnull(k);
    return k;
}

void use_core(void)
{
    drv = &core_driver;
    drv->setup();
}

void use_module(void)
{
    drv = &module_driver;
    drv->setup();
}

void driver_done(void)
{
    drv->teardown();
}

Suite *driver_suite(const char *name, void (*add_scenarios)(TCase *tc), TCase **core,
                    TCase **module)
{
    Suite *s = suite_create(name);
    *core = tcase_create("core");
    tcase_set_timeout(*core, 120);
    tcase_add_checked_fixture(*core, use_core, driver_done);
    add_scenarios(*core);
    suite_add_tcase(s, *core);
    *module = tcase_create("module");
    tcase_set_timeout(*module, 120);
    tcase_add_checked_fixture(*module, use_module, driver_done);
    add_scenarios(*module);
    suite_add_tcase(s, *module);
    return s;
}
