/*
 * tool_secret.h - how sks-tool reads secrets: a password or PIN from the
 * terminal without echo, or a line from a file descriptor (--password-fd,
 * for scripts). Secrets live in fixed buffers that the caller cleanses.
 */
#ifndef SKS_TOOL_SECRET_H
#define SKS_TOOL_SECRET_H

#include <stddef.h>

#define TOOL_SECRET_MAX 256 /* longest password or share line, NUL included */

/*
 * Where secrets come from: the terminal (fd -1) or the given descriptor,
 * read line by line (one secret per line, no buffering past the newline).
 */
typedef struct {
    int fd;
} tool_secret_src;

/*
 * One line into buf (cap bytes, NUL-terminated, newline removed). On the
 * terminal `prompt` is shown on stderr and echo is off. 0, or -1 on end of
 * input, a line too long, or no terminal.
 */
int tool_secret_read(const tool_secret_src *src, const char *prompt, char *buf, size_t cap);

#endif
