/*
 * p11_entry.h - the one pattern every C_* function follows:
 *
 *     CK_RV C_Something(CK_SESSION_HANDLE h, CK_BYTE_PTR p, CK_ULONG n)
 *     {
 *         tok_session *s;
 *         tok_slot *slot;
 *         TOK_ENTER_SESSION(h, &s, &slot);   // initialised? forked? lock; session valid?
 *         TOK_CHECK(p != NULL || n == 0, CKR_ARGUMENTS_BAD);
 *         TOK_TRY(do_the_work(s, slot, p, n));
 *         TOK_LEAVE();                        // out: end card I/O, unlock, return rv
 *     }
 *
 * TOK_ENTER() declares `rv` and returns at once (without the lock) when the
 * module is not initialised or this is a forked child that has not called
 * C_Initialize. Every later failure jumps to the single exit in TOK_LEAVE(),
 * which ends the card transactions the call opened and releases the lock.
 */
#ifndef SKS_P11_ENTRY_H
#define SKS_P11_ENTRY_H

#include <p11-kit/pkcs11.h>

#include "token/tok.h"

/* CKR_OK with the module lock held, or the CKR to return without it. */
CK_RV tok_enter(const char *fn);
/* End the card I/O of this call, release the lock, log failures; returns rv. */
CK_RV tok_leave(const char *fn, CK_RV rv);

#define TOK_ENTER()                                                                                \
    CK_RV rv = tok_enter(__func__);                                                                \
    if (rv != CKR_OK)                                                                              \
    return rv

#define TOK_ENTER_SESSION(h, s, slot)                                                              \
    TOK_ENTER();                                                                                   \
    TOK_TRY(tok_session_get((h), (s), (slot)))

#define TOK_FAIL(err)                                                                              \
    do {                                                                                           \
        rv = (err);                                                                                \
        goto out;                                                                                  \
    } while (0)

#define TOK_CHECK(cond, err)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            TOK_FAIL(err);                                                                         \
    } while (0)

#define TOK_TRY(expr)                                                                              \
    do {                                                                                           \
        rv = (expr);                                                                               \
        if (rv != CKR_OK)                                                                          \
            goto out;                                                                              \
    } while (0)

/* The single exit: TOK_LEAVE(), or TOK_EXIT, cleanup statements, TOK_RETURN(). */
#define TOK_EXIT                                                                                   \
    out:                                                                                           \
    __attribute__((unused));

#define TOK_RETURN() return tok_leave(__func__, rv)

#define TOK_LEAVE()                                                                                \
    TOK_EXIT                                                                                       \
    TOK_RETURN()

#endif
