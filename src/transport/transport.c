/*
 * transport.c - what every backend shares: one APDU exchange with the
 * optional trace hook around it.
 */
#include "transport/transport.h"

int sks_transport_transmit(sks_transport *t, const uint8_t *cmd, size_t n, uint8_t *resp,
                           size_t *resp_len)
{
    if (t == NULL || cmd == NULL || resp == NULL || resp_len == NULL)
        return SKS_TRANSPORT_ERROR;
    *resp_len = 0;
    int rc = t->ops->transmit(t, cmd, n, resp, resp_len);
    if (t->trace != NULL)
        t->trace(t->trace_ctx, cmd, n, rc == SKS_TRANSPORT_OK ? resp : NULL,
                 rc == SKS_TRANSPORT_OK ? *resp_len : 0);
    return rc;
}
