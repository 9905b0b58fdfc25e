/* test_rule_state.c — the alert state machine against hand-worked sequences of windows: `for`
 * in event time, unknown values, hysteresis, keep_firing_for, min_samples, flapping, absence on
 * the wall clock, replayed windows. Each step lists the window, its value and what must come
 * out: the state, and whether a page or a resolve is due. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alert/rule_state.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MIN 60000LL
#define NOV NAN /* no value in the window */

enum { I = MW_ALERT_INACTIVE, P = MW_ALERT_PENDING, F = MW_ALERT_FIRING, R = MW_ALERT_RESOLVED };

/* One window [start_min, end_min) in minutes of event time and what the step must give. */
struct step {
    int64_t start_min, end_min;
    double value; /* NOV: no value */
    uint64_t samples;
    int state;
    bool page, resolve;
};

static struct mw_rule_cond cond_gt(double threshold, int64_t for_min)
{
    return (struct mw_rule_cond){.cmp = MW_CMP_GT,
                                 .threshold = threshold,
                                 .resolve_threshold = threshold,
                                 .for_ms = for_min * MIN,
                                 .flap_max_changes = 4,
                                 .flap_period_ms = 60 * MIN};
}

/* Step through `steps`, checking each; returns pages and resolves seen. */
static void run(const struct mw_rule_cond *cond, struct mw_rule_state *st, const struct step *steps,
                size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        const struct step *s = &steps[i];
        struct mw_rule_sample sample = {.start_ms = s->start_min * MIN,
                                        .end_ms = s->end_min * MIN,
                                        .kind =
                                            isnan(s->value) ? MW_SAMPLE_NO_VALUE : MW_SAMPLE_VALUE,
                                        .value = s->value,
                                        .samples = s->samples};
        struct mw_rule_step out;
        mw_rule_state_step(cond, st, &sample, &out);
        if ((int)out.to != s->state || out.page != s->page || out.resolve != s->resolve ||
            st->state != out.to) {
            print_error("%s, step %zu (window ending at minute %lld, value %g): got %s page=%d "
                        "resolve=%d, expected %s page=%d resolve=%d\n",
                        what, i, (long long)s->end_min, s->value, mw_alert_state_name(out.to),
                        out.page, out.resolve, mw_alert_state_name((enum mw_alert_state)s->state),
                        s->page, s->resolve);
            fail();
        }
    }
}

#define RUN(cond, st, steps) run(cond, st, steps, sizeof steps / sizeof steps[0], __func__)

static void test_for_counts_event_time_from_the_first_breaching_window(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 3);
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 1, 0.01, 100, I, 0, 0}, {1, 2, 0.10, 100, P, 0, 0}, /* 1 minute of breach */
        {2, 3, 0.10, 100, P, 0, 0},                             /* 2 */
        {3, 4, 0.20, 100, F, 1, 0},                             /* 3 minutes: fires */
        {4, 5, 0.20, 100, F, 0, 0},                             /* no second page */
        {5, 6, 0.05, 100, R, 0, 1},                             /* 0.05 is not > 0.05 */
        {6, 7, 0.01, 100, I, 0, 0},                             /* resolved lasts one step */
    };
    RUN(&c, &st, steps);
    assert_int_equal(st.fired_at_ms, 4 * MIN);
    assert_int_equal(st.resolved_at_ms, 6 * MIN);
}

/* With hour windows, `for: 2h` is two breaching windows, not 120. */
static void test_for_with_coarse_windows(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 120);
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 60, 0.10, 100, P, 0, 0},
        {60, 120, 0.10, 100, F, 1, 0},
    };
    RUN(&c, &st, steps);
}

static void test_for_zero_fires_on_the_first_breach(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 0);
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 1, 0.01, 100, I, 0, 0},
        {1, 2, 0.06, 100, F, 1, 0},
        {2, 3, 0.01, 100, R, 0, 1},
        {3, 4, 0.07, 100, F, 1, 0}, /* straight from resolved: a new incident */
    };
    RUN(&c, &st, steps);
}

/* A clear window, no value, or too few samples breaks `for`: it starts again. */
static void test_pending_needs_unbroken_breach(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 2);
    c.min_samples = 50;
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 1, 0.10, 100, P, 0, 0}, {1, 2, 0.01, 100, I, 0, 0}, /* clear */
        {2, 3, 0.10, 100, P, 0, 0}, {3, 4, NOV, 0, I, 0, 0},    /* no value */
        {4, 5, 0.10, 100, P, 0, 0}, {5, 6, 0.90, 49, I, 0, 0},  /* too few samples */
        {6, 7, 0.10, 100, P, 0, 0}, {7, 8, 0.10, 50, F, 1, 0},  /* 50 is enough */
    };
    RUN(&c, &st, steps);
    assert_int_equal(st.active_since_ms, 6 * MIN);
}

/* min_samples: never fires on fewer values, however bad they look, and for however long. */
static void test_min_samples_never_fires_on_fewer(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.2, 0);
    c.min_samples = 500;
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    for (int64_t m = 0; m < 1000; m++) {
        struct mw_rule_sample s = {m * MIN, (m + 1) * MIN, MW_SAMPLE_VALUE, 10.0, 499};
        struct mw_rule_step out;
        mw_rule_state_step(&c, &st, &s, &out);
        assert_int_equal(out.to, MW_ALERT_INACTIVE);
        assert_false(out.page);
    }
    /* The last value is still there for the API, with its sample count. */
    assert_true(st.has_value);
    assert_int_equal(st.samples, 499);
}

/* A firing alert with no evidence of recovery stays firing. */
static void test_firing_holds_on_unknown(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 0);
    c.min_samples = 10;
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 1, 0.10, 100, F, 1, 0}, {1, 2, NOV, 0, F, 0, 0},  {2, 3, 0.0, 3, F, 0, 0},
        {3, 4, NOV, 0, F, 0, 0},    {4, 5, 0.0, 10, R, 0, 1},
    };
    RUN(&c, &st, steps);
}

static void test_hysteresis_above(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 0);
    c.resolve_threshold = 0.03;
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 1, 0.04, 100, I, 0, 0},  /* between the two: nothing starts */
        {1, 2, 0.06, 100, F, 1, 0},  /* fires */
        {2, 3, 0.04, 100, F, 0, 0},  /* below threshold, above resolve: holds */
        {3, 4, 0.031, 100, F, 0, 0}, /* still above 0.03 */
        {4, 5, 0.03, 100, R, 0, 1},  /* 0.03 is not > 0.03: resolves */
        {5, 6, 0.04, 100, I, 0, 0},  /* back between: does not re-fire */
        {6, 7, 0.051, 100, F, 1, 0},
    };
    RUN(&c, &st, steps);
}

static void test_hysteresis_below(void **state)
{
    (void)state;
    struct mw_rule_cond c = {.cmp = MW_CMP_LT,
                             .threshold = 0.99,
                             .resolve_threshold = 0.995,
                             .for_ms = 2 * MIN,
                             .flap_max_changes = 4,
                             .flap_period_ms = 60 * MIN};
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 1, 0.98, 100, P, 0, 0},   {1, 2, 0.985, 100, F, 1, 0},
        {2, 3, 0.992, 100, F, 0, 0}, /* above 0.99 but below 0.995 */
        {3, 4, 0.9949, 100, F, 0, 0}, {4, 5, 0.995, 100, R, 0, 1},
    };
    RUN(&c, &st, steps);
}

static void test_keep_firing_for(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 0);
    c.keep_firing_for_ms = 3 * MIN;
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 1, 0.10, 100, F, 1, 0}, /* last holding window ends at 1 */
        {1, 2, 0.01, 100, F, 0, 0}, /* 1 minute after it */
        {2, 3, 0.01, 100, F, 0, 0}, /* 2 */
        {3, 4, 0.10, 100, F, 0, 0}, /* bad again: the clock starts over at 4 */
        {4, 5, 0.01, 100, F, 0, 0}, /* 1 */
        {5, 6, NOV, 0, F, 0, 0},    /* unknown: neither */
        {6, 7, 0.01, 100, R, 0, 1}, /* 3 minutes after 4 */
        {7, 8, 0.01, 100, I, 0, 0},
    };
    RUN(&c, &st, steps);
}

/* Alternating every minute with flap_max_changes 4 in an hour: fire, resolve, fire, resolve
 * (4 changes), fire (5, a page: the hold comes at the next resolve), then the resolve that
 * would make 6 is held; the alert stays firing through more flapping and pages no more; it
 * resolves after a whole quiet hour. */
static void test_flapping_holds_firing(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 0);
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 1, 0.1, 100, F, 1, 0}, {1, 2, 0.0, 100, R, 0, 1},
        {2, 3, 0.1, 100, F, 1, 0}, {3, 4, 0.0, 100, R, 0, 1},
        {4, 5, 0.1, 100, F, 1, 0}, {5, 6, 0.0, 100, F, 0, 0}, /* held */
        {6, 7, 0.1, 100, F, 0, 0}, {7, 8, 0.0, 100, F, 0, 0},
        {8, 9, 0.1, 100, F, 0, 0}, /* last bad */
    };
    RUN(&c, &st, steps);
    assert_true(st.flapping);
    int pages = 0, resolves = 0;
    struct mw_rule_step out;
    for (int64_t m = 9; m < 68; m++) { /* clear, but not yet a whole hour after minute 9 */
        struct mw_rule_sample s = {m * MIN, (m + 1) * MIN, MW_SAMPLE_VALUE, 0.0, 100};
        mw_rule_state_step(&c, &st, &s, &out);
        pages += out.page;
        resolves += out.resolve;
        assert_int_equal(out.to, MW_ALERT_FIRING);
    }
    assert_int_equal(pages + resolves, 0);
    struct mw_rule_sample last = {68 * MIN, 69 * MIN, MW_SAMPLE_VALUE, 0.0, 100};
    mw_rule_state_step(&c, &st, &last, &out);
    assert_int_equal(out.to, MW_ALERT_RESOLVED);
    assert_true(out.resolve);
    assert_false(st.flapping);
    /* Counting starts afresh: the next incident pages and resolves normally. */
    const struct step after[] = {
        {69, 70, 0.0, 100, I, 0, 0},
        {70, 71, 0.1, 100, F, 1, 0},
        {71, 72, 0.0, 100, R, 0, 1},
    };
    RUN(&c, &st, after);
}

/* Changes spread wider than the period never count as flapping. */
static void test_slow_changes_are_not_flapping(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 0);
    c.flap_max_changes = 2;
    c.flap_period_ms = 10 * MIN;
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    int pages = 0, resolves = 0;
    for (int64_t m = 0; m < 200; m++) {
        /* bad for 6 minutes, good for 6: 2 changes per 12 minutes */
        double v = (m / 6) % 2 == 0 ? 0.1 : 0.0;
        struct mw_rule_sample s = {m * MIN, (m + 1) * MIN, MW_SAMPLE_VALUE, v, 100};
        struct mw_rule_step out;
        mw_rule_state_step(&c, &st, &s, &out);
        pages += out.page;
        resolves += out.resolve;
        assert_false(st.flapping);
    }
    assert_int_equal(pages, 17);
    assert_int_equal(resolves, 17);
}

/* A window that ends no later than the last one is a replay: nothing changes. */
static void test_replayed_windows_change_nothing(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.05, 2);
    struct mw_rule_state st, before;
    mw_rule_state_init(&st);
    const struct step steps[] = {{0, 1, 0.1, 100, P, 0, 0}, {1, 2, 0.1, 100, F, 1, 0}};
    RUN(&c, &st, steps);
    before = st;
    struct mw_rule_step out;
    struct mw_rule_sample again = {1 * MIN, 2 * MIN, MW_SAMPLE_VALUE, 0.0, 100};
    mw_rule_state_step(&c, &st, &again, &out);
    assert_true(out.ignored);
    assert_false(out.page || out.resolve);
    struct mw_rule_sample older = {0, 1 * MIN, MW_SAMPLE_VALUE, 0.0, 100};
    mw_rule_state_step(&c, &st, &older, &out);
    assert_true(out.ignored);
    assert_memory_equal(&st, &before, sizeof st);
}

/* The same windows give the same states, whether they arrive live or in a fast replay: the
 * machine reads no clock. */
static void test_replay_equals_live(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(0.3, 5);
    c.resolve_threshold = 0.2;
    c.keep_firing_for_ms = 2 * MIN;
    struct mw_rule_state live, replay;
    mw_rule_state_init(&live);
    mw_rule_state_init(&replay);
    uint32_t x = 12345;
    for (int64_t m = 0; m < 1440; m++) {
        x = x * 1103515245u + 12345u;
        double v = (double)(x >> 16 & 0x3ff) / 1024.0;
        struct mw_rule_sample s = {m * MIN, (m + 1) * MIN, MW_SAMPLE_VALUE, v, 100};
        struct mw_rule_step a, b;
        mw_rule_state_step(&c, &live, &s, &a);
        mw_rule_state_step(&c, &replay, &s, &b);
        assert_true(a.from == b.from && a.to == b.to && a.page == b.page &&
                    a.resolve == b.resolve && a.ignored == b.ignored);
    }
    assert_memory_equal(&live, &replay, sizeof live);
}

static void test_equality_comparisons(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(2, 0);
    c.cmp = MW_CMP_GE; /* drift_verdict >= drift (2) */
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 60, 1, 1000, I, 0, 0},
        {60, 120, 2, 1000, F, 1, 0},
        {120, 180, 2, 1000, F, 0, 0},
        {180, 240, 0, 1000, R, 0, 1},
    };
    RUN(&c, &st, steps);
    assert_true(mw_cmp_holds(MW_CMP_EQ, 2, 2));
    assert_false(mw_cmp_holds(MW_CMP_NE, 2, 2));
    assert_true(mw_cmp_holds(MW_CMP_LE, 2, 2));
    assert_false(mw_cmp_holds(MW_CMP_LT, 2, 2));
    assert_string_equal(mw_cmp_name(MW_CMP_GE), ">=");
    assert_string_equal(mw_alert_state_name(MW_ALERT_PENDING), "pending");
}

/* What the alert is about went away: a firing alert clears (after keep_firing_for), a pending
 * one goes back to inactive, and an unknown value would have held both. */
static void test_gone(void **state)
{
    (void)state;
    struct mw_rule_cond c = cond_gt(10, 0);
    c.keep_firing_for_ms = 2 * MIN;
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    struct mw_rule_step out;
    struct mw_rule_sample s = {.start_ms = 0, .end_ms = MIN, .kind = MW_SAMPLE_VALUE,
                               .value = 50, .samples = 1};
    mw_rule_state_step(&c, &st, &s, &out);
    assert_true(out.page);
    s = (struct mw_rule_sample){.start_ms = MIN, .end_ms = 2 * MIN, .kind = MW_SAMPLE_NO_VALUE};
    mw_rule_state_step(&c, &st, &s, &out);
    assert_int_equal(out.to, MW_ALERT_FIRING); /* no value: no evidence */
    s = (struct mw_rule_sample){.start_ms = 2 * MIN, .end_ms = 2 * MIN, .kind = MW_SAMPLE_GONE};
    mw_rule_state_step(&c, &st, &s, &out);
    assert_int_equal(out.to, MW_ALERT_FIRING); /* within keep_firing_for of the last hold */
    s = (struct mw_rule_sample){.start_ms = 3 * MIN, .end_ms = 3 * MIN, .kind = MW_SAMPLE_GONE};
    mw_rule_state_step(&c, &st, &s, &out);
    assert_int_equal(out.to, MW_ALERT_RESOLVED);
    assert_true(out.resolve);
    assert_false(st.has_value);
    struct mw_rule_cond slow = cond_gt(10, 5);
    mw_rule_state_init(&st);
    s = (struct mw_rule_sample){.start_ms = 0, .end_ms = MIN, .kind = MW_SAMPLE_VALUE,
                                .value = 50, .samples = 1};
    mw_rule_state_step(&slow, &st, &s, &out);
    assert_int_equal(out.to, MW_ALERT_PENDING);
    s = (struct mw_rule_sample){.start_ms = MIN, .end_ms = 2 * MIN, .kind = MW_SAMPLE_GONE};
    mw_rule_state_step(&slow, &st, &s, &out);
    assert_int_equal(out.to, MW_ALERT_INACTIVE);
}

/* Absence on the wall clock: value = seconds since data, `for` in wall time. */
static void test_absence(void **state)
{
    (void)state;
    const int64_t S = 1000, t0 = 1700000000000LL;
    struct mw_rule_cond c = {.cmp = MW_CMP_GT,
                             .threshold = 600,
                             .resolve_threshold = 600,
                             .for_ms = 120 * S,
                             .flap_max_changes = 4,
                             .flap_period_ms = 3600 * S};
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    struct mw_rule_step out;
    mw_rule_state_step_absence(&c, &st, 0, t0, &out); /* never seen: no value */
    assert_int_equal(out.to, MW_ALERT_INACTIVE);
    assert_false(st.has_value);
    int64_t seen = t0 + 10 * S;
    mw_rule_state_step_absence(&c, &st, seen, seen + 500 * S, &out);
    assert_int_equal(out.to, MW_ALERT_INACTIVE);
    assert_true(st.value == 500);
    mw_rule_state_step_absence(&c, &st, seen, seen + 660 * S, &out);
    assert_int_equal(out.to, MW_ALERT_PENDING);
    mw_rule_state_step_absence(&c, &st, seen, seen + 720 * S, &out);
    assert_int_equal(out.to, MW_ALERT_PENDING);
    mw_rule_state_step_absence(&c, &st, seen, seen + 780 * S, &out); /* 2 minutes pending */
    assert_int_equal(out.to, MW_ALERT_FIRING);
    assert_true(out.page);
    assert_true(st.value == 780);
    mw_rule_state_step_absence(&c, &st, seen, seen + 840 * S, &out);
    assert_int_equal(out.to, MW_ALERT_FIRING);
    assert_false(out.page);
    int64_t back = seen + 850 * S; /* data again */
    mw_rule_state_step_absence(&c, &st, back, back + 30 * S, &out);
    assert_int_equal(out.to, MW_ALERT_RESOLVED);
    assert_true(out.resolve);
    /* A wall clock that steps back is ignored, like a replayed window. */
    mw_rule_state_step_absence(&c, &st, back, back, &out);
    assert_true(out.ignored);
}

static void test_burn_value(void **state)
{
    (void)state;
    assert_true(mw_rule_burn_value(20, 15) == 15);
    assert_true(mw_rule_burn_value(3, 15) == 3);
    assert_true(isnan(mw_rule_burn_value(NAN, 15)));
    assert_true(isnan(mw_rule_burn_value(3, NAN)));
    /* Both over 14.4 exactly when the smaller is. */
    struct mw_rule_cond c = cond_gt(14.4, 0);
    struct mw_rule_state st;
    mw_rule_state_init(&st);
    const struct step steps[] = {
        {0, 5, 0, 100, I, 0, 0},
        {5, 10, 0, 100, F, 1, 0},
        {10, 15, 0, 100, R, 0, 1},
    };
    struct step s[3];
    memcpy(s, steps, sizeof s);
    s[0].value = mw_rule_burn_value(20, 10); /* short window recovered: no page */
    s[1].value = mw_rule_burn_value(15, 30);
    s[2].value = mw_rule_burn_value(30, 2);
    RUN(&c, &st, s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_for_counts_event_time_from_the_first_breaching_window),
        cmocka_unit_test(test_for_with_coarse_windows),
        cmocka_unit_test(test_for_zero_fires_on_the_first_breach),
        cmocka_unit_test(test_pending_needs_unbroken_breach),
        cmocka_unit_test(test_min_samples_never_fires_on_fewer),
        cmocka_unit_test(test_firing_holds_on_unknown),
        cmocka_unit_test(test_hysteresis_above),
        cmocka_unit_test(test_hysteresis_below),
        cmocka_unit_test(test_keep_firing_for),
        cmocka_unit_test(test_flapping_holds_firing),
        cmocka_unit_test(test_slow_changes_are_not_flapping),
        cmocka_unit_test(test_replayed_windows_change_nothing),
        cmocka_unit_test(test_replay_equals_live),
        cmocka_unit_test(test_equality_comparisons),
        cmocka_unit_test(test_absence),
        cmocka_unit_test(test_gone),
        cmocka_unit_test(test_burn_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
