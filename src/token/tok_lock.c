/*
 * tok_lock.c - the module lock for the four cases of CK_C_INITIALIZE_ARGS:
 *   NULL args, or no flag and no callbacks: the application promises not to
 *     call concurrently; an OS mutex costs nothing and guards anyway;
 *   CKF_OS_LOCKING_OK (with or without callbacks): OS mutex (preferred);
 *   callbacks only: the application's mutex.
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS needs nothing: the module never creates
 * threads.
 */
#include <string.h>

#include "token/tok_lock.h"

CK_RV tok_lock_init(tok_lock *l, const CK_C_INITIALIZE_ARGS *args)
{
    memset(l, 0, sizeof(*l));
    int use_app = 0;
    if (args != NULL) {
        if (args->pReserved != NULL)
            return CKR_ARGUMENTS_BAD;
        int given = (args->CreateMutex != NULL) + (args->DestroyMutex != NULL) +
                    (args->LockMutex != NULL) + (args->UnlockMutex != NULL);
        if (given != 0 && given != 4)
            return CKR_ARGUMENTS_BAD;
        use_app = given == 4 && !(args->flags & CKF_OS_LOCKING_OK);
    }
    if (use_app) {
        CK_RV rv = args->CreateMutex(&l->app);
        if (rv != CKR_OK)
            return rv;
        l->destroy = args->DestroyMutex;
        l->lock = args->LockMutex;
        l->unlock = args->UnlockMutex;
        l->kind = TOK_LOCK_APP;
        return CKR_OK;
    }
    if (pthread_mutex_init(&l->os, NULL) != 0)
        return CKR_CANT_LOCK;
    l->kind = TOK_LOCK_OS;
    return CKR_OK;
}

CK_RV tok_lock_acquire(tok_lock *l)
{
    switch (l->kind) {
    case TOK_LOCK_OS:
        return pthread_mutex_lock(&l->os) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
    case TOK_LOCK_APP:
        return l->lock(l->app);
    default:
        return CKR_GENERAL_ERROR;
    }
}

void tok_lock_release(tok_lock *l)
{
    switch (l->kind) {
    case TOK_LOCK_OS:
        pthread_mutex_unlock(&l->os);
        break;
    case TOK_LOCK_APP:
        l->unlock(l->app);
        break;
    default:
        break;
    }
}

void tok_lock_destroy(tok_lock *l)
{
    switch (l->kind) {
    case TOK_LOCK_OS:
        pthread_mutex_destroy(&l->os);
        break;
    case TOK_LOCK_APP:
        l->destroy(l->app);
        break;
    default:
        break;
    }
    l->kind = TOK_LOCK_NONE;
}
