/*
 * demo_ca.h - the issuer demo's certification authority: an EC P-256 CA
 * kept as PEM files in the demo's state directory, issuing end-entity
 * certificates for public keys that arrive as SubjectPublicKeyInfo. Plain
 * OpenSSL: the CA is the server application, not the token.
 */
#ifndef SKS_DEMO_CA_H
#define SKS_DEMO_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

typedef struct {
    EVP_PKEY *key;
    X509 *cert;
} demo_ca;

/* Load <dir>/demo-ca.key and demo-ca.pem, creating them the first time. 0 or -1. */
int demo_ca_open(demo_ca *ca, const char *dir);
void demo_ca_close(demo_ca *ca);
/* A certificate for `spki` with CN=cn and this serial, DER in *der (OPENSSL_free). -1 on error. */
int demo_ca_issue(demo_ca *ca, const unsigned char *spki, size_t spki_len, const char *cn,
                  uint32_t serial, unsigned char **der, size_t *der_len);
/* The CA certificate's DER (OPENSSL_free). */
int demo_ca_cert_der(demo_ca *ca, unsigned char **der, size_t *der_len);

#endif
