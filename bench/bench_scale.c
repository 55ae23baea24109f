/*
 * bench_scale.c - how a token behaves with many keys (populated by
 * bench_populate.c: key i has CKA_ID "k%06u" and CKA_LABEL "key %06u").
 * In a fresh child process per repetition:
 *
 *   init_login_ms   C_Initialize + the slot by label (C_GetSlotList,
 *                   C_GetTokenInfo) + C_OpenSession + C_Login
 *   first_find_ms   the first C_FindObjectsInit/C_FindObjects/Final by
 *                   CKA_ID after login (a module that reads the token's
 *                   objects lazily pays for it here)
 *   find_id_ms      the same for random keys afterwards, mean
 *   find_label_ms   the same by CKA_LABEL, mean
 *   rss_mb          VmRSS at the end minus VmRSS before dlopen
 *
 * and once, state_mb: the size of the files under --state-dir. Each find
 * must return exactly one private key, or the figures are not printed.
 * Keys: scale.<peer>.<count>.<figure>; medians over --reps children.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_main.h"
#include "bench_util.h"

#define MIN_FINDS    20
#define FIND_SECONDS 2.0

enum { F_INIT_LOGIN, F_FIRST_FIND, F_FIND_ID, F_FIND_LABEL, F_RSS, F_COUNT };

static const char *const figure_names[F_COUNT] = {
    "init_login_ms", "first_find_ms", "find_id_ms", "find_label_ms", "rss_mb",
};

/* Find key i by ID (by_label 0) or label (1): CKR_OK only for exactly one private key. */
static CK_RV find_key(bench_p11 *m, CK_SESSION_HANDLE s, unsigned i, int by_label)
{
    char text[32];
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    snprintf(text, sizeof(text), by_label ? BENCH_KEY_LABEL_FMT : BENCH_KEY_ID_FMT, i);
    CK_RV rv = by_label
                   ? bench_p11_find(m, s, CKO_PRIVATE_KEY, text, NULL, 0, found, 2, &n)
                   : bench_p11_find(m, s, CKO_PRIVATE_KEY, NULL, text, strlen(text), found, 2, &n);
    return rv == CKR_OK && n != 1 ? CKR_OBJECT_HANDLE_INVALID : rv;
}

/*
 * Mean seconds of `rounds` finds of random keys (fewer, but at least
 * MIN_FINDS, when they take more than FIND_SECONDS in all); -1 on failure.
 */
static double find_mean(bench_p11 *m, CK_SESSION_HANDLE s, unsigned count, unsigned rounds,
                        int by_label, unsigned *seed)
{
    double t0 = bench_now();
    unsigned r = 0;
    for (; r < rounds && (r < MIN_FINDS || bench_now() - t0 < FIND_SECONDS); r++) {
        unsigned i = 1 + (unsigned)rand_r(seed) % count;
        CK_RV rv = find_key(m, s, i, by_label);
        if (rv != CKR_OK) {
            bench_note("scale: key %u by %s: %s", i, by_label ? "label" : "ID", bench_rv_name(rv));
            return -1;
        }
    }
    return (bench_now() - t0) / r;
}

/* One repetition in a child: writes double[F_COUNT] (all -1 on failure). */
static void scale_child(const void *arg, int fd)
{
    const bench_opts *o = arg;
    double fig[F_COUNT];
    bench_p11 m;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    unsigned seed = 12345u + (unsigned)getpid();
    unsigned rounds = o->count < 200 ? 200 : 500;
    int ok = 0;

    for (int i = 0; i < F_COUNT; i++)
        fig[i] = -1;
    double rss0 = bench_rss_bytes();
    if (bench_p11_load(&m, o->module) == 0) {
        double t0 = bench_now();
        CK_RV rv = bench_p11_init(&m);
        if (rv == CKR_OK)
            rv = bench_p11_slot(&m, o->token, &slot);
        if (rv == CKR_OK)
            rv = bench_p11_open(&m, slot, o->pin, &s);
        double t1 = bench_now();
        if (rv == CKR_OK)
            rv = find_key(&m, s, 1 + (unsigned)rand_r(&seed) % o->count, 0);
        double t2 = bench_now();
        if (rv == CKR_OK) {
            fig[F_INIT_LOGIN] = (t1 - t0) * 1000.0;
            fig[F_FIRST_FIND] = (t2 - t1) * 1000.0;
            fig[F_FIND_ID] = find_mean(&m, s, o->count, rounds, 0, &seed) * 1000.0;
            fig[F_FIND_LABEL] = find_mean(&m, s, o->count, rounds, 1, &seed) * 1000.0;
            ok = fig[F_FIND_ID] >= 0 && fig[F_FIND_LABEL] >= 0;
        } else {
            bench_note("scale: %s, token %s: %s", o->module, o->token, bench_rv_name(rv));
        }
        if (ok)
            fig[F_RSS] = (bench_rss_bytes() - rss0) / 1048576.0;
        bench_p11_unload(&m);
    }
    if (!ok)
        for (int i = 0; i < F_COUNT; i++)
            fig[i] = -1;
    if (write(fd, fig, sizeof(fig)) != (ssize_t)sizeof(fig))
        _exit(1);
}

int bench_cmd_scale(const bench_opts *o)
{
    double fig[F_COUNT][64];
    char key[128];
    unsigned reps = o->reps < 64 ? o->reps : 64;
    const char *why = NULL;

    if (o->module == NULL || o->token == NULL || o->count == 0)
        why = "no --module, --token or --count";
    for (unsigned r = 0; why == NULL && r < reps; r++) {
        double one[F_COUNT];
        if (bench_in_child(scale_child, o, one, sizeof(one)) != 0 || one[0] < 0)
            why = "login or a find failed (see the log)";
        for (int i = 0; why == NULL && i < F_COUNT; i++)
            fig[i][r] = one[i];
    }
    for (int i = 0; i < F_COUNT; i++) {
        snprintf(key, sizeof(key), "scale.%s.%u.%s", o->peer, o->count, figure_names[i]);
        if (why != NULL)
            bench_result_na(key, why);
        else
            bench_result(key, bench_median(fig[i], reps));
    }
    snprintf(key, sizeof(key), "scale.%s.%u.state_mb", o->peer, o->count);
    double bytes = o->state_dir != NULL ? bench_dir_bytes(o->state_dir) : -1;
    if (bytes < 0)
        bench_result_na(key, "no --state-dir");
    else
        bench_result(key, bytes / 1048576.0);
    return why == NULL ? 0 : 1;
}
