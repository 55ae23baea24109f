/*
 * tok_digest.c - message digests (CKM_SHA_1 .. CKM_SHA512) in the module,
 * single-part and multi-part, and C_DigestKey for session secret keys (the
 * card's keys are never in the module, so they are not digestible).
 */
#include <string.h>

#include "token/tok_crypto.h"

CK_RV tok_digest_init(tok_session *s, const CK_MECHANISM *m)
{
    tok_operation *op = &s->digest;
    const tok_mech *d;
    tok_op_state *st;
    if (op->kind != TOK_OPER_NONE)
        return CKR_OPERATION_ACTIVE;
    CK_RV rv = tok_mech_check(m, CKF_DIGEST, &d);
    if (rv != CKR_OK)
        return rv;
    if (m->ulParameterLen != 0)
        return CKR_MECHANISM_PARAM_INVALID;
    uint8_t hash = tok_hash_of_mech(m->mechanism);
    if (op->md == NULL && (op->md = EVP_MD_CTX_new()) == NULL)
        return CKR_HOST_MEMORY;
    rv = tok_op_begin(op, TOK_OPER_DIGEST, m->mechanism, CK_INVALID_HANDLE, &st);
    if (rv != CKR_OK)
        return rv;
    st->block_len = tok_hash_len(hash);
    if (EVP_DigestInit_ex2(op->md, tok_hash_md(hash), NULL) != 1) {
        tok_op_end(op);
        return CKR_FUNCTION_FAILED;
    }
    return CKR_OK;
}

/* Finish the digest into out (its size checked by the caller). */
static CK_RV finish(tok_operation *op, uint8_t *out)
{
    unsigned int n = 0;
    return EVP_DigestFinal_ex(op->md, out, &n) == 1 ? CKR_OK : CKR_FUNCTION_FAILED;
}

CK_RV tok_digest(tok_session *s, const uint8_t *data, CK_ULONG len, uint8_t *out, CK_ULONG *out_len)
{
    tok_operation *op = &s->digest;
    int query = 0;
    CK_RV rv = tok_op_active(op, TOK_OPER_DIGEST);
    if (rv != CKR_OK)
        return rv;
    if (op->multi)
        return tok_op_done(op, CKR_OPERATION_ACTIVE, 0);
    const tok_op_state *st = op->extra;
    rv = tok_out_check(out, out_len, st->block_len, &query);
    if (rv == CKR_OK && !query) {
        if (len > 0 && EVP_DigestUpdate(op->md, data, len) != 1)
            rv = CKR_FUNCTION_FAILED;
        else
            rv = finish(op, out);
    }
    return tok_op_done(op, rv, query);
}

CK_RV tok_digest_update(tok_session *s, const uint8_t *data, CK_ULONG len)
{
    tok_operation *op = &s->digest;
    CK_RV rv = tok_op_active(op, TOK_OPER_DIGEST);
    if (rv != CKR_OK)
        return rv;
    op->multi = 1;
    if (len > 0 && EVP_DigestUpdate(op->md, data, len) != 1)
        return tok_op_done(op, CKR_FUNCTION_FAILED, 0);
    return CKR_OK;
}

CK_RV tok_digest_key(tok_session *s, CK_OBJECT_HANDLE key)
{
    tok_operation *op = &s->digest;
    tok_object obj;
    CK_RV rv = tok_op_active(op, TOK_OPER_DIGEST);
    if (rv != CKR_OK)
        return rv;
    op->multi = 1;
    rv = tok_object_get(s, key, &obj);
    if (rv == CKR_OBJECT_HANDLE_INVALID)
        rv = CKR_KEY_HANDLE_INVALID;
    if (rv == CKR_OK && obj.cls != CKO_SECRET_KEY)
        rv = obj.cls == CKO_PRIVATE_KEY || obj.cls == CKO_PUBLIC_KEY ? CKR_KEY_INDIGESTIBLE
                                                                     : CKR_KEY_HANDLE_INVALID;
    const tok_attr *value = rv == CKR_OK ? tok_attrs_find(obj.attrs, CKA_VALUE) : NULL;
    if (rv == CKR_OK && (value == NULL || value->value == NULL))
        rv = CKR_KEY_INDIGESTIBLE;
    if (rv == CKR_OK && !tok_attrs_bool(obj.attrs, CKA_EXTRACTABLE, CK_TRUE))
        rv = CKR_KEY_INDIGESTIBLE;
    if (rv == CKR_OK && EVP_DigestUpdate(op->md, value->value, value->len) != 1)
        rv = CKR_FUNCTION_FAILED;
    return rv == CKR_OK ? rv : tok_op_done(op, rv, 0);
}

CK_RV tok_digest_final(tok_session *s, uint8_t *out, CK_ULONG *out_len)
{
    tok_operation *op = &s->digest;
    int query = 0;
    CK_RV rv = tok_op_active(op, TOK_OPER_DIGEST);
    if (rv != CKR_OK)
        return rv;
    const tok_op_state *st = op->extra;
    rv = tok_out_check(out, out_len, st->block_len, &query);
    if (rv == CKR_OK && !query)
        rv = finish(op, out);
    return tok_op_done(op, rv, query);
}
