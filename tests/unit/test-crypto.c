/*
 * test-crypto.c - the cryptographic constructions of docs/protocol.md
 * section 5 (src/protocol/sks_crypto.c), pinned by fixed vectors.
 *
 * The expected values were computed independently of this code, with
 * Python's hmac/hashlib and the openssl command line:
 *
 *   import hmac, hashlib
 *   L = lambda x: len(x).to_bytes(2, 'big') + x
 *   B = lambda x: len(x).to_bytes(4, 'big') + x
 *   H = lambda k, d: hmac.new(k, d, hashlib.sha256).digest()
 *   Z = bytes(range(32)); csid = b'\x11' * 32; ssid = b'\x22' * 32
 *   uri = b'https://issuer.example/sks'; dev = bytes(range(0x30, 0x30 + 40))
 *   sk = H(Z, L(csid) + L(ssid) + L(uri) + L(dev))                        # SK_HEX
 *   H(sk + b'createPINPolicy' + b'\x01\x02', b'mac data')                 # MAC_0102_HEX
 *   H(sk + b'createPINPolicy' + b'\x00\x00', b'mac data')                 # MAC_0000_HEX
 *   H(sk + b'SKS Attestation' + b'\x00\x01', b'')                         # MAC_EMPTY_HEX
 *   ek = H(sk, b'EncryptionKey')                                          # EK_HEX
 *   ipk = b'\x30\x59' + b'\x01' * 10; esk = b'\x30\x59' + b'\x02' * 12
 *   H(sk, b'\x01' + L(csid) + L(ssid) + L(uri) + L(ipk) + b'\x01' +
 *         (100).to_bytes(2, 'big') + (3600).to_bytes(4, 'big') + L(esk))  # SESSION_ATT_HEX
 *   mac = b'\x5a' * 32; pub = b'\x30\x59' + b'\x04' * 8; epk = b'\xe0' * 40
 *   key = L(b'Key=') + L(b'key-1') + L(pub) + bytes([1, 0, 1, 1, 0, 3]) + L(b'My key') +
 *         b'\x10' + B(epk) + L(mac)
 *   full = (L(b'PUK Policy=') + L(b'Standard') + L(b'PUK-1') + b'\x05' + L(b'87654321') +
 *           b'\x00' + L(b'PIN Policy=') + L(b'Standard') + L(b'PIN-1') + b'\x00' +
 *           L(b'1234') + bytes([1, 0, 3, 1, 6, 4, 8, 0, 2]) + key)      # KEYATT_FULL_HEX
 *   H(sk + b'SKS Attestation' + b'\x00\x07', full)                       # KEYATT_MAC_HEX
 *   udef = (L(b'PUK Policy=') + L(b'No PUK') + L(b'PIN Policy=') + L(b'Standard') +
 *           L(b'PIN-1') + b'\x01' + bytes([1, 0, 3, 1, 6, 4, 8, 0, 2]) + key)  # KEYATT_UDEF_HEX
 *   none = L(b'PUK Policy=') + L(b'No PUK') + L(b'PIN Policy=') + L(b'No PIN') + key
 *                                                                         # KEYATT_NONE_HEX
 *   H(sk + b'SKS Attestation' + b'\x00\x09', L(b'Success') + L(mac))     # CLOSE_MAC_HEX
 *
 *   EK=<EK_HEX>; IV=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf
 *   printf '1234' | openssl enc -aes-256-cbc -K $EK -iv $IV | xxd -p      # CT_1234_HEX
 *   printf '0123456789abcdef' | openssl enc -aes-256-cbc -K $EK -iv $IV   # CT_16_HEX
 *   printf '' | openssl enc -aes-256-cbc -K $EK -iv $IV                   # CT_EMPTY_HEX
 *   Blocks whose plaintext has invalid PKCS#7 padding (openssl enc -nopad):
 *   printf '0123456789abcde\000' | openssl enc -aes-256-cbc -nopad ...    # BAD_PAD_00_HEX
 *   printf '0123456789abcde\021' | openssl enc -aes-256-cbc -nopad ...    # BAD_PAD_11_HEX
 *   printf '0123456789abcd\002\003' | openssl enc -aes-256-cbc -nopad ... # BAD_PAD_0203_HEX
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "card/card_keymat.h"
#include "issuer/sks_issuer.h"
#include "protocol/sks_crypto.h"
#include "protocol/sks_keys.h"

#define SK_HEX           "1702d2e9bb3ed13e6c30cd55fb7f6ad8d4a7cd05102affe4b338d37672f2879f"
#define MAC_0102_HEX     "e6105dcebff62c98871441e19c41df10b40575b3b31da058dd1974bf83d0d80f"
#define MAC_0000_HEX     "a8a67e105afe25d46b79a96fe715e88b3f832cb1121b733ed2ccad7bf3ee48b9"
#define MAC_EMPTY_HEX    "07f1cc4f3462f61574411bb661c3312b4fb69794bdee9047fa3c370040bea77b"
#define EK_HEX           "0a00f5025fe86f3cbd2446adc3e7445568f3a08997b7eccc1eea6cc251c9100b"
#define SESSION_ATT_HEX  "a10af2ee73991f7a193eee35ae62ec08f27ea64fb8f5a18056d6dec7749288bb"
#define IV_HEX           "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
#define CT_1234_HEX      "0b05d4a15f172817934355a0fb62f337"
#define CT_16_HEX        "38cb58b18baf987af8bd4ecce8dc05734cfb98a0d614423904c66e94f1377362"
#define CT_EMPTY_HEX     "7131d758c7d1ab945c5e83ec35fa72b2"
#define BAD_PAD_00_HEX   "33f34eae4a5599f7b4dd73bad9e88b3f"
#define BAD_PAD_11_HEX   "e08dfd8cf483533f618be685952a2abc"
#define BAD_PAD_0203_HEX "3b8c1522cfd84571b63c2b5994f6e399"
/* clang-format off */
#define KEYATT_FULL_HEX \
    "000b50554b20506f6c6963793d00085374616e64617264000550554b2d310500" \
    "08383736353433323100000b50494e20506f6c6963793d00085374616e646172" \
    "64000550494e2d310000043132333401000301060408000200044b65793d0005" \
    "6b65792d31000a3059040404040404040401000101000300064d79206b657910" \
    "00000028e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0" \
    "e0e0e0e0e0e0e0e0e0e0e0e000205a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a" \
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
#define KEYATT_MAC_HEX "0140b3469ef0668608d65d79db82333be5613b2604337de15a454a191ed458c7"
#define KEYATT_UDEF_HEX \
    "000b50554b20506f6c6963793d00064e6f2050554b000b50494e20506f6c6963" \
    "793d00085374616e64617264000550494e2d310101000301060408000200044b" \
    "65793d00056b65792d31000a3059040404040404040401000101000300064d79" \
    "206b65791000000028e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0" \
    "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e000205a5a5a5a5a5a5a5a5a5a5a5a5a" \
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
#define KEYATT_NONE_HEX \
    "000b50554b20506f6c6963793d00064e6f2050554b000b50494e20506f6c6963" \
    "793d00064e6f2050494e00044b65793d00056b65792d31000a30590404040404" \
    "04040401000101000300064d79206b65791000000028e0e0e0e0e0e0e0e0e0e0" \
    "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e00020" \
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
/* clang-format on */
#define CLOSE_MAC_HEX "fb8ea802705dc676ef89894d1ff0cd2adf8cab3ea2b42d30c658d793768f6ee6"

/* Decode a hex string into a fresh allocation; *n gets its length. */
static uint8_t *unhex(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    ck_assert_uint_eq(len % 2, 0);
    uint8_t *out = malloc(len / 2 + 1);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    *n = len / 2;
    return out;
}

/* Assert that p[0..n) equals the bytes written in hex. */
static void assert_hex(const uint8_t *p, size_t n, const char *hex)
{
    size_t wn;
    uint8_t *want = unhex(hex, &wn);
    ck_assert_uint_eq(n, wn);
    ck_assert_mem_eq(p, want, n);
    free(want);
}

/* Copy a 32-byte hex constant into a buffer. */
static void hex32(const char *hex, uint8_t out[32])
{
    size_t n;
    uint8_t *b = unhex(hex, &n);
    ck_assert_uint_eq(n, 32);
    memcpy(out, b, 32);
    free(b);
}

static sks_view V(const void *p, size_t n)
{
    sks_view v = {p, n};
    return v;
}

static sks_view S(const char *s)
{
    return V(s, strlen(s));
}

static uint8_t z[32], csid[32], ssid[32], dev[40];
static const char uri[] = "https://issuer.example/sks";

static void setup_inputs(void)
{
    for (int i = 0; i < 32; i++)
        z[i] = (uint8_t)i;
    memset(csid, 0x11, sizeof csid);
    memset(ssid, 0x22, sizeof ssid);
    for (int i = 0; i < 40; i++)
        dev[i] = (uint8_t)(0x30 + i);
}

START_TEST(test_session_key)
{
    uint8_t sk[32];
    ck_assert_int_eq(sks_derive_session_key(z, sizeof z, V(csid, 32), V(ssid, 32), S(uri),
                                            V(dev, sizeof dev), sk),
                     0);
    assert_hex(sk, 32, SK_HEX);

    /* Each input is bound: swapping the two session IDs changes SK. */
    uint8_t other[32];
    ck_assert_int_eq(sks_derive_session_key(z, sizeof z, V(ssid, 32), V(csid, 32), S(uri),
                                            V(dev, sizeof dev), other),
                     0);
    ck_assert(memcmp(sk, other, 32) != 0);
    ck_assert_int_eq(sks_derive_session_key(z, sizeof z, V(csid, 32), V(ssid, 32), S(uri),
                                            V(dev, sizeof dev - 1), other),
                     0);
    ck_assert(memcmp(sk, other, 32) != 0);
}
END_TEST

START_TEST(test_mac_with_counter)
{
    uint8_t sk[32], mac[32];
    hex32(SK_HEX, sk);
    const char *data = "mac data";
    ck_assert_int_eq(
        sks_mac(sk, "createPINPolicy", 0x0102, (const uint8_t *)data, strlen(data), mac), 0);
    assert_hex(mac, 32, MAC_0102_HEX);
    ck_assert_int_eq(sks_mac(sk, "createPINPolicy", 0, (const uint8_t *)data, strlen(data), mac),
                     0);
    assert_hex(mac, 32, MAC_0000_HEX);
    ck_assert_int_eq(sks_mac(sk, SKS_LABEL_ATTESTATION, 1, NULL, 0, mac), 0);
    assert_hex(mac, 32, MAC_EMPTY_HEX);
}
END_TEST

START_TEST(test_encryption_key)
{
    uint8_t sk[32], ek[32];
    hex32(SK_HEX, sk);
    ck_assert_int_eq(sks_encryption_key(sk, ek), 0);
    assert_hex(ek, 32, EK_HEX);
}
END_TEST

/* Encrypt `pt` with the fixed IV and compare with IV | expected ciphertext. */
static void check_encrypt(const char *pt, const char *ct_hex)
{
    uint8_t ek[32], iv[16];
    size_t n;
    hex32(EK_HEX, ek);
    uint8_t *ivb = unhex(IV_HEX, &n);
    memcpy(iv, ivb, 16);
    free(ivb);

    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_encrypt(ek, iv, (const uint8_t *)pt, strlen(pt), &w), 0);
    ck_assert_uint_ge(w.len, 16);
    ck_assert_mem_eq(w.buf, iv, 16);
    assert_hex(w.buf + 16, w.len - 16, ct_hex);

    /* And back. */
    uint8_t *out = malloc(w.len);
    size_t outlen = 99;
    ck_assert_int_eq(sks_decrypt(ek, w.buf, w.len, out, &outlen), 0);
    ck_assert_uint_eq(outlen, strlen(pt));
    ck_assert_mem_eq(out, pt, outlen);
    free(out);
    sks_writer_free(&w);
}

START_TEST(test_encrypt_fixed_iv)
{
    check_encrypt("1234", CT_1234_HEX);
    check_encrypt("0123456789abcdef", CT_16_HEX); /* a whole block of padding follows */
    check_encrypt("", CT_EMPTY_HEX);
}
END_TEST

START_TEST(test_encrypt_random_iv)
{
    uint8_t ek[32];
    hex32(EK_HEX, ek);
    sks_writer a, b;
    sks_writer_init(&a);
    sks_writer_init(&b);
    ck_assert_int_eq(sks_encrypt(ek, NULL, (const uint8_t *)"secret", 6, &a), 0);
    ck_assert_int_eq(sks_encrypt(ek, NULL, (const uint8_t *)"secret", 6, &b), 0);
    ck_assert_uint_eq(a.len, 32);
    ck_assert_uint_eq(b.len, 32);
    ck_assert(memcmp(a.buf, b.buf, 16) != 0); /* fresh IVs */
    uint8_t out[32];
    size_t outlen;
    ck_assert_int_eq(sks_decrypt(ek, a.buf, a.len, out, &outlen), 0);
    ck_assert_uint_eq(outlen, 6);
    ck_assert_mem_eq(out, "secret", 6);
    sks_writer_free(&a);
    sks_writer_free(&b);

    /* Appends to what the writer holds; refuses more than SKS_ENC_MAX. */
    uint8_t *big = calloc(1, SKS_ENC_MAX + 1);
    sks_writer_init(&a);
    sks_put_byte(&a, 0x42);
    ck_assert_int_eq(sks_encrypt(ek, NULL, big, SKS_ENC_MAX, &a), 0);
    ck_assert_uint_eq(a.len, 1 + 16 + SKS_ENC_MAX + 16);
    ck_assert_uint_eq(a.buf[0], 0x42);
    uint8_t *pt = malloc(a.len);
    ck_assert_int_eq(sks_decrypt(ek, a.buf + 1, a.len - 1, pt, &outlen), 0);
    ck_assert_uint_eq(outlen, SKS_ENC_MAX);
    ck_assert_mem_eq(pt, big, SKS_ENC_MAX);
    ck_assert_int_eq(sks_encrypt(ek, NULL, big, SKS_ENC_MAX + 1, &b), -1);
    free(pt);
    free(big);
    sks_writer_free(&a);
    sks_writer_free(&b);
}
END_TEST

/* Decrypt IV | hex ciphertext with EK; returns sks_decrypt's result. */
static int decrypt_hex(const char *ct_hex, size_t *outlen)
{
    uint8_t ek[32];
    hex32(EK_HEX, ek);
    size_t ivn, ctn;
    uint8_t *iv = unhex(IV_HEX, &ivn);
    uint8_t *ct = unhex(ct_hex, &ctn);
    uint8_t *msg = malloc(ivn + ctn);
    memcpy(msg, iv, ivn);
    memcpy(msg + ivn, ct, ctn);
    uint8_t *pt = malloc(ivn + ctn);
    memset(pt, 0xCC, ivn + ctn);
    int rc = sks_decrypt(ek, msg, ivn + ctn, pt, outlen);
    if (rc != 0) {
        /* nothing of a failed decryption is left behind */
        for (size_t i = 0; i < ivn + ctn; i++)
            ck_assert(pt[i] == 0 || pt[i] == 0xCC);
    }
    free(pt);
    free(msg);
    free(ct);
    free(iv);
    return rc;
}

START_TEST(test_decrypt_errors)
{
    size_t outlen = 77;
    ck_assert_int_eq(decrypt_hex(CT_1234_HEX, &outlen), 0);
    ck_assert_uint_eq(outlen, 4);

    ck_assert_int_eq(decrypt_hex(BAD_PAD_00_HEX, &outlen), -1);
    ck_assert_uint_eq(outlen, 0);
    ck_assert_int_eq(decrypt_hex(BAD_PAD_11_HEX, &outlen), -1);
    ck_assert_int_eq(decrypt_hex(BAD_PAD_0203_HEX, &outlen), -1);

    /* Bad lengths: IV only, IV + partial block, nothing. */
    uint8_t ek[32], buf[64], pt[64];
    hex32(EK_HEX, ek);
    memset(buf, 0, sizeof buf);
    for (size_t n = 0; n < sizeof buf; n++) {
        if (n >= 32 && n % 16 == 0)
            continue;
        ck_assert_int_eq(sks_decrypt(ek, buf, n, pt, &outlen), -1);
    }
}
END_TEST

START_TEST(test_session_attestation_digest)
{
    uint8_t sk[32], out[32];
    hex32(SK_HEX, sk);
    uint8_t ipk[12] = {0x30, 0x59}, esk[14] = {0x30, 0x59};
    memset(ipk + 2, 0x01, 10);
    memset(esk + 2, 0x02, 12);
    sks_req_create_session req = {
        .session_key_alg = SKS_SKALG_ECDH_P256,
        .server_session_id = V(ssid, 32),
        .issuer_uri = S(uri),
        .issuer_public_key = V(ipk, sizeof ipk),
        .updatable = 1,
        .client_operation_limit = 100,
        .session_life_time = 3600,
    };
    ck_assert_int_eq(sks_session_attestation_digest(sk, &req, V(csid, 32), V(esk, sizeof esk), out),
                     0);
    assert_hex(out, 32, SESSION_ATT_HEX);
}
END_TEST

static uint8_t mac5a[32], pub[10], epk[40];

/* The createKeyPair call and policies of the key attestation vectors. */
static void key_att_inputs(sks_policy_attestation *pol, sks_req_create_key_pair *req)
{
    memset(mac5a, 0x5A, sizeof mac5a);
    pub[0] = 0x30;
    pub[1] = 0x59;
    memset(pub + 2, 0x04, 8);
    memset(epk, 0xE0, sizeof epk);

    memset(pol, 0, sizeof *pol);
    pol->has_puk = 1;
    pol->puk_id = S("PUK-1");
    pol->puk_retry_limit = 5;
    pol->puk_value = S("87654321");
    pol->puk_format = SKS_PIN_NUMERIC;
    pol->has_pin = 1;
    pol->pin_id = S("PIN-1");
    pol->user_defined = 0;
    pol->pin_value = S("1234");
    pol->user_modifiable = 1;
    pol->format = SKS_PIN_NUMERIC;
    pol->retry_limit = 3;
    pol->grouping = 1;
    pol->pattern_restrictions = 6;
    pol->min_length = 4;
    pol->max_length = 8;
    pol->caching_support = 0;
    pol->input_method = 2;

    memset(req, 0, sizeof *req);
    req->id = S("key-1");
    req->private_key_backup = 1;
    req->migratable = 0;
    req->updatable = 1;
    req->delete_protected = 1;
    req->import_private_key = 0;
    req->key_usage = 3;
    req->friendly_name = S("My key");
    req->algorithm = SKS_KEYALG_EC_P256;
    req->mac = V(mac5a, 32);
    /* Handles and the PIN value on the wire are not part of the attestation. */
    req->provisioning_handle = 1234;
    req->pin_policy_handle = 5678;
    req->pin_value = S("ignored");
}

START_TEST(test_key_attestation_layout)
{
    sks_policy_attestation pol;
    sks_req_create_key_pair req;
    key_att_inputs(&pol, &req);
    sks_writer w;
    sks_writer_init(&w);

    ck_assert_int_eq(sks_key_attestation_data(&w, &pol, &req, V(pub, 10), V(epk, 40)), 0);
    assert_hex(w.buf, w.len, KEYATT_FULL_HEX);
    uint8_t sk[32], mac[32];
    hex32(SK_HEX, sk);
    ck_assert_int_eq(sks_mac(sk, SKS_LABEL_ATTESTATION, 7, w.buf, w.len, mac), 0);
    assert_hex(mac, 32, KEYATT_MAC_HEX);

    /* User-defined PIN: its value is not attested; no PUK. */
    sks_writer_reset(&w);
    pol.has_puk = 0;
    pol.user_defined = 1;
    ck_assert_int_eq(sks_key_attestation_data(&w, &pol, &req, V(pub, 10), V(epk, 40)), 0);
    assert_hex(w.buf, w.len, KEYATT_UDEF_HEX);

    /* No PIN policy at all. */
    sks_writer_reset(&w);
    pol.has_pin = 0;
    ck_assert_int_eq(sks_key_attestation_data(&w, &pol, &req, V(pub, 10), V(epk, 40)), 0);
    assert_hex(w.buf, w.len, KEYATT_NONE_HEX);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_close_attestation)
{
    uint8_t sk[32], mac[32];
    hex32(SK_HEX, sk);
    memset(mac5a, 0x5A, sizeof mac5a);
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_close_attestation_data(&w, V(mac5a, 32)), 0);
    ck_assert_uint_eq(w.len, 2 + 7 + 2 + 32);
    ck_assert_mem_eq(w.buf, "\x00\x07Success\x00\x20", 11);
    ck_assert_int_eq(sks_mac(sk, SKS_LABEL_ATTESTATION, 9, w.buf, w.len, mac), 0);
    assert_hex(mac, 32, CLOSE_MAC_HEX);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_sha256_and_helpers)
{
    /* FIPS 180-2 test vectors. */
    uint8_t out[32];
    ck_assert_int_eq(sks_sha256((const uint8_t *)"abc", 3, out), 0);
    assert_hex(out, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(sks_sha256(NULL, 0, out), 0);
    assert_hex(out, 32, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    uint8_t a[32], b[32];
    memset(a, 7, sizeof a);
    memcpy(b, a, sizeof b);
    ck_assert_int_eq(sks_mac_equal(a, b, 32), 1);
    b[31] ^= 1;
    ck_assert_int_eq(sks_mac_equal(a, b, 32), 0);
    b[31] ^= 1;
    b[0] ^= 0x80;
    ck_assert_int_eq(sks_mac_equal(a, b, 32), 0);

    sks_cleanse(a, sizeof a);
    for (size_t i = 0; i < sizeof a; i++)
        ck_assert_uint_eq(a[i], 0);
    sks_cleanse(NULL, 0);
}
END_TEST

/*
 * The P-256 SubjectPublicKeyInfo and PKCS#8 fast paths against OpenSSL's
 * own encoders and decoders. The fixed DER head is what
 *   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 |
 *   openssl pkey -pubout -outform DER | xxd -p
 * prints before the point (3059301306072a8648ce3d020106082a8648ce3d0301070342 00 04).
 */
static const char p256_spki_head_hex[] = "3059301306072a8648ce3d020106082a8648ce3d03010703420004";

START_TEST(test_p256_spki_fast_path)
{
    for (int i = 0; i < 50; i++) {
        EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        ck_assert_ptr_nonnull(key);
        uint8_t *fast = NULL;
        size_t fast_len = 0;
        unsigned char *ref = NULL;
        int ref_len = i2d_PUBKEY(key, &ref);
        ck_assert_int_eq(sks_spki_encode(key, &fast, &fast_len), 0);
        ck_assert_int_eq(ref_len, 91);
        ck_assert_uint_eq(fast_len, 91);
        ck_assert_mem_eq(fast, ref, 91);
        assert_hex(fast, 27, p256_spki_head_hex);

        EVP_PKEY *back = sks_spki_decode(fast, fast_len);
        ck_assert_ptr_nonnull(back);
        ck_assert_int_eq(EVP_PKEY_eq(back, key), 1);
        EVP_PKEY_free(back);
        /* Trailing bytes, truncation and a point off the curve: rejected like d2i_PUBKEY. */
        uint8_t longer[92];
        memcpy(longer, fast, 91);
        longer[91] = 0;
        ck_assert_ptr_null(sks_spki_decode(longer, sizeof longer));
        ck_assert_ptr_null(sks_spki_decode(fast, 90));
        fast[90] ^= 1;
        const unsigned char *p = fast;
        EVP_PKEY *ref_key = d2i_PUBKEY(NULL, &p, 91);
        ck_assert_ptr_null(ref_key);
        ck_assert_ptr_null(sks_spki_decode(fast, 91));
        ERR_clear_error();
        OPENSSL_free(ref);
        OPENSSL_free(fast);
        EVP_PKEY_free(key);
    }
    /* An x coordinate >= p is not a point. */
    uint8_t big[91];
    size_t head_len;
    uint8_t *head = unhex(p256_spki_head_hex, &head_len);
    ck_assert_uint_eq(head_len, 27);
    memcpy(big, head, head_len);
    free(head);
    memset(big + 27, 0xff, 64);
    ck_assert_ptr_null(sks_spki_decode(big, sizeof big));
    ERR_clear_error();
}
END_TEST

/* Keys outside the fast path (compressed points, P-384, RSA) go through OpenSSL unchanged. */
START_TEST(test_spki_other_keys)
{
    EVP_PKEY *keys[3] = {
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"),
        EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"),
        EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048),
    };
    ck_assert_int_eq(EVP_PKEY_set_utf8_string_param(
                         keys[0], OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
                     1);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(keys[i]);
        uint8_t *der = NULL;
        size_t len = 0;
        unsigned char *ref = NULL;
        int ref_len = i2d_PUBKEY(keys[i], &ref);
        ck_assert_int_gt(ref_len, 0);
        ck_assert_int_eq(sks_spki_encode(keys[i], &der, &len), 0);
        ck_assert_uint_eq(len, (size_t)ref_len);
        ck_assert_mem_eq(der, ref, len);
        EVP_PKEY *back = sks_spki_decode(der, len);
        ck_assert_ptr_nonnull(back);
        ck_assert_int_eq(EVP_PKEY_eq(back, keys[i]), 1);
        EVP_PKEY_free(back);
        OPENSSL_free(der);
        OPENSSL_free(ref);
        EVP_PKEY_free(keys[i]);
    }
    ck_assert_int_eq(sks_spki_encode(NULL, &(uint8_t *){NULL}, &(size_t){0}), -1);
    ck_assert_ptr_null(sks_spki_decode(NULL, 0));
}
END_TEST

/*
 * The card's PKCS#8 of a generated P-256 key is byte for byte the
 * encoder's output for the same key, and its SPKI is i2d_PUBKEY's.
 */
START_TEST(test_card_p256_pkcs8)
{
    for (int i = 0; i < 50; i++) {
        card_buf p8 = {NULL, 0}, spki = {NULL, 0};
        ck_assert_int_eq(card_keymat_generate(SKS_KEYALG_EC_P256, &p8, &spki), SKS_OK);
        EVP_PKEY *key = card_keymat_load(p8.ptr, p8.len);
        ck_assert_ptr_nonnull(key);
        uint8_t *ref = NULL;
        size_t ref_len = 0;
        ck_assert_int_eq(sks_pkcs8_encode(key, &ref, &ref_len), 0);
        ck_assert_uint_eq(p8.len, ref_len);
        ck_assert_mem_eq(p8.ptr, ref, ref_len);
        unsigned char *ref_spki = NULL;
        int ref_spki_len = i2d_PUBKEY(key, &ref_spki);
        ck_assert_uint_eq(spki.len, (size_t)ref_spki_len);
        ck_assert_mem_eq(spki.ptr, ref_spki, spki.len);
        OPENSSL_clear_free(ref, ref_len);
        OPENSSL_free(ref_spki);
        EVP_PKEY_free(key);
        card_buf_free(&p8);
        card_buf_free(&spki);
    }
}
END_TEST

/* Certificate against public key: the card's check, for matching and other keys. */
START_TEST(test_card_cert_matches)
{
    EVP_PKEY *ca_key = NULL;
    X509 *ca_cert = NULL;
    ck_assert_int_eq(sks_issuer_ca_new("test CA", &ca_key, &ca_cert), 0);
    card_buf p8 = {NULL, 0}, spki = {NULL, 0}, other8 = {NULL, 0}, other = {NULL, 0};
    ck_assert_int_eq(card_keymat_generate(SKS_KEYALG_EC_P256, &p8, &spki), SKS_OK);
    ck_assert_int_eq(card_keymat_generate(SKS_KEYALG_EC_P256, &other8, &other), SKS_OK);
    X509 *cert = sks_issuer_issue_cert(ca_key, ca_cert, (sks_view){spki.ptr, spki.len}, "key", 7);
    ck_assert_ptr_nonnull(cert);
    /* The issued certificate still carries a usable public key. */
    ck_assert_ptr_nonnull(X509_get0_pubkey(cert));
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(card_keymat_cert_matches(der, (size_t)len, spki.ptr, spki.len), 1);
    ck_assert_int_eq(card_keymat_cert_matches(der, (size_t)len, other.ptr, other.len), 0);
    ck_assert_int_eq(card_keymat_cert_matches(der, (size_t)len - 1, spki.ptr, spki.len), 0);
    /* A certificate with its key bit string damaged still parses, and no longer matches. */
    uint8_t *bad = OPENSSL_memdup(der, (size_t)len);
    uint8_t *at = NULL;
    for (int i = 0; i + 65 <= len && at == NULL; i++)
        if (memcmp(bad + i, spki.ptr + 26, 65) == 0)
            at = bad + i;
    ck_assert_ptr_nonnull(at);
    at[64] ^= 1;
    const unsigned char *p = bad;
    X509 *reparsed = d2i_X509(NULL, &p, len);
    ck_assert_ptr_nonnull(reparsed);
    ck_assert_int_eq(card_keymat_cert_matches(bad, (size_t)len, spki.ptr, spki.len), 0);
    at[64] ^= 1;
    ck_assert_int_eq(card_keymat_cert_matches(bad, (size_t)len, spki.ptr, spki.len), 1);
    X509_free(reparsed);
    OPENSSL_free(bad);
    OPENSSL_free(der);
    X509_free(cert);
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    card_buf_free(&p8);
    card_buf_free(&spki);
    card_buf_free(&other8);
    card_buf_free(&other);
    ERR_clear_error();
}
END_TEST

static Suite *crypto_suite(void)
{
    Suite *s = suite_create("crypto");
    TCase *tc = tcase_create("vectors");
    tcase_add_test(tc, test_session_key);
    tcase_add_test(tc, test_mac_with_counter);
    tcase_add_test(tc, test_encryption_key);
    tcase_add_test(tc, test_encrypt_fixed_iv);
    tcase_add_test(tc, test_encrypt_random_iv);
    tcase_add_test(tc, test_decrypt_errors);
    tcase_add_test(tc, test_session_attestation_digest);
    tcase_add_test(tc, test_key_attestation_layout);
    tcase_add_test(tc, test_close_attestation);
    tcase_add_test(tc, test_sha256_and_helpers);
    tcase_add_test(tc, test_p256_spki_fast_path);
    tcase_add_test(tc, test_spki_other_keys);
    tcase_add_test(tc, test_card_p256_pkcs8);
    tcase_add_test(tc, test_card_cert_matches);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    setup_inputs();
    SRunner *sr = srunner_create(crypto_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
