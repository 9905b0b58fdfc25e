/* redis_cmd.c — argv vectors for Redis commands. */
#include "redis_cmd.h"

#include "alloc.h"
#include "error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void mw_redis_cmd_init(struct mw_redis_cmd *c)
{
    memset(c, 0, sizeof *c);
}

void mw_redis_cmd_free(struct mw_redis_cmd *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->argc; i++)
        mw_free(c->argv[i]);
    mw_free(c->argv);
    mw_free(c->argvlen);
    memset(c, 0, sizeof *c);
}

static int grow(struct mw_redis_cmd *c)
{
    if (c->argc < c->cap)
        return 0;
    size_t cap = c->cap ? c->cap * 2 : 16;
    char **argv = mw_realloc(c->argv, cap * sizeof *argv);
    if (!argv)
        return MW_ENOMEM;
    c->argv = argv;
    size_t *lens = mw_realloc(c->argvlen, cap * sizeof *lens);
    if (!lens)
        return MW_ENOMEM;
    c->argvlen = lens;
    c->cap = cap;
    return 0;
}

static int take(struct mw_redis_cmd *c, char *owned)
{
    if (!owned || grow(c)) {
        mw_free(owned);
        return MW_ENOMEM;
    }
    c->argv[c->argc] = owned;
    c->argvlen[c->argc] = strlen(owned);
    c->argc++;
    return 0;
}

int mw_redis_cmd_add(struct mw_redis_cmd *c, const char *arg)
{
    return take(c, mw_strdup(arg));
}

int mw_redis_cmd_addb(struct mw_redis_cmd *c, const void *data, size_t len)
{
    char *copy = mw_malloc(len + 1);
    if (!copy || grow(c)) {
        mw_free(copy);
        return MW_ENOMEM;
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    c->argv[c->argc] = copy;
    c->argvlen[c->argc] = len;
    c->argc++;
    return 0;
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return NULL;
    char *s = mw_malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

int mw_redis_cmd_addf(struct mw_redis_cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = vformat(fmt, ap);
    va_end(ap);
    return take(c, s);
}

int mw_redis_cmd_add_int(struct mw_redis_cmd *c, int64_t v)
{
    char text[24], *at = text + sizeof text;
    uint64_t magnitude = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    *--at = '\0';
    do {
        *--at = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (v < 0)
        *--at = '-';
    return mw_redis_cmd_add(c, at);
}

int mw_redis_cmd_add_double(struct mw_redis_cmd *c, double v)
{
    if (v == trunc(v) && fabs(v) <= 9007199254740992.0)
        return mw_redis_cmd_add_int(c, (int64_t)v);
    return mw_redis_cmd_addf(c, "%.17g", v);
}
