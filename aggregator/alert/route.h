/*
 * route.h — where alerts go and when: label matchers, the routing tree, and the aggregation
 * groups with their timers, after Alertmanager's.
 *
 * Matchers are Alertmanager's text form: `name="value"`, `name!="value"`, `name=~"regex"`,
 * `name!~"regex"` (the value may also be unquoted). A regex is POSIX extended and anchored at
 * both ends (`^(regex)$`), as Alertmanager anchors its. A label that is absent reads as "", so
 * `team=""` matches alerts without a team.
 *
 * The routing tree: an alert enters at the root (which matches everything and must name a
 * receiver); at each route that matches, the children are tried in order; the alert goes to
 * the first child that matches and, where that child says `continue: true`, on to later
 * matching siblings as well; a route none of whose children match takes the alert itself.
 * Children inherit receiver, group_by and the three timers from their parent. Configured as:
 *
 *   route:
 *     receiver: pagerduty-ml                       required at the root
 *     group_by: [alertname, model]                 "..." groups by every label
 *     group_wait: 30s                              defaults at the root: 30s, 5m, 4h
 *     group_interval: 5m
 *     repeat_interval: 4h
 *     routes:
 *       - matchers: ['severity=~"warning|info"']
 *         receiver: tickets
 *       - matchers: ['model="fraud"', 'severity="critical"']
 *         receiver: fraud-oncall
 *         continue: true
 *
 * Aggregation groups (mw_dispatch) are pure, clock-driven state: alerts are put in with the
 * time, and mw_dispatch_advance(now) returns the notifications due, so tests (and a replay)
 * drive the clock. Per group, keyed by route and the values of its group_by labels:
 *  - the first notification goes out group_wait after the group's first alert;
 *  - after that the group is looked at every group_interval: alerts new since the last
 *    notification, and resolves, go out then, batched;
 *  - an unchanged group with firing alerts is sent again once repeat_interval has passed
 *    since its last notification;
 *  - a resolved alert is sent once, and only if its firing was sent (a flap inside group_wait
 *    pages nobody), then leaves the group; a group with no alerts left goes away;
 *  - silenced or inhibited alerts are not sent as firing; but an alert whose firing was sent
 *    before the silence began still has its resolve delivered, and while it keeps firing under
 *    the silence it is counted in `n_held`, so a receiver keeps the incident open rather than
 *    resolving it because the notification lists nothing firing.
 */
#ifndef MW_ALERT_ROUTE_H
#define MW_ALERT_ROUTE_H

#include "config.h"
#include "labels.h"

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------- */
/* Matchers                                                                                  */

enum mw_match_op { MW_MATCH_EQ, MW_MATCH_NE, MW_MATCH_RE, MW_MATCH_NRE };

struct mw_matcher {
    char *name;
    enum mw_match_op op;
    char *value;
    bool has_re;
    regex_t re; /* RE and NRE */
};

struct mw_matchers {
    size_t n;
    struct mw_matcher *items;
};

/* Parse one matcher. 0, MW_ENOMEM, or MW_ECONFIG with why[] set. Free with mw_matcher_free. */
int mw_matcher_parse(const char *text, struct mw_matcher *out, char *why, size_t why_size);
void mw_matcher_free(struct mw_matcher *m); /* accepts NULL */
bool mw_matcher_matches(const struct mw_matcher *m, const struct mw_labels *labels);

/* Parse n matchers; on MW_ECONFIG *bad is the index of the one in error. */
int mw_matchers_parse(const char *const *texts, size_t n, struct mw_matchers *out, size_t *bad,
                      char *why, size_t why_size);
void mw_matchers_free(struct mw_matchers *ms); /* accepts NULL */
/* Whether every matcher matches (true for none). */
bool mw_matchers_match(const struct mw_matchers *ms, const struct mw_labels *labels);

/* ---------------------------------------------------------------------------------------- */
/* The routing tree                                                                          */

/* One route as configured. Durations are text so that "not set" (NULL: inherit) differs from
 * "0" (send at once). */
struct mw_route_cfg {
    char *receiver;
    struct mw_cfg_strlist matchers;
    struct mw_cfg_strlist group_by;
    char *group_wait;
    char *group_interval;
    char *repeat_interval;
    bool continue_matching;
    struct mw_cfg_list routes; /* struct mw_route_cfg */
};

/* For common/config.c's check hook: a duration, or unset. */
const char *mw_route_check_duration(const void *value);

/* The fields of one route at `prefix` ("" for child routes, "route." at the top of a
 * configuration), with the route struct at `base` (an offsetof) in the configuration struct.
 * For a configuration table:  MW_ROUTE_CFG_FIELDS("route.", offsetof(struct cfg, route)),  */
#define MW_ROUTE_CFG_FIELDS(prefix, base)                                                          \
    {.key = prefix "receiver",                                                                     \
     .type = MW_CFG_STRING,                                                                        \
     .offset = (base) + offsetof(struct mw_route_cfg, receiver),                                   \
     .reloadable = true,                                                                           \
     .desc = "Receiver of the alerts this route takes (inherited when not set)"},                  \
        {.key = prefix "matchers",                                                                 \
         .type = MW_CFG_STRLIST,                                                                   \
         .offset = (base) + offsetof(struct mw_route_cfg, matchers),                               \
         .reloadable = true,                                                                       \
         .desc = "Label matchers an alert must all satisfy (name=\"v\", !=, =~, !~)"},             \
        {.key = prefix "group_by",                                                                 \
         .type = MW_CFG_STRLIST,                                                                   \
         .offset = (base) + offsetof(struct mw_route_cfg, group_by),                               \
         .reloadable = true,                                                                       \
         .desc = "Labels that split alerts into groups (\"...\": all of them)"},                   \
        {.key = prefix "group_wait",                                                               \
         .type = MW_CFG_STRING,                                                                    \
         .offset = (base) + offsetof(struct mw_route_cfg, group_wait),                             \
         .reloadable = true,                                                                       \
         .check = mw_route_check_duration,                                                         \
         .desc = "Wait before a new group's first notification (root default 30s)"},               \
        {.key = prefix "group_interval",                                                           \
         .type = MW_CFG_STRING,                                                                    \
         .offset = (base) + offsetof(struct mw_route_cfg, group_interval),                         \
         .reloadable = true,                                                                       \
         .check = mw_route_check_duration,                                                         \
         .desc = "Wait before notifying about changes in a group (root default 5m)"},              \
        {.key = prefix "repeat_interval",                                                          \
         .type = MW_CFG_STRING,                                                                    \
         .offset = (base) + offsetof(struct mw_route_cfg, repeat_interval),                        \
         .reloadable = true,                                                                       \
         .check = mw_route_check_duration,                                                         \
         .desc = "Wait before repeating an unchanged notification (root default 4h)"},             \
        {.key = prefix "continue",                                                                 \
         .type = MW_CFG_BOOL,                                                                      \
         .offset = (base) + offsetof(struct mw_route_cfg, continue_matching),                      \
         .def = "false",                                                                           \
         .reloadable = true,                                                                       \
         .desc = "After this route matches, try its later siblings too"},                          \
    {                                                                                              \
        .key = prefix "routes", .type = MW_CFG_LIST,                                               \
        .offset = (base) + offsetof(struct mw_route_cfg, routes), .sub = mw_route_cfg_table,       \
        .elem_size = sizeof(struct mw_route_cfg), .reloadable = true,                              \
        .desc = "Child routes, tried in order"                                                     \
    }

/* The table of a child route (the fields above at prefix ""). */
extern const struct mw_cfg_field mw_route_cfg_table[];

#define MW_ROUTE_DEFAULT_GROUP_WAIT_MS 30000
#define MW_ROUTE_DEFAULT_GROUP_INTERVAL_MS 300000
#define MW_ROUTE_DEFAULT_REPEAT_INTERVAL_MS 14400000
#define MW_ROUTE_MAX_DEPTH 16
#define MW_ROUTE_MAX_MATCHES 32 /* routes one alert can reach through `continue` */

struct mw_route {
    char *key; /* where it was configured: "route", "route.routes[1]", ... */
    char *receiver;
    struct mw_matchers matchers;
    size_t n_group_by;
    char **group_by;
    bool group_by_all; /* "..." */
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
    bool continue_matching;
    size_t n_routes;
    struct mw_route *routes;
};

/*
 * Build the tree from its configuration, configured under `key` ("route") in `file`; `text`
 * is the file's text, or NULL to read `file` again for the line of an error. `receivers`, a
 * NULL-terminated list, is what receiver names may be (NULL: any). Checks: a receiver at the
 * root, no matchers at the root, every matcher and group_by label, known receivers,
 * group_interval and repeat_interval above zero, depth. Returns 0, MW_ENOMEM, or MW_ECONFIG
 * with err "FILE:LINE: route.routes[0].matchers[1]: ...". Free with mw_route_free.
 */
int mw_route_build(const struct mw_route_cfg *cfg, const char *key, const char *file,
                   const char *text, const char *const *receivers, struct mw_route **out,
                   struct mw_cfg_error *err);
void mw_route_free(struct mw_route *root); /* accepts NULL */

/* The routes that take an alert with `labels` (at most `max`, in tree order). */
size_t mw_route_match(const struct mw_route *root, const struct mw_labels *labels,
                      const struct mw_route **out, size_t max);

/* ---------------------------------------------------------------------------------------- */
/* Aggregation groups                                                                        */

struct mw_inhibitor; /* inhibit.h */
struct mw_silences;  /* silence.h */

/* An alert as notifications carry it. */
struct mw_alert {
    struct mw_labels labels;
    struct mw_labels annotations;
    int64_t starts_at_ms;
    int64_t ends_at_ms; /* 0 while firing; when it resolved, after */
};

void mw_alert_free(struct mw_alert *a); /* the labels; accepts NULL */

struct mw_notification {
    char *group_key;      /* route key + group labels: stable across restarts */
    const char *receiver; /* borrowed from the route tree */
    const struct mw_route *route;
    struct mw_labels group_labels;
    int64_t at_ms;
    size_t n_firing;
    struct mw_alert *firing; /* owned copies */
    size_t n_resolved;
    struct mw_alert *resolved;
    size_t n_held; /* paged earlier, still firing, silenced or inhibited now */
    bool repeat;   /* nothing changed: repeat_interval passed */
};

struct mw_notifications {
    size_t n;
    struct mw_notification *items;
};

void mw_notifications_free(struct mw_notifications *ns); /* accepts NULL; leaves it empty */

#define MW_DISPATCH_MAX_GROUPS 100000
#define MW_DISPATCH_MAX_ALERTS_PER_GROUP 10000

struct mw_dispatch;

/* Groups for the tree `root` and the inhibition rules `inhibitor` (NULL: none); both are
 * borrowed and must outlive the dispatcher. 0 or MW_ENOMEM. */
int mw_dispatch_create(const struct mw_route *root, const struct mw_inhibitor *inhibitor,
                       struct mw_dispatch **out);
void mw_dispatch_destroy(struct mw_dispatch *d); /* accepts NULL */

/*
 * Put a firing (ends_at_ms == 0) or resolved alert, at `now_ms`: it replaces the alert with the
 * same labels in each group its routes lead to; a firing alert creates a group that does not
 * exist yet (its first notification due at now + group_wait). A resolved alert for a group
 * that does not exist was never notified by it and is dropped. The alert is copied. Returns
 * 0, MW_EFULL (too many groups, or alerts in one) or MW_ENOMEM.
 */
int mw_dispatch_put(struct mw_dispatch *d, const struct mw_alert *alert, int64_t now_ms);

/*
 * Run every group timer due at or before `now_ms`, with `silences` (NULL: none) as they stand
 * at each timer's time, and APPEND the notifications due to `out` (free with
 * mw_notifications_free). Returns 0 or MW_ENOMEM.
 */
int mw_dispatch_advance(struct mw_dispatch *d, int64_t now_ms, const struct mw_silences *silences,
                        struct mw_notifications *out);

/* When the next timer is due (INT64_MAX: no group). */
int64_t mw_dispatch_next_ms(const struct mw_dispatch *d);
size_t mw_dispatch_n_groups(const struct mw_dispatch *d);

#endif
