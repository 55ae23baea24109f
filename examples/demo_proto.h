/*
 * demo_proto.h - the messages sks-enroll and sks-issuer-demo exchange
 * (types and field tags of demo_link.h), in the order of the two
 * scenarios: (a) the minidriver seed's secure key injection, (b) the SKS
 * seed's provisioning session.
 */
#ifndef SKS_DEMO_PROTO_H
#define SKS_DEMO_PROTO_H

/* Message types. */
#define DM_HELLO       'H' /* client: scenario, subject name */
#define DM_OFFER       'O' /* server (a): key archival needs secure key injection */
#define DM_K1          'K' /* client (a): K1's public key and the card's mechanisms */
#define DM_SESSION_KEY 'S' /* server (a): S1 wrapped under K1 */
#define DM_ACK         'A' /* client: done with the last step */
#define DM_INJECT      'I' /* server (a): K2 encrypted under S1, its certificate path */
#define DM_CALL        'C' /* server (b): one prepared provisioning call */
#define DM_ANSWER      'R' /* client (b): the card's answer to it */
#define DM_DONE        'D' /* either: the scenario finished */
#define DM_ERROR       'E' /* either: a step failed (text) */

/* Field tags. */
#define DT_TEXT        1 /* UTF-8 text */
#define DT_SCENARIO    2 /* "inject" or "sks" */
#define DT_SUBJECT     3 /* common name for the certificate */
#define DT_SPKI        4 /* SubjectPublicKeyInfo DER */
#define DT_MECH        5 /* a mechanism number (u32); repeated for a list */
#define DT_WRAPPED     6 /* a wrapped or encrypted key */
#define DT_PUBLIC_DATA 7 /* the issuer's ephemeral ECDH point */
#define DT_IV          8
#define DT_CERT        9  /* one DER certificate; repeated, end entity first */
#define DT_KEY_ID      10 /* CKA_ID for the new key */
#define DT_LABEL       11 /* CKA_LABEL for the new key */
#define DT_PARAMS      12 /* (b) a call's parameter fields, see demo_sks.h */
#define DT_RV          13 /* a PKCS#11 return value (u32) */
#define DT_SERIAL      14 /* the certificate's serial number (u32) */

/*
 * (b) Fields of a provisioning call (DM_CALL, with DT_MECH naming the
 * CKM_VENDOR_SKS_* mechanism) and of its answer (DM_ANSWER, with DT_RV):
 * the members of the CK_SKS_*_PARAMS structures of <pkcs11/sks-pkcs11.h>,
 * numbers as 4 bytes. Objects made earlier in the session (policies, keys)
 * are named by their ID; the client maps IDs to its own object handles.
 */
#define DP_SESSION_KEY_ALG  32
#define DP_SERVER_SESSION   33
#define DP_ISSUER_URI       34
#define DP_ISSUER_KEY       35
#define DP_UPDATABLE        36
#define DP_OPERATION_LIMIT  37
#define DP_LIFETIME         38
#define DP_CLIENT_SESSION   40 /* answers */
#define DP_ENC_SESSION_KEY  41
#define DP_ATTESTATION      42
#define DP_DEVICE_CERT      43 /* repeated, device certificate first */
#define DP_ID               50
#define DP_ENC_VALUE        51
#define DP_FORMAT           52
#define DP_RETRY_LIMIT      53
#define DP_MAC              54
#define DP_PUK_ID           55
#define DP_USER_DEFINED     56
#define DP_USER_MODIFIABLE  57
#define DP_GROUPING         58
#define DP_PATTERN          59
#define DP_MIN_LENGTH       60
#define DP_MAX_LENGTH       61
#define DP_CACHING          62
#define DP_INPUT_METHOD     63
#define DP_PIN_ID           64
#define DP_PIN_VALUE        65 /* absent for a UserDefined PIN: the client's user gives it */
#define DP_BACKUP           66
#define DP_MIGRATABLE       67
#define DP_KEY_UPDATABLE    68
#define DP_DELETE_PROTECTED 69
#define DP_IMPORT           70
#define DP_KEY_USAGE        71
#define DP_FRIENDLY_NAME    72
#define DP_KEY_ALG          73
#define DP_KEY_ID           74 /* the key a call is about */
#define DP_CERT             75 /* repeated, end entity first */
#define DP_ENC_PRIVATE_KEY  76
#define DP_CLOSE_COUNTS     77 /* five numbers: generated, deleted, cloned, replaced, extension */
#define DP_NEW_KEY_ID       78
#define DP_PUBLIC_KEY       80 /* answers */
#define DP_ATTESTED_KEY     81
#define DP_KEY_BACKUP       82
#define DP_ATTESTED_CLOSE   83

#endif
