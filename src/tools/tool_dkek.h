/*
 * tool_dkek.h - sks-tool's DKEK verbs, after sc-hsm-tool's: DKEK status,
 * initialisation with a number of shares, creating and importing
 * password-protected share files (the password optionally split among
 * custodians), and wrapping and unwrapping keys (docs/dkek.md).
 */
#ifndef SKS_TOOL_DKEK_H
#define SKS_TOOL_DKEK_H

#include <stddef.h>
#include <stdint.h>

#include "card/sks_card.h"
#include "protocol/sks_proto.h"
#include "tools/tool_secret.h"

typedef struct {
    const char *state_dir;
    const char *file;       /* share file or key backup file */
    int dkek_shares;        /* --dkek-shares N; -1 when not given */
    int pwd_threshold;      /* --pwd-shares-threshold; -1 when not given */
    int pwd_total;          /* --pwd-shares-total; -1 when not given */
    tool_secret_src input;  /* passwords and shares: terminal, or --password-fd */
    int force;              /* overwrite files, replace a key with the same ID */
    long key_reference;     /* --key-reference (card key handle); -1 when not given */
    uint8_t id[SKS_ID_MAX]; /* --id */
    size_t id_len;          /* 0 when not given */
    const char *pin;        /* --pin; NULL: asked on the terminal when needed */
    const char *token;      /* --token: the PIN policy ID to restore under ("" no PIN) */
} tool_dkek_opts;

/* Print the DKEK lines of the status (sks-tool with no verb, --dkek-status). 0 or -1. */
int tool_dkek_print_status(sks_card *card);
/* --dkek-status */
int tool_dkek_status(const tool_dkek_opts *o);
/* --initialize --dkek-shares N (and --init --dkek-shares N, after creating the card). */
int tool_dkek_initialize(const tool_dkek_opts *o);
/* --create-dkek-share FILE (no card needed) */
int tool_dkek_create_share(const tool_dkek_opts *o);
/* --import-dkek-share FILE */
int tool_dkek_import_share(const tool_dkek_opts *o);
/* --wrap-key FILE, --unwrap-key FILE */
int tool_dkek_wrap(const tool_dkek_opts *o);
int tool_dkek_unwrap(const tool_dkek_opts *o);

/* ---- shared by the tool_dkek*.c files ---------------------------------------------- */
/* The password of a share file about to be opened (typed, or combined from custodian shares). */
int tool_dkek_import_password(const tool_dkek_opts *o, const uint8_t *file, size_t n, char *pw,
                              size_t cap);
/* Read a whole small file (at most `cap` bytes); its length, or -1 after printing why. */
long tool_read_file(const char *path, uint8_t *buf, size_t cap);
/* Write a new file (0600); an existing one only with `force`. 0, or -1 after printing why. */
int tool_write_file(const char *path, const uint8_t *p, size_t n, int force);
/* The card's PIN (--pin or the terminal) into buf, then verifyPIN. 0 or -1. */
int tool_verify_pin(sks_card *card, const tool_dkek_opts *o, uint32_t policy, const char *what);

#endif
