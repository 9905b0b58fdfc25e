/* api.c — /api/v1 handlers: Redis reads turned into JSON. */
#include "api.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "latency_hist.h"
#include "log.h"
#include "names.h"

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

struct api {
    const struct mw_aggregator_config *cfg;
    struct mw_store *store;
};

static struct api api_state;

static void respond_json(struct mw_http_exchange *ex, int status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
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

static void on_models_reply(redisReply *reply, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    const char **names = mw_calloc(reply->elements + 1, sizeof *names);
    if (!names) {
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    for (size_t i = 0; i < reply->elements; i++)
        names[i] = reply->element[i]->str ? reply->element[i]->str : "";
    qsort(names, reply->elements, sizeof *names, compare_strings);
    json_t *list = json_array();
    for (size_t i = 0; i < reply->elements; i++)
        json_array_append_new(list, json_string(names[i]));
    mw_free(names);
    respond_json(ex, 200, json_pack("{s:o}", "models", list));
}

static void list_models(struct mw_http_exchange *ex)
{
    struct mw_redis_cmd cmd;
    mw_redis_cmd_init(&cmd);
    int rc = mw_redis_cmd_add(&cmd, "SMEMBERS");
    rc = rc ? rc : mw_redis_cmd_add(&cmd, "mw:models");
    rc = rc ? rc : mw_store_command(api_state.store, &cmd, on_models_reply, ex);
    mw_redis_cmd_free(&cmd);
    if (rc)
        mw_http_respond_error(ex, 503, "Redis unavailable");
}

/* A windows query in progress: the index lookup, then one HGETALL per window. */
struct windows_query {
    struct mw_http_exchange *ex;
    char model[MW_MODEL_NAME_MAX + 1];
    char version[MW_VERSION_MAX + 1];
    int has_version;
    int64_t width_ms;
    int64_t from_ms, to_ms;
    long limit;
    size_t n_windows;
    size_t pending;
    int failed;
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

static int64_t field_int(json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);
    return v ? json_integer_value(v) : 0;
}

static json_t *window_json(const redisReply *hash, int64_t start_ms, int64_t width_ms,
                           const char *version)
{
    json_t *w = json_object();
    json_t *errors = json_object();
    struct mw_latency_hist *hist = mw_calloc(1, sizeof *hist);
    if (!w || !errors || !hist) {
        json_decref(w);
        json_decref(errors);
        mw_free(hist);
        return NULL;
    }
    json_object_set_new(w, "start_ms", json_integer(start_ms));
    json_object_set_new(w, "end_ms", json_integer(start_ms + width_ms));
    json_object_set_new(w, "version", json_string(version));
    static const char *const plain[] = {"count", "errors", "records", "feedback", "tokens_in",
                                        "tokens_out", NULL};
    for (size_t i = 0; plain[i]; i++)
        json_object_set_new(w, plain[i], json_integer(0));
    uint64_t lat_sum = 0;
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        const char *name = hash->element[i]->str;
        long long value = strtoll(hash->element[i + 1]->str, NULL, 10);
        if (strncmp(name, "err:", 4) == 0) {
            json_object_set_new(errors, name + 4, json_integer(value));
        } else if (strncmp(name, "lat:", 4) == 0) {
            long idx = strtol(name + 4, NULL, 10);
            if (idx >= 0 && idx < MW_LATENCY_BUCKETS && value > 0) {
                hist->counts[idx] += (uint64_t)value;
                hist->total += (uint64_t)value;
            }
        } else if (strcmp(name, "lat_sum_us") == 0) {
            lat_sum = (uint64_t)value;
        } else {
            json_object_set_new(w, name, json_integer(value));
        }
    }
    int64_t count = field_int(w, "count");
    json_object_set_new(w, "error_rate",
                        count ? json_real((double)field_int(w, "errors") / (double)count)
                              : json_null());
    json_object_set_new(w, "errors_by_code", errors);
    json_t *lat = json_object();
    static const struct {
        const char *name;
        double q;
    } qs[] = {{"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}};
    for (size_t i = 0; i < 4; i++) {
        double v = mw_latency_hist_quantile(hist, qs[i].q);
        json_object_set_new(lat, qs[i].name, isnan(v) ? json_null() : json_real(v));
    }
    json_object_set_new(lat, "mean", hist->total ? json_real((double)lat_sum / (double)hist->total)
                                                 : json_null());
    json_object_set_new(w, "latency_us", lat);
    mw_free(hist);
    return w;
}

static void finish_windows(struct windows_query *q)
{
    if (q->failed) {
        mw_http_respond_error(q->ex, 503, "Redis unavailable");
        free_query(q);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < q->n_windows; i++) {
        if (q->windows[i])
            json_array_append(list, q->windows[i]);
    }
    json_t *doc = json_pack("{s:s, s:I, s:o}", "model", q->model, "resolution_s",
                            (json_int_t)(q->width_ms / 1000), "windows", list);
    respond_json(q->ex, 200, doc);
    free_query(q);
}

static void on_window_reply(redisReply *reply, void *arg)
{
    struct window_slot *slot = arg;
    struct windows_query *q = slot->q;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        q->failed = 1;
    else if (reply->elements > 0) /* an expired window leaves an index entry and no hash */
        q->windows[slot->index] = window_json(reply, slot->start_ms, q->width_ms, slot->version);
    mw_free(slot->version);
    mw_free(slot);
    if (--q->pending == 0)
        finish_windows(q);
}

/* Index members are "<start_ms>:<version>", already sorted by start; order versions too. */
static int compare_members(const void *a, const void *b)
{
    const redisReply *ra = *(const redisReply *const *)a, *rb = *(const redisReply *const *)b;
    long long sa = strtoll(ra->str, NULL, 10), sb = strtoll(rb->str, NULL, 10);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return strcmp(ra->str, rb->str);
}

static int fetch_window(struct windows_query *q, size_t index, int64_t start_ms,
                        const char *version)
{
    struct window_slot *slot = mw_calloc(1, sizeof *slot);
    if (!slot)
        return MW_ENOMEM;
    slot->q = q;
    slot->index = index;
    slot->start_ms = start_ms;
    slot->version = mw_strdup(version);
    struct mw_redis_cmd cmd;
    mw_redis_cmd_init(&cmd);
    int rc = mw_redis_cmd_add(&cmd, "HGETALL");
    rc = rc ? rc : mw_redis_cmd_addf(&cmd, "mw:{%s}:w:%" PRId64 ":%" PRId64 ":%s", q->model,
                                     q->width_ms / 1000, start_ms, version);
    q->pending++;
    rc = rc ? rc : mw_store_command(api_state.store, &cmd, on_window_reply, slot);
    mw_redis_cmd_free(&cmd);
    if (rc) {
        q->pending--;
        mw_free(slot->version);
        mw_free(slot);
    }
    return rc;
}

static void on_index_reply(redisReply *reply, void *arg)
{
    struct windows_query *q = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        q->failed = 1;
        finish_windows(q);
        return;
    }
    redisReply **members = (redisReply **)reply->element;
    qsort(members, reply->elements, sizeof *members, compare_members);
    q->windows = mw_calloc(reply->elements + 1, sizeof *q->windows);
    if (!q->windows) {
        q->failed = 1;
        finish_windows(q);
        return;
    }
    q->pending = 1; /* held until every fetch is sent */
    for (size_t i = 0; i < reply->elements && q->n_windows < (size_t)q->limit; i++) {
        char *colon = strchr(members[i]->str, ':');
        if (!colon)
            continue;
        const char *version = colon + 1;
        if (q->has_version && strcmp(version, q->version) != 0)
            continue;
        int64_t start = strtoll(members[i]->str, NULL, 10);
        size_t slot = q->n_windows++;
        if (fetch_window(q, slot, start, version) != 0)
            q->failed = 1;
    }
    if (--q->pending == 0)
        finish_windows(q);
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

static const char *parse_windows_query(struct windows_query *q, const char *query)
{
    int64_t now = mw_clock_wall_ms();
    int64_t resolution_s = api_state.cfg->windows.fine_ms / 1000;
    int64_t limit = DEFAULT_LIMIT;
    q->from_ms = now - DAY_MS;
    q->to_ms = now;
    if (parse_int_param(query, "resolution", &resolution_s) ||
        (resolution_s * 1000 != api_state.cfg->windows.fine_ms &&
         resolution_s * 1000 != api_state.cfg->windows.coarse_ms))
        return "resolution: must be one of the configured window widths in seconds";
    if (parse_int_param(query, "from", &q->from_ms) || parse_int_param(query, "to", &q->to_ms) ||
        q->from_ms > q->to_ms)
        return "from/to: epoch milliseconds with from <= to";
    if (parse_int_param(query, "limit", &limit) || limit < 1 || limit > MAX_LIMIT)
        return "limit: an integer from 1 to 10000";
    q->width_ms = resolution_s * 1000;
    q->limit = (long)limit;
    int rc = mw_http_query_param(query, "version", q->version, sizeof q->version);
    if (rc == MW_ETOOBIG)
        return "version: too long";
    q->has_version = rc == 0;
    return NULL;
}

static void list_windows(struct mw_http_exchange *ex, const char *model, const char *query)
{
    struct windows_query *q = mw_calloc(1, sizeof *q);
    if (!q) {
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    q->ex = ex;
    snprintf(q->model, sizeof q->model, "%s", model);
    const char *bad = parse_windows_query(q, query);
    if (bad) {
        mw_free(q);
        mw_http_respond_error(ex, 400, bad);
        return;
    }
    struct mw_redis_cmd cmd;
    mw_redis_cmd_init(&cmd);
    int rc = mw_redis_cmd_add(&cmd, "ZRANGEBYSCORE");
    rc = rc ? rc : mw_redis_cmd_addf(&cmd, "mw:{%s}:idx:%" PRId64, model, q->width_ms / 1000);
    rc = rc ? rc : mw_redis_cmd_addf(&cmd, "%" PRId64, q->from_ms);
    rc = rc ? rc : mw_redis_cmd_addf(&cmd, "%" PRId64, q->to_ms);
    rc = rc ? rc : mw_store_command(api_state.store, &cmd, on_index_reply, q);
    mw_redis_cmd_free(&cmd);
    if (rc) {
        mw_free(q);
        mw_http_respond_error(ex, 503, "Redis unavailable");
    }
}

/* GET /api/v1/models[/{model}/windows] */
static void on_models(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    (void)arg;
    const char *rest = req->path + strlen(MODELS_PREFIX);
    if (*rest == '\0' || strcmp(rest, "/") == 0) {
        list_models(ex);
        return;
    }
    char model[MW_MODEL_NAME_MAX + 1];
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
    if (slash && strcmp(slash, "/windows") == 0) {
        list_windows(ex, model, req->query);
        return;
    }
    mw_http_respond_error(ex, 404, "no such resource");
}

int mw_api_register(struct mw_http_server *srv, const struct mw_aggregator_config *cfg,
                    struct mw_store *store)
{
    api_state.cfg = cfg;
    api_state.store = store;
    return mw_http_server_route(srv, "GET", MODELS_PREFIX, true, on_models, NULL);
}
