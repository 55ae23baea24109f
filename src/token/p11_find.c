/*
 * p11_find.c - C_FindObjectsInit, C_FindObjects, C_FindObjectsFinal.
 *
 * The whole result is computed at C_FindObjectsInit from the card cache
 * (refreshed first) and the session objects, and kept as a list of handles,
 * so a search that is interrupted by other calls - even ones that create
 * or destroy objects - returns a consistent snapshot. A template with
 * CKA_ID or CKA_LABEL starts from the cache's index instead of every object,
 * and one of only CKA_CLASS, CKA_TOKEN, CKA_ID and CKA_LABEL is matched
 * against a key's objects without building their attributes.
 */
#include <stdlib.h>
#include <string.h>

#include "token/p11_entry.h"
#include "token/tok.h"
#include "token/tok_dkek.h"

typedef struct {
    CK_OBJECT_HANDLE *v;
    size_t n, cap;
} handle_list;

static CK_RV push(handle_list *l, CK_OBJECT_HANDLE h)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        CK_OBJECT_HANDLE *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return CKR_HOST_MEMORY;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = h;
    return CKR_OK;
}

static CK_OBJECT_CLASS entry_class(const tok_card *card, const tok_card_entry *e)
{
    switch (e->kind) {
    case TOK_KIND_PRIVATE_KEY:
        return CKO_PRIVATE_KEY;
    case TOK_KIND_PUBLIC_KEY:
        return CKO_PUBLIC_KEY;
    case TOK_KIND_STORED:
        return card->objects[e->pos].cls;
    case TOK_KIND_DKEK:
    case TOK_KIND_BACKUP:
        return CKO_SECRET_KEY;
    default:
        return CKO_CERTIFICATE;
    }
}

/*
 * Can the template be matched against a key's objects from the cache alone:
 * are all its attributes among CKA_CLASS, CKA_TOKEN, CKA_ID and CKA_LABEL?
 * A key's private key, public key and end-entity certificate have the
 * key's ID and friendly name as CKA_ID and CKA_LABEL (tok_keyattrs.c), and
 * building all their attributes (certificate parsing) would cost far more
 * than the search.
 */
static int cheap_template(const CK_ATTRIBUTE *t, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++)
        if (t[i].type != CKA_CLASS && t[i].type != CKA_TOKEN && t[i].type != CKA_ID &&
            t[i].type != CKA_LABEL)
            return 0;
    return 1;
}

/* One template attribute against a value, by the rule of tok_attrs_match. */
static int value_matches(const void *value, size_t len, const CK_ATTRIBUTE *a)
{
    if (a->ulValueLen != len)
        return 0;
    return len == 0 || (a->pValue != NULL && memcmp(a->pValue, value, len) == 0);
}

/*
 * A cheap template (cheap_template) against the private key, public key or
 * end-entity certificate of a card key, from the cache. Such an object is
 * found even when its other attributes could not be built (a damaged
 * public key); using it then fails with CKR_DEVICE_ERROR.
 */
static int key_entry_matches(const tok_card *card, const tok_card_entry *e, const CK_ATTRIBUTE *t,
                             CK_ULONG n)
{
    const tok_card_key *k = &card->keys[e->pos];
    CK_OBJECT_CLASS cls = entry_class(card, e);
    CK_BBOOL token = CK_TRUE;
    for (CK_ULONG i = 0; i < n; i++) {
        int ok = t[i].type == CKA_CLASS   ? value_matches(&cls, sizeof(cls), &t[i])
                 : t[i].type == CKA_TOKEN ? value_matches(&token, sizeof(token), &t[i])
                 : t[i].type == CKA_ID    ? value_matches(k->id, k->id_len, &t[i])
                                          : value_matches(k->label, strlen(k->label), &t[i]);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Check one cache entry against the session's token, visibility and the template. */
static CK_RV match_entry(tok_session *s, tok_card *card, uint32_t idx, const CK_ATTRIBUTE *t,
                         CK_ULONG n, int logged_in, handle_list *out)
{
    const tok_card_entry *e = &card->entries[idx];
    if (tok_slot_id_for_policy(card, e->pin_policy) != s->slot || (e->private_ && !logged_in))
        return CKR_OK;
    CK_ULONG cls;
    if (tok_tmpl_get_ulong(t, n, CKA_CLASS, &cls) && cls != entry_class(card, e))
        return CKR_OK;
    if (e->kind <= TOK_KIND_CERT_FIRST && cheap_template(t, n))
        return key_entry_matches(card, e, t, n) ? push(out, e->handle) : CKR_OK;
    const tok_attrs *a;
    if (e->kind == TOK_KIND_STORED)
        a = &card->objects[e->pos].attrs;
    else if (e->kind == TOK_KIND_DKEK || e->kind == TOK_KIND_BACKUP)
        a = tok_dkek_entry_attrs(card, e);
    else
        a = tok_card_key_attrs(&card->keys[e->pos], e->kind);
    if (a == NULL) {
        tok_log(TOK_LOG_WARN, "object %lx: attributes unavailable", (unsigned long)e->handle);
        return CKR_OK;
    }
    return tok_attrs_match(a, t, n) ? push(out, e->handle) : CKR_OK;
}

static CK_RV find_card(tok_session *s, tok_card *card, const CK_ATTRIBUTE *t, CK_ULONG n,
                       int logged_in, handle_list *out)
{
    CK_RV rv = tok_card_refresh(card);
    if (rv == CKR_OK)
        rv = tok_card_ensure(card); /* the keys, read at the first search */
    if (rv != CKR_OK)
        return rv;
    const CK_ATTRIBUTE *id = tok_tmpl_find(t, n, CKA_ID);
    const CK_ATTRIBUTE *label = tok_tmpl_find(t, n, CKA_LABEL);
    const CK_ATTRIBUTE *key = id != NULL ? id : label;
    if (key == NULL) {
        for (size_t i = 0; rv == CKR_OK && i < card->nentries; i++)
            rv = match_entry(s, card, (uint32_t)i, t, n, logged_in, out);
        return rv;
    }
    size_t count = 0;
    const uint32_t *hits =
        tok_index_get(card->lookup, key == id ? 'I' : 'L', key->pValue, key->ulValueLen, &count);
    for (size_t i = 0; rv == CKR_OK && i < count; i++)
        rv = match_entry(s, card, hits[i], t, n, logged_in, out);
    for (size_t i = 0; rv == CKR_OK && i < card->nscan; i++)
        rv = match_entry(s, card, card->scan[i], t, n, logged_in, out);
    return rv;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    tok_session *s;
    tok_slot *slot;
    handle_list found = {NULL, 0, 0};
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(!s->finding, CKR_OPERATION_ACTIVE);
    TOK_TRY(tok_tmpl_valid(pTemplate, ulCount));
    int logged_in = tok_logged_in(slot);
    /* The issuer token of no-card mode has no card: its objects are all in the list below. */
    if (slot->kind != TOK_SLOT_FREE && slot->kind != TOK_SLOT_ISSUER)
        TOK_TRY(find_card(s, slot->card, pTemplate, ulCount, logged_in, &found));
    for (tok_session_object *o = tok_g.session_objects; o != NULL; o = o->next) {
        if (o->slot == s->slot && tok_object_visible(s, &o->attrs) &&
            tok_attrs_match(&o->attrs, pTemplate, ulCount))
            TOK_TRY(push(&found, o->handle));
    }
    free(s->find.v);
    s->find.v = found.v;
    s->find.n = found.n;
    s->find.pos = 0;
    s->finding = 1;
    found.v = NULL;
    TOK_EXIT
    free(found.v);
    TOK_RETURN();
}

CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                    CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    tok_session *s;
    TOK_ENTER_SESSION(hSession, &s, NULL);
    TOK_CHECK(phObject != NULL && pulObjectCount != NULL, CKR_ARGUMENTS_BAD);
    TOK_CHECK(s->finding, CKR_OPERATION_NOT_INITIALIZED);
    size_t left = s->find.n - s->find.pos;
    size_t n = ulMaxObjectCount < left ? ulMaxObjectCount : left;
    if (n > 0)
        memcpy(phObject, s->find.v + s->find.pos, n * sizeof(*phObject));
    s->find.pos += n;
    *pulObjectCount = n;
    TOK_LEAVE();
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    tok_session *s;
    TOK_ENTER_SESSION(hSession, &s, NULL);
    TOK_CHECK(s->finding, CKR_OPERATION_NOT_INITIALIZED);
    free(s->find.v);
    memset(&s->find, 0, sizeof(s->find));
    s->finding = 0;
    TOK_LEAVE();
}
