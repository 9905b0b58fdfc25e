/*
 * api.h — the aggregator's read side over HTTP: JSON under /api/v1, answered from Redis.
 * aggregator/openapi.json describes every path, parameter and answer (served at
 * /api/v1/openapi.json); tests/integration/test_api_openapi.py holds the answers to it.
 *
 * Every answer has Prometheus's envelope (api_reply.h): {"status": "success", "data": D} or
 * {"status": "error", "errorType", "error"}. Below, D of each path:
 *
 *   GET /api/v1/models
 *       {"models": ["churn", "fraud"]}
 *   GET /api/v1/models/{model}/windows?version=&resolution=60&from=TIME&to=TIME&limit=N
 *       {"model": "churn", "resolution_s": 60, "watermark_ms": ..., "windows": [{"start_ms",
 *        "end_ms", "version", "final", "count", "errors", "error_rate", "errors_by_code",
 *        "latency_us": {"p50", "p90", "p95", "p99", "mean"}, "records", "weighted_records",
 *        "feedback", "tokens_in", "tokens_out", "late", "late_records",
 *        "slo": {"availability", "availability_target", "availability_met",
 *                "latency_attainment", "latency_threshold_ms", "latency_target", "latency_met"},
 *        "cost": {"cpu_core_seconds", "cpu_core_seconds_billed", "memory_gib_seconds",
 *                 "memory_gib_seconds_billed", "gpu_seconds", "pod_seconds", "idle_share",
 *                 "total", "per_1k_predictions"},
 *        "performance": {"labels", "binary", "multiclass", "regression"}}, ...]}
 *       sorted by start, then version; from/to bound the start (default the last 24 h);
 *       resolution is a configured window width in seconds; limit defaults to 1000, at most
 *       10000. A window is final once the model's watermark has reached its end plus the
 *       allowed lateness (schema.h).
 *   GET /api/v1/models/{model}/drift?version=V&window=TIME&resolution=S
 *       drift of every feature of the (model, version) profile in one window (default: the
 *       latest window of that version): {"model", "version", "resolution_s", "start_ms",
 *       "end_ms", "final", "profile_version", "verdict", "features": [{"feature", "type",
 *       "weighted_count", "observed", ...}]} (signals_drift.h)
 *   GET /api/v1/models/{model}/slo?version=V&at=TIME
 *       error rates over 5m..3d before `at` (default now) and the four burn-rate pairs
 *       (signals_slo.h): {"model", "version", "at_ms", "availability_target",
 *       "error_rate": {"5m": ..., ...}, "burn_rates": [{"long", "short", "threshold",
 *       "long_burn_rate", "short_burn_rate", "burning"}, ...]}
 *   GET /api/v1/models/{model}/profiles             {"versions": [...]}
 *   GET /api/v1/models/{model}/profiles/{version}   the profile document
 *   PUT /api/v1/models/{model}/profiles/{version}   store a profile (validated; the document's
 *                                                   model and version must match the path):
 *                                                   {"stored": true}
 *   GET /api/v1/openapi.json                        the description itself, without envelope
 *
 * TIME is RFC 3339 or Unix seconds/ms by magnitude (mw_clock_parse_time). Every GET under
 * /models/{model}/ answers 404 for a model the aggregator does not know (no batch applied, no
 * profile stored). Names carry their unit (_ms, _us, _s); rates and shares are fractions.
 */
#ifndef MW_AGGREGATOR_API_H
#define MW_AGGREGATOR_API_H

#include "aggregator_config.h"
#include "http_server.h"
#include "profile_cache.h"
#include "store.h"

struct mw_api;

/* Register the routes on `srv`; everything is borrowed for the server's life. Returns 0 or
 * MW_ENOMEM. Free with mw_api_destroy after the server. */
int mw_api_create(struct mw_http_server *srv, const struct mw_aggregator_config *cfg,
                  struct mw_store *store, struct mw_profile_cache *profiles, struct mw_api **out);
void mw_api_destroy(struct mw_api *api); /* accepts NULL */

#endif
