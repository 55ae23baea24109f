/*
 * issuer_demo.h - the state of sks-issuer-demo shared by its scenarios: the
 * issuer token (this module in no-card mode), the CA, where injected keys
 * are archived.
 */
#ifndef SKS_ISSUER_DEMO_H
#define SKS_ISSUER_DEMO_H

#include <stdint.h>
#include <stdio.h>

#include "demo_ca.h"
#include "demo_link.h"
#include "demo_p11.h"

typedef struct {
    demo_p11 p11; /* a session on the issuer token */
    demo_ca ca;
    const char *state_dir;
    const char *archive_dir;        /* NULL: keys are not archived */
    const char *key_type;           /* K2: "rsa" or "ec" */
    const char *manufacturer_ca;    /* (b) PEM of the CA that issues SKS device certificates */
    FILE *secrets;                  /* --secrets-out: session keys written for audits/tests */
    unsigned long session_lifetime; /* (b) seconds */
    unsigned long operation_limit;  /* (b) ClientOperationLimit */
    uint32_t next_serial;
} demo_issuer;

/* Print one numbered step of a scenario. */
void issuer_step(int step, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Send an error message to the client (best effort) and return -1. */
int issuer_fail(int fd, const char *what);

/* Scenario (a): the minidriver seed's secure key injection with archival. */
int issuer_inject(demo_issuer *d, int fd, const demo_msg *hello);
/* Scenario (b): the SKS seed's sample session. */
int issuer_sks(demo_issuer *d, int fd, const demo_msg *hello);
/* The archive key (a token AES key on the issuer token), created on first use. */
CK_OBJECT_HANDLE issuer_archive_key(demo_issuer *d);
/* --recover: print an archived key as PEM. 0 or -1. */
int issuer_recover(demo_issuer *d, uint32_t serial);

#endif
