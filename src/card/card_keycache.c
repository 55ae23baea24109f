/*
 * card_keycache.c - the card's memory between calls (card_keycache.h):
 * usable keys by handle, least recently used one replaced, and the counts of
 * getDeviceInfo, all trusted only while card.db's file change counter is
 * the one seen when they were read.
 *
 * After the database changed (this card's own commits included: a
 * verifyPIN moves it), the next use of a key reads its row again and runs
 * every check on it; the parsed private key is kept only when the stored
 * PKCS#8 is the same (SHA-256 compared), so a changed key is parsed again.
 * When the change counter cannot be read, nothing is trusted.
 */
#include "card_keycache.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../protocol/sks_crypto.h"
#include "card_keymat.h"

#define KEY_SLOTS         32
#define NO_VERSION        UINT64_MAX
#define DB_FILE           "card.db"
#define DB_COUNTER_OFFSET 24 /* SQLite file format: "file change counter" */
#define FINGERPRINT_LEN   32

typedef struct {
    card_cached_key k;                    /* k.key NULL: the slot is free */
    uint8_t fingerprint[FINGERPRINT_LEN]; /* SHA-256 of the PKCS#8 the key came from */
    uint64_t version;                     /* file change counter when last checked */
    uint64_t last_use;
} key_slot;

struct card_key_cache {
    int db_fd; /* card.db opened read-only for its change counter; -1 until opened */
    key_slot slot[KEY_SLOTS];
    uint64_t clock;
    uint64_t counts_version; /* the counts below are of this file version */
    uint32_t used_keys;
    uint32_t change_counter;
};

/* The card's cache, created on first use; NULL when out of memory. */
static struct card_key_cache *cache_of(sks_card *card)
{
    if (card->key_cache == NULL) {
        struct card_key_cache *c = calloc(1, sizeof(*c));
        if (c == NULL)
            return NULL;
        c->db_fd = -1;
        c->counts_version = NO_VERSION;
        card->key_cache = c;
    }
    return card->key_cache;
}

/* card.db's file change counter now, or NO_VERSION when it cannot be read. */
static uint64_t db_version(sks_card *card, struct card_key_cache *c)
{
    uint8_t b[4];
    if (c->db_fd < 0) {
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/" DB_FILE, card->dir);
        if (n < 0 || (size_t)n >= sizeof(path))
            return NO_VERSION;
        c->db_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (c->db_fd < 0)
            return NO_VERSION;
    }
    if (pread(c->db_fd, b, sizeof(b), DB_COUNTER_OFFSET) != (ssize_t)sizeof(b))
        return NO_VERSION;
    return sks_be32_get(b);
}

/* Free what a slot holds and wipe it. */
static void slot_drop(key_slot *s)
{
    EVP_PKEY_CTX_free(s->k.sign_ctx);
    EVP_PKEY_free(s->k.key);
    sks_cleanse(s, sizeof(*s));
}

void card_keyuse_cache_forget(sks_card *card, uint32_t key_handle)
{
    struct card_key_cache *c = card->key_cache;
    if (c == NULL)
        return;
    for (size_t i = 0; i < KEY_SLOTS; i++)
        if (c->slot[i].k.key != NULL && c->slot[i].k.handle == key_handle)
            slot_drop(&c->slot[i]);
}

void card_keyuse_cache_free(sks_card *card)
{
    struct card_key_cache *c = card->key_cache;
    if (c == NULL)
        return;
    for (size_t i = 0; i < KEY_SLOTS; i++)
        if (c->slot[i].k.key != NULL)
            slot_drop(&c->slot[i]);
    if (c->db_fd >= 0)
        close(c->db_fd);
    sks_cleanse(c, sizeof(*c));
    free(c);
    card->key_cache = NULL;
}

static key_slot *slot_find(struct card_key_cache *c, uint32_t handle)
{
    for (size_t i = 0; i < KEY_SLOTS; i++)
        if (c->slot[i].k.key != NULL && c->slot[i].k.handle == handle)
            return &c->slot[i];
    return NULL;
}

/* A slot for a new key: a free one, else the least recently used (emptied). */
static key_slot *slot_take(struct card_key_cache *c)
{
    key_slot *victim = &c->slot[0];
    for (size_t i = 0; i < KEY_SLOTS; i++) {
        if (c->slot[i].k.key == NULL)
            return &c->slot[i];
        if (c->slot[i].last_use < victim->last_use)
            victim = &c->slot[i];
    }
    slot_drop(victim);
    return victim;
}

/* KeyUsage, then the PIN: the checks a key from memory still needs. */
static int check_use(card_call *call, uint32_t handle, uint8_t key_usage, uint32_t pin_policy,
                     uint8_t usage, const char *what)
{
    if (!(key_usage & usage))
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "key %u is not for %s", handle, what);
    card_key_rec pin_rule;
    memset(&pin_rule, 0, sizeof(pin_rule));
    pin_rule.handle = handle;
    pin_rule.pin_policy = pin_policy;
    return card_key_require_pin(call, &pin_rule);
}

/*
 * The PIN policy whose verification a use of `rec` consumes (6.5, 7.0): the
 * key's policy when its CachingSupport is false, else SKS_HANDLE_NONE.
 */
static int policy_to_consume(card_call *call, const card_key_rec *rec, uint32_t *consume)
{
    card_pin_rec pin;
    *consume = SKS_HANDLE_NONE;
    if (rec->pin_policy == SKS_HANDLE_NONE)
        return SKS_OK;
    memset(&pin, 0, sizeof(pin));
    int rc = card_store_pin_get(call->card->store, rec->pin_policy, &pin);
    if (rc == SKS_OK && !pin.caching_support)
        *consume = rec->pin_policy;
    card_pin_rec_free(&pin);
    if (rc != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot read the PIN policy of key %u",
                         rec->handle);
    return SKS_OK;
}

/*
 * Put the private key of `rec` into `s` (kept when the stored bytes are the
 * ones it came from, else parsed and checked against the key's algorithm).
 */
static int slot_load_key(card_call *call, key_slot *s, const card_key_rec *rec)
{
    uint8_t fingerprint[FINGERPRINT_LEN];
    if (rec->private_key.len == 0)
        return card_fail(call, SKS_ERR_INTERNAL, "key %u has no private key", rec->handle);
    if (sks_sha256(rec->private_key.ptr, rec->private_key.len, fingerprint) != 0)
        return card_fail(call, SKS_ERR_INTERNAL, "cannot hash the private key");
    if (s->k.key != NULL && sks_mac_equal(s->fingerprint, fingerprint, sizeof(fingerprint))) {
        sks_cleanse(fingerprint, sizeof(fingerprint));
        return SKS_OK;
    }
    EVP_PKEY *key = card_keymat_load(rec->private_key.ptr, rec->private_key.len);
    if (key == NULL || card_keymat_alg_of(key) != rec->algorithm) {
        EVP_PKEY_free(key);
        sks_cleanse(fingerprint, sizeof(fingerprint));
        return card_fail(call, SKS_ERR_CRYPTO, "the stored private key of key %u is damaged",
                         rec->handle);
    }
    slot_drop(s);
    s->k.key = key;
    memcpy(s->fingerprint, fingerprint, sizeof(fingerprint));
    sks_cleanse(fingerprint, sizeof(fingerprint));
    return SKS_OK;
}

/* The slow path: read the key's row, check everything, refresh (or fill) its slot. */
static int reload(card_call *call, struct card_key_cache *c, key_slot *s, uint32_t handle,
                  uint8_t usage, const char *what, uint64_t version, card_cached_key **out)
{
    card_key_rec rec;
    uint32_t consume = SKS_HANDLE_NONE;
    int status = card_key_get_complete(call, handle, &rec);
    if (status == SKS_OK)
        status = check_use(call, handle, rec.usage, rec.pin_policy, usage, what);
    if (status == SKS_OK)
        status = policy_to_consume(call, &rec, &consume);
    if (status == SKS_OK) {
        if (s == NULL)
            s = slot_take(c);
        status = slot_load_key(call, s, &rec);
    }
    if (status == SKS_OK) {
        s->k.handle = handle;
        s->k.usage = rec.usage;
        s->k.pin_policy = rec.pin_policy;
        s->k.consume = consume;
        s->version = version;
        s->last_use = ++c->clock;
        *out = &s->k;
    } else if (s != NULL) {
        slot_drop(s); /* gone, changed or refused: nothing of it is kept */
    }
    card_key_rec_free(&rec);
    return status;
}

int card_keycache_use(card_call *call, uint32_t key_handle, uint8_t usage, const char *what,
                      card_cached_key **out)
{
    struct card_key_cache *c = cache_of(call->card);
    if (c == NULL)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    /* Read before the row, so that a change after it moves the counter again. */
    uint64_t version = db_version(call->card, c);
    key_slot *s = slot_find(c, key_handle);
    if (s == NULL || version == NO_VERSION || s->version != version)
        return reload(call, c, s, key_handle, usage, what, version, out);
    int status = check_use(call, key_handle, s->k.usage, s->k.pin_policy, usage, what);
    if (status == SKS_OK) {
        s->last_use = ++c->clock;
        *out = &s->k;
    }
    return status;
}

int card_keycache_counts(sks_card *card, uint32_t *used_keys, uint32_t *change_counter)
{
    struct card_key_cache *c = cache_of(card);
    uint64_t version = c != NULL ? db_version(card, c) : NO_VERSION;
    if (c != NULL && version != NO_VERSION && c->counts_version == version) {
        *used_keys = c->used_keys;
        *change_counter = c->change_counter;
        return SKS_OK;
    }
    if (card_store_key_count(card->store, used_keys) != SKS_OK ||
        card_store_change_counter(card->store, change_counter) != SKS_OK)
        return SKS_ERR_STORAGE;
    if (c != NULL) {
        c->counts_version = version;
        c->used_keys = *used_keys;
        c->change_counter = *change_counter;
    }
    return SKS_OK;
}
