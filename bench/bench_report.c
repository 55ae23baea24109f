/*
 * bench_report.c - `sks-bench report --records FILE`: the table of one run
 * from its file of result records, with the ratios and the targets of the
 * benchmark beside the figures ("met", "MISSED", or "n/a" when a figure
 * is missing). The machine is described from /proc and /etc/os-release.
 * A figure that could not be measured shows "n/a", and its reason is
 * listed under the table. Never fails on a number.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bench_main.h"
#include "bench_util.h"

#define MAX_RECORDS 2000
#define MAX_NOTES   40
#define CELL        24

typedef struct {
    char key[96];
    int has_value;
    double value;
    char why[200];
} record;

static record records[MAX_RECORDS];
static size_t nrecords;
static char notes[MAX_NOTES][300];
static size_t nnotes;

/* Read "KEY VALUE" / "KEY n/a:REASON" lines; later records of a key win. */
static int load_records(const char *file)
{
    FILE *f = fopen(file, "re");
    char line[512];
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL && nrecords < MAX_RECORDS) {
        line[strcspn(line, "\n")] = '\0';
        char *sp = strchr(line, ' ');
        if (sp == NULL || sp == line || (size_t)(sp - line) >= sizeof(records[0].key))
            continue;
        record r;
        memset(&r, 0, sizeof(r));
        memcpy(r.key, line, (size_t)(sp - line));
        const char *v = sp + 1;
        if (strncmp(v, "n/a:", 4) == 0) {
            snprintf(r.why, sizeof(r.why), "%s", v + 4);
        } else {
            char *end;
            r.value = strtod(v, &end);
            r.has_value = end != v && r.value >= 0;
            if (!r.has_value)
                snprintf(r.why, sizeof(r.why), "not measured");
        }
        size_t i = 0;
        while (i < nrecords && strcmp(records[i].key, r.key) != 0)
            i++;
        records[i] = r;
        if (i == nrecords)
            nrecords++;
    }
    fclose(f);
    return 0;
}

static const record *find(const char *key)
{
    for (size_t i = 0; i < nrecords; i++)
        if (strcmp(records[i].key, key) == 0)
            return &records[i];
    return NULL;
}

/* The value of a key (printf-style name): 1 and *out, or 0. */
static int value(double *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int value(double *out, const char *fmt, ...)
{
    char key[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(key, sizeof(key), fmt, ap);
    va_end(ap);
    const record *r = find(key);
    if (r != NULL && r->has_value) {
        *out = r->value;
        return 1;
    }
    return 0;
}

/* Remember why a figure is missing (once per reason). */
static void note_missing(const char *key)
{
    const record *r = find(key);
    char text[300];
    snprintf(text, sizeof(text), "%s", r != NULL ? r->why : "not run");
    for (size_t i = 0; i < nnotes; i++)
        if (strcmp(notes[i], text) == 0)
            return;
    if (nnotes < MAX_NOTES)
        snprintf(notes[nnotes++], sizeof(notes[0]), "%s", text);
}

/* A number with a precision fitting its size. */
static void fmt_num(char *buf, size_t cap, double v)
{
    if (v >= 100)
        snprintf(buf, cap, "%.0f", v);
    else if (v >= 10)
        snprintf(buf, cap, "%.1f", v);
    else if (v >= 0.1)
        snprintf(buf, cap, "%.2f", v);
    else
        snprintf(buf, cap, "%.4f", v);
}

/* A cell: the figure of `key`, or n/a (reason noted). */
static void cell(char *buf, size_t cap, const char *key)
{
    const record *r = find(key);
    if (r != NULL && r->has_value) {
        fmt_num(buf, cap, r->value);
    } else {
        snprintf(buf, cap, "n/a");
        note_missing(key);
    }
}

static const char *verdict(int known, int met)
{
    return !known ? "n/a" : met ? "met" : "MISSED";
}

/* ---- the machine -------------------------------------------------------- */

static void machine(void)
{
    char cpu[160] = "?", os[160] = "?", line[512];
    FILE *f = fopen("/proc/cpuinfo", "re");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':') != NULL) {
            snprintf(cpu, sizeof(cpu), "%.150s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    f = fopen("/etc/os-release", "re");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
            snprintf(os, sizeof(os), "%.150s", line + 12);
            os[strcspn(os, "\n")] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    double threads = 0, seconds = 0;
    value(&threads, "meta.threads");
    value(&seconds, "meta.seconds");
    printf("machine: %ld CPUs (%s), %s, %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu, os,
           OpenSSL_version(OPENSSL_VERSION));
    printf("run: %s, %.2g s per timed figure, N = %.0f threads\n",
           find("meta.short") != NULL ? "short (CI)" : "full", seconds, threads);
}

/* ---- 1. signatures ------------------------------------------------------ */

static const struct {
    const char *peer;
    const char *name;
} sign_rows[] = {
    {"raw", "raw libcrypto (the limit)"},
    {"sks-emb", "sks-pkcs11, embedded card"},
    {"sks-pcsc", "sks-pkcs11, pcscd + sks-card"},
    {"softhsm", "SoftHSMv2"},
};

/*
 * A module's ratio to raw libcrypto: the one timed in alternation with it
 * (sign.<peer>.<alg>.<t>.ratio), else the two separate figures' quotient.
 */
static int ratio_of(double *out, const char *peer, const char *alg, const char *t)
{
    double v, raw;
    if (value(out, "sign.%s.%s.%s.ratio", peer, alg, t))
        return 1;
    if (value(&v, "sign.%s.%s.%s", peer, alg, t) && value(&raw, "raw.%s.%s", alg, t) && raw > 0) {
        *out = v / raw;
        return 1;
    }
    return 0;
}

static void sign_cell(char *buf, size_t cap, const char *peer, const char *alg, const char *t)
{
    char key[96], num[32];
    double v;
    if (strcmp(peer, "raw") == 0)
        snprintf(key, sizeof(key), "raw.%s.%s", alg, t);
    else
        snprintf(key, sizeof(key), "sign.%s.%s.%s", peer, alg, t);
    cell(num, sizeof(num), key);
    if (strcmp(peer, "raw") != 0 && ratio_of(&v, peer, alg, t))
        snprintf(buf, cap, "%s (%.2fx)", num, v);
    else
        snprintf(buf, cap, "%s", num);
}

static void section_sign(void)
{
    double n = 0, v = 0, raw = 0, soft = 0, apdu = 0, rtt = 0;
    char c[4][64];
    value(&n, "meta.threads");
    printf("\n1. Signatures per second (in brackets: ratio to raw libcrypto, same threads)\n");
    printf("%-32s%-*s%-*s%-*s%s\n", "", CELL, "RSA-2048, 1 thread", CELL, "RSA-2048, N threads",
           CELL, "P-256, 1 thread", "P-256, N threads");
    for (size_t i = 0; i < sizeof(sign_rows) / sizeof(sign_rows[0]); i++) {
        sign_cell(c[0], sizeof(c[0]), sign_rows[i].peer, "rsa", "t1");
        sign_cell(c[1], sizeof(c[1]), sign_rows[i].peer, "rsa", "tN");
        sign_cell(c[2], sizeof(c[2]), sign_rows[i].peer, "ec", "t1");
        sign_cell(c[3], sizeof(c[3]), sign_rows[i].peer, "ec", "tN");
        printf("%-32s%-*s%-*s%-*s%s\n", sign_rows[i].name, CELL, c[0], CELL, c[1], CELL, c[2],
               c[3]);
    }
    printf("targets:\n");
    static const struct {
        const char *alg, *name;
        double min;
    } t[] = {{"rsa", "RSA-2048", 0.95}, {"ec", "P-256", 0.8}};
    for (int i = 0; i < 2; i++) {
        int known = ratio_of(&v, "sks-emb", t[i].alg, "t1");
        printf("  embedded %-8s 1 thread >= %.2fx raw libcrypto:      %s", t[i].name, t[i].min,
               verdict(known, known && v >= t[i].min));
        if (known)
            printf(" (%.2fx)", v);
        printf("\n");
        /* Both as ratios to raw libcrypto timed with them: load on the machine cancels out. */
        known = ratio_of(&v, "sks-emb", t[i].alg, "t1") &&
                ratio_of(&soft, "softhsm", t[i].alg, "t1") && soft > 0;
        printf("  embedded %-8s 1 thread >= 2x SoftHSMv2:             %s", t[i].name,
               verdict(known, known && v >= 2 * soft));
        if (known)
            printf(" (%.2fx)", v / soft);
        printf("\n");
    }
    for (int i = 0; i < 2; i++) {
        int known = value(&apdu, "apdu.sks-pcsc.sign_%s", t[i].alg);
        printf("  pcscd %-8s one APDU per signature after login:   %s", t[i].name,
               verdict(known, known && apdu <= 1.0));
        if (known)
            printf(" (%.2f)", apdu);
        printf("\n");
        /*
         * The bound as a fraction of raw: 1/(1 + raw/rtt). Against it the ratio
         * to raw timed alongside the module, so that load on the machine cancels.
         */
        known = ratio_of(&v, "sks-pcsc", t[i].alg, "t1") && value(&raw, "raw.%s.t1", t[i].alg) &&
                value(&rtt, "apdu.rtt_s") && raw > 0 && rtt > 0;
        double bound = known ? 1.0 / (1.0 + raw / rtt) : 0;
        printf("  pcscd %-8s >= 0.8 x 1/(raw time + 1 round trip): %s", t[i].name,
               verdict(known, known && v >= 0.8 * bound));
        if (known)
            printf(" (%.2fx; bound %.0f/s)", v / bound, 1.0 / (1.0 / raw + 1.0 / rtt));
        printf("\n");
    }
}

/* ---- 2. load ------------------------------------------------------------ */

static void section_load(void)
{
    char a[32], b[32];
    double reps = 0;
    value(&reps, "meta.load_reps");
    printf("\n2. Load cost: dlopen + C_GetFunctionList + C_Initialize + slot + C_OpenSession +\n"
           "   C_Login + C_Finalize, fresh process each time, median of %.0f (ms)\n",
           reps);
    cell(a, sizeof(a), "load.sks-emb");
    cell(b, sizeof(b), "load.softhsm");
    printf("  %-30s%s\n  %-30s%s\n", "sks-pkcs11, embedded card", a, "SoftHSMv2", b);
}

/* ---- 3. scaling --------------------------------------------------------- */

static const unsigned counts[] = {10, 100, 1000, 10000};
static const char *const scale_figs[] = {"find_id_ms",    "find_label_ms", "first_find_ms",
                                         "init_login_ms", "state_mb",      "rss_mb"};
#define NFIGS (sizeof(scale_figs) / sizeof(scale_figs[0]))

/* Growth of one figure from the smallest to the largest count measured: factor, or -1. */
static double growth(const char *peer, const char *fig, unsigned *lo, unsigned *hi)
{
    double a = 0, b = 0;
    int have_lo = 0;
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        double v;
        if (!value(&v, "scale.%s.%u.%s", peer, counts[i], fig))
            continue;
        if (!have_lo) {
            a = v;
            *lo = counts[i];
            have_lo = 1;
        }
        b = v;
        *hi = counts[i];
    }
    return have_lo && *hi > *lo && a > 0 ? b / a : -1;
}

static void section_scale(void)
{
    static const struct {
        const char *peer, *name;
    } peers[] = {{"sks", "sks-pkcs11"}, {"softhsm", "SoftHSMv2"}};
    char c[NFIGS][32];
    double v = 0;
    printf("\n3. Key-count scaling: EC P-256 keys on one token (times in ms, mean of many finds;\n"
           "   init+login and first find: median of fresh processes)\n");
    printf("  %-7s%-12s%-14s%-14s%-13s%-13s%-11s%s\n", "keys", "module", "find by ID",
           "find by label", "first find", "init+login", "state MB", "RSS MB");
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        double dummy;
        if (!value(&dummy, "scale.sks.%u.state_mb", counts[i]) &&
            !value(&dummy, "scale.softhsm.%u.state_mb", counts[i]) && find("meta.short") != NULL &&
            counts[i] > 100)
            continue; /* not part of a short run */
        for (size_t p = 0; p < 2; p++) {
            for (size_t f = 0; f < NFIGS; f++) {
                char key[96];
                snprintf(key, sizeof(key), "scale.%s.%u.%s", peers[p].peer, counts[i],
                         scale_figs[f]);
                cell(c[f], sizeof(c[f]), key);
            }
            char n[16] = "";
            if (p == 0)
                snprintf(n, sizeof(n), "%u", counts[i]);
            printf("  %-7s%-12s%-14s%-14s%-13s%-13s%-11s%s\n", n, peers[p].name, c[0], c[1], c[2],
                   c[3], c[4], c[5]);
        }
    }
    for (size_t p = 0; p < 2; p++) {
        unsigned lo = 0, hi = 0;
        printf("  growth %-10s", peers[p].name);
        for (size_t f = 0; f < NFIGS; f++) {
            double g = growth(peers[p].peer, scale_figs[f], &lo, &hi);
            if (g >= 0)
                printf(" %s x%.3g", scale_figs[f], g);
        }
        if (hi > lo)
            printf("  (keys x%u)", hi / lo);
        printf("\n");
    }
    double p1, p2, p3;
    printf("  key creation: sks (issuer sessions of 25 keys, card engine) %s keys/s; SoftHSMv2 "
           "C_GenerateKeyPair %s keys/s; sks-pkcs11 C_GenerateKeyPair %s keys/s\n",
           value(&p1, "populate.sks.keys_s") ? (snprintf(c[0], 32, "%.0f", p1), c[0]) : "n/a",
           value(&p2, "populate.softhsm.keys_s") ? (snprintf(c[1], 32, "%.0f", p2), c[1]) : "n/a",
           value(&p3, "populate.sks-module.keys_s") ? (snprintf(c[2], 32, "%.1f", p3), c[2])
                                                    : "n/a");
    printf("targets (10,000 keys, sks-pkcs11):\n");
    int known = value(&v, "scale.sks.10000.find_id_ms");
    printf("  find by CKA_ID <= 0.1 ms:                            %s", verdict(known, v <= 0.1));
    if (known)
        printf(" (%.4f ms)", v);
    printf("\n");
    known = value(&v, "scale.sks.10000.init_login_ms");
    printf("  init+login <= 10 ms:                                 %s", verdict(known, v <= 10));
    if (known)
        printf(" (%.2f ms)", v);
    printf("\n");
    /* Super-linear: a figure grows faster than the key count (with 50% for noise). */
    unsigned lo = 0, hi = 0;
    int checked = 0, linear = 1;
    for (size_t f = 0; f < NFIGS; f++) {
        double g = growth("sks", scale_figs[f], &lo, &hi);
        if (g < 0 || hi < 1000)
            continue;
        checked = 1;
        if (g > 1.5 * ((double)hi / lo))
            linear = 0;
    }
    printf("  no super-linear growth (%u to %u keys):              %s\n", lo, hi,
           verdict(checked, linear));
}

/* ---- 4. provisioning ---------------------------------------------------- */

/* The issuer-side injection rows (sks-bench inject) and their target. */
static void section_inject(void)
{
    static const struct {
        const char *kind, *text;
    } k2[] = {{"rsa", "K2 RSA-2048"}, {"ec", "K2 P-256"}};
    char a[32], b[32], key[64];
    double blobs = 0, raw = 0, bytes = 0;
    int known[2], met[2];
    printf("  issuer-side injection, no-card mode (issuer token, transport = none), a blob:\n"
           "    C_GenerateKey S1, C_WrapKey(SESSION_KEY_RSA_OAEP, K1 RSA-2048), "
           "C_WrapKey(INJECT_KEY, S1, K2)\n");
    printf("  %-32s%-12s%-12s%s\n", "blobs/s", "module", "raw bound", "ratio");
    for (int i = 0; i < 2; i++) {
        snprintf(key, sizeof(key), "prov.inject.%s.blobs_s", k2[i].kind);
        cell(a, sizeof(a), key);
        known[i] = value(&blobs, "%s", key);
        snprintf(key, sizeof(key), "prov.inject.%s.raw_s", k2[i].kind);
        cell(b, sizeof(b), key);
        known[i] = known[i] && value(&raw, "%s", key) && raw > 0;
        met[i] = known[i] && blobs >= 0.5 * raw;
        printf("  %-32s%-12s%-12s", k2[i].text, a, b);
        if (known[i])
            printf("%.2fx", blobs / raw);
        printf("\n");
    }
    if (value(&bytes, "prov.inject.rsa.pkcs8_bytes") && value(&raw, "prov.inject.ec.pkcs8_bytes"))
        printf("    raw bound: RSA-OAEP-SHA256 of 32 bytes + AES-256-GCM of K2's PKCS#8 "
               "(%.0f / %.0f bytes)\n",
               bytes, raw);
    printf("target: injection >= 0.5x its raw crypto bound:      K2 RSA-2048 %s, K2 P-256 %s\n",
           verdict(known[0], met[0]), verdict(known[1], met[1]));
}

static void section_prov(void)
{
    double bound = 0, v = 0;
    char a[32], b[32], c[32];
    int have_bound = value(&bound, "prov.bound_sessions_s");
    printf(
        "\n4. Provisioning: issuer library (src/issuer) + card engine (src/card), one process\n");
    printf("   a session: ECDH P-256 session key, PIN policy, EC P-256 key, certificate path, "
           "close\n");
    static const struct {
        const char *name, *text;
    } rows[] = {{"disk", "sessions/s, card state on disk"},
                {"tmpfs", "sessions/s, card state on tmpfs"}};
    for (int i = 0; i < 2; i++) {
        char key[64];
        snprintf(key, sizeof(key), "prov.%s.sessions_s", rows[i].name);
        cell(a, sizeof(a), key);
        printf("  %-48s%-12s", rows[i].text, a);
        if (have_bound && value(&v, "%s", key))
            printf("%.2fx of the bound", v / bound);
        printf("\n");
    }
    cell(a, sizeof(a), "prov.bound_sessions_s");
    printf("  %-48s%s\n", "raw crypto bound, sessions/s", a);
    cell(a, sizeof(a), "prov.raw.keygen_us");
    cell(b, sizeof(b), "prov.raw.ecdh_us");
    cell(c, sizeof(c), "prov.raw.sign_us");
    printf("    per session 2 keygen (%s us), 2 ECDH (%s us), 2 ECDSA sign (%s us), ", a, b, c);
    cell(a, sizeof(a), "prov.raw.verify_us");
    printf("2 verify (%s us)\n", a);
    printf("target: provisioning >= 0.5x its raw crypto bound:   ");
    int known_disk = have_bound && value(&v, "prov.disk.sessions_s");
    printf("disk %s", verdict(known_disk, known_disk && v >= 0.5 * bound));
    int known_tmp = have_bound && value(&v, "prov.tmpfs.sessions_s");
    printf(", tmpfs %s\n", verdict(known_tmp, known_tmp && v >= 0.5 * bound));
    section_inject();
}

/* ---- 5. APDUs ----------------------------------------------------------- */

static void section_apdu(void)
{
    static const char *const ops[] = {"login", "find_first", "find", "sign_rsa", "sign_ec"};
    static const char *const names[] = {"C_Login", "first find", "later find", "RSA sign",
                                        "EC sign"};
    char a[32], b[32], key[64];
    double rtt;
    printf("\n5. The card link\n");
    cell(a, sizeof(a), "apdu.rtt_s");
    printf("  APDU round trips/s through pcscd + vpcd to sks-card (SELECT): %s", a);
    if (value(&rtt, "apdu.rtt_s") && rtt > 0)
        printf(" (%.3f ms each)", 1000.0 / rtt);
    printf("\n  APDUs per operation      %-14s%s\n", "pcscd", "embedded");
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        snprintf(key, sizeof(key), "apdu.sks-pcsc.%s", ops[i]);
        cell(a, sizeof(a), key);
        snprintf(key, sizeof(key), "apdu.sks-emb.%s", ops[i]);
        cell(b, sizeof(b), key);
        printf("  %-25s%-14s%s\n", names[i], a, b);
    }
}

int bench_cmd_report(const bench_opts *o)
{
    if (o->records == NULL || load_records(o->records) != 0) {
        fprintf(stderr, "sks-bench report: cannot read the records (--records FILE)\n");
        return 2;
    }
    printf("sks-bench: sks-pkcs11 beside SoftHSMv2 and raw OpenSSL\n");
    machine();
    section_sign();
    section_load();
    section_scale();
    section_prov();
    section_apdu();
    if (nnotes > 0) {
        printf("\nn/a:\n");
        for (size_t i = 0; i < nnotes; i++)
            printf("  - %s\n", notes[i]);
    }
    return 0;
}
