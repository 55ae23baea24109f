/*
 * tool_share_file.c - DKEK share files (tool_share_file.h): sealing under a
 * password with scrypt and AES-256-GCM, opening those and SmartCard-HSM
 * "Salted__" files. The slow key derivations run in a worker thread while
 * the caller's thread prints a dot every quarter second on stderr.
 */
#include "tools/tool_share_file.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define MAGIC_SKS     "SKSDKEK1"
#define MAGIC_SALTED  "Salted__"
#define KDF_SCRYPT    1
#define SALT_LEN      16
#define NONCE_LEN     12
#define TAG_LEN       16
#define HEADER_LEN    (8 + 6 + SALT_LEN + NONCE_LEN) /* 42: the GCM associated data */
#define LOG2N_MIN     14
#define LOG2N_MAX     22
#define SCRYPT_MAXMEM ((uint64_t)1100 * 1024 * 1024)

/* ---- running a derivation with progress ---------------------------------------- */

typedef struct {
    int (*fn)(void *ctx);
    void *ctx;
    int rc;
    int done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    int rc = j->fn(j->ctx);
    pthread_mutex_lock(&j->lock);
    j->rc = rc;
    j->done = 1;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* Run fn(ctx); with `progress`, "label ....  done" on stderr meanwhile. */
static int with_progress(const char *label, int progress, int (*fn)(void *), void *ctx)
{
    if (!progress)
        return fn(ctx);
    job j = {fn, ctx, -1, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    pthread_t t;
    fprintf(stderr, "%s ", label);
    if (pthread_create(&t, NULL, job_main, &j) != 0) {
        fprintf(stderr, "\n");
        return fn(ctx);
    }
    pthread_mutex_lock(&j.lock);
    while (!j.done) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&j.cond, &j.lock, &until) == ETIMEDOUT && !j.done) {
            fputc('.', stderr);
            fflush(stderr);
        }
    }
    pthread_mutex_unlock(&j.lock);
    pthread_join(t, NULL);
    fprintf(stderr, " %s\n", j.rc == 0 ? "done" : "failed");
    return j.rc;
}

/* ---- scrypt ------------------------------------------------------------------- */

typedef struct {
    const char *password;
    const uint8_t *salt;
    unsigned log2n, r, p;
    uint8_t key[32];
} scrypt_job;

static int scrypt_run(void *arg)
{
    scrypt_job *s = arg;
    uint64_t n = (uint64_t)1 << s->log2n, maxmem = SCRYPT_MAXMEM;
    uint32_t r = s->r, p = s->p;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)s->password,
                                          strlen(s->password)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)s->salt, SALT_LEN),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    int ok = ctx != NULL && EVP_KDF_derive(ctx, s->key, sizeof(s->key), params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : -1;
}

/* AES-256-GCM of one share; enc 1 seals (writes tag), 0 opens (checks tag). */
static int gcm(int enc, const uint8_t key[32], const uint8_t *header, const uint8_t *in,
               uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, fin = 0;
    const uint8_t *nonce = header + HEADER_LEN - NONCE_LEN;
    int ok = c != NULL && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
             EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1 &&
             EVP_CipherUpdate(c, NULL, &len, header, HEADER_LEN) == 1 &&
             EVP_CipherUpdate(c, out, &len, in, TOOL_SHARE_LEN) == 1 && len == TOOL_SHARE_LEN;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + len, &fin) == 1 && fin == 0;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

void tool_share_file_inspect(const uint8_t *p, size_t n, tool_share_info *info)
{
    memset(info, 0, sizeof(*info));
    if (n == TOOL_SHARE_FILE_LEN && memcmp(p, MAGIC_SKS, 8) == 0 && p[8] == KDF_SCRYPT &&
        p[9] >= LOG2N_MIN && p[9] <= LOG2N_MAX && p[10] >= 1 && p[10] <= 32 && p[11] >= 1 &&
        p[11] <= 16 && p[12] <= p[13] && p[13] <= 16 && (p[12] == 0) == (p[13] == 0)) {
        info->kind = TOOL_SHARE_SKS;
        info->log2n = p[9];
        info->r = p[10];
        info->p = p[11];
        info->threshold = p[12];
        info->total = p[13];
    } else if (n == TOOL_SALTED_FILE_LEN && memcmp(p, MAGIC_SALTED, 8) == 0) {
        info->kind = TOOL_SHARE_SALTED;
    }
}

int tool_share_file_seal(const uint8_t share[TOOL_SHARE_LEN], const char *password,
                         unsigned threshold, unsigned total, int progress,
                         uint8_t out[TOOL_SHARE_FILE_LEN])
{
    scrypt_job s;
    memset(&s, 0, sizeof(s));
    memcpy(out, MAGIC_SKS, 8);
    out[8] = KDF_SCRYPT;
    out[9] = TOOL_SHARE_LOG2N;
    out[10] = TOOL_SHARE_R;
    out[11] = TOOL_SHARE_P;
    out[12] = (uint8_t)threshold;
    out[13] = (uint8_t)total;
    if (threshold > 16 || total > 16 || RAND_bytes(out + 14, SALT_LEN + NONCE_LEN) != 1)
        return -1;
    s.password = password;
    s.salt = out + 14;
    s.log2n = TOOL_SHARE_LOG2N;
    s.r = TOOL_SHARE_R;
    s.p = TOOL_SHARE_P;
    int rc = with_progress("Deriving the key from the password (scrypt)", progress, scrypt_run, &s);
    if (rc == 0)
        rc = gcm(1, s.key, out, share, out + HEADER_LEN, out + HEADER_LEN + TOOL_SHARE_LEN);
    OPENSSL_cleanse(&s, sizeof(s));
    if (rc != 0)
        OPENSSL_cleanse(out, TOOL_SHARE_FILE_LEN);
    return rc;
}

/* ---- the SmartCard-HSM format -------------------------------------------------- */

typedef struct {
    const uint8_t *file;
    const char *password;
    int count;
    uint8_t share[TOOL_SHARE_LEN];
} salted_job;

/* EVP_BytesToKey(AES-256-CBC, MD5, count), then decrypt; 0 when the padding is a full block. */
static int salted_run(void *arg)
{
    salted_job *s = arg;
    uint8_t key[32], iv[16], pt[48];
    int len = 0, fin = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c != NULL &&
             EVP_BytesToKey(EVP_aes_256_cbc(), EVP_md5(), s->file + 8,
                            (const unsigned char *)s->password, (int)strlen(s->password), s->count,
                            key, iv) == 32 &&
             EVP_DecryptInit_ex(c, EVP_aes_256_cbc(), NULL, key, iv) == 1 &&
             EVP_DecryptUpdate(c, pt, &len, s->file + 16, 48) == 1 &&
             EVP_DecryptFinal_ex(c, pt + len, &fin) == 1 && len + fin == TOOL_SHARE_LEN;
    if (ok)
        memcpy(s->share, pt, TOOL_SHARE_LEN);
    EVP_CIPHER_CTX_free(c);
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(iv, sizeof(iv));
    OPENSSL_cleanse(pt, sizeof(pt));
    return ok ? 0 : -1;
}

static int open_salted(const uint8_t *p, const char *password, int progress,
                       uint8_t share[TOOL_SHARE_LEN])
{
    /*
     * Both counts in use, the cheap one first. A wrong key passes the padding
     * check of a 32-byte plaintext (a whole block of 0x10) with probability
     * 2^-128, so trying two is safe.
     */
    salted_job s = {p, password, 1, {0}};
    int rc = salted_run(&s);
    if (rc != 0) {
        s.count = TOOL_SALTED_COUNT_HSM;
        rc = with_progress("Deciphering the DKEK share (EVP_BytesToKey)", progress, salted_run, &s);
    }
    if (rc == 0)
        memcpy(share, s.share, TOOL_SHARE_LEN);
    OPENSSL_cleanse(&s, sizeof(s));
    return rc;
}

int tool_share_file_open(const uint8_t *p, size_t n, const char *password, int progress,
                         uint8_t share[TOOL_SHARE_LEN], const char **why)
{
    tool_share_info info;
    int rc = -1;
    memset(share, 0, TOOL_SHARE_LEN);
    tool_share_file_inspect(p, n, &info);
    if (info.kind == TOOL_SHARE_SALTED) {
        rc = open_salted(p, password, progress, share);
    } else if (info.kind == TOOL_SHARE_SKS) {
        scrypt_job s;
        uint8_t tag[TAG_LEN];
        memset(&s, 0, sizeof(s));
        s.password = password;
        s.salt = p + 14;
        s.log2n = info.log2n;
        s.r = info.r;
        s.p = info.p;
        memcpy(tag, p + HEADER_LEN + TOOL_SHARE_LEN, TAG_LEN);
        rc = with_progress("Deriving the key from the password (scrypt)", progress, scrypt_run, &s);
        if (rc == 0)
            rc = gcm(0, s.key, p, p + HEADER_LEN, share, tag);
        OPENSSL_cleanse(&s, sizeof(s));
    } else {
        *why = "not a DKEK share file";
        return -1;
    }
    if (rc != 0) {
        OPENSSL_cleanse(share, TOOL_SHARE_LEN);
        *why = "wrong password, or a damaged share file";
    }
    return rc;
}
