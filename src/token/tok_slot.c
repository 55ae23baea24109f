/*
 * tok_slot.c - the slot table. Each card gives one slot per PIN policy (its
 * token), one for keys and objects without PIN (listed when there are any)
 * and one "free" slot with an uninitialised token for C_InitToken. Slot IDs
 * are stable (TOK_SLOT_ID) and a tok_slot, once created, lives until
 * C_Finalize: a policy that disappears, or a card that goes away, only makes
 * its slot not present.
 */
#include <stdlib.h>
#include <string.h>

#include "token/tok.h"

tok_slot *tok_slot_find(CK_SLOT_ID id)
{
    for (size_t i = 0; i < tok_g.nslots; i++) {
        if (tok_g.slots[i]->id == id)
            return tok_g.slots[i];
    }
    return NULL;
}

/* The slot with this ID, created (not present) if new. NULL: out of memory. */
static tok_slot *get_or_add(tok_card *card, CK_SLOT_ID id, enum tok_slot_kind kind, uint32_t policy)
{
    tok_slot *s = tok_slot_find(id);
    if (s != NULL)
        return s;
    tok_slot **v = realloc(tok_g.slots, (tok_g.nslots + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    tok_g.slots = v;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->id = id;
    s->card = card;
    s->kind = kind;
    s->pin_policy = policy;
    s->login = TOK_NOBODY;
    tok_g.slots[tok_g.nslots++] = s;
    return s;
}

CK_SLOT_ID tok_slot_id_for_policy(const tok_card *card, uint32_t pin_policy)
{
    return TOK_SLOT_ID(card->index, pin_policy == 0 ? TOK_SLOT_LOW_NOPIN : pin_policy);
}

/*
 * Mark a slot present or not. The tokens of a card that was just connected
 * (card->announce, set for cards found after the first scan) are slot events.
 */
static void set_present(tok_card *card, tok_slot *s, int present)
{
    if (s == NULL)
        return;
    if (present && card->announce)
        tok_event_push(s->id);
    s->present = present;
}

void tok_slots_sync(tok_card *card)
{
    for (size_t i = 0; i < tok_g.nslots; i++) {
        if (tok_g.slots[i]->card == card)
            tok_g.slots[i]->present = 0;
    }
    for (size_t i = 0; i < card->npolicies; i++) {
        uint32_t h = card->policies[i].handle;
        if (h == 0 || h >= TOK_SLOT_LOW_FREE) {
            tok_log(TOK_LOG_WARN, "PIN policy %u: handle too large for a slot ID, not shown", h);
            continue;
        }
        tok_slot *s = get_or_add(card, TOK_SLOT_ID(card->index, h), TOK_SLOT_POLICY, h);
        set_present(card, s, card->present);
        /*
         * The card forgot the PIN (reset, or another application logged the
         * policy out). Without CachingSupport every key use forgets it too,
         * and the login stays: each use takes a context login (p11_login.c).
         */
        if (s != NULL && s->login == CKU_USER && !card->policies[i].verified &&
            card->policies[i].caching_support) {
            tok_log(TOK_LOG_INFO, "%s: PIN of token %u no longer verified on the card: logged out",
                    card->reader, h);
            s->login = TOK_NOBODY;
        }
    }
    int nopin = !card->keys_loaded && card->nopin_keys > 0;
    for (size_t i = 0; !nopin && i < card->nkeys; i++)
        nopin = card->keys[i].pin_policy == 0;
    for (size_t i = 0; !nopin && i < card->nobjects; i++)
        nopin = card->objects[i].readable && card->objects[i].pin_policy == 0;
    if (nopin) {
        tok_slot *s =
            get_or_add(card, TOK_SLOT_ID(card->index, TOK_SLOT_LOW_NOPIN), TOK_SLOT_NOPIN, 0);
        set_present(card, s, card->present);
    }
    tok_slot *f = get_or_add(card, TOK_SLOT_ID(card->index, TOK_SLOT_LOW_FREE), TOK_SLOT_FREE, 0);
    set_present(card, f, card->present);
    card->announce = 0;
    /* A token that went away takes its login with it. */
    for (size_t i = 0; i < tok_g.nslots; i++) {
        if (tok_g.slots[i]->card == card && !tok_g.slots[i]->present)
            tok_g.slots[i]->login = TOK_NOBODY;
    }
}

CK_RV tok_slots_update(void)
{
    tok_readers_scan();
    for (size_t i = 0; i < tok_g.ncards; i++) {
        tok_card *card = tok_g.cards[i];
        if (card->transport == NULL)
            continue; /* no card in the reader: its slots are already hidden */
        CK_RV rv = tok_card_refresh(card);
        /*
         * One card at a time: two processes refreshing the same cards in
         * different orders must not each hold one card's transaction.
         */
        tok_card_end(card);
        if (rv != CKR_OK && card->transport != NULL) {
            tok_log(TOK_LOG_WARN, "%s: not usable (0x%lx)", card->reader, (unsigned long)rv);
            for (size_t j = 0; j < tok_g.nslots; j++) {
                if (tok_g.slots[j]->card == card && rv != CKR_HOST_MEMORY) {
                    tok_g.slots[j]->present = 0;
                    tok_g.slots[j]->login = TOK_NOBODY;
                }
            }
        }
    }
    return CKR_OK;
}

void tok_slots_forget_logins(tok_card *card)
{
    for (size_t i = 0; i < tok_g.nslots; i++) {
        if (tok_g.slots[i]->card == card)
            tok_g.slots[i]->login = TOK_NOBODY;
    }
}

void tok_slots_free(void)
{
    for (size_t i = 0; i < tok_g.nslots; i++)
        free(tok_g.slots[i]);
    free(tok_g.slots);
    tok_g.slots = NULL;
    tok_g.nslots = 0;
}

CK_RV tok_slot_get(CK_SLOT_ID id, tok_slot **out)
{
    tok_slot *s = tok_slot_find(id);
    if (s == NULL || !s->present) {
        /* Perhaps nobody listed the slots yet, or the card changed: look again. */
        tok_slots_update();
        s = tok_slot_find(id);
    }
    if (s == NULL)
        return CKR_SLOT_ID_INVALID;
    /* A slot we showed before whose token (card) is not there now. */
    if (!s->present)
        return CKR_TOKEN_NOT_PRESENT;
    *out = s;
    return CKR_OK;
}

int tok_logged_in(const tok_slot *slot)
{
    return slot != NULL && slot->login == CKU_USER;
}
