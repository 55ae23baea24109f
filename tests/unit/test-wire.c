/*
 * test-wire.c - the SKS data types on the wire (src/protocol/sks_wire.c):
 * exact big-endian encodings, round trips, and every way the strict reader
 * must refuse its input.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sks_wire.h"

/* Compare a writer's contents with the expected bytes. */
static void assert_bytes(const sks_writer *w, const uint8_t *want, size_t n)
{
    ck_assert_int_eq(w->failed, 0);
    ck_assert_uint_eq(w->len, n);
    ck_assert_mem_eq(w->buf, want, n);
}

START_TEST(test_scalars_encoding)
{
    sks_writer w;
    sks_writer_init(&w);
    sks_put_byte(&w, 0xAB);
    sks_put_bool(&w, 0);
    sks_put_bool(&w, 7); /* any non-zero value is written as 0x01 */
    sks_put_short(&w, 0x1234);
    sks_put_int(&w, 0xDEADBEEF);
    const uint8_t want[] = {0xAB, 0x00, 0x01, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF};
    assert_bytes(&w, want, sizeof want);
    sks_writer_free(&w);
    ck_assert_ptr_null(w.buf);
    ck_assert_uint_eq(w.len, 0);
}
END_TEST

START_TEST(test_bytes_blob_string_encoding)
{
    sks_writer w;
    sks_writer_init(&w);
    sks_put_bytes(&w, "abc", 3);
    sks_put_blob(&w, "xy", 2);
    sks_put_string(&w, "Key=");
    sks_put_bytes(&w, NULL, 0);
    sks_put_string(&w, NULL);
    const uint8_t want[] = {0x00, 0x03, 'a', 'b', 'c', 0x00, 0x00, 0x00, 0x02, 'x', 'y',
                            0x00, 0x04, 'K', 'e', 'y', '=',  0x00, 0x00, 0x00, 0x00};
    assert_bytes(&w, want, sizeof want);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_round_trip)
{
    sks_writer w;
    sks_writer_init(&w);
    uint8_t big[SKS_WIRE_BYTES_MAX];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    sks_put_byte(&w, 0);
    sks_put_byte(&w, 255);
    sks_put_bool(&w, 1);
    sks_put_short(&w, 0xFFFF);
    sks_put_int(&w, 0xFFFFFFFFu);
    sks_put_bytes(&w, big, sizeof big);
    sks_put_blob(&w, big, sizeof big);
    sks_put_bytes(&w, "", 0);
    ck_assert_int_eq(w.failed, 0);

    sks_reader r;
    uint8_t b;
    uint16_t s;
    uint32_t i;
    sks_view v;
    sks_reader_init(&r, w.buf, w.len);
    ck_assert_int_eq(sks_get_byte(&r, &b), 0);
    ck_assert_uint_eq(b, 0);
    ck_assert_int_eq(sks_get_byte(&r, &b), 0);
    ck_assert_uint_eq(b, 255);
    ck_assert_int_eq(sks_get_bool(&r, &b), 0);
    ck_assert_uint_eq(b, 1);
    ck_assert_int_eq(sks_get_short(&r, &s), 0);
    ck_assert_uint_eq(s, 0xFFFF);
    ck_assert_int_eq(sks_get_int(&r, &i), 0);
    ck_assert_uint_eq(i, 0xFFFFFFFFu);
    ck_assert_int_eq(sks_get_bytes(&r, &v), 0);
    ck_assert_uint_eq(v.len, sizeof big);
    ck_assert_mem_eq(v.ptr, big, sizeof big);
    ck_assert_int_eq(sks_get_blob(&r, &v), 0);
    ck_assert_uint_eq(v.len, sizeof big);
    ck_assert_mem_eq(v.ptr, big, sizeof big);
    /* Views point into the reader's buffer, not at copies. */
    ck_assert(v.ptr > w.buf && v.ptr < w.buf + w.len);
    ck_assert_int_eq(sks_get_bytes(&r, &v), 0);
    ck_assert_uint_eq(v.len, 0);
    ck_assert_int_eq(sks_reader_finish(&r), 0);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_oversize_bytes_fails_writer)
{
    size_t n = SKS_WIRE_BYTES_MAX + 1;
    uint8_t *big = calloc(1, n);
    ck_assert_ptr_nonnull(big);
    sks_writer w;
    sks_writer_init(&w);
    sks_put_bytes(&w, big, n);
    ck_assert_int_ne(w.failed, 0);
    /* Once failed, later puts are ignored. */
    size_t len = w.len;
    sks_put_byte(&w, 1);
    sks_put_int(&w, 2);
    ck_assert_uint_eq(w.len, len);
    ck_assert_int_ne(w.failed, 0);
    sks_writer_free(&w);

    /* The same data fits a blob. */
    sks_writer_init(&w);
    sks_put_blob(&w, big, n);
    ck_assert_int_eq(w.failed, 0);
    ck_assert_uint_eq(w.len, 4 + n);
    ck_assert_uint_eq(sks_be32_get(w.buf), n);
    sks_writer_free(&w);
    free(big);
}
END_TEST

START_TEST(test_writer_growth_and_reset)
{
    sks_writer w;
    sks_writer_init(&w);
    for (unsigned i = 0; i < 100000; i++)
        sks_put_byte(&w, (uint8_t)i);
    ck_assert_int_eq(w.failed, 0);
    ck_assert_uint_eq(w.len, 100000);
    ck_assert_uint_ge(w.cap, w.len);
    for (unsigned i = 0; i < 100000; i++)
        ck_assert_uint_eq(w.buf[i], (uint8_t)i);

    uint8_t *buf = w.buf;
    size_t cap = w.cap;
    sks_writer_reset(&w);
    ck_assert_uint_eq(w.len, 0);
    ck_assert_ptr_eq(w.buf, buf);
    ck_assert_uint_eq(w.cap, cap);
    /* reset zeroizes everything that was written (the rest was never used) */
    for (size_t i = 0; i < 100000; i++)
        ck_assert_uint_eq(buf[i], 0);
    sks_put_short(&w, 0x0102);
    const uint8_t want[] = {1, 2};
    assert_bytes(&w, want, sizeof want);
    sks_writer_free(&w);
}
END_TEST

/* A caller that shortens len by hand (public answers) still gets every written byte wiped. */
START_TEST(test_reset_wipes_past_shortened_len)
{
    sks_writer w;
    sks_writer_init(&w);
    for (unsigned i = 0; i < 1000; i++)
        sks_put_byte(&w, 0xA5);
    uint8_t *buf = w.buf;
    w.len = 10;
    sks_put_byte(&w, 0x5A); /* below the high-water mark: still 1000 bytes to wipe */
    sks_writer_reset(&w);
    ck_assert_ptr_eq(w.buf, buf);
    for (size_t i = 0; i < 1000; i++)
        ck_assert_uint_eq(buf[i], 0);
    /* growth after a shortening copies only len bytes and wipes the old buffer's written part */
    for (unsigned i = 0; i < 200; i++)
        sks_put_byte(&w, 0xC3);
    w.len = 1;
    for (unsigned i = 0; i < 5000; i++)
        sks_put_byte(&w, 0x11);
    ck_assert_int_eq(w.failed, 0);
    ck_assert_uint_eq(w.len, 5001);
    ck_assert_uint_eq(w.buf[0], 0xC3);
    ck_assert_uint_eq(w.buf[1], 0x11);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_reset_clears_failure)
{
    sks_writer w;
    sks_writer_init(&w);
    w.failed = 1;
    sks_writer_reset(&w);
    ck_assert_int_eq(w.failed, 0);
    sks_put_byte(&w, 9);
    ck_assert_uint_eq(w.len, 1);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_put_from_own_buffer)
{
    /* Appending the writer's own contents while it grows must not read freed memory. */
    sks_writer w;
    sks_writer_init(&w);
    sks_put_raw(&w, "0123456789", 10);
    for (int i = 0; i < 8; i++)
        sks_put_raw(&w, w.buf, w.len);
    ck_assert_int_eq(w.failed, 0);
    ck_assert_uint_eq(w.len, 10u << 8);
    for (size_t i = 0; i < w.len; i++)
        ck_assert_uint_eq(w.buf[i], (uint8_t)('0' + i % 10));
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_reader_short_input)
{
    const uint8_t data[] = {0x01, 0x02, 0x03};
    sks_reader r;
    uint16_t s;
    uint32_t i;
    sks_view v;

    sks_reader_init(&r, data, 0);
    uint8_t b;
    ck_assert_int_ne(sks_get_byte(&r, &b), 0);

    sks_reader_init(&r, data, 1);
    ck_assert_int_ne(sks_get_short(&r, &s), 0);

    sks_reader_init(&r, data, 3);
    ck_assert_int_ne(sks_get_int(&r, &i), 0);

    sks_reader_init(&r, data, 3);
    ck_assert_int_ne(sks_get_raw(&r, 4, &v), 0);
    ck_assert_ptr_null(v.ptr);
    ck_assert_uint_eq(v.len, 0);

    sks_reader_init(&r, NULL, 5);
    ck_assert_int_ne(sks_get_byte(&r, &b), 0);
}
END_TEST

START_TEST(test_reader_length_beyond_data)
{
    /* byte[] announcing 4 bytes with only 3 present */
    const uint8_t bytes[] = {0x00, 0x04, 'a', 'b', 'c'};
    /* blob announcing 2^32-1 bytes */
    const uint8_t blob[] = {0xFF, 0xFF, 0xFF, 0xFF, 'a'};
    /* byte[] whose length itself is cut */
    const uint8_t cut[] = {0x00};
    sks_reader r;
    sks_view v;

    sks_reader_init(&r, bytes, sizeof bytes);
    ck_assert_int_ne(sks_get_bytes(&r, &v), 0);
    ck_assert_int_ne(sks_reader_finish(&r), 0);

    sks_reader_init(&r, blob, sizeof blob);
    ck_assert_int_ne(sks_get_blob(&r, &v), 0);

    sks_reader_init(&r, cut, sizeof cut);
    ck_assert_int_ne(sks_get_bytes(&r, &v), 0);
    ck_assert_ptr_null(v.ptr);

    sks_reader_init(&r, blob, 3);
    ck_assert_int_ne(sks_get_blob(&r, &v), 0);
}
END_TEST

START_TEST(test_bool_strictness)
{
    for (unsigned val = 0; val < 256; val++) {
        uint8_t data[1] = {(uint8_t)val};
        uint8_t b = 0xEE;
        sks_reader r;
        sks_reader_init(&r, data, 1);
        int rc = sks_get_bool(&r, &b);
        if (val <= 1) {
            ck_assert_int_eq(rc, 0);
            ck_assert_uint_eq(b, val);
            ck_assert_int_eq(sks_reader_finish(&r), 0);
        } else {
            ck_assert_int_ne(rc, 0);
            ck_assert_uint_eq(b, 0xEE);
            ck_assert_int_ne(sks_reader_finish(&r), 0);
        }
    }
}
END_TEST

START_TEST(test_failure_is_sticky)
{
    const uint8_t data[] = {0x02, 0x00, 0x01, 0x05};
    sks_reader r;
    uint8_t b;
    uint16_t s;
    sks_reader_init(&r, data, sizeof data);
    ck_assert_int_ne(sks_get_bool(&r, &b), 0); /* 0x02 is not a bool */
    /* the remaining bytes are well-formed, but the reader stays failed */
    ck_assert_int_ne(sks_get_byte(&r, &b), 0);
    ck_assert_int_ne(sks_get_short(&r, &s), 0);
    ck_assert_int_ne(sks_reader_finish(&r), 0);
}
END_TEST

START_TEST(test_trailing_bytes)
{
    const uint8_t data[] = {0x00, 0x01, 'z', 0x7F};
    sks_reader r;
    sks_view v;
    sks_reader_init(&r, data, sizeof data);
    ck_assert_int_eq(sks_get_bytes(&r, &v), 0);
    ck_assert_uint_eq(v.len, 1);
    ck_assert_uint_eq(v.ptr[0], 'z');
    ck_assert_int_ne(sks_reader_finish(&r), 0); /* one byte left over */
    uint8_t b;
    ck_assert_int_eq(sks_get_byte(&r, &b), 0);
    ck_assert_uint_eq(b, 0x7F);
    ck_assert_int_eq(sks_reader_finish(&r), 0);
}
END_TEST

START_TEST(test_be_helpers)
{
    uint8_t b[4];
    sks_be16_put(b, 0xA1B2);
    ck_assert_uint_eq(b[0], 0xA1);
    ck_assert_uint_eq(b[1], 0xB2);
    ck_assert_uint_eq(sks_be16_get(b), 0xA1B2);
    sks_be32_put(b, 0x80010203u);
    ck_assert_uint_eq(b[0], 0x80);
    ck_assert_uint_eq(b[3], 0x03);
    ck_assert_uint_eq(sks_be32_get(b), 0x80010203u);
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_scalars_encoding);
    tcase_add_test(tc, test_bytes_blob_string_encoding);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_oversize_bytes_fails_writer);
    tcase_add_test(tc, test_writer_growth_and_reset);
    tcase_add_test(tc, test_reset_wipes_past_shortened_len);
    tcase_add_test(tc, test_reset_clears_failure);
    tcase_add_test(tc, test_put_from_own_buffer);
    tcase_add_test(tc, test_reader_short_input);
    tcase_add_test(tc, test_reader_length_beyond_data);
    tcase_add_test(tc, test_bool_strictness);
    tcase_add_test(tc, test_failure_is_sticky);
    tcase_add_test(tc, test_trailing_bytes);
    tcase_add_test(tc, test_be_helpers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(wire_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
