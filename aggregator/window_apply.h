/*
 * window_apply.h — turns one decoded Batch into the Redis commands that apply it exactly once.
 *
 * Layout in Redis (every key of a model shares the hash tag {model}, so a Redis Cluster keeps
 * a model's keys, and its scripts, on one shard):
 *
 *   mw:{M}:w:<res_s>:<start_ms>:<version>   hash of counters for one window: count, errors,
 *                                           err:<code>, lat:<bucket>, lat_sum_us, tokens_in,
 *                                           tokens_out, feedback, records
 *   mw:{M}:idx:<res_s>                      sorted set of "<start_ms>:<version>" by start_ms
 *   mw:{M}:dedup:<agent_id>:<boot_id>       bitmap of batch sequence numbers already applied
 *   mw:models                               set of model names (outside any script: adding a
 *                                           member twice is harmless)
 *
 * Per model in the batch, one EVAL runs MW_APPLY_SCRIPT: it sets the batch's bit in the dedup
 * bitmap and, only if the bit was clear, applies every HINCRBY of that model. A replayed batch
 * therefore changes nothing, and a batch half-applied before a crash is completed model by
 * model on retry. All updates are increments, so any replica may apply any batch in any order.
 */
#ifndef MW_AGGREGATOR_WINDOW_APPLY_H
#define MW_AGGREGATOR_WINDOW_APPLY_H

#include "redis_cmd.h"
#include "telemetry.pb-c.h"

#include <stddef.h>
#include <stdint.h>

struct mw_window_spec {
    int64_t width_ms;
    int64_t retention_ms;
};

struct mw_apply_plan {
    struct mw_redis_cmd *cmds; /* one EVAL per model, then one SADD mw:models */
    size_t n_cmds;
};

/*
 * Build the commands for batch `b` over `n_specs` (at most 2) window resolutions. Records whose
 * event time lies in a window also add to that window's `records` field. Returns 0 or
 * MW_ENOMEM / MW_EINVAL (a counter bucket wider than a window). Free with mw_apply_plan_free.
 */
int mw_apply_plan_build(const Modelwatch__V1__Batch *b, const struct mw_window_spec *specs,
                        size_t n_specs, int64_t dedup_retention_ms, struct mw_apply_plan *out);
void mw_apply_plan_free(struct mw_apply_plan *plan);

extern const char MW_APPLY_SCRIPT[];

#endif
