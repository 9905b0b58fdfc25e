/* api_reply.c — the /api/v1 success envelope and time parameters (api_reply.h). */
#include "api_reply.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

#define SUCCESS_HEAD "{\"status\":\"success\",\"data\":"

void mw_api_respond_raw_data(struct mw_http_exchange *ex, const char *json, size_t len)
{
    struct mw_buf b;
    mw_buf_init(&b, 256 + len);
    int rc = mw_buf_append_str(&b, SUCCESS_HEAD);
    rc = rc ? rc : mw_buf_append(&b, json, len);
    rc = rc ? rc : mw_buf_append_str(&b, "}");
    if (rc)
        mw_http_respond_error(ex, 500, "out of memory");
    else
        mw_http_respond(ex, 200, "application/json", b.data, b.len);
    mw_buf_free(&b);
}

void mw_api_respond_data(struct mw_http_exchange *ex, json_t *data)
{
    /* Encoded without the envelope first: one copy of a large document less than packing. */
    char *text =
        data ? json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(17) | JSON_ENCODE_ANY) : NULL;
    json_decref(data);
    if (!text) {
        mw_http_respond_error(ex, 500, "out of memory");
        return;
    }
    mw_api_respond_raw_data(ex, text, strlen(text));
    free(text);
}

int mw_api_time_param(const char *query, const char *name, int64_t *out_ms)
{
    char text[64];
    int rc = mw_http_query_param(query, name, text, sizeof text);
    if (rc == MW_ENOTFOUND)
        return rc;
    if (rc || mw_clock_parse_time(text, out_ms) != 0)
        return MW_EINVAL;
    return 0;
}
