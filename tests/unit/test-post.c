/*
 * test-post.c - post-provisioning (docs/protocol.md 6.10) with the card
 * engine and the real issuer library: in a later session, the issuer of a
 * key (same IssuerURI and issuer key) unlocks its PIN, deletes it, or
 * replaces it by a key of the new session; the card applies each operation
 * only when that session closes, and not at all when it fails or is
 * aborted. Another issuer, a key made without Updatable, a wrong MAC, a key
 * named twice: each is refused with the documented status and the session
 * is aborted, the key untouched.
 */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "card/card_internal.h"
#include "protocol/sks_crypto.h"
#include "testlib.h"

#define URI_A   "https://issuer-a.example/sks"
#define PIN_A   "1357"
#define PUK_A   "12345678"
#define RETRIES 3

static sks_view str_view(const char *s)
{
    return (sks_view){(const uint8_t *)s, strlen(s)};
}

static sks_view writer_view(const sks_writer *w)
{
    return (sks_view){w->buf, w->len};
}

static EVP_PKEY *ec_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(k);
    return k;
}

/* Flags of make_key(). */
#define K_PIN       0x01 /* under PIN policy "pin" (PIN_A) */
#define K_UPDATABLE 0x02
#define K_PROTECTED 0x04 /* DeleteProtected */

/* A key made in a session: its card handle and SPKI. */
typedef struct {
    uint32_t handle;
    sks_writer pub;
} made_key;

/*
 * createKeyPair (EC P-256, sign) with its attestation verified, then
 * setCertificatePath (tl_make_key).
 */
static void make_key(tl_card *c, sks_issuer_session *is, const char *id, unsigned flags,
                     uint32_t pin_handle, made_key *k)
{
    sks_issuer_key_spec ks;
    memset(&ks, 0, sizeof ks);
    ks.id = id;
    if (flags & K_PIN) {
        ks.pin_policy_id = "pin";
        ks.pin = str_view(PIN_A);
    }
    ks.updatable = (flags & K_UPDATABLE) != 0;
    ks.delete_protected = (flags & K_PROTECTED) != 0;
    ks.key_usage = SKS_USAGE_SIGN;
    ks.algorithm = SKS_KEYALG_EC_P256;
    sks_writer_init(&k->pub);
    k->handle = tl_make_key(c, is, &ks, (flags & K_PIN) ? pin_handle : 0, &k->pub);
}

/*
 * What issuer A made in its first (Updatable) session: PUK "puk", PIN
 * policy "pin" (PIN_A), and
 *   a1: PIN, Updatable, DeleteProtected;
 *   a2: PIN, not Updatable;
 *   a3: no PIN, Updatable.
 */
typedef struct {
    EVP_PKEY *issuer_key;
    uint32_t session, puk, pin;
    uint32_t key[3];
    sks_writer pub[3];
} issuer_a;

static const char *const a_ids[3] = {"a1", "a2", "a3"};

/* A fresh card on which issuer A has made its keys. */
static tl_card *card_of_issuer_a(issuer_a *a)
{
    static const unsigned flags[3] = {K_PIN | K_UPDATABLE | K_PROTECTED, K_PIN, K_UPDATABLE};
    tl_card *c = tl_card_new();
    memset(a, 0, sizeof *a);
    a->issuer_key = ec_key();
    sks_issuer_session *is = tl_open_session_of(c, URI_A, a->issuer_key, 1);
    a->session = sks_issuer_provisioning_handle(is);
    a->puk = tl_create_puk_policy(c, is, "puk", PUK_A, SKS_PIN_NUMERIC, 5);
    sks_issuer_pin_policy pp;
    tl_pin_policy(&pp, "pin", "puk");
    a->pin = tl_create_pin_policy(c, is, &pp, a->puk);
    for (size_t i = 0; i < 3; i++) {
        made_key k;
        make_key(c, is, a_ids[i], flags[i], a->pin, &k);
        a->key[i] = k.handle;
        a->pub[i] = k.pub;
    }
    TL_OK(c, tl_close_session(c, is));
    sks_issuer_session_free(is);
    return c;
}

static void card_of_issuer_a_free(tl_card *c, issuer_a *a)
{
    for (size_t i = 0; i < 3; i++)
        sks_writer_free(&a->pub[i]);
    EVP_PKEY_free(a->issuer_key);
    tl_card_free(c);
}

/* Every test starts on a fresh card of issuer A (a checked fixture). */
static tl_card *card;
static issuer_a issuer;

static void fixture_setup(void)
{
    card = card_of_issuer_a(&issuer);
}

static void fixture_teardown(void)
{
    card_of_issuer_a_free(card, &issuer);
}

/* A later (Updatable) session of A that knows A's policies (to make keys under them). */
static sks_issuer_session *later_session(tl_card *c, const issuer_a *a)
{
    sks_issuer_session *is = tl_open_session_of(c, URI_A, a->issuer_key, 1);
    sks_issuer_pin_policy pp;
    tl_pin_policy(&pp, "pin", "puk");
    ck_assert(sks_issuer_declare_puk_policy(is, "puk", SKS_PIN_NUMERIC, 5) == 0);
    ck_assert(sks_issuer_declare_pin_policy(is, &pp) == 0);
    return is;
}

/* A post call prepared by the issuer and sent; the card's status. */
static int post(tl_card *c, sks_issuer_session *is, uint8_t method, const char *id, sks_view pub,
                uint32_t handle, const char *new_id, uint32_t new_handle)
{
    sks_issuer_msg m;
    sks_req_post_key req;
    sks_issuer_msg_init(&m);
    int rc = tl_prepare_post(is, method, id, pub, handle, new_id, new_handle, &m, &req);
    ck_assert_msg(rc == 0, "issuer: %s", sks_issuer_error(is));
    int st = tl_call(c, method, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

/* A post call of A's key i. */
static int post_a(tl_card *c, sks_issuer_session *is, uint8_t method, const issuer_a *a, size_t i)
{
    return post(c, is, method, a_ids[i], writer_view(&a->pub[i]), a->key[i], NULL, 0);
}

/* postUpdateKey of A's key i by the new key `k` of the session. */
static int post_update_a(tl_card *c, sks_issuer_session *is, const issuer_a *a, size_t i,
                         const char *new_id, const made_key *k)
{
    return post(c, is, SKS_M_POST_UPDATE_KEY, a_ids[i], writer_view(&a->pub[i]), a->key[i], new_id,
                k->handle);
}

static int sign_with(tl_card *c, uint32_t key)
{
    uint8_t hash[32];
    memset(hash, 0x42, sizeof hash);
    sks_req_sign req = {key, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, {hash, sizeof hash}};
    sks_resp_sign resp;
    return tl_call(c, SKS_M_SIGN_HASHED_DATA, &req, &resp, NULL);
}

/* The session named by `is` is gone (a failed call aborted it). */
static void assert_aborted(tl_card *c, sks_issuer_session *is)
{
    sks_req_abort_session req = {sks_issuer_provisioning_handle(is)};
    ck_assert_int_eq(tl_call(c, SKS_M_ABORT_PROVISIONING_SESSION, &req, NULL, NULL),
                     SKS_ERR_NO_SESSION);
}

/*
 * A call of session `is` answered `status`, which must be the refusal
 * `want`; the card aborted the session. `is` is freed.
 */
static void expect_refused(tl_card *c, sks_issuer_session *is, int status, int want)
{
    ck_assert_msg(status == want, "card said %s (%s), expected %s",
                  sks_status_name((uint8_t)status), c->error, sks_status_name((uint8_t)want));
    assert_aborted(c, is);
    sks_issuer_session_free(is);
}

/* abortProvisioningSession by the issuer; `is` is freed. */
static void abort_session(tl_card *c, sks_issuer_session *is)
{
    sks_req_abort_session req = {sks_issuer_provisioning_handle(is)};
    TL_OK(c, tl_call(c, SKS_M_ABORT_PROVISIONING_SESSION, &req, NULL, NULL));
    sks_issuer_session_free(is);
}

/* tl_close_session, which must succeed; `is` is freed. */
static void close_ok(tl_card *c, sks_issuer_session *is)
{
    TL_OK(c, tl_close_session(c, is));
    sks_issuer_session_free(is);
}

/* How many post-provisioning operations the card keeps for a session. */
static size_t recorded_posts(tl_card *c, uint32_t session)
{
    uint32_t *handles = NULL;
    size_t n = 0;
    ck_assert_int_eq(card_store_session_posts(c->card->store, session, &handles, &n), SKS_OK);
    free(handles);
    return n;
}

/* A PIN policy's TriesLeft as enumeratePINPolicies reports it. */
static int tries_left(tl_card *c, uint32_t policy)
{
    uint8_t none = 0;
    sks_resp_enumerate_pin_policies pols;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_PIN_POLICIES, &none, &pols, NULL));
    sks_reader r;
    sks_reader_init(&r, pols.policies.ptr, pols.policies.len);
    while (r.pos < r.len) {
        sks_pin_policy_info info;
        memset(&info, 0, sizeof info);
        ck_assert_int_eq(sks_fields_read(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq,
                                         SKS_FF_WIRE, &r, &info, NULL),
                         SKS_OK);
        if (info.handle == policy)
            return info.tries_left;
    }
    ck_abort_msg("no PIN policy %u", policy);
    return -1;
}

/* Block A's PIN with RETRIES wrong tries. */
static void block_pin(tl_card *c, const issuer_a *a)
{
    for (int i = 0; i < RETRIES; i++)
        ck_assert_int_eq(tl_verify_pin(c, a->pin, "0000"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(tl_verify_pin(c, a->pin, PIN_A), SKS_ERR_PIN_BLOCKED);
}

/* closeProvisioningSession with explicit counts (Generated, Deleted, Cloned, Replaced, Ext). */
static int close_counts(tl_card *c, sks_issuer_session *is, uint16_t generated, uint16_t deleted,
                        uint16_t replaced)
{
    sks_issuer_msg m;
    sks_req_close_session req;
    sks_issuer_msg_init(&m);
    const uint16_t counts[5] = {generated, deleted, 0, replaced, 0};
    ck_assert(sks_issuer_prepare_close_counts(is, counts, &m, &req) == 0);
    int st = tl_call(c, SKS_M_CLOSE_PROVISIONING_SESSION, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

/* ---- The three operations --------------------------------------------- */

/* postUnlockKey: a blocked PIN works again once the session has closed. */
START_TEST(test_unlock)
{
    block_pin(card, &issuer);
    ck_assert_int_eq(tries_left(card, issuer.pin), 0);

    sks_issuer_session *is = later_session(card, &issuer);
    TL_OK(card, post_a(card, is, SKS_M_POST_UNLOCK_KEY, &issuer, 0));
    /* Nothing happens before the close. */
    ck_assert_int_eq(tl_verify_pin(card, issuer.pin, PIN_A), SKS_ERR_PIN_BLOCKED);
    close_ok(card, is);

    ck_assert_int_eq(tries_left(card, issuer.pin), RETRIES);
    TL_OK(card, tl_verify_pin(card, issuer.pin, PIN_A));
    TL_OK(card, sign_with(card, issuer.key[0]));
}
END_TEST

/* postUnlockKey, then the session is aborted: the PIN stays blocked. */
START_TEST(test_unlock_aborted)
{
    block_pin(card, &issuer);
    sks_issuer_session *is = later_session(card, &issuer);
    TL_OK(card, post_a(card, is, SKS_M_POST_UNLOCK_KEY, &issuer, 0));
    abort_session(card, is);
    ck_assert_int_eq(tries_left(card, issuer.pin), 0);
    ck_assert_int_eq(tl_verify_pin(card, issuer.pin, PIN_A), SKS_ERR_PIN_BLOCKED);
}
END_TEST

/* postDeleteKey: the key (DeleteProtected, no PUK asked) is gone after the close. */
START_TEST(test_delete)
{
    sks_issuer_session *is = later_session(card, &issuer);
    TL_OK(card, post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 0));
    TL_OK(card, tl_key_status(card, issuer.key[0])); /* still there until the close */
    uint32_t session = sks_issuer_provisioning_handle(is);
    ck_assert_uint_eq(recorded_posts(card, session), 1);
    close_ok(card, is);
    ck_assert_uint_eq(recorded_posts(card, session), 0); /* applied, then removed */
    ck_assert_int_eq(tl_key_status(card, issuer.key[0]), SKS_ERR_NO_KEY);
    TL_OK(card, tl_key_status(card, issuer.key[1]));
    TL_OK(card, tl_key_status(card, issuer.key[2]));
    /* The policy stays (other keys use it). */
    TL_OK(card, tl_verify_pin(card, issuer.pin, PIN_A));
    TL_OK(card, sign_with(card, issuer.key[1]));

    /* A key without PIN, by a session that is not Updatable itself. */
    is = tl_open_session_of(card, URI_A, issuer.issuer_key, 0);
    TL_OK(card, post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 2));
    close_ok(card, is);
    ck_assert_int_eq(tl_key_status(card, issuer.key[2]), SKS_ERR_NO_KEY);
}
END_TEST

/* postDeleteKey in a session that is aborted, or whose close fails: the key stays. */
START_TEST(test_delete_not_applied)
{

    sks_issuer_session *is = later_session(card, &issuer);
    TL_OK(card, post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 0));
    uint32_t aborted = sks_issuer_provisioning_handle(is);
    abort_session(card, is);
    TL_OK(card, tl_key_status(card, issuer.key[0]));
    ck_assert_uint_eq(recorded_posts(card, aborted), 0);

    /* DeletedKeys 0 where the session deleted one: SESSION_VERIFY, nothing applied. */
    is = later_session(card, &issuer);
    TL_OK(card, post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 0));
    expect_refused(card, is, close_counts(card, is, 0, 0, 0), SKS_ERR_SESSION_VERIFY);
    TL_OK(card, tl_key_status(card, issuer.key[0]));

    /* A pending operation survives a power cycle and is applied at the close. */
    is = later_session(card, &issuer);
    TL_OK(card, post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 0));
    tl_card_reopen(card);
    TL_OK(card, tl_key_status(card, issuer.key[0]));
    TL_OK(card, close_counts(card, is, 0, 1, 0));
    sks_issuer_session_free(is);
    ck_assert_int_eq(tl_key_status(card, issuer.key[0]), SKS_ERR_NO_KEY);
}
END_TEST

/*
 * postUpdateKey: a new key of this session (with the same ID, under A's PIN
 * policy) replaces a1. After the close a1 is gone and the new key is a
 * complete key with its own handle, ID and public key.
 */
START_TEST(test_update)
{
    sks_issuer_session *is = later_session(card, &issuer);
    made_key nk;
    make_key(card, is, "a1", K_PIN | K_UPDATABLE, issuer.pin, &nk);
    TL_OK(card, post_update_a(card, is, &issuer, 0, "a1", &nk));
    /* The issuer's close counts GeneratedKeys 1 and ReplacedKeys 1. */
    close_ok(card, is);

    ck_assert_int_eq(tl_key_status(card, issuer.key[0]), SKS_ERR_NO_KEY);
    sks_req_key_handle kh = {nk.handle};
    sks_resp_get_key_attributes attrs;
    TL_OK(card, tl_call(card, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attrs, NULL));
    ck_assert(attrs.flags & SKS_KEYFLAG_COMPLETE);
    ck_assert_uint_eq(attrs.id.len, 2);
    ck_assert_mem_eq(attrs.id.ptr, "a1", 2);
    ck_assert_uint_eq(attrs.pin_policy_handle, issuer.pin);
    ck_assert_uint_eq(attrs.public_key.len, nk.pub.len);
    ck_assert_mem_eq(attrs.public_key.ptr, nk.pub.buf, nk.pub.len);
    TL_OK(card, tl_verify_pin(card, issuer.pin, PIN_A));
    TL_OK(card, sign_with(card, nk.handle));

    /* The new key is Updatable: A can replace it in turn. */
    is = later_session(card, &issuer);
    made_key nk2;
    make_key(card, is, "a1", K_PIN, issuer.pin, &nk2);
    TL_OK(card, post(card, is, SKS_M_POST_UPDATE_KEY, "a1", writer_view(&nk.pub), nk.handle, "a1",
                     nk2.handle));
    close_ok(card, is);
    ck_assert_int_eq(tl_key_status(card, nk.handle), SKS_ERR_NO_KEY);
    TL_OK(card, tl_key_status(card, nk2.handle));
    sks_writer_free(&nk.pub);
    sks_writer_free(&nk2.pub);
}
END_TEST

/* The close counts of 6.2 must match the operations: ReplacedKeys, GeneratedKeys. */
START_TEST(test_update_counts)
{
    static const uint16_t wrong[][3] = {{1, 0, 0}, {0, 0, 1}, {1, 1, 0}, {2, 0, 1}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        sks_issuer_session *is = later_session(card, &issuer);
        made_key nk;
        make_key(card, is, "n1", 0, 0, &nk);
        TL_OK(card, post_update_a(card, is, &issuer, 0, "n1", &nk));
        expect_refused(card, is, close_counts(card, is, wrong[i][0], wrong[i][1], wrong[i][2]),
                       SKS_ERR_SESSION_VERIFY);
        ck_assert_int_eq(tl_key_status(card, nk.handle), SKS_ERR_NO_KEY);
        TL_OK(card, tl_key_status(card, issuer.key[0]));
        sks_writer_free(&nk.pub);
    }
}
END_TEST

/* ---- Refusals ---------------------------------------------------------- */

/*
 * Another issuer (another key under A's URI, or A's key under another URI)
 * naming A's key: NOT_ALLOWED, its session aborted, A's key untouched.
 */
START_TEST(test_other_issuer)
{
    static const uint8_t methods[] = {SKS_M_POST_DELETE_KEY, SKS_M_POST_UNLOCK_KEY,
                                      SKS_M_POST_UPDATE_KEY};
    block_pin(card, &issuer);
    EVP_PKEY *other = ec_key();
    for (size_t i = 0; i < 3; i++) {
        for (int variant = 0; variant < 2; variant++) {
            sks_issuer_session *is = variant == 0
                                         ? tl_open_session_of(card, URI_A, other, 1)
                                         : tl_open_session_of(card, "https://issuer-b.example/sks",
                                                              issuer.issuer_key, 1);
            made_key nk;
            nk.handle = 0;
            sks_writer_init(&nk.pub);
            if (methods[i] == SKS_M_POST_UPDATE_KEY)
                make_key(card, is, "b1", 0, 0, &nk);
            int st = post(card, is, methods[i], "a1", writer_view(&issuer.pub[0]), issuer.key[0],
                          "b1", nk.handle);
            ck_assert_ptr_nonnull(strstr(card->error, "another issuer"));
            expect_refused(card, is, st, SKS_ERR_NOT_ALLOWED);
            sks_writer_free(&nk.pub);
        }
    }
    TL_OK(card, tl_key_status(card, issuer.key[0]));
    ck_assert_int_eq(tries_left(card, issuer.pin), 0);
    EVP_PKEY_free(other);
}
END_TEST

/*
 * A key without the Updatable flag (a2 of an Updatable session, or any key
 * of a session that was not Updatable): NOT_ALLOWED, aborted, untouched.
 */
START_TEST(test_not_updatable)
{

    sks_issuer_session *is = later_session(card, &issuer);
    int st = post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 1);
    ck_assert_ptr_nonnull(strstr(card->error, "Updatable"));
    expect_refused(card, is, st, SKS_ERR_NOT_ALLOWED);
    TL_OK(card, tl_key_status(card, issuer.key[1]));

    /* A session created with Updatable 0 cannot make an Updatable key at all. */
    sks_issuer_session *plain = tl_open_session_of(card, URI_A, issuer.issuer_key, 0);
    made_key p1;
    make_key(card, plain, "p1", 0, 0, &p1);
    close_ok(card, plain);
    is = later_session(card, &issuer);
    expect_refused(
        card, is,
        post(card, is, SKS_M_POST_DELETE_KEY, "p1", writer_view(&p1.pub), p1.handle, NULL, 0),
        SKS_ERR_NOT_ALLOWED);
    TL_OK(card, tl_key_status(card, p1.handle));
    sks_writer_free(&p1.pub);
}
END_TEST

/*
 * A wrong MAC, or a MAC over another key ID or public key than the card
 * holds (the issuer names a key it did not make): MAC, aborted, untouched.
 */
START_TEST(test_wrong_mac)
{
    /* The ID of another key, the public key of another key. */
    static const struct {
        const char *id;
        size_t pub;
    } other_key[] = {{"a3", 0}, {"a1", 2}};

    sks_issuer_session *is = later_session(card, &issuer);
    sks_issuer_msg m;
    sks_req_post_key req;
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_post_delete(is, "a1", writer_view(&issuer.pub[0]), issuer.key[0],
                                             &m, &req) == 0);
    m.mac[5] ^= 0x01;
    expect_refused(card, is, tl_call(card, SKS_M_POST_DELETE_KEY, &req, NULL, NULL), SKS_ERR_MAC);

    for (size_t i = 0; i < 2; i++) {
        is = later_session(card, &issuer);
        expect_refused(card, is,
                       post(card, is, SKS_M_POST_DELETE_KEY, other_key[i].id,
                            writer_view(&issuer.pub[other_key[i].pub]), issuer.key[0], NULL, 0),
                       SKS_ERR_MAC);
    }

    /* The right call under another method's name (delete MACed, sent as unlock). */
    is = later_session(card, &issuer);
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_post_delete(is, "a1", writer_view(&issuer.pub[0]), issuer.key[0],
                                             &m, &req) == 0);
    expect_refused(card, is, tl_call(card, SKS_M_POST_UNLOCK_KEY, &req, NULL, NULL), SKS_ERR_MAC);
    sks_issuer_msg_free(&m);

    TL_OK(card, tl_key_status(card, issuer.key[0]));
}
END_TEST

/*
 * Send a prepared message changed by the test under `method`, its MAC
 * recomputed for the changed request with the same counter: what only the
 * issuer could make, but its library would not prepare. The card's status.
 */
static int send_remaced(tl_card *c, sks_issuer_session *is, uint8_t method, sks_req_post_key *req,
                        sks_issuer_msg *m)
{
    tl_remac(is, method, req, m);
    req->mac = (sks_view){m->mac, SKS_MAC_LEN};
    return tl_call(c, method, req, NULL, NULL);
}

/*
 * The card's own rules, with correctly MACed calls the issuer library would
 * not prepare: unknown key, a key of an open session, a key named twice, a
 * new key replacing two keys, a new key of another session, unlocking a key
 * without PIN. Each aborts the session.
 */
START_TEST(test_card_rules)
{
    sks_issuer_msg m;
    sks_req_post_key req;

    /* Unknown key handle: NO_KEY (before the MAC). */
    sks_issuer_session *is = later_session(card, &issuer);
    expect_refused(
        card, is,
        post(card, is, SKS_M_POST_DELETE_KEY, "a1", writer_view(&issuer.pub[0]), 0x7FFFFF, NULL, 0),
        SKS_ERR_NO_KEY);

    /* A key of this (open) session is no target: NO_KEY. */
    is = later_session(card, &issuer);
    made_key own;
    make_key(card, is, "o1", 0, 0, &own);
    expect_refused(
        card, is,
        post(card, is, SKS_M_POST_DELETE_KEY, "o1", writer_view(&own.pub), own.handle, NULL, 0),
        SKS_ERR_NO_KEY);
    sks_writer_free(&own.pub);

    /* A key named twice in one session: NOT_ALLOWED. */
    is = later_session(card, &issuer);
    TL_OK(card, post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 0));
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_post_unlock(is, "a3", writer_view(&issuer.pub[2]), issuer.key[2],
                                             &m, &req) == 0);
    req.key_handle = issuer.key[0];
    req.key_id = str_view("a1");
    req.key_public_key = writer_view(&issuer.pub[0]);
    int st = send_remaced(card, is, SKS_M_POST_UNLOCK_KEY, &req, &m);
    ck_assert_ptr_nonnull(strstr(card->error, "already named"));
    expect_refused(card, is, st, SKS_ERR_NOT_ALLOWED);

    /* One new key replacing two keys: NOT_ALLOWED. */
    is = later_session(card, &issuer);
    made_key nk;
    make_key(card, is, "n1", 0, 0, &nk);
    TL_OK(card, post_update_a(card, is, &issuer, 0, "n1", &nk));
    ck_assert(sks_issuer_prepare_post_delete(is, "a3", writer_view(&issuer.pub[2]), issuer.key[2],
                                             &m, &req) == 0);
    req.new_key_handle = nk.handle;
    req.new_key_id = str_view("n1");
    st = send_remaced(card, is, SKS_M_POST_UPDATE_KEY, &req, &m);
    ck_assert_ptr_nonnull(strstr(card->error, "replaces"));
    expect_refused(card, is, st, SKS_ERR_NOT_ALLOWED);
    sks_writer_free(&nk.pub);

    /* The new key of postUpdateKey must be a key of this session: NO_KEY. */
    is = later_session(card, &issuer);
    ck_assert(sks_issuer_prepare_post_delete(is, "a1", writer_view(&issuer.pub[0]), issuer.key[0],
                                             &m, &req) == 0);
    req.new_key_handle = issuer.key[2];
    req.new_key_id = str_view("a3");
    expect_refused(card, is, send_remaced(card, is, SKS_M_POST_UPDATE_KEY, &req, &m),
                   SKS_ERR_NO_KEY);

    /* postUnlockKey of a key without PIN: NOT_ALLOWED. */
    is = later_session(card, &issuer);
    st = post_a(card, is, SKS_M_POST_UNLOCK_KEY, &issuer, 2);
    ck_assert_ptr_nonnull(strstr(card->error, "no PIN"));
    expect_refused(card, is, st, SKS_ERR_NOT_ALLOWED);
    sks_issuer_msg_free(&m);

    for (size_t i = 0; i < 3; i++)
        TL_OK(card, tl_key_status(card, issuer.key[i]));
}
END_TEST

/*
 * A named key that disappears before the close (the user deletes it, or
 * another session of the issuer deletes it first): the close fails with
 * SESSION_VERIFY and the session is aborted, its new keys with it.
 */
START_TEST(test_target_gone)
{

    sks_issuer_session *is = later_session(card, &issuer);
    TL_OK(card, post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 2));
    sks_req_delete_key del = {issuer.key[2], {NULL, 0}};
    TL_OK(card, tl_call(card, SKS_M_DELETE_KEY, &del, NULL, NULL));
    expect_refused(card, is, tl_close_session(card, is), SKS_ERR_SESSION_VERIFY);

    /* Two sessions name a1; the first to close wins. */
    sks_issuer_session *first = later_session(card, &issuer);
    sks_issuer_session *second = later_session(card, &issuer);
    made_key nk;
    make_key(card, second, "n1", 0, 0, &nk);
    TL_OK(card, post_a(card, first, SKS_M_POST_DELETE_KEY, &issuer, 0));
    TL_OK(card, post_update_a(card, second, &issuer, 0, "n1", &nk));
    close_ok(card, first);
    ck_assert_int_eq(tl_key_status(card, issuer.key[0]), SKS_ERR_NO_KEY);
    expect_refused(card, second, tl_close_session(card, second), SKS_ERR_SESSION_VERIFY);
    ck_assert_int_eq(tl_key_status(card, nk.handle), SKS_ERR_NO_KEY);
    sks_writer_free(&nk.pub);
}
END_TEST

/* ---- The issuer library ------------------------------------------------- */

/* declare / prepare refuse what the card would refuse, before using a counter. */
START_TEST(test_issuer_records)
{
    sks_issuer_session *is = later_session(card, &issuer);
    sks_issuer_msg m;
    sks_req_post_key req;
    sks_issuer_msg_init(&m);

    /* A declared key is taken by ID alone; declaring it twice fails. */
    ck_assert(sks_issuer_declare_key(is, "a1", writer_view(&issuer.pub[0])) == 0);
    ck_assert(sks_issuer_declare_key(is, "a1", writer_view(&issuer.pub[0])) != 0);
    ck_assert(sks_issuer_declare_key(is, "bad", str_view("not a key")) != 0);
    ck_assert(sks_issuer_declare_key(is, "", writer_view(&issuer.pub[0])) != 0);
    ck_assert(sks_issuer_prepare_post_unlock(is, "zz", (sks_view){NULL, 0}, 1, &m, &req) != 0);
    ck_assert(sks_issuer_prepare_post_unlock(is, "a1", (sks_view){NULL, 0}, issuer.key[0], &m,
                                             &req) == 0);
    ck_assert(req.key_public_key.len == issuer.pub[0].len);
    TL_OK(card, tl_call(card, SKS_M_POST_UNLOCK_KEY, &req, NULL, NULL));
    /* Named twice: refused by the issuer. */
    ck_assert(sks_issuer_prepare_post_delete(is, "a1", (sks_view){NULL, 0}, issuer.key[0], &m,
                                             &req) != 0);
    /* Two keys declared with one ID: the public key must say which. */
    ck_assert(sks_issuer_declare_key(is, "a3", writer_view(&issuer.pub[2])) == 0);
    ck_assert(sks_issuer_declare_key(is, "a3", writer_view(&issuer.pub[1])) == 0);
    ck_assert(sks_issuer_prepare_post_delete(is, "a3", (sks_view){NULL, 0}, issuer.key[2], &m,
                                             &req) != 0);
    /* The new key of an update must be a key of this session, replacing one key. */
    ck_assert(sks_issuer_prepare_post_update(is, "a3", writer_view(&issuer.pub[2]), issuer.key[2],
                                             "nokey", 1, &m, &req) != 0);
    /* The refusals took no counter value: the session goes on and closes. */
    TL_OK(card, post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 2));
    close_ok(card, is);
    sks_issuer_msg_free(&m);
    ck_assert_int_eq(tl_key_status(card, issuer.key[2]), SKS_ERR_NO_KEY);
}
END_TEST

/*
 * The MAC of 6.10 computed here by hand with OpenSSL's HMAC, not through
 * src/protocol: key SK | MethodName | Counter (2 bytes), data L(key ID) |
 * L(key public key) [| L(new key ID)]; the handles are not in it.
 */
static void expect_mac(sks_issuer_session *is, const char *method, uint16_t counter,
                       const uint8_t *data, size_t n, const sks_view mac)
{
    uint8_t key[SKS_SK_LEN + 32];
    size_t klen = 0;
    memcpy(key, sks_issuer_session_key(is), SKS_SK_LEN);
    klen += SKS_SK_LEN;
    memcpy(key + klen, method, strlen(method));
    klen += strlen(method);
    key[klen++] = (uint8_t)(counter >> 8);
    key[klen++] = (uint8_t)counter;
    uint8_t out[32];
    size_t outlen = 0;
    ck_assert_ptr_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, data, n, out,
                                    sizeof out, &outlen));
    ck_assert_uint_eq(outlen, 32);
    ck_assert_uint_eq(mac.len, 32);
    ck_assert_mem_eq(mac.ptr, out, 32);
}

/* Append L(v): a 2-byte big-endian length, then v. */
static size_t put_l(uint8_t *p, const void *v, size_t n)
{
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    memcpy(p + 2, v, n);
    return n + 2;
}

START_TEST(test_mac_by_hand)
{
    sks_issuer_session *is = later_session(card, &issuer);
    sks_issuer_msg m;
    sks_req_post_key req;
    uint8_t data[512];
    size_t n = 0;
    sks_issuer_msg_init(&m);

    /* A fresh session: counter 0 for the first call. */
    ck_assert(sks_issuer_prepare_post_unlock(is, "a1", writer_view(&issuer.pub[0]), issuer.key[0],
                                             &m, &req) == 0);
    ck_assert_uint_eq(m.counter, 0);
    n = put_l(data, "a1", 2);
    n += put_l(data + n, issuer.pub[0].buf, issuer.pub[0].len);
    expect_mac(is, "postUnlockKey", 0, data, n, req.mac);
    TL_OK(card, tl_call(card, SKS_M_POST_UNLOCK_KEY, &req, NULL, NULL));

    /* postUpdateKey: a new key (two counter values: its MAC and attestation), then the call. */
    made_key nk;
    make_key(card, is, "new", 0, 0, &nk);
    ck_assert(sks_issuer_prepare_post_update(is, "a3", writer_view(&issuer.pub[2]), issuer.key[2],
                                             "new", nk.handle, &m, &req) == 0);
    ck_assert_uint_eq(m.counter, 4); /* 1, 2 createKeyPair; 3 setCertificatePath */
    n = put_l(data, "a3", 2);
    n += put_l(data + n, issuer.pub[2].buf, issuer.pub[2].len);
    n += put_l(data + n, "new", 3);
    expect_mac(is, "postUpdateKey", 4, data, n, req.mac);
    TL_OK(card, tl_call(card, SKS_M_POST_UPDATE_KEY, &req, NULL, NULL));
    close_ok(card, is);
    sks_issuer_msg_free(&m);
    sks_writer_free(&nk.pub);
    ck_assert_int_eq(tl_key_status(card, issuer.key[2]), SKS_ERR_NO_KEY);
    TL_OK(card, tl_key_status(card, nk.handle));
}
END_TEST

/* A card database of schema version 2 (before post_ops) is upgraded and does post-provisioning. */
START_TEST(test_schema_v2_upgrade)
{
    sks_card_close(card->card);
    card->card = NULL;
    char path[300];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/card.db", card->dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db, "DROP TABLE post_ops; PRAGMA user_version = 2;", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    tl_card_reopen(card);

    sks_issuer_session *is = later_session(card, &issuer);
    TL_OK(card, post_a(card, is, SKS_M_POST_DELETE_KEY, &issuer, 0));
    close_ok(card, is);
    ck_assert_int_eq(tl_key_status(card, issuer.key[0]), SKS_ERR_NO_KEY);
}
END_TEST

static Suite *post_suite(void)
{
    Suite *s = suite_create("post-provisioning");
    TCase *ops = tcase_create("operations");
    tcase_set_timeout(ops, 120);
    tcase_add_checked_fixture(ops, fixture_setup, fixture_teardown);
    tcase_add_test(ops, test_unlock);
    tcase_add_test(ops, test_unlock_aborted);
    tcase_add_test(ops, test_delete);
    tcase_add_test(ops, test_delete_not_applied);
    tcase_add_test(ops, test_update);
    tcase_add_test(ops, test_update_counts);
    tcase_add_test(ops, test_mac_by_hand);
    suite_add_tcase(s, ops);
    TCase *refuse = tcase_create("refusals");
    tcase_set_timeout(refuse, 120);
    tcase_add_checked_fixture(refuse, fixture_setup, fixture_teardown);
    tcase_add_test(refuse, test_other_issuer);
    tcase_add_test(refuse, test_not_updatable);
    tcase_add_test(refuse, test_wrong_mac);
    tcase_add_test(refuse, test_card_rules);
    tcase_add_test(refuse, test_target_gone);
    tcase_add_test(refuse, test_issuer_records);
    tcase_add_test(refuse, test_schema_v2_upgrade);
    suite_add_tcase(s, refuse);
    return s;
}

int main(void)
{
    return tl_run_suite(post_suite());
}
