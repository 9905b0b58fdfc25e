/*
 * evaluator.c — rules on windows (evaluator.h): values from the typed signals, state steps,
 * lazily created instances, and the alert a page carries.
 *
 * The signals of a version's window are computed once per group and only for the families a
 * selecting rule reads. The hot path — a rule on a feature that does not breach and has no
 * instance — costs a hash lookup and a comparison: a fresh inactive state stays inactive on a
 * value that does not breach, so it is not stepped at all.
 */
#include "alert/evaluator.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "error.h"
#include "hash.h"
#include "signals_cost.h"
#include "signals_drift.h"
#include "signals_perf.h"
#include "signals_service.h"
#include "table.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOP_FEATURES 5
#define MAX_VERSIONS_SHOWN 16

struct mw_evaluator {
    const struct mw_aggregator_config *cfg;
    const struct mw_rule_set *rules;
    char *runbook_base;
    char *external_url;
    size_t n, cap;
    struct mw_alert_inst **insts;
    struct mw_table by_id;
    struct mw_table by_fp;
    /* absence: per rule index, the wall time of its last evaluation per model is kept in the
     * instance; a model without an instance is evaluated every call */
};

/* ---- identity ------------------------------------------------------------------------------ */

struct ident {
    const char *rule_id, *model, *version, *feature;
};

static uint64_t ident_hash3(const char *rule_id, const char *model, const char *version)
{
    uint64_t h = mw_hash_str(MW_HASH_INIT, rule_id);
    h = mw_hash_byte(h, 0xff);
    h = mw_hash_str(h, model);
    h = mw_hash_byte(h, 0xff);
    return mw_hash_str(h, version);
}

static uint64_t ident_hash4(uint64_t h3, const char *feature)
{
    if (!feature)
        return mw_hash_byte(h3, 0xfe);
    return mw_hash_str(mw_hash_byte(h3, 0xff), feature);
}

static bool same_str(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool inst_equal(const void *item, const void *key)
{
    const struct mw_alert_inst *i = item;
    const struct ident *k = key;
    return !i->removed && same_str(i->feature, k->feature) && strcmp(i->model, k->model) == 0 &&
           strcmp(i->version, k->version) == 0 && strcmp(i->rule_id, k->rule_id) == 0;
}

static bool fp_equal(const void *item, const void *key)
{
    const struct mw_alert_inst *i = item;
    return !i->removed && mw_labels_equal(&i->labels, key);
}

void mw_rule_id(const struct mw_rule *r, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", r->group, r->name);
}

struct mw_alert_inst *mw_alert_inst_new(const char *rule_id, const char *model, const char *version,
                                        const char *feature)
{
    struct mw_alert_inst *inst = mw_calloc(1, sizeof *inst);
    if (!inst)
        return NULL;
    inst->rule_id = mw_strdup(rule_id);
    inst->model = mw_strdup(model);
    inst->version = mw_strdup(version ? version : "");
    inst->feature = feature ? mw_strdup(feature) : NULL;
    if (!inst->rule_id || !inst->model || !inst->version || (feature && !inst->feature)) {
        mw_alert_inst_free(inst);
        return NULL;
    }
    mw_rule_state_init(&inst->st);
    inst->hash = ident_hash4(ident_hash3(rule_id, model, inst->version), feature);
    return inst;
}

void mw_alert_inst_free(struct mw_alert_inst *inst)
{
    if (!inst)
        return;
    mw_free(inst->rule_id);
    mw_free(inst->model);
    mw_free(inst->version);
    mw_free(inst->feature);
    mw_labels_free(&inst->labels);
    mw_labels_free(&inst->annotations);
    mw_free(inst->generator_url);
    mw_free(inst);
}

void mw_eval_transitions_free(struct mw_eval_transitions *t)
{
    if (!t)
        return;
    mw_free(t->items);
    *t = (struct mw_eval_transitions){0};
}

static int add_transition(struct mw_eval_transitions *t, struct mw_alert_inst *inst,
                          enum mw_eval_change change)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        struct mw_eval_transition *items = mw_realloc(t->items, cap * sizeof *items);
        if (!items)
            return MW_ENOMEM;
        t->items = items;
        t->cap = cap;
    }
    t->items[t->n++] = (struct mw_eval_transition){.inst = inst, .change = change};
    return 0;
}

/* ---- the evaluator ------------------------------------------------------------------------- */

int mw_evaluator_create(const struct mw_evaluator_options *opts, struct mw_evaluator **out)
{
    struct mw_evaluator *ev = mw_calloc(1, sizeof *ev);
    if (!ev)
        return MW_ENOMEM;
    ev->cfg = opts->cfg;
    mw_table_init(&ev->by_id, inst_equal);
    mw_table_init(&ev->by_fp, fp_equal);
    if (mw_evaluator_set_urls(ev, opts->runbook_base, opts->external_url) != 0) {
        mw_evaluator_destroy(ev);
        return MW_ENOMEM;
    }
    *out = ev;
    return 0;
}

void mw_evaluator_destroy(struct mw_evaluator *ev)
{
    if (!ev)
        return;
    for (size_t i = 0; i < ev->n; i++)
        mw_alert_inst_free(ev->insts[i]);
    mw_free(ev->insts);
    mw_table_free(&ev->by_id);
    mw_table_free(&ev->by_fp);
    mw_free(ev->runbook_base);
    mw_free(ev->external_url);
    mw_free(ev);
}

int mw_evaluator_set_urls(struct mw_evaluator *ev, const char *runbook_base,
                          const char *external_url)
{
    char *rb = mw_strdup(runbook_base ? runbook_base : "");
    char *ext = mw_strdup(external_url ? external_url : "");
    if (!rb || !ext) {
        mw_free(rb);
        mw_free(ext);
        return MW_ENOMEM;
    }
    /* No trailing '/': links append "/api/v1/..." and "/deploy/runbooks/...". */
    for (char *s = rb; *s && s[strlen(s) - 1] == '/';)
        s[strlen(s) - 1] = '\0';
    for (char *s = ext; *s && s[strlen(s) - 1] == '/';)
        s[strlen(s) - 1] = '\0';
    mw_free(ev->runbook_base);
    mw_free(ev->external_url);
    ev->runbook_base = rb;
    ev->external_url = ext;
    return 0;
}

static const struct mw_rule *rule_by_id(const struct mw_rule_set *rules, const char *id)
{
    char buf[300];
    for (size_t i = 0; rules && i < rules->n; i++) {
        mw_rule_id(&rules->rules[i], buf, sizeof buf);
        if (strcmp(buf, id) == 0)
            return &rules->rules[i];
    }
    return NULL;
}

void mw_evaluator_set_rules(struct mw_evaluator *ev, const struct mw_rule_set *rules)
{
    ev->rules = rules;
    for (size_t i = 0; i < ev->n; i++)
        ev->insts[i]->rule = rule_by_id(rules, ev->insts[i]->rule_id);
}

const struct mw_rule_set *mw_evaluator_rules(const struct mw_evaluator *ev)
{
    return ev->rules;
}

size_t mw_evaluator_count(const struct mw_evaluator *ev)
{
    return ev->n;
}

struct mw_alert_inst *mw_evaluator_at(const struct mw_evaluator *ev, size_t i)
{
    return i < ev->n ? ev->insts[i] : NULL;
}

struct mw_alert_inst *mw_evaluator_find(const struct mw_evaluator *ev, const char *rule_id,
                                        const char *model, const char *version, const char *feature)
{
    struct ident k = {rule_id, model, version ? version : "", feature};
    return mw_table_find(&ev->by_id, ident_hash4(ident_hash3(rule_id, model, k.version), feature),
                         &k);
}

struct mw_alert_inst *mw_evaluator_find_fingerprint(const struct mw_evaluator *ev, uint64_t fp,
                                                    const struct mw_labels *labels)
{
    return mw_table_find(&ev->by_fp, fp, labels);
}

/* Index an instance whose labels have just been set. */
static int index_fingerprint(struct mw_evaluator *ev, struct mw_alert_inst *inst)
{
    inst->fingerprint = mw_labels_hash(&inst->labels);
    if (mw_table_find(&ev->by_fp, inst->fingerprint, &inst->labels))
        return 0;
    return mw_table_insert(&ev->by_fp, inst->fingerprint, inst);
}

static int insert(struct mw_evaluator *ev, struct mw_alert_inst *inst)
{
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? 2 * ev->cap : 64;
        struct mw_alert_inst **grown = mw_realloc(ev->insts, cap * sizeof *grown);
        if (!grown)
            return MW_ENOMEM;
        ev->insts = grown;
        ev->cap = cap;
    }
    if (mw_table_insert(&ev->by_id, inst->hash, inst) != 0)
        return MW_ENOMEM;
    if (inst->labels.n && index_fingerprint(ev, inst) != 0)
        return MW_ENOMEM; /* the id table holds it: it is found, just not by fingerprint */
    ev->insts[ev->n++] = inst;
    return 0;
}

int mw_evaluator_adopt(struct mw_evaluator *ev, struct mw_alert_inst *inst)
{
    if (mw_evaluator_find(ev, inst->rule_id, inst->model, inst->version, inst->feature)) {
        mw_alert_inst_free(inst);
        return MW_EINVAL;
    }
    inst->rule = rule_by_id(ev->rules, inst->rule_id);
    int rc = insert(ev, inst);
    if (rc)
        mw_alert_inst_free(inst);
    return rc;
}

void mw_evaluator_gc(struct mw_evaluator *ev, bool orphans)
{
    size_t kept = 0;
    bool dropped = false;
    for (size_t i = 0; i < ev->n; i++) {
        struct mw_alert_inst *inst = ev->insts[i];
        if (inst->removed || (orphans && !inst->rule)) {
            mw_alert_inst_free(inst);
            dropped = true;
        } else {
            ev->insts[kept++] = inst;
        }
    }
    ev->n = kept;
    if (!dropped)
        return;
    /* The table never removes: build it again from what is left. */
    mw_table_free(&ev->by_id);
    mw_table_free(&ev->by_fp);
    mw_table_init(&ev->by_id, inst_equal);
    mw_table_init(&ev->by_fp, fp_equal);
    for (size_t i = 0; i < ev->n; i++) {
        mw_table_insert(&ev->by_id, ev->insts[i]->hash, ev->insts[i]);
        if (ev->insts[i]->labels.n)
            index_fingerprint(ev, ev->insts[i]);
    }
}

/* ---- signals of one source, computed once per group ------------------------------------------ */

enum {
    HAVE_SERVICE = 1 << 0,
    HAVE_SLO = 1 << 1,
    HAVE_COST = 1 << 2,
    HAVE_PERF = 1 << 3,
    HAVE_DRIFT = 1 << 4,
};

struct computed {
    const struct mw_eval_source *src;
    const struct mw_aggregator_config *cfg;
    unsigned have, failed;
    struct mw_service_signals service;
    struct mw_slo_attainment slo;
    struct mw_cost_signals cost;
    struct mw_perf_signals *perf;
    struct mw_drift_signals drift;
    double drift_max_observed;
};

static void computed_free(struct computed *c)
{
    mw_free(c->perf);
    if ((c->have & HAVE_DRIFT) && !c->src->drift)
        mw_drift_signals_free(&c->drift);
}

/* Compute the families in `want` not computed yet. A family that cannot be computed (memory)
 * is marked failed and reads as no value. */
static void need(struct computed *c, unsigned want)
{
    const struct mw_window *w = c->src->window;
    unsigned todo = want & ~(c->have | c->failed);
    if (todo & HAVE_SERVICE) {
        if (mw_service_signals_compute(w, &c->service) == 0)
            c->have |= HAVE_SERVICE;
        else
            c->failed |= HAVE_SERVICE;
    }
    if (todo & HAVE_SLO) {
        mw_slo_attainment_compute(w, c->cfg, &c->slo);
        c->have |= HAVE_SLO;
    }
    if (todo & HAVE_COST) {
        mw_cost_signals_compute(w, c->cfg, &c->cost);
        c->have |= HAVE_COST;
    }
    if (todo & HAVE_PERF) {
        c->perf = mw_malloc(sizeof *c->perf);
        if (c->perf && mw_perf_signals_compute(w, c->perf) == 0) {
            c->have |= HAVE_PERF;
        } else {
            mw_free(c->perf);
            c->perf = NULL;
            c->failed |= HAVE_PERF;
        }
    }
    if (todo & HAVE_DRIFT) {
        if (c->src->drift)
            c->drift = *c->src->drift; /* borrowed: not freed here */
        if (c->src->drift ||
            (w->profile && mw_drift_signals_compute(w, w->profile, c->cfg, &c->drift) == 0)) {
            c->have |= HAVE_DRIFT;
            c->drift_max_observed = 0;
            for (size_t i = 0; i < c->drift.n_features; i++)
                if (c->drift.features[i].observed > c->drift_max_observed)
                    c->drift_max_observed = c->drift.features[i].observed;
        } else {
            c->failed |= HAVE_DRIFT;
        }
    }
}

static bool is_drift(enum mw_signal s)
{
    switch (s) {
    case MW_SIGNAL_DRIFT_VERDICT:
    case MW_SIGNAL_PSI:
    case MW_SIGNAL_JS_DISTANCE:
    case MW_SIGNAL_KS:
    case MW_SIGNAL_KS_P_VALUE:
    case MW_SIGNAL_WASSERSTEIN_NORMED:
    case MW_SIGNAL_CHI2_P_VALUE:
    case MW_SIGNAL_UNSEEN_SHARE:
    case MW_SIGNAL_OUT_OF_RANGE_RATE:
    case MW_SIGNAL_MISSING_RATE:
        return true;
    default:
        return false;
    }
}

static bool is_perf(enum mw_signal s)
{
    return s >= MW_SIGNAL_ACCURACY && s <= MW_SIGNAL_LABEL_COVERAGE;
}

static unsigned families_of(enum mw_signal s)
{
    if (is_drift(s))
        return HAVE_DRIFT;
    if (is_perf(s))
        return HAVE_PERF;
    switch (s) {
    case MW_SIGNAL_ERROR_RATE:
    case MW_SIGNAL_LATENCY_P50:
    case MW_SIGNAL_LATENCY_P90:
    case MW_SIGNAL_LATENCY_P95:
    case MW_SIGNAL_LATENCY_P99:
        return HAVE_SERVICE;
    case MW_SIGNAL_AVAILABILITY:
    case MW_SIGNAL_LATENCY_ATTAINMENT:
        return HAVE_SLO;
    case MW_SIGNAL_COST_PER_1K:
        return HAVE_COST;
    default:
        return 0;
    }
}

/* ---- burn rates over arbitrary lookbacks ------------------------------------------------------
 */

/* First index whose start is >= t. */
static size_t lower_bound(const struct mw_eval_count *w, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w[mid].start_ms < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void add_span(const struct mw_eval_count *w, size_t n, int64_t from, int64_t to,
                     double *count, double *errors)
{
    for (size_t i = lower_bound(w, n, from); i < n && w[i].start_ms < to; i++) {
        *count += w[i].count;
        *errors += w[i].errors;
    }
}

void mw_eval_span_sums(const struct mw_eval_counts *c, const struct mw_aggregator_config *cfg,
                       int64_t at_ms, int64_t lookback_ms, double *count, double *errors)
{
    *count = *errors = 0;
    if (!c)
        return;
    if (lookback_ms <= MW_SLO_FINE_LOOKBACK_MAX_MS) {
        add_span(c->fine, c->n_fine, at_ms - lookback_ms, at_ms, count, errors);
        return;
    }
    int64_t coarse_ms = cfg->windows.coarse_ms;
    int64_t hour = at_ms - ((at_ms % coarse_ms) + coarse_ms) % coarse_ms;
    add_span(c->coarse, c->n_coarse, at_ms - lookback_ms, hour - coarse_ms + 1, count, errors);
    add_span(c->fine, c->n_fine, hour, at_ms, count, errors);
}

static void span_sums(const struct mw_eval_source *src, const struct mw_aggregator_config *cfg,
                      int64_t at_ms, int64_t lookback_ms, double *count, double *errors)
{
    mw_eval_span_sums(src->counts, cfg, at_ms, lookback_ms, count, errors);
}

bool mw_eval_span_covered(const struct mw_eval_counts *c, const struct mw_aggregator_config *cfg,
                          int64_t at_ms, int64_t lookback_ms)
{
    if (!c)
        return false;
    if (lookback_ms <= MW_SLO_FINE_LOOKBACK_MAX_MS)
        return c->n_fine && c->fine[0].start_ms <= at_ms - lookback_ms;
    return c->n_coarse && c->coarse[0].start_ms < at_ms - lookback_ms + cfg->windows.coarse_ms;
}

/* Burn rate over one lookback; NaN without requests, or before the version's windows cover
 * the whole lookback. */
static double burn_rate(const struct mw_eval_source *src, const struct mw_aggregator_config *cfg,
                        int64_t at_ms, int64_t lookback_ms, double *requests)
{
    double count, errors;
    span_sums(src, cfg, at_ms, lookback_ms, &count, &errors);
    if (requests)
        *requests = count;
    if (!mw_eval_span_covered(src->counts, cfg, at_ms, lookback_ms))
        return NAN;
    double budget = 1.0 - cfg->slo.availability;
    return count > 0 ? errors / count / budget : NAN;
}

/* ---- values ---------------------------------------------------------------------------------- */

static const struct mw_drift_feature_signal *drift_feature(const struct computed *c,
                                                           const char *feature)
{
    for (size_t i = 0; i < c->drift.n_features; i++)
        if (strcmp(c->drift.features[i].feature, feature) == 0)
            return &c->drift.features[i];
    return NULL;
}

static double verdict_level(enum mw_drift_verdict v)
{
    switch (v) {
    case MW_DRIFT_VERDICT_NONE:
        return 0;
    case MW_DRIFT_VERDICT_POSSIBLE:
        return 1;
    case MW_DRIFT_VERDICT_DRIFT:
        return 2;
    default:
        return NAN;
    }
}

static void set_value(struct mw_rule_sample *out, double value, double samples)
{
    if (isnan(value)) {
        out->kind = MW_SAMPLE_NO_VALUE;
        return;
    }
    out->kind = MW_SAMPLE_VALUE;
    out->value = value;
    out->samples = samples > 0 ? (uint64_t)llround(samples) : 0;
}

/* The value of a feature signal from one feature's drift. */
static void feature_value(enum mw_signal s, const struct mw_drift_feature_signal *f,
                          const struct mw_window *w, struct mw_rule_sample *out)
{
    double n = f->observed;
    switch (s) {
    case MW_SIGNAL_DRIFT_VERDICT:
        set_value(out, verdict_level(f->verdict), n);
        break;
    case MW_SIGNAL_PSI:
        set_value(out, f->psi, n);
        break;
    case MW_SIGNAL_JS_DISTANCE:
        set_value(out, f->js_distance, n);
        break;
    case MW_SIGNAL_KS:
        set_value(out, f->numeric ? f->ks : NAN, n);
        break;
    case MW_SIGNAL_KS_P_VALUE:
        set_value(out, f->numeric ? f->ks_p_value : NAN, n);
        break;
    case MW_SIGNAL_WASSERSTEIN_NORMED:
        set_value(out, f->numeric ? f->wasserstein_normed : NAN, n);
        break;
    case MW_SIGNAL_CHI2_P_VALUE:
        set_value(out, f->numeric ? NAN : f->chi2_p_value, n);
        break;
    case MW_SIGNAL_UNSEEN_SHARE:
        set_value(out, f->numeric ? NAN : f->unseen_share, n);
        break;
    case MW_SIGNAL_OUT_OF_RANGE_RATE:
        set_value(out, f->numeric ? f->out_of_range_rate : NAN, n);
        break;
    case MW_SIGNAL_MISSING_RATE:
        /* missing values are not observed: the sample is the window's sampled records */
        set_value(out, f->missing_rate, (double)w->records);
        break;
    default:
        out->kind = MW_SAMPLE_NO_VALUE;
    }
}

static void perf_value(enum mw_signal s, const struct mw_perf_signals *p,
                       struct mw_rule_sample *out)
{
    const struct mw_perf_binary_metrics *b = p->has_binary ? &p->binary : NULL;
    const struct mw_perf_multiclass_metrics *m = p->has_multiclass ? &p->multiclass : NULL;
    const struct mw_perf_regression_metrics *r = p->has_regression ? &p->regression : NULL;
    double nb = b ? (double)b->n : 0, nm = m ? (double)m->n : 0, nr = r ? (double)r->n : 0;
    switch (s) {
    case MW_SIGNAL_ACCURACY:
        set_value(out, b ? b->accuracy : m ? m->accuracy : NAN, b ? nb : nm);
        break;
    case MW_SIGNAL_PRECISION:
        set_value(out, b ? b->precision : m ? m->macro.precision : NAN, b ? nb : nm);
        break;
    case MW_SIGNAL_RECALL:
        set_value(out, b ? b->recall : m ? m->macro.recall : NAN, b ? nb : nm);
        break;
    case MW_SIGNAL_F1:
        set_value(out, b ? b->f1 : m ? m->macro.f1 : NAN, b ? nb : nm);
        break;
    case MW_SIGNAL_LOG_LOSS:
        set_value(out, b ? b->log_loss : NAN, nb);
        break;
    case MW_SIGNAL_ROC_AUC:
        set_value(out, b ? b->roc_auc : NAN, nb);
        break;
    case MW_SIGNAL_MAE:
        set_value(out, r ? r->mae : NAN, nr);
        break;
    case MW_SIGNAL_RMSE:
        set_value(out, r ? r->rmse : NAN, nr);
        break;
    case MW_SIGNAL_MAPE:
        set_value(out, r ? r->mape : NAN, r ? (double)r->n_ape : 0);
        break;
    case MW_SIGNAL_LABEL_COVERAGE:
        set_value(out, p->labels.coverage, (double)p->labels.n_predictions);
        break;
    default:
        out->kind = MW_SAMPLE_NO_VALUE;
    }
}

/* The value rule `r` reads from source `c` for `feature` (NULL: model-wide). */
static void value_of(const struct mw_rule *r, struct computed *c, const char *feature,
                     struct mw_rule_sample *out)
{
    const struct mw_window *w = c->src->window;
    double count = (double)w->count;
    out->start_ms = w->start_ms;
    out->end_ms = w->start_ms + w->width_ms;
    out->kind = MW_SAMPLE_NO_VALUE;
    out->value = NAN;
    out->samples = 0;
    need(c, families_of(r->signal));
    if (is_drift(r->signal)) {
        if (!(c->have & HAVE_DRIFT))
            return;
        if (!feature) {
            if (r->signal == MW_SIGNAL_DRIFT_VERDICT)
                set_value(out, verdict_level(c->drift.verdict), c->drift_max_observed);
            return;
        }
        const struct mw_drift_feature_signal *f = drift_feature(c, feature);
        if (f)
            feature_value(r->signal, f, w, out);
        return;
    }
    if (is_perf(r->signal)) {
        if (c->have & HAVE_PERF)
            perf_value(r->signal, c->perf, out);
        return;
    }
    const struct mw_service_signals *sv = (c->have & HAVE_SERVICE) ? &c->service : NULL;
    switch (r->signal) {
    case MW_SIGNAL_ERROR_RATE:
        if (sv)
            set_value(out, sv->error_rate, count);
        break;
    case MW_SIGNAL_LATENCY_P50:
        if (sv)
            set_value(out, sv->latency_p50_us / 1e6, count);
        break;
    case MW_SIGNAL_LATENCY_P90:
        if (sv)
            set_value(out, sv->latency_p90_us / 1e6, count);
        break;
    case MW_SIGNAL_LATENCY_P95:
        if (sv)
            set_value(out, sv->latency_p95_us / 1e6, count);
        break;
    case MW_SIGNAL_LATENCY_P99:
        if (sv)
            set_value(out, sv->latency_p99_us / 1e6, count);
        break;
    case MW_SIGNAL_AVAILABILITY:
        set_value(out, c->slo.availability, count);
        break;
    case MW_SIGNAL_LATENCY_ATTAINMENT:
        set_value(out, c->slo.latency_attainment, count);
        break;
    case MW_SIGNAL_COST_PER_1K:
        set_value(out, c->cost.per_1k_predictions, count);
        break;
    case MW_SIGNAL_LATE_RATE: {
        double total = count + (double)w->late;
        set_value(out, total > 0 ? (double)w->late / total : NAN, total);
        break;
    }
    case MW_SIGNAL_BURN_RATE: {
        double short_requests = 0;
        double at = (double)out->end_ms;
        double lr = burn_rate(c->src, c->cfg, (int64_t)at, r->long_window_ms, NULL);
        double sr = burn_rate(c->src, c->cfg, (int64_t)at, r->short_window_ms, &short_requests);
        set_value(out, mw_rule_burn_value(lr, sr), short_requests);
        break;
    }
    default:
        break;
    }
}

void mw_evaluator_value(const struct mw_evaluator *ev, const struct mw_rule *r,
                        const struct mw_eval_source *src, const char *feature,
                        struct mw_rule_sample *out)
{
    struct computed c = {.src = src, .cfg = ev->cfg};
    value_of(r, &c, feature, out);
    computed_free(&c);
}

/* ---- what a page says ------------------------------------------------------------------------ */

static bool glob_matches(const char *pattern, const char *text)
{
    if (pattern[0] == '*' && pattern[1] == '\0')
        return true;
    return fnmatch(pattern, text, 0) == 0;
}

static void add_value(struct mw_alert_inst *inst, const char *name, double value)
{
    if (inst->n_values == MW_ALERT_MAX_VALUES)
        return;
    struct mw_alert_value *v = &inst->values[inst->n_values++];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->value = value;
}

static void add_valuef(struct mw_alert_inst *inst, double value, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_valuef(struct mw_alert_inst *inst, double value, const char *fmt, ...)
{
    char name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    add_value(inst, name, value);
}

/* Append text to an annotation buffer; a buffer that fills up is cut (the page still goes). */
static void textf(struct mw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void textf(struct mw_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mw_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

static int set_annotation(struct mw_alert_inst *inst, const char *name, struct mw_buf *b)
{
    if (!b->data || !b->len)
        return 0;
    int rc = mw_labels_set(&inst->annotations, name, b->data);
    return rc == MW_ENOMEM ? rc : 0;
}

/* Percent-encode a query value (model and version names are printable but may hold '&'). */
static void url_value(char *out, size_t size, const char *in)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 < size; in++) {
        unsigned char ch = (unsigned char)*in;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

/* A shell word: as is when safe, else single-quoted. */
static void shell_word(char *out, size_t size, const char *in)
{
    bool safe = *in != '\0';
    for (const char *p = in; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("-_.:/+=,@", *p)))
            safe = false;
    if (safe) {
        snprintf(out, size, "%s", in);
        return;
    }
    size_t o = 0;
    if (size < 3)
        return;
    out[o++] = '\'';
    for (; *in && o + 6 < size; in++) {
        if (*in == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *in;
        }
    }
    out[o++] = '\'';
    out[o] = '\0';
}

static void format_number(char *out, size_t size, double v)
{
    if (isnan(v))
        snprintf(out, size, "n/a");
    else
        snprintf(out, size, "%.4g", v);
}

/* Links: the API URL of the window (generator_url) and the modelwatch-ctl command. */
static int render_links(const struct mw_evaluator *ev, struct mw_alert_inst *inst,
                        const struct mw_rule *r, int64_t start_ms, int64_t width_ms)
{
    char model[400], version[400], api[600], cmd[4096], mq[400], vq[400], url[4096];
    url_value(mq, sizeof mq, inst->model);
    url_value(vq, sizeof vq, inst->version);
    shell_word(model, sizeof model, inst->model);
    shell_word(version, sizeof version, inst->version);
    const char *ext = ev->external_url;
    shell_word(api, sizeof api, ext);
    long long res_s = (long long)(width_ms / 1000);
    bool absence = r->signal == MW_SIGNAL_ABSENCE;
    if (mw_signal_info(r->signal)->flags & MW_SIGNAL_PIPELINE) {
        snprintf(url, sizeof url, "%s/metrics", ext);
        snprintf(cmd, sizeof cmd, "modelwatch-ctl --api %s alerts", api);
    } else if (absence) {
        snprintf(url, sizeof url, "%s/api/v1/models/%s/windows", ext, mq);
        snprintf(cmd, sizeof cmd, "modelwatch-ctl --api %s windows %s", api, model);
    } else if (is_drift(r->signal)) {
        snprintf(url, sizeof url,
                 "%s/api/v1/models/%s/drift?version=%s&window=%" PRId64 "&resolution=%lld", ext, mq,
                 vq, start_ms, res_s);
        snprintf(cmd, sizeof cmd,
                 "modelwatch-ctl --api %s drift %s --version %s --window %" PRId64
                 " --resolution %lld",
                 api, model, version, start_ms, res_s);
    } else {
        snprintf(url, sizeof url,
                 "%s/api/v1/models/%s/windows?version=%s&resolution=%lld&from=%" PRId64
                 "&to=%" PRId64,
                 ext, mq, vq, res_s, start_ms, start_ms);
        snprintf(cmd, sizeof cmd,
                 "modelwatch-ctl --api %s windows %s --version %s --resolution %lld --from %" PRId64
                 " --to %" PRId64,
                 api, model, version, res_s, start_ms, start_ms);
    }
    char *dup = mw_strdup(url);
    if (!dup)
        return MW_ENOMEM;
    mw_free(inst->generator_url);
    inst->generator_url = dup;
    int rc = mw_labels_set(&inst->annotations, "ctl_command", cmd);
    return rc == MW_ENOMEM ? rc : 0;
}

static const char *signal_name(const struct mw_rule *r)
{
    return mw_signal_info(r->signal)->name;
}

/* Every version live in the group: its share of the requests and the same signal. */
static int render_versions(struct mw_alert_inst *inst, const struct mw_rule *r,
                           struct computed *group, size_t n)
{
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += (double)group[i].src->window->count;
    struct mw_buf b;
    mw_buf_init(&b, MW_LABEL_VALUE_MAX);
    for (size_t i = 0; i < n && i < MAX_VERSIONS_SHOWN; i++) {
        const struct mw_window *w = group[i].src->window;
        struct mw_rule_sample s;
        value_of(r, &group[i], inst->feature, &s);
        double share = total > 0 ? (double)w->count / total : NAN;
        double v = s.kind == MW_SAMPLE_VALUE ? s.value : NAN;
        char vt[32];
        format_number(vt, sizeof vt, v);
        textf(&b, "%s%s: %.1f%% of traffic, %s %s (%" PRIu64 " samples)", i ? "; " : "", w->version,
              share * 100, signal_name(r), vt, s.kind == MW_SAMPLE_VALUE ? s.samples : 0);
        add_valuef(inst, share, "version.%.40s.traffic_share", w->version);
        add_valuef(inst, v, "version.%.40s.value", w->version);
    }
    int rc = set_annotation(inst, "versions", &b);
    mw_buf_free(&b);
    return rc;
}

struct ranked {
    const struct mw_drift_feature_signal *f;
};

static int rank_features(const void *a, const void *b)
{
    const struct mw_drift_feature_signal *x = ((const struct ranked *)a)->f;
    const struct mw_drift_feature_signal *y = ((const struct ranked *)b)->f;
    double vx = verdict_level(x->verdict), vy = verdict_level(y->verdict);
    vx = isnan(vx) ? -1 : vx;
    vy = isnan(vy) ? -1 : vy;
    if (vx != vy)
        return vx > vy ? -1 : 1;
    double px = isnan(x->psi) ? -1 : x->psi, py = isnan(y->psi) ? -1 : y->psi;
    return px > py ? -1 : px < py ? 1 : strcmp(x->feature, y->feature);
}

/* The features that drifted most (by verdict, then PSI), with PSI, p-value and counts. */
static int render_drift(struct mw_alert_inst *inst, struct computed *self)
{
    if (!(self->have & HAVE_DRIFT) || !self->drift.n_features)
        return 0;
    size_t n = self->drift.n_features;
    struct ranked *order = mw_calloc(n, sizeof *order);
    if (!order)
        return MW_ENOMEM;
    for (size_t i = 0; i < n; i++)
        order[i].f = &self->drift.features[i];
    qsort(order, n, sizeof *order, rank_features);
    struct mw_buf b;
    mw_buf_init(&b, MW_LABEL_VALUE_MAX);
    textf(&b, "model verdict %s; ", mw_drift_verdict_name(self->drift.verdict));
    for (size_t i = 0; i < n && i < TOP_FEATURES; i++) {
        const struct mw_drift_feature_signal *f = order[i].f;
        double p = f->numeric ? f->ks_p_value : f->chi2_p_value;
        char psi[32], pv[32];
        format_number(psi, sizeof psi, f->psi);
        format_number(pv, sizeof pv, p);
        textf(&b, "%s%s: %s, PSI %s, %s p-value %s, %.0f values observed", i ? "; " : "",
              f->feature, mw_drift_verdict_name(f->verdict), psi, f->numeric ? "KS" : "chi2", pv,
              f->observed);
        add_valuef(inst, f->psi, "feature.%.40s.psi", f->feature);
        add_valuef(inst, p, "feature.%.40s.p_value", f->feature);
        add_valuef(inst, f->observed, "feature.%.40s.observed", f->feature);
    }
    mw_free(order);
    int rc = set_annotation(inst, "top_features", &b);
    mw_buf_free(&b);
    return rc;
}

/* Burn rates of every standard pair and the budget left over the longest lookback. */
static int render_burn(struct mw_alert_inst *inst, const struct mw_rule *r, struct computed *self,
                       const struct mw_aggregator_config *cfg)
{
    const struct mw_window *w = self->src->window;
    int64_t at = w->start_ms + w->width_ms;
    double lr = burn_rate(self->src, cfg, at, r->long_window_ms, NULL);
    double sr = burn_rate(self->src, cfg, at, r->short_window_ms, NULL);
    add_value(inst, "burn_rate_long", lr);
    add_value(inst, "burn_rate_short", sr);
    struct mw_buf b;
    mw_buf_init(&b, MW_LABEL_VALUE_MAX);
    for (size_t i = 0; i < MW_SLO_N_BURN_PAIRS; i++) {
        const struct mw_slo_burn_pair *p = &mw_slo_burn_pairs[i];
        int64_t lms = 0, sms = 0;
        for (size_t k = 0; k < MW_SLO_N_LOOKBACKS; k++) {
            if (!strcmp(mw_slo_lookbacks[k].name, p->long_name))
                lms = mw_slo_lookbacks[k].ms;
            if (!strcmp(mw_slo_lookbacks[k].name, p->short_name))
                sms = mw_slo_lookbacks[k].ms;
        }
        char l[32], s[32];
        format_number(l, sizeof l, burn_rate(self->src, cfg, at, lms, NULL));
        format_number(s, sizeof s, burn_rate(self->src, cfg, at, sms, NULL));
        textf(&b, "%s%s/%s: %s/%s (page or ticket above %g)", i ? "; " : "", p->long_name,
              p->short_name, l, s, p->threshold);
    }
    double rate3d = burn_rate(self->src, cfg, at, MW_SLO_LOOKBACK_MAX_MS, NULL);
    double left = isnan(rate3d) ? NAN : 1.0 - rate3d;
    add_value(inst, "error_budget_left_3d", left);
    char lt[32];
    format_number(lt, sizeof lt, left * 100);
    textf(&b, "; error budget left over the last 3d: %s%%", lt);
    int rc = set_annotation(inst, "burn_rates", &b);
    mw_buf_free(&b);
    return rc;
}

static int render_cost(struct mw_alert_inst *inst, struct computed *self,
                       const struct mw_aggregator_config *cfg)
{
    need(self, HAVE_COST | HAVE_SERVICE);
    const struct mw_cost_signals *c = &self->cost;
    const struct mw_window *w = self->src->window;
    double cpu = c->cpu_core_seconds_billed / 3600 * cfg->cost.cpu_core_hour;
    double mem = c->memory_gib_seconds_billed / 3600 * cfg->cost.memory_gib_hour;
    double gpu = c->gpu_seconds / 3600 * cfg->cost.gpu_hour;
    double pod = c->pod_seconds / 3600 * cfg->cost.pod_hour;
    double tokens = (double)w->tokens_in / 1000 * cfg->cost.input_tokens_per_1k +
                    (double)w->tokens_out / 1000 * cfg->cost.output_tokens_per_1k;
    add_value(inst, "cost.cpu", cpu);
    add_value(inst, "cost.memory", mem);
    add_value(inst, "cost.gpu", gpu);
    add_value(inst, "cost.pod", pod);
    add_value(inst, "cost.tokens", tokens);
    add_value(inst, "cost.total", c->total);
    struct mw_buf b;
    mw_buf_init(&b, MW_LABEL_VALUE_MAX);
    textf(&b,
          "total %.4g for %" PRId64 " predictions: CPU %.4g, memory %.4g, GPU %.4g, pod %.4g, "
          "tokens %.4g",
          c->total, w->count, cpu, mem, gpu, pod, tokens);
    int rc = set_annotation(inst, "cost_breakdown", &b);
    mw_buf_free(&b);
    return rc;
}

static int render_perf(struct mw_alert_inst *inst, struct computed *self)
{
    need(self, HAVE_PERF);
    if (!(self->have & HAVE_PERF))
        return 0;
    const struct mw_perf_coverage_metrics *l = &self->perf->labels;
    add_value(inst, "labelled", (double)l->n_labelled);
    add_value(inst, "label_coverage", l->coverage);
    struct mw_buf b;
    mw_buf_init(&b, MW_LABEL_VALUE_MAX);
    char cov[32];
    format_number(cov, sizeof cov, l->coverage * 100);
    textf(&b,
          "%" PRIu64 " labelled of %" PRIu64 " predictions (coverage %s%%); the profile holds "
          "no reference value for this metric",
          l->n_labelled, l->n_predictions, cov);
    int rc = set_annotation(inst, "labels", &b);
    mw_buf_free(&b);
    return rc;
}

/*
 * (Re)write the alert of `inst` from the window group it was just stepped with: labels (once),
 * the rule's annotations, the window, values, versions and what its signal's family adds.
 */
static int render(const struct mw_evaluator *ev, struct mw_alert_inst *inst,
                  const struct mw_rule *r, struct computed *group, size_t n, size_t self_at,
                  int64_t start_ms, int64_t width_ms)
{
    int rc = 0;
    if (!inst->labels.n) {
        rc = mw_rule_alert_labels(r, inst->model, inst->version, inst->feature, &inst->labels);
        if (rc)
            return rc;
    }
    mw_labels_free(&inst->annotations);
    rc = mw_rule_annotations(r, &inst->labels, &inst->st, ev->runbook_base, &inst->annotations);
    if (rc)
        return rc;
    inst->n_values = 0;
    add_value(inst, "value", inst->st.has_value ? inst->st.value : NAN);
    add_value(inst, "threshold", r->cond.threshold);
    add_value(inst, "resolve_threshold", r->cond.resolve_threshold);
    add_value(inst, "samples", (double)inst->st.samples);
    add_value(inst, "window_start_ms", (double)start_ms);
    add_value(inst, "window_end_ms", (double)(start_ms + width_ms));
    char from[40], to[40], text[200], wt[64];
    mw_rule_window_text(r, wt, sizeof wt);
    if (mw_signal_info(r->signal)->flags & MW_SIGNAL_WALL) {
        mw_clock_format_rfc3339(start_ms, from, sizeof from);
        snprintf(text, sizeof text, "wall clock %s, evaluated every %s", from, wt);
    } else {
        mw_clock_format_rfc3339(start_ms, from, sizeof from);
        mw_clock_format_rfc3339(start_ms + width_ms, to, sizeof to);
        snprintf(text, sizeof text, "%s window %s to %s (event time)", wt, from, to);
    }
    rc = mw_labels_set(&inst->annotations, "window", text);
    if (!rc)
        rc = render_links(ev, inst, r, start_ms, width_ms);
    if (!rc && group && n)
        rc = render_versions(inst, r, group, n);
    struct computed *self = group ? &group[self_at] : NULL;
    if (!rc && self && is_drift(r->signal))
        rc = render_drift(inst, self);
    if (!rc && self && r->signal == MW_SIGNAL_BURN_RATE)
        rc = render_burn(inst, r, self, ev->cfg);
    if (!rc && self && r->signal == MW_SIGNAL_COST_PER_1K)
        rc = render_cost(inst, self, ev->cfg);
    if (!rc && self && is_perf(r->signal))
        rc = render_perf(inst, self);
    return rc == MW_ENOMEM ? rc : 0;
}

/* ---- stepping -------------------------------------------------------------------------------- */

/* Whether an instance can be dropped: inactive, and no change it remembers is recent enough
 * to count for the flapping rule (only changes within flap_period do), so a fresh state would
 * step exactly as it would. */
static bool forgettable(const struct mw_rule_cond *cond, const struct mw_rule_state *st)
{
    if (st->state != MW_ALERT_INACTIVE)
        return false;
    return st->n_changes == 0 ||
           st->change_ms[st->n_changes - 1] <= st->last_end_ms - cond->flap_period_ms;
}

/* Whether a value would move a fresh, inactive state: only a breach does. */
static bool breaches(const struct mw_rule *r, const struct mw_rule_sample *s)
{
    return s->kind == MW_SAMPLE_VALUE && (int64_t)s->samples >= r->cond.min_samples &&
           mw_cmp_holds(r->cond.cmp, s->value, r->cond.threshold);
}

struct step_ctx {
    struct mw_evaluator *ev;
    const struct mw_eval_group *group;
    struct computed *computed;
    struct mw_eval_transitions *out;
};

/* How a page or resolve is rendered: with the window group (every version, the drift of the
 * alert's own), or without one (wall-clock rules, a version gone). */
struct render_args {
    struct computed *group; /* NULL: none */
    size_t n, self_at;
    int64_t start_ms, width_ms;
};

/* A new instance of `r` for (model, version, feature), owned by the evaluator; NULL when memory
 * runs out. */
static struct mw_alert_inst *new_instance(struct mw_evaluator *ev, const struct mw_rule *r,
                                          const char *rule_id, const char *model,
                                          const char *version, const char *feature)
{
    struct mw_alert_inst *inst = mw_alert_inst_new(rule_id, model, version, feature);
    if (!inst || insert(ev, inst) != 0) {
        mw_alert_inst_free(inst);
        return NULL;
    }
    inst->rule = r;
    return inst;
}

/* Keep a stepped state in its instance, render what a page or resolve must say, and report the
 * transition. */
static int settle_step(struct mw_evaluator *ev, struct mw_alert_inst *inst, const struct mw_rule *r,
                       const struct mw_rule_state *st, const struct mw_rule_step *step,
                       const struct render_args *ra, struct mw_eval_transitions *out)
{
    inst->st = *st;
    inst->dirty = true;
    inst->removed = forgettable(&r->cond, st);
    int rc = 0;
    if (step->page || step->resolve || (st->state == MW_ALERT_FIRING && !inst->labels.n)) {
        bool new_labels = !inst->labels.n;
        rc = render(ev, inst, r, ra->group, ra->n, ra->self_at, ra->start_ms, ra->width_ms);
        if (!rc && new_labels)
            rc = index_fingerprint(ev, inst);
    }
    if (!rc && step->page)
        rc = add_transition(out, inst, MW_EVAL_PAGE);
    if (!rc && step->resolve)
        rc = add_transition(out, inst, MW_EVAL_RESOLVE);
    return rc;
}

static int step_one(struct step_ctx *sc, const struct mw_rule *r, const char *rule_id, uint64_t h3,
                    size_t at, const char *feature, const struct mw_rule_sample *sample)
{
    struct mw_evaluator *ev = sc->ev;
    const struct mw_window *w = sc->computed[at].src->window;
    struct ident k = {rule_id, sc->group->model, w->version, feature};
    uint64_t h = ident_hash4(h3, feature);
    struct mw_alert_inst *inst = mw_table_find(&ev->by_id, h, &k);
    if (!inst && !breaches(r, sample))
        return 0;
    struct mw_rule_state st;
    if (inst)
        st = inst->st;
    else
        mw_rule_state_init(&st);
    struct mw_rule_step step;
    mw_rule_state_step(&r->cond, &st, sample, &step);
    if (step.ignored)
        return 0;
    if (!inst && !(inst = new_instance(ev, r, rule_id, sc->group->model, w->version, feature)))
        return MW_ENOMEM;
    struct render_args ra = {sc->computed, sc->group->n, at, sc->group->start_ms,
                             sc->group->width_ms};
    return settle_step(ev, inst, r, &st, &step, &ra, sc->out);
}

static bool runs_at(const struct mw_evaluator *ev, const struct mw_rule *r, int64_t width_ms)
{
    unsigned flags = mw_signal_info(r->signal)->flags;
    if (flags & (MW_SIGNAL_WALL | MW_SIGNAL_PIPELINE))
        return false;
    if (flags & MW_SIGNAL_BURN)
        return width_ms == ev->cfg->windows.fine_ms;
    int64_t rule_width = r->resolution == MW_RESOLUTION_COARSE ? ev->cfg->windows.coarse_ms
                                                               : ev->cfg->windows.fine_ms;
    return rule_width == width_ms;
}

/* Whether the group holds a window of `version`. */
static bool group_has_version(const struct mw_eval_group *g, const char *version)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->sources[i].window->version, version) == 0)
            return true;
    return false;
}

/*
 * A version that sends no more windows (rolled back, or retired) leaves its pending and firing
 * alerts with nothing to step them: once the model's windows at this width have gone on without
 * the version for MW_EVAL_VERSION_GONE_MS of event time, each such alert is stepped as gone, so
 * it clears (after keep_firing_for), as a Prometheus alert resolves when its series disappears.
 */
static int step_gone_versions(struct step_ctx *sc)
{
    struct mw_evaluator *ev = sc->ev;
    const struct mw_eval_group *g = sc->group;
    int64_t end_ms = g->start_ms + g->width_ms;
    int rc = 0;
    for (size_t i = 0; !rc && i < ev->n; i++) {
        struct mw_alert_inst *inst = ev->insts[i];
        const struct mw_rule *r = inst->rule;
        if (!r || (inst->st.state != MW_ALERT_PENDING && inst->st.state != MW_ALERT_FIRING) ||
            !runs_at(ev, r, g->width_ms) || r->delay_ms != g->delay_ms ||
            end_ms - inst->st.last_end_ms < MW_EVAL_VERSION_GONE_MS ||
            strcmp(inst->model, g->model) != 0 || group_has_version(g, inst->version))
            continue;
        struct mw_rule_sample gone = {.start_ms = g->start_ms, .end_ms = end_ms,
                                      .kind = MW_SAMPLE_GONE};
        struct mw_rule_state st = inst->st;
        struct mw_rule_step step;
        mw_rule_state_step(&r->cond, &st, &gone, &step);
        struct render_args ra = {NULL, 0, 0, g->start_ms, g->width_ms};
        rc = settle_step(ev, inst, r, &st, &step, &ra, sc->out);
    }
    return rc;
}

static int step_rule(struct step_ctx *sc, const struct mw_rule *r, size_t at)
{
    struct computed *c = &sc->computed[at];
    const struct mw_window *w = c->src->window;
    if (!glob_matches(r->model, sc->group->model) || !glob_matches(r->version, w->version))
        return 0;
    char rule_id[300];
    mw_rule_id(r, rule_id, sizeof rule_id);
    uint64_t h3 = ident_hash3(rule_id, sc->group->model, w->version);
    struct mw_rule_sample sample;
    if (!r->feature) {
        value_of(r, c, NULL, &sample);
        return step_one(sc, r, rule_id, h3, at, NULL, &sample);
    }
    need(c, HAVE_DRIFT);
    if (!(c->have & HAVE_DRIFT))
        return 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < c->drift.n_features; i++) {
        const char *f = c->drift.features[i].feature;
        if (!glob_matches(r->feature, f))
            continue;
        sample = (struct mw_rule_sample){
            .start_ms = w->start_ms, .end_ms = w->start_ms + w->width_ms, .value = NAN};
        sample.kind = MW_SAMPLE_NO_VALUE;
        feature_value(r->signal, &c->drift.features[i], w, &sample);
        rc = step_one(sc, r, rule_id, h3, at, f, &sample);
    }
    return rc;
}

int mw_evaluator_step_group(struct mw_evaluator *ev, const struct mw_eval_group *group,
                            struct mw_eval_transitions *out)
{
    if (!ev->rules || !group->n)
        return 0;
    struct computed *computed = mw_calloc(group->n, sizeof *computed);
    if (!computed)
        return MW_ENOMEM;
    for (size_t i = 0; i < group->n; i++)
        computed[i] = (struct computed){.src = &group->sources[i], .cfg = ev->cfg};
    struct step_ctx sc = {.ev = ev, .group = group, .computed = computed, .out = out};
    int rc = 0;
    for (size_t k = 0; !rc && k < ev->rules->n; k++) {
        const struct mw_rule *r = &ev->rules->rules[k];
        if (!runs_at(ev, r, group->width_ms) || r->delay_ms != group->delay_ms)
            continue;
        for (size_t i = 0; !rc && i < group->n; i++)
            rc = step_rule(&sc, r, i);
    }
    if (!rc)
        rc = step_gone_versions(&sc);
    for (size_t i = 0; i < group->n; i++)
        computed_free(&computed[i]);
    mw_free(computed);
    return rc;
}

/* Step one wall-clock instance of rule `r` (absence or a pipeline signal) with `sample`,
 * creating it when the sample moves a fresh state. */
static int step_wall(struct mw_evaluator *ev, const struct mw_rule *r, const char *model,
                     const char *feature, const struct mw_rule_sample *sample, int64_t now_ms,
                     struct mw_eval_transitions *out)
{
    char rule_id[300];
    mw_rule_id(r, rule_id, sizeof rule_id);
    struct mw_alert_inst *inst = mw_evaluator_find(ev, rule_id, model, "", feature);
    if (inst && inst->st.stepped && now_ms - inst->st.last_end_ms < r->interval_ms)
        return 0;
    struct mw_rule_state st;
    if (inst)
        st = inst->st;
    else
        mw_rule_state_init(&st);
    struct mw_rule_step step;
    mw_rule_state_step(&r->cond, &st, sample, &step);
    if (!inst && st.state == MW_ALERT_INACTIVE && st.n_changes == 0)
        return 0;
    if (!inst && !(inst = new_instance(ev, r, rule_id, model, "", feature)))
        return MW_ENOMEM;
    struct render_args ra = {NULL, 0, 0, now_ms, 0};
    return settle_step(ev, inst, r, &st, &step, &ra, out);
}

int mw_evaluator_step_absence(struct mw_evaluator *ev, const char *model, int64_t last_seen_ms,
                              int64_t now_ms, struct mw_eval_transitions *out)
{
    int rc = 0;
    struct mw_rule_sample sample = {.start_ms = now_ms, .end_ms = now_ms, .samples = 1};
    if (last_seen_ms <= 0) {
        sample.kind = MW_SAMPLE_NO_VALUE;
    } else {
        sample.kind = MW_SAMPLE_VALUE;
        sample.value = (double)(now_ms - last_seen_ms) / 1000.0;
    }
    for (size_t k = 0; !rc && ev->rules && k < ev->rules->n; k++) {
        const struct mw_rule *r = &ev->rules->rules[k];
        if (r->signal == MW_SIGNAL_ABSENCE && glob_matches(r->model, model))
            rc = step_wall(ev, r, model, NULL, &sample, now_ms, out);
    }
    return rc;
}

static bool reading_names(const struct mw_pipeline_reading *readings, size_t n, enum mw_signal sig,
                          const char *feature)
{
    for (size_t i = 0; i < n; i++)
        if (readings[i].signal == sig && strcmp(readings[i].subject, feature ? feature : "") == 0)
            return true;
    return false;
}

int mw_evaluator_step_pipeline(struct mw_evaluator *ev, const struct mw_pipeline_reading *readings,
                               size_t n, int64_t now_ms, struct mw_eval_transitions *out)
{
    int rc = 0;
    for (size_t k = 0; !rc && ev->rules && k < ev->rules->n; k++) {
        const struct mw_rule *r = &ev->rules->rules[k];
        if (!(mw_signal_info(r->signal)->flags & MW_SIGNAL_PIPELINE))
            continue;
        for (size_t i = 0; !rc && i < n; i++) {
            const struct mw_pipeline_reading *rd = &readings[i];
            if (rd->signal != r->signal)
                continue;
            struct mw_rule_sample sample = {.start_ms = now_ms, .end_ms = now_ms,
                                            .kind = rd->kind, .value = rd->value, .samples = 1};
            rc = step_wall(ev, r, "", *rd->subject ? rd->subject : NULL, &sample, now_ms, out);
        }
    }
    /* What no reading names any more is gone: its alerts clear. */
    char rule_id[300];
    for (size_t i = 0; !rc && i < mw_evaluator_count(ev); i++) {
        struct mw_alert_inst *inst = mw_evaluator_at(ev, i);
        const struct mw_rule *r = inst->rule;
        if (!r || !(mw_signal_info(r->signal)->flags & MW_SIGNAL_PIPELINE) ||
            reading_names(readings, n, r->signal, inst->feature))
            continue;
        mw_rule_id(r, rule_id, sizeof rule_id);
        struct mw_rule_sample gone = {.start_ms = now_ms, .end_ms = now_ms,
                                      .kind = MW_SAMPLE_GONE, .samples = 1};
        rc = step_wall(ev, r, inst->model, inst->feature, &gone, now_ms, out);
    }
    return rc;
}
