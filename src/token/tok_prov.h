/*
 * tok_prov.h - what the files relaying SKS provisioning calls to the card
 * share (tok_prov*.c, and any later in-session call such as
 * post-provisioning): the provisioning object and its card session, the
 * rule that a failed call aborts that session, the checks that turn
 * CK_ULONG parameters into protocol fields, and the policy and key handles
 * of a session's parameters.
 *
 * The provisioning object (CKO_VENDOR_SKS_PROVISIONING) is a session object
 * holding the card's ProvisioningHandle in CKA_VENDOR_SKS_CARD_HANDLE. It
 * outlives its card session: after a close or an abort every call through
 * it answers CKR_VENDOR_SKS_NO_SESSION (the card says so), and it goes only
 * with C_DestroyObject or its PKCS#11 session, which abort the card session
 * if it is still open.
 */
#ifndef SKS_TOK_PROV_H
#define SKS_TOK_PROV_H

#include "token/tok_vendor.h"

/* One call in a provisioning session, from C_DeriveKey to its result. */
typedef struct {
    tok_session *s;
    tok_slot *slot;
    tok_card *card;
    uint32_t handle; /* the card's ProvisioningHandle */
    int refused;     /* the card answered with an error: it has aborted the session itself */
} tok_prov_ctx;

/*
 * Resolve hBaseKey: a provisioning object visible to the session, made on
 * this card while it was connected as it is now. CKR_KEY_HANDLE_INVALID or
 * CKR_KEY_TYPE_INCONSISTENT otherwise (nothing is sent to the card).
 */
CK_RV tok_prov_resolve(tok_session *s, tok_slot *slot, CK_OBJECT_HANDLE h, tok_prov_ctx *ctx);

/*
 * Run one provisioning method of the session and map the card's status
 * (tok_status_to_rv_prov). Sets ctx->refused when the card answered an
 * error status.
 */
CK_RV tok_prov_run(tok_prov_ctx *ctx, uint8_t method, const void *req, void *resp,
                   sks_writer *answer);

/*
 * The failure rule: a call that fails after its provisioning object was
 * resolved aborts the card session, except CKR_BUFFER_TOO_SMALL (nothing
 * was sent: the caller retries with larger buffers). The card aborts by
 * itself when it refused the call; otherwise abortProvisioningSession is
 * sent. Returns rv.
 */
CK_RV tok_prov_finish(tok_prov_ctx *ctx, CK_RV rv);

/* abortProvisioningSession, best effort (its status is not looked at). */
void tok_prov_abort(tok_card *card, uint32_t handle);

/* ---- parameters -------------------------------------------------------------- */
/* The mechanism's parameter as a struct of exactly `size` bytes, or NULL. */
void *tok_prov_param(const CK_MECHANISM *m, size_t size);
/* A byte string of at most `max` bytes (NULL only with length 0). 0, or -1. */
int tok_prov_bytes(const CK_BYTE *p, CK_ULONG len, CK_ULONG max, sks_view *out);
/* A CK_ULONG that fits a byte / a short / an int, a CK_BBOOL that is 0 or 1. 0, or -1. */
int tok_prov_u8(CK_ULONG v, uint8_t *out);
int tok_prov_u16(CK_ULONG v, uint16_t *out);
int tok_prov_u32(CK_ULONG v, uint32_t *out);
int tok_prov_bool(CK_BBOOL v, uint8_t *out);
/* Does an output buffer of `have` bytes hold `need`? A NULL buffer holds nothing. */
int tok_prov_fits(const CK_BYTE *buf, CK_ULONG have, CK_ULONG need);
/*
 * Copy one output of the card's answer into the caller's buffer (size in,
 * length out), whose size was checked before the call: 0, or -1 when the
 * card sent more than announced.
 */
int tok_prov_put(CK_BYTE *buf, CK_ULONG *len, sks_view v);

/*
 * The card handle of a policy object (CKO_VENDOR_SKS_PUK_POLICY or
 * _PIN_POLICY, as `cls` says) named in a parameter; CK_INVALID_HANDLE is 0
 * (no policy). CKR_MECHANISM_PARAM_INVALID when it names no such object.
 * Which session it belongs to is for the card to judge (docs/protocol.md 6.9).
 */
CK_RV tok_prov_policy(tok_prov_ctx *ctx, CK_OBJECT_HANDLE h, CK_OBJECT_CLASS cls, uint32_t *out);
/*
 * The card key handle of a key's CKO_PRIVATE_KEY handle (as
 * CKM_VENDOR_SKS_KEY_PAIR returned it) on this card. The key need not be
 * complete yet; whether it belongs to the session is for the card to judge.
 * CKR_MECHANISM_PARAM_INVALID when the handle is no private key of the card.
 */
CK_RV tok_prov_key(const tok_prov_ctx *ctx, CK_OBJECT_HANDLE h, uint32_t *out);
/*
 * Check the template of an in-session call whose result is a card object
 * of class `cls` (or nothing, cls CK_UNAVAILABLE_INFORMATION): it may only
 * name that class. CKR_TEMPLATE_INCONSISTENT otherwise.
 */
CK_RV tok_prov_no_template(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_CLASS cls);

/*
 * A session object of a vendor class (provisioning object, PUK or PIN
 * policy) for the card handle `card_handle`: the template's attributes
 * (checked against the class's rules for `op`; CKA_TOKEN true is
 * CKR_ATTRIBUTE_VALUE_INVALID), `id` as CKA_ID when given, the defaults,
 * not copyable, not private.
 */
CK_RV tok_prov_object_new(tok_session *s, CK_OBJECT_CLASS cls, enum tok_op op,
                          const CK_ATTRIBUTE *tmpl, CK_ULONG n, sks_view id, uint32_t card_handle,
                          CK_OBJECT_HANDLE *out);
/* Only the template check of tok_prov_object_new (before anything is sent). */
CK_RV tok_prov_object_check(CK_OBJECT_CLASS cls, enum tok_op op, const CK_ATTRIBUTE *tmpl,
                            CK_ULONG n);

/* ---- the calls ------------------------------------------------------------------ */
/* One in-session call: the parameters checked, the card's answer turned into objects. */
typedef CK_RV tok_prov_fn(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                          CK_ULONG n, CK_OBJECT_HANDLE *out);
/*
 * Run `call` in the card session of the provisioning object: a card's
 * token, a R/W session, the object resolved, the failure rule applied
 * (tok_prov_finish). tok_prov_calls.c.
 */
CK_RV tok_prov_in_session(tok_session *s, tok_slot *slot, CK_OBJECT_HANDLE provisioning,
                          tok_prov_fn *call, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                          CK_ULONG n, CK_OBJECT_HANDLE *out);

/* tok_prov_keys.c */
CK_RV tok_prov_key_pair(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV tok_prov_certificate_path(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                                CK_ULONG n, CK_OBJECT_HANDLE *out);
CK_RV tok_prov_private_key(tok_prov_ctx *ctx, const CK_MECHANISM *m, const CK_ATTRIBUTE *tmpl,
                           CK_ULONG n, CK_OBJECT_HANDLE *out);

#endif
