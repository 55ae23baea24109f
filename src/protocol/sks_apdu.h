/*
 * sks_apdu.h - ISO 7816-4 framing of SKS calls.
 *
 *   SELECT   00 A4 04 00 Lc <SKS AID> [Le]       selects the SKS application
 *   SKS call 80 10 00 00 Lc <method byte, args>  Le   (extended or short)
 *            90 10 00 00 ...                     chained part: more follows
 *   GET RESPONSE 00 C0 00 00 Le                  next part of a long answer
 *
 * The answer to a call is the SKS answer (status byte, results or error
 * string) followed by SW 9000, or its first part and SW 61xx when it does not
 * fit the Le of the command; GET RESPONSE fetches the rest. An ISO status
 * word other than 9000/61xx means the framing failed, never the SKS method.
 *
 * The card side of the framing lives in src/card/card_apdu.c; the
 * middleware side (splitting, chaining, collecting) is sks_apdu_call() here.
 */
#ifndef SKS_APDU_H
#define SKS_APDU_H

#include <stddef.h>
#include <stdint.h>

#include "sks_wire.h"

#define SKS_CLA_ISO 0x00
#define SKS_CLA_PROPRIETARY 0x80
#define SKS_CLA_CHAIN_BIT 0x10
#define SKS_INS_SELECT 0xA4
#define SKS_INS_CALL 0x10
#define SKS_INS_GET_RESPONSE 0xC0

/* Proprietary AID (RID category F: unregistered, as ISO 7816-5 allows). */
#define SKS_AID_BYTES 0xF0, 0x53, 0x4B, 0x53, 0x01, 0x00, 0x01
#define SKS_AID_LEN 7
extern const uint8_t sks_aid[SKS_AID_LEN];

#define SKS_SW_OK 0x9000
#define SKS_SW_MORE_DATA 0x6100 /* low byte: bytes left, 00 = 256 or more */
#define SKS_SW_WRONG_LENGTH 0x6700
#define SKS_SW_CONDITIONS 0x6985 /* not selected, or broken chaining */
#define SKS_SW_WRONG_DATA 0x6A80
#define SKS_SW_NOT_FOUND 0x6A82 /* SELECT of an unknown application */
#define SKS_SW_WRONG_P1P2 0x6A86
#define SKS_SW_INS_NOT_SUPPORTED 0x6D00
#define SKS_SW_CLA_NOT_SUPPORTED 0x6E00
#define SKS_SW_MEMORY 0x6A84 /* chained call too long */
#define SKS_SW_UNKNOWN 0x6F00

/* Largest SKS call or answer carried across all chained parts. */
#define SKS_CALL_MAX (256u * 1024u)
/* Largest single command or response APDU (extended: 5 + 2 + 65535 + 2 + 2). */
#define SKS_APDU_MAX (65536u + 16u)
/* Data bytes per part when extended length is not available. */
#define SKS_SHORT_CHUNK 255u
/* Data bytes per part with extended length. */
#define SKS_EXTENDED_CHUNK 65535u

typedef struct {
    uint8_t cla, ins, p1, p2;
    const uint8_t *data; /* points into the parsed buffer */
    size_t lc;
    size_t le;  /* expected length, decoded: Le 00 (short) is 256, 00 00 (extended) 65536 */
    int has_le;
    int extended;
} sks_apdu;

/*
 * Parse a command APDU in any of the ISO cases (1, 2S/E, 3S/E, 4S/E).
 * Returns SKS_SW_OK or the status word that describes the problem.
 */
uint16_t sks_apdu_parse(const uint8_t *p, size_t n, sks_apdu *out);

/*
 * Build a command APDU (short or extended, chosen by `extended`). lc 0: no
 * data field; le 0: no Le field; le 256 (short) or 65536 (extended) is
 * encoded as 00 / 00 00. -1 when lc or le does not fit the chosen form.
 */
int sks_apdu_build(sks_writer *w, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2,
                   const uint8_t *data, size_t lc, size_t le, int extended);

/*
 * One transmission: command in, response (data + SW) out. Returns 0 or -1
 * when the link failed; *resp_len is set to the bytes received.
 */
typedef int (*sks_transmit_fn)(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp,
                               size_t *resp_len);

/* SELECT the SKS application. Returns 0 and *sw, or -1 on link failure. */
int sks_apdu_select(sks_transmit_fn fn, void *ctx, uint16_t *sw);

/*
 * Send one SKS call (method byte + args), chaining it over several
 * APDUs when it does not fit one, and collect the whole answer with GET
 * RESPONSE. On return 0, `answer` holds the SKS answer and *sw is 9000; on
 * an ISO error *sw holds it and answer is empty (a call longer than
 * SKS_CALL_MAX is not sent: *sw = 6A84). -1: link failure, or a card that
 * breaks the framing (an answer beyond SKS_CALL_MAX, 61xx without data).
 */
int sks_apdu_call(sks_transmit_fn fn, void *ctx, int extended, const uint8_t *call, size_t n,
                  sks_writer *answer, uint16_t *sw);

#endif
