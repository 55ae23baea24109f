/*
 * tok_aes.c - AES-ECB, AES-CBC, AES-CBC with PKCS#7 padding and AES-GCM with
 * session secret keys, in the module (OpenSSL EVP). No CKF_HW: the card
 * holds no secret keys.
 *
 * Multi-part ECB/CBC keeps the bytes of an incomplete block itself (and,
 * when decrypting with padding, the last complete block until Final), so
 * every Update knows its exact output size before it consumes anything:
 * a length query or CKR_BUFFER_TOO_SMALL leaves the operation untouched.
 * GCM encryption streams; GCM decryption collects the input and releases
 * the plaintext only in Final, after the tag has been checked.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "protocol/sks_crypto.h"
#include "token/tok_crypto.h"
#include "token/tok_ossl.h"

#define BLOCK        16
#define GCM_IV_MAX   256
#define GCM_AAD_MAX  (1u << 20)
#define GCM_DATA_MAX (1u << 30)

/* The v2.40 CK_GCM_PARAMS before ulIvBits was added: some applications still pass it. */
typedef struct {
    CK_BYTE_PTR pIv;
    CK_ULONG ulIvLen;
    CK_BYTE_PTR pAAD;
    CK_ULONG ulAADLen;
    CK_ULONG ulTagBits;
} gcm_params_short;

/* ---- ciphers, fetched once from the module's library context ---------------- */

static const CK_MECHANISM_TYPE cipher_mechs[] = {CKM_AES_ECB, CKM_AES_CBC, CKM_AES_GCM,
                                                 CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_PAD};
static const char *const cipher_modes[] = {"ECB", "CBC", "GCM", "WRAP", "WRAP-PAD"};
#define NMODES (sizeof(cipher_mechs) / sizeof(cipher_mechs[0]))

const EVP_CIPHER *tok_aes_cipher(CK_MECHANISM_TYPE mech, size_t key_len)
{
    if (key_len != 16 && key_len != 24 && key_len != 32)
        return NULL;
    if (mech == CKM_AES_CBC_PAD)
        mech = CKM_AES_CBC;
    for (size_t m = 0; m < NMODES; m++) {
        if (cipher_mechs[m] == mech) {
            char name[32];
            snprintf(name, sizeof(name), "AES-%zu-%s", key_len * 8, cipher_modes[m]);
            return tok_ossl_cipher(name);
        }
    }
    return NULL;
}

/* ---- init ---------------------------------------------------------------- */

/* Keep a copy of caller data in the operation's parameter store; its offset in *off. */
static CK_RV keep(tok_op_state *st, const void *p, size_t n, size_t *off)
{
    *off = st->params.len;
    if (n > 0) {
        if (p == NULL)
            return CKR_MECHANISM_PARAM_INVALID;
        sks_put_raw(&st->params, p, n);
    }
    return st->params.failed ? CKR_HOST_MEMORY : CKR_OK;
}

static CK_RV gcm_params(tok_op_state *st, const CK_MECHANISM *m)
{
    gcm_params_short g;
    if (m->pParameter != NULL && m->ulParameterLen == sizeof(CK_GCM_PARAMS)) {
        const CK_GCM_PARAMS *p = m->pParameter;
        g = (gcm_params_short){p->pIv, p->ulIvLen, p->pAAD, p->ulAADLen, p->ulTagBits};
    } else if (m->pParameter != NULL && m->ulParameterLen == sizeof(gcm_params_short)) {
        memcpy(&g, m->pParameter, sizeof(g));
    } else {
        return CKR_MECHANISM_PARAM_INVALID;
    }
    if (g.ulIvLen < 1 || g.ulIvLen > GCM_IV_MAX || g.ulAADLen > GCM_AAD_MAX ||
        g.ulTagBits % 8 != 0 || g.ulTagBits < 32 || g.ulTagBits > 128)
        return CKR_MECHANISM_PARAM_INVALID;
    st->iv_len = g.ulIvLen;
    st->aad_len = g.ulAADLen;
    st->tag_len = g.ulTagBits / 8;
    CK_RV rv = keep(st, g.pIv, g.ulIvLen, &st->iv_off);
    if (rv == CKR_OK)
        rv = keep(st, g.pAAD, g.ulAADLen, &st->aad_off);
    return rv;
}

static CK_RV mode_params(tok_op_state *st, const CK_MECHANISM *m)
{
    switch (m->mechanism) {
    case CKM_AES_ECB:
        return m->ulParameterLen == 0 ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
    case CKM_AES_CBC:
    case CKM_AES_CBC_PAD:
        if (m->pParameter == NULL || m->ulParameterLen != BLOCK)
            return CKR_MECHANISM_PARAM_INVALID;
        st->iv_len = BLOCK;
        return keep(st, m->pParameter, BLOCK, &st->iv_off);
    case CKM_AES_GCM:
        return gcm_params(st, m);
    default:
        return CKR_MECHANISM_INVALID;
    }
}

CK_RV tok_aes_init(tok_session *s, tok_operation *op, const CK_MECHANISM *m, CK_OBJECT_HANDLE key,
                   int encrypt)
{
    tok_object obj;
    tok_op_state *st;
    const tok_mech *d = tok_mech_find(m->mechanism);
    if (d == NULL || d->key != TOK_MK_AES)
        return CKR_MECHANISM_INVALID;
    CK_RV rv =
        tok_op_key(s, key, CKO_SECRET_KEY, TOK_MK_AES, encrypt ? CKA_ENCRYPT : CKA_DECRYPT, &obj);
    if (rv != CKR_OK)
        return rv;
    const tok_attr *value = tok_attrs_find(obj.attrs, CKA_VALUE);
    if (value == NULL || value->value == NULL)
        return CKR_KEY_HANDLE_INVALID;
    const EVP_CIPHER *cipher = tok_aes_cipher(m->mechanism, value->len);
    if (cipher == NULL)
        return CKR_KEY_SIZE_RANGE;
    rv = tok_op_begin(op, encrypt ? TOK_OPER_ENCRYPT : TOK_OPER_DECRYPT, m->mechanism, key, &st);
    if (rv != CKR_OK)
        return rv;
    rv = mode_params(st, m);
    if (rv == CKR_OK && op->cipher == NULL && (op->cipher = EVP_CIPHER_CTX_new()) == NULL)
        rv = CKR_HOST_MEMORY;
    if (rv != CKR_OK) {
        tok_op_end(op);
        return rv;
    }
    st->cipher = cipher;
    memcpy(st->aes_key, value->value, value->len);
    st->aes_key_len = value->len;
    return CKR_OK;
}

/* ---- the cipher context ---------------------------------------------------- */

/* (Re)start op->cipher for the operation: key, IV (GCM: IV length, AAD), padding. */
static CK_RV start(tok_operation *op, int encrypt, int padding)
{
    tok_op_state *st = op->extra;
    const uint8_t *iv = st->iv_len > 0 ? st->params.buf + st->iv_off : NULL;
    int ok;
    if (op->mech == CKM_AES_GCM) {
        size_t iv_len = st->iv_len;
        OSSL_PARAM p[] = {OSSL_PARAM_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &iv_len), OSSL_PARAM_END};
        int n = 0;
        ok = EVP_CipherInit_ex2(op->cipher, st->cipher, NULL, NULL, encrypt, p) == 1 &&
             EVP_CipherInit_ex2(op->cipher, NULL, st->aes_key, iv, encrypt, NULL) == 1 &&
             (st->aad_len == 0 ||
              EVP_CipherUpdate(op->cipher, NULL, &n, st->params.buf + st->aad_off,
                               (int)st->aad_len) == 1);
    } else {
        ok = EVP_CipherInit_ex2(op->cipher, st->cipher, st->aes_key, iv, encrypt, NULL) == 1 &&
             EVP_CIPHER_CTX_set_padding(op->cipher, padding) == 1;
    }
    return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

/* Run the cipher over whole input; output sized by the caller. */
static CK_RV run(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t len, uint8_t *out, size_t *done)
{
    int n = 0;
    *done = 0;
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        if (EVP_CipherUpdate(ctx, out + *done, &n, in, chunk) != 1)
            return CKR_FUNCTION_FAILED;
        *done += (size_t)n;
        in += chunk;
        len -= (size_t)chunk;
    }
    return CKR_OK;
}

/* Length errors are about the plaintext when encrypting, the ciphertext when decrypting. */
static CK_RV len_range(int encrypt)
{
    return encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
}

/* ---- single-part ----------------------------------------------------------- */

/* GCM in one go: ciphertext | tag, or the checked plaintext. */
static CK_RV gcm_all(tok_operation *op, const uint8_t *in, size_t len, uint8_t *out,
                     size_t *out_len, int encrypt)
{
    tok_op_state *st = op->extra;
    size_t body = encrypt ? len : len - st->tag_len, n = 0;
    int fin = 0;
    CK_RV rv = start(op, encrypt, 0);
    if (rv == CKR_OK && !encrypt) {
        OSSL_PARAM p[] = {
            OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *)(in + body), st->tag_len),
            OSSL_PARAM_END};
        if (EVP_CIPHER_CTX_set_params(op->cipher, p) != 1)
            rv = CKR_FUNCTION_FAILED;
    }
    if (rv == CKR_OK)
        rv = run(op->cipher, in, body, out, &n);
    if (rv == CKR_OK && EVP_CipherFinal_ex(op->cipher, out + n, &fin) != 1) {
        rv = encrypt ? CKR_FUNCTION_FAILED : CKR_ENCRYPTED_DATA_INVALID;
        OPENSSL_cleanse(out, body);
    }
    if (rv == CKR_OK && encrypt) {
        OSSL_PARAM p[] = {
            OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, out + body, st->tag_len),
            OSSL_PARAM_END};
        if (EVP_CIPHER_CTX_get_params(op->cipher, p) != 1)
            rv = CKR_FUNCTION_FAILED;
    }
    *out_len = encrypt ? len + st->tag_len : body;
    return rv;
}

/* ECB/CBC/CBC_PAD in one go. */
static CK_RV block_all(tok_operation *op, const uint8_t *in, size_t len, uint8_t *out,
                       size_t *out_len, int encrypt)
{
    size_t n = 0;
    int fin = 0;
    CK_RV rv = start(op, encrypt, op->mech == CKM_AES_CBC_PAD);
    if (rv == CKR_OK)
        rv = run(op->cipher, in, len, out, &n);
    if (rv == CKR_OK && EVP_CipherFinal_ex(op->cipher, out + n, &fin) != 1)
        rv = encrypt ? CKR_FUNCTION_FAILED : CKR_ENCRYPTED_DATA_INVALID;
    *out_len = n + (size_t)fin;
    return rv;
}

/* The output size of a single-part call (decrypting with padding: an upper bound). */
static CK_RV single_len(const tok_operation *op, size_t len, int encrypt, size_t *need)
{
    const tok_op_state *st = op->extra;
    if (op->mech == CKM_AES_GCM) {
        if (encrypt) {
            *need = len + st->tag_len;
            return len <= GCM_DATA_MAX ? CKR_OK : CKR_DATA_LEN_RANGE;
        }
        *need = len >= st->tag_len ? len - st->tag_len : 0;
        return len >= st->tag_len && len <= GCM_DATA_MAX ? CKR_OK : CKR_ENCRYPTED_DATA_LEN_RANGE;
    }
    if (op->mech == CKM_AES_CBC_PAD && encrypt) {
        *need = len / BLOCK * BLOCK + BLOCK;
        return CKR_OK;
    }
    *need = len;
    if (len % BLOCK != 0 || (op->mech == CKM_AES_CBC_PAD && len == 0))
        return len_range(encrypt);
    return CKR_OK;
}

CK_RV tok_aes_single(tok_operation *op, const uint8_t *in, size_t len, uint8_t *out,
                     CK_ULONG *out_len, int encrypt)
{
    size_t need = 0, done = 0;
    int query = 0;
    CK_RV rv = single_len(op, len, encrypt, &need);
    if (rv != CKR_OK)
        return tok_op_done(op, rv, 0);
    CK_ULONG have = *out_len;
    rv = tok_out_check(out, out_len, need, &query);
    if (query)
        return tok_op_done(op, rv, 1);
    if (rv == CKR_BUFFER_TOO_SMALL && op->mech == CKM_AES_CBC_PAD && !encrypt) {
        /* The bound did not fit; the plaintext itself may. Decrypt aside and see. */
        uint8_t *tmp = OPENSSL_malloc(len);
        if (tmp == NULL)
            return tok_op_done(op, CKR_HOST_MEMORY, 0);
        rv = block_all(op, in, len, tmp, &done, 0);
        if (rv == CKR_OK) {
            *out_len = (CK_ULONG)done;
            if (have < done)
                rv = CKR_BUFFER_TOO_SMALL;
            else
                memcpy(out, tmp, done);
        }
        OPENSSL_clear_free(tmp, len);
        return tok_op_done(op, rv, 0);
    }
    if (rv != CKR_OK)
        return tok_op_done(op, rv, 0);
    if (op->mech == CKM_AES_GCM)
        rv = gcm_all(op, in, len, out, &done, encrypt);
    else
        rv = block_all(op, in, len, out, &done, encrypt);
    *out_len = (CK_ULONG)done;
    return tok_op_done(op, rv, 0);
}

/* ---- multi-part ------------------------------------------------------------- */

/* Bytes an ECB/CBC Update releases for `len` more input. */
static size_t block_update_len(const tok_operation *op, const tok_op_state *st, size_t len,
                               int encrypt)
{
    size_t total = st->partial_len + len;
    size_t full = total / BLOCK * BLOCK;
    /* Decrypting with padding: the last complete block waits for Final. */
    if (!encrypt && op->mech == CKM_AES_CBC_PAD && total % BLOCK == 0 && full > 0)
        full -= BLOCK;
    return full;
}

static CK_RV ensure_started(tok_operation *op, int encrypt)
{
    tok_op_state *st = op->extra;
    if (st->started)
        return CKR_OK;
    CK_RV rv = start(op, encrypt, 0);
    if (rv == CKR_OK)
        st->started = 1;
    return rv;
}

/* Release `need` bytes (a multiple of BLOCK) from partial | in; keep the rest. */
static CK_RV block_update(tok_operation *op, const uint8_t *in, size_t len, uint8_t *out,
                          size_t need)
{
    tok_op_state *st = op->extra;
    size_t done = 0;
    if (need > 0) {
        size_t fill = BLOCK - st->partial_len;
        memcpy(st->partial + st->partial_len, in, fill);
        CK_RV rv = run(op->cipher, st->partial, BLOCK, out, &done);
        if (rv == CKR_OK && need > BLOCK)
            rv = run(op->cipher, in + fill, need - BLOCK, out + BLOCK, &done);
        if (rv != CKR_OK)
            return rv;
        in += fill + (need - BLOCK);
        len -= fill + (need - BLOCK);
        st->partial_len = 0;
    }
    memcpy(st->partial + st->partial_len, in, len);
    st->partial_len += len;
    return CKR_OK;
}

CK_RV tok_aes_update(tok_operation *op, const uint8_t *in, size_t len, uint8_t *out,
                     CK_ULONG *out_len, int encrypt)
{
    tok_op_state *st = op->extra;
    int query = 0;
    size_t need;
    CK_RV rv;

    if (op->mech == CKM_AES_GCM && !encrypt) {
        *out_len = 0; /* released by Final once the tag is checked */
        if (out == NULL)
            return CKR_OK; /* a length query consumes nothing */
        op->multi = 1;
        rv = op->buffered.len + len > GCM_DATA_MAX ? CKR_ENCRYPTED_DATA_LEN_RANGE
                                                   : tok_op_collect(op, in, len, GCM_DATA_MAX);
        return rv == CKR_OK ? rv : tok_op_done(op, rv, 0);
    }
    need = op->mech == CKM_AES_GCM ? len : block_update_len(op, st, len, encrypt);
    rv = tok_out_check(out, out_len, need, &query);
    if (rv != CKR_OK || query)
        return rv;
    op->multi = 1;
    rv = ensure_started(op, encrypt);
    if (rv == CKR_OK && op->mech == CKM_AES_GCM) {
        size_t done = 0;
        rv = run(op->cipher, in, len, out, &done);
    } else if (rv == CKR_OK) {
        rv = block_update(op, in, len, out, need);
    }
    return rv == CKR_OK ? rv : tok_op_done(op, rv, 0);
}

/* GCM Final: the tag (encrypting), or the whole checked plaintext (decrypting). */
static CK_RV gcm_final(tok_operation *op, uint8_t *out, CK_ULONG *out_len, int encrypt)
{
    tok_op_state *st = op->extra;
    int query = 0, fin = 0;
    size_t done = 0;
    if (!encrypt) {
        size_t len = op->buffered.len, need = 0;
        CK_RV rv = single_len(op, len, 0, &need);
        if (rv == CKR_OK)
            rv = tok_out_check(out, out_len, need, &query);
        if (rv == CKR_OK && !query) {
            rv = gcm_all(op, op->buffered.buf, len, out, &done, 0);
            *out_len = (CK_ULONG)done;
        }
        return tok_op_done(op, rv, query);
    }
    CK_RV rv = tok_out_check(out, out_len, st->tag_len, &query);
    if (rv != CKR_OK || query)
        return rv;
    rv = ensure_started(op, 1);
    if (rv == CKR_OK && EVP_CipherFinal_ex(op->cipher, out, &fin) != 1)
        rv = CKR_FUNCTION_FAILED;
    if (rv == CKR_OK) {
        OSSL_PARAM p[] = {OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, out, st->tag_len),
                          OSSL_PARAM_END};
        if (EVP_CIPHER_CTX_get_params(op->cipher, p) != 1)
            rv = CKR_FUNCTION_FAILED;
    }
    return tok_op_done(op, rv, 0);
}

/* CBC_PAD decryption's last block: decrypt it aside, check and strip the padding. */
static CK_RV unpad_last(tok_operation *op, uint8_t plain[BLOCK], size_t *n)
{
    tok_op_state *st = op->extra;
    EVP_CIPHER_CTX *aside = EVP_CIPHER_CTX_new();
    size_t done = 0;
    CK_RV rv =
        aside != NULL && EVP_CIPHER_CTX_copy(aside, op->cipher) == 1 ? CKR_OK : CKR_HOST_MEMORY;
    if (rv == CKR_OK)
        rv = run(aside, st->partial, BLOCK, plain, &done);
    EVP_CIPHER_CTX_free(aside);
    if (rv != CKR_OK || done != BLOCK)
        return rv != CKR_OK ? rv : CKR_FUNCTION_FAILED;
    /* Constant-time PKCS#7 check. */
    uint8_t pad = plain[BLOCK - 1];
    unsigned bad = (unsigned)(pad == 0) | (unsigned)(pad > BLOCK);
    for (size_t i = 0; i < BLOCK; i++) {
        unsigned in_pad = (unsigned)(i >= (size_t)(BLOCK - pad));
        bad |= in_pad & (unsigned)(plain[i] != pad);
    }
    if (bad)
        return CKR_ENCRYPTED_DATA_INVALID;
    *n = BLOCK - pad;
    return CKR_OK;
}

CK_RV tok_aes_final(tok_operation *op, uint8_t *out, CK_ULONG *out_len, int encrypt)
{
    tok_op_state *st = op->extra;
    int query = 0;
    CK_RV rv;

    if (op->mech == CKM_AES_GCM)
        return gcm_final(op, out, out_len, encrypt);
    if (op->mech != CKM_AES_CBC_PAD) { /* ECB, CBC: nothing may be left over */
        if (st->partial_len != 0)
            return tok_op_done(op, len_range(encrypt), 0);
        rv = tok_out_check(out, out_len, 0, &query);
        return tok_op_done(op, rv, query);
    }
    rv = ensure_started(op, encrypt);
    if (rv != CKR_OK)
        return tok_op_done(op, rv, 0);
    if (encrypt) { /* pad the waiting bytes to one block */
        rv = tok_out_check(out, out_len, BLOCK, &query);
        if (rv != CKR_OK || query)
            return rv;
        uint8_t pad = (uint8_t)(BLOCK - st->partial_len);
        memset(st->partial + st->partial_len, pad, pad);
        size_t done = 0;
        rv = run(op->cipher, st->partial, BLOCK, out, &done);
        return tok_op_done(op, rv, 0);
    }
    if (st->partial_len != BLOCK)
        return tok_op_done(op, CKR_ENCRYPTED_DATA_LEN_RANGE, 0);
    uint8_t plain[BLOCK];
    size_t n = 0;
    rv = unpad_last(op, plain, &n);
    if (rv == CKR_OK) {
        rv = tok_out_check(out, out_len, n, &query);
        if (rv == CKR_OK && !query)
            memcpy(out, plain, n);
    }
    sks_cleanse(plain, sizeof(plain));
    return tok_op_done(op, rv, query);
}
