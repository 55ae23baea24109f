/*
 * tok_log.c - the module's log (stderr or log_file, filtered by log_level)
 * and the APDU trace (every exchange as hex lines "> command" and
 * "< response", for debugging and for checking what crosses the middleware).
 *
 * Callers never pass secrets to tok_log(). The APDU trace, by its nature,
 * holds everything sent to the card, including the PINs the user types; the
 * manual page says so.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "token/tok.h"

static int log_level = TOK_LOG_ERROR;
static FILE *log_out;   /* NULL: stderr */
static FILE *trace_out; /* NULL: no trace */

void tok_log_open(const tok_config *cfg)
{
    log_level = cfg->log_level;
    if (cfg->log_file != NULL) {
        log_out = fopen(cfg->log_file, "ae");
        if (log_out == NULL)
            tok_log(TOK_LOG_ERROR, "cannot open log file %s: %s", cfg->log_file, strerror(errno));
    }
    if (cfg->apdu_trace_file != NULL) {
        trace_out = fopen(cfg->apdu_trace_file, "ae");
        if (trace_out == NULL)
            tok_log(TOK_LOG_ERROR, "cannot open APDU trace %s: %s", cfg->apdu_trace_file,
                    strerror(errno));
    }
}

void tok_log_close(void)
{
    if (log_out != NULL)
        fclose(log_out);
    if (trace_out != NULL)
        fclose(trace_out);
    log_out = NULL;
    trace_out = NULL;
    log_level = TOK_LOG_ERROR;
}

void tok_log(int level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    if (level > log_level || level < 0)
        return;
    FILE *out = log_out != NULL ? log_out : stderr;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(out, "sks-pkcs11[%ld]: %s: %s\n", (long)getpid(), names[level], msg);
    fflush(out);
}

int tok_log_apdu_enabled(void)
{
    return trace_out != NULL;
}

static void hex_line(FILE *f, char dir, const uint8_t *p, size_t n)
{
    fputc(dir, f);
    fputc(' ', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02X", p[i]);
    fputc('\n', f);
}

void tok_log_apdu(void *ctx, const uint8_t *cmd, size_t n, const uint8_t *resp, size_t m)
{
    (void)ctx;
    if (trace_out == NULL)
        return;
    hex_line(trace_out, '>', cmd, n);
    if (resp != NULL)
        hex_line(trace_out, '<', resp, m);
    fflush(trace_out);
}
