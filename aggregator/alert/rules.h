/*
 * rules.h — alert rule files: the signal catalogue, loading and checking of rule files, and
 * what a rule turns into when it matches a model (its alert's labels and annotations).
 *
 * A rule file is YAML in Prometheus's layout: named groups of rules.
 *
 *   groups:
 *     - name: service-slo              unique in the file
 *       interval: 1m                   how often wall-clock rules (absence) run; default 1m
 *       rules:
 *         - name: ErrorRateHigh        unique in the file; becomes the label alertname
 *           signal: error_rate         one of the catalogue below
 *           model: "fraud-*"           fnmatch(3) glob on the model name; default "*"
 *           version: "*"               glob on the version; default "*" (each version alone)
 *           feature: "*"               drift signals only: glob on the feature name
 *           resolution: 1m             window: 1m / fine (windows.fine) or 1h / coarse
 *           comparison: ">"            > >= < <= == !=
 *           threshold: 0.05            a number (drift_verdict also: none, possible, drift)
 *           resolve_threshold: 0.03    hysteresis: firing holds while value <cmp> this; on
 *                                      the healthy side of threshold; default = threshold
 *           for: 5m                    event time the breach must last (default 0)
 *           keep_firing_for: 10m       stay firing this long after the last bad window
 *           delay: 1h                  judge a window only this long (event time) after it is
 *                                      final, so records that arrive later than the allowed
 *                                      lateness (late_rate) and ground truth that comes after
 *                                      the window closed (label_coverage, accuracy, ...) are
 *                                      in it; default 0, at most 7d; not for wall-clock or
 *                                      burn-rate rules
 *           min_samples: 100           fewer values behind a window: no verdict (default 0)
 *           severity: critical         critical, error, warning or info (required)
 *           flap_max_changes: 4        more changes (into firing/resolved) than this ...
 *           flap_period: 1h            ... within this hold the alert firing (defaults)
 *           labels: {team: ml-platform}
 *           annotations:               templates (template.h); summary is required
 *             summary: "{{ $labels.model }} fails {{ $value | percent }} of requests"
 *             description: "..."
 *             runbook_url: "{{ $runbook_base }}/deploy/runbooks/error-rate-high.md"
 *             dashboard_url: "..."
 *
 * A burn-rate rule names its window pair and factor instead of resolution and threshold:
 *
 *         - name: ErrorBudgetBurnFast
 *           signal: burn_rate
 *           long_window: 1h
 *           short_window: 5m
 *           factor: 14.4                fires when both windows burn faster than this
 *           comparison: ">"
 *
 * Everything is checked when the file loads; each error names FILE:LINE: KEY like the
 * configuration's (common/config.h):
 *
 *     rules/slo.yaml:14: groups[0].rules[1].resolve_threshold: 0.08 is on the wrong side of
 *     threshold 0.05 (with comparison ">" it must be at most the threshold)
 */
#ifndef MW_ALERT_RULES_H
#define MW_ALERT_RULES_H

#include "config.h"
#include "labels.h"
#include "rule_state.h"
#include "template.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a signal is computed over. */
#define MW_SIGNAL_MODEL 0x01    /* per (model, version) window */
#define MW_SIGNAL_FEATURE 0x02  /* per feature of a model: `feature` selects (default "*") */
#define MW_SIGNAL_VERDICT 0x04  /* drift_verdict: per model, or per feature with `feature` */
#define MW_SIGNAL_PIPELINE 0x08 /* of the pipeline (agents, partitions): no model selector */
#define MW_SIGNAL_BURN 0x10     /* burn_rate: a window pair and a factor */
#define MW_SIGNAL_WALL 0x20     /* evaluated on the wall clock every interval, not per window */
#define MW_SIGNAL_COUNTED 0x40  /* has a sample count: min_samples applies */

/*
 * The signal catalogue: enum name, rule name, scope flags, unit and meaning. The evaluator
 * feeds each signal in the unit given here.
 */
#define MW_SIGNAL_MAP(XX)                                                                          \
    XX(ERROR_RATE, "error_rate", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share",                     \
       "requests that failed, of all requests in the window")                                      \
    XX(LATENCY_P50, "latency_p50", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "seconds",                 \
       "median latency")                                                                           \
    XX(LATENCY_P90, "latency_p90", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "seconds",                 \
       "90th percentile latency")                                                                  \
    XX(LATENCY_P95, "latency_p95", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "seconds",                 \
       "95th percentile latency")                                                                  \
    XX(LATENCY_P99, "latency_p99", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "seconds",                 \
       "99th percentile latency")                                                                  \
    XX(AVAILABILITY, "availability", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share",                 \
       "requests that succeeded (slo.availability is its target)")                                 \
    XX(LATENCY_ATTAINMENT, "latency_attainment", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share",     \
       "requests faster than slo.latency_threshold")                                               \
    XX(BURN_RATE, "burn_rate", MW_SIGNAL_MODEL | MW_SIGNAL_BURN | MW_SIGNAL_COUNTED, "ratio",      \
       "error budget burn rate, the smaller of the long and the short window's")                   \
    XX(DRIFT_VERDICT, "drift_verdict", MW_SIGNAL_MODEL | MW_SIGNAL_VERDICT | MW_SIGNAL_COUNTED,    \
       "level", "drift verdict: 0 none, 1 possible, 2 drift (insufficient data: no value)")        \
    XX(PSI, "psi", MW_SIGNAL_FEATURE | MW_SIGNAL_COUNTED, "index",                                 \
       "population stability index against the profile")                                           \
    XX(JS_DISTANCE, "js_distance", MW_SIGNAL_FEATURE | MW_SIGNAL_COUNTED, "distance",              \
       "Jensen-Shannon distance against the profile")                                              \
    XX(KS, "ks", MW_SIGNAL_FEATURE | MW_SIGNAL_COUNTED, "statistic",                               \
       "Kolmogorov-Smirnov statistic (numeric features)")                                          \
    XX(KS_P_VALUE, "ks_p_value", MW_SIGNAL_FEATURE | MW_SIGNAL_COUNTED, "p-value",                 \
       "Kolmogorov-Smirnov p-value at the observed count")                                         \
    XX(WASSERSTEIN_NORMED, "wasserstein_normed", MW_SIGNAL_FEATURE | MW_SIGNAL_COUNTED,            \
       "reference sd", "Wasserstein-1 distance in reference standard deviations")                  \
    XX(CHI2_P_VALUE, "chi2_p_value", MW_SIGNAL_FEATURE | MW_SIGNAL_COUNTED, "p-value",             \
       "chi-squared p-value (categorical features)")                                               \
    XX(UNSEEN_SHARE, "unseen_share", MW_SIGNAL_FEATURE | MW_SIGNAL_COUNTED, "share",               \
       "values in categories the profile never saw")                                               \
    XX(OUT_OF_RANGE_RATE, "out_of_range_rate", MW_SIGNAL_FEATURE | MW_SIGNAL_COUNTED, "share",     \
       "values outside the profile's range")                                                       \
    XX(MISSING_RATE, "missing_rate", MW_SIGNAL_FEATURE | MW_SIGNAL_COUNTED, "share",               \
       "predictions without the feature")                                                          \
    XX(ACCURACY, "accuracy", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share",                         \
       "classification accuracy on labelled predictions")                                          \
    XX(PRECISION, "precision", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share", "precision")          \
    XX(RECALL, "recall", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share", "recall")                   \
    XX(F1, "f1", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share", "F1 score")                         \
    XX(LOG_LOSS, "log_loss", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "nats", "log loss")              \
    XX(ROC_AUC, "roc_auc", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share", "ROC AUC")                \
    XX(MAE, "mae", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "target unit", "mean absolute error")      \
    XX(RMSE, "rmse", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "target unit",                           \
       "root mean squared error")                                                                  \
    XX(MAPE, "mape", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share",                                 \
       "mean absolute percentage error")                                                           \
    XX(LABEL_COVERAGE, "label_coverage", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share",             \
       "predictions whose ground truth arrived")                                                   \
    XX(COST_PER_1K, "cost_per_1k", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "currency",                \
       "cost of 1000 predictions at the configured prices")                                        \
    XX(LATE_RATE, "late_rate", MW_SIGNAL_MODEL | MW_SIGNAL_COUNTED, "share",                       \
       "records that arrived after the allowed lateness, of all records")                          \
    XX(DLQ_RATE, "dlq_rate", MW_SIGNAL_PIPELINE | MW_SIGNAL_WALL, "per second",                                     \
       "batches sent to the dead-letter topic")                                                    \
    XX(AGENT_DROPS, "agent_drops", MW_SIGNAL_PIPELINE | MW_SIGNAL_WALL, "per second",                               \
       "events an agent dropped (full queue, full spool, malformed)")                              \
    XX(SPOOL_USE, "spool_use", MW_SIGNAL_PIPELINE | MW_SIGNAL_WALL, "share", "an agent's spool, of its bound")      \
    XX(CONSUMER_LAG, "consumer_lag", MW_SIGNAL_PIPELINE | MW_SIGNAL_WALL, "records",                                \
       "records of a partition not yet consumed")                                                  \
    XX(ABSENCE, "absence", MW_SIGNAL_MODEL | MW_SIGNAL_WALL, "seconds",                            \
       "wall-clock time since the model last sent data")

#define MW__SIGNAL_ENUM(id, name, flags, unit, desc) MW_SIGNAL_##id,
enum mw_signal { MW_SIGNAL_MAP(MW__SIGNAL_ENUM) MW_SIGNAL_COUNT };
#undef MW__SIGNAL_ENUM

struct mw_signal_info {
    const char *name;
    unsigned flags;
    const char *unit;
    const char *desc;
};

/* The catalogue entry of `s`, or NULL. */
const struct mw_signal_info *mw_signal_info(enum mw_signal s);
/* The signal named `name`: 0 with *out set, or MW_ENOTFOUND. */
int mw_signal_parse(const char *name, enum mw_signal *out);

enum mw_severity { MW_SEVERITY_CRITICAL, MW_SEVERITY_ERROR, MW_SEVERITY_WARNING, MW_SEVERITY_INFO };
const char *mw_severity_name(enum mw_severity s);

enum mw_resolution { MW_RESOLUTION_FINE, MW_RESOLUTION_COARSE };

/* One loaded rule. Strings and templates are owned by the rule set. */
struct mw_rule {
    char *name;
    char *group;
    char *file;  /* the file it came from */
    size_t line; /* of its list item */
    enum mw_signal signal;
    char *model; /* globs; never NULL */
    char *version;
    char *feature; /* NULL: the model as a whole (drift_verdict) or not a feature signal */
    enum mw_resolution resolution;
    int64_t long_window_ms, short_window_ms; /* burn_rate */
    struct mw_rule_cond cond;
    enum mw_severity severity;
    int64_t interval_ms; /* the group's: period of wall-clock evaluation */
    int64_t delay_ms;    /* event time a final window waits before this rule judges it */
    struct mw_labels labels;
    struct mw_template *summary;                                   /* never NULL */
    struct mw_template *description, *runbook_url, *dashboard_url; /* NULL when not given */
};

/* Different `delay`s a rule set may use (0 counts): each is a cursor per model and width. */
#define MW_RULES_MAX_DELAYS 8

struct mw_rule_set {
    size_t n;
    struct mw_rule *rules;
    size_t n_files;
    char **files;
};

/*
 * Load the rule file at `path` (or `text`, named `name` in messages) and APPEND its rules to
 * `set` (zero it before the first load). Returns 0; MW_ECONFIG with err->message
 * "FILE:LINE: KEY: what is wrong" (the set is unchanged); MW_EIO; MW_ENOMEM.
 */
int mw_rules_load_file(struct mw_rule_set *set, const char *path, struct mw_cfg_error *err);
int mw_rules_load_string(struct mw_rule_set *set, const char *text, const char *name,
                         struct mw_cfg_error *err);

/*
 * Load every file `pattern` matches (glob(3), in glob's sorted order), appending. A pattern
 * that matches no file is an error (MW_ECONFIG): a typo would otherwise silently mean "no
 * alerting". Stops at the first file in error (the files before it stay loaded: free the set).
 */
int mw_rules_load_glob(struct mw_rule_set *set, const char *pattern, struct mw_cfg_error *err);

void mw_rule_set_free(struct mw_rule_set *set); /* accepts NULL; leaves an empty set */

/* Whether `r` applies to this model, version and feature (feature NULL: model-level). */
bool mw_rule_selects(const struct mw_rule *r, const char *model, const char *version,
                     const char *feature);

/*
 * The labels of the alert `r` raises for (model, version, feature): alertname, severity,
 * signal, model, version (when not empty), feature (when not NULL), then the rule's labels.
 * `out` must be empty. 0, MW_EINVAL (a value no label can hold) or MW_ENOMEM.
 */
/* The label naming what a pipeline signal is about ("agent", "partition"), or NULL (dlq_rate
 * is about the whole pipeline, and model signals name their model). */
const char *mw_signal_subject_label(enum mw_signal s);

int mw_rule_alert_labels(const struct mw_rule *r, const char *model, const char *version,
                         const char *feature, struct mw_labels *out);

/*
 * Render the annotations of `r` (summary, and description, runbook_url, dashboard_url where
 * the rule has them) for an alert with `labels` and the state's last value into `out` (empty).
 * `runbook_base` fills $runbook_base (NULL: ""). 0, MW_EFULL or MW_ENOMEM.
 */
int mw_rule_annotations(const struct mw_rule *r, const struct mw_labels *labels,
                        const struct mw_rule_state *st, const char *runbook_base,
                        struct mw_labels *out);

/* "1m", "1h" or, for burn_rate, "1h/5m": the window(s) of `r`, for messages and $window. */
void mw_rule_window_text(const struct mw_rule *r, char *out, size_t size);

#endif
