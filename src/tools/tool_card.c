/*
 * tool_card.c - sks-tool's link to a card in a state directory
 * (tool_card.h): every verb asks the card through its own methods, encoded
 * and decoded as a middleware would, so what it prints is what clients see.
 */
#include "tools/tool_card.h"

#include <string.h>

#include "protocol/sks_msg.h"
#include "protocol/sks_proto.h"

const char *tool_prog = "sks-tool";

sks_card *tool_open_card(const char *dir)
{
    char err[512];
    sks_card *card = sks_card_open(dir, err, sizeof err);

    if (card == NULL)
        fprintf(stderr, "%s: cannot open the card: %s\n", tool_prog, err);
    return card;
}

int tool_card_call(sks_card *card, uint8_t method, const void *req, void *resp, sks_writer *answer,
                   uint8_t *status_out, int quiet)
{
    const sks_msgdesc *d = sks_msg_find(method);
    sks_writer call;
    sks_view msg = {NULL, 0};
    uint8_t status = SKS_ERR_INTERNAL;
    int rc = -1;

    sks_writer_init(&call);
    sks_writer_reset(answer);
    if (d == NULL || sks_msg_encode_request(d, req, &call) != 0 || call.failed) {
        fprintf(stderr, "%s: cannot encode a call of method %u\n", tool_prog, method);
        goto out;
    }
    sks_card_call(card, call.buf, call.len, answer);
    if (answer->failed ||
        sks_msg_decode_response(d, answer->buf, answer->len, resp, &status, &msg) != 0) {
        fprintf(stderr, "%s: %s: the card's answer is malformed\n", tool_prog, d->name);
        status = SKS_ERR_INTERNAL;
        goto out;
    }
    if (status != SKS_OK) {
        if (!quiet) {
            fflush(stdout);
            fprintf(stderr, "%s: %s failed: %s (%u): ", tool_prog, d->name, sks_status_name(status),
                    status);
            tool_print_text(stderr, msg.ptr, msg.len);
            fputc('\n', stderr);
        }
        goto out;
    }
    rc = 0;
out:
    if (status_out != NULL)
        *status_out = status;
    sks_writer_free(&call);
    return rc;
}

int tool_card_rpc(sks_card *card, uint8_t method, const void *req, void *resp, sks_writer *answer)
{
    return tool_card_call(card, method, req, resp, answer, NULL, 0);
}

/* Length of a valid UTF-8 sequence at p for a printable code point >= U+00A0, else 0. */
static size_t utf8_printable(const uint8_t *p, size_t n)
{
    uint32_t cp;
    size_t len;

    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2;
        cp = p[0] & 0x1F;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        len = 3;
        cp = p[0] & 0x0F;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp < 0xA0)
        return 0;
    return len;
}

void tool_print_text(FILE *out, const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t len = utf8_printable(p + i, n - i);

        if (len > 0) {
            fwrite(p + i, 1, len, out);
            i += len;
        } else if (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '\\') {
            fputc(p[i++], out);
        } else {
            fprintf(out, "\\x%02x", p[i++]);
        }
    }
}

void tool_print_id(FILE *out, sks_view id)
{
    int printable = id.len > 0;

    for (size_t i = 0; i < id.len; i++)
        if (id.ptr[i] < 0x20 || id.ptr[i] >= 0x7F || id.ptr[i] == '"' || id.ptr[i] == '\\')
            printable = 0;
    if (printable) {
        fprintf(out, "\"%.*s\"", (int)id.len, (const char *)id.ptr);
        return;
    }
    for (size_t i = 0; i < id.len; i++)
        fprintf(out, "%02x", id.ptr[i]);
    if (id.len == 0)
        fprintf(out, "(empty)");
}
