/* batch_json.c — a protobuf Batch from its JSON description (batch_json.h). */
#include "batch_json.h"

#include "latency_hist.h"

#include <stdlib.h>
#include <string.h>

int64_t mw_json_i64(json_t *o, const char *key, int64_t def)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v))
        return (int64_t)strtoll(json_string_value(v), NULL, 10);
    return def;
}

uint64_t mw_json_u64(json_t *o, const char *key, uint64_t def)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (uint64_t)json_integer_value(v);
    if (json_is_string(v))
        return (uint64_t)strtoull(json_string_value(v), NULL, 10);
    return def;
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

static Modelwatch__V1__Record *label_record(json_t *l)
{
    Modelwatch__V1__Record *rec = calloc(1, sizeof *rec);
    modelwatch__v1__record__init(rec);
    Modelwatch__V1__Feedback *fb = calloc(1, sizeof *fb);
    modelwatch__v1__feedback__init(fb);
    fb->model = str(l, "model");
    fb->version = str(l, "version");
    fb->prediction_id = str(l, "id");
    fb->has_event_time_ms = json_object_get(l, "t") != NULL;
    fb->event_time_ms = mw_json_i64(l, "t", 0);
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

static Modelwatch__V1__Record *record(json_t *r)
{
    json_t *e = json_object_get(r, "event"), *l = json_object_get(r, "label");
    if (l)
        return label_record(l);
    Modelwatch__V1__Record *rec = calloc(1, sizeof *rec);
    modelwatch__v1__record__init(rec);
    Modelwatch__V1__PredictionEvent *ev = calloc(1, sizeof *ev);
    modelwatch__v1__prediction_event__init(ev);
    ev->model = str(e, "model");
    ev->version = str(e, "version");
    ev->prediction_id = str(e, "id");
    ev->has_event_time_ms = json_object_get(e, "t") != NULL;
    ev->event_time_ms = mw_json_i64(e, "t", 0);
    ev->has_latency_us = ev->has_status = 1;
    ev->latency_us = mw_json_u64(e, "latency_us", 0);
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
    mc->bucket_start_ms = mw_json_i64(c, "start_ms", 0);
    mc->bucket_width_ms = mw_json_i64(c, "width_ms", 60000);
    mc->count = mw_json_u64(c, "count", 0);
    mc->has_error_count = mc->has_feedback_count = 1;
    mc->error_count = mw_json_u64(c, "errors", 0);
    mc->feedback_count = mw_json_u64(c, "feedback", 0);
    mc->has_input_tokens = json_object_get(c, "tokens_in") != NULL;
    mc->input_tokens = mw_json_u64(c, "tokens_in", 0);
    mc->has_output_tokens = json_object_get(c, "tokens_out") != NULL;
    mc->output_tokens = mw_json_u64(c, "tokens_out", 0);
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
            json_t *x = json_array_get(lat, i);
            uint64_t us = json_is_string(x) ? strtoull(json_string_value(x), NULL, 10)
                                            : (uint64_t)json_integer_value(x);
            h->bucket_index[h->n_bucket_index++] = mw_latency_bucket(us);
            h->bucket_count[h->n_bucket_count++] = 1;
            h->sum_us += us;
        }
        h->has_sum_us = 1;
        h->sum_us = mw_json_u64(c, "sum_us", h->sum_us);
        mc->latency = h;
    }
    return mc;
}

Modelwatch__V1__Batch *mw_batch_json(json_t *spec)
{
    Modelwatch__V1__Identity *id = calloc(1, sizeof *id);
    Modelwatch__V1__Batch *b = calloc(1, sizeof *b);
    Modelwatch__V1__MetricsSnapshot *snap = calloc(1, sizeof *snap);
    if (!id || !b || !snap)
        return NULL;
    modelwatch__v1__identity__init(id);
    modelwatch__v1__batch__init(b);
    modelwatch__v1__metrics_snapshot__init(snap);
    id->agent_id = str(spec, "agent");
    id->boot_id = str(spec, "boot");
    b->has_schema_version = b->has_sequence = 1;
    b->schema_version = (uint32_t)mw_json_u64(spec, "schema_version", 1);
    b->sequence = mw_json_u64(spec, "sequence", 0);
    b->identity = id;
    json_t *recs = json_object_get(spec, "records"), *cnts = json_object_get(spec, "counters");
    b->records = calloc(json_array_size(recs) + 1, sizeof *b->records);
    for (size_t i = 0; i < json_array_size(recs); i++)
        b->records[b->n_records++] = record(json_array_get(recs, i));
    snap->models = calloc(json_array_size(cnts) + 1, sizeof *snap->models);
    for (size_t i = 0; i < json_array_size(cnts); i++)
        snap->models[snap->n_models++] = counters(json_array_get(cnts, i));
    b->snapshot = snap;
    return b;
}

void mw_batch_json_free(Modelwatch__V1__Batch *b)
{
    if (b)
        modelwatch__v1__batch__free_unpacked(b, NULL);
}
