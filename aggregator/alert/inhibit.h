/*
 * inhibit.h — inhibition rules: a firing alert that matches a rule's source matchers mutes
 * the alerts that match its target matchers and carry the same values of its `equal` labels
 * (both absent counts as the same, as in Alertmanager). An alert never inhibits itself. E.g.
 * a model that stopped sending mutes its drift and performance alerts:
 *
 *   inhibit_rules:
 *     - source_matchers: ['alertname="ModelAbsent"']
 *       target_matchers: ['signal=~"drift_verdict|psi|accuracy|f1"']
 *       equal: [model]
 *
 * Muting means what route.h says: no firing notification; a resolve of an alert notified
 * before it was inhibited is still delivered.
 */
#ifndef MW_ALERT_INHIBIT_H
#define MW_ALERT_INHIBIT_H

#include "config.h"
#include "labels.h"
#include "route.h"

#include <stdbool.h>
#include <stddef.h>

struct mw_inhibit_rule_cfg {
    struct mw_cfg_strlist source_matchers;
    struct mw_cfg_strlist target_matchers;
    struct mw_cfg_strlist equal;
};

/* The table of one element of an `inhibit_rules:` list. */
extern const struct mw_cfg_field mw_inhibit_rule_cfg_table[];

/* The list field, for a configuration table: MW_INHIBIT_CFG_FIELD("inhibit_rules",
 * offsetof(struct cfg, inhibit_rules)) with a struct mw_cfg_list member. */
#define MW_INHIBIT_CFG_FIELD(name, off)                                                            \
    {                                                                                              \
        .key = name, .type = MW_CFG_LIST, .offset = (off), .sub = mw_inhibit_rule_cfg_table,       \
        .elem_size = sizeof(struct mw_inhibit_rule_cfg), .reloadable = true,                       \
        .desc = "Alerts matching source_matchers mute those matching target_matchers with the "    \
                "same `equal` labels"                                                              \
    }

struct mw_inhibit_rule {
    struct mw_matchers source;
    struct mw_matchers target;
    size_t n_equal;
    char **equal;
};

struct mw_inhibitor {
    size_t n;
    struct mw_inhibit_rule *rules;
};

/*
 * Build from a loaded list (struct mw_inhibit_rule_cfg elements) configured under `key`
 * ("inhibit_rules") in `file` (`text`: its text, or NULL to read it again on error). Each rule
 * needs source and target matchers. 0, MW_ENOMEM, or MW_ECONFIG with err
 * "FILE:LINE: inhibit_rules[0].source_matchers[1]: ...". Free with mw_inhibitor_free.
 */
int mw_inhibitor_build(const struct mw_cfg_list *cfg, const char *key, const char *file,
                       const char *text, struct mw_inhibitor *out, struct mw_cfg_error *err);
void mw_inhibitor_free(struct mw_inhibitor *inh); /* accepts NULL; leaves it empty */

/* Whether `target` is inhibited by one of the `n_firing` firing alerts' labels. */
bool mw_inhibited(const struct mw_inhibitor *inh, const struct mw_labels *target,
                  const struct mw_labels *const *firing, size_t n_firing);

#endif
