/*
 * bench_main.h - the commands of sks-bench and the options they share.
 * Each command measures one thing and prints result records
 * (bench_util.h); `report` prints the table from a file of records.
 */
#ifndef BENCH_MAIN_H
#define BENCH_MAIN_H

#define BENCH_MAX_THREADS 64

typedef struct {
    const char *module;    /* --module: PKCS#11 module path */
    const char *token;     /* --token: token label */
    const char *pin;       /* --pin: user PIN */
    const char *peer;      /* --peer: name in result keys (sks-emb, sks-pcsc, softhsm) */
    const char *rsa_label; /* --rsa-label: label of the RSA-2048 key pair (default "rsa") */
    const char *ec_label;  /* --ec-label: label of the EC P-256 key pair (default "ec") */
    const char *state_dir; /* --state-dir: card state / token directory */
    const char *reader;    /* --reader: PC/SC reader name */
    const char *trace;     /* --trace: the module's APDU trace file */
    const char *name;      /* --name: a label for result keys (prov: disk, tmpfs) */
    const char *records;   /* --records: the file of result records (report) */
    unsigned count;        /* --count */
    unsigned first;        /* --first: index of the first key to create (populate) */
    unsigned reps;         /* --reps: repetitions (medians) */
    int threads;           /* --threads: N of the N-thread figures */
    double seconds;        /* --seconds: length of each timed loop */
} bench_opts;

/* Key i (1-based) of a populated token: CKA_ID "k%06u", CKA_LABEL "key %06u". */
#define BENCH_KEY_ID_FMT    "k%06u"
#define BENCH_KEY_LABEL_FMT "key %06u"

int bench_cmd_raw(const bench_opts *o);          /* bench_sign.c */
int bench_cmd_sign(const bench_opts *o);         /* bench_sign.c */
int bench_cmd_load(const bench_opts *o);         /* bench_load.c */
int bench_cmd_scale(const bench_opts *o);        /* bench_scale.c */
int bench_cmd_populate_p11(const bench_opts *o); /* bench_populate.c */
int bench_cmd_populate_sks(const bench_opts *o); /* bench_populate.c */
int bench_cmd_prov(const bench_opts *o);         /* bench_prov.c */
int bench_cmd_inject(const bench_opts *o);       /* bench_inject.c */
int bench_cmd_apdu_rate(const bench_opts *o);    /* bench_apdu.c */
int bench_cmd_apdu_count(const bench_opts *o);   /* bench_apdu.c */
int bench_cmd_report(const bench_opts *o);       /* bench_report.c */

#endif
