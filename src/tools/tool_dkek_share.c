/*
 * tool_dkek_share.c - creating DKEK share files and finding the password
 * to open one (tool_dkek.h): a password typed twice, or a random one split
 * among custodians with Shamir's scheme (tool_shamir.h) and shown to each
 * of them once; at import, the password typed once or put together from
 * enough custodian shares.
 */
#include "tools/tool_dkek.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "tools/tool_card.h"
#include "tools/tool_common.h"
#include "tools/tool_shamir.h"
#include "tools/tool_share_file.h"

#define PASSWORD_MIN 8

/* The password of a split: the secret as 32 lowercase hex digits. */
static void secret_password(const uint8_t secret[TOOL_SHAMIR_SECRET_LEN], char *pw, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < TOOL_SHAMIR_SECRET_LEN && n + 3 <= cap; i++)
        n += (size_t)snprintf(pw + n, cap - n, "%02x", secret[i]);
}

static int interactive(void)
{
    return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}

static void wait_enter(const char *what)
{
    char line[64];
    printf("%s", what);
    fflush(stdout);
    if (fgets(line, sizeof(line), stdin) == NULL)
        clearerr(stdin);
}

/* Show each custodian's share once; on a terminal one at a time, the screen cleared after each. */
static void hand_out(const tool_shamir_share *shares, unsigned threshold, unsigned total)
{
    char text[TOOL_SHAMIR_TEXT_MAX];
    int tty = interactive();
    printf("The share's password is random and split among %u custodians: any %u of their "
           "password shares open it, fewer reveal nothing.\n",
           total, threshold);
    for (unsigned i = 0; i < total; i++) {
        if (tty) {
            printf("\nCustodian %u of %u, alone at the screen: ", i + 1, total);
            wait_enter("press Enter to see your share.");
        }
        tool_shamir_format(&shares[i], text);
        printf("Password share %u of %u: %s\n", i + 1, total, text);
        OPENSSL_cleanse(text, sizeof(text));
        if (tty) {
            wait_enter("Note it down, then press Enter to clear the screen.");
            printf("\033[2J\033[H");
        }
        fflush(stdout);
    }
}

/* A new password typed twice (or one line from --password-fd). */
static int new_password(const tool_dkek_opts *o, char *pw, size_t cap)
{
    char again[TOOL_SECRET_MAX];
    if (o->input.fd < 0)
        fprintf(stderr,
                "The DKEK share is encrypted under a key derived from a password: choose "
                "a long one (at least %d characters).\n",
                PASSWORD_MIN);
    for (int tries = 0; tries < 3; tries++) {
        if (tool_secret_read(&o->input, "Password for the DKEK share: ", pw, cap) != 0)
            break;
        if (strlen(pw) < PASSWORD_MIN) {
            fprintf(stderr, "%s: the password needs at least %d characters\n", tool_prog,
                    PASSWORD_MIN);
            if (o->input.fd >= 0)
                break;
            continue;
        }
        if (o->input.fd >= 0)
            return 0;
        int same = tool_secret_read(&o->input, "The same again: ", again, sizeof(again)) == 0 &&
                   strcmp(pw, again) == 0;
        OPENSSL_cleanse(again, sizeof(again));
        if (same)
            return 0;
        fprintf(stderr, "%s: the passwords differ\n", tool_prog);
    }
    OPENSSL_cleanse(pw, cap);
    fprintf(stderr, "%s: no password\n", tool_prog);
    return -1;
}

int tool_dkek_create_share(const tool_dkek_opts *o)
{
    uint8_t share[TOOL_SHARE_LEN], file[TOOL_SHARE_FILE_LEN], secret[TOOL_SHAMIR_SECRET_LEN];
    tool_shamir_share parts[TOOL_SHAMIR_MAX];
    char pw[TOOL_SECRET_MAX];
    int split = o->pwd_threshold > 0;
    int rc = EXIT_FAIL;

    if (access(o->file, F_OK) == 0 && !o->force) {
        fprintf(stderr, "%s: %s exists (use --force to replace it)\n", tool_prog, o->file);
        return EXIT_FAIL;
    }
    if (split) {
        if (tool_shamir_random_secret(secret) != 0 ||
            tool_shamir_split(secret, (unsigned)o->pwd_threshold, (unsigned)o->pwd_total, parts) !=
                0) {
            fprintf(stderr, "%s: cannot split the password\n", tool_prog);
            goto out;
        }
        secret_password(secret, pw, sizeof(pw));
    } else if (new_password(o, pw, sizeof(pw)) != 0) {
        goto out;
    }
    if (RAND_bytes(share, sizeof(share)) != 1 ||
        tool_share_file_seal(share, pw, split ? (unsigned)o->pwd_threshold : 0,
                             split ? (unsigned)o->pwd_total : 0, 1, file) != 0) {
        fprintf(stderr, "%s: cannot encrypt the DKEK share\n", tool_prog);
        goto out;
    }
    if (tool_write_file(o->file, file, sizeof(file), o->force) != 0)
        goto out;
    printf("DKEK share created and saved to %s\n", o->file);
    if (split)
        hand_out(parts, (unsigned)o->pwd_threshold, (unsigned)o->pwd_total);
    printf("Keep the file in a safe place (a printable copy: openssl base64 -in %s).\n", o->file);
    rc = EXIT_OK;
out:
    OPENSSL_cleanse(share, sizeof(share));
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(parts, sizeof(parts));
    OPENSSL_cleanse(pw, sizeof(pw));
    return rc;
}

/* `threshold` custodian shares, each checked as typed, combined into the password. */
static int password_from_shares(const tool_dkek_opts *o, unsigned threshold, char *pw, size_t cap)
{
    tool_shamir_share parts[TOOL_SHAMIR_MAX];
    uint8_t secret[TOOL_SHAMIR_SECRET_LEN];
    char line[TOOL_SECRET_MAX], prompt[80];
    unsigned got = 0;
    int rc = -1;

    if (o->input.fd < 0)
        printf("The share's password is split: %u custodians enter their password shares.\n",
               threshold);
    while (got < threshold) {
        snprintf(prompt, sizeof(prompt), "Password share %u of %u: ", got + 1, threshold);
        if (tool_secret_read(&o->input, prompt, line, sizeof(line)) != 0) {
            fprintf(stderr, "%s: not enough password shares\n", tool_prog);
            goto out;
        }
        int bad = tool_shamir_parse(line, &parts[got]) != 0;
        for (unsigned i = 0; !bad && i < got; i++)
            bad = parts[i].x == parts[got].x;
        if (bad) {
            fprintf(stderr, "%s: that is not a password share, or one given before%s\n", tool_prog,
                    o->input.fd < 0 ? ": type it again" : "");
            if (o->input.fd >= 0)
                goto out;
            continue;
        }
        got++;
    }
    if (tool_shamir_combine(parts, got, secret) == 0) {
        secret_password(secret, pw, cap);
        rc = 0;
    }
out:
    OPENSSL_cleanse(parts, sizeof(parts));
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(line, sizeof(line));
    return rc;
}

int tool_dkek_import_password(const tool_dkek_opts *o, const uint8_t *file, size_t n, char *pw,
                              size_t cap)
{
    tool_share_info info;
    tool_share_file_inspect(file, n, &info);
    /* The file records its split; the options serve files that do not (and must agree). */
    unsigned threshold = info.threshold;
    if (threshold == 0 && o->pwd_threshold > 0)
        threshold = (unsigned)o->pwd_threshold;
    else if (threshold == 0 && o->pwd_total > 0)
        threshold = (unsigned)o->pwd_total;
    if (info.threshold > 0 && o->pwd_threshold > 0 && (unsigned)o->pwd_threshold != info.threshold)
        fprintf(stderr, "%s: note: the file says %u password shares are needed\n", tool_prog,
                info.threshold);
    if (threshold > TOOL_SHAMIR_MAX) {
        fprintf(stderr, "%s: at most %d password shares\n", tool_prog, TOOL_SHAMIR_MAX);
        return -1;
    }
    if (threshold > 0)
        return password_from_shares(o, threshold, pw, cap);
    if (tool_secret_read(&o->input, "Password of the DKEK share: ", pw, cap) != 0) {
        fprintf(stderr, "%s: no password\n", tool_prog);
        return -1;
    }
    return 0;
}
