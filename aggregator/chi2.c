/*
 * chi2.c — regularized incomplete gamma function Q(a, x) and the chi-squared survival function.
 *
 * Numerical Recipes' scheme (gser/gcf): for x < a + 1 the series for P(a, x) converges in
 * O(sqrt(a)) terms and Q = 1 - P loses nothing that matters (Q is not small there for a >= 1/2);
 * for x >= a + 1 the modified Lentz continued fraction yields Q directly, with relative accuracy
 * even when Q is 1e-300. Both are multiplied by the prefactor e^-x x^a / Γ(a), computed in log
 * space. For a >= 10 the log prefactor uses Stirling's series and log1p, so its rounding error
 * is about u·|x - a| instead of u·a·ln(x) (u = 2^-53): that is what keeps chi2.sf accurate to
 * ~1e-12 at df = 1000 and beyond.
 */
#include "chi2.h"

#include <float.h>
#include <math.h>

/* Relative size of the last term (series) or the last factor's distance from 1 (continued
 * fraction) at which an expansion is considered converged. */
#define GAMMA_EPS DBL_EPSILON
/* Lentz's guard against division by zero: a number near the smallest normal double. */
#define GAMMA_FPMIN (DBL_MIN / DBL_EPSILON)

/* Both expansions need O(sqrt(a)) steps near x ~ a (about 8.5·sqrt(a) for the series at
 * x = a + 1); the constant part covers small a. Beyond this they are declared non-convergent. */
static double max_iterations(double a)
{
    return 1000.0 + 20.0 * sqrt(a);
}

/* ln Γ(a) - ((a - 1/2) ln a - a + ln(2π)/2) for a >= 10, from Stirling's series. The first
 * omitted term is below 2e-14 at a = 10 and shrinks as a^-11. */
static double stirling_remainder(double a)
{
    double r = 1.0 / a, r2 = r * r;
    return r * (1.0 / 12 -
                r2 * (1.0 / 360 - r2 * (1.0 / 1260 - r2 * (1.0 / 1680 - r2 * (1.0 / 1188)))));
}

/* ln(e^-x x^a / Γ(a)) for a > 0, x > 0. lgamma_r rather than lgamma: lgamma writes the global
 * signgam, which would make this module unsafe to call from several threads. */
static double log_prefactor(double a, double x)
{
    if (a < 10.0) {
        int sign;
        return a * log(x) - x - lgamma_r(a, &sign);
    }
    /* With t = (x - a) / a: a ln x - x - ln Γ(a) = a (ln(1 + t) - t) + ln(a / 2π) / 2 - R(a). */
    static const double two_pi = 6.283185307179586476925286766559;
    double t = (x - a) / a;
    double log_ratio = fabs(t) < 0.5 ? log1p(t) : log(x / a);
    return a * (log_ratio - t) + 0.5 * log(a / two_pi) - stirling_remainder(a);
}

/* P(a, x) by its power series; x < a + 1. NaN if it does not converge. */
static double gamma_p_series(double a, double x)
{
    double limit = max_iterations(a);
    double ap = a;
    double term = 1.0 / a;
    double sum = term;
    for (double n = 1; n <= limit; n++) {
        ap += 1.0;
        term *= x / ap;
        sum += term;
        if (fabs(term) < fabs(sum) * GAMMA_EPS)
            return sum * exp(log_prefactor(a, x));
    }
    return NAN;
}

/* Q(a, x) by its continued fraction (modified Lentz); x >= a + 1. NaN if it does not
 * converge. */
static double gamma_q_fraction(double a, double x)
{
    double limit = max_iterations(a);
    double b = x + 1.0 - a;
    double c = 1.0 / GAMMA_FPMIN;
    double d = 1.0 / b;
    double h = d;
    for (double i = 1; i <= limit; i++) {
        double an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if (fabs(d) < GAMMA_FPMIN)
            d = GAMMA_FPMIN;
        c = b + an / c;
        if (fabs(c) < GAMMA_FPMIN)
            c = GAMMA_FPMIN;
        d = 1.0 / d;
        double delta = d * c;
        h *= delta;
        if (fabs(delta - 1.0) < GAMMA_EPS)
            return exp(log_prefactor(a, x)) * h;
    }
    return NAN;
}

double mw_gamma_q(double a, double x)
{
    if (isnan(a) || isnan(x) || !(a > 0.0) || isinf(a) || x < 0.0)
        return NAN;
    if (x == 0.0)
        return 1.0;
    if (isinf(x))
        return 0.0;
    if (x < a + 1.0) {
        double p = gamma_p_series(a, x);
        return isnan(p) ? NAN : fmax(0.0, 1.0 - p); /* rounding may push p past 1 */
    }
    return gamma_q_fraction(a, x);
}

double mw_chi2_sf(double x, double df)
{
    if (isnan(x) || isnan(df) || !(df > 0.0) || isinf(df))
        return NAN;
    if (x <= 0.0)
        return 1.0;
    return mw_gamma_q(0.5 * df, 0.5 * x);
}
