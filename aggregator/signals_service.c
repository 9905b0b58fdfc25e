/* signals_service.c — requests, errors and latency of a window (signals_service.h). */
#include "signals_service.h"

#include "alloc.h"
#include "error.h"
#include "latency_hist.h"

#include <math.h>

int mw_service_signals_compute(const struct mw_window *w, struct mw_service_signals *out)
{
    struct mw_latency_hist *hist = mw_calloc(1, sizeof *hist);
    if (!hist)
        return MW_ENOMEM;
    for (size_t i = 0; i < w->n_latency; i++) {
        hist->counts[w->latency[i].bucket] += w->latency[i].count;
        hist->total += w->latency[i].count;
    }
    double count = (double)w->count;
    *out = (struct mw_service_signals){
        .count = w->count,
        .errors = w->errors,
        .records = w->records,
        .feedback = w->feedback,
        .tokens_in = w->tokens_in,
        .tokens_out = w->tokens_out,
        .late = w->late,
        .late_records = w->late_records,
        .weighted_records = w->weighted_records,
        .error_rate = count > 0 ? (double)w->errors / count : NAN,
        .n_error_codes = w->n_error_codes,
        .error_codes = w->error_codes,
        .latency_p50_us = mw_latency_hist_quantile(hist, 0.5),
        .latency_p90_us = mw_latency_hist_quantile(hist, 0.9),
        .latency_p95_us = mw_latency_hist_quantile(hist, 0.95),
        .latency_p99_us = mw_latency_hist_quantile(hist, 0.99),
        .latency_mean_us = hist->total ? (double)w->latency_sum_us / (double)hist->total : NAN,
    };
    mw_free(hist);
    return 0;
}
