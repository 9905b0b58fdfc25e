/* zframe.c — zstd compression of batches with bounded decompression. */
#include "zframe.h"

#include "alloc.h"
#include "error.h"

#include <zstd.h>

struct mw_zframe_ctx {
    ZSTD_CCtx *cctx;
    ZSTD_DCtx *dctx;
    int level;
};

struct mw_zframe_ctx *mw_zframe_ctx_create(int level)
{
    struct mw_zframe_ctx *ctx = mw_calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    ctx->cctx = ZSTD_createCCtx();
    ctx->dctx = ZSTD_createDCtx();
    if (!ctx->cctx || !ctx->dctx) {
        mw_zframe_ctx_destroy(ctx);
        return NULL;
    }
    ctx->level = level;
    ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(ctx->cctx, ZSTD_c_contentSizeFlag, 1);
    return ctx;
}

void mw_zframe_ctx_destroy(struct mw_zframe_ctx *ctx)
{
    if (!ctx)
        return;
    ZSTD_freeCCtx(ctx->cctx);
    ZSTD_freeDCtx(ctx->dctx);
    mw_free(ctx);
}

int mw_zframe_compress(struct mw_zframe_ctx *ctx, const void *src, size_t n, struct mw_buf *out)
{
    size_t bound = ZSTD_compressBound(n);
    int rc = mw_buf_reserve(out, bound);
    if (rc)
        return rc;
    size_t written = ZSTD_compress2(ctx->cctx, out->data + out->len, bound, src, n);
    if (ZSTD_isError(written))
        return MW_ECOMPRESS;
    out->len += written;
    out->data[out->len] = '\0';
    return 0;
}

int mw_zframe_decompress(struct mw_zframe_ctx *ctx, const void *src, size_t n, size_t max_out,
                         struct mw_buf *out)
{
    if (!src || n == 0)
        return MW_ECORRUPT;
    size_t frame_size = ZSTD_findFrameCompressedSize(src, n);
    if (ZSTD_isError(frame_size) || frame_size != n)
        return MW_ECORRUPT;
    unsigned long long content = ZSTD_getFrameContentSize(src, n);
    if (content == ZSTD_CONTENTSIZE_ERROR || content == ZSTD_CONTENTSIZE_UNKNOWN)
        return MW_ECORRUPT;
    if (content > max_out)
        return MW_ETOOBIG;
    int rc = mw_buf_reserve(out, (size_t)content);
    if (rc)
        return rc;
    size_t got = ZSTD_decompressDCtx(ctx->dctx, out->data + out->len, (size_t)content, src, n);
    if (ZSTD_isError(got) || got != content)
        return MW_ECORRUPT;
    out->len += got;
    out->data[out->len] = '\0';
    return 0;
}
