/*
 * tool_shamir.h - Shamir's secret sharing of a DKEK share's password among
 * key custodians (docs/dkek.md "Password shares").
 *
 * The field is the integers modulo the Mersenne prime p = 2^127 - 1. The
 * secret s (0 < s < p) is the constant term of a polynomial of degree
 * threshold - 1 whose other coefficients are uniformly random below p;
 * custodian x (1..total) receives (x, f(x)). Any `threshold` shares give s
 * by Lagrange interpolation at 0; fewer are consistent with every s, so
 * they reveal nothing about it.
 *
 * A share is written "X-YYYY...-CCCC": X in decimal, f(X) as 32 hex digits,
 * and a 4-hex-digit check (the first two bytes of SHA-256(X | f(X))) that
 * catches typing errors before the slow password derivation runs.
 */
#ifndef SKS_TOOL_SHAMIR_H
#define SKS_TOOL_SHAMIR_H

#include <stddef.h>
#include <stdint.h>

#define TOOL_SHAMIR_SECRET_LEN 16 /* bytes of s and of each f(x), big-endian */
#define TOOL_SHAMIR_MAX        16 /* custodians at most */
#define TOOL_SHAMIR_TEXT_MAX   48 /* a formatted share with its NUL */

typedef struct {
    unsigned x;                        /* 1..TOOL_SHAMIR_MAX */
    uint8_t y[TOOL_SHAMIR_SECRET_LEN]; /* f(x) */
} tool_shamir_share;

/* A random secret for tool_shamir_split (0 < s < p). 0 or -1. */
int tool_shamir_random_secret(uint8_t secret[TOOL_SHAMIR_SECRET_LEN]);

/*
 * Split `secret` (0 < s < p) into `total` shares at x = 1..total, any
 * `threshold` of which recover it (1 <= threshold <= total <= TOOL_SHAMIR_MAX). 0 or -1.
 */
int tool_shamir_split(const uint8_t secret[TOOL_SHAMIR_SECRET_LEN], unsigned threshold,
                      unsigned total, tool_shamir_share *out);

/*
 * The secret through the `n` shares (their x distinct and in range, each y
 * below p). With fewer shares than the threshold, or a wrong one, the result
 * is some other value: only the share file's tag tells. 0 or -1.
 */
int tool_shamir_combine(const tool_shamir_share *shares, unsigned n,
                        uint8_t secret[TOOL_SHAMIR_SECRET_LEN]);

/* "X-YYYY...-CCCC" into buf (TOOL_SHAMIR_TEXT_MAX bytes). */
void tool_shamir_format(const tool_shamir_share *s, char buf[TOOL_SHAMIR_TEXT_MAX]);
/* Parse a formatted share (surrounding blanks allowed); -1 if malformed or the check fails. */
int tool_shamir_parse(const char *text, tool_shamir_share *out);

#endif
