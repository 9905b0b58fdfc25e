/* exporter.c — periodic snapshot of every model's latest closed window, rendered on /metrics.
 *
 * A refresh reads the windows through window_read.h, computes their signals (signals_*.h) and
 * keeps only the numbers the gauges need, typed; a scrape writes them as Prometheus text.
 * Values go out in base units: seconds (latencies arrive in microseconds, window starts in
 * milliseconds) and ratios in 0..1. A refresh is bounded before it is published: at most
 * metrics.max_model_versions (model, version) entries, in (model, version) order so every
 * replica keeps the same ones, and per entry only the drift of the features metrics.drift_features
 * allows, then the metrics.drift_top_k that drifted most. */
#include "exporter.h"

#include "alloc.h"
#include "error.h"
#include "log.h"
#include "schema.h"
#include "signals_cost.h"
#include "signals_perf.h"
#include "signals_service.h"
#include "signals_slo.h"
#include "window_read.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mw_exporter {
    const struct mw_aggregator_config *cfg;
    struct mw_store *store;
    uv_timer_t timer;
    /* The window gauges of the latest closed fine window of each (model, version), and the
     * drift of its latest closed window where drift is kept (drift.windows). */
    struct mw__export_snapshot snapshot;
    struct refresh *running;
    size_t omitted_entries; /* left out of the published snapshot by the bounds */
    size_t omitted_features;
    bool closing;
    bool timer_closed;
};

/* One refresh: every read adds to `next`; the last one publishes it. */
struct refresh {
    struct mw_exporter *exp;
    struct mw__export_snapshot next;
    size_t pending;
};

/* What a read fills in: the window's own signals, its drift, or both (the latest closed window
 * at the fine width, and at the width drift.windows keeps drift at). */
enum {
    WANT_WINDOW = 1,
    WANT_DRIFT = 2,
};

struct model_read {
    struct refresh *r;
    int want;
};

/* ---- the snapshot --------------------------------------------------------------------------- */

static void free_entry(struct mw__export_entry *e)
{
    for (size_t i = 0; i < e->n_features; i++)
        mw_free(e->features[i].name);
    mw_free(e->features);
    mw_free(e->model);
    mw_free(e->version);
}

void mw__export_snapshot_free(struct mw__export_snapshot *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free_entry(&s->entries[i]);
    mw_free(s->entries);
    memset(s, 0, sizeof *s);
}

struct mw__export_entry *mw__export_entry_add(struct mw__export_snapshot *s, const char *model,
                                              const char *version)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct mw__export_entry *grown = mw_realloc(s->entries, cap * sizeof *grown);
        if (!grown)
            return NULL;
        s->entries = grown;
        s->cap = cap;
    }
    struct mw__export_entry *e = &s->entries[s->n];
    *e = (struct mw__export_entry){.model = mw_strdup(model), .version = mw_strdup(version)};
    if (!e->model || !e->version) {
        free_entry(e);
        return NULL;
    }
    s->n++;
    return e;
}

int mw__export_entry_set_drift(struct mw__export_entry *e, const struct mw_drift_signals *ds)
{
    struct mw__export_feature *features = mw_calloc(ds->n_features + 1, sizeof *features);
    if (!features)
        return MW_ENOMEM;
    size_t n = 0;
    for (; n < ds->n_features; n++) {
        features[n].name = mw_strdup(ds->features[n].feature);
        if (!features[n].name)
            break;
        features[n].signal = ds->features[n];
        features[n].signal.feature = features[n].name;
    }
    if (n < ds->n_features) {
        for (size_t i = 0; i < n; i++)
            mw_free(features[i].name);
        mw_free(features);
        return MW_ENOMEM;
    }
    for (size_t i = 0; i < e->n_features; i++)
        mw_free(e->features[i].name);
    mw_free(e->features);
    e->features = features;
    e->n_features = n;
    e->has_drift = true;
    return 0;
}

/* The snapshot entry of (model, version), created when the other read has not made it yet. */
static struct mw__export_entry *entry_for(struct mw__export_snapshot *s, const char *model,
                                          const char *version)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->entries[i].model, model) == 0 && strcmp(s->entries[i].version, version) == 0)
            return &s->entries[i];
    return mw__export_entry_add(s, model, version);
}

static double when(bool present, double v)
{
    return present ? v : NAN;
}

/* The gauges of one window, from its signals. Returns 0 or MW_ENOMEM. */
static int window_gauges(const struct mw_window *w, const struct mw_aggregator_config *cfg,
                         struct mw__export_window *out)
{
    struct mw_service_signals service;
    struct mw_slo_attainment slo;
    struct mw_cost_signals cost;
    struct mw_perf_signals *perf = mw_malloc(sizeof *perf);
    if (!perf || mw_service_signals_compute(w, &service) != 0 ||
        mw_perf_signals_compute(w, perf) != 0) {
        mw_free(perf);
        return MW_ENOMEM;
    }
    mw_slo_attainment_compute(w, cfg, &slo);
    mw_cost_signals_compute(w, cfg, &cost);
    *out = (struct mw__export_window){
        .requests = (double)service.count,
        .error_rate = service.error_rate,
        .availability = slo.availability,
        .latency_attainment = slo.latency_attainment,
        .start_s = (double)w->start_ms / 1000,
        .cost_per_1k = cost.per_1k_predictions,
        .label_coverage = perf->labels.coverage,
        .accuracy = when(perf->has_binary, perf->binary.accuracy),
        .f1 = when(perf->has_binary, perf->binary.f1),
        .roc_auc = when(perf->has_binary, perf->binary.roc_auc),
        .log_loss = when(perf->has_binary, perf->binary.log_loss),
        .mae = when(perf->has_regression, perf->regression.mae),
        .rmse = when(perf->has_regression, perf->regression.rmse),
        .mape = when(perf->has_regression, perf->regression.mape),
        .latency_s = {service.latency_p50_us / 1e6, service.latency_p90_us / 1e6,
                      service.latency_p95_us / 1e6, service.latency_p99_us / 1e6},
    };
    mw_free(perf);
    return 0;
}

/* ---- refreshing ----------------------------------------------------------------------------- */

static void maybe_free(struct mw_exporter *e)
{
    if (e->closing && e->timer_closed && !e->running) {
        mw__export_snapshot_free(&e->snapshot);
        mw_free(e);
    }
}

static void finish_one(struct refresh *r)
{
    if (--r->pending)
        return;
    struct mw_exporter *e = r->exp;
    if (!e->closing) {
        mw__exporter_bound(e->cfg, &r->next, &e->omitted_entries, &e->omitted_features);
        mw__export_snapshot_free(&e->snapshot);
        e->snapshot = r->next;
    } else {
        mw__export_snapshot_free(&r->next);
    }
    e->running = NULL;
    mw_free(r);
    maybe_free(e);
}

static void add_window(struct refresh *r, int want, const struct mw_window *w)
{
    const struct mw_aggregator_config *cfg = r->exp->cfg;
    struct mw__export_entry *entry = entry_for(&r->next, w->model, w->version);
    if (!entry)
        return;
    if ((want & WANT_WINDOW) && window_gauges(w, cfg, &entry->window) == 0)
        entry->has_window = true;
    struct mw_drift_signals ds;
    if ((want & WANT_DRIFT) && w->profile &&
        mw_drift_signals_compute(w, w->profile, cfg, &ds) == 0) {
        mw__export_entry_set_drift(entry, &ds);
        mw_drift_signals_free(&ds);
    }
}

/* The latest closed windows of one model, one per version. */
static void on_windows(int rc, const struct mw_window_set *set, void *arg)
{
    struct model_read *m = arg;
    struct refresh *r = m->r;
    for (size_t i = 0; rc == 0 && i < set->n; i++)
        add_window(r, m->want, &set->windows[i]);
    mw_free(m);
    finish_one(r);
}

/* Read the latest closed windows of `model` at `width_ms` for `want`. */
static void start_model(struct refresh *r, const char *model, int64_t width_ms, int want)
{
    struct model_read *m = mw_calloc(1, sizeof *m);
    if (!m)
        return;
    *m = (struct model_read){.r = r, .want = want};
    unsigned flags = want & WANT_DRIFT ? MW_WINDOW_READ_PROFILE : 0;
    r->pending++;
    if (mw_window_read_latest_closed(r->exp->store, r->exp->cfg, model, width_ms, flags, on_windows,
                                     m) != 0) {
        r->pending--;
        mw_free(m);
    }
}

static void on_models(redisReply *reply, void *arg)
{
    struct refresh *r = arg;
    const struct mw_aggregator_config *cfg = r->exp->cfg;
    int64_t fine = cfg->windows.fine_ms, drift = mw_drift_default_width_ms(cfg);
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const char *model = reply->element[i]->str;
        if (!model)
            continue;
        if (drift == fine) {
            start_model(r, model, fine, WANT_WINDOW | WANT_DRIFT);
        } else {
            start_model(r, model, fine, WANT_WINDOW);
            start_model(r, model, drift, WANT_DRIFT);
        }
    }
    finish_one(r);
}

static void on_timer(uv_timer_t *t)
{
    struct mw_exporter *e = t->data;
    if (e->running || !mw_store_connected(e->store))
        return;
    struct refresh *r = mw_calloc(1, sizeof *r);
    if (!r)
        return;
    r->exp = e;
    r->pending = 1;
    e->running = r;
    const char *argv[] = {"SMEMBERS", MW_SCHEMA_MODELS_KEY};
    if (mw_store_commandv(e->store, on_models, r, 2, argv) != 0)
        finish_one(r);
}

/* ---- bounds ------------------------------------------------------------------------------- */

static int by_model_version(const void *a, const void *b)
{
    const struct mw__export_entry *x = a, *y = b;
    int c = strcmp(x->model, y->model);
    return c ? c : strcmp(x->version, y->version);
}

/* The verdict as a number: 2 drift, 1 possible, 0 none, -1 insufficient data (the drift code
 * says so when a window holds too few values to judge). An unknown verdict has none. */
bool mw__exporter_verdict_level(enum mw_drift_verdict verdict, double *level)
{
    switch (verdict) {
    case MW_DRIFT_VERDICT_NONE:
        *level = 0;
        return true;
    case MW_DRIFT_VERDICT_POSSIBLE:
        *level = 1;
        return true;
    case MW_DRIFT_VERDICT_DRIFT:
        *level = 2;
        return true;
    case MW_DRIFT_VERDICT_INSUFFICIENT_DATA:
        *level = -1;
        return true;
    case MW_DRIFT_VERDICT_UNKNOWN:
        break;
    }
    return false;
}

/* Features that drifted most first: by verdict, then PSI; missing values last. */
static int by_drift(const void *a, const void *b)
{
    const struct mw__export_feature *x = a, *y = b;
    double vx = -2, vy = -2;
    mw__exporter_verdict_level(x->signal.verdict, &vx);
    mw__exporter_verdict_level(y->signal.verdict, &vy);
    if (vx != vy)
        return vx < vy ? 1 : -1;
    double dx = isfinite(x->signal.psi) ? x->signal.psi : -1;
    double dy = isfinite(y->signal.psi) ? y->signal.psi : -1;
    if (dx != dy)
        return dx < dy ? 1 : -1;
    return strcmp(x->name, y->name);
}

static bool feature_allowed(const struct mw_aggregator_config *cfg, const char *feature)
{
    const struct mw_cfg_strlist *allow = &cfg->metrics.drift_features;
    for (size_t i = 0; i < allow->n; i++) {
        if (strcmp(allow->items[i], feature) == 0)
            return true;
    }
    return allow->n == 0;
}

/* Keep the allowed features that drifted most; says how many were left out. */
static size_t bound_drift(const struct mw_aggregator_config *cfg, struct mw__export_entry *e)
{
    size_t n = e->n_features, kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (feature_allowed(cfg, e->features[i].name))
            e->features[kept++] = e->features[i];
        else
            mw_free(e->features[i].name);
    }
    if (kept > 1) /* features is NULL when there are none, and qsort must not see NULL */
        qsort(e->features, kept, sizeof *e->features, by_drift);
    size_t top_k = (size_t)cfg->metrics.drift_top_k;
    for (size_t i = top_k; top_k && i < kept; i++)
        mw_free(e->features[i].name);
    if (top_k && kept > top_k)
        kept = top_k;
    e->n_features = kept;
    return n - kept;
}

void mw__exporter_bound(const struct mw_aggregator_config *cfg, struct mw__export_snapshot *s,
                        size_t *omitted_entries, size_t *omitted_features)
{
    size_t max = (size_t)cfg->metrics.max_model_versions;
    *omitted_entries = *omitted_features = 0;
    if (s->n > 1) /* entries is NULL before the first model, and qsort must not see NULL */
        qsort(s->entries, s->n, sizeof *s->entries, by_model_version);
    for (size_t i = max; i < s->n; i++)
        free_entry(&s->entries[i]);
    if (s->n > max) {
        *omitted_entries = s->n - max;
        s->n = max;
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->entries[i].has_drift)
            *omitted_features += bound_drift(cfg, &s->entries[i]);
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void gauge(struct mw_prom_writer *w, const char *name, const char *help)
{
    mw_prom_write_family(w, name, help, MW_PROM_GAUGE);
}

/* One sample of `entry`, with one more label when extra_k is given; none for a value that is
 * not finite (a signal without data). */
static void sample(struct mw_prom_writer *w, const char *name, const struct mw__export_entry *entry,
                   const char *extra_k, const char *extra_v, double value)
{
    if (!isfinite(value))
        return;
    const char *names[] = {"model", "version", extra_k, NULL};
    const char *values[] = {entry->model, entry->version, extra_v, NULL};
    mw_prom_write_sample(w, name, names, values, value);
}

static const struct {
    const char *name;
    const char *help;
    size_t offset; /* of the double in struct mw__export_window */
} window_series[] = {
#define AT(member) offsetof(struct mw__export_window, member)
    {"modelwatch_model_requests", "Predictions in the latest closed window", AT(requests)},
    {"modelwatch_model_error_rate",
     "Share of failed predictions in the latest closed window (0..1)", AT(error_rate)},
    {"modelwatch_model_availability",
     "Share of successful predictions, the availability SLI (0..1)", AT(availability)},
    {"modelwatch_model_latency_attainment",
     "Share of predictions within the latency objective's threshold (0..1)",
     AT(latency_attainment)},
    {"modelwatch_model_window_start_seconds",
     "Start of the window these signals describe, seconds since the Unix epoch", AT(start_s)},
    {"modelwatch_model_cost_per_1k",
     "Cost per 1,000 predictions, in the currency of the cost.* prices", AT(cost_per_1k)},
    {"modelwatch_model_label_coverage", "Share of sampled predictions with a label (0..1)",
     AT(label_coverage)},
    {"modelwatch_model_accuracy", "Accuracy over labelled predictions (0..1)", AT(accuracy)},
    {"modelwatch_model_f1", "F1 over labelled predictions (0..1)", AT(f1)},
    {"modelwatch_model_roc_auc", "ROC AUC over labelled predictions (0..1)", AT(roc_auc)},
    {"modelwatch_model_log_loss", "Log loss over labelled predictions, in nats", AT(log_loss)},
    {"modelwatch_model_mae", "Mean absolute error, in the unit of the model's output", AT(mae)},
    {"modelwatch_model_rmse", "Root mean squared error, in the unit of the model's output",
     AT(rmse)},
    {"modelwatch_model_mape", "Mean absolute percentage error as a ratio (0.05 is 5 %)", AT(mape)},
#undef AT
};

static double window_value(const struct mw__export_window *g, size_t offset)
{
    double v;
    memcpy(&v, (const char *)g + offset, sizeof v);
    return v;
}

static void render_window_series(struct mw_prom_writer *w, const struct mw__export_snapshot *s)
{
    for (size_t k = 0; k < sizeof window_series / sizeof window_series[0]; k++) {
        gauge(w, window_series[k].name, window_series[k].help);
        for (size_t i = 0; i < s->n; i++)
            if (s->entries[i].has_window)
                sample(w, window_series[k].name, &s->entries[i], NULL, NULL,
                       window_value(&s->entries[i].window, window_series[k].offset));
    }
    /* The window's quantiles: a summary's quantile samples are what they are (over a recent
     * stretch of time), without _sum and _count, which would have to be cumulative; the
     * cumulative histogram is modelwatch_prediction_latency_seconds. */
    const char *name = "modelwatch_model_latency_seconds";
    mw_prom_write_family(w, name, "Latency quantiles of the latest closed window, in seconds",
                         MW_PROM_SUMMARY);
    static const char *const qs[] = {"0.5", "0.9", "0.95", "0.99"};
    for (size_t i = 0; i < s->n; i++)
        for (size_t q = 0; s->entries[i].has_window && q < 4; q++)
            sample(w, name, &s->entries[i], "quantile", qs[q], s->entries[i].window.latency_s[q]);
}

enum applies { BOTH, NUMERIC, CATEGORICAL };

static const struct {
    const char *stat;
    const char *help;
    size_t offset; /* of the double in struct mw_drift_feature_signal */
    enum applies applies;
} drift_stats[] = {
#define AT(member) offsetof(struct mw_drift_feature_signal, member)
    {"psi", "population stability index", AT(psi), BOTH},
    {"js_distance", "Jensen-Shannon distance (0..1)", AT(js_distance), BOTH},
    {"ks", "Kolmogorov-Smirnov statistic (0..1)", AT(ks), NUMERIC},
    {"ks_p_value", "Kolmogorov-Smirnov p-value (0..1)", AT(ks_p_value), NUMERIC},
    {"wasserstein", "Wasserstein distance, in the feature's unit", AT(wasserstein), NUMERIC},
    {"wasserstein_normed", "Wasserstein distance, in reference standard deviations",
     AT(wasserstein_normed), NUMERIC},
    {"chi2_p_value", "chi-squared p-value (0..1)", AT(chi2_p_value), CATEGORICAL},
    {"unseen_share", "share of categories the profile does not know (0..1)", AT(unseen_share),
     CATEGORICAL},
    {"missing_rate", "share of missing values (0..1)", AT(missing_rate), BOTH},
    {"out_of_range_rate", "share of values outside the reference range (0..1)",
     AT(out_of_range_rate), NUMERIC},
    {"type_violation_rate", "share of values of the wrong type (0..1)", AT(type_violation_rate),
     BOTH},
#undef AT
};

static void render_drift(struct mw_prom_writer *w, const struct mw__export_snapshot *s)
{
    for (size_t k = 0; k < sizeof drift_stats / sizeof drift_stats[0]; k++) {
        char name[96], help[160];
        snprintf(name, sizeof name, "modelwatch_model_drift_%s", drift_stats[k].stat);
        snprintf(help, sizeof help, "Drift of a feature against the reference profile: %s",
                 drift_stats[k].help);
        gauge(w, name, help);
        for (size_t i = 0; i < s->n; i++) {
            const struct mw__export_entry *e = &s->entries[i];
            for (size_t f = 0; f < e->n_features; f++) {
                const struct mw_drift_feature_signal *sig = &e->features[f].signal;
                if (drift_stats[k].applies != BOTH &&
                    (drift_stats[k].applies == NUMERIC) != sig->numeric)
                    continue;
                double v;
                memcpy(&v, (const char *)sig + drift_stats[k].offset, sizeof v);
                sample(w, name, e, "feature", sig->feature, v);
            }
        }
    }
}

/* The verdict as a number for alert rules (verdict_level). */
static void render_verdicts(struct mw_prom_writer *w, const struct mw__export_snapshot *s)
{
    const char *name = "modelwatch_model_drift_verdict";
    gauge(w, name, "Drift verdict of a feature: 2 drift, 1 possible, 0 none, -1 insufficient data");
    for (size_t i = 0; i < s->n; i++) {
        const struct mw__export_entry *e = &s->entries[i];
        for (size_t f = 0; f < e->n_features; f++) {
            double level;
            if (mw__exporter_verdict_level(e->features[f].signal.verdict, &level))
                sample(w, name, e, "feature", e->features[f].name, level);
        }
    }
}

static void render_omitted(struct mw_prom_writer *w, const struct mw_exporter *e)
{
    const char *name = "modelwatch_metrics_series_omitted";
    const char *labels[] = {"kind", NULL};
    gauge(w, name,
          "What the latest refresh of the window gauges left out: (model, version) pairs past "
          "metrics.max_model_versions, and features past metrics.drift_features / drift_top_k");
    const char *pairs[] = {"model_version", NULL};
    const char *features[] = {"drift_feature", NULL};
    mw_prom_write_sample(w, name, labels, pairs, (double)e->omitted_entries);
    mw_prom_write_sample(w, name, labels, features, (double)e->omitted_features);
}

static void collect(struct mw_prom_writer *w, void *arg)
{
    struct mw_exporter *e = arg;
    render_window_series(w, &e->snapshot);
    render_drift(w, &e->snapshot);
    render_verdicts(w, &e->snapshot);
    render_omitted(w, e);
}

int mw_exporter_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg,
                       struct mw_store *store, struct mw_prom_registry *reg, uint64_t interval_ms,
                       struct mw_exporter **out)
{
    struct mw_exporter *e = mw_calloc(1, sizeof *e);
    if (!e)
        return MW_ENOMEM;
    e->cfg = cfg;
    e->store = store;
    uv_timer_init(loop, &e->timer);
    e->timer.data = e;
    uv_timer_start(&e->timer, on_timer, 1000, interval_ms);
    mw_prom_add_collector(reg, collect, e);
    *out = e;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mw_exporter *e = h->data;
    e->timer_closed = true;
    maybe_free(e);
}

void mw_exporter_destroy(struct mw_exporter *e)
{
    if (!e)
        return;
    e->closing = true;
    uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}
