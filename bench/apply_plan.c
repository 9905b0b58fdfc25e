/*
 * apply_plan.c — mw-apply-plan: the aggregator's apply plan of a batch described in JSON,
 * written as raw RESP, so tests and benchmarks can run apply.lua on a real redis-server with
 * exactly the arguments the aggregator would send.
 *
 *   mw-apply-plan < batch.json > commands.resp      (stdout: the commands, one per line of
 *                                                    stderr's JSON: {"commands": n})
 *
 * batch.json:
 *   {"sequence": 1, "agent": "a", "boot": "b",
 *    "options": {"now_ms", "watermark_ms", "fine_ms", "coarse_ms", "bucket_ms", "shards",
 *                "horizon_ms", "labels_models": [globs], "thresholds": {"model": t}},
 *    "profile": {...a profile document, for every model...} (optional),
 *    "counters": [{"model", "version", "start_ms", "width_ms", "count", "errors",
 *                  "error_code", "latencies_us": [...], "feedback"}],
 *    "records": [{"event": {"model", "version", "id", "t", "score", "class", "value",
 *                           "latency_us", "features": {"name": number or string}},
 *                 "weight", "label_sampled"},
 *                {"label": {"model", "id", "t", "class" or "value"}}]}
 */
#include "latency_hist.h"
#include "profile.h"
#include "window_apply.h"

#include <fnmatch.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *options;
static struct mw_profile *profile;

static int64_t opt_int(const char *key, int64_t def)
{
    json_t *v = json_object_get(options, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static const struct mw_profile *lookup(void *ctx, const char *model, const char *version)
{
    (void)ctx;
    (void)model;
    (void)version;
    return profile;
}

static void policy(void *ctx, const char *model, struct mw_label_policy *out)
{
    (void)ctx;
    json_t *globs = json_object_get(options, "labels_models");
    if (json_is_array(globs)) {
        out->expects_labels = false;
        size_t i;
        json_t *g;
        json_array_foreach(globs, i, g) if (fnmatch(json_string_value(g), model, 0) == 0)
            out->expects_labels = true;
    }
    json_t *t = json_object_get(json_object_get(options, "thresholds"), model);
    if (json_is_number(t))
        out->binary_threshold = json_number_value(t);
}

static char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? strdup(s) : NULL;
}

static Modelwatch__V1__Feature *feature(const char *name, json_t *v)
{
    Modelwatch__V1__Feature *f = calloc(1, sizeof *f);
    modelwatch__v1__feature__init(f);
    f->name = strdup(name);
    if (json_is_number(v)) {
        f->value_case = MODELWATCH__V1__FEATURE__VALUE_NUMERIC;
        f->numeric = json_number_value(v);
    } else if (json_is_string(v)) {
        f->value_case = MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL;
        f->categorical = strdup(json_string_value(v));
    } else {
        f->has_missing = f->missing = 1;
    }
    return f;
}

static Modelwatch__V1__Record *record(json_t *r)
{
    Modelwatch__V1__Record *rec = calloc(1, sizeof *rec);
    modelwatch__v1__record__init(rec);
    json_t *e = json_object_get(r, "event"), *l = json_object_get(r, "label");
    if (l) {
        Modelwatch__V1__Feedback *fb = calloc(1, sizeof *fb);
        modelwatch__v1__feedback__init(fb);
        fb->model = str(l, "model");
        fb->version = str(l, "version");
        fb->prediction_id = str(l, "id");
        fb->has_event_time_ms = 1;
        fb->event_time_ms = json_integer_value(json_object_get(l, "t"));
        if (json_object_get(l, "class")) {
            fb->label_case = MODELWATCH__V1__FEEDBACK__LABEL_LABEL_CLASS;
            fb->label_class = str(l, "class");
        } else {
            fb->label_case = MODELWATCH__V1__FEEDBACK__LABEL_LABEL_VALUE;
            fb->label_value = json_number_value(json_object_get(l, "value"));
        }
        rec->body_case = MODELWATCH__V1__RECORD__BODY_FEEDBACK;
        rec->feedback = fb;
        return rec;
    }
    Modelwatch__V1__PredictionEvent *ev = calloc(1, sizeof *ev);
    modelwatch__v1__prediction_event__init(ev);
    ev->model = str(e, "model");
    ev->version = str(e, "version");
    ev->prediction_id = str(e, "id");
    ev->has_event_time_ms = ev->has_latency_us = ev->has_status = 1;
    ev->event_time_ms = json_integer_value(json_object_get(e, "t"));
    ev->latency_us = (uint64_t)json_integer_value(json_object_get(e, "latency_us"));
    ev->status = MODELWATCH__V1__STATUS__STATUS_OK;
    Modelwatch__V1__Output *o = calloc(1, sizeof *o);
    modelwatch__v1__output__init(o);
    json_t *score = json_object_get(e, "score"), *value = json_object_get(e, "value");
    o->has_score = json_is_number(score);
    o->score = json_number_value(score);
    o->has_value = json_is_number(value);
    o->value = json_number_value(value);
    o->predicted_class = str(e, "class");
    ev->output = o;
    json_t *features = json_object_get(e, "features");
    ev->features = calloc(json_object_size(features) + 1, sizeof *ev->features);
    const char *name;
    json_t *v;
    json_object_foreach(features, name, v) ev->features[ev->n_features++] = feature(name, v);
    rec->body_case = MODELWATCH__V1__RECORD__BODY_EVENT;
    rec->event = ev;
    json_t *w = json_object_get(r, "weight"), *ls = json_object_get(r, "label_sampled");
    rec->has_weight = json_is_number(w);
    rec->weight = json_number_value(w);
    rec->has_label_sampled = json_is_boolean(ls);
    rec->label_sampled = json_is_true(ls);
    return rec;
}

static Modelwatch__V1__ModelCounters *counters(json_t *c)
{
    Modelwatch__V1__ModelCounters *mc = calloc(1, sizeof *mc);
    modelwatch__v1__model_counters__init(mc);
    mc->model = str(c, "model");
    mc->version = str(c, "version");
    mc->has_bucket_start_ms = mc->has_bucket_width_ms = mc->has_count = 1;
    mc->bucket_start_ms = json_integer_value(json_object_get(c, "start_ms"));
    mc->bucket_width_ms = json_integer_value(json_object_get(c, "width_ms"));
    mc->count = (uint64_t)json_integer_value(json_object_get(c, "count"));
    mc->has_error_count = mc->has_feedback_count = 1;
    mc->error_count = (uint64_t)json_integer_value(json_object_get(c, "errors"));
    mc->feedback_count = (uint64_t)json_integer_value(json_object_get(c, "feedback"));
    if (mc->error_count) {
        Modelwatch__V1__ErrorCount *ec = calloc(1, sizeof *ec);
        modelwatch__v1__error_count__init(ec);
        ec->code = str(c, "error_code");
        ec->has_count = 1;
        ec->count = mc->error_count;
        mc->errors = calloc(1, sizeof *mc->errors);
        mc->errors[0] = ec;
        mc->n_errors = 1;
    }
    json_t *lat = json_object_get(c, "latencies_us");
    if (json_array_size(lat)) {
        Modelwatch__V1__LatencyHistogram *h = calloc(1, sizeof *h);
        modelwatch__v1__latency_histogram__init(h);
        size_t n = json_array_size(lat);
        h->bucket_index = calloc(n, sizeof *h->bucket_index);
        h->bucket_count = calloc(n, sizeof *h->bucket_count);
        for (size_t i = 0; i < n; i++) {
            uint64_t us = (uint64_t)json_integer_value(json_array_get(lat, i));
            h->bucket_index[h->n_bucket_index++] = mw_latency_bucket(us);
            h->bucket_count[h->n_bucket_count++] = 1;
            h->sum_us += us;
        }
        h->has_sum_us = 1;
        mc->latency = h;
    }
    return mc;
}

int main(void)
{
    json_error_t jerr;
    json_t *spec = json_loadf(stdin, 0, &jerr);
    if (!spec) {
        fprintf(stderr, "mw-apply-plan: %s (line %d)\n", jerr.text, jerr.line);
        return 2;
    }
    options = json_object_get(spec, "options");
    json_t *pj = json_object_get(spec, "profile");
    if (pj) {
        char *text = json_dumps(pj, JSON_COMPACT);
        char err[256];
        if (mw_profile_parse(text, strlen(text), &profile, err, sizeof err) != 0) {
            fprintf(stderr, "mw-apply-plan: profile: %s\n", err);
            return 2;
        }
        free(text);
    }
    Modelwatch__V1__Identity id = MODELWATCH__V1__IDENTITY__INIT;
    id.agent_id = str(spec, "agent");
    id.boot_id = str(spec, "boot");
    Modelwatch__V1__Batch b = MODELWATCH__V1__BATCH__INIT;
    b.has_schema_version = b.has_sequence = 1;
    b.schema_version = 1;
    b.sequence = (uint64_t)json_integer_value(json_object_get(spec, "sequence"));
    b.identity = &id;
    json_t *recs = json_object_get(spec, "records"), *cnts = json_object_get(spec, "counters");
    b.records = calloc(json_array_size(recs) + 1, sizeof *b.records);
    for (size_t i = 0; i < json_array_size(recs); i++)
        b.records[b.n_records++] = record(json_array_get(recs, i));
    Modelwatch__V1__MetricsSnapshot snap = MODELWATCH__V1__METRICS_SNAPSHOT__INIT;
    snap.models = calloc(json_array_size(cnts) + 1, sizeof *snap.models);
    for (size_t i = 0; i < json_array_size(cnts); i++)
        snap.models[snap.n_models++] = counters(json_array_get(cnts, i));
    b.snapshot = &snap;

    struct mw_window_spec specs[] = {
        {opt_int("fine_ms", 60000), 172800000, true},
        {opt_int("coarse_ms", 3600000), 2592000000, true},
    };
    struct mw_apply_options opt = {
        .specs = specs,
        .n_specs = 2,
        .dedup_retention_ms = 604800000,
        .watermark_ms = opt_int("watermark_ms", INT64_MIN),
        .allowed_lateness_ms = 300000,
        .model_watermark_ms = opt_int("model_watermark_ms", 0),
        .label_horizon_ms = opt_int("horizon_ms", 14 * 86400000LL),
        .profile = profile ? lookup : NULL,
        .label_policy = policy,
        .now_ms = opt_int("now_ms", 0),
        .pending_bucket_ms = opt_int("bucket_ms", 0),
        .pending_shards = (uint32_t)opt_int("shards", 0),
    };
    struct mw_apply_plan plan;
    int rc = mw_apply_plan_build(&b, &opt, &plan);
    if (rc) {
        fprintf(stderr, "mw-apply-plan: plan: %d\n", rc);
        return 1;
    }
    for (size_t i = 0; i < plan.n_cmds; i++) {
        char *out;
        int n = redisFormatCommandArgv(&out, (int)plan.cmds[i].argc,
                                       (const char **)plan.cmds[i].argv, plan.cmds[i].argvlen);
        if (n < 0 || fwrite(out, 1, (size_t)n, stdout) != (size_t)n)
            return 1;
        redisFreeCommand(out);
    }
    fprintf(stderr, "{\"commands\": %zu, \"models\": %zu}\n", plan.n_cmds, plan.n_models);
    mw_apply_plan_free(&plan);
    return 0; /* the batch is left to the process exit */
}
