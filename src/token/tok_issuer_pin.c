/*
 * tok_issuer_pin.c - the issuer token's PINs, as SoftHSM has them: C_InitToken
 * sets the SO PIN (and empties an initialised token), the SO sets the user
 * PIN with C_InitPIN, C_SetPIN changes either.
 *
 * The token has a random 32-byte master key that seals its private objects
 * (tok_issuer_store.c). Each PIN's record keeps the master key sealed
 * (AES-256-GCM) under a key derived from the PIN with scrypt (N = 2^15,
 * r = 8, p = 1, a random 16-byte salt; the parameters are stored with the
 * record). A PIN is right when the master key opens under it; the module
 * keeps the master key in memory only while the SO or the user is logged
 * in, and never the PIN. There is no retry counter: scrypt makes each
 * guess cost about 32 MiB of memory and a tenth of a second.
 *
 * The token file (<state_dir>/issuer-token/token, tok_issuer_int.h):
 *   byte   version (1)
 *   bytes  serial (8 random bytes, shown as 16 hex digits)
 *   bytes  label (0..32)
 *   byte   initialised (0/1)
 *   blob   SO PIN record (empty: none)
 *   blob   user PIN record (empty: none)
 * where a PIN record is: byte log2(N), byte r, byte p, bytes salt (16),
 * bytes IV (12), bytes sealed master key (48).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "protocol/sks_crypto.h"
#include "token/tok_issuer_int.h"
#include "token/tok_issuer_token.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"

#define TOKEN_FILE     "token"
#define TOKEN_VERSION  1
#define TOKEN_FILE_MAX 1024
#define SCRYPT_LOG2_N  15
#define SCRYPT_R       8
#define SCRYPT_P       1
#define PIN_AAD_SO     "SKS issuer SO PIN"
#define PIN_AAD_USER   "SKS issuer user PIN"

static struct tok_issuer_token *token(void)
{
    return tok_g.issuer_token;
}

/* ---- the token file ---------------------------------------------------------- */

static void put_record(sks_writer *w, const tok_pin_record *r)
{
    sks_writer rec;
    sks_writer_init(&rec);
    if (r->set) {
        sks_put_byte(&rec, r->log2_n);
        sks_put_byte(&rec, r->r);
        sks_put_byte(&rec, r->p);
        sks_put_bytes(&rec, r->salt, sizeof(r->salt));
        sks_put_bytes(&rec, r->iv, sizeof(r->iv));
        sks_put_bytes(&rec, r->sealed, sizeof(r->sealed));
    }
    sks_put_blob(w, rec.buf, rec.len);
    if (rec.failed)
        w->failed = 1;
    sks_writer_free(&rec);
}

/* Copy a view of exactly sizeof-dst bytes. */
static int take(sks_view v, void *dst, size_t n)
{
    if (v.len != n)
        return -1;
    memcpy(dst, v.ptr, n);
    return 0;
}

/* Parse a PIN record; scrypt parameters outside sane bounds make it invalid. */
static int get_record(sks_view blob, tok_pin_record *r)
{
    memset(r, 0, sizeof(*r));
    if (blob.len == 0)
        return 0;
    sks_reader rd;
    sks_view salt, iv, sealed;
    sks_reader_init(&rd, blob.ptr, blob.len);
    if (sks_get_byte(&rd, &r->log2_n) != 0 || sks_get_byte(&rd, &r->r) != 0 ||
        sks_get_byte(&rd, &r->p) != 0 || sks_get_bytes(&rd, &salt) != 0 ||
        sks_get_bytes(&rd, &iv) != 0 || sks_get_bytes(&rd, &sealed) != 0 ||
        sks_reader_finish(&rd) != 0 || take(salt, r->salt, sizeof(r->salt)) != 0 ||
        take(iv, r->iv, sizeof(r->iv)) != 0 || take(sealed, r->sealed, sizeof(r->sealed)) != 0)
        return -1;
    if (r->log2_n < 10 || r->log2_n > 20 || r->r < 1 || r->r > 32 || r->p < 1 || r->p > 16)
        return -1;
    r->set = 1;
    return 0;
}

static int parse_token_file(struct tok_issuer_token *t, sks_view file)
{
    sks_reader rd;
    uint8_t version, init;
    sks_view serial, label, so, user;
    sks_reader_init(&rd, file.ptr, file.len);
    if (sks_get_byte(&rd, &version) != 0 || version != TOKEN_VERSION ||
        sks_get_bytes(&rd, &serial) != 0 || sks_get_bytes(&rd, &label) != 0 ||
        sks_get_byte(&rd, &init) != 0 || init > 1 || sks_get_blob(&rd, &so) != 0 ||
        sks_get_blob(&rd, &user) != 0 || sks_reader_finish(&rd) != 0 ||
        take(serial, t->serial, sizeof(t->serial)) != 0 || label.len > TOK_LABEL_LEN ||
        (label.len > 0 && memchr(label.ptr, 0, label.len) != NULL) || get_record(so, &t->so) != 0 ||
        get_record(user, &t->user) != 0 || (init && !t->so.set))
        return -1;
    if (label.len > 0)
        memcpy(t->label, label.ptr, label.len);
    t->label[label.len] = '\0';
    t->initialized = init;
    return 0;
}

CK_RV tok_issuer_meta_save(const struct tok_issuer_token *t)
{
    sks_writer w;
    sks_writer_init(&w);
    sks_put_byte(&w, TOKEN_VERSION);
    sks_put_bytes(&w, t->serial, sizeof(t->serial));
    sks_put_bytes(&w, t->label, strlen(t->label));
    sks_put_byte(&w, t->initialized ? 1 : 0);
    put_record(&w, &t->so);
    put_record(&w, &t->user);
    CK_RV rv = w.failed ? CKR_HOST_MEMORY : tok_issuer_write_file(t->dir, TOKEN_FILE, w.buf, w.len);
    sks_writer_free(&w);
    return rv;
}

CK_RV tok_issuer_meta_load(struct tok_issuer_token *t)
{
    sks_writer file;
    sks_writer_init(&file);
    CK_RV rv = tok_issuer_read_file(t->dir, TOKEN_FILE, TOKEN_FILE_MAX, &file);
    if (rv == CKR_OK && parse_token_file(t, (sks_view){file.buf, file.len}) != 0) {
        tok_log(TOK_LOG_ERROR, "issuer token: %s/" TOKEN_FILE " is damaged", t->dir);
        rv = CKR_DEVICE_ERROR;
    } else if (rv == CKR_OBJECT_HANDLE_INVALID) {
        /* A new token: uninitialised, with its serial from now on. */
        memset(&t->so, 0, sizeof(t->so));
        memset(&t->user, 0, sizeof(t->user));
        t->initialized = 0;
        snprintf(t->label, sizeof(t->label), "SKS issuer");
        rv = tok_ossl_random(t->serial, sizeof(t->serial)) == 0 ? tok_issuer_meta_save(t)
                                                                : CKR_FUNCTION_FAILED;
    }
    sks_writer_free(&file);
    return rv;
}

/* ---- PIN records ---------------------------------------------------------------- */

/* The key a PIN's record is sealed under (scrypt). */
static CK_RV pin_key(const tok_pin_record *r, const CK_UTF8CHAR *pin, CK_ULONG len, uint8_t key[32])
{
    EVP_KDF *kdf = EVP_KDF_fetch(tok_ossl_ctx(), "SCRYPT", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    uint64_t n = (uint64_t)1 << r->log2_n;
    uint32_t rr = r->r, p = r->p;
    OSSL_PARAM params[] = {
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pin, len),
        OSSL_PARAM_octet_string(OSSL_KDF_PARAM_SALT, (void *)r->salt, sizeof(r->salt)),
        OSSL_PARAM_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr),
        OSSL_PARAM_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_END,
    };
    int ok = ctx != NULL && EVP_KDF_derive(ctx, key, 32, params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? CKR_OK : CKR_FUNCTION_FAILED;
}

/* Open a record (the SO's or the user's) with a PIN: the master key, or CKR_PIN_INCORRECT. */
static CK_RV open_record(const tok_pin_record *r, int so, const CK_UTF8CHAR *pin, CK_ULONG len,
                         uint8_t master[32])
{
    uint8_t key[32];
    const char *aad = so ? PIN_AAD_SO : PIN_AAD_USER;
    CK_RV rv = pin_key(r, pin, len, key);
    if (rv == CKR_OK)
        rv = tok_soft_gcm_open(key, r->iv, (const uint8_t *)aad, strlen(aad), r->sealed,
                               sizeof(r->sealed), master);
    if (rv == CKR_ENCRYPTED_DATA_INVALID)
        rv = CKR_PIN_INCORRECT;
    OPENSSL_cleanse(key, sizeof(key));
    return rv;
}

/* Seal the master key under a new PIN into a new record (the SO's or the user's). */
static CK_RV seal_record(tok_pin_record *r, int so, const CK_UTF8CHAR *pin, CK_ULONG len,
                         const uint8_t master[32])
{
    tok_pin_record fresh = {1, SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P, {0}, {0}, {0}};
    uint8_t key[32];
    const char *aad = so ? PIN_AAD_SO : PIN_AAD_USER;
    if (tok_ossl_random(fresh.salt, sizeof(fresh.salt)) != 0 ||
        tok_ossl_random(fresh.iv, sizeof(fresh.iv)) != 0)
        return CKR_FUNCTION_FAILED;
    CK_RV rv = pin_key(&fresh, pin, len, key);
    if (rv == CKR_OK)
        rv = tok_soft_gcm_seal(key, fresh.iv, (const uint8_t *)aad, strlen(aad), master,
                               TOK_ISSUER_MASTER_LEN, fresh.sealed);
    OPENSSL_cleanse(key, sizeof(key));
    if (rv == CKR_OK)
        *r = fresh;
    return rv;
}

static CK_RV pin_length(CK_ULONG len)
{
    return len < TOK_ISSUER_PIN_MIN || len > SKS_PIN_MAX ? CKR_PIN_LEN_RANGE : CKR_OK;
}

/* ---- the PKCS#11 side ------------------------------------------------------------- */

CK_RV tok_issuer_login(tok_slot *slot, CK_USER_TYPE user, const CK_UTF8CHAR *pin, CK_ULONG len)
{
    struct tok_issuer_token *t = token();
    if (t == NULL)
        return CKR_TOKEN_NOT_PRESENT;
    if (slot->login == user)
        return CKR_USER_ALREADY_LOGGED_IN;
    if (slot->login != TOK_NOBODY)
        return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
    if (user == CKU_SO && tok_session_count(slot->id, 0) != tok_session_count(slot->id, 1))
        return CKR_SESSION_READ_ONLY_EXISTS;
    const tok_pin_record *r = user == CKU_SO ? &t->so : &t->user;
    if (!t->initialized || !r->set)
        return CKR_USER_PIN_NOT_INITIALIZED;
    uint8_t master[TOK_ISSUER_MASTER_LEN];
    CK_RV rv = open_record(r, user == CKU_SO, pin, len, master);
    if (rv == CKR_OK) {
        memcpy(t->master, master, sizeof(master));
        t->have_master = 1;
        slot->login = user;
        if (user == CKU_USER)
            tok_issuer_store_load(t, 1);
    }
    OPENSSL_cleanse(master, sizeof(master));
    return rv;
}

CK_RV tok_issuer_logout(void)
{
    struct tok_issuer_token *t = token();
    if (t != NULL) {
        OPENSSL_cleanse(t->master, sizeof(t->master));
        t->have_master = 0;
    }
    return CKR_OK;
}

CK_RV tok_issuer_init_token(const CK_UTF8CHAR *so_pin, CK_ULONG len, const char *label)
{
    struct tok_issuer_token *t = token();
    uint8_t master[TOK_ISSUER_MASTER_LEN];
    if (t == NULL)
        return CKR_TOKEN_NOT_PRESENT;
    tok_pin_record so;
    CK_RV rv = pin_length(len);
    /* An initialised token is emptied only with its SO PIN. */
    int had_objects = t->initialized;
    if (rv == CKR_OK && t->initialized)
        rv = open_record(&t->so, 1, so_pin, len, master);
    /*
     * A new master key; the objects go only once the new token file is
     * saved (a failed save leaves the token as it was, and after a crash in
     * between the old objects no longer open under the new master key).
     */
    if (rv == CKR_OK && tok_ossl_random_secret(master, sizeof(master)) != 0)
        rv = CKR_FUNCTION_FAILED;
    if (rv == CKR_OK)
        rv = seal_record(&so, 1, so_pin, len, master);
    if (rv == CKR_OK) {
        tok_pin_record was_so = t->so, was_user = t->user;
        int was_initialized = t->initialized;
        char was_label[sizeof(t->label)];
        memcpy(was_label, t->label, sizeof(was_label));
        t->so = so;
        memset(&t->user, 0, sizeof(t->user));
        t->initialized = 1;
        snprintf(t->label, sizeof(t->label), "%s", label);
        rv = tok_issuer_meta_save(t);
        if (rv != CKR_OK) {
            t->so = was_so;
            t->user = was_user;
            t->initialized = was_initialized;
            memcpy(t->label, was_label, sizeof(t->label));
        } else {
            if (had_objects)
                rv = tok_issuer_store_wipe(t);
            tok_log(TOK_LOG_INFO, "issuer token initialised as \"%s\"", t->label);
        }
    }
    OPENSSL_cleanse(master, sizeof(master));
    return rv;
}

CK_RV tok_issuer_init_pin(tok_session *s, tok_slot *slot, const CK_UTF8CHAR *pin, CK_ULONG len)
{
    struct tok_issuer_token *t = token();
    if (t == NULL)
        return CKR_TOKEN_NOT_PRESENT;
    if (slot->login != CKU_SO || !t->have_master)
        return CKR_USER_NOT_LOGGED_IN;
    if (!tok_session_rw(s))
        return CKR_SESSION_READ_ONLY;
    if (pin == NULL)
        return CKR_ARGUMENTS_BAD;
    CK_RV rv = pin_length(len);
    tok_pin_record was = t->user;
    if (rv == CKR_OK)
        rv = seal_record(&t->user, 0, pin, len, t->master);
    if (rv == CKR_OK && (rv = tok_issuer_meta_save(t)) != CKR_OK)
        t->user = was;
    return rv;
}

CK_RV tok_issuer_set_pin(tok_session *s, tok_slot *slot, const CK_UTF8CHAR *old_pin,
                         CK_ULONG old_len, const CK_UTF8CHAR *new_pin, CK_ULONG new_len)
{
    struct tok_issuer_token *t = token();
    uint8_t master[TOK_ISSUER_MASTER_LEN];
    if (t == NULL)
        return CKR_TOKEN_NOT_PRESENT;
    if (!tok_session_rw(s))
        return CKR_SESSION_READ_ONLY;
    if (old_pin == NULL || new_pin == NULL)
        return CKR_ARGUMENTS_BAD;
    /* The SO's PIN when the SO is logged in, else the user's. */
    int so = slot->login == CKU_SO;
    tok_pin_record *r = so ? &t->so : &t->user;
    if (!t->initialized || !r->set)
        return CKR_USER_PIN_NOT_INITIALIZED;
    CK_RV rv = pin_length(new_len);
    if (rv == CKR_OK)
        rv = open_record(r, so, old_pin, old_len, master);
    tok_pin_record was = *r;
    if (rv == CKR_OK)
        rv = seal_record(r, so, new_pin, new_len, master);
    if (rv == CKR_OK && (rv = tok_issuer_meta_save(t)) != CKR_OK)
        *r = was;
    OPENSSL_cleanse(master, sizeof(master));
    return rv;
}
