/*
 * store.h — the aggregator's Redis connection: hiredis async on the libuv loop.
 *
 * One connection, re-established with exponential backoff (capped by redis.retry_max) whenever
 * it drops; AUTH from a password file, never from the config text. Commands sent while the
 * connection is down fail at once (their callbacks get NULL), and callers retry: the apply
 * scripts are idempotent, so a retry after an unknown outcome is safe.
 */
#ifndef MW_AGGREGATOR_STORE_H
#define MW_AGGREGATOR_STORE_H

#include "aggregator_config.h"
#include "redis_cmd.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <uv.h>

struct mw_store;

/* `reply` is NULL when the command could not be sent or the connection dropped; it is freed by
 * hiredis after the callback returns. */
typedef void (*mw_store_reply_fn)(redisReply *reply, void *arg);
/* Called once all commands of an exec have replied: rc is 0 when every reply was a non-error. */
typedef void (*mw_store_done_fn)(int rc, void *arg);

/* Start connecting (asynchronously). Returns 0, MW_EIO (password file) or MW_ENOMEM. */
int mw_store_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg, struct mw_store **out);
/* Disconnect and free once the loop has closed the handles. Accepts NULL. */
void mw_store_destroy(struct mw_store *s);
bool mw_store_connected(const struct mw_store *s);

/* Send one command; `cb` gets its reply. Returns 0 or MW_EREDIS (not connected: cb not called). */
int mw_store_command(struct mw_store *s, const struct mw_redis_cmd *cmd, mw_store_reply_fn cb,
                     void *arg);

/* The same, for a command given as `argc` text arguments (copied). */
int mw_store_commandv(struct mw_store *s, mw_store_reply_fn cb, void *arg, size_t argc,
                      const char *const *argv);

/* Send `n` commands pipelined; `done` runs once after the last reply. Returns 0 or MW_EREDIS
 * (not connected: done not called). */
int mw_store_exec(struct mw_store *s, const struct mw_redis_cmd *cmds, size_t n,
                  mw_store_done_fn done, void *arg);

/* Commands sent since start (for the commands-per-record measure). */
uint64_t mw_store_commands_sent(const struct mw_store *s);

#endif
