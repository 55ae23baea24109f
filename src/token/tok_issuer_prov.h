/*
 * tok_issuer_prov.h - the issuer side of SKS provisioning on the issuer
 * token of no-card mode (include/pkcs11/sks-pkcs11.h "Issuer side"):
 * tok_vendor.c sends CKM_VENDOR_SKS_SESSION (C_GenerateKey) and the
 * in-session and verification mechanisms (C_DeriveKey) here when the
 * session's slot is the issuer token (TOK_SLOT_ISSUER).
 *
 *   tok_issuer_prov.c          handles, objects, keys: the PKCS#11 side
 *   tok_issuer_prov_session.c  request, acceptance, close (core)
 *   tok_issuer_prov_calls.c    the calls and key attestations (core)
 *   tok_issuer_prov_post.c     earlier keys and post-provisioning (core)
 *
 * The post-provisioning mechanisms (CKM_VENDOR_SKS_POST_*) come here too on
 * the issuer token; on a card token they are the card side's (tok_post.c).
 */
#ifndef SKS_TOK_ISSUER_PROV_H
#define SKS_TOK_ISSUER_PROV_H

#include "token/tok.h"

/* Is this a mechanism of the issuer side (for C_DeriveKey on the issuer token)? */
int tok_issuer_prov_mech(CK_MECHANISM_TYPE type);

/*
 * The mechanisms only the issuer token has (CKM_VENDOR_SKS_SESSION_ACCEPT,
 * _VERIFY_KEY_PAIR, _VERIFY_CLOSE, _DECLARE_KEY, _DECLARE_PUK_POLICY,
 * _DECLARE_PIN_POLICY: C_DeriveKey), for its mechanism list, and their
 * C_GetMechanismInfo (CKR_MECHANISM_INVALID for any other).
 */
#define TOK_ISSUER_PROV_ONLY 6
extern const CK_MECHANISM_TYPE tok_issuer_prov_only[TOK_ISSUER_PROV_ONLY];
CK_RV tok_issuer_prov_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);

/* C_GenerateKey(CKM_VENDOR_SKS_SESSION, CK_SKS_ISSUER_SESSION_PARAMS) on the issuer token. */
CK_RV tok_issuer_prov_open(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                           const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out);
/* C_DeriveKey of an issuer-side mechanism, hBaseKey = the issuer's provisioning object. */
CK_RV tok_issuer_prov_call(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                           CK_OBJECT_HANDLE base, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           CK_OBJECT_HANDLE *out);
/* An object is going away: the issuer session it holds, if any, is freed (zeroized). */
void tok_issuer_prov_object_gone(const tok_session_object *o);

#endif
