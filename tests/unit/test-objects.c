/*
 * test-objects.c - the card methods the PKCS#11 token keeps its own state
 * with (docs/protocol.md section 7): stored objects (createObject,
 * deleteObject, enumerateObjects, readObject, updateObject) with their
 * access rules, setKeyAttributes, and the ChangeCounter of getDeviceInfo
 * that tells a middleware cache when the card's state moved.
 *
 * Keys and PIN policies are provisioned end to end through the real issuer
 * (testlib); every rule is checked through the protocol, and the sealing of
 * Attributes through the database file itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "card/card_internal.h"
#include "testlib.h"

/* ---- Helpers ------------------------------------------------------------ */

static sks_view str_view(const char *s)
{
    sks_view v = {(const uint8_t *)s, strlen(s)};
    return v;
}

static int create_object(tl_card *c, uint32_t policy, uint8_t cls, uint8_t private_,
                         sks_view attributes, uint32_t *handle)
{
    sks_req_create_object req = {policy, cls, private_, attributes};
    sks_resp_create_object resp;
    memset(&resp, 0, sizeof(resp));
    int st = tl_call(c, SKS_M_CREATE_OBJECT, &req, &resp, NULL);
    if (handle != NULL)
        *handle = st == SKS_OK ? resp.object_handle : 0;
    return st;
}

/* readObject; the answer's views point into c->answer. */
static int read_object(tl_card *c, uint32_t handle, sks_resp_read_object *resp)
{
    sks_req_object_handle req = {handle};
    memset(resp, 0, sizeof(*resp));
    return tl_call(c, SKS_M_READ_OBJECT, &req, resp, NULL);
}

static int update_object(tl_card *c, uint32_t handle, sks_view attributes)
{
    sks_req_update_object req = {handle, attributes};
    return tl_call(c, SKS_M_UPDATE_OBJECT, &req, NULL, NULL);
}

static int delete_object(tl_card *c, uint32_t handle)
{
    sks_req_object_handle req = {handle};
    return tl_call(c, SKS_M_DELETE_OBJECT, &req, NULL, NULL);
}

/* One enumerateObjects page into handles[] (room for SKS_ENUM_PAGE_MAX); its count. */
static size_t list_objects(tl_card *c, uint32_t after, uint32_t *handles, int *more)
{
    sks_req_enumerate_keys req = {after};
    sks_resp_enumerate_keys resp;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_OBJECTS, &req, &resp, NULL));
    ck_assert_uint_eq(resp.handles.len % 4, 0);
    size_t n = resp.handles.len / 4;
    ck_assert_uint_le(n, SKS_ENUM_PAGE_MAX);
    for (size_t i = 0; i < n; i++)
        handles[i] = sks_be32_get(resp.handles.ptr + 4 * i);
    *more = resp.more;
    return n;
}

/* Is `handle` on the first page of enumerateObjects? */
static int object_listed(tl_card *c, uint32_t handle)
{
    static uint32_t handles[SKS_ENUM_PAGE_MAX];
    int more = 0;
    size_t n = list_objects(c, 0, handles, &more);
    for (size_t i = 0; i < n; i++)
        if (handles[i] == handle)
            return 1;
    return 0;
}

static int verify_pin(tl_card *c, uint32_t policy, const char *pin)
{
    sks_req_verify_pin req = {policy, str_view(pin)};
    return tl_call(c, SKS_M_VERIFY_PIN, &req, NULL, NULL);
}

static int logout(tl_card *c, uint32_t policy)
{
    sks_req_logout req = {policy};
    return tl_call(c, SKS_M_LOGOUT, &req, NULL, NULL);
}

static int set_key_attributes(tl_card *c, uint32_t key, sks_view id, sks_view name)
{
    sks_req_set_key_attributes req = {key, id, name};
    return tl_call(c, SKS_M_SET_KEY_ATTRIBUTES, &req, NULL, NULL);
}

static int get_key_attributes(tl_card *c, uint32_t key, sks_resp_get_key_attributes *resp)
{
    sks_req_key_handle req = {key};
    memset(resp, 0, sizeof(*resp));
    return tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &req, resp, NULL);
}

static uint32_t change_counter(tl_card *c)
{
    sks_resp_get_device_info info;
    uint8_t none = 0;
    TL_OK(c, tl_call(c, SKS_M_GET_DEVICE_INFO, &none, &info, NULL));
    return info.change_counter;
}

static int view_is(sks_view v, const void *p, size_t n)
{
    return v.len == n && (n == 0 || memcmp(v.ptr, p, n) == 0);
}

/*
 * A PIN policy of an open session (createPINPolicy sent, session not
 * closed). The issuer session is returned for the caller to free.
 */
static uint32_t open_session_policy(tl_card *c, sks_issuer_session **is)
{
    sks_issuer_msg m;
    sks_issuer_pin_policy p;
    sks_req_create_pin_policy req;
    sks_resp_create_pin_policy resp;
    memset(&p, 0, sizeof(p));
    p.id = "open";
    p.retry_limit = 3;
    p.min_length = 4;
    p.max_length = 8;
    *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_pin_policy(*is, &p, 0, &m, &req) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_PIN_POLICY, &req, &resp, NULL));
    sks_issuer_msg_free(&m);
    return resp.pin_policy_handle;
}

/* ---- Stored objects ------------------------------------------------------- */

/* Create, read, update, list and delete an object of the no-PIN token. */
START_TEST(test_object_lifecycle)
{
    tl_card *c = tl_card_new();
    sks_resp_read_object r;
    uint32_t h = 0, h2 = 0;

    TL_OK(c, create_object(c, 0, SKS_OBJECT_CERTIFICATE, 0, str_view("cert attributes"), &h));
    ck_assert_uint_ne(h, 0);
    TL_OK(c, read_object(c, h, &r));
    ck_assert_uint_eq(r.pin_policy_handle, 0);
    ck_assert_uint_eq(r.object_class, SKS_OBJECT_CERTIFICATE);
    ck_assert_uint_eq(r.private_, 0);
    ck_assert(view_is(r.attributes, "cert attributes", 15));
    ck_assert(object_listed(c, h));

    /* Update replaces the Attributes, nothing else. */
    TL_OK(c, update_object(c, h, str_view("new")));
    TL_OK(c, read_object(c, h, &r));
    ck_assert(view_is(r.attributes, "new", 3));
    ck_assert_uint_eq(r.object_class, SKS_OBJECT_CERTIFICATE);

    /* Empty Attributes are allowed; the second object gets a new handle. */
    TL_OK(c, create_object(c, 0, SKS_OBJECT_DATA, 1, str_view(""), &h2));
    ck_assert_uint_gt(h2, h);
    TL_OK(c, read_object(c, h2, &r));
    ck_assert_uint_eq(r.attributes.len, 0);
    ck_assert_uint_eq(r.private_, 1); /* policy 0: Private has no effect on reading */
    ck_assert_uint_eq(r.object_class, SKS_OBJECT_DATA);
    TL_OK(c, update_object(c, h2, str_view("filled")));
    TL_OK(c, update_object(c, h2, str_view("")));
    TL_OK(c, read_object(c, h2, &r));
    ck_assert_uint_eq(r.attributes.len, 0);

    /* Delete: gone for every method; handles are not key handles. */
    TL_OK(c, delete_object(c, h));
    ck_assert(!object_listed(c, h));
    ck_assert(object_listed(c, h2));
    ck_assert_int_eq(read_object(c, h, &r), SKS_ERR_NO_KEY);
    ck_assert_int_eq(update_object(c, h, str_view("x")), SKS_ERR_NO_KEY);
    ck_assert_int_eq(delete_object(c, h), SKS_ERR_NO_KEY);
    ck_assert_int_eq(read_object(c, 0, &r), SKS_ERR_NO_KEY);
    ck_assert_int_eq(read_object(c, 0x7FFFFFF0u, &r), SKS_ERR_NO_KEY);
    sks_resp_get_key_attributes ka;
    ck_assert_int_eq(get_key_attributes(c, h2, &ka), SKS_ERR_NO_KEY);

    /* A power cycle keeps the object. */
    tl_card_reopen(c);
    TL_OK(c, read_object(c, h2, &r));
    ck_assert_uint_eq(r.object_class, SKS_OBJECT_DATA);
    tl_card_free(c);
}
END_TEST

/* An object of a PIN policy: writing needs the PIN, reading only when Private. */
START_TEST(test_object_pin_rules)
{
    tl_key_spec spec = {.pin = "1234"};
    tl_key key;
    tl_card *c = tl_card_new();
    tl_provision_key(c, &spec, &key);
    uint32_t pol = key.pin_policy, pub = 0, priv = 0, h = 0;
    sks_resp_read_object r;

    ck_assert_int_eq(create_object(c, pol, SKS_OBJECT_DATA, 0, str_view("a"), &h),
                     SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(create_object(c, pol, SKS_OBJECT_DATA, 1, str_view("a"), &h),
                     SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, pol, "1234"));
    TL_OK(c, create_object(c, pol, SKS_OBJECT_PUBLIC_KEY, 0, str_view("public"), &pub));
    TL_OK(c, create_object(c, pol, SKS_OBJECT_DATA, 1, str_view("secret"), &priv));
    TL_OK(c, read_object(c, priv, &r));
    ck_assert_uint_eq(r.pin_policy_handle, pol);
    ck_assert_uint_eq(r.private_, 1);
    ck_assert(view_is(r.attributes, "secret", 6));

    /* Logged out: the public object reads, nothing else works; both are listed. */
    TL_OK(c, logout(c, pol));
    TL_OK(c, read_object(c, pub, &r));
    ck_assert(view_is(r.attributes, "public", 6));
    ck_assert_uint_eq(r.pin_policy_handle, pol);
    ck_assert_int_eq(read_object(c, priv, &r), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_ptr_null(strstr(c->error, "secret"));
    ck_assert_int_eq(update_object(c, pub, str_view("x")), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(update_object(c, priv, str_view("x")), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(delete_object(c, pub), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(delete_object(c, priv), SKS_ERR_NOT_AUTHENTICATED);
    ck_assert(object_listed(c, pub));
    ck_assert(object_listed(c, priv));

    /* A card reset forgets the PIN as well; a wrong PIN too. */
    TL_OK(c, verify_pin(c, pol, "1234"));
    sks_card_reset(c->card);
    ck_assert_int_eq(read_object(c, priv, &r), SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, pol, "1234"));
    ck_assert_int_eq(verify_pin(c, pol, "9999"), SKS_ERR_AUTHENTICATION);
    ck_assert_int_eq(update_object(c, pub, str_view("x")), SKS_ERR_NOT_AUTHENTICATED);

    /* Verified again: everything works, and nothing was changed meanwhile. */
    TL_OK(c, verify_pin(c, pol, "1234"));
    TL_OK(c, read_object(c, pub, &r));
    ck_assert(view_is(r.attributes, "public", 6));
    TL_OK(c, update_object(c, priv, str_view("secret 2")));
    TL_OK(c, read_object(c, priv, &r));
    ck_assert(view_is(r.attributes, "secret 2", 8));
    TL_OK(c, delete_object(c, pub));
    TL_OK(c, delete_object(c, priv));
    ck_assert_int_eq(read_object(c, priv, &r), SKS_ERR_NO_KEY);

    /* Objects of policy 0 need no PIN even while another policy is logged out. */
    TL_OK(c, logout(c, 0));
    TL_OK(c, create_object(c, 0, SKS_OBJECT_CERTIFICATE, 0, str_view("c"), &h));
    TL_OK(c, update_object(c, h, str_view("d")));
    TL_OK(c, delete_object(c, h));

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* PINPolicyHandle and Class of createObject. */
START_TEST(test_object_arguments)
{
    tl_key_spec spec = {.pin = "1234"};
    tl_key key;
    tl_card *c = tl_card_new();
    tl_provision_key(c, &spec, &key);
    sks_issuer_session *is = NULL;
    uint32_t open_pol = open_session_policy(c, &is);
    uint32_t h = 0;

    TL_OK(c, verify_pin(c, key.pin_policy, "1234"));
    /* Not a PIN policy of a closed session: unknown, of an open session, a key, "device". */
    ck_assert_int_eq(create_object(c, 0x7FFFFFF0u, SKS_OBJECT_DATA, 0, str_view("a"), &h),
                     SKS_ERR_NO_POLICY);
    ck_assert_int_eq(create_object(c, open_pol, SKS_OBJECT_DATA, 0, str_view("a"), &h),
                     SKS_ERR_NO_POLICY);
    ck_assert_int_eq(create_object(c, key.key[0], SKS_OBJECT_DATA, 0, str_view("a"), &h),
                     SKS_ERR_NO_POLICY);
    ck_assert_int_eq(create_object(c, SKS_HANDLE_DEVICE, SKS_OBJECT_DATA, 0, str_view("a"), &h),
                     SKS_ERR_NO_POLICY);
    /* Class 1..3. */
    ck_assert_int_eq(create_object(c, 0, 0, 0, str_view("a"), &h), SKS_ERR_OPTION);
    ck_assert_int_eq(create_object(c, 0, 4, 0, str_view("a"), &h), SKS_ERR_OPTION);
    ck_assert_int_eq(create_object(c, key.pin_policy, 255, 0, str_view("a"), &h), SKS_ERR_OPTION);
    for (uint8_t cls = SKS_OBJECT_CERTIFICATE; cls <= SKS_OBJECT_PUBLIC_KEY; cls++) {
        sks_resp_read_object r;
        TL_OK(c, create_object(c, key.pin_policy, cls, 0, str_view("a"), &h));
        TL_OK(c, read_object(c, h, &r));
        ck_assert_uint_eq(r.object_class, cls);
    }
    /* A rejected call created nothing: only the three objects are listed. */
    static uint32_t handles[SKS_ENUM_PAGE_MAX];
    int more = 1;
    ck_assert_uint_eq(list_objects(c, 0, handles, &more), 3);
    ck_assert_int_eq(more, 0);

    sks_issuer_session_free(is);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* Encode createObject (or updateObject) with an Attributes blob of n bytes by hand. */
static int raw_object_call(tl_card *c, uint8_t method, uint32_t handle, size_t n)
{
    sks_writer w;
    sks_writer_init(&w);
    sks_put_byte(&w, method);
    sks_put_int(&w, handle);
    if (method == SKS_M_CREATE_OBJECT) {
        sks_put_byte(&w, SKS_OBJECT_DATA);
        sks_put_bool(&w, 0);
    }
    uint8_t len[4];
    sks_be32_put(len, (uint32_t)n);
    sks_put_raw(&w, len, 4);
    uint8_t *data = malloc(n > 0 ? n : 1);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7);
    sks_put_raw(&w, data, n);
    ck_assert(!w.failed);
    int st = tl_call_raw(c, w.buf, w.len);
    free(data);
    sks_writer_free(&w);
    return st;
}

/* Attributes up to 64 KiB, byte for byte; one more byte is OPTION. */
START_TEST(test_object_size)
{
    tl_card *c = tl_card_new();
    uint32_t h = 0;
    sks_resp_read_object r;

    ck_assert_int_eq(raw_object_call(c, SKS_M_CREATE_OBJECT, 0, SKS_OBJECT_MAX + 1),
                     SKS_ERR_OPTION);
    ck_assert_ptr_nonnull(strstr(c->error, "Attributes"));
    TL_OK(c, raw_object_call(c, SKS_M_CREATE_OBJECT, 0, SKS_OBJECT_MAX));
    static uint32_t handles[SKS_ENUM_PAGE_MAX];
    int more = 0;
    ck_assert_uint_eq(list_objects(c, 0, handles, &more), 1);
    h = handles[0];
    TL_OK(c, read_object(c, h, &r));
    ck_assert_uint_eq(r.attributes.len, SKS_OBJECT_MAX);
    for (size_t i = 0; i < SKS_OBJECT_MAX; i++)
        ck_assert_uint_eq(r.attributes.ptr[i], (uint8_t)(i * 7));

    ck_assert_int_eq(raw_object_call(c, SKS_M_UPDATE_OBJECT, h, SKS_OBJECT_MAX + 1),
                     SKS_ERR_OPTION);
    TL_OK(c, raw_object_call(c, SKS_M_UPDATE_OBJECT, h, 100));
    TL_OK(c, read_object(c, h, &r));
    ck_assert_uint_eq(r.attributes.len, 100);
    ck_assert_uint_eq(r.attributes.ptr[99], (uint8_t)(99 * 7));
    tl_card_free(c);
}
END_TEST

/* The number of objects is bounded by the card's MaxKeys; keys do not count. */
START_TEST(test_object_limit)
{
    sks_card_init_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.max_keys = 3;
    tl_card *c = tl_card_new_opts(&opts);
    tl_key_spec spec = {.key_count = 2};
    tl_key key;
    tl_provision_key(c, &spec, &key);
    uint32_t h[3];

    for (int i = 0; i < 3; i++)
        TL_OK(c, create_object(c, 0, SKS_OBJECT_DATA, 0, str_view("o"), &h[i]));
    uint32_t before = change_counter(c);
    ck_assert_int_eq(create_object(c, 0, SKS_OBJECT_DATA, 0, str_view("o"), NULL),
                     SKS_ERR_NOT_ALLOWED);
    ck_assert_uint_eq(change_counter(c), before);
    TL_OK(c, delete_object(c, h[1]));
    TL_OK(c, create_object(c, 0, SKS_OBJECT_DATA, 0, str_view("o"), NULL));
    ck_assert_int_eq(create_object(c, 0, SKS_OBJECT_DATA, 0, str_view("o"), NULL),
                     SKS_ERR_NOT_ALLOWED);

    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* enumerateObjects pages: at most 1000 handles, ascending, More and AfterHandle. */
START_TEST(test_object_enumeration)
{
    tl_card *c = tl_card_new();
    card_store *st = c->card->store;
    enum { N = SKS_ENUM_PAGE_MAX + 5 };
    static uint32_t made[N], page[SKS_ENUM_PAGE_MAX];
    int more = 0;

    /* Empty card: nothing, no more. */
    ck_assert_uint_eq(list_objects(c, 0, page, &more), 0);
    ck_assert_int_eq(more, 0);

    /* Many objects at once straight through the store (one transaction). */
    ck_assert_int_eq(card_store_begin(st), SKS_OK);
    for (size_t i = 0; i < N; i++) {
        card_object_rec rec;
        memset(&rec, 0, sizeof(rec));
        ck_assert_int_eq(card_store_next_handle(st, &rec.handle), SKS_OK);
        rec.object_class = SKS_OBJECT_DATA;
        ck_assert_int_eq(card_buf_set(&rec.attributes, "x", 1), 0);
        ck_assert_int_eq(card_store_object_put(st, &rec), SKS_OK);
        made[i] = rec.handle;
        card_object_rec_free(&rec);
    }
    ck_assert_int_eq(card_store_commit(st), 0);

    size_t n = list_objects(c, 0, page, &more);
    ck_assert_uint_eq(n, SKS_ENUM_PAGE_MAX);
    ck_assert_int_eq(more, 1);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(page[i], made[i]);
    n = list_objects(c, page[n - 1], page, &more);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(more, 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_eq(page[i], made[SKS_ENUM_PAGE_MAX + i]);
    /* AfterHandle is exclusive and need not be an object's handle. */
    n = list_objects(c, made[N - 3], page, &more);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(page[0], made[N - 2]);
    n = list_objects(c, made[N - 1] + 100, page, &more);
    ck_assert_uint_eq(n, 0);
    tl_card_free(c);
}
END_TEST

/* Does the file at `path` contain `needle`? */
static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 20, len = 0, n;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    int found = 0;
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= len && !found; i++)
        found = memcmp(buf + i, needle, k) == 0;
    free(buf);
    return found;
}

/* Attributes are sealed in the database like every other secret field. */
START_TEST(test_object_sealed)
{
    static const char marker[] = "OBJECT-MARKER-0123456789-ATTRIBUTES";
    tl_card *c = tl_card_new();
    uint32_t h = 0;
    char path[400];

    TL_OK(c, create_object(c, 0, SKS_OBJECT_DATA, 1, str_view(marker), &h));
    tl_card_reopen(c);
    snprintf(path, sizeof(path), "%s/card.db", c->dir);
    ck_assert(!file_contains(path, marker));
    sks_resp_read_object r;
    TL_OK(c, read_object(c, h, &r));
    ck_assert(view_is(r.attributes, marker, strlen(marker)));
    tl_card_free(c);
}
END_TEST

/* ---- setKeyAttributes ------------------------------------------------------- */

START_TEST(test_set_key_attributes)
{
    tl_key_spec with_pin = {.pin = "1234", .key_count = 2, .friendly_name = "old name"};
    tl_key_spec no_pin = {.key_count = 1};
    tl_key a, b;
    tl_card *c = tl_card_new();
    tl_provision_key(c, &with_pin, &a);
    tl_provision_key(c, &no_pin, &b);
    sks_resp_get_key_attributes attrs;
    char name[SKS_FRIENDLY_NAME_MAX + 1];

    /* A PIN-protected key needs its PIN. */
    ck_assert_int_eq(set_key_attributes(c, a.key[0], str_view("new-id"), str_view("new")),
                     SKS_ERR_NOT_AUTHENTICATED);
    TL_OK(c, verify_pin(c, a.pin_policy, "1234"));
    TL_OK(c, set_key_attributes(c, a.key[0], str_view("new-id"), str_view("new name")));
    TL_OK(c, get_key_attributes(c, a.key[0], &attrs));
    ck_assert(view_is(attrs.id, "new-id", 6));
    ck_assert(view_is(attrs.friendly_name, "new name", 8));
    /* Nothing else moved. */
    ck_assert_uint_eq(attrs.pin_policy_handle, a.pin_policy);
    ck_assert_uint_eq(attrs.provisioning_handle, a.session);
    ck_assert(attrs.flags & SKS_KEYFLAG_COMPLETE);
    ck_assert_uint_eq(attrs.certificate_path.count, 1);

    /* IDs are unique among complete keys: key2 of the same session, key1 of the other. */
    ck_assert_int_eq(set_key_attributes(c, a.key[1], str_view("new-id"), str_view("")),
                     SKS_ERR_OPTION);
    ck_assert_int_eq(set_key_attributes(c, b.key[0], str_view("new-id"), str_view("")),
                     SKS_ERR_OPTION);
    ck_assert_int_eq(set_key_attributes(c, a.key[0], str_view("key2"), str_view("")),
                     SKS_ERR_OPTION);
    /* The key's own ID, an empty name and a name of 255 bytes are fine. */
    TL_OK(c, set_key_attributes(c, a.key[0], str_view("new-id"), str_view("")));
    TL_OK(c, get_key_attributes(c, a.key[0], &attrs));
    ck_assert_uint_eq(attrs.friendly_name.len, 0);
    memset(name, 'n', SKS_FRIENDLY_NAME_MAX);
    name[SKS_FRIENDLY_NAME_MAX] = '\0';
    TL_OK(c, set_key_attributes(c, a.key[1], str_view("k2"), str_view(name)));
    TL_OK(c, get_key_attributes(c, a.key[1], &attrs));
    ck_assert(view_is(attrs.friendly_name, name, SKS_FRIENDLY_NAME_MAX));
    /* The old ID of a renamed key is free again. */
    TL_OK(c, set_key_attributes(c, b.key[0], str_view("key2"), str_view("b")));

    /* A key without PIN needs nothing; 1 and 32 byte IDs; 0 and 33 are OPTION. */
    TL_OK(c, logout(c, 0));
    TL_OK(c, set_key_attributes(c, b.key[0], str_view("x"), str_view("b")));
    char id33[34];
    memset(id33, 'i', 33);
    id33[33] = '\0';
    ck_assert_int_eq(set_key_attributes(c, b.key[0], str_view(id33), str_view("")), SKS_ERR_OPTION);
    id33[32] = '\0';
    TL_OK(c, set_key_attributes(c, b.key[0], str_view(id33), str_view("")));
    ck_assert_int_eq(set_key_attributes(c, b.key[0], str_view(""), str_view("")), SKS_ERR_OPTION);
    char long_name[SKS_FRIENDLY_NAME_MAX + 2];
    memset(long_name, 'l', SKS_FRIENDLY_NAME_MAX + 1);
    long_name[SKS_FRIENDLY_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(set_key_attributes(c, b.key[0], str_view("x"), str_view(long_name)),
                     SKS_ERR_OPTION);
    TL_OK(c, get_key_attributes(c, b.key[0], &attrs));
    ck_assert(view_is(attrs.id, id33, 32));

    /* Unknown keys, object handles and a power cycle. */
    ck_assert_int_eq(set_key_attributes(c, 0x7FFFFFF0u, str_view("x"), str_view("")),
                     SKS_ERR_NO_KEY);
    ck_assert_int_eq(set_key_attributes(c, a.pin_policy, str_view("x"), str_view("")),
                     SKS_ERR_NO_KEY);
    tl_card_reopen(c);
    TL_OK(c, get_key_attributes(c, a.key[1], &attrs));
    ck_assert(view_is(attrs.id, "k2", 2));

    tl_key_free(&a);
    tl_key_free(&b);
    tl_card_free(c);
}
END_TEST

/* A key of an open session is no key for setKeyAttributes, and its ID does not count. */
START_TEST(test_set_key_attributes_open_session)
{
    tl_card *c = tl_card_new();
    tl_key_spec spec = {.key_count = 1};
    tl_key done;
    tl_provision_key(c, &spec, &done);
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 0);
    sks_issuer_key_spec ks;
    sks_issuer_msg m;
    sks_req_create_key_pair req;
    sks_resp_create_key_pair resp;
    memset(&ks, 0, sizeof(ks));
    ks.id = "pending";
    ks.key_usage = SKS_USAGE_SIGN;
    ks.algorithm = SKS_KEYALG_EC_P256;
    sks_issuer_msg_init(&m);
    ck_assert(sks_issuer_prepare_key_pair(is, &ks, 0, &m, &req) == 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_KEY_PAIR, &req, &resp, NULL));
    uint32_t pending = resp.key_handle;

    ck_assert_int_eq(set_key_attributes(c, pending, str_view("x"), str_view("")), SKS_ERR_NO_KEY);
    TL_OK(c, set_key_attributes(c, done.key[0], str_view("pending"), str_view("")));
    /* The open session was not touched: it is still open (NO_KEY, not an abort). */
    card_session_rec s;
    ck_assert_int_eq(card_store_session_get(c->card->store, sks_issuer_provisioning_handle(is), &s),
                     SKS_OK);
    ck_assert_uint_eq(s.state, CARD_SESSION_OPEN);
    card_session_rec_free(&s);

    sks_issuer_msg_free(&m);
    sks_issuer_session_free(is);
    tl_key_free(&done);
    tl_card_free(c);
}
END_TEST

/* ---- ChangeCounter ----------------------------------------------------------- */

START_TEST(test_change_counter)
{
    tl_key_spec spec = {.pin = "1234", .puk = "12345678", .puk_retry_limit = 3};
    tl_key key;
    tl_card *c = tl_card_new();
    uint32_t n0 = change_counter(c);
    tl_provision_key(c, &spec, &key);
    uint32_t pol = key.pin_policy, h = 0;
    sks_resp_read_object r;

    /* Provisioning: session, PUK, PIN, key, certificate, close: six commits. */
    uint32_t n = change_counter(c);
    ck_assert_uint_eq(n, n0 + 6);

    /* Reads and failures that change nothing leave it alone. */
    uint8_t none = 0;
    TL_OK(c, tl_call(c, SKS_M_ENUMERATE_PIN_POLICIES, &none, NULL, NULL));
    ck_assert_int_eq(create_object(c, pol, SKS_OBJECT_DATA, 0, str_view("a"), &h),
                     SKS_ERR_NOT_AUTHENTICATED);
    ck_assert_int_eq(create_object(c, 0, 9, 0, str_view("a"), &h), SKS_ERR_OPTION);
    TL_OK(c, logout(c, 0));
    ck_assert_uint_eq(change_counter(c), n);

    /* verifyPIN: the counter decrement and its restore are two commits. */
    TL_OK(c, verify_pin(c, pol, "1234"));
    ck_assert_uint_eq(change_counter(c), n += 2);
    /* A wrong PIN: one (the decrement). */
    ck_assert_int_eq(verify_pin(c, pol, "9999"), SKS_ERR_AUTHENTICATION);
    ck_assert_uint_eq(change_counter(c), n += 1);
    TL_OK(c, verify_pin(c, pol, "1234"));
    n += 2;

    /* Each object write is one. */
    TL_OK(c, create_object(c, pol, SKS_OBJECT_DATA, 1, str_view("a"), &h));
    ck_assert_uint_eq(change_counter(c), n += 1);
    TL_OK(c, read_object(c, h, &r));
    ck_assert_uint_eq(change_counter(c), n);
    TL_OK(c, update_object(c, h, str_view("b")));
    ck_assert_uint_eq(change_counter(c), n += 1);
    TL_OK(c, set_key_attributes(c, key.key[0], str_view("renamed"), str_view("")));
    ck_assert_uint_eq(change_counter(c), n += 1);
    TL_OK(c, delete_object(c, h));
    ck_assert_uint_eq(change_counter(c), n += 1);
    ck_assert_int_eq(delete_object(c, h), SKS_ERR_NO_KEY);
    ck_assert_uint_eq(change_counter(c), n);

    /* verifyPUK moves it like verifyPIN. */
    sks_req_verify_puk vp = {pol, str_view("12345678")};
    TL_OK(c, tl_call(c, SKS_M_VERIFY_PUK, &vp, NULL, NULL));
    ck_assert_uint_eq(change_counter(c), n += 2);

    /* It is stored, not counted in memory. */
    tl_card_reopen(c);
    ck_assert_uint_eq(change_counter(c), n);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

static Suite *objects_suite(void)
{
    Suite *s = suite_create("objects");
    TCase *tc = tcase_create("objects");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_object_lifecycle);
    tcase_add_test(tc, test_object_pin_rules);
    tcase_add_test(tc, test_object_arguments);
    tcase_add_test(tc, test_object_size);
    tcase_add_test(tc, test_object_limit);
    tcase_add_test(tc, test_object_enumeration);
    tcase_add_test(tc, test_object_sealed);
    suite_add_tcase(s, tc);
    tc = tcase_create("keys and counter");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_set_key_attributes);
    tcase_add_test(tc, test_set_key_attributes_open_session);
    tcase_add_test(tc, test_change_counter);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(objects_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
