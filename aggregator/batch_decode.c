/* batch_decode.c — decompress, decode and validate one Kafka record. */
#include "batch_decode.h"

#include "clock.h"
#include "error.h"
#include "latency_hist.h"
#include "names.h"
#include "pb_read.h"

#include <math.h>
#include <string.h>

#define SCHEMA_VERSION 1

const char *mw_dlq_reason_name(enum mw_dlq_reason reason)
{
    switch (reason) {
#define XX(name, text)                                                                             \
    case MW_DLQ_##name:                                                                            \
        return text;
        MW_DLQ_REASON_MAP(XX)
#undef XX
    default:
        return "none";
    }
}

static int nonempty(const char *s)
{
    return s && *s;
}

static enum mw_dlq_reason check_batch(const Modelwatch__V1__Batch *b)
{
    if (!b->has_schema_version || b->schema_version != SCHEMA_VERSION)
        return MW_DLQ_SCHEMA;
    if (!b->identity || !nonempty(b->identity->agent_id) || !nonempty(b->identity->boot_id) ||
        !b->has_sequence || b->sequence == 0 || b->sequence > UINT32_MAX)
        return MW_DLQ_IDENTITY;
    return MW_DLQ_NONE;
}

int mw_batch_decode_with(struct mw_zframe_ctx *zctx, const void *payload, size_t len,
                         const char *schema_header, size_t max_bytes, struct mw_buf *scratch,
                         ProtobufCAllocator *allocator, Modelwatch__V1__Batch **out,
                         enum mw_dlq_reason *why)
{
    *out = NULL;
    *why = MW_DLQ_NONE;
    if (schema_header && strcmp(schema_header, "1") != 0) {
        *why = MW_DLQ_SCHEMA;
        return MW_EPARSE;
    }
    mw_buf_reset(scratch);
    int rc = mw_zframe_decompress(zctx, payload, len, max_bytes, scratch);
    if (rc) {
        *why = rc == MW_ETOOBIG ? MW_DLQ_TOO_BIG : MW_DLQ_DECOMPRESS;
        return MW_EPARSE;
    }
    /* mw_pb_read fills what protobuf-c would, several times faster; what it leaves to
     * protobuf-c (a schema it does not take) is unpacked as before. */
    ProtobufCMessage *m = NULL;
    rc = mw_pb_read(&modelwatch__v1__batch__descriptor, allocator, scratch->data, scratch->len, &m);
    if (rc == MW_PB_READ_NOT_MINE)
        m = (ProtobufCMessage *)modelwatch__v1__batch__unpack(allocator, scratch->len,
                                                              (const uint8_t *)scratch->data);
    Modelwatch__V1__Batch *b = (Modelwatch__V1__Batch *)m;
    if (!b) {
        *why = MW_DLQ_DECODE;
        return MW_EPARSE;
    }
    *why = check_batch(b);
    if (*why) {
        modelwatch__v1__batch__free_unpacked(b, allocator);
        return MW_EPARSE;
    }
    *out = b;
    return 0;
}

int mw_batch_decode(struct mw_zframe_ctx *zctx, const void *payload, size_t len,
                    const char *schema_header, size_t max_bytes, struct mw_buf *scratch,
                    Modelwatch__V1__Batch **out, enum mw_dlq_reason *why)
{
    return mw_batch_decode_with(zctx, payload, len, schema_header, max_bytes, scratch, NULL, out,
                                why);
}

/* ---- bounds ---------------------------------------------------------------------------------- */

const char *mw_batch_field_name(enum mw_batch_field field)
{
    switch (field) {
#define XX(name, text)                                                                             \
    case MW_BATCH_FIELD_##name:                                                                    \
        return text;
        MW_BATCH_FIELD_MAP(XX)
#undef XX
    default:
        return "none";
    }
}

static bool real_ok(double x)
{
    return isfinite(x) && fabs(x) <= MW_BOUND_MAX_ABS_VALUE;
}

/* A time ahead of the clock by more than the skew becomes the clock (counted); a negative one
 * is refused (false). */
static bool bound_time(int64_t *t_ms, const struct mw_batch_bounds *bd, enum mw_batch_field f,
                       struct mw_batch_tally *tally)
{
    if (*t_ms < 0) {
        tally->invalid[f]++;
        return false;
    }
    if (*t_ms - bd->max_skew_ms > bd->now_ms) {
        *t_ms = bd->now_ms;
        tally->clamped[f]++;
    }
    return true;
}

/* The latency histogram of `mc`: dropped when inconsistent, its sum replaced by the estimate
 * of its buckets when the buckets cannot hold it (a wrapped or corrupted sum). */
static void bound_latency(Modelwatch__V1__ModelCounters *mc, ProtobufCAllocator *allocator,
                          struct mw_batch_tally *tally)
{
    Modelwatch__V1__LatencyHistogram *h = mc->latency;
    if (!h)
        return;
    bool ok = h->n_bucket_index == h->n_bucket_count;
    uint64_t n = 0;
    double lo = 0, hi = 0, estimate = 0;
    for (size_t i = 0; ok && i < h->n_bucket_index; i++) {
        uint32_t k = h->bucket_index[i];
        uint64_t c = h->bucket_count[i];
        if (k >= MW_LATENCY_BUCKETS || c > mc->count || n + c > mc->count) {
            ok = false;
            break;
        }
        n += c;
        double upper = k == 0 ? 1.0 : mw_latency_bucket_value(k) * 1.03;
        double lower = k <= 1 ? 0.0 : mw_latency_bucket_value(k - 1) * 0.97;
        /* The last bucket also holds everything larger: its estimate is its value. */
        if (k == MW_LATENCY_BUCKETS - 1)
            upper = mw_latency_bucket_value(k) * 1.03;
        lo += (double)c * lower;
        hi += (double)c * upper;
        estimate += (double)c * mw_latency_bucket_value(k);
    }
    if (!ok) {
        modelwatch__v1__latency_histogram__free_unpacked(h, allocator);
        mc->latency = NULL;
        tally->invalid[MW_BATCH_FIELD_COUNTERS_LATENCY]++;
        return;
    }
    double sum = (double)h->sum_us;
    if (sum < lo - 1 || sum > hi + 1) {
        h->sum_us = (uint64_t)llround(estimate);
        h->has_sum_us = 1;
        tally->invalid[MW_BATCH_FIELD_COUNTERS_LATENCY_SUM]++;
    }
}

/* One counters entry: false when it must be dropped (counted). */
static bool bound_counters(Modelwatch__V1__ModelCounters *mc, const struct mw_batch_bounds *bd,
                           struct mw_batch_tally *tally)
{
    if (mc->count > MW_BOUND_MAX_COUNT) {
        tally->invalid[MW_BATCH_FIELD_COUNTERS_COUNT]++;
        return false;
    }
    if (!mw_model_name_valid(mc->model) || !mw_version_valid(mc->version)) {
        tally->invalid[MW_BATCH_FIELD_COUNTERS_MODEL]++;
        tally->invalid_predictions += mc->count;
        return false;
    }
    bool bucket_ok = mc->has_bucket_width_ms && mc->bucket_width_ms > 0 &&
                     mc->has_bucket_start_ms && mc->bucket_start_ms >= 0 &&
                     mc->bucket_start_ms % mc->bucket_width_ms == 0;
    for (size_t i = 0; bucket_ok && i < bd->n_windows; i++)
        bucket_ok = bd->windows_ms[i] % mc->bucket_width_ms == 0;
    if (!bucket_ok) {
        tally->invalid[MW_BATCH_FIELD_COUNTERS_BUCKET]++;
        tally->invalid_predictions += mc->count;
        return false;
    }
    if (mc->bucket_start_ms - bd->max_skew_ms > bd->now_ms) {
        mc->bucket_start_ms = mw_clock_window_start(bd->now_ms, mc->bucket_width_ms);
        tally->clamped[MW_BATCH_FIELD_COUNTERS_BUCKET_START]++;
    }
    uint64_t errors = 0;
    bool errors_ok = mc->error_count <= mc->count;
    for (size_t i = 0; errors_ok && i < mc->n_errors; i++) {
        const Modelwatch__V1__ErrorCount *e = mc->errors[i];
        errors_ok = e->code && *e->code && e->count <= mc->count - errors;
        errors += errors_ok ? e->count : 0;
    }
    if (!errors_ok) {
        for (size_t i = 0; i < mc->n_errors; i++)
            modelwatch__v1__error_count__free_unpacked(mc->errors[i], bd->allocator);
        mc->n_errors = 0;
        mc->error_count = 0;
        tally->invalid[MW_BATCH_FIELD_COUNTERS_ERRORS]++;
    }
    bound_latency(mc, bd->allocator, tally);
    uint64_t max_tokens = mc->count * MW_BOUND_MAX_TOKENS_PER_PREDICTION;
    if (mc->input_tokens > max_tokens) {
        mc->input_tokens = 0;
        tally->invalid[MW_BATCH_FIELD_COUNTERS_INPUT_TOKENS]++;
    }
    if (mc->output_tokens > max_tokens) {
        mc->output_tokens = 0;
        tally->invalid[MW_BATCH_FIELD_COUNTERS_OUTPUT_TOKENS]++;
    }
    if (mc->feedback_count > MW_BOUND_MAX_COUNT) {
        mc->feedback_count = 0;
        tally->invalid[MW_BATCH_FIELD_COUNTERS_FEEDBACK]++;
    }
    return true;
}

static bool resources_ok(const Modelwatch__V1__ResourceUsage *u)
{
    int64_t span = u->interval_end_ms - u->interval_start_ms;
    bool cpu = isfinite(u->cpu_seconds) && u->cpu_seconds >= 0 &&
               u->cpu_seconds <= MW_BOUND_MAX_CPU_SECONDS;
    bool gpu = isfinite(u->gpu_seconds) && u->gpu_seconds >= 0 &&
               u->gpu_seconds <= MW_BOUND_MAX_CPU_SECONDS;
    bool req =
        !u->has_requested_cores || (isfinite(u->requested_cores) && u->requested_cores >= 0 &&
                                    u->requested_cores <= MW_BOUND_MAX_CPU_SECONDS);
    return u->interval_start_ms >= 0 && span >= 0 && span <= MW_BOUND_MAX_INTERVAL_MS && cpu &&
           gpu && req && u->memory_bytes <= MW_BOUND_MAX_MEMORY_BYTES &&
           u->requested_memory_bytes <= MW_BOUND_MAX_MEMORY_BYTES;
}

static bool bound_event(Modelwatch__V1__Record *rec, const struct mw_batch_bounds *bd,
                        struct mw_batch_tally *tally)
{
    Modelwatch__V1__PredictionEvent *ev = rec->event;
    if (!mw_model_name_valid(ev->model) || !mw_version_valid(ev->version)) {
        tally->invalid[MW_BATCH_FIELD_EVENT_MODEL]++;
        return false;
    }
    if (!bound_time(&ev->event_time_ms, bd, MW_BATCH_FIELD_EVENT_TIME, tally))
        return false;
    if (rec->has_weight &&
        !(isfinite(rec->weight) && rec->weight > 0 && rec->weight <= MW_BOUND_MAX_WEIGHT)) {
        rec->has_weight = 0;
        tally->invalid[MW_BATCH_FIELD_RECORD_WEIGHT]++;
    }
    for (size_t i = 0; i < ev->n_features; i++) {
        Modelwatch__V1__Feature *f = ev->features[i];
        if (f->value_case == MODELWATCH__V1__FEATURE__VALUE_NUMERIC && isfinite(f->numeric) &&
            fabs(f->numeric) > MW_BOUND_MAX_ABS_VALUE) {
            f->value_case = MODELWATCH__V1__FEATURE__VALUE__NOT_SET;
            f->has_missing = f->missing = 1;
            tally->invalid[MW_BATCH_FIELD_EVENT_FEATURE]++;
        }
    }
    Modelwatch__V1__Output *o = ev->output;
    if (o && o->has_score && !real_ok(o->score)) {
        o->has_score = 0;
        tally->invalid[MW_BATCH_FIELD_EVENT_SCORE]++;
    }
    if (o && o->has_value && !real_ok(o->value)) {
        o->has_value = 0;
        tally->invalid[MW_BATCH_FIELD_EVENT_VALUE]++;
    }
    return true;
}

static bool bound_label(Modelwatch__V1__Feedback *fb, const struct mw_batch_bounds *bd,
                        struct mw_batch_tally *tally)
{
    if (!mw_model_name_valid(fb->model) || !fb->prediction_id || !*fb->prediction_id ||
        fb->label_case == MODELWATCH__V1__FEEDBACK__LABEL__NOT_SET) {
        tally->invalid[MW_BATCH_FIELD_LABEL]++;
        return false;
    }
    if (!bound_time(&fb->event_time_ms, bd, MW_BATCH_FIELD_LABEL_TIME, tally))
        return false;
    if (fb->label_case == MODELWATCH__V1__FEEDBACK__LABEL_LABEL_VALUE &&
        !real_ok(fb->label_value)) {
        tally->invalid[MW_BATCH_FIELD_LABEL_VALUE]++;
        return false;
    }
    return true;
}

void mw_batch_bound(Modelwatch__V1__Batch *b, const struct mw_batch_bounds *bd,
                    struct mw_batch_tally *tally)
{
    Modelwatch__V1__MetricsSnapshot *snap = b->snapshot;
    if (snap) {
        size_t kept = 0;
        for (size_t i = 0; i < snap->n_models; i++) {
            if (bound_counters(snap->models[i], bd, tally))
                snap->models[kept++] = snap->models[i];
            else
                modelwatch__v1__model_counters__free_unpacked(snap->models[i], bd->allocator);
        }
        snap->n_models = kept;
        if (snap->resources && !resources_ok(snap->resources)) {
            modelwatch__v1__resource_usage__free_unpacked(snap->resources, bd->allocator);
            snap->resources = NULL;
            tally->invalid[MW_BATCH_FIELD_RESOURCES]++;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < b->n_records; i++) {
        Modelwatch__V1__Record *rec = b->records[i];
        bool keep = true;
        if (rec->body_case == MODELWATCH__V1__RECORD__BODY_EVENT)
            keep = bound_event(rec, bd, tally);
        else if (rec->body_case == MODELWATCH__V1__RECORD__BODY_FEEDBACK)
            keep = bound_label(rec->feedback, bd, tally);
        if (keep)
            b->records[kept++] = rec;
        else
            modelwatch__v1__record__free_unpacked(rec, bd->allocator);
    }
    b->n_records = kept;
}
