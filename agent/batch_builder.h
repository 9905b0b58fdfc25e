/*
 * batch_builder.h — assembles the protobuf wire bytes of one Batch incrementally.
 *
 * A client's ClientMessage and a batch's Record use the same field numbers for their oneof
 * (event = 1, feedback = 2) on purpose: the bytes the agent received are already a valid Record
 * body, so a record is appended as those bytes plus its weight, with no decode-encode round
 * trip and no allocation per event. At seal the snapshot and the header fields are appended
 * (protobuf fields may come in any order), and the whole is one valid Batch message, compressed
 * straight from the builder's buffer into the builder's output buffer. Both buffers are kept
 * from one batch to the next: a batch costs no allocation, and the uncompressed batch exists
 * once, not also as a copy handed on at seal.
 */
#ifndef MW_AGENT_BATCH_BUILDER_H
#define MW_AGENT_BATCH_BUILDER_H

#include "buf.h"
#include "telemetry.pb-c.h"

#include <stddef.h>
#include <stdint.h>

#define MW_SCHEMA_VERSION 1

struct mw_zframe_ctx;

struct mw_batch_builder {
    struct mw_buf wire;   /* records so far, then the sealed batch before compression */
    struct mw_buf sealed; /* the last sealed batch, compressed */
    size_t n_records;
    size_t max_records;
    size_t max_bytes;
};

/* Reserves (without touching) room for a batch of max_bytes and its snapshot and header.
 * Returns 0 or MW_ENOMEM. */
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
 * Seal: append the snapshot (already packed MetricsSnapshot bytes) and header, and compress the
 * finished Batch with `zctx` (a compression context of the caller's) into one zstd frame
 * (zframe.h). On success *frame and *frame_len point at that frame, which the builder owns and
 * keeps until its next seal or free. Success or not, the builder is empty afterwards and
 * ready for the next batch (on error the open batch is lost: the caller counts it).
 * Returns 0, MW_ENOMEM, MW_EFULL or MW_ECOMPRESS.
 */
int mw_batch_builder_seal(struct mw_batch_builder *b, struct mw_zframe_ctx *zctx,
                          const Modelwatch__V1__Identity *identity, uint64_t sequence,
                          int64_t sealed_at_ms, const struct mw_buf *snapshot,
                          const void **frame, size_t *frame_len);

/*
 * The prediction events a sealed, compressed batch accounts for (the sum of its exact counters'
 * counts) and its sequence number, for counting what is lost when a batch is. `zctx` is a
 * decompression context of the caller's. Returns 0, or MW_ECORRUPT / MW_ENOMEM when the batch
 * cannot be read (both outputs 0).
 */
int mw_batch_count_events(struct mw_zframe_ctx *zctx, const void *payload, size_t len,
                          uint64_t *events, uint64_t *sequence);

#endif
