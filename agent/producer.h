/*
 * producer.h — the agent's Kafka producer: idempotent, acks=all, keyed by agent id.
 *
 * Every sealed batch becomes one Kafka record on the telemetry topic with headers naming the
 * schema version and the encoding. Delivery reports are served from the libuv loop (a poll
 * timer), so every callback runs on the loop thread, once per record, in production order for
 * records of one partition (records of different partitions may be acknowledged in any order).
 *
 * Kafka's health is followed from librdkafka itself rather than from delivery reports, which
 * fail only after message.timeout.ms (5 min by default): the statistics callback (every
 * second) says whether any broker connection is up, and the error callback counts client
 * errors and reports "all brokers down" at once.
 */
#ifndef MW_AGENT_PRODUCER_H
#define MW_AGENT_PRODUCER_H

#include "kafka_conf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mw_producer;

/* What became of one record. */
enum mw_delivery {
    MW_DELIVERY_OK,       /* acknowledged by Kafka */
    MW_DELIVERY_FAILED,   /* not delivered this time (outage, timeout): try again */
    MW_DELIVERY_REJECTED, /* Kafka will never take this record (too large, invalid): drop it */
};

/* The outcome of one record, with librdkafka's reason and the record's bytes (valid during the
 * call only). */
typedef void (*mw_producer_delivered_fn)(uint64_t id, enum mw_delivery outcome, const char *reason,
                                         const void *payload, size_t len, void *arg);

/* Create the producer. librdkafka properties from `settings` pass through, except that
 * idempotence and acks=all are always on. Errors (MW_ECONFIG / MW_EKAFKA / MW_EIO) are written
 * to errbuf. */
int mw_producer_create(uv_loop_t *loop, const struct mw_kafka_settings *settings,
                       const char *agent_id, mw_producer_delivered_fn on_delivered, void *arg,
                       struct mw_producer **out, char *errbuf, size_t errbuf_size);

struct mw_producer_health {
    bool brokers_up;        /* a connection to a broker is up (or none was tried yet) */
    bool fatal;             /* librdkafka raised a fatal error: nothing will be delivered */
    uint64_t errors;        /* client errors reported by librdkafka's error callback */
    uint64_t down_since_ms; /* monotonic time the brokers went down; 0 while up */
};

void mw_producer_health(const struct mw_producer *p, struct mw_producer_health *out);

/* Produce a copy of payload[0..len); `id` comes back in the delivery callback. Returns 0, or
 * MW_EFULL (librdkafka's queue is full) / MW_EKAFKA (try again later) / MW_ETOOBIG (larger
 * than message.max.bytes: it will never be taken), in which case no callback will come. */
int mw_producer_send(struct mw_producer *p, const void *payload, size_t len, uint64_t id);

/* Drop whatever librdkafka still holds (shutdown after the grace period: those batches are
 * still in the spool), stop the poll timer and destroy the handle. Accepts NULL. */
void mw_producer_destroy(struct mw_producer *p);

#endif
