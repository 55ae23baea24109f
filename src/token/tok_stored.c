/*
 * tok_stored.c - how the module serialises the attributes of an object it
 * stores on the card (createObject/updateObject; the card keeps the bytes
 * opaque). Format, in the SKS wire types:
 *
 *   byte  version (1)
 *   int   count
 *   count times:  int type, blob value
 *
 * Values are canonical, not native: a CK_ULONG is 8 bytes big-endian
 * (CK_UNAVAILABLE_INFORMATION is 8 bytes FF), a CK_ULONG array 8 bytes per
 * element, a CK_BBOOL one byte, anything else its bytes. So a card written
 * by one platform reads the same on another. CKA_TOKEN is not stored; the
 * class and CKA_PRIVATE are also the card's own fields, which win.
 */
#include <stdlib.h>
#include <string.h>

#include "token/tok.h"

#define STORED_VERSION   1
#define STORED_MAX_ATTRS 256

static void put_u64(sks_writer *w, uint64_t v)
{
    sks_put_int(w, (uint32_t)(v >> 32));
    sks_put_int(w, (uint32_t)v);
}

/* Encode one value canonically into w (as the contents of a blob). */
static CK_RV encode_value(const tok_attr *e, sks_writer *w)
{
    switch (tok_rules_kind(e->type)) {
    case TOK_AK_ULONG:
    case TOK_AK_ULONG_ARRAY:
        if (e->len % sizeof(CK_ULONG) != 0)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        for (size_t off = 0; off < e->len; off += sizeof(CK_ULONG)) {
            CK_ULONG v;
            memcpy(&v, e->value + off, sizeof(v));
            put_u64(w, v == CK_UNAVAILABLE_INFORMATION ? UINT64_MAX : (uint64_t)v);
        }
        return CKR_OK;
    default:
        sks_put_raw(w, e->value, e->len);
        return CKR_OK;
    }
}

CK_RV tok_stored_encode(const tok_attrs *a, sks_writer *w)
{
    size_t count = 0;
    for (size_t i = 0; i < a->n; i++)
        count += a->v[i].type != CKA_TOKEN;
    if (count > STORED_MAX_ATTRS)
        return CKR_TEMPLATE_INCONSISTENT;
    sks_put_byte(w, STORED_VERSION);
    sks_put_int(w, (uint32_t)count);
    sks_writer value;
    sks_writer_init(&value);
    CK_RV rv = CKR_OK;
    for (size_t i = 0; rv == CKR_OK && i < a->n; i++) {
        const tok_attr *e = &a->v[i];
        if (e->type == CKA_TOKEN)
            continue;
        if (e->type > 0xFFFFFFFFul) {
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
            break;
        }
        sks_writer_reset(&value);
        rv = encode_value(e, &value);
        sks_put_int(w, (uint32_t)e->type);
        sks_put_blob(w, value.buf, value.len);
    }
    if (rv == CKR_OK && (w->failed || value.failed))
        rv = CKR_HOST_MEMORY;
    sks_writer_free(&value);
    if (rv == CKR_OK && w->len > SKS_OBJECT_MAX)
        rv = CKR_DEVICE_MEMORY;
    return rv;
}

/* Decode one canonical value into native form and add it. */
static CK_RV decode_value(CK_ATTRIBUTE_TYPE type, sks_view v, tok_attrs *a)
{
    enum tok_attr_kind kind = tok_rules_kind(type);
    if (kind == TOK_AK_ULONG || kind == TOK_AK_ULONG_ARRAY) {
        if (v.len % 8 != 0 || (kind == TOK_AK_ULONG && v.len != 8) || v.len > 8 * 1024)
            return CKR_DEVICE_ERROR;
        size_t n = v.len / 8;
        CK_ULONG *out = calloc(n ? n : 1, sizeof(CK_ULONG));
        if (out == NULL)
            return CKR_HOST_MEMORY;
        for (size_t i = 0; i < n; i++) {
            uint64_t x =
                ((uint64_t)sks_be32_get(v.ptr + 8 * i) << 32) | sks_be32_get(v.ptr + 8 * i + 4);
            if (x == UINT64_MAX)
                out[i] = CK_UNAVAILABLE_INFORMATION;
            else if (x > (uint64_t)(CK_ULONG)-1) {
                free(out);
                return CKR_DEVICE_ERROR;
            } else
                out[i] = (CK_ULONG)x;
        }
        CK_RV rv = tok_attrs_set(a, type, out, (CK_ULONG)(n * sizeof(CK_ULONG)));
        free(out);
        return rv;
    }
    if (kind == TOK_AK_BOOL && (v.len != 1 || v.ptr[0] > 1))
        return CKR_DEVICE_ERROR;
    return tok_attrs_set(a, type, v.ptr, (CK_ULONG)v.len);
}

CK_RV tok_stored_decode(sks_view blob, tok_attrs *a)
{
    sks_reader r;
    uint8_t version;
    uint32_t count;
    sks_reader_init(&r, blob.ptr, blob.len);
    if (sks_get_byte(&r, &version) != 0 || version != STORED_VERSION ||
        sks_get_int(&r, &count) != 0 || count > STORED_MAX_ATTRS)
        return CKR_DEVICE_ERROR;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t type;
        sks_view v;
        if (sks_get_int(&r, &type) != 0 || sks_get_blob(&r, &v) != 0)
            return CKR_DEVICE_ERROR;
        if (tok_attrs_find(a, type) != NULL)
            return CKR_DEVICE_ERROR; /* each attribute once */
        CK_RV rv = decode_value(type, v, a);
        if (rv != CKR_OK)
            return rv;
    }
    return sks_reader_finish(&r) == 0 ? CKR_OK : CKR_DEVICE_ERROR;
}
