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

#endif
