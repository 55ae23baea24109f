/*
 * test-store.c - the card's sealed transactional store (card_seal, card_store)
 * and its device state directory (card_device): records round-trip, secrets
 * never reach the file in the clear, sealed values are bound to their row,
 * handles are never reused, transactions are atomic even when the process
 * dies at any write, and a card directory is created and opened safely.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sqlite3.h>

#include "card/card_internal.h"
#include "card/card_seal.h"
#include "card/card_store.h"
#include "card/sks_card.h"

/* ---- Fixtures --------------------------------------------------------- */

static const uint8_t master_key[32] = {
    0x6b, 0x21, 0x9e, 0x03, 0x47, 0xd2, 0x88, 0x15, 0xc0, 0x3a, 0x71, 0x5f, 0x2e, 0x94, 0x0b, 0xe6,
    0x19, 0xa7, 0x53, 0xfd, 0x60, 0x8c, 0x34, 0xbb, 0x02, 0xef, 0x7d, 0x45, 0x9a, 0x11, 0xc8, 0x3f};

static char tmp_dir[64];
static char db_path[128];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    strcpy(tmp_dir, "/tmp/sks-test-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
    snprintf(db_path, sizeof db_path, "%s/card.db", tmp_dir);
}

static void teardown(void)
{
    nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static card_store *open_store(void)
{
    card_store *st = NULL;

    ck_assert_int_eq(card_store_open(&st, db_path, master_key), SKS_OK);
    ck_assert_ptr_nonnull(st);
    return st;
}

static void buf_set(card_buf *b, const char *s)
{
    ck_assert_int_eq(card_buf_set(b, s, strlen(s)), 0);
}

static void assert_buf_eq(const card_buf *b, const void *p, size_t n)
{
    ck_assert_uint_eq(b->len, n);
    if (n > 0)
        ck_assert_mem_eq(b->ptr, p, n);
}

static void make_session(card_session_rec *s, uint32_t handle, int state)
{
    memset(s, 0, sizeof *s);
    s->handle = handle;
    s->state = (uint8_t)state;
    s->session_key_alg = SKS_SKALG_ECDH_P256;
    for (int i = 0; i < SKS_SK_LEN; i++)
        s->sk[i] = (uint8_t)(0x40 + i);
    memset(s->client_session_id, 0xC1, sizeof s->client_session_id);
    memset(s->server_session_id, 0x5E, sizeof s->server_session_id);
    buf_set(&s->issuer_uri, "https://issuer.example/sks");
    buf_set(&s->issuer_public_key, "issuer-spki-bytes");
    s->updatable = 1;
    s->operations_left = 65535;
    s->expires = 0xFEDCBA9876543210ull; /* beyond INT64_MAX: must survive storage */
    s->mac_counter = 7;
}

static void make_puk(card_puk_rec *p, uint32_t handle, uint32_t session, const char *value)
{
    memset(p, 0, sizeof *p);
    p->handle = handle;
    p->session = session;
    memcpy(p->id, "puk", 3);
    p->id_len = 3;
    buf_set(&p->value, value);
    p->format = SKS_PIN_NUMERIC;
    p->retry_limit = 5;
    p->tries_left = 4;
}

static void make_pin(card_pin_rec *p, uint32_t handle, uint32_t session, const char *value)
{
    memset(p, 0, sizeof *p);
    p->handle = handle;
    p->session = session;
    memset(p->id, 'P', SKS_ID_MAX); /* longest ID */
    p->id_len = SKS_ID_MAX;
    p->puk_handle = 0;
    p->user_defined = 1;
    p->user_modifiable = 1;
    p->format = SKS_PIN_ALPHANUMERIC;
    p->retry_limit = 3;
    p->grouping = SKS_GROUPING_SHARED;
    p->pattern_restrictions = SKS_PATTERN_SEQUENCE | SKS_PATTERN_TWO_IN_A_ROW;
    p->min_length = 4;
    p->max_length = 8;
    p->caching_support = 1;
    p->input_method = 2;
    buf_set(&p->value, value);
    p->tries_left = 3;
}

static void make_key(card_key_rec *k, uint32_t handle, uint32_t session, uint8_t flags,
                     const char *private_key)
{
    memset(k, 0, sizeof *k);
    k->handle = handle;
    k->session = session;
    memcpy(k->id, "key-1", 5);
    k->id_len = 5;
    k->pin_policy = 0;
    k->flags = flags;
    k->usage = SKS_USAGE_SIGN | SKS_USAGE_DECRYPT;
    k->algorithm = SKS_KEYALG_EC_P256;
    buf_set(&k->friendly_name, "my signing key");
    buf_set(&k->public_key, "public-key-spki");
    buf_set(&k->private_key, private_key);
    /* A path of one 3-byte "certificate" (contains a zero byte). */
    ck_assert_int_eq(card_buf_set(&k->cert_path,
                                  "\x01\x00\x03"
                                  "abc",
                                  6),
                     0);
}

static void commit(card_store *st)
{
    ck_assert_int_eq(card_store_commit(st), 0);
}

/* Run one SQL statement against the database file, outside the store. */
static void raw_sql(const char *sql)
{
    sqlite3 *db = NULL;

    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql,
                  sqlite3_errmsg(db));
    sqlite3_close(db);
}

/* The whole file, for scanning its raw bytes. */
static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long len;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    ck_assert_int_gt(len, 0);
    rewind(f);
    data = malloc((size_t)len);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return data;
}

static int file_contains(const uint8_t *data, size_t n, const void *needle, size_t len)
{
    return memmem(data, n, needle, len) != NULL;
}

/* ---- card_seal -------------------------------------------------------- */

START_TEST(test_seal_roundtrip_and_tamper)
{
    static const char ad[] = "keys/private_key/17";
    uint8_t pt[] = "a private key in PKCS#8";
    uint8_t sealed[sizeof pt + CARD_SEAL_OVERHEAD], sealed2[sizeof sealed];
    uint8_t out[sizeof pt];
    uint8_t other_key[32];
    size_t n;

    ck_assert_int_eq(card_seal(master_key, ad, pt, sizeof pt, sealed), 0);
    ck_assert_int_eq(card_unseal(master_key, ad, sealed, sizeof sealed, out, &n), 0);
    ck_assert_uint_eq(n, sizeof pt);
    ck_assert_mem_eq(out, pt, sizeof pt);

    /* A fresh IV each time: sealing twice gives two different values. */
    ck_assert_int_eq(card_seal(master_key, ad, pt, sizeof pt, sealed2), 0);
    ck_assert_int_ne(memcmp(sealed, sealed2, sizeof sealed), 0);

    /* Another record's associated data, or another master key: refused. */
    ck_assert_int_eq(card_unseal(master_key, "keys/private_key/18", sealed, sizeof sealed, out, &n),
                     -1);
    ck_assert_int_eq(
        card_unseal(master_key, "pin_policies/value/17", sealed, sizeof sealed, out, &n), -1);
    memcpy(other_key, master_key, 32);
    other_key[31] ^= 1;
    ck_assert_int_eq(card_unseal(other_key, ad, sealed, sizeof sealed, out, &n), -1);

    /* Any flipped bit (IV, ciphertext or tag) is detected, and nothing leaks out. */
    for (size_t i = 0; i < sizeof sealed; i++) {
        uint8_t bad[sizeof sealed];

        memcpy(bad, sealed, sizeof bad);
        bad[i] ^= 0x04;
        memset(out, 0xAA, sizeof out);
        ck_assert_int_eq(card_unseal(master_key, ad, bad, sizeof bad, out, &n), -1);
        ck_assert_uint_eq(n, 0);
        for (size_t j = 0; j < sizeof out; j++)
            ck_assert_uint_eq(out[j], 0); /* zeroized, not a partial plaintext */
    }

    /* Truncated values. */
    ck_assert_int_eq(card_unseal(master_key, ad, sealed, sizeof sealed - 1, out, &n), -1);
    ck_assert_int_eq(card_unseal(master_key, ad, sealed, CARD_SEAL_OVERHEAD - 1, out, &n), -1);

    /* An empty value seals to the overhead alone and still authenticates. */
    ck_assert_int_eq(card_seal(master_key, ad, NULL, 0, sealed), 0);
    ck_assert_int_eq(card_unseal(master_key, ad, sealed, CARD_SEAL_OVERHEAD, out, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(card_unseal(master_key, "meta/x/0", sealed, CARD_SEAL_OVERHEAD, out, &n), -1);
}
END_TEST

/*
 * An independently made sealed value. Computed with Python's cryptography
 * package:
 *   AESGCM(bytes(range(32))).encrypt(bytes(range(0xa0, 0xac)),
 *                                    b"sealed secret", b"keys/private_key/17")
 * prefixed with the IV: the layout IV | ciphertext | tag.
 */
START_TEST(test_seal_known_vector)
{
    static const uint8_t sealed[] = {
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0x95, 0x7d,
        0x1d, 0x41, 0x20, 0xaf, 0x22, 0xcc, 0x07, 0x06, 0xf5, 0xb6, 0x73, 0xf7, 0xc4, 0xf4,
        0x36, 0x86, 0x34, 0xd8, 0xce, 0x06, 0x1f, 0x74, 0x6d, 0x08, 0x8c, 0x7d, 0xf4};
    uint8_t key[32], out[sizeof sealed];
    size_t n;

    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    ck_assert_int_eq(card_unseal(key, "keys/private_key/17", sealed, sizeof sealed, out, &n), 0);
    ck_assert_uint_eq(n, 13);
    ck_assert_mem_eq(out, "sealed secret", 13);
    ck_assert_int_eq(card_unseal(key, "keys/private_key/1", sealed, sizeof sealed, out, &n), -1);
}
END_TEST

/* ---- Records ---------------------------------------------------------- */

START_TEST(test_meta_roundtrip)
{
    card_store *st = open_store();
    card_buf b = {NULL, 0};

    ck_assert_int_eq(card_store_meta_get(st, "absent", &b, 0), -1);
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_meta_put(st, "plain", "abc", 3, 0), SKS_OK);
    ck_assert_int_eq(card_store_meta_put(st, "secret", "xyz!", 4, 1), SKS_OK);
    ck_assert_int_eq(card_store_meta_put(st, "empty", "", 0, 0), SKS_OK);
    commit(st);
    card_store_close(st);

    st = open_store();
    ck_assert_int_eq(card_store_meta_get(st, "plain", &b, 0), 0);
    assert_buf_eq(&b, "abc", 3);
    card_buf_free(&b);
    ck_assert_int_eq(card_store_meta_get(st, "secret", &b, 1), 0);
    assert_buf_eq(&b, "xyz!", 4);
    card_buf_free(&b);
    ck_assert_int_eq(card_store_meta_get(st, "empty", &b, 0), 0);
    ck_assert_uint_eq(b.len, 0);
    card_buf_free(&b);
    /* Asking for a value the other way than it was stored is an error, not a value. */
    ck_assert_int_eq(card_store_meta_get(st, "secret", &b, 0), SKS_ERR_INTERNAL);
    ck_assert_ptr_null(b.ptr);
    ck_assert_int_eq(card_store_meta_get(st, "plain", &b, 1), SKS_ERR_INTERNAL);
    /* Replacing a value. */
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_meta_put(st, "plain", "defg", 4, 0), SKS_OK);
    commit(st);
    ck_assert_int_eq(card_store_meta_get(st, "plain", &b, 0), 0);
    assert_buf_eq(&b, "defg", 4);
    card_buf_free(&b);
    card_store_close(st);
}
END_TEST

START_TEST(test_session_roundtrip)
{
    card_store *st = open_store();
    card_session_rec in, closed, out;
    uint8_t zero[SKS_SK_LEN] = {0};

    make_session(&in, 10, CARD_SESSION_OPEN);
    make_session(&closed, 11, CARD_SESSION_CLOSED);
    closed.expires = 1234;
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_session_put(st, &in), SKS_OK);
    ck_assert_int_eq(card_store_session_put(st, &closed), SKS_OK);
    commit(st);
    card_store_close(st);

    st = open_store();
    ck_assert_int_eq(card_store_session_get(st, 10, &out), SKS_OK);
    ck_assert_uint_eq(out.handle, 10);
    ck_assert_uint_eq(out.state, CARD_SESSION_OPEN);
    ck_assert_uint_eq(out.session_key_alg, SKS_SKALG_ECDH_P256);
    ck_assert_mem_eq(out.sk, in.sk, SKS_SK_LEN);
    ck_assert_mem_eq(out.client_session_id, in.client_session_id, SKS_SESSION_ID_LEN);
    ck_assert_mem_eq(out.server_session_id, in.server_session_id, SKS_SESSION_ID_LEN);
    assert_buf_eq(&out.issuer_uri, in.issuer_uri.ptr, in.issuer_uri.len);
    assert_buf_eq(&out.issuer_public_key, in.issuer_public_key.ptr, in.issuer_public_key.len);
    ck_assert_uint_eq(out.updatable, 1);
    ck_assert_uint_eq(out.operations_left, 65535);
    ck_assert(out.expires == 0xFEDCBA9876543210ull);
    ck_assert_uint_eq(out.mac_counter, 7);
    card_session_rec_free(&out);

    /* A closed session has no SK any more, on disk or in the record. */
    ck_assert_int_eq(card_store_session_get(st, 11, &out), SKS_OK);
    ck_assert_uint_eq(out.state, CARD_SESSION_CLOSED);
    ck_assert_mem_eq(out.sk, zero, SKS_SK_LEN);
    ck_assert(out.expires == 1234);
    card_session_rec_free(&out);

    /* Closing an open session erases its SK. */
    in.state = CARD_SESSION_CLOSED;
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_session_put(st, &in), SKS_OK);
    commit(st);
    ck_assert_int_eq(card_store_session_get(st, 10, &out), SKS_OK);
    ck_assert_mem_eq(out.sk, zero, SKS_SK_LEN);
    card_session_rec_free(&out);

    ck_assert_int_eq(card_store_session_get(st, 12, &out), SKS_ERR_NO_SESSION);
    card_session_rec_free(&in);
    card_session_rec_free(&closed);
    card_store_close(st);
}
END_TEST

START_TEST(test_policy_roundtrip)
{
    card_store *st = open_store();
    card_puk_rec puk, puk_out;
    card_pin_rec pin, pin_out;

    make_puk(&puk, 20, 10, "12345678");
    make_pin(&pin, 21, 10, "");
    pin.puk_handle = 20;
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_puk_put(st, &puk), SKS_OK);
    ck_assert_int_eq(card_store_pin_put(st, &pin), SKS_OK);
    commit(st);
    card_store_close(st);

    st = open_store();
    ck_assert_int_eq(card_store_puk_get(st, 20, &puk_out), SKS_OK);
    ck_assert_uint_eq(puk_out.handle, 20);
    ck_assert_uint_eq(puk_out.session, 10);
    ck_assert_uint_eq(puk_out.id_len, 3);
    ck_assert_mem_eq(puk_out.id, "puk", 3);
    assert_buf_eq(&puk_out.value, "12345678", 8);
    ck_assert_uint_eq(puk_out.format, SKS_PIN_NUMERIC);
    ck_assert_uint_eq(puk_out.retry_limit, 5);
    ck_assert_uint_eq(puk_out.tries_left, 4);
    card_puk_rec_free(&puk_out);

    /* A PIN policy whose PIN is not set yet: an empty (but sealed) value. */
    ck_assert_int_eq(card_store_pin_get(st, 21, &pin_out), SKS_OK);
    ck_assert_uint_eq(pin_out.handle, 21);
    ck_assert_uint_eq(pin_out.session, 10);
    ck_assert_uint_eq(pin_out.id_len, SKS_ID_MAX);
    ck_assert_mem_eq(pin_out.id, pin.id, SKS_ID_MAX);
    ck_assert_uint_eq(pin_out.puk_handle, 20);
    ck_assert_uint_eq(pin_out.user_defined, 1);
    ck_assert_uint_eq(pin_out.user_modifiable, 1);
    ck_assert_uint_eq(pin_out.format, SKS_PIN_ALPHANUMERIC);
    ck_assert_uint_eq(pin_out.retry_limit, 3);
    ck_assert_uint_eq(pin_out.grouping, SKS_GROUPING_SHARED);
    ck_assert_uint_eq(pin_out.pattern_restrictions,
                      SKS_PATTERN_SEQUENCE | SKS_PATTERN_TWO_IN_A_ROW);
    ck_assert_uint_eq(pin_out.min_length, 4);
    ck_assert_uint_eq(pin_out.max_length, 8);
    ck_assert_uint_eq(pin_out.caching_support, 1);
    ck_assert_uint_eq(pin_out.input_method, 2);
    ck_assert_uint_eq(pin_out.value.len, 0);
    ck_assert_uint_eq(pin_out.tries_left, 3);
    card_pin_rec_free(&pin_out);

    /* The first key sets the PIN; a wrong guess takes a try. */
    buf_set(&pin.value, "s3cr3t");
    pin.tries_left = 2;
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_pin_put(st, &pin), SKS_OK);
    commit(st);
    ck_assert_int_eq(card_store_pin_get(st, 21, &pin_out), SKS_OK);
    assert_buf_eq(&pin_out.value, "s3cr3t", 6);
    ck_assert_uint_eq(pin_out.tries_left, 2);
    card_pin_rec_free(&pin_out);

    ck_assert_int_eq(card_store_puk_get(st, 21, &puk_out), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(card_store_pin_get(st, 20, &pin_out), SKS_ERR_NO_POLICY);
    card_puk_rec_free(&puk);
    card_pin_rec_free(&pin);
    card_store_close(st);
}
END_TEST

START_TEST(test_key_roundtrip)
{
    card_store *st = open_store();
    card_key_rec k, empty, out;

    make_key(&k, 30, 10, SKS_KEYFLAG_COMPLETE | SKS_KEYFLAG_GENERATED_ON_CARD, "pkcs8-bytes");
    k.pin_policy = 21;
    /* A key awaiting import: no public key, private key or certificate yet. */
    make_key(&empty, 31, 10, SKS_KEYFLAG_IMPORT_PRIVATE_KEY, "");
    card_buf_free(&empty.public_key);
    card_buf_free(&empty.cert_path);
    card_buf_free(&empty.friendly_name);
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_key_put(st, &k), SKS_OK);
    ck_assert_int_eq(card_store_key_put(st, &empty), SKS_OK);
    commit(st);
    card_store_close(st);

    st = open_store();
    ck_assert_int_eq(card_store_key_get(st, 30, &out), SKS_OK);
    ck_assert_uint_eq(out.handle, 30);
    ck_assert_uint_eq(out.session, 10);
    ck_assert_uint_eq(out.id_len, 5);
    ck_assert_mem_eq(out.id, "key-1", 5);
    ck_assert_uint_eq(out.pin_policy, 21);
    ck_assert_uint_eq(out.flags, SKS_KEYFLAG_COMPLETE | SKS_KEYFLAG_GENERATED_ON_CARD);
    ck_assert_uint_eq(out.usage, SKS_USAGE_SIGN | SKS_USAGE_DECRYPT);
    ck_assert_uint_eq(out.algorithm, SKS_KEYALG_EC_P256);
    assert_buf_eq(&out.friendly_name, "my signing key", 14);
    assert_buf_eq(&out.public_key, "public-key-spki", 15);
    assert_buf_eq(&out.private_key, "pkcs8-bytes", 11);
    assert_buf_eq(&out.cert_path,
                  "\x01\x00\x03"
                  "abc",
                  6);
    card_key_rec_free(&out);

    ck_assert_int_eq(card_store_key_get(st, 31, &out), SKS_OK);
    ck_assert_uint_eq(out.flags, SKS_KEYFLAG_IMPORT_PRIVATE_KEY);
    ck_assert_uint_eq(out.public_key.len, 0);
    ck_assert_uint_eq(out.private_key.len, 0);
    ck_assert_uint_eq(out.cert_path.len, 0);
    ck_assert_uint_eq(out.friendly_name.len, 0);
    card_key_rec_free(&out);

    ck_assert_int_eq(card_store_key_get(st, 32, &out), SKS_ERR_NO_KEY);
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_key_delete(st, 31), SKS_OK);
    ck_assert_int_eq(card_store_key_delete(st, 31), SKS_ERR_NO_KEY);
    commit(st);
    ck_assert_int_eq(card_store_key_get(st, 31, &out), SKS_ERR_NO_KEY);
    card_key_rec_free(&k);
    card_key_rec_free(&empty);
    card_store_close(st);
}
END_TEST

/* ---- Sealing in the file ---------------------------------------------- */

START_TEST(test_secrets_not_in_file)
{
    static const char sk_marker[] = "SK-MARKER-SK-MARKER-SK-MARKER-32";
    static const char pin_marker[] = "PIN-VALUE-MARKER-4711";
    static const char puk_marker[] = "PUK-VALUE-MARKER-0815";
    static const char priv_marker[] = "PRIVATE-KEY-MARKER-PKCS8-DER";
    static const char meta_marker[] = "META-SEALED-MARKER-ATTESTATION";
    static const char plain_marker[] = "FRIENDLY-NAME-MARKER-PLAIN";
    card_store *st = open_store();
    card_session_rec s;
    card_puk_rec puk;
    card_pin_rec pin;
    card_key_rec k;
    uint8_t *data;
    size_t n;
    char journal[160];

    make_session(&s, 1, CARD_SESSION_OPEN);
    memcpy(s.sk, sk_marker, SKS_SK_LEN);
    make_puk(&puk, 2, 1, puk_marker);
    make_pin(&pin, 3, 1, pin_marker);
    make_key(&k, 4, 1, 0, priv_marker);
    buf_set(&k.friendly_name, plain_marker);
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_session_put(st, &s), SKS_OK);
    ck_assert_int_eq(card_store_puk_put(st, &puk), SKS_OK);
    ck_assert_int_eq(card_store_pin_put(st, &pin), SKS_OK);
    ck_assert_int_eq(card_store_key_put(st, &k), SKS_OK);
    ck_assert_int_eq(
        card_store_meta_put(st, "attestation_key", meta_marker, strlen(meta_marker), 1), SKS_OK);
    commit(st);
    card_store_close(st);

    snprintf(journal, sizeof journal, "%s-journal", db_path);
    /*
     * Committed by truncating the journal (journal_mode=TRUNCATE, flushed by
     * synchronous=FULL; protocol.md section 8): the file stays, empty.
     */
    struct stat jst;
    ck_assert_int_eq(stat(journal, &jst), 0);
    ck_assert_int_eq(jst.st_size, 0);
    data = read_file(db_path, &n);
    /* The scan works: a plain column is found... */
    ck_assert(file_contains(data, n, plain_marker, strlen(plain_marker)));
    /* ...and no sealed one is, not even a part of it. */
    ck_assert(!file_contains(data, n, sk_marker, 12));
    ck_assert(!file_contains(data, n, pin_marker, 12));
    ck_assert(!file_contains(data, n, puk_marker, 12));
    ck_assert(!file_contains(data, n, priv_marker, 12));
    ck_assert(!file_contains(data, n, meta_marker, 12));
    free(data);

    /* And the store still opens them. */
    st = open_store();
    card_key_rec_free(&k);
    ck_assert_int_eq(card_store_key_get(st, 4, &k), SKS_OK);
    assert_buf_eq(&k.private_key, priv_marker, strlen(priv_marker));
    card_store_close(st);
    card_session_rec_free(&s);
    card_puk_rec_free(&puk);
    card_pin_rec_free(&pin);
    card_key_rec_free(&k);
}
END_TEST

START_TEST(test_sealed_value_bound_to_row)
{
    card_store *st = open_store();
    card_session_rec s;
    card_pin_rec pin;
    card_key_rec a, b, out;
    card_pin_rec pin_out;
    card_session_rec s_out;

    make_key(&a, 40, 1, 0, "private key of A");
    make_key(&b, 41, 1, 0, "private key of B");
    make_pin(&pin, 42, 1, "1234");
    make_session(&s, 1, CARD_SESSION_OPEN);
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_key_put(st, &a), SKS_OK);
    ck_assert_int_eq(card_store_key_put(st, &b), SKS_OK);
    ck_assert_int_eq(card_store_pin_put(st, &pin), SKS_OK);
    ck_assert_int_eq(card_store_session_put(st, &s), SKS_OK);
    commit(st);

    /* B's sealed private key copied into A's row no longer opens there. */
    raw_sql("UPDATE keys SET private_key = (SELECT private_key FROM keys WHERE handle = 41)"
            " WHERE handle = 40");
    ck_assert_int_eq(card_store_key_get(st, 40, &out), SKS_ERR_INTERNAL);
    ck_assert_ptr_null(out.private_key.ptr);
    ck_assert_int_eq(card_store_key_get(st, 41, &out), SKS_OK);
    assert_buf_eq(&out.private_key, "private key of B", 16);
    card_key_rec_free(&out);

    /* A sealed value moved to another column (PIN value <- private key) fails too. */
    raw_sql("UPDATE pin_policies SET value = (SELECT private_key FROM keys WHERE handle = 41)");
    ck_assert_int_eq(card_store_pin_get(st, 42, &pin_out), SKS_ERR_INTERNAL);

    /* A modified byte in a sealed SK. */
    raw_sql("UPDATE sessions SET sk = CAST(zeroblob(60) AS BLOB)");
    ck_assert_int_eq(card_store_session_get(st, 1, &s_out), SKS_ERR_INTERNAL);
    /* An open session without its SK. */
    raw_sql("UPDATE sessions SET sk = NULL");
    ck_assert_int_eq(card_store_session_get(st, 1, &s_out), SKS_ERR_INTERNAL);
    /* A column of the wrong type. */
    raw_sql("UPDATE keys SET flags = 'x' WHERE handle = 41");
    ck_assert_int_eq(card_store_key_get(st, 41, &out), SKS_ERR_INTERNAL);

    card_store_close(st);
    card_key_rec_free(&a);
    card_key_rec_free(&b);
    card_pin_rec_free(&pin);
    card_session_rec_free(&s);
}
END_TEST

/* ---- Handles, purge, rollback, lists ---------------------------------- */

START_TEST(test_handles_unique_never_reused)
{
    card_store *st = open_store();
    uint32_t h[6], again;
    card_key_rec k;

    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(card_store_next_handle(st, &h[i]), SKS_OK);
        ck_assert_uint_ne(h[i], SKS_HANDLE_NONE);
        ck_assert_uint_ne(h[i], SKS_HANDLE_DEVICE);
        if (i > 0)
            ck_assert_uint_gt(h[i], h[i - 1]);
        make_key(&k, h[i], 1, SKS_KEYFLAG_COMPLETE, "pk");
        ck_assert_int_eq(card_store_key_put(st, &k), SKS_OK);
        card_key_rec_free(&k);
    }
    commit(st);

    /* Delete every key, the newest included, and reopen: no handle comes back. */
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(card_store_key_delete(st, h[i]), SKS_OK);
    commit(st);
    card_store_close(st);
    st = open_store();
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_next_handle(st, &again), SKS_OK);
    commit(st);
    ck_assert_uint_gt(again, h[5]);
    card_store_close(st);
}
END_TEST

/* Session `s` with a PUK policy, a PIN policy and two keys: handles s+1..s+4. */
static void put_session_objects(card_store *st, uint32_t s, int state)
{
    card_session_rec rs;
    card_puk_rec puk;
    card_pin_rec pin;
    card_key_rec k;

    make_session(&rs, s, state);
    ck_assert_int_eq(card_store_session_put(st, &rs), SKS_OK);
    make_puk(&puk, s + 1, s, "puk");
    ck_assert_int_eq(card_store_puk_put(st, &puk), SKS_OK);
    make_pin(&pin, s + 2, s, "pin");
    ck_assert_int_eq(card_store_pin_put(st, &pin), SKS_OK);
    for (uint32_t i = 3; i <= 4; i++) {
        make_key(&k, s + i, s, state == CARD_SESSION_CLOSED ? SKS_KEYFLAG_COMPLETE : 0, "pk");
        ck_assert_int_eq(card_store_key_put(st, &k), SKS_OK);
        card_key_rec_free(&k);
    }
    card_session_rec_free(&rs);
    card_puk_rec_free(&puk);
    card_pin_rec_free(&pin);
}

/* 1 if every object of session `s` exists, 0 if none does (anything else fails). */
static int session_objects_present(card_store *st, uint32_t s)
{
    card_session_rec rs;
    card_puk_rec puk;
    card_pin_rec pin;
    card_key_rec k;
    int found = 0;

    if (card_store_session_get(st, s, &rs) == SKS_OK)
        found++;
    if (card_store_puk_get(st, s + 1, &puk) == SKS_OK)
        found++;
    if (card_store_pin_get(st, s + 2, &pin) == SKS_OK)
        found++;
    for (uint32_t i = 3; i <= 4; i++) {
        if (card_store_key_get(st, s + i, &k) == SKS_OK)
            found++;
        card_key_rec_free(&k);
    }
    card_session_rec_free(&rs);
    card_puk_rec_free(&puk);
    card_pin_rec_free(&pin);
    ck_assert_msg(found == 0 || found == 5, "session %u: %d of 5 objects", s, found);
    return found == 5;
}

START_TEST(test_purge_one_session)
{
    card_store *st = open_store();
    uint32_t *keys;
    size_t n;

    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    put_session_objects(st, 100, CARD_SESSION_OPEN);
    put_session_objects(st, 200, CARD_SESSION_OPEN);
    put_session_objects(st, 300, CARD_SESSION_CLOSED);
    commit(st);

    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_session_purge(st, 200), SKS_OK);
    commit(st);
    ck_assert(session_objects_present(st, 100));
    ck_assert(!session_objects_present(st, 200));
    ck_assert(session_objects_present(st, 300));

    ck_assert_int_eq(card_store_session_keys(st, 200, &keys, &n), SKS_OK);
    ck_assert_uint_eq(n, 0);
    free(keys);
    ck_assert_int_eq(card_store_session_keys(st, 100, &keys, &n), SKS_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(keys[0], 103);
    ck_assert_uint_eq(keys[1], 104);
    free(keys);
    card_store_close(st);
}
END_TEST

START_TEST(test_rollback_leaves_nothing)
{
    card_store *st = open_store();
    uint32_t h, h2, count;
    card_buf b = {NULL, 0};

    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_next_handle(st, &h), SKS_OK);
    put_session_objects(st, 500, CARD_SESSION_CLOSED);
    ck_assert_int_eq(card_store_meta_put(st, "temp", "x", 1, 0), SKS_OK);
    ck_assert(session_objects_present(st, 500)); /* visible inside the transaction */
    card_store_rollback(st);

    ck_assert(!session_objects_present(st, 500));
    ck_assert_int_eq(card_store_meta_get(st, "temp", &b, 0), -1);
    ck_assert_int_eq(card_store_key_count(st, &count), SKS_OK);
    ck_assert_uint_eq(count, 0);
    /* The handle counter went back with the rest (no object ever held h). */
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_next_handle(st, &h2), SKS_OK);
    ck_assert_uint_eq(h2, h);
    /* Closing the store inside a transaction rolls it back too. */
    put_session_objects(st, 600, CARD_SESSION_CLOSED);
    card_store_close(st);
    st = open_store();
    ck_assert(!session_objects_present(st, 600));
    card_store_close(st);
}
END_TEST

START_TEST(test_key_and_pin_lists)
{
    card_store *st = open_store();
    uint32_t page[3], count, *pins;
    size_t n;
    int more;

    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    put_session_objects(st, 10, CARD_SESSION_CLOSED); /* keys 13, 14 complete */
    put_session_objects(st, 20, CARD_SESSION_OPEN);   /* keys 23, 24 not yet */
    put_session_objects(st, 30, CARD_SESSION_CLOSED); /* keys 33, 34 complete */
    commit(st);

    ck_assert_int_eq(card_store_key_count(st, &count), SKS_OK);
    ck_assert_uint_eq(count, 6);

    ck_assert_int_eq(card_store_key_list(st, 0, page, 3, &n, &more), SKS_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(page[0], 13);
    ck_assert_uint_eq(page[1], 14);
    ck_assert_uint_eq(page[2], 33);
    ck_assert_int_eq(more, 1);
    ck_assert_int_eq(card_store_key_list(st, 33, page, 3, &n, &more), SKS_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(page[0], 34);
    ck_assert_int_eq(more, 0);
    /* A page exactly as long as what is left: no "more". */
    ck_assert_int_eq(card_store_key_list(st, 14, page, 2, &n, &more), SKS_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(more, 0);
    ck_assert_int_eq(card_store_key_list(st, 34, page, 3, &n, &more), SKS_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(more, 0);

    ck_assert_int_eq(card_store_pin_list(st, &pins, &n), SKS_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(pins[0], 12);
    ck_assert_uint_eq(pins[1], 32);
    free(pins);
    card_store_close(st);
}
END_TEST

/* ---- Crash injection -------------------------------------------------- */

/*
 * Old state: closed session 1 with PUK 2, PIN 3 (tries 3), keys 4 and 5;
 * next handle 6. New state (one transaction, many writes): session 6 and its
 * objects 7..10 added, key 4 deleted, PIN 3 at tries 2.
 */
static void crash_old_state(void)
{
    card_store *st = open_store();
    uint32_t h;

    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(card_store_next_handle(st, &h), SKS_OK);
    put_session_objects(st, 1, CARD_SESSION_CLOSED);
    commit(st);
    card_store_close(st);
}

/* The child: run the new-state transaction, dying at write number `k`. */
static void crash_child(long k)
{
    card_store *st = NULL;
    card_pin_rec pin;
    uint32_t h;

    if (card_store_open(&st, db_path, master_key) != SKS_OK)
        _exit(3);
    card_store_set_crash_after(st, k);
    if (card_store_begin(st) != SKS_OK)
        _exit(4);
    for (int i = 0; i < 5; i++)
        if (card_store_next_handle(st, &h) != SKS_OK)
            _exit(5);
    put_session_objects(st, 6, CARD_SESSION_OPEN);
    if (card_store_key_delete(st, 4) != SKS_OK || card_store_pin_get(st, 3, &pin) != SKS_OK)
        _exit(6);
    pin.tries_left = 2;
    if (card_store_pin_put(st, &pin) != SKS_OK)
        _exit(7);
    card_pin_rec_free(&pin);
    if (card_store_commit(st) != 0)
        _exit(8);
    card_store_close(st);
    _exit(0);
}

/* 0: the old state, 1: the complete new state; anything else fails. */
static int crash_state(void)
{
    card_store *st = open_store();
    card_pin_rec pin;
    card_key_rec k;
    uint32_t next;
    int key4, is_new;

    ck_assert_int_eq(card_store_pin_get(st, 3, &pin), SKS_OK);
    key4 = card_store_key_get(st, 4, &k) == SKS_OK;
    card_key_rec_free(&k);
    is_new = session_objects_present(st, 6);
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_next_handle(st, &next), SKS_OK);
    card_store_rollback(st);
    if (is_new) {
        ck_assert(!key4);
        ck_assert_uint_eq(pin.tries_left, 2);
        ck_assert_uint_eq(next, 11);
    } else {
        ck_assert(key4);
        ck_assert_uint_eq(pin.tries_left, 3);
        ck_assert_uint_eq(next, 6);
    }
    card_pin_rec_free(&pin);
    card_store_close(st);
    return is_new;
}

START_TEST(test_crash_at_every_write)
{
    long k;

    crash_old_state();
    for (k = 1; k < 200; k++) {
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            crash_child(k);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        if (WEXITSTATUS(status) == 0) {
            ck_assert_int_eq(crash_state(), 1);
            break;
        }
        ck_assert_msg(WEXITSTATUS(status) == CARD_STORE_CRASH_EXIT, "child exit %d at k=%ld",
                      WEXITSTATUS(status), k);
        /* Killed before its COMMIT: the old state, whatever the journal holds. */
        ck_assert_int_eq(crash_state(), 0);
    }
    /* 5 handle updates + 5 puts + 1 delete + 1 put + change counter + COMMIT = 14 writes. */
    ck_assert_int_eq(k, 15);
}
END_TEST

/* ---- Two processes sharing one card ----------------------------------- */

#define SHARED_WRITERS 3
#define SHARED_TXNS    40

/* A child: many short transactions, each taking a handle and creating a key. */
static void shared_writer(void)
{
    card_store *st = NULL;
    card_key_rec k;
    uint32_t h;

    if (card_store_open(&st, db_path, master_key) != SKS_OK)
        _exit(3);
    for (int i = 0; i < SHARED_TXNS; i++) {
        if (card_store_begin(st) != SKS_OK || card_store_next_handle(st, &h) != SKS_OK)
            _exit(4);
        make_key(&k, h, 1, SKS_KEYFLAG_COMPLETE, "pk");
        if (card_store_key_put(st, &k) != SKS_OK || card_store_commit(st) != 0)
            _exit(5);
        card_key_rec_free(&k);
    }
    card_store_close(st);
    _exit(0);
}

/*
 * Writers in several processes wait for each other (BEGIN IMMEDIATE and the
 * busy timeout) instead of failing, and never get the same handle: a
 * duplicate handle would replace a key and the count would come out short.
 */
START_TEST(test_processes_share_the_store)
{
    pid_t pid[SHARED_WRITERS];
    card_store *st = open_store();
    uint32_t count;

    card_store_close(st); /* create the schema before the writers race */
    for (int i = 0; i < SHARED_WRITERS; i++) {
        pid[i] = fork();
        ck_assert_int_ge(pid[i], 0);
        if (pid[i] == 0)
            shared_writer();
    }
    for (int i = 0; i < SHARED_WRITERS; i++) {
        int status;

        ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
    }
    st = open_store();
    ck_assert_int_eq(card_store_key_count(st, &count), SKS_OK);
    ck_assert_uint_eq(count, SHARED_WRITERS * SHARED_TXNS);
    card_store_close(st);
}
END_TEST

/* ---- Device state directory ------------------------------------------- */

static void card_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static mode_t file_mode(const char *path)
{
    struct stat sb;

    ck_assert_msg(stat(path, &sb) == 0, "%s: %s", path, strerror(errno));
    return sb.st_mode & 07777;
}

/* Split the card's device certificate path (count byte, then byte[] each). */
static int parse_path(const card_buf *path, X509 **certs, int max)
{
    size_t off = 1;
    int count;

    ck_assert_uint_ge(path->len, 1);
    count = path->ptr[0];
    ck_assert_int_le(count, max);
    for (int i = 0; i < count; i++) {
        const unsigned char *p;
        size_t n;

        ck_assert_uint_ge(path->len, off + 2);
        n = sks_be16_get(path->ptr + off);
        off += 2;
        ck_assert_uint_ge(path->len, off + n);
        p = path->ptr + off;
        certs[i] = d2i_X509(NULL, &p, (long)n);
        ck_assert_ptr_nonnull(certs[i]);
        ck_assert_ptr_eq(p, path->ptr + off + n);
        off += n;
    }
    ck_assert_uint_eq(off, path->len);
    return count;
}

static void name_entry(X509_NAME *name, int nid, char *out, size_t cap)
{
    ck_assert_int_gt(X509_NAME_get_text_by_NID(name, nid, out, (int)cap), 0);
}

static uint64_t fixed_clock(void *ctx)
{
    return *(uint64_t *)ctx;
}

START_TEST(test_device_init_open)
{
    char dir[128], path[192], err[256], text[128], expect[128];
    sks_card *card;
    X509 *certs[2];
    EVP_PKEY *ca_pub;
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    int crit = -1;
    uint64_t t = 1700000000;
    time_t now = time(NULL);

    snprintf(dir, sizeof dir, "%s/new/card", tmp_dir); /* parents are created */
    err[0] = '\0';
    ck_assert_msg(sks_card_init_state(dir, NULL, err, sizeof err) == 0, "%s", err);

    card_path(path, sizeof path, dir, "master.key");
    ck_assert_uint_eq(file_mode(path), 0600);
    {
        struct stat sb;
        ck_assert_int_eq(stat(path, &sb), 0);
        ck_assert_int_eq(sb.st_size, 32);
    }
    ck_assert_uint_eq(file_mode(dir), 0700);
    card_path(path, sizeof path, dir, "card.db");
    ck_assert_uint_eq(file_mode(path), 0600);
    card_path(path, sizeof path, dir, "manufacturer/ca-key.pem");
    ck_assert_uint_eq(file_mode(path), 0600);
    card_path(path, sizeof path, dir, "manufacturer/ca-cert.pem");
    ck_assert_int_eq(access(path, R_OK), 0);

    /* A second initialisation is refused and leaves the card alone. */
    err[0] = '\0';
    ck_assert_int_ne(sks_card_init_state(dir, NULL, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "already holds a card"));

    card = sks_card_open(dir, err, sizeof err);
    ck_assert_msg(card != NULL, "%s", err);
    ck_assert_uint_eq(card->serial.len, 16);
    for (size_t i = 0; i < 16; i++)
        ck_assert(strchr("0123456789ABCDEF", card->serial.ptr[i]) != NULL);
    ck_assert_uint_eq(card->max_keys, CARD_DEFAULT_MAX_KEYS);
    ck_assert_ptr_nonnull(card->store);
    ck_assert_ptr_nonnull(card->attestation_key);
    ck_assert_int_eq(EVP_PKEY_get_base_id(card->attestation_key), EVP_PKEY_EC);

    /* Device certificate, then the manufacturer CA that signed it. */
    ck_assert_int_eq(parse_path(&card->device_cert_path, certs, 2), 2);
    snprintf(expect, sizeof expect, "SKS Device %.16s", (const char *)card->serial.ptr);
    name_entry(X509_get_subject_name(certs[0]), NID_commonName, text, sizeof text);
    ck_assert_str_eq(text, expect);
    name_entry(X509_get_subject_name(certs[0]), NID_serialNumber, text, sizeof text);
    ck_assert_mem_eq(text, card->serial.ptr, 16);
    name_entry(X509_get_subject_name(certs[1]), NID_commonName, text, sizeof text);
    ck_assert_str_eq(text, "SKS Development Manufacturer CA");
    ck_assert_int_eq(X509_NAME_cmp(X509_get_issuer_name(certs[0]), X509_get_subject_name(certs[1])),
                     0);
    ca_pub = X509_get0_pubkey(certs[1]);
    ck_assert_int_eq(X509_verify(certs[0], ca_pub), 1);
    ck_assert_int_eq(X509_verify(certs[1], ca_pub), 1);
    ck_assert_int_eq(EVP_PKEY_eq(X509_get0_pubkey(certs[0]), card->attestation_key), 1);
    ck_assert_int_eq(X509_get_version(certs[0]), X509_VERSION_3);
    /* The certificate serial number is the card serial. */
    {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(certs[0]), NULL);
        char *hex = BN_bn2hex(bn);
        size_t lead = 16 - strlen(hex); /* BN_bn2hex drops leading zeros */

        ck_assert_uint_le(strlen(hex), 16);
        ck_assert_mem_eq(hex, card->serial.ptr + lead, strlen(hex));
        OPENSSL_free(hex);
        BN_free(bn);
    }
    /* Profile: CA:FALSE, keyUsage digitalSignature (critical), about 10 years. */
    bc = X509_get_ext_d2i(certs[0], NID_basic_constraints, NULL, NULL);
    ck_assert_ptr_nonnull(bc);
    ck_assert_int_eq(bc->ca, 0);
    BASIC_CONSTRAINTS_free(bc);
    ku = X509_get_ext_d2i(certs[0], NID_key_usage, &crit, NULL);
    ck_assert_ptr_nonnull(ku);
    ck_assert_int_eq(crit, 1);
    ck_assert_int_eq(ASN1_BIT_STRING_get_bit(ku, 0), 1); /* digitalSignature */
    ck_assert_int_eq(ASN1_BIT_STRING_get_bit(ku, 5), 0); /* not keyCertSign */
    ASN1_BIT_STRING_free(ku);
    {
        /* Issued at initialisation: within a generous window around `now`. */
        time_t after = now + 120, before = now - 120;
        ck_assert_int_eq(X509_cmp_time(X509_get0_notBefore(certs[0]), &after), -1);
        ck_assert_int_eq(X509_cmp_time(X509_get0_notBefore(certs[0]), &before), 1);
    }
    {
        time_t nine = now + 9L * 365 * 86400, eleven = now + 11L * 365 * 86400;
        ck_assert_int_eq(X509_cmp_time(X509_get0_notAfter(certs[0]), &nine), 1);
        ck_assert_int_eq(X509_cmp_time(X509_get0_notAfter(certs[0]), &eleven), -1);
    }
    ck_assert_int_eq(X509_check_ca(certs[1]) >= 1, 1);
    ck_assert_int_eq(X509_check_ca(certs[0]), 0);
    X509_free(certs[0]);
    X509_free(certs[1]);

    /* The clock: the system's by default, replaceable for tests. */
    ck_assert_uint_le(card_now(card) - (uint64_t)now, 5);
    sks_card_set_clock(card, fixed_clock, &t);
    ck_assert(card_now(card) == 1700000000);
    sks_card_set_clock(card, NULL, NULL);
    ck_assert_uint_le(card_now(card) - (uint64_t)now, 5);
    sks_card_close(card);
}
END_TEST

START_TEST(test_device_rsa_with_given_ca)
{
    char a[128], b[128], key[192], cert[192], path[192], err[256];
    sks_card_init_opts opts = {0};
    sks_card *card_a, *card_b;
    X509 *ca[2], *certs[2];

    snprintf(a, sizeof a, "%s/a", tmp_dir);
    snprintf(b, sizeof b, "%s/b", tmp_dir);
    ck_assert_msg(sks_card_init_state(a, NULL, err, sizeof err) == 0, "%s", err);
    card_path(key, sizeof key, a, "manufacturer/ca-key.pem");
    card_path(cert, sizeof cert, a, "manufacturer/ca-cert.pem");

    opts.attestation_alg = SKS_KEYALG_RSA2048;
    opts.ca_key_file = key;
    opts.ca_cert_file = cert;
    opts.max_keys = 50;
    ck_assert_msg(sks_card_init_state(b, &opts, err, sizeof err) == 0, "%s", err);
    card_path(path, sizeof path, b, "manufacturer");
    ck_assert_int_ne(access(path, F_OK), 0); /* no development CA of its own */

    card_a = sks_card_open(a, err, sizeof err);
    ck_assert_msg(card_a != NULL, "%s", err);
    card_b = sks_card_open(b, err, sizeof err);
    ck_assert_msg(card_b != NULL, "%s", err);
    ck_assert_int_eq(EVP_PKEY_get_base_id(card_b->attestation_key), EVP_PKEY_RSA);
    ck_assert_int_eq(EVP_PKEY_get_bits(card_b->attestation_key), 2048);
    ck_assert_uint_eq(card_b->max_keys, 50);
    ck_assert_int_ne(memcmp(card_a->serial.ptr, card_b->serial.ptr, 16), 0);
    ck_assert_int_eq(parse_path(&card_a->device_cert_path, ca, 2), 2);
    ck_assert_int_eq(parse_path(&card_b->device_cert_path, certs, 2), 2);
    ck_assert_int_eq(X509_cmp(ca[1], certs[1]), 0); /* the same manufacturer CA */
    ck_assert_int_eq(X509_verify(certs[0], X509_get0_pubkey(ca[1])), 1);
    for (int i = 0; i < 2; i++) {
        X509_free(ca[i]);
        X509_free(certs[i]);
    }
    sks_card_close(card_a);
    sks_card_close(card_b);
}
END_TEST

START_TEST(test_device_bad_inputs)
{
    char a[128], b[128], c[128], key[192], cert[192], path[192], err[256];
    sks_card_init_opts opts = {0};
    sks_card *card;
    uint8_t junk[32];
    FILE *f;

    snprintf(a, sizeof a, "%s/a", tmp_dir);
    snprintf(b, sizeof b, "%s/b", tmp_dir);
    snprintf(c, sizeof c, "%s/c", tmp_dir);
    ck_assert_msg(sks_card_init_state(a, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(sks_card_init_state(b, NULL, err, sizeof err) == 0, "%s", err);

    /* A CA key that does not belong to the CA certificate: nothing is created. */
    card_path(key, sizeof key, a, "manufacturer/ca-key.pem");
    card_path(cert, sizeof cert, b, "manufacturer/ca-cert.pem");
    opts.ca_key_file = key;
    opts.ca_cert_file = cert;
    err[0] = '\0';
    ck_assert_int_ne(sks_card_init_state(c, &opts, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "does not belong"));
    card_path(path, sizeof path, c, "master.key");
    ck_assert_int_ne(access(path, F_OK), 0);
    card_path(path, sizeof path, c, "card.db");
    ck_assert_int_ne(access(path, F_OK), 0);
    /* Half a CA, or an unknown algorithm. */
    opts.ca_cert_file = NULL;
    ck_assert_int_ne(sks_card_init_state(c, &opts, err, sizeof err), 0);
    memset(&opts, 0, sizeof opts);
    opts.attestation_alg = SKS_KEYALG_EC_P384;
    ck_assert_int_ne(sks_card_init_state(c, &opts, err, sizeof err), 0);

    /* A master key others can read is refused, with a clear message. */
    card_path(path, sizeof path, a, "master.key");
    ck_assert_int_eq(chmod(path, 0644), 0);
    err[0] = '\0';
    ck_assert_ptr_null(sks_card_open(a, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "group or others"));
    ck_assert_int_eq(chmod(path, 0600), 0);
    card = sks_card_open(a, err, sizeof err);
    ck_assert_msg(card != NULL, "%s", err);
    sks_card_close(card);

    /* A master key of the wrong size. */
    ck_assert_int_eq(truncate(path, 31), 0);
    err[0] = '\0';
    ck_assert_ptr_null(sks_card_open(a, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "exactly 32 bytes"));

    /* Another card's master key does not open the sealed attestation key. */
    memset(junk, 0x5A, sizeof junk);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);
    err[0] = '\0';
    ck_assert_ptr_null(sks_card_open(a, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "cannot unseal"));

    /* No card at all. */
    err[0] = '\0';
    ck_assert_ptr_null(sks_card_open(c, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "no card"));
    /* master.key present but card.db missing: SQLite must not create an empty card. */
    card_path(path, sizeof path, b, "card.db");
    ck_assert_int_eq(unlink(path), 0);
    err[0] = '\0';
    ck_assert_ptr_null(sks_card_open(b, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "no card"));
    ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

/* ---- Stored objects, the change counter, the schema upgrade ----------- */

START_TEST(test_object_roundtrip)
{
    card_store *st = open_store();
    card_object_rec o, got;
    uint32_t n = 99;

    memset(&o, 0, sizeof o);
    o.handle = 7;
    o.pin_policy = 3;
    o.object_class = SKS_OBJECT_PUBLIC_KEY;
    o.private_ = 1;
    buf_set(&o.attributes, "opaque attributes");
    ck_assert_int_eq(card_store_object_get(st, 7, &got), SKS_ERR_NO_KEY);
    ck_assert_int_eq(card_store_object_put(st, &o), SKS_OK);
    ck_assert_int_eq(card_store_object_get(st, 7, &got), SKS_OK);
    ck_assert_uint_eq(got.handle, 7);
    ck_assert_uint_eq(got.pin_policy, 3);
    ck_assert_uint_eq(got.object_class, SKS_OBJECT_PUBLIC_KEY);
    ck_assert_uint_eq(got.private_, 1);
    assert_buf_eq(&got.attributes, "opaque attributes", 17);
    card_object_rec_free(&got);
    ck_assert_int_eq(card_store_object_count(st, &n), SKS_OK);
    ck_assert_uint_eq(n, 1);

    /* Oversize Attributes are refused by the store itself. */
    card_buf_free(&o.attributes);
    o.attributes.ptr = calloc(1, SKS_OBJECT_MAX + 1);
    ck_assert_ptr_nonnull(o.attributes.ptr);
    o.attributes.len = SKS_OBJECT_MAX + 1;
    ck_assert_int_eq(card_store_object_put(st, &o), SKS_ERR_INTERNAL);
    card_object_rec_free(&o);

    ck_assert_int_eq(card_store_object_delete(st, 7), SKS_OK);
    ck_assert_int_eq(card_store_object_delete(st, 7), SKS_ERR_NO_KEY);
    ck_assert_int_eq(card_store_object_count(st, &n), SKS_OK);
    ck_assert_uint_eq(n, 0);
    card_store_close(st);
}
END_TEST

/*
 * What a put refuses or normalises, the same for every record kind: an ID
 * longer than SKS_ID_MAX is refused and nothing is written; a boolean field
 * is stored as 0 or 1 whatever nonzero value the record holds.
 */
START_TEST(test_record_put_rules)
{
    card_store *st = open_store();
    card_puk_rec puk, puk_out;
    card_pin_rec pin, pin_out;
    card_key_rec key, key_out;
    card_object_rec obj, obj_out;

    make_puk(&puk, 40, 10, "12345678");
    make_pin(&pin, 41, 10, "");
    make_key(&key, 42, 10, SKS_KEYFLAG_COMPLETE, "pkcs8-bytes");
    puk.id_len = SKS_ID_MAX + 1;
    pin.id_len = SKS_ID_MAX + 1;
    key.id_len = SKS_ID_MAX + 1;
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_puk_put(st, &puk), SKS_ERR_INTERNAL);
    ck_assert_int_eq(card_store_pin_put(st, &pin), SKS_ERR_INTERNAL);
    ck_assert_int_eq(card_store_key_put(st, &key), SKS_ERR_INTERNAL);
    commit(st);
    ck_assert_int_eq(card_store_puk_get(st, 40, &puk_out), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(card_store_pin_get(st, 41, &pin_out), SKS_ERR_NO_POLICY);
    ck_assert_int_eq(card_store_key_get(st, 42, &key_out), SKS_ERR_NO_KEY);

    pin.id_len = SKS_ID_MAX;
    pin.user_defined = 2;
    pin.user_modifiable = 0x80;
    pin.caching_support = 0xFF;
    memset(&obj, 0, sizeof obj);
    obj.handle = 43;
    obj.private_ = 9;
    buf_set(&obj.attributes, "attributes");
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_pin_put(st, &pin), SKS_OK);
    ck_assert_int_eq(card_store_object_put(st, &obj), SKS_OK);
    commit(st);
    ck_assert_int_eq(card_store_pin_get(st, 41, &pin_out), SKS_OK);
    ck_assert_uint_eq(pin_out.user_defined, 1);
    ck_assert_uint_eq(pin_out.user_modifiable, 1);
    ck_assert_uint_eq(pin_out.caching_support, 1);
    ck_assert_int_eq(card_store_object_get(st, 43, &obj_out), SKS_OK);
    ck_assert_uint_eq(obj_out.private_, 1);

    card_pin_rec_free(&pin_out);
    card_object_rec_free(&obj_out);
    card_puk_rec_free(&puk);
    card_pin_rec_free(&pin);
    card_key_rec_free(&key);
    card_object_rec_free(&obj);
    card_store_close(st);
}
END_TEST

/* Every commit that changed rows moves the counter once; others leave it. */
START_TEST(test_change_counter_counts_commits)
{
    card_store *st = open_store();
    uint32_t c0 = 99, c, h;

    ck_assert_int_eq(card_store_change_counter(st, &c0), SKS_OK);
    ck_assert_uint_eq(c0, 0);
    /* A transaction that writes: +1, whatever the number of writes. */
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_next_handle(st, &h), SKS_OK);
    ck_assert_int_eq(card_store_next_handle(st, &h), SKS_OK);
    ck_assert_int_eq(card_store_commit(st), 0);
    ck_assert_int_eq(card_store_change_counter(st, &c), SKS_OK);
    ck_assert_uint_eq(c, 1);
    /* One that only reads, one that deletes nothing, one rolled back: no change. */
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_key_count(st, &h), SKS_OK);
    ck_assert_int_eq(card_store_commit(st), 0);
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_object_delete(st, 12345), SKS_ERR_NO_KEY);
    ck_assert_int_eq(card_store_commit(st), 0);
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_next_handle(st, &h), SKS_OK);
    card_store_rollback(st);
    ck_assert_int_eq(card_store_change_counter(st, &c), SKS_OK);
    ck_assert_uint_eq(c, 1);
    /* An UPDATE of no row changes nothing; with a real write the commit counts. */
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_pin_set_tries(st, 3, 1), SKS_OK);
    ck_assert_int_eq(card_store_commit(st), 0);
    ck_assert_int_eq(card_store_change_counter(st, &c), SKS_OK);
    ck_assert_uint_eq(c, 1);
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_next_handle(st, &h), SKS_OK);
    ck_assert_int_eq(card_store_commit(st), 0);
    /* It is stored: it survives closing the store. */
    card_store_close(st);
    st = open_store();
    ck_assert_int_eq(card_store_change_counter(st, &c), SKS_OK);
    ck_assert_uint_eq(c, 2);
    card_store_close(st);
}
END_TEST

/* A database of schema version 1 (before stored objects) is upgraded on open. */
START_TEST(test_schema_upgrade)
{
    card_store *st = open_store();
    card_object_rec o;
    uint32_t h;
    sqlite3 *db = NULL;

    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_next_handle(st, &h), SKS_OK);
    ck_assert_int_eq(card_store_commit(st), 0);
    card_store_close(st);
    /* Make it look like version 1. */
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(db, "DROP TABLE objects; PRAGMA user_version = 1;", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    st = open_store();
    memset(&o, 0, sizeof o);
    o.handle = 42;
    o.object_class = SKS_OBJECT_DATA;
    buf_set(&o.attributes, "x");
    ck_assert_int_eq(card_store_object_put(st, &o), SKS_OK);
    card_object_rec_free(&o);
    ck_assert_int_eq(card_store_next_handle(st, &h), SKS_OK);
    ck_assert_uint_eq(h, 2); /* the old records are still there */
    card_store_close(st);

    /* A version from the future is refused. */
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "PRAGMA user_version = 1000;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    st = NULL;
    ck_assert_int_eq(card_store_open(&st, db_path, master_key), SKS_ERR_STORAGE);
    ck_assert_ptr_null(st);
}
END_TEST

/* The number of rows of a one-value query (sqlite3 directly, not the store). */
static int query_int(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int v = -1;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/*
 * A version 3 database without the index of keys by PIN policy (made before
 * countKeys) gets it at open and keeps its version, so older programs still
 * open it; the policy counts are right with and without it.
 */
START_TEST(test_policy_index_added)
{
    static const char has_index[] =
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'keys_by_pin_policy'";
    card_store *st = open_store();
    card_key_rec k;
    uint32_t n = 99;
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    for (uint32_t i = 1; i <= 3; i++) {
        make_key(&k, 10 + i, 1, SKS_KEYFLAG_COMPLETE, "private");
        k.id[4] = (uint8_t)('0' + i);
        k.pin_policy = i == 3 ? 0 : 7;
        ck_assert_int_eq(card_store_key_put(st, &k), SKS_OK);
        card_key_rec_free(&k);
    }
    ck_assert_int_eq(card_store_commit(st), 0);
    card_store_close(st);
    ck_assert_int_eq(query_int(has_index), 1);

    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "DROP INDEX keys_by_pin_policy;", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(query_int(has_index), 0);

    st = open_store();
    ck_assert_int_eq(query_int(has_index), 1);
    ck_assert_int_eq(query_int("PRAGMA user_version"), 3);
    ck_assert_int_eq(card_store_policy_key_count(st, 7, &n), SKS_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(card_store_policy_key_count(st, 0, &n), SKS_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(card_store_policy_key_count(st, 8, &n), SKS_OK);
    ck_assert_uint_eq(n, 0);
    card_store_close(st);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *seal = tcase_create("seal");
    TCase *rec = tcase_create("records");
    TCase *txn = tcase_create("transactions");
    TCase *dev = tcase_create("device");

    tcase_add_test(seal, test_seal_roundtrip_and_tamper);
    tcase_add_test(seal, test_seal_known_vector);
    suite_add_tcase(s, seal);

    tcase_add_checked_fixture(rec, setup, teardown);
    tcase_add_test(rec, test_meta_roundtrip);
    tcase_add_test(rec, test_session_roundtrip);
    tcase_add_test(rec, test_policy_roundtrip);
    tcase_add_test(rec, test_key_roundtrip);
    tcase_add_test(rec, test_secrets_not_in_file);
    tcase_add_test(rec, test_sealed_value_bound_to_row);
    tcase_add_test(rec, test_object_roundtrip);
    tcase_add_test(rec, test_record_put_rules);
    tcase_add_test(rec, test_change_counter_counts_commits);
    tcase_add_test(rec, test_schema_upgrade);
    tcase_add_test(rec, test_policy_index_added);
    suite_add_tcase(s, rec);

    tcase_add_checked_fixture(txn, setup, teardown);
    tcase_add_test(txn, test_handles_unique_never_reused);
    tcase_add_test(txn, test_purge_one_session);
    tcase_add_test(txn, test_rollback_leaves_nothing);
    tcase_add_test(txn, test_key_and_pin_lists);
    tcase_add_test(txn, test_crash_at_every_write);
    tcase_add_test(txn, test_processes_share_the_store);
    tcase_set_timeout(txn, 120);
    suite_add_tcase(s, txn);

    tcase_add_checked_fixture(dev, setup, teardown);
    tcase_add_test(dev, test_device_init_open);
    tcase_add_test(dev, test_device_rsa_with_given_ca);
    tcase_add_test(dev, test_device_bad_inputs);
    tcase_set_timeout(dev, 120);
    suite_add_tcase(s, dev);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
