/*
 * batch_decode.h — from a Kafka record to a validated Batch, or a reason for the dead-letter
 * topic.
 *
 * Nothing a producer sends can crash the aggregator: the payload must be one zstd frame no
 * larger than the configured maximum, decode as a Batch of a known schema version, and carry a
 * complete identity and well-formed counters; anything else is refused with a reason that goes
 * into the DLQ record's header and the drop counter.
 */
#ifndef MW_AGGREGATOR_BATCH_DECODE_H
#define MW_AGGREGATOR_BATCH_DECODE_H

#include "buf.h"
#include "telemetry.pb-c.h"
#include "zframe.h"

#include <stddef.h>

#define MW_DLQ_REASON_MAP(XX)                                                                      \
    XX(SCHEMA, "schema")         /* unknown schema version */                                      \
    XX(DECOMPRESS, "decompress") /* not a complete zstd frame */                                   \
    XX(TOO_BIG, "too_big")       /* decompressed size over the maximum */                          \
    XX(DECODE, "decode")         /* not a protobuf Batch */                                        \
    XX(IDENTITY, "identity")     /* agent id, boot id or sequence missing */                       \
    XX(INVALID, "invalid")       /* bad model name, counters or histogram */

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

#endif
