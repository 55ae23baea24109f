/*
 * tok_object.c - object handles and where they lead. A card object's handle
 * encodes the card, the card's own key or object handle and which view of
 * it (private key, public key, certificate i, stored object), so it stays
 * the same across cache reloads and sessions. Session objects live in a
 * list in module memory and die with the session that created them.
 */
#include <stdlib.h>
#include <string.h>

#include "token/tok.h"
#include "token/tok_dkek.h"
#include "token/tok_vendor.h"

_Static_assert(sizeof(CK_OBJECT_HANDLE) >= 8, "object handles need 64 bits");

#define H_CARD_SHIFT   56
#define H_HANDLE_SHIFT 4
#define H_KIND_MASK    0xFu

CK_OBJECT_HANDLE tok_handle_card(int card_index, uint32_t card_handle, unsigned kind)
{
    return ((CK_OBJECT_HANDLE)(card_index + 1) << H_CARD_SHIFT) |
           ((CK_OBJECT_HANDLE)card_handle << H_HANDLE_SHIFT) | (kind & H_KIND_MASK);
}

int tok_handle_decode(CK_OBJECT_HANDLE h, int *card_index, uint32_t *card_handle, unsigned *kind)
{
    if (h & TOK_H_SESSION_BIT)
        return -1;
    /* Bits 36..55 and 63 are never set in a card object handle. */
    CK_OBJECT_HANDLE unused =
        h & ~(((CK_OBJECT_HANDLE)0x3F << H_CARD_SHIFT) |
              ((CK_OBJECT_HANDLE)0xFFFFFFFFu << H_HANDLE_SHIFT) | H_KIND_MASK);
    unsigned idx = (unsigned)((h >> H_CARD_SHIFT) & 0x3F);
    if (unused != 0 || idx == 0)
        return -1;
    *card_index = (int)idx - 1;
    *card_handle = (uint32_t)(h >> H_HANDLE_SHIFT);
    *kind = (unsigned)(h & H_KIND_MASK);
    return 0;
}

int tok_object_visible(const tok_session *s, const tok_attrs *attrs)
{
    if (!tok_attrs_bool(attrs, CKA_PRIVATE, CK_FALSE))
        return 1;
    return tok_logged_in(tok_slot_find(s->slot));
}

static void fill_types(tok_object *o)
{
    CK_ULONG v;
    o->cls = tok_attrs_get_ulong(o->attrs, CKA_CLASS, &v) ? v : CK_UNAVAILABLE_INFORMATION;
    o->key_type = tok_attrs_get_ulong(o->attrs, CKA_KEY_TYPE, &v) ? v : CK_UNAVAILABLE_INFORMATION;
}

static CK_RV get_session_object(tok_session *s, CK_OBJECT_HANDLE h, tok_object *out)
{
    for (tok_session_object *o = tok_g.session_objects; o != NULL; o = o->next) {
        if (o->handle != h)
            continue;
        if (o->slot != s->slot || !tok_object_visible(s, &o->attrs))
            return CKR_OBJECT_HANDLE_INVALID;
        out->where = TOK_OBJ_SESSION;
        out->sobj = o;
        out->attrs = &o->attrs;
        fill_types(out);
        return CKR_OK;
    }
    return CKR_OBJECT_HANDLE_INVALID;
}

static CK_RV get_card_object(tok_session *s, CK_OBJECT_HANDLE h, tok_object *out)
{
    int idx;
    uint32_t ch;
    unsigned kind;
    if (tok_handle_decode(h, &idx, &ch, &kind) != 0 || (size_t)idx >= tok_g.ncards)
        return CKR_OBJECT_HANDLE_INVALID;
    tok_card *card = tok_g.cards[idx];
    tok_slot *slot = tok_slot_find(s->slot);
    if (slot == NULL || slot->card != card || slot->kind == TOK_SLOT_FREE)
        return CKR_OBJECT_HANDLE_INVALID;
    CK_RV rv = tok_card_ensure(card);
    if (rv != CKR_OK)
        return rv;
    out->card = card;
    if (kind == TOK_KIND_DKEK || kind == TOK_KIND_BACKUP)
        return tok_dkek_object_get(s, card, ch, kind, out);
    if (kind == TOK_KIND_STORED) {
        tok_card_object *obj = tok_card_find_object(card, ch);
        if (obj == NULL || tok_slot_id_for_policy(card, obj->pin_policy) != s->slot ||
            !tok_object_visible(s, &obj->attrs))
            return CKR_OBJECT_HANDLE_INVALID;
        out->where = TOK_OBJ_STORED;
        out->stored = obj;
        out->attrs = &obj->attrs;
        fill_types(out);
        return CKR_OK;
    }
    tok_card_key *key = tok_card_find_key(card, ch);
    if (key == NULL || kind >= TOK_KEY_KINDS ||
        (kind >= TOK_KIND_CERT_FIRST && kind - TOK_KIND_CERT_FIRST >= key->cert_count) ||
        tok_slot_id_for_policy(card, key->pin_policy) != s->slot)
        return CKR_OBJECT_HANDLE_INVALID;
    if (kind == TOK_KIND_PRIVATE_KEY && key->pin_policy != 0 && !tok_logged_in(slot))
        return CKR_OBJECT_HANDLE_INVALID;
    out->attrs = tok_card_key_attrs(key, kind);
    if (out->attrs == NULL)
        return CKR_DEVICE_ERROR;
    out->where = TOK_OBJ_CARD_KEY;
    out->key = key;
    out->kind = kind;
    fill_types(out);
    return CKR_OK;
}

CK_RV tok_object_get(tok_session *s, CK_OBJECT_HANDLE h, tok_object *out)
{
    memset(out, 0, sizeof(*out));
    out->handle = h;
    if (h == CK_INVALID_HANDLE)
        return CKR_OBJECT_HANDLE_INVALID;
    if (h & TOK_H_SESSION_BIT)
        return get_session_object(s, h, out);
    return get_card_object(s, h, out);
}

CK_RV tok_object_add_session(tok_session *s, tok_attrs *attrs, CK_OBJECT_HANDLE *out)
{
    CK_RV rv = tok_attrs_set_bool(attrs, CKA_TOKEN, CK_FALSE);
    if (rv != CKR_OK)
        return rv;
    tok_session_object *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return CKR_HOST_MEMORY;
    o->handle = TOK_H_SESSION_BIT | tok_g.next_object++;
    o->slot = s->slot;
    o->owner = s->handle;
    o->attrs = *attrs;
    memset(attrs, 0, sizeof(*attrs));
    o->next = tok_g.session_objects;
    tok_g.session_objects = o;
    *out = o->handle;
    return CKR_OK;
}

/* Remove every session object `doomed` says so of. */
static void drop_if(int (*doomed)(const tok_session_object *o, const void *ctx), const void *ctx)
{
    tok_session_object **pp = &tok_g.session_objects;
    while (*pp != NULL) {
        tok_session_object *o = *pp;
        if (doomed(o, ctx)) {
            *pp = o->next;
            tok_vendor_object_gone(o);
            tok_attrs_free(&o->attrs);
            free(o);
        } else {
            pp = &o->next;
        }
    }
}

static int owned_by(const tok_session_object *o, const void *ctx)
{
    return o->owner == *(const CK_SESSION_HANDLE *)ctx;
}

static int private_on(const tok_session_object *o, const void *ctx)
{
    return o->slot == *(const CK_SLOT_ID *)ctx && tok_attrs_bool(&o->attrs, CKA_PRIVATE, CK_FALSE);
}

static int any(const tok_session_object *o, const void *ctx)
{
    (void)o;
    (void)ctx;
    return 1;
}

static int this_one(const tok_session_object *o, const void *ctx)
{
    return o == ctx;
}

void tok_object_drop_session(CK_SESSION_HANDLE owner)
{
    drop_if(owned_by, &owner);
}

void tok_object_drop_private(CK_SLOT_ID slot)
{
    drop_if(private_on, &slot);
}

void tok_object_drop_all(void)
{
    drop_if(any, NULL);
}

void tok_object_destroy_session_object(tok_session_object *o)
{
    drop_if(this_one, o);
}

CK_RV tok_object_add_token(CK_SLOT_ID slot, tok_attrs *attrs, uint64_t token_id,
                           CK_OBJECT_HANDLE *out)
{
    CK_RV rv = tok_attrs_set_bool(attrs, CKA_TOKEN, CK_TRUE);
    if (rv != CKR_OK)
        return rv;
    tok_session_object *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return CKR_HOST_MEMORY;
    o->handle = TOK_H_SESSION_BIT | tok_g.next_object++;
    o->slot = slot;
    o->owner = 0; /* no session: session handles start at 1 */
    o->token_id = token_id;
    o->attrs = *attrs;
    memset(attrs, 0, sizeof(*attrs));
    o->next = tok_g.session_objects;
    tok_g.session_objects = o;
    *out = o->handle;
    return CKR_OK;
}
