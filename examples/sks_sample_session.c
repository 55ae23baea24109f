/*
 * sks_sample_session.c - the seed's "Sample Session" run against the SKS
 * card engine, with the issuer's half done by src/issuer:
 *
 *   createProvisioningSession, createPUKPolicy, createPINPolicy,
 *   createKeyPair (EC P-256, PIN-protected), setCertificatePath,
 *   closeProvisioningSession
 *
 * then one use of the key through the Key User API (verifyPIN and
 * signHashedData, the signature checked with the issued certificate).
 * Every step prints what was sent and what came back, and every attestation
 * is verified by the issuer; the exit status is 0 only if all of it passed.
 *
 * Usage: sks-sample-session [--state-dir DIR] [--manufacturer-ca PEM]
 * Without --state-dir a fresh card is made in a temporary directory and
 * removed at the end; with it, DIR is used (and initialised if empty).
 */
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/x509.h>

#include "card/sks_card.h"
#include "issuer/sks_issuer.h"
#include "protocol/sks_crypto.h"
#include "protocol/sks_msg.h"

#define ISSUER_URI "https://issuer.example/sks/sample"
#define PUK_VALUE  "01234567"
#define PIN_VALUE  "5872"

typedef struct {
    sks_card *card;
    X509_STORE *trusted;
    sks_issuer_session *issuer;
    EVP_PKEY *ca_key;
    X509 *ca_cert;
} sample;

/* Send one call to the card and decode the answer; 0 only on status OK. */
static int call(sample *s, uint8_t method, const void *req, void *resp, sks_writer *answer)
{
    const sks_msgdesc *d = sks_msg_find(method);
    sks_writer w;
    uint8_t status = 0xFF;
    sks_view err = {NULL, 0};
    sks_writer_init(&w);
    if (d == NULL || sks_msg_encode_request(d, req, &w) != 0) {
        fprintf(stderr, "cannot encode the call\n");
        sks_writer_free(&w);
        return -1;
    }
    printf("  -> %s: %zu bytes to the card\n", d->name, w.len);
    sks_writer_reset(answer);
    sks_card_call(s->card, w.buf, w.len, answer);
    sks_writer_free(&w);
    if (sks_msg_decode_response(d, answer->buf, answer->len, resp, &status, &err) != 0) {
        fprintf(stderr, "  malformed answer\n");
        return -1;
    }
    if (status != SKS_OK) {
        printf("  <- %s: %.*s\n", sks_status_name(status), (int)err.len, (const char *)err.ptr);
        return -1;
    }
    printf("  <- OK, %zu bytes\n", answer->len);
    return 0;
}

static int issuer_check(sample *s, int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "  issuer: the %s did NOT verify\n", what);
        return -1;
    }
    printf("  issuer verified the %s\n", what);
    return 0;
}

/* Steps 1-6: the provisioning session. Sets *key and *pin_policy. */
static int provision(sample *s, uint32_t *key, uint32_t *pin_policy, X509 **cert)
{
    sks_writer ans, der;
    sks_issuer_msg m;
    int rc = -1;
    sks_writer_init(&ans);
    sks_writer_init(&der);
    sks_issuer_msg_init(&m);

    printf("1. createProvisioningSession\n");
    sks_req_create_session cs;
    sks_resp_create_session cs_r;
    if (sks_issuer_request(s->issuer, 0, 0, 3600, &cs) != 0)
        goto out;
    printf("  sent: SessionKeyAlgorithm=ECDH P-256, IssuerURI=%s, IssuerPublicKey=%zu bytes,\n"
           "        ServerSessionID=32 random bytes, SessionLifeTime=3600 s\n",
           ISSUER_URI, cs.issuer_public_key.len);
    if (call(s, SKS_M_CREATE_PROVISIONING_SESSION, &cs, &cs_r, &ans) != 0)
        goto out;
    printf("  ProvisioningHandle=%u, device certificate path of %u certificate(s)\n",
           cs_r.provisioning_handle, cs_r.device_certificate_path.count);
    if (issuer_check(s, sks_issuer_accept(s->issuer, s->trusted, &cs_r),
                     "session attestation against the manufacturer CA") != 0)
        goto out;

    printf("2. createPUKPolicy\n");
    sks_req_create_puk_policy puk;
    sks_resp_create_puk_policy puk_r;
    sks_view puk_value = {(const uint8_t *)PUK_VALUE, strlen(PUK_VALUE)};
    if (sks_issuer_prepare_puk_policy(s->issuer, "PUK", puk_value, SKS_PIN_NUMERIC, 3, &m, &puk) !=
        0)
        goto out;
    printf("  sent: ID=\"PUK\", EncryptedValue=%zu bytes, Format=numeric, RetryLimit=3, MAC\n",
           puk.encrypted_value.len);
    if (call(s, SKS_M_CREATE_PUK_POLICY, &puk, &puk_r, &ans) != 0)
        goto out;
    printf("  PUKPolicyHandle=%u\n", puk_r.puk_policy_handle);

    printf("3. createPINPolicy\n");
    sks_issuer_pin_policy pp = {
        "PIN", "PUK", 0, 1, SKS_PIN_NUMERIC, 3, SKS_GROUPING_SHARED, SKS_PATTERN_SEQUENCE,
        4,     8,     0, 0};
    sks_req_create_pin_policy pin;
    sks_resp_create_pin_policy pin_r;
    if (sks_issuer_prepare_pin_policy(s->issuer, &pp, puk_r.puk_policy_handle, &m, &pin) != 0)
        goto out;
    printf("  sent: ID=\"PIN\", PUKPolicyHandle=%u, numeric, 4..8 digits, RetryLimit=3, "
           "no sequences, MAC\n",
           puk_r.puk_policy_handle);
    if (call(s, SKS_M_CREATE_PIN_POLICY, &pin, &pin_r, &ans) != 0)
        goto out;
    *pin_policy = pin_r.pin_policy_handle;
    printf("  PINPolicyHandle=%u\n", *pin_policy);

    printf("4. createKeyPair\n");
    sks_issuer_key_spec ks = {
        .id = "Key.1",
        .pin_policy_id = "PIN",
        .pin = {(const uint8_t *)PIN_VALUE, strlen(PIN_VALUE)},
        .key_usage = SKS_USAGE_SIGN,
        .friendly_name = "Sample key",
        .algorithm = SKS_KEYALG_EC_P256,
    };
    sks_req_create_key_pair kp;
    sks_resp_create_key_pair kp_r;
    if (sks_issuer_prepare_key_pair(s->issuer, &ks, *pin_policy, &m, &kp) != 0)
        goto out;
    printf("  sent: ID=\"Key.1\", PINPolicyHandle=%u, PINValue=%zu bytes (encrypted), "
           "EC P-256, sign, MAC\n",
           *pin_policy, kp.pin_value.len);
    if (call(s, SKS_M_CREATE_KEY_PAIR, &kp, &kp_r, &ans) != 0)
        goto out;
    *key = kp_r.key_handle;
    printf("  KeyHandle=%u, PublicKey=%zu bytes\n", *key, kp_r.public_key.len);
    if (issuer_check(s, sks_issuer_verify_key_attestation(s->issuer, &m, &kp_r),
                     "key attestation") != 0)
        goto out;

    printf("5. setCertificatePath\n");
    *cert = sks_issuer_issue_cert(s->ca_key, s->ca_cert, kp_r.public_key, "Sample key", 1);
    if (*cert == NULL || sks_issuer_cert_der(*cert, &der) != 0) {
        fprintf(stderr, "  cannot issue the certificate\n");
        goto out;
    }
    sks_view path[1] = {{der.buf, der.len}};
    sks_req_set_certificate_path cp;
    if (sks_issuer_prepare_certificate_path(s->issuer, "Key.1", *key, path, 1, &m, &cp) != 0)
        goto out;
    printf("  sent: KeyHandle=%u, a %zu-byte certificate the issuer made for the attested key, "
           "MAC\n",
           *key, der.len);
    if (call(s, SKS_M_SET_CERTIFICATE_PATH, &cp, NULL, &ans) != 0)
        goto out;

    printf("6. closeProvisioningSession\n");
    sks_req_close_session cl;
    sks_resp_close_session cl_r;
    if (sks_issuer_prepare_close(s->issuer, &m, &cl) != 0)
        goto out;
    printf("  sent: GeneratedKeys=%u, DeletedKeys=0, ClonedKeys=0, ReplacedKeys=0, "
           "ExtensionObjects=0, MAC\n",
           cl.generated_keys);
    if (call(s, SKS_M_CLOSE_PROVISIONING_SESSION, &cl, &cl_r, &ans) != 0)
        goto out;
    if (issuer_check(s, sks_issuer_verify_close(s->issuer, &m, &cl_r), "close attestation") != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0 && s->issuer != NULL && sks_issuer_error(s->issuer)[0] != '\0')
        fprintf(stderr, "  issuer: %s\n", sks_issuer_error(s->issuer));
    sks_issuer_msg_free(&m);
    sks_writer_free(&ans);
    sks_writer_free(&der);
    return rc;
}

/* An ECDSA signature r | s (each `half` bytes) as DER. */
static int ecdsa_der(sks_view rs, unsigned char **der, int *len)
{
    size_t half = rs.len / 2;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs.ptr, (int)half, NULL), *sv = BN_bin2bn(rs.ptr + half, (int)half, NULL);
    if (sig == NULL || r == NULL || sv == NULL || rs.len % 2 != 0 ||
        ECDSA_SIG_set0(sig, r, sv) != 1) {
        BN_free(r);
        BN_free(sv);
        ECDSA_SIG_free(sig);
        return -1;
    }
    *der = NULL;
    *len = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return *len > 0 ? 0 : -1;
}

/* Step 7: verifyPIN + signHashedData, the signature checked with the certificate. */
static int use_key(sample *s, uint32_t key, uint32_t pin_policy, X509 *cert)
{
    static const char message[] = "The SKS sample session signs this.";
    uint8_t hash[32];
    sks_writer ans;
    int rc = -1;
    sks_writer_init(&ans);

    printf("7. Key User API: verifyPIN + signHashedData\n");
    sks_req_verify_pin vp = {pin_policy, {(const uint8_t *)PIN_VALUE, strlen(PIN_VALUE)}};
    if (call(s, SKS_M_VERIFY_PIN, &vp, NULL, &ans) != 0)
        goto out;
    if (sks_sha256((const uint8_t *)message, strlen(message), hash) != 0)
        goto out;
    sks_req_sign sg = {key, SKS_SIGN_ECDSA, SKS_HASH_SHA256, 0, {hash, sizeof hash}};
    sks_resp_sign sg_r;
    printf("  sent: KeyHandle=%u, ECDSA, SHA-256 of \"%s\"\n", key, message);
    if (call(s, SKS_M_SIGN_HASHED_DATA, &sg, &sg_r, &ans) != 0)
        goto out;

    unsigned char *der = NULL;
    int len = 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, X509_get0_pubkey(cert), NULL);
    int ok = ctx != NULL && ecdsa_der(sg_r.signature, &der, &len) == 0 &&
             EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_verify(ctx, der, (size_t)len, hash, sizeof hash) == 1;
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        fprintf(stderr, "  the signature does NOT verify with the certificate\n");
        goto out;
    }
    printf("  issuer verified the signature with the certificate it issued\n");
    rc = 0;
out:
    sks_writer_free(&ans);
    return rc;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void usage(void)
{
    fprintf(stderr, "usage: sks-sample-session [--state-dir DIR] [--manufacturer-ca PEM]\n");
}

/* Open the card in dir, initialising it first if it holds none. */
static sks_card *open_card(const char *dir, int fresh)
{
    char err[256] = "";
    sks_card *card = fresh ? NULL : sks_card_open(dir, err, sizeof err);
    if (card != NULL)
        return card;
    sks_card_init_opts opts;
    memset(&opts, 0, sizeof opts);
    if (sks_card_init_state(dir, &opts, err, sizeof err) != 0) {
        fprintf(stderr, "cannot initialise a card in %s: %s\n", dir, err);
        return NULL;
    }
    card = sks_card_open(dir, err, sizeof err);
    if (card == NULL)
        fprintf(stderr, "cannot open the card in %s: %s\n", dir, err);
    return card;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"state-dir", required_argument, NULL, 'd'},
        {"manufacturer-ca", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *state_dir = NULL, *ca_file = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "d:c:h", options, NULL)) != -1) {
        if (opt == 'd')
            state_dir = optarg;
        else if (opt == 'c')
            ca_file = optarg;
        else {
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc) {
        usage();
        return 2;
    }

    char tmp[] = "/tmp/sks-sample-XXXXXX";
    int fresh = state_dir == NULL;
    if (fresh && (state_dir = mkdtemp(tmp)) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    printf("card state: %s%s\n", state_dir, fresh ? " (temporary)" : "");

    sample s;
    memset(&s, 0, sizeof s);
    uint32_t key = 0, pin_policy = 0;
    X509 *cert = NULL;
    int rc = 1;
    char ca_path[4200];
    snprintf(ca_path, sizeof ca_path, "%s/manufacturer/ca-cert.pem", state_dir);

    s.card = open_card(state_dir, fresh);
    if (s.card == NULL)
        goto out;
    s.trusted = sks_issuer_trust_pem(ca_file != NULL ? ca_file : ca_path);
    if (s.trusted == NULL) {
        fprintf(stderr, "cannot load the manufacturer CA %s\n",
                ca_file != NULL ? ca_file : ca_path);
        goto out;
    }
    s.issuer = sks_issuer_session_new(SKS_SKALG_ECDH_P256, ISSUER_URI, NULL);
    if (s.issuer == NULL || sks_issuer_ca_new("SKS Sample Issuer CA", &s.ca_key, &s.ca_cert) != 0) {
        fprintf(stderr, "cannot set up the issuer\n");
        goto out;
    }
    if (provision(&s, &key, &pin_policy, &cert) != 0)
        goto out;
    if (use_key(&s, key, pin_policy, cert) != 0)
        goto out;
    printf("sample session complete: every verification passed\n");
    rc = 0;
out:
    X509_free(cert);
    X509_free(s.ca_cert);
    EVP_PKEY_free(s.ca_key);
    sks_issuer_session_free(s.issuer);
    X509_STORE_free(s.trusted);
    sks_card_close(s.card);
    if (fresh)
        nftw(state_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc != 0)
        fprintf(stderr, "sample session FAILED\n");
    return rc;
}
