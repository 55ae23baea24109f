/*
 * test-token-issuer-post.c - post-provisioning on the issuer side through
 * PKCS#11 (include/pkcs11/sks-pkcs11.h, "Post-provisioning on the issuer
 * side"; docs/protocol.md 6.9 and 6.10), against a real card engine.
 *
 * An issuer provisions an Updatable key in a first session; in a second
 * session with the same issuer key and IssuerURI it declares that key
 * (CKM_VENDOR_SKS_DECLARE_KEY) or that session's policies
 * (CKM_VENDOR_SKS_DECLARE_PUK_POLICY / _PIN_POLICY) and prepares
 * postUnlockKey, postDeleteKey or postUpdateKey (CKM_VENDOR_SKS_POST_*);
 * the test relays every call to the card (issuer-prov-relay.h) as the card
 * side of the module would. The card is the judge: it accepts the MACs,
 * applies the operations at the close (the PIN works again, the key is
 * gone, replaced), and refuses another issuer's session. Every scenario
 * runs through both drivers (issuer-prov-driver.h): the issuer side's
 * functions on their own, and the module's issuer token.
 */
#include <check.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "issuer-prov-scenario.h"
#include "test-token-util.h"

/* The first session's key: what the issuer keeps of it, and its card handles. */
typedef struct {
    uint8_t *spki; /* its SubjectPublicKeyInfo, from the verified key attestation */
    size_t spki_len;
    uint32_t handle;     /* the card's key handle (the relay's) */
    uint32_t pin_policy; /* the card's PIN policy handle */
} earlier_key;

static void earlier_key_free(earlier_key *e)
{
    OPENSSL_free(e->spki);
}

/*
 * An Updatable key `id` under the card's PIN policy "PIN" (of this session,
 * or of the first session, declared), with the PIN the user knows; its
 * attestation verified. Returns the verification's result; on success
 * *spki is the key's.
 */
static CK_RV updatable_key(session *s, key_pair *k, const char *id, size_t slot, uint8_t **spki,
                           size_t *spki_len)
{
    key_pair_init(k, id, CK_FALSE);
    k->p.bUpdatable = CK_TRUE;
    make_key_pair(s, k, slot);
    return drv->verify_key(&k->p, spki, spki_len);
}

/* The same, the attestation verified, with its certificate bound: *spki is the key's. */
static void certified_updatable_key(session *s, const char *id, size_t slot, uint8_t **spki,
                                    size_t *spki_len)
{
    key_pair k;
    ck_assert_uint_eq(updatable_key(s, &k, id, slot, spki, spki_len), CKR_OK);
    certify(s, id, *spki, *spki_len, s->r.key[slot]);
}

/*
 * The first session of the issuer holding `issuer_key`: Updatable, PUK
 * and PIN policy, key "Key.1" Updatable under the PIN, its certificate,
 * closed and verified.
 */
static void first_session(session *s, void *issuer_key, earlier_key *e)
{
    uint8_t puk_buf[64];
    s->updatable = 1;
    open_accepted(s, CKS_SESSION_KEY_ECDH_P256, issuer_key);
    make_policies(s, puk_buf, sizeof puk_buf);
    certified_updatable_key(s, "Key.1", 0, &e->spki, &e->spki_len);
    ck_assert_uint_eq(close_session(s, 1, 0), CKR_OK);
    e->handle = s->r.key[0];
    e->pin_policy = s->r.pin;
}

/* A later session on the same card of the issuer holding `issuer_key`. */
static void later_session(session *s, void *issuer_key)
{
    session_next(s);
    open_accepted(s, CKS_SESSION_KEY_ECDH_P256, issuer_key);
}

/* A card and an issuer whose first session is done: the start of every scenario. */
typedef struct {
    session s;
    earlier_key e;
    EVP_PKEY *issuer; /* the issuer's persistent key */
    void *key;        /* ... as the driver names it */
} history;

static void history_begin(history *h)
{
    session_init(&h->s);
    h->issuer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(h->issuer);
    h->key = drv->issuer_key(h->issuer);
    first_session(&h->s, h->key, &h->e);
}

static void history_end(history *h)
{
    EVP_PKEY_free(h->issuer);
    earlier_key_free(&h->e);
    session_free(&h->s);
}

/* The issuer's later session, the first session's key declared in it. */
static void later_session_declared(history *h)
{
    later_session(&h->s, h->key);
    ck_assert_uint_eq(drv->declare_key("Key.1", h->e.spki, h->e.spki_len), CKR_OK);
}

/* Prepare a post call on the issuer side naming `key_id` (and the replacing `new_id`). */
static CK_RV prepare_post(CK_MECHANISM_TYPE mech, CK_SKS_POST_PARAMS *pp, const char *key_id,
                          const char *new_id)
{
    memset(pp, 0, sizeof *pp);
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(pp, sizeof *pp, key_id, new_id);
    return drv->call(mech, &c);
}

/* The card's status of getKeyAttributes: SKS_OK while the key exists, NO_KEY once gone. */
static int key_status(session *s, uint32_t key)
{
    return tl_key_status(s->r.c, key);
}

/* The user blocks the PIN: RetryLimit (3) wrong PINs, then even the right one is refused. */
static void block_pin(session *s)
{
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(verify_pin(s, "9999"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(verify_pin(s, PIN_VALUE), SKS_ERR_PIN_BLOCKED);
}

/* Declare the first session's PUK and PIN policy as make_policies() created them. */
static CK_RV declare_policies(CK_ULONG pin_retry_limit)
{
    /* No PUK value, no encrypted value: the declaration takes the policy's values only. */
    CK_SKS_PUK_POLICY_PARAMS puk = puk_policy_params(NULL, 0);
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&puk, sizeof puk, NULL, NULL);
    CK_RV rv = drv->call(CKM_VENDOR_SKS_DECLARE_PUK_POLICY, &c);
    if (rv != CKR_OK)
        return rv;
    CK_SKS_PIN_POLICY_PARAMS pin = pin_policy_params();
    pin.ulRetryLimit = pin_retry_limit;
    c = call_of(&pin, sizeof pin, "PUK", NULL);
    return drv->call(CKM_VENDOR_SKS_DECLARE_PIN_POLICY, &c);
}

/* ---- the issuer's own keys ------------------------------------------------------ */

/* The user blocked the PIN; the issuer unlocks the key; after the close the PIN works. */
START_TEST(test_post_unlock)
{
    history h;
    history_begin(&h);
    block_pin(&h.s);

    later_session_declared(&h);
    CK_SKS_POST_PARAMS pp;
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_UNLOCK_KEY, &pp, "Key.1", NULL), CKR_OK);
    TL_OK(h.s.r.c, relay_post(&h.s.r, SKS_M_POST_UNLOCK_KEY, &pp, h.e.handle, 0));
    /* Nothing happens before the close. */
    ck_assert_int_eq(verify_pin(&h.s, PIN_VALUE), SKS_ERR_PIN_BLOCKED);
    CK_SKS_CLOSE_PARAMS cl = {.ulGeneratedKeys = 0};
    ck_assert_uint_eq(close_with(&h.s, &cl, 0), CKR_OK);

    TL_OK(h.s.r.c, verify_pin(&h.s, PIN_VALUE));
    EVP_PKEY *pub = spki_key(h.e.spki, h.e.spki_len);
    ck_assert(card_signs(&h.s, h.e.handle, pub));
    EVP_PKEY_free(pub);
    history_end(&h);
}
END_TEST

/* postDeleteKey: the key is gone after the close; its PIN policy stays. */
START_TEST(test_post_delete)
{
    history h;
    history_begin(&h);

    later_session_declared(&h);
    CK_SKS_POST_PARAMS pp;
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_DELETE_KEY, &pp, "Key.1", NULL), CKR_OK);
    TL_OK(h.s.r.c, relay_post(&h.s.r, SKS_M_POST_DELETE_KEY, &pp, h.e.handle, 0));
    TL_OK(h.s.r.c, key_status(&h.s, h.e.handle));
    CK_SKS_CLOSE_PARAMS cl = {.ulDeletedKeys = 1};
    ck_assert_uint_eq(close_with(&h.s, &cl, 0), CKR_OK);

    ck_assert_int_eq(key_status(&h.s, h.e.handle), SKS_ERR_NO_KEY);
    TL_OK(h.s.r.c, verify_pin(&h.s, PIN_VALUE));
    history_end(&h);
}
END_TEST

/*
 * postUpdateKey: a new key of the later session, under the first session's
 * PIN policy (declared) and with the old key's ID, replaces the old key.
 */
START_TEST(test_post_update)
{
    history h;
    history_begin(&h);

    later_session_declared(&h);
    ck_assert_uint_eq(declare_policies(3), CKR_OK);
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    certified_updatable_key(&h.s, "Key.1", 1, &spki, &spki_len);
    CK_SKS_POST_PARAMS pp;
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_UPDATE_KEY, &pp, "Key.1", "Key.1"), CKR_OK);
    TL_OK(h.s.r.c, relay_post(&h.s.r, SKS_M_POST_UPDATE_KEY, &pp, h.e.handle, h.s.r.key[1]));
    CK_SKS_CLOSE_PARAMS cl = {.ulGeneratedKeys = 1, .ulReplacedKeys = 1};
    ck_assert_uint_eq(close_with(&h.s, &cl, 0), CKR_OK);

    ck_assert_int_eq(key_status(&h.s, h.e.handle), SKS_ERR_NO_KEY);
    TL_OK(h.s.r.c, key_status(&h.s, h.s.r.key[1]));
    TL_OK(h.s.r.c, verify_pin(&h.s, PIN_VALUE));
    EVP_PKEY *pub = spki_key(spki, spki_len);
    ck_assert(card_signs(&h.s, h.s.r.key[1], pub));
    EVP_PKEY_free(pub);
    OPENSSL_free(spki);
    history_end(&h);
}
END_TEST

/*
 * A later session adds a key under the first session's PIN policy, declared
 * with the values it was created with: the card takes the issuer's PIN, the
 * key attestation (policy values as created, the PUK and PIN values empty,
 * 6.9) verifies, and the user's PIN opens both keys.
 */
START_TEST(test_declared_policy)
{
    history h;
    history_begin(&h);

    later_session(&h.s, h.key);
    ck_assert_uint_eq(declare_policies(3), CKR_OK);
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    certified_updatable_key(&h.s, "Key.2", 1, &spki, &spki_len);
    ck_assert_uint_eq(close_session(&h.s, 1, 0), CKR_OK);

    TL_OK(h.s.r.c, verify_pin(&h.s, PIN_VALUE));
    EVP_PKEY *pub1 = spki_key(h.e.spki, h.e.spki_len), *pub2 = spki_key(spki, spki_len);
    ck_assert(card_signs(&h.s, h.e.handle, pub1));
    ck_assert(card_signs(&h.s, h.s.r.key[1], pub2));
    EVP_PKEY_free(pub1);
    EVP_PKEY_free(pub2);
    OPENSSL_free(spki);
    history_end(&h);
}
END_TEST

/* A policy declared with other values than the card's: the key attestation does not verify. */
START_TEST(test_declared_policy_mismatch)
{
    history h;
    history_begin(&h);

    later_session(&h.s, h.key);
    ck_assert_uint_eq(declare_policies(5), CKR_OK); /* created with RetryLimit 3 */
    key_pair k;
    uint8_t *spki = NULL;
    size_t spki_len = 0;
    ck_assert_uint_eq(updatable_key(&h.s, &k, "Key.2", 1, &spki, &spki_len),
                      CKR_VENDOR_SKS_ATTESTATION);
    ck_assert_ptr_null(spki);
    ck_assert_uint_eq(issuer_close(1), CKR_VENDOR_SKS_NO_SESSION);
    history_end(&h);
}
END_TEST

/* ---- another issuer ------------------------------------------------------------- */

/*
 * Another issuer (same IssuerURI, its own key) that knows the key's ID and
 * public key prepares a call the issuer side cannot judge; the card refuses
 * it (NOT_ALLOWED) and aborts that session; the key is untouched.
 */
static void other_issuer(CK_MECHANISM_TYPE mech)
{
    session s;
    earlier_key e;
    session_init(&s);
    EVP_PKEY *mine = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *theirs = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    first_session(&s, drv->issuer_key(mine), &e);
    if (mech == CKM_VENDOR_SKS_POST_UNLOCK_KEY)
        block_pin(&s);

    s.updatable = 1;
    later_session(&s, drv->issuer_key(theirs));
    ck_assert_uint_eq(drv->declare_key("Key.1", e.spki, e.spki_len), CKR_OK);
    uint32_t new_handle = 0;
    const char *new_id = NULL;
    if (mech == CKM_VENDOR_SKS_POST_UPDATE_KEY) {
        /* A replacing key without PIN (the first issuer's policy is not theirs). */
        key_pair k;
        key_pair_init(&k, "Key.9", CK_FALSE);
        CK_SKS_ISSUER_CALL_PARAMS c = call_of(&k.p, sizeof k.p, NULL, NULL);
        ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_KEY_PAIR, &c), CKR_OK);
        TL_OK(s.r.c, relay_key_pair(&s.r, &k.p, 0, 2));
        new_handle = s.r.key[2];
        new_id = "Key.9";
    }
    CK_SKS_POST_PARAMS pp;
    ck_assert_uint_eq(prepare_post(mech, &pp, "Key.1", new_id), CKR_OK);
    ck_assert_int_eq(relay_post(&s.r, tt_post_method(mech), &pp, e.handle, new_handle),
                     SKS_ERR_NOT_ALLOWED);
    /* Their session is gone on the card: the close finds no session. */
    CK_SKS_CLOSE_PARAMS cl = {.ulGeneratedKeys = new_id != NULL ? 1 : 0};
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&cl, sizeof cl, NULL, NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_CLOSE, &c), CKR_OK);
    ck_assert_int_eq(relay_close(&s.r, &cl), SKS_ERR_NO_SESSION);

    /* The first issuer's key is untouched: still there, still blocked or usable. */
    TL_OK(s.r.c, key_status(&s, e.handle));
    if (mech == CKM_VENDOR_SKS_POST_UPDATE_KEY)
        ck_assert_int_eq(key_status(&s, new_handle), SKS_ERR_NO_KEY);
    if (mech == CKM_VENDOR_SKS_POST_UNLOCK_KEY) {
        ck_assert_int_eq(verify_pin(&s, PIN_VALUE), SKS_ERR_PIN_BLOCKED);
    } else {
        TL_OK(s.r.c, verify_pin(&s, PIN_VALUE));
        EVP_PKEY *pub = spki_key(e.spki, e.spki_len);
        ck_assert(card_signs(&s, e.handle, pub));
        EVP_PKEY_free(pub);
    }
    EVP_PKEY_free(mine);
    EVP_PKEY_free(theirs);
    earlier_key_free(&e);
    session_free(&s);
}

START_TEST(test_other_issuer)
{
    static const CK_MECHANISM_TYPE mechs[] = {CKM_VENDOR_SKS_POST_DELETE_KEY,
                                              CKM_VENDOR_SKS_POST_UNLOCK_KEY,
                                              CKM_VENDOR_SKS_POST_UPDATE_KEY};
    other_issuer(mechs[_i]);
}
END_TEST

/* ---- refused arguments ------------------------------------------------------------ */

/*
 * What the issuer side can judge is refused before anything is prepared,
 * and the session goes on: after the refusals the card takes every MAC
 * (no counter value was taken) and the close verifies.
 */
START_TEST(test_post_refusals)
{
    history h;
    uint8_t puk_buf[64];
    history_begin(&h);

    /* Before the card's answer is accepted nothing can be declared. */
    session_next(&h.s);
    ck_assert_uint_eq(issuer_request(&h.s, CKS_SESSION_KEY_ECDH_P256, h.key), CKR_OK);
    ck_assert_uint_eq(drv->declare_key("Key.1", h.e.spki, h.e.spki_len),
                      CKR_OPERATION_NOT_INITIALIZED);
    TL_OK(h.s.r.c, card_session(&h.s));
    ck_assert_uint_eq(drv->accept(h.s.anchor, &h.s.cs), CKR_OK);

    CK_SKS_POST_PARAMS pp;
    /* A key that was not declared; then declared twice. */
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_DELETE_KEY, &pp, "Key.1", NULL),
                      CKR_MECHANISM_PARAM_INVALID);
    ck_assert_uint_eq(drv->declare_key("Key.1", h.e.spki, h.e.spki_len), CKR_OK);
    ck_assert_uint_eq(drv->declare_key("Key.1", h.e.spki, h.e.spki_len),
                      CKR_MECHANISM_PARAM_INVALID);
    /* No key named; a value where none is taken; a replacing key not of this session. */
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_DELETE_KEY, &pp, NULL, NULL),
                      CKR_MECHANISM_PARAM_INVALID);
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_DELETE_KEY, &pp, "Key.1", "Key.1"),
                      CKR_MECHANISM_PARAM_INVALID);
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_UPDATE_KEY, &pp, "Key.1", "Key.1"),
                      CKR_MECHANISM_PARAM_INVALID);
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_UPDATE_KEY, &pp, "Key.1", NULL),
                      CKR_MECHANISM_PARAM_INVALID);
    /* pCall of the wrong size. */
    CK_SKS_ISSUER_CALL_PARAMS c = call_of(&pp, sizeof pp - 1, "Key.1", NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_POST_DELETE_KEY, &c), CKR_MECHANISM_PARAM_INVALID);
    /* A declared PIN policy's PUK policy must be declared too, not one of this session. */
    CK_SKS_PUK_POLICY_PARAMS puk = puk_policy_params(puk_buf, sizeof puk_buf);
    puk.pId = (CK_BYTE_PTR) "PUK2";
    puk.ulIdLen = 4;
    c = call_of(&puk, sizeof puk, NULL, PUK_VALUE);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_PUK_POLICY, &c), CKR_OK);
    TL_OK(h.s.r.c, relay_puk(&h.s.r, &puk));
    CK_SKS_PIN_POLICY_PARAMS pin = pin_policy_params();
    c = call_of(&pin, sizeof pin, "PUK2", NULL);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_DECLARE_PIN_POLICY, &c),
                      CKR_MECHANISM_PARAM_INVALID);
    /* ... and a declared policy takes no value. */
    CK_SKS_PUK_POLICY_PARAMS old_puk = puk_policy_params(NULL, 0);
    c = call_of(&old_puk, sizeof old_puk, NULL, PUK_VALUE);
    ck_assert_uint_eq(drv->call(CKM_VENDOR_SKS_DECLARE_PUK_POLICY, &c),
                      CKR_MECHANISM_PARAM_INVALID);

    /* One call per key: the unlock goes, a second call naming the key does not. */
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_UNLOCK_KEY, &pp, "Key.1", NULL), CKR_OK);
    CK_SKS_POST_PARAMS again;
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_DELETE_KEY, &again, "Key.1", NULL),
                      CKR_MECHANISM_PARAM_INVALID);
    TL_OK(h.s.r.c, relay_post(&h.s.r, SKS_M_POST_UNLOCK_KEY, &pp, h.e.handle, 0));
    CK_SKS_CLOSE_PARAMS cl = {.ulGeneratedKeys = 0};
    ck_assert_uint_eq(close_with(&h.s, &cl, 0), CKR_OK);
    TL_OK(h.s.r.c, key_status(&h.s, h.e.handle));
    history_end(&h);
}
END_TEST

/* ---- the module only -------------------------------------------------------------- */

/* DECLARE_KEY's parameter on the issuer token: a public key object, no template. */
START_TEST(test_module_declare_key_params)
{
    history h;
    history_begin(&h);
    later_session(&h.s, h.key);

    CK_OBJECT_HANDLE pub = mod_find_public_key("Key.1", h.e.spki, h.e.spki_len), none;
    CK_SKS_DECLARE_KEY_PARAMS p = {(CK_BYTE_PTR) "Key.1", 5, 12345};
    TT_RV(mod_derive(CKM_VENDOR_SKS_DECLARE_KEY, &p, sizeof p, NULL, 0, &none),
          CKR_KEY_HANDLE_INVALID);
    p.hPublicKey = (CK_OBJECT_HANDLE)(uintptr_t)h.key; /* the issuer's private key */
    TT_RV(mod_derive(CKM_VENDOR_SKS_DECLARE_KEY, &p, sizeof p, NULL, 0, &none),
          CKR_KEY_TYPE_INCONSISTENT);
    p.hPublicKey = pub;
    TT_RV(mod_derive(CKM_VENDOR_SKS_DECLARE_KEY, &p, sizeof p - 1, NULL, 0, &none),
          CKR_MECHANISM_PARAM_INVALID);
    static CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE t = {CKA_TOKEN, &yes, sizeof yes};
    TT_RV(mod_derive(CKM_VENDOR_SKS_DECLARE_KEY, &p, sizeof p, &t, 1, &none),
          CKR_TEMPLATE_INCONSISTENT);
    p.ulIdLen = 0;
    TT_RV(mod_derive(CKM_VENDOR_SKS_DECLARE_KEY, &p, sizeof p, NULL, 0, &none),
          CKR_MECHANISM_PARAM_INVALID);
    p.ulIdLen = 5;
    TT_OK(mod_derive(CKM_VENDOR_SKS_DECLARE_KEY, &p, sizeof p, NULL, 0, &none));
    ck_assert_uint_eq(none, CK_INVALID_HANDLE);
    history_end(&h);
}
END_TEST

/*
 * The issuer as a server keeps its state in the issuer token: its key and
 * the card key's public key (VERIFY_KEY_PAIR with CKA_TOKEN true) are token
 * objects; after a restart of the module it finds both and deletes the key.
 */
START_TEST(test_module_after_restart)
{
    session s;
    uint8_t puk_buf[64];
    session_init(&s);
    EVP_PKEY *issuer = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CK_OBJECT_HANDLE ik = mod_import_token_key(issuer, CKA_DERIVE, "issuer");
    s.updatable = 1;
    open_accepted(&s, CKS_SESSION_KEY_ECDH_P256, (void *)(uintptr_t)ik);
    make_policies(&s, puk_buf, sizeof puk_buf);
    key_pair k;
    key_pair_init(&k, "Key.1", CK_FALSE);
    k.p.bUpdatable = CK_TRUE;
    make_key_pair(&s, &k, 0);
    static CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE keep = {CKA_TOKEN, &yes, sizeof yes};
    CK_OBJECT_HANDLE pub;
    TT_OK(mod_derive(CKM_VENDOR_SKS_VERIFY_KEY_PAIR, &k.p, sizeof k.p, &keep, 1, &pub));
    certify(&s, "Key.1", k.p.pPublicKey, k.p.ulPublicKeyLen, s.r.key[0]);
    ck_assert_uint_eq(close_session(&s, 1, 0), CKR_OK);
    uint32_t card_key = s.r.key[0];

    mod_restart();
    s.anchor = drv->anchor(s.ca); /* the old session's objects went with it */
    /* The server finds its key and the card key's public key again, by ID. */
    static CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE find_ik[] = {{CKA_CLASS, &priv_cls, sizeof priv_cls}, {CKA_ID, "issuer", 6}};
    CK_ATTRIBUTE find_pub[] = {{CKA_CLASS, &pub_cls, sizeof pub_cls}, {CKA_ID, "Key.1", 5}};
    CK_OBJECT_HANDLE found[2];
    ck_assert_uint_eq(tt_find(p11, mod_session, find_ik, 2, found, 2), 1);
    ik = found[0];
    ck_assert_uint_eq(tt_find(p11, mod_session, find_pub, 2, found, 2), 1);
    pub = found[0];

    session_next(&s);
    open_accepted(&s, CKS_SESSION_KEY_ECDH_P256, (void *)(uintptr_t)ik);
    CK_SKS_DECLARE_KEY_PARAMS dp = {(CK_BYTE_PTR) "Key.1", 5, pub};
    CK_OBJECT_HANDLE h;
    TT_OK(mod_derive(CKM_VENDOR_SKS_DECLARE_KEY, &dp, sizeof dp, NULL, 0, &h));
    CK_SKS_POST_PARAMS pp;
    ck_assert_uint_eq(prepare_post(CKM_VENDOR_SKS_POST_DELETE_KEY, &pp, "Key.1", NULL), CKR_OK);
    TL_OK(s.r.c, relay_post(&s.r, SKS_M_POST_DELETE_KEY, &pp, card_key, 0));
    CK_SKS_CLOSE_PARAMS cl = {.ulDeletedKeys = 1};
    ck_assert_uint_eq(close_with(&s, &cl, 0), CKR_OK);
    ck_assert_int_eq(key_status(&s, card_key), SKS_ERR_NO_KEY);

    EVP_PKEY_free(issuer);
    session_free(&s);
}
END_TEST

/* ---- suite ------------------------------------------------------------------------ */

static void add_scenarios(TCase *tc)
{
    tcase_add_test(tc, test_post_unlock);
    tcase_add_test(tc, test_post_delete);
    tcase_add_test(tc, test_post_update);
    tcase_add_test(tc, test_declared_policy);
    tcase_add_test(tc, test_declared_policy_mismatch);
    tcase_add_loop_test(tc, test_other_issuer, 0, 3);
    tcase_add_test(tc, test_post_refusals);
}

int main(void)
{
    TCase *core, *module;
    Suite *s = driver_suite("token-issuer-post", add_scenarios, &core, &module);
    tcase_add_test(module, test_module_declare_key_params);
    tcase_add_test(module, test_module_after_restart);
    return tl_run_suite(s);
}
