/*
 * card_seal.h - sealing of the card's secrets at rest: AES-256-GCM under the
 * 32-byte card master key, with an associated-data string naming the place
 * the value belongs to ("table/column/handle"), so a sealed value copied to
 * another record or column no longer opens.
 *
 * Sealed form: IV (12 random bytes) | ciphertext | tag (16 bytes).
 */
#ifndef CARD_SEAL_H
#define CARD_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define CARD_MASTER_KEY_LEN 32
#define CARD_SEAL_IV_LEN    12
#define CARD_SEAL_TAG_LEN   16
#define CARD_SEAL_OVERHEAD  (CARD_SEAL_IV_LEN + CARD_SEAL_TAG_LEN)
/* Largest value the card seals (a PKCS#8 RSA-4096 key is about 2.4 KiB). */
#define CARD_SEAL_MAX (1u << 20)

/*
 * Seal n bytes of `plain` (n may be 0) into `sealed`, which must hold
 * n + CARD_SEAL_OVERHEAD bytes. Returns 0, or -1 on a crypto failure or
 * n > CARD_SEAL_MAX (then `sealed` is zeroized).
 */
int card_seal(const uint8_t key[CARD_MASTER_KEY_LEN], const char *ad, const uint8_t *plain,
              size_t n, uint8_t *sealed);

/*
 * Open a sealed value of n bytes into `plain`, which must hold
 * n - CARD_SEAL_OVERHEAD bytes; *plain_len gets that length. Returns 0, or -1
 * if the value is too short, was sealed under another key or associated data,
 * or was modified (then `plain` is zeroized).
 */
int card_unseal(const uint8_t key[CARD_MASTER_KEY_LEN], const char *ad, const uint8_t *sealed,
                size_t n, uint8_t *plain, size_t *plain_len);

#endif
