/* model_totals.c — per (model, version) counters and latency histogram, kept in the /metrics
 * registry's own series (prom.h) so they render without copying. */
#include "model_totals.h"

#include "alloc.h"
#include "error.h"
#include "latency_hist.h"
#include "log.h"
#include "names.h"

#include <string.h>

/*
 * The `le` bounds, in seconds: 1-2.5-5 steps from 1 ms to 10 s. Fixed, so that every replica and
 * every release exports the same buckets (histogram_quantile sums them across series).
 *
 * Accuracy. A batch carries the agent's log-bucketed histogram (latency_hist.h): bucket i holds
 * latencies in (g^(i-1), g^i] us, g = (1+a)/(1-a), a = 1 %, with representative value
 * r_i = 2 g^i / (g+1). Each source bucket is counted under the first bound L >= r_i. Since
 * g^i = r_i / (1-a) and g^(i-1) = r_i / (1+a), the cumulative count at `le=L` holds every
 * latency <= L / (1+a) and none > L / (1-a): it is exact except for latencies within about 1 %
 * of L. histogram_quantile then interpolates linearly inside the bucket where the quantile falls,
 * so a quantile is known to within that bucket (a factor of 2 or 2.5 here) and 1 % at its edges.
 * _sum is exact: the batches' sum of latencies in microseconds, over 10^6.
 */
const double mw_model_totals_latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,  0.5,    1,     2.5,  5,     10};
const size_t mw_model_totals_n_latency_bounds =
    sizeof mw_model_totals_latency_bounds / sizeof mw_model_totals_latency_bounds[0];

/* Label values the totals do not check elsewhere are copied as valid UTF-8 and bounded: a
 * version is at most MW_VERSION_MAX bytes, each of which may become 3 (U+FFFD). */
#define VERSION_TEXT_BYTES (3 * MW_VERSION_MAX + 1)
#define CODE_TEXT_BYTES 65 /* the agent keeps codes shorter than 64 bytes */
#define OTHER_CODE "other"
#define UNKNOWN_CODE "unknown"

struct mw_model_totals {
    size_t max_pairs;
    struct mw_prom_family *predictions; /* its series are the admitted (model, version) pairs */
    struct mw_prom_family *errors;
    struct mw_prom_family *sampled;
    struct mw_prom_family *latency;
    struct mw_prom_family *joined;
    struct mw_prom_series *dropped;
    uint16_t *n_codes; /* per pair, by its index in `predictions`: error codes with a series */
    size_t cap_codes;
};

static const char *const pair_labels[] = {"model", "version", NULL};

struct mw_model_totals *mw_model_totals_create(struct mw_prom_registry *reg,
                                               size_t max_model_versions)
{
    static const char *const error_labels[] = {"model", "version", "code", NULL};
    static const char *const model_labels[] = {"model", NULL};
    struct mw_model_totals *t = mw_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->max_pairs = max_model_versions;
    t->predictions = mw_prom_family_add(
        reg, "modelwatch_predictions_total",
        "Predictions in batches this replica applied (late ones included); sum over replicas",
        MW_PROM_COUNTER, pair_labels);
    t->errors = mw_prom_family_add(
        reg, "modelwatch_prediction_errors_total",
        "Failed predictions in batches this replica applied, by the model server's error code",
        MW_PROM_COUNTER, error_labels);
    t->latency = mw_prom_histogram_add(
        reg, "modelwatch_prediction_latency_seconds",
        "Prediction latency in batches this replica applied, from the agents' exact histograms",
        pair_labels, mw_model_totals_latency_bounds, mw_model_totals_n_latency_bounds);
    t->sampled =
        mw_prom_family_add(reg, "modelwatch_sampled_records_total",
                           "Sampled prediction records (payloads) in batches this replica applied",
                           MW_PROM_COUNTER, pair_labels);
    t->joined =
        mw_prom_family_add(reg, "modelwatch_labels_joined_total",
                           "Ground-truth labels joined with their prediction by the batches "
                           "this replica applied",
                           MW_PROM_COUNTER, model_labels);
    t->dropped = mw_prom_simple(reg, "modelwatch_series_dropped_total",
                                "Per-model updates not exported because metrics.max_model_versions "
                                "pairs (or models) have series already",
                                MW_PROM_COUNTER);
    if (!t->predictions || !t->errors || !t->latency || !t->sampled || !t->joined || !t->dropped) {
        mw_free(t);
        return NULL;
    }
    return t;
}

void mw_model_totals_destroy(struct mw_model_totals *t)
{
    if (!t)
        return;
    mw_free(t->n_codes);
    mw_free(t);
}

static int grow_codes(struct mw_model_totals *t, size_t need)
{
    if (need <= t->cap_codes)
        return 0;
    size_t cap = t->cap_codes ? t->cap_codes * 2 : 16;
    while (cap < need)
        cap *= 2;
    uint16_t *grown = mw_realloc(t->n_codes, cap * sizeof *grown);
    if (!grown)
        return MW_ENOMEM;
    memset(grown + t->cap_codes, 0, (cap - t->cap_codes) * sizeof *grown);
    t->n_codes = grown;
    t->cap_codes = cap;
    return 0;
}

/* The pair's series, created together (at 0) while the bound allows. Returns 0, MW_EFULL (past
 * the bound: counted as dropped) or MW_ENOMEM. */
struct pair_series {
    struct mw_prom_series *predictions;
    struct mw_prom_series *sampled;
    struct mw_prom_series *latency;
    size_t index;
};

static int find_pair(struct mw_model_totals *t, const char *model, const char *version,
                     struct pair_series *out)
{
    const char *values[] = {model, version, NULL};
    out->predictions = mw_prom_series_find(t->predictions, values);
    if (!out->predictions) {
        if (mw_prom_family_size(t->predictions) >= t->max_pairs) {
            mw_prom_series_add(t->dropped, 1);
            return MW_EFULL;
        }
        if (grow_codes(t, mw_prom_family_size(t->predictions) + 1))
            return MW_ENOMEM;
        out->predictions = mw_prom_series_get(t->predictions, values);
        if (!out->predictions)
            return MW_ENOMEM;
    }
    out->index = mw_prom_series_index(out->predictions);
    out->sampled = mw_prom_series_get(t->sampled, values);
    out->latency = mw_prom_series_get(t->latency, values);
    return out->sampled && out->latency ? 0 : MW_ENOMEM;
}

/* Past MW_MODEL_TOTALS_MAX_CODES - 1 codes a pair's further codes share code="other". */
static int count_error(struct mw_model_totals *t, const char *model, const char *version,
                       const struct pair_series *p, const char *code_raw, uint64_t n)
{
    char code[CODE_TEXT_BYTES];
    mw_prom_utf8_copy(code_raw && *code_raw ? code_raw : UNKNOWN_CODE, code, sizeof code);
    const char *values[] = {model, version, code, NULL};
    struct mw_prom_series *s = mw_prom_series_find(t->errors, values);
    if (!s && t->n_codes[p->index] >= MW_MODEL_TOTALS_MAX_CODES - 1) {
        values[2] = OTHER_CODE;
        s = mw_prom_series_find(t->errors, values);
    }
    if (!s) {
        s = mw_prom_series_get(t->errors, values);
        if (!s)
            return MW_ENOMEM;
        t->n_codes[p->index]++;
    }
    mw_prom_series_add(s, (double)n);
    return 0;
}

static int count_counters(struct mw_model_totals *t, const Modelwatch__V1__ModelCounters *mc)
{
    char version[VERSION_TEXT_BYTES];
    mw_prom_utf8_copy(mc->version, version, sizeof version);
    struct pair_series p;
    int rc = find_pair(t, mc->model, version, &p);
    if (rc)
        return rc == MW_EFULL ? 0 : rc;
    mw_prom_series_add(p.predictions, (double)mc->count);
    uint64_t by_code = 0;
    for (size_t i = 0; !rc && i < mc->n_errors; i++) {
        by_code += mc->errors[i]->count;
        rc = count_error(t, mc->model, version, &p, mc->errors[i]->code, mc->errors[i]->count);
    }
    /* Errors the producer counted without a code (the agent never does). */
    if (!rc && mc->error_count > by_code)
        rc = count_error(t, mc->model, version, &p, UNKNOWN_CODE, mc->error_count - by_code);
    const Modelwatch__V1__LatencyHistogram *h = mc->latency;
    for (size_t i = 0; h && i < h->n_bucket_index && i < h->n_bucket_count; i++) {
        double seconds = mw_latency_bucket_value(h->bucket_index[i]) / 1e6;
        mw_prom_histogram_count(p.latency, seconds, h->bucket_count[i]);
    }
    if (h)
        mw_prom_histogram_add_sum(p.latency, (double)h->sum_us / 1e6);
    return rc;
}

static int count_record(struct mw_model_totals *t, const Modelwatch__V1__PredictionEvent *ev)
{
    if (!mw_version_valid(ev->version))
        return 0; /* not applied either (window_apply.c) */
    char version[VERSION_TEXT_BYTES];
    mw_prom_utf8_copy(ev->version, version, sizeof version);
    struct pair_series p;
    int rc = find_pair(t, ev->model, version, &p);
    if (rc)
        return rc == MW_EFULL ? 0 : rc;
    mw_prom_series_add(p.sampled, 1);
    return 0;
}

int mw_model_totals_add_batch(struct mw_model_totals *t, const Modelwatch__V1__Batch *b,
                              const char *model)
{
    if (!t || !b || !model)
        return 0;
    int rc = 0;
    const Modelwatch__V1__MetricsSnapshot *snap = b->snapshot;
    for (size_t i = 0; !rc && snap && i < snap->n_models; i++) {
        if (snap->models[i]->model && strcmp(snap->models[i]->model, model) == 0)
            rc = count_counters(t, snap->models[i]);
    }
    for (size_t i = 0; !rc && i < b->n_records; i++) {
        const Modelwatch__V1__Record *rec = b->records[i];
        if (rec->body_case == MODELWATCH__V1__RECORD__BODY_EVENT && rec->event->model &&
            strcmp(rec->event->model, model) == 0)
            rc = count_record(t, rec->event);
    }
    if (rc)
        MW_LOG_WARN("totals", "per-model series not updated", "model=%s error=%s", model,
                    mw_strerror(rc));
    return rc;
}

void mw_model_totals_add_joined(struct mw_model_totals *t, const char *model, uint64_t n)
{
    if (!t || !mw_model_name_valid(model))
        return;
    const char *values[] = {model, NULL};
    struct mw_prom_series *s = mw_prom_series_find(t->joined, values);
    if (!s && mw_prom_family_size(t->joined) >= t->max_pairs) {
        mw_prom_series_add(t->dropped, 1);
        return;
    }
    mw_prom_series_add(s ? s : mw_prom_series_get(t->joined, values), (double)n);
}
