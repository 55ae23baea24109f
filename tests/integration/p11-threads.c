/*
 * p11-threads.c - a stress driver for the PKCS#11 module: it dlopens the
 * module, initialises it with CKF_OS_LOCKING_OK, logs in once on the token
 * with the given label, and runs N threads that each open their own session
 * and, for a fixed number of rounds, find the key pair by label, sign a
 * message and verify the signature (and check that a signature over other
 * data is rejected). Any unexpected return value counts as a failure.
 *
 * Used by tests/integration/t-stress.sh both for threads in one process and
 * for several processes sharing one card. With OUT_DIR it also writes the
 * last message and signature of thread 0 (msg.bin, sig.bin) so the caller
 * can verify one signature with openssl, independently of the module.
 *
 * usage: p11-threads MODULE TOKEN_LABEL PIN KEY_LABEL THREADS ROUNDS [OUT_DIR]
 * Exit status 0 only when every signature and verification succeeded.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#define MAX_THREADS 64
#define MAX_SIG     1024

typedef struct {
    CK_FUNCTION_LIST *p11;
    CK_SLOT_ID slot;
    const char *key_label;
    const char *out_dir;
    unsigned long rounds;
    int index;
    unsigned long ok;
    unsigned long failed;
} worker;

/* Names of the return values the driver may meet, for its messages. */
static const struct {
    CK_RV rv;
    const char *name;
} rv_names[] = {
    {CKR_OK, "CKR_OK"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
    {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
    {CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID"},
    {CKR_SIGNATURE_LEN_RANGE, "CKR_SIGNATURE_LEN_RANGE"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
};

static const char *rv_name(CK_RV rv)
{
    for (size_t i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
        if (rv_names[i].rv == rv)
            return rv_names[i].name;
    return "CKR_?";
}

static void report(const worker *w, const char *what, CK_RV rv)
{
    fprintf(stderr, "p11-threads: thread %d: %s returned %s (0x%lx)\n", w->index, what, rv_name(rv),
            (unsigned long)rv);
}

/* The token label as a C string, without the padding spaces. */
static void token_label(const CK_TOKEN_INFO *info, char out[33])
{
    size_t n = sizeof(info->label);
    memcpy(out, info->label, n);
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

/* Find exactly one object of a class with a label (and an ID when given). */
static CK_RV find_one(CK_FUNCTION_LIST *p11, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                      const char *label, const CK_BYTE *id, CK_ULONG id_len, CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE tmpl[3] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
        {CKA_ID, (void *)id, id_len},
    };
    CK_ULONG n_tmpl = id != NULL ? 3 : 2;
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n_found = 0;
    CK_RV rv = p11->C_FindObjectsInit(s, tmpl, n_tmpl);
    if (rv != CKR_OK)
        return rv;
    rv = p11->C_FindObjects(s, found, 2, &n_found);
    CK_RV rv_final = p11->C_FindObjectsFinal(s);
    if (rv != CKR_OK)
        return rv;
    if (rv_final != CKR_OK)
        return rv_final;
    if (n_found != 1)
        return CKR_GENERAL_ERROR;
    *out = found[0];
    return CKR_OK;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -1;
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t written = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && written == len) ? 0 : -1;
}

/* One signature with the two-call size convention, then its verification. */
static int sign_and_verify(worker *w, CK_SESSION_HANDLE s, CK_MECHANISM *mech,
                           CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub, unsigned long round)
{
    CK_FUNCTION_LIST *p11 = w->p11;
    char msg[96];
    int msg_len = snprintf(msg, sizeof(msg), "sks stress: thread %d round %lu", w->index, round);
    CK_BYTE sig[MAX_SIG];
    CK_ULONG sig_len = 0;
    CK_RV rv = p11->C_SignInit(s, mech, priv);
    if (rv != CKR_OK) {
        report(w, "C_SignInit", rv);
        return -1;
    }
    rv = p11->C_Sign(s, (CK_BYTE *)msg, (CK_ULONG)msg_len, NULL, &sig_len);
    if (rv != CKR_OK || sig_len == 0 || sig_len > sizeof(sig)) {
        report(w, "C_Sign (length)", rv);
        return -1;
    }
    rv = p11->C_Sign(s, (CK_BYTE *)msg, (CK_ULONG)msg_len, sig, &sig_len);
    if (rv != CKR_OK) {
        report(w, "C_Sign", rv);
        return -1;
    }
    rv = p11->C_VerifyInit(s, mech, pub);
    if (rv == CKR_OK)
        rv = p11->C_Verify(s, (CK_BYTE *)msg, (CK_ULONG)msg_len, sig, sig_len);
    if (rv != CKR_OK) {
        report(w, "C_Verify", rv);
        return -1;
    }
    if (round % 8 == 0) { /* the same signature over other data must fail */
        msg[0] ^= 1;
        rv = p11->C_VerifyInit(s, mech, pub);
        if (rv == CKR_OK)
            rv = p11->C_Verify(s, (CK_BYTE *)msg, (CK_ULONG)msg_len, sig, sig_len);
        msg[0] ^= 1;
        if (rv != CKR_SIGNATURE_INVALID) {
            report(w, "C_Verify of a wrong message (expected CKR_SIGNATURE_INVALID)", rv);
            return -1;
        }
    }
    if (w->out_dir != NULL && w->index == 0 && round + 1 == w->rounds) {
        if (write_file(w->out_dir, "msg.bin", msg, (size_t)msg_len) != 0 ||
            write_file(w->out_dir, "sig.bin", sig, sig_len) != 0) {
            fprintf(stderr, "p11-threads: cannot write to %s: %s\n", w->out_dir, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    CK_FUNCTION_LIST *p11 = w->p11;
    CK_SESSION_HANDLE s;
    CK_RV rv = p11->C_OpenSession(w->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        report(w, "C_OpenSession", rv);
        w->failed = w->rounds;
        return NULL;
    }
    for (unsigned long round = 0; round < w->rounds; round++) {
        CK_OBJECT_HANDLE priv, pub;
        CK_BYTE id[256];
        CK_KEY_TYPE key_type = 0;
        CK_ATTRIBUTE attrs[2] = {
            {CKA_ID, id, sizeof(id)},
            {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
        };
        rv = find_one(p11, s, CKO_PRIVATE_KEY, w->key_label, NULL, 0, &priv);
        if (rv == CKR_OK)
            rv = p11->C_GetAttributeValue(s, priv, attrs, 2);
        if (rv == CKR_OK)
            rv = find_one(p11, s, CKO_PUBLIC_KEY, w->key_label, id, attrs[0].ulValueLen, &pub);
        if (rv != CKR_OK) {
            report(w, "finding the key pair", rv);
            w->failed++;
            continue;
        }
        CK_MECHANISM mech = {key_type == CKK_EC ? CKM_ECDSA_SHA256 : CKM_SHA256_RSA_PKCS, NULL, 0};
        if (sign_and_verify(w, s, &mech, priv, pub, round) == 0)
            w->ok++;
        else
            w->failed++;
    }
    rv = p11->C_CloseSession(s);
    if (rv != CKR_OK) {
        report(w, "C_CloseSession", rv);
        w->failed++;
    }
    return NULL;
}

static int parse_count(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long n_threads, rounds;
    if (argc < 7 || argc > 8 || parse_count(argv[5], MAX_THREADS, &n_threads) != 0 ||
        parse_count(argv[6], 1000000, &rounds) != 0) {
        fprintf(stderr,
                "usage: p11-threads MODULE TOKEN_LABEL PIN KEY_LABEL THREADS(1..%d) "
                "ROUNDS [OUT_DIR]\n",
                MAX_THREADS);
        return 2;
    }
    const char *token = argv[2], *pin = argv[3];
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "p11-threads: dlopen: %s\n", dlerror());
        return 1;
    }
    CK_C_GetFunctionList get_list;
    *(void **)&get_list = dlsym(lib, "C_GetFunctionList");
    CK_FUNCTION_LIST *p11 = NULL;
    if (get_list == NULL || get_list(&p11) != CKR_OK || p11 == NULL) {
        fprintf(stderr, "p11-threads: no usable C_GetFunctionList in %s\n", argv[1]);
        return 1;
    }
    CK_C_INITIALIZE_ARGS init = {NULL, NULL, NULL, NULL, CKF_OS_LOCKING_OK, NULL};
    CK_RV rv = p11->C_Initialize(&init);
    if (rv != CKR_OK) {
        fprintf(stderr, "p11-threads: C_Initialize returned %s\n", rv_name(rv));
        return 1;
    }

    int status = 1;
    CK_SLOT_ID slots[64];
    CK_ULONG n_slots = 64;
    CK_SLOT_ID slot = 0;
    int found = 0;
    rv = p11->C_GetSlotList(CK_TRUE, slots, &n_slots);
    for (CK_ULONG i = 0; rv == CKR_OK && i < n_slots && !found; i++) {
        CK_TOKEN_INFO info;
        char label[33];
        if (p11->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        token_label(&info, label);
        if (strcmp(label, token) == 0) {
            slot = slots[i];
            found = 1;
        }
    }
    if (!found) {
        fprintf(stderr, "p11-threads: no token labelled '%s' (C_GetSlotList: %s)\n", token,
                rv_name(rv));
        goto out;
    }
    CK_SESSION_HANDLE login_session;
    rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &login_session);
    if (rv == CKR_OK)
        rv = p11->C_Login(login_session, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)strlen(pin));
    if (rv != CKR_OK) {
        fprintf(stderr, "p11-threads: login: %s\n", rv_name(rv));
        goto out;
    }

    worker workers[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    unsigned long started = 0;
    for (unsigned long i = 0; i < n_threads; i++) {
        workers[i] = (worker){.p11 = p11,
                              .slot = slot,
                              .key_label = argv[4],
                              .out_dir = argc == 8 ? argv[7] : NULL,
                              .rounds = rounds,
                              .index = (int)i};
        if (pthread_create(&threads[i], NULL, run_worker, &workers[i]) != 0) {
            fprintf(stderr, "p11-threads: cannot start thread %lu\n", i);
            break;
        }
        started++;
    }
    unsigned long ok = 0, failed = 0;
    for (unsigned long i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        ok += workers[i].ok;
        failed += workers[i].failed;
    }
    rv = p11->C_Logout(login_session);
    if (rv != CKR_OK) {
        fprintf(stderr, "p11-threads: C_Logout: %s\n", rv_name(rv));
        failed++;
    }
    printf("p11-threads: %lu threads x %lu rounds: %lu signatures verified, %lu failed\n",
           n_threads, rounds, ok, failed);
    status = (started == n_threads && failed == 0 && ok == n_threads * rounds) ? 0 : 1;
out:
    rv = p11->C_Finalize(NULL);
    if (rv != CKR_OK) {
        fprintf(stderr, "p11-threads: C_Finalize: %s\n", rv_name(rv));
        status = 1;
    }
    return status;
}
