/*
 * demo_link.h - the message link between sks-issuer-demo and sks-enroll:
 * a TCP connection carrying messages made of tagged fields. It is the
 * examples' own transport, not part of the module: what crosses it is
 * exactly what an untrusted client relays (public keys, wrapped or
 * encrypted keys, MACs, certificates), never a key in the clear.
 *
 * Message: type (1 byte), body length (4 bytes, big endian), body.
 * Body: fields, each tag (1 byte), length (4 bytes), value.
 */
#ifndef SKS_DEMO_LINK_H
#define SKS_DEMO_LINK_H

#include <stddef.h>
#include <stdint.h>

#define DEMO_MSG_MAX    (256u * 1024u)
#define DEMO_FIELDS_MAX 32

typedef struct {
    uint8_t tag;
    uint32_t len;
    const uint8_t *value; /* points into the message's buffer */
} demo_field;

typedef struct {
    uint8_t type;
    uint8_t *buf; /* body, owned */
    size_t len;
    demo_field f[DEMO_FIELDS_MAX];
    size_t nfields;
    /* While building: the body so far. */
    size_t cap;
} demo_msg;

void demo_msg_init(demo_msg *m, uint8_t type);
void demo_msg_free(demo_msg *m); /* zeroizes the body */
/* Append a field. 0 or -1 (too large / out of memory). */
int demo_msg_add(demo_msg *m, uint8_t tag, const void *value, size_t len);
int demo_msg_add_u32(demo_msg *m, uint8_t tag, uint32_t v);
int demo_msg_add_str(demo_msg *m, uint8_t tag, const char *s);
/* The first field with this tag, or NULL. */
const demo_field *demo_msg_get(const demo_msg *m, uint8_t tag);
/* A 4-byte field as a number; -1 when missing or malformed. */
int demo_msg_get_u32(const demo_msg *m, uint8_t tag, uint32_t *v);

/* Send / receive one message on a connected socket. 0 or -1 (message in *err). */
int demo_send(int fd, const demo_msg *m);
int demo_recv(int fd, demo_msg *m, const char **err);

/* Listen on 127.0.0.1:port (0: any free port); the port is returned in *bound. -1 on error. */
int demo_listen(uint16_t port, uint16_t *bound);
/* Connect to "host:port". -1 on error. */
int demo_connect(const char *host_port);

#endif
