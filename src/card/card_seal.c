/*
 * card_seal.c - AES-256-GCM sealing of secrets at rest (card_seal.h).
 *
 * Each value gets a fresh random 96-bit IV; with one master key per card and
 * a few million seals over a card's life, random IVs stay far below the
 * collision bound for GCM (2^32 values per key).
 */
#include "card_seal.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "../protocol/sks_crypto.h"

/* Run one GCM pass (encrypt or decrypt) over `in` into `out`. 0 or -1. */
static int gcm_run(int encrypt, const uint8_t key[CARD_MASTER_KEY_LEN], const uint8_t *iv,
                   const char *ad, const uint8_t *in, size_t n, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    size_t adlen = strlen(ad);
    uint8_t final_block[16]; /* GCM's final step outputs nothing */
    int len = 0;
    int ok = 0;

    if (ctx == NULL || n > CARD_SEAL_MAX || adlen > INT_MAX)
        goto out;
    if (EVP_CipherInit_ex(ctx, sks_cipher_aes_256_gcm(), NULL, NULL, NULL, encrypt) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CARD_SEAL_IV_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, encrypt) != 1)
        goto out;
    if (adlen > 0 && EVP_CipherUpdate(ctx, NULL, &len, (const uint8_t *)ad, (int)adlen) != 1)
        goto out;
    if (n > 0 && EVP_CipherUpdate(ctx, out, &len, in, (int)n) != 1)
        goto out;
    if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CARD_SEAL_TAG_LEN, tag) != 1)
        goto out;
    /* Decryption: this is where the tag is checked. */
    if (EVP_CipherFinal_ex(ctx, final_block, &len) != 1)
        goto out;
    if (encrypt && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CARD_SEAL_TAG_LEN, tag) != 1)
        goto out;
    ok = 1;
out:
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

int card_seal(const uint8_t key[CARD_MASTER_KEY_LEN], const char *ad, const uint8_t *plain,
              size_t n, uint8_t *sealed)
{
    uint8_t *iv = sealed;
    uint8_t *ct = sealed + CARD_SEAL_IV_LEN;

    if (n > CARD_SEAL_MAX)
        return -1;
    if (RAND_bytes(iv, CARD_SEAL_IV_LEN) != 1 || gcm_run(1, key, iv, ad, plain, n, ct, ct + n)) {
        OPENSSL_cleanse(sealed, n + CARD_SEAL_OVERHEAD);
        return -1;
    }
    return 0;
}

int card_unseal(const uint8_t key[CARD_MASTER_KEY_LEN], const char *ad, const uint8_t *sealed,
                size_t n, uint8_t *plain, size_t *plain_len)
{
    uint8_t tag[CARD_SEAL_TAG_LEN];
    size_t ptlen;

    *plain_len = 0;
    if (n < CARD_SEAL_OVERHEAD || n - CARD_SEAL_OVERHEAD > CARD_SEAL_MAX)
        return -1;
    ptlen = n - CARD_SEAL_OVERHEAD;
    memcpy(tag, sealed + CARD_SEAL_IV_LEN + ptlen, CARD_SEAL_TAG_LEN);
    if (gcm_run(0, key, sealed, ad, sealed + CARD_SEAL_IV_LEN, ptlen, plain, tag) != 0) {
        OPENSSL_cleanse(plain, ptlen);
        return -1;
    }
    *plain_len = ptlen;
    return 0;
}
