/*
 * bench_prov.h - an issuer (src/issuer) driving the SKS card engine
 * (src/card) directly, in process: full provisioning sessions as a real
 * issuer runs them, every attestation verified. Used to time sessions
 * (bench_prov.c) and to put many keys on a card (bench_populate.c).
 */
#ifndef BENCH_PROV_H
#define BENCH_PROV_H

#include <stdint.h>

typedef struct bench_issuer bench_issuer;

/*
 * The card in `card_dir` (created when it holds none), trusted through its
 * own development manufacturer CA, an issuer key (EC P-256, kept for every
 * session) and an issuer CA. NULL on failure (message on standard error).
 */
bench_issuer *bench_issuer_open(const char *card_dir);
void bench_issuer_close(bench_issuer *b);

/*
 * One provisioning session: createProvisioningSession, the PIN policy
 * `policy_id`, then for each of the `n` keys first..first+n-1 createKeyPair
 * (EC P-256, signing, ID and friendly name BENCH_KEY_ID_FMT /
 * BENCH_KEY_LABEL_FMT) and setCertificatePath with a certificate the issuer
 * CA signs, and closeProvisioningSession.
 *
 * With *policy 0 the session creates the policy (numeric PIN `pin`, shared
 * by its keys, CachingSupport) and sets *policy to its handle. Otherwise
 * the policy is that one, of an earlier session of this issuer (6.9): the
 * PIN is verified on the card first and the keys are created under it with
 * an empty PINValue, as for a user who has logged in.
 * 0, or -1 with a message on standard error.
 */
int bench_issuer_session(bench_issuer *b, const char *policy_id, const char *pin, uint32_t *policy,
                         unsigned first, unsigned n);

#endif
