/*
 * value_sketch.h — a profile-independent, mergeable sketch of a numeric feature's values.
 *
 * Each window keeps, per numeric feature and whatever profile is in force (or none), the
 * weighted count of its values in logarithmic buckets (as DDSketch does): bucket i > 0 ... holds
 * positive values in (gamma^(i-1), gamma^i], its mirror holds negative values, and a zero bucket
 * holds |x| < MW_SKETCH_ZERO. gamma = (1 + alpha) / (1 - alpha) with alpha = MW_SKETCH_ALPHA,
 * so every value is within alpha (1 %) relative of its bucket's representative value. The
 * buckets are Redis hash fields incremented like every other counter, so the sketch stays
 * exactly-once and replica-safe.
 *
 * A profile pushed after the traffic (or corrected) reads a window through the sketch: each
 * bucket's mass is spread uniformly over its interval and assigned to the profile's slots
 * (drift.h), and sits at its representative value for Wasserstein. What that costs in accuracy
 * is stated in signals_drift.h and measured in bench/README.md.
 */
#ifndef MW_AGGREGATOR_VALUE_SKETCH_H
#define MW_AGGREGATOR_VALUE_SKETCH_H

#include <stdbool.h>
#include <stddef.h>

#define MW_SKETCH_ALPHA 0.01
#define MW_SKETCH_ZERO 1e-12
/* Numeric features of one record that are sketched; the rest of a wider record is not. */
#define MW_SKETCH_MAX_FEATURES 256

/* A bucket: sign (-1, 0, +1) and index; key text "kp<i>", "kn<i>" or "kz" (i may be negative). */
struct mw_sketch_bucket {
    int sign;
    int index;
};

/* The bucket of finite x. */
struct mw_sketch_bucket mw_sketch_bucket_of(double x);

/* The field suffix of a bucket into out (at least 16 bytes). */
void mw_sketch_bucket_name(struct mw_sketch_bucket b, char *out, size_t size);

/* Parse a field suffix ("kp12", "kn-3", "kz"); false when it is not a bucket. */
bool mw_sketch_bucket_parse(const char *suffix, struct mw_sketch_bucket *out);

/* The bucket's interval [*lo, *hi] and its representative value (within alpha of any value in
 * it: 2 gamma^i / (gamma + 1) for positive buckets, mirrored for negative, 0 for zero). */
void mw_sketch_bucket_bounds(struct mw_sketch_bucket b, double *lo, double *hi, double *value);

#endif
