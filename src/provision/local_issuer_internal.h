/*
 * local_issuer_internal.h - what the files of the local issuer share: its
 * state (keys and CA certificate) and the certificates it issues. Used by
 * src/provision/local_issuer*.c only.
 */
#ifndef SKS_LOCAL_ISSUER_INTERNAL_H
#define SKS_LOCAL_ISSUER_INTERNAL_H

#include <openssl/x509.h>

#include "provision/local_issuer.h"

#define LI_ISSUER_URI    "urn:sks:local-issuer"
#define LI_CA_NAME       "SKS Local Issuer"
#define LI_VALIDITY_DAYS 3650L /* CA and end-entity certificates: 10 years */

struct sks_local_issuer {
    OSSL_LIB_CTX *libctx;  /* where its keys and certificates live (NULL: the default) */
    EVP_PKEY *session_key; /* RSA-2048: the card encrypts session secrets to it */
    EVP_PKEY *ca_key;      /* signs the certificates */
    X509 *ca_cert;         /* self-signed "SKS Local Issuer" */
    sks_writer ca_der;
    X509_STORE *trusted; /* manufacturer CAs; NULL: trust the path the card presents */
};

/* A new CA: an EC P-256 key and a self-signed certificate "SKS Local Issuer". 0 or -1. */
int li_ca_new(OSSL_LIB_CTX *libctx, EVP_PKEY **ca_key, X509 **ca_cert);

/* Random bytes from the public DRBG of the issuer's library context. 0 or -1. */
int li_random(OSSL_LIB_CTX *libctx, void *buf, size_t len);

/*
 * A new key in a library context, made by its providers: RSA-2048 when
 * `rsa`, else EC P-256. NULL on failure.
 */
EVP_PKEY *li_generate(OSSL_LIB_CTX *libctx, int rsa);

/* A certificate (DER, exactly `len` bytes) in a library context, or NULL. */

/*
 * An end-entity certificate for `subject` (only its public key is used):
 * CN = common_name, keyUsage from the SKS KeyUsage bits, 10 years, a random
 * serial. NULL on failure.
 */
X509 *li_issue_cert(const sks_local_issuer *li, EVP_PKEY *subject, const char *common_name,
                    uint8_t usage);

#endif
