/*
 * tool_dkek_backup.c - sks-tool --wrap-key and --unwrap-key (tool_dkek.h).
 *
 * The file is the card's backup blob as wrapKey returns it: the key's ID,
 * name, usage, algorithm, flags, public key and certificate path in the
 * clear and bound by the CMAC, the private key encrypted (docs/dkek.md).
 * Restoring reads that header first, so a backup of another DKEK is
 * refused before any PIN is asked, with both key check values shown, and so
 * is a backup of a key with a PIN aimed at the token without PIN.
 */
#include "tools/tool_dkek.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "protocol/sks_dkek.h"
#include "protocol/sks_msg.h"
#include "tools/tool_card.h"
#include "tools/tool_common.h"

#define BACKUP_MAX (1u << 20)

/* The card's complete keys, each passed to `each` until it returns non-zero. */
static int for_each_key(sks_card *card,
                        int (*each)(void *ctx, uint32_t h, const sks_resp_get_key_attributes *a),
                        void *ctx)
{
    sks_writer page_answer, key_answer;
    uint32_t after = 0;
    int rc = 0, more = 0;
    sks_writer_init(&page_answer);
    sks_writer_init(&key_answer);
    do {
        sks_req_enumerate_keys req = {after};
        sks_resp_enumerate_keys page;
        if (tool_card_rpc(card, SKS_M_ENUMERATE_KEYS, &req, &page, &page_answer) != 0 ||
            page.handles.len % 4 != 0) {
            rc = -1;
            break;
        }
        for (size_t i = 0; rc == 0 && i < page.handles.len; i += 4) {
            uint32_t h = sks_be32_get(page.handles.ptr + i);
            sks_req_key_handle kreq = {h};
            sks_resp_get_key_attributes a;
            if (h <= after) {
                rc = -1;
                break;
            }
            after = h;
            if (tool_card_rpc(card, SKS_M_GET_KEY_ATTRIBUTES, &kreq, &a, &key_answer) != 0)
                rc = -1;
            else
                rc = each(ctx, h, &a);
        }
        more = page.more && page.handles.len > 0;
    } while (rc == 0 && more);
    sks_writer_free(&page_answer);
    sks_writer_free(&key_answer);
    return rc < 0 ? -1 : 0;
}

typedef struct {
    sks_view id;
    uint32_t handle; /* 0: none found */
    uint32_t pin_policy;
    unsigned matches;
} key_by_id;

static int match_id(void *ctx, uint32_t h, const sks_resp_get_key_attributes *a)
{
    key_by_id *k = ctx;
    if (a->id.len == k->id.len && memcmp(a->id.ptr, k->id.ptr, k->id.len) == 0) {
        k->handle = h;
        k->pin_policy = a->pin_policy_handle;
        k->matches++;
    }
    return 0;
}

/* The key the options name (--key-reference or --id): its handle and PIN policy. 0 or -1. */
static int find_key(sks_card *card, const tool_dkek_opts *o, uint32_t *handle, uint32_t *policy)
{
    sks_writer answer;
    if (o->key_reference >= 0) {
        sks_req_key_handle req = {(uint32_t)o->key_reference};
        sks_resp_get_key_attributes a;
        sks_writer_init(&answer);
        int rc = tool_card_rpc(card, SKS_M_GET_KEY_ATTRIBUTES, &req, &a, &answer);
        *handle = req.key_handle;
        *policy = a.pin_policy_handle;
        sks_writer_free(&answer);
        return rc;
    }
    key_by_id k = {{o->id, o->id_len}, 0, 0, 0};
    if (for_each_key(card, match_id, &k) != 0)
        return -1;
    if (k.matches != 1) {
        fprintf(stderr, "%s: %s key with this ID: name it with --key-reference\n", tool_prog,
                k.matches == 0 ? "no" : "more than one");
        return -1;
    }
    *handle = k.handle;
    *policy = k.pin_policy;
    return 0;
}

int tool_dkek_wrap(const tool_dkek_opts *o)
{
    sks_card *card = tool_open_card(o->state_dir);
    sks_writer answer;
    uint32_t handle = 0, policy = 0;
    uint8_t status;
    int rc = EXIT_FAIL;
    if (card == NULL)
        return EXIT_FAIL;
    sks_writer_init(&answer);
    if (find_key(card, o, &handle, &policy) != 0)
        goto out;
    if (policy != SKS_HANDLE_NONE && tool_verify_pin(card, o, policy, "the key's token") != 0)
        goto out;
    sks_req_wrap_key req = {handle};
    sks_resp_wrap_key resp;
    if (tool_card_call(card, SKS_M_WRAP_KEY, &req, &resp, &answer, &status, 0) != 0) {
        if (status == SKS_ERR_NOT_ALLOWED)
            fprintf(stderr,
                    "%s: the key must allow backup and the card's DKEK be complete "
                    "(see --dkek-status)\n",
                    tool_prog);
        goto out;
    }
    if (tool_write_file(o->file, resp.blob.ptr, resp.blob.len, o->force) != 0)
        goto out;
    printf("Key %lu wrapped into %s (%zu bytes), DKEK key check value ", (unsigned long)handle,
           o->file, resp.blob.len);
    for (size_t i = 0; i < SKS_DKEK_KCV_LEN; i++)
        printf("%02X", resp.blob.ptr[i]);
    printf("\n");
    rc = EXIT_OK;
out:
    sks_writer_free(&answer);
    sks_card_close(card);
    return rc;
}

/* ---- unwrap ------------------------------------------------------------------ */

static void print_kcv(const uint8_t *kcv)
{
    for (size_t i = 0; i < SKS_DKEK_KCV_LEN; i++)
        printf("%02X", kcv[i]);
}

/* What the backup holds, from its clear header. */
static void describe(const sks_dkek_blob *b)
{
    printf("Key backup:\n  ID:                ");
    tool_print_id(stdout, b->id);
    printf("\n  Friendly name:     ");
    tool_print_text(stdout, b->friendly_name.ptr, b->friendly_name.len);
    printf("\n  Token (PIN policy): ");
    if (b->policy_id.len > 0)
        tool_print_id(stdout, b->policy_id);
    else
        printf("none (a key without PIN)");
    printf("\n  Certificates:      %u\n", b->cert_path.len > 0 ? b->cert_path.ptr[0] : 0);
    printf("  DKEK key check value: ");
    print_kcv(b->kcv.ptr);
    printf("\n");
}

/* The PIN policy with this ID, from enumeratePINPolicies; 0 when there is none. */
static int policy_by_id(sks_card *card, sks_view id, uint32_t *handle)
{
    sks_resp_enumerate_pin_policies resp;
    sks_writer answer;
    int none = 0, rc = -1;
    *handle = 0;
    sks_writer_init(&answer);
    if (tool_card_rpc(card, SKS_M_ENUMERATE_PIN_POLICIES, &none, &resp, &answer) == 0) {
        sks_reader r;
        rc = 0;
        sks_reader_init(&r, resp.policies.ptr, resp.policies.len);
        while (rc == 0 && r.pos < r.len) {
            sks_pin_policy_info rec;
            if (sks_fields_read(sks_rec_pin_policy_info.req, sks_rec_pin_policy_info.nreq,
                                SKS_FF_WIRE, &r, &rec, NULL) != SKS_OK)
                rc = -1;
            else if (rec.id.len == id.len && memcmp(rec.id.ptr, id.ptr, id.len) == 0)
                *handle = rec.handle;
        }
    }
    sks_writer_free(&answer);
    return rc;
}

/* Why a backup of a key with a PIN is not restored onto the token of keys without PIN. */
static void say_needs_pin(const sks_dkek_blob *b)
{
    fprintf(stderr, "%s: the backup is of a key with a PIN (token ", tool_prog);
    tool_print_id(stderr, b->policy_id);
    fprintf(stderr, "), not onto the token without PIN: restore it onto a token with a PIN "
                    "(--token LABEL) and give that token's PIN\n");
}

/*
 * The PIN policy the key goes under: --token, else the one it had (by ID),
 * else none. A key that had a PIN never goes to the token without PIN (the
 * card refuses it too): that is refused here, before any PIN is asked.
 */
static int target_policy(sks_card *card, const tool_dkek_opts *o, const sks_dkek_blob *b,
                         uint32_t *policy)
{
    sks_view id = b->policy_id;
    if (o->token != NULL)
        id = (sks_view){(const uint8_t *)o->token, strlen(o->token)};
    *policy = SKS_HANDLE_NONE;
    if (id.len == 0 && b->policy_id.len > 0) {
        say_needs_pin(b);
        return -1;
    }
    if (id.len == 0)
        return 0;
    if (policy_by_id(card, id, policy) != 0)
        return -1;
    if (*policy == SKS_HANDLE_NONE) {
        fprintf(stderr, "%s: no token \"%.*s\" on this card: name one with --token LABEL%s\n",
                tool_prog, (int)id.len, (const char *)id.ptr,
                b->policy_id.len > 0 ? "" : ", or --token '' for a key without PIN");
        return -1;
    }
    return 0;
}

/* The KCV of the card's complete DKEK, or -1 with the reason printed. */
static int card_kcv(sks_card *card, uint8_t kcv[SKS_DKEK_KCV_LEN])
{
    sks_resp_dkek_status st;
    sks_writer answer;
    int none = 0, rc = -1;
    sks_writer_init(&answer);
    if (tool_card_rpc(card, SKS_M_GET_DKEK_STATUS, &none, &st, &answer) == 0) {
        if (st.state != SKS_DKEK_READY)
            fprintf(stderr, "%s: the card's DKEK is not complete (see --dkek-status)\n", tool_prog);
        else if (st.kcv.len == SKS_DKEK_KCV_LEN) {
            memcpy(kcv, st.kcv.ptr, SKS_DKEK_KCV_LEN);
            rc = 0;
        }
    }
    sks_writer_free(&answer);
    return rc;
}

/*
 * A key of the card with the backup's ID stands in the way. Without --force
 * that is an error. With --force it is renamed to a temporary ID (its PIN
 * first), so that it can come back if the restore fails; *moved gets its
 * handle and its ID and name are kept in `keep` (0: nothing in the way).
 */
static int move_aside(sks_card *card, const tool_dkek_opts *o, const sks_dkek_blob *b,
                      uint32_t verified_policy, uint32_t *moved, sks_writer *keep)
{
    key_by_id k = {b->id, 0, 0, 0};
    sks_writer answer;
    uint8_t temp_id[SKS_ID_MAX];
    *moved = 0;
    if (for_each_key(card, match_id, &k) != 0)
        return -1;
    if (k.matches == 0)
        return 0;
    if (!o->force) {
        fprintf(stderr, "%s: key %lu already has this ID: delete it first, or use --force\n",
                tool_prog, (unsigned long)k.handle);
        return -1;
    }
    if (k.pin_policy != SKS_HANDLE_NONE && k.pin_policy != verified_policy &&
        tool_verify_pin(card, o, k.pin_policy, "the token of the key to replace") != 0)
        return -1;
    sks_req_key_handle kh = {k.handle};
    sks_resp_get_key_attributes a;
    sks_writer_init(&answer);
    int rc = tool_card_rpc(card, SKS_M_GET_KEY_ATTRIBUTES, &kh, &a, &answer);
    if (rc == 0) {
        /* keep = L(ID) | L(FriendlyName), to put back on failure. */
        sks_put_bytes(keep, a.id.ptr, a.id.len);
        sks_put_bytes(keep, a.friendly_name.ptr, a.friendly_name.len);
        snprintf((char *)temp_id, sizeof(temp_id), "replaced-%08lx", (unsigned long)k.handle);
        sks_req_set_key_attributes req = {
            k.handle, {temp_id, strlen((char *)temp_id)}, a.friendly_name};
        rc = keep->failed ? -1 : tool_card_rpc(card, SKS_M_SET_KEY_ATTRIBUTES, &req, NULL, &answer);
    }
    sks_writer_free(&answer);
    if (rc == 0)
        *moved = k.handle;
    return rc;
}

/* After the restore: delete the key moved aside, or give it its ID back. */
static int settle_moved(sks_card *card, uint32_t moved, int restored, const sks_writer *keep)
{
    sks_writer answer;
    int rc;
    if (moved == 0)
        return 0;
    sks_writer_init(&answer);
    if (restored) {
        sks_req_delete_key del = {moved, {NULL, 0}};
        rc = tool_card_rpc(card, SKS_M_DELETE_KEY, &del, NULL, &answer);
        if (rc == 0)
            printf("Replaced key %lu\n", (unsigned long)moved);
    } else {
        sks_reader r;
        sks_req_set_key_attributes req = {moved, {NULL, 0}, {NULL, 0}};
        sks_reader_init(&r, keep->buf, keep->len);
        rc = sks_get_bytes(&r, &req.id) == 0 && sks_get_bytes(&r, &req.friendly_name) == 0
                 ? tool_card_rpc(card, SKS_M_SET_KEY_ATTRIBUTES, &req, NULL, &answer)
                 : -1;
        if (rc != 0)
            fprintf(stderr, "%s: key %lu keeps its temporary ID\n", tool_prog,
                    (unsigned long)moved);
    }
    sks_writer_free(&answer);
    return rc;
}

int tool_dkek_unwrap(const tool_dkek_opts *o)
{
    uint8_t *blob = malloc(BACKUP_MAX), kcv[SKS_DKEK_KCV_LEN];
    sks_dkek_blob b;
    const char *why = NULL;
    sks_card *card = NULL;
    sks_writer answer;
    uint32_t policy = SKS_HANDLE_NONE, moved = 0;
    uint8_t status;
    int rc = EXIT_FAIL;
    sks_writer keep;

    sks_writer_init(&answer);
    sks_writer_init(&keep);
    if (blob == NULL)
        goto out;
    long n = tool_read_file(o->file, blob, BACKUP_MAX);
    if (n < 0)
        goto out;
    if (sks_dkek_blob_parse(blob, (size_t)n, &b, &why) != 0) {
        fprintf(stderr, "%s: %s is not a key backup: %s\n", tool_prog, o->file, why);
        goto out;
    }
    describe(&b);
    if ((card = tool_open_card(o->state_dir)) == NULL || card_kcv(card, kcv) != 0)
        goto out;
    if (memcmp(kcv, b.kcv.ptr, SKS_DKEK_KCV_LEN) != 0) {
        fprintf(stderr, "%s: the backup was made under another DKEK: its key check value is ",
                tool_prog);
        for (size_t i = 0; i < SKS_DKEK_KCV_LEN; i++)
            fprintf(stderr, "%02X", b.kcv.ptr[i]);
        fprintf(stderr, ", the card's is ");
        for (size_t i = 0; i < SKS_DKEK_KCV_LEN; i++)
            fprintf(stderr, "%02X", kcv[i]);
        fprintf(stderr, "\n");
        goto out;
    }
    if (target_policy(card, o, &b, &policy) != 0)
        goto out;
    if (policy != SKS_HANDLE_NONE && tool_verify_pin(card, o, policy, "the token") != 0)
        goto out;
    if (move_aside(card, o, &b, policy, &moved, &keep) != 0)
        goto out;
    sks_req_unwrap_key req = {policy, {blob, (size_t)n}};
    sks_resp_unwrap_key resp;
    int restored = tool_card_call(card, SKS_M_UNWRAP_KEY, &req, &resp, &answer, &status, 0) == 0;
    if (!restored && status == SKS_ERR_MAC)
        fprintf(stderr, "%s: the backup has been altered or damaged\n", tool_prog);
    if (!restored && status == SKS_ERR_NOT_AUTHENTICATED && policy == SKS_HANDLE_NONE)
        say_needs_pin(&b);
    if (restored)
        printf("Key restored as key %lu\n", (unsigned long)resp.key_handle);
    if (settle_moved(card, moved, restored, &keep) == 0 && restored)
        rc = EXIT_OK;
out:
    sks_writer_free(&keep);
    free(blob);
    sks_writer_free(&answer);
    sks_card_close(card);
    return rc;
}
