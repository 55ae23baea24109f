/*
 * enroll_inject.c - sks-enroll's side of scenario (a), the minidriver
 * seed's secure key injection (steps 1, 3-15, 17-21, 27-31), with the card
 * behind sks-pkcs11:
 *
 *   C_GetMechanismInfo(CKM_VENDOR_SKS_INJECT_KEY, ...)   (CP_KEY_IMPORT_SUPPORT)
 *   K1 = an existing import key, or C_GenerateKeyPair on the card
 *   S1 = C_UnwrapKey(CKM_VENDOR_SKS_SESSION_KEY_*, K1, wrapped S1)
 *   K2 = C_UnwrapKey(CKM_VENDOR_SKS_INJECT_KEY, S1, encrypted K2)
 *
 * The client handles only wrapped and encrypted keys: S1 lives on the card,
 * K2 is decrypted by the card. S1 serves that one injection: the card
 * forgets it once it has tried the blob.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "demo_proto.h"
#include "enroll.h"

#define K1_LABEL "sks-key-import"

static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* Steps 3-4: does the card support key import (the PKCS#11 CP_KEY_IMPORT_SUPPORT)? */
static int import_support(demo_enroll *e, demo_msg *k1)
{
    static const struct {
        CK_MECHANISM_TYPE m;
        const char *name;
    } mechs[] = {
        {CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP, "CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP"},
        {CKM_VENDOR_SKS_SESSION_KEY_ECDH, "CKM_VENDOR_SKS_SESSION_KEY_ECDH"},
        {CKM_VENDOR_SKS_INJECT_KEY, "CKM_VENDOR_SKS_INJECT_KEY"},
    };
    int inject = 0;
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        CK_MECHANISM_INFO info;
        if (e->p11.f->C_GetMechanismInfo(e->p11.slot, mechs[i].m, &info) != CKR_OK ||
            !(info.flags & CKF_UNWRAP))
            continue;
        enroll_step(4, "the card unwraps with %s", mechs[i].name);
        if (mechs[i].m == CKM_VENDOR_SKS_INJECT_KEY)
            inject = 1;
        else if (demo_msg_add_u32(k1, DT_MECH, (uint32_t)mechs[i].m) != 0)
            return -1;
    }
    return inject ? 0 : -1;
}

/* Steps 5-8: K1, the card key S1 is wrapped under (made on the card when missing). */
static CK_OBJECT_HANDLE find_or_make_k1(demo_enroll *e)
{
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = e->ecdh ? CKK_EC : CKK_RSA;
    CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_KEY_TYPE, &kt, sizeof(kt)},
                           {CKA_LABEL, K1_LABEL, sizeof(K1_LABEL) - 1}};
    CK_OBJECT_HANDLE priv = demo_p11_find(&e->p11, find, 3), pub;
    if (priv != CK_INVALID_HANDLE) {
        enroll_step(5, "found the key import key K1 (%s) on the card", K1_LABEL);
        return priv;
    }
    enroll_step(5, "no key import key on the card: creating K1");
    static const unsigned char p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                         0xCE, 0x3D, 0x03, 0x01, 0x07};
    CK_ULONG bits = 2048;
    unsigned char exp[] = {0x01, 0x00, 0x01};
    unsigned char id[] = {'K', '1'};
    CK_MECHANISM gen = {e->ecdh ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub_rsa[] = {{CKA_TOKEN, (void *)&yes, sizeof(yes)},
                              {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                              {CKA_PUBLIC_EXPONENT, exp, sizeof(exp)},
                              {CKA_LABEL, K1_LABEL, sizeof(K1_LABEL) - 1},
                              {CKA_ID, id, sizeof(id)}};
    CK_ATTRIBUTE pub_ec[] = {{CKA_TOKEN, (void *)&yes, sizeof(yes)},
                             {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
                             {CKA_LABEL, K1_LABEL, sizeof(K1_LABEL) - 1},
                             {CKA_ID, id, sizeof(id)}};
    CK_ATTRIBUTE priv_t[] = {{CKA_TOKEN, (void *)&yes, sizeof(yes)},
                             {CKA_PRIVATE, (void *)&yes, sizeof(yes)},
                             {CKA_SENSITIVE, (void *)&yes, sizeof(yes)},
                             {CKA_SIGN, (void *)&no, sizeof(no)},
                             {CKA_LABEL, K1_LABEL, sizeof(K1_LABEL) - 1},
                             {CKA_ID, id, sizeof(id)},
                             {e->ecdh ? CKA_DERIVE : CKA_DECRYPT, (void *)&yes, sizeof(yes)},
                             {CKA_UNWRAP, (void *)&yes, sizeof(yes)}};
    /* K1 decrypts (RSA: S1 under RSA-OAEP) or agrees keys (EC: ECDH); RSA keys also unwrap. */
    if (demo_check(e->p11.f->C_GenerateKeyPair(e->p11.session, &gen, e->ecdh ? pub_ec : pub_rsa,
                                               e->ecdh ? 4 : 5, priv_t, e->ecdh ? 7 : 8, &pub,
                                               &priv),
                   "C_GenerateKeyPair(K1)"))
        return CK_INVALID_HANDLE;
    enroll_step(8, "K1 (%s) generated on the card", e->ecdh ? "EC P-256" : "RSA-2048");
    return priv;
}

/* The concatenated DER certificates of an INJECT message (end entity first). */
static unsigned char *cert_path(const demo_msg *m, size_t *len, int *ec)
{
    size_t total = 0;
    for (size_t i = 0; i < m->nfields; i++)
        if (m->f[i].tag == DT_CERT)
            total += m->f[i].len;
    unsigned char *buf = total ? malloc(total) : NULL;
    if (buf == NULL)
        return NULL;
    size_t off = 0;
    for (size_t i = 0; i < m->nfields; i++)
        if (m->f[i].tag == DT_CERT) {
            memcpy(buf + off, m->f[i].value, m->f[i].len);
            off += m->f[i].len;
        }
    const unsigned char *p = buf;
    X509 *x = d2i_X509(NULL, &p, (long)total);
    *ec = x != NULL && EVP_PKEY_is_a(X509_get0_pubkey(x), "EC");
    if (x == NULL) {
        free(buf);
        return NULL;
    }
    X509_free(x);
    *len = total;
    return buf;
}

/* Steps 27-30: the card decrypts K2 with S1 and makes it a key with its certificate. */
static int inject_k2(demo_enroll *e, CK_OBJECT_HANDLE s1, const demo_msg *m)
{
    const demo_field *iv = demo_msg_get(m, DT_IV), *blob = demo_msg_get(m, DT_WRAPPED);
    const demo_field *id = demo_msg_get(m, DT_KEY_ID), *label = demo_msg_get(m, DT_LABEL);
    size_t path_len = 0;
    int ec = 0;
    unsigned char *path = cert_path(m, &path_len, &ec);
    if (iv == NULL || iv->len != 12 || blob == NULL || id == NULL || label == NULL ||
        path == NULL) {
        free(path);
        return enroll_fail(e, "incomplete INJECT message");
    }
    CK_SKS_INJECT_PARAMS ip;
    memcpy(ip.iv, iv->value, 12);
    ip.pCertificatePath = path;
    ip.ulCertificatePathLen = path_len;
    CK_MECHANISM mech = {CKM_VENDOR_SKS_INJECT_KEY, &ip, sizeof(ip)};
    /*
     * The issuer bound the blob to the key's ID (sent with it) and usage
     * (sign only): the card opens it only for a template that asks for
     * exactly those.
     */
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = ec ? CKK_EC : CKK_RSA;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &kt, sizeof(kt)},
                        {CKA_TOKEN, (void *)&yes, sizeof(yes)},
                        {CKA_PRIVATE, (void *)&yes, sizeof(yes)},
                        {CKA_SIGN, (void *)&yes, sizeof(yes)},
                        {CKA_ID, (void *)id->value, id->len},
                        {CKA_LABEL, (void *)label->value, label->len}};
    enroll_step(27,
                "CardProcessEncryptedData: C_UnwrapKey(CKM_VENDOR_SKS_INJECT_KEY) with S1, "
                "%u encrypted bytes, %zu bytes of certificates",
                blob->len, path_len);
    CK_RV rv = e->p11.f->C_UnwrapKey(e->p11.session, &mech, s1, (CK_BYTE_PTR)blob->value, blob->len,
                                     t, 7, &e->injected);
    free(path);
    if (rv != CKR_OK) {
        fprintf(stderr, "C_UnwrapKey(K2): %s\n", demo_rv_name(rv));
        return enroll_fail(e, "the card refused the encrypted key");
    }
    enroll_step(29, "the card decrypted K2 with S1 and created the key %.*s with its certificate",
                (int)id->len, (const char *)id->value);
    return 0;
}

int enroll_inject(demo_enroll *e)
{
    demo_msg m, offer, sk, inj;
    demo_msg_init(&m, DM_HELLO);
    demo_msg_init(&offer, 0);
    demo_msg_init(&sk, 0);
    demo_msg_init(&inj, 0);
    CK_OBJECT_HANDLE s1 = CK_INVALID_HANDLE;
    int rc = -1;
    enroll_step(1, "requesting a certificate for CN=%s", e->subject);
    if (demo_msg_add_str(&m, DT_SCENARIO, "inject") ||
        demo_msg_add_str(&m, DT_SUBJECT, e->subject) || demo_send(e->fd, &m) != 0 ||
        enroll_expect(e, DM_OFFER, &offer) != 0)
        goto out;
    enroll_step(2, "the issuer answers: key archival, secure key injection");
    demo_msg_free(&m);
    demo_msg_init(&m, DM_K1);
    enroll_step(3, "asking the card which key import mechanisms it supports");
    if (import_support(e, &m) != 0) {
        rc = enroll_fail(e, "the card does not support key injection");
        goto out;
    }
    CK_OBJECT_HANDLE k1 = find_or_make_k1(e);
    size_t spki_len = 0;
    unsigned char *spki =
        k1 != CK_INVALID_HANDLE ? demo_p11_attr(&e->p11, k1, CKA_PUBLIC_KEY_INFO, &spki_len) : NULL;
    if (spki == NULL) {
        rc = enroll_fail(e, "no usable key import key K1");
        goto out;
    }
    enroll_step(11, "K1's public key read from the card (%zu bytes)", spki_len);
    int added = demo_msg_add(&m, DT_SPKI, spki, spki_len);
    free(spki);
    enroll_step(15, "sending K1 and the card's mechanisms to the issuer");
    if (added != 0 || demo_send(e->fd, &m) != 0 || enroll_expect(e, DM_SESSION_KEY, &sk) != 0)
        goto out;

    uint32_t mech_type = 0;
    const demo_field *wrapped = demo_msg_get(&sk, DT_WRAPPED),
                     *pd = demo_msg_get(&sk, DT_PUBLIC_DATA);
    if (demo_msg_get_u32(&sk, DT_MECH, &mech_type) != 0 || wrapped == NULL) {
        rc = enroll_fail(e, "incomplete SESSION_KEY message");
        goto out;
    }
    CK_SKS_ECDH_SESSION_KEY_PARAMS ep = {pd ? (CK_BYTE_PTR)pd->value : NULL, pd ? pd->len : 0};
    CK_MECHANISM mech = {mech_type, pd ? &ep : NULL, pd ? sizeof(ep) : 0};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ATTRIBUTE st[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_KEY_TYPE, &kt, sizeof(kt)},
                         {CKA_TOKEN, (void *)&no, sizeof(no)}};
    enroll_step(17, "CardImportSessionKey: C_UnwrapKey(%s) of %u bytes with K1",
                mech_type == CKM_VENDOR_SKS_SESSION_KEY_ECDH
                    ? "CKM_VENDOR_SKS_SESSION_KEY_ECDH"
                    : "CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP",
                wrapped->len);
    CK_RV rv = e->p11.f->C_UnwrapKey(e->p11.session, &mech, k1, (CK_BYTE_PTR)wrapped->value,
                                     wrapped->len, st, 3, &s1);
    if (rv != CKR_OK) {
        fprintf(stderr, "C_UnwrapKey(S1): %s\n", demo_rv_name(rv));
        rc = enroll_fail(e, "the card refused the session key");
        goto out;
    }
    CK_BYTE probe[32];
    CK_ATTRIBUTE value = {CKA_VALUE, probe, sizeof(probe)};
    rv = e->p11.f->C_GetAttributeValue(e->p11.session, s1, &value, 1);
    enroll_step(19, "S1 is on the card; this client holds only a handle (reading its value: %s)",
                demo_rv_name(rv));
    if (rv == CKR_OK) {
        rc = enroll_fail(e, "S1's value is readable: refusing to continue");
        goto out;
    }
    demo_msg_free(&m);
    demo_msg_init(&m, DM_ACK);
    enroll_step(21, "acknowledging the session key to the issuer");
    if (demo_send(e->fd, &m) != 0 || enroll_expect(e, DM_INJECT, &inj) != 0)
        goto out;
    if (inject_k2(e, s1, &inj) != 0)
        goto out;
    demo_msg_free(&m);
    demo_msg_init(&m, DM_DONE);
    enroll_step(31, "key and certificate are on the card: done");
    if (demo_msg_add_str(&m, DT_TEXT, "imported") != 0 || demo_send(e->fd, &m) != 0)
        goto out;
    rc = 0;
out:
    if (s1 != CK_INVALID_HANDLE)
        e->p11.f->C_DestroyObject(e->p11.session, s1);
    demo_msg_free(&m);
    demo_msg_free(&offer);
    demo_msg_free(&sk);
    demo_msg_free(&inj);
    return rc;
}
