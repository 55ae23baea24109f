/*
 * tok_prov.c - what every provisioning call relayed through the vendor
 * mechanisms needs (tok_prov.h): the provisioning object and its card
 * session, running a call and the abort-on-failure rule, parameter
 * conversion, the policy and key handles in parameters, and the session
 * objects of the vendor classes.
 *
 * Handles are local to the middleware, as in the SKS protocol itself: the
 * application names policies and keys by PKCS#11 handles, the module puts
 * the card's handles on the wire, and the MAC binds the objects by what the
 * issuer knows of them (IDs, public keys), never by a handle.
 */
#include <string.h>

#include "token/tok_prov.h"

/* The session (still open) with this handle, without side effects; or NULL. */
static const tok_session *find_session(CK_SESSION_HANDLE h)
{
    for (size_t i = 0; i < tok_g.nsessions; i++) {
        if (tok_g.sessions[i]->handle == h)
            return tok_g.sessions[i];
    }
    return NULL;
}

/*
 * The card and card handle of a provisioning object, if its card is the one
 * connected when it was made: a card put back in the reader (or another
 * card in it) must never receive a handle of the old one, since
 * abortProvisioningSession carries no MAC.
 */
static int object_session(const tok_session_object *o, tok_card **card, uint32_t *handle)
{
    CK_ULONG cls, h;
    if (!tok_attrs_get_ulong(&o->attrs, CKA_CLASS, &cls) || cls != CKO_VENDOR_SKS_PROVISIONING ||
        !tok_attrs_get_ulong(&o->attrs, CKA_VENDOR_SKS_CARD_HANDLE, &h) || h == 0 ||
        h > 0xFFFFFFFFu)
        return -1;
    const tok_slot *slot = tok_slot_find(o->slot);
    const tok_session *owner = find_session(o->owner);
    if (slot == NULL || slot->card == NULL || owner == NULL ||
        owner->generation != slot->card->generation)
        return -1;
    *card = slot->card;
    *handle = (uint32_t)h;
    return 0;
}

CK_RV tok_prov_resolve(tok_session *s, tok_slot *slot, CK_OBJECT_HANDLE h, tok_prov_ctx *ctx)
{
    tok_object o;
    memset(ctx, 0, sizeof(*ctx));
    if (tok_object_get(s, h, &o) != CKR_OK)
        return CKR_KEY_HANDLE_INVALID;
    if (o.where != TOK_OBJ_SESSION || o.cls != CKO_VENDOR_SKS_PROVISIONING)
        return CKR_KEY_TYPE_INCONSISTENT;
    if (object_session(o.sobj, &ctx->card, &ctx->handle) != 0 || ctx->card != slot->card)
        return CKR_KEY_HANDLE_INVALID;
    ctx->s = s;
    ctx->slot = slot;
    return CKR_OK;
}

CK_RV tok_prov_run(tok_prov_ctx *ctx, uint8_t method, const void *req, void *resp,
                   sks_writer *answer)
{
    uint8_t status;
    char msg[160];
    CK_RV rv = tok_card_call(ctx->card, method, req, resp, answer, &status, msg, sizeof(msg));
    if (rv != CKR_OK)
        return rv;
    if (status != SKS_OK) {
        ctx->refused = 1;
        tok_log(TOK_LOG_INFO, "provisioning session %u: %s refused: %s (%s)", ctx->handle,
                sks_method_name(method), sks_status_name(status), msg);
    }
    return tok_status_to_rv_prov(status, method);
}

void tok_prov_abort(tok_card *card, uint32_t handle)
{
    sks_req_abort_session req = {handle};
    sks_writer answer;
    uint8_t status;
    sks_writer_init(&answer);
    if (tok_card_call(card, SKS_M_ABORT_PROVISIONING_SESSION, &req, NULL, &answer, &status, NULL,
                      0) == CKR_OK)
        tok_log(TOK_LOG_DEBUG, "provisioning session %u aborted (%s)", handle,
                sks_status_name(status));
    sks_writer_free(&answer);
}

CK_RV tok_prov_finish(tok_prov_ctx *ctx, CK_RV rv)
{
    if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && !ctx->refused)
        tok_prov_abort(ctx->card, ctx->handle);
    return rv;
}

void tok_prov_object_gone(const tok_session_object *o)
{
    tok_card *card;
    uint32_t handle;
    if (object_session(o, &card, &handle) == 0 && card->transport != NULL)
        tok_prov_abort(card, handle);
}

/* ---- parameters ------------------------------------------------------------ */

void *tok_prov_param(const CK_MECHANISM *m, size_t size)
{
    if (m->pParameter == NULL || m->ulParameterLen != size)
        return NULL;
    return m->pParameter;
}

int tok_prov_bytes(const CK_BYTE *p, CK_ULONG len, CK_ULONG max, sks_view *out)
{
    if (len > max || (len > 0 && p == NULL))
        return -1;
    out->ptr = len > 0 ? p : NULL;
    out->len = len;
    return 0;
}

int tok_prov_u8(CK_ULONG v, uint8_t *out)
{
    if (v > 0xFF)
        return -1;
    *out = (uint8_t)v;
    return 0;
}

int tok_prov_u16(CK_ULONG v, uint16_t *out)
{
    if (v > 0xFFFF)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int tok_prov_u32(CK_ULONG v, uint32_t *out)
{
    if (v > 0xFFFFFFFFu)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int tok_prov_bool(CK_BBOOL v, uint8_t *out)
{
    if (v != CK_TRUE && v != CK_FALSE)
        return -1;
    *out = v;
    return 0;
}

int tok_prov_fits(const CK_BYTE *buf, CK_ULONG have, CK_ULONG need)
{
    return need == 0 || (buf != NULL && have >= need);
}

int tok_prov_put(CK_BYTE *buf, CK_ULONG *len, sks_view v)
{
    if (!tok_prov_fits(buf, *len, v.len))
        return -1;
    if (v.len > 0)
        memcpy(buf, v.ptr, v.len);
    *len = v.len;
    return 0;
}

/* ---- handles in parameters --------------------------------------------------- */

CK_RV tok_prov_policy(tok_prov_ctx *ctx, CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls, uint32_t *out)
{
    tok_object o;
    CK_ULONG v;
    *out = 0;
    if (h == CK_INVALID_HANDLE)
        return CKR_OK;
    if (tok_object_get(ctx->s, h, &o) != CKR_OK || o.where != TOK_OBJ_SESSION || o.cls != cls ||
        !tok_attrs_get_ulong(o.attrs, CKA_VENDOR_SKS_CARD_HANDLE, &v) || v == 0 ||
        tok_prov_u32(v, out) != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    return CKR_OK;
}

CK_RV tok_prov_key(const tok_prov_ctx *ctx, CK_OBJECT_HANDLE h, uint32_t *out)
{
    int idx;
    unsigned kind;
    if (tok_handle_decode(h, &idx, out, &kind) != 0 || idx != ctx->card->index ||
        kind != TOK_KIND_PRIVATE_KEY || *out == 0)
        return CKR_MECHANISM_PARAM_INVALID;
    return CKR_OK;
}

CK_RV tok_prov_no_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_CLASS cls)
{
    for (CK_ULONG i = 0; i < n; i++) {
        CK_ULONG v;
        if (tmpl[i].type != CKA_CLASS || cls == CK_UNAVAILABLE_INFORMATION ||
            !tok_tmpl_get_ulong(&tmpl[i], 1, CKA_CLASS, &v) || v != cls)
            return CKR_TEMPLATE_INCONSISTENT;
    }
    return CKR_OK;
}

/* ---- session objects of the vendor classes ------------------------------------- */

CK_RV tok_prov_object_check(CK_OBJECT_CLASS cls, enum tok_op op, const CK_ATTRIBUTE *tmpl,
                            CK_ULONG n)
{
    CK_BBOOL token = CK_FALSE;
    CK_RV rv = tok_rules_check(cls, CK_UNAVAILABLE_INFORMATION, op, tmpl, n);
    if (rv != CKR_OK)
        return rv;
    /* The card keeps no such object for the module: they live in its memory. */
    if (tok_tmpl_get_bool(tmpl, n, CKA_TOKEN, &token) && token)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    return CKR_OK;
}

CK_RV tok_prov_object_new(tok_session *s, CK_OBJECT_CLASS cls, enum tok_op op,
                          const CK_ATTRIBUTE *tmpl, CK_ULONG n, sks_view id, uint32_t card_handle,
                          CK_OBJECT_HANDLE *out)
{
    tok_attrs a = {0};
    CK_RV rv = tok_prov_object_check(cls, op, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_attrs_merge_tmpl(&a, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_rules_defaults(cls, CK_UNAVAILABLE_INFORMATION, op, &a);
    /* A copy would be a second name for one card object: C_CopyObject is refused. */
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(&a, CKA_COPYABLE, CK_FALSE);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(&a, CKA_PRIVATE, CK_FALSE);
    if (rv == CKR_OK && cls != CKO_VENDOR_SKS_PROVISIONING)
        rv = tok_attrs_set(&a, CKA_ID, id.ptr, (CK_ULONG)id.len);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(&a, CKA_VENDOR_SKS_CARD_HANDLE, card_handle);
    if (rv == CKR_OK)
        rv = tok_object_add_session(s, &a, out);
    tok_attrs_free(&a);
    return rv;
}
