/*
 * tool_share_file.h - DKEK share files (docs/dkek.md "Share files").
 *
 * sks-tool writes its own format, 90 bytes:
 *   "SKSDKEK1" | KDF(1) = 1 (scrypt) | log2 N(1) | r(1) | p(1) |
 *   PasswordThreshold(1) | PasswordShares(1) | Salt(16) | Nonce(12) |
 *   AES-256-GCM(key = scrypt(password, Salt, N, r, p), Nonce,
 *               aad = the 42 bytes before it, the 32-byte share) | Tag(16)
 * PasswordThreshold/PasswordShares are 0 for a typed password, else the
 * n-of-m split of a random password among custodians (tool_shamir.h).
 *
 * It also reads the SmartCard-HSM's format (sc-hsm-tool, and `openssl enc
 * -aes-256-cbc -md md5`), 64 bytes:
 *   "Salted__" | Salt(8) | AES-256-CBC(key, iv = EVP_BytesToKey(MD5, Salt,
 *   password, count), PKCS#7(the 32-byte share))
 * with count 1 (openssl enc) or 10,000,000 (sc-hsm-tool).
 */
#ifndef SKS_TOOL_SHARE_FILE_H
#define SKS_TOOL_SHARE_FILE_H

#include <stddef.h>
#include <stdint.h>

#define TOOL_SHARE_LEN        32
#define TOOL_SHARE_FILE_LEN   90
#define TOOL_SALTED_FILE_LEN  64
#define TOOL_SHARE_LOG2N      17 /* scrypt N = 2^17: 128 MiB with r = 8 */
#define TOOL_SHARE_R          8
#define TOOL_SHARE_P          1
#define TOOL_SALTED_COUNT_HSM 10000000 /* sc-hsm-tool's EVP_BytesToKey count */

enum tool_share_kind { TOOL_SHARE_UNKNOWN = 0, TOOL_SHARE_SKS = 1, TOOL_SHARE_SALTED = 2 };

typedef struct {
    enum tool_share_kind kind;
    unsigned threshold, total; /* password shares (SKS files; 0 for a typed password) */
    unsigned log2n, r, p;      /* scrypt cost (SKS files) */
} tool_share_info;

/* What kind of share file these bytes are, and its recorded parameters. */
void tool_share_file_inspect(const uint8_t *p, size_t n, tool_share_info *info);

/*
 * Encrypt `share` under `password` into `out` (TOOL_SHARE_FILE_LEN bytes)
 * with the default scrypt cost, showing progress on stderr when `progress`.
 * 0 or -1.
 */
int tool_share_file_seal(const uint8_t share[TOOL_SHARE_LEN], const char *password,
                         unsigned threshold, unsigned total, int progress,
                         uint8_t out[TOOL_SHARE_FILE_LEN]);

/*
 * Decrypt a share file of either kind. 0, or -1 with *why ("wrong password
 * or damaged file", "not a DKEK share file", ...). The share is all-zero on
 * failure.
 */
int tool_share_file_open(const uint8_t *p, size_t n, const char *password, int progress,
                         uint8_t share[TOOL_SHARE_LEN], const char **why);

#endif
