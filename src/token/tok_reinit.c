/*
 * tok_reinit.c - C_InitToken on an existing token: the card's
 * resetPINPolicy (docs/protocol.md 7.17) under the SO PIN, which is the PIN
 * policy's PUK. The token's keys and objects are deleted, its user PIN is
 * unset (the SO sets it again with C_InitPIN) and its label becomes the
 * policy's new ID. The caller (C_InitToken) has checked the arguments and
 * that no session is open on the token.
 */
#include <string.h>

#include "protocol/sks_wire.h"
#include "token/tok.h"

/* The CKR of a failed resetPINPolicy, in C_InitToken's terms. */
static CK_RV reinit_rv(uint8_t status)
{
    switch (status) {
    case SKS_ERR_AUTHENTICATION:
        return CKR_PIN_INCORRECT;
    case SKS_ERR_PIN_BLOCKED:
        return CKR_PIN_LOCKED;
    case SKS_ERR_NOT_ALLOWED: /* the policy has no PUK: the token has no SO */
        return CKR_FUNCTION_NOT_SUPPORTED;
    case SKS_ERR_OPTION: /* another token already has this label */
        return CKR_ARGUMENTS_BAD;
    default:
        return tok_status_to_rv(status, SKS_M_RESET_PIN_POLICY);
    }
}

CK_RV tok_token_reinit(tok_slot *slot, const CK_UTF8CHAR *so_pin, CK_ULONG so_pin_len,
                       const char *label)
{
    if (slot->kind != TOK_SLOT_POLICY)
        return CKR_FUNCTION_NOT_SUPPORTED; /* the no-PIN token has no SO PIN */
    sks_req_reset_pin_policy req = {
        slot->pin_policy, {so_pin, so_pin_len}, {(const uint8_t *)label, strlen(label)}};
    sks_writer answer;
    uint8_t status = SKS_OK;
    char err[200] = "";
    sks_writer_init(&answer);
    CK_RV rv = tok_card_call(slot->card, SKS_M_RESET_PIN_POLICY, &req, NULL, &answer, &status, err,
                             sizeof(err));
    sks_writer_free(&answer);
    /* Keys, objects and the policy record changed (or a PUK counter did). */
    tok_card_invalidate(slot->card);
    if (rv == CKR_OK && status != SKS_OK) {
        tok_log(TOK_LOG_ERROR, "C_InitToken: %s (%s)", err, sks_status_name(status));
        rv = reinit_rv(status);
    }
    if (rv != CKR_OK)
        return rv;
    slot->login = TOK_NOBODY;
    tok_log(TOK_LOG_INFO, "token of PIN policy %u re-initialised as \"%s\"", slot->pin_policy,
            label);
    return tok_card_refresh(slot->card);
}
