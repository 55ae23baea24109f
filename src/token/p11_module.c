/*
 * p11_module.c - the module's life cycle (C_Initialize, C_Finalize, C_GetInfo,
 * C_GetFunctionList), the entry/exit pair every C_* function goes through,
 * fork detection, and the function list itself.
 *
 * Fork: a pthread_atfork child handler marks the process as a forked copy,
 * and every entry checks that mark (a memory load, where a getpid() was a
 * system call: two per signature, C_SignInit and C_Sign). A forked child
 * therefore gets CKR_CRYPTOKI_NOT_INITIALIZED until it calls C_Initialize,
 * which abandons (leaks, never touches) the parent's state: its lock may be
 * held by a thread that does not exist in the child, and its card's SQLite
 * connection belongs to the parent.
 *
 * The handler is registered once per process (at the first C_Initialize,
 * under life_lock); a child inherits the registration. A handler cannot be
 * unregistered, so the module must never be unmapped while it is
 * registered: it is linked with -z nodelete (src/token/local.mk), which
 * makes dlclose leave it resident, and a later dlopen gets the same copy
 * with the handler still valid. A child made without fork handlers (a raw
 * clone or SYS_fork system call) is not detected; posix_spawn and vfork
 * children only exec.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "token/p11_entry.h"
#include "token/tok.h"
#include "token/tok_lock.h"

tok_module tok_g;

/* Serialises C_Initialize and C_Finalize; the module lock covers everything else. */
static pthread_mutex_t life_lock = PTHREAD_MUTEX_INITIALIZER;
static tok_lock module_lock;

/* Set by the fork child handler; cleared by C_Initialize in the child. */
static int forked_since_init;
/* The handler is registered (under life_lock; a child inherits both). */
static int atfork_registered;

static void mark_forked_child(void)
{
    __atomic_store_n(&forked_since_init, 1, __ATOMIC_RELAXED);
}

static int is_initialized(void)
{
    return __atomic_load_n(&tok_g.initialized, __ATOMIC_ACQUIRE);
}

/* Initialised in this very process (not a forked copy of the parent's state)? */
static int initialized_here(void)
{
    return is_initialized() && !__atomic_load_n(&forked_since_init, __ATOMIC_RELAXED);
}

CK_RV tok_enter(const char *fn)
{
    if (!initialized_here())
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    if (tok_lock_acquire(&module_lock) != CKR_OK)
        return CKR_GENERAL_ERROR;
    if (!is_initialized()) { /* finalised while we waited */
        tok_lock_release(&module_lock);
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    tok_log(TOK_LOG_DEBUG, "%s", fn);
    return CKR_OK;
}

CK_RV tok_leave(const char *fn, CK_RV rv)
{
    for (size_t i = 0; i < tok_g.ncards; i++) {
        tok_card *card = tok_g.cards[i];
        if (card != NULL) {
            if (card->in_txn)
                tok_card_end(card);
            card->checked = 0;
        }
    }
    if (rv != CKR_OK)
        tok_log(TOK_LOG_DEBUG, "%s -> 0x%lx", fn, (unsigned long)rv);
    tok_lock_release(&module_lock);
    return rv;
}

/* Free everything the module holds (not in a forked child: see above). */
static void module_free(void)
{
    /* Closing the sessions also logs their slots out on the card. */
    while (tok_g.nsessions > 0)
        tok_session_close(tok_g.sessions[tok_g.nsessions - 1]);
    free(tok_g.sessions);
    tok_object_drop_all();
    tok_issuer_close();
    tok_cards_close();
    tok_slots_free();
    tok_log_close();
    tok_config_free(&tok_g.config);
    memset(&tok_g, 0, sizeof(tok_g));
}

CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
    CK_RV rv;
    pthread_mutex_lock(&life_lock);
    if (!atfork_registered) {
        if (pthread_atfork(NULL, NULL, mark_forked_child) != 0) {
            rv = CKR_HOST_MEMORY;
            goto out;
        }
        atfork_registered = 1;
    }
    if (is_initialized()) {
        if (initialized_here()) {
            rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
            goto out;
        }
        /* Forked child: abandon the parent's state without touching it. */
        memset(&tok_g, 0, sizeof(tok_g));
        memset(&module_lock, 0, sizeof(module_lock));
    }
    rv = tok_lock_init(&module_lock, pInitArgs);
    if (rv != CKR_OK)
        goto out;
    rv = tok_config_load(&tok_g.config);
    if (rv != CKR_OK) {
        tok_lock_destroy(&module_lock);
        goto out;
    }
    tok_log_open(&tok_g.config);
    tok_wait_start();
    tok_g.pid = getpid();
    __atomic_store_n(&forked_since_init, 0, __ATOMIC_RELAXED);
    tok_g.next_session = 1;
    tok_g.next_object = 1;
    tok_cards_open(); /* a card that cannot be opened is logged and leaves no slots */
    tok_log(TOK_LOG_INFO, "initialised (%s), %zu card(s)", PACKAGE_STRING, tok_g.ncards);
    __atomic_store_n(&tok_g.initialized, 1, __ATOMIC_RELEASE);
out:
    pthread_mutex_unlock(&life_lock);
    return rv;
}

CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
    if (pReserved != NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&life_lock);
    if (!initialized_here()) {
        pthread_mutex_unlock(&life_lock);
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    /* Wake blocked C_WaitForSlotEvent calls (they hold no lock) and let them leave. */
    tok_wait_stop();
    if (tok_lock_acquire(&module_lock) != CKR_OK) {
        pthread_mutex_unlock(&life_lock);
        return CKR_GENERAL_ERROR;
    }
    __atomic_store_n(&tok_g.initialized, 0, __ATOMIC_RELEASE);
    module_free();
    tok_lock_release(&module_lock);
    tok_lock_destroy(&module_lock);
    pthread_mutex_unlock(&life_lock);
    return CKR_OK;
}

CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
    TOK_ENTER();
    TOK_CHECK(pInfo != NULL, CKR_ARGUMENTS_BAD);
    memset(pInfo, 0, sizeof(*pInfo));
    pInfo->cryptokiVersion.major = CRYPTOKI_VERSION_MAJOR;
    pInfo->cryptokiVersion.minor = CRYPTOKI_VERSION_MINOR;
    tok_pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "SKS");
    tok_pad(pInfo->libraryDescription, sizeof(pInfo->libraryDescription),
            "SKS Secure Key Store PKCS#11");
    unsigned major = 0, minor = 0;
    if (sscanf(PACKAGE_VERSION, "%u.%u", &major, &minor) == 2) {
        pInfo->libraryVersion.major = (CK_BYTE)major;
        pInfo->libraryVersion.minor = (CK_BYTE)minor;
    }
    TOK_LEAVE();
}

/* Parallel functions are a legacy of v1: the answer is fixed by the standard. */
CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    rv = CKR_FUNCTION_NOT_PARALLEL;
    TOK_LEAVE();
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    rv = CKR_FUNCTION_NOT_PARALLEL;
    TOK_LEAVE();
}

/* Operation state would contain card-bound state that cannot be restored elsewhere. */
CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                          CK_ULONG_PTR pulOperationStateLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pulOperationStateLen != NULL, CKR_ARGUMENTS_BAD);
    rv = CKR_FUNCTION_NOT_SUPPORTED;
    TOK_LEAVE();
}

CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                          CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                          CK_OBJECT_HANDLE hAuthenticationKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pOperationState != NULL || ulOperationStateLen == 0, CKR_ARGUMENTS_BAD);
    rv = CKR_FUNCTION_NOT_SUPPORTED;
    TOK_LEAVE();
}

static CK_FUNCTION_LIST function_list = {
    {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR},
    C_Initialize,
    C_Finalize,
    C_GetInfo,
    C_GetFunctionList,
    C_GetSlotList,
    C_GetSlotInfo,
    C_GetTokenInfo,
    C_GetMechanismList,
    C_GetMechanismInfo,
    C_InitToken,
    C_InitPIN,
    C_SetPIN,
    C_OpenSession,
    C_CloseSession,
    C_CloseAllSessions,
    C_GetSessionInfo,
    C_GetOperationState,
    C_SetOperationState,
    C_Login,
    C_Logout,
    C_CreateObject,
    C_CopyObject,
    C_DestroyObject,
    C_GetObjectSize,
    C_GetAttributeValue,
    C_SetAttributeValue,
    C_FindObjectsInit,
    C_FindObjects,
    C_FindObjectsFinal,
    C_EncryptInit,
    C_Encrypt,
    C_EncryptUpdate,
    C_EncryptFinal,
    C_DecryptInit,
    C_Decrypt,
    C_DecryptUpdate,
    C_DecryptFinal,
    C_DigestInit,
    C_Digest,
    C_DigestUpdate,
    C_DigestKey,
    C_DigestFinal,
    C_SignInit,
    C_Sign,
    C_SignUpdate,
    C_SignFinal,
    C_SignRecoverInit,
    C_SignRecover,
    C_VerifyInit,
    C_Verify,
    C_VerifyUpdate,
    C_VerifyFinal,
    C_VerifyRecoverInit,
    C_VerifyRecover,
    C_DigestEncryptUpdate,
    C_DecryptDigestUpdate,
    C_SignEncryptUpdate,
    C_DecryptVerifyUpdate,
    C_GenerateKey,
    C_GenerateKeyPair,
    C_WrapKey,
    C_UnwrapKey,
    C_DeriveKey,
    C_SeedRandom,
    C_GenerateRandom,
    C_GetFunctionStatus,
    C_CancelFunction,
    C_WaitForSlotEvent,
};

/* The only symbol the module exports; usable before C_Initialize. */
CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    if (ppFunctionList == NULL)
        return CKR_ARGUMENTS_BAD;
    *ppFunctionList = &function_list;
    return CKR_OK;
}
