/*
 * tok_issuer.c - the module's local issuer (src/provision): opened on first
 * use from <state_dir>/issuer, trusting the manufacturer CA configured, or
 * by default the embedded card's own development CA, and working in the
 * module's own OpenSSL library context (tok_ossl.h). The link it uses to
 * reach a card is tok_card_call(), inside the current PKCS#11 call.
 */
#include <stdio.h>
#include <unistd.h>

#include "token/tok.h"
#include "token/tok_ossl.h"

/* sks_card_link's call: one SKS call on the card given as ctx. */
static int link_call(void *ctx, uint8_t method, const void *req, void *resp, sks_writer *answer,
                     uint8_t *status, char *err, size_t errlen)
{
    CK_RV rv = tok_card_call(ctx, method, req, resp, answer, status, err, errlen);
    if (rv != CKR_OK) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "card unreachable (0x%lx)", (unsigned long)rv);
        return -1;
    }
    return 0;
}

CK_RV tok_issuer_get(tok_card *card, sks_local_issuer **li, sks_card_link *link)
{
    const tok_config *cfg = &tok_g.config;
    if (tok_g.issuer == NULL) {
        char dir[4096], ca[4096];
        const char *trusted = cfg->manufacturer_ca;
        snprintf(dir, sizeof(dir), "%s/issuer", cfg->state_dir);
        if (trusted == NULL) {
            snprintf(ca, sizeof(ca), "%s/card/manufacturer/ca-cert.pem", cfg->state_dir);
            if (access(ca, R_OK) == 0)
                trusted = ca;
        }
        char err[256] = "";
        OSSL_LIB_CTX *libctx = tok_ossl_ctx();
        if (libctx == NULL)
            return CKR_HOST_MEMORY;
        tok_g.issuer = sks_local_issuer_open_ex(dir, trusted, libctx, err, sizeof(err));
        if (tok_g.issuer == NULL) {
            tok_log(TOK_LOG_ERROR, "local issuer %s: %s", dir, err);
            return CKR_FUNCTION_FAILED;
        }
    }
    *li = tok_g.issuer;
    link->call = link_call;
    link->ctx = card;
    return CKR_OK;
}

void tok_issuer_close(void)
{
    if (tok_g.issuer != NULL)
        sks_local_issuer_close(tok_g.issuer);
    tok_g.issuer = NULL;
}
