/*
 * sks_apdu.c - ISO 7816-4 framing of SKS calls: parsing and building
 * command APDUs (short and extended), and the middleware side of a call
 * (SELECT, command chaining of long calls, GET RESPONSE of long answers).
 */
#include "sks_apdu.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

const uint8_t sks_aid[SKS_AID_LEN] = {SKS_AID_BYTES};

#define SHORT_LE_MAX    256u
#define EXTENDED_LE_MAX 65536u

/* Le as encoded (one or two bytes) to the length it stands for. */
static size_t decode_le(size_t raw, int extended)
{
    if (raw != 0)
        return raw;
    return extended ? EXTENDED_LE_MAX : SHORT_LE_MAX;
}

uint16_t sks_apdu_parse(const uint8_t *p, size_t n, sks_apdu *out)
{
    memset(out, 0, sizeof *out);
    if (p == NULL || n < 4)
        return SKS_SW_WRONG_LENGTH;
    out->cla = p[0];
    out->ins = p[1];
    out->p1 = p[2];
    out->p2 = p[3];

    const uint8_t *body = p + 4;
    size_t blen = n - 4;

    if (blen == 0) /* case 1 */
        return SKS_SW_OK;
    if (blen == 1) { /* case 2S */
        out->has_le = 1;
        out->le = decode_le(body[0], 0);
        return SKS_SW_OK;
    }
    if (body[0] != 0) { /* short Lc: case 3S or 4S */
        size_t lc = body[0];
        if (blen != 1 + lc && blen != 2 + lc)
            return SKS_SW_WRONG_LENGTH;
        out->data = body + 1;
        out->lc = lc;
        if (blen == 2 + lc) {
            out->has_le = 1;
            out->le = decode_le(body[1 + lc], 0);
        }
        return SKS_SW_OK;
    }

    /* body[0] == 0 with more bytes after it: extended length. */
    out->extended = 1;
    if (blen == 3) { /* case 2E */
        out->has_le = 1;
        out->le = decode_le(sks_be16_get(body + 1), 1);
        return SKS_SW_OK;
    }
    if (blen < 3)
        return SKS_SW_WRONG_LENGTH;
    size_t lc = sks_be16_get(body + 1);
    if (lc == 0 || (blen != 3 + lc && blen != 5 + lc))
        return SKS_SW_WRONG_LENGTH;
    out->data = body + 3;
    out->lc = lc;
    if (blen == 5 + lc) { /* case 4E */
        out->has_le = 1;
        out->le = decode_le(sks_be16_get(body + 3 + lc), 1);
    }
    return SKS_SW_OK;
}

int sks_apdu_build(sks_writer *w, uint8_t cla, uint8_t ins, uint8_t p1, uint8_t p2,
                   const uint8_t *data, size_t lc, size_t le, int extended)
{
    size_t lc_max = extended ? SKS_EXTENDED_CHUNK : SKS_SHORT_CHUNK;
    size_t le_max = extended ? EXTENDED_LE_MAX : SHORT_LE_MAX;
    if (lc > lc_max || le > le_max || (lc > 0 && data == NULL))
        return -1;

    uint8_t hdr[4] = {cla, ins, p1, p2};
    sks_put_raw(w, hdr, sizeof hdr);
    if (!extended) {
        if (lc > 0) {
            sks_put_byte(w, (uint8_t)lc);
            sks_put_raw(w, data, lc);
        }
        if (le > 0)
            sks_put_byte(w, (uint8_t)(le == SHORT_LE_MAX ? 0 : le));
    } else {
        if (lc > 0) {
            sks_put_byte(w, 0);
            sks_put_short(w, (uint16_t)lc);
            sks_put_raw(w, data, lc);
        }
        if (le > 0) {
            if (lc == 0)
                sks_put_byte(w, 0);
            sks_put_short(w, (uint16_t)(le == EXTENDED_LE_MAX ? 0 : le));
        }
    }
    return w->failed ? -1 : 0;
}

/* A response buffer and how much of it has held data (what must be wiped). */
typedef struct {
    uint8_t *buf;
    size_t used;
} resp_buf;

/*
 * Send one command APDU and receive its response into r->buf (SKS_APDU_MAX
 * bytes). *resp_len comes back as the data length (SW stripped); anything
 * shorter than a status word is a link failure.
 */
static int transceive(sks_transmit_fn fn, void *ctx, const sks_writer *cmd, resp_buf *r,
                      size_t *resp_len, uint16_t *sw)
{
    uint8_t *resp = r->buf;
    if (cmd->failed)
        return -1;
    *resp_len = SKS_APDU_MAX;
    if (fn(ctx, cmd->buf, cmd->len, resp, resp_len) != 0) {
        r->used = SKS_APDU_MAX; /* unknown: wipe everything */
        return -1;
    }
    if (*resp_len > r->used)
        r->used = *resp_len > SKS_APDU_MAX ? SKS_APDU_MAX : *resp_len;
    if (*resp_len < 2 || *resp_len > SKS_APDU_MAX)
        return -1;
    *resp_len -= 2;
    *sw = sks_be16_get(resp + *resp_len);
    return 0;
}

int sks_apdu_select(sks_transmit_fn fn, void *ctx, uint16_t *sw)
{
    sks_writer cmd;
    size_t len = 0;
    resp_buf resp = {malloc(SKS_APDU_MAX), 0};
    int rc = -1;

    sks_writer_init(&cmd);
    if (resp.buf != NULL && sks_apdu_build(&cmd, SKS_CLA_ISO, SKS_INS_SELECT, 0x04, 0x00,
                                           sks_aid, SKS_AID_LEN, SHORT_LE_MAX, 0) == 0)
        rc = transceive(fn, ctx, &cmd, &resp, &len, sw);
    sks_writer_free(&cmd);
    free(resp.buf);
    return rc;
}

/*
 * Collect the answer of the last call part: append its data, then fetch
 * further parts with GET RESPONSE while the card says 61xx. Returns 0 with
 * *sw = 9000 or the ISO error, -1 on link failure or an oversized answer.
 */
static int collect_answer(sks_transmit_fn fn, void *ctx, int extended, resp_buf *resp, size_t len,
                          uint16_t sw, sks_writer *answer, uint16_t *out_sw)
{
    size_t le = extended ? EXTENDED_LE_MAX : SHORT_LE_MAX;
    sks_writer get; /* GET RESPONSE, the same command every time */
    int rc = 0;

    sks_writer_init(&get);
    sks_apdu_build(&get, SKS_CLA_ISO, SKS_INS_GET_RESPONSE, 0, 0, NULL, 0, le, extended);
    for (;;) {
        if (sw != SKS_SW_OK && (sw & 0xFF00) != SKS_SW_MORE_DATA) {
            sks_writer_reset(answer);
            *out_sw = sw;
            break;
        }
        if (len > SKS_CALL_MAX - answer->len) {
            rc = -1; /* the card sends more than any answer may hold */
            break;
        }
        sks_put_raw(answer, resp->buf, len);
        if (answer->failed) {
            rc = -1;
            break;
        }
        if (sw == SKS_SW_OK) {
            *out_sw = sw;
            break;
        }
        /* 61xx: fetch the next part. A part without data would loop forever. */
        if (len == 0) {
            rc = -1;
            break;
        }
        if (transceive(fn, ctx, &get, resp, &len, &sw) != 0) {
            rc = -1;
            break;
        }
    }
    sks_writer_free(&get);
    if (rc != 0)
        sks_writer_reset(answer);
    return rc;
}

int sks_apdu_call(sks_transmit_fn fn, void *ctx, int extended, const uint8_t *call, size_t n,
                  sks_writer *answer, uint16_t *sw)
{
    size_t chunk = extended ? SKS_EXTENDED_CHUNK : SKS_SHORT_CHUNK;
    size_t le = extended ? EXTENDED_LE_MAX : SHORT_LE_MAX;

    sks_writer_reset(answer);
    if (call == NULL || n == 0) {
        *sw = SKS_SW_WRONG_LENGTH;
        return 0;
    }
    if (n > SKS_CALL_MAX) {
        *sw = SKS_SW_MEMORY; /* what the card would answer; not worth sending */
        return 0;
    }

    resp_buf resp = {malloc(SKS_APDU_MAX), 0};
    if (resp.buf == NULL)
        return -1;
    sks_writer cmd;
    sks_writer_init(&cmd);
    int rc = 0;

    for (size_t off = 0; off < n;) {
        size_t part = n - off < chunk ? n - off : chunk;
        int last = off + part == n;
        size_t len = 0;
        uint16_t part_sw = 0;

        uint8_t cla = last ? SKS_CLA_PROPRIETARY : SKS_CLA_PROPRIETARY | SKS_CLA_CHAIN_BIT;

        sks_writer_reset(&cmd);
        if (sks_apdu_build(&cmd, cla, SKS_INS_CALL, 0, 0, call + off, part, last ? le : 0,
                           extended) != 0 ||
            transceive(fn, ctx, &cmd, &resp, &len, &part_sw) != 0) {
            rc = -1;
            break;
        }
        off += part;
        if (last) {
            rc = collect_answer(fn, ctx, extended, &resp, len, part_sw, answer, sw);
            break;
        }
        if (part_sw != SKS_SW_OK) {
            *sw = part_sw;
            break;
        }
        if (len != 0) { /* a chained part is acknowledged with a bare 9000 */
            rc = -1;
            break;
        }
    }
    /* Both buffers held parts of the call or answer, which may carry secrets. */
    sks_writer_free(&cmd);
    OPENSSL_cleanse(resp.buf, resp.used);
    free(resp.buf);
    return rc;
}
