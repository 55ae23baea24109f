/*
 * demo_p11.c - module loading and small PKCS#11 helpers for the examples
 * (demo_p11.h).
 */
#include "demo_p11.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int demo_p11_load(demo_p11 *p, const char *module_path)
{
    memset(p, 0, sizeof(*p));
    p->session = CK_INVALID_HANDLE;
    p->dl = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL) {
        fprintf(stderr, "cannot load %s: %s\n", module_path, dlerror());
        return -1;
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(p->dl, "C_GetFunctionList");
    if (get == NULL || get(&p->f) != CKR_OK) {
        fprintf(stderr, "%s is not a PKCS#11 module\n", module_path);
        dlclose(p->dl);
        p->dl = NULL;
        return -1;
    }
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    if (demo_check(p->f->C_Initialize(&args), "C_Initialize") != 0) {
        dlclose(p->dl);
        p->dl = NULL;
        return -1;
    }
    return 0;
}

/* Trailing blanks of a PKCS#11 text field removed. */
static void unpad(const CK_UTF8CHAR *src, size_t n, char *dst)
{
    memcpy(dst, src, n);
    dst[n] = '\0';
    while (n > 0 && dst[n - 1] == ' ')
        dst[--n] = '\0';
}

int demo_p11_open(demo_p11 *p, const char *token_label, const char *pin)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    if (demo_check(p->f->C_GetSlotList(CK_TRUE, slots, &n), "C_GetSlotList") != 0)
        return -1;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        char label[33];
        if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        unpad(ti.label, sizeof(ti.label), label);
        if (token_label != NULL && strcmp(label, token_label) != 0)
            continue;
        p->slot = slots[i];
        if (demo_check(p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                           &p->session),
                       "C_OpenSession") != 0)
            return -1;
        if (pin != NULL && demo_check(p->f->C_Login(p->session, CKU_USER, (CK_UTF8CHAR_PTR)pin,
                                                    (CK_ULONG)strlen(pin)),
                                      "C_Login") != 0)
            return -1;
        return 0;
    }
    fprintf(stderr, "no token %s%s%s\n", token_label ? "labelled \"" : "",
            token_label ? token_label : "found", token_label ? "\"" : "");
    return -1;
}

void demo_p11_close(demo_p11 *p)
{
    if (p->f == NULL)
        return;
    if (p->session != CK_INVALID_HANDLE) {
        p->f->C_Logout(p->session);
        p->f->C_CloseSession(p->session);
    }
    p->f->C_Finalize(NULL);
    if (p->dl != NULL)
        dlclose(p->dl);
    memset(p, 0, sizeof(*p));
}

CK_OBJECT_HANDLE demo_p11_find(demo_p11 *p, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG found = 0;
    if (p->f->C_FindObjectsInit(p->session, tmpl, n) != CKR_OK)
        return CK_INVALID_HANDLE;
    if (p->f->C_FindObjects(p->session, &h, 1, &found) != CKR_OK || found == 0)
        h = CK_INVALID_HANDLE;
    p->f->C_FindObjectsFinal(p->session);
    return h;
}

unsigned char *demo_p11_attr(demo_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, size_t *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    if (p->f->C_GetAttributeValue(p->session, h, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return NULL;
    a.pValue = malloc(a.ulValueLen > 0 ? a.ulValueLen : 1);
    if (a.pValue == NULL)
        return NULL;
    if (p->f->C_GetAttributeValue(p->session, h, &a, 1) != CKR_OK) {
        free(a.pValue);
        return NULL;
    }
    *len = a.ulValueLen;
    return a.pValue;
}

const char *demo_rv_name(CK_RV rv)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
#define N(x) {x, #x}
        N(CKR_OK),
        N(CKR_ARGUMENTS_BAD),
        N(CKR_ATTRIBUTE_SENSITIVE),
        N(CKR_ATTRIBUTE_TYPE_INVALID),
        N(CKR_ATTRIBUTE_VALUE_INVALID),
        N(CKR_BUFFER_TOO_SMALL),
        N(CKR_DEVICE_ERROR),
        N(CKR_ENCRYPTED_DATA_INVALID),
        N(CKR_FUNCTION_FAILED),
        N(CKR_FUNCTION_NOT_SUPPORTED),
        N(CKR_KEY_FUNCTION_NOT_PERMITTED),
        N(CKR_KEY_HANDLE_INVALID),
        N(CKR_KEY_TYPE_INCONSISTENT),
        N(CKR_KEY_UNEXTRACTABLE),
        N(CKR_MECHANISM_INVALID),
        N(CKR_MECHANISM_PARAM_INVALID),
        N(CKR_OBJECT_HANDLE_INVALID),
        N(CKR_PIN_INCORRECT),
        N(CKR_PIN_LOCKED),
        N(CKR_SESSION_HANDLE_INVALID),
        N(CKR_TEMPLATE_INCOMPLETE),
        N(CKR_TEMPLATE_INCONSISTENT),
        N(CKR_TOKEN_NOT_PRESENT),
        N(CKR_USER_PIN_NOT_INITIALIZED),
        N(CKR_OPERATION_NOT_INITIALIZED),
        N(CKR_USER_NOT_LOGGED_IN),
        N(CKR_WRAPPED_KEY_INVALID),
        N(CKR_WRAPPING_KEY_HANDLE_INVALID),
        N(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
        N(CKR_VENDOR_SKS_MAC),
        N(CKR_VENDOR_SKS_NO_SESSION),
        N(CKR_VENDOR_SKS_SESSION_VERIFY),
        N(CKR_VENDOR_SKS_LIMIT),
        N(CKR_VENDOR_SKS_ATTESTATION),
#undef N
    };
    static char other[48];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].rv == rv)
            return names[i].name;
    if (rv >= CKR_VENDOR_SKS_BASE && rv < CKR_VENDOR_SKS_BASE + 0x100)
        snprintf(other, sizeof(other), "CKR_VENDOR_SKS(%lu)", rv - CKR_VENDOR_SKS_BASE);
    else
        snprintf(other, sizeof(other), "0x%08lx", rv);
    return other;
}

int demo_check(CK_RV rv, const char *what)
{
    if (rv == CKR_OK)
        return 0;
    fprintf(stderr, "%s: %s\n", what, demo_rv_name(rv));
    return -1;
}
