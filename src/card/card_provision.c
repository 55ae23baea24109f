/*
 * card_provision.c - the provisioning methods that fill an open session
 * (docs/protocol.md 6.4-6.8): createPUKPolicy, createPINPolicy,
 * createKeyPair, setCertificatePath, restorePrivateKey and importPrivateKey,
 * plus the check of a PIN against its policy (also used by the PIN methods).
 * A policy named by createPINPolicy or createKeyPair may also be one of the
 * same issuer's earlier, closed sessions (6.9).
 *
 * Every handler follows the same order: load the session (from then on any
 * failure aborts it), resolve the handles the call names and fill in the
 * MAC-only fields from the card's own records, verify the MAC, check the
 * arguments and card limits, and only then do the work and store it.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../protocol/sks_crypto.h"
#include "card_keymat.h"
#include "card_session.h"

/* ---- PIN values against their policy ---------------------------------- */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t more;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            more = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i - 1 < more)
            return 0;
        for (size_t k = 1; k <= more; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += more + 1;
    }
    return 1;
}

int card_pin_format_ok(uint8_t format, const uint8_t *value, size_t n)
{
    switch (format) {
    case SKS_PIN_NUMERIC:
        for (size_t i = 0; i < n; i++) {
            if (value[i] < '0' || value[i] > '9')
                return 0;
        }
        return 1;
    case SKS_PIN_ALPHANUMERIC:
        for (size_t i = 0; i < n; i++) {
            int digit = value[i] >= '0' && value[i] <= '9';
            int upper = value[i] >= 'A' && value[i] <= 'Z';
            if (!digit && !upper)
                return 0;
        }
        return 1;
    case SKS_PIN_UTF8:
        return utf8_valid(value, n);
    case SKS_PIN_BINARY:
        return 1;
    default:
        return 0;
    }
}

/* The whole value ascends or descends by one at every step ("1234", "4321"). */
static int is_sequence(const uint8_t *p, size_t n)
{
    if (n < 2)
        return 0;
    int step = (int)p[1] - (int)p[0];
    if (step != 1 && step != -1)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if ((int)p[i] - (int)p[i - 1] != step)
            return 0;
    }
    return 1;
}

/* Longest run of one repeated byte. */
static size_t longest_run(const uint8_t *p, size_t n)
{
    size_t best = n > 0, run = n > 0;
    for (size_t i = 1; i < n; i++) {
        run = p[i] == p[i - 1] ? run + 1 : 1;
        if (run > best)
            best = run;
    }
    return best;
}

int card_pin_check_policy(const card_pin_rec *policy, const uint8_t *pin, size_t n,
                          const char **why)
{
    uint8_t pr = policy->pattern_restrictions;
    if (n < policy->min_length || n > policy->max_length)
        *why = "PIN length is outside the policy";
    else if (!card_pin_format_ok(policy->format, pin, n))
        *why = "PIN has characters its format does not allow";
    else if ((pr & SKS_PATTERN_TWO_IN_A_ROW) && longest_run(pin, n) >= 2)
        *why = "PIN repeats a character two times in a row";
    else if ((pr & SKS_PATTERN_THREE_IN_A_ROW) && longest_run(pin, n) >= 3)
        *why = "PIN repeats a character three times in a row";
    else if ((pr & SKS_PATTERN_SEQUENCE) && is_sequence(pin, n))
        *why = "PIN is a sequence";
    else
        return SKS_OK;
    return SKS_ERR_OPTION;
}

/* ---- Lookups ---------------------------------------------------------- */

static int id_equal(const uint8_t *id, size_t len, sks_view v)
{
    return len == v.len && memcmp(id, v.ptr, len) == 0;
}

/*
 * Is a PUK policy (want_pin 0) or PIN policy (want_pin 1) of `session` named
 * `id`? Objects of a session have handles between the session's handle and
 * `below` (a handle allocated by this call), so only those are looked at.
 */
static int policy_id_taken(card_call *call, uint32_t session, uint32_t below, int want_pin,
                           sks_view id)
{
    card_store *st = call->card->store;
    for (uint32_t h = session + 1; h < below; h++) {
        int taken = 0, rc;
        if (want_pin) {
            card_pin_rec p;
            memset(&p, 0, sizeof p);
            rc = card_store_pin_get(st, h, &p);
            taken = rc == SKS_OK && p.session == session && id_equal(p.id, p.id_len, id);
            card_pin_rec_free(&p);
        } else {
            card_puk_rec p;
            memset(&p, 0, sizeof p);
            rc = card_store_puk_get(st, h, &p);
            taken = rc == SKS_OK && p.session == session && id_equal(p.id, p.id_len, id);
            card_puk_rec_free(&p);
        }
        if (rc != SKS_OK && rc != SKS_ERR_NO_POLICY)
            return card_fail(call, SKS_ERR_STORAGE, "cannot read policy %u", h);
        if (taken)
            return card_fail(call, SKS_ERR_OPTION, "%s policy ID is already used in the session",
                             want_pin ? "PIN" : "PUK");
    }
    return SKS_OK;
}

/* Is a key of `session` named `id`? */
static int key_id_taken(card_call *call, uint32_t session, sks_view id)
{
    uint32_t *handles = NULL;
    size_t n = 0;
    int rc = card_store_session_keys(call->card->store, session, &handles, &n);
    if (rc != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot list the session's keys");
    for (size_t i = 0; i < n && rc == SKS_OK; i++) {
        card_key_rec k;
        memset(&k, 0, sizeof k);
        if (card_store_key_get(call->card->store, handles[i], &k) != SKS_OK)
            rc = card_fail(call, SKS_ERR_STORAGE, "cannot read key %u", handles[i]);
        else if (id_equal(k.id, k.id_len, id))
            rc = card_fail(call, SKS_ERR_OPTION, "key ID is already used in the session");
        card_key_rec_free(&k);
    }
    free(handles);
    return rc;
}

/*
 * The end of load_puk and load_pin: `read_rc`, the status of reading policy
 * `handle` (kind "PUK" or "PIN"), then the rule of 6.9 for session `s`
 * (skipped when `s` is NULL) on the policy's `owner` session. SKS_OK, else
 * the failure, NO_POLICY or STORAGE, recorded.
 */
static int check_policy_use(card_call *call, const card_session_rec *s, int read_rc, uint32_t owner,
                            const char *kind, uint32_t handle)
{
    int rc = read_rc;
    if (rc == SKS_OK && s != NULL) {
        int usable = card_session_same_issuer(call, s, owner);
        rc = usable > 0 ? SKS_OK : usable == 0 ? SKS_ERR_NO_POLICY : -usable;
    }
    if (rc != SKS_OK)
        return card_fail(call, rc == SKS_ERR_NO_POLICY ? rc : SKS_ERR_STORAGE,
                         "%s policy %u is not a policy this session may use", kind, handle);
    return SKS_OK;
}

/*
 * The PUK policy `handle` for session `s` (its own or, by 6.9, of the same
 * issuer's earlier session), else NO_POLICY. With `s` NULL any PUK policy
 * is taken (the PUK of a PIN policy already checked when it was created).
 */
static int load_puk(card_call *call, const card_session_rec *s, uint32_t handle, card_puk_rec *puk)
{
    memset(puk, 0, sizeof *puk);
    if (handle == SKS_HANDLE_DEVICE)
        return card_fail(call, SKS_ERR_OPTION, "a device PUK is not supported");
    int rc = card_store_puk_get(call->card->store, handle, puk);
    rc = check_policy_use(call, s, rc, puk->session, "PUK", handle);
    if (rc != SKS_OK)
        card_puk_rec_free(puk);
    return rc;
}

/* The PIN policy `handle` for session `s` (as load_puk), else NO_POLICY. */
static int load_pin(card_call *call, const card_session_rec *s, uint32_t handle, card_pin_rec *pin)
{
    memset(pin, 0, sizeof *pin);
    if (handle == SKS_HANDLE_DEVICE)
        return card_fail(call, SKS_ERR_OPTION, "a device PIN is not supported");
    int rc = card_store_pin_get(call->card->store, handle, pin);
    rc = check_policy_use(call, s, rc, pin->session, "PIN", handle);
    if (rc != SKS_OK)
        card_pin_rec_free(pin);
    return rc;
}

/* The key `handle` of session `session`, else NO_KEY. */
static int load_key(card_call *call, uint32_t session, uint32_t handle, card_key_rec *key)
{
    memset(key, 0, sizeof *key);
    int rc = card_store_key_get(call->card->store, handle, key);
    if (rc == SKS_OK && key->session != session)
        rc = SKS_ERR_NO_KEY;
    if (rc != SKS_OK) {
        card_key_rec_free(key);
        return card_fail(call, rc == SKS_ERR_NO_KEY ? rc : SKS_ERR_STORAGE,
                         "key %u is not a key of this session", handle);
    }
    return SKS_OK;
}

static int next_handle(card_call *call, uint32_t *handle)
{
    if (card_store_next_handle(call->card->store, handle) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot allocate a handle");
    return SKS_OK;
}

/* ---- createPUKPolicy -------------------------------------------------- */

int card_m_create_puk_policy(card_call *call, const void *reqp, void *respp)
{
    const sks_req_create_puk_policy *req = reqp;
    sks_resp_create_puk_policy *resp = respp;
    card_session_rec s;
    card_puk_rec puk;

    memset(&puk, 0, sizeof puk);
    int rc = card_session_load(call, req->provisioning_handle, &s);
    if (rc != SKS_OK)
        return rc;
    rc = card_session_verify_mac(call, &s, SKS_M_CREATE_PUK_POLICY, req, req->mac);
    if (rc == SKS_OK && req->format > SKS_PIN_BINARY)
        rc = card_fail(call, SKS_ERR_OPTION, "unknown PUK format %u", req->format);
    if (rc == SKS_OK)
        rc = card_session_decrypt(call, &s, req->encrypted_value, &puk.value);
    if (rc == SKS_OK && (puk.value.len < 1 || puk.value.len > SKS_PIN_MAX ||
                         !card_pin_format_ok(req->format, puk.value.ptr, puk.value.len)))
        rc = card_fail(call, SKS_ERR_OPTION, "PUK value does not fit its format and length");
    if (rc == SKS_OK)
        rc = next_handle(call, &puk.handle);
    if (rc == SKS_OK)
        rc = policy_id_taken(call, s.handle, puk.handle, 0, req->id);
    if (rc == SKS_OK) {
        puk.session = s.handle;
        memcpy(puk.id, req->id.ptr, req->id.len);
        puk.id_len = (uint8_t)req->id.len;
        puk.format = req->format;
        puk.retry_limit = req->retry_limit;
        puk.tries_left = req->retry_limit;
        if (card_store_puk_put(call->card->store, &puk) != SKS_OK)
            rc = card_fail(call, SKS_ERR_STORAGE, "cannot store the PUK policy");
    }
    if (rc == SKS_OK)
        rc = card_session_save(call, &s);
    if (rc == SKS_OK)
        resp->puk_policy_handle = puk.handle;
    card_puk_rec_free(&puk);
    card_session_rec_free(&s);
    return rc;
}

/* ---- createPINPolicy -------------------------------------------------- */

/* The policy parameters of 6.5, OPTION when outside their values. */
static int check_pin_policy_args(card_call *call, const sks_req_create_pin_policy *req)
{
    if (req->format > SKS_PIN_BINARY)
        return card_fail(call, SKS_ERR_OPTION, "unknown PIN format %u", req->format);
    if (req->retry_limit == 0)
        return card_fail(call, SKS_ERR_OPTION, "PIN RetryLimit must be 1..255");
    if (req->grouping > SKS_GROUPING_SHARED)
        return card_fail(call, SKS_ERR_OPTION, "unknown PIN Grouping %u", req->grouping);
    if (req->pattern_restrictions &
        ~(SKS_PATTERN_TWO_IN_A_ROW | SKS_PATTERN_THREE_IN_A_ROW | SKS_PATTERN_SEQUENCE))
        return card_fail(call, SKS_ERR_OPTION, "unknown PatternRestrictions bits");
    if (req->min_length < 1 || req->min_length > req->max_length || req->max_length > SKS_PIN_MAX)
        return card_fail(call, SKS_ERR_OPTION,
                         "PIN lengths must be 1 <= MinLength <= MaxLength "
                         "<= 128");
    return SKS_OK;
}

int card_m_create_pin_policy(card_call *call, const void *reqp, void *respp)
{
    const sks_req_create_pin_policy *req = reqp;
    sks_resp_create_pin_policy *resp = respp;
    sks_req_create_pin_policy r = *req;
    card_session_rec s;
    card_puk_rec puk;
    card_pin_rec pin;

    memset(&puk, 0, sizeof puk);
    memset(&pin, 0, sizeof pin);
    int rc = card_session_load(call, req->provisioning_handle, &s);
    if (rc != SKS_OK)
        return rc;
    r.puk_id = (sks_view){NULL, 0};
    if (req->puk_policy_handle != SKS_HANDLE_NONE) {
        rc = load_puk(call, &s, req->puk_policy_handle, &puk);
        r.puk_id = (sks_view){puk.id, puk.id_len};
    }
    if (rc == SKS_OK)
        rc = card_session_verify_mac(call, &s, SKS_M_CREATE_PIN_POLICY, &r, r.mac);
    if (rc == SKS_OK)
        rc = check_pin_policy_args(call, &r);
    if (rc == SKS_OK)
        rc = next_handle(call, &pin.handle);
    if (rc == SKS_OK)
        rc = policy_id_taken(call, s.handle, pin.handle, 1, r.id);
    if (rc == SKS_OK) {
        pin.session = s.handle;
        memcpy(pin.id, r.id.ptr, r.id.len);
        pin.id_len = (uint8_t)r.id.len;
        pin.puk_handle = r.puk_policy_handle;
        pin.user_defined = r.user_defined;
        pin.user_modifiable = r.user_modifiable;
        pin.format = r.format;
        pin.retry_limit = r.retry_limit;
        pin.grouping = r.grouping;
        pin.pattern_restrictions = r.pattern_restrictions;
        pin.min_length = r.min_length;
        pin.max_length = r.max_length;
        pin.caching_support = r.caching_support;
        pin.input_method = r.input_method;
        pin.tries_left = r.retry_limit;
        if (card_store_pin_put(call->card->store, &pin) != SKS_OK)
            rc = card_fail(call, SKS_ERR_STORAGE, "cannot store the PIN policy");
    }
    if (rc == SKS_OK)
        rc = card_session_save(call, &s);
    if (rc == SKS_OK)
        resp->pin_policy_handle = pin.handle;
    card_pin_rec_free(&pin);
    card_puk_rec_free(&puk);
    card_session_rec_free(&s);
    return rc;
}

/* ---- createKeyPair ---------------------------------------------------- */

/* What createKeyPair works with besides the request. */
typedef struct {
    card_session_rec s;
    int has_pin, has_puk;
    int pin_earlier, puk_earlier; /* the policy belongs to an earlier session (6.9) */
    card_pin_rec pin_policy;
    card_puk_rec puk_policy;
    card_buf pin;  /* clear PIN of this key */
    int pin_fixed; /* this key fixes the policy's PIN */
    card_key_rec key;
} key_pair_ctx;

static void key_pair_ctx_free(key_pair_ctx *c)
{
    card_session_rec_free(&c->s);
    card_pin_rec_free(&c->pin_policy);
    card_puk_rec_free(&c->puk_policy);
    card_buf_free(&c->pin);
    card_key_rec_free(&c->key);
}

/* Flags, usage, algorithm and limits of 6.6 (after the MAC). */
static int check_key_args(card_call *call, key_pair_ctx *c, const sks_req_create_key_pair *r)
{
    if (r->key_usage == 0 || (r->key_usage & ~SKS_USAGE_ALL) != 0)
        return card_fail(call, SKS_ERR_OPTION, "KeyUsage must be a non-empty set of 1, 2, 4");
    if (!card_keymat_alg_supported(r->algorithm))
        return card_fail(call, SKS_ERR_ALGORITHM, "unsupported AlgorithmData 0x%02x", r->algorithm);
    if (r->updatable && !c->s.updatable)
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "an Updatable key needs an Updatable session");
    if (r->delete_protected && !c->has_puk)
        return card_fail(call, SKS_ERR_NOT_ALLOWED,
                         "DeleteProtected needs a PUK on the PIN policy");
    if (r->private_key_backup && r->import_private_key)
        return card_fail(call, SKS_ERR_OPTION,
                         "PrivateKeyBackup and ImportPrivateKey exclude "
                         "each other");
    uint32_t used = 0;
    if (card_store_key_count(call->card->store, &used) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot count the keys");
    if (used >= call->card->max_keys)
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "the card holds its maximum of %u keys",
                         call->card->max_keys);
    return key_id_taken(call, c->s.handle, r->id);
}

/*
 * An empty PINValue stands for the policy's PIN when that PIN is set and
 * verified in this card session (6.9): the user has logged in.
 */
static int key_pin_from_login(card_call *call, key_pair_ctx *c)
{
    const card_buf *set = &c->pin_policy.value;
    if (set->len == 0)
        return card_fail(call, SKS_ERR_OPTION, "PINValue is empty and the policy has no PIN yet");
    if (!card_pin_is_verified(call->card, c->pin_policy.handle))
        return card_fail(call, SKS_ERR_NOT_AUTHENTICATED,
                         "PINValue is empty and the PIN of policy %u is not verified",
                         c->pin_policy.handle);
    if (card_buf_set(&c->pin, set->ptr, set->len) != 0)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    return SKS_OK;
}

/* PINValue against the policy and the PIN grouping rule (5.6). */
static int check_key_pin(card_call *call, key_pair_ctx *c, const sks_req_create_key_pair *r)
{
    if (!c->has_pin) {
        if (r->pin_value.len != 0)
            return card_fail(call, SKS_ERR_OPTION, "PINValue must be empty without a PIN policy");
        return SKS_OK;
    }
    /* A key of a later session cannot be the one that sets the PIN. */
    if (c->pin_earlier && c->pin_policy.value.len == 0)
        return card_fail(call, SKS_ERR_NOT_ALLOWED,
                         "PIN policy %u of an earlier session has no PIN yet (unlockPIN sets it)",
                         c->pin_policy.handle);
    if (r->pin_value.len == 0)
        return key_pin_from_login(call, c);
    int rc;
    if (c->pin_policy.user_defined)
        rc = card_buf_set(&c->pin, r->pin_value.ptr, r->pin_value.len) == 0
                 ? SKS_OK
                 : card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    else
        rc = card_session_decrypt(call, &c->s, r->pin_value, &c->pin);
    if (rc != SKS_OK)
        return rc;
    const char *why = NULL;
    if (card_pin_check_policy(&c->pin_policy, c->pin.ptr, c->pin.len, &why) != SKS_OK)
        return card_fail(call, SKS_ERR_OPTION, "%s", why);
    card_buf *set = &c->pin_policy.value;
    if (set->len == 0) {
        if (card_buf_set(set, c->pin.ptr, c->pin.len) != 0)
            return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
        c->pin_policy.tries_left = c->pin_policy.retry_limit;
        c->pin_fixed = 1;
    } else if (set->len != c->pin.len || CRYPTO_memcmp(set->ptr, c->pin.ptr, set->len) != 0) {
        return card_fail(call, SKS_ERR_OPTION, "PIN differs from the PIN of its policy");
    }
    return SKS_OK;
}

/* The policy half of the key attestation (6.6), from the card's records. */
static void policy_attestation(const key_pair_ctx *c, sks_policy_attestation *pa)
{
    memset(pa, 0, sizeof *pa);
    pa->has_puk = c->has_puk;
    if (c->has_puk) {
        pa->puk_id = (sks_view){c->puk_policy.id, c->puk_policy.id_len};
        pa->puk_retry_limit = c->puk_policy.retry_limit;
        /* A value of an earlier session's policy is attested as empty (6.9). */
        if (!c->puk_earlier)
            pa->puk_value = card_buf_view(&c->puk_policy.value);
        pa->puk_format = c->puk_policy.format;
    }
    pa->has_pin = c->has_pin;
    if (c->has_pin) {
        const card_pin_rec *p = &c->pin_policy;
        pa->pin_id = (sks_view){p->id, p->id_len};
        pa->user_defined = p->user_defined;
        if (!c->pin_earlier)
            pa->pin_value = card_buf_view(&c->pin);
        pa->user_modifiable = p->user_modifiable;
        pa->format = p->format;
        pa->retry_limit = p->retry_limit;
        pa->grouping = p->grouping;
        pa->pattern_restrictions = p->pattern_restrictions;
        pa->min_length = p->min_length;
        pa->max_length = p->max_length;
        pa->caching_support = p->caching_support;
        pa->input_method = p->input_method;
    }
}

/* The key's flags as getKeyAttributes reports them (COMPLETE comes at close). */
static uint8_t key_flags(const sks_req_create_key_pair *r)
{
    uint8_t f = 0;
    if (r->private_key_backup)
        f |= SKS_KEYFLAG_PRIVATE_KEY_BACKUP;
    if (r->migratable)
        f |= SKS_KEYFLAG_MIGRATABLE;
    if (r->updatable)
        f |= SKS_KEYFLAG_UPDATABLE;
    if (r->delete_protected)
        f |= SKS_KEYFLAG_DELETE_PROTECTED;
    if (r->import_private_key)
        f |= SKS_KEYFLAG_IMPORT_PRIVATE_KEY;
    else if (!r->private_key_backup)
        f |= SKS_KEYFLAG_GENERATED_ON_CARD;
    return f;
}

/* Generate (unless imported later), back up, attest, and store the key. */
static int make_key(card_call *call, key_pair_ctx *c, const sks_req_create_key_pair *r,
                    sks_resp_create_key_pair *resp)
{
    sks_writer *pub = &call->out[0], *att = &call->out[1], *enc = &call->out[2];
    card_key_rec *k = &c->key;
    int rc = SKS_OK;

    if (!r->import_private_key) {
        rc = card_keymat_generate(r->algorithm, &k->private_key, &k->public_key);
        if (rc != SKS_OK)
            return card_fail(call, rc, "key generation failed");
    }
    if (r->private_key_backup) {
        uint8_t ek[32];
        int ok = card_session_encryption_key(&c->s, ek) == 0 &&
                 sks_encrypt(ek, NULL, k->private_key.ptr, k->private_key.len, enc) == 0;
        sks_cleanse(ek, sizeof ek);
        if (!ok)
            return card_fail(call, SKS_ERR_INTERNAL, "cannot encrypt the private key backup");
    }
    sks_put_raw(pub, k->public_key.ptr, k->public_key.len);
    if (pub->failed)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    sks_view pub_view = {pub->buf, pub->len}, enc_view = {enc->buf, enc->len};

    sks_policy_attestation pa;
    uint8_t mac[SKS_MAC_LEN];
    sks_writer data;
    sks_writer_init(&data);
    policy_attestation(c, &pa);
    if (sks_key_attestation_data(&data, &pa, r, pub_view, enc_view) != 0)
        rc = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    else
        rc = card_session_attest(call, &c->s, data.buf, data.len, mac);
    sks_writer_free(&data);
    if (rc != SKS_OK)
        return rc;
    sks_put_raw(att, mac, sizeof mac);

    rc = next_handle(call, &k->handle);
    if (rc != SKS_OK)
        return rc;
    k->session = c->s.handle;
    memcpy(k->id, r->id.ptr, r->id.len);
    k->id_len = (uint8_t)r->id.len;
    k->pin_policy = r->pin_policy_handle;
    k->flags = key_flags(r);
    k->usage = r->key_usage;
    k->algorithm = r->algorithm;
    if (card_buf_set(&k->friendly_name, r->friendly_name.ptr, r->friendly_name.len) != 0 ||
        att->failed)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    if (card_store_key_put(call->card->store, k) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot store the key");
    if (c->pin_fixed && card_store_pin_put(call->card->store, &c->pin_policy) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot store the PIN policy");

    resp->public_key = pub_view;
    resp->attested_public_key = (sks_view){att->buf, att->len};
    resp->encrypted_private_key = enc_view;
    resp->key_handle = k->handle;
    return SKS_OK;
}

int card_m_create_key_pair(card_call *call, const void *reqp, void *respp)
{
    const sks_req_create_key_pair *req = reqp;
    sks_req_create_key_pair r = *req;
    key_pair_ctx c;

    memset(&c, 0, sizeof c);
    int rc = card_session_load(call, req->provisioning_handle, &c.s);
    if (rc != SKS_OK)
        return rc;
    r.pin_policy_id = (sks_view){NULL, 0};
    if (req->pin_policy_handle != SKS_HANDLE_NONE) {
        rc = load_pin(call, &c.s, req->pin_policy_handle, &c.pin_policy);
        c.has_pin = rc == SKS_OK;
        c.pin_earlier = c.has_pin && c.pin_policy.session != c.s.handle;
        r.pin_policy_id = (sks_view){c.pin_policy.id, c.pin_policy.id_len};
        if (rc == SKS_OK && c.pin_policy.puk_handle != SKS_HANDLE_NONE) {
            rc = load_puk(call, NULL, c.pin_policy.puk_handle, &c.puk_policy);
            c.has_puk = rc == SKS_OK;
            c.puk_earlier = c.has_puk && c.puk_policy.session != c.s.handle;
        }
    }
    /* The MAC binds PINValue unless the user chose it (UserDefined). */
    r.pin_value_mac = c.has_pin && c.pin_policy.user_defined ? (sks_view){NULL, 0} : r.pin_value;
    if (rc == SKS_OK)
        rc = card_session_verify_mac(call, &c.s, SKS_M_CREATE_KEY_PAIR, &r, r.mac);
    if (rc == SKS_OK)
        rc = check_key_args(call, &c, &r);
    if (rc == SKS_OK)
        rc = check_key_pin(call, &c, &r);
    if (rc == SKS_OK)
        rc = make_key(call, &c, &r, respp);
    if (rc == SKS_OK)
        rc = card_session_save(call, &c.s);
    key_pair_ctx_free(&c);
    return rc;
}

/* ---- setCertificatePath ----------------------------------------------- */

int card_m_set_certificate_path(card_call *call, const void *reqp, void *respp)
{
    const sks_req_set_certificate_path *req = reqp;
    sks_req_set_certificate_path r = *req;
    card_session_rec s;
    card_key_rec k;
    (void)respp;

    memset(&k, 0, sizeof k);
    int rc = card_session_load(call, req->provisioning_handle, &s);
    if (rc != SKS_OK)
        return rc;
    rc = load_key(call, s.handle, req->key_handle, &k);
    r.key_id = (sks_view){k.id, k.id_len};
    r.key_public_key = card_buf_view(&k.public_key);
    if (rc == SKS_OK)
        rc = card_session_verify_mac(call, &s, SKS_M_SET_CERTIFICATE_PATH, &r, r.mac);
    if (rc == SKS_OK && k.cert_path.len != 0)
        rc = card_fail(call, SKS_ERR_NOT_ALLOWED, "the key already has a certificate path");
    /* A key awaiting import is checked when its private key arrives. */
    if (rc == SKS_OK && k.public_key.len != 0 &&
        !card_keymat_cert_matches(r.certificate_path.cert[0].ptr, r.certificate_path.cert[0].len,
                                  k.public_key.ptr, k.public_key.len))
        rc = card_fail(call, SKS_ERR_CRYPTO, "the certificate does not hold the key's public key");
    if (rc == SKS_OK) {
        sks_writer w;
        sks_writer_init(&w);
        sks_put_byte(&w, r.certificate_path.count);
        for (size_t i = 0; i < r.certificate_path.count; i++)
            sks_put_bytes(&w, r.certificate_path.cert[i].ptr, r.certificate_path.cert[i].len);
        if (w.failed || card_buf_set(&k.cert_path, w.buf, w.len) != 0)
            rc = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
        sks_writer_free(&w);
    }
    if (rc == SKS_OK && card_store_key_put(call->card->store, &k) != SKS_OK)
        rc = card_fail(call, SKS_ERR_STORAGE, "cannot store the certificate path");
    if (rc == SKS_OK)
        rc = card_session_save(call, &s);
    card_key_rec_free(&k);
    card_session_rec_free(&s);
    return rc;
}

/* ---- restorePrivateKey / importPrivateKey ----------------------------- */

/* Decrypt, parse and check the issuer's private key, then put it into `k`. */
static int put_private_key(card_call *call, const card_session_rec *s, card_key_rec *k,
                           sks_view enc)
{
    card_buf pkcs8 = {NULL, 0}, spki = {NULL, 0};
    EVP_PKEY *key = NULL;
    int rc = card_session_decrypt(call, s, enc, &pkcs8);
    if (rc == SKS_OK && (key = card_keymat_load(pkcs8.ptr, pkcs8.len)) == NULL)
        rc = card_fail(call, SKS_ERR_CRYPTO, "EncryptedPrivateKey is not a PKCS#8 private key");
    if (rc == SKS_OK && card_keymat_alg_of(key) != k->algorithm)
        rc = card_fail(call, SKS_ERR_ALGORITHM, "the private key is not of the key's algorithm");
    if (rc == SKS_OK && card_keymat_spki(key, &spki) != 0)
        rc = card_fail(call, SKS_ERR_CRYPTO, "cannot encode the public key");
    if (rc == SKS_OK && k->cert_path.len != 0) {
        sks_certpath path;
        if (card_certpath_parse(&k->cert_path, &path) != 0 ||
            !card_keymat_cert_matches(path.cert[0].ptr, path.cert[0].len, spki.ptr, spki.len))
            rc = card_fail(call, SKS_ERR_CRYPTO, "the private key does not match the certificate");
    }
    if (rc == SKS_OK) {
        card_buf_free(&k->private_key);
        card_buf_free(&k->public_key);
        k->private_key = pkcs8;
        k->public_key = spki;
        pkcs8 = (card_buf){NULL, 0};
        spki = (card_buf){NULL, 0};
    }
    EVP_PKEY_free(key);
    card_buf_free(&pkcs8);
    card_buf_free(&spki);
    return rc;
}

/* The two methods differ only in the method name that keys their MAC. */
static int put_private_key_method(card_call *call, uint8_t method_id,
                                  const sks_req_put_private_key *req)
{
    sks_req_put_private_key r = *req;
    card_session_rec s;
    card_key_rec k;

    memset(&k, 0, sizeof k);
    int rc = card_session_load(call, req->provisioning_handle, &s);
    if (rc != SKS_OK)
        return rc;
    rc = load_key(call, s.handle, req->key_handle, &k);
    r.key_id = (sks_view){k.id, k.id_len};
    if (rc == SKS_OK)
        rc = card_session_verify_mac(call, &s, method_id, &r, r.mac);
    if (rc == SKS_OK && !(k.flags & SKS_KEYFLAG_IMPORT_PRIVATE_KEY))
        rc = card_fail(call, SKS_ERR_NOT_ALLOWED, "the key was not created with ImportPrivateKey");
    if (rc == SKS_OK && k.private_key.len != 0)
        rc = card_fail(call, SKS_ERR_NOT_ALLOWED, "the key already has its private key");
    if (rc == SKS_OK)
        rc = put_private_key(call, &s, &k, r.encrypted_private_key);
    if (rc == SKS_OK && card_store_key_put(call->card->store, &k) != SKS_OK)
        rc = card_fail(call, SKS_ERR_STORAGE, "cannot store the private key");
    if (rc == SKS_OK)
        rc = card_session_save(call, &s);
    card_key_rec_free(&k);
    card_session_rec_free(&s);
    return rc;
}

int card_m_restore_private_key(card_call *call, const void *reqp, void *respp)
{
    (void)respp;
    return put_private_key_method(call, SKS_M_RESTORE_PRIVATE_KEY, reqp);
}

int card_m_import_private_key(card_call *call, const void *reqp, void *respp)
{
    (void)respp;
    return put_private_key_method(call, SKS_M_IMPORT_PRIVATE_KEY, reqp);
}
