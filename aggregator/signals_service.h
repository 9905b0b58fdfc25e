/*
 * signals_service.h — a window's service signals: requests, errors and their rate, errors by
 * code, and latency quantiles and mean from its merged latency histogram.
 *
 * Counts are exact whatever the sampling (agents ship exact counters); quantiles are within
 * the histogram's 1 % relative error (common/latency_hist.h), by the nearest-rank rule.
 */
#ifndef MW_AGGREGATOR_SIGNALS_SERVICE_H
#define MW_AGGREGATOR_SIGNALS_SERVICE_H

#include "schema.h"

#include <stddef.h>
#include <stdint.h>

struct mw_service_signals {
    int64_t count, errors;
    int64_t records, feedback, tokens_in, tokens_out, late, late_records;
    double weighted_records;
    double error_rate; /* errors / count; NaN without requests */
    size_t n_error_codes;
    const struct mw_window_error_code *error_codes; /* the window's (borrowed: valid as long
                                                       as the window is) */
    /* Microseconds; NaN when the histogram is empty. The mean is the exact sum over the
     * histogram's count. */
    double latency_p50_us, latency_p90_us, latency_p95_us, latency_p99_us, latency_mean_us;
};

/* Compute the service signals of `w` into *out. Returns 0 or MW_ENOMEM (the histogram is
 * merged on the heap). */
int mw_service_signals_compute(const struct mw_window *w, struct mw_service_signals *out);

#endif
