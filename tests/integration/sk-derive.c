/*
 * sk-derive.c - recomputes an SKS session key SK from what sks-issuer-demo
 * --secrets-out wrote (the session's EC issuer private key and the
 * session's public values), with the project's one SK construction
 * (src/protocol/sks_crypto.h, docs/protocol.md 5.1) and an ECDH done here
 * with OpenSSL. t-provision.sh then looks for SK where it must not be.
 *
 *   sk-derive SECRETS_FILE   prints SK in hexadecimal (the last session's)
 *
 * As a check that the SK is the session's, it then decrypts the encrypted
 * PUK the issuer sent (CHECK_ENCRYPTED_PUK) with SK's encryption key and
 * prints "PUK <value>" on a second line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "protocol/sks_crypto.h"

typedef struct {
    const char *name;
    unsigned char v[4096];
    size_t n;
} value;

static int from_hex(const char *h, value *out)
{
    size_t n = strlen(h);
    if (n % 2 || n / 2 > sizeof(out->v))
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned int x;
        if (sscanf(h + 2 * i, "%2x", &x) != 1)
            return -1;
        out->v[i] = (unsigned char)x;
    }
    out->n = n / 2;
    return 0;
}

/* Z: the x-coordinate of ECDH(issuer private scalar, card ephemeral SPKI). */
static int ecdh(const value *priv, const value *peer_spki, unsigned char z[32])
{
    const unsigned char *p = peer_spki->v;
    EVP_PKEY *peer = d2i_PUBKEY(NULL, &p, (long)peer_spki->n), *mine = NULL;
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    BIGNUM *d = BN_bin2bn(priv->v, (int)priv->n, NULL);
    EVP_PKEY_CTX *gen = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL), *ctx = NULL;
    OSSL_PARAM *params = NULL;
    size_t zlen = 32;
    int rc = -1;
    if (peer == NULL || b == NULL || d == NULL || gen == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
        (params = OSSL_PARAM_BLD_to_param(b)) == NULL || EVP_PKEY_fromdata_init(gen) <= 0 ||
        EVP_PKEY_fromdata(gen, &mine, EVP_PKEY_KEYPAIR, params) <= 0)
        goto out;
    ctx = EVP_PKEY_CTX_new(mine, NULL);
    if (ctx != NULL && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_derive_set_peer(ctx, peer) > 0 &&
        EVP_PKEY_derive(ctx, z, &zlen) > 0 && zlen == 32)
        rc = 0;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_CTX_free(gen);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    BN_clear_free(d);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(mine);
    return rc;
}

int main(int argc, char **argv)
{
    static value vals[] = {
        {"ISSUER_EC_PRIVATE", {0}, 0},     {"SK_CLIENT_SESSION_ID", {0}, 0},
        {"SK_SERVER_SESSION_ID", {0}, 0},  {"SK_ISSUER_URI", {0}, 0},
        {"SK_DEVICE_CERTIFICATE", {0}, 0}, {"SK_CARD_EPHEMERAL_KEY", {0}, 0},
        {"CHECK_ENCRYPTED_PUK", {0}, 0},
    };
    enum { PRIV, CSID, SSID, URI, DEV, EPH, PUK, NVALS };
    FILE *f = argc == 2 ? fopen(argv[1], "r") : NULL;
    if (f == NULL) {
        fprintf(stderr, "usage: sk-derive SECRETS_FILE\n");
        return 2;
    }
    static char line[16384];
    while (fgets(line, sizeof(line), f) != NULL) {
        char *sp = strchr(line, ' ');
        if (sp == NULL)
            continue;
        *sp = '\0';
        sp[strcspn(sp + 1, "\n") + 1] = '\0';
        for (int i = 0; i < NVALS; i++)
            if (strcmp(line, vals[i].name) == 0 && from_hex(sp + 1, &vals[i]) != 0)
                return 2;
    }
    fclose(f);
    for (int i = 0; i < PUK; i++)
        if (vals[i].n == 0) {
            fprintf(stderr, "sk-derive: %s missing\n", vals[i].name);
            return 2;
        }
    unsigned char z[32], sk[SKS_SK_LEN];
    sks_view csid = {vals[CSID].v, vals[CSID].n}, ssid = {vals[SSID].v, vals[SSID].n};
    sks_view uri = {vals[URI].v, vals[URI].n}, dev = {vals[DEV].v, vals[DEV].n};
    if (ecdh(&vals[PRIV], &vals[EPH], z) != 0 ||
        sks_derive_session_key(z, sizeof(z), csid, ssid, uri, dev, sk) != 0) {
        fprintf(stderr, "sk-derive: cannot derive SK\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof(sk); i++)
        printf("%02x", sk[i]);
    printf("\n");
    unsigned char ek[32], pt[4096];
    size_t ptlen = 0;
    if (vals[PUK].n > 0 && sks_encryption_key(sk, ek) == 0 &&
        sks_decrypt(ek, vals[PUK].v, vals[PUK].n, pt, &ptlen) == 0)
        printf("PUK %.*s\n", (int)ptlen, (const char *)pt);
    return 0;
}
