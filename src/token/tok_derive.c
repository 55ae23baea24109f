/*
 * tok_derive.c - C_DeriveKey with CKM_ECDH1_DERIVE: the card computes the
 * ECDH shared secret Z with its EC key (keyAgreement), the module applies
 * the key derivation function of CK_ECDH1_DERIVE_PARAMS and makes a
 * session secret key of the result.
 *
 *   CKD_NULL        the key is the last CKA_VALUE_LEN bytes of Z (all of Z
 *                   without CKA_VALUE_LEN), as other tokens do
 *   CKD_SHA*_KDF    ANSI X9.63: Hash(Z | counter32 | SharedData) for
 *                   counter = 1, 2, ... until CKA_VALUE_LEN bytes (one hash
 *                   length without CKA_VALUE_LEN)
 *
 * The peer's public key (pPublicData) is an uncompressed point, that point
 * wrapped in a DER OCTET STRING (as CKA_EC_POINT holds it), or a
 * SubjectPublicKeyInfo.
 */
#include <string.h>

#include "protocol/sks_crypto.h"
#include "token/tok_crypto.h"
#include "token/tok_soft.h"

#define Z_MAX           66  /* x coordinate, up to P-521 */
#define DERIVED_MAX     512 /* bytes of a derived key */
#define PUBLIC_DATA_MAX 1024
#define SHARED_DATA_MAX 1024

/* The hash of an ECDH KDF; SKS_HASH_NONE for CKD_NULL; -1 for others. */
static int kdf_hash(CK_ULONG kdf)
{
    switch (kdf) {
    case CKD_NULL:
        return SKS_HASH_NONE;
    case CKD_SHA1_KDF:
        return SKS_HASH_SHA1;
    case CKD_SHA224_KDF:
        return SKS_HASH_SHA224;
    case CKD_SHA256_KDF:
        return SKS_HASH_SHA256;
    case CKD_SHA384_KDF:
        return SKS_HASH_SHA384;
    case CKD_SHA512_KDF:
        return SKS_HASH_SHA512;
    default:
        return -1;
    }
}

/*
 * The peer key as the card takes it: an uncompressed point of `coord`-byte
 * coordinates (unwrapped from a DER OCTET STRING if need be), or an SPKI.
 */
static CK_RV peer_key(const CK_ECDH1_DERIVE_PARAMS *p, size_t coord, sks_view *peer)
{
    const uint8_t *d = p->pPublicData;
    size_t len = p->ulPublicDataLen, point = 1 + 2 * coord;
    if (d == NULL || len < 2 || len > PUBLIC_DATA_MAX)
        return CKR_MECHANISM_PARAM_INVALID;
    if (d[0] == 0x04 && len == point) {
        *peer = (sks_view){d, len};
        return CKR_OK;
    }
    if (d[0] == 0x04) { /* OCTET STRING: short or one-byte long length form */
        size_t hdr = d[1] < 0x80 ? 2 : d[1] == 0x81 ? 3 : 0;
        size_t inner = hdr == 2 ? d[1] : hdr == 3 && len > 2 ? d[2] : 0;
        if (hdr != 0 && inner == point && len == hdr + inner && d[hdr] == 0x04) {
            *peer = (sks_view){d + hdr, inner};
            return CKR_OK;
        }
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (d[0] == 0x30) { /* SubjectPublicKeyInfo: the card checks it */
        *peer = (sks_view){d, len};
        return CKR_OK;
    }
    return CKR_MECHANISM_PARAM_INVALID;
}

/* keyAgreement on the card: Z (coord bytes) into z. */
static CK_RV card_agree(const tok_object *base, sks_view peer, uint8_t z[Z_MAX], size_t *zlen)
{
    sks_req_key_agreement req = {base->key->handle, peer};
    sks_resp_key_agreement resp;
    sks_writer answer;
    uint8_t status = SKS_OK;
    sks_writer_init(&answer);
    CK_RV rv =
        tok_card_call(base->card, SKS_M_KEY_AGREEMENT, &req, &resp, &answer, &status, NULL, 0);
    if (rv == CKR_OK && status != SKS_OK) {
        /* A point off the curve, of another curve or malformed: a bad parameter. */
        if (status == SKS_ERR_CRYPTO || status == SKS_ERR_ALGORITHM || status == SKS_ERR_OPTION)
            rv = CKR_MECHANISM_PARAM_INVALID;
        else
            rv = tok_status_to_rv(status, SKS_M_KEY_AGREEMENT);
    }
    if (rv == CKR_OK && (resp.shared_secret.len == 0 || resp.shared_secret.len > Z_MAX))
        rv = CKR_DEVICE_ERROR;
    if (rv == CKR_OK) {
        memcpy(z, resp.shared_secret.ptr, resp.shared_secret.len);
        *zlen = resp.shared_secret.len;
    }
    sks_writer_free(&answer); /* zeroizes Z */
    return rv;
}

/* ANSI X9.63 KDF: out_len bytes of Hash(Z | counter | shared) blocks. */
static CK_RV x963_kdf(uint8_t hash, const uint8_t *z, size_t zlen, const uint8_t *shared,
                      size_t shared_len, uint8_t *out, size_t out_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t block[64];
    size_t hlen = tok_hash_len(hash), done = 0;
    CK_RV rv = ctx != NULL ? CKR_OK : CKR_HOST_MEMORY;
    for (uint32_t counter = 1; rv == CKR_OK && done < out_len; counter++) {
        uint8_t c[4];
        sks_be32_put(c, counter);
        if (EVP_DigestInit_ex2(ctx, tok_hash_md(hash), NULL) != 1 ||
            EVP_DigestUpdate(ctx, z, zlen) != 1 || EVP_DigestUpdate(ctx, c, sizeof(c)) != 1 ||
            (shared_len > 0 && EVP_DigestUpdate(ctx, shared, shared_len) != 1) ||
            EVP_DigestFinal_ex(ctx, block, NULL) != 1) {
            rv = CKR_FUNCTION_FAILED;
            break;
        }
        size_t take = out_len - done < hlen ? out_len - done : hlen;
        memcpy(out + done, block, take);
        done += take;
    }
    sks_cleanse(block, sizeof(block));
    EVP_MD_CTX_free(ctx);
    return rv;
}

/* The length of the derived key: the template's, or the KDF's natural one. */
static CK_RV derived_len(CK_KEY_TYPE kt, CK_ULONG want, int hash, size_t zlen, size_t *len)
{
    if (want == 0) {
        if (kt == CKK_AES)
            return CKR_TEMPLATE_INCOMPLETE;
        want = hash == SKS_HASH_NONE ? zlen : tok_hash_len((uint8_t)hash);
    }
    if (kt == CKK_AES && want != 16 && want != 24 && want != 32)
        return CKR_ATTRIBUTE_VALUE_INVALID;
    if (want > DERIVED_MAX || (hash == SKS_HASH_NONE && want > zlen))
        return CKR_TEMPLATE_INCONSISTENT;
    *len = want;
    return CKR_OK;
}

CK_RV tok_derive_key(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE base,
                     const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    const tok_mech *d;
    tok_object key;
    CK_KEY_TYPE kt;
    CK_ULONG want;
    sks_view peer;
    uint8_t z[Z_MAX], value[DERIVED_MAX];
    size_t zlen = 0, len = 0;

    CK_RV rv = tok_mech_check(m, CKF_DERIVE, &d);
    if (rv != CKR_OK)
        return rv;
    if (m->pParameter == NULL || m->ulParameterLen != sizeof(CK_ECDH1_DERIVE_PARAMS))
        return CKR_MECHANISM_PARAM_INVALID;
    const CK_ECDH1_DERIVE_PARAMS *p = m->pParameter;
    int hash = kdf_hash(p->kdf);
    if (hash < 0 || (hash == SKS_HASH_NONE && p->ulSharedDataLen != 0) ||
        p->ulSharedDataLen > SHARED_DATA_MAX || (p->ulSharedDataLen > 0 && p->pSharedData == NULL))
        return CKR_MECHANISM_PARAM_INVALID;
    rv = tok_op_key(s, base, CKO_PRIVATE_KEY, TOK_MK_EC, CKA_DERIVE, &key);
    /* A software key of the issuer token (no-card mode) agrees in the module. */
    int soft = rv == CKR_OK && key.where == TOK_OBJ_SESSION && tok_soft_is_private_key(key.attrs);
    if (rv == CKR_OK && !soft && (key.where != TOK_OBJ_CARD_KEY || key.key == NULL))
        rv = CKR_KEY_HANDLE_INVALID;
    CK_ULONG bits = rv == CKR_OK ? tok_key_bits(&key) : 0;
    if (rv == CKR_OK)
        rv = tok_key_size_check(d, bits);
    if (rv == CKR_OK)
        rv = peer_key(p, ((size_t)bits + 7) / 8, &peer);
    if (rv == CKR_OK)
        rv = tok_secret_template(tmpl, n, CKK_GENERIC_SECRET, &kt, &want);
    if (rv == CKR_OK)
        rv = tok_rules_check(CKO_SECRET_KEY, kt, TOK_OP_DERIVE, tmpl, n);
    if (rv != CKR_OK)
        return rv;
    const tok_secret_origin origin = {TOK_OP_DERIVE, CK_UNAVAILABLE_INFORMATION,
                                      tok_attrs_bool(key.attrs, CKA_ALWAYS_SENSITIVE, CK_FALSE),
                                      tok_attrs_bool(key.attrs, CKA_NEVER_EXTRACTABLE, CK_FALSE)};

    rv = soft ? tok_soft_ecdh(key.attrs, peer, z, sizeof(z), &zlen)
              : card_agree(&key, peer, z, &zlen);
    if (rv == CKR_OK)
        rv = derived_len(kt, want, hash, zlen, &len);
    if (rv == CKR_OK) {
        if (hash == SKS_HASH_NONE)
            memcpy(value, z + (zlen - len), len);
        else
            rv = x963_kdf((uint8_t)hash, z, zlen, p->pSharedData, p->ulSharedDataLen, value, len);
    }
    if (rv == CKR_OK)
        rv = tok_secret_new(s, tmpl, n, kt, value, len, &origin, out);
    sks_cleanse(z, sizeof(z));
    sks_cleanse(value, sizeof(value));
    return rv;
}
