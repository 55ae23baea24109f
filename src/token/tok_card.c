/*
 * tok_card.c - talking to a card: the configured transports, the SELECT of
 * the SKS application, the per-call transaction, and tok_card_call(), the
 * one path by which the token layer runs SKS methods (encode with the
 * shared message table, frame with sks_apdu_call, decode strictly).
 *
 * A card shared through PC/SC may have been used by another application
 * since our last transaction. A reset is reported by the transport (begin()
 * or transmit() answer SKS_TRANSPORT_RESET): the card forgot its verified
 * PINs, so the module forgets its logins and SELECTs again. Another
 * application's own SELECT only deselects the SKS application, which keeps
 * the verified PINs: the card answers 6985 and the module SELECTs and
 * retries the call. Nothing is spent on checks while nobody else uses the
 * card: a signature after login is one APDU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sks_apdu.h"
#include "token/tok.h"
#include "token/tok_issuer_token.h"

/*
 * The transport's begin() for this PKCS#11 call. A reset (or another
 * application's use) it reports means the PINs verified earlier are gone:
 * the logins are forgotten and the application must be SELECTed again.
 * The transport status, negative on failure.
 */
static int take_transaction(tok_card *card)
{
    int rc = card->transport->ops->begin(card->transport);
    if (rc < 0)
        return rc;
    card->in_txn = 1; /* tok_leave ends it */
    if (rc == SKS_TRANSPORT_RESET) {
        tok_log(TOK_LOG_INFO, "%s: card was reset", card->reader);
        card->selected = 0;
        tok_slots_forget_logins(card);
    }
    return rc;
}

/*
 * sks_apdu's transmit callback over the card's transport. A call that was
 * sent without a transaction (txn_deferred) and needs a second APDU (the
 * card answered 6985 and we SELECT again, or a reset) takes the transaction
 * now, so the rest of the call is not interleaved with anyone else's. A
 * reset that begin() reports is handled as tok_card_begin() does (logins
 * forgotten, SELECT needed); the APDU that follows is that SELECT, and the
 * retried operation then answers NOT_AUTHENTICATED.
 */
static int transmit_cb(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t *resp_len)
{
    tok_card *card = ctx;
    if (card->txn_deferred && card->transmits++ > 0 && !card->in_txn) {
        int rc = take_transaction(card);
        if (rc < 0) {
            card->link_status = rc;
            return -1;
        }
    }
    int rc = sks_transport_transmit(card->transport, cmd, n, resp, resp_len);
    if (rc != SKS_TRANSPORT_OK) {
        card->link_status = rc;
        return -1;
    }
    return 0;
}

/* The CKR for a transport failure; a card that is gone takes its slots and logins. */
static CK_RV link_failure(tok_card *card, int status)
{
    if (status == SKS_TRANSPORT_NO_CARD || status == SKS_TRANSPORT_REMOVED) {
        tok_log(TOK_LOG_INFO, "%s: card %s", card->reader,
                status == SKS_TRANSPORT_NO_CARD ? "not present" : "removed");
        tok_card_gone(card);
    }
    return tok_transport_rv(status);
}

static CK_RV select_application(tok_card *card)
{
    uint16_t sw = 0;
    card->link_status = SKS_TRANSPORT_ERROR;
    if (sks_apdu_select(transmit_cb, card, &sw) != 0)
        return link_failure(card, card->link_status);
    if (sw != SKS_SW_OK) {
        tok_log(TOK_LOG_ERROR, "%s: SELECT of the SKS application answered %04X", card->reader, sw);
        return CKR_TOKEN_NOT_RECOGNIZED;
    }
    card->selected = 1;
    return CKR_OK;
}

CK_RV tok_card_begin(tok_card *card)
{
    if (card->in_txn)
        return CKR_OK;
    if (card->transport == NULL)
        return CKR_TOKEN_NOT_PRESENT;
    int rc = take_transaction(card);
    if (rc < 0)
        return link_failure(card, rc);
    card->present = 1;
    if (!card->selected) {
        CK_RV rv = select_application(card);
        if (rv != CKR_OK) {
            tok_card_end(card);
            return rv;
        }
    }
    return CKR_OK;
}

void tok_card_end(tok_card *card)
{
    if (!card->in_txn || card->transport == NULL)
        return;
    card->transport->ops->end(card->transport);
    card->in_txn = 0;
}

/* Copy the card's error string, keeping printable ASCII only (it goes to logs). */
static void copy_message(char *dst, size_t cap, sks_view msg)
{
    if (dst == NULL || cap == 0)
        return;
    size_t n = 0;
    for (size_t i = 0; i < msg.len && n + 1 < cap; i++)
        dst[n++] = (msg.ptr[i] >= 0x20 && msg.ptr[i] < 0x7F) ? (char)msg.ptr[i] : '?';
    dst[n] = '\0';
}

/*
 * A call sent without a transaction failed on the link. Beginning the
 * transaction now tells what happened (a card that was pulled or whose
 * daemon stopped is reported as removed at once; a transmission that fails
 * does not always say so): the caller then reports what begin() saw.
 */
static void classify_lost_apdu(tok_card *card)
{
    int rc = take_transaction(card);
    if (rc == SKS_TRANSPORT_REMOVED || rc == SKS_TRANSPORT_NO_CARD)
        card->link_status = rc;
}

/*
 * Whether a call can go to the card as one APDU outside a PC/SC
 * transaction: SCardBeginTransaction and SCardEndTransaction are each a
 * round trip to pcscd, two thirds of a signature's cost through pcscd. Only
 * the per-operation private-key methods qualify (a PKCS#11 call makes no
 * other card call with them, so nothing needs to be atomic with them), only
 * while the SKS application is selected, and only with extended APDUs
 * (their request and answer then fit one APDU each: no chaining, no GET
 * RESPONSE). Another application's SELECT in between is answered with 6985
 * and the retry runs in a transaction (transmit_cb); a reset is reported by
 * the transmission itself.
 */
static int single_apdu_call(const tok_card *card, uint8_t method, size_t call_len)
{
    if (card->in_txn || !card->selected || !card->extended || call_len > SKS_EXTENDED_CHUNK)
        return 0;
    return method == SKS_M_SIGN_HASHED_DATA || method == SKS_M_ASYMMETRIC_DECRYPT ||
           method == SKS_M_KEY_AGREEMENT;
}

CK_RV tok_card_call(tok_card *card, uint8_t method, const void *req, void *resp, sks_writer *answer,
                    uint8_t *status, char *errmsg, size_t errlen)
{
    *status = SKS_ERR_INTERNAL;
    if (errmsg != NULL && errlen > 0)
        errmsg[0] = '\0';
    const sks_msgdesc *d = sks_msg_find(method);
    if (d == NULL) {
        *status = SKS_ERR_NO_METHOD;
        if (errmsg != NULL)
            snprintf(errmsg, errlen, "method %u unknown to this module", method);
        return CKR_OK;
    }
    if (card == NULL || card->transport == NULL)
        return CKR_TOKEN_NOT_PRESENT;

    sks_writer call;
    sks_writer_init(&call);
    if (sks_msg_encode_request(d, req, &call) != 0 || call.failed) {
        sks_writer_free(&call);
        tok_log(TOK_LOG_WARN, "%s: the request does not fit the protocol", d->name);
        return CKR_ARGUMENTS_BAD;
    }
    CK_RV rv = CKR_OK;
    card->transmits = 0;
    card->txn_deferred = single_apdu_call(card, method, call.len);
    if (!card->txn_deferred)
        rv = tok_card_begin(card);
    if (rv != CKR_OK) {
        sks_writer_free(&call);
        return rv;
    }
    uint16_t sw = 0;
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        card->link_status = SKS_TRANSPORT_ERROR;
        rc = sks_apdu_call(transmit_cb, card, card->extended, call.buf, call.len, answer, &sw);
        int reset = rc != 0 && card->link_status == SKS_TRANSPORT_RESET;
        int deselected = rc == 0 && sw == SKS_SW_CONDITIONS;
        if ((!reset && !deselected) || attempt == 1)
            break;
        if (reset) {
            /* Reset before the call reached the card: the PINs verified earlier are gone. */
            tok_log(TOK_LOG_INFO, "%s: card was reset", card->reader);
            tok_slots_forget_logins(card);
        }
        /*
         * Not selected: another application selected its own applet (the
         * card keeps verified PINs; if it lost them it says so). Select, retry.
         */
        card->selected = 0;
        rv = select_application(card);
        if (rv != CKR_OK)
            break;
    }
    /* (A card already found gone has no transport left to ask.) */
    if (rv == CKR_OK && rc != 0 && card->txn_deferred && !card->in_txn && card->transport != NULL)
        classify_lost_apdu(card);
    card->txn_deferred = 0;
    sks_writer_free(&call); /* the call may hold a PIN */
    if (rv != CKR_OK)
        return rv;
    if (rc != 0)
        return link_failure(card, card->link_status);
    if (sw != SKS_SW_OK) {
        tok_log(TOK_LOG_ERROR, "%s: the card answered %04X", d->name, sw);
        return CKR_DEVICE_ERROR;
    }
    sks_view msg = {NULL, 0};
    if (sks_msg_decode_response(d, answer->buf, answer->len, resp, status, &msg) != 0) {
        tok_log(TOK_LOG_ERROR, "%s: malformed answer from the card", d->name);
        return CKR_DEVICE_ERROR;
    }
    if (*status == SKS_ERR_NOT_AUTHENTICATED &&
        (method == SKS_M_SIGN_HASHED_DATA || method == SKS_M_ASYMMETRIC_DECRYPT ||
         method == SKS_M_KEY_AGREEMENT)) {
        /*
         * A key the user was logged in for (the module offers private keys
         * only then) and the card forgot the PIN: a reset, or another
         * application logged the policy out. The next reload brings the
         * slots' login state in line with the card's (tok_slots_sync).
         */
        tok_card_invalidate(card);
    }
    if (*status != SKS_OK) {
        char text[160];
        copy_message(text, sizeof(text), msg);
        copy_message(errmsg, errlen, msg);
        tok_log(TOK_LOG_DEBUG, "%s: %s (%s)", d->name, sks_status_name(*status), text);
    }
    return CKR_OK;
}

CK_RV tok_card_call_rv(tok_card *card, uint8_t method, const void *req, void *resp,
                       sks_writer *answer)
{
    uint8_t status;
    char msg[160];
    CK_RV rv = tok_card_call(card, method, req, resp, answer, &status, msg, sizeof(msg));
    if (rv != CKR_OK)
        return rv;
    return tok_status_to_rv(status, method);
}

/* The embedded card under <state_dir>/card, created on first use. */
static void open_embedded(const tok_config *cfg)
{
    char dir[4096];
    int n = snprintf(dir, sizeof(dir), "%s/card", cfg->state_dir);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        tok_log(TOK_LOG_ERROR, "state_dir too long");
        return;
    }
    char err[256] = "";
    sks_transport *t = sks_transport_embedded_open(dir, err, sizeof(err));
    if (t == NULL) {
        tok_log(TOK_LOG_ERROR, "embedded card %s: %s", dir, err);
        return;
    }
    tok_card *card = tok_card_for("embedded", t->reader, 0);
    if (card == NULL) {
        t->ops->close(t);
        tok_log(TOK_LOG_ERROR, "out of memory");
        return;
    }
    tok_card_attach(card, t, t->ops->extended(t), 0);
}

void tok_cards_open(void)
{
    const tok_config *cfg = &tok_g.config;
    if (cfg->use_embedded)
        open_embedded(cfg);
    /* No-card mode: the issuer token is the only slot. */
    if (cfg->no_card)
        tok_issuer_token_open();
    /* PC/SC readers are looked at by the first scan (C_GetSlotList and friends). */
    if (cfg->use_pcsc) {
        tok_g.pcsc = sks_pcsc_new();
        if (tok_g.pcsc == NULL)
            tok_log(TOK_LOG_ERROR, "out of memory");
    }
}

void tok_card_free(tok_card *card)
{
    if (card == NULL)
        return;
    tok_card_cache_free(card);
    sks_writer_free(&card->policies_buf);
    if (card->transport != NULL) {
        tok_card_end(card);
        card->transport->ops->close(card->transport);
    }
    free(card);
}

void tok_cards_close(void)
{
    for (size_t i = 0; i < tok_g.ncards; i++) {
        tok_card_free(tok_g.cards[i]);
        tok_g.cards[i] = NULL;
    }
    tok_g.ncards = 0;
    tok_issuer_token_close();
    /* After the cards: their transports use its context. */
    sks_pcsc_free(tok_g.pcsc);
    tok_g.pcsc = NULL;
    tok_cardtab_free(&tok_g.cardtab);
    tok_readers_free();
}
