/* rule_state.c — the alert state machine (rule_state.h). */
#include "rule_state.h"

#include <math.h>
#include <string.h>

const char *mw_cmp_name(enum mw_cmp cmp)
{
    static const char *const names[] = {">", ">=", "<", "<=", "==", "!="};
    return (unsigned)cmp < sizeof names / sizeof names[0] ? names[cmp] : "?";
}

bool mw_cmp_holds(enum mw_cmp cmp, double value, double threshold)
{
    switch (cmp) {
    case MW_CMP_GT:
        return value > threshold;
    case MW_CMP_GE:
        return value >= threshold;
    case MW_CMP_LT:
        return value < threshold;
    case MW_CMP_LE:
        return value <= threshold;
    case MW_CMP_EQ:
        return value == threshold;
    case MW_CMP_NE:
        return value != threshold;
    }
    return false;
}

const char *mw_alert_state_name(enum mw_alert_state s)
{
    static const char *const names[] = {"inactive", "pending", "firing", "resolved"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

void mw_rule_state_init(struct mw_rule_state *st)
{
    memset(st, 0, sizeof *st);
    st->state = MW_ALERT_INACTIVE;
}

static void record_change(struct mw_rule_state *st, int64_t at_ms)
{
    if (st->n_changes == MW_FLAP_MAX_CHANGES + 1) {
        memmove(st->change_ms, st->change_ms + 1, MW_FLAP_MAX_CHANGES * sizeof st->change_ms[0]);
        st->n_changes--;
    }
    st->change_ms[st->n_changes++] = at_ms;
}

/* Whether one more change at `at_ms` makes more than flap_max_changes within flap_period. */
static bool would_flap(const struct mw_rule_cond *cond, const struct mw_rule_state *st,
                       int64_t at_ms)
{
    int recent = 1; /* the change about to happen */
    for (int i = 0; i < st->n_changes; i++)
        if (st->change_ms[i] > at_ms - cond->flap_period_ms)
            recent++;
    return cond->flap_max_changes > 0 && recent > cond->flap_max_changes;
}

static void fire(struct mw_rule_state *st, int64_t end_ms, struct mw_rule_step *out)
{
    st->state = MW_ALERT_FIRING;
    st->fired_at_ms = end_ms;
    st->last_hold_end_ms = end_ms;
    record_change(st, end_ms);
    out->page = true;
}

/* A firing alert whose window did not hold: resolve, unless kept or held for flapping. */
static void clear_firing(const struct mw_rule_cond *cond, struct mw_rule_state *st, int64_t end_ms,
                         struct mw_rule_step *out)
{
    int64_t keep_ms = cond->keep_firing_for_ms;
    if (st->flapping && cond->flap_period_ms > keep_ms)
        keep_ms = cond->flap_period_ms;
    if (end_ms - st->last_hold_end_ms < keep_ms)
        return;
    if (!st->flapping && would_flap(cond, st, end_ms)) {
        st->flapping = true;
        out->flap_hold = true;
        if (end_ms - st->last_hold_end_ms < cond->flap_period_ms)
            return;
    }
    if (st->flapping)
        st->n_changes = 0; /* a whole quiet period: start counting afresh */
    st->flapping = false;
    st->state = MW_ALERT_RESOLVED;
    st->resolved_at_ms = end_ms;
    record_change(st, end_ms);
    out->resolve = true;
}

void mw_rule_state_step(const struct mw_rule_cond *cond, struct mw_rule_state *st,
                        const struct mw_rule_sample *sample, struct mw_rule_step *out)
{
    *out = (struct mw_rule_step){.from = st->state, .to = st->state};
    if (st->stepped && sample->end_ms <= st->last_end_ms) {
        out->ignored = true;
        return;
    }
    st->stepped = true;
    st->last_end_ms = sample->end_ms;

    bool has_value = sample->kind == MW_SAMPLE_VALUE && !isnan(sample->value);
    st->has_value = has_value;
    st->value = has_value ? sample->value : NAN;
    st->samples = has_value ? sample->samples : 0;
    bool gone = sample->kind == MW_SAMPLE_GONE;
    bool known = has_value && (int64_t)sample->samples >= cond->min_samples;
    bool breach = known && mw_cmp_holds(cond->cmp, sample->value, cond->threshold);

    if (st->state == MW_ALERT_RESOLVED)
        st->state = MW_ALERT_INACTIVE;
    switch (st->state) {
    case MW_ALERT_INACTIVE:
        if (breach) {
            st->active_since_ms = sample->start_ms;
            if (sample->end_ms - st->active_since_ms >= cond->for_ms)
                fire(st, sample->end_ms, out);
            else
                st->state = MW_ALERT_PENDING;
        }
        break;
    case MW_ALERT_PENDING:
        if (!breach)
            st->state = MW_ALERT_INACTIVE;
        else if (sample->end_ms - st->active_since_ms >= cond->for_ms)
            fire(st, sample->end_ms, out);
        break;
    case MW_ALERT_FIRING:
        if (gone) {
            clear_firing(cond, st, sample->end_ms, out);
            break;
        }
        if (!known)
            break; /* no evidence of recovery */
        if (mw_cmp_holds(cond->cmp, sample->value, cond->resolve_threshold))
            st->last_hold_end_ms = sample->end_ms;
        else
            clear_firing(cond, st, sample->end_ms, out);
        break;
    case MW_ALERT_RESOLVED:
        break;
    }
    out->to = st->state;
}

void mw_rule_state_step_absence(const struct mw_rule_cond *cond, struct mw_rule_state *st,
                                int64_t last_seen_ms, int64_t now_ms, struct mw_rule_step *out)
{
    struct mw_rule_sample s = {.start_ms = now_ms, .end_ms = now_ms, .samples = 1};
    if (last_seen_ms <= 0) {
        s.kind = MW_SAMPLE_NO_VALUE;
    } else {
        s.kind = MW_SAMPLE_VALUE;
        s.value = (double)(now_ms - last_seen_ms) / 1000.0;
    }
    mw_rule_state_step(cond, st, &s, out);
}

double mw_rule_burn_value(double burn_long, double burn_short)
{
    if (isnan(burn_long) || isnan(burn_short))
        return NAN;
    return burn_long < burn_short ? burn_long : burn_short;
}
