/*
 * card_apdu.c - the card side of the ISO 7816-4 framing (docs/protocol.md
 * section 4): SELECT of the SKS application, SKS calls in one APDU or
 * chained over several, long answers handed out with 61xx + GET RESPONSE.
 *
 * State kept between APDUs (selection, the chained call being received, the
 * answer being fetched) is volatile: sks_card_reset() forgets it, as a power
 * cycle does on a real card.
 */
#include <string.h>

#include "../protocol/sks_apdu.h"
#include "card_internal.h"

/* Write SW1 SW2 after `len` bytes of data already in resp; return total length. */
static size_t card_apdu_sw(uint8_t *resp, size_t len, uint16_t sw)
{
    resp[len] = (uint8_t)(sw >> 8);
    resp[len + 1] = (uint8_t)sw;
    return len + 2;
}

static void card_apdu_drop_pending(sks_card *card)
{
    sks_writer_reset(&card->pending);
    card->pending_off = 0;
}

static void card_apdu_drop_chain(sks_card *card)
{
    sks_writer_reset(&card->chain);
    card->chaining = 0;
}

/* Hand out the next part of the pending answer: at most `le` bytes. */
static size_t card_apdu_next_part(sks_card *card, size_t le, uint8_t *resp, size_t cap)
{
    size_t left = card->pending.len - card->pending_off;
    size_t part = left < le ? left : le;
    if (part > cap - 2)
        part = cap - 2;
    memcpy(resp, card->pending.buf + card->pending_off, part);
    card->pending_off += part;
    left -= part;
    if (left == 0) {
        card_apdu_drop_pending(card);
        return card_apdu_sw(resp, part, SKS_SW_OK);
    }
    return card_apdu_sw(resp, part, (uint16_t)(SKS_SW_MORE_DATA | (left > 255 ? 0 : left)));
}

/* The number of answer bytes a command allows: its Le, or the maximum without one. */
static size_t card_apdu_le(const sks_apdu *a)
{
    size_t max = a->extended ? 65536u : 256u;
    if (!a->has_le || a->le == 0)
        return max;
    return a->le;
}

static size_t card_apdu_select(sks_card *card, const sks_apdu *a, uint8_t *resp)
{
    card_apdu_drop_chain(card);
    if (a->p1 != 0x04 || (a->p2 != 0x00 && a->p2 != 0x0C))
        return card_apdu_sw(resp, 0, SKS_SW_WRONG_P1P2);
    if (a->lc != SKS_AID_LEN || memcmp(a->data, sks_aid, SKS_AID_LEN) != 0) {
        card->selected = 0;
        return card_apdu_sw(resp, 0, SKS_SW_NOT_FOUND);
    }
    card->selected = 1;
    return card_apdu_sw(resp, 0, SKS_SW_OK);
}

static size_t card_apdu_sks_call(sks_card *card, const sks_apdu *a, uint8_t *resp, size_t cap)
{
    if (a->p1 != 0 || a->p2 != 0) {
        card_apdu_drop_chain(card);
        return card_apdu_sw(resp, 0, SKS_SW_WRONG_P1P2);
    }
    if (!card->selected) {
        card_apdu_drop_chain(card);
        return card_apdu_sw(resp, 0, SKS_SW_CONDITIONS);
    }
    int more = (a->cla & SKS_CLA_CHAIN_BIT) != 0;
    if (more || card->chaining) {
        if (card->chain.len + a->lc > SKS_CALL_MAX) {
            card_apdu_drop_chain(card);
            return card_apdu_sw(resp, 0, SKS_SW_MEMORY);
        }
        sks_put_raw(&card->chain, a->data, a->lc);
        if (card->chain.failed) {
            card_apdu_drop_chain(card);
            return card_apdu_sw(resp, 0, SKS_SW_MEMORY);
        }
        if (more) {
            card->chaining = 1;
            return card_apdu_sw(resp, 0, SKS_SW_OK);
        }
        sks_card_call(card, card->chain.buf, card->chain.len, &card->pending);
        card_apdu_drop_chain(card);
    } else {
        sks_card_call(card, a->data, a->lc, &card->pending);
    }
    if (card->pending.failed) {
        card_apdu_drop_pending(card);
        return card_apdu_sw(resp, 0, SKS_SW_UNKNOWN);
    }
    card->pending_off = 0;
    return card_apdu_next_part(card, card_apdu_le(a), resp, cap);
}

size_t sks_card_apdu(sks_card *card, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap)
{
    sks_apdu a;
    if (cap < 2)
        return 0;
    uint16_t sw = sks_apdu_parse(cmd, n, &a);
    if (sw != SKS_SW_OK) {
        card_apdu_drop_pending(card);
        card_apdu_drop_chain(card);
        return card_apdu_sw(resp, 0, sw);
    }
    uint8_t cla = a.cla & (uint8_t)~SKS_CLA_CHAIN_BIT;

    if (a.ins == SKS_INS_GET_RESPONSE && (a.cla == SKS_CLA_ISO || a.cla == SKS_CLA_PROPRIETARY)) {
        if (a.p1 != 0 || a.p2 != 0)
            return card_apdu_sw(resp, 0, SKS_SW_WRONG_P1P2);
        if (card->pending.len == 0 || a.lc != 0)
            return card_apdu_sw(resp, 0, SKS_SW_CONDITIONS);
        return card_apdu_next_part(card, card_apdu_le(&a), resp, cap);
    }
    card_apdu_drop_pending(card);

    if (a.ins == SKS_INS_SELECT && a.cla == SKS_CLA_ISO)
        return card_apdu_select(card, &a, resp);
    if (a.ins == SKS_INS_CALL && cla == SKS_CLA_PROPRIETARY)
        return card_apdu_sks_call(card, &a, resp, cap);

    card_apdu_drop_chain(card);
    if (cla != SKS_CLA_ISO && cla != SKS_CLA_PROPRIETARY)
        return card_apdu_sw(resp, 0, SKS_SW_CLA_NOT_SUPPORTED);
    return card_apdu_sw(resp, 0, SKS_SW_INS_NOT_SUPPORTED);
}

void sks_card_reset(sks_card *card)
{
    card_apdu_drop_pending(card);
    card_apdu_drop_chain(card);
    card->selected = 0;
    card->nverified = 0; /* every verified PIN and PUK is forgotten */
    card->npuk_verified = 0;
    card_session_keys_free(card); /* injection session keys live in RAM only */
}
