/*
 * producer.h — the agent's Kafka producer: idempotent, acks=all, keyed by agent id.
 *
 * Every sealed batch becomes one Kafka record on the telemetry topic with headers naming the
 * schema version and the encoding. Delivery reports are served from the libuv loop (a poll
 * timer), so every callback runs on the loop thread, once per record, in production order for
 * records that share the key.
 */
#ifndef MW_AGENT_PRODUCER_H
#define MW_AGENT_PRODUCER_H

#include "kafka_conf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mw_producer;

/* The outcome of one record: `ok`, or the reason it failed permanently. */
typedef void (*mw_producer_delivered_fn)(uint64_t id, bool ok, const char *reason, void *arg);

/* Create the producer. librdkafka properties from `settings` pass through, except that
 * idempotence and acks=all are always on. Errors (MW_ECONFIG / MW_EKAFKA / MW_EIO) are written
 * to errbuf. */
int mw_producer_create(uv_loop_t *loop, const struct mw_kafka_settings *settings,
                       const char *agent_id, mw_producer_delivered_fn on_delivered, void *arg,
                       struct mw_producer **out, char *errbuf, size_t errbuf_size);

/* Produce a copy of payload[0..len); `id` comes back in the delivery callback. Returns 0, or
 * MW_EFULL (librdkafka's queue is full) / MW_EKAFKA, in which case no callback will come. */
int mw_producer_send(struct mw_producer *p, const void *payload, size_t len, uint64_t id);

/* Drop whatever librdkafka still holds (shutdown after the grace period: those batches are
 * still in the spool), stop the poll timer and destroy the handle. Accepts NULL. */
void mw_producer_destroy(struct mw_producer *p);

#endif
