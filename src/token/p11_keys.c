/*
 * p11_keys.c - the PKCS#11 entry points of chapter "key management" and
 * "random number generation": C_GenerateKey, C_GenerateKeyPair, C_WrapKey,
 * C_UnwrapKey, C_DeriveKey, C_SeedRandom, C_GenerateRandom. Each validates
 * its pointers and hands over to tok_secret.c, tok_keypair.c or tok_derive.c.
 *
 * The free slot's token is uninitialised and holds no objects: a token
 * object cannot be made there (CKR_TOKEN_WRITE_PROTECTED), session objects
 * can. Key pairs always have a token private key, so C_GenerateKeyPair is
 * refused there whatever the templates say.
 *
 * Random numbers come from the DRBG of the module's own OpenSSL context
 * (tok_ossl.h); seeding from the application is not accepted.
 */
#include "token/p11_entry.h"
#include "token/tok_crypto.h"
#include "token/tok_ossl.h"
#include "token/tok_soft.h"
#include "token/tok_vendor.h"

/* CKR_TOKEN_WRITE_PROTECTED for a token object (CKA_TOKEN true) on the free slot. */
static CK_RV free_slot_check(const tok_slot *slot, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_BBOOL token = CK_FALSE;
    if (slot->kind == TOK_SLOT_FREE && tok_tmpl_get_bool(tmpl, n, CKA_TOKEN, &token) && token)
        return CKR_TOKEN_WRITE_PROTECTED;
    return CKR_OK;
}

CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
    tok_session *s;
    tok_slot *slot;
    TOK_ENTER_SESSION(hSession, &s, &slot);
    TOK_CHECK(pMechanism != NULL && phKey != NULL, CKR_ARGUMENTS_BAD);
    TOK_TRY(tok_tmpl_valid(pTemplate, ulCount));
    TOK_TRY(free_slot_check(slot, pTemplate, ulCount));
    if (tok_vendor_mech(pMechanism->mechanism))
        TOK_TRY(tok_vendor_generate_key(s, slot, pMechanism, pTemplate, ulCount, phKey));
    else if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode: token secret keys too */
        TOK_TRY(tok_soft_generate_key(s, slot, pMechanism, pTemplate, ulCount, phKey));
    else
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
    TOK_CHECK(slot->kind != TOK_SLOT_FREE, CKR_TOKEN_WRITE_PROTECTED);
    if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode: a software key pair */
        TOK_FAIL(tok_soft_generate_key_pair(s, slot, pMechanism, pPublicKeyTemplate,
                                            ulPublicKeyAttributeCount, pPrivateKeyTemplate,
                                            ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey));
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
    if (tok_vendor_mech(pMechanism->mechanism))
        TOK_TRY(tok_vendor_wrap_key(s, slot, pMechanism, hWrappingKey, hKey, pWrappedKey,
                                    pulWrappedKeyLen));
    else if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode: software private keys too */
        TOK_TRY(tok_soft_wrap_key(s, slot, pMechanism, hWrappingKey, hKey, pWrappedKey,
                                  pulWrappedKeyLen));
    else
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
    TOK_TRY(free_slot_check(slot, pTemplate, ulAttributeCount));
    if (tok_vendor_mech(pMechanism->mechanism))
        TOK_TRY(tok_vendor_unwrap_key(s, slot, pMechanism, hUnwrappingKey, pWrappedKey,
                                      ulWrappedKeyLen, pTemplate, ulAttributeCount, phKey));
    else if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode: software private keys too */
        TOK_TRY(tok_soft_unwrap_key(s, slot, pMechanism, hUnwrappingKey, pWrappedKey,
                                    ulWrappedKeyLen, pTemplate, ulAttributeCount, phKey));
    else
        TOK_TRY(tok_unwrap_key(s, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen,
                               pTemplate, ulAttributeCount, phKey));
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
    TOK_TRY(free_slot_check(slot, pTemplate, ulAttributeCount));
    if (tok_vendor_mech(pMechanism->mechanism))
        TOK_TRY(tok_vendor_derive_key(s, slot, pMechanism, hBaseKey, pTemplate, ulAttributeCount,
                                      phKey));
    else if (slot->kind == TOK_SLOT_ISSUER) /* no-card mode: token secret keys too */
        TOK_TRY(
            tok_soft_derive_key(s, slot, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey));
    else
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
        TOK_CHECK(tok_ossl_random(pRandomData + done, chunk) == 0, CKR_FUNCTION_FAILED);
        done += chunk;
    }
    TOK_LEAVE();
}
