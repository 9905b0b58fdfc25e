/* signals_slo.c — SLO attainment of a window, and multi-window burn rates (signals_slo.h). */
#include "signals_slo.h"

#include "latency_hist.h"

#include <math.h>
#include <string.h>

/* ---- one window ----------------------------------------------------------------------------- */

/* Share of requests no slower than `threshold_us`: whole buckets at or below the threshold
 * (bucket i's upper bound is gamma^i), so within the histogram's 1 % on the threshold. */
static double share_within(const struct mw_window *w, double threshold_us)
{
    double gamma = (1.0 + MW_LATENCY_ALPHA) / (1.0 - MW_LATENCY_ALPHA);
    uint64_t good = 0, total = 0;
    for (size_t i = 0; i < w->n_latency; i++) {
        uint32_t b = w->latency[i].bucket;
        double upper = b == 0 ? 1.0 : pow(gamma, (double)b);
        total += w->latency[i].count;
        if (upper <= threshold_us * (1.0 + 1e-12))
            good += w->latency[i].count;
    }
    return total ? (double)good / (double)total : NAN;
}

static enum mw_slo_verdict verdict(double attained, double target)
{
    return isnan(attained) ? MW_SLO_UNKNOWN : attained >= target ? MW_SLO_MET : MW_SLO_MISSED;
}

void mw_slo_attainment_compute(const struct mw_window *w, const struct mw_aggregator_config *cfg,
                               struct mw_slo_attainment *out)
{
    double count = (double)w->count;
    double availability = count > 0 ? 1.0 - (double)w->errors / count : NAN;
    double fast = share_within(w, (double)cfg->slo.latency_threshold_ms * 1000.0);
    *out = (struct mw_slo_attainment){
        .availability = availability,
        .availability_target = cfg->slo.availability,
        .availability_met = verdict(availability, cfg->slo.availability),
        .latency_attainment = fast,
        .latency_threshold_ms = cfg->slo.latency_threshold_ms,
        .latency_target = cfg->slo.latency_target,
        .latency_met = verdict(fast, cfg->slo.latency_target),
    };
}

/* ---- burn rates ----------------------------------------------------------------------------- */

const struct mw_slo_lookback mw_slo_lookbacks[MW_SLO_N_LOOKBACKS] = {
    {"5m", 300000},   {"30m", 1800000}, {"1h", 3600000},  {"2h", 7200000},
    {"6h", 21600000}, {"1d", 86400000}, {"3d", 259200000}};

const struct mw_slo_burn_pair mw_slo_burn_pairs[MW_SLO_N_BURN_PAIRS] = {
    {"1h", "5m", 14.4}, {"6h", "30m", 6}, {"1d", "2h", 3}, {"3d", "6h", 1}};

void mw_slo_burn_init(struct mw_slo_burn *b, int64_t at_ms)
{
    memset(b, 0, sizeof *b);
    b->at_ms = at_ms;
}

void mw_slo_burn_add(struct mw_slo_burn *b, int64_t start_ms, bool fine, double count,
                     double errors)
{
    if (start_ms >= b->at_ms)
        return;
    for (size_t i = 0; i < MW_SLO_N_LOOKBACKS; i++) {
        bool of_fine = mw_slo_lookbacks[i].ms <= MW_SLO_FINE_LOOKBACK_MAX_MS;
        if (of_fine == fine && start_ms >= b->at_ms - mw_slo_lookbacks[i].ms) {
            b->count[i] += count;
            b->errors[i] += errors;
        }
    }
}

static double ratio_of(const struct mw_slo_burn_rates *r, const char *name)
{
    for (size_t i = 0; i < MW_SLO_N_LOOKBACKS; i++)
        if (strcmp(mw_slo_lookbacks[i].name, name) == 0)
            return r->error_ratio[i];
    return NAN;
}

void mw_slo_burn_rates_compute(const struct mw_slo_burn *b, double availability_objective,
                               struct mw_slo_burn_rates *out)
{
    double budget = 1.0 - availability_objective;
    for (size_t i = 0; i < MW_SLO_N_LOOKBACKS; i++)
        out->error_ratio[i] = b->count[i] > 0 ? b->errors[i] / b->count[i] : NAN;
    for (size_t i = 0; i < MW_SLO_N_BURN_PAIRS; i++) {
        const struct mw_slo_burn_pair *p = &mw_slo_burn_pairs[i];
        double long_rate = ratio_of(out, p->long_name) / budget;
        double short_rate = ratio_of(out, p->short_name) / budget;
        out->pairs[i].long_burn_rate = long_rate;
        out->pairs[i].short_burn_rate = short_rate;
        out->pairs[i].burning = long_rate > p->threshold && short_rate > p->threshold;
    }
}
