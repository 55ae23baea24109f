/*
 * p11_crypto.c - the PKCS#11 entry points of chapter "cryptographic
 * functions": encryption, decryption, digests, signatures and their
 * verification. Each one validates its pointers, then hands over to
 * tok_sign.c, tok_cipher.c/tok_aes.c or tok_digest.c.
 *
 * Sign/verify with recovery and the dual-function calls are not offered:
 * they return CKR_FUNCTION_NOT_SUPPORTED for a valid session.
 *
 * An invalid argument ends the active operation like any other error
 * (the standard keeps an operation only after CKR_BUFFER_TOO_SMALL or a
 * successful length query).
 */
#include "token/p11_entry.h"
#include "token/tok_crypto.h"

/* Arguments a call rejects: end the call's operation if one of its kind is active. */
static CK_RV bad_arguments(tok_operation *op, enum tok_op_kind kind)
{
    if (op->kind == kind)
        tok_op_end(op);
    return CKR_ARGUMENTS_BAD;
}

/* Data pointer and length agree (NULL only for no data). */
static int data_ok(const void *p, CK_ULONG len)
{
    return p != NULL || len == 0;
}

/* ---- encryption ---------------------------------------------------------- */

CK_RV C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_encrypt_init(s, pMechanism, hKey));
    TOK_LEAVE();
}

CK_RV C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->encrypt, TOK_OPER_ENCRYPT));
    if (!data_ok(pData, ulDataLen) || pulEncryptedDataLen == NULL)
        TOK_FAIL(bad_arguments(&s->encrypt, TOK_OPER_ENCRYPT));
    TOK_TRY(tok_encrypt(s, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen));
    TOK_LEAVE();
}

CK_RV C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                      CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->encrypt, TOK_OPER_ENCRYPT));
    if (!data_ok(pPart, ulPartLen) || pulEncryptedPartLen == NULL)
        TOK_FAIL(bad_arguments(&s->encrypt, TOK_OPER_ENCRYPT));
    TOK_TRY(tok_encrypt_update(s, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen));
    TOK_LEAVE();
}

CK_RV C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                     CK_ULONG_PTR pulLastEncryptedPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->encrypt, TOK_OPER_ENCRYPT));
    if (pulLastEncryptedPartLen == NULL)
        TOK_FAIL(bad_arguments(&s->encrypt, TOK_OPER_ENCRYPT));
    TOK_TRY(tok_encrypt_final(s, pLastEncryptedPart, pulLastEncryptedPartLen));
    TOK_LEAVE();
}

/* ---- decryption ---------------------------------------------------------- */

CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_decrypt_init(s, pMechanism, hKey));
    TOK_LEAVE();
}

CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
                CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->decrypt, TOK_OPER_DECRYPT));
    if (!data_ok(pEncryptedData, ulEncryptedDataLen) || pulDataLen == NULL)
        TOK_FAIL(bad_arguments(&s->decrypt, TOK_OPER_DECRYPT));
    TOK_TRY(tok_decrypt(s, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen));
    TOK_LEAVE();
}

CK_RV C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                      CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->decrypt, TOK_OPER_DECRYPT));
    if (!data_ok(pEncryptedPart, ulEncryptedPartLen) || pulPartLen == NULL)
        TOK_FAIL(bad_arguments(&s->decrypt, TOK_OPER_DECRYPT));
    TOK_TRY(tok_decrypt_update(s, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen));
    TOK_LEAVE();
}

CK_RV C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->decrypt, TOK_OPER_DECRYPT));
    if (pulLastPartLen == NULL)
        TOK_FAIL(bad_arguments(&s->decrypt, TOK_OPER_DECRYPT));
    TOK_TRY(tok_decrypt_final(s, pLastPart, pulLastPartLen));
    TOK_LEAVE();
}

/* ---- digests ------------------------------------------------------------- */

CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_digest_init(s, pMechanism));
    TOK_LEAVE();
}

CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
               CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->digest, TOK_OPER_DIGEST));
    if (!data_ok(pData, ulDataLen) || pulDigestLen == NULL)
        TOK_FAIL(bad_arguments(&s->digest, TOK_OPER_DIGEST));
    TOK_TRY(tok_digest(s, pData, ulDataLen, pDigest, pulDigestLen));
    TOK_LEAVE();
}

CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->digest, TOK_OPER_DIGEST));
    if (!data_ok(pPart, ulPartLen))
        TOK_FAIL(bad_arguments(&s->digest, TOK_OPER_DIGEST));
    TOK_TRY(tok_digest_update(s, pPart, ulPartLen));
    TOK_LEAVE();
}

CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_digest_key(s, hKey));
    TOK_LEAVE();
}

CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->digest, TOK_OPER_DIGEST));
    if (pulDigestLen == NULL)
        TOK_FAIL(bad_arguments(&s->digest, TOK_OPER_DIGEST));
    TOK_TRY(tok_digest_final(s, pDigest, pulDigestLen));
    TOK_LEAVE();
}

/* ---- signatures ---------------------------------------------------------- */

CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_sign_init(s, pMechanism, hKey));
    TOK_LEAVE();
}

CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
             CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->sign, TOK_OPER_SIGN));
    if (!data_ok(pData, ulDataLen) || pulSignatureLen == NULL)
        TOK_FAIL(bad_arguments(&s->sign, TOK_OPER_SIGN));
    TOK_TRY(tok_sign(s, pData, ulDataLen, pSignature, pulSignatureLen));
    TOK_LEAVE();
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->sign, TOK_OPER_SIGN));
    if (!data_ok(pPart, ulPartLen))
        TOK_FAIL(bad_arguments(&s->sign, TOK_OPER_SIGN));
    TOK_TRY(tok_sign_update(s, pPart, ulPartLen));
    TOK_LEAVE();
}

CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->sign, TOK_OPER_SIGN));
    if (pulSignatureLen == NULL)
        TOK_FAIL(bad_arguments(&s->sign, TOK_OPER_SIGN));
    TOK_TRY(tok_sign_final(s, pSignature, pulSignatureLen));
    TOK_LEAVE();
}

CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_verify_init(s, pMechanism, hKey));
    TOK_LEAVE();
}

CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
               CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->verify, TOK_OPER_VERIFY));
    if (!data_ok(pData, ulDataLen) || !data_ok(pSignature, ulSignatureLen))
        TOK_FAIL(bad_arguments(&s->verify, TOK_OPER_VERIFY));
    TOK_TRY(tok_verify(s, pData, ulDataLen, pSignature, ulSignatureLen));
    TOK_LEAVE();
}

CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->verify, TOK_OPER_VERIFY));
    if (!data_ok(pPart, ulPartLen))
        TOK_FAIL(bad_arguments(&s->verify, TOK_OPER_VERIFY));
    TOK_TRY(tok_verify_update(s, pPart, ulPartLen));
    TOK_LEAVE();
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_TRY(tok_op_active(&s->verify, TOK_OPER_VERIFY));
    if (!data_ok(pSignature, ulSignatureLen))
        TOK_FAIL(bad_arguments(&s->verify, TOK_OPER_VERIFY));
    TOK_TRY(tok_verify_final(s, pSignature, ulSignatureLen));
    TOK_LEAVE();
}

/* ---- not offered ----------------------------------------------------------- */

CK_RV C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                        CK_OBJECT_HANDLE hKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_FAIL(CKR_FUNCTION_NOT_SUPPORTED);
    TOK_LEAVE();
}

CK_RV C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                    CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_FAIL(CKR_FUNCTION_NOT_SUPPORTED);
    TOK_LEAVE();
}

CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                          CK_OBJECT_HANDLE hKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_FAIL(CKR_FUNCTION_NOT_SUPPORTED);
    TOK_LEAVE();
}

CK_RV C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
                      CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_FAIL(CKR_FUNCTION_NOT_SUPPORTED);
    TOK_LEAVE();
}

CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                            CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_FAIL(CKR_FUNCTION_NOT_SUPPORTED);
    TOK_LEAVE();
}

CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                            CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_FAIL(CKR_FUNCTION_NOT_SUPPORTED);
    TOK_LEAVE();
}

CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                          CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_FAIL(CKR_FUNCTION_NOT_SUPPORTED);
    TOK_LEAVE();
}

CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                            CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_FAIL(CKR_FUNCTION_NOT_SUPPORTED);
    TOK_LEAVE();
}
