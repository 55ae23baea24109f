/* card_post.c - post-provisioning by a key's issuer (docs/protocol.md 6.10): placeholder. */
#include "card_internal.h"

int card_m_post_delete_key(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "postDeleteKey: not available");
}

int card_m_post_unlock_key(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "postUnlockKey: not available");
}

int card_m_post_update_key(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "postUpdateKey: not available");
}
