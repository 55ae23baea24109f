/*
 * tok_readers.c - cards that come and go. The module's card table holds one
 * tok_card per name (the embedded card, or a PC/SC reader) from its first
 * use until C_Finalize; a card is attached to a transport while it can be
 * reached and detached when it goes away, so pointers to it stay valid and
 * its slot IDs stay the same when it comes back.
 *
 * The PC/SC scan (tok_readers_scan) runs in C_GetSlotList, in lookups of
 * slots that are not present and in C_WaitForSlotEvent. It costs two
 * requests to pcscd; only a card that is new in its reader is connected and
 * SELECTed (an SKS card is recognised by its application, not by its ATR).
 * A reader whose card is not an SKS card is remembered with its event count
 * and not asked again until a card comes or goes.
 *
 * Slot events: the first scan is the baseline; afterwards every token that
 * appears with a new card, and every token of a card that goes away, is one
 * event for C_WaitForSlotEvent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sks_apdu.h"
#include "token/tok.h"

/* A reader whose card was looked at and is not usable as an SKS card. */
struct tok_probe {
    char reader[128];
    uint32_t events;
};

tok_card *tok_card_for(const char *key, const char *reader, int removable)
{
    int idx = tok_cardtab_index(&tok_g.cardtab, key, 0);
    if (idx >= 0 && (size_t)idx < tok_g.ncards)
        return tok_g.cards[idx];
    tok_card *card = calloc(1, sizeof(*card));
    if (card == NULL)
        return NULL;
    idx = tok_cardtab_index(&tok_g.cardtab, key, 1);
    if (idx < 0 || (size_t)idx != tok_g.ncards) { /* the table and the cards grow together */
        free(card);
        return NULL;
    }
    card->index = idx;
    card->removable = removable;
    snprintf(card->reader, sizeof(card->reader), "%s", reader);
    sks_writer_init(&card->policies_buf);
    tok_g.cards[tok_g.ncards++] = card;
    return card;
}

void tok_card_attach(tok_card *card, sks_transport *t, int extended, int selected)
{
    if (tok_log_apdu_enabled()) {
        t->trace = tok_log_apdu;
        t->trace_ctx = card;
    }
    card->transport = t;
    card->extended = extended;
    card->selected = selected;
    card->in_txn = 0;
    card->present = 1;
    card->serial[0] = '\0';
    card->generation++;
    tok_card_invalidate(card); /* perhaps another card than last time */
}

void tok_card_gone(tok_card *card)
{
    for (size_t i = 0; i < tok_g.nslots; i++) {
        tok_slot *s = tok_g.slots[i];
        if (s->card != card)
            continue;
        if (s->present && tok_g.scanned)
            tok_event_push(s->id);
        s->present = 0;
        s->login = TOK_NOBODY;
    }
    if (card->transport != NULL) {
        if (card->in_txn)
            card->transport->ops->end(card->transport);
        card->transport->ops->close(card->transport);
    }
    card->transport = NULL;
    card->in_txn = 0;
    card->present = 0;
    card->selected = 0;
    card->generation++;
    tok_card_invalidate(card);
}

/* ---- slot events ---------------------------------------------------------- */

void tok_event_push(CK_SLOT_ID slot)
{
    for (size_t i = 0; i < tok_g.nevents; i++) {
        if (tok_g.events[i] == slot)
            return;
    }
    if (tok_g.nevents == tok_g.events_cap) {
        size_t cap = tok_g.events_cap ? tok_g.events_cap * 2 : 8;
        CK_SLOT_ID *v = realloc(tok_g.events, cap * sizeof(*v));
        if (v == NULL) {
            tok_log(TOK_LOG_WARN, "out of memory: slot event of 0x%lx lost", (unsigned long)slot);
            return;
        }
        tok_g.events = v;
        tok_g.events_cap = cap;
    }
    tok_g.events[tok_g.nevents++] = slot;
}

int tok_event_pop(CK_SLOT_ID *slot)
{
    if (tok_g.nevents == 0)
        return 0;
    *slot = tok_g.events[0];
    memmove(tok_g.events, tok_g.events + 1, (tok_g.nevents - 1) * sizeof(*tok_g.events));
    tok_g.nevents--;
    return 1;
}

/* ---- the PC/SC scan --------------------------------------------------------- */

static int probed(const char *reader, uint32_t events)
{
    for (size_t i = 0; i < tok_g.nprobed; i++) {
        if (strcmp(tok_g.probed[i].reader, reader) == 0)
            return tok_g.probed[i].events == events;
    }
    return 0;
}

static void remember_probe(const char *reader, uint32_t events)
{
    size_t i = 0;
    while (i < tok_g.nprobed && strcmp(tok_g.probed[i].reader, reader) != 0)
        i++;
    if (i == tok_g.nprobed) {
        struct tok_probe *v = realloc(tok_g.probed, (tok_g.nprobed + 1) * sizeof(*v));
        if (v == NULL)
            return; /* it is asked again next time: only slower */
        tok_g.probed = v;
        tok_g.nprobed++;
    }
    snprintf(tok_g.probed[i].reader, sizeof(tok_g.probed[i].reader), "%s", reader);
    tok_g.probed[i].events = events;
}

/* Forget remembered readers that are no longer listed. */
static void prune_probes(void)
{
    size_t k = 0;
    for (size_t i = 0; i < tok_g.nprobed; i++) {
        if (sks_pcsc_reader_find(tok_g.pcsc, tok_g.probed[i].reader) != NULL)
            tok_g.probed[k++] = tok_g.probed[i];
    }
    tok_g.nprobed = k;
}

static int probe_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t *len)
{
    return sks_transport_transmit(ctx, cmd, n, resp, len) == SKS_TRANSPORT_OK ? 0 : -1;
}

/*
 * Is the card behind t an SKS card? SELECT of the SKS application inside a
 * transaction: 1 yes (*extended then says whether the link carries extended
 * APDUs), 0 no, -1 the card could not be asked (try again at the next scan).
 */
static int is_sks_card(sks_transport *t, int *extended)
{
    uint16_t sw = 0;
    if (t->ops->begin(t) < 0)
        return -1;
    int rc = sks_apdu_select(probe_transmit, t, &sw);
    int sks = rc == 0 && sw == SKS_SW_OK;
    if (sks)
        *extended = t->ops->extended(t);
    t->ops->end(t);
    if (rc != 0)
        return -1;
    if (!sks)
        tok_log(TOK_LOG_INFO, "%s: no SKS application on this card (SW %04X): not offered",
                t->reader, sw);
    return sks;
}

/* A card is in a reader where we have none connected: connect it if it is an SKS card. */
static void connect_reader(const sks_pcsc_reader *r)
{
    char err[256] = "";
    int status = SKS_TRANSPORT_ERROR;
    sks_transport *t = sks_transport_pcsc_open(tok_g.pcsc, r->name, &status, err, sizeof(err));
    if (t == NULL) {
        tok_log(TOK_LOG_DEBUG, "%s: cannot connect: %s", r->name, err);
        if (status != SKS_TRANSPORT_ERROR) /* no usable card: wait for the next one */
            remember_probe(r->name, r->events);
        return;
    }
    if (tok_log_apdu_enabled()) {
        t->trace = tok_log_apdu;
        t->trace_ctx = NULL;
    }
    int extended = 0;
    int sks = is_sks_card(t, &extended);
    if (sks != 1) {
        t->ops->close(t);
        if (sks == 0)
            remember_probe(r->name, r->events);
        return;
    }
    char key[sizeof(r->name) + 8];
    snprintf(key, sizeof(key), "pcsc:%s", r->name);
    tok_card *card = tok_card_for(key, r->name, 1);
    if (card == NULL) {
        tok_log(TOK_LOG_WARN, "%s: more than %d readers seen: not offered", r->name, TOK_MAX_CARDS);
        t->ops->close(t);
        remember_probe(r->name, r->events);
        return;
    }
    /* A failed extended SELECT may have left the application deselected: SELECT again then. */
    tok_card_attach(card, t, extended, extended);
    card->announce = tok_g.scanned;
    tok_log(TOK_LOG_INFO, "%s: SKS card connected (%s APDUs)", r->name,
            extended ? "extended" : "short");
    CK_RV rv = tok_card_refresh(card); /* its slots now; events if it is new */
    tok_card_end(card);
    if (rv != CKR_OK)
        tok_log(TOK_LOG_WARN, "%s: cannot read the card (0x%lx)", r->name, (unsigned long)rv);
}

void tok_readers_scan(void)
{
    if (tok_g.pcsc == NULL)
        return;
    char err[256] = "";
    if (sks_pcsc_scan(tok_g.pcsc, err, sizeof(err)) != 0) {
        if (!tok_g.pcsc_down)
            tok_log(TOK_LOG_INFO, "PC/SC service not available (%s): no reader offered", err);
        tok_g.pcsc_down = 1;
        for (size_t i = 0; i < tok_g.ncards; i++) {
            if (tok_g.cards[i]->removable && tok_g.cards[i]->transport != NULL)
                tok_card_gone(tok_g.cards[i]);
        }
        tok_g.nprobed = 0;
        tok_g.scanned = 1;
        return;
    }
    if (tok_g.pcsc_down)
        tok_log(TOK_LOG_INFO, "PC/SC service available");
    tok_g.pcsc_down = 0;
    /* Cards that went away: no card in the reader, another card, or no reader. */
    for (size_t i = 0; i < tok_g.ncards; i++) {
        tok_card *card = tok_g.cards[i];
        if (!card->removable || card->transport == NULL)
            continue;
        const sks_pcsc_reader *r = sks_pcsc_reader_find(tok_g.pcsc, card->reader);
        if (r == NULL || !r->card_present ||
            r->events != sks_transport_pcsc_events(card->transport)) {
            tok_log(TOK_LOG_INFO, "%s: card removed", card->reader);
            tok_card_gone(card);
        }
    }
    prune_probes();
    /* Cards that are new in their reader. */
    for (size_t i = 0; i < sks_pcsc_reader_count(tok_g.pcsc); i++) {
        const sks_pcsc_reader *r = sks_pcsc_reader_at(tok_g.pcsc, i);
        if (!r->card_present || probed(r->name, r->events))
            continue;
        char key[sizeof(r->name) + 8];
        snprintf(key, sizeof(key), "pcsc:%s", r->name);
        int idx = tok_cardtab_index(&tok_g.cardtab, key, 0);
        if (idx >= 0 && (size_t)idx < tok_g.ncards && tok_g.cards[idx]->transport != NULL)
            continue;
        connect_reader(r);
    }
    tok_g.scanned = 1;
}

void tok_readers_free(void)
{
    free(tok_g.events);
    tok_g.events = NULL;
    tok_g.nevents = tok_g.events_cap = 0;
    free(tok_g.probed);
    tok_g.probed = NULL;
    tok_g.nprobed = 0;
}
