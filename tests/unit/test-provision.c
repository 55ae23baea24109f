/*
 * test-provision.c - the provisioning methods of docs/protocol.md section 6
 * against a real card and the real issuer: every method's success path for
 * both session key algorithms and all five key algorithms (every attestation
 * verified by the issuer), and each failure class of the protocol. After a
 * failure that names a session, the test checks that the session and every
 * policy and key it created are gone (through the store and the protocol),
 * that another open session carries on untouched, and that handles are never
 * handed out twice.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "card/card_internal.h"
#include "protocol/sks_crypto.h"
#include "testlib.h"

/* ---- Call helpers ----------------------------------------------------- */

static sks_view str_view(const char *s)
{
    return (sks_view){(const uint8_t *)s, strlen(s)};
}

static int put_puk(tl_card *c, sks_issuer_session *is, const char *id, const char *value,
                   uint8_t format, uint32_t *handle)
{
    sks_issuer_msg m;
    sks_req_create_puk_policy req;
    sks_resp_create_puk_policy resp;
    sks_issuer_msg_init(&m);
    ck_assert_msg(sks_issuer_prepare_puk_policy(is, id, str_view(value), format, 5, &m, &req) == 0,
                  "%s", sks_issuer_error(is));
    int st = tl_call(c, SKS_M_CREATE_PUK_POLICY, &req, &resp, NULL);
    if (st == SKS_OK && handle != NULL)
        *handle = resp.puk_policy_handle;
    sks_issuer_msg_free(&m);
    return st;
}

/* A numeric PIN policy, 4..8 digits, three tries, with the given patterns. */
static sks_issuer_pin_policy pin_policy(const char *id, const char *puk_id, uint8_t patterns)
{
    sks_issuer_pin_policy p;
    memset(&p, 0, sizeof p);
    p.id = id;
    p.puk_id = puk_id;
    p.format = SKS_PIN_NUMERIC;
    p.retry_limit = 3;
    p.grouping = SKS_GROUPING_SHARED;
    p.pattern_restrictions = patterns;
    p.min_length = 4;
    p.max_length = 8;
    return p;
}

static int put_pin(tl_card *c, sks_issuer_session *is, const sks_issuer_pin_policy *p,
                   uint32_t puk_handle, uint32_t *handle)
{
    sks_issuer_msg m;
    sks_req_create_pin_policy req;
    sks_resp_create_pin_policy resp;
    sks_issuer_msg_init(&m);
    ck_assert_msg(sks_issuer_prepare_pin_policy(is, p, puk_handle, &m, &req) == 0, "%s",
                  sks_issuer_error(is));
    int st = tl_call(c, SKS_M_CREATE_PIN_POLICY, &req, &resp, NULL);
    if (st == SKS_OK && handle != NULL)
        *handle = resp.pin_policy_handle;
    sks_issuer_msg_free(&m);
    return st;
}

/* A signing EC P-256 key under PIN policy `pin_id` (NULL: none). */
static sks_issuer_key_spec key_spec(const char *id, const char *pin_id, const char *pin)
{
    sks_issuer_key_spec k;
    memset(&k, 0, sizeof k);
    k.id = id;
    k.pin_policy_id = pin_id;
    if (pin != NULL)
        k.pin = str_view(pin);
    k.key_usage = SKS_USAGE_SIGN;
    k.algorithm = SKS_KEYALG_EC_P256;
    return k;
}

/*
 * createKeyPair; on success the issuer verifies the attestation, and the
 * public key (SPKI) and backup go to `pub`/`backup` when given.
 */
static int put_key(tl_card *c, sks_issuer_session *is, const sks_issuer_key_spec *ks,
                   uint32_t pin_handle, uint32_t *handle, sks_writer *pub, EVP_PKEY **backup)
{
    sks_issuer_msg m;
    sks_req_create_key_pair req;
    sks_resp_create_key_pair resp;
    sks_writer ans;
    sks_writer_init(&ans);
    sks_issuer_msg_init(&m);
    ck_assert_msg(sks_issuer_prepare_key_pair(is, ks, pin_handle, &m, &req) == 0, "%s",
                  sks_issuer_error(is));
    int st = tl_call(c, SKS_M_CREATE_KEY_PAIR, &req, &resp, &ans);
    if (st == SKS_OK) {
        ck_assert_msg(sks_issuer_verify_key_attestation(is, &m, &resp) == 0, "%s",
                      sks_issuer_error(is));
        if (handle != NULL)
            *handle = resp.key_handle;
        if (pub != NULL)
            sks_put_raw(pub, resp.public_key.ptr, resp.public_key.len);
        if (backup != NULL) {
            *backup = sks_issuer_decrypt_backup(is, resp.encrypted_private_key);
            ck_assert_msg(*backup != NULL, "%s", sks_issuer_error(is));
        }
    }
    sks_issuer_msg_free(&m);
    sks_writer_free(&ans);
    return st;
}

/* setCertificatePath with one certificate issued for `spki`. */
static int put_cert(tl_card *c, sks_issuer_session *is, const char *key_id, uint32_t key_handle,
                    sks_view spki)
{
    sks_issuer_msg m;
    sks_req_set_certificate_path req;
    sks_writer der;
    sks_writer_init(&der);
    sks_issuer_msg_init(&m);
    tl_issue_cert_der(spki, &der);
    sks_view path[1] = {{der.buf, der.len}};
    ck_assert_msg(sks_issuer_prepare_certificate_path(is, key_id, key_handle, path, 1, &m, &req) ==
                      0,
                  "%s", sks_issuer_error(is));
    int st = tl_call(c, SKS_M_SET_CERTIFICATE_PATH, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    sks_writer_free(&der);
    return st;
}

/* importPrivateKey (or restorePrivateKey) of `key`. */
static int put_private(tl_card *c, sks_issuer_session *is, uint8_t method, const char *key_id,
                       uint32_t key_handle, EVP_PKEY *key)
{
    sks_issuer_msg m;
    sks_req_put_private_key req;
    sks_issuer_msg_init(&m);
    ck_assert_msg(sks_issuer_prepare_put_pkey(is, method, key_id, key_handle, key, &m, &req) == 0,
                  "%s", sks_issuer_error(is));
    int st = tl_call(c, method, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

static int abort_session(tl_card *c, uint32_t handle)
{
    sks_req_abort_session req = {handle};
    return tl_call(c, SKS_M_ABORT_PROVISIONING_SESSION, &req, NULL, NULL);
}

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    ck_assert_ptr_nonnull(k);
    return k;
}

/* SPKI DER of a key, appended to w. */
static void spki_of(EVP_PKEY *key, sks_writer *w)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    ck_assert_int_gt(n, 0);
    sks_put_raw(w, der, (size_t)n);
    OPENSSL_free(der);
}

static int view_eq(sks_view a, const uint8_t *b, size_t n)
{
    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

/* ---- The two-session fixture ------------------------------------------ */

static uint64_t test_clock(void *ctx)
{
    return *(const uint64_t *)ctx;
}

/*
 * A card with two open sessions: the victim V (PUK policy, PIN policy, one
 * key without certificate) and the bystander B (PIN policy, one key). The
 * failure tests break V and then check that V is gone and B finishes.
 */
typedef struct {
    tl_card *c;
    uint64_t now;
    sks_issuer_session *v, *b;
    uint32_t v_session, v_puk, v_pin, v_key;
    uint32_t b_session, b_pin, b_key;
    sks_writer v_pub, b_pub;
    uint32_t max_handle;
} fixture;

static void note_handle(fixture *t, uint32_t h)
{
    if (h > t->max_handle)
        t->max_handle = h;
}

static void fx_setup(fixture *t, uint16_t v_limit)
{
    memset(t, 0, sizeof *t);
    sks_writer_init(&t->v_pub);
    sks_writer_init(&t->b_pub);
    t->c = tl_card_new();
    t->now = 1000000;
    sks_card_set_clock(t->c->card, test_clock, &t->now);

    t->v = tl_open_session(t->c, SKS_SKALG_ECDH_P256, 0, v_limit, 600);
    t->b = tl_open_session(t->c, SKS_SKALG_ECDH_P256, 0, 0, 100000);
    t->v_session = sks_issuer_provisioning_handle(t->v);
    t->b_session = sks_issuer_provisioning_handle(t->b);

    TL_OK(t->c, put_puk(t->c, t->v, "vpuk", "12345678", SKS_PIN_NUMERIC, &t->v_puk));
    sks_issuer_pin_policy vp = pin_policy("vpin", "vpuk", 0);
    TL_OK(t->c, put_pin(t->c, t->v, &vp, t->v_puk, &t->v_pin));
    sks_issuer_key_spec vk = key_spec("vkey", "vpin", "1357");
    TL_OK(t->c, put_key(t->c, t->v, &vk, t->v_pin, &t->v_key, &t->v_pub, NULL));

    sks_issuer_pin_policy bp = pin_policy("bpin", NULL, 0);
    TL_OK(t->c, put_pin(t->c, t->b, &bp, 0, &t->b_pin));
    sks_issuer_key_spec bk = key_spec("bkey", "bpin", "2468");
    TL_OK(t->c, put_key(t->c, t->b, &bk, t->b_pin, &t->b_key, &t->b_pub, NULL));

    uint32_t all[] = {t->v_session, t->b_session, t->v_puk, t->v_pin, t->v_key, t->b_pin, t->b_key};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        note_handle(t, all[i]);
}

static void fx_teardown(fixture *t)
{
    sks_issuer_session_free(t->v);
    sks_issuer_session_free(t->b);
    sks_writer_free(&t->v_pub);
    sks_writer_free(&t->b_pub);
    tl_card_free(t->c);
}

/* V and everything it created are gone, in the store and for the protocol. */
static void fx_assert_victim_gone(fixture *t)
{
    card_store *st = t->c->card->store;
    card_session_rec s;
    card_puk_rec u;
    card_pin_rec p;
    card_key_rec k;
    ck_assert_int_eq(card_store_session_get(st, t->v_session, &s), SKS_ERR_NO_SESSION);
    ck_assert_int_eq(card_store_puk_get(st, t->v_puk, &u), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(card_store_pin_get(st, t->v_pin, &p), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(card_store_key_get(st, t->v_key, &k), SKS_ERR_NO_KEY);
    uint32_t *keys = NULL;
    size_t n = 99;
    ck_assert_int_eq(card_store_session_keys(st, t->v_session, &keys, &n), SKS_OK);
    ck_assert_uint_eq(n, 0);
    free(keys);
    ck_assert_int_eq(abort_session(t->c, t->v_session), SKS_ERR_NO_SESSION);
}

/*
 * B carries on: certificate, close (attestation verified), the key is
 * usable; and a new session gets a handle above every handle seen so far.
 */
static void fx_assert_bystander_ok(fixture *t)
{
    sks_view pub = {t->b_pub.buf, t->b_pub.len};
    TL_OK(t->c, put_cert(t->c, t->b, "bkey", t->b_key, pub));
    TL_OK(t->c, tl_close_session(t->c, t->b));
    sks_req_key_handle kh = {t->b_key};
    sks_resp_get_key_attributes attr;
    TL_OK(t->c, tl_call(t->c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attr, NULL));
    ck_assert(attr.flags & SKS_KEYFLAG_COMPLETE);
    ck_assert_uint_eq(attr.provisioning_handle, t->b_session);

    sks_issuer_session *n = tl_open_session(t->c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    ck_assert_uint_gt(sks_issuer_provisioning_handle(n), t->max_handle);
    sks_issuer_session_free(n);
}

/* ---- Failure cases ---------------------------------------------------- */

typedef int (*failure_fn)(fixture *t);

/* Encode a request (method byte + WIRE fields). */
static void encode(uint8_t method, const void *req, sks_writer *w)
{
    ck_assert(sks_msg_encode_request(sks_msg_find(method), req, w) == 0);
}

/* A prepared createPINPolicy of V (ID "new"), for the malformed-call cases. */
static void v_pin_request(fixture *t, sks_issuer_msg *m, sks_req_create_pin_policy *req)
{
    sks_issuer_pin_policy p = pin_policy("new", NULL, 0);
    ck_assert(sks_issuer_prepare_pin_policy(t->v, &p, 0, m, req) == 0);
}

/* V's createPINPolicy call (v_pin_request) as bytes in `w`, for the cases that break its encoding.
 */
static void encode_v_pin_request(fixture *t, sks_writer *w)
{
    sks_issuer_msg m;
    sks_req_create_pin_policy req;
    sks_issuer_msg_init(&m);
    v_pin_request(t, &m, &req);
    encode(SKS_M_CREATE_PIN_POLICY, &req, w);
    sks_issuer_msg_free(&m);
}

static int f_bad_bool(fixture *t)
{
    sks_writer w;
    sks_writer_init(&w);
    encode_v_pin_request(t, &w);
    /* method, handle(4), ID(2+3), PUK handle(4), then UserDefined */
    size_t at = 1 + 4 + 2 + 3 + 4;
    ck_assert_uint_eq(w.buf[at], 0);
    w.buf[at] = 2;
    int st = tl_call_raw(t->c, w.buf, w.len);
    sks_writer_free(&w);
    return st;
}

static int f_trailing_byte(fixture *t)
{
    sks_writer w;
    sks_writer_init(&w);
    encode_v_pin_request(t, &w);
    sks_put_byte(&w, 0);
    int st = tl_call_raw(t->c, w.buf, w.len);
    sks_writer_free(&w);
    return st;
}

static int f_truncated(fixture *t)
{
    sks_writer w;
    sks_writer_init(&w);
    encode_v_pin_request(t, &w);
    int st = tl_call_raw(t->c, w.buf, w.len - 1);
    sks_writer_free(&w);
    return st;
}

static int f_oversize_id(fixture *t)
{
    sks_issuer_msg m;
    sks_req_create_puk_policy req;
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_puk_policy(t->v, "p2", str_view("1234"), 0, 3, &m, &req) == 0);
    static const char id33[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456";
    ck_assert_uint_eq(strlen(id33), 33);
    req.id = str_view(id33);
    int st = tl_call(t->c, SKS_M_CREATE_PUK_POLICY, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

static int f_mac_tampered(fixture *t)
{
    sks_issuer_msg m;
    sks_req_create_pin_policy req;
    sks_issuer_msg_init(&m);
    v_pin_request(t, &m, &req);
    m.mac[7] ^= 0x01;
    int st = tl_call(t->c, SKS_M_CREATE_PIN_POLICY, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

static int f_argument_tampered(fixture *t)
{
    sks_issuer_msg m;
    sks_req_create_pin_policy req;
    sks_issuer_msg_init(&m);
    v_pin_request(t, &m, &req);
    req.retry_limit++;
    int st = tl_call(t->c, SKS_M_CREATE_PIN_POLICY, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

static int f_replay(fixture *t)
{
    sks_issuer_msg m;
    sks_req_create_pin_policy req;
    sks_issuer_msg_init(&m);
    v_pin_request(t, &m, &req);
    TL_OK(t->c, tl_call(t->c, SKS_M_CREATE_PIN_POLICY, &req, NULL, NULL));
    int st = tl_call(t->c, SKS_M_CREATE_PIN_POLICY, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

static int f_reorder(fixture *t)
{
    sks_issuer_msg m1, m2;
    sks_req_create_puk_policy puk;
    sks_req_create_pin_policy pin;
    sks_issuer_msg_init(&m1);
    sks_issuer_msg_init(&m2);
    ck_assert(sks_issuer_prepare_puk_policy(t->v, "p2", str_view("1234"), 0, 3, &m1, &puk) == 0);
    v_pin_request(t, &m2, &pin);
    int st = tl_call(t->c, SKS_M_CREATE_PIN_POLICY, &pin, NULL, NULL);
    sks_issuer_msg_free(&m1);
    sks_issuer_msg_free(&m2);
    return st;
}

static int f_unknown_pin_policy(fixture *t)
{
    sks_issuer_key_spec k = key_spec("k2", "vpin", "1357");
    return put_key(t->c, t->v, &k, 0x7FFFFFF0u, NULL, NULL, NULL);
}

static int f_foreign_pin_policy(fixture *t)
{
    sks_issuer_key_spec k = key_spec("k2", "vpin", "1357");
    return put_key(t->c, t->v, &k, t->b_pin, NULL, NULL, NULL);
}

static int f_foreign_puk_policy(fixture *t)
{
    uint32_t bpuk = 0;
    TL_OK(t->c, put_puk(t->c, t->b, "bpuk", "1111", SKS_PIN_NUMERIC, &bpuk));
    note_handle(t, bpuk);
    sks_issuer_pin_policy p = pin_policy("p2", "vpuk", 0);
    return put_pin(t->c, t->v, &p, bpuk, NULL);
}

static int f_device_puk(fixture *t)
{
    sks_issuer_pin_policy p = pin_policy("p2", "vpuk", 0);
    return put_pin(t->c, t->v, &p, SKS_HANDLE_DEVICE, NULL);
}

static int f_unknown_key(fixture *t)
{
    return put_cert(t->c, t->v, "vkey", 0x7FFFFFF0u, (sks_view){t->v_pub.buf, t->v_pub.len});
}

static int f_foreign_key(fixture *t)
{
    return put_cert(t->c, t->v, "vkey", t->b_key, (sks_view){t->v_pub.buf, t->v_pub.len});
}

static int f_expired(fixture *t)
{
    t->now += 601;
    sks_issuer_pin_policy p = pin_policy("p2", NULL, 0);
    return put_pin(t->c, t->v, &p, 0, NULL);
}

/* V's budget is 4 (fixture: PUK 1, PIN 1, key MAC + attestation 2): no MAC left. */
static int f_budget_at_mac(fixture *t)
{
    sks_issuer_pin_policy p = pin_policy("p2", NULL, 0);
    return put_pin(t->c, t->v, &p, 0, NULL);
}

/* V's budget is 5: the MAC of a createKeyPair passes, its attestation does not. */
static int f_budget_at_attestation(fixture *t)
{
    sks_issuer_key_spec k = key_spec("k2", "vpin", "1357");
    return put_key(t->c, t->v, &k, t->v_pin, NULL, NULL, NULL);
}

static int close_with_counts(fixture *t, uint16_t generated, uint16_t deleted)
{
    TL_OK(t->c, put_cert(t->c, t->v, "vkey", t->v_key, (sks_view){t->v_pub.buf, t->v_pub.len}));
    sks_issuer_msg m;
    sks_req_close_session req;
    sks_issuer_msg_init(&m);
    const uint16_t counts[5] = {generated, deleted, 0, 0, 0};
    ck_assert(sks_issuer_prepare_close_counts(t->v, counts, &m, &req) == 0);
    int st = tl_call(t->c, SKS_M_CLOSE_PROVISIONING_SESSION, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

static int f_close_wrong_generated(fixture *t)
{
    return close_with_counts(t, 2, 0);
}

static int f_close_deleted(fixture *t)
{
    return close_with_counts(t, 1, 1);
}

static int f_close_no_cert(fixture *t)
{
    return tl_close_session(t->c, t->v);
}

static int f_close_import_missing(fixture *t)
{
    sks_issuer_key_spec k = key_spec("imp", "vpin", "1357");
    k.import_private_key = 1;
    uint32_t h = 0;
    TL_OK(t->c, put_key(t->c, t->v, &k, t->v_pin, &h, NULL, NULL));
    note_handle(t, h);
    /* The certificate is for the key the issuer means to import... but never does. */
    EVP_PKEY *key = ec_key("P-256");
    sks_writer spki;
    sks_writer_init(&spki);
    spki_of(key, &spki);
    TL_OK(t->c, put_cert(t->c, t->v, "imp", h, (sks_view){spki.buf, spki.len}));
    TL_OK(t->c, put_cert(t->c, t->v, "vkey", t->v_key, (sks_view){t->v_pub.buf, t->v_pub.len}));
    int st = tl_close_session(t->c, t->v);
    sks_writer_free(&spki);
    EVP_PKEY_free(key);
    return st;
}

static int f_cert_mismatch(fixture *t)
{
    EVP_PKEY *other = ec_key("P-256");
    sks_writer spki;
    sks_writer_init(&spki);
    spki_of(other, &spki);
    int st = put_cert(t->c, t->v, "vkey", t->v_key, (sks_view){spki.buf, spki.len});
    sks_writer_free(&spki);
    EVP_PKEY_free(other);
    return st;
}

static int f_second_cert(fixture *t)
{
    sks_view pub = {t->v_pub.buf, t->v_pub.len};
    TL_OK(t->c, put_cert(t->c, t->v, "vkey", t->v_key, pub));
    return put_cert(t->c, t->v, "vkey", t->v_key, pub);
}

/* An ImportPrivateKey entry "imp" of `alg` in V. */
static uint32_t import_entry(fixture *t, uint8_t alg)
{
    sks_issuer_key_spec k = key_spec("imp", "vpin", "1357");
    k.import_private_key = 1;
    k.algorithm = alg;
    uint32_t h = 0;
    TL_OK(t->c, put_key(t->c, t->v, &k, t->v_pin, &h, NULL, NULL));
    note_handle(t, h);
    return h;
}

static int f_import_cert_mismatch(fixture *t)
{
    uint32_t h = import_entry(t, SKS_KEYALG_EC_P256);
    EVP_PKEY *a = ec_key("P-256"), *b = ec_key("P-256");
    sks_writer spki;
    sks_writer_init(&spki);
    spki_of(a, &spki);
    TL_OK(t->c, put_cert(t->c, t->v, "imp", h, (sks_view){spki.buf, spki.len}));
    int st = put_private(t->c, t->v, SKS_M_IMPORT_PRIVATE_KEY, "imp", h, b);
    sks_writer_free(&spki);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    return st;
}

static int f_import_wrong_algorithm(fixture *t)
{
    uint32_t h = import_entry(t, SKS_KEYALG_EC_P256);
    EVP_PKEY *k = ec_key("P-384");
    int st = put_private(t->c, t->v, SKS_M_IMPORT_PRIVATE_KEY, "imp", h, k);
    EVP_PKEY_free(k);
    return st;
}

static int f_import_garbage(fixture *t)
{
    uint32_t h = import_entry(t, SKS_KEYALG_EC_P256);
    sks_issuer_msg m;
    sks_req_put_private_key req;
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_put_private_key(t->v, SKS_M_IMPORT_PRIVATE_KEY, "imp", h,
                                                 str_view("not a PKCS#8 key"), &m, &req) == 0);
    int st = tl_call(t->c, SKS_M_IMPORT_PRIVATE_KEY, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

static int f_second_import(fixture *t)
{
    uint32_t h = import_entry(t, SKS_KEYALG_EC_P256);
    EVP_PKEY *k = ec_key("P-256");
    TL_OK(t->c, put_private(t->c, t->v, SKS_M_IMPORT_PRIVATE_KEY, "imp", h, k));
    int st = put_private(t->c, t->v, SKS_M_IMPORT_PRIVATE_KEY, "imp", h, k);
    EVP_PKEY_free(k);
    return st;
}

static int f_import_into_generated(fixture *t)
{
    EVP_PKEY *k = ec_key("P-256");
    int st = put_private(t->c, t->v, SKS_M_IMPORT_PRIVATE_KEY, "vkey", t->v_key, k);
    EVP_PKEY_free(k);
    return st;
}

/* An encrypted value that is not valid ciphertext, under a correct MAC. */
static int f_bad_ciphertext(fixture *t)
{
    sks_issuer_msg m;
    sks_req_create_puk_policy req;
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_puk_policy(t->v, "p2", str_view("1234"), 0, 3, &m, &req) == 0);
    /* Not a whole number of AES blocks, so it can never decrypt. */
    uint8_t junk[40];
    memset(junk, 0x5A, sizeof junk);
    req.encrypted_value = (sks_view){junk, sizeof junk};
    tl_remac(t->v, SKS_M_CREATE_PUK_POLICY, &req, &m);
    int st = tl_call(t->c, SKS_M_CREATE_PUK_POLICY, &req, NULL, NULL);
    sks_issuer_msg_free(&m);
    return st;
}

/* A fresh PIN policy with `patterns`, then a key whose PIN is `pin`. */
static int key_with_pin(fixture *t, uint8_t patterns, const char *pin)
{
    uint32_t h = 0;
    sks_issuer_pin_policy p = pin_policy("p2", NULL, patterns);
    TL_OK(t->c, put_pin(t->c, t->v, &p, 0, &h));
    note_handle(t, h);
    sks_issuer_key_spec k = key_spec("k2", "p2", pin);
    return put_key(t->c, t->v, &k, h, NULL, NULL, NULL);
}

static int f_pin_short(fixture *t)
{
    return key_with_pin(t, 0, "123");
}

static int f_pin_long(fixture *t)
{
    return key_with_pin(t, 0, "123456789");
}

static int f_pin_format(fixture *t)
{
    return key_with_pin(t, 0, "12A4");
}

static int f_pin_two_in_a_row(fixture *t)
{
    return key_with_pin(t, SKS_PATTERN_TWO_IN_A_ROW, "1224");
}

static int f_pin_three_in_a_row(fixture *t)
{
    /* "1224" passes three-in-a-row alone (checked in the success tests). */
    return key_with_pin(t, SKS_PATTERN_THREE_IN_A_ROW, "12224");
}

static int f_pin_sequence(fixture *t)
{
    return key_with_pin(t, SKS_PATTERN_SEQUENCE, "6543");
}

static int f_pin_differs_from_group(fixture *t)
{
    sks_issuer_key_spec k = key_spec("k2", "vpin", "2468");
    return put_key(t->c, t->v, &k, t->v_pin, NULL, NULL, NULL);
}

static int f_pin_without_policy(fixture *t)
{
    sks_issuer_key_spec k = key_spec("k2", NULL, "1234");
    return put_key(t->c, t->v, &k, 0, NULL, NULL, NULL);
}

static int key_variant(fixture *t, uint8_t usage, uint8_t alg, int updatable, int del_prot,
                       int backup_and_import)
{
    sks_issuer_key_spec k = key_spec("k2", del_prot ? NULL : "vpin", del_prot ? NULL : "1357");
    k.key_usage = usage;
    k.algorithm = alg;
    k.updatable = (uint8_t)updatable;
    k.delete_protected = (uint8_t)del_prot;
    k.private_key_backup = (uint8_t)backup_and_import;
    k.import_private_key = (uint8_t)backup_and_import;
    return put_key(t->c, t->v, &k, del_prot ? 0 : t->v_pin, NULL, NULL, NULL);
}

static int f_usage_zero(fixture *t)
{
    return key_variant(t, 0, SKS_KEYALG_EC_P256, 0, 0, 0);
}

static int f_usage_unknown(fixture *t)
{
    return key_variant(t, 0x08, SKS_KEYALG_EC_P256, 0, 0, 0);
}

static int f_algorithm_unknown(fixture *t)
{
    return key_variant(t, SKS_USAGE_SIGN, 0x12, 0, 0, 0);
}

static int f_updatable_key(fixture *t)
{
    return key_variant(t, SKS_USAGE_SIGN, SKS_KEYALG_EC_P256, 1, 0, 0);
}

static int f_delete_protected_without_puk(fixture *t)
{
    return key_variant(t, SKS_USAGE_SIGN, SKS_KEYALG_EC_P256, 0, 1, 0);
}

static int f_backup_and_import(fixture *t)
{
    return key_variant(t, SKS_USAGE_SIGN, SKS_KEYALG_EC_P256, 0, 0, 1);
}

static int f_duplicate_puk_id(fixture *t)
{
    return put_puk(t->c, t->v, "vpuk", "1111", SKS_PIN_NUMERIC, NULL);
}

static int f_duplicate_pin_id(fixture *t)
{
    sks_issuer_pin_policy p = pin_policy("vpin", NULL, 0);
    return put_pin(t->c, t->v, &p, 0, NULL);
}

static int f_duplicate_key_id(fixture *t)
{
    sks_issuer_key_spec k = key_spec("vkey", "vpin", "1357");
    return put_key(t->c, t->v, &k, t->v_pin, NULL, NULL, NULL);
}

static int f_puk_format(fixture *t)
{
    return put_puk(t->c, t->v, "p2", "1234", 4, NULL);
}

static int f_puk_value_format(fixture *t)
{
    return put_puk(t->c, t->v, "p2", "12AB", SKS_PIN_NUMERIC, NULL);
}

/* A PIN policy with one parameter out of range. */
static int pin_variant(fixture *t, int which)
{
    sks_issuer_pin_policy p = pin_policy("p2", NULL, 0);
    switch (which) {
    case 0:
        p.retry_limit = 0;
        break;
    case 1:
        p.min_length = 9;
        break;
    case 2:
        p.max_length = 129;
        break;
    case 3:
        p.format = 4;
        break;
    case 4:
        p.grouping = 2;
        break;
    case 5:
        p.pattern_restrictions = 0x08;
        break;
    default:
        p.min_length = 0;
        break;
    }
    return put_pin(t->c, t->v, &p, 0, NULL);
}

static int f_pin_retry_zero(fixture *t)
{
    return pin_variant(t, 0);
}
static int f_pin_min_above_max(fixture *t)
{
    return pin_variant(t, 1);
}
static int f_pin_max_129(fixture *t)
{
    return pin_variant(t, 2);
}
static int f_pin_format_unknown(fixture *t)
{
    return pin_variant(t, 3);
}
static int f_pin_grouping_unknown(fixture *t)
{
    return pin_variant(t, 4);
}
static int f_pin_pattern_unknown(fixture *t)
{
    return pin_variant(t, 5);
}
static int f_pin_min_zero(fixture *t)
{
    return pin_variant(t, 6);
}

static int f_abort(fixture *t)
{
    return abort_session(t->c, t->v_session);
}

typedef struct {
    const char *name;
    failure_fn fn;
    int expect;
    const char *message; /* a part of the card's error string, or NULL */
    uint16_t v_limit;    /* V's ClientOperationLimit (0: none) */
} failure_case;

static const failure_case failures[] = {
    {"bool not 0/1", f_bad_bool, SKS_ERR_FORMAT, "UserDefined", 0},
    {"trailing byte", f_trailing_byte, SKS_ERR_FORMAT, "trailing", 0},
    {"truncated call", f_truncated, SKS_ERR_FORMAT, NULL, 0},
    {"33-byte ID", f_oversize_id, SKS_ERR_OPTION, "ID", 0},
    {"MAC tampered", f_mac_tampered, SKS_ERR_MAC, "MAC", 0},
    {"MACed argument tampered", f_argument_tampered, SKS_ERR_MAC, "MAC", 0},
    {"replayed call", f_replay, SKS_ERR_MAC, "MAC", 0},
    {"reordered calls", f_reorder, SKS_ERR_MAC, "MAC", 0},
    {"unknown PIN policy handle", f_unknown_pin_policy, SKS_ERR_NO_POLICY, NULL, 0},
    {"PIN policy of another session", f_foreign_pin_policy, SKS_ERR_NO_POLICY, NULL, 0},
    {"PUK policy of another session", f_foreign_puk_policy, SKS_ERR_NO_POLICY, NULL, 0},
    {"device PUK", f_device_puk, SKS_ERR_OPTION, "device", 0},
    {"unknown key handle", f_unknown_key, SKS_ERR_NO_KEY, NULL, 0},
    {"key of another session", f_foreign_key, SKS_ERR_NO_KEY, NULL, 0},
    {"session expired", f_expired, SKS_ERR_NO_SESSION, "expired", 0},
    {"budget exhausted at a MAC", f_budget_at_mac, SKS_ERR_NOT_ALLOWED, "ClientOperationLimit", 4},
    {"budget exhausted at an attestation", f_budget_at_attestation, SKS_ERR_NOT_ALLOWED,
     "ClientOperationLimit", 5},
    {"close: GeneratedKeys wrong", f_close_wrong_generated, SKS_ERR_SESSION_VERIFY, "counts", 0},
    {"close: DeletedKeys not 0", f_close_deleted, SKS_ERR_SESSION_VERIFY, "counts", 0},
    {"close: certificate path missing", f_close_no_cert, SKS_ERR_SESSION_VERIFY, "certificate", 0},
    {"close: import missing", f_close_import_missing, SKS_ERR_SESSION_VERIFY, "private key", 0},
    {"certificate not matching the key", f_cert_mismatch, SKS_ERR_CRYPTO, NULL, 0},
    {"second certificate path", f_second_cert, SKS_ERR_NOT_ALLOWED, NULL, 0},
    {"import not matching the certificate", f_import_cert_mismatch, SKS_ERR_CRYPTO, NULL, 0},
    {"import of the wrong algorithm", f_import_wrong_algorithm, SKS_ERR_ALGORITHM, NULL, 0},
    {"import of a non-key", f_import_garbage, SKS_ERR_CRYPTO, "PKCS#8", 0},
    {"second import", f_second_import, SKS_ERR_NOT_ALLOWED, NULL, 0},
    {"import into a generated key", f_import_into_generated, SKS_ERR_NOT_ALLOWED,
     "ImportPrivateKey", 0},
    {"bad ciphertext under a good MAC", f_bad_ciphertext, SKS_ERR_CRYPTO, "decrypt", 0},
    {"PIN too short", f_pin_short, SKS_ERR_OPTION, "length", 0},
    {"PIN too long", f_pin_long, SKS_ERR_OPTION, "length", 0},
    {"PIN not numeric", f_pin_format, SKS_ERR_OPTION, "format", 0},
    {"PIN two in a row", f_pin_two_in_a_row, SKS_ERR_OPTION, "two times", 0},
    {"PIN three in a row", f_pin_three_in_a_row, SKS_ERR_OPTION, "three times", 0},
    {"PIN sequence", f_pin_sequence, SKS_ERR_OPTION, "sequence", 0},
    {"PIN differs from its group", f_pin_differs_from_group, SKS_ERR_OPTION, "differs", 0},
    {"PINValue without a policy", f_pin_without_policy, SKS_ERR_OPTION, "empty", 0},
    {"KeyUsage 0", f_usage_zero, SKS_ERR_OPTION, "KeyUsage", 0},
    {"KeyUsage unknown bit", f_usage_unknown, SKS_ERR_OPTION, "KeyUsage", 0},
    {"unknown algorithm", f_algorithm_unknown, SKS_ERR_ALGORITHM, NULL, 0},
    {"Updatable key in a fixed session", f_updatable_key, SKS_ERR_NOT_ALLOWED, "Updatable", 0},
    {"DeleteProtected without PUK", f_delete_protected_without_puk, SKS_ERR_NOT_ALLOWED, "PUK", 0},
    {"backup of an imported key", f_backup_and_import, SKS_ERR_OPTION, NULL, 0},
    {"duplicate PUK ID", f_duplicate_puk_id, SKS_ERR_OPTION, "already", 0},
    {"duplicate PIN ID", f_duplicate_pin_id, SKS_ERR_OPTION, "already", 0},
    {"duplicate key ID", f_duplicate_key_id, SKS_ERR_OPTION, "already", 0},
    {"PUK format unknown", f_puk_format, SKS_ERR_OPTION, "format", 0},
    {"PUK value outside its format", f_puk_value_format, SKS_ERR_OPTION, "PUK", 0},
    {"PIN RetryLimit 0", f_pin_retry_zero, SKS_ERR_OPTION, "RetryLimit", 0},
    {"PIN MinLength > MaxLength", f_pin_min_above_max, SKS_ERR_OPTION, "MinLength", 0},
    {"PIN MaxLength 129", f_pin_max_129, SKS_ERR_OPTION, "MaxLength", 0},
    {"PIN MinLength 0", f_pin_min_zero, SKS_ERR_OPTION, "MinLength", 0},
    {"PIN format unknown", f_pin_format_unknown, SKS_ERR_OPTION, "format", 0},
    {"PIN grouping unknown", f_pin_grouping_unknown, SKS_ERR_OPTION, "Grouping", 0},
    {"PIN pattern bit unknown", f_pin_pattern_unknown, SKS_ERR_OPTION, "Pattern", 0},
    {"abortProvisioningSession", f_abort, SKS_OK, NULL, 0},
};

#define NFAILURES ((int)(sizeof failures / sizeof failures[0]))

START_TEST(test_failure_aborts_session)
{
    const failure_case *fc = &failures[_i];
    fixture t;
    fx_setup(&t, fc->v_limit);
    int st = fc->fn(&t);
    ck_assert_msg(st == fc->expect, "%s: expected %s, got %s (%s)", fc->name,
                  sks_status_name((uint8_t)fc->expect), sks_status_name((uint8_t)st), t.c->error);
    if (fc->message != NULL)
        ck_assert_msg(strstr(t.c->error, fc->message) != NULL, "%s: message \"%s\" lacks \"%s\"",
                      fc->name, t.c->error, fc->message);
    fx_assert_victim_gone(&t);
    fx_assert_bystander_ok(&t);
    fx_teardown(&t);
}
END_TEST

/* Calls that name no open session change nothing. */
START_TEST(test_unknown_and_closed_sessions)
{
    fixture t;
    fx_setup(&t, 0);
    sks_req_abort_session ab = {0x7FFFFFF0u};
    ck_assert_int_eq(tl_call(t.c, SKS_M_ABORT_PROVISIONING_SESSION, &ab, NULL, NULL),
                     SKS_ERR_NO_SESSION);
    /* A PIN policy handle is not a session handle. */
    ck_assert_int_eq(abort_session(t.c, t.v_pin), SKS_ERR_NO_SESSION);
    /* A call of V sent with an unknown session handle. */
    sks_issuer_msg m;
    sks_req_create_pin_policy req;
    sks_issuer_msg_init(&m);
    v_pin_request(&t, &m, &req);
    req.provisioning_handle = 0x7FFFFFF0u;
    ck_assert_int_eq(tl_call(t.c, SKS_M_CREATE_PIN_POLICY, &req, NULL, NULL), SKS_ERR_NO_SESSION);
    sks_issuer_msg_free(&m);

    /* B closes; then a call naming the closed B is NO_SESSION and B's key stays. */
    fx_assert_bystander_ok(&t);
    sks_issuer_pin_policy p = pin_policy("late", NULL, 0);
    ck_assert_int_eq(put_pin(t.c, t.b, &p, 0, NULL), SKS_ERR_NO_SESSION);
    ck_assert_int_eq(abort_session(t.c, t.b_session), SKS_ERR_NO_SESSION);
    sks_req_key_handle kh = {t.b_key};
    TL_OK(t.c, tl_call(t.c, SKS_M_GET_KEY_ATTRIBUTES, &kh, NULL, NULL));

    /* V was never touched: its counter still matches the issuer's (the
     * rejected call above took no counter value on the card). */
    sks_issuer_session_free(t.v);
    t.v = NULL;
    card_session_rec s;
    ck_assert_int_eq(card_store_session_get(t.c->card->store, t.v_session, &s), SKS_OK);
    ck_assert_uint_eq(s.state, CARD_SESSION_OPEN);
    ck_assert_uint_eq(s.mac_counter, 4);
    card_session_rec_free(&s);
    fx_teardown(&t);
}
END_TEST

START_TEST(test_oversize_uri)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *is = sks_issuer_session_new(SKS_SKALG_ECDH_P256, "https://a.example", NULL);
    sks_req_create_session req;
    ck_assert(sks_issuer_request(is, 0, 0, 60, &req) == 0);
    char uri[1026];
    memset(uri, 'u', sizeof uri);
    req.issuer_uri = (sks_view){(const uint8_t *)uri, 1025};
    ck_assert_int_eq(tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &req, NULL, NULL),
                     SKS_ERR_OPTION);
    ck_assert_ptr_nonnull(strstr(c->error, "IssuerURI"));
    /* 1024 is allowed. */
    req.issuer_uri = (sks_view){(const uint8_t *)uri, 1024};
    TL_OK(c, tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &req, NULL, NULL));
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/* createProvisioningSession's own argument checks. */
START_TEST(test_create_session_arguments)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *ec = sks_issuer_session_new(SKS_SKALG_ECDH_P256, "https://a.example", NULL);
    sks_req_create_session req;
    ck_assert(sks_issuer_request(ec, 0, 0, 60, &req) == 0);

    sks_req_create_session r = req;
    r.session_key_alg = 3;
    ck_assert_int_eq(tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &r, NULL, NULL),
                     SKS_ERR_ALGORITHM);
    r = req;
    r.session_key_alg = SKS_SKALG_RSA_OAEP_SHA256; /* with an EC key */
    ck_assert_int_eq(tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &r, NULL, NULL),
                     SKS_ERR_ALGORITHM);
    r = req;
    r.session_life_time = 0;
    ck_assert_int_eq(tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &r, NULL, NULL), SKS_ERR_OPTION);
    r = req;
    r.issuer_public_key.len--;
    ck_assert_int_eq(tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &r, NULL, NULL), SKS_ERR_CRYPTO);
    /* An EC key on P-384 does not fit ECDH P-256. */
    EVP_PKEY *p384 = ec_key("P-384");
    sks_writer spki;
    sks_writer_init(&spki);
    spki_of(p384, &spki);
    r = req;
    r.issuer_public_key = (sks_view){spki.buf, spki.len};
    ck_assert_int_eq(tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &r, NULL, NULL),
                     SKS_ERR_ALGORITHM);
    sks_writer_free(&spki);
    EVP_PKEY_free(p384);
    r = req;
    r.server_session_id.len = 31;
    ck_assert_int_eq(tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &r, NULL, NULL), SKS_ERR_OPTION);
    sks_issuer_session_free(ec);
    tl_card_free(c);
}
END_TEST

/* ---- Success paths ---------------------------------------------------- */

/* getKeyAttributes agrees with what was provisioned. */
static void check_attributes(tl_card *c, const tl_key *k, size_t i, uint8_t alg, uint8_t flags)
{
    sks_req_key_handle kh = {k->key[i]};
    sks_resp_get_key_attributes a;
    TL_OK(c, tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &a, NULL));
    char id[16];
    snprintf(id, sizeof id, "key%zu", i + 1);
    ck_assert(view_eq(a.id, (const uint8_t *)id, strlen(id)));
    ck_assert_uint_eq(a.algorithm, alg);
    ck_assert_uint_eq(a.flags, flags | SKS_KEYFLAG_COMPLETE);
    ck_assert_uint_eq(a.pin_policy_handle, k->pin_policy);
    ck_assert_uint_eq(a.provisioning_handle, k->session);
    sks_writer w;
    sks_writer_init(&w);
    spki_of(k->public_key[i], &w);
    ck_assert(view_eq(a.public_key, w.buf, w.len));
    sks_writer_reset(&w);
    ck_assert(sks_issuer_cert_der(k->cert[i], &w) == 0);
    ck_assert_uint_eq(a.certificate_path.count, 1);
    ck_assert(view_eq(a.certificate_path.cert[0], w.buf, w.len));
    sks_writer_free(&w);
}

typedef struct {
    uint8_t session_key_alg;
    uint8_t algorithm;
    uint8_t attestation_alg; /* device key: 0 = EC P-256 */
} combo;

static const combo combos[] = {
    {SKS_SKALG_ECDH_P256, SKS_KEYALG_EC_P256, 0},
    {SKS_SKALG_ECDH_P256, SKS_KEYALG_EC_P384, 0},
    {SKS_SKALG_ECDH_P256, SKS_KEYALG_RSA2048, 0},
    {SKS_SKALG_ECDH_P256, SKS_KEYALG_RSA3072, 0},
    {SKS_SKALG_RSA_OAEP_SHA256, SKS_KEYALG_EC_P256, 0},
    {SKS_SKALG_RSA_OAEP_SHA256, SKS_KEYALG_EC_P384, 0},
    {SKS_SKALG_RSA_OAEP_SHA256, SKS_KEYALG_RSA2048, 0},
    {SKS_SKALG_RSA_OAEP_SHA256, SKS_KEYALG_RSA3072, 0},
    {SKS_SKALG_ECDH_P256, SKS_KEYALG_EC_P256, SKS_KEYALG_RSA2048},
    {SKS_SKALG_RSA_OAEP_SHA256, SKS_KEYALG_RSA2048, SKS_KEYALG_RSA2048},
};

START_TEST(test_provision_algorithms)
{
    const combo *cb = &combos[_i];
    sks_card_init_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.attestation_alg = cb->attestation_alg;
    tl_card *c = tl_card_new_opts(&opts);
    tl_key_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.session_key_alg = cb->session_key_alg;
    spec.algorithm = cb->algorithm;
    spec.key_usage = SKS_USAGE_SIGN | SKS_USAGE_DECRYPT;
    spec.pin = "1357";
    spec.puk = "12345678";
    spec.friendly_name = "my key";
    tl_key k;
    tl_provision_key(c, &spec, &k);
    check_attributes(c, &k, 0, cb->algorithm, SKS_KEYFLAG_GENERATED_ON_CARD);
    ck_assert_uint_ne(k.puk_policy, 0);

    /* The key shows up in enumerateKeys. */
    sks_req_enumerate_keys er = {0};
    sks_resp_enumerate_keys e;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_KEYS, &er, &e, NULL));
    ck_assert_uint_eq(e.handles.len, 4);
    ck_assert_uint_eq(sks_be32_get(e.handles.ptr), k.key[0]);
    tl_key_free(&k);
    tl_card_free(c);
}
END_TEST

START_TEST(test_provision_rsa4096)
{
    tl_card *c = tl_card_new();
    tl_key_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.algorithm = SKS_KEYALG_RSA4096;
    spec.key_usage = SKS_USAGE_DECRYPT;
    tl_key k;
    tl_provision_key(c, &spec, &k);
    ck_assert_int_eq(EVP_PKEY_get_bits(k.public_key[0]), 4096);
    check_attributes(c, &k, 0, SKS_KEYALG_RSA4096, SKS_KEYFLAG_GENERATED_ON_CARD);
    tl_key_free(&k);
    tl_card_free(c);
}
END_TEST

/* importPrivateKey for every key algorithm but RSA-4096 (made by the issuer). */
static const uint8_t import_algs[] = {SKS_KEYALG_EC_P256, SKS_KEYALG_EC_P384, SKS_KEYALG_RSA2048,
                                      SKS_KEYALG_RSA3072};

START_TEST(test_import)
{
    tl_card *c = tl_card_new();
    tl_key_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.session_key_alg = _i % 2 ? SKS_SKALG_RSA_OAEP_SHA256 : SKS_SKALG_ECDH_P256;
    spec.algorithm = import_algs[_i];
    spec.flags = SKS_KEYFLAG_IMPORT_PRIVATE_KEY | SKS_KEYFLAG_MIGRATABLE;
    spec.pin = "2468";
    tl_key k;
    tl_provision_key(c, &spec, &k);
    ck_assert_int_eq(EVP_PKEY_eq(k.public_key[0], k.private_key[0]), 1);
    check_attributes(c, &k, 0, import_algs[_i],
                     SKS_KEYFLAG_IMPORT_PRIVATE_KEY | SKS_KEYFLAG_MIGRATABLE);
    tl_key_free(&k);
    tl_card_free(c);
}
END_TEST

/*
 * A key generated with PrivateKeyBackup: the issuer decrypts the backup,
 * then restores it into an ImportPrivateKey entry of a second session.
 */
START_TEST(test_backup_and_restore)
{
    tl_card *c = tl_card_new();
    tl_key_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.flags = SKS_KEYFLAG_PRIVATE_KEY_BACKUP;
    tl_key k;
    tl_provision_key(c, &spec, &k);
    ck_assert_ptr_nonnull(k.private_key[0]);
    ck_assert_int_eq(EVP_PKEY_eq(k.public_key[0], k.private_key[0]), 1);
    /* Backed up: not "generated on the card, never left it". */
    check_attributes(c, &k, 0, SKS_KEYALG_EC_P256, SKS_KEYFLAG_PRIVATE_KEY_BACKUP);

    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_RSA_OAEP_SHA256, 0, 0, 0);
    sks_issuer_key_spec ks = key_spec("restored", NULL, NULL);
    ks.import_private_key = 1;
    uint32_t h = 0;
    sks_writer pub;
    sks_writer_init(&pub);
    TL_OK(c, put_key(c, is, &ks, 0, &h, &pub, NULL));
    ck_assert_uint_eq(pub.len, 0); /* no public key until the import */
    TL_OK(c, put_private(c, is, SKS_M_RESTORE_PRIVATE_KEY, "restored", h, k.private_key[0]));
    spki_of(k.public_key[0], &pub);
    TL_OK(c, put_cert(c, is, "restored", h, (sks_view){pub.buf, pub.len}));
    TL_OK(c, tl_close_session(c, is));

    sks_req_key_handle kh = {h};
    sks_resp_get_key_attributes a;
    TL_OK(c, tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &a, NULL));
    ck_assert(view_eq(a.public_key, pub.buf, pub.len));
    ck_assert_uint_eq(a.flags, SKS_KEYFLAG_IMPORT_PRIVATE_KEY | SKS_KEYFLAG_COMPLETE);
    sks_writer_free(&pub);
    sks_issuer_session_free(is);
    tl_key_free(&k);
    tl_card_free(c);
}
END_TEST

/* Keys sharing a PIN policy, a user-defined PIN, patterns that allow the PIN. */
START_TEST(test_pin_policies)
{
    tl_card *c = tl_card_new();
    tl_key_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.key_count = 3;
    spec.pin = "ABC123";
    spec.pin_format = SKS_PIN_ALPHANUMERIC;
    spec.pin_user_defined = 1;
    spec.user_modifiable = 1;
    tl_key k;
    tl_provision_key(c, &spec, &k);
    for (size_t i = 0; i < 3; i++)
        check_attributes(c, &k, i, SKS_KEYALG_EC_P256, SKS_KEYFLAG_GENERATED_ON_CARD);
    /* The policy holds the PIN, set by the first key. */
    card_pin_rec p;
    ck_assert_int_eq(card_store_pin_get(c->card->store, k.pin_policy, &p), SKS_OK);
    ck_assert(view_eq(card_buf_view(&p.value), (const uint8_t *)"ABC123", 6));
    ck_assert_uint_eq(p.tries_left, 3);
    card_pin_rec_free(&p);
    tl_key_free(&k);

    /* Each pattern rule on its own lets through what the others forbid. */
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    static const struct {
        uint8_t patterns;
        const char *pin;
    } ok[] = {
        {SKS_PATTERN_THREE_IN_A_ROW, "1224"},
        {SKS_PATTERN_TWO_IN_A_ROW | SKS_PATTERN_THREE_IN_A_ROW, "1357"},
        {SKS_PATTERN_SEQUENCE, "1235"},
        {SKS_PATTERN_TWO_IN_A_ROW, "1234"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char pid[8], kid[8];
        snprintf(pid, sizeof pid, "p%zu", i);
        snprintf(kid, sizeof kid, "k%zu", i);
        uint32_t ph = 0;
        sks_issuer_pin_policy pp = pin_policy(pid, NULL, ok[i].patterns);
        TL_OK(c, put_pin(c, is, &pp, 0, &ph));
        sks_issuer_key_spec ks = key_spec(kid, pid, ok[i].pin);
        TL_OK(c, put_key(c, is, &ks, ph, NULL, NULL, NULL));
    }
    TL_OK(c, abort_session(c, sks_issuer_provisioning_handle(is)));
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/* UTF-8 and binary PIN formats. */
START_TEST(test_pin_formats)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    uint32_t h1 = 0, h2 = 0;
    sks_issuer_pin_policy p = pin_policy("utf8", NULL, 0);
    p.format = SKS_PIN_UTF8;
    TL_OK(c, put_pin(c, is, &p, 0, &h1));
    sks_issuer_key_spec k = key_spec("k1", "utf8", "p\xc3\xa4ss"); /* "päss" */
    TL_OK(c, put_key(c, is, &k, h1, NULL, NULL, NULL));
    p = pin_policy("bin", NULL, 0);
    p.format = SKS_PIN_BINARY;
    TL_OK(c, put_pin(c, is, &p, 0, &h2));
    k = key_spec("k2", "bin", "\x01\xff\x80\x7f");
    TL_OK(c, put_key(c, is, &k, h2, NULL, NULL, NULL));
    /* Invalid UTF-8 (a lone continuation byte) in a UTF-8 policy. */
    k = key_spec("k3", "utf8", "ab\x80z");
    ck_assert_int_eq(put_key(c, is, &k, h1, NULL, NULL, NULL), SKS_ERR_OPTION);
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/* A session survives a power cycle in the middle and can be completed. */
START_TEST(test_power_cycle_mid_session)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_RSA_OAEP_SHA256, 0, 0, 0);
    uint32_t puk = 0, pin = 0, key = 0;
    TL_OK(c, put_puk(c, is, "puk", "87654321", SKS_PIN_NUMERIC, &puk));
    tl_card_reopen(c);
    sks_issuer_pin_policy pp = pin_policy("pin", "puk", 0);
    TL_OK(c, put_pin(c, is, &pp, puk, &pin));
    sks_issuer_key_spec ks = key_spec("key", "pin", "1357");
    sks_writer pub;
    sks_writer_init(&pub);
    TL_OK(c, put_key(c, is, &ks, pin, &key, &pub, NULL));
    tl_card_reopen(c);
    TL_OK(c, put_cert(c, is, "key", key, (sks_view){pub.buf, pub.len}));
    tl_card_reopen(c);
    TL_OK(c, tl_close_session(c, is));
    sks_req_key_handle kh = {key};
    sks_resp_get_key_attributes a;
    TL_OK(c, tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &a, NULL));
    ck_assert_uint_eq(a.pin_policy_handle, pin);
    sks_writer_free(&pub);
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/* Calls may be prepared ahead as a batch (the issuer reserves the counters). */
START_TEST(test_batch_prepared)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    sks_issuer_msg m1, m2, m3;
    sks_req_create_puk_policy puk;
    sks_req_create_pin_policy pin;
    sks_req_create_key_pair key;
    sks_resp_create_puk_policy puk_r;
    sks_resp_create_pin_policy pin_r;
    sks_resp_create_key_pair key_r;
    sks_issuer_msg_init(&m1);
    sks_issuer_msg_init(&m2);
    sks_issuer_msg_init(&m3);
    /* The handles are wire-only; the batch sends the ones the card will assign. */
    ck_assert(sks_issuer_prepare_puk_policy(is, "puk", str_view("1234"), 0, 3, &m1, &puk) == 0);
    sks_issuer_pin_policy pp = pin_policy("pin", "puk", 0);
    ck_assert(sks_issuer_prepare_pin_policy(is, &pp, 0, &m2, &pin) == 0);
    sks_issuer_key_spec ks = key_spec("key", "pin", "1357");
    ck_assert(sks_issuer_prepare_key_pair(is, &ks, 0, &m3, &key) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_PUK_POLICY, &puk, &puk_r, NULL));
    pin.puk_policy_handle = puk_r.puk_policy_handle;
    TL_OK(c, tl_call(c, SKS_M_CREATE_PIN_POLICY, &pin, &pin_r, NULL));
    key.pin_policy_handle = pin_r.pin_policy_handle;
    sks_writer ans;
    sks_writer_init(&ans);
    TL_OK(c, tl_call(c, SKS_M_CREATE_KEY_PAIR, &key, &key_r, &ans));
    ck_assert_msg(sks_issuer_verify_key_attestation(is, &m3, &key_r) == 0, "%s",
                  sks_issuer_error(is));
    sks_writer_free(&ans);
    sks_issuer_msg_free(&m1);
    sks_issuer_msg_free(&m2);
    sks_issuer_msg_free(&m3);
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/* The card's limit on keys applies before any key is generated. */
START_TEST(test_max_keys)
{
    sks_card_init_opts opts;
    memset(&opts, 0, sizeof opts);
    opts.max_keys = 2;
    tl_card *c = tl_card_new_opts(&opts);
    tl_key k;
    tl_key_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.key_count = 2;
    tl_provision_key(c, &spec, &k);
    tl_key_free(&k);
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    sks_issuer_key_spec ks = key_spec("third", NULL, NULL);
    ck_assert_int_eq(put_key(c, is, &ks, 0, NULL, NULL, NULL), SKS_ERR_NOT_ALLOWED);
    ck_assert_ptr_nonnull(strstr(c->error, "maximum"));
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/* Handles are unique across kinds and never reused, even after an abort. */
START_TEST(test_handles_never_reused)
{
    tl_card *c = tl_card_new();
    uint32_t seen[16];
    size_t n = 0;
    for (int round = 0; round < 3; round++) {
        sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
        uint32_t puk = 0, pin = 0, key = 0;
        seen[n++] = sks_issuer_provisioning_handle(is);
        TL_OK(c, put_puk(c, is, "puk", "1234", 0, &puk));
        sks_issuer_pin_policy pp = pin_policy("pin", "puk", 0);
        TL_OK(c, put_pin(c, is, &pp, puk, &pin));
        sks_issuer_key_spec ks = key_spec("key", "pin", "1357");
        TL_OK(c, put_key(c, is, &ks, pin, &key, NULL, NULL));
        seen[n++] = puk;
        seen[n++] = pin;
        seen[n++] = key;
        TL_OK(c, abort_session(c, sks_issuer_provisioning_handle(is)));
        sks_issuer_session_free(is);
        tl_card_reopen(c);
    }
    for (size_t i = 1; i < n; i++)
        ck_assert_uint_gt(seen[i], seen[i - 1]);
    tl_card_free(c);
}
END_TEST

/* ---- The issuer rejects what it must -------------------------------- */

START_TEST(test_issuer_rejects)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *is = sks_issuer_session_new(SKS_SKALG_ECDH_P256, "https://i.example", NULL);
    sks_req_create_session req;
    sks_resp_create_session resp;
    sks_writer ans;
    sks_writer_init(&ans);
    ck_assert(sks_issuer_request(is, 0, 0, 60, &req) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &req, &resp, &ans));

    /* Not trusted: an empty store. */
    X509_STORE *empty = X509_STORE_new();
    ck_assert_int_eq(sks_issuer_accept(is, empty, &resp), -1);
    ck_assert_ptr_nonnull(strstr(sks_issuer_error(is), "path"));
    X509_STORE_free(empty);
    /* A signature bit flipped. */
    uint8_t *sig = (uint8_t *)resp.session_attestation.ptr;
    sig[resp.session_attestation.len / 2] ^= 0x10;
    ck_assert_int_eq(sks_issuer_accept(is, c->trusted, &resp), -1);
    sig[resp.session_attestation.len / 2] ^= 0x10;
    /* The untouched answer is accepted. */
    ck_assert_msg(sks_issuer_accept(is, c->trusted, &resp) == 0, "%s", sks_issuer_error(is));

    /* A key attestation with one bit flipped. */
    sks_issuer_msg m;
    sks_req_create_key_pair kreq;
    sks_resp_create_key_pair kresp;
    sks_issuer_msg_init(&m);
    sks_issuer_key_spec ks = key_spec("k", NULL, NULL);
    ck_assert(sks_issuer_prepare_key_pair(is, &ks, 0, &m, &kreq) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_KEY_PAIR, &kreq, &kresp, &ans));
    uint8_t *att = (uint8_t *)kresp.attested_public_key.ptr;
    att[0] ^= 1;
    ck_assert_int_eq(sks_issuer_verify_key_attestation(is, &m, &kresp), -1);
    att[0] ^= 1;
    ck_assert_int_eq(sks_issuer_verify_key_attestation(is, &m, &kresp), 0);
    sks_issuer_msg_free(&m);
    sks_writer_free(&ans);
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/*
 * The card's SK is the issuer's SK and the card keeps SK only while the
 * session is open (closed sessions hold zeros and NULL at rest).
 */
START_TEST(test_session_key_lifecycle)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    uint32_t h = sks_issuer_provisioning_handle(is);
    card_session_rec s;
    ck_assert_int_eq(card_store_session_get(c->card->store, h, &s), SKS_OK);
    ck_assert_mem_eq(s.sk, sks_issuer_session_key(is), SKS_SK_LEN);
    card_session_rec_free(&s);
    TL_OK(c, tl_close_session(c, is)); /* a session without keys may close */
    ck_assert_int_eq(card_store_session_get(c->card->store, h, &s), SKS_OK);
    ck_assert_uint_eq(s.state, CARD_SESSION_CLOSED);
    static const uint8_t zero[SKS_SK_LEN];
    ck_assert_mem_eq(s.sk, zero, SKS_SK_LEN);
    card_session_rec_free(&s);
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

/* ---- Policies across sessions (6.9) ------------------------------------ */

#define CONT_URI "https://issuer.example/continuity"

/* A session of the issuer holding `key` (a long-lived issuer key) under `uri`. */
static sks_issuer_session *issuer_session(tl_card *c, EVP_PKEY *key, const char *uri)
{
    sks_issuer_session *is = sks_issuer_session_new(SKS_SKALG_ECDH_P256, uri, key);
    sks_req_create_session req;
    sks_resp_create_session resp;
    ck_assert_ptr_nonnull(is);
    ck_assert(sks_issuer_request(is, 0, 0, 3600, &req) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &req, &resp, NULL));
    ck_assert_msg(sks_issuer_accept(is, c->trusted, &resp) == 0, "%s", sks_issuer_error(is));
    return is;
}

/* A later session that declares the earlier session's PUK "puk" and PIN policy `pp`. */
static sks_issuer_session *later_session(tl_card *c, EVP_PKEY *key, const char *uri,
                                         const sks_issuer_pin_policy *pp)
{
    sks_issuer_session *is = issuer_session(c, key, uri);
    ck_assert_msg(sks_issuer_declare_puk_policy(is, "puk", SKS_PIN_NUMERIC, 5) == 0, "%s",
                  sks_issuer_error(is));
    if (pp != NULL)
        ck_assert_msg(sks_issuer_declare_pin_policy(is, pp) == 0, "%s", sks_issuer_error(is));
    return is;
}

/* createKeyPair + setCertificatePath + close of a later session's one key. */
static int later_key(tl_card *c, sks_issuer_session *is, const sks_issuer_key_spec *ks,
                     uint32_t pin_handle, uint32_t *handle)
{
    sks_writer pub;
    sks_writer_init(&pub);
    int st = put_key(c, is, ks, pin_handle, handle, &pub, NULL);
    if (st == SKS_OK)
        st = put_cert(c, is, ks->id, *handle, (sks_view){pub.buf, pub.len});
    if (st == SKS_OK)
        st = tl_close_session(c, is);
    sks_writer_free(&pub);
    return st;
}

/*
 * The first session of issuer `ik` at CONT_URI, closed: PUK policy "puk"
 * (PUK 12345678), PIN policy `pp` under it, and key "a1" with PIN 1357.
 */
static void first_session(tl_card *c, EVP_PKEY *ik, const sks_issuer_pin_policy *pp, uint32_t *puk,
                          uint32_t *pin)
{
    uint32_t a1 = 0;
    sks_issuer_session *a = issuer_session(c, ik, CONT_URI);
    TL_OK(c, put_puk(c, a, "puk", "12345678", SKS_PIN_NUMERIC, puk));
    TL_OK(c, put_pin(c, a, pp, *puk, pin));
    sks_issuer_key_spec ks = key_spec("a1", pp->id, "1357");
    TL_OK(c, later_key(c, a, &ks, *pin, &a1));
    sks_issuer_session_free(a);
}

static int verify_pin_of(tl_card *c, uint32_t policy, const char *pin)
{
    sks_req_verify_pin req = {policy, str_view(pin)};
    return tl_call(c, SKS_M_VERIFY_PIN, &req, NULL, NULL);
}

/* The session is gone after a failed call (it was aborted). */
static void assert_aborted(tl_card *c, sks_issuer_session *is)
{
    ck_assert_int_eq(abort_session(c, sks_issuer_provisioning_handle(is)), SKS_ERR_NO_SESSION);
}

/*
 * The local-issuer flow of docs/protocol.md 6.9: session A of an issuer
 * creates a PUK and PIN policies; later sessions of the same issuer add
 * keys under them, with the PIN or with the PIN verified by the user, and
 * attestations the issuer verifies without knowing the PUK.
 */
START_TEST(test_cross_session_policies)
{
    tl_card *c = tl_card_new();
    EVP_PKEY *ik = ec_key("P-256");
    uint32_t puk = 0, pin = 0, unset = 0, a1 = 0, k = 0;
    sks_issuer_pin_policy pp = pin_policy("pin", "puk", 0);
    sks_issuer_pin_policy pu = pin_policy("unset", "puk", 0);

    /* Session A: PUK, PIN policy "pin" with key a1, PIN policy "unset" without keys. */
    sks_issuer_session *a = issuer_session(c, ik, CONT_URI);
    TL_OK(c, put_puk(c, a, "puk", "12345678", SKS_PIN_NUMERIC, &puk));
    TL_OK(c, put_pin(c, a, &pp, puk, &pin));
    TL_OK(c, put_pin(c, a, &pu, puk, &unset));
    sks_issuer_key_spec ka = key_spec("a1", "pin", "1357");
    TL_OK(c, later_key(c, a, &ka, pin, &a1));
    sks_issuer_session_free(a);

    /* B: the PIN given (encrypted); the attestation verifies; close counts B's key only. */
    sks_issuer_session *b = later_session(c, ik, CONT_URI, &pp);
    sks_issuer_key_spec kb = key_spec("b1", "pin", "1357");
    TL_OK(c, later_key(c, b, &kb, pin, &k));
    sks_req_key_handle kh = {k};
    sks_resp_get_key_attributes attrs;
    TL_OK(c, tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attrs, NULL));
    ck_assert_uint_eq(attrs.pin_policy_handle, pin);
    ck_assert_uint_eq(attrs.provisioning_handle, sks_issuer_provisioning_handle(b));
    ck_assert(attrs.flags & SKS_KEYFLAG_COMPLETE);
    sks_issuer_session_free(b);

    /* A PIN that differs from the policy's: OPTION, and the session is aborted. */
    b = later_session(c, ik, CONT_URI, &pp);
    kb = key_spec("b2", "pin", "2468");
    ck_assert_int_eq(put_key(c, b, &kb, pin, &k, NULL, NULL), SKS_ERR_OPTION);
    assert_aborted(c, b);
    sks_issuer_session_free(b);

    /* An empty PIN while the user has not logged in: NOT_AUTHENTICATED. */
    b = later_session(c, ik, CONT_URI, &pp);
    kb = key_spec("b3", "pin", NULL);
    ck_assert_int_eq(put_key(c, b, &kb, pin, &k, NULL, NULL), SKS_ERR_NOT_AUTHENTICATED);
    assert_aborted(c, b);
    sks_issuer_session_free(b);

    /* Logged in: an empty PIN stands for the policy's PIN. */
    TL_OK(c, verify_pin_of(c, pin, "1357"));
    b = later_session(c, ik, CONT_URI, &pp);
    kb = key_spec("b4", "pin", NULL);
    TL_OK(c, later_key(c, b, &kb, pin, &k));
    sks_issuer_session_free(b);

    /* A policy of an earlier session whose PIN is not set: NOT_ALLOWED ... */
    b = later_session(c, ik, CONT_URI, &pu);
    kb = key_spec("b5", "unset", "2580");
    ck_assert_int_eq(put_key(c, b, &kb, unset, &k, NULL, NULL), SKS_ERR_NOT_ALLOWED);
    assert_aborted(c, b);
    sks_issuer_session_free(b);
    /* ... until unlockPIN (the PUK) sets it; then the logged-in user adds keys. */
    sks_req_unlock_pin ul = {unset, str_view("12345678"), str_view("2580")};
    TL_OK(c, tl_call(c, SKS_M_UNLOCK_PIN, &ul, NULL, NULL));
    TL_OK(c, verify_pin_of(c, unset, "2580"));
    b = later_session(c, ik, CONT_URI, &pu);
    kb = key_spec("b6", "unset", NULL);
    TL_OK(c, later_key(c, b, &kb, unset, &k));
    sks_issuer_session_free(b);

    /* createPINPolicy with A's PUK; a DeleteProtected key under it. */
    b = later_session(c, ik, CONT_URI, NULL);
    sks_issuer_pin_policy p7 = pin_policy("pin7", "puk", 0);
    uint32_t pin7 = 0;
    TL_OK(c, put_pin(c, b, &p7, puk, &pin7));
    kb = key_spec("b7", "pin7", "9753");
    kb.delete_protected = 1;
    TL_OK(c, later_key(c, b, &kb, pin7, &k));
    sks_pin_policy_info info;
    memset(&info, 0, sizeof info);
    uint8_t none = 0;
    sks_resp_enumerate_pin_policies pols;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_PIN_POLICIES, &none, &pols, NULL));
    sks_reader r;
    sks_reader_init(&r, pols.policies.ptr, pols.policies.len);
    int found = 0;
    while (r.pos < r.len) {
        ck_assert_int_eq(sks_fields_read(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq,
                                         SKS_FF_WIRE, &r, &info, NULL),
                         SKS_OK);
        if (info.handle == pin7) {
            found = 1;
            ck_assert_uint_eq(info.puk_policy_handle, puk);
        }
    }
    ck_assert(found);
    sks_issuer_session_free(b);

    EVP_PKEY_free(ik);
    tl_card_free(c);
}
END_TEST

/* Only the same issuer (URI and key) may name another session's policy, and only a closed one. */
START_TEST(test_cross_session_other_issuers)
{
    tl_card *c = tl_card_new();
    EVP_PKEY *ik = ec_key("P-256"), *other = ec_key("P-256");
    uint32_t puk = 0, pin = 0, k = 0, open_pin = 0;
    sks_issuer_pin_policy pp = pin_policy("pin", "puk", 0);

    first_session(c, ik, &pp, &puk, &pin);

    /* Another key under the same URI; the same key under another URI. */
    sks_issuer_session *b = later_session(c, other, CONT_URI, &pp);
    sks_issuer_key_spec ks = key_spec("b1", "pin", "1357");
    ck_assert_int_eq(put_key(c, b, &ks, pin, &k, NULL, NULL), SKS_ERR_NO_POLICY);
    assert_aborted(c, b);
    sks_issuer_session_free(b);
    b = later_session(c, ik, "https://issuer.example/elsewhere", &pp);
    ck_assert_int_eq(put_key(c, b, &ks, pin, &k, NULL, NULL), SKS_ERR_NO_POLICY);
    assert_aborted(c, b);
    sks_issuer_session_free(b);
    /* createPINPolicy naming the PUK of another issuer. */
    b = later_session(c, other, CONT_URI, NULL);
    sks_issuer_pin_policy p2 = pin_policy("p2", "puk", 0);
    ck_assert_int_eq(put_pin(c, b, &p2, puk, NULL), SKS_ERR_NO_POLICY);
    assert_aborted(c, b);
    sks_issuer_session_free(b);

    /* A policy of the same issuer's session that is still open. */
    sks_issuer_session *open = issuer_session(c, ik, CONT_URI);
    sks_issuer_pin_policy po = pin_policy("openpin", NULL, 0);
    TL_OK(c, put_pin(c, open, &po, 0, &open_pin));
    b = issuer_session(c, ik, CONT_URI);
    ck_assert(sks_issuer_declare_pin_policy(b, &po) == 0);
    ks = key_spec("b2", "openpin", "1357");
    ck_assert_int_eq(put_key(c, b, &ks, open_pin, &k, NULL, NULL), SKS_ERR_NO_POLICY);
    assert_aborted(c, b);
    sks_issuer_session_free(b);
    /* The open session itself was not touched. */
    ks = key_spec("o1", "openpin", "1357");
    TL_OK(c, later_key(c, open, &ks, open_pin, &k));
    sks_issuer_session_free(open);

    EVP_PKEY_free(ik);
    EVP_PKEY_free(other);
    tl_card_free(c);
}
END_TEST

/* The issuer's declared policy must be the one the card holds, or the attestation fails. */
START_TEST(test_cross_session_attestation)
{
    tl_card *c = tl_card_new();
    EVP_PKEY *ik = ec_key("P-256");
    uint32_t puk = 0, pin = 0;
    sks_issuer_pin_policy pp = pin_policy("pin", "puk", 0);

    first_session(c, ik, &pp, &puk, &pin);

    /* Declared with another PIN RetryLimit: the card's attestation does not verify. */
    sks_issuer_pin_policy wrong = pp;
    wrong.retry_limit = 4;
    sks_issuer_session *b = later_session(c, ik, CONT_URI, &wrong);
    sks_issuer_key_spec ks = key_spec("b1", "pin", "1357");
    sks_issuer_msg m;
    sks_req_create_key_pair req;
    sks_resp_create_key_pair resp;
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_key_pair(b, &ks, pin, &m, &req) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_KEY_PAIR, &req, &resp, NULL));
    ck_assert_int_ne(sks_issuer_verify_key_attestation(b, &m, &resp), 0);
    ck_assert_ptr_nonnull(strstr(sks_issuer_error(b), "attestation"));
    sks_issuer_msg_free(&m);
    sks_issuer_session_free(b);

    /* Declaring the same ID twice, or a PIN policy with an undeclared PUK, fails. */
    b = issuer_session(c, ik, CONT_URI);
    ck_assert(sks_issuer_declare_puk_policy(b, "puk", SKS_PIN_NUMERIC, 5) == 0);
    ck_assert(sks_issuer_declare_puk_policy(b, "puk", SKS_PIN_NUMERIC, 5) != 0);
    sks_issuer_pin_policy bad = pin_policy("p", "nopuk", 0);
    ck_assert(sks_issuer_declare_pin_policy(b, &bad) != 0);
    ck_assert(sks_issuer_declare_pin_policy(b, &pp) == 0);
    ck_assert(sks_issuer_declare_pin_policy(b, &pp) != 0);
    sks_issuer_session_free(b);

    EVP_PKEY_free(ik);
    tl_card_free(c);
}
END_TEST

/* ---- A user-defined PIN is not MACed ------------------------------------ */

/*
 * The issuer does not know the user's PIN: it prepares createKeyPair
 * without one and the middleware puts the PIN the user chose into
 * PINValue. The MAC and the key attestation still verify.
 */
START_TEST(test_user_defined_pin_unknown_to_issuer)
{
    tl_card *c = tl_card_new();
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    sks_issuer_pin_policy pp = pin_policy("pin", NULL, 0);
    pp.user_defined = 1;
    uint32_t pin = 0, h[2];
    TL_OK(c, put_pin(c, is, &pp, 0, &pin));

    for (int i = 0; i < 2; i++) {
        sks_issuer_key_spec ks = key_spec(i == 0 ? "k1" : "k2", "pin", NULL);
        sks_issuer_msg m;
        sks_req_create_key_pair req;
        sks_resp_create_key_pair resp;
        sks_writer ans;
        sks_writer_init(&ans);
        sks_issuer_msg_init(&m);
        ck_assert(sks_issuer_prepare_key_pair(is, &ks, pin, &m, &req) == 0);
        ck_assert_uint_eq(req.pin_value.len, 0);
        req.pin_value = str_view("2580"); /* the middleware, from the user */
        TL_OK(c, tl_call(c, SKS_M_CREATE_KEY_PAIR, &req, &resp, &ans));
        ck_assert_msg(sks_issuer_verify_key_attestation(is, &m, &resp) == 0, "%s",
                      sks_issuer_error(is));
        h[i] = resp.key_handle;
        TL_OK(c, put_cert(c, is, ks.id, h[i], resp.public_key));
        sks_issuer_msg_free(&m);
        sks_writer_free(&ans);
    }
    TL_OK(c, tl_close_session(c, is));
    TL_OK(c, verify_pin_of(c, pin, "2580"));
    sks_issuer_session_free(is);

    /* A PIN the issuer sets (not UserDefined) stays bound by the MAC. */
    is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    sks_issuer_pin_policy fixed = pin_policy("fixed", NULL, 0);
    TL_OK(c, put_pin(c, is, &fixed, 0, &pin));
    sks_issuer_key_spec ks = key_spec("k3", "fixed", "1357");
    sks_issuer_msg m;
    sks_req_create_key_pair req;
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_key_pair(is, &ks, pin, &m, &req) == 0);
    uint8_t changed[SKS_ISSUER_VALUE_MAX];
    ck_assert_uint_gt(req.pin_value.len, 0);
    memcpy(changed, req.pin_value.ptr, req.pin_value.len);
    changed[req.pin_value.len - 1] ^= 0x01;
    req.pin_value.ptr = changed;
    ck_assert_int_eq(tl_call(c, SKS_M_CREATE_KEY_PAIR, &req, NULL, NULL), SKS_ERR_MAC);
    assert_aborted(c, is);
    sks_issuer_msg_free(&m);
    sks_issuer_session_free(is);
    tl_card_free(c);
}
END_TEST

static Suite *provision_suite(void)
{
    Suite *s = suite_create("provision");

    TCase *ok = tcase_create("success");
    tcase_set_timeout(ok, 300);
    tcase_add_loop_test(ok, test_provision_algorithms, 0, (int)(sizeof combos / sizeof combos[0]));
    tcase_add_test(ok, test_provision_rsa4096);
    tcase_add_loop_test(ok, test_import, 0, (int)sizeof import_algs);
    tcase_add_test(ok, test_backup_and_restore);
    tcase_add_test(ok, test_pin_policies);
    tcase_add_test(ok, test_pin_formats);
    tcase_add_test(ok, test_power_cycle_mid_session);
    tcase_add_test(ok, test_batch_prepared);
    tcase_add_test(ok, test_max_keys);
    tcase_add_test(ok, test_handles_never_reused);
    tcase_add_test(ok, test_session_key_lifecycle);
    tcase_add_test(ok, test_cross_session_policies);
    tcase_add_test(ok, test_cross_session_other_issuers);
    tcase_add_test(ok, test_cross_session_attestation);
    tcase_add_test(ok, test_user_defined_pin_unknown_to_issuer);
    suite_add_tcase(s, ok);

    TCase *bad = tcase_create("failures");
    tcase_set_timeout(bad, 120);
    tcase_add_loop_test(bad, test_failure_aborts_session, 0, NFAILURES);
    tcase_add_test(bad, test_unknown_and_closed_sessions);
    tcase_add_test(bad, test_oversize_uri);
    tcase_add_test(bad, test_create_session_arguments);
    tcase_add_test(bad, test_issuer_rejects);
    suite_add_tcase(s, bad);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(provision_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
