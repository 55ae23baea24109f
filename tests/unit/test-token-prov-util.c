/*
 * test-token-prov-util.c - the provisioning relay of the vendor mechanism
 * tests (see test-token-prov-util.h).
 */
#include <string.h>

#include <openssl/ecdsa.h>
#include <openssl/x509.h>

#include "test-token-prov-util.h"

#define ISSUER_URI "https://issuer.example/sks"

/* Request a session from an issuer with `key` (NULL: fresh) into the module's parameters. */
static void request_key(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, uint8_t alg,
                        uint16_t limit, uint32_t lifetime, EVP_PKEY *key)
{
    memset(r, 0, sizeof(*r));
    r->f = f;
    r->s = s;
    r->is = sks_issuer_session_new(alg, ISSUER_URI, key);
    ck_assert_ptr_nonnull(r->is);
    sks_req_create_session req;
    ck_assert(sks_issuer_request(r->is, 0, limit, lifetime != 0 ? lifetime : 3600, &req) == 0);
    ck_assert_uint_le(req.issuer_uri.len, sizeof(r->uri));
    ck_assert_uint_le(req.issuer_public_key.len, sizeof(r->issuer_key));
    memcpy(r->uri, req.issuer_uri.ptr, req.issuer_uri.len);
    memcpy(r->issuer_key, req.issuer_public_key.ptr, req.issuer_public_key.len);
    CK_SKS_SESSION_PARAMS *p = &r->sp;
    p->ulSessionKeyAlgorithm = req.session_key_alg;
    memcpy(p->serverSessionId, req.server_session_id.ptr, sizeof(p->serverSessionId));
    p->pIssuerUri = r->uri;
    p->ulIssuerUriLen = req.issuer_uri.len;
    p->pIssuerPublicKey = r->issuer_key;
    p->ulIssuerPublicKeyLen = req.issuer_public_key.len;
    p->bUpdatable = req.updatable;
    p->ulClientOperationLimit = req.client_operation_limit;
    p->ulSessionLifeTime = req.session_life_time;
    p->pEncryptedSessionKey = r->session_key;
    p->ulEncryptedSessionKeyLen = sizeof(r->session_key);
    p->pSessionAttestation = r->attestation;
    p->ulSessionAttestationLen = sizeof(r->attestation);
    p->pDeviceCertificatePath = r->device_path;
    p->ulDeviceCertificatePathLen = sizeof(r->device_path);
}

void tp_request(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, uint8_t alg, uint16_t limit,
                uint32_t lifetime)
{
    request_key(r, f, s, alg, limit, lifetime, NULL);
}

void tp_open_key(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, X509_STORE *trusted,
                 EVP_PKEY *issuer_key)
{
    request_key(r, f, s, SKS_SKALG_ECDH_P256, 0, 0, issuer_key);
    tp_open_sent(r, trusted);
}

void tp_open(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, X509_STORE *trusted,
             uint8_t alg, uint16_t limit, uint32_t lifetime)
{
    tp_request(r, f, s, alg, limit, lifetime);
    tp_open_sent(r, trusted);
}

void tp_open_sent(tp_relay *r, X509_STORE *trusted)
{
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION, &r->sp, sizeof(r->sp)};
    TT_OK(r->f->C_GenerateKey(r->s, &m, NULL, 0, &r->prov));
    r->card_handle = (uint32_t)tp_get_ulong(r->f, r->s, r->prov, CKA_VENDOR_SKS_CARD_HANDLE);

    /* The card's answer as the issuer sees it: the device path split with d2i_X509. */
    sks_resp_create_session resp;
    memset(&resp, 0, sizeof(resp));
    resp.client_session_id = (sks_view){r->sp.clientSessionId, sizeof(r->sp.clientSessionId)};
    resp.encrypted_session_key = (sks_view){r->session_key, r->sp.ulEncryptedSessionKeyLen};
    resp.session_attestation = (sks_view){r->attestation, r->sp.ulSessionAttestationLen};
    resp.provisioning_handle = r->card_handle;
    const unsigned char *pos = r->device_path,
                        *end = r->device_path + r->sp.ulDeviceCertificatePathLen;
    while (pos < end) {
        const unsigned char *start = pos;
        X509 *x = d2i_X509(NULL, &pos, (long)(end - pos));
        ck_assert_msg(x != NULL, "the device certificate path does not parse");
        X509_free(x);
        ck_assert_uint_lt(resp.device_certificate_path.count, SKS_CERT_PATH_MAX);
        resp.device_certificate_path.cert[resp.device_certificate_path.count++] =
            (sks_view){start, (size_t)(pos - start)};
    }
    ck_assert_msg(sks_issuer_accept(r->is, trusted, &resp) == 0, "issuer: %s",
                  sks_issuer_error(r->is));
}

void tp_free(tp_relay *r)
{
    sks_issuer_session_free(r->is);
    r->is = NULL;
}

static void call_init(tp_call *c, CK_MECHANISM_TYPE mech)
{
    memset(c, 0, sizeof(*c));
    c->mech = mech;
    sks_issuer_msg_init(&c->m);
    sks_writer_init(&c->der);
}

void tp_call_free(tp_call *c)
{
    sks_issuer_msg_free(&c->m);
    sks_writer_free(&c->der);
}

/* An issuer view that must be the message's encrypted value (or empty). */
static CK_BYTE_PTR value_of(tp_call *c, sks_view v)
{
    if (v.len == 0)
        return NULL;
    ck_assert_ptr_eq(v.ptr, c->m.value);
    ck_assert_uint_eq(v.len, c->m.value_len);
    return c->m.value;
}

static CK_ULONG copy_id(tp_call *c, sks_view id)
{
    ck_assert_uint_le(id.len, sizeof(c->id));
    memcpy(c->id, id.ptr, id.len);
    return id.len;
}

void tp_puk(tp_relay *r, tp_call *c, const char *id, const char *puk)
{
    call_init(c, CKM_VENDOR_SKS_PUK_POLICY);
    sks_req_create_puk_policy req;
    ck_assert_msg(sks_issuer_prepare_puk_policy(r->is, id,
                                                (sks_view){(const uint8_t *)puk, strlen(puk)},
                                                SKS_PIN_NUMERIC, 5, &c->m, &req) == 0,
                  "%s", sks_issuer_error(r->is));
    CK_SKS_PUK_POLICY_PARAMS *p = &c->p.puk;
    p->pId = c->id;
    p->ulIdLen = copy_id(c, req.id);
    p->pEncryptedValue = value_of(c, req.encrypted_value);
    p->ulEncryptedValueLen = req.encrypted_value.len;
    p->ulFormat = req.format;
    p->ulRetryLimit = req.retry_limit;
    memcpy(p->mac, req.mac.ptr, sizeof(p->mac));
}

void tp_pin_policy(sks_issuer_pin_policy *pp, const char *id, const char *puk_id)
{
    memset(pp, 0, sizeof(*pp));
    pp->id = id;
    pp->puk_id = puk_id;
    pp->format = SKS_PIN_NUMERIC;
    pp->retry_limit = 3;
    pp->grouping = SKS_GROUPING_SHARED;
    pp->min_length = 4;
    pp->max_length = 8;
    pp->caching_support = 1;
}

void tp_pin(tp_relay *r, tp_call *c, const char *id, const char *puk_id, CK_OBJECT_HANDLE hPuk)
{
    call_init(c, CKM_VENDOR_SKS_PIN_POLICY);
    sks_issuer_pin_policy pp;
    tp_pin_policy(&pp, id, puk_id);
    sks_req_create_pin_policy req;
    ck_assert_msg(sks_issuer_prepare_pin_policy(r->is, &pp, 0, &c->m, &req) == 0, "%s",
                  sks_issuer_error(r->is));
    CK_SKS_PIN_POLICY_PARAMS *p = &c->p.pin;
    p->pId = c->id;
    p->ulIdLen = copy_id(c, req.id);
    p->hPukPolicy = hPuk;
    p->bUserDefined = req.user_defined;
    p->bUserModifiable = req.user_modifiable;
    p->ulFormat = req.format;
    p->ulRetryLimit = req.retry_limit;
    p->ulGrouping = req.grouping;
    p->ulPatternRestrictions = req.pattern_restrictions;
    p->ulMinLength = req.min_length;
    p->ulMaxLength = req.max_length;
    p->bCachingSupport = req.caching_support;
    p->ulInputMethod = req.input_method;
    memcpy(p->mac, req.mac.ptr, sizeof(p->mac));
}

void tp_key(tp_relay *r, tp_call *c, const tp_key_spec *k)
{
    call_init(c, CKM_VENDOR_SKS_KEY_PAIR);
    sks_issuer_key_spec ks;
    memset(&ks, 0, sizeof(ks));
    ks.id = k->id;
    ks.pin_policy_id = k->pin_id;
    if (k->pin != NULL)
        ks.pin = (sks_view){(const uint8_t *)k->pin, strlen(k->pin)};
    ks.private_key_backup = k->backup;
    ks.import_private_key = k->import;
    ks.key_usage = k->usage != 0 ? k->usage : SKS_USAGE_SIGN;
    ks.friendly_name = k->name;
    ks.algorithm = k->algorithm != 0 ? k->algorithm : SKS_KEYALG_EC_P256;
    sks_req_create_key_pair req;
    ck_assert_msg(sks_issuer_prepare_key_pair(r->is, &ks, 0, &c->m, &req) == 0, "%s",
                  sks_issuer_error(r->is));
    CK_SKS_KEY_PAIR_PARAMS *p = &c->p.kp;
    p->pId = c->id;
    p->ulIdLen = copy_id(c, req.id);
    p->hPinPolicy = k->hPin;
    p->pPinValue = value_of(c, req.pin_value);
    p->ulPinValueLen = req.pin_value.len;
    p->bPrivateKeyBackup = req.private_key_backup;
    p->bMigratable = req.migratable;
    p->bUpdatable = req.updatable;
    p->bDeleteProtected = req.delete_protected;
    p->bImportPrivateKey = req.import_private_key;
    p->ulKeyUsage = req.key_usage;
    ck_assert_uint_le(req.friendly_name.len, sizeof(c->name));
    if (req.friendly_name.len > 0)
        memcpy(c->name, req.friendly_name.ptr, req.friendly_name.len);
    p->pFriendlyName = c->name;
    p->ulFriendlyNameLen = req.friendly_name.len;
    p->ulAlgorithm = req.algorithm;
    memcpy(p->mac, req.mac.ptr, sizeof(p->mac));
    p->pPublicKey = c->public_key;
    p->ulPublicKeyLen = sizeof(c->public_key);
    p->pEncryptedPrivateKey = c->backup;
    p->ulEncryptedPrivateKeyLen = sizeof(c->backup);
}

void tp_verify_key(tp_relay *r, tp_call *c)
{
    const CK_SKS_KEY_PAIR_PARAMS *p = &c->p.kp;
    sks_resp_create_key_pair resp;
    memset(&resp, 0, sizeof(resp));
    resp.public_key = (sks_view){c->public_key, p->ulPublicKeyLen};
    resp.attested_public_key = (sks_view){p->attestedPublicKey, sizeof(p->attestedPublicKey)};
    resp.encrypted_private_key = (sks_view){c->backup, p->ulEncryptedPrivateKeyLen};
    ck_assert_msg(sks_issuer_verify_key_attestation(r->is, &c->m, &resp) == 0, "%s",
                  sks_issuer_error(r->is));
}

void tp_cert(tp_relay *r, tp_call *c, const char *key_id, CK_OBJECT_HANDLE hKey, sks_view spki)
{
    call_init(c, CKM_VENDOR_SKS_CERTIFICATE_PATH);
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    tl_issue_cert_der(spki, &c->der);
    size_t ee_len = c->der.len;
    tl_issuer_ca(&ca_key, &ca_cert);
    ck_assert(sks_issuer_cert_der(ca_cert, &c->der) == 0);
    sks_view path[2] = {{c->der.buf, ee_len}, {c->der.buf + ee_len, c->der.len - ee_len}};
    sks_req_set_certificate_path req;
    ck_assert_msg(sks_issuer_prepare_certificate_path(r->is, key_id, 0, path, 2, &c->m, &req) == 0,
                  "%s", sks_issuer_error(r->is));
    CK_SKS_CERTIFICATE_PATH_PARAMS *p = &c->p.cp;
    p->hKey = hKey;
    p->pCertificatePath = c->der.buf;
    p->ulCertificatePathLen = c->der.len;
    memcpy(p->mac, req.mac.ptr, sizeof(p->mac));
}

/* importPrivateKey or restorePrivateKey: they differ only in the method that keys the MAC. */
static void put_key(tp_relay *r, tp_call *c, uint8_t method, const char *key_id,
                    CK_OBJECT_HANDLE hKey, EVP_PKEY *key)
{
    call_init(c, method == SKS_M_IMPORT_PRIVATE_KEY ? CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY
                                                    : CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY);
    sks_req_put_private_key req;
    ck_assert_msg(sks_issuer_prepare_put_pkey(r->is, method, key_id, 0, key, &c->m, &req) == 0,
                  "%s", sks_issuer_error(r->is));
    CK_SKS_PRIVATE_KEY_PARAMS *p = &c->p.pk;
    p->hKey = hKey;
    p->pEncryptedPrivateKey = value_of(c, req.encrypted_private_key);
    p->ulEncryptedPrivateKeyLen = req.encrypted_private_key.len;
    memcpy(p->mac, req.mac.ptr, sizeof(p->mac));
}

void tp_import(tp_relay *r, tp_call *c, const char *key_id, CK_OBJECT_HANDLE hKey, EVP_PKEY *key)
{
    put_key(r, c, SKS_M_IMPORT_PRIVATE_KEY, key_id, hKey, key);
}

void tp_restore(tp_relay *r, tp_call *c, const char *key_id, CK_OBJECT_HANDLE hKey, EVP_PKEY *key)
{
    put_key(r, c, SKS_M_RESTORE_PRIVATE_KEY, key_id, hKey, key);
}

void tp_close(tp_relay *r, tp_call *c)
{
    call_init(c, CKM_VENDOR_SKS_CLOSE);
    sks_req_close_session req;
    ck_assert_msg(sks_issuer_prepare_close(r->is, &c->m, &req) == 0, "%s", sks_issuer_error(r->is));
    CK_SKS_CLOSE_PARAMS *p = &c->p.close;
    p->ulGeneratedKeys = req.generated_keys;
    p->ulDeletedKeys = req.deleted_keys;
    p->ulClonedKeys = req.cloned_keys;
    p->ulReplacedKeys = req.replaced_keys;
    p->ulExtensionObjects = req.extension_objects;
    memcpy(p->mac, req.mac.ptr, sizeof(p->mac));
}

void tp_verify_close(tp_relay *r, tp_call *c)
{
    sks_resp_close_session resp;
    resp.attested_response =
        (sks_view){c->p.close.attestedResponse, sizeof(c->p.close.attestedResponse)};
    ck_assert_msg(sks_issuer_verify_close(r->is, &c->m, &resp) == 0, "%s", sks_issuer_error(r->is));
}

CK_RV tp_send(tp_relay *r, tp_call *c, CK_OBJECT_HANDLE *out)
{
    CK_ULONG size;
    switch (c->mech) {
    case CKM_VENDOR_SKS_PUK_POLICY:
        size = sizeof(c->p.puk);
        break;
    case CKM_VENDOR_SKS_PIN_POLICY:
        size = sizeof(c->p.pin);
        break;
    case CKM_VENDOR_SKS_KEY_PAIR:
        size = sizeof(c->p.kp);
        break;
    case CKM_VENDOR_SKS_CERTIFICATE_PATH:
        size = sizeof(c->p.cp);
        break;
    case CKM_VENDOR_SKS_CLOSE:
        size = sizeof(c->p.close);
        break;
    default:
        size = sizeof(c->p.pk);
        break;
    }
    CK_MECHANISM m = {c->mech, &c->p, size};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = r->f->C_DeriveKey(r->s, &m, r->prov, NULL, 0, &h);
    if (out != NULL)
        *out = h;
    return rv;
}

/* ---- what the card holds ---------------------------------------------------- */

CK_ULONG tp_slot_count(CK_FUNCTION_LIST *f)
{
    CK_ULONG n = 0;
    TT_OK(f->C_GetSlotList(CK_TRUE, NULL, &n));
    return n;
}

void tp_assert_gone(tt_env *e, CK_FUNCTION_LIST *f, uint32_t card_handle, uint32_t keys,
                    size_t policies, CK_ULONG slots)
{
    tl_card *c = e->card;
    sks_resp_get_device_info info;
    TL_OK(c, tl_call(c, SKS_M_GET_DEVICE_INFO, NULL, &info, NULL));
    ck_assert_uint_eq(info.used_keys, keys);

    sks_resp_enumerate_pin_policies pp;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_PIN_POLICIES, NULL, &pp, NULL));
    sks_reader rd;
    size_t count = 0;
    sks_reader_init(&rd, pp.policies.ptr, pp.policies.len);
    while (rd.pos < rd.len) {
        sks_pin_policy_info rec;
        const char *why = NULL;
        ck_assert_int_eq(sks_fields_read(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq,
                                         SKS_FF_WIRE, &rd, &rec, &why),
                         SKS_OK);
        count++;
    }
    ck_assert_uint_eq(count, policies);

    /* Unknown or closed: abortProvisioningSession finds nothing to remove. */
    sks_req_abort_session abort_req = {card_handle};
    ck_assert_int_eq(tl_call(c, SKS_M_ABORT_PROVISIONING_SESSION, &abort_req, NULL, NULL),
                     SKS_ERR_NO_SESSION);
    ck_assert_uint_eq(tp_slot_count(f), slots);
}

CK_ULONG tp_get_ulong(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type)
{
    CK_ULONG v = 0;
    CK_ATTRIBUTE a = {type, &v, sizeof(v)};
    TT_OK(f->C_GetAttributeValue(s, h, &a, 1));
    return v;
}

CK_ULONG tp_get_bytes(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type, void *buf, CK_ULONG cap)
{
    CK_ATTRIBUTE a = {type, buf, cap};
    TT_OK(f->C_GetAttributeValue(s, h, &a, 1));
    return a.ulValueLen;
}

/* A raw r|s ECDSA signature as DER, for OpenSSL. */
static size_t ecdsa_der(const uint8_t *sig, size_t n, uint8_t *out)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    ck_assert_ptr_nonnull(es);
    ck_assert_int_eq(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)(n / 2), NULL),
                                    BN_bin2bn(sig + n / 2, (int)(n / 2), NULL)),
                     1);
    unsigned char *q = out;
    int len = i2d_ECDSA_SIG(es, &q);
    ECDSA_SIG_free(es);
    ck_assert_int_gt(len, 0);
    return (size_t)len;
}

void tp_sign_and_verify(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                        CK_OBJECT_HANDLE cert)
{
    static const uint8_t msg[] = "signed by a key provisioned through PKCS#11";
    CK_ULONG kt = tp_get_ulong(f, s, key, CKA_KEY_TYPE);
    CK_MECHANISM m = {kt == CKK_EC ? CKM_ECDSA_SHA256 : CKM_SHA256_RSA_PKCS, NULL, 0};
    uint8_t sig[1024], der[1100], cert_der[4096];
    CK_ULONG siglen = sizeof(sig);
    TT_OK(f->C_SignInit(s, &m, key));
    TT_OK(f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg) - 1, sig, &siglen));

    CK_ULONG n = tp_get_bytes(f, s, cert, CKA_VALUE, cert_der, sizeof(cert_der));
    const unsigned char *p = cert_der;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    ck_assert_ptr_nonnull(x);
    const uint8_t *check = sig;
    size_t check_len = siglen;
    if (kt == CKK_EC) {
        check_len = ecdsa_der(sig, siglen, der);
        check = der;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_ptr_nonnull(md);
    ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(x)), 1);
    ck_assert_int_eq(EVP_DigestVerify(md, check, check_len, msg, sizeof(msg) - 1), 1);
    EVP_MD_CTX_free(md);
    X509_free(x);
}
