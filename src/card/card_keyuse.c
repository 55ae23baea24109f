/*
 * card_keyuse.c - the private-key operations of the Key User API:
 * signHashedData (RSA PKCS#1 v1.5 and PSS, ECDSA), asymmetricDecrypt (RSA
 * PKCS#1 v1.5 and OAEP) and keyAgreement (ECDH). Keys come from the card's
 * key cache (card_keycache.c), so a signature costs neither a database read
 * nor a PKCS#8 parse, and reuses its key's signing context while the
 * signature parameters stay the same.
 *
 * Every operation checks, in this order: the key is complete (NO_KEY), its
 * KeyUsage allows the operation (NOT_ALLOWED), its PIN is verified
 * (NOT_AUTHENTICATED), the algorithm fits the key (ALGORITHM) and the data
 * lengths fit the algorithm (OPTION). A successful operation with a key whose
 * PIN policy has CachingSupport false then forgets the PIN's verification, so
 * each use needs its own verifyPIN. Secret results are zeroized in local
 * buffers; the call's writers zeroize themselves when freed.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "../protocol/sks_crypto.h"
#include "card_internal.h"
#include "card_keycache.h"
#include "card_keymat.h"

#define RSA_MAX_BYTES  512 /* RSA-4096 */
#define EC_MAX_BYTES   66  /* coordinate or order size, up to P-521 */
#define EC_DER_SIG_MAX 160 /* DER ECDSA signature for EC_MAX_BYTES */
#define CURVE_NAME_MAX 64

/*
 * The key of an operation: complete, allowing `usage`, PIN verified, parsed
 * (card_keycache.c). The key belongs to the cache. *consume is the policy
 * whose verification a successful use forgets (use_done), SKS_HANDLE_NONE
 * when the policy lets the PIN be cached.
 */
static int usable_key(card_call *call, uint32_t handle, uint8_t usage, const char *what,
                      EVP_PKEY **key, uint32_t *consume)
{
    card_cached_key *k = NULL;
    *consume = SKS_HANDLE_NONE;
    int status = card_keycache_use(call, handle, usage, what, &k);
    if (status == SKS_OK) {
        *key = k->key;
        *consume = k->consume;
    }
    return status;
}

/* After an operation: a successful use under CachingSupport false consumes the verification. */
static int use_done(card_call *call, int status, uint32_t consume)
{
    if (status == SKS_OK && consume != SKS_HANDLE_NONE)
        card_pin_set_verified(call->card, consume, 0);
    return status;
}

/* The digest of a Hash byte; NULL for SKS_HASH_NONE and unknown values. */
static const EVP_MD *hash_md(uint8_t hash)
{
    switch (hash) {
    case SKS_HASH_SHA1:
        return EVP_sha1();
    case SKS_HASH_SHA224:
        return EVP_sha224();
    case SKS_HASH_SHA256:
        return EVP_sha256();
    case SKS_HASH_SHA384:
        return EVP_sha384();
    case SKS_HASH_SHA512:
        return EVP_sha512();
    default:
        return NULL;
    }
}

/* Point a response view at a call writer (INTERNAL if the writer failed). */
static int view_of(card_call *call, sks_writer *w, sks_view *v)
{
    if (w->failed)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    v->ptr = w->buf;
    v->len = w->len;
    return SKS_OK;
}

/* ---- signHashedData ------------------------------------------------------ */

/* Length checks of an RSA signature request; md is NULL for Hash 0. */
static int check_rsa_sign(card_call *call, EVP_PKEY *key, const sks_req_sign *req, const EVP_MD *md)
{
    int pss = req->algorithm == SKS_SIGN_RSA_PSS;
    size_t k = (size_t)EVP_PKEY_get_size(key);
    size_t md_len = md != NULL ? (size_t)EVP_MD_get_size(md) : 0;

    if (pss && md == NULL)
        return card_fail(call, SKS_ERR_ALGORITHM, "RSASSA-PSS needs a hash");
    if (!pss && req->salt_length != 0)
        return card_fail(call, SKS_ERR_OPTION, "SaltLength is only for RSASSA-PSS");
    if (md != NULL && req->data.len != md_len)
        return card_fail(call, SKS_ERR_OPTION, "Data is not a hash value of %zu bytes", md_len);
    if (md == NULL && (req->data.len == 0 || req->data.len + 11 > k))
        return card_fail(call, SKS_ERR_OPTION, "Data must be 1 to %zu bytes", k - 11);
    if (pss) {
        /* RFC 8017 9.1.1: emLen >= hLen + sLen + 2, emLen = ceil((modBits - 1) / 8). */
        size_t em_len = ((size_t)EVP_PKEY_get_bits(key) - 1 + 7) / 8;
        if ((size_t)req->salt_length + md_len + 2 > em_len)
            return card_fail(call, SKS_ERR_OPTION, "SaltLength too large for this key");
    }
    if (k > RSA_MAX_BYTES)
        return card_fail(call, SKS_ERR_ALGORITHM, "RSA key too large");
    return SKS_OK;
}

/* RSA padding, digest and PSS parameters of a request on a signing context. 1 or 0. */
static int set_rsa_sign_params(EVP_PKEY_CTX *ctx, const sks_req_sign *req)
{
    const EVP_MD *md = hash_md(req->hash);
    int pss = req->algorithm == SKS_SIGN_RSA_PSS;
    return EVP_PKEY_CTX_set_rsa_padding(ctx, pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) ==
               1 &&
           (md == NULL || EVP_PKEY_CTX_set_signature_md(ctx, md) == 1) &&
           (!pss || (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1 &&
                     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, req->salt_length) == 1));
}

/*
 * The signing context of key `k` for the request's parameters: the one kept
 * with the key when they are those of its last signature, else a new one,
 * kept in turn. NULL on failure.
 */
static EVP_PKEY_CTX *signing_ctx(card_cached_key *k, const sks_req_sign *req, int rsa)
{
    uint32_t config =
        (uint32_t)req->algorithm | (uint32_t)req->hash << 8 | (uint32_t)req->salt_length << 16;
    if (k->sign_ctx != NULL && k->sign_config == config)
        return k->sign_ctx;
    EVP_PKEY_CTX_free(k->sign_ctx);
    k->sign_ctx = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k->key, NULL);
    if (ctx == NULL || EVP_PKEY_sign_init(ctx) != 1 || (rsa && !set_rsa_sign_params(ctx, req))) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    k->sign_ctx = ctx;
    k->sign_config = config;
    return ctx;
}

/* One signature with the key's context; a failed one does not keep the context. 1 or 0. */
static int sign_with(card_cached_key *k, const sks_req_sign *req, int rsa, uint8_t *sig,
                     size_t *siglen)
{
    EVP_PKEY_CTX *ctx = signing_ctx(k, req, rsa);
    if (ctx != NULL && EVP_PKEY_sign(ctx, sig, siglen, req->data.ptr, req->data.len) == 1)
        return 1;
    EVP_PKEY_CTX_free(k->sign_ctx);
    k->sign_ctx = NULL;
    return 0;
}

static int sign_rsa(card_call *call, card_cached_key *k, const sks_req_sign *req, sks_writer *w)
{
    uint8_t sig[RSA_MAX_BYTES];
    size_t siglen = sizeof(sig);

    int status = check_rsa_sign(call, k->key, req, hash_md(req->hash));
    if (status != SKS_OK)
        return status;
    if (!sign_with(k, req, 1, sig, &siglen))
        return card_fail(call, SKS_ERR_CRYPTO, "RSA signing failed");
    sks_put_raw(w, sig, siglen);
    return SKS_OK;
}

/*
 * One DER INTEGER (positive, minimal) at *p, right-aligned into out[n]:
 * the r or s of an ECDSA-Sig-Value. 0 or -1.
 */
static int der_integer_fixed(const uint8_t **p, const uint8_t *end, uint8_t *out, size_t n)
{
    if (end - *p < 2 || (*p)[0] != 0x02 || (*p)[1] > 0x7F || (size_t)(end - *p - 2) < (*p)[1])
        return -1;
    size_t len = (*p)[1];
    const uint8_t *v = *p + 2;
    *p = v + len;
    if (len == 0 || (v[0] & 0x80) != 0)
        return -1; /* empty or negative */
    while (len > 1 && v[0] == 0) {
        v++;
        len--;
    }
    if (len > n)
        return -1;
    memset(out, 0, n - len);
    memcpy(out + n - len, v, len);
    return 0;
}

/*
 * DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs, short lengths: orders up
 * to 521 bits fit) to r | s, each `n` bytes. 0 or -1.
 */
static int ecdsa_der_to_fixed(const uint8_t *der, size_t derlen, size_t n, sks_writer *w)
{
    uint8_t rs[2 * EC_MAX_BYTES];
    const uint8_t *p = der, *end = der + derlen;
    if (n > EC_MAX_BYTES || derlen < 2 || der[0] != 0x30)
        return -1;
    if (der[1] == 0x81 && derlen >= 3) { /* long form, one length byte */
        if (der[2] != derlen - 3)
            return -1;
        p += 3;
    } else if (der[1] == derlen - 2 && der[1] < 0x80) {
        p += 2;
    } else {
        return -1;
    }
    if (der_integer_fixed(&p, end, rs, n) != 0 || der_integer_fixed(&p, end, rs + n, n) != 0 ||
        p != end)
        return -1;
    sks_put_raw(w, rs, 2 * n);
    return 0;
}

static int sign_ecdsa(card_call *call, card_cached_key *k, const sks_req_sign *req, sks_writer *w)
{
    const EVP_MD *md = hash_md(req->hash);
    uint8_t der[EC_DER_SIG_MAX];
    size_t derlen = sizeof(der);
    size_t order_len = ((size_t)EVP_PKEY_get_bits(k->key) + 7) / 8;

    if (req->salt_length != 0)
        return card_fail(call, SKS_ERR_OPTION, "SaltLength is only for RSASSA-PSS");
    if (req->data.len == 0)
        return card_fail(call, SKS_ERR_OPTION, "Data is empty");
    if (md != NULL && req->data.len != (size_t)EVP_MD_get_size(md))
        return card_fail(call, SKS_ERR_OPTION, "Data is not a hash value of %d bytes",
                         EVP_MD_get_size(md));
    if ((size_t)EVP_PKEY_get_size(k->key) > sizeof(der))
        return card_fail(call, SKS_ERR_ALGORITHM, "EC key too large");
    /* No digest is set: ECDSA signs Data as the hash value (truncated to the order). */
    if (!sign_with(k, req, 0, der, &derlen) || ecdsa_der_to_fixed(der, derlen, order_len, w) != 0)
        return card_fail(call, SKS_ERR_CRYPTO, "ECDSA signing failed");
    return SKS_OK;
}

int card_m_sign_hashed_data(card_call *call, const void *reqp, void *respp)
{
    const sks_req_sign *req = reqp;
    sks_resp_sign *resp = respp;
    card_cached_key *k = NULL;

    int status = card_keycache_use(call, req->key_handle, SKS_USAGE_SIGN, "signing", &k);
    if (status != SKS_OK)
        return status;
    int rsa = EVP_PKEY_get_base_id(k->key) == EVP_PKEY_RSA;
    if (req->hash != SKS_HASH_NONE && hash_md(req->hash) == NULL)
        return card_fail(call, SKS_ERR_ALGORITHM, "unknown hash %u", req->hash);

    switch (req->algorithm) {
    case SKS_SIGN_RSA_PKCS1:
    case SKS_SIGN_RSA_PSS:
        status = rsa ? sign_rsa(call, k, req, &call->out[0])
                     : card_fail(call, SKS_ERR_ALGORITHM, "an RSA signature needs an RSA key");
        break;
    case SKS_SIGN_ECDSA:
        status = !rsa ? sign_ecdsa(call, k, req, &call->out[0])
                      : card_fail(call, SKS_ERR_ALGORITHM, "ECDSA needs an EC key");
        break;
    default:
        status =
            card_fail(call, SKS_ERR_ALGORITHM, "unknown signature algorithm %u", req->algorithm);
        break;
    }
    if (status == SKS_OK)
        status = view_of(call, &call->out[0], &resp->signature);
    return use_done(call, status, k->consume);
}

/* ---- asymmetricDecrypt --------------------------------------------------- */

/* Configure a decryption context for the request's padding. 1 or 0. */
static int set_decrypt_padding(EVP_PKEY_CTX *ctx, const sks_req_decrypt *req)
{
    if (req->algorithm == SKS_DECRYPT_RSA_PKCS1)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, hash_md(req->hash)) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, hash_md(req->mgf_hash)) != 1)
        return 0;
    if (req->label.len == 0)
        return 1;
    /* The context takes ownership of the label copy on success. */
    void *label = OPENSSL_memdup(req->label.ptr, req->label.len);
    if (label == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, (int)req->label.len) != 1) {
        OPENSSL_free(label);
        return 0;
    }
    return 1;
}

/* Algorithm and length checks of a decryption request. */
static int check_decrypt(card_call *call, EVP_PKEY *key, const sks_req_decrypt *req)
{
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
        return card_fail(call, SKS_ERR_ALGORITHM, "decryption needs an RSA key");
    if (req->algorithm == SKS_DECRYPT_RSA_PKCS1) {
        if (req->hash != 0 || req->mgf_hash != 0 || req->label.len != 0)
            return card_fail(call, SKS_ERR_OPTION, "RSAES-PKCS1-v1_5 takes no hash or label");
    } else if (req->algorithm == SKS_DECRYPT_RSA_OAEP) {
        if (hash_md(req->hash) == NULL || hash_md(req->mgf_hash) == NULL)
            return card_fail(call, SKS_ERR_ALGORITHM, "RSAES-OAEP needs a known Hash and MgfHash");
    } else {
        return card_fail(call, SKS_ERR_ALGORITHM, "unknown decryption algorithm %u",
                         req->algorithm);
    }
    size_t k = (size_t)EVP_PKEY_get_size(key);
    if (req->data.len != k)
        return card_fail(call, SKS_ERR_OPTION, "Data must be %zu bytes (the modulus size)", k);
    if (k > RSA_MAX_BYTES)
        return card_fail(call, SKS_ERR_ALGORITHM, "RSA key too large");
    return SKS_OK;
}

int card_m_asymmetric_decrypt(card_call *call, const void *reqp, void *respp)
{
    const sks_req_decrypt *req = reqp;
    sks_resp_decrypt *resp = respp;
    EVP_PKEY *key = NULL;
    uint8_t plain[RSA_MAX_BYTES];
    size_t plainlen = sizeof(plain);
    uint32_t consume;

    int status = usable_key(call, req->key_handle, SKS_USAGE_DECRYPT, "decryption", &key, &consume);
    if (status == SKS_OK)
        status = check_decrypt(call, key, req);
    if (status != SKS_OK)
        return status;

    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1 && set_decrypt_padding(ctx, req) &&
             EVP_PKEY_decrypt(ctx, plain, &plainlen, req->data.ptr, req->data.len) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (ok)
        sks_put_raw(&call->out[0], plain, plainlen);
    sks_cleanse(plain, sizeof(plain));
    if (!ok)
        return card_fail(call, SKS_ERR_CRYPTO, "decryption failed");
    return use_done(call, view_of(call, &call->out[0], &resp->plaintext), consume);
}

/* ---- keyAgreement -------------------------------------------------------- */

/* A peer key from an uncompressed point on `curve`. NULL if not a valid point. */
static EVP_PKEY *peer_from_point(const char *curve, sks_view point)
{
    EVP_PKEY *peer = NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)curve, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point.ptr, point.len),
        OSSL_PARAM_END,
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &peer, EVP_PKEY_PUBLIC_KEY, params) != 1)
        peer = NULL;
    EVP_PKEY_CTX_free(ctx);
    return peer;
}

/* The curve name of an EC key into buf; 0 or -1. */
static int curve_of(const EVP_PKEY *key, char *buf, size_t cap)
{
    size_t len = 0;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, buf, cap, &len) != 1)
        return -1;
    return 0;
}

/*
 * Parse PeerPublicKey: an uncompressed point (04 | X | Y) or a
 * SubjectPublicKeyInfo, which must be on the key's curve.
 */
static int parse_peer(card_call *call, EVP_PKEY *key, const char *curve, sks_view v,
                      EVP_PKEY **peer)
{
    char peer_curve[CURVE_NAME_MAX];
    size_t coord = ((size_t)EVP_PKEY_get_bits(key) + 7) / 8;

    *peer = NULL;
    if (v.len > 0 && v.ptr[0] == 0x04) {
        if (v.len != 1 + 2 * coord)
            return card_fail(call, SKS_ERR_ALGORITHM, "the peer point is not of the key's curve");
        *peer = peer_from_point(curve, v);
        if (*peer == NULL)
            return card_fail(call, SKS_ERR_CRYPTO, "the peer point is not on the key's curve");
        return SKS_OK;
    }
    if (v.len == 0 || v.ptr[0] != 0x30)
        return card_fail(
            call, SKS_ERR_OPTION,
            "PeerPublicKey is neither an uncompressed point nor a SubjectPublicKeyInfo");
    const unsigned char *p = v.ptr;
    *peer = d2i_PUBKEY(NULL, &p, (long)v.len);
    if (*peer == NULL || p != v.ptr + v.len) {
        EVP_PKEY_free(*peer);
        *peer = NULL;
        return card_fail(call, SKS_ERR_CRYPTO, "PeerPublicKey is not a valid public key");
    }
    if (curve_of(*peer, peer_curve, sizeof(peer_curve)) != 0 || strcmp(peer_curve, curve) != 0) {
        EVP_PKEY_free(*peer);
        *peer = NULL;
        return card_fail(call, SKS_ERR_ALGORITHM, "the peer key is not of the key's curve");
    }
    return SKS_OK;
}

int card_m_key_agreement(card_call *call, const void *reqp, void *respp)
{
    const sks_req_key_agreement *req = reqp;
    sks_resp_key_agreement *resp = respp;
    EVP_PKEY *key = NULL, *peer = NULL;
    char curve[CURVE_NAME_MAX];
    uint8_t secret[EC_MAX_BYTES];
    size_t secretlen = sizeof(secret);
    uint32_t consume;

    int status =
        usable_key(call, req->key_handle, SKS_USAGE_KEY_AGREEMENT, "key agreement", &key, &consume);
    if (status != SKS_OK)
        return status;
    if (curve_of(key, curve, sizeof(curve)) != 0)
        return card_fail(call, SKS_ERR_ALGORITHM, "key agreement needs an EC key");
    status = parse_peer(call, key, curve, req->peer_public_key, &peer);
    if (status != SKS_OK)
        return status;

    /* EVP_PKEY_derive_set_peer also validates the peer key (public check). */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
             EVP_PKEY_derive(ctx, secret, &secretlen) == 1;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    if (ok)
        sks_put_raw(&call->out[0], secret, secretlen);
    sks_cleanse(secret, sizeof(secret));
    if (!ok)
        return card_fail(call, SKS_ERR_CRYPTO, "key agreement failed");
    return use_done(call, view_of(call, &call->out[0], &resp->shared_secret), consume);
}

/* ---- key use by other methods (card_internal.h) --------------------------- */

int card_keyuse_begin(card_call *call, uint32_t key_handle, uint8_t usage, const char *what,
                      EVP_PKEY **key, uint32_t *consume)
{
    return usable_key(call, key_handle, usage, what, key, consume);
}

int card_keyuse_end(card_call *call, int status, uint32_t consume)
{
    return use_done(call, status, consume);
}
