/* counters.c — exact per-(model, version, bucket) counters and their MetricsSnapshot. */
#include "counters.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "counters_pb.h"
#include "error.h"
#include "latency_hist.h"

#include <stdio.h>
#include <string.h>

#define MAX_ERROR_CODES 32
#define OTHER_ERROR_CODE "other"

struct series {
    char *model;
    char *version;
    int64_t bucket_start_ms;
    uint64_t count;
    uint64_t error_count;
    uint64_t input_tokens;
    uint64_t output_tokens;
    uint64_t feedback_count;
    size_t n_error_codes;
    struct mw_error_slot errors[MAX_ERROR_CODES];
    struct mw_latency_hist latency;
};

struct mw_counters {
    struct series *sets; /* live sets, unordered; few per agent */
    size_t n_sets;
    size_t cap_sets; /* sets allocated */
    size_t max_series;
    int64_t bucket_width_ms;
};

struct mw_counters *mw_counters_create(size_t max_series, int64_t bucket_width_ms)
{
    struct mw_counters *c = mw_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->max_series = max_series;
    c->bucket_width_ms = bucket_width_ms;
    return c;
}

static void clear_sets(struct mw_counters *c)
{
    for (size_t i = 0; i < c->n_sets; i++) {
        mw_free(c->sets[i].model);
        mw_free(c->sets[i].version);
    }
    mw_free(c->sets);
    c->sets = NULL;
    c->n_sets = c->cap_sets = 0;
}

/* Room for one more set. The array doubles: a set holds a whole latency histogram (about
 * 12 KiB), and growing by one set at a time copied the table once per new set, quadratic in
 * the number of sets an interval opens (16 models x 40 buckets took seconds per interval). */
static int reserve_set(struct mw_counters *c)
{
    if (c->n_sets < c->cap_sets)
        return 0;
    size_t cap = c->cap_sets ? 2 * c->cap_sets : 8;
    if (cap > c->max_series)
        cap = c->max_series;
    struct series *grown = mw_realloc(c->sets, cap * sizeof *grown);
    if (!grown)
        return MW_ENOMEM;
    c->sets = grown;
    c->cap_sets = cap;
    return 0;
}

void mw_counters_destroy(struct mw_counters *c)
{
    if (!c)
        return;
    clear_sets(c);
    mw_free(c);
}

size_t mw_counters_series(const struct mw_counters *c)
{
    return c->n_sets;
}

/* The set for (model, version, bucket), created when missing. NULL with *rc set when not. */
static struct series *find_series(struct mw_counters *c, const char *model, const char *version,
                                  int64_t event_time_ms, int *rc)
{
    int64_t bucket = mw_clock_window_start(event_time_ms, c->bucket_width_ms);
    for (size_t i = 0; i < c->n_sets; i++) {
        struct series *s = &c->sets[i];
        if (s->bucket_start_ms == bucket && strcmp(s->model, model) == 0 &&
            strcmp(s->version, version) == 0)
            return s;
    }
    if (c->n_sets >= c->max_series) {
        *rc = MW_EFULL;
        return NULL;
    }
    if ((*rc = reserve_set(c)) != 0)
        return NULL;
    struct series *s = &c->sets[c->n_sets];
    memset(s, 0, sizeof *s);
    s->model = mw_strdup(model);
    s->version = mw_strdup(version);
    if (!s->model || !s->version) {
        mw_free(s->model);
        mw_free(s->version);
        *rc = MW_ENOMEM;
        return NULL;
    }
    s->bucket_start_ms = bucket;
    c->n_sets++;
    return s;
}

static void count_error(struct series *s, const char *code, uint64_t n)
{
    if (!code || !*code)
        code = "unknown";
    for (size_t i = 0; i < s->n_error_codes; i++) {
        if (strcmp(s->errors[i].code, code) == 0) {
            s->errors[i].count += n;
            return;
        }
    }
    /* Past the cap, or for codes too long to keep, fold into one slot so counts stay exact.
     * The cap holds once "other" took the last slot too: every later new code folds. */
    if (s->n_error_codes >= MAX_ERROR_CODES - 1 || strlen(code) >= sizeof s->errors[0].code)
        code = OTHER_ERROR_CODE;
    for (size_t i = 0; i < s->n_error_codes; i++) {
        if (strcmp(s->errors[i].code, code) == 0) {
            s->errors[i].count += n;
            return;
        }
    }
    snprintf(s->errors[s->n_error_codes].code, sizeof s->errors[0].code, "%s", code);
    s->errors[s->n_error_codes++].count = n;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

int mw_counters_add_event(struct mw_counters *c, const Modelwatch__V1__PredictionEvent *ev)
{
    int rc = 0;
    struct series *s =
        find_series(c, or_empty(ev->model), or_empty(ev->version), ev->event_time_ms, &rc);
    if (!s)
        return rc;
    s->count++;
    if (ev->has_status && ev->status == MODELWATCH__V1__STATUS__STATUS_ERROR) {
        s->error_count++;
        count_error(s, ev->error_code, 1);
    }
    mw_latency_hist_add(&s->latency, ev->latency_us);
    s->input_tokens += ev->input_tokens;
    s->output_tokens += ev->output_tokens;
    return 0;
}

int mw_counters_add_counts(struct mw_counters *c, const Modelwatch__V1__ModelCounters *mc)
{
    int rc = 0;
    struct series *s =
        find_series(c, or_empty(mc->model), or_empty(mc->version), mc->bucket_start_ms, &rc);
    if (!s)
        return rc;
    s->count += mc->count;
    s->error_count += mc->error_count;
    for (size_t i = 0; i < mc->n_errors; i++)
        count_error(s, mc->errors[i]->code, mc->errors[i]->count);
    const Modelwatch__V1__LatencyHistogram *h = mc->latency;
    for (size_t i = 0; h && i < h->n_bucket_index; i++)
        s->latency.counts[h->bucket_index[i]] += h->bucket_count[i];
    s->latency.total += mc->count;
    s->latency.sum_us += h ? h->sum_us : 0;
    s->input_tokens += mc->input_tokens;
    s->output_tokens += mc->output_tokens;
    return 0;
}

int mw_counters_add_feedback(struct mw_counters *c, const Modelwatch__V1__Feedback *fb)
{
    int rc = 0;
    struct series *s =
        find_series(c, or_empty(fb->model), or_empty(fb->version), fb->event_time_ms, &rc);
    if (!s)
        return rc;
    s->feedback_count++;
    return 0;
}

/* Protobuf view of one set (counters_pb.h). */
static void fill_pb_series(struct mw_counters_pb *p, const struct series *s, int64_t width_ms)
{
    const struct mw_counter_set set = {.model = s->model,
                                       .version = s->version,
                                       .bucket_start_ms = s->bucket_start_ms,
                                       .bucket_width_ms = width_ms,
                                       .count = s->count,
                                       .error_count = s->error_count,
                                       .input_tokens = s->input_tokens,
                                       .output_tokens = s->output_tokens,
                                       .feedback_count = s->feedback_count,
                                       .errors = s->errors,
                                       .n_errors = s->n_error_codes,
                                       .latency = s->latency.counts,
                                       .latency_lo = 0,
                                       .latency_hi = MW_LATENCY_BUCKETS - 1,
                                       .latency_sum_us = s->latency.sum_us};
    mw_counters_pb_fill(p, &set);
}

int mw_counters_flush(struct mw_counters *c, const Modelwatch__V1__ResourceUsage *resources,
                      const Modelwatch__V1__AgentHealth *agent, struct mw_buf *out)
{
    int rc = MW_ENOMEM;
    struct mw_counters_pb *pbs = mw_calloc(c->n_sets ? c->n_sets : 1, sizeof *pbs);
    Modelwatch__V1__ModelCounters **ptrs = mw_calloc(c->n_sets ? c->n_sets : 1, sizeof *ptrs);
    if (!pbs || !ptrs)
        goto out;
    for (size_t i = 0; i < c->n_sets; i++) {
        fill_pb_series(&pbs[i], &c->sets[i], c->bucket_width_ms);
        ptrs[i] = &pbs[i].mc;
    }
    Modelwatch__V1__MetricsSnapshot snap = MODELWATCH__V1__METRICS_SNAPSHOT__INIT;
    snap.n_models = c->n_sets;
    snap.models = ptrs;
    snap.resources = (Modelwatch__V1__ResourceUsage *)resources;
    snap.agent = (Modelwatch__V1__AgentHealth *)agent;
    size_t size = modelwatch__v1__metrics_snapshot__get_packed_size(&snap);
    rc = mw_buf_reserve(out, size);
    if (rc)
        goto out;
    modelwatch__v1__metrics_snapshot__pack(&snap, (uint8_t *)out->data + out->len);
    out->len += size;
    out->data[out->len] = '\0';
    clear_sets(c);
out:
    mw_free(pbs);
    mw_free(ptrs);
    return rc;
}
