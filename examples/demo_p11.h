/*
 * demo_p11.h - what the example programs need from a PKCS#11 module: load
 * it with dlopen, open a session on a token chosen by label, find objects,
 * read attributes, and name return values. Both examples use only the
 * public interface: <p11-kit/pkcs11.h> and <pkcs11/sks-pkcs11.h>.
 */
#ifndef SKS_DEMO_P11_H
#define SKS_DEMO_P11_H

#include <stddef.h>

#include <p11-kit/pkcs11.h>

#include "pkcs11/sks-pkcs11.h"

typedef struct {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
} demo_p11;

/* Load and initialise the module. 0 or -1 (message on stderr). */
int demo_p11_load(demo_p11 *p, const char *module_path);
/*
 * Open a read/write session on the token with this label (NULL: the first
 * slot with a token) and log in with `pin` when it is not NULL.
 */
int demo_p11_open(demo_p11 *p, const char *token_label, const char *pin);
void demo_p11_close(demo_p11 *p); /* logout, close, C_Finalize, dlclose */

/* The first object matching the template, or CK_INVALID_HANDLE. */
CK_OBJECT_HANDLE demo_p11_find(demo_p11 *p, CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* An attribute's value, malloc'ed (NULL on failure); its length in *len. */
unsigned char *demo_p11_attr(demo_p11 *p, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, size_t *len);

/* The name of a return value ("CKR_PIN_INCORRECT", "CKR_VENDOR_SKS(3)", ...). */
const char *demo_rv_name(CK_RV rv);
/* Print "what: name" to stderr when rv is not CKR_OK; returns rv == CKR_OK ? 0 : -1. */
int demo_check(CK_RV rv, const char *what);

#endif
