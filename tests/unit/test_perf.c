/*
 * test_perf.c — edge cases of the performance accumulators (aggregator/perf_metrics.h) that the
 * sklearn oracle (tests/oracle/test_perf_oracle.py) cannot reach through JSON: NaN and
 * infinite inputs, argument checks, allocation failures, malformed Redis fields, the "other"
 * class slot, extreme timestamps, and small examples worked out by hand.
 */
#include "perf_metrics.h"

#include "alloc.h"
#include "error.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- helpers --------------------------------------------------------------------------- */

static long alloc_budget = -1; /* allocations left before failing; -1: unlimited */
static long alloc_live;        /* allocations not yet freed */

static int alloc_allowed(void)
{
    if (alloc_budget < 0)
        return 1;
    if (alloc_budget == 0)
        return 0;
    alloc_budget--;
    return 1;
}

static void *counting_malloc(size_t size)
{
    void *p = alloc_allowed() ? malloc(size) : NULL;
    alloc_live += p != NULL;
    return p;
}

static void *counting_calloc(size_t n, size_t size)
{
    void *p = alloc_allowed() ? calloc(n, size) : NULL;
    alloc_live += p != NULL;
    return p;
}

static void *counting_realloc(void *p, size_t size)
{
    return alloc_allowed() ? realloc(p, size) : NULL;
}

static void counting_free(void *p)
{
    alloc_live -= p != NULL;
    free(p);
}

/* Fields collected by a *_fields callback, as Redis would hold them. */
struct field_set {
    size_t n;
    char names[2600][MW_PERF_FIELD_NAME_MAX];
    char values[2600][40];
    int stop_after; /* return MW_EFULL after this many fields; 0: never */
};

static int collect(void *ctx, const struct mw_perf_field *f)
{
    struct field_set *fs = ctx;
    if (fs->stop_after && fs->n == (size_t)fs->stop_after)
        return MW_EFULL;
    assert_true(fs->n < sizeof fs->names / sizeof fs->names[0]);
    assert_true(strlen(f->name) < MW_PERF_FIELD_NAME_MAX);
    snprintf(fs->names[fs->n], sizeof fs->names[0], "%s", f->name);
    if (f->is_float)
        snprintf(fs->values[fs->n], sizeof fs->values[0], "%.17g", f->sum);
    else
        snprintf(fs->values[fs->n], sizeof fs->values[0], "%lld", (long long)f->count);
    fs->n++;
    return 0;
}

static const char *field_value(const struct field_set *fs, const char *name)
{
    for (size_t i = 0; i < fs->n; i++)
        if (strcmp(fs->names[i], name) == 0)
            return fs->values[i];
    return NULL;
}

static struct field_set *new_field_set(void)
{
    struct field_set *fs = calloc(1, sizeof *fs);
    assert_non_null(fs);
    return fs;
}

static struct mw_perf_binary *new_binary(double threshold, uint32_t n_bins)
{
    struct mw_perf_binary *acc = NULL;
    assert_int_equal(mw_perf_binary_create(threshold, n_bins, &acc), 0);
    assert_non_null(acc);
    return acc;
}

#define assert_double_exact(a, b) assert_true((a) == (b))

/* ---- compensated sums ------------------------------------------------------------------ */

static void test_sum_keeps_low_bits(void **state)
{
    (void)state;
    /* 1 is lost entirely by naive summation of 1e16 + 1 - 1e16. */
    struct mw_perf_regression acc;
    mw_perf_regression_reset(&acc);
    assert_int_equal(mw_perf_regression_add(&acc, 1e16, 0.0), 0);
    assert_int_equal(mw_perf_regression_add(&acc, 1.0, 0.0), 0);
    assert_int_equal(mw_perf_regression_add(&acc, -1e16, 0.0), 0);
    assert_double_exact(mw_perf_sum_value(&acc.err_sum), 1.0);
}

/* ---- binary ---------------------------------------------------------------------------- */

static void test_binary_create_rejects_arguments(void **state)
{
    (void)state;
    struct mw_perf_binary *acc = (void *)1;
    assert_int_equal(mw_perf_binary_create(-0.01, 10, &acc), MW_EINVAL);
    assert_null(acc);
    assert_int_equal(mw_perf_binary_create(1.01, 10, &acc), MW_EINVAL);
    assert_int_equal(mw_perf_binary_create(NAN, 10, &acc), MW_EINVAL);
    assert_int_equal(mw_perf_binary_create(0.5, 0, &acc), MW_EINVAL);
    assert_int_equal(mw_perf_binary_create(0.5, MW_PERF_AUC_BINS_MAX + 1, &acc), MW_EINVAL);
    assert_null(acc);
    mw_perf_binary_destroy(NULL);
    acc = new_binary(0.0, 1);
    mw_perf_binary_destroy(acc);
    acc = new_binary(1.0, MW_PERF_AUC_BINS_MAX);
    mw_perf_binary_destroy(acc);
}

/* Each of create's three allocations fails in turn: MW_ENOMEM and nothing leaks. */
static void test_binary_create_allocation_failures(void **state)
{
    (void)state;
    for (long budget = 0; budget <= 3; budget++) {
        struct mw_perf_binary *acc = NULL;
        alloc_live = 0;
        alloc_budget = budget;
        mw_replace_allocator(counting_malloc, counting_calloc, counting_realloc, counting_free);
        int rc = mw_perf_binary_create(0.5, 100, &acc);
        alloc_budget = -1;
        if (budget < 3) {
            assert_int_equal(rc, MW_ENOMEM);
            assert_null(acc);
        } else {
            assert_int_equal(rc, 0);
            mw_perf_binary_destroy(acc);
        }
        mw_replace_allocator(NULL, NULL, NULL, NULL);
        assert_int_equal(alloc_live, 0);
    }
}

static void test_score_bin_edges(void **state)
{
    (void)state;
    /* 0.29 * 100 rounds to 28.999999999999996, yet 0.29 is the edge of bin 29. */
    assert_true(floor(0.29 * 100) == 28.0);
    assert_int_equal(mw_perf_score_bin(0.29, 100), 29);
    assert_int_equal(mw_perf_score_bin(nextafter(0.29, 0.0), 100), 28);
    for (uint32_t k = 0; k < 1000; k++) {
        double edge = (double)k / 1000.0;
        assert_int_equal(mw_perf_score_bin(edge, 1000), k);
        if (k > 0)
            assert_int_equal(mw_perf_score_bin(nextafter(edge, 0.0), 1000), k - 1);
    }
    assert_int_equal(mw_perf_score_bin(0.0, 1000), 0);
    assert_int_equal(mw_perf_score_bin(-0.0, 1000), 0);
    assert_int_equal(mw_perf_score_bin(DBL_TRUE_MIN, 1000), 0);
    assert_int_equal(mw_perf_score_bin(1.0, 1000), 999);
    assert_int_equal(mw_perf_score_bin(nextafter(1.0, 0.0), 1000), 999);
    assert_int_equal(mw_perf_score_bin(0.5, 1), 0);
    assert_int_equal(mw_perf_score_bin(1.0, 1), 0);
    assert_int_equal(mw_perf_score_bin(1.0 / 3.0, 3), 1);
    assert_int_equal(mw_perf_score_bin(2.0 / 3.0, 3), 2);
    assert_int_equal(mw_perf_score_bin(nextafter(2.0 / 3.0, 0.0), 3), 1);
}

static void test_binary_rejects_invalid_pairs(void **state)
{
    (void)state;
    struct mw_perf_binary *acc = new_binary(0.5, 10);
    assert_int_equal(mw_perf_binary_add(acc, NAN, 1), MW_EINVAL);
    assert_int_equal(mw_perf_binary_add(acc, INFINITY, 1), MW_EINVAL);
    assert_int_equal(mw_perf_binary_add(acc, -DBL_TRUE_MIN, 0), MW_EINVAL);
    assert_int_equal(mw_perf_binary_add(acc, nextafter(1.0, 2.0), 0), MW_EINVAL);
    assert_int_equal(mw_perf_binary_add(acc, 0.5, 2), MW_EINVAL);
    assert_int_equal(mw_perf_binary_add(acc, 0.5, -1), MW_EINVAL);
    struct field_set *fs = new_field_set();
    assert_int_equal(mw_perf_binary_fields(acc, collect, fs), 0);
    assert_int_equal(fs->n, 0);                            /* nothing was counted */
    assert_int_equal(mw_perf_binary_add(acc, -0.0, 0), 0); /* -0 is 0 */
    assert_int_equal(acc->neg_bins[0], 1);
    free(fs);
    mw_perf_binary_destroy(acc);
}

/* sklearn's roc_auc_score docstring example: AUC 0.75. */
static void test_binary_by_hand(void **state)
{
    (void)state;
    struct mw_perf_binary *acc = new_binary(0.5, 1000);
    const double scores[] = {0.1, 0.4, 0.35, 0.8};
    const int labels[] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++)
        assert_int_equal(mw_perf_binary_add(acc, scores[i], labels[i]), 0);
    struct mw_perf_binary_metrics m;
    mw_perf_binary_compute(acc, &m);
    assert_int_equal(m.n, 4);
    assert_int_equal(m.n_pos, 2);
    assert_double_exact(m.roc_auc, 0.75);
    assert_double_exact(m.roc_auc_tie_share, 0.0);
    assert_double_exact(m.accuracy, 0.75); /* tp 1 (0.8), fn 1 (0.35), tn 2 */
    assert_double_exact(m.precision, 1.0);
    assert_double_exact(m.recall, 0.5);
    assert_double_exact(m.f1, 2.0 / 3.0);
    double ll = (-log(0.9) - log(0.6) - log(0.35) - log(0.8)) / 4;
    assert_true(fabs(m.log_loss - ll) <= 1e-15);

    /* Everything in one bin: AUC 1/2, every pair tied. */
    struct mw_perf_binary *one = new_binary(0.5, 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(mw_perf_binary_add(one, scores[i], labels[i]), 0);
    mw_perf_binary_compute(one, &m);
    assert_double_exact(m.roc_auc, 0.5);
    assert_double_exact(m.roc_auc_tie_share, 1.0);
    mw_perf_binary_destroy(one);
    mw_perf_binary_destroy(acc);
}

static void test_binary_undefined_metrics(void **state)
{
    (void)state;
    struct mw_perf_binary *acc = new_binary(0.5, 100);
    struct mw_perf_binary_metrics m;
    mw_perf_binary_compute(acc, &m);
    assert_int_equal(m.n, 0);
    assert_true(isnan(m.accuracy) && isnan(m.precision) && isnan(m.recall) && isnan(m.f1));
    assert_true(isnan(m.log_loss) && isnan(m.roc_auc) && isnan(m.roc_auc_tie_share));

    /* Negatives only, none predicted positive: zero_division=0, AUC undefined. */
    assert_int_equal(mw_perf_binary_add(acc, 0.2, 0), 0);
    assert_int_equal(mw_perf_binary_add(acc, 0.3, 0), 0);
    mw_perf_binary_compute(acc, &m);
    assert_double_exact(m.accuracy, 1.0);
    assert_double_exact(m.precision, 0.0);
    assert_double_exact(m.recall, 0.0);
    assert_double_exact(m.f1, 0.0);
    assert_true(isnan(m.roc_auc) && isnan(m.roc_auc_tie_share));

    /* reset empties the counters and keeps the configuration. */
    mw_perf_binary_reset(acc);
    mw_perf_binary_compute(acc, &m);
    assert_int_equal(m.n, 0);
    assert_int_equal(acc->n_bins, 100);
    assert_double_exact(acc->threshold, 0.5);
    mw_perf_binary_destroy(acc);
}

static void test_binary_log_loss_clips(void **state)
{
    (void)state;
    struct mw_perf_binary *acc = new_binary(0.5, 10);
    assert_int_equal(mw_perf_binary_add(acc, 0.0, 1), 0);
    struct mw_perf_binary_metrics m;
    mw_perf_binary_compute(acc, &m);
    assert_true(isfinite(m.log_loss));
    assert_double_exact(m.log_loss, -log(MW_PERF_LOG_LOSS_EPS));
    mw_perf_binary_reset(acc);
    assert_int_equal(mw_perf_binary_add(acc, 1.0, 0), 0);
    mw_perf_binary_compute(acc, &m);
    assert_double_exact(m.log_loss, -log1p(-(1.0 - MW_PERF_LOG_LOSS_EPS)));
    mw_perf_binary_destroy(acc);
}

static void test_binary_merge(void **state)
{
    (void)state;
    struct mw_perf_binary *a = new_binary(0.5, 10), *b = new_binary(0.5, 10);
    struct mw_perf_binary *other_threshold = new_binary(0.4, 10), *other_bins = new_binary(0.5, 11);
    assert_int_equal(mw_perf_binary_add(a, 0.9, 1), 0);
    assert_int_equal(mw_perf_binary_add(b, 0.1, 0), 0);
    assert_int_equal(mw_perf_binary_add(other_threshold, 0.1, 0), 0);
    assert_int_equal(mw_perf_binary_merge(a, other_threshold), MW_EINVAL);
    assert_int_equal(mw_perf_binary_merge(a, other_bins), MW_EINVAL);
    assert_int_equal(a->tn, 0); /* unchanged */
    assert_int_equal(mw_perf_binary_merge(a, b), 0);
    struct mw_perf_binary_metrics m;
    mw_perf_binary_compute(a, &m);
    assert_int_equal(m.n, 2);
    assert_double_exact(m.roc_auc, 1.0);
    double ll = m.log_loss;
    /* Merging with itself doubles every counter and leaves the means alone. */
    assert_int_equal(mw_perf_binary_merge(a, a), 0);
    mw_perf_binary_compute(a, &m);
    assert_int_equal(m.n, 4);
    assert_int_equal(a->pos_bins[9], 2);
    assert_int_equal(a->neg_bins[1], 2);
    assert_double_exact(m.log_loss, ll);
    mw_perf_binary_destroy(a);
    mw_perf_binary_destroy(b);
    mw_perf_binary_destroy(other_threshold);
    mw_perf_binary_destroy(other_bins);
}

static void test_binary_fields(void **state)
{
    (void)state;
    struct mw_perf_binary *acc = new_binary(0.5, 1000);
    assert_int_equal(mw_perf_binary_add(acc, 0.25, 1), 0);
    assert_int_equal(mw_perf_binary_add(acc, 0.75, 0), 0);
    assert_int_equal(mw_perf_binary_add(acc, 0.75, 0), 0);
    struct field_set *fs = new_field_set();
    assert_int_equal(mw_perf_binary_fields(acc, collect, fs), 0);
    /* fn, fp, ll, one positive bin, one negative bin; zero fields are not written. */
    assert_int_equal(fs->n, 5);
    assert_string_equal(field_value(fs, "pb:fn"), "1");
    assert_string_equal(field_value(fs, "pb:fp"), "2");
    assert_null(field_value(fs, "pb:tp"));
    assert_string_equal(field_value(fs, "pb:pos:250"), "1");
    assert_string_equal(field_value(fs, "pb:neg:750"), "2");
    assert_non_null(field_value(fs, "pb:ll"));

    /* A callback's error stops the listing and is returned. */
    struct field_set *stop = new_field_set();
    stop->stop_after = 2;
    assert_int_equal(mw_perf_binary_fields(acc, collect, stop), MW_EFULL);
    assert_int_equal(stop->n, 2);

    /* Loading them twice gives twice the counts, the same means. */
    struct mw_perf_binary *back = new_binary(0.5, 1000);
    for (int twice = 0; twice < 2; twice++)
        for (size_t i = 0; i < fs->n; i++)
            assert_int_equal(mw_perf_binary_add_field(back, fs->names[i], fs->values[i]), 0);
    struct mw_perf_binary_metrics m1, m2;
    mw_perf_binary_compute(acc, &m1);
    mw_perf_binary_compute(back, &m2);
    assert_int_equal(m2.n, 2 * m1.n);
    assert_double_exact(m2.log_loss, m1.log_loss);
    assert_double_exact(m2.roc_auc, m1.roc_auc);

    /* Malformed binary fields are MW_EPARSE; other families' fields MW_ENOTFOUND. */
    static const char *const bad[][2] = {
        {"pb:pos:1000", "1"},
        {"pb:pos:", "1"},
        {"pb:pos:-1", "1"},
        {"pb:pos: 1", "1"},
        {"pb:neg:1x", "1"},
        {"pb:pos:1", "-1"},
        {"pb:pos:1", ""},
        {"pb:tp", "abc"},
        {"pb:tp", "1.5"},
        {"pb:tp", "-3"},
        {"pb:tp", "99999999999999999999"},
        {"pb:ll", "nan"},
        {"pb:ll", "inf"},
        {"pb:ll", "1e400"},
        {"pb:ll", "1x"},
        {"pb:bogus", "1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = mw_perf_binary_add_field(back, bad[i][0], bad[i][1]);
        if (rc != MW_EPARSE)
            fail_msg("%s=%s: %s", bad[i][0], bad[i][1], mw_err_name(rc));
    }
    assert_int_equal(mw_perf_binary_add_field(back, "count", "1"), MW_ENOTFOUND);
    assert_int_equal(mw_perf_binary_add_field(back, "pr:n", "1"), MW_ENOTFOUND);
    assert_int_equal(mw_perf_binary_add_field(back, "pb:ll", "1e-400"), 0); /* underflow: ~0 */
    mw_perf_binary_compute(back, &m2);
    assert_int_equal(m2.n, 2 * m1.n); /* the refused fields changed nothing */
    free(fs);
    free(stop);
    mw_perf_binary_destroy(acc);
    mw_perf_binary_destroy(back);
}

/* ---- multi-class ----------------------------------------------------------------------- */

static struct mw_perf_multiclass *new_multiclass(void)
{
    struct mw_perf_multiclass *acc = malloc(sizeof *acc);
    assert_non_null(acc);
    mw_perf_multiclass_reset(acc);
    return acc;
}

static void test_multiclass_rejects_names(void **state)
{
    (void)state;
    struct mw_perf_multiclass *acc = new_multiclass();
    char longest[MW_PERF_CLASS_NAME_MAX], too_long[MW_PERF_CLASS_NAME_MAX + 1];
    memset(longest, 'a', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    memset(too_long, 'b', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    assert_int_equal(mw_perf_multiclass_add(acc, NULL, "a"), MW_EINVAL);
    assert_int_equal(mw_perf_multiclass_add(acc, "a", NULL), MW_EINVAL);
    assert_int_equal(mw_perf_multiclass_add(acc, "", "a"), MW_EINVAL);
    assert_int_equal(mw_perf_multiclass_add(acc, "a", too_long), MW_ETOOBIG);
    assert_int_equal(mw_perf_multiclass_add(acc, too_long, "a"), MW_ETOOBIG);
    assert_int_equal(acc->n, 0);
    assert_int_equal(acc->n_classes, 0);
    assert_int_equal(mw_perf_multiclass_add(acc, longest, longest), 0);
    assert_string_equal(acc->names[0], longest);

    /* The longest name still makes a field that fits. */
    struct field_set *fs = new_field_set();
    assert_int_equal(mw_perf_multiclass_fields(acc, collect, fs), 0);
    assert_int_equal(fs->n, 3); /* n, correct, tp:<longest> */
    free(fs);
    free(acc);
}

static void test_multiclass_by_hand(void **state)
{
    (void)state;
    struct mw_perf_multiclass *acc = new_multiclass();
    /* true a a b c, predicted a b b a */
    assert_int_equal(mw_perf_multiclass_add(acc, "a", "a"), 0);
    assert_int_equal(mw_perf_multiclass_add(acc, "b", "a"), 0);
    assert_int_equal(mw_perf_multiclass_add(acc, "b", "b"), 0);
    assert_int_equal(mw_perf_multiclass_add(acc, "a", "c"), 0);
    struct mw_perf_multiclass_metrics m;
    mw_perf_multiclass_compute(acc, &m);
    assert_int_equal(m.n_classes, 3);
    assert_false(m.overflowed);
    assert_double_exact(m.accuracy, 0.5);
    /* a: tp1 fp1 fn1 -> P 1/2 R 1/2; b: tp1 fp1 fn0 -> P 1/2 R 1; c: tp0 fp0 fn1 -> 0 0 */
    assert_true(fabs(m.macro.precision - 1.0 / 3.0) < 1e-15);
    assert_true(fabs(m.macro.recall - 0.5) < 1e-15);
    assert_true(fabs(m.weighted.recall - 0.5) < 1e-15); /* (2 * 1/2 + 1 * 1 + 0) / 4 */
    uint64_t support;
    struct mw_perf_prf c = mw_perf_multiclass_class(acc, 2, &support);
    assert_string_equal(acc->names[2], "c");
    assert_int_equal(support, 1);
    assert_double_exact(c.precision, 0.0); /* never predicted: zero_division=0 */
    assert_double_exact(c.f1, 0.0);

    mw_perf_multiclass_reset(acc);
    mw_perf_multiclass_compute(acc, &m);
    assert_true(isnan(m.accuracy) && isnan(m.macro.f1) && isnan(m.weighted.precision));
    free(acc);
}

static void test_multiclass_other_slot(void **state)
{
    (void)state;
    struct mw_perf_multiclass *acc = new_multiclass();
    char name[16], name2[16];
    for (unsigned i = 0; i < MW_PERF_MAX_CLASSES; i++) {
        snprintf(name, sizeof name, "c%u", i);
        assert_int_equal(mw_perf_multiclass_add(acc, name, name), 0);
    }
    assert_int_equal(acc->n_classes, MW_PERF_MAX_CLASSES);
    /* Two overflow classes: a correct pair is a tp of "other", a confusion an fp and an fn. */
    assert_int_equal(mw_perf_multiclass_add(acc, "x", "x"), 0);
    assert_int_equal(mw_perf_multiclass_add(acc, "x", "y"), 0);
    assert_int_equal(mw_perf_multiclass_add(acc, "c0", "y"), 0);
    const struct mw_perf_class_counts *other = &acc->counts[MW_PERF_MAX_CLASSES];
    assert_int_equal(other->tp, 1);
    assert_int_equal(other->fp, 1);
    assert_int_equal(other->fn, 2);
    assert_int_equal(acc->counts[0].fp, 1);
    struct mw_perf_multiclass_metrics m;
    mw_perf_multiclass_compute(acc, &m);
    assert_true(m.overflowed);
    assert_int_equal(m.n_classes, MW_PERF_MAX_CLASSES + 1);
    assert_double_exact(m.accuracy, 65.0 / 67.0); /* exact despite the overflow */

    /* Merging a full table into another full one with different names: all to "other". */
    struct mw_perf_multiclass *b = new_multiclass();
    for (unsigned i = 0; i < MW_PERF_MAX_CLASSES; i++) {
        snprintf(name, sizeof name, "d%u", i);
        snprintf(name2, sizeof name2, "c%u", i);
        assert_int_equal(mw_perf_multiclass_add(b, name, name2), 0);
    }
    mw_perf_multiclass_merge(acc, b);
    assert_int_equal(acc->n, 67 + 64);
    /* b's slots went to d0, c0, ..., d31, c31 (first appearance), the rest to its "other".
     * In acc, c0..c31 find their slots; every d class and b's "other" land in acc's. */
    assert_int_equal(other->fp, 1 + 32 + 32);
    assert_int_equal(other->fn, 2 + 32);
    for (unsigned i = 0; i < MW_PERF_MAX_CLASSES; i++)
        assert_int_equal(acc->counts[i].fn, i < 32 ? 1 : 0);

    /* Fields of "other" load back into "other". */
    struct field_set *fs = new_field_set();
    assert_int_equal(mw_perf_multiclass_fields(acc, collect, fs), 0);
    assert_string_equal(field_value(fs, "pm:other:fp"), "65");
    struct mw_perf_multiclass *back = new_multiclass();
    for (size_t i = 0; i < fs->n; i++)
        assert_int_equal(mw_perf_multiclass_add_field(back, fs->names[i], fs->values[i]), 0);
    assert_memory_equal(back->counts, acc->counts, sizeof acc->counts);
    free(fs);
    free(b);
    free(back);
    free(acc);
}

static void test_multiclass_fields(void **state)
{
    (void)state;
    struct mw_perf_multiclass *acc = new_multiclass();
    assert_int_equal(mw_perf_multiclass_add(acc, "a:b", "other"), 0);
    struct field_set *fs = new_field_set();
    assert_int_equal(mw_perf_multiclass_fields(acc, collect, fs), 0);
    assert_string_equal(field_value(fs, "pm:fp:a:b"), "1");
    assert_string_equal(field_value(fs, "pm:fn:other"), "1"); /* a class called "other" */
    assert_null(field_value(fs, "pm:other:fn"));

    struct mw_perf_multiclass *back = new_multiclass();
    assert_int_equal(mw_perf_multiclass_add_field(back, "pm:tp:zero", "0"), 0);
    assert_int_equal(back->n_classes, 0); /* a zero registers no class */
    for (size_t i = 0; i < fs->n; i++)
        assert_int_equal(mw_perf_multiclass_add_field(back, fs->names[i], fs->values[i]), 0);
    assert_string_equal(back->names[0], "a:b");
    assert_string_equal(back->names[1], "other");

    char too_long[MW_PERF_FIELD_NAME_MAX];
    snprintf(too_long, sizeof too_long, "pm:tp:%070d", 0);
    static const char *const bad[][2] = {
        {"pm:tp:", "1"},   {"pm:xx:a", "1"},     {"pm:tp", "1"},
        {"pm:", "1"},      {"pm:other:tq", "1"}, {"pm:other:", "1"},
        {"pm:tp:a", "-1"}, {"pm:n", "x"},        {"pm:tpa", "1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = mw_perf_multiclass_add_field(back, bad[i][0], bad[i][1]);
        if (rc != MW_EPARSE)
            fail_msg("%s=%s: %s", bad[i][0], bad[i][1], mw_err_name(rc));
    }
    assert_int_equal(mw_perf_multiclass_add_field(back, too_long, "1"), MW_EPARSE);
    assert_int_equal(mw_perf_multiclass_add_field(back, "pb:tp", "1"), MW_ENOTFOUND);
    assert_int_equal(back->n_classes, 2);

    /* Self-merge doubles. */
    mw_perf_multiclass_merge(back, back);
    assert_int_equal(back->n, 2);
    assert_int_equal(back->counts[0].fp, 2);
    assert_int_equal(back->n_classes, 2);
    free(fs);
    free(back);
    free(acc);
}

/* ---- regression ------------------------------------------------------------------------ */

static void test_regression_rejects_and_by_hand(void **state)
{
    (void)state;
    struct mw_perf_regression acc;
    mw_perf_regression_reset(&acc);
    assert_int_equal(mw_perf_regression_add(&acc, NAN, 1.0), MW_EINVAL);
    assert_int_equal(mw_perf_regression_add(&acc, 1.0, INFINITY), MW_EINVAL);
    assert_int_equal(mw_perf_regression_add(&acc, DBL_MAX, -DBL_MAX), MW_EINVAL); /* e = inf */
    assert_int_equal(mw_perf_regression_add(&acc, 1e200, 0.0), MW_EINVAL);        /* e^2 = inf */
    assert_int_equal(mw_perf_regression_add(&acc, 1.0, DBL_TRUE_MIN), MW_EINVAL); /* |e|/|y| */
    assert_int_equal(acc.n, 0);

    assert_int_equal(mw_perf_regression_add(&acc, 3.0, 2.0), 0);  /* e 1, ape 1/2 */
    assert_int_equal(mw_perf_regression_add(&acc, -1.0, 0.0), 0); /* e -1, no ape */
    assert_int_equal(mw_perf_regression_add(&acc, 1.0, -4.0), 0); /* e 5, ape 5/4 */
    struct mw_perf_regression_metrics m;
    mw_perf_regression_compute(&acc, &m);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.n_ape, 2);
    assert_double_exact(m.mean_error, 5.0 / 3.0);
    assert_double_exact(m.mae, 7.0 / 3.0);
    assert_double_exact(m.rmse, sqrt(27.0 / 3.0));
    assert_double_exact(m.mape, 1.75 / 2.0);

    struct mw_perf_regression zeros;
    mw_perf_regression_reset(&zeros);
    assert_int_equal(mw_perf_regression_add(&zeros, 1.0, 0.0), 0);
    assert_int_equal(mw_perf_regression_add(&zeros, -0.0, 0.0), 0);
    assert_int_equal(mw_perf_regression_add(&zeros, 2.0, -0.0), 0); /* -0 is zero too */
    mw_perf_regression_compute(&zeros, &m);
    assert_true(isnan(m.mape));
    assert_double_exact(m.mae, 1.0);

    mw_perf_regression_merge(&acc, &zeros);
    mw_perf_regression_compute(&acc, &m);
    assert_int_equal(m.n, 6);
    assert_int_equal(m.n_ape, 2);
    assert_double_exact(m.mape, 1.75 / 2.0);

    mw_perf_regression_reset(&acc);
    mw_perf_regression_compute(&acc, &m);
    assert_true(isnan(m.mean_error) && isnan(m.mae) && isnan(m.rmse) && isnan(m.mape));

    assert_int_equal(mw_perf_regression_add_field(&acc, "pr:abs", "2.5"), 0);
    assert_int_equal(mw_perf_regression_add_field(&acc, "pr:err", "-2.5"), 0); /* signed */
    assert_int_equal(mw_perf_regression_add_field(&acc, "pr:n", "2"), 0);
    assert_int_equal(mw_perf_regression_add_field(&acc, "pr:nope", "2"), MW_EPARSE);
    assert_int_equal(mw_perf_regression_add_field(&acc, "pr:n", "2.0"), MW_EPARSE);
    assert_int_equal(mw_perf_regression_add_field(&acc, "pc:pred", "2"), MW_ENOTFOUND);
    mw_perf_regression_compute(&acc, &m);
    assert_double_exact(m.mae, 1.25);
    assert_double_exact(m.mean_error, -1.25);
}

/* ---- coverage -------------------------------------------------------------------------- */

static void test_coverage(void **state)
{
    (void)state;
    struct mw_perf_coverage *acc = malloc(sizeof *acc);
    assert_non_null(acc);
    mw_perf_coverage_reset(acc);
    struct mw_perf_coverage_metrics m;
    mw_perf_coverage_compute(acc, &m);
    assert_true(isnan(m.coverage) && isnan(m.mean_delay_ms) && isnan(m.p50_delay_ms));

    mw_perf_coverage_add_predictions(acc, 4);
    mw_perf_coverage_add_label(acc, 1000, 3000);
    mw_perf_coverage_add_label(acc, 5000, 4000); /* skew: delay 0 */
    /* Extreme timestamps must not overflow. */
    mw_perf_coverage_add_label(acc, INT64_MIN, INT64_MIN + 4000);
    mw_perf_coverage_add_label(acc, INT64_MAX, INT64_MIN);
    mw_perf_coverage_compute(acc, &m);
    assert_int_equal(m.n_labelled, 4);
    assert_int_equal(m.n_skewed, 2);
    assert_double_exact(m.coverage, 1.0);
    assert_double_exact(m.mean_delay_ms, 1500.0);
    assert_double_exact(m.p50_delay_ms, 1.0); /* two zeros: delays <= 1 ms report 1 */
    assert_true(fabs(m.p90_delay_ms - 4000.0) <= 40.0);

    /* More labels than predictions counted: reported as is. */
    mw_perf_coverage_add_label(acc, 0, 0);
    mw_perf_coverage_compute(acc, &m);
    assert_double_exact(m.coverage, 1.25);

    struct mw_perf_coverage *back = calloc(1, sizeof *back);
    assert_non_null(back);
    struct field_set *fs = new_field_set();
    assert_int_equal(mw_perf_coverage_fields(acc, collect, fs), 0);
    assert_string_equal(field_value(fs, "pc:skew"), "2");
    assert_string_equal(field_value(fs, "pc:dl:0"), "3");
    for (size_t i = 0; i < fs->n; i++)
        assert_int_equal(mw_perf_coverage_add_field(back, fs->names[i], fs->values[i]), 0);
    mw_perf_coverage_merge(back, acc);
    struct mw_perf_coverage_metrics m2;
    mw_perf_coverage_compute(back, &m2);
    assert_int_equal(m2.n_labelled, 2 * m.n_labelled);
    assert_double_exact(m2.mean_delay_ms, m.mean_delay_ms);
    assert_double_exact(m2.p90_delay_ms, m.p90_delay_ms);
    char last[32];
    snprintf(last, sizeof last, "pc:dl:%u", MW_LATENCY_BUCKETS);
    assert_int_equal(mw_perf_coverage_add_field(back, last, "1"), MW_EPARSE);
    assert_int_equal(mw_perf_coverage_add_field(back, "pc:dl:x", "1"), MW_EPARSE);
    assert_int_equal(mw_perf_coverage_add_field(back, "pc:what", "1"), MW_EPARSE);
    assert_int_equal(mw_perf_coverage_add_field(back, "pm:n", "1"), MW_ENOTFOUND);
    free(fs);
    free(back);
    free(acc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_keeps_low_bits),
        cmocka_unit_test(test_binary_create_rejects_arguments),
        cmocka_unit_test(test_binary_create_allocation_failures),
        cmocka_unit_test(test_score_bin_edges),
        cmocka_unit_test(test_binary_rejects_invalid_pairs),
        cmocka_unit_test(test_binary_by_hand),
        cmocka_unit_test(test_binary_undefined_metrics),
        cmocka_unit_test(test_binary_log_loss_clips),
        cmocka_unit_test(test_binary_merge),
        cmocka_unit_test(test_binary_fields),
        cmocka_unit_test(test_multiclass_rejects_names),
        cmocka_unit_test(test_multiclass_by_hand),
        cmocka_unit_test(test_multiclass_other_slot),
        cmocka_unit_test(test_multiclass_fields),
        cmocka_unit_test(test_regression_rejects_and_by_hand),
        cmocka_unit_test(test_coverage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
