/* client_message.c — decode and check one client message (see client_message.h). */
#include "client_message.h"

#include "error.h"
#include "names.h"

#include <limits.h>
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

/* Wire types, and the field numbers read here (proto/telemetry.proto). */
enum { WT_VARINT = 0, WT_64BIT = 1, WT_LEN = 2, WT_32BIT = 5 };
enum { CM_EVENT = 1, CM_FEEDBACK = 2, CM_STREAM = 3 }; /* the members of ClientMessage.body */
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

/* One field: its number, wire type, and value bytes (a varint's bytes; a length-delimited
 * field's payload, after its length). */
struct wire_field {
    uint32_t tag;
    uint8_t type;
    const uint8_t *data;
    size_t len;
};

/* The next field at *p (before end), read as protobuf-c 1.4 reads it: a tag of at most 5 bytes
 * and never 0, a varint of at most 10, a length of at most 5 bytes and INT_MAX, no groups.
 * Returns false where protobuf-c refuses the message too. Any field; next_field() below takes
 * the common shapes first. */
static bool next_field_any(const uint8_t **p, const uint8_t *end, struct wire_field *f)
{
    const uint8_t *at = *p;
    size_t rem = (size_t)(end - at);
    if ((at[0] & 0xf8) == 0)
        return false;
    f->type = at[0] & 7;
    uint32_t tag = (uint32_t)(at[0] & 0x7f) >> 3;
    size_t used = 1;
    if (at[0] & 0x80) {
        size_t max = rem < 5 ? rem : 5;
        unsigned shift = 4;
        for (;;) {
            if (used == max)
                return false;
            uint8_t b = at[used++];
            tag |= (uint32_t)(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80))
                break;
        }
    }
    f->tag = tag;
    at += used;
    rem -= used;
    size_t n;
    switch (f->type) {
    case WT_VARINT: {
        size_t max = rem < 10 ? rem : 10;
        for (n = 0; n < max && (at[n] & 0x80); n++)
            ;
        if (n == max)
            return false;
        f->data = at;
        f->len = n + 1;
        break;
    }
    case WT_64BIT:
    case WT_32BIT:
        n = f->type == WT_64BIT ? 8 : 4;
        if (rem < n)
            return false;
        f->data = at;
        f->len = n;
        break;
    case WT_LEN: {
        size_t max = rem < 5 ? rem : 5, value = 0, i;
        for (i = 0; i < max; i++) {
            value |= (size_t)(at[i] & 0x7f) << (7 * i);
            if (!(at[i] & 0x80))
                break;
        }
        if (i == max || value > INT_MAX || i + 1 + value > rem)
            return false;
        f->data = at + i + 1;
        f->len = value;
        *p = f->data + value;
        return true;
    }
    default:
        return false; /* groups (3, 4) and the unused types 6, 7 */
    }
    *p = at + f->len;
    return true;
}

/* next_field_any, inlined for what nearly every field of an event is: a one-byte key, then a
 * length under 128 or a varint. */
static inline __attribute__((always_inline)) bool next_field(const uint8_t **p,
                                                            const uint8_t *end,
                                                            struct wire_field *f)
{
    const uint8_t *at = *p;
    size_t rem = (size_t)(end - at);
    if (rem >= 2 && !(at[0] & 0x80) && (at[0] & 0xf8)) {
        uint8_t type = at[0] & 7;
        if (type == WT_LEN && !(at[1] & 0x80)) {
            if (at[1] > rem - 2)
                return false;
            f->tag = at[0] >> 3;
            f->type = WT_LEN;
            f->len = at[1];
            f->data = at + 2;
            *p = f->data + f->len;
            return true;
        }
        if (type == WT_VARINT) {
            size_t max = rem - 1 < 10 ? rem - 1 : 10, n = 0;
            while (n < max && (at[1 + n] & 0x80))
                n++;
            if (n == max)
                return false;
            f->tag = at[0] >> 3;
            f->type = WT_VARINT;
            f->data = at + 1;
            f->len = n + 1;
            *p = f->data + f->len;
            return true;
        }
    }
    return next_field_any(p, end, f);
}

/* A varint's value as protobuf-c's parse_uint64 computes it. */
static uint64_t varint64(const struct wire_field *f)
{
    uint64_t v = 0;
    for (size_t i = 0; i < f->len; i++)
        v |= (uint64_t)(f->data[i] & 0x7f) << (7 * i);
    return v;
}

/* A varint as protobuf-c's parse_boolean reads it: true when any of its bits is set, even one
 * beyond the 64 a varint64 keeps. */
static protobuf_c_boolean varint_bool(const struct wire_field *f)
{
    for (size_t i = 0; i < f->len; i++)
        if (f->data[i] & 0x7f)
            return 1;
    return 0;
}

/* A varint's value as protobuf-c's parse_uint32 computes it (an enum or int32): the fifth byte
 * is taken whole, later ones not at all. */
static uint32_t varint32(const struct wire_field *f)
{
    uint32_t v = 0;
    for (size_t i = 0; i < f->len && i < 4; i++)
        v |= (uint32_t)(f->data[i] & 0x7f) << (7 * i);
    if (f->len > 4)
        v |= (uint32_t)f->data[4] << 28;
    return v;
}

/* Where each string of the head sits on the wire; protobuf-c copies it as a C string, so it
 * ends at its first NUL byte. */
struct head_strings {
    struct wire_field model, version, prediction_id, error_code;
};

static size_t c_string_len(const struct wire_field *f)
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
        return WT_LEN;
    case EV_EVENT_TIME_MS:
    case EV_LATENCY_US:
    case EV_STATUS:
    case EV_INPUT_TOKENS:
    case EV_OUTPUT_TOKENS:
    case EV_PAYLOAD_OMITTED:
        return WT_VARINT;
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
        struct wire_field f;
        if (!next_field(&p, end, &f))
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
            ev->payload_omitted = varint_bool(&f);
            break;
        default:
            break; /* features, output */
        }
    }
    return true;
}

/* Copy a wire string, as a C string, to *cursor and move it past the copy; NULL when the
 * field was absent. */
static char *copy_string(const struct wire_field *f, char **cursor)
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
        struct wire_field f;
        if (!next_field(&p, end, &f))
            return 1;
        if (f.tag == CM_EVENT || f.tag == CM_FEEDBACK || f.tag == CM_STREAM) {
            if (f.type != WT_LEN)
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
        struct wire_field f;
        if (!next_field(&p, end, &f))
            return false;
        int want = type_of(f.tag);
        if (want == -2)
            want = f.type == WT_LEN ? (f.len % 8 == 0 ? WT_LEN : -3) : WT_64BIT;
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
        return WT_LEN;
    case FEATURE_NUMERIC:
        return WT_64BIT;
    default:
        return -1; /* unknown, or `missing`: protobuf-c reads a bool from any wire type */
    }
}

static int output_field_type(uint32_t tag)
{
    switch (tag) {
    case OUT_CLASS:
    case OUT_CLASS_NAMES:
        return WT_LEN;
    case OUT_SCORE:
    case OUT_VALUE:
        return WT_64BIT;
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
        struct wire_field f;
        if (!next_field(&p, end, &f))
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
        struct wire_field f;
        if (!next_field(&p, end, &f))
            return false;
        if (f.tag == CM_FEEDBACK || f.tag == CM_STREAM)
            return false; /* not checked here: the whole decode decides */
        if (f.tag == CM_EVENT) {
            Modelwatch__V1__PredictionEvent ev;
            modelwatch__v1__prediction_event__init(&ev);
            struct head_strings s = {0};
            if (f.type != WT_LEN || !read_event_head(f.data, f.len, &ev, &s) ||
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
