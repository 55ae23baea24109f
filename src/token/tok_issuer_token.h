/*
 * tok_issuer_token.h - the issuer token of no-card mode (`transport = none`,
 * sks-pkcs11.conf(5)): with no card and no reader, the module shows one
 * slot (kind TOK_SLOT_ISSUER) whose token holds the issuer's own keys as
 * software keys (tok_soft.h) and does the issuer's side of secure key
 * injection (tok_inject_wrap.c). This header is what the shared entry
 * points call; the pieces are
 *
 *   tok_issuer_token.c    the slot, its token information and mechanisms
 *   tok_issuer_pin.c      the SO and user PINs, login, the token file
 *   tok_issuer_store.c    one file per token object, private ones encrypted
 *   tok_issuer_objects.c  creating, changing and destroying token objects
 *
 * Token objects live with the session objects (tok_object.c) marked by
 * their file's ID (tok_session_object.token_id) and owned by no session.
 * Public ones are loaded at C_Initialize; private ones are encrypted under
 * the token's master key, loaded at the user's C_Login and dropped at
 * logout with the private session objects.
 */
#ifndef SKS_TOK_ISSUER_TOKEN_H
#define SKS_TOK_ISSUER_TOKEN_H

#include <p11-kit/pkcs11.h>

#include "token/tok.h"

/* ---- life cycle (tok_card.c) and the slot (p11_slot.c) -------------------------- */

/* Open <state_dir>/issuer-token and show the slot; failures are logged and leave no slot. */
void tok_issuer_token_open(void);
void tok_issuer_token_close(void);
/* The token's label, NUL-terminated. */
void tok_issuer_token_label(char *buf, size_t cap);
CK_RV tok_issuer_token_info(const tok_slot *slot, CK_TOKEN_INFO *info);
/*
 * C_GetMechanismList and C_GetMechanismInfo as the issuer token offers them:
 * the module's mechanisms and the issuer side's own (tok_issuer_prov.h); no
 * CKF_HW; the injection mechanisms wrap only.
 */
CK_RV tok_issuer_mech_list(CK_MECHANISM_TYPE *list, CK_ULONG *count);
CK_RV tok_issuer_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info);

/* ---- PINs (p11_login.c, tok_session.c) -------------------------------------------- */

/* C_Login of the SO or the user; sets slot->login. The caller checked the PIN pointer. */
CK_RV tok_issuer_login(tok_slot *slot, CK_USER_TYPE user, const CK_UTF8CHAR *pin, CK_ULONG len);
/* Forget the token's keys at logout (the caller resets the login and drops private objects). */
CK_RV tok_issuer_logout(void);
/* C_InitToken (no session open): a new SO PIN and label; an initialised token is emptied. */
CK_RV tok_issuer_init_token(const CK_UTF8CHAR *so_pin, CK_ULONG len, const char *label);
CK_RV tok_issuer_init_pin(tok_session *s, tok_slot *slot, const CK_UTF8CHAR *pin, CK_ULONG len);
CK_RV tok_issuer_set_pin(tok_session *s, tok_slot *slot, const CK_UTF8CHAR *old_pin,
                         CK_ULONG old_len, const CK_UTF8CHAR *new_pin, CK_ULONG new_len);

/* ---- objects (p11_object.c and the software key code) ------------------------------ */

/* May the session create, change or destroy token objects? (R/W session, user logged in) */
CK_RV tok_issuer_write_allowed(const tok_session *s, const tok_slot *slot);
/*
 * Store a new, complete object of the issuer token: a token object (file
 * and memory) when CKA_TOKEN is true, else a session object. Takes over
 * `a` (emptied on success).
 */
CK_RV tok_issuer_store_object(tok_session *s, tok_slot *slot, tok_attrs *a, CK_OBJECT_HANDLE *out);
/* Make a session object the session just created a token object (destroyed if that fails). */
CK_RV tok_issuer_promote(tok_session *s, tok_slot *slot, CK_OBJECT_HANDLE h);
/* C_SetAttributeValue of a token object (template already checked): file first, then memory. */
CK_RV tok_issuer_object_update(tok_session *s, tok_slot *slot, tok_session_object *o,
                               const CK_ATTRIBUTE *t, CK_ULONG n);
/* Replace an object's attributes with `a` (emptied), written to its file if it has one. */
CK_RV tok_issuer_object_replace(tok_session *s, tok_slot *slot, tok_session_object *o,
                                tok_attrs *a);
/* C_DestroyObject of a token object: its file, then the object. */
CK_RV tok_issuer_object_destroy(tok_session *s, tok_slot *slot, tok_session_object *o);

#endif
