/*
 * chi2.h — the chi-squared survival function, for the p-value of the categorical drift test.
 *
 * Implemented on the regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a):
 * a power series for P = 1 - Q when x < a + 1, a Lentz continued fraction for Q otherwise (the
 * Numerical Recipes split), so each branch converges quickly and the continued fraction keeps
 * relative accuracy deep into the tail. Own implementation, no GSL: results agree with
 * scipy.stats.chi2.sf to about 1e-12 relative (tests/oracle/test_drift_oracle.py).
 *
 * All functions are pure (no state, no allocation, thread-safe) and return NaN rather than
 * failing on arguments outside their domain.
 */
#ifndef MW_AGGREGATOR_CHI2_H
#define MW_AGGREGATOR_CHI2_H

/*
 * Q(a, x), the regularized upper incomplete gamma function, for a > 0 (finite) and x >= 0.
 * Q(a, 0) = 1, Q(a, +inf) = 0. NaN for NaN arguments, a <= 0, a infinite, x < 0, or (never
 * seen for a below 1e12) if neither expansion converges. Results below about 1e-308 underflow
 * to 0.
 */
double mw_gamma_q(double a, double x);

/*
 * Survival function of the chi-squared distribution with `df` degrees of freedom:
 * P(X > x) = Q(df / 2, x / 2), the same as scipy.stats.chi2.sf(x, df). df need not be an
 * integer but must be > 0 and finite; x <= 0 gives 1, x = +inf gives 0; NaN for NaN arguments
 * or df outside that range.
 */
double mw_chi2_sf(double x, double df);

#endif
