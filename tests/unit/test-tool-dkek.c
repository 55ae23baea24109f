/*
 * test-tool-dkek.c - sks-tool's share handling: Shamir's scheme over
 * GF(2^127 - 1) (any N of M shares recover the secret, N - 1 or a wrong one
 * do not; the shares lie on a polynomial of degree N - 1, checked here with
 * BIGNUM arithmetic of the test's own), the custodian share text form, and
 * the share files: sks-tool's scrypt + AES-256-GCM format round trip, and
 * SmartCard-HSM "Salted__" files made by `openssl enc -aes-256-cbc -md md5`
 * (EVP_BytesToKey count 1; sc-hsm-tool's count of 10,000,000 runs the same
 * code for about 15 s, too long for a unit test).
 */
#include <check.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/tool_shamir.h"
#include "testlib.h"
#include "tools/tool_share_file.h"

static BIGNUM *bn(const uint8_t v[TOOL_SHAMIR_SECRET_LEN])
{
    BIGNUM *b = BN_bin2bn(v, TOOL_SHAMIR_SECRET_LEN, NULL);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* p = 2^127 - 1, from its decimal form. */
static BIGNUM *prime(void)
{
    BIGNUM *p = NULL;
    ck_assert_int_gt(BN_dec2bn(&p, "170141183460469231731687303715884105727"), 0);
    return p;
}

START_TEST(any_two_of_three)
{
    uint8_t s[16], got[16];
    tool_shamir_share sh[3];
    ck_assert_int_eq(tool_shamir_random_secret(s), 0);
    ck_assert_int_eq(tool_shamir_split(s, 2, 3, sh), 0);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_uint_eq(sh[i].x, i + 1);
        for (unsigned j = 0; j < 3; j++) {
            if (i == j)
                continue;
            tool_shamir_share two[2] = {sh[i], sh[j]};
            ck_assert_int_eq(tool_shamir_combine(two, 2, got), 0);
            ck_assert_mem_eq(got, s, 16);
        }
        /* One share alone is not the secret. */
        ck_assert_int_eq(tool_shamir_combine(&sh[i], 1, got), 0);
        ck_assert_mem_ne(got, s, 16);
    }
    /*
     * Independently: degree 1 means y1 - 2 y2 + y3 = 0 (mod p), and the line
     * through (1, y1), (2, y2) meets x = 0 at 2 y1 - y2.
     */
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = prime(), *y1 = bn(sh[0].y), *y2 = bn(sh[1].y), *y3 = bn(sh[2].y);
    BIGNUM *t = BN_new(), *u = BN_new();
    ck_assert_int_eq(BN_mod_add(t, y1, y3, p, ctx), 1);
    ck_assert_int_eq(BN_mod_add(u, y2, y2, p, ctx), 1);
    ck_assert_int_eq(BN_mod_sub(t, t, u, p, ctx), 1);
    ck_assert(BN_is_zero(t));
    ck_assert_int_eq(BN_mod_add(t, y1, y1, p, ctx), 1);
    ck_assert_int_eq(BN_mod_sub(t, t, y2, p, ctx), 1);
    BIGNUM *sec = bn(s);
    ck_assert_int_eq(BN_cmp(t, sec), 0);
    BN_free(sec), BN_free(t), BN_free(u), BN_free(y1), BN_free(y2), BN_free(y3), BN_free(p);
    BN_CTX_free(ctx);

    /* A wrong share gives another value; a repeated x is refused. */
    tool_shamir_share bad[2] = {sh[0], sh[1]};
    bad[1].y[15] ^= 1;
    ck_assert_int_eq(tool_shamir_combine(bad, 2, got), 0);
    ck_assert_mem_ne(got, s, 16);
    tool_shamir_share same[2] = {sh[0], sh[0]};
    ck_assert_int_eq(tool_shamir_combine(same, 2, got), -1);
}
END_TEST

START_TEST(any_three_of_five)
{
    uint8_t s[16], got[16];
    tool_shamir_share sh[5];
    ck_assert_int_eq(tool_shamir_random_secret(s), 0);
    ck_assert_int_eq(tool_shamir_split(s, 3, 5, sh), 0);
    int subsets = 0;
    for (unsigned a = 0; a < 5; a++)
        for (unsigned b = a + 1; b < 5; b++) {
            tool_shamir_share two[2] = {sh[a], sh[b]};
            ck_assert_int_eq(tool_shamir_combine(two, 2, got), 0);
            ck_assert_mem_ne(got, s, 16);
            for (unsigned c = b + 1; c < 5; c++) {
                /* Shares in any order. */
                tool_shamir_share three[3] = {sh[c], sh[a], sh[b]};
                ck_assert_int_eq(tool_shamir_combine(three, 3, got), 0);
                ck_assert_mem_eq(got, s, 16);
                subsets++;
            }
        }
    ck_assert_int_eq(subsets, 10);
    /* All five work too. */
    ck_assert_int_eq(tool_shamir_combine(sh, 5, got), 0);
    ck_assert_mem_eq(got, s, 16);
    /* Bad parameters. */
    ck_assert_int_eq(tool_shamir_split(s, 4, 3, sh), -1);
    ck_assert_int_eq(tool_shamir_split(s, 0, 3, sh), -1);
    uint8_t zero[16] = {0};
    ck_assert_int_eq(tool_shamir_split(zero, 2, 3, sh), -1);
}
END_TEST

START_TEST(share_text)
{
    uint8_t s[16];
    tool_shamir_share sh[3], back;
    char text[TOOL_SHAMIR_TEXT_MAX];
    ck_assert_int_eq(tool_shamir_random_secret(s), 0);
    ck_assert_int_eq(tool_shamir_split(s, 2, 3, sh), 0);
    tool_shamir_format(&sh[1], text);
    ck_assert_uint_eq(strlen(text), 1 + 1 + 32 + 1 + 4);
    ck_assert_int_eq(text[0], '2');
    ck_assert_int_eq(tool_shamir_parse(text, &back), 0);
    ck_assert_uint_eq(back.x, 2);
    ck_assert_mem_eq(back.y, sh[1].y, 16);
    /* Upper case and blanks are fine; a typing error is caught by the check digits. */
    char loose[64];
    snprintf(loose, sizeof(loose), "  %s \n", text);
    for (char *c = loose; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    ck_assert_int_eq(tool_shamir_parse(loose, &back), 0);
    text[10] = text[10] == '0' ? '1' : '0';
    ck_assert_int_eq(tool_shamir_parse(text, &back), -1);
    ck_assert_int_eq(tool_shamir_parse("", &back), -1);
    ck_assert_int_eq(tool_shamir_parse("17-00-0000", &back), -1);
}
END_TEST

/* ---- share files ------------------------------------------------------------------ */

START_TEST(sks_share_file_round_trip)
{
    uint8_t share[32], file[TOOL_SHARE_FILE_LEN], back[32];
    const char *why = NULL;
    tool_share_info info;
    ck_assert_int_eq(RAND_bytes(share, 32), 1);
    ck_assert_int_eq(tool_share_file_seal(share, "correct horse battery", 2, 3, 0, file), 0);
    ck_assert_mem_eq(file, "SKSDKEK1", 8);
    tool_share_file_inspect(file, sizeof(file), &info);
    ck_assert_int_eq(info.kind, TOOL_SHARE_SKS);
    ck_assert_uint_eq(info.threshold, 2);
    ck_assert_uint_eq(info.total, 3);
    ck_assert_uint_eq(info.log2n, TOOL_SHARE_LOG2N);
    ck_assert_uint_eq(info.r, 8);
    ck_assert_uint_eq(info.p, 1);
    ck_assert_int_eq(
        tool_share_file_open(file, sizeof(file), "correct horse battery", 0, back, &why), 0);
    ck_assert_mem_eq(back, share, 32);
    ck_assert_int_eq(
        tool_share_file_open(file, sizeof(file), "correct horse batterz", 0, back, &why), -1);
    /* Any changed byte fails: the share, the tag, or the header (bound as GCM data). */
    static const size_t where[] = {12, 20, 40, 50, 80};
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        file[where[i]] ^= 0x01;
        ck_assert_int_eq(
            tool_share_file_open(file, sizeof(file), "correct horse battery", 0, back, &why), -1);
        file[where[i]] ^= 0x01;
    }
    ck_assert_int_eq(tool_share_file_open(file, sizeof(file) - 1, "x", 0, back, &why), -1);
    ck_assert_str_eq(why, "not a DKEK share file");
}
END_TEST

/* A Salted__ file made by the openssl command line from a known share. */
START_TEST(salted_from_openssl_enc)
{
    char dir[] = "/tmp/sks-test-salted.XXXXXX", cmd[512], path[256];
    uint8_t share[32], file[128], back[32];
    const char *why = NULL;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (int i = 0; i < 32; i++)
        share[i] = (uint8_t)(0xC0 + i);
    snprintf(path, sizeof(path), "%s/raw", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(share, 1, 32, f), 32);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "openssl enc -aes-256-cbc -md md5 -pass pass:hsm-password -in %s/raw -out %s/share "
             "2>/dev/null",
             dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(path, sizeof(path), "%s/share", dir);
    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(file, 1, sizeof(file), f);
    fclose(f);
    ck_assert_uint_eq(n, 64);
    ck_assert_mem_eq(file, "Salted__", 8);
    tool_share_info info;
    tool_share_file_inspect(file, n, &info);
    ck_assert_int_eq(info.kind, TOOL_SHARE_SALTED);
    ck_assert_int_eq(tool_share_file_open(file, n, "hsm-password", 0, back, &why), 0);
    ck_assert_mem_eq(back, share, 32);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *tool_dkek_suite(void)
{
    Suite *s = suite_create("tool-dkek");
    TCase *tc = tcase_create("shamir");
    tcase_add_test(tc, any_two_of_three);
    tcase_add_test(tc, any_three_of_five);
    tcase_add_test(tc, share_text);
    suite_add_tcase(s, tc);
    tc = tcase_create("share files");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sks_share_file_round_trip);
    tcase_add_test(tc, salted_from_openssl_enc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run_suite(tool_dkek_suite());
}
