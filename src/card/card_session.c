/*
 * card_session.c - provisioning sessions on the card: createProvisioningSession,
 * closeProvisioningSession and abortProvisioningSession (docs/protocol.md
 * 6.1-6.3), and the helpers every provisioning handler uses to load a
 * session, check a MAC, attest and decrypt under the session's counter and
 * operation budget (5.2-5.5), and to tell whether two sessions share their
 * issuer (6.9, 6.10). The close also applies the session's
 * post-provisioning operations (card_post.c) in its transaction.
 */
#include "card_session.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "../protocol/sks_crypto.h"
#include "card_keymat.h"

/* Budget of a session whose ClientOperationLimit is 0. */
#define SESSION_BUDGET_DEFAULT 65535u

/* ---- Session helpers -------------------------------------------------- */

int card_session_load(card_call *call, uint32_t handle, card_session_rec *s)
{
    memset(s, 0, sizeof *s);
    int rc = card_store_session_get(call->card->store, handle, s);
    if (rc == SKS_ERR_NO_SESSION)
        return card_fail(call, rc, "unknown provisioning session");
    if (rc != SKS_OK)
        return card_fail(call, rc, "cannot read the provisioning session");
    if (s->state != CARD_SESSION_OPEN) {
        card_session_rec_free(s);
        return card_fail(call, SKS_ERR_NO_SESSION, "provisioning session is closed");
    }
    if (card_now(call->card) >= s->expires) {
        /* Named for abort: the dispatcher removes the expired session. */
        card_session_rec_free(s);
        call->abort_session = handle;
        return card_fail(call, SKS_ERR_NO_SESSION, "session expired");
    }
    /* From here on, a failure of this call aborts the session. */
    call->abort_session = handle;
    return SKS_OK;
}

int card_session_save(card_call *call, const card_session_rec *s)
{
    if (card_store_session_put(call->card->store, s) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot store the provisioning session");
    return SKS_OK;
}

int card_session_same_issuer(card_call *call, const card_session_rec *s, uint32_t owner)
{
    card_session_rec o;
    if (owner == s->handle)
        return 1;
    int rc = card_store_session_get(call->card->store, owner, &o);
    if (rc == SKS_ERR_NO_SESSION)
        return 0;
    if (rc != SKS_OK)
        return -SKS_ERR_STORAGE;
    int same_issuer =
        o.state == CARD_SESSION_CLOSED && o.issuer_uri.len == s->issuer_uri.len &&
        o.issuer_public_key.len == s->issuer_public_key.len &&
        memcmp(o.issuer_uri.ptr, s->issuer_uri.ptr, o.issuer_uri.len) == 0 &&
        memcmp(o.issuer_public_key.ptr, s->issuer_public_key.ptr, o.issuer_public_key.len) == 0;
    card_session_rec_free(&o);
    return same_issuer;
}

/* Take the next counter value and one unit of the operation budget. */
static int spend(card_call *call, card_session_rec *s, uint16_t *counter)
{
    if (s->operations_left == 0)
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "ClientOperationLimit exceeded");
    if (s->mac_counter > 0xFFFFu)
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "MAC counter exhausted");
    s->operations_left--;
    *counter = (uint16_t)s->mac_counter;
    s->mac_counter++;
    return SKS_OK;
}

int card_session_verify_mac(card_call *call, card_session_rec *s, uint8_t method_id,
                            const void *req, sks_view mac)
{
    const sks_msgdesc *d = sks_msg_find(method_id);
    if (d == NULL)
        return card_fail(call, SKS_ERR_INTERNAL, "no descriptor for method %u", method_id);
    uint16_t counter = 0;
    int rc = spend(call, s, &counter);
    if (rc != SKS_OK)
        return rc;

    uint8_t expect[SKS_MAC_LEN];
    sks_writer w;
    sks_writer_init(&w);
    int ok = sks_msg_macdata(d, req, &w) == 0 &&
             sks_mac(s->sk, d->name, counter, w.buf, w.len, expect) == 0;
    sks_writer_free(&w);
    if (!ok) {
        sks_cleanse(expect, sizeof expect);
        return card_fail(call, SKS_ERR_INTERNAL, "cannot compute the MAC");
    }
    int equal = mac.len == SKS_MAC_LEN && sks_mac_equal(expect, mac.ptr, SKS_MAC_LEN);
    sks_cleanse(expect, sizeof expect);
    if (!equal)
        return card_fail(call, SKS_ERR_MAC, "%s: MAC does not match", d->name);
    return SKS_OK;
}

int card_session_attest(card_call *call, card_session_rec *s, const uint8_t *data, size_t n,
                        uint8_t out[SKS_MAC_LEN])
{
    uint16_t counter = 0;
    int rc = spend(call, s, &counter);
    if (rc != SKS_OK)
        return rc;
    if (sks_mac(s->sk, SKS_LABEL_ATTESTATION, counter, data, n, out) != 0)
        return card_fail(call, SKS_ERR_INTERNAL, "cannot compute the attestation");
    return SKS_OK;
}

int card_session_encryption_key(const card_session_rec *s, uint8_t ek[32])
{
    return sks_encryption_key(s->sk, ek);
}

int card_session_decrypt(card_call *call, const card_session_rec *s, sks_view enc, card_buf *out)
{
    uint8_t ek[32];
    if (enc.len > SKS_ENC_MAX + 2 * SKS_ENC_IV_LEN || enc.len < 2 * SKS_ENC_IV_LEN)
        return card_fail(call, SKS_ERR_CRYPTO, "cannot decrypt an encrypted value (bad length)");
    uint8_t *pt = OPENSSL_malloc(enc.len);
    if (pt == NULL)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    size_t ptlen = 0;
    int ok = card_session_encryption_key(s, ek) == 0 &&
             sks_decrypt(ek, enc.ptr, enc.len, pt, &ptlen) == 0 &&
             card_buf_set(out, pt, ptlen) == 0;
    sks_cleanse(ek, sizeof ek);
    OPENSSL_clear_free(pt, enc.len);
    if (!ok)
        return card_fail(call, SKS_ERR_CRYPTO, "cannot decrypt an encrypted value");
    return SKS_OK;
}

int card_certpath_parse(const card_buf *b, sks_certpath *cp)
{
    sks_reader r;
    sks_reader_init(&r, b->ptr, b->len);
    memset(cp, 0, sizeof *cp);
    if (sks_get_byte(&r, &cp->count) != 0 || cp->count == 0 || cp->count > SKS_CERT_PATH_MAX)
        return -1;
    for (size_t i = 0; i < cp->count; i++) {
        if (sks_get_bytes(&r, &cp->cert[i]) != 0)
            return -1;
    }
    return sks_reader_finish(&r);
}

/* ---- createProvisioningSession ---------------------------------------- */

/* Parse a SubjectPublicKeyInfo, insisting on no trailing bytes. */
static EVP_PKEY *parse_spki(sks_view v)
{
    return sks_spki_decode(v.ptr, v.len);
}

/* ECDH P-256: a fresh card key; Z = x of the shared point; ESK = the card key's SPKI. */
static int secret_ecdh(card_call *call, EVP_PKEY *issuer, uint8_t z[32], sks_writer *esk)
{
    if (card_keymat_alg_of(issuer) != SKS_KEYALG_EC_P256)
        return card_fail(call, SKS_ERR_ALGORITHM, "IssuerPublicKey is not an EC P-256 key");
    EVP_PKEY *eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY_CTX *ctx = eph != NULL ? EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL) : NULL;
    size_t zlen = 32;
    int ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, issuer) == 1 && EVP_PKEY_derive(ctx, z, &zlen) == 1 &&
             zlen == 32;
    EVP_PKEY_CTX_free(ctx);
    if (ok) {
        uint8_t *der = NULL;
        size_t len = 0;
        ok = sks_spki_encode(eph, &der, &len) == 0;
        if (ok)
            sks_put_raw(esk, der, len);
        OPENSSL_free(der);
    }
    EVP_PKEY_free(eph);
    if (!ok || esk->failed) {
        sks_cleanse(z, 32);
        return card_fail(call, SKS_ERR_CRYPTO, "ECDH with IssuerPublicKey failed");
    }
    return SKS_OK;
}

/* RSA-OAEP-SHA256: Z = 32 random bytes; ESK = OAEP(IssuerPublicKey, Z). */
static int secret_rsa(card_call *call, EVP_PKEY *issuer, uint8_t z[32], sks_writer *esk)
{
    int bits = EVP_PKEY_get_bits(issuer);
    if (!EVP_PKEY_is_a(issuer, "RSA") || bits < 2048 || bits > 4096)
        return card_fail(call, SKS_ERR_ALGORITHM, "IssuerPublicKey is not an RSA 2048..4096 key");
    uint8_t ct[512];
    size_t ctlen = sizeof ct;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, issuer, NULL);
    int ok = RAND_bytes(z, 32) == 1 && ctx != NULL && EVP_PKEY_encrypt_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_encrypt(ctx, ct, &ctlen, z, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        sks_cleanse(z, 32);
        return card_fail(call, SKS_ERR_CRYPTO, "RSA-OAEP with IssuerPublicKey failed");
    }
    sks_put_raw(esk, ct, ctlen);
    return esk->failed ? card_fail(call, SKS_ERR_INTERNAL, "out of memory") : SKS_OK;
}

/* Z and EncryptedSessionKey for the requested SessionKeyAlgorithm. */
static int session_secret(card_call *call, const sks_req_create_session *req, uint8_t z[32],
                          sks_writer *esk)
{
    if (req->session_key_alg != SKS_SKALG_ECDH_P256 &&
        req->session_key_alg != SKS_SKALG_RSA_OAEP_SHA256)
        return card_fail(call, SKS_ERR_ALGORITHM, "unknown SessionKeyAlgorithm %u",
                         req->session_key_alg);
    EVP_PKEY *issuer = parse_spki(req->issuer_public_key);
    if (issuer == NULL)
        return card_fail(call, SKS_ERR_CRYPTO, "IssuerPublicKey is not a SubjectPublicKeyInfo");
    int rc = req->session_key_alg == SKS_SKALG_ECDH_P256 ? secret_ecdh(call, issuer, z, esk)
                                                         : secret_rsa(call, issuer, z, esk);
    EVP_PKEY_free(issuer);
    return rc;
}

/* The device attestation key's signature over the 32-byte session digest. */
static int sign_attestation(card_call *call, const uint8_t digest[32], sks_writer *sig)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    uint8_t buf[1024];
    size_t len = sizeof buf;
    int ok =
        mctx != NULL &&
        EVP_DigestSignInit(mctx, NULL, sks_md_sha256(), NULL, call->card->attestation_key) == 1 &&
        EVP_DigestSign(mctx, NULL, &len, digest, 32) == 1 && len <= sizeof buf &&
        EVP_DigestSign(mctx, buf, &len, digest, 32) == 1;
    EVP_MD_CTX_free(mctx);
    if (!ok)
        return card_fail(call, SKS_ERR_CRYPTO, "cannot sign the session attestation");
    sks_put_raw(sig, buf, len);
    return sig->failed ? card_fail(call, SKS_ERR_INTERNAL, "out of memory") : SKS_OK;
}

int card_m_create_session(card_call *call, const void *reqp, void *respp)
{
    const sks_req_create_session *req = reqp;
    sks_resp_create_session *resp = respp;
    sks_card *card = call->card;
    sks_writer *csid = &call->out[0], *esk = &call->out[1], *sig = &call->out[2];
    card_session_rec s;
    sks_certpath device_path;
    uint8_t z[32], digest[32];
    int rc;

    memset(&s, 0, sizeof s);
    if (req->session_life_time == 0)
        return card_fail(call, SKS_ERR_OPTION, "SessionLifeTime must be > 0");
    if (card_certpath_parse(&card->device_cert_path, &device_path) != 0)
        return card_fail(call, SKS_ERR_INTERNAL, "device certificate path is damaged");

    rc = session_secret(call, req, z, esk);
    if (rc != SKS_OK)
        return rc;
    if (RAND_bytes(s.client_session_id, SKS_SESSION_ID_LEN) != 1) {
        sks_cleanse(z, sizeof z);
        return card_fail(call, SKS_ERR_INTERNAL, "random number generator failed");
    }
    sks_view client_id = {s.client_session_id, SKS_SESSION_ID_LEN};
    rc = sks_derive_session_key(z, sizeof z, client_id, req->server_session_id, req->issuer_uri,
                                device_path.cert[0], s.sk);
    sks_cleanse(z, sizeof z);
    if (rc != 0)
        return card_fail(call, SKS_ERR_INTERNAL, "cannot derive the session key");

    s.state = CARD_SESSION_OPEN;
    s.session_key_alg = req->session_key_alg;
    memcpy(s.server_session_id, req->server_session_id.ptr, SKS_SESSION_ID_LEN);
    s.updatable = req->updatable;
    s.operations_left =
        req->client_operation_limit != 0 ? req->client_operation_limit : SESSION_BUDGET_DEFAULT;
    s.expires = card_now(card) + req->session_life_time;
    s.mac_counter = 0;
    rc = SKS_OK;
    if (card_buf_set(&s.issuer_uri, req->issuer_uri.ptr, req->issuer_uri.len) != 0 ||
        card_buf_set(&s.issuer_public_key, req->issuer_public_key.ptr,
                     req->issuer_public_key.len) != 0)
        rc = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    if (rc == SKS_OK && card_store_next_handle(card->store, &s.handle) != SKS_OK)
        rc = card_fail(call, SKS_ERR_STORAGE, "cannot allocate a handle");
    if (rc == SKS_OK) {
        sks_view esk_view = {esk->buf, esk->len};
        if (sks_session_attestation_digest(s.sk, req, client_id, esk_view, digest) != 0)
            rc = card_fail(call, SKS_ERR_INTERNAL, "cannot compute the session attestation");
    }
    if (rc == SKS_OK)
        rc = sign_attestation(call, digest, sig);
    if (rc == SKS_OK)
        rc = card_session_save(call, &s);
    if (rc == SKS_OK) {
        sks_put_raw(csid, s.client_session_id, SKS_SESSION_ID_LEN);
        if (csid->failed)
            rc = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    }
    if (rc == SKS_OK) {
        resp->client_session_id = (sks_view){csid->buf, csid->len};
        resp->encrypted_session_key = (sks_view){esk->buf, esk->len};
        resp->session_attestation = (sks_view){sig->buf, sig->len};
        resp->provisioning_handle = s.handle;
        resp->device_certificate_path = device_path;
    }
    card_session_rec_free(&s);
    return rc;
}

/* ---- closeProvisioningSession ----------------------------------------- */

/* Is key `k` complete: private key, public key, and a path whose end entity holds it? */
static const char *key_incomplete(const card_key_rec *k)
{
    sks_certpath path;
    if (k->private_key.len == 0)
        return "has no private key (import missing)";
    if (k->cert_path.len == 0)
        return "has no certificate path";
    if (card_certpath_parse(&k->cert_path, &path) != 0)
        return "has a damaged certificate path";
    if (!card_keymat_cert_matches(path.cert[0].ptr, path.cert[0].len, k->public_key.ptr,
                                  k->public_key.len))
        return "has a certificate that does not hold its public key";
    return NULL;
}

/*
 * The checks of 6.2 over the session's keys and post-provisioning
 * operations (6.10); the keys' handles go to *handles (caller frees).
 */
static int check_keys(card_call *call, const sks_req_close_session *req, uint32_t session,
                      uint32_t **handles, size_t *n)
{
    card_post_counts post;
    if (card_store_session_keys(call->card->store, session, handles, n) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot list the session's keys");
    int rc = card_post_check(call, session, &post);
    if (rc != SKS_OK)
        return rc;
    if (req->generated_keys != *n || req->deleted_keys != post.deleted || req->cloned_keys != 0 ||
        req->replaced_keys != post.replaced || req->extension_objects != 0)
        return card_fail(call, SKS_ERR_SESSION_VERIFY,
                         "counts do not match: the session generated %zu keys, deleted %u, "
                         "replaced %u",
                         *n, post.deleted, post.replaced);
    for (size_t i = 0; i < *n; i++) {
        card_key_rec k;
        memset(&k, 0, sizeof k);
        if (card_store_key_get(call->card->store, (*handles)[i], &k) != SKS_OK)
            return card_fail(call, SKS_ERR_STORAGE, "cannot read key %u", (*handles)[i]);
        const char *why = key_incomplete(&k);
        card_key_rec_free(&k);
        if (why != NULL)
            return card_fail(call, SKS_ERR_SESSION_VERIFY, "key %u %s", (*handles)[i], why);
    }
    return SKS_OK;
}

/* Flag every key of the session complete (usable). */
static int complete_keys(card_call *call, const uint32_t *handles, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        card_key_rec k;
        memset(&k, 0, sizeof k);
        int rc = card_store_key_get(call->card->store, handles[i], &k);
        if (rc == SKS_OK) {
            k.flags |= SKS_KEYFLAG_COMPLETE;
            rc = card_store_key_put(call->card->store, &k);
        }
        card_key_rec_free(&k);
        if (rc != SKS_OK)
            return card_fail(call, SKS_ERR_STORAGE, "cannot update key %u", handles[i]);
    }
    return SKS_OK;
}

int card_m_close_session(card_call *call, const void *reqp, void *respp)
{
    const sks_req_close_session *req = reqp;
    sks_resp_close_session *resp = respp;
    sks_writer *att = &call->out[0];
    card_session_rec s;
    uint32_t *handles = NULL;
    size_t n = 0;
    uint8_t mac[SKS_MAC_LEN];

    int rc = card_session_load(call, req->provisioning_handle, &s);
    if (rc != SKS_OK)
        return rc;
    rc = card_session_verify_mac(call, &s, SKS_M_CLOSE_PROVISIONING_SESSION, req, req->mac);
    if (rc == SKS_OK)
        rc = check_keys(call, req, s.handle, &handles, &n);
    if (rc == SKS_OK) {
        sks_writer data;
        sks_writer_init(&data);
        if (sks_close_attestation_data(&data, req->mac) != 0)
            rc = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
        else
            rc = card_session_attest(call, &s, data.buf, data.len, mac);
        sks_writer_free(&data);
    }
    if (rc == SKS_OK)
        rc = complete_keys(call, handles, n);
    if (rc == SKS_OK)
        rc = card_post_apply(call, s.handle);
    if (rc == SKS_OK) {
        s.state = CARD_SESSION_CLOSED;
        sks_cleanse(s.sk, sizeof s.sk);
        rc = card_session_save(call, &s);
    }
    if (rc == SKS_OK) {
        sks_put_raw(att, mac, sizeof mac);
        if (att->failed)
            rc = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
        resp->attested_response = (sks_view){att->buf, att->len};
    }
    free(handles);
    card_session_rec_free(&s);
    return rc;
}

/* ---- abortProvisioningSession ----------------------------------------- */

int card_m_abort_session(card_call *call, const void *reqp, void *respp)
{
    const sks_req_abort_session *req = reqp;
    card_session_rec s;
    (void)respp;

    int rc = card_session_load(call, req->provisioning_handle, &s);
    if (rc != SKS_OK)
        return rc;
    card_session_rec_free(&s);
    if (card_store_session_purge(call->card->store, req->provisioning_handle) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot remove the session");
    return SKS_OK;
}
