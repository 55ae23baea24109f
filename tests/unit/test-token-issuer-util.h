/*
 * test-token-issuer-util.h - what the tests of no-card mode share: the
 * module started with `transport = none` in a private state directory, its
 * issuer token initialised (SO PIN, user PIN) and a R/W session logged in
 * as the user, and small helpers to read attributes and to turn what the
 * token returns into OpenSSL keys the tests check with (OpenSSL's default
 * library context: independent of the module's own).
 */
#ifndef TEST_TOKEN_ISSUER_UTIL_H
#define TEST_TOKEN_ISSUER_UTIL_H

#include <stddef.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "pkcs11/sks-pkcs11.h"
#include "test-token-util.h"

#define TI_SO_PIN   "so-secret-1"
#define TI_USER_PIN "user-pin-22"
#define TI_U(s)     ((CK_UTF8CHAR_PTR)(s))

typedef struct {
    tt_env env;
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s; /* R/W, the user logged in (ti_start) */
} ti_ctx;

extern const CK_BBOOL ti_yes, ti_no;

/* The module in no-card mode; its only slot (asserted). No C_InitToken yet. */
void ti_open(ti_ctx *c);
/* C_InitToken (label "SKS issuer"), C_InitPIN by the SO, a R/W session with the user logged in. */
void ti_start(ti_ctx *c);
/* C_Initialize again after C_Finalize (same state directory); the user logged in again. */
void ti_restart(ti_ctx *c);
void ti_finish(ti_ctx *c);

/* An attribute's value (malloc'd, *len its length); asserts CKR_OK. */
unsigned char *ti_attr(ti_ctx *c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, size_t *len);
CK_BBOOL ti_bool(ti_ctx *c, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type);
/* The one object a template finds (asserted). */
CK_OBJECT_HANDLE ti_find_one(ti_ctx *c, CK_ATTRIBUTE *t, CK_ULONG n);
/* The OpenSSL key of an object's CKA_PUBLIC_KEY_INFO. */
EVP_PKEY *ti_public_key(ti_ctx *c, CK_OBJECT_HANDLE h);

/* Key pairs on the issuer token: extractable private key when asked; token objects when asked. */
void ti_rsa_pair(ti_ctx *c, CK_ULONG bits, CK_BBOOL token, CK_BBOOL extractable, const char *id,
                 CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv);
void ti_ec_pair(ti_ctx *c, int p384, CK_BBOOL token, CK_BBOOL extractable, const char *id,
                CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv);
/* A session public key object of an OpenSSL key (components), CKA_WRAP as given. */
CK_OBJECT_HANDLE ti_public_key_object(ti_ctx *c, EVP_PKEY *pk, CK_BBOOL wrap);
/* A session AES key of a known value (CKA_EXTRACTABLE and CKA_SENSITIVE as given). */
CK_OBJECT_HANDLE ti_aes_key(ti_ctx *c, const unsigned char *value, size_t len, CK_BBOOL extractable,
                            CK_BBOOL sensitive);
/* Fresh OpenSSL keys (default library context). */
EVP_PKEY *ti_openssl_rsa(int bits);
EVP_PKEY *ti_openssl_p256(void);

/* The DER OID of P-256 and P-384 (CKA_EC_PARAMS). */
extern const unsigned char ti_p256_oid[10], ti_p384_oid[7];

#endif
