/*
 * sks_issuer.h - the issuer's half of the SKS provisioning protocol
 * (docs/protocol.md sections 5 and 6): open a session with a card, recover
 * and keep the session key SK, MAC and encrypt every call, and verify every
 * attestation the card returns. Used by the tests, the sample session and
 * the PKCS#11 no-card token.
 *
 * The issuer never talks to the card itself: it fills request structs
 * (sks_msg.h) that the caller encodes and sends, and checks the decoded
 * answers. It keeps its own record of every object it asked for (by ID), so
 * MAC-only fields and attestations are computed from what the issuer knows,
 * never from what the middleware relays.
 *
 * The sequence counter: each prepare_* call takes the counter values the
 * card will use for that call, in call order (one for the MAC; createKeyPair
 * and closeProvisioningSession take a second one for their attestation), so
 * calls may be prepared ahead as a batch and verified later. Calls must be
 * sent in the order they were prepared.
 *
 * All functions return 0 on success and -1 on failure with a message in
 * sks_issuer_error(). Secrets (SK, Z, PIN and PUK values) are zeroized by
 * sks_issuer_session_free().
 */
#ifndef SKS_ISSUER_H
#define SKS_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "../protocol/sks_crypto.h"
#include "../protocol/sks_msg.h"

typedef struct sks_issuer_session sks_issuer_session;

/* Largest encrypted value: IV, the largest plaintext, one block of padding. */
#define SKS_ISSUER_VALUE_MAX (2 * SKS_ENC_IV_LEN + SKS_ENC_MAX)

/*
 * One prepared call: its MAC, the counter values it uses, and the encrypted
 * value its request points into. It owns no heap memory (nothing in it is
 * secret: a ciphertext and a MAC), so it may live on the stack; the request
 * built from it is valid while the message (and the caller's own arguments,
 * such as certificate DER) lives. sks_issuer_msg_init() prepares one,
 * sks_issuer_msg_free() just wipes it.
 */
typedef struct {
    uint8_t mac[32];
    uint16_t counter;             /* of the MAC */
    uint16_t attestation_counter; /* of the card's attestation (key pair, close) */
    int key;                      /* createKeyPair: index of the issuer's key record */
    size_t value_len;             /* encrypted value (PIN, PUK, private key) */
    uint8_t value[SKS_ISSUER_VALUE_MAX];
} sks_issuer_msg;

void sks_issuer_msg_init(sks_issuer_msg *m);
void sks_issuer_msg_free(sks_issuer_msg *m);

/* ---- Session ---------------------------------------------------------- */

/*
 * A new issuer session. `issuer_key` is the key the card encrypts to (an EC
 * P-256 key for SKS_SKALG_ECDH_P256, an RSA key for SKS_SKALG_RSA_OAEP_SHA256;
 * a reference is taken) or NULL for a fresh one (EC P-256, or RSA-2048).
 * NULL on failure.
 */
sks_issuer_session *sks_issuer_session_new(uint8_t session_key_alg, const char *issuer_uri,
                                           EVP_PKEY *issuer_key);
void sks_issuer_session_free(sks_issuer_session *s);
const char *sks_issuer_error(const sks_issuer_session *s);

/* Fill createProvisioningSession (random ServerSessionID; views point into s). */
int sks_issuer_request(sks_issuer_session *s, uint8_t updatable, uint16_t client_operation_limit,
                       uint32_t session_life_time, sks_req_create_session *req);

/*
 * Accept the card's answer: verify the device certificate path up to a CA
 * in `trusted` (the path's other certificates are untrusted intermediates),
 * recover Z, derive SK and verify the session attestation signature with
 * the device certificate's key. Only after this succeeds may calls be
 * prepared.
 */
int sks_issuer_accept(sks_issuer_session *s, X509_STORE *trusted,
                      const sks_resp_create_session *resp);

/* The ProvisioningHandle of the accepted session. */
uint32_t sks_issuer_provisioning_handle(const sks_issuer_session *s);
/* The session key (for tests that check what the card holds). */
const uint8_t *sks_issuer_session_key(const sks_issuer_session *s);

/* ---- Calls ------------------------------------------------------------ */

/* createPUKPolicy: `puk` is the clear PUK value (sent encrypted). */
int sks_issuer_prepare_puk_policy(sks_issuer_session *s, const char *id, sks_view puk,
                                  uint8_t format, uint8_t retry_limit, sks_issuer_msg *m,
                                  sks_req_create_puk_policy *req);

/* createPINPolicy parameters (6.5). */
typedef struct {
    const char *id;
    const char *puk_id; /* a PUK policy prepared or declared in this session, or NULL */
    uint8_t user_defined;
    uint8_t user_modifiable;
    uint8_t format;
    uint8_t retry_limit;
    uint8_t grouping;
    uint8_t pattern_restrictions;
    uint8_t min_length;
    uint8_t max_length;
    uint8_t caching_support;
    uint8_t input_method;
} sks_issuer_pin_policy;

/* `puk_handle` is the card's handle of p->puk_id (wire only; 0 without PUK). */
int sks_issuer_prepare_pin_policy(sks_issuer_session *s, const sks_issuer_pin_policy *p,
                                  uint32_t puk_handle, sks_issuer_msg *m,
                                  sks_req_create_pin_policy *req);

/*
 * Policies of an earlier, closed session of the same issuer (IssuerURI and
 * issuer key byte-identical; docs/protocol.md 6.9). A declared policy may
 * be named by puk_id / pin_policy_id below like one prepared in this
 * session; the card's handle is still passed to the prepare call. The
 * issuer need not know the PUK or PIN value: the key attestation carries
 * them as empty. `p->puk_id` of a declared PIN policy names a declared PUK
 * policy (or is NULL). The parameters must be those the policy was created
 * with, or the key attestation does not verify. Declaring an ID this
 * issuer session already knows (of the same kind) fails.
 */
int sks_issuer_declare_puk_policy(sks_issuer_session *s, const char *id, uint8_t format,
                                  uint8_t retry_limit);
int sks_issuer_declare_pin_policy(sks_issuer_session *s, const sks_issuer_pin_policy *p);

/* createKeyPair parameters (6.6). */
typedef struct {
    const char *id;
    const char *pin_policy_id; /* a PIN policy prepared or declared in this session, or NULL */
    /*
     * The clear PIN: sent encrypted, or plain when the policy is UserDefined.
     * Empty: PINValue is sent empty (the card then takes the policy's PIN
     * when it is verified in the current card session, 6.9). A UserDefined
     * PIN is not MACed, so the issuer need not know it: the middleware may
     * put the user's PIN into the prepared request's pin_value itself.
     */
    sks_view pin;
    uint8_t private_key_backup;
    uint8_t migratable;
    uint8_t updatable;
    uint8_t delete_protected;
    uint8_t import_private_key;
    uint8_t key_usage;
    const char *friendly_name; /* NULL: empty */
    uint8_t algorithm;         /* enum sks_key_alg */
} sks_issuer_key_spec;

/* `pin_handle` is the card's handle of k->pin_policy_id (0 without PIN). */
int sks_issuer_prepare_key_pair(sks_issuer_session *s, const sks_issuer_key_spec *k,
                                uint32_t pin_handle, sks_issuer_msg *m,
                                sks_req_create_key_pair *req);

/*
 * Recompute the key attestation from the issuer's own record of the key and
 * its policies and the card's answer, and compare. On success the key's
 * public key (as the card holds it) is recorded for setCertificatePath.
 */
int sks_issuer_verify_key_attestation(sks_issuer_session *s, const sks_issuer_msg *m,
                                      const sks_resp_create_key_pair *resp);

/* setCertificatePath: certs[0] is the end entity; the DER stays the caller's. */
int sks_issuer_prepare_certificate_path(sks_issuer_session *s, const char *key_id,
                                        uint32_t key_handle, const sks_view *certs, size_t ncerts,
                                        sks_issuer_msg *m, sks_req_set_certificate_path *req);

/*
 * restorePrivateKey or importPrivateKey (method_id SKS_M_RESTORE_PRIVATE_KEY
 * or SKS_M_IMPORT_PRIVATE_KEY) of a PKCS#8 private key, or of an EVP_PKEY.
 * The key's public key is recorded for a later setCertificatePath.
 */
int sks_issuer_prepare_put_private_key(sks_issuer_session *s, uint8_t method_id, const char *key_id,
                                       uint32_t key_handle, sks_view pkcs8, sks_issuer_msg *m,
                                       sks_req_put_private_key *req);
int sks_issuer_prepare_put_pkey(sks_issuer_session *s, uint8_t method_id, const char *key_id,
                                uint32_t key_handle, EVP_PKEY *key, sks_issuer_msg *m,
                                sks_req_put_private_key *req);

/*
 * closeProvisioningSession with GeneratedKeys = the keys the issuer asked
 * for, DeletedKeys and ReplacedKeys = its postDeleteKey and postUpdateKey
 * calls (6.10, below).
 */
int sks_issuer_prepare_close(sks_issuer_session *s, sks_issuer_msg *m, sks_req_close_session *req);
/* The same with explicit counts (GeneratedKeys, Deleted, Cloned, Replaced, Extension). */
int sks_issuer_prepare_close_counts(sks_issuer_session *s, const uint16_t counts[5],
                                    sks_issuer_msg *m, sks_req_close_session *req);
int sks_issuer_verify_close(sks_issuer_session *s, const sks_issuer_msg *m,
                            const sks_resp_close_session *resp);

/* A createKeyPair EncryptedPrivateKey (PrivateKeyBackup) back to a key. NULL on failure. */
EVP_PKEY *sks_issuer_decrypt_backup(sks_issuer_session *s, sks_view encrypted_private_key);

/* ---- Certificates ----------------------------------------------------- */

/*
 * The common part of every certificate an issuer makes: version 3, valid
 * from an hour ago for `days`, subject CN=common_name, made in `libctx`
 * (NULL: the default context). The caller sets the serial number, the
 * public key, the issuer name and the extensions, then signs. NULL on failure.
 */
X509 *sks_cert_skeleton(OSSL_LIB_CTX *libctx, long days, const char *common_name);
/* Parse exactly one DER certificate (nothing may follow it) in `libctx`. NULL on failure. */
X509 *sks_cert_parse(OSSL_LIB_CTX *libctx, const uint8_t *der, size_t len);
/* Add one extension in OpenSSL's configuration syntax ("critical,CA:FALSE"). 1 or 0. */
int sks_cert_add_ext(X509 *cert, X509 *issuer, int nid, const char *value);

/* A self-signed EC P-256 CA (for tests and examples). 0 or -1. */
int sks_issuer_ca_new(const char *common_name, EVP_PKEY **ca_key, X509 **ca_cert);

/*
 * An end-entity certificate for `spki` (SubjectPublicKeyInfo DER) issued by
 * the CA: subject CN=common_name, one year validity, the given serial.
 * NULL on failure.
 */
X509 *sks_issuer_issue_cert(EVP_PKEY *ca_key, X509 *ca_cert, sks_view spki, const char *common_name,
                            uint64_t serial);

/* An X509_STORE that trusts the CA certificates of a PEM file. NULL on failure. */
X509_STORE *sks_issuer_trust_pem(const char *pem_file);

/* DER of a certificate into w (appended). 0 or -1. */
int sks_issuer_cert_der(X509 *cert, sks_writer *w);

/* ---- Post-provisioning (docs/protocol.md 6.10) ------------------------- */

/*
 * A key this issuer made in an earlier, closed session (same IssuerURI and
 * issuer key, created with Updatable): its ID and its public key as the
 * card holds it (SubjectPublicKeyInfo DER: the generated key's PublicKey
 * of createKeyPair, or the SPKI of the imported key), as the issuer
 * recorded them. The MAC of a post-provisioning call binds both, so the
 * call only works for the key the issuer means. Declaring the same ID and
 * public key twice fails. A declared key is no key of this session: it is
 * not counted in GeneratedKeys and cannot get a certificate path.
 */
int sks_issuer_declare_key(sks_issuer_session *s, const char *key_id, sks_view public_key);

/*
 * postDeleteKey, postUnlockKey, postUpdateKey of the earlier key `key_id`
 * whose card handle is `key_handle` (wire only). `public_key` is its SPKI
 * (the key is then declared if it was not), or empty to take the one
 * declared with this ID (which must then be the only key declared with
 * it). A key is named by at most one of these calls per session, as the
 * card requires. postUpdateKey names the key of this session replacing
 * it (`new_key_id`, prepared with sks_issuer_prepare_key_pair; its card
 * handle `new_key_handle`); a key replaces at most one key. The card
 * applies the operations at closeProvisioningSession, and
 * sks_issuer_prepare_close() then counts them: DeletedKeys the
 * postDeleteKey calls, ReplacedKeys the postUpdateKey calls (the new keys
 * are among GeneratedKeys).
 */
int sks_issuer_prepare_post_delete(sks_issuer_session *s, const char *key_id, sks_view public_key,
                                   uint32_t key_handle, sks_issuer_msg *m, sks_req_post_key *req);
int sks_issuer_prepare_post_unlock(sks_issuer_session *s, const char *key_id, sks_view public_key,
                                   uint32_t key_handle, sks_issuer_msg *m, sks_req_post_key *req);
int sks_issuer_prepare_post_update(sks_issuer_session *s, const char *key_id, sks_view public_key,
                                   uint32_t key_handle, const char *new_key_id,
                                   uint32_t new_key_handle, sks_issuer_msg *m,
                                   sks_req_post_key *req);

#endif
