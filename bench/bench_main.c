/*
 * bench_main.c - sks-bench: the benchmark program behind bench/run-bench.sh.
 *
 *   sks-bench COMMAND [options]
 *
 * Commands (each prints result records "KEY VALUE" on standard output):
 *   raw           libcrypto sign rates (the limit)
 *   sign          sign rates through a PKCS#11 module
 *   load          dlopen .. C_Finalize of a module, median
 *   scale         find, init+login, RSS and state size of a populated token
 *   populate-sks  create keys on an SKS card state (one provisioning session)
 *   populate-p11  create keys on a PKCS#11 token (C_GenerateKeyPair)
 *   prov          SKS provisioning sessions per second and their crypto bound
 *   inject        issuer-side injection blobs per second (no-card mode), raw bound
 *   apdu-rate     APDU round trips per second through PC/SC
 *   apdu-count    APDUs per operation, from the module's APDU trace
 *   report        the table, from a file of result records (--records FILE)
 * See bench/README.md.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_main.h"

static const struct {
    const char *name;
    int (*fn)(const bench_opts *o);
} commands[] = {
    {"raw", bench_cmd_raw},
    {"sign", bench_cmd_sign},
    {"load", bench_cmd_load},
    {"scale", bench_cmd_scale},
    {"populate-sks", bench_cmd_populate_sks},
    {"populate-p11", bench_cmd_populate_p11},
    {"prov", bench_cmd_prov},
    {"inject", bench_cmd_inject},
    {"apdu-rate", bench_cmd_apdu_rate},
    {"apdu-count", bench_cmd_apdu_count},
    {"report", bench_cmd_report},
};

static void usage(void)
{
    fprintf(stderr, "usage: sks-bench COMMAND [--module SO] [--token LABEL] [--pin PIN]\n"
                    "         [--peer NAME] [--rsa-label L] [--ec-label L] [--state-dir DIR]\n"
                    "         [--reader NAME] [--trace FILE] [--name NAME] [--count N]\n"
                    "         [--first N] [--reps N] [--threads N] [--seconds S] [--records FILE]\n"
                    "commands:");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(stderr, " %s", commands[i].name);
    fputc('\n', stderr);
}

/* A whole number in 1..max from an option, or -1. */
static long number(const char *s, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s != '\0' && *end == '\0' && v >= 1 && v <= max ? v : -1;
}

static int parse(int argc, char **argv, bench_opts *o)
{
    static const struct option options[] = {
        {"module", required_argument, NULL, 'm'},
        {"token", required_argument, NULL, 't'},
        {"pin", required_argument, NULL, 'p'},
        {"peer", required_argument, NULL, 'P'},
        {"rsa-label", required_argument, NULL, 'r'},
        {"ec-label", required_argument, NULL, 'e'},
        {"state-dir", required_argument, NULL, 'd'},
        {"reader", required_argument, NULL, 'R'},
        {"trace", required_argument, NULL, 'T'},
        {"name", required_argument, NULL, 'n'},
        {"count", required_argument, NULL, 'c'},
        {"first", required_argument, NULL, 'f'},
        {"reps", required_argument, NULL, 'k'},
        {"threads", required_argument, NULL, 'j'},
        {"seconds", required_argument, NULL, 's'},
        {"records", required_argument, NULL, 'F'},
        {NULL, 0, NULL, 0},
    };
    long v;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'm':
            o->module = optarg;
            break;
        case 't':
            o->token = optarg;
            break;
        case 'p':
            o->pin = optarg;
            break;
        case 'P':
            o->peer = optarg;
            break;
        case 'r':
            o->rsa_label = optarg;
            break;
        case 'e':
            o->ec_label = optarg;
            break;
        case 'd':
            o->state_dir = optarg;
            break;
        case 'R':
            o->reader = optarg;
            break;
        case 'T':
            o->trace = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'F':
            o->records = optarg;
            break;
        case 'c':
        case 'f':
        case 'k':
            if ((v = number(optarg, 1000000)) < 0)
                return -1;
            if (opt == 'c')
                o->count = (unsigned)v;
            else if (opt == 'f')
                o->first = (unsigned)v;
            else
                o->reps = (unsigned)v;
            break;
        case 'j':
            if ((v = number(optarg, BENCH_MAX_THREADS)) < 0)
                return -1;
            o->threads = (int)v;
            break;
        case 's':
            o->seconds = strtod(optarg, NULL);
            if (o->seconds <= 0 || o->seconds > 600)
                return -1;
            break;
        default:
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

int main(int argc, char **argv)
{
    bench_opts o;
    memset(&o, 0, sizeof(o));
    o.peer = "module";
    o.rsa_label = "rsa";
    o.ec_label = "ec";
    o.name = "default";
    o.first = 1;
    o.reps = 5;
    o.seconds = 2;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o.threads = cpus < 2 ? 2 : cpus > BENCH_MAX_THREADS ? BENCH_MAX_THREADS : (int)cpus;

    if (argc < 2) {
        usage();
        return 2;
    }
    const char *cmd = argv[1];
    if (parse(argc - 1, argv + 1, &o) != 0) {
        usage();
        return 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, cmd) == 0)
            return commands[i].fn(&o);
    }
    usage();
    return 2;
}
