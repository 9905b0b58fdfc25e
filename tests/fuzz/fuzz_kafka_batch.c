/*
 * fuzz_kafka_batch.c — one Kafka record as the aggregator's consumer takes it.
 *
 * The consumer's steps, in its order: mw_batch_decode (zstd frame, size bound, protobuf Batch,
 * schema header, identity), mw_batch_bound (every number from outside), then
 * mw_apply_plan_build (the per-model increments it would send to Redis).
 *
 * Input: one control byte, then the payload. Bit 0 set: the payload is compressed here into a
 * well-formed zstd frame first, so the mutations reach the protobuf decoder and everything
 * after it rather than dying in zstd; clear: the payload is the record as is. Bits 1-2 pick
 * the mw-schema header: absent, "1", "2" or "".
 *
 * Before those steps, the protobuf bytes (the payload, or what its zstd frame holds) are read
 * by both mw_pb_read (the consumer's reader, from malloc and from an arena) and protobuf-c's
 * unpacker: both must refuse them, or both must give the same Batch (mw_pb_equal); anything
 * else aborts.
 */
#include "arena.h"
#include "batch_decode.h"
#include "buf.h"
#include "error.h"
#include "fuzz.h"
#include "pb_read.h"
#include "window_apply.h"
#include "zframe.h"

#include <stdlib.h>

#define MAX_BATCH_BYTES (8u * 1024u * 1024u) /* consumer.max_batch_bytes by default */
#define NOW_MS 1767225600000LL               /* 2026-01-01, fixed so that runs repeat */

static const int64_t widths_ms[] = {60000, 3600000};
static const struct mw_window_spec specs[] = {
    {.width_ms = 60000, .retention_ms = 7 * 86400000LL, .drift = true},
    {.width_ms = 3600000, .retention_ms = 90 * 86400000LL, .drift = true},
};

static struct mw_zframe_ctx *zctx(void)
{
    static struct mw_zframe_ctx *ctx;
    if (!ctx && !(ctx = mw_zframe_ctx_create(1)))
        abort();
    return ctx;
}

static const char *schema_header(uint8_t control)
{
    static const char *const headers[] = {NULL, "1", "2", ""};
    return headers[(control >> 1) & 3];
}

static void plan(const Modelwatch__V1__Batch *b)
{
    struct mw_apply_options opt = {.specs = specs,
                                   .n_specs = 2,
                                   .dedup_retention_ms = 7 * 86400000LL,
                                   .watermark_ms = NOW_MS - 3600000,
                                   .allowed_lateness_ms = 600000,
                                   .out_of_orderness_ms = 60000,
                                   .label_horizon_ms = 86400000,
                                   .now_ms = NOW_MS};
    struct mw_apply_plan p = {0};
    if (mw_apply_plan_build(b, &opt, &p) == 0)
        mw_apply_plan_free(&p);
}

/* mw_pb_read with `allocator` against protobuf-c's unpacker on the same bytes. */
static void differ(const ProtobufCMessage *expect, ProtobufCAllocator *allocator,
                   const uint8_t *data, size_t len)
{
    ProtobufCMessage *got = NULL;
    int rc = mw_pb_read(&modelwatch__v1__batch__descriptor, allocator, data, len, &got);
    if (rc == MW_PB_READ_NOT_MINE || rc == MW_ENOMEM)
        abort(); /* the schema is one it takes, and memory is not bounded here */
    if ((rc == 0) != (expect != NULL) || (rc == 0 && !mw_pb_equal(expect, got)))
        abort();
    protobuf_c_message_free_unpacked(got, allocator);
}

static void differential(const uint8_t *data, size_t len)
{
    ProtobufCMessage *expect = (ProtobufCMessage *)modelwatch__v1__batch__unpack(NULL, len, data);
    differ(expect, NULL, data, len);
    static struct mw_arena arena;
    if (!arena.block && mw_arena_init_growing(&arena, 4096, 64 * (size_t)MAX_BATCH_BYTES))
        abort();
    differ(expect, &arena.pb_allocator, data, len);
    mw_arena_reset(&arena);
    protobuf_c_message_free_unpacked(expect, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_fuzz_quiet();
    if (size < 1)
        return 0;
    uint8_t control = data[0];
    const uint8_t *payload = data + 1;
    size_t payload_len = size - 1;
    struct mw_buf framed, scratch;
    mw_buf_init(&framed, MAX_BATCH_BYTES);
    mw_buf_init(&scratch, MAX_BATCH_BYTES);
    if (control & 1) {
        differential(payload, payload_len);
        if (mw_zframe_compress(zctx(), payload, payload_len, &framed) != 0)
            goto out;
        payload = (const uint8_t *)framed.data;
        payload_len = framed.len;
    } else if (mw_zframe_decompress(zctx(), payload, payload_len, MAX_BATCH_BYTES, &scratch) == 0)
        differential((const uint8_t *)scratch.data, scratch.len);
    Modelwatch__V1__Batch *b = NULL;
    enum mw_dlq_reason why = MW_DLQ_NONE;
    if (mw_batch_decode(zctx(), payload, payload_len, schema_header(control), MAX_BATCH_BYTES,
                        &scratch, &b, &why) != 0) {
        if (why == MW_DLQ_NONE || !mw_dlq_reason_name(why))
            abort(); /* every refusal names its reason for the DLQ header */
        goto out;
    }
    struct mw_batch_bounds bounds = {
        .now_ms = NOW_MS, .max_skew_ms = 300000, .windows_ms = widths_ms, .n_windows = 2};
    struct mw_batch_tally tally = {0};
    mw_batch_bound(b, &bounds, &tally);
    plan(b);
    modelwatch__v1__batch__free_unpacked(b, NULL);
out:
    mw_buf_free(&framed);
    mw_buf_free(&scratch);
    return 0;
}
