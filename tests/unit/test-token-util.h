/*
 * test-token-util.h - what the PKCS#11 module tests share: the module
 * loaded with dlopen from the build tree (path SKS_PKCS11_MODULE, set by
 * tests/unit/token.mk) and called only through C_GetFunctionList, and a
 * private environment per test: a temporary directory with its own
 * configuration (SKS_PKCS11_CONF) and state directory, optionally with a
 * card the test provisions itself through testlib (the module's state
 * directory then links to that card).
 */
#ifndef TEST_TOKEN_UTIL_H
#define TEST_TOKEN_UTIL_H

#include <p11-kit/pkcs11.h>

#include "pkcs11/sks-pkcs11.h"

#include "testlib.h"

typedef struct {
    char dir[256];  /* temporary directory: sks-pkcs11.conf and state/ */
    char conf[300]; /* the configuration file */
    char state[300];
    tl_card *card; /* the card behind the module (tt_env_with_card), or NULL */
} tt_env;

/* The module's function list (dlopen once per process). */
CK_FUNCTION_LIST *tt_module(void);

/* A fresh environment whose config names `extra` lines too (may be NULL). */
void tt_env_init(tt_env *e, const char *extra);
/* The same with a card made by testlib, which the module then uses. */
void tt_env_with_card(tt_env *e, const char *extra);
void tt_env_free(tt_env *e);

/* C_Initialize(NULL) + the slot list; asserts CKR_OK. */
CK_FUNCTION_LIST *tt_init(void);
/* The slots in list order; *n is their number (at most `max`). */
void tt_slots(CK_FUNCTION_LIST *f, CK_SLOT_ID *ids, CK_ULONG max, CK_ULONG *n);
/* The slot whose token label is `label` (blank-padded comparison); asserts it exists. */
CK_SLOT_ID tt_slot_by_label(CK_FUNCTION_LIST *f, const char *label);
/* The free slot (the last one); asserts its token is not initialised. */
CK_SLOT_ID tt_free_slot(CK_FUNCTION_LIST *f);
/* An R/W session on a slot. */
CK_SESSION_HANDLE tt_open(CK_FUNCTION_LIST *f, CK_SLOT_ID slot);
/* All objects a template finds (at most max). */
CK_ULONG tt_find(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n,
                 CK_OBJECT_HANDLE *out, CK_ULONG max);

/* ---- Objects and attributes (each call asserted) ---------------------- */

/* A CK_BBOOL / CK_ULONG attribute (its size asserted). */
CK_BBOOL tt_get_bool(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                     CK_ATTRIBUTE_TYPE type);
CK_ULONG tt_get_ulong(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type);
/* An attribute's value read into buf (at most cap bytes); its length. */
CK_ULONG tt_get_bytes(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type, void *buf, CK_ULONG cap);
/* An attribute's value, malloc'ed (two-call convention); *len its length. */
uint8_t *tt_get_value(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      CK_ATTRIBUTE_TYPE type, CK_ULONG *len);
/* The attribute's value is exactly `want`. */
void tt_assert_bytes(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                     CK_ATTRIBUTE_TYPE type, const void *want, size_t want_len);
/* Objects of class `cls` with CKA_ID `id` (NULL: any); the first goes to *first unless NULL. */
CK_ULONG tt_count_id(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *id,
                     CK_OBJECT_HANDLE *first);
/* The one object of class `cls` with CKA_ID `id` (exactly one, asserted). */
CK_OBJECT_HANDLE tt_find_id(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                            const char *id);
/* An R/W session on the token labelled `label`, the user logged in with `pin` unless NULL. */
CK_SESSION_HANDLE tt_user_session(CK_FUNCTION_LIST *f, const char *label, const char *pin);
/*
 * Sign a message through the module with private key `key`
 * (CKM_ECDSA_SHA256 or CKM_SHA256_RSA_PKCS as `pub` is EC or RSA); OpenSSL
 * verifies the signature with `pub` (tl_signature_ok).
 */
void tt_sign_and_verify(CK_FUNCTION_LIST *f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                        EVP_PKEY *pub);

/* The card method (SKS_M_POST_*) of a post-provisioning mechanism (CKM_VENDOR_SKS_POST_*). */
uint8_t tt_post_method(CK_MECHANISM_TYPE mech);

/* Check a CK_RV, printing both values in hex on failure. */
#define TT_RV(expr, want)                                                                          \
    do {                                                                                           \
        CK_RV rv_ = (expr);                                                                        \
        ck_assert_msg(rv_ == (CK_RV)(want), "%s = 0x%lx, expected 0x%lx", #expr,                   \
                      (unsigned long)rv_, (unsigned long)(want));                                  \
    } while (0)
#define TT_OK(expr) TT_RV(expr, CKR_OK)

#endif
