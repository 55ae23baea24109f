/* tok_post.c - post-provisioning calls relayed to the card: placeholder. */
#include "token/tok_vendor.h"

CK_RV tok_post_call(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE provisioning, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                    CK_OBJECT_HANDLE *out)
{
    (void)s, (void)slot, (void)m, (void)provisioning, (void)tmpl, (void)n, (void)out;
    return CKR_MECHANISM_INVALID;
}
