/*
 * tok_config.c - the module configuration: built-in defaults, optionally
 * overridden by the file SKS_PKCS11_CONF names (man sks-pkcs11.conf(5)):
 * `key = value` lines, `#` starts a comment.
 *
 * A configuration file that is named but unreadable, or that has a line
 * the module cannot understand, makes C_Initialize fail: silently falling
 * back to the user's default card would be worse than an error.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token/tok.h"

#define LINE_MAX_LEN 4096

/* $XDG_DATA_HOME/sks, or ~/.local/share/sks. NULL when neither is known. */
static char *default_state_dir(void)
{
    const char *xdg = secure_getenv("XDG_DATA_HOME");
    const char *home = secure_getenv("HOME");
    char buf[4096];
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(buf, sizeof(buf), "%s/sks", xdg);
    else if (home != NULL && home[0] != '\0')
        n = snprintf(buf, sizeof(buf), "%s/.local/share/sks", home);
    else
        return NULL;
    if (n < 0 || (size_t)n >= sizeof(buf))
        return NULL;
    return strdup(buf);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int set_string(char **dst, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return -1;
    free(*dst);
    *dst = copy;
    return 0;
}

/* Apply one `key = value`. 0, or -1 with a reason for the log. */
static int apply(tok_config *cfg, const char *key, const char *value, const char **why)
{
    if (strcmp(key, "transport") == 0) {
        cfg->no_card = 0;
        if (strcmp(value, "embedded") == 0) {
            cfg->use_embedded = 1;
            cfg->use_pcsc = 0;
        } else if (strcmp(value, "pcsc") == 0) {
            cfg->use_embedded = 0;
            cfg->use_pcsc = 1;
        } else if (strcmp(value, "both") == 0) {
            cfg->use_embedded = 1;
            cfg->use_pcsc = 1;
        } else if (strcmp(value, "none") == 0) {
            /* No-card mode: no card at all, only the issuer token (tok_issuer_token.h). */
            cfg->use_embedded = 0;
            cfg->use_pcsc = 0;
            cfg->no_card = 1;
        } else {
            *why = "transport must be embedded, pcsc, both or none";
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "log_level") == 0) {
        static const char *const names[] = {"error", "warn", "info", "debug"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(value, names[i]) == 0) {
                cfg->log_level = i;
                return 0;
            }
        }
        *why = "log_level must be error, warn, info or debug";
        return -1;
    }
    char **dst = NULL;
    if (strcmp(key, "state_dir") == 0)
        dst = &cfg->state_dir;
    else if (strcmp(key, "log_file") == 0)
        dst = &cfg->log_file;
    else if (strcmp(key, "apdu_trace") == 0)
        dst = &cfg->apdu_trace_file;
    else if (strcmp(key, "manufacturer_ca") == 0)
        dst = &cfg->manufacturer_ca;
    if (dst == NULL) {
        *why = "unknown key";
        return -1;
    }
    if (value[0] == '\0') {
        *why = "empty value";
        return -1;
    }
    if (set_string(dst, value) != 0) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

static CK_RV parse_file(tok_config *cfg, const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        tok_log(TOK_LOG_ERROR, "cannot read configuration %s: %s", path, strerror(errno));
        return CKR_GENERAL_ERROR;
    }
    char line[LINE_MAX_LEN];
    unsigned lineno = 0;
    CK_RV rv = CKR_OK;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            tok_log(TOK_LOG_ERROR, "%s:%u: line too long", path, lineno);
            rv = CKR_GENERAL_ERROR;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        char *s = trim(line);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            tok_log(TOK_LOG_ERROR, "%s:%u: expected key = value", path, lineno);
            rv = CKR_GENERAL_ERROR;
            break;
        }
        *eq = '\0';
        const char *why = "";
        if (apply(cfg, trim(s), trim(eq + 1), &why) != 0) {
            tok_log(TOK_LOG_ERROR, "%s:%u: %s", path, lineno, why);
            rv = CKR_GENERAL_ERROR;
            break;
        }
    }
    fclose(f);
    return rv;
}

CK_RV tok_config_load(tok_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->log_level = TOK_LOG_ERROR;
    /*
     * transport = both: with no configuration the embedded card works as it
     * always did, and cards in PC/SC readers appear as soon as pcscd runs
     * (without pcscd, PC/SC adds no slot and one info line to the log).
     */
    cfg->use_embedded = 1;
    cfg->use_pcsc = 1;
    const char *path = secure_getenv("SKS_PKCS11_CONF");
    if (path != NULL && path[0] != '\0') {
        CK_RV rv = parse_file(cfg, path);
        if (rv != CKR_OK) {
            tok_config_free(cfg);
            return rv;
        }
    }
    if (cfg->state_dir == NULL)
        cfg->state_dir = default_state_dir();
    if (cfg->state_dir == NULL) {
        tok_log(TOK_LOG_ERROR, "no state_dir configured and neither XDG_DATA_HOME nor HOME set");
        tok_config_free(cfg);
        return CKR_GENERAL_ERROR;
    }
    return CKR_OK;
}

void tok_config_free(tok_config *cfg)
{
    free(cfg->state_dir);
    free(cfg->log_file);
    free(cfg->apdu_trace_file);
    free(cfg->manufacturer_ca);
    memset(cfg, 0, sizeof(*cfg));
}
