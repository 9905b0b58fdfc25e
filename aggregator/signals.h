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
/* A JSON string of text that came from outside (a model version, from a batch or a query): JSON
 * must be UTF-8, so bytes that are not well-formed UTF-8 become U+FFFD, the replacement
 * /metrics shows too (mw_prom_utf8_copy). NULL text gives JSON null. New reference. */
json_t *mw_signals_json_text(const char *text);

json_t *mw_signals_window_json(const struct mw_window_fields *w, int64_t start_ms, int64_t width_ms,
                               const char *version, bool final,
                               const struct mw_aggregator_config *cfg);

/* Drift of every feature of `profile` in this window (signals_drift.h), as the JSON array of
 * mw_drift_signals_json; an empty array when out of memory. */
json_t *mw_signals_drift_json(const struct mw_window_fields *w, const struct mw_profile *profile,
                              const struct mw_aggregator_config *cfg);

#endif
