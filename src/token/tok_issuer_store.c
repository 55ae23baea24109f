/*
 * tok_issuer_store.c - the issuer token's files (tok_issuer_int.h): atomic
 * replacement of a file, and one file per token object:
 *
 *   byte   version (1)
 *   byte   0: the attributes in the clear, 1: sealed
 *   clear:  the attributes as tok_stored.c encodes them (CKA_TOKEN left out)
 *   sealed: IV (12) | AES-256-GCM(master key, IV, aad = "SKS issuer object" |
 *           the object ID, 8 bytes big-endian) of that encoding | tag (16)
 *
 * Private objects (CKA_PRIVATE true) are sealed, public ones are not: they
 * are readable without the PIN anyway. A file that does not parse, or does
 * not open under the master key, is logged and skipped, not fatal.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/sks_crypto.h"
#include "token/tok_issuer_int.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

#define OBJECT_VERSION 1
#define OBJECT_CLEAR   0
#define OBJECT_SEALED  1
#define OBJECT_PREFIX  "obj-"
#define OBJECT_AAD     "SKS issuer object"
/* The largest object file: an encoded object (SKS_OBJECT_MAX) sealed, with its header. */
#define OBJECT_FILE_MAX (SKS_OBJECT_MAX + 2 + TOK_GCM_IV_LEN + TOK_GCM_TAG_LEN)

static int full_write(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

CK_RV tok_issuer_write_file(const char *dir, const char *name, const uint8_t *data, size_t len)
{
    char tmp[4200], path[4200];
    int n1 = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name);
    int n2 = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n1 < 0 || (size_t)n1 >= sizeof(tmp) || n2 < 0 || (size_t)n2 >= sizeof(path))
        return CKR_DEVICE_ERROR;
    int fd = mkostemp(tmp, O_CLOEXEC); /* 0600 */
    if (fd < 0) {
        tok_log(TOK_LOG_ERROR, "issuer token: cannot create a file in %s: %s", dir,
                strerror(errno));
        return CKR_DEVICE_ERROR;
    }
    int ok = full_write(fd, data, len) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        tok_log(TOK_LOG_ERROR, "issuer token: cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return CKR_DEVICE_ERROR;
    }
    /* The rename itself must reach the disk. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return CKR_OK;
}

CK_RV tok_issuer_read_file(const char *dir, const char *name, size_t max, sks_writer *out)
{
    char path[4200];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return CKR_DEVICE_ERROR;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return CKR_OBJECT_HANDLE_INVALID;
        tok_log(TOK_LOG_ERROR, "issuer token: cannot read %s: %s", path, strerror(errno));
        return CKR_DEVICE_ERROR;
    }
    struct stat st;
    CK_RV rv = CKR_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        tok_log(TOK_LOG_ERROR, "issuer token: %s is not a regular file of at most %zu bytes", path,
                max);
        rv = CKR_DEVICE_ERROR;
    }
    uint8_t buf[4096];
    while (rv == CKR_OK) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rv = CKR_DEVICE_ERROR;
        if (r <= 0)
            break;
        sks_put_raw(out, buf, (size_t)r);
        if (out->failed || out->len > max)
            rv = out->failed ? CKR_HOST_MEMORY : CKR_DEVICE_ERROR;
    }
    sks_cleanse(buf, sizeof(buf));
    close(fd);
    return rv;
}

static void object_name(uint64_t id, char name[32])
{
    snprintf(name, 32, OBJECT_PREFIX "%016" PRIx64, id);
}

/* The AAD of a sealed object: the label and the object's ID. */
static size_t object_aad(uint64_t id, uint8_t aad[sizeof(OBJECT_AAD) - 1 + 8])
{
    size_t n = sizeof(OBJECT_AAD) - 1;
    memcpy(aad, OBJECT_AAD, n);
    sks_be32_put(aad + n, (uint32_t)(id >> 32));
    sks_be32_put(aad + n + 4, (uint32_t)id);
    return n + 8;
}

/*
 * Which objects are sealed under the master key: private objects, and every
 * private or secret key whatever its CKA_PRIVATE (CKA_SENSITIVE hides a
 * key's value from PKCS#11, not from the disk). Public objects stay readable
 * without the PIN, as through PKCS#11.
 */
static int must_seal(const tok_attrs *a)
{
    CK_ULONG cls = CKO_DATA;
    tok_attrs_get_ulong(a, CKA_CLASS, &cls);
    return tok_attrs_bool(a, CKA_PRIVATE, CK_FALSE) || cls == CKO_PRIVATE_KEY ||
           cls == CKO_SECRET_KEY;
}

CK_RV tok_issuer_store_write(const struct tok_issuer_token *t, uint64_t id, const tok_attrs *a)
{
    int sealed = must_seal(a);
    if (sealed && !t->have_master)
        return CKR_USER_NOT_LOGGED_IN;
    sks_writer blob, file;
    sks_writer_init(&blob);
    sks_writer_init(&file);
    CK_RV rv = tok_stored_encode(a, &blob);
    if (rv == CKR_OK) {
        sks_put_byte(&file, OBJECT_VERSION);
        sks_put_byte(&file, sealed ? OBJECT_SEALED : OBJECT_CLEAR);
        if (!sealed) {
            sks_put_raw(&file, blob.buf, blob.len);
        } else {
            uint8_t iv[TOK_GCM_IV_LEN], aad[64];
            size_t aad_len = object_aad(id, aad);
            size_t off = file.len + TOK_GCM_IV_LEN;
            rv = tok_ossl_random(iv, sizeof(iv)) == 0 ? CKR_OK : CKR_FUNCTION_FAILED;
            sks_put_raw(&file, iv, sizeof(iv));
            /* Room for ciphertext and tag, then sealed in place. */
            for (size_t i = 0; i < blob.len + TOK_GCM_TAG_LEN; i++)
                sks_put_byte(&file, 0);
            if (rv == CKR_OK && !file.failed)
                rv = tok_soft_gcm_seal(t->master, iv, aad, aad_len, blob.buf, blob.len,
                                       file.buf + off);
        }
        if (rv == CKR_OK && file.failed)
            rv = CKR_HOST_MEMORY;
    }
    char name[32];
    object_name(id, name);
    if (rv == CKR_OK)
        rv = tok_issuer_write_file(t->dir, name, file.buf, file.len);
    sks_writer_free(&blob);
    sks_writer_free(&file);
    return rv;
}

CK_RV tok_issuer_store_remove(const struct tok_issuer_token *t, uint64_t id)
{
    char name[32], path[4200];
    object_name(id, name);
    snprintf(path, sizeof(path), "%s/%s", t->dir, name);
    if (unlink(path) != 0 && errno != ENOENT) {
        tok_log(TOK_LOG_ERROR, "issuer token: cannot remove %s: %s", path, strerror(errno));
        return CKR_DEVICE_ERROR;
    }
    int dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return CKR_OK;
}

/* The object ID of a file name "obj-<16 hex digits>", or 0. */
static uint64_t id_of_name(const char *name)
{
    size_t plen = sizeof(OBJECT_PREFIX) - 1;
    if (strncmp(name, OBJECT_PREFIX, plen) != 0 || strlen(name) != plen + 16)
        return 0;
    uint64_t id = 0;
    for (const char *p = name + plen; *p != '\0'; p++) {
        int v = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        id = id << 4 | (uint64_t)v;
    }
    return id;
}

/* Is a token object with this ID already in memory? */
static int loaded(uint64_t id)
{
    for (const tok_session_object *o = tok_g.session_objects; o != NULL; o = o->next) {
        if (o->token_id == id)
            return 1;
    }
    return 0;
}

/* Decode one object file's contents into `a` if it is of the wanted kind: 1, 0 (other kind), -1. */
static int decode_object(const struct tok_issuer_token *t, uint64_t id, sks_view file, int private_,
                         tok_attrs *a)
{
    if (file.len < 2 || file.ptr[0] != OBJECT_VERSION ||
        (file.ptr[1] != OBJECT_CLEAR && file.ptr[1] != OBJECT_SEALED))
        return -1;
    if ((file.ptr[1] == OBJECT_SEALED) != (private_ != 0))
        return 0;
    sks_view body = {file.ptr + 2, file.len - 2};
    if (!private_)
        return tok_stored_decode(body, a) == CKR_OK ? 1 : -1;
    if (body.len < TOK_GCM_IV_LEN + TOK_GCM_TAG_LEN)
        return -1;
    size_t ct_len = body.len - TOK_GCM_IV_LEN;
    uint8_t *plain = malloc(ct_len);
    uint8_t aad[64];
    size_t aad_len = object_aad(id, aad);
    int rc = -1;
    if (plain != NULL && tok_soft_gcm_open(t->master, body.ptr, aad, aad_len,
                                           body.ptr + TOK_GCM_IV_LEN, ct_len, plain) == CKR_OK) {
        sks_view clear = {plain, ct_len - TOK_GCM_TAG_LEN};
        rc = tok_stored_decode(clear, a) == CKR_OK ? 1 : -1;
    }
    if (plain != NULL) {
        sks_cleanse(plain, ct_len);
        free(plain);
    }
    return rc;
}

/* Load one object file if it is of the wanted kind and not loaded yet. */
static void load_one(struct tok_issuer_token *t, uint64_t id, const char *name, int private_)
{
    sks_writer file;
    tok_attrs a = {0};
    CK_OBJECT_HANDLE h;
    sks_writer_init(&file);
    CK_RV rv = tok_issuer_read_file(t->dir, name, OBJECT_FILE_MAX, &file);
    int rc = rv == CKR_OK ? decode_object(t, id, (sks_view){file.buf, file.len}, private_, &a) : -1;
    /* The class and CKA_PRIVATE of the file agree with how it was stored. */
    CK_ULONG cls;
    if (rc == 1 && (!tok_attrs_get_ulong(&a, CKA_CLASS, &cls) || must_seal(&a) != (private_ != 0)))
        rc = -1;
    if (rc == 1 && (tok_attrs_set_bool(&a, CKA_TOKEN, CK_TRUE) != CKR_OK ||
                    tok_object_add_token(t->slot_id, &a, id, &h) != CKR_OK))
        tok_log(TOK_LOG_ERROR, "issuer token: out of memory loading %s", name);
    else if (rc < 0 && rv != CKR_OBJECT_HANDLE_INVALID)
        tok_log(TOK_LOG_WARN, "issuer token: %s/%s is damaged or not ours: skipped", t->dir, name);
    tok_attrs_free(&a);
    sks_writer_free(&file);
}

void tok_issuer_store_load(struct tok_issuer_token *t, int private_)
{
    if (private_ && !t->have_master)
        return;
    DIR *d = opendir(t->dir);
    if (d == NULL) {
        tok_log(TOK_LOG_ERROR, "issuer token: cannot list %s: %s", t->dir, strerror(errno));
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t id = id_of_name(e->d_name);
        if (id != 0 && !loaded(id))
            load_one(t, id, e->d_name, private_);
    }
    closedir(d);
}

CK_RV tok_issuer_store_wipe(struct tok_issuer_token *t)
{
    for (;;) {
        tok_session_object *o = tok_g.session_objects;
        while (o != NULL && o->token_id == 0)
            o = o->next;
        if (o == NULL)
            break;
        tok_object_destroy_session_object(o);
    }
    DIR *d = opendir(t->dir);
    if (d == NULL)
        return CKR_DEVICE_ERROR;
    CK_RV rv = CKR_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t id = id_of_name(e->d_name);
        if (id != 0 && tok_issuer_store_remove(t, id) != CKR_OK)
            rv = CKR_DEVICE_ERROR;
    }
    closedir(d);
    return rv;
}

CK_RV tok_issuer_store_new_id(const struct tok_issuer_token *t, uint64_t *id)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        uint8_t r[8];
        if (tok_ossl_random(r, sizeof(r)) != 0)
            return CKR_FUNCTION_FAILED;
        *id = (uint64_t)sks_be32_get(r) << 32 | sks_be32_get(r + 4);
        char name[32], path[4200];
        object_name(*id, name);
        snprintf(path, sizeof(path), "%s/%s", t->dir, name);
        if (*id != 0 && !loaded(*id) && access(path, F_OK) != 0 && errno == ENOENT)
            return CKR_OK;
    }
    return CKR_FUNCTION_FAILED;
}
