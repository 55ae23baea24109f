/*
 * tok_index.c - a small hash multimap from (tag, bytes) to 32-bit values.
 * The card cache uses it to find objects by CKA_ID and CKA_LABEL without
 * walking every key, and to show a CA certificate shared by many keys once.
 * Open addressing with linear probing; the table doubles at 50% load.
 */
#include <stdlib.h>
#include <string.h>

#include "token/tok.h"

typedef struct {
    uint64_t hash;
    uint8_t *key; /* tag byte then the bytes; NULL: empty slot */
    size_t key_len;
    uint32_t *values;
    size_t nvalues, cap;
} bucket;

struct tok_index {
    bucket *b;
    size_t size; /* power of two */
    size_t used;
};

/* FNV-1a over tag and bytes. */
static uint64_t hash_key(uint8_t tag, const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = (h ^ tag) * 0x100000001b3ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

tok_index *tok_index_new(void)
{
    tok_index *ix = calloc(1, sizeof(*ix));
    if (ix == NULL)
        return NULL;
    ix->size = 64;
    ix->b = calloc(ix->size, sizeof(bucket));
    if (ix->b == NULL) {
        free(ix);
        return NULL;
    }
    return ix;
}

void tok_index_free(tok_index *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->size; i++) {
        free(ix->b[i].key);
        free(ix->b[i].values);
    }
    free(ix->b);
    free(ix);
}

static bucket *lookup(const tok_index *ix, uint64_t h, uint8_t tag, const uint8_t *p, size_t n)
{
    size_t mask = ix->size - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        bucket *b = &ix->b[i];
        if (b->key == NULL)
            return b;
        if (b->hash == h && b->key_len == n + 1 && b->key[0] == tag &&
            (n == 0 || memcmp(b->key + 1, p, n) == 0))
            return b;
    }
}

static int grow(tok_index *ix)
{
    size_t old_size = ix->size;
    bucket *old = ix->b;
    bucket *nb = calloc(old_size * 2, sizeof(bucket));
    if (nb == NULL)
        return -1;
    ix->b = nb;
    ix->size = old_size * 2;
    size_t mask = ix->size - 1;
    for (size_t i = 0; i < old_size; i++) {
        if (old[i].key == NULL)
            continue;
        size_t j = (size_t)old[i].hash & mask;
        while (nb[j].key != NULL)
            j = (j + 1) & mask;
        nb[j] = old[i];
    }
    free(old);
    return 0;
}

int tok_index_add(tok_index *ix, uint8_t tag, const void *key, size_t len, uint32_t value)
{
    if ((ix->used + 1) * 2 > ix->size && grow(ix) != 0)
        return -1;
    uint64_t h = hash_key(tag, key, len);
    bucket *b = lookup(ix, h, tag, key, len);
    if (b->key == NULL) {
        b->key = malloc(len + 1);
        if (b->key == NULL)
            return -1;
        b->key[0] = tag;
        if (len > 0)
            memcpy(b->key + 1, key, len);
        b->key_len = len + 1;
        b->hash = h;
        ix->used++;
    }
    if (b->nvalues == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 2;
        uint32_t *v = realloc(b->values, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        b->values = v;
        b->cap = cap;
    }
    b->values[b->nvalues++] = value;
    return 0;
}

const uint32_t *tok_index_get(const tok_index *ix, uint8_t tag, const void *key, size_t len,
                              size_t *count)
{
    *count = 0;
    if (ix == NULL)
        return NULL;
    const bucket *b = lookup(ix, hash_key(tag, key, len), tag, key, len);
    if (b->key == NULL)
        return NULL;
    *count = b->nvalues;
    return b->values;
}
