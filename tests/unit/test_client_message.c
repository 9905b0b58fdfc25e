/* test_client_message.c — the agent's two readers of a client message (agent/client_message.c):
 * the whole decode, and the head reader that takes an event's counted fields without decoding
 * its features and output. Every message the whole decode accepts, the head reader accepts with
 * the same values; an event whose payload is malformed passes the head reader only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arena.h"
#include "client_message.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

struct fixture {
    struct mw_arena arena;
    uint8_t wire[4096];
    size_t len;
    uint8_t event[2048]; /* the PredictionEvent of pack_event, alone */
    size_t event_len;
};

/* f->wire = ClientMessage{event: f->event followed by `extra` raw bytes}. */
static void wrap_event(struct fixture *f, const uint8_t *extra, size_t extra_len)
{
    size_t n = f->event_len + extra_len, at = 0;
    f->wire[at++] = 0x0a;
    for (size_t v = n; ; v >>= 7) {
        f->wire[at++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    memcpy(f->wire + at, f->event, f->event_len);
    if (extra_len)
        memcpy(f->wire + at + f->event_len, extra, extra_len);
    f->len = at + n;
}

static void set_wire(struct fixture *f, const uint8_t *bytes, size_t len)
{
    memcpy(f->wire, bytes, len);
    f->len = len;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f || mw_arena_init(&f->arena, 1u << 20) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mw_arena_free(&f->arena);
    free(f);
    return 0;
}

/* An event as libmodelwatch sends it: names, times, an error, tokens, three features, an
 * output with class scores. */
static void pack_event(struct fixture *f)
{
    Modelwatch__V1__Feature feats[3], *fp[3];
    for (int i = 0; i < 3; i++) {
        modelwatch__v1__feature__init(&feats[i]);
        fp[i] = &feats[i];
    }
    feats[0].name = "age";
    feats[0].value_case = MODELWATCH__V1__FEATURE__VALUE_NUMERIC;
    feats[0].numeric = 41.5;
    feats[1].name = "plan";
    feats[1].value_case = MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL;
    feats[1].categorical = "gold";
    feats[2].name = "income";
    feats[2].has_missing = 1;
    feats[2].missing = 1;
    double scores[] = {0.25, 0.75};
    char *classes[] = {"stay", "churn"};
    Modelwatch__V1__Output out = MODELWATCH__V1__OUTPUT__INIT;
    out.predicted_class = "churn";
    out.n_scores = 2;
    out.scores = scores;
    out.n_class_names = 2;
    out.class_names = classes;
    Modelwatch__V1__PredictionEvent ev = MODELWATCH__V1__PREDICTION_EVENT__INIT;
    ev.model = "churn";
    ev.version = "v7";
    ev.prediction_id = "p-123";
    ev.has_event_time_ms = 1;
    ev.event_time_ms = 1767225600123;
    ev.has_latency_us = 1;
    ev.latency_us = 123456;
    ev.has_status = 1;
    ev.status = MODELWATCH__V1__STATUS__STATUS_ERROR;
    ev.error_code = "timeout";
    ev.n_features = 3;
    ev.features = fp;
    ev.output = &out;
    ev.has_input_tokens = ev.has_output_tokens = 1;
    ev.input_tokens = 300;
    ev.output_tokens = 1ull << 40;
    f->event_len = modelwatch__v1__prediction_event__get_packed_size(&ev);
    assert_true(f->event_len <= sizeof f->event);
    modelwatch__v1__prediction_event__pack(&ev, f->event);
    wrap_event(f, NULL, 0);
}

static Modelwatch__V1__ClientMessage *head_of(struct fixture *f, int want_rc, bool want_whole)
{
    Modelwatch__V1__ClientMessage *msg = NULL;
    bool whole = !want_whole;
    assert_int_equal(
        mw_client_message_decode_head(&f->arena.pb_allocator, f->wire, f->len, &msg, &whole),
        want_rc);
    if (want_rc == 0)
        assert_int_equal(whole, want_whole);
    return msg;
}

static void test_head_has_the_counted_fields_and_no_payload(void **state)
{
    struct fixture *f = *state;
    pack_event(f);
    Modelwatch__V1__ClientMessage *whole = NULL;
    assert_int_equal(mw_client_message_decode(&f->arena.pb_allocator, f->wire, f->len, &whole), 0);
    Modelwatch__V1__ClientMessage *head = head_of(f, 0, false);
    assert_int_equal(head->body_case, MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT);
    const Modelwatch__V1__PredictionEvent *h = head->event, *w = whole->event;
    assert_string_equal(h->model, "churn");
    assert_string_equal(h->version, "v7");
    assert_string_equal(h->prediction_id, "p-123");
    assert_string_equal(h->error_code, "timeout");
    assert_true(h->has_event_time_ms && h->event_time_ms == w->event_time_ms);
    assert_true(h->has_latency_us && h->latency_us == 123456);
    assert_true(h->has_status && h->status == MODELWATCH__V1__STATUS__STATUS_ERROR);
    assert_true(h->input_tokens == 300 && h->output_tokens == 1ull << 40);
    assert_int_equal(h->n_features, 0);
    assert_null(h->output);
    assert_int_equal(w->n_features, 3);
    assert_true(mw_client_message_event_payload_ok(f->wire, f->len));
}

static void test_feedback_is_decoded_whole(void **state)
{
    struct fixture *f = *state;
    Modelwatch__V1__Feedback fb = MODELWATCH__V1__FEEDBACK__INIT;
    fb.model = "churn";
    fb.version = "v7";
    fb.prediction_id = "p-123";
    fb.label_case = MODELWATCH__V1__FEEDBACK__LABEL_LABEL_CLASS;
    fb.label_class = "churn";
    Modelwatch__V1__ClientMessage msg = MODELWATCH__V1__CLIENT_MESSAGE__INIT;
    msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK;
    msg.feedback = &fb;
    f->len = modelwatch__v1__client_message__pack(&msg, f->wire);
    Modelwatch__V1__ClientMessage *head = head_of(f, 0, true);
    assert_int_equal(head->body_case, MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK);
    assert_string_equal(head->feedback->label_class, "churn");
}

/* Field 8 (features) holding a Feature whose field 2 (numeric, a double) is a varint: protobuf-c
 * refuses the message; the head reader skips the features and takes it. */
static void test_malformed_payload_passes_only_the_head_reader(void **state)
{
    struct fixture *f = *state;
    pack_event(f);
    static const uint8_t bad_feature[] = {0x42, 0x02, 0x10, 0x01}; /* 8:LEN{2:VARINT 1} */
    wrap_event(f, bad_feature, sizeof bad_feature);
    Modelwatch__V1__ClientMessage *whole = NULL;
    assert_int_equal(mw_client_message_decode(&f->arena.pb_allocator, f->wire, f->len, &whole),
                     MW_EPARSE);
    Modelwatch__V1__ClientMessage *head = head_of(f, 0, false);
    assert_string_equal(head->event->prediction_id, "p-123");
    assert_false(mw_client_message_event_payload_ok(f->wire, f->len));
    /* Output.scores (3) as packed doubles whose length is not a multiple of 8: refused too. */
    static const uint8_t bad_scores[] = {0x4a, 0x04, 0x1a, 0x02, 0x00, 0x00}; /* 9:{3:LEN 2} */
    wrap_event(f, bad_scores, sizeof bad_scores);
    assert_int_equal(mw_client_message_decode(&f->arena.pb_allocator, f->wire, f->len, &whole),
                     MW_EPARSE);
    assert_false(mw_client_message_event_payload_ok(f->wire, f->len));
    head_of(f, 0, false);
}

/* ClientMessage.stream (3) is the third member of the body: a message ending with one is not an
 * event, and one with a stream of the wrong wire type is not checked by the payload check. */
static void test_stream_member_is_not_an_event(void **state)
{
    struct fixture *f = *state;
    pack_event(f);
    static const uint8_t stream_varint[] = {0x18, 0x01}; /* 3:VARINT: protobuf-c refuses it */
    memcpy(f->wire + f->len, stream_varint, sizeof stream_varint);
    f->len += sizeof stream_varint;
    Modelwatch__V1__ClientMessage *whole = NULL;
    assert_int_equal(mw_client_message_decode(&f->arena.pb_allocator, f->wire, f->len, &whole),
                     MW_EPARSE);
    assert_false(mw_client_message_event_payload_ok(f->wire, f->len));
    head_of(f, MW_EPARSE, true);
    pack_event(f);
    static const uint8_t stream[] = {0x1a, 0x02, 0x10, 0x05}; /* stream{messages_before: 5} */
    memcpy(f->wire + f->len, stream, sizeof stream);
    f->len += sizeof stream;
    assert_false(mw_client_message_event_payload_ok(f->wire, f->len));
    head_of(f, MW_EPARSE, true); /* a stream alone is no message for the agent */
}

/* A known field of another wire type is refused by both, as protobuf-c does. */
static void test_wrong_wire_type_is_refused(void **state)
{
    struct fixture *f = *state;
    /* event{model:"m", version:"v", prediction_id:"p", event_time_ms:1} */
    static const uint8_t good[] = {0x0a, 0x0b, 0x0a, 0x01, 'm', 0x12, 0x01,
                                   'v',  0x1a, 0x01, 'p',  0x20, 0x01};
    set_wire(f, good, sizeof good);
    Modelwatch__V1__ClientMessage *whole = NULL;
    assert_int_equal(mw_client_message_decode(&f->arena.pb_allocator, f->wire, f->len, &whole), 0);
    head_of(f, 0, false);
    /* ... and latency_us (5, a varint) as a length-delimited field */
    static const uint8_t bad[] = {0x0a, 0x0e, 0x0a, 0x01, 'm',  0x12, 0x01, 'v',
                                  0x1a, 0x01, 'p',  0x20, 0x01, 0x2a, 0x01, 0x05};
    set_wire(f, bad, sizeof bad);
    assert_int_equal(mw_client_message_decode(&f->arena.pb_allocator, f->wire, f->len, &whole),
                     MW_EPARSE);
    head_of(f, MW_EPARSE, true);
}

/* Strings end at their first NUL byte, as protobuf-c copies them; names are then checked. */
static void test_strings_end_at_nul_and_names_are_checked(void **state)
{
    struct fixture *f = *state;
    /* event{model:"m\0x", version:"v", prediction_id:"pq\0", event_time_ms:1} */
    uint8_t wire[] = {0x0a, 0x0f, 0x0a, 0x03, 'm', 0, 'x', 0x12, 0x01,
                      'v',  0x1a, 0x03, 'p', 'q', 0, 0x20, 0x01};
    set_wire(f, wire, sizeof wire);
    Modelwatch__V1__ClientMessage *whole = NULL;
    assert_int_equal(mw_client_message_decode(&f->arena.pb_allocator, f->wire, f->len, &whole), 0);
    Modelwatch__V1__ClientMessage *head = head_of(f, 0, false);
    assert_string_equal(whole->event->model, "m");
    assert_string_equal(head->event->model, "m");
    assert_string_equal(head->event->prediction_id, "pq");
    wire[4] = ' '; /* model " \0x": not a model name */
    set_wire(f, wire, sizeof wire);
    assert_int_equal(mw_client_message_decode(&f->arena.pb_allocator, f->wire, f->len, &whole),
                     MW_EINVAL);
    head_of(f, MW_EINVAL, false);
}

/* The last member of the oneof wins: an event followed by a feedback is a feedback. */
static void test_last_member_of_the_body_wins(void **state)
{
    struct fixture *f = *state;
    pack_event(f);
    /* feedback{model:"m", version:"v", prediction_id:"p", label_class:"c"} */
    static const uint8_t feedback[] = {0x12, 0x0c, 0x0a, 0x01, 'm', 0x12, 0x01,
                                       'v',  0x1a, 0x01, 'p', 0x2a, 0x01, 'c'};
    memcpy(f->wire + f->len, feedback, sizeof feedback);
    f->len += sizeof feedback;
    Modelwatch__V1__ClientMessage *head = head_of(f, 0, true);
    assert_int_equal(head->body_case, MODELWATCH__V1__CLIENT_MESSAGE__BODY_FEEDBACK);
}

static void test_truncated_and_empty_messages_are_refused(void **state)
{
    struct fixture *f = *state;
    pack_event(f);
    size_t full = f->len;
    for (f->len = 0; f->len < full; f->len++)
        head_of(f, MW_EPARSE, true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_head_has_the_counted_fields_and_no_payload, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_feedback_is_decoded_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_payload_passes_only_the_head_reader, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_wire_type_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings_end_at_nul_and_names_are_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_last_member_of_the_body_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_member_is_not_an_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_empty_messages_are_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
