/*
 * signals.h — a window's merged counters (one Redis hash, see window_apply.h) turned into the
 * signals people read: service (requests, errors, latency percentiles), cost per 1k
 * predictions, and drift of every profiled feature against its reference profile.
 *
 * Pure functions over the hash's fields, so the API, /metrics and tests share them.
 */
#ifndef MW_AGGREGATOR_SIGNALS_H
#define MW_AGGREGATOR_SIGNALS_H

#include "aggregator_config.h"
#include "profile.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fields of one window hash, as name/value text pairs (borrowed). */
struct mw_window_fields {
    size_t n;
    const char *const *names;
    const char *const *values;
};

/* Numeric value of field `name` (0 when absent). */
double mw_window_field(const struct mw_window_fields *w, const char *name);

/* Service and cost signals of one window as a JSON object (new reference). `final` says whether
 * the window can still change. */
json_t *mw_signals_window_json(const struct mw_window_fields *w, int64_t start_ms, int64_t width_ms,
                               const char *version, bool final,
                               const struct mw_aggregator_config *cfg);

/* Drift of every feature of `profile` in this window: a JSON array of per-feature objects
 * (feature, type, count, missing_rate, type_violation_rate, and psi, js_distance, ks,
 * ks_p_value, wasserstein, wasserstein_normed (in reference standard deviations),
 * out_of_range_rate for numeric features; psi, js_distance, chi2_statistic, chi2_p_value,
 * unseen_share for categorical ones; and a verdict: none / possible / drift under the
 * configured thresholds). A statistic that cannot be computed (empty window) is null. */
json_t *mw_signals_drift_json(const struct mw_window_fields *w, const struct mw_profile *profile,
                              const struct mw_aggregator_config *cfg);

/* The model's verdict over the features of mw_signals_drift_json: "drift" when a feature has
 * drifted, "possible" when one possibly has (tests at p_value / number of features,
 * Bonferroni), else "none". Static string. */
const char *mw_signals_drift_verdict(const json_t *features,
                                     const struct mw_aggregator_config *cfg);

#endif
