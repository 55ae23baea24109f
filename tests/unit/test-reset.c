/*
 * test-reset.c - resetPINPolicy (docs/protocol.md 7.17) on cards provisioned
 * through the real issuer (testlib): the policy's keys and objects go, other
 * policies keep theirs, the PIN is unset with a full counter, the ID
 * changes; the PUK follows the counter rule, and a policy without PUK or a
 * taken ID is refused before any try is spent.
 */
#include <string.h>

#include <check.h>

#include "card/card_internal.h"
#include "testlib.h"

static sks_view str_view(const char *s)
{
    sks_view v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static int reset_policy(tl_card *c, uint32_t policy, const char *puk, const char *new_id)
{
    sks_req_reset_pin_policy req = {policy, str_view(puk), str_view(new_id)};
    return tl_call(c, SKS_M_RESET_PIN_POLICY, &req, NULL, NULL);
}

static int verify_pin(tl_card *c, uint32_t policy, const char *pin)
{
    sks_req_verify_pin req = {.pin_policy_handle = policy, .pin = str_view(pin)};
    return tl_call(c, SKS_M_VERIFY_PIN, &req, NULL, NULL);
}

/* The enumeratePINPolicies record of `policy`; 0 if it is not listed. */
static int find_policy(tl_card *c, uint32_t policy, sks_pin_policy_info *out)
{
    sks_resp_enumerate_pin_policies resp;
    uint8_t none = 0;
    int found = 0;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_PIN_POLICIES, &none, &resp, NULL));
    sks_reader r;
    sks_reader_init(&r, resp.policies.ptr, resp.policies.len);
    while (r.pos < r.len) {
        sks_pin_policy_info info;
        ck_assert_int_eq(sks_fields_read(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq,
                                         SKS_FF_WIRE, &r, &info, NULL),
                         SKS_OK);
        if (info.handle == policy) {
            *out = info;
            found = 1;
        }
    }
    ck_assert_int_eq(sks_reader_finish(&r), 0);
    return found;
}

static int key_exists(tl_card *c, uint32_t key)
{
    sks_req_key_handle req = {key};
    sks_resp_get_key_attributes resp;
    int st = tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &req, &resp, NULL);
    ck_assert(st == SKS_OK || st == SKS_ERR_NO_KEY);
    return st == SKS_OK;
}

static int object_exists(tl_card *c, uint32_t object)
{
    sks_req_object_handle req = {object};
    sks_resp_read_object resp;
    int st = tl_call(c, SKS_M_READ_OBJECT, &req, &resp, NULL);
    ck_assert(st == SKS_OK || st == SKS_ERR_NO_KEY);
    return st == SKS_OK;
}

static uint32_t create_object(tl_card *c, uint32_t policy)
{
    sks_req_create_object req = {policy, SKS_OBJECT_CERTIFICATE, 0, str_view("attributes")};
    sks_resp_create_object resp;
    TL_OK(c, tl_call(c, SKS_M_CREATE_OBJECT, &req, &resp, NULL));
    return resp.object_handle;
}

/* Two PIN policies (both with ID "pin", PUK "12345678", PUK limit 3), two keys under the first. */
static tl_card *two_policies(tl_key *a, tl_key *b)
{
    tl_card *c = tl_card_new();
    tl_key_spec sa = {.pin = "1234", .puk = "12345678", .puk_retry_limit = 3, .key_count = 2};
    tl_key_spec sb = {.pin = "5678", .puk = "12345678", .puk_retry_limit = 3};
    tl_provision_key(c, &sa, a);
    tl_provision_key(c, &sb, b);
    return c;
}

START_TEST(test_reset_success)
{
    tl_key a, b;
    tl_card *c = two_policies(&a, &b);
    sks_pin_policy_info info;

    TL_OK(c, verify_pin(c, a.pin_policy, "1234"));
    uint32_t obj_a = create_object(c, a.pin_policy);
    TL_OK(c, verify_pin(c, b.pin_policy, "5678"));
    uint32_t obj_b = create_object(c, b.pin_policy);
    uint32_t obj_none = create_object(c, 0);
    ck_assert_int_eq(verify_pin(c, a.pin_policy, "0000"), SKS_ERR_AUTHENTICATION);
    TL_OK(c, verify_pin(c, a.pin_policy, "1234")); /* verified again before the reset */

    TL_OK(c, reset_policy(c, a.pin_policy, "12345678", "fresh"));

    ck_assert(find_policy(c, a.pin_policy, &info));
    ck_assert_uint_eq(info.id.len, 5);
    ck_assert_mem_eq(info.id.ptr, "fresh", 5); /* before the next call reuses the answer */
    ck_assert_uint_eq(info.pin_set, 0);
    ck_assert_uint_eq(info.verified, 0);
    ck_assert_uint_eq(info.tries_left, info.retry_limit);
    ck_assert_uint_eq(info.puk_tries_left, 3);
    ck_assert(!key_exists(c, a.key[0]));
    ck_assert(!key_exists(c, a.key[1]));
    ck_assert(!object_exists(c, obj_a));
    /* The other policy and the no-PIN token keep everything. */
    ck_assert(key_exists(c, b.key[0]));
    ck_assert(object_exists(c, obj_b));
    ck_assert(object_exists(c, obj_none));
    ck_assert(find_policy(c, b.pin_policy, &info));
    ck_assert_uint_eq(info.pin_set, 1);
    ck_assert_mem_eq(info.id.ptr, "pin", 3);
    ck_assert_uint_eq(info.id.len, 3);

    /* No PIN: verifyPIN is refused; unlockPIN with the PUK sets the first PIN again. */
    ck_assert_int_eq(verify_pin(c, a.pin_policy, "1234"), SKS_ERR_NOT_ALLOWED);
    sks_req_unlock_pin un = {a.pin_policy, str_view("12345678"), str_view("4321")};
    TL_OK(c, tl_call(c, SKS_M_UNLOCK_PIN, &un, NULL, NULL));
    TL_OK(c, verify_pin(c, a.pin_policy, "4321"));

    /* Keeping the policy's own ID is allowed. */
    TL_OK(c, reset_policy(c, a.pin_policy, "12345678", "fresh"));

    tl_key_free(&a);
    tl_key_free(&b);
    tl_card_free(c);
}
END_TEST

START_TEST(test_reset_wrong_and_blocked_puk)
{
    tl_key a, b;
    tl_card *c = two_policies(&a, &b);
    sks_pin_policy_info info;

    for (unsigned left = 2;; left--) {
        ck_assert_int_eq(reset_policy(c, a.pin_policy, "00000000", "fresh"),
                         SKS_ERR_AUTHENTICATION);
        ck_assert_ptr_null(strstr(c->error, "00000000"));
        ck_assert(find_policy(c, a.pin_policy, &info));
        ck_assert_uint_eq(info.puk_tries_left, left);
        if (left == 0)
            break;
    }
    /* Nothing was reset, and the blocked PUK refuses the right value. */
    ck_assert_mem_eq(info.id.ptr, "pin", 3);
    ck_assert_uint_eq(info.pin_set, 1);
    ck_assert(key_exists(c, a.key[0]));
    ck_assert_int_eq(reset_policy(c, a.pin_policy, "12345678", "fresh"), SKS_ERR_PIN_BLOCKED);
    ck_assert(key_exists(c, a.key[0]));

    tl_key_free(&a);
    tl_key_free(&b);
    tl_card_free(c);
}
END_TEST

START_TEST(test_reset_refusals)
{
    tl_key a, b, nopuk;
    tl_card *c = two_policies(&a, &b);
    tl_key_spec sn = {.pin = "1234"};
    tl_provision_key(c, &sn, &nopuk);
    sks_pin_policy_info info;

    /* A policy without PUK cannot be reset. */
    ck_assert_int_eq(reset_policy(c, nopuk.pin_policy, "12345678", "x"), SKS_ERR_NOT_ALLOWED);
    ck_assert(key_exists(c, nopuk.key[0]));
    /* The ID of another policy (b is "pin") is refused before a try is taken. */
    ck_assert_int_eq(reset_policy(c, a.pin_policy, "00000000", "pin"), SKS_ERR_OPTION);
    ck_assert(find_policy(c, a.pin_policy, &info));
    ck_assert_uint_eq(info.puk_tries_left, 3);
    ck_assert(key_exists(c, a.key[0]));
    /* Unknown handles, a PUK policy handle, and a NewID length out of 1..32 (OPTION, section 2). */
    ck_assert_int_eq(reset_policy(c, 0, "12345678", "x"), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(reset_policy(c, a.puk_policy, "12345678", "x"), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(reset_policy(c, a.pin_policy, "12345678", ""), SKS_ERR_OPTION);
    ck_assert_int_eq(reset_policy(c, a.pin_policy, "12345678", "123456789012345678901234567890123"),
                     SKS_ERR_OPTION);
    ck_assert(key_exists(c, a.key[0]));

    tl_key_free(&a);
    tl_key_free(&b);
    tl_key_free(&nopuk);
    tl_card_free(c);
}
END_TEST

static Suite *reset_suite(void)
{
    Suite *s = suite_create("resetPINPolicy");
    TCase *tc = tcase_create("reset");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_reset_success);
    tcase_add_test(tc, test_reset_wrong_and_blocked_puk);
    tcase_add_test(tc, test_reset_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reset_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
