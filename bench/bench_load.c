/*
 * bench_load.c - the cost of loading a module until the user can sign:
 * dlopen + C_GetFunctionList + C_Initialize + C_GetSlotList/C_GetTokenInfo
 * (the token by label) + C_OpenSession + C_Login + C_Finalize + dlclose.
 *
 * Each repetition runs in a child process of its own, so nothing a module
 * keeps between loads in one process (libraries it pulled in, caches) makes
 * the later repetitions cheaper than what an application pays once.
 * Prints load.<peer> (milliseconds, median of --reps).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench_main.h"
#include "bench_util.h"

/* One load in this (child) process: seconds, or -1. */
static double load_once(const bench_opts *o)
{
    bench_p11 m;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    double t0 = bench_now();
    if (bench_p11_load(&m, o->module) != 0)
        return -1;
    CK_RV rv = bench_p11_init(&m);
    if (rv == CKR_OK)
        rv = bench_p11_slot(&m, o->token, &slot);
    if (rv == CKR_OK)
        rv = bench_p11_open(&m, slot, o->pin, &s);
    if (rv != CKR_OK)
        bench_note("load: %s: %s", o->module, bench_rv_name(rv));
    bench_p11_unload(&m);
    return rv == CKR_OK ? bench_now() - t0 : -1;
}

static void load_child(const void *arg, int fd)
{
    double t = load_once(arg);
    if (write(fd, &t, sizeof(t)) != (ssize_t)sizeof(t))
        _exit(1);
}

int bench_cmd_load(const bench_opts *o)
{
    char key[96];
    double t[200];
    unsigned n = o->reps < 200 ? o->reps : 200;
    snprintf(key, sizeof(key), "load.%s", o->peer);
    if (o->module == NULL || o->token == NULL) {
        bench_result_na(key, "no --module or --token");
        return 2;
    }
    for (unsigned i = 0; i < n; i++) {
        if (bench_in_child(load_child, o, &t[i], sizeof(t[i])) != 0 || t[i] < 0) {
            bench_result_na(key, "loading the module or logging in failed");
            return 1;
        }
    }
    bench_result(key, bench_median(t, n) * 1000.0);
    return 0;
}
