/*
 * test-enum.c - enumerateKeyAttributes (docs/protocol.md 7.18): every record
 * equals getKeyAttributes' answer for the same key, the pages list the same
 * keys in the same order as enumerateKeys, a page stays within
 * SKS_ENUM_RECORDS_MAX bytes (a single larger record goes alone), a page
 * filled exactly is followed by More only when another key exists, and an
 * empty card answers an empty last page. countKeys (7.19) counts the
 * complete keys of one PIN policy, or those without PIN.
 *
 * Keys come from the real issuer (tl_provision_key, with certificate paths)
 * and, for the paging edges, are written into the card's store directly
 * with certificate paths of chosen sizes. Record sizes are computed here from
 * the wire layout of section 7.18 (int 4, bytes 2 + n, byte 1, certificate
 * path 1 + sum of 2 + n), not taken from the encoder.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "card/card_internal.h"
#include "testlib.h"

#define MAX_RECORDS 64

/* A page as the card answered it, records decoded (views into `answer`). */
typedef struct {
    sks_writer answer;
    size_t records_len;
    int more;
    size_t n;
    sks_key_attributes_info rec[MAX_RECORDS];
} page;

static void get_page(tl_card *c, uint32_t after, page *p)
{
    sks_req_enumerate_keys req = {after};
    sks_resp_enumerate_key_attributes resp;
    sks_writer_init(&p->answer);
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_KEY_ATTRIBUTES, &req, &resp, &p->answer));
    p->records_len = resp.records.len;
    p->more = resp.more;
    p->n = 0;
    sks_reader r;
    sks_reader_init(&r, resp.records.ptr, resp.records.len);
    while (r.pos < r.len) {
        ck_assert_uint_lt(p->n, MAX_RECORDS);
        ck_assert_int_eq(sks_fields_read(sks_rec_key_attributes_info.req,
                                         sks_rec_key_attributes_info.nreq, SKS_FF_WIRE, &r,
                                         &p->rec[p->n], NULL),
                         SKS_OK);
        p->n++;
    }
}

static void view_eq(sks_view a, sks_view b)
{
    ck_assert_uint_eq(a.len, b.len);
    ck_assert(a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The record says exactly what getKeyAttributes says about its key. */
static void assert_matches_get(tl_card *c, const sks_key_attributes_info *rec)
{
    sks_req_key_handle req = {rec->key_handle};
    sks_resp_get_key_attributes want;
    sks_writer answer;
    sks_writer_init(&answer);
    TL_OK(c, tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &req, &want, &answer));
    const sks_resp_get_key_attributes *got = &rec->attributes;
    view_eq(got->id, want.id);
    view_eq(got->friendly_name, want.friendly_name);
    ck_assert_uint_eq(got->algorithm, want.algorithm);
    ck_assert_uint_eq(got->key_usage, want.key_usage);
    ck_assert_uint_eq(got->flags, want.flags);
    ck_assert_uint_eq(got->pin_policy_handle, want.pin_policy_handle);
    view_eq(got->public_key, want.public_key);
    ck_assert_uint_eq(got->certificate_path.count, want.certificate_path.count);
    for (size_t i = 0; i < want.certificate_path.count; i++)
        view_eq(got->certificate_path.cert[i], want.certificate_path.cert[i]);
    ck_assert_uint_eq(got->provisioning_handle, want.provisioning_handle);
    sks_writer_free(&answer);
}

/* enumerateKeys' complete listing (at most max handles); the count. */
static size_t list_handles(tl_card *c, uint32_t *out, size_t max)
{
    size_t n = 0;
    uint32_t after = 0;
    for (;;) {
        sks_req_enumerate_keys req = {after};
        sks_resp_enumerate_keys resp;
        TL_OK(c, tl_call(c, SKS_M_ENUMERATE_KEYS, &req, &resp, NULL));
        for (size_t i = 0; i + 4 <= resp.handles.len; i += 4) {
            ck_assert_uint_lt(n, max);
            out[n++] = after = sks_be32_get(resp.handles.ptr + i);
        }
        if (!resp.more)
            return n;
    }
}

/*
 * Walk every page: each record matches getKeyAttributes, the handles are
 * enumerateKeys' list in its order, each page but a single-record one stays
 * within the budget. Returns the number of pages.
 */
static size_t walk_and_check(tl_card *c)
{
    uint32_t handles[256];
    size_t nhandles = list_handles(c, handles, 256), seen = 0, pages = 0;
    uint32_t after = 0;
    page *p = calloc(1, sizeof(*p));
    ck_assert_ptr_nonnull(p);
    for (;;) {
        get_page(c, after, p);
        pages++;
        ck_assert(p->n == 1 || p->records_len <= SKS_ENUM_RECORDS_MAX);
        ck_assert(p->n > 0 || !p->more);
        for (size_t i = 0; i < p->n; i++) {
            ck_assert_uint_lt(seen, nhandles);
            ck_assert_uint_eq(p->rec[i].key_handle, handles[seen]);
            seen++;
            assert_matches_get(c, &p->rec[i]);
            after = p->rec[i].key_handle;
        }
        int more = p->more;
        sks_writer_free(&p->answer);
        if (!more)
            break;
    }
    ck_assert_uint_eq(seen, nhandles);
    free(p);
    return pages;
}

/*
 * Write a complete key with an ID "k<handle>", no name, a `pub_len`-byte
 * public key and one certificate of `cert_len` bytes (0: no path) straight
 * into the store. Its record is 24 + id_len + pub_len + cert_len bytes
 * (with a certificate); for a 3-byte ID and a 10-byte public key, 37 + cert_len.
 */
static void put_key(tl_card *c, uint32_t handle, uint8_t flags, size_t pub_len, size_t cert_len)
{
    card_key_rec k;
    memset(&k, 0, sizeof(k));
    k.handle = handle;
    k.id_len = (uint8_t)snprintf((char *)k.id, sizeof(k.id), "k%u", handle);
    k.flags = flags;
    k.usage = SKS_USAGE_SIGN;
    k.algorithm = SKS_KEYALG_EC_P256;
    uint8_t *pub = malloc(pub_len);
    uint8_t *path = malloc(3 + cert_len);
    ck_assert(pub != NULL && path != NULL);
    for (size_t i = 0; i < pub_len; i++)
        pub[i] = (uint8_t)(handle + i);
    ck_assert_int_eq(card_buf_set(&k.public_key, pub, pub_len), 0);
    ck_assert_int_eq(card_buf_set(&k.private_key, "private", 7), 0);
    if (cert_len > 0) {
        path[0] = 1;
        path[1] = (uint8_t)(cert_len >> 8);
        path[2] = (uint8_t)cert_len;
        memset(path + 3, (int)handle, cert_len);
        ck_assert_int_eq(card_buf_set(&k.cert_path, path, 3 + cert_len), 0);
    }
    card_store *st = c->card->store;
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    ck_assert_int_eq(card_store_key_put(st, &k), SKS_OK);
    ck_assert_int_eq(card_store_commit(st), 0);
    card_key_rec_free(&k);
    free(pub);
    free(path);
}

START_TEST(test_empty_card)
{
    tl_card *c = tl_card_new();
    page *p = calloc(1, sizeof(*p));
    ck_assert_ptr_nonnull(p);
    get_page(c, 0, p);
    ck_assert_uint_eq(p->records_len, 0);
    ck_assert_int_eq(p->more, 0);
    sks_writer_free(&p->answer);
    free(p);
    tl_card_free(c);
}
END_TEST

START_TEST(test_provisioned_keys)
{
    tl_card *c = tl_card_new();
    tl_key a, b;
    tl_key_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.pin = "1234";
    spec.key_count = 3;
    tl_provision_key(c, &spec, &a);
    memset(&spec, 0, sizeof(spec));
    spec.key_count = 2;
    spec.friendly_name = "no PIN";
    tl_provision_key(c, &spec, &b);
    /* Not complete: never listed. */
    put_key(c, 5000, SKS_KEYFLAG_GENERATED_ON_CARD, 10, 0);

    page *p = calloc(1, sizeof(*p));
    ck_assert_ptr_nonnull(p);
    get_page(c, 0, p);
    ck_assert_uint_eq(p->n, 5);
    ck_assert_int_eq(p->more, 0);
    for (size_t i = 0; i < p->n; i++)
        ck_assert_uint_eq(p->rec[i].attributes.certificate_path.count, 1);
    sks_writer_free(&p->answer);
    free(p);
    ck_assert_uint_eq(walk_and_check(c), 1);
    tl_key_free(&a);
    tl_key_free(&b);
    tl_card_free(c);
}
END_TEST

static uint32_t count_keys(tl_card *c, uint32_t policy)
{
    sks_req_count_keys req = {policy};
    sks_resp_count_keys resp;
    sks_writer answer;
    sks_writer_init(&answer);
    TL_OK(c, tl_call(c, SKS_M_COUNT_KEYS, &req, &resp, &answer));
    sks_writer_free(&answer);
    return resp.count;
}

/* countKeys: per policy, 0 for the keys without PIN, incomplete keys not counted. */
START_TEST(test_count_keys)
{
    tl_card *c = tl_card_new();
    ck_assert_uint_eq(count_keys(c, 0), 0);
    tl_key a, b;
    tl_key_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.pin = "1234";
    spec.key_count = 3;
    tl_provision_key(c, &spec, &a);
    ck_assert_uint_ne(a.pin_policy, 0);
    ck_assert_uint_eq(count_keys(c, 0), 0);
    ck_assert_uint_eq(count_keys(c, a.pin_policy), 3);
    memset(&spec, 0, sizeof(spec));
    spec.key_count = 2;
    tl_provision_key(c, &spec, &b);
    put_key(c, 5000, SKS_KEYFLAG_GENERATED_ON_CARD, 10, 0); /* not complete, no PIN */
    ck_assert_uint_eq(count_keys(c, 0), 2);
    ck_assert_uint_eq(count_keys(c, a.pin_policy), 3);
    ck_assert_uint_eq(count_keys(c, 0x7FFFFFFF), 0); /* no such policy: none */
    tl_key_free(&a);
    tl_key_free(&b);
    tl_card_free(c);
}
END_TEST

/* 20 keys of about 20 KB each: bounded by bytes, several pages. */
START_TEST(test_several_pages)
{
    tl_card *c = tl_card_new();
    for (uint32_t h = 100; h < 120; h++)
        put_key(c, h, SKS_KEYFLAG_COMPLETE, 64 + h, 20000 + 37 * h);
    put_key(c, 110500, SKS_KEYFLAG_GENERATED_ON_CARD, 10, 20000);
    ck_assert_uint_ge(walk_and_check(c), 4);
    tl_card_free(c);
}
END_TEST

/*
 * Four records of 37 + 32731 bytes (3-byte IDs) fill a page exactly
 * (4 * 32768 = 131072 = SKS_ENUM_RECORDS_MAX): one page, no More. A fifth
 * key then makes More true and goes alone on the second page.
 */
START_TEST(test_exactly_full_page)
{
    tl_card *c = tl_card_new();
    ck_assert_uint_eq(SKS_ENUM_RECORDS_MAX, 4u * (37u + 32731u));
    for (uint32_t h = 11; h <= 14; h++)
        put_key(c, h, SKS_KEYFLAG_COMPLETE, 10, 32731);
    page *p = calloc(1, sizeof(*p));
    ck_assert_ptr_nonnull(p);
    get_page(c, 0, p);
    ck_assert_uint_eq(p->n, 4);
    ck_assert_uint_eq(p->records_len, SKS_ENUM_RECORDS_MAX);
    ck_assert_int_eq(p->more, 0);
    sks_writer_free(&p->answer);

    put_key(c, 15, SKS_KEYFLAG_COMPLETE, 10, 0);
    get_page(c, 0, p);
    ck_assert_uint_eq(p->n, 4);
    ck_assert_int_eq(p->more, 1);
    sks_writer_free(&p->answer);
    get_page(c, 14, p);
    ck_assert_uint_eq(p->n, 1);
    ck_assert_uint_eq(p->rec[0].key_handle, 15);
    ck_assert_int_eq(p->more, 0);
    sks_writer_free(&p->answer);
    free(p);
    ck_assert_uint_eq(walk_and_check(c), 2);
    tl_card_free(c);
}
END_TEST

/* Records larger than the budget (65535-byte public key and path: 131097 bytes) go alone. */
START_TEST(test_oversized_records)
{
    tl_card *c = tl_card_new();
    put_key(c, 21, SKS_KEYFLAG_COMPLETE, 65535, 65535);
    put_key(c, 22, SKS_KEYFLAG_COMPLETE, 65535, 65535);
    ck_assert_uint_eq(walk_and_check(c), 2);
    tl_card_free(c);
}
END_TEST

static Suite *enum_suite(void)
{
    Suite *s = suite_create("enumerateKeyAttributes");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_empty_card);
    tcase_add_test(tc, test_provisioned_keys);
    tcase_add_test(tc, test_count_keys);
    tcase_add_test(tc, test_several_pages);
    tcase_add_test(tc, test_exactly_full_page);
    tcase_add_test(tc, test_oversized_records);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(enum_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
