/* test_event_wire.c — the client's event writer (agent/client/event_wire.c) writes, byte for
 * byte, what protobuf-c packs for the same event: the oracle below builds the ClientMessage as
 * protobuf-c structs (as mw_capture did before the writer) and packs it. Events of every shape:
 * no features to many, each kind of feature, strings across the one-, two- and three-byte
 * length boundaries, absent and empty optional strings, scores with and without class names,
 * zero and huge counters, negative and large event times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "event_wire.h"
#include "telemetry.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FEATURES 40
#define MAX_SCORES 6

static uint64_t rng_state = 88172645463325252ull;

static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t below(uint64_t n)
{
    return next_random() % n;
}

/* A string of a random length around one of the varint boundaries (or short). */
static char *random_string(char *buf, size_t cap)
{
    static const size_t lengths[] = {1, 5, 127, 128, 129, 16383, 16384};
    size_t n = below(4) ? 1 + below(12) : lengths[below(7)];
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + below(26));
    buf[n] = '\0';
    return buf;
}

static double random_double(void)
{
    switch (below(4)) {
    case 0:
        return 0.0;
    case 1:
        return -0.0;
    case 2:
        return (double)(int64_t)next_random() / 1e3;
    default:
        return (double)below(1000) / 1000.0;
    }
}

static uint64_t random_count(void)
{
    switch (below(3)) {
    case 0:
        return 0;
    case 1:
        return below(300);
    default:
        return next_random();
    }
}

struct shape {
    struct mw_event ev;
    struct mw_feature features[MAX_FEATURES];
    char names[MAX_FEATURES][200];
    char cats[MAX_FEATURES][200];
    double scores[MAX_SCORES];
    const char *class_names[MAX_SCORES];
    char class_bufs[MAX_SCORES][40];
    char model[64], version[300], id[20000], error_code[200], predicted[200];
};

static void random_event(struct shape *s)
{
    memset(&s->ev, 0, sizeof s->ev);
    s->ev.model = random_string(s->model, sizeof s->model);
    s->ev.version = below(3) ? random_string(s->version, sizeof s->version) : NULL;
    s->ev.prediction_id = random_string(s->id, sizeof s->id);
    s->ev.latency_us = random_count();
    s->ev.status = (int)below(3); /* 0 (unset), MW_STATUS_OK, MW_STATUS_ERROR */
    s->ev.error_code = below(2) ? NULL : below(4) ? random_string(s->error_code, 200) : "";
    s->ev.n_features = below(4) ? below(14) : below(MAX_FEATURES + 1);
    for (size_t i = 0; i < s->ev.n_features; i++) {
        struct mw_feature *f = &s->features[i];
        f->name = random_string(s->names[i], sizeof s->names[i]);
        f->kind = (enum mw_feature_kind)(MW_FEATURE_NUMERIC + (int)below(3));
        if (f->kind == MW_FEATURE_NUMERIC)
            f->numeric = random_double();
        else if (f->kind == MW_FEATURE_CATEGORICAL)
            f->categorical = below(5) ? random_string(s->cats[i], sizeof s->cats[i]) : "";
    }
    s->ev.features = s->features;
    s->ev.predicted_class = below(2) ? random_string(s->predicted, 200) : NULL;
    s->ev.has_score = (int)below(2);
    s->ev.score = (double)below(1001) / 1000.0;
    s->ev.n_scores = below(2) ? below(MAX_SCORES + 1) : 0;
    for (size_t i = 0; i < s->ev.n_scores; i++) {
        s->scores[i] = random_double();
        s->class_names[i] = random_string(s->class_bufs[i], sizeof s->class_bufs[i]);
    }
    s->ev.scores = s->ev.n_scores ? s->scores : NULL;
    s->ev.class_names = s->ev.n_scores && below(2) ? s->class_names : NULL;
    s->ev.has_value = (int)below(2);
    s->ev.value = random_double();
    s->ev.input_tokens = random_count();
    s->ev.output_tokens = random_count();
}

/* The oracle: the ClientMessage as protobuf-c structs, packed by protobuf-c; with `omitted`,
 * the event without features and output and with payload_omitted set. */
static size_t pack_with_protobuf_c(const struct mw_event *ev, int64_t time_ms, bool omitted,
                                   uint8_t **out)
{
    Modelwatch__V1__Feature feats[MAX_FEATURES], *fp[MAX_FEATURES];
    for (size_t i = 0; i < ev->n_features; i++) {
        const struct mw_feature *f = &ev->features[i];
        modelwatch__v1__feature__init(&feats[i]);
        fp[i] = &feats[i];
        feats[i].name = (char *)f->name;
        if (f->kind == MW_FEATURE_NUMERIC) {
            feats[i].value_case = MODELWATCH__V1__FEATURE__VALUE_NUMERIC;
            feats[i].numeric = f->numeric;
        } else if (f->kind == MW_FEATURE_CATEGORICAL) {
            feats[i].value_case = MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL;
            feats[i].categorical = (char *)f->categorical;
        } else {
            feats[i].has_missing = 1;
            feats[i].missing = 1;
        }
    }
    Modelwatch__V1__Output output = MODELWATCH__V1__OUTPUT__INIT;
    output.predicted_class = (char *)ev->predicted_class;
    output.has_score = ev->has_score != 0;
    output.score = ev->score;
    output.n_scores = ev->n_scores;
    output.scores = (double *)ev->scores;
    output.n_class_names = ev->class_names ? ev->n_scores : 0;
    output.class_names = (char **)ev->class_names;
    output.has_value = ev->has_value != 0;
    output.value = ev->value;
    Modelwatch__V1__PredictionEvent pe = MODELWATCH__V1__PREDICTION_EVENT__INIT;
    pe.model = (char *)ev->model;
    pe.version = (char *)(ev->version ? ev->version : "");
    pe.prediction_id = (char *)ev->prediction_id;
    pe.has_event_time_ms = pe.has_latency_us = pe.has_status = 1;
    pe.event_time_ms = time_ms;
    pe.latency_us = ev->latency_us;
    pe.status = ev->status == MW_STATUS_ERROR ? MODELWATCH__V1__STATUS__STATUS_ERROR
                                              : MODELWATCH__V1__STATUS__STATUS_OK;
    pe.error_code = (char *)ev->error_code;
    pe.n_features = omitted ? 0 : ev->n_features;
    pe.features = fp;
    pe.output = omitted ? NULL : &output;
    pe.has_payload_omitted = omitted;
    pe.payload_omitted = omitted;
    pe.has_input_tokens = ev->input_tokens != 0;
    pe.input_tokens = ev->input_tokens;
    pe.has_output_tokens = ev->output_tokens != 0;
    pe.output_tokens = ev->output_tokens;
    Modelwatch__V1__ClientMessage msg = MODELWATCH__V1__CLIENT_MESSAGE__INIT;
    msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT;
    msg.event = &pe;
    size_t n = modelwatch__v1__client_message__get_packed_size(&msg);
    *out = malloc(n);
    assert_non_null(*out);
    modelwatch__v1__client_message__pack(&msg, *out);
    return n;
}

static void expect_same_bytes(const struct mw_event *ev, int64_t time_ms, bool omitted)
{
    uint8_t *want = NULL;
    size_t want_len = pack_with_protobuf_c(ev, time_ms, omitted, &want);
    struct mw_event_wire w;
    size_t len = mw_event_wire_size(ev, time_ms, omitted, &w);
    assert_int_equal(len, want_len);
    uint8_t *got = malloc(len + 1);
    assert_non_null(got);
    got[len] = 0xee; /* nothing may be written past the size */
    mw_event_wire_write(&w, got);
    assert_int_equal(got[len], 0xee);
    assert_memory_equal(got, want, len);
    free(got);
    free(want);
}

static void test_writes_what_protobuf_c_packs(void **state)
{
    (void)state;
    static struct shape s;
    static const int64_t times[] = {1767225600123, 0, 1, -1, INT64_MIN, INT64_MAX, 127, 128};
    for (int i = 0; i < 3000; i++) {
        random_event(&s);
        expect_same_bytes(&s.ev, times[below(8)], false);
    }
}

/* An event whose payload the agent's rules leave out: its head and payload_omitted. */
static void test_writes_the_head_of_an_omitted_event(void **state)
{
    (void)state;
    static struct shape s;
    static const int64_t times[] = {1767225600123, 0, -1, INT64_MAX};
    for (int i = 0; i < 3000; i++) {
        random_event(&s);
        expect_same_bytes(&s.ev, times[below(4)], true);
    }
}

/* loadgen's event, the shape the benches measure. */
static void test_writes_a_typical_event(void **state)
{
    (void)state;
    struct mw_feature f[12];
    static const char *const names[] = {"f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"};
    for (int k = 0; k < 10; k++)
        f[k] = (struct mw_feature)MW_NUMERIC(names[k], 41.25 + k);
    f[10] = (struct mw_feature)MW_CATEGORICAL("country", "fr");
    f[11] = (struct mw_feature)MW_CATEGORICAL("plan", "pro");
    struct mw_event ev = {.model = "churn",
                          .version = "v3",
                          .prediction_id = "churn-12345",
                          .latency_us = 4321,
                          .status = MW_STATUS_ERROR,
                          .error_code = "timeout",
                          .features = f,
                          .n_features = 12,
                          .predicted_class = "1",
                          .has_score = 1,
                          .score = 0.75};
    expect_same_bytes(&ev, 1767225600123, false);
    expect_same_bytes(&ev, 1767225600123, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_a_typical_event),
        cmocka_unit_test(test_writes_what_protobuf_c_packs),
        cmocka_unit_test(test_writes_the_head_of_an_omitted_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
