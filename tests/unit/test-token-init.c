/*
 * test-token-init.c - the module's life cycle: C_Initialize's four locking
 * cases and its argument checks, ALREADY_INITIALIZED / NOT_INITIALIZED,
 * C_GetInfo, the configuration file (errors, defaults, APDU trace) and
 * fork(): the child sees CKR_CRYPTOKI_NOT_INITIALIZED until it initialises
 * again, the parent is not disturbed.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-token-util.h"

/* ---- application mutex callbacks that count their calls ---------------- */
static int n_create, n_destroy, n_lock, n_unlock;

static CK_RV app_create(void **m)
{
    static int token;
    n_create++;
    *m = &token;
    return CKR_OK;
}
static CK_RV app_destroy(void *m)
{
    (void)m;
    n_destroy++;
    return CKR_OK;
}
static CK_RV app_lock(void *m)
{
    (void)m;
    n_lock++;
    return CKR_OK;
}
static CK_RV app_unlock(void *m)
{
    (void)m;
    n_unlock++;
    return CKR_OK;
}

static void reset_counts(void)
{
    n_create = n_destroy = n_lock = n_unlock = 0;
}

static CK_C_INITIALIZE_ARGS callbacks(CK_FLAGS flags)
{
    CK_C_INITIALIZE_ARGS a;
    memset(&a, 0, sizeof(a));
    a.CreateMutex = app_create;
    a.DestroyMutex = app_destroy;
    a.LockMutex = app_lock;
    a.UnlockMutex = app_unlock;
    a.flags = flags;
    return a;
}

/* A few calls that take the module lock. */
static void exercise(CK_FUNCTION_LIST *f)
{
    CK_ULONG n = 0;
    CK_INFO info;
    TT_OK(f->C_GetInfo(&info));
    TT_OK(f->C_GetSlotList(CK_TRUE, NULL, &n));
    ck_assert_uint_ge(n, 1);
}

START_TEST(t_not_initialized)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_module();
    CK_FUNCTION_LIST *again = NULL;
    CK_ULONG n;
    CK_INFO info;
    CK_SESSION_HANDLE s;
    TT_RV(f->C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD);
    TT_OK(f->C_GetFunctionList(&again));
    ck_assert_ptr_eq(again, f);
    TT_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    TT_RV(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    TT_RV(f->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_CRYPTOKI_NOT_INITIALIZED);
    TT_RV(f->C_CloseSession(1), CKR_CRYPTOKI_NOT_INITIALIZED);
    TT_RV(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    tt_env_free(&e);
}
END_TEST

START_TEST(t_already_initialized)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_module();
    TT_OK(f->C_Initialize(NULL));
    TT_RV(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    exercise(f);
    TT_RV(f->C_Finalize((void *)1), CKR_ARGUMENTS_BAD);
    TT_OK(f->C_Finalize(NULL));
    TT_RV(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    CK_INFO info;
    TT_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* And once more, as applications that reload do. */
    TT_OK(f->C_Initialize(NULL));
    exercise(f);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_bad_arguments)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_module();
    CK_C_INITIALIZE_ARGS a;
    memset(&a, 0, sizeof(a));
    a.pReserved = &a;
    TT_RV(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    /* Some callbacks but not all four. */
    memset(&a, 0, sizeof(a));
    a.CreateMutex = app_create;
    a.LockMutex = app_lock;
    TT_RV(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    a.flags = CKF_OS_LOCKING_OK;
    TT_RV(f->C_Initialize(&a), CKR_ARGUMENTS_BAD);
    /* The failures left the module uninitialised. */
    CK_INFO info;
    TT_RV(f->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
    tt_env_free(&e);
}
END_TEST

/* No flag and no callbacks: the application promises not to share the module. */
START_TEST(t_locking_none)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_module();
    CK_C_INITIALIZE_ARGS a;
    memset(&a, 0, sizeof(a));
    a.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS;
    TT_OK(f->C_Initialize(&a));
    exercise(f);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_locking_os)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_module();
    CK_C_INITIALIZE_ARGS a;
    memset(&a, 0, sizeof(a));
    a.flags = CKF_OS_LOCKING_OK;
    TT_OK(f->C_Initialize(&a));
    exercise(f);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* Callbacks only: the module must lock with them, balanced, and destroy its mutex. */
START_TEST(t_locking_app_callbacks)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_module();
    reset_counts();
    CK_C_INITIALIZE_ARGS a = callbacks(0);
    TT_OK(f->C_Initialize(&a));
    ck_assert_int_ge(n_create, 1);
    exercise(f);
    ck_assert_int_ge(n_lock, 2);
    ck_assert_int_eq(n_lock, n_unlock);
    TT_OK(f->C_Finalize(NULL));
    ck_assert_int_eq(n_lock, n_unlock);
    ck_assert_int_eq(n_destroy, n_create);
    tt_env_free(&e);
}
END_TEST

/* Callbacks and CKF_OS_LOCKING_OK: the module prefers OS locking. */
START_TEST(t_locking_both_prefers_os)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_module();
    reset_counts();
    CK_C_INITIALIZE_ARGS a = callbacks(CKF_OS_LOCKING_OK);
    TT_OK(f->C_Initialize(&a));
    exercise(f);
    TT_OK(f->C_Finalize(NULL));
    ck_assert_int_eq(n_create + n_lock + n_unlock + n_destroy, 0);
    tt_env_free(&e);
}
END_TEST

static void assert_padded(const CK_UTF8CHAR *p, size_t n, const char *start)
{
    ck_assert(memcmp(p, start, strlen(start)) == 0);
    for (size_t i = strlen(start); i < n; i++)
        ck_assert_int_eq(p[i], ' ');
}

START_TEST(t_get_info)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_INFO info;
    TT_RV(f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    TT_OK(f->C_GetInfo(&info));
    ck_assert_int_eq(info.cryptokiVersion.major, 2);
    ck_assert_int_eq(info.cryptokiVersion.minor, 40);
    assert_padded(info.manufacturerID, sizeof(info.manufacturerID), "SKS");
    ck_assert_int_eq(info.flags, 0);
    /* configure.ac says 0.1.0. */
    ck_assert_int_eq(info.libraryVersion.major, 0);
    ck_assert_int_eq(info.libraryVersion.minor, 1);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

START_TEST(t_bad_config)
{
    tt_env e;
    tt_env_init(&e, "transport = carrier-pigeon");
    CK_FUNCTION_LIST *f = tt_module();
    TT_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    /* A line without '=' and an unknown key are errors too. */
    FILE *c = fopen(e.conf, "w");
    fprintf(c, "state_dir %s\n", e.state);
    fclose(c);
    TT_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    c = fopen(e.conf, "w");
    fprintf(c, "state_dir = %s\ncolour = blue\n", e.state);
    fclose(c);
    TT_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    /* A configuration that is named but missing. */
    setenv("SKS_PKCS11_CONF", "/nonexistent/sks-pkcs11.conf", 1);
    TT_RV(f->C_Initialize(NULL), CKR_GENERAL_ERROR);
    /* Fixed: comments, blanks, all keys. */
    setenv("SKS_PKCS11_CONF", e.conf, 1);
    c = fopen(e.conf, "w");
    fprintf(c,
            "# comment\n\n  state_dir = %s   # trailing comment\ntransport = both\n"
            "log_level = error\n",
            e.state);
    fclose(c);
    TT_OK(f->C_Initialize(NULL));
    exercise(f);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* Without SKS_PKCS11_CONF the card lives under $XDG_DATA_HOME/sks/card. */
START_TEST(t_default_state_dir)
{
    tt_env e;
    tt_env_init(&e, NULL);
    unsetenv("SKS_PKCS11_CONF");
    setenv("XDG_DATA_HOME", e.dir, 1);
    CK_FUNCTION_LIST *f = tt_init();
    exercise(f);
    TT_OK(f->C_Finalize(NULL));
    char path[512];
    snprintf(path, sizeof(path), "%s/sks/card/card.db", e.dir);
    ck_assert_int_eq(access(path, F_OK), 0);
    unsetenv("XDG_DATA_HOME");
    tt_env_free(&e);
}
END_TEST

/* The APDU trace holds the SELECT of the SKS application and its answer. */
START_TEST(t_apdu_trace)
{
    tt_env e;
    char extra[400], trace[350];
    snprintf(trace, sizeof(trace), "/tmp/sks-token-trace-%d", (int)getpid());
    snprintf(extra, sizeof(extra), "apdu_trace = %s", trace);
    tt_env_init(&e, extra);
    CK_FUNCTION_LIST *f = tt_init();
    exercise(f);
    TT_OK(f->C_Finalize(NULL));
    FILE *t = fopen(trace, "r");
    ck_assert_ptr_nonnull(t);
    char line[256];
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), t));
    /* ISO 7816-4 SELECT by AID F0 53 4B 53 01 00 01 (docs/protocol.md 4). */
    ck_assert_msg(strncmp(line, "> 00A4040007F0534B53010001", 26) == 0, "first line: %s", line);
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), t));
    ck_assert_str_eq(line, "< 9000\n");
    fclose(t);
    unlink(trace);
    tt_env_free(&e);
}
END_TEST

/* Everything the child checks; its exit status is the number of failures. */
static int child_checks(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE parent_session)
{
    int bad = 0;
    CK_ULONG n = 0;
    CK_INFO info;
    CK_SESSION_INFO si;
    CK_SESSION_HANDLE s;
    bad += f->C_GetInfo(&info) != CKR_CRYPTOKI_NOT_INITIALIZED;
    bad += f->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED;
    bad += f->C_GetSessionInfo(parent_session, &si) != CKR_CRYPTOKI_NOT_INITIALIZED;
    bad += f->C_Finalize(NULL) != CKR_CRYPTOKI_NOT_INITIALIZED;
    bad += f->C_Initialize(NULL) != CKR_OK;
    bad += f->C_Initialize(NULL) != CKR_CRYPTOKI_ALREADY_INITIALIZED;
    bad += f->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n < 1;
    /* The parent's session does not exist here. */
    bad += f->C_GetSessionInfo(parent_session, &si) != CKR_SESSION_HANDLE_INVALID;
    CK_SLOT_ID ids[8];
    n = 8;
    bad += f->C_GetSlotList(CK_TRUE, ids, &n) != CKR_OK;
    bad += f->C_OpenSession(ids[0], CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK;
    bad += f->C_GetSessionInfo(s, &si) != CKR_OK || si.state != CKS_RO_PUBLIC_SESSION;
    bad += f->C_Finalize(NULL) != CKR_OK;
    return bad;
}

START_TEST(t_fork)
{
    tt_env e;
    tt_env_init(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID ids[8];
    CK_ULONG n;
    tt_slots(f, ids, 8, &n);
    CK_SESSION_HANDLE s = tt_open(f, ids[0]);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(child_checks(f, s));
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %d failed checks",
                  WEXITSTATUS(status));
    /* The parent carries on with its session. */
    CK_SESSION_INFO si;
    TT_OK(f->C_GetSessionInfo(s, &si));
    ck_assert_uint_eq(si.slotID, ids[0]);
    CK_TOKEN_INFO ti;
    TT_OK(f->C_GetTokenInfo(ids[0], &ti));
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-init");
    TCase *tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_not_initialized);
    tcase_add_test(tc, t_already_initialized);
    tcase_add_test(tc, t_bad_arguments);
    tcase_add_test(tc, t_locking_none);
    tcase_add_test(tc, t_locking_os);
    tcase_add_test(tc, t_locking_app_callbacks);
    tcase_add_test(tc, t_locking_both_prefers_os);
    tcase_add_test(tc, t_get_info);
    tcase_add_test(tc, t_bad_config);
    tcase_add_test(tc, t_default_state_dir);
    tcase_add_test(tc, t_apdu_trace);
    tcase_add_test(tc, t_fork);
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
