/*
 * test_drift.c — edge cases of the drift statistics and the chi-squared survival function:
 * bin layout at and around the edges, constant features, empty and overflowing windows, invalid
 * references, the unseen-category and df = 0 rules, the KS p-value's domain, cutoff and series
 * switch, and closed forms worked out by hand. The comparison with numpy/scipy over generated
 * data is tests/oracle/test_drift_oracle.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chi2.h"
#include "drift.h"
#include "error.h"

#include <math.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* |got - want| <= rel * |want| (exact when rel is 0); NaN matches only NaN. */
static void assert_close(double got, double want, double rel)
{
    if (isnan(want) ? isnan(got) : (got == want || fabs(got - want) <= rel * fabs(want)))
        return;
    print_error("got %.17g, want %.17g (rel %g)\n", got, want, rel);
    fail();
}

static void test_bin_index_layout(void **state)
{
    (void)state;
    const double edges[] = {0.0, 1.0, 2.0};
    /* underflow (-inf, 0), [0, 1), [1, 2), overflow [2, inf) */
    assert_int_equal(mw_drift_bin_index(edges, 3, -INFINITY), 0);
    assert_int_equal(mw_drift_bin_index(edges, 3, -1.0), 0);
    assert_int_equal(mw_drift_bin_index(edges, 3, nextafter(0.0, -1.0)), 0);
    assert_int_equal(mw_drift_bin_index(edges, 3, 0.0), 1);
    assert_int_equal(mw_drift_bin_index(edges, 3, -0.0), 1); /* -0.0 == 0.0: same bin */
    assert_int_equal(mw_drift_bin_index(edges, 3, 0.5), 1);
    assert_int_equal(mw_drift_bin_index(edges, 3, nextafter(1.0, 0.0)), 1);
    assert_int_equal(mw_drift_bin_index(edges, 3, 1.0), 2);
    assert_int_equal(mw_drift_bin_index(edges, 3, 2.0), 3);
    assert_int_equal(mw_drift_bin_index(edges, 3, 1e300), 3);
    assert_int_equal(mw_drift_bin_index(edges, 3, INFINITY), 3);
}

static void test_bin_index_degenerate(void **state)
{
    (void)state;
    const double edges[] = {0.0, 1.0};
    assert_true(mw_drift_bin_index(edges, 2, NAN) == MW_DRIFT_NO_BIN);
    assert_true(mw_drift_bin_index(NULL, 2, 0.5) == MW_DRIFT_NO_BIN);
    /* No edges: one bin holds everything. */
    assert_int_equal(mw_drift_bin_index(NULL, 0, 0.5), 0);
    assert_int_equal(mw_drift_bin_index(edges, 0, -INFINITY), 0);
}

/* A constant feature: all quantiles equal, one edge, the reference in the overflow bin. */
static void test_constant_feature(void **state)
{
    (void)state;
    double quantiles[] = {3.0, 3.0, 3.0, 3.0, 3.0};
    size_t n_edges = 99;
    assert_int_equal(mw_drift_edges_unique(quantiles, N_OF(quantiles), &n_edges), 0);
    assert_int_equal(n_edges, 1);
    assert_true(quantiles[0] == 3.0);
    assert_int_equal(mw_drift_bin_index(quantiles, 1, 3.0), 1);
    assert_int_equal(mw_drift_bin_index(quantiles, 1, nextafter(3.0, 0.0)), 0);

    double values[2];
    assert_int_equal(mw_drift_bin_values(quantiles, 1, 3.0, 3.0, values), 0);
    assert_true(values[0] == 3.0 && values[1] == 3.0);

    const double ref_p[] = {0.0, 1.0};
    const uint64_t same[] = {0, 40};
    const uint64_t below[] = {4, 36};
    assert_close(mw_drift_psi(ref_p, same, 2, MW_DRIFT_PSI_EPSILON), 0.0, 0.0);
    assert_close(mw_drift_js_distance(ref_p, same, 2), 0.0, 0.0);
    assert_close(mw_drift_ks_binned(ref_p, below, 2), 0.1, 1e-15);
    /* Both bins sit at 3.0: the Wasserstein distance cannot see values below the constant. */
    assert_close(mw_drift_wasserstein_binned(values, ref_p, below, 2), 0.0, 0.0);
    double stat, p;
    assert_int_equal(mw_drift_chi2(ref_p, same, 2, &stat, &p), 0);
    assert_close(stat, 0.0, 0.0); /* df = 0 */
    assert_true(isnan(p));
    assert_int_equal(mw_drift_chi2(ref_p, below, 2, &stat, &p), 0);
    assert_true(isinf(stat) && stat > 0 && p == 0.0); /* underflow bin unseen in reference */
}

static void test_edges_unique(void **state)
{
    (void)state;
    double q[] = {0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0};
    size_t n = 0;
    assert_int_equal(mw_drift_edges_unique(q, N_OF(q), &n), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_true(q[i] == (double)i);

    double decreasing[] = {1.0, 0.0};
    assert_int_equal(mw_drift_edges_unique(decreasing, 2, &n), MW_EINVAL);
    assert_true(decreasing[0] == 1.0 && decreasing[1] == 0.0); /* untouched */
    double with_nan[] = {0.0, NAN};
    assert_int_equal(mw_drift_edges_unique(with_nan, 2, &n), MW_EINVAL);
    double with_inf[] = {0.0, INFINITY};
    assert_int_equal(mw_drift_edges_unique(with_inf, 2, &n), MW_EINVAL);
    assert_int_equal(mw_drift_edges_unique(q, 0, &n), MW_EINVAL);
    assert_int_equal(mw_drift_edges_unique(NULL, 3, &n), MW_EINVAL);
    assert_int_equal(mw_drift_edges_unique(q, 3, NULL), MW_EINVAL);
}

static void test_bin_values(void **state)
{
    (void)state;
    const double edges[] = {0.0, 1.0, 3.0};
    double out[4];
    assert_int_equal(mw_drift_bin_values(edges, 3, -2.0, 10.0, out), 0);
    assert_true(out[0] == -2.0 && out[1] == 0.5 && out[2] == 2.0 && out[3] == 10.0);
    /* A reference range inside the edges (inconsistent profile) still yields sorted values. */
    assert_int_equal(mw_drift_bin_values(edges, 3, 0.5, 2.0, out), 0);
    assert_true(out[0] == 0.0 && out[3] == 3.0);
    /* Midpoints of huge edges do not overflow. */
    const double huge[] = {1e308, 1.7e308};
    assert_int_equal(mw_drift_bin_values(huge, 2, 1e308, 1.7e308, out), 0);
    assert_true(isfinite(out[1]));

    const double repeated[] = {0.0, 1.0, 1.0};
    assert_int_equal(mw_drift_bin_values(repeated, 3, 0.0, 1.0, out), MW_EINVAL);
    assert_int_equal(mw_drift_bin_values(edges, 3, 2.0, 1.0, out), MW_EINVAL);
    assert_int_equal(mw_drift_bin_values(edges, 3, NAN, 1.0, out), MW_EINVAL);
    assert_int_equal(mw_drift_bin_values(edges, 0, 0.0, 1.0, out), MW_EINVAL);
    assert_int_equal(mw_drift_bin_values(edges, 3, 0.0, 1.0, NULL), MW_EINVAL);
}

static void test_psi_closed_forms(void **state)
{
    (void)state;
    const double ref_p[] = {0.5, 0.5};
    const uint64_t counts[] = {3, 1};
    /* c = (3/4, 1/4): 1/4 ln(3/2) - 1/4 ln(1/2) = ln(3) / 4 */
    assert_close(mw_drift_psi(ref_p, counts, 2, MW_DRIFT_PSI_EPSILON), log(3.0) / 4, 1e-15);
    /* Unnormalized reference: the same. */
    const double ref_unnormalized[] = {7.0, 7.0};
    assert_close(mw_drift_psi(ref_unnormalized, counts, 2, MW_DRIFT_PSI_EPSILON), log(3.0) / 4,
                 1e-15);
    /* An empty window bin is floored at epsilon: finite, and larger for a smaller floor. */
    const uint64_t one_sided[] = {5, 0};
    double eps = MW_DRIFT_PSI_EPSILON;
    double want = 0.5 * log(2.0) + (eps - 0.5) * log(eps / 0.5);
    assert_close(mw_drift_psi(ref_p, one_sided, 2, eps), want, 1e-14);
    assert_true(mw_drift_psi(ref_p, one_sided, 2, 1e-8) > want);
    /* Identical proportions: exactly 0. */
    const uint64_t same[] = {123456789, 123456789};
    assert_close(mw_drift_psi(ref_p, same, 2, eps), 0.0, 0.0);
}

static void test_js_closed_forms(void **state)
{
    (void)state;
    const double ref_p[] = {0.5, 0.5, 0.0, 0.0};
    const uint64_t disjoint[] = {0, 0, 7, 3};
    const uint64_t same[] = {9, 9, 0, 0};
    assert_close(mw_drift_js_distance(ref_p, disjoint, 4), 1.0, 0.0);
    assert_close(mw_drift_js_distance(ref_p, same, 4), 0.0, 0.0);
    /* scipy's docstring: jensenshannon([1, 0], [0.5, 0.5]) = 0.46450140402245893 in natural
     * logs; base 2 divides the divergence by ln 2. */
    const double point[] = {1.0, 0.0};
    const uint64_t even[] = {1, 1};
    assert_close(mw_drift_js_distance(point, even, 2), 0.46450140402245893 / sqrt(log(2.0)), 1e-15);
}

static void test_ks_and_wasserstein(void **state)
{
    (void)state;
    const double ref_p[] = {0.25, 0.25, 0.25, 0.25};
    const uint64_t last[] = {0, 0, 0, 4};
    assert_close(mw_drift_ks_binned(ref_p, last, 4), 0.75, 1e-15);
    const double values[] = {0.0, 1.0, 2.0, 3.0};
    /* Mass 1/4 at each of 0..3 against everything at 3: mean distance 0.25 * (3 + 2 + 1). */
    assert_close(mw_drift_wasserstein_binned(values, ref_p, last, 4), 1.5, 1e-15);
    /* A single bin: both CDFs are 1 everywhere. */
    const double one[] = {1.0};
    const uint64_t n[] = {5};
    assert_close(mw_drift_ks_binned(one, n, 1), 0.0, 0.0);
    assert_close(mw_drift_wasserstein_binned(one, one, n, 1), 0.0, 0.0);
    /* Values must be finite and sorted. */
    const double unsorted[] = {0.0, 2.0, 1.0, 3.0};
    const double infinite[] = {-INFINITY, 1.0, 2.0, 3.0};
    assert_true(isnan(mw_drift_wasserstein_binned(unsorted, ref_p, last, 4)));
    assert_true(isnan(mw_drift_wasserstein_binned(infinite, ref_p, last, 4)));
    assert_true(isnan(mw_drift_wasserstein_binned(NULL, ref_p, last, 4)));
}

/* KS p-value: values of Q_KS from scipy.stats.kstwobign.sf, the cutoff and the series switch. */
static void test_ks_p_value(void **state)
{
    (void)state;
    /* n = m = 50: en = 5, so lambda = 5 D. */
    assert_close(mw_drift_ks_p_value(0.2, 50, 50), 0.26999967167735456, 1e-13); /* lambda 1 */
    assert_close(mw_drift_ks_p_value(0.1, 50, 50), 0.9639452436648751, 1e-13);  /* lambda 0.5 */
    /* The 5% critical value 1.3581: p = 0.05. */
    assert_close(mw_drift_ks_p_value(1.3581015157986 / 5.0, 50, 50), 0.04999921873425992, 1e-11);
    /* Tail: lambda 5, the series is its first term 2 exp(-50) to 1e-65. */
    assert_close(mw_drift_ks_p_value(1.0, 50, 50), 2.0 * exp(-50.0), 1e-12);
    /* Symmetric in the sizes; n = 1, m = inf is en = 1. */
    assert_true(mw_drift_ks_p_value(0.3, 40, 90) == mw_drift_ks_p_value(0.3, 90, 40));
    assert_close(mw_drift_ks_p_value(1.0, 1, INFINITY), 0.26999967167735456, 1e-13);
    /* lambda < 0.2 is 1 (Q_KS(0.2) = 1 - 5.05e-13); continuous across 0.2 and 1. */
    assert_close(mw_drift_ks_p_value(0.0, 10, 10), 1.0, 0.0);
    assert_close(mw_drift_ks_p_value(0.0, INFINITY, INFINITY), 1.0, 0.0);
    assert_close(mw_drift_ks_p_value(nextafter(0.2, 0.0), 1, INFINITY), 1.0, 0.0);
    assert_true(fabs(mw_drift_ks_p_value(0.2, 1, INFINITY) - 1.0) < 1e-12);
    assert_true(fabs(mw_drift_ks_p_value(nextafter(1.0, 0.0), 1, INFINITY) -
                     mw_drift_ks_p_value(1.0, 1, INFINITY)) < 1e-14);
    /* Far tail and infinite D: 0, never negative. */
    assert_close(mw_drift_ks_p_value(1.0, 1e6, 1e6), 0.0, 0.0);
    assert_close(mw_drift_ks_p_value(INFINITY, 10, 10), 0.0, 0.0);
    assert_close(mw_drift_ks_p_value(0.1, INFINITY, INFINITY), 0.0, 0.0);
    /* Huge sizes do not overflow en. */
    assert_close(mw_drift_ks_p_value(1e-160, 1e300, 1e300), 1.0, 0.0);
    /* Domain. */
    assert_true(isnan(mw_drift_ks_p_value(NAN, 10, 10)));
    assert_true(isnan(mw_drift_ks_p_value(-1e-300, 10, 10)));
    assert_true(isnan(mw_drift_ks_p_value(-INFINITY, 10, 10)));
    assert_true(isnan(mw_drift_ks_p_value(0.1, 0, 10)));
    assert_true(isnan(mw_drift_ks_p_value(0.1, 10, 0)));
    assert_true(isnan(mw_drift_ks_p_value(0.1, -5, 10)));
    assert_true(isnan(mw_drift_ks_p_value(0.1, NAN, 10)));
    assert_true(isnan(mw_drift_ks_p_value(0.1, 10, NAN)));
    assert_true(isnan(mw_drift_ks_p_value(0.0, -INFINITY, 10)));
    /* Between 0 and 1 and non-increasing in D. */
    double prev = 1.0;
    for (int i = 0; i <= 1000; i++) {
        double p = mw_drift_ks_p_value(i / 1000.0, 30, 70);
        assert_true(p >= 0.0 && p <= prev);
        prev = p;
    }
}

/* Every statistic answers NaN (not a crash, not a number) for input it cannot judge. */
static void test_degenerate_inputs_are_nan(void **state)
{
    (void)state;
    const double ref_p[] = {0.5, 0.5};
    const double zero_ref[] = {0.0, 0.0};
    const double negative_ref[] = {-0.5, 1.5};
    const double nan_ref[] = {NAN, 1.0};
    const double inf_ref[] = {INFINITY, 1.0};
    const double values[] = {0.0, 1.0};
    const uint64_t counts[] = {1, 2};
    const uint64_t empty[] = {0, 0};
    const uint64_t overflowing[] = {UINT64_MAX, 1};
    struct {
        const double *ref;
        const uint64_t *cur;
        size_t n;
    } bad[] = {
        {ref_p, empty, 2},    {zero_ref, counts, 2}, {negative_ref, counts, 2},
        {nan_ref, counts, 2}, {inf_ref, counts, 2},  {NULL, counts, 2},
        {ref_p, NULL, 2},     {ref_p, counts, 0},    {ref_p, overflowing, 2},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        assert_true(isnan(mw_drift_psi(bad[i].ref, bad[i].cur, bad[i].n, 1e-4)));
        assert_true(isnan(mw_drift_js_distance(bad[i].ref, bad[i].cur, bad[i].n)));
        assert_true(isnan(mw_drift_ks_binned(bad[i].ref, bad[i].cur, bad[i].n)));
        assert_true(isnan(mw_drift_wasserstein_binned(values, bad[i].ref, bad[i].cur, bad[i].n)));
    }
    assert_true(isnan(mw_drift_psi(ref_p, counts, 2, 0.0)));
    assert_true(isnan(mw_drift_psi(ref_p, counts, 2, 1.0)));
    assert_true(isnan(mw_drift_psi(ref_p, counts, 2, NAN)));
    assert_true(isnan(mw_drift_psi(ref_p, counts, 2, -1e-4)));
}

static void test_chi2_closed_form(void **state)
{
    (void)state;
    const double ref_p[] = {0.5, 0.5, 0.0};
    const uint64_t counts[] = {30, 10, 0};
    double stat, p;
    /* e = (20, 20): (100 + 100) / 20 = 10, df 1 (the empty unseen slot is ignored);
     * chi2.sf(x, 1) = erfc(sqrt(x / 2)). */
    assert_int_equal(mw_drift_chi2(ref_p, counts, 3, &stat, &p), 0);
    assert_close(stat, 10.0, 1e-15);
    assert_close(p, erfc(sqrt(5.0)), 1e-13);
    /* Identical: statistic 0, p 1. */
    const uint64_t same[] = {1000000000, 1000000000, 0};
    assert_int_equal(mw_drift_chi2(ref_p, same, 3, &stat, &p), 0);
    assert_close(stat, 0.0, 0.0);
    assert_close(p, 1.0, 0.0);
}

static void test_chi2_unseen_and_undefined(void **state)
{
    (void)state;
    const double ref_p[] = {0.5, 0.5, 0.0};
    const uint64_t unseen[] = {30, 10, 1};
    double stat, p;
    assert_int_equal(mw_drift_chi2(ref_p, unseen, 3, &stat, &p), 0);
    assert_true(isinf(stat) && stat > 0);
    assert_true(p == 0.0);
    /* Leaving the unseen slot out tests the known categories only. */
    assert_int_equal(mw_drift_chi2(ref_p, unseen, 2, &stat, &p), 0);
    assert_close(stat, 10.0, 1e-15);

    /* Empty window: no test, not an error. */
    const uint64_t empty[] = {0, 0, 0};
    assert_int_equal(mw_drift_chi2(ref_p, empty, 3, &stat, &p), 0);
    assert_true(isnan(stat) && isnan(p));
    /* df = 0: one expected category. */
    const double single[] = {2.0, 0.0};
    const uint64_t all_in_it[] = {17, 0};
    assert_int_equal(mw_drift_chi2(single, all_in_it, 2, &stat, &p), 0);
    assert_close(stat, 0.0, 0.0);
    assert_true(isnan(p));

    /* Malformed arguments: MW_EINVAL, outputs NaN. */
    const double zero_ref[] = {0.0, 0.0};
    const uint64_t counts[] = {1, 2};
    const uint64_t overflowing[] = {UINT64_MAX, 1};
    assert_int_equal(mw_drift_chi2(zero_ref, counts, 2, &stat, &p), MW_EINVAL);
    assert_true(isnan(stat) && isnan(p));
    assert_int_equal(mw_drift_chi2(ref_p, overflowing, 2, &stat, &p), MW_EINVAL);
    assert_int_equal(mw_drift_chi2(ref_p, counts, 0, &stat, &p), MW_EINVAL);
    assert_int_equal(mw_drift_chi2(NULL, counts, 2, &stat, &p), MW_EINVAL);
    assert_int_equal(mw_drift_chi2(ref_p, NULL, 2, &stat, &p), MW_EINVAL);
    assert_int_equal(mw_drift_chi2(ref_p, counts, 2, NULL, &p), MW_EINVAL);
    assert_true(isnan(p));
    assert_int_equal(mw_drift_chi2(ref_p, counts, 2, &stat, NULL), MW_EINVAL);
    assert_true(isnan(stat));
}

static void test_chi2_sf_closed_forms(void **state)
{
    (void)state;
    const double xs[] = {1e-300, 1e-10, 0.1, 1.0, 2.0, 3.0, 10.0, 50.0, 200.0, 1000.0};
    for (size_t i = 0; i < N_OF(xs); i++) {
        double x = xs[i];
        assert_close(mw_chi2_sf(x, 2.0), exp(-x / 2), 1e-13);       /* df 2: e^(-x/2) */
        assert_close(mw_chi2_sf(x, 1.0), erfc(sqrt(x / 2)), 1e-12); /* df 1 */
        assert_close(mw_gamma_q(1.0, x), exp(-x), 1e-13);           /* Q(1, x) = e^-x */
        /* df 4: e^(-x/2) (1 + x/2) */
        assert_close(mw_chi2_sf(x, 4.0), exp(-x / 2) * (1 + x / 2), 1e-12);
    }
    /* Large df, at the mean: Q(a, a) = 1/2 - 1/(3 sqrt(2 pi a)) + O(a^-3/2) (Temme); the
     * omitted terms are 2.3e-8 at a = 1000 (df 2000). */
    double center = mw_chi2_sf(2000.0, 2000.0);
    assert_true(fabs(center - (0.5 - 1.0 / (3.0 * sqrt(2.0 * M_PI * 1000.0)))) < 1e-7);
}

static void test_chi2_sf_domain(void **state)
{
    (void)state;
    assert_close(mw_chi2_sf(0.0, 3.0), 1.0, 0.0);
    assert_close(mw_chi2_sf(-5.0, 3.0), 1.0, 0.0);
    assert_close(mw_chi2_sf(INFINITY, 3.0), 0.0, 0.0);
    assert_close(mw_chi2_sf(1e6, 1.0), 0.0, 0.0); /* underflows, as in scipy */
    assert_true(isnan(mw_chi2_sf(NAN, 3.0)));
    assert_true(isnan(mw_chi2_sf(1.0, NAN)));
    assert_true(isnan(mw_chi2_sf(1.0, 0.0)));
    assert_true(isnan(mw_chi2_sf(1.0, -1.0)));
    assert_true(isnan(mw_chi2_sf(1.0, INFINITY)));
    assert_close(mw_gamma_q(2.5, 0.0), 1.0, 0.0);
    assert_close(mw_gamma_q(2.5, INFINITY), 0.0, 0.0);
    assert_true(isnan(mw_gamma_q(0.0, 1.0)));
    assert_true(isnan(mw_gamma_q(-1.0, 1.0)));
    assert_true(isnan(mw_gamma_q(1.0, -1.0)));
    assert_true(isnan(mw_gamma_q(INFINITY, 1.0)));
    /* Every answer is a probability, even where the series rounds near 1. */
    for (double a = 0.5; a < 2000; a *= 1.7) {
        for (double x = 1e-3; x < 5000; x *= 1.9) {
            double q = mw_gamma_q(a, x);
            assert_true(q >= 0.0 && q <= 1.0);
        }
    }
}

static void test_rates(void **state)
{
    (void)state;
    assert_close(mw_drift_rate(1, 4), 0.25, 0.0);
    assert_close(mw_drift_unseen_share(0, 10), 0.0, 0.0);
    assert_close(mw_drift_missing_rate(10, 10), 1.0, 0.0);
    assert_close(mw_drift_out_of_range_rate(UINT64_MAX, UINT64_MAX), 1.0, 0.0);
    assert_true(isnan(mw_drift_unseen_share(0, 0)));
    assert_true(isnan(mw_drift_missing_rate(0, 0)));
    assert_true(isnan(mw_drift_out_of_range_rate(0, 0)));
    assert_true(isnan(mw_drift_rate(5, 4)));

    assert_false(mw_drift_out_of_range(0.0, 0.0, 1.0));
    assert_false(mw_drift_out_of_range(1.0, 0.0, 1.0));
    assert_true(mw_drift_out_of_range(nextafter(0.0, -1.0), 0.0, 1.0));
    assert_true(mw_drift_out_of_range(INFINITY, 0.0, 1.0));
    assert_false(mw_drift_out_of_range(NAN, 0.0, 1.0)); /* missing, not out of range */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bin_index_layout),
        cmocka_unit_test(test_bin_index_degenerate),
        cmocka_unit_test(test_constant_feature),
        cmocka_unit_test(test_edges_unique),
        cmocka_unit_test(test_bin_values),
        cmocka_unit_test(test_psi_closed_forms),
        cmocka_unit_test(test_js_closed_forms),
        cmocka_unit_test(test_ks_and_wasserstein),
        cmocka_unit_test(test_ks_p_value),
        cmocka_unit_test(test_degenerate_inputs_are_nan),
        cmocka_unit_test(test_chi2_closed_form),
        cmocka_unit_test(test_chi2_unseen_and_undefined),
        cmocka_unit_test(test_chi2_sf_closed_forms),
        cmocka_unit_test(test_chi2_sf_domain),
        cmocka_unit_test(test_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
