/*
 * test_signals.c — the typed service and cost signals of a window, against numbers worked out
 * by hand from the window's counters (and the latency histogram's definition of a bucket's
 * representative value, common/latency_hist.h).
 */
#include "signals_cost.h"
#include "signals_service.h"

#include "config.h"
#include "error.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static struct mw_aggregator_config *load(const char *yaml)
{
    struct mw_aggregator_config *cfg = calloc(1, sizeof *cfg);
    struct mw_cfg_error err;
    assert_non_null(cfg);
    if (mw_config_load_string(mw_aggregator_config_table, cfg, yaml, "test.yaml", &err) != 0)
        fail_msg("%s", err.message);
    return cfg;
}

static void unload(struct mw_aggregator_config *cfg)
{
    mw_config_free(mw_aggregator_config_table, cfg);
    free(cfg);
}

static void close_to(double got, double want)
{
    if (!(fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want))))
        fail_msg("got %.17g, want %.17g", got, want);
}

/* Bucket i's representative value: 2 gamma^i / (gamma + 1), gamma = 1.01 / 0.99. */
static double bucket_value(int i)
{
    double gamma = 1.01 / 0.99;
    return 2 * pow(gamma, i) / (gamma + 1);
}

static void test_service_counts_errors_latency(void **state)
{
    (void)state;
    /* 100 latencies: 50 of at most 1 us (bucket 0), 40 in bucket 100, 9 in 200, 1 in 500 */
    struct mw_window_latency_bucket latency[] = {{100, 40}, {0, 50}, {500, 1}, {200, 9}};
    struct mw_window_error_code codes[] = {{"timeout", 6}, {"oom", 4}};
    struct mw_window w = {.count = 200,
                          .errors = 10,
                          .records = 80,
                          .feedback = 3,
                          .tokens_in = 2000,
                          .tokens_out = 1000,
                          .late = 7,
                          .late_records = 2,
                          .weighted_records = 160.5,
                          .latency_sum_us = 12345,
                          .n_latency = 4,
                          .latency = latency,
                          .n_error_codes = 2,
                          .error_codes = codes};
    struct mw_service_signals s;
    assert_int_equal(mw_service_signals_compute(&w, &s), 0);
    assert_int_equal(s.count, 200);
    assert_int_equal(s.errors, 10);
    assert_int_equal(s.records, 80);
    assert_int_equal(s.late, 7);
    assert_int_equal(s.late_records, 2);
    close_to(s.weighted_records, 160.5);
    close_to(s.error_rate, 0.05);
    assert_int_equal(s.n_error_codes, 2);
    assert_string_equal(s.error_codes[1].code, "oom");
    /* nearest rank: p50 is the 50th value (bucket 0, reported as 1 us), p90 the 90th (bucket
     * 100), p95 and p99 the 95th and 99th (bucket 200); the 100th alone is in bucket 500 */
    close_to(s.latency_p50_us, 1.0);
    close_to(s.latency_p90_us, bucket_value(100));
    close_to(s.latency_p95_us, bucket_value(200));
    close_to(s.latency_p99_us, bucket_value(200));
    assert_true(fabs(s.latency_p90_us - 7.3157) < 1e-4); /* 2 x 7.38955 / 2.0202 */
    /* the mean is the exact sum over the histogram's count, not over `count` */
    close_to(s.latency_mean_us, 123.45);
}

static void test_service_empty_window(void **state)
{
    (void)state;
    struct mw_window w = {.records = 5};
    struct mw_service_signals s;
    assert_int_equal(mw_service_signals_compute(&w, &s), 0);
    assert_int_equal(s.count, 0);
    assert_true(isnan(s.error_rate));
    assert_true(isnan(s.latency_p50_us) && isnan(s.latency_p99_us));
    assert_true(isnan(s.latency_mean_us));
    assert_int_equal(s.n_error_codes, 0);
}

/* The service counters straight from a hash's text fields. */
static void test_service_from_fields(void **state)
{
    (void)state;
    const char *names[] = {"count", "errors", "err:timeout", "lat:100", "lat:0", "lat_sum_us"};
    const char *values[] = {"4", "1", "1", "1", "3", "10"};
    struct mw_window w = {.fields = {6, names, values}};
    assert_int_equal(mw_window_parse(&w), 0);
    struct mw_service_signals s;
    assert_int_equal(mw_service_signals_compute(&w, &s), 0);
    close_to(s.error_rate, 0.25);
    close_to(s.latency_p50_us, 1.0);
    close_to(s.latency_p99_us, bucket_value(100));
    close_to(s.latency_mean_us, 2.5);
    assert_string_equal(s.error_codes[0].code, "timeout");
    mw_window_clear(&w);
}

static const char *prices = "cost:\n"
                            "  cpu_core_hour: 3.6\n"
                            "  memory_gib_hour: 0.36\n"
                            "  gpu_hour: 7.2\n"
                            "  pod_hour: 36\n"
                            "  input_tokens_per_1k: 0.5\n"
                            "  output_tokens_per_1k: 1.5\n";

static void test_cost_billed_on_requests(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load(prices);
    /* 100 core-seconds used of 400 requested (and billed), 50 GiB-s used of 200 billed, 36
     * GPU-seconds, 360 pod-seconds, 2,000 input and 1,000 output tokens, 200 predictions:
     *   CPU 400/3600 x 3.6 = 0.4     memory 200/3600 x 0.36 = 0.02   GPU 36/3600 x 7.2 = 0.072
     *   pod 360/3600 x 36 = 3.6      tokens 2 x 0.5 + 1 x 1.5 = 2.5  total 6.592
     *   per 1k predictions 6.592 / 200 x 1000 = 32.96; idle share 1 - 100/400 = 0.75 */
    struct mw_window w = {.count = 200,
                          .tokens_in = 2000,
                          .tokens_out = 1000,
                          .resources = {.cpu_s = 100,
                                        .cpu_requested_s = 400,
                                        .cpu_billed_s = 400,
                                        .memory_gib_s = 50,
                                        .memory_billed_gib_s = 200,
                                        .gpu_s = 36,
                                        .pod_s = 360}};
    struct mw_cost_signals c;
    mw_cost_signals_compute(&w, cfg, &c);
    close_to(c.cpu_core_seconds, 100);
    close_to(c.cpu_core_seconds_billed, 400);
    close_to(c.memory_gib_seconds, 50);
    close_to(c.memory_gib_seconds_billed, 200);
    close_to(c.gpu_seconds, 36);
    close_to(c.pod_seconds, 360);
    close_to(c.idle_share, 0.75);
    close_to(c.total, 6.592);
    close_to(c.per_1k_predictions, 32.96);
    unload(cfg);
}

/* Windows written before the agent knew the pod's requests bill what was used; without
 * predictions there is no cost per 1k, without requests no idle share. */
static void test_cost_without_requests_or_predictions(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load(prices);
    struct mw_window w = {.resources = {.cpu_s = 36, .memory_gib_s = 100}};
    struct mw_cost_signals c;
    mw_cost_signals_compute(&w, cfg, &c);
    close_to(c.cpu_core_seconds_billed, 36);
    close_to(c.memory_gib_seconds_billed, 100);
    close_to(c.total, 36.0 / 3600 * 3.6 + 100.0 / 3600 * 0.36); /* 0.036 + 0.01 */
    close_to(c.total, 0.046);
    assert_true(isnan(c.idle_share));
    assert_true(isnan(c.per_1k_predictions));
    unload(cfg);
    cfg = load("{}"); /* no prices: nothing costs anything */
    w.count = 10;
    mw_cost_signals_compute(&w, cfg, &c);
    close_to(c.total, 0);
    close_to(c.per_1k_predictions, 0);
    unload(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_counts_errors_latency),
        cmocka_unit_test(test_service_empty_window),
        cmocka_unit_test(test_service_from_fields),
        cmocka_unit_test(test_cost_billed_on_requests),
        cmocka_unit_test(test_cost_without_requests_or_predictions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
