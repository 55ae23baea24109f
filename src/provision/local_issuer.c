/*
 * local_issuer.c - the provisioning sessions the local issuer runs with the
 * card: a new token (PUK and PIN policy), a key generated on the card, a
 * private key imported. Each is one complete session with the issuer half
 * of src/issuer: every call MACed, every attestation verified, closed or
 * aborted before returning.
 *
 * Tokens: a PUK policy "SO" holding the SO PIN (UTF-8, 10 tries) and a PIN
 * policy whose ID is the token label (UTF-8, user-defined and modifiable, 3
 * tries, 4..64 bytes, shared grouping); no key yet, so the PIN is set later
 * by unlockPIN (C_InitPIN). Keys under a token's PIN come from later
 * sessions of the same issuer (docs/protocol.md 6.9): the session declares
 * the token's policies and sends an empty PINValue, which the card accepts
 * when the PIN is verified (the user has logged in).
 *
 * Key IDs: the issuer API names keys by C strings, so a CKA_ID holding a
 * zero byte is created under a temporary ID and given its real ID with
 * setKeyAttributes once the session is closed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "issuer/sks_issuer.h"
#include "protocol/sks_crypto.h"
#include "protocol/sks_keys.h"
#include "provision/local_issuer_internal.h"

#define SESSION_LIFE_TIME 600u /* seconds */
#define PUK_ID            "SO"
#define PUK_RETRY_LIMIT   10
#define PIN_RETRY_LIMIT   3
#define PIN_MIN_LENGTH    4
#define PIN_MAX_LENGTH    64

/* One run of a provisioning session. */
typedef struct {
    sks_local_issuer *li;
    const sks_card_link *card;
    sks_issuer_session *s;
    int open; /* the card created the session: abort it on failure */
    int rc;   /* first failure: an SKS status, or -1 when the card is unreachable */
    char *err;
    size_t errlen;
} li_run;

static int run_fail(li_run *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run_fail(li_run *r, int rc, const char *fmt, ...)
{
    if (r->rc == SKS_OK) {
        r->rc = rc;
        if (r->err != NULL && r->errlen > 0) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->err, r->errlen, fmt, ap);
            va_end(ap);
        }
    }
    ERR_clear_error();
    return -1;
}

/* An issuer-side failure (bad attestation, encoding): the card is not to blame. */
static int issuer_failed(li_run *r, const char *what)
{
    return run_fail(r, SKS_ERR_CRYPTO, "local issuer: %s: %s", what, sks_issuer_error(r->s));
}

/* Send one call; `answer` keeps the bytes `resp` points into. 0 or -1. */
static int run_call(li_run *r, uint8_t method, const void *req, void *resp, sks_writer *answer)
{
    uint8_t status = SKS_OK;
    char card_err[160] = "";
    sks_writer_reset(answer);
    if (r->card->call(r->card->ctx, method, req, resp, answer, &status, card_err,
                      sizeof(card_err)) != 0)
        return run_fail(r, -1, "%s: the card cannot be reached", sks_method_name(method));
    if (status != SKS_OK)
        return run_fail(r, status, "%s: %s: %s", sks_method_name(method), sks_status_name(status),
                        card_err);
    return 0;
}

/*
 * Without manufacturer CAs, trust the path the card presents (its last
 * certificate, or any of it): the session attestation is still verified
 * with the device key, which binds the session to that card.
 */
static X509_STORE *presented_path_store(OSSL_LIB_CTX *libctx, const sks_certpath *path)
{
    X509_STORE *store = X509_STORE_new();
    if (store == NULL)
        return NULL;
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    for (size_t i = 0; i < path->count; i++) {
        X509 *c = sks_cert_parse(libctx, path->cert[i].ptr, path->cert[i].len);
        int ok = c != NULL && X509_STORE_add_cert(store, c) == 1;
        X509_free(c);
        if (!ok) {
            X509_STORE_free(store);
            ERR_clear_error();
            return NULL;
        }
    }
    return store;
}

/* createProvisioningSession and the issuer's acceptance of it. 0 or -1. */
static int session_open(li_run *r)
{
    sks_req_create_session req;
    sks_resp_create_session resp;
    sks_writer answer;
    int rc = -1;

    r->s = sks_issuer_session_new(SKS_SKALG_RSA_OAEP_SHA256, LI_ISSUER_URI, r->li->session_key);
    if (r->s == NULL)
        return run_fail(r, SKS_ERR_INTERNAL, "local issuer: cannot start a session");
    if (sks_issuer_request(r->s, 0, 0, SESSION_LIFE_TIME, &req) != 0)
        return issuer_failed(r, "session request");
    sks_writer_init(&answer);
    if (run_call(r, SKS_M_CREATE_PROVISIONING_SESSION, &req, &resp, &answer) == 0) {
        r->open = 1;
        X509_STORE *store =
            r->li->trusted != NULL
                ? r->li->trusted
                : presented_path_store(r->li->libctx, &resp.device_certificate_path);
        if (store == NULL)
            run_fail(r, SKS_ERR_CRYPTO, "local issuer: the device certificate path is unreadable");
        else if (sks_issuer_accept(r->s, store, &resp) != 0)
            issuer_failed(r, "the card's session is not acceptable");
        else
            rc = 0;
        if (store != NULL && store != r->li->trusted)
            X509_STORE_free(store);
    }
    sks_writer_free(&answer);
    return rc;
}

/* closeProvisioningSession and its attestation. 0 or -1. */
static int session_close(li_run *r)
{
    sks_issuer_msg m;
    sks_req_close_session req;
    sks_resp_close_session resp;
    sks_writer answer;
    int rc = -1;

    sks_issuer_msg_init(&m);
    sks_writer_init(&answer);
    if (sks_issuer_prepare_close(r->s, &m, &req) != 0)
        issuer_failed(r, "close");
    else if (run_call(r, SKS_M_CLOSE_PROVISIONING_SESSION, &req, &resp, &answer) == 0) {
        r->open = 0; /* closed, or aborted by the card's failed check */
        if (sks_issuer_verify_close(r->s, &m, &resp) != 0)
            issuer_failed(r, "close attestation");
        else
            rc = 0;
    }
    sks_writer_free(&answer);
    sks_issuer_msg_free(&m);
    return rc;
}

/* End a run: abort the session if it is still open, free it, return the status. */
static int run_end(li_run *r)
{
    if (r->open && r->s != NULL) {
        sks_req_abort_session req = {sks_issuer_provisioning_handle(r->s)};
        sks_writer answer;
        uint8_t status;
        char card_err[64];
        sks_writer_init(&answer);
        /* Failing calls have usually aborted it already; NO_SESSION is fine. */
        r->card->call(r->card->ctx, SKS_M_ABORT_PROVISIONING_SESSION, &req, NULL, &answer, &status,
                      card_err, sizeof(card_err));
        sks_writer_free(&answer);
    }
    sks_issuer_session_free(r->s);
    r->s = NULL;
    return r->rc;
}

static void run_init(li_run *r, sks_local_issuer *li, const sks_card_link *card, char *err,
                     size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->li = li;
    r->card = card;
    r->err = err;
    r->errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
}

/* ---- tokens -------------------------------------------------------------- */

int sks_local_issuer_create_token(sks_local_issuer *li, const sks_card_link *card,
                                  const char *label, sks_view so_pin, uint32_t *pin_policy,
                                  char *err, size_t errlen)
{
    li_run r;
    sks_issuer_msg m;
    sks_writer answer;
    run_init(&r, li, card, err, errlen);
    if (li == NULL || card == NULL || card->call == NULL || label == NULL || pin_policy == NULL)
        return run_fail(&r, SKS_ERR_OPTION, "local issuer: missing argument"), r.rc;
    if (strlen(label) < 1 || strlen(label) > SKS_ID_MAX)
        return run_fail(&r, SKS_ERR_OPTION, "a token label must be 1..%d bytes", SKS_ID_MAX), r.rc;
    if (so_pin.len < 1 || so_pin.len > SKS_PIN_MAX)
        return run_fail(&r, SKS_ERR_OPTION, "the SO PIN must be 1..%d bytes", SKS_PIN_MAX), r.rc;

    sks_issuer_msg_init(&m);
    sks_writer_init(&answer);
    if (session_open(&r) != 0)
        goto out;

    sks_req_create_puk_policy puk_req;
    sks_resp_create_puk_policy puk_resp;
    if (sks_issuer_prepare_puk_policy(r.s, PUK_ID, so_pin, SKS_PIN_UTF8, PUK_RETRY_LIMIT, &m,
                                      &puk_req) != 0) {
        issuer_failed(&r, "createPUKPolicy");
        goto out;
    }
    if (run_call(&r, SKS_M_CREATE_PUK_POLICY, &puk_req, &puk_resp, &answer) != 0)
        goto out;

    const sks_issuer_pin_policy pp = {
        .id = label,
        .puk_id = PUK_ID,
        .user_defined = 1,
        .user_modifiable = 1,
        .format = SKS_PIN_UTF8,
        .retry_limit = PIN_RETRY_LIMIT,
        .grouping = SKS_GROUPING_SHARED,
        .min_length = PIN_MIN_LENGTH,
        .max_length = PIN_MAX_LENGTH,
        .caching_support = 1, /* a token's PIN lasts for the login (C_Login) */
    };
    sks_req_create_pin_policy pin_req;
    sks_resp_create_pin_policy pin_resp;
    if (sks_issuer_prepare_pin_policy(r.s, &pp, puk_resp.puk_policy_handle, &m, &pin_req) != 0) {
        issuer_failed(&r, "createPINPolicy");
        goto out;
    }
    if (run_call(&r, SKS_M_CREATE_PIN_POLICY, &pin_req, &pin_resp, &answer) != 0)
        goto out;
    uint32_t handle = pin_resp.pin_policy_handle;
    if (session_close(&r) == 0)
        *pin_policy = handle;
out:
    sks_writer_free(&answer);
    sks_issuer_msg_free(&m);
    return run_end(&r);
}

/* ---- keys ---------------------------------------------------------------- */

/* What a key session needs besides the spec. */
typedef struct {
    char id[SKS_ID_MAX + 1]; /* the ID the session uses (C string) */
    int renamed;             /* id is temporary: setKeyAttributes after close */
    char label[SKS_FRIENDLY_NAME_MAX + 1];
    char common_name[2 * SKS_ID_MAX + 16];
    uint8_t algorithm;
} key_names;

/* Check the spec and derive the names the session uses. 0 or -1. */
static int key_names_of(li_run *r, const sks_local_key_spec *spec, key_names *k)
{
    memset(k, 0, sizeof(*k));
    if (spec->id.len < 1 || spec->id.len > SKS_ID_MAX || spec->id.ptr == NULL)
        return run_fail(r, SKS_ERR_OPTION, "a key ID must be 1..%d bytes", SKS_ID_MAX);
    if (spec->label.len > SKS_FRIENDLY_NAME_MAX ||
        (spec->label.len > 0 && memchr(spec->label.ptr, 0, spec->label.len) != NULL))
        return run_fail(r, SKS_ERR_OPTION, "a key label must be 0..%d bytes without NUL",
                        SKS_FRIENDLY_NAME_MAX);
    if (spec->usage == 0 || (spec->usage & ~SKS_USAGE_ALL) != 0)
        return run_fail(r, SKS_ERR_OPTION, "bad key usage 0x%02x", spec->usage);
    if (spec->label.len > 0)
        memcpy(k->label, spec->label.ptr, spec->label.len);

    if (memchr(spec->id.ptr, 0, spec->id.len) == NULL) {
        memcpy(k->id, spec->id.ptr, spec->id.len);
    } else {
        uint8_t rnd[8];
        if (li_random(r->li->libctx, rnd, sizeof(rnd)) != 0)
            return run_fail(r, SKS_ERR_INTERNAL, "random number generator failed");
        size_t n = (size_t)snprintf(k->id, sizeof(k->id), "sks-new-");
        for (size_t i = 0; i < sizeof(rnd); i++)
            n += (size_t)snprintf(k->id + n, sizeof(k->id) - n, "%02x", rnd[i]);
        k->renamed = 1;
    }
    if (spec->label.len > 0) {
        snprintf(k->common_name, sizeof(k->common_name), "%.64s", k->label);
    } else {
        size_t n = (size_t)snprintf(k->common_name, sizeof(k->common_name), "SKS key ");
        for (size_t i = 0; i < spec->id.len; i++)
            n += (size_t)snprintf(k->common_name + n, sizeof(k->common_name) - n, "%02x",
                                  spec->id.ptr[i]);
    }
    return 0;
}

/*
 * A SubjectPublicKeyInfo (nothing after it) in the issuer's library
 * context, or NULL. OSSL_DECODER, not d2i_PUBKEY: that one prefers a legacy
 * key of an application's default engine over the providers.
 */
static EVP_PKEY *parse_spki(OSSL_LIB_CTX *libctx, sks_view spki)
{
    EVP_PKEY *key = NULL;
    const unsigned char *p = spki.ptr;
    size_t left = spki.len;
    if (spki.len == 0)
        return NULL;
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "DER", "SubjectPublicKeyInfo",
                                                           NULL, EVP_PKEY_PUBLIC_KEY, libctx, NULL);
    if (dctx == NULL || OSSL_DECODER_from_data(dctx, &p, &left) != 1 || left != 0) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return key;
}

/* The card's record of PIN policy `handle` (its ID copied to id, NUL-terminated). */
static int find_policy(li_run *r, uint32_t handle, sks_pin_policy_info *out,
                       char id[SKS_ID_MAX + 1])
{
    sks_resp_enumerate_pin_policies resp;
    sks_writer answer;
    sks_reader rd;
    int found = 0;

    sks_writer_init(&answer);
    if (run_call(r, SKS_M_ENUMERATE_PIN_POLICIES, NULL, &resp, &answer) != 0) {
        sks_writer_free(&answer);
        return -1;
    }
    sks_reader_init(&rd, resp.policies.ptr, resp.policies.len);
    while (!found && rd.pos < rd.len) {
        sks_pin_policy_info info;
        const char *why = NULL;
        if (sks_fields_read(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq, SKS_FF_WIRE,
                            &rd, &info, &why) != SKS_OK)
            break;
        if (info.handle != handle)
            continue;
        found = info.id.len >= 1 && info.id.len <= SKS_ID_MAX &&
                memchr(info.id.ptr, 0, info.id.len) == NULL;
        if (found) {
            memcpy(id, info.id.ptr, info.id.len);
            id[info.id.len] = '\0';
            *out = info;
        }
    }
    sks_writer_free(&answer);
    if (!found)
        return run_fail(r, SKS_ERR_NO_POLICY, "local issuer: no PIN policy %u of this issuer",
                        handle);
    return 0;
}

/*
 * Tell the issuer session about a token's PUK and PIN policy, which an
 * earlier session of this issuer created (docs/protocol.md 6.9), with the
 * parameters create_token gave them; the card's record supplies the ID.
 */
static int declare_token(li_run *r, uint32_t handle, char id[SKS_ID_MAX + 1])
{
    sks_pin_policy_info info;
    memset(&info, 0, sizeof(info));
    if (find_policy(r, handle, &info, id) != 0)
        return -1;
    int has_puk = info.puk_policy_handle != 0;
    if (has_puk &&
        sks_issuer_declare_puk_policy(r->s, PUK_ID, SKS_PIN_UTF8, info.puk_retry_limit) != 0)
        return issuer_failed(r, "PUK policy of an earlier session");
    const sks_issuer_pin_policy pp = {
        .id = id,
        .puk_id = has_puk ? PUK_ID : NULL,
        .user_defined = 1,
        .user_modifiable = info.user_modifiable,
        .format = info.format,
        .retry_limit = info.retry_limit,
        .grouping = SKS_GROUPING_SHARED,
        .min_length = info.min_length,
        .max_length = info.max_length,
        .caching_support = info.caching_support,
    };
    if (sks_issuer_declare_pin_policy(r->s, &pp) != 0)
        return issuer_failed(r, "PIN policy of an earlier session");
    return 0;
}

/* createKeyPair, verified; *handle and the key's public key (generated: from the card). */
static int create_key(li_run *r, const sks_local_key_spec *spec, const key_names *k, int import,
                      uint32_t *handle, EVP_PKEY **public_key)
{
    sks_issuer_msg m;
    sks_req_create_key_pair req;
    sks_resp_create_key_pair resp;
    sks_writer answer;
    char policy_id[SKS_ID_MAX + 1] = "";
    int rc = -1;

    /* Under a token's PIN: PINValue stays empty, the card takes the verified PIN (6.9). */
    if (spec->pin_policy != 0 && declare_token(r, spec->pin_policy, policy_id) != 0)
        return -1;
    const sks_issuer_key_spec ks = {
        .id = k->id,
        .pin_policy_id = spec->pin_policy != 0 ? policy_id : NULL,
        .private_key_backup = spec->backup ? 1 : 0,
        .migratable = spec->migratable ? 1 : 0,
        .import_private_key = import ? 1 : 0,
        .key_usage = spec->usage,
        .friendly_name = k->label,
        .algorithm = k->algorithm,
    };
    sks_issuer_msg_init(&m);
    sks_writer_init(&answer);
    if (sks_issuer_prepare_key_pair(r->s, &ks, spec->pin_policy, &m, &req) != 0)
        issuer_failed(r, "createKeyPair");
    else if (run_call(r, SKS_M_CREATE_KEY_PAIR, &req, &resp, &answer) != 0)
        ;
    else if (sks_issuer_verify_key_attestation(r->s, &m, &resp) != 0)
        issuer_failed(r, "key attestation");
    else if (!import && (*public_key = parse_spki(r->li->libctx, resp.public_key)) == NULL)
        run_fail(r, SKS_ERR_CRYPTO, "local issuer: the card's public key is unreadable");
    else {
        *handle = resp.key_handle;
        rc = 0;
    }
    sks_writer_free(&answer);
    sks_issuer_msg_free(&m);
    return rc;
}

/* setCertificatePath: [end entity issued for `public_key`, local issuer CA]. */
static int set_path(li_run *r, const key_names *k, uint32_t handle, EVP_PKEY *public_key,
                    uint8_t usage)
{
    sks_issuer_msg m;
    sks_req_set_certificate_path req;
    sks_writer ee, answer;
    int rc = -1;

    sks_issuer_msg_init(&m);
    sks_writer_init(&ee);
    sks_writer_init(&answer);
    X509 *cert = li_issue_cert(r->li, public_key, k->common_name, usage);
    if (cert == NULL || sks_issuer_cert_der(cert, &ee) != 0) {
        run_fail(r, SKS_ERR_INTERNAL, "local issuer: cannot issue the key's certificate");
    } else {
        const sks_view certs[2] = {{ee.buf, ee.len}, {r->li->ca_der.buf, r->li->ca_der.len}};
        if (sks_issuer_prepare_certificate_path(r->s, k->id, handle, certs, 2, &m, &req) != 0)
            issuer_failed(r, "setCertificatePath");
        else if (run_call(r, SKS_M_SET_CERTIFICATE_PATH, &req, NULL, &answer) == 0)
            rc = 0;
    }
    X509_free(cert);
    sks_writer_free(&answer);
    sks_writer_free(&ee);
    sks_issuer_msg_free(&m);
    return rc;
}

/* importPrivateKey of the caller's key (sent encrypted under the session). */
static int put_key(li_run *r, const key_names *k, uint32_t handle, EVP_PKEY *key)
{
    sks_issuer_msg m;
    sks_req_put_private_key req;
    sks_writer answer;
    int rc = -1;

    sks_issuer_msg_init(&m);
    sks_writer_init(&answer);
    if (sks_issuer_prepare_put_pkey(r->s, SKS_M_IMPORT_PRIVATE_KEY, k->id, handle, key, &m, &req) !=
        0)
        issuer_failed(r, "importPrivateKey");
    else if (run_call(r, SKS_M_IMPORT_PRIVATE_KEY, &req, NULL, &answer) == 0)
        rc = 0;
    sks_writer_free(&answer);
    sks_issuer_msg_free(&m);
    return rc;
}

/* Give a key created under a temporary ID its real ID (the session is closed). */
static int rename_key(li_run *r, const sks_local_key_spec *spec, const key_names *k,
                      uint32_t handle)
{
    sks_req_set_key_attributes req = {
        .key_handle = handle,
        .id = spec->id,
        .friendly_name = {(const uint8_t *)k->label, strlen(k->label)},
    };
    sks_writer answer;
    sks_writer_init(&answer);
    int rc = run_call(r, SKS_M_SET_KEY_ATTRIBUTES, &req, NULL, &answer);
    sks_writer_free(&answer);
    return rc;
}

/* One session that creates (or imports) one key. */
static int key_session(sks_local_issuer *li, const sks_card_link *card,
                       const sks_local_key_spec *spec, EVP_PKEY *import_key, uint32_t *key_handle,
                       char *err, size_t errlen)
{
    li_run r;
    key_names k;
    EVP_PKEY *public_key = NULL;
    uint32_t handle = 0;

    run_init(&r, li, card, err, errlen);
    if (li == NULL || card == NULL || card->call == NULL || spec == NULL || key_handle == NULL)
        return run_fail(&r, SKS_ERR_OPTION, "local issuer: missing argument"), r.rc;
    if (key_names_of(&r, spec, &k) != 0)
        return r.rc;
    k.algorithm = import_key != NULL ? sks_key_algorithm(import_key) : spec->algorithm;
    if (k.algorithm == 0 ||
        (import_key != NULL && spec->algorithm != 0 && spec->algorithm != k.algorithm))
        return run_fail(&r, SKS_ERR_ALGORITHM, "the card cannot hold a key of this type or size"),
               r.rc;

    if (session_open(&r) == 0 &&
        create_key(&r, spec, &k, import_key != NULL, &handle, &public_key) == 0 &&
        set_path(&r, &k, handle, import_key != NULL ? import_key : public_key, spec->usage) == 0 &&
        (import_key == NULL || put_key(&r, &k, handle, import_key) == 0) &&
        session_close(&r) == 0 && (!k.renamed || rename_key(&r, spec, &k, handle) == 0))
        *key_handle = handle;
    EVP_PKEY_free(public_key);
    return run_end(&r);
}

int sks_local_issuer_generate(sks_local_issuer *li, const sks_card_link *card,
                              const sks_local_key_spec *spec, uint32_t *key_handle, char *err,
                              size_t errlen)
{
    return key_session(li, card, spec, NULL, key_handle, err, errlen);
}

int sks_local_issuer_import(sks_local_issuer *li, const sks_card_link *card,
                            const sks_local_key_spec *spec, EVP_PKEY *private_key,
                            uint32_t *key_handle, char *err, size_t errlen)
{
    if (private_key == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "local issuer: no private key to import");
        return SKS_ERR_OPTION;
    }
    return key_session(li, card, spec, private_key, key_handle, err, errlen);
}
