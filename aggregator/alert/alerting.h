/*
 * alerting.h — the alerting half of modelwatch-aggregator on its libuv loop: evaluation in
 * event time, routing, delivery, the notification log and the lease, all through Redis.
 *
 *   lease       One replica evaluates and delivers: the holder of mw:{alert}:lease (SET NX PX
 *               through alert_state.lua, renewed every lease_ttl / 3). Every state write is
 *               fenced by it, so a replica that lost the lease writes nothing. On taking the
 *               lease a replica restores everything from Redis (below) and goes on; the others
 *               only answer the API.
 *   evaluation  Every alerting.evaluation_interval the holder reads each model's watermark
 *               (schema.h); for each width a rule of the model uses, the windows that became
 *               final since its cursor (final under the watermark, schema.h), oldest first and
 *               in chunks, through window_read (with profiles where a drift rule runs; with
 *               MW_WINDOW_READ_COUNTS of both widths around them for burn rates), go to the
 *               evaluator (evaluator.h) one start at a time. The states the chunk changed and
 *               the cursor are written in one fenced script call; only then do its pages and
 *               resolves go to the dispatcher. So a replay of a day of traffic steps exactly the
 *               windows live traffic would, and a crash at any point re-evaluates from the
 *               cursor with the states that match it. Absence runs on the wall clock: the
 *               evaluator notes when each model's watermark last moved.
 *   dispatch    The routing tree's aggregation groups (route.h) run on a uv timer at
 *               mw_dispatch_next_ms, with the silences from Redis (re-read every interval) and
 *               the inhibition rules. Each notification is adapted to the receivers' view
 *               (struct mw_notify_group, with each alert's values and the API URL of its
 *               window), recorded in the notification log ("sending"), then submitted to
 *               delivery; its result is recorded too ("delivered" keeps what the receiver now
 *               knows).
 *   restore     On taking the lease: rule states, cursors, the notification log and silences
 *               are read back; the firing alerts each group's log says were delivered are put
 *               into new groups as if they had been notified then, so the dispatcher's next
 *               run re-emits exactly what was already delivered, which the log recognises and
 *               does not send again; alerts firing now are put as usual, and alerts delivered
 *               as firing that are no longer firing are put as resolved, so their resolve goes
 *               out once. A notification whose outcome is unknown (sent, no result recorded)
 *               is sent again: a page may repeat, never be lost.
 *
 * The HTTP API of alerts and silences is alert_api.h's.
 */
#ifndef MW_ALERT_ALERTING_H
#define MW_ALERT_ALERTING_H

#include "aggregator_config.h"
#include "http_server.h"
#include "prom.h"
#include "store.h"

#include <uv.h>

struct mw_alerting;

/*
 * Start alerting on `loop` with `cfg` (borrowed, must outlive it; its alerting sections are
 * compiled here: the rule files must load), over `store`; the API of alerts and silences is
 * registered on `http` and the alert states and delivery counters on `metrics`. Returns 0,
 * MW_ECONFIG / MW_EIO (logged), or MW_ENOMEM.
 */
int mw_alerting_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg,
                       struct mw_store *store, struct mw_http_server *http,
                       struct mw_prom_registry *metrics, struct mw_alerting **out);

/*
 * SIGHUP: compile the rule files, route and inhibition rules of `fresh` (read from
 * `config_path`; borrowed for the call only) and use them, and its alerting.runbook_base_url
 * and external_url; the holder of the lease restores from Redis under the new rules (rules
 * that are gone resolve their alerts). On an error nothing changes and the error is logged and
 * returned (MW_ECONFIG, MW_EIO, MW_ENOMEM).
 */
int mw_alerting_reload(struct mw_alerting *a, const struct mw_aggregator_config *fresh,
                       const char *config_path);

/* Stop evaluating, release the lease, let deliveries in flight finish for a moment, close
 * every handle. Idempotent. Call before the store is destroyed. */
void mw_alerting_shutdown(struct mw_alerting *a);
/* After the loop has ended. Accepts NULL. */
void mw_alerting_destroy(struct mw_alerting *a);

/* Whether this replica holds the lease (for /metrics and tests). */
bool mw_alerting_is_leader(const struct mw_alerting *a);

/* Silences changed through the API of this replica: re-read them now. */
void mw_alerting_silences_changed(struct mw_alerting *a);

#endif
