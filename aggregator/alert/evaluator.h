/*
 * evaluator.h — rules applied to windows: the alert instances (one rule on one model, version
 * and feature), their states, and what a page must say. Pure: no I/O, no clock of its own, so a
 * replay, a test or a benchmark drives it exactly as the aggregator does.
 *
 * The aggregator (alerting.c) reads the windows that became final, oldest first, and hands
 * them over one start at a time — every version of one model at one width that shares a start
 * (struct mw_eval_group) — with, for burn-rate rules, the request and error sums of each
 * version's lookbacks as of the window's end. For each rule that runs at that width and selects
 * the model and version (and, for per-feature signals, each feature of the version's profile
 * that the rule's feature glob selects), the signal's value in the catalogue's unit and its
 * sample count step the instance's state (rule_state.h). Sample counts, as rules.h says:
 *
 *   error_rate, latency_*, availability, latency_attainment, cost_per_1k   requests in the window
 *   burn_rate                                                   requests in the short window
 *   late_rate                                        predictions in the window plus late ones
 *   psi ... missing_rate, drift_verdict of a feature              values the feature observed
 *   drift_verdict of the model                   the most values any profiled feature observed
 *   accuracy ... roc_auc, mae, rmse, mape                    labelled predictions in the window
 *   label_coverage                                                  predictions in the window
 *
 * Instances are created lazily: one exists only while its state is not inactive, or it still
 * remembers state changes for the flapping rule; so 1,000 models x 50 features x 10 rules
 * cost memory only for what is breaching. A transition into firing (a page) or out of it (a
 * resolve) is reported, and only then is the instance's alert (re)written (a repeat
 * notification carries what the page said; the state's value stays current for the API and
 * /metrics): its labels, its annotations
 * (the rule's, rendered, plus what a page must say: the window, every version live in it with
 * its traffic share and the same signal, the top drifting features, the burn rates and budget
 * left, the cost breakdown, the ctl command), its values and the API URL of its window.
 */
#ifndef MW_ALERT_EVALUATOR_H
#define MW_ALERT_EVALUATOR_H

#include "aggregator_config.h"
#include "alert/labels.h"
#include "alert/rule_state.h"
#include "alert/rules.h"
#include "schema.h"
#include "signals_drift.h"
#include "signals_slo.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MW_ALERT_MAX_VALUES 96

struct mw_alert_value {
    char name[64];
    double value;
};

/* One rule applied to one (model, version, feature). Strings are owned. */
struct mw_alert_inst {
    char *rule_id; /* "<group>/<name>": a rule is known by its group and name */
    char *model;
    char *version;              /* "" for model-wide instances (absence) */
    char *feature;              /* NULL: not per feature */
    const struct mw_rule *rule; /* NULL while its rule is gone (a reload removed it) */
    struct mw_rule_state st;
    struct mw_labels labels;      /* the alert's; set when it first leaves inactive */
    struct mw_labels annotations; /* rendered at its last page or resolve */
    size_t n_values;
    struct mw_alert_value values[MW_ALERT_MAX_VALUES];
    char *generator_url;  /* the API URL of the window behind it, or NULL */
    uint64_t fingerprint; /* mw_labels_hash(&labels) */
    bool dirty;           /* changed since mw_evaluator_take_dirty */
    bool removed;         /* inactive without history: to be dropped and deleted */
    uint64_t hash;        /* of the identity */
};

/* Requests and errors of one window (window_read's MW_WINDOW_READ_COUNTS). */
struct mw_eval_count {
    int64_t start_ms;
    double count, errors;
};

/* One version's windows of both widths around a group, oldest first, for burn rates. */
struct mw_eval_counts {
    size_t n_fine;
    const struct mw_eval_count *fine;
    size_t n_coarse;
    const struct mw_eval_count *coarse;
};

/* What a window group holds for one version. */
struct mw_eval_source {
    const struct mw_window *window; /* parsed (fields, profile when read with profiles) */
    /* The version's request and error counts for burn-rate rules: fine windows back to
     * MW_SLO_FINE_LOOKBACK_MAX_MS before the window, coarse ones back to the longest long
     * window of the rules. NULL when no burn-rate rule runs (burn rates then have no value). */
    const struct mw_eval_counts *counts;
    /* The window's drift against its profile when the caller has computed it already
     * (borrowed), else NULL: computed here when a drift rule needs it. */
    const struct mw_drift_signals *drift;
};

/*
 * Requests and errors over `lookback_ms` before `at_ms`, from complete windows only, so that a
 * replay sums exactly what live traffic summed when the window became final: for lookbacks up
 * to MW_SLO_FINE_LOOKBACK_MAX_MS, the fine windows that start in [at - lookback, at); beyond,
 * the coarse windows that start at or after at - lookback and end by the start of the coarse
 * window holding `at`, plus the fine windows from that start to `at`.
 */
void mw_eval_span_sums(const struct mw_eval_counts *c, const struct mw_aggregator_config *cfg,
                       int64_t at_ms, int64_t lookback_ms, double *count, double *errors);

/*
 * Whether the version's windows reach back to the start of the lookback (within one window):
 * a burn rate is judged only then. Over 3 d from the first minutes of a new version it would
 * not be a 3-day burn rate, and one stray error among its first hundred requests would read as
 * a budget burning ten times too fast. A version whose traffic paused for longer than the
 * counts read before the window (MW_SLO_FINE_LOOKBACK_MAX_MS of fine windows, the longest long
 * window of coarse ones) counts as new.
 */
bool mw_eval_span_covered(const struct mw_eval_counts *c, const struct mw_aggregator_config *cfg,
                          int64_t at_ms, int64_t lookback_ms);

/* Event time a model's windows go on without one of its versions before that version's pending
 * and firing alerts are stepped as gone (it was rolled back or retired): Prometheus's staleness. */
#define MW_EVAL_VERSION_GONE_MS (5 * 60 * 1000)

/* Every version of one model at one width whose windows share a start. */
struct mw_eval_group {
    const char *model;
    int64_t width_ms;
    int64_t delay_ms; /* only the rules with this `delay` step (each delay has its cursor) */
    int64_t start_ms;
    size_t n;
    const struct mw_eval_source *sources;
};

enum mw_eval_change { MW_EVAL_PAGE, MW_EVAL_RESOLVE };

struct mw_eval_transition {
    struct mw_alert_inst *inst;
    enum mw_eval_change change;
};

struct mw_eval_transitions {
    size_t n, cap;
    struct mw_eval_transition *items;
};

void mw_eval_transitions_free(struct mw_eval_transitions *t); /* accepts NULL; leaves it empty */

struct mw_evaluator_options {
    const struct mw_aggregator_config *cfg; /* borrowed; slo, drift and cost settings */
    const char *runbook_base;               /* $runbook_base; NULL = "" (copied) */
    const char *external_url;               /* base of the links in pages (copied) */
};

struct mw_evaluator;

int mw_evaluator_create(const struct mw_evaluator_options *opts, struct mw_evaluator **out);
void mw_evaluator_destroy(struct mw_evaluator *ev); /* accepts NULL; frees every instance */

/* Change the links' bases (after a reload). 0 or MW_ENOMEM. */
int mw_evaluator_set_urls(struct mw_evaluator *ev, const char *runbook_base,
                          const char *external_url);

/*
 * Use `rules` (borrowed until the next call or destroy). Instances find their rule again by
 * group and name; those whose rule is gone keep rule == NULL and are stepped no more: the
 * caller resolves what they had paged (mw_evaluator_orphans) and drops them.
 */
void mw_evaluator_set_rules(struct mw_evaluator *ev, const struct mw_rule_set *rules);
const struct mw_rule_set *mw_evaluator_rules(const struct mw_evaluator *ev);

/*
 * Step every rule that selects the group's windows with their values; APPEND the pages and
 * resolves to `out` (pointing at instances, valid until the next call that may remove
 * instances: mw_evaluator_gc). Returns 0 or MW_ENOMEM (states stepped so far stay stepped).
 */
int mw_evaluator_step_group(struct mw_evaluator *ev, const struct mw_eval_group *group,
                            struct mw_eval_transitions *out);

/*
 * Absence on the wall clock: step every absence rule selecting `model` whose group interval
 * has passed since its last step, with the model last seen at `last_seen_ms` (wall clock).
 * Appends to `out`. 0 or MW_ENOMEM.
 */
int mw_evaluator_step_absence(struct mw_evaluator *ev, const char *model, int64_t last_seen_ms,
                              int64_t now_ms, struct mw_eval_transitions *out);

/* One reading of a pipeline signal, taken on the wall clock. */
struct mw_pipeline_reading {
    enum mw_signal signal;    /* agent_drops, spool_use, dlq_rate or consumer_lag */
    const char *subject;      /* the agent or partition; "" for dlq_rate */
    enum mw_sample_kind kind; /* MW_SAMPLE_VALUE, _NO_VALUE, or _GONE (no longer reported) */
    double value;             /* in the signal's unit */
};

/*
 * The pipeline rules, on the wall clock: step every pipeline rule whose interval has passed
 * with each reading of its signal, and every instance of a pipeline rule that no reading names
 * any more as gone (its alert clears). The alert's labels name the subject (`agent`,
 * `partition`) instead of a model. Appends to `out`. 0 or MW_ENOMEM.
 */
int mw_evaluator_step_pipeline(struct mw_evaluator *ev, const struct mw_pipeline_reading *readings,
                               size_t n, int64_t now_ms, struct mw_eval_transitions *out);

/* Lookup and iteration. */
struct mw_alert_inst *mw_evaluator_find(const struct mw_evaluator *ev, const char *rule_id,
                                        const char *model, const char *version,
                                        const char *feature);
struct mw_alert_inst *mw_evaluator_find_fingerprint(const struct mw_evaluator *ev, uint64_t fp,
                                                    const struct mw_labels *labels);
size_t mw_evaluator_count(const struct mw_evaluator *ev);
struct mw_alert_inst *mw_evaluator_at(const struct mw_evaluator *ev, size_t i);

/*
 * Take an instance restored from storage (the evaluator owns it from now on; its rule is
 * looked up). MW_EINVAL when one with the same identity is there (inst is then freed), or
 * MW_ENOMEM.
 */
int mw_evaluator_adopt(struct mw_evaluator *ev, struct mw_alert_inst *inst);

/* Drop the instances marked removed (and those whose rule is gone when `orphans` is true). */
void mw_evaluator_gc(struct mw_evaluator *ev, bool orphans);

/* A new, empty instance (all strings copied; feature may be NULL). NULL when out of memory. */
struct mw_alert_inst *mw_alert_inst_new(const char *rule_id, const char *model, const char *version,
                                        const char *feature);
void mw_alert_inst_free(struct mw_alert_inst *inst); /* accepts NULL */

/* "<group>/<name>" of `r` into out. */
void mw_rule_id(const struct mw_rule *r, char *out, size_t size);

/* The value a rule reads from one source (for tests and the bench): kind, value and sample
 * count, for `feature` (NULL: model-wide; the name of a feature of the window's profile). */
void mw_evaluator_value(const struct mw_evaluator *ev, const struct mw_rule *r,
                        const struct mw_eval_source *src, const char *feature,
                        struct mw_rule_sample *out);

#endif
