/*
 * issuer_session.c - the issuer's side of createProvisioningSession
 * (docs/protocol.md 5.1, 5.4, 6.1): the request, and the acceptance of the
 * card's answer (device certificate path, Z, SK, session attestation); plus
 * the session object's life cycle and the helpers the call builders share.
 */
#include "issuer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

int issuer_fail(sks_issuer_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof s->error, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    return -1;
}

const char *sks_issuer_error(const sks_issuer_session *s)
{
    return s != NULL ? s->error : "no issuer session";
}

int issuer_take_counter(sks_issuer_session *s, uint16_t *counter)
{
    if (!s->accepted)
        return issuer_fail(s, "the session has not been accepted");
    if (s->counter > 0xFFFFu)
        return issuer_fail(s, "the MAC counter is exhausted");
    *counter = (uint16_t)s->counter++;
    return 0;
}

int issuer_encrypt(sks_issuer_session *s, const uint8_t *value, size_t n, sks_issuer_msg *m)
{
    uint8_t ek[32];
    sks_writer w;
    sks_writer_init(&w);
    int ok = sks_encryption_key(s->sk, ek) == 0 && sks_encrypt(ek, NULL, value, n, &w) == 0 &&
             w.len <= sizeof m->value;
    sks_cleanse(ek, sizeof ek);
    if (ok) {
        memcpy(m->value, w.buf, w.len);
        m->value_len = w.len;
    }
    sks_writer_free(&w);
    return ok ? 0 : issuer_fail(s, "cannot encrypt a value for the card");
}

EVP_PKEY *issuer_parse_spki(const uint8_t *p, size_t n)
{
    return sks_spki_decode(p, n);
}

int issuer_is_p256(const EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;
    return EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                          &len) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

void sks_issuer_msg_init(sks_issuer_msg *m)
{
    memset(m, 0, sizeof *m);
    m->key = -1;
}

void sks_issuer_msg_free(sks_issuer_msg *m)
{
    if (m == NULL)
        return;
    sks_cleanse(m, sizeof *m);
    m->key = -1;
}

/* ---- Life cycle ------------------------------------------------------- */

sks_issuer_session *sks_issuer_session_new(uint8_t session_key_alg, const char *issuer_uri,
                                           EVP_PKEY *issuer_key)
{
    if (issuer_uri == NULL || strlen(issuer_uri) == 0 || strlen(issuer_uri) > SKS_URI_MAX)
        return NULL;
    if (session_key_alg != SKS_SKALG_ECDH_P256 && session_key_alg != SKS_SKALG_RSA_OAEP_SHA256)
        return NULL;
    sks_issuer_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->session_key_alg = session_key_alg;
    s->issuer_uri_len = strlen(issuer_uri);
    s->issuer_uri = malloc(s->issuer_uri_len);
    if (s->issuer_uri == NULL)
        goto fail;
    memcpy(s->issuer_uri, issuer_uri, s->issuer_uri_len);

    if (issuer_key != NULL) {
        int fits = session_key_alg == SKS_SKALG_ECDH_P256 ? issuer_is_p256(issuer_key)
                                                          : EVP_PKEY_is_a(issuer_key, "RSA");
        if (!fits || EVP_PKEY_up_ref(issuer_key) != 1)
            goto fail;
        s->issuer_key = issuer_key;
    } else if (session_key_alg == SKS_SKALG_ECDH_P256) {
        s->issuer_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    } else {
        s->issuer_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    }
    if (s->issuer_key == NULL)
        goto fail;

    uint8_t *der = NULL;
    size_t len = 0;
    if (sks_spki_encode(s->issuer_key, &der, &len) != 0)
        goto fail;
    s->issuer_spki = malloc(len);
    if (s->issuer_spki != NULL) {
        memcpy(s->issuer_spki, der, len);
        s->issuer_spki_len = len;
    }
    OPENSSL_free(der);
    if (s->issuer_spki == NULL)
        goto fail;
    return s;
fail:
    ERR_clear_error();
    sks_issuer_session_free(s);
    return NULL;
}

/* Free an array of records, zeroizing each (they hold PIN and PUK values). */
static void free_records(void **recs, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++) {
        if (recs[i] != NULL) {
            sks_cleanse(recs[i], size);
            free(recs[i]);
        }
    }
    free(recs);
}

void sks_issuer_session_free(sks_issuer_session *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nkeys; i++)
        free(s->keys[i]->public_key);
    free_records((void **)s->puks, s->npuks, sizeof(issuer_puk_rec));
    free_records((void **)s->pins, s->npins, sizeof(issuer_pin_rec));
    free_records((void **)s->keys, s->nkeys, sizeof(issuer_key_rec));
    issuer_post_free(s);
    EVP_PKEY_free(s->issuer_key);
    free(s->issuer_uri);
    free(s->issuer_spki);
    sks_cleanse(s, sizeof *s);
    free(s);
}

uint32_t sks_issuer_provisioning_handle(const sks_issuer_session *s)
{
    return s->provisioning_handle;
}

const uint8_t *sks_issuer_session_key(const sks_issuer_session *s)
{
    return s->accepted ? s->sk : NULL;
}

/* ---- createProvisioningSession ---------------------------------------- */

int sks_issuer_request(sks_issuer_session *s, uint8_t updatable, uint16_t client_operation_limit,
                       uint32_t session_life_time, sks_req_create_session *req)
{
    if (s->requested)
        return issuer_fail(s, "the session was already requested");
    if (RAND_bytes(s->server_session_id, sizeof s->server_session_id) != 1)
        return issuer_fail(s, "random number generator failed");
    sks_req_create_session *r = &s->request;
    r->session_key_alg = s->session_key_alg;
    r->server_session_id = (sks_view){s->server_session_id, sizeof s->server_session_id};
    r->issuer_uri = (sks_view){s->issuer_uri, s->issuer_uri_len};
    r->issuer_public_key = (sks_view){s->issuer_spki, s->issuer_spki_len};
    r->updatable = updatable ? 1 : 0;
    r->client_operation_limit = client_operation_limit;
    r->session_life_time = session_life_time;
    s->requested = 1;
    *req = *r;
    return 0;
}

/* Verify the device certificate path (EE first) against the trusted CAs. */
static int verify_device_path(sks_issuer_session *s, X509_STORE *trusted, const sks_certpath *path,
                              X509 **device_cert)
{
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int rc = -1;

    *device_cert = NULL;
    if (untrusted == NULL || ctx == NULL) {
        rc = issuer_fail(s, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < path->count; i++) {
        X509 *c = issuer_cert_parse_kept(path->cert[i].ptr, path->cert[i].len);
        if (c == NULL) {
            rc = issuer_fail(s, "device certificate %zu is not an X.509 certificate", i);
            goto out;
        }
        if (i == 0)
            *device_cert = c;
        else if (!sk_X509_push(untrusted, c)) {
            X509_free(c);
            rc = issuer_fail(s, "out of memory");
            goto out;
        }
    }
    if (X509_STORE_CTX_init(ctx, trusted, *device_cert, untrusted) != 1) {
        rc = issuer_fail(s, "cannot set up certificate verification");
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        rc = issuer_fail(s, "device certificate path does not verify: %s",
                         X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    rc = 0;
out:
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    if (rc != 0) {
        X509_free(*device_cert);
        *device_cert = NULL;
    }
    return rc;
}

/* Recover Z from EncryptedSessionKey with the issuer's private key. */
static int recover_z(sks_issuer_session *s, sks_view esk, uint8_t z[32])
{
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *card_key = NULL;
    size_t zlen = 32;
    int ok;

    if (s->session_key_alg == SKS_SKALG_ECDH_P256) {
        card_key = issuer_parse_spki(esk.ptr, esk.len);
        if (card_key == NULL || !issuer_is_p256(card_key)) {
            EVP_PKEY_free(card_key);
            return issuer_fail(s, "EncryptedSessionKey is not an EC P-256 public key");
        }
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->issuer_key, NULL);
        ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
             EVP_PKEY_derive_set_peer(ctx, card_key) == 1 && EVP_PKEY_derive(ctx, z, &zlen) == 1 &&
             zlen == 32;
    } else {
        uint8_t pt[512];
        size_t ptlen = sizeof pt;
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, s->issuer_key, NULL);
        ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_decrypt(ctx, pt, &ptlen, esk.ptr, esk.len) == 1 && ptlen == 32;
        if (ok)
            memcpy(z, pt, 32);
        sks_cleanse(pt, sizeof pt);
    }
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(card_key);
    if (!ok) {
        sks_cleanse(z, 32);
        return issuer_fail(s, "cannot recover the session secret from EncryptedSessionKey");
    }
    return 0;
}

/* Check the device key's signature over the 32-byte session digest. */
static int verify_attestation(sks_issuer_session *s, X509 *device_cert, const uint8_t digest[32],
                              sks_view sig)
{
    EVP_PKEY *pub = X509_get0_pubkey(device_cert);
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int ok = pub != NULL && mctx != NULL &&
             EVP_DigestVerifyInit(mctx, NULL, sks_md_sha256(), NULL, pub) == 1 &&
             EVP_DigestVerify(mctx, sig.ptr, sig.len, digest, 32) == 1;
    EVP_MD_CTX_free(mctx);
    return ok ? 0 : issuer_fail(s, "the session attestation signature does not verify");
}

int sks_issuer_accept(sks_issuer_session *s, X509_STORE *trusted,
                      const sks_resp_create_session *resp)
{
    X509 *device_cert = NULL;
    uint8_t z[32], digest[32];
    int rc;

    if (!s->requested || s->accepted)
        return issuer_fail(s, "no session request is waiting for an answer");
    if (resp->client_session_id.len != SKS_SESSION_ID_LEN)
        return issuer_fail(s, "ClientSessionID is not 32 bytes");
    if (resp->device_certificate_path.count < 1 ||
        resp->device_certificate_path.count > SKS_CERT_PATH_MAX)
        return issuer_fail(s, "the device certificate path is empty");
    if (trusted == NULL)
        return issuer_fail(s, "no trusted manufacturer CA");
    rc = verify_device_path(s, trusted, &resp->device_certificate_path, &device_cert);
    if (rc == 0)
        rc = recover_z(s, resp->encrypted_session_key, z);
    if (rc == 0) {
        if (sks_derive_session_key(z, sizeof z, resp->client_session_id,
                                   s->request.server_session_id, s->request.issuer_uri,
                                   resp->device_certificate_path.cert[0], s->sk) != 0)
            rc = issuer_fail(s, "cannot derive the session key");
        sks_cleanse(z, sizeof z);
    }
    if (rc == 0 && sks_session_attestation_digest(s->sk, &s->request, resp->client_session_id,
                                                  resp->encrypted_session_key, digest) != 0)
        rc = issuer_fail(s, "cannot compute the session attestation digest");
    if (rc == 0)
        rc = verify_attestation(s, device_cert, digest, resp->session_attestation);
    X509_free(device_cert);
    if (rc != 0) {
        sks_cleanse(s->sk, sizeof s->sk);
        return rc;
    }
    s->provisioning_handle = resp->provisioning_handle;
    s->counter = 0;
    s->accepted = 1;
    return 0;
}
