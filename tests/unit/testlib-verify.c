/*
 * testlib-verify.c - OpenSSL's verdict on a signature the card or the
 * module made (testlib.h, tl_signature_ok): the one place the tests turn a
 * raw ECDSA r | s into DER and check a SHA-256 signature, with OpenSSL's
 * default library context and nothing of the project's code.
 */
#include "testlib.h"

#include <check.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

/* r | s (two halves of equal length) as a DER ECDSA-Sig-Value; its length. */
static size_t ecdsa_der(const uint8_t *sig, size_t n, uint8_t *out, size_t cap)
{
    ck_assert_uint_eq(n % 2, 0);
    ECDSA_SIG *es = ECDSA_SIG_new();
    ck_assert_ptr_nonnull(es);
    ck_assert_int_eq(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)(n / 2), NULL),
                                    BN_bin2bn(sig + n / 2, (int)(n / 2), NULL)),
                     1);
    int len = i2d_ECDSA_SIG(es, NULL);
    ck_assert_int_gt(len, 0);
    ck_assert_uint_le((size_t)len, cap);
    unsigned char *q = out;
    ck_assert_int_eq(i2d_ECDSA_SIG(es, &q), len);
    ECDSA_SIG_free(es);
    return (size_t)len;
}

int tl_signature_ok(EVP_PKEY *key, int pss, const void *msg, size_t n, const uint8_t *sig,
                    size_t sig_len)
{
    uint8_t der[160];
    const uint8_t *check = sig;
    size_t check_len = sig_len;
    if (EVP_PKEY_is_a(key, "EC")) {
        check_len = ecdsa_der(sig, sig_len, der, sizeof der);
        check = der;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    ck_assert_ptr_nonnull(md);
    ck_assert_int_eq(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, key), 1);
    if (pss) {
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32), 1);
    }
    int ok = EVP_DigestVerify(md, check, check_len, msg, n) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}
