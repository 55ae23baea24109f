/*
 * tool_dkek.c - sks-tool's DKEK status, initialisation and share import
 * (tool_dkek.h), and the small file and PIN helpers its DKEK verbs share.
 */
#include "tools/tool_dkek.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "protocol/sks_msg.h"
#include "tools/tool_card.h"
#include "tools/tool_common.h"
#include "tools/tool_share_file.h"

static void print_kcv(const sks_view *kcv)
{
    for (size_t i = 0; i < kcv->len; i++)
        printf("%02X", kcv->ptr[i]);
}

/* The lines sc-hsm-tool prints, for an SKS card. */
static void print_dkek(const sks_resp_dkek_status *st)
{
    if (st->state == SKS_DKEK_NONE) {
        printf("DKEK:                none (set one up with --initialize --dkek-shares N)\n");
        return;
    }
    if (st->shares_total == 0)
        printf("DKEK shares:         0 (a DKEK of the card's own)\n");
    else
        printf("DKEK shares:         %u\n", st->shares_total);
    if (st->state == SKS_DKEK_PENDING) {
        printf("DKEK import pending, %u share(s) still missing\n", st->shares_outstanding);
    } else {
        printf("DKEK key check value: ");
        print_kcv(&st->kcv);
        printf("\n");
    }
}

int tool_dkek_print_status(sks_card *card)
{
    sks_resp_dkek_status st;
    sks_writer answer;
    int none = 0;
    sks_writer_init(&answer);
    int rc = tool_card_rpc(card, SKS_M_GET_DKEK_STATUS, &none, &st, &answer);
    if (rc == 0)
        print_dkek(&st);
    sks_writer_free(&answer);
    return rc;
}

int tool_dkek_status(const tool_dkek_opts *o)
{
    sks_card *card = tool_open_card(o->state_dir);
    if (card == NULL)
        return EXIT_FAIL;
    int rc = tool_dkek_print_status(card) == 0 ? EXIT_OK : EXIT_FAIL;
    sks_card_close(card);
    return rc;
}

int tool_dkek_initialize(const tool_dkek_opts *o)
{
    sks_card *card = tool_open_card(o->state_dir);
    sks_writer answer;
    uint8_t status;
    if (card == NULL)
        return EXIT_FAIL;
    sks_writer_init(&answer);
    sks_req_initialize_dkek req = {(uint8_t)o->dkek_shares};
    int rc = tool_card_call(card, SKS_M_INITIALIZE_DKEK, &req, NULL, &answer, &status, 0);
    if (rc != 0 && status == SKS_ERR_NOT_ALLOWED)
        fprintf(stderr,
                "%s: keys on this card allow backup; their backups need the current "
                "DKEK, so it cannot be replaced\n",
                tool_prog);
    if (rc == 0) {
        if (o->dkek_shares == 0)
            printf("The card made a DKEK of its own: backups open only on this card.\n");
        else
            printf("The card waits for %d DKEK share(s): import them with "
                   "--import-dkek-share FILE.\n",
                   o->dkek_shares);
        rc = tool_dkek_print_status(card);
    }
    sks_writer_free(&answer);
    sks_card_close(card);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

int tool_dkek_import_share(const tool_dkek_opts *o)
{
    uint8_t file[TOOL_SHARE_FILE_LEN + 1], share[TOOL_SHARE_LEN];
    char pw[TOOL_SECRET_MAX];
    const char *why = NULL;
    long n = tool_read_file(o->file, file, sizeof(file));
    tool_share_info info;
    if (n < 0)
        return EXIT_FAIL;
    tool_share_file_inspect(file, (size_t)n, &info);
    if (info.kind == TOOL_SHARE_UNKNOWN) {
        fprintf(stderr, "%s: %s is not a DKEK share file\n", tool_prog, o->file);
        return EXIT_FAIL;
    }
    /* Check the card first: no password is asked for a card that takes no share. */
    sks_card *card = tool_open_card(o->state_dir);
    if (card == NULL)
        return EXIT_FAIL;
    sks_resp_dkek_status st;
    sks_writer answer;
    int none = 0, rc = EXIT_FAIL;
    sks_writer_init(&answer);
    if (tool_card_rpc(card, SKS_M_GET_DKEK_STATUS, &none, &st, &answer) != 0)
        goto out;
    if (st.state != SKS_DKEK_PENDING) {
        fprintf(stderr, "%s: the card takes no DKEK share now (%s)\n", tool_prog,
                st.state == SKS_DKEK_NONE ? "no DKEK: use --initialize --dkek-shares N first"
                                          : "all shares are in");
        goto out;
    }
    if (tool_dkek_import_password(o, file, (size_t)n, pw, sizeof(pw)) != 0)
        goto out;
    int opened = tool_share_file_open(file, (size_t)n, pw, 1, share, &why);
    OPENSSL_cleanse(pw, sizeof(pw));
    if (opened != 0) {
        fprintf(stderr, "%s: cannot decrypt the DKEK share: %s\n", tool_prog, why);
        goto out;
    }
    sks_req_import_dkek_share req = {{share, sizeof(share)}};
    if (tool_card_rpc(card, SKS_M_IMPORT_DKEK_SHARE, &req, &st, &answer) == 0) {
        printf("DKEK share imported\n");
        print_dkek(&st);
        rc = EXIT_OK;
    }
out:
    OPENSSL_cleanse(share, sizeof(share));
    sks_writer_free(&answer);
    sks_card_close(card);
    return rc;
}

/* ---- helpers ------------------------------------------------------------------ */

long tool_read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s: %s\n", tool_prog, path, strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, cap, f);
    int bad = ferror(f);
    int more = !bad && n == cap && fgetc(f) != EOF;
    fclose(f);
    if (bad || more) {
        fprintf(stderr, "%s: %s: %s\n", tool_prog, path, bad ? "cannot read" : "file too large");
        return -1;
    }
    return (long)n;
}

int tool_write_file(const char *path, const uint8_t *p, size_t n, int force)
{
    /*
     * Written whole to a temporary file beside the target, then renamed
     * over it: a crash or a full disk never leaves a half-written share or
     * backup, and never destroys the file being replaced.
     */
    if (!force && access(path, F_OK) == 0) {
        fprintf(stderr, "%s: %s: %s (use --force to replace it)\n", tool_prog, path,
                strerror(EEXIST));
        return -1;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
        return -1;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "%s: %s: %s\n", tool_prog, path, strerror(errno));
        return -1;
    }
    size_t done = 0;
    int ok = fchmod(fd, 0600) == 0;
    while (ok && done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w <= 0)
            ok = 0;
        else
            done += (size_t)w;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    /* Without --force a file that appeared meanwhile is not replaced. */
    ok = ok && (force ? rename(tmp, path) == 0 : link(tmp, path) == 0);
    unlink(tmp);
    if (!ok) {
        fprintf(stderr, "%s: %s: cannot write\n", tool_prog, path);
        return -1;
    }
    return 0;
}

int tool_verify_pin(sks_card *card, const tool_dkek_opts *o, uint32_t policy, const char *what)
{
    char pin[TOOL_SECRET_MAX], prompt[160];
    sks_writer answer;
    if (o->pin != NULL) {
        if (strlen(o->pin) >= sizeof(pin))
            return -1;
        strcpy(pin, o->pin);
    } else {
        snprintf(prompt, sizeof(prompt), "PIN of %s: ", what);
        tool_secret_src tty = {-1};
        if (tool_secret_read(&tty, prompt, pin, sizeof(pin)) != 0) {
            fprintf(stderr, "%s: no PIN (give --pin, or run on a terminal)\n", tool_prog);
            return -1;
        }
    }
    sks_writer_init(&answer);
    sks_req_verify_pin req = {policy, {(const uint8_t *)pin, strlen(pin)}};
    int rc = tool_card_rpc(card, SKS_M_VERIFY_PIN, &req, NULL, &answer);
    OPENSSL_cleanse(pin, sizeof(pin));
    sks_writer_free(&answer);
    return rc;
}
