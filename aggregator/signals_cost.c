/* signals_cost.c — cost of a window and per 1,000 predictions (signals_cost.h). */
#include "signals_cost.h"

#include <math.h>

void mw_cost_signals_compute(const struct mw_window *w, const struct mw_aggregator_config *cfg,
                             struct mw_cost_signals *out)
{
    const struct mw_window_resources *r = &w->resources;
    double cpu_billed = r->cpu_billed_s, mem_billed = r->memory_billed_gib_s;
    if (cpu_billed < r->cpu_s)
        cpu_billed = r->cpu_s; /* windows written before requests were known */
    if (mem_billed < r->memory_gib_s)
        mem_billed = r->memory_gib_s;
    double total = cpu_billed / 3600 * cfg->cost.cpu_core_hour +
                   mem_billed / 3600 * cfg->cost.memory_gib_hour +
                   r->gpu_s / 3600 * cfg->cost.gpu_hour + r->pod_s / 3600 * cfg->cost.pod_hour +
                   (double)w->tokens_in / 1000 * cfg->cost.input_tokens_per_1k +
                   (double)w->tokens_out / 1000 * cfg->cost.output_tokens_per_1k;
    double count = (double)w->count;
    *out = (struct mw_cost_signals){
        .cpu_core_seconds = r->cpu_s,
        .cpu_core_seconds_billed = cpu_billed,
        .memory_gib_seconds = r->memory_gib_s,
        .memory_gib_seconds_billed = mem_billed,
        .gpu_seconds = r->gpu_s,
        .pod_seconds = r->pod_s,
        .idle_share = r->cpu_requested_s > 0 ? 1.0 - r->cpu_s / r->cpu_requested_s : NAN,
        .total = total,
        .per_1k_predictions = count > 0 ? total / count * 1000 : NAN,
    };
}
