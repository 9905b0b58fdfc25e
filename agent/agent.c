/* agent.c — the agent's pipeline and lifecycle on one libuv loop. */
#include "agent.h"

#include "alloc.h"
#include "arena.h"
#include "batch_builder.h"
#include "client_message.h"
#include "clock.h"
#include "counters.h"
#include "error.h"
#include "http_server.h"
#include "intake.h"
#include "log.h"
#include "names.h"
#include "process_metrics.h"
#include "prom.h"
#include "redact.h"
#include "resources.h"
#include "sampler.h"
#include "shipper.h"
#include "state_file.h"
#include "zframe.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define ARENA_BYTES (4u * 1024 * 1024)
#define DRAIN_CHECK_MS 20
/* At SIGTERM the intake is read until clients have been quiet this long (libmodelwatch clients
 * stop sending within a flush interval once the socket file is gone), at most
 * INTAKE_DRAIN_MAX_MS and never past shutdown_grace. */
#define INTAKE_QUIET_MS 150
#define INTAKE_DRAIN_MAX_MS 3000
/* count_message: the event or label time is too far ahead (not an error code: a verdict). */
#define FUTURE_TIME 1

struct mw_agent {
    uv_loop_t *loop;
    const struct mw_agent_config *cfg;
    char agent_id[256];
    char boot_id[33];
    Modelwatch__V1__Identity identity;
    struct mw_intake *intake;
    struct mw_counters *counters;
    struct mw_sampler *sampler;
    struct mw_redactor *redactor;
    struct mw_resources *resources;
    struct mw_batch_builder builder;
    uint64_t batch_opened_ms; /* monotonic; 0 when nothing is open */
    uint64_t open_messages;   /* accepted messages since the last seal */
    uint64_t open_events;     /* of which prediction events */
    uint64_t sealed_messages; /* accepted messages in sealed batches (or dropped at seal) */
    uint64_t next_sequence;
    struct mw_zframe_ctx *zctx;
    struct mw_shipper *shipper;
    struct mw_state_file state;
    struct mw_arena arena;
    struct mw_buf repacked; /* a redacted message, re-encoded */
    uv_timer_t seal_timer;
    uv_timer_t drain_timer;
    uint64_t drain_deadline_ms;
    uint64_t intake_deadline_ms;         /* while the intake drains at shutdown; 0 after */
    struct mw_intake_stats intake_final; /* the intake's counters once it is closed */
    struct mw_prom_registry *metrics;
    struct mw_http_server *http;
    uint64_t future_logged_ms; /* monotonic time of the last "event time ahead" line */
    uint64_t dropped_shipped;  /* dropped_total as the last sealed batch carried it */
    /* The client stream the messages now arriving belong to (slot -1: none). */
    int stream_slot;
    uint64_t stream_client_id;
    uint64_t stream_messages; /* received from it so far, this message not included */
    uint64_t stream_events;
    int shutdown_started;
    int lost_at_exit;
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

/* Everything this process dropped or lost, in events and feedback: at the intake, at sealing,
 * with sealed batches, what the previous process never sealed, and what clients handed over
 * that never arrived. */
static uint64_t dropped_total(const struct mw_agent *a)
{
    const struct mw_intake_stats *in = a->intake ? mw_intake_stats(a->intake) : &a->intake_final;
    struct mw_shipper_stats st;
    mw_shipper_stats(a->shipper, &st);
    return in->dropped_oversize + a->stats.dropped_malformed + a->stats.dropped_invalid_name +
           a->stats.dropped_counters_full + a->stats.dropped_batch_error +
           a->stats.redact_failures + a->stats.dropped_future_time +
           a->stats.events_lost_before_start + a->stats.events_lost_in_transit +
           a->stats.feedback_lost_in_transit + st.spool_full_events + st.rejected_events +
           st.lost_unspooled_events + st.unspooled_full_events;
}

/* What the pipeline's alert rules read about this agent (agent_drops, spool_use). */
static void agent_health(struct mw_agent *a, Modelwatch__V1__AgentHealth *h)
{
    struct mw_shipper_stats st;
    mw_shipper_stats(a->shipper, &st);
    h->has_dropped_total = h->has_spool_bytes = h->has_spool_max_bytes = 1;
    h->dropped_total = dropped_total(a);
    h->spool_bytes = st.spool_bytes;
    h->spool_max_bytes = st.spool_max_bytes;
}

/* Tell the state file what a kill -9 would not lose: everything sealed, except batches held in
 * memory only because the spool could not take them. */
static void update_state(struct mw_agent *a)
{
    if (!a->shipper)
        return;
    mw_state_file_sealed(&a->state, a->sealed_messages - mw_shipper_unspooled_messages(a->shipper));
}

/* Seal the open batch (records and counters), compress it and hand it to the shipper. */
static void seal(struct mw_agent *a)
{
    if (a->batch_opened_ms == 0)
        return;
    struct mw_buf snapshot;
    mw_buf_init(&snapshot, 64u * 1024 * 1024);
    const void *frame = NULL;
    size_t frame_len = 0;
    size_t n_records = a->builder.n_records;
    uint64_t sequence = a->next_sequence;
    Modelwatch__V1__ResourceUsage usage = MODELWATCH__V1__RESOURCE_USAGE__INIT;
    mw_resources_sample(a->resources, mw_clock_wall_ms(), &usage);
    if (a->cfg->resources.requested_cores > 0) {
        usage.has_requested_cores = 1;
        usage.requested_cores = a->cfg->resources.requested_cores;
    }
    if (a->cfg->resources.requested_memory_bytes > 0) {
        usage.has_requested_memory_bytes = 1;
        usage.requested_memory_bytes = a->cfg->resources.requested_memory_bytes;
    }
    Modelwatch__V1__AgentHealth health = MODELWATCH__V1__AGENT_HEALTH__INIT;
    agent_health(a, &health);
    a->dropped_shipped = health.dropped_total;
    const char *err_op = "snapshot";
    int rc = mw_counters_flush(a->counters, &usage, &health, &snapshot);
    if (!rc) {
        err_op = "seal";
        rc = mw_batch_builder_seal(&a->builder, a->zctx, &a->identity, sequence,
                                   mw_clock_wall_ms(), &snapshot, &frame, &frame_len);
    }
    a->batch_opened_ms = 0;
    if (rc) {
        a->stats.dropped_batch_error += n_records;
        MW_LOG_ERROR("agent", "cannot seal batch",
                     "op=%s sequence=%" PRIu64 " records=%zu error=%s", err_op, sequence, n_records,
                     mw_err_name(rc));
        goto out;
    }
    a->next_sequence++;
    a->stats.batches_sealed++;
    if (mw_shipper_submit(a->shipper, sequence, frame, frame_len, a->open_messages,
                          a->open_events) != 0)
        a->lost_at_exit = 1;
out:
    a->sealed_messages += a->open_messages;
    a->open_messages = a->open_events = 0;
    update_state(a);
    mw_buf_free(&snapshot);
}

static void open_batch_if_needed(struct mw_agent *a)
{
    if (a->batch_opened_ms == 0)
        a->batch_opened_ms = mw_clock_mono_ms();
}

/* An event time further ahead of this agent's clock than intake.max_future_skew: a time in
 * the wrong unit or from a clock far ahead. Counted invalid (returns FUTURE_TIME), never counted as
 * traffic, so it cannot poison the aggregator's watermark. Old times are fine. */
static int check_time(struct mw_agent *a, const char *what, const char *model, int64_t time_ms)
{
    int64_t now_ms = (int64_t)mw_clock_wall_ms();
    if (time_ms <= now_ms || time_ms - now_ms <= a->cfg->intake.max_future_skew_ms)
        return 0;
    /* One line per second at most: a client with a broken clock sends many. */
    uint64_t mono_ms = mw_clock_mono_ms();
    if (mono_ms - a->future_logged_ms >= 1000 || a->future_logged_ms == 0) {
        char quoted[300];
        a->future_logged_ms = mono_ms;
        MW_LOG_WARN("agent", "event time ahead of the agent's clock; dropped as invalid",
                    "kind=%s model=%s event_time_ms=%" PRId64 " ahead_ms=%" PRId64
                    " max_future_skew_ms=%" PRId64 " dropped_so_far=%" PRIu64,
                    what, mw_log_quote(model ? model : "", quoted, sizeof quoted), time_ms,
                    time_ms - now_ms, a->cfg->intake.max_future_skew_ms,
                    a->stats.dropped_future_time + 1);
    }
    return FUTURE_TIME;
}

/* FUTURE_TIME when a decoded and checked message's time is too far ahead of this agent's
 * clock, else 0. */
static int check_message_time(struct mw_agent *a, const Modelwatch__V1__ClientMessage *msg)
{
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT)
        return check_time(a, "event", msg->event->model, msg->event->event_time_ms);
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_COUNTS) /* its earliest time */
        return check_time(a, "counts", msg->counts->model, msg->counts->bucket_start_ms);
    const Modelwatch__V1__Feedback *fb = msg->feedback;
    if (fb->has_event_time_ms)
        return check_time(a, "feedback", fb->model, fb->event_time_ms);
    return 0;
}

/* Count one decoded and checked message (client_message.h) for 100% of the traffic. */
static int count_message(struct mw_agent *a, const Modelwatch__V1__ClientMessage *msg)
{
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT)
        return mw_counters_add_event(a->counters, msg->event);
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_COUNTS)
        return mw_counters_add_counts(a->counters, msg->counts);
    return mw_counters_add_feedback(a->counters, msg->feedback);
}

/* The encoded key bytes of ClientMessage.event (field 1) and .counts (field 4), wire type 2. */
#define CLIENT_MESSAGE_EVENT_KEY 0x0a
#define CLIENT_MESSAGE_COUNTS_KEY 0x22

static bool is_counts(const Modelwatch__V1__ClientMessage *msg)
{
    return msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_COUNTS;
}

/* The events a decoded message stands for: a counts message's count, else at most one. */
static uint64_t events_in(const Modelwatch__V1__ClientMessage *msg)
{
    if (is_counts(msg))
        return msg->counts->count;
    return msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT;
}

/* The client messages a decoded message numbers as in its client's stream (ClientStream). */
static uint64_t messages_in(const Modelwatch__V1__ClientMessage *msg)
{
    return is_counts(msg) ? msg->counts->count : 1;
}

static void *arena_alloc(void *ctx, size_t n)
{
    return mw_arena_alloc(ctx, n);
}

/* Redact an event in place and re-encode its message; *data and *len then point at the new bytes.
 * Fails closed: a message that cannot be redacted is not shipped. */
static int redact_message(struct mw_agent *a, Modelwatch__V1__ClientMessage *msg, const void **data,
                          size_t *len)
{
    bool changed = false;
    int rc = mw_redact_event(a->redactor, msg->event, arena_alloc, &a->arena, &changed);
    if (rc)
        a->stats.redact_failures++; /* the event is still safe: failed fields were dropped */
    if (!changed)
        return 0;
    size_t size = modelwatch__v1__client_message__get_packed_size(msg);
    mw_buf_reset(&a->repacked);
    rc = mw_buf_reserve(&a->repacked, size);
    if (rc)
        return rc;
    modelwatch__v1__client_message__pack(msg, (uint8_t *)a->repacked.data);
    a->repacked.len = size;
    *data = a->repacked.data;
    *len = size;
    return 0;
}

/* Decide whether the message's payload ships, with what weight. */
static bool keep_payload(struct mw_agent *a, const Modelwatch__V1__ClientMessage *msg,
                         double *weight)
{
    if (is_counts(msg)) {
        /* The client left these events unsent by the rate of the rules it read. */
        mw_sampler_count_dropped_by_client(a->sampler, msg->counts->count);
        return false;
    }
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK) {
        const Modelwatch__V1__Feedback *fb = msg->feedback;
        *weight = 1.0 / mw_sampler_rate(a->sampler, fb->model);
        return mw_sampler_keep_feedback(a->sampler, fb->model, fb->prediction_id);
    }
    const Modelwatch__V1__PredictionEvent *ev = msg->event;
    bool is_error = ev->has_status && ev->status == MODELWATCH__V1__STATUS__STATUS_ERROR;
    bool keep = mw_sampler_keep_event(a->sampler, ev->model, ev->prediction_id, is_error,
                                      ev->latency_us, mw_clock_mono_ms(), weight, NULL);
    if (!ev->payload_omitted)
        return keep;
    /* The client left the payload out by the rules it read: nothing to ship. The sampler still
     * decided, so its decision counts stay those of every event. */
    a->stats.events_payload_omitted++;
    a->stats.kept_without_payload += keep;
    return false;
}

static void add_record(struct mw_agent *a, const void *data, size_t len, double weight,
                       int label_sampled)
{
    if (mw_batch_builder_would_overflow(&a->builder, len))
        seal(a);
    open_batch_if_needed(a);
    if (mw_batch_builder_add(&a->builder, data, len, weight, label_sampled) != 0) {
        a->stats.dropped_batch_error++;
        return;
    }
    a->stats.records_kept++;
    if (mw_batch_builder_is_full(&a->builder))
        seal(a);
}

/* A client message was received (accepted or not): the state file counts it in its client's
 * stream and, when accepted, among the accepted, in one step; counts as the events they stand
 * for. A message that does not decode tells its kind by its first byte (ClientMessage.event
 * is field 1, wire type 2) and numbers as one: a counts message's other events then show as a
 * gap at the client's next batch, lost in transit. */
static void received(struct mw_agent *a, const void *data, size_t len,
                     const Modelwatch__V1__ClientMessage *msg, bool accepted)
{
    uint8_t key = len > 0 ? ((const uint8_t *)data)[0] : 0;
    uint64_t messages = msg ? messages_in(msg) : 1;
    uint64_t events =
        msg ? events_in(msg) : (key == CLIENT_MESSAGE_EVENT_KEY || key == CLIENT_MESSAGE_COUNTS_KEY);
    uint64_t taken = accepted ? messages : 0;
    if (a->stream_slot < 0) {
        mw_state_file_accepted(&a->state, taken);
        return;
    }
    a->stream_messages += messages;
    a->stream_events += events;
    mw_state_file_progress(&a->state, a->stream_slot, a->stream_client_id, a->stream_messages,
                           a->stream_events, taken);
}

/* The messages that follow are `s`'s (NULL: unnumbered). A jump past what this agent, or the
 * one before it on this state file, received from the client is what was lost on the way. */
static void on_stream(const struct mw_intake_stream *s, void *arg)
{
    struct mw_agent *a = arg;
    a->stream_slot = -1;
    if (!s)
        return;
    bool known = false;
    uint64_t evicted = 0;
    int slot = mw_state_file_find_client(&a->state, s->client_id, &known, &evicted);
    if (slot < 0)
        return;
    if (evicted)
        MW_LOG_WARN("agent", "client table full; forgetting the least recently seen client",
                    "client=%016" PRIx64 " clients=%d", evicted, MW_STATE_MAX_CLIENTS);
    struct mw_state_client had = mw_state_file_client(&a->state, slot, s->client_id);
    if (!known && !a->state.has_history && s->messages_before > 0) {
        /* A new state file (or one from before the client table): what the client sent before
         * went to an agent this one knows nothing of, delivered or not. */
        MW_LOG_INFO("agent", "client first seen mid-stream; what it sent before is not known here",
                    "client=%016" PRIx64 " client_sent_before=%" PRIu64, s->client_id,
                    s->messages_before);
    } else if (s->messages_before > had.messages) {
        uint64_t messages = s->messages_before - had.messages;
        uint64_t events = s->events_before > had.events ? s->events_before - had.events : 0;
        if (events > messages)
            events = messages;
        a->stats.events_lost_in_transit += events;
        a->stats.feedback_lost_in_transit += messages - events;
        MW_LOG_WARN("agent", "messages a client handed over never arrived (lost in transit)",
                    "client=%016" PRIx64 " events_lost=%" PRIu64 " feedback_lost=%" PRIu64
                    " received_before=%" PRIu64 " client_sent_before=%" PRIu64 " known=%s",
                    s->client_id, events, messages - events, had.messages, s->messages_before,
                    known ? "yes" : "no");
    } else if (s->messages_before < had.messages) {
        MW_LOG_WARN("agent", "a client's stream went back; following it",
                    "client=%016" PRIx64 " received_before=%" PRIu64 " client_sent_before=%" PRIu64,
                    s->client_id, had.messages, s->messages_before);
    }
    a->stream_slot = slot;
    a->stream_client_id = s->client_id;
    a->stream_messages = s->messages_before;
    a->stream_events = s->events_before;
    mw_state_file_progress(&a->state, slot, s->client_id, s->messages_before, s->events_before, 0);
    mw_state_file_seen(&a->state, slot, mw_clock_wall_ms());
}

static void on_dropped_by_intake(const void *data, size_t len, void *arg)
{
    received(arg, data, len, NULL, false);
}

/*
 * Decode, check, sample and count one client message. An event is first read only as far as
 * counting and sampling need (its head, client_message.h). The payload of an event that ships
 * is checked to decode before anything of it leaves, without decoding it where the wire tells
 * (mw_client_message_event_payload_ok), and decoded whole when it must be redacted. Returns 0
 * with *msg (whole when it is to be redacted) and *keep, *weight set, or the reason the message
 * is dropped.
 */
static int take_message(struct mw_agent *a, const void *data, size_t len,
                        Modelwatch__V1__ClientMessage **msg, bool *keep, double *weight)
{
    bool whole = false;
    *keep = false;
    int rc = mw_client_message_decode_head(&a->arena.pb_allocator, data, len, msg, &whole);
    if (rc == 0)
        rc = check_message_time(a, *msg);
    if (rc)
        return rc;
    *keep = keep_payload(a, *msg, weight);
    if (*keep && !whole &&
        (mw_redact_has_rules(a->redactor, (*msg)->event->model) ||
         !mw_client_message_event_payload_ok(data, len))) {
        /* Read again, whole: to redact it, or to know that what the head reader skipped
         * decodes before it ships. A payload that does not is a malformed message, not counted
         * (the sampler has taken its decision; the head stays in *msg to tell its kind). */
        Modelwatch__V1__ClientMessage *head = *msg;
        rc = mw_client_message_decode(&a->arena.pb_allocator, data, len, msg);
        if (rc) {
            *msg = head;
            return rc;
        }
    }
    return count_message(a, *msg);
}

static void on_message(const void *data, size_t len, void *arg)
{
    struct mw_agent *a = arg;
    mw_arena_reset(&a->arena);
    Modelwatch__V1__ClientMessage *msg = NULL;
    bool keep = false;
    double weight = 1.0;
    int rc = take_message(a, data, len, &msg, &keep, &weight);
    received(a, data, len, msg, rc == 0);
    uint64_t messages = msg ? messages_in(msg) : 1;
    if (rc) {
        if (rc == MW_EPARSE)
            a->stats.dropped_malformed += messages;
        else if (rc == MW_EINVAL)
            a->stats.dropped_invalid_name += messages;
        else if (rc == FUTURE_TIME)
            a->stats.dropped_future_time += messages;
        else
            a->stats.dropped_counters_full += messages;
        return;
    }
    uint64_t events = events_in(msg);
    bool is_event = msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT;
    a->stats.events_accepted += events;
    a->stats.feedback_accepted += messages - events;
    if (is_counts(msg)) {
        a->stats.events_counted_by_client += events;
        a->stats.counts_messages++;
    }
    a->open_messages += messages;
    a->open_events += events;
    open_batch_if_needed(a); /* the counters alone make a batch worth sealing */
    if (!keep)
        return;
    if (is_event && mw_redact_has_rules(a->redactor, msg->event->model) &&
        redact_message(a, msg, &data, &len) != 0) {
        a->stats.redact_failures++;
        return;
    }
    /* The label join waits only for predictions whose label the rate will ship too. */
    int label_sampled = -1;
    if (is_event)
        label_sampled = mw_sampler_unit(msg->event->prediction_id) <
                        mw_sampler_rate(a->sampler, msg->event->model);
    add_record(a, data, len, weight, label_sampled);
}

static void on_seal_timer(uv_timer_t *t)
{
    struct mw_agent *a = t->data;
    update_state(a); /* batches held in memory may have been delivered since */
    if (!a->batch_opened_ms && a->shipper && dropped_total(a) != a->dropped_shipped)
        open_batch_if_needed(a); /* drops alone make a batch worth sealing: they are news */
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

static void emit_labelled(struct mw_prom_writer *w, const char *name, const char *help,
                          const char *label, const char *const *values, const uint64_t *counts,
                          size_t n)
{
    const char *names[] = {label, NULL};
    mw_prom_write_family(w, name, help, MW_PROM_COUNTER);
    for (size_t i = 0; i < n; i++) {
        const char *v[] = {values[i], NULL};
        mw_prom_write_sample(w, name, names, v, (double)counts[i]);
    }
}

static void collect_intake(struct mw_prom_writer *w, const struct mw_agent *a)
{
    const struct mw_intake_stats *in = a->intake ? mw_intake_stats(a->intake) : &a->intake_final;
    emit(w, "modelwatch_agent_messages_received_total", "Client messages read from the intake",
         MW_PROM_COUNTER, (double)in->received);
    emit(w, "modelwatch_agent_intake_transport_messages_total",
         "nanomsg messages read (one or a coalesced batch of client messages)", MW_PROM_COUNTER,
         (double)in->transport_messages);
    emit(w, "modelwatch_agent_intake_client_batches_total", "Coalesced client batches unwrapped",
         MW_PROM_COUNTER, (double)in->client_batches);
    emit(w, "modelwatch_agent_events_accepted_total", "Prediction events counted", MW_PROM_COUNTER,
         (double)a->stats.events_accepted);
    emit(w, "modelwatch_agent_feedback_accepted_total", "Feedback messages counted",
         MW_PROM_COUNTER, (double)a->stats.feedback_accepted);
    static const char *const reasons[] = {"oversize",      "malformed",   "invalid_name",
                                          "counters_full", "batch_error", "redaction",
                                          "future_time"};
    const uint64_t drops[] = {in->dropped_oversize,          a->stats.dropped_malformed,
                              a->stats.dropped_invalid_name, a->stats.dropped_counters_full,
                              a->stats.dropped_batch_error,  a->stats.redact_failures,
                              a->stats.dropped_future_time};
    emit_labelled(w, "modelwatch_agent_messages_dropped_total", "Messages dropped, by reason",
                  "reason", reasons, drops, 7);
    emit(w, "modelwatch_agent_events_lost_before_start",
         "Events the previous process accepted but never sealed (kill -9)", MW_PROM_GAUGE,
         (double)a->stats.events_lost_before_start);
    emit(w, "modelwatch_agent_events_lost_in_transit_total",
         "Prediction events clients handed over that never arrived (a connection lost them)",
         MW_PROM_COUNTER, (double)a->stats.events_lost_in_transit);
    emit(w, "modelwatch_agent_feedback_lost_in_transit_total",
         "Feedback messages clients handed over that never arrived", MW_PROM_COUNTER,
         (double)a->stats.feedback_lost_in_transit);
    emit(w, "modelwatch_agent_client_stream_errors_total",
         "Client batches whose ClientStream did not decode (their messages are not numbered)",
         MW_PROM_COUNTER, (double)in->stream_errors);
}

static void collect_sampling(struct mw_prom_writer *w, const struct mw_agent *a)
{
    struct mw_sampler_stats ss;
    mw_sampler_stats(a->sampler, &ss);
    const char *names[MW_SAMPLE_REASON_COUNT];
    for (int i = 0; i < MW_SAMPLE_REASON_COUNT; i++)
        names[i] = mw_sample_reason_name((enum mw_sample_reason)i);
    emit_labelled(w, "modelwatch_agent_sampling_decisions_total",
                  "Payload sampling decisions for events, by outcome", "decision", names, ss.events,
                  MW_SAMPLE_REASON_COUNT);
    emit(w, "modelwatch_agent_records_shipped_total", "Event and feedback payloads batched",
         MW_PROM_COUNTER, (double)a->stats.records_kept);
    emit(w, "modelwatch_agent_events_payload_omitted_total",
         "Events a client sent without their payload, by the sampling rules it read",
         MW_PROM_COUNTER, (double)a->stats.events_payload_omitted);
    emit(w, "modelwatch_agent_events_counted_by_client_total",
         "Events a client counted itself and sent as counts (the rate left their payload out)",
         MW_PROM_COUNTER, (double)a->stats.events_counted_by_client);
    emit(w, "modelwatch_agent_client_counts_messages_total",
         "Counts messages from clients (one per model, version and bucket per client batch)",
         MW_PROM_COUNTER, (double)a->stats.counts_messages);
    emit(w, "modelwatch_agent_sampled_without_payload_total",
         "Events the sampler kept whose client had left the payload out (the rules changed after "
         "the client read them)",
         MW_PROM_COUNTER, (double)a->stats.kept_without_payload);
}

static void collect_shipping(struct mw_prom_writer *w, const struct mw_agent *a)
{
    struct mw_shipper_stats st;
    mw_shipper_stats(a->shipper, &st);
    emit(w, "modelwatch_agent_batches_sealed_total", "Batches sealed", MW_PROM_COUNTER,
         (double)a->stats.batches_sealed);
    emit(w, "modelwatch_agent_batches_delivered_total", "Batches acknowledged by Kafka",
         MW_PROM_COUNTER, (double)st.delivered);
    emit(w, "modelwatch_agent_kafka_delivery_errors_total", "Failed deliveries, retried",
         MW_PROM_COUNTER, (double)st.delivery_errors);
    emit(w, "modelwatch_agent_kafka_in_flight_batches", "Batches awaiting acknowledgement",
         MW_PROM_GAUGE, (double)st.in_flight);
    emit(w, "modelwatch_agent_kafka_up",
         "1 while a Kafka broker is reachable and the last delivery succeeded", MW_PROM_GAUGE,
         st.kafka_healthy ? 1 : 0);
    emit(w, "modelwatch_agent_kafka_errors_total",
         "Kafka client errors reported by librdkafka (brokers down, timeouts, ...)",
         MW_PROM_COUNTER, (double)st.kafka_errors);
    emit(w, "modelwatch_agent_spool_bytes", "Bytes in the spool", MW_PROM_GAUGE,
         (double)st.spool_bytes);
    emit(w, "modelwatch_agent_spool_max_bytes", "Bound of the spool", MW_PROM_GAUGE,
         (double)st.spool_max_bytes);
    emit(w, "modelwatch_agent_spool_batches", "Unacknowledged batches in the spool", MW_PROM_GAUGE,
         (double)st.spool_batches);
    int64_t oldest_age_ms = st.spool_oldest_ms ? mw_clock_wall_ms() - st.spool_oldest_ms : 0;
    emit(w, "modelwatch_agent_spool_oldest_age_seconds",
         "Age of the oldest unacknowledged batch in the spool, at most (0 when none): how far "
         "behind Kafka delivery is",
         MW_PROM_GAUGE, oldest_age_ms > 0 ? (double)oldest_age_ms / 1000.0 : 0);
    emit(w, "modelwatch_agent_batches_spooled_total", "Batches written to the spool",
         MW_PROM_COUNTER, (double)st.spool_appended);
    emit(w, "modelwatch_agent_batches_replayed_total", "Batches handed from the spool to Kafka",
         MW_PROM_COUNTER, (double)st.spool_replayed);
    emit(w, "modelwatch_agent_spool_write_errors_total",
         "Sealed batches the spool could not write (disk full, I/O error)", MW_PROM_COUNTER,
         (double)st.spool_write_errors);
    emit(w, "modelwatch_agent_unspooled_batches",
         "Sealed batches held in memory only (the spool could not take them); lost on kill -9",
         MW_PROM_GAUGE, (double)st.unspooled_in_flight);
    static const char *const reasons[] = {"spool_full", "spool_corrupt", "unspooled_failed",
                                          "too_large"};
    const uint64_t lost[] = {st.spool_full_batches, st.spool_corrupt, st.lost_unspooled,
                             st.rejected_batches};
    emit_labelled(w, "modelwatch_agent_batches_dropped_total", "Sealed batches lost, by reason",
                  "reason", reasons, lost, 4);
    static const char *const event_reasons[] = {"spool_full", "too_large", "unspooled_failed",
                                                "spool_unwritable"};
    const uint64_t events_lost[] = {st.spool_full_events, st.rejected_events,
                                    st.lost_unspooled_events, st.unspooled_full_events};
    emit_labelled(w, "modelwatch_agent_events_lost_total",
                  "Prediction events in sealed batches that were lost, by reason", "reason",
                  event_reasons, events_lost, 4);
}

static void collect_metrics(struct mw_prom_writer *w, void *arg)
{
    const struct mw_agent *a = arg;
    collect_intake(w, a);
    collect_sampling(w, a);
    collect_shipping(w, a);
}

static bool is_ready(void *arg)
{
    struct mw_agent *a = arg;
    return !a->shutdown_started && mw_shipper_ready(a->shipper);
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

/* Build a sampler and a redactor from `cfg`'s rules; on success they replace the current ones. */
static int load_rules(struct mw_agent *a, const struct mw_agent_config *cfg)
{
    char err[512];
    struct mw_sampler *sampler = NULL;
    struct mw_redactor *redactor = NULL;
    const struct mw_model_rule *rules = cfg->models.items;
    int rc = mw_sampler_create(rules, cfg->models.n, a->sampler, &sampler, err, sizeof err);
    if (!rc)
        rc = mw_redact_create(rules, cfg->models.n, cfg->redaction_key_file, &redactor, err,
                              sizeof err);
    if (rc) {
        char quoted[600];
        MW_LOG_ERROR("agent", "invalid sampling or redaction rules", "error=%s",
                     mw_log_quote(err, quoted, sizeof quoted));
        mw_sampler_destroy(sampler);
        return rc;
    }
    mw_sampler_destroy(a->sampler);
    mw_redact_destroy(a->redactor);
    a->sampler = sampler;
    a->redactor = redactor;
    return 0;
}

/* Tell clients the rules of `cfg` so that they leave out the payloads the rate leaves out
 * (common/sampling_rules.h). A file that cannot be written is logged and costs only that:
 * clients then send payloads the sampler throws away. */
static void publish_sampling(struct mw_agent *a, const struct mw_agent_config *cfg)
{
    struct mw_sampling_rule *rules = mw_calloc(cfg->models.n ? cfg->models.n : 1, sizeof *rules);
    if (!rules)
        return;
    for (size_t i = 0; i < cfg->models.n; i++) {
        const struct mw_model_rule *m = (const struct mw_model_rule *)cfg->models.items + i;
        rules[i] = (struct mw_sampling_rule){.name = m->name,
                                             .rate = m->sample_rate,
                                             .keep_errors = m->keep_errors,
                                             .slower_than_us =
                                                 (uint64_t)m->keep_slower_than_ms * 1000u};
    }
    /* The counters' width and the intake are those the agent started with: a reload changes
     * the rules only. */
    const struct mw_agent_config *running = a->cfg;
    mw_intake_publish_sampling(a->intake, rules, cfg->models.n,
                               running->intake.count_at_source
                                   ? running->counters.bucket_width_ms
                                   : 0);
    mw_free(rules);
}

static int open_state(struct mw_agent *a)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/agent.state", a->cfg->spool.dir);
    uint64_t lost = 0;
    if (mw_state_file_open(&a->state, path, &lost) == 0 && lost) {
        a->stats.events_lost_before_start = lost;
        MW_LOG_WARN("agent", "the previous process died with events not yet sealed",
                    "events_lost=%" PRIu64, lost);
    }
    return 0;
}

static int create_parts(struct mw_agent *a)
{
    const struct mw_agent_config *cfg = a->cfg;
    a->counters =
        mw_counters_create((size_t)cfg->counters.max_series, cfg->counters.bucket_width_ms);
    a->zctx = mw_zframe_ctx_create((int)cfg->batch.compression_level);
    a->metrics = mw_prom_registry_create();
    a->resources = mw_resources_create(
        cfg->resources.cgroup_dir && *cfg->resources.cgroup_dir ? cfg->resources.cgroup_dir : NULL);
    mw_buf_init(&a->repacked, 2u * 1024 * 1024);
    if (!a->counters || !a->zctx || !a->metrics || !a->resources ||
        mw_arena_init(&a->arena, ARENA_BYTES) ||
        mw_batch_builder_init(&a->builder, (size_t)cfg->batch.max_records,
                              (size_t)cfg->batch.max_bytes))
        return MW_ENOMEM;
    mw_prom_add_collector(a->metrics, collect_metrics, a);
    int rc = mw_process_metrics_register(a->metrics, "modelwatch-agent");
    if (!rc)
        rc = load_rules(a, cfg);
    if (!rc)
        rc = mw_shipper_create(a->loop, cfg, a->agent_id, &a->shipper);
    if (!rc)
        rc = open_state(a);
    if (!rc)
        rc = mw_intake_create(a->loop, cfg->intake.endpoint, (size_t)cfg->intake.max_message_bytes,
                              mw_agent_config_socket_mode(cfg), on_message, a, &a->intake);
    if (!rc) {
        mw_intake_set_stream_fns(a->intake, on_stream, on_dropped_by_intake);
        publish_sampling(a, cfg);
    }
    return rc ? rc : start_http(a);
}

int mw_agent_create(uv_loop_t *loop, const struct mw_agent_config *cfg, struct mw_agent **out)
{
    char err[1024];
    if (mw_agent_config_validate(cfg, "config", err, sizeof err) != 0) {
        char quoted[2100];
        MW_LOG_ERROR("agent", "invalid configuration", "error=%s",
                     mw_log_quote(err, quoted, sizeof quoted));
        return MW_ECONFIG;
    }
    struct mw_agent *a = mw_calloc(1, sizeof *a);
    if (!a)
        return MW_ENOMEM;
    a->loop = loop;
    a->cfg = cfg;
    a->next_sequence = 1;
    a->state.fd = -1;
    a->stream_slot = -1;
    init_identity(a);
    uv_timer_init(loop, &a->seal_timer);
    uv_timer_init(loop, &a->drain_timer);
    a->seal_timer.data = a->drain_timer.data = a;
    int rc = create_parts(a);
    if (rc) {
        mw_agent_shutdown(a);
        uv_run(loop, UV_RUN_DEFAULT);
        mw_agent_destroy(a);
        return rc;
    }
    uint64_t tick_ms = (uint64_t)cfg->batch.max_age_ms / 4 + 1;
    uv_timer_start(&a->seal_timer, on_seal_timer, tick_ms, tick_ms);
    MW_LOG_INFO("agent", "started", "agent_id=%s boot_id=%s topic=%s http_port=%d", a->agent_id,
                a->boot_id, cfg->kafka.topic, mw_http_server_port(a->http));
    *out = a;
    return 0;
}

int mw_agent_reload(struct mw_agent *a, const struct mw_agent_config *fresh)
{
    enum mw_log_level level;
    if (fresh->log_level && mw_log_level_parse(fresh->log_level, &level) == 0)
        mw_log_set_level(level);
    int rc = load_rules(a, fresh);
    if (!rc) {
        publish_sampling(a, fresh);
        MW_LOG_INFO("agent", "rules reloaded", "models=%zu", fresh->models.n);
    }
    return rc;
}

static void close_everything(struct mw_agent *a)
{
    if (a->intake)
        a->intake_final = *mw_intake_stats(a->intake);
    mw_intake_destroy(a->intake);
    a->intake = NULL;
    uv_close((uv_handle_t *)&a->seal_timer, NULL);
    uv_close((uv_handle_t *)&a->drain_timer, NULL);
    mw_http_server_destroy(a->http);
    a->http = NULL;
    if (a->shipper) {
        struct mw_shipper_stats st;
        mw_shipper_stats(a->shipper, &st);
        if (st.spool_batches)
            MW_LOG_INFO("agent", "batches left in the spool for the next start",
                        "batches=%" PRIu64 " bytes=%" PRIu64, st.spool_batches, st.spool_bytes);
        mw_shipper_destroy(a->shipper);
        a->shipper = NULL;
    }
}

/* While draining: stop once everything is acknowledged or the grace period is over. */
static void on_drain_timer(uv_timer_t *t)
{
    struct mw_agent *a = t->data;
    bool idle = mw_shipper_idle(a->shipper);
    if (!idle && mw_clock_mono_ms() < a->drain_deadline_ms)
        return;
    uv_timer_stop(t);
    if (idle)
        MW_LOG_INFO("agent", "drained: every batch acknowledged by Kafka",
                    "batches_sealed=%" PRIu64, a->stats.batches_sealed);
    close_everything(a);
}

/* Second step of a stop: take what clients already sent, close the socket, seal, and keep
 * delivering until everything is acknowledged or the grace period is over. */
static void seal_and_deliver(struct mw_agent *a)
{
    uv_timer_stop(&a->drain_timer);
    a->intake_deadline_ms = 0;
    if (a->intake) {
        const struct mw_intake_stats *in = mw_intake_stats(a->intake);
        uint64_t before = in->received;
        mw_intake_stop(a->intake); /* takes what clients already sent */
        MW_LOG_INFO("agent", "intake closed",
                    "messages_received=%" PRIu64 " received_while_stopping=%" PRIu64, in->received,
                    in->received - before);
        a->intake_final = *in;
        mw_intake_destroy(a->intake);
        a->intake = NULL;
        seal(a);
    }
    if (!a->shipper) {
        close_everything(a);
        return;
    }
    uv_timer_start(&a->drain_timer, on_drain_timer, 0, DRAIN_CHECK_MS);
}

/* First step of a stop: the socket file is gone; read until clients are quiet. */
static void on_intake_drain_timer(uv_timer_t *t)
{
    struct mw_agent *a = t->data;
    if (mw_intake_idle_ms(a->intake) >= INTAKE_QUIET_MS ||
        mw_clock_mono_ms() >= a->intake_deadline_ms)
        seal_and_deliver(a);
}

void mw_agent_shutdown(struct mw_agent *a)
{
    if (!a || a->shutdown_started)
        return;
    a->shutdown_started = 1;
    uv_timer_stop(&a->seal_timer);
    uint64_t now_ms = mw_clock_mono_ms();
    a->drain_deadline_ms = now_ms + (uint64_t)a->cfg->shutdown_grace_ms;
    if (!a->intake || !a->shipper) {
        seal_and_deliver(a);
        return;
    }
    /* Clients may have events on their way: stop new connections, let libmodelwatch clients
     * see the socket file gone and hold the rest for the next agent, and read what comes. */
    mw_intake_unlink(a->intake);
    uint64_t max_ms = (uint64_t)a->cfg->shutdown_grace_ms / 2;
    a->intake_deadline_ms = now_ms + (max_ms < INTAKE_DRAIN_MAX_MS ? max_ms : INTAKE_DRAIN_MAX_MS);
    uv_timer_start(&a->drain_timer, on_intake_drain_timer, 0, DRAIN_CHECK_MS / 2);
}

int mw_agent_destroy(struct mw_agent *a)
{
    if (!a)
        return 0;
    int rc = a->lost_at_exit ? MW_EIO : 0;
    mw_state_file_close(&a->state);
    mw_counters_destroy(a->counters);
    mw_sampler_destroy(a->sampler);
    mw_redact_destroy(a->redactor);
    mw_resources_destroy(a->resources);
    mw_zframe_ctx_destroy(a->zctx);
    mw_prom_registry_destroy(a->metrics);
    mw_arena_free(&a->arena);
    mw_buf_free(&a->repacked);
    mw_batch_builder_free(&a->builder);
    mw_free(a);
    return rc;
}

const struct mw_agent_stats *mw_agent_stats(const struct mw_agent *a)
{
    return &a->stats;
}
