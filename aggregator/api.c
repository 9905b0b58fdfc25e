/* api.c — /api/v1 handlers: Redis reads turned into JSON (layout in window_apply.h). */
#include "api.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "names.h"
#include "signals.h"
#include "signals_drift.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MODELS_PREFIX "/api/v1/models"
#define DEFAULT_LIMIT 1000
#define MAX_LIMIT 10000
#define DAY_MS 86400000LL
#define KEY_BYTES 700

struct mw_api {
    const struct mw_aggregator_config *cfg;
    struct mw_store *store;
    struct mw_profile_cache *profiles;
};

/* ---- helpers -------------------------------------------------------------------------------- */

static void respond_json(struct mw_http_exchange *ex, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(doc);
    if (!text) {
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    mw_http_respond(ex, status, "application/json", text, strlen(text));
    free(text);
}

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
        json_array_append_new(list, json_string(names[i]));
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

static bool window_final(const struct mw_api *api, int64_t watermark, int64_t start, int64_t width)
{
    return watermark >= start + width + api->cfg->windows.allowed_lateness_ms;
}

static void window_fields_of(const redisReply *hash, struct mw_window_fields *w, const char **buf)
{
    size_t n = hash->elements / 2;
    for (size_t i = 0; i < n; i++) {
        buf[i] = hash->element[2 * i]->str;
        buf[n + i] = hash->element[2 * i + 1]->str;
    }
    w->n = n;
    w->names = buf;
    w->values = buf + n;
}

static int64_t reply_int(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    if (r && r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    return 0;
}

/* ---- GET /api/v1/models --------------------------------------------------------------------- */

static void on_models_reply(redisReply *reply, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    respond_json(ex, 200, json_pack("{s:o}", "models", sorted_strings(reply)));
}

static void list_models(struct mw_api *api, struct mw_http_exchange *ex)
{
    const char *argv[] = {"SMEMBERS", "mw:models"};
    if (mw_store_commandv(api->store, on_models_reply, ex, 2, argv))
        mw_http_respond_error(ex, 503, "Redis unavailable");
}

/* ---- GET /api/v1/models/{m}/windows --------------------------------------------------------- */

struct windows_query {
    struct mw_api *api;
    struct mw_http_exchange *ex;
    char model[MW_MODEL_NAME_MAX + 1];
    char version[MW_VERSION_MAX + 1];
    bool has_version;
    int64_t width_ms, from_ms, to_ms, watermark_ms;
    long limit;
    size_t n_windows, pending;
    bool failed;
    json_t **windows; /* n_windows slots, filled as replies come */
};

struct window_slot {
    struct windows_query *q;
    size_t index;
    int64_t start_ms;
    char *version;
};

static void free_query(struct windows_query *q)
{
    for (size_t i = 0; i < q->n_windows; i++)
        json_decref(q->windows[i]);
    mw_free(q->windows);
    mw_free(q);
}

static void finish_windows(struct windows_query *q)
{
    if (q->failed) {
        mw_http_respond_error(q->ex, 503, "Redis unavailable");
        free_query(q);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < q->n_windows; i++)
        if (q->windows[i])
            json_array_append(list, q->windows[i]);
    respond_json(q->ex, 200,
                 json_pack("{s:s, s:I, s:I, s:o}", "model", q->model, "resolution_s",
                           (json_int_t)(q->width_ms / 1000), "watermark_ms",
                           (json_int_t)q->watermark_ms, "windows", list));
    free_query(q);
}

static void on_window_reply(redisReply *reply, void *arg)
{
    struct window_slot *slot = arg;
    struct windows_query *q = slot->q;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        q->failed = true;
    } else if (reply->elements > 0) { /* an expired window leaves an index entry, no hash */
        const char **buf = mw_calloc(reply->elements + 1, sizeof *buf);
        if (buf) {
            struct mw_window_fields w;
            window_fields_of(reply, &w, buf);
            q->windows[slot->index] = mw_signals_window_json(
                &w, slot->start_ms, q->width_ms, slot->version,
                window_final(q->api, q->watermark_ms, slot->start_ms, q->width_ms), q->api->cfg);
            mw_free(buf);
        }
    }
    mw_free(slot->version);
    mw_free(slot);
    if (--q->pending == 0)
        finish_windows(q);
}

static int fetch_window(struct windows_query *q, size_t index, int64_t start_ms,
                        const char *version)
{
    struct window_slot *slot = mw_calloc(1, sizeof *slot);
    char key[KEY_BYTES];
    if (!slot)
        return MW_ENOMEM;
    *slot = (struct window_slot){
        .q = q, .index = index, .start_ms = start_ms, .version = mw_strdup(version)};
    snprintf(key, sizeof key, "mw:{%s}:w:%" PRId64 ":%" PRId64 ":%s", q->model, q->width_ms / 1000,
             start_ms, version);
    const char *argv[] = {"HGETALL", key};
    q->pending++;
    int rc = mw_store_commandv(q->api->store, on_window_reply, slot, 2, argv);
    if (rc) {
        q->pending--;
        mw_free(slot->version);
        mw_free(slot);
    }
    return rc;
}

/* Index members are "<start_ms>:<version>": order by start, then version. */
static int compare_members(const void *a, const void *b)
{
    const redisReply *ra = *(const redisReply *const *)a, *rb = *(const redisReply *const *)b;
    long long sa = strtoll(ra->str, NULL, 10), sb = strtoll(rb->str, NULL, 10);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return strcmp(ra->str, rb->str);
}

static void on_watermark_reply(redisReply *reply, void *arg)
{
    struct windows_query *q = arg;
    q->watermark_ms = reply_int(reply);
}

static void on_index_reply(redisReply *reply, void *arg)
{
    struct windows_query *q = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        q->failed = true;
        finish_windows(q);
        return;
    }
    redisReply **members = (redisReply **)reply->element;
    qsort(members, reply->elements, sizeof *members, compare_members);
    q->windows = mw_calloc(reply->elements + 1, sizeof *q->windows);
    if (!q->windows) {
        q->failed = true;
        finish_windows(q);
        return;
    }
    q->pending = 1; /* held until every fetch is sent */
    for (size_t i = 0; i < reply->elements && q->n_windows < (size_t)q->limit; i++) {
        char *colon = strchr(members[i]->str, ':');
        if (!colon || (q->has_version && strcmp(colon + 1, q->version) != 0))
            continue;
        size_t slot = q->n_windows++;
        if (fetch_window(q, slot, strtoll(members[i]->str, NULL, 10), colon + 1) != 0)
            q->failed = true;
    }
    if (--q->pending == 0)
        finish_windows(q);
}

static const char *parse_windows_query(struct windows_query *q, const char *query)
{
    int64_t now = mw_clock_wall_ms();
    int64_t limit = DEFAULT_LIMIT;
    q->from_ms = now - DAY_MS;
    q->to_ms = now;
    const char *bad = parse_resolution(q->api, query, q->api->cfg->windows.fine_ms, &q->width_ms);
    if (bad)
        return bad;
    if (parse_int_param(query, "from", &q->from_ms) || parse_int_param(query, "to", &q->to_ms) ||
        q->from_ms > q->to_ms)
        return "from/to: epoch milliseconds with from <= to";
    if (parse_int_param(query, "limit", &limit) || limit < 1 || limit > MAX_LIMIT)
        return "limit: an integer from 1 to 10000";
    q->limit = (long)limit;
    int rc = mw_http_query_param(query, "version", q->version, sizeof q->version);
    if (rc == MW_ETOOBIG)
        return "version: too long";
    q->has_version = rc == 0;
    return NULL;
}

static void list_windows(struct mw_api *api, struct mw_http_exchange *ex, const char *model,
                         const char *query)
{
    struct windows_query *q = mw_calloc(1, sizeof *q);
    if (!q) {
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    q->api = api;
    q->ex = ex;
    snprintf(q->model, sizeof q->model, "%s", model);
    const char *bad = parse_windows_query(q, query);
    if (bad) {
        mw_free(q);
        mw_http_respond_error(ex, 400, bad);
        return;
    }
    char wm_key[KEY_BYTES], idx_key[KEY_BYTES], from[32], to[32];
    snprintf(wm_key, sizeof wm_key, "mw:{%s}:wm", model);
    snprintf(idx_key, sizeof idx_key, "mw:{%s}:idx:%" PRId64, model, q->width_ms / 1000);
    snprintf(from, sizeof from, "%" PRId64, q->from_ms);
    snprintf(to, sizeof to, "%" PRId64, q->to_ms);
    const char *get_wm[] = {"GET", wm_key};
    const char *range[] = {"ZRANGEBYSCORE", idx_key, from, to};
    /* Replies come in order: the watermark is known before the index arrives. */
    if (mw_store_commandv(api->store, on_watermark_reply, q, 2, get_wm) ||
        mw_store_commandv(api->store, on_index_reply, q, 4, range)) {
        mw_free(q);
        mw_http_respond_error(ex, 503, "Redis unavailable");
    }
}

/* ---- GET /api/v1/models/{m}/drift ----------------------------------------------------------- */

struct drift_query {
    struct mw_api *api;
    struct mw_http_exchange *ex;
    char model[MW_MODEL_NAME_MAX + 1];
    char version[MW_VERSION_MAX + 1];
    bool has_version;
    int64_t width_ms, start_ms, watermark_ms;
    bool has_start;
    char *profile_json; /* copied out of its reply */
    size_t profile_len;
    bool failed;
};

static void free_drift(struct drift_query *q)
{
    mw_free(q->profile_json);
    mw_free(q);
}

static void respond_drift(struct drift_query *q, const redisReply *window)
{
    struct mw_profile *profile = NULL;
    char err[256];
    if (mw_profile_parse(q->profile_json, q->profile_len, &profile, err, sizeof err) != 0) {
        mw_http_respond_error(q->ex, 500, err);
        return;
    }
    const char **buf = mw_calloc(window->elements + 1, sizeof *buf);
    struct mw_window_fields w = {0};
    if (buf)
        window_fields_of(window, &w, buf);
    struct mw_drift_signals ds;
    if (mw_drift_signals_compute(&w, profile, q->api->cfg, &ds) != 0) {
        mw_http_respond_error(q->ex, 503, "out of memory computing drift");
        mw_free(buf);
        mw_profile_free(profile);
        return;
    }
    json_t *features = mw_drift_signals_json(&ds);
    const char *verdict = mw_drift_verdict_name(ds.verdict);
    respond_json(
        q->ex, 200,
        json_pack("{s:s, s:o, s:I, s:I, s:b, s:s, s:s, s:o}", "model", q->model, "version",
                  mw_signals_json_text(q->version), "resolution_s",
                  (json_int_t)(q->width_ms / 1000), "window_start_ms", (json_int_t)q->start_ms,
                  "final", window_final(q->api, q->watermark_ms, q->start_ms, q->width_ms),
                  "profile_version", profile->version, "verdict", verdict, "features", features));
    mw_drift_signals_free(&ds);
    mw_free(buf);
    mw_profile_free(profile);
}

static void on_drift_watermark(redisReply *reply, void *arg)
{
    struct drift_query *q = arg;
    q->watermark_ms = reply_int(reply);
}

static void on_drift_profile(redisReply *reply, void *arg)
{
    struct drift_query *q = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        q->failed = true;
    } else if (reply->type == REDIS_REPLY_STRING) {
        q->profile_json = mw_strndup(reply->str, reply->len);
        q->profile_len = reply->len;
    }
}

/* The last of the three replies: everything is known. */
static void on_drift_window(redisReply *reply, void *arg)
{
    struct drift_query *q = arg;
    if (q->failed || !reply || reply->type != REDIS_REPLY_ARRAY)
        mw_http_respond_error(q->ex, 503, "Redis unavailable");
    else if (!q->profile_json)
        mw_http_respond_error(q->ex, 404,
                              "no reference profile for this model version: push "
                              "one with modelwatch-ctl profile push");
    else if (reply->elements == 0)
        mw_http_respond_error(q->ex, 404, "no data in this window");
    else
        respond_drift(q, reply);
    free_drift(q);
}

static void fetch_drift(struct drift_query *q)
{
    char wm_key[KEY_BYTES], profile_key[KEY_BYTES], window_key[KEY_BYTES];
    snprintf(wm_key, sizeof wm_key, "mw:{%s}:wm", q->model);
    mw_profile_key(q->model, q->version, profile_key, sizeof profile_key);
    snprintf(window_key, sizeof window_key, "mw:{%s}:w:%" PRId64 ":%" PRId64 ":%s", q->model,
             q->width_ms / 1000, q->start_ms, q->version);
    const char *get_wm[] = {"GET", wm_key};
    const char *get_profile[] = {"GET", profile_key};
    const char *get_window[] = {"HGETALL", window_key};
    if (mw_store_commandv(q->api->store, on_drift_watermark, q, 2, get_wm) != 0) {
        mw_http_respond_error(q->ex, 503, "Redis unavailable");
        free_drift(q);
        return;
    }
    /* Connected: the window's callback answers and frees. Only running out of memory can fail
     * a send now, and then the query is abandoned (its callbacks may still arrive). */
    if (mw_store_commandv(q->api->store, on_drift_profile, q, 2, get_profile) != 0)
        q->failed = true;
    if (mw_store_commandv(q->api->store, on_drift_window, q, 2, get_window) != 0)
        MW_LOG_ERROR("api", "out of memory sending a drift query", "model=%s", q->model);
}

/* Without ?window=: the newest window, of the requested version or of any. */
static void on_drift_latest(redisReply *reply, void *arg)
{
    struct drift_query *q = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        mw_http_respond_error(q->ex, 503, "Redis unavailable");
        free_drift(q);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const char *colon = strchr(reply->element[i]->str, ':');
        if (!colon || (q->has_version && strcmp(colon + 1, q->version) != 0))
            continue;
        q->start_ms = strtoll(reply->element[i]->str, NULL, 10);
        snprintf(q->version, sizeof q->version, "%s", colon + 1);
        fetch_drift(q);
        return;
    }
    mw_http_respond_error(q->ex, 404, "no window for this model and version");
    free_drift(q);
}

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
    snprintf(q->model, sizeof q->model, "%s", model);
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
        (parse_int_param(query, "window", &q->start_ms) || q->start_ms % q->width_ms != 0))
        bad = "window: the start of a window, in epoch milliseconds";
    if (!bad && q->has_start && !q->has_version)
        bad = "version: required together with window";
    if (bad) {
        mw_http_respond_error(ex, 400, bad);
        free_drift(q);
        return;
    }
    if (q->has_start) {
        fetch_drift(q);
        return;
    }
    char idx_key[KEY_BYTES];
    snprintf(idx_key, sizeof idx_key, "mw:{%s}:idx:%" PRId64, model, q->width_ms / 1000);
    const char *range[] = {"ZREVRANGEBYSCORE", idx_key, "+inf", "-inf", "LIMIT", "0", "1000"};
    if (mw_store_commandv(api->store, on_drift_latest, q, 7, range)) {
        mw_http_respond_error(ex, 503, "Redis unavailable");
        free_drift(q);
    }
}

/* ---- GET /api/v1/models/{m}/slo: multi-window burn rates ------------------------------------ */

/* The lookbacks of the multi-window, multi-burn-rate alerts (the SRE workbook's pairs). */
static const struct {
    const char *name;
    int64_t ms;
} lookbacks[] = {{"5m", 300000},   {"30m", 1800000}, {"1h", 3600000},  {"2h", 7200000},
                 {"6h", 21600000}, {"1d", 86400000}, {"3d", 259200000}};
#define N_LOOKBACKS (sizeof lookbacks / sizeof lookbacks[0])

static const struct {
    const char *long_name, *short_name;
    double threshold;
} burn_pairs[] = {{"1h", "5m", 14.4}, {"6h", "30m", 6}, {"1d", "2h", 3}, {"3d", "6h", 1}};

struct slo_query {
    struct mw_api *api;
    struct mw_http_exchange *ex;
    char model[MW_MODEL_NAME_MAX + 1];
    char version[MW_VERSION_MAX + 1];
    bool has_version;
    int64_t at_ms;
    size_t pending;
    bool failed;
    double count[N_LOOKBACKS], errors[N_LOOKBACKS];
};

struct slo_window {
    struct slo_query *q;
    int64_t start_ms, width_ms;
};

static double lookback_ratio(const struct slo_query *q, const char *name)
{
    for (size_t i = 0; i < N_LOOKBACKS; i++)
        if (strcmp(lookbacks[i].name, name) == 0)
            return q->count[i] > 0 ? q->errors[i] / q->count[i] : NAN;
    return NAN;
}

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
    double budget = 1.0 - q->api->cfg->slo.availability;
    json_t *ratios = json_object(), *pairs = json_array();
    for (size_t i = 0; i < N_LOOKBACKS; i++)
        json_object_set_new(ratios, lookbacks[i].name,
                            real_or_null(q->count[i] > 0 ? q->errors[i] / q->count[i] : NAN));
    for (size_t i = 0; i < sizeof burn_pairs / sizeof burn_pairs[0]; i++) {
        double lb = lookback_ratio(q, burn_pairs[i].long_name) / budget;
        double sb = lookback_ratio(q, burn_pairs[i].short_name) / budget;
        json_array_append_new(
            pairs,
            json_pack("{s:s, s:s, s:f, s:o, s:o, s:b}", "long", burn_pairs[i].long_name, "short",
                      burn_pairs[i].short_name, "threshold", burn_pairs[i].threshold,
                      "long_burn_rate", real_or_null(lb), "short_burn_rate", real_or_null(sb),
                      "burning", lb > burn_pairs[i].threshold && sb > burn_pairs[i].threshold));
    }
    respond_json(q->ex, 200,
                 json_pack("{s:s, s:o, s:I, s:f, s:o, s:o}", "model", q->model, "version",
                           mw_signals_json_text(q->has_version ? q->version : NULL), "at_ms",
                           (json_int_t)q->at_ms, "availability_objective",
                           q->api->cfg->slo.availability, "error_ratio", ratios, "burn_rates",
                           pairs));
    mw_free(q);
}

/* One window's count and errors go to every lookback that holds the whole window. */
static void on_slo_window(redisReply *reply, void *arg)
{
    struct slo_window *sw = arg;
    struct slo_query *q = sw->q;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        q->failed = true;
    } else {
        double count = reply->element[0]->str ? strtod(reply->element[0]->str, NULL) : 0;
        double errors = reply->element[1]->str ? strtod(reply->element[1]->str, NULL) : 0;
        /* Short lookbacks (<= 2 h) add up minute windows, long ones hour windows. */
        bool fine = sw->width_ms == q->api->cfg->windows.fine_ms;
        for (size_t i = 0; i < N_LOOKBACKS; i++) {
            bool use_fine = lookbacks[i].ms <= 7200000;
            if (use_fine == fine && sw->start_ms >= q->at_ms - lookbacks[i].ms) {
                q->count[i] += count;
                q->errors[i] += errors;
            }
        }
    }
    mw_free(sw);
    if (--q->pending == 0)
        finish_slo(q);
}

static void on_slo_index(redisReply *reply, void *arg, int64_t width_ms)
{
    struct slo_query *q = arg;
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const char *member = reply->element[i]->str;
        const char *colon = member ? strchr(member, ':') : NULL;
        if (!colon || (q->has_version && strcmp(colon + 1, q->version) != 0))
            continue;
        struct slo_window *sw = mw_calloc(1, sizeof *sw);
        if (!sw)
            break;
        *sw = (struct slo_window){
            .q = q, .start_ms = strtoll(member, NULL, 10), .width_ms = width_ms};
        char key[KEY_BYTES];
        snprintf(key, sizeof key, "mw:{%s}:w:%" PRId64 ":%" PRId64 ":%s", q->model, width_ms / 1000,
                 sw->start_ms, colon + 1);
        const char *argv[] = {"HMGET", key, "count", "errors"};
        q->pending++;
        if (mw_store_commandv(q->api->store, on_slo_window, sw, 4, argv) != 0) {
            q->pending--;
            mw_free(sw);
        }
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        q->failed = true;
    if (--q->pending == 0)
        finish_slo(q);
}

static void on_slo_fine(redisReply *reply, void *arg)
{
    struct slo_query *q = arg;
    on_slo_index(reply, arg, q->api->cfg->windows.fine_ms);
}

static void on_slo_coarse(redisReply *reply, void *arg)
{
    struct slo_query *q = arg;
    on_slo_index(reply, arg, q->api->cfg->windows.coarse_ms);
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
    q->at_ms = mw_clock_wall_ms();
    int vrc = mw_http_query_param(query, "version", q->version, sizeof q->version);
    q->has_version = vrc == 0;
    if (vrc == MW_ETOOBIG || parse_int_param(query, "at", &q->at_ms)) {
        mw_free(q);
        mw_http_respond_error(ex, 400, "version: at most 128 bytes; at: epoch milliseconds");
        return;
    }
    char fine_idx[KEY_BYTES], coarse_idx[KEY_BYTES], fine_from[32], coarse_from[32], to[32];
    snprintf(fine_idx, sizeof fine_idx, "mw:{%s}:idx:%" PRId64, model,
             api->cfg->windows.fine_ms / 1000);
    snprintf(coarse_idx, sizeof coarse_idx, "mw:{%s}:idx:%" PRId64, model,
             api->cfg->windows.coarse_ms / 1000);
    snprintf(fine_from, sizeof fine_from, "%" PRId64, q->at_ms - 7200000);
    snprintf(coarse_from, sizeof coarse_from, "%" PRId64, q->at_ms - 259200000);
    snprintf(to, sizeof to, "(%" PRId64, q->at_ms);
    const char *fine[] = {"ZRANGEBYSCORE", fine_idx, fine_from, to};
    const char *coarse[] = {"ZRANGEBYSCORE", coarse_idx, coarse_from, to};
    q->pending = 2;
    if (mw_store_commandv(api->store, on_slo_fine, q, 4, fine) != 0) {
        mw_free(q);
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    if (mw_store_commandv(api->store, on_slo_coarse, q, 4, coarse) != 0)
        MW_LOG_ERROR("api", "out of memory sending an SLO query", "model=%s", model);
}

/* ---- profiles ------------------------------------------------------------------------------- */

static void on_profile_versions(redisReply *reply, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    respond_json(ex, 200, json_pack("{s:o}", "versions", sorted_strings(reply)));
}

static void on_profile_document(redisReply *reply, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        mw_http_respond_error(ex, 503, "Redis unavailable");
    else if (reply->type != REDIS_REPLY_STRING)
        mw_http_respond_error(ex, 404, "no profile for this model version");
    else
        mw_http_respond(ex, 200, "application/json", reply->str, reply->len);
}

static void on_profile_stored(int rc, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (rc)
        mw_http_respond_error(ex, 503, "Redis unavailable: profile not stored");
    else
        mw_http_respond(ex, 200, "application/json", "{\"stored\":true}", 15);
}

static void put_profile(struct mw_api *api, struct mw_http_exchange *ex, const char *model,
                        const char *version, const struct mw_http_request *req)
{
    char err[300], key[KEY_BYTES], set_key[KEY_BYTES];
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
    mw_profile_key(model, version, key, sizeof key);
    snprintf(set_key, sizeof set_key, "mw:{%s}:profiles", model);
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
    char key[KEY_BYTES];
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
        mw_profile_key(model, version, key, sizeof key);
        const char *argv[] = {"GET", key};
        rc = mw_store_commandv(api->store, on_profile_document, ex, 2, argv);
    } else {
        snprintf(key, sizeof key, "mw:{%s}:profiles", model);
        const char *argv[] = {"SMEMBERS", key};
        rc = mw_store_commandv(api->store, on_profile_versions, ex, 2, argv);
    }
    if (rc)
        mw_http_respond_error(ex, 503, "Redis unavailable");
}

/* ---- routing -------------------------------------------------------------------------------- */

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
    char model[MW_MODEL_NAME_MAX + 1], what[32];
    const char *slash = strchr(rest + 1, '/');
    size_t len = slash ? (size_t)(slash - rest - 1) : strlen(rest + 1);
    if (len == 0 || len > MW_MODEL_NAME_MAX) {
        mw_http_respond_error(ex, 404, "no such resource");
        return;
    }
    snprintf(model, sizeof model, "%.*s", (int)len, rest + 1);
    if (!mw_model_name_valid(model)) {
        mw_http_respond_error(ex, 400, "model: 1 to 128 characters from [A-Za-z0-9._-]");
        return;
    }
    const char *tail = slash ? slash + 1 : "";
    const char *slash2 = strchr(tail, '/');
    snprintf(what, sizeof what, "%.*s", (int)(slash2 ? slash2 - tail : (long)strlen(tail)), tail);
    const char *version = slash2 ? slash2 + 1 : NULL;
    if (strcmp(what, "profiles") == 0)
        profiles(api, ex, req, model, version);
    else if (!get)
        mw_http_respond_error(ex, 405, "GET only");
    else if (strcmp(what, "windows") == 0 && !version)
        list_windows(api, ex, model, req->query);
    else if (strcmp(what, "drift") == 0 && !version)
        get_drift(api, ex, model, req->query);
    else if (strcmp(what, "slo") == 0 && !version)
        get_slo(api, ex, model, req->query);
    else
        mw_http_respond_error(ex, 404, "no such resource");
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
