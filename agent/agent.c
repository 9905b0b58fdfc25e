/* agent.c — the agent's pipeline and lifecycle on one libuv loop. */
#include "agent.h"

#include "alloc.h"
#include "arena.h"
#include "batch_builder.h"
#include "clock.h"
#include "counters.h"
#include "error.h"
#include "http_server.h"
#include "intake.h"
#include "log.h"
#include "producer.h"
#include "prom.h"
#include "zframe.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define ARENA_BYTES (4u * 1024 * 1024)
#define MAX_COMPRESSED_BYTES (256u * 1024 * 1024)

struct mw_agent {
    uv_loop_t *loop;
    const struct mw_agent_config *cfg;
    char agent_id[256];
    char boot_id[33];
    Modelwatch__V1__Identity identity;
    struct mw_intake *intake;
    struct mw_counters *counters;
    struct mw_batch_builder builder;
    uint64_t batch_opened_ms; /* monotonic; 0 when nothing is open */
    uint64_t next_sequence;
    struct mw_zframe_ctx *zctx;
    struct mw_producer *producer;
    struct mw_arena arena;
    uv_timer_t seal_timer;
    struct mw_prom_registry *metrics;
    struct mw_http_server *http;
    int shutting_down;
    int shutdown_started;
    int undelivered; /* batches sealed but neither delivered nor failed at shutdown, or failed */
    struct mw_agent_stats stats;
};

static const char *env_or(const char *configured, const char *env_name)
{
    if (configured && *configured)
        return configured;
    const char *v = getenv(env_name);
    return v ? v : "";
}

static void init_identity(struct mw_agent *a)
{
    const struct mw_agent_config *cfg = a->cfg;
    if (cfg->agent_id && *cfg->agent_id)
        snprintf(a->agent_id, sizeof a->agent_id, "%s", cfg->agent_id);
    else if (gethostname(a->agent_id, sizeof a->agent_id - 1) != 0)
        snprintf(a->agent_id, sizeof a->agent_id, "agent");
    uint8_t rnd[16] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        uint64_t t = mw_clock_mono_ns() ^ (uint64_t)getpid();
        memcpy(rnd, &t, sizeof t);
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(a->boot_id + 2 * i, 3, "%02x", rnd[i]);
    modelwatch__v1__identity__init(&a->identity);
    a->identity.agent_id = a->agent_id;
    a->identity.boot_id = a->boot_id;
    a->identity.pod = (char *)env_or(cfg->identity.pod, "POD_NAME");
    a->identity.namespace_ = (char *)env_or(cfg->identity.namespace_, "POD_NAMESPACE");
    a->identity.node = (char *)env_or(cfg->identity.node, "NODE_NAME");
}

/* Seal the open batch (records and counters), compress it and hand it to Kafka. */
static void seal(struct mw_agent *a)
{
    if (a->batch_opened_ms == 0)
        return;
    struct mw_buf snapshot, batch, compressed;
    mw_buf_init(&snapshot, 64u * 1024 * 1024);
    mw_buf_init(&batch, 0);
    mw_buf_init(&compressed, MAX_COMPRESSED_BYTES);
    size_t n_records = a->builder.n_records;
    uint64_t sequence = a->next_sequence;
    const char *err_op = "snapshot";
    int rc = mw_counters_flush(a->counters, NULL, &snapshot);
    if (!rc) {
        err_op = "seal";
        rc = mw_batch_builder_seal(&a->builder, &a->identity, sequence, mw_clock_wall_ms(),
                                   &snapshot, &batch);
    }
    if (!rc) {
        err_op = "compress";
        rc = mw_zframe_compress(a->zctx, batch.data, batch.len, &compressed);
    }
    a->batch_opened_ms = 0;
    if (rc) {
        a->stats.dropped_batch_error += n_records;
        MW_LOG_ERROR("agent", "cannot seal batch", "op=%s sequence=%" PRIu64 " records=%zu error=%s",
                     err_op, sequence, n_records, mw_err_name(rc));
        goto out;
    }
    a->next_sequence++;
    a->stats.batches_sealed++;
    size_t len = compressed.len;
    mw_producer_send(a->producer, mw_buf_detach(&compressed, NULL), len, sequence);
out:
    mw_buf_free(&snapshot);
    mw_buf_free(&batch);
    mw_buf_free(&compressed);
}

static void open_batch_if_needed(struct mw_agent *a)
{
    if (a->batch_opened_ms == 0)
        a->batch_opened_ms = mw_clock_mono_ms();
}

static int count_message(struct mw_agent *a, const Modelwatch__V1__ClientMessage *msg)
{
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT) {
        const Modelwatch__V1__PredictionEvent *ev = msg->event;
        if (!ev->model || !*ev->model || !ev->prediction_id || !*ev->prediction_id ||
            !ev->has_event_time_ms)
            return MW_EPARSE;
        return mw_counters_add_event(a->counters, ev);
    }
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK) {
        const Modelwatch__V1__Feedback *fb = msg->feedback;
        if (!fb->model || !*fb->model || !fb->prediction_id || !*fb->prediction_id ||
            fb->label_case == MODELWATCH__V1__FEEDBACK__LABEL__NOT_SET)
            return MW_EPARSE;
        return mw_counters_add_feedback(a->counters, fb);
    }
    return MW_EPARSE;
}

static void on_message(const void *data, size_t len, void *arg)
{
    struct mw_agent *a = arg;
    mw_arena_reset(&a->arena);
    Modelwatch__V1__ClientMessage *msg =
        modelwatch__v1__client_message__unpack(&a->arena.pb_allocator, len, data);
    int rc = msg ? count_message(a, msg) : MW_EPARSE;
    if (rc == MW_EPARSE) {
        a->stats.dropped_malformed++;
        return;
    }
    if (rc) {
        a->stats.dropped_counters_full++;
        return;
    }
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT)
        a->stats.events_accepted++;
    else
        a->stats.feedback_accepted++;
    if (mw_batch_builder_would_overflow(&a->builder, len))
        seal(a);
    open_batch_if_needed(a);
    if (mw_batch_builder_add(&a->builder, data, len, 1.0) != 0)
        a->stats.dropped_batch_error++;
    if (mw_batch_builder_is_full(&a->builder))
        seal(a);
}

static void on_seal_timer(uv_timer_t *t)
{
    struct mw_agent *a = t->data;
    if (a->batch_opened_ms &&
        mw_clock_mono_ms() - a->batch_opened_ms >= (uint64_t)a->cfg->batch.max_age_ms)
        seal(a);
}

static void emit(struct mw_prom_writer *w, const char *name, const char *help,
                 enum mw_prom_type type, double value)
{
    mw_prom_write_family(w, name, help, type);
    mw_prom_write_sample(w, name, NULL, NULL, value);
}

static void collect_metrics(struct mw_prom_writer *w, void *arg)
{
    struct mw_agent *a = arg;
    const struct mw_intake_stats *in = mw_intake_stats(a->intake);
    const struct mw_producer_stats *ps = mw_producer_stats(a->producer);
    emit(w, "modelwatch_agent_messages_received_total", "Messages read from the intake socket",
         MW_PROM_COUNTER, (double)in->received);
    emit(w, "modelwatch_agent_events_accepted_total", "Prediction events counted",
         MW_PROM_COUNTER, (double)a->stats.events_accepted);
    emit(w, "modelwatch_agent_feedback_accepted_total", "Feedback messages counted",
         MW_PROM_COUNTER, (double)a->stats.feedback_accepted);
    static const char *const reason[] = {"reason", NULL};
    mw_prom_write_family(w, "modelwatch_agent_messages_dropped_total",
                         "Messages dropped, by reason", MW_PROM_COUNTER);
    const struct {
        const char *reason;
        uint64_t n;
    } drops[] = {{"oversize", in->dropped_oversize},
                 {"malformed", a->stats.dropped_malformed},
                 {"counters_full", a->stats.dropped_counters_full},
                 {"batch_error", a->stats.dropped_batch_error}};
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        const char *values[] = {drops[i].reason, NULL};
        mw_prom_write_sample(w, "modelwatch_agent_messages_dropped_total", reason, values,
                             (double)drops[i].n);
    }
    emit(w, "modelwatch_agent_batches_sealed_total", "Batches sealed", MW_PROM_COUNTER,
         (double)a->stats.batches_sealed);
    emit(w, "modelwatch_agent_batches_delivered_total", "Batches acknowledged by Kafka",
         MW_PROM_COUNTER, (double)ps->batches_delivered);
    emit(w, "modelwatch_agent_batches_failed_total", "Batches whose delivery failed",
         MW_PROM_COUNTER, (double)ps->batches_failed);
    emit(w, "modelwatch_agent_kafka_in_flight_batches", "Batches awaiting acknowledgement",
         MW_PROM_GAUGE, (double)mw_producer_in_flight(a->producer));
}

static bool is_ready(void *arg)
{
    struct mw_agent *a = arg;
    return !a->shutting_down;
}

static int start_http(struct mw_agent *a)
{
    struct mw_http_server_options opts = {.host = a->cfg->http.host,
                                          .port = (int)a->cfg->http.port};
    int rc = mw_http_server_create(a->loop, &opts, &a->http);
    if (rc)
        return rc;
    mw_http_server_set_metrics(a->http, a->metrics);
    mw_http_server_set_ready(a->http, is_ready, a);
    return 0;
}

int mw_agent_create(uv_loop_t *loop, const struct mw_agent_config *cfg, struct mw_agent **out)
{
    char errbuf[512];
    struct mw_agent *a = mw_calloc(1, sizeof *a);
    if (!a)
        return MW_ENOMEM;
    a->loop = loop;
    a->cfg = cfg;
    a->next_sequence = 1;
    init_identity(a);
    int rc = MW_ENOMEM;
    a->counters = mw_counters_create((size_t)cfg->counters.max_series,
                                     cfg->counters.bucket_width_ms);
    a->zctx = mw_zframe_ctx_create((int)cfg->batch.compression_level);
    a->metrics = mw_prom_registry_create();
    if (!a->counters || !a->zctx || !a->metrics || mw_arena_init(&a->arena, ARENA_BYTES) ||
        mw_batch_builder_init(&a->builder, (size_t)cfg->batch.max_records,
                              (size_t)cfg->batch.max_bytes))
        goto fail;
    mw_prom_add_collector(a->metrics, collect_metrics, a);
    rc = mw_producer_create(loop, &cfg->kafka, a->agent_id, NULL, a, &a->producer, errbuf,
                            sizeof errbuf);
    if (rc) {
        MW_LOG_ERROR("agent", "cannot create Kafka producer", "error=%s",
                     mw_log_quote(errbuf, (char[512]){0}, 512));
        goto fail;
    }
    rc = mw_intake_create(loop, cfg->intake.endpoint, (size_t)cfg->intake.max_message_bytes,
                          on_message, a, &a->intake);
    if (rc)
        goto fail;
    rc = start_http(a);
    if (rc)
        goto fail;
    uv_timer_init(loop, &a->seal_timer);
    a->seal_timer.data = a;
    uint64_t tick_ms = (uint64_t)cfg->batch.max_age_ms / 4 + 1;
    uv_timer_start(&a->seal_timer, on_seal_timer, tick_ms, tick_ms);
    MW_LOG_INFO("agent", "started", "agent_id=%s boot_id=%s topic=%s http_port=%d", a->agent_id,
                a->boot_id, cfg->kafka.topic, mw_http_server_port(a->http));
    *out = a;
    return 0;
fail:
    a->shutting_down = 1;
    mw_agent_shutdown(a);
    uv_run(loop, UV_RUN_DEFAULT);
    mw_agent_destroy(a);
    return rc;
}

void mw_agent_shutdown(struct mw_agent *a)
{
    if (!a || a->shutdown_started)
        return;
    a->shutdown_started = 1;
    a->shutting_down = 1;
    if (a->intake) {
        mw_intake_stop(a->intake);
        seal(a);
        mw_intake_destroy(a->intake);
        a->intake = NULL;
    }
    if (a->producer) {
        uint64_t waiting = mw_producer_in_flight(a->producer);
        if (mw_producer_flush(a->producer, a->cfg->shutdown_grace_ms) != 0)
            MW_LOG_ERROR("agent", "batches not delivered before the grace period ended",
                         "in_flight=%" PRIu64, mw_producer_in_flight(a->producer));
        else
            MW_LOG_INFO("agent", "drained", "batches_flushed=%" PRIu64, waiting);
        const struct mw_producer_stats *ps = mw_producer_stats(a->producer);
        a->undelivered = mw_producer_in_flight(a->producer) || ps->batches_failed;
        /* The producer frees itself once its timer handle has closed. */
        mw_producer_destroy(a->producer);
        a->producer = NULL;
    }
    if (a->seal_timer.loop) /* initialised */
        uv_close((uv_handle_t *)&a->seal_timer, NULL);
    mw_http_server_destroy(a->http);
    a->http = NULL;
}

int mw_agent_destroy(struct mw_agent *a)
{
    if (!a)
        return 0;
    int rc = a->undelivered ? MW_EKAFKA : 0;
    mw_counters_destroy(a->counters);
    mw_zframe_ctx_destroy(a->zctx);
    mw_prom_registry_destroy(a->metrics);
    mw_arena_free(&a->arena);
    mw_batch_builder_free(&a->builder);
    mw_free(a);
    return rc;
}

const struct mw_agent_stats *mw_agent_stats(const struct mw_agent *a)
{
    return &a->stats;
}
