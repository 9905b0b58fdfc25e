/*
 * signals_cost.h — what a window's predictions cost, and per 1,000 of them.
 *
 * CPU and memory are billed on max(requested, used) per interval when the agent knows the
 * pod's requests (window_apply.c shares a pod's resources among its models by prediction
 * count); GPU-seconds, pod-seconds and tokens are billed as used. Each quantity at its price
 * from the config's cost.* (per hour, or per 1,000 tokens):
 *
 *   total = cpu_billed/3600 x cpu_core_hour + mem_billed/3600 x memory_gib_hour
 *         + gpu/3600 x gpu_hour + pod/3600 x pod_hour
 *         + tokens_in/1000 x input_tokens_per_1k + tokens_out/1000 x output_tokens_per_1k
 *   per_1k_predictions = total / count x 1000
 *
 * The idle share is the part of the requested CPU left unused: 1 - used / requested.
 */
#ifndef MW_AGGREGATOR_SIGNALS_COST_H
#define MW_AGGREGATOR_SIGNALS_COST_H

#include "aggregator_config.h"
#include "schema.h"

struct mw_cost_signals {
    double cpu_core_seconds, cpu_core_seconds_billed;
    double memory_gib_seconds, memory_gib_seconds_billed;
    double gpu_seconds, pod_seconds;
    double idle_share;         /* NaN without requested CPU */
    double total;              /* in the currency of the prices */
    double per_1k_predictions; /* NaN without predictions */
};

/* The cost of `w` at cfg's cost.* prices into *out. */
void mw_cost_signals_compute(const struct mw_window *w, const struct mw_aggregator_config *cfg,
                             struct mw_cost_signals *out);

#endif
