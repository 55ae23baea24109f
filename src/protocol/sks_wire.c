/*
 * sks_wire.c - the SKS data types on the wire: a growing writer that never
 * leaves secrets behind in freed memory, and a strict reader that never
 * reads past its input.
 */
#include "sks_wire.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define SKS_WRITER_MIN_CAP 64u

/* ---- writer ----------------------------------------------------------- */

void sks_writer_init(sks_writer *w)
{
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
    w->failed = 0;
    w->dirty = 0;
}

void sks_writer_free(sks_writer *w)
{
    if (w->buf != NULL) {
        OPENSSL_cleanse(w->buf, w->dirty);
        free(w->buf);
    }
    sks_writer_init(w);
}

void sks_writer_reset(sks_writer *w)
{
    if (w->buf != NULL)
        OPENSSL_cleanse(w->buf, w->dirty);
    w->len = 0;
    w->dirty = 0;
    w->failed = 0;
}

/*
 * Make room for `extra` more bytes. Growing copies into a new allocation and
 * zeroizes the old one (realloc could leave a copy of secrets in freed memory).
 */
static int writer_reserve(sks_writer *w, size_t extra)
{
    if (w->failed)
        return -1;
    if (extra > SIZE_MAX - w->len) {
        w->failed = 1;
        return -1;
    }
    size_t need = w->len + extra;
    if (need <= w->cap) {
        if (need > w->dirty)
            w->dirty = need;
        return 0;
    }

    size_t cap = w->cap < SKS_WRITER_MIN_CAP ? SKS_WRITER_MIN_CAP : w->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;

    uint8_t *nbuf = malloc(cap);
    if (nbuf == NULL) {
        w->failed = 1;
        return -1;
    }
    if (w->buf != NULL) {
        memcpy(nbuf, w->buf, w->len);
        OPENSSL_cleanse(w->buf, w->dirty);
        free(w->buf);
    }
    w->buf = nbuf;
    w->cap = cap;
    w->dirty = need;
    return 0;
}

void sks_put_raw(sks_writer *w, const void *p, size_t n)
{
    /* Appending part of the writer's own buffer must survive the growth. */
    uintptr_t start = (uintptr_t)w->buf, at = (uintptr_t)p;
    int inside = w->buf != NULL && at >= start && at < start + w->len;
    size_t off = inside ? (size_t)(at - start) : 0;

    if (writer_reserve(w, n) != 0 || n == 0)
        return;
    memmove(w->buf + w->len, inside ? w->buf + off : p, n);
    w->len += n;
}

void sks_put_byte(sks_writer *w, uint8_t v)
{
    sks_put_raw(w, &v, 1);
}

void sks_put_bool(sks_writer *w, int v)
{
    sks_put_byte(w, v ? 1 : 0);
}

void sks_put_short(sks_writer *w, uint16_t v)
{
    uint8_t b[2];
    sks_be16_put(b, v);
    sks_put_raw(w, b, sizeof b);
}

void sks_put_int(sks_writer *w, uint32_t v)
{
    uint8_t b[4];
    sks_be32_put(b, v);
    sks_put_raw(w, b, sizeof b);
}

void sks_put_bytes(sks_writer *w, const void *p, size_t n)
{
    if (n > SKS_WIRE_BYTES_MAX) {
        w->failed = 1;
        return;
    }
    sks_put_short(w, (uint16_t)n);
    sks_put_raw(w, p, n);
}

void sks_put_blob(sks_writer *w, const void *p, size_t n)
{
    if ((uint64_t)n > UINT32_MAX) {
        w->failed = 1;
        return;
    }
    sks_put_int(w, (uint32_t)n);
    sks_put_raw(w, p, n);
}

void sks_put_string(sks_writer *w, const char *s)
{
    if (s == NULL)
        s = "";
    sks_put_bytes(w, s, strlen(s));
}

/* ---- reader ----------------------------------------------------------- */

void sks_reader_init(sks_reader *r, const uint8_t *p, size_t n)
{
    r->ptr = p;
    r->len = p != NULL ? n : 0;
    r->pos = 0;
    r->failed = 0;
}

int sks_get_raw(sks_reader *r, size_t n, sks_view *v)
{
    if (r->failed || n > r->len - r->pos) {
        r->failed = 1;
        v->ptr = NULL;
        v->len = 0;
        return -1;
    }
    v->ptr = r->ptr + r->pos;
    v->len = n;
    r->pos += n;
    return 0;
}

int sks_get_byte(sks_reader *r, uint8_t *v)
{
    sks_view b;
    if (sks_get_raw(r, 1, &b) != 0)
        return -1;
    *v = b.ptr[0];
    return 0;
}

int sks_get_bool(sks_reader *r, uint8_t *v)
{
    uint8_t b;
    if (sks_get_byte(r, &b) != 0)
        return -1;
    if (b > 1) {
        r->failed = 1;
        return -1;
    }
    *v = b;
    return 0;
}

int sks_get_short(sks_reader *r, uint16_t *v)
{
    sks_view b;
    if (sks_get_raw(r, 2, &b) != 0)
        return -1;
    *v = sks_be16_get(b.ptr);
    return 0;
}

int sks_get_int(sks_reader *r, uint32_t *v)
{
    sks_view b;
    if (sks_get_raw(r, 4, &b) != 0)
        return -1;
    *v = sks_be32_get(b.ptr);
    return 0;
}

int sks_get_bytes(sks_reader *r, sks_view *v)
{
    uint16_t n;
    if (sks_get_short(r, &n) != 0) {
        v->ptr = NULL;
        v->len = 0;
        return -1;
    }
    return sks_get_raw(r, n, v);
}

int sks_get_blob(sks_reader *r, sks_view *v)
{
    uint32_t n;
    if (sks_get_int(r, &n) != 0) {
        v->ptr = NULL;
        v->len = 0;
        return -1;
    }
    return sks_get_raw(r, n, v);
}

int sks_reader_finish(const sks_reader *r)
{
    return !r->failed && r->pos == r->len ? 0 : -1;
}
