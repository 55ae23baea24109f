/*
 * tok_issuer_objects.c - creating, changing and destroying objects of the
 * issuer token (tok_issuer_token.h). A token object's file is written
 * before its copy in memory changes, so memory never holds what the disk
 * does not. As on the card tokens, every change to token objects needs a
 * R/W session with the user logged in; session objects follow the
 * standard's rules (private ones need the user logged in).
 */
#include <string.h>

#include "token/tok_issuer_int.h"
#include "token/tok_issuer_token.h"
#include "token/tok_soft.h"

CK_RV tok_issuer_write_allowed(const tok_session *s, const tok_slot *slot)
{
    if (!tok_session_rw(s))
        return CKR_SESSION_READ_ONLY;
    if (!tok_logged_in(slot) || tok_g.issuer_token == NULL || !tok_g.issuer_token->have_master)
        return CKR_USER_NOT_LOGGED_IN;
    return CKR_OK;
}

CK_RV tok_issuer_store_object(tok_session *s, tok_slot *slot, tok_attrs *a, CK_OBJECT_HANDLE *out)
{
    struct tok_issuer_token *t = tok_g.issuer_token;
    if (tok_attrs_bool(a, CKA_PRIVATE, CK_FALSE) && !tok_logged_in(slot))
        return CKR_USER_NOT_LOGGED_IN;
    if (!tok_attrs_bool(a, CKA_TOKEN, CK_FALSE))
        return tok_object_add_session(s, a, out);
    CK_RV rv = tok_issuer_write_allowed(s, slot);
    uint64_t id = 0;
    if (rv == CKR_OK)
        rv = tok_issuer_store_new_id(t, &id);
    if (rv == CKR_OK)
        rv = tok_issuer_store_write(t, id, a);
    if (rv == CKR_OK && (rv = tok_object_add_token(slot->id, a, id, out)) != CKR_OK)
        tok_issuer_store_remove(t, id);
    return rv;
}

/* The session object behind a handle the session just got, or NULL. */
static tok_session_object *own_object(tok_session *s, CK_OBJECT_HANDLE h)
{
    tok_object o;
    if (tok_object_get(s, h, &o) != CKR_OK || o.where != TOK_OBJ_SESSION)
        return NULL;
    return o.sobj;
}

CK_RV tok_issuer_promote(tok_session *s, tok_slot *slot, CK_OBJECT_HANDLE h)
{
    struct tok_issuer_token *t = tok_g.issuer_token;
    tok_session_object *o = own_object(s, h);
    if (o == NULL)
        return CKR_GENERAL_ERROR;
    uint64_t id = 0;
    CK_RV rv = tok_issuer_write_allowed(s, slot);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(&o->attrs, CKA_TOKEN, CK_TRUE);
    if (rv == CKR_OK)
        rv = tok_issuer_store_new_id(t, &id);
    if (rv == CKR_OK)
        rv = tok_issuer_store_write(t, id, &o->attrs);
    if (rv != CKR_OK) {
        tok_object_destroy_session_object(o);
        return rv;
    }
    o->owner = 0;
    o->token_id = id;
    return CKR_OK;
}

CK_RV tok_issuer_object_replace(tok_session *s, tok_slot *slot, tok_session_object *o, tok_attrs *a)
{
    if (o->token_id != 0) {
        CK_RV rv = tok_issuer_write_allowed(s, slot);
        if (rv == CKR_OK)
            rv = tok_issuer_store_write(tok_g.issuer_token, o->token_id, a);
        if (rv != CKR_OK)
            return rv;
    }
    tok_soft_cache_forget(o); /* made from the attributes being replaced */
    tok_attrs_free(&o->attrs);
    o->attrs = *a;
    memset(a, 0, sizeof(*a));
    return CKR_OK;
}

CK_RV tok_issuer_object_update(tok_session *s, tok_slot *slot, tok_session_object *o,
                               const CK_ATTRIBUTE *t, CK_ULONG n)
{
    tok_attrs a = {0};
    CK_RV rv = tok_issuer_write_allowed(s, slot);
    if (rv == CKR_OK)
        rv = tok_attrs_copy(&a, &o->attrs);
    if (rv == CKR_OK)
        rv = tok_attrs_merge_tmpl(&a, t, n);
    if (rv == CKR_OK)
        rv = tok_issuer_object_replace(s, slot, o, &a);
    tok_attrs_free(&a);
    return rv;
}

CK_RV tok_issuer_object_destroy(tok_session *s, tok_slot *slot, tok_session_object *o)
{
    CK_RV rv = tok_issuer_write_allowed(s, slot);
    if (rv == CKR_OK)
        rv = tok_issuer_store_remove(tok_g.issuer_token, o->token_id);
    if (rv == CKR_OK)
        tok_object_destroy_session_object(o);
    return rv;
}
