/*
 * sks_msg.h - every SKS method's arguments and results as C structs, with
 * one table-driven encoder/decoder for all of them.
 *
 * A method is described once (sks_msg_table.c): its fields in wire order,
 * each with a type, length bounds and flags. The same description drives
 * request/response encoding, strict decoding, and the "MAC data" of the
 * method, so card, middleware and issuer cannot disagree on a layout.
 *
 * Field flags:
 *   SKS_FF_WIRE  the field is sent in the call (or the answer)
 *   SKS_FF_MAC   the field is part of the method's MAC data
 * A handle is WIRE only (handles are local to the middleware); the object it
 * names is bound into the MAC by a MAC-only field (its ID, public key...)
 * that both the card and the issuer fill in from their own knowledge.
 */
#ifndef SKS_MSG_H
#define SKS_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "sks_proto.h"
#include "sks_wire.h"

typedef enum {
    SKS_F_BYTE,
    SKS_F_BOOL,
    SKS_F_SHORT,
    SKS_F_INT,
    SKS_F_BYTES, /* byte[]: 2-byte length */
    SKS_F_BLOB,  /* blob: 4-byte length */
    SKS_F_CERTS, /* byte count (1..SKS_CERT_PATH_MAX, or 0 where min is 0) then count byte[] */
} sks_ftype;

#define SKS_FF_WIRE 0x01
#define SKS_FF_MAC  0x02

typedef struct {
    const char *name; /* argument name as in docs/protocol.md */
    sks_ftype type;
    uint8_t flags;
    uint32_t min; /* BYTES/BLOB: length bounds; CERTS: count bounds */
    uint32_t max;
    size_t offset; /* in the request or response struct */
} sks_field;

typedef struct {
    uint8_t id;
    const char *name; /* the method name: also its MAC key label */
    const sks_field *req;
    size_t nreq;
    const sks_field *resp;
    size_t nresp;
    int in_session; /* first request field is a ProvisioningHandle */
} sks_msgdesc;

typedef struct {
    uint8_t count;
    sks_view cert[SKS_CERT_PATH_MAX];
} sks_certpath;

/* ---- Provisioning API ------------------------------------------------- */
typedef struct {
    uint8_t session_key_alg; /* enum sks_session_key_alg */
    sks_view server_session_id;
    sks_view issuer_uri;
    sks_view issuer_public_key; /* SubjectPublicKeyInfo DER */
    uint8_t updatable;
    uint16_t client_operation_limit;
    uint32_t session_life_time; /* seconds */
} sks_req_create_session;
typedef struct {
    sks_view client_session_id;
    sks_view encrypted_session_key; /* RSA: OAEP(Z); ECDH: card ephemeral SPKI */
    sks_view session_attestation;   /* signature by the device attestation key */
    uint32_t provisioning_handle;
    sks_certpath device_certificate_path;
} sks_resp_create_session;

typedef struct {
    uint32_t provisioning_handle;
    uint16_t generated_keys;
    uint16_t deleted_keys;
    uint16_t cloned_keys;
    uint16_t replaced_keys;
    uint16_t extension_objects;
    sks_view mac;
} sks_req_close_session;
typedef struct {
    sks_view attested_response;
} sks_resp_close_session;

typedef struct {
    uint32_t provisioning_handle;
} sks_req_abort_session;

typedef struct {
    uint32_t provisioning_handle;
    sks_view id;
    sks_view encrypted_value;
    uint8_t format;
    uint8_t retry_limit;
    sks_view mac;
} sks_req_create_puk_policy;
typedef struct {
    uint32_t puk_policy_handle;
} sks_resp_create_puk_policy;

typedef struct {
    uint32_t provisioning_handle;
    sks_view id;
    uint32_t puk_policy_handle;
    sks_view puk_id; /* MAC only: ID of the governing PUK policy, empty if none */
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
    sks_view mac;
} sks_req_create_pin_policy;
typedef struct {
    uint32_t pin_policy_handle;
} sks_resp_create_pin_policy;

typedef struct {
    uint32_t provisioning_handle;
    sks_view id;
    uint32_t pin_policy_handle;
    sks_view pin_policy_id; /* MAC only: ID of the PIN policy, empty if none */
    sks_view pin_value;     /* plain if the policy is user-defined, else encrypted; not MACed */
    sks_view pin_value_mac; /* MAC only: pin_value, or empty if the policy is user-defined */
    uint8_t private_key_backup;
    uint8_t migratable;
    uint8_t updatable;
    uint8_t delete_protected;
    uint8_t import_private_key;
    uint8_t key_usage;
    sks_view friendly_name;
    uint8_t algorithm; /* enum sks_key_alg */
    sks_view mac;
} sks_req_create_key_pair;
typedef struct {
    sks_view public_key;            /* SPKI DER; empty when import_private_key */
    sks_view attested_public_key;   /* HMAC attestation, 32 bytes */
    sks_view encrypted_private_key; /* IV | AES-256-CBC(PKCS#8); empty unless backup */
    uint32_t key_handle;
} sks_resp_create_key_pair;

typedef struct {
    uint32_t provisioning_handle;
    uint32_t key_handle;
    sks_view key_id;         /* MAC only */
    sks_view key_public_key; /* MAC only: the key's SPKI as the card holds it (may be empty) */
    sks_certpath certificate_path;
    sks_view mac;
} sks_req_set_certificate_path;

/* restorePrivateKey and importPrivateKey share this layout. */
typedef struct {
    uint32_t provisioning_handle;
    uint32_t key_handle;
    sks_view key_id; /* MAC only */
    sks_view encrypted_private_key;
    sks_view mac;
} sks_req_put_private_key;

/* ---- Key User API ----------------------------------------------------- */
typedef struct {
    uint16_t api_level;
    sks_view serial;
    sks_certpath device_certificate_path;
    sks_view key_algorithms; /* one byte per supported enum sks_key_alg */
    uint32_t max_keys;
    uint32_t used_keys;
    uint32_t change_counter; /* increases with every committed change of the card */
} sks_resp_get_device_info;

typedef struct {
    uint32_t after_handle; /* 0 to start */
} sks_req_enumerate_keys;
typedef struct {
    sks_view handles; /* 4 bytes each, ascending */
    uint8_t more;
} sks_resp_enumerate_keys;

typedef struct {
    uint32_t key_handle;
} sks_req_key_handle; /* getKeyAttributes, exportKey */

typedef struct {
    sks_view id;
    sks_view friendly_name;
    uint8_t algorithm;
    uint8_t key_usage;
    uint8_t flags; /* SKS_KEYFLAG_* */
    uint32_t pin_policy_handle;
    sks_view public_key;
    sks_certpath certificate_path;
    uint32_t provisioning_handle;
} sks_resp_get_key_attributes;

/* countKeys: the complete keys under a PIN policy (0: the keys without PIN). */
typedef struct {
    uint32_t pin_policy_handle;
} sks_req_count_keys;
typedef struct {
    uint32_t count;
} sks_resp_count_keys;

/* enumerateKeyAttributes takes sks_req_enumerate_keys (AfterHandle). */
typedef struct {
    sks_view records; /* a sequence of sks_key_attributes_info records, ascending handles */
    uint8_t more;
} sks_resp_enumerate_key_attributes;

/* One enumerateKeyAttributes record (descriptor sks_rec_key_attributes_info). */
typedef struct {
    uint32_t key_handle;
    sks_resp_get_key_attributes attributes; /* what getKeyAttributes answers for the key */
} sks_key_attributes_info;

typedef struct {
    uint32_t key_handle;
    uint8_t algorithm; /* enum sks_sign_alg */
    uint8_t hash;      /* enum sks_hash_alg */
    uint16_t salt_length;
    sks_view data;
} sks_req_sign;
typedef struct {
    sks_view signature;
} sks_resp_sign;

typedef struct {
    uint32_t key_handle;
    uint8_t algorithm; /* enum sks_decrypt_alg */
    uint8_t hash;      /* OAEP hash */
    uint8_t mgf_hash;  /* OAEP MGF1 hash */
    sks_view label;
    sks_view data;
} sks_req_decrypt;
typedef struct {
    sks_view plaintext;
} sks_resp_decrypt;

typedef struct {
    uint32_t key_handle;
    sks_view peer_public_key; /* uncompressed point or SPKI DER */
} sks_req_key_agreement;
typedef struct {
    sks_view shared_secret;
} sks_resp_key_agreement;

typedef struct {
    uint32_t key_handle;
    sks_view authorization; /* PUK for delete-protected keys, else empty */
} sks_req_delete_key;

typedef struct {
    sks_view private_key; /* PKCS#8 DER */
} sks_resp_export_key;

typedef struct {
    uint32_t pin_policy_handle;
    sks_view pin;
} sks_req_verify_pin;

typedef struct {
    uint32_t pin_policy_handle;
    sks_view old_pin;
    sks_view new_pin;
} sks_req_change_pin;

typedef struct {
    uint32_t pin_policy_handle;
    sks_view puk;
    sks_view new_pin;
} sks_req_unlock_pin;

typedef struct {
    uint32_t pin_policy_handle; /* 0: forget every verified PIN */
} sks_req_logout;

typedef struct {
    sks_view policies; /* a sequence of sks_pin_policy_info records */
} sks_resp_enumerate_pin_policies;

/* One record of enumeratePINPolicies (descriptor sks_rec_pin_policy_info). */
typedef struct {
    uint32_t handle;
    sks_view id;
    uint32_t provisioning_handle;
    uint8_t format;
    uint8_t min_length;
    uint8_t max_length;
    uint8_t retry_limit;
    uint8_t tries_left;
    uint8_t user_modifiable;
    uint8_t pin_set;  /* a key has fixed the policy's PIN value */
    uint8_t verified; /* verified in the current card session */
    uint32_t puk_policy_handle;
    uint8_t puk_retry_limit;
    uint8_t puk_tries_left;
    uint8_t caching_support; /* the policy lets middleware cache its PIN (6.5) */
} sks_pin_policy_info;

typedef struct {
    uint32_t pin_policy_handle;
    sks_view puk; /* may be empty after verifyPUK in this card session (unlockPIN) */
} sks_req_verify_puk;

typedef struct {
    uint32_t pin_policy_handle; /* token the object belongs to; 0: no PIN */
    uint8_t object_class;       /* enum sks_object_class */
    uint8_t private_;           /* readable only after verifyPIN */
    sks_view attributes;        /* opaque to the card (blob) */
} sks_req_create_object;
typedef struct {
    uint32_t object_handle;
} sks_resp_create_object;

typedef struct {
    uint32_t object_handle;
} sks_req_object_handle; /* deleteObject, readObject */

typedef struct {
    uint32_t pin_policy_handle;
    uint8_t object_class;
    uint8_t private_;
    sks_view attributes;
} sks_resp_read_object;

typedef struct {
    uint32_t object_handle;
    sks_view attributes;
} sks_req_update_object;

typedef struct {
    uint32_t key_handle;
    sks_view id;
    sks_view friendly_name;
} sks_req_set_key_attributes;

typedef struct {
    uint32_t pin_policy_handle;
    sks_view puk;
    sks_view new_id; /* the policy's new ID (1..32 bytes) */
} sks_req_reset_pin_policy;

/*
 * Post-provisioning (6.10): postDeleteKey, postUnlockKey, postUpdateKey. The
 * target key is named by its handle on the wire and bound into the MAC by
 * its ID and public key (what the issuer recorded when it made the key);
 * postUpdateKey also names the new key made in this session.
 */
typedef struct {
    uint32_t provisioning_handle;
    uint32_t key_handle;
    sks_view key_id;         /* MAC only */
    sks_view key_public_key; /* MAC only */
    uint32_t new_key_handle; /* postUpdateKey only (0 otherwise, not on the wire) */
    sks_view new_key_id;     /* postUpdateKey only, MAC only */
    sks_view mac;
} sks_req_post_key;

/* ---- Secure key injection (section 10) ----------------------------------- */
typedef struct {
    uint32_t key_handle; /* K1: a complete card key with decrypt or key agreement usage */
    uint8_t algorithm;   /* enum sks_session_key_import_alg */
    sks_view encrypted_key;
} sks_req_import_session_key;
typedef struct {
    uint32_t session_key_handle;
} sks_resp_import_session_key;

typedef struct {
    uint32_t session_key_handle;
    sks_view iv;                    /* SKS_INJECT_IV_LEN */
    sks_view encrypted_private_key; /* AES-256-GCM ciphertext | tag */
    sks_view id;
    sks_view friendly_name;
    uint8_t key_usage;
    sks_certpath certificate_path; /* 0..SKS_CERT_PATH_MAX, end entity first */
} sks_req_inject_private_key;
typedef struct {
    uint32_t key_handle;
} sks_resp_inject_private_key;

typedef struct {
    uint32_t session_key_handle;
} sks_req_delete_session_key;

/* ---- DKEK (section 11) ----------------------------------------------------- */
typedef struct {
    uint8_t share_count; /* 0: a card-internal random DKEK */
} sks_req_initialize_dkek;

typedef struct {
    sks_view share; /* SKS_DKEK_SHARE_LEN */
} sks_req_import_dkek_share;
typedef struct {
    uint8_t state; /* enum sks_dkek_state */
    uint8_t shares_total;
    uint8_t shares_outstanding;
    sks_view kcv;       /* SKS_DKEK_KCV_LEN; zeros unless the state is SKS_DKEK_READY */
} sks_resp_dkek_status; /* importDKEKShare and getDKEKStatus */

typedef struct {
    uint32_t key_handle;
} sks_req_wrap_key;
typedef struct {
    sks_view blob;
} sks_resp_wrap_key;

typedef struct {
    uint32_t pin_policy_handle; /* the restored key's PIN policy; SKS_HANDLE_NONE: no PIN */
    sks_view blob;
} sks_req_unwrap_key;
typedef struct {
    uint32_t key_handle;
} sks_resp_unwrap_key;

/*
 * Storage large enough for any request or response struct above, for code
 * that decodes a method it does not know in advance. A new message struct
 * joins its union here.
 */
typedef union {
    sks_req_create_session create_session;
    sks_req_close_session close_session;
    sks_req_abort_session abort_session;
    sks_req_create_puk_policy puk;
    sks_req_create_pin_policy pin;
    sks_req_create_key_pair key_pair;
    sks_req_set_certificate_path cert_path;
    sks_req_put_private_key put_key;
    sks_req_enumerate_keys enumerate;
    sks_req_count_keys count_keys;
    sks_req_key_handle key_handle;
    sks_req_sign sign;
    sks_req_decrypt decrypt;
    sks_req_key_agreement agree;
    sks_req_delete_key del;
    sks_req_verify_pin verify;
    sks_req_change_pin change;
    sks_req_unlock_pin unlock;
    sks_req_logout logout;
    sks_req_verify_puk verify_puk;
    sks_req_create_object create_object;
    sks_req_object_handle object_handle;
    sks_req_update_object update_object;
    sks_req_set_key_attributes set_key_attributes;
    sks_req_reset_pin_policy reset_pin_policy;
    sks_req_post_key post;
    sks_req_import_session_key import_session_key;
    sks_req_inject_private_key inject;
    sks_req_delete_session_key delete_session_key;
    sks_req_initialize_dkek initialize_dkek;
    sks_req_import_dkek_share dkek_share;
    sks_req_wrap_key wrap;
    sks_req_unwrap_key unwrap;
} sks_any_request;

typedef union {
    sks_resp_create_session create_session;
    sks_resp_close_session close_session;
    sks_resp_create_puk_policy puk;
    sks_resp_create_pin_policy pin;
    sks_resp_create_key_pair key_pair;
    sks_resp_get_device_info info;
    sks_resp_enumerate_keys enumerate;
    sks_resp_get_key_attributes attributes;
    sks_resp_enumerate_key_attributes key_attributes;
    sks_resp_count_keys count_keys;
    sks_resp_sign sign;
    sks_resp_decrypt decrypt;
    sks_resp_key_agreement agree;
    sks_resp_export_key exported;
    sks_resp_enumerate_pin_policies pin_policies;
    sks_resp_create_object create_object;
    sks_resp_read_object read_object;
    sks_resp_import_session_key import_session_key;
    sks_resp_inject_private_key inject;
    sks_resp_dkek_status dkek_status;
    sks_resp_wrap_key wrap;
    sks_resp_unwrap_key unwrap;
} sks_any_response;

/* ---- Descriptor access and codec -------------------------------------- */
/* NULL for an unknown method ID. */
const sks_msgdesc *sks_msg_find(uint8_t method_id);
/* The method name for IDs, or "unknown". */
const char *sks_method_name(uint8_t method_id);
/* A short name for a status ("MAC", "NO_SESSION", ...). */
const char *sks_status_name(uint8_t status);

/* Record descriptor for sks_pin_policy_info (nreq/req used, no id). */
extern const sks_msgdesc sks_rec_pin_policy_info;
/* Record descriptor for sks_key_attributes_info (nreq/req used, no id). */
extern const sks_msgdesc sks_rec_key_attributes_info;

/* Method ID byte + WIRE fields. 0 on success, -1 on encoding failure. */
int sks_msg_encode_request(const sks_msgdesc *d, const void *req, sks_writer *w);
/*
 * Decode the bytes after the method ID into `req` (views point into `p`).
 * Returns SKS_OK, or SKS_ERR_FORMAT / SKS_ERR_OPTION with *why naming the
 * field that failed (a static string).
 */
int sks_msg_decode_request(const sks_msgdesc *d, const uint8_t *p, size_t n, void *req,
                           const char **why);
/* Status 0 + WIRE result fields. */
int sks_msg_encode_response(const sks_msgdesc *d, const void *resp, sks_writer *w);
/* Status (non-zero) + error string as byte[]. */
void sks_msg_encode_error(sks_writer *w, uint8_t status, const char *message);
/*
 * Decode an answer. On a non-zero status, *status is set, *error_string
 * points at the card's message and 0 is returned; `resp` is untouched.
 * Returns -1 when the answer itself is malformed.
 */
int sks_msg_decode_response(const sks_msgdesc *d, const uint8_t *p, size_t n, void *resp,
                            uint8_t *status, sks_view *error_string);
/* The method's MAC data: MAC-flagged fields of `req` in order, wire-encoded. */
int sks_msg_macdata(const sks_msgdesc *d, const void *req, sks_writer *w);

/* Generic field list codec, used for records inside blobs. */
int sks_fields_write(const sks_field *f, size_t n, uint8_t mask, const void *obj, sks_writer *w);
int sks_fields_read(const sks_field *f, size_t n, uint8_t mask, sks_reader *r, void *obj,
                    const char **why);

#endif
