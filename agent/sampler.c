/*
 * sampler.c — deterministic per-model payload sampling with an events/s cap.
 *
 * Rules are copied into an array sorted by model name and looked up with bsearch; the "*" rule
 * is found once at creation. Cap state lives next to each named rule; models that fall back to
 * a capped "*" rule get theirs from a fixed open-addressing table allocated at creation. So a
 * decision is a lookup, a hash of the prediction id and a few arithmetic operations, with no
 * allocation. sampler.h states the decision order, the cap weighting and its bias.
 */
#include "sampler.h"

#include "hash.h"

#include "alloc.h"
#include "error.h"
#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PERIOD_MS 1000u
#define FALLBACK_SLOTS 256u /* models with their own cap under "*"; a power of two */

/* Token bucket plus the per-second accounting that reweights records past the cap. */
struct cap_state {
    bool started;
    double tokens;
    uint64_t refill_ms; /* now_ms of the last refill */
    uint64_t period;    /* now_ms / PERIOD_MS of the current period */
    uint64_t eligible;  /* events that reached the cap this period (plus any carry) */
    uint64_t admitted;  /* of which the bucket let through */
    double scale;       /* weight multiplier this period: eligible/admitted of the previous */
};

struct rule_state {
    char *name; /* owned */
    double rate;
    bool keep_errors;
    uint64_t slower_than_us; /* 0 = off */
    double cap_per_s;        /* 0 = unlimited */
    struct cap_state cap;
};

/* Cap state of one model that falls back to the "*" rule. */
struct fallback_cap {
    char model[MW_MODEL_NAME_MAX + 1]; /* "" = free slot */
    struct cap_state cap;
};

struct mw_sampler {
    struct rule_state *rules; /* sorted by name with strcmp, "*" included */
    size_t n_rules;
    struct rule_state *fallback;        /* the "*" rule, or NULL */
    struct fallback_cap *fallback_caps; /* FALLBACK_SLOTS, when the "*" rule has a cap */
    struct cap_state overflow_cap;      /* shared by fallback models beyond the table */
    struct mw_sampler_stats stats;
};

static const char *const reason_names[MW_SAMPLE_REASON_COUNT] = {
    [MW_SAMPLE_KEPT_RATE] = "kept_rate",     [MW_SAMPLE_KEPT_ERROR] = "kept_error",
    [MW_SAMPLE_KEPT_SLOW] = "kept_slow",     [MW_SAMPLE_DROPPED_RATE] = "dropped_rate",
    [MW_SAMPLE_DROPPED_CAP] = "dropped_cap",
};

const char *mw_sample_reason_name(enum mw_sample_reason why)
{
    if ((unsigned)why >= MW_SAMPLE_REASON_COUNT)
        return "unknown";
    return reason_names[why];
}

/* FNV-1a 64 of the string's bytes, then the splitmix64 finalizer. */
static uint64_t hash64(const char *text)
{
    return mw_hash_mix(mw_hash_str(MW_HASH_INIT, text));
}

/* ---------------------------------------------------------------------------------------- */
/* Creation                                                                                  */

static int compare_rules(const void *a, const void *b)
{
    return strcmp(((const struct rule_state *)a)->name, ((const struct rule_state *)b)->name);
}

static int compare_key(const void *key, const void *elem)
{
    return strcmp(key, ((const struct rule_state *)elem)->name);
}

static struct rule_state *find_exact(const struct mw_sampler *s, const char *name)
{
    if (!name || !s->n_rules)
        return NULL;
    return bsearch(name, s->rules, s->n_rules, sizeof s->rules[0], compare_key);
}

/* The rule for `model`: its own, else "*", else NULL (keep everything). */
static struct rule_state *lookup(const struct mw_sampler *s, const char *model)
{
    struct rule_state *r = find_exact(s, model);
    return r ? r : s->fallback;
}

/* Bucket size: one second of tokens, and at least one so a cap below 1/s still admits. */
static double cap_capacity(double per_s)
{
    return per_s < 1 ? 1 : per_s;
}

static void clamp_tokens(struct cap_state *c, double per_s)
{
    if (c->tokens > cap_capacity(per_s))
        c->tokens = cap_capacity(per_s);
}

/* Cap state of the replaced sampler's rule of the same name, when both have a cap. */
static void inherit_cap(struct rule_state *r, const struct mw_sampler *prev)
{
    const struct rule_state *old = prev ? find_exact(prev, r->name) : NULL;
    if (!old || !r->cap_per_s || !old->cap_per_s || !old->cap.started)
        return;
    r->cap = old->cap;
    clamp_tokens(&r->cap, r->cap_per_s);
}

/* The per-model cap states under "*", from the replaced sampler when both rules cap. */
static void inherit_fallback_caps(struct mw_sampler *s, const struct mw_sampler *prev)
{
    if (!prev || !prev->fallback_caps || !s->fallback_caps)
        return;
    memcpy(s->fallback_caps, prev->fallback_caps, FALLBACK_SLOTS * sizeof s->fallback_caps[0]);
    s->overflow_cap = prev->overflow_cap;
    for (size_t i = 0; i < FALLBACK_SLOTS; i++)
        clamp_tokens(&s->fallback_caps[i].cap, s->fallback->cap_per_s);
    clamp_tokens(&s->overflow_cap, s->fallback->cap_per_s);
}

/* The cap state of `model`, which falls back to the capped "*" rule: its slot in the table
 * (claimed on first sight; copying the name allocates nothing), or the shared overflow state
 * when the table is full or the name is not a model name. */
static struct cap_state *fallback_cap(struct mw_sampler *s, const char *model)
{
    size_t len = model ? strnlen(model, MW_MODEL_NAME_MAX + 1) : 0;
    if (!len || len > MW_MODEL_NAME_MAX)
        return &s->overflow_cap;
    size_t i = (size_t)hash64(model) & (FALLBACK_SLOTS - 1);
    for (size_t probe = 0; probe < FALLBACK_SLOTS; probe++, i = (i + 1) & (FALLBACK_SLOTS - 1)) {
        struct fallback_cap *slot = &s->fallback_caps[i];
        if (!slot->model[0]) {
            memcpy(slot->model, model, len + 1);
            return &slot->cap;
        }
        if (strcmp(slot->model, model) == 0)
            return &slot->cap;
    }
    return &s->overflow_cap;
}

/* The cap state that applies to an event of `model` under rule r (which has a cap). */
static struct cap_state *cap_of(struct mw_sampler *s, struct rule_state *r, const char *model)
{
    return r == s->fallback && s->fallback_caps ? fallback_cap(s, model) : &r->cap;
}

static int copy_rule(struct rule_state *dst, const struct mw_model_rule *src)
{
    dst->name = mw_strdup(src->name);
    if (!dst->name)
        return MW_ENOMEM;
    dst->rate = src->sample_rate;
    dst->keep_errors = src->keep_errors;
    dst->slower_than_us = (uint64_t)src->keep_slower_than_ms * 1000u;
    dst->cap_per_s = src->max_events_per_second;
    return 0;
}

int mw_sampler_create(const struct mw_model_rule *rules, size_t n, const struct mw_sampler *prev,
                      struct mw_sampler **out, char *err, size_t errsize)
{
    int rc = mw_model_rules_check(rules, n, err, errsize);
    if (rc)
        return rc;
    struct mw_sampler *s = mw_calloc(1, sizeof *s);
    if (!s)
        return MW_ENOMEM;
    if (n && !(s->rules = mw_calloc(n, sizeof s->rules[0]))) {
        rc = MW_ENOMEM;
        goto fail;
    }
    for (; s->n_rules < n; s->n_rules++) {
        rc = copy_rule(&s->rules[s->n_rules], &rules[s->n_rules]);
        if (rc)
            goto fail;
    }
    if (n)
        qsort(s->rules, n, sizeof s->rules[0], compare_rules);
    s->fallback = find_exact(s, MW_MODEL_RULE_DEFAULT);
    if (s->fallback && s->fallback->cap_per_s > 0 &&
        !(s->fallback_caps = mw_calloc(FALLBACK_SLOTS, sizeof s->fallback_caps[0]))) {
        rc = MW_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        inherit_cap(&s->rules[i], prev);
    inherit_fallback_caps(s, prev);
    if (prev)
        s->stats = prev->stats;
    *out = s;
    return 0;
fail:
    if (err && errsize)
        snprintf(err, errsize, "sampler: out of memory");
    mw_sampler_destroy(s);
    return rc;
}

void mw_sampler_destroy(struct mw_sampler *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_rules; i++)
        mw_free(s->rules[i].name);
    mw_free(s->rules);
    mw_free(s->fallback_caps);
    mw_free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Decisions                                                                                 */

/* Enter period `period`: the previous period's ratio becomes this one's scale. A clock that
 * goes back stays in the current period. */
static void roll_period(struct cap_state *c, uint64_t period)
{
    if (period <= c->period)
        return;
    uint64_t carry = 0;
    c->scale = 1;
    if (c->admitted == 0)
        carry = c->eligible;
    else if (period == c->period + 1)
        c->scale = (double)c->eligible / (double)c->admitted;
    c->period = period;
    c->eligible = carry;
    c->admitted = 0;
}

/* Whether the bucket admits one more event at now_ms; scales *weight when it does. */
static bool cap_admit(struct cap_state *c, double per_s, uint64_t now_ms, double *weight)
{
    double capacity = cap_capacity(per_s);
    if (!c->started) {
        *c = (struct cap_state){.started = true,
                                .tokens = capacity,
                                .refill_ms = now_ms,
                                .period = now_ms / PERIOD_MS,
                                .scale = 1};
    }
    roll_period(c, now_ms / PERIOD_MS);
    if (now_ms > c->refill_ms) {
        c->tokens += (double)(now_ms - c->refill_ms) * per_s / PERIOD_MS;
        if (c->tokens > capacity)
            c->tokens = capacity;
        c->refill_ms = now_ms;
    }
    c->eligible++;
    if (c->tokens < 1)
        return false;
    c->tokens -= 1;
    c->admitted++;
    *weight *= c->scale;
    return true;
}

/* Steps 1-3 of sampler.h: the decision before the cap. */
static enum mw_sample_reason decide(const struct rule_state *r, const char *prediction_id,
                                    bool is_error, uint64_t latency_us, double *weight)
{
    *weight = 1;
    if (r->keep_errors && is_error)
        return MW_SAMPLE_KEPT_ERROR;
    if (r->slower_than_us && latency_us > r->slower_than_us)
        return MW_SAMPLE_KEPT_SLOW;
    if (mw_sampler_unit(prediction_id) < r->rate) {
        *weight = 1 / r->rate;
        return MW_SAMPLE_KEPT_RATE;
    }
    *weight = 0;
    return MW_SAMPLE_DROPPED_RATE;
}

bool mw_sampler_keep_event(struct mw_sampler *s, const char *model, const char *prediction_id,
                           bool is_error, uint64_t latency_us, uint64_t now_ms, double *weight,
                           enum mw_sample_reason *why)
{
    struct rule_state *r = lookup(s, model);
    enum mw_sample_reason reason = MW_SAMPLE_KEPT_RATE;
    double w = 1;
    if (r) {
        reason = decide(r, prediction_id, is_error, latency_us, &w);
        if (reason != MW_SAMPLE_DROPPED_RATE && r->cap_per_s > 0 &&
            !cap_admit(cap_of(s, r, model), r->cap_per_s, now_ms, &w)) {
            reason = MW_SAMPLE_DROPPED_CAP;
            w = 0;
        }
    }
    s->stats.events[reason]++;
    if (weight)
        *weight = w;
    if (why)
        *why = reason;
    return reason != MW_SAMPLE_DROPPED_RATE && reason != MW_SAMPLE_DROPPED_CAP;
}

bool mw_sampler_keep_feedback(struct mw_sampler *s, const char *model, const char *prediction_id)
{
    bool keep = mw_sampler_unit(prediction_id) < mw_sampler_rate(s, model);
    if (keep)
        s->stats.feedback_kept++;
    else
        s->stats.feedback_dropped++;
    return keep;
}

void mw_sampler_count_dropped_by_client(struct mw_sampler *s, uint64_t n)
{
    s->stats.events[MW_SAMPLE_DROPPED_RATE] += n;
}

double mw_sampler_rate(const struct mw_sampler *s, const char *model)
{
    const struct rule_state *r = lookup(s, model);
    return r ? r->rate : 1.0;
}

void mw_sampler_stats(const struct mw_sampler *s, struct mw_sampler_stats *out)
{
    *out = s->stats;
}
