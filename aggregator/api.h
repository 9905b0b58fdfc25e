/*
 * api.h — the aggregator's read side over HTTP: JSON under /api/v1, answered from Redis.
 *
 *   GET /api/v1/models
 *       {"models": ["churn", "fraud"]}
 *   GET /api/v1/models/{model}/windows?version=&resolution=60&from=MS&to=MS&limit=N
 *       {"model": "churn", "resolution_s": 60, "windows": [{"start_ms": ..., "end_ms": ...,
 *        "version": "v3", "count": 1234, "errors": 5, "error_rate": 0.004,
 *        "errors_by_code": {"timeout": 5}, "latency_us": {"p50": ..., "p90": ..., "p95": ...,
 *        "p99": ..., "mean": ...}, "records": 123, "feedback": 0, "tokens_in": 0,
 *        "tokens_out": 0}, ...]}
 *   Windows come sorted by start, then version. `from`/`to` are epoch ms (inclusive start
 *   bounds), default the last 24 h; `resolution` is the window width in seconds (one of the
 *   configured widths); `limit` defaults to 1000, at most 10000.
 */
#ifndef MW_AGGREGATOR_API_H
#define MW_AGGREGATOR_API_H

#include "aggregator_config.h"
#include "http_server.h"
#include "store.h"

/* Register the routes on `srv`. `cfg` and `store` are borrowed for the server's life. */
int mw_api_register(struct mw_http_server *srv, const struct mw_aggregator_config *cfg,
                    struct mw_store *store);

#endif
