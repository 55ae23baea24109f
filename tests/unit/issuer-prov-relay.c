/*
 * issuer-prov-relay.c - the card side of a provisioning session as the
 * test plays it (issuer-prov-relay.h).
 */
#include <string.h>

#include "issuer-prov-relay.h"
#include "protocol/sks_keys.h"

/* Copy a view into a caller buffer (size in, length out); fails the test when it does not fit. */
static void put_out(CK_BYTE_PTR buf, CK_ULONG *len, sks_view v)
{
    ck_assert_msg(v.len <= *len, "a relay buffer is too small (%zu > %lu)", v.len,
                  (unsigned long)*len);
    if (v.len > 0)
        memcpy(buf, v.ptr, v.len);
    *len = v.len;
}

int relay_session(relay *r, CK_SKS_SESSION_PARAMS *cs)
{
    const sks_req_create_session req = {
        .session_key_alg = (uint8_t)cs->ulSessionKeyAlgorithm,
        .server_session_id = {cs->serverSessionId, CKS_SESSION_ID_LEN},
        .issuer_uri = {cs->pIssuerUri, cs->ulIssuerUriLen},
        .issuer_public_key = {cs->pIssuerPublicKey, cs->ulIssuerPublicKeyLen},
        .updatable = cs->bUpdatable,
        .client_operation_limit = (uint16_t)cs->ulClientOperationLimit,
        .session_life_time = (uint32_t)cs->ulSessionLifeTime,
    };
    sks_resp_create_session resp;
    int st = tl_call(r->c, SKS_M_CREATE_PROVISIONING_SESSION, &req, &resp, &r->ans);
    if (st != SKS_OK)
        return st;
    ck_assert_uint_eq(resp.client_session_id.len, CKS_SESSION_ID_LEN);
    memcpy(cs->clientSessionId, resp.client_session_id.ptr, CKS_SESSION_ID_LEN);
    put_out(cs->pEncryptedSessionKey, &cs->ulEncryptedSessionKeyLen, resp.encrypted_session_key);
    put_out(cs->pSessionAttestation, &cs->ulSessionAttestationLen, resp.session_attestation);
    /* The device certificate path as the card side returns it: DER after DER. */
    CK_ULONG cap = cs->ulDeviceCertificatePathLen, used = 0;
    for (size_t i = 0; i < resp.device_certificate_path.count; i++) {
        sks_view v = resp.device_certificate_path.cert[i];
        ck_assert(used + v.len <= cap);
        memcpy(cs->pDeviceCertificatePath + used, v.ptr, v.len);
        used += v.len;
    }
    cs->ulDeviceCertificatePathLen = used;
    r->session = resp.provisioning_handle;
    return st;
}

int relay_puk(relay *r, const CK_SKS_PUK_POLICY_PARAMS *p)
{
    const sks_req_create_puk_policy req = {
        .provisioning_handle = r->session,
        .id = {p->pId, p->ulIdLen},
        .encrypted_value = {p->pEncryptedValue, p->ulEncryptedValueLen},
        .format = (uint8_t)p->ulFormat,
        .retry_limit = (uint8_t)p->ulRetryLimit,
        .mac = {p->mac, CKS_MAC_LEN},
    };
    sks_resp_create_puk_policy resp;
    int st = tl_call(r->c, SKS_M_CREATE_PUK_POLICY, &req, &resp, &r->ans);
    if (st == SKS_OK)
        r->puk = resp.puk_policy_handle;
    return st;
}

int relay_pin(relay *r, const CK_SKS_PIN_POLICY_PARAMS *p, uint32_t puk_handle)
{
    const sks_req_create_pin_policy req = {
        .provisioning_handle = r->session,
        .id = {p->pId, p->ulIdLen},
        .puk_policy_handle = puk_handle,
        .user_defined = p->bUserDefined,
        .user_modifiable = p->bUserModifiable,
        .format = (uint8_t)p->ulFormat,
        .retry_limit = (uint8_t)p->ulRetryLimit,
        .grouping = (uint8_t)p->ulGrouping,
        .pattern_restrictions = (uint8_t)p->ulPatternRestrictions,
        .min_length = (uint8_t)p->ulMinLength,
        .max_length = (uint8_t)p->ulMaxLength,
        .caching_support = p->bCachingSupport,
        .input_method = (uint8_t)p->ulInputMethod,
        .mac = {p->mac, CKS_MAC_LEN},
    };
    sks_resp_create_pin_policy resp;
    int st = tl_call(r->c, SKS_M_CREATE_PIN_POLICY, &req, &resp, &r->ans);
    if (st == SKS_OK)
        r->pin = resp.pin_policy_handle;
    return st;
}

/* createKeyPair; the answer goes into the struct's out fields as the card side returns it. */
int relay_key_pair(relay *r, CK_SKS_KEY_PAIR_PARAMS *p, uint32_t pin_handle, size_t slot)
{
    const sks_req_create_key_pair req = {
        .provisioning_handle = r->session,
        .id = {p->pId, p->ulIdLen},
        .pin_policy_handle = pin_handle,
        .pin_value = {p->pPinValue, p->ulPinValueLen},
        .private_key_backup = p->bPrivateKeyBackup,
        .migratable = p->bMigratable,
        .updatable = p->bUpdatable,
        .delete_protected = p->bDeleteProtected,
        .import_private_key = p->bImportPrivateKey,
        .key_usage = (uint8_t)p->ulKeyUsage,
        .friendly_name = {p->pFriendlyName, p->ulFriendlyNameLen},
        .algorithm = (uint8_t)p->ulAlgorithm,
        .mac = {p->mac, CKS_MAC_LEN},
    };
    sks_resp_create_key_pair resp;
    int st = tl_call(r->c, SKS_M_CREATE_KEY_PAIR, &req, &resp, &r->ans);
    if (st != SKS_OK)
        return st;
    put_out(p->pPublicKey, &p->ulPublicKeyLen, resp.public_key);
    ck_assert_uint_eq(resp.attested_public_key.len, CKS_MAC_LEN);
    memcpy(p->attestedPublicKey, resp.attested_public_key.ptr, CKS_MAC_LEN);
    put_out(p->pEncryptedPrivateKey, &p->ulEncryptedPrivateKeyLen, resp.encrypted_private_key);
    r->key[slot] = resp.key_handle;
    return st;
}

int relay_cert(relay *r, const CK_SKS_CERTIFICATE_PATH_PARAMS *p, uint32_t key_handle)
{
    sks_req_set_certificate_path req;
    memset(&req, 0, sizeof req);
    req.provisioning_handle = r->session;
    req.key_handle = key_handle;
    ck_assert_int_eq(
        sks_certpath_split(p->pCertificatePath, p->ulCertificatePathLen, &req.certificate_path), 0);
    req.mac = (sks_view){p->mac, CKS_MAC_LEN};
    return tl_call(r->c, SKS_M_SET_CERTIFICATE_PATH, &req, NULL, &r->ans);
}

int relay_put_key(relay *r, uint8_t method, const CK_SKS_PRIVATE_KEY_PARAMS *p, uint32_t key_handle)
{
    const sks_req_put_private_key req = {
        .provisioning_handle = r->session,
        .key_handle = key_handle,
        .encrypted_private_key = {p->pEncryptedPrivateKey, p->ulEncryptedPrivateKeyLen},
        .mac = {p->mac, CKS_MAC_LEN},
    };
    return tl_call(r->c, method, &req, NULL, &r->ans);
}

int relay_close(relay *r, CK_SKS_CLOSE_PARAMS *p)
{
    const sks_req_close_session req = {
        .provisioning_handle = r->session,
        .generated_keys = (uint16_t)p->ulGeneratedKeys,
        .deleted_keys = (uint16_t)p->ulDeletedKeys,
        .cloned_keys = (uint16_t)p->ulClonedKeys,
        .replaced_keys = (uint16_t)p->ulReplacedKeys,
        .extension_objects = (uint16_t)p->ulExtensionObjects,
        .mac = {p->mac, CKS_MAC_LEN},
    };
    sks_resp_close_session resp;
    int st = tl_call(r->c, SKS_M_CLOSE_PROVISIONING_SESSION, &req, &resp, &r->ans);
    if (st == SKS_OK) {
        ck_assert_uint_eq(resp.attested_response.len, CKS_MAC_LEN);
        memcpy(p->attestedResponse, resp.attested_response.ptr, CKS_MAC_LEN);
    }
    return st;
}

int relay_post(relay *r, uint8_t method, const CK_SKS_POST_PARAMS *p, uint32_t key_handle,
               uint32_t new_key_handle)
{
    /* The key ID and public key are MAC-only: the card fills them in from its record. */
    const sks_req_post_key req = {
        .provisioning_handle = r->session,
        .key_handle = key_handle,
        .new_key_handle = new_key_handle,
        .mac = {p->mac, CKS_MAC_LEN},
    };
    return tl_call(r->c, method, &req, NULL, &r->ans);
}
