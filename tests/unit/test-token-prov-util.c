/*
 * test-token-prov-util.c - the provisioning relay of the vendor mechanism
 * tests (see test-token-prov-util.h).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "test-token-prov-util.h"

#define ISSUER_URI "https://issuer.example/sks"

/* The issuer library did what was asked (0), or the test fails with its error. */
static void issuer_ok(const tp_relay *r, int rc)
{
    ck_assert_msg(rc == 0, "issuer: %s", sks_issuer_error(r->is));
}

/*
 * Request a session from the issuer with `key` (NULL: fresh) under `uri`
 * into the module's parameters.
 */
static void request_as(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, uint8_t alg,
                       uint16_t limit, uint32_t lifetime, EVP_PKEY *key, const char *uri,
                       uint8_t updatable)
{
    memset(r, 0, sizeof(*r));
    r->f = f;
    r->s = s;
    r->is = sks_issuer_session_new(alg, uri, key);
    ck_assert_ptr_nonnull(r->is);
    sks_req_create_session req;
    ck_assert(sks_issuer_request(r->is, updatable, limit, lifetime != 0 ? lifetime : 3600, &req) ==
              0);
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
    request_as(r, f, s, alg, limit, lifetime, NULL, ISSUER_URI, 0);
}

void tp_open_key(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, X509_STORE *trusted,
                 EVP_PKEY *issuer_key)
{
    tp_open_as(r, f, s, trusted, issuer_key, ISSUER_URI, 0);
}

void tp_open_as(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, X509_STORE *trusted,
                EVP_PKEY *issuer_key, const char *uri, uint8_t updatable)
{
    request_as(r, f, s, SKS_SKALG_ECDH_P256, 0, 0, issuer_key, uri, updatable);
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
    r->card_handle = (uint32_t)tt_get_ulong(r->f, r->s, r->prov, CKA_VENDOR_SKS_CARD_HANDLE);

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
    issuer_ok(r, sks_issuer_accept(r->is, trusted, &resp));
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
    issuer_ok(r, sks_issuer_prepare_puk_policy(r->is, id,
                                               (sks_view){(const uint8_t *)puk, strlen(puk)},
                                               SKS_PIN_NUMERIC, 5, &c->m, &req));
    CK_SKS_PUK_POLICY_PARAMS *p = &c->p.puk;
    p->pId = c->id;
    p->ulIdLen = copy_id(c, req.id);
    p->pEncryptedValue = value_of(c, req.encrypted_value);
    p->ulEncryptedValueLen = req.encrypted_value.len;
    p->ulFormat = req.format;
    p->ulRetryLimit = req.retry_limit;
    memcpy(p->mac, req.mac.ptr, sizeof(p->mac));
}

void tp_pin(tp_relay *r, tp_call *c, const char *id, const char *puk_id, CK_OBJECT_HANDLE hPuk)
{
    call_init(c, CKM_VENDOR_SKS_PIN_POLICY);
    sks_issuer_pin_policy pp;
    tl_pin_policy(&pp, id, puk_id);
    sks_req_create_pin_policy req;
    issuer_ok(r, sks_issuer_prepare_pin_policy(r->is, &pp, 0, &c->m, &req));
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
    issuer_ok(r, sks_issuer_prepare_key_pair(r->is, &ks, 0, &c->m, &req));
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

sks_view tp_spki(const tp_call *key)
{
    return (sks_view){key->public_key, key->p.kp.ulPublicKeyLen};
}

void tp_verify_key(tp_relay *r, tp_call *c)
{
    const CK_SKS_KEY_PAIR_PARAMS *p = &c->p.kp;
    sks_resp_create_key_pair resp;
    memset(&resp, 0, sizeof(resp));
    resp.public_key = (sks_view){c->public_key, p->ulPublicKeyLen};
    resp.attested_public_key = (sks_view){p->attestedPublicKey, sizeof(p->attestedPublicKey)};
    resp.encrypted_private_key = (sks_view){c->backup, p->ulEncryptedPrivateKeyLen};
    issuer_ok(r, sks_issuer_verify_key_attestation(r->is, &c->m, &resp));
}

void tp_cert(tp_relay *r, tp_call *c, const char *key_id, CK_OBJECT_HANDLE hKey, sks_view spki)
{
    call_init(c, CKM_VENDOR_SKS_CERTIFICATE_PATH);
    size_t ee_len = tl_issue_cert_path_der(spki, &c->der);
    sks_view path[2] = {{c->der.buf, ee_len}, {c->der.buf + ee_len, c->der.len - ee_len}};
    sks_req_set_certificate_path req;
    issuer_ok(r, sks_issuer_prepare_certificate_path(r->is, key_id, 0, path, 2, &c->m, &req));
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
    issuer_ok(r, sks_issuer_prepare_put_pkey(r->is, method, key_id, 0, key, &c->m, &req));
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
    issuer_ok(r, sks_issuer_prepare_close(r->is, &c->m, &req));
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
    issuer_ok(r, sks_issuer_verify_close(r->is, &c->m, &resp));
}

/* The size of the parameter struct of a call's mechanism. */
static CK_ULONG params_size(const tp_call *c)
{
    switch (c->mech) {
    case CKM_VENDOR_SKS_PUK_POLICY:
        return sizeof(c->p.puk);
    case CKM_VENDOR_SKS_PIN_POLICY:
        return sizeof(c->p.pin);
    case CKM_VENDOR_SKS_KEY_PAIR:
        return sizeof(c->p.kp);
    case CKM_VENDOR_SKS_CERTIFICATE_PATH:
        return sizeof(c->p.cp);
    case CKM_VENDOR_SKS_CLOSE:
        return sizeof(c->p.close);
    default:
        return sizeof(c->p.pk);
    }
}

CK_RV tp_send(tp_relay *r, tp_call *c, CK_OBJECT_HANDLE *out)
{
    CK_MECHANISM m = {c->mech, &c->p, params_size(c)};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = r->f->C_DeriveKey(r->s, &m, r->prov, NULL, 0, &h);
    if (out != NULL)
        *out = h;
    return rv;
}

void tp_key_with_cert(tp_relay *r, tp_call *key, tp_call *cert, const tp_key_spec *k,
                      CK_OBJECT_HANDLE *hkey, CK_OBJECT_HANDLE *hcert)
{
    tp_key(r, key, k);
    TT_OK(tp_send(r, key, hkey));
    tp_verify_key(r, key);
    tp_cert(r, cert, k->id, *hkey, tp_spki(key));
    TT_OK(tp_send(r, cert, hcert));
}

CK_RV tp_close_session(tp_relay *r)
{
    tp_call close;
    CK_OBJECT_HANDLE none = 1;
    tp_close(r, &close);
    CK_RV rv = tp_send(r, &close, &none);
    if (rv == CKR_OK) {
        ck_assert_uint_eq(none, CK_INVALID_HANDLE);
        tp_verify_close(r, &close);
    }
    tp_call_free(&close);
    return rv;
}

/* ---- what the card holds ---------------------------------------------------- */

void tp_env_open(tp_env *x)
{
    tt_env_with_card(&x->e, NULL);
    x->f = tt_init();
    x->slots = tp_slot_count(x->f);
    x->s = tt_open(x->f, tt_free_slot(x->f));
}

void tp_env_close(tp_env *x)
{
    TT_OK(x->f->C_Finalize(NULL));
    tt_env_free(&x->e);
}

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

void tp_sign_and_verify(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                        CK_OBJECT_HANDLE cert)
{
    CK_ULONG n;
    uint8_t *der = tt_get_value(f, s, cert, CKA_VALUE, &n);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    ck_assert_ptr_nonnull(x);
    tt_sign_and_verify(f, s, key, X509_get0_pubkey(x));
    X509_free(x);
    free(der);
}
