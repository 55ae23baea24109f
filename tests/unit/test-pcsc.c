/*
 * test-pcsc.c - what of the PC/SC transport can be checked without pcscd:
 *
 *  - what PC/SC result codes mean (removed card, reset card, no card,
 *    vanished reader, stopped service) and the CKR each meaning becomes;
 *  - the card table that ties card indices (and with them slot IDs and
 *    object handles) to reader names, whatever order readers come in;
 *  - the backend and the module with the PC/SC service unreachable
 *    (PCSCLITE_CSOCK_NAME names a socket that does not exist): no reader,
 *    no slot, the embedded card unaffected with `transport = both`, one log
 *    line, CKF_DONT_BLOCK answers CKR_NO_EVENT, and C_Finalize ends a
 *    blocking C_WaitForSlotEvent.
 *
 * The expected codes come from the PKCS#11 standard's descriptions
 * (CKR_DEVICE_REMOVED: "the token was removed from its slot during the
 * execution of the function"; CKR_TOKEN_NOT_PRESENT: "the token was not
 * present in its slot at the time that the function was invoked") and
 * pcsc-lite's documentation of each SCARD_* code. The real reader paths run
 * in tests/integration/t-pcsc.sh against an isolated pcscd.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <winscard.h>

#include "test-token-util.h"
#include "token/tok.h"
#include "transport/transport.h"

/* ---- result codes --------------------------------------------------------------- */

START_TEST(t_scard_meaning)
{
    ck_assert_int_eq(sks_pcsc_status(SCARD_S_SUCCESS), SKS_TRANSPORT_OK);
    /* Reset by another application, or powered down: still there, state lost. */
    ck_assert_int_eq(sks_pcsc_status(SCARD_W_RESET_CARD), SKS_TRANSPORT_RESET);
    ck_assert_int_eq(sks_pcsc_status(SCARD_W_UNPOWERED_CARD), SKS_TRANSPORT_RESET);
    /* Nothing usable in the reader. */
    ck_assert_int_eq(sks_pcsc_status(SCARD_E_NO_SMARTCARD), SKS_TRANSPORT_NO_CARD);
    ck_assert_int_eq(sks_pcsc_status(SCARD_W_UNRESPONSIVE_CARD), SKS_TRANSPORT_NO_CARD);
    /* The card, its reader or the service went away. */
    ck_assert_int_eq(sks_pcsc_status(SCARD_W_REMOVED_CARD), SKS_TRANSPORT_REMOVED);
    ck_assert_int_eq(sks_pcsc_status(SCARD_E_READER_UNAVAILABLE), SKS_TRANSPORT_REMOVED);
    ck_assert_int_eq(sks_pcsc_status(SCARD_E_UNKNOWN_READER), SKS_TRANSPORT_REMOVED);
    ck_assert_int_eq(sks_pcsc_status(SCARD_E_NO_SERVICE), SKS_TRANSPORT_REMOVED);
    ck_assert_int_eq(sks_pcsc_status(SCARD_E_SERVICE_STOPPED), SKS_TRANSPORT_REMOVED);
    /* Anything else is a failure of the link, not an event. */
    ck_assert_int_eq(sks_pcsc_status(SCARD_E_NOT_TRANSACTED), SKS_TRANSPORT_ERROR);
    ck_assert_int_eq(sks_pcsc_status(SCARD_E_TIMEOUT), SKS_TRANSPORT_ERROR);
    ck_assert_int_eq(sks_pcsc_status(SCARD_E_SHARING_VIOLATION), SKS_TRANSPORT_ERROR);
    ck_assert_int_eq(sks_pcsc_status(0x7FFFFFFF), SKS_TRANSPORT_ERROR);
}
END_TEST

START_TEST(t_transport_ckr)
{
    ck_assert_uint_eq(tok_transport_rv(SKS_TRANSPORT_OK), CKR_OK);
    ck_assert_uint_eq(tok_transport_rv(SKS_TRANSPORT_NO_CARD), CKR_TOKEN_NOT_PRESENT);
    ck_assert_uint_eq(tok_transport_rv(SKS_TRANSPORT_REMOVED), CKR_DEVICE_REMOVED);
    ck_assert_uint_eq(tok_transport_rv(SKS_TRANSPORT_ERROR), CKR_DEVICE_ERROR);
    /* A reset the module could not recover from within the call. */
    ck_assert_uint_eq(tok_transport_rv(SKS_TRANSPORT_RESET), CKR_DEVICE_ERROR);
    ck_assert_uint_eq(tok_transport_rv(-99), CKR_DEVICE_ERROR);
}
END_TEST

/* The whole way from what pcscd says to what the application gets. */
START_TEST(t_card_events_to_ckr)
{
    ck_assert_uint_eq(tok_transport_rv(sks_pcsc_status(SCARD_W_REMOVED_CARD)), CKR_DEVICE_REMOVED);
    ck_assert_uint_eq(tok_transport_rv(sks_pcsc_status(SCARD_E_READER_UNAVAILABLE)),
                      CKR_DEVICE_REMOVED);
    ck_assert_uint_eq(tok_transport_rv(sks_pcsc_status(SCARD_E_NO_SMARTCARD)),
                      CKR_TOKEN_NOT_PRESENT);
    ck_assert_uint_eq(tok_transport_rv(sks_pcsc_status(SCARD_E_NO_SERVICE)), CKR_DEVICE_REMOVED);
}
END_TEST

/* ---- the card table -------------------------------------------------------------- */

START_TEST(t_cardtab_stable)
{
    tok_cardtab t;
    memset(&t, 0, sizeof(t));
    ck_assert_int_eq(tok_cardtab_index(&t, "embedded", 1), 0);
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:Reader B 00 00", 1), 1);
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:Reader A 00 00", 1), 2);
    /* Listed again in another order, with one reader missing: same indices. */
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:Reader A 00 00", 1), 2);
    ck_assert_int_eq(tok_cardtab_index(&t, "embedded", 1), 0);
    /* A reader that went away and came back keeps its index; a new one gets the next. */
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:Reader C 00 00", 1), 3);
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:Reader B 00 00", 1), 1);
    /* Looking up without adding. */
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:Reader B 00 00", 0), 1);
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:Reader D 00 00", 0), -1);
    ck_assert_uint_eq(t.n, 4);
    /* Names are compared whole: a prefix is another reader. */
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:Reader B 00", 0), -1);
    ck_assert_int_eq(tok_cardtab_index(&t, NULL, 1), -1);
    ck_assert_int_eq(tok_cardtab_index(NULL, "embedded", 1), -1);
    tok_cardtab_free(&t);
    ck_assert_uint_eq(t.n, 0);
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:Reader A 00 00", 0), -1);
}
END_TEST

START_TEST(t_cardtab_full)
{
    tok_cardtab t;
    memset(&t, 0, sizeof(t));
    char name[64];
    for (int i = 0; i < TOK_MAX_CARDS; i++) {
        snprintf(name, sizeof(name), "pcsc:Reader %02d", i);
        ck_assert_int_eq(tok_cardtab_index(&t, name, 1), i);
    }
    ck_assert_int_eq(tok_cardtab_index(&t, "pcsc:one too many", 1), -1);
    /* Everything known is still found. */
    for (int i = 0; i < TOK_MAX_CARDS; i++) {
        snprintf(name, sizeof(name), "pcsc:Reader %02d", i);
        ck_assert_int_eq(tok_cardtab_index(&t, name, 1), i);
    }
    /* The slot ID carries the index in bits 24..31: every index fits. */
    ck_assert_uint_eq(TOK_SLOT_ID(TOK_MAX_CARDS - 1, TOK_SLOT_LOW_FREE) >> 24,
                      (CK_ULONG)(TOK_MAX_CARDS - 1));
    tok_cardtab_free(&t);
}
END_TEST

/* ---- no PC/SC service --------------------------------------------------------------- */

START_TEST(t_backend_without_service)
{
    sks_pcsc *p = sks_pcsc_new();
    ck_assert_ptr_nonnull(p);
    char err[256] = "";
    ck_assert_int_eq(sks_pcsc_scan(p, err, sizeof(err)), -1);
    ck_assert_msg(err[0] != '\0', "a reason is given");
    ck_assert_uint_eq(sks_pcsc_reader_count(p), 0);
    ck_assert_ptr_null(sks_pcsc_reader_at(p, 0));
    ck_assert_ptr_null(sks_pcsc_reader_find(p, "Virtual PCD 00 00"));
    ck_assert_ptr_null(sks_pcsc_wait_new(p));
    int status = SKS_TRANSPORT_OK;
    sks_transport *t = sks_transport_pcsc_open(p, "Virtual PCD 00 00", &status, err, sizeof(err));
    ck_assert_ptr_null(t);
    ck_assert_int_lt(status, 0);
    ck_assert_int_eq(sks_transport_is_pcsc(NULL), 0);
    sks_pcsc_free(p);
    sks_pcsc_free(NULL);
}
END_TEST

typedef struct {
    CK_FUNCTION_LIST *f;
    CK_RV rv;
    int done;
} waiter;

static void *wait_blocking(void *arg)
{
    waiter *w = arg;
    CK_SLOT_ID slot;
    w->rv = w->f->C_WaitForSlotEvent(0, &slot, NULL);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A blocking wait with no event to come: C_Finalize must end it promptly. */
static void finalize_ends_wait(CK_FUNCTION_LIST *f)
{
    waiter w = {f, CKR_OK, 0};
    pthread_t tid;
    ck_assert_int_eq(pthread_create(&tid, NULL, wait_blocking, &w), 0);
    usleep(300000);
    ck_assert_msg(!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE), "the wait blocks");
    double t0 = now();
    TT_OK(f->C_Finalize(NULL));
    pthread_join(tid, NULL);
    ck_assert_uint_eq(w.rv, CKR_CRYPTOKI_NOT_INITIALIZED);
    ck_assert_msg(now() - t0 < 3.0, "C_Finalize took %.2f s", now() - t0);
}

START_TEST(t_module_pcsc_without_service)
{
    tt_env e;
    tt_env_init(&e, "transport = pcsc");
    CK_FUNCTION_LIST *f = tt_module();
    TT_OK(f->C_Initialize(NULL));
    CK_ULONG n = 99;
    TT_OK(f->C_GetSlotList(CK_FALSE, NULL, &n));
    ck_assert_uint_eq(n, 0);
    CK_SLOT_INFO info;
    TT_RV(f->C_GetSlotInfo(TOK_SLOT_ID(0, TOK_SLOT_LOW_FREE), &info), CKR_SLOT_ID_INVALID);
    CK_SLOT_ID slot;
    TT_RV(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT);
    finalize_ends_wait(f);
    /* Initialised again, the module works as before. */
    TT_OK(f->C_Initialize(NULL));
    TT_RV(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* The log lines that mention the unreachable service. */
static int count_lines(const char *path, const char *needle)
{
    FILE *in = fopen(path, "r");
    if (in == NULL)
        return -1;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof(line), in) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(in);
    return n;
}

START_TEST(t_module_both_without_service)
{
    tt_env e;
    char log[300];
    tt_env_init(&e, "transport = both\nlog_level = info");
    snprintf(log, sizeof(log), "%s/module.log", e.dir);
    FILE *conf = fopen(e.conf, "a");
    ck_assert_ptr_nonnull(conf);
    fprintf(conf, "log_file = %s\n", log);
    fclose(conf);

    CK_FUNCTION_LIST *f = tt_module();
    TT_OK(f->C_Initialize(NULL));
    CK_SLOT_ID ids[8];
    CK_ULONG n = 0;
    for (int i = 0; i < 3; i++)
        tt_slots(f, ids, 8, &n);
    /* The embedded card's free slot, nothing from PC/SC. */
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(ids[0] >> 24, 0);
    CK_SLOT_INFO info;
    TT_OK(f->C_GetSlotInfo(ids[0], &info));
    ck_assert(info.flags & CKF_TOKEN_PRESENT);
    ck_assert(!(info.flags & CKF_REMOVABLE_DEVICE));
    ck_assert(!(info.flags & CKF_HW_SLOT));
    CK_SLOT_ID slot;
    TT_RV(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT);
    /* The embedded card still works: a session on its free slot. */
    CK_SESSION_HANDLE s = tt_open(f, ids[0]);
    CK_SESSION_INFO si;
    TT_OK(f->C_GetSessionInfo(s, &si));
    ck_assert_uint_eq(si.slotID, ids[0]);
    finalize_ends_wait(f);
    ck_assert_int_eq(count_lines(log, "PC/SC service not available"), 1);
    tt_env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("pcsc");
    TCase *tc = tcase_create("mapping");
    tcase_add_test(tc, t_scard_meaning);
    tcase_add_test(tc, t_transport_ckr);
    tcase_add_test(tc, t_card_events_to_ckr);
    suite_add_tcase(s, tc);
    tc = tcase_create("cardtab");
    tcase_add_test(tc, t_cardtab_stable);
    tcase_add_test(tc, t_cardtab_full);
    suite_add_tcase(s, tc);
    tc = tcase_create("no-service");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, t_backend_without_service);
    tcase_add_test(tc, t_module_pcsc_without_service);
    tcase_add_test(tc, t_module_both_without_service);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* A socket nobody listens on: the machine's pcscd, if any, is never asked. */
    setenv("PCSCLITE_CSOCK_NAME", "/nonexistent/sks-test/pcscd.comm", 1);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
