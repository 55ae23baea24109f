/*
 * p11_keys.c - the PKCS#11 entry points of chapter "key management" and
 * "random number generation": C_GenerateKey, C_GenerateKeyPair, C_WrapKey,
 * C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom. Each validates
 * its pointers and hands over to tok_secret.c, tok_keypair.c or tok_derive.c.
 *
 * Random numbers come from OpenSSL's DRBG in the module (the embedded card's
 * generator is the same); seeding from the application is not accepted.
 */
#include <openssl/rand.h>

#include "token/p11_entry.h"
#include "token/tok_crypto.h"

CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL && phKey != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_tmpl_valid(pTemplate, ulCount));
    TOK_TRY(tok_generate_secret(s, pMechanism, pTemplate, ulCount, phKey));
    TOK_LEAVE();
}

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                        CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                        CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                        CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL && phPublicKey != NULL && phPrivateKey != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_tmpl_valid(pPublicKeyTemplate, ulPublicKeyAttributeCount));
    TOK_TRY(tok_tmpl_valid(pPrivateKeyTemplate, ulPrivateKeyAttributeCount));
    TOK_TRY(tok_generate_key_pair(s, slot, pMechanism, pPublicKeyTemplate,
                                  ulPublicKeyAttributeCount, pPrivateKeyTemplate,
                                  ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey));
    TOK_LEAVE();
}

CK_RV C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey,
                CK_ULONG_PTR pulWrappedKeyLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL && pulWrappedKeyLen != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_wrap_key(s, pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen));
    TOK_LEAVE();
}

CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                  CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
                  CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount,
                  CK_OBJECT_HANDLE_PTR phKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL && phKey != NULL, CKR_ARGUMENTS_BAD);
    TOK_CHECK(pWrappedKey != NULL || ulWrappedKeyLen == 0, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_tmpl_valid(pTemplate, ulAttributeCount));
    TOK_TRY(tok_unwrap_key(s, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate,
                           ulAttributeCount, phKey));
    TOK_LEAVE();
}

CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                  CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount,
                  CK_OBJECT_HANDLE_PTR phKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL && phKey != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_tmpl_valid(pTemplate, ulAttributeCount));
    TOK_TRY(tok_derive_key(s, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey));
    TOK_LEAVE();
}

CK_RV C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pSeed != NULL || ulSeedLen == 0, CKR_ARGUMENTS_BAD);
    TOK_FAIL(CKR_RANDOM_SEED_NOT_SUPPORTED);
    TOK_LEAVE();
}

CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData, CK_ULONG ulRandomLen)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pRandomData != NULL || ulRandomLen == 0, CKR_ARGUMENTS_BAD);
    for (CK_ULONG done = 0; done < ulRandomLen;) {
        CK_ULONG chunk = ulRandomLen - done > (1u << 20) ? (1u << 20) : ulRandomLen - done;
        TOK_CHECK(RAND_bytes(pRandomData + done, (int)chunk) == 1, CKR_FUNCTION_FAILED);
        done += chunk;
    }
    TOK_LEAVE();
}
