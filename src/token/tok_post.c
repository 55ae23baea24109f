/*
 * tok_post.c - post-provisioning relayed to the card (docs/protocol.md
 * 6.10): C_DeriveKey(CKM_VENDOR_SKS_POST_DELETE_KEY, _UNLOCK_KEY or
 * _UPDATE_KEY, hBaseKey = the provisioning object, CK_SKS_POST_PARAMS)
 * sends postDeleteKey, postUnlockKey or postUpdateKey as the issuer MACed
 * it, and returns CK_INVALID_HANDLE. The card only records the operation;
 * it happens at CKM_VENDOR_SKS_CLOSE, which reloads the card's cache
 * (tok_prov_calls.c), so a deleted or replaced key disappears from its
 * token then.
 *
 * hKey and hNewKey name card keys by their private key object or their
 * public key object (the handle carries the card's key handle, docs/
 * token.md 8). The public key object serves when the private one cannot be
 * found: a PIN-protected key is a private object, and the token of a
 * blocked PIN, the case of postUnlockKey, cannot be logged into. The key
 * named by hKey may belong to another token of the same card than the
 * session's slot (another PIN policy, or the keys without PIN): the module
 * does not judge who may name it, the card does (same issuer, Updatable
 * key, the MAC). As every in-session call, a failure aborts the card
 * session (tok_prov_finish). This is the card side: on the issuer token of
 * no-card mode the same mechanisms prepare the calls (tok_issuer_prov.h).
 */
#include <string.h>

#include "token/tok_prov.h"

/* The card method of a post-provisioning mechanism, or 0. */
static uint8_t post_method(CK_MECHANISM_TYPE type)
{
    switch (type) {
    case CKM_VENDOR_SKS_POST_DELETE_KEY:
        return SKS_M_POST_DELETE_KEY;
    case CKM_VENDOR_SKS_POST_UNLOCK_KEY:
        return SKS_M_POST_UNLOCK_KEY;
    case CKM_VENDOR_SKS_POST_UPDATE_KEY:
        return SKS_M_POST_UPDATE_KEY;
    default:
        return 0;
    }
}

/*
 * The card's key handle of a private or public key object of a key of this
 * card, whatever its token; CKR_MECHANISM_PARAM_INVALID for anything else.
 */
static CK_RV card_key(const tok_prov_ctx *ctx, CK_OBJECT_HANDLE h, uint32_t *out)
{
    int idx;
    unsigned kind;
    if (tok_handle_decode(h, &idx, out, &kind) != 0 || idx != ctx->card->index ||
        (kind != TOK_KIND_PRIVATE_KEY && kind != TOK_KIND_PUBLIC_KEY) || *out == 0)
        return CKR_MECHANISM_PARAM_INVALID;
    return CKR_OK;
}

/*
 * The request from CK_SKS_POST_PARAMS: the card handles of hKey and (only
 * postUpdateKey) hNewKey; hNewKey must be CK_INVALID_HANDLE otherwise.
 */
static CK_RV post_request(const tok_prov_ctx *ctx, uint8_t method, const CK_MECHANISM *m,
                          sks_req_post_key *req)
{
    const CK_SKS_POST_PARAMS *p = tok_prov_param(m, sizeof(*p));
    memset(req, 0, sizeof(*req));
    if (p == NULL)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv = card_key(ctx, p->hKey, &req->key_handle);
    if (rv == CKR_OK && method == SKS_M_POST_UPDATE_KEY)
        rv = card_key(ctx, p->hNewKey, &req->new_key_handle);
    else if (rv == CKR_OK && p->hNewKey != CK_INVALID_HANDLE)
        rv = CKR_MECHANISM_PARAM_INVALID;
    req->provisioning_handle = ctx->handle;
    req->mac = (sks_view){p->mac, sizeof(p->mac)};
    return rv;
}

static CK_RV post_call(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                       CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    uint8_t method = post_method(m->mechanism);
    sks_req_post_key req;
    CK_RV rv = post_request(ctx, method, m, &req);
    if (rv == CKR_OK)
        rv = tok_prov_no_template(tmpl, n, CK_UNAVAILABLE_INFORMATION);
    if (rv != CKR_OK)
        return rv;
    sks_writer answer;
    sks_writer_init(&answer);
    rv = tok_prov_run(ctx, method, &req, NULL, &answer);
    sks_writer_free(&answer);
    if (rv == CKR_OK)
        *out = CK_INVALID_HANDLE;
    return rv;
}

CK_RV tok_post_call(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE provisioning, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                    CK_OBJECT_HANDLE *out)
{
    if (post_method(m->mechanism) == 0)
        return CKR_MECHANISM_INVALID;
    return tok_prov_in_session(s, slot, provisioning, post_call, m, tmpl, n, out);
}
