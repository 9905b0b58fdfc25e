/* exporter.c — periodic snapshot of every model's latest closed window, rendered on /metrics. */
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
    json_t *snapshot; /* array of {"model", "version", "window": {...}, "drift": [...]} */
    struct refresh *running;
    bool closing;
    bool timer_closed;
};

/* One refresh: every reply adds to `next`; the last one publishes it. */
struct refresh {
    struct mw_exporter *exp;
    json_t *next;
    size_t pending;
};

struct model_job {
    struct refresh *r;
    char model[160];
    int64_t watermark_ms;
};

struct window_job {
    struct refresh *r;
    char model[160];
    char version[160];
    int64_t start_ms;
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
        json_t *entry =
            json_pack("{s:s, s:s, s:o}", "model", j->model, "version", j->version, "window",
                      mw_signals_window_json(&w, j->start_ms, j->r->exp->cfg->windows.fine_ms,
                                             j->version, j->final, j->r->exp->cfg));
        struct mw_profile *p = NULL;
        char err[256];
        if (j->profile && mw_profile_parse(j->profile, j->profile_len, &p, err, sizeof err) == 0)
            json_object_set_new(entry, "drift", mw_signals_drift_json(&w, p, j->r->exp->cfg));
        mw_profile_free(p);
        json_array_append_new(j->r->next, entry);
        mw_free(buf);
    }
    struct refresh *r = j->r;
    mw_free(j->profile);
    mw_free(j);
    finish_one(r);
}

static void start_window(struct refresh *r, const char *model, const char *version,
                         int64_t start_ms)
{
    struct window_job *j = mw_calloc(1, sizeof *j);
    if (!j)
        return;
    j->r = r;
    snprintf(j->model, sizeof j->model, "%s", model);
    snprintf(j->version, sizeof j->version, "%s", version);
    j->start_ms = start_ms;
    j->final = true;
    char pkey[KEY_BYTES], wkey[KEY_BYTES];
    mw_profile_key(model, version, pkey, sizeof pkey);
    snprintf(wkey, sizeof wkey, "mw:{%s}:w:%" PRId64 ":%" PRId64 ":%s", model,
             r->exp->cfg->windows.fine_ms / 1000, start_ms, version);
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
            start_window(r, m->model, colon + 1, strtoll(member, NULL, 10));
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
    int64_t by_watermark =
        m->watermark_ms - cfg->windows.allowed_lateness_ms - cfg->windows.fine_ms;
    int64_t by_clock = mw_clock_wall_ms() - cfg->http.signals_delay_ms - cfg->windows.fine_ms;
    char idx[KEY_BYTES], max[32], limit[16];
    snprintf(idx, sizeof idx, "mw:{%s}:idx:%" PRId64, m->model, cfg->windows.fine_ms / 1000);
    snprintf(max, sizeof max, "%" PRId64, by_watermark > by_clock ? by_watermark : by_clock);
    snprintf(limit, sizeof limit, "%d", WINDOWS_SCANNED);
    const char *range[] = {"ZREVRANGEBYSCORE", idx, max, "-inf", "LIMIT", "0", limit};
    if (mw_store_commandv(e->store, on_index, m, 7, range) != 0) {
        struct refresh *r = m->r;
        mw_free(m);
        finish_one(r);
    }
}

static void on_models(redisReply *reply, void *arg)
{
    struct refresh *r = arg;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        struct model_job *m = mw_calloc(1, sizeof *m);
        if (!m)
            break;
        m->r = r;
        snprintf(m->model, sizeof m->model, "%s", reply->element[i]->str);
        char wm[KEY_BYTES];
        snprintf(wm, sizeof wm, "mw:{%s}:wm", m->model);
        const char *get[] = {"GET", wm};
        r->pending++;
        if (mw_store_commandv(r->exp->store, on_watermark, m, 2, get) != 0) {
            r->pending--;
            mw_free(m);
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
};

static const struct series window_series[] = {
    {"modelwatch_model_requests", "Predictions in the latest closed window", {"count"}},
    {"modelwatch_model_error_rate", "Share of failed predictions", {"error_rate"}},
    {"modelwatch_model_availability",
     "Share of successful predictions (the availability SLO)",
     {"slo", "availability"}},
    {"modelwatch_model_latency_attainment",
     "Share of predictions within the latency objective's threshold",
     {"slo", "latency_attainment"}},
    {"modelwatch_model_window_start_seconds",
     "Start of the window these signals describe",
     {"start_ms"}},
    {"modelwatch_model_cost_per_1k", "Cost per 1,000 predictions", {"cost", "per_1k_predictions"}},
    {"modelwatch_model_label_coverage",
     "Share of sampled predictions with a label",
     {"performance", "labels", "coverage"}},
    {"modelwatch_model_accuracy",
     "Accuracy over labelled predictions",
     {"performance", "binary", "accuracy"}},
    {"modelwatch_model_f1", "F1 over labelled predictions", {"performance", "binary", "f1"}},
    {"modelwatch_model_roc_auc",
     "ROC AUC over labelled predictions",
     {"performance", "binary", "roc_auc"}},
    {"modelwatch_model_log_loss",
     "Log loss over labelled predictions",
     {"performance", "binary", "log_loss"}},
    {"modelwatch_model_mae", "Mean absolute error", {"performance", "regression", "mae"}},
    {"modelwatch_model_rmse", "Root mean squared error", {"performance", "regression", "rmse"}},
    {"modelwatch_model_mape",
     "Mean absolute percentage error (fraction)",
     {"performance", "regression", "mape"}},
};

static json_t *dig(json_t *o, const char *const *path)
{
    for (size_t i = 0; i < 3 && path[i] && o; i++)
        o = json_object_get(o, path[i]);
    return o;
}

static void render_window_series(struct mw_prom_writer *w, json_t *snapshot)
{
    for (size_t s = 0; s < sizeof window_series / sizeof window_series[0]; s++) {
        gauge(w, window_series[s].name, window_series[s].help);
        size_t i;
        json_t *entry;
        json_array_foreach(snapshot, i, entry)
        {
            json_t *v = dig(json_object_get(entry, "window"), window_series[s].path);
            if (strcmp(window_series[s].name, "modelwatch_model_window_start_seconds") == 0 && v)
                v = json_real(json_number_value(v) / 1000.0);
            else
                json_incref(v);
            sample(w, window_series[s].name, entry, NULL, NULL, v);
            json_decref(v);
        }
    }
    gauge(w, "modelwatch_model_latency_us", "Latency percentiles, microseconds");
    static const char *const qs[][2] = {
        {"p50", "0.5"}, {"p90", "0.9"}, {"p95", "0.95"}, {"p99", "0.99"}};
    size_t i;
    json_t *entry;
    json_array_foreach(snapshot, i, entry)
    {
        json_t *lat = json_object_get(json_object_get(entry, "window"), "latency_us");
        for (size_t q = 0; q < 4; q++)
            sample(w, "modelwatch_model_latency_us", entry, "quantile", qs[q][1],
                   json_object_get(lat, qs[q][0]));
    }
}

static void render_drift(struct mw_prom_writer *w, json_t *snapshot)
{
    static const char *const stats[] = {"psi",
                                        "js_distance",
                                        "ks",
                                        "ks_p_value",
                                        "wasserstein",
                                        "wasserstein_normed",
                                        "chi2_p_value",
                                        "unseen_share",
                                        "missing_rate",
                                        "out_of_range_rate",
                                        "type_violation_rate"};
    for (size_t s = 0; s < sizeof stats / sizeof stats[0]; s++) {
        char name[96], help[128];
        snprintf(name, sizeof name, "modelwatch_model_drift_%s", stats[s]);
        snprintf(help, sizeof help, "Drift of a feature against the reference profile: %s",
                 stats[s]);
        gauge(w, name, help);
        size_t i, k;
        json_t *entry, *f;
        json_array_foreach(snapshot, i, entry)
        {
            json_array_foreach(json_object_get(entry, "drift"), k, f)
            {
                sample(w, name, entry, "feature", json_string_value(json_object_get(f, "feature")),
                       json_object_get(f, stats[s]));
            }
        }
    }
}

/* The verdict as a number for alert rules: 0 none, 1 possible, 2 drift. */
static void render_verdicts(struct mw_prom_writer *w, json_t *snapshot)
{
    const char *name = "modelwatch_model_drift_verdict";
    gauge(w, name, "Drift verdict of a feature: 0 none, 1 possible, 2 drift");
    size_t i, k;
    json_t *entry, *f;
    json_array_foreach(snapshot, i, entry)
    {
        json_array_foreach(json_object_get(entry, "drift"), k, f)
        {
            const char *v = json_string_value(json_object_get(f, "verdict"));
            double level = !v ? -1 : strcmp(v, "drift") == 0 ? 2 : strcmp(v, "possible") == 0;
            json_t *value = level >= 0 ? json_real(level) : json_null();
            sample(w, name, entry, "feature", json_string_value(json_object_get(f, "feature")),
                   value);
            json_decref(value);
        }
    }
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
