/*
 * enroll_sks.c - sks-enroll's side of scenario (b), the SKS seed's sample
 * session: the issuer sends each provisioning call prepared (MACs and
 * encrypted values made with the session key SK, which only it and the card
 * know), the client turns it into the matching PKCS#11 call with a
 * CKM_VENDOR_SKS_* mechanism and returns the card's answer:
 *
 *   C_GenerateKey(CKM_VENDOR_SKS_SESSION)          createProvisioningSession
 *   C_DeriveKey(CKM_VENDOR_SKS_PUK_POLICY, ...)    createPUKPolicy
 *   ... PIN_POLICY, KEY_PAIR, CERTIFICATE_PATH, IMPORT/RESTORE_PRIVATE_KEY,
 *   POST_*, CLOSE; C_DestroyObject aborts.
 *
 * The client keeps the map from the IDs the issuer uses to its own object
 * handles: handles never leave the client, as in the SKS architecture.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_proto.h"
#include "enroll.h"

#define MAX_OBJECTS 32

typedef struct {
    char id[40];
    CK_OBJECT_HANDLE h;
} named_object;

typedef struct {
    CK_BYTE id[32];
    CK_ULONG len;
} key_id;

typedef struct {
    demo_enroll *e;
    CK_OBJECT_HANDLE provisioning;
    named_object obj[MAX_OBJECTS];
    size_t nobj;
    key_id keys[MAX_OBJECTS]; /* the IDs of the keys the card created, for the report */
    size_t nkeys;
} relay;

/* Field helpers: a number (0 when missing), a byte string view. */
static CK_ULONG num(const demo_msg *m, uint8_t tag)
{
    uint32_t v = 0;
    return demo_msg_get_u32(m, tag, &v) == 0 ? v : 0;
}

static CK_BYTE_PTR bytes(const demo_msg *m, uint8_t tag, CK_ULONG *len)
{
    const demo_field *f = demo_msg_get(m, tag);
    *len = f ? f->len : 0;
    return f ? (CK_BYTE_PTR)f->value : NULL;
}

static int copy_mac(const demo_msg *m, CK_BYTE mac[CKS_MAC_LEN])
{
    const demo_field *f = demo_msg_get(m, DP_MAC);
    if (f == NULL || f->len != CKS_MAC_LEN)
        return -1;
    memcpy(mac, f->value, CKS_MAC_LEN);
    return 0;
}

/* The client's handle of an object the issuer named by ID (CK_INVALID_HANDLE if none). */
static CK_OBJECT_HANDLE lookup(const relay *r, const demo_msg *m, uint8_t tag)
{
    const demo_field *f = demo_msg_get(m, tag);
    if (f == NULL || f->len == 0)
        return CK_INVALID_HANDLE;
    for (size_t i = 0; i < r->nobj; i++)
        if (strlen(r->obj[i].id) == f->len && memcmp(r->obj[i].id, f->value, f->len) == 0)
            return r->obj[i].h;
    return CK_INVALID_HANDLE;
}

static void remember(relay *r, const demo_msg *m, CK_OBJECT_HANDLE h)
{
    const demo_field *f = demo_msg_get(m, DP_ID);
    if (f == NULL || f->len >= sizeof(r->obj[0].id) || r->nobj >= MAX_OBJECTS)
        return;
    memcpy(r->obj[r->nobj].id, f->value, f->len);
    r->obj[r->nobj].id[f->len] = '\0';
    r->obj[r->nobj++].h = h;
}

/* All DP_CERT (or DP_DEVICE_CERT) fields concatenated (malloc'ed). */
static CK_BYTE_PTR certs(const demo_msg *m, uint8_t tag, CK_ULONG *len)
{
    size_t total = 0, off = 0;
    for (size_t i = 0; i < m->nfields; i++)
        total += m->f[i].tag == tag ? m->f[i].len : 0;
    CK_BYTE_PTR b = malloc(total ? total : 1);
    for (size_t i = 0; b != NULL && i < m->nfields; i++)
        if (m->f[i].tag == tag) {
            memcpy(b + off, m->f[i].value, m->f[i].len);
            off += m->f[i].len;
        }
    *len = (CK_ULONG)total;
    return b;
}

/* Split a concatenation of DER certificates into DP_DEVICE_CERT fields. */
static int add_cert_fields(demo_msg *a, const CK_BYTE *p, CK_ULONG len)
{
    while (len > 0) {
        /* DER SEQUENCE: 30 82 hi lo (certificates are longer than 255 bytes) or 30 81 n. */
        size_t n;
        if (len >= 4 && p[0] == 0x30 && p[1] == 0x82)
            n = 4 + ((size_t)p[2] << 8 | p[3]);
        else if (len >= 3 && p[0] == 0x30 && p[1] == 0x81)
            n = 3 + p[2];
        else
            return -1;
        if (n > len || demo_msg_add(a, DP_DEVICE_CERT, p, n) != 0)
            return -1;
        p += n;
        len -= n;
    }
    return 0;
}

static CK_RV open_session(relay *r, const demo_msg *m, demo_msg *a)
{
    CK_SKS_SESSION_PARAMS p;
    CK_BYTE esk[CKS_SESSION_KEY_MAX], att[CKS_ATTESTATION_MAX];
    CK_BYTE *path = malloc(CKS_CERT_PATH_MAX);
    CK_ULONG n;
    memset(&p, 0, sizeof(p));
    CK_BYTE_PTR ssid = bytes(m, DP_SERVER_SESSION, &n);
    if (path == NULL || ssid == NULL || n != CKS_SESSION_ID_LEN) {
        free(path);
        return CKR_ARGUMENTS_BAD;
    }
    memcpy(p.serverSessionId, ssid, n);
    p.ulSessionKeyAlgorithm = num(m, DP_SESSION_KEY_ALG);
    p.pIssuerUri = bytes(m, DP_ISSUER_URI, &p.ulIssuerUriLen);
    p.pIssuerPublicKey = bytes(m, DP_ISSUER_KEY, &p.ulIssuerPublicKeyLen);
    p.bUpdatable = num(m, DP_UPDATABLE) ? CK_TRUE : CK_FALSE;
    p.ulClientOperationLimit = num(m, DP_OPERATION_LIMIT);
    p.ulSessionLifeTime = num(m, DP_LIFETIME);
    p.pEncryptedSessionKey = esk;
    p.ulEncryptedSessionKeyLen = sizeof(esk);
    p.pSessionAttestation = att;
    p.ulSessionAttestationLen = sizeof(att);
    p.pDeviceCertificatePath = path;
    p.ulDeviceCertificatePathLen = CKS_CERT_PATH_MAX;
    CK_MECHANISM mech = {CKM_VENDOR_SKS_SESSION, &p, sizeof(p)};
    CK_RV rv = r->e->p11.f->C_GenerateKey(r->e->p11.session, &mech, NULL, 0, &r->provisioning);
    if (rv == CKR_OK &&
        (demo_msg_add(a, DP_CLIENT_SESSION, p.clientSessionId, CKS_SESSION_ID_LEN) ||
         demo_msg_add(a, DP_ENC_SESSION_KEY, esk, p.ulEncryptedSessionKeyLen) ||
         demo_msg_add(a, DP_ATTESTATION, att, p.ulSessionAttestationLen) ||
         add_cert_fields(a, path, p.ulDeviceCertificatePathLen)))
        rv = CKR_HOST_MEMORY;
    free(path);
    return rv;
}

static CK_RV derive(relay *r, CK_MECHANISM_TYPE type, void *params, CK_ULONG len,
                    CK_OBJECT_HANDLE *out)
{
    CK_MECHANISM mech = {type, params, len};
    *out = CK_INVALID_HANDLE;
    return r->e->p11.f->C_DeriveKey(r->e->p11.session, &mech, r->provisioning, NULL, 0, out);
}

static CK_RV puk_policy(relay *r, const demo_msg *m)
{
    CK_SKS_PUK_POLICY_PARAMS p;
    CK_OBJECT_HANDLE h;
    memset(&p, 0, sizeof(p));
    p.pId = bytes(m, DP_ID, &p.ulIdLen);
    p.pEncryptedValue = bytes(m, DP_ENC_VALUE, &p.ulEncryptedValueLen);
    p.ulFormat = num(m, DP_FORMAT);
    p.ulRetryLimit = num(m, DP_RETRY_LIMIT);
    if (copy_mac(m, p.mac) != 0)
        return CKR_ARGUMENTS_BAD;
    CK_RV rv = derive(r, CKM_VENDOR_SKS_PUK_POLICY, &p, sizeof(p), &h);
    if (rv == CKR_OK)
        remember(r, m, h);
    return rv;
}

static CK_RV pin_policy(relay *r, const demo_msg *m)
{
    CK_SKS_PIN_POLICY_PARAMS p;
    CK_OBJECT_HANDLE h;
    memset(&p, 0, sizeof(p));
    p.pId = bytes(m, DP_ID, &p.ulIdLen);
    p.hPukPolicy = lookup(r, m, DP_PUK_ID);
    p.bUserDefined = num(m, DP_USER_DEFINED) ? CK_TRUE : CK_FALSE;
    p.bUserModifiable = num(m, DP_USER_MODIFIABLE) ? CK_TRUE : CK_FALSE;
    p.ulFormat = num(m, DP_FORMAT);
    p.ulRetryLimit = num(m, DP_RETRY_LIMIT);
    p.ulGrouping = num(m, DP_GROUPING);
    p.ulPatternRestrictions = num(m, DP_PATTERN);
    p.ulMinLength = num(m, DP_MIN_LENGTH);
    p.ulMaxLength = num(m, DP_MAX_LENGTH);
    p.bCachingSupport = num(m, DP_CACHING) ? CK_TRUE : CK_FALSE;
    p.ulInputMethod = num(m, DP_INPUT_METHOD);
    if (copy_mac(m, p.mac) != 0)
        return CKR_ARGUMENTS_BAD;
    CK_RV rv = derive(r, CKM_VENDOR_SKS_PIN_POLICY, &p, sizeof(p), &h);
    if (rv == CKR_OK)
        remember(r, m, h);
    return rv;
}

static CK_RV key_pair(relay *r, const demo_msg *m, demo_msg *a)
{
    CK_SKS_KEY_PAIR_PARAMS p;
    CK_BYTE pub[CKS_PUBLIC_KEY_MAX];
    CK_BYTE *backup = malloc(CKS_ENCRYPTED_KEY_MAX);
    CK_OBJECT_HANDLE h;
    memset(&p, 0, sizeof(p));
    if (backup == NULL)
        return CKR_HOST_MEMORY;
    p.pId = bytes(m, DP_ID, &p.ulIdLen);
    p.hPinPolicy = lookup(r, m, DP_PIN_ID);
    p.pPinValue = bytes(m, DP_PIN_VALUE, &p.ulPinValueLen);
    if (p.pPinValue == NULL && p.hPinPolicy != CK_INVALID_HANDLE && r->e->pin != NULL) {
        /* A UserDefined PIN: the user's own, which the issuer never learns. */
        p.pPinValue = (CK_BYTE_PTR)r->e->pin;
        p.ulPinValueLen = (CK_ULONG)strlen(r->e->pin);
        enroll_step(0, "the PIN policy is user defined: using the PIN given to sks-enroll");
    }
    p.bPrivateKeyBackup = num(m, DP_BACKUP) ? CK_TRUE : CK_FALSE;
    p.bMigratable = num(m, DP_MIGRATABLE) ? CK_TRUE : CK_FALSE;
    p.bUpdatable = num(m, DP_KEY_UPDATABLE) ? CK_TRUE : CK_FALSE;
    p.bDeleteProtected = num(m, DP_DELETE_PROTECTED) ? CK_TRUE : CK_FALSE;
    p.bImportPrivateKey = num(m, DP_IMPORT) ? CK_TRUE : CK_FALSE;
    p.ulKeyUsage = num(m, DP_KEY_USAGE);
    p.pFriendlyName = bytes(m, DP_FRIENDLY_NAME, &p.ulFriendlyNameLen);
    p.ulAlgorithm = num(m, DP_KEY_ALG);
    p.pPublicKey = pub;
    p.ulPublicKeyLen = sizeof(pub);
    p.pEncryptedPrivateKey = backup;
    p.ulEncryptedPrivateKeyLen = CKS_ENCRYPTED_KEY_MAX;
    CK_RV rv = copy_mac(m, p.mac) != 0 ? CKR_ARGUMENTS_BAD
                                       : derive(r, CKM_VENDOR_SKS_KEY_PAIR, &p, sizeof(p), &h);
    if (rv == CKR_OK && p.ulIdLen <= sizeof(r->keys[0].id) && r->nkeys < MAX_OBJECTS) {
        memcpy(r->keys[r->nkeys].id, p.pId, p.ulIdLen);
        r->keys[r->nkeys++].len = p.ulIdLen;
    }
    if (rv == CKR_OK) {
        remember(r, m, h);
        if (demo_msg_add(a, DP_PUBLIC_KEY, pub, p.ulPublicKeyLen) ||
            demo_msg_add(a, DP_ATTESTED_KEY, p.attestedPublicKey, CKS_MAC_LEN) ||
            demo_msg_add(a, DP_KEY_BACKUP, backup, p.ulEncryptedPrivateKeyLen))
            rv = CKR_HOST_MEMORY;
    }
    free(backup);
    return rv;
}

static CK_RV certificate_path(relay *r, const demo_msg *m)
{
    CK_SKS_CERTIFICATE_PATH_PARAMS p;
    CK_OBJECT_HANDLE h;
    memset(&p, 0, sizeof(p));
    p.hKey = lookup(r, m, DP_KEY_ID);
    p.pCertificatePath = certs(m, DP_CERT, &p.ulCertificatePathLen);
    CK_RV rv = p.pCertificatePath == NULL || copy_mac(m, p.mac) != 0
                   ? CKR_ARGUMENTS_BAD
                   : derive(r, CKM_VENDOR_SKS_CERTIFICATE_PATH, &p, sizeof(p), &h);
    free(p.pCertificatePath);
    return rv;
}

static CK_RV private_key(relay *r, CK_MECHANISM_TYPE type, const demo_msg *m)
{
    CK_SKS_PRIVATE_KEY_PARAMS p;
    CK_OBJECT_HANDLE h;
    memset(&p, 0, sizeof(p));
    p.hKey = lookup(r, m, DP_KEY_ID);
    p.pEncryptedPrivateKey = bytes(m, DP_ENC_PRIVATE_KEY, &p.ulEncryptedPrivateKeyLen);
    if (copy_mac(m, p.mac) != 0)
        return CKR_ARGUMENTS_BAD;
    return derive(r, type, &p, sizeof(p), &h);
}

static CK_RV post(relay *r, CK_MECHANISM_TYPE type, const demo_msg *m)
{
    CK_SKS_POST_PARAMS p;
    CK_OBJECT_HANDLE h;
    memset(&p, 0, sizeof(p));
    p.hKey = lookup(r, m, DP_KEY_ID);
    p.hNewKey = lookup(r, m, DP_NEW_KEY_ID);
    if (copy_mac(m, p.mac) != 0)
        return CKR_ARGUMENTS_BAD;
    return derive(r, type, &p, sizeof(p), &h);
}

static CK_RV close_session(relay *r, const demo_msg *m, demo_msg *a)
{
    CK_SKS_CLOSE_PARAMS p;
    CK_OBJECT_HANDLE h;
    const demo_field *c = demo_msg_get(m, DP_CLOSE_COUNTS);
    memset(&p, 0, sizeof(p));
    if (c == NULL || c->len != 20 || copy_mac(m, p.mac) != 0)
        return CKR_ARGUMENTS_BAD;
    CK_ULONG v[5];
    for (int i = 0; i < 5; i++)
        v[i] = (CK_ULONG)c->value[4 * i] << 24 | (CK_ULONG)c->value[4 * i + 1] << 16 |
               (CK_ULONG)c->value[4 * i + 2] << 8 | c->value[4 * i + 3];
    p.ulGeneratedKeys = v[0];
    p.ulDeletedKeys = v[1];
    p.ulClonedKeys = v[2];
    p.ulReplacedKeys = v[3];
    p.ulExtensionObjects = v[4];
    CK_RV rv = derive(r, CKM_VENDOR_SKS_CLOSE, &p, sizeof(p), &h);
    if (rv == CKR_OK && demo_msg_add(a, DP_ATTESTED_CLOSE, p.attestedResponse, CKS_MAC_LEN) != 0)
        rv = CKR_HOST_MEMORY;
    if (rv == CKR_OK)
        r->provisioning = CK_INVALID_HANDLE;
    return rv;
}

/* One call: the PKCS#11 call for its mechanism, the answer's fields into `a`. */
static CK_RV run_call(relay *r, CK_MECHANISM_TYPE type, const demo_msg *m, demo_msg *a)
{
    if (type != CKM_VENDOR_SKS_SESSION && r->provisioning == CK_INVALID_HANDLE)
        return CKR_OBJECT_HANDLE_INVALID;
    switch (type) {
    case CKM_VENDOR_SKS_SESSION:
        return open_session(r, m, a);
    case CKM_VENDOR_SKS_PUK_POLICY:
        return puk_policy(r, m);
    case CKM_VENDOR_SKS_PIN_POLICY:
        return pin_policy(r, m);
    case CKM_VENDOR_SKS_KEY_PAIR:
        return key_pair(r, m, a);
    case CKM_VENDOR_SKS_CERTIFICATE_PATH:
        return certificate_path(r, m);
    case CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY:
    case CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY:
        return private_key(r, type, m);
    case CKM_VENDOR_SKS_POST_DELETE_KEY:
    case CKM_VENDOR_SKS_POST_UNLOCK_KEY:
    case CKM_VENDOR_SKS_POST_UPDATE_KEY:
        return post(r, type, m);
    case CKM_VENDOR_SKS_CLOSE:
        return close_session(r, m, a);
    default:
        return CKR_MECHANISM_INVALID;
    }
}

static const char *call_name(CK_MECHANISM_TYPE t)
{
    switch (t) {
    case CKM_VENDOR_SKS_SESSION:
        return "createProvisioningSession";
    case CKM_VENDOR_SKS_PUK_POLICY:
        return "createPUKPolicy";
    case CKM_VENDOR_SKS_PIN_POLICY:
        return "createPINPolicy";
    case CKM_VENDOR_SKS_KEY_PAIR:
        return "createKeyPair";
    case CKM_VENDOR_SKS_CERTIFICATE_PATH:
        return "setCertificatePath";
    case CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY:
        return "importPrivateKey";
    case CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY:
        return "restorePrivateKey";
    case CKM_VENDOR_SKS_POST_DELETE_KEY:
        return "postDeleteKey";
    case CKM_VENDOR_SKS_POST_UNLOCK_KEY:
        return "postUnlockKey";
    case CKM_VENDOR_SKS_POST_UPDATE_KEY:
        return "postUpdateKey";
    case CKM_VENDOR_SKS_CLOSE:
        return "closeProvisioningSession";
    default:
        return "unknown call";
    }
}

int enroll_sks(demo_enroll *e)
{
    relay r;
    memset(&r, 0, sizeof(r));
    r.e = e;
    r.provisioning = CK_INVALID_HANDLE;
    demo_msg m, a;
    demo_msg_init(&m, DM_HELLO);
    demo_msg_init(&a, 0);
    int rc = -1, step = 1;
    enroll_step(step++, "asking the issuer for an SKS provisioning session for CN=%s", e->subject);
    if (demo_msg_add_str(&m, DT_SCENARIO, "sks") || demo_msg_add_str(&m, DT_SUBJECT, e->subject) ||
        demo_send(e->fd, &m) != 0)
        goto out;
    for (;;) {
        const char *err = NULL;
        demo_msg_free(&m);
        if (demo_recv(e->fd, &m, &err) != 0) {
            fprintf(stderr, "[client] issuer: %s\n", err);
            goto out;
        }
        if (m.type == DM_DONE) {
            enroll_step(step, "the issuer verified the card's attestations: done");
            for (size_t i = 0; i < r.nkeys; i++)
                enroll_report_key(&e->p11, r.keys[i].id, r.keys[i].len);
            rc = 0;
            break;
        }
        uint32_t type = 0;
        if (m.type != DM_CALL || demo_msg_get_u32(&m, DT_MECH, &type) != 0) {
            const demo_field *t = demo_msg_get(&m, DT_TEXT);
            fprintf(stderr, "[client] issuer: %.*s\n", t ? (int)t->len : 0,
                    t ? (const char *)t->value : "unexpected message");
            goto out;
        }
        demo_msg_free(&a);
        demo_msg_init(&a, DM_ANSWER);
        CK_RV rv = run_call(&r, type, &m, &a);
        enroll_step(step++, "%s relayed to the card: %s", call_name(type), demo_rv_name(rv));
        if (rv != CKR_OK) {
            /* The card aborted the session; answer with the error only. */
            demo_msg_free(&a);
            demo_msg_init(&a, DM_ANSWER);
        }
        if (demo_msg_add_u32(&a, DT_RV, (uint32_t)rv) != 0 || demo_send(e->fd, &a) != 0)
            goto out;
        if (rv != CKR_OK) {
            enroll_fail(e, "the card refused a provisioning call");
            goto out;
        }
    }
out:
    if (r.provisioning != CK_INVALID_HANDLE) /* abort what was not closed */
        e->p11.f->C_DestroyObject(e->p11.session, r.provisioning);
    demo_msg_free(&m);
    demo_msg_free(&a);
    return rc;
}
