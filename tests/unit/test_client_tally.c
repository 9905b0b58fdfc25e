/* test_client_tally.c — the counters a client keeps for the events it does not send
 * (agent/client/client_tally.c), through the agent's own steps: what the client takes, the
 * agent's check accepts (mw_client_message_decode), and its counters merged into the agent's
 * (mw_counters_add_counts) equal the agent's counters of the same events sent one by one
 * (mw_counters_add_event): counts, errors by code (folded past the agent's cap the same way,
 * however the client's takes cut the events), latency buckets and sum, tokens. And the table's
 * bounds: a series past the last slot, an error code past the last slot of its series, or
 * names the agent refuses, are not counted (the caller then sends the event's head). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "buf.h"
#include "client_message.h"
#include "client_tally.h"
#include "counters.h"
#include "error.h"
#include "sampling_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH_MS 60000
#define T0_MS 1700000040000LL /* a bucket boundary */

static uint64_t next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Every entry the tally took, decoded and checked as the agent does and added to `c`.
 * Returns the events the entries carry. */
static uint64_t merge_taken(const struct mw_buf *taken, struct mw_counters *c)
{
    uint64_t events = 0;
    for (size_t off = 0; off < taken->len;) {
        uint64_t head[2];
        memcpy(head, taken->data + off, sizeof head);
        const uint8_t *entry = (const uint8_t *)taken->data + off + sizeof head;
        /* A ClientBatch entry: key 0x7a, the length, the ClientMessage. */
        assert_int_equal(entry[0], 0x7a);
        size_t len = 0, shift = 0, i = 1;
        for (; entry[i] & 0x80; i++, shift += 7)
            len |= (size_t)(entry[i] & 0x7f) << shift;
        len |= (size_t)entry[i++] << shift;
        assert_int_equal(i + len, head[1]);
        Modelwatch__V1__ClientMessage *msg = NULL;
        assert_int_equal(mw_client_message_decode(NULL, entry + i, len, &msg), 0);
        assert_int_equal(msg->body_case, MODELWATCH__V1__CLIENT_MESSAGE__BODY_COUNTS);
        assert_int_equal(msg->counts->count, head[0]);
        assert_int_equal(mw_counters_add_counts(c, msg->counts), 0);
        events += head[0];
        modelwatch__v1__client_message__free_unpacked(msg, NULL);
        off += sizeof head + head[1];
    }
    return events;
}

static Modelwatch__V1__MetricsSnapshot *flush(struct mw_counters *c, struct mw_buf *out)
{
    mw_buf_reset(out);
    assert_int_equal(mw_counters_flush(c, NULL, NULL, out), 0);
    Modelwatch__V1__MetricsSnapshot *snap = modelwatch__v1__metrics_snapshot__unpack(
        NULL, out->len, (const uint8_t *)out->data);
    assert_non_null(snap);
    return snap;
}

static const Modelwatch__V1__ModelCounters *
find(const Modelwatch__V1__MetricsSnapshot *snap, const Modelwatch__V1__ModelCounters *like)
{
    for (size_t i = 0; i < snap->n_models; i++) {
        const Modelwatch__V1__ModelCounters *m = snap->models[i];
        if (strcmp(m->model, like->model) == 0 && strcmp(m->version, like->version) == 0 &&
            m->bucket_start_ms == like->bucket_start_ms)
            return m;
    }
    return NULL;
}

static void assert_same_counters(const Modelwatch__V1__ModelCounters *a,
                                 const Modelwatch__V1__ModelCounters *b)
{
    assert_non_null(b);
    assert_int_equal(a->count, b->count);
    assert_int_equal(a->error_count, b->error_count);
    assert_int_equal(a->input_tokens, b->input_tokens);
    assert_int_equal(a->output_tokens, b->output_tokens);
    assert_int_equal(a->n_errors, b->n_errors);
    for (size_t i = 0; i < a->n_errors; i++) {
        assert_string_equal(a->errors[i]->code, b->errors[i]->code);
        assert_int_equal(a->errors[i]->count, b->errors[i]->count);
    }
    assert_int_equal(a->latency->sum_us, b->latency->sum_us);
    assert_int_equal(a->latency->n_bucket_index, b->latency->n_bucket_index);
    for (size_t i = 0; i < a->latency->n_bucket_index; i++) {
        assert_int_equal(a->latency->bucket_index[i], b->latency->bucket_index[i]);
        assert_int_equal(a->latency->bucket_count[i], b->latency->bucket_count[i]);
    }
}

/* 30,000 events of 3 models, 2 versions and 2 buckets, 40 error codes among the errors (past
 * the cap of 32), latencies from 0 to 10^9 us, tokens; taken four times along the way. */
static void test_counted_by_the_client_equals_counted_by_the_agent(void **state)
{
    (void)state;
    static const char *const models[] = {"churn", "fraud", "ranker-2"};
    static const char *const versions[] = {"v1", ""};
    struct mw_client_tally *t = mw_client_tally_create();
    struct mw_counters *merged = mw_counters_create(1000, WIDTH_MS);
    struct mw_counters *one_by_one = mw_counters_create(1000, WIDTH_MS);
    assert_non_null(t);
    assert_non_null(merged);
    assert_non_null(one_by_one);
    struct mw_buf taken;
    mw_buf_init(&taken, 16u << 20);
    uint64_t x = 0x243f6a8885a308d3u, added = 0, took = 0;
    char code[48], long_code[80];
    memset(long_code, 'x', sizeof long_code - 1);
    long_code[sizeof long_code - 1] = '\0';
    for (int i = 0; i < 30000; i++) {
        struct mw_event ev = {.model = models[next_random(&x) % 3],
                              .version = versions[next_random(&x) % 2],
                              .prediction_id = "p"};
        int64_t t_ms = T0_MS + (int64_t)(next_random(&x) % (2 * WIDTH_MS));
        uint64_t r = next_random(&x);
        ev.latency_us = r % 5 == 0 ? r % 1000000000u : r % 20000u;
        ev.input_tokens = next_random(&x) % 500;
        ev.output_tokens = next_random(&x) % 50;
        if (next_random(&x) % 4 == 0) {
            ev.status = MW_STATUS_ERROR;
            uint64_t k = next_random(&x) % 42;
            snprintf(code, sizeof code, "code-%llu", (unsigned long long)k);
            ev.error_code = k == 40 ? NULL : k == 41 ? long_code : code;
        }
        assert_int_equal(mw_client_tally_add(t, &ev, t_ms, WIDTH_MS), 0);
        added++;
        Modelwatch__V1__PredictionEvent pe = MODELWATCH__V1__PREDICTION_EVENT__INIT;
        pe.model = (char *)ev.model;
        pe.version = (char *)ev.version;
        pe.has_event_time_ms = pe.has_latency_us = 1;
        pe.event_time_ms = t_ms;
        pe.latency_us = ev.latency_us;
        pe.input_tokens = ev.input_tokens;
        pe.output_tokens = ev.output_tokens;
        if (ev.status == MW_STATUS_ERROR) {
            pe.has_status = 1;
            pe.status = MODELWATCH__V1__STATUS__STATUS_ERROR;
            pe.error_code = (char *)ev.error_code;
        }
        assert_int_equal(mw_counters_add_event(one_by_one, &pe), 0);
        assert_int_equal(mw_client_tally_pending(t), added - took);
        if (i % 7500 == 7499) {
            uint64_t n = mw_client_tally_take(t, &taken);
            assert_int_equal(n, added - took);
            took += n;
            assert_int_equal(mw_client_tally_pending(t), 0);
        }
    }
    assert_int_equal(merge_taken(&taken, merged), 30000);
    struct mw_buf out_a, out_b;
    mw_buf_init(&out_a, 64u << 20);
    mw_buf_init(&out_b, 64u << 20);
    Modelwatch__V1__MetricsSnapshot *a = flush(one_by_one, &out_a);
    Modelwatch__V1__MetricsSnapshot *b = flush(merged, &out_b);
    assert_int_equal(a->n_models, 3 * 2 * 2);
    assert_int_equal(a->n_models, b->n_models);
    uint64_t codes_max = 0;
    for (size_t i = 0; i < a->n_models; i++) {
        assert_same_counters(a->models[i], find(b, a->models[i]));
        if (a->models[i]->n_errors > codes_max)
            codes_max = a->models[i]->n_errors;
    }
    assert_int_equal(codes_max, 32); /* the cap was reached, and folded alike */
    modelwatch__v1__metrics_snapshot__free_unpacked(a, NULL);
    modelwatch__v1__metrics_snapshot__free_unpacked(b, NULL);
    mw_buf_free(&out_a);
    mw_buf_free(&out_b);
    mw_buf_free(&taken);
    mw_counters_destroy(merged);
    mw_counters_destroy(one_by_one);
    mw_client_tally_destroy(t);
}

static void test_bounds_leave_the_event_to_its_head(void **state)
{
    (void)state;
    struct mw_client_tally *t = mw_client_tally_create();
    assert_non_null(t);
    struct mw_event ev = {.model = "m", .version = "v1", .prediction_id = "p", .latency_us = 5};
    for (int i = 0; i < MW_CLIENT_TALLY_MAX_SERIES; i++)
        assert_int_equal(mw_client_tally_add(t, &ev, T0_MS + (int64_t)i * WIDTH_MS, WIDTH_MS), 0);
    /* one more series: no room; an existing one: counted */
    assert_int_equal(
        mw_client_tally_add(t, &ev, T0_MS + MW_CLIENT_TALLY_MAX_SERIES * WIDTH_MS, WIDTH_MS),
        MW_EFULL);
    assert_int_equal(mw_client_tally_add(t, &ev, T0_MS + 1, WIDTH_MS), 0);
    assert_int_equal(mw_client_tally_pending(t), MW_CLIENT_TALLY_MAX_SERIES + 1);
    /* names the agent refuses are never counted, so its verdict on them stays its own */
    struct mw_event bad = ev;
    bad.model = "has space";
    assert_int_equal(mw_client_tally_discard(t), MW_CLIENT_TALLY_MAX_SERIES + 1);
    assert_int_equal(mw_client_tally_add(t, &bad, T0_MS, WIDTH_MS), MW_EINVAL);
    bad = ev;
    bad.version = "v\t1"; /* a control character */
    assert_int_equal(mw_client_tally_add(t, &bad, T0_MS, WIDTH_MS), MW_EINVAL);
    assert_int_equal(mw_client_tally_pending(t), 0);
    /* error codes: as many as a counts message may carry, then the event goes as its head */
    struct mw_event err = ev;
    err.status = MW_STATUS_ERROR;
    char code[32];
    for (int i = 0; i < MW_SAMPLING_COUNT_MAX_ERROR_CODES; i++) {
        snprintf(code, sizeof code, "c%d", i);
        err.error_code = code;
        assert_int_equal(mw_client_tally_add(t, &err, T0_MS, WIDTH_MS), 0);
    }
    err.error_code = "one more";
    assert_int_equal(mw_client_tally_add(t, &err, T0_MS, WIDTH_MS), MW_EFULL);
    err.error_code = "c7"; /* a code it has */
    assert_int_equal(mw_client_tally_add(t, &err, T0_MS, WIDTH_MS), 0);
    assert_int_equal(mw_client_tally_discard(t), MW_SAMPLING_COUNT_MAX_ERROR_CODES + 1);
    /* a discarded table takes nothing */
    struct mw_buf taken;
    mw_buf_init(&taken, 1u << 20);
    assert_int_equal(mw_client_tally_take(t, &taken), 0);
    assert_int_equal(taken.len, 0);
    mw_buf_free(&taken);
    mw_client_tally_destroy(t);
}

/* What the agent refuses of a counts message: the checks of mw_client_message_decode. */
static void test_the_agent_refuses_counts_that_do_not_add_up(void **state)
{
    (void)state;
    uint32_t index[] = {10, 20};
    uint64_t count[] = {3, 2};
    Modelwatch__V1__LatencyHistogram hist = MODELWATCH__V1__LATENCY_HISTOGRAM__INIT;
    hist.n_bucket_index = hist.n_bucket_count = 2;
    hist.bucket_index = index;
    hist.bucket_count = count;
    Modelwatch__V1__ErrorCount err = MODELWATCH__V1__ERROR_COUNT__INIT;
    err.code = "timeout";
    err.has_count = 1;
    err.count = 1;
    Modelwatch__V1__ErrorCount *errs[] = {&err};
    Modelwatch__V1__ModelCounters mc = MODELWATCH__V1__MODEL_COUNTERS__INIT;
    Modelwatch__V1__ClientMessage msg = MODELWATCH__V1__CLIENT_MESSAGE__INIT;
    msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_COUNTS;
    msg.counts = &mc;
    uint8_t wire[512];
    for (int variant = 0; variant < 9; variant++) {
        mc = (Modelwatch__V1__ModelCounters)MODELWATCH__V1__MODEL_COUNTERS__INIT;
        mc.model = "churn";
        mc.version = "v1";
        mc.has_bucket_start_ms = mc.has_bucket_width_ms = mc.has_count = mc.has_error_count = 1;
        mc.bucket_start_ms = T0_MS;
        mc.bucket_width_ms = WIDTH_MS;
        mc.count = 5;
        mc.error_count = 1;
        mc.n_errors = 1;
        mc.errors = errs;
        mc.latency = &hist;
        int want = MW_EPARSE;
        switch (variant) {
        case 0: want = 0; break;                              /* as a client sends it */
        case 1: mc.count = 6; break;                          /* latencies do not add up */
        case 2: mc.error_count = 2; break;                    /* errors do not add up */
        case 3: mc.bucket_start_ms = T0_MS + 1; break;        /* not a bucket's start */
        case 4: mc.bucket_width_ms = 0; break;
        case 5: mc.has_feedback_count = 1, mc.feedback_count = 1; break;
        case 6: mc.latency = NULL; break;
        case 7: mc.model = "no such name"; want = MW_EINVAL; break;
        case 8: mc.count = 0, mc.error_count = 0, mc.n_errors = 0, hist.n_bucket_index = 0,
                hist.n_bucket_count = 0; break;               /* counts nothing */
        }
        size_t len = modelwatch__v1__client_message__pack(&msg, wire);
        Modelwatch__V1__ClientMessage *out = NULL;
        int rc = mw_client_message_decode(NULL, wire, len, &out);
        if (rc != want)
            fail_msg("variant %d: %d, want %d", variant, rc, want);
        if (out)
            modelwatch__v1__client_message__free_unpacked(out, NULL);
        hist.n_bucket_index = hist.n_bucket_count = 2;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counted_by_the_client_equals_counted_by_the_agent),
        cmocka_unit_test(test_bounds_leave_the_event_to_its_head),
        cmocka_unit_test(test_the_agent_refuses_counts_that_do_not_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
