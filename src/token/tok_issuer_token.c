/*
 * tok_issuer_token.c - the slot of no-card mode (tok_issuer_token.h): opened
 * with the module when the configuration says `transport = none`, it is the
 * only slot, always present, and its token is the issuer token: label "SKS
 * issuer" until C_InitToken names it, model "issuer", serial the 16 hex
 * digits of the random ID kept in its token file.
 *
 * Code that needs a slot's card finds a stand-in (struct tok_issuer_token's
 * `card`): present, never connected, so that anything that would talk to a
 * card gets CKR_TOKEN_NOT_PRESENT instead of a crash. The entry points send
 * the issuer slot's work to the issuer token's files before they reach
 * card code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocol/sks_crypto.h"
#include "token/tok_crypto.h"
#include "token/tok_issuer_int.h"
#include "token/tok_issuer_prov.h"
#include "token/tok_issuer_token.h"
#include "pkcs11/sks-pkcs11.h"

#define ISSUER_DIR    "issuer-token"
#define ISSUER_READER "SKS no-card mode"

/* mkdir -p with mode 0700 for what it creates; an existing directory is fine. 0 or -1. */
static int make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            tok_log(TOK_LOG_ERROR, "issuer token: cannot create %s: %s", buf, strerror(errno));
            return -1;
        }
        buf[i] = c;
    }
    return 0;
}

/* Create the slot: the one tok_slot of the module, present from now on. */
static tok_slot *add_slot(struct tok_issuer_token *t)
{
    tok_slot **v = realloc(tok_g.slots, (tok_g.nslots + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    tok_g.slots = v;
    tok_slot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->id = t->slot_id;
    s->card = &t->card;
    s->kind = TOK_SLOT_ISSUER;
    s->login = TOK_NOBODY;
    s->present = 1;
    tok_g.slots[tok_g.nslots++] = s;
    return s;
}

void tok_issuer_token_open(void)
{
    struct tok_issuer_token *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        tok_log(TOK_LOG_ERROR, "out of memory");
        return;
    }
    const char *state = tok_g.config.state_dir;
    int n = snprintf(t->dir, sizeof(t->dir), "%s/" ISSUER_DIR, state);
    if (n < 0 || (size_t)n >= sizeof(t->dir) || make_dirs(t->dir) != 0 ||
        tok_issuer_meta_load(t) != CKR_OK) {
        tok_log(TOK_LOG_ERROR, "issuer token in %s/" ISSUER_DIR ": not available", state);
        free(t);
        return;
    }
    /* The stand-in card: present, never connected, its serial the token's. */
    t->card.index = 0;
    t->card.present = 1;
    t->card.generation = 1;
    snprintf(t->card.reader, sizeof(t->card.reader), ISSUER_READER);
    for (size_t i = 0; i < sizeof(t->serial); i++)
        snprintf(t->card.serial + 2 * i, 3, "%02X", t->serial[i]);
    sks_writer_init(&t->card.policies_buf);
    t->slot_id = TOK_SLOT_ID(0, TOK_SLOT_LOW_NOPIN);
    if (add_slot(t) == NULL) {
        tok_log(TOK_LOG_ERROR, "out of memory");
        free(t);
        return;
    }
    tok_g.issuer_token = t;
    tok_issuer_store_load(t, 0); /* the public objects; private ones at login */
    tok_log(TOK_LOG_INFO, "no-card mode: issuer token %s in %s", t->card.serial, t->dir);
}

void tok_issuer_token_close(void)
{
    struct tok_issuer_token *t = tok_g.issuer_token;
    if (t == NULL)
        return;
    sks_writer_free(&t->card.policies_buf);
    sks_cleanse(t, sizeof(*t));
    free(t);
    tok_g.issuer_token = NULL;
}

void tok_issuer_token_label(char *buf, size_t cap)
{
    const struct tok_issuer_token *t = tok_g.issuer_token;
    snprintf(buf, cap, "%s", t != NULL ? t->label : "");
}

CK_RV tok_issuer_token_info(const tok_slot *slot, CK_TOKEN_INFO *info)
{
    const struct tok_issuer_token *t = tok_g.issuer_token;
    if (t == NULL)
        return CKR_TOKEN_NOT_PRESENT;
    memset(info, 0, sizeof(*info));
    tok_pad(info->label, sizeof(info->label), t->label);
    tok_pad(info->manufacturerID, sizeof(info->manufacturerID), "SKS");
    tok_pad(info->model, sizeof(info->model), "issuer");
    tok_pad(info->serialNumber, sizeof(info->serialNumber), t->card.serial);
    tok_pad(info->utcTime, sizeof(info->utcTime), "");
    info->flags = CKF_RNG | CKF_LOGIN_REQUIRED;
    if (t->initialized)
        info->flags |= CKF_TOKEN_INITIALIZED;
    if (t->user.set)
        info->flags |= CKF_USER_PIN_INITIALIZED;
    info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulSessionCount = tok_session_count(slot->id, 0);
    info->ulRwSessionCount = tok_session_count(slot->id, 1);
    info->ulMinPinLen = TOK_ISSUER_PIN_MIN;
    info->ulMaxPinLen = SKS_PIN_MAX;
    info->ulTotalPublicMemory = info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->hardwareVersion.major = 1;
    info->firmwareVersion.major = SKS_API_LEVEL;
    return CKR_OK;
}

/* Secure key injection: the issuer token wraps, the card unwraps. */
static int is_injection(CK_MECHANISM_TYPE type)
{
    return type == CKM_VENDOR_SKS_SESSION_KEY_RSA_OAEP || type == CKM_VENDOR_SKS_SESSION_KEY_ECDH ||
           type == CKM_VENDOR_SKS_INJECT_KEY;
}

CK_RV tok_issuer_mech_list(CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
    CK_ULONG n = 0;
    CK_RV rv = tok_mech_list(NULL, &n);
    if (rv != CKR_OK)
        return rv;
    /* The module's mechanisms, then those of the issuer side of provisioning. */
    CK_ULONG total = n + TOK_ISSUER_PROV_ONLY;
    if (list == NULL || *count < total) {
        rv = list == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
        *count = total;
        return rv;
    }
    rv = tok_mech_list(list, &n);
    for (CK_ULONG i = 0; rv == CKR_OK && i < TOK_ISSUER_PROV_ONLY; i++)
        list[n + i] = tok_issuer_prov_only[i];
    *count = total;
    return rv;
}

CK_RV tok_issuer_mech_info(CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
    if (tok_issuer_prov_mech_info(type, info) == CKR_OK) /* the issuer side's own */
        return CKR_OK;
    CK_RV rv = tok_mech_info(type, info);
    if (rv != CKR_OK)
        return rv;
    /* Everything runs in the module here. */
    info->flags &= ~(CK_FLAGS)CKF_HW;
    if (is_injection(type))
        info->flags &= ~(CK_FLAGS)CKF_UNWRAP;
    return CKR_OK;
}
