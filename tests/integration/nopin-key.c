/*
 * nopin-key.c - puts a key without PIN on a card, for the integration tests
 * that need one (a browser cannot answer a PIN prompt when it runs headless).
 *
 * The PKCS#11 module makes keys only on tokens that exist, and the no-PIN
 * token exists only while the card holds a key or object without PIN, so the
 * first such key comes from an issuer. This driver is that issuer: the
 * project's local issuer (src/provision) runs a complete provisioning session
 * with the card engine (src/card) on the card's state directory, exactly as
 * the module does for C_GenerateKeyPair, with PIN policy 0.
 *
 *   nopin-key CARD_DIR ISSUER_DIR rsa2048|ec256 ID_HEX LABEL
 *
 * CARD_DIR is a card state (an embedded card's <state_dir>/card, or what
 * sks-card serves; created when missing); nothing else may have it open.
 * ISSUER_DIR holds the local issuer (created when missing). The device
 * certificate must chain to CARD_DIR/manufacturer/ca-cert.pem when that file
 * exists. Prints "key <handle>" and exits 0; 1 on failure, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "card/sks_card.h"
#include "protocol/sks_msg.h"
#include "provision/local_issuer.h"

/* The card link: encode the request, run it below the APDU layer, decode. */
static int card_link_call(void *ctx, uint8_t method, const void *req, void *resp,
                          sks_writer *answer, uint8_t *status, char *err, size_t errlen)
{
    const sks_msgdesc *d = sks_msg_find(method);
    sks_writer call;
    sks_view es = {NULL, 0};
    uint8_t scratch[512];

    if (d == NULL)
        return -1;
    sks_writer_init(&call);
    if (sks_msg_encode_request(d, req, &call) != 0) {
        sks_writer_free(&call);
        return -1;
    }
    sks_card_call(ctx, call.buf, call.len, answer);
    sks_writer_free(&call);
    if (sks_msg_decode_response(d, answer->buf, answer->len, resp != NULL ? resp : scratch, status,
                                &es) != 0)
        return -1;
    if (*status != SKS_OK)
        snprintf(err, errlen, "%.*s", (int)es.len, (const char *)es.ptr);
    return 0;
}

/* "0a1b..." to bytes; 1..32 bytes, as the card's key IDs. */
static int parse_id(const char *hex, uint8_t *out, size_t *len)
{
    size_t n = strlen(hex);
    if (n == 0 || n % 2 != 0 || n / 2 > 32)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: nopin-key CARD_DIR ISSUER_DIR rsa2048|ec256 ID_HEX LABEL\n");
    return 2;
}

int main(int argc, char **argv)
{
    char err[256] = "", path[4096], ca[4096];
    uint8_t id[32];
    size_t id_len = 0;
    uint32_t handle = 0;

    if (argc != 6 || parse_id(argv[4], id, &id_len) != 0 || strlen(argv[5]) > 255)
        return usage();
    uint8_t alg;
    if (strcmp(argv[3], "rsa2048") == 0)
        alg = SKS_KEYALG_RSA2048;
    else if (strcmp(argv[3], "ec256") == 0)
        alg = SKS_KEYALG_EC_P256;
    else
        return usage();
    const char *card_dir = argv[1], *issuer_dir = argv[2];

    snprintf(path, sizeof(path), "%s/card.db", card_dir);
    if (access(path, F_OK) != 0 && sks_card_init_state(card_dir, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "nopin-key: new card in %s: %s\n", card_dir, err);
        return 1;
    }
    sks_card *card = sks_card_open(card_dir, err, sizeof(err));
    if (card == NULL) {
        fprintf(stderr, "nopin-key: card %s: %s\n", card_dir, err);
        return 1;
    }
    snprintf(ca, sizeof(ca), "%s/manufacturer/ca-cert.pem", card_dir);
    sks_local_issuer *li =
        sks_local_issuer_open(issuer_dir, access(ca, R_OK) == 0 ? ca : NULL, err, sizeof(err));
    if (li == NULL) {
        fprintf(stderr, "nopin-key: local issuer %s: %s\n", issuer_dir, err);
        sks_card_close(card);
        return 1;
    }
    const sks_card_link link = {card_link_call, card};
    const sks_local_key_spec spec = {
        .pin_policy = 0,
        .algorithm = alg,
        .id = {id, id_len},
        .label = {(const uint8_t *)argv[5], strlen(argv[5])},
        .usage = alg == SKS_KEYALG_RSA2048 ? SKS_USAGE_SIGN | SKS_USAGE_DECRYPT : SKS_USAGE_SIGN,
    };
    int status = sks_local_issuer_generate(li, &link, &spec, &handle, err, sizeof(err));
    sks_local_issuer_close(li);
    sks_card_close(card);
    if (status != SKS_OK) {
        fprintf(stderr, "nopin-key: key generation: status %d: %s\n", status, err);
        return 1;
    }
    printf("key %u\n", (unsigned)handle);
    return 0;
}
