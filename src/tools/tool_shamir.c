/*
 * tool_shamir.c - Shamir's secret sharing over GF(2^127 - 1) with OpenSSL
 * BIGNUMs (tool_shamir.h). Coefficients come from BN_priv_rand_range, every
 * BIGNUM holding secret material is cleared when freed.
 */
#include "tools/tool_shamir.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* p = 2^127 - 1. */
static BIGNUM *prime(void)
{
    BIGNUM *p = BN_new();
    if (p != NULL && (BN_set_bit(p, 127) != 1 || BN_sub_word(p, 1) != 1)) {
        BN_free(p);
        p = NULL;
    }
    return p;
}

/* A 16-byte big-endian value as a BIGNUM below p, or NULL. */
static BIGNUM *field_value(const uint8_t v[TOOL_SHAMIR_SECRET_LEN], const BIGNUM *p)
{
    BIGNUM *b = BN_bin2bn(v, TOOL_SHAMIR_SECRET_LEN, NULL);
    if (b != NULL && BN_cmp(b, p) >= 0) {
        BN_clear_free(b);
        b = NULL;
    }
    return b;
}

int tool_shamir_random_secret(uint8_t secret[TOOL_SHAMIR_SECRET_LEN])
{
    BIGNUM *p = prime(), *s = BN_new();
    int ok = p != NULL && s != NULL;
    /* Uniform in 1..p-1: draw below p - 1, add 1. */
    ok = ok && BN_sub_word(p, 1) == 1 && BN_priv_rand_range(s, p) == 1 && BN_add_word(s, 1) == 1 &&
         BN_bn2binpad(s, secret, TOOL_SHAMIR_SECRET_LEN) == TOOL_SHAMIR_SECRET_LEN;
    BN_clear_free(s);
    BN_free(p);
    return ok ? 0 : -1;
}

int tool_shamir_split(const uint8_t secret[TOOL_SHAMIR_SECRET_LEN], unsigned threshold,
                      unsigned total, tool_shamir_share *out)
{
    BIGNUM *coef[TOOL_SHAMIR_MAX];
    BIGNUM *p = prime(), *y = BN_new(), *x = BN_new();
    BN_CTX *ctx = BN_CTX_secure_new();
    unsigned made = 0;
    int ok = p != NULL && y != NULL && x != NULL && ctx != NULL && threshold >= 1 &&
             threshold <= total && total <= TOOL_SHAMIR_MAX;

    memset(coef, 0, sizeof(coef));
    if (ok) {
        coef[0] = field_value(secret, p);
        ok = coef[0] != NULL && !BN_is_zero(coef[0]);
        made = 1;
    }
    for (unsigned i = 1; ok && i < threshold; i++, made++)
        ok = (coef[i] = BN_new()) != NULL && BN_priv_rand_range(coef[i], p) == 1;
    /* f(x) by Horner's rule, for x = 1..total. */
    for (unsigned s = 0; ok && s < total; s++) {
        ok = BN_set_word(x, s + 1) == 1 && BN_copy(y, coef[threshold - 1]) != NULL;
        for (unsigned i = threshold - 1; ok && i > 0; i--)
            ok = BN_mod_mul(y, y, x, p, ctx) == 1 && BN_mod_add(y, y, coef[i - 1], p, ctx) == 1;
        out[s].x = s + 1;
        ok = ok && BN_bn2binpad(y, out[s].y, TOOL_SHAMIR_SECRET_LEN) == TOOL_SHAMIR_SECRET_LEN;
    }
    for (unsigned i = 0; i < made && i < TOOL_SHAMIR_MAX; i++)
        BN_clear_free(coef[i]);
    BN_clear_free(y);
    BN_free(x);
    BN_free(p);
    BN_CTX_free(ctx);
    if (!ok && total <= TOOL_SHAMIR_MAX)
        OPENSSL_cleanse(out, total * sizeof(*out));
    return ok ? 0 : -1;
}

int tool_shamir_combine(const tool_shamir_share *shares, unsigned n,
                        uint8_t secret[TOOL_SHAMIR_SECRET_LEN])
{
    BIGNUM *p = prime(), *sum = BN_new(), *num = BN_new(), *den = BN_new(), *t = BN_new();
    BN_CTX *ctx = BN_CTX_secure_new();
    int ok = p != NULL && sum != NULL && num != NULL && den != NULL && t != NULL && ctx != NULL &&
             n >= 1 && n <= TOOL_SHAMIR_MAX;

    for (unsigned i = 0; ok && i < n; i++) {
        ok = shares[i].x >= 1 && shares[i].x <= TOOL_SHAMIR_MAX;
        for (unsigned j = 0; ok && j < i; j++)
            ok = shares[i].x != shares[j].x;
    }
    if (ok)
        BN_zero(sum);
    /* s = sum_i y_i * prod_{j != i} x_j / (x_j - x_i)  (mod p) */
    for (unsigned i = 0; ok && i < n; i++) {
        BIGNUM *yi = field_value(shares[i].y, p);
        ok = yi != NULL && BN_one(num) == 1 && BN_one(den) == 1;
        for (unsigned j = 0; ok && j < n; j++) {
            if (j == i)
                continue;
            long d = (long)shares[j].x - (long)shares[i].x;
            ok = BN_set_word(t, shares[j].x) == 1 && BN_mod_mul(num, num, t, p, ctx) == 1 &&
                 BN_set_word(t, (BN_ULONG)(d < 0 ? -d : d)) == 1;
            if (ok && d < 0)
                ok = BN_sub(t, p, t) == 1;
            ok = ok && BN_mod_mul(den, den, t, p, ctx) == 1;
        }
        ok = ok && BN_mod_inverse(den, den, p, ctx) != NULL &&
             BN_mod_mul(t, num, den, p, ctx) == 1 && BN_mod_mul(t, t, yi, p, ctx) == 1 &&
             BN_mod_add(sum, sum, t, p, ctx) == 1;
        BN_clear_free(yi);
    }
    ok = ok && BN_bn2binpad(sum, secret, TOOL_SHAMIR_SECRET_LEN) == TOOL_SHAMIR_SECRET_LEN;
    BN_clear_free(sum);
    BN_clear_free(num);
    BN_clear_free(den);
    BN_clear_free(t);
    BN_free(p);
    BN_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* First two bytes of SHA-256(x | y). */
static unsigned share_check(const tool_shamir_share *s)
{
    uint8_t buf[1 + TOOL_SHAMIR_SECRET_LEN], md[32];
    unsigned len = 0;
    buf[0] = (uint8_t)s->x;
    memcpy(buf + 1, s->y, TOOL_SHAMIR_SECRET_LEN);
    if (EVP_Digest(buf, sizeof(buf), md, &len, EVP_sha256(), NULL) != 1)
        memset(md, 0, sizeof(md));
    OPENSSL_cleanse(buf, sizeof(buf));
    return ((unsigned)md[0] << 8) | md[1];
}

void tool_shamir_format(const tool_shamir_share *s, char buf[TOOL_SHAMIR_TEXT_MAX])
{
    int n = snprintf(buf, TOOL_SHAMIR_TEXT_MAX, "%u-", s->x);
    for (size_t i = 0; i < TOOL_SHAMIR_SECRET_LEN && n > 0; i++)
        n += snprintf(buf + n, TOOL_SHAMIR_TEXT_MAX - (size_t)n, "%02x", s->y[i]);
    if (n > 0)
        snprintf(buf + n, TOOL_SHAMIR_TEXT_MAX - (size_t)n, "-%04x", share_check(s));
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int tool_shamir_parse(const char *text, tool_shamir_share *out)
{
    const char *p = text;
    unsigned x = 0, check = 0;
    memset(out, 0, sizeof(*out));
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    while (isdigit((unsigned char)*p) && x <= TOOL_SHAMIR_MAX)
        x = x * 10 + (unsigned)(*p++ - '0');
    if (x < 1 || x > TOOL_SHAMIR_MAX || *p++ != '-')
        return -1;
    for (size_t i = 0; i < TOOL_SHAMIR_SECRET_LEN; i++) {
        int hi = hex_digit((unsigned char)p[0]), lo = hi >= 0 ? hex_digit((unsigned char)p[1]) : -1;
        if (lo < 0)
            return -1;
        out->y[i] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    if (*p++ != '-')
        return -1;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit((unsigned char)*p++);
        if (d < 0)
            return -1;
        check = check << 4 | (unsigned)d;
    }
    while (isspace((unsigned char)*p))
        p++;
    out->x = x;
    if (*p != '\0' || check != share_check(out)) {
        OPENSSL_cleanse(out, sizeof(*out));
        return -1;
    }
    return 0;
}
