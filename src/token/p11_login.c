/*
 * p11_login.c - users and PINs: C_Login, C_Logout, C_InitToken, C_InitPIN,
 * C_SetPIN. A token is a PIN policy: the user PIN is the policy's PIN
 * (verifyPIN), the SO PIN its PUK (verifyPUK). Login state belongs to the
 * slot, shared by all the application's sessions; the card remembers the
 * verification for its card session, so the module never keeps a PIN. A
 * policy without CachingSupport loses it with each key use: such keys take
 * a context login (CKU_CONTEXT_SPECIFIC) before each use.
 */
#include <string.h>

#include "token/p11_entry.h"
#include "token/tok.h"
#include "token/tok_issuer_token.h"

static CK_RV pin_call(tok_card *card, uint8_t method, const void *req)
{
    sks_writer answer;
    sks_writer_init(&answer);
    CK_RV rv = tok_card_call_rv(card, method, req, NULL, &answer);
    sks_writer_free(&answer);
    return rv;
}

/* The slot's PIN policy from a fresh cache, or CKR_TOKEN_NOT_PRESENT. */
static CK_RV slot_policy(tok_slot *slot, const sks_pin_policy_info **out)
{
    CK_RV rv = tok_card_refresh(slot->card);
    if (rv != CKR_OK)
        return rv;
    *out = tok_card_find_policy(slot->card, slot->pin_policy);
    return *out != NULL ? CKR_OK : CKR_TOKEN_NOT_PRESENT;
}

static CK_RV pin_args(CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    /* No protected authentication path: a PIN must be given. */
    if (pin == NULL)
        return CKR_ARGUMENTS_BAD;
    return len > SKS_PIN_MAX ? CKR_PIN_LEN_RANGE : CKR_OK;
}

/*
 * C_Login(CKU_CONTEXT_SPECIFIC): the PIN for one use of an always-authenticate
 * key (its policy's CachingSupport is false), right after C_SignInit or
 * C_DecryptInit on it (PKCS#11 v2.40 4.9 and 5.5). It is verifyPIN of the
 * token's policy; the card forgets the verification again after the use. A
 * wrong or blocked PIN leaves the operation active, so the application may
 * try again or end it.
 */
static CK_RV context_login(tok_session *s, tok_slot *slot, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    tok_operation *op = NULL;
    if (s->sign.kind == TOK_OPER_SIGN && s->sign.auth_pending)
        op = &s->sign;
    else if (s->decrypt.kind == TOK_OPER_DECRYPT && s->decrypt.auth_pending)
        op = &s->decrypt;
    if (op == NULL)
        return CKR_OPERATION_NOT_INITIALIZED;
    CK_RV rv = pin_args(pin, len);
    if (rv != CKR_OK)
        return rv;
    sks_req_verify_pin req = {slot->pin_policy, {pin, len}};
    rv = pin_call(slot->card, SKS_M_VERIFY_PIN, &req);
    if (rv == CKR_OK) {
        op->auth_pending = 0;
        tok_card_pin_verified(slot->card);
    }
    return rv;
}

CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
              CK_ULONG ulPinLen)
{
    tok_session *s;
    tok_slot *slot = NULL;
    const sks_pin_policy_info *p;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(userType == CKU_USER || userType == CKU_SO || userType == CKU_CONTEXT_SPECIFIC,
              CKR_USER_TYPE_INVALID);
    if (userType == CKU_CONTEXT_SPECIFIC) {
        TOK_CHECK(slot->login == CKU_USER, CKR_USER_NOT_LOGGED_IN);
        TOK_FAIL(context_login(s, slot, pPin, ulPinLen));
    }
    TOK_TRY(pin_args(pPin, ulPinLen));
    if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode: the issuer token's own PINs */
        TOK_FAIL(tok_issuer_login(slot, userType, pPin, ulPinLen));
    /*
     * Ask the card first: a reset by another application, or its logout of
     * this policy, ends our login (tok_card.c) before it is judged here.
     */
    if (slot->kind == TOK_SLOT_POLICY)
        TOK_TRY(tok_card_refresh(slot->card));
    TOK_CHECK(slot->login != userType, CKR_USER_ALREADY_LOGGED_IN);
    TOK_CHECK(slot->login == TOK_NOBODY, CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    /* The free slot has no PINs yet; the no-PIN token has none at all (no SO either). */
    TOK_CHECK(slot->kind != TOK_SLOT_FREE, CKR_USER_PIN_NOT_INITIALIZED);
    if (slot->kind == TOK_SLOT_NOPIN)
        TOK_FAIL(userType == CKU_USER ? CKR_USER_PIN_NOT_INITIALIZED : CKR_USER_TYPE_INVALID);
    if (userType == CKU_SO)
        TOK_CHECK(tok_session_count(slot->id, 0) == tok_session_count(slot->id, 1),
                  CKR_SESSION_READ_ONLY_EXISTS);
    TOK_TRY(slot_policy(slot, &p));
    sks_view pin = {pPin, ulPinLen};
    if (userType == CKU_USER) {
        TOK_CHECK(p->pin_set, CKR_USER_PIN_NOT_INITIALIZED);
        sks_req_verify_pin req = {slot->pin_policy, pin};
        TOK_TRY(pin_call(slot->card, SKS_M_VERIFY_PIN, &req));
    } else {
        TOK_CHECK(p->puk_policy_handle != 0, CKR_USER_TYPE_INVALID); /* no SO on this token */
        sks_req_verify_puk req = {slot->pin_policy, pin};
        TOK_TRY(pin_call(slot->card, SKS_M_VERIFY_PUK, &req));
    }
    slot->login = userType;
    /* Private stored objects can be read now: the next refresh reads them. */
    if (userType == CKU_USER)
        tok_card_pin_verified(slot->card);
    else
        tok_card_invalidate(slot->card); /* a PUK may have no counter: no count to expect */
    TOK_EXIT
    /* Counters changed (or a private object became readable): the next refresh reloads. */
    if (slot != NULL && (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED))
        tok_card_invalidate(slot->card);
    TOK_RETURN();
}

CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(slot->login != TOK_NOBODY, CKR_USER_NOT_LOGGED_IN);
    sks_req_logout req = {slot->pin_policy};
    /* No-card mode: no card to tell; the issuer token forgets its keys. */
    CK_RV card_rv = slot->kind == TOK_SLOT_ISSUER ? tok_issuer_logout()
                                                  : pin_call(slot->card, SKS_M_LOGOUT, &req);
    if (card_rv != CKR_OK)
        tok_log(TOK_LOG_WARN, "logout on the card failed (0x%lx)", (unsigned long)card_rv);
    slot->login = TOK_NOBODY;
    /* Private session objects of the application are destroyed (PKCS#11 5.6). */
    tok_object_drop_private(slot->id);
    TOK_LEAVE();
}

/* The new PIN's length against the policy: CKR_PIN_LEN_RANGE outside min..max. */
static CK_RV pin_length(const sks_pin_policy_info *p, CK_ULONG len)
{
    return len < p->min_length || len > p->max_length ? CKR_PIN_LEN_RANGE : CKR_OK;
}

CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    tok_session *s;
    tok_slot *slot;
    const sks_pin_policy_info *p;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode */
        TOK_FAIL(tok_issuer_init_pin(s, slot, pPin, ulPinLen));
    TOK_CHECK(slot->login == CKU_SO, CKR_USER_NOT_LOGGED_IN);
    TOK_CHECK(tok_session_rw(s), CKR_SESSION_READ_ONLY);
    TOK_TRY(pin_args(pPin, ulPinLen));
    TOK_TRY(slot_policy(slot, &p));
    TOK_TRY(pin_length(p, ulPinLen));
    /* verifyPUK marked the policy: unlockPIN takes an empty PUK. */
    sks_req_unlock_pin req = {slot->pin_policy, {NULL, 0}, {pPin, ulPinLen}};
    rv = pin_call(slot->card, SKS_M_UNLOCK_PIN, &req);
    tok_card_invalidate(slot->card);
    if (rv == CKR_PIN_INCORRECT) {
        /* The card no longer knows the PUK was verified (reset): log in again. */
        slot->login = TOK_NOBODY;
        rv = CKR_USER_NOT_LOGGED_IN;
    }
    TOK_LEAVE();
}

CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
               CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
    tok_session *s;
    tok_slot *slot;
    const sks_pin_policy_info *p;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(tok_session_rw(s), CKR_SESSION_READ_ONLY);
    TOK_TRY(pin_args(pOldPin, ulOldLen));
    TOK_TRY(pin_args(pNewPin, ulNewLen));
    if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode */
        TOK_FAIL(tok_issuer_set_pin(s, slot, pOldPin, ulOldLen, pNewPin, ulNewLen));
    TOK_CHECK(slot->kind == TOK_SLOT_POLICY, CKR_USER_PIN_NOT_INITIALIZED);
    /* The card has no method to change a PUK. */
    TOK_CHECK(slot->login != CKU_SO, CKR_FUNCTION_NOT_SUPPORTED);
    TOK_TRY(slot_policy(slot, &p));
    TOK_CHECK(p->pin_set, CKR_USER_PIN_NOT_INITIALIZED);
    TOK_CHECK(p->user_modifiable, CKR_ACTION_PROHIBITED);
    TOK_TRY(pin_length(p, ulNewLen));
    sks_req_change_pin req = {slot->pin_policy, {pOldPin, ulOldLen}, {pNewPin, ulNewLen}};
    rv = pin_call(slot->card, SKS_M_CHANGE_PIN, &req);
    tok_card_invalidate(slot->card);
    TOK_LEAVE();
}

/* The label argument: 32 blank-padded bytes, trailing blanks and NULs dropped. */
static void init_label(const CK_UTF8CHAR *p, char out[TOK_LABEL_LEN + 1])
{
    size_t n = TOK_LABEL_LEN;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
        n--;
    memcpy(out, p, n);
    out[n] = '\0';
    if (memchr(out, '\0', n) != NULL || n == 0)
        strcpy(out, "SKS token");
}

CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                  CK_UTF8CHAR_PTR pLabel)
{
    tok_slot *slot;
    sks_local_issuer *li;
    sks_card_link link;
    TOK_ENTER();
    TOK_CHECK(pLabel != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(pin_args(pPin, ulPinLen));
    TOK_TRY(tok_slot_get(slotID, &slot));
    /* The no-PIN token has no SO PIN: it cannot be (re-)initialised. */
    TOK_CHECK(slot->kind != TOK_SLOT_NOPIN, CKR_FUNCTION_NOT_SUPPORTED);
    TOK_CHECK(tok_session_count(slot->id, 0) == 0, CKR_SESSION_EXISTS);
    TOK_CHECK(ulPinLen >= 1, CKR_PIN_LEN_RANGE);
    char label[TOK_LABEL_LEN + 1];
    init_label(pLabel, label);
    if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode: the issuer token's SO PIN and label */
        TOK_FAIL(tok_issuer_init_token(pPin, ulPinLen, label));
    if (slot->kind == TOK_SLOT_POLICY) {
        /* An existing token: its SO PIN (the PUK) empties it under the new label. */
        rv = tok_token_reinit(slot, pPin, ulPinLen, label);
        goto out;
    }
    TOK_TRY(tok_issuer_get(slot->card, &li, &link));
    uint32_t policy = 0;
    char err[256] = "";
    sks_view so_pin = {pPin, ulPinLen};
    int status = sks_local_issuer_create_token(li, &link, label, so_pin, &policy, err, sizeof(err));
    tok_card_invalidate(slot->card);
    if (status != SKS_OK) {
        tok_log(TOK_LOG_ERROR, "C_InitToken: %s (%s)", err, sks_status_name((uint8_t)status));
        TOK_FAIL(status == SKS_ERR_OPTION
                     ? CKR_PIN_INVALID
                     : tok_status_to_rv((uint8_t)status, SKS_M_CREATE_PIN_POLICY));
    }
    tok_log(TOK_LOG_INFO, "new token \"%s\" (PIN policy %u)", label, policy);
    TOK_TRY(tok_card_refresh(slot->card));
    TOK_LEAVE();
}
