/* card_inject.c - secure key injection (docs/protocol.md section 10): placeholder. */
#include "card_internal.h"

int card_m_import_session_key(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "importSessionKey: not available");
}

int card_m_inject_private_key(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "injectPrivateKey: not available");
}

int card_m_delete_session_key(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "deleteSessionKey: not available");
}
