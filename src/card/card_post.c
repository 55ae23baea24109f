/*
 * card_post.c - post-provisioning by a key's issuer (docs/protocol.md 6.10):
 * postDeleteKey, postUnlockKey and postUpdateKey name a complete key that an
 * earlier, closed session of the same issuer (byte-identical IssuerURI and
 * IssuerPublicKey) created with Updatable. Only that issuer can derive this
 * session's SK, so the call's MAC over the key's ID and public key is its
 * authorisation; another issuer's session gets NOT_ALLOWED and is aborted.
 *
 * A call only records the operation (a post_ops row of the session). The
 * close applies every recorded operation in its own transaction (deletes
 * the key, restores its PIN counter, or deletes the replaced key), so a
 * session that fails or is aborted changes no key.
 */
#include <stdlib.h>
#include <string.h>

#include "card_session.h"

/* Everything one post-provisioning call works on. */
typedef struct {
    card_session_rec s;
    card_key_rec target;  /* the issuer's earlier key */
    card_key_rec new_key; /* postUpdateKey: the key of this session replacing it */
} post_ctx;

static void post_ctx_free(post_ctx *c)
{
    card_key_rec_free(&c->new_key);
    card_key_rec_free(&c->target);
    card_session_rec_free(&c->s);
}

/*
 * The target key: a complete key (NO_KEY otherwise, like the Key User API)
 * whose session has this session's issuer (NOT_ALLOWED otherwise).
 */
static int load_target(card_call *call, post_ctx *c, uint32_t handle)
{
    int rc = card_store_key_get(call->card->store, handle, &c->target);
    if (rc == SKS_OK && !(c->target.flags & SKS_KEYFLAG_COMPLETE))
        rc = SKS_ERR_NO_KEY;
    if (rc != SKS_OK)
        return card_fail(call, rc == SKS_ERR_NO_KEY ? rc : SKS_ERR_STORAGE,
                         "key %u is not a complete key", handle);
    int same = card_session_same_issuer(call, &c->s, c->target.session);
    if (same < 0)
        return card_fail(call, SKS_ERR_STORAGE, "cannot read the session of key %u", handle);
    if (same == 0)
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "key %u belongs to another issuer", handle);
    return SKS_OK;
}

/* The new key of postUpdateKey: a key of this session (NO_KEY otherwise). */
static int load_new_key(card_call *call, post_ctx *c, uint32_t handle)
{
    int rc = card_store_key_get(call->card->store, handle, &c->new_key);
    if (rc == SKS_OK && c->new_key.session != c->s.handle)
        rc = SKS_ERR_NO_KEY;
    if (rc != SKS_OK)
        return card_fail(call, rc == SKS_ERR_NO_KEY ? rc : SKS_ERR_STORAGE,
                         "key %u is not a key of this session", handle);
    return SKS_OK;
}

/*
 * Visit each operation recorded for `session`, in order, until a visit
 * answers other than SKS_OK; *count (if not NULL) is their number.
 */
typedef int post_visit(card_call *call, const card_post_rec *p, void *arg);

static int each_post(card_call *call, uint32_t session, post_visit *visit, void *arg, size_t *count)
{
    uint32_t *handles = NULL;
    size_t n = 0;
    int rc = card_store_session_posts(call->card->store, session, &handles, &n);
    if (rc != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot list the session's operations");
    for (size_t i = 0; i < n && rc == SKS_OK; i++) {
        card_post_rec p;
        if (card_store_post_get(call->card->store, handles[i], &p) != SKS_OK) {
            rc = card_fail(call, SKS_ERR_STORAGE, "cannot read operation %u", handles[i]);
            break;
        }
        rc = visit(call, &p, arg);
        card_post_rec_free(&p);
    }
    free(handles);
    if (count != NULL)
        *count = n;
    return rc;
}

/* The keys of a new operation, which no recorded operation may name already. */
typedef struct {
    uint32_t target;
    uint32_t new_key; /* 0 unless postUpdateKey */
} post_keys;

static int not_named(card_call *call, const card_post_rec *p, void *arg)
{
    const post_keys *k = arg;
    if (p->target == k->target)
        return card_fail(call, SKS_ERR_NOT_ALLOWED,
                         "key %u is already named by an operation of this session", k->target);
    if (k->new_key != 0 && p->new_key == k->new_key)
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "key %u already replaces another key",
                         k->new_key);
    return SKS_OK;
}

/*
 * Is the target already named by an operation of this session, or (with
 * `new_key` not 0) is that new key already replacing another key? Each key
 * takes part in at most one operation of a session (NOT_ALLOWED).
 */
static int check_unused(card_call *call, uint32_t session, uint32_t target, uint32_t new_key)
{
    post_keys k = {target, new_key};
    return each_post(call, session, not_named, &k, NULL);
}

/* The checks after the MAC, in the order of 6.10. */
static int check_post_args(card_call *call, const post_ctx *c, uint8_t method_id)
{
    const card_key_rec *k = &c->target;
    if (!(k->flags & SKS_KEYFLAG_UPDATABLE))
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "key %u is not Updatable", k->handle);
    if (method_id == SKS_M_POST_UNLOCK_KEY && k->pin_policy == SKS_HANDLE_NONE)
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "key %u has no PIN", k->handle);
    return check_unused(call, c->s.handle, k->handle,
                        method_id == SKS_M_POST_UPDATE_KEY ? c->new_key.handle : 0);
}

/* Record the operation for the close; `new_key` is 0 unless postUpdateKey. */
static int record_post(card_call *call, const post_ctx *c, uint8_t method_id)
{
    card_post_rec p;
    memset(&p, 0, sizeof p);
    if (card_store_next_handle(call->card->store, &p.handle) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot allocate a handle");
    p.session = c->s.handle;
    p.op = method_id;
    p.target = c->target.handle;
    p.new_key = method_id == SKS_M_POST_UPDATE_KEY ? c->new_key.handle : 0;
    if (card_store_post_put(call->card->store, &p) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot store the operation");
    return SKS_OK;
}

/* The three methods differ in the MethodName of their MAC and in what the close does. */
static int post_method(card_call *call, uint8_t method_id, const sks_req_post_key *req)
{
    sks_req_post_key r = *req;
    post_ctx c;

    memset(&c, 0, sizeof c);
    int rc = card_session_load(call, req->provisioning_handle, &c.s);
    if (rc != SKS_OK)
        return rc;
    rc = load_target(call, &c, req->key_handle);
    r.key_id = (sks_view){c.target.id, c.target.id_len};
    r.key_public_key = card_buf_view(&c.target.public_key);
    r.new_key_id = (sks_view){NULL, 0};
    if (rc == SKS_OK && method_id == SKS_M_POST_UPDATE_KEY) {
        rc = load_new_key(call, &c, req->new_key_handle);
        r.new_key_id = (sks_view){c.new_key.id, c.new_key.id_len};
    }
    if (rc == SKS_OK)
        rc = card_session_verify_mac(call, &c.s, method_id, &r, r.mac);
    if (rc == SKS_OK)
        rc = check_post_args(call, &c, method_id);
    if (rc == SKS_OK)
        rc = record_post(call, &c, method_id);
    if (rc == SKS_OK)
        rc = card_session_save(call, &c.s);
    post_ctx_free(&c);
    return rc;
}

int card_m_post_delete_key(card_call *call, const void *req, void *resp)
{
    (void)resp;
    return post_method(call, SKS_M_POST_DELETE_KEY, req);
}

int card_m_post_unlock_key(card_call *call, const void *req, void *resp)
{
    (void)resp;
    return post_method(call, SKS_M_POST_UNLOCK_KEY, req);
}

int card_m_post_update_key(card_call *call, const void *req, void *resp)
{
    (void)resp;
    return post_method(call, SKS_M_POST_UPDATE_KEY, req);
}

/* ---- At closeProvisioningSession ------------------------------------- */

/* Is `handle` still a complete key (deleteKey or another close may have removed it)? */
static int still_complete(card_call *call, uint32_t handle)
{
    card_key_rec k;
    int rc = card_store_key_get(call->card->store, handle, &k);
    int complete = rc == SKS_OK && (k.flags & SKS_KEYFLAG_COMPLETE);
    card_key_rec_free(&k);
    if (rc != SKS_OK && rc != SKS_ERR_NO_KEY)
        return card_fail(call, SKS_ERR_STORAGE, "cannot read key %u", handle);
    if (!complete)
        return card_fail(call, SKS_ERR_SESSION_VERIFY,
                         "key %u named by a post-provisioning operation is gone", handle);
    return SKS_OK;
}

/* Count one operation and check that its key is still complete. */
static int count_post(card_call *call, const card_post_rec *p, void *arg)
{
    card_post_counts *counts = arg;
    if (p->op == SKS_M_POST_DELETE_KEY)
        counts->deleted++;
    else if (p->op == SKS_M_POST_UNLOCK_KEY)
        counts->unlocked++;
    else if (p->op == SKS_M_POST_UPDATE_KEY)
        counts->replaced++;
    else
        return card_fail(call, SKS_ERR_INTERNAL, "operation %u is damaged", p->handle);
    return still_complete(call, p->target);
}

int card_post_check(card_call *call, uint32_t session, card_post_counts *counts)
{
    memset(counts, 0, sizeof *counts);
    return each_post(call, session, count_post, counts, NULL);
}

/* postUnlockKey: the key's PIN policy gets its full retry counter back. */
static int unlock_key(card_call *call, uint32_t key_handle)
{
    card_key_rec k;
    card_pin_rec pin;
    memset(&pin, 0, sizeof pin);
    int rc = card_store_key_get(call->card->store, key_handle, &k);
    if (rc == SKS_OK)
        rc = card_store_pin_get(call->card->store, k.pin_policy, &pin);
    if (rc == SKS_OK)
        rc = card_store_pin_set_tries(call->card->store, pin.handle, pin.retry_limit);
    card_pin_rec_free(&pin);
    card_key_rec_free(&k);
    if (rc != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot unlock the PIN of key %u", key_handle);
    return SKS_OK;
}

/* postDeleteKey, and the replaced key of postUpdateKey. */
static int delete_key(card_call *call, uint32_t key_handle)
{
    if (card_store_key_delete(call->card->store, key_handle) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot delete key %u", key_handle);
    card_keyuse_cache_forget(call->card, key_handle);
    return SKS_OK;
}

/* Apply one operation: unlock, or delete the named (or replaced) key. */
static int apply_post(card_call *call, const card_post_rec *p, void *arg)
{
    (void)arg;
    return p->op == SKS_M_POST_UNLOCK_KEY ? unlock_key(call, p->target)
                                          : delete_key(call, p->target);
}

int card_post_apply(card_call *call, uint32_t session)
{
    size_t n = 0;
    int rc = each_post(call, session, apply_post, NULL, &n);
    if (rc == SKS_OK && n > 0 &&
        card_store_session_posts_clear(call->card->store, session) != SKS_OK)
        rc = card_fail(call, SKS_ERR_STORAGE, "cannot remove the session's operations");
    return rc;
}
