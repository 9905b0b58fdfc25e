/* api.c — /api/v1 handlers: windows read through window_read.h, answered as JSON in the
 * API's envelope (api_reply.h). */
#include "api.h"

#include "api_reply.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "names.h"
#include "prom.h"
#include "schema.h"
#include "signals_cost.h"
#include "signals_drift.h"
#include "signals_perf.h"
#include "signals_service.h"
#include "signals_slo.h"
#include "window_read.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A JSON string of text that came from outside (a model version, a feature name): JSON must be
 * UTF-8, so bytes that are not well-formed UTF-8 become U+FFFD, as /metrics shows them
 * (mw_prom_utf8_copy). NULL text gives JSON null. New reference; NULL when out of memory. */
static json_t *json_text(const char *text)
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

#define MODELS_PREFIX "/api/v1/models"
#define OPENAPI_PATH "/api/v1/openapi.json"
#define DEFAULT_LIMIT 1000
#define MAX_LIMIT 10000
#define DAY_MS 86400000LL
#define DRIFT_SCAN_MAX 1000

/* aggregator/openapi.json, embedded at build time (embed_lua.py). */
extern const char MW_OPENAPI_DOCUMENT[];
extern const size_t MW_OPENAPI_DOCUMENT_LEN;

struct mw_api {
    const struct mw_aggregator_config *cfg;
    struct mw_store *store;
    struct mw_profile_cache *profiles;
};

/* ---- helpers -------------------------------------------------------------------------------- */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A JSON array of the reply's strings, sorted. */
static json_t *sorted_strings(const redisReply *reply)
{
    const char **names = mw_calloc(reply->elements + 1, sizeof *names);
    json_t *list = json_array();
    if (!names)
        return list;
    for (size_t i = 0; i < reply->elements; i++)
        names[i] = reply->element[i]->str ? reply->element[i]->str : "";
    qsort(names, reply->elements, sizeof *names, compare_strings);
    for (size_t i = 0; i < reply->elements; i++)
        json_array_append_new(list, json_text(names[i]));
    mw_free(names);
    return list;
}

static int parse_int_param(const char *query, const char *name, int64_t *out)
{
    char text[32];
    int rc = mw_http_query_param(query, name, text, sizeof text);
    if (rc == MW_ENOTFOUND)
        return 0;
    if (rc)
        return MW_EINVAL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end)
        return MW_EINVAL;
    *out = v;
    return 0;
}

/* The `resolution` parameter (seconds) into *width, `default_ms` when the query has none. */
static const char *parse_resolution(const struct mw_api *api, const char *query, int64_t default_ms,
                                    int64_t *width)
{
    int64_t seconds = default_ms / 1000;
    if (parse_int_param(query, "resolution", &seconds) ||
        (seconds * 1000 != api->cfg->windows.fine_ms &&
         seconds * 1000 != api->cfg->windows.coarse_ms))
        return "resolution: must be one of the configured window widths in seconds";
    *width = seconds * 1000;
    return NULL;
}

/* ---- JSON: the signals' encoding at the edge ------------------------------------------------ */

static json_t *number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *verdict_json(enum mw_slo_verdict v)
{
    return v == MW_SLO_UNKNOWN ? json_null() : json_boolean(v == MW_SLO_MET);
}

static json_t *latency_json(const struct mw_service_signals *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "p50", number_or_null(s->latency_p50_us));
    json_object_set_new(o, "p90", number_or_null(s->latency_p90_us));
    json_object_set_new(o, "p95", number_or_null(s->latency_p95_us));
    json_object_set_new(o, "p99", number_or_null(s->latency_p99_us));
    json_object_set_new(o, "mean", number_or_null(s->latency_mean_us));
    return o;
}

static json_t *errors_by_code_json(const struct mw_service_signals *s)
{
    json_t *o = json_object();
    for (size_t i = 0; i < s->n_error_codes; i++)
        json_object_set_new(o, s->error_codes[i].code, json_integer(s->error_codes[i].count));
    return o;
}

static json_t *slo_json(const struct mw_slo_attainment *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "availability", number_or_null(a->availability));
    json_object_set_new(o, "availability_target", json_real(a->availability_target));
    json_object_set_new(o, "availability_met", verdict_json(a->availability_met));
    json_object_set_new(o, "latency_attainment", number_or_null(a->latency_attainment));
    json_object_set_new(o, "latency_threshold_ms", json_integer(a->latency_threshold_ms));
    json_object_set_new(o, "latency_target", json_real(a->latency_target));
    json_object_set_new(o, "latency_met", verdict_json(a->latency_met));
    return o;
}

static json_t *cost_json(const struct mw_cost_signals *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "cpu_core_seconds", json_real(c->cpu_core_seconds));
    json_object_set_new(o, "cpu_core_seconds_billed", json_real(c->cpu_core_seconds_billed));
    json_object_set_new(o, "memory_gib_seconds", json_real(c->memory_gib_seconds));
    json_object_set_new(o, "memory_gib_seconds_billed", json_real(c->memory_gib_seconds_billed));
    json_object_set_new(o, "gpu_seconds", json_real(c->gpu_seconds));
    json_object_set_new(o, "pod_seconds", json_real(c->pod_seconds));
    json_object_set_new(o, "idle_share", number_or_null(c->idle_share));
    json_object_set_new(o, "total", json_real(c->total));
    json_object_set_new(o, "per_1k_predictions", number_or_null(c->per_1k_predictions));
    return o;
}

static json_t *binary_json(const struct mw_perf_signals *p)
{
    if (!p->has_binary)
        return json_null();
    const struct mw_perf_binary_metrics *m = &p->binary;
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)m->n));
    json_object_set_new(o, "accuracy", number_or_null(m->accuracy));
    json_object_set_new(o, "precision", number_or_null(m->precision));
    json_object_set_new(o, "recall", number_or_null(m->recall));
    json_object_set_new(o, "f1", number_or_null(m->f1));
    json_object_set_new(o, "log_loss", number_or_null(m->log_loss));
    json_object_set_new(o, "roc_auc", number_or_null(m->roc_auc));
    return o;
}

static json_t *multiclass_json(const struct mw_perf_signals *p)
{
    if (!p->has_multiclass)
        return json_null();
    const struct mw_perf_multiclass_metrics *m = &p->multiclass;
    json_t *classes = json_object();
    for (uint32_t i = 0; i < p->n_classes; i++) {
        const struct mw_perf_class_signal *c = &p->classes[i];
        json_object_set_new(
            classes, c->name,
            json_pack("{s:o, s:o, s:o, s:I}", "precision", number_or_null(c->prf.precision),
                      "recall", number_or_null(c->prf.recall), "f1", number_or_null(c->prf.f1),
                      "support", (json_int_t)c->support));
    }
    return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:b, s:o}", "n", (json_int_t)m->n, "accuracy",
                     number_or_null(m->accuracy), "macro_f1", number_or_null(m->macro.f1),
                     "macro_precision", number_or_null(m->macro.precision), "macro_recall",
                     number_or_null(m->macro.recall), "weighted_f1", number_or_null(m->weighted.f1),
                     "approximate", m->overflowed, "per_class", classes);
}

static json_t *regression_json(const struct mw_perf_signals *p)
{
    if (!p->has_regression)
        return json_null();
    const struct mw_perf_regression_metrics *m = &p->regression;
    return json_pack("{s:I, s:o, s:o, s:o, s:o}", "n", (json_int_t)m->n, "mae",
                     number_or_null(m->mae), "rmse", number_or_null(m->rmse), "mape",
                     number_or_null(m->mape), "mean_error", number_or_null(m->mean_error));
}

static json_t *performance_json(const struct mw_perf_signals *p)
{
    const struct mw_perf_coverage_metrics *l = &p->labels;
    json_t *labels =
        json_pack("{s:I, s:o, s:o, s:o, s:o}", "labelled", (json_int_t)l->n_labelled, "coverage",
                  number_or_null(l->coverage), "mean_delay_ms", number_or_null(l->mean_delay_ms),
                  "p50_delay_ms", number_or_null(l->p50_delay_ms), "p99_delay_ms",
                  number_or_null(l->p99_delay_ms));
    return json_pack("{s:o, s:o, s:o, s:o}", "labels", labels, "binary", binary_json(p),
                     "multiclass", multiclass_json(p), "regression", regression_json(p));
}

/* One window's service, SLO, cost and performance signals (a new reference), or NULL when out
 * of memory. */
static json_t *window_json(const struct mw_window *w, const struct mw_aggregator_config *cfg)
{
    struct mw_service_signals service;
    struct mw_slo_attainment slo;
    struct mw_cost_signals cost;
    struct mw_perf_signals *perf = mw_malloc(sizeof *perf);
    if (!perf || mw_service_signals_compute(w, &service) != 0 ||
        mw_perf_signals_compute(w, perf) != 0) {
        mw_free(perf);
        return NULL;
    }
    mw_slo_attainment_compute(w, cfg, &slo);
    mw_cost_signals_compute(w, cfg, &cost);
    json_t *o = json_object();
    json_object_set_new(o, "start_ms", json_integer(w->start_ms));
    json_object_set_new(o, "end_ms", json_integer(w->start_ms + w->width_ms));
    json_object_set_new(o, "version", json_text(w->version));
    json_object_set_new(o, "final", json_boolean(w->final));
    const struct {
        const char *name;
        int64_t value;
    } counts[] = {{"count", service.count},         {"errors", service.errors},
                  {"records", service.records},     {"feedback", service.feedback},
                  {"tokens_in", service.tokens_in}, {"tokens_out", service.tokens_out},
                  {"late", service.late},           {"late_records", service.late_records}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        json_object_set_new(o, counts[i].name, json_integer(counts[i].value));
    json_object_set_new(o, "weighted_records", json_real(service.weighted_records));
    json_object_set_new(o, "error_rate", number_or_null(service.error_rate));
    json_object_set_new(o, "errors_by_code", errors_by_code_json(&service));
    json_object_set_new(o, "latency_us", latency_json(&service));
    json_object_set_new(o, "slo", slo_json(&slo));
    json_object_set_new(o, "cost", cost_json(&cost));
    json_object_set_new(o, "performance", performance_json(perf));
    mw_free(perf);
    return o;
}

static void set_number(json_t *o, const char *key, double v)
{
    json_object_set_new(o, key, number_or_null(v));
}

static json_t *drift_feature_json(const struct mw_drift_feature_signal *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "feature", json_text(s->feature));
    json_object_set_new(o, "type", json_string(s->numeric ? "numeric" : "categorical"));
    json_object_set_new(o, "weighted_count", json_real(s->count));
    json_object_set_new(o, "observed", json_integer((json_int_t)llround(s->observed)));
    json_object_set_new(o, "min_values", json_integer((json_int_t)s->min_values));
    set_number(o, "missing_rate", s->missing_rate);
    set_number(o, "type_violation_rate", s->type_violation_rate);
    set_number(o, "psi", s->psi);
    set_number(o, "js_distance", s->js_distance);
    if (s->numeric) {
        set_number(o, "ks", s->ks);
        set_number(o, "ks_p_value", s->ks_p_value);
        set_number(o, "wasserstein", s->wasserstein);
        set_number(o, "wasserstein_normed", s->wasserstein_normed);
        set_number(o, "out_of_range_rate", s->out_of_range_rate);
        set_number(o, "below_range_rate", s->below_range_rate);
        set_number(o, "above_range_rate", s->above_range_rate);
    } else {
        json_object_set_new(o, "chi2_statistic",
                            isinf(s->chi2_statistic) ? json_string("inf")
                                                     : number_or_null(s->chi2_statistic));
        set_number(o, "chi2_p_value", s->chi2_p_value);
        set_number(o, "unseen_share", s->unseen_share);
    }
    json_object_set_new(o, "basis",
                        s->basis == MW_DRIFT_BASIS_PROFILE_GRID ? json_string("profile_grid")
                        : s->basis == MW_DRIFT_BASIS_SKETCH     ? json_string("sketch")
                                                                : json_null());
    json_object_set_new(o, "verdict", json_string(mw_drift_verdict_name(s->verdict)));
    return o;
}

/* Every feature's drift: an array of objects named as the struct's members. */
static json_t *drift_json(const struct mw_drift_signals *s)
{
    json_t *list = json_array();
    for (size_t i = 0; i < s->n_features; i++)
        json_array_append_new(list, drift_feature_json(&s->features[i]));
    return list;
}

/* ---- GET /api/v1/models --------------------------------------------------------------------- */

static void on_models_reply(redisReply *reply, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    mw_api_respond_data(ex, json_pack("{s:o}", "models", sorted_strings(reply)));
}

static void list_models(struct mw_api *api, struct mw_http_exchange *ex)
{
    const char *argv[] = {"SMEMBERS", MW_SCHEMA_MODELS_KEY};
    if (mw_store_commandv(api->store, on_models_reply, ex, 2, argv))
        mw_http_respond_error(ex, 503, "Redis unavailable");
}

/* ---- GET /api/v1/models/{m}/windows --------------------------------------------------------- */

/* One request in flight: what its answer needs. */
struct request {
    struct mw_api *api;
    struct mw_http_exchange *ex;
};

static struct request *new_request(struct mw_api *api, struct mw_http_exchange *ex)
{
    struct request *rq = mw_calloc(1, sizeof *rq);
    if (rq)
        *rq = (struct request){.api = api, .ex = ex};
    else
        mw_http_respond_error(ex, 500, "out of memory");
    return rq;
}

static void on_windows(int rc, const struct mw_window_set *set, void *arg)
{
    struct request *rq = arg;
    if (rc) {
        mw_http_respond_error(rq->ex, 503, "Redis unavailable");
        mw_free(rq);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < set->n; i++) {
        json_t *window = window_json(&set->windows[i], rq->api->cfg);
        if (!window) {
            json_decref(list);
            mw_http_respond_error(rq->ex, 500, "out of memory");
            mw_free(rq);
            return;
        }
        json_array_append_new(list, window);
    }
    mw_api_respond_data(rq->ex,
                        json_pack("{s:s, s:I, s:I, s:o}", "model", set->model, "resolution_s",
                                  (json_int_t)(set->width_ms / 1000), "watermark_ms",
                                  (json_int_t)set->watermark_ms, "windows", list));
    mw_free(rq);
}

static const char *parse_windows_query(struct mw_api *api, const char *query,
                                       struct mw_window_range *q, char *version,
                                       size_t version_size)
{
    int64_t now = mw_clock_wall_ms();
    int64_t limit = DEFAULT_LIMIT;
    q->from_ms = now - DAY_MS;
    q->to_ms = now;
    const char *bad = parse_resolution(api, query, api->cfg->windows.fine_ms, &q->width_ms);
    if (bad)
        return bad;
    if (mw_api_time_param(query, "from", &q->from_ms) == MW_EINVAL ||
        mw_api_time_param(query, "to", &q->to_ms) == MW_EINVAL)
        return "from/to: " MW_API_TIME_FORMS;
    if (q->from_ms > q->to_ms)
        return "from/to: from must not be after to";
    if (parse_int_param(query, "limit", &limit) || limit < 1 || limit > MAX_LIMIT)
        return "limit: an integer from 1 to 10000";
    q->limit = (size_t)limit;
    int rc = mw_http_query_param(query, "version", version, version_size);
    if (rc == MW_ETOOBIG)
        return "version: too long";
    q->version = rc == 0 ? version : NULL;
    return NULL;
}

static void list_windows(struct mw_api *api, struct mw_http_exchange *ex, const char *model,
                         const char *query)
{
    char version[MW_VERSION_MAX + 1];
    struct mw_window_range q = {.model = model};
    const char *bad = parse_windows_query(api, query, &q, version, sizeof version);
    if (bad) {
        mw_http_respond_error(ex, 400, bad);
        return;
    }
    struct request *rq = new_request(api, ex);
    if (rq && mw_window_read_range(api->store, api->cfg, &q, on_windows, rq) != 0) {
        mw_free(rq);
        mw_http_respond_error(ex, 503, "Redis unavailable");
    }
}

/* ---- GET /api/v1/models/{m}/drift ----------------------------------------------------------- */

struct drift_query {
    struct mw_api *api;
    struct mw_http_exchange *ex;
    char version[MW_VERSION_MAX + 1];
    bool has_version;
    int64_t width_ms, start_ms;
    bool has_start;
};

static void respond_drift(struct drift_query *q, const struct mw_window *w,
                          const struct mw_profile *profile)
{
    struct mw_drift_signals ds;
    if (mw_drift_signals_compute(w, profile, q->api->cfg, &ds) != 0) {
        mw_http_respond_error(q->ex, 503, "out of memory computing drift");
        return;
    }
    json_t *features = drift_json(&ds);
    const char *verdict = mw_drift_verdict_name(ds.verdict);
    mw_api_respond_data(q->ex, json_pack("{s:s, s:o, s:I, s:I, s:I, s:b, s:s, s:s, s:o}", "model",
                                         w->model, "version", json_text(w->version), "resolution_s",
                                         (json_int_t)(w->width_ms / 1000), "start_ms",
                                         (json_int_t)w->start_ms, "end_ms",
                                         (json_int_t)(w->start_ms + w->width_ms), "final", w->final,
                                         "profile_version", profile->version, "verdict", verdict,
                                         "features", features));
    mw_drift_signals_free(&ds);
}

static const struct mw_window_profile *profile_of(const struct mw_window_set *set,
                                                  const char *version)
{
    for (size_t i = 0; i < set->n_profiles; i++)
        if (strcmp(set->profiles[i].version, version) == 0)
            return &set->profiles[i];
    return NULL;
}

/* The answer, in the order the checks have always been made: a window at all, the version's
 * profile, the window's data, the profile's validity. (Without a version, a newest index entry
 * whose hash has expired names a version whose profile is not looked at: "no data".) */
static void answer_drift(struct drift_query *q, const struct mw_window_set *set)
{
    const char *version = q->has_version ? q->version : set->n ? set->windows[0].version : NULL;
    const struct mw_window_profile *p = version ? profile_of(set, version) : NULL;
    if (!q->has_start && set->n == 0 && set->n_missing == 0)
        mw_http_respond_error(q->ex, 404, "no window for this model and version");
    else if (version && (!p || (!p->profile && !p->error)))
        mw_http_respond_error(q->ex, 404,
                              "no reference profile for this model version: push "
                              "one with modelwatch-ctl profile push");
    else if (set->n == 0)
        mw_http_respond_error(q->ex, 404, "no data in this window");
    else if (!p->profile)
        mw_http_respond_error(q->ex, 500, p->error);
    else
        respond_drift(q, &set->windows[0], p->profile);
}

static void on_drift(int rc, const struct mw_window_set *set, void *arg)
{
    struct drift_query *q = arg;
    if (rc)
        mw_http_respond_error(q->ex, 503, "Redis unavailable");
    else
        answer_drift(q, set);
    mw_free(q);
}

/* With ?window=: that window of that version. Without: the newest window (closed or not) of
 * the requested version, or of any. */
static void get_drift(struct mw_api *api, struct mw_http_exchange *ex, const char *model,
                      const char *query)
{
    struct drift_query *q = mw_calloc(1, sizeof *q);
    if (!q) {
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    q->api = api;
    q->ex = ex;
    const char *bad =
        parse_resolution(api, query, mw_drift_default_width_ms(api->cfg), &q->width_ms);
    if (!bad && !mw_drift_kept_at(api->cfg, q->width_ms))
        bad = "resolution: drift is not kept at this window width (drift.windows)";
    int vrc = mw_http_query_param(query, "version", q->version, sizeof q->version);
    q->has_version = vrc == 0;
    q->has_start = mw_http_query_param(query, "window", (char[2]){0}, 2) != MW_ENOTFOUND;
    if (!bad && vrc == MW_ETOOBIG)
        bad = "version: too long";
    if (!bad && q->has_start &&
        (mw_api_time_param(query, "window", &q->start_ms) != 0 || q->start_ms % q->width_ms != 0))
        bad = "window: the start of a window (" MW_API_TIME_FORMS ")";
    if (!bad && q->has_start && !q->has_version)
        bad = "version: required together with window";
    if (bad) {
        mw_http_respond_error(ex, 400, bad);
        mw_free(q);
        return;
    }
    struct mw_window_range range = {.model = model,
                                    .version = q->has_version ? q->version : NULL,
                                    .width_ms = q->width_ms,
                                    .from_ms = q->has_start ? q->start_ms : INT64_MIN,
                                    .to_ms = q->has_start ? q->start_ms : INT64_MAX,
                                    .newest_first = true,
                                    .scan_max = q->has_start ? 0 : DRIFT_SCAN_MAX,
                                    .limit = 1,
                                    .flags = MW_WINDOW_READ_PROFILE};
    if (mw_window_read_range(api->store, api->cfg, &range, on_drift, q) != 0) {
        mw_http_respond_error(ex, 503, "Redis unavailable");
        mw_free(q);
    }
}

/* ---- GET /api/v1/models/{m}/slo: multi-window burn rates ------------------------------------ */

struct slo_query {
    struct mw_api *api;
    struct mw_http_exchange *ex;
    char model[MW_MODEL_NAME_MAX + 1];
    char version[MW_VERSION_MAX + 1];
    bool has_version;
    size_t pending;
    bool failed;
    struct mw_slo_burn burn;
};

static json_t *real_or_null(double v)
{
    return v == v ? json_real(v) : json_null();
}

static void finish_slo(struct slo_query *q)
{
    if (q->failed) {
        mw_http_respond_error(q->ex, 503, "Redis unavailable");
        mw_free(q);
        return;
    }
    struct mw_slo_burn_rates rates;
    mw_slo_burn_rates_compute(&q->burn, q->api->cfg->slo.availability, &rates);
    json_t *ratios = json_object(), *pairs = json_array();
    for (size_t i = 0; i < MW_SLO_N_LOOKBACKS; i++)
        json_object_set_new(ratios, mw_slo_lookbacks[i].name, real_or_null(rates.error_ratio[i]));
    for (size_t i = 0; i < MW_SLO_N_BURN_PAIRS; i++) {
        const struct mw_slo_burn_pair *p = &mw_slo_burn_pairs[i];
        json_array_append_new(
            pairs, json_pack("{s:s, s:s, s:f, s:o, s:o, s:b}", "long", p->long_name, "short",
                             p->short_name, "threshold", p->threshold, "long_burn_rate",
                             real_or_null(rates.pairs[i].long_burn_rate), "short_burn_rate",
                             real_or_null(rates.pairs[i].short_burn_rate), "burning",
                             rates.pairs[i].burning));
    }
    mw_api_respond_data(q->ex, json_pack("{s:s, s:o, s:I, s:f, s:o, s:o}", "model", q->model,
                                         "version", json_text(q->has_version ? q->version : NULL),
                                         "at_ms", (json_int_t)q->burn.at_ms, "availability_target",
                                         q->api->cfg->slo.availability, "error_rate", ratios,
                                         "burn_rates", pairs));
    mw_free(q);
}

static void on_slo_windows(int rc, const struct mw_window_set *set, void *arg)
{
    struct slo_query *q = arg;
    bool fine = !rc && set->width_ms == q->api->cfg->windows.fine_ms;
    q->failed |= rc != 0;
    for (size_t i = 0; !rc && i < set->n; i++)
        mw_slo_burn_add(&q->burn, set->windows[i].start_ms, fine, (double)set->windows[i].count,
                        (double)set->windows[i].errors);
    if (--q->pending == 0)
        finish_slo(q);
}

static void get_slo(struct mw_api *api, struct mw_http_exchange *ex, const char *model,
                    const char *query)
{
    struct slo_query *q = mw_calloc(1, sizeof *q);
    if (!q) {
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    q->api = api;
    q->ex = ex;
    snprintf(q->model, sizeof q->model, "%s", model);
    int64_t at_ms = mw_clock_wall_ms();
    int vrc = mw_http_query_param(query, "version", q->version, sizeof q->version);
    q->has_version = vrc == 0;
    const char *bad = vrc == MW_ETOOBIG ? "version: too long"
                      : mw_api_time_param(query, "at", &at_ms) == MW_EINVAL
                          ? "at: " MW_API_TIME_FORMS
                          : NULL;
    if (bad) {
        mw_free(q);
        mw_http_respond_error(ex, 400, bad);
        return;
    }
    mw_slo_burn_init(&q->burn, at_ms);
    /* The windows that start in the lookbacks: fine ones for the short, coarse for the long. */
    struct mw_window_range fine = {.model = model,
                                   .version = q->has_version ? q->version : NULL,
                                   .width_ms = api->cfg->windows.fine_ms,
                                   .from_ms = at_ms - MW_SLO_FINE_LOOKBACK_MAX_MS,
                                   .to_ms = at_ms - 1,
                                   .flags = MW_WINDOW_READ_COUNTS};
    struct mw_window_range coarse = fine;
    coarse.width_ms = api->cfg->windows.coarse_ms;
    coarse.from_ms = at_ms - MW_SLO_LOOKBACK_MAX_MS;
    q->pending = 2;
    if (mw_window_read_range(api->store, api->cfg, &fine, on_slo_windows, q) != 0) {
        mw_free(q);
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    if (mw_window_read_range(api->store, api->cfg, &coarse, on_slo_windows, q) != 0) {
        q->failed = true; /* the fine read's answer responds */
        q->pending--;
    }
}

/* ---- profiles ------------------------------------------------------------------------------- */

static void on_profile_versions(redisReply *reply, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    mw_api_respond_data(ex, json_pack("{s:o}", "versions", sorted_strings(reply)));
}

static void on_profile_document(redisReply *reply, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        mw_http_respond_error(ex, 503, "Redis unavailable");
    else if (reply->type != REDIS_REPLY_STRING)
        mw_http_respond_error(ex, 404, "no profile for this model version");
    else
        mw_api_respond_raw_data(ex, reply->str, reply->len);
}

static void on_profile_stored(int rc, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (rc)
        mw_http_respond_error(ex, 503, "Redis unavailable: profile not stored");
    else
        mw_api_respond_data(ex, json_pack("{s:b}", "stored", 1));
}

static void put_profile(struct mw_api *api, struct mw_http_exchange *ex, const char *model,
                        const char *version, const struct mw_http_request *req)
{
    char err[300], key[MW_SCHEMA_KEY_MAX], set_key[MW_SCHEMA_KEY_MAX];
    struct mw_profile *p = NULL;
    if (!req->body || mw_profile_parse(req->body, req->body_len, &p, err, sizeof err) != 0) {
        mw_http_respond_error(ex, 400, req->body ? err : "a profile document is required");
        return;
    }
    if (strcmp(p->model, model) != 0 || strcmp(p->version, version) != 0) {
        mw_profile_free(p);
        mw_http_respond_error(ex, 400, "model/version: the document's must match the path");
        return;
    }
    if (mw_schema_profile_key(key, sizeof key, model, version) ||
        mw_schema_profiles_key(set_key, sizeof set_key, model)) {
        mw_profile_free(p);
        mw_http_respond_error(ex, 400, "model/version: too long");
        return;
    }
    struct mw_redis_cmd cmds[2];
    mw_redis_cmd_init(&cmds[0]);
    mw_redis_cmd_init(&cmds[1]);
    int rc = mw_redis_cmd_add(&cmds[0], "SET");
    rc = rc ? rc : mw_redis_cmd_add(&cmds[0], key);
    rc = rc ? rc : mw_redis_cmd_addf(&cmds[0], "%.*s", (int)req->body_len, req->body);
    rc = rc ? rc : mw_redis_cmd_add(&cmds[1], "SADD");
    rc = rc ? rc : mw_redis_cmd_add(&cmds[1], set_key);
    rc = rc ? rc : mw_redis_cmd_add(&cmds[1], version);
    rc = rc ? rc : mw_store_exec(api->store, cmds, 2, on_profile_stored, ex);
    mw_redis_cmd_free(&cmds[0]);
    mw_redis_cmd_free(&cmds[1]);
    if (rc) {
        mw_profile_free(p);
        mw_http_respond_error(ex, 503, "Redis unavailable: profile not stored");
        return;
    }
    MW_LOG_INFO("api", "profile stored", "model=%s version=%s features=%zu", model, version,
                p->n_features);
    mw_profile_cache_put(api->profiles, p);
}

static void profiles(struct mw_api *api, struct mw_http_exchange *ex,
                     const struct mw_http_request *req, const char *model, const char *version)
{
    char key[MW_SCHEMA_KEY_MAX];
    bool put = strcmp(req->method, "PUT") == 0;
    if (version && !mw_version_valid(version)) {
        mw_http_respond_error(ex, 400, "version: at most 128 printable characters");
        return;
    }
    if (put && version) {
        put_profile(api, ex, model, version, req);
        return;
    }
    if (put) {
        mw_http_respond_error(ex, 405, "PUT needs a version: /profiles/{version}");
        return;
    }
    int rc;
    if (version) {
        rc = mw_schema_profile_key(key, sizeof key, model, version);
        const char *argv[] = {"GET", key};
        rc = rc ? rc : mw_store_commandv(api->store, on_profile_document, ex, 2, argv);
    } else {
        rc = mw_schema_profiles_key(key, sizeof key, model);
        const char *argv[] = {"SMEMBERS", key};
        rc = rc ? rc : mw_store_commandv(api->store, on_profile_versions, ex, 2, argv);
    }
    if (rc)
        mw_http_respond_error(ex, 503, "Redis unavailable");
}

/* ---- routing -------------------------------------------------------------------------------- */

/* One request for one model, as its path names it, while the model is looked up. */
struct model_request {
    struct mw_api *api;
    struct mw_http_exchange *ex;
    const struct mw_http_request *req; /* the exchange's: valid until it is answered */
    char model[MW_MODEL_NAME_MAX + 1];
    char what[32];
    const char *version; /* in req->path after /profiles/, or NULL */
    bool known;
};

static void dispatch_model(struct model_request *mr)
{
    struct mw_api *api = mr->api;
    const char *what = mr->what, *query = mr->req->query;
    if (strcmp(what, "profiles") == 0)
        profiles(api, mr->ex, mr->req, mr->model, mr->version);
    else if (strcmp(what, "windows") == 0)
        list_windows(api, mr->ex, mr->model, query);
    else if (strcmp(what, "drift") == 0)
        get_drift(api, mr->ex, mr->model, query);
    else
        get_slo(api, mr->ex, mr->model, query);
}

static void on_model_lookup(size_t i, const redisReply *reply, void *arg)
{
    (void)i;
    struct model_request *mr = arg;
    mr->known |= reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0;
}

static void on_model_looked_up(int rc, void *arg)
{
    struct model_request *mr = arg;
    if (rc)
        mw_http_respond_error(mr->ex, 503, "Redis unavailable");
    else if (!mr->known)
        mw_http_respond_error(mr->ex, 404,
                              "model: unknown (no telemetry applied and no profile stored)");
    else
        dispatch_model(mr);
    mw_free(mr);
}

/* A model is known once a batch of it has been applied (the models set) or a profile of it is
 * stored: either is one pipelined round trip before the request proper. */
static void look_up_model(struct model_request *mr)
{
    char profiles_key[MW_SCHEMA_KEY_MAX];
    struct mw_redis_cmd cmds[2];
    mw_redis_cmd_init(&cmds[0]);
    mw_redis_cmd_init(&cmds[1]);
    int rc = mw_schema_profiles_key(profiles_key, sizeof profiles_key, mr->model);
    rc = rc ? rc : mw_redis_cmd_add(&cmds[0], "SISMEMBER");
    rc = rc ? rc : mw_redis_cmd_add(&cmds[0], MW_SCHEMA_MODELS_KEY);
    rc = rc ? rc : mw_redis_cmd_add(&cmds[0], mr->model);
    rc = rc ? rc : mw_redis_cmd_add(&cmds[1], "EXISTS");
    rc = rc ? rc : mw_redis_cmd_add(&cmds[1], profiles_key);
    rc = rc ? rc
            : mw_store_exec_each(mr->api->store, cmds, 2, on_model_lookup, on_model_looked_up, mr);
    mw_redis_cmd_free(&cmds[0]);
    mw_redis_cmd_free(&cmds[1]);
    if (rc) {
        mw_http_respond_error(mr->ex, rc == MW_ENOMEM ? 500 : 503,
                              rc == MW_ENOMEM ? "out of memory" : "Redis unavailable");
        mw_free(mr);
    }
}

/* Why a request under /api/v1/models/{model}/ has no handler (NULL when it has one), and the
 * status to answer: 404 for a path that names nothing, 405 for a method a path does not take. */
static const char *model_route_error(const struct model_request *mr, bool get, int *status)
{
    static const char *const get_only[] = {"windows", "drift", "slo"};
    *status = 404;
    if (strcmp(mr->what, "profiles") == 0)
        return NULL; /* GET list or document, PUT document: profiles() answers each */
    for (size_t i = 0; i < sizeof get_only / sizeof get_only[0]; i++) {
        if (strcmp(mr->what, get_only[i]) == 0 && !mr->version) {
            *status = 405;
            return get ? NULL : "GET only";
        }
    }
    return "no such resource";
}

/* /api/v1/models[/{model}[/{what}[/{version}]]] */
static void on_models(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    struct mw_api *api = arg;
    const char *rest = req->path + strlen(MODELS_PREFIX);
    bool get = strcmp(req->method, "GET") == 0;
    if (*rest == '\0' || strcmp(rest, "/") == 0) {
        if (get)
            list_models(api, ex);
        else
            mw_http_respond_error(ex, 405, "GET only");
        return;
    }
    struct model_request *mr = mw_calloc(1, sizeof *mr);
    if (!mr) {
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    *mr = (struct model_request){.api = api, .ex = ex, .req = req};
    const char *slash = strchr(rest + 1, '/');
    size_t len = slash ? (size_t)(slash - rest - 1) : strlen(rest + 1);
    int status = 404;
    const char *bad = len == 0 || len > MW_MODEL_NAME_MAX ? "no such resource" : NULL;
    if (!bad) {
        snprintf(mr->model, sizeof mr->model, "%.*s", (int)len, rest + 1);
        const char *tail = slash ? slash + 1 : "";
        const char *slash2 = strchr(tail, '/');
        size_t what_len = slash2 ? (size_t)(slash2 - tail) : strlen(tail);
        snprintf(mr->what, sizeof mr->what, "%.*s", (int)what_len, tail);
        mr->version = slash2 ? slash2 + 1 : NULL;
        if (!mw_model_name_valid(mr->model)) {
            status = 400;
            bad = "model: 1 to 128 characters from [A-Za-z0-9._-]";
        } else if (what_len >= sizeof mr->what) {
            bad = "no such resource";
        } else {
            bad = model_route_error(mr, get, &status);
        }
    }
    if (bad) {
        mw_http_respond_error(ex, status, bad);
        mw_free(mr);
    } else if (strcmp(req->method, "PUT") == 0) {
        /* A profile is pushed before its model's first prediction: the model need not be known. */
        dispatch_model(mr);
        mw_free(mr);
    } else {
        look_up_model(mr);
    }
}

/* The API's own description, as it is: tools read it without an envelope. */
static void on_openapi(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    (void)req;
    (void)arg;
    mw_http_respond(ex, 200, "application/json", MW_OPENAPI_DOCUMENT, MW_OPENAPI_DOCUMENT_LEN);
}

int mw_api_create(struct mw_http_server *srv, const struct mw_aggregator_config *cfg,
                  struct mw_store *store, struct mw_profile_cache *profiles, struct mw_api **out)
{
    struct mw_api *api = mw_calloc(1, sizeof *api);
    if (!api)
        return MW_ENOMEM;
    *api = (struct mw_api){.cfg = cfg, .store = store, .profiles = profiles};
    int rc = mw_http_server_route(srv, "GET", MODELS_PREFIX, true, on_models, api);
    rc = rc ? rc : mw_http_server_route(srv, "PUT", MODELS_PREFIX, true, on_models, api);
    rc = rc ? rc : mw_http_server_route(srv, "GET", OPENAPI_PATH, false, on_openapi, NULL);
    if (rc) {
        mw_free(api);
        return rc;
    }
    *out = api;
    return 0;
}

void mw_api_destroy(struct mw_api *api)
{
    mw_free(api);
}
