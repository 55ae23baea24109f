/*
 * tok_prov_session.c - C_GenerateKey(CKM_VENDOR_SKS_SESSION): the
 * application relays an issuer's createProvisioningSession (docs/protocol.md
 * 6.1) and gets the card's answer in CK_SKS_SESSION_PARAMS plus a
 * CKO_VENDOR_SKS_PROVISIONING session object naming the card session.
 *
 * Any slot of the card takes the call (the free slot is the natural one):
 * the object lives in the slot whose session made it, and every later call
 * of the provisioning session goes through a session of that slot. The
 * session must be R/W (the provisioning session will write to the card);
 * no login is needed, the issuer's MACs authorise every call.
 *
 * The output buffers are checked before the card does anything: the
 * EncryptedSessionKey size follows from the algorithm and the issuer's key,
 * the device certificate path and the largest attestation its key can make
 * are read from the card's getDeviceInfo. If one buffer is too small, every
 * output length is set to the size needed and the call fails with
 * CKR_BUFFER_TOO_SMALL.
 */
#include <string.h>

#include "token/tok_ossl.h"
#include "token/tok_prov.h"

/* An EC P-256 SubjectPublicKeyInfo, named curve, uncompressed point (docs/protocol.md 9.1). */
#define ECDH_P256_SPKI_LEN 91

/* The request from the parameters; CKR_MECHANISM_PARAM_INVALID for what the wire cannot carry. */
static CK_RV session_request(const CK_SKS_SESSION_PARAMS *p, sks_req_create_session *req)
{
    memset(req, 0, sizeof(*req));
    if (tok_prov_u8(p->ulSessionKeyAlgorithm, &req->session_key_alg) != 0 ||
        tok_prov_bytes(p->pIssuerUri, p->ulIssuerUriLen, 0xFFFF, &req->issuer_uri) != 0 ||
        tok_prov_bytes(p->pIssuerPublicKey, p->ulIssuerPublicKeyLen, 0xFFFF,
                       &req->issuer_public_key) != 0 ||
        tok_prov_bool(p->bUpdatable, &req->updatable) != 0 ||
        tok_prov_u16(p->ulClientOperationLimit, &req->client_operation_limit) != 0 ||
        tok_prov_u32(p->ulSessionLifeTime, &req->session_life_time) != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    req->server_session_id = (sks_view){p->serverSessionId, sizeof(p->serverSessionId)};
    return CKR_OK;
}

/* Size of EncryptedSessionKey, or 0 when the card will refuse the algorithm or the key. */
static CK_ULONG session_key_size(const sks_req_create_session *req)
{
    if (req->session_key_alg == SKS_SKALG_ECDH_P256)
        return ECDH_P256_SPKI_LEN;
    if (req->session_key_alg != SKS_SKALG_RSA_OAEP_SHA256)
        return 0;
    EVP_PKEY *k = tok_ossl_spki(req->issuer_public_key.ptr, req->issuer_public_key.len);
    int size = k != NULL ? EVP_PKEY_get_size(k) : 0;
    EVP_PKEY_free(k);
    return size > 0 ? (CK_ULONG)size : 0;
}

/* The device certificate path's size and the largest signature of the device key. */
static CK_RV device_sizes(tok_card *card, CK_ULONG *path_len, CK_ULONG *attestation_max)
{
    sks_resp_get_device_info info;
    sks_writer answer;
    sks_writer_init(&answer);
    CK_RV rv = tok_card_call_rv(card, SKS_M_GET_DEVICE_INFO, NULL, &info, &answer);
    if (rv == CKR_OK) {
        const sks_certpath *path = &info.device_certificate_path;
        *path_len = 0;
        for (unsigned i = 0; i < path->count; i++)
            *path_len += path->cert[i].len;
        X509 *device = path->count > 0 ? tok_ossl_cert(path->cert[0].ptr, path->cert[0].len) : NULL;
        EVP_PKEY *key = device != NULL ? X509_get0_pubkey(device) : NULL;
        int size = key != NULL ? EVP_PKEY_get_size(key) : 0;
        *attestation_max = size > 0 ? (CK_ULONG)size : CKS_ATTESTATION_MAX;
        X509_free(device);
    }
    sks_writer_free(&answer);
    return rv;
}

/* CKR_BUFFER_TOO_SMALL (every length set to what is needed) unless all outputs fit. */
static CK_RV check_sizes(tok_card *card, CK_SKS_SESSION_PARAMS *p,
                         const sks_req_create_session *req)
{
    CK_ULONG key = session_key_size(req), path = 0, attestation = 0;
    CK_RV rv = device_sizes(card, &path, &attestation);
    if (rv != CKR_OK)
        return rv;
    if (tok_prov_fits(p->pEncryptedSessionKey, p->ulEncryptedSessionKeyLen, key) &&
        tok_prov_fits(p->pSessionAttestation, p->ulSessionAttestationLen, attestation) &&
        tok_prov_fits(p->pDeviceCertificatePath, p->ulDeviceCertificatePathLen, path))
        return CKR_OK;
    p->ulEncryptedSessionKeyLen = key;
    p->ulSessionAttestationLen = attestation;
    p->ulDeviceCertificatePathLen = path;
    return CKR_BUFFER_TOO_SMALL;
}

static int put_path(CK_SKS_SESSION_PARAMS *p, const sks_certpath *path)
{
    CK_ULONG total = 0;
    for (unsigned i = 0; i < path->count; i++)
        total += path->cert[i].len;
    if (!tok_prov_fits(p->pDeviceCertificatePath, p->ulDeviceCertificatePathLen, total))
        return -1;
    total = 0;
    for (unsigned i = 0; i < path->count; i++) {
        memcpy(p->pDeviceCertificatePath + total, path->cert[i].ptr, path->cert[i].len);
        total += path->cert[i].len;
    }
    p->ulDeviceCertificatePathLen = total;
    return 0;
}

CK_RV tok_prov_open(tok_session *s, tok_slot *slot, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                    CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CK_SKS_SESSION_PARAMS *p = tok_prov_param(m, sizeof(*p));
    sks_req_create_session req;
    if (slot->card == NULL) /* a token without a card (no-card mode) */
        return CKR_MECHANISM_INVALID;
    if (!tok_session_rw(s))
        return CKR_SESSION_READ_ONLY;
    if (p == NULL)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv = tok_prov_object_check(CKO_VENDOR_SKS_PROVISIONING, TOK_OP_GENERATE, tmpl, n);
    if (rv == CKR_OK)
        rv = session_request(p, &req);
    if (rv == CKR_OK)
        rv = check_sizes(slot->card, p, &req);
    if (rv != CKR_OK)
        return rv;

    tok_prov_ctx ctx = {s, slot, slot->card, 0, 0};
    sks_resp_create_session resp;
    sks_writer answer;
    sks_writer_init(&answer);
    rv = tok_prov_run(&ctx, SKS_M_CREATE_PROVISIONING_SESSION, &req, &resp, &answer);
    if (rv == CKR_OK) {
        ctx.handle = resp.provisioning_handle;
        if (resp.client_session_id.len != sizeof(p->clientSessionId) ||
            tok_prov_put(p->pEncryptedSessionKey, &p->ulEncryptedSessionKeyLen,
                         resp.encrypted_session_key) != 0 ||
            tok_prov_put(p->pSessionAttestation, &p->ulSessionAttestationLen,
                         resp.session_attestation) != 0 ||
            put_path(p, &resp.device_certificate_path) != 0) {
            tok_log(TOK_LOG_ERROR, "createProvisioningSession: answer larger than announced");
            rv = CKR_DEVICE_ERROR;
        } else {
            memcpy(p->clientSessionId, resp.client_session_id.ptr, sizeof(p->clientSessionId));
            rv = tok_prov_object_new(s, CKO_VENDOR_SKS_PROVISIONING, TOK_OP_GENERATE, tmpl, n,
                                     (sks_view){NULL, 0}, ctx.handle, out);
        }
        /* The application cannot reach a session it has no object for. */
        if (rv != CKR_OK)
            tok_prov_abort(ctx.card, ctx.handle);
    }
    sks_writer_free(&answer);
    return rv;
}
