/*
 * sks-pkcs11.h - the vendor part of sks-pkcs11's PKCS#11 interface:
 * mechanisms, parameter structures, object classes, key types, attributes
 * and return values an application needs to provision an SKS card, inject
 * keys into it, act as the issuer in no-card mode, and back keys up under a
 * DKEK. Everything else the module offers is standard PKCS#11 v2.40.
 *
 * It needs a pkcs11.h that defines the CK_* types; when none was included
 * before it, it includes p11-kit's <p11-kit/pkcs11.h> (pkg-config
 * --cflags sks-pkcs11 gives the include paths of both):
 *
 *     #include <p11-kit/pkcs11.h>
 *     #include <pkcs11/sks-pkcs11.h>
 *
 * One vendor prefix and base: every value below is
 * CK*_VENDOR_DEFINED | 0x534B0000 ("SK") | n. sks-pkcs11(7) documents each
 * mechanism with an example call; docs/provisioning.md and docs/dkek.md
 * describe the flows.
 *
 * Parameter structures carry inputs and outputs (as CK_SSL3_KEY_MAT_PARAMS
 * does). An output buffer is a pointer and a length: on input the length is
 * the buffer's size, on output the number of bytes written. A buffer that is
 * too small fails the call with CKR_BUFFER_TOO_SMALL before anything is sent
 * to the card, and the length then holds the size needed where it is known
 * in advance (else the CKS_*_MAX bound).
 */
#ifndef SKS_PKCS11_H
#define SKS_PKCS11_H

/* Without a pkcs11.h included first, p11-kit's is used. */
#ifndef CKM_VENDOR_DEFINED
#include <p11-kit/pkcs11.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define CK_SKS_VENDOR_BASE 0x534B0000UL

/* ---- Mechanisms -------------------------------------------------------- */
#define CKM_VENDOR_SKS_BASE (CKM_VENDOR_DEFINED | CK_SKS_VENDOR_BASE)

/*
 * SKS provisioning (docs/protocol.md section 6), card side. The issuer
 * prepares each call (its MAC, encrypted values); the application relays it.
 *   C_GenerateKey(CKM_VENDOR_SKS_SESSION, CK_SKS_SESSION_PARAMS)
 *       -> a CKO_VENDOR_SKS_PROVISIONING object (createProvisioningSession)
 *   C_DeriveKey(mechanism, hBaseKey = that object, ...) for every call in it:
 *       CKM_VENDOR_SKS_PUK_POLICY      -> CKO_VENDOR_SKS_PUK_POLICY object
 *       CKM_VENDOR_SKS_PIN_POLICY      -> CKO_VENDOR_SKS_PIN_POLICY object
 *       CKM_VENDOR_SKS_KEY_PAIR        -> the CKO_PRIVATE_KEY
 *       CKM_VENDOR_SKS_CERTIFICATE_PATH -> the end-entity CKO_CERTIFICATE
 *       CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY, CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY
 *                                      -> the CKO_PRIVATE_KEY
 *       CKM_VENDOR_SKS_CLOSE           -> CK_INVALID_HANDLE (session closed)
 *   C_DestroyObject(provisioning object) aborts the session.
 * Any failed call aborts the whole provisioning session on the card.
 */
#define CKM_VENDOR_SKS_SESSION             (CKM_VENDOR_SKS_BASE + 0x01)
#define CKM_VENDOR_SKS_PUK_POLICY          (CKM_VENDOR_SKS_BASE + 0x02)
#define CKM_VENDOR_SKS_PIN_POLICY          (CKM_VENDOR_SKS_BASE + 0x03)
#define CKM_VENDOR_SKS_KEY_PAIR            (CKM_VENDOR_SKS_BASE + 0x04)
#define CKM_VENDOR_SKS_CERTIFICATE_PATH    (CKM_VENDOR_SKS_BASE + 0x05)
#define CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY  (CKM_VENDOR_SKS_BASE + 0x06)
#define CKM_VENDOR_SKS_RESTORE_PRIVATE_KEY (CKM_VENDOR_SKS_BASE + 0x07)
#define CKM_VENDOR_SKS_CLOSE               (CKM_VENDOR_SKS_BASE + 0x08)
/*
 * Post-provisioning (docs/protocol.md 6.10): in a later session of the
 * same issuer (IssuerURI and issuer key), C_DeriveKey(mechanism, hBaseKey =
 * the provisioning object, CK_SKS_POST_PARAMS) marks a key the issuer made
 * for deletion, PIN unlock, or replacement by a key of this session; the
 * card applies them when the session closes. -> CK_INVALID_HANDLE.
 */
#define CKM_VENDOR_SKS_POST_DELETE_KEY (CKM_VENDOR_SKS_BASE + 0x09)
#define CKM_VENDOR_SKS_POST_UNLOCK_KEY (CKM_VENDOR_SKS_BASE + 0x0A)
#define CKM_VENDOR_SKS_POST_UPDATE_KEY (CKM_VENDOR_SKS_BASE + 0x0B)

/*
 * Secure key injection (the minidriver flow). Card side:
 *   C_UnwrapKey(CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP or _ECDH,
 *               hUnwrappingKey = K1 (a card private key), wrapped S1)
 *       -> S1: a CKO_SECRET_KEY/CKK_AES session object that lives on the
 *          card, CKA_SENSITIVE, not extractable, usable only with
 *   C_UnwrapKey(CKM_VENDOR_SKS_INJECT_KEY, hUnwrappingKey = S1, encrypted K2)
 *       -> K2 created on the card (its CKO_PRIVATE_KEY), with its certificate.
 * Issuer side (no-card mode), the same mechanisms with C_WrapKey:
 *   C_WrapKey(CKM_VENDOR_SKS_SESSION_KEY_*, hWrappingKey = K1's public key,
 *             hKey = S1 (an AES-256 key from C_GenerateKey))
 *   C_WrapKey(CKM_VENDOR_SKS_INJECT_KEY, hWrappingKey = S1, hKey = K2)
 */
#define CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP (CKM_VENDOR_SKS_BASE + 0x10)
#define CKM_VENDOR_SKS_SESSION_KEY_ECDH     (CKM_VENDOR_SKS_BASE + 0x11)
#define CKM_VENDOR_SKS_INJECT_KEY           (CKM_VENDOR_SKS_BASE + 0x12)

/*
 * Key backup under the DKEK (docs/dkek.md):
 *   C_WrapKey(CKM_VENDOR_SKS_DKEK_WRAP, hWrappingKey = the token's
 *             CKO_SECRET_KEY/CKK_VENDOR_SKS_DKEK object, hKey = private key)
 *   C_UnwrapKey(CKM_VENDOR_SKS_DKEK_WRAP, the DKEK object, blob) -> the key.
 */
#define CKM_VENDOR_SKS_DKEK_WRAP (CKM_VENDOR_SKS_BASE + 0x20)

/* ---- Object classes, key types, attributes ------------------------------ */
#define CKO_VENDOR_SKS_PROVISIONING (CKO_VENDOR_DEFINED | CK_SKS_VENDOR_BASE | 0x01)
#define CKO_VENDOR_SKS_PUK_POLICY   (CKO_VENDOR_DEFINED | CK_SKS_VENDOR_BASE | 0x02)
#define CKO_VENDOR_SKS_PIN_POLICY   (CKO_VENDOR_DEFINED | CK_SKS_VENDOR_BASE | 0x03)

#define CKK_VENDOR_SKS_DKEK (CKK_VENDOR_DEFINED | CK_SKS_VENDOR_BASE | 0x01)

#define CKA_VENDOR_SKS_BASE (CKA_VENDOR_DEFINED | CK_SKS_VENDOR_BASE)
/* CK_ULONG, read-only: the card's handle of the object (policy, provisioning session). */
#define CKA_VENDOR_SKS_CARD_HANDLE (CKA_VENDOR_SKS_BASE + 0x01)
/* CK_BBOOL, read-only: an injection session key (S1): only CKM_VENDOR_SKS_INJECT_KEY. */
#define CKA_VENDOR_SKS_INJECTION_ONLY (CKA_VENDOR_SKS_BASE + 0x02)
/* CK_ULONG, read-only, on the DKEK object: shares expected in all / still missing. */
#define CKA_VENDOR_SKS_DKEK_SHARES      (CKA_VENDOR_SKS_BASE + 0x03)
#define CKA_VENDOR_SKS_DKEK_OUTSTANDING (CKA_VENDOR_SKS_BASE + 0x04)
/* Byte array (8), read-only: the DKEK's key check value (zeros until complete). */
#define CKA_VENDOR_SKS_DKEK_KCV (CKA_VENDOR_SKS_BASE + 0x05)
/*
 * CK_BBOOL on private keys: the key may be backed up under the DKEK and
 * restored or cloned to cards sharing it (the card's Migratable flag). Set
 * at creation only; default CK_FALSE. A key with it is still CKA_SENSITIVE
 * and never leaves the card in the clear.
 */
#define CKA_VENDOR_SKS_BACKUP_ALLOWED (CKA_VENDOR_SKS_BASE + 0x06)
/* Byte array, read-only, on card private keys: the SKS key flags (SKS_KEYFLAG_*). */
#define CKA_VENDOR_SKS_KEY_FLAGS (CKA_VENDOR_SKS_BASE + 0x07)

/* ---- Return values ------------------------------------------------------ */
/*
 * Where no standard return value says what the card said, the card's SKS
 * status s (docs/protocol.md section 3) comes back as CKR_VENDOR_SKS(s):
 * for example a wrong provisioning MAC is CKR_VENDOR_SKS(3).
 */
#define CKR_VENDOR_SKS_BASE (CKR_VENDOR_DEFINED | CK_SKS_VENDOR_BASE)
#define CKR_VENDOR_SKS(s)   (CKR_VENDOR_SKS_BASE + (CK_ULONG)(s))
#define CKR_VENDOR_SKS_MAC            CKR_VENDOR_SKS(3)  /* a provisioning MAC is wrong */
#define CKR_VENDOR_SKS_NO_SESSION     CKR_VENDOR_SKS(5)  /* provisioning session gone */
#define CKR_VENDOR_SKS_SESSION_VERIFY CKR_VENDOR_SKS(6)  /* close: final check failed */
#define CKR_VENDOR_SKS_LIMIT          CKR_VENDOR_SKS(9)  /* forbidden by a flag or limit */
/* Issuer side: the card's attestation or device certificate did not verify. */
#define CKR_VENDOR_SKS_ATTESTATION (CKR_VENDOR_SKS_BASE + 0x100)
/* DKEK: not all shares imported / a blob or share of another DKEK. */
#define CKR_VENDOR_SKS_DKEK_INCOMPLETE (CKR_VENDOR_SKS_BASE + 0x101)
#define CKR_VENDOR_SKS_DKEK_MISMATCH   (CKR_VENDOR_SKS_BASE + 0x102)

/* ---- Limits ------------------------------------------------------------- */
#define CKS_SESSION_ID_LEN 32
#define CKS_MAC_LEN        32
/* Largest EncryptedSessionKey, SessionAttestation, device certificate path. */
#define CKS_SESSION_KEY_MAX  1024
#define CKS_ATTESTATION_MAX  1024
#define CKS_CERT_PATH_MAX    65536
#define CKS_PUBLIC_KEY_MAX   1024
#define CKS_ENCRYPTED_KEY_MAX 8192

/* ---- Parameters: provisioning ------------------------------------------- */
#define CKS_SESSION_KEY_ECDH_P256       1UL /* SessionKeyAlgorithm values */
#define CKS_SESSION_KEY_RSA_OAEP_SHA256 2UL

/* CKM_VENDOR_SKS_SESSION (createProvisioningSession 6.1). */
typedef struct CK_SKS_SESSION_PARAMS {
    /* in */
    CK_ULONG ulSessionKeyAlgorithm; /* CKS_SESSION_KEY_* */
    CK_BYTE serverSessionId[CKS_SESSION_ID_LEN];
    CK_UTF8CHAR_PTR pIssuerUri;
    CK_ULONG ulIssuerUriLen;
    CK_BYTE_PTR pIssuerPublicKey; /* SubjectPublicKeyInfo DER */
    CK_ULONG ulIssuerPublicKeyLen;
    CK_BBOOL bUpdatable;
    CK_ULONG ulClientOperationLimit;
    CK_ULONG ulSessionLifeTime; /* seconds */
    /* out */
    CK_BYTE clientSessionId[CKS_SESSION_ID_LEN];
    CK_BYTE_PTR pEncryptedSessionKey; /* RSA: OAEP(Z); ECDH: the card's ephemeral SPKI */
    CK_ULONG ulEncryptedSessionKeyLen;
    CK_BYTE_PTR pSessionAttestation;
    CK_ULONG ulSessionAttestationLen;
    CK_BYTE_PTR pDeviceCertificatePath; /* DER certificates, device certificate first */
    CK_ULONG ulDeviceCertificatePathLen;
} CK_SKS_SESSION_PARAMS;
typedef CK_SKS_SESSION_PARAMS *CK_SKS_SESSION_PARAMS_PTR;

/* CKM_VENDOR_SKS_PUK_POLICY (createPUKPolicy 6.4); all in. */
typedef struct CK_SKS_PUK_POLICY_PARAMS {
    CK_BYTE_PTR pId;
    CK_ULONG ulIdLen;
    CK_BYTE_PTR pEncryptedValue; /* the PUK, encrypted by the issuer */
    CK_ULONG ulEncryptedValueLen;
    CK_ULONG ulFormat;
    CK_ULONG ulRetryLimit;
    CK_BYTE mac[CKS_MAC_LEN];
} CK_SKS_PUK_POLICY_PARAMS;

/* CKM_VENDOR_SKS_PIN_POLICY (createPINPolicy 6.5); all in. */
typedef struct CK_SKS_PIN_POLICY_PARAMS {
    CK_BYTE_PTR pId;
    CK_ULONG ulIdLen;
    CK_OBJECT_HANDLE hPukPolicy; /* CKO_VENDOR_SKS_PUK_POLICY, or CK_INVALID_HANDLE */
    CK_BBOOL bUserDefined;
    CK_BBOOL bUserModifiable;
    CK_ULONG ulFormat;
    CK_ULONG ulRetryLimit;
    CK_ULONG ulGrouping;
    CK_ULONG ulPatternRestrictions;
    CK_ULONG ulMinLength;
    CK_ULONG ulMaxLength;
    CK_BBOOL bCachingSupport;
    CK_ULONG ulInputMethod;
    CK_BYTE mac[CKS_MAC_LEN];
} CK_SKS_PIN_POLICY_PARAMS;

/* CKM_VENDOR_SKS_KEY_PAIR (createKeyPair 6.6). */
typedef struct CK_SKS_KEY_PAIR_PARAMS {
    /* in */
    CK_BYTE_PTR pId;
    CK_ULONG ulIdLen;
    CK_OBJECT_HANDLE hPinPolicy; /* CKO_VENDOR_SKS_PIN_POLICY, or CK_INVALID_HANDLE */
    CK_BYTE_PTR pPinValue;       /* encrypted by the issuer, or the user's PIN (UserDefined) */
    CK_ULONG ulPinValueLen;
    CK_BBOOL bPrivateKeyBackup;
    CK_BBOOL bMigratable;
    CK_BBOOL bUpdatable;
    CK_BBOOL bDeleteProtected;
    CK_BBOOL bImportPrivateKey;
    CK_ULONG ulKeyUsage; /* SKS KeyUsage bits: 1 sign, 2 decrypt, 4 key agreement */
    CK_UTF8CHAR_PTR pFriendlyName;
    CK_ULONG ulFriendlyNameLen;
    CK_ULONG ulAlgorithm; /* SKS AlgorithmData: 0x01 RSA-2048 .. 0x10 P-256, 0x11 P-384 */
    CK_BYTE mac[CKS_MAC_LEN];
    /* out */
    CK_OBJECT_HANDLE hPublicKey;
    CK_BYTE_PTR pPublicKey; /* SubjectPublicKeyInfo DER */
    CK_ULONG ulPublicKeyLen;
    CK_BYTE attestedPublicKey[CKS_MAC_LEN];
    CK_BYTE_PTR pEncryptedPrivateKey; /* PrivateKeyBackup only; else length 0 */
    CK_ULONG ulEncryptedPrivateKeyLen;
} CK_SKS_KEY_PAIR_PARAMS;

/* CKM_VENDOR_SKS_CERTIFICATE_PATH (setCertificatePath 6.7); all in. */
typedef struct CK_SKS_CERTIFICATE_PATH_PARAMS {
    CK_OBJECT_HANDLE hKey;         /* the key's CKO_PRIVATE_KEY */
    CK_BYTE_PTR pCertificatePath;  /* DER certificates, end entity first */
    CK_ULONG ulCertificatePathLen;
    CK_BYTE mac[CKS_MAC_LEN];
} CK_SKS_CERTIFICATE_PATH_PARAMS;

/* CKM_VENDOR_SKS_IMPORT_PRIVATE_KEY / _RESTORE_PRIVATE_KEY (6.8); all in. */
typedef struct CK_SKS_PRIVATE_KEY_PARAMS {
    CK_OBJECT_HANDLE hKey;
    CK_BYTE_PTR pEncryptedPrivateKey;
    CK_ULONG ulEncryptedPrivateKeyLen;
    CK_BYTE mac[CKS_MAC_LEN];
} CK_SKS_PRIVATE_KEY_PARAMS;

/* CKM_VENDOR_SKS_CLOSE (closeProvisioningSession 6.2). */
typedef struct CK_SKS_CLOSE_PARAMS {
    /* in */
    CK_ULONG ulGeneratedKeys;
    CK_ULONG ulDeletedKeys;
    CK_ULONG ulClonedKeys;
    CK_ULONG ulReplacedKeys;
    CK_ULONG ulExtensionObjects;
    CK_BYTE mac[CKS_MAC_LEN];
    /* out */
    CK_BYTE attestedResponse[CKS_MAC_LEN];
} CK_SKS_CLOSE_PARAMS;

/* CKM_VENDOR_SKS_POST_* (6.10); all in. */
typedef struct CK_SKS_POST_PARAMS {
    CK_OBJECT_HANDLE hKey;    /* the issuer's earlier key (its CKO_PRIVATE_KEY) */
    CK_OBJECT_HANDLE hNewKey; /* POST_UPDATE_KEY: the key of this session replacing it */
    CK_BYTE mac[CKS_MAC_LEN];
} CK_SKS_POST_PARAMS;

/* ---- Parameters: secure key injection ------------------------------------ */
/*
 * CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP takes no parameter (RSAES-OAEP with
 * SHA-256, MGF1-SHA-256, empty label). CKM_VENDOR_SKS_SESSION_KEY_ECDH:
 * the issuer's ephemeral P-256 public key (uncompressed point), an input to
 * C_UnwrapKey and an output of C_WrapKey; the wrapped key is then empty and
 * S1 = HMAC-SHA256(Z, "SKS session key") of the ECDH secret Z.
 */
typedef struct CK_SKS_ECDH_SESSION_KEY_PARAMS {
    CK_BYTE_PTR pPublicData;
    CK_ULONG ulPublicDataLen; /* 65 */
} CK_SKS_ECDH_SESSION_KEY_PARAMS;

/*
 * CKM_VENDOR_SKS_INJECT_KEY: the wrapped key is AES-256-GCM(S1, iv,
 * aad = SHA-256 of K1's SubjectPublicKeyInfo) of K2's PKCS#8 DER, the
 * 16-byte tag appended. The IV is an input to C_UnwrapKey and an output of
 * C_WrapKey (12 bytes, random). On C_UnwrapKey the certificate path, if
 * given, is bound to the new key (its end-entity certificate must hold
 * K2's public key).
 */
typedef struct CK_SKS_INJECT_PARAMS {
    CK_BYTE iv[12];
    CK_BYTE_PTR pCertificatePath; /* DER certificates, end entity first; or NULL */
    CK_ULONG ulCertificatePathLen;
} CK_SKS_INJECT_PARAMS;

#ifdef __cplusplus
}
#endif

#endif
