/*
 * tok_attrs.c - attribute lists: the PKCS#11 attributes of one object as
 * owned (type, length, value) entries, with the template operations the
 * entry points need (find, match, merge, C_GetAttributeValue copy-out).
 * Values are zeroized when freed: secret keys live in these lists.
 */
#include <stdlib.h>
#include <string.h>

#include "protocol/sks_crypto.h"
#include "token/tok.h"

static tok_attr *find_mut(tok_attrs *a, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].type == type)
            return &a->v[i];
    }
    return NULL;
}

const tok_attr *tok_attrs_find(const tok_attrs *a, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].type == type)
            return &a->v[i];
    }
    return NULL;
}

static void free_value(tok_attr *e)
{
    if (e->value != NULL) {
        sks_cleanse(e->value, e->len);
        free(e->value);
    }
    e->value = NULL;
    e->len = 0;
}

CK_RV tok_attrs_set(tok_attrs *a, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len)
{
    uint8_t *copy = NULL;
    if (len > 0) {
        if (value == NULL)
            return CKR_ARGUMENTS_BAD;
        copy = malloc(len);
        if (copy == NULL)
            return CKR_HOST_MEMORY;
        memcpy(copy, value, len);
    }
    tok_attr *e = find_mut(a, type);
    if (e == NULL) {
        if (a->n == a->cap) {
            size_t cap = a->cap ? a->cap * 2 : 16;
            tok_attr *v = realloc(a->v, cap * sizeof(*v));
            if (v == NULL) {
                free(copy);
                return CKR_HOST_MEMORY;
            }
            a->v = v;
            a->cap = cap;
        }
        e = &a->v[a->n++];
        e->type = type;
        e->value = NULL;
        e->len = 0;
    } else {
        free_value(e);
    }
    e->value = copy;
    e->len = len;
    return CKR_OK;
}

CK_RV tok_attrs_set_ulong(tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
    return tok_attrs_set(a, type, &v, sizeof(v));
}

CK_RV tok_attrs_set_bool(tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_BBOOL v)
{
    v = v ? CK_TRUE : CK_FALSE;
    return tok_attrs_set(a, type, &v, sizeof(v));
}

CK_RV tok_attrs_default(tok_attrs *a, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len)
{
    if (tok_attrs_find(a, type) != NULL)
        return CKR_OK;
    return tok_attrs_set(a, type, value, len);
}

CK_RV tok_attrs_default_bool(tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_BBOOL v)
{
    if (tok_attrs_find(a, type) != NULL)
        return CKR_OK;
    return tok_attrs_set_bool(a, type, v);
}

CK_RV tok_attrs_default_ulong(tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
    if (tok_attrs_find(a, type) != NULL)
        return CKR_OK;
    return tok_attrs_set_ulong(a, type, v);
}

int tok_attrs_get_ulong(const tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_ULONG *v)
{
    const tok_attr *e = tok_attrs_find(a, type);
    if (e == NULL || e->len != sizeof(CK_ULONG))
        return 0;
    memcpy(v, e->value, sizeof(*v));
    return 1;
}

int tok_attrs_get_bool(const tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_BBOOL *v)
{
    const tok_attr *e = tok_attrs_find(a, type);
    if (e == NULL || e->len != sizeof(CK_BBOOL))
        return 0;
    *v = e->value[0] ? CK_TRUE : CK_FALSE;
    return 1;
}

CK_BBOOL tok_attrs_bool(const tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_BBOOL dflt)
{
    CK_BBOOL v;
    return tok_attrs_get_bool(a, type, &v) ? v : dflt;
}

void tok_attrs_remove(tok_attrs *a, CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i].type == type) {
            free_value(&a->v[i]);
            a->v[i] = a->v[a->n - 1];
            a->n--;
            return;
        }
    }
}

void tok_attrs_free(tok_attrs *a)
{
    for (size_t i = 0; i < a->n; i++)
        free_value(&a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

CK_RV tok_attrs_copy(tok_attrs *dst, const tok_attrs *src)
{
    for (size_t i = 0; i < src->n; i++) {
        CK_RV rv = tok_attrs_set(dst, src->v[i].type, src->v[i].value, src->v[i].len);
        if (rv != CKR_OK)
            return rv;
    }
    return CKR_OK;
}

CK_RV tok_attrs_merge_tmpl(tok_attrs *a, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        CK_RV rv = tok_attrs_set(a, tmpl[i].type, tmpl[i].pValue, tmpl[i].ulValueLen);
        if (rv != CKR_OK)
            return rv;
    }
    return CKR_OK;
}

int tok_attrs_match(const tok_attrs *a, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        const tok_attr *e = tok_attrs_find(a, tmpl[i].type);
        if (e == NULL || e->len != tmpl[i].ulValueLen)
            return 0;
        if (e->len > 0 && (tmpl[i].pValue == NULL || memcmp(e->value, tmpl[i].pValue, e->len) != 0))
            return 0;
    }
    return 1;
}

CK_ULONG tok_attrs_size(const tok_attrs *a)
{
    CK_ULONG size = 0;
    for (size_t i = 0; i < a->n; i++)
        size += sizeof(CK_ATTRIBUTE) + a->v[i].len;
    return size;
}

CK_RV tok_attrs_copy_out(const tok_attrs *a, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                         int (*hidden)(CK_ATTRIBUTE_TYPE type, const tok_attrs *a))
{
    CK_RV rv = CKR_OK;
    for (CK_ULONG i = 0; i < n; i++) {
        const tok_attr *e = tok_attrs_find(a, tmpl[i].type);
        if (e == NULL) {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
        } else if (hidden != NULL && hidden(tmpl[i].type, a)) {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_SENSITIVE;
        } else if (tmpl[i].pValue == NULL) {
            tmpl[i].ulValueLen = e->len;
        } else if (tmpl[i].ulValueLen < e->len) {
            tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            if (e->len > 0)
                memcpy(tmpl[i].pValue, e->value, e->len);
            tmpl[i].ulValueLen = e->len;
        }
    }
    return rv;
}

const CK_ATTRIBUTE *tok_tmpl_find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
    if (t == NULL)
        return NULL;
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].type == type)
            return &t[i];
    }
    return NULL;
}

int tok_tmpl_get_ulong(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_ULONG *v)
{
    const CK_ATTRIBUTE *a = tok_tmpl_find(t, n, type);
    if (a == NULL || a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG))
        return 0;
    memcpy(v, a->pValue, sizeof(*v));
    return 1;
}

int tok_tmpl_get_bool(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_BBOOL *v)
{
    const CK_ATTRIBUTE *a = tok_tmpl_find(t, n, type);
    if (a == NULL || a->pValue == NULL || a->ulValueLen != sizeof(CK_BBOOL))
        return 0;
    *v = *(const CK_BBOOL *)a->pValue ? CK_TRUE : CK_FALSE;
    return 1;
}

CK_RV tok_tmpl_valid(const CK_ATTRIBUTE *t, CK_ULONG n)
{
    if (t == NULL)
        return n == 0 ? CKR_OK : CKR_ARGUMENTS_BAD;
    for (CK_ULONG i = 0; i < n; i++) {
        if (t[i].pValue == NULL && t[i].ulValueLen != 0)
            return CKR_ARGUMENTS_BAD;
    }
    return CKR_OK;
}
