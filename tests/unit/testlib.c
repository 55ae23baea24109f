/*
 * testlib.c - shared helpers of the card tests (see testlib.h): temporary
 * cards, one call at a time through sks_card_call, the issuer's calls of a
 * provisioning session one by one, and end-to-end provisioning of keys
 * through the real issuer.
 */
#include "testlib.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/sks_crypto.h"

int tl_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---- Temporary directories -------------------------------------------- */

/*
 * Directories made by this process, removed at exit as well so a failing
 * test (Check ends the forked child with exit()) leaves nothing behind.
 * Each entry remembers its creator: a forked child never removes the
 * parent's directory.
 */
#define TL_MAX_DIRS 64
static struct {
    char path[256];
    pid_t owner;
} tl_dirs[TL_MAX_DIRS];
static int tl_cleanup_registered;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void remove_dirs_at_exit(void)
{
    for (size_t i = 0; i < TL_MAX_DIRS; i++) {
        if (tl_dirs[i].path[0] != '\0' && tl_dirs[i].owner == getpid()) {
            remove_tree(tl_dirs[i].path);
            tl_dirs[i].path[0] = '\0';
        }
    }
}

static void remember_dir(const char *path)
{
    if (!tl_cleanup_registered) {
        atexit(remove_dirs_at_exit);
        tl_cleanup_registered = 1;
    }
    for (size_t i = 0; i < TL_MAX_DIRS; i++) {
        if (tl_dirs[i].path[0] == '\0') {
            snprintf(tl_dirs[i].path, sizeof tl_dirs[i].path, "%s", path);
            tl_dirs[i].owner = getpid();
            return;
        }
    }
}

static void forget_dir(const char *path)
{
    for (size_t i = 0; i < TL_MAX_DIRS; i++) {
        if (strcmp(tl_dirs[i].path, path) == 0 && tl_dirs[i].owner == getpid())
            tl_dirs[i].path[0] = '\0';
    }
}

/* ---- Cards ------------------------------------------------------------ */

tl_card *tl_card_new_opts(const sks_card_init_opts *opts)
{
    char err[256] = "";
    tl_card *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    const char *tmp = getenv("TMPDIR");
    snprintf(c->dir, sizeof c->dir, "%s/sks-card-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(c->dir) != NULL, "mkdtemp failed");
    remember_dir(c->dir);
    sks_card_init_opts defaults;
    memset(&defaults, 0, sizeof defaults);
    ck_assert_msg(sks_card_init_state(c->dir, opts != NULL ? opts : &defaults, err, sizeof err) ==
                      0,
                  "sks_card_init_state: %s", err);
    c->card = sks_card_open(c->dir, err, sizeof err);
    ck_assert_msg(c->card != NULL, "sks_card_open: %s", err);
    sks_card_set_puk_delay_ms(c->card, 0);

    char ca[300];
    snprintf(ca, sizeof ca, "%s/manufacturer/ca-cert.pem", c->dir);
    c->trusted = sks_issuer_trust_pem(ca);
    ck_assert_msg(c->trusted != NULL, "cannot load %s", ca);
    sks_writer_init(&c->answer);
    return c;
}

tl_card *tl_card_new(void)
{
    return tl_card_new_opts(NULL);
}

void tl_card_reopen(tl_card *c)
{
    char err[256] = "";
    sks_card_close(c->card);
    c->card = sks_card_open(c->dir, err, sizeof err);
    ck_assert_msg(c->card != NULL, "sks_card_open: %s", err);
    sks_card_set_puk_delay_ms(c->card, 0);
}

void tl_card_free(tl_card *c)
{
    if (c == NULL)
        return;
    sks_card_close(c->card);
    X509_STORE_free(c->trusted);
    sks_writer_free(&c->answer);
    remove_tree(c->dir);
    forget_dir(c->dir);
    free(c);
}

/* ---- Calls ------------------------------------------------------------ */

/* Decode an answer for `d`; the status, with c->error set. */
static int decode_answer(tl_card *c, const sks_msgdesc *d, const sks_writer *a, void *resp)
{
    sks_any_response scratch; /* for callers that pass resp = NULL */
    uint8_t status = 0xFF;
    sks_view err = {NULL, 0};
    if (resp == NULL)
        resp = &scratch;
    ck_assert_msg(a->len >= 1, "empty answer");
    if (d == NULL) {
        /* Unknown method: only an error answer can be decoded. */
        ck_assert_msg(a->buf[0] != SKS_OK, "OK answer to an unknown method");
        sks_reader r;
        sks_reader_init(&r, a->buf + 1, a->len - 1);
        ck_assert_msg(sks_get_bytes(&r, &err) == 0 && sks_reader_finish(&r) == 0,
                      "malformed error answer");
        status = a->buf[0];
    } else {
        ck_assert_msg(sks_msg_decode_response(d, a->buf, a->len, resp, &status, &err) == 0,
                      "malformed answer to %s", d->name);
    }
    size_t n = err.len < sizeof c->error - 1 ? err.len : sizeof c->error - 1;
    if (n > 0)
        memcpy(c->error, err.ptr, n);
    c->error[n] = '\0';
    return status;
}

int tl_call(tl_card *c, uint8_t method, const void *req, void *resp, sks_writer *answer)
{
    const sks_msgdesc *d = sks_msg_find(method);
    ck_assert_msg(d != NULL, "no descriptor for method %u", method);
    sks_writer w;
    sks_writer_init(&w);
    ck_assert_msg(sks_msg_encode_request(d, req, &w) == 0, "cannot encode %s", d->name);
    sks_writer *a = answer != NULL ? answer : &c->answer;
    sks_writer_reset(a);
    sks_card_call(c->card, w.buf, w.len, a);
    sks_writer_free(&w);
    return decode_answer(c, d, a, resp);
}

int tl_call_raw(tl_card *c, const uint8_t *call, size_t n)
{
    sks_writer_reset(&c->answer);
    sks_card_call(c->card, call, n, &c->answer);
    return decode_answer(c, n > 0 ? sks_msg_find(call[0]) : NULL, &c->answer, NULL);
}

/* ---- Issuer ----------------------------------------------------------- */

static EVP_PKEY *tl_ca_key;
static X509 *tl_ca_cert;

static void free_ca(void)
{
    EVP_PKEY_free(tl_ca_key);
    X509_free(tl_ca_cert);
    tl_ca_key = NULL;
    tl_ca_cert = NULL;
}

void tl_issuer_ca(EVP_PKEY **key, X509 **cert)
{
    if (tl_ca_key == NULL) {
        ck_assert_msg(sks_issuer_ca_new("SKS Test Issuer CA", &tl_ca_key, &tl_ca_cert) == 0,
                      "cannot make the test issuer CA");
        atexit(free_ca);
    }
    *key = tl_ca_key;
    *cert = tl_ca_cert;
}

void tl_issue_cert_der(sks_view spki, sks_writer *der)
{
    static uint64_t serial = 1000;
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    tl_issuer_ca(&ca_key, &ca_cert);
    X509 *cert = sks_issuer_issue_cert(ca_key, ca_cert, spki, "SKS test key", serial++);
    ck_assert_msg(cert != NULL, "cannot issue a certificate");
    ck_assert(sks_issuer_cert_der(cert, der) == 0);
    X509_free(cert);
}

size_t tl_issue_cert_path_der(sks_view spki, sks_writer *der)
{
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    size_t start = der->len;
    tl_issue_cert_der(spki, der);
    size_t ee_len = der->len - start;
    tl_issuer_ca(&ca_key, &ca_cert);
    ck_assert(sks_issuer_cert_der(ca_cert, der) == 0);
    return ee_len;
}

/* createProvisioningSession of `is` (its request made here), the answer accepted. */
static void open_with(tl_card *c, sks_issuer_session *is, uint8_t updatable, uint16_t limit,
                      uint32_t lifetime)
{
    ck_assert_msg(is != NULL, "cannot make an issuer session");
    sks_req_create_session req;
    sks_resp_create_session resp;
    ck_assert(sks_issuer_request(is, updatable, limit, lifetime != 0 ? lifetime : 3600, &req) == 0);
    int st = tl_call(c, SKS_M_CREATE_PROVISIONING_SESSION, &req, &resp, NULL);
    TL_OK(c, st);
    ck_assert_msg(sks_issuer_accept(is, c->trusted, &resp) == 0, "issuer: %s",
                  sks_issuer_error(is));
}

sks_issuer_session *tl_open_session(tl_card *c, uint8_t session_key_alg, uint8_t updatable,
                                    uint16_t limit, uint32_t lifetime)
{
    sks_issuer_session *is =
        sks_issuer_session_new(session_key_alg, "https://issuer.example/sks", NULL);
    open_with(c, is, updatable, limit, lifetime);
    return is;
}

sks_issuer_session *tl_open_session_of(tl_card *c, const char *uri, EVP_PKEY *issuer_key,
                                       uint8_t updatable)
{
    sks_issuer_session *is = sks_issuer_session_new(SKS_SKALG_ECDH_P256, uri, issuer_key);
    open_with(c, is, updatable, 0, 0);
    return is;
}

int tl_close_session(tl_card *c, sks_issuer_session *is)
{
    sks_issuer_msg m;
    sks_req_close_session req;
    sks_resp_close_session resp;
    sks_issuer_msg_init(&m);
    ck_assert_msg(sks_issuer_prepare_close(is, &m, &req) == 0, "%s", sks_issuer_error(is));
    int st = tl_call(c, SKS_M_CLOSE_PROVISIONING_SESSION, &req, &resp, NULL);
    if (st == SKS_OK)
        ck_assert_msg(sks_issuer_verify_close(is, &m, &resp) == 0, "%s", sks_issuer_error(is));
    sks_issuer_msg_free(&m);
    return st;
}

/* ---- One call of a session ------------------------------------------- */

uint32_t tl_create_puk_policy(tl_card *c, sks_issuer_session *is, const char *id, const char *puk,
                              uint8_t format, uint8_t retry_limit)
{
    sks_issuer_msg m;
    sks_req_create_puk_policy req;
    sks_resp_create_puk_policy resp;
    sks_view value = {(const uint8_t *)puk, strlen(puk)};
    sks_issuer_msg_init(&m);
    ck_assert_msg(sks_issuer_prepare_puk_policy(is, id, value, format, retry_limit, &m, &req) == 0,
                  "%s", sks_issuer_error(is));
    TL_OK(c, tl_call(c, SKS_M_CREATE_PUK_POLICY, &req, &resp, NULL));
    sks_issuer_msg_free(&m);
    return resp.puk_policy_handle;
}

void tl_pin_policy(sks_issuer_pin_policy *pp, const char *id, const char *puk_id)
{
    memset(pp, 0, sizeof *pp);
    pp->id = id;
    pp->puk_id = puk_id;
    pp->format = SKS_PIN_NUMERIC;
    pp->retry_limit = 3;
    pp->grouping = SKS_GROUPING_SHARED;
    pp->min_length = 4;
    pp->max_length = 8;
    pp->caching_support = 1;
}

uint32_t tl_create_pin_policy(tl_card *c, sks_issuer_session *is, const sks_issuer_pin_policy *pp,
                              uint32_t puk_handle)
{
    sks_issuer_msg m;
    sks_req_create_pin_policy req;
    sks_resp_create_pin_policy resp;
    sks_issuer_msg_init(&m);
    ck_assert_msg(sks_issuer_prepare_pin_policy(is, pp, puk_handle, &m, &req) == 0, "%s",
                  sks_issuer_error(is));
    TL_OK(c, tl_call(c, SKS_M_CREATE_PIN_POLICY, &req, &resp, NULL));
    sks_issuer_msg_free(&m);
    return resp.pin_policy_handle;
}

void tl_create_key_pair(tl_card *c, sks_issuer_session *is, const sks_issuer_key_spec *ks,
                        uint32_t pin_handle, sks_resp_create_key_pair *resp, sks_writer *answer)
{
    sks_issuer_msg m;
    sks_req_create_key_pair req;
    sks_issuer_msg_init(&m);
    ck_assert_msg(sks_issuer_prepare_key_pair(is, ks, pin_handle, &m, &req) == 0, "%s",
                  sks_issuer_error(is));
    TL_OK(c, tl_call(c, SKS_M_CREATE_KEY_PAIR, &req, resp, answer));
    ck_assert_msg(sks_issuer_verify_key_attestation(is, &m, resp) == 0, "%s", sks_issuer_error(is));
    sks_issuer_msg_free(&m);
}

void tl_set_certificate(tl_card *c, sks_issuer_session *is, const char *id, uint32_t key,
                        sks_view spki, sks_writer *der)
{
    sks_issuer_msg m;
    sks_req_set_certificate_path req;
    sks_writer cert;
    sks_writer_init(&cert);
    sks_issuer_msg_init(&m);
    tl_issue_cert_der(spki, &cert);
    sks_view path[1] = {{cert.buf, cert.len}};
    ck_assert_msg(sks_issuer_prepare_certificate_path(is, id, key, path, 1, &m, &req) == 0, "%s",
                  sks_issuer_error(is));
    TL_OK(c, tl_call(c, SKS_M_SET_CERTIFICATE_PATH, &req, NULL, NULL));
    if (der != NULL)
        sks_put_raw(der, cert.buf, cert.len);
    sks_issuer_msg_free(&m);
    sks_writer_free(&cert);
}

uint32_t tl_make_key(tl_card *c, sks_issuer_session *is, const sks_issuer_key_spec *ks,
                     uint32_t pin_handle, sks_writer *spki)
{
    sks_resp_create_key_pair resp;
    sks_writer answer;
    sks_writer_init(&answer);
    tl_create_key_pair(c, is, ks, pin_handle, &resp, &answer);
    tl_set_certificate(c, is, ks->id, resp.key_handle, resp.public_key, NULL);
    if (spki != NULL)
        sks_put_raw(spki, resp.public_key.ptr, resp.public_key.len);
    sks_writer_free(&answer);
    return resp.key_handle;
}

int tl_prepare_post(sks_issuer_session *is, uint8_t method, const char *id, sks_view pub,
                    uint32_t key, const char *new_id, uint32_t new_key, sks_issuer_msg *m,
                    sks_req_post_key *req)
{
    if (method == SKS_M_POST_DELETE_KEY)
        return sks_issuer_prepare_post_delete(is, id, pub, key, m, req);
    if (method == SKS_M_POST_UNLOCK_KEY)
        return sks_issuer_prepare_post_unlock(is, id, pub, key, m, req);
    return sks_issuer_prepare_post_update(is, id, pub, key, new_id, new_key, m, req);
}

void tl_remac(sks_issuer_session *is, uint8_t method, const void *req, sks_issuer_msg *m)
{
    const sks_msgdesc *d = sks_msg_find(method);
    ck_assert_ptr_nonnull(d);
    sks_writer w;
    sks_writer_init(&w);
    ck_assert(sks_msg_macdata(d, req, &w) == 0);
    ck_assert(sks_mac(sks_issuer_session_key(is), d->name, m->counter, w.buf, w.len, m->mac) == 0);
    sks_writer_free(&w);
}

int tl_key_status(tl_card *c, uint32_t key)
{
    sks_req_key_handle req = {key};
    sks_resp_get_key_attributes attrs;
    return tl_call(c, SKS_M_GET_KEY_ATTRIBUTES, &req, &attrs, NULL);
}

int tl_verify_pin(tl_card *c, uint32_t policy, const char *pin)
{
    sks_req_verify_pin req = {policy, {(const uint8_t *)pin, strlen(pin)}};
    return tl_call(c, SKS_M_VERIFY_PIN, &req, NULL, NULL);
}

/* ---- Provisioning ----------------------------------------------------- */

static EVP_PKEY *spki_to_key(sks_view spki)
{
    const unsigned char *p = spki.ptr;
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)spki.len);
    ck_assert_msg(k != NULL, "bad SubjectPublicKeyInfo");
    return k;
}

static X509 *der_to_cert(const sks_writer *der)
{
    const unsigned char *p = der->buf;
    X509 *x = d2i_X509(NULL, &p, (long)der->len);
    ck_assert_msg(x != NULL, "bad certificate");
    return x;
}

/* A key the issuer makes for ImportPrivateKey. */
static EVP_PKEY *issuer_key_of(uint8_t alg)
{
    switch (alg) {
    case SKS_KEYALG_RSA2048:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    case SKS_KEYALG_RSA3072:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    case SKS_KEYALG_RSA4096:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    case SKS_KEYALG_EC_P384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    default:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    }
}

/* createKeyPair (+ import) + setCertificatePath for key number i. */
static void provision_one(tl_card *c, sks_issuer_session *is, const tl_key_spec *spec, size_t i,
                          tl_key *out)
{
    char id[16];
    snprintf(id, sizeof id, "key%zu", i + 1);
    uint8_t f = spec->flags;
    sks_issuer_key_spec ks;
    memset(&ks, 0, sizeof ks);
    ks.id = id;
    ks.pin_policy_id = spec->pin != NULL ? "pin" : NULL;
    if (spec->pin != NULL)
        ks.pin = (sks_view){(const uint8_t *)spec->pin, strlen(spec->pin)};
    ks.private_key_backup = (f & SKS_KEYFLAG_PRIVATE_KEY_BACKUP) != 0;
    ks.migratable = (f & SKS_KEYFLAG_MIGRATABLE) != 0;
    ks.updatable = (f & SKS_KEYFLAG_UPDATABLE) != 0;
    ks.delete_protected = (f & SKS_KEYFLAG_DELETE_PROTECTED) != 0;
    ks.import_private_key = (f & SKS_KEYFLAG_IMPORT_PRIVATE_KEY) != 0;
    ks.key_usage = spec->key_usage != 0 ? spec->key_usage : SKS_USAGE_SIGN;
    ks.friendly_name = spec->friendly_name;
    ks.algorithm = spec->algorithm != 0 ? spec->algorithm : SKS_KEYALG_EC_P256;

    sks_resp_create_key_pair resp;
    sks_writer ans, der;
    sks_writer_init(&ans);
    sks_writer_init(&der);
    tl_create_key_pair(c, is, &ks, out->pin_policy, &resp, &ans);
    out->key[i] = resp.key_handle;

    if (ks.import_private_key) {
        EVP_PKEY *priv = issuer_key_of(ks.algorithm);
        ck_assert_ptr_nonnull(priv);
        sks_issuer_msg m;
        sks_req_put_private_key put;
        sks_issuer_msg_init(&m);
        ck_assert_msg(sks_issuer_prepare_put_pkey(is, SKS_M_IMPORT_PRIVATE_KEY, id, resp.key_handle,
                                                  priv, &m, &put) == 0,
                      "%s", sks_issuer_error(is));
        TL_OK(c, tl_call(c, SKS_M_IMPORT_PRIVATE_KEY, &put, NULL, NULL));
        sks_issuer_msg_free(&m);
        out->private_key[i] = priv;
        unsigned char *spki = NULL;
        int n = i2d_PUBKEY(priv, &spki);
        ck_assert_int_gt(n, 0);
        out->public_key[i] = spki_to_key((sks_view){spki, (size_t)n});
        tl_set_certificate(c, is, id, out->key[i], (sks_view){spki, (size_t)n}, &der);
        OPENSSL_free(spki);
    } else {
        out->public_key[i] = spki_to_key(resp.public_key);
        if (ks.private_key_backup) {
            out->private_key[i] = sks_issuer_decrypt_backup(is, resp.encrypted_private_key);
            ck_assert_msg(out->private_key[i] != NULL, "%s", sks_issuer_error(is));
        }
        tl_set_certificate(c, is, id, out->key[i], resp.public_key, &der);
    }
    out->cert[i] = der_to_cert(&der);
    sks_writer_free(&ans);
    sks_writer_free(&der);
}

/* createPUKPolicy and createPINPolicy as the spec asks. */
static void provision_policies(tl_card *c, sks_issuer_session *is, const tl_key_spec *spec,
                               tl_key *out)
{
    if (spec->puk != NULL)
        out->puk_policy =
            tl_create_puk_policy(c, is, "puk", spec->puk, spec->puk_format, spec->puk_retry_limit);
    if (spec->pin != NULL) {
        sks_issuer_pin_policy p;
        memset(&p, 0, sizeof p);
        p.id = "pin";
        p.puk_id = spec->puk != NULL ? "puk" : NULL;
        p.user_defined = spec->pin_user_defined;
        p.user_modifiable = spec->user_modifiable;
        p.format = spec->pin_format;
        p.retry_limit = spec->pin_retry_limit != 0 ? spec->pin_retry_limit : 3;
        p.grouping = SKS_GROUPING_SHARED;
        p.min_length = spec->pin_min_length != 0 ? spec->pin_min_length : 4;
        p.max_length = spec->pin_max_length != 0 ? spec->pin_max_length : 16;
        p.caching_support = !spec->pin_no_caching;
        out->pin_policy = tl_create_pin_policy(c, is, &p, out->puk_policy);
    }
}

void tl_provision_key(tl_card *c, const tl_key_spec *spec, tl_key *out)
{
    memset(out, 0, sizeof *out);
    ck_assert_msg(spec->puk == NULL || spec->pin != NULL, "a PUK needs a PIN policy");
    size_t count = spec->key_count != 0 ? spec->key_count : 1;
    ck_assert(count <= TL_MAX_KEYS);
    uint8_t alg = spec->session_key_alg != 0 ? spec->session_key_alg : SKS_SKALG_ECDH_P256;
    sks_issuer_session *is =
        tl_open_session(c, alg, (spec->flags & SKS_KEYFLAG_UPDATABLE) != 0, 0, 0);
    out->session = sks_issuer_provisioning_handle(is);

    provision_policies(c, is, spec, out);
    for (size_t i = 0; i < count; i++)
        provision_one(c, is, spec, i, out);
    out->nkeys = count;

    TL_OK(c, tl_close_session(c, is));
    sks_issuer_session_free(is);
}

void tl_key_free(tl_key *k)
{
    for (size_t i = 0; i < TL_MAX_KEYS; i++) {
        EVP_PKEY_free(k->public_key[i]);
        EVP_PKEY_free(k->private_key[i]);
        X509_free(k->cert[i]);
    }
    memset(k, 0, sizeof *k);
}
