/*
 * bench_apdu.c - the card link:
 *
 *   apdu-rate   round trips per second through PC/SC to the card in
 *               --reader: SELECT of the SKS application (the cheapest
 *               command the card answers, 90 00) --count times over one
 *               connection (apdu.rtt_s);
 *   apdu-count  APDUs per PKCS#11 operation, counted in the module's APDU
 *               trace (--trace, the file the configuration's apdu_trace
 *               names): C_Login, the first and a later C_FindObjects by
 *               label, and one signature (C_SignInit + C_Sign, averaged
 *               over 20) with the RSA and the EC key
 *               (apdu.<peer>.login, .find_first, .find, .sign_rsa, .sign_ec).
 */
#include <stdio.h>
#include <string.h>

#include <winscard.h>

#include "bench_main.h"
#include "bench_util.h"

#define SIGNS 20

static const BYTE select_sks[] = {0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0,
                                  0x53, 0x4B, 0x53, 0x01, 0x00, 0x01};

int bench_cmd_apdu_rate(const bench_opts *o)
{
    SCARDCONTEXT ctx;
    SCARDHANDLE card;
    DWORD proto;
    BYTE resp[258];
    unsigned n = o->count > 0 ? o->count : 2000;
    if (o->reader == NULL) {
        bench_result_na("apdu.rtt_s", "no --reader");
        return 2;
    }
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
    if (rv != SCARD_S_SUCCESS) {
        bench_result_na("apdu.rtt_s", pcsc_stringify_error(rv));
        return 1;
    }
    rv = SCardConnect(ctx, o->reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                      &card, &proto);
    if (rv != SCARD_S_SUCCESS) {
        bench_result_na("apdu.rtt_s", pcsc_stringify_error(rv));
        SCardReleaseContext(ctx);
        return 1;
    }
    const SCARD_IO_REQUEST *pci = proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    double t0 = bench_now();
    unsigned i = 0;
    for (; i < n; i++) {
        DWORD len = sizeof(resp);
        rv = SCardTransmit(card, pci, select_sks, sizeof(select_sks), NULL, resp, &len);
        if (rv != SCARD_S_SUCCESS || len != 2 || resp[0] != 0x90 || resp[1] != 0x00)
            break;
    }
    double dt = bench_now() - t0;
    if (i < n)
        bench_result_na("apdu.rtt_s", "SELECT failed");
    else
        bench_result("apdu.rtt_s", n / dt);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return i < n;
}

/* Commands in the APDU trace so far (lines starting with '>'); -1 if unreadable. */
static long trace_commands(const char *file)
{
    FILE *f = fopen(file, "re");
    long n = 0;
    int c, at_line_start = 1;
    if (f == NULL)
        return -1;
    while ((c = getc(f)) != EOF) {
        if (at_line_start && c == '>')
            n++;
        at_line_start = c == '\n';
    }
    fclose(f);
    return n;
}

/* The private key labelled `label` (exactly one). */
static CK_RV find_key(bench_p11 *m, CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *key)
{
    CK_ULONG n = 0;
    CK_RV rv = bench_p11_find(m, s, CKO_PRIVATE_KEY, label, NULL, 0, key, 1, &n);
    return rv == CKR_OK && n != 1 ? CKR_OBJECT_HANDLE_INVALID : rv;
}

/* SIGNS signatures (C_SignInit + C_Sign) with `key`. */
static CK_RV sign_many(bench_p11 *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
                       CK_MECHANISM_TYPE type)
{
    CK_MECHANISM mech = {type, NULL, 0};
    CK_BYTE data[32] = {1}, sig[512];
    CK_RV rv = CKR_OK;
    for (int i = 0; rv == CKR_OK && i < SIGNS; i++) {
        CK_ULONG siglen = sizeof(sig);
        rv = m->f->C_SignInit(s, &mech, key);
        if (rv == CKR_OK)
            rv = m->f->C_Sign(s, data, sizeof(data), sig, &siglen);
    }
    return rv;
}

/* One figure: the trace's growth since *mark, divided by `per`. */
static void count_since(const bench_opts *o, const char *what, long *mark, double per)
{
    char key[96];
    long now = trace_commands(o->trace);
    snprintf(key, sizeof(key), "apdu.%s.%s", o->peer, what);
    if (now < 0 || *mark < 0)
        bench_result_na(key, "the APDU trace is unreadable");
    else
        bench_result(key, (double)(now - *mark) / per);
    *mark = now;
}

int bench_cmd_apdu_count(const bench_opts *o)
{
    bench_p11 m;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE rsa, ec;
    if (o->module == NULL || o->token == NULL || o->pin == NULL || o->trace == NULL) {
        bench_note("apdu-count needs --module, --token, --pin and --trace");
        return 2;
    }
    if (bench_p11_load(&m, o->module) != 0)
        return 1;
    CK_RV rv = bench_p11_init(&m);
    if (rv == CKR_OK)
        rv = bench_p11_slot(&m, o->token, &slot);
    if (rv == CKR_OK)
        rv = bench_p11_open(&m, slot, NULL, &s);
    long mark = trace_commands(o->trace);
    if (rv == CKR_OK)
        rv = m.f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)o->pin, (CK_ULONG)strlen(o->pin));
    if (rv == CKR_OK) {
        count_since(o, "login", &mark, 1);
        rv = find_key(&m, s, o->rsa_label, &rsa);
    }
    if (rv == CKR_OK) {
        count_since(o, "find_first", &mark, 1);
        rv = find_key(&m, s, o->ec_label, &ec);
    }
    if (rv == CKR_OK) {
        count_since(o, "find", &mark, 1);
        rv = sign_many(&m, s, rsa, CKM_SHA256_RSA_PKCS);
    }
    if (rv == CKR_OK) {
        count_since(o, "sign_rsa", &mark, SIGNS);
        rv = sign_many(&m, s, ec, CKM_ECDSA);
    }
    if (rv == CKR_OK)
        count_since(o, "sign_ec", &mark, SIGNS);
    if (rv != CKR_OK)
        bench_note("apdu-count: %s: %s", o->module, bench_rv_name(rv));
    bench_p11_unload(&m);
    return rv == CKR_OK ? 0 : 1;
}
