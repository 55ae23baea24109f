/*
 * p11-pcsc.c - a driver for the PC/SC integration test (t-pcsc.sh): it
 * dlopens the module and exercises what only a card that can come and go
 * shows, printing one line per finding for the test script to check.
 *
 *   sign MODULE TOKEN PIN KEY THREADS ROUNDS [BARRIER_DIR PROCESSES]
 *       log in once, then THREADS threads with a session each sign ROUNDS
 *       times with the private key labelled KEY (SHA-256 RSA PKCS#1 or
 *       ECDSA with SHA-256) and verify every signature with the public key.
 *       Prints "signed N in S s: R/s" and exits 0 only when all succeeded.
 *       With BARRIER_DIR, the process waits before logging out until
 *       PROCESSES processes have finished signing (the card's login state
 *       is shared by every application using it, so the first to log out
 *       would log the others out too).
 *   loop MODULE TOKEN PIN KEY STOP_FILE
 *       sign in a loop until STOP_FILE exists. When a call fails (the card
 *       was removed) it prints "error <CKR>" once per kind of failure, then
 *       keeps trying to recover: find the token again, open a new session,
 *       log in, find the key; after CKR_USER_NOT_LOGGED_IN it first logs in
 *       again on the same session ("relogin <CKR>"). Before closing a failed
 *       session it prints
 *       "session CKR_OK public" (still open, no longer logged in) or
 *       "session <CKR>" (what C_GetSessionInfo answered). Prints "recovered"
 *       when it signs again, and at the end "ok N errors M recovered R".
 *   relogin MODULE TOKEN PIN KEY GO_FILE
 *       log in and sign once ("ready CKR_OK"), wait for GO_FILE, then call
 *       C_Login on the same session and sign: "login <CKR>", "sign <CKR>".
 *       After a card reset by another application both must be CKR_OK.
 *   wait MODULE EVENTS TIMEOUT
 *       a baseline C_GetSlotList, then C_WaitForSlotEvent (blocking) EVENTS
 *       times, printing "event 0x<slot> present|absent [label]" for each;
 *       another thread calls C_Finalize after TIMEOUT seconds, which must
 *       end the wait ("finalize woke the wait" and exit status 3).
 *   finalize MODULE
 *       C_WaitForSlotEvent(CKF_DONT_BLOCK) must answer CKR_NO_EVENT; then a
 *       blocking wait in a second thread must end with
 *       CKR_CRYPTOKI_NOT_INITIALIZED when C_Finalize is called.
 *
 * Exit status: 0 success, 1 a failure (printed on stderr), 2 usage.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define MAX_THREADS 32
#define MAX_SIG     1024

static CK_FUNCTION_LIST *p11;

static const char *rv_name(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return "CKR_OK";
    case CKR_GENERAL_ERROR:
        return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED:
        return "CKR_FUNCTION_FAILED";
    case CKR_ARGUMENTS_BAD:
        return "CKR_ARGUMENTS_BAD";
    case CKR_NO_EVENT:
        return "CKR_NO_EVENT";
    case CKR_DEVICE_ERROR:
        return "CKR_DEVICE_ERROR";
    case CKR_DEVICE_REMOVED:
        return "CKR_DEVICE_REMOVED";
    case CKR_FUNCTION_NOT_SUPPORTED:
        return "CKR_FUNCTION_NOT_SUPPORTED";
    case CKR_KEY_HANDLE_INVALID:
        return "CKR_KEY_HANDLE_INVALID";
    case CKR_OBJECT_HANDLE_INVALID:
        return "CKR_OBJECT_HANDLE_INVALID";
    case CKR_OPERATION_NOT_INITIALIZED:
        return "CKR_OPERATION_NOT_INITIALIZED";
    case CKR_PIN_INCORRECT:
        return "CKR_PIN_INCORRECT";
    case CKR_SESSION_CLOSED:
        return "CKR_SESSION_CLOSED";
    case CKR_SESSION_HANDLE_INVALID:
        return "CKR_SESSION_HANDLE_INVALID";
    case CKR_SIGNATURE_INVALID:
        return "CKR_SIGNATURE_INVALID";
    case CKR_SLOT_ID_INVALID:
        return "CKR_SLOT_ID_INVALID";
    case CKR_TOKEN_NOT_PRESENT:
        return "CKR_TOKEN_NOT_PRESENT";
    case CKR_TOKEN_NOT_RECOGNIZED:
        return "CKR_TOKEN_NOT_RECOGNIZED";
    case CKR_USER_NOT_LOGGED_IN:
        return "CKR_USER_NOT_LOGGED_IN";
    case CKR_USER_ALREADY_LOGGED_IN:
        return "CKR_USER_ALREADY_LOGGED_IN";
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return "CKR_CRYPTOKI_NOT_INITIALIZED";
    default:
        return "CKR_?";
    }
}

static void fail(const char *what, CK_RV rv)
{
    fprintf(stderr, "p11-pcsc: %s: %s (0x%lx)\n", what, rv_name(rv), (unsigned long)rv);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load(const char *module)
{
    void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "p11-pcsc: dlopen %s: %s\n", module, dlerror());
        return -1;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
    if (get == NULL || get(&p11) != CKR_OK) {
        fprintf(stderr, "p11-pcsc: no C_GetFunctionList in %s\n", module);
        return -1;
    }
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_RV rv = p11->C_Initialize(&args);
    if (rv != CKR_OK) {
        fail("C_Initialize", rv);
        return -1;
    }
    return 0;
}

/* The token label without its padding. */
static void token_label(const CK_TOKEN_INFO *info, char out[33])
{
    size_t n = sizeof(info->label);
    memcpy(out, info->label, n);
    while (n > 0 && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
}

/* The slot whose token has this label (CKR_TOKEN_NOT_PRESENT when none). */
static CK_RV find_token(const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_RV rv = p11->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return rv;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        char l[33];
        if (p11->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        token_label(&info, l);
        if (strcmp(l, label) == 0) {
            *slot = slots[i];
            return CKR_OK;
        }
    }
    return CKR_TOKEN_NOT_PRESENT;
}

static CK_RV find_key(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label,
                      CK_OBJECT_HANDLE *out)
{
    CK_ATTRIBUTE tmpl[2] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)},
    };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CK_RV rv = p11->C_FindObjectsInit(s, tmpl, 2);
    if (rv != CKR_OK)
        return rv;
    rv = p11->C_FindObjects(s, found, 2, &n);
    CK_RV rv2 = p11->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = rv2;
    if (rv == CKR_OK && n != 1)
        rv = CKR_KEY_HANDLE_INVALID;
    if (rv == CKR_OK)
        *out = found[0];
    return rv;
}

/* SHA-256 with PKCS#1 v1.5 for RSA keys, ECDSA with SHA-256 for EC keys. */
static CK_RV mechanism_for(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_MECHANISM *m)
{
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &type, sizeof(type)};
    CK_RV rv = p11->C_GetAttributeValue(s, key, &a, 1);
    if (rv != CKR_OK)
        return rv;
    m->mechanism = type == CKK_RSA ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256;
    m->pParameter = NULL;
    m->ulParameterLen = 0;
    return CKR_OK;
}

/* One signature, verified with the public key. */
static CK_RV sign_once(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE priv,
                       CK_OBJECT_HANDLE pub, unsigned long round)
{
    char msg[64];
    int len = snprintf(msg, sizeof(msg), "p11-pcsc round %lu", round);
    CK_BYTE sig[MAX_SIG];
    CK_ULONG sig_len = sizeof(sig);
    CK_RV rv = p11->C_SignInit(s, m, priv);
    if (rv == CKR_OK)
        rv = p11->C_Sign(s, (CK_BYTE *)msg, (CK_ULONG)len, sig, &sig_len);
    if (rv != CKR_OK || pub == CK_INVALID_HANDLE)
        return rv;
    rv = p11->C_VerifyInit(s, m, pub);
    if (rv == CKR_OK)
        rv = p11->C_Verify(s, (CK_BYTE *)msg, (CK_ULONG)len, sig, sig_len);
    return rv;
}

/* ---- sign ----------------------------------------------------------------- */

typedef struct {
    CK_SLOT_ID slot;
    const char *key;
    unsigned long rounds;
    unsigned long ok;
    int index;
} worker;

static void *sign_worker(void *arg)
{
    worker *w = arg;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv, pub;
    CK_MECHANISM m;
    CK_RV rv = p11->C_OpenSession(w->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        fail("C_OpenSession", rv);
        return NULL;
    }
    rv = find_key(s, CKO_PRIVATE_KEY, w->key, &priv);
    if (rv == CKR_OK)
        rv = find_key(s, CKO_PUBLIC_KEY, w->key, &pub);
    if (rv == CKR_OK)
        rv = mechanism_for(s, priv, &m);
    if (rv != CKR_OK) {
        fail("finding the key pair", rv);
        p11->C_CloseSession(s);
        return NULL;
    }
    for (unsigned long i = 0; i < w->rounds; i++) {
        rv = sign_once(s, &m, priv, pub, i);
        if (rv != CKR_OK) {
            fprintf(stderr, "p11-pcsc: thread %d round %lu: %s (0x%lx)\n", w->index, i, rv_name(rv),
                    (unsigned long)rv);
            break;
        }
        w->ok++;
    }
    p11->C_CloseSession(s);
    return NULL;
}

/* Files named done.* in dir. */
static long count_done(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "done.", 5) == 0;
    closedir(d);
    return n;
}

/* Announce this process is done and wait (at most 120 s) until `count` are. */
static int barrier(const char *dir, long count)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/done.%ld", dir, (long)getpid());
    FILE *f = fopen(path, "w");
    if (f == NULL || fclose(f) != 0) {
        fprintf(stderr, "p11-pcsc: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < 1200; i++) {
        if (count_done(dir) >= count)
            return 0;
        usleep(100000);
    }
    fprintf(stderr, "p11-pcsc: the other processes did not finish within 120 s\n");
    return -1;
}

static int cmd_sign(char **argv, int argc)
{
    const char *token = argv[0], *pin = argv[1], *key = argv[2];
    int threads = atoi(argv[3]);
    unsigned long rounds = strtoul(argv[4], NULL, 10);
    const char *barrier_dir = argc >= 7 ? argv[5] : NULL;
    long processes = argc >= 7 ? atol(argv[6]) : 0;
    if (threads < 1 || threads > MAX_THREADS || rounds == 0)
        return 2;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE login;
    CK_RV rv = find_token(token, &slot);
    if (rv == CKR_OK)
        rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &login);
    if (rv == CKR_OK)
        rv = p11->C_Login(login, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)strlen(pin));
    if (rv != CKR_OK) {
        fail("finding the token and logging in", rv);
        return 1;
    }
    worker w[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){slot, key, rounds, 0, i};
        if (pthread_create(&tid[i], NULL, sign_worker, &w[i]) != 0) {
            fprintf(stderr, "p11-pcsc: pthread_create failed\n");
            return 1;
        }
    }
    unsigned long ok = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        ok += w[i].ok;
    }
    double secs = now() - t0;
    printf("signed %lu in %.3f s: %.1f/s\n", ok, secs, secs > 0 ? (double)ok / secs : 0.0);
    fflush(stdout);
    int status = ok == rounds * (unsigned long)threads ? 0 : 1;
    if (barrier_dir != NULL && barrier(barrier_dir, processes) != 0)
        status = 1;
    rv = p11->C_Finalize(NULL);
    if (rv != CKR_OK) {
        fail("C_Finalize", rv);
        status = 1;
    }
    return status;
}

/* ---- loop: sign while the card goes and comes back --------------------------------- */

typedef struct {
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE priv;
    CK_MECHANISM m;
    int ready;
} loop_state;

/* Find the token, open a session, log in, find the key. */
static CK_RV loop_connect(loop_state *st, const char *token, const char *pin, const char *key)
{
    CK_SLOT_ID slot;
    CK_RV rv = find_token(token, &slot);
    if (rv != CKR_OK)
        return rv;
    rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &st->s);
    if (rv != CKR_OK)
        return rv;
    rv = p11->C_Login(st->s, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)strlen(pin));
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
        rv = CKR_OK;
    if (rv == CKR_OK)
        rv = find_key(st->s, CKO_PRIVATE_KEY, key, &st->priv);
    if (rv == CKR_OK)
        rv = mechanism_for(st->s, st->priv, &st->m);
    if (rv != CKR_OK) {
        p11->C_CloseSession(st->s);
        return rv;
    }
    st->ready = 1;
    return CKR_OK;
}

static int cmd_loop(char **argv)
{
    const char *token = argv[0], *pin = argv[1], *key = argv[2], *stop = argv[3];
    loop_state st = {0};
    unsigned long ok = 0, errors = 0, recovered = 0, round = 0;
    CK_RV seen[16];
    size_t nseen = 0;
    int failing = 0;
    struct stat sb;
    while (stat(stop, &sb) != 0) {
        CK_RV rv = st.ready ? CKR_OK : loop_connect(&st, token, pin, key);
        if (rv == CKR_OK)
            rv = sign_once(st.s, &st.m, st.priv, CK_INVALID_HANDLE, round++);
        if (rv == CKR_OK) {
            ok++;
            if (failing) {
                recovered++;
                printf("recovered after %lu errors\n", errors);
            }
            if (ok == 1 || ok % 100 == 0)
                printf("signed %lu\n", ok);
            fflush(stdout);
            failing = 0;
            continue;
        }
        errors++;
        failing = 1;
        size_t i = 0;
        while (i < nseen && seen[i] != rv)
            i++;
        if (i == nseen && nseen < 16) {
            seen[nseen++] = rv;
            printf("error %s\n", rv_name(rv));
            fflush(stdout);
        }
        if (st.ready && rv == CKR_USER_NOT_LOGGED_IN) {
            /* The card forgot the PIN (reset): log in again on the same session. */
            CK_RV lrv = p11->C_Login(st.s, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)strlen(pin));
            printf("relogin %s\n", rv_name(lrv));
            fflush(stdout);
            if (lrv == CKR_OK)
                continue;
        }
        if (st.ready) {
            /* What became of the session: still there (and logged in?) or closed. */
            CK_SESSION_INFO si;
            CK_RV srv = p11->C_GetSessionInfo(st.s, &si);
            int user = srv == CKR_OK &&
                       (si.state == CKS_RO_USER_FUNCTIONS || si.state == CKS_RW_USER_FUNCTIONS);
            if (srv != CKR_OK || !user) {
                if (srv == CKR_OK)
                    printf("session CKR_OK public\n");
                else
                    printf("session %s\n", rv_name(srv));
                fflush(stdout);
            }
            p11->C_CloseSession(st.s); /* may be gone already: whatever it answers */
            st.ready = 0;
        }
        usleep(50000);
    }
    printf("ok %lu errors %lu recovered %lu\n", ok, errors, recovered);
    CK_RV rv = p11->C_Finalize(NULL);
    if (rv != CKR_OK) {
        fail("C_Finalize", rv);
        return 1;
    }
    return ok > 0 ? 0 : 1;
}

/* ---- relogin: a reset the module has not seen yet -------------------------------- */

/*
 * Log in and sign, wait for GO_FILE (the test resets the card meanwhile),
 * then C_Login again before anything else touches the card: the module must
 * notice the reset and accept the login ("login CKR_OK"), after which a
 * signature works ("sign CKR_OK").
 */
static int cmd_relogin(char **argv)
{
    const char *token = argv[0], *pin = argv[1], *key = argv[2], *go = argv[3];
    loop_state st = {0};
    CK_RV rv = loop_connect(&st, token, pin, key);
    if (rv == CKR_OK)
        rv = sign_once(st.s, &st.m, st.priv, CK_INVALID_HANDLE, 0);
    printf("ready %s\n", rv_name(rv));
    fflush(stdout);
    if (rv != CKR_OK)
        return 1;
    struct stat sb;
    for (int i = 0; i < 600 && stat(go, &sb) != 0; i++)
        usleep(100000);
    rv = p11->C_Login(st.s, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)strlen(pin));
    printf("login %s\n", rv_name(rv));
    rv = sign_once(st.s, &st.m, st.priv, CK_INVALID_HANDLE, 1);
    printf("sign %s\n", rv_name(rv));
    fflush(stdout);
    CK_RV frv = p11->C_Finalize(NULL);
    return rv == CKR_OK && frv == CKR_OK ? 0 : 1;
}

/* ---- wait and finalize ------------------------------------------------------------ */

typedef struct {
    unsigned timeout;
    int finalized;
} finalizer;

static void *finalize_later(void *arg)
{
    finalizer *f = arg;
    sleep(f->timeout);
    f->finalized = 1;
    CK_RV rv = p11->C_Finalize(NULL);
    if (rv != CKR_OK)
        fail("C_Finalize from another thread", rv);
    return NULL;
}

static void print_event(CK_SLOT_ID slot)
{
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_RV rv = p11->C_GetSlotInfo(slot, &si);
    int present = rv == CKR_OK && (si.flags & CKF_TOKEN_PRESENT);
    char label[33] = "";
    if (present && p11->C_GetTokenInfo(slot, &ti) == CKR_OK)
        token_label(&ti, label);
    printf("event 0x%lx %s %s\n", (unsigned long)slot, present ? "present" : "absent", label);
    fflush(stdout);
}

static int cmd_wait(char **argv)
{
    long events = atol(argv[0]);
    finalizer f = {(unsigned)atoi(argv[1]), 0};
    CK_ULONG n = 0;
    CK_RV rv = p11->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK) {
        fail("C_GetSlotList", rv);
        return 1;
    }
    printf("slots %lu\n", (unsigned long)n);
    fflush(stdout);
    pthread_t tid;
    if (pthread_create(&tid, NULL, finalize_later, &f) != 0)
        return 1;
    for (long i = 0; i < events; i++) {
        CK_SLOT_ID slot;
        rv = p11->C_WaitForSlotEvent(0, &slot, NULL);
        if (rv == CKR_CRYPTOKI_NOT_INITIALIZED && f.finalized) {
            printf("finalize woke the wait\n");
            fflush(stdout);
            pthread_join(tid, NULL);
            return 3;
        }
        if (rv != CKR_OK) {
            fail("C_WaitForSlotEvent", rv);
            return 1;
        }
        print_event(slot);
    }
    printf("all %ld events\n", events);
    fflush(stdout);
    return 0; /* the finalizing thread is still asleep: exiting ends it */
}

typedef struct {
    CK_RV rv;
    double ended;
} waiter;

static void *wait_blocking(void *arg)
{
    waiter *w = arg;
    CK_SLOT_ID slot;
    w->rv = p11->C_WaitForSlotEvent(0, &slot, NULL);
    w->ended = now();
    return NULL;
}

static int cmd_finalize(void)
{
    CK_SLOT_ID slot;
    CK_ULONG n = 0;
    CK_RV rv = p11->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv == CKR_OK)
        rv = p11->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL);
    printf("dont-block %s\n", rv_name(rv));
    waiter w = {CKR_OK, 0};
    pthread_t tid;
    if (pthread_create(&tid, NULL, wait_blocking, &w) != 0)
        return 1;
    sleep(1);
    double t0 = now();
    rv = p11->C_Finalize(NULL);
    double t1 = now();
    pthread_join(tid, NULL);
    printf("finalize %s after %.3f s; the wait returned %s after %.3f s\n", rv_name(rv), t1 - t0,
           rv_name(w.rv), w.ended - t0);
    return rv == CKR_OK && w.rv == CKR_CRYPTOKI_NOT_INITIALIZED ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: p11-pcsc sign|loop|relogin|wait|finalize MODULE ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    int nargs = argc - 3;
    if (load(argv[2]) != 0)
        return 1;
    if (strcmp(cmd, "sign") == 0 && (nargs == 5 || nargs == 7))
        return cmd_sign(argv + 3, nargs);
    if (strcmp(cmd, "loop") == 0 && nargs == 4)
        return cmd_loop(argv + 3);
    if (strcmp(cmd, "relogin") == 0 && nargs == 4)
        return cmd_relogin(argv + 3);
    if (strcmp(cmd, "wait") == 0 && nargs == 2)
        return cmd_wait(argv + 3);
    if (strcmp(cmd, "finalize") == 0 && nargs == 0)
        return cmd_finalize();
    fprintf(stderr, "p11-pcsc: bad arguments for %s\n", cmd);
    return 2;
}
