/*
 * sks_msg_table.c - the layout of every SKS method (docs/protocol.md
 * sections 6 and 7): its fields in wire order, with type, bounds and the
 * WIRE/MAC flags. sks_msg.c turns these tables into encoders, decoders and
 * MAC data; nothing else in the project describes a layout.
 */
#include "sks_msg.h"

#include <stddef.h>

#define W  SKS_FF_WIRE
#define M  SKS_FF_MAC
#define WM (SKS_FF_WIRE | SKS_FF_MAC)

#define ANY_BYTES SKS_WIRE_BYTES_MAX
#define ANY_BLOB  UINT32_MAX

/* One field of struct `st`: scalars carry no bounds. */
#define F_BYTE(st, m, name, fl)                                                                    \
    {                                                                                              \
        name, SKS_F_BYTE, fl, 0, 0, offsetof(st, m)                                                \
    }
#define F_BOOL(st, m, name, fl)                                                                    \
    {                                                                                              \
        name, SKS_F_BOOL, fl, 0, 0, offsetof(st, m)                                                \
    }
#define F_SHORT(st, m, name, fl)                                                                   \
    {                                                                                              \
        name, SKS_F_SHORT, fl, 0, 0, offsetof(st, m)                                               \
    }
#define F_INT(st, m, name, fl)                                                                     \
    {                                                                                              \
        name, SKS_F_INT, fl, 0, 0, offsetof(st, m)                                                 \
    }
#define F_BYTES(st, m, name, fl, lo, hi)                                                           \
    {                                                                                              \
        name, SKS_F_BYTES, fl, lo, hi, offsetof(st, m)                                             \
    }
#define F_BLOB(st, m, name, fl, lo, hi)                                                            \
    {                                                                                              \
        name, SKS_F_BLOB, fl, lo, hi, offsetof(st, m)                                              \
    }
#define F_CERTS(st, m, name, fl, lo)                                                               \
    {                                                                                              \
        name, SKS_F_CERTS, fl, lo, SKS_CERT_PATH_MAX, offsetof(st, m)                              \
    }
#define F_MAC(st) F_BYTES(st, mac, "MAC", W, SKS_MAC_LEN, SKS_MAC_LEN)

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define METHOD(mid, mname, rq, rs, sess)                                                           \
    {                                                                                              \
        mid, mname, rq, COUNT(rq), rs, COUNT(rs), sess                                             \
    }
#define METHOD_NO_RESP(mid, mname, rq, sess)                                                       \
    {                                                                                              \
        mid, mname, rq, COUNT(rq), NULL, 0, sess                                                   \
    }
#define METHOD_NO_REQ(mid, mname, rs)                                                              \
    {                                                                                              \
        mid, mname, NULL, 0, rs, COUNT(rs), 0                                                      \
    }

/* ---- 6.1 createProvisioningSession ------------------------------------ */
#define S sks_req_create_session
static const sks_field create_session_req[] = {
    F_BYTE(S, session_key_alg, "SessionKeyAlgorithm", W),
    F_BYTES(S, server_session_id, "ServerSessionID", W, SKS_SESSION_ID_LEN, SKS_SESSION_ID_LEN),
    F_BYTES(S, issuer_uri, "IssuerURI", W, 1, SKS_URI_MAX),
    F_BYTES(S, issuer_public_key, "IssuerPublicKey", W, 0, ANY_BYTES),
    F_BOOL(S, updatable, "Updatable", W),
    F_SHORT(S, client_operation_limit, "ClientOperationLimit", W),
    F_INT(S, session_life_time, "SessionLifeTime", W),
};
#undef S
#define S sks_resp_create_session
static const sks_field create_session_resp[] = {
    F_BYTES(S, client_session_id, "ClientSessionID", W, SKS_SESSION_ID_LEN, SKS_SESSION_ID_LEN),
    F_BYTES(S, encrypted_session_key, "EncryptedSessionKey", W, 0, ANY_BYTES),
    F_BYTES(S, session_attestation, "SessionAttestation", W, 0, ANY_BYTES),
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_CERTS(S, device_certificate_path, "DeviceCertificatePath", W, 1),
};
#undef S

/* ---- 6.2 closeProvisioningSession ------------------------------------- */
#define S sks_req_close_session
static const sks_field close_session_req[] = {
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_SHORT(S, generated_keys, "GeneratedKeys", WM),
    F_SHORT(S, deleted_keys, "DeletedKeys", WM),
    F_SHORT(S, cloned_keys, "ClonedKeys", WM),
    F_SHORT(S, replaced_keys, "ReplacedKeys", WM),
    F_SHORT(S, extension_objects, "ExtensionObjects", WM),
    F_MAC(S),
};
#undef S
static const sks_field close_session_resp[] = {
    F_BYTES(sks_resp_close_session, attested_response, "AttestedResponse", W, SKS_MAC_LEN,
            SKS_MAC_LEN),
};

/* ---- 6.3 abortProvisioningSession ------------------------------------- */
static const sks_field abort_session_req[] = {
    F_INT(sks_req_abort_session, provisioning_handle, "ProvisioningHandle", W),
};

/* ---- 6.4 createPUKPolicy ---------------------------------------------- */
#define S sks_req_create_puk_policy
static const sks_field create_puk_policy_req[] = {
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_BYTES(S, id, "ID", WM, 1, SKS_ID_MAX),
    F_BYTES(S, encrypted_value, "EncryptedValue", WM, 0, ANY_BYTES),
    F_BYTE(S, format, "Format", WM),
    F_BYTE(S, retry_limit, "RetryLimit", WM),
    F_MAC(S),
};
#undef S
static const sks_field create_puk_policy_resp[] = {
    F_INT(sks_resp_create_puk_policy, puk_policy_handle, "PUKPolicyHandle", W),
};

/* ---- 6.5 createPINPolicy ---------------------------------------------- */
#define S sks_req_create_pin_policy
static const sks_field create_pin_policy_req[] = {
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_BYTES(S, id, "ID", WM, 1, SKS_ID_MAX),
    F_INT(S, puk_policy_handle, "PUKPolicyHandle", W),
    F_BYTES(S, puk_id, "PUK ID", M, 0, SKS_ID_MAX),
    F_BOOL(S, user_defined, "UserDefined", WM),
    F_BOOL(S, user_modifiable, "UserModifiable", WM),
    F_BYTE(S, format, "Format", WM),
    F_BYTE(S, retry_limit, "RetryLimit", WM),
    F_BYTE(S, grouping, "Grouping", WM),
    F_BYTE(S, pattern_restrictions, "PatternRestrictions", WM),
    F_BYTE(S, min_length, "MinLength", WM),
    F_BYTE(S, max_length, "MaxLength", WM),
    F_BOOL(S, caching_support, "CachingSupport", WM),
    F_BYTE(S, input_method, "InputMethod", WM),
    F_MAC(S),
};
#undef S
static const sks_field create_pin_policy_resp[] = {
    F_INT(sks_resp_create_pin_policy, pin_policy_handle, "PINPolicyHandle", W),
};

/* ---- 6.6 createKeyPair ------------------------------------------------ */
#define S sks_req_create_key_pair
static const sks_field create_key_pair_req[] = {
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_BYTES(S, id, "ID", WM, 1, SKS_ID_MAX),
    F_INT(S, pin_policy_handle, "PINPolicyHandle", W),
    F_BYTES(S, pin_policy_id, "PIN policy ID", M, 0, SKS_ID_MAX),
    F_BYTES(S, pin_value, "PINValue", W, 0, ANY_BYTES),
    F_BYTES(S, pin_value_mac, "PINValue for the MAC", M, 0, ANY_BYTES),
    F_BOOL(S, private_key_backup, "PrivateKeyBackup", WM),
    F_BOOL(S, migratable, "Migratable", WM),
    F_BOOL(S, updatable, "Updatable", WM),
    F_BOOL(S, delete_protected, "DeleteProtected", WM),
    F_BOOL(S, import_private_key, "ImportPrivateKey", WM),
    F_BYTE(S, key_usage, "KeyUsage", WM),
    F_BYTES(S, friendly_name, "FriendlyName", WM, 0, SKS_FRIENDLY_NAME_MAX),
    F_BYTE(S, algorithm, "AlgorithmData", WM),
    F_MAC(S),
};
#undef S
#define S sks_resp_create_key_pair
static const sks_field create_key_pair_resp[] = {
    F_BYTES(S, public_key, "PublicKey", W, 0, ANY_BYTES),
    F_BYTES(S, attested_public_key, "AttestedPublicKey", W, SKS_MAC_LEN, SKS_MAC_LEN),
    F_BLOB(S, encrypted_private_key, "EncryptedPrivateKey", W, 0, ANY_BLOB),
    F_INT(S, key_handle, "KeyHandle", W),
};
#undef S

/* ---- 6.7 setCertificatePath ------------------------------------------- */
#define S sks_req_set_certificate_path
static const sks_field set_certificate_path_req[] = {
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_INT(S, key_handle, "KeyHandle", W),
    F_BYTES(S, key_id, "key ID", M, 0, SKS_ID_MAX),
    F_BYTES(S, key_public_key, "key public key", M, 0, ANY_BYTES),
    F_CERTS(S, certificate_path, "CertificatePath", WM, 1),
    F_MAC(S),
};
#undef S

/* ---- 6.8 restorePrivateKey / importPrivateKey ------------------------- */
#define S sks_req_put_private_key
static const sks_field put_private_key_req[] = {
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_INT(S, key_handle, "KeyHandle", W),
    F_BYTES(S, key_id, "key ID", M, 0, SKS_ID_MAX),
    F_BLOB(S, encrypted_private_key, "EncryptedPrivateKey", WM, 0, ANY_BLOB),
    F_MAC(S),
};
#undef S

/* ---- 6.10 post-provisioning ------------------------------------------- */
#define S sks_req_post_key
static const sks_field post_key_req[] = {
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_INT(S, key_handle, "KeyHandle", W),
    F_BYTES(S, key_id, "key ID", M, 0, SKS_ID_MAX),
    F_BYTES(S, key_public_key, "key public key", M, 0, ANY_BYTES),
    F_MAC(S),
};
static const sks_field post_update_key_req[] = {
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_INT(S, key_handle, "KeyHandle", W),
    F_BYTES(S, key_id, "key ID", M, 0, SKS_ID_MAX),
    F_BYTES(S, key_public_key, "key public key", M, 0, ANY_BYTES),
    F_INT(S, new_key_handle, "NewKeyHandle", W),
    F_BYTES(S, new_key_id, "new key ID", M, 0, SKS_ID_MAX),
    F_MAC(S),
};
#undef S

/* ---- 10 Secure key injection ------------------------------------------ */
#define S sks_req_import_session_key
static const sks_field import_session_key_req[] = {
    F_INT(S, key_handle, "KeyHandle", W),
    F_BYTE(S, algorithm, "Algorithm", W),
    F_BYTES(S, encrypted_key, "EncryptedKey", W, 1, ANY_BYTES),
};
#undef S
static const sks_field import_session_key_resp[] = {
    F_INT(sks_resp_import_session_key, session_key_handle, "SessionKeyHandle", W),
};

#define S sks_req_inject_private_key
static const sks_field inject_private_key_req[] = {
    F_INT(S, session_key_handle, "SessionKeyHandle", W),
    F_BYTES(S, iv, "IV", W, SKS_INJECT_IV_LEN, SKS_INJECT_IV_LEN),
    F_BLOB(S, encrypted_private_key, "EncryptedPrivateKey", W, SKS_INJECT_TAG_LEN + 1, ANY_BLOB),
    F_BYTES(S, id, "ID", W, 1, SKS_ID_MAX),
    F_BYTES(S, friendly_name, "FriendlyName", W, 0, SKS_FRIENDLY_NAME_MAX),
    F_BYTE(S, key_usage, "KeyUsage", W),
    F_CERTS(S, certificate_path, "CertificatePath", W, 0),
};
#undef S
static const sks_field inject_private_key_resp[] = {
    F_INT(sks_resp_inject_private_key, key_handle, "KeyHandle", W),
};

static const sks_field delete_session_key_req[] = {
    F_INT(sks_req_delete_session_key, session_key_handle, "SessionKeyHandle", W),
};

/* ---- 11 DKEK ----------------------------------------------------------- */
static const sks_field initialize_dkek_req[] = {
    F_BYTE(sks_req_initialize_dkek, share_count, "ShareCount", W),
};
static const sks_field import_dkek_share_req[] = {
    F_BYTES(sks_req_import_dkek_share, share, "Share", W, SKS_DKEK_SHARE_LEN, SKS_DKEK_SHARE_LEN),
};
#define S sks_resp_dkek_status
static const sks_field dkek_status_resp[] = {
    F_BYTE(S, state, "State", W),
    F_BYTE(S, shares_total, "SharesTotal", W),
    F_BYTE(S, shares_outstanding, "SharesOutstanding", W),
    F_BYTES(S, kcv, "KCV", W, SKS_DKEK_KCV_LEN, SKS_DKEK_KCV_LEN),
};
#undef S
static const sks_field wrap_key_req[] = {
    F_INT(sks_req_wrap_key, key_handle, "KeyHandle", W),
};
static const sks_field wrap_key_resp[] = {
    F_BLOB(sks_resp_wrap_key, blob, "Blob", W, 1, ANY_BLOB),
};
static const sks_field unwrap_key_req[] = {
    F_INT(sks_req_unwrap_key, pin_policy_handle, "PINPolicyHandle", W),
    F_BLOB(sks_req_unwrap_key, blob, "Blob", W, 1, ANY_BLOB),
};
static const sks_field unwrap_key_resp[] = {
    F_INT(sks_resp_unwrap_key, key_handle, "KeyHandle", W),
};

/* ---- 7 Key User API --------------------------------------------------- */
#define S sks_resp_get_device_info
static const sks_field get_device_info_resp[] = {
    F_SHORT(S, api_level, "ApiLevel", W),
    F_BYTES(S, serial, "Serial", W, 0, ANY_BYTES),
    F_CERTS(S, device_certificate_path, "DeviceCertificatePath", W, 1),
    F_BYTES(S, key_algorithms, "KeyAlgorithms", W, 0, ANY_BYTES),
    F_INT(S, max_keys, "MaxKeys", W),
    F_INT(S, used_keys, "UsedKeys", W),
    F_INT(S, change_counter, "ChangeCounter", W),
};
#undef S

static const sks_field enumerate_keys_req[] = {
    F_INT(sks_req_enumerate_keys, after_handle, "AfterHandle", W),
};
static const sks_field enumerate_keys_resp[] = {
    F_BLOB(sks_resp_enumerate_keys, handles, "Handles", W, 0, 4 * SKS_ENUM_PAGE_MAX),
    F_BOOL(sks_resp_enumerate_keys, more, "More", W),
};

/* getKeyAttributes and exportKey take just a key handle. */
static const sks_field key_handle_req[] = {
    F_INT(sks_req_key_handle, key_handle, "KeyHandle", W),
};

#define S sks_resp_get_key_attributes
static const sks_field get_key_attributes_resp[] = {
    F_BYTES(S, id, "ID", W, 1, SKS_ID_MAX),
    F_BYTES(S, friendly_name, "FriendlyName", W, 0, SKS_FRIENDLY_NAME_MAX),
    F_BYTE(S, algorithm, "AlgorithmData", W),
    F_BYTE(S, key_usage, "KeyUsage", W),
    F_BYTE(S, flags, "Flags", W),
    F_INT(S, pin_policy_handle, "PINPolicyHandle", W),
    F_BYTES(S, public_key, "PublicKey", W, 0, ANY_BYTES),
    F_CERTS(S, certificate_path, "CertificatePath", W, 0),
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
};
#undef S

#define S sks_req_sign
static const sks_field sign_req[] = {
    F_INT(S, key_handle, "KeyHandle", W),
    F_BYTE(S, algorithm, "Algorithm", W),
    F_BYTE(S, hash, "Hash", W),
    F_SHORT(S, salt_length, "SaltLength", W),
    F_BYTES(S, data, "Data", W, 0, ANY_BYTES),
};
#undef S
static const sks_field sign_resp[] = {
    F_BYTES(sks_resp_sign, signature, "Signature", W, 0, ANY_BYTES),
};

#define S sks_req_decrypt
static const sks_field decrypt_req[] = {
    F_INT(S, key_handle, "KeyHandle", W),
    F_BYTE(S, algorithm, "Algorithm", W),
    F_BYTE(S, hash, "Hash", W),
    F_BYTE(S, mgf_hash, "MgfHash", W),
    F_BYTES(S, label, "Label", W, 0, ANY_BYTES),
    F_BYTES(S, data, "Data", W, 0, ANY_BYTES),
};
#undef S
static const sks_field decrypt_resp[] = {
    F_BYTES(sks_resp_decrypt, plaintext, "Plaintext", W, 0, ANY_BYTES),
};

static const sks_field key_agreement_req[] = {
    F_INT(sks_req_key_agreement, key_handle, "KeyHandle", W),
    F_BYTES(sks_req_key_agreement, peer_public_key, "PeerPublicKey", W, 0, ANY_BYTES),
};
static const sks_field key_agreement_resp[] = {
    F_BYTES(sks_resp_key_agreement, shared_secret, "SharedSecret", W, 0, ANY_BYTES),
};

static const sks_field delete_key_req[] = {
    F_INT(sks_req_delete_key, key_handle, "KeyHandle", W),
    F_BYTES(sks_req_delete_key, authorization, "Authorization", W, 0, ANY_BYTES),
};

static const sks_field export_key_resp[] = {
    F_BYTES(sks_resp_export_key, private_key, "PrivateKey", W, 0, ANY_BYTES),
};

static const sks_field verify_pin_req[] = {
    F_INT(sks_req_verify_pin, pin_policy_handle, "PINPolicyHandle", W),
    F_BYTES(sks_req_verify_pin, pin, "PIN", W, 0, ANY_BYTES),
};

static const sks_field change_pin_req[] = {
    F_INT(sks_req_change_pin, pin_policy_handle, "PINPolicyHandle", W),
    F_BYTES(sks_req_change_pin, old_pin, "OldPIN", W, 0, ANY_BYTES),
    F_BYTES(sks_req_change_pin, new_pin, "NewPIN", W, 0, ANY_BYTES),
};

static const sks_field unlock_pin_req[] = {
    F_INT(sks_req_unlock_pin, pin_policy_handle, "PINPolicyHandle", W),
    F_BYTES(sks_req_unlock_pin, puk, "PUK", W, 0, ANY_BYTES),
    F_BYTES(sks_req_unlock_pin, new_pin, "NewPIN", W, 0, ANY_BYTES),
};

static const sks_field logout_req[] = {
    F_INT(sks_req_logout, pin_policy_handle, "PINPolicyHandle", W),
};

static const sks_field enumerate_pin_policies_resp[] = {
    F_BLOB(sks_resp_enumerate_pin_policies, policies, "Policies", W, 0, ANY_BLOB),
};

static const sks_field verify_puk_req[] = {
    F_INT(sks_req_verify_puk, pin_policy_handle, "PINPolicyHandle", W),
    F_BYTES(sks_req_verify_puk, puk, "PUK", W, 0, ANY_BYTES),
};

/* ---- stored objects (78..82) and setKeyAttributes (83) ---------------- */
#define S sks_req_create_object
static const sks_field create_object_req[] = {
    F_INT(S, pin_policy_handle, "PINPolicyHandle", W),
    F_BYTE(S, object_class, "Class", W),
    F_BOOL(S, private_, "Private", W),
    F_BLOB(S, attributes, "Attributes", W, 0, SKS_OBJECT_MAX),
};
#undef S
static const sks_field create_object_resp[] = {
    F_INT(sks_resp_create_object, object_handle, "ObjectHandle", W),
};

/* deleteObject and readObject take just an object handle. */
static const sks_field object_handle_req[] = {
    F_INT(sks_req_object_handle, object_handle, "ObjectHandle", W),
};

#define S sks_resp_read_object
static const sks_field read_object_resp[] = {
    F_INT(S, pin_policy_handle, "PINPolicyHandle", W),
    F_BYTE(S, object_class, "Class", W),
    F_BOOL(S, private_, "Private", W),
    F_BLOB(S, attributes, "Attributes", W, 0, SKS_OBJECT_MAX),
};
#undef S

static const sks_field update_object_req[] = {
    F_INT(sks_req_update_object, object_handle, "ObjectHandle", W),
    F_BLOB(sks_req_update_object, attributes, "Attributes", W, 0, SKS_OBJECT_MAX),
};

#define S sks_req_set_key_attributes
static const sks_field set_key_attributes_req[] = {
    F_INT(S, key_handle, "KeyHandle", W),
    F_BYTES(S, id, "ID", W, 1, SKS_ID_MAX),
    F_BYTES(S, friendly_name, "FriendlyName", W, 0, SKS_FRIENDLY_NAME_MAX),
};
#undef S

/* ---- resetPINPolicy (84) ---------------------------------------------- */
#define S sks_req_reset_pin_policy
static const sks_field reset_pin_policy_req[] = {
    F_INT(S, pin_policy_handle, "PINPolicyHandle", W),
    F_BYTES(S, puk, "PUK", W, 0, ANY_BYTES),
    F_BYTES(S, new_id, "NewID", W, 1, SKS_ID_MAX),
};
#undef S

/* One enumeratePINPolicies record. */
#define S sks_pin_policy_info
static const sks_field pin_policy_info_fields[] = {
    F_INT(S, handle, "Handle", W),
    F_BYTES(S, id, "ID", W, 1, SKS_ID_MAX),
    F_INT(S, provisioning_handle, "ProvisioningHandle", W),
    F_BYTE(S, format, "Format", W),
    F_BYTE(S, min_length, "MinLength", W),
    F_BYTE(S, max_length, "MaxLength", W),
    F_BYTE(S, retry_limit, "RetryLimit", W),
    F_BYTE(S, tries_left, "TriesLeft", W),
    F_BOOL(S, user_modifiable, "UserModifiable", W),
    F_BOOL(S, pin_set, "PinSet", W),
    F_BOOL(S, verified, "Verified", W),
    F_INT(S, puk_policy_handle, "PUKPolicyHandle", W),
    F_BYTE(S, puk_retry_limit, "PUKRetryLimit", W),
    F_BYTE(S, puk_tries_left, "PUKTriesLeft", W),
    F_BOOL(S, caching_support, "CachingSupport", W),
};
#undef S

const sks_msgdesc sks_rec_pin_policy_info = {
    0, "PINPolicyInfo", pin_policy_info_fields, COUNT(pin_policy_info_fields), NULL, 0, 0,
};

/* ---- countKeys (91) ---------------------------------------------------- */
static const sks_field count_keys_req[] = {
    F_INT(sks_req_count_keys, pin_policy_handle, "PINPolicyHandle", W),
};
static const sks_field count_keys_resp[] = {
    F_INT(sks_resp_count_keys, count, "Count", W),
};

/* ---- enumerateKeyAttributes (90) -------------------------------------- */
static const sks_field enumerate_key_attributes_resp[] = {
    F_BLOB(sks_resp_enumerate_key_attributes, records, "Records", W, 0, ANY_BLOB),
    F_BOOL(sks_resp_enumerate_key_attributes, more, "More", W),
};

/* One record: KeyHandle, then the fields of getKeyAttributes in their order. */
#define S sks_key_attributes_info
static const sks_field key_attributes_info_fields[] = {
    F_INT(S, key_handle, "KeyHandle", W),
    F_BYTES(S, attributes.id, "ID", W, 1, SKS_ID_MAX),
    F_BYTES(S, attributes.friendly_name, "FriendlyName", W, 0, SKS_FRIENDLY_NAME_MAX),
    F_BYTE(S, attributes.algorithm, "AlgorithmData", W),
    F_BYTE(S, attributes.key_usage, "KeyUsage", W),
    F_BYTE(S, attributes.flags, "Flags", W),
    F_INT(S, attributes.pin_policy_handle, "PINPolicyHandle", W),
    F_BYTES(S, attributes.public_key, "PublicKey", W, 0, ANY_BYTES),
    F_CERTS(S, attributes.certificate_path, "CertificatePath", W, 0),
    F_INT(S, attributes.provisioning_handle, "ProvisioningHandle", W),
};
#undef S

const sks_msgdesc sks_rec_key_attributes_info = {
    0, "KeyAttributesInfo", key_attributes_info_fields, COUNT(key_attributes_info_fields), NULL, 0,
    0,
};

static const sks_msgdesc methods[] = {
    METHOD(SKS_M_CREATE_PROVISIONING_SESSION, "createProvisioningSession", create_session_req,
           create_session_resp, 0),
    METHOD(SKS_M_CLOSE_PROVISIONING_SESSION, "closeProvisioningSession", close_session_req,
           close_session_resp, 1),
    METHOD_NO_RESP(SKS_M_ABORT_PROVISIONING_SESSION, "abortProvisioningSession", abort_session_req,
                   1),
    METHOD(SKS_M_CREATE_PUK_POLICY, "createPUKPolicy", create_puk_policy_req,
           create_puk_policy_resp, 1),
    METHOD(SKS_M_CREATE_PIN_POLICY, "createPINPolicy", create_pin_policy_req,
           create_pin_policy_resp, 1),
    METHOD(SKS_M_CREATE_KEY_PAIR, "createKeyPair", create_key_pair_req, create_key_pair_resp, 1),
    METHOD_NO_RESP(SKS_M_SET_CERTIFICATE_PATH, "setCertificatePath", set_certificate_path_req, 1),
    METHOD_NO_RESP(SKS_M_POST_DELETE_KEY, "postDeleteKey", post_key_req, 1),
    METHOD_NO_RESP(SKS_M_POST_UNLOCK_KEY, "postUnlockKey", post_key_req, 1),
    METHOD_NO_RESP(SKS_M_POST_UPDATE_KEY, "postUpdateKey", post_update_key_req, 1),
    METHOD_NO_RESP(SKS_M_RESTORE_PRIVATE_KEY, "restorePrivateKey", put_private_key_req, 1),
    METHOD_NO_RESP(SKS_M_IMPORT_PRIVATE_KEY, "importPrivateKey", put_private_key_req, 1),
    METHOD(SKS_M_IMPORT_SESSION_KEY, "importSessionKey", import_session_key_req,
           import_session_key_resp, 0),
    METHOD(SKS_M_INJECT_PRIVATE_KEY, "injectPrivateKey", inject_private_key_req,
           inject_private_key_resp, 0),
    METHOD_NO_RESP(SKS_M_DELETE_SESSION_KEY, "deleteSessionKey", delete_session_key_req, 0),
    METHOD_NO_REQ(SKS_M_GET_DEVICE_INFO, "getDeviceInfo", get_device_info_resp),
    METHOD(SKS_M_ENUMERATE_KEYS, "enumerateKeys", enumerate_keys_req, enumerate_keys_resp, 0),
    METHOD(SKS_M_GET_KEY_ATTRIBUTES, "getKeyAttributes", key_handle_req, get_key_attributes_resp,
           0),
    METHOD(SKS_M_SIGN_HASHED_DATA, "signHashedData", sign_req, sign_resp, 0),
    METHOD(SKS_M_ASYMMETRIC_DECRYPT, "asymmetricDecrypt", decrypt_req, decrypt_resp, 0),
    METHOD(SKS_M_KEY_AGREEMENT, "keyAgreement", key_agreement_req, key_agreement_resp, 0),
    METHOD_NO_RESP(SKS_M_DELETE_KEY, "deleteKey", delete_key_req, 0),
    METHOD(SKS_M_EXPORT_KEY, "exportKey", key_handle_req, export_key_resp, 0),
    METHOD_NO_RESP(SKS_M_VERIFY_PIN, "verifyPIN", verify_pin_req, 0),
    METHOD_NO_RESP(SKS_M_CHANGE_PIN, "changePIN", change_pin_req, 0),
    METHOD_NO_RESP(SKS_M_UNLOCK_PIN, "unlockPIN", unlock_pin_req, 0),
    METHOD_NO_RESP(SKS_M_LOGOUT, "logout", logout_req, 0),
    METHOD_NO_REQ(SKS_M_ENUMERATE_PIN_POLICIES, "enumeratePINPolicies",
                  enumerate_pin_policies_resp),
    METHOD_NO_RESP(SKS_M_VERIFY_PUK, "verifyPUK", verify_puk_req, 0),
    METHOD(SKS_M_CREATE_OBJECT, "createObject", create_object_req, create_object_resp, 0),
    METHOD_NO_RESP(SKS_M_DELETE_OBJECT, "deleteObject", object_handle_req, 0),
    /* enumerateObjects pages like enumerateKeys (same structs). */
    METHOD(SKS_M_ENUMERATE_OBJECTS, "enumerateObjects", enumerate_keys_req, enumerate_keys_resp, 0),
    METHOD(SKS_M_READ_OBJECT, "readObject", object_handle_req, read_object_resp, 0),
    METHOD_NO_RESP(SKS_M_UPDATE_OBJECT, "updateObject", update_object_req, 0),
    METHOD_NO_RESP(SKS_M_SET_KEY_ATTRIBUTES, "setKeyAttributes", set_key_attributes_req, 0),
    METHOD_NO_RESP(SKS_M_RESET_PIN_POLICY, "resetPINPolicy", reset_pin_policy_req, 0),
    METHOD_NO_RESP(SKS_M_INITIALIZE_DKEK, "initializeDKEK", initialize_dkek_req, 0),
    METHOD(SKS_M_IMPORT_DKEK_SHARE, "importDKEKShare", import_dkek_share_req, dkek_status_resp, 0),
    METHOD_NO_REQ(SKS_M_GET_DKEK_STATUS, "getDKEKStatus", dkek_status_resp),
    METHOD(SKS_M_WRAP_KEY, "wrapKey", wrap_key_req, wrap_key_resp, 0),
    METHOD(SKS_M_UNWRAP_KEY, "unwrapKey", unwrap_key_req, unwrap_key_resp, 0),
    /* enumerateKeyAttributes pages after a handle like enumerateKeys. */
    METHOD(SKS_M_ENUMERATE_KEY_ATTRIBUTES, "enumerateKeyAttributes", enumerate_keys_req,
           enumerate_key_attributes_resp, 0),
    METHOD(SKS_M_COUNT_KEYS, "countKeys", count_keys_req, count_keys_resp, 0),
};

const sks_msgdesc *sks_msg_find(uint8_t method_id)
{
    for (size_t i = 0; i < COUNT(methods); i++) {
        if (methods[i].id == method_id)
            return &methods[i];
    }
    return NULL;
}

const char *sks_method_name(uint8_t method_id)
{
    const sks_msgdesc *d = sks_msg_find(method_id);
    return d != NULL ? d->name : "unknown";
}

const char *sks_status_name(uint8_t status)
{
    static const char *const names[] = {
        [SKS_OK] = "OK",
        [SKS_ERR_AUTHENTICATION] = "AUTHENTICATION",
        [SKS_ERR_STORAGE] = "STORAGE",
        [SKS_ERR_MAC] = "MAC",
        [SKS_ERR_CRYPTO] = "CRYPTO",
        [SKS_ERR_NO_SESSION] = "NO_SESSION",
        [SKS_ERR_SESSION_VERIFY] = "SESSION_VERIFY",
        [SKS_ERR_NO_KEY] = "NO_KEY",
        [SKS_ERR_ALGORITHM] = "ALGORITHM",
        [SKS_ERR_NOT_ALLOWED] = "NOT_ALLOWED",
        [SKS_ERR_OPTION] = "OPTION",
        [SKS_ERR_INTERNAL] = "INTERNAL",
        [SKS_ERR_FORMAT] = "FORMAT",
        [SKS_ERR_PIN_BLOCKED] = "PIN_BLOCKED",
        [SKS_ERR_NOT_AUTHENTICATED] = "NOT_AUTHENTICATED",
        [SKS_ERR_NO_METHOD] = "NO_METHOD",
        [SKS_ERR_NO_POLICY] = "NO_POLICY",
    };
    if (status < COUNT(names) && names[status] != NULL)
        return names[status];
    return "unknown";
}
