/*
 * card_keycache.h - what the card keeps in memory between calls so that a
 * key use costs no database read: for recently used keys the parsed private
 * key, what the checks of 7.0 look at (KeyUsage, PIN policy, whether a use
 * consumes the PIN) and a prepared signing context; and the two counts of
 * getDeviceInfo.
 *
 * Everything here is trusted only while card.db is unchanged. Several
 * processes may share a card state, so "unchanged" is read from the file
 * itself: SQLite's file change counter (the 4-byte big-endian integer at
 * offset 24 of the database header, which SQLite increments in every
 * transaction that modifies the file, in the rollback-journal mode the card
 * uses). One pread per use; when it moved, the key's row is read and checked
 * again. So a key deleted or changed by another process is never used from
 * memory. Private keys stay inside the card engine and are freed (OpenSSL
 * clears their secrets) when the key is deleted here, when an entry is
 * dropped or replaced, and when the card is closed (card_keyuse_cache_free,
 * card_keyuse_cache_forget in card_internal.h).
 */
#ifndef CARD_KEYCACHE_H
#define CARD_KEYCACHE_H

#include <stdint.h>

#include <openssl/evp.h>

#include "card_internal.h"

/* A key ready for use. Owned by the cache; valid until the next call into the card. */
typedef struct {
    uint32_t handle;
    EVP_PKEY *key;       /* the private key */
    uint8_t usage;       /* KeyUsage */
    uint32_t pin_policy; /* SKS_HANDLE_NONE: no PIN */
    uint32_t consume;    /* policy whose verification a successful use forgets, or NONE */
    /* A signing context prepared for the configuration `sign_config` (card_keyuse.c). */
    EVP_PKEY_CTX *sign_ctx;
    uint32_t sign_config;
} card_cached_key;

/*
 * The key `key_handle` for a use its KeyUsage must allow (`usage`, named
 * `what` in the message), with the checks of 7.0 in their order: a complete
 * key (NO_KEY), KeyUsage (NOT_ALLOWED), its PIN verified (NOT_AUTHENTICATED),
 * then the stored private key parsed (CRYPTO when damaged). SKS_OK and *out,
 * or the failure, recorded with card_fail().
 */
int card_keycache_use(card_call *call, uint32_t key_handle, uint8_t usage, const char *what,
                      card_cached_key **out);

/*
 * getDeviceInfo's UsedKeys and ChangeCounter, from memory while card.db is
 * unchanged. Call outside any transaction. SKS_OK or SKS_ERR_STORAGE.
 */
int card_keycache_counts(sks_card *card, uint32_t *used_keys, uint32_t *change_counter);

#endif
