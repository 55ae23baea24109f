/*
 * sks_dkek.c - the key backup format under a DKEK (sks_dkek.h,
 * docs/dkek.md): key check value, the two derived keys, AES-CMAC, and the
 * blob's builder, parser, verifier and decryptor.
 *
 * The derivation (SHA-256 of the DKEK with a 4-byte counter appended) and
 * the KCV follow the SmartCard-HSM, so an administrator who knows that
 * device recognises the values; the blob layout is this project's own.
 */
#include "sks_dkek.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "sks_crypto.h"

int sks_dkek_kcv(const uint8_t dkek[SKS_DKEK_LEN], uint8_t kcv[SKS_DKEK_KCV_LEN])
{
    uint8_t h[32];
    if (sks_sha256(dkek, SKS_DKEK_LEN, h) != 0)
        return -1;
    memcpy(kcv, h, SKS_DKEK_KCV_LEN);
    sks_cleanse(h, sizeof(h));
    return 0;
}

/* SHA-256(DKEK | counter as 4 bytes, big-endian). */
static int derive(const uint8_t dkek[SKS_DKEK_LEN], uint32_t counter, uint8_t out[32])
{
    uint8_t buf[SKS_DKEK_LEN + 4];
    memcpy(buf, dkek, SKS_DKEK_LEN);
    sks_be32_put(buf + SKS_DKEK_LEN, counter);
    int rc = sks_sha256(buf, sizeof(buf), out);
    sks_cleanse(buf, sizeof(buf));
    return rc;
}

int sks_dkek_kenc(const uint8_t dkek[SKS_DKEK_LEN], uint8_t kenc[32])
{
    return derive(dkek, 1, kenc);
}

int sks_dkek_kmac(const uint8_t dkek[SKS_DKEK_LEN], uint8_t kmac[32])
{
    return derive(dkek, 2, kmac);
}

int sks_dkek_cmac(const uint8_t key[32], const uint8_t *p, size_t n, uint8_t mac[SKS_DKEK_CMAC_LEN])
{
    static const uint8_t empty[1] = {0};
    char cipher[] = "AES-256-CBC";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t outlen = 0;
    EVP_MAC *m = EVP_MAC_fetch(NULL, "CMAC", NULL);
    EVP_MAC_CTX *ctx = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
    int ok = ctx != NULL && EVP_MAC_init(ctx, key, 32, params) == 1 &&
             EVP_MAC_update(ctx, n > 0 ? p : empty, n) == 1 &&
             EVP_MAC_final(ctx, mac, &outlen, SKS_DKEK_CMAC_LEN) == 1 &&
             outlen == SKS_DKEK_CMAC_LEN;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return ok ? 0 : -1;
}

/* ---- Parsing ------------------------------------------------------------ */

/* A wire-form certificate path: count 1..SKS_CERT_PATH_MAX, then that many non-empty byte[]. */
static int cert_path_ok(sks_view path)
{
    sks_reader r;
    uint8_t count;
    if (path.len == 0)
        return 1;
    sks_reader_init(&r, path.ptr, path.len);
    if (sks_get_byte(&r, &count) != 0 || count == 0 || count > SKS_CERT_PATH_MAX)
        return 0;
    for (unsigned i = 0; i < count; i++) {
        sks_view cert;
        if (sks_get_bytes(&r, &cert) != 0 || cert.len == 0)
            return 0;
    }
    return sks_reader_finish(&r) == 0;
}

/* Set *why and fail. */
static int bad(const char **why, const char *what)
{
    if (why != NULL)
        *why = what;
    return -1;
}

int sks_dkek_blob_parse(const uint8_t *p, size_t n, sks_dkek_blob *b, const char **why)
{
    sks_reader r;
    memset(b, 0, sizeof(*b));
    if (n < SKS_DKEK_BLOB_MIN)
        return bad(why, "too short for a key backup");
    sks_reader_init(&r, p, n - SKS_DKEK_CMAC_LEN);
    sks_get_raw(&r, SKS_DKEK_KCV_LEN, &b->kcv);
    if (sks_get_byte(&r, &b->version) != 0 || b->version != SKS_DKEK_BLOB_VERSION)
        return bad(why, "unknown key backup version");
    sks_get_byte(&r, &b->algorithm);
    sks_get_byte(&r, &b->usage);
    sks_get_byte(&r, &b->flags);
    sks_get_bytes(&r, &b->id);
    sks_get_bytes(&r, &b->friendly_name);
    sks_get_bytes(&r, &b->policy_id);
    sks_get_blob(&r, &b->cert_path);
    sks_get_blob(&r, &b->encrypted_key);
    if (sks_reader_finish(&r) != 0)
        return bad(why, "malformed key backup");
    if (b->id.len < 1 || b->id.len > SKS_ID_MAX)
        return bad(why, "key backup ID of a wrong length");
    if (b->friendly_name.len > SKS_FRIENDLY_NAME_MAX)
        return bad(why, "key backup name too long");
    if (b->policy_id.len > SKS_ID_MAX)
        return bad(why, "key backup PIN policy ID too long");
    if (!cert_path_ok(b->cert_path))
        return bad(why, "malformed certificate path in the key backup");
    if (b->encrypted_key.len < 2 * SKS_DKEK_IV_LEN || b->encrypted_key.len % 16 != 0 ||
        b->encrypted_key.len > SKS_ENC_IV_LEN + SKS_ENC_MAX + 16)
        return bad(why, "encrypted key of a wrong length");
    b->mac_data_len = n - SKS_DKEK_CMAC_LEN;
    b->cmac.ptr = p + b->mac_data_len;
    b->cmac.len = SKS_DKEK_CMAC_LEN;
    return 0;
}

/* ---- Verifying, building, decrypting -------------------------------------- */

int sks_dkek_blob_verify(const uint8_t dkek[SKS_DKEK_LEN], const uint8_t *p, size_t n)
{
    uint8_t kcv[SKS_DKEK_KCV_LEN], kmac[32], mac[SKS_DKEK_CMAC_LEN];
    if (n < SKS_DKEK_BLOB_MIN)
        return SKS_DKEK_BLOB_SHORT;
    if (sks_dkek_kcv(dkek, kcv) != 0)
        return SKS_DKEK_BLOB_FAILED;
    /* The KCV is public: an ordinary compare is enough. */
    if (memcmp(kcv, p, SKS_DKEK_KCV_LEN) != 0)
        return SKS_DKEK_BLOB_OTHER_KEK;
    int rc = SKS_DKEK_BLOB_OK;
    if (sks_dkek_kmac(dkek, kmac) != 0 || sks_dkek_cmac(kmac, p, n - SKS_DKEK_CMAC_LEN, mac) != 0)
        rc = SKS_DKEK_BLOB_FAILED;
    else if (!sks_mac_equal(mac, p + n - SKS_DKEK_CMAC_LEN, SKS_DKEK_CMAC_LEN))
        rc = SKS_DKEK_BLOB_BAD_MAC;
    sks_cleanse(kmac, sizeof(kmac));
    return rc;
}

int sks_dkek_blob_build(const uint8_t dkek[SKS_DKEK_LEN], const sks_dkek_blob *hdr,
                        const uint8_t *pkcs8, size_t n, const uint8_t *iv, sks_writer *out)
{
    uint8_t kcv[SKS_DKEK_KCV_LEN], kenc[32], kmac[32], mac[SKS_DKEK_CMAC_LEN];
    sks_writer enc;
    size_t start = out->len;
    int ok;

    sks_writer_init(&enc);
    ok = sks_dkek_kcv(dkek, kcv) == 0 && sks_dkek_kenc(dkek, kenc) == 0 &&
         sks_dkek_kmac(dkek, kmac) == 0 && sks_encrypt(kenc, iv, pkcs8, n, &enc) == 0 &&
         !enc.failed;
    if (ok) {
        sks_put_raw(out, kcv, sizeof(kcv));
        sks_put_byte(out, SKS_DKEK_BLOB_VERSION);
        sks_put_byte(out, hdr->algorithm);
        sks_put_byte(out, hdr->usage);
        sks_put_byte(out, hdr->flags);
        sks_put_bytes(out, hdr->id.ptr, hdr->id.len);
        sks_put_bytes(out, hdr->friendly_name.ptr, hdr->friendly_name.len);
        sks_put_bytes(out, hdr->policy_id.ptr, hdr->policy_id.len);
        sks_put_blob(out, hdr->cert_path.ptr, hdr->cert_path.len);
        sks_put_blob(out, enc.buf, enc.len);
        ok = !out->failed && sks_dkek_cmac(kmac, out->buf + start, out->len - start, mac) == 0;
    }
    if (ok)
        sks_put_raw(out, mac, sizeof(mac));
    sks_writer_free(&enc);
    sks_cleanse(kenc, sizeof(kenc));
    sks_cleanse(kmac, sizeof(kmac));
    return ok && !out->failed ? 0 : -1;
}

int sks_dkek_blob_decrypt(const uint8_t dkek[SKS_DKEK_LEN], const sks_dkek_blob *b, uint8_t *pt,
                          size_t *ptlen)
{
    uint8_t kenc[32];
    int rc = sks_dkek_kenc(dkek, kenc);
    if (rc == 0)
        rc = sks_decrypt(kenc, b->encrypted_key.ptr, b->encrypted_key.len, pt, ptlen);
    sks_cleanse(kenc, sizeof(kenc));
    return rc;
}
