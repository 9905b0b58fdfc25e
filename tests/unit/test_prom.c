/*
 * test_prom.c — Prometheus exposition: exact text for a small registry (counters, labelled
 * gauges, escaping, NaN/Inf, collectors), histograms and summaries, UTF-8 repair of label
 * values, name validation, series lookup at scale, and `promtool check metrics` on the rendered
 * text.
 */
#include "prom.h"

#include "alloc.h"
#include "buf.h"
#include "error.h"

#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define PROMTOOL "/usr/bin/promtool"

static const double latency_bounds[] = {0.001, 0.0025, 0.1, 10};

static int setup_registry(void **state)
{
    *state = mw_prom_registry_create();
    return *state ? 0 : -1;
}

static int teardown_registry(void **state)
{
    mw_prom_registry_destroy(*state);
    return 0;
}

static char *render(struct mw_prom_registry *reg)
{
    struct mw_buf out;
    mw_buf_init(&out, 1 << 20);
    assert_int_equal(mw_prom_render(reg, &out), 0);
    char *text = mw_buf_detach(&out, NULL);
    return text ? text : mw_strdup("");
}

/* Per-model collector: writes two families per call, so two of them interleave families. */
struct model_arg {
    const char *model;
    double psi;
    double cost;
};

static void collect_model(struct mw_prom_writer *w, void *arg)
{
    const struct model_arg *m = arg;
    const char *names[] = {"model", NULL};
    const char *values[] = {m->model, NULL};
    mw_prom_write_family(w, "mw_drift_psi", "Population stability index.", MW_PROM_GAUGE);
    mw_prom_write_sample(w, "mw_drift_psi", names, values, m->psi);
    mw_prom_write_family(w, "mw_cost_total", "Cost in dollars.", MW_PROM_COUNTER);
    mw_prom_write_sample(w, NULL, names, values, m->cost);
}

static void build_small_registry(struct mw_prom_registry *reg, struct model_arg *models)
{
    struct mw_prom_series *req =
        mw_prom_simple(reg, "mw_requests_total", "Requests handled.", MW_PROM_COUNTER);
    assert_non_null(req);
    mw_prom_series_add(req, 3);
    mw_prom_series_add(req, -1); /* ignored: counters only go up */

    const char *labels[] = {"queue", "model", NULL};
    struct mw_prom_family *depth = mw_prom_family_add(
        reg, "mw_queue_depth", "Queue depth.\nSecond \\ line.", MW_PROM_GAUGE, labels);
    assert_non_null(depth);
    const char *v1[] = {"in\"put", "a\\b\nc", NULL};
    const char *v2[] = {"out", "m", NULL};
    mw_prom_series_set(mw_prom_series_get(depth, v1), 1.5);
    mw_prom_series_set(mw_prom_series_get(depth, v2), NAN);

    const char *kind[] = {"kind", NULL};
    struct mw_prom_family *edge =
        mw_prom_family_add(reg, "mw_edge_values", "Edge values.", MW_PROM_GAUGE, kind);
    const char *names[] = {"pinf", "ninf", "big", "bigger", "tenth", "neg", "tiny", "zero"};
    double values[] = {INFINITY, -INFINITY, 9007199254740992.0, 18014398509481984.0 * 2, 0.1, -3.0,
                       1e-7,     -0.0};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        const char *lv[] = {names[i], NULL};
        mw_prom_series_set(mw_prom_series_get(edge, lv), values[i]);
    }
    assert_int_equal(mw_prom_add_collector(reg, collect_model, &models[0]), 0);
    assert_int_equal(mw_prom_add_collector(reg, collect_model, &models[1]), 0);
}

static const char expected_small[] =
    "# HELP mw_requests_total Requests handled.\n"
    "# TYPE mw_requests_total counter\n"
    "mw_requests_total 3\n"
    "# HELP mw_queue_depth Queue depth.\\nSecond \\\\ line.\n"
    "# TYPE mw_queue_depth gauge\n"
    "mw_queue_depth{queue=\"in\\\"put\",model=\"a\\\\b\\nc\"} 1.5\n"
    "mw_queue_depth{queue=\"out\",model=\"m\"} NaN\n"
    "# HELP mw_edge_values Edge values.\n"
    "# TYPE mw_edge_values gauge\n"
    "mw_edge_values{kind=\"pinf\"} +Inf\n"
    "mw_edge_values{kind=\"ninf\"} -Inf\n"
    "mw_edge_values{kind=\"big\"} 9007199254740992\n"
    "mw_edge_values{kind=\"bigger\"} 36028797018963968\n"
    "mw_edge_values{kind=\"tenth\"} 0.10000000000000001\n"
    "mw_edge_values{kind=\"neg\"} -3\n"
    "mw_edge_values{kind=\"tiny\"} 9.9999999999999995e-08\n"
    "mw_edge_values{kind=\"zero\"} 0\n"
    "# HELP mw_drift_psi Population stability index.\n"
    "# TYPE mw_drift_psi gauge\n"
    "mw_drift_psi{model=\"churn\"} 0.25\n"
    "mw_drift_psi{model=\"fraud\"} 0\n"
    "# HELP mw_cost_total Cost in dollars.\n"
    "# TYPE mw_cost_total counter\n"
    "mw_cost_total{model=\"churn\"} 12\n"
    "mw_cost_total{model=\"fraud\"} 0.5\n";

static void test_exact_exposition(void **state)
{
    struct mw_prom_registry *reg = *state;
    struct model_arg models[] = {{"churn", 0.25, 12}, {"fraud", 0, 0.5}};
    build_small_registry(reg, models);
    char *text = render(reg);
    assert_string_equal(text, expected_small);
    mw_free(text);
}

/* Integers above 2^53 go through %.17g: still plain digits while they fit 17 of them. */
static void test_integers_above_2_53_use_g(void **state)
{
    struct mw_prom_registry *reg = *state;
    struct mw_prom_series *s = mw_prom_simple(reg, "g", "G.", MW_PROM_GAUGE);
    mw_prom_series_set(s, 9007199254740994.0);
    char *text = render(reg);
    assert_string_equal(text, "# HELP g G.\n# TYPE g gauge\ng 9007199254740994\n");
    mw_free(text);
    mw_prom_series_set(s, 1e300);
    text = render(reg);
    assert_string_equal(text, "# HELP g G.\n# TYPE g gauge\ng 1.0000000000000001e+300\n");
    mw_free(text);
}

static void test_promtool_accepts_output(void **state)
{
    assert_int_equal(access(PROMTOOL, X_OK), 0); /* a missing tool is a failure, not a skip */
    struct mw_prom_registry *reg = *state;
    struct model_arg models[] = {{"churn", 0.25, 12}, {"fraud", 0, 0.5}};
    build_small_registry(reg, models);
    char *text = render(reg);
    char path[] = "/tmp/test_prom_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s check metrics < %s", PROMTOOL, path);
    int rc = system(cmd);
    unlink(path);
    mw_free(text);
    assert_int_equal(rc, 0);
}

/* ---- histograms, summaries, UTF-8 ----------------------------------------------------------- */

static struct mw_prom_family *latency_histogram(struct mw_prom_registry *reg)
{
    const char *labels[] = {"model", NULL};
    struct mw_prom_family *fam =
        mw_prom_histogram_add(reg, "mw_latency_seconds", "Latency.", labels, latency_bounds, 4);
    assert_non_null(fam);
    return fam;
}

static void collect_summary_and_histogram(struct mw_prom_writer *w, void *arg)
{
    (void)arg;
    const char *q[] = {"model", "quantile", NULL};
    const char *q50[] = {"churn", "0.5", NULL};
    const char *q99[] = {"churn", "0.99", NULL};
    const char *m[] = {"model", NULL};
    const char *churn[] = {"churn", NULL};
    mw_prom_write_family(w, "mw_window_latency_seconds", "Window quantiles.", MW_PROM_SUMMARY);
    mw_prom_write_sample(w, NULL, q, q50, 0.002);
    mw_prom_write_sample(w, "mw_window_latency_seconds", q, q99, 0.25);
    mw_prom_write_sample(w, "mw_window_latency_seconds_count", m, churn, 7);
    mw_prom_write_family(w, "mw_size_bytes", "Sizes.", MW_PROM_HISTOGRAM);
    const char *le[] = {"le", NULL};
    const char *inf[] = {"+Inf", NULL};
    mw_prom_write_sample(w, "mw_size_bytes_bucket", le, inf, 3);
    mw_prom_write_sample(w, "mw_size_bytes_sum", NULL, NULL, 42);
    mw_prom_write_sample(w, "mw_size_bytes_count", NULL, NULL, 3);
    /* refused: quantile on a gauge, le on a gauge, a bucket without le, a summary without
     * quantile, le on a summary */
    mw_prom_write_family(w, "mw_g", "G.", MW_PROM_GAUGE);
    mw_prom_write_sample(w, NULL, (const char *[]){"quantile", NULL}, q50 + 1, 1);
    mw_prom_write_sample(w, NULL, le, inf, 1);
    mw_prom_write_sample(w, "mw_g_bucket", le, inf, 1);
    mw_prom_write_family(w, "mw_size_bytes", "Sizes.", MW_PROM_HISTOGRAM);
    mw_prom_write_sample(w, "mw_size_bytes_bucket", NULL, NULL, 1);
    mw_prom_write_sample(w, "mw_size_bytes", NULL, NULL, 1);
    mw_prom_write_family(w, "mw_window_latency_seconds", "Window quantiles.", MW_PROM_SUMMARY);
    mw_prom_write_sample(w, NULL, m, churn, 1);
    mw_prom_write_sample(w, "mw_window_latency_seconds_bucket", le, inf, 1);
}

static const char expected_histogram[] =
    "# HELP mw_latency_seconds Latency.\n"
    "# TYPE mw_latency_seconds histogram\n"
    "mw_latency_seconds_bucket{model=\"churn\",le=\"0.001\"} 1\n"
    "mw_latency_seconds_bucket{model=\"churn\",le=\"0.0025\"} 3\n"
    "mw_latency_seconds_bucket{model=\"churn\",le=\"0.1\"} 3\n"
    "mw_latency_seconds_bucket{model=\"churn\",le=\"10\"} 1003\n"
    "mw_latency_seconds_bucket{model=\"churn\",le=\"+Inf\"} 1004\n"
    "mw_latency_seconds_sum{model=\"churn\"} 1.5\n"
    "mw_latency_seconds_count{model=\"churn\"} 1004\n"
    "mw_latency_seconds_bucket{model=\"fraud\",le=\"0.001\"} 0\n"
    "mw_latency_seconds_bucket{model=\"fraud\",le=\"0.0025\"} 0\n"
    "mw_latency_seconds_bucket{model=\"fraud\",le=\"0.1\"} 0\n"
    "mw_latency_seconds_bucket{model=\"fraud\",le=\"10\"} 0\n"
    "mw_latency_seconds_bucket{model=\"fraud\",le=\"+Inf\"} 0\n"
    "mw_latency_seconds_sum{model=\"fraud\"} 0\n"
    "mw_latency_seconds_count{model=\"fraud\"} 0\n"
    "# HELP mw_plain_seconds Plain.\n"
    "# TYPE mw_plain_seconds histogram\n"
    "mw_plain_seconds_bucket{le=\"1\"} 1\n"
    "mw_plain_seconds_bucket{le=\"+Inf\"} 1\n"
    "mw_plain_seconds_sum 0.25\n"
    "mw_plain_seconds_count 1\n"
    "# HELP mw_window_latency_seconds Window quantiles.\n"
    "# TYPE mw_window_latency_seconds summary\n"
    "mw_window_latency_seconds{model=\"churn\",quantile=\"0.5\"} 0.002\n"
    "mw_window_latency_seconds{model=\"churn\",quantile=\"0.99\"} 0.25\n"
    "mw_window_latency_seconds_count{model=\"churn\"} 7\n"
    "# HELP mw_size_bytes Sizes.\n"
    "# TYPE mw_size_bytes histogram\n"
    "mw_size_bytes_bucket{le=\"+Inf\"} 3\n"
    "mw_size_bytes_sum 42\n"
    "mw_size_bytes_count 3\n"
    "# HELP mw_g G.\n"
    "# TYPE mw_g gauge\n";

static void build_histogram_registry(struct mw_prom_registry *reg)
{
    struct mw_prom_family *fam = latency_histogram(reg);
    struct mw_prom_series *churn = mw_prom_series_get(fam, (const char *const[]){"churn", NULL});
    struct mw_prom_series *fraud = mw_prom_series_get(fam, (const char *const[]){"fraud", NULL});
    assert_non_null(churn);
    assert_non_null(fraud);
    mw_prom_histogram_count(churn, 0.001, 1); /* on a bound: that bucket (le is <=) */
    mw_prom_histogram_count(churn, 0.0010001, 2);
    mw_prom_histogram_count(churn, 5, 1000);
    mw_prom_histogram_count(churn, 11, 1); /* beyond the last bound: +Inf only */
    mw_prom_histogram_count(churn, NAN, 5);
    mw_prom_histogram_add_sum(churn, 1.5);
    mw_prom_histogram_add_sum(churn, -1); /* ignored */
    mw_prom_series_add(churn, 10);        /* not how histograms change: ignored */
    mw_prom_series_set(churn, 10);
    struct mw_prom_family *plain =
        mw_prom_histogram_add(reg, "mw_plain_seconds", "Plain.", NULL, (const double[]){1}, 1);
    mw_prom_histogram_observe(mw_prom_series_get(plain, NULL), 0.25);
    assert_int_equal(mw_prom_add_collector(reg, collect_summary_and_histogram, NULL), 0);
}

static void test_histogram_exposition(void **state)
{
    struct mw_prom_registry *reg = *state;
    build_histogram_registry(reg);
    char *text = render(reg);
    assert_string_equal(text, expected_histogram);
    mw_free(text);
}

static void test_histogram_accessors(void **state)
{
    struct mw_prom_registry *reg = *state;
    struct mw_prom_family *fam = latency_histogram(reg);
    const char *churn[] = {"churn", NULL};
    assert_null(mw_prom_series_find(fam, churn));
    assert_int_equal(mw_prom_family_size(fam), 0);
    struct mw_prom_series *s = mw_prom_series_get(fam, churn);
    struct mw_prom_series *t = mw_prom_series_get(fam, (const char *const[]){"fraud", NULL});
    assert_ptr_equal(mw_prom_series_find(fam, churn), s);
    assert_int_equal(mw_prom_family_size(fam), 2);
    assert_int_equal(mw_prom_series_index(s), 0);
    assert_int_equal(mw_prom_series_index(t), 1);
    mw_prom_histogram_count(s, 0.002, 4);
    mw_prom_histogram_count(s, 0.0005, 1);
    mw_prom_histogram_add_sum(s, 0.0085);
    assert_int_equal(mw_prom_histogram_bucket(s, 0), 1);
    assert_int_equal(mw_prom_histogram_bucket(s, 1), 5);
    assert_int_equal(mw_prom_histogram_bucket(s, 4), 5);
    assert_int_equal(mw_prom_histogram_bucket(s, 5), 0); /* no such bucket */
    assert_true(mw_prom_histogram_sum(s) == 0.0085);
    assert_true(mw_prom_series_value(s) == 5.0);
    /* the histogram calls leave other series alone */
    struct mw_prom_series *g = mw_prom_simple(reg, "mw_g", "G.", MW_PROM_GAUGE);
    mw_prom_histogram_observe(g, 1);
    assert_true(mw_prom_series_value(g) == 0.0);
    assert_int_equal(mw_prom_histogram_bucket(g, 0), 0);
    mw_prom_histogram_observe(NULL, 1);
    assert_null(mw_prom_series_find(NULL, churn));
}

static void test_histogram_refused(void **state)
{
    struct mw_prom_registry *reg = *state;
    const double ok[] = {0.5, 1};
    const double unordered[] = {1, 0.5};
    const double equal[] = {1, 1};
    const double inf[] = {1, INFINITY};
    const double nan[] = {NAN};
    const char *le[] = {"le", NULL};
    const char *quantile[] = {"quantile", NULL};
    assert_null(mw_prom_histogram_add(reg, "h1", "h", NULL, unordered, 2));
    assert_null(mw_prom_histogram_add(reg, "h2", "h", NULL, equal, 2));
    assert_null(mw_prom_histogram_add(reg, "h3", "h", NULL, inf, 2));
    assert_null(mw_prom_histogram_add(reg, "h4", "h", NULL, nan, 1));
    assert_null(mw_prom_histogram_add(reg, "h5", "h", NULL, ok, 0));
    assert_null(mw_prom_histogram_add(reg, "h6", "h", NULL, NULL, 2));
    assert_null(mw_prom_histogram_add(reg, "h7", "h", le, ok, 2));
    assert_null(mw_prom_histogram_add(reg, "bad-name", "h", NULL, ok, 2));
    /* histograms and summaries only through their own calls; le and quantile are reserved */
    assert_null(mw_prom_family_add(reg, "h8", "h", MW_PROM_HISTOGRAM, NULL));
    assert_null(mw_prom_family_add(reg, "h9", "h", MW_PROM_SUMMARY, NULL));
    assert_null(mw_prom_family_add(reg, "g1", "h", MW_PROM_GAUGE, le));
    assert_null(mw_prom_family_add(reg, "g2", "h", MW_PROM_GAUGE, quantile));
    assert_non_null(mw_prom_histogram_add(reg, "h10", "h", NULL, ok, 2));
    assert_null(mw_prom_histogram_add(reg, "h10", "h", NULL, ok, 2));
}

/* Bounds are spelled shortest-first so that every replica writes the same le text. */
static void test_histogram_bound_text(void **state)
{
    struct mw_prom_registry *reg = *state;
    const double bounds[] = {0.0001, 0.1, 0.25, 0.30000000000000004, 1, 2.5, 1e6};
    mw_prom_series_get(mw_prom_histogram_add(reg, "h", "H.", NULL, bounds, 7), NULL);
    char *text = render(reg);
    const char *want[] = {"le=\"0.0001\"",
                          "le=\"0.1\"",
                          "le=\"0.25\"",
                          "le=\"1\"",
                          "le=\"2.5\"",
                          "le=\"1e+06\"",
                          "le=\"0.30000000000000004\""};
    for (size_t i = 0; i < 7; i++)
        assert_non_null(strstr(text, want[i]));
    mw_free(text);
}

/* Prometheus refuses a whole scrape over one label value that is not UTF-8: bad bytes become
 * U+FFFD in the text, good multi-byte characters stay. */
static void test_label_values_made_utf8(void **state)
{
    struct mw_prom_registry *reg = *state;
    const char *labels[] = {"v", NULL};
    struct mw_prom_family *fam = mw_prom_family_add(reg, "g", "G\xff.", MW_PROM_GAUGE, labels);
    mw_prom_series_get(fam, (const char *const[]){"caf\xc3\xa9", NULL});
    mw_prom_series_get(fam, (const char *const[]){"a\xc3", NULL});            /* cut short */
    mw_prom_series_get(fam, (const char *const[]){"\xed\xa0\x80", NULL});     /* surrogate */
    mw_prom_series_get(fam, (const char *const[]){"\xc0\xaf\"", NULL});       /* overlong */
    mw_prom_series_get(fam, (const char *const[]){"\xf0\x9f\x98\x80", NULL}); /* U+1F600 */
    char *text = render(reg);
    assert_string_equal(text, "# HELP g G\xef\xbf\xbd.\n# TYPE g gauge\n"
                              "g{v=\"caf\xc3\xa9\"} 0\n"
                              "g{v=\"a\xef\xbf\xbd\"} 0\n"
                              "g{v=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 0\n"
                              "g{v=\"\xef\xbf\xbd\xef\xbf\xbd\\\"\"} 0\n"
                              "g{v=\"\xf0\x9f\x98\x80\"} 0\n");
    mw_free(text);
    char out[8];
    assert_int_equal(mw_prom_utf8_copy("ab\xff", out, sizeof out), 5);
    assert_string_equal(out, "ab\xef\xbf\xbd");
    /* cut at a character boundary, never inside one */
    assert_int_equal(mw_prom_utf8_copy("abcde\xc3\xa9", out, sizeof out), 7);
    assert_string_equal(out, "abcde\xc3\xa9");
    assert_int_equal(mw_prom_utf8_copy("abcdef\xc3\xa9", out, sizeof out), 6);
    assert_string_equal(out, "abcdef");
    assert_int_equal(mw_prom_utf8_copy(NULL, out, sizeof out), 0);
}

static void run_promtool(const char *text)
{
    assert_int_equal(access(PROMTOOL, X_OK), 0); /* a missing tool is a failure */
    char path[] = "/tmp/test_prom_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s check metrics < %s", PROMTOOL, path);
    int rc = system(cmd);
    unlink(path);
    assert_int_equal(rc, 0);
}

static void test_promtool_accepts_histograms(void **state)
{
    struct mw_prom_registry *reg = *state;
    build_histogram_registry(reg);
    char *text = render(reg);
    run_promtool(text);
    mw_free(text);
}

static void test_invalid_names_refused(void **state)
{
    struct mw_prom_registry *reg = *state;
    const char *bad_names[] = {"", "1abc", "a-b", "a b", "é", "a.b"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
        assert_null(mw_prom_family_add(reg, bad_names[i], "h", MW_PROM_GAUGE, NULL));
    assert_null(mw_prom_family_add(reg, NULL, "h", MW_PROM_GAUGE, NULL));
    /* counters must end in _total */
    assert_null(mw_prom_family_add(reg, "mw_requests", "h", MW_PROM_COUNTER, NULL));
    assert_null(mw_prom_family_add(reg, "_total", "h", MW_PROM_COUNTER, NULL));
    /* label names: no ':', not reserved, no duplicates */
    const char *colon[] = {"a:b", NULL};
    const char *reserved[] = {"__name__", NULL};
    const char *dup[] = {"a", "a", NULL};
    const char *digit[] = {"1a", NULL};
    assert_null(mw_prom_family_add(reg, "g1", "h", MW_PROM_GAUGE, colon));
    assert_null(mw_prom_family_add(reg, "g2", "h", MW_PROM_GAUGE, reserved));
    assert_null(mw_prom_family_add(reg, "g3", "h", MW_PROM_GAUGE, dup));
    assert_null(mw_prom_family_add(reg, "g4", "h", MW_PROM_GAUGE, digit));
    /* valid ones, then a duplicate */
    assert_non_null(mw_prom_family_add(reg, "ns:sub_metric", "h", MW_PROM_GAUGE, NULL));
    assert_non_null(mw_prom_family_add(reg, "x_total", "h", MW_PROM_COUNTER, NULL));
    assert_null(mw_prom_family_add(reg, "x_total", "h", MW_PROM_COUNTER, NULL));
    assert_null(mw_prom_family_add(reg, "x_total", "h", MW_PROM_GAUGE, NULL));
}

static void test_series_lookup_many(void **state)
{
    struct mw_prom_registry *reg = *state;
    const char *labels[] = {"model", "version", NULL};
    struct mw_prom_family *fam =
        mw_prom_family_add(reg, "mw_events_total", "Events.", MW_PROM_COUNTER, labels);
    enum { N = 5000 };
    static struct mw_prom_series *made[N];
    char model[32], version[32];
    for (int i = 0; i < N; i++) {
        snprintf(model, sizeof model, "m%d", i % 97);
        snprintf(version, sizeof version, "v%d", i);
        const char *lv[] = {model, version, NULL};
        made[i] = mw_prom_series_get(fam, lv);
        assert_non_null(made[i]);
        mw_prom_series_add(made[i], i);
    }
    for (int i = N - 1; i >= 0; i--) {
        snprintf(model, sizeof model, "m%d", i % 97);
        snprintf(version, sizeof version, "v%d", i);
        const char *lv[] = {model, version, NULL};
        assert_ptr_equal(mw_prom_series_get(fam, lv), made[i]);
        assert_true(mw_prom_series_value(made[i]) == (double)i);
    }
    /* ("ab","") and ("a","b") are different series */
    const char *a[] = {"ab", "", NULL};
    const char *b[] = {"a", "b", NULL};
    assert_ptr_not_equal(mw_prom_series_get(fam, a), mw_prom_series_get(fam, b));
    /* missing values are refused */
    assert_null(mw_prom_series_get(fam, NULL));
}

static void test_null_series_accepted(void **state)
{
    (void)state;
    mw_prom_series_add(NULL, 1);
    mw_prom_series_set(NULL, 1);
    assert_true(mw_prom_series_value(NULL) == 0.0);
    mw_prom_registry_destroy(NULL);
}

/* A collector that misbehaves: bad family name, a clash with a static family, a sample under
 * another name, a sample before any family, a type change. Only the good lines survive. */
static void collect_bad(struct mw_prom_writer *w, void *arg)
{
    (void)arg;
    mw_prom_write_sample(w, "orphan", NULL, NULL, 1);
    mw_prom_write_family(w, "bad-name", "h", MW_PROM_GAUGE);
    mw_prom_write_sample(w, "bad-name", NULL, NULL, 1);
    mw_prom_write_family(w, "static_g", "clash", MW_PROM_GAUGE);
    mw_prom_write_sample(w, "static_g", NULL, NULL, 2);
    mw_prom_write_family(w, "dyn_g", "Dynamic.", MW_PROM_GAUGE);
    mw_prom_write_sample(w, "other", NULL, NULL, 3);
    const char *bad_label[] = {"__x", NULL};
    const char *value[] = {"v", NULL};
    mw_prom_write_sample(w, "dyn_g", bad_label, value, 4);
    mw_prom_write_sample(w, "dyn_g", NULL, NULL, 5);
    mw_prom_write_family(w, "dyn_g", "Dynamic.", MW_PROM_COUNTER);
    mw_prom_write_sample(w, "dyn_g", NULL, NULL, 6);
    mw_prom_write_family(w, "dyn_c", "No suffix.", MW_PROM_COUNTER);
    mw_prom_write_sample(w, "dyn_c", NULL, NULL, 7);
}

static void test_collector_misuse_dropped(void **state)
{
    struct mw_prom_registry *reg = *state;
    mw_prom_series_set(mw_prom_simple(reg, "static_g", "Static.", MW_PROM_GAUGE), 1);
    assert_int_equal(mw_prom_add_collector(reg, collect_bad, NULL), 0);
    char *text = render(reg);
    assert_string_equal(text, "# HELP static_g Static.\n# TYPE static_g gauge\nstatic_g 1\n"
                              "# HELP dyn_g Dynamic.\n# TYPE dyn_g gauge\ndyn_g 5\n");
    mw_free(text);
}

static void test_render_full_buffer(void **state)
{
    struct mw_prom_registry *reg = *state;
    mw_prom_series_set(mw_prom_simple(reg, "g", "G.", MW_PROM_GAUGE), 1);
    struct mw_buf out;
    mw_buf_init(&out, 16);
    assert_int_equal(mw_buf_append_str(&out, "keep"), 0);
    assert_int_equal(mw_prom_render(reg, &out), MW_EFULL);
    assert_int_equal(out.len, 4);
    assert_string_equal(out.data, "keep");
    mw_buf_free(&out);
    /* the same with the overflow coming from a collector */
    struct model_arg m = {"churn", 1, 1};
    assert_int_equal(mw_prom_add_collector(reg, collect_model, &m), 0);
    mw_buf_init(&out, 60);
    assert_int_equal(mw_prom_render(reg, &out), MW_EFULL);
    assert_int_equal(out.len, 0);
    mw_buf_free(&out);
}

static long alloc_budget = -1; /* allocations left before failing; -1: unlimited */

static bool alloc_allowed(void)
{
    return alloc_budget < 0 || alloc_budget-- > 0;
}

static void *failing_malloc(size_t size)
{
    return alloc_allowed() ? malloc(size) : NULL;
}

static void *failing_calloc(size_t n, size_t size)
{
    return alloc_allowed() ? calloc(n, size) : NULL;
}

static void *failing_realloc(void *p, size_t size)
{
    return alloc_allowed() ? realloc(p, size) : NULL;
}

/* Every allocation fails in turn while building and rendering: NULLs and MW_ENOMEM, never a
 * crash or a leak (valgrind checks the latter). Once allocations succeed, the text is whole. */
static void test_allocation_failures(void **state)
{
    (void)state;
    struct model_arg models[] = {{"churn", 0.25, 12}, {"fraud", 0, 0.5}};
    bool complete = false;
    for (long budget = 0; budget < 400 && !complete; budget++) {
        alloc_budget = budget;
        mw_replace_allocator(failing_malloc, failing_calloc, failing_realloc, free);
        struct mw_prom_registry *reg = mw_prom_registry_create();
        const char *labels[] = {"model", NULL};
        struct mw_prom_family *fam = mw_prom_family_add(reg, "mw_f", "F.", MW_PROM_GAUGE, labels);
        for (int i = 0; i < 20; i++) {
            char model[16];
            snprintf(model, sizeof model, "m%d", i);
            const char *lv[] = {model, NULL};
            mw_prom_series_set(mw_prom_series_get(fam, lv), i);
        }
        struct mw_prom_family *hist =
            mw_prom_histogram_add(reg, "mw_h_seconds", "H.", labels, latency_bounds, 4);
        mw_prom_histogram_observe(mw_prom_series_get(hist, (const char *const[]){"m", NULL}), 2);
        mw_prom_add_collector(reg, collect_model, &models[0]);
        mw_prom_add_collector(reg, collect_model, &models[1]);
        struct mw_buf out;
        mw_buf_init(&out, 1 << 20);
        int rc = reg ? mw_prom_render(reg, &out) : MW_ENOMEM;
        mw_replace_allocator(NULL, NULL, NULL, NULL);
        alloc_budget = -1;
        assert_true(rc == 0 || rc == MW_ENOMEM);
        complete = rc == 0 && fam &&
                   mw_prom_series_value(
                       mw_prom_series_get(fam, (const char *const[]){"m19", NULL})) == 19.0 &&
                   strstr(out.data, "mw_cost_total{model=\"fraud\"} 0.5\n") != NULL &&
                   strstr(out.data, "mw_h_seconds_bucket{model=\"m\",le=\"10\"} 1\n") != NULL;
        mw_buf_free(&out);
        mw_prom_registry_destroy(reg);
    }
    assert_true(complete);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_exposition, setup_registry, teardown_registry),
        cmocka_unit_test_setup_teardown(test_integers_above_2_53_use_g, setup_registry,
                                        teardown_registry),
        cmocka_unit_test_setup_teardown(test_promtool_accepts_output, setup_registry,
                                        teardown_registry),
        cmocka_unit_test_setup_teardown(test_invalid_names_refused, setup_registry,
                                        teardown_registry),
        cmocka_unit_test_setup_teardown(test_series_lookup_many, setup_registry, teardown_registry),
        cmocka_unit_test(test_null_series_accepted),
        cmocka_unit_test_setup_teardown(test_collector_misuse_dropped, setup_registry,
                                        teardown_registry),
        cmocka_unit_test_setup_teardown(test_render_full_buffer, setup_registry, teardown_registry),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test_setup_teardown(test_histogram_exposition, setup_registry,
                                        teardown_registry),
        cmocka_unit_test_setup_teardown(test_histogram_accessors, setup_registry,
                                        teardown_registry),
        cmocka_unit_test_setup_teardown(test_histogram_refused, setup_registry, teardown_registry),
        cmocka_unit_test_setup_teardown(test_histogram_bound_text, setup_registry,
                                        teardown_registry),
        cmocka_unit_test_setup_teardown(test_label_values_made_utf8, setup_registry,
                                        teardown_registry),
        cmocka_unit_test_setup_teardown(test_promtool_accepts_histograms, setup_registry,
                                        teardown_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
