/*
 * tok_vendor.h - where the module's vendor mechanisms (include/pkcs11/
 * sks-pkcs11.h) enter the token layer. p11_keys.c sends every
 * CKM_VENDOR_SKS_* mechanism here before the standard code sees it;
 * tok_vendor.c routes each to the file that owns it:
 *   tok_prov*.c    SKS provisioning calls relayed to the card
 *   tok_inject*.c  session-key import and key injection (both sides)
 *   tok_dkek*.c    backup and restore under the DKEK
 */
#ifndef SKS_TOK_VENDOR_H
#define SKS_TOK_VENDOR_H

#include <p11-kit/pkcs11.h>

#include "pkcs11/sks-pkcs11.h"
#include "token/tok.h"

/* Is this one of the module's vendor mechanisms? */
int tok_vendor_mech(CK_MECHANISM_TYPE type);

CK_RV tok_vendor_generate_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                              const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV tok_vendor_derive_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                            CK_OBJECT_HANDLE base, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                            CK_OBJECT_HANDLE *out);
CK_RV tok_vendor_wrap_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                          CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, uint8_t *out,
                          CK_ULONG *out_len);
CK_RV tok_vendor_unwrap_key(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                            CK_OBJECT_HANDLE unwrapping_key, const uint8_t *wrapped,
                            CK_ULONG wrapped_len, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                            CK_OBJECT_HANDLE *out);

/*
 * A session object is going away (C_DestroyObject, its session closed,
 * C_Finalize), already unlinked from the module's list: the owner of its
 * class releases what it names outside the module.
 */
void tok_vendor_object_gone(const tok_session_object *o);

/* ---- the owners' entry points ---------------------------------------------- */
/* tok_prov*.c: CKM_VENDOR_SKS_SESSION (generate) and the in-session calls (derive). */
CK_RV tok_prov_open(tok_session *s, tok_slot *slot, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                    CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV tok_prov_call(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE provisioning, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                    CK_OBJECT_HANDLE *out);
/* tok_prov.c: a provisioning object going away aborts its card session if still open. */
void tok_prov_object_gone(const tok_session_object *o);
/* tok_post.c: CKM_VENDOR_SKS_POST_* (derive, base = the provisioning object). */
CK_RV tok_post_call(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE provisioning, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                    CK_OBJECT_HANDLE *out);
/* tok_inject*.c: CKM_VENDOR_SKS_SESSION_KEY_* and CKM_VENDOR_SKS_INJECT_KEY. */
CK_RV tok_inject_wrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                      CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, uint8_t *out,
                      CK_ULONG *out_len);
CK_RV tok_inject_unwrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                        CK_OBJECT_HANDLE unwrapping_key, const uint8_t *wrapped,
                        CK_ULONG wrapped_len, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
                        CK_OBJECT_HANDLE *out);
/* tok_inject_unwrap.c: an injection session key (S1) going away is deleted on the card. */
void tok_inject_object_gone(const tok_session_object *o);
/* tok_dkek*.c: CKM_VENDOR_SKS_DKEK_WRAP. */
CK_RV tok_dkek_wrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                    CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, uint8_t *out,
                    CK_ULONG *out_len);
CK_RV tok_dkek_unwrap(tok_session *s, tok_slot *slot, const CK_MECHANISM *m,
                      CK_OBJECT_HANDLE unwrapping_key, const uint8_t *wrapped, CK_ULONG wrapped_len,
                      const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out);

#endif
