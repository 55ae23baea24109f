/*
 * tok_cipher.c - encryption and decryption: the logic behind C_EncryptInit ..
 * C_DecryptFinal for RSA, and the dispatch to AES (tok_aes.c) for secret keys.
 *
 * RSA decryption runs on the card (asymmetricDecrypt: PKCS#1 v1.5, or OAEP
 * with the hash, MGF1 hash and label of CK_RSA_PKCS_OAEP_PARAMS); RSA
 * encryption runs in the module with the public key. RSA is single-part:
 * Update calls collect the input, Final does the work.
 *
 * Decryption output sizes: a length query answers the modulus size (an
 * upper bound, as the standard allows). A buffer smaller than that still
 * works when the plaintext fits; when it does not, the plaintext is kept
 * (zeroized at the end) so that the caller's second call with a larger
 * buffer does not decrypt again.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rsa.h>

#include "protocol/sks_crypto.h"
#include "token/tok_crypto.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

#define RSA_MAX_BYTES 512

/* Configure an RSA encryption context for PKCS#1 v1.5 or OAEP. 1 or 0. */
static int set_padding(EVP_PKEY_CTX *ctx, const tok_rsa_crypt_map *map)
{
    if (map->alg == SKS_DECRYPT_RSA_PKCS1)
        return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
    if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, tok_hash_md(map->hash)) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, tok_hash_md(map->mgf_hash)) != 1)
        return 0;
    if (map->label_len == 0)
        return 1;
    void *label = OPENSSL_memdup(map->label, map->label_len);
    if (label == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, (int)map->label_len) != 1) {
        OPENSSL_free(label);
        return 0;
    }
    return 1;
}

/* The largest message a padding takes for a modulus of k bytes. */
static size_t max_message(const tok_rsa_crypt_map *map, size_t k)
{
    size_t overhead = map->alg == SKS_DECRYPT_RSA_PKCS1 ? 11 : 2 * tok_hash_len(map->hash) + 2;
    return k > overhead ? k - overhead : 0;
}

CK_RV tok_rsa_public_encrypt(EVP_PKEY *pub, const tok_rsa_crypt_map *map, const uint8_t *in,
                             size_t len, uint8_t *out, size_t *out_len)
{
    size_t k = (size_t)EVP_PKEY_get_size(pub);
    if (len > max_message(map, k))
        return CKR_DATA_LEN_RANGE;
    if (*out_len < k)
        return CKR_BUFFER_TOO_SMALL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(tok_ossl_ctx(), pub, NULL);
    int ok = ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1 && set_padding(ctx, map) &&
             EVP_PKEY_encrypt(ctx, out, out_len, in, len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV tok_rsa_card_decrypt(tok_card *card, uint32_t card_key, const tok_rsa_crypt_map *map,
                           const uint8_t *in, size_t len, sks_writer *answer, sks_writer *out)
{
    sks_req_decrypt req = {
        .key_handle = card_key,
        .algorithm = map->alg,
        .hash = map->hash,
        .mgf_hash = map->mgf_hash,
        .label = {map->label, map->label_len},
        .data = {in, len},
    };
    sks_resp_decrypt resp;
    uint8_t status = SKS_OK;
    sks_writer_reset(answer);
    CK_RV rv = tok_card_call(card, SKS_M_ASYMMETRIC_DECRYPT, &req, &resp, answer, &status, NULL, 0);
    if (rv == CKR_OK && status != SKS_OK)
        rv = tok_status_to_rv(status, SKS_M_ASYMMETRIC_DECRYPT);
    if (rv == CKR_OK) {
        sks_put_raw(out, resp.plaintext.ptr, resp.plaintext.len);
        if (out->failed)
            rv = CKR_HOST_MEMORY;
    }
    sks_writer_reset(answer); /* it held the plaintext */
    return rv;
}

CK_RV tok_rsa_crypt_init(tok_session *s, tok_operation *op, const CK_MECHANISM *m,
                         CK_OBJECT_HANDLE key, int encrypt)
{
    const tok_mech *d;
    tok_rsa_crypt_map map;
    tok_object obj;
    tok_op_state *st;

    CK_RV rv = tok_mech_check(m, encrypt ? CKF_ENCRYPT : CKF_DECRYPT, &d);
    if (rv == CKR_OK)
        rv = tok_mech_rsa_crypt_map(m, &map);
    if (rv == CKR_OK)
        rv = tok_op_key(s, key, encrypt ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY, d->key,
                        encrypt ? CKA_ENCRYPT : CKA_DECRYPT, &obj);
    if (rv != CKR_OK)
        return rv;
    EVP_PKEY *pub = NULL;
    if (obj.where == TOK_OBJ_CARD_KEY && obj.key != NULL && obj.key->public_key != NULL) {
        if (EVP_PKEY_up_ref(obj.key->public_key) == 1)
            pub = obj.key->public_key;
    } else if (encrypt) {
        pub = tok_pkey_from_attrs(obj.attrs);
    } else if (obj.where == TOK_OBJ_SESSION) {
        /* A software key of the issuer token (no-card mode) decrypts in the module. */
        pub = tok_soft_private_key(obj.attrs);
    }
    if (pub == NULL)
        return CKR_KEY_HANDLE_INVALID;
    size_t k = (size_t)EVP_PKEY_get_size(pub);
    rv = tok_key_size_check(d, (CK_ULONG)EVP_PKEY_get_bits(pub));
    /* OAEP with a large hash may leave no room for a message in a small key. */
    if (rv == CKR_OK && max_message(&map, k) == 0)
        rv = CKR_KEY_SIZE_RANGE;
    if (rv == CKR_OK)
        rv =
            tok_op_begin(op, encrypt ? TOK_OPER_ENCRYPT : TOK_OPER_DECRYPT, m->mechanism, key, &st);
    if (rv != CKR_OK) {
        EVP_PKEY_free(pub);
        return rv;
    }
    st->pub = pub;
    st->block_len = k;
    st->crypt = map;
    if (map.label_len > 0) { /* keep our own copy of the caller's label */
        sks_put_raw(&st->params, map.label, map.label_len);
        if (st->params.failed) {
            tok_op_end(op);
            return CKR_HOST_MEMORY;
        }
        st->crypt.label = st->params.buf;
    }
    if (!encrypt && obj.key != NULL) { /* a card key; a software key leaves st->card NULL */
        st->card = obj.card;
        st->card_key = obj.key->handle;
        op->auth_pending = obj.key->always_authenticate;
    }
    return CKR_OK;
}

/* Decrypt on the card, or reuse the plaintext kept from the same input. */
static CK_RV decrypt_kept(const tok_operation *op, tok_op_state *st, const uint8_t *in, size_t len)
{
    if (st->result_input.len == len && st->result.len > 0 &&
        CRYPTO_memcmp(st->result_input.buf, in, len) == 0)
        return CKR_OK;
    /* An always-authenticate key is used only after its context login (C_Login). */
    if (op->auth_pending)
        return CKR_USER_NOT_LOGGED_IN;
    sks_writer_reset(&st->result);
    sks_writer_reset(&st->result_input);
    if (len != st->block_len)
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    CK_RV rv = st->card == NULL /* a software key of the issuer token: st->pub is the key */
                   ? tok_soft_rsa_decrypt(st->pub, &st->crypt, in, len, &st->result)
                   : tok_rsa_card_decrypt(st->card, st->card_key, &st->crypt, in, len, &st->answer,
                                          &st->result);
    if (rv == CKR_OK) {
        sks_put_raw(&st->result_input, in, len);
        if (st->result_input.failed)
            rv = CKR_HOST_MEMORY;
    }
    return rv;
}

CK_RV tok_rsa_crypt(tok_operation *op, const uint8_t *in, size_t len, uint8_t *out,
                    CK_ULONG *out_len)
{
    tok_op_state *st = op->extra;
    int query = 0;
    CK_RV rv;

    if (op->kind == TOK_OPER_ENCRYPT) {
        rv = tok_out_check(out, out_len, st->block_len, &query);
        if (rv == CKR_OK && !query) {
            size_t n = st->block_len;
            rv = tok_rsa_public_encrypt(st->pub, &st->crypt, in, len, out, &n);
            *out_len = (CK_ULONG)n;
        } else if (len > max_message(&st->crypt, st->block_len)) {
            rv = CKR_DATA_LEN_RANGE;
        }
        return tok_op_done(op, rv, query);
    }
    if (out == NULL) { /* length query: the modulus size bounds the plaintext */
        *out_len = (CK_ULONG)st->block_len;
        return tok_op_done(op, len == st->block_len ? CKR_OK : CKR_ENCRYPTED_DATA_LEN_RANGE, 1);
    }
    if (*out_len >= st->block_len) { /* fits whatever it is: nothing needs keeping */
        sks_writer_reset(&st->result);
        sks_writer_reset(&st->result_input);
    }
    rv = decrypt_kept(op, st, in, len);
    if (rv == CKR_OK) {
        CK_ULONG have = *out_len;
        *out_len = (CK_ULONG)st->result.len;
        if (have < st->result.len)
            return CKR_BUFFER_TOO_SMALL; /* the plaintext stays for the next call */
        memcpy(out, st->result.buf, st->result.len);
    }
    return tok_op_done(op, rv, 0);
}

/* ---- the C_Encrypt / C_Decrypt family -------------------------------------- */

static int is_rsa(CK_MECHANISM_TYPE m)
{
    return m == CKM_RSA_PKCS || m == CKM_RSA_PKCS_OAEP;
}

static CK_RV crypt_init(tok_session *s, tok_operation *op, const CK_MECHANISM *m,
                        CK_OBJECT_HANDLE key, int encrypt)
{
    if (op->kind != TOK_OPER_NONE)
        return CKR_OPERATION_ACTIVE;
    const tok_mech *d = tok_mech_find(m->mechanism);
    if (d == NULL || !(d->flags & (encrypt ? CKF_ENCRYPT : CKF_DECRYPT)))
        return CKR_MECHANISM_INVALID;
    if (is_rsa(m->mechanism))
        return tok_rsa_crypt_init(s, op, m, key, encrypt);
    return tok_aes_init(s, op, m, key, encrypt);
}

static CK_RV crypt_single(tok_operation *op, enum tok_op_kind kind, const uint8_t *in, CK_ULONG len,
                          uint8_t *out, CK_ULONG *out_len)
{
    CK_RV rv = tok_op_active(op, kind);
    if (rv != CKR_OK)
        return rv;
    if (op->multi)
        return tok_op_done(op, CKR_OPERATION_ACTIVE, 0);
    if (is_rsa(op->mech))
        return tok_rsa_crypt(op, in, len, out, out_len);
    return tok_aes_single(op, in, len, out, out_len, kind == TOK_OPER_ENCRYPT);
}

static CK_RV crypt_update(tok_operation *op, enum tok_op_kind kind, const uint8_t *in, CK_ULONG len,
                          uint8_t *out, CK_ULONG *out_len)
{
    CK_RV rv = tok_op_active(op, kind);
    if (rv != CKR_OK)
        return rv;
    if (is_rsa(op->mech)) {
        const tok_op_state *st = op->extra;
        op->multi = 1;
        rv = tok_op_collect(op, in, len, st->block_len);
        if (rv == CKR_DATA_LEN_RANGE && kind == TOK_OPER_DECRYPT)
            rv = CKR_ENCRYPTED_DATA_LEN_RANGE;
        *out_len = 0; /* everything comes out of Final */
        return rv == CKR_OK ? rv : tok_op_done(op, rv, 0);
    }
    return tok_aes_update(op, in, len, out, out_len, kind == TOK_OPER_ENCRYPT);
}

static CK_RV crypt_final(tok_operation *op, enum tok_op_kind kind, uint8_t *out, CK_ULONG *out_len)
{
    CK_RV rv = tok_op_active(op, kind);
    if (rv != CKR_OK)
        return rv;
    if (is_rsa(op->mech))
        return tok_rsa_crypt(op, op->buffered.buf, op->buffered.len, out, out_len);
    return tok_aes_final(op, out, out_len, kind == TOK_OPER_ENCRYPT);
}

CK_RV tok_encrypt_init(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    return crypt_init(s, &s->encrypt, m, key, 1);
}

CK_RV tok_encrypt(tok_session *s, const uint8_t *in, CK_ULONG len, uint8_t *out, CK_ULONG *out_len)
{
    return crypt_single(&s->encrypt, TOK_OPER_ENCRYPT, in, len, out, out_len);
}

CK_RV tok_encrypt_update(tok_session *s, const uint8_t *in, CK_ULONG len, uint8_t *out,
                         CK_ULONG *out_len)
{
    return crypt_update(&s->encrypt, TOK_OPER_ENCRYPT, in, len, out, out_len);
}

CK_RV tok_encrypt_final(tok_session *s, uint8_t *out, CK_ULONG *out_len)
{
    return crypt_final(&s->encrypt, TOK_OPER_ENCRYPT, out, out_len);
}

CK_RV tok_decrypt_init(tok_session *s, const CK_MECHANISM *m, CK_OBJECT_HANDLE key)
{
    return crypt_init(s, &s->decrypt, m, key, 0);
}

CK_RV tok_decrypt(tok_session *s, const uint8_t *in, CK_ULONG len, uint8_t *out, CK_ULONG *out_len)
{
    return crypt_single(&s->decrypt, TOK_OPER_DECRYPT, in, len, out, out_len);
}

CK_RV tok_decrypt_update(tok_session *s, const uint8_t *in, CK_ULONG len, uint8_t *out,
                         CK_ULONG *out_len)
{
    return crypt_update(&s->decrypt, TOK_OPER_DECRYPT, in, len, out, out_len);
}

CK_RV tok_decrypt_final(tok_session *s, uint8_t *out, CK_ULONG *out_len)
{
    return crypt_final(&s->decrypt, TOK_OPER_DECRYPT, out, out_len);
}

/*
 * The padding of `map` on an RSA context (tok_crypto.h): shared with the
 * software keys of the issuer token (no-card mode, tok_soft_ops.c).
 */
int tok_rsa_padding(EVP_PKEY_CTX *ctx, const tok_rsa_crypt_map *map)
{
    return set_padding(ctx, map);
}
