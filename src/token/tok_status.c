/*
 * tok_status.c - what an SKS status byte means in PKCS#11 terms. Most
 * statuses have one meaning; a few depend on the method that answered
 * (a wrong value is a bad PIN for verifyPIN but bad data for a decryption).
 */
#include "token/tok.h"
#include "pkcs11/sks-pkcs11.h"

static int is_pin_method(uint8_t m)
{
    return m == SKS_M_VERIFY_PIN || m == SKS_M_CHANGE_PIN || m == SKS_M_UNLOCK_PIN ||
           m == SKS_M_VERIFY_PUK;
}

static int is_object_method(uint8_t m)
{
    return m == SKS_M_CREATE_OBJECT || m == SKS_M_DELETE_OBJECT || m == SKS_M_READ_OBJECT ||
           m == SKS_M_UPDATE_OBJECT || m == SKS_M_SET_KEY_ATTRIBUTES ||
           m == SKS_M_GET_KEY_ATTRIBUTES || m == SKS_M_DELETE_KEY;
}

static int is_key_use(uint8_t m)
{
    return m == SKS_M_SIGN_HASHED_DATA || m == SKS_M_ASYMMETRIC_DECRYPT ||
           m == SKS_M_KEY_AGREEMENT || m == SKS_M_EXPORT_KEY;
}

CK_RV tok_status_to_rv(uint8_t status, uint8_t method)
{
    switch (status) {
    case SKS_OK:
        return CKR_OK;
    case SKS_ERR_AUTHENTICATION:
        return CKR_PIN_INCORRECT;
    case SKS_ERR_STORAGE:
        return CKR_DEVICE_MEMORY;
    case SKS_ERR_CRYPTO:
        if (method == SKS_M_ASYMMETRIC_DECRYPT)
            return CKR_ENCRYPTED_DATA_INVALID;
        if (method == SKS_M_KEY_AGREEMENT)
            return CKR_MECHANISM_PARAM_INVALID;
        if (method == SKS_M_IMPORT_PRIVATE_KEY || method == SKS_M_CREATE_KEY_PAIR ||
            method == SKS_M_SET_CERTIFICATE_PATH)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        return CKR_FUNCTION_FAILED;
    case SKS_ERR_NO_KEY:
        if (is_object_method(method))
            return CKR_OBJECT_HANDLE_INVALID;
        return CKR_KEY_HANDLE_INVALID;
    case SKS_ERR_ALGORITHM:
        if (is_key_use(method))
            return CKR_KEY_TYPE_INCONSISTENT;
        return CKR_MECHANISM_INVALID;
    case SKS_ERR_NOT_ALLOWED:
        if (method == SKS_M_EXPORT_KEY)
            return CKR_KEY_UNEXTRACTABLE;
        if (is_key_use(method))
            return CKR_KEY_FUNCTION_NOT_PERMITTED;
        if (method == SKS_M_VERIFY_PUK || method == SKS_M_UNLOCK_PIN)
            return CKR_USER_TYPE_INVALID; /* the policy has no PUK */
        return CKR_ACTION_PROHIBITED;
    case SKS_ERR_OPTION:
        if (is_pin_method(method))
            return CKR_PIN_INVALID;
        if (is_object_method(method))
            return CKR_ATTRIBUTE_VALUE_INVALID;
        if (method == SKS_M_SIGN_HASHED_DATA)
            return CKR_DATA_LEN_RANGE;
        if (method == SKS_M_ASYMMETRIC_DECRYPT)
            return CKR_ENCRYPTED_DATA_LEN_RANGE;
        return CKR_ARGUMENTS_BAD;
    case SKS_ERR_PIN_BLOCKED:
        return CKR_PIN_LOCKED;
    case SKS_ERR_NOT_AUTHENTICATED:
        return CKR_USER_NOT_LOGGED_IN;
    case SKS_ERR_NO_METHOD:
        return CKR_FUNCTION_NOT_SUPPORTED;
    case SKS_ERR_NO_POLICY:
        return CKR_TOKEN_NOT_PRESENT;
    case SKS_ERR_MAC:
    case SKS_ERR_NO_SESSION:
    case SKS_ERR_SESSION_VERIFY:
        return CKR_FUNCTION_FAILED;
    case SKS_ERR_FORMAT:
    case SKS_ERR_INTERNAL:
    default:
        return CKR_DEVICE_ERROR;
    }
}

CK_RV tok_transport_rv(int status)
{
    switch (status) {
    case SKS_TRANSPORT_OK:
        return CKR_OK;
    case SKS_TRANSPORT_NO_CARD: /* nothing usable in the reader */
        return CKR_TOKEN_NOT_PRESENT;
    case SKS_TRANSPORT_REMOVED: /* the card, its reader or pcscd went away */
        return CKR_DEVICE_REMOVED;
    default: /* includes a reset that could not be recovered from */
        return CKR_DEVICE_ERROR;
    }
}

/*
 * A provisioning call relayed by a vendor mechanism (tok_prov*.c): what the
 * application must tell apart comes back as CKR_VENDOR_SKS(status) where no
 * standard value says it (sks-pkcs11(7), VENDOR MECHANISMS).
 */
CK_RV tok_status_to_rv_prov(uint8_t status, uint8_t method)
{
    switch (status) {
    case SKS_ERR_MAC:
    case SKS_ERR_NO_SESSION:
    case SKS_ERR_SESSION_VERIFY:
    case SKS_ERR_NOT_ALLOWED:
    case SKS_ERR_NO_POLICY:
        return CKR_VENDOR_SKS(status);
    case SKS_ERR_CRYPTO:
        /* The issuer's key or a certificate; else an encrypted value that does not decrypt. */
        if (method == SKS_M_CREATE_PROVISIONING_SESSION || method == SKS_M_SET_CERTIFICATE_PATH)
            return CKR_MECHANISM_PARAM_INVALID;
        return CKR_ENCRYPTED_DATA_INVALID;
    case SKS_ERR_OPTION:
    case SKS_ERR_ALGORITHM:
        return CKR_MECHANISM_PARAM_INVALID;
    case SKS_ERR_NO_KEY:
        return CKR_KEY_HANDLE_INVALID;
    default:
        return tok_status_to_rv(status, method);
    }
}
