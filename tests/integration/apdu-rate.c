/*
 * apdu-rate.c - t-sks-card's PC/SC client: talks to the SKS card behind a
 * reader directly through pcsc-lite (one process for thousands of APDUs,
 * which opensc-tool cannot do) to check the framing and measure the APDU
 * round-trip rate through pcscd and vpcd.
 *
 *   apdu-rate READER COUNT
 *
 * Prints one line per check, "ok ..." or "FAIL ...", and exits 1 on any
 * failure:
 *   - SELECT of the SKS application answers 90 00;
 *   - getDeviceInfo with Le 00 (its answer is longer than 256 bytes) answers
 *     61 xx, the GET RESPONSEs that follow hand out the rest until 90 00, and
 *     the whole answer starts with status 00;
 *   - after a card reset (SCardReconnect) a call without SELECT answers
 *     69 85 (the card forgot the selection), and SELECT works again;
 *   - COUNT enumerateKeys calls each answer status 00 and 90 00; the line
 *     "rate: N APDUs per second" gives the figure.
 *
 * Built by t-sks-card.sh with cc and pkg-config libpcsclite.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <winscard.h>

static SCARDCONTEXT ctx;
static SCARDHANDLE card;
static DWORD protocol;
static int failures;

static const BYTE select_sks[] = {0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0,
                                  0x53, 0x4B, 0x53, 0x01, 0x00, 0x01};
/* getDeviceInfo (method 0x40), Le 00: up to 256 bytes at once. */
static const BYTE get_device_info[] = {0x80, 0x10, 0x00, 0x00, 0x01, 0x40, 0x00};
/* enumerateKeys (method 0x41) from handle 0. */
static const BYTE enumerate_keys[] = {0x80, 0x10, 0x00, 0x00, 0x05, 0x41,
                                      0x00, 0x00, 0x00, 0x00, 0x00};

static void result(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void result(int ok, const char *fmt, ...)
{
    va_list ap;
    printf("%s ", ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    if (!ok)
        failures++;
}

/* One APDU; returns the SW (-1 on a PC/SC error) and the data length in *n. */
static long transmit(const BYTE *cmd, size_t cmd_len, BYTE *resp, DWORD *n)
{
    const SCARD_IO_REQUEST *pci = protocol == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
    DWORD len = 65538;
    LONG rv = SCardTransmit(card, pci, cmd, (DWORD)cmd_len, NULL, resp, &len);
    if (rv != SCARD_S_SUCCESS) {
        fprintf(stderr, "SCardTransmit: %s\n", pcsc_stringify_error(rv));
        return -1;
    }
    if (len < 2)
        return -1;
    *n = len - 2;
    return (long)resp[len - 2] << 8 | resp[len - 1];
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check_select(const char *when)
{
    static BYTE resp[65538];
    DWORD n;
    long sw = transmit(select_sks, sizeof(select_sks), resp, &n);
    result(sw == 0x9000 && n == 0, "SELECT %s: SW %04lX", when, sw);
}

/* getDeviceInfo through 61xx and GET RESPONSE, as docs/protocol.md section 4 says. */
static void check_device_info(void)
{
    static BYTE resp[65538], answer[65536];
    size_t total = 0, parts = 0;
    DWORD n;
    long sw = transmit(get_device_info, sizeof(get_device_info), resp, &n);
    result((sw & 0xFF00) == 0x6100 && n == 256,
           "getDeviceInfo with Le 00: 256 bytes and SW 61xx (got %lu bytes, SW %04lX)",
           (unsigned long)n, sw);
    while (sw >= 0) {
        if (total + n > sizeof(answer))
            break;
        memcpy(answer + total, resp, n);
        total += n;
        parts++;
        if ((sw & 0xFF00) != 0x6100 || parts > 300)
            break;
        BYTE get_response[] = {0x00, 0xC0, 0x00, 0x00, (BYTE)(sw & 0xFF)};
        sw = transmit(get_response, sizeof(get_response), resp, &n);
    }
    result(sw == 0x9000 && parts >= 2 && total > 256 && answer[0] == 0x00,
           "getDeviceInfo answer: %zu bytes in %zu parts, final SW %04lX, status %02X", total,
           parts, sw, total > 0 ? answer[0] : 0xFF);
}

/* A reset makes the card forget the selection: a call answers 6985 until SELECT. */
static void check_reset(void)
{
    static BYTE resp[65538];
    DWORD n;
    LONG rv = SCardReconnect(card, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                             SCARD_RESET_CARD, &protocol);
    result(rv == SCARD_S_SUCCESS, "SCardReconnect with SCARD_RESET_CARD: %s",
           pcsc_stringify_error(rv));
    long sw = transmit(enumerate_keys, sizeof(enumerate_keys), resp, &n);
    result(sw == 0x6985, "after the reset a call without SELECT answers 6985 (got %04lX)", sw);
    check_select("after the reset");
}

static void measure_rate(long count)
{
    static BYTE resp[65538];
    long bad = 0;
    DWORD n;
    double t0 = now_s();
    for (long i = 0; i < count; i++) {
        long sw = transmit(enumerate_keys, sizeof(enumerate_keys), resp, &n);
        if (sw != 0x9000 || n < 1 || resp[0] != 0x00)
            bad++;
    }
    double dt = now_s() - t0;
    result(bad == 0, "%ld enumerateKeys calls answered status 00 and 9000 (%ld did not)", count,
           bad);
    printf("rate: %.0f APDUs per second (%ld in %.3f s, %.3f ms each)\n",
           dt > 0 ? (double)count / dt : 0.0, count, dt, dt * 1000.0 / (double)count);
}

int main(int argc, char **argv)
{
    if (argc != 3 || atol(argv[2]) < 1) {
        fprintf(stderr, "usage: %s READER COUNT\n", argv[0]);
        return 2;
    }
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
    if (rv != SCARD_S_SUCCESS) {
        result(0, "SCardEstablishContext: %s", pcsc_stringify_error(rv));
        return 1;
    }
    rv = SCardConnect(ctx, argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                      &card, &protocol);
    result(rv == SCARD_S_SUCCESS, "SCardConnect '%s': %s", argv[1], pcsc_stringify_error(rv));
    if (rv != SCARD_S_SUCCESS) {
        SCardReleaseContext(ctx);
        return 1;
    }
    check_select("of the SKS application");
    check_device_info();
    check_reset();
    measure_rate(atol(argv[2]));
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return failures == 0 ? 0 : 1;
}
