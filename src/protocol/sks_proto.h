/*
 * sks_proto.h - the numbers of the SKS card protocol: method IDs, status
 * codes, algorithm and flag values, and protocol limits.
 *
 * docs/protocol.md is the prose form of this file; keep the two in step.
 */
#ifndef SKS_PROTO_H
#define SKS_PROTO_H

#include <stdint.h>

#define SKS_API_LEVEL 1

/* ---- Method IDs (first byte of every call) ---------------------------- */
enum sks_method_id {
    /* Provisioning API: the seed's numbers. */
    SKS_M_CREATE_PROVISIONING_SESSION = 1,
    SKS_M_CLOSE_PROVISIONING_SESSION = 2,
    SKS_M_ABORT_PROVISIONING_SESSION = 3,
    SKS_M_CREATE_PUK_POLICY = 5,
    SKS_M_CREATE_PIN_POLICY = 6,
    SKS_M_CREATE_KEY_PAIR = 7,
    SKS_M_SET_CERTIFICATE_PATH = 8,
    /* Post-provisioning by the issuer of a key (docs/protocol.md 6.10). */
    SKS_M_POST_DELETE_KEY = 9,
    SKS_M_POST_UNLOCK_KEY = 10,
    SKS_M_POST_UPDATE_KEY = 11,
    SKS_M_RESTORE_PRIVATE_KEY = 20,
    SKS_M_IMPORT_PRIVATE_KEY = 21,
    /* Secure key injection (docs/protocol.md section 10). */
    SKS_M_IMPORT_SESSION_KEY = 22,
    SKS_M_INJECT_PRIVATE_KEY = 23,
    SKS_M_DELETE_SESSION_KEY = 24,
    /* Key User API. */
    SKS_M_GET_DEVICE_INFO = 64,
    SKS_M_ENUMERATE_KEYS = 65,
    SKS_M_GET_KEY_ATTRIBUTES = 66,
    SKS_M_SIGN_HASHED_DATA = 67,
    SKS_M_ASYMMETRIC_DECRYPT = 68,
    SKS_M_KEY_AGREEMENT = 69,
    SKS_M_DELETE_KEY = 70,
    SKS_M_EXPORT_KEY = 71,
    SKS_M_VERIFY_PIN = 72,
    SKS_M_CHANGE_PIN = 73,
    SKS_M_UNLOCK_PIN = 74,
    SKS_M_LOGOUT = 75,
    SKS_M_ENUMERATE_PIN_POLICIES = 76,
    SKS_M_VERIFY_PUK = 77,
    SKS_M_CREATE_OBJECT = 78,
    SKS_M_DELETE_OBJECT = 79,
    SKS_M_ENUMERATE_OBJECTS = 80,
    SKS_M_READ_OBJECT = 81,
    SKS_M_UPDATE_OBJECT = 82,
    SKS_M_SET_KEY_ATTRIBUTES = 83,
    SKS_M_RESET_PIN_POLICY = 84,
    /* Key backup under the DKEK (docs/protocol.md section 11, docs/dkek.md). */
    SKS_M_INITIALIZE_DKEK = 85,
    SKS_M_IMPORT_DKEK_SHARE = 86,
    SKS_M_GET_DKEK_STATUS = 87,
    SKS_M_WRAP_KEY = 88,
    SKS_M_UNWRAP_KEY = 89,
    /* Every complete key's attributes, a page at a time (docs/protocol.md 7.18). */
    SKS_M_ENUMERATE_KEY_ATTRIBUTES = 90,
    /* How many complete keys a PIN policy (0: no PIN) has (docs/protocol.md 7.19). */
    SKS_M_COUNT_KEYS = 91,
};

/* ---- Status codes (first byte of every answer) ------------------------ */
/* 1..8 are the seed's table unchanged; 9.. extend it (docs/protocol.md). */
enum sks_status {
    SKS_OK = 0,
    SKS_ERR_AUTHENTICATION = 1,     /* wrong PIN or PUK value */
    SKS_ERR_STORAGE = 2,            /* persistent storage full or failing */
    SKS_ERR_MAC = 3,                /* MAC does not match the data */
    SKS_ERR_CRYPTO = 4,             /* a cryptographic operation failed */
    SKS_ERR_NO_SESSION = 5,         /* unknown, closed or expired provisioning session */
    SKS_ERR_SESSION_VERIFY = 6,     /* closeProvisioningSession's final check failed */
    SKS_ERR_NO_KEY = 7,             /* unknown key handle */
    SKS_ERR_ALGORITHM = 8,          /* unknown or unfitting algorithm */
    SKS_ERR_NOT_ALLOWED = 9,        /* operation forbidden by a flag, state or limit */
    SKS_ERR_OPTION = 10,            /* an argument value is out of its allowed range */
    SKS_ERR_INTERNAL = 11,          /* card-side bug or resource failure */
    SKS_ERR_FORMAT = 12,            /* malformed call: bad length, trailing bytes, bad bool */
    SKS_ERR_PIN_BLOCKED = 13,       /* retry counter exhausted */
    SKS_ERR_NOT_AUTHENTICATED = 14, /* the key's PIN has not been verified */
    SKS_ERR_NO_METHOD = 15,         /* unknown method ID */
    SKS_ERR_NO_POLICY = 16,         /* unknown PIN or PUK policy handle */
};

/* ---- Limits ----------------------------------------------------------- */
#define SKS_SESSION_ID_LEN    32
#define SKS_MAC_LEN           32
#define SKS_SK_LEN            32
#define SKS_ID_MAX            32   /* key, PIN and PUK IDs */
#define SKS_URI_MAX           1024 /* IssuerURI */
#define SKS_FRIENDLY_NAME_MAX 255
#define SKS_PIN_MAX           128         /* PIN and PUK values, any format */
#define SKS_CERT_PATH_MAX     10          /* certificates in one path */
#define SKS_ENUM_PAGE_MAX     1000        /* handles returned by one enumerateKeys */
#define SKS_HANDLE_DEVICE     0xFFFFFFFFu /* "device PIN/PUK": not supported */

/* Record bytes in one enumerateKeyAttributes page (a larger single record goes alone). */
#define SKS_ENUM_RECORDS_MAX (128u * 1024u)

/* ---- createProvisioningSession: session key establishment ------------- */
enum sks_session_key_alg {
    SKS_SKALG_ECDH_P256 = 1,      /* issuer EC P-256 key, card ephemeral key, ECDH */
    SKS_SKALG_RSA_OAEP_SHA256 = 2 /* issuer RSA key, card-random Z under RSA-OAEP */
};

/* ---- PIN/PUK formats (seed) ------------------------------------------- */
enum sks_pin_format {
    SKS_PIN_NUMERIC = 0,
    SKS_PIN_ALPHANUMERIC = 1,
    SKS_PIN_UTF8 = 2,
    SKS_PIN_BINARY = 3,
};

/* PIN policy grouping: the PIN value and its retry counter belong to the
 * policy (docs/protocol.md "PIN grouping"), so both values behave alike. */
enum sks_pin_grouping {
    SKS_GROUPING_NONE = 0,
    SKS_GROUPING_SHARED = 1,
};

/* PatternRestrictions bits. */
#define SKS_PATTERN_TWO_IN_A_ROW   0x01 /* "11" forbidden */
#define SKS_PATTERN_THREE_IN_A_ROW 0x02 /* "111" forbidden */
#define SKS_PATTERN_SEQUENCE       0x04 /* "1234" / "4321" forbidden */

/* ---- Key algorithms (createKeyPair AlgorithmData) ---------------------- */
enum sks_key_alg {
    SKS_KEYALG_RSA2048 = 0x01,
    SKS_KEYALG_RSA3072 = 0x02,
    SKS_KEYALG_RSA4096 = 0x03,
    SKS_KEYALG_EC_P256 = 0x10,
    SKS_KEYALG_EC_P384 = 0x11,
};

/* KeyUsage bits. */
#define SKS_USAGE_SIGN          0x01
#define SKS_USAGE_DECRYPT       0x02
#define SKS_USAGE_KEY_AGREEMENT 0x04
#define SKS_USAGE_ALL           0x07

/* Key flags as reported by getKeyAttributes. */
#define SKS_KEYFLAG_PRIVATE_KEY_BACKUP 0x01
#define SKS_KEYFLAG_MIGRATABLE         0x02
#define SKS_KEYFLAG_UPDATABLE          0x04
#define SKS_KEYFLAG_DELETE_PROTECTED   0x08
#define SKS_KEYFLAG_IMPORT_PRIVATE_KEY 0x10
#define SKS_KEYFLAG_GENERATED_ON_CARD  0x20 /* private key never left the card */
#define SKS_KEYFLAG_COMPLETE           0x40 /* session closed: usable */

/* ---- Key User API algorithms ------------------------------------------ */
enum sks_hash_alg {
    SKS_HASH_NONE = 0, /* data is already a DigestInfo (RSA) or a raw hash (ECDSA) */
    SKS_HASH_SHA1 = 1,
    SKS_HASH_SHA224 = 2,
    SKS_HASH_SHA256 = 3,
    SKS_HASH_SHA384 = 4,
    SKS_HASH_SHA512 = 5,
};

enum sks_sign_alg {
    SKS_SIGN_RSA_PKCS1 = 1, /* RSASSA-PKCS1-v1_5 */
    SKS_SIGN_RSA_PSS = 2,   /* RSASSA-PSS, MGF1 with the same hash */
    SKS_SIGN_ECDSA = 3,     /* result is r | s, each the size of the order */
};

enum sks_decrypt_alg {
    SKS_DECRYPT_RSA_PKCS1 = 1, /* RSAES-PKCS1-v1_5 */
    SKS_DECRYPT_RSA_OAEP = 2,
};

/* Classes of objects stored with createObject. */
enum sks_object_class {
    SKS_OBJECT_CERTIFICATE = 1,
    SKS_OBJECT_DATA = 2,
    SKS_OBJECT_PUBLIC_KEY = 3,
};
#define SKS_OBJECT_MAX (64u * 1024u) /* largest Attributes blob */

/* ---- Secure key injection (section 10) --------------------------------- */
enum sks_session_key_import_alg {
    SKS_SKIMPORT_RSA_OAEP_SHA256 = 1, /* EncryptedKey = RSAES-OAEP-SHA256(K1, S1) */
    SKS_SKIMPORT_ECDH_P256 = 2,       /* EncryptedKey = issuer's ephemeral P-256 point */
};
#define SKS_SESSION_KEYS_MAX 8  /* injection session keys held at once (volatile) */
#define SKS_INJECT_IV_LEN    12 /* AES-256-GCM nonce */
#define SKS_INJECT_TAG_LEN   16

/* ---- DKEK (section 11) ------------------------------------------------- */
#define SKS_DKEK_SHARE_LEN  32
#define SKS_DKEK_KCV_LEN    8
#define SKS_DKEK_SHARES_MAX 16
#define SKS_DKEK_LEN        32
/* getDKEKStatus/importDKEKShare State. */
enum sks_dkek_state {
    SKS_DKEK_NONE = 0,    /* initializeDKEK never ran: no backup, no restore */
    SKS_DKEK_PENDING = 1, /* shares outstanding */
    SKS_DKEK_READY = 2,   /* complete: wrapKey and unwrapKey work */
};

/* PIN policy "no PUK" / key "no PIN". */
#define SKS_HANDLE_NONE 0u

#endif
