/*
 * rule_state.h — the state of one alert (one rule applied to one label set: a model, a version,
 * a feature) and its transitions, as pure functions over event time.
 *
 *   inactive ──breach──▶ pending ──breach for `for`──▶ firing ──clear──▶ resolved ──▶ inactive
 *       ▲                  │                            (held: hysteresis,         │
 *       └──────no breach───┘                             keep_firing_for, flapping)└─breach─▶
 * pending
 *
 * The evaluator calls mw_rule_state_step once per window that becomes final, with the window's
 * bounds in EVENT time and the signal's value, so that a day of traffic replayed in a minute
 * walks through exactly the states live traffic did. The rules:
 *
 *  - breach: a value with at least `min_samples` samples behind it that satisfies
 *    `value <cmp> threshold`. An unknown value (no value, or too few samples) is no evidence:
 *    it never starts or advances `pending` (a pending alert goes back to inactive, so `for`
 *    needs unbroken breaching windows) and never resolves a firing alert (it stays firing).
 *  - `for` is event time from the START of the first breaching window to the END of the
 *    current one: with 1-minute windows and `for: 5m`, the fifth breaching window fires;
 *    `for: 0` fires on the first.
 *  - hysteresis: once firing, the alert holds while `value <cmp> resolve_threshold` (the
 *    resolve threshold lies on the healthy side of the threshold, by default equal to it), and
 *    a window that holds counts as breaching for keep_firing_for.
 *  - keep_firing_for: after the last holding window ended at T, the alert resolves at the first
 *    clear window ending at or after T + keep_firing_for.
 *  - flapping: the changes into firing and into resolved are remembered; a resolve that would
 *    make more than `flap_max_changes` of them within `flap_period` is held instead: the alert
 *    stays firing (no resolve, so no second page) and flapping, and resolves only after a whole
 *    flap_period (or keep_firing_for, if longer) without a holding window.
 *  - resolved lasts one step: the next step starts from inactive.
 *  - a window that ends no later than the last one stepped is ignored (a replayed or
 *    duplicated close changes nothing).
 *
 * Absence (a model that stops sending) runs the same machine on the WALL clock: the value is
 * the seconds since data was last seen (mw_rule_state_step_absence).
 */
#ifndef MW_ALERT_RULE_STATE_H
#define MW_ALERT_RULE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#define MW_FLAP_MAX_CHANGES 60 /* largest flap_max_changes a rule may set */

enum mw_cmp { MW_CMP_GT, MW_CMP_GE, MW_CMP_LT, MW_CMP_LE, MW_CMP_EQ, MW_CMP_NE };

/* ">", ">=", "<", "<=", "==", "!=" */
const char *mw_cmp_name(enum mw_cmp cmp);
bool mw_cmp_holds(enum mw_cmp cmp, double value, double threshold);

/* What the state machine needs from a rule (rules.h fills it from the rule file). */
struct mw_rule_cond {
    enum mw_cmp cmp;
    double threshold;
    double resolve_threshold; /* == threshold without hysteresis */
    int64_t for_ms;
    int64_t keep_firing_for_ms;
    int64_t min_samples;
    int flap_max_changes; /* 1..MW_FLAP_MAX_CHANGES */
    int64_t flap_period_ms;
};

enum mw_alert_state {
    MW_ALERT_INACTIVE,
    MW_ALERT_PENDING,
    MW_ALERT_FIRING,
    MW_ALERT_RESOLVED,
};

/* "inactive", "pending", "firing", "resolved" */
const char *mw_alert_state_name(enum mw_alert_state s);

struct mw_rule_state {
    enum mw_alert_state state;
    bool flapping;            /* firing, held by the flapping rule */
    bool stepped;             /* last_end_ms is set */
    int64_t last_end_ms;      /* end of the last window stepped */
    int64_t active_since_ms;  /* pending/firing: start of the first breaching window */
    int64_t fired_at_ms;      /* firing: end of the window that fired it */
    int64_t last_hold_end_ms; /* firing: end of the last window that held it */
    int64_t resolved_at_ms;   /* resolved: end of the window that resolved it */
    bool has_value;           /* the last known value, for annotations and the API */
    double value;
    uint64_t samples;
    /* The latest changes into firing or resolved (event time), oldest first. */
    int n_changes;
    int64_t change_ms[MW_FLAP_MAX_CHANGES + 1];
};

enum mw_sample_kind {
    MW_SAMPLE_VALUE,    /* `value` holds, computed from `samples` values */
    MW_SAMPLE_NO_VALUE, /* the window has no value for the signal */
    /* What the alert is about is gone (an agent or a partition no longer reported): it clears
     * like a healthy value, as an alert on a series that disappears resolves in Prometheus
     * (keep_firing_for and the flapping hold still apply). */
    MW_SAMPLE_GONE,
};

/* One window of one signal for one label set. */
struct mw_rule_sample {
    int64_t start_ms; /* event time; for absence both are the wall clock "now" */
    int64_t end_ms;
    enum mw_sample_kind kind;
    double value;
    uint64_t samples; /* compared with min_samples */
};

/* What a step did. */
struct mw_rule_step {
    enum mw_alert_state from, to;
    bool page;      /* the alert started firing: a firing notification is due */
    bool resolve;   /* the alert resolved: a resolve notification is due */
    bool ignored;   /* the window was not after the last one stepped */
    bool flap_hold; /* a resolve was held because the alert is flapping */
};

void mw_rule_state_init(struct mw_rule_state *st);

/* Advance `st` by one window. Pure: no allocation, no clock, no I/O. */
void mw_rule_state_step(const struct mw_rule_cond *cond, struct mw_rule_state *st,
                        const struct mw_rule_sample *sample, struct mw_rule_step *out);

/*
 * Absence, on the wall clock: step with value = seconds from `last_seen_ms` (when the model or
 * agent last sent data, wall clock) to `now_ms`, as a window [now_ms, now_ms] with one sample.
 * A `last_seen_ms` of 0 or less (never seen) is no value.
 */
void mw_rule_state_step_absence(const struct mw_rule_cond *cond, struct mw_rule_state *st,
                                int64_t last_seen_ms, int64_t now_ms, struct mw_rule_step *out);

/* The value a burn-rate rule is stepped with: both windows burn faster than the factor exactly
 * when the smaller of the two does. NaN in either gives NaN (feed it as no value). */
double mw_rule_burn_value(double burn_long, double burn_short);

#endif
