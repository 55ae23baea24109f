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

#include "protocol/sks_crypto.h"
#include "test-token-prov-util.h"

#define PIN "271828"

typedef struct {
    tt_env e;
    CK_FUNCTION_LIST *f;
    CK_ULONG slots; /* before the session */
    CK_SESSION_HANDLE s;
    tp_relay r;
    tp_call puk, pin, key;
    CK_OBJECT_HANDLE hpuk, hpin, hkey;
} fixture;

/* A session holding a PUK policy, a PIN policy and an attested P-256 key. */
static void begin(fixture *x, uint16_t limit, uint32_t lifetime)
{
    tt_env_with_card(&x->e, NULL);
    x->f = tt_init();
    x->slots = tp_slot_count(x->f);
    x->s = tt_open(x->f, tt_free_slot(x->f));
    tp_open(&x->r, x->f, x->s, x->e.card->trusted, SKS_SKALG_ECDH_P256, limit, lifetime);
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
    TT_OK(x->f->C_Finalize(NULL));
    tt_env_free(&x->e);
}

/* Nothing of the session on the card, and every later call answers NO_SESSION. */
static void expect_aborted(fixture *x)
{
    tp_assert_gone(&x->e, x->f, x->r.card_handle, 0, 0, x->slots);
    TT_RV(tp_send(&x->r, &x->pin, NULL), CKR_VENDOR_SKS_NO_SESSION);
}

static sks_view spki_of(const tp_call *key)
{
    return (sks_view){key->public_key, key->p.kp.ulPublicKeyLen};
}

START_TEST(t_mac_flipped)
{
    fixture x;
    begin(&x, 0, 0);
    tp_call cert;
    tp_cert(&x.r, &cert, "key1", x.hkey, spki_of(&x.key));
    cert.p.cp.mac[7] ^= 0x01;
    TT_RV(tp_send(&x.r, &cert, NULL), CKR_VENDOR_SKS_MAC);
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
    tp_cert(&x.r, &cert, "key1", x.hkey, spki_of(&x.key));
    tp_close(&x.r, &close);
    TT_RV(tp_send(&x.r, &close, NULL), CKR_VENDOR_SKS_MAC);
    expect_aborted(&x);
    tp_call_free(&cert);
    tp_call_free(&close);
    finish(&x);
}
END_TEST

/* The card's own clock: a 3-second session, then a call 5 seconds after it began. */
START_TEST(t_lifetime_passed)
{
    fixture x;
    time_t t0 = time(NULL);
    begin(&x, 0, 3);
    while (time(NULL) < t0 + 5)
        usleep(100 * 1000);
    tp_call cert;
    tp_cert(&x.r, &cert, "key1", x.hkey, spki_of(&x.key));
    TT_RV(tp_send(&x.r, &cert, NULL), CKR_VENDOR_SKS_NO_SESSION);
    expect_aborted(&x);
    tp_call_free(&cert);
    finish(&x);
}
END_TEST

/* A budget of 4: PUK (1), PIN (1), key pair (MAC and attestation: 2); the path has none left. */
START_TEST(t_operation_limit)
{
    fixture x;
    begin(&x, 4, 0);
    tp_call cert;
    tp_cert(&x.r, &cert, "key1", x.hkey, spki_of(&x.key));
    TT_RV(tp_send(&x.r, &cert, NULL), CKR_VENDOR_SKS_LIMIT);
    expect_aborted(&x);
    tp_call_free(&cert);
    finish(&x);
}
END_TEST

/* An ImportPrivateKey key and its prepared import, for the truncation tests. */
static void import_call(fixture *x, tp_call *key, tp_call *imp, EVP_PKEY **k2)
{
    CK_OBJECT_HANDLE hk;
    tp_key_spec ks = {.id = "k2", .pin_id = "pin", .hPin = x->hpin, .pin = PIN, .import = 1};
    tp_key(&x->r, key, &ks);
    TT_OK(tp_send(&x->r, key, &hk));
    tp_verify_key(&x->r, key);
    *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(*k2);
    tp_import(&x->r, imp, "k2", hk, *k2);
}

START_TEST(t_truncated_relayed)
{
    fixture x;
    tp_call key, imp;
    EVP_PKEY *k2;
    begin(&x, 0, 0);
    import_call(&x, &key, &imp, &k2);
    imp.p.pk.ulEncryptedPrivateKeyLen -= 16; /* one block less: the MAC covers every byte */
    TT_RV(tp_send(&x.r, &imp, NULL), CKR_VENDOR_SKS_MAC);
    expect_aborted(&x);
    EVP_PKEY_free(k2);
    tp_call_free(&key);
    tp_call_free(&imp);
    finish(&x);
}
END_TEST

/*
 * The same blob one byte short with a MAC that matches it (made here from
 * the issuer's SK, as only the issuer could): the card gets past the MAC,
 * cannot decrypt a value that is not whole AES blocks, and says CRYPTO.
 */
START_TEST(t_truncated_macd)
{
    fixture x;
    tp_call key, imp;
    EVP_PKEY *k2;
    begin(&x, 0, 0);
    import_call(&x, &key, &imp, &k2);
    imp.p.pk.ulEncryptedPrivateKeyLen -= 1;
    sks_req_put_private_key req;
    memset(&req, 0, sizeof(req));
    req.key_id = (sks_view){(const uint8_t *)"k2", 2};
    req.encrypted_private_key = (sks_view){imp.m.value, imp.p.pk.ulEncryptedPrivateKeyLen};
    const sks_msgdesc *d = sks_msg_find(SKS_M_IMPORT_PRIVATE_KEY);
    sks_writer macdata;
    sks_writer_init(&macdata);
    ck_assert_int_eq(sks_msg_macdata(d, &req, &macdata), 0);
    ck_assert_int_eq(sks_mac(sks_issuer_session_key(x.r.is), d->name, imp.m.counter, macdata.buf,
                             macdata.len, imp.p.pk.mac),
                     0);
    sks_writer_free(&macdata);
    TT_RV(tp_send(&x.r, &imp, NULL), CKR_ENCRYPTED_DATA_INVALID);
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
    tt_env e;
    tt_env_with_card(&e, NULL);
    CK_FUNCTION_LIST *f = tt_init();
    CK_ULONG slots = tp_slot_count(f);
    CK_SESSION_HANDLE s = tt_open(f, tt_free_slot(f));
    tp_relay a, b;
    tp_call puk_a, key_b, pin_b;
    CK_OBJECT_HANDLE hpuk_a, hkey_b;
    tp_open(&a, f, s, e.card->trusted, SKS_SKALG_ECDH_P256, 0, 0);
    tp_open(&b, f, s, e.card->trusted, SKS_SKALG_RSA_OAEP_SHA256, 0, 0);
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
    tp_call close_a;
    tp_close(&a, &close_a);
    TT_OK(tp_send(&a, &close_a, NULL));
    tp_verify_close(&a, &close_a);
    tp_assert_gone(&e, f, b.card_handle, 0, 0, slots);
    tp_call_free(&puk_a);
    tp_call_free(&key_b);
    tp_call_free(&pin_b);
    tp_call_free(&close_a);
    tp_free(&a);
    tp_free(&b);
    TT_OK(f->C_Finalize(NULL));
    tt_env_free(&e);
}
END_TEST

/* A refusal by the module itself (a key handle that is no key) aborts the session too. */
START_TEST(t_local_refusal)
{
    fixture x;
    begin(&x, 0, 0);
    tp_call cert;
    tp_cert(&x.r, &cert, "key1", x.hpin, spki_of(&x.key));
    TT_RV(tp_send(&x.r, &cert, NULL), CKR_MECHANISM_PARAM_INVALID);
    expect_aborted(&x);
    tp_call_free(&cert);
    finish(&x);
}
END_TEST

START_TEST(t_abort_by_destroy)
{
    fixture x;
    begin(&x, 0, 0);
    tp_call cert;
    CK_OBJECT_HANDLE hcert;
    tp_cert(&x.r, &cert, "key1", x.hkey, spki_of(&x.key));
    TT_OK(tp_send(&x.r, &cert, &hcert));
    TT_OK(x.f->C_DestroyObject(x.s, x.r.prov));
    tp_assert_gone(&x.e, x.f, x.r.card_handle, 0, 0, x.slots);
    TT_RV(tp_send(&x.r, &x.pin, NULL), CKR_KEY_HANDLE_INVALID);
    tp_call_free(&cert);
    finish(&x);
}
END_TEST

START_TEST(t_abort_by_session_close)
{
    fixture x;
    begin(&x, 0, 0);
    TT_OK(x.f->C_CloseSession(x.s));
    tp_assert_gone(&x.e, x.f, x.r.card_handle, 0, 0, x.slots);
    finish(&x);
}
END_TEST

/* After close: calls answer NO_SESSION, the key stays, destroying the object is harmless. */
START_TEST(t_used_after_close)
{
    fixture x;
    begin(&x, 0, 0);
    tp_call cert, close;
    CK_OBJECT_HANDLE hcert;
    tp_cert(&x.r, &cert, "key1", x.hkey, spki_of(&x.key));
    TT_OK(tp_send(&x.r, &cert, &hcert));
    tp_close(&x.r, &close);
    TT_OK(tp_send(&x.r, &close, NULL));
    tp_verify_close(&x.r, &close);
    TT_RV(tp_send(&x.r, &close, NULL), CKR_VENDOR_SKS_NO_SESSION);
    TT_RV(tp_send(&x.r, &x.puk, NULL), CKR_VENDOR_SKS_NO_SESSION);
    TT_OK(x.f->C_DestroyObject(x.s, x.r.prov));
    /* One key and one PIN policy, a token for it: all still there. */
    tp_assert_gone(&x.e, x.f, x.r.card_handle, 1, 1, x.slots + 1);
    CK_SESSION_HANDLE us = tt_open(x.f, tt_slot_by_label(x.f, "pin"));
    TT_OK(x.f->C_Login(us, CKU_USER, (CK_UTF8CHAR_PTR)PIN, strlen(PIN)));
    tp_sign_and_verify(x.f, us, x.hkey, hcert);
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
    tcase_add_test(tc, t_mac_flipped);
    tcase_add_test(tc, t_replayed);
    tcase_add_test(tc, t_swapped);
    tcase_add_test(tc, t_lifetime_passed);
    tcase_add_test(tc, t_operation_limit);
    tcase_add_test(tc, t_truncated_relayed);
    tcase_add_test(tc, t_truncated_macd);
    tcase_add_test(tc, t_policy_of_other_session);
    tcase_add_test(tc, t_local_refusal);
    tcase_add_test(tc, t_abort_by_destroy);
    tcase_add_test(tc, t_abort_by_session_close);
    tcase_add_test(tc, t_used_after_close);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
