/*
 * tok_inject_unwrap.c - secure key injection, card side (docs/token.md and
 * docs/protocol.md section 10), as C_UnwrapKey:
 *
 *   CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP / _ECDH, hUnwrappingKey = K1 (a card
 *   private key): importSessionKey. The result S1 is a session object that
 *   names the card's session key and holds no value: CKO_SECRET_KEY,
 *   CKK_AES, CKA_VALUE_LEN 32, sensitive, unextractable, unmodifiable,
 *   uncopyable, CKA_UNWRAP its only usage, CKA_ALLOWED_MECHANISMS
 *   {CKM_VENDOR_SKS_INJECT_KEY}, CKA_VENDOR_SKS_INJECTION_ONLY true and
 *   CKA_VENDOR_SKS_CARD_HANDLE the card's SessionKeyHandle. tok_op_key()
 *   refuses it to every standard mechanism (CKR_KEY_FUNCTION_NOT_PERMITTED).
 *   When it goes (C_DestroyObject, its session closed, logout for a private
 *   one) deleteSessionKey is sent to the card, best effort. (Any object
 *   going away also drops what the issuer token cached for it,
 *   tok_soft_cache.c.)
 *
 *   CKM_VENDOR_SKS_INJECT_KEY, hUnwrappingKey = S1: injectPrivateKey. The
 *   template is read as C_GenerateKeyPair reads a private key template
 *   (CKA_KEY_TYPE and CKA_ID required; CKA_LABEL; CKA_SIGN, CKA_DECRYPT,
 *   CKA_UNWRAP, CKA_DERIVE -> KeyUsage); the new key joins K1's PIN policy
 *   and the result is its CKO_PRIVATE_KEY. The blob opens only under the
 *   ID and KeyUsage the issuer bound it to (K2's), and S1 serves one blob:
 *   once the card has tried one under it, S1 is refused.
 *
 * Everything that can be checked here is checked before the card sees the
 * call, so that a status the card answers means one thing.
 */
#include <string.h>

#include <openssl/x509.h>

#include "protocol/sks_keys.h"
#include "token/tok_crypto.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"
#include "token/tok_vendor.h"

#define S1_LEN          32
#define ECDH_POINT_LEN  65
#define INJECT_BLOB_MIN (SKS_INJECT_TAG_LEN + 1)
#define INJECT_BLOB_MAX (16u * 1024u + SKS_INJECT_TAG_LEN) /* the card's limit */

static int is_rsa_alg(uint8_t alg)
{
    return alg == SKS_KEYALG_RSA2048 || alg == SKS_KEYALG_RSA3072 || alg == SKS_KEYALG_RSA4096;
}

/* The owner session of a session object, if still open (no side effects); or NULL. */
static const tok_session *owner_of(const tok_session_object *o)
{
    for (size_t i = 0; i < tok_g.nsessions; i++)
        if (tok_g.sessions[i]->handle == o->owner)
            return tok_g.sessions[i];
    return NULL;
}

/*
 * The card and SessionKeyHandle an S1 object names, if its card is still
 * the one connected when S1 was made (a card put back in the reader has
 * forgotten it, and another card must never receive its handle). 0 or -1.
 */
static int s1_of(const tok_session_object *o, tok_card **card, uint32_t *handle)
{
    CK_ULONG cls, h;
    if (!tok_attrs_bool(&o->attrs, CKA_VENDOR_SKS_INJECTION_ONLY, CK_FALSE) ||
        !tok_attrs_get_ulong(&o->attrs, CKA_CLASS, &cls) || cls != CKO_SECRET_KEY ||
        !tok_attrs_get_ulong(&o->attrs, CKA_VENDOR_SKS_CARD_HANDLE, &h) || h == 0 ||
        h > 0xFFFFFFFFu)
        return -1;
    const tok_slot *slot = tok_slot_find(o->slot);
    const tok_session *owner = owner_of(o);
    if (slot == NULL || slot->card == NULL || owner == NULL ||
        owner->generation != slot->card->generation)
        return -1;
    *card = slot->card;
    *handle = (uint32_t)h;
    return 0;
}

static void delete_s1(tok_card *card, uint32_t handle)
{
    sks_req_delete_session_key req = {handle};
    sks_writer answer;
    uint8_t status;
    sks_writer_init(&answer);
    if (tok_card_call(card, SKS_M_DELETE_SESSION_KEY, &req, NULL, &answer, &status, NULL, 0) ==
        CKR_OK)
        tok_log(TOK_LOG_DEBUG, "session key %u deleted (%s)", handle, sks_status_name(status));
    sks_writer_free(&answer);
}

void tok_inject_object_gone(const tok_session_object *o)
{
    tok_card *card;
    uint32_t handle;
    tok_soft_cache_forget(o); /* a K1 or K2 of the issuer token */
    if (s1_of(o, &card, &handle) == 0 && card->transport != NULL)
        delete_s1(card, handle);
}

/* Run a call; a refusal is logged with the card's message. */
static CK_RV run(tok_card *card, uint8_t method, const void *req, void *resp, sks_writer *answer,
                 uint8_t *status)
{
    char msg[160];
    CK_RV rv = tok_card_call(card, method, req, resp, answer, status, msg, sizeof(msg));
    if (rv == CKR_OK && *status != SKS_OK)
        tok_log(TOK_LOG_INFO, "%s refused: %s (%s)", sks_method_name(method),
                sks_status_name(*status), msg);
    return rv;
}

/* ---- session key import ------------------------------------------------------ */

/* A template attribute that S1 fixes, with the only value the template may give it. */
static const struct {
    CK_ATTRIBUTE_TYPE type;
    CK_BBOOL value;
} s1_fixed[] = {
    {CKA_SENSITIVE, CK_TRUE},   {CKA_EXTRACTABLE, CK_FALSE}, {CKA_UNWRAP, CK_TRUE},
    {CKA_ENCRYPT, CK_FALSE},    {CKA_DECRYPT, CK_FALSE},     {CKA_SIGN, CK_FALSE},
    {CKA_VERIFY, CK_FALSE},     {CKA_WRAP, CK_FALSE},        {CKA_DERIVE, CK_FALSE},
    {CKA_MODIFIABLE, CK_FALSE}, {CKA_COPYABLE, CK_FALSE},
};

/* The template of S1: a session AES key that can do nothing but inject. */
static CK_RV check_s1_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_BBOOL v;
    CK_RV rv = tok_rules_check(CKO_SECRET_KEY, CKK_AES, TOK_OP_UNWRAP, tmpl, n);
    if (rv != CKR_OK)
        return rv;
    if (tok_tmpl_get_bool(tmpl, n, CKA_TOKEN, &v) && v)
        return CKR_ATTRIBUTE_VALUE_INVALID; /* it lives in the card's RAM */
    for (size_t i = 0; i < sizeof(s1_fixed) / sizeof(s1_fixed[0]); i++)
        if (tok_tmpl_get_bool(tmpl, n, s1_fixed[i].type, &v) && v != s1_fixed[i].value)
            return CKR_TEMPLATE_INCONSISTENT;
    const CK_ATTRIBUTE *allowed = tok_tmpl_find(tmpl, n, CKA_ALLOWED_MECHANISMS);
    if (allowed != NULL) {
        CK_MECHANISM_TYPE only = CKM_VENDOR_SKS_INJECT_KEY;
        if (allowed->ulValueLen != sizeof(only) || memcmp(allowed->pValue, &only, sizeof(only)))
            return CKR_TEMPLATE_INCONSISTENT;
    }
    return CKR_OK;
}

/* The attributes of S1 (the template's, then what S1 is). */
static CK_RV s1_attrs(const CK_ATTRIBUTE *tmpl, CK_ULONG n, const tok_card_key *k1, uint32_t handle,
                      tok_attrs *a)
{
    CK_MECHANISM_TYPE only = CKM_VENDOR_SKS_INJECT_KEY;
    CK_RV rv = tok_attrs_merge_tmpl(a, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(a, CKA_CLASS, CKO_SECRET_KEY);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(a, CKA_KEY_TYPE, CKK_AES);
    if (rv == CKR_OK)
        rv = tok_attrs_set(a, CKA_VALUE, NULL, 0); /* never here: reading it is refused */
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(a, CKA_VALUE_LEN, S1_LEN);
    for (size_t i = 0; rv == CKR_OK && i < sizeof(s1_fixed) / sizeof(s1_fixed[0]); i++)
        rv = tok_attrs_set_bool(a, s1_fixed[i].type, s1_fixed[i].value);
    if (rv == CKR_OK)
        rv = tok_attrs_set(a, CKA_ALLOWED_MECHANISMS, &only, sizeof(only));
    if (rv == CKR_OK)
        rv = tok_attrs_default_bool(a, CKA_PRIVATE, k1->pin_policy != 0);
    /* Unwrapped: it was outside the token once (the issuer made it). */
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(a, CKA_ALWAYS_SENSITIVE, CK_FALSE);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(a, CKA_NEVER_EXTRACTABLE, CK_FALSE);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(a, CKA_LOCAL, CK_FALSE);
    if (rv == CKR_OK)
        rv = tok_attrs_set_bool(a, CKA_VENDOR_SKS_INJECTION_ONLY, CK_TRUE);
    if (rv == CKR_OK)
        rv = tok_attrs_set_ulong(a, CKA_VENDOR_SKS_CARD_HANDLE, handle);
    if (rv == CKR_OK)
        rv = tok_rules_defaults(CKO_SECRET_KEY, CKK_AES, TOK_OP_UNWRAP, a);
    return rv;
}

/* K1: a card private key visible to the session, fit for the mechanism. */
static CK_RV resolve_k1(tok_session *s, CK_MECHANISM_TYPE mech, CK_OBJECT_HANDLE h, tok_object *k1)
{
    int rsa = mech == CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP;
    if (tok_object_get(s, h, k1) != CKR_OK)
        return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    if (k1->where != TOK_OBJ_CARD_KEY || k1->kind != TOK_KIND_PRIVATE_KEY || k1->key == NULL)
        return k1->cls == CKO_PRIVATE_KEY || k1->cls == CKO_PUBLIC_KEY || k1->cls == CKO_SECRET_KEY
                   ? CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT
                   : CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    if (rsa ? !is_rsa_alg(k1->key->algorithm) : k1->key->algorithm != SKS_KEYALG_EC_P256)
        return CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
    if (!(k1->key->usage & (rsa ? SKS_USAGE_DECRYPT : SKS_USAGE_KEY_AGREEMENT)))
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    return CKR_OK;
}

/* EncryptedKey: the wrapped S1 (RSA), or the issuer's point from the parameter (ECDH). */
static CK_RV encrypted_key(const CK_MECHANISM *m, const tok_object *k1, const uint8_t *wrapped,
                           CK_ULONG wrapped_len, sks_view *out)
{
    if (m->mechanism == CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP) {
        if (m->ulParameterLen != 0)
            return CKR_MECHANISM_PARAM_INVALID;
        if (k1->key->public_key == NULL ||
            wrapped_len != (CK_ULONG)EVP_PKEY_get_size(k1->key->public_key))
            return CKR_WRAPPED_KEY_LEN_RANGE;
        *out = (sks_view){wrapped, wrapped_len};
        return CKR_OK;
    }
    const CK_SKS_ECDH_SESSION_KEY_PARAMS *p = m->pParameter;
    if (p == NULL || m->ulParameterLen != sizeof(*p) || p->pPublicData == NULL ||
        p->ulPublicDataLen != ECDH_POINT_LEN || p->pPublicData[0] != 0x04)
        return CKR_MECHANISM_PARAM_INVALID;
    if (wrapped_len != 0)
        return CKR_WRAPPED_KEY_LEN_RANGE;
    *out = (sks_view){p->pPublicData, p->ulPublicDataLen};
    return CKR_OK;
}

/* What importSessionKey's refusals mean here (K1's type and usage were checked). */
static CK_RV import_rv(uint8_t status, int rsa)
{
    switch (status) {
    case SKS_ERR_NO_KEY:
        return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    case SKS_ERR_NOT_ALLOWED: /* SKS_SESSION_KEYS_MAX held */
        return CKR_DEVICE_MEMORY;
    case SKS_ERR_ALGORITHM:
        return CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
    case SKS_ERR_OPTION:
        return rsa ? CKR_WRAPPED_KEY_LEN_RANGE : CKR_MECHANISM_PARAM_INVALID;
    case SKS_ERR_CRYPTO:
        return rsa ? CKR_WRAPPED_KEY_INVALID : CKR_MECHANISM_PARAM_INVALID;
    default:
        return tok_status_to_rv(status, SKS_M_IMPORT_SESSION_KEY);
    }
}

static CK_RV import_session_key(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE h,
                                const uint8_t *wrapped, CK_ULONG wrapped_len,
                                const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    tok_object k1;
    sks_view enc;
    tok_attrs a = {0};
    uint8_t status;
    CK_RV rv = resolve_k1(s, m->mechanism, h, &k1);
    if (rv == CKR_OK)
        rv = encrypted_key(m, &k1, wrapped, wrapped_len, &enc);
    if (rv == CKR_OK)
        rv = check_s1_template(tmpl, n);
    if (rv != CKR_OK)
        return rv;

    uint8_t alg = m->mechanism == CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP ? SKS_SKIMPORT_RSA_OAEP_SHA256
                                                                      : SKS_SKIMPORT_ECDH_P256;
    sks_req_import_session_key req = {k1.key->handle, alg, enc};
    sks_resp_import_session_key resp = {0};
    sks_writer answer;
    sks_writer_init(&answer);
    rv = run(k1.card, SKS_M_IMPORT_SESSION_KEY, &req, &resp, &answer, &status);
    sks_writer_free(&answer);
    if (rv == CKR_OK)
        rv = import_rv(status, alg == SKS_SKIMPORT_RSA_OAEP_SHA256);
    if (rv != CKR_OK)
        return rv;
    rv = s1_attrs(tmpl, n, k1.key, resp.session_key_handle, &a);
    if (rv == CKR_OK)
        rv = tok_object_add_session(s, &a, out);
    tok_attrs_free(&a);
    if (rv != CKR_OK)
        delete_s1(k1.card, resp.session_key_handle);
    return rv;
}

/* ---- key injection ------------------------------------------------------------- */

/* S1: a session key object of this card, as import_session_key made it, not used up. */
static CK_RV resolve_s1(tok_session *s, CK_OBJECT_HANDLE h, tok_session_object **obj,
                        tok_card **card, uint32_t *handle)
{
    tok_object o;
    if (tok_object_get(s, h, &o) != CKR_OK)
        return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    if (o.where != TOK_OBJ_SESSION ||
        !tok_attrs_bool(o.attrs, CKA_VENDOR_SKS_INJECTION_ONLY, CK_FALSE))
        return CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
    if (s1_of(o.sobj, card, handle) != 0)
        return CKR_UNWRAPPING_KEY_HANDLE_INVALID; /* its card went away since, or it was used */
    *obj = o.sobj;
    return CKR_OK;
}

/*
 * The card forgets S1 once a blob has been tried under it (docs/protocol.md
 * 10.2): after a key was made, or a blob that did not open, held no key the
 * card takes, or failed a check after the tag. The module makes the card's
 * checks that come before the tag itself before calling, so any answer but
 * NO_KEY (S1 or K1 unknown: nothing to forget) is taken as S1 spent; at
 * worst an S1 the card still holds is refused here and the issuer sends a
 * new one. S1's object then names no card key (handle 0): it is refused at
 * once, and nothing is sent to the card when it goes.
 */
static void note_s1_spent(tok_session_object *s1, uint8_t status)
{
    if (status != SKS_ERR_NO_KEY)
        (void)tok_attrs_set_ulong(&s1->attrs, CKA_VENDOR_SKS_CARD_HANDLE, 0);
}

/*
 * The certificate path of the parameter: concatenated DER certificates, end
 * entity first, at most SKS_CERT_PATH_MAX, each one that parses; or none.
 */
static CK_RV split_path(const CK_SKS_INJECT_PARAMS *p, sks_certpath *path)
{
    memset(path, 0, sizeof(*path));
    if (p->ulCertificatePathLen == 0)
        return CKR_OK;
    if (p->ulCertificatePathLen > CKS_CERT_PATH_MAX ||
        sks_certpath_split(p->pCertificatePath, p->ulCertificatePathLen, path) != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    for (size_t i = 0; i < path->count; i++) {
        X509 *cert = tok_ossl_cert(path->cert[i].ptr, path->cert[i].len);
        X509_free(cert);
        if (cert == NULL)
            return CKR_MECHANISM_PARAM_INVALID;
    }
    return CKR_OK;
}

/*
 * The new key's template: a token RSA or EC private key that stays on the
 * card. CKA_ID is required: the blob is bound to the ID the issuer gave K2
 * (a random one would never match).
 */
static CK_RV read_key_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_KEY_TYPE *kt,
                               tok_key_template *kp)
{
    CK_BBOOL v;
    if (tok_tmpl_find(tmpl, n, CKA_KEY_TYPE) == NULL || tok_tmpl_find(tmpl, n, CKA_ID) == NULL)
        return CKR_TEMPLATE_INCOMPLETE;
    if (!tok_tmpl_get_ulong(tmpl, n, CKA_KEY_TYPE, kt) || (*kt != CKK_RSA && *kt != CKK_EC))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_RV rv = tok_rules_check(CKO_PRIVATE_KEY, *kt, TOK_OP_UNWRAP, tmpl, n);
    if (rv == CKR_OK)
        rv = tok_keypair_template(tmpl, n, *kt == CKK_RSA, kp);
    /* Injected keys are never exported nor backed up. */
    if (rv == CKR_OK &&
        (kp->extractable || (tok_tmpl_get_bool(tmpl, n, CKA_VENDOR_SKS_BACKUP_ALLOWED, &v) && v)))
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
    return rv;
}

/* The slot may take a new key: R/W session, user logged in on a PIN token. */
static CK_RV slot_writable(const tok_session *s, const tok_slot *slot)
{
    if (!tok_session_rw(s))
        return CKR_SESSION_READ_ONLY;
    if (slot->kind == TOK_SLOT_POLICY && !tok_logged_in(slot))
        return CKR_USER_NOT_LOGGED_IN;
    return CKR_OK;
}

/* The card's own checks done early: a free ID, room for a key. */
static CK_RV card_room(tok_card *card, const tok_key_template *kp)
{
    CK_RV rv = tok_card_refresh(card);
    if (rv == CKR_OK)
        rv = tok_card_ensure(card);
    if (rv != CKR_OK)
        return rv;
    for (size_t i = 0; i < card->nkeys; i++)
        if (card->keys[i].id_len == kp->id_len && memcmp(card->keys[i].id, kp->id, kp->id_len) == 0)
            return CKR_ATTRIBUTE_VALUE_INVALID;
    return card->max_keys != 0 && card->used_keys >= card->max_keys ? CKR_DEVICE_MEMORY : CKR_OK;
}

/* What injectPrivateKey's refusals mean here (the ID and the usage were checked). */
static CK_RV inject_rv(uint8_t status)
{
    switch (status) {
    case SKS_ERR_NO_KEY: /* S1 forgotten (reset), or K1 deleted */
        return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    case SKS_ERR_CRYPTO:    /* does not decrypt, or not a PKCS#8 key */
    case SKS_ERR_ALGORITHM: /* a key the card does not hold, or not of CKA_KEY_TYPE */
        return CKR_WRAPPED_KEY_INVALID;
    case SKS_ERR_OPTION: /* the certificate does not hold the key */
        return CKR_MECHANISM_PARAM_INVALID;
    case SKS_ERR_NOT_ALLOWED:
        return CKR_DEVICE_MEMORY;
    default:
        return tok_status_to_rv(status, SKS_M_INJECT_PRIVATE_KEY);
    }
}

/*
 * The new key is of CKA_KEY_TYPE: the card refuses a KeyUsage the key cannot
 * serve, so only a sign-only key can be of the other type; it is removed
 * again (best effort: its PIN may no longer be verified).
 */
static CK_RV check_key_type(tok_card *card, uint32_t handle, CK_KEY_TYPE kt)
{
    const tok_card_key *k = tok_card_find_key(card, handle);
    if (k == NULL)
        return CKR_DEVICE_ERROR;
    if (is_rsa_alg(k->algorithm) == (kt == CKK_RSA))
        return CKR_OK;
    sks_req_delete_key del = {handle, {NULL, 0}};
    sks_writer answer;
    sks_writer_init(&answer);
    if (tok_card_call_rv(card, SKS_M_DELETE_KEY, &del, NULL, &answer) != CKR_OK)
        tok_log(TOK_LOG_WARN, "injected key %u is not of CKA_KEY_TYPE and could not be removed",
                handle);
    sks_writer_free(&answer);
    tok_card_invalidate(card);
    return CKR_WRAPPED_KEY_INVALID;
}

static CK_RV inject_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m, CK_OBJECT_HANDLE h,
                        const uint8_t *wrapped, CK_ULONG wrapped_len, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const CK_SKS_INJECT_PARAMS *p = m->pParameter;
    sks_req_inject_private_key req;
    tok_key_template kp;
    CK_KEY_TYPE kt = 0;
    tok_card *card = NULL;
    tok_session_object *s1_obj = NULL;
    uint32_t s1 = 0;
    uint8_t status;

    memset(&req, 0, sizeof(req));
    if (p == NULL || m->ulParameterLen != sizeof(*p))
        return CKR_MECHANISM_PARAM_INVALID;
    CK_RV rv = split_path(p, &req.certificate_path);
    if (rv == CKR_OK)
        rv = resolve_s1(s, h, &s1_obj, &card, &s1);
    if (rv == CKR_OK && (wrapped_len < INJECT_BLOB_MIN || wrapped_len > INJECT_BLOB_MAX))
        rv = CKR_WRAPPED_KEY_LEN_RANGE;
    if (rv == CKR_OK)
        rv = read_key_template(tmpl, n, &kt, &kp);
    if (rv == CKR_OK)
        rv = slot_writable(s, slot);
    if (rv == CKR_OK)
        rv = card_room(card, &kp);
    if (rv != CKR_OK)
        return rv;

    req.session_key_handle = s1;
    req.iv = (sks_view){p->iv, sizeof(p->iv)};
    req.encrypted_private_key = (sks_view){wrapped, wrapped_len};
    req.id = (sks_view){kp.id, kp.id_len};
    req.friendly_name = (sks_view){kp.label, kp.label_len};
    req.key_usage = kp.usage;
    sks_resp_inject_private_key resp = {0};
    sks_writer answer;
    sks_writer_init(&answer);
    rv = run(card, SKS_M_INJECT_PRIVATE_KEY, &req, &resp, &answer, &status);
    sks_writer_free(&answer);
    if (rv == CKR_OK)
        note_s1_spent(s1_obj, status);
    if (rv == CKR_OK)
        rv = inject_rv(status);
    if (rv != CKR_OK)
        return rv;
    /* Reload the card's keys and slots: the key (maybe a first no-PIN key) must show. */
    tok_card_invalidate(card);
    rv = tok_slots_update();
    if (rv == CKR_OK)
        rv = tok_card_ensure(card);
    if (rv == CKR_OK)
        rv = check_key_type(card, resp.key_handle, kt);
    if (rv == CKR_OK)
        *out = tok_handle_card(card->index, resp.key_handle, TOK_KIND_PRIVATE_KEY);
    return rv;
}

CK_RV tok_inject_unwrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                        CK_OBJECT_HANDLE unwrapping_key, const uint8_t *wrapped,
                        CK_ULONG wrapped_len, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                        CK_OBJECT_HANDLE *out)
{
    if (slot->card == NULL)
        return CKR_MECHANISM_INVALID; /* no card behind this token (no-card mode) */
    switch (m->mechanism) {
    case CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP:
    case CKM_VENDOR_SKS_SESSION_KEY_ECDH:
        return import_session_key(s, m, unwrapping_key, wrapped, wrapped_len, tmpl, n, out);
    case CKM_VENDOR_SKS_INJECT_KEY:
        return inject_key(s, slot, m, unwrapping_key, wrapped, wrapped_len, tmpl, n, out);
    default:
        return CKR_MECHANISM_INVALID;
    }
}
