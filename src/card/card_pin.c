/*
 * card_pin.c - the PIN methods of the Key User API (verifyPIN, changePIN,
 * unlockPIN, logout, enumeratePINPolicies, verifyPUK), the PUK check
 * deleteKey shares, and the volatile sets of PIN policies whose PIN or PUK
 * was verified in the current card session. A new PIN is checked against
 * its policy by card_pin_check_policy (card_session.h), the rule
 * createKeyPair applies too.
 *
 * The counter rule (docs/protocol.md section 7): a try is taken from the
 * retry counter and committed in its own transaction *before* the value is
 * compared, so cutting the power during the compare cannot give a free
 * guess; a match restores the counter in a second transaction. A counter at
 * 0 answers PIN_BLOCKED without comparing. A PUK without a counter
 * (RetryLimit 0) waits card->puk_delay_ms before every comparison instead.
 * Values are compared in constant time. Any failed PIN (PUK) check forgets
 * the policy's PIN (PUK) verification.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../protocol/sks_crypto.h"
#include "card_internal.h"
#include "card_session.h"

/* ---- Volatile verified sets ------------------------------------------ */

static int set_has(const uint32_t *set, size_t n, uint32_t pin_policy)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == pin_policy)
            return 1;
    return 0;
}

/*
 * Add or remove a policy. When the set is full the oldest entry is dropped:
 * its policy then counts as not verified until verified again.
 */
static void set_change(uint32_t *set, size_t *n, uint32_t pin_policy, int add)
{
    for (size_t i = 0; i < *n; i++) {
        if (set[i] != pin_policy)
            continue;
        if (!add) {
            memmove(&set[i], &set[i + 1], (*n - i - 1) * sizeof(set[0]));
            (*n)--;
        }
        return;
    }
    if (!add || pin_policy == SKS_HANDLE_NONE)
        return;
    if (*n == CARD_MAX_VERIFIED) {
        memmove(&set[0], &set[1], (CARD_MAX_VERIFIED - 1) * sizeof(set[0]));
        (*n)--;
    }
    set[(*n)++] = pin_policy;
}

int card_pin_is_verified(const sks_card *card, uint32_t pin_policy)
{
    return set_has(card->verified, card->nverified, pin_policy);
}

void card_pin_set_verified(sks_card *card, uint32_t pin_policy, int verified)
{
    set_change(card->verified, &card->nverified, pin_policy, verified);
}

int card_puk_is_verified(const sks_card *card, uint32_t pin_policy)
{
    return set_has(card->puk_verified, card->npuk_verified, pin_policy);
}

void card_puk_set_verified(sks_card *card, uint32_t pin_policy, int verified)
{
    set_change(card->puk_verified, &card->npuk_verified, pin_policy, verified);
}

void sks_card_set_puk_delay_ms(sks_card *card, unsigned ms)
{
    card->puk_delay_ms = ms;
}

/* ---- Helpers ----------------------------------------------------------- */

/*
 * Constant-time equality of a stored secret and a presented value: both are
 * copied into zeroed fixed-size buffers and compared in full, so the
 * comparison takes the same time whatever the contents and lengths. Values
 * longer than SKS_PIN_MAX never match.
 */
static int secret_equal(const card_buf *stored, sks_view given)
{
    uint8_t a[SKS_PIN_MAX], b[SKS_PIN_MAX];
    int fits = stored->len <= SKS_PIN_MAX && given.len <= SKS_PIN_MAX;
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    if (fits) {
        if (stored->len > 0)
            memcpy(a, stored->ptr, stored->len);
        if (given.len > 0)
            memcpy(b, given.ptr, given.len);
    }
    int equal = sks_mac_equal(a, b, sizeof(a));
    sks_cleanse(a, sizeof(a));
    sks_cleanse(b, sizeof(b));
    return equal & fits & (stored->len == given.len);
}

/* Commit the current transaction (or roll it back when status is an error). */
static int finish_txn(card_call *call, int status)
{
    if (status != SKS_OK) {
        card_store_rollback(call->card->store);
        return status;
    }
    if (card_store_commit(call->card->store) != 0)
        return card_fail(call, SKS_ERR_STORAGE, "cannot commit the PIN or PUK change");
    return SKS_OK;
}

static int begin_txn(card_call *call)
{
    if (card_store_begin(call->card->store) != 0)
        return card_fail(call, SKS_ERR_STORAGE, "cannot start a transaction");
    return SKS_OK;
}

int card_pin_policy_load(card_call *call, uint32_t handle, card_pin_rec *rec)
{
    card_session_rec session;
    memset(rec, 0, sizeof(*rec));
    memset(&session, 0, sizeof(session));

    int rc = card_store_pin_get(call->card->store, handle, rec);
    if (rc == SKS_ERR_NO_POLICY)
        return card_fail(call, rc, "unknown PIN policy %u", handle);
    if (rc != SKS_OK)
        return card_fail(call, rc, "cannot read PIN policy %u", handle);
    rc = card_store_session_get(call->card->store, rec->session, &session);
    int closed = rc == SKS_OK && session.state == CARD_SESSION_CLOSED;
    card_session_rec_free(&session);
    if (!closed)
        return card_fail(call, SKS_ERR_NO_POLICY, "PIN policy %u is not usable yet", handle);
    return SKS_OK;
}

/* card_pin_policy_load, plus: a key has set the policy's PIN (NOT_ALLOWED otherwise). */
static int load_policy_with_pin(card_call *call, uint32_t handle, card_pin_rec *rec)
{
    int status = card_pin_policy_load(call, handle, rec);
    if (status == SKS_OK && rec->value.len == 0)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED, "PIN policy %u has no PIN", handle);
    return status;
}

/*
 * The first half of the counter rule for a PIN: take one try and commit it,
 * then compare. On SKS_OK the caller restores the counter (pin_store).
 */
static int pin_spend_and_compare(card_call *call, uint32_t handle, sks_view pin)
{
    card_pin_rec rec;
    int status = begin_txn(call);
    if (status != SKS_OK)
        return status;
    status = load_policy_with_pin(call, handle, &rec);
    if (status == SKS_OK && rec.tries_left == 0)
        status = card_fail(call, SKS_ERR_PIN_BLOCKED, "the PIN of policy %u is blocked", handle);
    if (status == SKS_OK) {
        rec.tries_left--;
        if (card_store_pin_set_tries(call->card->store, handle, rec.tries_left) != SKS_OK)
            status = card_fail(call, SKS_ERR_STORAGE, "cannot store the PIN counter");
    }
    status = finish_txn(call, status);

    if (status == SKS_OK && !secret_equal(&rec.value, pin))
        status =
            card_fail(call, SKS_ERR_AUTHENTICATION, "wrong PIN, %u tries left", rec.tries_left);
    card_pin_rec_free(&rec);
    if (status != SKS_OK)
        card_pin_set_verified(call->card, handle, 0);
    return status;
}

/*
 * The second half: restore the counter to RetryLimit and, when new_pin is
 * given, store that PIN (which may be the policy's first) - one transaction.
 * Without a new PIN only the counter column is written.
 */
static int pin_store(card_call *call, uint32_t handle, const sks_view *new_pin)
{
    card_pin_rec rec;
    card_store *st = call->card->store;
    int status = begin_txn(call);
    if (status != SKS_OK)
        return status;
    status = new_pin != NULL ? card_pin_policy_load(call, handle, &rec)
                             : load_policy_with_pin(call, handle, &rec);
    if (status == SKS_OK && new_pin == NULL) {
        if (card_store_pin_set_tries(st, handle, rec.retry_limit) != SKS_OK)
            status = card_fail(call, SKS_ERR_STORAGE, "cannot store the PIN counter");
    } else if (status == SKS_OK) {
        rec.tries_left = rec.retry_limit;
        if (card_buf_set(&rec.value, new_pin->ptr, new_pin->len) != 0)
            status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
        else if (card_store_pin_put(st, &rec) != SKS_OK)
            status = card_fail(call, SKS_ERR_STORAGE, "cannot store the PIN policy");
    }
    card_pin_rec_free(&rec);
    return finish_txn(call, status);
}

static int load_puk(card_call *call, uint32_t handle, card_puk_rec *rec)
{
    memset(rec, 0, sizeof(*rec));
    int rc = card_store_puk_get(call->card->store, handle, rec);
    if (rc == SKS_ERR_NO_POLICY)
        return card_fail(call, rc, "unknown PUK policy %u", handle);
    if (rc != SKS_OK)
        return card_fail(call, rc, "cannot read PUK policy %u", handle);
    return SKS_OK;
}

/* Set a PUK's counter to `tries_left` (its own transaction). */
static int puk_set_tries(card_call *call, uint32_t handle, uint8_t tries_left)
{
    int status = begin_txn(call);
    if (status != SKS_OK)
        return status;
    if (card_store_puk_set_tries(call->card->store, handle, tries_left) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot store the PUK counter");
    return finish_txn(call, status);
}

/* The wait before comparing a PUK that has no retry counter (RetryLimit 0). */
static void puk_delay(const sks_card *card)
{
    struct timespec left = {(time_t)(card->puk_delay_ms / 1000),
                            (long)(card->puk_delay_ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

int card_puk_check(card_call *call, uint32_t puk_policy, sks_view puk)
{
    card_puk_rec rec;
    int status = begin_txn(call);
    if (status != SKS_OK)
        return status;
    status = load_puk(call, puk_policy, &rec);
    int counted = status == SKS_OK && rec.retry_limit != 0; /* RetryLimit 0: no counter */
    if (counted && rec.tries_left == 0)
        status = card_fail(call, SKS_ERR_PIN_BLOCKED, "the PUK is blocked");
    if (status == SKS_OK && counted) {
        rec.tries_left--;
        if (card_store_puk_set_tries(call->card->store, puk_policy, rec.tries_left) != SKS_OK)
            status = card_fail(call, SKS_ERR_STORAGE, "cannot store the PUK counter");
    }
    status = finish_txn(call, status);
    if (status == SKS_OK && !counted && call->card->puk_delay_ms > 0)
        puk_delay(call->card);

    if (status == SKS_OK && !secret_equal(&rec.value, puk)) {
        if (counted)
            status =
                card_fail(call, SKS_ERR_AUTHENTICATION, "wrong PUK, %u tries left", rec.tries_left);
        else
            status = card_fail(call, SKS_ERR_AUTHENTICATION, "wrong PUK");
    }
    uint8_t limit = rec.retry_limit;
    card_puk_rec_free(&rec);
    if (status == SKS_OK && counted)
        status = puk_set_tries(call, puk_policy, limit);
    return status;
}

/* A new PIN must satisfy its policy (OPTION). */
static int check_new_pin(card_call *call, const card_pin_rec *policy, sks_view pin)
{
    const char *why = NULL;
    if (card_pin_check_policy(policy, pin.ptr, pin.len, &why) != SKS_OK)
        return card_fail(call, SKS_ERR_OPTION, "new %s", why != NULL ? why : "PIN is not allowed");
    return SKS_OK;
}

/* ---- Methods ------------------------------------------------------------ */

int card_m_verify_pin(card_call *call, const void *reqp, void *respp)
{
    const sks_req_verify_pin *req = reqp;
    int status = pin_spend_and_compare(call, req->pin_policy_handle, req->pin);
    if (status == SKS_OK)
        status = pin_store(call, req->pin_policy_handle, NULL);
    if (status == SKS_OK)
        card_pin_set_verified(call->card, req->pin_policy_handle, 1);
    return status;
}

/*
 * changePIN: everything that needs no secret is checked before a try is
 * taken, so a rejected new PIN costs no try. The verification state is
 * left as it was.
 */
int card_m_change_pin(card_call *call, const void *reqp, void *respp)
{
    const sks_req_change_pin *req = reqp;
    card_pin_rec rec;
    int status = load_policy_with_pin(call, req->pin_policy_handle, &rec);
    if (status == SKS_OK && !rec.user_modifiable)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED, "the PIN of policy %u is not modifiable",
                           req->pin_policy_handle);
    if (status == SKS_OK)
        status = check_new_pin(call, &rec, req->new_pin);
    card_pin_rec_free(&rec);

    if (status == SKS_OK)
        status = pin_spend_and_compare(call, req->pin_policy_handle, req->old_pin);
    if (status == SKS_OK)
        status = pin_store(call, req->pin_policy_handle, &req->new_pin);
    return status;
}

/* The PUK policy of a usable PIN policy (NOT_ALLOWED when it has none). */
static int policy_puk(card_call *call, uint32_t pin_policy, card_pin_rec *rec, uint32_t *puk)
{
    int status = card_pin_policy_load(call, pin_policy, rec);
    *puk = rec->puk_handle;
    if (status == SKS_OK && *puk == SKS_HANDLE_NONE)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED, "PIN policy %u has no PUK", pin_policy);
    return status;
}

/* card_puk_check for a PIN policy's PUK: a failed check forgets its "PUK verified". */
static int policy_puk_check(card_call *call, uint32_t pin_policy, uint32_t puk, sks_view value)
{
    int status = card_puk_check(call, puk, value);
    if (status == SKS_ERR_AUTHENTICATION || status == SKS_ERR_PIN_BLOCKED)
        card_puk_set_verified(call->card, pin_policy, 0);
    return status;
}

/*
 * verifyPUK: the PUK of the policy's PUK policy under the counter rule; a
 * match marks the PIN policy "PUK verified" for this card session.
 */
int card_m_verify_puk(card_call *call, const void *reqp, void *respp)
{
    const sks_req_verify_puk *req = reqp;
    card_pin_rec rec;
    uint32_t puk;
    (void)respp;
    int status = policy_puk(call, req->pin_policy_handle, &rec, &puk);
    card_pin_rec_free(&rec);
    if (status == SKS_OK)
        status = policy_puk_check(call, req->pin_policy_handle, puk, req->puk);
    if (status == SKS_OK)
        card_puk_set_verified(call->card, req->pin_policy_handle, 1);
    return status;
}

/*
 * unlockPIN: the PUK of the policy's PUK policy - or an empty PUK when the
 * policy is "PUK verified" (verifyPUK) - then the new PIN with a full
 * counter. It may also set the first PIN of a policy no key has set. The
 * PIN is not verified by this, and an earlier verification of the old PIN
 * is forgotten. An empty PUK without verifyPUK costs no try.
 */
int card_m_unlock_pin(card_call *call, const void *reqp, void *respp)
{
    const sks_req_unlock_pin *req = reqp;
    card_pin_rec rec;
    uint32_t puk;
    (void)respp;
    int status = policy_puk(call, req->pin_policy_handle, &rec, &puk);
    if (status == SKS_OK)
        status = check_new_pin(call, &rec, req->new_pin);
    card_pin_rec_free(&rec);

    if (status == SKS_OK && req->puk.len == 0) {
        if (!card_puk_is_verified(call->card, req->pin_policy_handle))
            status = card_fail(call, SKS_ERR_NOT_AUTHENTICATED,
                               "the PUK of PIN policy %u is not verified", req->pin_policy_handle);
    } else if (status == SKS_OK) {
        status = policy_puk_check(call, req->pin_policy_handle, puk, req->puk);
    }
    if (status == SKS_OK)
        status = pin_store(call, req->pin_policy_handle, &req->new_pin);
    if (status == SKS_OK)
        card_pin_set_verified(call->card, req->pin_policy_handle, 0);
    return status;
}

/* logout: forget the PIN and PUK verification of one policy, or of all (0). */
int card_m_logout(card_call *call, const void *reqp, void *respp)
{
    const sks_req_logout *req = reqp;
    (void)respp;
    if (req->pin_policy_handle == SKS_HANDLE_NONE) {
        call->card->nverified = 0;
        call->card->npuk_verified = 0;
        return SKS_OK;
    }
    card_pin_rec rec;
    int status = card_pin_policy_load(call, req->pin_policy_handle, &rec);
    card_pin_rec_free(&rec);
    card_pin_set_verified(call->card, req->pin_policy_handle, 0);
    card_puk_set_verified(call->card, req->pin_policy_handle, 0);
    return status;
}

/* Append one enumeratePINPolicies record for policy `handle`. */
static int describe_policy(card_call *call, uint32_t handle, sks_writer *w)
{
    card_pin_rec pin;
    card_puk_rec puk;
    sks_pin_policy_info info;
    memset(&puk, 0, sizeof(puk));
    memset(&info, 0, sizeof(info));

    int status = card_pin_policy_load(call, handle, &pin);
    if (status == SKS_OK && pin.puk_handle != SKS_HANDLE_NONE)
        status = load_puk(call, pin.puk_handle, &puk);
    if (status == SKS_OK) {
        info.handle = handle;
        info.id.ptr = pin.id;
        info.id.len = pin.id_len;
        info.provisioning_handle = pin.session;
        info.format = pin.format;
        info.min_length = pin.min_length;
        info.max_length = pin.max_length;
        info.retry_limit = pin.retry_limit;
        info.tries_left = pin.tries_left;
        info.user_modifiable = pin.user_modifiable;
        info.pin_set = pin.value.len > 0;
        info.verified = (uint8_t)card_pin_is_verified(call->card, handle);
        info.puk_policy_handle = pin.puk_handle;
        info.puk_retry_limit = puk.retry_limit;
        info.puk_tries_left = puk.tries_left;
        info.caching_support = pin.caching_support;
        if (sks_fields_write(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq, SKS_FF_WIRE,
                             &info, w) != 0)
            status = card_fail(call, SKS_ERR_INTERNAL, "cannot encode PIN policy %u", handle);
    }
    card_puk_rec_free(&puk);
    card_pin_rec_free(&pin);
    return status;
}

int card_m_enumerate_pin_policies(card_call *call, const void *reqp, void *respp)
{
    sks_resp_enumerate_pin_policies *resp = respp;
    uint32_t *handles = NULL;
    size_t n = 0;

    if (card_store_pin_list(call->card->store, &handles, &n) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot list the PIN policies");
    int status = SKS_OK;
    for (size_t i = 0; i < n && status == SKS_OK; i++)
        status = describe_policy(call, handles[i], &call->out[0]);
    free(handles);
    resp->policies.ptr = call->out[0].buf;
    resp->policies.len = call->out[0].len;
    return status;
}
