/*
 * zframe.h — zstd framing for batches on the wire.
 *
 * A batch travels as one standard zstd frame with its content size in the header, so any zstd
 * tool can read it and the reader knows the decoded size before it allocates. Decompression
 * refuses frames that declare (or turn out to hold) more than the caller's maximum, which stops
 * decompression bombs from Kafka.
 */
#ifndef MW_COMMON_ZFRAME_H
#define MW_COMMON_ZFRAME_H

#include "buf.h"

#include <stddef.h>

struct mw_zframe_ctx; /* reusable zstd contexts; one per thread */

/* Create contexts for compression at `level` (1..19; 3 is zstd's default). */
struct mw_zframe_ctx *mw_zframe_ctx_create(int level);
void mw_zframe_ctx_destroy(struct mw_zframe_ctx *ctx); /* accepts NULL */

/* Compress src[0..n) into `out` (appended). Returns 0, MW_EFULL (out's maximum) or
 * MW_ECOMPRESS. */
int mw_zframe_compress(struct mw_zframe_ctx *ctx, const void *src, size_t n, struct mw_buf *out);

/* Decompress one frame from src[0..n) into `out` (appended). Returns 0; MW_ECORRUPT when the
 * input is not exactly one complete zstd frame with a known content size; MW_ETOOBIG when it
 * holds more than max_out bytes; MW_EFULL or MW_ENOMEM when out cannot grow. */
int mw_zframe_decompress(struct mw_zframe_ctx *ctx, const void *src, size_t n, size_t max_out,
                         struct mw_buf *out);

#endif
