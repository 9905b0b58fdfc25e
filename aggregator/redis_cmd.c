/* redis_cmd.c — argv vectors for Redis commands. */
#include "redis_cmd.h"

#include "alloc.h"
#include "error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CHUNK_FIRST_BYTES 256u      /* most commands outside a batch's plan fit */
#define CHUNK_MAX_BYTES (64u << 10) /* blocks double up to this */

struct mw_redis_cmd_chunk {
    struct mw_redis_cmd_chunk *next;
    size_t size, used;
    char data[];
};

void mw_redis_cmd_init(struct mw_redis_cmd *c)
{
    memset(c, 0, sizeof *c);
}

void mw_redis_cmd_free(struct mw_redis_cmd *c)
{
    if (!c)
        return;
    while (c->chunks) {
        struct mw_redis_cmd_chunk *next = c->chunks->next;
        mw_free(c->chunks);
        c->chunks = next;
    }
    mw_free(c->argv);
    mw_free(c->argvlen);
    memset(c, 0, sizeof *c);
}

/* `n` bytes for an argument, in the newest block or a new one (blocks never move: argv points
 * into them). NULL when out of memory. */
static char *room(struct mw_redis_cmd *c, size_t n)
{
    struct mw_redis_cmd_chunk *k = c->chunks;
    if (!k || k->size - k->used < n) {
        size_t size = !k ? CHUNK_FIRST_BYTES : k->size < CHUNK_MAX_BYTES ? k->size * 2 : k->size;
        if (size < n)
            size = n;
        k = mw_malloc(sizeof *k + size);
        if (!k)
            return NULL;
        k->next = c->chunks;
        k->size = size;
        k->used = 0;
        c->chunks = k;
    }
    char *at = k->data + k->used;
    k->used += n;
    return at;
}

/* Room in argv for `more` arguments. */
static int grow_by(struct mw_redis_cmd *c, size_t more)
{
    if (c->cap - c->argc >= more)
        return 0;
    size_t cap = c->cap ? c->cap * 2 : 16;
    while (cap - c->argc < more)
        cap *= 2;
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

static int grow(struct mw_redis_cmd *c)
{
    return grow_by(c, 1);
}

int mw_redis_cmd_take_args(struct mw_redis_cmd *c, struct mw_redis_cmd *src)
{
    if (!src->argc)
        return 0;
    if (grow_by(c, src->argc))
        return MW_ENOMEM;
    memcpy(c->argv + c->argc, src->argv, src->argc * sizeof *c->argv);
    memcpy(c->argvlen + c->argc, src->argvlen, src->argc * sizeof *c->argvlen);
    c->argc += src->argc;
    /* src's blocks go behind c's newest, which stays the one arguments are added to. */
    struct mw_redis_cmd_chunk *last = src->chunks;
    while (last && last->next)
        last = last->next;
    if (last) {
        if (c->chunks) {
            last->next = c->chunks->next;
            c->chunks->next = src->chunks;
        } else {
            c->chunks = src->chunks;
        }
    }
    src->chunks = NULL;
    mw_redis_cmd_free(src);
    return 0;
}

int mw_redis_cmd_addb(struct mw_redis_cmd *c, const void *data, size_t len)
{
    if (grow(c))
        return MW_ENOMEM;
    char *copy = room(c, len + 1);
    if (!copy)
        return MW_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    c->argv[c->argc] = copy;
    c->argvlen[c->argc] = len;
    c->argc++;
    return 0;
}

int mw_redis_cmd_add(struct mw_redis_cmd *c, const char *arg)
{
    return mw_redis_cmd_addb(c, arg, strlen(arg));
}

int mw_redis_cmd_addf(struct mw_redis_cmd *c, const char *fmt, ...)
{
    va_list ap, copy;
    va_start(ap, fmt);
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    int rc = n < 0 ? MW_ENOMEM : grow(c);
    char *s = rc ? NULL : room(c, (size_t)n + 1);
    if (s) {
        vsnprintf(s, (size_t)n + 1, fmt, ap);
        c->argv[c->argc] = s;
        c->argvlen[c->argc] = strlen(s);
        c->argc++;
    }
    va_end(ap);
    return s ? 0 : MW_ENOMEM;
}

int mw_redis_cmd_add_int(struct mw_redis_cmd *c, int64_t v)
{
    char text[24], *at = text + sizeof text;
    uint64_t magnitude = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
    *--at = '\0';
    for (; magnitude >= 100; magnitude /= 100) { /* two digits a division: event times have 13 */
        at -= 2;
        memcpy(at, pairs + 2 * (magnitude % 100), 2);
    }
    if (magnitude >= 10) {
        at -= 2;
        memcpy(at, pairs + 2 * magnitude, 2);
    } else {
        *--at = (char)('0' + magnitude);
    }
    if (v < 0)
        *--at = '-';
    return mw_redis_cmd_addb(c, at, (size_t)(text + sizeof text - 1 - at));
}

int mw_redis_cmd_add_double(struct mw_redis_cmd *c, double v)
{
    if (v == trunc(v) && fabs(v) <= 9007199254740992.0)
        return mw_redis_cmd_add_int(c, (int64_t)v);
    return mw_redis_cmd_addf(c, "%.17g", v);
}
