/*
 * card_info.c - getDeviceInfo: what the middleware learns about the card
 * before using it (API level, serial, device certificate path, supported
 * key algorithms, key capacity, the change counter that tells a cache when
 * to reload), and the decoding of stored certificate
 * paths into response views.
 */
#include <string.h>

#include "card_internal.h"
#include "card_keycache.h"
#include "card_keymat.h"

/* A certificate path as stored: the wire form of a CERTS field. */
static const sks_field stored_cert_path[] = {
    {"CertificatePath", SKS_F_CERTS, SKS_FF_WIRE, 0, SKS_CERT_PATH_MAX, 0},
};

int card_certpath_view(const card_buf *wire, sks_certpath *out)
{
    sks_reader r;
    memset(out, 0, sizeof(*out));
    if (wire->len == 0)
        return 0;
    sks_reader_init(&r, wire->ptr, wire->len);
    if (sks_fields_read(stored_cert_path, 1, SKS_FF_WIRE, &r, out, NULL) != SKS_OK ||
        sks_reader_finish(&r) != 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return 0;
}

int card_m_get_device_info(card_call *call, const void *reqp, void *respp)
{
    static const uint8_t candidates[] = {
        SKS_KEYALG_RSA2048, SKS_KEYALG_RSA3072, SKS_KEYALG_RSA4096,
        SKS_KEYALG_EC_P256, SKS_KEYALG_EC_P384,
    };
    sks_resp_get_device_info *resp = respp;
    sks_card *card = call->card;
    uint32_t used = 0, changes = 0;

    if (card_certpath_view(&card->device_cert_path, &resp->device_certificate_path) != 0 ||
        resp->device_certificate_path.count == 0)
        return card_fail(call, SKS_ERR_INTERNAL, "the device certificate path is damaged");
    /* From memory while card.db is unchanged (card_keycache.c). */
    if (card_keycache_counts(card, &used, &changes) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot count the keys or read the change counter");
    for (size_t i = 0; i < sizeof(candidates); i++)
        if (card_keymat_alg_supported(candidates[i]))
            sks_put_byte(&call->out[0], candidates[i]);
    if (call->out[0].failed)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");

    resp->api_level = SKS_API_LEVEL;
    resp->serial = card_buf_view(&card->serial);
    resp->key_algorithms.ptr = call->out[0].buf;
    resp->key_algorithms.len = call->out[0].len;
    resp->max_keys = card->max_keys;
    resp->used_keys = used;
    resp->change_counter = changes;
    return SKS_OK;
}
