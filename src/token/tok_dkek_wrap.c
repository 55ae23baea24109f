/*
 * tok_dkek_wrap.c - C_WrapKey and C_UnwrapKey with CKM_VENDOR_SKS_DKEK_WRAP
 * (docs/dkek.md): back a card private key up under the token's DKEK
 * object, and restore such a backup onto the session's token.
 *
 * The wrapped key is the card's blob as wrapKey returns it: the card keeps
 * every attribute the module shows (ID, label, usage, algorithm, flags,
 * certificate path), so the blob is the whole file image. Before calling
 * the card the module reads the blob's clear header: a blob of another DKEK
 * (its KCV) is CKR_VENDOR_SKS_DKEK_MISMATCH without a card call; the card
 * itself checks the KCV and the CMAC again before anything else. The card
 * also decides whether the key may go onto the session's token: a backup of
 * a key that had a PIN is refused on the no-PIN token (NOT_AUTHENTICATED,
 * CKR_USER_NOT_LOGGED_IN, as on a PIN token nobody is logged in to).
 */
#include <string.h>

#include "pkcs11/sks-pkcs11.h"
#include "protocol/sks_dkek.h"
#include "token/tok_dkek.h"
#include "token/tok_vendor.h"

/* OpenSC 0.23's pkcs11-tool --unwrap passes at most this many bytes of its input. */
#define PKCS11_TOOL_INPUT_MAX 1024

/* The token's DKEK object and its cache, complete. */
static CK_RV dkek_of(tok_session *s, CK_OBJECT_HANDLE h, CK_RV invalid, CK_RV inconsistent,
                     tok_object *o)
{
    CK_RV rv = tok_object_get(s, h, o);
    if (rv == CKR_OBJECT_HANDLE_INVALID)
        return invalid;
    if (rv != CKR_OK)
        return rv;
    if (o->where != TOK_OBJ_DKEK || o->kind != TOK_KIND_DKEK || o->card->dkek == NULL)
        return inconsistent;
    if (o->card->dkek->state != SKS_DKEK_READY) {
        tok_log(TOK_LOG_ERROR, "DKEK: %u of %u shares still missing", o->card->dkek->outstanding,
                o->card->dkek->total);
        return CKR_VENDOR_SKS_DKEK_INCOMPLETE;
    }
    return CKR_OK;
}

/* The card key a C_WrapKey hKey names: the private key, or its backup view. */
static CK_RV key_to_wrap(tok_session *s, CK_OBJECT_HANDLE h, tok_card *card, uint32_t *handle)
{
    tok_object o;
    int idx;
    unsigned kind;
    CK_RV rv = tok_object_get(s, h, &o);
    if (rv == CKR_OBJECT_HANDLE_INVALID)
        return CKR_KEY_HANDLE_INVALID;
    if (rv != CKR_OK)
        return rv;
    if (o.card != card)
        return CKR_KEY_HANDLE_INVALID;
    if (o.where == TOK_OBJ_DKEK && o.kind == TOK_KIND_BACKUP &&
        tok_handle_decode(h, &idx, handle, &kind) == 0)
        return CKR_OK;
    if (o.where != TOK_OBJ_CARD_KEY || o.kind != TOK_KIND_PRIVATE_KEY || o.key == NULL)
        return CKR_KEY_NOT_WRAPPABLE;
    if (!(o.key->flags & SKS_KEYFLAG_MIGRATABLE)) {
        tok_log(TOK_LOG_ERROR, "key %u: made without backup permission", o.key->handle);
        return CKR_KEY_UNEXTRACTABLE;
    }
    *handle = o.key->handle;
    return CKR_OK;
}

CK_RV tok_dkek_wrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, uint8_t *out,
                    CK_ULONG *out_len)
{
    tok_object wk;
    uint32_t handle = 0;
    sks_writer answer;
    uint8_t status;
    char msg[200] = "";
    (void)slot;
    if (m->pParameter != NULL || m->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv = dkek_of(s, wrapping_key, CKR_WRAPPING_KEY_HANDLE_INVALID,
                       CKR_WRAPPING_KEY_TYPE_INCONSISTENT, &wk);
    if (rv == CKR_OK)
        rv = key_to_wrap(s, key, wk.card, &handle);
    if (rv != CKR_OK)
        return rv;
    sks_req_wrap_key req = {handle};
    sks_resp_wrap_key resp;
    sks_writer_init(&answer);
    rv = tok_card_call(wk.card, SKS_M_WRAP_KEY, &req, &resp, &answer, &status, msg, sizeof(msg));
    if (rv == CKR_OK && status != SKS_OK) {
        tok_log(TOK_LOG_ERROR, "wrapKey of key %u: %s", handle, msg);
        switch (status) {
        case SKS_ERR_NOT_ALLOWED:
            rv = CKR_KEY_UNEXTRACTABLE;
            break;
        case SKS_ERR_NOT_AUTHENTICATED:
            rv = CKR_USER_NOT_LOGGED_IN;
            break;
        case SKS_ERR_NO_KEY:
            rv = CKR_KEY_HANDLE_INVALID;
            break;
        default:
            rv = tok_status_to_rv(status, SKS_M_WRAP_KEY);
            break;
        }
    }
    if (rv == CKR_OK) {
        if (out != NULL && *out_len < resp.blob.len)
            rv = CKR_BUFFER_TOO_SMALL;
        else if (out != NULL)
            memcpy(out, resp.blob.ptr, resp.blob.len);
        *out_len = resp.blob.len;
    }
    sks_writer_free(&answer);
    return rv;
}

/* ---- unwrap ------------------------------------------------------------------ */

static int bool_is(const CK_ATTRIBUTE *a, CK_BBOOL want)
{
    return a->ulValueLen == sizeof(CK_BBOOL) && *(const CK_BBOOL *)a->pValue == want;
}

static int bytes_are(const CK_ATTRIBUTE *a, sks_view v)
{
    return a->ulValueLen == v.len && (v.len == 0 || memcmp(a->pValue, v.ptr, v.len) == 0);
}

/*
 * A template may only repeat what the backup holds: the class (the private
 * key, or its backup view for tools that unwrap secret keys only), the key
 * type, CKA_TOKEN and CKA_SENSITIVE true, CKA_EXTRACTABLE and
 * CKA_VENDOR_SKS_BACKUP_ALLOWED true, CKA_PRIVATE as the token has it, and
 * the backup's own CKA_ID and CKA_LABEL.
 */
static CK_RV check_template(const CK_ATTRIBUTE *t, CK_ULONG n, const sks_dkek_blob *b, int private_,
                            CK_OBJECT_CLASS *cls)
{
    CK_ULONG type = CK_UNAVAILABLE_INFORMATION;
    int rsa = b->algorithm == SKS_KEYALG_RSA2048 || b->algorithm == SKS_KEYALG_RSA3072 ||
              b->algorithm == SKS_KEYALG_RSA4096;
    *cls = CKO_PRIVATE_KEY;
    for (CK_ULONG i = 0; i < n; i++) {
        const CK_ATTRIBUTE *a = &t[i];
        int ok;
        switch (a->type) {
        case CKA_CLASS:
        case CKA_KEY_TYPE:
            if (a->ulValueLen != sizeof(CK_ULONG))
                return CKR_ATTRIBUTE_VALUE_INVALID;
            CK_ULONG v;
            memcpy(&v, a->pValue, sizeof(v));
            if (a->type == CKA_KEY_TYPE)
                type = v;
            else
                *cls = v;
            ok = a->type == CKA_KEY_TYPE || v == CKO_PRIVATE_KEY || v == CKO_SECRET_KEY;
            break;
        case CKA_TOKEN:
        case CKA_SENSITIVE:
        case CKA_EXTRACTABLE:
        case CKA_VENDOR_SKS_BACKUP_ALLOWED:
            ok = bool_is(a, CK_TRUE);
            break;
        case CKA_PRIVATE:
            ok = bool_is(a, private_ ? CK_TRUE : CK_FALSE);
            break;
        case CKA_ID:
            ok = bytes_are(a, b->id);
            break;
        case CKA_LABEL:
            ok = bytes_are(a, b->friendly_name);
            break;
        default:
            ok = 0;
            break;
        }
        if (!ok)
            return CKR_TEMPLATE_INCONSISTENT;
    }
    CK_KEY_TYPE want = *cls == CKO_SECRET_KEY ? CKK_VENDOR_SKS_KEY_BACKUP : rsa ? CKK_RSA : CKK_EC;
    return type == CK_UNAVAILABLE_INFORMATION || type == want ? CKR_OK : CKR_TEMPLATE_INCONSISTENT;
}

/* The PIN policy a key restored on this slot's token goes under. */
static CK_RV slot_policy(const tok_session *s, const tok_slot *slot, uint32_t *policy)
{
    if (!tok_session_rw(s))
        return CKR_SESSION_READ_ONLY;
    if (slot->kind == TOK_SLOT_POLICY) {
        if (!tok_logged_in(slot))
            return CKR_USER_NOT_LOGGED_IN;
        *policy = slot->pin_policy;
        return CKR_OK;
    }
    if (slot->kind == TOK_SLOT_NOPIN) {
        *policy = SKS_HANDLE_NONE;
        return CKR_OK;
    }
    return CKR_TOKEN_WRITE_PROTECTED;
}

static CK_RV unwrap_rv(uint8_t status)
{
    switch (status) {
    case SKS_ERR_CRYPTO: /* the KCV: a backup of another DKEK */
        return CKR_VENDOR_SKS_DKEK_MISMATCH;
    case SKS_ERR_MAC: /* altered or damaged */
    case SKS_ERR_FORMAT:
    case SKS_ERR_ALGORITHM:
        return CKR_WRAPPED_KEY_INVALID;
    case SKS_ERR_OPTION: /* a key with the backup's ID is on the card */
        return CKR_ATTRIBUTE_VALUE_INVALID;
    case SKS_ERR_NOT_AUTHENTICATED: /* the token's PIN, or a key with a PIN on the no-PIN token */
        return CKR_USER_NOT_LOGGED_IN;
    case SKS_ERR_NOT_ALLOWED: /* a limit, or a DeleteProtected key on a token without PUK */
        return CKR_VENDOR_SKS_LIMIT;
    default:
        return tok_status_to_rv(status, SKS_M_UNWRAP_KEY);
    }
}

CK_RV tok_dkek_unwrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                      CK_OBJECT_HANDLE unwrapping_key, const uint8_t *wrapped, CK_ULONG wrapped_len,
                      const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    tok_object uk;
    sks_dkek_blob b;
    CK_OBJECT_CLASS cls;
    uint32_t policy = SKS_HANDLE_NONE;
    const char *why = NULL;
    if (m->pParameter != NULL || m->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    if (out == NULL)
        return CKR_ARGUMENTS_BAD;
    CK_RV rv = dkek_of(s, unwrapping_key, CKR_UNWRAPPING_KEY_HANDLE_INVALID,
                       CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, &uk);
    if (rv != CKR_OK)
        return rv;
    tok_card *card = uk.card;
    if (wrapped_len < SKS_DKEK_BLOB_MIN)
        return CKR_WRAPPED_KEY_LEN_RANGE;
    if (memcmp(wrapped, card->dkek->kcv, SKS_DKEK_KCV_LEN) != 0) {
        tok_log(TOK_LOG_ERROR, "the backup was made under another DKEK (its KCV differs)");
        return CKR_VENDOR_SKS_DKEK_MISMATCH;
    }
    if (sks_dkek_blob_parse(wrapped, wrapped_len, &b, &why) != 0) {
        tok_log(TOK_LOG_ERROR, "not a key backup: %s%s", why,
                wrapped_len == PKCS11_TOOL_INPUT_MAX
                    ? " (cut at 1024 bytes? pkcs11-tool 0.23 reads no more: restore it with "
                      "sks-tool --unwrap-key)"
                    : "");
        return CKR_WRAPPED_KEY_INVALID;
    }
    rv = slot_policy(s, slot, &policy);
    if (rv == CKR_OK)
        rv = check_template(tmpl, n, &b, policy != SKS_HANDLE_NONE, &cls);
    if (rv != CKR_OK)
        return rv;
    sks_req_unwrap_key req = {policy, {wrapped, wrapped_len}};
    sks_resp_unwrap_key resp;
    sks_writer answer;
    uint8_t status;
    char msg[200] = "";
    sks_writer_init(&answer);
    rv = tok_card_call(card, SKS_M_UNWRAP_KEY, &req, &resp, &answer, &status, msg, sizeof(msg));
    sks_writer_free(&answer);
    if (rv == CKR_OK && status != SKS_OK) {
        tok_log(TOK_LOG_ERROR, "unwrapKey: %s", msg);
        if (status == SKS_ERR_NOT_AUTHENTICATED && policy == SKS_HANDLE_NONE)
            tok_log(TOK_LOG_ERROR, "the backup is of a key with a PIN: restore it on a token "
                                   "with a PIN, logged in, not on the no-PIN token");
        return unwrap_rv(status);
    }
    if (rv != CKR_OK)
        return rv;
    /* Show the new key: reload the cache (and the slots, a first key without PIN included). */
    tok_card_invalidate(card);
    rv = tok_slots_update();
    if (rv == CKR_OK)
        *out = tok_handle_card(card->index, resp.key_handle,
                               cls == CKO_SECRET_KEY ? TOK_KIND_BACKUP : TOK_KIND_PRIVATE_KEY);
    return rv;
}
