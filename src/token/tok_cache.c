/*
 * tok_cache.c - what the middleware knows about a card's contents: its PIN
 * policies, its complete keys and the objects it stores, read once and kept
 * until the card's ChangeCounter (getDeviceInfo) moves. Finding objects then
 * walks memory, with an index by CKA_ID and CKA_LABEL, never the card.
 *
 * A stored object that is Private cannot be read before its PIN is
 * verified; the cache keeps its handle as "unreadable" and reads it on the
 * next refresh after a login.
 *
 * A login is a verifyPIN, which moves the ChangeCounter by exactly two
 * (docs/protocol.md 7.0, 7.1) without changing any key or object. The
 * module counts its own successful verifyPINs (tok_card_pin_verified); when
 * the counter has moved by exactly that much, nobody else changed the card
 * (every other change moves it at least once more), so only the PIN
 * policies and the objects that were unreadable are read again. Anything
 * else reloads everything.
 *
 * The keys are read when something first needs them (a search, an object
 * handle), not when the slots are listed: the slot list needs only the PIN
 * policies and whether some key has no PIN (countKeys), so a program that
 * loads the module without using its keys never reads them. They are read
 * with enumerateKeyAttributes, many records per call; a card that does not
 * know it gets enumerateKeys and a getKeyAttributes per key, with the same
 * result. A card without countKeys has its keys read with the slot list.
 *
 * A key's public key (SPKI) is parsed on first use, not at load: at load it
 * would be most of the cost of a card with many keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sks_crypto.h"
#include "token/tok.h"
#include "token/tok_dkek.h"
#include "token/tok_ossl.h"

static void key_free(tok_card_key *k)
{
    free(k->label);
    free(k->spki);
    EVP_PKEY_free(k->public_key);
    for (unsigned i = 0; i < k->cert_count; i++)
        free(k->cert[i]);
    for (unsigned i = 0; i < TOK_KEY_KINDS; i++) {
        if (k->attrs[i] != NULL) {
            tok_attrs_free(k->attrs[i]);
            free(k->attrs[i]);
        }
    }
    memset(k, 0, sizeof(*k));
}

/* The flat list of objects searches walk, and its indexes. */
static void free_entries(tok_card *card)
{
    free(card->entries);
    card->entries = NULL;
    card->nentries = 0;
    tok_index_free(card->lookup);
    card->lookup = NULL;
    free(card->scan);
    card->scan = NULL;
    card->nscan = 0;
}

static void free_objects(tok_card *card)
{
    for (size_t i = 0; i < card->nobjects; i++)
        tok_attrs_free(&card->objects[i].attrs);
    free(card->objects);
    card->objects = NULL;
    card->nobjects = 0;
}

void tok_card_cache_free(tok_card *card)
{
    for (size_t i = 0; i < card->nkeys; i++)
        key_free(&card->keys[i]);
    free(card->keys);
    card->keys = NULL;
    card->nkeys = 0;
    free_objects(card);
    free(card->policies);
    card->policies = NULL;
    card->npolicies = 0;
    sks_writer_reset(&card->policies_buf);
    free_entries(card);
    tok_dkek_cache_free(card);
    card->cache_loaded = 0;
    card->keys_loaded = 0;
    card->nopin_keys = 0;
}

void tok_card_invalidate(tok_card *card)
{
    card->cache_loaded = 0;
    card->checked = 0;
}

/* The card's serial as text: printable ASCII as is, anything else in hex. */
static void set_serial(tok_card *card, sks_view serial)
{
    int printable = serial.len > 0 && serial.len < sizeof(card->serial);
    for (size_t i = 0; printable && i < serial.len; i++)
        printable = serial.ptr[i] > 0x20 && serial.ptr[i] < 0x7F;
    if (printable) {
        memcpy(card->serial, serial.ptr, serial.len);
        card->serial[serial.len] = '\0';
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < serial.len && n + 2 < sizeof(card->serial); i++)
        n += (size_t)snprintf(card->serial + n, sizeof(card->serial) - n, "%02X", serial.ptr[i]);
    card->serial[n] = '\0';
}

static CK_RV device_info(tok_card *card, sks_resp_get_device_info *info)
{
    sks_writer answer;
    sks_writer_init(&answer);
    CK_RV rv = tok_card_call_rv(card, SKS_M_GET_DEVICE_INFO, NULL, info, &answer);
    if (rv == CKR_OK) {
        set_serial(card, info->serial);
        card->max_keys = info->max_keys;
        card->used_keys = info->used_keys;
    }
    sks_writer_free(&answer);
    return rv;
}

static CK_RV load_policies(tok_card *card)
{
    sks_resp_enumerate_pin_policies resp;
    CK_RV rv =
        tok_card_call_rv(card, SKS_M_ENUMERATE_PIN_POLICIES, NULL, &resp, &card->policies_buf);
    if (rv != CKR_OK)
        return rv;
    sks_reader r;
    sks_reader_init(&r, resp.policies.ptr, resp.policies.len);
    while (r.pos < r.len) {
        sks_pin_policy_info rec;
        const char *why = NULL;
        if (sks_fields_read(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq, SKS_FF_WIRE,
                            &r, &rec, &why) != SKS_OK) {
            tok_log(TOK_LOG_ERROR, "malformed PIN policy record (%s)", why ? why : "?");
            return CKR_DEVICE_ERROR;
        }
        sks_pin_policy_info *v =
            realloc(card->policies, (card->npolicies + 1) * sizeof(*card->policies));
        if (v == NULL)
            return CKR_HOST_MEMORY;
        card->policies = v;
        card->policies[card->npolicies++] = rec;
    }
    return CKR_OK;
}

static uint8_t *dup_bytes(sks_view v)
{
    uint8_t *p = malloc(v.len ? v.len : 1);
    if (p != NULL && v.len > 0)
        memcpy(p, v.ptr, v.len);
    return p;
}

/* Fill a key record from getKeyAttributes. */
static CK_RV key_from_attributes(tok_card_key *k, uint32_t handle,
                                 const sks_resp_get_key_attributes *a)
{
    memset(k, 0, sizeof(*k));
    k->handle = handle;
    if (a->id.len > SKS_ID_MAX)
        return CKR_DEVICE_ERROR;
    memcpy(k->id, a->id.ptr, a->id.len);
    k->id_len = a->id.len;
    k->label = malloc(a->friendly_name.len + 1);
    k->spki = dup_bytes(a->public_key);
    if (k->label == NULL || k->spki == NULL)
        return CKR_HOST_MEMORY;
    if (a->friendly_name.len > 0)
        memcpy(k->label, a->friendly_name.ptr, a->friendly_name.len);
    k->label[a->friendly_name.len] = '\0';
    k->spki_len = a->public_key.len;
    k->algorithm = a->algorithm;
    k->usage = a->key_usage;
    k->flags = a->flags;
    k->pin_policy = a->pin_policy_handle;
    k->provisioning_handle = a->provisioning_handle;
    for (unsigned i = 0; i < a->certificate_path.count && i < SKS_CERT_PATH_MAX; i++) {
        k->cert[i] = dup_bytes(a->certificate_path.cert[i]);
        if (k->cert[i] == NULL)
            return CKR_HOST_MEMORY;
        k->cert_len[i] = a->certificate_path.cert[i].len;
        k->cert_count = (uint8_t)(i + 1);
    }
    return CKR_OK;
}

/* Add one complete key to the cache (its attributes as getKeyAttributes gives them). */
static CK_RV add_key(tok_card *card, uint32_t handle, const sks_resp_get_key_attributes *a,
                     size_t *cap)
{
    if (card->nkeys == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        tok_card_key *v = realloc(card->keys, ncap * sizeof(*v));
        if (v == NULL)
            return CKR_HOST_MEMORY;
        card->keys = v;
        *cap = ncap;
    }
    tok_card_key *k = &card->keys[card->nkeys];
    CK_RV rv = key_from_attributes(k, handle, a);
    /* The policies are loaded first: CKA_ALWAYS_AUTHENTICATE follows CachingSupport. */
    const sks_pin_policy_info *policy = tok_card_find_policy(card, k->pin_policy);
    k->always_authenticate = policy != NULL && !policy->caching_support;
    card->nkeys++; /* counted even on failure so that key_free() releases it */
    return rv;
}

static CK_RV load_key(tok_card *card, uint32_t handle, size_t *cap)
{
    sks_req_key_handle req = {handle};
    sks_resp_get_key_attributes resp;
    sks_writer answer;
    sks_writer_init(&answer);
    CK_RV rv = tok_card_call_rv(card, SKS_M_GET_KEY_ATTRIBUTES, &req, &resp, &answer);
    if (rv != CKR_OK || !(resp.flags & SKS_KEYFLAG_COMPLETE)) {
        sks_writer_free(&answer);
        /* A key deleted meanwhile, or one still being provisioned: not shown. */
        return rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID ? CKR_OK : rv;
    }
    rv = add_key(card, handle, &resp, cap);
    sks_writer_free(&answer);
    return rv;
}

/*
 * Walk an enumerateKeys/enumerateObjects listing page by page, calling `each`
 * for every handle. NO_METHOD (a card without stored objects) lists nothing.
 */
static CK_RV enumerate(tok_card *card, uint8_t method,
                       CK_RV (*each)(tok_card *card, uint32_t handle, size_t *cap), size_t *cap)
{
    uint32_t after = 0;
    for (;;) {
        sks_req_enumerate_keys req = {after};
        sks_resp_enumerate_keys resp;
        sks_writer answer;
        uint8_t status;
        sks_writer_init(&answer);
        CK_RV rv = tok_card_call(card, method, &req, &resp, &answer, &status, NULL, 0);
        if (rv == CKR_OK && status == SKS_ERR_NO_METHOD) {
            sks_writer_free(&answer);
            return CKR_OK;
        }
        if (rv == CKR_OK)
            rv = tok_status_to_rv(status, method);
        if (rv == CKR_OK && resp.handles.len % 4 != 0)
            rv = CKR_DEVICE_ERROR;
        for (size_t i = 0; rv == CKR_OK && i < resp.handles.len; i += 4) {
            uint32_t h = sks_be32_get(resp.handles.ptr + i);
            if (h <= after) { /* must ascend, or we could loop forever */
                rv = CKR_DEVICE_ERROR;
                break;
            }
            after = h;
            rv = each(card, h, cap);
        }
        int more = rv == CKR_OK && resp.more && resp.handles.len > 0;
        sks_writer_free(&answer);
        if (rv != CKR_OK || !more)
            return rv;
    }
}

/* The older protocol's way to load the keys (enumerateKeys + getKeyAttributes). */
static CK_RV load_keys_by_handle(tok_card *card, size_t *cap)
{
    return enumerate(card, SKS_M_ENUMERATE_KEYS, load_key, cap);
}

/*
 * The records of one enumerateKeyAttributes page, added in order. *after
 * moves to the last handle; handles must ascend.
 */
static CK_RV add_key_records(tok_card *card, sks_view records, uint32_t *after, size_t *cap)
{
    sks_reader r;
    sks_reader_init(&r, records.ptr, records.len);
    while (r.pos < r.len) {
        sks_key_attributes_info rec;
        const char *why = NULL;
        if (sks_fields_read(sks_rec_key_attributes_info.req, sks_rec_key_attributes_info.nreq,
                            SKS_FF_WIRE, &r, &rec, &why) != SKS_OK) {
            tok_log(TOK_LOG_ERROR, "malformed key record (%s)", why ? why : "?");
            return CKR_DEVICE_ERROR;
        }
        if (rec.key_handle <= *after) /* must ascend, or we could loop forever */
            return CKR_DEVICE_ERROR;
        *after = rec.key_handle;
        if (!(rec.attributes.flags & SKS_KEYFLAG_COMPLETE))
            continue; /* still being provisioned: not shown */
        CK_RV rv = add_key(card, rec.key_handle, &rec.attributes, cap);
        if (rv != CKR_OK)
            return rv;
    }
    return CKR_OK;
}

/*
 * Every complete key, ascending: enumerateKeyAttributes a page at a time,
 * or, from a card that does not know that method (NO_METHOD on the first
 * page), enumerateKeys and one getKeyAttributes per key.
 */
static CK_RV load_keys(tok_card *card, size_t *cap)
{
    uint32_t after = 0;
    for (;;) {
        sks_req_enumerate_keys req = {after};
        sks_resp_enumerate_key_attributes resp;
        sks_writer answer;
        uint8_t status;
        sks_writer_init(&answer);
        CK_RV rv = tok_card_call(card, SKS_M_ENUMERATE_KEY_ATTRIBUTES, &req, &resp, &answer,
                                 &status, NULL, 0);
        if (rv == CKR_OK && status == SKS_ERR_NO_METHOD && after == 0) {
            sks_writer_free(&answer);
            return load_keys_by_handle(card, cap);
        }
        if (rv == CKR_OK)
            rv = tok_status_to_rv(status, SKS_M_ENUMERATE_KEY_ATTRIBUTES);
        uint32_t last = after;
        if (rv == CKR_OK)
            rv = add_key_records(card, resp.records, &after, cap);
        int more = rv == CKR_OK && resp.more && after != last;
        sks_writer_free(&answer);
        if (rv != CKR_OK || !more)
            return rv;
    }
}

static CK_RV load_object(tok_card *card, uint32_t handle, size_t *cap)
{
    if (card->nobjects == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        tok_card_object *v = realloc(card->objects, ncap * sizeof(*v));
        if (v == NULL)
            return CKR_HOST_MEMORY;
        card->objects = v;
        *cap = ncap;
    }
    tok_card_object *o = &card->objects[card->nobjects];
    memset(o, 0, sizeof(*o));
    o->handle = handle;

    sks_req_object_handle req = {handle};
    sks_resp_read_object resp;
    sks_writer answer;
    uint8_t status;
    sks_writer_init(&answer);
    CK_RV rv = tok_card_call(card, SKS_M_READ_OBJECT, &req, &resp, &answer, &status, NULL, 0);
    if (rv != CKR_OK) {
        sks_writer_free(&answer);
        return rv;
    }
    if (status == SKS_ERR_NOT_AUTHENTICATED) {
        card->nobjects++; /* known to exist; read after login */
    } else if (status != SKS_OK) {
        tok_log(TOK_LOG_WARN, "object %u: readObject failed (%s)", handle, sks_status_name(status));
    } else {
        static const CK_OBJECT_CLASS classes[] = {0, CKO_CERTIFICATE, CKO_DATA, CKO_PUBLIC_KEY};
        if (resp.object_class < 1 || resp.object_class > 3 ||
            tok_stored_decode(resp.attributes, &o->attrs) != CKR_OK) {
            tok_log(TOK_LOG_WARN, "object %u: unreadable attributes, not shown", handle);
            tok_attrs_free(&o->attrs);
        } else {
            o->readable = 1;
            o->pin_policy = resp.pin_policy_handle;
            o->cls = classes[resp.object_class];
            o->private_ = resp.private_ ? CK_TRUE : CK_FALSE;
            /* The card's own fields are authoritative. */
            if (tok_attrs_set_ulong(&o->attrs, CKA_CLASS, o->cls) != CKR_OK ||
                tok_attrs_set_bool(&o->attrs, CKA_TOKEN, CK_TRUE) != CKR_OK ||
                tok_attrs_set_bool(&o->attrs, CKA_PRIVATE, o->private_) != CKR_OK)
                rv = CKR_HOST_MEMORY;
            card->nobjects++;
        }
    }
    sks_writer_free(&answer);
    return rv;
}

static CK_RV add_entry(tok_card *card, size_t *cap, uint32_t pin_policy, uint32_t pos,
                       uint32_t card_handle, unsigned kind, int private_)
{
    if (card->nentries == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        tok_card_entry *v = realloc(card->entries, ncap * sizeof(*v));
        if (v == NULL)
            return CKR_HOST_MEMORY;
        card->entries = v;
        *cap = ncap;
    }
    tok_card_entry *e = &card->entries[card->nentries++];
    e->handle = tok_handle_card(card->index, card_handle, kind);
    e->pin_policy = pin_policy;
    e->pos = pos;
    e->kind = (uint8_t)kind;
    e->private_ = (uint8_t)private_;
    return CKR_OK;
}

static int index_entry(tok_card *card, const void *id, size_t id_len, const char *label)
{
    uint32_t e = (uint32_t)(card->nentries - 1);
    return tok_index_add(card->lookup, 'I', id, id_len, e) != 0 ||
           tok_index_add(card->lookup, 'L', label, strlen(label), e) != 0;
}

/* Private key, public key and certificates of one key. */
static CK_RV key_entries(tok_card *card, size_t *cap, size_t *scan_cap, tok_index *dups,
                         uint32_t pos)
{
    tok_card_key *k = &card->keys[pos];
    CK_RV rv;
    for (unsigned kind = 0; kind < 2u + k->cert_count; kind++) {
        if (kind >= TOK_KIND_CERT_FIRST + 1) {
            /* A CA certificate: once per token, however many keys share it. */
            unsigned i = kind - TOK_KIND_CERT_FIRST;
            uint8_t key[4 + 32];
            size_t n;
            sks_be32_put(key, k->pin_policy);
            if (sks_sha256(k->cert[i], k->cert_len[i], key + 4) != 0)
                return CKR_GENERAL_ERROR;
            if (tok_index_get(dups, 'C', key, sizeof(key), &n) != NULL) {
                k->cert_dup[i] = 1;
                continue;
            }
            if (tok_index_add(dups, 'C', key, sizeof(key), pos) != 0)
                return CKR_HOST_MEMORY;
        }
        int private_ = kind == TOK_KIND_PRIVATE_KEY && k->pin_policy != 0;
        rv = add_entry(card, cap, k->pin_policy, pos, k->handle, kind, private_);
        if (rv != CKR_OK)
            return rv;
        if (kind <= TOK_KIND_CERT_FIRST) {
            if (index_entry(card, k->id, k->id_len, k->label) != 0)
                return CKR_HOST_MEMORY;
        } else {
            if (card->nscan == *scan_cap) {
                size_t ncap = *scan_cap ? *scan_cap * 2 : 16;
                uint32_t *v = realloc(card->scan, ncap * sizeof(*v));
                if (v == NULL)
                    return CKR_HOST_MEMORY;
                card->scan = v;
                *scan_cap = ncap;
            }
            card->scan[card->nscan++] = (uint32_t)(card->nentries - 1);
        }
    }
    return CKR_OK;
}

static CK_RV build_entries(tok_card *card)
{
    size_t cap = 0, scan_cap = 0;
    CK_RV rv = CKR_OK;
    tok_index *dups = tok_index_new();
    card->lookup = tok_index_new();
    if (dups == NULL || card->lookup == NULL) {
        tok_index_free(dups);
        return CKR_HOST_MEMORY;
    }
    for (size_t i = 0; rv == CKR_OK && i < card->nkeys; i++)
        rv = key_entries(card, &cap, &scan_cap, dups, (uint32_t)i);
    tok_index_free(dups);
    for (size_t i = 0; rv == CKR_OK && i < card->nobjects; i++) {
        tok_card_object *o = &card->objects[i];
        if (!o->readable)
            continue;
        rv = add_entry(card, &cap, o->pin_policy, (uint32_t)i, o->handle, TOK_KIND_STORED,
                       o->private_);
        if (rv != CKR_OK)
            break;
        const tok_attr *id = tok_attrs_find(&o->attrs, CKA_ID);
        const tok_attr *label = tok_attrs_find(&o->attrs, CKA_LABEL);
        uint32_t e = (uint32_t)(card->nentries - 1);
        if ((id != NULL && tok_index_add(card->lookup, 'I', id->value, id->len, e) != 0) ||
            (label != NULL && tok_index_add(card->lookup, 'L', label->value, label->len, e) != 0))
            rv = CKR_HOST_MEMORY;
    }
    return rv;
}

/* Parse a key's SPKI on its first use (a failure is logged once; public_key stays NULL). */
static void ensure_public_key(tok_card_key *k)
{
    if (k->public_key_tried)
        return;
    k->public_key_tried = 1;
    k->public_key = tok_ossl_spki(k->spki, k->spki_len);
    if (k->public_key == NULL)
        tok_log(TOK_LOG_WARN, "key %u: unreadable public key", k->handle);
}

/* The keys, the entries searches walk (with the stored objects) and the DKEK objects. */
static CK_RV load_key_part(tok_card *card)
{
    size_t key_cap = 0;
    CK_RV rv = load_keys(card, &key_cap);
    if (rv == CKR_OK)
        rv = build_entries(card);
    if (rv == CKR_OK)
        rv = tok_dkek_cache_load(card);
    if (rv == CKR_OK)
        card->keys_loaded = 1;
    return rv;
}

/*
 * Whether the card has complete keys without PIN (the "no PIN" token), by
 * countKeys; a card without that method has its keys read now instead.
 */
static CK_RV count_keys_without_pin(tok_card *card)
{
    sks_req_count_keys req = {SKS_HANDLE_NONE};
    sks_resp_count_keys resp;
    sks_writer answer;
    uint8_t status;
    sks_writer_init(&answer);
    CK_RV rv = tok_card_call(card, SKS_M_COUNT_KEYS, &req, &resp, &answer, &status, NULL, 0);
    sks_writer_free(&answer);
    if (rv == CKR_OK && status == SKS_ERR_NO_METHOD)
        return load_key_part(card);
    if (rv == CKR_OK)
        rv = tok_status_to_rv(status, SKS_M_COUNT_KEYS);
    if (rv == CKR_OK)
        card->nopin_keys = resp.count;
    return rv;
}

/* Policies and stored objects now, the keys when first needed (tok_card_ensure). */
static CK_RV load(tok_card *card, const sks_resp_get_device_info *info)
{
    tok_card_cache_free(card);
    size_t obj_cap = 0;
    CK_RV rv = load_policies(card);
    if (rv == CKR_OK)
        rv = enumerate(card, SKS_M_ENUMERATE_OBJECTS, load_object, &obj_cap);
    if (rv == CKR_OK)
        rv = count_keys_without_pin(card);
    if (rv != CKR_OK) {
        tok_log(TOK_LOG_ERROR, "%s: cannot read the card's contents (0x%lx)", card->reader,
                (unsigned long)rv);
        tok_card_cache_free(card);
        return rv;
    }
    card->change_counter = info->change_counter;
    card->own_changes = 0;
    card->cache_loaded = 1;
    tok_log(TOK_LOG_DEBUG, "%s: %zu PIN policies, %zu stored objects, keys %s", card->reader,
            card->npolicies, card->nobjects, card->keys_loaded ? "read" : "read when needed");
    tok_slots_sync(card);
    return CKR_OK;
}

void tok_card_pin_verified(tok_card *card)
{
    card->own_changes += 2;
    card->checked = 0;
}

/* Drop the flat list, the index and the DKEK entries, and build them again (if built). */
static CK_RV rebuild_entries(tok_card *card)
{
    if (!card->keys_loaded)
        return CKR_OK; /* built with the keys */
    free_entries(card);
    CK_RV rv = build_entries(card);
    if (rv == CKR_OK)
        rv = tok_dkek_cache_load(card);
    return rv;
}

/* Read the stored objects again (after a login some may be readable now). */
static CK_RV reload_objects(tok_card *card)
{
    size_t cap = 0;
    free_objects(card);
    CK_RV rv = enumerate(card, SKS_M_ENUMERATE_OBJECTS, load_object, &cap);
    return rv == CKR_OK ? rebuild_entries(card) : rv;
}

/*
 * Only our own verifyPINs moved the counter since the load: the keys and
 * objects are as loaded. The policies' counters and verified flags are
 * read again, and so are the objects when some were unreadable before the
 * login. Anything failing here falls back to a full load.
 */
static CK_RV refresh_after_login(tok_card *card, const sks_resp_get_device_info *info)
{
    int unreadable = 0;
    for (size_t i = 0; i < card->nobjects && !unreadable; i++)
        unreadable = !card->objects[i].readable;
    free(card->policies);
    card->policies = NULL;
    card->npolicies = 0;
    sks_writer_reset(&card->policies_buf);
    CK_RV rv = load_policies(card);
    if (rv == CKR_OK && unreadable)
        rv = reload_objects(card);
    if (rv != CKR_OK)
        return load(card, info);
    card->change_counter = info->change_counter;
    card->own_changes = 0;
    tok_slots_sync(card);
    return CKR_OK;
}

CK_RV tok_card_refresh(tok_card *card)
{
    if (card->cache_loaded && card->checked)
        return CKR_OK;
    sks_resp_get_device_info info;
    CK_RV rv = device_info(card, &info);
    if (rv != CKR_OK)
        return rv;
    card->checked = 1;
    if (card->cache_loaded && info.change_counter == card->change_counter + card->own_changes)
        return card->own_changes == 0 ? CKR_OK : refresh_after_login(card, &info);
    return load(card, &info);
}

CK_RV tok_card_ensure(tok_card *card)
{
    CK_RV rv = card->cache_loaded ? CKR_OK : tok_card_refresh(card);
    if (rv != CKR_OK || card->keys_loaded)
        return rv;
    rv = load_key_part(card);
    if (rv != CKR_OK) {
        tok_log(TOK_LOG_ERROR, "%s: cannot read the card's keys (0x%lx)", card->reader,
                (unsigned long)rv);
        tok_card_cache_free(card);
        return rv;
    }
    /*
     * No slot sync here: the slots follow the policies and countKeys, read
     * with the rest of the cache; the policies' PIN states may be older than
     * our own login, which only a refresh reads again.
     */
    return CKR_OK;
}

tok_card_key *tok_card_find_key(tok_card *card, uint32_t handle)
{
    size_t lo = 0, hi = card->nkeys;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (card->keys[mid].handle == handle) {
            ensure_public_key(&card->keys[mid]);
            return &card->keys[mid];
        }
        if (card->keys[mid].handle < handle)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

tok_card_object *tok_card_find_object(tok_card *card, uint32_t handle)
{
    size_t lo = 0, hi = card->nobjects;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (card->objects[mid].handle == handle)
            return card->objects[mid].readable ? &card->objects[mid] : NULL;
        if (card->objects[mid].handle < handle)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const sks_pin_policy_info *tok_card_find_policy(const tok_card *card, uint32_t handle)
{
    for (size_t i = 0; i < card->npolicies; i++) {
        if (card->policies[i].handle == handle)
            return &card->policies[i];
    }
    return NULL;
}

const tok_attrs *tok_card_key_attrs(tok_card_key *key, unsigned kind)
{
    if (kind >= TOK_KEY_KINDS ||
        (kind >= TOK_KIND_CERT_FIRST && kind - TOK_KIND_CERT_FIRST >= key->cert_count))
        return NULL;
    if (key->attrs[kind] != NULL)
        return key->attrs[kind];
    ensure_public_key(key);
    tok_attrs *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    if (tok_keyattrs_build(key, kind, a) != CKR_OK) {
        tok_attrs_free(a);
        free(a);
        return NULL;
    }
    key->attrs[kind] = a;
    return a;
}
