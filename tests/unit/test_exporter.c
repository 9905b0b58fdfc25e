/*
 * test_exporter.c — the bounds on /metrics' window gauges (metrics.max_model_versions,
 * metrics.drift_features, metrics.drift_top_k) on the typed snapshot, and the drift verdict as a
 * number.
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

static void feature(struct mw__export_entry *e, const char *name, enum mw_drift_verdict verdict,
                    double psi)
{
    /* set_drift replaces the entry's drift: pass what is there plus the new feature */
    struct mw_drift_feature_signal all[8];
    size_t n = e->n_features;
    for (size_t i = 0; i < n; i++)
        all[i] = e->features[i].signal;
    all[n] = (struct mw_drift_feature_signal){
        .feature = name, .numeric = true, .psi = psi, .verdict = verdict};
    struct mw_drift_signals ds = {.n_features = n + 1, .features = all};
    assert_int_equal(mw__export_entry_set_drift(e, &ds), 0);
}

/* Entries arrive in reply order; features in profile order. */
static struct mw__export_snapshot snapshot(void)
{
    struct mw__export_snapshot s = {0};
    const char *pairs[][2] = {{"fraud", "v1"}, {"churn", "v3"}, {"churn", "v10"}, {"ads", ""}};
    for (size_t i = 0; i < 4; i++) {
        struct mw__export_entry *e = mw__export_entry_add(&s, pairs[i][0], pairs[i][1]);
        assert_non_null(e);
        e->has_window = true;
        feature(e, "age", MW_DRIFT_VERDICT_NONE, 0.01);
        feature(e, "country", MW_DRIFT_VERDICT_DRIFT, 0.15); /* JS said drift */
        feature(e, "income", MW_DRIFT_VERDICT_DRIFT, 0.4);
        feature(e, "plan", MW_DRIFT_VERDICT_POSSIBLE, 0.12);
        feature(e, "tenure", MW_DRIFT_VERDICT_UNKNOWN, 0.9);
        feature(e, "zip", MW_DRIFT_VERDICT_INSUFFICIENT_DATA, 0);
    }
    return s;
}

static const char *feature_at(const struct mw__export_snapshot *s, size_t entry, size_t i)
{
    assert_true(i < s->entries[entry].n_features);
    assert_ptr_equal(s->entries[entry].features[i].signal.feature,
                     s->entries[entry].features[i].name);
    return s->entries[entry].features[i].name;
}

static void test_defaults_keep_everything_in_order(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load("{}");
    assert_int_equal(cfg->metrics.max_model_versions, 1000);
    assert_int_equal(cfg->metrics.drift_top_k, 20);
    struct mw__export_snapshot s = snapshot();
    size_t entries = 99, features = 99;
    mw__exporter_bound(cfg, &s, &entries, &features);
    assert_int_equal(entries, 0);
    assert_int_equal(features, 0);
    assert_int_equal(s.n, 4);
    /* (model, version) order, whatever order the replies came in */
    assert_string_equal(s.entries[0].model, "ads");
    assert_string_equal(s.entries[1].version, "v10");
    assert_string_equal(s.entries[2].version, "v3");
    assert_string_equal(s.entries[3].model, "fraud");
    assert_int_equal(s.entries[0].n_features, 6);
    mw__export_snapshot_free(&s);
    unload(cfg);
}

static void test_model_versions_bounded(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load("metrics:\n  max_model_versions: 2\n");
    struct mw__export_snapshot s = snapshot();
    size_t entries, features;
    mw__exporter_bound(cfg, &s, &entries, &features);
    assert_int_equal(entries, 2);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.entries[0].model, "ads");
    assert_string_equal(s.entries[1].version, "v10");
    mw__export_snapshot_free(&s);
    unload(cfg);
}

static void test_top_k_by_verdict_then_psi(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load("metrics:\n  drift_top_k: 3\n");
    struct mw__export_snapshot s = snapshot();
    size_t entries, features;
    mw__exporter_bound(cfg, &s, &entries, &features);
    assert_int_equal(entries, 0);
    assert_int_equal(features, 4 * 3);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s.entries[i].n_features, 3);
        assert_string_equal(feature_at(&s, i, 0), "income");
        assert_string_equal(feature_at(&s, i, 1), "country");
        assert_string_equal(feature_at(&s, i, 2), "plan");
    }
    mw__export_snapshot_free(&s);
    unload(cfg);
}

static void test_allow_list_then_top_k(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg =
        load("metrics:\n  drift_features: [age, zip, tenure, nosuch]\n  drift_top_k: 2\n");
    struct mw__export_snapshot s = snapshot();
    size_t entries, features;
    mw__exporter_bound(cfg, &s, &entries, &features);
    assert_int_equal(features, 4 * 4);
    assert_int_equal(s.entries[0].n_features, 2);
    assert_string_equal(feature_at(&s, 0, 0), "age"); /* none beats insufficient */
    assert_string_equal(feature_at(&s, 0, 1), "zip"); /* and an unknown verdict */
    mw__export_snapshot_free(&s);
    unload(cfg);
    cfg = load("metrics:\n  drift_features: [tenure]\n  drift_top_k: 0\n");
    s = snapshot();
    mw__exporter_bound(cfg, &s, &entries, &features);
    assert_int_equal(s.entries[0].n_features, 1);
    assert_string_equal(feature_at(&s, 0, 0), "tenure");
    mw__export_snapshot_free(&s);
    unload(cfg);
}

static void test_verdict_levels(void **state)
{
    (void)state;
    double level = 42;
    assert_true(mw__exporter_verdict_level(MW_DRIFT_VERDICT_NONE, &level) && level == 0);
    assert_true(mw__exporter_verdict_level(MW_DRIFT_VERDICT_POSSIBLE, &level) && level == 1);
    assert_true(mw__exporter_verdict_level(MW_DRIFT_VERDICT_DRIFT, &level) && level == 2);
    assert_true(mw__exporter_verdict_level(MW_DRIFT_VERDICT_INSUFFICIENT_DATA, &level) &&
                level == -1);
    level = 42;
    assert_false(mw__exporter_verdict_level(MW_DRIFT_VERDICT_UNKNOWN, &level));
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
