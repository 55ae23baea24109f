/*
 * test-token-threads.c - eight threads using the module at once (OS
 * locking): token information, searches and ECDSA signatures on the card,
 * each in its own session, all without error, and every signature valid
 * (checked here with OpenSSL against testlib's copy of the public key).
 */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>

#include "test-token-util.h"

#define THREADS 8
#define ROUNDS  40

typedef struct {
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    EVP_PKEY *public_key;
    int index;
    int failures;
    char what[128];
} worker;

static int note_failure(worker *w, const char *what, CK_RV rv)
{
    if (w->failures++ == 0)
        snprintf(w->what, sizeof(w->what), "%s: 0x%lx", what, (unsigned long)rv);
    return -1;
}

/* An ECDSA signature r | s (32 + 32 bytes) over digest, checked with OpenSSL. */
static int signature_valid(EVP_PKEY *pub, const uint8_t *digest, const uint8_t *sig)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    int ok = 0;
    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL;
        int len = i2d_ECDSA_SIG(es, &der);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
        ok = len > 0 && ctx != NULL && EVP_PKEY_verify_init(ctx) > 0 &&
             EVP_PKEY_verify(ctx, der, (size_t)len, digest, 32) == 1;
        EVP_PKEY_CTX_free(ctx);
    }
    BN_free(r);
    BN_free(s);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return ok;
}

static void *run(void *arg)
{
    worker *w = arg;
    CK_FUNCTION_LIST *f = w->f;
    CK_SESSION_HANDLE s;
    CK_RV rv = f->C_OpenSession(w->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        note_failure(w, "C_OpenSession", rv);
        return NULL;
    }
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, "key1", 4}};
    for (int i = 0; i < ROUNDS; i++) {
        CK_TOKEN_INFO ti;
        CK_OBJECT_HANDLE key = 0;
        CK_ULONG n = 0;
        if ((rv = f->C_GetTokenInfo(w->slot, &ti)) != CKR_OK) {
            note_failure(w, "C_GetTokenInfo", rv);
            continue;
        }
        if ((rv = f->C_FindObjectsInit(s, t, 2)) != CKR_OK ||
            (rv = f->C_FindObjects(s, &key, 1, &n)) != CKR_OK ||
            (rv = f->C_FindObjectsFinal(s)) != CKR_OK || n != 1) {
            note_failure(w, "find", rv);
            continue;
        }
        uint8_t digest[32], sig[64];
        CK_ULONG sig_len = sizeof(sig);
        memset(digest, w->index * ROUNDS + i, sizeof(digest));
        CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
        if ((rv = f->C_SignInit(s, &m, key)) != CKR_OK ||
            (rv = f->C_Sign(s, digest, sizeof(digest), sig, &sig_len)) != CKR_OK) {
            note_failure(w, "sign", rv);
            continue;
        }
        if (sig_len != 64 || !signature_valid(w->public_key, digest, sig))
            note_failure(w, "signature invalid", CKR_OK);
    }
    rv = f->C_CloseSession(s);
    if (rv != CKR_OK)
        note_failure(w, "C_CloseSession", rv);
    return NULL;
}

START_TEST(t_threads)
{
    tt_env e;
    tl_key key;
    tl_key_spec spec;
    tt_env_with_card(&e, NULL);
    memset(&spec, 0, sizeof(spec));
    spec.pin = "1234";
    tl_provision_key(e.card, &spec, &key);
    CK_FUNCTION_LIST *f = tt_module();
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    TT_OK(f->C_Initialize(&args));
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    /* One session stays open so that the login outlives the workers' sessions. */
    CK_SESSION_HANDLE main_session = tt_open(f, slot);
    TT_OK(f->C_Login(main_session, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4));
    pthread_t tid[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].f = f;
        w[i].slot = slot;
        w[i].public_key = key.public_key[0];
        w[i].index = i;
        ck_assert_int_eq(pthread_create(&tid[i], NULL, run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < THREADS; i++)
        ck_assert_msg(w[i].failures == 0, "thread %d: %d failures, first %s", i, w[i].failures,
                      w[i].what);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, t_threads);
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
