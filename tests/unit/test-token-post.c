/*
 * test-token-post.c - post-provisioning through the module's vendor
 * mechanisms (CKM_VENDOR_SKS_POST_DELETE_KEY / _UNLOCK_KEY / _UPDATE_KEY,
 * docs/protocol.md 6.10) on the embedded card. Issuer A's first, Updatable
 * session is made on the card with testlib before the module starts; every
 * later session goes through the module (C_GenerateKey(CKM_VENDOR_SKS_SESSION),
 * C_DeriveKey) with the issuer library in this process preparing the calls
 * (test-token-prov-util.h). The named keys live on other tokens than the
 * one the provisioning session runs on.
 */
#include <check.h>
#include <string.h>

#include "test-token-prov-util.h"

#define URI_A  "https://issuer-a.example/sks"
#define PIN_A  "1357"
#define PUK_A  "12345678"
#define NO_PIN "SKS (no PIN)"
#define POLICY "apin"

/* Issuer A: its long-lived key and what its first session made. */
typedef struct {
    EVP_PKEY *issuer_key;
    sks_writer pub[3]; /* SPKI of a1 (PIN, Updatable), a2 (no PIN, Updatable), a3 (PIN) */
} issuer_a;

static const char *const a_ids[3] = {"a1", "a2", "a3"};

static sks_view str_view(const char *s)
{
    return (sks_view){(const uint8_t *)s, strlen(s)};
}

static sks_view pub_of(const issuer_a *a, size_t i)
{
    return (sks_view){a->pub[i].buf, a->pub[i].len};
}

/* createKeyPair + setCertificatePath on the card, directly (no module). */
static void card_key(tl_card *c, sks_issuer_session *is, const char *id, uint32_t pin,
                     uint8_t updatable, sks_writer *pub)
{
    sks_issuer_key_spec ks;
    memset(&ks, 0, sizeof(ks));
    ks.id = id;
    if (pin != 0) {
        ks.pin_policy_id = POLICY;
        ks.pin = str_view(PIN_A);
    }
    ks.updatable = updatable;
    ks.key_usage = SKS_USAGE_SIGN;
    ks.algorithm = SKS_KEYALG_EC_P256;
    sks_issuer_msg m;
    sks_req_create_key_pair req;
    sks_resp_create_key_pair resp;
    sks_writer ans, der;
    sks_writer_init(&ans);
    sks_writer_init(&der);
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_key_pair(is, &ks, pin, &m, &req) == 0);
    int st = tl_call(c, SKS_M_CREATE_KEY_PAIR, &req, &resp, &ans);
    TL_OK(c, st);
    ck_assert(sks_issuer_verify_key_attestation(is, &m, &resp) == 0);
    sks_put_raw(pub, resp.public_key.ptr, resp.public_key.len);
    tl_issue_cert_der(resp.public_key, &der);
    sks_view path[1] = {{der.buf, der.len}};
    sks_req_set_certificate_path cp;
    ck_assert(sks_issuer_prepare_certificate_path(is, id, resp.key_handle, path, 1, &m, &cp) == 0);
    st = tl_call(c, SKS_M_SET_CERTIFICATE_PATH, &cp, NULL, NULL);
    TL_OK(c, st);
    sks_writer_free(&ans);
    sks_writer_free(&der);
}

/*
 * A's first session, on the card before the module starts: PUK, PIN
 * policy POLICY (a token of that label), a1 under it (Updatable), a2
 * without PIN (Updatable: the no-PIN token), a3 under it (not Updatable).
 */
static void issuer_a_make(tt_env *e, issuer_a *a)
{
    tl_card *c = e->card;
    a->issuer_key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(a->issuer_key);
    sks_issuer_session *is = sks_issuer_session_new(SKS_SKALG_ECDH_P256, URI_A, a->issuer_key);
    sks_req_create_session sreq;
    sks_resp_create_session sresp;
    ck_assert(sks_issuer_request(is, 1, 0, 3600, &sreq) == 0);
    int st = tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &sreq, &sresp, NULL);
    TL_OK(c, st);
    ck_assert(sks_issuer_accept(is, c->trusted, &sresp) == 0);

    sks_issuer_msg m;
    sks_req_create_puk_policy puk_req;
    sks_resp_create_puk_policy puk_resp;
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_puk_policy(is, "puk", str_view(PUK_A), SKS_PIN_NUMERIC, 5, &m,
                                            &puk_req) == 0);
    st = tl_call(c, SKS_M_CREATE_PUK_POLICY, &puk_req, &puk_resp, NULL);
    TL_OK(c, st);
    sks_issuer_pin_policy pp;
    memset(&pp, 0, sizeof(pp));
    pp.id = POLICY;
    pp.puk_id = "puk";
    pp.format = SKS_PIN_NUMERIC;
    pp.retry_limit = 3;
    pp.grouping = SKS_GROUPING_SHARED;
    pp.min_length = 4;
    pp.max_length = 8;
    pp.caching_support = 1;
    sks_req_create_pin_policy pin_req;
    sks_resp_create_pin_policy pin_resp;
    ck_assert(sks_issuer_prepare_pin_policy(is, &pp, puk_resp.puk_policy_handle, &m, &pin_req) ==
              0);
    st = tl_call(c, SKS_M_CREATE_PIN_POLICY, &pin_req, &pin_resp, NULL);
    TL_OK(c, st);
    sks_issuer_msg_free(&m);
    uint32_t pin = pin_resp.pin_policy_handle;
    const uint32_t pins[3] = {pin, 0, pin};
    const uint8_t updatable[3] = {1, 1, 0};
    for (size_t i = 0; i < 3; i++) {
        sks_writer_init(&a->pub[i]);
        card_key(c, is, a_ids[i], pins[i], updatable[i], &a->pub[i]);
    }
    st = tl_close_session(c, is);
    TL_OK(c, st);
    sks_issuer_session_free(is);
}

static void issuer_a_free(issuer_a *a)
{
    for (size_t i = 0; i < 3; i++)
        sks_writer_free(&a->pub[i]);
    EVP_PKEY_free(a->issuer_key);
}

/*
 * A provisioning session through the module (on session `s`) of the
 * issuer holding `key` under `uri`: tp_request's request, remade for that
 * issuer and Updatable.
 */
static void open_as(tp_relay *r, CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, X509_STORE *trusted,
                    EVP_PKEY *key, const char *uri)
{
    tp_request(r, f, s, SKS_SKALG_ECDH_P256, 0, 0);
    sks_issuer_session_free(r->is);
    r->is = sks_issuer_session_new(SKS_SKALG_ECDH_P256, uri, key);
    ck_assert_ptr_nonnull(r->is);
    sks_req_create_session req;
    ck_assert(sks_issuer_request(r->is, 1, 0, 3600, &req) == 0);
    ck_assert_uint_le(req.issuer_uri.len, sizeof(r->uri));
    ck_assert_uint_le(req.issuer_public_key.len, sizeof(r->issuer_key));
    memcpy(r->uri, req.issuer_uri.ptr, req.issuer_uri.len);
    memcpy(r->issuer_key, req.issuer_public_key.ptr, req.issuer_public_key.len);
    memcpy(r->sp.serverSessionId, req.server_session_id.ptr, sizeof(r->sp.serverSessionId));
    r->sp.ulIssuerUriLen = req.issuer_uri.len;
    r->sp.ulIssuerPublicKeyLen = req.issuer_public_key.len;
    r->sp.bUpdatable = req.updatable;
    tp_open_sent(r, trusted);
}

/*
 * C_DeriveKey of a post mechanism as the issuer prepared it for key `id`
 * (its SPKI `pub`), naming it by hKey (and hNewKey, the new key `new_id`).
 * `tamper` flips a bit of the MAC.
 */
static CK_RV post(tp_relay *r, CK_MECHANISM_TYPE mech, const char *id, sks_view pub,
                  CK_OBJECT_HANDLE hKey, const char *new_id, CK_OBJECT_HANDLE hNewKey, int tamper)
{
    sks_issuer_msg m;
    sks_req_post_key req;
    int rc;
    sks_issuer_msg_init(&m);
    /* Card handles are wire-only: the module puts them in from hKey and hNewKey. */
    if (mech == CKM_VENDOR_SKS_POST_DELETE_KEY)
        rc = sks_issuer_prepare_post_delete(r->is, id, pub, 0, &m, &req);
    else if (mech == CKM_VENDOR_SKS_POST_UNLOCK_KEY)
        rc = sks_issuer_prepare_post_unlock(r->is, id, pub, 0, &m, &req);
    else
        rc = sks_issuer_prepare_post_update(r->is, id, pub, 0, new_id, 0, &m, &req);
    ck_assert_msg(rc == 0, "issuer: %s", sks_issuer_error(r->is));
    CK_SKS_POST_PARAMS p;
    memset(&p, 0, sizeof(p));
    p.hKey = hKey;
    p.hNewKey = hNewKey;
    memcpy(p.mac, req.mac.ptr, sizeof(p.mac));
    if (tamper)
        p.mac[0] ^= 0x80;
    CK_MECHANISM mech_ = {mech, &p, sizeof(p)};
    CK_OBJECT_HANDLE out = 1;
    CK_RV rv = r->f->C_DeriveKey(r->s, &mech_, r->prov, NULL, 0, &out);
    if (rv == CKR_OK)
        ck_assert_uint_eq(out, CK_INVALID_HANDLE);
    sks_issuer_msg_free(&m);
    return rv;
}

/* closeProvisioningSession through the module, its attestation verified. */
static CK_RV close_session(tp_relay *r)
{
    tp_call c;
    tp_close(r, &c);
    CK_RV rv = tp_send(r, &c, NULL);
    if (rv == CKR_OK)
        tp_verify_close(r, &c);
    tp_call_free(&c);
    return rv;
}

/* Objects of a class with this CKA_ID on a session's token (at most 4 kept). */
static CK_ULONG count_of(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                         const char *id, CK_OBJECT_HANDLE *first)
{
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, (void *)id, strlen(id)}};
    CK_OBJECT_HANDLE h[4] = {CK_INVALID_HANDLE};
    CK_ULONG n = tt_find(f, s, t, 2, h, 4);
    if (first != NULL)
        *first = h[0];
    return n;
}

static CK_OBJECT_HANDLE find_one(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                                 const char *id)
{
    CK_OBJECT_HANDLE h;
    ck_assert_uint_eq(count_of(f, s, cls, id, &h), 1);
    return h;
}

/* Everything a test starts with: A's keys, the module, a session on the free slot. */
typedef struct {
    tt_env e;
    issuer_a a;
    CK_FUNCTION_LIST *f;
    CK_SESSION_HANDLE prov_s; /* R/W session the provisioning goes through (free slot) */
    CK_SESSION_HANDLE pin_s;  /* session on POLICY's token */
    CK_SESSION_HANDLE nopin_s;
} fixture;

static void fx_setup(fixture *x)
{
    memset(x, 0, sizeof(*x));
    tt_env_with_card(&x->e, NULL);
    issuer_a_make(&x->e, &x->a);
    x->f = tt_init();
    x->prov_s = tt_open(x->f, tt_free_slot(x->f));
    x->pin_s = tt_open(x->f, tt_slot_by_label(x->f, POLICY));
    x->nopin_s = tt_open(x->f, tt_slot_by_label(x->f, NO_PIN));
}

static void fx_teardown(fixture *x)
{
    TT_OK(x->f->C_Finalize(NULL));
    issuer_a_free(&x->a);
    tt_env_free(&x->e);
}

static void block_pin(fixture *x)
{
    for (int i = 0; i < 3; i++)
        TT_RV(x->f->C_Login(x->pin_s, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4), CKR_PIN_INCORRECT);
    TT_RV(x->f->C_Login(x->pin_s, CKU_USER, (CK_UTF8CHAR_PTR)PIN_A, strlen(PIN_A)), CKR_PIN_LOCKED);
}

/*
 * postUnlockKey of a1, named by its public key object (the token cannot be
 * logged into): the PIN stays locked until the close, then works again.
 */
START_TEST(t_unlock)
{
    fixture x;
    fx_setup(&x);
    block_pin(&x);
    CK_OBJECT_HANDLE pub = find_one(x.f, x.pin_s, CKO_PUBLIC_KEY, "a1");

    tp_relay r;
    open_as(&r, x.f, x.prov_s, x.e.card->trusted, x.a.issuer_key, URI_A);
    TT_OK(post(&r, CKM_VENDOR_SKS_POST_UNLOCK_KEY, "a1", pub_of(&x.a, 0), pub, NULL,
               CK_INVALID_HANDLE, 0));
    TT_RV(x.f->C_Login(x.pin_s, CKU_USER, (CK_UTF8CHAR_PTR)PIN_A, strlen(PIN_A)), CKR_PIN_LOCKED);
    TT_OK(close_session(&r));
    tp_free(&r);

    TT_OK(x.f->C_Login(x.pin_s, CKU_USER, (CK_UTF8CHAR_PTR)PIN_A, strlen(PIN_A)));
    tp_sign_and_verify(x.f, x.pin_s, find_one(x.f, x.pin_s, CKO_PRIVATE_KEY, "a1"),
                       find_one(x.f, x.pin_s, CKO_CERTIFICATE, "a1"));
    fx_teardown(&x);
}
END_TEST

/*
 * postDeleteKey of a2 (the no-PIN token): nothing when the provisioning
 * object is destroyed (abort); gone from its token once a session closes.
 */
START_TEST(t_delete)
{
    fixture x;
    fx_setup(&x);
    CK_OBJECT_HANDLE a2 = find_one(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2");

    tp_relay r;
    open_as(&r, x.f, x.prov_s, x.e.card->trusted, x.a.issuer_key, URI_A);
    TT_OK(post(&r, CKM_VENDOR_SKS_POST_DELETE_KEY, "a2", pub_of(&x.a, 1), a2, NULL,
               CK_INVALID_HANDLE, 0));
    TT_OK(x.f->C_DestroyObject(x.prov_s, r.prov));
    tp_free(&r);
    ck_assert_uint_eq(count_of(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2", NULL), 1);

    open_as(&r, x.f, x.prov_s, x.e.card->trusted, x.a.issuer_key, URI_A);
    TT_OK(post(&r, CKM_VENDOR_SKS_POST_DELETE_KEY, "a2", pub_of(&x.a, 1), a2, NULL,
               CK_INVALID_HANDLE, 0));
    ck_assert_uint_eq(count_of(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2", NULL), 1);
    CK_ULONG slots = tp_slot_count(x.f);
    TT_OK(close_session(&r));
    tp_free(&r);
    /* a2 was the only key without PIN: its token is gone, and its sessions with it. */
    ck_assert_uint_eq(tp_slot_count(x.f), slots - 1);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    TT_RV(x.f->C_FindObjectsInit(x.nopin_s, &t, 1), CKR_SESSION_HANDLE_INVALID);
    /* A's other keys stay. */
    TT_OK(x.f->C_Login(x.pin_s, CKU_USER, (CK_UTF8CHAR_PTR)PIN_A, strlen(PIN_A)));
    ck_assert_uint_eq(count_of(x.f, x.pin_s, CKO_PRIVATE_KEY, "a1", NULL), 1);
    ck_assert_uint_eq(count_of(x.f, x.pin_s, CKO_PRIVATE_KEY, "a3", NULL), 1);
    fx_teardown(&x);
}
END_TEST

/*
 * postUpdateKey: a new key "a1" made in the session (without PIN, so on
 * the no-PIN token) replaces A's a1. After the close the old key is gone
 * from POLICY's token and the new one signs.
 */
START_TEST(t_update)
{
    fixture x;
    fx_setup(&x);
    TT_OK(x.f->C_Login(x.pin_s, CKU_USER, (CK_UTF8CHAR_PTR)PIN_A, strlen(PIN_A)));
    CK_OBJECT_HANDLE old = find_one(x.f, x.pin_s, CKO_PRIVATE_KEY, "a1");

    tp_relay r;
    open_as(&r, x.f, x.prov_s, x.e.card->trusted, x.a.issuer_key, URI_A);
    tp_call key, cert;
    CK_OBJECT_HANDLE hnew, hcert;
    tp_key_spec ks = {.id = "a1"};
    tp_key(&r, &key, &ks);
    TT_OK(tp_send(&r, &key, &hnew));
    tp_verify_key(&r, &key);
    tp_cert(&r, &cert, "a1", hnew, (sks_view){key.public_key, key.p.kp.ulPublicKeyLen});
    TT_OK(tp_send(&r, &cert, &hcert));
    TT_OK(post(&r, CKM_VENDOR_SKS_POST_UPDATE_KEY, "a1", pub_of(&x.a, 0), old, "a1", hnew, 0));
    TT_OK(close_session(&r));
    tp_free(&r);

    ck_assert_uint_eq(count_of(x.f, x.pin_s, CKO_PRIVATE_KEY, "a1", NULL), 0);
    ck_assert_uint_eq(count_of(x.f, x.pin_s, CKO_PRIVATE_KEY, "a3", NULL), 1);
    ck_assert_uint_eq(find_one(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a1"), hnew);
    tp_sign_and_verify(x.f, x.nopin_s, hnew, hcert);
    tp_call_free(&key);
    tp_call_free(&cert);
    fx_teardown(&x);
}
END_TEST

/*
 * Another issuer (another key under A's URI) naming A's key:
 * CKR_VENDOR_SKS_LIMIT (NOT_ALLOWED), the card session is gone, the key
 * stays. So it does for a key made without Updatable (a3), and a wrong
 * MAC answers CKR_VENDOR_SKS_MAC.
 */
START_TEST(t_refused)
{
    fixture x;
    fx_setup(&x);
    EVP_PKEY *other = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(other);
    CK_OBJECT_HANDLE a2 = find_one(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2");
    CK_OBJECT_HANDLE a3 = find_one(x.f, x.pin_s, CKO_PUBLIC_KEY, "a3");

    tp_relay r;
    open_as(&r, x.f, x.prov_s, x.e.card->trusted, other, URI_A);
    TT_RV(post(&r, CKM_VENDOR_SKS_POST_DELETE_KEY, "a2", pub_of(&x.a, 1), a2, NULL,
               CK_INVALID_HANDLE, 0),
          CKR_VENDOR_SKS_LIMIT);
    TT_RV(close_session(&r), CKR_VENDOR_SKS_NO_SESSION);
    tp_free(&r);

    open_as(&r, x.f, x.prov_s, x.e.card->trusted, x.a.issuer_key, URI_A);
    TT_RV(post(&r, CKM_VENDOR_SKS_POST_DELETE_KEY, "a3", pub_of(&x.a, 2), a3, NULL,
               CK_INVALID_HANDLE, 0),
          CKR_VENDOR_SKS_LIMIT);
    TT_RV(close_session(&r), CKR_VENDOR_SKS_NO_SESSION);
    tp_free(&r);

    open_as(&r, x.f, x.prov_s, x.e.card->trusted, x.a.issuer_key, URI_A);
    TT_RV(post(&r, CKM_VENDOR_SKS_POST_DELETE_KEY, "a2", pub_of(&x.a, 1), a2, NULL,
               CK_INVALID_HANDLE, 1),
          CKR_VENDOR_SKS_MAC);
    TT_RV(close_session(&r), CKR_VENDOR_SKS_NO_SESSION);
    tp_free(&r);

    ck_assert_uint_eq(count_of(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2", NULL), 1);
    ck_assert_uint_eq(count_of(x.f, x.pin_s, CKO_PUBLIC_KEY, "a3", NULL), 1);
    EVP_PKEY_free(other);
    fx_teardown(&x);
}
END_TEST

/*
 * The module's own checks of CK_SKS_POST_PARAMS, before anything reaches
 * the card: each is CKR_MECHANISM_PARAM_INVALID and aborts the card
 * session (every in-session call does); a read-only session is refused
 * before the provisioning object is looked at.
 */
START_TEST(t_params)
{
    fixture x;
    fx_setup(&x);
    CK_OBJECT_HANDLE a2 = find_one(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2");
    CK_OBJECT_HANDLE a2_cert = find_one(x.f, x.nopin_s, CKO_CERTIFICATE, "a2");
    tp_relay r;
    CK_SKS_POST_PARAMS p;
    CK_OBJECT_HANDLE out;

    /* No parameter, a short one, a certificate as hKey, hNewKey for a delete. */
    for (int i = 0; i < 4; i++) {
        open_as(&r, x.f, x.prov_s, x.e.card->trusted, x.a.issuer_key, URI_A);
        memset(&p, 0, sizeof(p));
        p.hKey = i == 2 ? a2_cert : a2;
        p.hNewKey = i == 3 ? a2 : CK_INVALID_HANDLE;
        CK_MECHANISM m = {CKM_VENDOR_SKS_POST_DELETE_KEY, i == 0 ? NULL : &p,
                          i == 1   ? sizeof(p) - 1
                          : i == 0 ? 0
                                   : sizeof(p)};
        TT_RV(x.f->C_DeriveKey(r.s, &m, r.prov, NULL, 0, &out), CKR_MECHANISM_PARAM_INVALID);
        TT_RV(close_session(&r), CKR_VENDOR_SKS_NO_SESSION);
        tp_free(&r);
    }

    /* postUpdateKey without hNewKey. */
    open_as(&r, x.f, x.prov_s, x.e.card->trusted, x.a.issuer_key, URI_A);
    memset(&p, 0, sizeof(p));
    p.hKey = a2;
    CK_MECHANISM um = {CKM_VENDOR_SKS_POST_UPDATE_KEY, &p, sizeof(p)};
    TT_RV(x.f->C_DeriveKey(r.s, &um, r.prov, NULL, 0, &out), CKR_MECHANISM_PARAM_INVALID);
    TT_RV(close_session(&r), CKR_VENDOR_SKS_NO_SESSION);
    tp_free(&r);

    /* A read-only session. */
    open_as(&r, x.f, x.prov_s, x.e.card->trusted, x.a.issuer_key, URI_A);
    CK_SESSION_HANDLE ro;
    TT_OK(x.f->C_OpenSession(tt_free_slot(x.f), CKF_SERIAL_SESSION, NULL, NULL, &ro));
    memset(&p, 0, sizeof(p));
    p.hKey = a2;
    CK_MECHANISM m = {CKM_VENDOR_SKS_POST_DELETE_KEY, &p, sizeof(p)};
    TT_RV(x.f->C_DeriveKey(ro, &m, r.prov, NULL, 0, &out), CKR_SESSION_READ_ONLY);
    /* A template naming a class: the call returns no object. */
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    TT_RV(x.f->C_DeriveKey(r.s, &m, r.prov, &t, 1, &out), CKR_TEMPLATE_INCONSISTENT);
    tp_free(&r);

    ck_assert_uint_eq(count_of(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2", NULL), 1);
    fx_teardown(&x);
}
END_TEST

static Suite *post_suite(void)
{
    Suite *s = suite_create("token-post");
    TCase *tc = tcase_create("post-provisioning");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_unlock);
    tcase_add_test(tc, t_delete);
    tcase_add_test(tc, t_update);
    tcase_add_test(tc, t_refused);
    tcase_add_test(tc, t_params);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(post_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
