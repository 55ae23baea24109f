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

static sks_view pub_of(const issuer_a *a, size_t i)
{
    return (sks_view){a->pub[i].buf, a->pub[i].len};
}

/*
 * A's first session, on the card before the module starts: PUK, PIN
 * policy POLICY (a token of that label), a1 under it (Updatable), a2
 * without PIN (Updatable: the no-PIN token), a3 under it (not Updatable).
 */
static void issuer_a_make(tt_env *e, issuer_a *a)
{
    static const uint8_t with_pin[3] = {1, 0, 1}, updatable[3] = {1, 1, 0};
    tl_card *c = e->card;
    a->issuer_key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(a->issuer_key);
    sks_issuer_session *is = tl_open_session_of(c, URI_A, a->issuer_key, 1);
    uint32_t puk = tl_create_puk_policy(c, is, "puk", PUK_A, SKS_PIN_NUMERIC, 5);
    sks_issuer_pin_policy pp;
    tl_pin_policy(&pp, POLICY, "puk");
    uint32_t pin = tl_create_pin_policy(c, is, &pp, puk);
    for (size_t i = 0; i < 3; i++) {
        sks_issuer_key_spec ks;
        memset(&ks, 0, sizeof(ks));
        ks.id = a_ids[i];
        if (with_pin[i]) {
            ks.pin_policy_id = POLICY;
            ks.pin = (sks_view){(const uint8_t *)PIN_A, strlen(PIN_A)};
        }
        ks.updatable = updatable[i];
        ks.key_usage = SKS_USAGE_SIGN;
        ks.algorithm = SKS_KEYALG_EC_P256;
        sks_writer_init(&a->pub[i]);
        tl_make_key(c, is, &ks, with_pin[i] ? pin : 0, &a->pub[i]);
    }
    TL_OK(c, tl_close_session(c, is));
    sks_issuer_session_free(is);
}

static void issuer_a_free(issuer_a *a)
{
    for (size_t i = 0; i < 3; i++)
        sks_writer_free(&a->pub[i]);
    EVP_PKEY_free(a->issuer_key);
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
    sks_issuer_msg_init(&m);
    /* Card handles are wire-only: the module puts them in from hKey and hNewKey. */
    int rc = tl_prepare_post(r->is, tt_post_method(mech), id, pub, 0, new_id, 0, &m, &req);
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
    x->pin_s = tt_user_session(x->f, POLICY, NULL);
    x->nopin_s = tt_user_session(x->f, NO_PIN, NULL);
}

static void fx_teardown(fixture *x)
{
    TT_OK(x->f->C_Finalize(NULL));
    issuer_a_free(&x->a);
    tt_env_free(&x->e);
}

/* An Updatable session through the module of the issuer holding `key`, under A's URI. */
static void open_of(fixture *x, tp_relay *r, EVP_PKEY *key)
{
    tp_open_as(r, x->f, x->prov_s, x->e.card->trusted, key, URI_A, 1);
}

/* The session is gone on the card: its close answers NO_SESSION. `r` is freed. */
static void expect_gone(tp_relay *r)
{
    TT_RV(tp_close_session(r), CKR_VENDOR_SKS_NO_SESSION);
    tp_free(r);
}

/* The user logs in to POLICY's token with A's PIN: the module's answer. */
static CK_RV login_a(fixture *x)
{
    return x->f->C_Login(x->pin_s, CKU_USER, (CK_UTF8CHAR_PTR)PIN_A, strlen(PIN_A));
}

static void block_pin(fixture *x)
{
    for (int i = 0; i < 3; i++)
        TT_RV(x->f->C_Login(x->pin_s, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4), CKR_PIN_INCORRECT);
    TT_RV(login_a(x), CKR_PIN_LOCKED);
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
    CK_OBJECT_HANDLE pub = tt_find_id(x.f, x.pin_s, CKO_PUBLIC_KEY, "a1");

    tp_relay r;
    open_of(&x, &r, x.a.issuer_key);
    TT_OK(post(&r, CKM_VENDOR_SKS_POST_UNLOCK_KEY, "a1", pub_of(&x.a, 0), pub, NULL,
               CK_INVALID_HANDLE, 0));
    TT_RV(login_a(&x), CKR_PIN_LOCKED);
    TT_OK(tp_close_session(&r));
    tp_free(&r);

    TT_OK(login_a(&x));
    tp_sign_and_verify(x.f, x.pin_s, tt_find_id(x.f, x.pin_s, CKO_PRIVATE_KEY, "a1"),
                       tt_find_id(x.f, x.pin_s, CKO_CERTIFICATE, "a1"));
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
    CK_OBJECT_HANDLE a2 = tt_find_id(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2");

    tp_relay r;
    open_of(&x, &r, x.a.issuer_key);
    TT_OK(post(&r, CKM_VENDOR_SKS_POST_DELETE_KEY, "a2", pub_of(&x.a, 1), a2, NULL,
               CK_INVALID_HANDLE, 0));
    TT_OK(x.f->C_DestroyObject(x.prov_s, r.prov));
    tp_free(&r);
    ck_assert_uint_eq(tt_count_id(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2", NULL), 1);

    open_of(&x, &r, x.a.issuer_key);
    TT_OK(post(&r, CKM_VENDOR_SKS_POST_DELETE_KEY, "a2", pub_of(&x.a, 1), a2, NULL,
               CK_INVALID_HANDLE, 0));
    ck_assert_uint_eq(tt_count_id(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2", NULL), 1);
    CK_ULONG slots = tp_slot_count(x.f);
    TT_OK(tp_close_session(&r));
    tp_free(&r);
    /* a2 was the only key without PIN: its token is gone, and its sessions with it. */
    ck_assert_uint_eq(tp_slot_count(x.f), slots - 1);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof(cls)};
    TT_RV(x.f->C_FindObjectsInit(x.nopin_s, &t, 1), CKR_SESSION_HANDLE_INVALID);
    /* A's other keys stay. */
    TT_OK(login_a(&x));
    ck_assert_uint_eq(tt_count_id(x.f, x.pin_s, CKO_PRIVATE_KEY, "a1", NULL), 1);
    ck_assert_uint_eq(tt_count_id(x.f, x.pin_s, CKO_PRIVATE_KEY, "a3", NULL), 1);
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
    TT_OK(login_a(&x));
    CK_OBJECT_HANDLE old = tt_find_id(x.f, x.pin_s, CKO_PRIVATE_KEY, "a1");

    tp_relay r;
    open_of(&x, &r, x.a.issuer_key);
    tp_call key, cert;
    CK_OBJECT_HANDLE hnew, hcert;
    tp_key_spec ks = {.id = "a1"};
    tp_key_with_cert(&r, &key, &cert, &ks, &hnew, &hcert);
    TT_OK(post(&r, CKM_VENDOR_SKS_POST_UPDATE_KEY, "a1", pub_of(&x.a, 0), old, "a1", hnew, 0));
    TT_OK(tp_close_session(&r));
    tp_free(&r);

    ck_assert_uint_eq(tt_count_id(x.f, x.pin_s, CKO_PRIVATE_KEY, "a1", NULL), 0);
    ck_assert_uint_eq(tt_count_id(x.f, x.pin_s, CKO_PRIVATE_KEY, "a3", NULL), 1);
    ck_assert_uint_eq(tt_find_id(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a1"), hnew);
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
    static const struct {
        int other_issuer;
        size_t key; /* A's key named: a2 (private key object) or a3 (public key object) */
        int tamper;
        CK_RV want;
    } cases[] = {
        {1, 1, 0, CKR_VENDOR_SKS_LIMIT},
        {0, 2, 0, CKR_VENDOR_SKS_LIMIT},
        {0, 1, 1, CKR_VENDOR_SKS_MAC},
    };
    fixture x;
    fx_setup(&x);
    EVP_PKEY *other = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(other);
    CK_OBJECT_HANDLE named[3] = {CK_INVALID_HANDLE,
                                 tt_find_id(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2"),
                                 tt_find_id(x.f, x.pin_s, CKO_PUBLIC_KEY, "a3")};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tp_relay r;
        size_t k = cases[i].key;
        open_of(&x, &r, cases[i].other_issuer ? other : x.a.issuer_key);
        TT_RV(post(&r, CKM_VENDOR_SKS_POST_DELETE_KEY, a_ids[k], pub_of(&x.a, k), named[k], NULL,
                   CK_INVALID_HANDLE, cases[i].tamper),
              cases[i].want);
        expect_gone(&r);
    }

    ck_assert_uint_eq(tt_count_id(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2", NULL), 1);
    ck_assert_uint_eq(tt_count_id(x.f, x.pin_s, CKO_PUBLIC_KEY, "a3", NULL), 1);
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
    CK_OBJECT_HANDLE a2 = tt_find_id(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2");
    CK_OBJECT_HANDLE a2_cert = tt_find_id(x.f, x.nopin_s, CKO_CERTIFICATE, "a2");
    tp_relay r;
    CK_SKS_POST_PARAMS p;
    CK_OBJECT_HANDLE out;

    /*
     * No parameter, a short one, a certificate as hKey, hNewKey for a
     * delete; postUpdateKey without hNewKey.
     */
    for (int i = 0; i < 5; i++) {
        open_of(&x, &r, x.a.issuer_key);
        memset(&p, 0, sizeof(p));
        p.hKey = i == 2 ? a2_cert : a2;
        p.hNewKey = i == 3 ? a2 : CK_INVALID_HANDLE;
        CK_MECHANISM m = {i == 4 ? CKM_VENDOR_SKS_POST_UPDATE_KEY : CKM_VENDOR_SKS_POST_DELETE_KEY,
                          i == 0 ? NULL : &p,
                          i == 1   ? sizeof(p) - 1
                          : i == 0 ? 0
                                   : sizeof(p)};
        TT_RV(x.f->C_DeriveKey(r.s, &m, r.prov, NULL, 0, &out), CKR_MECHANISM_PARAM_INVALID);
        expect_gone(&r);
    }

    /* A read-only session. */
    open_of(&x, &r, x.a.issuer_key);
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

    ck_assert_uint_eq(tt_count_id(x.f, x.nopin_s, CKO_PRIVATE_KEY, "a2", NULL), 1);
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
    return tl_run_suite(post_suite());
}
