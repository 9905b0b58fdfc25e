/*
 * test_evaluator.c — rules applied to windows (alert/evaluator.h) and the alerting state's
 * documents (alert/alert_store.h), on hand-made windows whose values are worked out here:
 * error rates from counts, burn rates from request and error sums over spans counted by hand,
 * the per-version breakdown of a page, lazy instances, and JSON round trips.
 */
#include "alert/alert_store.h"
#include "alert/evaluator.h"

#include "alloc.h"
#include "config.h"
#include "error.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MINUTE 60000LL
#define HOUR 3600000LL

static struct mw_aggregator_config *load_cfg(const char *yaml)
{
    struct mw_aggregator_config *cfg = calloc(1, sizeof *cfg);
    struct mw_cfg_error err;
    assert_non_null(cfg);
    if (mw_config_load_string(mw_aggregator_config_table, cfg, yaml, "test.yaml", &err) != 0)
        fail_msg("%s", err.message);
    return cfg;
}

static void load_rules(struct mw_rule_set *set, const char *yaml)
{
    struct mw_cfg_error err;
    memset(set, 0, sizeof *set);
    if (mw_rules_load_string(set, yaml, "rules.yaml", &err) != 0)
        fail_msg("%s", err.message);
}

static void close_to(double got, double want)
{
    if (!(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want))))
        fail_msg("got %.17g, want %.17g", got, want);
}

static double value_named(const struct mw_alert_inst *inst, const char *name)
{
    for (size_t i = 0; i < inst->n_values; i++)
        if (strcmp(inst->values[i].name, name) == 0)
            return inst->values[i].value;
    fail_msg("no value %s", name);
    return NAN;
}

static const char *const ERROR_RULES = "groups:\n"
                                       "  - name: g\n"
                                       "    rules:\n"
                                       "      - name: ErrorRateHigh\n"
                                       "        signal: error_rate\n"
                                       "        comparison: \">\"\n"
                                       "        threshold: 0.1\n"
                                       "        for: 2m\n"
                                       "        min_samples: 100\n"
                                       "        severity: critical\n"
                                       "        annotations:\n"
                                       "          summary: \"{{ $labels.version }} fails\"\n"
                                       "          runbook_url: \"{{ $runbook_base }}/rb.md\"\n";

/* One minute of churn: v1 healthy, v2 failing `v2_errors` of 300 requests. */
static int step_minute(struct mw_evaluator *ev, int64_t start, int64_t v2_errors,
                       struct mw_eval_transitions *out)
{
    struct mw_window w[2] = {
        {.model = "churn", .version = "v1", .start_ms = start, .width_ms = MINUTE, .count = 100},
        {.model = "churn",
         .version = "v2",
         .start_ms = start,
         .width_ms = MINUTE,
         .count = 300,
         .errors = v2_errors},
    };
    struct mw_eval_source src[2] = {{.window = &w[0]}, {.window = &w[1]}};
    struct mw_eval_group g = {
        .model = "churn", .width_ms = MINUTE, .start_ms = start, .n = 2, .sources = src};
    return mw_evaluator_step_group(ev, &g, out);
}

static void test_page_and_resolve(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load_cfg("");
    struct mw_rule_set rules;
    load_rules(&rules, ERROR_RULES);
    struct mw_evaluator *ev;
    struct mw_evaluator_options opts = {
        .cfg = cfg, .runbook_base = "https://rb/", .external_url = "http://mw:9465/"};
    assert_int_equal(mw_evaluator_create(&opts, &ev), 0);
    mw_evaluator_set_rules(ev, &rules);
    struct mw_eval_transitions t = {0};
    int64_t t0 = 1767225600000LL;
    assert_int_equal(step_minute(ev, t0, 0, &t), 0);
    assert_int_equal(mw_evaluator_count(ev), 0); /* nothing breaches: no instance at all */
    assert_int_equal(step_minute(ev, t0 + MINUTE, 60, &t), 0);
    assert_int_equal(t.n, 0); /* pending: 1 of the 2 minutes of `for` */
    assert_int_equal(mw_evaluator_count(ev), 1);
    struct mw_alert_inst *inst = mw_evaluator_find(ev, "g/ErrorRateHigh", "churn", "v2", NULL);
    assert_non_null(inst);
    assert_int_equal(inst->st.state, MW_ALERT_PENDING);
    assert_int_equal(step_minute(ev, t0 + 2 * MINUTE, 90, &t), 0);
    assert_int_equal(t.n, 1);
    assert_true(t.items[0].inst == inst && t.items[0].change == MW_EVAL_PAGE);
    /* What the page says. */
    close_to(value_named(inst, "value"), 0.3);
    close_to(value_named(inst, "threshold"), 0.1);
    close_to(value_named(inst, "samples"), 300);
    close_to(value_named(inst, "version.v1.traffic_share"), 0.25);
    close_to(value_named(inst, "version.v2.traffic_share"), 0.75);
    close_to(value_named(inst, "version.v1.value"), 0);
    close_to(value_named(inst, "version.v2.value"), 0.3);
    assert_string_equal(mw_labels_get(&inst->annotations, "versions"),
                        "v1: 25.0% of traffic, error_rate 0 (100 samples); v2: 75.0% of traffic, "
                        "error_rate 0.3 (300 samples)");
    assert_string_equal(mw_labels_get(&inst->annotations, "runbook_url"), "https://rb/rb.md");
    assert_string_equal(inst->generator_url,
                        "http://mw:9465/api/v1/models/churn/windows?version=v2&resolution=60"
                        "&from=1767225720000&to=1767225720000");
    assert_string_equal(mw_labels_get(&inst->labels, "alertname"), "ErrorRateHigh");
    assert_string_equal(mw_labels_get(&inst->labels, "version"), "v2");
    assert_non_null(
        mw_evaluator_find_fingerprint(ev, mw_labels_hash(&inst->labels), &inst->labels));
    /* Still breaching: no second page. Then a clear minute resolves. */
    t.n = 0;
    assert_int_equal(step_minute(ev, t0 + 3 * MINUTE, 90, &t), 0);
    assert_int_equal(t.n, 0);
    assert_int_equal(step_minute(ev, t0 + 4 * MINUTE, 3, &t), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.items[0].change, MW_EVAL_RESOLVE);
    assert_int_equal(inst->st.state, MW_ALERT_RESOLVED);
    mw_eval_transitions_free(&t);
    mw_evaluator_destroy(ev);
    mw_rule_set_free(&rules);
    mw_config_free(mw_aggregator_config_table, cfg);
    free(cfg);
}

/* One minute of churn in which only v1 sends windows (v2 was rolled back). */
static int step_minute_v1_only(struct mw_evaluator *ev, int64_t start,
                               struct mw_eval_transitions *out)
{
    struct mw_window w = {
        .model = "churn", .version = "v1", .start_ms = start, .width_ms = MINUTE, .count = 100};
    struct mw_eval_source src = {.window = &w};
    struct mw_eval_group g = {
        .model = "churn", .width_ms = MINUTE, .start_ms = start, .n = 1, .sources = &src};
    return mw_evaluator_step_group(ev, &g, out);
}

/* v2 pages, then is rolled back: its alert resolves once churn's windows have gone on for
 * MW_EVAL_VERSION_GONE_MS without it, not before. */
static void test_version_gone(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load_cfg("");
    struct mw_rule_set rules;
    load_rules(&rules, ERROR_RULES);
    struct mw_evaluator *ev;
    struct mw_evaluator_options opts = {.cfg = cfg, .external_url = "http://mw"};
    assert_int_equal(mw_evaluator_create(&opts, &ev), 0);
    mw_evaluator_set_rules(ev, &rules);
    struct mw_eval_transitions t = {0};
    int64_t t0 = 1767225600000LL;
    for (int m = 0; m < 3; m++)
        assert_int_equal(step_minute(ev, t0 + m * MINUTE, 90, &t), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.items[0].change, MW_EVAL_PAGE);
    struct mw_alert_inst *inst = t.items[0].inst;
    t.n = 0;
    /* The last v2 window ended at t0 + 3 min; v1 alone goes on. */
    int64_t gone_after = MW_EVAL_VERSION_GONE_MS / MINUTE;
    for (int64_t m = 3; m < 3 + gone_after - 1; m++) {
        assert_int_equal(step_minute_v1_only(ev, t0 + m * MINUTE, &t), 0);
        assert_int_equal(t.n, 0);
        assert_int_equal(inst->st.state, MW_ALERT_FIRING);
    }
    assert_int_equal(step_minute_v1_only(ev, t0 + (2 + gone_after) * MINUTE, &t), 0);
    assert_int_equal(t.n, 1);
    assert_true(t.items[0].inst == inst && t.items[0].change == MW_EVAL_RESOLVE);
    assert_int_equal(inst->st.state, MW_ALERT_RESOLVED);
    mw_eval_transitions_free(&t);
    mw_evaluator_destroy(ev);
    mw_rule_set_free(&rules);
    mw_config_free(mw_aggregator_config_table, cfg);
    free(cfg);
}

/* Lookbacks up to 2 h sum fine windows; beyond, complete coarse windows plus the fine windows
 * of the current hour: at 10:30, a 6 h lookback is the coarse windows of 04:30..10:00 that
 * end by 10:00 (05:00 .. 09:00) and the fine windows of 10:00..10:30. */
static void test_span_sums(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load_cfg("");
    int64_t at = 10 * HOUR + 30 * MINUTE;
    struct mw_eval_count fine[120], coarse[12];
    for (int i = 0; i < 120; i++) /* 08:30 .. 10:29, one per minute: 10 requests, i % 2 errors */
        fine[i] = (struct mw_eval_count){at - (120 - i) * MINUTE, 10, i % 2};
    for (int i = 0; i < 12; i++) /* 00:00 .. 11:00: the 10:00 one is incomplete at 10:30 */
        coarse[i] = (struct mw_eval_count){i * HOUR, 600, i};
    struct mw_eval_counts c = {.n_fine = 120, .fine = fine, .n_coarse = 12, .coarse = coarse};
    double n, e;
    mw_eval_span_sums(&c, cfg, at, 5 * MINUTE, &n, &e);
    close_to(n, 50);
    close_to(e, 3); /* minutes 115..119: the odd ones 115, 117 and 119 */
    mw_eval_span_sums(&c, cfg, at, HOUR, &n, &e);
    close_to(n, 600);
    close_to(e, 30);
    mw_eval_span_sums(&c, cfg, at, 6 * HOUR, &n, &e);
    /* coarse 05:00..09:00 (5 windows, 3000 requests, 5+6+7+8+9 errors) + fine 10:00..10:29 */
    close_to(n, 3000 + 300);
    close_to(e, 35 + 15);
    mw_config_free(mw_aggregator_config_table, cfg);
    free(cfg);
}

static void test_burn_rate(void **state)
{
    (void)state;
    struct mw_aggregator_config *cfg = load_cfg("slo:\n  availability: 0.99\n");
    struct mw_rule_set rules;
    load_rules(&rules, "groups:\n"
                       "  - name: slo\n"
                       "    rules:\n"
                       "      - name: Burn\n"
                       "        signal: burn_rate\n"
                       "        long_window: 1h\n"
                       "        short_window: 5m\n"
                       "        factor: 14.4\n"
                       "        comparison: \">\"\n"
                       "        severity: critical\n"
                       "        annotations:\n"
                       "          summary: burn\n");
    struct mw_evaluator *ev;
    struct mw_evaluator_options opts = {.cfg = cfg};
    assert_int_equal(mw_evaluator_create(&opts, &ev), 0);
    mw_evaluator_set_rules(ev, &rules);
    /* The last hour: 100 requests a minute; 20 % errors in the last 5 minutes, 1 % before.
     * Long: (55 + 100) / 6000 / 0.01 = 2.583; short: 100 / 500 / 0.01 = 20: min 2.583. */
    int64_t start = 10 * HOUR - MINUTE;
    struct mw_eval_count fine[60];
    for (int i = 0; i < 60; i++)
        fine[i] = (struct mw_eval_count){10 * HOUR - (60 - i) * MINUTE, 100, i >= 55 ? 20 : 1};
    struct mw_eval_counts c = {.n_fine = 60, .fine = fine};
    struct mw_window w = {.model = "m",
                          .version = "v",
                          .start_ms = start,
                          .width_ms = MINUTE,
                          .count = 100,
                          .errors = 20};
    struct mw_eval_source src = {.window = &w, .counts = &c};
    struct mw_rule_sample s;
    mw_evaluator_value(ev, &rules.rules[0], &src, NULL, &s);
    assert_int_equal(s.kind, MW_SAMPLE_VALUE);
    close_to(s.value, 155.0 / 6000 / 0.01);
    assert_int_equal(s.samples, 500);
    /* A version with only 30 minutes of history has no 1-hour burn rate yet. */
    struct mw_eval_counts young = {.n_fine = 30, .fine = fine + 30};
    src.counts = &young;
    mw_evaluator_value(ev, &rules.rules[0], &src, NULL, &s);
    assert_int_equal(s.kind, MW_SAMPLE_NO_VALUE);
    assert_false(mw_eval_span_covered(&young, cfg, 10 * HOUR, HOUR));
    assert_true(mw_eval_span_covered(&young, cfg, 10 * HOUR, 30 * MINUTE));
    src.counts = NULL; /* no counts read: no value, never a zero */
    mw_evaluator_value(ev, &rules.rules[0], &src, NULL, &s);
    assert_int_equal(s.kind, MW_SAMPLE_NO_VALUE);
    mw_evaluator_destroy(ev);
    mw_rule_set_free(&rules);
    mw_config_free(mw_aggregator_config_table, cfg);
    free(cfg);
}

static void test_instance_round_trip(void **state)
{
    (void)state;
    struct mw_alert_inst *inst = mw_alert_inst_new("g/R", "churn", "v 2", "f3");
    assert_non_null(inst);
    inst->st.state = MW_ALERT_FIRING;
    inst->st.stepped = true;
    inst->st.last_end_ms = 180000;
    inst->st.active_since_ms = 60000;
    inst->st.fired_at_ms = 180000;
    inst->st.has_value = true;
    inst->st.value = 0.123456789012345;
    inst->st.samples = 4242;
    inst->st.n_changes = 2;
    inst->st.change_ms[0] = 1;
    inst->st.change_ms[1] = 180000;
    mw_labels_set(&inst->labels, "alertname", "R");
    mw_labels_set(&inst->labels, "model", "churn");
    mw_labels_set(&inst->annotations, "summary", "a \"quoted\" summary");
    inst->n_values = 2;
    snprintf(inst->values[0].name, sizeof inst->values[0].name, "value");
    inst->values[0].value = 0.5;
    snprintf(inst->values[1].name, sizeof inst->values[1].name, "version.v1.value");
    inst->values[1].value = NAN;
    inst->generator_url = mw_strdup("http://x/api");
    char *json = mw_alert_inst_encode(inst);
    assert_non_null(json);
    struct mw_alert_inst *back = NULL;
    assert_int_equal(mw_alert_inst_decode(json, strlen(json), &back), 0);
    assert_string_equal(back->rule_id, "g/R");
    assert_string_equal(back->version, "v 2");
    assert_string_equal(back->feature, "f3");
    assert_int_equal(back->st.state, MW_ALERT_FIRING);
    assert_true(back->st.value == inst->st.value);
    assert_int_equal(back->st.samples, 4242);
    assert_int_equal(back->st.n_changes, 2);
    assert_int_equal(back->st.change_ms[1], 180000);
    assert_true(mw_labels_equal(&back->labels, &inst->labels));
    assert_string_equal(mw_labels_get(&back->annotations, "summary"), "a \"quoted\" summary");
    assert_int_equal(back->n_values, 2);
    assert_true(isnan(back->values[1].value));
    assert_string_equal(back->generator_url, "http://x/api");
    assert_true(back->fingerprint == mw_labels_hash(&inst->labels));
    mw_free(json);
    mw_alert_inst_free(back);
    mw_alert_inst_free(inst);
    assert_int_equal(mw_alert_inst_decode("{\"rule\": 3}", 11, &back), MW_EPARSE);
}

static void test_nlog_and_silence_round_trip(void **state)
{
    (void)state;
    struct mw_nlog_entry e = {.group_key = "route{model=\"churn\"}",
                              .receiver = "pd",
                              .last_status = MW_NOTIFY_RESOLVED,
                              .last_at_ms = 5,
                              .last_attempts = 2,
                              .last_http_status = 202,
                              .has_delivered = true,
                              .delivered_status = MW_NOTIFY_FIRING,
                              .delivered_at_ms = 4};
    snprintf(e.last_result, sizeof e.last_result, "delivered");
    struct mw_nlog_alert a = {.starts_at_ms = 3};
    mw_labels_set(&a.labels, "alertname", "X");
    e.delivered = &a;
    e.n_delivered = 1;
    char *json = mw_nlog_entry_encode(&e);
    assert_non_null(json);
    struct mw_nlog_entry *back = NULL;
    assert_int_equal(mw_nlog_entry_decode(e.group_key, json, strlen(json), &back), 0);
    assert_string_equal(back->receiver, "pd");
    assert_int_equal(back->last_status, MW_NOTIFY_RESOLVED);
    assert_string_equal(back->last_result, "delivered");
    assert_int_equal(back->last_http_status, 202);
    assert_true(back->has_delivered && back->delivered_status == MW_NOTIFY_FIRING);
    assert_int_equal(back->n_delivered, 1);
    assert_true(mw_labels_equal(&back->delivered[0].labels, &a.labels));
    assert_int_equal(back->delivered[0].starts_at_ms, 3);
    mw_nlog_entry_free(back);
    mw_free(json);
    mw_labels_free(&a.labels);

    const char *matchers[] = {"alertname=\"A\\\"B\"", "model=~\"churn|fraud\""};
    struct mw_silence s, s2;
    char why[200];
    assert_int_equal(
        mw_silence_init(&s, "id-1", matchers, 2, 10, 20, "ana", "deploy", why, sizeof why), 0);
    json = mw_silence_encode(&s);
    assert_non_null(json);
    assert_int_equal(mw_silence_decode(json, strlen(json), &s2, why, sizeof why), 0);
    assert_string_equal(s2.id, "id-1");
    assert_int_equal(s2.matchers.n, 2);
    assert_string_equal(s2.matchers.items[0].value, "A\"B");
    assert_int_equal(s2.matchers.items[1].op, MW_MATCH_RE);
    assert_int_equal(s2.ends_at_ms, 20);
    assert_string_equal(s2.comment, "deploy");
    mw_free(json);
    mw_silence_free(&s);
    mw_silence_free(&s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_and_resolve),
        cmocka_unit_test(test_version_gone),
        cmocka_unit_test(test_span_sums),
        cmocka_unit_test(test_burn_rate),
        cmocka_unit_test(test_instance_round_trip),
        cmocka_unit_test(test_nlog_and_silence_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
