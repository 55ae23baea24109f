/*
 * test-token-login.c - users and PINs on the module's tokens: C_Login as
 * user (PIN) and SO (PUK), wrong and locked PINs and what C_GetTokenInfo
 * says about them, C_InitPIN, C_SetPIN with the policy's limits, C_InitToken
 * on the free slot (through the local issuer), the keys-without-PIN token,
 * and logout when the last session closes.
 *
 * The PIN policies come from testlib (the real issuer): ID "pin", PIN
 * "1234", PUK "87654321", 3 tries, 4..16 digits, so the token label is "pin".
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "test-token-util.h"

#define PIN    "1234"
#define PUK    "87654321"
#define LEN(s) (sizeof(s) - 1)
#define U(s)   ((CK_UTF8CHAR_PTR)(s))

static void provision(tt_env *e, int user_modifiable, int with_puk)
{
    tl_key_spec spec;
    tl_key key;
    memset(&spec, 0, sizeof(spec));
    spec.pin = PIN;
    spec.puk = with_puk ? PUK : NULL;
    spec.puk_retry_limit = 5;
    spec.user_modifiable = (uint8_t)user_modifiable;
    spec.friendly_name = "login test key";
    tl_provision_key(e->card, &spec, &key);
    tl_key_free(&key);
}

static CK_FLAGS token_flags(CK_FUNCTION_LIST *f, CK_SLOT_ID slot)
{
    CK_TOKEN_INFO ti;
    TT_OK(f->C_GetTokenInfo(slot, &ti));
    return ti.flags;
}

static CK_STATE session_state(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
    CK_SESSION_INFO si;
    TT_OK(f->C_GetSessionInfo(s, &si));
    return si.state;
}

START_TEST(t_user_login)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    provision(&e, 1, 1);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_TOKEN_INFO ti;
    TT_OK(f->C_GetTokenInfo(slot, &ti));
    ck_assert(ti.flags & CKF_TOKEN_INITIALIZED);
    ck_assert(ti.flags & CKF_LOGIN_REQUIRED);
    ck_assert(ti.flags & CKF_USER_PIN_INITIALIZED);
    ck_assert(
        !(ti.flags & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED)));
    ck_assert_uint_eq(ti.ulMinPinLen, 4);
    ck_assert_uint_eq(ti.ulMaxPinLen, 16);
    CK_SESSION_HANDLE s = tt_open(f, slot);
    ck_assert_uint_eq(session_state(f, s), CKS_RW_PUBLIC_SESSION);
    TT_RV(f->C_Login(s, CKU_USER, U("9999"), 4), CKR_PIN_INCORRECT);
    ck_assert(token_flags(f, slot) & CKF_USER_PIN_COUNT_LOW);
    ck_assert(!(token_flags(f, slot) & CKF_USER_PIN_FINAL_TRY));
    TT_RV(f->C_Login(s, CKU_USER, U("9998"), 4), CKR_PIN_INCORRECT);
    ck_assert(token_flags(f, slot) & CKF_USER_PIN_FINAL_TRY);
    TT_RV(f->C_Login(s, CKU_CONTEXT_SPECIFIC, U(PIN), LEN(PIN)), CKR_USER_NOT_LOGGED_IN);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    /* A match restores the counter. */
    ck_assert(!(token_flags(f, slot) & (CKF_USER_PIN_COUNT_LOW | CKF_USER_PIN_FINAL_TRY)));
    ck_assert_uint_eq(session_state(f, s), CKS_RW_USER_FUNCTIONS);
    TT_RV(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)), CKR_USER_ALREADY_LOGGED_IN);
    TT_RV(f->C_Login(s, CKU_SO, U(PUK), LEN(PUK)), CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    TT_RV(f->C_Login(s, CKU_CONTEXT_SPECIFIC, U(PIN), LEN(PIN)), CKR_OPERATION_NOT_INITIALIZED);
    /* Login state belongs to the slot: a second session shares it. */
    CK_SESSION_HANDLE ro;
    TT_OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
    ck_assert_uint_eq(session_state(f, ro), CKS_RO_USER_FUNCTIONS);
    TT_OK(f->C_Logout(s));
    ck_assert_uint_eq(session_state(f, ro), CKS_RO_PUBLIC_SESSION);
    TT_RV(f->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_locked_pin)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    provision(&e, 1, 1);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SESSION_HANDLE s = tt_open(f, slot);
    TT_RV(f->C_Login(s, CKU_USER, U("0000"), 4), CKR_PIN_INCORRECT);
    TT_RV(f->C_Login(s, CKU_USER, U("0001"), 4), CKR_PIN_INCORRECT);
    TT_RV(f->C_Login(s, CKU_USER, U("0002"), 4), CKR_PIN_INCORRECT);
    ck_assert(token_flags(f, slot) & CKF_USER_PIN_LOCKED);
    /* The right PIN no longer helps. */
    TT_RV(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)), CKR_PIN_LOCKED);
    /* The SO unlocks it with a new PIN. */
    TT_OK(f->C_Login(s, CKU_SO, U(PUK), LEN(PUK)));
    TT_OK(f->C_InitPIN(s, U("4321"), 4));
    TT_OK(f->C_Logout(s));
    ck_assert(!(token_flags(f, slot) & CKF_USER_PIN_LOCKED));
    TT_RV(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)), CKR_PIN_INCORRECT);
    TT_OK(f->C_Login(s, CKU_USER, U("4321"), 4));
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_so_login)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    provision(&e, 1, 1);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SESSION_HANDLE ro, rw, other;
    TT_OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
    rw = tt_open(f, slot);
    TT_RV(f->C_Login(rw, CKU_SO, U(PUK), LEN(PUK)), CKR_SESSION_READ_ONLY_EXISTS);
    TT_OK(f->C_CloseSession(ro));
    TT_RV(f->C_InitPIN(rw, U("5555"), 4), CKR_USER_NOT_LOGGED_IN);
    TT_RV(f->C_Login(rw, CKU_SO, U("00000000"), 8), CKR_PIN_INCORRECT);
    ck_assert(token_flags(f, slot) & CKF_SO_PIN_COUNT_LOW);
    TT_OK(f->C_Login(rw, CKU_SO, U(PUK), LEN(PUK)));
    ck_assert(!(token_flags(f, slot) & CKF_SO_PIN_COUNT_LOW));
    ck_assert_uint_eq(session_state(f, rw), CKS_RW_SO_FUNCTIONS);
    TT_RV(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &other),
          CKR_SESSION_READ_WRITE_SO_EXISTS);
    TT_RV(f->C_Login(rw, CKU_USER, U(PIN), LEN(PIN)), CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
    /* The policy allows 4..16 characters. */
    TT_RV(f->C_InitPIN(rw, U("555"), 3), CKR_PIN_LEN_RANGE);
    TT_RV(f->C_InitPIN(rw, U("55555555555555555"), 17), CKR_PIN_LEN_RANGE);
    TT_RV(f->C_InitPIN(rw, NULL, 4), CKR_ARGUMENTS_BAD);
    TT_OK(f->C_InitPIN(rw, U("5555"), 4));
    /* The SO cannot change the PUK: the card has no method for it. */
    TT_RV(f->C_SetPIN(rw, U(PUK), LEN(PUK), U("11112222"), 8), CKR_FUNCTION_NOT_SUPPORTED);
    TT_OK(f->C_Logout(rw));
    TT_RV(f->C_Login(rw, CKU_USER, U(PIN), LEN(PIN)), CKR_PIN_INCORRECT);
    TT_OK(f->C_Login(rw, CKU_USER, U("5555"), 4));
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* Without a PUK policy there is no SO. */
START_TEST(t_no_so)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    provision(&e, 1, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SESSION_HANDLE s = tt_open(f, slot);
    ck_assert(!(token_flags(f, slot) & (CKF_SO_PIN_COUNT_LOW | CKF_SO_PIN_LOCKED)));
    TT_RV(f->C_Login(s, CKU_SO, U(PUK), LEN(PUK)), CKR_USER_TYPE_INVALID);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_set_pin)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    provision(&e, 1, 1);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SESSION_HANDLE ro, rw = tt_open(f, slot);
    TT_OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
    TT_RV(f->C_SetPIN(ro, U(PIN), LEN(PIN), U("2468"), 4), CKR_SESSION_READ_ONLY);
    TT_RV(f->C_SetPIN(rw, U("1111"), 4, U("2468"), 4), CKR_PIN_INCORRECT);
    TT_RV(f->C_SetPIN(rw, U(PIN), LEN(PIN), U("246"), 3), CKR_PIN_LEN_RANGE);
    TT_RV(f->C_SetPIN(rw, U(PIN), LEN(PIN), U("24682468246824682"), 17), CKR_PIN_LEN_RANGE);
    /* Numeric format: letters are outside the policy. */
    TT_RV(f->C_SetPIN(rw, U(PIN), LEN(PIN), U("abcd"), 4), CKR_PIN_INVALID);
    /* Public session or logged in: both change the user's PIN. */
    TT_OK(f->C_SetPIN(rw, U(PIN), LEN(PIN), U("2468"), 4));
    TT_RV(f->C_Login(rw, CKU_USER, U(PIN), LEN(PIN)), CKR_PIN_INCORRECT);
    TT_OK(f->C_Login(rw, CKU_USER, U("2468"), 4));
    TT_OK(f->C_SetPIN(rw, U("2468"), 4, U("13579"), 5));
    TT_OK(f->C_Logout(rw));
    TT_OK(f->C_Login(rw, CKU_USER, U("13579"), 5));
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_set_pin_not_modifiable)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    provision(&e, 0, 1);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SESSION_HANDLE rw = tt_open(f, slot);
    TT_RV(f->C_SetPIN(rw, U(PIN), LEN(PIN), U("2468"), 4), CKR_ACTION_PROHIBITED);
    TT_OK(f->C_Login(rw, CKU_USER, U(PIN), LEN(PIN)));
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* Closing the last session of a slot logs its user out. */
START_TEST(t_logout_with_last_session)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    provision(&e, 1, 1);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SESSION_HANDLE a = tt_open(f, slot), b = tt_open(f, slot);
    TT_OK(f->C_Login(a, CKU_USER, U(PIN), LEN(PIN)));
    TT_OK(f->C_CloseSession(a));
    ck_assert_uint_eq(session_state(f, b), CKS_RW_USER_FUNCTIONS);
    TT_OK(f->C_CloseSession(b));
    a = tt_open(f, slot);
    ck_assert_uint_eq(session_state(f, a), CKS_RW_PUBLIC_SESSION);
    TT_OK(f->C_Login(a, CKU_USER, U(PIN), LEN(PIN)));
    TT_OK(f->C_CloseAllSessions(slot));
    a = tt_open(f, slot);
    ck_assert_uint_eq(session_state(f, a), CKS_RW_PUBLIC_SESSION);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* Keys without PIN get a token of their own, without login. */
START_TEST(t_no_pin_token)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    tl_key_spec spec;
    tl_key key;
    memset(&spec, 0, sizeof(spec));
    tl_provision_key(e.card, &spec, &key);
    tl_key_free(&key);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID ids[8];
    CK_ULONG n;
    tt_slots(f, ids, 8, &n);
    ck_assert_uint_eq(n, 2); /* the no-PIN token, then the free slot */
    CK_SLOT_ID slot = tt_slot_by_label(f, "SKS (no PIN)");
    ck_assert_uint_eq(slot, ids[0]);
    ck_assert_uint_eq(tt_free_slot(f), ids[1]);
    CK_FLAGS fl = token_flags(f, slot);
    ck_assert(fl & CKF_TOKEN_INITIALIZED);
    ck_assert(!(fl & (CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED)));
    CK_SESSION_HANDLE s = tt_open(f, slot);
    TT_RV(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)), CKR_USER_PIN_NOT_INITIALIZED);
    TT_RV(f->C_Login(s, CKU_SO, U(PUK), LEN(PUK)), CKR_USER_TYPE_INVALID);
    TT_RV(f->C_SetPIN(s, U(PIN), LEN(PIN), U("2222"), 4), CKR_USER_PIN_NOT_INITIALIZED);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* C_InitToken on the free slot, then the SO sets the user PIN. */
START_TEST(t_init_token)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID free_slot = tt_free_slot(f);
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, "Alice", 5);
    CK_SESSION_HANDLE s = tt_open(f, free_slot);
    TT_RV(f->C_InitToken(free_slot, U("so-secret"), 9, label), CKR_SESSION_EXISTS);
    TT_OK(f->C_CloseSession(s));
    TT_RV(f->C_InitToken(free_slot, U(""), 0, label), CKR_PIN_LEN_RANGE);
    TT_OK(f->C_InitToken(free_slot, U("so-secret"), 9, label));

    /* The new token comes first; the free slot stays free and last. */
    CK_SLOT_ID ids[8];
    CK_ULONG n;
    tt_slots(f, ids, 8, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(ids[1], free_slot);
    CK_SLOT_ID alice = tt_slot_by_label(f, "Alice");
    ck_assert_uint_eq(alice, ids[0]);
    CK_TOKEN_INFO ti, free_ti;
    TT_OK(f->C_GetTokenInfo(alice, &ti));
    TT_OK(f->C_GetTokenInfo(free_slot, &free_ti));
    ck_assert(ti.flags & CKF_TOKEN_INITIALIZED);
    ck_assert(ti.flags & CKF_LOGIN_REQUIRED);
    ck_assert(!(ti.flags & CKF_USER_PIN_INITIALIZED));
    ck_assert(!(free_ti.flags & CKF_TOKEN_INITIALIZED));
    ck_assert(memcmp(ti.serialNumber, free_ti.serialNumber, 16) != 0);
    /* Re-initialising a token is not offered. */
    TT_RV(f->C_InitToken(alice, U("so-secret"), 9, label), CKR_FUNCTION_NOT_SUPPORTED);

    s = tt_open(f, alice);
    TT_RV(f->C_Login(s, CKU_USER, U("123456"), 6), CKR_USER_PIN_NOT_INITIALIZED);
    TT_RV(f->C_Login(s, CKU_SO, U("wrong"), 5), CKR_PIN_INCORRECT);
    TT_OK(f->C_Login(s, CKU_SO, U("so-secret"), 9));
    TT_OK(f->C_InitPIN(s, U("123456"), 6));
    TT_OK(f->C_Logout(s));
    ck_assert(token_flags(f, alice) & CKF_USER_PIN_INITIALIZED);
    TT_OK(f->C_Login(s, CKU_USER, U("123456"), 6));
    TT_OK(f->C_Finalize(NULL));

    /* A second module instance sees the same token. */
    f = tt_init();
    alice = tt_slot_by_label(f, "Alice");
    s = tt_open(f, alice);
    TT_OK(f->C_Login(s, CKU_USER, U("123456"), 6));
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-login");
    TCase *tc = tcase_create("login");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_user_login);
    tcase_add_test(tc, t_locked_pin);
    tcase_add_test(tc, t_so_login);
    tcase_add_test(tc, t_no_so);
    tcase_add_test(tc, t_set_pin);
    tcase_add_test(tc, t_set_pin_not_modifiable);
    tcase_add_test(tc, t_logout_with_last_session);
    tcase_add_test(tc, t_no_pin_token);
    tcase_add_test(tc, t_init_token);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
