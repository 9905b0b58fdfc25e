/* consumer.c — Kafka consumer group member applying batches to Redis exactly once. */
#include "consumer.h"

#include "model_totals.h"
#include "pipeline_health.h"
#include "alloc.h"
#include "arena.h"
#include "clock.h"
#include "error.h"
#include "hash.h"
#include "log.h"
#include "prom.h"
#include "table.h"
#include "window_apply.h"
#include "zframe.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define POLL_INTERVAL_MS 5
#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 2000
#define PROFILE_WAIT_MS 5
#define MAX_STALE_ROUNDS 3          /* plans rebuilt at once before backing off */
#define MAX_CACHED_WATERMARKS 65536 /* models whose watermark is remembered */
#define MAX_PARTITIONS 4096         /* partitions whose offset resets are tracked */
#define BATCH_MEMORY_FIRST_BLOCK (4u << 20) /* kept across batches: most fit */
#define BATCH_MEMORY_FACTOR 16

/* The watermark of one model as the apply script last answered it. */
struct cached_watermark {
    int64_t watermark_ms;
    char model[];
};

struct mw_consumer {
    uv_loop_t *loop;
    const struct mw_aggregator_config *cfg;
    struct mw_store *store;
    struct mw_profile_cache *profiles;
    rd_kafka_t *rk;  /* group consumer */
    rd_kafka_t *dlq; /* producer for the dead-letter topic */
    uv_timer_t poll_timer;
    uv_timer_t retry_timer;
    struct mw_zframe_ctx *zctx;
    struct mw_buf scratch;
    struct mw_arena batch_memory; /* the decoded batch in progress: one reset frees it */
    struct mw_window_spec specs[2];
    /* The one record in progress, its batch and its prepared commands. */
    rd_kafka_message_t *current;
    Modelwatch__V1__Batch *batch;
    struct mw_apply_plan plan;
    bool plan_ready;
    bool profiles_pending; /* a profile lookup said "not yet" while planning */
    /* What the replies of the plan in flight said beyond "applied" or "replay". */
    bool stale;        /* a model's watermark moved: plan again */
    bool refused;      /* a model's part cannot be applied: the batch goes to the DLQ */
    bool reply_broken; /* a reply that is not the script's: retry */
    int stale_rounds;
    char refused_detail[256];
    /* Models' watermarks as Redis last answered (struct cached_watermark, owned). */
    struct mw_table watermarks;
    /* The dead-letter produce of the record in progress: its reason, and whether it failed. */
    enum mw_dlq_reason dlq_reason;
    char dlq_detail[256];
    bool dlq_failing;
    uint64_t retry_ms;
    int closing;
    int handles_open;
    int apply_in_flight; /* a Redis exec awaits its replies: keep the consumer alive */
    mw_consumer_applied_fn applied_hook;
    void *applied_ctx;
    struct mw_model_totals *totals; /* may be NULL */
    /* How long batches take to apply (a histogram series, borrowed; may be NULL), and when the
     * record in progress was first sent to Redis (uv_hrtime ns; 0 = not yet). */
    struct mw_prom_series *apply_seconds;
    uint64_t apply_started_ns;
    struct mw_pipeline_health *pipeline; /* may be NULL */
    /* Per partition: the committed offset Kafka no longer held, until the first record after
     * the reset shows how far it skipped (-1: none pending). */
    int64_t *reset_from;
    bool *restart; /* per partition: restart at its earliest record on the next assign */
    /* The partition of the record in progress was revoked (or the assignment lost): it is
     * released without a commit; the new owner applies it again (a no-op where applied). */
    bool fenced;
    bool replicas_behind; /* the last WAIT had fewer replicas than redis.wait_replicas */
    struct mw_consumer_stats stats;
};

static void pump(struct mw_consumer *c);

/* The record in progress is fully handled: commit its offset and take the next. */
static void drop_batch(struct mw_consumer *c)
{
    c->apply_started_ns = 0;
    c->batch = NULL; /* its memory is the arena's */
    mw_arena_reset(&c->batch_memory);
    mw_apply_plan_free(&c->plan);
    c->plan_ready = false;
}

/* The record in progress is in Redis for good: how long that took, from its first attempt
 * (retries, replans and the replicas' WAIT included). */
static void observe_applied(struct mw_consumer *c)
{
    c->stats.batches_applied++;
    if (c->apply_started_ns)
        mw_prom_histogram_observe(c->apply_seconds,
                                  (double)(uv_hrtime() - c->apply_started_ns) / 1e9);
}

static void finish_current(struct mw_consumer *c)
{
    /* A partition that moved belongs to its new owner: committing here could move the group's
     * offset back behind what the new owner has committed since. */
    if (c->fenced || rd_kafka_assignment_lost(c->rk))
        c->stats.records_fenced++;
    else
        rd_kafka_commit_message(c->rk, c->current, 1);
    c->fenced = false;
    rd_kafka_message_destroy(c->current);
    c->current = NULL;
    drop_batch(c);
    c->retry_ms = 0;
    c->dlq_failing = false;
}

static uint64_t next_backoff(struct mw_consumer *c)
{
    c->retry_ms = c->retry_ms ? c->retry_ms * 2 : RETRY_MIN_MS;
    if (c->retry_ms > RETRY_MAX_MS)
        c->retry_ms = RETRY_MAX_MS;
    return c->retry_ms;
}

static void produce_dlq(struct mw_consumer *c);

static void on_dlq_retry(uv_timer_t *t)
{
    struct mw_consumer *c = t->data;
    if (c->current && !c->closing) {
        if (c->fenced)
            finish_current(c); /* not committed: see finish_current */
        else
            produce_dlq(c);
    }
}

static void fence_current(struct mw_consumer *c);

/* The record could not be put into the DLQ: keep it (uncommitted, and nothing after it is
 * consumed, so the order holds), say so, and try again after a backoff. Readiness fails
 * until it is delivered (mw_consumer_stalled). */
static void dlq_failed(struct mw_consumer *c, rd_kafka_resp_err_t err)
{
    c->stats.dlq_failed++;
    if (!c->dlq_failing)
        MW_LOG_ERROR("consumer", "dead-letter produce failed; retrying until it succeeds",
                     "error=%s partition=%" PRId32 " offset=%" PRId64, rd_kafka_err2name(err),
                     c->current ? c->current->partition : -1, c->current ? c->current->offset : -1);
    c->dlq_failing = true;
    uint64_t wait_ms = next_backoff(c);
    if (!c->closing && c->current)
        uv_timer_start(&c->retry_timer, on_dlq_retry, wait_ms, 0);
}

static void on_dlq_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct mw_consumer *c = opaque;
    (void)rk;
    if (!c->current)
        return;
    if (msg->err) {
        dlq_failed(c, msg->err);
        return;
    }
    if (c->dlq_failing)
        MW_LOG_INFO("consumer", "dead-letter produce succeeded after failures",
                    "partition=%" PRId32 " offset=%" PRId64, c->current->partition,
                    c->current->offset);
    mw_pipeline_health_note_dlq(c->pipeline, mw_clock_wall_ms());
    finish_current(c);
}

static void produce_dlq(struct mw_consumer *c)
{
    rd_kafka_message_t *m = c->current;
    char source[64];
    snprintf(source, sizeof source, "%" PRId32 "/%" PRId64, m->partition, m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    rd_kafka_header_add(h, "mw-dlq-reason", -1, mw_dlq_reason_name(c->dlq_reason), -1);
    rd_kafka_header_add(h, "mw-source", -1, source, -1);
    if (c->dlq_detail[0])
        rd_kafka_header_add(h, "mw-dlq-detail", -1, c->dlq_detail, -1);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        c->dlq, RD_KAFKA_V_TOPIC(c->cfg->consumer.dlq_topic), RD_KAFKA_V_VALUE(m->payload, m->len),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h);
        dlq_failed(c, err);
    }
}

/* Send the record in progress to the DLQ with `why` and `detail` (may be NULL); it is committed
 * once the DLQ has it. */
static void send_to_dlq(struct mw_consumer *c, enum mw_dlq_reason why, const char *detail)
{
    rd_kafka_message_t *m = c->current;
    c->stats.dlq[why]++;
    c->dlq_reason = why;
    snprintf(c->dlq_detail, sizeof c->dlq_detail, "%s", detail ? detail : "");
    char quoted[300];
    MW_LOG_WARN("consumer", "batch sent to the dead-letter topic",
                "reason=%s partition=%" PRId32 " offset=%" PRId64 " bytes=%zu detail=%s",
                mw_dlq_reason_name(why), m->partition, m->offset, m->len,
                mw_log_quote(c->dlq_detail, quoted, sizeof quoted));
    produce_dlq(c);
}

static bool same_model(const void *item, const void *key)
{
    return strcmp(((const struct cached_watermark *)item)->model, key) == 0;
}

static int64_t cached_watermark(void *ctx, const char *model)
{
    struct mw_consumer *c = ctx;
    const struct cached_watermark *w =
        mw_table_find(&c->watermarks, mw_hash_str(MW_HASH_INIT, model), model);
    return w ? w->watermark_ms : INT64_MIN;
}

/* Remember `model`'s watermark as the script answered it (beyond the bound, not remembered: the
 * script then corrects the plan when it matters). */
static void remember_watermark(struct mw_consumer *c, const char *model, int64_t watermark_ms)
{
    uint64_t h = mw_hash_str(MW_HASH_INIT, model);
    struct cached_watermark *w = mw_table_find(&c->watermarks, h, model);
    if (w) {
        w->watermark_ms = watermark_ms;
        return;
    }
    if (c->watermarks.n >= MAX_CACHED_WATERMARKS)
        return;
    size_t len = strlen(model) + 1;
    w = mw_malloc(sizeof *w + len);
    if (!w)
        return;
    w->watermark_ms = watermark_ms;
    memcpy(w->model, model, len);
    if (mw_table_insert(&c->watermarks, h, w) != 0)
        mw_free(w);
}

static void apply_current(struct mw_consumer *c);

static void on_retry_timer(uv_timer_t *t)
{
    apply_current(t->data);
}

static void retry_later(struct mw_consumer *c)
{
    c->stats.apply_retries++;
    uint64_t wait_ms = next_backoff(c);
    if (!c->closing)
        uv_timer_start(&c->retry_timer, on_retry_timer, wait_ms, 0);
}

static void free_consumer(struct mw_consumer *c);

/* ---- replicas (redis.wait_replicas) ------------------------------------------------------
 * A failover can lose writes the primary acknowledged but had not yet sent to a replica. The
 * offset is committed only once WAIT says enough replicas have the batch's writes; otherwise the
 * batch is applied again after a backoff (a replay where Redis still has it, a fresh apply
 * where a failover lost it) and WAIT asked again. Meanwhile nothing after it is consumed and
 * readiness fails (mw_consumer_replicas_behind). */

/* A Redis reply for the batch in progress came back: true when the consumer is closing or the
 * batch's partition was revoked meanwhile, which this handles; false to go on with the reply. */
static bool reply_settled(struct mw_consumer *c)
{
    c->apply_in_flight = 0;
    if (c->closing) {
        if (c->handles_open == 0)
            free_consumer(c);
        return true;
    }
    if (c->fenced) {
        finish_current(c); /* not committed: see finish_current */
        pump(c);
        return true;
    }
    return false;
}

static void on_waited(redisReply *reply, void *arg)
{
    struct mw_consumer *c = arg;
    if (reply_settled(c))
        return;
    long long acked = reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    if (acked < c->cfg->redis.wait_replicas) {
        c->stats.replica_wait_shortfalls++;
        if (!c->replicas_behind)
            MW_LOG_ERROR("consumer",
                         "Redis replicas did not acknowledge a batch: its offset stays "
                         "uncommitted and it is applied again until they do",
                         "acked=%lld wanted=%" PRId64 " partition=%" PRId32 " offset=%" PRId64,
                         acked, c->cfg->redis.wait_replicas, c->current->partition,
                         c->current->offset);
        c->replicas_behind = true;
        retry_later(c);
        return;
    }
    if (c->replicas_behind)
        MW_LOG_INFO("consumer", "Redis replicas acknowledge again", "acked=%lld", acked);
    c->replicas_behind = false;
    observe_applied(c);
    mw_pipeline_health_note_batch(c->pipeline, c->batch);
    finish_current(c);
    pump(c);
}

static void wait_for_replicas(struct mw_consumer *c)
{
    char replicas[24], timeout_ms[24];
    snprintf(replicas, sizeof replicas, "%" PRId64, c->cfg->redis.wait_replicas);
    snprintf(timeout_ms, sizeof timeout_ms, "%" PRId64, c->cfg->redis.wait_timeout_ms);
    const char *argv[] = {"WAIT", replicas, timeout_ms};
    c->apply_in_flight = 1;
    if (mw_store_commandv(c->store, on_waited, c, 3, argv) != 0) {
        c->apply_in_flight = 0;
        retry_later(c);
    }
}

static void on_applied(int rc, void *arg)
{
    struct mw_consumer *c = arg;
    if (reply_settled(c))
        return;
    if (rc || c->reply_broken) {
        retry_later(c);
        return;
    }
    if (c->stale) {
        /* Another replica (or an earlier life of this one) moved a watermark: plan again with
         * the watermarks the script returned. Parts applied already answer as replays. */
        c->stats.apply_replans++;
        mw_apply_plan_free(&c->plan);
        c->plan_ready = false;
        if (++c->stale_rounds > MAX_STALE_ROUNDS)
            retry_later(c);
        else
            apply_current(c);
        return;
    }
    if (c->refused) {
        drop_batch(c);
        send_to_dlq(c, MW_DLQ_APPLY, c->refused_detail);
        return;
    }
    if (c->cfg->redis.wait_replicas > 0) {
        wait_for_replicas(c);
        return;
    }
    observe_applied(c);
    mw_pipeline_health_note_batch(c->pipeline, c->batch);
    finish_current(c);
    pump(c);
}

/* One reply of the current plan: a model's {applied, joined}, counted as it arrives (a batch
 * retried after a partial failure replays the models already applied, which answer {0, 0}). */
static void on_apply_reply(size_t i, const redisReply *reply, void *arg)
{
    struct mw_consumer *c = arg;
    struct mw_apply_result result;
    /* While closing, the plan (and the models' names) is gone: count, but name nothing. */
    bool named = !c->closing && i < c->plan.n_models;
    if (!reply || reply->type == REDIS_REPLY_ERROR || (!named && reply->type != REDIS_REPLY_ARRAY))
        return; /* a failure (the batch is retried), or the SADD */
    if (mw_apply_reply_parse(reply, &result) != 0) {
        MW_LOG_ERROR("consumer", "unexpected reply from the apply script", "model=%s type=%d",
                     named ? c->plan.models[i] : "?", reply->type);
        c->reply_broken = true;
        return;
    }
    if (named && result.outcome != MW_APPLY_REFUSED)
        remember_watermark(c, c->plan.models[i], result.watermark_ms);
    switch (result.outcome) {
    case MW_APPLY_REPLAY:
        c->stats.model_replays++;
        return;
    case MW_APPLY_STALE:
        c->stale = true;
        return;
    case MW_APPLY_REFUSED:
        c->refused = true;
        snprintf(c->refused_detail, sizeof c->refused_detail, "model=%s %s",
                 named ? c->plan.models[i] : "?", result.reason);
        return;
    case MW_APPLY_APPLIED:
        break;
    }
    if (named) {
        const struct mw_apply_counts *n = &c->plan.counts[i];
        c->stats.predictions += n->predictions - n->late_predictions;
        c->stats.late_predictions += n->late_predictions;
        c->stats.late_records += n->late_records;
        c->stats.sampled_records += n->records;
    }
    c->stats.labels_joined += result.labels_joined;
    /* Only the replica that applied a model's part counts it in the per-model totals, at once,
     * so a retry after a later failure (which replays it as {0, 0}) does not count it again. */
    if (named && c->batch)
        mw_model_totals_add_batch(c->totals, c->batch, c->plan.models[i]);
    if (named)
        mw_model_totals_add_joined(c->totals, c->plan.models[i], result.labels_joined);
    if (named && c->applied_hook)
        c->applied_hook(c->applied_ctx, c->plan.models[i], &result);
}

static int build_plan(struct mw_consumer *c);

static void apply_current(struct mw_consumer *c)
{
    if (!c->plan_ready && build_plan(c) != 0)
        return;
    c->stale = c->refused = c->reply_broken = false;
    if (!c->apply_started_ns)
        c->apply_started_ns = uv_hrtime();
    c->apply_in_flight = 1;
    if (mw_store_exec_each(c->store, c->plan.cmds, c->plan.n_cmds, on_apply_reply, on_applied, c) !=
        0) {
        c->apply_in_flight = 0;
        retry_later(c);
    }
}

static const char *schema_header(const rd_kafka_message_t *m, char *buf, size_t size)
{
    rd_kafka_headers_t *h = NULL;
    const void *val = NULL;
    size_t len = 0;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, "mw-schema", &val, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || !val)
        return NULL;
    snprintf(buf, size, "%.*s", (int)len, (const char *)val);
    return buf;
}

static const struct mw_profile *lookup_profile(void *ctx, const char *model, const char *version)
{
    struct mw_consumer *c = ctx;
    const struct mw_profile *p = NULL;
    if (mw_profile_cache_get(c->profiles, model, version, &p) == MW_EAGAIN)
        c->profiles_pending = true;
    return p;
}

static void label_policy(void *ctx, const char *model, struct mw_label_policy *out)
{
    const struct mw_consumer *c = ctx;
    out->expects_labels = mw_labels_expected(c->cfg, model);
    out->binary_threshold = mw_binary_threshold_for(c->cfg, model);
}

/* Prepare the current batch's commands. Returns 0 when ready; otherwise it has arranged to be
 * called again (a profile is being fetched, or memory ran out) or sent the batch to the DLQ. */
static int build_plan(struct mw_consumer *c)
{
    const struct mw_aggregator_config *cfg = c->cfg;
    struct mw_apply_options opt = {.specs = c->specs,
                                   .n_specs = 2,
                                   .dedup_retention_ms = cfg->windows.dedup_retention_ms,
                                   .watermark = cached_watermark,
                                   .watermark_ctx = c,
                                   .allowed_lateness_ms = cfg->windows.allowed_lateness_ms,
                                   .out_of_orderness_ms = cfg->windows.out_of_orderness_ms,
                                   .label_horizon_ms = cfg->performance.label_horizon_ms,
                                   .profile = lookup_profile,
                                   .profile_ctx = c,
                                   .sketch_always = cfg->drift.sketch_always,
                                   .label_policy = label_policy,
                                   .label_policy_ctx = c,
                                   .now_ms = mw_clock_wall_ms(),
                                   .pending_bucket_ms = cfg->labels.pending_bucket_ms,
                                   .pending_shards = (uint32_t)cfg->labels.pending_shards};
    c->profiles_pending = false;
    int rc = mw_apply_plan_build(c->batch, &opt, &c->plan);
    if (rc == MW_EINVAL) {
        drop_batch(c);
        send_to_dlq(c, MW_DLQ_INVALID, NULL);
        return rc;
    }
    if (!rc && c->profiles_pending) {
        mw_apply_plan_free(&c->plan);
        if (!c->closing)
            uv_timer_start(&c->retry_timer, on_retry_timer, PROFILE_WAIT_MS, 0);
        return MW_EAGAIN;
    }
    if (rc) {
        retry_later(c);
        return rc;
    }
    c->plan_ready = true;
    return 0;
}

static void process(struct mw_consumer *c)
{
    rd_kafka_message_t *m = c->current;
    char schema_buf[32];
    enum mw_dlq_reason why = MW_DLQ_NONE;
    c->stats.records_consumed++;
    if (mw_batch_decode_with(
            c->zctx, m->payload, m->len, schema_header(m, schema_buf, sizeof schema_buf),
            (size_t)c->cfg->consumer.max_batch_bytes, &c->scratch,
            &c->batch_memory.pb_allocator, &c->batch, &why) != 0) {
        send_to_dlq(c, why, NULL);
        return;
    }
    const int64_t widths[] = {c->specs[0].width_ms, c->specs[1].width_ms};
    struct mw_batch_bounds bounds = {.now_ms = mw_clock_wall_ms(),
                                     .max_skew_ms = c->cfg->windows.max_clock_skew_ms,
                                     .windows_ms = widths,
                                     .n_windows = 2,
                                     .allocator = &c->batch_memory.pb_allocator};
    mw_batch_bound(c->batch, &bounds, &c->stats.values);
    c->stale_rounds = 0;
    apply_current(c);
}

/* ---- offsets out of retention ------------------------------------------------------------
 * auto.offset.reset is "error", so that librdkafka reports an offset it cannot fetch instead of
 * resetting it with a log line of its own. A partition without a committed offset (a new group)
 * starts at its earliest record, as "earliest" did; one whose committed offset fell out of
 * retention does too, and the first record consumed after that shows how many were skipped.
 *
 * librdkafka stops fetching a partition after that error and will not seek it, so the consumer
 * assigns its partitions again: the ones to restart at BEGINNING, every other one at its
 * position (the record after the last one polled, so nothing held or applied is fetched twice),
 * or at its committed offset when it has none yet. */

static bool cooperative(rd_kafka_t *rk)
{
    return strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
}

/* Under the cooperative protocol only incremental changes are allowed: take the partition out
 * of the assignment and put it back at BEGINNING. */
static rd_kafka_error_t *restart_incremental(struct mw_consumer *c, const char *topic,
                                             int32_t partition)
{
    rd_kafka_topic_partition_list_t *one = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(one, topic, partition);
    rd_kafka_error_t *error = rd_kafka_incremental_unassign(c->rk, one);
    if (!error) {
        one->elems[0].offset = RD_KAFKA_OFFSET_BEGINNING;
        error = rd_kafka_incremental_assign(c->rk, one);
    }
    rd_kafka_topic_partition_list_destroy(one);
    return error;
}

static void restart_at_earliest(struct mw_consumer *c, const char *topic, int32_t partition)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (partition >= 0 && partition < MAX_PARTITIONS)
        c->restart[partition] = true;
    if (cooperative(c->rk)) {
        rd_kafka_error_t *error = restart_incremental(c, topic, partition);
        if (error) {
            MW_LOG_ERROR("consumer", "cannot restart a partition at its earliest record",
                         "partition=%" PRId32 " error=%s", partition, rd_kafka_error_name(error));
            rd_kafka_error_destroy(error);
        }
        return;
    }
    if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
        return;
    rd_kafka_position(c->rk, parts);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        bool restart =
            tp->partition >= 0 && tp->partition < MAX_PARTITIONS && c->restart[tp->partition];
        if (restart)
            tp->offset = RD_KAFKA_OFFSET_BEGINNING;
        else if (tp->offset < 0)
            tp->offset = RD_KAFKA_OFFSET_INVALID; /* its committed offset */
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, parts);
    if (err)
        MW_LOG_ERROR("consumer", "cannot restart a partition at its earliest record",
                     "partition=%" PRId32 " error=%s", partition, rd_kafka_err2name(err));
    rd_kafka_topic_partition_list_destroy(parts);
}

static void on_offset_reset(struct mw_consumer *c, const rd_kafka_message_t *m)
{
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "?";
    if (m->offset >= 0) {
        c->stats.offset_resets++;
        /* Keep the first offset that failed: while retention moves the log's start, the
         * restart at the earliest record can fail again, one record further, and the records
         * skipped run from the first failure to the first record read. */
        if (m->partition >= 0 && m->partition < MAX_PARTITIONS && c->reset_from[m->partition] < 0)
            c->reset_from[m->partition] = m->offset;
        MW_LOG_ERROR("consumer",
                     "committed offset is out of Kafka's retention: restarting at the earliest "
                     "record; the records in between were never applied",
                     "topic=%s partition=%" PRId32 " offset=%" PRId64 " detail=\"%s\"", topic,
                     m->partition, m->offset, rd_kafka_message_errstr(m));
    } else {
        MW_LOG_INFO("consumer", "no committed offset: starting at the earliest record",
                    "topic=%s partition=%" PRId32, topic, m->partition);
    }
    restart_at_earliest(c, topic, m->partition);
}

/* The first record of a partition after an out-of-retention reset: count what was skipped. */
static void note_resumed(struct mw_consumer *c, const rd_kafka_message_t *m)
{
    if (m->partition < 0 || m->partition >= MAX_PARTITIONS)
        return;
    c->restart[m->partition] = false;
    if (c->reset_from[m->partition] < 0)
        return;
    int64_t from = c->reset_from[m->partition];
    c->reset_from[m->partition] = -1;
    uint64_t skipped = m->offset > from ? (uint64_t)(m->offset - from) : 0;
    c->stats.records_skipped += skipped;
    MW_LOG_ERROR("consumer", "records skipped: Kafka dropped them before they were applied",
                 "topic=%s partition=%" PRId32 " from_offset=%" PRId64 " to_offset=%" PRId64
                 " records=%" PRIu64,
                 rd_kafka_topic_name(m->rkt), m->partition, from, m->offset, skipped);
}

size_t mw_consumer_partitions(const struct mw_consumer *c, struct mw_consumer_partition *out,
                              size_t max)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!c || !c->rk || c->closing || rd_kafka_assignment(c->rk, &parts) != 0 || !parts)
        return 0;
    size_t n = (size_t)parts->cnt;
    if (n && out && rd_kafka_position(c->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (size_t i = 0; i < n && i < max; i++) {
            const rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int64_t low = -1, high = -1;
            if (rd_kafka_get_watermark_offsets(c->rk, tp->topic, tp->partition, &low, &high) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR ||
                high < 0)
                high = -1;
            out[i] = (struct mw_consumer_partition){.partition = tp->partition,
                                                    .position = tp->offset >= 0 ? tp->offset : -1,
                                                    .high_watermark = high};
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return n;
}

/* ---- rebalances ----------------------------------------------------------------------------
 * The consumer takes its assignment from the group itself (eager: the whole set each time;
 * cooperative: the partitions added or taken away), so that librdkafka cannot hand a partition
 * to another member behind its back. A record in progress of a revoked (or lost) partition is
 * fenced: released without its offset committed, and a Redis exec already in flight for it is
 * let finish without a commit. The new owner starts at the committed offset and applies that
 * record again: the apply script's dedup makes that a no-op where it was applied. */

static bool holds_current(const struct mw_consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    if (!c->current || !c->current->rkt)
        return false;
    const char *topic = rd_kafka_topic_name(c->current->rkt);
    for (int i = 0; i < parts->cnt; i++)
        if (parts->elems[i].partition == c->current->partition &&
            strcmp(parts->elems[i].topic, topic) == 0)
            return true;
    return false;
}

/* Release the record in progress without a commit, now if nothing of it is in flight, else
 * when its Redis exec or dead-letter produce answers. */
static void fence_current(struct mw_consumer *c)
{
    c->fenced = true;
    MW_LOG_WARN("consumer", "partition revoked with a record in progress: released uncommitted",
                "partition=%" PRId32 " offset=%" PRId64, c->current->partition, c->current->offset);
    if (c->apply_in_flight)
        return;
    if (uv_is_active((uv_handle_t *)&c->retry_timer)) {
        uv_timer_stop(&c->retry_timer);
        finish_current(c);
    }
}

static void forget_partitions(struct mw_consumer *c, const rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (p >= 0 && p < MAX_PARTITIONS) {
            c->restart[p] = false;
            c->reset_from[p] = -1;
        }
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct mw_consumer *c = opaque;
    bool coop = cooperative(rk);
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        forget_partitions(c, parts);
        if (coop)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            assign_err = rd_kafka_assign(rk, parts);
        MW_LOG_INFO("consumer", "partitions assigned", "partitions=%d protocol=%s", parts->cnt,
                    rd_kafka_rebalance_protocol(rk));
    } else {
        bool lost = rd_kafka_assignment_lost(rk);
        c->stats.partitions_revoked += (uint64_t)parts->cnt;
        if (!c->closing && holds_current(c, parts))
            fence_current(c);
        forget_partitions(c, parts);
        if (coop)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            assign_err = rd_kafka_assign(rk, NULL);
        if (lost || !c->closing)
            MW_LOG_INFO("consumer", lost ? "partitions lost" : "partitions revoked",
                        "partitions=%d protocol=%s", parts->cnt, rd_kafka_rebalance_protocol(rk));
    }
    if (error) {
        MW_LOG_ERROR("consumer", "cannot take the group's assignment", "error=%s detail=\"%s\"",
                     rd_kafka_error_name(error), rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (assign_err) {
        MW_LOG_ERROR("consumer", "cannot take the group's assignment", "error=%s",
                     rd_kafka_err2name(assign_err));
    }
}

static void pump(struct mw_consumer *c)
{
    while (!c->current && !c->closing) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
        if (!m)
            return;
        if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
            on_offset_reset(c, m);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                MW_LOG_WARN("consumer", "consume error", "error=%s detail=\"%s\"",
                            rd_kafka_err2name(m->err), rd_kafka_err2str(m->err));
            rd_kafka_message_destroy(m);
            continue;
        }
        note_resumed(c, m);
        c->current = m;
        process(c);
    }
}

static void on_poll_timer(uv_timer_t *t)
{
    struct mw_consumer *c = t->data;
    rd_kafka_poll(c->dlq, 0);
    pump(c);
}

static int create_handles(struct mw_consumer *c, char *errbuf, size_t errbuf_size)
{
    /* auto.offset.reset "error": see on_offset_reset. */
    static const char *const consumer_fixed[] = {"enable.auto.commit",
                                                 "false",
                                                 "enable.auto.offset.store",
                                                 "false",
                                                 "auto.offset.reset",
                                                 "error",
                                                 NULL};
    static const char *const dlq_fixed[] = {"enable.idempotence", "true", "acks", "all", NULL};
    const struct mw_aggregator_config *cfg = c->cfg;
    rd_kafka_conf_t *conf = NULL;
    int rc = mw_kafka_conf_build(&cfg->kafka, consumer_fixed, &conf, errbuf, errbuf_size);
    if (rc)
        return rc;
    char rderr[256];
    if (rd_kafka_conf_set(conf, "group.id", cfg->consumer.group_id, rderr, sizeof rderr) !=
        RD_KAFKA_CONF_OK) {
        snprintf(errbuf, errbuf_size, "consumer.group_id: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return MW_ECONFIG;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof rderr);
    if (!c->rk) {
        snprintf(errbuf, errbuf_size, "kafka: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return MW_EKAFKA;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rc = mw_kafka_conf_build(&cfg->kafka, dlq_fixed, &conf, errbuf, errbuf_size);
    if (rc)
        return rc;
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_dr_msg_cb(conf, on_dlq_delivery);
    c->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
    if (!c->dlq) {
        snprintf(errbuf, errbuf_size, "kafka: %s", rderr);
        rd_kafka_conf_destroy(conf);
        return MW_EKAFKA;
    }
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->kafka.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errbuf, errbuf_size, "kafka.topic: cannot subscribe to %s: %s", cfg->kafka.topic,
                 rd_kafka_err2str(err));
        return MW_EKAFKA;
    }
    return 0;
}

static void free_consumer(struct mw_consumer *c)
{
    if (c->dlq) {
        rd_kafka_flush(c->dlq, 5000);
        rd_kafka_destroy(c->dlq);
    }
    if (c->rk) {
        rd_kafka_consumer_close(c->rk);
        rd_kafka_destroy(c->rk);
    }
    mw_zframe_ctx_destroy(c->zctx);
    mw_buf_free(&c->scratch);
    mw_arena_free(&c->batch_memory);
    void *w;
    for (size_t at = 0; (w = mw_table_next(&c->watermarks, &at));)
        mw_free(w);
    mw_table_free(&c->watermarks);
    mw_free(c->reset_from);
    mw_free(c->restart);
    mw_free(c);
}

int mw_consumer_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg,
                       struct mw_store *store, struct mw_profile_cache *profiles,
                       struct mw_consumer **out, char *errbuf, size_t errbuf_size)
{
    struct mw_consumer *c = mw_calloc(1, sizeof *c);
    if (!c)
        return MW_ENOMEM;
    c->loop = loop;
    c->cfg = cfg;
    c->store = store;
    c->profiles = profiles;
    mw_table_init(&c->watermarks, same_model);
    c->reset_from = mw_malloc(MAX_PARTITIONS * sizeof *c->reset_from);
    c->restart = mw_calloc(MAX_PARTITIONS, sizeof *c->restart);
    if (!c->reset_from || !c->restart) {
        mw_free(c->restart);
        mw_free(c->reset_from);
        mw_free(c);
        return MW_ENOMEM;
    }
    for (size_t i = 0; i < MAX_PARTITIONS; i++)
        c->reset_from[i] = -1;
    c->specs[0] = (struct mw_window_spec){cfg->windows.fine_ms, cfg->windows.fine_retention_ms,
                                          mw_drift_kept_at(cfg, cfg->windows.fine_ms)};
    c->specs[1] = (struct mw_window_spec){cfg->windows.coarse_ms, cfg->windows.coarse_retention_ms,
                                          mw_drift_kept_at(cfg, cfg->windows.coarse_ms)};
    mw_buf_init(&c->scratch, (size_t)cfg->consumer.max_batch_bytes);
    c->zctx = mw_zframe_ctx_create(3);
    /* A decoded batch takes a few times its wire size; past BATCH_MEMORY_FACTOR times the
     * largest batch it is a decoding bomb, and goes to the dead-letter topic as undecodable. */
    int arena_rc = mw_arena_init_growing(&c->batch_memory, BATCH_MEMORY_FIRST_BLOCK,
                                         BATCH_MEMORY_FACTOR * (size_t)cfg->consumer.max_batch_bytes);
    int rc = mw_store_add_script(store, MW_APPLY_SCRIPT, MW_APPLY_SCRIPT_LEN, MW_APPLY_SCRIPT_SHA1);
    if (rc)
        snprintf(errbuf, errbuf_size, "cannot register the apply script with the store: %s",
                 mw_strerror(rc));
    rc = rc ? rc : c->zctx && !arena_rc ? create_handles(c, errbuf, errbuf_size) : MW_ENOMEM;
    if (rc) {
        free_consumer(c);
        return rc;
    }
    uv_timer_init(loop, &c->poll_timer);
    uv_timer_init(loop, &c->retry_timer);
    c->poll_timer.data = c->retry_timer.data = c;
    c->handles_open = 2;
    uv_timer_start(&c->poll_timer, on_poll_timer, POLL_INTERVAL_MS, POLL_INTERVAL_MS);
    *out = c;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct mw_consumer *c = h->data;
    if (--c->handles_open == 0 && !c->apply_in_flight)
        free_consumer(c);
}

void mw_consumer_destroy(struct mw_consumer *c)
{
    if (!c)
        return;
    c->closing = 1;
    /* A record not yet applied stays uncommitted and is consumed again by the next owner. */
    if (c->current) {
        rd_kafka_message_destroy(c->current);
        c->current = NULL;
    }
    drop_batch(c);
    uv_close((uv_handle_t *)&c->poll_timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->retry_timer, on_handle_closed);
}

void mw_consumer_set_apply_histogram(struct mw_consumer *c, struct mw_prom_series *series)
{
    c->apply_seconds = series;
}

void mw_consumer_set_pipeline_health(struct mw_consumer *c, struct mw_pipeline_health *h)
{
    c->pipeline = h;
}

void mw_consumer_set_totals(struct mw_consumer *c, struct mw_model_totals *totals)
{
    c->totals = totals;
}

void mw_consumer_set_applied_hook(struct mw_consumer *c, mw_consumer_applied_fn fn, void *ctx)
{
    c->applied_hook = fn;
    c->applied_ctx = ctx;
}

const struct mw_consumer_stats *mw_consumer_stats(const struct mw_consumer *c)
{
    return &c->stats;
}

bool mw_consumer_stalled(const struct mw_consumer *c)
{
    return c && c->dlq_failing;
}

bool mw_consumer_replicas_behind(const struct mw_consumer *c)
{
    return c && c->replicas_behind;
}
