/*
 * tok_issuer_prov.c - the PKCS#11 side of issuer-side provisioning on the
 * issuer token (tok_issuer_prov.h): resolves the handles a mechanism
 * parameter names (the issuer's key, the trust anchor, a private key to
 * import), makes the objects (the provisioning object, the card key's
 * public key) and hands the rest to the core (tok_issuer_prov_core.h).
 *
 * The issuer session lives outside the object's attributes, in a table
 * keyed by the provisioning object's handle: the object's attributes are
 * readable and copyable, the session key is neither. The table entry goes
 * with the object (tok_vendor_object_gone: C_DestroyObject, its PKCS#11
 * session closed, logout of a private object, C_Finalize); a forked child
 * abandons the parent's table as the module abandons the parent's state.
 * The module lock covers the table, as every caller holds it.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "issuer/sks_issuer.h"
#include "pkcs11/sks-pkcs11.h"
#include "token/tok_issuer_prov.h"
#include "token/tok_issuer_prov_core.h"
#include "token/tok_issuer_token.h"
#include "token/tok_soft.h"
#include "token/tok_try.h"

/* ---- the table of issuer sessions ---------------------------------------------- */

typedef struct {
    CK_OBJECT_HANDLE handle;
    tok_iprov *ip;
} table_entry;

static struct {
    table_entry *v;
    size_t n, cap;
    pid_t pid; /* the process that made the entries */
} table;

/* A forked child starts with an empty table (the parent's entries are not its to free). */
static void table_check_pid(void)
{
    if (table.pid != getpid()) {
        memset(&table, 0, sizeof table);
        table.pid = getpid();
    }
}

static tok_iprov *table_get(CK_OBJECT_HANDLE h)
{
    table_check_pid();
    for (size_t i = 0; i < table.n; i++) {
        if (table.v[i].handle == h)
            return table.v[i].ip;
    }
    return NULL;
}

static CK_RV table_put(CK_OBJECT_HANDLE h, tok_iprov *ip)
{
    table_check_pid();
    if (table.n == table.cap) {
        size_t cap = table.cap != 0 ? 2 * table.cap : 8;
        table_entry *grown = realloc(table.v, cap * sizeof *grown);
        if (grown == NULL)
            return CKR_HOST_MEMORY;
        table.v = grown;
        table.cap = cap;
    }
    table.v[table.n++] = (table_entry){h, ip};
    return CKR_OK;
}

/* Remove the entry of a handle; its session, or NULL. */
static tok_iprov *table_take(CK_OBJECT_HANDLE h)
{
    table_check_pid();
    for (size_t i = 0; i < table.n; i++) {
        if (table.v[i].handle == h) {
            tok_iprov *ip = table.v[i].ip;
            table.v[i] = table.v[--table.n];
            if (table.n == 0) {
                free(table.v);
                table.v = NULL;
                table.cap = 0;
            }
            return ip;
        }
    }
    return NULL;
}

void tok_issuer_prov_object_gone(const tok_session_object *o)
{
    tok_iprov_free(table_take(o->handle));
}

int tok_issuer_prov_mech(CK_MECHANISM_TYPE type)
{
    /* The in-session calls and post-provisioning (0x02..0x0B), and the issuer's own. */
    if (type >= CKM_VENDOR_SKS_PUK_POLICY && type <= CKM_VENDOR_SKS_POST_UPDATE_KEY)
        return 1;
    for (size_t i = 0; i < TOK_ISSUER_PROV_ONLY; i++) {
        if (tok_issuer_prov_only[i] == type)
            return 1;
    }
    return 0;
}

/* The mechanisms only the issuer side has (the others are the card side's too). */
const CK_MECHANISM_TYPE tok_issuer_prov_only[TOK_ISSUER_PROV_ONLY] = {
    CKM_VENDOR_SKS_SESSION_ACCEPT,     CKM_VENDOR_SKS_VERIFY_KEY_PAIR,
    CKM_VENDOR_SKS_VERIFY_CLOSE,       CKM_VENDOR_SKS_DECLARE_KEY,
    CKM_VENDOR_SKS_DECLARE_PUK_POLICY, CKM_VENDOR_SKS_DECLARE_PIN_POLICY,
};

CK_RV tok_issuer_prov_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    for (size_t i = 0; i < TOK_ISSUER_PROV_ONLY; i++) {
        if (tok_issuer_prov_only[i] == type) {
            memset(info, 0, sizeof *info);
            info->flags = CKF_DERIVE;
            return CKR_OK;
        }
    }
    return CKR_MECHANISM_INVALID;
}

/* ---- objects the parameters name ------------------------------------------------ */

/* The mechanism's parameter as a struct of exactly `size` bytes, or NULL. */
static void *param(const CK_MECHANISM *m, size_t size)
{
    return m->pParameter != NULL && m->ulParameterLen == size ? m->pParameter : NULL;
}

/*
 * The object a handle names, which must be of class `cls`:
 * CKR_KEY_HANDLE_INVALID or CKR_KEY_TYPE_INCONSISTENT otherwise.
 */
static CK_RV object_of_class(tok_session *s, CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls, tok_object *o)
{
    if (tok_object_get(s, h, o) != CKR_OK)
        return CKR_KEY_HANDLE_INVALID;
    return o->cls == cls ? CKR_OK : CKR_KEY_TYPE_INCONSISTENT;
}

/*
 * A software private key of the issuer token: the class, the key type and
 * the usage attribute the mechanism needs (CK_UNAVAILABLE_INFORMATION: none).
 */
static CK_RV private_key(tok_session *s, CK_OBJECT_HANDLE h, CK_KEY_TYPE want_type,
                         CK_ATTRIBUTE_TYPE usage, EVP_PKEY **out)
{
    tok_object o;
    *out = NULL;
    TRY(object_of_class(s, h, CKO_PRIVATE_KEY, &o));
    if (want_type != CK_UNAVAILABLE_INFORMATION && o.key_type != want_type)
        return CKR_KEY_TYPE_INCONSISTENT;
    if (usage != CK_UNAVAILABLE_INFORMATION && !tok_attrs_bool(o.attrs, usage, CK_FALSE))
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    *out = tok_soft_private_key(o.attrs);
    return *out != NULL ? CKR_OK : CKR_KEY_TYPE_INCONSISTENT;
}

/* The issuer's key for a session key algorithm: EC with CKA_DERIVE, RSA with CKA_DECRYPT. */
static CK_RV issuer_key(tok_session *s, const CK_SKS_ISSUER_SESSION_PARAMS *p, EVP_PKEY **out)
{
    *out = NULL;
    if (p->hIssuerKey == CK_INVALID_HANDLE)
        return CKR_OK;
    if (p->ulSessionKeyAlgorithm == CKS_SESSION_KEY_ECDH_P256)
        return private_key(s, p->hIssuerKey, CKK_EC, CKA_DERIVE, out);
    if (p->ulSessionKeyAlgorithm == CKS_SESSION_KEY_RSA_OAEP_SHA256)
        return private_key(s, p->hIssuerKey, CKK_RSA, CKA_DECRYPT, out);
    return CKR_MECHANISM_PARAM_INVALID;
}

/* The public key of a CKO_PUBLIC_KEY object of the token (a key to declare). */
static CK_RV public_key(tok_session *s, CK_OBJECT_HANDLE h, EVP_PKEY **out)
{
    tok_object o;
    *out = NULL;
    TRY(object_of_class(s, h, CKO_PUBLIC_KEY, &o));
    *out = tok_pkey_from_attrs(o.attrs);
    return *out != NULL ? CKR_OK : CKR_KEY_TYPE_INCONSISTENT;
}

/* The X.509 certificate of a CKO_CERTIFICATE object (the trust anchor). */
static CK_RV anchor_cert(tok_session *s, CK_OBJECT_HANDLE h, X509 **out)
{
    tok_object o;
    CK_ULONG type;
    *out = NULL;
    if (tok_object_get(s, h, &o) != CKR_OK || o.cls != CKO_CERTIFICATE ||
        !tok_attrs_get_ulong(o.attrs, CKA_CERTIFICATE_TYPE, &type) || type != CKC_X_509)
        return CKR_MECHANISM_PARAM_INVALID;
    const tok_attr *value = tok_attrs_find(o.attrs, CKA_VALUE);
    if (value != NULL)
        *out = sks_cert_parse(NULL, value->value, value->len);
    return *out != NULL ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
}

/* The issuer session of a provisioning object of the issuer token. */
static CK_RV resolve(tok_session *s, CK_OBJECT_HANDLE h, tok_iprov **out)
{
    tok_object o;
    TRY(object_of_class(s, h, CKO_VENDOR_SKS_PROVISIONING, &o));
    *out = table_get(h);
    return *out != NULL ? CKR_OK : CKR_KEY_HANDLE_INVALID;
}

/* ---- CKM_VENDOR_SKS_SESSION ------------------------------------------------------ */

/*
 * The provisioning object's template: CKA_CLASS, CKA_LABEL, CKA_ID, and
 * CKA_TOKEN / CKA_PRIVATE only as they are (a private session object).
 */
static CK_RV check_session_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        const CK_ATTRIBUTE *a = &tmpl[i];
        switch (a->type) {
        case CKA_LABEL:
        case CKA_ID:
            break;
        case CKA_CLASS:
            if (a->ulValueLen != sizeof(CK_ULONG) ||
                *(const CK_ULONG *)a->pValue != CKO_VENDOR_SKS_PROVISIONING)
                return CKR_TEMPLATE_INCONSISTENT;
            break;
        case CKA_TOKEN:
        case CKA_PRIVATE:
            if (a->ulValueLen != sizeof(CK_BBOOL) ||
                *(const CK_BBOOL *)a->pValue != (a->type == CKA_PRIVATE ? CK_TRUE : CK_FALSE))
                return CKR_ATTRIBUTE_VALUE_INVALID;
            break;
        default:
            return CKR_ATTRIBUTE_TYPE_INVALID;
        }
    }
    return CKR_OK;
}

/* The provisioning object: a private session object; label and ID default to the request's. */
static CK_RV session_object(tok_session *s, const CK_SKS_ISSUER_SESSION_PARAMS *p,
                            const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    tok_attrs a;
    memset(&a, 0, sizeof a);
    CK_RV rv = tok_attrs_merge_tmpl(&a, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(&a, CKA_CLASS, CKO_VENDOR_SKS_PROVISIONING);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(&a, CKA_PRIVATE, CK_TRUE);
    if (rv == CKR_OK)
        rv = tok_attrs_default(&a, CKA_LABEL, p->pIssuerUri, p->ulIssuerUriLen);
    if (rv == CKR_OK)
        rv = tok_attrs_default(&a, CKA_ID, p->serverSessionId, CKS_SESSION_ID_LEN);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(&a, CKA_MODIFIABLE, CK_FALSE);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(&a, CKA_COPYABLE, CK_FALSE);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(&a, CKA_DESTROYABLE, CK_TRUE);
    if (rv == CKR_OK)
        rv = tok_object_add_session(s, &a, out);
    tok_attrs_free(&a);
    return rv;
}

CK_RV tok_issuer_prov_open(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                           const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    CK_SKS_ISSUER_SESSION_PARAMS *p = param(m, sizeof *p);
    if (p == NULL)
        return CKR_MECHANISM_PARAM_INVALID;
    /* The session holds the issuer's secrets: only the logged-in user makes one. */
    if (!tok_logged_in(slot))
        return CKR_USER_NOT_LOGGED_IN;
    TRY(check_session_template(tmpl, n));
    EVP_PKEY *key;
    TRY(issuer_key(s, p, &key));
    tok_iprov *ip;
    CK_RV rv = tok_iprov_new(p, key, &ip);
    EVP_PKEY_free(key);
    if (rv != CKR_OK)
        return rv;
    CK_OBJECT_HANDLE h;
    rv = session_object(s, p, tmpl, n, &h);
    if (rv == CKR_OK && (rv = table_put(h, ip)) != CKR_OK) {
        tok_object o;
        if (tok_object_get(s, h, &o) == CKR_OK)
            tok_object_destroy_session_object(o.sobj);
    }
    if (rv != CKR_OK) {
        tok_iprov_free(ip);
        return rv;
    }
    *out = h;
    return CKR_OK;
}

/* ---- in-session calls and verifications -------------------------------------------- */

static CK_RV accept_call(tok_session *s, tok_iprov *ip, const CK_MECHANISM *m)
{
    const CK_SKS_SESSION_ACCEPT_PARAMS *p = param(m, sizeof *p);
    X509 *anchor;
    if (p == NULL || p->pSession == NULL)
        return CKR_MECHANISM_PARAM_INVALID;
    TRY(anchor_cert(s, p->hTrustAnchor, &anchor));
    CK_RV rv = tok_iprov_accept(ip, anchor, p->pSession);
    X509_free(anchor);
    return rv;
}

static CK_RV prepare_call(tok_session *s, tok_iprov *ip, const CK_MECHANISM *m)
{
    const CK_SKS_ISSUER_CALL_PARAMS *p = param(m, sizeof *p);
    EVP_PKEY *key = NULL;
    if (p == NULL)
        return CKR_MECHANISM_PARAM_INVALID;
    if (p->hPrivateKey != CK_INVALID_HANDLE) {
        if (m->mechanism != CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY &&
            m->mechanism != CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY)
            return CKR_MECHANISM_PARAM_INVALID;
        tok_object o;
        TRY(object_of_class(s, p->hPrivateKey, CKO_PRIVATE_KEY, &o));
        if (!tok_attrs_bool(o.attrs, CKA_EXTRACTABLE, CK_FALSE))
            return CKR_KEY_UNEXTRACTABLE;
        TRY(private_key(s, p->hPrivateKey, CK_UNAVAILABLE_INFORMATION, CK_UNAVAILABLE_INFORMATION,
                        &key));
    }
    CK_RV rv = tok_iprov_prepare(ip, m->mechanism, p, key);
    EVP_PKEY_free(key);
    return rv;
}

static CK_RV declare_key_call(tok_session *s, tok_iprov *ip, const CK_MECHANISM *m)
{
    const CK_SKS_DECLARE_KEY_PARAMS *p = param(m, sizeof *p);
    EVP_PKEY *pub;
    if (p == NULL)
        return CKR_MECHANISM_PARAM_INVALID;
    TRY(public_key(s, p->hPublicKey, &pub));
    CK_RV rv = tok_iprov_declare_key(ip, p, pub);
    EVP_PKEY_free(pub);
    return rv;
}

/* The key type a createKeyPair AlgorithmData stands for (RSA 0x01..0x03, else EC). */
static CK_KEY_TYPE key_type_of(CK_ULONG algorithm)
{
    return algorithm >= SKS_KEYALG_RSA2048 && algorithm <= SKS_KEYALG_RSA4096 ? CKK_RSA : CKK_EC;
}

/* The card key's public key as an object of the issuer token (template, ID, label). */
static CK_RV public_key_object(tok_session *s, tok_slot *slot, EVP_PKEY *pub, CK_KEY_TYPE kt,
                               const char *id, const char *label, const CK_ATTRIBUTE *tmpl,
                               CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    tok_attrs a;
    memset(&a, 0, sizeof a);
    CK_RV rv = tok_attrs_merge_tmpl(&a, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_pkey_attrs(pub, CKO_PUBLIC_KEY, &a);
    if (rv == CKR_OK)
        rv = tok_attrs_default(&a, CKA_ID, id, (CK_ULONG)strlen(id));
    if (rv == CKR_OK)
        rv = tok_attrs_default(&a, CKA_LABEL, label, (CK_ULONG)strlen(label));
    if (rv == CKR_OK)
        rv = tok_rules_defaults(CKO_PUBLIC_KEY, kt, TOK_OP_DERIVE, &a);
    if (rv == CKR_OK)
        rv = tok_issuer_store_object(s, slot, &a, out);
    tok_attrs_free(&a);
    return rv;
}

static CK_RV verify_key_call(tok_session *s, tok_slot *slot, tok_iprov *ip, const CK_MECHANISM *m,
                             const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const CK_SKS_KEY_PAIR_PARAMS *p = param(m, sizeof *p);
    if (p == NULL)
        return CKR_MECHANISM_PARAM_INVALID;
    CK_KEY_TYPE kt = key_type_of(p->ulAlgorithm);
    TRY(tok_rules_check(CKO_PUBLIC_KEY, kt, TOK_OP_DERIVE, tmpl, n));
    EVP_PKEY *pub;
    const char *id, *label;
    TRY(tok_iprov_verify_key_pair(ip, p, &pub, &id, &label));
    CK_RV rv = CKR_OK;
    *out = CK_INVALID_HANDLE;
    if (pub != NULL) {
        kt = EVP_PKEY_is_a(pub, "RSA") ? CKK_RSA : CKK_EC;
        rv = public_key_object(s, slot, pub, kt, id, label, tmpl, n, out);
    }
    EVP_PKEY_free(pub);
    return rv;
}

CK_RV tok_issuer_prov_call(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                           CK_OBJECT_HANDLE base, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           CK_OBJECT_HANDLE *out)
{
    tok_iprov *ip;
    TRY(resolve(s, base, &ip));
    CK_RV rv;
    if (m->mechanism == CKM_VENDOR_SKS_VERIFY_KEY_PAIR) {
        rv = verify_key_call(s, slot, ip, m, tmpl, n, out);
    } else if (n != 0) {
        /* The other calls make no object: a template has nothing to say. */
        rv = CKR_TEMPLATE_INCONSISTENT;
    } else if (m->mechanism == CKM_VENDOR_SKS_SESSION_ACCEPT) {
        rv = accept_call(s, ip, m);
    } else if (m->mechanism == CKM_VENDOR_SKS_DECLARE_KEY) {
        rv = declare_key_call(s, ip, m);
    } else if (m->mechanism == CKM_VENDOR_SKS_VERIFY_CLOSE) {
        const CK_SKS_CLOSE_PARAMS *p = param(m, sizeof *p);
        rv = p != NULL ? tok_iprov_verify_close(ip, p) : CKR_MECHANISM_PARAM_INVALID;
    } else {
        rv = prepare_call(s, ip, m);
    }
    if (rv == CKR_OK && m->mechanism != CKM_VENDOR_SKS_VERIFY_KEY_PAIR)
        *out = CK_INVALID_HANDLE;
    /* These two come only from the core, with its reason (never secret). */
    if (rv == CKR_VENDOR_SKS_ATTESTATION || rv == CKR_FUNCTION_FAILED)
        tok_log(TOK_LOG_WARN, "issuer provisioning: %s", tok_iprov_error(ip));
    return rv;
}
