/*
 * latency_hist.h — a mergeable log-bucketed latency histogram (the DDSketch layout).
 *
 * Bucket i >= 1 holds latencies in (gamma^(i-1), gamma^i] microseconds, gamma = (1+a)/(1-a),
 * bucket 0 holds <= 1 us. Reporting a bucket's quantile as 2*gamma^i/(gamma+1) keeps the
 * relative error within `a` (MW_LATENCY_ALPHA = 1%). Histograms from any number of agents merge
 * by adding bucket counts, which is what makes the aggregator's percentiles exact up to that
 * bound whatever the sampling.
 */
#ifndef MW_COMMON_LATENCY_HIST_H
#define MW_COMMON_LATENCY_HIST_H

#include <stdint.h>

#define MW_LATENCY_ALPHA 0.01
/* Enough buckets for latencies up to about 10^11 us (more than a day); larger ones are clamped
 * into the last bucket. */
#define MW_LATENCY_BUCKETS 1280

struct mw_latency_hist {
    uint64_t counts[MW_LATENCY_BUCKETS];
    uint64_t total;
    uint64_t sum_us;
};

/* Bucket index for a latency. */
uint32_t mw_latency_bucket(uint64_t latency_us);
/* Representative value of a bucket (the point of least relative error). */
double mw_latency_bucket_value(uint32_t index);
void mw_latency_hist_reset(struct mw_latency_hist *h);
void mw_latency_hist_add(struct mw_latency_hist *h, uint64_t latency_us);
/* The q-quantile (0 <= q <= 1) by the nearest-rank rule, in us; NaN when empty. */
double mw_latency_hist_quantile(const struct mw_latency_hist *h, double q);

#endif
