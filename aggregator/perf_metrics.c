/*
 * perf_metrics.c — mergeable accumulators for model performance: binary and multi-class
 * classification, regression, label coverage and delay.
 *
 * Everything is counters added pair by pair; metrics are derived only at read time, so that
 * accumulators merged from any number of replicas give the metrics of the union exactly
 * (counts) or to a few ulps (compensated sums). See perf_metrics.h for the Redis fields.
 */
#include "perf_metrics.h"

#include "schema.h"

#include "alloc.h"
#include "error.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers -------------------------------------------------------------------- */

static void sum_add(struct mw_perf_sum *s, double x)
{
    double t = s->hi + x;
    /* Neumaier: recover the low-order bits lost by whichever operand is smaller. */
    if (fabs(s->hi) >= fabs(x))
        s->lo += (s->hi - t) + x;
    else
        s->lo += (x - t) + s->hi;
    s->hi = t;
}

static void sum_merge(struct mw_perf_sum *s, const struct mw_perf_sum *other)
{
    struct mw_perf_sum copy = *other; /* other may be s */
    sum_add(s, copy.hi);
    sum_add(s, copy.lo);
}

double mw_perf_sum_value(const struct mw_perf_sum *s)
{
    return s->hi + s->lo;
}

static double ratio_or_zero(uint64_t num, uint64_t den)
{
    return den ? (double)num / (double)den : 0.0;
}

/* Precision, recall, F1 from counts with scikit-learn's zero_division=0. F1 as
 * 2tp / (2tp + fp + fn), which equals 2PR / (P + R) and needs one rounding only. */
static struct mw_perf_prf prf_from_counts(uint64_t tp, uint64_t fp, uint64_t fn)
{
    struct mw_perf_prf m;
    m.precision = ratio_or_zero(tp, tp + fp);
    m.recall = ratio_or_zero(tp, tp + fn);
    m.f1 = ratio_or_zero(2 * tp, 2 * tp + fp + fn);
    return m;
}

static struct mw_perf_prf prf_nan(void)
{
    struct mw_perf_prf m = {NAN, NAN, NAN};
    return m;
}

static int emit_count(mw_perf_field_fn fn, void *ctx, const char *name, uint64_t value)
{
    if (value == 0)
        return 0;
    struct mw_perf_field f = {.name = name, .is_float = false, .count = (int64_t)value};
    return fn(ctx, &f);
}

static int emit_sum(mw_perf_field_fn fn, void *ctx, const char *name, const struct mw_perf_sum *s)
{
    double value = mw_perf_sum_value(s);
    if (value == 0.0)
        return 0;
    struct mw_perf_field f = {.name = name, .is_float = true, .sum = value};
    return fn(ctx, &f);
}

/* A stored counter: a non-negative decimal integer (HINCRBY's text). */
static int parse_count(const char *value, uint64_t *out)
{
    if (!value || !*value)
        return MW_EPARSE;
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || *end || v < 0)
        return MW_EPARSE;
    *out = (uint64_t)v;
    return 0;
}

/* A stored sum: finite decimal floating point (HINCRBYFLOAT's text). */
static int parse_sum(const char *value, double *out)
{
    if (!value || !*value)
        return MW_EPARSE;
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno == ERANGE && fabs(v) > 1.0) /* overflow; underflow to ~0 is harmless */
        return MW_EPARSE;
    if (*end || !isfinite(v))
        return MW_EPARSE;
    *out = v;
    return 0;
}

/* A bin or bucket index: decimal digits only, < limit. */
static int parse_index(const char *text, uint32_t limit, uint32_t *out)
{
    if (*text < '0' || *text > '9')
        return MW_EPARSE;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v >= limit)
        return MW_EPARSE;
    *out = (uint32_t)v;
    return 0;
}

/* If `name` starts with `prefix`, the rest of it; else NULL. */
static const char *after_prefix(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(name, prefix, n) == 0 ? name + n : NULL;
}

/* Scalar fields of an accumulator, located by offset. */
struct scalar_field {
    const char *name;
    size_t offset;
    bool is_sum; /* struct mw_perf_sum, else uint64_t */
};

static int emit_scalars(const void *acc, const struct scalar_field *table, size_t n,
                        mw_perf_field_fn fn, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = (const char *)acc + table[i].offset;
        int rc = table[i].is_sum ? emit_sum(fn, ctx, table[i].name, (const void *)p)
                                 : emit_count(fn, ctx, table[i].name, *(const uint64_t *)p);
        if (rc)
            return rc;
    }
    return 0;
}

/* Add `value` to the scalar field called `name`: 0, MW_EPARSE, or MW_ENOTFOUND (no such
 * scalar field). */
static int add_scalar(void *acc, const struct scalar_field *table, size_t n, const char *name,
                      const char *value)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, table[i].name) != 0)
            continue;
        char *p = (char *)acc + table[i].offset;
        if (table[i].is_sum) {
            double v;
            int rc = parse_sum(value, &v);
            if (rc)
                return rc;
            sum_add((struct mw_perf_sum *)(void *)p, v);
        } else {
            uint64_t v;
            int rc = parse_count(value, &v);
            if (rc)
                return rc;
            *(uint64_t *)(void *)p += v;
        }
        return 0;
    }
    return MW_ENOTFOUND;
}

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- binary classification ------------------------------------------------------------- */

static const struct scalar_field binary_scalars[] = {
    {"pb:tp", offsetof(struct mw_perf_binary, tp), false},
    {"pb:fp", offsetof(struct mw_perf_binary, fp), false},
    {"pb:tn", offsetof(struct mw_perf_binary, tn), false},
    {"pb:fn", offsetof(struct mw_perf_binary, fn), false},
    {"pb:ll", offsetof(struct mw_perf_binary, log_loss_sum), true},
};

uint32_t mw_perf_score_bin(double score, uint32_t n_bins)
{
    if (!(score > 0.0))
        return 0;
    if (score >= 1.0)
        return n_bins - 1;
    double b = (double)n_bins;
    double k = floor(score * b);
    uint32_t bin = k >= b - 1.0 ? n_bins - 1 : (uint32_t)k;
    /* score * n_bins is rounded, so floor() may be one off the largest k with fl(k/b) <=
     * score; the edges are what define the bins. */
    while (bin + 1 < n_bins && (double)(bin + 1) / b <= score)
        bin++;
    while (bin > 0 && (double)bin / b > score)
        bin--;
    return bin;
}

int mw_perf_binary_create(double threshold, uint32_t n_bins, struct mw_perf_binary **out)
{
    int rc = MW_EINVAL;
    *out = NULL;
    if (!(threshold >= 0.0 && threshold <= 1.0) || n_bins < 1 || n_bins > MW_PERF_AUC_BINS_MAX)
        return rc;
    rc = MW_ENOMEM;
    struct mw_perf_binary *acc = mw_calloc(1, sizeof *acc);
    if (!acc)
        goto fail_acc;
    acc->pos_bins = mw_calloc(n_bins, sizeof *acc->pos_bins);
    if (!acc->pos_bins)
        goto fail_pos;
    acc->neg_bins = mw_calloc(n_bins, sizeof *acc->neg_bins);
    if (!acc->neg_bins)
        goto fail_neg;
    acc->threshold = threshold;
    acc->n_bins = n_bins;
    *out = acc;
    return 0;

fail_neg:
    mw_free(acc->pos_bins);
fail_pos:
    mw_free(acc);
fail_acc:
    return rc;
}

void mw_perf_binary_destroy(struct mw_perf_binary *acc)
{
    if (!acc)
        return;
    mw_free(acc->pos_bins);
    mw_free(acc->neg_bins);
    mw_free(acc);
}

void mw_perf_binary_reset(struct mw_perf_binary *acc)
{
    acc->tp = acc->fp = acc->tn = acc->fn = 0;
    acc->log_loss_sum = (struct mw_perf_sum){0.0, 0.0};
    memset(acc->pos_bins, 0, acc->n_bins * sizeof *acc->pos_bins);
    memset(acc->neg_bins, 0, acc->n_bins * sizeof *acc->neg_bins);
}

int mw_perf_binary_add(struct mw_perf_binary *acc, double score, int label)
{
    if (!(score >= 0.0 && score <= 1.0) || (label != 0 && label != 1))
        return MW_EINVAL;
    bool predicted = score >= acc->threshold;
    if (label) {
        if (predicted)
            acc->tp++;
        else
            acc->fn++;
    } else {
        if (predicted)
            acc->fp++;
        else
            acc->tn++;
    }
    double p = fmin(fmax(score, MW_PERF_LOG_LOSS_EPS), 1.0 - MW_PERF_LOG_LOSS_EPS);
    sum_add(&acc->log_loss_sum, label ? -log(p) : -log1p(-p));
    uint32_t bin = mw_perf_score_bin(score, acc->n_bins);
    if (label)
        acc->pos_bins[bin]++;
    else
        acc->neg_bins[bin]++;
    return 0;
}

int mw_perf_binary_merge(struct mw_perf_binary *acc, const struct mw_perf_binary *other)
{
    if (acc->threshold != other->threshold || acc->n_bins != other->n_bins)
        return MW_EINVAL;
    acc->tp += other->tp;
    acc->fp += other->fp;
    acc->tn += other->tn;
    acc->fn += other->fn;
    sum_merge(&acc->log_loss_sum, &other->log_loss_sum);
    for (uint32_t k = 0; k < acc->n_bins; k++) {
        acc->pos_bins[k] += other->pos_bins[k];
        acc->neg_bins[k] += other->neg_bins[k];
    }
    return 0;
}

void mw_perf_binary_compute(const struct mw_perf_binary *acc, struct mw_perf_binary_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->n_pos = acc->tp + acc->fn;
    out->n_neg = acc->fp + acc->tn;
    out->n = out->n_pos + out->n_neg;
    if (out->n == 0) {
        out->accuracy = out->precision = out->recall = out->f1 = NAN;
        out->log_loss = out->roc_auc = out->roc_auc_tie_share = NAN;
        return;
    }
    out->accuracy = (double)(acc->tp + acc->tn) / (double)out->n;
    struct mw_perf_prf m = prf_from_counts(acc->tp, acc->fp, acc->fn);
    out->precision = m.precision;
    out->recall = m.recall;
    out->f1 = m.f1;
    out->log_loss = mw_perf_sum_value(&acc->log_loss_sum) / (double)out->n;

    /* Mann-Whitney over bins: each positive in bin k beats the negatives below k and ties
     * with those in k. Doubled to stay in integers: every term and the total are exact in
     * doubles while 2 * P * N < 2^53. */
    double twice_wins = 0.0, ties = 0.0, below = 0.0, n_pos = 0.0, n_neg = 0.0;
    for (uint32_t k = 0; k < acc->n_bins; k++) {
        double pos = (double)acc->pos_bins[k], neg = (double)acc->neg_bins[k];
        twice_wins += pos * (2.0 * below + neg);
        ties += pos * neg;
        below += neg;
        n_pos += pos;
        n_neg += neg;
    }
    if (n_pos == 0.0 || n_neg == 0.0) {
        out->roc_auc = out->roc_auc_tie_share = NAN;
        return;
    }
    out->roc_auc = twice_wins / (2.0 * n_pos * n_neg);
    out->roc_auc_tie_share = ties / (n_pos * n_neg);
}

int mw_perf_binary_fields(const struct mw_perf_binary *acc, mw_perf_field_fn fn, void *ctx)
{
    int rc = emit_scalars(acc, binary_scalars, N_ELEMS(binary_scalars), fn, ctx);
    char name[MW_PERF_FIELD_NAME_MAX];
    for (uint32_t k = 0; k < acc->n_bins && !rc; k++) {
        snprintf(name, sizeof name, "pb:pos:%" PRIu32, k);
        rc = emit_count(fn, ctx, name, acc->pos_bins[k]);
        if (rc)
            break;
        snprintf(name, sizeof name, "pb:neg:%" PRIu32, k);
        rc = emit_count(fn, ctx, name, acc->neg_bins[k]);
    }
    return rc;
}

int mw_perf_binary_add_field(struct mw_perf_binary *acc, const char *name, const char *value)
{
    int rc = add_scalar(acc, binary_scalars, N_ELEMS(binary_scalars), name, value);
    if (rc != MW_ENOTFOUND)
        return rc;
    uint64_t *bins = NULL;
    const char *rest;
    if ((rest = after_prefix(name, "pb:pos:")))
        bins = acc->pos_bins;
    else if ((rest = after_prefix(name, "pb:neg:")))
        bins = acc->neg_bins;
    else
        return after_prefix(name, "pb:") ? MW_EPARSE : MW_ENOTFOUND;
    uint32_t k;
    uint64_t v;
    if ((rc = parse_index(rest, acc->n_bins, &k)) || (rc = parse_count(value, &v)))
        return rc;
    bins[k] += v;
    return 0;
}

/* ---- multi-class classification -------------------------------------------------------- */

#define OTHER_SLOT MW_PERF_MAX_CLASSES

static int check_class_name(const char *name)
{
    if (!name || !*name)
        return MW_EINVAL;
    if (strnlen(name, MW_PERF_CLASS_NAME_MAX) >= MW_PERF_CLASS_NAME_MAX)
        return MW_ETOOBIG;
    return 0;
}

/* The slot of a (valid) class name, taking a free slot for a new class or OTHER_SLOT when
 * none is left. A linear scan of at most 64 short names: cheaper than hashing at this size,
 * and it allocates nothing. */
static uint32_t class_slot(struct mw_perf_multiclass *acc, const char *name)
{
    for (uint32_t i = 0; i < acc->n_classes; i++)
        if (strcmp(acc->names[i], name) == 0)
            return i;
    if (acc->n_classes == MW_PERF_MAX_CLASSES)
        return OTHER_SLOT;
    uint32_t slot = acc->n_classes++;
    size_t len = strlen(name); /* < MW_PERF_CLASS_NAME_MAX, checked by the caller */
    memcpy(acc->names[slot], name, len + 1);
    return slot;
}

void mw_perf_multiclass_reset(struct mw_perf_multiclass *acc)
{
    memset(acc, 0, sizeof *acc);
}

int mw_perf_multiclass_add(struct mw_perf_multiclass *acc, const char *predicted,
                           const char *actual)
{
    int rc = check_class_name(predicted);
    if (rc || (rc = check_class_name(actual)))
        return rc;
    acc->n++;
    if (strcmp(predicted, actual) == 0) {
        acc->n_correct++;
        acc->counts[class_slot(acc, actual)].tp++;
    } else {
        /* Two different overflow classes both land in "other": an fp and an fn, no tp. */
        acc->counts[class_slot(acc, predicted)].fp++;
        acc->counts[class_slot(acc, actual)].fn++;
    }
    return 0;
}

static void add_counts(struct mw_perf_class_counts *to, const struct mw_perf_class_counts *from)
{
    to->tp += from->tp;
    to->fp += from->fp;
    to->fn += from->fn;
}

void mw_perf_multiclass_merge(struct mw_perf_multiclass *acc,
                              const struct mw_perf_multiclass *other)
{
    /* When other == acc every name is found in its own slot, so nothing moves. */
    uint32_t n_other_classes = other->n_classes;
    struct mw_perf_class_counts other_slot = other->counts[OTHER_SLOT];
    for (uint32_t i = 0; i < n_other_classes; i++)
        add_counts(&acc->counts[class_slot(acc, other->names[i])], &other->counts[i]);
    add_counts(&acc->counts[OTHER_SLOT], &other_slot);
    acc->n += other->n;
    acc->n_correct += other->n_correct;
}

static bool other_used(const struct mw_perf_multiclass *acc)
{
    const struct mw_perf_class_counts *c = &acc->counts[OTHER_SLOT];
    return c->tp || c->fp || c->fn;
}

struct mw_perf_prf mw_perf_multiclass_class(const struct mw_perf_multiclass *acc, uint32_t slot,
                                            uint64_t *support)
{
    const struct mw_perf_class_counts *c = &acc->counts[slot];
    if (support)
        *support = c->tp + c->fn;
    if (acc->n == 0)
        return prf_nan();
    return prf_from_counts(c->tp, c->fp, c->fn);
}

void mw_perf_multiclass_compute(const struct mw_perf_multiclass *acc,
                                struct mw_perf_multiclass_metrics *out)
{
    memset(out, 0, sizeof *out);
    out->n = acc->n;
    out->overflowed = other_used(acc);
    out->n_classes = acc->n_classes + (out->overflowed ? 1 : 0);
    if (acc->n == 0) {
        out->accuracy = NAN;
        out->macro = out->weighted = prf_nan();
        return;
    }
    out->accuracy = (double)acc->n_correct / (double)acc->n;
    struct mw_perf_prf sum = {0, 0, 0}, wsum = {0, 0, 0};
    double total_support = 0.0;
    for (uint32_t i = 0; i <= MW_PERF_MAX_CLASSES; i++) {
        if (i >= acc->n_classes && !(i == OTHER_SLOT && out->overflowed))
            continue;
        uint64_t support;
        struct mw_perf_prf m = mw_perf_multiclass_class(acc, i, &support);
        double w = (double)support;
        sum.precision += m.precision;
        sum.recall += m.recall;
        sum.f1 += m.f1;
        wsum.precision += w * m.precision;
        wsum.recall += w * m.recall;
        wsum.f1 += w * m.f1;
        total_support += w;
    }
    double k = (double)out->n_classes;
    out->macro = (struct mw_perf_prf){sum.precision / k, sum.recall / k, sum.f1 / k};
    /* Every pair is an actual of some class, so total_support == n > 0. */
    out->weighted = (struct mw_perf_prf){wsum.precision / total_support,
                                         wsum.recall / total_support, wsum.f1 / total_support};
}

static int emit_class(mw_perf_field_fn fn, void *ctx, const char *tag, const char *class_name,
                      const struct mw_perf_class_counts *c)
{
    static const char *const kinds[] = {"tp", "fp", "fn"};
    const uint64_t values[] = {c->tp, c->fp, c->fn};
    char name[MW_PERF_FIELD_NAME_MAX];
    for (size_t j = 0; j < 3; j++) {
        if (class_name)
            snprintf(name, sizeof name, "pm:%s:%s", kinds[j], class_name);
        else
            snprintf(name, sizeof name, "pm:%s:%s", tag, kinds[j]);
        int rc = emit_count(fn, ctx, name, values[j]);
        if (rc)
            return rc;
    }
    return 0;
}

static const struct scalar_field multiclass_scalars[] = {
    {"pm:n", offsetof(struct mw_perf_multiclass, n), false},
    {"pm:correct", offsetof(struct mw_perf_multiclass, n_correct), false},
};

int mw_perf_multiclass_fields(const struct mw_perf_multiclass *acc, mw_perf_field_fn fn, void *ctx)
{
    int rc = emit_scalars(acc, multiclass_scalars, N_ELEMS(multiclass_scalars), fn, ctx);
    for (uint32_t i = 0; i < acc->n_classes && !rc; i++)
        rc = emit_class(fn, ctx, NULL, acc->names[i], &acc->counts[i]);
    if (!rc)
        rc = emit_class(fn, ctx, "other", NULL, &acc->counts[OTHER_SLOT]);
    return rc;
}

int mw_perf_multiclass_add_field(struct mw_perf_multiclass *acc, const char *name,
                                 const char *value)
{
    int rc = add_scalar(acc, multiclass_scalars, N_ELEMS(multiclass_scalars), name, value);
    if (rc != MW_ENOTFOUND)
        return rc;
    if (!after_prefix(name, "pm:"))
        return MW_ENOTFOUND;
    static const char *const kinds[] = {"tp", "fp", "fn"};
    const char *other_kind = after_prefix(name, "pm:other:");
    const char *class_name = NULL;
    size_t kind = 3;
    for (size_t j = 0; j < 3 && kind == 3; j++) {
        if (other_kind && strcmp(other_kind, kinds[j]) == 0) {
            kind = j;
        } else if (strncmp(name + 3, kinds[j], 2) == 0 && name[5] == ':') {
            kind = j;
            class_name = name + 6;
        }
    }
    if (kind == 3 || (class_name && check_class_name(class_name)))
        return MW_EPARSE;
    uint64_t v;
    if ((rc = parse_count(value, &v)))
        return rc;
    if (v == 0) /* keep the invariant that a named slot has a nonzero count */
        return 0;
    struct mw_perf_class_counts *c =
        &acc->counts[class_name ? class_slot(acc, class_name) : OTHER_SLOT];
    uint64_t *counter = kind == 0 ? &c->tp : kind == 1 ? &c->fp : &c->fn;
    *counter += v;
    return 0;
}

/* ---- regression ------------------------------------------------------------------------ */

static const struct scalar_field regression_scalars[] = {
    {"pr:n", offsetof(struct mw_perf_regression, n), false},
    {"pr:err", offsetof(struct mw_perf_regression, err_sum), true},
    {"pr:abs", offsetof(struct mw_perf_regression, abs_err_sum), true},
    {"pr:sq", offsetof(struct mw_perf_regression, sq_err_sum), true},
    {"pr:ape_n", offsetof(struct mw_perf_regression, n_ape), false},
    {"pr:ape", offsetof(struct mw_perf_regression, ape_sum), true},
};

void mw_perf_regression_reset(struct mw_perf_regression *acc)
{
    memset(acc, 0, sizeof *acc);
}

int mw_perf_regression_add(struct mw_perf_regression *acc, double predicted, double actual)
{
    if (!isfinite(predicted) || !isfinite(actual))
        return MW_EINVAL;
    double e = predicted - actual;
    double sq = e * e;
    double ape = actual != 0.0 ? fabs(e) / fabs(actual) : 0.0;
    if (!isfinite(e) || !isfinite(sq) || !isfinite(ape))
        return MW_EINVAL;
    acc->n++;
    sum_add(&acc->err_sum, e);
    sum_add(&acc->abs_err_sum, fabs(e));
    sum_add(&acc->sq_err_sum, sq);
    if (actual != 0.0) {
        acc->n_ape++;
        sum_add(&acc->ape_sum, ape);
    }
    return 0;
}

void mw_perf_regression_merge(struct mw_perf_regression *acc,
                              const struct mw_perf_regression *other)
{
    acc->n += other->n;
    acc->n_ape += other->n_ape;
    sum_merge(&acc->err_sum, &other->err_sum);
    sum_merge(&acc->abs_err_sum, &other->abs_err_sum);
    sum_merge(&acc->sq_err_sum, &other->sq_err_sum);
    sum_merge(&acc->ape_sum, &other->ape_sum);
}

void mw_perf_regression_compute(const struct mw_perf_regression *acc,
                                struct mw_perf_regression_metrics *out)
{
    out->n = acc->n;
    out->n_ape = acc->n_ape;
    double n = (double)acc->n;
    out->mean_error = acc->n ? mw_perf_sum_value(&acc->err_sum) / n : NAN;
    out->mae = acc->n ? mw_perf_sum_value(&acc->abs_err_sum) / n : NAN;
    out->rmse = acc->n ? sqrt(mw_perf_sum_value(&acc->sq_err_sum) / n) : NAN;
    out->mape = acc->n_ape ? mw_perf_sum_value(&acc->ape_sum) / (double)acc->n_ape : NAN;
}

int mw_perf_regression_fields(const struct mw_perf_regression *acc, mw_perf_field_fn fn, void *ctx)
{
    return emit_scalars(acc, regression_scalars, N_ELEMS(regression_scalars), fn, ctx);
}

int mw_perf_regression_add_field(struct mw_perf_regression *acc, const char *name,
                                 const char *value)
{
    int rc = add_scalar(acc, regression_scalars, N_ELEMS(regression_scalars), name, value);
    if (rc == MW_ENOTFOUND && after_prefix(name, "pr:"))
        return MW_EPARSE;
    return rc;
}

/* ---- label coverage and delay ---------------------------------------------------------- */

static const struct scalar_field coverage_scalars[] = {
    {MW_FIELD_PERF_PREDICTIONS, offsetof(struct mw_perf_coverage, n_predictions), false},
    {"pc:lab", offsetof(struct mw_perf_coverage, n_labelled), false},
    {"pc:skew", offsetof(struct mw_perf_coverage, n_skewed), false},
    {"pc:delay_ms", offsetof(struct mw_perf_coverage, delay_sum_ms), false},
};

void mw_perf_coverage_reset(struct mw_perf_coverage *acc)
{
    memset(acc, 0, sizeof *acc);
}

void mw_perf_coverage_add_predictions(struct mw_perf_coverage *acc, uint64_t n_predictions)
{
    acc->n_predictions += n_predictions;
}

void mw_perf_coverage_add_label(struct mw_perf_coverage *acc, int64_t prediction_ms,
                                int64_t label_ms)
{
    uint64_t delay_ms = 0;
    if (label_ms < prediction_ms)
        acc->n_skewed++; /* clocks disagree: a negative delay would only mislead */
    else
        delay_ms = (uint64_t)label_ms - (uint64_t)prediction_ms; /* no signed overflow */
    acc->n_labelled++;
    acc->delay_sum_ms += delay_ms;
    acc->delay_hist.counts[mw_latency_bucket(delay_ms)]++;
    acc->delay_hist.total++;
}

void mw_perf_coverage_merge(struct mw_perf_coverage *acc, const struct mw_perf_coverage *other)
{
    acc->n_predictions += other->n_predictions;
    acc->n_labelled += other->n_labelled;
    acc->n_skewed += other->n_skewed;
    acc->delay_sum_ms += other->delay_sum_ms;
    for (uint32_t k = 0; k < MW_LATENCY_BUCKETS; k++)
        acc->delay_hist.counts[k] += other->delay_hist.counts[k];
    acc->delay_hist.total += other->delay_hist.total;
}

void mw_perf_coverage_compute(const struct mw_perf_coverage *acc,
                              struct mw_perf_coverage_metrics *out)
{
    out->n_predictions = acc->n_predictions;
    out->n_labelled = acc->n_labelled;
    out->n_skewed = acc->n_skewed;
    out->coverage = acc->n_predictions ? (double)acc->n_labelled / (double)acc->n_predictions : NAN;
    out->mean_delay_ms =
        acc->n_labelled ? (double)acc->delay_sum_ms / (double)acc->n_labelled : NAN;
    /* mw_latency_hist_quantile is NaN for an empty histogram. */
    out->p50_delay_ms = mw_latency_hist_quantile(&acc->delay_hist, 0.50);
    out->p90_delay_ms = mw_latency_hist_quantile(&acc->delay_hist, 0.90);
    out->p99_delay_ms = mw_latency_hist_quantile(&acc->delay_hist, 0.99);
}

int mw_perf_coverage_fields(const struct mw_perf_coverage *acc, mw_perf_field_fn fn, void *ctx)
{
    int rc = emit_scalars(acc, coverage_scalars, N_ELEMS(coverage_scalars), fn, ctx);
    char name[MW_PERF_FIELD_NAME_MAX];
    for (uint32_t k = 0; k < MW_LATENCY_BUCKETS && !rc; k++) {
        snprintf(name, sizeof name, "pc:dl:%" PRIu32, k);
        rc = emit_count(fn, ctx, name, acc->delay_hist.counts[k]);
    }
    return rc;
}

int mw_perf_coverage_add_field(struct mw_perf_coverage *acc, const char *name, const char *value)
{
    int rc = add_scalar(acc, coverage_scalars, N_ELEMS(coverage_scalars), name, value);
    if (rc != MW_ENOTFOUND)
        return rc;
    const char *rest = after_prefix(name, "pc:dl:");
    if (!rest)
        return after_prefix(name, "pc:") ? MW_EPARSE : MW_ENOTFOUND;
    uint32_t k;
    uint64_t v;
    if ((rc = parse_index(rest, MW_LATENCY_BUCKETS, &k)) || (rc = parse_count(value, &v)))
        return rc;
    acc->delay_hist.counts[k] += v;
    acc->delay_hist.total += v;
    return 0;
}
