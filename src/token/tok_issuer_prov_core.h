/*
 * tok_issuer_prov_core.h - the issuer side of SKS provisioning in the terms
 * of the vendor header (CK_SKS_ISSUER_*_PARAMS and the card side's structs),
 * over the issuer library (src/issuer/sks_issuer.h), which does all the
 * cryptography. No handles and no objects here: tok_issuer_prov.c resolves
 * those and hands over keys and certificates, so these functions can be
 * tested against the card engine on their own.
 *
 * One tok_iprov is one issuer session: requested, then accepted (calls may
 * be prepared), then closing (the close was prepared), then closed (its
 * attestation verified). Any failure that is not a bad argument moves it
 * to failed, as a failed call aborts the card's session: later calls
 * answer CKR_VENDOR_SKS_NO_SESSION. Secrets (SK, PIN and PUK values) live
 * in the issuer library's session and are zeroized by tok_iprov_free().
 */
#ifndef SKS_TOK_ISSUER_PROV_CORE_H
#define SKS_TOK_ISSUER_PROV_CORE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11-kit/pkcs11.h>

#include "pkcs11/sks-pkcs11.h"

typedef struct tok_iprov tok_iprov;

/*
 * A new issuer session from the request's inputs; writes the outputs
 * (serverSessionId, pIssuerPublicKey). `issuer_key` (a reference is taken)
 * is the issuer's private key, or NULL for a fresh one. CKR_BUFFER_TOO_SMALL
 * (with the size needed) creates nothing.
 */
CK_RV tok_iprov_new(CK_SKS_ISSUER_SESSION_PARAMS *p, EVP_PKEY *issuer_key, tok_iprov **out);
void tok_iprov_free(tok_iprov *ip);

/* The reason of the last failure, for the log (never secret). */
const char *tok_iprov_error(const tok_iprov *ip);

/*
 * Accept the card's createProvisioningSession answer (the out fields of the
 * card side's struct): the device path must lead to `anchor`, the session
 * attestation must verify. CKR_VENDOR_SKS_ATTESTATION otherwise.
 */
CK_RV tok_iprov_accept(tok_iprov *ip, X509 *anchor, const CK_SKS_SESSION_PARAMS *card);

/*
 * Prepare one in-session call (CKM_VENDOR_SKS_PUK_POLICY .. _CLOSE,
 * _POST_DELETE_KEY .. _POST_UPDATE_KEY): fill the MAC and the encrypted
 * values of call->pCall. `private_key` is the key to import or restore
 * (else NULL). Also CKM_VENDOR_SKS_DECLARE_PUK_POLICY / _PIN_POLICY, which
 * record a policy of an earlier session and prepare nothing.
 */
CK_RV tok_iprov_prepare(tok_iprov *ip, CK_MECHANISM_TYPE mech,
                        const CK_SKS_ISSUER_CALL_PARAMS *call, EVP_PKEY *private_key);

/*
 * Verify a key attestation from the card side's answer to createKeyPair.
 * On success *public_key is the card key's public key (NULL for an
 * ImportPrivateKey key), *id and *label its ID and friendly name (views
 * into the session, valid while it lives).
 */
CK_RV tok_iprov_verify_key_pair(tok_iprov *ip, const CK_SKS_KEY_PAIR_PARAMS *card,
                                EVP_PKEY **public_key, const char **id, const char **label);

/* Verify the close attestation; the session is then closed. */
CK_RV tok_iprov_verify_close(tok_iprov *ip, const CK_SKS_CLOSE_PARAMS *card);

/*
 * CKM_VENDOR_SKS_DECLARE_KEY: a key of an earlier session of this issuer,
 * by its ID and `public_key` (the caller keeps its reference), which the
 * post-provisioning calls may then name.
 */
CK_RV tok_iprov_declare_key(tok_iprov *ip, const CK_SKS_DECLARE_KEY_PARAMS *p,
                            EVP_PKEY *public_key);

#endif
