/*
 * tok_prov_calls.c - C_DeriveKey with hBaseKey = a provisioning object:
 * one call of the provisioning session per mechanism (docs/protocol.md
 * section 6), relayed to the card as the issuer prepared it. This file
 * routes them and relays the policies (createPUKPolicy, createPINPolicy)
 * and closeProvisioningSession; the key calls are in tok_prov_keys.c.
 *
 * PUK and PIN policies become session objects of their classes (CKA_ID the
 * policy's ID, CKA_VENDOR_SKS_CARD_HANDLE the card's handle) that later
 * calls name in their parameters. After a close the card's cache is
 * reloaded: the session's keys appear as ordinary token objects, in the
 * slot of their PIN policy (a new PIN policy is a new slot).
 *
 * The session must be R/W. Once hBaseKey names a provisioning object, a
 * call that fails aborts the card session (tok_prov_finish), except
 * CKR_BUFFER_TOO_SMALL.
 */
#include <string.h>

#include "token/tok_prov.h"

/*
 * createPUKPolicy or createPINPolicy (`method`) of a checked request: its
 * object (CKA_ID `id`) once the card made the policy. The template is
 * checked first, before anything is sent.
 */
static CK_RV create_policy(tok_prov_ctx *ctx, uint8_t method, const void *req, sks_view id,
                           const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    int puk = method == SKS_M_CREATE_PUK_POLICY;
    CK_OBJECT_CLASS cls = puk ? CKO_VENDOR_SKS_PUK_POLICY : CKO_VENDOR_SKS_PIN_POLICY;
    CK_RV rv = tok_prov_object_check(cls, TOK_OP_DERIVE, tmpl, n);
    if (rv != CKR_OK)
        return rv;
    /* Both answers are the one handle of the new policy. */
    union {
        sks_resp_create_puk_policy puk;
        sks_resp_create_pin_policy pin;
    } resp;
    sks_writer answer;
    sks_writer_init(&answer);
    rv = tok_prov_run(ctx, method, req, &resp, &answer);
    if (rv == CKR_OK)
        rv =
            tok_prov_object_new(ctx->s, cls, TOK_OP_DERIVE, tmpl, n, id,
                                puk ? resp.puk.puk_policy_handle : resp.pin.pin_policy_handle, out);
    sks_writer_free(&answer);
    return rv;
}

static CK_RV puk_policy(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const CK_SKS_PUK_POLICY_PARAMS *p = tok_prov_param(m, sizeof(*p));
    sks_req_create_puk_policy req;
    memset(&req, 0, sizeof(req));
    if (p == NULL || tok_prov_bytes(p->pId, p->ulIdLen, 0xFFFF, &req.id) != 0 ||
        tok_prov_bytes(p->pEncryptedValue, p->ulEncryptedValueLen, 0xFFFF, &req.encrypted_value) !=
            0 ||
        tok_prov_u8(p->ulFormat, &req.format) != 0 ||
        tok_prov_u8(p->ulRetryLimit, &req.retry_limit) != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    req.provisioning_handle = ctx->handle;
    req.mac = (sks_view){p->mac, sizeof(p->mac)};
    return create_policy(ctx, SKS_M_CREATE_PUK_POLICY, &req, req.id, tmpl, n, out);
}

/* The PIN policy request's byte and bool fields; -1 when one does not fit. */
static int pin_fields(const CK_SKS_PIN_POLICY_PARAMS *p, sks_req_create_pin_policy *req)
{
    if (tok_prov_bool(p->bUserDefined, &req->user_defined) != 0 ||
        tok_prov_bool(p->bUserModifiable, &req->user_modifiable) != 0 ||
        tok_prov_u8(p->ulFormat, &req->format) != 0 ||
        tok_prov_u8(p->ulRetryLimit, &req->retry_limit) != 0 ||
        tok_prov_u8(p->ulGrouping, &req->grouping) != 0 ||
        tok_prov_u8(p->ulPatternRestrictions, &req->pattern_restrictions) != 0 ||
        tok_prov_u8(p->ulMinLength, &req->min_length) != 0 ||
        tok_prov_u8(p->ulMaxLength, &req->max_length) != 0 ||
        tok_prov_bool(p->bCachingSupport, &req->caching_support) != 0 ||
        tok_prov_u8(p->ulInputMethod, &req->input_method) != 0)
        return -1;
    return 0;
}

static CK_RV pin_policy(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const CK_SKS_PIN_POLICY_PARAMS *p = tok_prov_param(m, sizeof(*p));
    sks_req_create_pin_policy req;
    memset(&req, 0, sizeof(req));
    if (p == NULL || tok_prov_bytes(p->pId, p->ulIdLen, 0xFFFF, &req.id) != 0 ||
        pin_fields(p, &req) != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv =
        tok_prov_policy(ctx, p->hPukPolicy, CKO_VENDOR_SKS_PUK_POLICY, &req.puk_policy_handle);
    if (rv != CKR_OK)
        return rv;
    req.provisioning_handle = ctx->handle;
    req.mac = (sks_view){p->mac, sizeof(p->mac)};
    return create_policy(ctx, SKS_M_CREATE_PIN_POLICY, &req, req.id, tmpl, n, out);
}

static CK_RV close_session(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                           CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CK_SKS_CLOSE_PARAMS *p = tok_prov_param(m, sizeof(*p));
    sks_req_close_session req;
    memset(&req, 0, sizeof(req));
    if (p == NULL || tok_prov_u16(p->ulGeneratedKeys, &req.generated_keys) != 0 ||
        tok_prov_u16(p->ulDeletedKeys, &req.deleted_keys) != 0 ||
        tok_prov_u16(p->ulClonedKeys, &req.cloned_keys) != 0 ||
        tok_prov_u16(p->ulReplacedKeys, &req.replaced_keys) != 0 ||
        tok_prov_u16(p->ulExtensionObjects, &req.extension_objects) != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv = tok_prov_no_template(tmpl, n, CK_UNAVAILABLE_INFORMATION);
    if (rv != CKR_OK)
        return rv;
    req.provisioning_handle = ctx->handle;
    req.mac = (sks_view){p->mac, sizeof(p->mac)};

    sks_resp_close_session resp;
    sks_writer answer;
    sks_writer_init(&answer);
    rv = tok_prov_run(ctx, SKS_M_CLOSE_PROVISIONING_SESSION, &req, &resp, &answer);
    if (rv == CKR_OK) {
        /* The decoder holds AttestedResponse to byte[32]. */
        memcpy(p->attestedResponse, resp.attested_response.ptr, sizeof(p->attestedResponse));
        *out = CK_INVALID_HANDLE;
        /*
         * The keys are complete now: reload the cache so that they, and the
         * tokens of new PIN policies, show at once. The close stands even if
         * the reload fails; the next call retries it.
         */
        tok_card_invalidate(ctx->card);
        if (tok_card_refresh(ctx->card) != CKR_OK)
            tok_log(TOK_LOG_WARN, "provisioning session %u closed; the card could not be re-read",
                    ctx->handle);
    }
    sks_writer_free(&answer);
    return rv;
}

CK_RV tok_prov_call(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE provisioning, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                    CK_OBJECT_HANDLE *out)
{
    tok_prov_fn *call;
    switch (m->mechanism) {
    case CKM_VENDOR_SKS_PUK_POLICY:
        call = puk_policy;
        break;
    case CKM_VENDOR_SKS_PIN_POLICY:
        call = pin_policy;
        break;
    case CKM_VENDOR_SKS_KEY_PAIR:
        call = tok_prov_key_pair;
        break;
    case CKM_VENDOR_SKS_CERTIFICATE_PATH:
        call = tok_prov_certificate_path;
        break;
    case CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY:
    case CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY:
        call = tok_prov_private_key;
        break;
    case CKM_VENDOR_SKS_CLOSE:
        call = close_session;
        break;
    default:
        return CKR_MECHANISM_INVALID;
    }
    return tok_prov_in_session(s, slot, provisioning, call, m, tmpl, n, out);
}

CK_RV tok_prov_in_session(tok_session *s, tok_slot *slot, CK_OBJECT_HANDLE provisioning,
                          tok_prov_fn *call, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                          CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    if (slot->card == NULL) /* a token without a card (no-card mode) */
        return CKR_MECHANISM_INVALID;
    if (!tok_session_rw(s))
        return CKR_SESSION_READ_ONLY;
    tok_prov_ctx ctx;
    CK_RV rv = tok_prov_resolve(s, slot, provisioning, &ctx);
    if (rv != CKR_OK)
        return rv;
    return tok_prov_finish(&ctx, call(&ctx, m, tmpl, n, out));
}
