/*
 * test_prom.c — Prometheus exposition: exact text for a small registry (counters, labelled
 * gauges, escaping, NaN/Inf, collectors), name validation, series lookup at scale, and
 * `promtool check metrics` on the rendered text when promtool is installed.
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
    if (access(PROMTOOL, X_OK) != 0) {
        print_message("# promtool not installed, check not run\n");
        return;
    }
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
                   strstr(out.data, "mw_cost_total{model=\"fraud\"} 0.5\n") != NULL;
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
