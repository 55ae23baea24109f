/*
 * tool_card.h - what sks-tool's verbs share to talk to a card kept in a
 * state directory: open it, run one method encoded and decoded exactly as
 * a middleware would, and print bytes that came from the card safely.
 */
#ifndef SKS_TOOL_CARD_H
#define SKS_TOOL_CARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "card/sks_card.h"
#include "protocol/sks_wire.h"

/* The program name used in messages ("sks-tool"). */
extern const char *tool_prog;

/* Open the card in `dir`; NULL after printing why. */
sks_card *tool_open_card(const char *dir);

/*
 * Run one method on the card: encode `req`, call, decode into `resp` (whose
 * views point into `answer`). 0 on success; otherwise *status (may be NULL)
 * gets the card's status, which is printed with its message unless `quiet`,
 * and -1 is returned.
 */
int tool_card_call(sks_card *card, uint8_t method, const void *req, void *resp, sks_writer *answer,
                   uint8_t *status, int quiet);

/* As tool_card_call, never quiet, without the status. */
int tool_card_rpc(sks_card *card, uint8_t method, const void *req, void *resp, sks_writer *answer);

/*
 * Print bytes that came from the card: printable ASCII and UTF-8 as they
 * are, anything else as \xNN, so card data can never drive the terminal.
 */
void tool_print_text(FILE *out, const uint8_t *p, size_t n);

/* An ID: quoted when it is printable ASCII, hex otherwise. */
void tool_print_id(FILE *out, sks_view id);

#endif
