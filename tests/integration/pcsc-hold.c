/*
 * pcsc-hold.c - another application that keeps the card to itself for a
 * while, for t-pcsc-faults.sh: it connects to READER (shared, as every
 * application does), takes a PC/SC transaction, creates READY_FILE, holds
 * the transaction for MS milliseconds and ends it. Meanwhile the module,
 * in another process, must wait for the card rather than fail.
 *
 *   pcsc-hold READER MS READY_FILE
 *
 * Prints "held" when the transaction is taken and "released after <s> s"
 * when it ends. Exit status 0, 1 when a PC/SC call failed, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <winscard.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int failed(const char *what, LONG rv)
{
    fprintf(stderr, "pcsc-hold: %s: %s (0x%08lx)\n", what, pcsc_stringify_error(rv),
            (unsigned long)rv);
    return 1;
}

int main(int argc, char **argv)
{
    char *end;
    long ms = argc == 4 ? strtol(argv[2], &end, 10) : -1;
    if (argc != 4 || *end != '\0' || ms < 0 || ms > 60000) {
        fprintf(stderr, "usage: %s READER MS READY_FILE\n", argv[0]);
        return 2;
    }
    SCARDCONTEXT ctx;
    SCARDHANDLE card;
    DWORD proto;
    LONG rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
    if (rv != SCARD_S_SUCCESS)
        return failed("SCardEstablishContext", rv);
    rv = SCardConnect(ctx, argv[1], SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                      &card, &proto);
    if (rv != SCARD_S_SUCCESS)
        return failed("SCardConnect", rv);
    rv = SCardBeginTransaction(card);
    if (rv != SCARD_S_SUCCESS)
        return failed("SCardBeginTransaction", rv);
    double t0 = now();
    FILE *f = fopen(argv[3], "w");
    if (f == NULL || fclose(f) != 0) {
        fprintf(stderr, "pcsc-hold: cannot create %s\n", argv[3]);
        return 1;
    }
    printf("held\n");
    fflush(stdout);
    usleep((useconds_t)(ms * 1000));
    rv = SCardEndTransaction(card, SCARD_LEAVE_CARD);
    printf("released after %.3f s\n", now() - t0);
    if (rv != SCARD_S_SUCCESS)
        return failed("SCardEndTransaction", rv);
    SCardDisconnect(card, SCARD_LEAVE_CARD);
    SCardReleaseContext(ctx);
    return 0;
}
