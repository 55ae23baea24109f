/*
 * p11_object.c - object management functions: C_CreateObject, C_CopyObject,
 * C_DestroyObject, C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue.
 *
 * Token objects the module creates (certificates, public keys, data objects)
 * are stored on the card with createObject, their attributes serialised by
 * tok_stored.c; session objects stay in module memory. Private keys are
 * always card keys: C_CreateObject imports them through the local issuer
 * (tok_import_private_key). Secret keys exist only as session objects.
 *
 * A card key is one object on the card: destroying its private key deletes
 * it with its public key and certificates. Applications that destroy the
 * private key and then the public key (pkcs11-tool --test-ec, key pair
 * clean-up code) must not fail on the second call, so the module remembers
 * the card keys it deleted and lets each of their other objects be destroyed
 * once more (CKR_OK: it went with its key).
 */
#include <string.h>

#include "token/p11_entry.h"
#include "token/tok.h"
#include "token/tok_crypto.h"
#include "token/tok_issuer_token.h"
#include "token/tok_soft.h"

/* Can the caller create or change token objects on this slot now? */
static CK_RV token_write_allowed(const tok_session *s, const tok_slot *slot)
{
    if (!tok_session_rw(s))
        return CKR_SESSION_READ_ONLY;
    if (slot->kind == TOK_SLOT_FREE)
        return CKR_TOKEN_WRITE_PROTECTED;
    /* The card wants the token's PIN verified for any change to its objects. */
    if (slot->kind == TOK_SLOT_POLICY && !tok_logged_in(slot))
        return CKR_USER_NOT_LOGGED_IN;
    return CKR_OK;
}

static uint8_t sks_class(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_CERTIFICATE:
        return SKS_OBJECT_CERTIFICATE;
    case CKO_DATA:
        return SKS_OBJECT_DATA;
    case CKO_PUBLIC_KEY:
        return SKS_OBJECT_PUBLIC_KEY;
    default:
        return 0;
    }
}

/* Store a complete attribute list as a new token or session object. */
static CK_RV store_object(tok_session *s, tok_slot *slot, CK_OBJECT_CLASS cls, tok_attrs *a,
                          CK_OBJECT_HANDLE *out)
{
    CK_BBOOL private_ = tok_attrs_bool(a, CKA_PRIVATE, CK_FALSE);
    if (!tok_attrs_bool(a, CKA_TOKEN, CK_FALSE)) {
        if (private_ && !tok_logged_in(slot))
            return CKR_USER_NOT_LOGGED_IN;
        return tok_object_add_session(s, a, out);
    }
    /* No-card mode: the issuer token keeps its token objects, of any class, in files. */
    if (slot->kind == TOK_SLOT_ISSUER)
        return tok_issuer_store_object(s, slot, a, out);
    /* The free slot's uninitialised token holds nothing, secret keys included. */
    if (slot->kind == TOK_SLOT_FREE)
        return CKR_TOKEN_WRITE_PROTECTED;
    if (sks_class(cls) == 0)
        return CKR_ATTRIBUTE_VALUE_INVALID; /* secret keys are session objects only */
    CK_RV rv = token_write_allowed(s, slot);
    if (rv != CKR_OK)
        return rv;
    /* Without a PIN nobody could ever read a private object of the no-PIN token. */
    if (private_ && slot->kind == TOK_SLOT_NOPIN)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    sks_writer blob, answer;
    sks_writer_init(&blob);
    sks_writer_init(&answer);
    rv = tok_stored_encode(a, &blob);
    if (rv == CKR_OK) {
        sks_req_create_object req = {
            slot->pin_policy, sks_class(cls), private_, {blob.buf, blob.len}};
        sks_resp_create_object resp;
        rv = tok_card_call_rv(slot->card, SKS_M_CREATE_OBJECT, &req, &resp, &answer);
        if (rv == CKR_OK)
            *out = tok_handle_card(slot->card->index, resp.object_handle, TOK_KIND_STORED);
        tok_card_invalidate(slot->card);
    }
    sks_writer_free(&blob);
    sks_writer_free(&answer);
    return rv;
}

/* Complete a certificate template from its DER (CKA_VALUE); X.509 only. */
static CK_RV complete_certificate(tok_attrs *a)
{
    CK_ULONG type;
    if (!tok_attrs_get_ulong(a, CKA_CERTIFICATE_TYPE, &type) || type != CKC_X_509)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    const tok_attr *value = tok_attrs_find(a, CKA_VALUE);
    tok_attrs derived = {0};
    CK_RV rv = tok_cert_attrs(value->value, value->len, &derived, 0);
    if (rv == CKR_OK) {
        /* A given check value must be the certificate's. */
        const tok_attr *given = tok_attrs_find(a, CKA_CHECK_VALUE);
        const tok_attr *real = tok_attrs_find(&derived, CKA_CHECK_VALUE);
        if (given != NULL &&
            (given->len != real->len || memcmp(given->value, real->value, real->len) != 0))
            rv = CKR_ATTRIBUTE_VALUE_INVALID;
    }
    for (size_t i = 0; rv == CKR_OK && i < derived.n; i++)
        rv = tok_attrs_default(a, derived.v[i].type, derived.v[i].value, derived.v[i].len);
    tok_attrs_free(&derived);
    return rv;
}

/* Check a public key's components and add CKA_MODULUS_BITS and CKA_PUBLIC_KEY_INFO. */
static CK_RV complete_public_key(tok_attrs *a, CK_KEY_TYPE kt)
{
    tok_attrs components = {0};
    CK_RV rv = CKR_OK;
    /* Build from the components, not from a CKA_PUBLIC_KEY_INFO that might disagree. */
    for (size_t i = 0; i < a->n && rv == CKR_OK; i++) {
        if (a->v[i].type != CKA_PUBLIC_KEY_INFO)
            rv = tok_attrs_set(&components, a->v[i].type, a->v[i].value, a->v[i].len);
    }
    EVP_PKEY *pk = rv == CKR_OK ? tok_pkey_from_attrs(&components) : NULL;
    tok_attrs_free(&components);
    if (rv != CKR_OK)
        return rv;
    if (pk == NULL)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    tok_attrs derived = {0};
    rv = tok_pkey_attrs(pk, CKO_PUBLIC_KEY, &derived);
    EVP_PKEY_free(pk);
    CK_ULONG derived_type = 0;
    if (rv == CKR_OK &&
        (!tok_attrs_get_ulong(&derived, CKA_KEY_TYPE, &derived_type) || derived_type != kt))
        rv = CKR_TEMPLATE_INCONSISTENT;
    static const CK_ATTRIBUTE_TYPE computed[] = {CKA_PUBLIC_KEY_INFO, CKA_MODULUS_BITS};
    for (size_t i = 0; rv == CKR_OK && i < sizeof(computed) / sizeof(computed[0]); i++) {
        const tok_attr *e = tok_attrs_find(&derived, computed[i]);
        if (e != NULL)
            rv = tok_attrs_set(a, e->type, e->value, e->len);
    }
    tok_attrs_free(&derived);
    return rv;
}

static CK_RV complete_secret_key(tok_attrs *a, CK_KEY_TYPE kt)
{
    const tok_attr *value = tok_attrs_find(a, CKA_VALUE);
    if (kt == CKK_AES && value->len != 16 && value->len != 24 && value->len != 32)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    if (value->len == 0)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    return tok_attrs_set_ulong(a, CKA_VALUE_LEN, value->len);
}

/* The key type a template must carry for classes that have one. */
static CK_RV template_types(const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_CLASS *cls,
                            CK_KEY_TYPE *kt)
{
    if (!tok_tmpl_get_ulong(t, n, CKA_CLASS, cls))
        return tok_tmpl_find(t, n, CKA_CLASS) ? CKR_ATTRIBUTE_VALUE_INVALID
                                              : CKR_TEMPLATE_INCOMPLETE;
    *kt = CK_UNAVAILABLE_INFORMATION;
    if (*cls == CKO_PUBLIC_KEY || *cls == CKO_SECRET_KEY) {
        if (!tok_tmpl_get_ulong(t, n, CKA_KEY_TYPE, kt))
            return CKR_TEMPLATE_INCOMPLETE;
        int ok = *cls == CKO_PUBLIC_KEY ? (*kt == CKK_RSA || *kt == CKK_EC)
                                        : (*kt == CKK_AES || *kt == CKK_GENERIC_SECRET);
        if (!ok)
            return CKR_ATTRIBUTE_VALUE_INVALID;
    } else if (*cls != CKO_DATA && *cls != CKO_CERTIFICATE) {
        return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    return CKR_OK;
}

CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                     CK_OBJECT_HANDLE_PTR phObject)
{
    tok_session *s;
    tok_slot *slot;
    tok_attrs a = {0};
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE kt;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(phObject != NULL && pTemplate != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_tmpl_valid(pTemplate, ulCount));
    CK_ULONG c;
    if (tok_tmpl_get_ulong(pTemplate, ulCount, CKA_CLASS, &c) && c == CKO_PRIVATE_KEY) {
        /* No-card mode: a software key of the issuer token; else imported onto the card. */
        if (slot->kind == TOK_SLOT_ISSUER)
            rv = tok_soft_create_private_key(s, slot, pTemplate, ulCount, phObject);
        else
            rv = tok_import_private_key(s, slot, pTemplate, ulCount, phObject);
        goto out;
    }
    TOK_TRY(template_types(pTemplate, ulCount, &cls, &kt));
    TOK_TRY(tok_rules_check(cls, kt, TOK_OP_CREATE, pTemplate, ulCount));
    TOK_TRY(tok_attrs_merge_tmpl(&a, pTemplate, ulCount));
    if (cls == CKO_CERTIFICATE)
        TOK_TRY(complete_certificate(&a));
    else if (cls == CKO_PUBLIC_KEY)
        TOK_TRY(complete_public_key(&a, kt));
    else if (cls == CKO_SECRET_KEY)
        TOK_TRY(complete_secret_key(&a, kt));
    TOK_TRY(tok_rules_defaults(cls, kt, TOK_OP_CREATE, &a));
    TOK_TRY(store_object(s, slot, cls, &a, phObject));
    TOK_EXIT
    tok_attrs_free(&a);
    TOK_RETURN();
}

CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                   CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
    tok_session *s;
    tok_slot *slot;
    tok_object o;
    tok_attrs a = {0};
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(phNewObject != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_tmpl_valid(pTemplate, ulCount));
    TOK_TRY(tok_object_get(s, hObject, &o));
    TOK_TRY(tok_rules_check_change(o.attrs, TOK_OP_COPY, pTemplate, ulCount));
    TOK_TRY(tok_rules_check(o.cls, o.key_type, TOK_OP_COPY, pTemplate, ulCount));
    TOK_TRY(tok_attrs_copy(&a, o.attrs));
    TOK_TRY(tok_attrs_merge_tmpl(&a, pTemplate, ulCount));
    TOK_TRY(store_object(s, slot, o.cls, &a, phNewObject));
    TOK_EXIT
    tok_attrs_free(&a);
    TOK_RETURN();
}

/*
 * Card keys this module deleted, for C_DestroyObject of their public key and
 * certificates afterwards. Card key handles are never reused, so an entry
 * (card serial, key handle) can only ever mean that key; the slot keeps a
 * handle valid only in sessions of the token it belonged to. A small ring:
 * the oldest entries make room (their objects then answer
 * CKR_OBJECT_HANDLE_INVALID, as any other unknown handle). The module lock
 * protects it; it lasts as long as the module is loaded.
 */
#define DELETED_KEYS 64

typedef struct {
    char serial[sizeof(((tok_card *)0)->serial)];
    CK_SLOT_ID slot;
    uint32_t key_handle;
    uint8_t cert_count;
    uint16_t destroyed; /* bit per kind: already destroyed after the key */
    int used;
} deleted_key;

static deleted_key deleted_keys[DELETED_KEYS];
static size_t deleted_next;

static void remember_deleted(const tok_card *card, const tok_card_key *key)
{
    deleted_key *d = &deleted_keys[deleted_next];
    deleted_next = (deleted_next + 1) % DELETED_KEYS;
    memset(d, 0, sizeof(*d));
    memcpy(d->serial, card->serial, sizeof(d->serial));
    d->slot = tok_slot_id_for_policy(card, key->pin_policy);
    d->key_handle = key->handle;
    d->cert_count = key->cert_count;
    d->used = 1;
}

/*
 * Is `h` the public key or a certificate of a card key this module deleted
 * from the session's token, not yet destroyed since? Marks it destroyed.
 */
static int went_with_deleted_key(const tok_slot *slot, CK_OBJECT_HANDLE h)
{
    int idx;
    uint32_t key_handle;
    unsigned kind;
    if (tok_handle_decode(h, &idx, &key_handle, &kind) != 0 || slot->card == NULL ||
        idx != slot->card->index || kind == TOK_KIND_PRIVATE_KEY || kind >= TOK_KEY_KINDS)
        return 0;
    for (size_t i = 0; i < DELETED_KEYS; i++) {
        deleted_key *d = &deleted_keys[i];
        if (!d->used || d->key_handle != key_handle || d->slot != slot->id ||
            strcmp(d->serial, slot->card->serial) != 0)
            continue;
        uint16_t bit = (uint16_t)(1u << kind);
        if ((kind >= TOK_KIND_CERT_FIRST && kind - TOK_KIND_CERT_FIRST >= d->cert_count) ||
            (d->destroyed & bit))
            return 0;
        d->destroyed |= bit;
        return 1;
    }
    return 0;
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
    tok_session *s;
    tok_slot *slot;
    tok_object o;
    sks_writer answer;
    sks_writer_init(&answer);
    TOK_ENTER_SESSION(hSession, &s, &slot);
    rv = tok_object_get(s, hObject, &o);
    if (rv == CKR_OBJECT_HANDLE_INVALID && went_with_deleted_key(slot, hObject)) {
        rv = CKR_OK; /* it went with its key */
        goto out;
    }
    TOK_TRY(rv);
    if (o.where == TOK_OBJ_CARD_KEY && o.kind != TOK_KIND_PRIVATE_KEY) {
        tok_log(TOK_LOG_WARN,
                "object %lx: the public key and certificates of a card key go only with its "
                "private key: destroy the private key",
                (unsigned long)hObject);
        TOK_FAIL(CKR_ACTION_PROHIBITED);
    }
    TOK_CHECK(tok_attrs_bool(o.attrs, CKA_DESTROYABLE, CK_TRUE), CKR_ACTION_PROHIBITED);
    if (o.where == TOK_OBJ_SESSION) {
        if (o.sobj->token_id != 0) /* a token object of the issuer token: its file too */
            TOK_FAIL(tok_issuer_object_destroy(s, slot, o.sobj));
        tok_object_destroy_session_object(o.sobj);
        goto out;
    }
    TOK_CHECK(tok_session_rw(s), CKR_SESSION_READ_ONLY);
    if (o.where == TOK_OBJ_STORED) {
        sks_req_object_handle req = {o.stored->handle};
        rv = tok_card_call_rv(o.card, SKS_M_DELETE_OBJECT, &req, NULL, &answer);
    } else {
        /* The private key: it takes its public key and certificates. */
        sks_req_delete_key req = {o.key->handle, {NULL, 0}};
        rv = tok_card_call_rv(o.card, SKS_M_DELETE_KEY, &req, NULL, &answer);
        if (rv == CKR_OK)
            remember_deleted(o.card, o.key);
    }
    tok_card_invalidate(o.card);
    TOK_EXIT
    sks_writer_free(&answer);
    TOK_RETURN();
}

CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
    tok_session *s;
    tok_object o;
    TOK_ENTER_SESSION(hSession, &s, NULL);
    TOK_CHECK(pulSize != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_object_get(s, hObject, &o));
    *pulSize = tok_attrs_size(o.attrs);
    TOK_LEAVE();
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                          CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    tok_session *s;
    tok_object o;
    TOK_ENTER_SESSION(hSession, &s, NULL);
    TOK_CHECK(pTemplate != NULL || ulCount == 0, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_object_get(s, hObject, &o));
    rv = tok_attrs_copy_out(o.attrs, pTemplate, ulCount, tok_rules_hidden);
    TOK_LEAVE();
}

/*
 * A card key's CKA_ID and CKA_LABEL change on the card (setKeyAttributes),
 * from its private or its public key alike: both are views of the one card
 * key. Its other attributes follow from the card's KeyUsage, flags and
 * certificate (CKA_SUBJECT is the end-entity certificate's subject), so a
 * template may only repeat their current values.
 */
static CK_RV set_card_key(tok_object *o, const CK_ATTRIBUTE *t, CK_ULONG n, sks_writer *answer)
{
    tok_card_key *k = o->key;
    sks_view id = {k->id, k->id_len};
    sks_view label = {(const uint8_t *)k->label, strlen(k->label)};
    int change = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].type == CKA_ID) {
            if (t[i].ulValueLen < 1 || t[i].ulValueLen > SKS_ID_MAX)
                return CKR_ATTRIBUTE_VALUE_INVALID;
            id = (sks_view){t[i].pValue, t[i].ulValueLen};
            change = 1;
        } else if (t[i].type == CKA_LABEL) {
            if (t[i].ulValueLen > SKS_FRIENDLY_NAME_MAX)
                return CKR_ATTRIBUTE_VALUE_INVALID;
            label = (sks_view){t[i].pValue, t[i].ulValueLen};
            change = 1;
        } else if (!tok_attrs_match(o->attrs, &t[i], 1)) {
            return CKR_ATTRIBUTE_READ_ONLY;
        }
    }
    if (!change)
        return CKR_OK; /* only current values: nothing to tell the card */
    sks_req_set_key_attributes req = {k->handle, id, label};
    CK_RV rv = tok_card_call_rv(o->card, SKS_M_SET_KEY_ATTRIBUTES, &req, NULL, answer);
    tok_card_invalidate(o->card);
    return rv;
}

static CK_RV set_stored(tok_object *o, const CK_ATTRIBUTE *t, CK_ULONG n, sks_writer *answer)
{
    tok_attrs a = {0};
    sks_writer blob;
    sks_writer_init(&blob);
    CK_RV rv = tok_attrs_copy(&a, o->attrs);
    if (rv == CKR_OK)
        rv = tok_attrs_merge_tmpl(&a, t, n);
    if (rv == CKR_OK)
        rv = tok_stored_encode(&a, &blob);
    if (rv == CKR_OK) {
        sks_req_update_object req = {o->stored->handle, {blob.buf, blob.len}};
        rv = tok_card_call_rv(o->card, SKS_M_UPDATE_OBJECT, &req, NULL, answer);
        tok_card_invalidate(o->card);
    }
    sks_writer_free(&blob);
    tok_attrs_free(&a);
    return rv;
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                          CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    tok_session *s;
    tok_slot *slot;
    tok_object o;
    sks_writer answer;
    sks_writer_init(&answer);
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pTemplate != NULL || ulCount == 0, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_tmpl_valid(pTemplate, ulCount));
    TOK_TRY(tok_object_get(s, hObject, &o));
    TOK_TRY(tok_rules_check_change(o.attrs, TOK_OP_SET, pTemplate, ulCount));
    TOK_TRY(tok_rules_check(o.cls, o.key_type, TOK_OP_SET, pTemplate, ulCount));
    if (o.where == TOK_OBJ_SESSION) {
        if (o.sobj->token_id != 0) /* a token object of the issuer token: its file first */
            TOK_FAIL(tok_issuer_object_update(s, slot, o.sobj, pTemplate, ulCount));
        TOK_TRY(tok_attrs_merge_tmpl(&o.sobj->attrs, pTemplate, ulCount));
        goto out;
    }
    TOK_TRY(token_write_allowed(s, slot));
    if (o.where == TOK_OBJ_STORED)
        rv = set_stored(&o, pTemplate, ulCount, &answer);
    else
        rv = set_card_key(&o, pTemplate, ulCount, &answer);
    TOK_EXIT
    sks_writer_free(&answer);
    TOK_RETURN();
}
