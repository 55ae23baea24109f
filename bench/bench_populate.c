/*
 * bench_populate.c - many keys for the scaling figures, made the fastest
 * honest way for each peer: EC P-256 key pairs with CKA_ID "k%06u" and
 * CKA_LABEL "key %06u" (key numbers --first..--count).
 *
 *   populate-sks  on an SKS card state (--state-dir, created when empty):
 *                 provisioning sessions of the issuer (src/issuer) with the
 *                 card engine in process, every attestation verified. The
 *                 first creates the PIN policy labelled --token (PIN --pin),
 *                 the later ones add keys under it as an earlier-session
 *                 policy (6.9); each key is createKeyPair and
 *                 setCertificatePath. Sessions of BATCH keys: the card checks
 *                 a new key's ID against the other keys of its session, so a
 *                 session's cost grows with the square of its keys.
 *   populate-p11  through a PKCS#11 module (SoftHSMv2): C_GenerateKeyPair
 *                 of token objects, one per key.
 *
 * Prints populate.<peer>.keys_s, the keys created per second.
 */
#include <stdio.h>
#include <string.h>

#include "bench_main.h"
#include "bench_prov.h"
#include "bench_util.h"

#define BATCH 25

int bench_cmd_populate_sks(const bench_opts *o)
{
    char key[96];
    snprintf(key, sizeof(key), "populate.%s.keys_s", o->peer);
    if (o->state_dir == NULL || o->token == NULL || o->pin == NULL || o->count < o->first) {
        bench_note("populate-sks needs --state-dir, --token, --pin and --count >= --first");
        return 2;
    }
    bench_issuer *b = bench_issuer_open(o->state_dir);
    if (b == NULL)
        return 1;
    unsigned n = o->count - o->first + 1;
    uint32_t policy = 0;
    int rc = 0;
    double t0 = bench_now();
    for (unsigned i = o->first; rc == 0 && i <= o->count; i += BATCH) {
        unsigned left = o->count - i + 1;
        rc = bench_issuer_session(b, o->token, o->pin, &policy, i, left < BATCH ? left : BATCH);
    }
    double dt = bench_now() - t0;
    bench_issuer_close(b);
    if (rc != 0) {
        bench_note("populate-sks: the provisioning session failed");
        return 1;
    }
    bench_result(key, n / dt);
    return 0;
}

/* Generate key i on the token. */
static CK_RV generate(bench_p11 *m, CK_SESSION_HANDLE s, unsigned i)
{
    /* DER of the OID prime256v1 (1.2.840.10045.3.1.7). */
    static const CK_BYTE p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE;
    char id[32], label[32];
    snprintf(id, sizeof(id), BENCH_KEY_ID_FMT, i);
    snprintf(label, sizeof(label), BENCH_KEY_LABEL_FMT, i);
    CK_ULONG id_len = (CK_ULONG)strlen(id), label_len = (CK_ULONG)strlen(label);
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},  {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
        {CKA_VERIFY, &yes, sizeof(yes)}, {CKA_ID, id, id_len},
        {CKA_LABEL, label, label_len},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_ID, id, id_len},
        {CKA_LABEL, label, label_len},
    };
    CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE hpub, hpriv;
    return m->f->C_GenerateKeyPair(s, &mech, pub, sizeof(pub) / sizeof(pub[0]), priv,
                                   sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv);
}

int bench_cmd_populate_p11(const bench_opts *o)
{
    bench_p11 m;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    char key[96];
    snprintf(key, sizeof(key), "populate.%s.keys_s", o->peer);
    if (o->module == NULL || o->token == NULL || o->pin == NULL || o->count < o->first) {
        bench_note("populate-p11 needs --module, --token, --pin and --count >= --first");
        return 2;
    }
    if (bench_p11_load(&m, o->module) != 0)
        return 1;
    CK_RV rv = bench_p11_init(&m);
    if (rv == CKR_OK)
        rv = bench_p11_slot(&m, o->token, &slot);
    if (rv == CKR_OK)
        rv = m.f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv == CKR_OK) {
        rv = m.f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)o->pin, (CK_ULONG)strlen(o->pin));
        if (rv == CKR_USER_ALREADY_LOGGED_IN)
            rv = CKR_OK;
    }
    double t0 = bench_now();
    unsigned i = o->first;
    for (; rv == CKR_OK && i <= o->count; i++)
        rv = generate(&m, s, i);
    double dt = bench_now() - t0;
    bench_p11_unload(&m);
    if (rv != CKR_OK) {
        bench_note("populate-p11: %s, key %u: %s", o->module, i - 1, bench_rv_name(rv));
        return 1;
    }
    bench_result(key, (o->count - o->first + 1) / dt);
    return 0;
}
