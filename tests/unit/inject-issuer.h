/*
 * inject-issuer.h - the issuer's half of secure key injection
 * (docs/protocol.md section 10) written for the tests directly on OpenSSL
 * EVP, independently of the card and the module, so that what the card
 * accepts is checked against a second implementation of the constructions:
 *
 *   S1 wrapped by RSA:  RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label) under K1
 *   S1 agreed by ECDH:  a fresh P-256 key E; S1 = HMAC-SHA256(key = x(E * K1),
 *                       "SKS session key"); E's uncompressed point is sent
 *   K2 blob:            AES-256-GCM(S1, IV(12), aad = SHA-256(K1 SPKI) |
 *                       len(ID) | ID | KeyUsage) of K2's PKCS#8 DER,
 *                       16-byte tag appended
 *
 * The helpers fail the running Check test on any OpenSSL error.
 */
#ifndef INJECT_ISSUER_H
#define INJECT_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "protocol/sks_wire.h"

#define TI_S1_LEN    32
#define TI_IV_LEN    12
#define TI_TAG_LEN   16
#define TI_POINT_LEN 65
#define TI_AAD_MAX   (32 + 1 + 32 + 1)

/* A random S1. */
void ti_random_s1(uint8_t s1[TI_S1_LEN]);

/* RSAES-OAEP-SHA256 of `n` bytes of `plain` under K1's public key, appended to `out`. */
void ti_oaep_wrap(EVP_PKEY *k1_pub, const uint8_t *plain, size_t n, sks_writer *out);

/* A fresh ephemeral P-256 key agreed with K1: its point and the S1 it yields. */
void ti_ecdh_s1(EVP_PKEY *k1_pub, uint8_t point[TI_POINT_LEN], uint8_t s1[TI_S1_LEN]);

/* SHA-256 of a key's SubjectPublicKeyInfo DER (OpenSSL's encoding, i2d_PUBKEY). */
void ti_spki_hash(EVP_PKEY *key, uint8_t out[32]);

/* PKCS#8 PrivateKeyInfo DER of a private key, appended to `out`. */
void ti_pkcs8(EVP_PKEY *key, sks_writer *out);

/*
 * The AAD of a K2 blob for K1, the new key's ID (a string of 1..32 bytes)
 * and KeyUsage: SHA-256(K1 SPKI), the ID's length as one byte, the ID,
 * the KeyUsage byte. Its length.
 */
size_t ti_aad(EVP_PKEY *k1_pub, const char *id, uint8_t usage, uint8_t aad[TI_AAD_MAX]);

/* AES-256-GCM of `n` bytes under S1 with `aad`; ciphertext | tag appended to `out`. */
void ti_seal(const uint8_t s1[TI_S1_LEN], const uint8_t iv[TI_IV_LEN], const uint8_t *aad,
             size_t aad_len, const uint8_t *plain, size_t n, sks_writer *out);

/*
 * The K2 blob for the new key `id` with `usage`: a random IV into `iv`,
 * then ti_seal of K2's PKCS#8 with ti_aad.
 */
void ti_wrap_k2(const uint8_t s1[TI_S1_LEN], EVP_PKEY *k1_pub, EVP_PKEY *k2, const char *id,
                uint8_t usage, uint8_t iv[TI_IV_LEN], sks_writer *out);

/* The SubjectPublicKeyInfo DER of a key, appended to `out`. */
void ti_spki(EVP_PKEY *key, sks_writer *out);

/* K2's certificate from the test issuer CA (testlib.h), its DER appended to `der`. */
void ti_cert(EVP_PKEY *k2, sks_writer *der);

#endif
