/*
 * test-dkek.c - key backup under a DKEK (docs/dkek.md): the key check value,
 * the derived keys and AES-CMAC against values computed outside the code
 * under test, the blob layout read field by field, and the card methods
 * initializeDKEK, importDKEKShare, getDKEKStatus, wrapKey and unwrapKey:
 * backup, restore, cloning to a card with the same shares (under a PIN
 * policy of that card), refusal of a blob of another DKEK or with one bit
 * flipped, of a key that had a PIN restored without one (nothing changes),
 * and of keys without backup permission; a key without PIN restores both
 * without PIN and under a PIN policy.
 */
#include <check.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "protocol/sks_crypto.h"
#include "protocol/sks_dkek.h"
#include "testlib.h"

/* ---- independent computations -------------------------------------------- */

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

/* SHA-256 of a | b with EVP calls of the test's own. */
static void sha256_two(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned len = 0;
    ck_assert_int_eq(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
    ck_assert_int_eq(EVP_DigestUpdate(md, a, na), 1);
    if (nb > 0)
        ck_assert_int_eq(EVP_DigestUpdate(md, b, nb), 1);
    ck_assert_int_eq(EVP_DigestFinal_ex(md, out, &len), 1);
    ck_assert_uint_eq(len, 32);
    EVP_MD_CTX_free(md);
}

/* AES-256 CMAC through EVP_MAC, set up here independently of sks_dkek_cmac. */
static void cmac_ref(const uint8_t key[32], const uint8_t *p, size_t n, uint8_t out[16])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_utf8_string("cipher", "AES-256-CBC", 0), OSSL_PARAM_END};
    size_t len = 0;
    ck_assert_int_eq(EVP_MAC_init(ctx, key, 32, params), 1);
    ck_assert_int_eq(EVP_MAC_update(ctx, p, n), 1);
    ck_assert_int_eq(EVP_MAC_final(ctx, out, &len, 16), 1);
    ck_assert_uint_eq(len, 16);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

/* The fixed DKEK of the vectors: bytes 00 01 .. 1f. */
static void fixed_dkek(uint8_t d[32])
{
    for (int i = 0; i < 32; i++)
        d[i] = (uint8_t)i;
}

/* ---- KCV, KENC, KMAC, CMAC --------------------------------------------------- */

/*
 * Expected values computed with Python's hashlib:
 *   python3 -c "import hashlib; d=bytes(range(32)); print(hashlib.sha256(d).hexdigest()[:16])"
 *   ... hashlib.sha256(d + b'\x00\x00\x00\x01').hexdigest()   (KENC)
 *   ... hashlib.sha256(d + b'\x00\x00\x00\x02').hexdigest()   (KMAC)
 * and recomputed below with EVP digest calls.
 */
START_TEST(kcv_and_derived_keys)
{
    uint8_t d[32], kcv[8], kenc[32], kmac[32], want[32];
    static const uint8_t c1[4] = {0, 0, 0, 1}, c2[4] = {0, 0, 0, 2};
    fixed_dkek(d);

    ck_assert_int_eq(sks_dkek_kcv(d, kcv), 0);
    hex_to_bytes("630dcd2966c43366", want, 8);
    ck_assert_mem_eq(kcv, want, 8);
    sha256_two(d, 32, NULL, 0, want);
    ck_assert_mem_eq(kcv, want, 8);

    ck_assert_int_eq(sks_dkek_kenc(d, kenc), 0);
    hex_to_bytes("04a6950a06d3e3308ad7d3606ef810eb124e3943404ca746a12c51c7bf776839", want, 32);
    ck_assert_mem_eq(kenc, want, 32);
    sha256_two(d, 32, c1, 4, want);
    ck_assert_mem_eq(kenc, want, 32);

    ck_assert_int_eq(sks_dkek_kmac(d, kmac), 0);
    hex_to_bytes("0f8d842ac9cb62349779a7537a78327d545aaeb33b2d42c7d1dc3680a4b23628", want, 32);
    ck_assert_mem_eq(kmac, want, 32);
    sha256_two(d, 32, c2, 4, want);
    ck_assert_mem_eq(kmac, want, 32);
}
END_TEST

START_TEST(cmac_vectors)
{
    uint8_t key[32], mac[16], want[16];
    const char *msg = "SKS DKEK backup test message";

    /*
     * NIST SP 800-38B, AES-256, example 1 (empty message); the same with
     *   printf '' | openssl mac -cipher AES-256-CBC -macopt \
     *     hexkey:603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4 CMAC
     *   -> 028962F61B7BF89EFC6B551F4667D983
     */
    hex_to_bytes("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", key, 32);
    ck_assert_int_eq(sks_dkek_cmac(key, NULL, 0, mac), 0);
    hex_to_bytes("028962f61b7bf89efc6b551f4667d983", want, 16);
    ck_assert_mem_eq(mac, want, 16);

    /*
     * Under the KMAC of the fixed DKEK:
     *   printf 'SKS DKEK backup test message' | openssl mac -cipher AES-256-CBC -macopt \
     *     hexkey:0f8d842ac9cb62349779a7537a78327d545aaeb33b2d42c7d1dc3680a4b23628 CMAC
     *   -> 7D35B2B2A960A394E834D2E627E8DDDD
     */
    hex_to_bytes("0f8d842ac9cb62349779a7537a78327d545aaeb33b2d42c7d1dc3680a4b23628", key, 32);
    ck_assert_int_eq(sks_dkek_cmac(key, (const uint8_t *)msg, strlen(msg), mac), 0);
    hex_to_bytes("7d35b2b2a960a394e834d2e627e8dddd", want, 16);
    ck_assert_mem_eq(mac, want, 16);
    cmac_ref(key, (const uint8_t *)msg, strlen(msg), want);
    ck_assert_mem_eq(mac, want, 16);
}
END_TEST

/* ---- the blob layout, read byte by byte ------------------------------------ */

static size_t take_len(const uint8_t *p, size_t *off, size_t width)
{
    size_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = (v << 8) | p[(*off)++];
    return v;
}

START_TEST(blob_layout)
{
    uint8_t d[32], iv[16], kenc[32], kmac[32], mac[16];
    static const uint8_t c1[4] = {0, 0, 0, 1}, c2[4] = {0, 0, 0, 2};
    const uint8_t pkcs8[40] = "not a real key, just forty bytes of data";
    /* A path of one 3-byte "certificate", in the wire form: count, L(cert). */
    const uint8_t path[] = {1, 0, 3, 0xAA, 0xBB, 0xCC};
    sks_dkek_blob hdr;
    sks_writer w;
    fixed_dkek(d);
    for (int i = 0; i < 16; i++)
        iv[i] = (uint8_t)(0xA0 + i);
    memset(&hdr, 0, sizeof(hdr));
    hdr.algorithm = SKS_KEYALG_EC_P256;
    hdr.usage = SKS_USAGE_SIGN;
    hdr.flags = SKS_KEYFLAG_MIGRATABLE | SKS_KEYFLAG_COMPLETE;
    hdr.id = (sks_view){(const uint8_t *)"key1", 4};
    hdr.friendly_name = (sks_view){(const uint8_t *)"mail", 4};
    hdr.policy_id = (sks_view){(const uint8_t *)"alice", 5};
    hdr.cert_path = (sks_view){path, sizeof(path)};
    sks_writer_init(&w);
    ck_assert_int_eq(sks_dkek_blob_build(d, &hdr, pkcs8, sizeof(pkcs8), iv, &w), 0);

    const uint8_t *b = w.buf;
    size_t off = 0;
    uint8_t want[32];
    sha256_two(d, 32, NULL, 0, want);
    ck_assert_mem_eq(b, want, 8); /* KCV */
    off = 8;
    ck_assert_uint_eq(b[off++], 1); /* version */
    ck_assert_uint_eq(b[off++], SKS_KEYALG_EC_P256);
    ck_assert_uint_eq(b[off++], SKS_USAGE_SIGN);
    ck_assert_uint_eq(b[off++], SKS_KEYFLAG_MIGRATABLE | SKS_KEYFLAG_COMPLETE);
    ck_assert_uint_eq(take_len(b, &off, 2), 4);
    ck_assert_mem_eq(b + off, "key1", 4);
    off += 4;
    ck_assert_uint_eq(take_len(b, &off, 2), 4);
    ck_assert_mem_eq(b + off, "mail", 4);
    off += 4;
    ck_assert_uint_eq(take_len(b, &off, 2), 5);
    ck_assert_mem_eq(b + off, "alice", 5);
    off += 5;
    ck_assert_uint_eq(take_len(b, &off, 4), sizeof(path));
    ck_assert_mem_eq(b + off, path, sizeof(path));
    off += sizeof(path);
    /* 40 bytes of key material pad to 48: IV (16) + 48 = 64. */
    size_t enc_len = take_len(b, &off, 4);
    ck_assert_uint_eq(enc_len, 64);
    ck_assert_mem_eq(b + off, iv, 16);

    /* Decrypt with KENC recomputed here and OpenSSL's AES-256-CBC. */
    uint8_t pt[64];
    int len1 = 0, len2 = 0;
    sha256_two(d, 32, c1, 4, kenc);
    EVP_CIPHER_CTX *cc = EVP_CIPHER_CTX_new();
    ck_assert_int_eq(EVP_DecryptInit_ex(cc, EVP_aes_256_cbc(), NULL, kenc, iv), 1);
    ck_assert_int_eq(EVP_DecryptUpdate(cc, pt, &len1, b + off + 16, 48), 1);
    ck_assert_int_eq(EVP_DecryptFinal_ex(cc, pt + len1, &len2), 1);
    EVP_CIPHER_CTX_free(cc);
    ck_assert_int_eq(len1 + len2, 40);
    ck_assert_mem_eq(pt, pkcs8, 40);
    off += enc_len;

    /* The CMAC: the last 16 bytes, under KMAC, over everything before them. */
    ck_assert_uint_eq(w.len, off + 16);
    sha256_two(d, 32, c2, 4, kmac);
    cmac_ref(kmac, b, off, mac);
    ck_assert_mem_eq(b + off, mac, 16);

    /* The parser and verifier agree; one flipped bit anywhere fails the CMAC. */
    sks_dkek_blob p;
    const char *why = NULL;
    ck_assert_int_eq(sks_dkek_blob_parse(w.buf, w.len, &p, &why), 0);
    ck_assert_uint_eq(p.id.len, 4);
    ck_assert_uint_eq(p.mac_data_len, off);
    ck_assert_int_eq(sks_dkek_blob_verify(d, w.buf, w.len), SKS_DKEK_BLOB_OK);
    for (size_t i = 8; i < w.len; i += 7) {
        w.buf[i] ^= 0x01;
        ck_assert_int_eq(sks_dkek_blob_verify(d, w.buf, w.len), SKS_DKEK_BLOB_BAD_MAC);
        w.buf[i] ^= 0x01;
    }
    w.buf[0] ^= 0x80;
    ck_assert_int_eq(sks_dkek_blob_verify(d, w.buf, w.len), SKS_DKEK_BLOB_OTHER_KEK);
    w.buf[0] ^= 0x80;
    ck_assert_int_eq(sks_dkek_blob_verify(d, w.buf, 20), SKS_DKEK_BLOB_SHORT);
    /* Truncations and trailing bytes never parse. */
    ck_assert_int_eq(sks_dkek_blob_parse(w.buf, w.len - 1, &p, &why), -1);
    sks_put_byte(&w, 0);
    ck_assert_int_eq(sks_dkek_blob_parse(w.buf, w.len, &p, &why), -1);
    sks_writer_free(&w);
}
END_TEST

/* ---- the card methods --------------------------------------------------------- */

static void status_of(tl_card *c, sks_resp_dkek_status *st)
{
    TL_OK(c, tl_call(c, SKS_M_GET_DKEK_STATUS, NULL, st, NULL));
}

static int init_dkek(tl_card *c, uint8_t shares)
{
    sks_req_initialize_dkek req = {shares};
    return tl_call(c, SKS_M_INITIALIZE_DKEK, &req, NULL, NULL);
}

static int import_share(tl_card *c, const uint8_t share[32], sks_resp_dkek_status *st)
{
    sks_req_import_dkek_share req = {{share, 32}};
    return tl_call(c, SKS_M_IMPORT_DKEK_SHARE, &req, st, NULL);
}

/* The three shares of the scenario and their XOR's KCV, computed here. */
static void shares(uint8_t s[3][32], uint8_t kcv[8])
{
    uint8_t x[32], h[32];
    for (int i = 0; i < 32; i++) {
        s[0][i] = (uint8_t)(0x11 * (i + 1));
        s[1][i] = (uint8_t)(0x5A ^ i);
        s[2][i] = (uint8_t)(0xC3 + 3 * i);
        x[i] = s[0][i] ^ s[1][i] ^ s[2][i];
    }
    sha256_two(x, 32, NULL, 0, h);
    memcpy(kcv, h, 8);
}

/* A card whose DKEK is the three shares. */
static void make_ready(tl_card *c, uint8_t s[3][32])
{
    sks_resp_dkek_status st;
    TL_OK(c, init_dkek(c, 3));
    for (int i = 0; i < 3; i++)
        TL_OK(c, import_share(c, s[i], &st));
}

START_TEST(shares_make_the_dkek)
{
    tl_card *c = tl_card_new();
    uint8_t s[3][32], kcv[8], zeros[8] = {0};
    sks_resp_dkek_status st;
    shares(s, kcv);

    status_of(c, &st);
    ck_assert_uint_eq(st.state, SKS_DKEK_NONE);
    ck_assert_int_eq(import_share(c, s[0], &st), SKS_ERR_NOT_ALLOWED);
    ck_assert_int_eq(init_dkek(c, SKS_DKEK_SHARES_MAX + 1), SKS_ERR_OPTION);

    TL_OK(c, init_dkek(c, 3));
    status_of(c, &st);
    ck_assert_uint_eq(st.state, SKS_DKEK_PENDING);
    ck_assert_uint_eq(st.shares_total, 3);
    ck_assert_uint_eq(st.shares_outstanding, 3);
    ck_assert_mem_eq(st.kcv.ptr, zeros, 8);
    uint8_t nothing[32] = {0};
    ck_assert_int_eq(import_share(c, nothing, &st), SKS_ERR_OPTION);

    TL_OK(c, import_share(c, s[0], &st));
    ck_assert_uint_eq(st.shares_outstanding, 2);
    TL_OK(c, import_share(c, s[1], &st));
    ck_assert_uint_eq(st.state, SKS_DKEK_PENDING);
    ck_assert_mem_eq(st.kcv.ptr, zeros, 8);
    TL_OK(c, import_share(c, s[2], &st));
    ck_assert_uint_eq(st.state, SKS_DKEK_READY);
    ck_assert_uint_eq(st.shares_outstanding, 0);
    ck_assert_mem_eq(st.kcv.ptr, kcv, 8);
    ck_assert_int_eq(import_share(c, s[0], &st), SKS_ERR_NOT_ALLOWED);

    /* It survives a power cycle (sealed in the store). */
    tl_card_reopen(c);
    status_of(c, &st);
    ck_assert_uint_eq(st.state, SKS_DKEK_READY);
    ck_assert_mem_eq(st.kcv.ptr, kcv, 8);

    /* No DKEK share ever appears in the database file in the clear. */
    char path[300];
    snprintf(path, sizeof(path), "%s/card.db", c->dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static uint8_t db[1 << 20];
    size_t n = fread(db, 1, sizeof(db), f);
    fclose(f);
    for (size_t i = 0; i + 32 <= n; i++)
        ck_assert_msg(memcmp(db + i, s[2], 32) != 0, "share in the clear");

    /* 0 shares: a random DKEK of the card's own, ready at once, another KCV each time. */
    TL_OK(c, init_dkek(c, 0));
    status_of(c, &st);
    ck_assert_uint_eq(st.state, SKS_DKEK_READY);
    ck_assert_uint_eq(st.shares_total, 0);
    ck_assert_mem_ne(st.kcv.ptr, zeros, 8);
    ck_assert_mem_ne(st.kcv.ptr, kcv, 8);
    tl_card_free(c);
}
END_TEST

typedef struct {
    tl_card *c;
    tl_key key;
} keyed_card;

/* A card with the scenario's DKEK and one P-256 key (PIN 1234) with backup allowed or not. */
static void keyed(keyed_card *k, uint8_t s[3][32], int backup)
{
    tl_key_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.pin = "1234";
    spec.flags = backup ? SKS_KEYFLAG_MIGRATABLE : 0;
    spec.friendly_name = "mail";
    k->c = tl_card_new();
    make_ready(k->c, s);
    tl_provision_key(k->c, &spec, &k->key);
}

static int verify_pin(tl_card *c, uint32_t policy, const char *pin)
{
    sks_req_verify_pin req = {policy, {(const uint8_t *)pin, strlen(pin)}};
    return tl_call(c, SKS_M_VERIFY_PIN, &req, NULL, NULL);
}

static int wrap(tl_card *c, uint32_t key, sks_writer *blob)
{
    sks_req_wrap_key req = {key};
    sks_resp_wrap_key resp;
    sks_writer answer;
    sks_writer_init(&answer);
    int st = tl_call(c, SKS_M_WRAP_KEY, &req, &resp, &answer);
    if (st == SKS_OK)
        sks_put_raw(blob, resp.blob.ptr, resp.blob.len);
    sks_writer_free(&answer);
    return st;
}

static int unwrap(tl_card *c, uint32_t policy, const sks_writer *blob, uint32_t *key)
{
    sks_req_unwrap_key req = {policy, {blob->buf, blob->len}};
    sks_resp_unwrap_key resp;
    int st = tl_call(c, SKS_M_UNWRAP_KEY, &req, &resp, NULL);
    *key = st == SKS_OK ? resp.key_handle : 0;
    return st;
}

static uint32_t used_keys(tl_card *c)
{
    sks_resp_get_device_info info;
    TL_OK(c, tl_call(c, SKS_M_GET_DEVICE_INFO, NULL, &info, NULL));
    return info.used_keys;
}

/* The card's change counter: it moves with every committed change. */
static uint32_t changes(tl_card *c)
{
    sks_resp_get_device_info info;
    TL_OK(c, tl_call(c, SKS_M_GET_DEVICE_INFO, NULL, &info, NULL));
    return info.change_counter;
}

/*
 * unwrapKey of `blob` under PINPolicyHandle 0 (the token of keys without
 * PIN) is refused with NOT_AUTHENTICATED, says why, and changes nothing:
 * no key, no committed transaction.
 */
static void refused_without_pin(tl_card *c, const sks_writer *blob)
{
    uint32_t keys = used_keys(c), counter = changes(c), restored = 1;
    ck_assert_int_eq(unwrap(c, SKS_HANDLE_NONE, blob, &restored), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_msg(strstr(c->error, "key with a PIN") != NULL, "card said: %s", c->error);
    ck_assert_uint_eq(restored, 0);
    ck_assert_uint_eq(used_keys(c), keys);
    ck_assert_uint_eq(changes(c), counter);
}

/*
 * A token with a PIN on card `c`, made as keyed() makes card A's
 * (tl_provision_key with a PIN policy, here PIN 5678 and no backup
 * permission); its own key, "key1" like the backups', is deleted so that a
 * backup's key can take the ID. The PIN stays verified. The policy's handle.
 */
static uint32_t pin_token(tl_card *c)
{
    tl_key_spec spec;
    tl_key own;
    memset(&spec, 0, sizeof(spec));
    spec.pin = "5678";
    tl_provision_key(c, &spec, &own);
    uint32_t policy = own.pin_policy;
    ck_assert_uint_ne(policy, SKS_HANDLE_NONE);
    TL_OK(c, verify_pin(c, policy, "5678"));
    sks_req_delete_key del = {own.key[0], {NULL, 0}};
    TL_OK(c, tl_call(c, SKS_M_DELETE_KEY, &del, NULL, NULL));
    tl_key_free(&own);
    return policy;
}

/* Sign a hash with a card key and verify it with `pub`. */
static void signs_for(tl_card *c, uint32_t key, EVP_PKEY *pub)
{
    uint8_t hash[32], der[80];
    for (int i = 0; i < 32; i++)
        hash[i] = (uint8_t)(7 * i);
    sks_req_sign req = {key, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, {hash, 32}};
    sks_resp_sign resp;
    TL_OK(c, tl_call(c, SKS_M_SIGN_HASHED_DATA, &req, &resp, NULL));
    ck_assert_uint_eq(resp.signature.len, 64);
    /* r | s to DER for EVP_PKEY_verify. */
    ECDSA_SIG *sig = ECDSA_SIG_new();
    ck_assert_int_eq(ECDSA_SIG_set0(sig, BN_bin2bn(resp.signature.ptr, 32, NULL),
                                    BN_bin2bn(resp.signature.ptr + 32, 32, NULL)),
                     1);
    unsigned char *p = der;
    int dlen = i2d_ECDSA_SIG(sig, &p);
    ECDSA_SIG_free(sig);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
    ck_assert_int_eq(EVP_PKEY_verify_init(ctx), 1);
    ck_assert_int_eq(EVP_PKEY_verify(ctx, der, (size_t)dlen, hash, 32), 1);
    EVP_PKEY_CTX_free(ctx);
}

START_TEST(backup_restore_clone)
{
    uint8_t s[3][32], kcv[8];
    keyed_card a;
    shares(s, kcv);
    keyed(&a, s, 1);
    tl_card *c = a.c;
    uint32_t key = a.key.key[0], policy = a.key.pin_policy, restored = 0;
    sks_writer blob;
    sks_writer_init(&blob);

    /* The PIN first; then the blob carries the DKEK's KCV. */
    ck_assert_int_eq(wrap(c, key, &blob), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, policy, "1234"));
    TL_OK(c, wrap(c, key, &blob));
    ck_assert_mem_eq(blob.buf, kcv, 8);
    sks_dkek_blob p;
    const char *why = NULL;
    ck_assert_int_eq(sks_dkek_blob_parse(blob.buf, blob.len, &p, &why), 0);
    ck_assert_uint_eq(p.id.len, 4);
    ck_assert_mem_eq(p.id.ptr, "key1", 4);
    ck_assert_uint_eq(p.friendly_name.len, 4);
    ck_assert_uint_eq(p.policy_id.len, 3); /* "pin" */
    ck_assert_uint_gt(p.cert_path.len, 0);

    /* The key is still there: its ID is taken. */
    ck_assert_int_eq(unwrap(c, policy, &blob, &restored), SKS_ERR_OPTION);
    sks_req_delete_key del = {key, {NULL, 0}};
    TL_OK(c, tl_call(c, SKS_M_DELETE_KEY, &del, NULL, NULL));
    uint32_t before = used_keys(c);

    /* One flipped bit: MAC, nothing created. */
    blob.buf[blob.len / 2] ^= 0x10;
    ck_assert_int_eq(unwrap(c, policy, &blob, &restored), SKS_ERR_MAC);
    blob.buf[blob.len / 2] ^= 0x10;
    ck_assert_uint_eq(used_keys(c), before);

    /* The key had a PIN: never onto the token without PIN, even with a PIN verified. */
    refused_without_pin(c, &blob);

    /* Restore under the policy: its PIN must be verified in this card session. */
    sks_card_reset(c->card);
    ck_assert_int_eq(unwrap(c, policy, &blob, &restored), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_uint_eq(used_keys(c), before);
    TL_OK(c, verify_pin(c, policy, "1234"));
    TL_OK(c, unwrap(c, policy, &blob, &restored));
    ck_assert_uint_eq(used_keys(c), before + 1);
    ck_assert_uint_ne(restored, key);

    /* Same attributes, certificate path and public key; it signs for the original key. */
    sks_req_key_handle kh = {restored};
    sks_resp_get_key_attributes attrs;
    TL_OK(c, tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attrs, NULL));
    ck_assert_mem_eq(attrs.id.ptr, "key1", 4);
    ck_assert_mem_eq(attrs.friendly_name.ptr, "mail", 4);
    ck_assert_uint_eq(attrs.algorithm, SKS_KEYALG_EC_P256);
    ck_assert_uint_eq(attrs.key_usage, SKS_USAGE_SIGN);
    ck_assert_uint_eq(attrs.pin_policy_handle, policy);
    ck_assert(attrs.flags & SKS_KEYFLAG_MIGRATABLE);
    ck_assert(attrs.flags & SKS_KEYFLAG_COMPLETE);
    ck_assert(!(attrs.flags & SKS_KEYFLAG_GENERATED_ON_CARD));
    ck_assert_uint_eq(attrs.certificate_path.count, 1);
    uint8_t *der = NULL;
    int der_len = i2d_X509(a.key.cert[0], &der);
    ck_assert_uint_eq(attrs.certificate_path.cert[0].len, (size_t)der_len);
    ck_assert_mem_eq(attrs.certificate_path.cert[0].ptr, der, (size_t)der_len);
    OPENSSL_free(der);
    signs_for(c, restored, a.key.public_key[0]);

    /*
     * Card B with the same shares: not onto its token without PIN; onto its
     * token with a PIN once that PIN is verified. The clone keeps needing
     * that PIN and signs for the original public key.
     */
    tl_card *b = tl_card_new();
    make_ready(b, s);
    refused_without_pin(b, &blob);
    uint32_t b_policy = pin_token(b);
    refused_without_pin(b, &blob);
    sks_card_reset(b->card);
    ck_assert_int_eq(unwrap(b, b_policy, &blob, &restored), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(b, verify_pin(b, b_policy, "5678"));
    TL_OK(b, unwrap(b, b_policy, &blob, &restored));
    kh.key_handle = restored;
    TL_OK(b, tl_call(b, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attrs, NULL));
    ck_assert_uint_eq(attrs.pin_policy_handle, b_policy);
    signs_for(b, restored, a.key.public_key[0]);
    sks_card_reset(b->card);
    uint8_t hash[32] = {0};
    sks_req_sign sreq = {restored, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, {hash, 32}};
    sks_resp_sign sresp;
    ck_assert_int_eq(tl_call(b, SKS_M_SIGN_HASHED_DATA, &sreq, &sresp, NULL),
                     SKS_ERR_NOT_AUTHENTICATED);

    /* Card C with another third share: the KCV differs, nothing is created. */
    tl_card *cc = tl_card_new();
    uint8_t other[3][32];
    memcpy(other, s, sizeof(other));
    other[2][5] ^= 0x01;
    make_ready(cc, other);
    before = used_keys(cc);
    ck_assert_int_eq(unwrap(cc, SKS_HANDLE_NONE, &blob, &restored), SKS_ERR_CRYPTO);
    ck_assert_uint_eq(used_keys(cc), before);

    /* A card still waiting for shares: neither wrap nor unwrap. */
    tl_card *d = tl_card_new();
    TL_OK(d, init_dkek(d, 2));
    ck_assert_int_eq(unwrap(d, SKS_HANDLE_NONE, &blob, &restored), SKS_ERR_NOT_ALLOWED);

    /* The card holds a key that allows backup: no new DKEK. */
    ck_assert_int_eq(init_dkek(c, 1), SKS_ERR_NOT_ALLOWED);

    sks_writer_free(&blob);
    tl_card_free(d);
    tl_card_free(cc);
    tl_card_free(b);
    tl_key_free(&a.key);
    tl_card_free(c);
}
END_TEST

/*
 * A key without PIN: its backup names no PIN policy and may be restored
 * both onto the token without PIN and, a tightening, under a PIN policy
 * (whose PIN the restored key then needs).
 */
START_TEST(no_pin_backup_restores_anywhere)
{
    uint8_t s[3][32], kcv[8];
    tl_key_spec spec;
    tl_key key;
    sks_writer blob;
    uint32_t restored = 0;
    shares(s, kcv);
    memset(&spec, 0, sizeof(spec));
    spec.flags = SKS_KEYFLAG_MIGRATABLE;
    tl_card *c = tl_card_new();
    make_ready(c, s);
    tl_provision_key(c, &spec, &key);
    ck_assert_uint_eq(key.pin_policy, SKS_HANDLE_NONE);
    sks_writer_init(&blob);

    TL_OK(c, wrap(c, key.key[0], &blob)); /* no PIN to verify */
    sks_dkek_blob p;
    const char *why = NULL;
    ck_assert_int_eq(sks_dkek_blob_parse(blob.buf, blob.len, &p, &why), 0);
    ck_assert_uint_eq(p.policy_id.len, 0);
    sks_req_delete_key del = {key.key[0], {NULL, 0}};
    TL_OK(c, tl_call(c, SKS_M_DELETE_KEY, &del, NULL, NULL));

    /* Onto the token without PIN: usable without PIN, as before. */
    TL_OK(c, unwrap(c, SKS_HANDLE_NONE, &blob, &restored));
    sks_req_key_handle kh = {restored};
    sks_resp_get_key_attributes attrs;
    TL_OK(c, tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attrs, NULL));
    ck_assert_uint_eq(attrs.pin_policy_handle, SKS_HANDLE_NONE);
    signs_for(c, restored, key.public_key[0]);

    /* Card B: under its PIN policy, the PIN verified; the clone then needs that PIN. */
    tl_card *b = tl_card_new();
    make_ready(b, s);
    uint32_t b_policy = pin_token(b);
    sks_card_reset(b->card);
    ck_assert_int_eq(unwrap(b, b_policy, &blob, &restored), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(b, verify_pin(b, b_policy, "5678"));
    TL_OK(b, unwrap(b, b_policy, &blob, &restored));
    kh.key_handle = restored;
    TL_OK(b, tl_call(b, SKS_M_GET_KEY_ATTRIBUTES, &kh, &attrs, NULL));
    ck_assert_uint_eq(attrs.pin_policy_handle, b_policy);
    signs_for(b, restored, key.public_key[0]);
    sks_card_reset(b->card);
    uint8_t hash[32] = {0};
    sks_req_sign sreq = {restored, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, {hash, 32}};
    sks_resp_sign sresp;
    ck_assert_int_eq(tl_call(b, SKS_M_SIGN_HASHED_DATA, &sreq, &sresp, NULL),
                     SKS_ERR_NOT_AUTHENTICATED);

    sks_writer_free(&blob);
    tl_key_free(&key);
    tl_card_free(b);
    tl_card_free(c);
}
END_TEST

START_TEST(no_backup_without_permission)
{
    uint8_t s[3][32], kcv[8];
    keyed_card a;
    sks_writer blob;
    shares(s, kcv);
    keyed(&a, s, 0);
    sks_writer_init(&blob);
    TL_OK(a.c, verify_pin(a.c, a.key.pin_policy, "1234"));
    ck_assert_int_eq(wrap(a.c, a.key.key[0], &blob), SKS_ERR_NOT_ALLOWED);
    ck_assert_uint_eq(blob.len, 0);
    ck_assert_int_eq(wrap(a.c, 0x7777, &blob), SKS_ERR_NO_KEY);
    /* Without a key that allows backup the DKEK may be replaced. */
    TL_OK(a.c, init_dkek(a.c, 1));
    ck_assert_int_eq(wrap(a.c, a.key.key[0], &blob), SKS_ERR_NOT_ALLOWED);
    sks_writer_free(&blob);
    tl_key_free(&a.key);
    tl_card_free(a.c);
}
END_TEST

static Suite *dkek_suite(void)
{
    Suite *s = suite_create("dkek");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, kcv_and_derived_keys);
    tcase_add_test(tc, cmac_vectors);
    tcase_add_test(tc, blob_layout);
    suite_add_tcase(s, tc);
    tc = tcase_create("card");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, shares_make_the_dkek);
    tcase_add_test(tc, backup_restore_clone);
    tcase_add_test(tc, no_pin_backup_restores_anywhere);
    tcase_add_test(tc, no_backup_without_permission);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run_suite(dkek_suite());
}
