/*
 * test_signals_slo.c — SLO attainment of a window at its boundaries, and the multi-window
 * burn rates against error ratios and burn rates worked out by hand.
 */
#include "signals_slo.h"

#include "config.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    if (!(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want))))
        fail_msg("got %.17g, want %.17g", got, want);
}

/* Bucket i holds latencies up to gamma^i us: bucket 400 up to 2981.75 us, bucket 500 up to
 * 22033.8 us. With a 3 ms threshold, 99 of these 100 requests are fast enough. */
static void test_attainment(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg =
        load("slo:\n  availability: 0.95\n  latency_threshold: 3ms\n  latency_target: 0.99\n");
    struct mw_window_latency_bucket latency[] = {{0, 50}, {100, 40}, {400, 9}, {500, 1}};
    struct mw_window w = {.count = 200, .errors = 10, .n_latency = 4, .latency = latency};
    struct mw_slo_attainment a;
    mw_slo_attainment_compute(&w, cfg, &a);
    close_to(a.availability, 0.95);
    assert_true(a.availability_target == 0.95);
    assert_int_equal(a.availability_met, MW_SLO_MET); /* 0.95 >= 0.95: met at the boundary */
    assert_true(a.latency_attainment == 0.99);
    assert_int_equal(a.latency_threshold_ms, 3);
    assert_int_equal(a.latency_met, MW_SLO_MET);
    w.errors = 11;           /* 0.945 */
    latency[2].bucket = 401; /* up to 3041.99 us: past the threshold */
    mw_slo_attainment_compute(&w, cfg, &a);
    close_to(a.availability, 0.945);
    assert_int_equal(a.availability_met, MW_SLO_MISSED);
    close_to(a.latency_attainment, 0.9);
    assert_int_equal(a.latency_met, MW_SLO_MISSED);
    struct mw_window empty = {0};
    mw_slo_attainment_compute(&empty, cfg, &a);
    assert_true(isnan(a.availability) && isnan(a.latency_attainment));
    assert_int_equal(a.availability_met, MW_SLO_UNKNOWN);
    assert_int_equal(a.latency_met, MW_SLO_UNKNOWN);
    unload(cfg);
}

#define MIN 60000LL
#define HOUR 3600000LL
#define DAY 86400000LL

static size_t lookback(const char *name)
{
    for (size_t i = 0; i < MW_SLO_N_LOOKBACKS; i++)
        if (strcmp(mw_slo_lookbacks[i].name, name) == 0)
            return i;
    fail_msg("no lookback %s", name);
    return 0;
}

/*
 * As of `at`, fine windows starting 5 min (exactly on the lookback's edge), 20 min and 90 min
 * before, coarse ones 5 h and 2 d before; windows at `at`, fine ones older than 2 h and coarse
 * ones older than 3 d count nowhere:
 *   5m   20 / 1000                     = 0.02       30m, 1h  25 / 2000 = 0.0125
 *   2h   27 / 4000                     = 0.00675    6h, 1d   50 / 10000 = 0.005
 *   3d  (50 + 70) / (10000 + 50000)    = 0.002
 * Objective 99.9 %: a budget of 0.001, so burn rates are the ratios x 1000:
 *   1h/5m   12.5 / 20    x14.4  not burning (the long window is under)
 *   6h/30m  5 / 12.5     x6     not burning
 *   1d/2h   5 / 6.75     x3     burning
 *   3d/6h   2 / 5        x1     burning
 */
static void test_burn_rates(void **state)
{
    (void)state;
    int64_t at = 30 * DAY;
    struct mw_slo_burn b;
    mw_slo_burn_init(&b, at);
    mw_slo_burn_add(&b, at - 5 * MIN, true, 1000, 20);
    mw_slo_burn_add(&b, at - 20 * MIN, true, 1000, 5);
    mw_slo_burn_add(&b, at - 90 * MIN, true, 2000, 2);
    mw_slo_burn_add(&b, at, true, 5000, 5000);            /* starts at `at` */
    mw_slo_burn_add(&b, at - 3 * HOUR, true, 7000, 7000); /* fine, older than 2 h */
    mw_slo_burn_add(&b, at - 5 * HOUR, false, 10000, 50);
    mw_slo_burn_add(&b, at - 2 * DAY, false, 50000, 70);
    mw_slo_burn_add(&b, at - 4 * DAY, false, 9, 9); /* coarse, older than 3 d */
    struct mw_slo_burn_rates r;
    mw_slo_burn_rates_compute(&b, 0.999, &r);
    close_to(r.error_ratio[lookback("5m")], 0.02);
    close_to(r.error_ratio[lookback("30m")], 0.0125);
    close_to(r.error_ratio[lookback("1h")], 0.0125);
    close_to(r.error_ratio[lookback("2h")], 0.00675);
    close_to(r.error_ratio[lookback("6h")], 0.005);
    close_to(r.error_ratio[lookback("1d")], 0.005);
    close_to(r.error_ratio[lookback("3d")], 0.002);
    const struct {
        double long_rate, short_rate;
        bool burning;
    } want[MW_SLO_N_BURN_PAIRS] = {
        {12.5, 20, false}, {5, 12.5, false}, {5, 6.75, true}, {2, 5, true}};
    for (size_t i = 0; i < MW_SLO_N_BURN_PAIRS; i++) {
        close_to(r.pairs[i].long_burn_rate, want[i].long_rate);
        close_to(r.pairs[i].short_burn_rate, want[i].short_rate);
        assert_int_equal(r.pairs[i].burning, want[i].burning);
    }
    assert_string_equal(mw_slo_burn_pairs[0].long_name, "1h");
    assert_string_equal(mw_slo_burn_pairs[0].short_name, "5m");
    assert_true(mw_slo_burn_pairs[0].threshold == 14.4);
    assert_true(mw_slo_burn_pairs[3].threshold == 1);
}

static void test_burn_rates_without_traffic(void **state)
{
    (void)state;
    struct mw_slo_burn b;
    mw_slo_burn_init(&b, DAY);
    mw_slo_burn_add(&b, DAY - 3 * HOUR, false, 100, 100); /* only the long lookbacks */
    struct mw_slo_burn_rates r;
    mw_slo_burn_rates_compute(&b, 0.99, &r);
    assert_true(isnan(r.error_ratio[lookback("5m")]));
    assert_true(isnan(r.error_ratio[lookback("2h")]));
    close_to(r.error_ratio[lookback("6h")], 1.0);
    /* the first three pairs read a short lookback of fine windows: no data, no burning */
    for (size_t i = 0; i < 3; i++)
        assert_false(r.pairs[i].burning);
    assert_true(isnan(r.pairs[0].long_burn_rate) && isnan(r.pairs[0].short_burn_rate));
    close_to(r.pairs[1].long_burn_rate, 100); /* 6h: 1.0 / 0.01 */
    assert_true(isnan(r.pairs[1].short_burn_rate));
    /* 3d/6h reads coarse windows on both sides */
    close_to(r.pairs[3].long_burn_rate, 100);
    close_to(r.pairs[3].short_burn_rate, 100);
    assert_true(r.pairs[3].burning);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attainment),
        cmocka_unit_test(test_burn_rates),
        cmocka_unit_test(test_burn_rates_without_traffic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
