/*
 * tok_attr_rules.c - the attribute rules of PKCS#11 v2.40 (the footnotes of
 * its object tables) as one table, checked in one place for every template
 * the module accepts: C_CreateObject, C_GenerateKey(Pair), C_UnwrapKey,
 * C_DeriveKey, C_CopyObject and C_SetAttributeValue.
 *
 * A row says: for objects in `scope`, attribute `type` has value kind
 * `kind` and the rules in `flags`. An attribute with no row for the
 * object's scope does not exist for that object (CKR_ATTRIBUTE_TYPE_INVALID).
 * Attributes the module does not support at all (CKA_WRAP_TEMPLATE,
 * CKA_UNWRAP_TEMPLATE, vendor attributes) have no row either.
 */
#include <string.h>

#include "token/tok.h"
#include "token/tok_try.h"
#include "pkcs11/sks-pkcs11.h"

/* Scopes: which objects a row applies to. */
#define SC_DATA         (1u << 0)
#define SC_CERT         (1u << 1)
#define SC_PUB          (1u << 2)
#define SC_PRIV         (1u << 3)
#define SC_SECRET       (1u << 4)
#define SC_RSA_PUB      (1u << 5)
#define SC_RSA_PRIV     (1u << 6)
#define SC_EC_PUB       (1u << 7)
#define SC_EC_PRIV      (1u << 8)
#define SC_SECRET_VALUE (1u << 9) /* AES and generic secret keys */
#define SC_AES          (1u << 10)
#define SC_GENERIC      (1u << 11)
#define SC_SKS_OBJECT   (1u << 12) /* provisioning objects and PUK/PIN policies (tok_prov.h) */
#define SC_SKS_POLICY   (1u << 13) /* PUK and PIN policies */
#define SC_KEY          (SC_PUB | SC_PRIV | SC_SECRET)
#define SC_STORAGE      (SC_DATA | SC_CERT | SC_KEY)

/* Flags: the standard's footnote numbers. */
#define F_REQ_CREATE   (1u << 1)  /* 1: must be given to C_CreateObject */
#define F_NO_CREATE    (1u << 2)  /* 2: must not be given to C_CreateObject */
#define F_REQ_GENERATE (1u << 3)  /* 3: must be given to C_GenerateKey(Pair) */
#define F_NO_GENERATE  (1u << 4)  /* 4: must not be given to C_GenerateKey(Pair) */
#define F_REQ_UNWRAP   (1u << 5)  /* 5: must be given to C_UnwrapKey */
#define F_NO_UNWRAP    (1u << 6)  /* 6: must not be given to C_UnwrapKey */
#define F_SENSITIVE    (1u << 7)  /* 7: unreadable if SENSITIVE or !EXTRACTABLE */
#define F_MODIFIABLE   (1u << 8)  /* 8: C_SetAttributeValue / C_CopyObject may change it */
#define F_SO_TRUE      (1u << 10) /* 10: only the SO may set it to true */
#define F_STAYS_TRUE   (1u << 11) /* 11: read-only once true */
#define F_STAYS_FALSE  (1u << 12) /* 12: read-only once false */
#define F_COPY         (1u << 13) /* C_CopyObject may change it (storage attributes) */

typedef struct {
    CK_ATTRIBUTE_TYPE type;
    enum tok_attr_kind kind;
    unsigned scope;
    unsigned flags;
} rule;

#define NO_CGU (F_NO_CREATE | F_NO_GENERATE | F_NO_UNWRAP)
#define NO_GU  (F_NO_GENERATE | F_NO_UNWRAP)

static const rule rules[] = {
    /* Common object and storage attributes. */
    {CKA_CLASS, TOK_AK_ULONG, SC_STORAGE, F_REQ_CREATE},
    {CKA_TOKEN, TOK_AK_BOOL, SC_STORAGE, F_COPY},
    {CKA_PRIVATE, TOK_AK_BOOL, SC_STORAGE, F_COPY},
    {CKA_MODIFIABLE, TOK_AK_BOOL, SC_STORAGE, F_COPY},
    {CKA_LABEL, TOK_AK_BYTES, SC_STORAGE, F_MODIFIABLE},
    {CKA_COPYABLE, TOK_AK_BOOL, SC_STORAGE, 0},
    {CKA_DESTROYABLE, TOK_AK_BOOL, SC_STORAGE, 0},
    /* Data objects. */
    {CKA_APPLICATION, TOK_AK_BYTES, SC_DATA, F_MODIFIABLE},
    {CKA_OBJECT_ID, TOK_AK_BYTES, SC_DATA, F_MODIFIABLE},
    {CKA_VALUE, TOK_AK_BYTES, SC_DATA, F_MODIFIABLE},
    /* Certificates (X.509 only). */
    {CKA_CERTIFICATE_TYPE, TOK_AK_ULONG, SC_CERT, F_REQ_CREATE},
    {CKA_TRUSTED, TOK_AK_BOOL, SC_CERT | SC_PUB | SC_SECRET, F_SO_TRUE},
    {CKA_CERTIFICATE_CATEGORY, TOK_AK_ULONG, SC_CERT, 0},
    {CKA_CHECK_VALUE, TOK_AK_BYTES, SC_CERT | SC_SECRET, 0},
    {CKA_START_DATE, TOK_AK_DATE, SC_CERT, 0},
    {CKA_END_DATE, TOK_AK_DATE, SC_CERT, 0},
    {CKA_PUBLIC_KEY_INFO, TOK_AK_BYTES, SC_CERT | SC_PUB | SC_PRIV, 0},
    {CKA_SUBJECT, TOK_AK_BYTES, SC_CERT, F_REQ_CREATE},
    {CKA_ID, TOK_AK_BYTES, SC_CERT, F_MODIFIABLE},
    {CKA_ISSUER, TOK_AK_BYTES, SC_CERT, F_MODIFIABLE},
    {CKA_SERIAL_NUMBER, TOK_AK_BYTES, SC_CERT, F_MODIFIABLE},
    {CKA_VALUE, TOK_AK_BYTES, SC_CERT, F_REQ_CREATE},
    {CKA_URL, TOK_AK_BYTES, SC_CERT, 0},
    {CKA_HASH_OF_SUBJECT_PUBLIC_KEY, TOK_AK_BYTES, SC_CERT, 0},
    {CKA_HASH_OF_ISSUER_PUBLIC_KEY, TOK_AK_BYTES, SC_CERT, 0},
    {CKA_JAVA_MIDP_SECURITY_DOMAIN, TOK_AK_ULONG, SC_CERT, 0},
    {CKA_NAME_HASH_ALGORITHM, TOK_AK_ULONG, SC_CERT, 0},
    /* Keys in general. */
    {CKA_KEY_TYPE, TOK_AK_ULONG, SC_KEY, F_REQ_CREATE | F_REQ_UNWRAP},
    {CKA_ID, TOK_AK_BYTES, SC_KEY, F_MODIFIABLE},
    {CKA_START_DATE, TOK_AK_DATE, SC_KEY, F_MODIFIABLE},
    {CKA_END_DATE, TOK_AK_DATE, SC_KEY, F_MODIFIABLE},
    {CKA_DERIVE, TOK_AK_BOOL, SC_KEY, F_MODIFIABLE},
    {CKA_LOCAL, TOK_AK_BOOL, SC_KEY, NO_CGU},
    {CKA_KEY_GEN_MECHANISM, TOK_AK_ULONG, SC_KEY, NO_CGU},
    {CKA_ALLOWED_MECHANISMS, TOK_AK_ULONG_ARRAY, SC_KEY, 0},
    /* Public keys. */
    {CKA_SUBJECT, TOK_AK_BYTES, SC_PUB | SC_PRIV, F_MODIFIABLE},
    {CKA_ENCRYPT, TOK_AK_BOOL, SC_PUB | SC_SECRET, F_MODIFIABLE},
    {CKA_VERIFY, TOK_AK_BOOL, SC_PUB | SC_SECRET, F_MODIFIABLE},
    {CKA_VERIFY_RECOVER, TOK_AK_BOOL, SC_PUB, F_MODIFIABLE},
    {CKA_WRAP, TOK_AK_BOOL, SC_PUB | SC_SECRET, F_MODIFIABLE},
    /* Private and secret keys. */
    {CKA_SENSITIVE, TOK_AK_BOOL, SC_PRIV | SC_SECRET, F_MODIFIABLE | F_STAYS_TRUE},
    {CKA_DECRYPT, TOK_AK_BOOL, SC_PRIV | SC_SECRET, F_MODIFIABLE},
    {CKA_SIGN, TOK_AK_BOOL, SC_PRIV | SC_SECRET, F_MODIFIABLE},
    {CKA_SIGN_RECOVER, TOK_AK_BOOL, SC_PRIV, F_MODIFIABLE},
    {CKA_UNWRAP, TOK_AK_BOOL, SC_PRIV | SC_SECRET, F_MODIFIABLE},
    {CKA_EXTRACTABLE, TOK_AK_BOOL, SC_PRIV | SC_SECRET, F_MODIFIABLE | F_STAYS_FALSE},
    {CKA_ALWAYS_SENSITIVE, TOK_AK_BOOL, SC_PRIV | SC_SECRET, NO_CGU},
    {CKA_NEVER_EXTRACTABLE, TOK_AK_BOOL, SC_PRIV | SC_SECRET, NO_CGU},
    {CKA_WRAP_WITH_TRUSTED, TOK_AK_BOOL, SC_PRIV | SC_SECRET, F_STAYS_TRUE},
    {CKA_ALWAYS_AUTHENTICATE, TOK_AK_BOOL, SC_PRIV, 0},
    /* RSA. */
    {CKA_MODULUS, TOK_AK_BYTES, SC_RSA_PUB, F_REQ_CREATE | F_NO_GENERATE},
    {CKA_MODULUS_BITS, TOK_AK_ULONG, SC_RSA_PUB, F_NO_CREATE | F_REQ_GENERATE},
    {CKA_PUBLIC_EXPONENT, TOK_AK_BYTES, SC_RSA_PUB, F_REQ_CREATE},
    {CKA_MODULUS, TOK_AK_BYTES, SC_RSA_PRIV, F_REQ_CREATE | NO_GU},
    {CKA_PUBLIC_EXPONENT, TOK_AK_BYTES, SC_RSA_PRIV, NO_GU},
    {CKA_PRIVATE_EXPONENT, TOK_AK_BYTES, SC_RSA_PRIV, F_REQ_CREATE | NO_GU | F_SENSITIVE},
    {CKA_PRIME_1, TOK_AK_BYTES, SC_RSA_PRIV, NO_GU | F_SENSITIVE},
    {CKA_PRIME_2, TOK_AK_BYTES, SC_RSA_PRIV, NO_GU | F_SENSITIVE},
    {CKA_EXPONENT_1, TOK_AK_BYTES, SC_RSA_PRIV, NO_GU | F_SENSITIVE},
    {CKA_EXPONENT_2, TOK_AK_BYTES, SC_RSA_PRIV, NO_GU | F_SENSITIVE},
    {CKA_COEFFICIENT, TOK_AK_BYTES, SC_RSA_PRIV, NO_GU | F_SENSITIVE},
    /* EC. */
    {CKA_EC_PARAMS, TOK_AK_BYTES, SC_EC_PUB, F_REQ_CREATE | F_REQ_GENERATE},
    {CKA_EC_POINT, TOK_AK_BYTES, SC_EC_PUB, F_REQ_CREATE | F_NO_GENERATE},
    {CKA_EC_PARAMS, TOK_AK_BYTES, SC_EC_PRIV, F_REQ_CREATE | NO_GU},
    {CKA_VALUE, TOK_AK_BYTES, SC_EC_PRIV, F_REQ_CREATE | NO_GU | F_SENSITIVE},
    /* AES and generic secret keys. */
    {CKA_VALUE, TOK_AK_BYTES, SC_SECRET_VALUE, F_REQ_CREATE | NO_GU | F_SENSITIVE},
    {CKA_VALUE_LEN, TOK_AK_ULONG, SC_AES, F_NO_CREATE | F_REQ_GENERATE | F_NO_UNWRAP},
    {CKA_VALUE_LEN, TOK_AK_ULONG, SC_GENERIC, F_NO_CREATE | F_REQ_GENERATE},
    /* SKS provisioning objects and policies: session objects made by the vendor mechanisms. */
    {CKA_CLASS, TOK_AK_ULONG, SC_SKS_OBJECT, 0},
    {CKA_TOKEN, TOK_AK_BOOL, SC_SKS_OBJECT, 0},
    {CKA_PRIVATE, TOK_AK_BOOL, SC_SKS_OBJECT, NO_CGU},
    {CKA_MODIFIABLE, TOK_AK_BOOL, SC_SKS_OBJECT, 0},
    {CKA_LABEL, TOK_AK_BYTES, SC_SKS_OBJECT, F_MODIFIABLE},
    {CKA_COPYABLE, TOK_AK_BOOL, SC_SKS_OBJECT, NO_CGU},
    {CKA_DESTROYABLE, TOK_AK_BOOL, SC_SKS_OBJECT, 0},
    {CKA_ID, TOK_AK_BYTES, SC_SKS_POLICY, NO_CGU},
    {CKA_VENDOR_SKS_CARD_HANDLE, TOK_AK_ULONG, SC_SKS_OBJECT, NO_CGU},
    /* Injection session keys (S1, tok_inject_unwrap.c): set by the module only. */
    {CKA_VENDOR_SKS_INJECTION_ONLY, TOK_AK_BOOL, SC_SECRET, NO_CGU},
    {CKA_VENDOR_SKS_CARD_HANDLE, TOK_AK_ULONG, SC_SECRET, NO_CGU},
    /* Issuer-side S1 bound to a card key (tok_inject_wrap.c): set by the module only. */
    {CKA_VENDOR_SKS_INJECTION_AAD, TOK_AK_BYTES, SC_SECRET, NO_CGU},
    /* Backup under the DKEK allowed (the card's Migratable flag): set at creation only. */
    {CKA_VENDOR_SKS_BACKUP_ALLOWED, TOK_AK_BOOL, SC_PRIV, 0},
};

#define NRULES (sizeof(rules) / sizeof(rules[0]))

/* The scopes an object of this class and key type belongs to (0: class not supported). */
static unsigned object_scope(CK_OBJECT_CLASS cls, CK_KEY_TYPE kt)
{
    switch (cls) {
    case CKO_DATA:
        return SC_DATA;
    case CKO_CERTIFICATE:
        return SC_CERT;
    case CKO_PUBLIC_KEY:
        if (kt == CKK_RSA)
            return SC_PUB | SC_RSA_PUB;
        if (kt == CKK_EC)
            return SC_PUB | SC_EC_PUB;
        return SC_PUB;
    case CKO_PRIVATE_KEY:
        if (kt == CKK_RSA)
            return SC_PRIV | SC_RSA_PRIV;
        if (kt == CKK_EC)
            return SC_PRIV | SC_EC_PRIV;
        return SC_PRIV;
    case CKO_SECRET_KEY:
        if (kt == CKK_AES)
            return SC_SECRET | SC_SECRET_VALUE | SC_AES;
        if (kt == CKK_GENERIC_SECRET)
            return SC_SECRET | SC_SECRET_VALUE | SC_GENERIC;
        return SC_SECRET;
    case CKO_VENDOR_SKS_PROVISIONING:
        return SC_SKS_OBJECT;
    case CKO_VENDOR_SKS_PUK_POLICY:
    case CKO_VENDOR_SKS_PIN_POLICY:
        return SC_SKS_OBJECT | SC_SKS_POLICY;
    default:
        return 0;
    }
}

static const rule *find_rule(CK_ATTRIBUTE_TYPE type, unsigned scope)
{
    for (size_t i = 0; i < NRULES; i++) {
        if (rules[i].type == type && (rules[i].scope & scope) != 0)
            return &rules[i];
    }
    return NULL;
}

enum tok_attr_kind tok_rules_kind(CK_ATTRIBUTE_TYPE type)
{
    for (size_t i = 0; i < NRULES; i++) {
        if (rules[i].type == type)
            return rules[i].kind;
    }
    return TOK_AK_BYTES;
}

static int value_ok(enum tok_attr_kind kind, const CK_ATTRIBUTE *a)
{
    switch (kind) {
    case TOK_AK_BOOL:
        return a->ulValueLen == sizeof(CK_BBOOL) && (*(const CK_BBOOL *)a->pValue == CK_TRUE ||
                                                     *(const CK_BBOOL *)a->pValue == CK_FALSE);
    case TOK_AK_ULONG:
        return a->ulValueLen == sizeof(CK_ULONG);
    case TOK_AK_DATE:
        if (a->ulValueLen == 0)
            return 1;
        if (a->ulValueLen != sizeof(CK_DATE))
            return 0;
        for (size_t i = 0; i < sizeof(CK_DATE); i++) {
            unsigned char c = ((const unsigned char *)a->pValue)[i];
            if (c < '0' || c > '9')
                return 0;
        }
        return 1;
    case TOK_AK_ULONG_ARRAY:
        return a->ulValueLen % sizeof(CK_ULONG) == 0;
    default:
        return 1;
    }
}

static unsigned forbidden_for(enum tok_op op)
{
    switch (op) {
    case TOK_OP_CREATE:
        return F_NO_CREATE;
    case TOK_OP_GENERATE:
    case TOK_OP_DERIVE:
        return F_NO_GENERATE;
    case TOK_OP_UNWRAP:
        return F_NO_UNWRAP;
    default:
        return 0;
    }
}

static unsigned required_for(enum tok_op op)
{
    switch (op) {
    case TOK_OP_CREATE:
        return F_REQ_CREATE;
    case TOK_OP_GENERATE:
        return F_REQ_GENERATE;
    case TOK_OP_UNWRAP:
        return F_REQ_UNWRAP;
    default:
        return 0;
    }
}

CK_RV tok_rules_check(CK_OBJECT_CLASS cls, CK_KEY_TYPE key_type, enum tok_op op,
                      const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_RV rv = tok_tmpl_valid(tmpl, n);
    if (rv != CKR_OK)
        return rv;
    unsigned scope = object_scope(cls, key_type);
    if (scope == 0)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    unsigned forbidden = forbidden_for(op);
    for (CK_ULONG i = 0; i < n; i++) {
        const CK_ATTRIBUTE *a = &tmpl[i];
        const rule *r = find_rule(a->type, scope);
        if (r == NULL)
            return CKR_ATTRIBUTE_TYPE_INVALID;
        if (!value_ok(r->kind, a))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        if (r->flags & forbidden)
            return CKR_ATTRIBUTE_READ_ONLY;
        if (op == TOK_OP_SET && !(r->flags & F_MODIFIABLE))
            return CKR_ATTRIBUTE_READ_ONLY;
        if (op == TOK_OP_COPY && !(r->flags & (F_MODIFIABLE | F_COPY)))
            return CKR_ATTRIBUTE_READ_ONLY;
        /* Only the SO may trust; the SO cannot write objects on these tokens. */
        if ((r->flags & F_SO_TRUE) && *(const CK_BBOOL *)a->pValue == CK_TRUE)
            return CKR_ATTRIBUTE_READ_ONLY;
        /* The class and key type the caller decided on must agree with the template. */
        if (a->type == CKA_CLASS || a->type == CKA_KEY_TYPE) {
            CK_ULONG v;
            memcpy(&v, a->pValue, sizeof(v));
            if (v != (a->type == CKA_CLASS ? cls : key_type))
                return CKR_TEMPLATE_INCONSISTENT;
        }
        for (CK_ULONG j = 0; j < i; j++) {
            if (tmpl[j].type == a->type &&
                (tmpl[j].ulValueLen != a->ulValueLen ||
                 (a->ulValueLen > 0 && memcmp(tmpl[j].pValue, a->pValue, a->ulValueLen) != 0)))
                return CKR_TEMPLATE_INCONSISTENT;
        }
    }
    unsigned required = required_for(op);
    if (required == 0)
        return CKR_OK;
    for (size_t i = 0; i < NRULES; i++) {
        if ((rules[i].scope & scope) && (rules[i].flags & required) &&
            tok_tmpl_find(tmpl, n, rules[i].type) == NULL) {
            /* The class and key type may come from the operation (mechanism). */
            if (op != TOK_OP_CREATE &&
                (rules[i].type == CKA_CLASS || rules[i].type == CKA_KEY_TYPE))
                continue;
            return CKR_TEMPLATE_INCOMPLETE;
        }
    }
    return CKR_OK;
}

CK_RV tok_rules_check_change(const tok_attrs *obj, enum tok_op op, const CK_ATTRIBUTE *tmpl,
                             CK_ULONG n)
{
    if (op == TOK_OP_SET && !tok_attrs_bool(obj, CKA_MODIFIABLE, CK_TRUE))
        return CKR_ACTION_PROHIBITED;
    if (op == TOK_OP_COPY && !tok_attrs_bool(obj, CKA_COPYABLE, CK_TRUE))
        return CKR_ACTION_PROHIBITED;
    CK_ULONG cls = 0, kt = CK_UNAVAILABLE_INFORMATION;
    tok_attrs_get_ulong(obj, CKA_CLASS, &cls);
    tok_attrs_get_ulong(obj, CKA_KEY_TYPE, &kt);
    unsigned scope = object_scope(cls, kt);
    for (CK_ULONG i = 0; i < n; i++) {
        const rule *r = find_rule(tmpl[i].type, scope);
        if (r == NULL || r->kind != TOK_AK_BOOL || tmpl[i].ulValueLen != sizeof(CK_BBOOL))
            continue;
        CK_BBOOL now;
        if (!tok_attrs_get_bool(obj, tmpl[i].type, &now))
            continue;
        CK_BBOOL want = *(const CK_BBOOL *)tmpl[i].pValue;
        if ((r->flags & F_STAYS_TRUE) && now && !want)
            return CKR_ATTRIBUTE_READ_ONLY;
        if ((r->flags & F_STAYS_FALSE) && !now && want)
            return CKR_ATTRIBUTE_READ_ONLY;
        /* A copy may make an object unmodifiable, never modifiable again. */
        if (tmpl[i].type == CKA_MODIFIABLE && !now && want)
            return CKR_ATTRIBUTE_READ_ONLY;
    }
    return CKR_OK;
}

int tok_rules_hidden(CK_ATTRIBUTE_TYPE type, const tok_attrs *obj)
{
    CK_ULONG cls = 0, kt = CK_UNAVAILABLE_INFORMATION;
    tok_attrs_get_ulong(obj, CKA_CLASS, &cls);
    tok_attrs_get_ulong(obj, CKA_KEY_TYPE, &kt);
    const rule *r = find_rule(type, object_scope(cls, kt));
    if (r == NULL || !(r->flags & F_SENSITIVE))
        return 0;
    return tok_attrs_bool(obj, CKA_SENSITIVE, CK_TRUE) ||
           !tok_attrs_bool(obj, CKA_EXTRACTABLE, CK_FALSE);
}

CK_RV tok_rules_defaults(CK_OBJECT_CLASS cls, CK_KEY_TYPE key_type, enum tok_op op, tok_attrs *a)
{
    int is_key = cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY;
    int secret_or_private = cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY;
    TRY(tok_attrs_set_ulong(a, CKA_CLASS, cls));
    TRY(tok_attrs_default_bool(a, CKA_TOKEN, CK_FALSE));
    TRY(tok_attrs_default_bool(a, CKA_PRIVATE, cls == CKO_PRIVATE_KEY));
    TRY(tok_attrs_default_bool(a, CKA_MODIFIABLE, CK_TRUE));
    TRY(tok_attrs_default(a, CKA_LABEL, NULL, 0));
    TRY(tok_attrs_default_bool(a, CKA_COPYABLE, CK_TRUE));
    TRY(tok_attrs_default_bool(a, CKA_DESTROYABLE, CK_TRUE));
    switch (cls) {
    case CKO_DATA:
        TRY(tok_attrs_default(a, CKA_APPLICATION, NULL, 0));
        TRY(tok_attrs_default(a, CKA_OBJECT_ID, NULL, 0));
        TRY(tok_attrs_default(a, CKA_VALUE, NULL, 0));
        break;
    case CKO_CERTIFICATE:
        TRY(tok_attrs_default_ulong(a, CKA_CERTIFICATE_CATEGORY, 0));
        TRY(tok_attrs_default_bool(a, CKA_TRUSTED, CK_FALSE));
        TRY(tok_attrs_default(a, CKA_ID, NULL, 0));
        TRY(tok_attrs_default(a, CKA_ISSUER, NULL, 0));
        TRY(tok_attrs_default(a, CKA_SERIAL_NUMBER, NULL, 0));
        TRY(tok_attrs_default(a, CKA_URL, NULL, 0));
        TRY(tok_attrs_default(a, CKA_HASH_OF_SUBJECT_PUBLIC_KEY, NULL, 0));
        TRY(tok_attrs_default(a, CKA_HASH_OF_ISSUER_PUBLIC_KEY, NULL, 0));
        TRY(tok_attrs_default_ulong(a, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0));
        TRY(tok_attrs_default(a, CKA_START_DATE, NULL, 0));
        TRY(tok_attrs_default(a, CKA_END_DATE, NULL, 0));
        break;
    default:
        break;
    }
    if (!is_key)
        return CKR_OK;
    int generated = op == TOK_OP_GENERATE;
    TRY(tok_attrs_set_ulong(a, CKA_KEY_TYPE, key_type));
    TRY(tok_attrs_default(a, CKA_ID, NULL, 0));
    TRY(tok_attrs_default(a, CKA_START_DATE, NULL, 0));
    TRY(tok_attrs_default(a, CKA_END_DATE, NULL, 0));
    TRY(tok_attrs_default_bool(a, CKA_DERIVE, CK_FALSE));
    TRY(tok_attrs_default_bool(a, CKA_LOCAL, generated));
    TRY(tok_attrs_default_ulong(a, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION));
    if (cls == CKO_PUBLIC_KEY) {
        TRY(tok_attrs_default(a, CKA_SUBJECT, NULL, 0));
        TRY(tok_attrs_default_bool(a, CKA_ENCRYPT, key_type == CKK_RSA));
        TRY(tok_attrs_default_bool(a, CKA_VERIFY, CK_TRUE));
        TRY(tok_attrs_default_bool(a, CKA_VERIFY_RECOVER, CK_FALSE));
        TRY(tok_attrs_default_bool(a, CKA_WRAP, CK_FALSE));
        TRY(tok_attrs_default_bool(a, CKA_TRUSTED, CK_FALSE));
    }
    if (secret_or_private) {
        int is_secret = cls == CKO_SECRET_KEY;
        TRY(tok_attrs_default_bool(a, CKA_SENSITIVE, !is_secret));
        TRY(tok_attrs_default_bool(a, CKA_DECRYPT, is_secret));
        TRY(tok_attrs_default_bool(a, CKA_SIGN, !is_secret));
        TRY(tok_attrs_default_bool(a, CKA_UNWRAP, is_secret));
        TRY(tok_attrs_default_bool(a, CKA_EXTRACTABLE, is_secret));
        TRY(tok_attrs_default_bool(a, CKA_WRAP_WITH_TRUSTED, CK_FALSE));
        CK_BBOOL sensitive = tok_attrs_bool(a, CKA_SENSITIVE, CK_FALSE);
        CK_BBOOL extractable = tok_attrs_bool(a, CKA_EXTRACTABLE, CK_TRUE);
        TRY(tok_attrs_default_bool(a, CKA_ALWAYS_SENSITIVE, generated && sensitive));
        TRY(tok_attrs_default_bool(a, CKA_NEVER_EXTRACTABLE, generated && !extractable));
        if (is_secret) {
            TRY(tok_attrs_default_bool(a, CKA_ENCRYPT, CK_TRUE));
            TRY(tok_attrs_default_bool(a, CKA_VERIFY, CK_FALSE));
            TRY(tok_attrs_default_bool(a, CKA_WRAP, CK_TRUE));
            TRY(tok_attrs_default_bool(a, CKA_TRUSTED, CK_FALSE));
        } else {
            TRY(tok_attrs_default(a, CKA_SUBJECT, NULL, 0));
            TRY(tok_attrs_default_bool(a, CKA_SIGN_RECOVER, CK_FALSE));
            TRY(tok_attrs_default_bool(a, CKA_ALWAYS_AUTHENTICATE, CK_FALSE));
        }
    }
    return CKR_OK;
}
