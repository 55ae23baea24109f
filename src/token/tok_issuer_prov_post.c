/*
 * tok_issuer_prov_post.c - post-provisioning on the issuer side
 * (docs/protocol.md 6.10): the keys an earlier session of this issuer made,
 * declared by ID and public key (CKM_VENDOR_SKS_DECLARE_KEY), and the
 * postDeleteKey, postUnlockKey and postUpdateKey calls that name them
 * (CKM_VENDOR_SKS_POST_*), MACed by the issuer library.
 *
 * As for the other calls, what would make the card refuse the call and
 * abort its session is checked first where the issuer knows it (the key
 * declared, named once, the replacing key of this session and replacing
 * no other key), so a refused argument costs no counter value. What only
 * the card knows (the key exists, is Updatable, has a PIN policy, was made
 * by this issuer) the card judges.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "token/tok_issuer_prov_int.h"
#include "token/tok_try.h"

CK_RV tok_iprov_declare_key(tok_iprov *ip, const CK_SKS_DECLARE_KEY_PARAMS *p, EVP_PKEY *public_key)
{
    iprov_rec rec;
    TRY(iprov_check_open(ip));
    if (p == NULL || public_key == NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "no key ID or public key");
    /* One declared key per ID, so that a post call's pReferenceId names one key. */
    TRY(iprov_new_id(ip, p->pId, p->ulIdLen, IPROV_EARLIER_KEY, &rec));
    unsigned char *spki = NULL;
    int n = i2d_PUBKEY(public_key, &spki);
    if (n <= 0 || n > CKS_PUBLIC_KEY_MAX) {
        OPENSSL_free(spki);
        return iprov_bad(ip, CKR_KEY_TYPE_INCONSISTENT, "the public key has no usable DER form");
    }
    CK_RV rv = iprov_add(ip, &rec);
    if (rv == CKR_OK && sks_issuer_declare_key(ip->is, rec.id, (sks_view){spki, (size_t)n}) != 0)
        rv = iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot declare the key");
    OPENSSL_free(spki);
    return rv;
}

/*
 * The key of this session that replaces the earlier one (POST_UPDATE_KEY,
 * its ID in pValue), or none for the other two calls (pValue empty).
 */
static CK_RV replacing_key(tok_iprov *ip, CK_MECHANISM_TYPE mech,
                           const CK_SKS_ISSUER_CALL_PARAMS *call, iprov_rec **out)
{
    char id[SKS_ID_MAX + 1];
    *out = NULL;
    if (mech != CKM_VENDOR_SKS_POST_UPDATE_KEY) {
        if (call->pValue != NULL || call->ulValueLen != 0)
            return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "a value is not taken here");
        return CKR_OK;
    }
    TRY(iprov_id(ip, call->pValue, call->ulValueLen, id));
    *out = iprov_find(ip, IPROV_KEY, id);
    if (*out == NULL)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "pValue must be the ID of a key of this session");
    if ((*out)->replaces)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID, "that key already replaces another key");
    return CKR_OK;
}

CK_RV iprov_post(tok_iprov *ip, CK_MECHANISM_TYPE mech, const CK_SKS_ISSUER_CALL_PARAMS *call)
{
    CK_SKS_POST_PARAMS *c = call->pCall;
    iprov_rec *earlier, *new_key;
    TRY(iprov_reference(ip, call, IPROV_REF_REQUIRED, IPROV_EARLIER_KEY, &earlier));
    if (earlier->named)
        return iprov_bad(ip, CKR_MECHANISM_PARAM_INVALID,
                         "the key is already named by a call of this session");
    TRY(replacing_key(ip, mech, call, &new_key));

    sks_issuer_msg *m = iprov_msg_new();
    if (m == NULL)
        return CKR_HOST_MEMORY;
    /* The library takes the public key declared with the ID (the only one). */
    const sks_view declared = {NULL, 0};
    sks_req_post_key req;
    int rc;
    if (mech == CKM_VENDOR_SKS_POST_DELETE_KEY)
        rc = sks_issuer_prepare_post_delete(ip->is, earlier->id, declared, 0, m, &req);
    else if (mech == CKM_VENDOR_SKS_POST_UNLOCK_KEY)
        rc = sks_issuer_prepare_post_unlock(ip->is, earlier->id, declared, 0, m, &req);
    else
        rc = sks_issuer_prepare_post_update(ip->is, earlier->id, declared, 0, new_key->id, 0, m,
                                            &req);
    CK_RV rv = CKR_OK;
    if (rc != 0) {
        rv = iprov_broken(ip, CKR_FUNCTION_FAILED, "cannot prepare the post-provisioning call");
    } else {
        earlier->named = 1;
        if (new_key != NULL)
            new_key->replaces = 1;
        memcpy(c->mac, m->mac, CKS_MAC_LEN);
    }
    iprov_msg_done(m);
    return rv;
}
