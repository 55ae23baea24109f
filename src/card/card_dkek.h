/*
 * card_dkek.h - the card's DKEK as card_dkek.c keeps it and card_backup.c
 * uses it: one sealed metadata value, so the DKEK is protected at rest like
 * every other secret of the card (docs/protocol.md section 8).
 */
#ifndef CARD_DKEK_H
#define CARD_DKEK_H

#include <stdint.h>

#include "card_internal.h"

typedef struct {
    uint8_t state;               /* enum sks_dkek_state */
    uint8_t total;               /* shares expected (0: card-internal DKEK) */
    uint8_t imported;            /* shares imported so far */
    uint8_t value[SKS_DKEK_LEN]; /* the XOR of the imported shares (the DKEK once READY) */
} card_dkek;

/* The card's DKEK state (SKS_DKEK_NONE when never initialised). SKS_OK or a failure status. */
int card_dkek_load(card_call *call, card_dkek *d);
/* Zeroize a loaded state. */
void card_dkek_wipe(card_dkek *d);

#endif
