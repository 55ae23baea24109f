/*
 * tok_ossl.c - the module's private OpenSSL library context (see
 * tok_ossl.h for why): created on first use, with the digests and ciphers
 * fetched from it and one SubjectPublicKeyInfo decoder kept for reuse
 * (making an OSSL_DECODER_CTX costs far more than decoding one key, and a
 * card cache reload decodes every key of the card).
 */
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/rand.h>

#include "issuer/sks_issuer.h"
#include "token/tok_ossl.h"

#define FETCHED_MAX 32

typedef struct {
    char name[32];
    int cipher; /* 1: alg is an EVP_CIPHER, 0: an EVP_MD */
    void *alg;
} fetched_alg;

/* Everything below is guarded by `lock`. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static OSSL_LIB_CTX *libctx;
static fetched_alg fetched[FETCHED_MAX];
static size_t nfetched;
static OSSL_DECODER_CTX *spki_decoder; /* writes its result to spki_decoded */
static EVP_PKEY *spki_decoded;

static OSSL_LIB_CTX *ctx_locked(void)
{
    if (libctx == NULL)
        libctx = OSSL_LIB_CTX_new(); /* providers: the default one, loaded at first fetch */
    return libctx;
}

OSSL_LIB_CTX *tok_ossl_ctx(void)
{
    pthread_mutex_lock(&lock);
    OSSL_LIB_CTX *ctx = ctx_locked();
    pthread_mutex_unlock(&lock);
    return ctx;
}

void tok_ossl_free(void)
{
    pthread_mutex_lock(&lock);
    OSSL_DECODER_CTX_free(spki_decoder);
    spki_decoder = NULL;
    EVP_PKEY_free(spki_decoded);
    spki_decoded = NULL;
    for (size_t i = 0; i < nfetched; i++) {
        if (fetched[i].cipher)
            EVP_CIPHER_free(fetched[i].alg);
        else
            EVP_MD_free(fetched[i].alg);
    }
    memset(fetched, 0, sizeof(fetched));
    nfetched = 0;
    OSSL_LIB_CTX_free(libctx);
    libctx = NULL;
    pthread_mutex_unlock(&lock);
}

/* A digest or cipher by name, fetched on first request and kept. */
static void *fetch(const char *name, int cipher)
{
    void *alg = NULL;
    if (strlen(name) >= sizeof(fetched[0].name))
        return NULL;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nfetched && alg == NULL; i++) {
        if (fetched[i].cipher == cipher && strcmp(fetched[i].name, name) == 0)
            alg = fetched[i].alg;
    }
    OSSL_LIB_CTX *ctx = alg == NULL && nfetched < FETCHED_MAX ? ctx_locked() : NULL;
    if (ctx != NULL) {
        alg = cipher ? (void *)EVP_CIPHER_fetch(ctx, name, NULL)
                     : (void *)EVP_MD_fetch(ctx, name, NULL);
        if (alg != NULL) {
            strcpy(fetched[nfetched].name, name);
            fetched[nfetched].cipher = cipher;
            fetched[nfetched].alg = alg;
            nfetched++;
        }
    }
    pthread_mutex_unlock(&lock);
    return alg;
}

const EVP_MD *tok_ossl_md(const char *name)
{
    return fetch(name, 0);
}

const EVP_CIPHER *tok_ossl_cipher(const char *name)
{
    return fetch(name, 1);
}

EVP_PKEY_CTX *tok_ossl_pkey_ctx(const char *type)
{
    /*
     * The key managers' OID names: "EC" or "RSA" would make OpenSSL look for
     * a default engine of that key type first (tok_ossl.h).
     */
    const char *name = strcmp(type, "EC") == 0    ? "1.2.840.10045.2.1"
                       : strcmp(type, "RSA") == 0 ? "1.2.840.113549.1.1.1"
                                                  : NULL;
    OSSL_LIB_CTX *ctx = tok_ossl_ctx();
    return name != NULL && ctx != NULL ? EVP_PKEY_CTX_new_from_name(ctx, name, NULL) : NULL;
}

EVP_PKEY *tok_ossl_spki(const uint8_t *der, size_t len)
{
    if (der == NULL || len == 0 || len > LONG_MAX)
        return NULL;
    EVP_PKEY *key = NULL;
    pthread_mutex_lock(&lock);
    OSSL_LIB_CTX *ctx = ctx_locked();
    if (spki_decoder == NULL && ctx != NULL)
        spki_decoder = OSSL_DECODER_CTX_new_for_pkey(&spki_decoded, "DER", "SubjectPublicKeyInfo",
                                                     NULL, EVP_PKEY_PUBLIC_KEY, ctx, NULL);
    if (spki_decoder != NULL) {
        const unsigned char *p = der;
        size_t left = len;
        spki_decoded = NULL;
        /* A key followed by anything else is not a SubjectPublicKeyInfo. */
        if (OSSL_DECODER_from_data(spki_decoder, &p, &left) == 1 && left == 0)
            key = spki_decoded;
        else
            EVP_PKEY_free(spki_decoded);
        spki_decoded = NULL;
    }
    pthread_mutex_unlock(&lock);
    return key;
}

X509 *tok_ossl_cert(const uint8_t *der, size_t len)
{
    OSSL_LIB_CTX *ctx = tok_ossl_ctx();
    return ctx != NULL ? sks_cert_parse(ctx, der, len) : NULL;
}

/* Random bytes from the public or the private DRBG of the module's context. */
static int random_bytes(void *buf, size_t len, int secret)
{
    if (len == 0)
        return 0;
    OSSL_LIB_CTX *ctx = tok_ossl_ctx();
    EVP_RAND_CTX *drbg = ctx == NULL ? NULL
                         : secret    ? RAND_get0_private(ctx)
                                     : RAND_get0_public(ctx);
    return drbg != NULL && EVP_RAND_generate(drbg, buf, len, 0, 0, NULL, 0) == 1 ? 0 : -1;
}

int tok_ossl_random(void *buf, size_t len)
{
    return random_bytes(buf, len, 0);
}

int tok_ossl_random_secret(void *buf, size_t len)
{
    return random_bytes(buf, len, 1);
}
