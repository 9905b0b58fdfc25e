/*
 * alert_config.h — the alerting half of the aggregator's configuration, compiled: the rule
 * files its `rule_files` globs name, the routing tree of `route`, the inhibition rules of
 * `inhibit_rules`, and the `receivers` checked (their key files read once).
 *
 * --check-config, start-up and SIGHUP all compile through here, so every error reads the same
 * way and names FILE:LINE: KEY — of a rule file, or of the aggregator's own file:
 *
 *     rules/slo.yaml:14: groups[0].rules[1].resolve_threshold: 0.08 is on the wrong side ...
 *     aggregator.yaml:41: route.routes[0].receiver: unknown receiver "pd" (receivers: ...)
 *
 * Routing needs a receiver at its root; a configuration without receivers and without
 * `route.receiver` still evaluates its rules (the alerts show in /api/v1/alerts and
 * /metrics) but notifies nobody.
 */
#ifndef MW_ALERT_ALERT_CONFIG_H
#define MW_ALERT_ALERT_CONFIG_H

#include "aggregator_config.h"
#include "alert/inhibit.h"
#include "alert/route.h"
#include "alert/rules.h"

#include <stdbool.h>
#include <stddef.h>

struct mw_alert_config {
    struct mw_rule_set rules;
    struct mw_route *route; /* NULL: nothing is routed */
    struct mw_inhibitor inhibitor;
};

/*
 * Make the relative globs of cfg->rule_files relative to the directory of `config_path`
 * instead (Prometheus reads rule_files so), in place. 0 or MW_ENOMEM.
 */
int mw_alert_config_resolve_paths(struct mw_aggregator_config *cfg, const char *config_path);

/*
 * Compile the alerting sections of `cfg`, loaded from `config_path` (for messages and lines;
 * NULL: "<config>"). With `check_receivers` each receiver is also created once and destroyed,
 * so a missing or empty key file is reported now. Returns 0, or MW_ECONFIG / MW_EIO / MW_ENOMEM
 * with err->message "FILE:LINE: KEY: ..."; *out is then empty. Free with mw_alert_config_free.
 */
int mw_alert_config_compile(const struct mw_aggregator_config *cfg, const char *config_path,
                            bool check_receivers, struct mw_alert_config *out,
                            struct mw_cfg_error *err);
void mw_alert_config_free(struct mw_alert_config *ac); /* accepts NULL; leaves it empty */

/* For --check-config and start-up (common/cli.h's validate hook): resolve the relative rule
 * files, compile everything with the receivers created once. 0, or nonzero with the message in
 * err. */
int mw_alert_config_check(struct mw_aggregator_config *cfg, const char *config_path, char *err,
                          size_t errsize);

/* Which signal widths the rules use: MW_RESOLUTION_FINE / COARSE bits of rules that run per
 * window and select `model` (any version). */
unsigned mw_alert_config_widths(const struct mw_alert_config *ac, const char *model);

/* The distinct `delay`s of the rules that run per window at resolution `res` and select
 * `model`: each is evaluated on its own cursor. At most `max` into `out`; returns how many. */
#define MW_ALERT_MAX_DELAYS MW_RULES_MAX_DELAYS
size_t mw_alert_config_delays(const struct mw_alert_config *ac, const char *model,
                              enum mw_resolution res, int64_t *out, size_t max);

#endif
