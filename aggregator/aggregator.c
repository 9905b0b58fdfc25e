/* aggregator.c — the aggregator's parts and lifecycle on one libuv loop. */
#include "aggregator.h"

#include "alert/alerting.h"
#include "alloc.h"
#include "api.h"
#include "consumer.h"
#include "exporter.h"
#include "error.h"
#include "http_server.h"
#include "log.h"
#include "model_totals.h"
#include "profile_cache.h"
#include "prom.h"
#include "store.h"

#include <stdio.h>

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
    int shut_down;
};

static void emit(struct mw_prom_writer *w, const char *name, const char *help,
                 enum mw_prom_type type, double value)
{
    mw_prom_write_family(w, name, help, type);
    mw_prom_write_sample(w, name, NULL, NULL, value);
}

static void collect_metrics(struct mw_prom_writer *w, void *arg)
{
    struct mw_aggregator *agg = arg;
    const struct mw_consumer_stats *st = mw_consumer_stats(agg->consumer);
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
    emit(w, "modelwatch_aggregator_redis_up", "1 when connected to Redis", MW_PROM_GAUGE,
         mw_store_connected(agg->store) ? 1 : 0);
    static const char *const reason_label[] = {"reason", NULL};
    mw_prom_write_family(w, "modelwatch_aggregator_dlq_records_total",
                         "Records sent to the dead-letter topic, by reason", MW_PROM_COUNTER);
    for (int r = 1; r < MW_DLQ_REASON_COUNT; r++) {
        const char *values[] = {mw_dlq_reason_name((enum mw_dlq_reason)r), NULL};
        mw_prom_write_sample(w, "modelwatch_aggregator_dlq_records_total", reason_label, values,
                             (double)st->dlq[r]);
    }
}

static bool is_ready(void *arg)
{
    struct mw_aggregator *agg = arg;
    return !agg->shut_down && mw_store_connected(agg->store);
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
    mw_prom_add_collector(agg->metrics, collect_metrics, agg);
    rc = mw_exporter_create(loop, cfg, agg->store, agg->metrics,
                            (uint64_t)cfg->http.signals_refresh_ms, &agg->exporter);
    if (rc)
        goto fail;
    /* Profiles are pushed through the API: allow large documents. */
    struct mw_http_server_options opts = {
        .host = cfg->http.host, .port = (int)cfg->http.port, .max_body_bytes = 32u * 1024 * 1024};
    rc = mw_http_server_create(loop, &opts, &agg->http);
    if (rc)
        goto fail;
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
    mw_http_server_destroy(agg->http);
    agg->http = NULL;
    mw_consumer_destroy(agg->consumer);
    agg->consumer = NULL;
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
    mw_model_totals_destroy(agg->totals);
    mw_prom_registry_destroy(agg->metrics);
    mw_free(agg);
}
