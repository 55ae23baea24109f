/*
 * card_objects.c - stored objects of the Key User API (docs/protocol.md
 * section 7): createObject, deleteObject, enumerateObjects, readObject and
 * updateObject. The middleware keeps certificates, data objects and public
 * keys here, as PKCS#15 files do on other cards.
 *
 * The card treats Attributes as opaque bytes and enforces only who may
 * write and read: an object belongs to a usable PIN policy (or to policy 0,
 * the keys-without-PIN token); writing it needs that PIN verified, and so
 * does reading a Private one. The number of objects is bounded by the
 * card's MaxKeys. Writes run in the dispatcher's transaction (CARD_TXN_AUTO).
 */
#include <string.h>

#include "card_internal.h"

/* The PIN rule of an object of `pin_policy` (0: none). */
static int require_pin(card_call *call, uint32_t pin_policy)
{
    if (pin_policy != SKS_HANDLE_NONE && !card_pin_is_verified(call->card, pin_policy))
        return card_fail(call, SKS_ERR_NOT_AUTHENTICATED,
                         "the PIN of PIN policy %u is not verified", pin_policy);
    return SKS_OK;
}

/* An existing object (NO_KEY otherwise). `rec` is always safe to free. */
static int load_object(card_call *call, uint32_t handle, card_object_rec *rec)
{
    int rc = card_store_object_get(call->card->store, handle, rec);
    if (rc == SKS_ERR_NO_KEY)
        return card_fail(call, rc, "no object %u", handle);
    if (rc != SKS_OK)
        return card_fail(call, rc, "cannot read object %u", handle);
    return SKS_OK;
}

/* An existing object that this call may change or delete (its PIN rule met). */
static int load_writable_object(card_call *call, uint32_t handle, card_object_rec *rec)
{
    int status = load_object(call, handle, rec);
    if (status == SKS_OK)
        status = require_pin(call, rec->pin_policy);
    return status;
}

int card_m_create_object(card_call *call, const void *reqp, void *respp)
{
    const sks_req_create_object *req = reqp;
    sks_resp_create_object *resp = respp;
    card_store *st = call->card->store;
    card_object_rec rec;
    uint32_t count = 0;
    int status = SKS_OK;

    memset(&rec, 0, sizeof(rec));
    if (req->pin_policy_handle != SKS_HANDLE_NONE) {
        card_pin_rec policy;
        status = card_pin_policy_load(call, req->pin_policy_handle, &policy);
        card_pin_rec_free(&policy);
    }
    if (status == SKS_OK &&
        (req->object_class < SKS_OBJECT_CERTIFICATE || req->object_class > SKS_OBJECT_PUBLIC_KEY))
        status = card_fail(call, SKS_ERR_OPTION, "unknown object Class %u", req->object_class);
    if (status == SKS_OK)
        status = require_pin(call, req->pin_policy_handle);
    if (status == SKS_OK && card_store_object_count(st, &count) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot count the objects");
    if (status == SKS_OK && count >= call->card->max_keys)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED, "the card holds its maximum of %u objects",
                           call->card->max_keys);
    if (status == SKS_OK && card_store_next_handle(st, &rec.handle) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot allocate a handle");
    if (status == SKS_OK) {
        rec.pin_policy = req->pin_policy_handle;
        rec.object_class = req->object_class;
        rec.private_ = req->private_;
        if (card_buf_set(&rec.attributes, req->attributes.ptr, req->attributes.len) != 0)
            status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    }
    if (status == SKS_OK && card_store_object_put(st, &rec) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot store the object");
    if (status == SKS_OK)
        resp->object_handle = rec.handle;
    card_object_rec_free(&rec);
    return status;
}

int card_m_delete_object(card_call *call, const void *reqp, void *respp)
{
    const sks_req_object_handle *req = reqp;
    card_object_rec rec;
    (void)respp;

    int status = load_writable_object(call, req->object_handle, &rec);
    if (status == SKS_OK &&
        card_store_object_delete(call->card->store, req->object_handle) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot delete object %u", req->object_handle);
    card_object_rec_free(&rec);
    return status;
}

int card_m_enumerate_objects(card_call *call, const void *reqp, void *respp)
{
    return card_enumerate_handles(call, reqp, respp, card_store_object_list, "objects");
}

int card_m_read_object(card_call *call, const void *reqp, void *respp)
{
    const sks_req_object_handle *req = reqp;
    sks_resp_read_object *resp = respp;
    card_object_rec rec;

    int status = load_object(call, req->object_handle, &rec);
    if (status == SKS_OK && rec.private_)
        status = require_pin(call, rec.pin_policy);
    if (status == SKS_OK) {
        sks_put_raw(&call->out[0], rec.attributes.ptr, rec.attributes.len);
        if (call->out[0].failed)
            status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    }
    if (status == SKS_OK) {
        resp->pin_policy_handle = rec.pin_policy;
        resp->object_class = rec.object_class;
        resp->private_ = rec.private_;
        resp->attributes.ptr = call->out[0].buf;
        resp->attributes.len = call->out[0].len;
    }
    card_object_rec_free(&rec);
    return status;
}

int card_m_update_object(card_call *call, const void *reqp, void *respp)
{
    const sks_req_update_object *req = reqp;
    card_object_rec rec;
    (void)respp;

    int status = load_writable_object(call, req->object_handle, &rec);
    if (status == SKS_OK &&
        card_buf_set(&rec.attributes, req->attributes.ptr, req->attributes.len) != 0)
        status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    if (status == SKS_OK && card_store_object_put(call->card->store, &rec) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot store object %u", req->object_handle);
    card_object_rec_free(&rec);
    return status;
}
