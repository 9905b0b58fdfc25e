/* buf.c — bounded growable buffer. */
#include "buf.h"

#include "alloc.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

void mw_buf_init(struct mw_buf *b, size_t max_bytes)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max_bytes = max_bytes;
}

void mw_buf_free(struct mw_buf *b)
{
    if (!b)
        return;
    mw_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void mw_buf_reset(struct mw_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int mw_buf_reserve(struct mw_buf *b, size_t extra)
{
    if (extra > b->max_bytes || b->len > b->max_bytes - extra)
        return MW_EFULL;
    size_t need = b->len + extra + 1; /* room for the terminating NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max_bytes + 1)
        cap = b->max_bytes + 1;
    char *data = mw_realloc(b->data, cap);
    if (!data)
        return MW_ENOMEM;
    b->data = data;
    b->cap = cap;
    return 0;
}

int mw_buf_append(struct mw_buf *b, const void *data, size_t n)
{
    int rc = mw_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int mw_buf_append_str(struct mw_buf *b, const char *s)
{
    return mw_buf_append(b, s, strlen(s));
}

int mw_buf_vprintf(struct mw_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return MW_EINVAL;
    int rc = mw_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int mw_buf_printf(struct mw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = mw_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

char *mw_buf_detach(struct mw_buf *b, size_t *len)
{
    char *data = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return data;
}
