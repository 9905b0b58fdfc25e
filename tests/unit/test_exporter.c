/*
 * test_exporter.c — the bounds on /metrics' window gauges (metrics.max_model_versions,
 * metrics.drift_features, metrics.drift_top_k) and the drift verdict as a number.
 */
#include "exporter.h"

#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

static json_t *feature(const char *name, const char *verdict, double psi)
{
    json_t *f = json_pack("{s:s, s:f}", "feature", name, "psi", psi);
    if (verdict)
        json_object_set_new(f, "verdict", json_string(verdict));
    return f;
}

/* Entries arrive in reply order; features in profile order. */
static json_t *snapshot(void)
{
    json_t *s = json_array();
    const char *pairs[][2] = {{"fraud", "v1"}, {"churn", "v3"}, {"churn", "v10"}, {"ads", ""}};
    for (size_t i = 0; i < 4; i++) {
        json_t *drift = json_array();
        json_array_append_new(drift, feature("age", "none", 0.01));
        json_array_append_new(drift, feature("country", "drift", 0.15)); /* JS said drift */
        json_array_append_new(drift, feature("income", "drift", 0.4));
        json_array_append_new(drift, feature("plan", "possible", 0.12));
        json_array_append_new(drift, feature("tenure", NULL, 0.9));
        json_array_append_new(drift, feature("zip", "insufficient_data", 0));
        json_array_append_new(s, json_pack("{s:s, s:s, s:{}, s:o}", "model", pairs[i][0], "version",
                                           pairs[i][1], "window", "drift", drift));
    }
    return s;
}

static const char *text_at(json_t *array, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(array, i), key));
}

static void test_defaults_keep_everything_in_order(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load("{}");
    assert_int_equal(cfg->metrics.max_model_versions, 1000);
    assert_int_equal(cfg->metrics.drift_top_k, 20);
    json_t *s = snapshot();
    size_t entries = 99, features = 99;
    mw__exporter_bound(cfg, s, &entries, &features);
    assert_int_equal(entries, 0);
    assert_int_equal(features, 0);
    assert_int_equal(json_array_size(s), 4);
    /* (model, version) order, whatever order the replies came in */
    assert_string_equal(text_at(s, 0, "model"), "ads");
    assert_string_equal(text_at(s, 1, "version"), "v10");
    assert_string_equal(text_at(s, 2, "version"), "v3");
    assert_string_equal(text_at(s, 3, "model"), "fraud");
    json_t *drift = json_object_get(json_array_get(s, 0), "drift");
    assert_int_equal(json_array_size(drift), 6);
    json_decref(s);
    unload(cfg);
}

static void test_model_versions_bounded(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load("metrics:\n  max_model_versions: 2\n");
    json_t *s = snapshot();
    size_t entries, features;
    mw__exporter_bound(cfg, s, &entries, &features);
    assert_int_equal(entries, 2);
    assert_int_equal(json_array_size(s), 2);
    assert_string_equal(text_at(s, 0, "model"), "ads");
    assert_string_equal(text_at(s, 1, "version"), "v10");
    json_decref(s);
    unload(cfg);
}

static void test_top_k_by_verdict_then_psi(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load("metrics:\n  drift_top_k: 3\n");
    json_t *s = snapshot();
    size_t entries, features;
    mw__exporter_bound(cfg, s, &entries, &features);
    assert_int_equal(entries, 0);
    assert_int_equal(features, 4 * 3);
    for (size_t i = 0; i < 4; i++) {
        json_t *drift = json_object_get(json_array_get(s, i), "drift");
        assert_int_equal(json_array_size(drift), 3);
        assert_string_equal(text_at(drift, 0, "feature"), "income");
        assert_string_equal(text_at(drift, 1, "feature"), "country");
        assert_string_equal(text_at(drift, 2, "feature"), "plan");
    }
    json_decref(s);
    unload(cfg);
}

static void test_allow_list_then_top_k(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg =
        load("metrics:\n  drift_features: [age, zip, tenure, nosuch]\n  drift_top_k: 2\n");
    json_t *s = snapshot();
    size_t entries, features;
    mw__exporter_bound(cfg, s, &entries, &features);
    assert_int_equal(features, 4 * 4);
    json_t *drift = json_object_get(json_array_get(s, 0), "drift");
    assert_int_equal(json_array_size(drift), 2);
    assert_string_equal(text_at(drift, 0, "feature"), "age"); /* none beats insufficient */
    assert_string_equal(text_at(drift, 1, "feature"), "zip"); /* and no verdict at all */
    json_decref(s);
    unload(cfg);
    cfg = load("metrics:\n  drift_features: [tenure]\n  drift_top_k: 0\n");
    s = snapshot();
    mw__exporter_bound(cfg, s, &entries, &features);
    drift = json_object_get(json_array_get(s, 0), "drift");
    assert_int_equal(json_array_size(drift), 1);
    assert_string_equal(text_at(drift, 0, "feature"), "tenure");
    json_decref(s);
    unload(cfg);
}

static void test_verdict_levels(void **state)
{
    (void)state;
    double level = 42;
    assert_true(mw__exporter_verdict_level("none", &level) && level == 0);
    assert_true(mw__exporter_verdict_level("possible", &level) && level == 1);
    assert_true(mw__exporter_verdict_level("drift", &level) && level == 2);
    assert_true(mw__exporter_verdict_level("insufficient_data", &level) && level == -1);
    level = 42;
    assert_false(mw__exporter_verdict_level("drifted", &level));
    assert_false(mw__exporter_verdict_level("", &level));
    assert_false(mw__exporter_verdict_level(NULL, &level));
    assert_true(level == 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_keep_everything_in_order),
        cmocka_unit_test(test_model_versions_bounded),
        cmocka_unit_test(test_top_k_by_verdict_then_psi),
        cmocka_unit_test(test_allow_list_then_top_k),
        cmocka_unit_test(test_verdict_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
