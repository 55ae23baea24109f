/*
 * local_issuer_state.c - the local issuer's long-lived state: its RSA-2048
 * session key (the card encrypts each session's secret to it, so every
 * session has the same IssuerPublicKey and may add keys under the PIN
 * policies of earlier ones, docs/protocol.md 6.9) and its CA "SKS Local
 * Issuer" (an EC P-256 key and a self-signed certificate).
 *
 * All three live in one PEM file, <dir>/local-issuer.pem (0600), written
 * once: a new state is written to a temporary file and linked into place,
 * so two processes that start at the same time end up with the same issuer.
 * <dir>/ca-cert.pem is a copy of the CA certificate for users who want to
 * trust it; the issuer never reads it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509_vfy.h>

#include "protocol/sks_crypto.h"
#include "provision/local_issuer_internal.h"

#define STATE_FILE   "local-issuer.pem"
#define CA_COPY_FILE "ca-cert.pem"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* mkdir -p with mode 0700 for the directories it creates. 0 or -1. */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return -1;
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        path[i] = c;
    }
    struct stat st;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

int li_random(OSSL_LIB_CTX *libctx, void *buf, size_t len)
{
    /* The DRBG itself, not RAND_bytes(): an application's default engine may replace that. */
    EVP_RAND_CTX *drbg = RAND_get0_public(libctx);
    return len == 0 || (drbg != NULL && EVP_RAND_generate(drbg, buf, len, 0, 0, NULL, 0) == 1) ? 0
                                                                                               : -1;
}

EVP_PKEY *li_generate(OSSL_LIB_CTX *libctx, int rsa)
{
    /*
     * By the key managers' OID names, not "RSA" or "EC": with those, OpenSSL
     * 3.0 would use an application's default ENGINE for the key type first,
     * whatever the library context (an EC key then cannot be generated).
     */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(
        libctx, rsa ? "1.2.840.113549.1.1.1" : "1.2.840.10045.2.1", NULL);
    EVP_PKEY *key = NULL;
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
        (rsa ? EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048)
             : EVP_PKEY_CTX_set_group_name(ctx, "P-256")) != 1 ||
        EVP_PKEY_generate(ctx, &key) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* Read the three PEM objects of the state file. 0, or -1 when absent or damaged. */
static int load_state(sks_local_issuer *li, const char *file)
{
    BIO *bio = BIO_new_file(file, "r");
    if (bio == NULL)
        return -1;
    li->session_key = PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, li->libctx, NULL);
    li->ca_key = PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, li->libctx, NULL);
    li->ca_cert = X509_new_ex(li->libctx, NULL);
    if (li->ca_cert != NULL && PEM_read_bio_X509(bio, &li->ca_cert, NULL, NULL) == NULL) {
        X509_free(li->ca_cert);
        li->ca_cert = NULL;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (li->session_key == NULL || li->ca_key == NULL || li->ca_cert == NULL ||
        !EVP_PKEY_is_a(li->session_key, "RSA") ||
        X509_check_private_key(li->ca_cert, li->ca_key) != 1)
        return -1;
    return 0;
}

/* Write the state to a new 0600 file. 0 or -1. */
static int write_state(const sks_local_issuer *li, const char *file)
{
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    int ok = PEM_write_PrivateKey(f, li->session_key, NULL, NULL, 0, NULL, NULL) == 1 &&
             PEM_write_PrivateKey(f, li->ca_key, NULL, NULL, 0, NULL, NULL) == 1 &&
             PEM_write_X509(f, li->ca_cert) == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0)
        ok = 0;
    ERR_clear_error();
    return ok ? 0 : -1;
}

/* A copy of the CA certificate for users; failures do not matter. */
static void write_ca_copy(const sks_local_issuer *li, const char *dir)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, CA_COPY_FILE);
    snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    int ok = PEM_write_X509(f, li->ca_cert) == 1;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0)
        unlink(tmp);
    ERR_clear_error();
}

/* Create a new state and link it into place; a concurrent creator may win. */
static int create_state(sks_local_issuer *li, const char *dir, const char *file)
{
    char tmp[4200];
    uint8_t rnd[8];
    if (li_random(li->libctx, rnd, sizeof(rnd)) != 0)
        return -1;
    snprintf(tmp, sizeof(tmp), "%s.%ld.%02x%02x%02x%02x", file, (long)getpid(), rnd[0], rnd[1],
             rnd[2], rnd[3]);
    li->session_key = li_generate(li->libctx, 1);
    if (li->session_key == NULL || li_ca_new(li->libctx, &li->ca_key, &li->ca_cert) != 0 ||
        write_state(li, tmp) != 0) {
        unlink(tmp);
        return -1;
    }
    int linked = link(tmp, file) == 0;
    unlink(tmp);
    if (linked) {
        write_ca_copy(li, dir);
        return 0;
    }
    if (errno != EEXIST)
        return -1;
    /* Another process created the issuer first: use its state. */
    EVP_PKEY_free(li->session_key);
    EVP_PKEY_free(li->ca_key);
    X509_free(li->ca_cert);
    li->session_key = li->ca_key = NULL;
    li->ca_cert = NULL;
    return load_state(li, file);
}

sks_local_issuer *sks_local_issuer_open(const char *dir, const char *manufacturer_ca, char *err,
                                        size_t errlen)
{
    return sks_local_issuer_open_ex(dir, manufacturer_ca, NULL, err, errlen);
}

sks_local_issuer *sks_local_issuer_open_ex(const char *dir, const char *manufacturer_ca,
                                           OSSL_LIB_CTX *libctx, char *err, size_t errlen)
{
    char file[4096];
    if (dir == NULL || strlen(dir) + sizeof(STATE_FILE) + 2 > sizeof(file)) {
        set_err(err, errlen, "%s", "bad local issuer directory");
        return NULL;
    }
    sks_local_issuer *li = calloc(1, sizeof(*li));
    if (li == NULL) {
        set_err(err, errlen, "%s", "out of memory");
        return NULL;
    }
    li->libctx = libctx;
    sks_writer_init(&li->ca_der);
    snprintf(file, sizeof(file), "%s/%s", dir, STATE_FILE);

    if (make_dirs(dir) != 0) {
        set_err(err, errlen, "cannot create the local issuer directory %s", dir);
        goto fail;
    }
    if (access(file, F_OK) == 0) {
        if (load_state(li, file) != 0) {
            set_err(err, errlen, "the local issuer state %s is damaged", file);
            goto fail;
        }
    } else if (create_state(li, dir, file) != 0) {
        set_err(err, errlen, "cannot create the local issuer state %s", file);
        goto fail;
    }
    unsigned char *der = NULL;
    int len = i2d_X509(li->ca_cert, &der);
    if (len > 0)
        sks_put_raw(&li->ca_der, der, (size_t)len);
    OPENSSL_free(der);
    if (len <= 0 || li->ca_der.failed) {
        set_err(err, errlen, "%s", "cannot encode the local issuer certificate");
        goto fail;
    }
    if (manufacturer_ca != NULL) {
        li->trusted = X509_STORE_new();
        if (li->trusted == NULL ||
            X509_STORE_load_file_ex(li->trusted, manufacturer_ca, li->libctx, NULL) != 1) {
            ERR_clear_error();
            set_err(err, errlen, "cannot load the manufacturer CA file %s", manufacturer_ca);
            goto fail;
        }
    }
    return li;
fail:
    sks_local_issuer_close(li);
    return NULL;
}

void sks_local_issuer_close(sks_local_issuer *li)
{
    if (li == NULL)
        return;
    EVP_PKEY_free(li->session_key);
    EVP_PKEY_free(li->ca_key);
    X509_free(li->ca_cert);
    X509_STORE_free(li->trusted);
    sks_writer_free(&li->ca_der);
    sks_cleanse(li, sizeof(*li));
    free(li);
}
