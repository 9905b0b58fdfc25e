/*
 * redis_uv.h — drives a hiredis async context from a libuv loop.
 *
 * hiredis ships a libuv adapter, but the 0.14 one drops poll errors on the floor: when a
 * connection attempt is refused, libuv reports the error through the poll callback's status,
 * the adapter returns without telling hiredis, and the attempt never completes — so a Redis that
 * was down at reconnection time is never reached again. This adapter hands every poll event,
 * errors included, to hiredis, which then finds the socket error itself and fails the attempt
 * through the connect callback.
 */
#ifndef MW_AGGREGATOR_REDIS_UV_H
#define MW_AGGREGATOR_REDIS_UV_H

#include <hiredis/async.h>
#include <stdint.h>
#include <uv.h>

/* Attach `ac` to `loop`. Returns 0 or MW_ENOMEM / MW_ESYS. The adapter frees itself when
 * hiredis cleans the context up. */
int mw_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

/* How long `ac` has had replies pending with nothing read from Redis (0 when none is pending):
 * what tells a Redis that hangs, or a network that drops everything, from a slow one. */
uint64_t mw_redis_uv_waiting_ms(const redisAsyncContext *ac, uint64_t now_ms);

#endif
