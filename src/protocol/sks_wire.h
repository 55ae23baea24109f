/*
 * sks_wire.h - the SKS data types on the wire (byte, bool, short, int,
 * byte[], blob; big-endian), as a growing writer and a strict reader.
 *
 * Shared by the card, the middleware and the issuer: every byte that crosses
 * the card boundary is produced by sks_writer and consumed by sks_reader.
 * The reader never reads past its input, rejects bools other than 0/1 and
 * reports trailing bytes through sks_reader_finish().
 */
#ifndef SKS_WIRE_H
#define SKS_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Largest byte[] the format can carry (its length is a "short"). */
#define SKS_WIRE_BYTES_MAX 0xFFFFu

/* A read-only view of bytes inside some buffer (no ownership). */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} sks_view;

/*
 * Growing output buffer. Any failure (allocation, oversize byte[]) sets
 * `failed`; later puts are ignored, so callers check once at the end.
 * sks_writer_free() zeroizes the contents because writers carry secrets.
 */
typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int failed;
    /*
     * How much of buf may have been written since it was last zeroized (a
     * high-water mark; callers may shorten len by hand): reset and free wipe
     * this much, not the whole allocation, which for an APDU buffer is 64 KB.
     */
    size_t dirty;
} sks_writer;

void sks_writer_init(sks_writer *w);
void sks_writer_free(sks_writer *w);
void sks_writer_reset(sks_writer *w); /* keep the allocation, zeroize, len = 0 */
void sks_put_raw(sks_writer *w, const void *p, size_t n);
void sks_put_byte(sks_writer *w, uint8_t v);
void sks_put_bool(sks_writer *w, int v);
void sks_put_short(sks_writer *w, uint16_t v);
void sks_put_int(sks_writer *w, uint32_t v);
void sks_put_bytes(sks_writer *w, const void *p, size_t n); /* 2-byte length + data */
void sks_put_blob(sks_writer *w, const void *p, size_t n);  /* 4-byte length + data */
void sks_put_string(sks_writer *w, const char *s);          /* as byte[] */

/*
 * Strict reader over a caller-owned buffer. Views returned by the get_bytes
 * functions point into that buffer. Once a get fails, `failed` stays set and
 * every later get fails too.
 */
typedef struct {
    const uint8_t *ptr;
    size_t len;
    size_t pos;
    int failed;
} sks_reader;

void sks_reader_init(sks_reader *r, const uint8_t *p, size_t n);
int sks_get_byte(sks_reader *r, uint8_t *v);
int sks_get_bool(sks_reader *r, uint8_t *v); /* only 0x00 or 0x01 */
int sks_get_short(sks_reader *r, uint16_t *v);
int sks_get_int(sks_reader *r, uint32_t *v);
int sks_get_bytes(sks_reader *r, sks_view *v);
int sks_get_blob(sks_reader *r, sks_view *v);
int sks_get_raw(sks_reader *r, size_t n, sks_view *v);
/* 0 if nothing failed and every byte was consumed, -1 otherwise. */
int sks_reader_finish(const sks_reader *r);

/* Big-endian helpers for code that frames bytes itself. */
static inline void sks_be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void sks_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint16_t sks_be16_get(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t sks_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#endif
