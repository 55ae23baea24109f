/* card_dkek.c - the DKEK and its shares (docs/protocol.md section 11): placeholder. */
#include "card_internal.h"

int card_m_initialize_dkek(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "initializeDKEK: not available");
}

int card_m_import_dkek_share(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "importDKEKShare: not available");
}

int card_m_get_dkek_status(card_call *call, const void *req, void *resp)
{
    (void)req;
    (void)resp;
    return card_fail(call, SKS_ERR_NO_METHOD, "getDKEKStatus: not available");
}
