/*
 * test-card-apdu.c - the card side of the ISO 7816-4 framing, driven by the
 * middleware side (sks_apdu_call) and by hand-made malformed APDUs.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "card/sks_card.h"
#include "protocol/sks_apdu.h"
#include "protocol/sks_msg.h"

static char card_dir[64];
static sks_card *card;
static uint8_t resp[SKS_APDU_MAX];

static void setup(void)
{
    char err[256];
    sks_card_init_opts opts;
    memset(&opts, 0, sizeof(opts));
    snprintf(card_dir, sizeof(card_dir), "/tmp/sks-test-apdu-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(card_dir));
    ck_assert_msg(sks_card_init_state(card_dir, &opts, err, sizeof(err)) == 0, "%s", err);
    card = sks_card_open(card_dir, err, sizeof(err));
    ck_assert_msg(card != NULL, "%s", err);
}

static void teardown(void)
{
    char cmd[128];
    sks_card_close(card);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", card_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* sks_transmit_fn over the in-process card; counts the APDUs it carries. */
static int apdus_sent;
static int transmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *out, size_t *out_len)
{
    (void)ctx;
    apdus_sent++;
    *out_len = sks_card_apdu(card, cmd, n, out, SKS_APDU_MAX);
    return 0;
}

static uint16_t send_apdu(const uint8_t *cmd, size_t n, size_t *len)
{
    size_t r = sks_card_apdu(card, cmd, n, resp, sizeof(resp));
    ck_assert_uint_ge(r, 2);
    if (len)
        *len = r - 2;
    return (uint16_t)((resp[r - 2] << 8) | resp[r - 1]);
}

static void select_sks(void)
{
    uint16_t sw = 0;
    ck_assert_int_eq(sks_apdu_select(transmit, NULL, &sw), 0);
    ck_assert_uint_eq(sw, SKS_SW_OK);
}

/* Run getDeviceInfo through the framing and check the decoded answer. */
static void device_info_via(int extended)
{
    sks_writer call, answer;
    sks_resp_get_device_info info;
    uint8_t status = 0xFF;
    sks_view msg;
    uint16_t sw = 0;
    const sks_msgdesc *d = sks_msg_find(SKS_M_GET_DEVICE_INFO);

    sks_writer_init(&call);
    sks_writer_init(&answer);
    ck_assert_int_eq(sks_msg_encode_request(d, NULL, &call), 0);
    apdus_sent = 0;
    ck_assert_int_eq(sks_apdu_call(transmit, NULL, extended, call.buf, call.len, &answer, &sw), 0);
    ck_assert_uint_eq(sw, SKS_SW_OK);
    memset(&info, 0, sizeof(info));
    ck_assert_int_eq(sks_msg_decode_response(d, answer.buf, answer.len, &info, &status, &msg), 0);
    ck_assert_uint_eq(status, SKS_OK);
    ck_assert_uint_eq(info.api_level, SKS_API_LEVEL);
    ck_assert_uint_ge(info.device_certificate_path.count, 1);
    /* The answer holds certificates: longer than one short APDU answer. */
    ck_assert_uint_gt(answer.len, 256);
    if (extended)
        ck_assert_int_eq(apdus_sent, 1);
    else
        ck_assert_int_gt(apdus_sent, 1);
    sks_writer_free(&call);
    sks_writer_free(&answer);
}

START_TEST(call_before_select_is_refused)
{
    const uint8_t cmd[] = {0x80, 0x10, 0x00, 0x00, 0x01, SKS_M_GET_DEVICE_INFO, 0x00};
    ck_assert_uint_eq(send_apdu(cmd, sizeof(cmd), NULL), SKS_SW_CONDITIONS);
}
END_TEST

START_TEST(select_other_aid_is_not_found)
{
    const uint8_t cmd[] = {0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08};
    ck_assert_uint_eq(send_apdu(cmd, sizeof(cmd), NULL), SKS_SW_NOT_FOUND);
}
END_TEST

START_TEST(device_info_short_apdus_with_get_response)
{
    select_sks();
    device_info_via(0);
}
END_TEST

START_TEST(device_info_one_extended_apdu)
{
    select_sks();
    device_info_via(1);
}
END_TEST

/* A long call must be reassembled from chained parts: the card decodes it
 * fully and answers NO_SESSION (a broken reassembly would be FORMAT). */
START_TEST(chained_call_is_reassembled)
{
    sks_req_create_puk_policy req;
    uint8_t value[2000], mac[SKS_MAC_LEN];
    sks_writer call, answer;
    uint8_t status = 0;
    sks_view msg;
    uint16_t sw = 0;
    const sks_msgdesc *d = sks_msg_find(SKS_M_CREATE_PUK_POLICY);

    memset(value, 0x5A, sizeof(value));
    memset(mac, 0x11, sizeof(mac));
    memset(&req, 0, sizeof(req));
    req.provisioning_handle = 0x7FFFFFF0;
    req.id.ptr = (const uint8_t *)"puk";
    req.id.len = 3;
    req.encrypted_value.ptr = value;
    req.encrypted_value.len = sizeof(value);
    req.retry_limit = 3;
    req.mac.ptr = mac;
    req.mac.len = sizeof(mac);
    sks_writer_init(&call);
    sks_writer_init(&answer);
    ck_assert_int_eq(sks_msg_encode_request(d, &req, &call), 0);
    select_sks();
    apdus_sent = 0;
    ck_assert_int_eq(sks_apdu_call(transmit, NULL, 0, call.buf, call.len, &answer, &sw), 0);
    ck_assert_uint_eq(sw, SKS_SW_OK);
    ck_assert_int_ge(apdus_sent, (int)(call.len / SKS_SHORT_CHUNK));
    ck_assert_int_eq(sks_msg_decode_response(d, answer.buf, answer.len, NULL, &status, &msg), 0);
    ck_assert_uint_eq(status, SKS_ERR_NO_SESSION);
    sks_writer_free(&call);
    sks_writer_free(&answer);
}
END_TEST

START_TEST(malformed_apdus_get_iso_errors)
{
    select_sks();
    /* Lc says 5 bytes, 1 present. */
    const uint8_t short_data[] = {0x80, 0x10, 0x00, 0x00, 0x05, 0x40};
    ck_assert_uint_eq(send_apdu(short_data, sizeof(short_data), NULL), SKS_SW_WRONG_LENGTH);
    const uint8_t bad_ins[] = {0x80, 0x55, 0x00, 0x00, 0x00};
    ck_assert_uint_eq(send_apdu(bad_ins, sizeof(bad_ins), NULL), SKS_SW_INS_NOT_SUPPORTED);
    const uint8_t bad_cla[] = {0x40, 0x10, 0x00, 0x00, 0x01, 0x40};
    ck_assert_uint_eq(send_apdu(bad_cla, sizeof(bad_cla), NULL), SKS_SW_CLA_NOT_SUPPORTED);
    const uint8_t bad_p1p2[] = {0x80, 0x10, 0x01, 0x00, 0x01, 0x40};
    ck_assert_uint_eq(send_apdu(bad_p1p2, sizeof(bad_p1p2), NULL), SKS_SW_WRONG_P1P2);
    const uint8_t get_response[] = {0x00, 0xC0, 0x00, 0x00, 0x00};
    ck_assert_uint_eq(send_apdu(get_response, sizeof(get_response), NULL), SKS_SW_CONDITIONS);
    const uint8_t one_byte[] = {0x80};
    ck_assert_uint_eq(send_apdu(one_byte, sizeof(one_byte), NULL), SKS_SW_WRONG_LENGTH);
    ck_assert_uint_eq(send_apdu(one_byte, 0, NULL), SKS_SW_WRONG_LENGTH);
}
END_TEST

/* An empty SKS call and an unknown method are SKS errors, not ISO errors. */
START_TEST(bad_calls_get_sks_status)
{
    size_t len = 0;
    select_sks();
    const uint8_t empty[] = {0x80, 0x10, 0x00, 0x00, 0x00};
    ck_assert_uint_eq(send_apdu(empty, sizeof(empty), &len), SKS_SW_OK);
    ck_assert_uint_ge(len, 1);
    ck_assert_uint_eq(resp[0], SKS_ERR_FORMAT);
    const uint8_t unknown[] = {0x80, 0x10, 0x00, 0x00, 0x01, 0xEE, 0x00};
    ck_assert_uint_eq(send_apdu(unknown, sizeof(unknown), &len), SKS_SW_OK);
    ck_assert_uint_eq(resp[0], SKS_ERR_NO_METHOD);
    const uint8_t trailing[] = {0x80, 0x10, 0x00, 0x00, 0x02, SKS_M_GET_DEVICE_INFO, 0x00, 0x00};
    ck_assert_uint_eq(send_apdu(trailing, sizeof(trailing), &len), SKS_SW_OK);
    ck_assert_uint_eq(resp[0], SKS_ERR_FORMAT);
}
END_TEST

START_TEST(overlong_chain_is_refused)
{
    static uint8_t part[5 + 255];
    select_sks();
    part[0] = 0x90;
    part[1] = 0x10;
    part[4] = 255;
    uint16_t sw = SKS_SW_OK;
    size_t parts = 0;
    while (sw == SKS_SW_OK && parts < SKS_CALL_MAX / 255 + 2) {
        sw = send_apdu(part, sizeof(part), NULL);
        parts++;
    }
    ck_assert_uint_eq(sw, SKS_SW_MEMORY);
    ck_assert_uint_gt(parts * 255, SKS_CALL_MAX);
}
END_TEST

START_TEST(reset_forgets_selection)
{
    select_sks();
    sks_card_reset(card);
    const uint8_t cmd[] = {0x80, 0x10, 0x00, 0x00, 0x01, SKS_M_GET_DEVICE_INFO, 0x00};
    ck_assert_uint_eq(send_apdu(cmd, sizeof(cmd), NULL), SKS_SW_CONDITIONS);
}
END_TEST

/* Random APDUs and random SKS calls: always a well-formed answer, never a crash. */
START_TEST(random_input_is_answered)
{
    uint8_t cmd[600];
    unsigned seed = 12345;
    select_sks();
    for (int i = 0; i < 5000; i++) {
        size_t n = (size_t)(rand_r(&seed) % sizeof(cmd));
        for (size_t j = 0; j < n; j++)
            cmd[j] = (uint8_t)rand_r(&seed);
        if (i % 2 == 0 && n >= 5) {
            cmd[0] = 0x80;
            cmd[1] = 0x10;
            cmd[2] = cmd[3] = 0;
            cmd[4] = (uint8_t)(n - 5 > 255 ? 255 : n - 5);
            n = 5 + cmd[4];
            cmd[5] = (uint8_t)(cmd[5] % 80); /* mostly known method IDs */
        }
        size_t r = sks_card_apdu(card, cmd, n, resp, sizeof(resp));
        ck_assert_uint_ge(r, 2);
        ck_assert_uint_le(r, sizeof(resp));
    }
}
END_TEST

static Suite *card_apdu_suite(void)
{
    Suite *s = suite_create("card-apdu");
    TCase *tc = tcase_create("framing");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, call_before_select_is_refused);
    tcase_add_test(tc, select_other_aid_is_not_found);
    tcase_add_test(tc, device_info_short_apdus_with_get_response);
    tcase_add_test(tc, device_info_one_extended_apdu);
    tcase_add_test(tc, chained_call_is_reassembled);
    tcase_add_test(tc, malformed_apdus_get_iso_errors);
    tcase_add_test(tc, bad_calls_get_sks_status);
    tcase_add_test(tc, overlong_chain_is_refused);
    tcase_add_test(tc, reset_forgets_selection);
    tcase_add_test(tc, random_input_is_answered);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(card_apdu_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
