/*
 * card_reset.c - resetPINPolicy (docs/protocol.md 7.17): the holder of a
 * PIN policy's PUK empties the policy - its keys and stored objects go, its
 * PIN is unset with a full counter, and it takes a new ID. This is what
 * PKCS#11's C_InitToken on an existing token does, the PUK being the SO PIN.
 *
 * Everything that needs no secret is checked before the PUK takes a try.
 * The PUK check commits its own counter transactions (card_puk_check); the
 * reset itself is one further transaction, so a power cut leaves the policy
 * either untouched or fully reset.
 */
#include <stdlib.h>
#include <string.h>

#include "card_internal.h"

/* NewID must not be the ID of another PIN policy (keeping its own is allowed). */
static int check_new_id(card_call *call, uint32_t handle, sks_view id)
{
    int used = 0;
    if (card_store_pin_id_used(call->card->store, id, handle, &used) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot look up PIN policy IDs");
    if (used)
        return card_fail(call, SKS_ERR_OPTION, "another PIN policy already has this ID");
    return SKS_OK;
}

/* The checks without a secret: a usable policy with a PUK, and a free NewID. */
static int check_request(card_call *call, const sks_req_reset_pin_policy *req, uint32_t *puk)
{
    card_pin_rec rec;
    int status = card_pin_policy_load(call, req->pin_policy_handle, &rec);
    *puk = rec.puk_handle;
    card_pin_rec_free(&rec);
    if (status == SKS_OK && *puk == SKS_HANDLE_NONE)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED, "PIN policy %u has no PUK",
                           req->pin_policy_handle);
    if (status == SKS_OK)
        status = check_new_id(call, req->pin_policy_handle, req->new_id);
    return status;
}

/*
 * The reset proper, inside the caller's transaction: the policy's keys and
 * objects are deleted, then the policy is stored without a PIN, with a full
 * counter and the new ID. The handles of the deleted keys are returned so
 * the caller can drop them from the key cache after the commit.
 */
static int reset_policy(card_call *call, const sks_req_reset_pin_policy *req, uint32_t **keys,
                        size_t *nkeys)
{
    card_store *st = call->card->store;
    card_pin_rec rec;
    uint32_t handle = req->pin_policy_handle;

    int status = card_pin_policy_load(call, handle, &rec);
    if (status == SKS_OK)
        status = check_new_id(call, handle, req->new_id);
    if (status == SKS_OK && card_store_policy_keys(st, handle, keys, nkeys) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot list the keys of PIN policy %u", handle);
    if (status == SKS_OK && card_store_policy_purge(st, handle) != SKS_OK)
        status =
            card_fail(call, SKS_ERR_STORAGE, "cannot delete the keys of PIN policy %u", handle);
    if (status == SKS_OK) {
        card_buf_free(&rec.value);
        rec.tries_left = rec.retry_limit;
        memcpy(rec.id, req->new_id.ptr, req->new_id.len);
        rec.id_len = (uint8_t)req->new_id.len;
        if (card_store_pin_put(st, &rec) != SKS_OK)
            status = card_fail(call, SKS_ERR_STORAGE, "cannot store PIN policy %u", handle);
    }
    card_pin_rec_free(&rec);
    return status;
}

int card_m_reset_pin_policy(card_call *call, const void *reqp, void *respp)
{
    const sks_req_reset_pin_policy *req = reqp;
    uint32_t handle = req->pin_policy_handle, puk = SKS_HANDLE_NONE;
    uint32_t *keys = NULL;
    size_t nkeys = 0;
    (void)respp;

    if (req->new_id.len < 1 || req->new_id.len > SKS_ID_MAX)
        return card_fail(call, SKS_ERR_OPTION, "NewID must have 1..%d bytes", SKS_ID_MAX);
    int status = check_request(call, req, &puk);
    if (status == SKS_OK) {
        status = card_puk_check(call, puk, req->puk);
        if (status == SKS_ERR_AUTHENTICATION || status == SKS_ERR_PIN_BLOCKED)
            card_puk_set_verified(call->card, handle, 0);
    }
    if (status != SKS_OK)
        return status;

    if (card_store_begin(call->card->store) != 0)
        return card_fail(call, SKS_ERR_STORAGE, "cannot start a transaction");
    status = reset_policy(call, req, &keys, &nkeys);
    if (status != SKS_OK)
        card_store_rollback(call->card->store);
    else if (card_store_commit(call->card->store) != 0)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot commit the reset");
    if (status == SKS_OK) {
        for (size_t i = 0; i < nkeys; i++)
            card_keyuse_cache_forget(call->card, keys[i]);
        card_pin_set_verified(call->card, handle, 0);
        card_puk_set_verified(call->card, handle, 0);
    }
    free(keys);
    return status;
}
