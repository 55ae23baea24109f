/*
 * sks_keys.h - keys and certificate paths in the forms the SKS protocol
 * carries them, written once for the card, the middleware and the issuer:
 * the AlgorithmData of a key, an EC key from its point, a private key's
 * PKCS#8 DER, and a certificate path given as concatenated DER
 * certificates (as PKCS#11 parameters carry it) split into the
 * certificates of the wire's CertificatePath.
 */
#ifndef SKS_KEYS_H
#define SKS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "sks_msg.h"

/*
 * The AlgorithmData (SKS_KEYALG_*) of an RSA 2048/3072/4096 or EC
 * P-256/P-384 key; 0 for any other key (and for NULL).
 */
uint8_t sks_key_algorithm(const EVP_PKEY *key);

/*
 * An EC public key on `curve` (an OpenSSL group name: "P-256",
 * "prime256v1") from an uncompressed point, made in `libctx` (NULL: the
 * default context). NULL when the point is not one of the curve.
 */
EVP_PKEY *sks_ec_point_key(OSSL_LIB_CTX *libctx, const char *curve, const uint8_t *point,
                           size_t len);

/*
 * PKCS#8 PrivateKeyInfo DER of a private key, encoded in the key's own
 * library context: *der is the caller's, freed with
 * OPENSSL_clear_free(*der, *len). 0, or -1 (nothing to free).
 */
int sks_pkcs8_encode(const EVP_PKEY *key, uint8_t **der, size_t *len);

/*
 * Split concatenated DER certificates, end entity first, into `path`: each
 * must be one complete SEQUENCE with a definite length, at most
 * SKS_WIRE_BYTES_MAX bytes in all, and there must be 1..SKS_CERT_PATH_MAX
 * of them. The views point into `der`; what the certificates hold is not
 * looked at. 0, or -1 (path->count is then 0).
 */
int sks_certpath_split(const uint8_t *der, size_t len, sks_certpath *path);

#endif
