/*
 * tok_keypair.c - key pairs made without a server: C_GenerateKeyPair (the
 * card generates the key) and C_CreateObject of a private key (the key is
 * imported), both through one session of the local issuer emulation
 * (src/provision/local_issuer.h).
 *
 * Mapping from the templates:
 *   RSA: CKA_MODULUS_BITS 2048/3072/4096 (CKA_PUBLIC_EXPONENT, if given, 65537)
 *   EC:  CKA_EC_PARAMS, the named-curve OID of P-256 or P-384
 *   CKA_ID      -> the key's ID (both templates may give it, equal); when
 *                  absent, 16 random bytes: the card needs the ID at creation
 *   CKA_LABEL   -> FriendlyName
 *   CKA_SIGN, CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE (private template)
 *               -> KeyUsage; none given: sign + decrypt (RSA), sign + derive (EC)
 *   CKA_EXTRACTABLE -> Migratable (the key may be exported later)
 * Private keys are always token objects with CKA_SENSITIVE true (the card
 * holds them): CKA_TOKEN or CKA_SENSITIVE false is CKR_ATTRIBUTE_VALUE_INVALID.
 * Keys of a PIN token need the user logged in; keys made on the no-PIN token
 * have no PIN. The free slot's token is uninitialised: no key can be made
 * there (CKR_TOKEN_WRITE_PROTECTED).
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/params.h>

#include "pkcs11/sks-pkcs11.h"
#include "protocol/sks_crypto.h"
#include "token/tok_crypto.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

#define DEFAULT_ID_LEN 16

/* Key parameters gathered from the templates. */
typedef struct {
    uint8_t algorithm; /* enum sks_key_alg */
    uint8_t id[SKS_ID_MAX];
    size_t id_len;
    const uint8_t *label;
    size_t label_len;
    uint8_t usage;
    int migratable;
} key_params;

/* The card key algorithm of an EC curve OID. */
static CK_RV curve_alg(const CK_ATTRIBUTE *params, uint8_t *alg)
{
    if (params == NULL)
        return CKR_TEMPLATE_INCOMPLETE;
    const char *group =
        params->pValue != NULL ? tok_ec_group_name(params->pValue, params->ulValueLen) : NULL;
    if (group == NULL)
        return params->ulValueLen > 2 && ((const uint8_t *)params->pValue)[0] == 0x06
                   ? CKR_CURVE_NOT_SUPPORTED
                   : CKR_DOMAIN_PARAMS_INVALID;
    if (strcmp(group, "prime256v1") == 0)
        *alg = SKS_KEYALG_EC_P256;
    else if (strcmp(group, "secp384r1") == 0)
        *alg = SKS_KEYALG_EC_P384;
    else
        return CKR_CURVE_NOT_SUPPORTED;
    return CKR_OK;
}

/* Is a big-endian exponent 65537 (leading zeros allowed)? */
static int is_f4(const uint8_t *p, size_t n)
{
    while (n > 3 && *p == 0) {
        p++;
        n--;
    }
    return n == 3 && p[0] == 0x01 && p[1] == 0x00 && p[2] == 0x01;
}

/* CKA_MODULUS_BITS and CKA_PUBLIC_EXPONENT of an RSA generation. */
static CK_RV rsa_alg(const CK_ATTRIBUTE *pub, CK_ULONG npub, uint8_t *alg)
{
    CK_ULONG bits = 0;
    if (tok_tmpl_find(pub, npub, CKA_MODULUS_BITS) == NULL)
        return CKR_TEMPLATE_INCOMPLETE;
    if (!tok_tmpl_get_ulong(pub, npub, CKA_MODULUS_BITS, &bits))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    const CK_ATTRIBUTE *e = tok_tmpl_find(pub, npub, CKA_PUBLIC_EXPONENT);
    if (e != NULL && (e->pValue == NULL || !is_f4(e->pValue, e->ulValueLen)))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    switch (bits) {
    case 2048:
        *alg = SKS_KEYALG_RSA2048;
        return CKR_OK;
    case 3072:
        *alg = SKS_KEYALG_RSA3072;
        return CKR_OK;
    case 4096:
        *alg = SKS_KEYALG_RSA4096;
        return CKR_OK;
    default:
        return CKR_KEY_SIZE_RANGE;
    }
}

/* A template's CKA_CLASS and CKA_KEY_TYPE, when given, must be these. */
static CK_RV class_and_type(const CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt)
{
    CK_ULONG v;
    if (tok_tmpl_find(t, n, CKA_CLASS) != NULL &&
        (!tok_tmpl_get_ulong(t, n, CKA_CLASS, &v) || v != cls))
        return CKR_TEMPLATE_INCONSISTENT;
    if (tok_tmpl_find(t, n, CKA_KEY_TYPE) != NULL &&
        (!tok_tmpl_get_ulong(t, n, CKA_KEY_TYPE, &v) || v != kt))
        return CKR_TEMPLATE_INCONSISTENT;
    return CKR_OK;
}

/* KeyUsage from the private key template. */
static CK_RV usage_of(const CK_ATTRIBUTE *priv, CK_ULONG n, int rsa, uint8_t *usage)
{
    static const CK_ATTRIBUTE_TYPE kinds[] = {CKA_SIGN, CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE};
    static const uint8_t bits[] = {SKS_USAGE_SIGN, SKS_USAGE_DECRYPT, SKS_USAGE_DECRYPT,
                                   SKS_USAGE_KEY_AGREEMENT};
    int given = 0;
    *usage = 0;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        CK_BBOOL v;
        if (tok_tmpl_find(priv, n, kinds[i]) == NULL)
            continue;
        if (!tok_tmpl_get_bool(priv, n, kinds[i], &v))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        given = 1;
        if (v)
            *usage |= bits[i];
    }
    if (!given)
        *usage = SKS_USAGE_SIGN | (rsa ? SKS_USAGE_DECRYPT : SKS_USAGE_KEY_AGREEMENT);
    /* The card decrypts only with RSA keys and agrees keys only with EC keys. */
    uint8_t possible = SKS_USAGE_SIGN | (rsa ? SKS_USAGE_DECRYPT : SKS_USAGE_KEY_AGREEMENT);
    if (*usage == 0 || (*usage & ~possible) != 0)
        return CKR_TEMPLATE_INCONSISTENT;
    return CKR_OK;
}

/* ID, label, usage and the storage attributes the card imposes. */
static CK_RV common_params(const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv,
                           CK_ULONG npriv, int rsa, key_params *kp)
{
    CK_BBOOL v;
    if (tok_tmpl_get_bool(priv, npriv, CKA_TOKEN, &v) && !v)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    if (tok_tmpl_get_bool(priv, npriv, CKA_SENSITIVE, &v) && !v)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    kp->migratable = tok_tmpl_get_bool(priv, npriv, CKA_EXTRACTABLE, &v) && v;
    /* Backup under the DKEK is the same card flag (docs/dkek.md). */
    if (tok_tmpl_get_bool(priv, npriv, CKA_VENDOR_SKS_BACKUP_ALLOWED, &v) && v)
        kp->migratable = 1;

    const CK_ATTRIBUTE *id1 = tok_tmpl_find(priv, npriv, CKA_ID);
    const CK_ATTRIBUTE *id2 = tok_tmpl_find(pub, npub, CKA_ID);
    if (id1 != NULL && id2 != NULL &&
        (id1->ulValueLen != id2->ulValueLen ||
         (id1->ulValueLen > 0 && memcmp(id1->pValue, id2->pValue, id1->ulValueLen) != 0)))
        return CKR_TEMPLATE_INCONSISTENT;
    const CK_ATTRIBUTE *id = id1 != NULL ? id1 : id2;
    if (id != NULL) {
        if (id->ulValueLen < 1 || id->ulValueLen > SKS_ID_MAX || id->pValue == NULL)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        memcpy(kp->id, id->pValue, id->ulValueLen);
        kp->id_len = id->ulValueLen;
    } else {
        if (tok_ossl_random(kp->id, DEFAULT_ID_LEN) != 0)
            return CKR_FUNCTION_FAILED;
        kp->id_len = DEFAULT_ID_LEN;
    }
    const CK_ATTRIBUTE *label = tok_tmpl_find(priv, npriv, CKA_LABEL);
    if (label == NULL)
        label = tok_tmpl_find(pub, npub, CKA_LABEL);
    if (label != NULL && label->ulValueLen > 0) {
        if (label->pValue == NULL || label->ulValueLen > SKS_FRIENDLY_NAME_MAX ||
            memchr(label->pValue, 0, label->ulValueLen) != NULL)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        kp->label = label->pValue;
        kp->label_len = label->ulValueLen;
    }
    return usage_of(priv, npriv, rsa, &kp->usage);
}

/*
 * Which PIN policy a new key of this slot gets; the user must be logged in on
 * a PIN token. The free slot has no token to hold the key: a key made there
 * would land on the no-PIN token, out of reach of the caller's session.
 */
static CK_RV slot_policy(const tok_session *s, const tok_slot *slot, uint32_t *pin_policy)
{
    if (slot->kind == TOK_SLOT_FREE)
        return CKR_TOKEN_WRITE_PROTECTED;
    if (!tok_session_rw(s))
        return CKR_SESSION_READ_ONLY;
    if (slot->kind == TOK_SLOT_POLICY) {
        if (!tok_logged_in(slot))
            return CKR_USER_NOT_LOGGED_IN;
        *pin_policy = slot->pin_policy;
    } else {
        *pin_policy = 0;
    }
    return CKR_OK;
}

/* The CKR of a failed local issuer session. */
static CK_RV issuer_rv(int status, int import)
{
    switch (status) {
    case -1:
        return CKR_DEVICE_ERROR;
    case SKS_ERR_OPTION: /* an ID already taken, a name too long */
        return CKR_ATTRIBUTE_VALUE_INVALID;
    case SKS_ERR_NOT_ALLOWED:
    case SKS_ERR_STORAGE:
        return CKR_DEVICE_MEMORY;
    case SKS_ERR_CRYPTO: /* an attestation that does not verify: do not trust the card */
    case SKS_ERR_MAC:
    case SKS_ERR_SESSION_VERIFY:
        return CKR_DEVICE_ERROR;
    case SKS_ERR_ALGORITHM: /* a key type or size the card does not hold */
        return import ? CKR_ATTRIBUTE_VALUE_INVALID : CKR_KEY_SIZE_RANGE;
    default:
        return tok_status_to_rv((uint8_t)status, SKS_M_CREATE_KEY_PAIR);
    }
}

/* Run the local issuer (generate, or import `key`) and report the new key's handle. */
static CK_RV run_issuer(tok_slot *slot, uint32_t pin_policy, const key_params *kp, EVP_PKEY *key,
                        uint32_t *handle)
{
    sks_local_issuer *li;
    sks_card_link link;
    char err[256];
    CK_RV rv = tok_issuer_get(slot->card, &li, &link);
    if (rv != CKR_OK)
        return rv;
    const sks_local_key_spec spec = {
        .pin_policy = pin_policy,
        .algorithm = kp->algorithm,
        .id = {kp->id, kp->id_len},
        .label = {kp->label, kp->label_len},
        .usage = kp->usage,
        .migratable = kp->migratable,
    };
    int status = key != NULL
                     ? sks_local_issuer_import(li, &link, &spec, key, handle, err, sizeof(err))
                     : sks_local_issuer_generate(li, &link, &spec, handle, err, sizeof(err));
    tok_card_invalidate(slot->card);
    if (status != SKS_OK) {
        tok_log(TOK_LOG_ERROR, "key %s failed: %s", key != NULL ? "import" : "generation", err);
        return issuer_rv(status, key != NULL);
    }
    /* Reload the card's keys and slots: the key (maybe a first no-PIN key) must show. */
    return tok_slots_update();
}

CK_RV tok_generate_key_pair(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                            const CK_ATTRIBUTE *pub, CK_ULONG npub, const CK_ATTRIBUTE *priv,
                            CK_ULONG npriv, CK_OBJECT_HANDLE *pub_out, CK_OBJECT_HANDLE *priv_out)
{
    const tok_mech *d;
    key_params kp;
    uint32_t pin_policy = 0, handle = 0;

    memset(&kp, 0, sizeof(kp));
    CK_KEY_TYPE kt;
    CK_RV rv = tok_mech_key_pair_gen(m, &d, &kt);
    if (rv != CKR_OK)
        return rv;
    int rsa = kt == CKK_RSA;
    rv = class_and_type(pub, npub, CKO_PUBLIC_KEY, kt);
    if (rv == CKR_OK)
        rv = class_and_type(priv, npriv, CKO_PRIVATE_KEY, kt);
    if (rv == CKR_OK)
        rv = tok_rules_check(CKO_PUBLIC_KEY, kt, TOK_OP_GENERATE, pub, npub);
    if (rv == CKR_OK)
        rv = tok_rules_check(CKO_PRIVATE_KEY, kt, TOK_OP_GENERATE, priv, npriv);
    if (rv == CKR_OK)
        rv = rsa ? rsa_alg(pub, npub, &kp.algorithm)
                 : curve_alg(tok_tmpl_find(pub, npub, CKA_EC_PARAMS), &kp.algorithm);
    if (rv == CKR_OK)
        rv = common_params(pub, npub, priv, npriv, rsa, &kp);
    if (rv == CKR_OK)
        rv = slot_policy(s, slot, &pin_policy);
    if (rv == CKR_OK)
        rv = run_issuer(slot, pin_policy, &kp, NULL, &handle);
    if (rv != CKR_OK)
        return rv;
    *pub_out = tok_handle_card(slot->card->index, handle, TOK_KIND_PUBLIC_KEY);
    *priv_out = tok_handle_card(slot->card->index, handle, TOK_KIND_PRIVATE_KEY);
    return CKR_OK;
}

/* ---- import ------------------------------------------------------------------ */

/* A template attribute as a BIGNUM pushed onto a param builder. */
static int push_bn(OSSL_PARAM_BLD *bld, const char *name, const CK_ATTRIBUTE *a, BIGNUM **keep)
{
    return a != NULL && tok_soft_push_bn(bld, name, a->pValue, a->ulValueLen, keep);
}

/* An RSA private key from its components (all eight are required). */
static CK_RV rsa_from_template(const CK_ATTRIBUTE *t, CK_ULONG n, EVP_PKEY **out)
{
    BIGNUM *bn[TOK_SOFT_RSA_PARTS] = {0};
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    CK_RV rv = bld != NULL ? CKR_OK : CKR_HOST_MEMORY;
    for (size_t i = 0; rv == CKR_OK && i < TOK_SOFT_RSA_PARTS; i++) {
        const CK_ATTRIBUTE *a = tok_tmpl_find(t, n, tok_soft_rsa_parts[i].type);
        if (a == NULL)
            rv = CKR_TEMPLATE_INCOMPLETE;
        else if (!push_bn(bld, tok_soft_rsa_parts[i].name, a, &bn[i]))
            rv = CKR_ATTRIBUTE_VALUE_INVALID;
    }
    if (rv == CKR_OK && (*out = tok_soft_keypair_from("RSA", bld)) == NULL)
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
    OSSL_PARAM_BLD_free(bld);
    for (size_t i = 0; i < TOK_SOFT_RSA_PARTS; i++)
        BN_clear_free(bn[i]);
    return rv;
}

/* An EC private key from CKA_EC_PARAMS and CKA_VALUE; the public point is computed. */
static CK_RV ec_from_template(const CK_ATTRIBUTE *t, CK_ULONG n, EVP_PKEY **out)
{
    const CK_ATTRIBUTE *params = tok_tmpl_find(t, n, CKA_EC_PARAMS);
    const CK_ATTRIBUTE *value = tok_tmpl_find(t, n, CKA_VALUE);
    uint8_t alg;
    if (params == NULL || value == NULL)
        return CKR_TEMPLATE_INCOMPLETE;
    CK_RV rv = curve_alg(params, &alg);
    if (rv != CKR_OK)
        return rv;
    const char *group = alg == SKS_KEYALG_EC_P256 ? "prime256v1" : "secp384r1";
    EC_GROUP *g = EC_GROUP_new_by_curve_name_ex(
        tok_ossl_ctx(), NULL, alg == SKS_KEYALG_EC_P256 ? NID_X9_62_prime256v1 : NID_secp384r1);
    EC_POINT *pt = g != NULL ? EC_POINT_new(g) : NULL;
    BIGNUM *d = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    uint8_t point[1 + 2 * 48];
    size_t point_len = 0;
    rv = pt != NULL && bld != NULL ? CKR_OK : CKR_HOST_MEMORY;
    if (rv == CKR_OK && !push_bn(bld, OSSL_PKEY_PARAM_PRIV_KEY, value, &d))
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
    /* 0 < d < order */
    if (rv == CKR_OK && (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(g)) >= 0))
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
    if (rv == CKR_OK && (EC_POINT_mul(g, pt, d, NULL, NULL, NULL) != 1 ||
                         (point_len = EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED,
                                                         point, sizeof(point), NULL)) == 0))
        rv = CKR_FUNCTION_FAILED;
    if (rv == CKR_OK &&
        (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
         OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len) != 1))
        rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK && (*out = tok_soft_keypair_from("EC", bld)) == NULL)
        rv = CKR_ATTRIBUTE_VALUE_INVALID;
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return rv;
}

CK_RV tok_import_private_key(tok_session *s, tok_slot *slot, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                             CK_OBJECT_HANDLE *out)
{
    CK_ULONG kt = CK_UNAVAILABLE_INFORMATION;
    key_params kp;
    uint32_t pin_policy = 0, handle = 0;
    EVP_PKEY *key = NULL;

    memset(&kp, 0, sizeof(kp));
    if (!tok_tmpl_get_ulong(tmpl, n, CKA_KEY_TYPE, &kt))
        return CKR_TEMPLATE_INCOMPLETE;
    if (kt != CKK_RSA && kt != CKK_EC)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_RV rv = tok_rules_check(CKO_PRIVATE_KEY, kt, TOK_OP_CREATE, tmpl, n);
    if (rv == CKR_OK)
        rv = kt == CKK_RSA ? rsa_from_template(tmpl, n, &key) : ec_from_template(tmpl, n, &key);
    if (rv == CKR_OK)
        rv = common_params(NULL, 0, tmpl, n, kt == CKK_RSA, &kp);
    if (rv == CKR_OK)
        rv = slot_policy(s, slot, &pin_policy);
    if (rv == CKR_OK)
        rv = run_issuer(slot, pin_policy, &kp, key, &handle);
    EVP_PKEY_free(key);
    if (rv == CKR_OK)
        *out = tok_handle_card(slot->card->index, handle, TOK_KIND_PRIVATE_KEY);
    return rv;
}

/*
 * The private key template's key parameters as C_GenerateKeyPair reads them
 * (common_params without a public template), for keys made otherwise on the
 * card (CKM_VENDOR_SKS_INJECT_KEY, tok_inject_unwrap.c).
 */
CK_RV tok_keypair_template(const CK_ATTRIBUTE *priv, CK_ULONG n, int rsa, tok_key_template *out)
{
    key_params kp;
    memset(&kp, 0, sizeof(kp));
    CK_RV rv = common_params(NULL, 0, priv, n, rsa, &kp);
    if (rv != CKR_OK)
        return rv;
    memcpy(out->id, kp.id, kp.id_len);
    out->id_len = kp.id_len;
    out->label = kp.label;
    out->label_len = kp.label_len;
    out->usage = kp.usage;
    out->extractable = kp.migratable;
    return CKR_OK;
}

/*
 * A private key from a C_CreateObject template, as the import above reads
 * it: also the software keys of the issuer token (no-card mode, tok_soft_gen.c).
 */
CK_RV tok_private_key_from_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_KEY_TYPE kt,
                                    EVP_PKEY **out)
{
    *out = NULL;
    if (kt == CKK_RSA)
        return rsa_from_template(tmpl, n, out);
    if (kt == CKK_EC)
        return ec_from_template(tmpl, n, out);
    return CKR_ATTRIBUTE_VALUE_INVALID;
}
