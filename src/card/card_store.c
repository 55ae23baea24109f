/*
 * card_store.c - the card's credential database over SQLite (card_store.h).
 *
 * One table per record kind, one column per field. Secret fields hold their
 * sealed form (card_seal.h) with "table/column/handle" as associated data,
 * so a sealed value moved to another row or column no longer opens.
 *
 * Every statement is prepared once at open and kept in the store, so hot
 * reads never re-prepare. Every write statement and every COMMIT runs
 * through store_write(), the one place that also implements the crash
 * injection of the tests.
 */
#include "card_store.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "card_seal.h"

#define SCHEMA_VERSION      3
#define BUSY_TIMEOUT_MS     10000
#define META_NEXT_HANDLE    "next_handle"
#define META_CHANGE_COUNTER "change_counter"
#define META_NAME_MAX       64

/*
 * Connection settings: rollback journal, durable commits, wait for others.
 * TRUNCATE, not DELETE: a commit is the journal's truncation, which
 * synchronous=FULL flushes before the commit returns (DELETE's unlink is not
 * flushed, so a power cut right after a commit could roll it back: a PIN
 * counter decrement must never be undone).
 */
static const char pragmas_sql[] = "PRAGMA journal_mode=TRUNCATE;"
                                  "PRAGMA synchronous=FULL;"
                                  "PRAGMA foreign_keys=OFF;"
                                  "PRAGMA secure_delete=ON;"
                                  "PRAGMA trusted_schema=OFF;";

/* Tables: columns are the fields of the records in card_store.h. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    " name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, sealed INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sessions ("
    " handle INTEGER PRIMARY KEY, state INTEGER NOT NULL, session_key_alg INTEGER NOT NULL,"
    " sk BLOB, client_session_id BLOB NOT NULL, server_session_id BLOB NOT NULL,"
    " issuer_uri BLOB NOT NULL, issuer_public_key BLOB NOT NULL, updatable INTEGER NOT NULL,"
    " operations_left INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " mac_counter INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS puk_policies ("
    " handle INTEGER PRIMARY KEY, session INTEGER NOT NULL, id BLOB NOT NULL,"
    " value BLOB NOT NULL, format INTEGER NOT NULL, retry_limit INTEGER NOT NULL,"
    " tries_left INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS pin_policies ("
    " handle INTEGER PRIMARY KEY, session INTEGER NOT NULL, id BLOB NOT NULL,"
    " puk_handle INTEGER NOT NULL, user_defined INTEGER NOT NULL,"
    " user_modifiable INTEGER NOT NULL, format INTEGER NOT NULL, retry_limit INTEGER NOT NULL,"
    " grouping INTEGER NOT NULL, pattern_restrictions INTEGER NOT NULL,"
    " min_length INTEGER NOT NULL, max_length INTEGER NOT NULL,"
    " caching_support INTEGER NOT NULL, input_method INTEGER NOT NULL, value BLOB NOT NULL,"
    " tries_left INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS keys ("
    " handle INTEGER PRIMARY KEY, session INTEGER NOT NULL, id BLOB NOT NULL,"
    " pin_policy INTEGER NOT NULL, flags INTEGER NOT NULL, usage INTEGER NOT NULL,"
    " algorithm INTEGER NOT NULL, friendly_name BLOB NOT NULL, public_key BLOB NOT NULL,"
    " private_key BLOB NOT NULL, cert_path BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS objects ("
    " handle INTEGER PRIMARY KEY, pin_policy INTEGER NOT NULL, class INTEGER NOT NULL,"
    " private INTEGER NOT NULL, attributes BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS post_ops ("
    " handle INTEGER PRIMARY KEY, session INTEGER NOT NULL, op INTEGER NOT NULL,"
    " target INTEGER NOT NULL, new_key INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS keys_by_session ON keys(session);"
    "CREATE INDEX IF NOT EXISTS pin_policies_by_session ON pin_policies(session);"
    "CREATE INDEX IF NOT EXISTS puk_policies_by_session ON puk_policies(session);"
    "CREATE INDEX IF NOT EXISTS keys_by_pin_policy ON keys(pin_policy);";

/* The index countKeys reads (added to version 3 databases that lack it). */
static const char policy_index_sql[] =
    "CREATE INDEX IF NOT EXISTS keys_by_pin_policy ON keys(pin_policy);";

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_META_GET,
    S_META_PUT,
    S_SESSION_GET,
    S_SESSION_PUT,
    S_PUK_GET,
    S_PUK_PUT,
    S_PIN_GET,
    S_PIN_PUT,
    S_KEY_GET,
    S_KEY_PUT,
    S_KEY_DELETE,
    S_PURGE_KEYS,
    S_PURGE_PINS,
    S_PURGE_PUKS,
    S_PURGE_SESSION,
    S_SESSION_KEYS,
    S_KEY_LIST,
    S_KEY_COUNT,
    S_POLICY_KEY_COUNT,
    S_PIN_LIST,
    S_PIN_TRIES,
    S_PUK_TRIES,
    S_KEY_ID_USED,
    S_OBJECT_GET,
    S_OBJECT_PUT,
    S_OBJECT_DELETE,
    S_OBJECT_LIST,
    S_OBJECT_COUNT,
    S_POLICY_KEYS,
    S_PURGE_POLICY_KEYS,
    S_PURGE_POLICY_OBJECTS,
    S_PIN_ID_USED,
    S_POST_GET,
    S_POST_PUT,
    S_SESSION_POSTS,
    S_PURGE_POSTS,
    S_COUNT
};

/* Column lists of the record statements: the get and put of a kind name the
 * same columns in the same order, and the row readers/writers (the record
 * layouts below, the session functions) follow it. */
#define SESSION_COLS                                                                               \
    "handle, state, session_key_alg, sk, client_session_id, server_session_id, issuer_uri,"        \
    " issuer_public_key, updatable, operations_left, expires, mac_counter"
#define PUK_COLS "handle, session, id, value, format, retry_limit, tries_left"
#define PIN_COLS                                                                                   \
    "handle, session, id, puk_handle, user_defined, user_modifiable, format, retry_limit,"         \
    " grouping, pattern_restrictions, min_length, max_length, caching_support, input_method,"      \
    " value, tries_left"
#define KEY_COLS                                                                                   \
    "handle, session, id, pin_policy, flags, usage, algorithm, friendly_name, public_key,"         \
    " private_key, cert_path"
#define OBJECT_COLS "handle, pin_policy, class, private, attributes"
#define POST_COLS   "handle, session, op, target, new_key"

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_META_GET] = "SELECT value, sealed FROM meta WHERE name = ?1",
    [S_META_PUT] = "INSERT OR REPLACE INTO meta (name, value, sealed) VALUES (?1, ?2, ?3)",
    [S_SESSION_GET] = "SELECT " SESSION_COLS " FROM sessions WHERE handle = ?1",
    [S_SESSION_PUT] = "INSERT OR REPLACE INTO sessions (" SESSION_COLS
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [S_PUK_GET] = "SELECT " PUK_COLS " FROM puk_policies WHERE handle = ?1",
    [S_PUK_PUT] = "INSERT OR REPLACE INTO puk_policies (" PUK_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?)",
    [S_PIN_GET] = "SELECT " PIN_COLS " FROM pin_policies WHERE handle = ?1",
    [S_PIN_PUT] = "INSERT OR REPLACE INTO pin_policies (" PIN_COLS
                  ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [S_KEY_GET] = "SELECT " KEY_COLS " FROM keys WHERE handle = ?1",
    [S_KEY_PUT] =
        "INSERT OR REPLACE INTO keys (" KEY_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    [S_KEY_DELETE] = "DELETE FROM keys WHERE handle = ?1",
    [S_PURGE_KEYS] = "DELETE FROM keys WHERE session = ?1",
    [S_PURGE_PINS] = "DELETE FROM pin_policies WHERE session = ?1",
    [S_PURGE_PUKS] = "DELETE FROM puk_policies WHERE session = ?1",
    [S_PURGE_SESSION] = "DELETE FROM sessions WHERE handle = ?1",
    [S_SESSION_KEYS] = "SELECT handle FROM keys WHERE session = ?1 ORDER BY handle",
    [S_KEY_LIST] = "SELECT handle FROM keys WHERE handle > ?1 AND (flags & ?2) != 0"
                   " ORDER BY handle LIMIT ?3",
    [S_KEY_COUNT] = "SELECT count(*) FROM keys",
    [S_POLICY_KEY_COUNT] = "SELECT count(*) FROM keys WHERE pin_policy = ?1 AND (flags & ?2) != 0",
    [S_PIN_LIST] = "SELECT p.handle FROM pin_policies p JOIN sessions s ON s.handle = p.session"
                   " WHERE s.state = ?1 ORDER BY p.handle",
    [S_PIN_TRIES] = "UPDATE pin_policies SET tries_left = ?2 WHERE handle = ?1",
    [S_PUK_TRIES] = "UPDATE puk_policies SET tries_left = ?2 WHERE handle = ?1",
    [S_KEY_ID_USED] = "SELECT count(*) FROM keys WHERE id = ?1 AND (flags & ?2) != 0"
                      " AND handle != ?3",
    [S_OBJECT_GET] = "SELECT " OBJECT_COLS " FROM objects WHERE handle = ?1",
    [S_OBJECT_PUT] = "INSERT OR REPLACE INTO objects (" OBJECT_COLS ") VALUES (?, ?, ?, ?, ?)",
    [S_OBJECT_DELETE] = "DELETE FROM objects WHERE handle = ?1",
    [S_OBJECT_LIST] = "SELECT handle FROM objects WHERE handle > ?1 ORDER BY handle LIMIT ?2",
    [S_OBJECT_COUNT] = "SELECT count(*) FROM objects",
    [S_POLICY_KEYS] = "SELECT handle FROM keys WHERE pin_policy = ?1 ORDER BY handle",
    [S_PURGE_POLICY_KEYS] = "DELETE FROM keys WHERE pin_policy = ?1",
    [S_PURGE_POLICY_OBJECTS] = "DELETE FROM objects WHERE pin_policy = ?1",
    [S_PIN_ID_USED] = "SELECT count(*) FROM pin_policies WHERE id = ?1 AND handle != ?2",
    [S_POST_GET] = "SELECT " POST_COLS " FROM post_ops WHERE handle = ?1",
    [S_POST_PUT] = "INSERT OR REPLACE INTO post_ops (" POST_COLS ") VALUES (?, ?, ?, ?, ?)",
    [S_SESSION_POSTS] = "SELECT handle FROM post_ops WHERE session = ?1 ORDER BY handle",
    [S_PURGE_POSTS] = "DELETE FROM post_ops WHERE session = ?1",
};

struct card_store {
    sqlite3 *db;
    uint8_t master_key[CARD_MASTER_KEY_LEN];
    sqlite3_stmt *stmt[S_COUNT];
    long crash_after; /* 0: off; else the write number that terminates the process */
    long writes_seen;
    sqlite3_int64 changes_at_begin; /* rows changed before the open transaction began */
};

/* ---- Owned buffers ---------------------------------------------------- */

void card_buf_free(card_buf *b)
{
    if (b->ptr != NULL) {
        OPENSSL_cleanse(b->ptr, b->len);
        free(b->ptr);
    }
    b->ptr = NULL;
    b->len = 0;
}

int card_buf_set(card_buf *b, const void *p, size_t n)
{
    /* Always a real allocation, so an empty buffer still has a pointer. */
    uint8_t *copy = malloc(n > 0 ? n : 1);

    if (copy == NULL)
        return -1;
    if (n > 0)
        memcpy(copy, p, n);
    card_buf_free(b);
    b->ptr = copy;
    b->len = n;
    return 0;
}

/* ---- Statement execution ---------------------------------------------- */

static void stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/*
 * Execute a write statement (INSERT, UPDATE, DELETE) or COMMIT. Every write
 * of the store passes here, which is what makes the crash injection complete.
 */
static int store_write(card_store *st, sqlite3_stmt *s)
{
    int rc;

    if (st->crash_after > 0 && ++st->writes_seen >= st->crash_after)
        _exit(CARD_STORE_CRASH_EXIT);
    rc = sqlite3_step(s);
    stmt_done(s);
    return rc == SQLITE_DONE ? SKS_OK : SKS_ERR_STORAGE;
}

/* Step a statement that returns no rows and is not a write (BEGIN, ROLLBACK). */
static int store_exec(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);

    stmt_done(s);
    return rc == SQLITE_DONE ? SKS_OK : SKS_ERR_STORAGE;
}

/* Associated data of a sealed column: "table/column/handle". */
static int seal_ad(char *ad, size_t cap, const char *table, const char *column, uint32_t handle)
{
    int n = snprintf(ad, cap, "%s/%s/%u", table, column, (unsigned)handle);

    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ---- Binding a row (parameters numbered in order) ---------------------- */

typedef struct {
    card_store *st;
    sqlite3_stmt *s;
    int next;   /* next parameter number */
    int status; /* first failure, SKS_OK if none */
} row_writer;

static void row_writer_init(row_writer *w, card_store *st, enum stmt_id id)
{
    w->st = st;
    w->s = st->stmt[id];
    w->next = 1;
    w->status = SKS_OK;
}

static void row_check(row_writer *w, int rc)
{
    if (rc != SQLITE_OK && w->status == SKS_OK)
        w->status = rc == SQLITE_NOMEM ? SKS_ERR_INTERNAL : SKS_ERR_STORAGE;
}

static void put_uint(row_writer *w, uint64_t v)
{
    /* uint64 values (expiry times) are stored as their int64 bit pattern. */
    row_check(w, sqlite3_bind_int64(w->s, w->next++, (sqlite3_int64)v));
}

static void put_null(row_writer *w)
{
    row_check(w, sqlite3_bind_null(w->s, w->next++));
}

static void put_blob(row_writer *w, const uint8_t *p, size_t n)
{
    /* Binding (NULL, 0) would store NULL; an empty value is an empty blob. */
    if (n == 0)
        row_check(w, sqlite3_bind_zeroblob(w->s, w->next++, 0));
    else
        row_check(w, sqlite3_bind_blob64(w->s, w->next++, p, n, SQLITE_TRANSIENT));
}

static void put_text(row_writer *w, const char *text)
{
    row_check(w, sqlite3_bind_text(w->s, w->next++, text, -1, SQLITE_TRANSIENT));
}

/* Bind the sealed form of a secret. */
static void put_sealed(row_writer *w, const char *table, const char *column, uint32_t handle,
                       const uint8_t *p, size_t n)
{
    char ad[128];
    uint8_t *sealed;
    int idx = w->next++;

    if (w->status != SKS_OK)
        return;
    if (n > CARD_SEAL_MAX || seal_ad(ad, sizeof ad, table, column, handle) != 0) {
        w->status = SKS_ERR_INTERNAL;
        return;
    }
    sealed = malloc(n + CARD_SEAL_OVERHEAD);
    if (sealed == NULL || card_seal(w->st->master_key, ad, p, n, sealed) != 0) {
        free(sealed);
        w->status = SKS_ERR_INTERNAL;
        return;
    }
    /* SQLite owns the buffer from here on and frees it, even on failure. */
    row_check(w, sqlite3_bind_blob64(w->s, idx, sealed, n + CARD_SEAL_OVERHEAD, free));
}

/* Execute the bound write, or undo the bindings if one of them failed. */
static int row_write(row_writer *w)
{
    if (w->status != SKS_OK) {
        stmt_done(w->s);
        return w->status;
    }
    return store_write(w->st, w->s);
}

/* ---- Reading a row (columns numbered in order) ------------------------ */

typedef struct {
    card_store *st;
    sqlite3_stmt *s;
    int next;   /* next column number */
    int status; /* SKS_ERR_INTERNAL once a column is not what the store wrote */
} row_reader;

static void row_reader_init(row_reader *r, card_store *st, sqlite3_stmt *s)
{
    r->st = st;
    r->s = s;
    r->next = 0;
    r->status = SKS_OK;
}

static void row_bad(row_reader *r)
{
    if (r->status == SKS_OK)
        r->status = SKS_ERR_INTERNAL;
}

/* An integer column in 0..max; anything else means the file was altered. */
static uint64_t get_uint(row_reader *r, uint64_t max)
{
    int col = r->next++;
    sqlite3_int64 v;

    if (sqlite3_column_type(r->s, col) != SQLITE_INTEGER) {
        row_bad(r);
        return 0;
    }
    v = sqlite3_column_int64(r->s, col);
    if (v < 0 || (uint64_t)v > max) {
        row_bad(r);
        return 0;
    }
    return (uint64_t)v;
}

/* A uint64 stored as its int64 bit pattern (see put_uint). */
static uint64_t get_u64(row_reader *r)
{
    int col = r->next++;

    if (sqlite3_column_type(r->s, col) != SQLITE_INTEGER) {
        row_bad(r);
        return 0;
    }
    return (uint64_t)sqlite3_column_int64(r->s, col);
}

/* The bytes of a blob column; NULL (and *n = 0) for an empty one. */
static const uint8_t *get_blob_view(row_reader *r, size_t *n)
{
    int col = r->next++;
    const uint8_t *p;

    *n = 0;
    if (sqlite3_column_type(r->s, col) != SQLITE_BLOB) {
        row_bad(r);
        return NULL;
    }
    p = sqlite3_column_blob(r->s, col);
    *n = (size_t)sqlite3_column_bytes(r->s, col);
    if (p == NULL && *n > 0) {
        /* Out of memory while loading the value. */
        if (r->status == SKS_OK)
            r->status = SKS_ERR_STORAGE;
        *n = 0;
    }
    return p;
}

/* A blob column of exactly `len` bytes. */
static void get_fixed(row_reader *r, uint8_t *out, size_t len)
{
    size_t n;
    const uint8_t *p = get_blob_view(r, &n);

    if (n != len) {
        row_bad(r);
        return;
    }
    if (n > 0)
        memcpy(out, p, n);
}

/* An ID column (0..SKS_ID_MAX bytes); returns its length. */
static uint8_t get_id(row_reader *r, uint8_t out[SKS_ID_MAX])
{
    size_t n;
    const uint8_t *p = get_blob_view(r, &n);

    if (n > SKS_ID_MAX) {
        row_bad(r);
        return 0;
    }
    if (n > 0)
        memcpy(out, p, n);
    return (uint8_t)n;
}

static void get_buf(row_reader *r, card_buf *out)
{
    size_t n;
    const uint8_t *p = get_blob_view(r, &n);

    if (r->status == SKS_OK && card_buf_set(out, p, n) != 0)
        r->status = SKS_ERR_INTERNAL;
}

/* Open a sealed column into `out` (which must hold enough room, see below). */
static int unseal_value(card_store *st, const char *ad, const uint8_t *p, size_t n, card_buf *out)
{
    uint8_t *plain;
    size_t len;

    if (n < CARD_SEAL_OVERHEAD)
        return SKS_ERR_INTERNAL;
    plain = malloc(n - CARD_SEAL_OVERHEAD > 0 ? n - CARD_SEAL_OVERHEAD : 1);
    if (plain == NULL)
        return SKS_ERR_INTERNAL;
    if (card_unseal(st->master_key, ad, p, n, plain, &len) != 0) {
        free(plain);
        return SKS_ERR_INTERNAL;
    }
    card_buf_free(out);
    out->ptr = plain;
    out->len = len;
    return SKS_OK;
}

static void get_sealed(row_reader *r, const char *table, const char *column, uint32_t handle,
                       card_buf *out)
{
    char ad[128];
    size_t n;
    const uint8_t *p = get_blob_view(r, &n);

    if (r->status != SKS_OK)
        return;
    if (seal_ad(ad, sizeof ad, table, column, handle) != 0) {
        row_bad(r);
        return;
    }
    r->status = unseal_value(r->st, ad, p, n, out);
}

/* Skip a column (already checked by the caller). */
static void get_skip(row_reader *r)
{
    r->next++;
}

/*
 * Run a single-row query whose ?1 is `key`. Returns SKS_OK with the row
 * ready to read, `absent` when there is no row, SKS_ERR_STORAGE on errors.
 * After SKS_OK the caller reads the row and calls stmt_done().
 */
static int query_row(sqlite3_stmt *s, uint32_t key, int absent)
{
    int rc;

    if (sqlite3_bind_int64(s, 1, key) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return SKS_OK;
    stmt_done(s);
    return rc == SQLITE_DONE ? absent : SKS_ERR_STORAGE;
}

/* ---- Record layouts (policies, keys, objects) ------------------------- */

/*
 * The columns of a record kind, in the order of its *_COLS list: one table
 * drives both the get and the put of the kind, so reading and writing a row
 * cannot disagree. (A session row is read and written by hand: whether its
 * SK column holds a value depends on the state column.)
 */
enum col_kind {
    COL_U8,     /* uint8_t, any value */
    COL_FLAG,   /* uint8_t boolean, stored as 0 or 1 */
    COL_U32,    /* uint32_t */
    COL_ID,     /* uint8_t[SKS_ID_MAX] with its uint8_t length at len_offset */
    COL_BUF,    /* card_buf stored as it is */
    COL_SEALED, /* card_buf stored sealed, `column` naming it in the associated data */
};

typedef struct {
    enum col_kind kind;
    size_t offset;      /* of the field in the record */
    size_t len_offset;  /* COL_ID: of the length field */
    const char *column; /* COL_SEALED: the column name */
} col_def;

/*
 * offsetof() that also draws a compiler diagnostic (distinct pointer types)
 * unless the field has the C type the column kind reads and writes. The entry
 * macros below stay one line each (clang-format would make brace blocks).
 */
typedef uint8_t id_bytes[SKS_ID_MAX];
#define TYPED_OFFSET(type, field, ctype)                                                           \
    (offsetof(type, field) + 0 * sizeof(&((type *)0)->field == (ctype *)0))
/* clang-format off */
#define U8_COLUMN(type, field)   {COL_U8, TYPED_OFFSET(type, field, uint8_t), 0, NULL}
#define FLAG_COLUMN(type, field) {COL_FLAG, TYPED_OFFSET(type, field, uint8_t), 0, NULL}
#define U32_COLUMN(type, field)  {COL_U32, TYPED_OFFSET(type, field, uint32_t), 0, NULL}
#define BUF_COLUMN(type, field)  {COL_BUF, TYPED_OFFSET(type, field, card_buf), 0, NULL}
#define SEALED_COLUMN(type, field, name) {COL_SEALED, TYPED_OFFSET(type, field, card_buf), 0, name}
#define ID_COLUMN(type) \
    {COL_ID, TYPED_OFFSET(type, id, id_bytes), TYPED_OFFSET(type, id_len, uint8_t), NULL}
#define LAYOUT(table, get, put, absent, cols) \
    {table, get, put, absent, cols, sizeof cols / sizeof cols[0]}
/* clang-format on */

typedef struct {
    const char *table; /* the table name in the associated data of sealed columns */
    enum stmt_id get;  /* SELECT ... WHERE handle = ?1 */
    enum stmt_id put;  /* INSERT OR REPLACE of all columns */
    int absent;        /* status of a get that finds no row */
    const col_def *cols;
    size_t ncols;
} record_layout;

static const col_def puk_cols[] = {
    U32_COLUMN(card_puk_rec, handle),
    U32_COLUMN(card_puk_rec, session),
    ID_COLUMN(card_puk_rec),
    SEALED_COLUMN(card_puk_rec, value, "value"),
    U8_COLUMN(card_puk_rec, format),
    U8_COLUMN(card_puk_rec, retry_limit),
    U8_COLUMN(card_puk_rec, tries_left),
};
static const record_layout puk_layout =
    LAYOUT("puk_policies", S_PUK_GET, S_PUK_PUT, SKS_ERR_NO_POLICY, puk_cols);

static const col_def pin_cols[] = {
    U32_COLUMN(card_pin_rec, handle),
    U32_COLUMN(card_pin_rec, session),
    ID_COLUMN(card_pin_rec),
    U32_COLUMN(card_pin_rec, puk_handle),
    FLAG_COLUMN(card_pin_rec, user_defined),
    FLAG_COLUMN(card_pin_rec, user_modifiable),
    U8_COLUMN(card_pin_rec, format),
    U8_COLUMN(card_pin_rec, retry_limit),
    U8_COLUMN(card_pin_rec, grouping),
    U8_COLUMN(card_pin_rec, pattern_restrictions),
    U8_COLUMN(card_pin_rec, min_length),
    U8_COLUMN(card_pin_rec, max_length),
    FLAG_COLUMN(card_pin_rec, caching_support),
    U8_COLUMN(card_pin_rec, input_method),
    SEALED_COLUMN(card_pin_rec, value, "value"),
    U8_COLUMN(card_pin_rec, tries_left),
};
static const record_layout pin_layout =
    LAYOUT("pin_policies", S_PIN_GET, S_PIN_PUT, SKS_ERR_NO_POLICY, pin_cols);

static const col_def key_cols[] = {
    U32_COLUMN(card_key_rec, handle),
    U32_COLUMN(card_key_rec, session),
    ID_COLUMN(card_key_rec),
    U32_COLUMN(card_key_rec, pin_policy),
    U8_COLUMN(card_key_rec, flags),
    U8_COLUMN(card_key_rec, usage),
    U8_COLUMN(card_key_rec, algorithm),
    BUF_COLUMN(card_key_rec, friendly_name),
    BUF_COLUMN(card_key_rec, public_key),
    SEALED_COLUMN(card_key_rec, private_key, "private_key"),
    BUF_COLUMN(card_key_rec, cert_path),
};
static const record_layout key_layout =
    LAYOUT("keys", S_KEY_GET, S_KEY_PUT, SKS_ERR_NO_KEY, key_cols);

static const col_def object_cols[] = {
    U32_COLUMN(card_object_rec, handle),
    U32_COLUMN(card_object_rec, pin_policy),
    U8_COLUMN(card_object_rec, object_class),
    FLAG_COLUMN(card_object_rec, private_),
    SEALED_COLUMN(card_object_rec, attributes, "attributes"),
};
static const record_layout object_layout =
    LAYOUT("objects", S_OBJECT_GET, S_OBJECT_PUT, SKS_ERR_NO_KEY, object_cols);

/* clang-format off */
static const col_def post_cols[] = {
    U32_COLUMN(card_post_rec, handle),
    U32_COLUMN(card_post_rec, session),
    U8_COLUMN(card_post_rec, op),
    U32_COLUMN(card_post_rec, target),
    U32_COLUMN(card_post_rec, new_key),
};
/* clang-format on */
static const record_layout post_layout =
    LAYOUT("post_ops", S_POST_GET, S_POST_PUT, SKS_ERR_NO_KEY, post_cols);

/* Read the next column into its field of `rec` (the row of `handle`). */
static void get_column(row_reader *r, const record_layout *l, const col_def *c, uint32_t handle,
                       void *rec)
{
    void *field = (char *)rec + c->offset;

    switch (c->kind) {
    case COL_U8:
        *(uint8_t *)field = (uint8_t)get_uint(r, UINT8_MAX);
        break;
    case COL_FLAG:
        *(uint8_t *)field = (uint8_t)get_uint(r, 1);
        break;
    case COL_U32:
        *(uint32_t *)field = (uint32_t)get_uint(r, UINT32_MAX);
        break;
    case COL_ID:
        *((uint8_t *)rec + c->len_offset) = get_id(r, field);
        break;
    case COL_BUF:
        get_buf(r, field);
        break;
    case COL_SEALED:
        get_sealed(r, l->table, c->column, handle, field);
        break;
    }
}

/* Bind a field of `rec` (the record of `handle`) as the next parameter. */
static void put_column(row_writer *w, const record_layout *l, const col_def *c, uint32_t handle,
                       const void *rec)
{
    const void *field = (const char *)rec + c->offset;
    const card_buf *buf = field;

    switch (c->kind) {
    case COL_U8:
        put_uint(w, *(const uint8_t *)field);
        break;
    case COL_FLAG:
        put_uint(w, *(const uint8_t *)field ? 1 : 0);
        break;
    case COL_U32:
        put_uint(w, *(const uint32_t *)field);
        break;
    case COL_ID:
        put_blob(w, field, *((const uint8_t *)rec + c->len_offset));
        break;
    case COL_BUF:
        put_blob(w, buf->ptr, buf->len);
        break;
    case COL_SEALED:
        put_sealed(w, l->table, c->column, handle, buf->ptr, buf->len);
        break;
    }
}

/* Free the buffers of a record and wipe it. */
static void record_free(const record_layout *l, void *rec, size_t size)
{
    for (size_t i = 0; i < l->ncols; i++) {
        if (l->cols[i].kind == COL_BUF || l->cols[i].kind == COL_SEALED)
            card_buf_free((card_buf *)((char *)rec + l->cols[i].offset));
    }
    OPENSSL_cleanse(rec, size);
}

/*
 * Read the row of `handle` into `out` (`size` bytes, zeroed first; freed
 * again when the row is not what the store wrote).
 */
static int record_get(card_store *st, const record_layout *l, uint32_t handle, void *out,
                      size_t size)
{
    sqlite3_stmt *s = st->stmt[l->get];
    row_reader r;
    int rc;

    memset(out, 0, size);
    rc = query_row(s, handle, l->absent);
    if (rc != SKS_OK)
        return rc;
    row_reader_init(&r, st, s);
    for (size_t i = 0; i < l->ncols; i++)
        get_column(&r, l, &l->cols[i], handle, out);
    stmt_done(s);
    if (r.status != SKS_OK)
        record_free(l, out, size);
    return r.status;
}

/* Insert or replace the row of `rec`; an over-long ID is refused unwritten. */
static int record_put(card_store *st, const record_layout *l, uint32_t handle, const void *rec)
{
    row_writer w;

    for (size_t i = 0; i < l->ncols; i++) {
        if (l->cols[i].kind == COL_ID &&
            *((const uint8_t *)rec + l->cols[i].len_offset) > SKS_ID_MAX)
            return SKS_ERR_INTERNAL;
    }
    row_writer_init(&w, st, l->put);
    for (size_t i = 0; i < l->ncols; i++)
        put_column(&w, l, &l->cols[i], handle, rec);
    return row_write(&w);
}

/* ---- Deleting rows -------------------------------------------------- */

/* Delete the rows of `id` (a DELETE ... WHERE x = ?1) for `value`. */
static int delete_where(card_store *st, enum stmt_id id, uint32_t value)
{
    row_writer w;

    row_writer_init(&w, st, id);
    put_uint(&w, value);
    return row_write(&w);
}

/* Delete the row of `handle` (a DELETE ... WHERE handle = ?1); `absent` if there was none. */
static int delete_one(card_store *st, enum stmt_id id, uint32_t handle, int absent)
{
    int rc = delete_where(st, id, handle);

    if (rc == SKS_OK && sqlite3_changes(st->db) == 0)
        return absent;
    return rc;
}

/* ---- Open, close, transactions ---------------------------------------- */

static void store_free(card_store *st)
{
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    if (st->db != NULL)
        sqlite3_close(st->db);
    OPENSSL_cleanse(st->master_key, sizeof st->master_key);
    free(st);
}

/*
 * Create the tables of a new database, or accept an existing one of our
 * version. A version 1 database (before stored objects) or 2 (before
 * post-provisioning operations) is upgraded in place: the schema only ever
 * adds tables and indexes, so running it again adds what is missing. The
 * index of keys by PIN policy (countKeys) came later without a new version,
 * so that older programs still open the card: it is added when missing, and
 * a card where that fails (a read-only state) still answers, more slowly.
 */
static int store_schema(card_store *st)
{
    sqlite3_stmt *s = NULL;
    int version = -1;
    char set_version[64];

    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        version = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    if (version == SCHEMA_VERSION) {
        (void)sqlite3_exec(st->db, policy_index_sql, NULL, NULL, NULL);
        return 0;
    }
    if (version < 0 || version > SCHEMA_VERSION)
        return -1; /* unreadable, or written by a newer version */

    /* Create or upgrade in one transaction; a concurrent creator is harmless. */
    snprintf(set_version, sizeof set_version, "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_exec(st->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(st->db, set_version, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

int card_store_open(card_store **out, const char *path, const uint8_t master_key[32])
{
    card_store *st = calloc(1, sizeof *st);

    *out = NULL;
    if (st == NULL)
        return SKS_ERR_INTERNAL;
    memcpy(st->master_key, master_key, CARD_MASTER_KEY_LEN);
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK)
        goto fail;
    sqlite3_extended_result_codes(st->db, 1);
    if (sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_exec(st->db, pragmas_sql, NULL, NULL, NULL) != SQLITE_OK || store_schema(st) != 0)
        goto fail;
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->stmt[i],
                               NULL) != SQLITE_OK)
            goto fail;
    }
    *out = st;
    return SKS_OK;
fail:
    store_free(st);
    return SKS_ERR_STORAGE;
}

void card_store_close(card_store *st)
{
    if (st == NULL)
        return;
    card_store_rollback(st);
    store_free(st);
}

int card_store_begin(card_store *st)
{
    int rc = store_exec(st->stmt[S_BEGIN]);

    st->changes_at_begin = sqlite3_total_changes64(st->db);
    return rc;
}

/*
 * Count one more change of the card's state (the ChangeCounter of
 * getDeviceInfo). It is a write of the transaction itself, so it commits
 * with the change it counts, or not at all. The counter wraps at 2^32.
 */
static int bump_change_counter(card_store *st)
{
    card_buf b = {NULL, 0};
    uint32_t counter = 0;
    uint8_t enc[4];
    int rc = card_store_meta_get(st, META_CHANGE_COUNTER, &b, 0);

    if (rc == -1) {
        rc = SKS_OK; /* the first change ever */
    } else if (rc == 0) {
        if (b.len == 4)
            counter = sks_be32_get(b.ptr);
        else
            rc = SKS_ERR_INTERNAL;
    }
    card_buf_free(&b);
    if (rc != SKS_OK)
        return rc;
    sks_be32_put(enc, counter + 1);
    return card_store_meta_put(st, META_CHANGE_COUNTER, enc, sizeof enc, 0);
}

int card_store_commit(card_store *st)
{
    /* A transaction that changed rows also moves the change counter. */
    if (sqlite3_total_changes64(st->db) != st->changes_at_begin &&
        bump_change_counter(st) != SKS_OK) {
        card_store_rollback(st);
        return -1;
    }
    if (store_write(st, st->stmt[S_COMMIT]) != SKS_OK) {
        card_store_rollback(st);
        return -1;
    }
    return 0;
}

int card_store_change_counter(card_store *st, uint32_t *counter)
{
    card_buf b = {NULL, 0};
    int rc = card_store_meta_get(st, META_CHANGE_COUNTER, &b, 0);

    *counter = 0;
    if (rc == -1)
        return SKS_OK; /* nothing committed yet */
    if (rc == 0 && b.len != 4)
        rc = SKS_ERR_INTERNAL;
    if (rc == 0)
        *counter = sks_be32_get(b.ptr);
    card_buf_free(&b);
    return rc;
}

void card_store_rollback(card_store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        store_exec(st->stmt[S_ROLLBACK]);
}

void card_store_set_crash_after(card_store *st, long writes)
{
    st->crash_after = writes > 0 ? writes : 0;
    st->writes_seen = 0;
}

/* ---- Metadata --------------------------------------------------------- */

static int meta_name_ok(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n < META_NAME_MAX;
}

int card_store_meta_put(card_store *st, const char *name, const void *p, size_t n, int sealed)
{
    row_writer w;

    if (!meta_name_ok(name))
        return SKS_ERR_INTERNAL;
    row_writer_init(&w, st, S_META_PUT);
    put_text(&w, name);
    if (sealed)
        put_sealed(&w, "meta", name, 0, p, n);
    else
        put_blob(&w, p, n);
    put_uint(&w, sealed ? 1 : 0);
    return row_write(&w);
}

/*
 * Read a metadata value into `out` (overwritten, not freed). Returns 0,
 * -1 if absent, SKS_ERR_STORAGE on database errors, or SKS_ERR_INTERNAL if
 * the value does not open or is not stored the way the caller expects.
 */
int card_store_meta_get(card_store *st, const char *name, card_buf *out, int sealed)
{
    sqlite3_stmt *s = st->stmt[S_META_GET];
    row_reader r;
    size_t n;
    const uint8_t *p;
    uint64_t was_sealed;
    int rc;

    out->ptr = NULL;
    out->len = 0;
    if (!meta_name_ok(name))
        return SKS_ERR_INTERNAL;
    if (sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        stmt_done(s);
        return rc == SQLITE_DONE ? -1 : SKS_ERR_STORAGE;
    }
    row_reader_init(&r, st, s);
    r.next = 1; /* the flag first: it decides how to read the value */
    was_sealed = get_uint(&r, 1);
    r.next = 0;
    if (r.status == SKS_OK && was_sealed != (sealed ? 1u : 0u))
        row_bad(&r);
    if (r.status == SKS_OK && sealed) {
        get_sealed(&r, "meta", name, 0, out);
    } else if (r.status == SKS_OK) {
        p = get_blob_view(&r, &n);
        if (r.status == SKS_OK && card_buf_set(out, p, n) != 0)
            r.status = SKS_ERR_INTERNAL;
    }
    stmt_done(s);
    if (r.status != SKS_OK)
        card_buf_free(out);
    return r.status;
}

/* ---- Handles ---------------------------------------------------------- */

int card_store_next_handle(card_store *st, uint32_t *handle)
{
    card_buf b = {NULL, 0};
    uint32_t next = 1;
    uint8_t enc[4];
    int rc = card_store_meta_get(st, META_NEXT_HANDLE, &b, 0);

    *handle = 0;
    if (rc == 0) {
        if (b.len != 4)
            rc = SKS_ERR_INTERNAL;
        else
            next = sks_be32_get(b.ptr);
        card_buf_free(&b);
        if (rc != 0)
            return rc;
    } else if (rc != -1) {
        return rc;
    }
    /* 0 means "none" and 0xFFFFFFFF "device": neither is ever handed out. */
    if (next == SKS_HANDLE_NONE || next >= SKS_HANDLE_DEVICE)
        return SKS_ERR_STORAGE;
    sks_be32_put(enc, next + 1);
    rc = card_store_meta_put(st, META_NEXT_HANDLE, enc, sizeof enc, 0);
    if (rc == SKS_OK)
        *handle = next;
    return rc;
}

/* ---- Sessions --------------------------------------------------------- */

void card_session_rec_free(card_session_rec *rec)
{
    card_buf_free(&rec->issuer_uri);
    card_buf_free(&rec->issuer_public_key);
    OPENSSL_cleanse(rec, sizeof *rec);
}

int card_store_session_get(card_store *st, uint32_t handle, card_session_rec *out)
{
    sqlite3_stmt *s = st->stmt[S_SESSION_GET];
    row_reader r;
    card_buf sk = {NULL, 0};
    int rc;

    memset(out, 0, sizeof *out);
    rc = query_row(s, handle, SKS_ERR_NO_SESSION);
    if (rc != SKS_OK)
        return rc;
    row_reader_init(&r, st, s);
    out->handle = (uint32_t)get_uint(&r, UINT32_MAX);
    out->state = (uint8_t)get_uint(&r, CARD_SESSION_CLOSED);
    out->session_key_alg = (uint8_t)get_uint(&r, UINT8_MAX);
    if (r.status == SKS_OK && out->state == CARD_SESSION_OPEN) {
        get_sealed(&r, "sessions", "sk", handle, &sk);
        if (r.status == SKS_OK && sk.len != SKS_SK_LEN)
            row_bad(&r);
        if (r.status == SKS_OK)
            memcpy(out->sk, sk.ptr, SKS_SK_LEN);
        card_buf_free(&sk);
    } else if (r.status == SKS_OK && out->state == CARD_SESSION_CLOSED) {
        /* A closed session's SK is gone: the column is NULL. */
        if (sqlite3_column_type(s, r.next) != SQLITE_NULL)
            row_bad(&r);
        get_skip(&r);
    } else {
        row_bad(&r); /* not a state the store writes */
        get_skip(&r);
    }
    get_fixed(&r, out->client_session_id, SKS_SESSION_ID_LEN);
    get_fixed(&r, out->server_session_id, SKS_SESSION_ID_LEN);
    get_buf(&r, &out->issuer_uri);
    get_buf(&r, &out->issuer_public_key);
    out->updatable = (uint8_t)get_uint(&r, 1);
    out->operations_left = (uint32_t)get_uint(&r, UINT32_MAX);
    out->expires = get_u64(&r);
    out->mac_counter = (uint32_t)get_uint(&r, UINT32_MAX);
    stmt_done(s);
    if (r.status != SKS_OK)
        card_session_rec_free(out);
    return r.status;
}

int card_store_session_put(card_store *st, const card_session_rec *rec)
{
    row_writer w;

    row_writer_init(&w, st, S_SESSION_PUT);
    put_uint(&w, rec->handle);
    put_uint(&w, rec->state);
    put_uint(&w, rec->session_key_alg);
    if (rec->state == CARD_SESSION_CLOSED)
        put_null(&w);
    else
        put_sealed(&w, "sessions", "sk", rec->handle, rec->sk, SKS_SK_LEN);
    put_blob(&w, rec->client_session_id, SKS_SESSION_ID_LEN);
    put_blob(&w, rec->server_session_id, SKS_SESSION_ID_LEN);
    put_blob(&w, rec->issuer_uri.ptr, rec->issuer_uri.len);
    put_blob(&w, rec->issuer_public_key.ptr, rec->issuer_public_key.len);
    put_uint(&w, rec->updatable ? 1 : 0);
    put_uint(&w, rec->operations_left);
    put_uint(&w, rec->expires);
    put_uint(&w, rec->mac_counter);
    return row_write(&w);
}

/* ---- PUK policies ----------------------------------------------------- */

void card_puk_rec_free(card_puk_rec *rec)
{
    record_free(&puk_layout, rec, sizeof *rec);
}

int card_store_puk_get(card_store *st, uint32_t handle, card_puk_rec *out)
{
    return record_get(st, &puk_layout, handle, out, sizeof *out);
}

int card_store_puk_put(card_store *st, const card_puk_rec *rec)
{
    return record_put(st, &puk_layout, rec->handle, rec);
}

/* ---- PIN policies ----------------------------------------------------- */

void card_pin_rec_free(card_pin_rec *rec)
{
    record_free(&pin_layout, rec, sizeof *rec);
}

int card_store_pin_get(card_store *st, uint32_t handle, card_pin_rec *out)
{
    return record_get(st, &pin_layout, handle, out, sizeof *out);
}

int card_store_pin_put(card_store *st, const card_pin_rec *rec)
{
    return record_put(st, &pin_layout, rec->handle, rec);
}

/*
 * Retry counters change on their own (docs/protocol.md section 7): one
 * column is updated, so a counter transaction rewrites nothing else.
 */
static int store_set_tries(card_store *st, enum stmt_id id, uint32_t handle, uint8_t tries)
{
    row_writer w;
    row_writer_init(&w, st, id);
    put_uint(&w, handle);
    put_uint(&w, tries);
    return row_write(&w);
}

int card_store_pin_set_tries(card_store *st, uint32_t handle, uint8_t tries)
{
    return store_set_tries(st, S_PIN_TRIES, handle, tries);
}

int card_store_puk_set_tries(card_store *st, uint32_t handle, uint8_t tries)
{
    return store_set_tries(st, S_PUK_TRIES, handle, tries);
}

/* ---- Keys ------------------------------------------------------------- */

void card_key_rec_free(card_key_rec *rec)
{
    record_free(&key_layout, rec, sizeof *rec);
}

int card_store_key_get(card_store *st, uint32_t handle, card_key_rec *out)
{
    return record_get(st, &key_layout, handle, out, sizeof *out);
}

int card_store_key_put(card_store *st, const card_key_rec *rec)
{
    return record_put(st, &key_layout, rec->handle, rec);
}

int card_store_key_delete(card_store *st, uint32_t handle)
{
    return delete_one(st, S_KEY_DELETE, handle, SKS_ERR_NO_KEY);
}

int card_store_key_id_used(card_store *st, sks_view id, uint32_t except, int *used)
{
    sqlite3_stmt *s = st->stmt[S_KEY_ID_USED];
    sqlite3_int64 n = -1;
    int rc;

    *used = 0;
    if ((id.len > 0 ? sqlite3_bind_blob64(s, 1, id.ptr, id.len, SQLITE_TRANSIENT)
                    : sqlite3_bind_zeroblob(s, 1, 0)) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, SKS_KEYFLAG_COMPLETE) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, except) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    stmt_done(s);
    if (n < 0)
        return SKS_ERR_STORAGE;
    *used = n > 0;
    return SKS_OK;
}

int card_store_session_purge(card_store *st, uint32_t session)
{
    static const enum stmt_id steps[] = {S_PURGE_KEYS, S_PURGE_PINS, S_PURGE_PUKS, S_PURGE_POSTS,
                                         S_PURGE_SESSION};
    int rc = SKS_OK;

    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == SKS_OK; i++)
        rc = delete_where(st, steps[i], session);
    return rc;
}

/* Delete every key and every stored object of a PIN policy (resetPINPolicy). */
int card_store_policy_purge(card_store *st, uint32_t pin_policy)
{
    int rc = delete_where(st, S_PURGE_POLICY_KEYS, pin_policy);

    if (rc == SKS_OK)
        rc = delete_where(st, S_PURGE_POLICY_OBJECTS, pin_policy);
    return rc;
}

int card_store_pin_id_used(card_store *st, sks_view id, uint32_t except, int *used)
{
    sqlite3_stmt *s = st->stmt[S_PIN_ID_USED];
    sqlite3_int64 n = -1;

    *used = 0;
    if ((id.len > 0 ? sqlite3_bind_blob64(s, 1, id.ptr, id.len, SQLITE_TRANSIENT)
                    : sqlite3_bind_zeroblob(s, 1, 0)) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, except) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    stmt_done(s);
    if (n < 0)
        return SKS_ERR_STORAGE;
    *used = n > 0;
    return SKS_OK;
}

/* ---- Stored objects --------------------------------------------------- */

void card_object_rec_free(card_object_rec *rec)
{
    record_free(&object_layout, rec, sizeof *rec);
}

int card_store_object_get(card_store *st, uint32_t handle, card_object_rec *out)
{
    int rc = record_get(st, &object_layout, handle, out, sizeof *out);

    if (rc == SKS_OK && out->attributes.len > SKS_OBJECT_MAX) {
        card_object_rec_free(out);
        rc = SKS_ERR_INTERNAL;
    }
    return rc;
}

int card_store_object_put(card_store *st, const card_object_rec *rec)
{
    if (rec->attributes.len > SKS_OBJECT_MAX)
        return SKS_ERR_INTERNAL;
    return record_put(st, &object_layout, rec->handle, rec);
}

int card_store_object_delete(card_store *st, uint32_t handle)
{
    return delete_one(st, S_OBJECT_DELETE, handle, SKS_ERR_NO_KEY);
}

/* ---- Lists ------------------------------------------------------------ */

/*
 * Collect the first column of every row of a bound query into a growing
 * array of handles (caller frees). Resets the statement.
 */
static int collect_handles(sqlite3_stmt *s, uint32_t **out, size_t *n)
{
    uint32_t *list = NULL;
    size_t count = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(s, 0);

        if (v < 0 || v > UINT32_MAX) {
            rc = SQLITE_CORRUPT;
            break;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            uint32_t *grown = realloc(list, ncap * sizeof *list);

            if (grown == NULL) {
                rc = SQLITE_NOMEM;
                break;
            }
            list = grown;
            cap = ncap;
        }
        list[count++] = (uint32_t)v;
    }
    stmt_done(s);
    if (rc != SQLITE_DONE) {
        free(list);
        return rc == SQLITE_NOMEM ? SKS_ERR_INTERNAL : SKS_ERR_STORAGE;
    }
    *out = list;
    *n = count;
    return SKS_OK;
}

int card_store_session_keys(card_store *st, uint32_t session, uint32_t **out, size_t *n)
{
    sqlite3_stmt *s = st->stmt[S_SESSION_KEYS];

    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int64(s, 1, session) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    return collect_handles(s, out, n);
}

int card_store_policy_keys(card_store *st, uint32_t pin_policy, uint32_t **out, size_t *n)
{
    sqlite3_stmt *s = st->stmt[S_POLICY_KEYS];

    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int64(s, 1, pin_policy) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    return collect_handles(s, out, n);
}

int card_store_pin_list(card_store *st, uint32_t **out, size_t *n)
{
    sqlite3_stmt *s = st->stmt[S_PIN_LIST];

    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int64(s, 1, CARD_SESSION_CLOSED) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    return collect_handles(s, out, n);
}

/*
 * Read one page of a bound handle listing (`s` asks for max + 1 rows): up to
 * `max` handles into out, *more when a further row exists. Resets `s`.
 */
static int collect_page(sqlite3_stmt *s, uint32_t *out, size_t max, size_t *n, int *more)
{
    size_t count = 0;
    int rc;

    /* One row more than asked for tells whether further rows exist. */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(s, 0);

        if (count == max) {
            *more = 1;
            break;
        }
        if (v < 0 || v > UINT32_MAX) {
            rc = SQLITE_CORRUPT;
            break;
        }
        out[count++] = (uint32_t)v;
    }
    stmt_done(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        *more = 0;
        return SKS_ERR_STORAGE;
    }
    *n = count;
    return SKS_OK;
}

static sqlite3_int64 page_limit(size_t max)
{
    return max < (size_t)INT32_MAX ? (sqlite3_int64)max + 1 : INT32_MAX;
}

int card_store_key_list(card_store *st, uint32_t after, uint32_t *out, size_t max, size_t *n,
                        int *more)
{
    sqlite3_stmt *s = st->stmt[S_KEY_LIST];

    *n = 0;
    *more = 0;
    if (sqlite3_bind_int64(s, 1, after) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, SKS_KEYFLAG_COMPLETE) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, page_limit(max)) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    return collect_page(s, out, max, n, more);
}

int card_store_object_list(card_store *st, uint32_t after, uint32_t *out, size_t max, size_t *n,
                           int *more)
{
    sqlite3_stmt *s = st->stmt[S_OBJECT_LIST];

    *n = 0;
    *more = 0;
    if (sqlite3_bind_int64(s, 1, after) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, page_limit(max)) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    return collect_page(s, out, max, n, more);
}

/* The single count(*) of a statement without parameters. */
static int count_rows(card_store *st, enum stmt_id id, uint32_t *n)
{
    sqlite3_stmt *s = st->stmt[id];
    int rc = sqlite3_step(s);
    sqlite3_int64 v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;

    stmt_done(s);
    *n = 0;
    if (v < 0 || v > UINT32_MAX)
        return SKS_ERR_STORAGE;
    *n = (uint32_t)v;
    return SKS_OK;
}

int card_store_key_count(card_store *st, uint32_t *n)
{
    return count_rows(st, S_KEY_COUNT, n);
}

int card_store_policy_key_count(card_store *st, uint32_t pin_policy, uint32_t *n)
{
    sqlite3_stmt *s = st->stmt[S_POLICY_KEY_COUNT];
    *n = 0;
    if (sqlite3_bind_int64(s, 1, pin_policy) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, SKS_KEYFLAG_COMPLETE) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    return count_rows(st, S_POLICY_KEY_COUNT, n);
}

int card_store_object_count(card_store *st, uint32_t *n)
{
    return count_rows(st, S_OBJECT_COUNT, n);
}

/* ---- Post-provisioning operations ------------------------------------- */

void card_post_rec_free(card_post_rec *rec)
{
    record_free(&post_layout, rec, sizeof *rec);
}

int card_store_post_get(card_store *st, uint32_t handle, card_post_rec *out)
{
    return record_get(st, &post_layout, handle, out, sizeof *out);
}

int card_store_post_put(card_store *st, const card_post_rec *rec)
{
    return record_put(st, &post_layout, rec->handle, rec);
}

int card_store_session_posts(card_store *st, uint32_t session, uint32_t **out, size_t *n)
{
    sqlite3_stmt *s = st->stmt[S_SESSION_POSTS];

    *out = NULL;
    *n = 0;
    if (sqlite3_bind_int64(s, 1, session) != SQLITE_OK) {
        stmt_done(s);
        return SKS_ERR_STORAGE;
    }
    return collect_handles(s, out, n);
}

int card_store_session_posts_clear(card_store *st, uint32_t session)
{
    return delete_where(st, S_PURGE_POSTS, session);
}

/* ---- Keys by flag (initializeDKEK) ------------------------------------ */

/*
 * Prepared per call: initializeDKEK is rare, and a statement of its own
 * keeps this addition out of the table of prepared statements.
 */
int card_store_key_flag_used(card_store *st, uint8_t flag, int *used)
{
    sqlite3_stmt *s = NULL;
    sqlite3_int64 n = -1;

    *used = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT count(*) FROM keys WHERE (flags & ?1) = ?1", -1, &s,
                           NULL) != SQLITE_OK ||
        sqlite3_bind_int64(s, 1, flag) != SQLITE_OK) {
        sqlite3_finalize(s);
        return SKS_ERR_STORAGE;
    }
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (n < 0)
        return SKS_ERR_STORAGE;
    *used = n > 0;
    return SKS_OK;
}

/* ---- Public parts of keys, a page at a time (enumerateKeyAttributes) --- */

/*
 * The key columns without the sealed private key, in key_cols order: no
 * row's private key is read or unsealed. Prepared per call, like the query
 * above, to stay out of the table of prepared statements.
 */
#define KEY_PUBLIC_COLS                                                                            \
    "handle, session, id, pin_policy, flags, usage, algorithm, friendly_name, public_key,"         \
    " cert_path"

int card_store_key_public_page(card_store *st, uint32_t after, card_key_public_fn take, void *ctx,
                               int *more)
{
    sqlite3_stmt *s = NULL;
    int status = SKS_OK;
    int rc = SQLITE_DONE;

    *more = 0;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT " KEY_PUBLIC_COLS " FROM keys"
                           " WHERE handle > ?1 AND (flags & ?2) != 0 ORDER BY handle",
                           -1, &s, NULL) != SQLITE_OK ||
        sqlite3_bind_int64(s, 1, after) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, SKS_KEYFLAG_COMPLETE) != SQLITE_OK) {
        sqlite3_finalize(s);
        return SKS_ERR_STORAGE;
    }
    while (status == SKS_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        card_key_rec rec;
        row_reader r;
        memset(&rec, 0, sizeof rec);
        row_reader_init(&r, st, s);
        for (size_t i = 0; i < key_layout.ncols; i++) {
            if (key_layout.cols[i].kind != COL_SEALED)
                get_column(&r, &key_layout, &key_layout.cols[i], 0, &rec);
        }
        status = r.status;
        if (status == SKS_OK) {
            int taken = take(ctx, &rec);
            if (taken == CARD_PAGE_FULL)
                *more = 1;
            else if (taken != SKS_OK)
                status = taken;
        }
        record_free(&key_layout, &rec, sizeof rec);
        if (*more)
            break;
    }
    if (status == SKS_OK && !*more && rc != SQLITE_DONE)
        status = SKS_ERR_STORAGE;
    sqlite3_finalize(s);
    if (status != SKS_OK)
        *more = 0;
    return status;
}
