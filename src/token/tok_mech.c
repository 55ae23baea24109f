/*
 * tok_mech.c - the mechanisms the token offers (C_GetMechanismList and
 * C_GetMechanismInfo come from this one table) and the map from a PKCS#11
 * mechanism and its parameter to the card's signHashedData and
 * asymmetricDecrypt algorithm numbers.
 *
 * CKF_HW marks the mechanisms whose private-key half the card performs
 * (signing, RSA decryption and unwrapping, ECDH, key pair generation);
 * digests, AES and AES key wrapping run in the module. Key sizes are in bits for RSA, EC and
 * generic secrets and in bytes for AES, as the standard defines them.
 */
#include <string.h>

#include "pkcs11/sks-pkcs11.h"
#include "protocol/sks_proto.h"
#include "token/tok_crypto.h"
#include "token/tok_ossl.h"

#define EC_FLAGS    (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)
#define RSA_MIN     2048
#define RSA_MAX     4096
#define EC_MIN      256
#define EC_MAX      384
#define SIGN_VERIFY (CKF_SIGN | CKF_VERIFY)
/* RSA encryption and key wrapping in the module, decryption and unwrapping on the card. */
#define RSA_CRYPT (CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP)

/* Single-part RSA/EC mechanisms keep their data in the operation until Final. */
#define RSA_SIGN(m, hash, single)                                                                  \
    {                                                                                              \
        m, RSA_MIN, RSA_MAX, SIGN_VERIFY | CKF_HW, TOK_MK_RSA, SKS_SIGN_RSA_PKCS1, hash, single    \
    }
#define RSA_PSS(m, hash, single)                                                                   \
    {                                                                                              \
        m, RSA_MIN, RSA_MAX, SIGN_VERIFY | CKF_HW, TOK_MK_RSA, SKS_SIGN_RSA_PSS, hash, single      \
    }
#define ECDSA(m, hash, single)                                                                     \
    {                                                                                              \
        m, EC_MIN, EC_MAX, SIGN_VERIFY | CKF_HW | EC_FLAGS, TOK_MK_EC, SKS_SIGN_ECDSA, hash,       \
            single                                                                                 \
    }
#define DIGEST(m)                                                                                  \
    {                                                                                              \
        m, 0, 0, CKF_DIGEST, TOK_MK_NONE, 0, 0, 0                                                  \
    }
#define AES(m, flags, single)                                                                      \
    {                                                                                              \
        m, 16, 32, flags, TOK_MK_AES, 0, 0, single                                                 \
    }

static const tok_mech mechs[] = {
    {CKM_RSA_PKCS_KEY_PAIR_GEN, RSA_MIN, RSA_MAX, CKF_GENERATE_KEY_PAIR | CKF_HW, TOK_MK_RSA, 0, 0,
     0},
    {CKM_EC_KEY_PAIR_GEN, EC_MIN, EC_MAX, CKF_GENERATE_KEY_PAIR | CKF_HW | EC_FLAGS, TOK_MK_EC, 0,
     0, 0},
    {CKM_RSA_PKCS, RSA_MIN, RSA_MAX, SIGN_VERIFY | RSA_CRYPT | CKF_HW, TOK_MK_RSA,
     SKS_SIGN_RSA_PKCS1, 0, 1},
    RSA_PSS(CKM_RSA_PKCS_PSS, 0, 1),
    {CKM_RSA_PKCS_OAEP, RSA_MIN, RSA_MAX, RSA_CRYPT | CKF_HW, TOK_MK_RSA, 0, 0, 1},
    RSA_SIGN(CKM_SHA1_RSA_PKCS, SKS_HASH_SHA1, 0),
    RSA_SIGN(CKM_SHA224_RSA_PKCS, SKS_HASH_SHA224, 0),
    RSA_SIGN(CKM_SHA256_RSA_PKCS, SKS_HASH_SHA256, 0),
    RSA_SIGN(CKM_SHA384_RSA_PKCS, SKS_HASH_SHA384, 0),
    RSA_SIGN(CKM_SHA512_RSA_PKCS, SKS_HASH_SHA512, 0),
    RSA_PSS(CKM_SHA1_RSA_PKCS_PSS, SKS_HASH_SHA1, 0),
    RSA_PSS(CKM_SHA224_RSA_PKCS_PSS, SKS_HASH_SHA224, 0),
    RSA_PSS(CKM_SHA256_RSA_PKCS_PSS, SKS_HASH_SHA256, 0),
    RSA_PSS(CKM_SHA384_RSA_PKCS_PSS, SKS_HASH_SHA384, 0),
    RSA_PSS(CKM_SHA512_RSA_PKCS_PSS, SKS_HASH_SHA512, 0),
    ECDSA(CKM_ECDSA, 0, 1),
    ECDSA(CKM_ECDSA_SHA1, SKS_HASH_SHA1, 0),
    ECDSA(CKM_ECDSA_SHA224, SKS_HASH_SHA224, 0),
    ECDSA(CKM_ECDSA_SHA256, SKS_HASH_SHA256, 0),
    ECDSA(CKM_ECDSA_SHA384, SKS_HASH_SHA384, 0),
    ECDSA(CKM_ECDSA_SHA512, SKS_HASH_SHA512, 0),
    {CKM_ECDH1_DERIVE, EC_MIN, EC_MAX, CKF_DERIVE | CKF_HW | EC_FLAGS, TOK_MK_EC, 0, 0, 0},
    DIGEST(CKM_SHA_1),
    DIGEST(CKM_SHA224),
    DIGEST(CKM_SHA256),
    DIGEST(CKM_SHA384),
    DIGEST(CKM_SHA512),
    AES(CKM_AES_KEY_GEN, CKF_GENERATE, 0),
    AES(CKM_AES_ECB, CKF_ENCRYPT | CKF_DECRYPT, 0),
    AES(CKM_AES_CBC, CKF_ENCRYPT | CKF_DECRYPT, 0),
    AES(CKM_AES_CBC_PAD, CKF_ENCRYPT | CKF_DECRYPT, 0),
    AES(CKM_AES_GCM, CKF_ENCRYPT | CKF_DECRYPT, 0),
    AES(CKM_AES_KEY_WRAP, CKF_WRAP | CKF_UNWRAP, 1),
    AES(CKM_AES_KEY_WRAP_PAD, CKF_WRAP | CKF_UNWRAP, 1),
    /* Generic secrets: 1..512 bytes, given in bits. */
    {CKM_GENERIC_SECRET_KEY_GEN, 8, 4096, CKF_GENERATE, TOK_MK_GENERIC, 0, 0, 0},
    /* Vendor mechanisms (include/pkcs11/sks-pkcs11.h): provisioning relayed to the card. */
    {CKM_VENDOR_SKS_SESSION, 0, 0, CKF_GENERATE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_PUK_POLICY, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_PIN_POLICY, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_KEY_PAIR, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_CERTIFICATE_PATH, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_CLOSE, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_POST_DELETE_KEY, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_POST_UNLOCK_KEY, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    {CKM_VENDOR_SKS_POST_UPDATE_KEY, 0, 0, CKF_DERIVE | CKF_HW, TOK_MK_NONE, 0, 0, 0},
    /* Secure key injection: unwrapping on the card, wrapping on the issuer side. */
    {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, RSA_MIN, RSA_MAX, CKF_WRAP | CKF_UNWRAP | CKF_HW,
     TOK_MK_RSA, 0, 0, 0},
    {CKM_VENDOR_SKS_SESSION_KEY_ECDH, EC_MIN, EC_MIN, CKF_WRAP | CKF_UNWRAP | CKF_HW | EC_FLAGS,
     TOK_MK_EC, 0, 0, 0},
    {CKM_VENDOR_SKS_INJECT_KEY, 32, 32, CKF_WRAP | CKF_UNWRAP | CKF_HW, TOK_MK_AES, 0, 0, 0},
    /* Backup under the DKEK, on the card. */
    {CKM_VENDOR_SKS_DKEK_WRAP, 0, 0, CKF_WRAP | CKF_UNWRAP | CKF_HW, TOK_MK_NONE, 0, 0, 0},
};

#define NMECHS (sizeof(mechs) / sizeof(mechs[0]))

const tok_mech *tok_mech_find(CK_MECHANISM_TYPE type)
{
    for (size_t i = 0; i < NMECHS; i++)
        if (mechs[i].type == type)
            return &mechs[i];
    return NULL;
}

CK_RV tok_mech_list(CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
    if (count == NULL)
        return CKR_ARGUMENTS_BAD;
    if (list == NULL) {
        *count = NMECHS;
        return CKR_OK;
    }
    if (*count < NMECHS) {
        *count = NMECHS;
        return CKR_BUFFER_TOO_SMALL;
    }
    for (size_t i = 0; i < NMECHS; i++)
        list[i] = mechs[i].type;
    *count = NMECHS;
    return CKR_OK;
}

CK_RV tok_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    const tok_mech *m = tok_mech_find(type);
    if (info == NULL)
        return CKR_ARGUMENTS_BAD;
    if (m == NULL)
        return CKR_MECHANISM_INVALID;
    info->ulMinKeySize = m->min_key;
    info->ulMaxKeySize = m->max_key;
    info->flags = m->flags;
    return CKR_OK;
}

CK_RV tok_mech_check(const CK_MECHANISM *m, CK_FLAGS flag, const tok_mech **out)
{
    const tok_mech *d = tok_mech_find(m->mechanism);
    if (d == NULL || !(d->flags & flag))
        return CKR_MECHANISM_INVALID;
    if (m->pParameter == NULL && m->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    *out = d;
    return CKR_OK;
}

uint8_t tok_mech_key_of(CK_KEY_TYPE key_type)
{
    switch (key_type) {
    case CKK_RSA:
        return TOK_MK_RSA;
    case CKK_EC:
        return TOK_MK_EC;
    case CKK_AES:
        return TOK_MK_AES;
    case CKK_GENERIC_SECRET:
        return TOK_MK_GENERIC;
    default:
        return TOK_MK_NONE;
    }
}

/* ---- hashes -------------------------------------------------------------- */

static const char *const hash_names[] = {NULL, "SHA1", "SHA224", "SHA256", "SHA384", "SHA512"};
static const size_t hash_lens[] = {0, 20, 28, 32, 48, 64};

/*
 * Digests are fetched once from the module's library context (tok_ossl.h):
 * an EVP_MD from EVP_sha256() would be fetched again by every EVP_DigestInit,
 * and from the application's default context.
 */
const EVP_MD *tok_hash_md(uint8_t sks_hash)
{
    if (sks_hash == SKS_HASH_NONE || sks_hash > SKS_HASH_SHA512)
        return NULL;
    return tok_ossl_md(hash_names[sks_hash]);
}

size_t tok_hash_len(uint8_t sks_hash)
{
    return sks_hash <= SKS_HASH_SHA512 ? hash_lens[sks_hash] : 0;
}

uint8_t tok_hash_of_mech(CK_MECHANISM_TYPE m)
{
    switch (m) {
    case CKM_SHA_1:
        return SKS_HASH_SHA1;
    case CKM_SHA224:
        return SKS_HASH_SHA224;
    case CKM_SHA256:
        return SKS_HASH_SHA256;
    case CKM_SHA384:
        return SKS_HASH_SHA384;
    case CKM_SHA512:
        return SKS_HASH_SHA512;
    default:
        return SKS_HASH_NONE;
    }
}

uint8_t tok_hash_of_mgf(CK_ULONG mgf)
{
    switch (mgf) {
    case CKG_MGF1_SHA1:
        return SKS_HASH_SHA1;
    case CKG_MGF1_SHA224:
        return SKS_HASH_SHA224;
    case CKG_MGF1_SHA256:
        return SKS_HASH_SHA256;
    case CKG_MGF1_SHA384:
        return SKS_HASH_SHA384;
    case CKG_MGF1_SHA512:
        return SKS_HASH_SHA512;
    default:
        return SKS_HASH_NONE;
    }
}

/* ---- mechanism -> card algorithm ----------------------------------------- */

/*
 * PSS parameters: the card uses MGF1 with the signature's hash, so the MGF
 * must name the same hash; a hashing mechanism must name its own hash.
 */
static CK_RV pss_params(const CK_MECHANISM *m, uint8_t own_hash, tok_sign_map *out)
{
    if (m->pParameter == NULL || m->ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS))
        return CKR_MECHANISM_PARAM_INVALID;
    const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;
    uint8_t hash = tok_hash_of_mech(p->hashAlg);
    if (hash == SKS_HASH_NONE || tok_hash_of_mgf(p->mgf) != hash)
        return CKR_MECHANISM_PARAM_INVALID;
    if (own_hash != SKS_HASH_NONE && hash != own_hash)
        return CKR_MECHANISM_PARAM_INVALID;
    /* The largest salt any supported key can hold: emLen(4096) - hLen - 2. */
    if (p->sLen > 512 - tok_hash_len(hash) - 2)
        return CKR_MECHANISM_PARAM_INVALID;
    out->hash = hash;
    out->salt = (uint16_t)p->sLen;
    return CKR_OK;
}

CK_RV tok_mech_sign_map(const CK_MECHANISM *m, tok_sign_map *out)
{
    const tok_mech *d = tok_mech_find(m->mechanism);
    if (d == NULL || d->sign_alg == 0)
        return CKR_MECHANISM_INVALID;
    memset(out, 0, sizeof(*out));
    out->alg = d->sign_alg;
    out->module_hash = d->module_hash;
    out->hash = d->module_hash;
    if (d->sign_alg == SKS_SIGN_RSA_PSS)
        return pss_params(m, d->module_hash, out);
    /* The other sign mechanisms take no parameter. */
    if (m->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    return CKR_OK;
}

CK_RV tok_mech_rsa_crypt_map(const CK_MECHANISM *m, tok_rsa_crypt_map *out)
{
    memset(out, 0, sizeof(*out));
    if (m->mechanism == CKM_RSA_PKCS) {
        if (m->ulParameterLen != 0)
            return CKR_MECHANISM_PARAM_INVALID;
        out->alg = SKS_DECRYPT_RSA_PKCS1;
        return CKR_OK;
    }
    if (m->mechanism != CKM_RSA_PKCS_OAEP)
        return CKR_MECHANISM_INVALID;
    if (m->pParameter == NULL || m->ulParameterLen != sizeof(CK_RSA_PKCS_OAEP_PARAMS))
        return CKR_MECHANISM_PARAM_INVALID;
    const CK_RSA_PKCS_OAEP_PARAMS *p = m->pParameter;
    out->alg = SKS_DECRYPT_RSA_OAEP;
    out->hash = tok_hash_of_mech(p->hashAlg);
    out->mgf_hash = tok_hash_of_mgf(p->mgf);
    if (out->hash == SKS_HASH_NONE || out->mgf_hash == SKS_HASH_NONE)
        return CKR_MECHANISM_PARAM_INVALID;
    /* No source (0) is accepted as "no label", as several applications pass it. */
    if (p->source != CKZ_DATA_SPECIFIED && p->source != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    if (p->ulSourceDataLen > 0) {
        if (p->source != CKZ_DATA_SPECIFIED || p->pSourceData == NULL ||
            p->ulSourceDataLen > SKS_WIRE_BYTES_MAX)
            return CKR_MECHANISM_PARAM_INVALID;
        out->label = p->pSourceData;
        out->label_len = p->ulSourceDataLen;
    }
    return CKR_OK;
}

CK_RV tok_mech_key_pair_gen(const CK_MECHANISM *m, const tok_mech **out, CK_KEY_TYPE *kt)
{
    CK_RV rv = tok_mech_check(m, CKF_GENERATE_KEY_PAIR, out);
    if (rv != CKR_OK)
        return rv;
    if (m->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    *kt = m->mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN ? CKK_RSA : CKK_EC;
    return CKR_OK;
}
