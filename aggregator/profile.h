/*
 * profile.h — a model version's reference profile, the baseline drift is measured against.
 *
 * `modelwatch-ctl profile build` computes it from a CSV of reference data; the aggregator keeps
 * it in Redis (JSON) and parses it here. Per numeric feature (format 2): the range [min, max],
 * a fine grid of cut points strictly inside it (`cuts`: the reference's percentiles and
 * deciles, deduplicated), the reference count and sum of values of each region between them
 * ([min, c_1), [c_1, c_2), ..., [c_k, max]), and the `deciles`, a subset of the cuts that PSI and
 * JS bin by; drift.h's slot layout adds a slot below and above the range. Per categorical
 * feature: the shares of its known categories and of `other`. The JSON layout is documented in
 * tools/profile_build.h.
 */
#ifndef MW_AGGREGATOR_PROFILE_H
#define MW_AGGREGATOR_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "table.h"

/* The document layout this parser reads (its "format" key). */
#define MW_PROFILE_FORMAT 2
#define MW_PROFILE_MAX_FEATURES 1024
#define MW_PROFILE_MAX_CUTS 1099
#define MW_PROFILE_MAX_CATEGORIES 1000

struct mw_profile_feature {
    char *name;
    bool numeric;
    uint64_t count;
    uint64_t missing;
    /* numeric: n_cuts + 3 slots (drift.h) */
    size_t n_cuts;
    double *cuts;      /* n_cuts, strictly increasing, inside (min, max) */
    double *slot_p;    /* n_cuts + 3: the reference share of each slot (0 below and above) */
    double *slot_mean; /* n_cuts + 3: where a slot's reference mass sits: the mean of its
                          values, or its midpoint when it has none (NaN below and above) */
    double *ref_x, *ref_w; /* the slots with reference mass as points: position, share */
    size_t n_ref_points;
    size_t n_psi_bins; /* deciles + 1 regions, plus below and above the range */
    size_t *psi_bin;   /* n_cuts + 3: the PSI bin of each slot (0 and n_psi_bins - 1 outside) */
    double *psi_p;     /* n_psi_bins: the reference share of each PSI bin */
    double min, max, mean;
    double std; /* NaN when the profile does not give it */
    /* categorical: sorted by name for lookup */
    size_t n_categories;
    char **categories;
    double *category_p;
    double other_p;
};

struct mw_profile {
    uint64_t tag; /* identifies this exact document: windows record which profile binned them */
    char *model;
    char *version;
    int64_t created_ms;
    uint64_t rows;
    size_t n_features;
    struct mw_profile_feature *features; /* sorted by name */
    struct mw_table feature_index;       /* name -> feature: the read paths look one up per field */
};

/* Parse and validate a profile document. On error returns MW_EPARSE with `err` saying what is
 * wrong and where ("features.age.edges: not strictly increasing"). *out is freed with
 * mw_profile_free. */
int mw_profile_parse(const char *json, size_t len, struct mw_profile **out, char *err,
                     size_t errsize);
void mw_profile_free(struct mw_profile *p); /* accepts NULL */

/* The feature called `name`, or NULL. */
const struct mw_profile_feature *mw_profile_find(const struct mw_profile *p, const char *name);
/* The feature whose name is the `len` bytes at `name` (not NUL-terminated), or NULL. */
const struct mw_profile_feature *mw_profile_find_n(const struct mw_profile *p, const char *name,
                                                   size_t len);
/* Index of `value` among the feature's categories, or -1 when unseen. */
long mw_profile_category(const struct mw_profile_feature *f, const char *value);

#endif
