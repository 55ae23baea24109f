/*
 * local_issuer.h - the local issuer emulation the SKS seed calls for: keys
 * created or imported without a remote issuer still go through a complete
 * provisioning session, with the module itself playing the issuer.
 *
 * The local issuer has a long-lived RSA-2048 key and a self-signed "SKS
 * Local Issuer" CA certificate in its directory (0600), created on first
 * use. Sessions use RSA-OAEP session keys under that key, so that later
 * sessions may add keys under PIN policies the local issuer created earlier
 * (docs/protocol.md 6.9). Each key it creates gets a certificate path
 * [end-entity certificate issued by the local issuer CA, local issuer CA].
 *
 * What this protects: the card still checks every call's MAC and the middleware
 * gains nothing it did not already have. What it does not: the local issuer
 * knows SK, so it could read a private key it imports - which is the user's
 * own key in the first place. Generated keys never leave the card.
 */
#ifndef SKS_LOCAL_ISSUER_H
#define SKS_LOCAL_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "protocol/sks_msg.h"

typedef struct sks_local_issuer sks_local_issuer;

/*
 * How the local issuer reaches the card: run one SKS call (method ID, request
 * struct) and decode the answer into `resp`, whose views may point into
 * `answer`. Returns 0 with *status set (SKS_OK or the card's status and its
 * message in err), or -1 when the card could not be reached.
 */
typedef int (*sks_card_call_fn)(void *ctx, uint8_t method, const void *req, void *resp,
                                sks_writer *answer, uint8_t *status, char *err, size_t errlen);

typedef struct {
    sks_card_call_fn call;
    void *ctx;
} sks_card_link;

/*
 * Load or create the local issuer in `dir` (mode 0700). `manufacturer_ca` is
 * a PEM file of trusted manufacturer CAs that device certificates must chain
 * to; NULL accepts any device certificate path (the session attestation is
 * still verified with the presented device key). NULL with err on failure.
 */
sks_local_issuer *sks_local_issuer_open(const char *dir, const char *manufacturer_ca, char *err,
                                        size_t errlen);
/*
 * The same with the OpenSSL library context the local issuer makes and
 * parses its keys and certificates in (NULL: the default one). The PKCS#11
 * module passes its private context, so that an application's default
 * engine or providers never see the local issuer's work. The context must
 * outlive the issuer.
 */
sks_local_issuer *sks_local_issuer_open_ex(const char *dir, const char *manufacturer_ca,
                                           OSSL_LIB_CTX *libctx, char *err, size_t errlen);
void sks_local_issuer_close(sks_local_issuer *li);

/*
 * A new token: a PUK policy holding `so_pin` and a user-defined, modifiable
 * PIN policy with ID `label` (PIN not yet set: unlockPIN sets it). Returns an
 * SKS status; *pin_policy receives the new policy's handle.
 */
int sks_local_issuer_create_token(sks_local_issuer *li, const sks_card_link *card,
                                  const char *label, sks_view so_pin, uint32_t *pin_policy,
                                  char *err, size_t errlen);

typedef struct {
    uint32_t pin_policy; /* 0: no PIN; else a policy the local issuer created,
                            verified in this card session */
    uint8_t algorithm;   /* enum sks_key_alg */
    sks_view id;         /* 1..32 bytes */
    sks_view label;      /* friendly name, 0..255 bytes */
    uint8_t usage;       /* SKS_USAGE_* */
    int backup;          /* PrivateKeyBackup (DKEK backup is a later feature) */
    int migratable;      /* the user may export the private key (CKA_EXTRACTABLE) */
} sks_local_key_spec;

/* Generate a key pair on the card under a local session. */
int sks_local_issuer_generate(sks_local_issuer *li, const sks_card_link *card,
                              const sks_local_key_spec *spec, uint32_t *key_handle, char *err,
                              size_t errlen);

/* Import a private key (RSA or EC of a supported size) under a local session. */
int sks_local_issuer_import(sks_local_issuer *li, const sks_card_link *card,
                            const sks_local_key_spec *spec, EVP_PKEY *private_key,
                            uint32_t *key_handle, char *err, size_t errlen);

#endif
