/*
 * tok_ops.c - the life cycle of a session's cryptographic operations (sign,
 * verify, encrypt, decrypt, digest): begin, end, the two-call output
 * convention, and the resolution of an operation's key.
 *
 * An operation's contexts (EVP_MD_CTX, EVP_CIPHER_CTX, tok_op_state) are
 * allocated by the first operation of their kind in a session and kept for
 * the next one, so a sequence of C_SignInit/C_Sign allocates nothing in the
 * module; tok_session_ops_reset() frees them when the session goes.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "pkcs11/sks-pkcs11.h"
#include "protocol/sks_crypto.h"
#include "token/tok_crypto.h"

static void state_clear(tok_op_state *st)
{
    EVP_PKEY_CTX_free(st->pctx);
    EVP_PKEY_free(st->pub);
    st->pctx = NULL;
    st->pub = NULL;
    st->card = NULL;
    st->card_key = 0;
    st->block_len = 0;
    memset(&st->sign, 0, sizeof(st->sign));
    memset(&st->crypt, 0, sizeof(st->crypt));
    st->cipher = NULL;
    sks_cleanse(st->aes_key, sizeof(st->aes_key));
    st->aes_key_len = 0;
    st->started = 0;
    sks_cleanse(st->partial, sizeof(st->partial));
    st->partial_len = 0;
    st->tag_len = 0;
    st->iv_off = st->iv_len = st->aad_off = st->aad_len = 0;
    sks_writer_reset(&st->params);
    sks_writer_reset(&st->result);
    sks_writer_reset(&st->result_input);
    st->answer.len = 0; /* signatures and public data only: no need to wipe */
}

CK_RV tok_op_begin(tok_operation *op, enum tok_op_kind kind, CK_MECHANISM_TYPE mech,
                   CK_OBJECT_HANDLE key, tok_op_state **st)
{
    if (op->kind != TOK_OPER_NONE)
        return CKR_OPERATION_ACTIVE;
    if (op->extra == NULL) {
        tok_op_state *fresh = calloc(1, sizeof(*fresh));
        if (fresh == NULL)
            return CKR_HOST_MEMORY;
        sks_writer_init(&fresh->params);
        sks_writer_init(&fresh->answer);
        sks_writer_init(&fresh->result);
        sks_writer_init(&fresh->result_input);
        op->extra = fresh;
    }
    op->kind = kind;
    op->mech = mech;
    op->key = key;
    op->multi = 0;
    op->auth_pending = 0;
    *st = op->extra;
    return CKR_OK;
}

CK_RV tok_op_active(const tok_operation *op, enum tok_op_kind kind)
{
    return op->kind == kind ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
}

void tok_op_end(tok_operation *op)
{
    op->kind = TOK_OPER_NONE;
    op->mech = 0;
    op->key = 0;
    op->multi = 0;
    op->auth_pending = 0;
    if (op->param != NULL) {
        OPENSSL_clear_free(op->param, op->param_len);
        op->param = NULL;
        op->param_len = 0;
    }
    if (op->cipher != NULL)
        EVP_CIPHER_CTX_reset(op->cipher); /* wipes the key schedule */
    sks_writer_reset(&op->buffered);
    if (op->extra != NULL)
        state_clear(op->extra);
}

/* Free everything an operation slot holds. */
static void op_free(tok_operation *op)
{
    tok_op_end(op);
    EVP_MD_CTX_free(op->md);
    EVP_CIPHER_CTX_free(op->cipher);
    op->md = NULL;
    op->cipher = NULL;
    sks_writer_free(&op->buffered);
    tok_op_state *st = op->extra;
    if (st != NULL) {
        sks_writer_free(&st->params);
        sks_writer_free(&st->answer);
        sks_writer_free(&st->result);
        sks_writer_free(&st->result_input);
        free(st);
        op->extra = NULL;
    }
}

void tok_session_ops_reset(tok_session *s)
{
    if (s == NULL)
        return;
    op_free(&s->sign);
    op_free(&s->verify);
    op_free(&s->encrypt);
    op_free(&s->decrypt);
    op_free(&s->digest);
}

CK_RV tok_op_done(tok_operation *op, CK_RV rv, int length_query)
{
    if (rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && length_query))
        return rv;
    tok_op_end(op);
    return rv;
}

CK_RV tok_out_check(const uint8_t *out, CK_ULONG *out_len, size_t need, int *query)
{
    CK_ULONG have = *out_len;
    *out_len = (CK_ULONG)need;
    *query = out == NULL;
    if (out == NULL)
        return CKR_OK;
    return have < need ? CKR_BUFFER_TOO_SMALL : CKR_OK;
}

CK_RV tok_op_collect(tok_operation *op, const uint8_t *data, CK_ULONG len, size_t max)
{
    if (len > max || op->buffered.len > max - len)
        return CKR_DATA_LEN_RANGE;
    sks_put_raw(&op->buffered, data, len);
    return op->buffered.failed ? CKR_HOST_MEMORY : CKR_OK;
}

CK_RV tok_op_key(tok_session *s, CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls, uint8_t mech_key,
                 CK_ATTRIBUTE_TYPE usage, tok_object *out)
{
    CK_RV rv = tok_object_get(s, h, out);
    if (rv == CKR_OBJECT_HANDLE_INVALID)
        return CKR_KEY_HANDLE_INVALID;
    if (rv != CKR_OK)
        return rv;
    if (out->cls != CKO_PRIVATE_KEY && out->cls != CKO_PUBLIC_KEY && out->cls != CKO_SECRET_KEY)
        return CKR_KEY_HANDLE_INVALID;
    /* An injection session key (S1) has no value here and no use but CKM_VENDOR_SKS_INJECT_KEY. */
    if (out->attrs != NULL && tok_attrs_bool(out->attrs, CKA_VENDOR_SKS_INJECTION_ONLY, CK_FALSE))
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    if (tok_mech_key_of(out->key_type) != mech_key)
        return CKR_KEY_TYPE_INCONSISTENT;
    if (out->cls != cls || out->attrs == NULL || !tok_attrs_bool(out->attrs, usage, CK_FALSE))
        return CKR_KEY_FUNCTION_NOT_PERMITTED;
    return CKR_OK;
}

CK_ULONG tok_key_bits(const tok_object *key)
{
    if (key->where == TOK_OBJ_CARD_KEY && key->key != NULL) {
        switch (key->key->algorithm) {
        case SKS_KEYALG_RSA2048:
            return 2048;
        case SKS_KEYALG_RSA3072:
            return 3072;
        case SKS_KEYALG_RSA4096:
            return 4096;
        case SKS_KEYALG_EC_P256:
            return 256;
        case SKS_KEYALG_EC_P384:
            return 384;
        default:
            return 0;
        }
    }
    EVP_PKEY *pub = key->attrs != NULL ? tok_pkey_from_attrs(key->attrs) : NULL;
    CK_ULONG bits = pub != NULL ? (CK_ULONG)EVP_PKEY_get_bits(pub) : 0;
    EVP_PKEY_free(pub);
    return bits;
}

CK_RV tok_key_size_check(const tok_mech *m, CK_ULONG bits)
{
    return bits >= m->min_key && bits <= m->max_key ? CKR_OK : CKR_KEY_SIZE_RANGE;
}
