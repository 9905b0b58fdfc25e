/* alert_api.c — /api/v1/alerts and /api/v1/silences (alert_api.h): JSON at the edge, the
 * stored documents decoded by alert_store.c. */
#include "alert/alert_api.h"

#include "alert/alert_store.h"
#include "alert/alerting.h"
#include "alert/receiver_int.h"
#include "alloc.h"
#include "api_reply.h"
#include "clock.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "schema.h"

#include <jansson.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define ALERTS_PATH "/api/v1/alerts"
#define SILENCES_PATH "/api/v1/silences"
#define TOKEN_MAX 512
#define MAX_SILENCE_MS (366LL * 86400000)

struct mw_alert_api {
    const struct mw_aggregator_config *cfg;
    struct mw_store *store;
    struct mw_alerting *alerting;
    bool has_token;
    char token[TOKEN_MAX];
    size_t token_len;
};

static json_t *labels_json(const struct mw_labels *l)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < l->n; i++)
        json_object_set_new(o, l->items[i].name, json_string(l->items[i].value));
    return o;
}

static json_t *number_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

/* ---- authorisation --------------------------------------------------------------------------- */

/* Whether the request may write; answers it (401/403) when not. */
static bool authorised(const struct mw_alert_api *api, struct mw_http_exchange *ex,
                       const struct mw_http_request *req)
{
    if (!api->has_token) {
        mw_http_respond_error(ex, 403,
                              "silence writes are disabled: set alerting.api_token_file in the "
                              "aggregator's configuration");
        return false;
    }
    const char *auth = req->authorization ? req->authorization : "";
    static const char prefix[] = "Bearer ";
    size_t len = strlen(auth);
    bool ok = len == sizeof prefix - 1 + api->token_len &&
              strncasecmp(auth, prefix, sizeof prefix - 1) == 0 &&
              CRYPTO_memcmp(auth + sizeof prefix - 1, api->token, api->token_len) == 0;
    if (!ok)
        mw_http_respond_error(ex, 401, "a bearer token is required (Authorization: Bearer ...)");
    return ok;
}

/* ---- GET /api/v1/alerts ---------------------------------------------------------------------- */

struct alerts_query {
    struct mw_alert_api *api;
    struct mw_http_exchange *ex;
    bool all, firing_only, pending_only;
    struct mw_silences silences;
    bool silences_ok, states_ok;
    json_t *list;
    int pending;
};

static int by_since_desc(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "active_since_ms"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "active_since_ms"));
    return x < y ? 1 : x > y ? -1 : 0;
}

static void finish_alerts(struct alerts_query *q)
{
    if (!q->states_ok) {
        mw_http_respond_error(q->ex, 503, "Redis unavailable");
    } else {
        int64_t now = mw_clock_wall_ms();
        size_t n = json_array_size(q->list);
        json_t **items = mw_calloc(n + 1, sizeof *items);
        json_t *sorted = json_array();
        for (size_t i = 0; items && i < n; i++)
            items[i] = json_array_get(q->list, i);
        if (items)
            qsort(items, n, sizeof *items, by_since_desc);
        for (size_t i = 0; items && i < n; i++) {
            json_t *a = items[i];
            struct mw_labels labels = {0};
            const char *name;
            json_t *v;
            json_object_foreach(json_object_get(a, "labels"), name, v)
                mw_labels_set(&labels, name, json_string_value(v));
            const struct mw_silence *s = mw_silences_match(&q->silences, &labels, now);
            json_object_set_new(a, "silenced_by", s ? json_string(s->id) : json_null());
            mw_labels_free(&labels);
            json_array_append(sorted, a);
        }
        mw_free(items);
        mw_api_respond_data(q->ex, json_pack("{s:o}", "alerts", sorted));
    }
    json_decref(q->list);
    mw_silences_free(&q->silences);
    mw_free(q);
}

static void on_alert_states(redisReply *reply, void *arg)
{
    struct alerts_query *q = arg;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        q->states_ok = true;
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *v = reply->element[i + 1];
            struct mw_alert_inst *inst = NULL;
            if (!v->str || mw_alert_inst_decode(v->str, v->len, &inst) != 0)
                continue;
            enum mw_alert_state s = inst->st.state;
            bool want =
                q->all || (q->firing_only    ? s == MW_ALERT_FIRING
                           : q->pending_only ? s == MW_ALERT_PENDING
                                             : s == MW_ALERT_FIRING || s == MW_ALERT_PENDING);
            if (want && inst->labels.n == 0 && s == MW_ALERT_PENDING) {
                /* a pending alert has no labels stored yet: give it its identity */
                mw_labels_set(&inst->labels, "model", inst->model);
                if (*inst->version)
                    mw_labels_set(&inst->labels, "version", inst->version);
                if (inst->feature)
                    mw_labels_set(&inst->labels, "feature", inst->feature);
            }
            if (want) {
                json_t *values = json_object();
                for (size_t k = 0; k < inst->n_values; k++)
                    json_object_set_new(values, inst->values[k].name,
                                        number_or_null(inst->values[k].value));
                json_t *a = json_object();
                json_object_set_new(a, "rule", json_string(inst->rule_id));
                json_object_set_new(a, "labels", labels_json(&inst->labels));
                json_object_set_new(a, "annotations", labels_json(&inst->annotations));
                json_object_set_new(a, "state", json_string(mw_alert_state_name(s)));
                json_object_set_new(a, "flapping", json_boolean(inst->st.flapping));
                json_object_set_new(
                    a, "value", inst->st.has_value ? number_or_null(inst->st.value) : json_null());
                json_object_set_new(a, "samples", json_integer((json_int_t)inst->st.samples));
                json_object_set_new(a, "active_since_ms", json_integer(inst->st.active_since_ms));
                json_object_set_new(a, "fired_at_ms",
                                    s == MW_ALERT_FIRING ? json_integer(inst->st.fired_at_ms)
                                                         : json_null());
                json_object_set_new(a, "values", values);
                json_object_set_new(a, "generator_url",
                                    inst->generator_url ? json_string(inst->generator_url)
                                                        : json_null());
                json_array_append_new(q->list, a);
            }
            mw_alert_inst_free(inst);
        }
    }
    if (--q->pending == 0)
        finish_alerts(q);
}

static void on_alert_silences(redisReply *reply, void *arg)
{
    struct alerts_query *q = arg;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            struct mw_silence s;
            char why[200];
            const redisReply *v = reply->element[i + 1];
            if (v->str && mw_silence_decode(v->str, v->len, &s, why, sizeof why) == 0 &&
                mw_silences_add(&q->silences, &s) != 0)
                mw_silence_free(&s);
        }
    }
    if (--q->pending == 0)
        finish_alerts(q);
}

static void get_alerts(struct mw_alert_api *api, struct mw_http_exchange *ex,
                       const struct mw_http_request *req)
{
    char state[16] = "";
    int prc = mw_http_query_param(req->query, "state", state, sizeof state);
    if (prc == MW_ETOOBIG || (prc == 0 && strcmp(state, "all") && strcmp(state, "firing") &&
                              strcmp(state, "pending") && strcmp(state, "active"))) {
        mw_http_respond_error(ex, 400, "state: firing, pending, active (both) or all");
        return;
    }
    struct alerts_query *q = mw_calloc(1, sizeof *q);
    if (!q || !(q->list = json_array())) {
        mw_free(q);
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    q->api = api;
    q->ex = ex;
    q->all = strcmp(state, "all") == 0;
    q->firing_only = strcmp(state, "firing") == 0;
    q->pending_only = strcmp(state, "pending") == 0;
    const char *argv1[] = {"HGETALL", MW_SCHEMA_ALERT_RULES_KEY};
    const char *argv2[] = {"HGETALL", MW_SCHEMA_ALERT_SILENCES_KEY};
    q->pending = 2;
    if (mw_store_commandv(api->store, on_alert_states, q, 2, argv1) != 0) {
        json_decref(q->list);
        mw_free(q);
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    if (mw_store_commandv(api->store, on_alert_silences, q, 2, argv2) != 0)
        q->pending--; /* listed without silences */
}

/* ---- silences -------------------------------------------------------------------------------- */

static json_t *silence_json(const struct mw_silence *s, int64_t now)
{
    json_t *matchers = json_array();
    for (size_t i = 0; i < s->matchers.n; i++) {
        char text[2 * MW_LABEL_VALUE_MAX];
        mw_matcher_text(&s->matchers.items[i], text, sizeof text);
        json_array_append_new(matchers, json_string(text));
    }
    return json_pack("{s:s, s:o, s:I, s:I, s:s, s:s, s:s}", "id", s->id, "matchers", matchers,
                     "starts_at_ms", (json_int_t)s->starts_at_ms, "ends_at_ms",
                     (json_int_t)s->ends_at_ms, "created_by", s->created_by, "comment", s->comment,
                     "state", mw_silence_state_name(mw_silence_state_at(s, now)));
}

static int by_start_desc(const void *a, const void *b)
{
    const struct mw_silence *x = a, *y = b;
    return x->starts_at_ms < y->starts_at_ms ? 1 : x->starts_at_ms > y->starts_at_ms ? -1 : 0;
}

static void on_silence_list(redisReply *reply, void *arg)
{
    struct mw_http_exchange *ex = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    struct mw_silences set = {0};
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        struct mw_silence s;
        char why[200];
        const redisReply *v = reply->element[i + 1];
        if (v->str && mw_silence_decode(v->str, v->len, &s, why, sizeof why) == 0 &&
            mw_silences_add(&set, &s) != 0)
            mw_silence_free(&s);
    }
    qsort(set.items, set.n, sizeof *set.items, by_start_desc);
    int64_t now = mw_clock_wall_ms();
    json_t *list = json_array();
    for (size_t i = 0; i < set.n; i++)
        json_array_append_new(list, silence_json(&set.items[i], now));
    mw_silences_free(&set);
    mw_api_respond_data(ex, json_pack("{s:o}", "silences", list));
}

struct silence_write {
    struct mw_alert_api *api;
    struct mw_http_exchange *ex;
    char id[64];
    bool expire;
};

static void on_silence_stored(redisReply *reply, void *arg)
{
    struct silence_write *w = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        mw_http_respond_error(w->ex, 503, "Redis unavailable: silence not stored");
    } else {
        mw_alerting_silences_changed(w->api->alerting);
        mw_api_respond_data(w->ex, w->expire
                                       ? json_pack("{s:s, s:s}", "id", w->id, "state", "expired")
                                       : json_pack("{s:s}", "id", w->id));
    }
    mw_free(w);
}

static int store_silence(struct mw_alert_api *api, struct mw_http_exchange *ex,
                         const struct mw_silence *s, bool expire)
{
    char *json = mw_silence_encode(s);
    struct silence_write *w = json ? mw_calloc(1, sizeof *w) : NULL;
    if (!w) {
        mw_free(json);
        return MW_ENOMEM;
    }
    w->api = api;
    w->ex = ex;
    w->expire = expire;
    snprintf(w->id, sizeof w->id, "%s", s->id);
    const char *argv[] = {"HSET", MW_SCHEMA_ALERT_SILENCES_KEY, s->id, json};
    int rc = mw_store_commandv(api->store, on_silence_stored, w, 4, argv);
    mw_free(json);
    if (rc)
        mw_free(w);
    return rc;
}

static void new_id(char *out, size_t size)
{
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        uint64_t t = (uint64_t)mw_clock_mono_ns() ^ (uint64_t)mw_clock_wall_ms();
        memcpy(raw, &t, sizeof t);
        memcpy(raw + 8, &t, sizeof t);
    }
    size_t o = 0;
    for (size_t i = 0; i < sizeof raw && o + 3 <= size; i++) {
        static const char hex[] = "0123456789abcdef";
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[raw[i] >> 4];
        out[o++] = hex[raw[i] & 15];
    }
    out[o] = '\0';
}

static void post_silence(struct mw_alert_api *api, struct mw_http_exchange *ex,
                         const struct mw_http_request *req)
{
    json_error_t jerr;
    json_t *doc = req->body ? json_loadb(req->body, req->body_len, 0, &jerr) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        mw_http_respond_error(ex, 400,
                              "a JSON object is required: {\"matchers\": [...], "
                              "\"ends_at_ms\" or \"duration\", \"created_by\", "
                              "\"comment\"}");
        return;
    }
    int64_t now = mw_clock_wall_ms();
    const json_t *ms = json_object_get(doc, "matchers");
    const char *texts[MW_SILENCE_MAX_MATCHERS];
    size_t n = json_array_size(ms);
    const char *bad = NULL;
    if (!json_is_array(ms) || n == 0 || n > MW_SILENCE_MAX_MATCHERS)
        bad = "matchers: a list of 1 to 32 matchers such as alertname=\"ModelDrift\"";
    for (size_t i = 0; !bad && i < n; i++)
        if (!(texts[i] = json_string_value(json_array_get(ms, i))))
            bad = "matchers: each a string such as model=\"churn\"";
    int64_t starts = now, ends = 0;
    const json_t *s_ms = json_object_get(doc, "starts_at_ms");
    const json_t *e_ms = json_object_get(doc, "ends_at_ms");
    const char *duration = json_string_value(json_object_get(doc, "duration"));
    if (!bad && s_ms) {
        if (!json_is_integer(s_ms))
            bad = "starts_at_ms: epoch milliseconds";
        else
            starts = json_integer_value(s_ms);
    }
    if (!bad && e_ms && duration)
        bad = "give ends_at_ms or duration, not both";
    if (!bad && e_ms) {
        if (!json_is_integer(e_ms))
            bad = "ends_at_ms: epoch milliseconds";
        else
            ends = json_integer_value(e_ms);
    } else if (!bad && duration) {
        int64_t d;
        if (mw_config_parse_duration_ms(duration, &d) != 0 || d <= 0)
            bad = "duration: e.g. 30m, 2h, 1d";
        else
            ends = starts + d;
    } else if (!bad) {
        bad = "ends_at_ms or duration is required";
    }
    if (!bad && (ends <= now || ends - starts > MAX_SILENCE_MS))
        bad = "ends_at_ms: in the future, and at most 366 days after starts_at_ms";
    if (bad) {
        json_decref(doc);
        mw_http_respond_error(ex, 400, bad);
        return;
    }
    char id[64], why[256];
    new_id(id, sizeof id);
    const char *by = json_string_value(json_object_get(doc, "created_by"));
    const char *comment = json_string_value(json_object_get(doc, "comment"));
    struct mw_silence s;
    int rc = mw_silence_init(&s, id, texts, n, starts, ends, by ? by : "", comment ? comment : "",
                             why, sizeof why);
    json_decref(doc);
    if (rc) {
        mw_http_respond_error(ex, rc == MW_ENOMEM ? 500 : 400,
                              rc == MW_ENOMEM ? "out of memory" : why);
        return;
    }
    char quoted[300];
    MW_LOG_INFO("api", "silence created", "id=%s created_by=%s matchers=%zu ends_at_ms=%lld", id,
                mw_log_quote(s.created_by, quoted, sizeof quoted), s.matchers.n,
                (long long)s.ends_at_ms);
    rc = store_silence(api, ex, &s, false);
    mw_silence_free(&s);
    if (rc)
        mw_http_respond_error(ex, 503, "Redis unavailable: silence not stored");
}

struct expire_query {
    struct mw_alert_api *api;
    struct mw_http_exchange *ex;
};

static void on_silence_to_expire(redisReply *reply, void *arg)
{
    struct expire_query *q = arg;
    struct mw_http_exchange *ex = q->ex;
    struct mw_alert_api *api = q->api;
    mw_free(q);
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        mw_http_respond_error(ex, 503, "Redis unavailable");
        return;
    }
    struct mw_silences one = {0};
    struct mw_silence s;
    char why[200];
    if (reply->type != REDIS_REPLY_STRING ||
        mw_silence_decode(reply->str, reply->len, &s, why, sizeof why) != 0) {
        mw_http_respond_error(ex, 404, "no such silence");
        return;
    }
    if (mw_silences_add(&one, &s) != 0) {
        mw_silence_free(&s);
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    int64_t now = mw_clock_wall_ms();
    if (mw_silences_expire(&one, one.items[0].id, now) != 0) {
        mw_silences_free(&one);
        mw_http_respond_error(ex, 404, "the silence has expired already");
        return;
    }
    MW_LOG_INFO("api", "silence expired", "id=%s", one.items[0].id);
    if (store_silence(api, ex, &one.items[0], true) != 0)
        mw_http_respond_error(ex, 503, "Redis unavailable: silence not expired");
    mw_silences_free(&one);
}

static void delete_silence(struct mw_alert_api *api, struct mw_http_exchange *ex, const char *id)
{
    if (!*id || strlen(id) > 60 || strchr(id, '/')) {
        mw_http_respond_error(ex, 404, "no such silence");
        return;
    }
    struct expire_query *q = mw_calloc(1, sizeof *q);
    if (!q) {
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    *q = (struct expire_query){api, ex};
    const char *argv[] = {"HGET", MW_SCHEMA_ALERT_SILENCES_KEY, id};
    if (mw_store_commandv(api->store, on_silence_to_expire, q, 3, argv) != 0) {
        mw_free(q);
        mw_http_respond_error(ex, 503, "Redis unavailable");
    }
}

/* ---- routing -------------------------------------------------------------------------------- */

static void on_alerts(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    get_alerts(arg, ex, req);
}

static void on_silences(struct mw_http_exchange *ex, const struct mw_http_request *req, void *arg)
{
    struct mw_alert_api *api = arg;
    const char *rest = req->path + strlen(SILENCES_PATH);
    bool top = *rest == '\0' || strcmp(rest, "/") == 0;
    if (strcmp(req->method, "GET") == 0 && top) {
        const char *argv[] = {"HGETALL", MW_SCHEMA_ALERT_SILENCES_KEY};
        if (mw_store_commandv(api->store, on_silence_list, ex, 2, argv) != 0)
            mw_http_respond_error(ex, 503, "Redis unavailable");
    } else if (strcmp(req->method, "POST") == 0 && top) {
        if (authorised(api, ex, req))
            post_silence(api, ex, req);
    } else if (strcmp(req->method, "DELETE") == 0 && !top && rest[0] == '/') {
        if (authorised(api, ex, req))
            delete_silence(api, ex, rest + 1);
    } else {
        mw_http_respond_error(ex, top ? 405 : 404, top ? "GET or POST" : "no such resource");
    }
}

int mw_alert_api_create(struct mw_http_server *srv, const struct mw_aggregator_config *cfg,
                        struct mw_store *store, struct mw_alerting *alerting,
                        struct mw_alert_api **out)
{
    struct mw_alert_api *api = mw_calloc(1, sizeof *api);
    if (!api)
        return MW_ENOMEM;
    *api = (struct mw_alert_api){.cfg = cfg, .store = store, .alerting = alerting};
    const char *file = cfg->alerting.api_token_file;
    if (file && *file) {
        char why[400];
        int rc = mw__receiver_read_secret(file, "alerting.api_token_file", true, api->token,
                                          sizeof api->token, &api->token_len, why, sizeof why);
        if (rc) {
            MW_LOG_ERROR("api", "cannot read the API token", "error=\"%s\"", why);
            mw_free(api);
            return rc;
        }
        api->has_token = true;
    }
    int rc = mw_http_server_route(srv, "GET", ALERTS_PATH, false, on_alerts, api);
    static const char *const methods[] = {"GET", "POST", "DELETE"};
    for (size_t i = 0; !rc && i < 3; i++)
        rc = mw_http_server_route(srv, methods[i], SILENCES_PATH, true, on_silences, api);
    if (rc) {
        OPENSSL_cleanse(api->token, sizeof api->token);
        mw_free(api);
        return rc;
    }
    *out = api;
    return 0;
}

void mw_alert_api_destroy(struct mw_alert_api *api)
{
    if (!api)
        return;
    OPENSSL_cleanse(api->token, sizeof api->token);
    mw_free(api);
}
