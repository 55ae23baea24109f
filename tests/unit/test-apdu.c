/*
 * test-apdu.c - ISO 7816-4 framing (src/protocol/sks_apdu.c): parsing of
 * every command case, short and extended, refusal of inconsistent lengths,
 * building, and sks_apdu_call() against a small in-test card that chains
 * commands and hands out long answers with 61xx / GET RESPONSE. The exact
 * APDU sequence is checked byte for byte in short and extended mode.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sks_apdu.h"

/* Parse a copy of p[0..n) in its own allocation so over-reads are caught. */
static uint16_t parse_copy(const uint8_t *p, size_t n, sks_apdu *a, uint8_t **copy)
{
    *copy = malloc(n > 0 ? n : 1);
    ck_assert_ptr_nonnull(*copy);
    if (n > 0)
        memcpy(*copy, p, n);
    return sks_apdu_parse(*copy, n, a);
}

/* ---- parsing ---------------------------------------------------------- */

START_TEST(test_parse_case1)
{
    const uint8_t c[] = {0x80, 0x10, 0x01, 0x02};
    sks_apdu a;
    uint8_t *copy;
    ck_assert_uint_eq(parse_copy(c, sizeof c, &a, &copy), SKS_SW_OK);
    ck_assert_uint_eq(a.cla, 0x80);
    ck_assert_uint_eq(a.ins, 0x10);
    ck_assert_uint_eq(a.p1, 0x01);
    ck_assert_uint_eq(a.p2, 0x02);
    ck_assert_uint_eq(a.lc, 0);
    ck_assert_int_eq(a.has_le, 0);
    ck_assert_int_eq(a.extended, 0);
    free(copy);
}
END_TEST

START_TEST(test_parse_case2)
{
    sks_apdu a;
    uint8_t *copy;
    const uint8_t s256[] = {0x00, 0xC0, 0x00, 0x00, 0x00};
    ck_assert_uint_eq(parse_copy(s256, sizeof s256, &a, &copy), SKS_SW_OK);
    ck_assert_int_eq(a.has_le, 1);
    ck_assert_uint_eq(a.le, 256);
    ck_assert_uint_eq(a.lc, 0);
    ck_assert_int_eq(a.extended, 0);
    free(copy);

    const uint8_t s16[] = {0x00, 0xC0, 0x00, 0x00, 0x10};
    ck_assert_uint_eq(parse_copy(s16, sizeof s16, &a, &copy), SKS_SW_OK);
    ck_assert_uint_eq(a.le, 16);
    free(copy);

    const uint8_t e65536[] = {0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00};
    ck_assert_uint_eq(parse_copy(e65536, sizeof e65536, &a, &copy), SKS_SW_OK);
    ck_assert_int_eq(a.extended, 1);
    ck_assert_int_eq(a.has_le, 1);
    ck_assert_uint_eq(a.le, 65536);
    ck_assert_uint_eq(a.lc, 0);
    free(copy);

    const uint8_t e258[] = {0x00, 0xC0, 0x00, 0x00, 0x00, 0x01, 0x02};
    ck_assert_uint_eq(parse_copy(e258, sizeof e258, &a, &copy), SKS_SW_OK);
    ck_assert_int_eq(a.extended, 1);
    ck_assert_uint_eq(a.le, 258);
    free(copy);
}
END_TEST

START_TEST(test_parse_case3_and_4_short)
{
    sks_apdu a;
    uint8_t *copy;
    const uint8_t c3[] = {0x80, 0x10, 0x00, 0x00, 0x03, 0xAA, 0xBB, 0xCC};
    ck_assert_uint_eq(parse_copy(c3, sizeof c3, &a, &copy), SKS_SW_OK);
    ck_assert_uint_eq(a.lc, 3);
    ck_assert_ptr_eq(a.data, copy + 5);
    ck_assert_mem_eq(a.data, "\xAA\xBB\xCC", 3);
    ck_assert_int_eq(a.has_le, 0);
    ck_assert_int_eq(a.extended, 0);
    free(copy);

    const uint8_t c4[] = {0x80, 0x10, 0x00, 0x00, 0x03, 0xAA, 0xBB, 0xCC, 0x00};
    ck_assert_uint_eq(parse_copy(c4, sizeof c4, &a, &copy), SKS_SW_OK);
    ck_assert_uint_eq(a.lc, 3);
    ck_assert_int_eq(a.has_le, 1);
    ck_assert_uint_eq(a.le, 256);
    free(copy);

    const uint8_t c4_5[] = {0x80, 0x10, 0x00, 0x00, 0x01, 0xAA, 0x05};
    ck_assert_uint_eq(parse_copy(c4_5, sizeof c4_5, &a, &copy), SKS_SW_OK);
    ck_assert_uint_eq(a.lc, 1);
    ck_assert_uint_eq(a.le, 5);
    free(copy);

    /* Lc 255, the largest short data field. */
    uint8_t big[4 + 1 + 255 + 1] = {0x80, 0x10, 0x00, 0x00, 0xFF};
    ck_assert_uint_eq(parse_copy(big, sizeof big - 1, &a, &copy), SKS_SW_OK);
    ck_assert_uint_eq(a.lc, 255);
    ck_assert_int_eq(a.has_le, 0);
    free(copy);
    ck_assert_uint_eq(parse_copy(big, sizeof big, &a, &copy), SKS_SW_OK);
    ck_assert_uint_eq(a.lc, 255);
    ck_assert_int_eq(a.has_le, 1);
    free(copy);
}
END_TEST

START_TEST(test_parse_case3_and_4_extended)
{
    sks_apdu a;
    uint8_t *copy;
    size_t lc = 300;
    uint8_t *c = calloc(1, 4 + 3 + lc + 2);
    c[0] = 0x80;
    c[1] = 0x10;
    c[5] = 0x01;
    c[6] = 0x2C; /* 300 */
    for (size_t i = 0; i < lc; i++)
        c[7 + i] = (uint8_t)i;

    ck_assert_uint_eq(parse_copy(c, 4 + 3 + lc, &a, &copy), SKS_SW_OK); /* case 3E */
    ck_assert_int_eq(a.extended, 1);
    ck_assert_uint_eq(a.lc, lc);
    ck_assert_ptr_eq(a.data, copy + 7);
    ck_assert_mem_eq(a.data, c + 7, lc);
    ck_assert_int_eq(a.has_le, 0);
    free(copy);

    ck_assert_uint_eq(parse_copy(c, 4 + 3 + lc + 2, &a, &copy), SKS_SW_OK); /* case 4E, Le 0000 */
    ck_assert_int_eq(a.extended, 1);
    ck_assert_uint_eq(a.lc, lc);
    ck_assert_int_eq(a.has_le, 1);
    ck_assert_uint_eq(a.le, 65536);
    free(copy);

    c[4 + 3 + lc] = 0x12;
    c[4 + 3 + lc + 1] = 0x34;
    ck_assert_uint_eq(parse_copy(c, 4 + 3 + lc + 2, &a, &copy), SKS_SW_OK);
    ck_assert_uint_eq(a.le, 0x1234);
    free(copy);
    free(c);

    /* Lc 65535 with extended Le. */
    size_t max = 4 + 3 + 65535 + 2;
    c = calloc(1, max);
    c[5] = 0xFF;
    c[6] = 0xFF;
    ck_assert_uint_eq(parse_copy(c, max, &a, &copy), SKS_SW_OK);
    ck_assert_uint_eq(a.lc, 65535);
    ck_assert_uint_eq(a.le, 65536);
    free(copy);
    free(c);
}
END_TEST

START_TEST(test_parse_malformed)
{
    static const struct {
        size_t n;
        uint8_t b[12];
    } bad[] = {
        {0, {0}},
        {1, {0x80}},
        {2, {0x80, 0x10}},
        {3, {0x80, 0x10, 0x00}},
        /* short Lc larger than the data */
        {8, {0x80, 0x10, 0x00, 0x00, 0x05, 1, 2, 3}},
        /* short Lc smaller than the data by two or more */
        {10, {0x80, 0x10, 0x00, 0x00, 0x03, 1, 2, 3, 4, 5}},
        /* 00 then one byte: neither short nor extended */
        {6, {0x80, 0x10, 0x00, 0x00, 0x00, 0x01}},
        /* extended Lc of zero */
        {9, {0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 1, 2}},
        /* extended Lc larger than the data */
        {10, {0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 1, 2, 3}},
        /* extended Lc 2, data 2, then a single Le byte */
        {10, {0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x02, 1, 2, 3}},
        /* extended Lc 1, data 1, then three extra bytes */
        {11, {0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 1, 2, 3, 4}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sks_apdu a;
        uint8_t *copy;
        ck_assert_msg(parse_copy(bad[i].b, bad[i].n, &a, &copy) == SKS_SW_WRONG_LENGTH,
                      "malformed APDU %zu accepted", i);
        free(copy);
    }
    sks_apdu a;
    ck_assert_uint_eq(sks_apdu_parse(NULL, 0, &a), SKS_SW_WRONG_LENGTH);
}
END_TEST

START_TEST(test_parse_random_never_overreads)
{
    /* Pseudo-random APDUs (fixed LCG): any result, but views stay inside the input. */
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 8) % 270;
        uint8_t *buf = malloc(n > 0 ? n : 1);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (uint8_t)(seed >> 16);
        }
        /* bias towards interesting length bytes */
        if (n > 4 && (round & 3) == 0)
            buf[4] = 0;
        if (n > 4 && (round & 3) == 1)
            buf[4] = (uint8_t)(n - 5 - (round & 4 ? 1 : 0));
        sks_apdu a;
        if (sks_apdu_parse(buf, n, &a) == SKS_SW_OK) {
            ck_assert_uint_ge(n, 4);
            if (a.lc > 0) {
                ck_assert(a.data >= buf + 4);
                ck_assert(a.data + a.lc <= buf + n);
            }
            if (a.has_le)
                ck_assert(a.le >= 1 && a.le <= 65536);
        }
        free(buf);
    }
}
END_TEST

/* ---- building --------------------------------------------------------- */

static void assert_built(const uint8_t *data, size_t lc, size_t le, int extended,
                         const uint8_t *want, size_t want_len)
{
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_apdu_build(&w, 0x80, 0x10, 0x00, 0x00, data, lc, le, extended), 0);
    ck_assert_uint_eq(w.len, want_len);
    ck_assert_mem_eq(w.buf, want, want_len);
    sks_writer_free(&w);
}

START_TEST(test_build)
{
    const uint8_t d[] = {0xA1, 0xA2};
    const uint8_t c1[] = {0x80, 0x10, 0, 0};
    assert_built(NULL, 0, 0, 0, c1, sizeof c1);
    assert_built(NULL, 0, 0, 1, c1, sizeof c1);
    const uint8_t c2s[] = {0x80, 0x10, 0, 0, 0x00};
    assert_built(NULL, 0, 256, 0, c2s, sizeof c2s);
    const uint8_t c2s7[] = {0x80, 0x10, 0, 0, 0x07};
    assert_built(NULL, 0, 7, 0, c2s7, sizeof c2s7);
    const uint8_t c2e[] = {0x80, 0x10, 0, 0, 0x00, 0x00, 0x00};
    assert_built(NULL, 0, 65536, 1, c2e, sizeof c2e);
    const uint8_t c3s[] = {0x80, 0x10, 0, 0, 0x02, 0xA1, 0xA2};
    assert_built(d, 2, 0, 0, c3s, sizeof c3s);
    const uint8_t c3e[] = {0x80, 0x10, 0, 0, 0x00, 0x00, 0x02, 0xA1, 0xA2};
    assert_built(d, 2, 0, 1, c3e, sizeof c3e);
    const uint8_t c4s[] = {0x80, 0x10, 0, 0, 0x02, 0xA1, 0xA2, 0x00};
    assert_built(d, 2, 256, 0, c4s, sizeof c4s);
    const uint8_t c4e[] = {0x80, 0x10, 0, 0, 0x00, 0x00, 0x02, 0xA1, 0xA2, 0x00, 0x00};
    assert_built(d, 2, 65536, 1, c4e, sizeof c4e);
    const uint8_t c4e300[] = {0x80, 0x10, 0, 0, 0x00, 0x00, 0x02, 0xA1, 0xA2, 0x01, 0x2C};
    assert_built(d, 2, 300, 1, c4e300, sizeof c4e300);

    /* Out of range for the chosen form. */
    static uint8_t big[65536];
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_apdu_build(&w, 0x80, 0x10, 0, 0, big, 256, 0, 0), -1);
    ck_assert_int_eq(sks_apdu_build(&w, 0x80, 0x10, 0, 0, NULL, 0, 257, 0), -1);
    ck_assert_int_eq(sks_apdu_build(&w, 0x80, 0x10, 0, 0, big, 65536, 0, 1), -1);
    ck_assert_int_eq(sks_apdu_build(&w, 0x80, 0x10, 0, 0, NULL, 0, 65537, 1), -1);
    ck_assert_int_eq(sks_apdu_build(&w, 0x80, 0x10, 0, 0, NULL, 5, 0, 0), -1);
    sks_writer_free(&w);

    /* build -> parse round trip over the boundaries of both forms. */
    const size_t lcs[] = {0, 1, 255, 256, 65535};
    const size_t les[] = {0, 1, 255, 256, 257, 65536};
    for (int ext = 0; ext <= 1; ext++) {
        for (size_t i = 0; i < sizeof lcs / sizeof lcs[0]; i++) {
            for (size_t j = 0; j < sizeof les / sizeof les[0]; j++) {
                if (!ext && (lcs[i] > 255 || les[j] > 256))
                    continue;
                sks_writer_init(&w);
                ck_assert_int_eq(sks_apdu_build(&w, 0x80, 0x10, 0, 0, big, lcs[i], les[j], ext), 0);
                sks_apdu a;
                ck_assert_uint_eq(sks_apdu_parse(w.buf, w.len, &a), SKS_SW_OK);
                ck_assert_uint_eq(a.lc, lcs[i]);
                ck_assert_int_eq(a.has_le, les[j] > 0);
                ck_assert_uint_eq(a.le, les[j]);
                if (lcs[i] > 0 || les[j] > 0)
                    ck_assert_int_eq(a.extended, ext);
                sks_writer_free(&w);
            }
        }
    }
}
END_TEST

/* ---- a small card: SELECT, chaining, GET RESPONSE ---------------------- */

typedef struct {
    uint8_t *buf;
    size_t len;
} apdu_log_entry;

typedef struct {
    int selected;
    sks_writer chain;   /* call parts received so far */
    sks_writer pending; /* answer not yet fetched */
    size_t pending_off;
    size_t answer_len; /* the card answers 0x00 then the call repeated to this length */
    apdu_log_entry *log;
    size_t nlog, caplog;
    int fail_link_at; /* transmission number that fails (-1: never) */
} fake_card;

static void fake_init(fake_card *c, size_t answer_len)
{
    memset(c, 0, sizeof *c);
    sks_writer_init(&c->chain);
    sks_writer_init(&c->pending);
    c->answer_len = answer_len;
    c->fail_link_at = -1;
}

static void fake_free(fake_card *c)
{
    for (size_t i = 0; i < c->nlog; i++)
        free(c->log[i].buf);
    free(c->log);
    sks_writer_free(&c->chain);
    sks_writer_free(&c->pending);
}

/* Respond: data then SW. */
static size_t reply(uint8_t *resp, const uint8_t *data, size_t n, uint16_t sw)
{
    if (n > 0)
        memcpy(resp, data, n);
    sks_be16_put(resp + n, sw);
    return n + 2;
}

/* Hand out the next part of the pending answer, at most `le` bytes. */
static size_t next_part(fake_card *c, size_t le, uint8_t *resp)
{
    size_t left = c->pending.len - c->pending_off;
    size_t part = left < le ? left : le;
    const uint8_t *p = c->pending.buf + c->pending_off;
    c->pending_off += part;
    left -= part;
    uint16_t sw = left == 0 ? SKS_SW_OK : (uint16_t)(SKS_SW_MORE_DATA | (left >= 256 ? 0 : left));
    size_t n = reply(resp, p, part, sw);
    if (left == 0) {
        sks_writer_reset(&c->pending);
        c->pending_off = 0;
    }
    return n;
}

/* The card side of docs/protocol.md section 4, in miniature. */
static size_t fake_process(fake_card *c, const uint8_t *cmd, size_t n, uint8_t *resp)
{
    sks_apdu a;
    uint16_t sw = sks_apdu_parse(cmd, n, &a);
    if (sw != SKS_SW_OK)
        return reply(resp, NULL, 0, sw);
    int pending = c->pending.len > 0;
    if (a.cla == 0x00 && a.ins == SKS_INS_GET_RESPONSE) {
        if (!pending)
            return reply(resp, NULL, 0, SKS_SW_CONDITIONS);
        return next_part(c, a.has_le ? a.le : 0, resp);
    }
    /* Any other command discards a pending answer. */
    sks_writer_reset(&c->pending);
    c->pending_off = 0;
    if (a.cla == 0x00 && a.ins == SKS_INS_SELECT) {
        int ok = a.p1 == 4 && a.p2 == 0 && a.lc == SKS_AID_LEN &&
                 memcmp(a.data, sks_aid, SKS_AID_LEN) == 0;
        c->selected = ok;
        return reply(resp, NULL, 0, ok ? SKS_SW_OK : SKS_SW_NOT_FOUND);
    }
    if ((a.cla == 0x80 || a.cla == 0x90) && a.ins == SKS_INS_CALL) {
        if (!c->selected)
            return reply(resp, NULL, 0, SKS_SW_CONDITIONS);
        if (c->chain.len + a.lc > SKS_CALL_MAX) {
            sks_writer_reset(&c->chain);
            return reply(resp, NULL, 0, SKS_SW_MEMORY);
        }
        sks_put_raw(&c->chain, a.data, a.lc);
        if (a.cla == 0x90)
            return reply(resp, NULL, 0, SKS_SW_OK);
        /* The whole call is in: answer 00 then the call repeated. */
        sks_put_byte(&c->pending, 0x00);
        for (size_t i = 0; c->pending.len < c->answer_len; i++)
            sks_put_byte(&c->pending, c->chain.buf[i % c->chain.len]);
        sks_writer_reset(&c->chain);
        return next_part(c, a.has_le ? a.le : 0, resp);
    }
    return reply(resp, NULL, 0, a.cla & 0x80 ? SKS_SW_INS_NOT_SUPPORTED : SKS_SW_CLA_NOT_SUPPORTED);
}

static int fake_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t *resp_len)
{
    fake_card *c = ctx;
    if (c->fail_link_at >= 0 && (size_t)c->fail_link_at == c->nlog)
        return -1;
    if (c->nlog == c->caplog) {
        c->caplog = c->caplog ? 2 * c->caplog : 64;
        c->log = realloc(c->log, c->caplog * sizeof *c->log);
        ck_assert_ptr_nonnull(c->log);
    }
    c->log[c->nlog].buf = malloc(n);
    memcpy(c->log[c->nlog].buf, cmd, n);
    c->log[c->nlog].len = n;
    c->nlog++;
    ck_assert_uint_ge(*resp_len, SKS_APDU_MAX);
    *resp_len = fake_process(c, cmd, n, resp);
    return 0;
}

/* The answer the fake card gives to `call`. */
static uint8_t *expected_answer(const uint8_t *call, size_t n, size_t answer_len)
{
    uint8_t *a = malloc(answer_len);
    a[0] = 0x00;
    for (size_t i = 1; i < answer_len; i++)
        a[i] = call[(i - 1) % n];
    return a;
}

/* `ans` holds the whole answer (answer_len bytes) the fake card gives to `call`. */
static void assert_answer(const sks_writer *ans, const uint8_t *call, size_t n, size_t answer_len)
{
    uint8_t *exp = expected_answer(call, n, answer_len);
    ck_assert_uint_eq(ans->len, answer_len);
    ck_assert_mem_eq(ans->buf, exp, answer_len);
    free(exp);
}

/* Run `call` (n bytes, extended APDUs when `extended`) on the fake card: it must end in 9000. */
static void call_ok(fake_card *c, int extended, const uint8_t *call, size_t n, sks_writer *ans)
{
    uint16_t sw = 0;
    ck_assert_int_eq(sks_apdu_call(fake_transmit, c, extended, call, n, ans, &sw), 0);
    ck_assert_uint_eq(sw, SKS_SW_OK);
}

/* A fake card answering `answer_len` bytes, the SKS application selected. */
static void fake_init_selected(fake_card *c, size_t answer_len)
{
    uint16_t sw = 0;
    fake_init(c, answer_len);
    ck_assert_int_eq(sks_apdu_select(fake_transmit, c, &sw), 0);
}

static uint8_t *make_call(size_t n)
{
    uint8_t *call = malloc(n);
    for (size_t i = 0; i < n; i++)
        call[i] = (uint8_t)(i * 13 + (i >> 8));
    return call;
}

/* Assert that a logged APDU is exactly header | body-prefix | data | trailer. */
static void assert_apdu(const apdu_log_entry *e, const uint8_t hdr[4], const uint8_t *lc_bytes,
                        size_t lc_len, const uint8_t *data, size_t dlen, const uint8_t *le_bytes,
                        size_t le_len)
{
    ck_assert_uint_eq(e->len, 4 + lc_len + dlen + le_len);
    ck_assert_mem_eq(e->buf, hdr, 4);
    if (lc_len > 0)
        ck_assert_mem_eq(e->buf + 4, lc_bytes, lc_len);
    if (dlen > 0)
        ck_assert_mem_eq(e->buf + 4 + lc_len, data, dlen);
    if (le_len > 0)
        ck_assert_mem_eq(e->buf + 4 + lc_len + dlen, le_bytes, le_len);
}

static const uint8_t HDR_CHAIN[4] = {0x90, 0x10, 0x00, 0x00};
static const uint8_t HDR_LAST[4] = {0x80, 0x10, 0x00, 0x00};
static const uint8_t HDR_GET_RESPONSE[4] = {0x00, 0xC0, 0x00, 0x00};

START_TEST(test_select)
{
    fake_card c;
    fake_init(&c, 1);
    uint16_t sw = 0;
    ck_assert_int_eq(sks_apdu_select(fake_transmit, &c, &sw), 0);
    ck_assert_uint_eq(sw, SKS_SW_OK);
    ck_assert_uint_eq(c.nlog, 1);
    const uint8_t want[] = {0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x53,
                            0x4B, 0x53, 0x01, 0x00, 0x01, 0x00};
    ck_assert_uint_eq(c.log[0].len, sizeof want);
    ck_assert_mem_eq(c.log[0].buf, want, sizeof want);
    ck_assert_int_eq(c.selected, 1);

    /* Link failure. */
    c.fail_link_at = 1;
    ck_assert_int_eq(sks_apdu_select(fake_transmit, &c, &sw), -1);
    fake_free(&c);
}
END_TEST

START_TEST(test_call_short_small)
{
    /* A call and an answer that each fit one APDU. */
    fake_card c;
    fake_init_selected(&c, 10);
    const uint8_t call[] = {0x40};
    sks_writer ans;
    sks_writer_init(&ans);
    call_ok(&c, 0, call, 1, &ans);
    ck_assert_uint_eq(c.nlog, 2);
    const uint8_t want[] = {0x80, 0x10, 0x00, 0x00, 0x01, 0x40, 0x00};
    ck_assert_uint_eq(c.log[1].len, sizeof want);
    ck_assert_mem_eq(c.log[1].buf, want, sizeof want);
    assert_answer(&ans, call, 1, 10);
    sks_writer_free(&ans);
    fake_free(&c);
}
END_TEST

START_TEST(test_call_short_chained)
{
    /* 300-byte call, 600-byte answer: two parts, two GET RESPONSEs. */
    fake_card c;
    fake_init_selected(&c, 600);
    uint8_t *call = make_call(300);
    sks_writer ans;
    sks_writer_init(&ans);
    sks_put_raw(&ans, "stale", 5); /* replaced, not appended to */
    call_ok(&c, 0, call, 300, &ans);

    ck_assert_uint_eq(c.nlog, 1 + 4);
    const uint8_t lc255[] = {0xFF}, lc45[] = {0x2D}, le00[] = {0x00};
    assert_apdu(&c.log[1], HDR_CHAIN, lc255, 1, call, 255, NULL, 0);
    assert_apdu(&c.log[2], HDR_LAST, lc45, 1, call + 255, 45, le00, 1);
    assert_apdu(&c.log[3], HDR_GET_RESPONSE, NULL, 0, NULL, 0, le00, 1);
    assert_apdu(&c.log[4], HDR_GET_RESPONSE, NULL, 0, NULL, 0, le00, 1);

    assert_answer(&ans, call, 300, 600);
    free(call);
    sks_writer_free(&ans);
    fake_free(&c);
}
END_TEST

START_TEST(test_call_70000_short)
{
    /* 70,000 bytes in 255-byte parts; 70,001-byte answer in 256-byte parts. */
    const size_t n = 70000, alen = 70001;
    fake_card c;
    fake_init_selected(&c, alen);
    uint8_t *call = make_call(n);
    sks_writer ans;
    sks_writer_init(&ans);
    call_ok(&c, 0, call, n, &ans);

    size_t parts = (n + 254) / 255;       /* 275: 274 full, last 130 bytes */
    size_t gets = (alen + 255) / 256 - 1; /* 273 GET RESPONSEs */
    ck_assert_uint_eq(parts, 275);
    ck_assert_uint_eq(gets, 273);
    ck_assert_uint_eq(c.nlog, 1 + parts + gets);
    const uint8_t lc255[] = {0xFF}, le00[] = {0x00};
    for (size_t i = 0; i + 1 < parts; i++)
        assert_apdu(&c.log[1 + i], HDR_CHAIN, lc255, 1, call + 255 * i, 255, NULL, 0);
    const uint8_t lc_last[] = {130};
    assert_apdu(&c.log[parts], HDR_LAST, lc_last, 1, call + 255 * (parts - 1), 130, le00, 1);
    for (size_t i = 0; i < gets; i++)
        assert_apdu(&c.log[1 + parts + i], HDR_GET_RESPONSE, NULL, 0, NULL, 0, le00, 1);

    assert_answer(&ans, call, n, alen);
    free(call);
    sks_writer_free(&ans);
    fake_free(&c);
}
END_TEST

START_TEST(test_call_70000_extended)
{
    /* 70,000 bytes: one 65,535-byte part and 4,465 more; answer 65,536 + 4,465. */
    const size_t n = 70000, alen = 70001;
    fake_card c;
    fake_init_selected(&c, alen);
    uint8_t *call = make_call(n);
    sks_writer ans;
    sks_writer_init(&ans);
    call_ok(&c, 1, call, n, &ans);

    ck_assert_uint_eq(c.nlog, 1 + 3);
    const uint8_t lc_first[] = {0x00, 0xFF, 0xFF}, lc_last[] = {0x00, 0x11, 0x71};
    const uint8_t le0000[] = {0x00, 0x00}, le000000[] = {0x00, 0x00, 0x00};
    assert_apdu(&c.log[1], HDR_CHAIN, lc_first, 3, call, 65535, NULL, 0);
    assert_apdu(&c.log[2], HDR_LAST, lc_last, 3, call + 65535, 4465, le0000, 2);
    assert_apdu(&c.log[3], HDR_GET_RESPONSE, NULL, 0, NULL, 0, le000000, 3);

    assert_answer(&ans, call, n, alen);
    free(call);
    sks_writer_free(&ans);
    fake_free(&c);
}
END_TEST

START_TEST(test_call_limits)
{
    fake_card c;
    fake_init_selected(&c, SKS_CALL_MAX);
    uint16_t sw;
    uint8_t *call = make_call(SKS_CALL_MAX + 1);
    sks_writer ans;
    sks_writer_init(&ans);

    /* The largest answer arrives whole. */
    call_ok(&c, 1, call, 100, &ans);
    ck_assert_uint_eq(ans.len, SKS_CALL_MAX);

    /* One byte more is refused. */
    c.answer_len = SKS_CALL_MAX + 1;
    ck_assert_int_eq(sks_apdu_call(fake_transmit, &c, 1, call, 100, &ans, &sw), -1);
    ck_assert_uint_eq(ans.len, 0);

    /* The largest call goes through, one byte more is not even sent. */
    c.answer_len = 1;
    call_ok(&c, 1, call, SKS_CALL_MAX, &ans);
    ck_assert_uint_eq(ans.len, 1);
    size_t sent = c.nlog;
    ck_assert_int_eq(sks_apdu_call(fake_transmit, &c, 1, call, SKS_CALL_MAX + 1, &ans, &sw), 0);
    ck_assert_uint_eq(sw, SKS_SW_MEMORY);
    ck_assert_uint_eq(ans.len, 0);
    ck_assert_uint_eq(c.nlog, sent);

    /* An empty call is not sent either. */
    ck_assert_int_eq(sks_apdu_call(fake_transmit, &c, 0, call, 0, &ans, &sw), 0);
    ck_assert_uint_eq(sw, SKS_SW_WRONG_LENGTH);
    ck_assert_uint_eq(c.nlog, sent);

    free(call);
    sks_writer_free(&ans);
    fake_free(&c);
}
END_TEST

START_TEST(test_call_iso_errors)
{
    /* Not selected: the first part fails, nothing more is sent. */
    fake_card c;
    fake_init(&c, 10);
    uint8_t *call = make_call(600);
    sks_writer ans;
    sks_writer_init(&ans);
    uint16_t sw = 0;
    ck_assert_int_eq(sks_apdu_call(fake_transmit, &c, 0, call, 600, &ans, &sw), 0);
    ck_assert_uint_eq(sw, SKS_SW_CONDITIONS);
    ck_assert_uint_eq(ans.len, 0);
    ck_assert_uint_eq(c.nlog, 1);

    /* Link failure in the middle of the chain and during GET RESPONSE. */
    ck_assert_int_eq(sks_apdu_select(fake_transmit, &c, &sw), 0);
    c.fail_link_at = (int)c.nlog + 1;
    ck_assert_int_eq(sks_apdu_call(fake_transmit, &c, 0, call, 600, &ans, &sw), -1);
    ck_assert_uint_eq(ans.len, 0);
    c.answer_len = 1000;
    c.fail_link_at = (int)c.nlog + 3; /* three parts, then the first GET RESPONSE */
    ck_assert_int_eq(sks_apdu_call(fake_transmit, &c, 0, call, 600, &ans, &sw), -1);
    ck_assert_uint_eq(ans.len, 0);
    free(call);
    sks_writer_free(&ans);
    fake_free(&c);
}
END_TEST

/* A card that replays scripted responses, for answers a sane card never gives. */
typedef struct {
    const uint8_t *const *resp;
    const size_t *len;
    size_t n, next;
} script;

static int script_transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t *resp_len)
{
    script *s = ctx;
    if (s->next >= s->n)
        return -1;
    memcpy(resp, s->resp[s->next], s->len[s->next]);
    *resp_len = s->len[s->next];
    s->next++;
    return 0;
}

static int run_script(const uint8_t *const *resp, const size_t *len, size_t n, size_t call_len,
                      sks_writer *ans, uint16_t *sw, size_t *used)
{
    script s = {resp, len, n, 0};
    uint8_t *call = make_call(call_len);
    int rc = sks_apdu_call(script_transmit, &s, 0, call, call_len, ans, sw);
    free(call);
    *used = s.next;
    return rc;
}

START_TEST(test_call_misbehaving_card)
{
    sks_writer ans;
    sks_writer_init(&ans);
    uint16_t sw = 0;
    size_t used;

    /* A response without a full status word. */
    static const uint8_t r_short[] = {0x90};
    const uint8_t *const s1[] = {r_short};
    const size_t l1[] = {1};
    ck_assert_int_eq(run_script(s1, l1, 1, 5, &ans, &sw, &used), -1);

    /* 61xx without any data would never end. */
    static const uint8_t r_more_empty[] = {0x61, 0x10};
    const uint8_t *const s2[] = {r_more_empty, r_more_empty, r_more_empty};
    const size_t l2[] = {2, 2, 2};
    ck_assert_int_eq(run_script(s2, l2, 3, 5, &ans, &sw, &used), -1);
    ck_assert_uint_eq(used, 1);

    /* A chained part acknowledged with data. */
    static const uint8_t r_data_ok[] = {0x01, 0x90, 0x00};
    const uint8_t *const s3[] = {r_data_ok, r_data_ok};
    const size_t l3[] = {3, 3};
    ck_assert_int_eq(run_script(s3, l3, 2, 300, &ans, &sw, &used), -1);

    /* An ISO error in GET RESPONSE: the partial answer is dropped. */
    static const uint8_t r_part[] = {0x00, 0x01, 0x02, 0x61, 0x05};
    static const uint8_t r_err[] = {0x69, 0x85};
    const uint8_t *const s4[] = {r_part, r_err};
    const size_t l4[] = {5, 2};
    ck_assert_int_eq(run_script(s4, l4, 2, 5, &ans, &sw, &used), 0);
    ck_assert_uint_eq(sw, SKS_SW_CONDITIONS);
    ck_assert_uint_eq(ans.len, 0);

    /* The first ISO error is reported, whatever the part. */
    static const uint8_t r_ok[] = {0x90, 0x00};
    static const uint8_t r_p1p2[] = {0x6A, 0x86};
    const uint8_t *const s5[] = {r_ok, r_p1p2};
    const size_t l5[] = {2, 2};
    ck_assert_int_eq(run_script(s5, l5, 2, 400, &ans, &sw, &used), 0);
    ck_assert_uint_eq(sw, SKS_SW_WRONG_P1P2);
    ck_assert_uint_eq(used, 2);

    /* Data with 61xx, then the rest with 9000. */
    static const uint8_t r_last[] = {0x03, 0x04, 0x90, 0x00};
    const uint8_t *const s6[] = {r_part, r_last};
    const size_t l6[] = {5, 4};
    ck_assert_int_eq(run_script(s6, l6, 2, 5, &ans, &sw, &used), 0);
    ck_assert_uint_eq(sw, SKS_SW_OK);
    ck_assert_uint_eq(ans.len, 5);
    ck_assert_mem_eq(ans.buf, "\x00\x01\x02\x03\x04", 5);
    sks_writer_free(&ans);
}
END_TEST

static Suite *apdu_suite(void)
{
    Suite *s = suite_create("apdu");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_parse_case1);
    tcase_add_test(tc, test_parse_case2);
    tcase_add_test(tc, test_parse_case3_and_4_short);
    tcase_add_test(tc, test_parse_case3_and_4_extended);
    tcase_add_test(tc, test_parse_malformed);
    tcase_add_test(tc, test_parse_random_never_overreads);
    tcase_add_test(tc, test_build);
    suite_add_tcase(s, tc);

    tc = tcase_create("call");
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_call_short_small);
    tcase_add_test(tc, test_call_short_chained);
    tcase_add_test(tc, test_call_70000_short);
    tcase_add_test(tc, test_call_70000_extended);
    tcase_add_test(tc, test_call_limits);
    tcase_add_test(tc, test_call_iso_errors);
    tcase_add_test(tc, test_call_misbehaving_card);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(apdu_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
