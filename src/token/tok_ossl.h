/*
 * tok_ossl.h - the module's own OpenSSL library context and what the token
 * layer takes from it: parsed public keys and certificates, digests and
 * ciphers, random numbers.
 *
 * Why: the module runs inside applications that configure OpenSSL for
 * themselves. `openssl -engine pkcs11` makes libengine-pkcs11-openssl (which
 * loads this very module) the default ENGINE for every algorithm; OpenSSL
 * then decodes a SubjectPublicKeyInfo with d2i_PUBKEY into a legacy key
 * bound to that engine, whose EC point the provider API cannot export, and
 * legacy EVP_sha256()/EVP_aes_*() objects and RAND_bytes() would go to the
 * engine too. An application's openssl.cnf may likewise load a PKCS#11
 * provider into the default library context. So the module never uses the
 * default context or legacy objects for its own work: keys are decoded with
 * OSSL_DECODER (providers only) in a private OSSL_LIB_CTX, algorithms are
 * fetched from it, random bytes come from its DRBGs.
 *
 * The context is created on first use. tok_ossl_free() releases it with
 * everything fetched from it; it must run after every key made in it is
 * freed (C_Finalize, after the card caches are gone). Thread-safe.
 */
#ifndef SKS_TOK_OSSL_H
#define SKS_TOK_OSSL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* The module's library context; NULL only when it cannot be created. */
OSSL_LIB_CTX *tok_ossl_ctx(void);
/* Free the context, the fetched algorithms and the cached decoder (see above). */
void tok_ossl_free(void);
/* A digest ("SHA256") or cipher ("AES-128-GCM") fetched once from the module's context. */
const EVP_MD *tok_ossl_md(const char *name);
const EVP_CIPHER *tok_ossl_cipher(const char *name);
/* A public key from a DER SubjectPublicKeyInfo that is exactly `len` bytes, or NULL. */
EVP_PKEY *tok_ossl_spki(const uint8_t *der, size_t len);
/* An X.509 certificate (DER, exactly `len` bytes) in the module's context, or NULL. */
X509 *tok_ossl_cert(const uint8_t *der, size_t len);
/* Random bytes from the context's public (or, for secrets, private) DRBG: 0, or -1. */
int tok_ossl_random(void *buf, size_t len);
int tok_ossl_random_secret(void *buf, size_t len);

#endif
