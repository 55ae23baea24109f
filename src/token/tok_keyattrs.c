/*
 * tok_keyattrs.c - the PKCS#11 view of one card key: a private key, a
 * public key and the certificates of its path, all derived from what
 * getKeyAttributes reports (ID, friendly name, algorithm, usage, flags,
 * public key, certificate path). docs/token.md lists every attribute and
 * where its value comes from.
 */
#include <string.h>

#include "pkcs11/sks-pkcs11.h"
#include "token/tok.h"
#include "token/tok_try.h"

static int is_rsa(const tok_card_key *k)
{
    return k->algorithm == SKS_KEYALG_RSA2048 || k->algorithm == SKS_KEYALG_RSA3072 ||
           k->algorithm == SKS_KEYALG_RSA4096;
}

/* Storage attributes shared by the three kinds of objects. */
static CK_RV storage(tok_attrs *a, CK_OBJECT_CLASS cls, CK_BBOOL private_, CK_BBOOL modifiable,
                     CK_BBOOL destroyable, const char *label)
{
    TRY(tok_attrs_set_ulong(a, CKA_CLASS, cls));
    TRY(tok_attrs_set_bool(a, CKA_TOKEN, CK_TRUE));
    TRY(tok_attrs_set_bool(a, CKA_PRIVATE, private_));
    TRY(tok_attrs_set_bool(a, CKA_MODIFIABLE, modifiable));
    TRY(tok_attrs_set(a, CKA_LABEL, label, (CK_ULONG)strlen(label)));
    TRY(tok_attrs_set_bool(a, CKA_COPYABLE, CK_FALSE));
    return tok_attrs_set_bool(a, CKA_DESTROYABLE, destroyable);
}

/* Attributes common to the private and the public key. */
static CK_RV key_common(const tok_card_key *k, tok_attrs *a, CK_OBJECT_CLASS cls)
{
    int generated = (k->flags & SKS_KEYFLAG_GENERATED_ON_CARD) != 0;
    CK_MECHANISM_TYPE gen = CK_UNAVAILABLE_INFORMATION;
    if (generated)
        gen = is_rsa(k) ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN;
    TRY(tok_attrs_set(a, CKA_ID, k->id, (CK_ULONG)k->id_len));
    TRY(tok_attrs_set(a, CKA_START_DATE, NULL, 0));
    TRY(tok_attrs_set(a, CKA_END_DATE, NULL, 0));
    TRY(tok_attrs_set_bool(a, CKA_LOCAL, generated));
    TRY(tok_attrs_set_ulong(a, CKA_KEY_GEN_MECHANISM, gen));
    /* The subject of the end-entity certificate, as NSS expects on keys. */
    tok_attrs subject = {0};
    if (k->cert_count > 0 && tok_cert_attrs(k->cert[0], k->cert_len[0], &subject, 0) == CKR_OK) {
        const tok_attr *s = tok_attrs_find(&subject, CKA_SUBJECT);
        CK_RV rv = tok_attrs_set(a, CKA_SUBJECT, s ? s->value : NULL, s ? s->len : 0);
        tok_attrs_free(&subject);
        TRY(rv);
    } else {
        tok_attrs_free(&subject);
        TRY(tok_attrs_set(a, CKA_SUBJECT, NULL, 0));
    }
    if (k->public_key == NULL)
        return CKR_DEVICE_ERROR;
    return tok_pkey_attrs(k->public_key, cls, a);
}

static CK_RV private_key(const tok_card_key *k, tok_attrs *a)
{
    int rsa = is_rsa(k);
    int migratable = (k->flags & SKS_KEYFLAG_MIGRATABLE) != 0;
    TRY(storage(a, CKO_PRIVATE_KEY, k->pin_policy != 0, CK_TRUE,
                !(k->flags & SKS_KEYFLAG_DELETE_PROTECTED), k->label));
    TRY(key_common(k, a, CKO_PRIVATE_KEY));
    TRY(tok_attrs_set_bool(a, CKA_DERIVE, (k->usage & SKS_USAGE_KEY_AGREEMENT) != 0));
    TRY(tok_attrs_set_bool(a, CKA_SENSITIVE, CK_TRUE));
    TRY(tok_attrs_set_bool(a, CKA_DECRYPT, rsa && (k->usage & SKS_USAGE_DECRYPT)));
    TRY(tok_attrs_set_bool(a, CKA_SIGN, (k->usage & SKS_USAGE_SIGN) != 0));
    TRY(tok_attrs_set_bool(a, CKA_SIGN_RECOVER, CK_FALSE));
    TRY(tok_attrs_set_bool(a, CKA_UNWRAP, rsa && (k->usage & SKS_USAGE_DECRYPT)));
    TRY(tok_attrs_set_bool(a, CKA_EXTRACTABLE, migratable));
    TRY(tok_attrs_set_bool(a, CKA_VENDOR_SKS_BACKUP_ALLOWED, migratable));
    TRY(tok_attrs_set_bool(a, CKA_ALWAYS_SENSITIVE, CK_TRUE));
    TRY(tok_attrs_set_bool(a, CKA_NEVER_EXTRACTABLE, !migratable));
    TRY(tok_attrs_set_bool(a, CKA_WRAP_WITH_TRUSTED, CK_FALSE));
    /* Its PIN policy's CachingSupport false: the card wants the PIN for each use. */
    TRY(tok_attrs_set_bool(a, CKA_ALWAYS_AUTHENTICATE, k->always_authenticate != 0));
    /* The private components exist but are never readable (CKR_ATTRIBUTE_SENSITIVE). */
    static const CK_ATTRIBUTE_TYPE rsa_secret[] = {CKA_PRIVATE_EXPONENT, CKA_PRIME_1,
                                                   CKA_PRIME_2,          CKA_EXPONENT_1,
                                                   CKA_EXPONENT_2,       CKA_COEFFICIENT};
    if (rsa) {
        for (size_t i = 0; i < sizeof(rsa_secret) / sizeof(rsa_secret[0]); i++)
            TRY(tok_attrs_set(a, rsa_secret[i], NULL, 0));
    } else {
        TRY(tok_attrs_set(a, CKA_VALUE, NULL, 0));
    }
    return CKR_OK;
}

static CK_RV public_key(const tok_card_key *k, tok_attrs *a)
{
    int rsa = is_rsa(k);
    TRY(storage(a, CKO_PUBLIC_KEY, CK_FALSE, CK_TRUE, CK_FALSE, k->label));
    TRY(key_common(k, a, CKO_PUBLIC_KEY));
    TRY(tok_attrs_set_bool(a, CKA_DERIVE, CK_FALSE));
    TRY(tok_attrs_set_bool(a, CKA_ENCRYPT, rsa && (k->usage & SKS_USAGE_DECRYPT)));
    TRY(tok_attrs_set_bool(a, CKA_VERIFY, (k->usage & SKS_USAGE_SIGN) != 0));
    TRY(tok_attrs_set_bool(a, CKA_VERIFY_RECOVER, CK_FALSE));
    TRY(tok_attrs_set_bool(a, CKA_WRAP, rsa && (k->usage & SKS_USAGE_DECRYPT)));
    return tok_attrs_set_bool(a, CKA_TRUSTED, CK_FALSE);
}

/*
 * Certificate i of the key's path. The end-entity certificate carries the
 * key's CKA_ID and label; CA certificates carry the SHA-1 of their public key
 * as CKA_ID and their subject's CN as label, so that a search by the key's ID
 * finds exactly one certificate.
 */
static CK_RV certificate(const tok_card_key *k, unsigned i, tok_attrs *a)
{
    const uint8_t *der = k->cert[i];
    size_t len = k->cert_len[i];
    char cn[256];
    uint8_t ca_id[20];
    const char *label = k->label;
    if (i > 0) {
        tok_cert_common_name(der, len, cn, sizeof(cn));
        label = cn;
        if (tok_cert_key_id(der, len, ca_id) != 0)
            return CKR_DEVICE_ERROR;
    }
    TRY(storage(a, CKO_CERTIFICATE, CK_FALSE, CK_FALSE, CK_FALSE, label));
    TRY(tok_attrs_set_ulong(a, CKA_CERTIFICATE_TYPE, CKC_X_509));
    TRY(tok_attrs_set_bool(a, CKA_TRUSTED, CK_FALSE));
    /* 1: token user (the key's own certificate), 2: authority. */
    TRY(tok_attrs_set_ulong(a, CKA_CERTIFICATE_CATEGORY, i == 0 ? 1 : 2));
    if (i == 0)
        TRY(tok_attrs_set(a, CKA_ID, k->id, (CK_ULONG)k->id_len));
    else
        TRY(tok_attrs_set(a, CKA_ID, ca_id, sizeof(ca_id)));
    TRY(tok_attrs_set(a, CKA_VALUE, der, (CK_ULONG)len));
    TRY(tok_attrs_set(a, CKA_URL, NULL, 0));
    TRY(tok_attrs_set(a, CKA_HASH_OF_SUBJECT_PUBLIC_KEY, NULL, 0));
    TRY(tok_attrs_set(a, CKA_HASH_OF_ISSUER_PUBLIC_KEY, NULL, 0));
    TRY(tok_attrs_set_ulong(a, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0));
    CK_RV rv = tok_cert_attrs(der, len, a, 0);
    return rv == CKR_ATTRIBUTE_VALUE_INVALID ? CKR_DEVICE_ERROR : rv;
}

CK_RV tok_keyattrs_build(const tok_card_key *key, unsigned kind, tok_attrs *out)
{
    if (kind == TOK_KIND_PRIVATE_KEY)
        return private_key(key, out);
    if (kind == TOK_KIND_PUBLIC_KEY)
        return public_key(key, out);
    if (kind >= TOK_KIND_CERT_FIRST && kind - TOK_KIND_CERT_FIRST < key->cert_count)
        return certificate(key, kind - TOK_KIND_CERT_FIRST, out);
    return CKR_OBJECT_HANDLE_INVALID;
}
