/*
 * profile.h — a model version's reference profile, the baseline drift is measured against.
 *
 * `modelwatch-ctl profile build` computes it from a CSV of reference data; the aggregator keeps
 * it in Redis (mw:{model}:profile:<version>, JSON) and parses it here. Per numeric feature: the
 * quantile cut points (`edges` e_0 < ... < e_{k-1}) and the reference share of each of the k+1
 * regions they cut the line into — (-inf, e_0), [e_0, e_1), ..., [e_{k-1}, +inf), the layout
 * of drift.h, whose mw_drift_bin_index places a value — with
 * min/max/mean; per categorical feature: the shares of
 * its known categories and of `other`. The JSON layout is documented in tools/profile_build.h.
 */
#ifndef MW_AGGREGATOR_PROFILE_H
#define MW_AGGREGATOR_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MW_PROFILE_MAX_FEATURES 1024
#define MW_PROFILE_MAX_EDGES 100
#define MW_PROFILE_MAX_CATEGORIES 1000

struct mw_profile_feature {
    char *name;
    bool numeric;
    uint64_t count;
    uint64_t missing;
    /* numeric */
    size_t n_edges;
    double *edges;       /* n_edges, strictly increasing */
    double *proportions; /* n_edges + 1: the share of each region */
    double min, max, mean;
    double std; /* NaN when the profile does not give it */
    /* categorical: sorted by name for lookup */
    size_t n_categories;
    char **categories;
    double *category_p;
    double other_p;
};

struct mw_profile {
    char *model;
    char *version;
    int64_t created_ms;
    uint64_t rows;
    size_t n_features;
    struct mw_profile_feature *features; /* sorted by name */
};

/* Parse and validate a profile document. On error returns MW_EPARSE with `err` saying what is
 * wrong and where ("features.age.edges: not strictly increasing"). *out is freed with
 * mw_profile_free. */
int mw_profile_parse(const char *json, size_t len, struct mw_profile **out, char *err,
                     size_t errsize);
void mw_profile_free(struct mw_profile *p); /* accepts NULL */

/* The feature called `name`, or NULL. */
const struct mw_profile_feature *mw_profile_find(const struct mw_profile *p, const char *name);
/* Index of `value` among the feature's categories, or -1 when unseen. */
long mw_profile_category(const struct mw_profile_feature *f, const char *value);

#endif
