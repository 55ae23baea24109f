/* tok_dkek.c - backup and restore under the DKEK: placeholder. */
#include "token/tok_vendor.h"

CK_RV tok_dkek_wrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, uint8_t *out,
                    CK_ULONG *out_len)
{
    (void)s, (void)slot, (void)m, (void)wrapping_key, (void)key, (void)out, (void)out_len;
    return CKR_MECHANISM_INVALID;
}

CK_RV tok_dkek_unwrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                      CK_OBJECT_HANDLE unwrapping_key, const uint8_t *wrapped, CK_ULONG wrapped_len,
                      const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    (void)s, (void)slot, (void)m, (void)unwrapping_key, (void)wrapped, (void)wrapped_len;
    (void)tmpl, (void)n, (void)out;
    return CKR_MECHANISM_INVALID;
}
