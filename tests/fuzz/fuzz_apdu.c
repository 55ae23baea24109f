/*
 * fuzz_apdu.c - libFuzzer target for the card's entry points.
 *
 * Input byte 0 chooses the door: even = a sequence of command APDUs (each
 * preceded by a 2-byte big-endian length) sent through sks_card_apdu() after
 * a SELECT, odd = the rest of the input as one SKS call through
 * sks_card_call(), which reaches the method decoders directly. The card
 * lives in a temporary state directory for the whole run, so state that
 * one input creates is seen by the next, as on a real card.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "card/sks_card.h"
#include "protocol/sks_apdu.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sks_card *fuzz_card;
static char fuzz_dir[] = "/tmp/sks-fuzz-XXXXXX";
static uint8_t fuzz_resp[SKS_APDU_MAX];

static void fuzz_cleanup(void)
{
    char cmd[64];
    sks_card_close(fuzz_card);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fuzz_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_apdu: could not remove %s\n", fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    sks_card_init_opts opts;
    (void)argc;
    (void)argv;
    memset(&opts, 0, sizeof(opts));
    if (mkdtemp(fuzz_dir) == NULL || sks_card_init_state(fuzz_dir, &opts, err, sizeof(err)) != 0 ||
        (fuzz_card = sks_card_open(fuzz_dir, err, sizeof(err))) == NULL) {
        fprintf(stderr, "fuzz_apdu: cannot create a card: %s\n", err);
        abort();
    }
    atexit(fuzz_cleanup);
    return 0;
}

static void fuzz_apdus(const uint8_t *p, size_t n)
{
    static const uint8_t select[] = {0x00, 0xA4, 0x04, 0x00, SKS_AID_LEN, SKS_AID_BYTES};
    sks_card_apdu(fuzz_card, select, sizeof(select), fuzz_resp, sizeof(fuzz_resp));
    while (n >= 2) {
        size_t len = sks_be16_get(p);
        p += 2;
        n -= 2;
        if (len > n)
            len = n;
        size_t r = sks_card_apdu(fuzz_card, p, len, fuzz_resp, sizeof(fuzz_resp));
        if (r < 2 || r > sizeof(fuzz_resp))
            abort(); /* every answer carries a status word and fits */
        p += len;
        n -= len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    sks_card_reset(fuzz_card);
    if ((data[0] & 1) == 0) {
        fuzz_apdus(data + 1, size - 1);
    } else {
        sks_writer answer;
        sks_writer_init(&answer);
        sks_card_call(fuzz_card, data + 1, size - 1, &answer);
        if (answer.failed || answer.len == 0)
            abort(); /* every call gets an answer with a status byte */
        sks_writer_free(&answer);
    }
    return 0;
}
