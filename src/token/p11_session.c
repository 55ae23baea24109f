/*
 * p11_session.c - session management functions: C_OpenSession,
 * C_CloseSession, C_CloseAllSessions, C_GetSessionInfo.
 */
#include <string.h>

#include "token/p11_entry.h"
#include "token/tok.h"

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                    CK_SESSION_HANDLE_PTR phSession)
{
    tok_slot *slot;
    TOK_ENTER();
    TOK_CHECK(phSession != NULL, CKR_ARGUMENTS_BAD);
    TOK_CHECK(flags & CKF_SERIAL_SESSION, CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    TOK_TRY(tok_slot_get(slotID, &slot));
    TOK_CHECK(slot->card->present, CKR_TOKEN_NOT_PRESENT);
    TOK_CHECK((flags & CKF_RW_SESSION) || slot->login != CKU_SO, CKR_SESSION_READ_WRITE_SO_EXISTS);
    /* Notification callbacks are accepted and never called (no surrender points). */
    TOK_TRY(tok_session_open(slot, flags, phSession));
    TOK_LEAVE();
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
    tok_session *s;
    TOK_ENTER_SESSION(hSession, &s, NULL);
    tok_session_close(s);
    TOK_LEAVE();
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
    tok_slot *slot;
    TOK_ENTER();
    rv = tok_slot_get(slotID, &slot);
    if (rv == CKR_TOKEN_NOT_PRESENT) /* its sessions went with the token */
        rv = CKR_OK;
    TOK_TRY(rv);
    for (size_t i = tok_g.nsessions; i > 0; i--) {
        if (i <= tok_g.nsessions && tok_g.sessions[i - 1]->slot == slotID)
            tok_session_close(tok_g.sessions[i - 1]);
    }
    TOK_LEAVE();
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pInfo != NULL, CKR_ARGUMENTS_BAD);
    memset(pInfo, 0, sizeof(*pInfo));
    pInfo->slotID = s->slot;
    pInfo->flags = s->flags;
    int rw = tok_session_rw(s);
    if (slot->login == CKU_SO)
        pInfo->state = CKS_RW_SO_FUNCTIONS;
    else if (slot->login == CKU_USER)
        pInfo->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    else
        pInfo->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
    TOK_LEAVE();
}
