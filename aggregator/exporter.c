/* exporter.c — periodic snapshot of every model's latest closed window, rendered on /metrics.
 *
 * Values go out in base units: seconds (latencies arrive in microseconds, window starts in
 * milliseconds) and ratios in 0..1. A refresh is bounded before it is published: at most
 * metrics.max_model_versions (model, version) entries, in (model, version) order so every
 * replica keeps the same ones, and per entry only the drift of the features metrics.drift_features
 * allows, then the metrics.drift_top_k that drifted most. */
#include "exporter.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "profile_cache.h"
#include "signals.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_BYTES 700
#define WINDOWS_SCANNED 64

struct mw_exporter {
    const struct mw_aggregator_config *cfg;
    struct mw_store *store;
    uv_timer_t timer;
    json_t *snapshot; /* array of {"model", "version", "window": {...}, "drift": [...]}; the
                         window is the latest closed fine one, the drift that of the latest
                         closed window where drift is kept (drift.windows) */
    struct refresh *running;
    size_t omitted_entries; /* left out of the published snapshot by the bounds */
    size_t omitted_features;
    bool closing;
    bool timer_closed;
};

/* One refresh: every reply adds to `next`; the last one publishes it. */
struct refresh {
    struct mw_exporter *exp;
    json_t *next;
    size_t pending;
};

/* What a chain of reads fills in: the window's own signals, its drift, or both (the latest
 * closed window at the fine width, and at the width drift.windows keeps drift at). */
enum {
    WANT_WINDOW = 1,
    WANT_DRIFT = 2,
};

struct model_job {
    struct refresh *r;
    char model[160];
    int64_t watermark_ms;
    int64_t width_ms;
    int want;
};

struct window_job {
    struct refresh *r;
    char model[160];
    char version[160];
    int64_t start_ms;
    int64_t width_ms;
    int want;
    bool final;
    json_t *entry;
    char *profile; /* copied from its reply */
    size_t profile_len;
};

static void maybe_free(struct mw_exporter *e)
{
    if (e->closing && e->timer_closed && !e->running) {
        json_decref(e->snapshot);
        mw_free(e);
    }
}

static void finish_one(struct refresh *r)
{
    if (--r->pending)
        return;
    struct mw_exporter *e = r->exp;
    if (!e->closing) {
        mw__exporter_bound(e->cfg, r->next, &e->omitted_entries, &e->omitted_features);
        json_decref(e->snapshot);
        e->snapshot = r->next;
    } else {
        json_decref(r->next);
    }
    e->running = NULL;
    mw_free(r);
    maybe_free(e);
}

static void on_profile(redisReply *reply, void *arg)
{
    struct window_job *j = arg;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        j->profile = mw_strndup(reply->str, reply->len);
        j->profile_len = reply->len;
    }
}

/* The snapshot entry of (model, version), created when the other chain has not made it yet. */
static json_t *entry_for(json_t *next, const char *model, const char *raw_version)
{
    size_t i;
    json_t *entry;
    /* Labels and JSON are UTF-8: the version as both show it (U+FFFD for invalid bytes). */
    json_t *shown = mw_signals_json_text(raw_version);
    const char *version = json_string_value(shown);
    if (!version) {
        json_decref(shown);
        return NULL;
    }
    json_array_foreach(next, i, entry)
    {
        if (strcmp(json_string_value(json_object_get(entry, "model")), model) == 0 &&
            strcmp(json_string_value(json_object_get(entry, "version")), version) == 0) {
            json_decref(shown);
            return entry;
        }
    }
    entry = json_pack("{s:s, s:o}", "model", model, "version", shown);
    json_array_append_new(next, entry);
    return entry;
}

/* The window's hash: the last reply of a window job. */
static void on_window(redisReply *reply, void *arg)
{
    struct window_job *j = arg;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        size_t n = reply->elements / 2;
        const char **buf = mw_calloc(2 * n + 1, sizeof *buf);
        for (size_t i = 0; buf && i < n; i++) {
            buf[i] = reply->element[2 * i]->str;
            buf[n + i] = reply->element[2 * i + 1]->str;
        }
        struct mw_window_fields w = {.n = buf ? n : 0, .names = buf, .values = buf + n};
        json_t *entry = entry_for(j->r->next, j->model, j->version);
        if (j->want & WANT_WINDOW)
            json_object_set_new(entry, "window",
                                mw_signals_window_json(&w, j->start_ms, j->width_ms, j->version,
                                                       j->final, j->r->exp->cfg));
        struct mw_profile *p = NULL;
        char err[256];
        if ((j->want & WANT_DRIFT) && j->profile &&
            mw_profile_parse(j->profile, j->profile_len, &p, err, sizeof err) == 0)
            json_object_set_new(entry, "drift", mw_signals_drift_json(&w, p, j->r->exp->cfg));
        mw_profile_free(p);
        mw_free(buf);
    }
    struct refresh *r = j->r;
    mw_free(j->profile);
    mw_free(j);
    finish_one(r);
}

static void start_window(struct refresh *r, const struct model_job *m, const char *version,
                         int64_t start_ms)
{
    const char *model = m->model;
    struct window_job *j = mw_calloc(1, sizeof *j);
    if (!j)
        return;
    j->r = r;
    j->width_ms = m->width_ms;
    j->want = m->want;
    snprintf(j->model, sizeof j->model, "%s", model);
    snprintf(j->version, sizeof j->version, "%s", version);
    j->start_ms = start_ms;
    j->final = true;
    char pkey[KEY_BYTES], wkey[KEY_BYTES];
    mw_profile_key(model, version, pkey, sizeof pkey);
    snprintf(wkey, sizeof wkey, "mw:{%s}:w:%" PRId64 ":%" PRId64 ":%s", model, m->width_ms / 1000,
             start_ms, version);
    const char *get_profile[] = {"GET", pkey};
    const char *get_window[] = {"HGETALL", wkey};
    if (mw_store_commandv(r->exp->store, on_profile, j, 2, get_profile) != 0) {
        mw_free(j);
        return;
    }
    r->pending++;
    if (mw_store_commandv(r->exp->store, on_window, j, 2, get_window) != 0)
        r->pending--; /* only out of memory: the job is abandoned */
}

/* Newest closed window per version among the index entries. */
static void on_index(redisReply *reply, void *arg)
{
    struct model_job *m = arg;
    struct refresh *r = m->r;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        json_t *seen = json_object();
        for (size_t i = 0; i < reply->elements; i++) {
            const char *member = reply->element[i]->str;
            const char *colon = member ? strchr(member, ':') : NULL;
            if (!colon || json_object_get(seen, colon + 1))
                continue;
            json_object_set_new(seen, colon + 1, json_true());
            start_window(r, m, colon + 1, strtoll(member, NULL, 10));
        }
        json_decref(seen);
    }
    mw_free(m);
    finish_one(r);
}

static void on_watermark(redisReply *reply, void *arg)
{
    struct model_job *m = arg;
    struct mw_exporter *e = m->r->exp;
    m->watermark_ms =
        reply && reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) : 0;
    /* Closed windows: final under the model's watermark (end + lateness <= watermark), or
     * ended at least http.signals_delay ago by the wall clock — agents seal every second, so a
     * window is complete long before the watermark makes it final, and a model whose traffic
     * stopped has a watermark that stands still. */
    const struct mw_aggregator_config *cfg = e->cfg;
    int64_t by_watermark = m->watermark_ms - cfg->windows.allowed_lateness_ms - m->width_ms;
    int64_t by_clock = mw_clock_wall_ms() - cfg->http.signals_delay_ms - m->width_ms;
    char idx[KEY_BYTES], max[32], limit[16];
    snprintf(idx, sizeof idx, "mw:{%s}:idx:%" PRId64, m->model, m->width_ms / 1000);
    snprintf(max, sizeof max, "%" PRId64, by_watermark > by_clock ? by_watermark : by_clock);
    snprintf(limit, sizeof limit, "%d", WINDOWS_SCANNED);
    const char *range[] = {"ZREVRANGEBYSCORE", idx, max, "-inf", "LIMIT", "0", limit};
    if (mw_store_commandv(e->store, on_index, m, 7, range) != 0) {
        struct refresh *r = m->r;
        mw_free(m);
        finish_one(r);
    }
}

/* Read the latest closed window of `model` at `width_ms` for `want`. */
static void start_model(struct refresh *r, const char *model, int64_t width_ms, int want)
{
    struct model_job *m = mw_calloc(1, sizeof *m);
    if (!m)
        return;
    m->r = r;
    m->width_ms = width_ms;
    m->want = want;
    snprintf(m->model, sizeof m->model, "%s", model);
    char wm[KEY_BYTES];
    snprintf(wm, sizeof wm, "mw:{%s}:wm", m->model);
    const char *get[] = {"GET", wm};
    r->pending++;
    if (mw_store_commandv(r->exp->store, on_watermark, m, 2, get) != 0) {
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
    r->next = json_array();
    r->pending = 1;
    e->running = r;
    const char *argv[] = {"SMEMBERS", "mw:models"};
    if (mw_store_commandv(e->store, on_models, r, 2, argv) != 0)
        finish_one(r);
}

/* ---- bounds ------------------------------------------------------------------------------- */

static const char *entry_text(json_t *entry, const char *key)
{
    const char *v = json_string_value(json_object_get(entry, key));
    return v ? v : "";
}

static int by_model_version(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(entry_text(x, "model"), entry_text(y, "model"));
    return c ? c : strcmp(entry_text(x, "version"), entry_text(y, "version"));
}

/* The verdict as a number: 2 drift, 1 possible, 0 none, -1 insufficient data (the drift code
 * says so when a window holds too few values to judge). Other or absent verdicts have none. */
bool mw__exporter_verdict_level(const char *verdict, double *level)
{
    static const struct {
        const char *name;
        double level;
    } levels[] = {{"none", 0}, {"possible", 1}, {"drift", 2}, {"insufficient_data", -1}};
    for (size_t i = 0; verdict && i < sizeof levels / sizeof levels[0]; i++) {
        if (strcmp(verdict, levels[i].name) == 0) {
            *level = levels[i].level;
            return true;
        }
    }
    return false;
}

/* Features that drifted most first: by verdict, then PSI; missing values last. */
static int by_drift(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    double vx = -2, vy = -2;
    mw__exporter_verdict_level(json_string_value(json_object_get(x, "verdict")), &vx);
    mw__exporter_verdict_level(json_string_value(json_object_get(y, "verdict")), &vy);
    if (vx != vy)
        return vx < vy ? 1 : -1;
    json_t *px = json_object_get(x, "psi"), *py = json_object_get(y, "psi");
    double dx = json_is_number(px) ? json_number_value(px) : -1;
    double dy = json_is_number(py) ? json_number_value(py) : -1;
    if (dx != dy)
        return dx < dy ? 1 : -1;
    return strcmp(entry_text(x, "feature"), entry_text(y, "feature"));
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

/* Replace the contents of `array` with the first `keep` of `items` (borrowed). */
static void refill(json_t *array, json_t **items, size_t keep)
{
    for (size_t i = 0; i < keep; i++)
        json_incref(items[i]);
    json_array_clear(array);
    for (size_t i = 0; i < keep; i++)
        json_array_append_new(array, items[i]);
}

static size_t bound_drift(const struct mw_aggregator_config *cfg, json_t *drift)
{
    size_t n = json_array_size(drift), kept = 0;
    json_t **items = n ? mw_calloc(n, sizeof *items) : NULL;
    if (!items)
        return 0;
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_array_get(drift, i);
        if (feature_allowed(cfg, entry_text(f, "feature")))
            items[kept++] = f;
    }
    qsort(items, kept, sizeof *items, by_drift);
    size_t top_k = (size_t)cfg->metrics.drift_top_k;
    if (top_k && kept > top_k)
        kept = top_k;
    refill(drift, items, kept);
    mw_free(items);
    return n - kept;
}

void mw__exporter_bound(const struct mw_aggregator_config *cfg, json_t *snapshot,
                        size_t *omitted_entries, size_t *omitted_features)
{
    size_t n = json_array_size(snapshot);
    size_t max = (size_t)cfg->metrics.max_model_versions;
    json_t **items = n ? mw_calloc(n, sizeof *items) : NULL;
    *omitted_entries = *omitted_features = 0;
    if (!items)
        return; /* empty, or out of memory: published unbounded this once */
    for (size_t i = 0; i < n; i++)
        items[i] = json_array_get(snapshot, i);
    qsort(items, n, sizeof *items, by_model_version);
    size_t keep = n > max ? max : n;
    *omitted_entries = n - keep;
    refill(snapshot, items, keep);
    mw_free(items);
    size_t i;
    json_t *entry;
    json_array_foreach(snapshot, i, entry)
    {
        json_t *drift = json_object_get(entry, "drift");
        if (drift)
            *omitted_features += bound_drift(cfg, drift);
    }
}

/* ---- rendering ------------------------------------------------------------------------------ */

static void gauge(struct mw_prom_writer *w, const char *name, const char *help)
{
    mw_prom_write_family(w, name, help, MW_PROM_GAUGE);
}

static void sample(struct mw_prom_writer *w, const char *name, json_t *entry, const char *extra_k,
                   const char *extra_v, json_t *value)
{
    if (!json_is_number(value))
        return;
    const char *names[] = {"model", "version", extra_k, NULL};
    const char *values[] = {json_string_value(json_object_get(entry, "model")),
                            json_string_value(json_object_get(entry, "version")), extra_v, NULL};
    if (!extra_k)
        names[2] = values[2] = NULL;
    mw_prom_write_sample(w, name, names, values, json_number_value(value));
}

struct series {
    const char *name;
    const char *help;
    const char *path[3]; /* object keys from the window object */
    double per_unit;     /* source units in one base unit: 1000 for milliseconds */
};

static const struct series window_series[] = {
    {"modelwatch_model_requests", "Predictions in the latest closed window", {"count"}, 1},
    {"modelwatch_model_error_rate",
     "Share of failed predictions in the latest closed window (0..1)",
     {"error_rate"},
     1},
    {"modelwatch_model_availability",
     "Share of successful predictions, the availability SLI (0..1)",
     {"slo", "availability"},
     1},
    {"modelwatch_model_latency_attainment",
     "Share of predictions within the latency objective's threshold (0..1)",
     {"slo", "latency_attainment"},
     1},
    {"modelwatch_model_window_start_seconds",
     "Start of the window these signals describe, seconds since the Unix epoch",
     {"start_ms"},
     1000},
    {"modelwatch_model_cost_per_1k",
     "Cost per 1,000 predictions, in the currency of the cost.* prices",
     {"cost", "per_1k_predictions"},
     1},
    {"modelwatch_model_label_coverage",
     "Share of sampled predictions with a label (0..1)",
     {"performance", "labels", "coverage"},
     1},
    {"modelwatch_model_accuracy",
     "Accuracy over labelled predictions (0..1)",
     {"performance", "binary", "accuracy"},
     1},
    {"modelwatch_model_f1",
     "F1 over labelled predictions (0..1)",
     {"performance", "binary", "f1"},
     1},
    {"modelwatch_model_roc_auc",
     "ROC AUC over labelled predictions (0..1)",
     {"performance", "binary", "roc_auc"},
     1},
    {"modelwatch_model_log_loss",
     "Log loss over labelled predictions, in nats",
     {"performance", "binary", "log_loss"},
     1},
    {"modelwatch_model_mae",
     "Mean absolute error, in the unit of the model's output",
     {"performance", "regression", "mae"},
     1},
    {"modelwatch_model_rmse",
     "Root mean squared error, in the unit of the model's output",
     {"performance", "regression", "rmse"},
     1},
    {"modelwatch_model_mape",
     "Mean absolute percentage error as a ratio (0.05 is 5 %)",
     {"performance", "regression", "mape"},
     1},
};

static json_t *dig(json_t *o, const char *const *path)
{
    for (size_t i = 0; i < 3 && path[i] && o; i++)
        o = json_object_get(o, path[i]);
    return o;
}

/* `value` in the base unit (divided by `per_unit`), as a new reference; NULL for a non-number. */
static json_t *in_base_unit(json_t *value, double per_unit)
{
    if (!json_is_number(value))
        return NULL;
    return per_unit != 1 ? json_real(json_number_value(value) / per_unit) : json_incref(value);
}

static void render_window_series(struct mw_prom_writer *w, json_t *snapshot)
{
    for (size_t s = 0; s < sizeof window_series / sizeof window_series[0]; s++) {
        gauge(w, window_series[s].name, window_series[s].help);
        size_t i;
        json_t *entry;
        json_array_foreach(snapshot, i, entry)
        {
            json_t *v = in_base_unit(dig(json_object_get(entry, "window"), window_series[s].path),
                                     window_series[s].per_unit);
            sample(w, window_series[s].name, entry, NULL, NULL, v);
            json_decref(v);
        }
    }
    /* The window's quantiles: a summary's quantile samples are what they are (over a recent
     * stretch of time), without _sum and _count, which would have to be cumulative; the
     * cumulative histogram is modelwatch_prediction_latency_seconds. */
    const char *name = "modelwatch_model_latency_seconds";
    mw_prom_write_family(w, name, "Latency quantiles of the latest closed window, in seconds",
                         MW_PROM_SUMMARY);
    static const char *const qs[][2] = {
        {"p50", "0.5"}, {"p90", "0.9"}, {"p95", "0.95"}, {"p99", "0.99"}};
    size_t i;
    json_t *entry;
    json_array_foreach(snapshot, i, entry)
    {
        json_t *lat = json_object_get(json_object_get(entry, "window"), "latency_us");
        for (size_t q = 0; q < 4; q++) {
            json_t *v = in_base_unit(json_object_get(lat, qs[q][0]), 1e6);
            sample(w, name, entry, "quantile", qs[q][1], v);
            json_decref(v);
        }
    }
}

static void render_drift(struct mw_prom_writer *w, json_t *snapshot)
{
    static const char *const stats[][2] = {
        {"psi", "population stability index"},
        {"js_distance", "Jensen-Shannon distance (0..1)"},
        {"ks", "Kolmogorov-Smirnov statistic (0..1)"},
        {"ks_p_value", "Kolmogorov-Smirnov p-value (0..1)"},
        {"wasserstein", "Wasserstein distance, in the feature's unit"},
        {"wasserstein_normed", "Wasserstein distance, in reference standard deviations"},
        {"chi2_p_value", "chi-squared p-value (0..1)"},
        {"unseen_share", "share of categories the profile does not know (0..1)"},
        {"missing_rate", "share of missing values (0..1)"},
        {"out_of_range_rate", "share of values outside the reference range (0..1)"},
        {"type_violation_rate", "share of values of the wrong type (0..1)"}};
    for (size_t s = 0; s < sizeof stats / sizeof stats[0]; s++) {
        char name[96], help[160];
        snprintf(name, sizeof name, "modelwatch_model_drift_%s", stats[s][0]);
        snprintf(help, sizeof help, "Drift of a feature against the reference profile: %s",
                 stats[s][1]);
        gauge(w, name, help);
        size_t i, k;
        json_t *entry, *f;
        json_array_foreach(snapshot, i, entry)
        {
            json_array_foreach(json_object_get(entry, "drift"), k, f)
            {
                sample(w, name, entry, "feature", json_string_value(json_object_get(f, "feature")),
                       json_object_get(f, stats[s][0]));
            }
        }
    }
}

/* The verdict as a number for alert rules (verdict_level). */
static void render_verdicts(struct mw_prom_writer *w, json_t *snapshot)
{
    const char *name = "modelwatch_model_drift_verdict";
    gauge(w, name, "Drift verdict of a feature: 2 drift, 1 possible, 0 none, -1 insufficient data");
    size_t i, k;
    json_t *entry, *f;
    json_array_foreach(snapshot, i, entry)
    {
        json_array_foreach(json_object_get(entry, "drift"), k, f)
        {
            double level;
            if (!mw__exporter_verdict_level(json_string_value(json_object_get(f, "verdict")),
                                            &level))
                continue;
            json_t *value = json_real(level);
            sample(w, name, entry, "feature", json_string_value(json_object_get(f, "feature")),
                   value);
            json_decref(value);
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
    json_t *snapshot = e->snapshot ? e->snapshot : json_array();
    if (!e->snapshot)
        e->snapshot = snapshot;
    render_window_series(w, snapshot);
    render_drift(w, snapshot);
    render_verdicts(w, snapshot);
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
    e->snapshot = json_array();
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
