/*
 * issuer_inject.c - sks-issuer-demo's side of scenario (a), the minidriver
 * seed's secure key injection (steps 2, 16, 22-26 and the archival), all
 * through the issuer token of the module in no-card mode:
 *
 *   S1 = C_GenerateKey(CKM_AES_KEY_GEN, 32 bytes)
 *   C_WrapKey(CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP or _ECDH, K1, S1)
 *   K2 = C_GenerateKeyPair(...), its certificate from the demo CA
 *   C_WrapKey(CKM_VENDOR_SKS_INJECT_KEY, S1, K2)  (bound to K2's CKA_ID and
 *       usage: the client must create the key under the ID sent with it,
 *       CKA_SIGN only; the card takes one blob per S1)
 *   C_WrapKey(CKM_AES_KEY_WRAP_PAD, archive key, K2)  (key archival)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "demo_proto.h"
#include "issuer_demo.h"

static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* A session public-key object on the issuer token from K1's SubjectPublicKeyInfo. */
static CK_OBJECT_HANDLE public_key_object(demo_issuer *d, const demo_field *spki, int *is_ec)
{
    const unsigned char *p = spki->value;
    EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)spki->len);
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    if (pk == NULL || p != spki->value + spki->len) {
        EVP_PKEY_free(pk);
        return CK_INVALID_HANDLE;
    }
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_KEY_TYPE kt;
    unsigned char a[1024], b[1024];
    size_t alen = 0, blen = 0;
    BIGNUM *n = NULL, *e = NULL;
    *is_ec = EVP_PKEY_is_a(pk, "EC");
    if (*is_ec) {
        /* CKA_EC_PARAMS: the named curve OID of P-256; CKA_EC_POINT: OCTET STRING(point). */
        static const unsigned char p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                             0xCE, 0x3D, 0x03, 0x01, 0x07};
        unsigned char point[133];
        size_t plen = 0;
        char group[32];
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            NULL) ||
            strcmp(group, "prime256v1") != 0 ||
            !EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                             sizeof(point), &plen) ||
            plen > 127)
            goto out;
        kt = CKK_EC;
        memcpy(a, p256, sizeof(p256));
        alen = sizeof(p256);
        b[0] = 0x04;
        b[1] = (unsigned char)plen;
        memcpy(b + 2, point, plen);
        blen = plen + 2;
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                            {CKA_KEY_TYPE, &kt, sizeof(kt)},
                            {CKA_TOKEN, (void *)&no, sizeof(no)},
                            {CKA_EC_PARAMS, a, alen},
                            {CKA_EC_POINT, b, blen},
                            {CKA_WRAP, (void *)&yes, sizeof(yes)}};
        demo_check(d->p11.f->C_CreateObject(d->p11.session, t, 6, &h), "C_CreateObject(K1)");
    } else if (EVP_PKEY_is_a(pk, "RSA")) {
        if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) ||
            !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) || BN_num_bytes(n) > 1024)
            goto out;
        kt = CKK_RSA;
        alen = (size_t)BN_bn2bin(n, a);
        blen = (size_t)BN_bn2bin(e, b);
        CK_ATTRIBUTE t[] = {
            {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &kt, sizeof(kt)},
            {CKA_TOKEN, (void *)&no, sizeof(no)}, {CKA_MODULUS, a, alen},
            {CKA_PUBLIC_EXPONENT, b, blen},       {CKA_WRAP, (void *)&yes, sizeof(yes)}};
        demo_check(d->p11.f->C_CreateObject(d->p11.session, t, 6, &h), "C_CreateObject(K1)");
    }
out:
    BN_free(n);
    BN_free(e);
    EVP_PKEY_free(pk);
    return h;
}

/* Write S1's value to the audit file (--secrets-out), hex, one line. */
static void audit_secret(demo_issuer *d, const char *name, CK_OBJECT_HANDLE key)
{
    size_t len = 0;
    unsigned char *v = demo_p11_attr(&d->p11, key, CKA_VALUE, &len);
    if (d->secrets == NULL || v == NULL) {
        free(v);
        return;
    }
    fprintf(d->secrets, "%s ", name);
    for (size_t i = 0; i < len; i++)
        fprintf(d->secrets, "%02x", v[i]);
    fprintf(d->secrets, "\n");
    fflush(d->secrets);
    OPENSSL_cleanse(v, len);
    free(v);
}

/* Step 16: S1 made on the issuer token and wrapped under K1. */
static int send_session_key(demo_issuer *d, int fd, const demo_msg *k1, CK_OBJECT_HANDLE *s1,
                            CK_OBJECT_HANDLE *k1_obj)
{
    const demo_field *spki = demo_msg_get(k1, DT_SPKI);
    int is_ec = 0;
    if (spki == NULL || (*k1_obj = public_key_object(d, spki, &is_ec)) == CK_INVALID_HANDLE)
        return issuer_fail(fd, "K1 is not a usable RSA or P-256 public key");
    CK_MECHANISM_TYPE want =
        is_ec ? CKM_VENDOR_SKS_SESSION_KEY_ECDH : CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP;
    int offered = 0;
    for (size_t i = 0; i < k1->nfields; i++)
        if (k1->f[i].tag == DT_MECH && k1->f[i].len == 4) {
            uint32_t m = (uint32_t)k1->f[i].value[0] << 24 | (uint32_t)k1->f[i].value[1] << 16 |
                         (uint32_t)k1->f[i].value[2] << 8 | k1->f[i].value[3];
            offered |= m == (uint32_t)want;
        }
    if (!offered)
        return issuer_fail(fd, "the card does not offer a session-key mechanism for K1");

    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_BBOOL sensitive = d->secrets == NULL ? CK_TRUE : CK_FALSE;
    CK_ATTRIBUTE st[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_KEY_TYPE, &kt, sizeof(kt)},
                         {CKA_VALUE_LEN, &len, sizeof(len)},
                         {CKA_TOKEN, (void *)&no, sizeof(no)},
                         {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
                         {CKA_EXTRACTABLE, (void *)&yes, sizeof(yes)},
                         {CKA_WRAP, (void *)&yes, sizeof(yes)}};
    if (demo_check(d->p11.f->C_GenerateKey(d->p11.session, &gen, st, 7, s1), "C_GenerateKey(S1)"))
        return issuer_fail(fd, "cannot make S1");

    unsigned char wrapped[1024], point[133];
    CK_ULONG wlen = sizeof(wrapped);
    CK_SKS_ECDH_SESSION_KEY_PARAMS ep = {point, sizeof(point)};
    CK_MECHANISM wm = {want, is_ec ? &ep : NULL, is_ec ? sizeof(ep) : 0};
    if (demo_check(d->p11.f->C_WrapKey(d->p11.session, &wm, *k1_obj, *s1, wrapped, &wlen),
                   "C_WrapKey(S1 under K1)"))
        return issuer_fail(fd, "cannot wrap S1 under K1");
    audit_secret(d, "S1", *s1);
    issuer_step(16,
                "S1 (AES-256) generated on the issuer token and wrapped under K1 with %s: %lu "
                "bytes%s",
                is_ec ? "ECDH P-256" : "RSA-OAEP-SHA256", (unsigned long)wlen,
                is_ec ? " (plus the ephemeral public key)" : "");
    demo_msg m;
    demo_msg_init(&m, DM_SESSION_KEY);
    int rc =
        demo_msg_add_u32(&m, DT_MECH, (uint32_t)want) | demo_msg_add(&m, DT_WRAPPED, wrapped, wlen);
    if (is_ec)
        rc |= demo_msg_add(&m, DT_PUBLIC_DATA, point, ep.ulPublicDataLen);
    rc = rc == 0 ? demo_send(fd, &m) : -1;
    demo_msg_free(&m);
    return rc;
}

/*
 * Step 24: K2 on the issuer token (extractable, for injection and
 * archival), with the CKA_ID the card's key will have and CKA_SIGN its only
 * usage: the injection blob is bound to both.
 */
static int make_k2(demo_issuer *d, const char *id, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
    int ec = strcmp(d->key_type, "ec") == 0;
    CK_MECHANISM gen = {ec ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    static const unsigned char p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48,
                                         0xCE, 0x3D, 0x03, 0x01, 0x07};
    CK_ULONG bits = 2048;
    unsigned char e[] = {0x01, 0x00, 0x01};
    CK_ATTRIBUTE pubt_rsa[] = {{CKA_TOKEN, (void *)&no, sizeof(no)},
                               {CKA_MODULUS_BITS, &bits, sizeof(bits)},
                               {CKA_PUBLIC_EXPONENT, e, sizeof(e)}};
    CK_ATTRIBUTE pubt_ec[] = {{CKA_TOKEN, (void *)&no, sizeof(no)},
                              {CKA_EC_PARAMS, (void *)p256, sizeof(p256)}};
    CK_ATTRIBUTE privt[] = {{CKA_TOKEN, (void *)&no, sizeof(no)},
                            {CKA_SENSITIVE, (void *)&yes, sizeof(yes)},
                            {CKA_EXTRACTABLE, (void *)&yes, sizeof(yes)},
                            {CKA_SIGN, (void *)&yes, sizeof(yes)},
                            {CKA_ID, (void *)id, strlen(id)}};
    return demo_check(d->p11.f->C_GenerateKeyPair(d->p11.session, &gen, ec ? pubt_ec : pubt_rsa,
                                                  ec ? 2 : 3, privt, 5, pub, priv),
                      "C_GenerateKeyPair(K2)");
}

/* Archive K2 under the issuer token's archive key: <archive>/<serial>.key and .der. */
static int archive_k2(demo_issuer *d, CK_OBJECT_HANDLE k2, uint32_t serial,
                      const unsigned char *cert, size_t cert_len)
{
    if (d->archive_dir == NULL)
        return 0;
    CK_OBJECT_HANDLE ak = issuer_archive_key(d);
    unsigned char blob[8192];
    CK_ULONG blen = sizeof(blob);
    CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    if (ak == CK_INVALID_HANDLE ||
        demo_check(d->p11.f->C_WrapKey(d->p11.session, &kwp, ak, k2, blob, &blen),
                   "C_WrapKey(K2 for the archive)"))
        return -1;
    char path[4096];
    snprintf(path, sizeof(path), "%s/%u.key", d->archive_dir, serial);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(blob, 1, blen, f) == blen;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    snprintf(path, sizeof(path), "%s/%u.der", d->archive_dir, serial);
    f = fopen(path, "wb");
    ok = ok && f != NULL && fwrite(cert, 1, cert_len, f) == cert_len;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "cannot write the archive in %s\n", d->archive_dir);
    return ok ? 0 : -1;
}

/* Steps 24-26: K2 made, certified, encrypted under S1 and sent with its certificate path. */
static int send_k2(demo_issuer *d, int fd, CK_OBJECT_HANDLE s1, const char *cn)
{
    CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
    unsigned char *spki = NULL, *cert = NULL, *ca = NULL;
    size_t spki_len = 0, cert_len = 0, ca_len = 0;
    int rc = -1;
    uint32_t serial = d->next_serial++;
    char id[16];
    snprintf(id, sizeof(id), "K2-%u", serial);
    if (make_k2(d, id, &pub, &priv) != 0 ||
        (spki = demo_p11_attr(&d->p11, pub, CKA_PUBLIC_KEY_INFO, &spki_len)) == NULL ||
        demo_ca_issue(&d->ca, spki, spki_len, cn, serial, &cert, &cert_len) != 0 ||
        demo_ca_cert_der(&d->ca, &ca, &ca_len) != 0) {
        rc = issuer_fail(fd, "cannot make and certify K2");
        goto out;
    }
    issuer_step(24, "K2 (%s) generated on the issuer token; certificate serial %u for CN=%s",
                strcmp(d->key_type, "ec") == 0 ? "EC P-256" : "RSA-2048", serial, cn);
    CK_SKS_INJECT_PARAMS ip;
    memset(&ip, 0, sizeof(ip));
    CK_MECHANISM im = {CKM_VENDOR_SKS_INJECT_KEY, &ip, sizeof(ip)};
    unsigned char blob[8192];
    CK_ULONG blen = sizeof(blob);
    if (demo_check(d->p11.f->C_WrapKey(d->p11.session, &im, s1, priv, blob, &blen),
                   "C_WrapKey(K2 under S1)")) {
        rc = issuer_fail(fd, "cannot encrypt K2 under S1");
        goto out;
    }
    issuer_step(25, "K2 encrypted under S1 (AES-256-GCM, IV chosen by the issuer token): %lu bytes",
                (unsigned long)blen);
    if (archive_k2(d, priv, serial, cert, cert_len) != 0) {
        rc = issuer_fail(fd, "key archival failed");
        goto out;
    }
    if (d->archive_dir != NULL)
        issuer_step(25, "K2 archived under the archive key: %s/%u.key", d->archive_dir, serial);
    demo_msg m;
    demo_msg_init(&m, DM_INJECT);
    rc = demo_msg_add(&m, DT_IV, ip.iv, sizeof(ip.iv)) | demo_msg_add(&m, DT_WRAPPED, blob, blen) |
         demo_msg_add(&m, DT_CERT, cert, cert_len) | demo_msg_add(&m, DT_CERT, ca, ca_len) |
         demo_msg_add_str(&m, DT_KEY_ID, id) | demo_msg_add_str(&m, DT_LABEL, cn) |
         demo_msg_add_u32(&m, DT_SERIAL, serial);
    rc = rc == 0 ? demo_send(fd, &m) : -1;
    demo_msg_free(&m);
    issuer_step(26, "encrypted K2, IV and certificate path sent to the client");
out:
    if (priv != CK_INVALID_HANDLE)
        d->p11.f->C_DestroyObject(d->p11.session, priv);
    if (pub != CK_INVALID_HANDLE)
        d->p11.f->C_DestroyObject(d->p11.session, pub);
    free(spki);
    OPENSSL_free(cert);
    OPENSSL_free(ca);
    return rc;
}

/* Receive the next message of the expected type; anything else ends the scenario. */
static int expect(int fd, uint8_t type, demo_msg *m)
{
    const char *err = NULL;
    if (demo_recv(fd, m, &err) != 0) {
        fprintf(stderr, "client: %s\n", err);
        return -1;
    }
    if (m->type == DM_ERROR) {
        const demo_field *t = demo_msg_get(m, DT_TEXT);
        fprintf(stderr, "client reports: %.*s\n", t ? (int)t->len : 0,
                t ? (const char *)t->value : "");
        return -1;
    }
    if (m->type != type) {
        fprintf(stderr, "client sent message '%c', expected '%c'\n", m->type, type);
        return -1;
    }
    return 0;
}

int issuer_inject(demo_issuer *d, int fd, const demo_msg *hello)
{
    char cn[128] = "SKS enrolled user";
    const demo_field *subj = demo_msg_get(hello, DT_SUBJECT);
    if (subj != NULL && subj->len > 0 && subj->len < sizeof(cn)) {
        memcpy(cn, subj->value, subj->len);
        cn[subj->len] = '\0';
    }
    issuer_step(2,
                "request for CN=%s: the template asks for key archival, so the key is made here "
                "and injected (secure key injection)",
                cn);
    demo_msg m, k1, ack, done;
    demo_msg_init(&m, DM_OFFER);
    demo_msg_init(&k1, 0);
    demo_msg_init(&ack, 0);
    demo_msg_init(&done, 0);
    CK_OBJECT_HANDLE s1 = CK_INVALID_HANDLE, k1_obj = CK_INVALID_HANDLE;
    int rc = -1;
    if (demo_msg_add_str(&m, DT_TEXT, "key archival: secure key injection") != 0 ||
        demo_send(fd, &m) != 0 || expect(fd, DM_K1, &k1) != 0)
        goto out;
    issuer_step(15, "received K1 (%u bytes) and the card's mechanisms",
                demo_msg_get(&k1, DT_SPKI) ? demo_msg_get(&k1, DT_SPKI)->len : 0);
    if (send_session_key(d, fd, &k1, &s1, &k1_obj) != 0 || expect(fd, DM_ACK, &ack) != 0)
        goto out;
    issuer_step(22, "client confirmed S1 is on the card; S1 is a key object of the issuer token "
                    "(MDImportSessionKey)");
    if (send_k2(d, fd, s1, cn) != 0 || expect(fd, DM_DONE, &done) != 0)
        goto out;
    issuer_step(31, "client reports the key imported: enrollment complete");
    rc = 0;
out:
    if (s1 != CK_INVALID_HANDLE)
        d->p11.f->C_DestroyObject(d->p11.session, s1);
    if (k1_obj != CK_INVALID_HANDLE)
        d->p11.f->C_DestroyObject(d->p11.session, k1_obj);
    demo_msg_free(&m);
    demo_msg_free(&k1);
    demo_msg_free(&ack);
    demo_msg_free(&done);
    return rc;
}
