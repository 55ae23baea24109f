/*
 * issuer_post.c - the issuer's side of post-provisioning (docs/protocol.md
 * 6.10): in a later session with the same IssuerURI and issuer key, name a
 * key made earlier (by the ID and public key the issuer recorded then) for
 * postDeleteKey, postUnlockKey or postUpdateKey, MACed under this session's
 * SK. The MAC is the authorisation: only this issuer can derive SK, and the
 * card checks that the key's session had this issuer.
 *
 * The session remembers which earlier keys it named and how, so that a key
 * is named at most once and sks_issuer_prepare_close() gives the card the
 * DeletedKeys and ReplacedKeys it will count.
 */
#include "issuer_internal.h"

#include <stdlib.h>
#include <string.h>

static int bytes_equal(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static int id_equal(const issuer_earlier_key_rec *k, const char *id)
{
    return bytes_equal(k->id, k->id_len, (const uint8_t *)id, strlen(id));
}

/* The declared key with this ID and public key, or -1. */
static int find_declared(const sks_issuer_session *s, const char *id, sks_view public_key)
{
    for (size_t i = 0; i < s->nearlier_keys; i++) {
        const issuer_earlier_key_rec *k = s->earlier_keys[i];
        if (id_equal(k, id) &&
            bytes_equal(k->public_key, k->public_key_len, public_key.ptr, public_key.len))
            return (int)i;
    }
    return -1;
}

int sks_issuer_declare_key(sks_issuer_session *s, const char *key_id, sks_view public_key)
{
    size_t id_len = key_id != NULL ? strlen(key_id) : 0;
    if (id_len < 1 || id_len > SKS_ID_MAX)
        return issuer_fail(s, "an ID must be 1..%d bytes", SKS_ID_MAX);
    EVP_PKEY *key = issuer_parse_spki(public_key.ptr, public_key.len);
    if (key == NULL)
        return issuer_fail(s, "the public key of \"%s\" is not a SubjectPublicKeyInfo", key_id);
    EVP_PKEY_free(key);
    if (find_declared(s, key_id, public_key) >= 0)
        return issuer_fail(s, "key \"%s\" is already declared", key_id);

    issuer_earlier_key_rec *k = calloc(1, sizeof *k);
    uint8_t *pub = malloc(public_key.len);
    issuer_earlier_key_rec **grown =
        realloc(s->earlier_keys, (s->nearlier_keys + 1) * sizeof *grown);
    if (grown != NULL)
        s->earlier_keys = grown;
    if (k == NULL || pub == NULL || grown == NULL) {
        free(k);
        free(pub);
        return issuer_fail(s, "out of memory");
    }
    memcpy(k->id, key_id, id_len);
    k->id_len = id_len;
    memcpy(pub, public_key.ptr, public_key.len);
    k->public_key = pub;
    k->public_key_len = public_key.len;
    k->new_key = -1;
    s->earlier_keys[s->nearlier_keys++] = k;
    return 0;
}

/*
 * The earlier key a post call names: the one declared with this ID and
 * public key (declared now if it was not), or with an empty public key the
 * only one declared with this ID. NULL on failure (error set).
 */
static issuer_earlier_key_rec *earlier_key(sks_issuer_session *s, const char *key_id,
                                           sks_view public_key)
{
    if (key_id == NULL) {
        issuer_fail(s, "no key ID");
        return NULL;
    }
    if (public_key.len == 0) {
        issuer_earlier_key_rec *found = NULL;
        for (size_t i = 0; i < s->nearlier_keys; i++) {
            if (!id_equal(s->earlier_keys[i], key_id))
                continue;
            if (found != NULL) {
                issuer_fail(s, "several keys \"%s\" are declared: give the public key", key_id);
                return NULL;
            }
            found = s->earlier_keys[i];
        }
        if (found == NULL)
            issuer_fail(s, "no key \"%s\" is declared", key_id);
        return found;
    }
    int i = find_declared(s, key_id, public_key);
    if (i < 0) {
        if (sks_issuer_declare_key(s, key_id, public_key) != 0)
            return NULL;
        i = (int)s->nearlier_keys - 1;
    }
    return s->earlier_keys[i];
}

/* The key of this session that will replace an earlier one: exists, replaces nothing yet. */
static int replacing_key(sks_issuer_session *s, const char *new_key_id)
{
    int nk = issuer_find_key(s, new_key_id);
    if (nk < 0)
        return issuer_fail(s, "no key \"%s\" in this session", new_key_id ? new_key_id : "");
    for (size_t i = 0; i < s->nearlier_keys; i++) {
        if (s->earlier_keys[i]->new_key == nk)
            return issuer_fail(s, "key \"%s\" already replaces another key", new_key_id);
    }
    return nk;
}

/* The three calls differ in their method (the MAC's MethodName) and the new key. */
static int prepare_post(sks_issuer_session *s, uint8_t method_id, const char *key_id,
                        sks_view public_key, uint32_t key_handle, const char *new_key_id,
                        uint32_t new_key_handle, sks_issuer_msg *m, sks_req_post_key *req)
{
    if (issuer_begin(s, m) != 0)
        return -1;
    issuer_earlier_key_rec *k = earlier_key(s, key_id, public_key);
    if (k == NULL)
        return -1;
    if (k->post_op != 0)
        return issuer_fail(s, "key \"%s\" is already named by a call of this session", key_id);
    int nk = -1;
    if (method_id == SKS_M_POST_UPDATE_KEY && (nk = replacing_key(s, new_key_id)) < 0)
        return -1;

    memset(req, 0, sizeof *req);
    req->provisioning_handle = sks_issuer_provisioning_handle(s);
    req->key_handle = key_handle;
    req->key_id = (sks_view){k->id, k->id_len};
    req->key_public_key = (sks_view){k->public_key, k->public_key_len};
    if (nk >= 0) {
        req->new_key_handle = new_key_handle;
        req->new_key_id = (sks_view){s->keys[nk]->id, s->keys[nk]->id_len};
    }
    if (issuer_mac_request(s, method_id, req, m, 0) != 0)
        return -1;
    req->mac = (sks_view){m->mac, SKS_MAC_LEN};
    k->post_op = method_id;
    k->new_key = nk;
    return 0;
}

int sks_issuer_prepare_post_delete(sks_issuer_session *s, const char *key_id, sks_view public_key,
                                   uint32_t key_handle, sks_issuer_msg *m, sks_req_post_key *req)
{
    return prepare_post(s, SKS_M_POST_DELETE_KEY, key_id, public_key, key_handle, NULL, 0, m, req);
}

int sks_issuer_prepare_post_unlock(sks_issuer_session *s, const char *key_id, sks_view public_key,
                                   uint32_t key_handle, sks_issuer_msg *m, sks_req_post_key *req)
{
    return prepare_post(s, SKS_M_POST_UNLOCK_KEY, key_id, public_key, key_handle, NULL, 0, m, req);
}

int sks_issuer_prepare_post_update(sks_issuer_session *s, const char *key_id, sks_view public_key,
                                   uint32_t key_handle, const char *new_key_id,
                                   uint32_t new_key_handle, sks_issuer_msg *m,
                                   sks_req_post_key *req)
{
    return prepare_post(s, SKS_M_POST_UPDATE_KEY, key_id, public_key, key_handle, new_key_id,
                        new_key_handle, m, req);
}

void issuer_post_counts(const sks_issuer_session *s, uint16_t *deleted, uint16_t *replaced)
{
    size_t d = 0, r = 0;
    for (size_t i = 0; i < s->nearlier_keys; i++) {
        d += s->earlier_keys[i]->post_op == SKS_M_POST_DELETE_KEY;
        r += s->earlier_keys[i]->post_op == SKS_M_POST_UPDATE_KEY;
    }
    /* Each call takes a counter value, so neither count can pass 65535. */
    *deleted = (uint16_t)(d > 0xFFFF ? 0xFFFF : d);
    *replaced = (uint16_t)(r > 0xFFFF ? 0xFFFF : r);
}

void issuer_post_free(sks_issuer_session *s)
{
    for (size_t i = 0; i < s->nearlier_keys; i++) {
        free(s->earlier_keys[i]->public_key);
        free(s->earlier_keys[i]);
    }
    free(s->earlier_keys);
    s->earlier_keys = NULL;
    s->nearlier_keys = 0;
}
