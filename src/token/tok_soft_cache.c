/*
 * tok_soft_cache.c - what the issuer token of no-card mode keeps between
 * injection blobs (tok_inject_wrap.c), so that a blob costs its
 * cryptography and not the re-encoding of keys that do not change:
 *
 *   for a software private key object (K2): its PKCS#8 PrivateKeyInfo DER
 *   and the card's algorithm byte for it;
 *   for a public key object (K1): its EVP_PKEY, the SHA-256 of its
 *   SubjectPublicKeyInfo DER (the binding of an injection) and, for RSA, an
 *   RSAES-OAEP (SHA-256) encryption context made once.
 *
 * An entry belongs to one object (its tok_session_object and handle) and
 * holds a copy of the attributes it was made from; every use compares them
 * with the object's (a memcmp, far cheaper than any encoding) and remakes
 * the entry when they differ, so that what a blob carries is always the
 * object's current key, whatever changed it. tok_soft_cache_forget() drops an object's entry when
 * the object goes (tok_inject_object_gone: C_DestroyObject, its session closed, logout, C_Finalize)
 * or its attributes are replaced (tok_issuer_object_replace). The PKCS#8 DER and the copy of a
 * private key's attributes are as secret as the key: they live only in module memory, are never
 * written anywhere, and are cleansed before they are freed. The module's lock serialises every use.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "protocol/sks_crypto.h"
#include "protocol/sks_keys.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

enum cache_kind {
    CACHE_PRIVATE, /* K2 */
    CACHE_PUBLIC,  /* K1 */
};

typedef struct cache_entry {
    const tok_session_object *obj;
    CK_OBJECT_HANDLE handle;
    enum cache_kind kind;
    uint8_t *sources; /* the copy of the attributes it was made from (secret for K2) */
    size_t sources_len;
    tok_soft_private_view priv; /* CACHE_PRIVATE: priv.der is ours */
    tok_soft_public_view pub;   /* CACHE_PUBLIC: pub.key is ours */
    EVP_PKEY_CTX *oaep;         /* CACHE_PUBLIC, RSA: made on first use */
    struct cache_entry *next;
} cache_entry;

static cache_entry *entries;

/* The attributes an entry is made from: what tok_soft_private_key and tok_pkey_from_attrs read. */
static const CK_ATTRIBUTE_TYPE private_sources[] = {
    CKA_CLASS,     CKA_KEY_TYPE, CKA_MODULUS,         CKA_PUBLIC_EXPONENT, CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,   CKA_PRIME_2,  CKA_EXPONENT_1,      CKA_EXPONENT_2,      CKA_COEFFICIENT,
    CKA_EC_PARAMS, CKA_VALUE,    CKA_PUBLIC_KEY_INFO,
};
static const CK_ATTRIBUTE_TYPE public_sources[] = {
    CKA_CLASS,           CKA_KEY_TYPE,  CKA_PUBLIC_KEY_INFO, CKA_MODULUS,
    CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS, CKA_EC_POINT,
};

/* One source attribute in an entry's copy: its type, whether present, its length. */
typedef struct {
    CK_ATTRIBUTE_TYPE type;
    CK_ULONG present, len;
} source_head;

/*
 * The size of the copy of an object's source attributes: for each type of
 * `types` in order, a source_head then the value.
 */
static size_t sources_size(const tok_attrs *a, const CK_ATTRIBUTE_TYPE *types, size_t ntypes)
{
    size_t n = 0;
    for (size_t i = 0; i < ntypes; i++) {
        const tok_attr *e = tok_attrs_find(a, types[i]);
        n += sizeof(source_head) + (e != NULL ? e->len : 0);
    }
    return n;
}

/*
 * Write (out != NULL) or compare with (out == NULL) the copy `copy` of an
 * object's source attributes. Writing: 0. Comparing: 0 when equal, -1 not.
 */
static int sources_walk(const tok_attrs *a, const CK_ATTRIBUTE_TYPE *types, size_t ntypes,
                        const uint8_t *copy, size_t copy_len, uint8_t *out)
{
    size_t at = 0;
    for (size_t i = 0; i < ntypes; i++) {
        const tok_attr *e = tok_attrs_find(a, types[i]);
        source_head h;
        memset(&h, 0, sizeof(h));
        h.type = types[i];
        h.present = e != NULL;
        h.len = e != NULL ? e->len : 0;
        if (copy_len - at < sizeof(h) || copy_len - at - sizeof(h) < h.len)
            return -1;
        if (out != NULL) {
            memcpy(out + at, &h, sizeof(h));
            if (h.len > 0)
                memcpy(out + at + sizeof(h), e->value, h.len);
        } else if (memcmp(copy + at, &h, sizeof(h)) != 0 ||
                   (h.len > 0 && memcmp(copy + at + sizeof(h), e->value, h.len) != 0)) {
            return -1;
        }
        at += sizeof(h) + h.len;
    }
    return at == copy_len ? 0 : -1;
}

static void entry_free(cache_entry *e)
{
    OPENSSL_clear_free(e->sources, e->sources_len);
    OPENSSL_clear_free((void *)e->priv.der, e->priv.len);
    EVP_PKEY_free(e->pub.key);
    EVP_PKEY_CTX_free(e->oaep);
    OPENSSL_cleanse(e, sizeof(*e));
    free(e);
}

void tok_soft_cache_forget(const tok_session_object *o)
{
    cache_entry **pp = &entries;
    while (*pp != NULL) {
        cache_entry *e = *pp;
        if (e->obj == o) {
            *pp = e->next;
            entry_free(e);
        } else {
            pp = &e->next;
        }
    }
}

/* The entry of this object and kind, unlinked from the list (the caller relinks or frees it). */
static cache_entry *take_entry(const tok_session_object *o, enum cache_kind kind)
{
    for (cache_entry **pp = &entries; *pp != NULL; pp = &(*pp)->next) {
        cache_entry *e = *pp;
        if (e->obj == o && e->kind == kind) {
            *pp = e->next;
            e->next = NULL;
            return e;
        }
    }
    return NULL;
}

/* Keep an entry at the head of the list (the last used is found first). */
static void put_entry(cache_entry *e)
{
    e->next = entries;
    entries = e;
}

/* A new entry for an object with the copy of its source attributes, or NULL (out of memory). */
static cache_entry *new_entry(const tok_session_object *o, enum cache_kind kind,
                              const CK_ATTRIBUTE_TYPE *types, size_t ntypes)
{
    cache_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->obj = o;
    e->handle = o->handle;
    e->kind = kind;
    e->sources_len = sources_size(&o->attrs, types, ntypes);
    e->sources = OPENSSL_malloc(e->sources_len);
    if (e->sources == NULL ||
        sources_walk(&o->attrs, types, ntypes, e->sources, e->sources_len, e->sources) != 0) {
        entry_free(e);
        return NULL;
    }
    return e;
}

/*
 * The object's entry of `kind` if it is still the object's current
 * content (the same handle, the same source attributes); a stale one is
 * dropped. NULL when there is none to use.
 */
static cache_entry *find_fresh(const tok_session_object *o, enum cache_kind kind,
                               const CK_ATTRIBUTE_TYPE *types, size_t ntypes)
{
    cache_entry *e = take_entry(o, kind);
    if (e == NULL)
        return NULL;
    /* An address can be reused by a later object: the handle tells them apart. */
    if (e->handle == o->handle &&
        sources_walk(&o->attrs, types, ntypes, e->sources, e->sources_len, NULL) == 0) {
        put_entry(e);
        return e;
    }
    entry_free(e); /* the object changed since: made again */
    return NULL;
}

#define NSOURCES(t) (sizeof(t) / sizeof((t)[0]))

CK_RV tok_soft_cache_private(const tok_session_object *o, tok_soft_private_view *out)
{
    memset(out, 0, sizeof(*out));
    cache_entry *e = find_fresh(o, CACHE_PRIVATE, private_sources, NSOURCES(private_sources));
    if (e == NULL) {
        EVP_PKEY *pk = tok_soft_private_key(&o->attrs);
        if (pk == NULL)
            return CKR_KEY_NOT_WRAPPABLE;
        CK_RV rv = CKR_OK;
        e = new_entry(o, CACHE_PRIVATE, private_sources, NSOURCES(private_sources));
        if (e == NULL)
            rv = CKR_HOST_MEMORY;
        /* A key the card does not take (alg 0) is remembered without its PKCS#8. */
        if (rv == CKR_OK && (e->priv.alg = sks_key_algorithm(pk)) != 0) {
            uint8_t *der = NULL;
            size_t len = 0;
            rv = sks_pkcs8_encode(pk, &der, &len) == 0 ? CKR_OK : CKR_FUNCTION_FAILED;
            e->priv.der = der;
            e->priv.len = len;
        }
        EVP_PKEY_free(pk);
        if (rv != CKR_OK) {
            if (e != NULL)
                entry_free(e);
            return rv;
        }
        put_entry(e);
    }
    *out = e->priv;
    return CKR_OK;
}

/* The object's current public key entry (made if need be). */
static CK_RV public_entry(const tok_session_object *o, cache_entry **out)
{
    CK_RV rv = CKR_OK;
    cache_entry *e = find_fresh(o, CACHE_PUBLIC, public_sources, NSOURCES(public_sources));
    if (e != NULL) {
        *out = e;
        return CKR_OK;
    }
    EVP_PKEY *pk = tok_pkey_from_attrs(&o->attrs);
    if (pk == NULL)
        return CKR_KEY_HANDLE_INVALID;
    unsigned char *spki = NULL;
    int spki_len = i2d_PUBKEY(pk, &spki);
    e = new_entry(o, CACHE_PUBLIC, public_sources, NSOURCES(public_sources));
    if (e == NULL)
        rv = CKR_HOST_MEMORY;
    else if (spki_len <= 0 || sks_sha256(spki, (size_t)spki_len, e->pub.spki_hash) != 0)
        rv = CKR_FUNCTION_FAILED;
    OPENSSL_free(spki);
    if (rv != CKR_OK) {
        if (e != NULL)
            entry_free(e);
        EVP_PKEY_free(pk);
        return rv;
    }
    e->pub.key = pk;
    e->pub.bits = (CK_ULONG)EVP_PKEY_get_bits(pk);
    e->pub.alg = sks_key_algorithm(pk);
    e->pub.size = (size_t)EVP_PKEY_get_size(pk);
    put_entry(e);
    *out = e;
    return CKR_OK;
}

CK_RV tok_soft_cache_public(const tok_session_object *o, tok_soft_public_view *out)
{
    cache_entry *e = NULL;
    memset(out, 0, sizeof(*out));
    CK_RV rv = public_entry(o, &e);
    if (rv == CKR_OK)
        *out = e->pub;
    return rv;
}

/* The entry's RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label) context, made on first use. */
static EVP_PKEY_CTX *oaep_context(cache_entry *e)
{
    if (e->oaep != NULL)
        return e->oaep;
    const EVP_MD *sha256 = tok_ossl_md("SHA256");
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(tok_ossl_ctx(), e->pub.key, NULL);
    if (sha256 == NULL || ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, sha256) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, sha256) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    return e->oaep = ctx;
}

CK_RV tok_soft_cache_oaep(const tok_session_object *o, const uint8_t *in, size_t len, uint8_t *out,
                          size_t *out_len)
{
    cache_entry *e = NULL;
    CK_RV rv = public_entry(o, &e);
    if (rv != CKR_OK)
        return rv;
    size_t k = e->pub.size;
    /* OAEP with SHA-256 takes at most k - 2 * 32 - 2 bytes. */
    if (!EVP_PKEY_is_a(e->pub.key, "RSA") || k < 2 * 32 + 2 || len > k - 2 * 32 - 2)
        return CKR_DATA_LEN_RANGE;
    if (*out_len < k)
        return CKR_BUFFER_TOO_SMALL;
    EVP_PKEY_CTX *ctx = oaep_context(e);
    return ctx != NULL && EVP_PKEY_encrypt(ctx, out, out_len, in, len) == 1 ? CKR_OK
                                                                            : CKR_FUNCTION_FAILED;
}
