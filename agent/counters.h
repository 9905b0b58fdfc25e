/*
 * counters.h — exact per-model counters for 100% of the traffic, whatever is sampled.
 *
 * Every event updates the counter set of its (model, version, event-time bucket): count,
 * errors by code, latency histogram, token sums. At each batch seal the sets are written into
 * the batch's MetricsSnapshot and cleared, so the aggregator's request counts, error rates and
 * percentiles are exact. The number of sets is bounded; an event that would need a new set when
 * the table is full is refused (MW_EFULL) so the caller can count it.
 */
#ifndef MW_AGENT_COUNTERS_H
#define MW_AGENT_COUNTERS_H

#include "telemetry.pb-c.h"

#include <stddef.h>
#include <stdint.h>

struct mw_counters;

/* Create a table of at most max_series sets over buckets of bucket_width_ms. NULL on ENOMEM. */
struct mw_counters *mw_counters_create(size_t max_series, int64_t bucket_width_ms);
void mw_counters_destroy(struct mw_counters *c); /* accepts NULL */

/* Count one prediction. Returns 0, MW_EFULL (table full) or MW_ENOMEM. */
int mw_counters_add_event(struct mw_counters *c, const Modelwatch__V1__PredictionEvent *ev);
/* Add the counts a client kept for events it did not send (ClientMessage.counts, checked by
 * client_message.h): they land in the set of their bucket's start. Same returns. */
int mw_counters_add_counts(struct mw_counters *c, const Modelwatch__V1__ModelCounters *mc);
/* Count one feedback message. Same returns. */
int mw_counters_add_feedback(struct mw_counters *c, const Modelwatch__V1__Feedback *fb);

/* Number of sets holding data. */
size_t mw_counters_series(const struct mw_counters *c);

/*
 * Pack the current sets as a MetricsSnapshot into `out` (protobuf wire bytes, appended) and
 * clear them. Returns 0 or MW_EFULL / MW_ENOMEM, in which case nothing is cleared.
 */
struct mw_buf;
int mw_counters_flush(struct mw_counters *c, const Modelwatch__V1__ResourceUsage *resources,
                      const Modelwatch__V1__AgentHealth *agent,
                      struct mw_buf *out);

#endif
