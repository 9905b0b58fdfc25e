/*
 * redis_cmd.h — Redis commands built as argv vectors, ready for redisAsyncCommandArgv.
 *
 * The aggregator prepares every command of a batch before sending any, so that a batch is
 * either fully prepared or refused, and so the preparation can be unit-tested without Redis.
 */
#ifndef MW_AGGREGATOR_REDIS_CMD_H
#define MW_AGGREGATOR_REDIS_CMD_H

#include <stddef.h>
#include <stdint.h>

struct mw_redis_cmd_chunk; /* a block of argument bytes */

struct mw_redis_cmd {
    size_t argc;
    size_t cap;
    char **argv;     /* the arguments, NUL-terminated, in `chunks` */
    size_t *argvlen; /* their lengths */
    /* The arguments' bytes, newest block first: a batch's plan has thousands of arguments,
     * one malloc and free each was a tenth of the aggregator's instructions. */
    struct mw_redis_cmd_chunk *chunks;
};

void mw_redis_cmd_init(struct mw_redis_cmd *c);
void mw_redis_cmd_free(struct mw_redis_cmd *c);
/* Append one argument (copied). Return 0 or MW_ENOMEM. */
int mw_redis_cmd_add(struct mw_redis_cmd *c, const char *arg);
/* Append `len` bytes (copied; may hold NUL bytes). Return 0 or MW_ENOMEM. */
int mw_redis_cmd_addb(struct mw_redis_cmd *c, const void *data, size_t len);
/* Append every argument of `src` to `c` without copying their bytes: src's blocks become c's,
 * and src is left empty (as after mw_redis_cmd_init). Return 0 or MW_ENOMEM (src untouched). */
int mw_redis_cmd_take_args(struct mw_redis_cmd *c, struct mw_redis_cmd *src);
int mw_redis_cmd_addf(struct mw_redis_cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append an integer, or a finite double as Redis reads it back exactly: integral values within
 * 2^53 as integers, others with 17 significant digits. Without printf for the common integral
 * case: a batch's plan formats thousands of these. Return 0 or MW_ENOMEM. */
int mw_redis_cmd_add_int(struct mw_redis_cmd *c, int64_t v);
int mw_redis_cmd_add_double(struct mw_redis_cmd *c, double v);

#endif
