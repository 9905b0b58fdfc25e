/*
 * signals_drift.h — drift of one window against a reference profile, as typed signals.
 *
 * Reads the window's drift fields (window_apply.h: d|F|g<slot>, d|F|s<slot>, d|F|c|<category>,
 * d|F|n, d|F|obs, ...) once, and computes per profiled feature the statistics of drift.h:
 *   numeric       PSI and Jensen–Shannon on the profile's decile regions plus a region below
 *                 and above its range; KS on every slot of the fine grid, its asymptotic p-value
 *                 with the number of values observed (not their weights); Wasserstein-1 with
 *                 each slot's mass at its position (the window's own mean in the outer slots,
 *                 the reference's mean of the slot inside), raw and in reference standard
 *                 deviations; the shares below and above the reference range.
 *   categorical   PSI, Jensen–Shannon, chi-squared on the observed number of values, the share
 *                 of categories the reference never saw.
 * Shares are weighted (unbiased under sampling); test sample sizes are observed counts.
 *
 * A feature whose window observed fewer than the configured min_values gets the verdict
 * insufficient_data (its statistics are still given). A window whose drift fields were binned
 * by another profile than `profile` (pushed or corrected after the traffic, or none at all) is
 * read through the profile-independent sketch of its numeric features (value_sketch.h), kept
 * for records applied while no profile was in force, and for every record with
 * drift.sketch_always: each bucket's mass spread uniformly over its interval onto the profile's
 * slots, and placed at its representative value for Wasserstein. Accuracy then (tests/
 * integration/test_drift_accuracy.py): PSI and JS within 5 % relative or 0.005, KS D within
 * 0.02, Wasserstein within MW_SKETCH_ALPHA of the values' mean magnitude plus 0.01 reference
 * standard deviations; the observed count is the sketch's weight times the window's records per
 * unit of weight (exact under one sampling rate); missing and type-violation rates are unknown.
 * Without a sketch, and for categorical features, such a window's drift is unknown.
 */
#ifndef MW_AGGREGATOR_SIGNALS_DRIFT_H
#define MW_AGGREGATOR_SIGNALS_DRIFT_H

#include "aggregator_config.h"
#include "profile.h"
#include "schema.h"

#include <stdbool.h>
#include <stddef.h>

enum mw_drift_verdict {
    MW_DRIFT_VERDICT_NONE,
    MW_DRIFT_VERDICT_POSSIBLE,
    MW_DRIFT_VERDICT_DRIFT,
    MW_DRIFT_VERDICT_INSUFFICIENT_DATA,
    MW_DRIFT_VERDICT_UNKNOWN, /* binned by another profile */
};

/* "none", "possible", "drift", "insufficient_data", "unknown". */
const char *mw_drift_verdict_name(enum mw_drift_verdict v);

/* What a feature's statistics were computed from. */
enum mw_drift_basis {
    MW_DRIFT_BASIS_NONE,         /* nothing readable: verdict unknown */
    MW_DRIFT_BASIS_PROFILE_GRID, /* the grid of the profile that binned the window: exact */
    MW_DRIFT_BASIS_SKETCH,       /* the profile-independent sketch (value_sketch.h) */
};

/* One feature's drift in one window; NaN where a statistic has no value. */
struct mw_drift_feature_signal {
    const char *feature; /* borrowed from the profile */
    bool numeric;
    enum mw_drift_basis basis;
    double count;    /* weighted values seen */
    double observed; /* values seen, unweighted */
    int64_t min_values;
    double missing_rate, type_violation_rate;
    double psi, js_distance;
    /* numeric */
    double ks, ks_p_value, wasserstein, wasserstein_normed;
    double out_of_range_rate, below_range_rate, above_range_rate;
    /* categorical */
    double chi2_statistic, chi2_p_value, unseen_share;
    enum mw_drift_verdict verdict; /* under the feature's own thresholds */
};

struct mw_drift_signals {
    size_t n_features;
    struct mw_drift_feature_signal *features; /* in the profile's (name) order */
    enum mw_drift_verdict verdict;            /* the model's: Bonferroni across features */
};

/* Compute the drift of window `w` (its fields, records and weighted records) against
 * `profile` into *out (free with mw_drift_signals_free; the feature names are borrowed from the
 * profile). Returns 0 or MW_ENOMEM. */
int mw_drift_signals_compute(const struct mw_window *w, const struct mw_profile *profile,
                             const struct mw_aggregator_config *cfg, struct mw_drift_signals *out);
void mw_drift_signals_free(struct mw_drift_signals *s); /* accepts NULL */

#endif
