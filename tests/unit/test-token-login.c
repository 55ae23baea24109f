/*
 * test-token-login.c - users and PINs on the module's tokens: C_Login as
 * user (PIN) and SO (PUK), wrong and locked PINs and what C_GetTokenInfo
 * says about them, C_InitPIN, C_SetPIN with the policy's limits, C_InitToken
 * on the free slot (through the local issuer) and on an existing token
 * (resetPINPolicy under the SO PIN), the keys-without-PIN token, logout
 * when the last session closes, and the context login of keys whose PIN
 * policy does not allow caching (CKA_ALWAYS_AUTHENTICATE).
 *
 * The PIN policies come from testlib (the real issuer): ID "pin", PIN
 * "1234", PUK "87654321", 3 tries, 4..16 digits, so the token label is "pin".
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

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

/* Objects a session sees: every object (SO or user logged in), or the public ones. */
static CK_ULONG object_count(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
    CK_OBJECT_HANDLE found[16];
    return tt_find(f, s, NULL, 0, found, 16);
}

/* C_InitToken on an existing token: the SO PIN (PUK) empties it under a new label. */
START_TEST(t_reinit_token)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    provision(&e, 1, 1);
    tl_key_spec nopin_spec; /* a key without PIN: the no-PIN token keeps it */
    tl_key nopin_key;
    memset(&nopin_spec, 0, sizeof(nopin_spec));
    tl_provision_key(e.card, &nopin_spec, &nopin_key);
    tl_key_free(&nopin_key);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, "Renewed", 7);

    CK_SESSION_HANDLE s = tt_open(f, slot);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    CK_ULONG before = object_count(f, s);
    ck_assert_uint_ge(before, 2); /* the private key, its public key (and certificate) */
    TT_RV(f->C_InitToken(slot, U(PUK), LEN(PUK), label), CKR_SESSION_EXISTS);
    TT_OK(f->C_CloseSession(s));

    /* A wrong SO PIN costs an SO try and changes nothing else. */
    TT_RV(f->C_InitToken(slot, U("11111111"), 8, label), CKR_PIN_INCORRECT);
    ck_assert(token_flags(f, slot) & CKF_SO_PIN_COUNT_LOW);
    ck_assert_uint_eq(tt_slot_by_label(f, "pin"), slot);
    s = tt_open(f, slot);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    ck_assert_uint_eq(object_count(f, s), before);
    TT_OK(f->C_CloseSession(s));

    TT_OK(f->C_InitToken(slot, U(PUK), LEN(PUK), label));
    /* Same slot, new label; the SO counter is full again, the user PIN is gone. */
    ck_assert_uint_eq(tt_slot_by_label(f, "Renewed"), slot);
    CK_FLAGS fl = token_flags(f, slot);
    ck_assert(fl & CKF_TOKEN_INITIALIZED);
    ck_assert(!(fl & CKF_USER_PIN_INITIALIZED));
    ck_assert(!(fl & CKF_SO_PIN_COUNT_LOW));
    s = tt_open(f, slot);
    ck_assert_uint_eq(object_count(f, s), 0);
    TT_RV(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)), CKR_USER_PIN_NOT_INITIALIZED);
    TT_OK(f->C_Login(s, CKU_SO, U(PUK), LEN(PUK)));
    ck_assert_uint_eq(object_count(f, s), 0);
    TT_OK(f->C_InitPIN(s, U("5555"), 4));
    TT_OK(f->C_Logout(s));
    TT_OK(f->C_Login(s, CKU_USER, U("5555"), 4));
    ck_assert_uint_eq(object_count(f, s), 0);
    TT_OK(f->C_CloseSession(s));

    /* The keys-without-PIN token kept its key, and has no SO PIN to re-initialise it with. */
    CK_SLOT_ID nopin = tt_slot_by_label(f, "SKS (no PIN)");
    s = tt_open(f, nopin);
    ck_assert_uint_ge(object_count(f, s), 2);
    TT_OK(f->C_CloseSession(s));
    TT_RV(f->C_InitToken(nopin, U(PUK), LEN(PUK), label), CKR_FUNCTION_NOT_SUPPORTED);
    TT_OK(f->C_Finalize(NULL));

    /* A second module instance sees the renewed token. */
    f = tt_init();
    slot = tt_slot_by_label(f, "Renewed");
    s = tt_open(f, slot);
    TT_OK(f->C_Login(s, CKU_USER, U("5555"), 4));
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* A token whose policy has no PUK has no SO: C_InitToken cannot reset it. */
START_TEST(t_reinit_without_so)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    provision(&e, 1, 0);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    TT_RV(f->C_InitToken(slot, U(PUK), LEN(PUK), label), CKR_FUNCTION_NOT_SUPPORTED);
    CK_SESSION_HANDLE s = tt_open(f, slot);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    ck_assert_uint_ge(object_count(f, s), 2);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* CKA_ALWAYS_AUTHENTICATE of a private key; asserts the attribute is readable. */
static CK_BBOOL always_authenticate(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a = {CKA_ALWAYS_AUTHENTICATE, &v, sizeof(v)};
    TT_OK(f->C_GetAttributeValue(s, h, &a, 1));
    ck_assert_uint_eq(a.ulValueLen, sizeof(v));
    return v;
}

/*
 * A PIN policy with CachingSupport false: its private key says
 * CKA_ALWAYS_AUTHENTICATE, and each C_Sign / C_Decrypt with it takes a
 * C_Login(CKU_CONTEXT_SPECIFIC) after the Init (PKCS#11 v2.40 4.9). The
 * signature is checked with OpenSSL against the issuer's copy of the public
 * key, the decryption is of a ciphertext OpenSSL made.
 */
START_TEST(t_always_authenticate)
{
    tt_env e;
    tt_env_with_card(&e, NULL);
    tl_key_spec spec;
    tl_key key;
    memset(&spec, 0, sizeof(spec));
    spec.pin = PIN;
    spec.pin_no_caching = 1;
    spec.algorithm = SKS_KEYALG_RSA2048;
    spec.key_usage = SKS_USAGE_SIGN | SKS_USAGE_DECRYPT;
    tl_provision_key(e.card, &spec, &key);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SESSION_HANDLE s = tt_open(f, slot);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    CK_OBJECT_HANDLE priv;
    ck_assert_uint_eq(tt_find(f, s, &t, 1, &priv, 1), 1);
    ck_assert_uint_eq(always_authenticate(f, s, priv), CK_TRUE);

    const uint8_t msg[] = "signed with a PIN for each use";
    CK_MECHANISM sha256_rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
    uint8_t sig[256];
    CK_ULONG siglen = sizeof(sig);
    /* No operation, nothing to log in for. */
    TT_RV(f->C_Login(s, CKU_CONTEXT_SPECIFIC, U(PIN), LEN(PIN)), CKR_OPERATION_NOT_INITIALIZED);
    /* The user login alone does not allow a use; the failed C_Sign ends the operation. */
    TT_OK(f->C_SignInit(s, &sha256_rsa, priv));
    TT_RV(f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &siglen), CKR_USER_NOT_LOGGED_IN);
    TT_RV(f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &siglen), CKR_OPERATION_NOT_INITIALIZED);
    ck_assert_uint_eq(session_state(f, s), CKS_RW_USER_FUNCTIONS);

    /* A wrong PIN keeps the operation; the right one allows one signature. */
    TT_OK(f->C_SignInit(s, &sha256_rsa, priv));
    TT_RV(f->C_Login(s, CKU_CONTEXT_SPECIFIC, U("9999"), 4), CKR_PIN_INCORRECT);
    ck_assert(token_flags(f, slot) & CKF_USER_PIN_COUNT_LOW);
    TT_OK(f->C_Login(s, CKU_CONTEXT_SPECIFIC, U(PIN), LEN(PIN)));
    ck_assert(!(token_flags(f, slot) & CKF_USER_PIN_COUNT_LOW));
    TT_OK(f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), NULL, &siglen)); /* length query */
    ck_assert_uint_eq(siglen, 256);
    TT_OK(f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &siglen));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert(md != NULL &&
              EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key.public_key[0]) == 1 &&
              EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) == 1);
    EVP_MD_CTX_free(md);

    /* The next use needs its own context login; the user stays logged in. */
    TT_OK(f->C_SignInit(s, &sha256_rsa, priv));
    siglen = sizeof(sig);
    TT_RV(f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &siglen), CKR_USER_NOT_LOGGED_IN);
    ck_assert_uint_eq(session_state(f, s), CKS_RW_USER_FUNCTIONS);
    for (int i = 0; i < 2; i++) {
        TT_OK(f->C_SignInit(s, &sha256_rsa, priv));
        TT_OK(f->C_Login(s, CKU_CONTEXT_SPECIFIC, U(PIN), LEN(PIN)));
        siglen = sizeof(sig);
        TT_OK(f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &siglen));
    }
    /* The key is still found after the card forgot the PIN (cache reloads). */
    ck_assert_uint_eq(tt_find(f, s, &t, 1, &priv, 1), 1);

    /* Decryption: the same rule. */
    const uint8_t secret[] = "a key to unwrap";
    uint8_t ct[256], pt[256];
    size_t ctlen = sizeof(ct);
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(key.public_key[0], NULL);
    ck_assert(pc != NULL && EVP_PKEY_encrypt_init(pc) == 1 &&
              EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
              EVP_PKEY_encrypt(pc, ct, &ctlen, secret, sizeof(secret)) == 1);
    EVP_PKEY_CTX_free(pc);
    CK_MECHANISM rsa_pkcs = {CKM_RSA_PKCS, NULL, 0};
    CK_ULONG ptlen = sizeof(pt);
    TT_OK(f->C_DecryptInit(s, &rsa_pkcs, priv));
    TT_RV(f->C_Decrypt(s, ct, (CK_ULONG)ctlen, pt, &ptlen), CKR_USER_NOT_LOGGED_IN);
    TT_OK(f->C_DecryptInit(s, &rsa_pkcs, priv));
    TT_OK(f->C_Login(s, CKU_CONTEXT_SPECIFIC, U(PIN), LEN(PIN)));
    ptlen = sizeof(pt);
    TT_OK(f->C_Decrypt(s, ct, (CK_ULONG)ctlen, pt, &ptlen));
    ck_assert_uint_eq(ptlen, sizeof(secret));
    ck_assert_mem_eq(pt, secret, sizeof(secret));

    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-login");
    TCase *tc = tcase_create("login");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_user_login);
    tcase_add_test(tc, t_reinit_token);
    tcase_add_test(tc, t_reinit_without_so);
    tcase_add_test(tc, t_locked_pin);
    tcase_add_test(tc, t_so_login);
    tcase_add_test(tc, t_no_so);
    tcase_add_test(tc, t_set_pin);
    tcase_add_test(tc, t_set_pin_not_modifiable);
    tcase_add_test(tc, t_logout_with_last_session);
    tcase_add_test(tc, t_no_pin_token);
    tcase_add_test(tc, t_init_token);
    tcase_add_test(tc, t_always_authenticate);
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
