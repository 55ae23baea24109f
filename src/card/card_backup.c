/* card_backup.c - key backup blobs under the DKEK (docs/dkek.md): placeholder. */
#include "card_internal.h"

int card_m_wrap_key(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "wrapKey: not available");
}

int card_m_unwrap_key(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "unwrapKey: not available");
}
