/*
 * card_backup.c - key backup blobs under the DKEK (docs/protocol.md section
 * 11, docs/dkek.md): wrapKey makes the blob of a key that allows backup,
 * unwrapKey restores one as a new key of this card.
 *
 * unwrapKey reads nothing of a blob before its KCV and its CMAC have been
 * checked: a blob of another DKEK (CRYPTO) or an altered one (MAC) is
 * refused before any other check, and nothing is created. After the CMAC
 * only a holder of the DKEK could have made the bytes, so the later checks
 * (FORMAT, ALGORITHM) guard against such a holder's mistakes, not against
 * forgery; OPTION is kept for one case, a key with the same ID already on
 * the card. A key that had a PIN is restored only under a verified PIN
 * policy (NOT_AUTHENTICATED for PINPolicyHandle 0). The dispatcher runs
 * unwrapKey in one transaction.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "../protocol/sks_crypto.h"
#include "../protocol/sks_dkek.h"
#include "../protocol/sks_keys.h"
#include "card_dkek.h"
#include "card_keymat.h"

/* The flags a restored key keeps: its permissions and provisioning history. */
#define RESTORED_FLAGS                                                                             \
    (SKS_KEYFLAG_PRIVATE_KEY_BACKUP | SKS_KEYFLAG_MIGRATABLE | SKS_KEYFLAG_UPDATABLE |             \
     SKS_KEYFLAG_DELETE_PROTECTED | SKS_KEYFLAG_IMPORT_PRIVATE_KEY)

/*
 * The key material a backup carries: the stored PKCS#8, except that an EC
 * key leaves out the optional public key of its ECPrivateKey (the restoring
 * card computes it from the private value). That keeps the backup of a
 * P-256 key with its certificates below the 1024 bytes OpenSC 0.23's
 * `pkcs11-tool --unwrap` reads.
 */
static int backup_material(const card_key_rec *rec, card_buf *out)
{
    EVP_PKEY *key = card_keymat_load(rec->private_key.ptr, rec->private_key.len);
    uint8_t *der = NULL;
    size_t len = 0;
    if (key != NULL && EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
        EVP_PKEY_free(key);
        return card_buf_set(out, rec->private_key.ptr, rec->private_key.len);
    }
    int rc = -1;
    if (key != NULL && EVP_PKEY_set_int_param(key, OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC, 0) == 1 &&
        sks_pkcs8_encode(key, &der, &len) == 0) {
        rc = card_buf_set(out, der, len);
        OPENSSL_clear_free(der, len);
    }
    EVP_PKEY_free(key);
    return rc;
}

/* The DKEK, which must be complete (NOT_ALLOWED otherwise). */
static int ready_dkek(card_call *call, card_dkek *d)
{
    int status = card_dkek_load(call, d);
    if (status == SKS_OK && d->state != SKS_DKEK_READY)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED,
                           d->state == SKS_DKEK_NONE ? "the card has no DKEK"
                                                     : "DKEK shares are outstanding");
    return status;
}

/* The ID of a key's PIN policy (empty without one), for the blob's PolicyID. */
static int policy_id_of(card_call *call, uint32_t pin_policy, card_pin_rec *pin, sks_view *id)
{
    memset(pin, 0, sizeof(*pin));
    *id = (sks_view){NULL, 0};
    if (pin_policy == SKS_HANDLE_NONE)
        return SKS_OK;
    if (card_store_pin_get(call->card->store, pin_policy, pin) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot read PIN policy %u", pin_policy);
    *id = (sks_view){pin->id, pin->id_len};
    return SKS_OK;
}

int card_m_wrap_key(card_call *call, const void *reqp, void *respp)
{
    const sks_req_wrap_key *req = reqp;
    sks_resp_wrap_key *resp = respp;
    card_dkek d;
    card_key_rec rec;
    card_pin_rec pin;
    sks_dkek_blob hdr;
    card_buf material = {NULL, 0};

    memset(&rec, 0, sizeof(rec));
    memset(&pin, 0, sizeof(pin));
    memset(&hdr, 0, sizeof(hdr));
    int status = ready_dkek(call, &d);
    if (status == SKS_OK)
        status = card_key_get_complete(call, req->key_handle, &rec);
    if (status == SKS_OK && !(rec.flags & SKS_KEYFLAG_MIGRATABLE))
        status =
            card_fail(call, SKS_ERR_NOT_ALLOWED, "key %u does not allow backup", req->key_handle);
    if (status == SKS_OK)
        status = card_key_require_pin(call, &rec);
    if (status == SKS_OK && rec.private_key.len == 0)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED, "key %u has no private key", req->key_handle);
    if (status == SKS_OK)
        status = policy_id_of(call, rec.pin_policy, &pin, &hdr.policy_id);
    if (status == SKS_OK) {
        hdr.algorithm = rec.algorithm;
        hdr.usage = rec.usage;
        hdr.flags = rec.flags;
        hdr.id = (sks_view){rec.id, rec.id_len};
        hdr.friendly_name = card_buf_view(&rec.friendly_name);
        hdr.cert_path = card_buf_view(&rec.cert_path);
        if (backup_material(&rec, &material) != 0)
            status = card_fail(call, SKS_ERR_CRYPTO, "the stored private key of key %u is damaged",
                               req->key_handle);
        else if (sks_dkek_blob_build(d.value, &hdr, material.ptr, material.len, NULL,
                                     &call->out[0]) != 0)
            status = card_fail(call, SKS_ERR_INTERNAL, "cannot build the key backup");
    }
    card_buf_free(&material);
    if (status == SKS_OK)
        resp->blob = (sks_view){call->out[0].buf, call->out[0].len};
    card_pin_rec_free(&pin);
    card_key_rec_free(&rec);
    card_dkek_wipe(&d);
    return status;
}

/* KCV, then CMAC: the status of a blob that does not verify under the card's DKEK. */
static int verify_blob(card_call *call, const card_dkek *d, sks_view blob)
{
    switch (sks_dkek_blob_verify(d->value, blob.ptr, blob.len)) {
    case SKS_DKEK_BLOB_OK:
        return SKS_OK;
    case SKS_DKEK_BLOB_SHORT:
        return card_fail(call, SKS_ERR_FORMAT, "too short for a key backup");
    case SKS_DKEK_BLOB_OTHER_KEK:
        return card_fail(call, SKS_ERR_CRYPTO, "the backup was made under another DKEK (KCV)");
    case SKS_DKEK_BLOB_BAD_MAC:
        return card_fail(call, SKS_ERR_MAC, "the backup's CMAC does not match: altered or damaged");
    default:
        return card_fail(call, SKS_ERR_INTERNAL, "cannot verify the backup");
    }
}

/* The header's values against the card's rules (after the CMAC). */
static int check_header(card_call *call, const sks_dkek_blob *b)
{
    int used = 0;
    uint32_t count = 0;
    if (b->usage == 0 || (b->usage & ~SKS_USAGE_ALL) != 0)
        return card_fail(call, SKS_ERR_FORMAT, "bad KeyUsage in the backup");
    if (!card_keymat_alg_supported(b->algorithm))
        return card_fail(call, SKS_ERR_ALGORITHM, "unsupported AlgorithmData 0x%02x", b->algorithm);
    if (!(b->flags & SKS_KEYFLAG_MIGRATABLE))
        return card_fail(call, SKS_ERR_FORMAT, "the backup is of a key without backup permission");
    if (card_store_key_id_used(call->card->store, b->id, 0, &used) != SKS_OK ||
        card_store_key_count(call->card->store, &count) != SKS_OK)
        return card_fail(call, SKS_ERR_STORAGE, "cannot look up the keys");
    if (used)
        return card_fail(call, SKS_ERR_OPTION, "a key with this ID is already on the card");
    if (count >= call->card->max_keys)
        return card_fail(call, SKS_ERR_NOT_ALLOWED, "the card holds its maximum of %u keys",
                         call->card->max_keys);
    return SKS_OK;
}

/*
 * The PIN policy the key goes under: one whose PIN is verified now, or none
 * for a key that had none. A blob that names a PIN policy (PolicyID, bound
 * by the CMAC) is of a key that needed a PIN: it is never restored without
 * one, or a holder of the backup and of a card with the DKEK could use the
 * key with no PIN at all. A key that had no PIN may go under a PIN policy.
 */
static int check_target_policy(card_call *call, uint32_t handle, const sks_dkek_blob *b)
{
    card_pin_rec pin;
    int has_puk = 0;
    memset(&pin, 0, sizeof(pin));
    int status = SKS_OK;
    if (handle == SKS_HANDLE_NONE && b->policy_id.len > 0)
        status = card_fail(call, SKS_ERR_NOT_AUTHENTICATED,
                           "the backup is of a key with a PIN: restore it under a PIN policy "
                           "whose PIN is verified");
    if (status == SKS_OK && handle != SKS_HANDLE_NONE) {
        status = card_pin_policy_load(call, handle, &pin);
        if (status == SKS_OK && !card_pin_is_verified(call->card, handle))
            status = card_fail(call, SKS_ERR_NOT_AUTHENTICATED,
                               "the PIN of policy %u is not verified", handle);
        has_puk = pin.puk_handle != SKS_HANDLE_NONE;
    }
    if (status == SKS_OK && (b->flags & SKS_KEYFLAG_DELETE_PROTECTED) && !has_puk)
        status = card_fail(call, SKS_ERR_NOT_ALLOWED,
                           "a DeleteProtected key needs a PIN policy with a PUK");
    card_pin_rec_free(&pin);
    return status;
}

/* Decrypt the key material and check it against the header: the key record's key fields. */
static int open_key(card_call *call, const card_dkek *d, const sks_dkek_blob *b, card_key_rec *k)
{
    uint8_t *pt = malloc(b->encrypted_key.len);
    size_t ptlen = 0;
    EVP_PKEY *key = NULL;
    int status = SKS_OK;

    if (pt == NULL)
        return card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    if (sks_dkek_blob_decrypt(d->value, b, pt, &ptlen) != 0)
        status = card_fail(call, SKS_ERR_FORMAT, "the key material does not decrypt");
    if (status == SKS_OK && (key = card_keymat_load(pt, ptlen)) == NULL)
        status = card_fail(call, SKS_ERR_FORMAT, "the key material is not a PKCS#8 key");
    if (status == SKS_OK && card_keymat_alg_of(key) != b->algorithm)
        status = card_fail(call, SKS_ERR_ALGORITHM, "the key is not of its AlgorithmData");
    if (status == SKS_OK && card_keymat_spki(key, &k->public_key) != 0)
        status = card_fail(call, SKS_ERR_INTERNAL, "cannot encode the public key");
    if (status == SKS_OK && b->cert_path.len > 0) {
        sks_reader r;
        sks_view cert;
        uint8_t count;
        sks_reader_init(&r, b->cert_path.ptr, b->cert_path.len);
        if (sks_get_byte(&r, &count) != 0 || sks_get_bytes(&r, &cert) != 0 ||
            !card_keymat_cert_matches(cert.ptr, cert.len, k->public_key.ptr, k->public_key.len))
            status = card_fail(call, SKS_ERR_FORMAT,
                               "the certificate does not hold the key's public key");
    }
    if (status == SKS_OK && card_buf_set(&k->private_key, pt, ptlen) != 0)
        status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    EVP_PKEY_free(key);
    sks_cleanse(pt, b->encrypted_key.len);
    free(pt);
    return status;
}

int card_m_unwrap_key(card_call *call, const void *reqp, void *respp)
{
    const sks_req_unwrap_key *req = reqp;
    sks_resp_unwrap_key *resp = respp;
    card_dkek d;
    card_key_rec k;
    sks_dkek_blob b;
    const char *why = NULL;

    memset(&k, 0, sizeof(k));
    int status = ready_dkek(call, &d);
    if (status == SKS_OK)
        status = verify_blob(call, &d, req->blob);
    if (status == SKS_OK && sks_dkek_blob_parse(req->blob.ptr, req->blob.len, &b, &why) != 0)
        status = card_fail(call, SKS_ERR_FORMAT, "%s", why);
    if (status == SKS_OK)
        status = check_target_policy(call, req->pin_policy_handle, &b);
    if (status == SKS_OK)
        status = check_header(call, &b);
    if (status == SKS_OK)
        status = open_key(call, &d, &b, &k);
    if (status == SKS_OK && card_store_next_handle(call->card->store, &k.handle) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot allocate a handle");
    if (status == SKS_OK) {
        k.session = SKS_HANDLE_NONE; /* restored, not provisioned */
        memcpy(k.id, b.id.ptr, b.id.len);
        k.id_len = (uint8_t)b.id.len;
        k.pin_policy = req->pin_policy_handle;
        k.flags = (uint8_t)((b.flags & RESTORED_FLAGS) | SKS_KEYFLAG_COMPLETE);
        k.usage = b.usage;
        k.algorithm = b.algorithm;
        if (card_buf_set(&k.friendly_name, b.friendly_name.ptr, b.friendly_name.len) != 0 ||
            card_buf_set(&k.cert_path, b.cert_path.ptr, b.cert_path.len) != 0)
            status = card_fail(call, SKS_ERR_INTERNAL, "out of memory");
    }
    if (status == SKS_OK && card_store_key_put(call->card->store, &k) != SKS_OK)
        status = card_fail(call, SKS_ERR_STORAGE, "cannot store the key");
    if (status == SKS_OK)
        resp->key_handle = k.handle;
    card_key_rec_free(&k);
    card_dkek_wipe(&d);
    return status;
}
