/* batch_decode.c — decompress, decode and validate one Kafka record. */
#include "batch_decode.h"

#include "error.h"
#include "latency_hist.h"
#include "names.h"

#include <string.h>

#define SCHEMA_VERSION 1

const char *mw_dlq_reason_name(enum mw_dlq_reason reason)
{
    switch (reason) {
#define XX(name, text)                                                                             \
    case MW_DLQ_##name:                                                                            \
        return text;
        MW_DLQ_REASON_MAP(XX)
#undef XX
    default:
        return "none";
    }
}

static int nonempty(const char *s)
{
    return s && *s;
}

static enum mw_dlq_reason check_counters(const Modelwatch__V1__ModelCounters *mc)
{
    if (!mw_model_name_valid(mc->model) || !mw_version_valid(mc->version))
        return MW_DLQ_INVALID;
    if (!mc->has_bucket_width_ms || mc->bucket_width_ms <= 0 || !mc->has_bucket_start_ms ||
        mc->bucket_start_ms % mc->bucket_width_ms != 0)
        return MW_DLQ_INVALID;
    const Modelwatch__V1__LatencyHistogram *h = mc->latency;
    if (h) {
        if (h->n_bucket_index != h->n_bucket_count)
            return MW_DLQ_INVALID;
        for (size_t i = 0; i < h->n_bucket_index; i++)
            if (h->bucket_index[i] >= MW_LATENCY_BUCKETS)
                return MW_DLQ_INVALID;
    }
    for (size_t i = 0; i < mc->n_errors; i++)
        if (!nonempty(mc->errors[i]->code))
            return MW_DLQ_INVALID;
    return MW_DLQ_NONE;
}

static enum mw_dlq_reason check_batch(const Modelwatch__V1__Batch *b)
{
    if (!b->has_schema_version || b->schema_version != SCHEMA_VERSION)
        return MW_DLQ_SCHEMA;
    if (!b->identity || !nonempty(b->identity->agent_id) || !nonempty(b->identity->boot_id) ||
        !b->has_sequence || b->sequence == 0 || b->sequence > UINT32_MAX)
        return MW_DLQ_IDENTITY;
    if (b->snapshot) {
        for (size_t i = 0; i < b->snapshot->n_models; i++) {
            enum mw_dlq_reason r = check_counters(b->snapshot->models[i]);
            if (r)
                return r;
        }
    }
    return MW_DLQ_NONE;
}

int mw_batch_decode(struct mw_zframe_ctx *zctx, const void *payload, size_t len,
                    const char *schema_header, size_t max_bytes, struct mw_buf *scratch,
                    Modelwatch__V1__Batch **out, enum mw_dlq_reason *why)
{
    *out = NULL;
    *why = MW_DLQ_NONE;
    if (schema_header && strcmp(schema_header, "1") != 0) {
        *why = MW_DLQ_SCHEMA;
        return MW_EPARSE;
    }
    mw_buf_reset(scratch);
    int rc = mw_zframe_decompress(zctx, payload, len, max_bytes, scratch);
    if (rc) {
        *why = rc == MW_ETOOBIG ? MW_DLQ_TOO_BIG : MW_DLQ_DECOMPRESS;
        return MW_EPARSE;
    }
    Modelwatch__V1__Batch *b =
        modelwatch__v1__batch__unpack(NULL, scratch->len, (const uint8_t *)scratch->data);
    if (!b) {
        *why = MW_DLQ_DECODE;
        return MW_EPARSE;
    }
    *why = check_batch(b);
    if (*why) {
        modelwatch__v1__batch__free_unpacked(b, NULL);
        return MW_EPARSE;
    }
    *out = b;
    return 0;
}
