/*
 * local_issuer_cert.c - the certificates of the local issuer: its
 * self-signed CA "SKS Local Issuer" and the end-entity certificates that
 * complete each key's certificate path on the card (setCertificatePath
 * needs one; applications find keys through them). Certificates are made
 * and signed in the issuer's library context.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "issuer/sks_issuer.h"
#include "protocol/sks_proto.h"
#include "provision/local_issuer_internal.h"

/* A random positive 16-byte serial number (RFC 5280 allows up to 20 octets). */
static int set_random_serial(OSSL_LIB_CTX *libctx, X509 *cert)
{
    uint8_t raw[16];
    if (li_random(libctx, raw, sizeof(raw)) != 0)
        return 0;
    raw[0] = (uint8_t)((raw[0] & 0x7F) | 0x01); /* positive, never shorter */
    BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
    int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok;
}

/* The issuers' common skeleton, with a random serial and the subject's key. */
static X509 *new_cert(OSSL_LIB_CTX *libctx, const char *common_name, EVP_PKEY *subject)
{
    X509 *cert = sks_cert_skeleton(libctx, LI_VALIDITY_DAYS, common_name);
    if (cert != NULL && (!set_random_serial(libctx, cert) || X509_set_pubkey(cert, subject) != 1)) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

int li_ca_new(OSSL_LIB_CTX *libctx, EVP_PKEY **ca_key, X509 **ca_cert)
{
    EVP_PKEY *key = li_generate(libctx, 0);
    X509 *cert = key != NULL ? new_cert(libctx, LI_CA_NAME, key) : NULL;
    int ok = cert != NULL && X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1 &&
             sks_cert_add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") &&
             sks_cert_add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             sks_cert_add_ext(cert, cert, NID_subject_key_identifier, "hash") &&
             X509_sign(cert, key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(cert);
        EVP_PKEY_free(key);
        ERR_clear_error();
        return -1;
    }
    *ca_key = key;
    *ca_cert = cert;
    return 0;
}

/* The keyUsage extension value for SKS KeyUsage bits. */
static void key_usage_text(EVP_PKEY *subject, uint8_t usage, char *buf, size_t cap)
{
    int rsa = EVP_PKEY_is_a(subject, "RSA");
    snprintf(buf, cap, "critical%s%s%s", (usage & SKS_USAGE_SIGN) ? ",digitalSignature" : "",
             (usage & SKS_USAGE_DECRYPT) && rsa ? ",keyEncipherment,dataEncipherment" : "",
             (usage & SKS_USAGE_KEY_AGREEMENT) && !rsa ? ",keyAgreement" : "");
}

X509 *li_issue_cert(const sks_local_issuer *li, EVP_PKEY *subject, const char *common_name,
                    uint8_t usage)
{
    char ku[96];
    key_usage_text(subject, usage, ku, sizeof(ku));
    X509 *cert = new_cert(li->libctx, common_name, subject);
    int ok =
        cert != NULL && X509_set_issuer_name(cert, X509_get_subject_name(li->ca_cert)) == 1 &&
        sks_cert_add_ext(cert, li->ca_cert, NID_basic_constraints, "critical,CA:FALSE") &&
        (strcmp(ku, "critical") == 0 || sks_cert_add_ext(cert, li->ca_cert, NID_key_usage, ku)) &&
        sks_cert_add_ext(cert, li->ca_cert, NID_subject_key_identifier, "hash") &&
        sks_cert_add_ext(cert, li->ca_cert, NID_authority_key_identifier, "keyid") &&
        X509_sign(cert, li->ca_key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(cert);
        ERR_clear_error();
        return NULL;
    }
    return cert;
}
