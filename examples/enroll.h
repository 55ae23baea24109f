/*
 * enroll.h - the state of sks-enroll shared by its scenarios: a session on
 * the user's token (the card) and the connection to the issuer.
 */
#ifndef SKS_ENROLL_H
#define SKS_ENROLL_H

#include "demo_link.h"
#include "demo_p11.h"

typedef struct {
    demo_p11 p11; /* a logged-in session on the user's card token */
    int fd;       /* connection to sks-issuer-demo */
    const char *subject;
    int ecdh; /* (a): K1 is an EC P-256 key (ECDH session key) instead of RSA */
    const char *pin;
    CK_OBJECT_HANDLE injected; /* (a): the new key's private key object */
} demo_enroll;

void enroll_step(int step, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Tell the issuer a step failed (best effort) and return -1. */
int enroll_fail(demo_enroll *e, const char *what);
/* Receive the next message of the given type; an ERROR or anything else fails. */
int enroll_expect(demo_enroll *e, uint8_t type, demo_msg *m);

/* Print the token and certificate subject of the card key with this CKA_ID. */
void enroll_report_key(demo_p11 *p, const CK_BYTE *id, CK_ULONG id_len);

/* Scenario (a): the card side of secure key injection. */
int enroll_inject(demo_enroll *e);
/* Scenario (b): the card side of the SKS sample session. */
int enroll_sks(demo_enroll *e);

#endif
