/*
 * evil-relay.c - an adversarial relay for the provisioning tests: it sits
 * between sks-issuer-demo and sks-enroll (the examples' message link,
 * examples/demo_link.h), forwards every message, and attacks one of them
 * the way a compromised client or network could:
 *
 *   flip:T:TAG[:N]      flip one byte in the middle of field TAG of the N-th
 *                       message of type T from the issuer (default N = 1)
 *   truncate:T:TAG[:N]  cut that field to half its length
 *   replay:T:N          send the first message of type T again instead of the N-th
 *   swap:T:N            deliver the N-th and (N+1)-th messages of type T in reverse order
 *   delay:SECONDS:T[:N] hold that message for SECONDS before forwarding it
 *   pass                change nothing (for attacks made by the issuer's settings)
 *   certswap:FILE       replace the device certificate (DP_DEVICE_CERT) the client
 *                       sends to the issuer with the DER certificate in FILE
 *
 * usage: evil-relay --upstream HOST:PORT --port-file FILE --mode MODE
 * It serves one connection, prints what it did, and exits when either side
 * closes.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../examples/demo_link.h"
#include "../../examples/demo_proto.h"

typedef struct {
    char kind[16];
    uint8_t type;
    uint8_t tag;
    unsigned n;
    unsigned seconds;
    const char *file;
} attack;

static int parse_mode(const char *mode, attack *a)
{
    memset(a, 0, sizeof(*a));
    a->n = 1;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", mode);
    char *kind = strtok(buf, ":");
    if (kind == NULL)
        return -1;
    snprintf(a->kind, sizeof(a->kind), "%s", kind);
    if (strcmp(kind, "pass") == 0)
        return 0;
    if (strcmp(kind, "certswap") == 0) {
        a->file = strchr(mode, ':') ? strchr(mode, ':') + 1 : NULL;
        return a->file ? 0 : -1;
    }
    if (strcmp(kind, "delay") == 0) {
        char *s = strtok(NULL, ":");
        if (s == NULL)
            return -1;
        a->seconds = (unsigned)atoi(s);
    }
    char *t = strtok(NULL, ":");
    if (t == NULL || strlen(t) != 1)
        return -1;
    a->type = (uint8_t)t[0];
    if (strcmp(kind, "flip") == 0 || strcmp(kind, "truncate") == 0) {
        char *tag = strtok(NULL, ":");
        if (tag == NULL)
            return -1;
        a->tag = (uint8_t)atoi(tag);
    }
    char *n = strtok(NULL, ":");
    if (n != NULL)
        a->n = (unsigned)atoi(n);
    return a->n > 0 ? 0 : -1;
}

/* A copy of m with field `tag` changed by `edit` (flip or truncate). */
static int rebuild(const demo_msg *m, uint8_t tag, int truncate, demo_msg *out)
{
    demo_msg_init(out, m->type);
    int done = 0;
    for (size_t i = 0; i < m->nfields; i++) {
        const demo_field *f = &m->f[i];
        if (f->tag == tag && !done && f->len > 0) {
            uint8_t *v = malloc(f->len);
            memcpy(v, f->value, f->len);
            size_t len = f->len;
            if (truncate)
                len /= 2;
            else
                v[len / 2] ^= 0x01;
            int rc = demo_msg_add(out, f->tag, v, len);
            free(v);
            if (rc != 0)
                return -1;
            done = 1;
        } else if (demo_msg_add(out, f->tag, f->value, f->len) != 0) {
            return -1;
        }
    }
    return done ? 0 : -1;
}

static int certswap(const demo_msg *m, const char *file, demo_msg *out)
{
    FILE *f = fopen(file, "rb");
    static uint8_t der[65536];
    size_t n = f ? fread(der, 1, sizeof(der), f) : 0;
    if (f)
        fclose(f);
    if (n == 0)
        return -1;
    demo_msg_init(out, m->type);
    int done = 0;
    for (size_t i = 0; i < m->nfields; i++) {
        const demo_field *fl = &m->f[i];
        int swap = fl->tag == DP_DEVICE_CERT && !done;
        if (demo_msg_add(out, fl->tag, swap ? der : fl->value, swap ? n : fl->len) != 0)
            return -1;
        done |= swap;
    }
    return done ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *upstream = NULL, *port_file = NULL, *mode = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--upstream") == 0)
            upstream = argv[i + 1];
        else if (strcmp(argv[i], "--port-file") == 0)
            port_file = argv[i + 1];
        else if (strcmp(argv[i], "--mode") == 0)
            mode = argv[i + 1];
    }
    attack a;
    if (upstream == NULL || port_file == NULL || mode == NULL || parse_mode(mode, &a) != 0) {
        fprintf(stderr, "usage: evil-relay --upstream HOST:PORT --port-file FILE --mode MODE\n");
        return 2;
    }
    uint16_t port = 0;
    int ls = demo_listen(0, &port);
    FILE *pf = fopen(port_file, "w");
    if (ls < 0 || pf == NULL)
        return 2;
    fprintf(pf, "%u\n", port);
    fclose(pf);
    int client = accept(ls, NULL, NULL);
    int server = demo_connect(upstream);
    if (client < 0 || server < 0) {
        fprintf(stderr, "evil-relay: cannot connect the two sides\n");
        return 2;
    }
    unsigned seen[256] = {0};
    demo_msg first_of_type, held;
    int have_first = 0, holding = 0, swapped = 0;
    struct pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0)
            break;
        for (int side = 0; side < 2; side++) {
            if (!(p[side].revents & (POLLIN | POLLHUP)))
                continue;
            demo_msg m, edited;
            const char *err = NULL;
            if (demo_recv(p[side].fd, &m, &err) != 0)
                goto done;
            int to = side == 0 ? server : client;
            const demo_msg *send = &m;
            demo_msg_init(&edited, m.type);
            if (side == 0 && strcmp(a.kind, "certswap") == 0 && !swapped &&
                certswap(&m, a.file, &edited) == 0) {
                swapped = 1;
                printf("evil-relay: replaced the card's device certificate\n");
                send = &edited;
            }
            if (side == 1) {
                unsigned nth = ++seen[m.type];
                int target = m.type == a.type && nth == a.n;
                if (m.type == a.type && nth == 1 && !have_first) {
                    demo_msg_init(&first_of_type, m.type);
                    for (size_t i = 0; i < m.nfields; i++)
                        demo_msg_add(&first_of_type, m.f[i].tag, m.f[i].value, m.f[i].len);
                    have_first = 1;
                }
                if (target && (strcmp(a.kind, "flip") == 0 || strcmp(a.kind, "truncate") == 0)) {
                    if (rebuild(&m, a.tag, a.kind[0] == 't', &edited) == 0) {
                        printf("evil-relay: %s field %u of message '%c' #%u\n", a.kind, a.tag,
                               m.type, nth);
                        send = &edited;
                    }
                } else if (target && strcmp(a.kind, "replay") == 0 && have_first) {
                    printf("evil-relay: replayed message '%c' #1 as #%u\n", m.type, nth);
                    send = &first_of_type;
                } else if (target && strcmp(a.kind, "delay") == 0) {
                    printf("evil-relay: holding message '%c' #%u for %u s\n", m.type, nth,
                           a.seconds);
                    fflush(stdout);
                    sleep(a.seconds);
                } else if (target && strcmp(a.kind, "swap") == 0) {
                    held = m;
                    holding = 1;
                    demo_msg_free(&edited);
                    continue;
                } else if (holding && m.type == a.type && nth == a.n + 1) {
                    printf("evil-relay: delivered message '%c' #%u before #%u\n", m.type, nth, a.n);
                    demo_send(to, &m);
                    send = &held;
                    holding = 0;
                }
            }
            fflush(stdout);
            int rc = demo_send(to, send);
            if (send == &held)
                demo_msg_free(&held);
            demo_msg_free(&edited);
            demo_msg_free(&m);
            if (rc != 0)
                goto done;
        }
    }
done:
    close(client);
    close(server);
    close(ls);
    return 0;
}
