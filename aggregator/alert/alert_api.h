/*
 * alert_api.h — alerts and silences over HTTP, answered from Redis by any replica:
 *
 *   GET    /api/v1/alerts             active alerts (pending and firing), newest first:
 *          {"alerts": [{"labels", "annotations", "state", "value", "samples",
 *                       "active_since_ms", "fired_at_ms", "values", "generator_url",
 *                       "silenced_by"}]}   (?state=firing|pending|all; default pending+firing)
 *   GET    /api/v1/silences           {"silences": [{"id", "matchers", "starts_at_ms",
 *                                     "ends_at_ms", "created_by", "comment", "state"}]}
 *   POST   /api/v1/silences           {"matchers": ["alertname=\"X\"", ...], "starts_at_ms"
 *                                     (default now), "ends_at_ms" or "duration" ("2h"),
 *                                     "created_by", "comment"}  ->  {"id": "..."}
 *   DELETE /api/v1/silences/{id}      expire it now -> {"id": "...", "state": "expired"}
 *
 * Writes need `Authorization: Bearer <token>` with the token read once from
 * alerting.api_token_file (401 otherwise; 403 when no token file is configured), both
 * errorType "unauthorized". Timestamps are Unix milliseconds. The objects above are the data
 * of the API's envelope (api_reply.h).
 */
#ifndef MW_ALERT_ALERT_API_H
#define MW_ALERT_ALERT_API_H

#include "aggregator_config.h"
#include "http_server.h"
#include "store.h"

struct mw_alerting;
struct mw_alert_api;

/* Register the routes on `srv` (everything borrowed for the server's life; `alerting` is told
 * when silences change). Reads the token file. Returns 0, MW_EIO (token file unreadable,
 * logged) or MW_ENOMEM. */
int mw_alert_api_create(struct mw_http_server *srv, const struct mw_aggregator_config *cfg,
                        struct mw_store *store, struct mw_alerting *alerting,
                        struct mw_alert_api **out);
void mw_alert_api_destroy(struct mw_alert_api *api); /* accepts NULL */

#endif
