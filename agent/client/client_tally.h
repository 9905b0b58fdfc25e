/*
 * client_tally.h — the exact counters a client keeps for the events it does not send.
 *
 * When the agent's rules leave an event's payload out and let clients count (the count line of
 * common/sampling_rules.h), mw_capture adds the event to the counters of its (model, version,
 * bucket) here instead of writing its head into the ring: count, errors by code, the latency
 * histogram of common/latency_hist.h, token sums, the same figures the agent keeps
 * (agent/counters.h). The sender takes them with each batch it sends, as ClientMessage.counts
 * entries, and they start again from zero; the agent adds them to its own counters, so the
 * counts stay those of every event. A client then sends one message per series and batch
 * instead of one per event.
 *
 * The table holds few series (MW_CLIENT_TALLY_MAX_SERIES), each a bounded number of error
 * codes: an event whose series or code finds no room, or whose names the agent would refuse,
 * is not counted here (MW_EFULL, MW_EINVAL) and
 * its caller sends its head as before, so nothing is lost and the agent's verdicts stay the
 * same. Callers add from any thread (a mutex, held for a lookup and a few additions); the
 * sender takes.
 */
#ifndef MW_CLIENT_TALLY_H
#define MW_CLIENT_TALLY_H

#include "modelwatch.h"

#include <stdint.h>

/* Series a client counts between two batches; at most one or two models and versions per
 * process, times the buckets a batch interval straddles. */
#define MW_CLIENT_TALLY_MAX_SERIES 16

struct mw_client_tally;
struct mw_buf;

/* An empty table; NULL on ENOMEM. */
struct mw_client_tally *mw_client_tally_create(void);
void mw_client_tally_destroy(struct mw_client_tally *t); /* accepts NULL */

/* Count `ev`, timed event_time_ms (>= 0), in buckets bucket_ms wide. Returns 0, MW_EFULL (no
 * room for its series, or for its error code in the series) or MW_EINVAL (a model name or
 * version the agent refuses); nothing is counted then. */
int mw_client_tally_add(struct mw_client_tally *t, const struct mw_event *ev,
                         int64_t event_time_ms, int64_t bucket_ms);

/* Events counted and not yet taken. */
uint64_t mw_client_tally_pending(const struct mw_client_tally *t);

/*
 * Append every series to `out` as a ClientBatch entry (a ClientMessage whose body is counts,
 * framed as ClientBatch.messages), each entry preceded by two native uint64_t: the events it
 * carries and its framed length; and clear the table. Returns the events taken; 0 when there
 * were none or memory is short (then nothing is cleared).
 */
uint64_t mw_client_tally_take(struct mw_client_tally *t, struct mw_buf *out);

/* Clear the table without sending; returns the events that were in it. */
uint64_t mw_client_tally_discard(struct mw_client_tally *t);

#endif
