/*
 * card_dkek.c - the DKEK and its shares (docs/protocol.md section 11,
 * docs/dkek.md): initializeDKEK, importDKEKShare, getDKEKStatus.
 *
 * The state is one sealed metadata value "dkek":
 *   Format(1) = 1 | State(1) | SharesTotal(1) | SharesImported(1) | Value(32)
 * sealed with AES-256-GCM under the master key like every other secret, so
 * the counts cannot be changed without the value failing to open. Value is
 * the XOR of the shares imported so far; it is the DKEK once all are in.
 * The dispatcher runs initializeDKEK and importDKEKShare in one
 * transaction each, so a crash leaves the old or the new state.
 */
#include "card_dkek.h"

#include <string.h>

#include <openssl/rand.h>

#include "../protocol/sks_crypto.h"
#include "../protocol/sks_dkek.h"

#define META_DKEK       "dkek"
#define DKEK_FORMAT     1
#define DKEK_RECORD_LEN (4 + SKS_DKEK_LEN)

void card_dkek_wipe(card_dkek *d)
{
    sks_cleanse(d, sizeof(*d));
}

int card_dkek_load(card_call *call, card_dkek *d)
{
    card_buf b = {NULL, 0};
    memset(d, 0, sizeof(*d));
    int rc = card_store_meta_get(call->card->store, META_DKEK, &b, 1);
    if (rc == -1)
        return SKS_OK; /* never initialised */
    if (rc != SKS_OK)
        return card_fail(call, rc, "cannot read the DKEK");
    const uint8_t *p = b.ptr;
    int ok = b.len == DKEK_RECORD_LEN && p[0] == DKEK_FORMAT &&
             (p[1] == SKS_DKEK_PENDING || p[1] == SKS_DKEK_READY) && p[2] <= SKS_DKEK_SHARES_MAX &&
             p[3] <= p[2] && (p[1] == SKS_DKEK_READY) == (p[3] == p[2]);
    if (ok) {
        d->state = p[1];
        d->total = p[2];
        d->imported = p[3];
        memcpy(d->value, p + 4, SKS_DKEK_LEN);
    }
    card_buf_free(&b);
    return ok ? SKS_OK : card_fail(call, SKS_ERR_INTERNAL, "the stored DKEK is damaged");
}

static int dkek_save(card_call *call, const card_dkek *d)
{
    uint8_t rec[DKEK_RECORD_LEN];
    rec[0] = DKEK_FORMAT;
    rec[1] = d->state;
    rec[2] = d->total;
    rec[3] = d->imported;
    memcpy(rec + 4, d->value, SKS_DKEK_LEN);
    int rc = card_store_meta_put(call->card->store, META_DKEK, rec, sizeof(rec), 1);
    sks_cleanse(rec, sizeof(rec));
    return rc == SKS_OK ? SKS_OK : card_fail(call, SKS_ERR_STORAGE, "cannot store the DKEK");
}

/* The status results of importDKEKShare and getDKEKStatus (KCV only once complete). */
static int dkek_status(card_call *call, const card_dkek *d, sks_resp_dkek_status *resp)
{
    uint8_t kcv[SKS_DKEK_KCV_LEN] = {0};
    if (d->state == SKS_DKEK_READY && sks_dkek_kcv(d->value, kcv) != 0)
        return card_fail(call, SKS_ERR_INTERNAL, "cannot compute the KCV");
    sks_put_raw(&call->out[0], kcv, sizeof(kcv));
    if (call->out[0].failed)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    resp->state = d->state;
    resp->shares_total = d->total;
    resp->shares_outstanding = (uint8_t)(d->total - d->imported);
    resp->kcv = (sks_view){call->out[0].buf, call->out[0].len};
    return SKS_OK;
}

/*
 * initializeDKEK: start over with `share_count` shares, or a random DKEK of
 * the card's own for 0. Refused while any key allows backup: its backups
 * would no longer open on this card, nor on the cards it was cloned to.
 */
int card_m_initialize_dkek(card_call *call, const void *reqp, void *respp)
{
    const sks_req_initialize_dkek *req = reqp;
    card_dkek d;
    int used = 0;
    (void)respp;

    if (req->share_count > SKS_DKEK_SHARES_MAX)
        return card_fail(call, SKS_ERR_OPTION, "ShareCount above %d", SKS_DKEK_SHARES_MAX);
    if (card_store_key_flag_used(call->card->store, SKS_KEYFLAG_MIGRATABLE, &used) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot look up the keys");
    if (used)
        return card_fail(call, SKS_ERR_NOT_ALLOWED,
                         "the card holds keys that allow backup: a new DKEK would orphan their "
                         "backups");
    memset(&d, 0, sizeof(d));
    d.total = req->share_count;
    d.state = req->share_count == 0 ? SKS_DKEK_READY : SKS_DKEK_PENDING;
    if (req->share_count == 0 && RAND_bytes(d.value, SKS_DKEK_LEN) != 1) {
        card_dkek_wipe(&d);
        return card_fail(call, SKS_ERR_INTERNAL, "the random generator failed");
    }
    int status = dkek_save(call, &d);
    card_dkek_wipe(&d);
    return status;
}

/* importDKEKShare: XOR one more share in; the last one completes the DKEK. */
int card_m_import_dkek_share(card_call *call, const void *reqp, void *respp)
{
    const sks_req_import_dkek_share *req = reqp;
    card_dkek d;
    uint8_t any = 0;

    for (size_t i = 0; i < req->share.len; i++)
        any |= req->share.ptr[i];
    if (any == 0)
        return card_fail(call, SKS_ERR_OPTION, "a share of zeros changes nothing");
    int status = card_dkek_load(call, &d);
    if (status == SKS_OK && d.state != SKS_DKEK_PENDING)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED,
                           d.state == SKS_DKEK_NONE ? "no DKEK: initializeDKEK first"
                                                    : "no DKEK share is outstanding");
    if (status == SKS_OK) {
        for (size_t i = 0; i < SKS_DKEK_LEN; i++)
            d.value[i] ^= req->share.ptr[i];
        d.imported++;
        if (d.imported == d.total)
            d.state = SKS_DKEK_READY;
        status = dkek_save(call, &d);
    }
    if (status == SKS_OK)
        status = dkek_status(call, &d, respp);
    card_dkek_wipe(&d);
    return status;
}

int card_m_get_dkek_status(card_call *call, const void *reqp, void *respp)
{
    card_dkek d;
    (void)reqp;
    int status = card_dkek_load(call, &d);
    if (status == SKS_OK)
        status = dkek_status(call, &d, respp);
    card_dkek_wipe(&d);
    return status;
}
