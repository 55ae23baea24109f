/*
 * sks_crypto.h - the named cryptographic constructions of the SKS protocol,
 * shared by the card and the issuer so that both compute them with the same
 * code. Each is specified in docs/protocol.md and pinned by fixed vectors in
 * tests/unit/test-crypto.c.
 *
 *   SK    = HMAC-SHA256(Z, L(ClientSessionID) | L(ServerSessionID) |
 *                          L(IssuerURI) | L(DeviceCertificate))
 *   MAC   = HMAC-SHA256(SK | MethodName | Counter16, MacData)
 *   EK    = HMAC-SHA256(SK, "EncryptionKey")
 *   Enc   = IV(16) | AES-256-CBC-PKCS#7(EK, IV, plaintext)
 *   Att   = MAC with MethodName "SKS Attestation"
 * L(x) is x as an SKS byte[] (2-byte big-endian length, then x).
 */
#ifndef SKS_CRYPTO_H
#define SKS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "sks_msg.h"

#define SKS_LABEL_ATTESTATION    "SKS Attestation"
#define SKS_LABEL_ENCRYPTION_KEY "EncryptionKey"
#define SKS_ENC_IV_LEN           16
/* Largest plaintext sks_encrypt accepts (a PKCS#8 RSA-4096 key fits). */
#define SKS_ENC_MAX 8192

/* Zeroize memory the compiler may not optimise away. */
void sks_cleanse(void *p, size_t n);
/* Constant-time equality of two MACs: 1 if equal. */
int sks_mac_equal(const uint8_t *a, const uint8_t *b, size_t n);

int sks_derive_session_key(const uint8_t *z, size_t zlen, sks_view client_session_id,
                           sks_view server_session_id, sks_view issuer_uri,
                           sks_view device_certificate, uint8_t sk[SKS_SK_LEN]);

int sks_mac(const uint8_t sk[SKS_SK_LEN], const char *label, uint16_t counter, const uint8_t *data,
            size_t n, uint8_t mac[SKS_MAC_LEN]);

int sks_encryption_key(const uint8_t sk[SKS_SK_LEN], uint8_t ek[32]);

/* Appends IV | ciphertext to `out`. `iv` NULL draws a random IV (tests pass one). */
int sks_encrypt(const uint8_t ek[32], const uint8_t *iv, const uint8_t *pt, size_t n,
                sks_writer *out);
/*
 * Decrypts IV | ciphertext. `pt` must hold n bytes; *ptlen gets the length.
 * Returns 0, or -1 on bad length or padding (the caller has already checked
 * the MAC that covers the ciphertext, so padding errors leak nothing new).
 */
int sks_decrypt(const uint8_t ek[32], const uint8_t *ct, size_t n, uint8_t *pt, size_t *ptlen);

/*
 * The value the device attestation key signs in createProvisioningSession:
 * HMAC-SHA256(SK, SessionKeyAlgorithm | L(ClientSessionID) | L(ServerSessionID) |
 *   L(IssuerURI) | L(IssuerPublicKey) | Updatable | ClientOperationLimit(2) |
 *   SessionLifeTime(4) | L(EncryptedSessionKey)).
 * The signature is the device key's ECDSA-SHA256 (DER) or RSASSA-PKCS1-v1_5
 * SHA-256 over these 32 bytes.
 */
int sks_session_attestation_digest(const uint8_t sk[SKS_SK_LEN], const sks_req_create_session *req,
                                   sks_view client_session_id, sks_view encrypted_session_key,
                                   uint8_t out[32]);

/* What createKeyPair's attestation covers (the seed's addData scheme). */
typedef struct {
    int has_puk;
    sks_view puk_id;
    uint8_t puk_retry_limit;
    sks_view puk_value; /* clear text */
    uint8_t puk_format;
    int has_pin;
    sks_view pin_id;
    uint8_t user_defined;
    sks_view pin_value; /* clear text; used only when !user_defined */
    uint8_t user_modifiable;
    uint8_t format;
    uint8_t retry_limit;
    uint8_t grouping;
    uint8_t pattern_restrictions;
    uint8_t min_length;
    uint8_t max_length;
    uint8_t caching_support;
    uint8_t input_method;
} sks_policy_attestation;

/*
 * Appends the key-pair attestation data: "PUK Policy=" ..., "PIN Policy=" ...,
 * "Key=" ID PublicKey flags KeyUsage FriendlyName AlgorithmData, then
 * B(EncryptedPrivateKey) (blob: 4-byte length) and L(MAC of the createKeyPair call).
 */
int sks_key_attestation_data(sks_writer *w, const sks_policy_attestation *pol,
                             const sks_req_create_key_pair *req, sks_view public_key,
                             sks_view encrypted_private_key);

/* The data closeProvisioningSession attests: L("Success") | L(close MAC). */
int sks_close_attestation_data(sks_writer *w, sks_view close_mac);

/* SHA-256 of arbitrary data (used for serials and fingerprints). */
int sks_sha256(const uint8_t *p, size_t n, uint8_t out[32]);

/*
 * SHA-256 and AES-256-GCM as algorithm objects fetched once per process
 * (the default library context), for EVP_*Init calls on hot paths.
 */
const EVP_MD *sks_md_sha256(void);
const EVP_CIPHER *sks_cipher_aes_256_gcm(void);

/*
 * Parse SubjectPublicKeyInfo DER, insisting on no trailing bytes: the same
 * keys d2i_PUBKEY accepts, with a fast path for P-256 named-curve keys with
 * uncompressed points. NULL if malformed.
 */
EVP_PKEY *sks_spki_decode(const uint8_t *der, size_t n);

/*
 * SubjectPublicKeyInfo DER of a key, byte for byte what i2d_PUBKEY writes
 * (same fast path). *der is OPENSSL_malloc'ed (OPENSSL_free). 0 or -1.
 */
int sks_spki_encode(const EVP_PKEY *key, uint8_t **der, size_t *len);
/*
 * The uncompressed point (04 | X | Y) of a P-256 key that OpenSSL encodes in
 * the fixed form above (named curve, uncompressed points): 0, or -1 for any
 * other key.
 */
int sks_p256_point(const EVP_PKEY *key, uint8_t point[65]);

#endif
