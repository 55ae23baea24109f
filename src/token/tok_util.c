/*
 * tok_util.c - small helpers shared by the entry points.
 */
#include <string.h>

#include "token/tok.h"

void tok_pad(CK_UTF8CHAR *dst, size_t len, const char *src)
{
    memset(dst, ' ', len);
    size_t n = src != NULL ? strlen(src) : 0;
    memcpy(dst, src, n < len ? n : len);
}
