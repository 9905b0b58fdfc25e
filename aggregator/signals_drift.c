/* signals_drift.c — a window's drift fields against a reference profile, as typed signals. */
#include "signals_drift.h"

#include "alloc.h"
#include "decimal.h"
#include "drift.h"
#include "error.h"
#include "schema.h"
#include "value_sketch.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading the window's drift fields -------------------------------------------------- */

/* What the window holds of one feature. */
struct sketch_bucket {
    struct mw_sketch_bucket key;
    double weight;
};

struct feature_fields {
    double n, obs, miss, type, unseen;
    double *weight; /* numeric: per slot; categorical: per reference category */
    double *sum;    /* numeric: weighted sum per slot (only the outer slots are written) */
    /* the profile-independent sketch (value_sketch.h) */
    struct sketch_bucket *buckets;
    size_t n_buckets, cap_buckets;
};

struct window_drift {
    struct feature_fields *features; /* parallel to the profile's */
    double *slots;                   /* one zeroed block behind every feature's weight and sum */
    double records_binned;           /* records binned by any profile (pf|<tag>) */
    double records_this_profile;     /* by this one */
};

static void window_drift_free(struct window_drift *wd, const struct mw_profile *p)
{
    for (size_t i = 0; wd->features && i < p->n_features; i++)
        mw_free(wd->features[i].buckets);
    mw_free(wd->features);
    mw_free(wd->slots);
}

/* Numeric: a weight and a sum per slot; categorical: a weight per category and one unseen. */
static size_t slot_doubles(const struct mw_profile_feature *f)
{
    return f->numeric ? 2 * (f->n_cuts + 3) : f->n_categories + 1;
}

static int window_drift_init(struct window_drift *wd, const struct mw_profile *p)
{
    memset(wd, 0, sizeof *wd);
    size_t total = 0;
    for (size_t i = 0; i < p->n_features; i++)
        total += slot_doubles(&p->features[i]);
    wd->features = mw_calloc(p->n_features ? p->n_features : 1, sizeof *wd->features);
    wd->slots = mw_calloc(total ? total : 1, sizeof(double));
    if (!wd->features || !wd->slots)
        return MW_ENOMEM;
    double *at = wd->slots;
    for (size_t i = 0; i < p->n_features; i++) {
        const struct mw_profile_feature *f = &p->features[i];
        wd->features[i].weight = at;
        wd->features[i].sum = f->numeric ? at + f->n_cuts + 3 : NULL;
        at += slot_doubles(f);
    }
    return 0;
}

/* Slot number after a one-letter prefix ("g12"), or SIZE_MAX. */
static size_t slot_of(const char *suffix, size_t n_slots)
{
    const char *p = suffix + 1;
    size_t v = 0;
    if (*p < '0' || *p > '9')
        return SIZE_MAX;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (size_t)(*p - '0');
        if (v >= n_slots)
            return SIZE_MAX;
    }
    return *p == '\0' ? v : SIZE_MAX;
}

static void add_bucket(struct feature_fields *ff, struct mw_sketch_bucket key, double v)
{
    if (ff->n_buckets == ff->cap_buckets) {
        size_t cap = ff->cap_buckets ? 2 * ff->cap_buckets : 64;
        struct sketch_bucket *grown = mw_realloc(ff->buckets, cap * sizeof *grown);
        if (!grown)
            return; /* the sketch reads short; the caller's allocation checks catch the rest */
        ff->buckets = grown;
        ff->cap_buckets = cap;
    }
    ff->buckets[ff->n_buckets++] = (struct sketch_bucket){key, v};
}

/* A numeric feature's slot field: g<slot> (weight) or s<slot> (sum). */
static void add_slot_field(struct feature_fields *ff, const struct mw_profile_feature *f,
                           const char *suffix, double v)
{
    size_t slot = slot_of(suffix, f->n_cuts + 3);
    if (slot != SIZE_MAX)
        (suffix[0] == MW_DRIFT_SUFFIX_SLOT_WEIGHT ? ff->weight : ff->sum)[slot] += v;
}

/* Dispatch on the suffix's first letter: a window close reads thousands of these per model. */
static void add_feature_field(struct feature_fields *ff, const struct mw_profile_feature *f,
                              const char *suffix, double v)
{
    struct mw_sketch_bucket key;
    static const size_t category_len = sizeof MW_DRIFT_SUFFIX_CATEGORY - 1;
    switch (suffix[0]) {
    case MW_DRIFT_SUFFIX_SLOT_WEIGHT:
    case MW_DRIFT_SUFFIX_SLOT_SUM:
        if (f->numeric)
            add_slot_field(ff, f, suffix, v);
        return;
    case MW_DRIFT_SUFFIX_SKETCH_BUCKET:
        if (mw_sketch_bucket_parse(suffix, &key))
            add_bucket(ff, key, v);
        return;
    default:
        break;
    }
    if (strcmp(suffix, MW_DRIFT_SUFFIX_VALUES) == 0)
        ff->n += v;
    else if (strcmp(suffix, MW_DRIFT_SUFFIX_OBSERVED) == 0)
        ff->obs += v;
    else if (strcmp(suffix, MW_DRIFT_SUFFIX_MISSING) == 0)
        ff->miss += v;
    else if (strcmp(suffix, MW_DRIFT_SUFFIX_TYPE) == 0)
        ff->type += v;
    else if (!f->numeric && strcmp(suffix, MW_DRIFT_SUFFIX_UNSEEN) == 0) {
        ff->unseen += v;
        ff->weight[f->n_categories] += v;
    } else if (!f->numeric && strncmp(suffix, MW_DRIFT_SUFFIX_CATEGORY, category_len) == 0) {
        long idx = mw_profile_category(f, suffix + category_len);
        if (idx >= 0)
            ff->weight[idx] += v;
    }
}

/* One pass over the window's fields: d|<feature>|<suffix> and pf|<tag>. */
static void read_window(struct window_drift *wd, const struct mw_window_fields *w,
                        const struct mw_profile *p)
{
    for (size_t i = 0; i < w->n; i++) {
        const char *name = w->names[i], *suffix;
        size_t at, len;
        uint64_t tag;
        if (mw_schema_drift_field_parse(name, &at, &len, &suffix)) {
            const struct mw_profile_feature *f = mw_profile_find_n(p, name + at, len);
            double v = f ? mw_decimal_parse(w->values[i]) : NAN;
            if (isfinite(v))
                add_feature_field(&wd->features[f - p->features], f, suffix, v);
            continue; /* or not a feature of this profile (d|cpu_s is no feature's field) */
        }
        if (mw_schema_profile_tag(name, &tag)) {
            double v = mw_decimal_parse(w->values[i]);
            if (!isfinite(v))
                continue;
            wd->records_binned += v;
            if (tag == p->tag)
                wd->records_this_profile += v;
        }
    }
}

/* ---- statistics ------------------------------------------------------------------------- */

static double share(double part, double total)
{
    return total > 0 ? part / total : NAN;
}

/* Where slot s's window mass sits: its own mean where the window keeps the slot's sum (the
 * outer slots, whose reference position says nothing about the window's values), else the
 * reference's mean of the slot. Kept inside the slot so the positions stay ordered. */
static double slot_position(const struct mw_profile_feature *f, const struct feature_fields *ff,
                            size_t s)
{
    size_t last = f->n_cuts + 2;
    if (s == 0)
        return fmin(ff->sum[0] / ff->weight[0], f->min);
    if (s == last)
        return fmax(ff->sum[last] / ff->weight[last], f->max);
    if (s != 1 && s != last - 1)
        return f->slot_mean[s];
    double lo = s == 1 ? f->min : f->cuts[s - 2], hi = s == last - 1 ? f->max : f->cuts[s - 1];
    return fmin(fmax(ff->sum[s] / ff->weight[s], lo), hi);
}

static int numeric_wasserstein(const struct mw_profile_feature *f, const struct feature_fields *ff,
                               double *out)
{
    size_t n_slots = f->n_cuts + 3, n_cur = 0;
    double *cur_x = mw_calloc(2 * n_slots, sizeof *cur_x);
    if (!cur_x)
        return MW_ENOMEM;
    double *cur_w = cur_x + n_slots;
    for (size_t s = 0; s < n_slots; s++) {
        if (ff->weight[s] > 0) {
            cur_x[n_cur] = slot_position(f, ff, s);
            cur_w[n_cur++] = ff->weight[s];
        }
    }
    *out = mw_drift_wasserstein_points(f->ref_x, f->ref_w, f->n_ref_points, cur_x, cur_w, n_cur);
    mw_free(cur_x);
    return 0;
}

/* PSI, JS, KS and the out-of-range shares from the window's weight per slot. */
static int slot_statistics(struct mw_drift_feature_signal *sig, const struct mw_profile_feature *f,
                           const double *slot_w, double observed)
{
    size_t n_slots = f->n_cuts + 3;
    double *psi_w = mw_calloc(f->n_psi_bins, sizeof *psi_w);
    if (!psi_w)
        return MW_ENOMEM;
    double n = 0;
    for (size_t s = 0; s < n_slots; s++) {
        psi_w[f->psi_bin[s]] += slot_w[s];
        n += slot_w[s];
    }
    sig->psi = mw_drift_psi(f->psi_p, psi_w, f->n_psi_bins, MW_DRIFT_PSI_EPSILON);
    sig->js_distance = mw_drift_js_distance(f->psi_p, psi_w, f->n_psi_bins);
    mw_free(psi_w);
    sig->ks = mw_drift_ks_binned(f->slot_p, slot_w, n_slots);
    sig->ks_p_value = mw_drift_ks_p_value(sig->ks, f->count ? (double)f->count : NAN,
                                          observed > 0 ? observed : NAN);
    sig->below_range_rate = share(slot_w[0], n);
    sig->above_range_rate = share(slot_w[n_slots - 1], n);
    sig->out_of_range_rate = share(slot_w[0] + slot_w[n_slots - 1], n);
    return 0;
}

static int numeric_drift(struct mw_drift_feature_signal *sig, const struct mw_profile_feature *f,
                         const struct feature_fields *ff)
{
    int rc = slot_statistics(sig, f, ff->weight, ff->obs);
    rc = rc ? rc : numeric_wasserstein(f, ff, &sig->wasserstein);
    sig->wasserstein_normed = f->std > 0 ? sig->wasserstein / f->std : NAN;
    return rc;
}

/* Start and end of slot s (value_sketch spreading needs the intervals, drift.h the order). */
static void slot_interval(const struct mw_profile_feature *f, size_t s, double *start, double *end)
{
    size_t last = f->n_cuts + 2;
    *start = s == 0 ? -INFINITY : s == 1 ? f->min : s == last ? f->max : f->cuts[s - 2];
    *end = s == 0 ? f->min : s == last ? INFINITY : s == last - 1 ? f->max : f->cuts[s - 1];
}

/* The sketch's mass on the profile's slots: each bucket spread uniformly over its interval. A
 * constant reference's single point takes the whole of a bucket that holds it: a bucket that
 * straddles a point cannot say on which side its values lie, and repeating one value is what a
 * constant feature does. */
static void sketch_to_slots(const struct mw_profile_feature *f, const struct feature_fields *ff,
                            double *slot_w)
{
    for (size_t i = 0; i < ff->n_buckets; i++) {
        double lo, hi, value, w = ff->buckets[i].weight;
        mw_sketch_bucket_bounds(ff->buckets[i].key, &lo, &hi, &value);
        if (ff->buckets[i].key.sign == 0 || (f->min == f->max && lo <= f->min && f->min <= hi)) {
            double at = ff->buckets[i].key.sign == 0 ? 0 : f->min;
            slot_w[mw_grid_slot(f->cuts, f->n_cuts, f->min, f->max, at)] += w;
            continue;
        }
        size_t s_lo = mw_grid_slot(f->cuts, f->n_cuts, f->min, f->max, lo);
        size_t s_hi = mw_grid_slot(f->cuts, f->n_cuts, f->min, f->max, hi);
        for (size_t s = s_lo; s <= s_hi; s++) {
            double start, end;
            slot_interval(f, s, &start, &end);
            double part = s_lo == s_hi ? 1.0 : (fmin(hi, end) - fmax(lo, start)) / (hi - lo);
            if (part > 0)
                slot_w[s] += w * part;
        }
    }
}

static int compare_bucket_value(const void *a, const void *b)
{
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return x < y ? -1 : x > y;
}

/* Wasserstein from the sketch: the window's mass at each bucket's representative value (within
 * MW_SKETCH_ALPHA of its values), the reference's at its slot means. */
static int sketch_wasserstein(const struct mw_profile_feature *f, const struct feature_fields *ff,
                              double *out)
{
    double *cur = mw_calloc(2 * (ff->n_buckets ? ff->n_buckets : 1), sizeof *cur);
    if (!cur)
        return MW_ENOMEM; /* cur: (value, weight) pairs */
    for (size_t i = 0; i < ff->n_buckets; i++) {
        double lo, hi;
        mw_sketch_bucket_bounds(ff->buckets[i].key, &lo, &hi, &cur[2 * i]);
        cur[2 * i + 1] = ff->buckets[i].weight;
    }
    qsort(cur, ff->n_buckets, 2 * sizeof *cur, compare_bucket_value);
    double *cur_x = mw_calloc(2 * (ff->n_buckets ? ff->n_buckets : 1), sizeof *cur_x);
    if (!cur_x) {
        mw_free(cur);
        return MW_ENOMEM;
    }
    for (size_t i = 0; i < ff->n_buckets; i++) {
        cur_x[i] = cur[2 * i];
        cur_x[ff->n_buckets + i] = cur[2 * i + 1];
    }
    *out = mw_drift_wasserstein_points(f->ref_x, f->ref_w, f->n_ref_points, cur_x,
                                       cur_x + ff->n_buckets, ff->n_buckets);
    mw_free(cur_x);
    mw_free(cur);
    return 0;
}

/* A numeric feature read through its sketch, for a profile that did not bin the window. The
 * sketch keeps weights only: the values observed are its weight over the window's mean record
 * weight (records / wrecords), exact when every record of the window has one weight (one
 * sampling rate), as the tests' sample size needs. */
static int sketch_drift(struct mw_drift_feature_signal *sig, const struct mw_profile_feature *f,
                        const struct feature_fields *ff, double records_per_weight)
{
    double *slot_w = mw_calloc(f->n_cuts + 3, sizeof *slot_w);
    if (!slot_w)
        return MW_ENOMEM;
    sketch_to_slots(f, ff, slot_w);
    double n = 0;
    for (size_t s = 0; s < f->n_cuts + 3; s++)
        n += slot_w[s];
    sig->count = n;
    sig->observed = round(n * records_per_weight);
    int rc = slot_statistics(sig, f, slot_w, sig->observed);
    mw_free(slot_w);
    rc = rc ? rc : sketch_wasserstein(f, ff, &sig->wasserstein);
    sig->wasserstein_normed = f->std > 0 ? sig->wasserstein / f->std : NAN;
    return rc;
}

static int categorical_drift(struct mw_drift_feature_signal *sig,
                             const struct mw_profile_feature *f, const struct feature_fields *ff)
{
    size_t n_slots = f->n_categories + 1; /* the last: other / unseen */
    double *ref = mw_calloc(2 * n_slots, sizeof *ref);
    if (!ref)
        return MW_ENOMEM;
    double *observed = ref + n_slots, n = ff->unseen;
    for (size_t i = 0; i < f->n_categories; i++) {
        ref[i] = f->category_p[i];
        n += ff->weight[i];
    }
    ref[f->n_categories] = f->other_p;
    sig->psi = mw_drift_psi(ref, ff->weight, n_slots, MW_DRIFT_PSI_EPSILON);
    sig->js_distance = mw_drift_js_distance(ref, ff->weight, n_slots);
    /* The test counts values observed: weighted shares times the observed number. */
    for (size_t i = 0; i < n_slots; i++)
        observed[i] = n > 0 ? ff->weight[i] / n * ff->obs : 0;
    mw_drift_chi2(ref, observed, n_slots, &sig->chi2_statistic, &sig->chi2_p_value);
    sig->unseen_share = share(ff->unseen, n);
    mw_free(ref);
    return 0;
}

/* ---- verdicts ----------------------------------------------------------------------------- */

const char *mw_drift_verdict_name(enum mw_drift_verdict v)
{
    switch (v) {
    case MW_DRIFT_VERDICT_NONE:
        return "none";
    case MW_DRIFT_VERDICT_POSSIBLE:
        return "possible";
    case MW_DRIFT_VERDICT_DRIFT:
        return "drift";
    case MW_DRIFT_VERDICT_INSUFFICIENT_DATA:
        return "insufficient_data";
    case MW_DRIFT_VERDICT_UNKNOWN:
        break;
    }
    return "unknown";
}

/* none / possible / drift under thresholds `t`: PSI (possible, drift), Jensen-Shannon (drift),
 * normed Wasserstein (drift), and a significant KS or chi-squared test (possible) at
 * t.p_value / p_divisor (Bonferroni for a model's verdict). NaN compares false: a statistic
 * without a value flags nothing. */
static enum mw_drift_verdict judge(const struct mw_drift_feature_signal *s,
                                   const struct mw_drift_thresholds *t, double p_divisor)
{
    double p = t->p_value / p_divisor;
    if (s->psi >= t->psi_drift || s->js_distance >= t->js ||
        s->wasserstein_normed >= t->wasserstein)
        return MW_DRIFT_VERDICT_DRIFT;
    if (s->psi >= t->psi_possible || s->ks_p_value < p || s->chi2_p_value < p)
        return MW_DRIFT_VERDICT_POSSIBLE;
    return MW_DRIFT_VERDICT_NONE;
}

/* The model's verdict: the worst of its judged features, each test at p / (features judged);
 * insufficient_data when no feature had enough values, unknown when none could be read. */
static enum mw_drift_verdict model_verdict(const struct mw_drift_signals *s,
                                           const struct mw_aggregator_config *cfg)
{
    size_t judged = 0, insufficient = 0;
    for (size_t i = 0; i < s->n_features; i++) {
        enum mw_drift_verdict v = s->features[i].verdict;
        judged += v <= MW_DRIFT_VERDICT_DRIFT;
        insufficient += v == MW_DRIFT_VERDICT_INSUFFICIENT_DATA;
    }
    if (!judged)
        return insufficient ? MW_DRIFT_VERDICT_INSUFFICIENT_DATA : MW_DRIFT_VERDICT_UNKNOWN;
    enum mw_drift_verdict worst = MW_DRIFT_VERDICT_NONE;
    for (size_t i = 0; i < s->n_features; i++) {
        const struct mw_drift_feature_signal *f = &s->features[i];
        if (f->verdict > MW_DRIFT_VERDICT_DRIFT)
            continue;
        struct mw_drift_thresholds t = mw_drift_thresholds_for(cfg, f->feature);
        enum mw_drift_verdict v = judge(f, &t, (double)judged);
        if (v > worst)
            worst = v;
    }
    return worst;
}

/* ---- the window's signals ------------------------------------------------------------------- */

static void signal_init(struct mw_drift_feature_signal *sig, const struct mw_profile_feature *f)
{
    memset(sig, 0, sizeof *sig);
    sig->feature = f->name;
    sig->numeric = f->numeric;
    double *nan_fields[] = {&sig->missing_rate,
                            &sig->type_violation_rate,
                            &sig->psi,
                            &sig->js_distance,
                            &sig->ks,
                            &sig->ks_p_value,
                            &sig->wasserstein,
                            &sig->wasserstein_normed,
                            &sig->out_of_range_rate,
                            &sig->below_range_rate,
                            &sig->above_range_rate,
                            &sig->chi2_statistic,
                            &sig->chi2_p_value,
                            &sig->unseen_share};
    for (size_t i = 0; i < sizeof nan_fields / sizeof *nan_fields; i++)
        *nan_fields[i] = NAN;
}

static int feature_signal(struct mw_drift_feature_signal *sig, const struct mw_profile_feature *f,
                          const struct feature_fields *ff, bool readable, double records_per_weight,
                          const struct mw_aggregator_config *cfg)
{
    struct mw_drift_thresholds t = mw_drift_thresholds_for(cfg, f->name);
    signal_init(sig, f);
    sig->min_values = t.min_values;
    if (!readable && f->numeric && ff->n_buckets > 0) {
        sig->basis = MW_DRIFT_BASIS_SKETCH;
        int rc = sketch_drift(sig, f, ff, records_per_weight);
        sig->verdict = sig->observed < (double)t.min_values ? MW_DRIFT_VERDICT_INSUFFICIENT_DATA
                                                            : judge(sig, &t, 1.0);
        return rc;
    }
    if (!readable) {
        sig->verdict = MW_DRIFT_VERDICT_UNKNOWN;
        return 0;
    }
    sig->basis = MW_DRIFT_BASIS_PROFILE_GRID;
    sig->count = ff->n;
    sig->observed = ff->obs;
    double seen = ff->n + ff->miss + ff->type;
    sig->missing_rate = share(ff->miss, seen);
    sig->type_violation_rate = share(ff->type, seen);
    int rc = f->numeric ? numeric_drift(sig, f, ff) : categorical_drift(sig, f, ff);
    sig->verdict =
        ff->obs < (double)t.min_values ? MW_DRIFT_VERDICT_INSUFFICIENT_DATA : judge(sig, &t, 1.0);
    return rc;
}

int mw_drift_signals_compute(const struct mw_window *w, const struct mw_profile *profile,
                             const struct mw_aggregator_config *cfg, struct mw_drift_signals *out)
{
    struct window_drift wd;
    memset(out, 0, sizeof *out);
    int rc = window_drift_init(&wd, profile);
    out->features = mw_calloc(profile->n_features ? profile->n_features : 1, sizeof *out->features);
    if (rc || !out->features) {
        rc = MW_ENOMEM;
        goto out;
    }
    read_window(&wd, &w->fields, profile);
    /* Binned by another profile (or partly): those counts are on another grid. A window with
     * records but none binned was applied before any profile existed. */
    bool readable =
        wd.records_binned == wd.records_this_profile && (wd.records_binned > 0 || w->records == 0);
    double records_per_weight =
        w->weighted_records > 0 ? (double)w->records / w->weighted_records : 0;
    for (size_t i = 0; !rc && i < profile->n_features; i++) {
        rc = feature_signal(&out->features[i], &profile->features[i], &wd.features[i], readable,
                            records_per_weight, cfg);
        out->n_features++;
    }
    out->verdict = model_verdict(out, cfg);
out:
    window_drift_free(&wd, profile);
    if (rc)
        mw_drift_signals_free(out);
    return rc;
}

void mw_drift_signals_free(struct mw_drift_signals *s)
{
    if (!s)
        return;
    mw_free(s->features);
    memset(s, 0, sizeof *s);
}
