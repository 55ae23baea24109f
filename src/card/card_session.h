/*
 * card_session.h - what the provisioning handlers share about a provisioning
 * session (docs/protocol.md sections 5 and 6): loading an open session,
 * checking a call's MAC, producing attestations and decrypting issuer values,
 * all under the session's sequence counter and operation budget; plus the
 * PIN-against-policy check that provisioning and the PIN methods both need.
 *
 * Every helper updates the in-memory session record (counter, budget); the
 * handler writes it back with card_session_save() before it returns OK.
 * Failures are reported through card_fail(), so a handler returns them as is.
 */
#ifndef CARD_SESSION_H
#define CARD_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "card_internal.h"

/*
 * Load the open, unexpired session `handle`. On success call->abort_session
 * names it, so that any later failure of the call aborts it. An expired
 * session answers NO_SESSION ("session expired") and is named for removal
 * too; an unknown or closed one answers NO_SESSION.
 */
int card_session_load(card_call *call, uint32_t handle, card_session_rec *s);

/* Write the session record back (counter and budget changes). */
int card_session_save(card_call *call, const card_session_rec *s);

/*
 * Check the MAC of a call of method `method_id`: MacData from `req` through
 * the method descriptor, the next counter value, one unit of budget.
 * SKS_OK, SKS_ERR_MAC or SKS_ERR_NOT_ALLOWED (budget exhausted).
 */
int card_session_verify_mac(card_call *call, card_session_rec *s, uint8_t method_id,
                            const void *req, sks_view mac);

/* An attestation ("SKS Attestation" MAC) over data: next counter, one unit of budget. */
int card_session_attest(card_call *call, card_session_rec *s, const uint8_t *data, size_t n,
                        uint8_t out[SKS_MAC_LEN]);

/* The session's encryption key EK (5.3). The caller zeroizes it. */
int card_session_encryption_key(const card_session_rec *s, uint8_t ek[32]);

/*
 * Decrypt an encrypted value of the session into `out` (an already
 * MAC-verified argument, so no budget is spent). SKS_OK or SKS_ERR_CRYPTO.
 */
int card_session_decrypt(card_call *call, const card_session_rec *s, sks_view enc, card_buf *out);

/*
 * May session `s` use what session `owner` created? Yes for `s` itself, or
 * for an earlier, closed session with byte-identical IssuerURI and
 * IssuerPublicKey (docs/protocol.md 6.9, 6.10): only that issuer can MAC
 * calls of `s`. 1 yes, 0 no, or -SKS_ERR_STORAGE when the store fails.
 */
int card_session_same_issuer(card_call *call, const card_session_rec *s, uint32_t owner);

/* What a session's post-provisioning operations amount to (card_post.c). */
typedef struct {
    uint32_t deleted;  /* postDeleteKey calls */
    uint32_t unlocked; /* postUnlockKey calls */
    uint32_t replaced; /* postUpdateKey calls */
} card_post_counts;

/*
 * At closeProvisioningSession: count the session's operations and check
 * that every key they name is still there (SESSION_VERIFY if one was
 * deleted meanwhile), then, once the close is sure to succeed, apply them
 * and remove their records, inside the close's transaction (6.10).
 */
int card_post_check(card_call *call, uint32_t session, card_post_counts *counts);
int card_post_apply(card_call *call, uint32_t session);

/* Parse a certificate path in wire form (count byte 1..10, then byte[]s). 0 or -1. */
int card_certpath_parse(const card_buf *b, sks_certpath *cp);

/*
 * Does `pin` satisfy the PIN policy: length within MinLength..MaxLength
 * (bytes), the characters of Format, and PatternRestrictions? SKS_OK, or
 * SKS_ERR_OPTION with *why set to a static explanation.
 */
int card_pin_check_policy(const card_pin_rec *policy, const uint8_t *pin, size_t n,
                          const char **why);

/* Does `value` consist only of characters allowed by `format` (enum sks_pin_format)? */
int card_pin_format_ok(uint8_t format, const uint8_t *value, size_t n);

#endif
