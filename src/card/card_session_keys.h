/*
 * card_session_keys.h - the card's injection session keys (S1,
 * docs/protocol.md section 10): at most SKS_SESSION_KEYS_MAX AES-256 keys
 * held in RAM for the current card session, each remembered with the card
 * key K1 it was imported under and the SHA-256 of K1's
 * SubjectPublicKeyInfo (where the associated data of an injection blob
 * starts). They are never stored: injectPrivateKey (a key is used for one
 * blob), deleteSessionKey, a reset and sks_card_close zeroize them.
 */
#ifndef CARD_SESSION_KEYS_H
#define CARD_SESSION_KEYS_H

#include <stdint.h>

#include "card_internal.h"

#define CARD_S1_LEN 32

typedef struct {
    uint32_t handle; /* 0: a free entry */
    uint32_t k1;     /* the card key it was imported under */
    uint8_t s1[CARD_S1_LEN];
    uint8_t k1_spki_hash[32]; /* SHA-256 of K1's SubjectPublicKeyInfo */
} card_session_key;

/* Is there room for one more session key? */
int card_session_keys_room(const sks_card *card);

/*
 * Keep a new session key; *handle gets its SessionKeyHandle (random, never
 * 0, not one in use). SKS_OK, SKS_ERR_NOT_ALLOWED when SKS_SESSION_KEYS_MAX
 * are held, SKS_ERR_INTERNAL when out of memory or randomness.
 */
int card_session_keys_add(sks_card *card, uint32_t k1, const uint8_t s1[CARD_S1_LEN],
                          const uint8_t k1_spki_hash[32], uint32_t *handle);

/* The session key with this handle, or NULL. */
const card_session_key *card_session_keys_find(const sks_card *card, uint32_t handle);

/* Zeroize and forget one session key. 0, or -1 when there is none with this handle. */
int card_session_keys_delete(sks_card *card, uint32_t handle);

#endif
