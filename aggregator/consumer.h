/*
 * consumer.h — the aggregator's intake: one member of a Kafka consumer group.
 *
 * Records are taken one at a time from the loop: decoded (or sent to the dead-letter topic with
 * the reason in header `mw-dlq-reason`), applied to Redis by the exactly-once scripts, and only
 * then is the record's offset committed. While Redis is unreachable the same record is retried
 * with backoff and nothing further is consumed, so nothing is lost; after a crash, records past
 * the last commit are consumed again and the scripts turn them into no-ops.
 *
 * Every decoded batch is bounded value by value first (batch_decode.h): a bad value is counted
 * and refused alone. Lateness is judged per model against its watermark in Redis, the same on
 * every replica and across restarts (window_apply.h); the watermarks the scripts answer are
 * remembered to plan the next batches. A model's part that Redis cannot take (a counter would
 * overflow) sends the batch to the DLQ with reason "apply" and the detail in header
 * mw-dlq-detail; the parts of other models stay applied, and replaying the DLQ record later
 * applies only what was refused.
 *
 * A record that cannot be put into the DLQ (Kafka refuses or times out) is produced again
 * with backoff, never skipped nor committed before it is there; meanwhile nothing after it is
 * consumed, the failures are counted and mw_consumer_stalled() is true (readiness fails).
 *
 * A committed offset that Kafka no longer holds (out of retention) is not reset silently: the
 * consumer restarts the partition at its earliest record, logs the skipped offset range and
 * counts it (offset_resets, records_skipped). A group without a committed offset starts at the
 * earliest record.
 *
 * The consumer takes its assignment from the group in a rebalance callback (eager and
 * cooperative protocols): a record in progress of a partition that was revoked or lost is
 * released without a commit (records_fenced), so an old owner never commits behind the new
 * one; the new owner applies it again, a no-op where it was applied.
 *
 * With redis.wait_replicas > 0 a batch's offset is committed only after Redis WAIT says that
 * many replicas have its writes; until then it is applied again with backoff (counted in
 * replica_wait_shortfalls, and mw_consumer_replicas_behind() fails readiness).
 */
#ifndef MW_AGGREGATOR_CONSUMER_H
#define MW_AGGREGATOR_CONSUMER_H

#include "aggregator_config.h"
#include "batch_decode.h"
#include "profile_cache.h"
#include "store.h"
#include "window_apply.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct mw_consumer;

struct mw_consumer_stats {
    uint64_t records_consumed;
    uint64_t batches_applied; /* applied to Redis and committed */
    uint64_t predictions;     /* exact counts of the model parts applied (not replays), late
                                 ones excepted */
    uint64_t sampled_records;
    uint64_t apply_retries;
    uint64_t late_predictions; /* arrived after their window was final: counted, not merged */
    uint64_t late_records;
    uint64_t labels_joined; /* label/prediction pairs joined by model applications */
    uint64_t model_replays; /* model applications that found their batch already applied */
    uint64_t apply_replans; /* plans built again after a watermark moved under them */
    uint64_t dlq[MW_DLQ_REASON_COUNT];
    uint64_t dlq_failed;          /* dead-letter produces that failed (each is retried) */
    struct mw_batch_tally values; /* values refused or clamped by mw_batch_bound */
    /* A committed offset that had fallen out of Kafka's retention: the consumer restarts at
     * the partition's earliest record; the records in between were never applied. */
    uint64_t offset_resets;
    uint64_t records_skipped; /* records between such an offset and where consuming resumed */
    /* Rebalances: partitions taken away from this member, and records in progress released
     * uncommitted because their partition was revoked or the assignment lost. */
    uint64_t partitions_revoked;
    uint64_t records_fenced;
    /* WAITs that found fewer replicas than redis.wait_replicas (the batch is applied again). */
    uint64_t replica_wait_shortfalls;
};

/* One partition this member holds: where it stands against the partition's end. */
struct mw_consumer_partition {
    int32_t partition;
    int64_t position;       /* next offset to consume; -1 before the first record */
    int64_t high_watermark; /* the partition's end as last fetched; -1 when not yet known */
};

/* The partitions this member holds, at most `max` of them into `out`; returns how many it holds
 * (0 while the group has given it none, or has not finished joining). */
size_t mw_consumer_partitions(const struct mw_consumer *c, struct mw_consumer_partition *out,
                              size_t max);

/* Join the group and start consuming on `loop`. Errors are written to errbuf and returned
 * (MW_ECONFIG, MW_EKAFKA, MW_EIO, MW_ENOMEM). */
int mw_consumer_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg,
                       struct mw_store *store, struct mw_profile_cache *profiles,
                       struct mw_consumer **out, char *errbuf, size_t errbuf_size);
/* Stop consuming, leave the group (commits what was applied), free after the loop has closed
 * the handles. Accepts NULL. */
void mw_consumer_destroy(struct mw_consumer *c);
const struct mw_consumer_stats *mw_consumer_stats(const struct mw_consumer *c);
/* Whether the consumer is stuck on a record it cannot put into the DLQ (retrying). */
bool mw_consumer_stalled(const struct mw_consumer *c);
/* Whether the last batch's WAIT found fewer replicas than redis.wait_replicas (retrying). */
bool mw_consumer_replicas_behind(const struct mw_consumer *c);
/* Count the model parts of the batches this member applies in `totals` (borrowed; NULL stops
 * counting). */
struct mw_model_totals;
void mw_consumer_set_totals(struct mw_consumer *c, struct mw_model_totals *totals);
/* Where applied batches' agent health and dead letters are noted (pipeline_health.h). */
struct mw_pipeline_health;
void mw_consumer_set_pipeline_health(struct mw_consumer *c, struct mw_pipeline_health *h);

/* Observe, in the histogram series `series` (borrowed; NULL stops it), the seconds each batch
 * takes from its first attempt to apply until Redis has it for good (retries, replans and the
 * replicas' WAIT included). */
struct mw_prom_series;
void mw_consumer_set_apply_histogram(struct mw_consumer *c, struct mw_prom_series *series);

/* Called for every model application that changed Redis (not for replays), as its reply
 * arrives: the model and what the script answered, e.g. the label pairs it joined. Each
 * (batch, model) is reported once even when the batch is retried, since a retry of an applied
 * model is a replay. `model` is borrowed for the call. */
typedef void (*mw_consumer_applied_fn)(void *ctx, const char *model,
                                       const struct mw_apply_result *result);
void mw_consumer_set_applied_hook(struct mw_consumer *c, mw_consumer_applied_fn fn, void *ctx);

#endif
