/*
 * card_dispatch.c - runs one SKS call on the card: finds the method, decodes
 * its arguments strictly, runs the handler inside the transaction its table
 * entry asks for, aborts the provisioning session of a failed call, and
 * encodes the answer (results, or status and error string).
 *
 * This is the one place where the seed's rule "any incorrect call
 * terminates and removes the session" is enforced, so no handler can forget it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../protocol/sks_crypto.h"
#include "card_internal.h"

static const card_method card_methods[] = {
    {SKS_M_CREATE_PROVISIONING_SESSION, card_m_create_session, CARD_TXN_AUTO},
    {SKS_M_CLOSE_PROVISIONING_SESSION, card_m_close_session, CARD_TXN_AUTO},
    {SKS_M_ABORT_PROVISIONING_SESSION, card_m_abort_session, CARD_TXN_AUTO},
    {SKS_M_CREATE_PUK_POLICY, card_m_create_puk_policy, CARD_TXN_AUTO},
    {SKS_M_CREATE_PIN_POLICY, card_m_create_pin_policy, CARD_TXN_AUTO},
    {SKS_M_CREATE_KEY_PAIR, card_m_create_key_pair, CARD_TXN_AUTO},
    {SKS_M_SET_CERTIFICATE_PATH, card_m_set_certificate_path, CARD_TXN_AUTO},
    {SKS_M_POST_DELETE_KEY, card_m_post_delete_key, CARD_TXN_AUTO},
    {SKS_M_POST_UNLOCK_KEY, card_m_post_unlock_key, CARD_TXN_AUTO},
    {SKS_M_POST_UPDATE_KEY, card_m_post_update_key, CARD_TXN_AUTO},
    {SKS_M_RESTORE_PRIVATE_KEY, card_m_restore_private_key, CARD_TXN_AUTO},
    {SKS_M_IMPORT_PRIVATE_KEY, card_m_import_private_key, CARD_TXN_AUTO},
    {SKS_M_IMPORT_SESSION_KEY, card_m_import_session_key, CARD_TXN_NONE},
    {SKS_M_INJECT_PRIVATE_KEY, card_m_inject_private_key, CARD_TXN_AUTO},
    {SKS_M_DELETE_SESSION_KEY, card_m_delete_session_key, CARD_TXN_NONE},
    {SKS_M_GET_DEVICE_INFO, card_m_get_device_info, CARD_TXN_NONE},
    {SKS_M_ENUMERATE_KEYS, card_m_enumerate_keys, CARD_TXN_NONE},
    {SKS_M_GET_KEY_ATTRIBUTES, card_m_get_key_attributes, CARD_TXN_NONE},
    {SKS_M_SIGN_HASHED_DATA, card_m_sign_hashed_data, CARD_TXN_NONE},
    {SKS_M_ASYMMETRIC_DECRYPT, card_m_asymmetric_decrypt, CARD_TXN_NONE},
    {SKS_M_KEY_AGREEMENT, card_m_key_agreement, CARD_TXN_NONE},
    {SKS_M_DELETE_KEY, card_m_delete_key, CARD_TXN_SELF},
    {SKS_M_EXPORT_KEY, card_m_export_key, CARD_TXN_SELF},
    {SKS_M_VERIFY_PIN, card_m_verify_pin, CARD_TXN_SELF},
    {SKS_M_CHANGE_PIN, card_m_change_pin, CARD_TXN_SELF},
    {SKS_M_UNLOCK_PIN, card_m_unlock_pin, CARD_TXN_SELF},
    {SKS_M_LOGOUT, card_m_logout, CARD_TXN_NONE},
    {SKS_M_ENUMERATE_PIN_POLICIES, card_m_enumerate_pin_policies, CARD_TXN_NONE},
    {SKS_M_VERIFY_PUK, card_m_verify_puk, CARD_TXN_SELF},
    {SKS_M_CREATE_OBJECT, card_m_create_object, CARD_TXN_AUTO},
    {SKS_M_DELETE_OBJECT, card_m_delete_object, CARD_TXN_AUTO},
    {SKS_M_ENUMERATE_OBJECTS, card_m_enumerate_objects, CARD_TXN_NONE},
    {SKS_M_READ_OBJECT, card_m_read_object, CARD_TXN_NONE},
    {SKS_M_UPDATE_OBJECT, card_m_update_object, CARD_TXN_AUTO},
    {SKS_M_SET_KEY_ATTRIBUTES, card_m_set_key_attributes, CARD_TXN_AUTO},
    {SKS_M_RESET_PIN_POLICY, card_m_reset_pin_policy, CARD_TXN_SELF},
    {SKS_M_INITIALIZE_DKEK, card_m_initialize_dkek, CARD_TXN_AUTO},
    {SKS_M_IMPORT_DKEK_SHARE, card_m_import_dkek_share, CARD_TXN_AUTO},
    {SKS_M_GET_DKEK_STATUS, card_m_get_dkek_status, CARD_TXN_NONE},
    {SKS_M_WRAP_KEY, card_m_wrap_key, CARD_TXN_NONE},
    {SKS_M_UNWRAP_KEY, card_m_unwrap_key, CARD_TXN_AUTO},
    {SKS_M_ENUMERATE_KEY_ATTRIBUTES, card_m_enumerate_key_attributes, CARD_TXN_NONE},
    {SKS_M_COUNT_KEYS, card_m_count_keys, CARD_TXN_NONE},
};

int card_fail(card_call *call, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->error, sizeof(call->error), fmt, ap);
    va_end(ap);
    return status;
}

static const card_method *card_method_find(uint8_t id)
{
    for (size_t i = 0; i < sizeof(card_methods) / sizeof(card_methods[0]); i++)
        if (card_methods[i].id == id)
            return &card_methods[i];
    return NULL;
}

/* Remove a provisioning session after a failed call, if it is still open. */
static void card_abort_open_session(sks_card *card, uint32_t handle)
{
    card_session_rec s;
    memset(&s, 0, sizeof(s));
    if (card_store_begin(card->store) != 0)
        return;
    if (card_store_session_get(card->store, handle, &s) == SKS_OK && s.state == CARD_SESSION_OPEN &&
        card_store_session_purge(card->store, handle) == SKS_OK) {
        card_session_rec_free(&s);
        card_store_commit(card->store);
        return;
    }
    card_session_rec_free(&s);
    card_store_rollback(card->store);
}

/* Run a handler in the transaction mode its method asks for. */
static int card_run(card_call *call, const card_method *m, const void *req, void *resp)
{
    if (m->txn != CARD_TXN_AUTO)
        return m->fn(call, req, resp);
    if (card_store_begin(call->card->store) != 0)
        return card_fail(call, SKS_ERR_STORAGE, "cannot start a transaction");
    int status = m->fn(call, req, resp);
    if (status != SKS_OK) {
        card_store_rollback(call->card->store);
        return status;
    }
    if (card_store_commit(call->card->store) != 0)
        return card_fail(call, SKS_ERR_STORAGE, "cannot commit the transaction");
    return SKS_OK;
}

void sks_card_call(sks_card *card, const uint8_t *call_bytes, size_t n, sks_writer *answer)
{
    card_call call;
    sks_any_request req;
    sks_any_response resp;
    const char *why = NULL;
    int status;

    memset(&call, 0, sizeof(call));
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    call.card = card;
    for (size_t i = 0; i < sizeof(call.out) / sizeof(call.out[0]); i++)
        sks_writer_init(&call.out[i]);

    const sks_msgdesc *desc = n > 0 ? sks_msg_find(call_bytes[0]) : NULL;
    const card_method *m = n > 0 ? card_method_find(call_bytes[0]) : NULL;
    if (n == 0) {
        status = card_fail(&call, SKS_ERR_FORMAT, "empty call");
    } else if (desc == NULL || m == NULL) {
        status = card_fail(&call, SKS_ERR_NO_METHOD, "unknown method %u", call_bytes[0]);
    } else {
        status = sks_msg_decode_request(desc, call_bytes + 1, n - 1, &req, &why);
        if (status != SKS_OK) {
            card_fail(&call, status, "%s: %s", desc->name, why ? why : "malformed arguments");
            /* A malformed call naming a session is an incorrect call too. */
            if (desc->in_session && n >= 5)
                call.abort_session = sks_be32_get(call_bytes + 1);
        } else {
            status = card_run(&call, m, &req, &resp);
        }
    }

    /* Handlers name only open sessions (an expired one too: this removes it). */
    if (status != SKS_OK && call.abort_session != 0)
        card_abort_open_session(card, call.abort_session);

    if (status == SKS_OK && sks_msg_encode_response(desc, &resp, answer) != 0) {
        sks_writer_reset(answer);
        status = card_fail(&call, SKS_ERR_INTERNAL, "%s: answer too large", desc->name);
    }
    if (status != SKS_OK)
        sks_msg_encode_error(answer, (uint8_t)status,
                             call.error[0] ? call.error : sks_status_name((uint8_t)status));

    for (size_t i = 0; i < sizeof(call.out) / sizeof(call.out[0]); i++)
        sks_writer_free(&call.out[i]);
    sks_cleanse(&req, sizeof(req));
    sks_cleanse(&resp, sizeof(resp));
}
