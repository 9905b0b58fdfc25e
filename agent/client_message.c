/* client_message.c — decode and check one client message (see client_message.h). */
#include "client_message.h"

#include "error.h"
#include "latency_hist.h"
#include "names.h"
#include "sampling_rules.h"
#include "wire.h"

#include <stdbool.h>
#include <string.h>

static bool names_ok(const char *model, const char *version)
{
    return mw_model_name_valid(model) && mw_version_valid(version);
}

static int check_event(const Modelwatch__V1__PredictionEvent *ev)
{
    if (!ev->prediction_id || !*ev->prediction_id || !ev->has_event_time_ms)
        return MW_EPARSE;
    return names_ok(ev->model, ev->version) ? 0 : MW_EINVAL;
}

static int check_feedback(const Modelwatch__V1__Feedback *fb)
{
    if (!fb->prediction_id || !*fb->prediction_id ||
        fb->label_case == MODELWATCH__V1__FEEDBACK__LABEL__NOT_SET)
        return MW_EPARSE;
    return names_ok(fb->model, fb->version) ? 0 : MW_EINVAL;
}

/* Sum with overflow detection: false when a + b does not fit. */
static bool add_u64(uint64_t *sum, uint64_t n)
{
    return !__builtin_add_overflow(*sum, n, sum);
}

static bool counts_errors_ok(const Modelwatch__V1__ModelCounters *mc)
{
    uint64_t errors = 0;
    if (mc->n_errors > MW_SAMPLING_COUNT_MAX_ERROR_CODES)
        return false;
    for (size_t i = 0; i < mc->n_errors; i++) {
        const Modelwatch__V1__ErrorCount *e = mc->errors[i];
        if (!e->code || !e->has_count || e->count == 0 || !add_u64(&errors, e->count))
            return false;
    }
    return errors == mc->error_count;
}

static bool counts_latency_ok(const Modelwatch__V1__ModelCounters *mc)
{
    const Modelwatch__V1__LatencyHistogram *h = mc->latency;
    if (!h || h->n_bucket_index != h->n_bucket_count)
        return false;
    uint64_t total = 0;
    for (size_t i = 0; i < h->n_bucket_index; i++)
        if (h->bucket_index[i] >= MW_LATENCY_BUCKETS || !add_u64(&total, h->bucket_count[i]))
            return false;
    return total == mc->count;
}

/* Counts a client sent for events it did not send (ClientMessage.counts): one aligned bucket
 * of one (model, version), at least one event, errors and latencies that add up to it, no
 * feedback. */
static int check_counts(const Modelwatch__V1__ModelCounters *mc)
{
    if (!mc->has_bucket_start_ms || !mc->has_bucket_width_ms || mc->bucket_width_ms <= 0 ||
        mc->bucket_width_ms > MW_SAMPLING_COUNT_BUCKET_MAX_MS || mc->bucket_start_ms < 0 ||
        mc->bucket_start_ms % mc->bucket_width_ms != 0 || !mc->has_count || mc->count == 0 ||
        mc->error_count > mc->count || mc->feedback_count != 0 || !counts_errors_ok(mc) ||
        !counts_latency_ok(mc))
        return MW_EPARSE;
    return names_ok(mc->model, mc->version) ? 0 : MW_EINVAL;
}

int mw_client_message_decode(ProtobufCAllocator *alloc, const void *data, size_t len,
                             Modelwatch__V1__ClientMessage **out)
{
    *out = NULL;
    Modelwatch__V1__ClientMessage *msg = modelwatch__v1__client_message__unpack(alloc, len, data);
    if (!msg)
        return MW_EPARSE;
    int rc;
    if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT)
        rc = check_event(msg->event);
    else if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK)
        rc = check_feedback(msg->feedback);
    else if (msg->body_case == MODELWATCH__V1__CLIENT_MESSAGE__BODY_COUNTS)
        rc = check_counts(msg->counts);
    else
        rc = MW_EPARSE;
    if (rc) {
        modelwatch__v1__client_message__free_unpacked(msg, alloc);
        return rc;
    }
    *out = msg;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The head of an event, read off the wire                                                   */
/* ---------------------------------------------------------------------------------------- */

/* The field numbers read here (proto/telemetry.proto). */
/* The members of ClientMessage.body. */
enum { CM_EVENT = 1, CM_FEEDBACK = 2, CM_STREAM = 3, CM_COUNTS = 4 };
enum {
    EV_MODEL = 1,
    EV_VERSION = 2,
    EV_PREDICTION_ID = 3,
    EV_EVENT_TIME_MS = 4,
    EV_LATENCY_US = 5,
    EV_STATUS = 6,
    EV_ERROR_CODE = 7,
    EV_FEATURES = 8,
    EV_OUTPUT = 9,
    EV_INPUT_TOKENS = 10,
    EV_OUTPUT_TOKENS = 11,
    EV_PAYLOAD_OMITTED = 12,
};

/* A varint field's value as protobuf-c computes it (wire.h). */
static uint64_t varint64(const struct mw_wire_field *f)
{
    return mw_wire_u64(f->data, f->len);
}

static uint32_t varint32(const struct mw_wire_field *f)
{
    return mw_wire_u32(f->data, f->len);
}

/* Where each string of the head sits on the wire; protobuf-c copies it as a C string, so it
 * ends at its first NUL byte. */
struct head_strings {
    struct mw_wire_field model, version, prediction_id, error_code;
};

static size_t c_string_len(const struct mw_wire_field *f)
{
    return f->data ? strnlen((const char *)f->data, f->len) : 0;
}

/* The wire type protobuf-c requires of an event field this reader knows, or -1 for a field it
 * skips whatever its type (an unknown one, kept by protobuf-c and of no use here). */
static int event_field_type(uint32_t tag)
{
    switch (tag) {
    case EV_MODEL:
    case EV_VERSION:
    case EV_PREDICTION_ID:
    case EV_ERROR_CODE:
    case EV_FEATURES: /* the payload: skipped */
    case EV_OUTPUT:
        return MW_WIRE_LEN;
    case EV_EVENT_TIME_MS:
    case EV_LATENCY_US:
    case EV_STATUS:
    case EV_INPUT_TOKENS:
    case EV_OUTPUT_TOKENS:
    case EV_PAYLOAD_OMITTED:
        return MW_WIRE_VARINT;
    default:
        return -1;
    }
}

/* Read the PredictionEvent in data[0..len) into *ev (scalars) and *s (strings). Returns false
 * where protobuf-c would refuse the event's own fields. */
static bool read_event_head(const uint8_t *data, size_t len, Modelwatch__V1__PredictionEvent *ev,
                            struct head_strings *s)
{
    const uint8_t *p = data, *end = data + len;
    while (p < end) {
        struct mw_wire_field f;
        if (!mw_wire_next(&p, end, &f))
            return false;
        int want = event_field_type(f.tag);
        if (want < 0)
            continue;
        if (f.type != want)
            return false; /* protobuf-c refuses a known field of another wire type */
        switch (f.tag) {
        case EV_MODEL:
            s->model = f;
            break;
        case EV_VERSION:
            s->version = f;
            break;
        case EV_PREDICTION_ID:
            s->prediction_id = f;
            break;
        case EV_ERROR_CODE:
            s->error_code = f;
            break;
        case EV_EVENT_TIME_MS:
            ev->has_event_time_ms = 1;
            ev->event_time_ms = (int64_t)varint64(&f);
            break;
        case EV_LATENCY_US:
            ev->has_latency_us = 1;
            ev->latency_us = varint64(&f);
            break;
        case EV_STATUS:
            ev->has_status = 1;
            ev->status = (Modelwatch__V1__Status)(int32_t)varint32(&f);
            break;
        case EV_INPUT_TOKENS:
            ev->has_input_tokens = 1;
            ev->input_tokens = varint64(&f);
            break;
        case EV_OUTPUT_TOKENS:
            ev->has_output_tokens = 1;
            ev->output_tokens = varint64(&f);
            break;
        case EV_PAYLOAD_OMITTED: /* protobuf-c's bool: any bit set in the varint */
            ev->has_payload_omitted = 1;
            ev->payload_omitted = mw_wire_bool(&f);
            break;
        default:
            break; /* features, output */
        }
    }
    return true;
}

/* Copy a wire string, as a C string, to *cursor and move it past the copy; NULL when the
 * field was absent. */
static char *copy_string(const struct mw_wire_field *f, char **cursor)
{
    if (!f->data)
        return NULL;
    size_t n = c_string_len(f);
    char *out = *cursor;
    memcpy(out, f->data, n);
    out[n] = '\0';
    *cursor += n + 1;
    return out;
}

/* The event head of a ClientMessage, one allocation: 0 with *out set, 1 when this is not an
 * event this reader takes (the caller decodes the message whole), or MW_ENOMEM. */
static int decode_event_head(ProtobufCAllocator *alloc, const uint8_t *data, size_t len,
                             Modelwatch__V1__ClientMessage **out)
{
    const uint8_t *p = data, *end = data + len, *event = NULL;
    size_t event_len = 0;
    uint32_t body = 0;
    while (p < end) {
        struct mw_wire_field f;
        if (!mw_wire_next(&p, end, &f))
            return 1;
        if (f.tag == CM_EVENT || f.tag == CM_FEEDBACK || f.tag == CM_STREAM ||
            f.tag == CM_COUNTS) {
            if (f.type != MW_WIRE_LEN)
                return 1;
            body = f.tag; /* the last member of the oneof wins, as in protobuf-c */
            event = f.data;
            event_len = f.len;
        }
    }
    if (body != CM_EVENT)
        return 1;
    Modelwatch__V1__PredictionEvent head;
    modelwatch__v1__prediction_event__init(&head);
    struct head_strings s = {0};
    if (!read_event_head(event, event_len, &head, &s))
        return 1;
    size_t strings = c_string_len(&s.model) + c_string_len(&s.version) +
                     c_string_len(&s.prediction_id) + c_string_len(&s.error_code) + 4;
    struct block {
        Modelwatch__V1__ClientMessage msg;
        Modelwatch__V1__PredictionEvent event;
    } *b = alloc->alloc(alloc->allocator_data, sizeof *b + strings);
    if (!b)
        return MW_ENOMEM;
    modelwatch__v1__client_message__init(&b->msg);
    b->event = head;
    char *cursor = (char *)(b + 1);
    b->event.model = copy_string(&s.model, &cursor);
    b->event.version = copy_string(&s.version, &cursor);
    b->event.prediction_id = copy_string(&s.prediction_id, &cursor);
    b->event.error_code = copy_string(&s.error_code, &cursor);
    b->msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT;
    b->msg.event = &b->event;
    *out = &b->msg;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* An event's payload, checked without decoding it                                           */
/* ---------------------------------------------------------------------------------------- */

enum { FEATURE_NAME = 1, FEATURE_NUMERIC = 2, FEATURE_CATEGORICAL = 3, FEATURE_MISSING = 4 };
enum { OUT_CLASS = 1, OUT_SCORE = 2, OUT_SCORES = 3, OUT_CLASS_NAMES = 4, OUT_VALUE = 5 };

/* Whether every field of data[0..len) reads, and each known one by `type_of` has the wire type
 * protobuf-c needs (`type_of` returns the type, -1 for any, or -2 for Output.scores: packed
 * doubles or one double). */
static bool fields_ok(const uint8_t *data, size_t len, int (*type_of)(uint32_t tag))
{
    const uint8_t *p = data, *end = data + len;
    while (p < end) {
        struct mw_wire_field f;
        if (!mw_wire_next(&p, end, &f))
            return false;
        int want = type_of(f.tag);
        if (want == -2)
            want = f.type == MW_WIRE_LEN ? (f.len % 8 == 0 ? MW_WIRE_LEN : -3) : MW_WIRE_64BIT;
        if (want != -1 && f.type != want)
            return false;
    }
    return true;
}

static int feature_field_type(uint32_t tag)
{
    switch (tag) {
    case FEATURE_NAME:
    case FEATURE_CATEGORICAL:
        return MW_WIRE_LEN;
    case FEATURE_NUMERIC:
        return MW_WIRE_64BIT;
    default:
        return -1; /* unknown, or `missing`: protobuf-c reads a bool from any wire type */
    }
}

static int output_field_type(uint32_t tag)
{
    switch (tag) {
    case OUT_CLASS:
    case OUT_CLASS_NAMES:
        return MW_WIRE_LEN;
    case OUT_SCORE:
    case OUT_VALUE:
        return MW_WIRE_64BIT;
    case OUT_SCORES:
        return -2;
    default:
        return -1;
    }
}

/* The event's own fields were checked by read_event_head; its features and output here. */
static bool payload_ok(const uint8_t *data, size_t len)
{
    const uint8_t *p = data, *end = data + len;
    while (p < end) {
        struct mw_wire_field f;
        if (!mw_wire_next(&p, end, &f))
            return false;
        if (f.tag == EV_FEATURES && !fields_ok(f.data, f.len, feature_field_type))
            return false;
        if (f.tag == EV_OUTPUT && !fields_ok(f.data, f.len, output_field_type))
            return false;
    }
    return true;
}

bool mw_client_message_event_payload_ok(const void *data, size_t len)
{
    const uint8_t *p = data, *end = p + len;
    bool event_seen = false;
    while (p < end) {
        struct mw_wire_field f;
        if (!mw_wire_next(&p, end, &f))
            return false;
        if (f.tag == CM_FEEDBACK || f.tag == CM_STREAM || f.tag == CM_COUNTS)
            return false; /* not checked here: the whole decode decides */
        if (f.tag == CM_EVENT) {
            Modelwatch__V1__PredictionEvent ev;
            modelwatch__v1__prediction_event__init(&ev);
            struct head_strings s = {0};
            if (f.type != MW_WIRE_LEN || !read_event_head(f.data, f.len, &ev, &s) ||
                !payload_ok(f.data, f.len))
                return false;
            event_seen = true;
        }
    }
    return event_seen;
}

int mw_client_message_decode_head(ProtobufCAllocator *alloc, const void *data, size_t len,
                                  Modelwatch__V1__ClientMessage **out, bool *whole)
{
    *out = NULL;
    *whole = false;
    int rc = decode_event_head(alloc, data, len, out);
    if (rc == 1) {
        *whole = true;
        return mw_client_message_decode(alloc, data, len, out);
    }
    if (rc)
        return rc;
    rc = check_event((*out)->event);
    if (rc) {
        alloc->free(alloc->allocator_data, *out);
        *out = NULL;
    }
    return rc;
}
