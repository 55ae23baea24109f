/*
 * card_inject.c - secure key injection (docs/protocol.md section 10): an
 * issuer that holds the public key of a card key K1 sends the card a
 * session key S1 only that card can recover (importSessionKey), then a
 * private key K2 encrypted under S1 (injectPrivateKey), which the card
 * creates as a complete key under K1's PIN policy. The middleware that
 * relays both never sees S1 or K2. deleteSessionKey forgets S1.
 *
 * The K2 blob is bound to K1 and to the new key's ID and KeyUsage (its
 * AAD, 10.2), and S1 is single use: injectPrivateKey forgets it as soon as
 * a blob has been tried under it, whether the key is then made or not, so
 * that a relay holding one blob can neither inject it twice (under another
 * ID) nor try it again and again.
 *
 * S1 lives in RAM only (card_session_keys.c). Using K1 is a key use like
 * asymmetricDecrypt: its KeyUsage and PIN are checked by the same code, and
 * a policy without CachingSupport loses its PIN verification. Everything
 * injectPrivateKey checks comes before its writes (the next handle, the
 * key), which share the dispatcher's one transaction: a failure or a crash
 * leaves nothing behind.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include "../protocol/sks_crypto.h"
#include "../protocol/sks_keys.h"
#include "card_internal.h"
#include "card_keymat.h"
#include "card_session_keys.h"

#define RSA_MAX_BYTES    512 /* RSA-4096 */
#define ECDH_POINT_LEN   65  /* uncompressed P-256 point */
#define INJECT_PLAIN_MAX (16u * 1024u)
#define INJECT_AAD_MAX   (32 + 1 + SKS_ID_MAX + 1)
#define S1_LABEL         "SKS session key"

/* ---- importSessionKey ---------------------------------------------------- */

/* S1 = RSAES-OAEP-SHA256 (MGF1-SHA256, empty label) decryption of EncryptedKey. */
static int s1_from_oaep(card_call *call, EVP_PKEY *k1, sks_view enc, uint8_t s1[CARD_S1_LEN])
{
    uint8_t plain[RSA_MAX_BYTES];
    size_t plain_len = sizeof(plain);

    if (EVP_PKEY_get_base_id(k1) != EVP_PKEY_RSA)
        return card_fail(call, SKS_ERR_ALGORITHM, "RSA-OAEP needs an RSA key");
    size_t k = (size_t)EVP_PKEY_get_size(k1);
    if (k > RSA_MAX_BYTES)
        return card_fail(call, SKS_ERR_ALGORITHM, "RSA key too large");
    if (enc.len != k)
        return card_fail(call, SKS_ERR_OPTION, "EncryptedKey must be %zu bytes (the modulus size)",
                         k);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k1, NULL);
    int ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_decrypt(ctx, plain, &plain_len, enc.ptr, enc.len) == 1;
    EVP_PKEY_CTX_free(ctx);
    ok = ok && plain_len == CARD_S1_LEN;
    if (ok)
        memcpy(s1, plain, CARD_S1_LEN);
    sks_cleanse(plain, sizeof(plain));
    if (!ok)
        return card_fail(call, SKS_ERR_CRYPTO,
                         "EncryptedKey does not decrypt to a 32-byte session key");
    return SKS_OK;
}

/* S1 = HMAC-SHA256(key = Z, "SKS session key"), Z the ECDH x-coordinate of K1 and the point. */
static int s1_from_ecdh(card_call *call, EVP_PKEY *k1, sks_view point, uint8_t s1[CARD_S1_LEN])
{
    uint8_t z[32];
    size_t z_len = sizeof(z), mac_len = 0;

    if (card_keymat_alg_of(k1) != SKS_KEYALG_EC_P256)
        return card_fail(call, SKS_ERR_ALGORITHM, "ECDH session keys need an EC P-256 key");
    if (point.len != ECDH_POINT_LEN || point.ptr[0] != 0x04)
        return card_fail(call, SKS_ERR_OPTION,
                         "EncryptedKey must be an uncompressed P-256 point (65 bytes)");
    /* The issuer's ephemeral public key: an uncompressed point on P-256. */
    EVP_PKEY *peer = sks_ec_point_key(NULL, "P-256", point.ptr, point.len);
    if (peer == NULL)
        return card_fail(call, SKS_ERR_CRYPTO, "EncryptedKey is not a point on P-256");
    /* EVP_PKEY_derive_set_peer also validates the peer key. */
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, k1, NULL);
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, z, &z_len) == 1 &&
             z_len == sizeof(z);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    ok = ok &&
         EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, z, z_len, (const unsigned char *)S1_LABEL,
                   strlen(S1_LABEL), s1, CARD_S1_LEN, &mac_len) != NULL &&
         mac_len == CARD_S1_LEN;
    sks_cleanse(z, sizeof(z));
    if (!ok) {
        sks_cleanse(s1, CARD_S1_LEN);
        return card_fail(call, SKS_ERR_CRYPTO, "key agreement failed");
    }
    return SKS_OK;
}

/* SHA-256 of the SubjectPublicKeyInfo of a key, as the card encodes it (9.1). */
static int spki_hash(card_call *call, const EVP_PKEY *key, uint8_t out[32])
{
    card_buf spki = {NULL, 0};
    int ok = card_keymat_spki(key, &spki) == 0 && sks_sha256(spki.ptr, spki.len, out) == 0;
    card_buf_free(&spki);
    if (!ok)
        return card_fail(call, SKS_ERR_INTERNAL, "cannot encode the public key");
    return SKS_OK;
}

int card_m_import_session_key(card_call *call, const void *reqp, void *respp)
{
    const sks_req_import_session_key *req = reqp;
    sks_resp_import_session_key *resp = respp;
    uint8_t s1[CARD_S1_LEN], hash[32];
    uint8_t usage;
    EVP_PKEY *k1 = NULL;
    uint32_t consume = SKS_HANDLE_NONE;

    if (req->algorithm == SKS_SKIMPORT_RSA_OAEP_SHA256)
        usage = SKS_USAGE_DECRYPT;
    else if (req->algorithm == SKS_SKIMPORT_ECDH_P256)
        usage = SKS_USAGE_KEY_AGREEMENT;
    else
        return card_fail(call, SKS_ERR_ALGORITHM, "unknown session key algorithm %u",
                         req->algorithm);
    int status = card_keyuse_begin(call, req->key_handle, usage,
                                   usage == SKS_USAGE_DECRYPT ? "decryption" : "key agreement", &k1,
                                   &consume);
    if (status != SKS_OK)
        return status;
    if (!card_session_keys_room(call->card))
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "the card already holds %d session keys",
                         SKS_SESSION_KEYS_MAX);
    status = usage == SKS_USAGE_DECRYPT ? s1_from_oaep(call, k1, req->encrypted_key, s1)
                                        : s1_from_ecdh(call, k1, req->encrypted_key, s1);
    if (status == SKS_OK)
        status = spki_hash(call, k1, hash);
    if (status == SKS_OK) {
        status =
            card_session_keys_add(call->card, req->key_handle, s1, hash, &resp->session_key_handle);
        if (status != SKS_OK)
            card_fail(call, status, "cannot keep the session key");
    }
    sks_cleanse(s1, sizeof(s1));
    return card_keyuse_end(call, status, consume);
}

/* ---- injectPrivateKey ---------------------------------------------------- */

/*
 * The AAD of a K2 blob (10.2): SHA-256 of K1's SubjectPublicKeyInfo (kept
 * with S1), the ID's length as one byte, the ID, the KeyUsage byte. Its
 * length (35..66).
 */
static size_t blob_aad(const card_session_key *sk, const sks_req_inject_private_key *req,
                       uint8_t aad[INJECT_AAD_MAX])
{
    memcpy(aad, sk->k1_spki_hash, sizeof(sk->k1_spki_hash));
    size_t n = sizeof(sk->k1_spki_hash);
    aad[n++] = (uint8_t)req->id.len; /* 1..SKS_ID_MAX (check_new_key) */
    memcpy(aad + n, req->id.ptr, req->id.len);
    n += req->id.len;
    aad[n++] = req->key_usage;
    return n;
}

/* AES-256-GCM decryption of ciphertext | tag under S1 with the blob's AAD into `plain`. */
static int open_blob(card_call *call, const card_session_key *sk,
                     const sks_req_inject_private_key *req, card_buf *plain)
{
    sks_view blob = req->encrypted_private_key;
    uint8_t aad[INJECT_AAD_MAX];
    size_t aad_len = blob_aad(sk, req, aad);
    size_t ct_len = blob.len - SKS_INJECT_TAG_LEN; /* the decoder enforces len > tag */
    uint8_t *pt = OPENSSL_malloc(ct_len);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    int ok = pt != NULL && ctx != NULL &&
             EVP_DecryptInit_ex2(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SKS_INJECT_IV_LEN, NULL) == 1 &&
             EVP_DecryptInit_ex2(ctx, NULL, sk->s1, req->iv.ptr, NULL) == 1 &&
             EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) == 1 &&
             EVP_DecryptUpdate(ctx, pt, &n, blob.ptr, (int)ct_len) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SKS_INJECT_TAG_LEN,
                                 (void *)(blob.ptr + ct_len)) == 1 &&
             EVP_DecryptFinal_ex(ctx, pt + n, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (ok && card_buf_set(plain, pt, (size_t)n + (size_t)fin) != 0) {
        OPENSSL_clear_free(pt, ct_len);
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    }
    if (pt != NULL)
        OPENSSL_clear_free(pt, ct_len);
    if (!ok)
        return card_fail(call, pt == NULL || ctx == NULL ? SKS_ERR_INTERNAL : SKS_ERR_CRYPTO,
                         "EncryptedPrivateKey does not decrypt under the session key");
    return SKS_OK;
}

/* A KeyUsage the key's algorithm can serve: RSA signs and decrypts, EC signs and agrees keys. */
static int check_usage(card_call *call, uint8_t usage, uint8_t alg)
{
    int rsa = alg == SKS_KEYALG_RSA2048 || alg == SKS_KEYALG_RSA3072 || alg == SKS_KEYALG_RSA4096;
    uint8_t possible = SKS_USAGE_SIGN | (rsa ? SKS_USAGE_DECRYPT : SKS_USAGE_KEY_AGREEMENT);
    if (usage & ~possible)
        return card_fail(call, SKS_ERR_ALGORITHM, "an %s key cannot serve KeyUsage 0x%02x",
                         rsa ? "RSA" : "EC", usage);
    return SKS_OK;
}

/*
 * The injected key's private and public key: the plaintext is exactly one
 * PKCS#8 PrivateKeyInfo of an algorithm the card supports.
 */
static int take_key(card_call *call, card_buf *pkcs8, card_key_rec *k)
{
    EVP_PKEY *key = card_keymat_load(pkcs8->ptr, pkcs8->len);
    if (key == NULL)
        return card_fail(call, SKS_ERR_CRYPTO, "the plaintext is not a PKCS#8 private key");
    int status = SKS_OK;
    k->algorithm = card_keymat_alg_of(key);
    if (k->algorithm == 0)
        status = card_fail(call, SKS_ERR_ALGORITHM, "the private key is of no supported algorithm");
    if (status == SKS_OK && card_keymat_spki(key, &k->public_key) != 0)
        status = card_fail(call, SKS_ERR_CRYPTO, "cannot encode the public key");
    EVP_PKEY_free(key);
    if (status == SKS_OK) {
        k->private_key = *pkcs8;
        *pkcs8 = (card_buf){NULL, 0};
    }
    return status;
}

/* The certificate path: its end entity holds the key's public key; kept in wire form. */
static int take_cert_path(card_call *call, const sks_certpath *path, card_key_rec *k)
{
    if (path->count == 0)
        return SKS_OK;
    if (!card_keymat_cert_matches(path->cert[0].ptr, path->cert[0].len, k->public_key.ptr,
                                  k->public_key.len))
        return card_fail(call, SKS_ERR_OPTION,
                         "the first certificate does not hold the key's public key");
    sks_writer w;
    sks_writer_init(&w);
    sks_put_byte(&w, path->count);
    for (size_t i = 0; i < path->count; i++)
        sks_put_bytes(&w, path->cert[i].ptr, path->cert[i].len);
    int ok = !w.failed && card_buf_set(&k->cert_path, w.buf, w.len) == 0;
    sks_writer_free(&w);
    return ok ? SKS_OK : card_fail(call, SKS_ERR_INTERNAL, "out of memory");
}

/*
 * The checks that need no decryption: KeyUsage, a free ID, room for one
 * more key, a blob not too long. A failure here leaves S1 in place.
 */
static int check_new_key(card_call *call, const sks_req_inject_private_key *req)
{
    int used = 0;
    uint32_t count = 0;
    if (req->key_usage == 0 || (req->key_usage & ~SKS_USAGE_ALL) != 0)
        return card_fail(call, SKS_ERR_OPTION, "KeyUsage must be a non-empty set of 1, 2, 4");
    if (req->id.len < 1 || req->id.len > SKS_ID_MAX)
        return card_fail(call, SKS_ERR_OPTION, "the ID must be 1 to %d bytes", SKS_ID_MAX);
    if (card_store_key_id_used(call->card->store, req->id, SKS_HANDLE_NONE, &used) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot look up key IDs");
    if (used)
        return card_fail(call, SKS_ERR_OPTION, "another key already has this ID");
    if (card_store_key_count(call->card->store, &count) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot count the keys");
    if (count >= call->card->max_keys)
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "the card holds its maximum of %u keys",
                         call->card->max_keys);
    if (req->encrypted_private_key.len > INJECT_PLAIN_MAX + SKS_INJECT_TAG_LEN)
        return card_fail(call, SKS_ERR_OPTION, "EncryptedPrivateKey is larger than %u bytes",
                         INJECT_PLAIN_MAX + SKS_INJECT_TAG_LEN);
    return SKS_OK;
}

int card_m_inject_private_key(card_call *call, const void *reqp, void *respp)
{
    const sks_req_inject_private_key *req = reqp;
    sks_resp_inject_private_key *resp = respp;
    card_key_rec k1, k;
    card_buf plain = {NULL, 0};

    memset(&k, 0, sizeof(k));
    memset(&k1, 0, sizeof(k1));
    const card_session_key *sk = card_session_keys_find(call->card, req->session_key_handle);
    if (sk == NULL)
        return card_fail(call, SKS_ERR_NO_KEY, "no session key %u", req->session_key_handle);
    int status = card_key_get_complete(call, sk->k1, &k1);
    if (status == SKS_OK)
        status = check_new_key(call, req);
    if (status == SKS_OK) {
        status = open_blob(call, sk, req, &plain);
        /* Tried once: S1 is spent, whether the blob opened or not (10.2). */
        card_session_keys_delete(call->card, req->session_key_handle);
    }
    if (status == SKS_OK)
        status = take_key(call, &plain, &k);
    if (status == SKS_OK)
        status = check_usage(call, req->key_usage, k.algorithm);
    if (status == SKS_OK)
        status = take_cert_path(call, &req->certificate_path, &k);
    if (status == SKS_OK && card_store_next_handle(call->card->store, &k.handle) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot allocate a handle");
    if (status == SKS_OK) {
        k.session = SKS_HANDLE_NONE;
        memcpy(k.id, req->id.ptr, req->id.len);
        k.id_len = (uint8_t)req->id.len;
        k.pin_policy = k1.pin_policy;
        k.flags = SKS_KEYFLAG_IMPORT_PRIVATE_KEY | SKS_KEYFLAG_COMPLETE;
        k.usage = req->key_usage;
        if (card_buf_set(&k.friendly_name, req->friendly_name.ptr, req->friendly_name.len) != 0)
            status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    }
    if (status == SKS_OK && card_store_key_put(call->card->store, &k) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot store the key");
    if (status == SKS_OK)
        resp->key_handle = k.handle;
    card_buf_free(&plain);
    card_key_rec_free(&k);
    card_key_rec_free(&k1);
    return status;
}

/* ---- deleteSessionKey ---------------------------------------------------- */

int card_m_delete_session_key(card_call *call, const void *reqp, void *respp)
{
    const sks_req_delete_session_key *req = reqp;
    (void)respp;
    if (card_session_keys_delete(call->card, req->session_key_handle) != 0)
        return card_fail(call, SKS_ERR_NO_KEY, "no session key %u", req->session_key_handle);
    return SKS_OK;
}
