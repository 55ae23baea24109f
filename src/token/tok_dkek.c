/*
 * tok_dkek.c - the DKEK objects and backup views of a card's tokens
 * (tok_dkek.h): loaded with the card cache from getDKEKStatus, one DKEK
 * entry per token (each PIN policy, and the keys-without-PIN token), one
 * backup view entry per private key that allows backup.
 *
 * Both kinds are read-only: CKA_MODIFIABLE, CKA_COPYABLE and CKA_DESTROYABLE
 * are false, so C_SetAttributeValue, C_CopyObject and C_DestroyObject refuse
 * them through the standard attribute checks. Their only use is
 * CKM_VENDOR_SKS_DKEK_WRAP (tok_dkek_wrap.c).
 */
#include <stdlib.h>
#include <string.h>

#include "pkcs11/sks-pkcs11.h"
#include "token/tok_dkek.h"
#include "token/tok_try.h"

#define DKEK_LABEL "DKEK"

/* The attributes both kinds share: a read-only token secret key that never leaves the card. */
static CK_RV common(tok_attrs *a, CK_KEY_TYPE type, CK_BBOOL private_, CK_BBOOL extractable)
{
    static const CK_ATTRIBUTE_TYPE no[] = {
        CKA_MODIFIABLE, CKA_COPYABLE, CKA_DESTROYABLE, CKA_ENCRYPT,           CKA_DECRYPT, CKA_SIGN,
        CKA_VERIFY,     CKA_DERIVE,   CKA_TRUSTED,     CKA_WRAP_WITH_TRUSTED, CKA_LOCAL};
    CK_MECHANISM_TYPE mech = CKM_VENDOR_SKS_DKEK_WRAP;
    TRY(tok_attrs_set_ulong(a, CKA_CLASS, CKO_SECRET_KEY));
    TRY(tok_attrs_set_ulong(a, CKA_KEY_TYPE, type));
    TRY(tok_attrs_set_bool(a, CKA_TOKEN, CK_TRUE));
    TRY(tok_attrs_set_bool(a, CKA_PRIVATE, private_));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        TRY(tok_attrs_set_bool(a, no[i], CK_FALSE));
    TRY(tok_attrs_set_bool(a, CKA_SENSITIVE, CK_TRUE));
    TRY(tok_attrs_set_bool(a, CKA_ALWAYS_SENSITIVE, CK_TRUE));
    TRY(tok_attrs_set_bool(a, CKA_EXTRACTABLE, extractable));
    TRY(tok_attrs_set_bool(a, CKA_NEVER_EXTRACTABLE, !extractable));
    TRY(tok_attrs_set_ulong(a, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION));
    return tok_attrs_set(a, CKA_ALLOWED_MECHANISMS, &mech, sizeof(mech));
}

static CK_RV dkek_attrs(const struct tok_dkek_cache *d, tok_attrs *a)
{
    static const uint8_t zeros[SKS_DKEK_KCV_LEN] = {0};
    TRY(common(a, CKK_VENDOR_SKS_DKEK, CK_FALSE, CK_FALSE));
    TRY(tok_attrs_set(a, CKA_LABEL, DKEK_LABEL, strlen(DKEK_LABEL)));
    TRY(tok_attrs_set(a, CKA_ID, DKEK_LABEL, strlen(DKEK_LABEL)));
    TRY(tok_attrs_set_bool(a, CKA_WRAP, CK_TRUE));
    TRY(tok_attrs_set_bool(a, CKA_UNWRAP, CK_TRUE));
    TRY(tok_attrs_set_ulong(a, CKA_VALUE_LEN, SKS_DKEK_LEN));
    TRY(tok_attrs_set_ulong(a, CKA_VENDOR_SKS_DKEK_SHARES, d->total));
    TRY(tok_attrs_set_ulong(a, CKA_VENDOR_SKS_DKEK_OUTSTANDING, d->outstanding));
    return tok_attrs_set(a, CKA_VENDOR_SKS_DKEK_KCV, d->state == SKS_DKEK_READY ? d->kcv : zeros,
                         SKS_DKEK_KCV_LEN);
}

static CK_RV view_attrs(const tok_card_key *k, tok_attrs *a)
{
    TRY(common(a, CKK_VENDOR_SKS_KEY_BACKUP, k->pin_policy != 0, CK_TRUE));
    TRY(tok_attrs_set(a, CKA_LABEL, k->label, strlen(k->label)));
    TRY(tok_attrs_set(a, CKA_ID, k->id, k->id_len));
    TRY(tok_attrs_set_bool(a, CKA_WRAP, CK_FALSE));
    TRY(tok_attrs_set_bool(a, CKA_UNWRAP, CK_FALSE));
    return tok_attrs_set_bool(a, CKA_VENDOR_SKS_BACKUP_ALLOWED, CK_TRUE);
}

/* Append one entry (the cache's own list grows by one) and index it. */
static CK_RV add_entry(tok_card *card, uint32_t pin_policy, uint32_t pos, uint32_t handle,
                       unsigned kind, const void *id, size_t id_len, const char *label)
{
    tok_card_entry *v = realloc(card->entries, (card->nentries + 1) * sizeof(*v));
    if (v == NULL)
        return CKR_HOST_MEMORY;
    card->entries = v;
    tok_card_entry *e = &card->entries[card->nentries];
    e->handle = tok_handle_card(card->index, handle, kind);
    e->pin_policy = pin_policy;
    e->pos = pos;
    e->kind = (uint8_t)kind;
    e->private_ = kind == TOK_KIND_BACKUP && pin_policy != 0;
    uint32_t idx = (uint32_t)card->nentries++;
    if (tok_index_add(card->lookup, 'I', id, id_len, idx) != 0 ||
        tok_index_add(card->lookup, 'L', label, strlen(label), idx) != 0)
        return CKR_HOST_MEMORY;
    return CKR_OK;
}

/* getDKEKStatus; *known is 0 for a card without the DKEK methods. */
static CK_RV read_status(tok_card *card, struct tok_dkek_cache *d, int *known)
{
    sks_resp_dkek_status st;
    sks_writer answer;
    uint8_t status;
    sks_writer_init(&answer);
    CK_RV rv = tok_card_call(card, SKS_M_GET_DKEK_STATUS, NULL, &st, &answer, &status, NULL, 0);
    *known = rv == CKR_OK && status == SKS_OK && st.kcv.len == SKS_DKEK_KCV_LEN &&
             st.shares_outstanding <= st.shares_total;
    if (*known) {
        d->state = st.state;
        d->total = st.shares_total;
        d->outstanding = st.shares_outstanding;
        memcpy(d->kcv, st.kcv.ptr, SKS_DKEK_KCV_LEN);
    } else if (rv == CKR_OK && status != SKS_OK && status != SKS_ERR_NO_METHOD) {
        tok_log(TOK_LOG_WARN, "%s: getDKEKStatus failed (%s)", card->reader,
                sks_status_name(status));
    }
    sks_writer_free(&answer);
    return rv;
}

CK_RV tok_dkek_cache_load(tok_card *card)
{
    int known = 0;
    tok_dkek_cache_free(card);
    struct tok_dkek_cache *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return CKR_HOST_MEMORY;
    CK_RV rv = read_status(card, d, &known);
    if (rv != CKR_OK || !known || d->state == SKS_DKEK_NONE) {
        free(d);
        return rv;
    }
    card->dkek = d;
    rv = dkek_attrs(d, &d->dkek);
    /* One DKEK object per token: each PIN policy, and the token of keys without PIN. */
    for (size_t i = 0; rv == CKR_OK && i <= card->npolicies; i++) {
        uint32_t policy = i < card->npolicies ? card->policies[i].handle : 0;
        rv = add_entry(card, policy, 0, policy, TOK_KIND_DKEK, DKEK_LABEL, strlen(DKEK_LABEL),
                       DKEK_LABEL);
    }
    if (rv == CKR_OK && d->state == SKS_DKEK_READY) {
        d->views = calloc(card->nkeys ? card->nkeys : 1, sizeof(*d->views));
        d->nviews = card->nkeys;
        if (d->views == NULL)
            rv = CKR_HOST_MEMORY;
        for (size_t i = 0; rv == CKR_OK && i < card->nkeys; i++) {
            const tok_card_key *k = &card->keys[i];
            if (k->flags & SKS_KEYFLAG_MIGRATABLE)
                rv = add_entry(card, k->pin_policy, (uint32_t)i, k->handle, TOK_KIND_BACKUP, k->id,
                               k->id_len, k->label);
        }
    }
    return rv;
}

void tok_dkek_cache_free(tok_card *card)
{
    struct tok_dkek_cache *d = card->dkek;
    if (d == NULL)
        return;
    tok_attrs_free(&d->dkek);
    for (size_t i = 0; i < d->nviews; i++) {
        if (d->views[i] != NULL) {
            tok_attrs_free(d->views[i]);
            free(d->views[i]);
        }
    }
    free(d->views);
    free(d);
    card->dkek = NULL;
}

/* The backup view of card->keys[pos], built on first use. */
static const tok_attrs *view_of(tok_card *card, size_t pos)
{
    struct tok_dkek_cache *d = card->dkek;
    if (d == NULL || pos >= d->nviews || pos >= card->nkeys)
        return NULL;
    if (d->views[pos] != NULL)
        return d->views[pos];
    tok_attrs *a = calloc(1, sizeof(*a));
    if (a == NULL || view_attrs(&card->keys[pos], a) != CKR_OK) {
        if (a != NULL)
            tok_attrs_free(a);
        free(a);
        return NULL;
    }
    d->views[pos] = a;
    return a;
}

const tok_attrs *tok_dkek_entry_attrs(tok_card *card, const tok_card_entry *e)
{
    if (card->dkek == NULL)
        return NULL;
    return e->kind == TOK_KIND_DKEK ? &card->dkek->dkek : view_of(card, e->pos);
}

static void fill_types(tok_object *o)
{
    CK_ULONG v;
    o->cls = tok_attrs_get_ulong(o->attrs, CKA_CLASS, &v) ? v : CK_UNAVAILABLE_INFORMATION;
    o->key_type = tok_attrs_get_ulong(o->attrs, CKA_KEY_TYPE, &v) ? v : CK_UNAVAILABLE_INFORMATION;
}

CK_RV tok_dkek_object_get(tok_session *s, tok_card *card, uint32_t card_handle, unsigned kind,
                          tok_object *out)
{
    struct tok_dkek_cache *d = card->dkek;
    if (d == NULL)
        return CKR_OBJECT_HANDLE_INVALID;
    if (kind == TOK_KIND_DKEK) {
        if ((card_handle != 0 && tok_card_find_policy(card, card_handle) == NULL) ||
            tok_slot_id_for_policy(card, card_handle) != s->slot)
            return CKR_OBJECT_HANDLE_INVALID;
        out->attrs = &d->dkek;
    } else {
        tok_card_key *k = d->state == SKS_DKEK_READY ? tok_card_find_key(card, card_handle) : NULL;
        if (k == NULL || !(k->flags & SKS_KEYFLAG_MIGRATABLE) ||
            tok_slot_id_for_policy(card, k->pin_policy) != s->slot ||
            (k->pin_policy != 0 && !tok_logged_in(tok_slot_find(s->slot))))
            return CKR_OBJECT_HANDLE_INVALID;
        out->attrs = view_of(card, (size_t)(k - card->keys));
        if (out->attrs == NULL)
            return CKR_DEVICE_ERROR;
    }
    out->where = TOK_OBJ_DKEK;
    out->card = card;
    out->kind = kind;
    fill_types(out);
    return CKR_OK;
}
