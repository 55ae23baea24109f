/*
 * test-token-prov-neg.c - a hostile relay between the issuer and the
 * module's vendor mechanisms: a flipped MAC byte, a replayed call, two
 * calls swapped, the session lifetime passed, ClientOperationLimit
 * exceeded, a truncated encrypted value (as relayed, and re-MACed so that
 * the card has to decrypt it), a policy of another session, a local
 * refusal, abort by C_DestroyObject and by closing the PKCS#11 session,
 * and the provisioning object used after close.
 *
 * Each failure answers its documented CKR (sks-pkcs11(7), VENDOR
 * MECHANISMS) and aborts the session: read directly from the card, no key
 * and no PIN policy of it remains, the card no longer knows the session,
 * and the module shows no new slot.
 */
#include <check.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test-token-prov-util.h"

#define PIN "271828"

typedef struct {
    tp_env env;
    tp_relay r;
    tp_call puk, pin, key;
    CK_OBJECT_HANDLE hpuk, hpin, hkey;
} fixture;

/* A session holding a PUK policy, a PIN policy and an attested P-256 key. */
static void begin(fixture *x, uint16_t limit, uint32_t lifetime)
{
    tp_env_open(&x->env);
    tp_open(&x->r, x->env.f, x->env.s, x->env.e.card->trusted, SKS_SKALG_ECDH_P256, limit,
            lifetime);
    tp_puk(&x->r, &x->puk, "puk", "12345678");
    TT_OK(tp_send(&x->r, &x->puk, &x->hpuk));
    tp_pin(&x->r, &x->pin, "pin", "puk", x->hpuk);
    TT_OK(tp_send(&x->r, &x->pin, &x->hpin));
    tp_key_spec ks = {.id = "key1", .pin_id = "pin", .hPin = x->hpin, .pin = PIN};
    tp_key(&x->r, &x->key, &ks);
    TT_OK(tp_send(&x->r, &x->key, &x->hkey));
    tp_verify_key(&x->r, &x->key);
}

static void finish(fixture *x)
{
    tp_call_free(&x->puk);
    tp_call_free(&x->pin);
    tp_call_free(&x->key);
    tp_free(&x->r);
    tp_env_close(&x->env);
}

/* Nothing of the session on the card: no key, no policy, no new slot; the session is unknown. */
static void assert_session_gone(fixture *x)
{
    tp_assert_gone(&x->env.e, x->env.f, x->r.card_handle, 0, 0, x->env.slots);
}

/* Nothing of the session on the card, and every later call answers NO_SESSION. */
static void expect_aborted(fixture *x)
{
    assert_session_gone(x);
    TT_RV(tp_send(&x->r, &x->pin, NULL), CKR_VENDOR_SKS_NO_SESSION);
}

/*
 * The certificate path of key1 as a hostile relay (or the clock) makes it
 * go wrong; each answers its CKR and aborts the session.
 */
static const struct {
    uint16_t limit;    /* ClientOperationLimit (0: none) */
    uint32_t lifetime; /* SessionLifeTime (0: one hour) */
    time_t wait;       /* seconds after the session began before the call is prepared */
    int flip_mac;      /* one bit of the MAC flipped */
    int pin_handle;    /* hKey is the PIN policy object, not the key */
    CK_RV want;
} cert_cases[] = {
    /* A flipped MAC byte. */
    {0, 0, 0, 1, 0, CKR_VENDOR_SKS_MAC},
    /* The card's own clock: a 3-second session, then a call 5 seconds after it began. */
    {0, 3, 5, 0, 0, CKR_VENDOR_SKS_NO_SESSION},
    /* A budget of 4: PUK (1), PIN (1), key pair (MAC and attestation: 2); the path has none left.
     */
    {4, 0, 0, 0, 0, CKR_VENDOR_SKS_LIMIT},
    /* A refusal by the module itself (a key handle that is no key) aborts the session too. */
    {0, 0, 0, 0, 1, CKR_MECHANISM_PARAM_INVALID},
};

START_TEST(t_cert_refused)
{
    fixture x;
    time_t t0 = time(NULL);
    begin(&x, cert_cases[_i].limit, cert_cases[_i].lifetime);
    while (time(NULL) < t0 + cert_cases[_i].wait)
        usleep(100 * 1000);
    tp_call cert;
    tp_cert(&x.r, &cert, "key1", cert_cases[_i].pin_handle ? x.hpin : x.hkey, tp_spki(&x.key));
    if (cert_cases[_i].flip_mac)
        cert.p.cp.mac[7] ^= 0x01;
    TT_RV(tp_send(&x.r, &cert, NULL), cert_cases[_i].want);
    expect_aborted(&x);
    tp_call_free(&cert);
    finish(&x);
}
END_TEST

START_TEST(t_replayed)
{
    fixture x;
    begin(&x, 0, 0);
    /* The PIN policy call again: its MAC was for an earlier counter value. */
    TT_RV(tp_send(&x.r, &x.pin, NULL), CKR_VENDOR_SKS_MAC);
    expect_aborted(&x);
    finish(&x);
}
END_TEST

START_TEST(t_swapped)
{
    fixture x;
    begin(&x, 0, 0);
    tp_call cert, close;
    tp_cert(&x.r, &cert, "key1", x.hkey, tp_spki(&x.key));
    tp_close(&x.r, &close);
    TT_RV(tp_send(&x.r, &close, NULL), CKR_VENDOR_SKS_MAC);
    expect_aborted(&x);
    tp_call_free(&cert);
    tp_call_free(&close);
    finish(&x);
}
END_TEST

/*
 * An ImportPrivateKey key and its import with the encrypted key `cut`
 * bytes short: as relayed (the MAC covers every byte), or with a MAC that
 * matches it (made here from the issuer's SK, as only the issuer could),
 * so that the card gets past the MAC and cannot decrypt a value that is
 * not whole AES blocks.
 */
static const struct {
    CK_ULONG cut;
    int remac;
    CK_RV want;
} truncations[] = {
    {16, 0, CKR_VENDOR_SKS_MAC},
    {1, 1, CKR_ENCRYPTED_DATA_INVALID},
};

START_TEST(t_truncated)
{
    fixture x;
    tp_call key, imp;
    CK_OBJECT_HANDLE hk;
    begin(&x, 0, 0);
    tp_key_spec ks = {.id = "k2", .pin_id = "pin", .hPin = x.hpin, .pin = PIN, .import = 1};
    tp_key(&x.r, &key, &ks);
    TT_OK(tp_send(&x.r, &key, &hk));
    tp_verify_key(&x.r, &key);
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(k2);
    tp_import(&x.r, &imp, "k2", hk, k2);

    imp.p.pk.ulEncryptedPrivateKeyLen -= truncations[_i].cut;
    if (truncations[_i].remac) {
        sks_req_put_private_key req;
        memset(&req, 0, sizeof(req));
        req.key_id = (sks_view){(const uint8_t *)"k2", 2};
        req.encrypted_private_key = (sks_view){imp.m.value, imp.p.pk.ulEncryptedPrivateKeyLen};
        tl_remac(x.r.is, SKS_M_IMPORT_PRIVATE_KEY, &req, &imp.m);
        memcpy(imp.p.pk.mac, imp.m.mac, sizeof(imp.p.pk.mac));
    }
    TT_RV(tp_send(&x.r, &imp, NULL), truncations[_i].want);
    expect_aborted(&x);
    EVP_PKEY_free(k2);
    tp_call_free(&key);
    tp_call_free(&imp);
    finish(&x);
}
END_TEST

/* A PUK policy object of session A named in session B: the card refuses it, B is gone, A lives. */
START_TEST(t_policy_of_other_session)
{
    tp_env x;
    tp_env_open(&x);
    tp_relay a, b;
    tp_call puk_a, key_b, pin_b;
    CK_OBJECT_HANDLE hpuk_a, hkey_b;
    tp_open(&a, x.f, x.s, x.e.card->trusted, SKS_SKALG_ECDH_P256, 0, 0);
    tp_open(&b, x.f, x.s, x.e.card->trusted, SKS_SKALG_RSA_OAEP_SHA256, 0, 0);
    tp_puk(&a, &puk_a, "pa", "12345678");
    TT_OK(tp_send(&a, &puk_a, &hpuk_a));
    tp_key_spec ks = {.id = "b1"}; /* B makes a key first, so that its abort has work */
    tp_key(&b, &key_b, &ks);
    TT_OK(tp_send(&b, &key_b, &hkey_b));
    ck_assert(sks_issuer_declare_puk_policy(b.is, "pa", SKS_PIN_NUMERIC, 5) == 0);
    tp_pin(&b, &pin_b, "pb", "pa", hpuk_a);
    TT_RV(tp_send(&b, &pin_b, NULL), CKR_VENDOR_SKS_NO_POLICY);
    TT_RV(tp_send(&b, &pin_b, NULL), CKR_VENDOR_SKS_NO_SESSION);
    /* A goes on and closes; B left nothing. */
    TT_OK(tp_close_session(&a));
    tp_assert_gone(&x.e, x.f, b.card_handle, 0, 0, x.slots);
    tp_call_free(&puk_a);
    tp_call_free(&key_b);
    tp_call_free(&pin_b);
    tp_free(&a);
    tp_free(&b);
    tp_env_close(&x);
}
END_TEST

START_TEST(t_abort_by_destroy)
{
    fixture x;
    begin(&x, 0, 0);
    tp_call cert;
    CK_OBJECT_HANDLE hcert;
    tp_cert(&x.r, &cert, "key1", x.hkey, tp_spki(&x.key));
    TT_OK(tp_send(&x.r, &cert, &hcert));
    TT_OK(x.env.f->C_DestroyObject(x.env.s, x.r.prov));
    assert_session_gone(&x);
    TT_RV(tp_send(&x.r, &x.pin, NULL), CKR_KEY_HANDLE_INVALID);
    tp_call_free(&cert);
    finish(&x);
}
END_TEST

START_TEST(t_abort_by_session_close)
{
    fixture x;
    begin(&x, 0, 0);
    TT_OK(x.env.f->C_CloseSession(x.env.s));
    assert_session_gone(&x);
    finish(&x);
}
END_TEST

/* After close: calls answer NO_SESSION, the key stays, destroying the object is harmless. */
START_TEST(t_used_after_close)
{
    fixture x;
    begin(&x, 0, 0);
    CK_FUNCTION_LIST *f = x.env.f;
    tp_call cert, close;
    CK_OBJECT_HANDLE hcert;
    tp_cert(&x.r, &cert, "key1", x.hkey, tp_spki(&x.key));
    TT_OK(tp_send(&x.r, &cert, &hcert));
    tp_close(&x.r, &close);
    TT_OK(tp_send(&x.r, &close, NULL));
    tp_verify_close(&x.r, &close);
    TT_RV(tp_send(&x.r, &close, NULL), CKR_VENDOR_SKS_NO_SESSION);
    TT_RV(tp_send(&x.r, &x.puk, NULL), CKR_VENDOR_SKS_NO_SESSION);
    TT_OK(f->C_DestroyObject(x.env.s, x.r.prov));
    /* One key and one PIN policy, a token for it: all still there. */
    tp_assert_gone(&x.env.e, f, x.r.card_handle, 1, 1, x.env.slots + 1);
    CK_SESSION_HANDLE us = tt_user_session(f, "pin", PIN);
    tp_sign_and_verify(f, us, x.hkey, hcert);
    tp_call_free(&cert);
    tp_call_free(&close);
    finish(&x);
}
END_TEST

static Suite *suite(void)
{
    Suite *su = suite_create("token-prov-neg");
    TCase *tc = tcase_create("relay");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, t_cert_refused, 0, sizeof(cert_cases) / sizeof(cert_cases[0]));
    tcase_add_test(tc, t_replayed);
    tcase_add_test(tc, t_swapped);
    tcase_add_loop_test(tc, t_truncated, 0, sizeof(truncations) / sizeof(truncations[0]));
    tcase_add_test(tc, t_policy_of_other_session);
    tcase_add_test(tc, t_abort_by_destroy);
    tcase_add_test(tc, t_abort_by_session_close);
    tcase_add_test(tc, t_used_after_close);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    return tl_run_suite(suite());
}
