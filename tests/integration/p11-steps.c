/*
 * p11-steps.c - a PKCS#11 driver for t-pcsc-faults.sh: it dlopens the
 * module, opens a session on the token labelled TOKEN, then runs the steps
 * given on the command line in order and prints one line per step with the
 * CK_RV it got, for the test to check. Faults are injected around it
 * (pcsc-fault.c, another process holding the card); what matters is what
 * each call answers and that the process gets to its end.
 *
 *   p11-steps MODULE TOKEN PIN KEY DATA SIG STEP...
 *
 * Steps, and what each prints:
 *   login      C_Login as the user with PIN: "login <CKR>"
 *   signinit   find the private key labelled KEY and C_SignInit with it
 *              (SHA-256 with RSA PKCS#1 v1.5, or ECDSA with SHA-256):
 *              "signinit <CKR>"
 *   sign       a signinit unless one is pending, then C_Sign the contents of
 *              DATA (at most 64 KiB); SIG receives the signature:
 *              "sign <CKR> <seconds> s", the time that C_Sign alone took
 *   wait=FILE  wait (at most 60 s) until FILE exists: "waited" or
 *              "wait timed out"
 *   reopen     close the session, find the token again (a new slot list)
 *              and open a new session: "reopen <CKR>"
 *
 * It starts with "initialize <CKR>" and "open <CKR>" and ends with
 * "finalize <CKR>". Exit status: 0 when every step ran and C_Finalize
 * worked (whatever the steps answered), 1 when the session could not be
 * opened, a wait timed out or C_Finalize failed, 2 on bad usage.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define MAX_DATA 65536
#define MAX_SIG  1024

static CK_FUNCTION_LIST *p11;

static const char *rv_name(CK_RV rv)
{
#define RV(x)                                                                                      \
    {                                                                                              \
        x, #x                                                                                      \
    }
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
        RV(CKR_OK),
        RV(CKR_GENERAL_ERROR),
        RV(CKR_FUNCTION_FAILED),
        RV(CKR_ARGUMENTS_BAD),
        RV(CKR_DEVICE_ERROR),
        RV(CKR_DEVICE_MEMORY),
        RV(CKR_DEVICE_REMOVED),
        RV(CKR_KEY_HANDLE_INVALID),
        RV(CKR_OBJECT_HANDLE_INVALID),
        RV(CKR_OPERATION_ACTIVE),
        RV(CKR_OPERATION_NOT_INITIALIZED),
        RV(CKR_PIN_INCORRECT),
        RV(CKR_SESSION_CLOSED),
        RV(CKR_SESSION_HANDLE_INVALID),
        RV(CKR_SLOT_ID_INVALID),
        RV(CKR_TOKEN_NOT_PRESENT),
        RV(CKR_TOKEN_NOT_RECOGNIZED),
        RV(CKR_USER_ALREADY_LOGGED_IN),
        RV(CKR_USER_NOT_LOGGED_IN),
        RV(CKR_CRYPTOKI_NOT_INITIALIZED),
    };
#undef RV
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].rv == rv)
            return names[i].name;
    return "CKR_?";
}

static void say(const char *step, CK_RV rv)
{
    printf("%s %s\n", step, rv_name(rv));
    fflush(stdout);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The slot whose token has this label (CKR_TOKEN_NOT_PRESENT when none). */
static CK_RV find_token(const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_RV rv = p11->C_GetSlotList(CK_TRUE, slots, &n);
    for (CK_ULONG i = 0; rv == CKR_OK && i < n; i++) {
        CK_TOKEN_INFO info;
        size_t len = sizeof(info.label);
        if (p11->C_GetTokenInfo(slots[i], &info) != CKR_OK)
            continue;
        while (len > 0 && info.label[len - 1] == ' ')
            len--;
        if (len == strlen(label) && memcmp(info.label, label, len) == 0) {
            *slot = slots[i];
            return CKR_OK;
        }
    }
    return rv == CKR_OK ? CKR_TOKEN_NOT_PRESENT : rv;
}

static CK_RV open_session(const char *token, CK_SESSION_HANDLE *s)
{
    CK_SLOT_ID slot;
    CK_RV rv = find_token(token, &slot);
    if (rv == CKR_OK)
        rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, s);
    return rv;
}

/* The one private key labelled KEY, and the mechanism for its type. */
static CK_RV find_key(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *key,
                      CK_MECHANISM_TYPE *mech)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
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
    CK_RV final_rv = p11->C_FindObjectsFinal(s);
    if (rv == CKR_OK)
        rv = final_rv;
    if (rv != CKR_OK)
        return rv;
    if (n != 1)
        return CKR_KEY_HANDLE_INVALID;
    CK_KEY_TYPE type = 0;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, &type, sizeof(type)};
    rv = p11->C_GetAttributeValue(s, found[0], &a, 1);
    *key = found[0];
    *mech = type == CKK_RSA ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256;
    return rv;
}

/* C_SignInit with the private key labelled KEY. */
static CK_RV sign_init(CK_SESSION_HANDLE s, const char *key)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_MECHANISM m = {0, NULL, 0};
    CK_RV rv = find_key(s, key, &h, &m.mechanism);
    if (rv == CKR_OK)
        rv = p11->C_SignInit(s, &m, h);
    return rv;
}

/* C_Sign (after C_SignInit): prints the result and how long C_Sign took; writes SIG. */
static void sign_step(CK_SESSION_HANDLE s, CK_RV init_rv, const CK_BYTE *data, CK_ULONG len,
                      const char *sig_path)
{
    CK_BYTE sig[MAX_SIG];
    CK_ULONG sig_len = sizeof(sig);
    double t0 = now();
    CK_RV rv = init_rv == CKR_OK ? p11->C_Sign(s, (CK_BYTE *)data, len, sig, &sig_len) : init_rv;
    printf("sign %s %.3f s\n", rv_name(rv), now() - t0);
    fflush(stdout);
    if (rv != CKR_OK)
        return;
    FILE *f = fopen(sig_path, "wb");
    if (f == NULL || fwrite(sig, 1, sig_len, f) != sig_len || fclose(f) != 0)
        fprintf(stderr, "p11-steps: cannot write %s\n", sig_path);
}

/* Wait until the file exists; 0, or -1 after 60 s. */
static int wait_for(const char *path)
{
    struct stat st;
    for (int i = 0; i < 6000; i++) {
        if (stat(path, &st) == 0)
            return 0;
        usleep(10000);
    }
    return -1;
}

static int load(const char *module)
{
    void *h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList get =
        h != NULL ? (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList") : NULL;
    if (get == NULL || get(&p11) != CKR_OK) {
        fprintf(stderr, "p11-steps: cannot load %s: %s\n", module,
                h ? "no C_GetFunctionList" : dlerror());
        return -1;
    }
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_RV rv = p11->C_Initialize(&args);
    say("initialize", rv);
    return rv == CKR_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: %s MODULE TOKEN PIN KEY DATA SIG STEP...\n", argv[0]);
        return 2;
    }
    const char *token = argv[2], *pin = argv[3], *key = argv[4], *sig = argv[6];
    static CK_BYTE data[MAX_DATA];
    FILE *f = fopen(argv[5], "rb");
    size_t len = f != NULL ? fread(data, 1, sizeof(data), f) : 0;
    int unread = f == NULL || ferror(f) || !feof(f) || len == 0;
    if (f != NULL)
        fclose(f);
    if (unread) {
        fprintf(stderr, "p11-steps: cannot read %s (1 to %d bytes)\n", argv[5], MAX_DATA);
        return 2;
    }
    if (load(argv[1]) != 0)
        return 1;
    CK_SESSION_HANDLE s;
    CK_RV rv = open_session(token, &s);
    say("open", rv);
    int status = rv == CKR_OK ? 0 : 1;
    int pending = 0; /* a signinit that no sign used yet, and what it answered */
    CK_RV init_rv = CKR_OK;
    for (int i = 7; i < argc && status == 0; i++) {
        const char *step = argv[i];
        if (strcmp(step, "login") == 0) {
            say("login", p11->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)strlen(pin)));
        } else if (strcmp(step, "signinit") == 0) {
            init_rv = sign_init(s, key);
            pending = 1;
            say("signinit", init_rv);
        } else if (strcmp(step, "sign") == 0) {
            sign_step(s, pending ? init_rv : sign_init(s, key), data, (CK_ULONG)len, sig);
            pending = 0;
        } else if (strncmp(step, "wait=", 5) == 0) {
            status = wait_for(step + 5) == 0 ? 0 : 1;
            printf("%s\n", status == 0 ? "waited" : "wait timed out");
            fflush(stdout);
        } else if (strcmp(step, "reopen") == 0) {
            p11->C_CloseSession(s); /* may be gone already: whatever it answers */
            say("reopen", open_session(token, &s));
        } else {
            fprintf(stderr, "p11-steps: unknown step '%s'\n", step);
            status = 2;
        }
    }
    rv = p11->C_Finalize(NULL);
    say("finalize", rv);
    return status != 0 ? status : rv == CKR_OK ? 0 : 1;
}
