/*
 * window_apply.h — turns one decoded Batch into the Redis commands that apply it exactly once.
 *
 * Layout in Redis (every key of a model shares the hash tag {model}, so a Redis Cluster keeps
 * a model's keys, and its scripts, on one shard). Names in backquotes are exact, <x> stands
 * for any text; tests/integration/test_apply_script.py checks every key and window field that
 * apply.lua writes for a realistic batch against them.
 *
 *   `mw:{<model>}:w:<res_s>:<start_ms>:<version>`   hash of one window's counters:
 *        integers (HINCRBY): `count`, `errors`, `err:<code>`, `lat:<bucket>`, `lat_sum_us`,
 *          `tokens_in`, `tokens_out`, `feedback`, `records` (sampled records), `late`
 *          (predictions that arrived after the window was final: counted here, not merged),
 *          `late_records`, `pf|<tag>` (records whose drift fields the profile with that tag, hex
 *          (profile.h), binned)
 *        floats (HINCRBYFLOAT), all named d|...: `d|wrecords` (sum of record weights); the
 *          pod's resources, shared among its models by prediction count: `d|cpu_s`,
 *          `d|cpu_req_s`, `d|cpu_billed_s`, `d|mem_gib_s`, `d|mem_billed_gib_s`, `d|gpu_s`,
 *          `d|pod_s`; per profiled feature, weighted: `d|<feature>|n` (values seen),
 *          `d|<feature>|obs` (values seen, unweighted: the sample size of the tests),
 *          `d|<feature>|miss`, `d|<feature>|g<slot>` (numeric values in a slot of the profile's
 *          grid, drift.h), `d|<feature>|s<slot>` (their weighted sum, for the slots below the
 *          range, first, last and above the range), `d|<feature>|c|<category>`,
 *          `d|<feature>|unseen` (categories the profile does not know), `d|<feature>|type`
 *          (values of the wrong type: text where the profile has numbers); per numeric
 *          feature of a record no profile binned (every record with drift.sketch_always),
 *          weighted: `d|<feature>|kp<i>`, `d|<feature>|kn<i>`, `d|<feature>|kz` (its
 *          value_sketch.h bucket). Drift fields go only to windows of the resolutions
 *          drift.windows names.
 *        performance (perf_metrics.h names them): `pc:pred` (sampled predictions of a model
 *          that expects labels); once a label joins its prediction: `pc:lab`, `pc:skew`,
 *          `pc:delay_ms`, `pc:dl:<k>`; binary (the model's threshold, 1000 score bins):
 *          `pb:tp`, `pb:fp`, `pb:tn`, `pb:fn`, `pb:pos:<bin>`, `pb:neg:<bin>`, `pb:ll`;
 *          multi-class: `pm:n`, `pm:correct`, `pm:tp:<class>`, `pm:fp:<class>`,
 *          `pm:fn:<class>`; regression: `pr:n`, `pr:err`, `pr:abs`, `pr:sq`, `pr:ape`,
 *          `pr:ape_n`. Counted once per joined pair, in the prediction's windows: a label is
 *          shipped only when the rate selects its prediction id, so every joined pair of a
 *          model has the same inclusion probability (the rate) and the same sample weight,
 *          which cancels in every ratio (accuracy, AUC, MAE...). A rate changed mid-window by
 *          SIGHUP, or a cap scaling weights, mixes two weights in that window.
 *        What a binary prediction predicted: the class it names when that reads as binary
 *          ("1"/"0", "true"/"false", "yes"/"no", as labels are read), so that its binary and
 *          multi-class metrics agree; otherwise score >= the model's threshold
 *          (labels.binary_threshold[s] in the aggregator's config).
 *   `mw:{<model>}:idx:<res_s>`               sorted set of "<start_ms>:<version>" by start_ms;
 *                                            members of windows that start before now -
 *                                            retention - width are trimmed at every apply
 *   `mw:{<model>}:wm`                        the model's watermark (ms): the newest sane event
 *                                            time applied for it less windows.out_of_orderness;
 *                                            expires with the longest window retention
 *   `mw:{<model>}:dedup:<agent_id>:<boot_id>:<chunk>` bitmap of the batch sequence numbers
 *                                            chunk * 65536 ... chunk * 65536 + 65535 already
 *                                            applied (at most 8 KiB each; each expires
 *                                            windows.dedup_retention after its last write)
 *   `mw:{<model>}:dedup:<agent_id>:<boot_id>` the same for every sequence, as earlier versions
 *                                            kept it: read, never written (until it expires)
 *   `mw:{<model>}:jp:<bucket_ms>:<shard>`    hash of sampled predictions waiting for their
 *                                            labels (models that expect labels only)
 *   `mw:{<model>}:jl:<bucket_ms>:<shard>`    hash of labels that came before their prediction
 *        Field: the prediction id's 64-bit hash (8 bytes, little-endian); value: what the join
 *        needs, packed (about 20 bytes: window_apply.c). A side waits in the bucket of its
 *        event time (labels.pending_bucket wide), in shard (hash mod 2^32) mod the bucket's
 *        shards; the bucket expires whole label_horizon + its width after its start. Window
 *        keys are derived at join time from the prediction's event time and version. With
 *        Redis's default hash-max-listpack-entries (512) a hash up to about 500 fields stays a
 *        listpack: about 40 bytes per waiting prediction (bench/README.md).
 *   `mw:{<model>}:jpi`, `mw:{<model>}:jli`   sorted sets of the live buckets of each, members
 *                                            "<bucket_ms>:<shards>" scored by bucket_ms
 *   `mw:models`                              set of model names (outside any script: adding
 *                                            a member twice is harmless)
 *
 * Per model in the batch, one EVALSHA runs apply.lua (embedded at build time, loaded once per
 * connection by the store). It reads and checks everything first and writes only once no write
 * can fail, so a model's part of a batch is applied whole or not at all: it sets the batch's
 * dedup bit and applies every increment of that model and joins its labels, or, for a replay,
 * changes nothing, or refuses the part (a counter would overflow: the caller sends the batch to
 * the DLQ). A batch half-applied before a crash (some models done, others not) is completed
 * model by model on retry. All updates are increments, so any replica may apply any batch in
 * any order.
 *
 * Lateness, one rule per model: a window is final once its end + windows.allowed_lateness is
 * at or below the model's watermark `mw:{<model>}:wm` (in Redis, so every replica, partition
 * and restart judges alike). The watermark is the newest counter bucket start applied for the
 * model (times ahead of the aggregator's clock were clamped to it at decode, batch_decode.h)
 * less windows.out_of_orderness, so an agent lagging behind the model's others by more than
 * out_of_orderness + allowed_lateness has its data counted as late. Counters of a final window
 * go to its `late` field instead of its counts; its records are counted in `late_records` and
 * skipped. The plan is built with the watermark the caller last saw (mw_apply_options.
 * watermark); the script answers "stale" with the current one when that changes the lateness
 * of any window in the plan, and the caller plans again.
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
    bool drift; /* keeps drift fields (d|F|..., pf|<tag>) */
};

/* The reference profile of (model, version), or NULL when there is none. */
typedef const struct mw_profile *(*mw_profile_lookup_fn)(void *ctx, const char *model,
                                                         const char *version);

/* How one model takes part in label joins. */
struct mw_label_policy {
    bool expects_labels;     /* its sampled predictions wait for labels (and labels for them) */
    double binary_threshold; /* score >= threshold predicts the positive class */
};

/* Fill in `out` (preset to: expects labels, threshold MW_PERF_THRESHOLD_DEFAULT) for `model`. */
typedef void (*mw_label_policy_fn)(void *ctx, const char *model, struct mw_label_policy *out);

/* Defaults of mw_apply_options.pending_bucket_ms and pending_shards when they are 0. */
#define MW_APPLY_PENDING_BUCKET_MS 86400000
#define MW_APPLY_PENDING_SHARDS 256u

/* The watermark of `model` the plan assumes (INT64_MIN: none known). */
typedef int64_t (*mw_watermark_fn)(void *ctx, const char *model);

struct mw_apply_options {
    const struct mw_window_spec *specs; /* at most 2 resolutions */
    size_t n_specs;
    int64_t dedup_retention_ms;
    mw_watermark_fn watermark; /* may be NULL: every model's is watermark_ms */
    void *watermark_ctx;
    int64_t watermark_ms; /* INT64_MIN: nothing is late */
    int64_t allowed_lateness_ms;
    int64_t out_of_orderness_ms;  /* how far the watermark trails the newest bucket start */
    int64_t label_horizon_ms;     /* how long one side of a label join waits for the other */
    mw_profile_lookup_fn profile; /* may be NULL: no drift fields */
    bool sketch_always;           /* value sketches even for records a profile bins */
    void *profile_ctx;
    mw_label_policy_fn label_policy; /* may be NULL: every model, threshold 0.5 */
    void *label_policy_ctx;
    int64_t now_ms;            /* wall clock: what has waited past the horizon is dropped */
    int64_t pending_bucket_ms; /* event-time buckets of waiting join sides; 0: default */
    uint32_t pending_shards;   /* hashes per new bucket; 0: default */
};

/* What one model's part of a batch holds, as planned. */
struct mw_apply_counts {
    uint64_t predictions;      /* its counters' predictions, late ones included */
    uint64_t late_predictions; /* in windows final under the watermark assumed */
    uint64_t records;          /* its sampled prediction records */
    uint64_t late_records;
};

struct mw_apply_plan {
    struct mw_redis_cmd *cmds; /* one EVALSHA per model, then one SADD mw:models */
    size_t n_cmds;
    char **models; /* models[i] is the model cmds[i] applies, i < n_models; owned */
    struct mw_apply_counts *counts; /* counts[i] of models[i]; owned */
    size_t n_models;
    uint64_t late_predictions; /* summed over models */
    uint64_t late_records;
};

/*
 * Build the commands for batch `b`. Returns 0 or MW_ENOMEM / MW_EINVAL (a counter bucket wider
 * than a window, or not dividing it). Free with mw_apply_plan_free.
 */
int mw_apply_plan_build(const Modelwatch__V1__Batch *b, const struct mw_apply_options *opt,
                        struct mw_apply_plan *out);
void mw_apply_plan_free(struct mw_apply_plan *plan);

/* What one model's EVALSHA answered. */
enum mw_apply_outcome {
    MW_APPLY_APPLIED, /* the part changed Redis */
    MW_APPLY_REPLAY,  /* already applied: nothing changed */
    MW_APPLY_REFUSED, /* cannot be applied (reason says why): nothing changed */
    MW_APPLY_STALE    /* planned with an outdated watermark: nothing changed, plan again */
};

struct mw_apply_result {
    enum mw_apply_outcome outcome;
    bool applied;           /* outcome == MW_APPLY_APPLIED */
    uint64_t labels_joined; /* label/prediction pairs joined by this application */
    int64_t watermark_ms;   /* the model's watermark after the call (not for REFUSED) */
    char reason[200];       /* REFUSED: what could not be applied */
};

/* Read apply.lua's reply. Returns 0, or MW_EPARSE for any other reply (including an error
 * reply). */
int mw_apply_reply_parse(const redisReply *reply, struct mw_apply_result *out);

/* apply.lua, embedded at build time (apply_script.c is generated by embed_lua.py): its text,
 * length and SHA1 (lowercase hex, what EVALSHA takes). */
extern const char MW_APPLY_SCRIPT[];
extern const size_t MW_APPLY_SCRIPT_LEN;
extern const char MW_APPLY_SCRIPT_SHA1[];

#endif
