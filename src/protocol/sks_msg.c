/*
 * sks_msg.c - the one table-driven codec for every SKS method: requests,
 * responses, error answers and MAC data all walk the field lists of
 * sks_msg_table.c, so no method has a hand-written layout.
 *
 * The encoder checks only what the wire format can represent (a byte[] up to
 * 65535 bytes, at most SKS_CERT_PATH_MAX certificates); the argument bounds
 * are the decoder's job, so a test can still build an out-of-bounds call and
 * watch the card reject it. The decoder is strict: structural damage is
 * SKS_ERR_FORMAT, a length outside a field's bounds is SKS_ERR_OPTION.
 */
#include "sks_msg.h"

#include <string.h>

/* Pointers to a field's storage inside a request/response struct. */
#define FIELD_PTR(obj, f, type) ((type *)(void *)((uint8_t *)(obj) + (f)->offset))
#define FIELD_CPTR(obj, f, type)                                                                   \
    ((const type *)(const void *)((const uint8_t *)(obj) + (f)->offset))

static void write_field(const sks_field *f, const void *obj, sks_writer *w)
{
    switch (f->type) {
    case SKS_F_BYTE:
        sks_put_byte(w, *FIELD_CPTR(obj, f, uint8_t));
        break;
    case SKS_F_BOOL:
        sks_put_bool(w, *FIELD_CPTR(obj, f, uint8_t));
        break;
    case SKS_F_SHORT:
        sks_put_short(w, *FIELD_CPTR(obj, f, uint16_t));
        break;
    case SKS_F_INT:
        sks_put_int(w, *FIELD_CPTR(obj, f, uint32_t));
        break;
    case SKS_F_BYTES: {
        const sks_view *v = FIELD_CPTR(obj, f, sks_view);
        sks_put_bytes(w, v->ptr, v->len);
        break;
    }
    case SKS_F_BLOB: {
        const sks_view *v = FIELD_CPTR(obj, f, sks_view);
        sks_put_blob(w, v->ptr, v->len);
        break;
    }
    case SKS_F_CERTS: {
        const sks_certpath *cp = FIELD_CPTR(obj, f, sks_certpath);
        if (cp->count > SKS_CERT_PATH_MAX) {
            w->failed = 1;
            break;
        }
        sks_put_byte(w, cp->count);
        for (size_t i = 0; i < cp->count; i++)
            sks_put_bytes(w, cp->cert[i].ptr, cp->cert[i].len);
        break;
    }
    default:
        w->failed = 1;
        break;
    }
}

int sks_fields_write(const sks_field *f, size_t n, uint8_t mask, const void *obj, sks_writer *w)
{
    for (size_t i = 0; i < n; i++) {
        if (f[i].flags & mask)
            write_field(&f[i], obj, w);
    }
    return w->failed ? -1 : 0;
}

/* A byte[]/blob length or a certificate count within [min, max]? */
static int within(const sks_field *f, size_t v)
{
    return v >= f->min && v <= f->max;
}

/* Read a certificate path: count byte, then count byte[]. */
static int read_certs(const sks_field *f, sks_reader *r, sks_certpath *cp)
{
    uint8_t count;
    if (sks_get_byte(r, &count) != 0)
        return SKS_ERR_FORMAT;
    if (count > SKS_CERT_PATH_MAX || !within(f, count)) {
        r->failed = 1;
        return SKS_ERR_FORMAT;
    }
    for (size_t i = 0; i < count; i++) {
        if (sks_get_bytes(r, &cp->cert[i]) != 0)
            return SKS_ERR_FORMAT;
    }
    for (size_t i = count; i < SKS_CERT_PATH_MAX; i++) {
        cp->cert[i].ptr = NULL;
        cp->cert[i].len = 0;
    }
    cp->count = count;
    return SKS_OK;
}

/* Read one field into its struct member; SKS_OK or the failure status. */
static int read_field(const sks_field *f, sks_reader *r, void *obj)
{
    switch (f->type) {
    case SKS_F_BYTE:
        return sks_get_byte(r, FIELD_PTR(obj, f, uint8_t)) == 0 ? SKS_OK : SKS_ERR_FORMAT;
    case SKS_F_BOOL:
        return sks_get_bool(r, FIELD_PTR(obj, f, uint8_t)) == 0 ? SKS_OK : SKS_ERR_FORMAT;
    case SKS_F_SHORT:
        return sks_get_short(r, FIELD_PTR(obj, f, uint16_t)) == 0 ? SKS_OK : SKS_ERR_FORMAT;
    case SKS_F_INT:
        return sks_get_int(r, FIELD_PTR(obj, f, uint32_t)) == 0 ? SKS_OK : SKS_ERR_FORMAT;
    case SKS_F_BYTES:
    case SKS_F_BLOB: {
        sks_view *v = FIELD_PTR(obj, f, sks_view);
        int rc = f->type == SKS_F_BYTES ? sks_get_bytes(r, v) : sks_get_blob(r, v);
        if (rc != 0)
            return SKS_ERR_FORMAT;
        if (!within(f, v->len)) {
            r->failed = 1;
            return SKS_ERR_OPTION;
        }
        return SKS_OK;
    }
    case SKS_F_CERTS:
        return read_certs(f, r, FIELD_PTR(obj, f, sks_certpath));
    default:
        r->failed = 1;
        return SKS_ERR_INTERNAL;
    }
}

int sks_fields_read(const sks_field *f, size_t n, uint8_t mask, sks_reader *r, void *obj,
                    const char **why)
{
    for (size_t i = 0; i < n; i++) {
        if (!(f[i].flags & mask))
            continue;
        int rc = read_field(&f[i], r, obj);
        if (rc != SKS_OK) {
            if (why != NULL)
                *why = f[i].name;
            return rc;
        }
    }
    return SKS_OK;
}

int sks_msg_encode_request(const sks_msgdesc *d, const void *req, sks_writer *w)
{
    sks_put_byte(w, d->id);
    return sks_fields_write(d->req, d->nreq, SKS_FF_WIRE, req, w);
}

/* Decode a whole field list from p[0..n) and insist every byte was used. */
static int decode_all(const sks_field *f, size_t nf, const uint8_t *p, size_t n, void *obj,
                      const char **why)
{
    sks_reader r;
    sks_reader_init(&r, p, n);
    int rc = sks_fields_read(f, nf, SKS_FF_WIRE, &r, obj, why);
    if (rc != SKS_OK)
        return rc;
    if (sks_reader_finish(&r) != 0) {
        if (why != NULL)
            *why = "trailing bytes";
        return SKS_ERR_FORMAT;
    }
    return SKS_OK;
}

int sks_msg_decode_request(const sks_msgdesc *d, const uint8_t *p, size_t n, void *req,
                           const char **why)
{
    return decode_all(d->req, d->nreq, p, n, req, why);
}

int sks_msg_encode_response(const sks_msgdesc *d, const void *resp, sks_writer *w)
{
    sks_put_byte(w, SKS_OK);
    return sks_fields_write(d->resp, d->nresp, SKS_FF_WIRE, resp, w);
}

void sks_msg_encode_error(sks_writer *w, uint8_t status, const char *message)
{
    if (message == NULL)
        message = "";
    size_t len = strlen(message);
    if (len > SKS_WIRE_BYTES_MAX)
        len = SKS_WIRE_BYTES_MAX;
    sks_put_byte(w, status);
    sks_put_bytes(w, message, len);
}

int sks_msg_decode_response(const sks_msgdesc *d, const uint8_t *p, size_t n, void *resp,
                            uint8_t *status, sks_view *error_string)
{
    if (p == NULL || n < 1)
        return -1;
    if (p[0] != SKS_OK) {
        sks_reader r;
        sks_view msg;
        sks_reader_init(&r, p + 1, n - 1);
        if (sks_get_bytes(&r, &msg) != 0 || sks_reader_finish(&r) != 0)
            return -1;
        *status = p[0];
        if (error_string != NULL)
            *error_string = msg;
        return 0;
    }
    if (decode_all(d->resp, d->nresp, p + 1, n - 1, resp, NULL) != SKS_OK)
        return -1;
    *status = SKS_OK;
    if (error_string != NULL) {
        error_string->ptr = NULL;
        error_string->len = 0;
    }
    return 0;
}

int sks_msg_macdata(const sks_msgdesc *d, const void *req, sks_writer *w)
{
    return sks_fields_write(d->req, d->nreq, SKS_FF_MAC, req, w);
}
