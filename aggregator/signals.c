/* signals.c — service, cost and drift signals from a window's merged counters. */
#include "signals.h"

#include "alloc.h"
#include "signals_drift.h"
#include "latency_hist.h"
#include "perf_metrics.h"
#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double mw_window_field(const struct mw_window_fields *w, const char *name)
{
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->names[i], name) == 0)
            return strtod(w->values[i], NULL);
    return 0;
}

static json_t *number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* The merged latency histogram of a window (caller frees). */
static struct mw_latency_hist *window_hist(const struct mw_window_fields *w)
{
    struct mw_latency_hist *hist = mw_calloc(1, sizeof *hist);
    if (!hist)
        return NULL;
    for (size_t i = 0; i < w->n; i++) {
        if (strncmp(w->names[i], "lat:", 4) != 0)
            continue;
        long idx = strtol(w->names[i] + 4, NULL, 10);
        long long count = strtoll(w->values[i], NULL, 10);
        if (idx >= 0 && idx < MW_LATENCY_BUCKETS && count > 0) {
            hist->counts[idx] += (uint64_t)count;
            hist->total += (uint64_t)count;
        }
    }
    return hist;
}

static json_t *latency_json(const struct mw_window_fields *w, const struct mw_latency_hist *hist)
{
    if (!hist)
        return json_null();
    json_t *lat = json_object();
    static const struct {
        const char *name;
        double q;
    } qs[] = {{"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}};
    for (size_t i = 0; i < 4; i++)
        json_object_set_new(lat, qs[i].name,
                            number_or_null(mw_latency_hist_quantile(hist, qs[i].q)));
    double sum = mw_window_field(w, "lat_sum_us");
    json_object_set_new(lat, "mean",
                        hist->total ? json_real(sum / (double)hist->total) : json_null());
    return lat;
}

/* Share of requests no slower than `threshold_us`: whole buckets at or below the threshold
 * (each bucket's upper bound is gamma^i), so within the histogram's 1 % on the threshold. */
static double share_within(const struct mw_latency_hist *hist, double threshold_us)
{
    if (!hist || hist->total == 0)
        return NAN;
    double gamma = (1.0 + MW_LATENCY_ALPHA) / (1.0 - MW_LATENCY_ALPHA);
    uint64_t good = 0;
    for (uint32_t i = 0; i < MW_LATENCY_BUCKETS; i++) {
        double upper = i == 0 ? 1.0 : pow(gamma, (double)i);
        if (upper > threshold_us * (1.0 + 1e-12))
            break;
        good += hist->counts[i];
    }
    return (double)good / (double)hist->total;
}

/* Availability and latency objectives: what the window achieved and whether that meets them. */
static json_t *slo_json(const struct mw_window_fields *w, const struct mw_latency_hist *hist,
                        const struct mw_aggregator_config *cfg)
{
    double count = mw_window_field(w, "count"), errors = mw_window_field(w, "errors");
    double availability = count > 0 ? 1.0 - errors / count : NAN;
    double fast = share_within(hist, (double)cfg->slo.latency_threshold_ms * 1000.0);
    json_t *o = json_object();
    json_object_set_new(o, "availability", number_or_null(availability));
    json_object_set_new(o, "availability_target", json_real(cfg->slo.availability));
    json_object_set_new(o, "availability_met",
                        isnan(availability) ? json_null()
                                            : json_boolean(availability >= cfg->slo.availability));
    json_object_set_new(o, "latency_attainment", number_or_null(fast));
    json_object_set_new(o, "latency_threshold_ms", json_integer(cfg->slo.latency_threshold_ms));
    json_object_set_new(o, "latency_target", json_real(cfg->slo.latency_target));
    json_object_set_new(o, "latency_met",
                        isnan(fast) ? json_null() : json_boolean(fast >= cfg->slo.latency_target));
    return o;
}

static json_t *errors_by_code(const struct mw_window_fields *w)
{
    json_t *errors = json_object();
    for (size_t i = 0; i < w->n; i++)
        if (strncmp(w->names[i], "err:", 4) == 0)
            json_object_set_new(errors, w->names[i] + 4,
                                json_integer(strtoll(w->values[i], NULL, 10)));
    return errors;
}

/* Cost of the window and per 1,000 predictions, from the resources and tokens it carries. */
/* Cost of the window and per 1,000 predictions: CPU and memory billed on max(requested, used)
 * per interval (when the agent knows the pod's requests), GPU, pod-hours and tokens, each at
 * its configured price; the idle share is the part of the requested CPU left unused. */
static json_t *cost_json(const struct mw_window_fields *w, double count,
                         const struct mw_aggregator_config *cfg)
{
    double cpu_s = mw_window_field(w, "d|cpu_s"), mem = mw_window_field(w, "d|mem_gib_s");
    double cpu_req = mw_window_field(w, "d|cpu_req_s");
    double cpu_billed = mw_window_field(w, "d|cpu_billed_s");
    double mem_billed = mw_window_field(w, "d|mem_billed_gib_s");
    double gpu_s = mw_window_field(w, "d|gpu_s"), pod_s = mw_window_field(w, "d|pod_s");
    double tin = mw_window_field(w, "tokens_in"), tout = mw_window_field(w, "tokens_out");
    if (cpu_billed < cpu_s)
        cpu_billed = cpu_s; /* windows written before requests were known */
    if (mem_billed < mem)
        mem_billed = mem;
    double total = cpu_billed / 3600 * cfg->cost.cpu_core_hour +
                   mem_billed / 3600 * cfg->cost.memory_gib_hour +
                   gpu_s / 3600 * cfg->cost.gpu_hour + pod_s / 3600 * cfg->cost.pod_hour +
                   tin / 1000 * cfg->cost.input_tokens_per_1k +
                   tout / 1000 * cfg->cost.output_tokens_per_1k;
    json_t *cost = json_object();
    json_object_set_new(cost, "cpu_core_seconds", json_real(cpu_s));
    json_object_set_new(cost, "cpu_core_seconds_billed", json_real(cpu_billed));
    json_object_set_new(cost, "memory_gib_seconds", json_real(mem));
    json_object_set_new(cost, "memory_gib_seconds_billed", json_real(mem_billed));
    json_object_set_new(cost, "gpu_seconds", json_real(gpu_s));
    json_object_set_new(cost, "pod_seconds", json_real(pod_s));
    json_object_set_new(cost, "idle_share",
                        cpu_req > 0 ? json_real(1.0 - cpu_s / cpu_req) : json_null());
    json_object_set_new(cost, "total", json_real(total));
    json_object_set_new(cost, "per_1k_predictions",
                        count > 0 ? json_real(total / count * 1000) : json_null());
    return cost;
}

static json_t *binary_json(const struct mw_window_fields *w)
{
    struct mw_perf_binary *acc = NULL;
    if (mw_perf_binary_create(MW_PERF_THRESHOLD_DEFAULT, MW_PERF_AUC_BINS_DEFAULT, &acc) != 0)
        return json_null();
    for (size_t i = 0; i < w->n; i++)
        if (strncmp(w->names[i], "pb:", 3) == 0)
            mw_perf_binary_add_field(acc, w->names[i], w->values[i]);
    struct mw_perf_binary_metrics m;
    mw_perf_binary_compute(acc, &m);
    mw_perf_binary_destroy(acc);
    if (m.n == 0)
        return json_null();
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)m.n));
    json_object_set_new(o, "accuracy", number_or_null(m.accuracy));
    json_object_set_new(o, "precision", number_or_null(m.precision));
    json_object_set_new(o, "recall", number_or_null(m.recall));
    json_object_set_new(o, "f1", number_or_null(m.f1));
    json_object_set_new(o, "log_loss", number_or_null(m.log_loss));
    json_object_set_new(o, "roc_auc", number_or_null(m.roc_auc));
    return o;
}

/* Precision, recall and F1 of every class seen, with its support. */
static json_t *per_class_json(const struct mw_perf_multiclass *acc)
{
    json_t *classes = json_object();
    for (uint32_t slot = 0; slot < acc->n_classes; slot++) {
        uint64_t support = 0;
        struct mw_perf_prf prf = mw_perf_multiclass_class(acc, slot, &support);
        json_object_set_new(classes, acc->names[slot],
                            json_pack("{s:o, s:o, s:o, s:I}", "precision",
                                      number_or_null(prf.precision), "recall",
                                      number_or_null(prf.recall), "f1", number_or_null(prf.f1),
                                      "support", (json_int_t)support));
    }
    return classes;
}

static json_t *multiclass_json(const struct mw_window_fields *w)
{
    struct mw_perf_multiclass *acc = mw_calloc(1, sizeof *acc);
    if (!acc)
        return json_null();
    mw_perf_multiclass_reset(acc);
    for (size_t i = 0; i < w->n; i++)
        if (strncmp(w->names[i], "pm:", 3) == 0)
            mw_perf_multiclass_add_field(acc, w->names[i], w->values[i]);
    struct mw_perf_multiclass_metrics m;
    mw_perf_multiclass_compute(acc, &m);
    if (m.n == 0) {
        mw_free(acc);
        return json_null();
    }
    json_t *per_class = per_class_json(acc);
    mw_free(acc);
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:b, s:o}", "n", (json_int_t)m.n, "accuracy",
                     number_or_null(m.accuracy), "macro_f1", number_or_null(m.macro.f1),
                     "macro_precision", number_or_null(m.macro.precision), "macro_recall",
                     number_or_null(m.macro.recall), "weighted_f1", number_or_null(m.weighted.f1),
                     "approximate", m.overflowed, "per_class", per_class);
}

static json_t *regression_json(const struct mw_window_fields *w)
{
    struct mw_perf_regression acc;
    mw_perf_regression_reset(&acc);
    for (size_t i = 0; i < w->n; i++)
        if (strncmp(w->names[i], "pr:", 3) == 0)
            mw_perf_regression_add_field(&acc, w->names[i], w->values[i]);
    struct mw_perf_regression_metrics m;
    mw_perf_regression_compute(&acc, &m);
    if (m.n == 0)
        return json_null();
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "n", (json_int_t)m.n, "mae",
                     number_or_null(m.mae), "rmse", number_or_null(m.rmse), "mape",
                     number_or_null(m.mape), "mean_error", number_or_null(m.mean_error));
}

static json_t *coverage_json(const struct mw_window_fields *w)
{
    struct mw_perf_coverage *acc = mw_calloc(1, sizeof *acc);
    if (!acc)
        return json_null();
    mw_perf_coverage_reset(acc);
    for (size_t i = 0; i < w->n; i++)
        if (strncmp(w->names[i], "pc:", 3) == 0)
            mw_perf_coverage_add_field(acc, w->names[i], w->values[i]);
    struct mw_perf_coverage_metrics m;
    mw_perf_coverage_compute(acc, &m);
    mw_free(acc);
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "labelled", (json_int_t)m.n_labelled, "coverage",
                     number_or_null(m.coverage), "mean_delay_ms", number_or_null(m.mean_delay_ms),
                     "p50_delay_ms", number_or_null(m.p50_delay_ms), "p99_delay_ms",
                     number_or_null(m.p99_delay_ms));
}

/* Model quality once labels have joined predictions: each family null when it has no pairs. */
static json_t *performance_json(const struct mw_window_fields *w)
{
    return json_pack("{s:o, s:o, s:o, s:o}", "labels", coverage_json(w), "binary", binary_json(w),
                     "multiclass", multiclass_json(w), "regression", regression_json(w));
}

json_t *mw_signals_json_text(const char *text)
{
    if (!text)
        return json_null();
    /* Each byte becomes at most the 3 bytes of U+FFFD. */
    size_t size = 3 * strlen(text) + 1;
    char small[3 * 128 + 1];
    char *clean = size <= sizeof small ? small : mw_malloc(size);
    if (!clean)
        return NULL;
    mw_prom_utf8_copy(text, clean, size);
    json_t *s = json_string(clean);
    if (clean != small)
        mw_free(clean);
    return s;
}

json_t *mw_signals_window_json(const struct mw_window_fields *w, int64_t start_ms, int64_t width_ms,
                               const char *version, bool final,
                               const struct mw_aggregator_config *cfg)
{
    json_t *o = json_object();
    double count = mw_window_field(w, "count"), errors = mw_window_field(w, "errors");
    json_object_set_new(o, "start_ms", json_integer(start_ms));
    json_object_set_new(o, "end_ms", json_integer(start_ms + width_ms));
    json_object_set_new(o, "version", mw_signals_json_text(version));
    json_object_set_new(o, "final", json_boolean(final));
    static const char *const ints[] = {"count",    "errors",       "records",
                                       "feedback", "tokens_in",    "tokens_out",
                                       "late",     "late_records", NULL};
    for (size_t i = 0; ints[i]; i++)
        json_object_set_new(o, ints[i], json_integer((json_int_t)mw_window_field(w, ints[i])));
    json_object_set_new(o, "weighted_records", json_real(mw_window_field(w, "d|wrecords")));
    json_object_set_new(o, "error_rate", count > 0 ? json_real(errors / count) : json_null());
    json_object_set_new(o, "errors_by_code", errors_by_code(w));
    struct mw_latency_hist *hist = window_hist(w);
    json_object_set_new(o, "latency_us", latency_json(w, hist));
    json_object_set_new(o, "slo", slo_json(w, hist, cfg));
    mw_free(hist);
    json_object_set_new(o, "cost", cost_json(w, count, cfg));
    json_object_set_new(o, "performance", performance_json(w));
    return o;
}

/* ---- drift ---------------------------------------------------------------------------------- */

json_t *mw_signals_drift_json(const struct mw_window_fields *w, const struct mw_profile *profile,
                              const struct mw_aggregator_config *cfg)
{
    struct mw_drift_signals ds;
    if (mw_drift_signals_compute(w, profile, cfg, &ds) != 0)
        return json_array();
    json_t *list = mw_drift_signals_json(&ds);
    mw_drift_signals_free(&ds);
    return list;
}
