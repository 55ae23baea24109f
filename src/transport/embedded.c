/*
 * embedded.c - the embedded transport: the SKS card engine (src/card)
 * linked into the module, on a state directory of its own. APDUs go to
 * sks_card_apdu() exactly as they would go to a reader, so the middleware
 * cannot tell the difference. Nobody else shares this in-process card, so
 * begin() never reports a reset; another process may open the same state
 * directory, with its own card session (verified PINs), over SQLite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "card/sks_card.h"
#include "protocol/sks_apdu.h"
#include "transport/transport.h"

typedef struct {
    sks_transport base; /* first: the transport pointer is this struct */
    sks_card *card;
} embedded_transport;

static int emb_begin(sks_transport *t)
{
    (void)t;
    return SKS_TRANSPORT_OK;
}

static void emb_end(sks_transport *t)
{
    (void)t;
}

static int emb_transmit(sks_transport *t, const uint8_t *cmd, size_t n, uint8_t *resp,
                        size_t *resp_len)
{
    embedded_transport *e = (embedded_transport *)t;
    *resp_len = sks_card_apdu(e->card, cmd, n, resp, SKS_APDU_MAX);
    return SKS_TRANSPORT_OK;
}

static int emb_extended(sks_transport *t)
{
    (void)t;
    return 1;
}

static void emb_close(sks_transport *t)
{
    embedded_transport *e = (embedded_transport *)t;
    sks_card_close(e->card);
    free(e);
}

static const struct sks_transport_ops embedded_ops = {
    "embedded", emb_begin, emb_end, emb_transmit, emb_extended, emb_close,
};

/* Does `dir` already hold a card (its database)? */
static int has_card(const char *dir)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/card.db", dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return 0;
    return access(path, F_OK) == 0;
}

sks_transport *sks_transport_embedded_open(const char *state_dir, char *err, size_t errlen)
{
    if (state_dir == NULL) {
        snprintf(err, errlen, "no state directory");
        return NULL;
    }
    /* First use: a new card (development manufacturer CA, attestation key). */
    if (!has_card(state_dir) && sks_card_init_state(state_dir, NULL, err, errlen) != 0)
        return NULL;
    embedded_transport *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->card = sks_card_open(state_dir, err, errlen);
    if (e->card == NULL) {
        free(e);
        return NULL;
    }
    e->base.ops = &embedded_ops;
    snprintf(e->base.reader, sizeof(e->base.reader), "SKS embedded card");
    return &e->base;
}
