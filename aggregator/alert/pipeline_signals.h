/*
 * pipeline_signals.h — the pipeline rules' values from what the replicas reported
 * (pipeline_health.h): per agent, agent_drops and spool_use; per partition, consumer_lag; and
 * dlq_rate for the whole pipeline. Pure: the caller reads Redis and steps the evaluator.
 *
 *   agent_drops   events the agent dropped per second between the previous evaluation's
 *                 sample and this one (a new boot id restarts its counter: the new total is the
 *                 increase, as Prometheus's rate() reads a counter reset). No value at the first
 *                 sight of an agent; 0 when it sealed nothing since (an agent seals a batch
 *                 whenever its drop count moves).
 *   spool_use     spool bytes over the spool's bound, from the newest sample
 *   consumer_lag  records of the partition not yet consumed, as its holder last reported them
 *   dlq_rate      records sent to the dead-letter topic per second over the last whole minute
 *
 * An agent whose newest sample is older than MW_PIPELINE_AGENT_STALE_MS (it stopped sending:
 * gone, or cut off from Kafka, which its models' absence rules report) and a partition whose
 * lag no replica reported for MW_PIPELINE_LAG_STALE_MS read as gone: their alerts clear.
 */
#ifndef MW_ALERT_PIPELINE_SIGNALS_H
#define MW_ALERT_PIPELINE_SIGNALS_H

#include "alert/evaluator.h"
#include "pipeline_health.h"
#include "table.h"

#include <stddef.h>
#include <stdint.h>

#define MW_PIPELINE_AGENT_STALE_MS (5 * 60 * 1000)
#define MW_PIPELINE_LAG_STALE_MS (60 * 1000)
/* Agents not heard from for this long are removed from Redis. */
#define MW_PIPELINE_AGENT_FORGET_MS (24 * 3600 * 1000)

/* The samples of the previous evaluation, per agent (for agent_drops). */
struct mw_pipeline_memory {
    struct mw_table agents;
    struct mw_agent_sample *samples; /* owned copies */
    size_t n;
};

void mw_pipeline_memory_init(struct mw_pipeline_memory *m);
void mw_pipeline_memory_free(struct mw_pipeline_memory *m); /* leaves it empty, reusable */

/*
 * The readings of every pipeline signal at `now_ms` (wall clock) into *out (n_out of them;
 * free the array with mw_free; subjects point into `r`), then remember r's agent samples in `m`
 * for the next evaluation. 0 or MW_ENOMEM (`m` then unchanged).
 */
int mw_pipeline_signals(const struct mw_pipeline_readings *r, struct mw_pipeline_memory *m,
                        int64_t now_ms, struct mw_pipeline_reading **out, size_t *n_out);

#endif
