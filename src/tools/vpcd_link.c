/*
 * vpcd_link.c - the vpcd protocol on the card's side (see vpcd_link.h):
 * connecting to the reader, serving its messages with the card engine, and
 * reconnecting when pcscd goes away or is not up yet.
 *
 * Latency: vpcd sends a command and waits for the answer, one at a time, so
 * every APDU is a small request and a small reply. Nagle's algorithm would
 * hold the reply back until the request's ACK, and Linux delays that ACK
 * (about 40 ms) unless TCP_QUICKACK is set; the kernel clears TCP_QUICKACK
 * again after a while, so it is set before every receive. Both together
 * take an APDU round trip from ~48 ms to well under a millisecond.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "protocol/sks_apdu.h"
#include "protocol/sks_crypto.h"
#include "protocol/sks_msg.h"
#include "tools/vpcd_link.h"

const uint8_t vpcd_atr[VPCD_ATR_LEN] = {
    0x3B, 0x8E, 0x80, 0x01,                          /* TS, T0, TD1, TD2 */
    0x80,                                            /* category: COMPACT-TLV */
    0x58, 'S',  'K',  'S',  ' ', 'c', 'a', 'r', 'd', /* card issuer's data */
    0x73, 0x80, 0x00, 0xC0,                          /* card capabilities */
    0x9B,                                            /* TCK */
};

/* How long a message already begun may take to arrive once a stop was asked. */
#define VPCD_STOP_GRACE_MS 2000
/* How long one connection attempt may take. */
#define VPCD_CONNECT_TIMEOUT_MS 5000

void vpcd_link_init(vpcd_link *link, sks_card *card)
{
    memset(link, 0, sizeof(*link));
    link->card = card;
    link->host = VPCD_DEFAULT_HOST;
    link->port = VPCD_DEFAULT_PORT;
    link->retry_ms = 1000;
    link->log_level = VPCD_LOG_ERROR;
}

__attribute__((format(printf, 3, 4))) static void link_log(vpcd_link *link, int level,
                                                           const char *fmt, ...)
{
    va_list ap;
    if (link->log == NULL || level > link->log_level)
        return;
    va_start(ap, fmt);
    link->log(link->log_ctx, level, fmt, ap);
    va_end(ap);
}

static int stop_requested(const vpcd_link *link)
{
    return link->stop != NULL && atomic_load(link->stop) != 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum wait_result { WAIT_READY = 1, WAIT_TIMEOUT = 0, WAIT_ERROR = -1, WAIT_STOPPED = -2 };

/*
 * Wait until `fd` is ready for `events` (fd < 0: just wait), at most
 * `timeout_ms` (< 0: no limit), with the link's wait mask in force. With
 * `honor_stop`, a stop request ends the wait at once; without it (in the
 * middle of a message) the wait is cut to VPCD_STOP_GRACE_MS instead.
 */
static enum wait_result wait_fd(vpcd_link *link, int fd, short events, int timeout_ms,
                                int honor_stop)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        struct timespec ts, *tsp = NULL;
        if (stop_requested(link)) {
            if (honor_stop)
                return WAIT_STOPPED;
            long long grace = now_ms() + VPCD_STOP_GRACE_MS;
            if (deadline < 0 || grace < deadline)
                deadline = grace;
        }
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0)
                return stop_requested(link) ? WAIT_STOPPED : WAIT_TIMEOUT;
            ts.tv_sec = (time_t)(left / 1000);
            ts.tv_nsec = (long)(left % 1000) * 1000000L;
            tsp = &ts;
        }
        int n = ppoll(fd >= 0 ? &pfd : NULL, fd >= 0 ? 1 : 0, tsp, link->wait_mask);
        if (n > 0)
            return WAIT_READY;
        if (n < 0 && errno != EINTR)
            return WAIT_ERROR;
        /* timeout or signal: the deadline and the stop flag are checked above */
    }
}

enum read_result {
    READ_OK = 1,
    READ_EOF = 0,
    READ_TRUNCATED = -1,
    READ_ERROR = -2,
    READ_STOP = -3
};

/*
 * Read exactly n bytes. `at_boundary`: nothing of the message has been read
 * yet, so the peer closing is a clean end and a stop request is honoured.
 */
static enum read_result read_full(vpcd_link *link, int fd, uint8_t *buf, size_t n, int at_boundary)
{
    static const int one = 1;
    size_t got = 0;
    while (got < n) {
        int first = at_boundary && got == 0;
        enum wait_result w = wait_fd(link, fd, POLLIN, -1, first);
        if (w == WAIT_STOPPED)
            return READ_STOP;
        if (w != WAIT_READY)
            return READ_ERROR;
        /* Linux forgets TCP_QUICKACK: ask again so the answer is not delayed. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r == 0)
            return first ? READ_EOF : READ_TRUNCATED;
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return READ_ERROR;
        }
        got += (size_t)r;
    }
    return READ_OK;
}

static int send_all(int fd, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One message: the length prefix and the payload in a single send. */
static int send_message(int fd, uint8_t *frame, size_t payload_len)
{
    frame[0] = (uint8_t)(payload_len >> 8);
    frame[1] = (uint8_t)payload_len;
    return send_all(fd, frame, payload_len + 2);
}

/*
 * What a command is, for the debug log: only its kind and, for the first
 * part of an SKS call, the method ID - never any argument. `chaining`
 * follows chained calls so that later parts are not mistaken for methods.
 */
static void describe_command(const uint8_t *cmd, size_t n, int *chaining, char *out, size_t outlen)
{
    sks_apdu a;
    if (sks_apdu_parse(cmd, n, &a) != SKS_SW_OK) {
        *chaining = 0;
        snprintf(out, outlen, "malformed APDU");
        return;
    }
    int call = a.ins == SKS_INS_CALL && (a.cla & ~SKS_CLA_CHAIN_BIT) == SKS_CLA_PROPRIETARY;
    int more = (a.cla & SKS_CLA_CHAIN_BIT) != 0;
    if (call && !*chaining && a.lc > 0) {
        snprintf(out, outlen, "call %s (0x%02x)%s", sks_method_name(a.data[0]), a.data[0],
                 more ? ", first part" : "");
    } else if (call) {
        snprintf(out, outlen, "call, %s part", more ? "next" : "last");
    } else if (a.ins == SKS_INS_SELECT && a.cla == SKS_CLA_ISO) {
        snprintf(out, outlen, "SELECT");
    } else if (a.ins == SKS_INS_GET_RESPONSE) {
        snprintf(out, outlen, "GET RESPONSE");
    } else {
        snprintf(out, outlen, "command CLA %02X INS %02X", a.cla, a.ins);
    }
    *chaining = call && more;
}

/* A control code from the reader. Returns 0, or -1 when the answer could not be sent. */
static int control(vpcd_link *link, int fd, uint8_t code, uint8_t *frame, int *chaining)
{
    switch (code) {
    case VPCD_CTRL_OFF:
    case VPCD_CTRL_ON:
    case VPCD_CTRL_RESET:
        link_log(link, VPCD_LOG_DEBUG, "%s: card reset",
                 code == VPCD_CTRL_OFF  ? "power off"
                 : code == VPCD_CTRL_ON ? "power on"
                                        : "reset");
        sks_card_reset(link->card);
        *chaining = 0;
        break;
    case VPCD_CTRL_ATR:
        memcpy(frame + 2, vpcd_atr, VPCD_ATR_LEN);
        return send_message(fd, frame, VPCD_ATR_LEN);
    default:
        link_log(link, VPCD_LOG_WARN, "unknown vpcd control code 0x%02x ignored", code);
        break;
    }
    return 0;
}

/* A socket error: logged with its cause. */
static enum vpcd_end io_end(vpcd_link *link)
{
    link_log(link, VPCD_LOG_WARN, "connection error: %s", strerror(errno));
    return VPCD_END_IO;
}

/* How a failed read ends the connection; `len`: the message being read, 0 for a prefix. */
static enum vpcd_end read_end(vpcd_link *link, enum read_result r, size_t len)
{
    switch (r) {
    case READ_EOF:
        return VPCD_END_CLOSED;
    case READ_STOP:
        return VPCD_END_STOP;
    case READ_TRUNCATED:
        link_log(link, VPCD_LOG_WARN,
                 "the reader closed the connection within a message (%zu bytes announced)", len);
        return VPCD_END_PROTOCOL;
    default:
        return io_end(link);
    }
}

/*
 * Receive one message and answer it. `cmd` holds VPCD_MAX_PAYLOAD bytes,
 * `frame` 2 + SKS_APDU_MAX. Returns -1 to go on, or how the connection ended.
 */
static int serve_message(vpcd_link *link, int fd, uint8_t *cmd, uint8_t *frame, int *chaining)
{
    uint8_t hdr[2];
    char what[80];
    enum read_result r = read_full(link, fd, hdr, 2, 1);
    if (r != READ_OK)
        return (int)read_end(link, r, 0);
    size_t len = (size_t)hdr[0] << 8 | hdr[1];
    if (len == 0) {
        link_log(link, VPCD_LOG_WARN, "the reader sent an empty message");
        return VPCD_END_PROTOCOL;
    }
    r = read_full(link, fd, cmd, len, 0);
    if (r != READ_OK)
        return (int)read_end(link, r, len);
    link->messages++;
    if (len == 1)
        return control(link, fd, cmd[0], frame, chaining) == 0 ? -1 : (int)io_end(link);

    describe_command(cmd, len, chaining, what, sizeof(what));
    /* The answer must fit the 2-byte length: longer ones go in parts (61xx). */
    size_t n = sks_card_apdu(link->card, cmd, len, frame + 2, VPCD_MAX_PAYLOAD);
    link->apdus++;
    if (n < 2 || n > VPCD_MAX_PAYLOAD) { /* never happens: the card always answers a SW */
        n = 2;
        frame[2] = (uint8_t)(SKS_SW_UNKNOWN >> 8);
        frame[3] = (uint8_t)SKS_SW_UNKNOWN;
    }
    link_log(link, VPCD_LOG_DEBUG, "%s: %zu bytes in, %zu bytes out, SW %02X%02X", what, len, n,
             frame[n], frame[n + 1]);
    int sent = send_message(fd, frame, n);
    int send_errno = errno;
    /* Commands carry PINs, answers decrypted data: neither is kept. */
    sks_cleanse(cmd, len);
    sks_cleanse(frame, n + 2);
    errno = send_errno;
    return sent == 0 ? -1 : (int)io_end(link);
}

enum vpcd_end vpcd_serve(vpcd_link *link, int fd)
{
    uint8_t *cmd = malloc(VPCD_MAX_PAYLOAD);
    uint8_t *frame = malloc(2 + SKS_APDU_MAX); /* answers, after their length prefix */
    int chaining = 0, end = VPCD_END_IO;

    if (cmd == NULL || frame == NULL)
        link_log(link, VPCD_LOG_ERROR, "out of memory");
    else
        while ((end = serve_message(link, fd, cmd, frame, &chaining)) < 0)
            ;
    free(cmd);
    free(frame);
    return (enum vpcd_end)end;
}

/* Wait for a non-blocking connect() to finish: 0 connected, else a vpcd_connect() code. */
static int finish_connect(vpcd_link *link, int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    enum wait_result w = wait_fd(link, fd, POLLOUT, VPCD_CONNECT_TIMEOUT_MS, 1);
    if (w == WAIT_STOPPED)
        return -2;
    if (w != WAIT_READY)
        return -1;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
        return -1;
    return 0;
}

int vpcd_connect(vpcd_link *link)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(link->host, link->port, &hints, &res);
    if (gai != 0) {
        link_log(link, VPCD_LOG_ERROR, "cannot resolve %s port %s: %s", link->host, link->port,
                 gai_strerror(gai));
        return gai == EAI_AGAIN ? -1 : -3;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        rc = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -1;
        if (rc != 0 && errno == EINPROGRESS)
            rc = finish_connect(link, fd);
        if (rc == 0)
            break;
        close(fd);
        fd = -1;
        if (rc == -2)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return rc == -2 ? -2 : -1;

    static const int one = 1;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
        link_log(link, VPCD_LOG_ERROR, "cannot set up the connection: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Wait retry_ms unless stopped; 0 when the wait ran out, -1 when stopped. */
static int back_off(vpcd_link *link)
{
    return wait_fd(link, -1, 0, (int)link->retry_ms, 1) == WAIT_STOPPED ? -1 : 0;
}

int vpcd_run(vpcd_link *link)
{
    int waiting_logged = 0;
    while (!stop_requested(link)) {
        int fd = vpcd_connect(link);
        if (fd == -3)
            return -1;
        if (fd == -2)
            break;
        if (fd < 0) {
            if (!waiting_logged)
                link_log(link, VPCD_LOG_INFO,
                         "no reader at %s port %s yet; trying again every %u ms", link->host,
                         link->port, link->retry_ms);
            waiting_logged = 1;
            if (back_off(link) != 0)
                break;
            continue;
        }
        link->connections++;
        link_log(link, VPCD_LOG_INFO, "card inserted: connected to the reader at %s port %s",
                 link->host, link->port);
        unsigned long before = link->messages;
        enum vpcd_end end = vpcd_serve(link, fd);
        close(fd);
        /* A reader that goes away as it accepts is still the same wait. */
        if (link->messages != before)
            waiting_logged = 0;
        if (end == VPCD_END_STOP)
            break;
        link_log(link, end == VPCD_END_CLOSED ? VPCD_LOG_INFO : VPCD_LOG_WARN, "card removed: %s",
                 end == VPCD_END_CLOSED     ? "the reader closed the connection"
                 : end == VPCD_END_PROTOCOL ? "the reader broke the vpcd protocol"
                                            : "connection error");
        if (link->once)
            break;
        /* A peer that misbehaves is not hammered; a clean close retries at once. */
        if (end != VPCD_END_CLOSED && back_off(link) != 0)
            break;
    }
    return 0;
}
