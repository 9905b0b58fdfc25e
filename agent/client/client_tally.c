/* client_tally.c — counters of the events a client does not send (client_tally.h). */
#include "client_tally.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "counters_pb.h"
#include "error.h"
#include "latency_hist.h"
#include "names.h"
#include "sampling_rules.h"
#include "telemetry.pb-c.h"
#include "varint.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Error codes per series. The client does not fold codes past a cap as the agent does
 * (agent/counters.c): the agent folds the codes it is sent in the order they first came, which
 * is the order of their first events, so its counts by code are those it would have kept event
 * by event. An event whose code finds no slot goes as its head. A code too long for the agent
 * to keep is "other" here as there. */
#define MAX_ERROR_CODES MW_SAMPLING_COUNT_MAX_ERROR_CODES
#define OTHER_ERROR_CODE "other"
/* ClientBatch.messages (field 15) and ClientMessage.counts (field 4), both length-delimited. */
#define CLIENT_BATCH_TAG 0x7a

struct count_series {
    char model[MW_MODEL_NAME_MAX + 1];
    char version[MW_VERSION_MAX + 1];
    int64_t bucket_start_ms;
    int64_t bucket_width_ms;
    uint64_t count;
    uint64_t error_count;
    uint64_t input_tokens;
    uint64_t output_tokens;
    uint64_t latency_sum_us;
    uint32_t latency_lo, latency_hi; /* the latency buckets in use: [lo, hi] */
    size_t n_errors;
    struct mw_error_slot errors[MAX_ERROR_CODES];
    uint64_t latency[MW_LATENCY_BUCKETS];
};

/* The protobuf view of one series, as the sender packs it. */
struct pb_counts {
    Modelwatch__V1__ClientMessage msg;
    struct mw_counters_pb counters;
};

struct mw_client_tally {
    pthread_mutex_t lock;
    size_t n_series;
    atomic_uint_fast64_t pending; /* events in the series */
    struct pb_counts packing; /* used under the lock by mw_client_tally_take */
    struct count_series series[MW_CLIENT_TALLY_MAX_SERIES];
};

struct mw_client_tally *mw_client_tally_create(void)
{
    /* About 250 KiB, most of it latency buckets no event touches: pages never written stay
     * out of the process's memory. */
    struct mw_client_tally *t = mw_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void mw_client_tally_destroy(struct mw_client_tally *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    mw_free(t);
}

uint64_t mw_client_tally_pending(const struct mw_client_tally *t)
{
    return atomic_load((atomic_uint_fast64_t *)&t->pending);
}

/* The series of (model, version, bucket), opened when missing; NULL with *rc set when not. */
static struct count_series *find_series(struct mw_client_tally *t, const char *model,
                                        const char *version, int64_t bucket_start_ms,
                                        int64_t bucket_ms, int *rc)
{
    for (size_t i = 0; i < t->n_series; i++) {
        struct count_series *s = &t->series[i];
        if (s->bucket_start_ms == bucket_start_ms && s->bucket_width_ms == bucket_ms &&
            strcmp(s->model, model) == 0 && strcmp(s->version, version) == 0)
            return s;
    }
    if (!mw_model_name_valid(model) || !mw_version_valid(version)) {
        *rc = MW_EINVAL;
        return NULL;
    }
    if (t->n_series == MW_CLIENT_TALLY_MAX_SERIES) {
        *rc = MW_EFULL;
        return NULL;
    }
    struct count_series *s = &t->series[t->n_series++];
    snprintf(s->model, sizeof s->model, "%s", model);
    snprintf(s->version, sizeof s->version, "%s", version);
    s->bucket_start_ms = bucket_start_ms;
    s->bucket_width_ms = bucket_ms;
    s->latency_lo = MW_LATENCY_BUCKETS;
    s->latency_hi = 0;
    return s;
}

/* The slot of `code` in `s`, opened when missing; NULL when the series has no slot left. */
static struct mw_error_slot *error_slot(struct count_series *s, const char *code)
{
    if (!code || !*code)
        code = "unknown";
    if (strlen(code) >= MW_ERROR_CODE_BYTES)
        code = OTHER_ERROR_CODE;
    for (size_t i = 0; i < s->n_errors; i++)
        if (strcmp(s->errors[i].code, code) == 0)
            return &s->errors[i];
    if (s->n_errors == MAX_ERROR_CODES)
        return NULL;
    struct mw_error_slot *e = &s->errors[s->n_errors++];
    snprintf(e->code, MW_ERROR_CODE_BYTES, "%s", code);
    e->count = 0;
    return e;
}

int mw_client_tally_add(struct mw_client_tally *t, const struct mw_event *ev,
                         int64_t event_time_ms, int64_t bucket_ms)
{
    const char *version = ev->version ? ev->version : "";
    int64_t bucket_start_ms = mw_clock_window_start(event_time_ms, bucket_ms);
    uint32_t bucket = mw_latency_bucket(ev->latency_us); /* outside the lock: a log() */
    int rc = 0;
    pthread_mutex_lock(&t->lock);
    struct count_series *s = find_series(t, ev->model, version, bucket_start_ms, bucket_ms, &rc);
    struct mw_error_slot *error = NULL;
    if (s && ev->status == MW_STATUS_ERROR && !(error = error_slot(s, ev->error_code))) {
        rc = MW_EFULL;
        s = NULL;
    }
    if (s) {
        s->count++;
        if (error) {
            s->error_count++;
            error->count++;
        }
        s->input_tokens += ev->input_tokens;
        s->output_tokens += ev->output_tokens;
        s->latency_sum_us += ev->latency_us;
        s->latency[bucket]++;
        if (bucket < s->latency_lo)
            s->latency_lo = bucket;
        if (bucket > s->latency_hi)
            s->latency_hi = bucket;
        atomic_fetch_add_explicit(&t->pending, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

static void fill_pb(struct pb_counts *p, const struct count_series *s)
{
    const struct mw_counter_set set = {.model = s->model,
                                       .version = s->version,
                                       .bucket_start_ms = s->bucket_start_ms,
                                       .bucket_width_ms = s->bucket_width_ms,
                                       .count = s->count,
                                       .error_count = s->error_count,
                                       .input_tokens = s->input_tokens,
                                       .output_tokens = s->output_tokens,
                                       .errors = s->errors,
                                       .n_errors = s->n_errors,
                                       .latency = s->latency,
                                       .latency_lo = s->latency_lo,
                                       .latency_hi = s->latency_hi,
                                       .latency_sum_us = s->latency_sum_us};
    mw_counters_pb_fill(&p->counters, &set);
    modelwatch__v1__client_message__init(&p->msg);
    p->msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_COUNTS;
    p->msg.counts = &p->counters.mc;
}

/* Append one series, framed, after its event count and framed length. */
static int put_series(struct pb_counts *p, struct count_series *s, struct mw_buf *out)
{
    fill_pb(p, s);
    size_t body = modelwatch__v1__client_message__get_packed_size(&p->msg);
    uint64_t framed = 1 + mw_varint_size(body) + body;
    uint64_t head[2] = {s->count, framed};
    int rc = mw_buf_reserve(out, sizeof head + framed);
    if (rc)
        return rc;
    uint8_t *at = (uint8_t *)out->data + out->len;
    memcpy(at, head, sizeof head);
    at += sizeof head;
    *at++ = CLIENT_BATCH_TAG;
    at += mw_put_varint(at, body);
    modelwatch__v1__client_message__pack(&p->msg, at);
    out->len += sizeof head + framed;
    return 0;
}

/* Forget every series; the caller holds the lock. */
static uint64_t clear_series(struct mw_client_tally *t)
{
    uint64_t events = 0;
    for (size_t i = 0; i < t->n_series; i++) {
        struct count_series *s = &t->series[i];
        events += s->count;
        if (s->latency_lo <= s->latency_hi)
            memset(&s->latency[s->latency_lo], 0,
                   (s->latency_hi - s->latency_lo + 1) * sizeof s->latency[0]);
        s->count = s->error_count = s->input_tokens = s->output_tokens = 0;
        s->latency_sum_us = 0;
        s->n_errors = 0;
    }
    t->n_series = 0;
    atomic_fetch_sub_explicit(&t->pending, events, memory_order_relaxed);
    return events;
}

uint64_t mw_client_tally_take(struct mw_client_tally *t, struct mw_buf *out)
{
    size_t had = out->len;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < t->n_series; i++) {
        if (put_series(&t->packing, &t->series[i], out) != 0) {
            out->len = had; /* nothing taken: the series stay for the next try */
            pthread_mutex_unlock(&t->lock);
            return 0;
        }
    }
    uint64_t events = clear_series(t);
    pthread_mutex_unlock(&t->lock);
    return events;
}

uint64_t mw_client_tally_discard(struct mw_client_tally *t)
{
    pthread_mutex_lock(&t->lock);
    uint64_t events = clear_series(t);
    pthread_mutex_unlock(&t->lock);
    return events;
}
