/* batch_builder.c — Batch wire bytes built by appending records as received. */
#include "batch_builder.h"

#include "error.h"
#include "varint.h"
#include "zframe.h"

#include <string.h>

/* Largest batch decompressed to count its events (the spool's entry bound, uncompressed). */
#define COUNT_MAX_BATCH_BYTES (256u * 1024 * 1024)

/* Field tags of Batch and Record (field number << 3 | wire type). */
#define TAG_BATCH_RECORDS 0x2a        /* 5, length-delimited */
#define TAG_BATCH_SNAPSHOT 0x32       /* 6, length-delimited */
#define TAG_RECORD_WEIGHT 0x19        /* 3, 64-bit */
#define TAG_RECORD_LABEL_SAMPLED 0x20 /* 4, varint */
#define VARINT_MAX 10
#define RECORD_OVERHEAD (1 + VARINT_MAX + 9 + 2)
/* Room kept for the header and the slack of the size estimate. */
#define HEADER_RESERVE 1024
/* Reserved past max_bytes at init for the snapshot and header, so that a batch with a snapshot
 * of ordinary size is sealed without growing (and copying) the buffer. */
#define SNAPSHOT_RESERVE (64u * 1024)
/* Largest compressed batch (a bound far above any batch.max_bytes allowed). */
#define MAX_SEALED_BYTES (256u * 1024 * 1024)


int mw_batch_builder_init(struct mw_batch_builder *b, size_t max_records, size_t max_bytes)
{
    /* The buffer's hard limit leaves room for the snapshot and header past max_bytes. */
    mw_buf_init(&b->wire, max_bytes + 16u * 1024 * 1024);
    mw_buf_init(&b->sealed, MAX_SEALED_BYTES);
    b->n_records = 0;
    b->max_records = max_records;
    b->max_bytes = max_bytes;
    /* One allocation for the life of the builder. Pages are resident only once written, so an
     * agent with little traffic pays only for the batches it actually fills. */
    return mw_buf_reserve(&b->wire, max_bytes + SNAPSHOT_RESERVE);
}

void mw_batch_builder_free(struct mw_batch_builder *b)
{
    mw_buf_free(&b->wire);
    mw_buf_free(&b->sealed);
}

int mw_batch_builder_would_overflow(const struct mw_batch_builder *b, size_t record_len)
{
    return b->n_records > 0 && b->wire.len + record_len + RECORD_OVERHEAD > b->max_bytes;
}

int mw_batch_builder_is_full(const struct mw_batch_builder *b)
{
    return b->n_records >= b->max_records || b->wire.len + HEADER_RESERVE >= b->max_bytes;
}

int mw_batch_builder_add(struct mw_batch_builder *b, const void *client_msg, size_t len,
                         double weight, int label_sampled)
{
    uint8_t tail[11];
    size_t tail_len = 0;
    tail[tail_len++] = TAG_RECORD_WEIGHT;
    memcpy(tail + 1, &weight, 8); /* little-endian hosts: the wire order */
    tail_len += 8;
    if (label_sampled >= 0) {
        tail[tail_len++] = TAG_RECORD_LABEL_SAMPLED;
        tail[tail_len++] = label_sampled ? 1 : 0;
    }
    uint8_t head[1 + VARINT_MAX];
    size_t head_len = 0;
    head[head_len++] = TAG_BATCH_RECORDS;
    head_len += mw_put_varint(head + head_len, (uint64_t)(len + tail_len));
    int rc = mw_buf_reserve(&b->wire, head_len + len + tail_len);
    if (rc)
        return rc;
    mw_buf_append(&b->wire, head, head_len);
    mw_buf_append(&b->wire, client_msg, len);
    mw_buf_append(&b->wire, tail, tail_len);
    b->n_records++;
    return 0;
}

static int append_header(struct mw_buf *out, const Modelwatch__V1__Identity *identity,
                         uint64_t sequence, int64_t sealed_at_ms)
{
    Modelwatch__V1__Batch header = MODELWATCH__V1__BATCH__INIT;
    header.has_schema_version = 1;
    header.schema_version = MW_SCHEMA_VERSION;
    header.identity = (Modelwatch__V1__Identity *)identity;
    header.has_sequence = 1;
    header.sequence = sequence;
    header.has_sealed_at_ms = 1;
    header.sealed_at_ms = sealed_at_ms;
    size_t size = modelwatch__v1__batch__get_packed_size(&header);
    int rc = mw_buf_reserve(out, size);
    if (rc)
        return rc;
    modelwatch__v1__batch__pack(&header, (uint8_t *)out->data + out->len);
    out->len += size;
    return 0;
}

int mw_batch_builder_seal(struct mw_batch_builder *b, struct mw_zframe_ctx *zctx,
                          const Modelwatch__V1__Identity *identity, uint64_t sequence,
                          int64_t sealed_at_ms, const struct mw_buf *snapshot,
                          const void **frame, size_t *frame_len)
{
    *frame = NULL;
    *frame_len = 0;
    mw_buf_reset(&b->sealed);
    uint8_t head[1 + VARINT_MAX];
    size_t head_len = 0;
    head[head_len++] = TAG_BATCH_SNAPSHOT;
    head_len += mw_put_varint(head + head_len, snapshot->len);
    int rc = mw_buf_append(&b->wire, head, head_len);
    if (!rc && snapshot->len)
        rc = mw_buf_append(&b->wire, snapshot->data, snapshot->len);
    if (!rc)
        rc = append_header(&b->wire, identity, sequence, sealed_at_ms);
    if (!rc)
        rc = mw_zframe_compress(zctx, b->wire.data, b->wire.len, &b->sealed);
    /* The next batch starts in the same memory. */
    mw_buf_reset(&b->wire);
    b->n_records = 0;
    if (rc)
        return rc;
    *frame = b->sealed.data;
    *frame_len = b->sealed.len;
    return 0;
}

int mw_batch_count_events(struct mw_zframe_ctx *zctx, const void *payload, size_t len,
                          uint64_t *events, uint64_t *sequence)
{
    struct mw_buf raw;
    *events = 0;
    *sequence = 0;
    mw_buf_init(&raw, COUNT_MAX_BATCH_BYTES);
    int rc = mw_zframe_decompress(zctx, payload, len, COUNT_MAX_BATCH_BYTES, &raw);
    if (rc) {
        mw_buf_free(&raw);
        return rc == MW_ENOMEM ? rc : MW_ECORRUPT;
    }
    Modelwatch__V1__Batch *b =
        modelwatch__v1__batch__unpack(NULL, raw.len, (const uint8_t *)raw.data);
    mw_buf_free(&raw);
    if (!b)
        return MW_ECORRUPT;
    for (size_t i = 0; b->snapshot && i < b->snapshot->n_models; i++)
        *events += b->snapshot->models[i]->count;
    *sequence = b->sequence;
    modelwatch__v1__batch__free_unpacked(b, NULL);
    return 0;
}
