/*
 * issuer-prov-relay.h - the card side of a provisioning session as the
 * test plays it: the card side's parameter structs of
 * include/pkcs11/sks-pkcs11.h, as the issuer side filled them, go to a card
 * engine (testlib's tl_call) as wire requests, and the card's answers go
 * back into the structs' out fields, as the card side of the module returns
 * them. Used by test-token-issuer-prov.c to relay between the two sides.
 *
 * Each relay_* returns the card's status (testlib's TL_OK checks it).
 */
#ifndef ISSUER_PROV_RELAY_H
#define ISSUER_PROV_RELAY_H

#include <stdint.h>

#include "pkcs11/sks-pkcs11.h"
#include "testlib.h"

typedef struct {
    tl_card *c;
    uint32_t session;  /* ProvisioningHandle */
    uint32_t puk, pin; /* policy handles */
    uint32_t key[4];   /* key handles, by the test's own numbering */
    sks_writer ans;    /* the answer the last response views point into */
} relay;

/* createProvisioningSession from the struct's in fields; the answer into its out fields. */
int relay_session(relay *r, CK_SKS_SESSION_PARAMS *cs);
int relay_puk(relay *r, const CK_SKS_PUK_POLICY_PARAMS *p);
int relay_pin(relay *r, const CK_SKS_PIN_POLICY_PARAMS *p, uint32_t puk_handle);
/* createKeyPair; the key's handle goes to r->key[slot]. */
int relay_key_pair(relay *r, CK_SKS_KEY_PAIR_PARAMS *p, uint32_t pin_handle, size_t slot);
int relay_cert(relay *r, const CK_SKS_CERTIFICATE_PATH_PARAMS *p, uint32_t key_handle);
/* importPrivateKey or restorePrivateKey (`method`). */
int relay_put_key(relay *r, uint8_t method, const CK_SKS_PRIVATE_KEY_PARAMS *p,
                  uint32_t key_handle);
int relay_close(relay *r, CK_SKS_CLOSE_PARAMS *p);
/* postDeleteKey, postUnlockKey or postUpdateKey (`method`); new_key_handle 0 but for the last. */
int relay_post(relay *r, uint8_t method, const CK_SKS_POST_PARAMS *p, uint32_t key_handle,
               uint32_t new_key_handle);

#endif
