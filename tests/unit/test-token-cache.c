/*
 * test-token-cache.c - the module's card cache (tok_cache.c) and searches
 * (p11_find.c), watched through the APDU trace:
 *
 *   - C_Login does not make the module read the keys again: after it, a
 *     search sends no enumerateKeys and no getKeyAttributes, while the
 *     token's PIN counter shown by C_GetTokenInfo is current;
 *   - a change made by another process after our login (a key renamed, a
 *     key deleted) is seen by the next search;
 *   - a private object stored on the card becomes visible after C_Login;
 *   - a search by CKA_CLASS, CKA_TOKEN, CKA_ID and CKA_LABEL (matched from
 *     the cache without building attributes) finds exactly the objects
 *     whose attributes, read with C_GetAttributeValue, equal the template.
 *
 * Keys come from testlib (the real issuer): PIN policy "pin" (PIN "1234"),
 * three EC keys "key1".."key3" named "cache key", each with a certificate.
 * The testlib card handle plays the other process: it opens the same state
 * directory with a card of its own.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-token-util.h"

#define PIN    "1234"
#define LABEL  "cache key"
#define U(s)   ((CK_UTF8CHAR_PTR)(s))
#define LEN(s) (sizeof(s) - 1)

static char trace_path[400];

static void setup_env(tt_env *e, tl_key *key)
{
    tt_env_with_card(e, NULL);
    /* The trace in the test's own directory (named after it is known). */
    snprintf(trace_path, sizeof(trace_path), "%s/apdu.trace", e->dir);
    FILE *f = fopen(e->conf, "a");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "apdu_trace = %s\n", trace_path);
    fclose(f);
    tl_key_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.pin = PIN;
    spec.key_count = 3;
    spec.friendly_name = LABEL;
    tl_provision_key(e->card, &spec, key);
}

/*
 * SKS calls in the trace from byte `*offset` on, counted by method (the
 * first data byte of a command "80 10": extended length, so Lc is 00 xx xx).
 * *offset moves to the end.
 */
static void trace_methods(long *offset, int counts[256])
{
    char line[70000];
    memset(counts, 0, 256 * sizeof(int));
    FILE *f = fopen(trace_path, "r");
    if (f == NULL)
        return;
    fseek(f, *offset, SEEK_SET);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned b[8];
        if (line[0] != '>' || sscanf(line + 2, "%2x%2x%2x%2x%2x%2x%2x%2x", &b[0], &b[1], &b[2],
                                     &b[3], &b[4], &b[5], &b[6], &b[7]) != 8)
            continue;
        if (b[0] == 0x80 && b[1] == 0x10 && b[4] == 0x00)
            counts[b[7]]++;
    }
    *offset = ftell(f);
    fclose(f);
}

static long trace_end(void)
{
    long off = 0;
    int counts[256];
    trace_methods(&off, counts);
    return off;
}

static CK_ULONG find_by(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                        CK_ATTRIBUTE_TYPE type, const char *value)
{
    CK_OBJECT_HANDLE found[16];
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {type, (void *)value, (CK_ULONG)strlen(value)}};
    return tt_find(f, s, t, 2, found, 16);
}

START_TEST(t_login_keeps_the_cache)
{
    tt_env e;
    tl_key key;
    int counts[256];
    setup_env(&e, &key);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SESSION_HANDLE s = tt_open(f, slot);
    ck_assert_uint_eq(find_by(f, s, CKO_PUBLIC_KEY, CKA_LABEL, LABEL), 3);
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_LABEL, LABEL), 0); /* not logged in */

    /* A wrong PIN first: the token then shows a try used (the cache reloads for that). */
    TT_RV(f->C_Login(s, CKU_USER, U("9999"), 4), CKR_PIN_INCORRECT);
    CK_TOKEN_INFO ti;
    TT_OK(f->C_GetTokenInfo(slot, &ti));
    ck_assert(ti.flags & CKF_USER_PIN_COUNT_LOW);
    /* That reload reads the keys again at the next search: before the login. */
    ck_assert_uint_eq(find_by(f, s, CKO_PUBLIC_KEY, CKA_LABEL, LABEL), 3);

    long mark = trace_end();
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_ID, "key2"), 1);
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_LABEL, LABEL), 3);
    TT_OK(f->C_GetTokenInfo(slot, &ti));
    trace_methods(&mark, counts);
    ck_assert_int_eq(counts[SKS_M_VERIFY_PIN], 1);
    ck_assert_msg(counts[SKS_M_ENUMERATE_KEYS] == 0 && counts[SKS_M_GET_KEY_ATTRIBUTES] == 0 &&
                      counts[SKS_M_ENUMERATE_KEY_ATTRIBUTES] == 0,
                  "after C_Login the keys were read again (%d enumerateKeys, %d getKeyAttributes, "
                  "%d enumerateKeyAttributes)",
                  counts[SKS_M_ENUMERATE_KEYS], counts[SKS_M_GET_KEY_ATTRIBUTES],
                  counts[SKS_M_ENUMERATE_KEY_ATTRIBUTES]);
    /* ... but the PIN policies were: the restored counter shows. */
    ck_assert(!(ti.flags & CKF_USER_PIN_COUNT_LOW));
    ck_assert_int_ge(counts[SKS_M_ENUMERATE_PIN_POLICIES], 1);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

/*
 * The slot list and the login read no key: the no-PIN token is known from
 * countKeys. The first search reads the keys (once), and a key handle from
 * an earlier process resolves without a search.
 */
START_TEST(t_keys_read_at_first_use)
{
    tt_env e;
    tl_key key, nopin;
    int counts[256];
    setup_env(&e, &key);
    tl_key_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.key_count = 1;
    spec.friendly_name = "no PIN key";
    tl_provision_key(e.card, &spec, &nopin);

    long mark = trace_end();
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SLOT_ID nopin_slot = tt_slot_by_label(f, "SKS (no PIN)");
    ck_assert_uint_ne(slot, nopin_slot);
    CK_SESSION_HANDLE s = tt_open(f, slot);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    trace_methods(&mark, counts);
    ck_assert_int_eq(counts[SKS_M_COUNT_KEYS], 1);
    ck_assert_msg(counts[SKS_M_ENUMERATE_KEY_ATTRIBUTES] == 0 &&
                      counts[SKS_M_ENUMERATE_KEYS] == 0 && counts[SKS_M_GET_KEY_ATTRIBUTES] == 0,
                  "listing the slots and logging in read keys");

    CK_OBJECT_HANDLE priv = tt_find_id(f, s, CKO_PRIVATE_KEY, "key2");
    ck_assert_uint_eq(find_by(f, s, CKO_PUBLIC_KEY, CKA_LABEL, LABEL), 3);
    trace_methods(&mark, counts);
    ck_assert_int_eq(counts[SKS_M_ENUMERATE_KEY_ATTRIBUTES], 1);
    TT_OK(f->C_Finalize(NULL));

    /* Another start: the handle is used before any search, the keys are read for it. */
    f = tt_init();
    s = tt_open(f, slot);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    CK_BYTE id[16];
    CK_ATTRIBUTE t = {CKA_ID, id, sizeof(id)};
    TT_OK(f->C_GetAttributeValue(s, priv, &t, 1));
    ck_assert_uint_eq(t.ulValueLen, 4);
    ck_assert(memcmp(id, "key2", 4) == 0);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&nopin);
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

START_TEST(t_other_process_changes_seen)
{
    tt_env e;
    tl_key key;
    setup_env(&e, &key);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_open(f, tt_slot_by_label(f, "pin"));
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_LABEL, LABEL), 3);

    /* The other process logs in too (two more commits) and renames key1. */
    sks_req_verify_pin vp = {key.pin_policy, {(const uint8_t *)PIN, LEN(PIN)}};
    TL_OK(e.card, tl_call(e.card, SKS_M_VERIFY_PIN, &vp, NULL, NULL));
    sks_req_set_key_attributes set = {
        key.key[0], {(const uint8_t *)"key1", 4}, {(const uint8_t *)"renamed", 7}};
    TL_OK(e.card, tl_call(e.card, SKS_M_SET_KEY_ATTRIBUTES, &set, NULL, NULL));
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_LABEL, "renamed"), 1);
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_LABEL, LABEL), 2);

    /* Our own login again, and meanwhile the other process deletes key3. */
    TT_OK(f->C_Logout(s));
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    TL_OK(e.card, tl_call(e.card, SKS_M_VERIFY_PIN, &vp, NULL, NULL));
    sks_req_delete_key del = {key.key[2], {NULL, 0}};
    TL_OK(e.card, tl_call(e.card, SKS_M_DELETE_KEY, &del, NULL, NULL));
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_ID, "key3"), 0);
    ck_assert_uint_eq(find_by(f, s, CKO_PUBLIC_KEY, CKA_ID, "key3"), 0);
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_ID, "key2"), 1);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

START_TEST(t_private_object_after_login)
{
    tt_env e;
    tl_key key;
    setup_env(&e, &key);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SLOT_ID slot = tt_slot_by_label(f, "pin");
    CK_SESSION_HANDLE s = tt_open(f, slot);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    CK_OBJECT_CLASS data = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE obj[] = {
        {CKA_CLASS, &data, sizeof(data)},
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_LABEL, "secret data", 11},
        {CKA_VALUE, "x", 1},
    };
    CK_OBJECT_HANDLE h;
    TT_OK(f->C_CreateObject(s, obj, 5, &h));
    TT_OK(f->C_Finalize(NULL));

    /* A new start: the object cannot be read before the login, and can after it. */
    f = tt_init();
    s = tt_open(f, slot);
    ck_assert_uint_eq(find_by(f, s, CKO_DATA, CKA_LABEL, "secret data"), 0);
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    ck_assert_uint_eq(find_by(f, s, CKO_DATA, CKA_LABEL, "secret data"), 1);
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_LABEL, LABEL), 3);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

/* ---- searches matched from the cache ------------------------------------- */

typedef struct {
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE_TYPE type[4];
    uint8_t value[4][64];
    CK_ULONG len[4];
} object_view;

static const CK_ATTRIBUTE_TYPE cheap_types[4] = {CKA_CLASS, CKA_TOKEN, CKA_ID, CKA_LABEL};

/* The four attributes of an object, read one by one. */
static void read_view(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, object_view *v)
{
    v->h = h;
    for (int i = 0; i < 4; i++) {
        CK_ATTRIBUTE a = {cheap_types[i], v->value[i], sizeof(v->value[i])};
        TT_OK(f->C_GetAttributeValue(s, h, &a, 1));
        v->type[i] = cheap_types[i];
        v->len[i] = a.ulValueLen;
    }
}

/* Does the object hold every template attribute with the same bytes? */
static int view_matches(const object_view *v, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        int j = 0;
        while (j < 4 && v->type[j] != t[i].type)
            j++;
        if (j == 4 || v->len[j] != t[i].ulValueLen ||
            (t[i].ulValueLen > 0 && memcmp(v->value[j], t[i].pValue, t[i].ulValueLen) != 0))
            return 0;
    }
    return 1;
}

static int cmp_handle(const void *a, const void *b)
{
    CK_OBJECT_HANDLE x = *(const CK_OBJECT_HANDLE *)a, y = *(const CK_OBJECT_HANDLE *)b;
    return x < y ? -1 : x > y;
}

START_TEST(t_cheap_templates_match_attributes)
{
    tt_env e;
    tl_key key;
    setup_env(&e, &key);
    CK_FUNCTION_LIST *f = tt_init();
    CK_SESSION_HANDLE s = tt_open(f, tt_slot_by_label(f, "pin"));
    TT_OK(f->C_Login(s, CKU_USER, U(PIN), LEN(PIN)));
    CK_OBJECT_HANDLE all[64];
    CK_ULONG nall = tt_find(f, s, NULL, 0, all, 64);
    ck_assert_uint_ge(nall, 9); /* 3 keys x (private, public, certificate) */
    object_view views[64];
    for (CK_ULONG i = 0; i < nall; i++)
        read_view(f, s, all[i], &views[i]);

    CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, pub = CKO_PUBLIC_KEY, cert = CKO_CERTIFICATE;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    uint32_t short_class = CKO_PUBLIC_KEY; /* a CK_ULONG value of the wrong size */
    CK_ATTRIBUTE templates[][3] = {
        {{CKA_CLASS, &priv, sizeof(priv)}, {CKA_ID, "key2", 4}},
        {{CKA_ID, "key1", 4}},
        {{CKA_LABEL, LABEL, LEN(LABEL)}},
        {{CKA_CLASS, &cert, sizeof(cert)}, {CKA_LABEL, LABEL, LEN(LABEL)}},
        {{CKA_TOKEN, &yes, sizeof(yes)}, {CKA_ID, "key3", 4}},
        {{CKA_TOKEN, &no, sizeof(no)}, {CKA_ID, "key3", 4}},
        {{CKA_ID, "nokey", 5}},
        {{CKA_ID, "key", 3}},
        {{CKA_LABEL, "cache ke", 8}},
        {{CKA_CLASS, &short_class, sizeof(short_class)}, {CKA_ID, "key1", 4}},
        {{CKA_CLASS, &pub, sizeof(pub)}, {CKA_ID, "key1", 4}, {CKA_LABEL, LABEL, LEN(LABEL)}},
        {{CKA_CLASS, &pub, sizeof(pub)}, {CKA_ID, "key1", 4}, {CKA_LABEL, "other", 5}},
        {{CKA_ID, NULL, 0}},
    };
    static const CK_ULONG sizes[] = {2, 1, 1, 2, 2, 2, 1, 1, 1, 2, 3, 3, 1};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        CK_OBJECT_HANDLE want[64], got[64];
        CK_ULONG nwant = 0;
        for (CK_ULONG i = 0; i < nall; i++)
            if (view_matches(&views[i], templates[t], sizes[t]))
                want[nwant++] = views[i].h;
        CK_ULONG ngot = tt_find(f, s, templates[t], sizes[t], got, 64);
        qsort(want, nwant, sizeof(want[0]), cmp_handle);
        qsort(got, ngot, sizeof(got[0]), cmp_handle);
        ck_assert_msg(ngot == nwant, "template %zu: %lu found, %lu expected", t,
                      (unsigned long)ngot, (unsigned long)nwant);
        ck_assert_msg(memcmp(got, want, ngot * sizeof(got[0])) == 0,
                      "template %zu: other objects found", t);
    }
    /* The oracle is not empty-handed: the first template has its one key. */
    ck_assert_uint_eq(find_by(f, s, CKO_PRIVATE_KEY, CKA_ID, "key2"), 1);
    TT_OK(f->C_Finalize(NULL));
    tl_key_free(&key);
    tt_env_free(&e);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-cache");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, t_login_keeps_the_cache);
    tcase_add_test(tc, t_keys_read_at_first_use);
    tcase_add_test(tc, t_other_process_changes_seen);
    tcase_add_test(tc, t_private_object_after_login);
    tcase_add_test(tc, t_cheap_templates_match_attributes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
