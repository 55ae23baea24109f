/*
 * demo_ca.c - the issuer demo's CA (demo_ca.h).
 */
#include "demo_ca.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* The common part: serial, validity, subject CN, issuer, public key. */
static X509 *cert_new(EVP_PKEY *pub, const char *cn, X509 *issuer, uint32_t serial, long days)
{
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (c == NULL || name == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_version(c, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(c), serial) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(c), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(c), days * 86400L) == NULL ||
        X509_set_subject_name(c, name) != 1 ||
        X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_set_pubkey(c, pub) != 1) {
        X509_free(c);
        c = NULL;
    }
    X509_NAME_free(name);
    return c;
}

static int ca_create(demo_ca *ca, const char *keyfile, const char *certfile)
{
    ca->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (ca->key == NULL)
        return -1;
    ca->cert = cert_new(ca->key, "SKS issuer demo CA", NULL, 1, 3650);
    if (ca->cert == NULL ||
        add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE") ||
        add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash") ||
        X509_sign(ca->cert, ca->key, EVP_sha256()) == 0)
        return -1;
    mode_t old = umask(077);
    FILE *k = fopen(keyfile, "w");
    umask(old);
    FILE *c = fopen(certfile, "w");
    int ok = k != NULL && c != NULL &&
             PEM_write_PrivateKey(k, ca->key, NULL, NULL, 0, NULL, NULL) &&
             PEM_write_X509(c, ca->cert);
    if (k != NULL)
        fclose(k);
    if (c != NULL)
        fclose(c);
    return ok ? 0 : -1;
}

int demo_ca_open(demo_ca *ca, const char *dir)
{
    char keyfile[4096], certfile[4096];
    memset(ca, 0, sizeof(*ca));
    snprintf(keyfile, sizeof(keyfile), "%s/demo-ca.key", dir);
    snprintf(certfile, sizeof(certfile), "%s/demo-ca.pem", dir);
    FILE *k = fopen(keyfile, "r");
    if (k == NULL)
        return ca_create(ca, keyfile, certfile);
    ca->key = PEM_read_PrivateKey(k, NULL, NULL, NULL);
    fclose(k);
    FILE *c = fopen(certfile, "r");
    if (c != NULL) {
        ca->cert = PEM_read_X509(c, NULL, NULL, NULL);
        fclose(c);
    }
    return ca->key != NULL && ca->cert != NULL ? 0 : -1;
}

void demo_ca_close(demo_ca *ca)
{
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    memset(ca, 0, sizeof(*ca));
}

int demo_ca_issue(demo_ca *ca, const unsigned char *spki, size_t spki_len, const char *cn,
                  uint32_t serial, unsigned char **der, size_t *der_len)
{
    const unsigned char *p = spki;
    EVP_PKEY *pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
    if (pub == NULL || p != spki + spki_len) {
        EVP_PKEY_free(pub);
        return -1;
    }
    X509 *c = cert_new(pub, cn, ca->cert, serial, 365);
    EVP_PKEY_free(pub);
    int rc = -1;
    if (c != NULL && add_ext(c, ca->cert, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
        add_ext(c, ca->cert, NID_key_usage, "critical,digitalSignature") == 0 &&
        add_ext(c, ca->cert, NID_ext_key_usage, "clientAuth") == 0 &&
        add_ext(c, ca->cert, NID_authority_key_identifier, "keyid") == 0 &&
        X509_sign(c, ca->key, EVP_sha256()) != 0) {
        *der = NULL;
        int n = i2d_X509(c, der);
        if (n > 0) {
            *der_len = (size_t)n;
            rc = 0;
        }
    }
    X509_free(c);
    return rc;
}

int demo_ca_cert_der(demo_ca *ca, unsigned char **der, size_t *der_len)
{
    *der = NULL;
    int n = i2d_X509(ca->cert, der);
    if (n <= 0)
        return -1;
    *der_len = (size_t)n;
    return 0;
}
