/*
 * tok_issuer_prov_calls.c - the in-session calls of the issuer side: each
 * takes the card side's parameter struct of its mechanism (with the
 * issuer's clear values beside it in CK_SKS_ISSUER_CALL_PARAMS), checks
 * every field before anything is prepared, has the issuer library MAC and
 * encrypt the call, and writes the MAC and the encrypted values back into
 * the struct for the card side. The declarations of an earlier session's
 * PUK and PIN policies (6.9) take the same structs and share the checks;
 * the post-provisioning calls are tok_issuer_prov_post.c's. Also the
 * verification of the card's key attestations.
 *
 * Everything that could make the card refuse a call is checked where the
 * issuer knows it (IDs of this session, buffer sizes, value ranges), so a
 * refused argument costs no counter value and the session goes on.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "protocol/sks_keys.h"
#include "token/tok_issuer_prov_int.h"
#include "token/tok_try.h"

/* Size of Enc() of n clear bytes (docs/protocol.md 5.3): IV and PKCS#7-padded blocks. */
static CK_ULONG enc_len(size_t n)
{
    return (CK_ULONG)(SKS_ENC_IV_LEN + SKS_ENC_IV_LEN * (n / SKS_ENC_IV_LEN + 1));
}

/* An output buffer of the caller: CKR_BUFFER_TOO_SMALL (and the size needed) if short. */
static CK_RV out_buffer(tok_iprov *ip, CK_BYTE_PTR buf, CK_ULONG_PTR len, CK_ULONG need)
{
    if (need > 0 && (buf == NULL || *len < need)) {
        *len = need;
        return iprov_bad(ip, CKR_BUFFER_TOO_SMALL, "an output buffer is too small");
    }
    return CKR_OK;
}

static CK_RV copy_out(tok_iprov *ip, CK_BYTE_PTR buf, CK_ULONG_PTR len, sks_view v)
{
    if (v.len > *len && v.len > 0)
        return iprov_broken(ip, CKR_GENERAL_ERROR, "a prepared value outgrew its buffer");
    if (v.len > 0)
        memcpy(buf, v.ptr, v.len);
    *len = v.len;
    return CKR_OK;
}

static int byte_ok(CK_ULONG v)
{
    return v <= 0xFFu;
}

/* ---- the calls ------------------------------------------------------------ */

/*
 * createPUKPolicy; or, `declare`, a PUK policy of an earlier session
 * (6.9): recorded in the session with its values, nothing prepared, and
 * its PUK value unknown.
 */
static CK_RV puk_policy(tok_iprov *ip, const CK_SKS_ISSUER_CALL_PARAMS *call, int declare)
{
    CK_SKS_PUK_POLICY_PARAMS *c = call->pCall;
    iprov_rec rec, *none;
    sks_view puk;
    TRY(iprov_new_id(ip, c->pId, c->ulIdLen, IPROV_PUK, &rec));
    TRY(iprov_reference(ip, call, IPROV_REF_NONE, IPROV_PUK, &none));
    TRY(iprov_clear_value(ip, call, !declare, &puk));
    if ((!declare && puk.len == 0) || !byte_ok(c->ulFormat) || !byte_ok(c->ulRetryLimit))
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "a PUK needs a value of 1..128 bytes, Format and RetryLimit 0..255");
    if (declare) {
        rec.earlier = 1;
        TRY(iprov_add(ip, &rec));
        if (sks_issuer_declare_puk_policy(ip->is, rec.id, (uint8_t)c->ulFormat,
                                          (uint8_t)c->ulRetryLimit) != 0)
            return iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot declare the PUK policy");
        return CKR_OK;
    }
    TRY(out_buffer(ip, c->pEncryptedValue, &c->ulEncryptedValueLen, enc_len(puk.len)));

    sks_issuer_msg *m = iprov_msg_new();
    if (m == NULL || iprov_add(ip, &rec) != CKR_OK) {
        iprov_msg_done(m);
        return CKR_HOST_MEMORY;
    }
    sks_req_create_puk_policy req;
    CK_RV rv = CKR_OK;
    if (sks_issuer_prepare_puk_policy(ip->is, rec.id, puk, (uint8_t)c->ulFormat,
                                      (uint8_t)c->ulRetryLimit, m, &req) != 0)
        rv = iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot prepare createPUKPolicy");
    if (rv == CKR_OK)
        rv = copy_out(ip, c->pEncryptedValue, &c->ulEncryptedValueLen, req.encrypted_value);
    if (rv == CKR_OK)
        memcpy(c->mac, m->mac, CKS_MAC_LEN);
    iprov_msg_done(m);
    return rv;
}

/*
 * createPINPolicy; or, `declare`, a PIN policy of an earlier session
 * (6.9), whose PUK policy (if any) must be declared too.
 */
static CK_RV pin_policy(tok_iprov *ip, const CK_SKS_ISSUER_CALL_PARAMS *call, int declare)
{
    CK_SKS_PIN_POLICY_PARAMS *c = call->pCall;
    iprov_rec rec, *puk;
    sks_view none;
    TRY(iprov_new_id(ip, c->pId, c->ulIdLen, IPROV_PIN, &rec));
    TRY(iprov_reference(ip, call, IPROV_REF_OPTIONAL, IPROV_PUK, &puk));
    TRY(iprov_clear_value(ip, call, 0, &none));
    if (!iprov_bool_ok(c->bUserDefined) || !iprov_bool_ok(c->bUserModifiable) ||
        !iprov_bool_ok(c->bCachingSupport) || !byte_ok(c->ulFormat) || !byte_ok(c->ulRetryLimit) ||
        !byte_ok(c->ulGrouping) || !byte_ok(c->ulPatternRestrictions) || !byte_ok(c->ulMinLength) ||
        !byte_ok(c->ulMaxLength) || !byte_ok(c->ulInputMethod))
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "a PIN policy value is out of range");
    if (declare && puk != NULL && !puk->earlier)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "a declared PIN policy's PUK policy must be declared too");
    rec.user_defined = c->bUserDefined == CK_TRUE;
    rec.earlier = declare != 0;
    /* Records move when one is added: keep the PUK policy's ID apart. */
    char puk_id[SKS_ID_MAX + 1] = "";
    if (puk != NULL)
        memcpy(puk_id, puk->id, sizeof puk_id);
    const sks_issuer_pin_policy pp = {
        .id = rec.id,
        .puk_id = puk != NULL ? puk_id : NULL,
        .user_defined = c->bUserDefined == CK_TRUE,
        .user_modifiable = c->bUserModifiable == CK_TRUE,
        .format = (uint8_t)c->ulFormat,
        .retry_limit = (uint8_t)c->ulRetryLimit,
        .grouping = (uint8_t)c->ulGrouping,
        .pattern_restrictions = (uint8_t)c->ulPatternRestrictions,
        .min_length = (uint8_t)c->ulMinLength,
        .max_length = (uint8_t)c->ulMaxLength,
        .caching_support = c->bCachingSupport == CK_TRUE,
        .input_method = (uint8_t)c->ulInputMethod,
    };
    if (declare) {
        TRY(iprov_add(ip, &rec));
        if (sks_issuer_declare_pin_policy(ip->is, &pp) != 0)
            return iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot declare the PIN policy");
        return CKR_OK;
    }

    sks_issuer_msg *m = iprov_msg_new();
    if (m == NULL || iprov_add(ip, &rec) != CKR_OK) {
        iprov_msg_done(m);
        return CKR_HOST_MEMORY;
    }
    sks_req_create_pin_policy req;
    CK_RV rv = CKR_OK;
    if (sks_issuer_prepare_pin_policy(ip->is, &pp, 0, m, &req) != 0)
        rv = iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot prepare createPINPolicy");
    else
        memcpy(c->mac, m->mac, CKS_MAC_LEN);
    iprov_msg_done(m);
    return rv;
}

/* The friendly name: 0..255 bytes without a zero byte, NUL-terminated into `out`. */
static CK_RV friendly_name(tok_iprov *ip, const CK_SKS_KEY_PAIR_PARAMS *c,
                           char out[SKS_FRIENDLY_NAME_MAX + 1])
{
    CK_ULONG n = c->ulFriendlyNameLen;
    if ((c->pFriendlyName == NULL && n != 0) || n > SKS_FRIENDLY_NAME_MAX ||
        (n > 0 && memchr(c->pFriendlyName, 0, n) != NULL))
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "a friendly name is 0..255 bytes without a zero byte");
    if (n > 0)
        memcpy(out, c->pFriendlyName, n);
    out[n] = '\0';
    return CKR_OK;
}

static CK_RV key_pair(tok_iprov *ip, const CK_SKS_ISSUER_CALL_PARAMS *call)
{
    CK_SKS_KEY_PAIR_PARAMS *c = call->pCall;
    iprov_rec rec, *pin;
    sks_view pin_value;
    TRY(iprov_new_id(ip, c->pId, c->ulIdLen, IPROV_KEY, &rec));
    TRY(iprov_reference(ip, call, IPROV_REF_OPTIONAL, IPROV_PIN, &pin));
    TRY(iprov_clear_value(ip, call, pin != NULL, &pin_value));
    TRY(friendly_name(ip, c, rec.label));
    if (!iprov_bool_ok(c->bPrivateKeyBackup) || !iprov_bool_ok(c->bMigratable) ||
        !iprov_bool_ok(c->bUpdatable) || !iprov_bool_ok(c->bDeleteProtected) ||
        !iprov_bool_ok(c->bImportPrivateKey) || !byte_ok(c->ulKeyUsage) || !byte_ok(c->ulAlgorithm))
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "a key pair value is out of range");
    /* The PIN travels encrypted unless the user chooses it (then in the clear). */
    int encrypted = pin != NULL && !pin->user_defined && pin_value.len > 0;
    TRY(out_buffer(ip, c->pPinValue, &c->ulPinValueLen,
                   encrypted ? enc_len(pin_value.len) : (CK_ULONG)pin_value.len));
    rec.import = c->bImportPrivateKey == CK_TRUE;
    /* Records move when one is added: keep the PIN policy's ID apart. */
    char pin_id[SKS_ID_MAX + 1] = "";
    if (pin != NULL)
        memcpy(pin_id, pin->id, sizeof pin_id);
    const sks_issuer_key_spec ks = {
        .id = rec.id,
        .pin_policy_id = pin != NULL ? pin_id : NULL,
        .pin = pin_value,
        .private_key_backup = c->bPrivateKeyBackup == CK_TRUE,
        .migratable = c->bMigratable == CK_TRUE,
        .updatable = c->bUpdatable == CK_TRUE,
        .delete_protected = c->bDeleteProtected == CK_TRUE,
        .import_private_key = c->bImportPrivateKey == CK_TRUE,
        .key_usage = (uint8_t)c->ulKeyUsage,
        .friendly_name = rec.label,
        .algorithm = (uint8_t)c->ulAlgorithm,
    };

    sks_issuer_msg *m = iprov_msg_new();
    if (m == NULL || iprov_add(ip, &rec) != CKR_OK) {
        iprov_msg_done(m);
        return CKR_HOST_MEMORY;
    }
    iprov_rec *added = &ip->recs[ip->nrecs - 1];
    sks_req_create_key_pair req;
    CK_RV rv = CKR_OK;
    if (sks_issuer_prepare_key_pair(ip->is, &ks, 0, m, &req) != 0)
        rv = iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot prepare createKeyPair");
    if (rv == CKR_OK)
        rv = copy_out(ip, c->pPinValue, &c->ulPinValueLen, req.pin_value);
    if (rv == CKR_OK) {
        added->key_index = m->key;
        added->attestation_counter = m->attestation_counter;
        memcpy(c->mac, m->mac, CKS_MAC_LEN);
    }
    iprov_msg_done(m);
    return rv;
}

static CK_RV certificate_path(tok_iprov *ip, const CK_SKS_ISSUER_CALL_PARAMS *call)
{
    CK_SKS_CERTIFICATE_PATH_PARAMS *c = call->pCall;
    iprov_rec *key;
    sks_view none;
    TRY(iprov_reference(ip, call, IPROV_REF_REQUIRED, IPROV_KEY, &key));
    TRY(iprov_clear_value(ip, call, 0, &none));
    if (!key->import && !key->verified)
        return iprov_bad(ip, CKR_OPERATION_NOT_INITIALIZED,
                         "verify the key attestation (VERIFY_KEY_PAIR) before its certificate");
    if (key->has_path)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "the key already has a certificate path");
    sks_certpath path;
    if (c->ulCertificatePathLen > CKS_CERT_PATH_MAX ||
        sks_certpath_split(c->pCertificatePath, c->ulCertificatePathLen, &path) != 0)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "a certificate path is 1..10 DER certificates of at most 65535 bytes");

    sks_issuer_msg *m = iprov_msg_new();
    if (m == NULL)
        return CKR_HOST_MEMORY;
    sks_req_set_certificate_path req;
    CK_RV rv = CKR_OK;
    if (sks_issuer_prepare_certificate_path(ip->is, key->id, 0, path.cert, path.count, m, &req) !=
        0) {
        rv = iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot prepare setCertificatePath");
    } else {
        key->has_path = 1;
        memcpy(c->mac, m->mac, CKS_MAC_LEN);
    }
    iprov_msg_done(m);
    return rv;
}

static CK_RV private_key(tok_iprov *ip, CK_MECHANISM_TYPE mech,
                         const CK_SKS_ISSUER_CALL_PARAMS *call, EVP_PKEY *key)
{
    CK_SKS_PRIVATE_KEY_PARAMS *c = call->pCall;
    iprov_rec *entry;
    sks_view none;
    size_t der_len = 0;
    TRY(iprov_reference(ip, call, IPROV_REF_REQUIRED, IPROV_KEY, &entry));
    TRY(iprov_clear_value(ip, call, 0, &none));
    if (!entry->import || entry->has_key)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "the key was not created with ImportPrivateKey or already has its key");
    if (key == NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "no private key to put on the card");
    uint8_t *der;
    if (sks_pkcs8_encode(key, &der, &der_len) != 0)
        return iprov_bad(ip, CKR_KEY_TYPE_INCONSISTENT, "the key has no PKCS#8 form");
    CK_RV rv =
        der_len <= SKS_ENC_MAX ? CKR_OK : iprov_bad(ip, CKR_KEY_SIZE_RANGE, "the key is too large");
    if (rv == CKR_OK)
        rv =
            out_buffer(ip, c->pEncryptedPrivateKey, &c->ulEncryptedPrivateKeyLen, enc_len(der_len));
    sks_issuer_msg *m = rv == CKR_OK ? iprov_msg_new() : NULL;
    if (rv == CKR_OK && m == NULL)
        rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK) {
        uint8_t method = mech == CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY ? SKS_M_IMPORT_PRIVATE_KEY
                                                                   : SKS_M_RESTORE_PRIVATE_KEY;
        sks_req_put_private_key req;
        if (sks_issuer_prepare_put_private_key(ip->is, method, entry->id, 0,
                                               (sks_view){der, der_len}, m, &req) != 0)
            rv = iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot prepare the private key");
        if (rv == CKR_OK)
            rv = copy_out(ip, c->pEncryptedPrivateKey, &c->ulEncryptedPrivateKeyLen,
                          req.encrypted_private_key);
        if (rv == CKR_OK) {
            entry->has_key = 1;
            memcpy(c->mac, m->mac, CKS_MAC_LEN);
        }
    }
    if (m != NULL)
        iprov_msg_done(m);
    OPENSSL_clear_free(der, der_len);
    return rv;
}

static CK_RV close_session(tok_iprov *ip, const CK_SKS_ISSUER_CALL_PARAMS *call)
{
    CK_SKS_CLOSE_PARAMS *c = call->pCall;
    iprov_rec *none;
    sks_view no_value;
    TRY(iprov_reference(ip, call, IPROV_REF_NONE, IPROV_KEY, &none));
    TRY(iprov_clear_value(ip, call, 0, &no_value));
    const CK_ULONG given[5] = {c->ulGeneratedKeys, c->ulDeletedKeys, c->ulClonedKeys,
                               c->ulReplacedKeys, c->ulExtensionObjects};
    uint16_t counts[5];
    for (size_t i = 0; i < 5; i++) {
        if (given[i] > 0xFFFFu)
            return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "a close count is above 65535");
        counts[i] = (uint16_t)given[i];
    }
    sks_issuer_msg *m = iprov_msg_new();
    if (m == NULL)
        return CKR_HOST_MEMORY;
    sks_req_close_session req;
    CK_RV rv = CKR_OK;
    if (sks_issuer_prepare_close_counts(ip->is, counts, m, &req) != 0) {
        rv = iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot prepare closeProvisioningSession");
    } else {
        memcpy(ip->close_mac, m->mac, SKS_MAC_LEN);
        ip->close_counter = m->attestation_counter;
        ip->state = IPROV_CLOSING;
        memcpy(c->mac, m->mac, CKS_MAC_LEN);
    }
    iprov_msg_done(m);
    return rv;
}

/* The card side's struct size each call takes. */
static CK_ULONG call_size(CK_MECHANISM_TYPE mech)
{
    switch (mech) {
    case CKM_VENDOR_SKS_PUK_POLICY:
    case CKM_VENDOR_SKS_DECLARE_PUK_POLICY:
        return sizeof(CK_SKS_PUK_POLICY_PARAMS);
    case CKM_VENDOR_SKS_PIN_POLICY:
    case CKM_VENDOR_SKS_DECLARE_PIN_POLICY:
        return sizeof(CK_SKS_PIN_POLICY_PARAMS);
    case CKM_VENDOR_SKS_KEY_PAIR:
        return sizeof(CK_SKS_KEY_PAIR_PARAMS);
    case CKM_VENDOR_SKS_CERTIFICATE_PATH:
        return sizeof(CK_SKS_CERTIFICATE_PATH_PARAMS);
    case CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY:
    case CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY:
        return sizeof(CK_SKS_PRIVATE_KEY_PARAMS);
    case CKM_VENDOR_SKS_CLOSE:
        return sizeof(CK_SKS_CLOSE_PARAMS);
    case CKM_VENDOR_SKS_POST_DELETE_KEY:
    case CKM_VENDOR_SKS_POST_UNLOCK_KEY:
    case CKM_VENDOR_SKS_POST_UPDATE_KEY:
        return sizeof(CK_SKS_POST_PARAMS);
    default:
        return 0;
    }
}

CK_RV tok_iprov_prepare(tok_iprov *ip, CK_MECHANISM_TYPE mech,
                        const CK_SKS_ISSUER_CALL_PARAMS *call, EVP_PKEY *key)
{
    TRY(iprov_check_open(ip));
    CK_ULONG size = call_size(mech);
    if (size == 0)
        return iprov_bad(ip, CKR_MECHANISM_INVALID, "not an in-session call");
    if (call == NULL || call->pCall == NULL || call->ulCallLen != size)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "pCall must be the card side's struct of the mechanism");
    int is_put =
        mech == CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY || mech == CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY;
    if (!is_put && key != NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "only an import takes a private key");
    switch (mech) {
    case CKM_VENDOR_SKS_PUK_POLICY:
    case CKM_VENDOR_SKS_DECLARE_PUK_POLICY:
        return puk_policy(ip, call, mech == CKM_VENDOR_SKS_DECLARE_PUK_POLICY);
    case CKM_VENDOR_SKS_PIN_POLICY:
    case CKM_VENDOR_SKS_DECLARE_PIN_POLICY:
        return pin_policy(ip, call, mech == CKM_VENDOR_SKS_DECLARE_PIN_POLICY);
    case CKM_VENDOR_SKS_KEY_PAIR:
        return key_pair(ip, call);
    case CKM_VENDOR_SKS_CERTIFICATE_PATH:
        return certificate_path(ip, call);
    case CKM_VENDOR_SKS_CLOSE:
        return close_session(ip, call);
    case CKM_VENDOR_SKS_POST_DELETE_KEY:
    case CKM_VENDOR_SKS_POST_UNLOCK_KEY:
    case CKM_VENDOR_SKS_POST_UPDATE_KEY:
        return iprov_post(ip, mech, call);
    default:
        return private_key(ip, mech, call, key);
    }
}

/* ---- key attestations ----------------------------------------------------- */

/* The card's public key, exactly one SubjectPublicKeyInfo, or NULL. */
static EVP_PKEY *parse_spki(const uint8_t *p, size_t n)
{
    const unsigned char *q = p;
    EVP_PKEY *key = n > 0 && n <= CKS_PUBLIC_KEY_MAX ? d2i_PUBKEY(NULL, &q, (long)n) : NULL;
    if (key != NULL && q != p + n) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    return key;
}

CK_RV tok_iprov_verify_key_pair(tok_iprov *ip, const CK_SKS_KEY_PAIR_PARAMS *card,
                                EVP_PKEY **public_key, const char **id, const char **label)
{
    char key_id[SKS_ID_MAX + 1];
    *public_key = NULL;
    if (ip->state == IPROV_REQUESTED)
        return iprov_bad(ip, CKR_OPERATION_NOT_INITIALIZED, "the session was not accepted");
    if (ip->state != IPROV_OPEN && ip->state != IPROV_CLOSING)
        return iprov_bad(ip, CKR_VENDOR_SKS_NO_SESSION, "the issuer session is over");
    if (card == NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "no card answer");
    TRY(iprov_id(ip, card->pId, card->ulIdLen, key_id));
    iprov_rec *rec = iprov_find(ip, IPROV_KEY, key_id);
    if (rec == NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "no key of this ID in the session");
    if ((card->pPublicKey == NULL && card->ulPublicKeyLen != 0) ||
        card->ulPublicKeyLen > CKS_PUBLIC_KEY_MAX ||
        (card->pEncryptedPrivateKey == NULL && card->ulEncryptedPrivateKeyLen != 0) ||
        card->ulEncryptedPrivateKeyLen > CKS_ENCRYPTED_KEY_MAX)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "a card answer buffer is bad");

    sks_issuer_msg *m = iprov_msg_new();
    if (m == NULL)
        return CKR_HOST_MEMORY;
    m->key = rec->key_index;
    m->attestation_counter = rec->attestation_counter;
    const sks_resp_create_key_pair resp = {
        .public_key = {card->pPublicKey, card->ulPublicKeyLen},
        .attested_public_key = {card->attestedPublicKey, CKS_MAC_LEN},
        .encrypted_private_key = {card->pEncryptedPrivateKey, card->ulEncryptedPrivateKeyLen},
    };
    int rc = sks_issuer_verify_key_attestation(ip->is, m, &resp);
    iprov_msg_done(m);
    if (rc != 0)
        return iprov_broken(ip, CKR_VENDOR_SKS_ATTESTATION, "the key attestation");
    if (!rec->import) {
        *public_key = parse_spki(card->pPublicKey, card->ulPublicKeyLen);
        if (*public_key == NULL)
            return iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot parse the card's public key");
    }
    rec->verified = 1;
    *id = rec->id;
    *label = rec->label;
    return CKR_OK;
}
