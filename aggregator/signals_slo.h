/*
 * signals_slo.h — service level objectives: what one window attains, and how fast the recent
 * past burns the error budget (multi-window, multi-burn-rate, after the SRE workbook).
 *
 * Attainment of a window, against the config's slo.*:
 *   availability        1 - errors / count, met when >= slo.availability
 *   latency_attainment  the share of requests within slo.latency_threshold: whole histogram
 *                       buckets whose upper bound is at or below the threshold, so within the
 *                       histogram's 1 % on the threshold; met when >= slo.latency_target
 *
 * Burn rates as of a time `at`: over each lookback (5m 30m 1h 2h 6h 1d 3d) the error ratio is
 * the errors over the requests of the windows that start in [at - lookback, at) — fine windows
 * for lookbacks up to MW_SLO_FINE_LOOKBACK_MAX_MS, coarse ones beyond — and a lookback's burn
 * rate is its error ratio over the error budget, 1 - slo.availability. A pair (long, short)
 * burns when both its rates exceed its threshold: (1h, 5m) x14.4, (6h, 30m) x6, (1d, 2h) x3,
 * (3d, 6h) x1.
 */
#ifndef MW_AGGREGATOR_SIGNALS_SLO_H
#define MW_AGGREGATOR_SIGNALS_SLO_H

#include "aggregator_config.h"
#include "schema.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- one window ----------------------------------------------------------------------------- */

enum mw_slo_verdict {
    MW_SLO_UNKNOWN, /* nothing to judge: no requests, or no latencies */
    MW_SLO_MET,
    MW_SLO_MISSED,
};

struct mw_slo_attainment {
    double availability; /* NaN without requests */
    double availability_target;
    enum mw_slo_verdict availability_met;
    double latency_attainment; /* NaN without latencies */
    int64_t latency_threshold_ms;
    double latency_target;
    enum mw_slo_verdict latency_met;
};

void mw_slo_attainment_compute(const struct mw_window *w, const struct mw_aggregator_config *cfg,
                               struct mw_slo_attainment *out);

/* ---- burn rates ----------------------------------------------------------------------------- */

#define MW_SLO_N_LOOKBACKS 7
#define MW_SLO_N_BURN_PAIRS 4
#define MW_SLO_FINE_LOOKBACK_MAX_MS 7200000LL /* 2 h: the longest lookback of fine windows */
#define MW_SLO_LOOKBACK_MAX_MS 259200000LL    /* 3 d: the longest lookback */

struct mw_slo_lookback {
    const char *name; /* "5m" ... "3d" */
    int64_t ms;
};

struct mw_slo_burn_pair {
    const char *long_name, *short_name; /* lookback names */
    double threshold;
};

extern const struct mw_slo_lookback mw_slo_lookbacks[MW_SLO_N_LOOKBACKS];
extern const struct mw_slo_burn_pair mw_slo_burn_pairs[MW_SLO_N_BURN_PAIRS];

/* Requests and errors per lookback as of `at_ms`, added up window by window. */
struct mw_slo_burn {
    int64_t at_ms;
    double count[MW_SLO_N_LOOKBACKS], errors[MW_SLO_N_LOOKBACKS];
};

struct mw_slo_burn_rates {
    double error_ratio[MW_SLO_N_LOOKBACKS]; /* NaN without requests in the lookback */
    struct {
        double long_burn_rate, short_burn_rate; /* NaN as the error ratios */
        bool burning;
    } pairs[MW_SLO_N_BURN_PAIRS]; /* in mw_slo_burn_pairs' order */
};

void mw_slo_burn_init(struct mw_slo_burn *b, int64_t at_ms);
/* Add a window's requests and errors to every lookback of its kind (`fine` or coarse) that
 * holds its start; windows starting at or after `at` count nowhere. */
void mw_slo_burn_add(struct mw_slo_burn *b, int64_t start_ms, bool fine, double count,
                     double errors);
void mw_slo_burn_rates_compute(const struct mw_slo_burn *b, double availability_objective,
                               struct mw_slo_burn_rates *out);

#endif
