/* aggregator.c — the aggregator's parts and lifecycle on one libuv loop. */
#include "aggregator.h"

#include "alert/alerting.h"
#include "alloc.h"
#include "clock.h"
#include "api.h"
#include "api_auth.h"
#include "consumer.h"
#include "exporter.h"
#include "error.h"
#include "http_server.h"
#include "log.h"
#include "model_totals.h"
#include "pipeline_health.h"
#include "process_metrics.h"
#include "profile_cache.h"
#include "prom.h"
#include "store.h"

#include <stdio.h>
#include <unistd.h>

struct mw_aggregator {
    uv_loop_t *loop;
    const struct mw_aggregator_config *cfg;
    struct mw_store *store;
    struct mw_profile_cache *profiles;
    struct mw_api *api;
    struct mw_consumer *consumer;
    struct mw_exporter *exporter;
    struct mw_prom_registry *metrics;
    struct mw_model_totals *totals;
    struct mw_http_server *http;
    struct mw_alerting *alerting;
    struct mw_api_auth auth; /* the token API writes need (alerting.api_token_file) */
    struct mw_pipeline_health *pipeline;
    char replica[128]; /* names this replica in the partitions' lag readings */
    uv_timer_t health_timer;
    bool health_timer_open;
    /* Loop time since which the consumer holds no partitions (0: it holds some), and when that
     * was last logged. */
    uint64_t idle_since_ms;
    uint64_t idle_logged_ms;
    size_t partitions; /* as of the last health check */
    uint64_t health_ticks;
    int shut_down;
};

#define HEALTH_INTERVAL_MS 1000
#define PIPELINE_FLUSH_EVERY 5 /* health ticks */
/* How long a member may hold no partitions (joining takes a few seconds) before it says so. */
#define IDLE_WARN_AFTER_MS 15000
#define IDLE_WARN_EVERY_MS 60000

static void emit(struct mw_prom_writer *w, const char *name, const char *help,
                 enum mw_prom_type type, double value)
{
    mw_prom_write_family(w, name, help, type);
    mw_prom_write_sample(w, name, NULL, NULL, value);
}

/* Per partition held: its lag (records between where this member stands and the partition's
 * end as last fetched), and how many partitions it holds. */
static void collect_partitions(struct mw_prom_writer *w, struct mw_aggregator *agg)
{
    size_t n = mw_consumer_partitions(agg->consumer, NULL, 0);
    struct mw_consumer_partition *parts = n ? mw_calloc(n, sizeof *parts) : NULL;
    if (parts)
        n = mw_consumer_partitions(agg->consumer, parts, n) < n ? 0 : n;
    emit(w, "modelwatch_aggregator_partitions_assigned",
         "Kafka partitions this replica holds (0: it consumes nothing and is not ready)",
         MW_PROM_GAUGE, (double)n);
    static const char *const partition_label[] = {"partition", NULL};
    mw_prom_write_family(w, "modelwatch_aggregator_consumer_lag_records",
                         "Records of a held partition not yet consumed (its end as last fetched "
                         "less this replica's position)",
                         MW_PROM_GAUGE);
    for (size_t i = 0; parts && i < n; i++) {
        if (parts[i].high_watermark < 0)
            continue; /* nothing fetched yet: unknown */
        int64_t lag = parts[i].high_watermark - (parts[i].position >= 0 ? parts[i].position : 0);
        char partition[16];
        snprintf(partition, sizeof partition, "%d", (int)parts[i].partition);
        const char *values[] = {partition, NULL};
        mw_prom_write_sample(w, "modelwatch_aggregator_consumer_lag_records", partition_label,
                             values, (double)(lag > 0 ? lag : 0));
    }
    mw_free(parts);
}

static void collect_metrics(struct mw_prom_writer *w, void *arg)
{
    struct mw_aggregator *agg = arg;
    const struct mw_consumer_stats *st = mw_consumer_stats(agg->consumer);
    emit(w, "modelwatch_aggregator_offset_resets_total",
         "Committed offsets found out of Kafka's retention (consuming restarted at the earliest "
         "record)",
         MW_PROM_COUNTER, (double)st->offset_resets);
    emit(w, "modelwatch_aggregator_records_skipped_total",
         "Records Kafka dropped before they were applied (between an out-of-retention offset "
         "and the earliest record)",
         MW_PROM_COUNTER, (double)st->records_skipped);
    collect_partitions(w, agg);
    emit(w, "modelwatch_aggregator_records_consumed_total", "Kafka records consumed",
         MW_PROM_COUNTER, (double)st->records_consumed);
    emit(w, "modelwatch_aggregator_batches_applied_total", "Batches applied to Redis and committed",
         MW_PROM_COUNTER, (double)st->batches_applied);
    emit(w, "modelwatch_aggregator_predictions_total", "Predictions counted by applied batches",
         MW_PROM_COUNTER, (double)st->predictions);
    emit(w, "modelwatch_aggregator_sampled_records_total", "Sampled records in applied batches",
         MW_PROM_COUNTER, (double)st->sampled_records);
    emit(w, "modelwatch_aggregator_apply_retries_total", "Redis applications retried",
         MW_PROM_COUNTER, (double)st->apply_retries);
    emit(w, "modelwatch_aggregator_late_dropped_total",
         "Predictions that arrived after their window was final (counted as late, not merged)",
         MW_PROM_COUNTER, (double)st->late_predictions);
    emit(w, "modelwatch_aggregator_late_records_total",
         "Sampled records that arrived after their window was final", MW_PROM_COUNTER,
         (double)st->late_records);
    emit(w, "modelwatch_aggregator_redis_commands_total", "Redis commands sent", MW_PROM_COUNTER,
         (double)mw_store_commands_sent(agg->store));
    emit(w, "modelwatch_aggregator_redis_up", "1 when connected to Redis and Redis answers",
         MW_PROM_GAUGE, mw_store_connected(agg->store) ? 1 : 0);
    emit(w, "modelwatch_aggregator_redis_unanswered_total",
         "Connections closed because Redis left replies unanswered for redis.command_timeout",
         MW_PROM_COUNTER, (double)mw_store_unanswered(agg->store));
    emit(w, "modelwatch_aggregator_redis_durable",
         "1 when Redis keeps what is applied (appendonly, fsync, no eviction), 0 when not, -1 "
         "when unknown",
         MW_PROM_GAUGE, mw_store_durable(agg->store));
    emit(w, "modelwatch_aggregator_redis_data_lost_total",
         "Times Redis was found to have lost modelwatch's data (its epoch key gone or replaced)",
         MW_PROM_COUNTER, (double)mw_store_data_lost(agg->store));
    struct mw_http_server_stats hs = mw_http_server_stats(agg->http);
    static const char *const reason_label[] = {"reason", NULL};
    static const char *const http_reasons[] = {"full", "per_client", "evicted", "request_timeout"};
    const uint64_t http_counts[] = {hs.refused_full, hs.refused_per_client, hs.evicted,
                                    hs.request_timeouts};
    mw_prom_write_family(w, "modelwatch_http_connections_dropped_total",
                         "HTTP connections refused or closed by the server's limits, by reason",
                         MW_PROM_COUNTER);
    for (size_t i = 0; i < 4; i++) {
        const char *values[] = {http_reasons[i], NULL};
        mw_prom_write_sample(w, "modelwatch_http_connections_dropped_total", reason_label, values,
                             (double)http_counts[i]);
    }
    mw_prom_write_family(w, "modelwatch_aggregator_dlq_records_total",
                         "Records sent to the dead-letter topic, by reason", MW_PROM_COUNTER);
    for (int r = 1; r < MW_DLQ_REASON_COUNT; r++) {
        const char *values[] = {mw_dlq_reason_name((enum mw_dlq_reason)r), NULL};
        mw_prom_write_sample(w, "modelwatch_aggregator_dlq_records_total", reason_label, values,
                             (double)st->dlq[r]);
    }
    emit(w, "modelwatch_aggregator_dlq_failures_total",
         "Dead-letter produces that failed (the record is produced again until it succeeds)",
         MW_PROM_COUNTER, (double)st->dlq_failed);
    emit(w, "modelwatch_aggregator_dlq_stalled",
         "1 while consuming waits on a record the dead-letter topic has not taken yet",
         MW_PROM_GAUGE, mw_consumer_stalled(agg->consumer) ? 1 : 0);
    emit(w, "modelwatch_aggregator_replica_wait_shortfalls_total",
         "Batches whose Redis WAIT found fewer replicas than redis.wait_replicas (left "
         "uncommitted and applied again)",
         MW_PROM_COUNTER, (double)st->replica_wait_shortfalls);
    emit(w, "modelwatch_aggregator_replicas_behind",
         "1 while the last batch waits for Redis replicas to acknowledge it", MW_PROM_GAUGE,
         mw_consumer_replicas_behind(agg->consumer) ? 1 : 0);
    emit(w, "modelwatch_aggregator_partitions_revoked_total",
         "Partitions taken away from this member by group rebalances", MW_PROM_COUNTER,
         (double)st->partitions_revoked);
    emit(w, "modelwatch_aggregator_records_fenced_total",
         "Records in progress released uncommitted because their partition was revoked or lost "
         "(the new owner applies them again)",
         MW_PROM_COUNTER, (double)st->records_fenced);
    emit(w, "modelwatch_aggregator_apply_replans_total",
         "Batches planned again because a model's watermark moved under the plan", MW_PROM_COUNTER,
         (double)st->apply_replans);
    emit(w, "modelwatch_aggregator_invalid_predictions_total",
         "Predictions of counters refused at decode (bad model name or bucket), not counted",
         MW_PROM_COUNTER, (double)st->values.invalid_predictions);
    static const char *const field_label[] = {"field", NULL};
    mw_prom_write_family(w, "modelwatch_aggregator_invalid_values_total",
                         "Values from outside refused at decode, by field (each alone)",
                         MW_PROM_COUNTER);
    for (int f = 0; f < MW_BATCH_FIELD_COUNT; f++) {
        const char *values[] = {mw_batch_field_name((enum mw_batch_field)f), NULL};
        mw_prom_write_sample(w, "modelwatch_aggregator_invalid_values_total", field_label, values,
                             (double)st->values.invalid[f]);
    }
    mw_prom_write_family(w, "modelwatch_aggregator_clamped_values_total",
                         "Event times ahead of the clock by more than windows.max_clock_skew, "
                         "clamped to the clock, by field",
                         MW_PROM_COUNTER);
    static const enum mw_batch_field clamped[] = {
        MW_BATCH_FIELD_COUNTERS_BUCKET_START, MW_BATCH_FIELD_EVENT_TIME, MW_BATCH_FIELD_LABEL_TIME};
    for (size_t f = 0; f < sizeof clamped / sizeof clamped[0]; f++) {
        const char *values[] = {mw_batch_field_name(clamped[f]), NULL};
        mw_prom_write_sample(w, "modelwatch_aggregator_clamped_values_total", field_label, values,
                             (double)st->values.clamped[clamped[f]]);
    }
}

static bool is_ready(void *arg)
{
    struct mw_aggregator *agg = arg;
    return !agg->shut_down && mw_store_ready(agg->store, NULL) && agg->partitions > 0 &&
           !mw_consumer_stalled(agg->consumer) && !mw_consumer_replicas_behind(agg->consumer);
}

/* Every few seconds: the agent health samples of the batches applied since, and the lag of the
 * partitions held, for the pipeline alert rules. */
static void flush_pipeline_health(struct mw_aggregator *agg)
{
    size_t n = mw_consumer_partitions(agg->consumer, NULL, 0);
    struct mw_consumer_partition *parts = n ? mw_calloc(n, sizeof *parts) : NULL;
    if (parts)
        n = mw_consumer_partitions(agg->consumer, parts, n) < n ? 0 : n;
    mw_pipeline_health_flush(agg->pipeline, parts, parts ? n : 0, agg->replica,
                             mw_clock_wall_ms());
    mw_free(parts);
}

/* Once a second: whether the consumer holds partitions. A member holding none consumes nothing
 * (more replicas than partitions, or a group join that never completes): it is not ready, and
 * says so in the log rather than idling silently. */
static void on_health_timer(uv_timer_t *t)
{
    struct mw_aggregator *agg = t->data;
    uint64_t now = uv_now(agg->loop);
    size_t n = mw_consumer_partitions(agg->consumer, NULL, 0);
    if (n && !agg->partitions)
        MW_LOG_INFO("aggregator", "holding Kafka partitions", "partitions=%zu group=%s", n,
                    agg->cfg->consumer.group_id);
    if (!n && (agg->partitions || !agg->idle_since_ms)) {
        agg->idle_since_ms = now;
        agg->idle_logged_ms = 0;
    }
    if (n)
        agg->idle_since_ms = 0;
    agg->partitions = n;
    if (++agg->health_ticks % PIPELINE_FLUSH_EVERY == 0)
        flush_pipeline_health(agg);
    if (n || now - agg->idle_since_ms < IDLE_WARN_AFTER_MS ||
        (agg->idle_logged_ms && now - agg->idle_logged_ms < IDLE_WARN_EVERY_MS))
        return;
    agg->idle_logged_ms = now;
    MW_LOG_WARN("aggregator",
                "holding no Kafka partitions: consuming nothing, /readyz fails (more replicas "
                "than partitions, or the consumer group join does not complete)",
                "group=%s topic=%s for_s=%llu", agg->cfg->consumer.group_id, agg->cfg->kafka.topic,
                (unsigned long long)((now - agg->idle_since_ms) / 1000));
}

/* What the aggregator says about itself beyond its counters: the process, its build, and how
 * long batches take to apply. */
static int add_self_metrics(struct mw_aggregator *agg)
{
    static const double apply_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25,  0.5,    1,     2.5,  5,     10,   30};
    struct mw_prom_family *fam = mw_prom_histogram_add(
        agg->metrics, "modelwatch_aggregator_apply_latency_seconds",
        "Seconds from a batch's first attempt to apply until Redis has it for good (retries, "
        "replans and the replicas' WAIT included)",
        NULL, apply_bounds, sizeof apply_bounds / sizeof apply_bounds[0]);
    struct mw_prom_series *series = fam ? mw_prom_series_get(fam, NULL) : NULL;
    if (!series)
        return MW_ENOMEM;
    mw_consumer_set_apply_histogram(agg->consumer, series);
    return mw_process_metrics_register(agg->metrics, "modelwatch-aggregator");
}

int mw_aggregator_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg,
                         struct mw_aggregator **out)
{
    char errbuf[512];
    struct mw_aggregator *agg = mw_calloc(1, sizeof *agg);
    if (!agg)
        return MW_ENOMEM;
    agg->loop = loop;
    agg->cfg = cfg;
    int rc = MW_ENOMEM;
    agg->metrics = mw_prom_registry_create();
    if (!agg->metrics)
        goto fail;
    agg->totals = mw_model_totals_create(agg->metrics, (size_t)cfg->metrics.max_model_versions);
    if (!agg->totals)
        goto fail;
    rc = mw_store_create(loop, cfg, &agg->store);
    if (rc)
        goto fail;
    agg->profiles = mw_profile_cache_create(agg->store, cfg->profiles.refresh_ms);
    if (!agg->profiles) {
        rc = MW_ENOMEM;
        goto fail;
    }
    rc = mw_consumer_create(loop, cfg, agg->store, agg->profiles, &agg->consumer, errbuf,
                            sizeof errbuf);
    if (rc) {
        char quoted[600];
        MW_LOG_ERROR("aggregator", "cannot start the Kafka consumer", "error=%s",
                     mw_log_quote(errbuf, quoted, sizeof quoted));
        goto fail;
    }
    mw_consumer_set_totals(agg->consumer, agg->totals);
    rc = add_self_metrics(agg);
    if (rc)
        goto fail;
    rc = mw_pipeline_health_create(agg->store, &agg->pipeline);
    if (rc)
        goto fail;
    mw_consumer_set_pipeline_health(agg->consumer, agg->pipeline);
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(agg->replica, sizeof agg->replica, "%s:%d", host, (int)getpid());
    uv_timer_init(loop, &agg->health_timer);
    agg->health_timer.data = agg;
    agg->health_timer_open = true;
    uv_timer_start(&agg->health_timer, on_health_timer, HEALTH_INTERVAL_MS, HEALTH_INTERVAL_MS);
    mw_prom_add_collector(agg->metrics, collect_metrics, agg);
    rc = mw_exporter_create(loop, cfg, agg->store, agg->metrics,
                            (uint64_t)cfg->http.signals_refresh_ms, &agg->exporter);
    if (rc)
        goto fail;
    /* Profiles are pushed through the API: allow large documents. */
    struct mw_http_server_options opts = {
        .host = cfg->http.host,
        .port = (int)cfg->http.port,
        .max_body_bytes = 32u * 1024 * 1024,
        .request_timeout_ms = (uint64_t)cfg->http.request_timeout_ms,
        .max_connections = (int)cfg->http.max_connections,
        .max_connections_per_client = (int)cfg->http.max_connections_per_client};
    rc = mw_http_server_create(loop, &opts, &agg->http);
    if (rc)
        goto fail;
    rc = mw_api_auth_init(&agg->auth, cfg->alerting.api_token_file, errbuf, sizeof errbuf);
    if (rc) {
        char quoted[600];
        MW_LOG_ERROR("aggregator", "cannot read the API token", "error=%s",
                     mw_log_quote(errbuf, quoted, sizeof quoted));
        goto fail;
    }
    mw_http_server_set_write_guard(agg->http, mw_api_auth_guard, &agg->auth);
    mw_http_server_set_metrics(agg->http, agg->metrics);
    mw_http_server_set_ready(agg->http, is_ready, agg);
    rc = mw_api_create(agg->http, cfg, agg->store, agg->profiles, &agg->api);
    if (rc)
        goto fail;
    rc = mw_alerting_create(loop, cfg, agg->store, agg->http, agg->metrics, &agg->alerting);
    if (rc)
        goto fail;
    MW_LOG_INFO("aggregator", "started", "topic=%s group=%s http_port=%d", cfg->kafka.topic,
                cfg->consumer.group_id, mw_http_server_port(agg->http));
    *out = agg;
    return 0;
fail:
    mw_aggregator_shutdown(agg);
    uv_run(loop, UV_RUN_DEFAULT);
    mw_aggregator_destroy(agg);
    return rc;
}

int mw_aggregator_reload(struct mw_aggregator *agg, const struct mw_aggregator_config *fresh,
                         const char *config_path)
{
    if (!agg || agg->shut_down || !agg->alerting)
        return 0;
    return mw_alerting_reload(agg->alerting, fresh, config_path);
}

void mw_aggregator_shutdown(struct mw_aggregator *agg)
{
    if (!agg || agg->shut_down)
        return;
    agg->shut_down = 1;
    mw_alerting_shutdown(agg->alerting);
    if (agg->health_timer_open)
        uv_close((uv_handle_t *)&agg->health_timer, NULL);
    agg->health_timer_open = false;
    mw_http_server_destroy(agg->http);
    agg->http = NULL;
    mw_consumer_destroy(agg->consumer);
    agg->consumer = NULL;
    mw_pipeline_health_destroy(agg->pipeline);
    agg->pipeline = NULL;
    mw_exporter_destroy(agg->exporter);
    agg->exporter = NULL;
    mw_store_destroy(agg->store);
    agg->store = NULL;
    mw_profile_cache_destroy(agg->profiles);
    agg->profiles = NULL;
}

void mw_aggregator_destroy(struct mw_aggregator *agg)
{
    if (!agg)
        return;
    mw_alerting_destroy(agg->alerting);
    mw_api_destroy(agg->api);
    mw_api_auth_clear(&agg->auth);
    mw_model_totals_destroy(agg->totals);
    mw_prom_registry_destroy(agg->metrics);
    mw_free(agg);
}
