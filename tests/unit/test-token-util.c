/*
 * test-token-util.c - environment, object and attribute helpers for the
 * PKCS#11 module tests (see test-token-util.h).
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

/* ---- Objects and attributes -------------------------------------------- */

/* A fixed-size attribute into `v` (its size asserted). */
static void get_fixed(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type, void *v, CK_ULONG size)
{
    CK_ATTRIBUTE t = {type, v, size};
    TT_OK(f->C_GetAttributeValue(s, h, &t, 1));
    ck_assert_uint_eq(t.ulValueLen, size);
}

CK_BBOOL tt_get_bool(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                     CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = 2;
    get_fixed(f, s, h, type, &v, sizeof(v));
    return v;
}

CK_ULONG tt_get_ulong(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type)
{
    CK_ULONG v = 0;
    get_fixed(f, s, h, type, &v, sizeof(v));
    return v;
}

CK_ULONG tt_get_bytes(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type, void *buf, CK_ULONG cap)
{
    CK_ATTRIBUTE t = {type, buf, cap};
    TT_OK(f->C_GetAttributeValue(s, h, &t, 1));
    return t.ulValueLen;
}

uint8_t *tt_get_value(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type, CK_ULONG *len)
{
    CK_ATTRIBUTE t = {type, NULL, 0};
    TT_OK(f->C_GetAttributeValue(s, h, &t, 1));
    ck_assert_uint_ne(t.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    uint8_t *v = malloc(t.ulValueLen + 1);
    ck_assert_ptr_nonnull(v);
    t.pValue = v;
    TT_OK(f->C_GetAttributeValue(s, h, &t, 1));
    *len = t.ulValueLen;
    return v;
}

void tt_assert_bytes(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                     CK_ATTRIBUTE_TYPE type, const void *want, size_t want_len)
{
    CK_ULONG len;
    uint8_t *v = tt_get_value(f, s, h, type, &len);
    ck_assert_msg(len == want_len && memcmp(v, want, len) == 0,
                  "attribute 0x%lx: %lu bytes, expected %zu", (unsigned long)type,
                  (unsigned long)len, want_len);
    free(v);
}

CK_ULONG tt_count_id(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *id,
                     CK_OBJECT_HANDLE *first)
{
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_ID, (void *)id, id != NULL ? strlen(id) : 0}};
    CK_OBJECT_HANDLE h[32] = {CK_INVALID_HANDLE};
    CK_ULONG n = tt_find(f, s, t, id != NULL ? 2 : 1, h, 32);
    if (first != NULL)
        *first = h[0];
    return n;
}

CK_OBJECT_HANDLE tt_find_id(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                            const char *id)
{
    CK_OBJECT_HANDLE h;
    ck_assert_uint_eq(tt_count_id(f, s, cls, id, &h), 1);
    return h;
}

CK_SESSION_HANDLE tt_user_session(CK_FUNCTION_LIST *f, const char *label, const char *pin)
{
    CK_SESSION_HANDLE s = tt_open(f, tt_slot_by_label(f, label));
    if (pin != NULL)
        TT_OK(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
    return s;
}

void tt_sign_and_verify(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                        EVP_PKEY *pub)
{
    static const uint8_t msg[] = "signed through the module";
    CK_MECHANISM m = {EVP_PKEY_is_a(pub, "EC") ? CKM_ECDSA_SHA256 : CKM_SHA256_RSA_PKCS, NULL, 0};
    uint8_t sig[1024];
    CK_ULONG sig_len = sizeof(sig);
    TT_OK(f->C_SignInit(s, &m, key));
    TT_OK(f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &sig_len));
    ck_assert_msg(tl_signature_ok(pub, 0, msg, sizeof(msg), sig, sig_len),
                  "OpenSSL does not verify the module's signature");
}

uint8_t tt_post_method(CK_MECHANISM_TYPE mech)
{
    return mech == CKM_VENDOR_SKS_POST_DELETE_KEY   ? SKS_M_POST_DELETE_KEY
           : mech == CKM_VENDOR_SKS_POST_UNLOCK_KEY ? SKS_M_POST_UNLOCK_KEY
                                                    : SKS_M_POST_UPDATE_KEY;
}
