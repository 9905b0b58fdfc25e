/*
 * producer.h — the agent's Kafka producer: idempotent, acks=all, keyed by agent id.
 *
 * Every sealed batch becomes one Kafka record on the telemetry topic with headers naming the
 * schema version and the encoding. Delivery reports are served from the libuv loop (a poll
 * timer), so all callbacks run on the loop thread.
 */
#ifndef MW_AGENT_PRODUCER_H
#define MW_AGENT_PRODUCER_H

#include "kafka_conf.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mw_producer;

struct mw_producer_stats {
    uint64_t batches_sent;      /* handed to librdkafka */
    uint64_t batches_delivered; /* acknowledged by the brokers */
    uint64_t batches_failed;    /* permanently failed delivery */
    uint64_t bytes_delivered;
};

/* Called on the loop thread for a batch that failed permanently; `payload` is valid only
 * during the call. */
typedef void (*mw_producer_failed_fn)(uint64_t sequence, const void *payload, size_t len,
                                      const char *reason, void *arg);

/* Create the producer. Errors (returned as MW_ECONFIG / MW_EKAFKA / MW_EIO) are written to
 * errbuf. */
int mw_producer_create(uv_loop_t *loop, const struct mw_kafka_settings *settings,
                       const char *agent_id, mw_producer_failed_fn on_failed, void *arg,
                       struct mw_producer **out, char *errbuf, size_t errbuf_size);

/* Produce one sealed batch. Takes ownership of `payload` (allocated with mw_malloc) in every
 * case. Returns 0 or MW_EFULL (librdkafka's queue is full) / MW_EKAFKA. */
int mw_producer_send(struct mw_producer *p, void *payload, size_t len, uint64_t sequence);

/* Batches handed over but not yet acknowledged or failed. */
uint64_t mw_producer_in_flight(const struct mw_producer *p);

/* Wait up to timeout_ms for every in-flight batch (blocks the loop: shutdown only). Returns 0
 * or MW_EKAFKA when some remain. */
int mw_producer_flush(struct mw_producer *p, int64_t timeout_ms);

const struct mw_producer_stats *mw_producer_stats(const struct mw_producer *p);

/* Stop the poll timer and destroy the Kafka handle. Accepts NULL. */
void mw_producer_destroy(struct mw_producer *p);

#endif
