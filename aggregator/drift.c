/*
 * drift.c — PSI, Jensen–Shannon, binned KS (with its asymptotic p-value) and Wasserstein,
 * chi-squared and data-quality rates of a window's bin counts against a reference profile (see
 * drift.h for the data model).
 *
 * Numerics: the reference and the window's (weighted) counts are normalized by compensated
 * sums, so each proportion carries one or two roundings whatever the counts (1e9 per bin
 * included). tests/oracle/test_drift_oracle.py checks every statistic against numpy/scipy.
 */
#include "drift.h"

#include "chi2.h"
#include "error.h"

#include <math.h>

/*
 * Sum of the reference proportions (Neumaier's compensated summation, so normalization adds
 * about one rounding however many bins), or NaN when `ref_p` is unusable: an entry negative,
 * NaN or infinite, or a sum that is not positive and finite.
 */
static double reference_sum(const double *ref_p, size_t n_bins)
{
    double sum = 0.0, compensation = 0.0;
    for (size_t i = 0; i < n_bins; i++) {
        double v = ref_p[i];
        if (!(v >= 0.0) || isinf(v))
            return NAN;
        double t = sum + v;
        if (fabs(sum) >= fabs(v))
            compensation += (sum - t) + v;
        else
            compensation += (v - t) + sum;
        sum = t;
    }
    sum += compensation;
    return sum > 0.0 && isfinite(sum) ? sum : NAN;
}

/*
 * The checks every statistic starts with. On success stores the reference sum and the window
 * total and returns true; returns false for NULL arrays, zero bins, an invalid reference, or
 * window weights that are negative, not finite, or all zero.
 */
static bool prepare(const double *ref_p, const double *cur, size_t n_bins, double *ref_sum,
                    double *total)
{
    if (!ref_p || !cur || n_bins == 0)
        return false;
    *ref_sum = reference_sum(ref_p, n_bins);
    *total = reference_sum(cur, n_bins);
    return !isnan(*ref_sum) && !isnan(*total);
}

int mw_drift_edges_unique(double *edges, size_t n, size_t *n_unique)
{
    if (!edges || !n_unique || n == 0)
        return MW_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(edges[i]) || (i > 0 && edges[i] < edges[i - 1]))
            return MW_EINVAL;
    }
    size_t kept = 1;
    for (size_t i = 1; i < n; i++) {
        if (edges[i] != edges[kept - 1])
            edges[kept++] = edges[i];
    }
    *n_unique = kept;
    return 0;
}

double mw_drift_psi(const double *ref_p, const double *cur, size_t n_bins, double epsilon)
{
    double ref_sum, total;
    if (!(epsilon > 0.0 && epsilon < 1.0) || !prepare(ref_p, cur, n_bins, &ref_sum, &total))
        return NAN;
    double psi = 0.0;
    for (size_t i = 0; i < n_bins; i++) {
        double r = fmax(ref_p[i] / ref_sum, epsilon);
        double c = fmax(cur[i] / total, epsilon);
        psi += (c - r) * log(c / r);
    }
    return psi;
}

double mw_drift_js_distance(const double *ref_p, const double *cur, size_t n_bins)
{
    double ref_sum, total;
    if (!prepare(ref_p, cur, n_bins, &ref_sum, &total))
        return NAN;
    /* Natural logs as scipy sums them (rel_entr), converted to base 2 at the end; a term with
     * zero mass is 0 (x ln x -> 0), and m > 0 wherever either side has mass. */
    double left = 0.0, right = 0.0;
    for (size_t i = 0; i < n_bins; i++) {
        double p = ref_p[i] / ref_sum;
        double q = cur[i] / total;
        double m = (p + q) / 2.0;
        if (p > 0.0)
            left += p * log(p / m);
        if (q > 0.0)
            right += q * log(q / m);
    }
    double divergence = (left + right) / log(2.0) / 2.0;
    /* Rounding can leave the divergence a few ulps outside [0, 1]. */
    return sqrt(fmin(fmax(divergence, 0.0), 1.0));
}

double mw_drift_ks_binned(const double *ref_p, const double *cur, size_t n_bins)
{
    double ref_sum, total;
    if (!prepare(ref_p, cur, n_bins, &ref_sum, &total))
        return NAN;
    double ref_cum = 0.0, cur_cum = 0.0, ks = 0.0;
    /* Both CDFs are 1 after the last bin, so its boundary is skipped. */
    for (size_t i = 0; i + 1 < n_bins; i++) {
        ref_cum += ref_p[i];
        cur_cum += cur[i];
        double d = fabs(ref_cum / ref_sum - cur_cum / total);
        ks = fmax(ks, d);
    }
    return fmin(ks, 1.0);
}

/* Checks one side of mw_drift_wasserstein_points and returns its total weight, or NaN. */
static double points_total(const double *x, const double *w, size_t n)
{
    if (!x || !w || n == 0)
        return NAN;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || (i > 0 && x[i] < x[i - 1]))
            return NAN;
    }
    return reference_sum(w, n);
}

double mw_drift_wasserstein_points(const double *ref_x, const double *ref_w, size_t n_ref,
                                   const double *cur_x, const double *cur_w, size_t n_cur)
{
    double ref_total = points_total(ref_x, ref_w, n_ref);
    double cur_total = points_total(cur_x, cur_w, n_cur);
    if (isnan(ref_total) || isnan(cur_total))
        return NAN;
    /* W1 on the line is the integral of |F_ref - F_cur|: walk the merged support in order; both
     * CDFs are constant between consecutive support points. */
    size_t i = 0, j = 0;
    double ref_cum = 0.0, cur_cum = 0.0, w = 0.0;
    double at = fmin(ref_x[0], cur_x[0]);
    while (i < n_ref || j < n_cur) {
        double next = j >= n_cur || (i < n_ref && ref_x[i] <= cur_x[j]) ? ref_x[i] : cur_x[j];
        w += fabs(ref_cum / ref_total - cur_cum / cur_total) * (next - at);
        at = next;
        while (i < n_ref && ref_x[i] == at)
            ref_cum += ref_w[i++];
        while (j < n_cur && cur_x[j] == at)
            cur_cum += cur_w[j++];
    }
    return w;
}

/* Below this lambda Q_KS(lambda) = 1 - (< 5e-13) and 1 is returned. */
#define KS_LAMBDA_ONE 0.2
/* From here up the alternating series converges fast (its second term is < 3.4e-4 of the first);
 * below, the dual (Jacobi theta) series does. */
#define KS_LAMBDA_SERIES 1.0

/*
 * Q_KS(lambda) = P(K > lambda) for the Kolmogorov distribution K, lambda >= 0 (or +inf).
 * Both series have terms that fall at least geometrically, so each stops when a term no longer
 * changes the sum; the loop bound is a guard only (at most 5 terms are ever needed).
 */
static double ks_survival(double lambda)
{
    if (lambda < KS_LAMBDA_ONE)
        return 1.0;
    if (lambda < KS_LAMBDA_SERIES) {
        /* 1 - K(lambda), K(lambda) = sqrt(2 pi) / lambda sum_{k>=1} exp(-(2k-1)^2 pi^2 /
         * (8 lambda^2)): no cancellation inside the sum, all terms positive. */
        const double pi = 3.14159265358979323846;
        double w = pi * pi / (8.0 * lambda * lambda), cdf = 0.0;
        for (int k = 1; k <= 50; k++) {
            double odd = 2.0 * k - 1.0;
            double term = exp(-odd * odd * w);
            cdf += term;
            if (term <= cdf * 1e-17)
                break;
        }
        cdf *= sqrt(2.0 * pi) / lambda;
        return fmin(fmax(1.0 - cdf, 0.0), 1.0);
    }
    double sum = 0.0, sign = 1.0;
    for (int j = 1; j <= 50; j++) {
        double term = exp(-2.0 * j * j * lambda * lambda);
        sum += sign * term;
        sign = -sign;
        if (term <= sum * 1e-17) /* also ends the loop when term is 0 (lambda = inf) */
            break;
    }
    return fmin(fmax(2.0 * sum, 0.0), 1.0);
}

double mw_drift_ks_p_value(double d, double n_ref, double n_cur)
{
    if (!(d >= 0.0) || !(n_ref > 0.0) || !(n_cur > 0.0))
        return NAN;
    if (d == 0.0)
        return 1.0; /* also for infinite sizes, where en d would be inf * 0 */
    /* The harmonic form cannot overflow for huge sizes and takes an infinite one as the limit. */
    double en = sqrt(1.0 / (1.0 / n_ref + 1.0 / n_cur));
    return ks_survival(en * d);
}

int mw_drift_chi2(const double *ref_p, const double *cur, size_t n_bins, double *statistic,
                  double *p_value)
{
    if (statistic)
        *statistic = NAN;
    if (p_value)
        *p_value = NAN;
    if (!ref_p || !cur || n_bins == 0 || !statistic || !p_value)
        return MW_EINVAL;
    double ref_sum = reference_sum(ref_p, n_bins);
    if (isnan(ref_sum))
        return MW_EINVAL;
    double total = 0.0;
    for (size_t i = 0; i < n_bins; i++) {
        if (!(cur[i] >= 0.0) || isinf(cur[i]))
            return MW_EINVAL;
        total += cur[i];
    }
    if (total == 0.0)
        return 0; /* nothing observed: no test, not an error */

    double stat = 0.0;
    size_t n_expected = 0;
    bool unseen = false;
    for (size_t i = 0; i < n_bins; i++) {
        if (ref_p[i] == 0.0) {
            unseen = unseen || cur[i] > 0;
            continue;
        }
        n_expected++;
        double expected = ref_p[i] / ref_sum * total;
        double diff = cur[i] - expected;
        stat += diff * diff / expected;
    }
    if (unseen) {
        *statistic = INFINITY;
        *p_value = 0.0;
        return 0;
    }
    *statistic = stat;
    /* n_expected >= 1 since ref_sum > 0; with df = 0 the test is undefined (p stays NaN). */
    if (n_expected > 1)
        *p_value = mw_chi2_sf(stat, (double)(n_expected - 1));
    return 0;
}

double mw_drift_rate(uint64_t part, uint64_t total)
{
    if (total == 0 || part > total)
        return NAN;
    return (double)part / (double)total;
}

double mw_drift_unseen_share(uint64_t unseen, uint64_t total)
{
    return mw_drift_rate(unseen, total);
}

double mw_drift_missing_rate(uint64_t missing, uint64_t total)
{
    return mw_drift_rate(missing, total);
}

double mw_drift_out_of_range_rate(uint64_t out_of_range, uint64_t total)
{
    return mw_drift_rate(out_of_range, total);
}

bool mw_drift_out_of_range(double x, double ref_min, double ref_max)
{
    return x < ref_min || x > ref_max;
}
