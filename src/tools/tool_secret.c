/*
 * tool_secret.c - reading passwords, PINs and password shares
 * (tool_secret.h). The terminal is /dev/tty with echo turned off; a file
 * descriptor is read one byte at a time so that several secrets can follow
 * each other on one descriptor without any being consumed early.
 */
#include "tools/tool_secret.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* Read up to the newline (removed); -1 at EOF before any byte or when too long. */
static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    int got = 0, too_long = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r <= 0)
            break;
        got = 1;
        if (c == '\n')
            break;
        if (n + 1 < cap)
            buf[n++] = c;
        else
            too_long = 1;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    if (!got || too_long) {
        OPENSSL_cleanse(buf, cap);
        return -1;
    }
    return 0;
}

int tool_secret_read(const tool_secret_src *src, const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    int rc;

    if (cap == 0)
        return -1;
    buf[0] = '\0';
    if (src->fd >= 0)
        return read_line(src->fd, buf, cap);
    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (tty < 0)
        return -1;
    if (prompt != NULL) {
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
    }
    int echo_off = tcgetattr(tty, &old) == 0;
    if (echo_off) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        echo_off = tcsetattr(tty, TCSAFLUSH, &quiet) == 0;
    }
    rc = read_line(tty, buf, cap);
    if (echo_off)
        tcsetattr(tty, TCSAFLUSH, &old);
    if (prompt != NULL)
        fputc('\n', stderr);
    close(tty);
    return rc;
}
