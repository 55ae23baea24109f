/*
 * test-token-api.c - the entry points' argument checks: NULL pointers,
 * invalid slot, session and object handles give the standard's CKR for
 * every function; the two-call convention of the slot and mechanism lists;
 * the token of a fresh card (only the free slot); sessions and the
 * functions the module does not support.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "test-token-util.h"

#define BAD_SESSION ((CK_SESSION_HANDLE)0xDEAD)
#define BAD_SLOT    ((CK_SLOT_ID)0x7777)

START_TEST(t_slot_list_two_call)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_ULONG n = 99;
    TT_RV(f->C_GetSlotList(CK_TRUE, NULL, NULL), CKR_ARGUMENTS_BAD);
    /* A fresh card: only the free slot. */
    TT_OK(f->C_GetSlotList(CK_TRUE, NULL, &n));
    ck_assert_uint_eq(n, 1);
    TT_OK(f->C_GetSlotList(CK_FALSE, NULL, &n));
    ck_assert_uint_eq(n, 1);
    CK_SLOT_ID ids[2] = {42, 42};
    n = 0;
    TT_RV(f->C_GetSlotList(CK_TRUE, ids, &n), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(ids[0], 42);
    n = 2;
    TT_OK(f->C_GetSlotList(CK_TRUE, ids, &n));
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_ne(ids[0], 42);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

static void assert_blank_padded(const CK_UTF8CHAR *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(p[i] >= 0x20 && p[i] < 0x7F, "byte %zu is 0x%02x", i, p[i]);
}

START_TEST(t_fresh_token_info)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_free_slot(f);
    CK_TOKEN_INFO ti;
    CK_SLOT_INFO si;
    TT_RV(f->C_GetTokenInfo(slot, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_GetSlotInfo(slot, NULL), CKR_ARGUMENTS_BAD);
    TT_OK(f->C_GetSlotInfo(slot, &si));
    ck_assert(si.flags & CKF_TOKEN_PRESENT);
    assert_blank_padded(si.slotDescription, sizeof(si.slotDescription));
    TT_OK(f->C_GetTokenInfo(slot, &ti));
    ck_assert(ti.flags & CKF_RNG);
    ck_assert(ti.flags & CKF_WRITE_PROTECTED); /* the free slot holds no objects */
    ck_assert(!(ti.flags & (CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
                            CKF_PROTECTED_AUTHENTICATION_PATH)));
    assert_blank_padded(ti.label, sizeof(ti.label));
    assert_blank_padded(ti.model, sizeof(ti.model));
    ck_assert(memcmp(ti.manufacturerID, "SKS ", 4) == 0);
    ck_assert(memcmp(ti.model, "SKS card ", 9) == 0);
    for (int i = 0; i < 16; i++)
        ck_assert_msg(strchr("0123456789ABCDEF", ti.serialNumber[i]) != NULL, "serial %.16s",
                      ti.serialNumber);
    ck_assert_uint_eq(ti.ulSessionCount, 0);
    ck_assert_uint_eq(ti.ulMaxSessionCount, CK_EFFECTIVELY_INFINITE);
    /* Free memory counts keys: a fresh card has all of them free. */
    ck_assert_uint_gt(ti.ulTotalPublicMemory, 0);
    ck_assert_uint_eq(ti.ulFreePublicMemory, ti.ulTotalPublicMemory);
    /* The SO PIN C_InitToken takes: 1..128 bytes (docs/protocol.md limits). */
    ck_assert_uint_eq(ti.ulMinPinLen, 1);
    ck_assert_uint_eq(ti.ulMaxPinLen, 128);
    CK_SESSION_HANDLE s = tt_open(f, slot);
    TT_OK(f->C_GetTokenInfo(slot, &ti));
    ck_assert_uint_eq(ti.ulSessionCount, 1);
    ck_assert_uint_eq(ti.ulRwSessionCount, 1);
    TT_OK(f->C_CloseSession(s));
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_mechanisms)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_free_slot(f);
    CK_ULONG n = 0;
    TT_RV(f->C_GetMechanismList(slot, NULL, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_GetMechanismList(BAD_SLOT, NULL, &n), CKR_SLOT_ID_INVALID);
    TT_OK(f->C_GetMechanismList(slot, NULL, &n));
    ck_assert_uint_gt(n, 10);
    CK_MECHANISM_TYPE *list = calloc(n, sizeof(*list));
    CK_ULONG small = 1;
    TT_RV(f->C_GetMechanismList(slot, list, &small), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(small, n);
    TT_OK(f->C_GetMechanismList(slot, list, &n));
    int ecdsa = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        ecdsa |= list[i] == CKM_ECDSA;
        ck_assert_uint_ne(list[i], CKM_RSA_X_509); /* the card does not allow raw RSA */
        CK_MECHANISM_INFO mi;
        TT_OK(f->C_GetMechanismInfo(slot, list[i], &mi));
    }
    ck_assert(ecdsa);
    free(list);
    CK_MECHANISM_INFO mi;
    TT_RV(f->C_GetMechanismInfo(slot, CKM_ECDSA, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_GetMechanismInfo(slot, CKM_RSA_X_509, &mi), CKR_MECHANISM_INVALID);
    TT_OK(f->C_GetMechanismInfo(slot, CKM_ECDSA, &mi));
    ck_assert(mi.flags & CKF_SIGN);
    ck_assert(mi.flags & CKF_HW);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_sessions)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_free_slot(f);
    CK_SESSION_HANDLE a, b;
    CK_SESSION_INFO si;
    TT_RV(f->C_OpenSession(slot, 0, NULL, NULL, &a), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    TT_RV(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_OpenSession(BAD_SLOT, CKF_SERIAL_SESSION, NULL, NULL, &a), CKR_SLOT_ID_INVALID);
    TT_OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &a));
    TT_OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &b));
    ck_assert_uint_ne(a, b);
    TT_OK(f->C_GetSessionInfo(a, &si));
    ck_assert_uint_eq(si.slotID, slot);
    ck_assert_uint_eq(si.state, CKS_RO_PUBLIC_SESSION);
    ck_assert_uint_eq(si.flags, CKF_SERIAL_SESSION);
    TT_OK(f->C_GetSessionInfo(b, &si));
    ck_assert_uint_eq(si.state, CKS_RW_PUBLIC_SESSION);
    ck_assert_uint_eq(si.flags, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    TT_OK(f->C_CloseSession(a));
    TT_RV(f->C_CloseSession(a), CKR_SESSION_HANDLE_INVALID);
    TT_RV(f->C_GetSessionInfo(a, &si), CKR_SESSION_HANDLE_INVALID);
    TT_OK(f->C_GetSessionInfo(b, &si));
    TT_RV(f->C_CloseAllSessions(BAD_SLOT), CKR_SLOT_ID_INVALID);
    TT_OK(f->C_CloseAllSessions(slot));
    TT_RV(f->C_GetSessionInfo(b, &si), CKR_SESSION_HANDLE_INVALID);
    /* Handles are not reused. */
    TT_OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &a));
    ck_assert_uint_ne(a, b);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* Every function that takes a session rejects an unknown one. */
START_TEST(t_invalid_session)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE h = BAD_SESSION;
    CK_SESSION_INFO si;
    CK_BYTE buf[64];
    CK_ULONG len = sizeof(buf);
    CK_OBJECT_HANDLE o = 1, o2 = 0;
    CK_MECHANISM m = {CKM_SHA256, NULL, 0};
    CK_ATTRIBUTE t = {CKA_LABEL, buf, 4};
    CK_UTF8CHAR pin[] = "1234";
    const CK_RV want = CKR_SESSION_HANDLE_INVALID;
    TT_RV(f->C_CloseSession(h), want);
    TT_RV(f->C_GetSessionInfo(h, &si), want);
    TT_RV(f->C_GetOperationState(h, buf, &len), want);
    TT_RV(f->C_SetOperationState(h, buf, len, 0, 0), want);
    TT_RV(f->C_Login(h, CKU_USER, pin, 4), want);
    TT_RV(f->C_Logout(h), want);
    TT_RV(f->C_InitPIN(h, pin, 4), want);
    TT_RV(f->C_SetPIN(h, pin, 4, pin, 4), want);
    TT_RV(f->C_CreateObject(h, &t, 1, &o2), want);
    TT_RV(f->C_CopyObject(h, o, &t, 1, &o2), want);
    TT_RV(f->C_DestroyObject(h, o), want);
    TT_RV(f->C_GetObjectSize(h, o, &len), want);
    TT_RV(f->C_GetAttributeValue(h, o, &t, 1), want);
    TT_RV(f->C_SetAttributeValue(h, o, &t, 1), want);
    TT_RV(f->C_FindObjectsInit(h, &t, 1), want);
    TT_RV(f->C_FindObjects(h, &o2, 1, &len), want);
    TT_RV(f->C_FindObjectsFinal(h), want);
    TT_RV(f->C_EncryptInit(h, &m, o), want);
    TT_RV(f->C_Encrypt(h, buf, 1, buf, &len), want);
    TT_RV(f->C_EncryptUpdate(h, buf, 1, buf, &len), want);
    TT_RV(f->C_EncryptFinal(h, buf, &len), want);
    TT_RV(f->C_DecryptInit(h, &m, o), want);
    TT_RV(f->C_Decrypt(h, buf, 1, buf, &len), want);
    TT_RV(f->C_DecryptUpdate(h, buf, 1, buf, &len), want);
    TT_RV(f->C_DecryptFinal(h, buf, &len), want);
    TT_RV(f->C_DigestInit(h, &m), want);
    TT_RV(f->C_Digest(h, buf, 1, buf, &len), want);
    TT_RV(f->C_DigestUpdate(h, buf, 1), want);
    TT_RV(f->C_DigestKey(h, o), want);
    TT_RV(f->C_DigestFinal(h, buf, &len), want);
    TT_RV(f->C_SignInit(h, &m, o), want);
    TT_RV(f->C_Sign(h, buf, 1, buf, &len), want);
    TT_RV(f->C_SignUpdate(h, buf, 1), want);
    TT_RV(f->C_SignFinal(h, buf, &len), want);
    TT_RV(f->C_VerifyInit(h, &m, o), want);
    TT_RV(f->C_Verify(h, buf, 1, buf, 1), want);
    TT_RV(f->C_VerifyUpdate(h, buf, 1), want);
    TT_RV(f->C_VerifyFinal(h, buf, 1), want);
    TT_RV(f->C_GenerateKey(h, &m, &t, 1, &o2), want);
    CK_OBJECT_HANDLE o3;
    TT_RV(f->C_GenerateKeyPair(h, &m, &t, 1, &t, 1, &o2, &o3), want);
    TT_RV(f->C_WrapKey(h, &m, o, o, buf, &len), want);
    TT_RV(f->C_UnwrapKey(h, &m, o, buf, 1, &t, 1, &o2), want);
    TT_RV(f->C_DeriveKey(h, &m, o, &t, 1, &o2), want);
    TT_RV(f->C_SeedRandom(h, buf, 1), want);
    TT_RV(f->C_GenerateRandom(h, buf, 1), want);
    TT_RV(f->C_GetFunctionStatus(h), want);
    TT_RV(f->C_CancelFunction(h), want);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_invalid_slot)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_MECHANISM_INFO mi;
    CK_ULONG n;
    CK_SESSION_HANDLE s;
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    TT_RV(f->C_GetSlotInfo(BAD_SLOT, &si), CKR_SLOT_ID_INVALID);
    TT_RV(f->C_GetTokenInfo(BAD_SLOT, &ti), CKR_SLOT_ID_INVALID);
    TT_RV(f->C_GetMechanismList(BAD_SLOT, NULL, &n), CKR_SLOT_ID_INVALID);
    TT_RV(f->C_GetMechanismInfo(BAD_SLOT, CKM_ECDSA, &mi), CKR_SLOT_ID_INVALID);
    TT_RV(f->C_OpenSession(BAD_SLOT, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_SLOT_ID_INVALID);
    TT_RV(f->C_CloseAllSessions(BAD_SLOT), CKR_SLOT_ID_INVALID);
    TT_RV(f->C_InitToken(BAD_SLOT, (CK_UTF8CHAR_PTR) "12345678", 8, label), CKR_SLOT_ID_INVALID);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* NULL where the standard wants a pointer: CKR_ARGUMENTS_BAD, never a crash. */
START_TEST(t_null_pointers)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_free_slot(f);
    CK_SESSION_HANDLE s = tt_open(f, slot);
    CK_ULONG n = 1;
    CK_OBJECT_HANDLE o;
    CK_BYTE data[16] = {0};
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    CK_ATTRIBUTE null_value = {CKA_LABEL, NULL, 5};
    CK_UTF8CHAR pin[] = "1234";
    TT_RV(f->C_InitToken(slot, pin, 4, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_InitToken(slot, NULL, 4, pin), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_Login(s, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_SetPIN(s, NULL, 4, pin, 4), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_SetPIN(s, pin, 4, NULL, 4), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_GetSessionInfo(s, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_CreateObject(s, NULL, 1, &o), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_CreateObject(s, &t, 1, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_CreateObject(s, &null_value, 1, &o), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_CopyObject(s, 1, &t, 1, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_GetObjectSize(s, 1, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_GetAttributeValue(s, 1, NULL, 1), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_SetAttributeValue(s, 1, NULL, 1), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_FindObjectsInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_FindObjectsInit(s, &null_value, 1), CKR_ARGUMENTS_BAD);
    TT_OK(f->C_FindObjectsInit(s, NULL, 0));
    TT_RV(f->C_FindObjects(s, NULL, 1, &n), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_FindObjects(s, &o, 1, NULL), CKR_ARGUMENTS_BAD);
    TT_OK(f->C_FindObjectsFinal(s));
    TT_RV(f->C_DigestInit(s, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_SignInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_VerifyInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_EncryptInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_DecryptInit(s, NULL, 1), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_GenerateRandom(s, NULL, 16), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_GetOperationState(s, data, NULL), CKR_ARGUMENTS_BAD);
    TT_RV(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), CKR_ARGUMENTS_BAD);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* Object handles that do not exist, or are not objects at all. */
START_TEST(t_invalid_objects)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_free_slot(f);
    CK_SESSION_HANDLE s = tt_open(f, slot);
    CK_BYTE label[8];
    CK_ATTRIBUTE t = {CKA_LABEL, label, sizeof(label)};
    CK_ULONG size;
    CK_OBJECT_HANDLE copy;
    const CK_OBJECT_HANDLE bad[] = {0,
                                    1,
                                    0x12345,
                                    (CK_OBJECT_HANDLE)1 << 62 | 77,
                                    (CK_OBJECT_HANDLE)-1,
                                    (CK_OBJECT_HANDLE)1 << 56 | 0x10};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TT_RV(f->C_GetAttributeValue(s, bad[i], &t, 1), CKR_OBJECT_HANDLE_INVALID);
        TT_RV(f->C_SetAttributeValue(s, bad[i], &t, 1), CKR_OBJECT_HANDLE_INVALID);
        TT_RV(f->C_GetObjectSize(s, bad[i], &size), CKR_OBJECT_HANDLE_INVALID);
        TT_RV(f->C_DestroyObject(s, bad[i]), CKR_OBJECT_HANDLE_INVALID);
        TT_RV(f->C_CopyObject(s, bad[i], NULL, 0, &copy), CKR_OBJECT_HANDLE_INVALID);
        CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
        TT_RV(f->C_SignInit(s, &m, bad[i]), CKR_KEY_HANDLE_INVALID);
    }
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_not_supported)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_free_slot(f);
    CK_SESSION_HANDLE s = tt_open(f, slot);
    CK_BYTE state[64];
    CK_ULONG len = sizeof(state);
    CK_SLOT_ID event;
    TT_RV(f->C_GetFunctionStatus(s), CKR_FUNCTION_NOT_PARALLEL);
    TT_RV(f->C_CancelFunction(s), CKR_FUNCTION_NOT_PARALLEL);
    TT_RV(f->C_GetOperationState(s, state, &len), CKR_FUNCTION_NOT_SUPPORTED);
    TT_RV(f->C_SetOperationState(s, state, len, 0, 0), CKR_FUNCTION_NOT_SUPPORTED);
    TT_RV(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &event, NULL), CKR_NO_EVENT);
    TT_RV(f->C_WaitForSlotEvent(0, &event, NULL), CKR_FUNCTION_NOT_SUPPORTED);
    /* Login on the uninitialised token. */
    TT_RV(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_USER_PIN_NOT_INITIALIZED);
    TT_RV(f->C_Login(s, 7, (CK_UTF8CHAR_PTR) "1234", 4), CKR_USER_TYPE_INVALID);
    TT_RV(f->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/*
 * Every way of making a token object on the free slot's uninitialised token
 * in one session: refused with CKR_TOKEN_WRITE_PROTECTED (a key pair
 * generated there used to land on the no-PIN token, with handles the
 * caller's session could not use). Session objects are fine.
 */
static void free_slot_refuses_token_objects(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s)
{
    static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    /* P-256: OID 1.2.840.10045.3.1.7 (RFC 5480), DER 06 08 2A 86 48 CE 3D 03 01 07. */
    static const uint8_t p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
    CK_OBJECT_HANDLE pub = 0, priv = 0, h = 0;

    /* pkcs11-tool --keypairgen --key-type EC:prime256v1: token objects on both sides. */
    CK_MECHANISM ecgen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pubt[] = {{CKA_TOKEN, (void *)&yes, 1},
                           {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
                           {CKA_LABEL, "x", 1}};
    CK_ATTRIBUTE privt[] = {
        {CKA_TOKEN, (void *)&yes, 1}, {CKA_SIGN, (void *)&yes, 1}, {CKA_LABEL, "x", 1}};
    TT_RV(f->C_GenerateKeyPair(s, &ecgen, pubt, 3, privt, 3, &pub, &priv),
          CKR_TOKEN_WRITE_PROTECTED);
    /* Without CKA_TOKEN: the private key of a pair is a token object all the same. */
    TT_RV(f->C_GenerateKeyPair(s, &ecgen, pubt + 1, 1, NULL, 0, &pub, &priv),
          CKR_TOKEN_WRITE_PROTECTED);

    /* Importing a private key (a valid P-256 scalar: 42, far below the group order). */
    uint8_t d[32] = {0};
    d[31] = 42;
    CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE ec = CKK_EC;
    CK_ATTRIBUTE import[] = {{CKA_CLASS, &priv_cls, sizeof(priv_cls)},
                             {CKA_KEY_TYPE, &ec, sizeof(ec)},
                             {CKA_TOKEN, (void *)&yes, 1},
                             {CKA_SIGN, (void *)&yes, 1},
                             {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
                             {CKA_VALUE, d, sizeof(d)}};
    TT_RV(f->C_CreateObject(s, import, 6, &h), CKR_TOKEN_WRITE_PROTECTED);

    /* Stored objects and token secret keys. */
    CK_OBJECT_CLASS data_cls = CKO_DATA, secret_cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    uint8_t value[16] = {1, 2, 3};
    CK_ATTRIBUTE data[] = {{CKA_CLASS, &data_cls, sizeof(data_cls)},
                           {CKA_TOKEN, (void *)&yes, 1},
                           {CKA_VALUE, "memo", 4}};
    TT_RV(f->C_CreateObject(s, data, 3, &h), CKR_TOKEN_WRITE_PROTECTED);
    CK_ATTRIBUTE secret[] = {{CKA_CLASS, &secret_cls, sizeof(secret_cls)},
                             {CKA_KEY_TYPE, &aes, sizeof(aes)},
                             {CKA_TOKEN, (void *)&yes, 1},
                             {CKA_VALUE, value, sizeof(value)}};
    TT_RV(f->C_CreateObject(s, secret, 4, &h), CKR_TOKEN_WRITE_PROTECTED);

    /* C_GenerateKey: a token key is refused, a session key is made. */
    CK_ULONG len = 16;
    CK_MECHANISM aesgen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ATTRIBUTE gen[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
                          {CKA_UNWRAP, (void *)&yes, 1},
                          {CKA_TOKEN, (void *)&yes, 1}};
    TT_RV(f->C_GenerateKey(s, &aesgen, gen, 3, &h), CKR_TOKEN_WRITE_PROTECTED);
    gen[2].pValue = (void *)&no;
    CK_OBJECT_HANDLE session_key = 0;
    TT_OK(f->C_GenerateKey(s, &aesgen, gen, 3, &session_key));

    /* Copying, unwrapping and deriving into a token object. */
    CK_ATTRIBUTE to_token = {CKA_TOKEN, (void *)&yes, 1};
    TT_RV(f->C_CopyObject(s, session_key, &to_token, 1, &h), CKR_TOKEN_WRITE_PROTECTED);
    uint8_t wrapped[24] = {0};
    CK_MECHANISM wrap = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_ATTRIBUTE unwrap_t[] = {{CKA_CLASS, &secret_cls, sizeof(secret_cls)},
                               {CKA_KEY_TYPE, &aes, sizeof(aes)},
                               {CKA_TOKEN, (void *)&yes, 1}};
    TT_RV(f->C_UnwrapKey(s, &wrap, session_key, wrapped, sizeof(wrapped), unwrap_t, 3, &h),
          CKR_TOKEN_WRITE_PROTECTED);
    uint8_t point[65] = {0x04};
    CK_ECDH1_DERIVE_PARAMS dp = {CKD_NULL, 0, NULL, sizeof(point), point};
    CK_MECHANISM derive = {CKM_ECDH1_DERIVE, &dp, sizeof(dp)};
    TT_RV(f->C_DeriveKey(s, &derive, session_key, unwrap_t, 3, &h), CKR_TOKEN_WRITE_PROTECTED);
    TT_OK(f->C_DestroyObject(s, session_key));
}

START_TEST(t_free_slot_write_protected)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_free_slot(f);
    CK_TOKEN_INFO before, after;
    TT_OK(f->C_GetTokenInfo(slot, &before));
    CK_SESSION_HANDLE ro, rw;
    TT_OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
    free_slot_refuses_token_objects(f, ro);
    /* A write-protected token may refuse R/W sessions outright: that refuses it all too. */
    CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw);
    ck_assert_msg(rv == CKR_OK || rv == CKR_TOKEN_WRITE_PROTECTED, "C_OpenSession(R/W) = 0x%lx",
                  (unsigned long)rv);
    if (rv == CKR_OK)
        free_slot_refuses_token_objects(f, rw);

    /* Nothing reached the card: no key used, no token object on any token. */
    TT_OK(f->C_GetTokenInfo(slot, &after));
    ck_assert_uint_eq(after.ulFreePrivateMemory, before.ulFreePrivateMemory);
    CK_SLOT_ID ids[32];
    CK_ULONG n;
    tt_slots(f, ids, 32, &n);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_SESSION_HANDLE s;
        TT_OK(f->C_OpenSession(ids[i], CKF_SERIAL_SESSION, NULL, NULL, &s));
        CK_BBOOL yes = CK_TRUE;
        CK_ATTRIBUTE token = {CKA_TOKEN, &yes, 1};
        CK_OBJECT_HANDLE found[8];
        ck_assert_uint_eq(tt_find(f, s, &token, 1, found, 8), 0);
    }
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_slot_list_two_call);
    tcase_add_test(tc, t_fresh_token_info);
    tcase_add_test(tc, t_mechanisms);
    tcase_add_test(tc, t_sessions);
    tcase_add_test(tc, t_invalid_session);
    tcase_add_test(tc, t_invalid_slot);
    tcase_add_test(tc, t_null_pointers);
    tcase_add_test(tc, t_invalid_objects);
    tcase_add_test(tc, t_not_supported);
    tcase_add_test(tc, t_free_slot_write_protected);
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
