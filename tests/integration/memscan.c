/*
 * memscan.c - looks for secrets where they must not be: in the memory of a
 * running process (/proc/PID/mem) or in a file (an APDU trace of hex lines,
 * or raw bytes). Used by t-inject.sh and t-provision.sh to show that the
 * enrollment client never holds an injected private key, S1 or SK.
 *
 *   memscan [--key PEM]... [--secret HEX]... [--public HEX]... TARGET
 *   TARGET: --pid PID | --hex-trace FILE | --raw FILE
 *
 * Secrets: every private component of each PEM key (RSA d, p, q, dP, dQ,
 * qInv; EC private scalar) and each --secret value. A secret is looked for
 * in every 16-byte window at 16-byte steps, in big-endian order (DER,
 * PKCS#8, the wire) and in reversed byte order (OpenSSL's BIGNUM limbs on a
 * little-endian machine), so a copy split across buffers or APDUs is still
 * caught. --public values must be FOUND (a control that the scan sees the
 * target at all). Exit status: 0 no secret found and every public value
 * found, 1 otherwise, 2 usage or I/O error.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define MAX_NEEDLES 4096
#define WINDOW      16

typedef struct {
    unsigned char b[WINDOW];
    char label[48];
    int must_find;
    int found;
} needle;

static needle needles[MAX_NEEDLES];
static size_t nneedles;

/* Add the windows of a value, both byte orders. */
static void add_value(const unsigned char *v, size_t len, const char *label, int must_find)
{
    unsigned char *r = malloc(len ? len : 1);
    if (r == NULL)
        exit(2);
    for (size_t i = 0; i < len; i++)
        r[i] = v[len - 1 - i];
    for (int order = 0; order < (must_find ? 1 : 2); order++) {
        const unsigned char *src = order ? r : v;
        for (size_t off = 0; off + WINDOW <= len && nneedles < MAX_NEEDLES; off += WINDOW) {
            needle *n = &needles[nneedles++];
            memcpy(n->b, src + off, WINDOW);
            snprintf(n->label, sizeof(n->label), "%s%s@%zu", label, order ? "(le)" : "", off);
            n->must_find = must_find;
        }
    }
    free(r);
}

static int hex_value(const char *hex, unsigned char **out, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n == 0)
        return -1;
    *out = malloc(n / 2);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int x;
        if (sscanf(hex + 2 * i, "%2x", &x) != 1)
            return -1;
        (*out)[i] = (unsigned char)x;
    }
    *len = n / 2;
    return 0;
}

static void add_bn_param(EVP_PKEY *pk, const char *param, const char *label)
{
    BIGNUM *bn = NULL;
    if (!EVP_PKEY_get_bn_param(pk, param, &bn))
        return;
    int n = BN_num_bytes(bn);
    unsigned char *b = malloc((size_t)n);
    BN_bn2bin(bn, b);
    add_value(b, (size_t)n, label, 0);
    free(b);
    BN_clear_free(bn);
}

static int add_key(const char *pem)
{
    FILE *f = fopen(pem, "r");
    EVP_PKEY *pk = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (pk == NULL) {
        fprintf(stderr, "memscan: cannot read the key %s\n", pem);
        return -1;
    }
    if (EVP_PKEY_is_a(pk, "RSA")) {
        add_bn_param(pk, OSSL_PKEY_PARAM_RSA_D, "rsa-d");
        add_bn_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR1, "rsa-p");
        add_bn_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR2, "rsa-q");
        add_bn_param(pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, "rsa-dp");
        add_bn_param(pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, "rsa-dq");
        add_bn_param(pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, "rsa-qinv");
    } else {
        add_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, "ec-priv");
    }
    EVP_PKEY_free(pk);
    return 0;
}

static void scan(const unsigned char *buf, size_t len, const char *where)
{
    if (len < WINDOW)
        return;
    for (size_t i = 0; i < nneedles; i++) {
        if (needles[i].found)
            continue;
        for (size_t off = 0; off + WINDOW <= len; off++) {
            if (buf[off] == needles[i].b[0] && memcmp(buf + off, needles[i].b, WINDOW) == 0) {
                needles[i].found = 1;
                if (!needles[i].must_find)
                    printf("FOUND secret %s in %s\n", needles[i].label, where);
                break;
            }
        }
    }
}

static int scan_pid(const char *pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%s/maps", pid);
    FILE *maps = fopen(path, "r");
    snprintf(path, sizeof(path), "/proc/%s/mem", pid);
    FILE *mem = fopen(path, "rb");
    if (maps == NULL || mem == NULL) {
        fprintf(stderr, "memscan: cannot open the memory of process %s\n", pid);
        return -1;
    }
    size_t regions = 0;
    while (fgets(line, sizeof(line), maps) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
            strstr(line, "[vvar]") != NULL || hi - lo > (1ul << 30))
            continue;
        unsigned char *buf = malloc(hi - lo);
        if (buf == NULL || fseek(mem, (long)lo, SEEK_SET) != 0) {
            free(buf);
            continue;
        }
        size_t got = fread(buf, 1, hi - lo, mem);
        clearerr(mem);
        scan(buf, got, "process memory");
        regions += got > 0;
        free(buf);
    }
    fclose(maps);
    fclose(mem);
    printf("scanned %zu memory regions of process %s\n", regions, pid);
    return 0;
}

/* An APDU trace: lines "> HEX" / "< HEX"; each line decoded and scanned. */
static int scan_hex_trace(const char *file)
{
    FILE *f = fopen(file, "r");
    if (f == NULL)
        return -1;
    static char line[1 << 20];
    static unsigned char bin[1 << 19];
    size_t lines = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t n = 0;
        for (char *p = line; p[0] && p[1] && n < sizeof(bin); p++) {
            if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
                continue;
            unsigned int x;
            sscanf(p, "%2x", &x);
            bin[n++] = (unsigned char)x;
            p++;
        }
        scan(bin, n, "the APDU trace");
        lines++;
    }
    fclose(f);
    printf("scanned %zu trace lines of %s\n", lines, file);
    return 0;
}

static int scan_raw(const char *file)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return -1;
    unsigned char *buf = malloc(64u << 20);
    size_t n = fread(buf, 1, 64u << 20, f);
    fclose(f);
    scan(buf, n, file);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = 0;
    const char *kind = NULL, *target = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned char *b = NULL;
        size_t len = 0;
        if (v == NULL)
            goto usage;
        if (strcmp(a, "--key") == 0) {
            if (add_key(v) != 0)
                return 2;
        } else if (strcmp(a, "--secret") == 0 || strcmp(a, "--public") == 0) {
            if (hex_value(v, &b, &len) != 0 || len < WINDOW)
                goto usage;
            add_value(b, len, a[2] == 's' ? "secret" : "public", a[2] == 'p');
            free(b);
        } else if (strcmp(a, "--pid") == 0 || strcmp(a, "--hex-trace") == 0 ||
                   strcmp(a, "--raw") == 0) {
            kind = a;
            target = v;
        } else {
            goto usage;
        }
        i++;
    }
    if (kind == NULL || nneedles == 0)
        goto usage;
    if ((strcmp(kind, "--pid") == 0   ? scan_pid(target)
         : strcmp(kind, "--raw") == 0 ? scan_raw(target)
                                      : scan_hex_trace(target)) != 0) {
        fprintf(stderr, "memscan: cannot read %s\n", target);
        return 2;
    }
    size_t secrets = 0;
    for (size_t i = 0; i < nneedles; i++) {
        secrets += !needles[i].must_find;
        if (needles[i].must_find && !needles[i].found) {
            printf("NOT FOUND public control value %s: the scan does not see the target\n",
                   needles[i].label);
            rc = 1;
        }
        if (!needles[i].must_find && needles[i].found)
            rc = 1;
    }
    printf("%zu secret windows checked: %s\n", secrets,
           rc == 0 ? "none found" : "LEAK or blind scan");
    return rc;
usage:
    fprintf(stderr, "usage: memscan [--key PEM]... [--secret HEX]... [--public HEX]... "
                    "--pid PID | --hex-trace FILE | --raw FILE\n");
    return 2;
}
