/*
 * issuer_keys.c - sks-issuer-demo's key archive: the archive key (an AES
 * token key of the issuer token, never extractable) and --recover, the
 * CA's key recovery: an archived key unwrapped on the issuer token and
 * written out as PEM for its owner.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "demo_proto.h"
#include "issuer_demo.h"

#define ARCHIVE_LABEL "sks-issuer-demo archive key"

void issuer_step(int step, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[issuer] step %2d: ", step);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

int issuer_fail(int fd, const char *what)
{
    demo_msg m;
    fprintf(stderr, "[issuer] %s\n", what);
    demo_msg_init(&m, DM_ERROR);
    if (demo_msg_add_str(&m, DT_TEXT, what) == 0)
        demo_send(fd, &m);
    demo_msg_free(&m);
    return -1;
}

CK_OBJECT_HANDLE issuer_archive_key(demo_issuer *d)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_LABEL, ARCHIVE_LABEL, sizeof(ARCHIVE_LABEL) - 1}};
    CK_OBJECT_HANDLE h = demo_p11_find(&d->p11, find, 2);
    if (h != CK_INVALID_HANDLE)
        return h;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG len = 32;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &kt, sizeof(kt)},
                        {CKA_VALUE_LEN, &len, sizeof(len)},
                        {CKA_TOKEN, &yes, sizeof(yes)},
                        {CKA_LABEL, ARCHIVE_LABEL, sizeof(ARCHIVE_LABEL) - 1},
                        {CKA_SENSITIVE, &yes, sizeof(yes)},
                        {CKA_EXTRACTABLE, &no, sizeof(no)},
                        {CKA_WRAP, &yes, sizeof(yes)},
                        {CKA_UNWRAP, &yes, sizeof(yes)}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    if (demo_check(d->p11.f->C_GenerateKey(d->p11.session, &gen, t, 9, &h),
                   "C_GenerateKey(archive key)"))
        return CK_INVALID_HANDLE;
    return h;
}

/* Read a whole file (malloc'ed), NULL on failure. */
static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *buf = malloc(65536);
    size_t n = buf ? fread(buf, 1, 65536, f) : 0;
    fclose(f);
    if (buf == NULL || n == 0 || n == 65536) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* One attribute as an OSSL_PARAM BIGNUM; 0 or -1. */
static int add_bn(demo_issuer *d, OSSL_PARAM_BLD *b, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t,
                  const char *name, BIGNUM **keep)
{
    size_t len = 0;
    unsigned char *v = demo_p11_attr(&d->p11, h, t, &len);
    if (v == NULL) {
        fprintf(stderr, "cannot read attribute 0x%lx of the unwrapped key\n", (unsigned long)t);
        return -1;
    }
    *keep = BN_bin2bn(v, (int)len, NULL);
    OPENSSL_cleanse(v, len);
    free(v);
    return *keep != NULL && OSSL_PARAM_BLD_push_BN(b, name, *keep) ? 0 : -1;
}

/*
 * The unwrapped key's attributes as an EVP_PKEY (RSA components, or the EC
 * private value with the public point of the archived certificate `pub`).
 */
static EVP_PKEY *pkey_from_object(demo_issuer *d, CK_OBJECT_HANDLE h, int ec, EVP_PKEY *pub)
{
    unsigned char point[133];
    size_t plen = 0;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    BIGNUM *bn[8] = {NULL};
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, ec ? "EC" : "RSA", NULL);
    int ok = b != NULL && ctx != NULL;
    if (ok && ec) {
        ok = OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
             EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                             sizeof(point), &plen) &&
             OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, point, plen) &&
             add_bn(d, b, h, CKA_VALUE, OSSL_PKEY_PARAM_PRIV_KEY, &bn[0]) == 0;
    } else if (ok) {
        ok = add_bn(d, b, h, CKA_MODULUS, OSSL_PKEY_PARAM_RSA_N, &bn[0]) == 0 &&
             add_bn(d, b, h, CKA_PUBLIC_EXPONENT, OSSL_PKEY_PARAM_RSA_E, &bn[1]) == 0 &&
             add_bn(d, b, h, CKA_PRIVATE_EXPONENT, OSSL_PKEY_PARAM_RSA_D, &bn[2]) == 0 &&
             add_bn(d, b, h, CKA_PRIME_1, OSSL_PKEY_PARAM_RSA_FACTOR1, &bn[3]) == 0 &&
             add_bn(d, b, h, CKA_PRIME_2, OSSL_PKEY_PARAM_RSA_FACTOR2, &bn[4]) == 0 &&
             add_bn(d, b, h, CKA_EXPONENT_1, OSSL_PKEY_PARAM_RSA_EXPONENT1, &bn[5]) == 0 &&
             add_bn(d, b, h, CKA_EXPONENT_2, OSSL_PKEY_PARAM_RSA_EXPONENT2, &bn[6]) == 0 &&
             add_bn(d, b, h, CKA_COEFFICIENT, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, &bn[7]) == 0;
    }
    OSSL_PARAM *params = ok ? OSSL_PARAM_BLD_to_param(b) : NULL;
    if (params == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_KEYPAIR, params) <= 0)
        pk = NULL;
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    EVP_PKEY_CTX_free(ctx);
    for (size_t i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    return pk;
}

int issuer_recover(demo_issuer *d, uint32_t serial)
{
    char path[4096];
    size_t blen = 0, clen = 0;
    snprintf(path, sizeof(path), "%s/%u.key", d->archive_dir, serial);
    unsigned char *blob = slurp(path, &blen);
    snprintf(path, sizeof(path), "%s/%u.der", d->archive_dir, serial);
    unsigned char *cert = slurp(path, &clen);
    const unsigned char *p = cert;
    X509 *x = cert ? d2i_X509(NULL, &p, (long)clen) : NULL;
    CK_OBJECT_HANDLE ak = issuer_archive_key(d), h = CK_INVALID_HANDLE;
    int rc = -1;
    if (blob == NULL || x == NULL || ak == CK_INVALID_HANDLE) {
        fprintf(stderr, "no archived key %u in %s\n", serial, d->archive_dir);
        goto out;
    }
    int ec = EVP_PKEY_is_a(X509_get0_pubkey(x), "EC");
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = ec ? CKK_EC : CKK_RSA;
    CK_BBOOL no = CK_FALSE, yes = CK_TRUE;
    /* Readable only while neither sensitive nor unextractable (PKCS#11's rule). */
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &kt, sizeof(kt)},
                        {CKA_TOKEN, &no, sizeof(no)},
                        {CKA_SENSITIVE, &no, sizeof(no)},
                        {CKA_EXTRACTABLE, &yes, sizeof(yes)}};
    CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    if (demo_check(d->p11.f->C_UnwrapKey(d->p11.session, &kwp, ak, blob, blen, t, 5, &h),
                   "C_UnwrapKey(archived key)"))
        goto out;
    EVP_PKEY *pk = pkey_from_object(d, h, ec, X509_get0_pubkey(x));
    if (pk != NULL && X509_check_private_key(x, pk) == 1 &&
        PEM_write_PrivateKey(stdout, pk, NULL, NULL, 0, NULL, NULL))
        rc = 0;
    else
        fprintf(stderr, "the archived key %u does not match its certificate\n", serial);
    EVP_PKEY_free(pk);
    d->p11.f->C_DestroyObject(d->p11.session, h);
out:
    X509_free(x);
    if (blob != NULL)
        OPENSSL_cleanse(blob, blen);
    free(blob);
    free(cert);
    return rc;
}
