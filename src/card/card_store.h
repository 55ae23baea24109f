/*
 * card_store.h - the card's credential database: SQLite tables of sessions,
 * PUK policies, PIN policies, keys, stored objects and card metadata, with
 * every secret field sealed (card_seal.h) before it reaches the file.
 *
 * Every state change of a method runs between card_store_begin() and
 * card_store_commit(); anything else is rolled back, so a crash leaves the
 * old or the new state. A commit of a transaction that changed rows also
 * increments the change counter (getDeviceInfo's ChangeCounter), inside the
 * same transaction. Record getters return SKS status codes so method
 * handlers can pass them straight on.
 *
 * Fault injection (for the crash tests): card_store_set_crash_after(n) makes
 * the n-th write statement or commit from now terminate the process with
 * _exit(CARD_STORE_CRASH_EXIT) before it executes.
 */
#ifndef CARD_STORE_H
#define CARD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../protocol/sks_proto.h"
#include "../protocol/sks_wire.h"

#define CARD_STORE_CRASH_EXIT 86

/* An owned buffer; card_buf_free() zeroizes before freeing. */
typedef struct {
    uint8_t *ptr;
    size_t len;
} card_buf;

void card_buf_free(card_buf *b);
int card_buf_set(card_buf *b, const void *p, size_t n); /* replaces contents; 0 or -1 */
static inline sks_view card_buf_view(const card_buf *b)
{
    sks_view v = {b->ptr, b->len};
    return v;
}

enum card_session_state { CARD_SESSION_OPEN = 1, CARD_SESSION_CLOSED = 2 };

typedef struct {
    uint32_t handle;
    uint8_t state; /* enum card_session_state */
    uint8_t session_key_alg;
    uint8_t sk[SKS_SK_LEN]; /* sealed at rest; all zero once the session is closed */
    uint8_t client_session_id[SKS_SESSION_ID_LEN];
    uint8_t server_session_id[SKS_SESSION_ID_LEN];
    card_buf issuer_uri;
    card_buf issuer_public_key;
    uint8_t updatable;
    uint32_t operations_left; /* ClientOperationLimit countdown */
    uint64_t expires;         /* seconds since the epoch */
    uint32_t mac_counter;     /* next MAC/attestation sequence number */
} card_session_rec;

typedef struct {
    uint32_t handle;
    uint32_t session;
    uint8_t id[SKS_ID_MAX];
    uint8_t id_len;
    card_buf value; /* sealed at rest */
    uint8_t format;
    uint8_t retry_limit;
    uint8_t tries_left;
} card_puk_rec;

typedef struct {
    uint32_t handle;
    uint32_t session;
    uint8_t id[SKS_ID_MAX];
    uint8_t id_len;
    uint32_t puk_handle; /* 0: none */
    uint8_t user_defined;
    uint8_t user_modifiable;
    uint8_t format;
    uint8_t retry_limit;
    uint8_t grouping;
    uint8_t pattern_restrictions;
    uint8_t min_length;
    uint8_t max_length;
    uint8_t caching_support;
    uint8_t input_method;
    card_buf value; /* sealed at rest; empty until a key sets the PIN */
    uint8_t tries_left;
} card_pin_rec;

typedef struct {
    uint32_t handle;
    uint32_t session;
    uint8_t id[SKS_ID_MAX];
    uint8_t id_len;
    uint32_t pin_policy; /* 0: no PIN */
    uint8_t flags;       /* SKS_KEYFLAG_* */
    uint8_t usage;       /* SKS_USAGE_* */
    uint8_t algorithm;   /* enum sks_key_alg */
    card_buf friendly_name;
    card_buf public_key;  /* SPKI DER; empty until an imported key arrives */
    card_buf private_key; /* PKCS#8 DER, sealed at rest; empty until generated/imported */
    card_buf cert_path;   /* count byte, then count byte[] as on the wire; empty if unset */
} card_key_rec;

/* A stored object (createObject): Attributes are opaque to the card. */
typedef struct {
    uint32_t handle;
    uint32_t pin_policy;  /* 0: the keys-without-PIN token */
    uint8_t object_class; /* enum sks_object_class */
    uint8_t private_;     /* reading needs the policy's PIN verified */
    card_buf attributes;  /* sealed at rest; at most SKS_OBJECT_MAX bytes */
} card_object_rec;

typedef struct card_store card_store;

/* Open (creating tables if needed) the database at `path`. */
int card_store_open(card_store **out, const char *path, const uint8_t master_key[32]);
void card_store_close(card_store *st);

int card_store_begin(card_store *st);  /* BEGIN IMMEDIATE: waits for other processes */
int card_store_commit(card_store *st); /* 0, or -1 (then the transaction is rolled back) */
void card_store_rollback(card_store *st);

/* Committed transactions that changed something, modulo 2^32 (0 on a new store). */
int card_store_change_counter(card_store *st, uint32_t *counter);

/* Allocate the next handle: unique across all object kinds, never reused. */
int card_store_next_handle(card_store *st, uint32_t *handle);

/* Metadata: small named values; `sealed` ones are encrypted at rest. */
int card_store_meta_put(card_store *st, const char *name, const void *p, size_t n, int sealed);
int card_store_meta_get(card_store *st, const char *name, card_buf *out,
                        int sealed); /* -1 if absent */

/* Records. get: SKS_OK, or the "not found" status of the kind. put: insert or replace. */
int card_store_session_get(card_store *st, uint32_t handle, card_session_rec *out);
int card_store_session_put(card_store *st, const card_session_rec *rec);
void card_session_rec_free(card_session_rec *rec);

int card_store_puk_get(card_store *st, uint32_t handle, card_puk_rec *out);
int card_store_puk_put(card_store *st, const card_puk_rec *rec);
void card_puk_rec_free(card_puk_rec *rec);

int card_store_pin_get(card_store *st, uint32_t handle, card_pin_rec *out);
int card_store_pin_put(card_store *st, const card_pin_rec *rec);
void card_pin_rec_free(card_pin_rec *rec);

/* Set only a policy's retry counter (the rest of the record is not rewritten). */
int card_store_pin_set_tries(card_store *st, uint32_t handle, uint8_t tries);
int card_store_puk_set_tries(card_store *st, uint32_t handle, uint8_t tries);

int card_store_key_get(card_store *st, uint32_t handle, card_key_rec *out);
int card_store_key_put(card_store *st, const card_key_rec *rec);
int card_store_key_delete(card_store *st, uint32_t handle);
void card_key_rec_free(card_key_rec *rec);

/* Does a complete key other than `except` have this ID? */
int card_store_key_id_used(card_store *st, sks_view id, uint32_t except, int *used);

/* Stored objects. get/delete: SKS_OK, or SKS_ERR_NO_KEY when there is no such object. */
int card_store_object_get(card_store *st, uint32_t handle, card_object_rec *out);
int card_store_object_put(card_store *st, const card_object_rec *rec);
int card_store_object_delete(card_store *st, uint32_t handle);
void card_object_rec_free(card_object_rec *rec);
/* Objects with handle > after, ascending, at most max; *more when further ones exist. */
int card_store_object_list(card_store *st, uint32_t after, uint32_t *out, size_t max, size_t *n,
                           int *more);
int card_store_object_count(card_store *st, uint32_t *n);

/* Remove a session and every policy, key and post-provisioning operation it created (abort). */
int card_store_session_purge(card_store *st, uint32_t session);

/* Handles of the keys created by a session, ascending (caller frees *out). */
int card_store_session_keys(card_store *st, uint32_t session, uint32_t **out, size_t *n);

/*
 * Keys with SKS_KEYFLAG_COMPLETE and handle > after, ascending, at most max;
 * *more is set when further keys exist.
 */
int card_store_key_list(card_store *st, uint32_t after, uint32_t *out, size_t max, size_t *n,
                        int *more);
int card_store_key_count(card_store *st, uint32_t *n);
/* The complete keys (SKS_KEYFLAG_COMPLETE) under a PIN policy; 0: those without PIN. */
int card_store_policy_key_count(card_store *st, uint32_t pin_policy, uint32_t *n);

/* Handles of the keys (complete or not) whose PIN policy is `pin_policy`, ascending. */
int card_store_policy_keys(card_store *st, uint32_t pin_policy, uint32_t **out, size_t *n);

/* Delete every key and every stored object of a PIN policy (resetPINPolicy). */
int card_store_policy_purge(card_store *st, uint32_t pin_policy);

/* Does a PIN policy other than `except` have this ID? */
int card_store_pin_id_used(card_store *st, sks_view id, uint32_t except, int *used);

/* Handles of all PIN policies of closed sessions, ascending (caller frees *out). */
int card_store_pin_list(card_store *st, uint32_t **out, size_t *n);

/*
 * A post-provisioning operation (docs/protocol.md 6.10) recorded by an open
 * session and applied when it closes: `op` is the method ID
 * (SKS_M_POST_DELETE_KEY, _UNLOCK_KEY, _UPDATE_KEY), `target` the issuer's
 * earlier key, `new_key` the replacing key of postUpdateKey (0 otherwise).
 * Its handle comes from the one handle counter. get: SKS_OK or NO_KEY.
 */
typedef struct {
    uint32_t handle;
    uint32_t session;
    uint8_t op;
    uint32_t target;
    uint32_t new_key;
} card_post_rec;

int card_store_post_get(card_store *st, uint32_t handle, card_post_rec *out);
int card_store_post_put(card_store *st, const card_post_rec *rec);
void card_post_rec_free(card_post_rec *rec);
/* Handles of a session's operations, ascending (caller frees *out). */
int card_store_session_posts(card_store *st, uint32_t session, uint32_t **out, size_t *n);
/* Remove a session's operations (once applied; an abort removes them too). */
int card_store_session_posts_clear(card_store *st, uint32_t session);

/* Fault injection for the crash tests; 0 disables. */
void card_store_set_crash_after(card_store *st, long writes);

/* Does any key (complete or not) have every bit of `flag` in its flags? (initializeDKEK) */
int card_store_key_flag_used(card_store *st, uint8_t flag, int *used);

/*
 * The complete keys with handle > after, ascending, read in one query
 * without their private keys (private_key stays empty; nothing is
 * unsealed). `take` gets each record (freed after it returns) and answers
 * SKS_OK to go on, CARD_PAGE_FULL to stop before this record (*more is then
 * set), or another status to fail with it.
 */
#define CARD_PAGE_FULL (-1)
typedef int (*card_key_public_fn)(void *ctx, const card_key_rec *rec);
int card_store_key_public_page(card_store *st, uint32_t after, card_key_public_fn take, void *ctx,
                               int *more);

#endif
