/*
 * issuer_calls.c - the issuer's side of the provisioning calls after
 * createProvisioningSession (docs/protocol.md 6.2, 6.4-6.9): fill each
 * request with the values the issuer chose, encrypt what must be secret,
 * supply the MAC-only fields from the issuer's own records, MAC it under the
 * next counter value, and verify the card's key and close attestations.
 */
#include "issuer_internal.h"
#include "../protocol/sks_keys.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

/* ---- Records ---------------------------------------------------------- */

/* Copy an ID of 1..32 bytes into a record. */
static int set_id(sks_issuer_session *s, const char *id, uint8_t out[SKS_ID_MAX], size_t *len)
{
    size_t n = id != NULL ? strlen(id) : 0;
    if (n < 1 || n > SKS_ID_MAX)
        return issuer_fail(s, "an ID must be 1..%d bytes", SKS_ID_MAX);
    memcpy(out, id, n);
    *len = n;
    return 0;
}

static int id_is(const uint8_t *id, size_t len, const char *want)
{
    return want != NULL && strlen(want) == len && memcmp(id, want, len) == 0;
}

static int find_puk(const sks_issuer_session *s, const char *id)
{
    for (size_t i = 0; i < s->npuks; i++) {
        if (id_is(s->puks[i]->id, s->puks[i]->id_len, id))
            return (int)i;
    }
    return -1;
}

static int find_pin(const sks_issuer_session *s, const char *id)
{
    for (size_t i = 0; i < s->npins; i++) {
        if (id_is(s->pins[i]->id, s->pins[i]->id_len, id))
            return (int)i;
    }
    return -1;
}

static int find_key(const sks_issuer_session *s, const char *id)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        if (id_is(s->keys[i]->id, s->keys[i]->id_len, id))
            return (int)i;
    }
    return -1;
}

/* Append a record to one of the session's arrays (takes ownership). */
static int push(sks_issuer_session *s, void ***arr, size_t *n, void *rec)
{
    void **grown = realloc(*arr, (*n + 1) * sizeof *grown);
    if (grown == NULL) {
        free(rec);
        return issuer_fail(s, "out of memory");
    }
    grown[(*n)++] = rec;
    *arr = grown;
    return 0;
}

/* Replace a key's recorded public key (as the card holds it). */
static int set_public_key(sks_issuer_session *s, issuer_key_rec *k, const uint8_t *p, size_t n)
{
    uint8_t *copy = NULL;
    if (n > 0) {
        copy = malloc(n);
        if (copy == NULL)
            return issuer_fail(s, "out of memory");
        memcpy(copy, p, n);
    }
    free(k->public_key);
    k->public_key = copy;
    k->public_key_len = n;
    return 0;
}

/* A new PUK policy record (value empty), or NULL (error set). */
static issuer_puk_rec *new_puk(sks_issuer_session *s, const char *id, uint8_t format,
                               uint8_t retry_limit)
{
    issuer_puk_rec *p = calloc(1, sizeof *p);
    if (p == NULL) {
        issuer_fail(s, "out of memory");
        return NULL;
    }
    if (set_id(s, id, p->id, &p->id_len) != 0) {
        free(p);
        return NULL;
    }
    p->format = format;
    p->retry_limit = retry_limit;
    return p;
}

/* A new PIN policy record of `pp` with PUK policy index `puk`, or NULL (error set). */
static issuer_pin_rec *new_pin(sks_issuer_session *s, const sks_issuer_pin_policy *pp, int puk)
{
    issuer_pin_rec *p = calloc(1, sizeof *p);
    if (p == NULL) {
        issuer_fail(s, "out of memory");
        return NULL;
    }
    if (set_id(s, pp->id, p->id, &p->id_len) != 0) {
        free(p);
        return NULL;
    }
    p->puk = puk;
    p->p = *pp;
    p->p.id = NULL;
    p->p.puk_id = NULL;
    return p;
}

/* The record of key `key_id` of this session, or NULL (error set). */
static issuer_key_rec *key_named(sks_issuer_session *s, const char *key_id)
{
    int ki = find_key(s, key_id);
    if (ki < 0) {
        issuer_fail(s, "no key \"%s\" in this session", key_id != NULL ? key_id : "");
        return NULL;
    }
    return s->keys[ki];
}

/*
 * MAC a request of `method_id` under the next counter value; with
 * `attested`, reserve the following value for the card's attestation.
 */
static int mac_request(sks_issuer_session *s, uint8_t method_id, const void *req, sks_issuer_msg *m,
                       int attested)
{
    const sks_msgdesc *d = sks_msg_find(method_id);
    if (d == NULL)
        return issuer_fail(s, "unknown method %u", method_id);
    sks_writer w;
    sks_writer_init(&w);
    int rc = sks_msg_macdata(d, req, &w) == 0 ? 0 : issuer_fail(s, "cannot encode MAC data");
    if (rc == 0)
        rc = issuer_take_counter(s, &m->counter);
    if (rc == 0 && attested)
        rc = issuer_take_counter(s, &m->attestation_counter);
    if (rc == 0 && sks_mac(s->sk, d->name, m->counter, w.buf, w.len, m->mac) != 0)
        rc = issuer_fail(s, "cannot compute the MAC");
    sks_writer_free(&w);
    return rc;
}

/* Start a prepared message: the session must be accepted; the message is reset. */
static int begin(sks_issuer_session *s, sks_issuer_msg *m)
{
    if (!s->accepted)
        return issuer_fail(s, "the session has not been accepted");
    m->value_len = 0;
    m->key = -1;
    return 0;
}

static sks_view mac_view(const sks_issuer_msg *m)
{
    return (sks_view){m->mac, SKS_MAC_LEN};
}

static sks_view value_view(const sks_issuer_msg *m)
{
    return (sks_view){m->value, m->value_len};
}

/* ---- createPUKPolicy / createPINPolicy -------------------------------- */

int sks_issuer_prepare_puk_policy(sks_issuer_session *s, const char *id, sks_view puk,
                                  uint8_t format, uint8_t retry_limit, sks_issuer_msg *m,
                                  sks_req_create_puk_policy *req)
{
    if (begin(s, m) != 0)
        return -1;
    if (puk.len > SKS_PIN_MAX)
        return issuer_fail(s, "a PUK is at most %d bytes", SKS_PIN_MAX);
    issuer_puk_rec *p = new_puk(s, id, format, retry_limit);
    if (p == NULL)
        return -1;
    if (puk.len > 0)
        memcpy(p->value, puk.ptr, puk.len);
    p->value_len = puk.len;
    if (push(s, (void ***)&s->puks, &s->npuks, p) != 0)
        return -1;
    if (issuer_encrypt(s, p->value, p->value_len, m) != 0)
        return -1;

    memset(req, 0, sizeof *req);
    req->provisioning_handle = s->provisioning_handle;
    req->id = (sks_view){p->id, p->id_len};
    req->encrypted_value = value_view(m);
    req->format = format;
    req->retry_limit = retry_limit;
    if (mac_request(s, SKS_M_CREATE_PUK_POLICY, req, m, 0) != 0)
        return -1;
    req->mac = mac_view(m);
    return 0;
}

int sks_issuer_prepare_pin_policy(sks_issuer_session *s, const sks_issuer_pin_policy *pp,
                                  uint32_t puk_handle, sks_issuer_msg *m,
                                  sks_req_create_pin_policy *req)
{
    if (begin(s, m) != 0)
        return -1;
    int puk = -1;
    if (pp->puk_id != NULL && (puk = find_puk(s, pp->puk_id)) < 0)
        return issuer_fail(s, "no PUK policy \"%s\" in this session", pp->puk_id);
    issuer_pin_rec *p = new_pin(s, pp, puk);
    if (p == NULL)
        return -1;
    if (push(s, (void ***)&s->pins, &s->npins, p) != 0)
        return -1;

    memset(req, 0, sizeof *req);
    req->provisioning_handle = s->provisioning_handle;
    req->id = (sks_view){p->id, p->id_len};
    req->puk_policy_handle = puk_handle;
    if (puk >= 0)
        req->puk_id = (sks_view){s->puks[puk]->id, s->puks[puk]->id_len};
    req->user_defined = pp->user_defined;
    req->user_modifiable = pp->user_modifiable;
    req->format = pp->format;
    req->retry_limit = pp->retry_limit;
    req->grouping = pp->grouping;
    req->pattern_restrictions = pp->pattern_restrictions;
    req->min_length = pp->min_length;
    req->max_length = pp->max_length;
    req->caching_support = pp->caching_support;
    req->input_method = pp->input_method;
    if (mac_request(s, SKS_M_CREATE_PIN_POLICY, req, m, 0) != 0)
        return -1;
    req->mac = mac_view(m);
    return 0;
}

/* ---- Policies of earlier sessions (6.9) -------------------------------- */

int sks_issuer_declare_puk_policy(sks_issuer_session *s, const char *id, uint8_t format,
                                  uint8_t retry_limit)
{
    if (find_puk(s, id) >= 0)
        return issuer_fail(s, "PUK policy \"%s\" is already known", id);
    issuer_puk_rec *p = new_puk(s, id, format, retry_limit);
    if (p == NULL)
        return -1;
    p->earlier = 1;
    return push(s, (void ***)&s->puks, &s->npuks, p);
}

int sks_issuer_declare_pin_policy(sks_issuer_session *s, const sks_issuer_pin_policy *pp)
{
    int puk = -1;
    if (pp->id != NULL && find_pin(s, pp->id) >= 0)
        return issuer_fail(s, "PIN policy \"%s\" is already known", pp->id);
    if (pp->puk_id != NULL && ((puk = find_puk(s, pp->puk_id)) < 0 || !s->puks[puk]->earlier))
        return issuer_fail(s, "no declared PUK policy \"%s\"", pp->puk_id);
    issuer_pin_rec *p = new_pin(s, pp, puk);
    if (p == NULL)
        return -1;
    p->earlier = 1;
    return push(s, (void ***)&s->pins, &s->npins, p);
}

/* ---- createKeyPair ---------------------------------------------------- */

/* Copy what the key attestation covers into a new key record. */
static issuer_key_rec *new_key(sks_issuer_session *s, const sks_issuer_key_spec *ks)
{
    size_t fn_len = ks->friendly_name != NULL ? strlen(ks->friendly_name) : 0;
    if (fn_len > SKS_FRIENDLY_NAME_MAX) {
        issuer_fail(s, "a FriendlyName is at most %d bytes", SKS_FRIENDLY_NAME_MAX);
        return NULL;
    }
    if (ks->pin.len > SKS_PIN_MAX) {
        issuer_fail(s, "a PIN is at most %d bytes", SKS_PIN_MAX);
        return NULL;
    }
    issuer_key_rec *k = calloc(1, sizeof *k);
    if (k == NULL) {
        issuer_fail(s, "out of memory");
        return NULL;
    }
    if (set_id(s, ks->id, k->id, &k->id_len) != 0) {
        free(k);
        return NULL;
    }
    k->pin = -1;
    k->k = *ks;
    k->k.id = NULL;
    k->k.pin_policy_id = NULL;
    k->k.pin = (sks_view){NULL, 0};
    k->k.friendly_name = NULL;
    if (ks->pin.len > 0)
        memcpy(k->pin_value, ks->pin.ptr, ks->pin.len);
    k->pin_len = ks->pin.len;
    if (fn_len > 0)
        memcpy(k->friendly_name, ks->friendly_name, fn_len);
    k->friendly_name_len = fn_len;
    return k;
}

/* The createKeyPair request as the issuer asked for it (for MAC and attestation). */
static void key_request(const sks_issuer_session *s, const issuer_key_rec *k,
                        sks_req_create_key_pair *req)
{
    memset(req, 0, sizeof *req);
    req->provisioning_handle = s->provisioning_handle;
    req->id = (sks_view){k->id, k->id_len};
    if (k->pin >= 0)
        req->pin_policy_id = (sks_view){s->pins[k->pin]->id, s->pins[k->pin]->id_len};
    req->private_key_backup = k->k.private_key_backup ? 1 : 0;
    req->migratable = k->k.migratable ? 1 : 0;
    req->updatable = k->k.updatable ? 1 : 0;
    req->delete_protected = k->k.delete_protected ? 1 : 0;
    req->import_private_key = k->k.import_private_key ? 1 : 0;
    req->key_usage = k->k.key_usage;
    req->friendly_name = (sks_view){k->friendly_name, k->friendly_name_len};
    req->algorithm = k->k.algorithm;
    req->mac = (sks_view){k->mac, SKS_MAC_LEN};
}

int sks_issuer_prepare_key_pair(sks_issuer_session *s, const sks_issuer_key_spec *ks,
                                uint32_t pin_handle, sks_issuer_msg *m,
                                sks_req_create_key_pair *req)
{
    if (begin(s, m) != 0)
        return -1;
    int pin = -1;
    if (ks->pin_policy_id != NULL && (pin = find_pin(s, ks->pin_policy_id)) < 0)
        return issuer_fail(s, "no PIN policy \"%s\" in this session", ks->pin_policy_id);
    issuer_key_rec *k = new_key(s, ks);
    if (k == NULL)
        return -1;
    k->pin = pin;
    if (push(s, (void ***)&s->keys, &s->nkeys, k) != 0)
        return -1;
    m->key = (int)(s->nkeys - 1);

    key_request(s, k, req);
    req->pin_policy_handle = pin_handle;
    /* The PIN travels encrypted unless the user chose it (UserDefined). */
    int user_defined = pin >= 0 && s->pins[pin]->p.user_defined;
    if (pin >= 0 && !user_defined && k->pin_len > 0) {
        if (issuer_encrypt(s, k->pin_value, k->pin_len, m) != 0)
            return -1;
        req->pin_value = value_view(m);
    } else {
        req->pin_value = (sks_view){k->pin_value, k->pin_len};
    }
    /* The MAC covers PINValue, except a PIN the user chose. */
    req->pin_value_mac = user_defined ? (sks_view){NULL, 0} : req->pin_value;
    if (mac_request(s, SKS_M_CREATE_KEY_PAIR, req, m, 1) != 0)
        return -1;
    memcpy(k->mac, m->mac, SKS_MAC_LEN);
    req->mac = mac_view(m);
    return 0;
}

/* The policy part of a key attestation, from the issuer's records. */
static void policy_attestation(const sks_issuer_session *s, const issuer_key_rec *k,
                               sks_policy_attestation *pa)
{
    memset(pa, 0, sizeof *pa);
    if (k->pin < 0)
        return;
    const issuer_pin_rec *p = s->pins[k->pin];
    if (p->puk >= 0) {
        const issuer_puk_rec *u = s->puks[p->puk];
        pa->has_puk = 1;
        pa->puk_id = (sks_view){u->id, u->id_len};
        pa->puk_retry_limit = u->retry_limit;
        /* The values of earlier sessions' policies are attested as empty (6.9). */
        if (!u->earlier)
            pa->puk_value = (sks_view){u->value, u->value_len};
        pa->puk_format = u->format;
    }
    pa->has_pin = 1;
    pa->pin_id = (sks_view){p->id, p->id_len};
    pa->user_defined = p->p.user_defined ? 1 : 0;
    if (!p->earlier)
        pa->pin_value = (sks_view){k->pin_value, k->pin_len};
    pa->user_modifiable = p->p.user_modifiable ? 1 : 0;
    pa->format = p->p.format;
    pa->retry_limit = p->p.retry_limit;
    pa->grouping = p->p.grouping;
    pa->pattern_restrictions = p->p.pattern_restrictions;
    pa->min_length = p->p.min_length;
    pa->max_length = p->p.max_length;
    pa->caching_support = p->p.caching_support ? 1 : 0;
    pa->input_method = p->p.input_method;
}

/* Does a public key the card generated have the algorithm the issuer asked for? */
static int key_of_algorithm(sks_view spki, uint8_t alg)
{
    EVP_PKEY *key = issuer_parse_spki(spki.ptr, spki.len);
    int ok = 0;
    if (key == NULL)
        return 0;
    switch (alg) {
    case SKS_KEYALG_RSA2048:
    case SKS_KEYALG_RSA3072:
    case SKS_KEYALG_RSA4096: {
        int bits = alg == SKS_KEYALG_RSA2048 ? 2048 : alg == SKS_KEYALG_RSA3072 ? 3072 : 4096;
        ok = EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) == bits;
        break;
    }
    case SKS_KEYALG_EC_P256:
        ok = issuer_is_p256(key);
        break;
    case SKS_KEYALG_EC_P384:
        ok = EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) == 384;
        break;
    default:
        break;
    }
    EVP_PKEY_free(key);
    return ok;
}

int sks_issuer_verify_key_attestation(sks_issuer_session *s, const sks_issuer_msg *m,
                                      const sks_resp_create_key_pair *resp)
{
    if (m->key < 0 || (size_t)m->key >= s->nkeys)
        return issuer_fail(s, "the message is not a createKeyPair of this session");
    issuer_key_rec *k = s->keys[m->key];
    if (k->k.import_private_key) {
        if (resp->public_key.len != 0)
            return issuer_fail(s, "a key awaiting import came back with a public key");
    } else if (!key_of_algorithm(resp->public_key, k->k.algorithm)) {
        return issuer_fail(s, "the generated public key is not of the requested algorithm");
    }
    if ((resp->encrypted_private_key.len != 0) != (k->k.private_key_backup != 0))
        return issuer_fail(s, "EncryptedPrivateKey is %s",
                           k->k.private_key_backup ? "missing" : "present without a backup");

    sks_policy_attestation pa;
    sks_req_create_key_pair req;
    uint8_t expect[SKS_MAC_LEN];
    sks_writer w;
    sks_writer_init(&w);
    policy_attestation(s, k, &pa);
    key_request(s, k, &req);
    int rc = sks_key_attestation_data(&w, &pa, &req, resp->public_key,
                                      resp->encrypted_private_key) == 0 &&
                     sks_mac(s->sk, SKS_LABEL_ATTESTATION, m->attestation_counter, w.buf, w.len,
                             expect) == 0
                 ? 0
                 : issuer_fail(s, "cannot compute the key attestation");
    sks_writer_free(&w);
    if (rc == 0 && (resp->attested_public_key.len != SKS_MAC_LEN ||
                    !sks_mac_equal(expect, resp->attested_public_key.ptr, SKS_MAC_LEN)))
        rc = issuer_fail(s, "the key attestation does not verify");
    sks_cleanse(expect, sizeof expect);
    if (rc == 0)
        rc = set_public_key(s, k, resp->public_key.ptr, resp->public_key.len);
    return rc;
}

/* ---- setCertificatePath ----------------------------------------------- */

int sks_issuer_prepare_certificate_path(sks_issuer_session *s, const char *key_id,
                                        uint32_t key_handle, const sks_view *certs, size_t ncerts,
                                        sks_issuer_msg *m, sks_req_set_certificate_path *req)
{
    if (begin(s, m) != 0)
        return -1;
    const issuer_key_rec *k = key_named(s, key_id);
    if (k == NULL)
        return -1;
    if (ncerts < 1 || ncerts > SKS_CERT_PATH_MAX)
        return issuer_fail(s, "a certificate path holds 1..%d certificates", SKS_CERT_PATH_MAX);
    memset(req, 0, sizeof *req);
    req->provisioning_handle = s->provisioning_handle;
    req->key_handle = key_handle;
    req->key_id = (sks_view){k->id, k->id_len};
    req->key_public_key = (sks_view){k->public_key, k->public_key_len};
    req->certificate_path.count = (uint8_t)ncerts;
    for (size_t i = 0; i < ncerts; i++)
        req->certificate_path.cert[i] = certs[i];
    if (mac_request(s, SKS_M_SET_CERTIFICATE_PATH, req, m, 0) != 0)
        return -1;
    req->mac = mac_view(m);
    return 0;
}

/* ---- restorePrivateKey / importPrivateKey ----------------------------- */

/* The SPKI of a PKCS#8 key (empty when the data is not a key). */
static int spki_of_pkcs8(sks_view pkcs8, uint8_t **spki, size_t *len)
{
    *spki = NULL;
    *len = 0;
    if (pkcs8.len == 0 || pkcs8.len > 0x7FFFFFFF)
        return 0;
    const unsigned char *p = pkcs8.ptr;
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)pkcs8.len);
    EVP_PKEY *key = p8 != NULL && p == pkcs8.ptr + pkcs8.len ? EVP_PKCS82PKEY(p8) : NULL;
    PKCS8_PRIV_KEY_INFO_free(p8);
    unsigned char *der = NULL;
    int n = key != NULL ? i2d_PUBKEY(key, &der) : -1;
    EVP_PKEY_free(key);
    if (n <= 0)
        return 0;
    *spki = malloc((size_t)n);
    if (*spki != NULL) {
        memcpy(*spki, der, (size_t)n);
        *len = (size_t)n;
    }
    OPENSSL_free(der);
    return *spki != NULL ? 0 : -1;
}

int sks_issuer_prepare_put_private_key(sks_issuer_session *s, uint8_t method_id, const char *key_id,
                                       uint32_t key_handle, sks_view pkcs8, sks_issuer_msg *m,
                                       sks_req_put_private_key *req)
{
    if (begin(s, m) != 0)
        return -1;
    if (method_id != SKS_M_RESTORE_PRIVATE_KEY && method_id != SKS_M_IMPORT_PRIVATE_KEY)
        return issuer_fail(s, "method %u does not put a private key", method_id);
    issuer_key_rec *k = key_named(s, key_id);
    if (k == NULL)
        return -1;
    if (issuer_encrypt(s, pkcs8.ptr, pkcs8.len, m) != 0)
        return -1;
    memset(req, 0, sizeof *req);
    req->provisioning_handle = s->provisioning_handle;
    req->key_handle = key_handle;
    req->key_id = (sks_view){k->id, k->id_len};
    req->encrypted_private_key = value_view(m);
    if (mac_request(s, method_id, req, m, 0) != 0)
        return -1;
    req->mac = mac_view(m);

    /* From now on the card holds the key's public key. */
    uint8_t *spki;
    size_t spki_len;
    if (spki_of_pkcs8(pkcs8, &spki, &spki_len) != 0)
        return issuer_fail(s, "out of memory");
    free(k->public_key);
    k->public_key = spki;
    k->public_key_len = spki_len;
    return 0;
}

int sks_issuer_prepare_put_pkey(sks_issuer_session *s, uint8_t method_id, const char *key_id,
                                uint32_t key_handle, EVP_PKEY *key, sks_issuer_msg *m,
                                sks_req_put_private_key *req)
{
    uint8_t *der;
    size_t n;
    if (sks_pkcs8_encode(key, &der, &n) != 0)
        return issuer_fail(s, "cannot encode the private key as PKCS#8");
    int rc = sks_issuer_prepare_put_private_key(s, method_id, key_id, key_handle,
                                                (sks_view){der, n}, m, req);
    OPENSSL_clear_free(der, n);
    return rc;
}

EVP_PKEY *sks_issuer_decrypt_backup(sks_issuer_session *s, sks_view enc)
{
    uint8_t ek[32];
    size_t n = 0;
    EVP_PKEY *key = NULL;
    if (!s->accepted || enc.len < 2 * SKS_ENC_IV_LEN ||
        enc.len > SKS_ENC_MAX + 2 * SKS_ENC_IV_LEN) {
        issuer_fail(s, "EncryptedPrivateKey has a bad length");
        return NULL;
    }
    uint8_t *pt = OPENSSL_malloc(enc.len);
    if (pt != NULL && sks_encryption_key(s->sk, ek) == 0 &&
        sks_decrypt(ek, enc.ptr, enc.len, pt, &n) == 0) {
        const unsigned char *p = pt;
        PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)n);
        if (p8 != NULL && p == pt + n)
            key = EVP_PKCS82PKEY(p8);
        PKCS8_PRIV_KEY_INFO_free(p8);
    }
    sks_cleanse(ek, sizeof ek);
    if (pt != NULL)
        OPENSSL_clear_free(pt, enc.len);
    if (key == NULL)
        issuer_fail(s, "EncryptedPrivateKey does not decrypt to a PKCS#8 key");
    return key;
}

/* ---- closeProvisioningSession ----------------------------------------- */

int sks_issuer_prepare_close_counts(sks_issuer_session *s, const uint16_t counts[5],
                                    sks_issuer_msg *m, sks_req_close_session *req)
{
    if (begin(s, m) != 0)
        return -1;
    memset(req, 0, sizeof *req);
    req->provisioning_handle = s->provisioning_handle;
    req->generated_keys = counts[0];
    req->deleted_keys = counts[1];
    req->cloned_keys = counts[2];
    req->replaced_keys = counts[3];
    req->extension_objects = counts[4];
    if (mac_request(s, SKS_M_CLOSE_PROVISIONING_SESSION, req, m, 1) != 0)
        return -1;
    req->mac = mac_view(m);
    return 0;
}

int sks_issuer_prepare_close(sks_issuer_session *s, sks_issuer_msg *m, sks_req_close_session *req)
{
    if (s->nkeys > 0xFFFF)
        return issuer_fail(s, "too many keys for one session");
    uint16_t counts[5] = {(uint16_t)s->nkeys, 0, 0, 0, 0};
    issuer_post_counts(s, &counts[1], &counts[3]);
    return sks_issuer_prepare_close_counts(s, counts, m, req);
}

int sks_issuer_verify_close(sks_issuer_session *s, const sks_issuer_msg *m,
                            const sks_resp_close_session *resp)
{
    uint8_t expect[SKS_MAC_LEN];
    sks_writer w;
    sks_writer_init(&w);
    int rc = sks_close_attestation_data(&w, mac_view(m)) == 0 &&
                     sks_mac(s->sk, SKS_LABEL_ATTESTATION, m->attestation_counter, w.buf, w.len,
                             expect) == 0
                 ? 0
                 : issuer_fail(s, "cannot compute the close attestation");
    sks_writer_free(&w);
    if (rc == 0 && (resp->attested_response.len != SKS_MAC_LEN ||
                    !sks_mac_equal(expect, resp->attested_response.ptr, SKS_MAC_LEN)))
        rc = issuer_fail(s, "the close attestation does not verify");
    sks_cleanse(expect, sizeof expect);
    return rc;
}

/* ---- Shared with issuer_post.c ---------------------------------------- */

int issuer_begin(sks_issuer_session *s, sks_issuer_msg *m)
{
    return begin(s, m);
}

int issuer_mac_request(sks_issuer_session *s, uint8_t method_id, const void *req, sks_issuer_msg *m,
                       int attested)
{
    return mac_request(s, method_id, req, m, attested);
}

int issuer_find_key(const sks_issuer_session *s, const char *id)
{
    return find_key(s, id);
}
