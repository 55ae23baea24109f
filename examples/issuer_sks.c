/*
 * issuer_sks.c - sks-issuer-demo's side of scenario (b), the SKS seed's
 * sample session, prepared and verified on the issuer token (no-card mode)
 * with the same mechanisms the client uses on the card:
 *
 *   C_GenerateKey(CKM_VENDOR_SKS_SESSION)            the session request
 *   C_DeriveKey(CKM_VENDOR_SKS_SESSION_ACCEPT)       device path + attestation
 *   C_DeriveKey(CKM_VENDOR_SKS_PUK_POLICY, ...)      each call's MAC and
 *   ... PIN_POLICY, KEY_PAIR, CERTIFICATE_PATH,      encrypted values
 *       CLOSE
 *   C_DeriveKey(CKM_VENDOR_SKS_VERIFY_KEY_PAIR)      the key attestation
 *   C_DeriveKey(CKM_VENDOR_SKS_VERIFY_CLOSE)         the close attestation
 *
 * The PUK, PIN policy and key pair calls go out as one batch (the card
 * checks their order through the MAC counter); the certificate path and the
 * close follow once the key's attestation has verified.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "demo_proto.h"
#include "issuer_demo.h"

#define ISSUER_URI   "https://issuer.example/sks-issuer-demo"
#define ISSUER_LABEL "sks-issuer-demo session key"
#define PUK_VALUE    "01234567"

static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* The issuer's persistent EC P-256 key the cards encrypt the session secret to. */
static CK_OBJECT_HANDLE issuer_key(demo_issuer *d)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_LABEL, ISSUER_LABEL, sizeof(ISSUER_LABEL) - 1}};
    CK_OBJECT_HANDLE priv = demo_p11_find(&d->p11, find, 2), pub;
    if (priv != CK_INVALID_HANDLE)
        return priv;
    static const unsigned char p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                         0xCE, 0x3D, 0x03, 0x01, 0x07};
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pubt[] = {{CKA_TOKEN, (void *)&yes, sizeof(yes)},
                           {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
                           {CKA_LABEL, ISSUER_LABEL, sizeof(ISSUER_LABEL) - 1}};
    CK_ATTRIBUTE privt[] = {{CKA_TOKEN, (void *)&yes, sizeof(yes)},
                            {CKA_SENSITIVE, (void *)&yes, sizeof(yes)},
                            {CKA_EXTRACTABLE, (void *)&no, sizeof(no)},
                            {CKA_DERIVE, (void *)&yes, sizeof(yes)},
                            {CKA_LABEL, ISSUER_LABEL, sizeof(ISSUER_LABEL) - 1}};
    if (demo_check(
            d->p11.f->C_GenerateKeyPair(d->p11.session, &gen, pubt, 3, privt, 5, &pub, &priv),
            "C_GenerateKeyPair(issuer key)"))
        return CK_INVALID_HANDLE;
    return priv;
}

/* The manufacturer CA as a session certificate object (the trust anchor). */
static CK_OBJECT_HANDLE trust_anchor(demo_issuer *d)
{
    FILE *f = d->manufacturer_ca ? fopen(d->manufacturer_ca, "r") : NULL;
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL)
        fclose(f);
    unsigned char *der = NULL, *subject = NULL;
    int len = x ? i2d_X509(x, &der) : -1;
    int slen = x ? i2d_X509_NAME(X509_get_subject_name(x), &subject) : -1;
    X509_free(x);
    if (len <= 0 || slen <= 0) {
        fprintf(stderr, "[issuer] no manufacturer CA (--manufacturer-ca PEM) to trust\n");
        OPENSSL_free(der);
        OPENSSL_free(subject);
        return CK_INVALID_HANDLE;
    }
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
                        {CKA_TOKEN, (void *)&no, sizeof(no)},
                        {CKA_SUBJECT, subject, (CK_ULONG)slen},
                        {CKA_VALUE, der, (CK_ULONG)len}};
    demo_check(d->p11.f->C_CreateObject(d->p11.session, t, 5, &h), "C_CreateObject(trust anchor)");
    OPENSSL_free(der);
    OPENSSL_free(subject);
    return h;
}

/* --secrets-out: write a value in hexadecimal after a name (audits and tests). */
static void audit_hex(demo_issuer *d, const char *name, const void *v, size_t n)
{
    if (d->secrets == NULL)
        return;
    fprintf(d->secrets, "%s ", name);
    for (size_t i = 0; i < n; i++)
        fprintf(d->secrets, "%02x", ((const unsigned char *)v)[i]);
    fprintf(d->secrets, "\n");
    fflush(d->secrets);
}

/*
 * With --secrets-out the session's issuer key is a fresh, readable one whose
 * private value is written out, so that an auditor (the tests) can recompute
 * the session key SK from the session's public values and look for it where
 * it must not be. Without it the persistent, unreadable issuer key is used.
 */
static CK_OBJECT_HANDLE audit_issuer_key(demo_issuer *d)
{
    static const unsigned char p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                         0xCE, 0x3D, 0x03, 0x01, 0x07};
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pubt[] = {{CKA_TOKEN, (void *)&no, sizeof(no)},
                           {CKA_EC_PARAMS, (void *)p256, sizeof(p256)}};
    CK_ATTRIBUTE privt[] = {{CKA_TOKEN, (void *)&no, sizeof(no)},
                            {CKA_SENSITIVE, (void *)&no, sizeof(no)},
                            {CKA_EXTRACTABLE, (void *)&yes, sizeof(yes)},
                            {CKA_DERIVE, (void *)&yes, sizeof(yes)}};
    CK_OBJECT_HANDLE pub, priv;
    if (demo_check(
            d->p11.f->C_GenerateKeyPair(d->p11.session, &gen, pubt, 2, privt, 4, &pub, &priv),
            "C_GenerateKeyPair(audited issuer key)"))
        return CK_INVALID_HANDLE;
    size_t len = 0;
    unsigned char *v = demo_p11_attr(&d->p11, priv, CKA_VALUE, &len);
    if (v == NULL) {
        fprintf(stderr, "[issuer] the audited issuer key is not readable\n");
        return CK_INVALID_HANDLE;
    }
    audit_hex(d, "ISSUER_EC_PRIVATE", v, len);
    OPENSSL_cleanse(v, len);
    free(v);
    return priv;
}

typedef struct {
    demo_issuer *d;
    int fd;
    CK_OBJECT_HANDLE session;  /* the issuer's provisioning object */
    CK_OBJECT_HANDLE card_key; /* the card key's public key, after its attestation */
    CK_SKS_KEY_PAIR_PARAMS kp; /* as prepared, for the attestation check */
    unsigned char pin_buf[64];
    int step;
} sks_run;

/* Prepare one in-session call on the issuer token. */
static int prepare(sks_run *r, CK_MECHANISM_TYPE type, void *call, CK_ULONG call_len,
                   const char *ref, const char *value)
{
    CK_SKS_ISSUER_CALL_PARAMS ip;
    memset(&ip, 0, sizeof(ip));
    ip.pCall = call;
    ip.ulCallLen = call_len;
    ip.pReferenceId = (CK_BYTE_PTR)ref;
    ip.ulReferenceIdLen = ref ? (CK_ULONG)strlen(ref) : 0;
    ip.pValue = (CK_BYTE_PTR)value;
    ip.ulValueLen = value ? (CK_ULONG)strlen(value) : 0;
    ip.hPrivateKey = CK_INVALID_HANDLE;
    CK_MECHANISM m = {type, &ip, sizeof(ip)};
    CK_OBJECT_HANDLE none;
    return demo_check(r->d->p11.f->C_DeriveKey(r->d->p11.session, &m, r->session, NULL, 0, &none),
                      "C_DeriveKey(prepare a call)");
}

static int send_call(sks_run *r, demo_msg *m, const char *what)
{
    issuer_step(r->step++, "%s prepared (MAC%s) and sent", what,
                demo_msg_get(m, DP_ENC_VALUE) || demo_msg_get(m, DP_PIN_VALUE) ? ", encrypted value"
                                                                               : "");
    int rc = demo_send(r->fd, m);
    demo_msg_free(m);
    return rc;
}

/* The next answer; its return value must be CKR_OK. */
static int answer(sks_run *r, demo_msg *a, const char *what)
{
    const char *err = NULL;
    uint32_t rv = 0;
    if (demo_recv(r->fd, a, &err) != 0) {
        fprintf(stderr, "[issuer] client: %s\n", err);
        return -1;
    }
    if (a->type != DM_ANSWER || demo_msg_get_u32(a, DT_RV, &rv) != 0) {
        fprintf(stderr, "[issuer] expected the card's answer to %s\n", what);
        return -1;
    }
    if (rv != CKR_OK) {
        fprintf(stderr, "[issuer] the card refused %s: %s\n", what, demo_rv_name(rv));
        return -1;
    }
    return 0;
}

/* createProvisioningSession: request, answer, SESSION_ACCEPT. */
static int open_session(sks_run *r, CK_OBJECT_HANDLE ikey, CK_OBJECT_HANDLE anchor)
{
    CK_SKS_ISSUER_SESSION_PARAMS sp;
    unsigned char ipk[512];
    memset(&sp, 0, sizeof(sp));
    sp.ulSessionKeyAlgorithm = CKS_SESSION_KEY_ECDH_P256;
    sp.pIssuerUri = (CK_UTF8CHAR_PTR)ISSUER_URI;
    sp.ulIssuerUriLen = sizeof(ISSUER_URI) - 1;
    sp.hIssuerKey = ikey;
    sp.bUpdatable = CK_TRUE;
    sp.ulClientOperationLimit = r->d->operation_limit;
    sp.ulSessionLifeTime = r->d->session_lifetime;
    sp.pIssuerPublicKey = ipk;
    sp.ulIssuerPublicKeyLen = sizeof(ipk);
    CK_MECHANISM m = {CKM_VENDOR_SKS_SESSION, &sp, sizeof(sp)};
    if (demo_check(r->d->p11.f->C_GenerateKey(r->d->p11.session, &m, NULL, 0, &r->session),
                   "C_GenerateKey(CKM_VENDOR_SKS_SESSION)"))
        return -1;
    demo_msg c, a;
    demo_msg_init(&c, DM_CALL);
    demo_msg_init(&a, 0);
    if (demo_msg_add_u32(&c, DT_MECH, CKM_VENDOR_SKS_SESSION) ||
        demo_msg_add_u32(&c, DP_SESSION_KEY_ALG, (uint32_t)sp.ulSessionKeyAlgorithm) ||
        demo_msg_add(&c, DP_SERVER_SESSION, sp.serverSessionId, CKS_SESSION_ID_LEN) ||
        demo_msg_add_str(&c, DP_ISSUER_URI, ISSUER_URI) ||
        demo_msg_add(&c, DP_ISSUER_KEY, ipk, sp.ulIssuerPublicKeyLen) ||
        demo_msg_add_u32(&c, DP_UPDATABLE, 1) ||
        demo_msg_add_u32(&c, DP_OPERATION_LIMIT, (uint32_t)sp.ulClientOperationLimit) ||
        demo_msg_add_u32(&c, DP_LIFETIME, (uint32_t)sp.ulSessionLifeTime) ||
        send_call(r, &c, "createProvisioningSession") != 0 ||
        answer(r, &a, "createProvisioningSession") != 0) {
        demo_msg_free(&c);
        demo_msg_free(&a);
        return -1;
    }
    /* The card's answer as the card side's struct; then the checks. */
    CK_SKS_SESSION_PARAMS cs;
    memset(&cs, 0, sizeof(cs));
    const demo_field *csid = demo_msg_get(&a, DP_CLIENT_SESSION);
    const demo_field *esk = demo_msg_get(&a, DP_ENC_SESSION_KEY);
    const demo_field *att = demo_msg_get(&a, DP_ATTESTATION);
    size_t path_len = 0;
    for (size_t i = 0; i < a.nfields; i++)
        path_len += a.f[i].tag == DP_DEVICE_CERT ? a.f[i].len : 0;
    unsigned char *path = malloc(path_len ? path_len : 1);
    int rc = -1;
    if (csid == NULL || csid->len != CKS_SESSION_ID_LEN || esk == NULL || att == NULL ||
        path == NULL || path_len == 0) {
        fprintf(stderr, "[issuer] incomplete session answer\n");
        goto out;
    }
    size_t off = 0;
    for (size_t i = 0; i < a.nfields; i++)
        if (a.f[i].tag == DP_DEVICE_CERT) {
            memcpy(path + off, a.f[i].value, a.f[i].len);
            off += a.f[i].len;
        }
    memcpy(cs.clientSessionId, csid->value, CKS_SESSION_ID_LEN);
    cs.pEncryptedSessionKey = (CK_BYTE_PTR)esk->value;
    cs.ulEncryptedSessionKeyLen = esk->len;
    cs.pSessionAttestation = (CK_BYTE_PTR)att->value;
    cs.ulSessionAttestationLen = att->len;
    cs.pDeviceCertificatePath = path;
    cs.ulDeviceCertificatePathLen = (CK_ULONG)path_len;
    if (r->d->secrets != NULL) {
        /* The public inputs of SK (docs/protocol.md 5.1) for the audit. */
        const demo_field *dev = demo_msg_get(&a, DP_DEVICE_CERT);
        audit_hex(r->d, "SK_CLIENT_SESSION_ID", csid->value, csid->len);
        audit_hex(r->d, "SK_SERVER_SESSION_ID", sp.serverSessionId, CKS_SESSION_ID_LEN);
        audit_hex(r->d, "SK_ISSUER_URI", ISSUER_URI, sizeof(ISSUER_URI) - 1);
        audit_hex(r->d, "SK_DEVICE_CERTIFICATE", dev->value, dev->len);
        audit_hex(r->d, "SK_CARD_EPHEMERAL_KEY", esk->value, esk->len);
    }
    CK_SKS_SESSION_ACCEPT_PARAMS ap = {anchor, &cs};
    CK_MECHANISM am = {CKM_VENDOR_SKS_SESSION_ACCEPT, &ap, sizeof(ap)};
    CK_OBJECT_HANDLE none;
    CK_RV rv = r->d->p11.f->C_DeriveKey(r->d->p11.session, &am, r->session, NULL, 0, &none);
    if (rv != CKR_OK) {
        fprintf(stderr,
                "[issuer] the card's device certificate or session attestation does not "
                "verify: %s\n",
                demo_rv_name(rv));
        goto out;
    }
    issuer_step(r->step++, "device certificate path verified up to the manufacturer CA, session "
                           "attestation verified: session key SK agreed");
    rc = 0;
out:
    free(path);
    demo_msg_free(&c);
    demo_msg_free(&a);
    return rc;
}

/* The batch: createPUKPolicy, createPINPolicy (user-defined PIN), createKeyPair (P-256). */
static int send_batch(sks_run *r, const char *cn)
{
    CK_SKS_PUK_POLICY_PARAMS puk;
    unsigned char enc_puk[64];
    memset(&puk, 0, sizeof(puk));
    puk.pId = (CK_BYTE_PTR) "PUK";
    puk.ulIdLen = 3;
    puk.pEncryptedValue = enc_puk;
    puk.ulEncryptedValueLen = sizeof(enc_puk);
    puk.ulFormat = 0;
    puk.ulRetryLimit = 3;
    demo_msg c;
    if (prepare(r, CKM_VENDOR_SKS_PUK_POLICY, &puk, sizeof(puk), NULL, PUK_VALUE) != 0)
        return -1;
    /* Public (it crosses the wire): lets an auditor check the SK it recomputed. */
    audit_hex(r->d, "CHECK_ENCRYPTED_PUK", enc_puk, puk.ulEncryptedValueLen);
    demo_msg_init(&c, DM_CALL);
    if (demo_msg_add_u32(&c, DT_MECH, CKM_VENDOR_SKS_PUK_POLICY) ||
        demo_msg_add_str(&c, DP_ID, "PUK") ||
        demo_msg_add(&c, DP_ENC_VALUE, enc_puk, puk.ulEncryptedValueLen) ||
        demo_msg_add_u32(&c, DP_FORMAT, 0) || demo_msg_add_u32(&c, DP_RETRY_LIMIT, 3) ||
        demo_msg_add(&c, DP_MAC, puk.mac, CKS_MAC_LEN) || send_call(r, &c, "createPUKPolicy"))
        return -1;

    CK_SKS_PIN_POLICY_PARAMS pin;
    memset(&pin, 0, sizeof(pin));
    pin.pId = (CK_BYTE_PTR) "PIN";
    pin.ulIdLen = 3;
    pin.bUserDefined = CK_TRUE;
    pin.bUserModifiable = CK_TRUE;
    pin.ulFormat = 0;
    pin.ulRetryLimit = 3;
    pin.ulMinLength = 4;
    pin.ulMaxLength = 8;
    pin.bCachingSupport = CK_TRUE;
    if (prepare(r, CKM_VENDOR_SKS_PIN_POLICY, &pin, sizeof(pin), "PUK", NULL) != 0)
        return -1;
    demo_msg_init(&c, DM_CALL);
    if (demo_msg_add_u32(&c, DT_MECH, CKM_VENDOR_SKS_PIN_POLICY) ||
        demo_msg_add_str(&c, DP_ID, "PIN") || demo_msg_add_str(&c, DP_PUK_ID, "PUK") ||
        demo_msg_add_u32(&c, DP_USER_DEFINED, 1) || demo_msg_add_u32(&c, DP_USER_MODIFIABLE, 1) ||
        demo_msg_add_u32(&c, DP_FORMAT, 0) || demo_msg_add_u32(&c, DP_RETRY_LIMIT, 3) ||
        demo_msg_add_u32(&c, DP_GROUPING, 0) || demo_msg_add_u32(&c, DP_PATTERN, 0) ||
        demo_msg_add_u32(&c, DP_MIN_LENGTH, 4) || demo_msg_add_u32(&c, DP_MAX_LENGTH, 8) ||
        demo_msg_add_u32(&c, DP_CACHING, 1) || demo_msg_add_u32(&c, DP_INPUT_METHOD, 0) ||
        demo_msg_add(&c, DP_MAC, pin.mac, CKS_MAC_LEN) || send_call(r, &c, "createPINPolicy"))
        return -1;

    CK_SKS_KEY_PAIR_PARAMS *kp = &r->kp;
    memset(kp, 0, sizeof(*kp));
    kp->pId = (CK_BYTE_PTR) "Key.1";
    kp->ulIdLen = 5;
    kp->pPinValue = r->pin_buf;
    kp->ulPinValueLen = sizeof(r->pin_buf);
    kp->ulKeyUsage = 1; /* sign */
    kp->pFriendlyName = (CK_UTF8CHAR_PTR)cn;
    kp->ulFriendlyNameLen = (CK_ULONG)strlen(cn);
    kp->ulAlgorithm = 0x10; /* EC P-256 */
    if (prepare(r, CKM_VENDOR_SKS_KEY_PAIR, kp, sizeof(*kp), "PIN", NULL) != 0)
        return -1;
    demo_msg_init(&c, DM_CALL);
    if (demo_msg_add_u32(&c, DT_MECH, CKM_VENDOR_SKS_KEY_PAIR) ||
        demo_msg_add_str(&c, DP_ID, "Key.1") || demo_msg_add_str(&c, DP_PIN_ID, "PIN") ||
        (kp->ulPinValueLen > 0 && demo_msg_add(&c, DP_PIN_VALUE, r->pin_buf, kp->ulPinValueLen)) ||
        demo_msg_add_u32(&c, DP_KEY_USAGE, 1) || demo_msg_add_str(&c, DP_FRIENDLY_NAME, cn) ||
        demo_msg_add_u32(&c, DP_KEY_ALG, 0x10) || demo_msg_add(&c, DP_MAC, kp->mac, CKS_MAC_LEN) ||
        send_call(r, &c, "createKeyPair (EC P-256, user-defined PIN)"))
        return -1;
    return 0;
}

/* The batch's answers; the key attestation verified, the card key's public key kept. */
static int check_batch(sks_run *r)
{
    demo_msg a;
    demo_msg_init(&a, 0);
    if (answer(r, &a, "createPUKPolicy") != 0 || (demo_msg_free(&a), 0) ||
        answer(r, &a, "createPINPolicy") != 0 || (demo_msg_free(&a), 0) ||
        answer(r, &a, "createKeyPair") != 0) {
        demo_msg_free(&a);
        return -1;
    }
    const demo_field *pub = demo_msg_get(&a, DP_PUBLIC_KEY),
                     *att = demo_msg_get(&a, DP_ATTESTED_KEY);
    const demo_field *bk = demo_msg_get(&a, DP_KEY_BACKUP);
    int rc = -1;
    if (pub == NULL || att == NULL || att->len != CKS_MAC_LEN) {
        fprintf(stderr, "[issuer] incomplete createKeyPair answer\n");
        goto out;
    }
    r->kp.pPublicKey = (CK_BYTE_PTR)pub->value;
    r->kp.ulPublicKeyLen = pub->len;
    memcpy(r->kp.attestedPublicKey, att->value, CKS_MAC_LEN);
    r->kp.pEncryptedPrivateKey = bk ? (CK_BYTE_PTR)bk->value : NULL;
    r->kp.ulEncryptedPrivateKeyLen = bk ? bk->len : 0;
    CK_MECHANISM m = {CKM_VENDOR_SKS_VERIFY_KEY_PAIR, &r->kp, sizeof(r->kp)};
    CK_RV rv = r->d->p11.f->C_DeriveKey(r->d->p11.session, &m, r->session, NULL, 0, &r->card_key);
    if (rv != CKR_OK) {
        fprintf(stderr, "[issuer] the key attestation does not verify: %s\n", demo_rv_name(rv));
        goto out;
    }
    issuer_step(r->step++, "key attestation verified: the P-256 key was generated on the card "
                           "under the PIN policy");
    rc = 0;
out:
    r->kp.pPublicKey = NULL;
    r->kp.pEncryptedPrivateKey = NULL;
    demo_msg_free(&a);
    return rc;
}

/* setCertificatePath for the card key, then closeProvisioningSession and its attestation. */
static int certify_and_close(sks_run *r, const char *cn)
{
    size_t spki_len = 0, cert_len = 0, ca_len = 0;
    unsigned char *spki = demo_p11_attr(&r->d->p11, r->card_key, CKA_PUBLIC_KEY_INFO, &spki_len);
    unsigned char *cert = NULL, *ca = NULL, *path = NULL;
    uint32_t serial = r->d->next_serial++;
    int rc = -1;
    demo_msg c, a;
    demo_msg_init(&c, DM_CALL);
    demo_msg_init(&a, 0);
    if (spki == NULL || demo_ca_issue(&r->d->ca, spki, spki_len, cn, serial, &cert, &cert_len) ||
        demo_ca_cert_der(&r->d->ca, &ca, &ca_len) || (path = malloc(cert_len + ca_len)) == NULL)
        goto out;
    issuer_step(r->step++, "certificate serial %u issued for the card key (CN=%s)", serial, cn);
    memcpy(path, cert, cert_len);
    memcpy(path + cert_len, ca, ca_len);
    CK_SKS_CERTIFICATE_PATH_PARAMS cp;
    memset(&cp, 0, sizeof(cp));
    cp.pCertificatePath = path;
    cp.ulCertificatePathLen = (CK_ULONG)(cert_len + ca_len);
    if (prepare(r, CKM_VENDOR_SKS_CERTIFICATE_PATH, &cp, sizeof(cp), "Key.1", NULL) != 0 ||
        demo_msg_add_u32(&c, DT_MECH, CKM_VENDOR_SKS_CERTIFICATE_PATH) ||
        demo_msg_add_str(&c, DP_KEY_ID, "Key.1") || demo_msg_add(&c, DP_CERT, cert, cert_len) ||
        demo_msg_add(&c, DP_CERT, ca, ca_len) || demo_msg_add(&c, DP_MAC, cp.mac, CKS_MAC_LEN) ||
        send_call(r, &c, "setCertificatePath"))
        goto out;
    CK_SKS_CLOSE_PARAMS cl;
    memset(&cl, 0, sizeof(cl));
    cl.ulGeneratedKeys = 1;
    unsigned char counts[20] = {0, 0, 0, 1};
    demo_msg_init(&c, DM_CALL);
    if (prepare(r, CKM_VENDOR_SKS_CLOSE, &cl, sizeof(cl), NULL, NULL) != 0 ||
        demo_msg_add_u32(&c, DT_MECH, CKM_VENDOR_SKS_CLOSE) ||
        demo_msg_add(&c, DP_CLOSE_COUNTS, counts, sizeof(counts)) ||
        demo_msg_add(&c, DP_MAC, cl.mac, CKS_MAC_LEN) ||
        send_call(r, &c, "closeProvisioningSession") || answer(r, &a, "setCertificatePath") != 0 ||
        (demo_msg_free(&a), 0) || answer(r, &a, "closeProvisioningSession") != 0)
        goto out;
    const demo_field *att = demo_msg_get(&a, DP_ATTESTED_CLOSE);
    if (att == NULL || att->len != CKS_MAC_LEN)
        goto out;
    memcpy(cl.attestedResponse, att->value, CKS_MAC_LEN);
    CK_MECHANISM m = {CKM_VENDOR_SKS_VERIFY_CLOSE, &cl, sizeof(cl)};
    CK_OBJECT_HANDLE none;
    CK_RV rv = r->d->p11.f->C_DeriveKey(r->d->p11.session, &m, r->session, NULL, 0, &none);
    if (rv != CKR_OK) {
        fprintf(stderr, "[issuer] the close attestation does not verify: %s\n", demo_rv_name(rv));
        goto out;
    }
    issuer_step(r->step++, "close attestation verified: the card holds exactly what was asked");
    rc = 0;
out:
    free(spki);
    free(path);
    OPENSSL_free(cert);
    OPENSSL_free(ca);
    demo_msg_free(&c);
    demo_msg_free(&a);
    return rc;
}

int issuer_sks(demo_issuer *d, int fd, const demo_msg *hello)
{
    char cn[128] = "SKS enrolled user";
    const demo_field *subj = demo_msg_get(hello, DT_SUBJECT);
    if (subj != NULL && subj->len > 0 && subj->len < sizeof(cn)) {
        memcpy(cn, subj->value, subj->len);
        cn[subj->len] = '\0';
    }
    sks_run r;
    memset(&r, 0, sizeof(r));
    r.d = d;
    r.fd = fd;
    r.step = 1;
    r.session = r.card_key = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE ikey = d->secrets ? audit_issuer_key(d) : issuer_key(d);
    CK_OBJECT_HANDLE anchor = trust_anchor(d);
    int rc = -1;
    if (ikey == CK_INVALID_HANDLE || anchor == CK_INVALID_HANDLE) {
        rc = issuer_fail(fd, "the issuer is not set up (issuer key, manufacturer CA)");
        goto out;
    }
    if (open_session(&r, ikey, anchor) != 0 || send_batch(&r, cn) != 0 || check_batch(&r) != 0 ||
        certify_and_close(&r, cn) != 0) {
        rc = issuer_fail(fd, "provisioning session failed");
        goto out;
    }
    demo_msg done;
    demo_msg_init(&done, DM_DONE);
    rc = demo_msg_add_str(&done, DT_TEXT, "provisioned") == 0 ? demo_send(fd, &done) : -1;
    demo_msg_free(&done);
out:
    OPENSSL_cleanse(r.pin_buf, sizeof(r.pin_buf));
    if (r.card_key != CK_INVALID_HANDLE)
        d->p11.f->C_DestroyObject(d->p11.session, r.card_key);
    if (r.session != CK_INVALID_HANDLE)
        d->p11.f->C_DestroyObject(d->p11.session, r.session);
    if (anchor != CK_INVALID_HANDLE)
        d->p11.f->C_DestroyObject(d->p11.session, anchor);
    if (d->secrets != NULL && ikey != CK_INVALID_HANDLE) /* the audited key is for one session */
        d->p11.f->C_DestroyObject(d->p11.session, ikey);
    return rc;
}
