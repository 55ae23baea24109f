/*
 * test-token-util.c - environment helpers for the PKCS#11 module tests
 * (see test-token-util.h).
 */
#include <dlfcn.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-token-util.h"

#ifndef SKS_PKCS11_MODULE
#error "SKS_PKCS11_MODULE must name the built module"
#endif

CK_FUNCTION_LIST *tt_module(void)
{
    static CK_FUNCTION_LIST *list;
    if (list != NULL)
        return list;
    const char *path = getenv("SKS_PKCS11_MODULE");
    if (path == NULL)
        path = SKS_PKCS11_MODULE;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(h != NULL, "dlopen %s: %s", path, dlerror());
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
    ck_assert_msg(get != NULL, "no C_GetFunctionList");
    ck_assert_int_eq(get(&list), CKR_OK);
    ck_assert_int_eq(list->version.major, 2);
    ck_assert_int_eq(list->version.minor, 40);
    return list;
}

void tt_env_init(tt_env *e, const char *extra)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/sks-token-test-XXXXXX");
    ck_assert_msg(mkdtemp(e->dir) != NULL, "mkdtemp");
    snprintf(e->conf, sizeof(e->conf), "%s/sks-pkcs11.conf", e->dir);
    snprintf(e->state, sizeof(e->state), "%s/state", e->dir);
    FILE *f = fopen(e->conf, "w");
    ck_assert_ptr_nonnull(f);
    /* Only the embedded card: a pcscd running on the test machine must not matter. */
    fprintf(f, "# test configuration\ntransport = embedded\nstate_dir = %s\nlog_level = warn\n%s\n",
            e->state, extra != NULL ? extra : "");
    fclose(f);
    setenv("SKS_PKCS11_CONF", e->conf, 1);
}

void tt_env_with_card(tt_env *e, const char *extra)
{
    tt_env_init(e, extra);
    e->card = tl_card_new();
    ck_assert_int_eq(mkdir(e->state, 0700), 0);
    char link[400];
    snprintf(link, sizeof(link), "%s/card", e->state);
    ck_assert_int_eq(symlink(e->card->dir, link), 0);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tt_env_free(tt_env *e)
{
    if (e->card != NULL)
        tl_card_free(e->card);
    nftw(e->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    unsetenv("SKS_PKCS11_CONF");
}

CK_FUNCTION_LIST *tt_init(void)
{
    CK_FUNCTION_LIST *f = tt_module();
    TT_OK(f->C_Initialize(NULL));
    return f;
}

void tt_slots(CK_FUNCTION_LIST *f, CK_SLOT_ID *ids, CK_ULONG max, CK_ULONG *n)
{
    *n = max;
    TT_OK(f->C_GetSlotList(CK_TRUE, ids, n));
}

CK_SLOT_ID tt_slot_by_label(CK_FUNCTION_LIST *f, const char *label)
{
    CK_SLOT_ID ids[32];
    CK_ULONG n;
    char want[33];
    snprintf(want, sizeof(want), "%-32s", label);
    tt_slots(f, ids, 32, &n);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        TT_OK(f->C_GetTokenInfo(ids[i], &ti));
        if (memcmp(ti.label, want, 32) == 0)
            return ids[i];
    }
    ck_abort_msg("no token labelled %s", label);
    return 0;
}

CK_SLOT_ID tt_free_slot(CK_FUNCTION_LIST *f)
{
    CK_SLOT_ID ids[32];
    CK_ULONG n;
    tt_slots(f, ids, 32, &n);
    ck_assert_uint_ge(n, 1);
    CK_TOKEN_INFO ti;
    TT_OK(f->C_GetTokenInfo(ids[n - 1], &ti));
    ck_assert(!(ti.flags & CKF_TOKEN_INITIALIZED));
    return ids[n - 1];
}

CK_SESSION_HANDLE tt_open(CK_FUNCTION_LIST *f, CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE s;
    TT_OK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s));
    return s;
}

CK_ULONG tt_find(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n,
                 CK_OBJECT_HANDLE *out, CK_ULONG max)
{
    CK_ULONG got = 0, total = 0;
    TT_OK(f->C_FindObjectsInit(s, t, n));
    do {
        TT_OK(f->C_FindObjects(s, out + total, max - total, &got));
        total += got;
    } while (got > 0 && total < max);
    TT_OK(f->C_FindObjectsFinal(s));
    return total;
}
