/*
 * dkek-p11.c - the PKCS#11 side of the DKEK integration test (t-dkek.sh):
 * what pkcs11-tool cannot do, done through the installed module.
 *
 *   dkek-p11 keygen MODULE TOKEN PIN ID_HEX LABEL ec256|rsa2048 backup|nobackup
 *       C_GenerateKeyPair with CKA_VENDOR_SKS_BACKUP_ALLOWED true or false
 *   dkek-p11 status MODULE TOKEN
 *       the token's DKEK object: "shares N outstanding M kcv HEX"
 *   dkek-p11 wrap MODULE TOKEN PIN ID_HEX FILE
 *       C_WrapKey(CKM_VENDOR_SKS_DKEK_WRAP, the DKEK object, the private key) into FILE
 *   dkek-p11 unwrap MODULE TOKEN PIN FILE
 *       C_UnwrapKey of FILE onto the token (template: CKA_CLASS CKO_PRIVATE_KEY);
 *       prints "restored ID_HEX"
 *
 * TOKEN is a token label; PIN "-" logs nobody in. A PKCS#11 failure prints
 * "FUNCTION rv=0xHEX" and exits 1; bad usage exits 2.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "pkcs11/sks-pkcs11.h"

static CK_FUNCTION_LIST_PTR p11;

static int fail(const char *what, CK_RV rv)
{
    printf("%s rv=0x%lX\n", what, (unsigned long)rv);
    return 1;
}

#define TRY(what, call)                                                                            \
    do {                                                                                           \
        CK_RV rv_ = (call);                                                                        \
        if (rv_ != CKR_OK)                                                                         \
            return fail(what, rv_);                                                                \
    } while (0)

static int usage(void)
{
    fprintf(stderr,
            "usage: dkek-p11 keygen|status|wrap|unwrap MODULE TOKEN ... (see the source)\n");
    return 2;
}

/* A session on the token labelled `label`, logged in with `pin` unless "-". */
static int open_token(const char *label, const char *pin, CK_SESSION_HANDLE *s)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    TRY("C_GetSlotList", p11->C_GetSlotList(CK_TRUE, slots, &n));
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        char l[33];
        if (p11->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        memcpy(l, ti.label, 32);
        l[32] = '\0';
        for (int j = 31; j >= 0 && l[j] == ' '; j--)
            l[j] = '\0';
        if (strcmp(l, label) != 0)
            continue;
        TRY("C_OpenSession",
            p11->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s));
        if (strcmp(pin, "-") != 0)
            TRY("C_Login", p11->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
        return 0;
    }
    printf("no token labelled %s\n", label);
    return 1;
}

static int find_one(CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *h,
                    const char *what)
{
    CK_ULONG count = 0;
    TRY("C_FindObjectsInit", p11->C_FindObjectsInit(s, t, n));
    CK_RV rv = p11->C_FindObjects(s, h, 1, &count);
    p11->C_FindObjectsFinal(s);
    if (rv != CKR_OK)
        return fail("C_FindObjects", rv);
    if (count != 1) {
        printf("no %s found\n", what);
        return 1;
    }
    return 0;
}

static int find_dkek(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_VENDOR_SKS_DKEK;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
    return find_one(s, t, 2, h, "DKEK object");
}

static size_t parse_hex(const char *hex, CK_BYTE *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    if (strlen(hex) % 2 != 0 || n > cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return 0;
        out[i] = (CK_BYTE)v;
    }
    return n;
}

static int keygen(CK_SESSION_HANDLE s, char **a)
{
    CK_BYTE id[32];
    size_t id_len = parse_hex(a[0], id, sizeof(id));
    int rsa = strcmp(a[2], "rsa2048") == 0;
    CK_BBOOL yes = CK_TRUE, backup = strcmp(a[3], "backup") == 0 ? CK_TRUE : CK_FALSE;
    CK_ULONG bits = 2048;
    static CK_BYTE p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
    if (id_len == 0)
        return usage();
    CK_MECHANISM m = {rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                          {CKA_ID, id, id_len},
                          {CKA_LABEL, a[1], strlen(a[1])},
                          rsa ? (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)}
                              : (CK_ATTRIBUTE){CKA_EC_PARAMS, p256, sizeof(p256)}};
    CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                           {CKA_ID, id, id_len},
                           {CKA_LABEL, a[1], strlen(a[1])},
                           {CKA_SIGN, &yes, sizeof(yes)},
                           {CKA_VENDOR_SKS_BACKUP_ALLOWED, &backup, sizeof(backup)}};
    CK_OBJECT_HANDLE hpub, hpriv;
    TRY("C_GenerateKeyPair", p11->C_GenerateKeyPair(s, &m, pub, 4, priv, 5, &hpub, &hpriv));
    CK_BBOOL got = CK_FALSE, extractable = CK_FALSE;
    CK_ATTRIBUTE q[] = {{CKA_VENDOR_SKS_BACKUP_ALLOWED, &got, sizeof(got)},
                        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)}};
    TRY("C_GetAttributeValue", p11->C_GetAttributeValue(s, hpriv, q, 2));
    printf("generated backup_allowed=%d extractable=%d\n", got == CK_TRUE, extractable == CK_TRUE);
    return 0;
}

static int status(CK_SESSION_HANDLE s)
{
    CK_OBJECT_HANDLE h;
    CK_ULONG shares = 0, outstanding = 0;
    CK_BYTE kcv[8];
    if (find_dkek(s, &h) != 0)
        return 1;
    CK_ATTRIBUTE q[] = {{CKA_VENDOR_SKS_DKEK_SHARES, &shares, sizeof(shares)},
                        {CKA_VENDOR_SKS_DKEK_OUTSTANDING, &outstanding, sizeof(outstanding)},
                        {CKA_VENDOR_SKS_DKEK_KCV, kcv, sizeof(kcv)}};
    TRY("C_GetAttributeValue", p11->C_GetAttributeValue(s, h, q, 3));
    printf("shares %lu outstanding %lu kcv ", (unsigned long)shares, (unsigned long)outstanding);
    for (int i = 0; i < 8; i++)
        printf("%02X", kcv[i]);
    printf("\n");
    return 0;
}

static int wrap(CK_SESSION_HANDLE s, char **a)
{
    CK_BYTE id[32];
    size_t id_len = parse_hex(a[0], id, sizeof(id));
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, id, id_len}};
    CK_OBJECT_HANDLE dkek, key;
    CK_MECHANISM m = {CKM_VENDOR_SKS_DKEK_WRAP, NULL, 0};
    CK_ULONG len = 0;
    if (id_len == 0)
        return usage();
    if (find_dkek(s, &dkek) != 0 || find_one(s, t, 2, &key, "private key") != 0)
        return 1;
    TRY("C_WrapKey", p11->C_WrapKey(s, &m, dkek, key, NULL, &len));
    CK_BYTE *buf = malloc(len);
    CK_ULONG small = 1;
    if (buf == NULL)
        return 1;
    /* A buffer too small is refused and told the size. */
    CK_RV rv = p11->C_WrapKey(s, &m, dkek, key, buf, &small);
    if (rv != CKR_BUFFER_TOO_SMALL || small < len - 64 || small > len + 64) {
        free(buf);
        return fail("C_WrapKey (small buffer)", rv);
    }
    rv = p11->C_WrapKey(s, &m, dkek, key, buf, &len);
    FILE *f = rv == CKR_OK ? fopen(a[1], "wb") : NULL;
    int ok = f != NULL && fwrite(buf, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    free(buf);
    if (rv != CKR_OK)
        return fail("C_WrapKey", rv);
    if (!ok)
        return 1;
    printf("wrapped %lu bytes\n", (unsigned long)len);
    return 0;
}

static int unwrap(CK_SESSION_HANDLE s, char **a)
{
    static CK_BYTE buf[1 << 20];
    FILE *f = fopen(a[0], "rb");
    if (f == NULL)
        return 1;
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}};
    CK_OBJECT_HANDLE dkek, key;
    CK_MECHANISM m = {CKM_VENDOR_SKS_DKEK_WRAP, NULL, 0};
    if (find_dkek(s, &dkek) != 0)
        return 1;
    TRY("C_UnwrapKey", p11->C_UnwrapKey(s, &m, dkek, buf, n, t, 1, &key));
    CK_BYTE id[32];
    CK_ATTRIBUTE q[] = {{CKA_ID, id, sizeof(id)}};
    TRY("C_GetAttributeValue", p11->C_GetAttributeValue(s, key, q, 1));
    printf("restored ");
    for (CK_ULONG i = 0; i < q[0].ulValueLen; i++)
        printf("%02x", id[i]);
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    const char *cmd = argv[1];
    int need = strcmp(cmd, "keygen") == 0   ? 9
               : strcmp(cmd, "status") == 0 ? 4
               : strcmp(cmd, "wrap") == 0   ? 7
               : strcmp(cmd, "unwrap") == 0 ? 6
                                            : -1;
    if (argc != need)
        return usage();
    void *lib = dlopen(argv[2], RTLD_NOW);
    CK_C_GetFunctionList gfl =
        lib != NULL ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
    if (gfl == NULL || gfl(&p11) != CKR_OK) {
        printf("cannot load %s\n", argv[2]);
        return 1;
    }
    TRY("C_Initialize", p11->C_Initialize(NULL));
    CK_SESSION_HANDLE s;
    int rc = open_token(argv[3], strcmp(cmd, "status") == 0 ? "-" : argv[4], &s);
    if (rc == 0) {
        if (strcmp(cmd, "keygen") == 0)
            rc = keygen(s, argv + 5);
        else if (strcmp(cmd, "status") == 0)
            rc = status(s);
        else if (strcmp(cmd, "wrap") == 0)
            rc = wrap(s, argv + 5);
        else
            rc = unwrap(s, argv + 5);
    }
    p11->C_Finalize(NULL);
    return rc;
}
