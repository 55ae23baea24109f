/*
 * tok_session.c - the session table: open, look up, close. Handles count up
 * and are never reused; the table stays sorted by handle so lookups are a
 * binary search. Closing the last session of a slot logs its user out, as
 * the standard says.
 */
#include <stdlib.h>
#include <string.h>

#include "token/tok.h"
#include "token/tok_crypto.h"
#include "token/tok_issuer_token.h"

static size_t lower_bound(CK_SESSION_HANDLE h)
{
    size_t lo = 0, hi = tok_g.nsessions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tok_g.sessions[mid]->handle < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

CK_RV tok_session_get(CK_SESSION_HANDLE h, tok_session **out, tok_slot **slot)
{
    size_t i = lower_bound(h);
    if (i >= tok_g.nsessions || tok_g.sessions[i]->handle != h)
        return CKR_SESSION_HANDLE_INVALID;
    tok_session *s = tok_g.sessions[i];
    tok_slot *sl = tok_slot_find(s->slot);
    if (sl == NULL || !sl->present || s->generation != sl->card->generation) {
        /*
         * The token went away (its card was removed, even if it is back by
         * now): its sessions were closed with it.
         */
        tok_session_close(s);
        return CKR_SESSION_HANDLE_INVALID;
    }
    *out = s;
    if (slot != NULL)
        *slot = sl;
    return CKR_OK;
}

int tok_session_rw(const tok_session *s)
{
    return (s->flags & CKF_RW_SESSION) != 0;
}

size_t tok_session_count(CK_SLOT_ID slot, int rw_only)
{
    size_t n = 0;
    for (size_t i = 0; i < tok_g.nsessions; i++) {
        const tok_session *s = tok_g.sessions[i];
        if (s->slot == slot && (!rw_only || tok_session_rw(s)))
            n++;
    }
    return n;
}

CK_RV tok_session_open(tok_slot *slot, CK_FLAGS flags, CK_SESSION_HANDLE *out)
{
    if (tok_g.nsessions == tok_g.sessions_cap) {
        size_t cap = tok_g.sessions_cap ? tok_g.sessions_cap * 2 : 16;
        tok_session **v = realloc(tok_g.sessions, cap * sizeof(*v));
        if (v == NULL)
            return CKR_HOST_MEMORY;
        tok_g.sessions = v;
        tok_g.sessions_cap = cap;
    }
    tok_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return CKR_HOST_MEMORY;
    sks_writer_init(&s->sign.buffered);
    sks_writer_init(&s->verify.buffered);
    sks_writer_init(&s->encrypt.buffered);
    sks_writer_init(&s->decrypt.buffered);
    sks_writer_init(&s->digest.buffered);
    s->handle = tok_g.next_session++;
    s->slot = slot->id;
    s->generation = slot->card->generation;
    s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
    tok_g.sessions[tok_g.nsessions++] = s; /* handles ascend: the table stays sorted */
    *out = s->handle;
    return CKR_OK;
}

void tok_session_free(tok_session *s)
{
    free(s->find.v);
    sks_writer_free(&s->sign.buffered);
    sks_writer_free(&s->verify.buffered);
    sks_writer_free(&s->encrypt.buffered);
    sks_writer_free(&s->decrypt.buffered);
    sks_writer_free(&s->digest.buffered);
    free(s);
}

/* Log a slot out on the card and locally (best effort on the card). */
static void logout_slot(tok_slot *slot)
{
    if (slot->login != TOK_NOBODY && slot->kind == TOK_SLOT_POLICY) {
        sks_req_logout req = {slot->pin_policy};
        sks_writer answer;
        sks_writer_init(&answer);
        tok_card_call_rv(slot->card, SKS_M_LOGOUT, &req, NULL, &answer);
        sks_writer_free(&answer);
    }
    if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode: the issuer token forgets its keys */
        tok_issuer_logout();
    slot->login = TOK_NOBODY;
    tok_object_drop_private(slot->id);
}

void tok_session_close(tok_session *s)
{
    CK_SLOT_ID slot_id = s->slot;
    tok_session_ops_reset(s);
    tok_object_drop_session(s->handle);
    size_t i = lower_bound(s->handle);
    if (i < tok_g.nsessions && tok_g.sessions[i] == s) {
        memmove(&tok_g.sessions[i], &tok_g.sessions[i + 1],
                (tok_g.nsessions - i - 1) * sizeof(*tok_g.sessions));
        tok_g.nsessions--;
    }
    tok_session_free(s);
    tok_slot *slot = tok_slot_find(slot_id);
    if (slot != NULL && tok_session_count(slot_id, 0) == 0)
        logout_slot(slot);
}
