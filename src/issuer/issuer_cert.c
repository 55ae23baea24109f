/*
 * issuer_cert.c - the certificates an issuer hands out: a small self-signed
 * CA and end-entity certificates for public keys a card generated, so tests
 * and examples can complete setCertificatePath with real X.509 paths; and
 * the certificate skeleton and extension helper every issuer shares (the
 * local issuer in src/provision builds its certificates on them too).
 */
#include "issuer_internal.h"

#include <limits.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

int sks_cert_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

X509 *sks_cert_skeleton(OSSL_LIB_CTX *libctx, long days, const char *common_name)
{
    X509 *cert = X509_new_ex(libctx, NULL);
    X509_NAME *name = X509_NAME_new();
    int ok = cert != NULL && name != NULL && X509_set_version(cert, 2) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(cert), days * 86400L) != NULL &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                        (const unsigned char *)common_name, -1, -1, 0) == 1 &&
             X509_set_subject_name(cert, name) == 1;
    X509_NAME_free(name);
    if (!ok) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

X509 *sks_cert_parse(OSSL_LIB_CTX *libctx, const uint8_t *der, size_t len)
{
    if (der == NULL || len == 0 || len > LONG_MAX)
        return NULL;
    X509 *x = X509_new_ex(libctx, NULL);
    if (x == NULL)
        return NULL;
    const unsigned char *p = der;
    /* On failure d2i frees the reused object and sets it to NULL. */
    if (d2i_X509(&x, &p, (long)len) == NULL)
        return NULL;
    if (p != der + len) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* A skeleton with a given serial number, in the default library context. */
static X509 *new_cert(uint64_t serial, long days, const char *common_name)
{
    X509 *cert = sks_cert_skeleton(NULL, days, common_name);
    if (cert != NULL && ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial) != 1) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

int sks_issuer_ca_new(const char *common_name, EVP_PKEY **ca_key, X509 **ca_cert)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *cert = key != NULL ? new_cert(1, 3650, common_name) : NULL;
    int ok = cert != NULL && X509_set_issuer_name(cert, X509_get_subject_name(cert)) == 1 &&
             X509_set_pubkey(cert, key) == 1 &&
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

X509 *sks_issuer_issue_cert(EVP_PKEY *ca_key, X509 *ca_cert, sks_view spki, const char *common_name,
                            uint64_t serial)
{
    EVP_PKEY *pub = issuer_parse_spki(spki.ptr, spki.len);
    X509 *cert = pub != NULL ? new_cert(serial, 365, common_name) : NULL;
    int ok = cert != NULL && X509_set_issuer_name(cert, X509_get_subject_name(ca_cert)) == 1 &&
             X509_set_pubkey(cert, pub) == 1 &&
             sks_cert_add_ext(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE") &&
             sks_cert_add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid") &&
             X509_sign(cert, ca_key, EVP_sha256()) > 0;
    EVP_PKEY_free(pub);
    if (!ok) {
        X509_free(cert);
        ERR_clear_error();
        return NULL;
    }
    return cert;
}

int sks_issuer_cert_der(X509 *cert, sks_writer *w)
{
    unsigned char *der = NULL;
    int len = cert != NULL ? i2d_X509(cert, &der) : -1;
    if (len <= 0)
        return -1;
    sks_put_raw(w, der, (size_t)len);
    OPENSSL_free(der);
    return w->failed ? -1 : 0;
}

X509_STORE *sks_issuer_trust_pem(const char *pem_file)
{
    X509_STORE *store = X509_STORE_new();
    if (store == NULL || X509_STORE_load_file(store, pem_file) != 1) {
        X509_STORE_free(store);
        ERR_clear_error();
        return NULL;
    }
    return store;
}

/* ---- Parsed device certificates ---------------------------------------- */

/*
 * A card presents the same device certificate path in every session, and
 * d2i_X509 of one certificate costs more than an ECDSA verification in
 * OpenSSL 3.0 (it builds a decoder chain for the public key). The parsed
 * certificates are therefore kept by their DER (compared in full): parsing
 * is a pure function of the bytes, so a kept object is what a fresh parse
 * would give. Only the parse is reused; sks_issuer_accept still verifies
 * the path against the trusted store in every session. X509 objects are
 * reference counted and may be verified from several threads at once (their
 * internal caches are locked), so the slots are shared by all sessions of
 * the process under one lock; what they hold is freed on eviction or kept
 * to the end of the process.
 */
#define CERT_CACHE_SLOTS   8
#define CERT_CACHE_MAX_DER 16384

static struct {
    uint8_t *der;
    size_t len;
    X509 *cert;
} cert_cache[CERT_CACHE_SLOTS];
static size_t cert_cache_next;
static CRYPTO_RWLOCK *cert_cache_lock;
static CRYPTO_ONCE cert_cache_once = CRYPTO_ONCE_STATIC_INIT;

static void cert_cache_init(void)
{
    cert_cache_lock = CRYPTO_THREAD_lock_new();
}

/* The kept certificate of `der` with a new reference, or NULL. */
static X509 *cert_cache_find(const uint8_t *der, size_t n)
{
    X509 *found = NULL;
    if (!CRYPTO_THREAD_read_lock(cert_cache_lock))
        return NULL;
    for (size_t i = 0; i < CERT_CACHE_SLOTS && found == NULL; i++) {
        if (cert_cache[i].cert != NULL && cert_cache[i].len == n &&
            memcmp(cert_cache[i].der, der, n) == 0 && X509_up_ref(cert_cache[i].cert) == 1)
            found = cert_cache[i].cert;
    }
    CRYPTO_THREAD_unlock(cert_cache_lock);
    return found;
}

/* Keep `cert` (parsed from `der`) in the next slot, evicting its occupant. */
static void cert_cache_add(const uint8_t *der, size_t n, X509 *cert)
{
    uint8_t *copy = OPENSSL_memdup(der, n);
    if (copy == NULL || X509_up_ref(cert) != 1) {
        OPENSSL_free(copy);
        return;
    }
    if (!CRYPTO_THREAD_write_lock(cert_cache_lock)) {
        OPENSSL_free(copy);
        X509_free(cert);
        return;
    }
    size_t i = cert_cache_next;
    cert_cache_next = (cert_cache_next + 1) % CERT_CACHE_SLOTS;
    uint8_t *old_der = cert_cache[i].der;
    X509 *old_cert = cert_cache[i].cert;
    cert_cache[i].der = copy;
    cert_cache[i].len = n;
    cert_cache[i].cert = cert;
    CRYPTO_THREAD_unlock(cert_cache_lock);
    OPENSSL_free(old_der);
    X509_free(old_cert);
}

X509 *issuer_cert_parse_kept(const uint8_t *der, size_t n)
{
    if (der == NULL || n == 0 || n > 0x7FFFFFFF)
        return NULL;
    int cache = CRYPTO_THREAD_run_once(&cert_cache_once, cert_cache_init) &&
                cert_cache_lock != NULL && n <= CERT_CACHE_MAX_DER;
    X509 *cert = cache ? cert_cache_find(der, n) : NULL;
    if (cert != NULL)
        return cert;
    const unsigned char *p = der;
    cert = d2i_X509(NULL, &p, (long)n);
    if (cert != NULL && p != der + n) {
        X509_free(cert);
        return NULL;
    }
    if (cert != NULL && cache)
        cert_cache_add(der, n, cert);
    return cert;
}
