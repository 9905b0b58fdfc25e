/* latency_hist.c — log-bucketed latency histogram with <= 1% relative error. */
#include "latency_hist.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

static double gamma_value(void)
{
    return (1.0 + MW_LATENCY_ALPHA) / (1.0 - MW_LATENCY_ALPHA);
}

uint32_t mw_latency_bucket(uint64_t latency_us)
{
    /* Computed once; atomic because libmodelwatch's callers reach here from any thread (every
     * thread stores the same value). */
    static _Atomic double log_gamma_cache;
    double log_gamma = atomic_load_explicit(&log_gamma_cache, memory_order_relaxed);
    if (log_gamma == 0.0) {
        log_gamma = log(gamma_value());
        atomic_store_explicit(&log_gamma_cache, log_gamma, memory_order_relaxed);
    }
    if (latency_us <= 1)
        return 0;
    double idx = ceil(log((double)latency_us) / log_gamma);
    if (idx >= MW_LATENCY_BUCKETS - 1)
        return MW_LATENCY_BUCKETS - 1;
    return (uint32_t)idx;
}

double mw_latency_bucket_value(uint32_t index)
{
    if (index == 0)
        return 1.0;
    double g = gamma_value();
    return 2.0 * pow(g, (double)index) / (g + 1.0);
}

void mw_latency_hist_reset(struct mw_latency_hist *h)
{
    memset(h, 0, sizeof *h);
}

void mw_latency_hist_add(struct mw_latency_hist *h, uint64_t latency_us)
{
    h->counts[mw_latency_bucket(latency_us)]++;
    h->total++;
    h->sum_us += latency_us;
}

double mw_latency_hist_quantile(const struct mw_latency_hist *h, double q)
{
    if (h->total == 0)
        return NAN;
    uint64_t rank = (uint64_t)ceil(q * (double)h->total);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < MW_LATENCY_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank)
            return mw_latency_bucket_value(i);
    }
    return mw_latency_bucket_value(MW_LATENCY_BUCKETS - 1);
}
