/*
 * tok_try.h - TRY(), the early return of the module's functions that return
 * a CK_RV and have nothing to clean up: TRY(step(...)) returns the step's
 * value unless it is CKR_OK. (The PKCS#11 entry points have their own
 * single exit, TOK_TRY of p11_entry.h.)
 */
#ifndef SKS_TOK_TRY_H
#define SKS_TOK_TRY_H

#define TRY(x)                                                                                     \
    do {                                                                                           \
        CK_RV rv_ = (x);                                                                           \
        if (rv_ != CKR_OK)                                                                         \
            return rv_;                                                                            \
    } while (0)

#endif
