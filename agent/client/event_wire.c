/* event_wire.c — a prediction event written as protobuf-c writes it (see event_wire.h). */
#include "event_wire.h"

#include <string.h>

/* Keys (field number << 3 | wire type) of the fields written here: every field number is below
 * 16, so every key is one byte. */
enum {
    KEY_MESSAGE_EVENT = 1 << 3 | 2,
    KEY_MODEL = 1 << 3 | 2,
    KEY_VERSION = 2 << 3 | 2,
    KEY_PREDICTION_ID = 3 << 3 | 2,
    KEY_EVENT_TIME_MS = 4 << 3 | 0,
    KEY_LATENCY_US = 5 << 3 | 0,
    KEY_STATUS = 6 << 3 | 0,
    KEY_ERROR_CODE = 7 << 3 | 2,
    KEY_FEATURE = 8 << 3 | 2,
    KEY_OUTPUT = 9 << 3 | 2,
    KEY_INPUT_TOKENS = 10 << 3 | 0,
    KEY_OUTPUT_TOKENS = 11 << 3 | 0,
    KEY_PAYLOAD_OMITTED = 12 << 3 | 0,
    KEY_FEATURE_NAME = 1 << 3 | 2,
    KEY_FEATURE_NUMERIC = 2 << 3 | 1,
    KEY_FEATURE_CATEGORICAL = 3 << 3 | 2,
    KEY_FEATURE_MISSING = 4 << 3 | 0,
    KEY_OUTPUT_CLASS = 1 << 3 | 2,
    KEY_OUTPUT_SCORE = 2 << 3 | 1,
    KEY_OUTPUT_SCORES = 3 << 3 | 1, /* repeated double, not packed (proto2) */
    KEY_OUTPUT_CLASS_NAME = 4 << 3 | 2,
    KEY_OUTPUT_VALUE = 5 << 3 | 1,
};

/* Status as the enum's wire value (telemetry.proto: STATUS_OK = 1, STATUS_ERROR = 2). */
static uint64_t status_value(const struct mw_event *ev)
{
    return ev->status == MW_STATUS_ERROR ? 2 : 1;
}

/* A length-delimited field of n bytes, key included. */
static size_t delimited_size(size_t n)
{
    return 1 + mw_varint_size(n) + n;
}

static size_t string_size(const char *s)
{
    return delimited_size(strlen(s));
}

static size_t feature_size(const struct mw_feature *f)
{
    size_t n = string_size(f->name);
    switch (f->kind) {
    case MW_FEATURE_NUMERIC:
        return n + 9;
    case MW_FEATURE_CATEGORICAL:
        return n + string_size(f->categorical);
    default: /* MW_FEATURE_MISSING: missing = true */
        return n + 2;
    }
}

static size_t output_size(const struct mw_event *ev)
{
    size_t n = 0;
    if (ev->predicted_class)
        n += string_size(ev->predicted_class);
    if (ev->has_score)
        n += 9;
    n += 9 * ev->n_scores;
    if (ev->class_names)
        for (size_t i = 0; i < ev->n_scores; i++)
            n += string_size(ev->class_names[i]);
    if (ev->has_value)
        n += 9;
    return n;
}

size_t mw_event_wire_size(const struct mw_event *ev, int64_t event_time_ms, bool payload_omitted,
                          struct mw_event_wire *w)
{
    w->ev = ev;
    w->version = ev->version ? ev->version : "";
    w->event_time_ms = event_time_ms;
    w->payload_omitted = payload_omitted;
    w->output_bytes = payload_omitted ? 0 : output_size(ev);
    size_t n = string_size(ev->model) + string_size(w->version) + string_size(ev->prediction_id);
    n += 1 + mw_varint_size((uint64_t)event_time_ms);
    n += 1 + mw_varint_size(ev->latency_us);
    n += 1 + mw_varint_size(status_value(ev));
    if (ev->error_code)
        n += string_size(ev->error_code);
    if (!payload_omitted) {
        for (size_t i = 0; i < ev->n_features; i++)
            n += delimited_size(feature_size(&ev->features[i]));
        n += delimited_size(w->output_bytes);
    }
    if (ev->input_tokens)
        n += 1 + mw_varint_size(ev->input_tokens);
    if (ev->output_tokens)
        n += 1 + mw_varint_size(ev->output_tokens);
    if (payload_omitted)
        n += 2;
    w->event_bytes = n;
    w->total_bytes = delimited_size(n);
    return w->total_bytes;
}

static uint8_t *put_key_varint(uint8_t *p, uint8_t key, uint64_t v)
{
    *p++ = key;
    return p + mw_put_varint(p, v);
}

static uint8_t *put_bytes(uint8_t *p, uint8_t key, const void *data, size_t n)
{
    p = put_key_varint(p, key, n);
    memcpy(p, data, n);
    return p + n;
}

static uint8_t *put_string(uint8_t *p, uint8_t key, const char *s)
{
    return put_bytes(p, key, s, strlen(s));
}

/* A double as protobuf's fixed 64 bits, little-endian whatever the host. */
static uint8_t *put_double(uint8_t *p, uint8_t key, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    *p++ = key;
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(bits >> (8 * i));
    return p;
}

static uint8_t *put_feature(uint8_t *p, const struct mw_feature *f)
{
    p = put_key_varint(p, KEY_FEATURE, feature_size(f));
    p = put_string(p, KEY_FEATURE_NAME, f->name);
    switch (f->kind) {
    case MW_FEATURE_NUMERIC:
        return put_double(p, KEY_FEATURE_NUMERIC, f->numeric);
    case MW_FEATURE_CATEGORICAL:
        return put_string(p, KEY_FEATURE_CATEGORICAL, f->categorical);
    default:
        return put_key_varint(p, KEY_FEATURE_MISSING, 1);
    }
}

static uint8_t *put_output(uint8_t *p, const struct mw_event *ev, size_t output_bytes)
{
    p = put_key_varint(p, KEY_OUTPUT, output_bytes);
    if (ev->predicted_class)
        p = put_string(p, KEY_OUTPUT_CLASS, ev->predicted_class);
    if (ev->has_score)
        p = put_double(p, KEY_OUTPUT_SCORE, ev->score);
    for (size_t i = 0; i < ev->n_scores; i++)
        p = put_double(p, KEY_OUTPUT_SCORES, ev->scores[i]);
    if (ev->class_names)
        for (size_t i = 0; i < ev->n_scores; i++)
            p = put_string(p, KEY_OUTPUT_CLASS_NAME, ev->class_names[i]);
    if (ev->has_value)
        p = put_double(p, KEY_OUTPUT_VALUE, ev->value);
    return p;
}

void mw_event_wire_write(const struct mw_event_wire *w, uint8_t *out)
{
    const struct mw_event *ev = w->ev;
    uint8_t *p = put_key_varint(out, KEY_MESSAGE_EVENT, w->event_bytes);
    p = put_string(p, KEY_MODEL, ev->model);
    p = put_string(p, KEY_VERSION, w->version);
    p = put_string(p, KEY_PREDICTION_ID, ev->prediction_id);
    p = put_key_varint(p, KEY_EVENT_TIME_MS, (uint64_t)w->event_time_ms);
    p = put_key_varint(p, KEY_LATENCY_US, ev->latency_us);
    p = put_key_varint(p, KEY_STATUS, status_value(ev));
    if (ev->error_code)
        p = put_string(p, KEY_ERROR_CODE, ev->error_code);
    if (!w->payload_omitted) {
        for (size_t i = 0; i < ev->n_features; i++)
            p = put_feature(p, &ev->features[i]);
        p = put_output(p, ev, w->output_bytes);
    }
    if (ev->input_tokens)
        p = put_key_varint(p, KEY_INPUT_TOKENS, ev->input_tokens);
    if (ev->output_tokens)
        p = put_key_varint(p, KEY_OUTPUT_TOKENS, ev->output_tokens);
    if (w->payload_omitted)
        put_key_varint(p, KEY_PAYLOAD_OMITTED, 1);
}
