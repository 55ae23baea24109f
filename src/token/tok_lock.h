/*
 * tok_lock.h - the module lock: an OS mutex or the application's mutex
 * callbacks, as C_Initialize's CK_C_INITIALIZE_ARGS chose.
 */
#ifndef SKS_TOK_LOCK_H
#define SKS_TOK_LOCK_H

#include <pthread.h>

#include <p11-kit/pkcs11.h>

typedef struct {
    int kind; /* TOK_LOCK_NONE, TOK_LOCK_OS, TOK_LOCK_APP */
    pthread_mutex_t os;
    void *app;
    CK_DESTROYMUTEX destroy;
    CK_LOCKMUTEX lock;
    CK_UNLOCKMUTEX unlock;
} tok_lock;

#define TOK_LOCK_NONE 0
#define TOK_LOCK_OS   1
#define TOK_LOCK_APP  2

/*
 * Choose and create the lock from C_Initialize's argument (NULL allowed):
 * CKR_ARGUMENTS_BAD for pReserved != NULL or a partial set of callbacks.
 */
CK_RV tok_lock_init(tok_lock *l, const CK_C_INITIALIZE_ARGS *args);
CK_RV tok_lock_acquire(tok_lock *l);
void tok_lock_release(tok_lock *l);
void tok_lock_destroy(tok_lock *l);

#endif
