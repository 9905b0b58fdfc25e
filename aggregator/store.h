/*
 * store.h — the aggregator's Redis connection: hiredis async on the libuv loop.
 *
 * One connection, re-established with exponential backoff (capped by redis.retry_max) whenever
 * it drops; AUTH from a password file, never from the config text. Commands sent while the
 * connection is down fail at once (their callbacks get NULL), and callers retry: the apply
 * scripts are idempotent, so a retry after an unknown outcome is safe.
 *
 * Durability is checked on every connection and every few seconds: CONFIG GET appendonly,
 * appendfsync and maxmemory-policy (redis.durability says whether to warn or to refuse to apply
 * anything), and the epoch key `mw:epoch` (created with SET NX by the first aggregator to
 * connect): when it is gone or changed, Redis lost modelwatch's data (restarted without
 * persistence, or flushed) and the store says so in the log, on /metrics and in readiness.
 *
 * Lua scripts are registered once (mw_store_add_script) and loaded with SCRIPT LOAD on every
 * connection, before any other command; callers run them with EVALSHA. A NOSCRIPT answer (a
 * Redis restarted without its scripts, or SCRIPT FLUSH) makes the store load the script again
 * and resend the same command once, and only that second reply reaches the caller: NOSCRIPT
 * means the script did not run, so nothing is lost or applied twice.
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
/* Connected, and Redis answered on this connection (and has not stopped answering). */
bool mw_store_connected(const struct mw_store *s);
/* Connections closed because Redis left replies unanswered for redis.command_timeout. */
uint64_t mw_store_unanswered(const struct mw_store *s);

/* Register a Lua script (text and its SHA1 in lowercase hex, both borrowed: static storage) to
 * be loaded on every connection, and now if connected. Returns 0, MW_EFULL (more than a few
 * scripts) or MW_EINVAL (a digest that is not 40 hex digits). */
int mw_store_add_script(struct mw_store *s, const char *text, size_t len, const char *sha1);

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

/* Called with each reply of mw_store_exec_each (`i` is the command's index), before `done`. */
typedef void (*mw_store_each_fn)(size_t i, const redisReply *reply, void *arg);

/* mw_store_exec, showing every reply (NULL when the command failed to send or the connection
 * dropped) to `each` as it arrives. */
int mw_store_exec_each(struct mw_store *s, const struct mw_redis_cmd *cmds, size_t n,
                       mw_store_each_fn each, mw_store_done_fn done, void *arg);

/* Whether Redis keeps what is applied, as last checked (on every connection and every few
 * seconds): 1 yes, 0 no (appendonly no, appendfsync no, or an evicting maxmemory-policy), -1
 * not known (not connected yet, CONFIG refused, or redis.durability off). */
int mw_store_durable(const struct mw_store *s);

/* Times Redis was found to have lost modelwatch's data since start: its epoch key (`mw:epoch`,
 * set once by the first aggregator to connect) gone or replaced while connected to before. */
uint64_t mw_store_data_lost(const struct mw_store *s);

/* Whether the store is fit to serve: connected, not refusing a Redis that is not durable
 * (redis.durability: refuse), and no data loss found within redis.data_loss_unready. When not,
 * *why (may be NULL) says why, in static text. */
bool mw_store_ready(const struct mw_store *s, const char **why);

/* Scripts loaded again after a NOSCRIPT answer, since start. */
uint64_t mw_store_script_reloads(const struct mw_store *s);

/* Commands sent since start (for the commands-per-record measure). */
uint64_t mw_store_commands_sent(const struct mw_store *s);

#endif
