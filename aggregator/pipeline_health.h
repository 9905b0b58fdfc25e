/*
 * pipeline_health.h — the pipeline's own signals in Redis, for the pipeline alert rules
 * (agent_drops, spool_use, dlq_rate, consumer_lag).
 *
 * Every replica writes what it sees, and the alerting leader reads it all (the keys are in
 * schema.h, "the pipeline's own signals"):
 *   - agent health: each batch carries its agent's health (telemetry.proto AgentHealth); the
 *     replica that applies the batch keeps the newest sample per agent and writes the samples
 *     noted since its last flush through pipeline_health.lua, which keeps only newer ones;
 *   - dead letters: each record a replica sends to the dead-letter topic counts in its
 *     wall-clock minute;
 *   - consumer lag: each replica reports the lag of the partitions it holds at every flush.
 *
 * These are health readings, not counted data: a sample lost with a crash is replaced by the
 * next one, so none of it goes through the exactly-once apply path.
 */
#ifndef MW_AGGREGATOR_PIPELINE_HEALTH_H
#define MW_AGGREGATOR_PIPELINE_HEALTH_H

#include "consumer.h"
#include "telemetry.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mw_store;
struct mw_pipeline_health;

extern const char MW_PIPELINE_HEALTH_SCRIPT[];
extern const size_t MW_PIPELINE_HEALTH_SCRIPT_LEN;
extern const char MW_PIPELINE_HEALTH_SCRIPT_SHA1[];

/* Registers the script with the store. 0, MW_ENOMEM or the store's error. */
int mw_pipeline_health_create(struct mw_store *store, struct mw_pipeline_health **out);
void mw_pipeline_health_destroy(struct mw_pipeline_health *h); /* accepts NULL */

/* A batch was applied: keep its agent's health sample for the next flush (the newest per
 * agent). Batches without identity or health are ignored. */
void mw_pipeline_health_note_batch(struct mw_pipeline_health *h, const Modelwatch__V1__Batch *b);

/* A record went to the dead-letter topic at `now_ms` (wall clock): counted in Redis now. */
void mw_pipeline_health_note_dlq(struct mw_pipeline_health *h, int64_t now_ms);

/* Write the agent samples noted since the last flush and the lag of the `n` partitions held
 * (`holder` names this replica). Fire and forget: a failed write is replaced by the next. */
void mw_pipeline_health_flush(struct mw_pipeline_health *h,
                              const struct mw_consumer_partition *parts, size_t n,
                              const char *holder, int64_t now_ms);

/* ---- reading (the alerting leader) ------------------------------------------------------- */

struct mw_agent_sample {
    char *agent;
    char *boot;
    int64_t sealed_at_ms; /* the agent's wall clock when it sealed the batch */
    uint64_t sequence;
    uint64_t dropped_total;
    uint64_t spool_bytes;
    uint64_t spool_max_bytes;
};

struct mw_lag_sample {
    char *partition;
    int64_t lag;
    int64_t at_ms; /* when its holder reported it (the holder's wall clock) */
};

struct mw_pipeline_readings {
    size_t n_agents;
    struct mw_agent_sample *agents;
    size_t n_lags;
    struct mw_lag_sample *lags;
    int64_t dlq_minute_start_ms; /* the last complete minute before the read */
    uint64_t dlq_records;        /* sent to the dead-letter topic in that minute */
};

void mw_pipeline_readings_free(struct mw_pipeline_readings *r); /* accepts NULL; leaves it empty */

/* Parse one field of mw:{pipeline}:agents / mw:{pipeline}:lag. 0, MW_EPARSE or MW_ENOMEM;
 * the strings are owned by the sample. */
int mw_agent_sample_parse(const char *agent, const char *value, struct mw_agent_sample *out);
int mw_lag_sample_parse(const char *partition, const char *value, struct mw_lag_sample *out);

/* `r` is NULL when rc is not 0; the callee owns it (free with mw_pipeline_readings_free). */
typedef void (*mw_pipeline_read_fn)(int rc, struct mw_pipeline_readings *r, void *arg);

/* Read every agent sample, every partition's lag and the dead letters of the last complete
 * minute before `now_ms`. 0 (cb follows) or MW_EREDIS / MW_ENOMEM (cb not called). */
int mw_pipeline_health_read(struct mw_store *store, int64_t now_ms, mw_pipeline_read_fn cb,
                            void *arg);

/* Remove agents whose newest sample is older than `before_ms` (fire and forget). */
void mw_pipeline_health_forget_agents(struct mw_store *store, const struct mw_pipeline_readings *r,
                                      int64_t before_ms);

#endif
