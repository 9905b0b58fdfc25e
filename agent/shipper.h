/*
 * shipper.h — gets every sealed batch to Kafka, through the on-disk spool.
 *
 * The spool is the agent's write-ahead log: a sealed batch is appended (and, by default,
 * fdatasync'ed) before anything else happens to it, so from then on it survives Kafka outages,
 * SIGTERM and kill -9. The shipper hands spooled batches to the producer in order, at most
 * `producer.max_in_flight` at a time, and acknowledges each in the spool once Kafka has it; the
 * spool deletes a segment when all its batches are acknowledged. When a delivery fails, the
 * shipper waits for the others in flight to settle, rewinds the spool to the oldest
 * unacknowledged batch and probes Kafka with one batch at a time, backing off up to
 * `producer.retry_backoff_max`, until deliveries succeed again. After a restart the batches
 * still in the spool are simply the first to go.
 *
 * A batch Kafka refuses for good (larger than message.max.bytes, or an invalid record) is not
 * retried: it is dropped, counted in batches and in the events it held, and logged, and the
 * batches after it flow.
 *
 * If the spool itself fails (disk full, I/O error), a batch is produced directly from memory,
 * at most producer.max_in_flight of them at a time (beyond that it is lost); while any is held
 * so, or the last append failed, the agent is not ready. Such a batch survives neither kill -9
 * (the agent's state file counts it among the events lost with the process) nor a delivery
 * failure: each loss is counted in batches and events and logged. A batch the full spool had to
 * drop is counted too.
 */
#ifndef MW_AGENT_SHIPPER_H
#define MW_AGENT_SHIPPER_H

#include "agent_config.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct mw_shipper;

struct mw_shipper_stats {
    uint64_t submitted;             /* sealed batches handed to the shipper */
    uint64_t delivered;             /* acknowledged by Kafka */
    uint64_t delivery_errors;       /* failed deliveries (each retried from the spool) */
    uint64_t sent_unspooled;        /* produced directly because the spool could not take them */
    uint64_t lost_unspooled;        /* batches the spool could not take that were lost */
    uint64_t lost_unspooled_events; /* events in those that failed delivery */
    uint64_t unspooled_full_events; /* events in those lost because memory held enough */
    uint64_t unspooled_in_flight;   /* held in memory (librdkafka) only, not yet delivered */
    uint64_t spool_write_errors;    /* appends that failed */
    uint64_t in_flight;             /* handed to Kafka, not yet acknowledged */
    uint64_t spool_bytes;
    uint64_t spool_batches; /* unacknowledged batches in the spool */
    uint64_t spool_appended;
    uint64_t spool_replayed;     /* batches handed out of the spool (again) */
    uint64_t spool_dropped_full; /* batches dropped because the spool was full */
    uint64_t spool_corrupt;      /* corrupt entries skipped */
    uint64_t spool_max_bytes;
    int64_t spool_oldest_ms;     /* mw_spool_oldest_ms: when the oldest unacknowledged batch was
                                    written, at the latest; 0 when none */
    uint64_t spool_full_batches; /* dropped by the full spool before Kafka had them */
    uint64_t spool_full_events;  /* the prediction events in them */
    uint64_t rejected_batches;   /* refused by Kafka for good (too large, invalid): dropped */
    uint64_t rejected_events;    /* the prediction events in them */
    uint64_t kafka_errors;       /* client errors librdkafka reported (broker down, timeouts...) */
    bool kafka_healthy;          /* brokers reachable and the last delivery succeeded */
};

/* Open the spool (replaying what a previous process left) and the producer. Errors are logged
 * and returned (MW_EIO, MW_EAGAIN when another agent holds the spool, MW_ECONFIG, MW_EKAFKA). */
int mw_shipper_create(uv_loop_t *loop, const struct mw_agent_config *cfg, const char *agent_id,
                      struct mw_shipper **out);

/* Take one sealed batch (copied) holding `messages` accepted client messages, `events` of them
 * prediction events. Returns 0 (spooled, or produced from memory when the spool fails), or
 * MW_EFULL/MW_EKAFKA when neither the spool nor Kafka could take it (counted as lost). */
int mw_shipper_submit(struct mw_shipper *s, uint64_t sequence, const void *payload, size_t len,
                      uint64_t messages, uint64_t events);

/* Client messages in batches held only in memory (the spool could not take them) and not yet
 * settled: what a kill -9 now would lose. */
uint64_t mw_shipper_unspooled_messages(const struct mw_shipper *s);

/* True when every batch is acknowledged: nothing in the spool, nothing in flight. */
bool mw_shipper_idle(const struct mw_shipper *s);

/* Ready to take traffic: the spool takes batches and is below its readiness share, no batch is
 * held in memory only, the producer had no fatal error, and Kafka has not been unreachable for
 * producer.unready_after or longer. */
bool mw_shipper_ready(const struct mw_shipper *s);

void mw_shipper_stats(const struct mw_shipper *s, struct mw_shipper_stats *out);

/* Stop; whatever is not acknowledged stays in the spool for the next process. The loop must run
 * once more to close the handles. Accepts NULL. */
void mw_shipper_destroy(struct mw_shipper *s);

#endif
