/*
 * bench_util.c - the shared pieces of sks-bench (bench_util.h): clock,
 * medians, result records, PKCS#11 modules through dlopen, the threaded
 * timed loop, RSS and directory sizes.
 */
#define _XOPEN_SOURCE 700
#include "bench_util.h"

#include <dlfcn.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void bench_result(const char *key, double value)
{
    printf("%s %.6g\n", key, value);
    fflush(stdout);
}

void bench_result_na(const char *key, const char *reason)
{
    printf("%s n/a:", key);
    for (const char *p = reason; *p != '\0'; p++)
        putchar(*p == '\n' || *p == '\r' ? ' ' : *p);
    putchar('\n');
    fflush(stdout);
}

void bench_note(const char *fmt, ...)
{
    va_list ap;
    fputs("sks-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- PKCS#11 modules -------------------------------------------------- */

int bench_p11_load(bench_p11 *m, const char *path)
{
    memset(m, 0, sizeof(*m));
    m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (m->dl == NULL) {
        bench_note("dlopen %s: %s", path, dlerror());
        return -1;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    if (get == NULL || get(&m->f) != CKR_OK || m->f == NULL) {
        bench_note("%s: no usable C_GetFunctionList", path);
        dlclose(m->dl);
        m->dl = NULL;
        return -1;
    }
    return 0;
}

CK_RV bench_p11_init(bench_p11 *m)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = m->f->C_Initialize(&args);
    if (rv == CKR_OK)
        m->initialized = 1;
    return rv;
}

void bench_p11_unload(bench_p11 *m)
{
    if (m->initialized)
        m->f->C_Finalize(NULL);
    m->initialized = 0;
    if (m->dl != NULL)
        dlclose(m->dl);
    m->dl = NULL;
    m->f = NULL;
}

CK_RV bench_p11_slot(bench_p11 *m, const char *label, CK_SLOT_ID *slot)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CK_RV rv = m->f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return rv;
    size_t len = strlen(label);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (m->f->C_GetTokenInfo(slots[i], &info) != CKR_OK || len > sizeof(info.label))
            continue;
        int match = memcmp(info.label, label, len) == 0;
        for (size_t j = len; match && j < sizeof(info.label); j++)
            match = info.label[j] == ' ';
        if (match) {
            *slot = slots[i];
            return CKR_OK;
        }
    }
    return CKR_TOKEN_NOT_PRESENT;
}

CK_RV bench_p11_open(bench_p11 *m, CK_SLOT_ID slot, const char *pin, CK_SESSION_HANDLE *s)
{
    CK_RV rv = m->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, s);
    if (rv != CKR_OK || pin == NULL)
        return rv;
    rv = m->f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin));
    return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

CK_RV bench_p11_find(bench_p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label,
                     const void *id, size_t id_len, CK_OBJECT_HANDLE *out, CK_ULONG max,
                     CK_ULONG *n)
{
    CK_ATTRIBUTE t[3];
    CK_ULONG nt = 0;
    t[nt++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    if (label != NULL)
        t[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)};
    if (id != NULL)
        t[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, (CK_ULONG)id_len};
    *n = 0;
    CK_RV rv = m->f->C_FindObjectsInit(s, t, nt);
    if (rv != CKR_OK)
        return rv;
    rv = m->f->C_FindObjects(s, out, max, n);
    CK_RV rv_final = m->f->C_FindObjectsFinal(s);
    return rv != CKR_OK ? rv : rv_final;
}

const char *bench_rv_name(CK_RV rv)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
        {CKR_OK, "CKR_OK"},
        {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
        {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
        {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
        {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
        {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
        {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
        {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
        {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
        {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
        {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
        {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
        {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
        {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].rv == rv)
            return names[i].name;
    return "CKR_?";
}

/* ---- The timed loop on N threads ------------------------------------- */

typedef struct {
    int (*op)(void *ctx);
    void *ctx;
    pthread_barrier_t *start;
    atomic_int *stop;
    unsigned long count;
    int failed;
} loop_thread;

static void *loop_main(void *arg)
{
    loop_thread *t = arg;
    pthread_barrier_wait(t->start);
    while (!atomic_load_explicit(t->stop, memory_order_relaxed)) {
        if (t->op(t->ctx) != 0) {
            t->failed = 1;
            break;
        }
        t->count++;
    }
    return NULL;
}

double bench_run_threads(int n, double seconds, int (*op)(void *ctx), void **ctx)
{
    loop_thread t[MAX_THREADS];
    pthread_t tid[MAX_THREADS];
    pthread_barrier_t start;
    atomic_int stop = 0;
    int started = 0, failed = 0;
    unsigned long total = 0;

    if (n < 1 || n > MAX_THREADS || pthread_barrier_init(&start, NULL, (unsigned)n + 1) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        t[i] = (loop_thread){op, ctx[i], &start, &stop, 0, 0};
        if (pthread_create(&tid[i], NULL, loop_main, &t[i]) != 0)
            break;
        started++;
    }
    if (started < n) {
        /* Cannot happen in practice; release the started ones and give up. */
        atomic_store(&stop, 1);
        for (int i = started; i < n; i++)
            pthread_barrier_wait(&start);
    } else {
        pthread_barrier_wait(&start);
    }
    double t0 = bench_now();
    if (started == n) {
        struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        total += t[i].count;
        failed |= t[i].failed;
    }
    double dt = bench_now() - t0;
    pthread_barrier_destroy(&start);
    if (failed || started < n || dt <= 0)
        return -1;
    return (double)total / dt;
}

/* ---- Child processes ------------------------------------------------ */

int bench_in_child(void (*fn)(const void *arg, int fd), const void *arg, void *out, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        fn(arg, fds[1]);
        close(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fds[0], (char *)out + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == len && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- Process figures -------------------------------------------------- */

double bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    double rss = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long kb;
        if (sscanf(line, "VmRSS: %lu kB", &kb) == 1) {
            rss = (double)kb * 1024.0;
            break;
        }
    }
    fclose(f);
    return rss;
}

static double dir_total;

static int add_file(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (flag == FTW_F && S_ISREG(st->st_mode))
        dir_total += (double)st->st_size;
    return 0;
}

double bench_dir_bytes(const char *dir)
{
    dir_total = 0;
    if (nftw(dir, add_file, 32, FTW_PHYS) != 0)
        return -1;
    return dir_total;
}
