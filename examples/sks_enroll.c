/*
 * sks_enroll.c - sks-enroll, an enrollment client: it relays an issuer's
 * (sks-issuer-demo's) scenario to the SKS card behind sks-pkcs11. It is the
 * untrusted middle of both seeds: it sees public keys, wrapped and
 * encrypted keys, MACs and certificates, never a key in the clear.
 *   --scenario inject  (a) secure key injection into the user's token
 *   --scenario sks     (b) an SKS provisioning session (PIN-protected key)
 * See sks-enroll(1).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo_proto.h"
#include "enroll.h"

#ifndef SKS_MODULE_PATH
#define SKS_MODULE_PATH "sks-pkcs11.so"
#endif

void enroll_step(int step, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[client] step %2d: ", step);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

int enroll_fail(demo_enroll *e, const char *what)
{
    demo_msg m;
    fprintf(stderr, "[client] %s\n", what);
    demo_msg_init(&m, DM_ERROR);
    if (demo_msg_add_str(&m, DT_TEXT, what) == 0)
        demo_send(e->fd, &m);
    demo_msg_free(&m);
    return -1;
}

int enroll_expect(demo_enroll *e, uint8_t type, demo_msg *m)
{
    const char *err = NULL;
    demo_msg_free(m);
    if (demo_recv(e->fd, m, &err) != 0) {
        fprintf(stderr, "[client] issuer: %s\n", err);
        return -1;
    }
    if (m->type == DM_ERROR) {
        const demo_field *t = demo_msg_get(m, DT_TEXT);
        fprintf(stderr, "[client] issuer reports: %.*s\n", t ? (int)t->len : 0,
                t ? (const char *)t->value : "");
        return -1;
    }
    if (m->type != type) {
        fprintf(stderr, "[client] issuer sent message '%c', expected '%c'\n", m->type, type);
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: sks-enroll [options]\n"
                 "  --server HOST:PORT     the issuer (default 127.0.0.1:7443)\n"
                 "  --module PATH          the PKCS#11 module (default " SKS_MODULE_PATH ")\n"
                 "  --scenario inject|sks  (a) secure key injection, (b) SKS session (default "
                 "inject)\n"
                 "  --token LABEL          (a) the user's token (default: the first token)\n"
                 "  --pin PIN              (a) its user PIN (default: $SKS_PIN)\n"
                 "  --subject CN           the certificate's common name\n"
                 "  --session-key rsa|ecdh (a) K1 type: RSA-OAEP or ECDH session key (default "
                 "rsa)\n"
                 "  --pause-at-end         wait for a line on stdin before exiting\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"module", required_argument, NULL, 'm'},
        {"scenario", required_argument, NULL, 'c'},
        {"token", required_argument, NULL, 't'},
        {"pin", required_argument, NULL, 'p'},
        {"subject", required_argument, NULL, 'u'},
        {"session-key", required_argument, NULL, 'k'},
        {"pause-at-end", no_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    demo_enroll e;
    memset(&e, 0, sizeof(e));
    const char *server = "127.0.0.1:7443", *module = SKS_MODULE_PATH, *scenario = "inject";
    const char *token = NULL;
    int pause_at_end = 0, c;
    e.subject = "SKS enrolled user";
    e.pin = getenv("SKS_PIN");
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 'm':
            module = optarg;
            break;
        case 'c':
            scenario = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'p':
            e.pin = optarg;
            break;
        case 'u':
            e.subject = optarg;
            break;
        case 'k':
            if (strcmp(optarg, "ecdh") != 0 && strcmp(optarg, "rsa") != 0) {
                usage(stderr);
                return 2;
            }
            e.ecdh = strcmp(optarg, "ecdh") == 0;
            break;
        case 'P':
            pause_at_end = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    int inject = strcmp(scenario, "inject") == 0;
    if (optind != argc || (!inject && strcmp(scenario, "sks") != 0)) {
        usage(stderr);
        return 2;
    }
    if (inject && e.pin == NULL) {
        fprintf(stderr, "sks-enroll: the token's PIN is needed (--pin or SKS_PIN)\n");
        return 2;
    }
    if (demo_p11_load(&e.p11, module) != 0 ||
        demo_p11_open(&e.p11, token, inject ? e.pin : NULL) != 0)
        return 1;
    e.fd = demo_connect(server);
    if (e.fd < 0) {
        fprintf(stderr, "sks-enroll: cannot connect to %s\n", server);
        demo_p11_close(&e.p11);
        return 1;
    }
    int rc = inject ? enroll_inject(&e) : enroll_sks(&e);
    close(e.fd);
    printf("[client] enrollment %s\n", rc == 0 ? "complete" : "failed");
    fflush(stdout);
    if (pause_at_end) {
        char line[16];
        printf("[client] paused\n");
        fflush(stdout);
        if (fgets(line, sizeof(line), stdin) == NULL)
            line[0] = '\0';
    }
    demo_p11_close(&e.p11);
    return rc == 0 ? 0 : 1;
}
