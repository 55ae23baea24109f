/*
 * bench_util.h - what the parts of sks-bench share: the clock, medians,
 * result records, PKCS#11 modules loaded with dlopen, a timed loop run by
 * N threads, and process figures (RSS, size of a directory).
 *
 * Every measurement prints its figures as result records on standard
 * output, one per line: "KEY VALUE" with a number, or "KEY n/a:REASON" when
 * it could not be measured. bench/run-bench.sh collects them in one file
 * and `sks-bench report` turns that file into the table.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

/* Seconds on the monotonic clock. */
double bench_now(void);

/* Median of v[0..n) (sorts v); 0 when n is 0. */
double bench_median(double *v, size_t n);

/* One result record: "KEY VALUE". */
void bench_result(const char *key, double value);
/* A figure that could not be measured: "KEY n/a:REASON" (REASON without newlines). */
void bench_result_na(const char *key, const char *reason);
/* Progress for the reader of the run (standard error), printf-style. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A PKCS#11 module loaded with dlopen. */
typedef struct {
    void *dl;
    CK_FUNCTION_LIST *f;
    int initialized;
} bench_p11;

/* dlopen + C_GetFunctionList. 0, or -1 with a message on standard error. */
int bench_p11_load(bench_p11 *m, const char *path);
/* C_Initialize with CKF_OS_LOCKING_OK. */
CK_RV bench_p11_init(bench_p11 *m);
/* C_Finalize (when initialised) and dlclose. */
void bench_p11_unload(bench_p11 *m);

/* The slot whose token has this label (CKR_TOKEN_NOT_PRESENT if none). */
CK_RV bench_p11_slot(bench_p11 *m, const char *label, CK_SLOT_ID *slot);
/* A read-only session on the slot, logged in as user when pin is not NULL. */
CK_RV bench_p11_open(bench_p11 *m, CK_SLOT_ID slot, const char *pin, CK_SESSION_HANDLE *s);
/*
 * The objects matching a template of class and (when not NULL) label and ID:
 * at most `max` into out, the number found in *n.
 */
CK_RV bench_p11_find(bench_p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label,
                     const void *id, size_t id_len, CK_OBJECT_HANDLE *out, CK_ULONG max,
                     CK_ULONG *n);
/* A name for a return value in messages. */
const char *bench_rv_name(CK_RV rv);

/*
 * Run op(ctx[i]) in a loop on n threads (thread i gets ctx[i]) for about
 * `seconds`, all starting together. Returns the operations per second of
 * all threads together, or -1 when an operation failed (op returns non-zero).
 */
double bench_run_threads(int n, double seconds, int (*op)(void *ctx), void **ctx);

/*
 * Run fn(arg, fd) in a child process and read exactly `len` bytes that it
 * writes to fd into out. 0, or -1 when the child failed or wrote less.
 */
int bench_in_child(void (*fn)(const void *arg, int fd), const void *arg, void *out, size_t len);

/* Resident set size of this process in bytes (VmRSS), -1 if unknown. */
double bench_rss_bytes(void);
/* Total size of the regular files under dir (bytes), -1 on error. */
double bench_dir_bytes(const char *dir);

#endif
