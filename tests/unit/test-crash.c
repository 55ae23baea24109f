/*
 * test-crash.c - atomicity of every state-changing method under a crash at
 * every write.
 *
 * For each method, the card state just before the call is copied; then, for
 * k = 1, 2, ... a child process opens a fresh copy, arms the store's fault
 * injection to die before its k-th write (card_store_set_crash_after) and
 * runs the call. After each crash the parent reopens the copy (SQLite rolls
 * back the hot journal) and checks that it holds exactly the old state,
 * except that a PIN or PUK retry counter may have gone down by one (never
 * up: a crash never gives a free guess), and that the change counter moved
 * only with such committed counter transactions. The loop ends when the
 * call runs to completion without reaching a k-th write.
 */
#include <check.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "card/card_internal.h"
#include "inject-issuer.h"
#include "protocol/sks_crypto.h"
#include "testlib.h"

/* ---- the state of a card directory, as a digest ---------------------- */

/* The card's database in `dir`, opened directly (not through the store). */
static sqlite3 *db_open(const char *dir)
{
    char path[512];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/card.db", dir);
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

/*
 * Digest of every row of every table; `skip` names a column to leave out.
 * The change counter (meta "change_counter") is left out too: it is checked
 * on its own (db_change_counter).
 */
static void db_fingerprint(const char *dir, const char *skip, uint8_t out[32])
{
    sqlite3 *db = db_open(dir);
    sqlite3_stmt *tables = NULL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned len = 0;

    ck_assert_int_eq(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT name FROM sqlite_master WHERE type='table' "
                                        "ORDER BY name",
                                        -1, &tables, NULL),
                     SQLITE_OK);
    while (sqlite3_step(tables) == SQLITE_ROW) {
        char sql[256];
        sqlite3_stmt *rows = NULL;
        const char *table = (const char *)sqlite3_column_text(tables, 0);
        snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\"%s ORDER BY 1", table,
                 strcmp(table, "meta") == 0 ? " WHERE name != 'change_counter'" : "");
        EVP_DigestUpdate(md, table, strlen(table) + 1);
        ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &rows, NULL), SQLITE_OK);
        while (sqlite3_step(rows) == SQLITE_ROW) {
            for (int i = 0; i < sqlite3_column_count(rows); i++) {
                if (skip && strcmp(sqlite3_column_name(rows, i), skip) == 0)
                    continue;
                int type = sqlite3_column_type(rows, i);
                const void *p = sqlite3_column_blob(rows, i);
                int n = sqlite3_column_bytes(rows, i);
                EVP_DigestUpdate(md, &type, sizeof(type));
                EVP_DigestUpdate(md, &n, sizeof(n));
                if (n > 0)
                    EVP_DigestUpdate(md, p, (size_t)n);
            }
        }
        sqlite3_finalize(rows);
    }
    sqlite3_finalize(tables);
    sqlite3_close(db);
    ck_assert_int_eq(EVP_DigestFinal_ex(md, out, &len), 1);
    EVP_MD_CTX_free(md);
}

/* The sum of all retry counters, PIN and PUK (a crash may only lower it). */
static long db_tries_total(const char *dir)
{
    sqlite3 *db = db_open(dir);
    sqlite3_stmt *st = NULL;
    long total = 0;
    ck_assert_int_eq(sqlite3_prepare_v2(db,
                                        "SELECT (SELECT IFNULL(SUM(tries_left),0) FROM "
                                        "pin_policies) + (SELECT IFNULL(SUM(tries_left),0) FROM "
                                        "puk_policies)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    total = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return total;
}

/* The card's change counter (meta "change_counter", 4 bytes big-endian; 0 if absent). */
static long db_change_counter(const char *dir)
{
    sqlite3 *db = db_open(dir);
    sqlite3_stmt *st = NULL;
    long counter = 0;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = 'change_counter'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const uint8_t *p = sqlite3_column_blob(st, 0);
        ck_assert_int_eq(sqlite3_column_bytes(st, 0), 4);
        counter = (long)sks_be32_get(p);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return counter;
}

/* Replace directory `to` by a copy of `from` (NULL: just remove `to`). */
static void copy_dir(const char *from, const char *to)
{
    char cmd[1200];
    if (from)
        snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    else
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", to);
    ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

/* ---- the crash loop --------------------------------------------------- */

/*
 * A step runs one method call on `work` (a card opened on a copy of the
 * state) in a child process. It must arm the crash with crash_arm() right
 * before the call under test, after any preparation such as verifyPIN.
 */
typedef int (*crash_step)(tl_card *work, void *ctx);

static long crash_at;
static void crash_arm(tl_card *w)
{
    card_store_set_crash_after(w->card->store, crash_at);
}

typedef struct {
    const char *name;
    int expect_status; /* status of the call when it runs to completion */
    int counter_rule;  /* a PIN/PUK counter may drop by one after a crash */
} crash_case;

static int crash_children_exit(pid_t pid)
{
    int ws = 0;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert_msg(WIFEXITED(ws), "child died of signal %d", WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    return WEXITSTATUS(ws);
}

/*
 * After a crash: the copy opens, answers, and holds the old state. The
 * change counter has not moved, except for the counter transactions of the
 * PIN methods, which commit on their own (a decrement and its restore: at
 * most two before the method's main change).
 */
static void crash_check_state(const crash_case *cc, const char *work, const uint8_t old_fp[32],
                              long old_tries, long old_changes, long k)
{
    uint8_t fp[32];
    char err[256];
    db_fingerprint(work, "tries_left", fp);
    ck_assert_msg(memcmp(fp, old_fp, 32) == 0, "%s: crash at write %ld left a changed state",
                  cc->name, k);
    long tries = db_tries_total(work);
    if (cc->counter_rule)
        ck_assert_msg(tries == old_tries || tries == old_tries - 1,
                      "%s: crash at write %ld: retry counters %ld -> %ld", cc->name, k, old_tries,
                      tries);
    else
        ck_assert_msg(tries == old_tries, "%s: crash at write %ld changed a counter", cc->name, k);
    long changes = db_change_counter(work);
    if (cc->counter_rule)
        ck_assert_msg(changes >= old_changes + (tries != old_tries) && changes <= old_changes + 2,
                      "%s: crash at write %ld: change counter %ld -> %ld", cc->name, k, old_changes,
                      changes);
    else
        ck_assert_msg(changes == old_changes, "%s: crash at write %ld moved the change counter",
                      cc->name, k);
    sks_card *card = sks_card_open(work, err, sizeof(err));
    ck_assert_msg(card != NULL, "%s: card does not open after crash at %ld: %s", cc->name, k, err);
    sks_writer answer;
    const uint8_t info[] = {SKS_M_GET_DEVICE_INFO};
    sks_writer_init(&answer);
    sks_card_call(card, info, sizeof(info), &answer);
    ck_assert_uint_ge(answer.len, 1);
    ck_assert_uint_eq(answer.buf[0], SKS_OK);
    sks_writer_free(&answer);
    sks_card_close(card);
}

/*
 * Run `step` in a child process on the card copy in `work`, the crash armed
 * at write k: the child's exit code (0: the call answered cc->expect_status,
 * CARD_STORE_CRASH_EXIT: it died at write k).
 */
static int crash_child(const tl_card *c, const char *work, long k, const crash_case *cc,
                       crash_step step, void *ctx)
{
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char err[256];
        tl_card w = *c;
        if (strlen(work) >= sizeof(w.dir))
            _exit(5);
        memcpy(w.dir, work, strlen(work) + 1);
        sks_writer_init(&w.answer);
        w.card = sks_card_open(work, err, sizeof(err));
        if (w.card == NULL)
            _exit(4);
        crash_at = k;
        int status = step(&w, ctx);
        _exit(status == cc->expect_status ? 0 : 3);
    }
    return crash_children_exit(pid);
}

static void crash_every_write(tl_card *c, const crash_case *cc, crash_step step, void *ctx)
{
    char tmpl[300], work[300];
    uint8_t old_fp[32];
    long crashes = 0, k;

    sks_card_close(c->card);
    c->card = NULL;
    snprintf(tmpl, sizeof(tmpl), "%s.tmpl", c->dir);
    snprintf(work, sizeof(work), "%s.work", c->dir);
    copy_dir(c->dir, tmpl);
    db_fingerprint(tmpl, "tries_left", old_fp);
    long old_tries = db_tries_total(tmpl);
    long old_changes = db_change_counter(tmpl);

    for (k = 1; k < 500; k++) {
        copy_dir(tmpl, work);
        int code = crash_child(c, work, k, cc, step, ctx);
        if (code == CARD_STORE_CRASH_EXIT) {
            crashes++;
            crash_check_state(cc, work, old_fp, old_tries, old_changes, k);
            continue;
        }
        ck_assert_msg(code == 0, "%s: the call itself failed (child exit %d) at k=%ld", cc->name,
                      code, k);
        break;
    }
    ck_assert_msg(crashes > 0, "%s: no write point was reached", cc->name);
    ck_assert_msg(k < 500, "%s: never completed", cc->name);
    copy_dir(NULL, tmpl);
    copy_dir(NULL, work);

    char err[256];
    c->card = sks_card_open(c->dir, err, sizeof(err));
    ck_assert_msg(c->card != NULL, "%s", err);
}

/* ---- steps ------------------------------------------------------------ */

typedef struct {
    sks_issuer_session *s;
    uint32_t puk, pin, key, key2, object;
    EVP_PKEY *imported;
    sks_writer cert_der, cert2_der;
} flow;

static int step_create_session(tl_card *w, void *ctx)
{
    sks_req_create_session req;
    sks_resp_create_session resp;
    sks_issuer_session *s =
        sks_issuer_session_new(SKS_SKALG_ECDH_P256, "https://issuer.test", NULL);
    (void)ctx;
    if (s == NULL || sks_issuer_request(s, 0, 0, 3600, &req) != 0)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_CREATE_PROVISIONING_SESSION, &req, &resp, NULL);
}

static int step_puk(tl_card *w, void *ctx)
{
    flow *f = ctx;
    sks_issuer_msg m;
    sks_req_create_puk_policy req;
    sks_resp_create_puk_policy resp;
    sks_view puk = {(const uint8_t *)"12345678", 8};
    sks_issuer_msg_init(&m);
    if (sks_issuer_prepare_puk_policy(f->s, "puk", puk, SKS_PIN_NUMERIC, 5, &m, &req) != 0)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_CREATE_PUK_POLICY, &req, &resp, NULL);
}

static const sks_issuer_pin_policy pin_policy = {
    .id = "pin",
    .puk_id = "puk",
    .user_defined = 1,
    .user_modifiable = 1,
    .format = SKS_PIN_NUMERIC,
    .retry_limit = 3,
    .min_length = 4,
    .max_length = 8,
};

static int step_pin(tl_card *w, void *ctx)
{
    flow *f = ctx;
    sks_issuer_msg m;
    sks_req_create_pin_policy req;
    sks_resp_create_pin_policy resp;
    sks_issuer_msg_init(&m);
    if (sks_issuer_prepare_pin_policy(f->s, &pin_policy, f->puk, &m, &req) != 0)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_CREATE_PIN_POLICY, &req, &resp, NULL);
}

static sks_issuer_key_spec key_spec(const char *id, uint8_t import)
{
    sks_issuer_key_spec k;
    memset(&k, 0, sizeof(k));
    k.id = id;
    k.pin_policy_id = "pin";
    k.pin.ptr = (const uint8_t *)"1234";
    k.pin.len = 4;
    k.import_private_key = import;
    k.key_usage = SKS_USAGE_SIGN;
    k.friendly_name = id;
    k.algorithm = SKS_KEYALG_EC_P256;
    return k;
}

static int step_key_pair(tl_card *w, void *ctx)
{
    flow *f = ctx;
    sks_issuer_msg m;
    sks_req_create_key_pair req;
    sks_resp_create_key_pair resp;
    sks_issuer_key_spec k = key_spec("key1", 0);
    sks_issuer_msg_init(&m);
    if (sks_issuer_prepare_key_pair(f->s, &k, f->pin, &m, &req) != 0)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_CREATE_KEY_PAIR, &req, &resp, NULL);
}

static int step_cert_path(tl_card *w, void *ctx)
{
    flow *f = ctx;
    sks_issuer_msg m;
    sks_req_set_certificate_path req;
    sks_view cert = {f->cert_der.buf, f->cert_der.len};
    sks_issuer_msg_init(&m);
    if (sks_issuer_prepare_certificate_path(f->s, "key1", f->key, &cert, 1, &m, &req) != 0)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_SET_CERTIFICATE_PATH, &req, NULL, NULL);
}

static int step_import(tl_card *w, void *ctx)
{
    flow *f = ctx;
    sks_issuer_msg m;
    sks_req_put_private_key req;
    sks_issuer_msg_init(&m);
    if (sks_issuer_prepare_put_pkey(f->s, SKS_M_IMPORT_PRIVATE_KEY, "key2", f->key2, f->imported,
                                    &m, &req) != 0)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_IMPORT_PRIVATE_KEY, &req, NULL, NULL);
}

/* closeProvisioningSession of the flow's session, its MAC spoiled when `bad_mac`. */
static int close_session(tl_card *w, flow *f, int bad_mac)
{
    sks_issuer_msg m;
    sks_req_close_session req;
    sks_resp_close_session resp;
    sks_issuer_msg_init(&m);
    if (sks_issuer_prepare_close(f->s, &m, &req) != 0)
        return -1;
    if (bad_mac)
        m.mac[0] ^= 1;
    crash_arm(w);
    return tl_call(w, SKS_M_CLOSE_PROVISIONING_SESSION, &req, &resp, NULL);
}

/* A close whose MAC is wrong: the card rejects it and removes the session. */
static int step_bad_close(tl_card *w, void *ctx)
{
    return close_session(w, ctx, 1);
}

static int step_close(tl_card *w, void *ctx)
{
    return close_session(w, ctx, 0);
}

static int step_abort(tl_card *w, void *ctx)
{
    flow *f = ctx;
    sks_req_abort_session req = {sks_issuer_provisioning_handle(f->s)};
    crash_arm(w);
    return tl_call(w, SKS_M_ABORT_PROVISIONING_SESSION, &req, NULL, NULL);
}

static int step_verify_right(tl_card *w, void *ctx)
{
    crash_arm(w);
    return tl_verify_pin(w, ((flow *)ctx)->pin, "1234");
}

static int step_verify_wrong(tl_card *w, void *ctx)
{
    crash_arm(w);
    return tl_verify_pin(w, ((flow *)ctx)->pin, "9999");
}

static int step_change_pin(tl_card *w, void *ctx)
{
    sks_req_change_pin req = {
        ((flow *)ctx)->pin, {(const uint8_t *)"1234", 4}, {(const uint8_t *)"4321", 4}};
    crash_arm(w);
    return tl_call(w, SKS_M_CHANGE_PIN, &req, NULL, NULL);
}

static int step_unlock_pin(tl_card *w, void *ctx)
{
    sks_req_unlock_pin req = {
        ((flow *)ctx)->pin, {(const uint8_t *)"12345678", 8}, {(const uint8_t *)"5678", 4}};
    crash_arm(w);
    return tl_call(w, SKS_M_UNLOCK_PIN, &req, NULL, NULL);
}

static int step_delete_key(tl_card *w, void *ctx)
{
    flow *f = ctx;
    sks_req_delete_key req = {f->key, {NULL, 0}};
    if (tl_verify_pin(w, f->pin, "1234") != SKS_OK)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_DELETE_KEY, &req, NULL, NULL);
}

static int step_verify_puk(tl_card *w, void *ctx)
{
    sks_req_verify_puk req = {((flow *)ctx)->pin, {(const uint8_t *)"12345678", 8}};
    crash_arm(w);
    return tl_call(w, SKS_M_VERIFY_PUK, &req, NULL, NULL);
}

static int step_verify_puk_wrong(tl_card *w, void *ctx)
{
    sks_req_verify_puk req = {((flow *)ctx)->pin, {(const uint8_t *)"00000000", 8}};
    crash_arm(w);
    return tl_call(w, SKS_M_VERIFY_PUK, &req, NULL, NULL);
}

/* resetPINPolicy: PUK counter transactions, then keys, objects and policy in one. */
static int step_reset_policy(tl_card *w, void *ctx)
{
    sks_req_reset_pin_policy req = {
        ((flow *)ctx)->pin, {(const uint8_t *)"12345678", 8}, {(const uint8_t *)"fresh", 5}};
    crash_arm(w);
    return tl_call(w, SKS_M_RESET_PIN_POLICY, &req, NULL, NULL);
}

/* Objects of the no-PIN token and a key without PIN: no verifyPIN before the call. */
static int step_create_object(tl_card *w, void *ctx)
{
    sks_req_create_object req = {0, SKS_OBJECT_CERTIFICATE, 0, {(const uint8_t *)"cert", 4}};
    sks_resp_create_object resp;
    (void)ctx;
    crash_arm(w);
    return tl_call(w, SKS_M_CREATE_OBJECT, &req, &resp, NULL);
}

static int step_update_object(tl_card *w, void *ctx)
{
    sks_req_update_object req = {((flow *)ctx)->object, {(const uint8_t *)"updated", 7}};
    crash_arm(w);
    return tl_call(w, SKS_M_UPDATE_OBJECT, &req, NULL, NULL);
}

static int step_delete_object(tl_card *w, void *ctx)
{
    sks_req_object_handle req = {((flow *)ctx)->object};
    crash_arm(w);
    return tl_call(w, SKS_M_DELETE_OBJECT, &req, NULL, NULL);
}

static int step_set_key_attributes(tl_card *w, void *ctx)
{
    sks_req_set_key_attributes req = {
        ((flow *)ctx)->key2, {(const uint8_t *)"renamed", 7}, {(const uint8_t *)"label", 5}};
    crash_arm(w);
    return tl_call(w, SKS_M_SET_KEY_ATTRIBUTES, &req, NULL, NULL);
}

/* ---- the scenario ----------------------------------------------------- */

static const crash_case c_session = {"createProvisioningSession", SKS_OK, 0};
static const crash_case c_puk = {"createPUKPolicy", SKS_OK, 0};
static const crash_case c_pin = {"createPINPolicy", SKS_OK, 0};
static const crash_case c_key = {"createKeyPair", SKS_OK, 0};
static const crash_case c_cert = {"setCertificatePath", SKS_OK, 0};
static const crash_case c_import = {"importPrivateKey", SKS_OK, 0};
static const crash_case c_bad_close = {"closeProvisioningSession with a bad MAC", SKS_ERR_MAC, 0};
static const crash_case c_close = {"closeProvisioningSession", SKS_OK, 0};
static const crash_case c_abort = {"abortProvisioningSession", SKS_OK, 0};
static const crash_case c_verify_ok = {"verifyPIN (right PIN)", SKS_OK, 1};
static const crash_case c_verify_bad = {"verifyPIN (wrong PIN)", SKS_ERR_AUTHENTICATION, 1};
static const crash_case c_change = {"changePIN", SKS_OK, 1};
static const crash_case c_unlock = {"unlockPIN", SKS_OK, 1};
static const crash_case c_delete = {"deleteKey", SKS_OK, 1};
static const crash_case c_verify_puk = {"verifyPUK (right PUK)", SKS_OK, 1};
static const crash_case c_verify_puk_bad = {"verifyPUK (wrong PUK)", SKS_ERR_AUTHENTICATION, 1};
static const crash_case c_reset_policy = {"resetPINPolicy", SKS_OK, 1};
static const crash_case c_create_object = {"createObject", SKS_OK, 0};
static const crash_case c_update_object = {"updateObject", SKS_OK, 0};
static const crash_case c_delete_object = {"deleteObject", SKS_OK, 0};
static const crash_case c_set_key_attributes = {"setKeyAttributes", SKS_OK, 0};

/* Run `step` for real on the parent's card (the issuer's state moves on). */
static void do_step(tl_card *c, crash_step step, void *ctx, int expect)
{
    crash_at = 0;
    int st = step(c, ctx);
    ck_assert_msg(st == expect, "card said %s: %s", sks_status_name((uint8_t)st), c->error);
}

/* Crash-test `step` at every write, then run it to completion on the parent's card. */
static void crash_then_do(tl_card *c, const crash_case *cc, crash_step step, void *ctx)
{
    crash_every_write(c, cc, step, ctx);
    do_step(c, step, ctx, SKS_OK);
}

/* Open a session and create the PUK and PIN policies (each crash-tested). */
static void provision_policies(tl_card *c, flow *f)
{
    sks_issuer_msg m;
    sks_req_create_puk_policy puk_req;
    sks_resp_create_puk_policy puk_resp;
    sks_req_create_pin_policy pin_req;
    sks_resp_create_pin_policy pin_resp;
    sks_view puk = {(const uint8_t *)"12345678", 8};

    crash_every_write(c, &c_session, step_create_session, f);
    f->s = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 3600);

    crash_every_write(c, &c_puk, step_puk, f);
    sks_issuer_msg_init(&m);
    ck_assert_int_eq(
        sks_issuer_prepare_puk_policy(f->s, "puk", puk, SKS_PIN_NUMERIC, 5, &m, &puk_req), 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_PUK_POLICY, &puk_req, &puk_resp, NULL));
    f->puk = puk_resp.puk_policy_handle;
    sks_issuer_msg_free(&m);

    crash_every_write(c, &c_pin, step_pin, f);
    sks_issuer_msg_init(&m);
    ck_assert_int_eq(sks_issuer_prepare_pin_policy(f->s, &pin_policy, f->puk, &m, &pin_req), 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_PIN_POLICY, &pin_req, &pin_resp, NULL));
    f->pin = pin_resp.pin_policy_handle;
    sks_issuer_msg_free(&m);
}

/* Create key1 (generated) and key2 (imported), each crash-tested. */
static void provision_keys(tl_card *c, flow *f)
{
    sks_issuer_msg m;
    sks_req_create_key_pair req;
    sks_resp_create_key_pair resp;
    sks_writer answer;
    sks_issuer_key_spec k1 = key_spec("key1", 0), k2 = key_spec("key2", 1);

    crash_every_write(c, &c_key, step_key_pair, f);
    sks_writer_init(&answer);
    sks_issuer_msg_init(&m);
    ck_assert_int_eq(sks_issuer_prepare_key_pair(f->s, &k1, f->pin, &m, &req), 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_KEY_PAIR, &req, &resp, &answer));
    ck_assert_int_eq(sks_issuer_verify_key_attestation(f->s, &m, &resp), 0);
    f->key = resp.key_handle;
    sks_writer_init(&f->cert_der);
    tl_issue_cert_der(resp.public_key, &f->cert_der);
    sks_issuer_msg_free(&m);
    sks_writer_free(&answer);

    crash_then_do(c, &c_cert, step_cert_path, f);

    sks_writer_init(&answer);
    sks_issuer_msg_init(&m);
    ck_assert_int_eq(sks_issuer_prepare_key_pair(f->s, &k2, f->pin, &m, &req), 0);
    TL_OK(c, tl_call(c, SKS_M_CREATE_KEY_PAIR, &req, &resp, &answer));
    ck_assert_int_eq(sks_issuer_verify_key_attestation(f->s, &m, &resp), 0);
    f->key2 = resp.key_handle;
    sks_issuer_msg_free(&m);
    sks_writer_free(&answer);

    f->imported = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(f->imported);
    crash_then_do(c, &c_import, step_import, f);

    /* key2's certificate: for the imported key's public key. */
    uint8_t *spki = NULL;
    int spki_len = i2d_PUBKEY(f->imported, &spki);
    ck_assert_int_gt(spki_len, 0);
    sks_view spki_view = {spki, (size_t)spki_len};
    sks_writer_init(&f->cert2_der);
    tl_issue_cert_der(spki_view, &f->cert2_der);
    OPENSSL_free(spki);
    sks_issuer_msg_init(&m);
    sks_req_set_certificate_path cp;
    sks_view cert2 = {f->cert2_der.buf, f->cert2_der.len};
    ck_assert_int_eq(sks_issuer_prepare_certificate_path(f->s, "key2", f->key2, &cert2, 1, &m, &cp),
                     0);
    TL_OK(c, tl_call(c, SKS_M_SET_CERTIFICATE_PATH, &cp, NULL, NULL));
    sks_issuer_msg_free(&m);
}

static void flow_free(flow *f)
{
    sks_issuer_session_free(f->s);
    EVP_PKEY_free(f->imported);
    sks_writer_free(&f->cert_der);
    sks_writer_free(&f->cert2_der);
}

START_TEST(provisioning_is_atomic)
{
    tl_card *c = tl_card_new();
    flow f;
    memset(&f, 0, sizeof(f));
    provision_policies(c, &f);
    provision_keys(c, &f);
    crash_every_write(c, &c_bad_close, step_bad_close, &f);
    crash_every_write(c, &c_close, step_close, &f);
    TL_OK(c, tl_close_session(c, f.s));
    flow_free(&f);
    tl_card_free(c);
}
END_TEST

START_TEST(abort_is_atomic)
{
    tl_card *c = tl_card_new();
    flow f;
    memset(&f, 0, sizeof(f));
    provision_policies(c, &f);
    crash_every_write(c, &c_abort, step_abort, &f);
    flow_free(&f);
    tl_card_free(c);
}
END_TEST

/* PIN methods: counters go down before the compare and never come back by a crash. */
START_TEST(pin_methods_are_atomic)
{
    tl_card *c = tl_card_new();
    tl_key_spec spec;
    tl_key key;
    flow f;
    memset(&spec, 0, sizeof(spec));
    memset(&f, 0, sizeof(f));
    spec.pin = "1234";
    spec.puk = "12345678";
    spec.puk_retry_limit = 5;
    spec.user_modifiable = 1;
    tl_provision_key(c, &spec, &key);
    f.pin = key.pin_policy;
    f.key = key.key[0];

    crash_every_write(c, &c_verify_ok, step_verify_right, &f);
    crash_every_write(c, &c_verify_bad, step_verify_wrong, &f);
    crash_every_write(c, &c_change, step_change_pin, &f);
    crash_every_write(c, &c_unlock, step_unlock_pin, &f);
    crash_every_write(c, &c_verify_puk, step_verify_puk, &f);
    crash_every_write(c, &c_verify_puk_bad, step_verify_puk_wrong, &f);
    crash_every_write(c, &c_delete, step_delete_key, &f);
    crash_every_write(c, &c_reset_policy, step_reset_policy, &f);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* The Key User API's other writes: stored objects and setKeyAttributes. */
START_TEST(object_methods_are_atomic)
{
    tl_card *c = tl_card_new();
    tl_key_spec spec;
    tl_key key;
    flow f;
    memset(&spec, 0, sizeof(spec));
    memset(&f, 0, sizeof(f));
    tl_provision_key(c, &spec, &key);
    f.key2 = key.key[0];

    crash_every_write(c, &c_create_object, step_create_object, &f);
    sks_req_create_object req = {0, SKS_OBJECT_DATA, 0, {(const uint8_t *)"data", 4}};
    sks_resp_create_object resp;
    TL_OK(c, tl_call(c, SKS_M_CREATE_OBJECT, &req, &resp, NULL));
    f.object = resp.object_handle;
    crash_every_write(c, &c_update_object, step_update_object, &f);
    crash_every_write(c, &c_delete_object, step_delete_object, &f);
    crash_every_write(c, &c_set_key_attributes, step_set_key_attributes, &f);

    /* The parent's card is unchanged by the crashed children. */
    sks_req_object_handle oh = {f.object};
    sks_resp_read_object ro;
    TL_OK(c, tl_call(c, SKS_M_READ_OBJECT, &oh, &ro, NULL));
    ck_assert_uint_eq(ro.attributes.len, 4);
    ck_assert_mem_eq(ro.attributes.ptr, "data", 4);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- DKEK methods: initializeDKEK, importDKEKShare, unwrapKey --------- */

/*
 * A call the card refuses before its first write: in a child on a copy of
 * the card, with the crash armed at write 1 (after the step's preparation),
 * it answers cc->expect_status instead of dying, and the copy keeps the
 * state (retry counters aside, which a verifyPIN before the call may touch).
 */
static void refused_before_any_write(tl_card *c, const crash_case *cc, crash_step step, void *ctx)
{
    char work[300], err[256];
    uint8_t old_fp[32], fp[32];
    sks_card_close(c->card);
    c->card = NULL;
    snprintf(work, sizeof(work), "%s.work", c->dir);
    copy_dir(c->dir, work);
    db_fingerprint(work, "tries_left", old_fp);
    int code = crash_child(c, work, 1, cc, step, ctx);
    ck_assert_msg(code != CARD_STORE_CRASH_EXIT, "%s: the refused call wrote", cc->name);
    ck_assert_msg(code == 0, "%s: not the expected status (child exit %d)", cc->name, code);
    db_fingerprint(work, "tries_left", fp);
    ck_assert_msg(memcmp(fp, old_fp, 32) == 0, "%s: the refused call changed the state", cc->name);
    copy_dir(NULL, work);
    c->card = sks_card_open(c->dir, err, sizeof(err));
    ck_assert_msg(c->card != NULL, "%s", err);
}

typedef struct {
    uint8_t share[32];
    sks_writer blob;     /* a key without PIN */
    sks_writer pin_blob; /* a key with a PIN, of PIN policy `pin` */
    uint32_t pin;
} dkek_flow;

static int step_initialize_dkek(tl_card *w, void *ctx)
{
    sks_req_initialize_dkek req = {2};
    (void)ctx;
    crash_arm(w);
    return tl_call(w, SKS_M_INITIALIZE_DKEK, &req, NULL, NULL);
}

static int step_import_dkek_share(tl_card *w, void *ctx)
{
    sks_req_import_dkek_share req = {{((dkek_flow *)ctx)->share, 32}};
    sks_resp_dkek_status resp;
    crash_arm(w);
    return tl_call(w, SKS_M_IMPORT_DKEK_SHARE, &req, &resp, NULL);
}

static int step_unwrap_key(tl_card *w, void *ctx)
{
    dkek_flow *f = ctx;
    sks_req_unwrap_key req = {SKS_HANDLE_NONE, {f->blob.buf, f->blob.len}};
    sks_resp_unwrap_key resp;
    crash_arm(w);
    return tl_call(w, SKS_M_UNWRAP_KEY, &req, &resp, NULL);
}

/* The backup of the key with a PIN, under its PIN policy, the PIN verified first. */
static int step_unwrap_pin_key(tl_card *w, void *ctx)
{
    dkek_flow *f = ctx;
    sks_req_unwrap_key req = {f->pin, {f->pin_blob.buf, f->pin_blob.len}};
    sks_resp_unwrap_key resp;
    if (tl_verify_pin(w, f->pin, "1234") != SKS_OK)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_UNWRAP_KEY, &req, &resp, NULL);
}

/* The same backup under no PIN policy (the PIN verified all the same): refused. */
static int step_unwrap_pin_key_without_pin(tl_card *w, void *ctx)
{
    dkek_flow *f = ctx;
    sks_req_unwrap_key req = {SKS_HANDLE_NONE, {f->pin_blob.buf, f->pin_blob.len}};
    sks_resp_unwrap_key resp;
    if (tl_verify_pin(w, f->pin, "1234") != SKS_OK)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_UNWRAP_KEY, &req, &resp, NULL);
}

static const crash_case c_initialize_dkek = {"initializeDKEK", SKS_OK, 0};
static const crash_case c_import_share = {"importDKEKShare", SKS_OK, 0};
static const crash_case c_import_last_share = {"importDKEKShare (the last share)", SKS_OK, 0};
static const crash_case c_unwrap_key = {"unwrapKey", SKS_OK, 0};
static const crash_case c_unwrap_pin_key = {"unwrapKey (a key with a PIN, PIN verified)", SKS_OK,
                                            1};
static const crash_case c_unwrap_pin_key_without_pin = {
    "unwrapKey (a key with a PIN, under no PIN policy)", SKS_ERR_NOT_AUTHENTICATED, 1};

START_TEST(dkek_methods_are_atomic)
{
    tl_card *c = tl_card_new();
    tl_key_spec spec;
    tl_key key;
    dkek_flow f;
    memset(&spec, 0, sizeof(spec));
    memset(&f, 0, sizeof(f));
    sks_writer_init(&f.blob);
    sks_writer_init(&f.pin_blob);

    crash_then_do(c, &c_initialize_dkek, step_initialize_dkek, &f);
    memset(f.share, 0x3C, sizeof(f.share));
    crash_then_do(c, &c_import_share, step_import_dkek_share, &f);
    memset(f.share, 0xA5, sizeof(f.share));
    crash_then_do(c, &c_import_last_share, step_import_dkek_share, &f);

    /* A key without PIN that allows backup: wrap it, delete it, restore it. */
    spec.flags = SKS_KEYFLAG_MIGRATABLE;
    tl_provision_key(c, &spec, &key);
    sks_req_wrap_key wreq = {key.key[0]};
    sks_resp_wrap_key wresp;
    TL_OK(c, tl_call(c, SKS_M_WRAP_KEY, &wreq, &wresp, NULL));
    sks_put_raw(&f.blob, wresp.blob.ptr, wresp.blob.len);
    sks_req_delete_key del = {key.key[0], {NULL, 0}};
    TL_OK(c, tl_call(c, SKS_M_DELETE_KEY, &del, NULL, NULL));
    crash_then_do(c, &c_unwrap_key, step_unwrap_key, &f);

    /*
     * A key with a PIN that allows backup: wrapped, deleted, refused under
     * no PIN policy before any write, restored under its PIN policy.
     */
    sks_issuer_pin_policy pp = pin_policy;
    pp.puk_id = NULL;
    sks_issuer_session *is = tl_open_session(c, SKS_SKALG_ECDH_P256, 0, 0, 3600);
    f.pin = tl_create_pin_policy(c, is, &pp, 0);
    sks_issuer_key_spec ks = key_spec("pin-key", 0);
    ks.migratable = 1;
    uint32_t pin_key = tl_make_key(c, is, &ks, f.pin, NULL);
    TL_OK(c, tl_close_session(c, is));
    sks_issuer_session_free(is);
    ck_assert_int_eq(tl_verify_pin(c, f.pin, "1234"), SKS_OK);
    wreq.key_handle = pin_key;
    TL_OK(c, tl_call(c, SKS_M_WRAP_KEY, &wreq, &wresp, NULL));
    sks_put_raw(&f.pin_blob, wresp.blob.ptr, wresp.blob.len);
    del.key_handle = pin_key;
    TL_OK(c, tl_call(c, SKS_M_DELETE_KEY, &del, NULL, NULL));
    refused_before_any_write(c, &c_unwrap_pin_key_without_pin, step_unwrap_pin_key_without_pin, &f);
    crash_then_do(c, &c_unwrap_pin_key, step_unwrap_pin_key, &f);

    sks_writer_free(&f.pin_blob);
    sks_writer_free(&f.blob);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- secure key injection: injectPrivateKey ---------------------------- */

/*
 * The child imports S1 again from the same ECDH point (S1 lives in RAM and
 * the child's card is freshly opened), then the injection runs under the
 * crash: its key row and handle counter must appear together or not at all.
 */
typedef struct {
    uint32_t k1;
    uint8_t point[TI_POINT_LEN];
    uint8_t iv[TI_IV_LEN];
    sks_writer blob;
    sks_writer cert;
} inject_flow;

static int step_inject(tl_card *w, void *ctx)
{
    inject_flow *f = ctx;
    sks_req_import_session_key imp = {f->k1, SKS_SKIMPORT_ECDH_P256, {f->point, TI_POINT_LEN}};
    sks_resp_import_session_key s1;
    if (tl_call(w, SKS_M_IMPORT_SESSION_KEY, &imp, &s1, NULL) != SKS_OK)
        return -1;
    sks_req_inject_private_key req;
    sks_resp_inject_private_key resp;
    memset(&req, 0, sizeof(req));
    req.session_key_handle = s1.session_key_handle;
    req.iv = (sks_view){f->iv, TI_IV_LEN};
    req.encrypted_private_key = (sks_view){f->blob.buf, f->blob.len};
    req.id = (sks_view){(const uint8_t *)"injected", 8};
    req.key_usage = SKS_USAGE_SIGN;
    req.certificate_path.count = 1;
    req.certificate_path.cert[0] = (sks_view){f->cert.buf, f->cert.len};
    crash_arm(w);
    return tl_call(w, SKS_M_INJECT_PRIVATE_KEY, &req, &resp, NULL);
}

static const crash_case c_inject = {"injectPrivateKey", SKS_OK, 0};

START_TEST(injection_is_atomic)
{
    tl_card *c = tl_card_new();
    tl_key_spec spec;
    tl_key key;
    inject_flow f;
    uint8_t s1[TI_S1_LEN];
    memset(&spec, 0, sizeof(spec));
    memset(&f, 0, sizeof(f));
    sks_writer_init(&f.blob);
    sks_writer_init(&f.cert);
    spec.key_usage = SKS_USAGE_KEY_AGREEMENT;
    tl_provision_key(c, &spec, &key);
    f.k1 = key.key[0];

    /* The issuer's side: S1 agreed with K1, K2 sealed under it, K2's certificate. */
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(k2);
    ti_ecdh_s1(key.public_key[0], f.point, s1);
    ti_wrap_k2(s1, key.public_key[0], k2, "injected", SKS_USAGE_SIGN, f.iv, &f.blob);
    ti_cert(k2, &f.cert);

    crash_then_do(c, &c_inject, step_inject, &f);

    sks_writer_free(&f.blob);
    sks_writer_free(&f.cert);
    EVP_PKEY_free(k2);
    tl_key_free(&key);
    tl_card_free(c);
}
END_TEST

/* ---- post-provisioning: postDeleteKey, postUnlockKey, postUpdateKey, close -- */

/*
 * Issuer A's first session makes u1, u2, u3 (PIN "1234", Updatable); a later
 * session of A (same issuer key and URI) makes n1 and names u1 for
 * deletion, u2 for a PIN unlock (the PIN is blocked first) and u3 for
 * replacement by n1. Each call, and the close that applies all three, is
 * crash-tested: after a crash the card holds the state before the call.
 */
typedef struct {
    sks_issuer_session *s; /* the later session */
    uint32_t pin;
    uint32_t key[3];
    sks_writer pub[3];
    uint32_t new_key;
} post_flow;

static const char *const post_ids[3] = {"u1", "u2", "u3"};
#define POST_URI "https://issuer.test/post"

static int step_post(tl_card *w, post_flow *f, uint8_t method, size_t i)
{
    sks_issuer_msg m;
    sks_req_post_key req;
    sks_view pub = {f->pub[i].buf, f->pub[i].len};
    sks_issuer_msg_init(&m);
    if (tl_prepare_post(f->s, method, post_ids[i], pub, f->key[i], "n1", f->new_key, &m, &req) != 0)
        return -1;
    crash_arm(w);
    return tl_call(w, method, &req, NULL, NULL);
}

static int step_post_delete(tl_card *w, void *ctx)
{
    return step_post(w, ctx, SKS_M_POST_DELETE_KEY, 0);
}

static int step_post_unlock(tl_card *w, void *ctx)
{
    return step_post(w, ctx, SKS_M_POST_UNLOCK_KEY, 1);
}

static int step_post_update(tl_card *w, void *ctx)
{
    return step_post(w, ctx, SKS_M_POST_UPDATE_KEY, 2);
}

static int step_post_close(tl_card *w, void *ctx)
{
    post_flow *f = ctx;
    sks_issuer_msg m;
    sks_req_close_session req;
    sks_resp_close_session resp;
    sks_issuer_msg_init(&m);
    if (sks_issuer_prepare_close(f->s, &m, &req) != 0)
        return -1;
    crash_arm(w);
    return tl_call(w, SKS_M_CLOSE_PROVISIONING_SESSION, &req, &resp, NULL);
}

static const crash_case c_post_delete = {"postDeleteKey", SKS_OK, 0};
static const crash_case c_post_unlock = {"postUnlockKey", SKS_OK, 0};
static const crash_case c_post_update = {"postUpdateKey", SKS_OK, 0};
static const crash_case c_post_close = {"closeProvisioningSession with post operations", SKS_OK, 0};

START_TEST(post_provisioning_is_atomic)
{
    static const struct {
        const crash_case *cc;
        crash_step step;
    } posts[] = {{&c_post_delete, step_post_delete},
                 {&c_post_unlock, step_post_unlock},
                 {&c_post_update, step_post_update}};
    tl_card *c = tl_card_new();
    EVP_PKEY *issuer_key = EVP_EC_gen("P-256");
    sks_issuer_pin_policy pp = pin_policy;
    post_flow f;
    memset(&f, 0, sizeof(f));
    ck_assert_ptr_nonnull(issuer_key);
    pp.puk_id = NULL;

    /* Issuer A's first session: the PIN policy and u1..u3. */
    sks_issuer_session *a = tl_open_session_of(c, POST_URI, issuer_key, 1);
    f.pin = tl_create_pin_policy(c, a, &pp, 0);
    for (size_t i = 0; i < 3; i++) {
        sks_issuer_key_spec k = key_spec(post_ids[i], 0);
        k.updatable = 1;
        sks_writer_init(&f.pub[i]);
        f.key[i] = tl_make_key(c, a, &k, f.pin, &f.pub[i]);
    }
    TL_OK(c, tl_close_session(c, a));
    sks_issuer_session_free(a);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tl_verify_pin(c, f.pin, "9999"), SKS_ERR_AUTHENTICATION);

    /* The later session: n1 without PIN, then the three operations and the close. */
    f.s = tl_open_session_of(c, POST_URI, issuer_key, 1);
    sks_issuer_key_spec n1 = key_spec("n1", 0);
    n1.pin_policy_id = NULL;
    n1.pin = (sks_view){NULL, 0};
    f.new_key = tl_make_key(c, f.s, &n1, 0, NULL);
    for (size_t i = 0; i < 3; i++)
        crash_then_do(c, posts[i].cc, posts[i].step, &f);
    crash_every_write(c, &c_post_close, step_post_close, &f);
    ck_assert_int_eq(tl_key_status(c, f.key[0]), SKS_OK); /* the crashed closes changed nothing */
    ck_assert_int_eq(tl_verify_pin(c, f.pin, "1234"), SKS_ERR_PIN_BLOCKED);
    do_step(c, step_post_close, &f, SKS_OK);

    /* The new state: u1 and u3 gone, u2 unlocked, n1 complete. */
    ck_assert_int_eq(tl_key_status(c, f.key[0]), SKS_ERR_NO_KEY);
    ck_assert_int_eq(tl_key_status(c, f.key[2]), SKS_ERR_NO_KEY);
    ck_assert_int_eq(tl_key_status(c, f.key[1]), SKS_OK);
    ck_assert_int_eq(tl_key_status(c, f.new_key), SKS_OK);
    ck_assert_int_eq(tl_verify_pin(c, f.pin, "1234"), SKS_OK);

    sks_issuer_session_free(f.s);
    for (size_t i = 0; i < 3; i++)
        sks_writer_free(&f.pub[i]);
    EVP_PKEY_free(issuer_key);
    tl_card_free(c);
}
END_TEST

static Suite *crash_suite(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("every write point");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, provisioning_is_atomic);
    tcase_add_test(tc, abort_is_atomic);
    tcase_add_test(tc, pin_methods_are_atomic);
    tcase_add_test(tc, object_methods_are_atomic);
    tcase_add_test(tc, dkek_methods_are_atomic);
    tcase_add_test(tc, injection_is_atomic);
    tcase_add_test(tc, post_provisioning_is_atomic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crash_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
