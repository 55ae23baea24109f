/*
 * card_session_keys.c - the volatile store of injection session keys (S1)
 * behind card_session_keys.h. A small fixed table allocated on first use;
 * every key leaves it zeroized.
 *
 * Handles are random rather than counted, so that a handle an application
 * kept from before a reset (when the table was emptied) does not name a
 * session key imported since by someone else.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "../protocol/sks_crypto.h"
#include "card_session_keys.h"

struct card_session_keys {
    card_session_key key[SKS_SESSION_KEYS_MAX];
};

/* The entry holding `handle` (0: a free entry), or NULL. */
static card_session_key *entry_of(const sks_card *card, uint32_t handle)
{
    struct card_session_keys *t = card->session_keys;
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < SKS_SESSION_KEYS_MAX; i++)
        if (t->key[i].handle == handle)
            return &t->key[i];
    return NULL;
}

int card_session_keys_room(const sks_card *card)
{
    return card->session_keys == NULL || entry_of(card, 0) != NULL;
}

int card_session_keys_add(sks_card *card, uint32_t k1, const uint8_t s1[CARD_S1_LEN],
                          const uint8_t k1_spki_hash[32], uint32_t *handle)
{
    if (card->session_keys == NULL &&
        (card->session_keys = calloc(1, sizeof(*card->session_keys))) == NULL)
        return SKS_ERR_INTERNAL;
    card_session_key *free_entry = entry_of(card, 0);
    if (free_entry == NULL)
        return SKS_ERR_NOT_ALLOWED;
    uint32_t h = 0;
    for (int tries = 0; h == 0 && tries < 16; tries++) {
        uint8_t rnd[4];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return SKS_ERR_INTERNAL;
        h = sks_be32_get(rnd);
        if (h != 0 && entry_of(card, h) != NULL)
            h = 0;
    }
    if (h == 0)
        return SKS_ERR_INTERNAL;
    free_entry->handle = h;
    free_entry->k1 = k1;
    memcpy(free_entry->s1, s1, CARD_S1_LEN);
    memcpy(free_entry->k1_spki_hash, k1_spki_hash, 32);
    *handle = h;
    return SKS_OK;
}

const card_session_key *card_session_keys_find(const sks_card *card, uint32_t handle)
{
    return handle != 0 ? entry_of(card, handle) : NULL;
}

int card_session_keys_delete(sks_card *card, uint32_t handle)
{
    card_session_key *e = handle != 0 ? entry_of(card, handle) : NULL;
    if (e == NULL)
        return -1;
    sks_cleanse(e, sizeof(*e));
    return 0;
}

void card_session_keys_free(sks_card *card)
{
    if (card->session_keys == NULL)
        return;
    sks_cleanse(card->session_keys, sizeof(*card->session_keys));
    free(card->session_keys);
    card->session_keys = NULL;
}
