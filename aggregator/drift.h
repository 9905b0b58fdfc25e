/*
 * drift.h — drift statistics of one window against a model's reference profile.
 *
 * The window's state is mergeable weighted counts, so any aggregator replica can add to it in
 * Redis:
 *
 *   numeric feature   The reference profile holds the feature's range [min, max] and a fine
 *                     grid of cut points c_1 < ... < c_k strictly inside it (its percentiles and
 *                     deciles). They make k + 3 ordered slots (mw_grid_slot, common/grid.h):
 *                       slot 0           below the range   (-inf, min)
 *                       slot 1           [min, c_1)
 *                       slot i, 2..k     [c_{i-1}, c_i)
 *                       slot k + 1       [c_k, max]
 *                       slot k + 2       above the range   (max, +inf)
 *                     The reference has no mass below or above its own range. PSI and JS use
 *                     the coarser decile regions plus the two out-of-range slots; KS and
 *                     Wasserstein use every slot.
 *   categorical       The reference holds categories with proportions, plus an "other /
 *                     unseen" slot (proportion 0 or small) as the last bin. A window holds a
 *                     count per reference category plus the count of unseen categories.
 *
 * Every statistic takes the reference proportions `ref_p` and the window's weighted counts
 * `cur` over the same `n_bins` bins. Neither need sum to 1: each is normalized by its sum.
 * Entries must be finite and >= 0 with a positive sum; otherwise, and for NULL arrays, zero bins
 * or an empty window, the result is NaN: "no value for this window", never a crash.
 * The functions are pure: no allocation, no state, safe from any thread; arrays are borrowed for
 * the duration of the call.
 */
#ifndef MW_AGGREGATOR_DRIFT_H
#define MW_AGGREGATOR_DRIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grid.h" /* the slots of a numeric feature: mw_grid_slot */

/* Default floor for proportions in PSI: a bin empty on one side contributes about
 * (p - 1e-4) ln(p / 1e-4) instead of infinity, e.g. 0.83 for p = 0.1. */
#define MW_DRIFT_PSI_EPSILON 1e-4

/*
 * Turn sorted reference quantiles into bin edges in place: drops repeated values (a constant
 * feature has all its quantiles equal and ends with a single edge) and stores the number of
 * edges kept in *n_unique. Returns 0, or MW_EINVAL (edges untouched) for NULL pointers, n = 0,
 * a non-finite value, or values that decrease.
 */
int mw_drift_edges_unique(double *edges, size_t n, size_t *n_unique);

/*
 * Population stability index: sum over bins of (c_i - r_i) ln(c_i / r_i), with r the reference
 * proportions, c the window's, both floored at `epsilon` (after normalization, without
 * renormalizing) so an empty bin gives a large finite term rather than infinity. Pass
 * MW_DRIFT_PSI_EPSILON unless the profile says otherwise. >= 0; 0 for identical proportions.
 * NaN for the degenerate inputs above or epsilon outside (0, 1).
 */
double mw_drift_psi(const double *ref_p, const double *cur, size_t n_bins, double epsilon);

/*
 * Jensen–Shannon distance in base 2: sqrt((KL(r || m) + KL(c || m)) / 2) with m = (r + c) / 2,
 * logarithms base 2; equals scipy.spatial.distance.jensenshannon(r, c, base=2). In [0, 1]:
 * 0 for identical distributions, 1 for disjoint supports. NaN for degenerate inputs.
 */
double mw_drift_js_distance(const double *ref_p, const double *cur, size_t n_bins);

/*
 * Kolmogorov–Smirnov statistic of the binned distributions: max over bin boundaries of
 * |F_ref - F_cur|, the cumulative proportions. In [0, 1]. It never exceeds the two-sample KS
 * statistic of the raw samples and falls short of it by at most the largest bin proportion
 * (the oracle test checks both). Only meaningful for ordered (numeric) bins. NaN for degenerate
 * inputs.
 */
double mw_drift_ks_binned(const double *ref_p, const double *cur, size_t n_bins);

/*
 * Wasserstein-1 (earth mover's) distance between two distributions of point masses: weights
 * ref_w at positions ref_x, and cur_w at cur_x; each side's positions finite and non-decreasing,
 * its weights >= 0 with a positive sum (normalized here). Equals
 * scipy.stats.wasserstein_distance(ref_x, cur_x, ref_w, cur_w), in the positions' units. NaN
 * for NULL arrays, empty sides or invalid values.
 */
double mw_drift_wasserstein_points(const double *ref_x, const double *ref_w, size_t n_ref,
                                   const double *cur_x, const double *cur_w, size_t n_cur);

/*
 * Pearson chi-squared goodness of fit of the window counts o_i against expected counts
 * e_i = r_i N (r normalized, N the window total; pass counts of values actually observed, not
 * weights, for a meaningful p-value): statistic sum (o_i - e_i)^2 / e_i over bins
 * with r_i > 0, df = (number of bins with r_i > 0) - 1, p-value = mw_chi2_sf(statistic, df).
 * Equals scipy.stats.chisquare(o, e) over the bins with r_i > 0.
 *
 * A bin with r_i = 0 but o_i > 0 (a category the reference never saw) is impossible under the
 * reference: the statistic is then +inf and the p-value 0. Bins with r_i = 0 and o_i = 0 are
 * ignored. To test only the known categories, leave the unseen slot out of n_bins.
 *
 * Returns 0 with both outputs set when the arguments are well formed; then an empty window
 * gives NaN for both, and df = 0 (a single category with r_i > 0 and nothing unseen) gives a
 * statistic of 0 and a NaN p-value, as scipy does. Returns MW_EINVAL, outputs NaN (when not
 * NULL), for NULL pointers, n_bins = 0, or an invalid ref_p (see above).
 */
int mw_drift_chi2(const double *ref_p, const double *cur, size_t n_bins, double *statistic,
                  double *p_value);

/*
 * Asymptotic p-value of a two-sample Kolmogorov–Smirnov statistic `d` between samples of sizes
 * n_ref and n_cur: Q_KS(en d) with en = sqrt(n_ref n_cur / (n_ref + n_cur)) and Q_KS the
 * Kolmogorov distribution's survival function, 2 sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lambda^2)
 * (scipy.stats.kstwobign.sf; the oracle test checks it to 1e-10 absolute). The sizes are
 * doubles so a caller can pass effective sample sizes; with d from mw_drift_ks_binned the
 * p-value is approximate (the binned statistic is at most the raw one, so the p-value is at
 * least the raw one's: conservative). In [0, 1]; 1 for lambda = en d < 0.2, where Q_KS > 1 -
 * 1e-12. NaN for NaN or negative d, and for NaN or non-positive sizes; an infinite size is the
 * one-sample limit en = the other size.
 */
double mw_drift_ks_p_value(double d, double n_ref, double n_cur);

/* part / total, NaN when total is 0 or part > total. The named variants below document which
 * counters a caller passes. */
double mw_drift_rate(uint64_t part, uint64_t total);

/* Share of a categorical feature's values in the window that the reference never saw; `total`
 * counts every non-missing value, unseen included. */
double mw_drift_unseen_share(uint64_t unseen, uint64_t total);

/* Share of the window's events in which the feature was missing; `total` counts every event,
 * missing included. */
double mw_drift_missing_rate(uint64_t missing, uint64_t total);

/* Share of a numeric feature's values outside [ref_min, ref_max] (see mw_drift_out_of_range);
 * `total` counts every non-missing value. */
double mw_drift_out_of_range_rate(uint64_t out_of_range, uint64_t total);

/* Whether x lies outside the reference range [ref_min, ref_max]; NaN x is not "out of range"
 * (it is missing). */
bool mw_drift_out_of_range(double x, double ref_min, double ref_max);

#endif
