/*
 * batch_json.h — a protobuf Batch from a JSON description, for tools that craft batches:
 * mw-apply-plan (bench/apply_plan.c) plans one for apply.lua, mw-produce-junk (tests/
 * integration) writes them into a topic as a hostile or broken agent would.
 *
 *   {"sequence": 1, "agent": "a", "boot": "b", "schema_version": 1,
 *    "counters": [{"model", "version", "start_ms", "width_ms", "count", "errors",
 *                  "error_code", "latencies_us": [...], "sum_us", "feedback",
 *                  "tokens_in", "tokens_out"}],
 *    "records": [{"event": {"model", "version", "id", "t", "score", "class", "value",
 *                           "latency_us", "features": {"name": number or string}},
 *                 "weight", "label_sampled"},
 *                {"label": {"model", "id", "t", "class" or "value"}}]}
 *
 * Integers may also be given as decimal strings, for values JSON cannot carry exactly
 * (a count of 2^64 - 1, an event time of INT64_MIN). "sum_us" replaces the sum of
 * "latencies_us"; "t" absent leaves the time unset.
 */
#ifndef MW_BENCH_BATCH_JSON_H
#define MW_BENCH_BATCH_JSON_H

#include "telemetry.pb-c.h"

#include <jansson.h>
#include <stdint.h>

/* The batch `spec` describes, allocated with calloc/strdup as protobuf-c's default allocator
 * would (so mw_batch_bound may free parts of it); the caller frees it with mw_batch_json_free.
 * NULL when out of memory. */
Modelwatch__V1__Batch *mw_batch_json(json_t *spec);

/* Frees a batch mw_batch_json returned; accepts NULL. */
void mw_batch_json_free(Modelwatch__V1__Batch *b);

/* A signed or unsigned integer of `o[key]`, given as a JSON integer or a decimal string;
 * `def` when absent. */
int64_t mw_json_i64(json_t *o, const char *key, int64_t def);
uint64_t mw_json_u64(json_t *o, const char *key, uint64_t def);

#endif
