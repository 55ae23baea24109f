/* tok_prov.c - SKS provisioning calls relayed to the card: placeholder. */
#include "token/tok_vendor.h"

CK_RV tok_prov_open(tok_session *s, tok_slot *slot, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                    CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    (void)s, (void)slot, (void)m, (void)tmpl, (void)n, (void)out;
    return CKR_MECHANISM_INVALID;
}

CK_RV tok_prov_call(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE provisioning, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                    CK_OBJECT_HANDLE *out)
{
    (void)s, (void)slot, (void)m, (void)provisioning, (void)tmpl, (void)n, (void)out;
    return CKR_MECHANISM_INVALID;
}
