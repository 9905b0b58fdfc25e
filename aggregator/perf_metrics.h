/*
 * perf_metrics.h — model-performance metrics from mergeable accumulators (DESIGN step 12).
 *
 * Once the aggregator has joined a label with its prediction (by prediction id), the pair is
 * added to a per-(model, version, window) accumulator. An accumulator is a plain struct of
 * counters: integer counts, and sums of doubles. Two accumulators of the same window merge by
 * adding field by field (`a += b`), so the counters can live in Redis as hash fields updated
 * with HINCRBY / HINCRBYFLOAT by any replica, and the metrics are computed at read time from
 * the merged counters. Nothing here touches Redis: `*_fields` lists an accumulator's nonzero
 * counters as (field name, value) and `*_add_field` adds one field read back (HGETALL) into an
 * accumulator, which is how a reader rebuilds and merges them.
 *
 * Redis hash fields, in the window hash next to window_apply's fields (prefixes do not clash
 * with count/errors/err:/lat:/...). "int" fields take HINCRBY, "float" fields HINCRBYFLOAT;
 * only nonzero fields are written.
 *
 *   binary classification (score in [0,1], label in {0,1})
 *     pb:tp pb:fp pb:tn pb:fn   int    confusion counts at the threshold (positive: score >= t)
 *     pb:ll                     float  sum of per-pair log loss, nats (p clipped to [eps,1-eps])
 *     pb:pos:<k> pb:neg:<k>     int    positives / negatives whose score falls in bin k
 *                                      (k = 0..n_bins-1, decimal)
 *   multi-class classification (class names as strings)
 *     pm:n pm:correct           int    pairs, pairs with predicted == true
 *     pm:tp:<c> pm:fp:<c> pm:fn:<c>
 *                               int    per-class counts; <c> is the class name verbatim (may
 *                                      contain ':'; everything after the second ':' is the name)
 *     pm:other:tp pm:other:fp pm:other:fn
 *                               int    the same for all classes beyond MW_PERF_MAX_CLASSES
 *   regression (finite predicted and true values)
 *     pr:n                      int    pairs
 *     pr:err pr:abs pr:sq       float  sums of e, |e|, e^2 with e = predicted - true (units of y,
 *                                      y, y^2)
 *     pr:ape_n                  int    pairs with true != 0 (MAPE's denominator)
 *     pr:ape                    float  sum of |e|/|true| over those pairs (a fraction, not %)
 *   label coverage and delay
 *     pc:pred pc:lab            int    predictions made in the window, of which labelled
 *     pc:skew                   int    labels stamped before their prediction (delay taken as 0)
 *     pc:delay_ms               int    sum of (label time - prediction time), milliseconds
 *     pc:dl:<k>                 int    delays in log bucket k of common/latency_hist.h, read as
 *                                      milliseconds (1% relative error for delays > 1 ms)
 *
 * The binary threshold and bin count are configuration, not counters. The aggregator's apply
 * script decides tp/fp/tn/fn when a pair joins, with the model's threshold (or the class the
 * prediction names, window_apply.h), so the stored counts already hold it and a reader's
 * accumulator threshold does not change what add_field reads back. A window is attributed by
 * its prediction's time, so a late label adds to its prediction's window.
 *
 * Undefined metrics: every metric of an empty accumulator (no pairs) is NaN — "no data" — and
 * so is ROC AUC when only one class is present, and MAPE when no pair has true != 0. Precision,
 * recall and F1 of a non-empty accumulator follow scikit-learn's zero_division=0: 0 when the
 * denominator is 0 (no predicted positives, no actual positives).
 *
 * Accumulators are not thread-safe; one owner at a time.
 */
#ifndef MW_AGGREGATOR_PERF_METRICS_H
#define MW_AGGREGATOR_PERF_METRICS_H

#include "latency_hist.h"

#include <stdbool.h>
#include <stdint.h>

#define MW_PERF_THRESHOLD_DEFAULT 0.5
#define MW_PERF_AUC_BINS_DEFAULT 1000u
#define MW_PERF_AUC_BINS_MAX 1000000u
/* Scores are clipped to [eps, 1 - eps] for log loss; scikit-learn's historical default. */
#define MW_PERF_LOG_LOSS_EPS 1e-15
/* Named classes a multi-class accumulator tracks; later classes share the "other" slot. */
#define MW_PERF_MAX_CLASSES 64u
/* Bytes of a class name including the NUL: names are at most 63 bytes. */
#define MW_PERF_CLASS_NAME_MAX 64u
/* Longest field name any accumulator produces, with its NUL. */
#define MW_PERF_FIELD_NAME_MAX 96u

/*
 * A sum of doubles with Neumaier's compensation: its value is hi + lo, accurate to about two
 * ulps whatever the number and order of terms, so that halves merged equal the whole and the
 * sum agrees with numpy's pairwise summation far inside 1e-12. Only the value (hi + lo) is
 * stored in Redis.
 */
struct mw_perf_sum {
    double hi;
    double lo;
};

/* hi + lo. */
double mw_perf_sum_value(const struct mw_perf_sum *s);

/* One Redis hash field of an accumulator, as produced by the *_fields functions. */
struct mw_perf_field {
    const char *name; /* borrowed: valid during the callback only */
    bool is_float;    /* true: HINCRBYFLOAT with `sum`; false: HINCRBY with `count` */
    int64_t count;
    double sum;
};

/* Called once per nonzero field; a nonzero return stops the listing and is returned. */
typedef int (*mw_perf_field_fn)(void *ctx, const struct mw_perf_field *field);

/* Precision, recall and F1 of one class (zero_division=0 semantics, see above). */
struct mw_perf_prf {
    double precision;
    double recall;
    double f1;
};

/* ---- binary classification ------------------------------------------------------------- */

struct mw_perf_binary {
    double threshold; /* predicted positive when score >= threshold */
    uint32_t n_bins;  /* equal-width score bins on [0, 1] for ROC AUC */
    uint64_t tp, fp, tn, fn;
    struct mw_perf_sum log_loss_sum; /* nats */
    uint64_t *pos_bins;              /* n_bins counts of positives by score bin; owned */
    uint64_t *neg_bins;              /* n_bins counts of negatives by score bin; owned */
};

struct mw_perf_binary_metrics {
    uint64_t n, n_pos, n_neg;
    double accuracy;
    double precision, recall, f1;
    double log_loss; /* mean, nats */
    /* Mann-Whitney AUC of the scores quantised to their bins: P(bin_pos > bin_neg) + 0.5
     * P(bin_pos == bin_neg). NaN unless both classes are present. */
    double roc_auc;
    /* Share of positive-negative pairs in the same bin. Only those pairs can be ordered
     * differently by the raw scores, each by at most 1/2, so |AUC(raw) - roc_auc| <=
     * roc_auc_tie_share / 2. NaN when roc_auc is. */
    double roc_auc_tie_share;
};

/*
 * The bin of `score` among `n_bins` equal-width bins on [0, 1]: the largest k with
 * fl(k / n_bins) <= score, and n_bins - 1 for score 1. A score written exactly as an edge
 * (0.29 with 100 bins) therefore falls in the bin above the edge, whatever the rounding of
 * score * n_bins. Requires 0 <= score <= 1 and n_bins >= 1.
 */
uint32_t mw_perf_score_bin(double score, uint32_t n_bins);

/*
 * Create an empty accumulator. `threshold` must be in [0, 1] and `n_bins` in
 * [1, MW_PERF_AUC_BINS_MAX]. On success *out is owned by the caller (mw_perf_binary_destroy).
 * Returns 0, MW_EINVAL or MW_ENOMEM.
 */
int mw_perf_binary_create(double threshold, uint32_t n_bins, struct mw_perf_binary **out);
/* Free an accumulator. Accepts NULL. */
void mw_perf_binary_destroy(struct mw_perf_binary *acc);
/* Zero every counter; threshold and bins stay. */
void mw_perf_binary_reset(struct mw_perf_binary *acc);
/* Add one pair. Returns 0, or MW_EINVAL (score NaN or outside [0, 1], label not 0 or 1) with
 * the accumulator unchanged. Allocates nothing. */
int mw_perf_binary_add(struct mw_perf_binary *acc, double score, int label);
/* acc += other (other may be acc). Returns 0, or MW_EINVAL when threshold or n_bins differ
 * (acc unchanged). */
int mw_perf_binary_merge(struct mw_perf_binary *acc, const struct mw_perf_binary *other);
void mw_perf_binary_compute(const struct mw_perf_binary *acc, struct mw_perf_binary_metrics *out);
/* Call `fn` for each nonzero field (names above). Returns 0 or the callback's first nonzero
 * return. */
int mw_perf_binary_fields(const struct mw_perf_binary *acc, mw_perf_field_fn fn, void *ctx);
/*
 * Add one stored field (`value` as Redis returns it: decimal text) to the accumulator.
 * Returns 0, MW_ENOTFOUND (not a binary field: the caller may offer it to another
 * accumulator), or MW_EPARSE (a binary field with a malformed value or a bin >= n_bins).
 */
int mw_perf_binary_add_field(struct mw_perf_binary *acc, const char *name, const char *value);

/* ---- multi-class classification -------------------------------------------------------- */

struct mw_perf_class_counts {
    uint64_t tp, fp, fn;
};

/*
 * Classes take slots in order of first appearance (in add, merge or add_field). When all
 * MW_PERF_MAX_CLASSES slots are taken, further classes share slot MW_PERF_MAX_CLASSES,
 * "other", whose counts are the sums of those classes' own counts (a pair predicting one
 * overflow class for another is an fp and an fn of "other", not a tp). Accuracy stays exact;
 * macro and weighted averages then treat "other" as one class and are approximate
 * (`overflowed` says so). Every named slot has a nonzero count.
 */
struct mw_perf_multiclass {
    uint64_t n;
    uint64_t n_correct;
    uint32_t n_classes; /* named slots in use */
    char names[MW_PERF_MAX_CLASSES][MW_PERF_CLASS_NAME_MAX];
    struct mw_perf_class_counts counts[MW_PERF_MAX_CLASSES + 1]; /* last: "other" */
};

struct mw_perf_multiclass_metrics {
    uint64_t n;
    uint32_t n_classes; /* classes averaged over: named slots, plus "other" when used */
    bool overflowed;    /* "other" is used: macro and weighted averages are approximate */
    double accuracy;
    struct mw_perf_prf macro;    /* unweighted mean over classes */
    struct mw_perf_prf weighted; /* mean weighted by support (tp + fn) */
};

/* Empty the accumulator (also the initialisation: the struct needs no other setup). */
void mw_perf_multiclass_reset(struct mw_perf_multiclass *acc);
/* Add one pair of class names (borrowed for the call). Returns 0, MW_EINVAL (NULL or empty
 * name) or MW_ETOOBIG (name longer than MW_PERF_CLASS_NAME_MAX - 1 bytes), acc unchanged. */
int mw_perf_multiclass_add(struct mw_perf_multiclass *acc, const char *predicted,
                           const char *actual);
/* acc += other (other may be acc); other's classes are looked up by name in acc. */
void mw_perf_multiclass_merge(struct mw_perf_multiclass *acc,
                              const struct mw_perf_multiclass *other);
void mw_perf_multiclass_compute(const struct mw_perf_multiclass *acc,
                                struct mw_perf_multiclass_metrics *out);
/* Precision, recall and F1 of slot `slot` (< n_classes, or MW_PERF_MAX_CLASSES for "other"),
 * with its support (tp + fn) in *support when not NULL. NaN when acc is empty. */
struct mw_perf_prf mw_perf_multiclass_class(const struct mw_perf_multiclass *acc, uint32_t slot,
                                            uint64_t *support);
int mw_perf_multiclass_fields(const struct mw_perf_multiclass *acc, mw_perf_field_fn fn, void *ctx);
/* As mw_perf_binary_add_field; MW_EPARSE also for an empty or too long class name. A zero
 * value registers no class. */
int mw_perf_multiclass_add_field(struct mw_perf_multiclass *acc, const char *name,
                                 const char *value);

/* ---- regression ------------------------------------------------------------------------ */

struct mw_perf_regression {
    uint64_t n;
    uint64_t n_ape; /* pairs with true != 0 */
    struct mw_perf_sum err_sum, abs_err_sum, sq_err_sum, ape_sum;
};

struct mw_perf_regression_metrics {
    uint64_t n;
    uint64_t n_ape;
    double mean_error; /* bias, mean of predicted - true */
    double mae;
    double rmse;
    /* Mean of |e| / |true| over pairs with true != 0, as a fraction. Pairs with true == 0 are
     * left out (scikit-learn instead divides by max(|true|, 2.2e-16), which makes one such
     * pair dominate the mean). NaN when n_ape == 0. */
    double mape;
};

void mw_perf_regression_reset(struct mw_perf_regression *acc);
/* Add one pair. Returns 0, or MW_EINVAL (a non-finite value, or an error whose square or
 * relative error overflows: it would make the window's sums infinite), acc unchanged. */
int mw_perf_regression_add(struct mw_perf_regression *acc, double predicted, double actual);
void mw_perf_regression_merge(struct mw_perf_regression *acc,
                              const struct mw_perf_regression *other);
void mw_perf_regression_compute(const struct mw_perf_regression *acc,
                                struct mw_perf_regression_metrics *out);
int mw_perf_regression_fields(const struct mw_perf_regression *acc, mw_perf_field_fn fn, void *ctx);
int mw_perf_regression_add_field(struct mw_perf_regression *acc, const char *name,
                                 const char *value);

/* ---- label coverage and delay ---------------------------------------------------------- */

struct mw_perf_coverage {
    uint64_t n_predictions;
    uint64_t n_labelled;
    uint64_t n_skewed; /* labels stamped before their prediction, counted with delay 0 */
    uint64_t delay_sum_ms;
    /* Delays by log bucket, in milliseconds (counts and total are used; sum_us is not). */
    struct mw_latency_hist delay_hist;
};

struct mw_perf_coverage_metrics {
    uint64_t n_predictions, n_labelled, n_skewed;
    double coverage;      /* n_labelled / n_predictions; NaN without predictions; may exceed
                             1 if labels arrive for predictions the window did not count */
    double mean_delay_ms; /* NaN without labels */
    double p50_delay_ms, p90_delay_ms, p99_delay_ms; /* nearest rank, within 1%; NaN as mean */
};

void mw_perf_coverage_reset(struct mw_perf_coverage *acc);
void mw_perf_coverage_add_predictions(struct mw_perf_coverage *acc, uint64_t n_predictions);
/* Add one label joined to its prediction; times in ms since the epoch. */
void mw_perf_coverage_add_label(struct mw_perf_coverage *acc, int64_t prediction_ms,
                                int64_t label_ms);
void mw_perf_coverage_merge(struct mw_perf_coverage *acc, const struct mw_perf_coverage *other);
void mw_perf_coverage_compute(const struct mw_perf_coverage *acc,
                              struct mw_perf_coverage_metrics *out);
int mw_perf_coverage_fields(const struct mw_perf_coverage *acc, mw_perf_field_fn fn, void *ctx);
int mw_perf_coverage_add_field(struct mw_perf_coverage *acc, const char *name, const char *value);

#endif
