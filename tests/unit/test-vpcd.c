/*
 * test-vpcd.c - the vpcd protocol of sks-card (src/tools/vpcd_link.c)
 * against a server in this test that plays vpcd: it listens on 127.0.0.1 at
 * an ephemeral port, the link connects to it from a thread, and the test
 * sends what pcscd's vpcd driver sends (2-byte big-endian length, then a
 * control code or a command APDU) and checks what comes back: the ATR, no
 * answer to power events (which reset the card), APDU answers equal to the
 * card's own, the end of a connection on a broken message, reconnection
 * when the reader goes away or is not up yet, a prompt stop, and a debug
 * log that holds no APDU data.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "protocol/sks_apdu.h"
#include "testlib.h"
#include "tools/vpcd_link.h"

#define WAIT_MS 5000 /* the most any step may take */

static const uint8_t select_sks[] = {0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0,
                                     0x53, 0x4B, 0x53, 0x01, 0x00, 0x01};
/* getDeviceInfo (method 0x40) with a short Le of 00: 256 bytes at most. */
static const uint8_t device_info_short[] = {0x80, 0x10, 0x00, 0x00, 0x01, 0x40, 0x00};
/* enumerateKeys (method 0x41) from handle 0. */
static const uint8_t enumerate_keys[] = {0x80, 0x10, 0x00, 0x00, 0x05, 0x41,
                                         0x00, 0x00, 0x00, 0x00, 0x00};

/* ---- The reader's side: a listening socket and message framing --------- */

static int listen_on(uint16_t port, uint16_t *bound)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s", strerror(errno));
    ck_assert_int_eq(listen(fd, 4), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    if (bound != NULL)
        *bound = ntohs(sa.sin_port);
    return fd;
}

static int wait_readable(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    int n;
    do
        n = poll(&p, 1, ms);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Accept the card's connection; -1 when it does not come within `ms`. */
static int accept_card(int lfd, int ms)
{
    if (wait_readable(lfd, ms) <= 0)
        return -1;
    int fd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(fd, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void send_raw(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        ck_assert_msg(w > 0, "send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

static void send_msg(int fd, const uint8_t *payload, size_t n)
{
    uint8_t hdr[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    send_raw(fd, hdr, 2);
    send_raw(fd, payload, n);
}

static void send_ctrl(int fd, uint8_t code)
{
    send_msg(fd, &code, 1);
}

/* Read exactly n bytes; 0 on end of stream or timeout. */
static int recv_exact(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        if (wait_readable(fd, WAIT_MS) <= 0)
            return 0;
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0)
            return 0;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

/* One message from the card: its length, or -1 when none came. */
static long recv_msg(int fd, uint8_t *buf, size_t cap)
{
    uint8_t hdr[2];
    if (!recv_exact(fd, hdr, 2))
        return -1;
    size_t n = (size_t)hdr[0] << 8 | hdr[1];
    ck_assert_uint_le(n, cap);
    if (!recv_exact(fd, buf, n))
        return -1;
    return (long)n;
}

/* Did the card close the connection (end of stream within WAIT_MS)? */
static int card_closed(int fd)
{
    uint8_t b;
    if (wait_readable(fd, WAIT_MS) <= 0)
        return 0;
    return recv(fd, &b, 1, 0) == 0;
}

/* Nothing arrives from the card within `ms`. */
static int silent_for(int fd, int ms)
{
    return wait_readable(fd, ms) == 0;
}

/* Send an APDU, receive the answer; returns the SW, answer data in buf, length in *n. */
static uint16_t transceive(int fd, const uint8_t *apdu, size_t len, uint8_t *buf, size_t cap,
                           size_t *n)
{
    send_msg(fd, apdu, len);
    long r = recv_msg(fd, buf, cap);
    ck_assert_msg(r >= 2, "no answer to an APDU");
    *n = (size_t)r - 2;
    return (uint16_t)(buf[r - 2] << 8 | buf[r - 1]);
}

static uint16_t transceive_sw(int fd, const uint8_t *apdu, size_t len)
{
    static uint8_t buf[VPCD_MAX_PAYLOAD];
    size_t n;
    return transceive(fd, apdu, len, buf, sizeof(buf), &n);
}

/* ---- The card's side: the link in a thread -------------------------------- */

static char log_text[16384];
static size_t log_len;

__attribute__((format(printf, 3, 0))) static void capture_log(void *ctx, int level, const char *fmt,
                                                              va_list ap)
{
    (void)ctx;
    (void)level;
    if (log_len + 1 >= sizeof(log_text))
        return;
    int n = vsnprintf(log_text + log_len, sizeof(log_text) - log_len, fmt, ap);
    if (n > 0)
        log_len +=
            (size_t)n < sizeof(log_text) - log_len ? (size_t)n : sizeof(log_text) - log_len - 1;
    log_text[log_len++] = '\n';
    log_text[log_len] = '\0';
}

typedef struct {
    vpcd_link link;
    char port[8];
    atomic_int stop;
    sigset_t wait_mask;
    int serve_one; /* 1: vpcd_connect + vpcd_serve once; 0: vpcd_run */
    int result;    /* vpcd_run's result, or vpcd_serve's end */
    pthread_t thread;
    tl_card *card;
} card_side;

static void on_wakeup(int sig)
{
    (void)sig;
}

static void *card_thread(void *arg)
{
    card_side *cs = arg;
    if (cs->serve_one) {
        int fd = vpcd_connect(&cs->link);
        ck_assert_int_ge(fd, 0);
        cs->result = (int)vpcd_serve(&cs->link, fd);
        close(fd);
    } else {
        cs->result = vpcd_run(&cs->link);
    }
    return NULL;
}

/*
 * Start the link to 127.0.0.1:port in a thread. SIGUSR1 is blocked except
 * while the link waits, as the daemon does with SIGTERM: card_stop() sets the
 * stop flag and sends it to interrupt the wait.
 */
static card_side *card_start(uint16_t port, int serve_one, int once, unsigned retry_ms)
{
    struct sigaction sa;
    sigset_t usr1;
    card_side *cs = calloc(1, sizeof(*cs));
    ck_assert_ptr_nonnull(cs);
    cs->card = tl_card_new();
    snprintf(cs->port, sizeof(cs->port), "%u", port);
    vpcd_link_init(&cs->link, cs->card->card);
    cs->link.host = "127.0.0.1";
    cs->link.port = cs->port;
    cs->link.once = once;
    cs->link.retry_ms = retry_ms;
    cs->link.stop = &cs->stop;
    cs->link.log = capture_log;
    cs->link.log_level = VPCD_LOG_DEBUG;
    cs->serve_one = serve_one;
    log_len = 0;
    log_text[0] = '\0';

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_wakeup;
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, &usr1, &cs->wait_mask), 0);
    sigdelset(&cs->wait_mask, SIGUSR1);
    cs->link.wait_mask = &cs->wait_mask;
    ck_assert_int_eq(pthread_create(&cs->thread, NULL, card_thread, cs), 0);
    return cs;
}

/* Wait for the thread to end by itself (within WAIT_MS), or fail. */
static void card_join(card_side *cs)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_MS / 1000;
    ck_assert_msg(pthread_timedjoin_np(cs->thread, NULL, &deadline) == 0, "the link did not end");
}

static void card_stop(card_side *cs)
{
    atomic_store(&cs->stop, 1);
    pthread_kill(cs->thread, SIGUSR1);
    card_join(cs);
}

static void card_free(card_side *cs)
{
    tl_card_free(cs->card);
    free(cs);
}

/* ---- Tests ----------------------------------------------------------------- */

/*
 * The ATR, read as ISO 7816-3 defines it: TS, T0 with the count of
 * historical bytes, interface bytes as the Y nibbles announce them, the
 * historical bytes, and TCK (present since T=1 is offered) such that the XOR
 * of T0 .. TCK is zero.
 */
START_TEST(test_atr)
{
    uint16_t port;
    uint8_t atr[64];
    int lfd = listen_on(0, &port);
    card_side *cs = card_start(port, 0, 1, 50);
    int fd = accept_card(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);

    send_ctrl(fd, VPCD_CTRL_ATR);
    long n = recv_msg(fd, atr, sizeof(atr));
    ck_assert_int_ge(n, 2);
    ck_assert_uint_eq(atr[0], 0x3B); /* direct convention */
    size_t k = atr[1] & 0x0F, i = 2;
    uint8_t y = atr[1] >> 4;
    int t1 = 0;
    while (y != 0) {
        uint8_t td = 0;
        i += (y & 1) + ((y >> 1) & 1) + ((y >> 2) & 1); /* TA, TB, TC */
        if (y & 8) {
            ck_assert_int_lt(i, n);
            td = atr[i++];
            t1 |= (td & 0x0F) == 1;
        }
        y = td >> 4;
    }
    ck_assert_msg(t1, "T=1 is offered");
    ck_assert_int_eq((long)(i + k + 1), n); /* historical bytes, then TCK */
    uint8_t x = 0;
    for (long j = 1; j < n; j++)
        x ^= atr[j];
    ck_assert_uint_eq(x, 0);
    /* Historical bytes: category 80, then COMPACT-TLV with issuer's data "SKS card". */
    ck_assert_uint_eq(atr[i], 0x80);
    ck_assert_uint_eq(atr[i + 1], 0x58);
    ck_assert_mem_eq(atr + i + 2, "SKS card", 8);
    ck_assert_int_eq(n, VPCD_ATR_LEN);
    ck_assert_mem_eq(atr, vpcd_atr, VPCD_ATR_LEN);

    /* The reader asks again and again (card presence): the same answer. */
    send_ctrl(fd, VPCD_CTRL_ATR);
    ck_assert_int_eq(recv_msg(fd, atr, sizeof(atr)), VPCD_ATR_LEN);

    close(fd);
    card_join(cs);
    ck_assert_int_eq(cs->result, 0);
    ck_assert_uint_eq(cs->link.connections, 1);
    close(lfd);
    card_free(cs);
}
END_TEST

/* Power off, power on and reset get no answer and make the card forget the selection. */
START_TEST(test_power_events)
{
    static const uint8_t events[] = {VPCD_CTRL_OFF, VPCD_CTRL_ON, VPCD_CTRL_RESET};
    uint16_t port;
    int lfd = listen_on(0, &port);
    card_side *cs = card_start(port, 0, 1, 50);
    int fd = accept_card(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);

    for (size_t i = 0; i < sizeof(events); i++) {
        ck_assert_uint_eq(transceive_sw(fd, select_sks, sizeof(select_sks)), SKS_SW_OK);
        ck_assert_uint_eq(transceive_sw(fd, enumerate_keys, sizeof(enumerate_keys)), SKS_SW_OK);
        send_ctrl(fd, events[i]);
        ck_assert_msg(silent_for(fd, 100), "no answer to control code %u", events[i]);
        /* A call without SELECT: the card forgot it (docs/protocol.md section 4). */
        ck_assert_uint_eq(transceive_sw(fd, enumerate_keys, sizeof(enumerate_keys)),
                          SKS_SW_CONDITIONS);
    }
    /* An unknown control code is ignored: no answer, the connection stays. */
    send_ctrl(fd, 0x7F);
    ck_assert(silent_for(fd, 100));
    ck_assert_uint_eq(transceive_sw(fd, select_sks, sizeof(select_sks)), SKS_SW_OK);

    close(fd);
    card_join(cs);
    ck_assert_ptr_nonnull(strstr(log_text, "power off: card reset"));
    ck_assert_ptr_nonnull(strstr(log_text, "unknown vpcd control code 0x7f"));
    close(lfd);
    card_free(cs);
}
END_TEST

/*
 * SELECT and getDeviceInfo over the link: the short-Le answer comes in parts
 * (61xx, GET RESPONSE), an extended-Le answer in one; both equal the answer
 * of the same call made directly on the card (sks_card_call).
 */
START_TEST(test_apdu_round_trip)
{
    static uint8_t buf[VPCD_MAX_PAYLOAD];
    static uint8_t whole[SKS_CALL_MAX];
    static const uint8_t device_info_ext[] = {0x80, 0x10, 0x00, 0x00, 0x00,
                                              0x00, 0x01, 0x40, 0x00, 0x00};
    uint16_t port, sw;
    size_t n, total = 0, parts = 0;
    int lfd = listen_on(0, &port);
    card_side *cs = card_start(port, 0, 1, 50);
    int fd = accept_card(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);

    sw = transceive(fd, select_sks, sizeof(select_sks), buf, sizeof(buf), &n);
    ck_assert_uint_eq(sw, SKS_SW_OK);
    ck_assert_uint_eq(n, 0);
    sw = transceive(fd, device_info_short, sizeof(device_info_short), buf, sizeof(buf), &n);
    ck_assert_uint_eq(sw & 0xFF00, SKS_SW_MORE_DATA);
    ck_assert_uint_eq(n, 256);
    for (;;) {
        ck_assert_uint_le(total + n, sizeof(whole));
        memcpy(whole + total, buf, n);
        total += n;
        parts++;
        if ((sw & 0xFF00) != SKS_SW_MORE_DATA)
            break;
        uint8_t get_response[] = {0x00, 0xC0, 0x00, 0x00, (uint8_t)sw};
        sw = transceive(fd, get_response, sizeof(get_response), buf, sizeof(buf), &n);
    }
    ck_assert_uint_eq(sw, SKS_SW_OK);
    ck_assert_uint_ge(parts, 2);
    ck_assert_uint_eq(whole[0], SKS_OK);

    sw = transceive(fd, device_info_ext, sizeof(device_info_ext), buf, sizeof(buf), &n);
    ck_assert_uint_eq(sw, SKS_SW_OK);
    ck_assert_uint_eq(n, total);
    ck_assert_mem_eq(buf, whole, total);

    /*
     * The largest message vpcd can frame (65535 bytes: an extended APDU with
     * Lc 65528) carrying an enumerateKeys with trailing bytes: the card
     * answers FORMAT, so the whole message reached it.
     */
    size_t lc = VPCD_MAX_PAYLOAD - 7;
    memset(buf, 0xA5, VPCD_MAX_PAYLOAD);
    memcpy(buf,
           (const uint8_t[]){0x80, 0x10, 0x00, 0x00, 0x00, (uint8_t)(lc >> 8), (uint8_t)lc, 0x41},
           8);
    sw = transceive(fd, buf, VPCD_MAX_PAYLOAD, buf, sizeof(buf), &n);
    ck_assert_uint_eq(sw, SKS_SW_OK);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_eq(buf[0], SKS_ERR_FORMAT);

    close(fd);
    card_join(cs);
    ck_assert_uint_eq(cs->link.apdus, parts + 3); /* SELECT, parts, extended, largest */

    /* The same call directly on the card. */
    ck_assert_int_eq(tl_call_raw(cs->card, (const uint8_t[]){SKS_M_GET_DEVICE_INFO}, 1), SKS_OK);
    ck_assert_uint_eq(cs->card->answer.len, total);
    ck_assert_mem_eq(cs->card->answer.buf, whole, total);
    close(lfd);
    card_free(cs);
}
END_TEST

/*
 * Broken messages end the connection: a length announcing more bytes than
 * arrive before the reader closes, and a zero length. Nothing is answered.
 */
START_TEST(test_length_beyond_data)
{
    uint16_t port;
    int lfd = listen_on(0, &port);
    card_side *cs = card_start(port, 1, 1, 50);
    int fd = accept_card(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);

    static const uint8_t truncated[] = {0xFF, 0xFF, 0x00, 0xA4, 0x04};
    send_raw(fd, truncated, sizeof(truncated));
    ck_assert(silent_for(fd, 100)); /* still waiting for the rest */
    shutdown(fd, SHUT_WR);
    ck_assert_msg(card_closed(fd), "the card closes a connection with a truncated message");
    card_join(cs);
    ck_assert_int_eq(cs->result, VPCD_END_PROTOCOL);
    ck_assert_uint_eq(cs->link.apdus, 0);
    ck_assert_ptr_nonnull(strstr(log_text, "within a message (65535 bytes announced)"));
    close(fd);
    close(lfd);
    card_free(cs);
}
END_TEST

START_TEST(test_zero_length)
{
    uint16_t port;
    int lfd = listen_on(0, &port);
    card_side *cs = card_start(port, 1, 1, 50);
    int fd = accept_card(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);

    static const uint8_t zero[] = {0x00, 0x00};
    send_raw(fd, zero, sizeof(zero));
    ck_assert_msg(card_closed(fd), "the card closes a connection on an empty message");
    card_join(cs);
    ck_assert_int_eq(cs->result, VPCD_END_PROTOCOL);
    close(fd);
    close(lfd);
    card_free(cs);
}
END_TEST

/* The reader closing the connection is a clean end for vpcd_serve. */
START_TEST(test_reader_closes)
{
    uint16_t port;
    int lfd = listen_on(0, &port);
    card_side *cs = card_start(port, 1, 1, 50);
    int fd = accept_card(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);
    ck_assert_uint_eq(transceive_sw(fd, select_sks, sizeof(select_sks)), SKS_SW_OK);
    close(fd);
    card_join(cs);
    ck_assert_int_eq(cs->result, VPCD_END_CLOSED);
    close(lfd);
    card_free(cs);
}
END_TEST

/*
 * vpcd_run reconnects: after the reader closes, after a broken message, and
 * when the reader is not up yet (the wait is logged once); a stop request
 * ends it while it waits for the reader and while it is connected.
 */
START_TEST(test_reconnect)
{
    uint16_t port;
    uint8_t atr[64];
    int lfd = listen_on(0, &port);
    card_side *cs = card_start(port, 0, 0, 50);

    int fd = accept_card(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);
    send_ctrl(fd, VPCD_CTRL_ATR);
    ck_assert_int_eq(recv_msg(fd, atr, sizeof(atr)), VPCD_ATR_LEN);
    close(fd); /* pcscd goes away ... */

    fd = accept_card(lfd, WAIT_MS); /* ... and the card comes back */
    ck_assert_msg(fd >= 0, "the card reconnects after the reader closed");
    send_ctrl(fd, VPCD_CTRL_ATR);
    ck_assert_int_eq(recv_msg(fd, atr, sizeof(atr)), VPCD_ATR_LEN);
    send_raw(fd, (const uint8_t[]){0x00, 0x00}, 2); /* a broken message */
    ck_assert(card_closed(fd));
    close(fd);

    fd = accept_card(lfd, WAIT_MS);
    ck_assert_msg(fd >= 0, "the card reconnects after a broken message");
    ck_assert_uint_eq(transceive_sw(fd, select_sks, sizeof(select_sks)), SKS_SW_OK);
    close(fd);

    /* The reader is gone for a while: the card retries every 50 ms. */
    close(lfd);
    usleep(300 * 1000);
    lfd = listen_on(port, NULL);
    fd = accept_card(lfd, WAIT_MS);
    ck_assert_msg(fd >= 0, "the card connects once the reader is back");
    send_ctrl(fd, VPCD_CTRL_ATR);
    ck_assert_int_eq(recv_msg(fd, atr, sizeof(atr)), VPCD_ATR_LEN);

    /* Stopped while connected and idle: it ends at once, without an answer pending. */
    card_stop(cs);
    ck_assert_int_eq(cs->result, 0);
    ck_assert(card_closed(fd));
    ck_assert_uint_ge(cs->link.connections, 4); /* one more if it reconnected as the reader went */
    /* One "no reader" line for the whole wait, not one per attempt. */
    const char *first = strstr(log_text, "no reader at 127.0.0.1");
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_null(strstr(first + 1, "no reader at 127.0.0.1"));
    close(fd);
    close(lfd);
    card_free(cs);
}
END_TEST

/* With no reader at all, a stop request ends the retry loop. */
START_TEST(test_stop_while_waiting)
{
    uint16_t port;
    int lfd = listen_on(0, &port);
    close(lfd);                                    /* nothing listens there now */
    card_side *cs = card_start(port, 0, 0, 60000); /* a stop must not wait for the back-off */
    usleep(200 * 1000);
    card_stop(cs);
    ck_assert_int_eq(cs->result, 0);
    ck_assert_uint_eq(cs->link.connections, 0);
    card_free(cs);
}
END_TEST

/* An address that cannot be resolved is not retried. */
START_TEST(test_bad_address)
{
    tl_card *c = tl_card_new();
    vpcd_link link;
    vpcd_link_init(&link, c->card);
    link.host = "no-such-host.invalid";
    link.port = "35963";
    ck_assert_int_eq(vpcd_connect(&link), -3);
    ck_assert_int_eq(vpcd_run(&link), -1);
    tl_card_free(c);
}
END_TEST

/*
 * The debug log says what was called, never with what: the bytes of a call
 * (here the text "SECRETPIN" as its arguments) appear in no form.
 */
START_TEST(test_log_holds_no_data)
{
    static const uint8_t call_with_secret[] = {0x80, 0x10, 0x00, 0x00, 0x0A, 0x40, 'S', 'E',
                                               'C',  'R',  'E',  'T',  'P',  'I',  'N'};
    uint16_t port;
    int lfd = listen_on(0, &port);
    card_side *cs = card_start(port, 0, 1, 50);
    int fd = accept_card(lfd, WAIT_MS);
    ck_assert_int_ge(fd, 0);
    ck_assert_uint_eq(transceive_sw(fd, select_sks, sizeof(select_sks)), SKS_SW_OK);
    ck_assert_uint_eq(transceive_sw(fd, call_with_secret, sizeof(call_with_secret)), SKS_SW_OK);
    close(fd);
    card_join(cs);
    ck_assert_ptr_nonnull(strstr(log_text, "call getDeviceInfo (0x40): 15 bytes in"));
    ck_assert_ptr_null(strstr(log_text, "SECRET"));
    ck_assert_ptr_null(strstr(log_text, "534543"));
    ck_assert_ptr_null(strstr(log_text, "53 45 43"));
    ck_assert_ptr_null(strstr(log_text, "53:45:43"));
    close(lfd);
    card_free(cs);
}
END_TEST

static Suite *vpcd_suite(void)
{
    Suite *s = suite_create("vpcd");
    TCase *tc = tcase_create("link");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_atr);
    tcase_add_test(tc, test_power_events);
    tcase_add_test(tc, test_apdu_round_trip);
    tcase_add_test(tc, test_length_beyond_data);
    tcase_add_test(tc, test_zero_length);
    tcase_add_test(tc, test_reader_closes);
    tcase_add_test(tc, test_reconnect);
    tcase_add_test(tc, test_stop_while_waiting);
    tcase_add_test(tc, test_bad_address);
    tcase_add_test(tc, test_log_holds_no_data);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vpcd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
