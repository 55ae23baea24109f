/*
 * card_keymat.h - key material inside the card: generate key pairs of the
 * SKS algorithms, load sealed PKCS#8 blobs into EVP_PKEYs, and check that a
 * key matches its declared algorithm and public key.
 */
#ifndef CARD_KEYMAT_H
#define CARD_KEYMAT_H

#include <stdint.h>

#include <openssl/evp.h>

#include "card_store.h"

/* Generate a key of `alg` (enum sks_key_alg). SKS_OK or SKS_ERR_ALGORITHM/CRYPTO. */
int card_keymat_generate(uint8_t alg, card_buf *pkcs8, card_buf *spki);

/* Parse PKCS#8 DER. NULL if malformed. */
EVP_PKEY *card_keymat_load(const uint8_t *pkcs8, size_t n);

/* The enum sks_key_alg of a key (sks_key_algorithm), or 0 if the card does not support it. */
uint8_t card_keymat_alg_of(const EVP_PKEY *key);

/* SubjectPublicKeyInfo DER of a key. 0 or -1. */
int card_keymat_spki(const EVP_PKEY *key, card_buf *spki);

/* 1 if the certificate's public key equals `spki` (DER compare), else 0. */
int card_keymat_cert_matches(const uint8_t *cert_der, size_t n, const uint8_t *spki,
                             size_t spki_len);

/* 1 if alg is one the card supports. */
int card_keymat_alg_supported(uint8_t alg);

#endif
