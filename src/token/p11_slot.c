/*
 * p11_slot.c - slot and token management functions: C_GetSlotList,
 * C_GetSlotInfo, C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo and
 * C_WaitForSlotEvent. Token information is read from the card cache, which
 * is refreshed first, so PIN counters and key counts are current.
 *
 * C_WaitForSlotEvent hands out the slot events the reader scans queue
 * (tok_readers.c). A blocking wait scans, and when there is nothing to hand
 * out, releases the module lock and waits for pcscd to report a change
 * (tok_wait.c), then scans again; C_Finalize ends the wait.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sks_crypto.h"
#include "token/p11_entry.h"
#include "token/tok.h"
#include "token/tok_crypto.h"
#include "token/tok_issuer_token.h"

#define NOPIN_LABEL "SKS (no PIN)"
#define FREE_LABEL  "SKS (uninitialized)"

/* Slot list order: policy tokens by handle, then the no-PIN slot, then the free slot. */
static int slot_order(const void *a, const void *b)
{
    const tok_slot *x = *(tok_slot *const *)a, *y = *(tok_slot *const *)b;
    if (x->card->index != y->card->index)
        return x->card->index < y->card->index ? -1 : 1;
    int rx = x->kind == TOK_SLOT_POLICY ? 0 : x->kind == TOK_SLOT_NOPIN ? 1 : 2;
    int ry = y->kind == TOK_SLOT_POLICY ? 0 : y->kind == TOK_SLOT_NOPIN ? 1 : 2;
    if (rx != ry)
        return rx < ry ? -1 : 1;
    return x->pin_policy < y->pin_policy ? -1 : x->pin_policy > y->pin_policy;
}

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    tok_slot **list = NULL;
    TOK_ENTER();
    TOK_CHECK(pulCount != NULL, CKR_ARGUMENTS_BAD);
    /* Every slot of a present card holds a token (the free slot an uninitialised one). */
    (void)tokenPresent;
    tok_slots_update();
    list = calloc(tok_g.nslots ? tok_g.nslots : 1, sizeof(*list));
    TOK_CHECK(list != NULL, CKR_HOST_MEMORY);
    size_t n = 0;
    for (size_t i = 0; i < tok_g.nslots; i++) {
        if (tok_g.slots[i]->present)
            list[n++] = tok_g.slots[i];
    }
    qsort(list, n, sizeof(*list), slot_order);
    if (pSlotList != NULL && *pulCount < n)
        rv = CKR_BUFFER_TOO_SMALL;
    else if (pSlotList != NULL)
        for (size_t i = 0; i < n; i++)
            pSlotList[i] = list[i]->id;
    *pulCount = n;
    TOK_EXIT
    free(list);
    TOK_RETURN();
}

/* The token label of a slot, NUL-terminated, printable ASCII/UTF-8 kept. */
static void token_label(const tok_slot *slot, char *buf, size_t cap)
{
    if (slot->kind == TOK_SLOT_NOPIN) {
        snprintf(buf, cap, "%s", NOPIN_LABEL);
        return;
    }
    if (slot->kind == TOK_SLOT_FREE) {
        snprintf(buf, cap, "%s", FREE_LABEL);
        return;
    }
    if (slot->kind == TOK_SLOT_ISSUER) { /* no-card mode */
        tok_issuer_token_label(buf, cap);
        return;
    }
    const sks_pin_policy_info *p = tok_card_find_policy(slot->card, slot->pin_policy);
    size_t n = 0;
    for (size_t i = 0; p != NULL && i < p->id.len && n + 1 < cap; i++)
        buf[n++] = p->id.ptr[i] < 0x20 || p->id.ptr[i] == 0x7F ? '?' : (char)p->id.ptr[i];
    buf[n] = '\0';
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    tok_slot *slot;
    TOK_ENTER();
    TOK_CHECK(pInfo != NULL, CKR_ARGUMENTS_BAD);
    rv = tok_slot_get(slotID, &slot);
    /* A slot whose card went away still has information: no token present. */
    if (rv == CKR_TOKEN_NOT_PRESENT && (slot = tok_slot_find(slotID)) != NULL)
        rv = CKR_OK;
    TOK_TRY(rv);
    memset(pInfo, 0, sizeof(*pInfo));
    char label[TOK_LABEL_LEN + 1];
    char desc[sizeof(slot->card->reader) + TOK_LABEL_LEN + 8];
    token_label(slot, label, sizeof(label));
    snprintf(desc, sizeof(desc), "%s: %s", slot->card->reader, label);
    tok_pad(pInfo->slotDescription, sizeof(pInfo->slotDescription), desc);
    tok_pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "SKS");
    pInfo->flags = slot->present ? CKF_TOKEN_PRESENT : 0;
    if (slot->card->removable)
        pInfo->flags |= CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
    pInfo->hardwareVersion.major = 1;
    pInfo->firmwareVersion.major = SKS_API_LEVEL;
    TOK_LEAVE();
}

/* 16 hex characters from the card serial and the slot: unique per token and card. */
static void token_serial(const tok_slot *slot, char out[17])
{
    uint8_t buf[sizeof(slot->card->serial) + 4];
    uint8_t digest[32];
    size_t n = strlen(slot->card->serial);
    memcpy(buf, slot->card->serial, n);
    sks_be32_put(buf + n, (uint32_t)(slot->id & 0xFFFFFF));
    if (sks_sha256(buf, n + 4, digest) != 0)
        memset(digest, 0, sizeof(digest));
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02X", digest[i]);
}

/* The COUNT_LOW / FINAL_TRY / LOCKED flags for a retry counter. */
static CK_FLAGS counter_flags(uint8_t limit, uint8_t left, CK_FLAGS low, CK_FLAGS final,
                              CK_FLAGS locked)
{
    if (limit == 0)
        return 0; /* no counter */
    if (left == 0)
        return locked;
    CK_FLAGS f = 0;
    if (left < limit)
        f |= low;
    if (left == 1)
        f |= final;
    return f;
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    tok_slot *slot;
    TOK_ENTER();
    TOK_CHECK(pInfo != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_slot_get(slotID, &slot));
    if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode: no card to ask */
        TOK_FAIL(tok_issuer_token_info(slot, pInfo));
    tok_card *card = slot->card;
    TOK_TRY(tok_card_refresh(card));
    /* The refresh may have removed the token. */
    TOK_CHECK(slot->present, CKR_TOKEN_NOT_PRESENT);
    memset(pInfo, 0, sizeof(*pInfo));
    char label[TOK_LABEL_LEN + 1];
    char serial[17];
    token_label(slot, label, sizeof(label));
    token_serial(slot, serial);
    tok_pad(pInfo->label, sizeof(pInfo->label), label);
    tok_pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "SKS");
    tok_pad(pInfo->model, sizeof(pInfo->model), "SKS card");
    tok_pad(pInfo->serialNumber, sizeof(pInfo->serialNumber), serial);
    tok_pad(pInfo->utcTime, sizeof(pInfo->utcTime), "");
    pInfo->flags = CKF_RNG;
    pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    pInfo->ulSessionCount = tok_session_count(slot->id, 0);
    pInfo->ulRwSessionCount = tok_session_count(slot->id, 1);
    /* Memory is counted in keys: the card's limit and what is used of it. */
    pInfo->ulTotalPublicMemory = pInfo->ulTotalPrivateMemory = card->max_keys;
    pInfo->ulFreePublicMemory = pInfo->ulFreePrivateMemory =
        card->max_keys > card->used_keys ? card->max_keys - card->used_keys : 0;
    pInfo->hardwareVersion.major = 1;
    pInfo->firmwareVersion.major = SKS_API_LEVEL;
    if (slot->kind == TOK_SLOT_FREE) {
        /* Uninitialised: it holds no objects (CKR_TOKEN_WRITE_PROTECTED) until
         * C_InitToken, whose SO PIN becomes the new token's PUK. */
        pInfo->flags |= CKF_WRITE_PROTECTED;
        pInfo->ulMinPinLen = 1;
        pInfo->ulMaxPinLen = SKS_PIN_MAX;
    } else if (slot->kind == TOK_SLOT_NOPIN) {
        pInfo->flags |= CKF_TOKEN_INITIALIZED;
    } else {
        const sks_pin_policy_info *p = tok_card_find_policy(card, slot->pin_policy);
        TOK_CHECK(p != NULL, CKR_TOKEN_NOT_PRESENT);
        pInfo->flags |= CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED;
        if (p->pin_set)
            pInfo->flags |= CKF_USER_PIN_INITIALIZED;
        pInfo->flags |= counter_flags(p->retry_limit, p->tries_left, CKF_USER_PIN_COUNT_LOW,
                                      CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED);
        if (p->puk_policy_handle != 0)
            pInfo->flags |=
                counter_flags(p->puk_retry_limit, p->puk_tries_left, CKF_SO_PIN_COUNT_LOW,
                              CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED);
        pInfo->ulMinPinLen = p->min_length;
        pInfo->ulMaxPinLen = p->max_length;
    }
    TOK_LEAVE();
}

CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
                         CK_ULONG_PTR pulCount)
{
    tok_slot *slot;
    TOK_ENTER();
    TOK_CHECK(pulCount != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_slot_get(slotID, &slot));
    rv = slot->kind == TOK_SLOT_ISSUER ? tok_issuer_mech_list(pMechanismList, pulCount)
                                       : tok_mech_list(pMechanismList, pulCount);
    TOK_LEAVE();
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
    tok_slot *slot;
    TOK_ENTER();
    TOK_CHECK(pInfo != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_slot_get(slotID, &slot));
    rv = slot->kind == TOK_SLOT_ISSUER ? tok_issuer_mech_info(type, pInfo) /* no-card mode */
                                       : tok_mech_info(type, pInfo);
    TOK_LEAVE();
}

/*
 * Slot events are tokens that appear with a card inserted into a PC/SC
 * reader, or go away with it. The embedded card never comes or goes: with
 * no PC/SC transport configured there is nothing to wait for, and a
 * blocking wait is CKR_FUNCTION_NOT_SUPPORTED.
 */
CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
    TOK_ENTER();
    TOK_CHECK(pSlot != NULL && pReserved == NULL, CKR_ARGUMENTS_BAD);
    for (;;) {
        tok_readers_scan();
        if (tok_event_pop(pSlot))
            break;
        if (flags & CKF_DONT_BLOCK)
            TOK_FAIL(CKR_NO_EVENT);
        TOK_CHECK(tok_g.pcsc != NULL, CKR_FUNCTION_NOT_SUPPORTED);
        /* Wait without the module lock; NULL (pcscd not reachable): look again in a while. */
        sks_pcsc_wait *w = sks_pcsc_wait_new(tok_g.pcsc);
        tok_leave(__func__, CKR_OK);
        rv = tok_wait_block(w);
        sks_pcsc_wait_free(w);
        if (rv != CKR_OK)
            return rv;
        rv = tok_enter(__func__);
        if (rv != CKR_OK)
            return rv;
    }
    TOK_LEAVE();
}
