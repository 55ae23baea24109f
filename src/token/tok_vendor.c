/*
 * tok_vendor.c - routes each CKM_VENDOR_SKS_* mechanism to the file that
 * implements it, per PKCS#11 function. A vendor mechanism used with a
 * function it is not made for is CKR_MECHANISM_INVALID, as the standard
 * asks for any mechanism a function does not support.
 */
#include "token/tok_vendor.h"
#include "token/tok_issuer_prov.h"

int tok_vendor_mech(CK_MECHANISM_TYPE type)
{
    return (type & ~(CK_MECHANISM_TYPE)0xFFFF) == CKM_VENDOR_SKS_BASE;
}

static int is_provisioning_call(CK_MECHANISM_TYPE type)
{
    return type >= CKM_VENDOR_SKS_PUK_POLICY && type <= CKM_VENDOR_SKS_CLOSE;
}

static int is_injection(CK_MECHANISM_TYPE type)
{
    return type == CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP || type == CKM_VENDOR_SKS_SESSION_KEY_ECDH ||
           type == CKM_VENDOR_SKS_INJECT_KEY;
}

CK_RV tok_vendor_generate_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                              const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    /* The issuer token of no-card mode is the issuer side (tok_issuer_prov.h). */
    if (m->mechanism == CKM_VENDOR_SKS_SESSION && slot->kind == TOK_SLOT_ISSUER)
        return tok_issuer_prov_open(s, slot, m, tmpl, n, out);
    if (m->mechanism == CKM_VENDOR_SKS_SESSION)
        return tok_prov_open(s, slot, m, tmpl, n, out);
    return CKR_MECHANISM_INVALID;
}

CK_RV tok_vendor_derive_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                            CK_OBJECT_HANDLE base, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                            CK_OBJECT_HANDLE *out)
{
    /* The issuer token: its side of the calls, of post-provisioning, and its own (DECLARE_*). */
    if (slot->kind == TOK_SLOT_ISSUER && tok_issuer_prov_mech(m->mechanism))
        return tok_issuer_prov_call(s, slot, m, base, tmpl, n, out);
    if (is_provisioning_call(m->mechanism))
        return tok_prov_call(s, slot, m, base, tmpl, n, out);
    if (m->mechanism >= CKM_VENDOR_SKS_POST_DELETE_KEY &&
        m->mechanism <= CKM_VENDOR_SKS_POST_UPDATE_KEY)
        return tok_post_call(s, slot, m, base, tmpl, n, out);
    return CKR_MECHANISM_INVALID;
}

CK_RV tok_vendor_wrap_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                          CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, uint8_t *out,
                          CK_ULONG *out_len)
{
    if (is_injection(m->mechanism))
        return tok_inject_wrap(s, slot, m, wrapping_key, key, out, out_len);
    if (m->mechanism == CKM_VENDOR_SKS_DKEK_WRAP)
        return tok_dkek_wrap(s, slot, m, wrapping_key, key, out, out_len);
    return CKR_MECHANISM_INVALID;
}

CK_RV tok_vendor_unwrap_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                            CK_OBJECT_HANDLE unwrapping_key, const uint8_t *wrapped,
                            CK_ULONG wrapped_len, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                            CK_OBJECT_HANDLE *out)
{
    if (is_injection(m->mechanism))
        return tok_inject_unwrap(s, slot, m, unwrapping_key, wrapped, wrapped_len, tmpl, n, out);
    if (m->mechanism == CKM_VENDOR_SKS_DKEK_WRAP)
        return tok_dkek_unwrap(s, slot, m, unwrapping_key, wrapped, wrapped_len, tmpl, n, out);
    return CKR_MECHANISM_INVALID;
}

void tok_vendor_object_gone(const tok_session_object *o)
{
    tok_prov_object_gone(o);
    tok_inject_object_gone(o);
    tok_issuer_prov_object_gone(o);
}
