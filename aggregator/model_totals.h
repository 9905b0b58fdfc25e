/*
 * model_totals.h — per (model, version) counters and a latency histogram on /metrics, counted by
 * the replica that applied each batch.
 *
 * These are the Prometheus-native series: counters that only grow (for the process's life), so
 * rate() and increase() work, and a real histogram, so histogram_quantile() works, both summed
 * across aggregator replicas with `sum by (model)`. The sums are exact because a model's part of
 * a batch is counted only by the replica whose apply script really applied it; a replayed batch
 * (after a crash or a rebalance, on this replica or another) is not counted again.
 *
 *   modelwatch_predictions_total{model,version}          every prediction, late ones included
 *   modelwatch_prediction_errors_total{model,version,code}
 *   modelwatch_sampled_records_total{model,version}      sampled prediction records
 *   modelwatch_labels_joined_total{model}                labels joined with their prediction
 *   modelwatch_prediction_latency_seconds_bucket{model,version,le}, _sum, _count
 *   modelwatch_series_dropped_total                      updates refused by the bounds below
 *
 * Bounded: at most `max_model_versions` (model, version) pairs, and as many models for the label
 * counter; at most MW_MODEL_TOTALS_MAX_CODES error codes per pair, further codes counted under
 * code="other" as the agent does. An update for a pair (or model) past the bound is not
 * exported and adds one to modelwatch_series_dropped_total.
 *
 * The families live in the registry given at creation; both run on the aggregator's loop thread.
 */
#ifndef MW_AGGREGATOR_MODEL_TOTALS_H
#define MW_AGGREGATOR_MODEL_TOTALS_H

#include "prom.h"
#include "telemetry.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define MW_MODEL_TOTALS_MAX_CODES 32

/* The `le` bounds of modelwatch_prediction_latency_seconds, in seconds (+Inf follows). */
extern const double mw_model_totals_latency_bounds[];
extern const size_t mw_model_totals_n_latency_bounds;

struct mw_model_totals;

/* Register the families on `reg` (borrowed; must outlive the totals). NULL when out of memory
 * or when the families exist already. */
struct mw_model_totals *mw_model_totals_create(struct mw_prom_registry *reg,
                                               size_t max_model_versions);
void mw_model_totals_destroy(struct mw_model_totals *t); /* accepts NULL */

/*
 * Count `model`'s part of batch `b` (borrowed): its counters (predictions, errors by code,
 * latency) and its sampled prediction records, per version. Call once per model whose apply
 * script applied the batch, never for a replay. Returns 0, or MW_ENOMEM (what was counted before
 * stays counted).
 */
int mw_model_totals_add_batch(struct mw_model_totals *t, const Modelwatch__V1__Batch *b,
                              const char *model);

/* Count `n` labels joined with their predictions for `model` (what the apply script reports
 * for a batch it applied). */
void mw_model_totals_add_joined(struct mw_model_totals *t, const char *model, uint64_t n);

#endif
