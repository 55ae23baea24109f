/*
 * demo_link.c - framing and sockets of the examples' message link
 * (demo_link.h). Every length read from the peer is checked against the
 * message bounds before use.
 */
#include "demo_link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void demo_msg_init(demo_msg *m, uint8_t type)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
}

void demo_msg_free(demo_msg *m)
{
    if (m->buf != NULL) {
        OPENSSL_cleanse(m->buf, m->cap);
        free(m->buf);
    }
    memset(m, 0, sizeof(*m));
}

int demo_msg_add(demo_msg *m, uint8_t tag, const void *value, size_t len)
{
    if (m->nfields >= DEMO_FIELDS_MAX || len > DEMO_MSG_MAX || m->len + 5 + len > DEMO_MSG_MAX)
        return -1;
    size_t need = m->len + 5 + len;
    if (need > m->cap) {
        size_t cap = need * 2;
        uint8_t *nb = malloc(cap);
        if (nb == NULL)
            return -1;
        if (m->buf != NULL) {
            memcpy(nb, m->buf, m->len);
            OPENSSL_cleanse(m->buf, m->cap);
            free(m->buf);
        }
        m->buf = nb;
        m->cap = cap;
        /* Field views point into the old buffer: rebuild them. */
        size_t off = 0;
        for (size_t i = 0; i < m->nfields; i++) {
            m->f[i].value = m->buf + off + 5;
            off += 5 + m->f[i].len;
        }
    }
    uint8_t *p = m->buf + m->len;
    p[0] = tag;
    put32(p + 1, (uint32_t)len);
    if (len > 0)
        memcpy(p + 5, value, len);
    m->f[m->nfields].tag = tag;
    m->f[m->nfields].len = (uint32_t)len;
    m->f[m->nfields].value = p + 5;
    m->nfields++;
    m->len = need;
    return 0;
}

int demo_msg_add_u32(demo_msg *m, uint8_t tag, uint32_t v)
{
    uint8_t b[4];
    put32(b, v);
    return demo_msg_add(m, tag, b, sizeof(b));
}

int demo_msg_add_str(demo_msg *m, uint8_t tag, const char *s)
{
    return demo_msg_add(m, tag, s, strlen(s));
}

const demo_field *demo_msg_get(const demo_msg *m, uint8_t tag)
{
    for (size_t i = 0; i < m->nfields; i++)
        if (m->f[i].tag == tag)
            return &m->f[i];
    return NULL;
}

int demo_msg_get_u32(const demo_msg *m, uint8_t tag, uint32_t *v)
{
    const demo_field *f = demo_msg_get(m, tag);
    if (f == NULL || f->len != 4)
        return -1;
    *v = get32(f->value);
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int demo_send(int fd, const demo_msg *m)
{
    uint8_t head[5];
    head[0] = m->type;
    put32(head + 1, (uint32_t)m->len);
    if (write_all(fd, head, sizeof(head)) != 0)
        return -1;
    return m->len > 0 ? write_all(fd, m->buf, m->len) : 0;
}

int demo_recv(int fd, demo_msg *m, const char **err)
{
    uint8_t head[5];
    demo_msg_init(m, 0);
    if (read_all(fd, head, sizeof(head)) != 0) {
        *err = "connection closed";
        return -1;
    }
    uint32_t len = get32(head + 1);
    if (len > DEMO_MSG_MAX) {
        *err = "message too large";
        return -1;
    }
    m->type = head[0];
    m->buf = malloc(len > 0 ? len : 1);
    if (m->buf == NULL) {
        *err = "out of memory";
        return -1;
    }
    m->cap = len > 0 ? len : 1;
    if (read_all(fd, m->buf, len) != 0) {
        *err = "connection closed inside a message";
        demo_msg_free(m);
        return -1;
    }
    m->len = len;
    size_t off = 0;
    while (off < len) {
        if (len - off < 5 || m->nfields >= DEMO_FIELDS_MAX) {
            *err = "malformed message";
            demo_msg_free(m);
            return -1;
        }
        uint32_t flen = get32(m->buf + off + 1);
        if (flen > len - off - 5) {
            *err = "malformed field length";
            demo_msg_free(m);
            return -1;
        }
        m->f[m->nfields].tag = m->buf[off];
        m->f[m->nfields].len = flen;
        m->f[m->nfields].value = m->buf + off + 5;
        m->nfields++;
        off += 5 + flen;
    }
    return 0;
}

int demo_listen(uint16_t port, uint16_t *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return -1;
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

int demo_connect(const char *host_port)
{
    char host[256];
    const char *colon = strrchr(host_port, ':');
    if (colon == NULL || (size_t)(colon - host_port) >= sizeof(host))
        return -1;
    memcpy(host, host_port, (size_t)(colon - host_port));
    host[colon - host_port] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}
