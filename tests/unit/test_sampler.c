/* test_sampler.c — payload sampling: rate fraction, determinism, forced keeps, weights, the
 * events/s cap and its reweighting, rule fallback, feedback consistency, reloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "error.h"
#include "sampler.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define T0_MS 1000000u /* a simulated monotonic clock, on a second boundary */

/* A rule with the config table's defaults (rate 1, keep errors, no slow keep, no cap). */
static struct mw_model_rule rule(const char *name, double rate)
{
    return (struct mw_model_rule){.name = (char *)name, .sample_rate = rate, .keep_errors = true};
}

static struct mw_sampler *make(const struct mw_model_rule *rules, size_t n)
{
    struct mw_sampler *s = NULL;
    char err[256];
    assert_int_equal(mw_sampler_create(rules, n, NULL, &s, err, sizeof err), 0);
    assert_non_null(s);
    return s;
}

static const char *id_of(char *buf, size_t size, unsigned i)
{
    snprintf(buf, size, "pred-%u", i);
    return buf;
}

/* An ok, fast event at T0_MS; returns the decision and fills weight/why. */
static bool keep_plain(struct mw_sampler *s, const char *model, const char *id, double *w,
                       enum mw_sample_reason *why)
{
    return mw_sampler_keep_event(s, model, id, false, 100, T0_MS, w, why);
}

/* ---------------------------------------------------------------------------------------- */
/* Rate                                                                                      */

static void test_rate_fraction_within_five_sd(void **state)
{
    (void)state;
    struct mw_model_rule r = rule("churn", 0.1);
    struct mw_sampler *s = make(&r, 1);
    const unsigned n = 100000;
    unsigned kept = 0;
    char id[32];
    for (unsigned i = 0; i < n; i++) {
        double w;
        enum mw_sample_reason why;
        if (keep_plain(s, "churn", id_of(id, sizeof id, i), &w, &why)) {
            kept++;
            assert_int_equal(why, MW_SAMPLE_KEPT_RATE);
            assert_true(w == 10.0); /* 1 / 0.1 */
        } else {
            assert_int_equal(why, MW_SAMPLE_DROPPED_RATE);
            assert_true(w == 0.0);
        }
    }
    /* Kept count ~ Binomial(n, p): sd of the fraction = sqrt(p(1-p)/n) = 0.000949. A hash that
     * behaves like a uniform variable lands within 5 sd (0.0047) except with probability
     * ~6e-7; a biased or badly mixed hash does not. */
    double p = 0.1, sd = sqrt(p * (1 - p) / n), fraction = (double)kept / n;
    assert_true(fabs(fraction - p) < 5 * sd);
    struct mw_sampler_stats st;
    mw_sampler_stats(s, &st);
    assert_int_equal(st.events[MW_SAMPLE_KEPT_RATE], kept);
    assert_int_equal(st.events[MW_SAMPLE_DROPPED_RATE], n - kept);
    mw_sampler_destroy(s);
}

static void test_same_id_same_decision_across_calls_and_samplers(void **state)
{
    (void)state;
    struct mw_model_rule r = rule("churn", 0.5);
    struct mw_sampler *a = make(&r, 1), *b = NULL;
    char id[32];
    for (unsigned i = 0; i < 50; i++) {
        id_of(id, sizeof id, i);
        bool first = keep_plain(a, "churn", id, NULL, NULL);
        for (int k = 0; k < 1000; k++)
            assert_int_equal(keep_plain(a, "churn", id, NULL, NULL), first);
        b = make(&r, 1); /* a fresh sampler: no state, no seed */
        assert_int_equal(keep_plain(b, "churn", id, NULL, NULL), first);
        mw_sampler_destroy(b);
    }
    mw_sampler_destroy(a);
}

/* The hash is a wire contract (a prediction and its label may pass through different agents,
 * of different versions): these values must never change. */
static void test_unit_values_are_pinned(void **state)
{
    (void)state;
    assert_true(mw_sampler_unit("") == mw_sampler_unit(NULL));
    static const struct {
        const char *id;
        double u;
    } golden[] = {
        /* computed by an independent implementation of the documented hash */
        {"", 0x1.ea542bd3536bdp-1},
        {"req-17", 0x1.50af55dc03806p-2},
        {"pred-0", 0x1.c59060b0b78e6p-2},
        {"pred-1", 0x1.c8dea3c1d0190p-1},
        {"7f9c2b4e-1d3a-4c8e-9b6f-0a1b2c3d4e5f", 0x1.1e89b64122737p-1},
        {"\303\274n\303\257code", 0x1.6c8d274fe7260p-5}, /* UTF-8 bytes as they are */
    };
    for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
        double u = mw_sampler_unit(golden[i].id);
        assert_true(u >= 0 && u < 1);
        assert_true(u == golden[i].u);
    }
}

static void test_rate_zero_and_one(void **state)
{
    (void)state;
    struct mw_model_rule rules[] = {rule("none", 0), rule("all", 1)};
    struct mw_sampler *s = make(rules, 2);
    char id[32];
    for (unsigned i = 0; i < 10000; i++) {
        double w;
        enum mw_sample_reason why;
        id_of(id, sizeof id, i);
        assert_false(keep_plain(s, "none", id, &w, &why));
        assert_int_equal(why, MW_SAMPLE_DROPPED_RATE);
        assert_false(mw_sampler_keep_feedback(s, "none", id));
        assert_true(keep_plain(s, "all", id, &w, &why));
        assert_int_equal(why, MW_SAMPLE_KEPT_RATE);
        assert_true(w == 1.0);
        assert_true(mw_sampler_keep_feedback(s, "all", id));
    }
    assert_true(mw_sampler_rate(s, "none") == 0.0);
    assert_true(mw_sampler_rate(s, "all") == 1.0);
    mw_sampler_destroy(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Forced keeps                                                                              */

static void test_errors_and_slow_requests_always_kept_with_weight_one(void **state)
{
    (void)state;
    struct mw_model_rule r = rule("churn", 0);
    r.keep_slower_than_ms = 500;
    struct mw_sampler *s = make(&r, 1);
    char id[32];
    for (unsigned i = 0; i < 1000; i++) {
        double w;
        enum mw_sample_reason why;
        id_of(id, sizeof id, i);
        assert_true(mw_sampler_keep_event(s, "churn", id, true, 10, T0_MS, &w, &why));
        assert_int_equal(why, MW_SAMPLE_KEPT_ERROR);
        assert_true(w == 1.0);
        assert_true(mw_sampler_keep_event(s, "churn", id, false, 500001, T0_MS, &w, &why));
        assert_int_equal(why, MW_SAMPLE_KEPT_SLOW);
        assert_true(w == 1.0);
        /* "slower than": exactly the threshold is not slow */
        assert_false(mw_sampler_keep_event(s, "churn", id, false, 500000, T0_MS, &w, &why));
        assert_int_equal(why, MW_SAMPLE_DROPPED_RATE);
    }
    struct mw_sampler_stats st;
    mw_sampler_stats(s, &st);
    assert_int_equal(st.events[MW_SAMPLE_KEPT_ERROR], 1000);
    assert_int_equal(st.events[MW_SAMPLE_KEPT_SLOW], 1000);
    assert_int_equal(st.events[MW_SAMPLE_DROPPED_RATE], 1000);
    mw_sampler_destroy(s);
}

static void test_errors_follow_the_rate_when_keep_errors_is_off(void **state)
{
    (void)state;
    struct mw_model_rule r = rule("churn", 0);
    r.keep_errors = false;
    struct mw_sampler *s = make(&r, 1);
    enum mw_sample_reason why;
    assert_false(mw_sampler_keep_event(s, "churn", "e1", true, 10, T0_MS, NULL, &why));
    assert_int_equal(why, MW_SAMPLE_DROPPED_RATE);
    mw_sampler_destroy(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Cap                                                                                       */

/* Send n events of "churn" at now_ms; return how many were kept, checking every kept weight. */
static unsigned burst(struct mw_sampler *s, unsigned first_id, unsigned n, uint64_t now_ms,
                      double want_weight)
{
    unsigned kept = 0;
    char id[32];
    for (unsigned i = 0; i < n; i++) {
        double w;
        enum mw_sample_reason why;
        id_of(id, sizeof id, first_id + i);
        if (mw_sampler_keep_event(s, "churn", id, false, 100, now_ms, &w, &why)) {
            kept++;
            assert_true(fabs(w - want_weight) < 1e-9);
        } else {
            assert_int_equal(why, MW_SAMPLE_DROPPED_CAP);
            assert_true(w == 0.0);
        }
    }
    return kept;
}

static void test_cap_enforced_and_next_second_reweighted(void **state)
{
    (void)state;
    struct mw_model_rule r = rule("churn", 1);
    r.max_events_per_second = 100;
    struct mw_sampler *s = make(&r, 1);
    /* 1000 events in one simulated second (clock fixed): the full bucket admits 100. */
    assert_int_equal(burst(s, 0, 1000, T0_MS, 1.0), 100);
    struct mw_sampler_stats st;
    mw_sampler_stats(s, &st);
    assert_int_equal(st.events[MW_SAMPLE_KEPT_RATE], 100);
    assert_int_equal(st.events[MW_SAMPLE_DROPPED_CAP], 900);
    /* Next second: refilled; each kept record stands for 1000/100 of the previous second. */
    assert_int_equal(burst(s, 1000, 1000, T0_MS + 1000, 10.0), 100);
    /* A calm second after the overload still carries the overload's ratio (the stated bias). */
    assert_int_equal(burst(s, 2000, 50, T0_MS + 2000, 10.0), 50);
    /* ...and the one after it is back to 1:1. */
    assert_int_equal(burst(s, 3000, 50, T0_MS + 3000, 1.0), 50);
    /* After a gap of several seconds the ratio starts over at 1. */
    assert_int_equal(burst(s, 4000, 500, T0_MS + 10000, 1.0), 100);
    assert_int_equal(burst(s, 5000, 10, T0_MS + 20000, 1.0), 10);
    mw_sampler_destroy(s);
}

static void test_cap_scales_the_rate_weight_and_refills_continuously(void **state)
{
    (void)state;
    struct mw_model_rule r = rule("churn", 1);
    r.max_events_per_second = 10;
    struct mw_sampler *s = make(&r, 1);
    assert_int_equal(burst(s, 0, 40, T0_MS, 1.0), 10);
    /* 500 ms later half a second of tokens is back, same period. */
    assert_int_equal(burst(s, 100, 40, T0_MS + 500, 1.0), 5);
    /* Next period: ratio 80 eligible / 15 admitted. */
    assert_int_equal(burst(s, 200, 40, T0_MS + 1000, 80.0 / 15.0), 5);
    mw_sampler_destroy(s);
}

static void test_cap_applies_to_forced_keeps_but_not_to_feedback(void **state)
{
    (void)state;
    struct mw_model_rule r = rule("churn", 1);
    r.max_events_per_second = 5;
    struct mw_sampler *s = make(&r, 1);
    unsigned kept = 0;
    for (unsigned i = 0; i < 20; i++)
        kept += mw_sampler_keep_event(s, "churn", "x", true, 1, T0_MS, NULL, NULL);
    assert_int_equal(kept, 5);
    for (unsigned i = 0; i < 20; i++)
        assert_true(mw_sampler_keep_feedback(s, "churn", "x"));
    struct mw_sampler_stats st;
    mw_sampler_stats(s, &st);
    assert_int_equal(st.events[MW_SAMPLE_KEPT_ERROR], 5);
    assert_int_equal(st.events[MW_SAMPLE_DROPPED_CAP], 15);
    assert_int_equal(st.feedback_kept, 20);
    mw_sampler_destroy(s);
}

static void test_reload_keeps_counters_and_cap_state(void **state)
{
    (void)state;
    struct mw_model_rule r = rule("churn", 1);
    r.max_events_per_second = 100;
    struct mw_sampler *old = make(&r, 1), *s = NULL;
    assert_int_equal(burst(old, 0, 1000, T0_MS, 1.0), 100);
    assert_int_equal(mw_sampler_create(&r, 1, old, &s, NULL, 0), 0);
    mw_sampler_destroy(old);
    /* Same second: the bucket is still empty in the new sampler. */
    assert_int_equal(burst(s, 1000, 10, T0_MS + 1, 1.0), 0);
    assert_int_equal(burst(s, 2000, 1000, T0_MS + 1000, 1010.0 / 100.0), 100);
    struct mw_sampler_stats st;
    mw_sampler_stats(s, &st);
    assert_int_equal(st.events[MW_SAMPLE_KEPT_RATE], 200);
    assert_int_equal(st.events[MW_SAMPLE_DROPPED_CAP], 1810);
    mw_sampler_destroy(s);
}

/* Send n ok events of `model` at now_ms; return how many were kept. */
static unsigned burst_of(struct mw_sampler *s, const char *model, unsigned n, uint64_t now_ms)
{
    unsigned kept = 0;
    char id[32];
    for (unsigned i = 0; i < n; i++)
        kept +=
            mw_sampler_keep_event(s, model, id_of(id, sizeof id, i), false, 1, now_ms, NULL, NULL);
    return kept;
}

static void test_default_rule_cap_is_per_model(void **state)
{
    (void)state;
    struct mw_model_rule rules[] = {rule("*", 1), rule("churn", 1)};
    rules[0].max_events_per_second = 10;
    rules[1].max_events_per_second = 3;
    struct mw_sampler *s = make(rules, 2), *next = NULL;
    assert_int_equal(burst_of(s, "ranker", 50, T0_MS), 10);
    assert_int_equal(burst_of(s, "fraud", 50, T0_MS), 10); /* not starved by ranker */
    assert_int_equal(burst_of(s, "churn", 50, T0_MS), 3);
    assert_int_equal(burst_of(s, NULL, 50, T0_MS), 10); /* no name: the shared overflow bucket */
    /* 300 more models: the first 256 under "*" get a bucket each, the rest share one. */
    char model[32];
    unsigned kept = 0;
    for (unsigned m = 0; m < 300; m++) {
        snprintf(model, sizeof model, "model-%u", m);
        kept += burst_of(s, model, 1, T0_MS);
    }
    assert_int_equal(kept, 254 /* free slots left */ + 0 /* overflow already empty */);
    /* A reload keeps each model's bucket: still empty within the same second. */
    assert_int_equal(mw_sampler_create(rules, 2, s, &next, NULL, 0), 0);
    mw_sampler_destroy(s);
    assert_int_equal(burst_of(next, "ranker", 5, T0_MS + 1), 0);
    assert_int_equal(burst_of(next, "churn", 5, T0_MS + 1), 0);
    assert_int_equal(burst_of(next, "ranker", 50, T0_MS + 1000), 10);
    mw_sampler_destroy(next);
}

/* ---------------------------------------------------------------------------------------- */
/* Rules                                                                                     */

static void test_fallback_to_default_rule(void **state)
{
    (void)state;
    struct mw_model_rule rules[] = {rule("churn", 1), rule("*", 0), rule("fraud.v2", 0.25)};
    struct mw_sampler *s = make(rules, 3);
    double w;
    enum mw_sample_reason why;
    assert_true(keep_plain(s, "churn", "a", &w, &why));
    assert_false(keep_plain(s, "ranker", "a", &w, &why));
    assert_int_equal(why, MW_SAMPLE_DROPPED_RATE);
    assert_false(keep_plain(s, NULL, "a", &w, &why));
    assert_true(mw_sampler_rate(s, "fraud.v2") == 0.25);
    assert_true(mw_sampler_rate(s, "fraud") == 0.0);
    assert_true(mw_sampler_rate(s, "") == 0.0);
    mw_sampler_destroy(s);
}

static void test_no_rule_keeps_everything_with_weight_one(void **state)
{
    (void)state;
    struct mw_sampler *none = make(NULL, 0);
    struct mw_model_rule r = rule("churn", 0);
    struct mw_sampler *other = make(&r, 1); /* a rule, but not for this model and no "*" */
    char id[32];
    for (unsigned i = 0; i < 1000; i++) {
        double w = 0;
        enum mw_sample_reason why;
        id_of(id, sizeof id, i);
        assert_true(mw_sampler_keep_event(none, "ranker", id, i % 2, i, T0_MS, &w, &why));
        assert_int_equal(why, MW_SAMPLE_KEPT_RATE);
        assert_true(w == 1.0);
        assert_true(keep_plain(other, "ranker", id, &w, &why));
        assert_true(w == 1.0);
        assert_true(mw_sampler_keep_feedback(none, "ranker", id));
    }
    mw_sampler_destroy(none);
    mw_sampler_destroy(other);
}

static void test_feedback_decision_equals_event_rate_decision(void **state)
{
    (void)state;
    struct mw_model_rule rules[] = {rule("churn", 0.3), rule("*", 0.05)};
    struct mw_sampler *s = make(rules, 2);
    char id[32];
    unsigned kept = 0;
    for (unsigned i = 0; i < 10000; i++) {
        id_of(id, sizeof id, i);
        bool ev = keep_plain(s, "churn", id, NULL, NULL);
        kept += ev;
        assert_int_equal(mw_sampler_keep_feedback(s, "churn", id), ev);
        assert_int_equal(mw_sampler_keep_feedback(s, "other", id),
                         keep_plain(s, "other", id, NULL, NULL));
    }
    assert_true(kept > 2500 && kept < 3500);
    mw_sampler_destroy(s);
}

static void test_create_rejects_bad_rules_with_message(void **state)
{
    (void)state;
    struct mw_model_rule rules[] = {rule("churn", 1), rule("*", 1), rule("churn", 0.5)};
    struct mw_sampler *s = NULL;
    char err[256];
    assert_int_equal(mw_sampler_create(rules, 3, NULL, &s, err, sizeof err), MW_ECONFIG);
    assert_null(s);
    assert_string_equal(err, "models[2].name: duplicate rule for \"churn\"");
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(mw_sample_reason_name(MW_SAMPLE_KEPT_RATE), "kept_rate");
    assert_string_equal(mw_sample_reason_name(MW_SAMPLE_KEPT_ERROR), "kept_error");
    assert_string_equal(mw_sample_reason_name(MW_SAMPLE_KEPT_SLOW), "kept_slow");
    assert_string_equal(mw_sample_reason_name(MW_SAMPLE_DROPPED_RATE), "dropped_rate");
    assert_string_equal(mw_sample_reason_name(MW_SAMPLE_DROPPED_CAP), "dropped_cap");
    assert_string_equal(mw_sample_reason_name(MW_SAMPLE_REASON_COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_fraction_within_five_sd),
        cmocka_unit_test(test_same_id_same_decision_across_calls_and_samplers),
        cmocka_unit_test(test_unit_values_are_pinned),
        cmocka_unit_test(test_rate_zero_and_one),
        cmocka_unit_test(test_errors_and_slow_requests_always_kept_with_weight_one),
        cmocka_unit_test(test_errors_follow_the_rate_when_keep_errors_is_off),
        cmocka_unit_test(test_cap_enforced_and_next_second_reweighted),
        cmocka_unit_test(test_cap_scales_the_rate_weight_and_refills_continuously),
        cmocka_unit_test(test_cap_applies_to_forced_keeps_but_not_to_feedback),
        cmocka_unit_test(test_reload_keeps_counters_and_cap_state),
        cmocka_unit_test(test_default_rule_cap_is_per_model),
        cmocka_unit_test(test_fallback_to_default_rule),
        cmocka_unit_test(test_no_rule_keeps_everything_with_weight_one),
        cmocka_unit_test(test_feedback_decision_equals_event_rate_decision),
        cmocka_unit_test(test_create_rejects_bad_rules_with_message),
        cmocka_unit_test(test_reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
