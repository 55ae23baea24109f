/*
 * tok_issuer_prov_session.c - the issuer session of no-card mode from
 * request to close: the createProvisioningSession request, the acceptance
 * of the card's answer (device certificate path up to the trust anchor,
 * session secret, session attestation) and the verification of the close
 * attestation; plus the helpers the calls share. The cryptography is the
 * issuer library's (src/issuer).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sks_keys.h"
#include "token/tok_issuer_prov_int.h"

CK_RV iprov_bad(tok_iprov *ip, CK_RV rv, const char *why)
{
    snprintf(ip->error, sizeof ip->error, "%s", why);
    return rv;
}

CK_RV iprov_broken(tok_iprov *ip, CK_RV rv, const char *why)
{
    const char *lib = ip->is != NULL ? sks_issuer_error(ip->is) : "";
    snprintf(ip->error, sizeof ip->error, "%s%s%s", why, lib[0] != '\0' ? ": " : "", lib);
    ip->state = IPROV_FAILED;
    return rv;
}

const char *tok_iprov_error(const tok_iprov *ip)
{
    return ip != NULL ? ip->error : "no issuer session";
}

int iprov_bool_ok(CK_BBOOL b)
{
    return b == CK_TRUE || b == CK_FALSE;
}

CK_RV iprov_id(tok_iprov *ip, const CK_BYTE *p, CK_ULONG len, char out[SKS_ID_MAX + 1])
{
    if (p == NULL || len < 1 || len > SKS_ID_MAX || memchr(p, 0, len) != NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "an ID must be 1..32 bytes without a zero byte");
    memcpy(out, p, len);
    out[len] = '\0';
    return CKR_OK;
}

iprov_rec *iprov_find(tok_iprov *ip, enum iprov_kind kind, const char *id)
{
    for (size_t i = 0; i < ip->nrecs; i++) {
        if (ip->recs[i].kind == kind && strcmp(ip->recs[i].id, id) == 0)
            return &ip->recs[i];
    }
    return NULL;
}

CK_RV iprov_add(tok_iprov *ip, const iprov_rec *rec)
{
    iprov_rec *grown = realloc(ip->recs, (ip->nrecs + 1) * sizeof *grown);
    if (grown == NULL)
        return CKR_HOST_MEMORY;
    grown[ip->nrecs++] = *rec;
    ip->recs = grown;
    return CKR_OK;
}

CK_RV iprov_check_open(tok_iprov *ip)
{
    if (ip->state == IPROV_REQUESTED)
        return iprov_bad(ip, CKR_OPERATION_NOT_INITIALIZED, "the session was not accepted");
    if (ip->state != IPROV_OPEN)
        return iprov_bad(ip, CKR_VENDOR_SKS_NO_SESSION, "the issuer session is closed or over");
    return CKR_OK;
}

CK_RV iprov_reference(tok_iprov *ip, const CK_SKS_ISSUER_CALL_PARAMS *call, enum iprov_ref_use use,
                      enum iprov_kind kind, iprov_rec **out)
{
    char id[SKS_ID_MAX + 1];
    *out = NULL;
    if (call->pReferenceId == NULL && call->ulReferenceIdLen == 0) {
        if (use == IPROV_REF_REQUIRED)
            return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "the call must name a key");
        return CKR_OK;
    }
    if (use == IPROV_REF_NONE)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "the call names no object");
    CK_RV rv = iprov_id(ip, call->pReferenceId, call->ulReferenceIdLen, id);
    if (rv != CKR_OK)
        return rv;
    *out = iprov_find(ip, kind, id);
    if (*out == NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "the named policy or key is not of this session, nor declared");
    return CKR_OK;
}

CK_RV iprov_clear_value(tok_iprov *ip, const CK_SKS_ISSUER_CALL_PARAMS *call, int allowed,
                        sks_view *v)
{
    *v = (sks_view){NULL, 0};
    if (call->pValue == NULL && call->ulValueLen == 0)
        return CKR_OK;
    if (!allowed || call->pValue == NULL || call->ulValueLen > SKS_PIN_MAX)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "a clear value is not taken here or longer than 128 bytes");
    *v = (sks_view){call->pValue, call->ulValueLen};
    return CKR_OK;
}

CK_RV iprov_new_id(tok_iprov *ip, const CK_BYTE *p, CK_ULONG len, enum iprov_kind kind,
                   iprov_rec *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->kind = kind;
    CK_RV rv = iprov_id(ip, p, len, rec->id);
    if (rv == CKR_OK && iprov_find(ip, kind, rec->id) != NULL)
        rv = iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "this ID is already used in the session");
    return rv;
}

sks_issuer_msg *iprov_msg_new(void)
{
    sks_issuer_msg *m = malloc(sizeof *m);
    if (m != NULL)
        sks_issuer_msg_init(m);
    return m;
}

void iprov_msg_done(sks_issuer_msg *m)
{
    if (m == NULL)
        return;
    sks_issuer_msg_free(m);
    free(m);
}

/* ---- createProvisioningSession ------------------------------------------ */

/* The request's inputs as the issuer library takes them; CKR_OK or why not. */
static CK_RV check_request(tok_iprov *ip, const CK_SKS_ISSUER_SESSION_PARAMS *p, uint8_t *alg,
                           char uri[SKS_URI_MAX + 1])
{
    if (p->ulSessionKeyAlgorithm == CKS_SESSION_KEY_ECDH_P256)
        *alg = SKS_SKALG_ECDH_P256;
    else if (p->ulSessionKeyAlgorithm == CKS_SESSION_KEY_RSA_OAEP_SHA256)
        *alg = SKS_SKALG_RSA_OAEP_SHA256;
    else
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "unknown session key algorithm");
    if (p->pIssuerUri == NULL || p->ulIssuerUriLen < 1 || p->ulIssuerUriLen > SKS_URI_MAX ||
        memchr(p->pIssuerUri, 0, p->ulIssuerUriLen) != NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "the issuer URI must be 1..1024 bytes without a zero byte");
    memcpy(uri, p->pIssuerUri, p->ulIssuerUriLen);
    uri[p->ulIssuerUriLen] = '\0';
    if (!iprov_bool_ok(p->bUpdatable) || p->ulClientOperationLimit > 0xFFFFu ||
        p->ulSessionLifeTime < 1 || p->ulSessionLifeTime > 0xFFFFFFFFu)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "Updatable, ClientOperationLimit or SessionLifeTime out of range");
    return CKR_OK;
}

CK_RV tok_iprov_new(CK_SKS_ISSUER_SESSION_PARAMS *p, EVP_PKEY *issuer_key, tok_iprov **out)
{
    tok_iprov *ip = calloc(1, sizeof *ip);
    char uri[SKS_URI_MAX + 1];
    uint8_t alg = 0;
    sks_req_create_session req;

    *out = NULL;
    if (ip == NULL)
        return CKR_HOST_MEMORY;
    CK_RV rv = check_request(ip, p, &alg, uri);
    if (rv != CKR_OK)
        goto fail;
    ip->is = sks_issuer_session_new(alg, uri, issuer_key);
    if (ip->is == NULL) {
        /* The library refuses only a key that does not fit, or runs out of memory. */
        rv = issuer_key != NULL ? CKR_KEY_TYPE_INCONSISTENT : CKR_FUNCTION_FAILED;
        goto fail;
    }
    if (sks_issuer_request(ip->is, p->bUpdatable == CK_TRUE, (uint16_t)p->ulClientOperationLimit,
                           (uint32_t)p->ulSessionLifeTime, &req) != 0) {
        rv = CKR_FUNCTION_FAILED;
        goto fail;
    }
    if (p->pIssuerPublicKey == NULL || p->ulIssuerPublicKeyLen < req.issuer_public_key.len) {
        p->ulIssuerPublicKeyLen = req.issuer_public_key.len;
        rv = CKR_BUFFER_TOO_SMALL;
        goto fail;
    }
    memcpy(p->serverSessionId, req.server_session_id.ptr, CKS_SESSION_ID_LEN);
    memcpy(p->pIssuerPublicKey, req.issuer_public_key.ptr, req.issuer_public_key.len);
    p->ulIssuerPublicKeyLen = req.issuer_public_key.len;
    ip->state = IPROV_REQUESTED;
    *out = ip;
    return CKR_OK;
fail:
    tok_iprov_free(ip);
    return rv;
}

void tok_iprov_free(tok_iprov *ip)
{
    if (ip == NULL)
        return;
    sks_issuer_session_free(ip->is);
    if (ip->recs != NULL) {
        sks_cleanse(ip->recs, ip->nrecs * sizeof *ip->recs);
        free(ip->recs);
    }
    sks_cleanse(ip, sizeof *ip);
    free(ip);
}

/* A CK byte buffer as a view: NULL only with length 0. */
static int ck_view(const CK_BYTE *p, CK_ULONG len, CK_ULONG max, sks_view *v)
{
    if ((p == NULL && len != 0) || len > max)
        return 0;
    *v = (sks_view){p, len};
    return 1;
}

/* Accept with a store that trusts exactly `anchor`. */
static int accept_under(tok_iprov *ip, X509 *anchor, const sks_resp_create_session *resp)
{
    X509_STORE *store = X509_STORE_new();
    /* The anchor is trusted as configured, also when it is not a self-signed root. */
    int ok = store != NULL && X509_STORE_add_cert(store, anchor) == 1 &&
             X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN) == 1 &&
             sks_issuer_accept(ip->is, store, resp) == 0;
    X509_STORE_free(store);
    return ok;
}

CK_RV tok_iprov_accept(tok_iprov *ip, X509 *anchor, const CK_SKS_SESSION_PARAMS *card)
{
    sks_resp_create_session resp;

    if (ip->state == IPROV_FAILED || ip->state == IPROV_CLOSED)
        return iprov_bad(ip, CKR_VENDOR_SKS_NO_SESSION, "the issuer session is over");
    if (ip->state != IPROV_REQUESTED)
        return iprov_bad(ip, CKR_OPERATION_ACTIVE, "the session was already accepted");
    if (card == NULL || anchor == NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "no card answer or trust anchor");
    memset(&resp, 0, sizeof resp);
    resp.client_session_id = (sks_view){card->clientSessionId, CKS_SESSION_ID_LEN};
    if (!ck_view(card->pEncryptedSessionKey, card->ulEncryptedSessionKeyLen, CKS_SESSION_KEY_MAX,
                 &resp.encrypted_session_key) ||
        !ck_view(card->pSessionAttestation, card->ulSessionAttestationLen, CKS_ATTESTATION_MAX,
                 &resp.session_attestation) ||
        card->ulDeviceCertificatePathLen > CKS_CERT_PATH_MAX)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "a card answer buffer is bad");
    if (sks_certpath_split(card->pDeviceCertificatePath, card->ulDeviceCertificatePathLen,
                           &resp.device_certificate_path) != 0)
        return iprov_broken(ip, CKR_VENDOR_SKS_ATTESTATION,
                            "the device certificate path is not 1..10 DER certificates");
    if (!accept_under(ip, anchor, &resp))
        return iprov_broken(ip, CKR_VENDOR_SKS_ATTESTATION, "the card's session does not verify");
    ip->state = IPROV_OPEN;
    return CKR_OK;
}

/* ---- closeProvisioningSession ------------------------------------------- */

CK_RV tok_iprov_verify_close(tok_iprov *ip, const CK_SKS_CLOSE_PARAMS *card)
{
    if (ip->state == IPROV_FAILED || ip->state == IPROV_CLOSED)
        return iprov_bad(ip, CKR_VENDOR_SKS_NO_SESSION, "the issuer session is over");
    if (ip->state != IPROV_CLOSING)
        return iprov_bad(ip, CKR_OPERATION_NOT_INITIALIZED, "the close was not prepared");
    if (card == NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "no card answer");
    for (size_t i = 0; i < ip->nrecs; i++) {
        if (ip->recs[i].kind == IPROV_KEY && !ip->recs[i].verified)
            return iprov_bad(ip, CKR_OPERATION_NOT_INITIALIZED,
                             "a key attestation of the session was not verified");
    }
    sks_issuer_msg *m = iprov_msg_new();
    if (m == NULL)
        return CKR_HOST_MEMORY;
    memcpy(m->mac, ip->close_mac, SKS_MAC_LEN);
    m->attestation_counter = ip->close_counter;
    sks_resp_close_session resp = {.attested_response = {card->attestedResponse, CKS_MAC_LEN}};
    int rc = sks_issuer_verify_close(ip->is, m, &resp);
    iprov_msg_done(m);
    if (rc != 0)
        return iprov_broken(ip, CKR_VENDOR_SKS_ATTESTATION, "the close attestation");
    ip->state = IPROV_CLOSED;
    return CKR_OK;
}
