/*
 * test-msg.c - the table-driven message codec (src/protocol/sks_msg.c and
 * sks_msg_table.c): every method's request and response round-trips, every
 * truncation and a trailing byte are refused, MAC-only fields stay off the
 * wire but are in the MAC data, bounds give the documented status, and a few
 * layouts are checked byte for byte against docs/protocol.md.
 */
#include <check.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/sks_msg.h"

/* Every method ID of docs/protocol.md sections 6 and 7 with its name. */
static const struct {
    uint8_t id;
    const char *name;
} all_methods[] = {
    {1, "createProvisioningSession"},
    {2, "closeProvisioningSession"},
    {3, "abortProvisioningSession"},
    {5, "createPUKPolicy"},
    {6, "createPINPolicy"},
    {7, "createKeyPair"},
    {8, "setCertificatePath"},
    {9, "postDeleteKey"},
    {10, "postUnlockKey"},
    {11, "postUpdateKey"},
    {20, "restorePrivateKey"},
    {21, "importPrivateKey"},
    {22, "importSessionKey"},
    {23, "injectPrivateKey"},
    {24, "deleteSessionKey"},
    {64, "getDeviceInfo"},
    {65, "enumerateKeys"},
    {66, "getKeyAttributes"},
    {67, "signHashedData"},
    {68, "asymmetricDecrypt"},
    {69, "keyAgreement"},
    {70, "deleteKey"},
    {71, "exportKey"},
    {72, "verifyPIN"},
    {73, "changePIN"},
    {74, "unlockPIN"},
    {75, "logout"},
    {76, "enumeratePINPolicies"},
    {77, "verifyPUK"},
    {78, "createObject"},
    {79, "deleteObject"},
    {80, "enumerateObjects"},
    {81, "readObject"},
    {82, "updateObject"},
    {83, "setKeyAttributes"},
    {84, "resetPINPolicy"},
    {85, "initializeDKEK"},
    {86, "importDKEKShare"},
    {87, "getDKEKStatus"},
    {88, "wrapKey"},
    {89, "unwrapKey"},
    {90, "enumerateKeyAttributes"},
    {91, "countKeys"},
};
#define NMETHODS (sizeof all_methods / sizeof all_methods[0])

/* Storage big enough and aligned for any request or response struct. */
typedef struct {
    alignas(max_align_t) uint8_t b[1024];
} objbuf;

/* Source of field contents: distinct, recognisable bytes. */
static uint8_t pool[70000];

static void fill_pool(void)
{
    for (size_t i = 0; i < sizeof pool; i++)
        pool[i] = (uint8_t)(i * 31 + 7);
}

/* A length within a field's bounds that depends on the field's position. */
static size_t pick_len(const sks_field *f, size_t i)
{
    size_t want = 3 + 5 * i;
    if (want < f->min)
        want = f->min;
    if (want > f->max)
        want = f->max;
    return want;
}

/* Fill every field (wire and MAC-only) of `obj` with a value within bounds. */
static void fill_fields(const sks_field *f, size_t n, void *obj)
{
    uint8_t *o = obj;
    for (size_t i = 0; i < n; i++) {
        void *p = o + f[i].offset;
        switch (f[i].type) {
        case SKS_F_BYTE:
            *(uint8_t *)p = (uint8_t)(0x40 + i);
            break;
        case SKS_F_BOOL:
            *(uint8_t *)p = 1;
            break;
        case SKS_F_SHORT:
            *(uint16_t *)p = (uint16_t)(0x8100 + i);
            break;
        case SKS_F_INT:
            *(uint32_t *)p = 0x80010200u + (uint32_t)i;
            break;
        case SKS_F_BYTES:
        case SKS_F_BLOB: {
            sks_view *v = p;
            v->ptr = pool + i;
            v->len = pick_len(&f[i], i);
            break;
        }
        case SKS_F_CERTS: {
            sks_certpath *cp = p;
            cp->count = 3;
            for (size_t c = 0; c < cp->count; c++) {
                cp->cert[c].ptr = pool + 100 * c;
                cp->cert[c].len = 10 + c;
            }
            break;
        }
        }
    }
}

/* Size on the wire of the fields selected by mask, computed from the filled object. */
static size_t encoded_size(const sks_field *f, size_t n, uint8_t mask, const void *obj)
{
    const uint8_t *o = obj;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(f[i].flags & mask))
            continue;
        const void *p = o + f[i].offset;
        switch (f[i].type) {
        case SKS_F_BYTE:
        case SKS_F_BOOL:
            total += 1;
            break;
        case SKS_F_SHORT:
            total += 2;
            break;
        case SKS_F_INT:
            total += 4;
            break;
        case SKS_F_BYTES:
            total += 2 + ((const sks_view *)p)->len;
            break;
        case SKS_F_BLOB:
            total += 4 + ((const sks_view *)p)->len;
            break;
        case SKS_F_CERTS: {
            const sks_certpath *cp = p;
            total += 1;
            for (size_t c = 0; c < cp->count; c++)
                total += 2 + cp->cert[c].len;
            break;
        }
        }
    }
    return total;
}

static int view_eq(const sks_view *a, const sks_view *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->ptr, b->ptr, a->len) == 0);
}

/*
 * Check that `got` (decoded) matches `want` (source) on the fields selected
 * by mask, and that the other fields of `got` are still all zero.
 */
static void assert_fields(const char *method, const sks_field *f, size_t n, uint8_t mask,
                          const void *want, const void *got)
{
    const uint8_t *w = want, *g = got;
    for (size_t i = 0; i < n; i++) {
        const void *pw = w + f[i].offset, *pg = g + f[i].offset;
        int on_wire = (f[i].flags & mask) != 0;
        int ok = 1;
        switch (f[i].type) {
        case SKS_F_BYTE:
        case SKS_F_BOOL:
            ok = on_wire ? *(const uint8_t *)pw == *(const uint8_t *)pg : *(const uint8_t *)pg == 0;
            break;
        case SKS_F_SHORT:
            ok = on_wire ? *(const uint16_t *)pw == *(const uint16_t *)pg
                         : *(const uint16_t *)pg == 0;
            break;
        case SKS_F_INT:
            ok = on_wire ? *(const uint32_t *)pw == *(const uint32_t *)pg
                         : *(const uint32_t *)pg == 0;
            break;
        case SKS_F_BYTES:
        case SKS_F_BLOB:
            ok = on_wire ? view_eq(pw, pg)
                         : ((const sks_view *)pg)->ptr == NULL && ((const sks_view *)pg)->len == 0;
            break;
        case SKS_F_CERTS: {
            const sks_certpath *cw = pw, *cg = pg;
            if (!on_wire) {
                ok = cg->count == 0;
                break;
            }
            ok = cw->count == cg->count;
            for (size_t c = 0; ok && c < cw->count; c++)
                ok = view_eq(&cw->cert[c], &cg->cert[c]);
            break;
        }
        }
        ck_assert_msg(ok, "%s: field %s did not round-trip", method, f[i].name);
    }
}

/* Decode a copy of p[0..n) in its own allocation, so any over-read is caught. */
static int decode_request_copy(const sks_msgdesc *d, const uint8_t *p, size_t n, void *req,
                               const char **why)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    ck_assert_ptr_nonnull(copy);
    if (n > 0)
        memcpy(copy, p, n);
    int rc = sks_msg_decode_request(d, copy, n, req, why);
    free(copy);
    return rc;
}

static int decode_response_copy(const sks_msgdesc *d, const uint8_t *p, size_t n, void *resp,
                                uint8_t *status, sks_view *err)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    ck_assert_ptr_nonnull(copy);
    if (n > 0)
        memcpy(copy, p, n);
    int rc = sks_msg_decode_response(d, copy, n, resp, status, err);
    free(copy);
    return rc;
}

/* ---- descriptors ------------------------------------------------------ */

START_TEST(test_find_and_names)
{
    for (size_t i = 0; i < NMETHODS; i++) {
        const sks_msgdesc *d = sks_msg_find(all_methods[i].id);
        ck_assert_ptr_nonnull(d);
        ck_assert_uint_eq(d->id, all_methods[i].id);
        ck_assert_str_eq(d->name, all_methods[i].name);
        ck_assert_str_eq(sks_method_name(all_methods[i].id), all_methods[i].name);
    }
    /* Every other ID is unknown. */
    size_t known = 0;
    for (unsigned id = 0; id < 256; id++) {
        if (sks_msg_find((uint8_t)id) != NULL)
            known++;
    }
    ck_assert_uint_eq(known, NMETHODS);
    ck_assert_ptr_null(sks_msg_find(4));
    ck_assert_ptr_null(sks_msg_find(0));
    ck_assert_ptr_null(sks_msg_find(255));
    ck_assert_str_eq(sks_method_name(4), "unknown");
}
END_TEST

START_TEST(test_status_names)
{
    static const char *const names[] = {
        "OK",         "AUTHENTICATION", "STORAGE", "MAC",         "CRYPTO",
        "NO_SESSION", "SESSION_VERIFY", "NO_KEY",  "ALGORITHM",   "NOT_ALLOWED",
        "OPTION",     "INTERNAL",       "FORMAT",  "PIN_BLOCKED", "NOT_AUTHENTICATED",
        "NO_METHOD",  "NO_POLICY",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ck_assert_str_eq(sks_status_name((uint8_t)i), names[i]);
    ck_assert_str_eq(sks_status_name(17), "unknown");
    ck_assert_str_eq(sks_status_name(255), "unknown");
}
END_TEST

START_TEST(test_descriptor_shape)
{
    for (size_t i = 0; i < NMETHODS; i++) {
        const sks_msgdesc *d = sks_msg_find(all_methods[i].id);
        /* 1..21 are the provisioning methods; 22..24 (injection) are not in a session. */
        int provisioning = d->id < SKS_M_IMPORT_SESSION_KEY;
        int needs_mac = provisioning && d->id != SKS_M_CREATE_PROVISIONING_SESSION &&
                        d->id != SKS_M_ABORT_PROVISIONING_SESSION;
        ck_assert_int_eq(d->in_session, provisioning && d->id != 1);
        if (d->in_session) {
            ck_assert_str_eq(d->req[0].name, "ProvisioningHandle");
            ck_assert_int_eq(d->req[0].type, SKS_F_INT);
            ck_assert_uint_eq(d->req[0].flags, SKS_FF_WIRE); /* handles are never MACed */
        }
        /* The MAC argument is last, WIRE only, exactly 32 bytes. */
        int has_mac = d->nreq > 0 && strcmp(d->req[d->nreq - 1].name, "MAC") == 0;
        ck_assert_msg(has_mac == needs_mac, "%s: MAC argument", d->name);
        if (has_mac) {
            const sks_field *m = &d->req[d->nreq - 1];
            ck_assert_int_eq(m->type, SKS_F_BYTES);
            ck_assert_uint_eq(m->flags, SKS_FF_WIRE);
            ck_assert_uint_eq(m->min, 32);
            ck_assert_uint_eq(m->max, 32);
        }
        for (size_t f = 0; f < d->nreq; f++) {
            ck_assert_uint_ne(d->req[f].flags, 0);
            /* Key User API calls carry no MAC data. */
            if (!provisioning)
                ck_assert_uint_eq(d->req[f].flags, SKS_FF_WIRE);
        }
        for (size_t f = 0; f < d->nresp; f++)
            ck_assert_uint_eq(d->resp[f].flags, SKS_FF_WIRE);
    }
    ck_assert_uint_eq(sks_msg_find(SKS_M_GET_DEVICE_INFO)->nreq, 0);
    ck_assert_uint_eq(sks_msg_find(SKS_M_ENUMERATE_PIN_POLICIES)->nreq, 0);
    ck_assert_uint_eq(sks_msg_find(SKS_M_ABORT_PROVISIONING_SESSION)->nresp, 0);
    ck_assert_uint_eq(sks_msg_find(SKS_M_VERIFY_PIN)->nresp, 0);
}
END_TEST

/* ---- generic round trips ---------------------------------------------- */

START_TEST(test_request_round_trip)
{
    const sks_msgdesc *d = sks_msg_find(all_methods[_i].id);
    objbuf src, dst;
    memset(&src, 0, sizeof src);
    memset(&dst, 0, sizeof dst);
    fill_fields(d->req, d->nreq, &src);

    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_request(d, &src, &w), 0);
    ck_assert_uint_eq(w.len, 1 + encoded_size(d->req, d->nreq, SKS_FF_WIRE, &src));
    ck_assert_uint_eq(w.buf[0], d->id);

    const char *why = NULL;
    /* Views point into the decoded buffer: decode in place to compare them. */
    ck_assert_int_eq(sks_msg_decode_request(d, w.buf + 1, w.len - 1, &dst, &why), SKS_OK);
    /* WIRE fields come back; MAC-only fields were never on the wire. */
    assert_fields(d->name, d->req, d->nreq, SKS_FF_WIRE, &src, &dst);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_response_round_trip)
{
    const sks_msgdesc *d = sks_msg_find(all_methods[_i].id);
    objbuf src, dst;
    memset(&src, 0, sizeof src);
    memset(&dst, 0, sizeof dst);
    fill_fields(d->resp, d->nresp, &src);

    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_response(d, &src, &w), 0);
    ck_assert_uint_eq(w.len, 1 + encoded_size(d->resp, d->nresp, SKS_FF_WIRE, &src));
    ck_assert_uint_eq(w.buf[0], SKS_OK);

    uint8_t status = 0xFF;
    sks_view err = {(const uint8_t *)"x", 1};
    ck_assert_int_eq(decode_response_copy(d, w.buf, w.len, &dst, &status, &err), 0);
    ck_assert_uint_eq(status, SKS_OK);
    ck_assert_uint_eq(err.len, 0);
    sks_writer_free(&w);

    /* Decode in place to compare the views' contents. */
    sks_writer_init(&w);
    sks_msg_encode_response(d, &src, &w);
    ck_assert_int_eq(sks_msg_decode_response(d, w.buf, w.len, &dst, &status, NULL), 0);
    assert_fields(d->name, d->resp, d->nresp, SKS_FF_WIRE, &src, &dst);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_request_truncation_and_trailing)
{
    const sks_msgdesc *d = sks_msg_find(all_methods[_i].id);
    objbuf src, dst;
    memset(&src, 0, sizeof src);
    fill_fields(d->req, d->nreq, &src);
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_request(d, &src, &w), 0);
    const uint8_t *args = w.buf + 1;
    size_t n = w.len - 1;

    for (size_t k = 0; k < n; k++) {
        memset(&dst, 0, sizeof dst);
        const char *why = NULL;
        int rc = decode_request_copy(d, args, k, &dst, &why);
        ck_assert_msg(rc == SKS_ERR_FORMAT || rc == SKS_ERR_OPTION,
                      "%s: truncated to %zu of %zu bytes gave %d", d->name, k, n, rc);
        ck_assert_ptr_nonnull(why);
    }

    /* One byte too many. */
    sks_put_byte(&w, 0);
    const char *why = NULL;
    memset(&dst, 0, sizeof dst);
    ck_assert_int_eq(decode_request_copy(d, w.buf + 1, w.len - 1, &dst, &why), SKS_ERR_FORMAT);
    ck_assert_ptr_nonnull(why);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_response_truncation_and_trailing)
{
    const sks_msgdesc *d = sks_msg_find(all_methods[_i].id);
    objbuf src, dst;
    memset(&src, 0, sizeof src);
    fill_fields(d->resp, d->nresp, &src);
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_response(d, &src, &w), 0);

    for (size_t k = 0; k < w.len; k++) {
        uint8_t status = 0xEE;
        memset(&dst, 0, sizeof dst);
        ck_assert_msg(decode_response_copy(d, w.buf, k, &dst, &status, NULL) == -1,
                      "%s: answer truncated to %zu bytes accepted", d->name, k);
        ck_assert_uint_eq(status, 0xEE);
    }
    sks_put_byte(&w, 0);
    uint8_t status = 0xEE;
    ck_assert_int_eq(decode_response_copy(d, w.buf, w.len, &dst, &status, NULL), -1);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_macdata_has_mac_fields_only)
{
    const sks_msgdesc *d = sks_msg_find(all_methods[_i].id);
    objbuf a, b;
    memset(&a, 0, sizeof a);
    fill_fields(d->req, d->nreq, &a);

    sks_writer ma, mb;
    sks_writer_init(&ma);
    ck_assert_int_eq(sks_msg_macdata(d, &a, &ma), 0);
    ck_assert_uint_eq(ma.len, encoded_size(d->req, d->nreq, SKS_FF_MAC, &a));

    /* Changing a field changes the MAC data exactly when the field is MAC-flagged. */
    for (size_t i = 0; i < d->nreq; i++) {
        memcpy(&b, &a, sizeof b);
        uint8_t *p = b.b + d->req[i].offset;
        switch (d->req[i].type) {
        case SKS_F_BYTE:
        case SKS_F_BOOL:
            *p ^= 1;
            break;
        case SKS_F_SHORT:
            *(uint16_t *)(void *)p ^= 1;
            break;
        case SKS_F_INT:
            *(uint32_t *)(void *)p ^= 1;
            break;
        case SKS_F_BYTES:
        case SKS_F_BLOB:
            ((sks_view *)(void *)p)->ptr += 1000;
            break;
        case SKS_F_CERTS:
            ((sks_certpath *)(void *)p)->cert[0].ptr += 1;
            break;
        }
        sks_writer_init(&mb);
        ck_assert_int_eq(sks_msg_macdata(d, &b, &mb), 0);
        int same = ma.len == mb.len && (ma.len == 0 || memcmp(ma.buf, mb.buf, ma.len) == 0);
        ck_assert_msg(same == !(d->req[i].flags & SKS_FF_MAC), "%s: field %s and the MAC data",
                      d->name, d->req[i].name);
        sks_writer_free(&mb);
    }
    sks_writer_free(&ma);
}
END_TEST

/* ---- exact layouts from docs/protocol.md ------------------------------ */

static sks_view V(const char *s)
{
    sks_view v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static uint8_t mac32[32];

/*
 * Request `r` of `method` must encode as `head` followed by the 32-byte MAC
 * (mac32, its last field), and its MAC data must be exactly `mac_data`.
 */
static void assert_request_layout(uint8_t method, const void *r, const uint8_t *head,
                                  size_t head_len, const uint8_t *mac_data, size_t mac_len)
{
    const sks_msgdesc *d = sks_msg_find(method);
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_request(d, r, &w), 0);
    ck_assert_uint_eq(w.len, head_len + 32);
    ck_assert_mem_eq(w.buf, head, head_len);
    ck_assert_mem_eq(w.buf + head_len, mac32, 32);
    sks_writer_reset(&w);
    ck_assert_int_eq(sks_msg_macdata(d, r, &w), 0);
    ck_assert_uint_eq(w.len, mac_len);
    ck_assert_mem_eq(w.buf, mac_data, mac_len);
    sks_writer_free(&w);
}

START_TEST(test_create_pin_policy_layout)
{
    memset(mac32, 0xAA, sizeof mac32);
    sks_req_create_pin_policy r;
    memset(&r, 0, sizeof r);
    r.provisioning_handle = 0x11;
    r.id = V("pin1");
    r.puk_policy_handle = 0x22;
    r.puk_id = V("puk1");
    r.user_defined = 1;
    r.user_modifiable = 0;
    r.format = 0;
    r.retry_limit = 3;
    r.grouping = 1;
    r.pattern_restrictions = 4;
    r.min_length = 4;
    r.max_length = 8;
    r.caching_support = 1;
    r.input_method = 2;
    r.mac.ptr = mac32;
    r.mac.len = 32;

    /* docs/protocol.md 6.5, in table order, MAC-only PUK ID left out. */
    const uint8_t head[] = {6,    0,    0,    0, 0x11, 0, 4, 'p', 'i', 'n', '1', 0, 0, 0,
                            0x22, 0x01, 0x00, 0, 3,    1, 4, 4,   8,   1,   2,   0, 32};
    ck_assert_uint_eq(sizeof head + 32, 1 + 4 + 6 + 4 + 10 + 34);
    /* MAC data: L(ID) L(PUK ID) then the nine one-byte arguments. */
    const uint8_t mac_want[] = {0,   4, 'p', 'i', 'n', '1', 0, 4, 'p', 'u', 'k',
                                '1', 1, 0,   0,   3,   1,   4, 4, 8,   1,   2};
    assert_request_layout(6, &r, head, sizeof head, mac_want, sizeof mac_want);
}
END_TEST

START_TEST(test_close_session_layout)
{
    memset(mac32, 0x5C, sizeof mac32);
    sks_req_close_session r = {
        .provisioning_handle = 0x01020304,
        .generated_keys = 2,
        .deleted_keys = 0x0300,
        .cloned_keys = 4,
        .replaced_keys = 5,
        .extension_objects = 0xFFFF,
        .mac = {mac32, 32},
    };
    const uint8_t head[] = {2, 1, 2, 3, 4, 0, 2, 3, 0, 0, 4, 0, 5, 0xFF, 0xFF, 0, 32};
    const uint8_t mac_want[] = {0, 2, 3, 0, 0, 4, 0, 5, 0xFF, 0xFF};
    assert_request_layout(2, &r, head, sizeof head, mac_want, sizeof mac_want);
}
END_TEST

START_TEST(test_create_key_pair_layout)
{
    memset(mac32, 0x01, sizeof mac32);
    sks_req_create_key_pair r;
    memset(&r, 0, sizeof r);
    r.provisioning_handle = 9;
    r.id = V("k");
    r.pin_policy_handle = 10;
    r.pin_policy_id = V("P");
    r.pin_value = V("1234");
    r.pin_value_mac = V("mac");
    r.private_key_backup = 1;
    r.migratable = 0;
    r.updatable = 1;
    r.delete_protected = 0;
    r.import_private_key = 1;
    r.key_usage = 3;
    r.friendly_name = V("fn");
    r.algorithm = 0x10;
    r.mac.ptr = mac32;
    r.mac.len = 32;
    const uint8_t head[] = {7,   0,   0, 0, 9, 0, 1, 'k', 0, 0, 0,   10,  0,    4, '1', '2',
                            '3', '4', 1, 0, 1, 0, 1, 3,   0, 2, 'f', 'n', 0x10, 0, 32};
    /* PINValue is WIRE only; "PINValue for the MAC" (MAC only) follows the policy ID. */
    const uint8_t mac_want[] = {0, 1, 'k', 0, 1, 'P', 0, 3, 'm', 'a', 'c',
                                1, 0, 1,   0, 1, 3,   0, 2, 'f', 'n', 0x10};
    assert_request_layout(7, &r, head, sizeof head, mac_want, sizeof mac_want);

    /* Response: PublicKey byte[], AttestedPublicKey byte[32], EncryptedPrivateKey blob, KeyHandle.
     */
    uint8_t att[32];
    memset(att, 0x77, sizeof att);
    sks_resp_create_key_pair resp = {V("pk"), {att, 32}, V("e"), 0x0A0B0C0D};
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_response(sks_msg_find(7), &resp, &w), 0);
    const uint8_t resp_head[] = {0, 0, 2, 'p', 'k', 0, 32};
    const uint8_t resp_tail[] = {0, 0, 0, 1, 'e', 0x0A, 0x0B, 0x0C, 0x0D};
    ck_assert_uint_eq(w.len, sizeof resp_head + 32 + sizeof resp_tail);
    ck_assert_mem_eq(w.buf, resp_head, sizeof resp_head);
    ck_assert_mem_eq(w.buf + sizeof resp_head, att, 32);
    ck_assert_mem_eq(w.buf + sizeof resp_head + 32, resp_tail, sizeof resp_tail);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_set_certificate_path_layout)
{
    memset(mac32, 0x02, sizeof mac32);
    sks_req_set_certificate_path r;
    memset(&r, 0, sizeof r);
    r.provisioning_handle = 1;
    r.key_handle = 2;
    r.key_id = V("id");
    r.key_public_key = V("spki");
    r.certificate_path.count = 2;
    r.certificate_path.cert[0] = V("ee");
    r.certificate_path.cert[1] = V("ca!");
    r.mac.ptr = mac32;
    r.mac.len = 32;
    const uint8_t head[] = {8, 0,   0,   0, 1, 0,   0,   0,   2, 2, 0,
                            2, 'e', 'e', 0, 3, 'c', 'a', '!', 0, 32};
    const uint8_t mac_want[] = {0, 2, 'i', 'd', 0,   4, 's', 'p', 'k', 'i',
                                2, 0, 2,   'e', 'e', 0, 3,   'c', 'a', '!'};
    assert_request_layout(8, &r, head, sizeof head, mac_want, sizeof mac_want);
}
END_TEST

START_TEST(test_put_private_key_layout)
{
    /* restorePrivateKey and importPrivateKey share one layout, differ in name. */
    memset(mac32, 0x03, sizeof mac32);
    sks_req_put_private_key r = {5, 6, V("kid"), V("enc"), {mac32, 32}};
    /* head[0] is the method ID. */
    uint8_t head[] = {0, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 3, 'e', 'n', 'c', 0, 32};
    const uint8_t mac_want[] = {0, 3, 'k', 'i', 'd', 0, 0, 0, 3, 'e', 'n', 'c'};
    const uint8_t ids[] = {SKS_M_RESTORE_PRIVATE_KEY, SKS_M_IMPORT_PRIVATE_KEY};
    for (size_t i = 0; i < 2; i++) {
        head[0] = ids[i];
        assert_request_layout(ids[i], &r, head, sizeof head, mac_want, sizeof mac_want);
    }
}
END_TEST

START_TEST(test_no_argument_methods)
{
    const uint8_t ids[] = {SKS_M_GET_DEVICE_INFO, SKS_M_ENUMERATE_PIN_POLICIES};
    for (size_t i = 0; i < 2; i++) {
        const sks_msgdesc *d = sks_msg_find(ids[i]);
        sks_writer w;
        sks_writer_init(&w);
        ck_assert_int_eq(sks_msg_encode_request(d, NULL, &w), 0);
        ck_assert_uint_eq(w.len, 1);
        ck_assert_uint_eq(w.buf[0], ids[i]);
        sks_writer_free(&w);
        const char *why = NULL;
        ck_assert_int_eq(sks_msg_decode_request(d, NULL, 0, NULL, &why), SKS_OK);
        const uint8_t extra[] = {0};
        ck_assert_int_eq(sks_msg_decode_request(d, extra, 1, NULL, &why), SKS_ERR_FORMAT);
    }
    /* A method without results answers a lone status byte. */
    const sks_msgdesc *d = sks_msg_find(SKS_M_LOGOUT);
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_response(d, NULL, &w), 0);
    ck_assert_uint_eq(w.len, 1);
    ck_assert_uint_eq(w.buf[0], 0);
    uint8_t status = 0xEE;
    ck_assert_int_eq(sks_msg_decode_response(d, w.buf, w.len, NULL, &status, NULL), 0);
    ck_assert_uint_eq(status, SKS_OK);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_object_and_device_info_layouts)
{
    /* createObject: PINPolicyHandle int, Class byte, Private bool, Attributes blob. */
    sks_req_create_object co = {0x0A, SKS_OBJECT_DATA, 1, V("attr")};
    const uint8_t co_want[] = {78, 0, 0, 0, 0x0A, 2, 1, 0, 0, 0, 4, 'a', 't', 't', 'r'};
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_request(sks_msg_find(SKS_M_CREATE_OBJECT), &co, &w), 0);
    ck_assert_uint_eq(w.len, sizeof co_want);
    ck_assert_mem_eq(w.buf, co_want, sizeof co_want);

    /* Attributes up to SKS_OBJECT_MAX; one byte more is OPTION. */
    static uint8_t big[SKS_OBJECT_MAX + 1];
    sks_req_create_object out;
    const char *why = NULL;
    co.attributes.ptr = big;
    co.attributes.len = SKS_OBJECT_MAX;
    sks_writer_reset(&w);
    sks_msg_encode_request(sks_msg_find(SKS_M_CREATE_OBJECT), &co, &w);
    ck_assert_int_eq(
        sks_msg_decode_request(sks_msg_find(SKS_M_CREATE_OBJECT), w.buf + 1, w.len - 1, &out, &why),
        SKS_OK);
    co.attributes.len = SKS_OBJECT_MAX + 1;
    sks_writer_reset(&w);
    sks_msg_encode_request(sks_msg_find(SKS_M_CREATE_OBJECT), &co, &w);
    ck_assert_int_eq(
        sks_msg_decode_request(sks_msg_find(SKS_M_CREATE_OBJECT), w.buf + 1, w.len - 1, &out, &why),
        SKS_ERR_OPTION);
    ck_assert_str_eq(why, "Attributes");

    /* setKeyAttributes: KeyHandle int, ID byte[] 1..32, FriendlyName byte[]. */
    sks_req_set_key_attributes ska = {7, V("id"), V("n")};
    const uint8_t ska_want[] = {83, 0, 0, 0, 7, 0, 2, 'i', 'd', 0, 1, 'n'};
    sks_writer_reset(&w);
    ck_assert_int_eq(sks_msg_encode_request(sks_msg_find(SKS_M_SET_KEY_ATTRIBUTES), &ska, &w), 0);
    ck_assert_uint_eq(w.len, sizeof ska_want);
    ck_assert_mem_eq(w.buf, ska_want, sizeof ska_want);

    /* getDeviceInfo: ApiLevel, Serial, path, KeyAlgorithms, MaxKeys, UsedKeys, ChangeCounter. */
    sks_resp_get_device_info di;
    memset(&di, 0, sizeof di);
    di.api_level = 1;
    di.serial = V("S1");
    di.device_certificate_path.count = 1;
    di.device_certificate_path.cert[0] = V("c");
    di.key_algorithms = V("\x01\x10");
    di.max_keys = 100;
    di.used_keys = 2;
    di.change_counter = 0x01020304;
    const uint8_t di_want[] = {0,    0, 1, 0, 2,   'S', '1', 1, 0, 1, 'c', 0, 2, 1,
                               0x10, 0, 0, 0, 100, 0,   0,   0, 2, 1, 2,   3, 4};
    sks_writer_reset(&w);
    ck_assert_int_eq(sks_msg_encode_response(sks_msg_find(SKS_M_GET_DEVICE_INFO), &di, &w), 0);
    ck_assert_uint_eq(w.len, sizeof di_want);
    ck_assert_mem_eq(w.buf, di_want, sizeof di_want);
    sks_writer_free(&w);
}
END_TEST

/* ---- bounds ----------------------------------------------------------- */

/* Encode a createPUKPolicy call with the given ID and MAC lengths, decode it. */
static int decode_puk_policy(size_t id_len, size_t mac_len, const char **why)
{
    static uint8_t buf[64];
    memset(buf, 'i', sizeof buf);
    sks_req_create_puk_policy r = {1, {buf, id_len}, V("enc"), 0, 3, {buf, mac_len}};
    sks_req_create_puk_policy out;
    memset(&out, 0, sizeof out);
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_request(sks_msg_find(5), &r, &w), 0);
    int rc = decode_request_copy(sks_msg_find(5), w.buf + 1, w.len - 1, &out, why);
    sks_writer_free(&w);
    return rc;
}

START_TEST(test_length_bounds_give_option)
{
    const char *why = NULL;
    ck_assert_int_eq(decode_puk_policy(32, 32, &why), SKS_OK);
    ck_assert_int_eq(decode_puk_policy(1, 32, &why), SKS_OK);
    why = NULL;
    ck_assert_int_eq(decode_puk_policy(33, 32, &why), SKS_ERR_OPTION);
    ck_assert_str_eq(why, "ID");
    why = NULL;
    ck_assert_int_eq(decode_puk_policy(0, 32, &why), SKS_ERR_OPTION);
    ck_assert_str_eq(why, "ID");
    why = NULL;
    ck_assert_int_eq(decode_puk_policy(5, 31, &why), SKS_ERR_OPTION);
    ck_assert_str_eq(why, "MAC");
    why = NULL;
    ck_assert_int_eq(decode_puk_policy(5, 33, &why), SKS_ERR_OPTION);
    ck_assert_str_eq(why, "MAC");

    /* IssuerURI 1..1024 and FriendlyName 0..255. */
    static uint8_t big[2000];
    sks_req_create_session cs = {1, {big, 32}, {big, 1025}, V("k"), 0, 0, 60};
    sks_req_create_session cs_out;
    sks_writer w;
    sks_writer_init(&w);
    sks_msg_encode_request(sks_msg_find(1), &cs, &w);
    why = NULL;
    ck_assert_int_eq(decode_request_copy(sks_msg_find(1), w.buf + 1, w.len - 1, &cs_out, &why),
                     SKS_ERR_OPTION);
    ck_assert_str_eq(why, "IssuerURI");
    cs.issuer_uri.len = 1024;
    sks_writer_reset(&w);
    sks_msg_encode_request(sks_msg_find(1), &cs, &w);
    ck_assert_int_eq(decode_request_copy(sks_msg_find(1), w.buf + 1, w.len - 1, &cs_out, &why),
                     SKS_OK);
    cs.server_session_id.len = 31;
    sks_writer_reset(&w);
    sks_msg_encode_request(sks_msg_find(1), &cs, &w);
    ck_assert_int_eq(decode_request_copy(sks_msg_find(1), w.buf + 1, w.len - 1, &cs_out, &why),
                     SKS_ERR_OPTION);
    ck_assert_str_eq(why, "ServerSessionID");
    sks_writer_free(&w);

    sks_req_create_key_pair kp;
    memset(&kp, 0, sizeof kp);
    kp.id = V("k");
    kp.friendly_name.ptr = big;
    kp.friendly_name.len = 256;
    kp.mac.ptr = big;
    kp.mac.len = 32;
    sks_writer_init(&w);
    sks_msg_encode_request(sks_msg_find(7), &kp, &w);
    sks_req_create_key_pair kp_out;
    why = NULL;
    ck_assert_int_eq(decode_request_copy(sks_msg_find(7), w.buf + 1, w.len - 1, &kp_out, &why),
                     SKS_ERR_OPTION);
    ck_assert_str_eq(why, "FriendlyName");
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_bool_not_01_gives_format)
{
    /* createPINPolicy with UserDefined = 2 (offset: id 1 + handle 4 + L("p") 3 + handle 4). */
    sks_req_create_pin_policy r;
    memset(&r, 0, sizeof r);
    r.id = V("p");
    r.mac.ptr = mac32;
    r.mac.len = 32;
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_request(sks_msg_find(6), &r, &w), 0);
    size_t at = 1 + 4 + 3 + 4;
    ck_assert_uint_eq(w.buf[at], 0);
    w.buf[at] = 2;
    sks_req_create_pin_policy out;
    memset(&out, 0, sizeof out);
    const char *why = NULL;
    ck_assert_int_eq(decode_request_copy(sks_msg_find(6), w.buf + 1, w.len - 1, &out, &why),
                     SKS_ERR_FORMAT);
    ck_assert_str_eq(why, "UserDefined");
    w.buf[at] = 0xFF;
    ck_assert_int_eq(decode_request_copy(sks_msg_find(6), w.buf + 1, w.len - 1, &out, &why),
                     SKS_ERR_FORMAT);
    w.buf[at] = 1;
    ck_assert_int_eq(decode_request_copy(sks_msg_find(6), w.buf + 1, w.len - 1, &out, &why),
                     SKS_OK);
    ck_assert_uint_eq(out.user_defined, 1);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_cert_count_bounds)
{
    /* setCertificatePath needs 1..10 certificates: hand-built calls. */
    const sks_msgdesc *d = sks_msg_find(SKS_M_SET_CERTIFICATE_PATH);
    for (unsigned count = 0; count <= 12; count++) {
        sks_writer w;
        sks_writer_init(&w);
        sks_put_int(&w, 1);
        sks_put_int(&w, 2);
        sks_put_byte(&w, (uint8_t)count);
        for (unsigned c = 0; c < count; c++)
            sks_put_bytes(&w, "cert", 4);
        sks_put_bytes(&w, mac32, 32);
        sks_req_set_certificate_path out;
        memset(&out, 0, sizeof out);
        const char *why = NULL;
        int rc = decode_request_copy(d, w.buf, w.len, &out, &why);
        if (count >= 1 && count <= SKS_CERT_PATH_MAX) {
            ck_assert_int_eq(rc, SKS_OK);
            ck_assert_uint_eq(out.certificate_path.count, count);
        } else {
            ck_assert_int_eq(rc, SKS_ERR_FORMAT);
            ck_assert_str_eq(why, "CertificatePath");
        }
        sks_writer_free(&w);
    }

    /* getKeyAttributes allows an empty path (a key without certificate). */
    sks_resp_get_key_attributes ka;
    memset(&ka, 0, sizeof ka);
    ka.id = V("id");
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_response(sks_msg_find(66), &ka, &w), 0);
    sks_resp_get_key_attributes out;
    memset(&out, 0xCC, sizeof out);
    uint8_t status = 0xEE;
    ck_assert_int_eq(sks_msg_decode_response(sks_msg_find(66), w.buf, w.len, &out, &status, NULL),
                     0);
    ck_assert_uint_eq(out.certificate_path.count, 0);
    ck_assert_ptr_null(out.certificate_path.cert[0].ptr);
    sks_writer_free(&w);

    /* getDeviceInfo's device path may not be empty. */
    sks_resp_get_device_info di;
    memset(&di, 0, sizeof di);
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_response(sks_msg_find(64), &di, &w), 0);
    sks_resp_get_device_info di_out;
    ck_assert_int_eq(
        sks_msg_decode_response(sks_msg_find(64), w.buf, w.len, &di_out, &status, NULL), -1);
    sks_writer_free(&w);

    /* The encoder refuses more certificates than a path can hold. */
    ka.certificate_path.count = SKS_CERT_PATH_MAX + 1;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_response(sks_msg_find(66), &ka, &w), -1);
    sks_writer_free(&w);
}
END_TEST

START_TEST(test_oversize_field_fails_encoding)
{
    static uint8_t big[SKS_WIRE_BYTES_MAX + 1];
    sks_req_sign r = {1, 1, 3, 0, {big, sizeof big}};
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_request(sks_msg_find(SKS_M_SIGN_HASHED_DATA), &r, &w), -1);
    sks_writer_free(&w);
    r.data.len = SKS_WIRE_BYTES_MAX;
    sks_writer_init(&w);
    ck_assert_int_eq(sks_msg_encode_request(sks_msg_find(SKS_M_SIGN_HASHED_DATA), &r, &w), 0);
    sks_writer_free(&w);
}
END_TEST

/* ---- error answers ---------------------------------------------------- */

START_TEST(test_error_answers)
{
    const sks_msgdesc *d = sks_msg_find(SKS_M_SIGN_HASHED_DATA);
    sks_writer w;
    sks_writer_init(&w);
    sks_msg_encode_error(&w, SKS_ERR_NOT_AUTHENTICATED, "PIN not verified");
    const uint8_t want[] = {14,  0,   16,  'P', 'I', 'N', ' ', 'n', 'o', 't',
                            ' ', 'v', 'e', 'r', 'i', 'f', 'i', 'e', 'd'};
    ck_assert_uint_eq(w.len, sizeof want);
    ck_assert_mem_eq(w.buf, want, sizeof want);

    sks_resp_sign resp;
    memset(&resp, 0xCC, sizeof resp);
    uint8_t status = 0;
    sks_view err = {NULL, 0};
    ck_assert_int_eq(sks_msg_decode_response(d, w.buf, w.len, &resp, &status, &err), 0);
    ck_assert_uint_eq(status, SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_uint_eq(err.len, 16);
    ck_assert_mem_eq(err.ptr, "PIN not verified", 16);
    /* resp is untouched on an error answer */
    sks_resp_sign untouched;
    memset(&untouched, 0xCC, sizeof untouched);
    ck_assert_mem_eq(&resp, &untouched, sizeof resp);

    /* Every truncation of the error answer and a trailing byte are malformed. */
    for (size_t k = 0; k < w.len; k++)
        ck_assert_int_eq(decode_response_copy(d, w.buf, k, &resp, &status, &err), -1);
    sks_put_byte(&w, 0);
    ck_assert_int_eq(decode_response_copy(d, w.buf, w.len, &resp, &status, &err), -1);

    /* An empty message and a NULL message are fine. */
    sks_writer_reset(&w);
    sks_msg_encode_error(&w, SKS_ERR_MAC, NULL);
    ck_assert_uint_eq(w.len, 3);
    ck_assert_int_eq(sks_msg_decode_response(d, w.buf, w.len, &resp, &status, &err), 0);
    ck_assert_uint_eq(status, SKS_ERR_MAC);
    ck_assert_uint_eq(err.len, 0);
    sks_writer_free(&w);

    /* An answer with an error status but the results of a success is malformed. */
    uint8_t sig[] = {1, 2, 3};
    sks_resp_sign ok = {{sig, 3}};
    sks_writer_init(&w);
    sks_msg_encode_response(d, &ok, &w);
    w.buf[0] = SKS_ERR_CRYPTO;
    sks_put_byte(&w, 0);
    ck_assert_int_eq(decode_response_copy(d, w.buf, w.len, &resp, &status, &err), -1);
    sks_writer_free(&w);
}
END_TEST

/* ---- records ---------------------------------------------------------- */

START_TEST(test_pin_policy_records)
{
    const sks_msgdesc *rec = &sks_rec_pin_policy_info;
    sks_pin_policy_info in[3];
    memset(in, 0, sizeof in);
    for (size_t i = 0; i < 3; i++) {
        in[i].handle = 100 + (uint32_t)i;
        in[i].id.ptr = (const uint8_t *)"policy-id";
        in[i].id.len = 1 + i;
        in[i].provisioning_handle = 7;
        in[i].format = (uint8_t)i;
        in[i].min_length = 4;
        in[i].max_length = 8;
        in[i].retry_limit = 3;
        in[i].tries_left = (uint8_t)(3 - i);
        in[i].user_modifiable = 1;
        in[i].pin_set = (uint8_t)(i & 1);
        in[i].verified = 0;
        in[i].puk_policy_handle = 99;
        in[i].puk_retry_limit = 5;
        in[i].puk_tries_left = 4;
        in[i].caching_support = (uint8_t)(i == 0);
    }
    sks_writer w;
    sks_writer_init(&w);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(sks_fields_write(rec->req, rec->nreq, SKS_FF_WIRE, &in[i], &w), 0);
    /* Record layout of docs/protocol.md 7.13: 25 bytes plus the ID. */
    ck_assert_uint_eq(w.len, 3 * (4 + 2 + 4 + 5 + 3 + 4 + 2 + 1) + 1 + 2 + 3);
    const uint8_t first[] = {0, 0, 0, 100, 0, 1, 'p', 0, 0, 0,  7, 0, 4,
                             8, 3, 3, 1,   0, 0, 0,   0, 0, 99, 5, 4, 1};
    ck_assert_mem_eq(w.buf, first, sizeof first);

    sks_resp_enumerate_pin_policies resp = {{w.buf, w.len}};
    sks_writer ans;
    sks_writer_init(&ans);
    ck_assert_int_eq(sks_msg_encode_response(sks_msg_find(76), &resp, &ans), 0);
    sks_resp_enumerate_pin_policies got;
    uint8_t status;
    ck_assert_int_eq(
        sks_msg_decode_response(sks_msg_find(76), ans.buf, ans.len, &got, &status, NULL), 0);

    sks_reader r;
    sks_reader_init(&r, got.policies.ptr, got.policies.len);
    for (size_t i = 0; i < 3; i++) {
        sks_pin_policy_info out;
        memset(&out, 0, sizeof out);
        const char *why = NULL;
        ck_assert_int_eq(sks_fields_read(rec->req, rec->nreq, SKS_FF_WIRE, &r, &out, &why), SKS_OK);
        ck_assert_uint_eq(out.handle, in[i].handle);
        ck_assert(view_eq(&out.id, &in[i].id));
        ck_assert_uint_eq(out.tries_left, in[i].tries_left);
        ck_assert_uint_eq(out.pin_set, in[i].pin_set);
        ck_assert_uint_eq(out.puk_policy_handle, 99);
        ck_assert_uint_eq(out.puk_tries_left, 4);
        ck_assert_uint_eq(out.caching_support, in[i].caching_support);
    }
    ck_assert_int_eq(sks_reader_finish(&r), 0);

    /* A cut record fails. */
    sks_reader_init(&r, got.policies.ptr, got.policies.len - 1);
    sks_pin_policy_info out;
    int rc = SKS_OK;
    for (size_t i = 0; i < 3 && rc == SKS_OK; i++)
        rc = sks_fields_read(rec->req, rec->nreq, SKS_FF_WIRE, &r, &out, NULL);
    ck_assert_int_eq(rc, SKS_ERR_FORMAT);
    sks_writer_free(&ans);
    sks_writer_free(&w);
}
END_TEST

static Suite *msg_suite(void)
{
    Suite *s = suite_create("msg");
    TCase *tc = tcase_create("descriptors");
    tcase_add_test(tc, test_find_and_names);
    tcase_add_test(tc, test_status_names);
    tcase_add_test(tc, test_descriptor_shape);
    suite_add_tcase(s, tc);

    tc = tcase_create("generic");
    tcase_add_loop_test(tc, test_request_round_trip, 0, NMETHODS);
    tcase_add_loop_test(tc, test_response_round_trip, 0, NMETHODS);
    tcase_add_loop_test(tc, test_request_truncation_and_trailing, 0, NMETHODS);
    tcase_add_loop_test(tc, test_response_truncation_and_trailing, 0, NMETHODS);
    tcase_add_loop_test(tc, test_macdata_has_mac_fields_only, 0, NMETHODS);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("layouts");
    tcase_add_test(tc, test_create_pin_policy_layout);
    tcase_add_test(tc, test_close_session_layout);
    tcase_add_test(tc, test_create_key_pair_layout);
    tcase_add_test(tc, test_set_certificate_path_layout);
    tcase_add_test(tc, test_put_private_key_layout);
    tcase_add_test(tc, test_no_argument_methods);
    tcase_add_test(tc, test_object_and_device_info_layouts);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounds");
    tcase_add_test(tc, test_length_bounds_give_option);
    tcase_add_test(tc, test_bool_not_01_gives_format);
    tcase_add_test(tc, test_cert_count_bounds);
    tcase_add_test(tc, test_oversize_field_fails_encoding);
    tcase_add_test(tc, test_error_answers);
    tcase_add_test(tc, test_pin_policy_records);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    fill_pool();
    SRunner *sr = srunner_create(msg_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
