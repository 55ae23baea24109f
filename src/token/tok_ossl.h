/*
 * tok_ossl.h - the module's own OpenSSL library context and what the token
 * layer takes from it: parsed public keys and certificates, digests and
 * ciphers, random numbers.
 *
 * Why: the module runs inside applications that configure OpenSSL for
 * themselves. `openssl -engine pkcs11` makes libengine-pkcs11-openssl (which
 * loads this very module) the default ENGINE for every algorithm. OpenSSL
 * 3.0 then consults that engine, whatever the library context, wherever an
 * algorithm has a legacy NID: d2i_PUBKEY() returns a legacy key bound to it
 * (whose EC point the provider API cannot export: the module's public key
 * objects lost their attributes), EVP_PKEY_CTX_new_from_name("EC") gives a
 * legacy context that cannot make keys, EVP_sha256()/EVP_aes_*() and
 * RAND_bytes() go to it. An application's openssl.cnf may likewise load a
 * PKCS#11 provider into the default library context. So the module works in
 * a private OSSL_LIB_CTX (default provider) and never through legacy paths:
 * keys are decoded with OSSL_DECODER, key contexts are made by the
 * algorithm's OID name (which has no legacy NID to look an engine up by),
 * digests and ciphers are fetched, random bytes come from the DRBGs.
 *
 * What remains: an operation on an existing key (EVP_PKEY_CTX_new_from_pkey:
 * verify, encrypt) still goes to an engine registered as the default for
 * the key's type, as OpenSSL 3.0 offers no way around that;
 * libengine-pkcs11-openssl hands keys that are not its own back to OpenSSL.
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
/* A context for making "RSA" or "EC" keys (fromdata, keygen) with the module's providers. */
EVP_PKEY_CTX *tok_ossl_pkey_ctx(const char *type);
/* A public key from a DER SubjectPublicKeyInfo that is exactly `len` bytes, or NULL. */
EVP_PKEY *tok_ossl_spki(const uint8_t *der, size_t len);
/* An X.509 certificate (DER, exactly `len` bytes) in the module's context, or NULL. */
X509 *tok_ossl_cert(const uint8_t *der, size_t len);
/* Random bytes from the context's public (or, for secrets, private) DRBG: 0, or -1. */
int tok_ossl_random(void *buf, size_t len);
int tok_ossl_random_secret(void *buf, size_t len);

#endif
