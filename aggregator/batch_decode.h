/*
 * batch_decode.h — from a Kafka record to a validated Batch, or a reason for the dead-letter
 * topic.
 *
 * Nothing a producer sends can crash the aggregator: the payload must be one zstd frame no
 * larger than the configured maximum, decode as a Batch of a known schema version, and carry a
 * complete identity; anything else is refused with a reason that goes into the DLQ record's
 * header and the drop counter.
 *
 * Then every number from outside is bounded one value at a time (mw_batch_bound), so that one
 * bad value never takes the rest of its batch down (DESIGN.md, "Guarantees"): a value out of
 * its bound is refused (cleared, or its counters entry or record dropped) and counted under
 * its field; an event time later than the aggregator's clock plus windows.max_clock_skew is
 * clamped to the clock and counted. Old event times stay legitimate (backfills, replays): the
 * lateness rule (window_apply.h) decides what they may still change.
 */
#ifndef MW_AGGREGATOR_BATCH_DECODE_H
#define MW_AGGREGATOR_BATCH_DECODE_H

#include "buf.h"
#include "telemetry.pb-c.h"
#include "zframe.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MW_DLQ_REASON_MAP(XX)                                                                      \
    XX(SCHEMA, "schema")         /* unknown schema version */                                      \
    XX(DECOMPRESS, "decompress") /* not a complete zstd frame */                                   \
    XX(TOO_BIG, "too_big")       /* decompressed size over the maximum */                          \
    XX(DECODE, "decode")         /* not a protobuf Batch */                                        \
    XX(IDENTITY, "identity")     /* agent id, boot id or sequence missing */                       \
    XX(INVALID, "invalid")       /* counter buckets the windows cannot hold */                     \
    XX(APPLY, "apply")           /* a model's part Redis could not take (mw-dlq-detail says) */

enum mw_dlq_reason {
    MW_DLQ_NONE = 0,
#define XX(name, text) MW_DLQ_##name,
    MW_DLQ_REASON_MAP(XX)
#undef XX
        MW_DLQ_REASON_COUNT
};

const char *mw_dlq_reason_name(enum mw_dlq_reason reason);

/*
 * Decode `payload`. `schema_header` is the record's mw-schema header value (NULL when absent).
 * `scratch` receives the decompressed bytes (reset first). On success returns 0 and *out is a
 * Batch the caller frees with modelwatch__v1__batch__free_unpacked(*out, NULL); otherwise
 * returns MW_EPARSE with *why set.
 */
int mw_batch_decode(struct mw_zframe_ctx *zctx, const void *payload, size_t len,
                    const char *schema_header, size_t max_bytes, struct mw_buf *scratch,
                    Modelwatch__V1__Batch **out, enum mw_dlq_reason *why);
/* The same with the batch's memory from `allocator` (an arena: arena.h), which then frees it;
 * NULL is malloc. A batch that does not fit the allocator is MW_DLQ_DECODE. */
int mw_batch_decode_with(struct mw_zframe_ctx *zctx, const void *payload, size_t len,
                         const char *schema_header, size_t max_bytes, struct mw_buf *scratch,
                         ProtobufCAllocator *allocator, Modelwatch__V1__Batch **out,
                         enum mw_dlq_reason *why);

/* Bounds of numbers from outside (documented in mw_batch_bound). */
#define MW_BOUND_MAX_COUNT (1ull << 32) /* predictions of one counters entry */
#define MW_BOUND_MAX_TOKENS_PER_PREDICTION (1ull << 24)
#define MW_BOUND_MAX_WEIGHT 1e9      /* a record's weight: 1 / sampling rate */
#define MW_BOUND_MAX_ABS_VALUE 1e100 /* features, scores, regression values and labels */
#define MW_BOUND_MAX_CPU_SECONDS 1e9
#define MW_BOUND_MAX_MEMORY_BYTES (1ull << 50)
#define MW_BOUND_MAX_INTERVAL_MS 86400000

/* The fields whose values are bounded, as named on /metrics (field="..."). */
#define MW_BATCH_FIELD_MAP(XX)                                                                     \
    XX(COUNTERS_MODEL, "counters.model")                  /* bad name: entry dropped */            \
    XX(COUNTERS_BUCKET, "counters.bucket")                /* bad start or width: entry dropped */  \
    XX(COUNTERS_BUCKET_START, "counters.bucket_start_ms") /* ahead of the clock: clamped */        \
    XX(COUNTERS_COUNT, "counters.count")                  /* over the bound: entry dropped */      \
    XX(COUNTERS_ERRORS, "counters.errors")   /* more errors than predictions: dropped */           \
    XX(COUNTERS_LATENCY, "counters.latency") /* inconsistent histogram: dropped */                 \
    XX(COUNTERS_LATENCY_SUM, "counters.latency.sum_us")  /* outside its buckets: estimated */      \
    XX(COUNTERS_INPUT_TOKENS, "counters.input_tokens")   /* over the bound: dropped */             \
    XX(COUNTERS_OUTPUT_TOKENS, "counters.output_tokens") /* over the bound: dropped */             \
    XX(COUNTERS_FEEDBACK, "counters.feedback_count")     /* over the bound: dropped */             \
    XX(RESOURCES, "resources")                           /* impossible use: dropped */             \
    XX(EVENT_MODEL, "event.model")        /* bad model or version: record dropped */               \
    XX(EVENT_TIME, "event.event_time_ms") /* negative: dropped; ahead: clamped */                  \
    XX(RECORD_WEIGHT, "record.weight")    /* not in (0, max]: taken as 1 */                        \
    XX(EVENT_FEATURE, "event.feature")    /* beyond the bound: taken as missing */                 \
    XX(EVENT_SCORE, "event.output.score") /* not finite or beyond: cleared */                      \
    XX(EVENT_VALUE, "event.output.value") /* not finite or beyond: cleared */                      \
    XX(LABEL, "label")                    /* no model, id or label: dropped */                     \
    XX(LABEL_TIME, "label.event_time_ms") /* negative: dropped; ahead: clamped */                  \
    XX(LABEL_VALUE, "label.label_value")  /* not finite or beyond: dropped */

enum mw_batch_field {
#define XX(name, text) MW_BATCH_FIELD_##name,
    MW_BATCH_FIELD_MAP(XX)
#undef XX
        MW_BATCH_FIELD_COUNT
};

const char *mw_batch_field_name(enum mw_batch_field field);

struct mw_batch_bounds {
    int64_t now_ms;            /* the aggregator's clock */
    int64_t max_skew_ms;       /* times later than now_ms + this are clamped to now_ms */
    const int64_t *windows_ms; /* counter buckets must divide each of these widths */
    size_t n_windows;
    ProtobufCAllocator *allocator; /* the batch's, as given to mw_batch_decode_with (NULL: malloc) */
};

/* What mw_batch_bound refused and clamped, added up over batches. */
struct mw_batch_tally {
    uint64_t invalid[MW_BATCH_FIELD_COUNT]; /* values refused */
    uint64_t clamped[MW_BATCH_FIELD_COUNT]; /* values replaced by their bound */
    uint64_t invalid_predictions;           /* predictions of counters entries dropped */
};

/*
 * Bound every number of decoded batch `b` (modified in place: refused counters entries and
 * records are freed and taken out of their arrays, refused values cleared) and add what was
 * refused or clamped to `tally`. Bounds: a counters entry's count <= MW_BOUND_MAX_COUNT, its
 * errors and latency histogram at most its count, its latency sum within what its buckets
 * allow (else replaced by their estimate), its tokens <= count * MW_BOUND_MAX_TOKENS_PER_
 * PREDICTION; event times >= 0 and <= now + max_skew (later ones become now); weights in
 * (0, MW_BOUND_MAX_WEIGHT]; every real number finite and within MW_BOUND_MAX_ABS_VALUE.
 */
void mw_batch_bound(Modelwatch__V1__Batch *b, const struct mw_batch_bounds *bounds,
                    struct mw_batch_tally *tally);

#endif
