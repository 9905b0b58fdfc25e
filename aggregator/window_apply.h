/*
 * window_apply.h — turns one decoded Batch into the Redis commands that apply it exactly once.
 *
 * Layout in Redis (every key of a model shares the hash tag {model}, so a Redis Cluster keeps
 * a model's keys, and its scripts, on one shard):
 *
 *   mw:{M}:w:<res_s>:<start_ms>:<version>   hash of one window's counters:
 *        integers (HINCRBY): count, errors, err:<code>, lat:<bucket>, lat_sum_us, tokens_in,
 *          tokens_out, feedback, records (sampled records), late (predictions that arrived after
 *          the window was final: counted here, not merged), late_records
 *        floats (HINCRBYFLOAT): wrecords (sum of record weights), cpu_s, mem_gib_s, gpu_s, pod_s
 *          (the pod's resources, shared among its models by prediction count), and per profiled
 *          feature F, weighted: d|F|n (values seen), d|F|miss, d|F|oor (outside the reference
 *          range), d|F|b<i> (numeric region i of the profile's edges), d|F|c|<category>,
 *          d|F|unseen (categories the profile does not know), d|F|type (values of the wrong
 *          type: text where the profile has numbers)
 *        performance, once a label joins its prediction (perf_metrics.h names them): pc:pred
 *          (sampled predictions), pc:lab, pc:skew, pc:delay_ms, pc:dl:<k>; pb:tp/fp/tn/fn,
 *          pb:pos:<bin>, pb:neg:<bin>, pb:ll (binary, score threshold 0.5, 1000 score bins);
 *          pm:n, pm:correct, pm:tp/fp/fn:<class> (multi-class); pr:n, pr:err, pr:abs, pr:sq,
 *          pr:ape, pr:ape_n (regression). Counted once per joined pair: a label is shipped
 *          only when the rate selects its prediction id, so every joined pair of a model has
 *          the same inclusion probability (the rate) and the same sample weight, which cancels
 *          in every ratio (accuracy, AUC, MAE...). A rate changed mid-window by SIGHUP, or a
 *          cap scaling weights, mixes two weights in that window.
 *   mw:{M}:idx:<res_s>                      sorted set of "<start_ms>:<version>" by start_ms
 *   mw:{M}:wm                               the model's watermark (ms), highest seen
 *   mw:{M}:dedup:<agent_id>:<boot_id>       bitmap of batch sequence numbers already applied
 *   mw:{M}:p:<prediction id>                a sampled prediction waiting for its label
 *   mw:{M}:l:<prediction id>                a label that came before its prediction
 *   mw:models                               set of model names (outside any script: adding a
 *                                           member twice is harmless)
 *
 * Per model in the batch, one EVALSHA runs apply.lua (embedded at build time, loaded once per
 * connection by the store): it sets the batch's bit in the dedup bitmap and, only if the bit
 * was clear, applies every increment of that model and joins its labels. A replayed batch
 * therefore changes nothing, and a batch half-applied before a crash is completed model by
 * model on retry. All updates are increments, so any replica may apply any batch in any order.
 * The script answers {applied, joined}: 1 and the label pairs it joined, or {0, 0} for a replay.
 *
 * Lateness: the caller passes the partition's watermark as it stood before this batch. Counters
 * of a window whose end + allowed lateness is at or below it go to the window's `late` field
 * instead of its counts; its records are counted in late_records and skipped.
 */
#ifndef MW_AGGREGATOR_WINDOW_APPLY_H
#define MW_AGGREGATOR_WINDOW_APPLY_H

#include "profile.h"
#include "redis_cmd.h"
#include "telemetry.pb-c.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mw_window_spec {
    int64_t width_ms;
    int64_t retention_ms;
};

/* The reference profile of (model, version), or NULL when there is none. */
typedef const struct mw_profile *(*mw_profile_lookup_fn)(void *ctx, const char *model,
                                                         const char *version);

struct mw_apply_options {
    const struct mw_window_spec *specs; /* at most 2 resolutions */
    size_t n_specs;
    int64_t dedup_retention_ms;
    int64_t watermark_ms; /* INT64_MIN: nothing is late */
    int64_t allowed_lateness_ms;
    int64_t model_watermark_ms;   /* written to mw:{M}:wm when higher than what is there */
    int64_t label_horizon_ms;     /* how long one side of a label join waits for the other */
    mw_profile_lookup_fn profile; /* may be NULL: no drift fields */
    void *profile_ctx;
};

struct mw_apply_plan {
    struct mw_redis_cmd *cmds; /* one EVALSHA per model, then one SADD mw:models */
    size_t n_cmds;
    char **models; /* models[i] is the model cmds[i] applies, i < n_models; owned */
    size_t n_models;
    uint64_t late_predictions;
    uint64_t late_records;
};

/*
 * Build the commands for batch `b`. Returns 0 or MW_ENOMEM / MW_EINVAL (a counter bucket wider
 * than a window, or not dividing it). Free with mw_apply_plan_free.
 */
int mw_apply_plan_build(const Modelwatch__V1__Batch *b, const struct mw_apply_options *opt,
                        struct mw_apply_plan *out);
void mw_apply_plan_free(struct mw_apply_plan *plan);

/* The latest event time the batch vouches for: its highest counter bucket start (INT64_MIN for
 * a batch without counters). */
int64_t mw_apply_batch_event_time(const Modelwatch__V1__Batch *b);

/* What one model's EVALSHA answered. */
struct mw_apply_result {
    bool applied;           /* false: a replay, nothing changed */
    uint64_t labels_joined; /* label/prediction pairs joined by this application */
};

/* Read apply.lua's reply {applied, joined}. Returns 0, or MW_EPARSE for any other reply
 * (including an error reply). */
int mw_apply_reply_parse(const redisReply *reply, struct mw_apply_result *out);

/* apply.lua, embedded at build time (apply_script.c is generated by embed_lua.py): its text,
 * length and SHA1 (lowercase hex, what EVALSHA takes). */
extern const char MW_APPLY_SCRIPT[];
extern const size_t MW_APPLY_SCRIPT_LEN;
extern const char MW_APPLY_SCRIPT_SHA1[];

#endif
