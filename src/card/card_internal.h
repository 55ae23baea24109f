/*
 * card_internal.h - what the parts of the card engine share: the card
 * object, the per-call context handed to method handlers, and the method
 * table that card_dispatch.c runs.
 */
#ifndef CARD_INTERNAL_H
#define CARD_INTERNAL_H

#include <stdint.h>

#include <openssl/evp.h>

#include "../protocol/sks_msg.h"
#include "card_store.h"
#include "sks_card.h"

#define CARD_DEFAULT_MAX_KEYS 100000u
#define CARD_MAX_VERIFIED     64    /* PIN policies verified at once in one card session */
#define CARD_PUK_DELAY_MS     1000u /* default delay of a PUK with RetryLimit 0 */

struct sks_card {
    char *dir;
    uint8_t master_key[32];
    card_store *store;
    EVP_PKEY *attestation_key;
    card_buf device_cert_path; /* count byte + count byte[] (wire form of a cert path) */
    card_buf serial;           /* printable ASCII */
    uint32_t max_keys;
    uint64_t (*now)(void *ctx);
    void *now_ctx;

    unsigned puk_delay_ms; /* wait before comparing a PUK without retry limit */

    /* Volatile state of the current card session (lost on reset). */
    uint32_t verified[CARD_MAX_VERIFIED]; /* PIN policies whose PIN was verified */
    size_t nverified;
    uint32_t puk_verified[CARD_MAX_VERIFIED]; /* PIN policies whose PUK was verified */
    size_t npuk_verified;
    int selected;
    int chaining;
    sks_writer chain;   /* command parts received so far */
    sks_writer pending; /* answer not yet fetched by GET RESPONSE */
    size_t pending_off;

    /* Parsed private keys by handle (card_keyuse.c); NULL until first use. */
    struct card_key_cache *key_cache;

    /* Injection session keys S1 (card_inject.c): volatile, lost on reset. */
    struct card_session_keys *session_keys;
};

/*
 * Context of one method call. Handlers put variable-length results into the
 * `out` writers (which live until the answer is encoded) and point the
 * response's views at them. An error message is set with card_fail().
 */
typedef struct {
    sks_card *card;
    sks_writer out[4];
    char error[200];
    /* Set by a provisioning handler once it knows the session, so that the
     * dispatcher aborts that session when the call fails. */
    uint32_t abort_session;
} card_call;

/* Record an error message (printf-style) and return `status`. */
int card_fail(card_call *call, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef int (*card_method_fn)(card_call *call, const void *req, void *resp);

enum card_txn {
    CARD_TXN_NONE, /* read-only */
    CARD_TXN_AUTO, /* the dispatcher wraps the handler in one transaction */
    CARD_TXN_SELF, /* the handler commits on its own (PIN counters) */
};

typedef struct {
    uint8_t id;
    card_method_fn fn;
    enum card_txn txn;
} card_method;

/* Handlers, one per method (files named after the part of the API). */
int card_m_create_session(card_call *, const void *, void *);
int card_m_close_session(card_call *, const void *, void *);
int card_m_abort_session(card_call *, const void *, void *);
int card_m_create_puk_policy(card_call *, const void *, void *);
int card_m_create_pin_policy(card_call *, const void *, void *);
int card_m_create_key_pair(card_call *, const void *, void *);
int card_m_set_certificate_path(card_call *, const void *, void *);
int card_m_restore_private_key(card_call *, const void *, void *);
int card_m_import_private_key(card_call *, const void *, void *);
int card_m_get_device_info(card_call *, const void *, void *);
int card_m_enumerate_keys(card_call *, const void *, void *);
int card_m_get_key_attributes(card_call *, const void *, void *);
int card_m_enumerate_key_attributes(card_call *, const void *, void *);
int card_m_count_keys(card_call *, const void *, void *);
int card_m_sign_hashed_data(card_call *, const void *, void *);
int card_m_asymmetric_decrypt(card_call *, const void *, void *);
int card_m_key_agreement(card_call *, const void *, void *);
int card_m_delete_key(card_call *, const void *, void *);
int card_m_export_key(card_call *, const void *, void *);
int card_m_verify_pin(card_call *, const void *, void *);
int card_m_change_pin(card_call *, const void *, void *);
int card_m_unlock_pin(card_call *, const void *, void *);
int card_m_logout(card_call *, const void *, void *);
int card_m_enumerate_pin_policies(card_call *, const void *, void *);
int card_m_verify_puk(card_call *, const void *, void *);
int card_m_create_object(card_call *, const void *, void *);
int card_m_delete_object(card_call *, const void *, void *);
int card_m_enumerate_objects(card_call *, const void *, void *);
int card_m_read_object(card_call *, const void *, void *);
int card_m_update_object(card_call *, const void *, void *);
int card_m_set_key_attributes(card_call *, const void *, void *);
int card_m_reset_pin_policy(card_call *, const void *, void *);
/* Post-provisioning (card_post.c). */
int card_m_post_delete_key(card_call *, const void *, void *);
int card_m_post_unlock_key(card_call *, const void *, void *);
int card_m_post_update_key(card_call *, const void *, void *);
/* Secure key injection (card_inject.c). */
int card_m_import_session_key(card_call *, const void *, void *);
int card_m_inject_private_key(card_call *, const void *, void *);
int card_m_delete_session_key(card_call *, const void *, void *);
/* DKEK backup (card_dkek.c, card_backup.c). */
int card_m_initialize_dkek(card_call *, const void *, void *);
int card_m_import_dkek_share(card_call *, const void *, void *);
int card_m_get_dkek_status(card_call *, const void *, void *);
int card_m_wrap_key(card_call *, const void *, void *);
int card_m_unwrap_key(card_call *, const void *, void *);

/* Current time through the card's clock. */
uint64_t card_now(const sks_card *card);

/*
 * Volatile PIN state (card_pin.c): the PIN policies whose PIN, and those
 * whose PUK (verifyPUK), was verified in this card session.
 */
int card_pin_is_verified(const sks_card *card, uint32_t pin_policy);
void card_pin_set_verified(sks_card *card, uint32_t pin_policy, int verified);
int card_puk_is_verified(const sks_card *card, uint32_t pin_policy);
void card_puk_set_verified(sks_card *card, uint32_t pin_policy, int verified);

/*
 * A PIN policy the Key User API may see: it exists and its session is
 * closed (NO_POLICY otherwise). `rec` is always safe to free (card_pin.c).
 */
int card_pin_policy_load(card_call *call, uint32_t pin_policy, card_pin_rec *rec);

/*
 * Check a PUK under the counter rule (decrement and commit, compare, restore
 * on a match), each step its own transaction: call outside any transaction.
 * SKS_OK, or AUTHENTICATION / PIN_BLOCKED / NO_POLICY / STORAGE (card_pin.c).
 */
int card_puk_check(card_call *call, uint32_t puk_policy, sks_view puk);

/*
 * Keys as the Key User API sees them (card_keys.c): a complete key (NO_KEY
 * for unknown or unfinished ones; `rec` is always safe to free), and the
 * PIN rule (NOT_AUTHENTICATED unless its policy's PIN is verified).
 */
int card_key_get_complete(card_call *call, uint32_t key_handle, card_key_rec *rec);
int card_key_require_pin(card_call *call, const card_key_rec *rec);

/*
 * enumerateKeys and enumerateObjects (card_keys.c): the page of handles
 * after req->after_handle that `list` returns, as the response; `what`
 * ("keys", "objects") names them in the error message.
 */
typedef int (*card_handle_list_fn)(card_store *st, uint32_t after, uint32_t *out, size_t max,
                                   size_t *n, int *more);
int card_enumerate_handles(card_call *call, const sks_req_enumerate_keys *req,
                           sks_resp_enumerate_keys *resp, card_handle_list_fn list,
                           const char *what);

/* Views of a wire-form certificate path (count 0 when empty) into `wire` (card_info.c). */
int card_certpath_view(const card_buf *wire, sks_certpath *out);

/* The key cache: drop one key (deleteKey), or everything (sks_card_close must call this). */
void card_keyuse_cache_forget(sks_card *card, uint32_t key_handle);
void card_keyuse_cache_free(sks_card *card);

/*
 * A key use by another part of the card (importSessionKey): the checks of
 * 7.0 in their order (complete key, KeyUsage `usage`, PIN verified) and the
 * parsed private key (owned by the key cache), then, after the operation,
 * card_keyuse_end() consumes the PIN verification of a policy without
 * CachingSupport when `status` is SKS_OK (card_keyuse.c).
 */
int card_keyuse_begin(card_call *call, uint32_t key_handle, uint8_t usage, const char *what,
                      EVP_PKEY **key, uint32_t *consume);
int card_keyuse_end(card_call *call, int status, uint32_t consume);

/* Zeroize and free every injection session key (reset, sks_card_close; card_session_keys.c). */
void card_session_keys_free(sks_card *card);

#endif
