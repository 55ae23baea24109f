/*
 * card_keys.c - the key object methods of the Key User API: enumerateKeys,
 * getKeyAttributes, enumerateKeyAttributes, deleteKey, exportKey and setKeyAttributes, and the two
 * rules every key method shares: only complete keys (session closed) exist
 * for this API, and a PIN-protected key needs its policy's PIN verified.
 * The paging of enumerateKeys here also serves enumerateObjects.
 */
#include <string.h>

#include "card_internal.h"

int card_key_get_complete(card_call *call, uint32_t key_handle, card_key_rec *rec)
{
    memset(rec, 0, sizeof(*rec));
    int rc = card_store_key_get(call->card->store, key_handle, rec);
    if (rc == SKS_OK && !(rec->flags & SKS_KEYFLAG_COMPLETE))
        rc = SKS_ERR_NO_KEY;
    if (rc == SKS_ERR_NO_KEY)
        return card_fail(call, rc, "no usable key %u", key_handle);
    if (rc != SKS_OK)
        return card_fail(call, rc, "cannot read key %u", key_handle);
    return SKS_OK;
}

int card_key_require_pin(card_call *call, const card_key_rec *rec)
{
    if (rec->pin_policy != SKS_HANDLE_NONE && !card_pin_is_verified(call->card, rec->pin_policy))
        return card_fail(call, SKS_ERR_NOT_AUTHENTICATED, "the PIN of key %u is not verified",
                         rec->handle);
    return SKS_OK;
}

int card_enumerate_handles(card_call *call, const sks_req_enumerate_keys *req,
                           sks_resp_enumerate_keys *resp, card_handle_list_fn list,
                           const char *what)
{
    uint32_t handles[SKS_ENUM_PAGE_MAX];
    size_t n = 0;
    int more = 0;

    if (list(call->card->store, req->after_handle, handles, SKS_ENUM_PAGE_MAX, &n, &more) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot list the %s", what);
    for (size_t i = 0; i < n; i++)
        sks_put_int(&call->out[0], handles[i]);
    if (call->out[0].failed)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    resp->handles.ptr = call->out[0].buf;
    resp->handles.len = call->out[0].len;
    resp->more = more != 0;
    return SKS_OK;
}

int card_m_enumerate_keys(card_call *call, const void *reqp, void *respp)
{
    return card_enumerate_handles(call, reqp, respp, card_store_key_list, "keys");
}

/* Copy bytes into a call writer and point `v` at the copy. */
static void put_view(sks_writer *w, const void *p, size_t n, sks_view *v)
{
    sks_put_raw(w, p, n);
    v->ptr = w->buf;
    v->len = w->len;
}

int card_m_get_key_attributes(card_call *call, const void *reqp, void *respp)
{
    const sks_req_key_handle *req = reqp;
    sks_resp_get_key_attributes *resp = respp;
    card_key_rec rec;

    int status = card_key_get_complete(call, req->key_handle, &rec);
    if (status == SKS_OK) {
        put_view(&call->out[0], rec.id, rec.id_len, &resp->id);
        put_view(&call->out[1], rec.friendly_name.ptr, rec.friendly_name.len, &resp->friendly_name);
        put_view(&call->out[2], rec.public_key.ptr, rec.public_key.len, &resp->public_key);
        sks_put_raw(&call->out[3], rec.cert_path.ptr, rec.cert_path.len);
        resp->algorithm = rec.algorithm;
        resp->key_usage = rec.usage;
        resp->flags = rec.flags;
        resp->pin_policy_handle = rec.pin_policy;
        resp->provisioning_handle = rec.session;
        for (size_t i = 0; i < 4; i++)
            if (call->out[i].failed)
                status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    }
    if (status == SKS_OK) {
        card_buf path = {call->out[3].buf, call->out[3].len}; /* borrowed, not freed */
        if (card_certpath_view(&path, &resp->certificate_path) != 0)
            status = card_fail(call, SKS_ERR_INTERNAL, "stored certificate path of key %u is bad",
                               req->key_handle);
    }
    card_key_rec_free(&rec);
    return status;
}

/* One page of enumerateKeyAttributes being filled (card_store_key_public_page's ctx). */
typedef struct {
    card_call *call;
    sks_writer record; /* the record being encoded */
} key_page;

/* Encode one key's record and add it unless it takes the page past its budget. */
static int take_key_record(void *ctx, const card_key_rec *rec)
{
    key_page *page = ctx;
    sks_writer *out = &page->call->out[0];
    sks_key_attributes_info info;
    memset(&info, 0, sizeof(info));
    info.key_handle = rec->handle;
    info.attributes.id = (sks_view){rec->id, rec->id_len};
    info.attributes.friendly_name = card_buf_view(&rec->friendly_name);
    info.attributes.algorithm = rec->algorithm;
    info.attributes.key_usage = rec->usage;
    info.attributes.flags = rec->flags;
    info.attributes.pin_policy_handle = rec->pin_policy;
    info.attributes.public_key = card_buf_view(&rec->public_key);
    info.attributes.provisioning_handle = rec->session;
    if (card_certpath_view(&rec->cert_path, &info.attributes.certificate_path) != 0)
        return card_fail(page->call, SKS_ERR_INTERNAL, "stored certificate path of key %u is bad",
                         rec->handle);
    sks_writer_reset(&page->record);
    if (sks_fields_write(sks_rec_key_attributes_info.req, sks_rec_key_attributes_info.nreq,
                         SKS_FF_WIRE, &info, &page->record) != 0 ||
        page->record.failed)
        return card_fail(page->call, SKS_ERR_INTERNAL, "cannot encode key %u", rec->handle);
    /* A page holds at least one record, however large. */
    if (out->len > 0 &&
        (out->len >= SKS_ENUM_RECORDS_MAX || page->record.len > SKS_ENUM_RECORDS_MAX - out->len))
        return CARD_PAGE_FULL;
    sks_put_raw(out, page->record.buf, page->record.len);
    return out->failed ? card_fail(page->call, SKS_ERR_INTERNAL, "out of memory") : SKS_OK;
}

/*
 * enumerateKeyAttributes: the records of the complete keys after
 * AfterHandle, ascending, as many as fit in SKS_ENUM_RECORDS_MAX bytes,
 * read in one store query that never unseals a private key.
 */
int card_m_enumerate_key_attributes(card_call *call, const void *reqp, void *respp)
{
    const sks_req_enumerate_keys *req = reqp;
    sks_resp_enumerate_key_attributes *resp = respp;
    key_page page = {call, {0}};
    int more = 0;

    sks_writer_init(&page.record);
    int status = card_store_key_public_page(call->card->store, req->after_handle, take_key_record,
                                            &page, &more);
    sks_writer_free(&page.record);
    if (status == SKS_ERR_STORAGE && call->error[0] == '\0')
        return card_fail(call, SKS_ERR_STORAGE, "cannot list the keys");
    if (status != SKS_OK)
        return status;
    resp->records.ptr = call->out[0].buf;
    resp->records.len = call->out[0].len;
    resp->more = more != 0;
    return SKS_OK;
}

/*
 * countKeys: how many complete keys a PIN policy has (0: the keys without
 * PIN), from the index of keys by policy, so middleware can tell which of
 * its tokens hold keys without reading every key.
 */
int card_m_count_keys(card_call *call, const void *reqp, void *respp)
{
    const sks_req_count_keys *req = reqp;
    sks_resp_count_keys *resp = respp;
    if (card_store_policy_key_count(call->card->store, req->pin_policy_handle, &resp->count) !=
        SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot count the keys");
    return SKS_OK;
}

/*
 * deleteKey: PIN verified if the key has one; a DeleteProtected key also
 * needs the PUK of its policy (counter rule, its own transactions); then the
 * key goes in one transaction.
 */
int card_m_delete_key(card_call *call, const void *reqp, void *respp)
{
    const sks_req_delete_key *req = reqp;
    card_key_rec rec;
    card_pin_rec pin;
    memset(&pin, 0, sizeof(pin));

    int status = card_key_get_complete(call, req->key_handle, &rec);
    if (status == SKS_OK)
        status = card_key_require_pin(call, &rec);
    if (status == SKS_OK && (rec.flags & SKS_KEYFLAG_DELETE_PROTECTED)) {
        int rc = card_store_pin_get(call->card->store, rec.pin_policy, &pin);
        if (rc != SKS_OK || pin.puk_handle == SKS_HANDLE_NONE)
            status = card_fail(call, SKS_ERR_NOT_ALLOWED,
                               "key %u is delete-protected without a PUK", req->key_handle);
        else
            status = card_puk_check(call, pin.puk_handle, req->authorization);
        if (status == SKS_ERR_AUTHENTICATION || status == SKS_ERR_PIN_BLOCKED)
            card_puk_set_verified(call->card, rec.pin_policy, 0);
    }
    card_pin_rec_free(&pin);
    card_key_rec_free(&rec);
    if (status != SKS_OK)
        return status;

    if (card_store_begin(call->card->store) != 0)
        return card_fail(call, SKS_ERR_STORAGE, "cannot start a transaction");
    status = card_store_key_delete(call->card->store, req->key_handle);
    if (status != SKS_OK) {
        card_store_rollback(call->card->store);
        return card_fail(call, status, "cannot delete key %u", req->key_handle);
    }
    if (card_store_commit(call->card->store) != 0)
        return card_fail(call, SKS_ERR_STORAGE, "cannot commit the deletion");
    card_keyuse_cache_forget(call->card, req->key_handle);
    return SKS_OK;
}

/*
 * exportKey: Migratable keys only, PIN verified. Before the key leaves, its
 * "generated on the card" flag is cleared in its own transaction: from now
 * on the private key has been outside the card.
 */
int card_m_export_key(card_call *call, const void *reqp, void *respp)
{
    const sks_req_key_handle *req = reqp;
    sks_resp_export_key *resp = respp;
    card_key_rec rec;

    if (card_store_begin(call->card->store) != 0)
        return card_fail(call, SKS_ERR_STORAGE, "cannot start a transaction");
    int status = card_key_get_complete(call, req->key_handle, &rec);
    if (status == SKS_OK && !(rec.flags & SKS_KEYFLAG_MIGRATABLE))
        status = card_fail(call, SKS_ERR_NOT_ALLOWED, "key %u is not migratable", req->key_handle);
    if (status == SKS_OK)
        status = card_key_require_pin(call, &rec);
    if (status == SKS_OK && rec.private_key.len == 0)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED, "key %u has no private key", req->key_handle);
    if (status == SKS_OK && (rec.flags & SKS_KEYFLAG_GENERATED_ON_CARD)) {
        rec.flags &= (uint8_t)~SKS_KEYFLAG_GENERATED_ON_CARD;
        if (card_store_key_put(call->card->store, &rec) != SKS_OK)
            status = card_fail(call, SKS_ERR_STORAGE, "cannot update key %u", req->key_handle);
    }
    if (status != SKS_OK) {
        card_store_rollback(call->card->store);
    } else if (card_store_commit(call->card->store) != 0) {
        status = card_fail(call, SKS_ERR_STORAGE, "cannot commit the export");
    } else {
        put_view(&call->out[0], rec.private_key.ptr, rec.private_key.len, &resp->private_key);
        if (call->out[0].failed)
            status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    }
    card_key_rec_free(&rec);
    return status;
}

/*
 * setKeyAttributes: a new ID and friendly name for a complete key (PIN
 * verified if it has one). The ID stays unique among complete keys. The
 * dispatcher runs it in one transaction.
 */
int card_m_set_key_attributes(card_call *call, const void *reqp, void *respp)
{
    const sks_req_set_key_attributes *req = reqp;
    card_key_rec rec;
    int used = 0;
    (void)respp;

    int status = card_key_get_complete(call, req->key_handle, &rec);
    if (status == SKS_OK)
        status = card_key_require_pin(call, &rec);
    /* Keeping the key's own ID is always allowed (IDs are unique per session only). */
    int same_id = status == SKS_OK && req->id.len == rec.id_len &&
                  memcmp(req->id.ptr, rec.id, rec.id_len) == 0;
    if (status == SKS_OK && !same_id &&
        card_store_key_id_used(call->card->store, req->id, req->key_handle, &used) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot look up key IDs");
    if (status == SKS_OK && used)
        status = card_fail(call, SKS_ERR_OPTION, "another key already has this ID");
    if (status == SKS_OK) {
        memcpy(rec.id, req->id.ptr, req->id.len);
        rec.id_len = (uint8_t)req->id.len;
        if (card_buf_set(&rec.friendly_name, req->friendly_name.ptr, req->friendly_name.len) != 0)
            status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    }
    if (status == SKS_OK && card_store_key_put(call->card->store, &rec) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot update key %u", req->key_handle);
    card_key_rec_free(&rec);
    return status;
}
