/*
 * sks_issuer_demo.c - sks-issuer-demo, an issuer (CA / enrollment server)
 * that puts keys into SKS cards through an untrusted client (sks-enroll).
 * Its cryptography runs on the issuer token of sks-pkcs11 in no-card mode
 * (transport = none): the same module and the same vendor mechanisms the
 * client uses with the card, from the other side.
 *
 * It listens on 127.0.0.1 and serves each connection one scenario:
 *   inject  (a) the minidriver seed's secure key injection, with archival
 *   sks     (b) the SKS seed's sample session (PIN-protected key)
 * See sks-issuer-demo(1).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "demo_proto.h"
#include "issuer_demo.h"

#ifndef SKS_MODULE_PATH
#define SKS_MODULE_PATH "sks-pkcs11.so"
#endif

static void usage(FILE *out)
{
    fprintf(out, "usage: sks-issuer-demo [options]\n"
                 "  --state-dir DIR     issuer state: token, CA, archive (default "
                 "$XDG_DATA_HOME/sks-issuer-demo)\n"
                 "  --module PATH       the PKCS#11 module (default " SKS_MODULE_PATH ")\n"
                 "  --port N            TCP port on 127.0.0.1 (default 7443; 0: any free port)\n"
                 "  --port-file FILE    write the port once listening\n"
                 "  --key-type rsa|ec   type of the injected keys (default rsa: RSA-2048)\n"
                 "  --no-archive        do not archive injected keys\n"
                 "  --pin PIN           the issuer token's user PIN (default: none needed or "
                 "\"issuer-demo\")\n"
                 "  --secrets-out FILE  append the session keys used (audit and tests only)\n"
                 "  --manufacturer-ca PEM  (sks) the CA that certifies the cards' device keys\n"
                 "  --session-lifetime S   (sks) session lifetime in seconds (default 300)\n"
                 "  --operation-limit N    (sks) client operation limit (default 50)\n"
                 "  --once              serve one enrollment and exit with its status\n"
                 "  --recover SERIAL    print the archived key of a certificate serial as PEM\n");
}

static int mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

/* The module's configuration for no-card mode, in the state directory. */
static int write_config(const char *state_dir)
{
    char conf[4096], token[4096];
    snprintf(conf, sizeof(conf), "%s/sks-pkcs11.conf", state_dir);
    snprintf(token, sizeof(token), "%s/token", state_dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "# sks-issuer-demo: the module in no-card mode (the issuer token)\n"
            "transport = none\nstate_dir = %s\n",
            token);
    if (fclose(f) != 0)
        return -1;
    return setenv("SKS_PKCS11_CONF", conf, 1);
}

/* Open the issuer token, initialising it on first use, and log in when it asks for it. */
static int open_issuer_token(demo_issuer *d, const char *pin)
{
    demo_p11 *p = &d->p11;
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    CK_TOKEN_INFO ti;
    if (demo_check(p->f->C_GetSlotList(CK_TRUE, slots, &n), "C_GetSlotList") || n == 0 ||
        demo_check(p->f->C_GetTokenInfo(slots[0], &ti), "C_GetTokenInfo")) {
        fprintf(stderr, "the module shows no issuer token (is it in no-card mode?)\n");
        return -1;
    }
    p->slot = slots[0];
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, "SKS issuer demo", 15);
    if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
        if (demo_check(
                p->f->C_InitToken(p->slot, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin), label),
                "C_InitToken"))
            return -1;
        CK_SESSION_HANDLE s;
        if (demo_check(
                p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
                "C_OpenSession") ||
            demo_check(p->f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin)),
                       "C_Login(SO)") ||
            demo_check(p->f->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin)),
                       "C_InitPIN"))
            return -1;
        p->f->C_Logout(s);
        p->f->C_CloseSession(s);
        p->f->C_GetTokenInfo(p->slot, &ti);
    }
    if (demo_check(p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                       &p->session),
                   "C_OpenSession"))
        return -1;
    if ((ti.flags & CKF_LOGIN_REQUIRED) &&
        demo_check(p->f->C_Login(p->session, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)strlen(pin)),
                   "C_Login"))
        return -1;
    return 0;
}

/* Serve one connection: HELLO picks the scenario. */
static int serve(demo_issuer *d, int fd)
{
    demo_msg hello;
    const char *err = NULL;
    if (demo_recv(fd, &hello, &err) != 0) {
        fprintf(stderr, "[issuer] %s\n", err);
        return -1;
    }
    const demo_field *sc = demo_msg_get(&hello, DT_SCENARIO);
    int rc;
    if (hello.type != DM_HELLO || sc == NULL)
        rc = issuer_fail(fd, "expected a HELLO naming a scenario");
    else if (sc->len == 6 && memcmp(sc->value, "inject", 6) == 0)
        rc = issuer_inject(d, fd, &hello);
    else if (sc->len == 3 && memcmp(sc->value, "sks", 3) == 0)
        rc = issuer_sks(d, fd, &hello);
    else
        rc = issuer_fail(fd, "unknown scenario");
    demo_msg_free(&hello);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir", required_argument, NULL, 'd'},
        {"module", required_argument, NULL, 'm'},
        {"port", required_argument, NULL, 'p'},
        {"port-file", required_argument, NULL, 'P'},
        {"key-type", required_argument, NULL, 'k'},
        {"no-archive", no_argument, NULL, 'n'},
        {"pin", required_argument, NULL, 'i'},
        {"secrets-out", required_argument, NULL, 's'},
        {"once", no_argument, NULL, 'o'},
        {"manufacturer-ca", required_argument, NULL, 'M'},
        {"session-lifetime", required_argument, NULL, 'L'},
        {"operation-limit", required_argument, NULL, 'O'},
        {"recover", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    demo_issuer d;
    memset(&d, 0, sizeof(d));
    const char *module = SKS_MODULE_PATH, *port_file = NULL, *pin = "issuer-demo";
    const char *secrets = NULL;
    char state[4096] = "", archive[4096];
    long port = 7443, recover = -1;
    int once = 0, no_archive = 0, c;
    d.key_type = "rsa";
    d.session_lifetime = 300;
    d.operation_limit = 50;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            snprintf(state, sizeof(state), "%s", optarg);
            break;
        case 'm':
            module = optarg;
            break;
        case 'p':
            port = strtol(optarg, NULL, 10);
            break;
        case 'P':
            port_file = optarg;
            break;
        case 'k':
            d.key_type = optarg;
            break;
        case 'n':
            no_archive = 1;
            break;
        case 'i':
            pin = optarg;
            break;
        case 's':
            secrets = optarg;
            break;
        case 'o':
            once = 1;
            break;
        case 'M':
            d.manufacturer_ca = optarg;
            break;
        case 'L':
            d.session_lifetime = strtoul(optarg, NULL, 10);
            break;
        case 'O':
            d.operation_limit = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            recover = strtol(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || port < 0 || port > 65535 ||
        (strcmp(d.key_type, "rsa") != 0 && strcmp(d.key_type, "ec") != 0)) {
        usage(stderr);
        return 2;
    }
    if (state[0] == '\0') {
        const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
        if (xdg != NULL && xdg[0] == '/')
            snprintf(state, sizeof(state), "%s/sks-issuer-demo", xdg);
        else
            snprintf(state, sizeof(state), "%s/.local/share/sks-issuer-demo", home ? home : ".");
    }
    snprintf(archive, sizeof(archive), "%s/archive", state);
    d.state_dir = state;
    d.archive_dir = no_archive ? NULL : archive;
    if (mkdirs(state) != 0 || (!no_archive && mkdirs(archive) != 0) || write_config(state) != 0) {
        fprintf(stderr, "cannot prepare the state directory %s\n", state);
        return 1;
    }
    if (secrets != NULL && (d.secrets = fopen(secrets, "a")) == NULL) {
        fprintf(stderr, "cannot open %s\n", secrets);
        return 1;
    }
    if (demo_p11_load(&d.p11, module) != 0 || open_issuer_token(&d, pin) != 0 ||
        demo_ca_open(&d.ca, state) != 0) {
        fprintf(stderr, "sks-issuer-demo: cannot open the issuer token or the CA in %s\n", state);
        return 1;
    }
    d.next_serial = (uint32_t)time(NULL);
    int rc = 0;
    if (recover >= 0) {
        rc = issuer_recover(&d, (uint32_t)recover) == 0 ? 0 : 1;
    } else {
        uint16_t bound = 0;
        int ls = demo_listen((uint16_t)port, &bound);
        if (ls < 0) {
            fprintf(stderr, "sks-issuer-demo: cannot listen on 127.0.0.1:%ld\n", port);
            rc = 1;
        } else {
            printf("[issuer] listening on 127.0.0.1:%u (state %s)\n", bound, state);
            fflush(stdout);
            if (port_file != NULL) {
                FILE *f = fopen(port_file, "w");
                if (f != NULL) {
                    fprintf(f, "%u\n", bound);
                    fclose(f);
                }
            }
            for (;;) {
                int fd = accept(ls, NULL, NULL);
                if (fd < 0 && errno == EINTR)
                    continue;
                if (fd < 0)
                    break;
                int r = serve(&d, fd);
                close(fd);
                printf("[issuer] enrollment %s\n", r == 0 ? "complete" : "failed");
                fflush(stdout);
                if (once) {
                    rc = r == 0 ? 0 : 1;
                    break;
                }
            }
            close(ls);
        }
    }
    demo_ca_close(&d.ca);
    demo_p11_close(&d.p11);
    if (d.secrets != NULL)
        fclose(d.secrets);
    return rc;
}
