/*
 * batch_builder.h — assembles the protobuf wire bytes of one Batch incrementally.
 *
 * A client's ClientMessage and a batch's Record use the same field numbers for their oneof
 * (event = 1, feedback = 2) on purpose: the bytes the agent received are already a valid Record
 * body, so a record is appended as those bytes plus its weight, with no decode-encode round
 * trip and no allocation per event. At seal the snapshot and the header fields are appended
 * (protobuf fields may come in any order), and the whole is one valid Batch message.
 */
#ifndef MW_AGENT_BATCH_BUILDER_H
#define MW_AGENT_BATCH_BUILDER_H

#include "buf.h"
#include "telemetry.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define MW_SCHEMA_VERSION 1

struct mw_batch_builder {
    struct mw_buf wire; /* records so far, then the sealed batch */
    size_t n_records;
    size_t max_records;
    size_t max_bytes;
};

/* Returns 0 or MW_ENOMEM. */
int mw_batch_builder_init(struct mw_batch_builder *b, size_t max_records, size_t max_bytes);
void mw_batch_builder_free(struct mw_batch_builder *b);

/* True when a record of `record_len` more bytes would not fit: seal first. */
int mw_batch_builder_would_overflow(const struct mw_batch_builder *b, size_t record_len);
/* True when the batch has reached its record or byte limit. */
int mw_batch_builder_is_full(const struct mw_batch_builder *b);

/* Append one record: the ClientMessage bytes as received plus its weight and, for an event,
 * whether the rate selected its id (label_sampled 0 or 1; -1 to leave it out). Returns 0 or
 * MW_EFULL (the batch cannot take it). */
int mw_batch_builder_add(struct mw_batch_builder *b, const void *client_msg, size_t len,
                         double weight, int label_sampled);

/*
 * Seal: append the snapshot (already packed MetricsSnapshot bytes) and header, and move the
 * finished Batch bytes into `out` (which must be empty; the builder is reset for the next
 * batch). Returns 0 or MW_ENOMEM / MW_EFULL.
 */
int mw_batch_builder_seal(struct mw_batch_builder *b, const Modelwatch__V1__Identity *identity,
                          uint64_t sequence, int64_t sealed_at_ms, const struct mw_buf *snapshot,
                          struct mw_buf *out);

/*
 * The prediction events a sealed, compressed batch accounts for (the sum of its exact counters'
 * counts) and its sequence number, for counting what is lost when a batch is. `zctx` is a
 * decompression context of the caller's. Returns 0, or MW_ECORRUPT / MW_ENOMEM when the batch
 * cannot be read (both outputs 0).
 */
struct mw_zframe_ctx;
int mw_batch_count_events(struct mw_zframe_ctx *zctx, const void *payload, size_t len,
                          uint64_t *events, uint64_t *sequence);

#endif
