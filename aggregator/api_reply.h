/*
 * api_reply.h — the envelope of every /api/v1 answer, as Prometheus's HTTP API has it:
 *
 *   success:  200 {"status": "success", "data": ...}
 *   error:    4xx/5xx {"status": "error", "errorType": "bad_data" | "not_found" |
 *             "unauthorized" | "unavailable" | "internal", "error": "what, and where"}
 *
 * Errors go through mw_http_respond_error (common/http_server.h), which maps the status to the
 * errorType, so the server's own 404/405/413 answers have the envelope too. Query parameters
 * that name a point in time are read here, one rule for every endpoint (mw_clock_parse_time).
 */
#ifndef MW_AGGREGATOR_API_REPLY_H
#define MW_AGGREGATOR_API_REPLY_H

#include "http_server.h"

#include <jansson.h>
#include <stdint.h>

/* Answer 200 with `data` (a reference the call takes; NULL means out of memory: 500). */
void mw_api_respond_data(struct mw_http_exchange *ex, json_t *data);

/* Answer 200 with `json`, a document already encoded (a stored profile), as the data. */
void mw_api_respond_raw_data(struct mw_http_exchange *ex, const char *json, size_t len);

/* The time in query parameter `name` into *out_ms (epoch ms). Returns 0, MW_ENOTFOUND (absent:
 * *out_ms untouched) or MW_EINVAL (not RFC 3339, Unix seconds or Unix milliseconds). */
int mw_api_time_param(const char *query, const char *name, int64_t *out_ms);

/* What a time parameter takes, for error messages. */
#define MW_API_TIME_FORMS "RFC 3339, Unix seconds (below 1e11, fraction allowed) or Unix ms"

#endif
