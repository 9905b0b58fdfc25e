/*
 * test_drift.c — edge cases of the drift statistics and the chi-squared survival function:
 * bin and grid-slot layout at and around the edges and cuts, constant features, empty,
 * fractional and overflowing windows, invalid references, Wasserstein between point sets (ties,
 * zero weights, unsorted or negative input), the unseen-category and df = 0 rules, the KS
 * p-value's domain, cutoff and series switch, and closed forms worked out by hand. The
 * comparison with numpy/scipy over generated data is tests/oracle/test_drift_oracle.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chi2.h"
#include "drift.h"
#include "error.h"

#include <float.h>
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
    assert_int_equal(mw_grid_region(edges, 3, -INFINITY), 0);
    assert_int_equal(mw_grid_region(edges, 3, -1.0), 0);
    assert_int_equal(mw_grid_region(edges, 3, nextafter(0.0, -1.0)), 0);
    assert_int_equal(mw_grid_region(edges, 3, 0.0), 1);
    assert_int_equal(mw_grid_region(edges, 3, -0.0), 1); /* -0.0 == 0.0: same bin */
    assert_int_equal(mw_grid_region(edges, 3, 0.5), 1);
    assert_int_equal(mw_grid_region(edges, 3, nextafter(1.0, 0.0)), 1);
    assert_int_equal(mw_grid_region(edges, 3, 1.0), 2);
    assert_int_equal(mw_grid_region(edges, 3, 2.0), 3);
    assert_int_equal(mw_grid_region(edges, 3, 1e300), 3);
    assert_int_equal(mw_grid_region(edges, 3, INFINITY), 3);
}

static void test_bin_index_degenerate(void **state)
{
    (void)state;
    const double edges[] = {0.0, 1.0};
    assert_true(mw_grid_region(edges, 2, NAN) == MW_GRID_NONE);
    assert_true(mw_grid_region(NULL, 2, 0.5) == MW_GRID_NONE);
    /* No edges: one bin holds everything. */
    assert_int_equal(mw_grid_region(NULL, 0, 0.5), 0);
    assert_int_equal(mw_grid_region(edges, 0, -INFINITY), 0);
}

/* A constant feature: all quantiles equal, one edge, the reference in the overflow bin; on the
 * grid, no cuts and three slots: below, at and above the constant. */
static void test_constant_feature(void **state)
{
    (void)state;
    double quantiles[] = {3.0, 3.0, 3.0, 3.0, 3.0};
    size_t n_edges = 99;
    assert_int_equal(mw_drift_edges_unique(quantiles, N_OF(quantiles), &n_edges), 0);
    assert_int_equal(n_edges, 1);
    assert_true(quantiles[0] == 3.0);
    assert_int_equal(mw_grid_region(quantiles, 1, 3.0), 1);
    assert_int_equal(mw_grid_region(quantiles, 1, nextafter(3.0, 0.0)), 0);

    assert_int_equal(mw_grid_slot(NULL, 0, 3.0, 3.0, nextafter(3.0, 0.0)), 0);
    assert_int_equal(mw_grid_slot(NULL, 0, 3.0, 3.0, 3.0), 1);
    assert_int_equal(mw_grid_slot(NULL, 0, 3.0, 3.0, nextafter(3.0, 4.0)), 2);

    const double ref_p[] = {0.0, 1.0};
    const double same[] = {0, 40};
    const double below[] = {4, 36};
    assert_close(mw_drift_psi(ref_p, same, 2, MW_DRIFT_PSI_EPSILON), 0.0, 0.0);
    assert_close(mw_drift_js_distance(ref_p, same, 2), 0.0, 0.0);
    assert_close(mw_drift_ks_binned(ref_p, below, 2), 0.1, 1e-15);
    double stat, p;
    assert_int_equal(mw_drift_chi2(ref_p, same, 2, &stat, &p), 0);
    assert_close(stat, 0.0, 0.0); /* df = 0 */
    assert_true(isnan(p));
    assert_int_equal(mw_drift_chi2(ref_p, below, 2, &stat, &p), 0);
    assert_true(isinf(stat) && stat > 0 && p == 0.0); /* underflow bin unseen in reference */

    /* Wasserstein over the slots: the reference all at 3.0, the window's below-range slot at its
     * own mean 2.0, so a tenth of the mass moves by 1. */
    const double ref_x[] = {3.0}, ref_w[] = {1.0};
    const double cur_x[] = {2.0, 3.0}, cur_w[] = {4, 36};
    assert_close(mw_drift_wasserstein_points(ref_x, ref_w, 1, cur_x, cur_w, 2), 0.1, 1e-15);
    assert_close(mw_drift_wasserstein_points(ref_x, ref_w, 1, ref_x, same + 1, 1), 0.0, 0.0);
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

/* Grid slots: 0 below min, 1 + (cuts <= x) inside [min, max], n_cuts + 2 above max. */
static void test_grid_slot_layout(void **state)
{
    (void)state;
    const double cuts[] = {0.0, 1.0, 2.0};
    const double lo = -1.0, hi = 3.0;
    /* (-inf, -1) 0, [-1, 0) 1, [0, 1) 2, [1, 2) 3, [2, 3] 4, (3, inf) 5 */
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, -INFINITY), 0);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, -1e300), 0);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, nextafter(lo, -2.0)), 0);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, lo), 1);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, nextafter(lo, 0.0)), 1);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, nextafter(0.0, -1.0)), 1);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, 0.0), 2);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, -0.0), 2); /* -0.0 == 0.0: same slot */
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, 0.5), 2);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, nextafter(1.0, 0.0)), 2);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, 1.0), 3);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, nextafter(1.0, 2.0)), 3);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, nextafter(2.0, 0.0)), 3);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, 2.0), 4);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, nextafter(hi, 0.0)), 4);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, hi), 4); /* max is inside the range */
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, nextafter(hi, 4.0)), 5);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, 1e300), 5);
    assert_int_equal(mw_grid_slot(cuts, 3, lo, hi, INFINITY), 5);
}

static void test_grid_slot_degenerate(void **state)
{
    (void)state;
    const double cuts[] = {0.0, 1.0};
    assert_true(mw_grid_slot(cuts, 2, -1.0, 2.0, NAN) == MW_GRID_NONE);
    assert_true(mw_grid_slot(cuts, 2, -1.0, 2.0, -NAN) == MW_GRID_NONE);
    assert_true(mw_grid_slot(NULL, 2, -1.0, 2.0, 0.5) == MW_GRID_NONE);
    assert_true(mw_grid_slot(NULL, 0, -1.0, 2.0, NAN) == MW_GRID_NONE);
    /* No cuts (a constant feature, or a range too narrow for any): slots 0, 1, 2. */
    assert_int_equal(mw_grid_slot(NULL, 0, -1.0, 2.0, -INFINITY), 0);
    assert_int_equal(mw_grid_slot(cuts, 0, -1.0, 2.0, -1.5), 0);
    assert_int_equal(mw_grid_slot(cuts, 0, -1.0, 2.0, -1.0), 1);
    assert_int_equal(mw_grid_slot(cuts, 0, -1.0, 2.0, 0.5), 1);
    assert_int_equal(mw_grid_slot(cuts, 0, -1.0, 2.0, 2.0), 1);
    assert_int_equal(mw_grid_slot(cuts, 0, -1.0, 2.0, 2.5), 2);
    assert_int_equal(mw_grid_slot(NULL, 0, -1.0, 2.0, INFINITY), 2);
    /* A single cut. */
    assert_int_equal(mw_grid_slot(cuts, 1, -1.0, 2.0, nextafter(0.0, -1.0)), 1);
    assert_int_equal(mw_grid_slot(cuts, 1, -1.0, 2.0, 0.0), 2);
    assert_int_equal(mw_grid_slot(cuts, 1, -1.0, 2.0, 2.0), 2);
    assert_int_equal(mw_grid_slot(cuts, 1, -1.0, 2.0, 2.5), 3);
}

static void test_psi_closed_forms(void **state)
{
    (void)state;
    const double ref_p[] = {0.5, 0.5};
    const double counts[] = {3, 1};
    /* c = (3/4, 1/4): 1/4 ln(3/2) - 1/4 ln(1/2) = ln(3) / 4 */
    assert_close(mw_drift_psi(ref_p, counts, 2, MW_DRIFT_PSI_EPSILON), log(3.0) / 4, 1e-15);
    /* Unnormalized reference: the same. */
    const double ref_unnormalized[] = {7.0, 7.0};
    assert_close(mw_drift_psi(ref_unnormalized, counts, 2, MW_DRIFT_PSI_EPSILON), log(3.0) / 4,
                 1e-15);
    /* An empty window bin is floored at epsilon: finite, and larger for a smaller floor. */
    const double one_sided[] = {5, 0};
    double eps = MW_DRIFT_PSI_EPSILON;
    double want = 0.5 * log(2.0) + (eps - 0.5) * log(eps / 0.5);
    assert_close(mw_drift_psi(ref_p, one_sided, 2, eps), want, 1e-14);
    assert_true(mw_drift_psi(ref_p, one_sided, 2, 1e-8) > want);
    /* Identical proportions: exactly 0. */
    const double same[] = {123456789, 123456789};
    assert_close(mw_drift_psi(ref_p, same, 2, eps), 0.0, 0.0);
    const double same_fractional[] = {0.3, 0.3};
    assert_close(mw_drift_psi(ref_p, same_fractional, 2, eps), 0.0, 0.0);
}

static void test_js_closed_forms(void **state)
{
    (void)state;
    const double ref_p[] = {0.5, 0.5, 0.0, 0.0};
    const double disjoint[] = {0, 0, 7, 3};
    const double same[] = {9, 9, 0, 0};
    assert_close(mw_drift_js_distance(ref_p, disjoint, 4), 1.0, 0.0);
    assert_close(mw_drift_js_distance(ref_p, same, 4), 0.0, 0.0);
    /* scipy's docstring: jensenshannon([1, 0], [0.5, 0.5]) = 0.46450140402245893 in natural
     * logs; base 2 divides the divergence by ln 2. */
    const double point[] = {1.0, 0.0};
    const double even[] = {1, 1};
    assert_close(mw_drift_js_distance(point, even, 2), 0.46450140402245893 / sqrt(log(2.0)), 1e-15);
}

static void test_ks_and_wasserstein(void **state)
{
    (void)state;
    const double ref_p[] = {0.25, 0.25, 0.25, 0.25};
    const double last[] = {0, 0, 0, 4};
    assert_close(mw_drift_ks_binned(ref_p, last, 4), 0.75, 1e-15);
    const double values[] = {0.0, 1.0, 2.0, 3.0};
    /* Mass 1/4 at each of 0..3 against everything at 3: mean distance 0.25 * (3 + 2 + 1). */
    assert_close(mw_drift_wasserstein_points(values, ref_p, 4, values, last, 4), 1.5, 1e-15);
    /* The same with the window as a single point, and with the sides swapped. */
    const double three[] = {3.0}, four[] = {4.0};
    assert_close(mw_drift_wasserstein_points(values, ref_p, 4, three, four, 1), 1.5, 1e-15);
    assert_close(mw_drift_wasserstein_points(three, four, 1, values, ref_p, 4), 1.5, 1e-15);
    /* A single bin: both CDFs are 1 everywhere. */
    const double one[] = {1.0};
    const double n[] = {5};
    assert_close(mw_drift_ks_binned(one, n, 1), 0.0, 0.0);
    assert_close(mw_drift_wasserstein_points(one, one, 1, one, n, 1), 0.0, 0.0);
    /* Positions must be finite and sorted. */
    const double unsorted[] = {0.0, 2.0, 1.0, 3.0};
    const double infinite[] = {-INFINITY, 1.0, 2.0, 3.0};
    assert_true(isnan(mw_drift_wasserstein_points(unsorted, ref_p, 4, values, last, 4)));
    assert_true(isnan(mw_drift_wasserstein_points(values, ref_p, 4, unsorted, last, 4)));
    assert_true(isnan(mw_drift_wasserstein_points(infinite, ref_p, 4, values, last, 4)));
    assert_true(isnan(mw_drift_wasserstein_points(values, ref_p, 4, infinite, last, 4)));
    assert_true(isnan(mw_drift_wasserstein_points(NULL, ref_p, 4, values, last, 4)));
}

/* Wasserstein between point sets, worked out by hand. */
static void test_wasserstein_points(void **state)
{
    (void)state;
    /* Disjoint supports, every reference point below every window point: W = the difference of
     * the means, 6.5 - 0.5. Either order. */
    const double low_x[] = {0.0, 1.0}, low_w[] = {1.0, 1.0};
    const double high_x[] = {5.0, 7.0}, high_w[] = {1.0, 3.0};
    assert_close(mw_drift_wasserstein_points(low_x, low_w, 2, high_x, high_w, 2), 6.0, 1e-15);
    assert_close(mw_drift_wasserstein_points(high_x, high_w, 2, low_x, low_w, 2), 6.0, 1e-15);
    /* Fractional weights, disjoint: means 2.8 * 2.5 / 2.8 = 2.5 and 10. */
    const double frac_x[] = {0.0, 2.8}, frac_w[] = {0.3, 2.5};
    const double far_x[] = {10.0}, far_w[] = {0.3};
    assert_close(mw_drift_wasserstein_points(frac_x, frac_w, 2, far_x, far_w, 1), 7.5, 1e-15);
    /* Two single points: their distance. */
    const double two[] = {2.0}, five[] = {5.0}, unit[] = {0.25};
    assert_close(mw_drift_wasserstein_points(two, unit, 1, five, unit, 1), 3.0, 0.0);

    /* Identical distributions, weights in another scale: exactly 0. */
    const double x[] = {-1.0, 0.5, 4.0};
    const double w[] = {1.0, 2.0, 1.0}, w_scaled[] = {2.5, 5.0, 2.5};
    assert_close(mw_drift_wasserstein_points(x, w, 3, x, w, 3), 0.0, 0.0);
    assert_close(mw_drift_wasserstein_points(x, w, 3, x, w_scaled, 3), 0.0, 0.0);

    /* Ties between the two sides' positions (and within one side): F_ref = 1/3, 2/3, 1 at
     * 0, 1, 2; F_cur = 0, 2/3, 1: only [0, 1) differs, by 1/3. */
    const double tie_ref_x[] = {0.0, 1.0, 2.0}, tie_ref_w[] = {1.0, 1.0, 1.0};
    const double tie_cur_x[] = {1.0, 1.0, 2.0}, tie_cur_w[] = {1.0, 1.0, 1.0};
    assert_close(mw_drift_wasserstein_points(tie_ref_x, tie_ref_w, 3, tie_cur_x, tie_cur_w, 3),
                 1.0 / 3.0, 1e-15);
    /* F_ref = 1/2 on [0, 2); F_cur = 1/4 on [0, 1), 3/4 on [1, 2): 1/4 + 1/4. */
    const double half_x[] = {0.0, 2.0}, half_w[] = {1.0, 1.0};
    const double mid_x[] = {0.0, 1.0, 2.0}, mid_w[] = {1.0, 2.0, 1.0};
    assert_close(mw_drift_wasserstein_points(half_x, half_w, 2, mid_x, mid_w, 3), 0.5, 1e-15);
    /* Fractional weights on shared positions: |0.3 / 2.8 - 1/2| over [0, 1) = 11/28. */
    const double pair_x[] = {0.0, 1.0}, pair_frac[] = {0.3, 2.5}, pair_even[] = {1.0, 1.0};
    assert_close(mw_drift_wasserstein_points(pair_x, pair_frac, 2, pair_x, pair_even, 2),
                 11.0 / 28.0, 1e-15);

    /* Zero weights are points that are not there, wherever they sit. */
    const double zero_end_x[] = {0.0, 1.0, 100.0}, zero_end_w[] = {1.0, 1.0, 0.0};
    const double zero_start_x[] = {-50.0, 0.0, 1.0}, zero_start_w[] = {0.0, 1.0, 1.0};
    assert_close(mw_drift_wasserstein_points(zero_end_x, zero_end_w, 3, pair_x, pair_even, 2), 0.0,
                 0.0);
    assert_close(mw_drift_wasserstein_points(pair_x, pair_even, 2, zero_start_x, zero_start_w, 3),
                 0.0, 0.0);
    assert_close(mw_drift_wasserstein_points(zero_end_x, zero_end_w, 3, far_x, far_w, 1), 9.5,
                 1e-15);
}

/* Input the Wasserstein distance cannot judge: NaN, whichever side it is on. */
static void test_wasserstein_points_invalid(void **state)
{
    (void)state;
    const double x[] = {0.0, 1.0, 2.0}, w[] = {1.0, 1.0, 1.0};
    const double unsorted_x[] = {0.0, 2.0, 1.0};
    const double nan_x[] = {0.0, NAN, 2.0};
    const double inf_x[] = {0.0, 1.0, INFINITY};
    const double negative_w[] = {1.0, -0.5, 1.0};
    const double nan_w[] = {1.0, NAN, 1.0};
    const double inf_w[] = {1.0, INFINITY, 1.0};
    const double zero_w[] = {0.0, 0.0, 0.0};
    const double *bad_x[] = {unsorted_x, nan_x, inf_x, NULL};
    const double *bad_w[] = {negative_w, nan_w, inf_w, zero_w, NULL};
    for (size_t i = 0; i < N_OF(bad_x); i++) {
        assert_true(isnan(mw_drift_wasserstein_points(bad_x[i], w, 3, x, w, 3)));
        assert_true(isnan(mw_drift_wasserstein_points(x, w, 3, bad_x[i], w, 3)));
    }
    for (size_t i = 0; i < N_OF(bad_w); i++) {
        assert_true(isnan(mw_drift_wasserstein_points(x, bad_w[i], 3, x, w, 3)));
        assert_true(isnan(mw_drift_wasserstein_points(x, w, 3, x, bad_w[i], 3)));
    }
    /* Empty sides. */
    assert_true(isnan(mw_drift_wasserstein_points(x, w, 0, x, w, 3)));
    assert_true(isnan(mw_drift_wasserstein_points(x, w, 3, x, w, 0)));
    assert_true(isnan(mw_drift_wasserstein_points(NULL, NULL, 0, NULL, NULL, 0)));
}

/* Weighted counts need not be integers: 2.5 and 0.3 are a window of 2.8. */
static void test_fractional_counts(void **state)
{
    (void)state;
    const double half[] = {0.5, 0.5};
    const double frac[] = {2.5, 0.3};
    /* c = (25/28, 3/28) */
    const double c0 = 2.5 / 2.8, c1 = 0.3 / 2.8;
    double psi = (c0 - 0.5) * log(c0 / 0.5) + (c1 - 0.5) * log(c1 / 0.5);
    assert_close(mw_drift_psi(half, frac, 2, MW_DRIFT_PSI_EPSILON), psi, 1e-14);
    /* Fractions that are exact in binary: (0.75, 0.25) is (3, 1). */
    const double quarters[] = {7.5, 2.5};
    assert_close(mw_drift_psi(half, quarters, 2, MW_DRIFT_PSI_EPSILON), log(3.0) / 4, 1e-15);

    /* JS: only the proportions count, so (0.3, 0.3) is (1, 1); disjoint fractional mass is 1. */
    const double point[] = {1.0, 0.0};
    const double even[] = {0.3, 0.3};
    assert_close(mw_drift_js_distance(point, even, 2), 0.46450140402245893 / sqrt(log(2.0)), 1e-15);
    const double ref4[] = {0.5, 0.5, 0.0, 0.0};
    const double disjoint[] = {0.0, 0.0, 2.5, 0.3};
    assert_close(mw_drift_js_distance(ref4, disjoint, 4), 1.0, 0.0);

    /* KS: F_ref = 1/4, 1/2, 3/4; F_cur = 0, 0, 0.3/2.8: the largest gap is 3/4 - 3/28 = 9/14. */
    const double quarter[] = {0.25, 0.25, 0.25, 0.25};
    const double late[] = {0.0, 0.0, 0.3, 2.5};
    assert_close(mw_drift_ks_binned(quarter, late, 4), 9.0 / 14.0, 1e-15);
    /* F_cur = 0, 0, 2.5/2.8: the gap 1/2 at the second boundary is the largest. */
    assert_close(mw_drift_ks_binned(quarter, disjoint, 4), 0.5, 1e-15);

    /* chi-squared: N = 2.8, e = (1.4, 1.4): 2 * 1.1^2 / 1.4 = 121 / 70, df 1. */
    double stat, p;
    assert_int_equal(mw_drift_chi2(half, frac, 2, &stat, &p), 0);
    assert_close(stat, 121.0 / 70.0, 1e-14);
    assert_close(p, erfc(sqrt(121.0 / 140.0)), 1e-13);
    /* A window below one observation: still a number. */
    const double tiny[] = {0.25, 0.0};
    assert_int_equal(mw_drift_chi2(half, tiny, 2, &stat, &p), 0);
    assert_close(stat, 0.25, 1e-15); /* e = (1/8, 1/8): (1/8)^2 / (1/8) * 2 */
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
    const double counts[] = {1, 2};
    const double empty[] = {0, 0};
    const double overflowing[] = {DBL_MAX, DBL_MAX}; /* the total is not a number */
    const double negative[] = {-1, 2};
    const double nan_cur[] = {NAN, 1};
    const double inf_cur[] = {INFINITY, 1};
    struct {
        const double *ref;
        const double *cur;
        size_t n;
    } bad[] = {
        {ref_p, empty, 2},    {zero_ref, counts, 2}, {negative_ref, counts, 2},
        {nan_ref, counts, 2}, {inf_ref, counts, 2},  {NULL, counts, 2},
        {ref_p, NULL, 2},     {ref_p, counts, 0},    {ref_p, overflowing, 2},
        {ref_p, negative, 2}, {ref_p, nan_cur, 2},   {ref_p, inf_cur, 2},
    };
    for (size_t i = 0; i < N_OF(bad); i++) {
        assert_true(isnan(mw_drift_psi(bad[i].ref, bad[i].cur, bad[i].n, 1e-4)));
        assert_true(isnan(mw_drift_js_distance(bad[i].ref, bad[i].cur, bad[i].n)));
        assert_true(isnan(mw_drift_ks_binned(bad[i].ref, bad[i].cur, bad[i].n)));
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
    const double counts[] = {30, 10, 0};
    double stat, p;
    /* e = (20, 20): (100 + 100) / 20 = 10, df 1 (the empty unseen slot is ignored);
     * chi2.sf(x, 1) = erfc(sqrt(x / 2)). */
    assert_int_equal(mw_drift_chi2(ref_p, counts, 3, &stat, &p), 0);
    assert_close(stat, 10.0, 1e-15);
    assert_close(p, erfc(sqrt(5.0)), 1e-13);
    /* Identical: statistic 0, p 1. */
    const double same[] = {1000000000, 1000000000, 0};
    assert_int_equal(mw_drift_chi2(ref_p, same, 3, &stat, &p), 0);
    assert_close(stat, 0.0, 0.0);
    assert_close(p, 1.0, 0.0);
}

static void test_chi2_unseen_and_undefined(void **state)
{
    (void)state;
    const double ref_p[] = {0.5, 0.5, 0.0};
    const double unseen[] = {30, 10, 1};
    double stat, p;
    assert_int_equal(mw_drift_chi2(ref_p, unseen, 3, &stat, &p), 0);
    assert_true(isinf(stat) && stat > 0);
    assert_true(p == 0.0);
    /* Leaving the unseen slot out tests the known categories only. */
    assert_int_equal(mw_drift_chi2(ref_p, unseen, 2, &stat, &p), 0);
    assert_close(stat, 10.0, 1e-15);

    /* Empty window: no test, not an error. */
    const double empty[] = {0, 0, 0};
    assert_int_equal(mw_drift_chi2(ref_p, empty, 3, &stat, &p), 0);
    assert_true(isnan(stat) && isnan(p));
    /* df = 0: one expected category. */
    const double single[] = {2.0, 0.0};
    const double all_in_it[] = {17, 0};
    assert_int_equal(mw_drift_chi2(single, all_in_it, 2, &stat, &p), 0);
    assert_close(stat, 0.0, 0.0);
    assert_true(isnan(p));

    /* An unseen category with a fractional weight is still impossible under the reference. */
    const double unseen_fraction[] = {30, 10, 0.3};
    assert_int_equal(mw_drift_chi2(ref_p, unseen_fraction, 3, &stat, &p), 0);
    assert_true(isinf(stat) && stat > 0 && p == 0.0);

    /* Malformed arguments: MW_EINVAL, outputs NaN. */
    const double zero_ref[] = {0.0, 0.0};
    const double counts[] = {1, 2};
    assert_int_equal(mw_drift_chi2(zero_ref, counts, 2, &stat, &p), MW_EINVAL);
    assert_true(isnan(stat) && isnan(p));
    const double negative[] = {-1, 2}, nan_cur[] = {NAN, 1}, inf_cur[] = {INFINITY, 1};
    const double negative_zero_total[] = {-1, 1};
    const double *bad_cur[] = {negative, nan_cur, inf_cur, negative_zero_total};
    for (size_t i = 0; i < N_OF(bad_cur); i++) {
        stat = p = 0.0;
        assert_int_equal(mw_drift_chi2(ref_p, bad_cur[i], 2, &stat, &p), MW_EINVAL);
        assert_true(isnan(stat) && isnan(p));
    }
    /* A total that overflows gives no number (the contract names no return code for it). */
    const double overflowing[] = {DBL_MAX, DBL_MAX};
    stat = p = 0.0;
    int rc = mw_drift_chi2(ref_p, overflowing, 2, &stat, &p);
    assert_true(rc == 0 || rc == MW_EINVAL);
    assert_true(isnan(stat) && isnan(p));
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
        cmocka_unit_test(test_grid_slot_layout),
        cmocka_unit_test(test_grid_slot_degenerate),
        cmocka_unit_test(test_psi_closed_forms),
        cmocka_unit_test(test_js_closed_forms),
        cmocka_unit_test(test_ks_and_wasserstein),
        cmocka_unit_test(test_wasserstein_points),
        cmocka_unit_test(test_wasserstein_points_invalid),
        cmocka_unit_test(test_fractional_counts),
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
