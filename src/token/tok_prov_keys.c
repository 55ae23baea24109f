/*
 * tok_prov_keys.c - the key calls of a provisioning session relayed
 * through C_DeriveKey: createKeyPair (CKM_VENDOR_SKS_KEY_PAIR),
 * setCertificatePath (CKM_VENDOR_SKS_CERTIFICATE_PATH), importPrivateKey and
 * restorePrivateKey (docs/protocol.md 6.6-6.8).
 *
 * A key is named by PKCS#11 handles from the moment the card creates it:
 * its private key, public key (CK_SKS_KEY_PAIR_PARAMS.hPublicKey) and
 * end-entity certificate have the card-object handles they keep for good.
 * They become usable objects when the session closes (the card completes
 * its keys only then), in the token of the key's PIN policy.
 *
 * createKeyPair's outputs are checked before anything is sent: PublicKey
 * must hold the SubjectPublicKeyInfo of the algorithm (nothing when the
 * issuer will import the key), EncryptedPrivateKey the largest encrypted
 * PKCS#8 of the algorithm when PrivateKeyBackup is asked for. Otherwise
 * both lengths are set to those sizes and the call answers
 * CKR_BUFFER_TOO_SMALL, leaving the session as it was.
 */
#include <string.h>

#include "protocol/sks_crypto.h"
#include "protocol/sks_keys.h"
#include "token/tok_prov.h"

/* SubjectPublicKeyInfo DER of a key the card generates (docs/protocol.md 9.1, e = 65537). */
static CK_ULONG spki_size(uint8_t alg)
{
    switch (alg) {
    case SKS_KEYALG_RSA2048:
        return 294;
    case SKS_KEYALG_RSA3072:
        return 422;
    case SKS_KEYALG_RSA4096:
        return 550;
    case SKS_KEYALG_EC_P256:
        return 91;
    case SKS_KEYALG_EC_P384:
        return 120;
    default:
        return 0; /* the card refuses the algorithm */
    }
}

/*
 * The largest EncryptedPrivateKey: IV and the padded PKCS#8 (docs/protocol.md
 * 5.3, 9.2). RSA PKCS#8 stays below 4.5 bytes per modulus byte plus the
 * algorithm identifier and DER headers (2348 bytes for RSA-4096, bound
 * 2432); EC PKCS#8, with parameters and public key, stays below 150
 * (P-256) and 200 (P-384) bytes.
 */
static CK_ULONG backup_size(uint8_t alg)
{
    CK_ULONG pkcs8;
    switch (alg) {
    case SKS_KEYALG_RSA2048:
    case SKS_KEYALG_RSA3072:
    case SKS_KEYALG_RSA4096:
        pkcs8 = (spki_size(alg) - 38) * 9 / 2 + 128; /* modulus bytes from the SPKI size */
        break;
    case SKS_KEYALG_EC_P256:
        pkcs8 = 150;
        break;
    case SKS_KEYALG_EC_P384:
        pkcs8 = 200;
        break;
    default:
        return 0;
    }
    return SKS_ENC_IV_LEN + (pkcs8 / 16 + 1) * 16;
}

/* The createKeyPair request from the parameters (handles resolved). */
static CK_RV key_pair_request(tok_prov_ctx *ctx, const CK_SKS_KEY_PAIR_PARAMS *p,
                              sks_req_create_key_pair *req)
{
    memset(req, 0, sizeof(*req));
    if (tok_prov_bytes(p->pId, p->ulIdLen, 0xFFFF, &req->id) != 0 ||
        tok_prov_bytes(p->pPinValue, p->ulPinValueLen, 0xFFFF, &req->pin_value) != 0 ||
        tok_prov_bool(p->bPrivateKeyBackup, &req->private_key_backup) != 0 ||
        tok_prov_bool(p->bMigratable, &req->migratable) != 0 ||
        tok_prov_bool(p->bUpdatable, &req->updatable) != 0 ||
        tok_prov_bool(p->bDeleteProtected, &req->delete_protected) != 0 ||
        tok_prov_bool(p->bImportPrivateKey, &req->import_private_key) != 0 ||
        tok_prov_u8(p->ulKeyUsage, &req->key_usage) != 0 ||
        tok_prov_bytes(p->pFriendlyName, p->ulFriendlyNameLen, 0xFFFF, &req->friendly_name) != 0 ||
        tok_prov_u8(p->ulAlgorithm, &req->algorithm) != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    req->provisioning_handle = ctx->handle;
    req->mac = (sks_view){p->mac, sizeof(p->mac)};
    return tok_prov_policy(ctx, p->hPinPolicy, CKO_VENDOR_SKS_PIN_POLICY, &req->pin_policy_handle);
}

CK_RV tok_prov_key_pair(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CK_SKS_KEY_PAIR_PARAMS *p = tok_prov_param(m, sizeof(*p));
    sks_req_create_key_pair req;
    if (p == NULL)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv = key_pair_request(ctx, p, &req);
    if (rv == CKR_OK)
        rv = tok_prov_no_template(tmpl, n, CKO_PRIVATE_KEY);
    if (rv != CKR_OK)
        return rv;
    CK_ULONG need_public = req.import_private_key ? 0 : spki_size(req.algorithm);
    CK_ULONG need_backup = req.private_key_backup ? backup_size(req.algorithm) : 0;
    if (!tok_prov_fits(p->pPublicKey, p->ulPublicKeyLen, need_public) ||
        !tok_prov_fits(p->pEncryptedPrivateKey, p->ulEncryptedPrivateKeyLen, need_backup)) {
        p->ulPublicKeyLen = need_public;
        p->ulEncryptedPrivateKeyLen = need_backup;
        return CKR_BUFFER_TOO_SMALL;
    }

    sks_resp_create_key_pair resp;
    sks_writer answer;
    sks_writer_init(&answer);
    rv = tok_prov_run(ctx, SKS_M_CREATE_KEY_PAIR, &req, &resp, &answer);
    if (rv == CKR_OK) {
        if (resp.attested_public_key.len != sizeof(p->attestedPublicKey) ||
            tok_prov_put(p->pPublicKey, &p->ulPublicKeyLen, resp.public_key) != 0 ||
            tok_prov_put(p->pEncryptedPrivateKey, &p->ulEncryptedPrivateKeyLen,
                         resp.encrypted_private_key) != 0) {
            tok_log(TOK_LOG_ERROR, "createKeyPair: answer larger than announced");
            rv = CKR_DEVICE_ERROR;
        } else {
            memcpy(p->attestedPublicKey, resp.attested_public_key.ptr,
                   sizeof(p->attestedPublicKey));
            p->hPublicKey = tok_handle_card(ctx->card->index, resp.key_handle, TOK_KIND_PUBLIC_KEY);
            *out = tok_handle_card(ctx->card->index, resp.key_handle, TOK_KIND_PRIVATE_KEY);
        }
    }
    tok_card_invalidate(ctx->card);
    sks_writer_free(&answer);
    return rv;
}

/*
 * A call that adds to a key of the session (setCertificatePath,
 * importPrivateKey, restorePrivateKey): no answer but the status; the
 * result is the key's object of `kind`. The card's cache is read again
 * either way (the key changed, or the session is gone).
 */
static CK_RV key_call(tok_prov_ctx *ctx, uint8_t method, const void *req, uint32_t key_handle,
                      unsigned kind, CK_OBJECT_HANDLE *out)
{
    sks_writer answer;
    sks_writer_init(&answer);
    CK_RV rv = tok_prov_run(ctx, method, req, NULL, &answer);
    if (rv == CKR_OK)
        *out = tok_handle_card(ctx->card->index, key_handle, kind);
    tok_card_invalidate(ctx->card);
    sks_writer_free(&answer);
    return rv;
}

CK_RV tok_prov_certificate_path(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                                CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const CK_SKS_CERTIFICATE_PATH_PARAMS *p = tok_prov_param(m, sizeof(*p));
    sks_req_set_certificate_path req;
    memset(&req, 0, sizeof(req));
    /* Each a complete DER SEQUENCE: what they contain is for the card to judge. */
    if (p == NULL || sks_certpath_split(p->pCertificatePath, p->ulCertificatePathLen,
                                        &req.certificate_path) != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv = tok_prov_key(ctx, p->hKey, &req.key_handle);
    if (rv == CKR_OK)
        rv = tok_prov_no_template(tmpl, n, CKO_CERTIFICATE);
    if (rv != CKR_OK)
        return rv;
    req.provisioning_handle = ctx->handle;
    req.mac = (sks_view){p->mac, sizeof(p->mac)};
    return key_call(ctx, SKS_M_SET_CERTIFICATE_PATH, &req, req.key_handle, TOK_KIND_CERT_FIRST,
                    out);
}

CK_RV tok_prov_private_key(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                           CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const CK_SKS_PRIVATE_KEY_PARAMS *p = tok_prov_param(m, sizeof(*p));
    sks_req_put_private_key req;
    memset(&req, 0, sizeof(req));
    if (p == NULL || tok_prov_bytes(p->pEncryptedPrivateKey, p->ulEncryptedPrivateKeyLen,
                                    0xFFFFFFFFu, &req.encrypted_private_key) != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv = tok_prov_key(ctx, p->hKey, &req.key_handle);
    if (rv == CKR_OK)
        rv = tok_prov_no_template(tmpl, n, CKO_PRIVATE_KEY);
    if (rv != CKR_OK)
        return rv;
    req.provisioning_handle = ctx->handle;
    req.mac = (sks_view){p->mac, sizeof(p->mac)};
    uint8_t method = m->mechanism == CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY ? SKS_M_IMPORT_PRIVATE_KEY
                                                                       : SKS_M_RESTORE_PRIVATE_KEY;
    return key_call(ctx, method, &req, req.key_handle, TOK_KIND_PRIVATE_KEY, out);
}
