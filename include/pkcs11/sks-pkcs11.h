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
 * the buffer's size (a NULL buffer has size 0), on output the number of
 * bytes written. A buffer that is too small fails the call with
 * CKR_BUFFER_TOO_SMALL before the card changes anything, and the length then
 * holds the size needed where it is known in advance (else the CKS_*_MAX
 * bound). The card side's provisioning calls know every size in advance and
 * set every output length of their struct: exact for a SubjectPublicKeyInfo
 * of the key's algorithm, an EncryptedSessionKey and the card's device
 * certificate path (read from the card first), a bound for an
 * EncryptedPrivateKey (the largest of the algorithm) and a
 * SessionAttestation (the largest signature of the device key); the call
 * is then repeated with buffers that large.
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
 *          The template's CKA_ID (required) and usage must be K2's on the
 *          issuer side: the blob is bound to them. S1 serves one blob: once
 *          the card has tried one under it, S1 is refused.
 * Issuer side (no-card mode), the same mechanisms with C_WrapKey:
 *   C_WrapKey(CKM_VENDOR_SKS_SESSION_KEY_*, hWrappingKey = K1's public key,
 *             hKey = S1 (an AES-256 key from C_GenerateKey))
 *   C_WrapKey(CKM_VENDOR_SKS_INJECT_KEY, hWrappingKey = S1, hKey = K2 with a
 *             CKA_ID of 1..32 bytes and a usage the card can give it)
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
/*
 * A CKO_SECRET_KEY view of a card private key that allows backup, shown
 * while the token's DKEK is complete, with the key's CKA_ID and CKA_LABEL:
 * C_WrapKey(CKM_VENDOR_SKS_DKEK_WRAP) accepts it for the private key, for
 * tools that wrap only secret keys (pkcs11-tool before OpenSC 0.26). It
 * cannot be used for anything else, changed or destroyed (docs/dkek.md).
 */
#define CKK_VENDOR_SKS_KEY_BACKUP (CKK_VENDOR_DEFINED | CK_SKS_VENDOR_BASE | 0x02)

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
/*
 * Byte array (32), read-only, issuer side (no-card mode): on S1 after
 * C_WrapKey(CKM_VENDOR_SKS_SESSION_KEY_*), SHA-256 of K1's
 * SubjectPublicKeyInfo DER, where the AAD of CKM_VENDOR_SKS_INJECT_KEY
 * begins; its presence is what makes S1 usable for the injection.
 */
#define CKA_VENDOR_SKS_INJECTION_AAD (CKA_VENDOR_SKS_BASE + 0x10)

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
#define CKR_VENDOR_SKS_NO_POLICY      CKR_VENDOR_SKS(16) /* a policy the session may not use */
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

/*
 * CKM_VENDOR_SKS_POST_* (6.10); all in. A key may also be named by its
 * CKO_PUBLIC_KEY, which is visible without login (a token whose PIN is
 * blocked cannot be logged into), and may be one of another token of the
 * same card.
 */
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
 * S1 = HMAC-SHA256(Z, "SKS session key") of the ECDH secret Z. On
 * C_WrapKey ulPublicDataLen is in/out: the buffer's size in, 65 out (also
 * after a length query with pWrappedKey NULL, and with
 * CKR_BUFFER_TOO_SMALL), so set it again before the next call.
 */
typedef struct CK_SKS_ECDH_SESSION_KEY_PARAMS {
    CK_BYTE_PTR pPublicData;
    CK_ULONG ulPublicDataLen; /* 65 */
} CK_SKS_ECDH_SESSION_KEY_PARAMS;

/*
 * CKM_VENDOR_SKS_INJECT_KEY: the wrapped key is AES-256-GCM(S1, iv,
 * aad = SHA-256 of K1's SubjectPublicKeyInfo | len(ID) | ID | KeyUsage) of
 * K2's PKCS#8 DER, the 16-byte tag appended (docs/protocol.md 10.2). ID is
 * K2's CKA_ID on C_WrapKey and the template's CKA_ID on C_UnwrapKey;
 * KeyUsage the byte of CKA_SIGN (0x01), CKA_DECRYPT or CKA_UNWRAP (0x02),
 * CKA_DERIVE (0x04) of K2, and of the template (none given there: all the
 * key type can have). The IV is an input to C_UnwrapKey and an output of
 * C_WrapKey (12 bytes, random). On C_UnwrapKey the certificate path, if
 * given, is bound to the new key (its end-entity certificate must hold
 * K2's public key).
 */
typedef struct CK_SKS_INJECT_PARAMS {
    CK_BYTE iv[12];
    CK_BYTE_PTR pCertificatePath; /* DER certificates, end entity first; or NULL */
    CK_ULONG ulCertificatePathLen;
} CK_SKS_INJECT_PARAMS;

/* ---- Issuer side (no-card mode) ------------------------------------------ */
/*
 * The issuer's half of SKS provisioning on the issuer token of no-card mode
 * (transport = none; docs/provisioning.md "Issuer side through PKCS#11").
 * A server prepares every call of the card side (its MAC and its encrypted
 * values) and verifies every answer of the card (device certificate path,
 * session attestation, key attestations, close attestation) with the same
 * mechanisms where the call is the same, and three more for the checks:
 *
 *   C_GenerateKey(CKM_VENDOR_SKS_SESSION, CK_SKS_ISSUER_SESSION_PARAMS)
 *       -> a CKO_VENDOR_SKS_PROVISIONING session object on the issuer token
 *          holding the issuer's session; its outputs complete the card
 *          side's CK_SKS_SESSION_PARAMS inputs.
 *   C_DeriveKey(CKM_VENDOR_SKS_SESSION_ACCEPT, hBaseKey = that object,
 *               CK_SKS_SESSION_ACCEPT_PARAMS)                -> CK_INVALID_HANDLE
 *       verifies the card's answer and derives the session key.
 *   C_DeriveKey(CKM_VENDOR_SKS_PUK_POLICY, _PIN_POLICY, _KEY_PAIR,
 *               _CERTIFICATE_PATH, _IMPORT_PRIVATE_KEY, _RESTORE_PRIVATE_KEY
 *               or _CLOSE, hBaseKey = that object,
 *               CK_SKS_ISSUER_CALL_PARAMS)                   -> CK_INVALID_HANDLE
 *       fills the card side's parameter struct of the same mechanism with
 *       its MAC and encrypted values, ready for the card side's C_DeriveKey.
 *   C_DeriveKey(CKM_VENDOR_SKS_VERIFY_KEY_PAIR, that object,
 *               CK_SKS_KEY_PAIR_PARAMS as the card side returned it)
 *       -> a CKO_PUBLIC_KEY session object of the card's new key (CKA_ID =
 *          the key's ID, CKA_LABEL = its friendly name) to issue its
 *          certificate from; CK_INVALID_HANDLE for an ImportPrivateKey key.
 *   C_DeriveKey(CKM_VENDOR_SKS_VERIFY_CLOSE, that object,
 *               CK_SKS_CLOSE_PARAMS as the card side returned it)
 *                                                            -> CK_INVALID_HANDLE
 *   C_DestroyObject(the provisioning object), closing its session or
 *   C_Finalize forgets the issuer's session (its keys zeroized).
 *
 * Calls must reach the card in the order they were prepared (each MAC takes
 * the next value of the session's counter); they may be prepared ahead as a
 * batch. Key attestations may be verified in any order after their call.
 * Handles are local to each side and never MACed: the issuer names the
 * policies and keys a call refers to by their IDs (pReferenceId), the relay
 * puts its card-side handles (hPukPolicy, hPinPolicy, hKey) into the struct.
 *
 * A prepare call that fails on its arguments (CKR_ARGUMENTS_BAD,
 * CKR_MECHANISM_PARAM_INVALID, CKR_BUFFER_TOO_SMALL, a key handle) changes
 * nothing. An answer that does not verify fails with
 * CKR_VENDOR_SKS_ATTESTATION and, like any other failure, ends the issuer's
 * session as a failed call ends the card's: every later call on it answers
 * CKR_VENDOR_SKS_NO_SESSION, as do calls after VERIFY_CLOSE succeeded.
 * The issuer-side mechanisms need an issuer token: on a card token they
 * are the card side's (and the three below CKR_MECHANISM_INVALID).
 */
#define CKM_VENDOR_SKS_SESSION_ACCEPT   (CKM_VENDOR_SKS_BASE + 0x30)
#define CKM_VENDOR_SKS_VERIFY_KEY_PAIR  (CKM_VENDOR_SKS_BASE + 0x31)
#define CKM_VENDOR_SKS_VERIFY_CLOSE     (CKM_VENDOR_SKS_BASE + 0x32)

/* CKM_VENDOR_SKS_SESSION on the issuer token: the createProvisioningSession request. */
typedef struct CK_SKS_ISSUER_SESSION_PARAMS {
    /* in */
    CK_ULONG ulSessionKeyAlgorithm; /* CKS_SESSION_KEY_* */
    CK_UTF8CHAR_PTR pIssuerUri;     /* 1..1024 bytes */
    CK_ULONG ulIssuerUriLen;
    /*
     * The issuer's CKO_PRIVATE_KEY on the issuer token that the card
     * encrypts the session secret to: EC P-256 with CKA_DERIVE for
     * CKS_SESSION_KEY_ECDH_P256, RSA 2048..4096 with CKA_DECRYPT for
     * CKS_SESSION_KEY_RSA_OAEP_SHA256. CK_INVALID_HANDLE: a fresh key for
     * this session only (an issuer that uses policies of its earlier
     * sessions, docs/protocol.md 6.9, needs its persistent key).
     */
    CK_OBJECT_HANDLE hIssuerKey;
    CK_BBOOL bUpdatable;
    CK_ULONG ulClientOperationLimit; /* 0..65535 (0 = 65535) */
    CK_ULONG ulSessionLifeTime;      /* seconds, 1..2^32-1 */
    /* out */
    CK_BYTE serverSessionId[CKS_SESSION_ID_LEN]; /* random */
    CK_BYTE_PTR pIssuerPublicKey;                /* the issuer key's SubjectPublicKeyInfo DER */
    CK_ULONG ulIssuerPublicKeyLen;
} CK_SKS_ISSUER_SESSION_PARAMS;

/*
 * CKM_VENDOR_SKS_SESSION_ACCEPT; all in. The device certificate path must
 * lead to the trust anchor, the session secret must come out with the
 * issuer's key and the session attestation must verify with the device
 * certificate's key (else CKR_VENDOR_SKS_ATTESTATION); then the session key
 * is derived and calls can be prepared.
 */
typedef struct CK_SKS_SESSION_ACCEPT_PARAMS {
    /* The manufacturer CA: a CKO_CERTIFICATE (CKC_X_509) on the issuer token. */
    CK_OBJECT_HANDLE hTrustAnchor;
    /*
     * The card side's CK_SKS_SESSION_PARAMS after its C_GenerateKey: its out
     * fields (clientSessionId, pEncryptedSessionKey, pSessionAttestation,
     * pDeviceCertificatePath) are read; its in fields are not (the issuer
     * attests against its own request).
     */
    CK_SKS_SESSION_PARAMS_PTR pSession;
} CK_SKS_SESSION_ACCEPT_PARAMS;

/*
 * One in-session call on the issuer side. pCall is the card side's struct
 * of the same mechanism; the issuer reads the values it chooses and writes
 * the ones it computes, the rest is left alone:
 *
 *   mechanism           pCall                            reads               writes
 *   PUK_POLICY          CK_SKS_PUK_POLICY_PARAMS         pId, ulFormat,      pEncryptedValue
 *                                                        ulRetryLimit        (buffer), mac
 *   PIN_POLICY          CK_SKS_PIN_POLICY_PARAMS         pId, bUserDefined   mac
 *                                                        .. ulInputMethod
 *   KEY_PAIR            CK_SKS_KEY_PAIR_PARAMS           pId, bPrivateKey-   pPinValue
 *                                                        Backup .. ulAlgorithm (buffer), mac
 *   CERTIFICATE_PATH    CK_SKS_CERTIFICATE_PATH_PARAMS   pCertificatePath    mac
 *   IMPORT_/RESTORE_    CK_SKS_PRIVATE_KEY_PARAMS        -                   pEncryptedPrivateKey
 *   PRIVATE_KEY                                                              (buffer), mac
 *   CLOSE               CK_SKS_CLOSE_PARAMS              the five counts     mac
 *
 * A written buffer is the caller's (pointer and size in; length out). The
 * size an encrypted value needs is known before anything is prepared:
 * 16 + 16 * (n / 16 + 1) for n clear bytes (the PKCS#8 DER of a private
 * key); a smaller buffer fails with CKR_BUFFER_TOO_SMALL and that length.
 */
typedef struct CK_SKS_ISSUER_CALL_PARAMS {
    CK_VOID_PTR pCall;  /* the card side's parameter struct */
    CK_ULONG ulCallLen; /* sizeof that struct */
    /*
     * The ID of what the call names where the card side has a handle:
     * PIN_POLICY its PUK policy, KEY_PAIR its PIN policy (NULL: none);
     * CERTIFICATE_PATH, IMPORT_ and RESTORE_PRIVATE_KEY the key.
     */
    CK_BYTE_PTR pReferenceId;
    CK_ULONG ulReferenceIdLen;
    /*
     * A clear value the issuer chooses, sent encrypted: PUK_POLICY the PUK,
     * KEY_PAIR the PIN (NULL: no PIN policy, or a UserDefined PIN the user
     * sets on the card side; pPinValue is then written empty).
     */
    CK_BYTE_PTR pValue;
    CK_ULONG ulValueLen;
    /*
     * IMPORT_ and RESTORE_PRIVATE_KEY: the CKO_PRIVATE_KEY on the issuer
     * token to put into the card's key (CKA_EXTRACTABLE true); else
     * CK_INVALID_HANDLE.
     */
    CK_OBJECT_HANDLE hPrivateKey;
} CK_SKS_ISSUER_CALL_PARAMS;

/*
 * Post-provisioning on the issuer side (docs/protocol.md 6.9 and 6.10;
 * docs/provisioning.md "Post-provisioning and earlier policies, issuer
 * side"). In a later session of the same issuer (the same IssuerURI, and
 * hIssuerKey its persistent key), the issuer tells its session what it
 * recorded in the earlier one, with three mechanisms of the issuer token
 * alone: C_DeriveKey(mechanism, hBaseKey = the provisioning object, after
 * SESSION_ACCEPT) -> CK_INVALID_HANDLE. They prepare nothing for the card
 * and take no counter value.
 *
 *   CKM_VENDOR_SKS_DECLARE_KEY, CK_SKS_DECLARE_KEY_PARAMS: a key an
 *       earlier session made, by its ID and its public key.
 *   CKM_VENDOR_SKS_DECLARE_PUK_POLICY / _PIN_POLICY,
 *       CK_SKS_ISSUER_CALL_PARAMS with pCall = the card side's
 *       CK_SKS_PUK_POLICY_PARAMS / CK_SKS_PIN_POLICY_PARAMS holding the
 *       values the policy was created with: the fields PUK_POLICY and
 *       PIN_POLICY read (nothing is written); pReferenceId, of a PIN
 *       policy: its PUK policy, declared too (NULL: none); no pValue (the
 *       PUK and PIN values need not be known).
 *
 * A declared policy is then named by pReferenceId like one of this session
 * (PIN_POLICY its PUK policy, KEY_PAIR its PIN policy). KEY_PAIR under it
 * takes the policy's PIN in pValue, or none when the user's PIN is
 * verified on the card in the current card session; a declared policy
 * whose values differ from the card's makes the key attestation fail.
 *
 * CKM_VENDOR_SKS_POST_DELETE_KEY, _POST_UNLOCK_KEY and _POST_UPDATE_KEY on
 * the issuer token take a CK_SKS_ISSUER_CALL_PARAMS:
 *
 *   pCall         the card side's CK_SKS_POST_PARAMS: mac is written (the
 *                 relay puts its handles into hKey and hNewKey);
 *   pReferenceId  the declared key's ID;
 *   pValue        POST_UPDATE_KEY: the ID of the key of this session that
 *                 replaces it (MACed, not encrypted); else NULL.
 *
 * A declared key is named by one call at most, a key of this session
 * replaces one key at most. The close counts them: ulDeletedKeys the
 * POST_DELETE_KEY calls, ulReplacedKeys the POST_UPDATE_KEY calls. On a
 * card token the three DECLARE mechanisms are CKR_MECHANISM_INVALID.
 */
#define CKM_VENDOR_SKS_DECLARE_KEY        (CKM_VENDOR_SKS_BASE + 0x33)
#define CKM_VENDOR_SKS_DECLARE_PUK_POLICY (CKM_VENDOR_SKS_BASE + 0x34)
#define CKM_VENDOR_SKS_DECLARE_PIN_POLICY (CKM_VENDOR_SKS_BASE + 0x35)

/* CKM_VENDOR_SKS_DECLARE_KEY; all in. */
typedef struct CK_SKS_DECLARE_KEY_PARAMS {
    CK_BYTE_PTR pId; /* the key's ID as created, 1..32 bytes; one declared key per ID */
    CK_ULONG ulIdLen;
    /*
     * Its public key as the card holds it: a CKO_PUBLIC_KEY of the issuer
     * token, such as the one CKM_VENDOR_SKS_VERIFY_KEY_PAIR made (kept with
     * CKA_TOKEN true), or the public key of a key the issuer imported.
     */
    CK_OBJECT_HANDLE hPublicKey;
} CK_SKS_DECLARE_KEY_PARAMS;

#ifdef __cplusplus
}
#endif

#endif
