/*
 * tok_issuer_int.h - what the files of the issuer token (tok_issuer_token.h)
 * share among themselves: its state and its files.
 *
 * <state_dir>/issuer-token/ (0700) holds
 *   token          the token file: serial, label, the PIN records (tok_issuer_pin.c)
 *   obj-<16 hex>   one token object each (tok_issuer_store.c)
 * Every file is 0600 and replaced atomically (a temporary file, fsync,
 * rename, fsync of the directory), so a crash leaves the old or the new
 * version, never a mix.
 */
#ifndef SKS_TOK_ISSUER_INT_H
#define SKS_TOK_ISSUER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "token/tok.h"

#define TOK_ISSUER_MASTER_LEN 32
#define TOK_ISSUER_SALT_LEN   16
#define TOK_ISSUER_SERIAL_LEN 8
#define TOK_ISSUER_PIN_MIN    4 /* bytes; the most is SKS_PIN_MAX */

/* One PIN's record: scrypt parameters and the master key sealed under the PIN's key. */
typedef struct {
    int set;
    uint8_t log2_n, r, p; /* scrypt N = 2^log2_n */
    uint8_t salt[TOK_ISSUER_SALT_LEN];
    uint8_t iv[12];
    uint8_t sealed[TOK_ISSUER_MASTER_LEN + 16]; /* AES-256-GCM ciphertext | tag */
} tok_pin_record;

struct tok_issuer_token {
    tok_card card; /* stands in for a card where a slot needs one; never connected */
    CK_SLOT_ID slot_id;
    char dir[4096]; /* <state_dir>/issuer-token */
    /* The token file. */
    uint8_t serial[TOK_ISSUER_SERIAL_LEN];
    char label[TOK_LABEL_LEN + 1];
    int initialized;
    tok_pin_record so, user;
    /* The master key, while the SO or the user is logged in. */
    uint8_t master[TOK_ISSUER_MASTER_LEN];
    int have_master;
};

/* ---- the token file (tok_issuer_pin.c) ------------------------------------------------ */
/* Read the token file, or make a new uninitialised token (random serial) when there is none. */
CK_RV tok_issuer_meta_load(struct tok_issuer_token *t);
CK_RV tok_issuer_meta_save(const struct tok_issuer_token *t);

/* ---- files (tok_issuer_store.c) ----------------------------------------------------- */
/* Replace dir/name atomically with `data` (0600). CKR_OK or CKR_DEVICE_ERROR (logged). */
CK_RV tok_issuer_write_file(const char *dir, const char *name, const uint8_t *data, size_t len);
/*
 * Read dir/name (at most `max` bytes) into `out`: CKR_OK; CKR_OBJECT_HANDLE_INVALID
 * when the file does not exist; CKR_DEVICE_ERROR otherwise (logged).
 */
CK_RV tok_issuer_read_file(const char *dir, const char *name, size_t max, sks_writer *out);
/* Write a token object's file: sealed under the master key if it is private. */
CK_RV tok_issuer_store_write(const struct tok_issuer_token *t, uint64_t id, const tok_attrs *a);
CK_RV tok_issuer_store_remove(const struct tok_issuer_token *t, uint64_t id);
/* Load the token objects of the files: the public ones, or (master key known) the private ones. */
void tok_issuer_store_load(struct tok_issuer_token *t, int private_);
/* Remove every object file and every token object in memory (C_InitToken). */
CK_RV tok_issuer_store_wipe(struct tok_issuer_token *t);
/* A fresh, unused object ID (never 0). */
CK_RV tok_issuer_store_new_id(const struct tok_issuer_token *t, uint64_t *id);

#endif
