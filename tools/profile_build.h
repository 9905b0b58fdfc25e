/*
 * profile_build.h — computes a model's reference profile from a CSV file, for
 * `modelwatch-ctl profile build`. The aggregator compares every window's feature values with
 * this profile to measure drift (DESIGN step 12). The document is profile format 2 (a
 * top-level "format": 2): per numeric feature a fine grid of quantile cuts with the exact count
 * and sum of the reference values in each region between them, and the subset of those cuts
 * that are the PSI bin edges (`deciles`).
 *
 * Input: an RFC 4180 CSV file with a header row. Quoted fields may hold commas, newlines and
 * doubled quotes; records end with LF or CRLF; a UTF-8 byte order mark is skipped; blank lines
 * are skipped (so in a one-column file an empty value must be written as ""). Errors name the
 * file and the line the record starts on ("data.csv:1042: expected 12 fields, got 11"), except
 * an unterminated quote, which names the line the quote opened on.
 *
 * Types: a column is numeric when every non-missing value parses as a finite number (strtod,
 * the whole field, no blanks around it); otherwise categorical. "", "NA", "NaN" and "null" (any
 * case) are missing. A column without a single value is left out of the profile (with a note).
 * What the aggregator accepts is checked here, so a built profile always pushes: the model name
 * rule of common/names.h, feature names without '|', at most MW_PROFILE_BUILD_MAX_FEATURES
 * features, at most MW_PROFILE_BUILD_MAX_CUTS cuts per numeric feature.
 *
 * Streaming in bounded memory: the file is read two times (three when a categorical column has
 * more distinct values than its counting table holds), one record at a time, so its size does
 * not matter; it must therefore be a regular file, not a pipe. Memory is bounded by:
 *   - one record: MW_PROFILE_MAX_RECORD_BYTES (1 MiB), and MW_PROFILE_MAX_COLUMNS columns;
 *   - numeric samples: at most MW_PROFILE_SAMPLE_BUDGET doubles (32 MiB) over all columns;
 *   - per numeric feature, after pass 1: its cuts, deciles, region counts and sums, about
 *     32 x (cuts + 1) bytes (36 KiB at --grid-bins 1000 --bins 100, ~3 KiB at the defaults);
 *   - category tables: at most max(MW_PROFILE_CATEGORY_BUDGET, 2 x max_categories x columns)
 *     entries over all columns, each value at most MW_PROFILE_MAX_CATEGORY_BYTES.
 *
 * Quantiles (pass 1) — reservoir sampling. Each numeric column keeps a uniform random sample
 * of m = min(count, cap) of its values (Vitter's algorithm R, a fixed-seed generator per
 * column, so the same file always gives the same profile). cap = MW_PROFILE_SAMPLE_CAP
 * (100,000), lowered to MW_PROFILE_SAMPLE_BUDGET / columns (never below 1,000) when more than
 * 40 columns could be numeric. Q(q) is the sample's quantile q by linear interpolation, exactly
 * as numpy.quantile's default computes it (the same double, for the same double q). With
 * G = grid_bins and B = bins:
 *   - cuts: Q(i / G), i = 1..G-1, and Q(j / B), j = 1..B-1, with q = (double)i / G and
 *     (double)j / B (so q = 0.1 is one double whether it comes from 10/100 or 1/10), sorted,
 *     duplicates removed, keeping only min < c < max. At most G - 1 + B - 1 of them
 *     (MW_PROFILE_BUILD_MAX_CUTS at the largest G and B); none for a constant column. A zero
 *     cut is +0.0, never -0.0.
 *   - deciles (the PSI cut points, named for the default B = 10): Q(j / B), j = 1..B-1, sorted,
 *     duplicates removed, keeping only min < d < max; each is a cut, and is stored as that
 *     cut's very double. A quantile equal to min (a column 30 % zeros has Q(0.1) = Q(0.2) = its
 *     min) or to max is not a cut, nor a decile.
 *   - count <= cap: the sample is the whole column and every cut equals numpy.quantile's.
 *   - count > cap: for the quantile Q(q), q lies between the share of the column's values below
 *     it and the share at or below it, widened by eps + 1/m on each side, except with
 *     probability 2 exp(-2 m eps^2) (Hoeffding's inequality at the column's q -/+ eps
 *     quantiles; it holds for sampling without replacement). With m = 100,000 and eps = 0.01
 *     that is 4.1e-9 per quantile, under 4.6e-6 for all 1,098 of --grid-bins 1000 --bins 100:
 *     the quantile error bound is 1 percentage point of rank.
 * Regions (pass 2) are exact: every non-missing value x of the file falls in region r = the
 * number of cuts <= x (numpy.searchsorted(cuts, x, side="right"); aggregator/drift.h's
 * mw_grid_region), so the k cuts make k + 1 regions [min, c_1), [c_1, c_2), ...,
 * [c_k, max]. Each region gets the count of its values and their sum, accumulated with
 * Neumaier's compensation: the error is at most 2u |sum| + n u^2 sum(|x|), u = 2^-53, so a
 * region of values of one sign is within 1e-15 relative of its exact sum up to 10^16 values
 * (numpy's pairwise sum is only within ~log2(n) u). A sum that overflows is written as null.
 *
 * Categories (pass 2) — exact counts while a column has at most K distinct values, K =
 * MW_PROFILE_EXACT_CATEGORIES (10,000; lowered so all tables fit MW_PROFILE_CATEGORY_BUDGET
 * entries, never below 2 x max_categories). Past K the table becomes a space-saving sketch
 * (Metwally et al.): a new value replaces the least counted one. Every value more frequent
 * than count / K is then guaranteed to be in the table. A third pass recounts the
 * 2 x max_categories most counted candidates exactly, so the shares written to the profile
 * are always exact; only the choice of which categories are kept can differ from the true
 * top max_categories, and only among categories whose shares are within 1 / K of each other.
 * Values longer than MW_PROFILE_MAX_CATEGORY_BYTES are never kept as categories: they count
 * in `other`.
 */
#ifndef MW_TOOLS_PROFILE_BUILD_H
#define MW_TOOLS_PROFILE_BUILD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --bins B: the PSI quantiles j / B, whose cuts are the deciles. */
#define MW_PROFILE_DEFAULT_BINS 10
#define MW_PROFILE_MIN_BINS 2
#define MW_PROFILE_MAX_BINS 100
/* --grid-bins G: the fine quantiles i / G; G >= B. */
#define MW_PROFILE_DEFAULT_GRID_BINS 100
#define MW_PROFILE_MIN_GRID_BINS 2
#define MW_PROFILE_MAX_GRID_BINS 1000
#define MW_PROFILE_DEFAULT_MAX_CATEGORIES 50
#define MW_PROFILE_MAX_MAX_CATEGORIES 1000
#define MW_PROFILE_SAMPLE_CAP 100000
#define MW_PROFILE_MIN_SAMPLE_CAP 1000
#define MW_PROFILE_SAMPLE_BUDGET 4000000
#define MW_PROFILE_EXACT_CATEGORIES 10000
#define MW_PROFILE_CATEGORY_BUDGET 200000
#define MW_PROFILE_MAX_CATEGORY_BYTES 256
#define MW_PROFILE_MAX_RECORD_BYTES (1024 * 1024)
#define MW_PROFILE_MAX_COLUMNS 4096
/* The document's "format": numeric features as cuts, region counts and sums, deciles. */
#define MW_PROFILE_BUILD_FORMAT 2
/* The aggregator's limits (aggregator/profile.h; the unit test checks they agree). */
#define MW_PROFILE_BUILD_MAX_FEATURES 1024
/* Cuts of one numeric feature, at most: G - 1 fine quantiles plus B - 1 PSI ones (1,098). */
#define MW_PROFILE_BUILD_MAX_CUTS ((MW_PROFILE_MAX_GRID_BINS - 1) + (MW_PROFILE_MAX_BINS - 1))

enum mw_built_type {
    MW_BUILT_NUMERIC = 1,
    MW_BUILT_CATEGORICAL = 2,
};

/* What to build. Strings are borrowed for the duration of mw_profile_build only. Start from
 * mw_profile_build_options_init's defaults. */
struct mw_profile_build_options {
    const char *model;              /* required: 1..128 of [A-Za-z0-9._-] (common/names.h) */
    const char *version;            /* required: 1..128 bytes of UTF-8, no control characters */
    int n_bins;                     /* MW_PROFILE_MIN_BINS..MW_PROFILE_MAX_BINS PSI bins */
    int n_grid_bins;                /* MW_PROFILE_MIN_GRID_BINS..MW_PROFILE_MAX_GRID_BINS, and
                                       >= n_bins: the fine quantile grid */
    size_t max_categories;          /* 1..MW_PROFILE_MAX_MAX_CATEGORIES categories kept */
    const char *const *categorical; /* columns forced categorical */
    size_t n_categorical;
    const char *const *ignore; /* columns left out (an id column) */
    size_t n_ignore;
    const char *label;  /* the label column, left out of the features; may be NULL */
    int64_t created_ms; /* the profile's creation time; 0 = now */
    /* For tests: the per-column sample cap and exact-category limit (0 = the defaults above),
     * so the bounded paths can be exercised on small files. */
    size_t sample_cap;
    size_t exact_categories;
};

struct mw_built_category {
    char *value; /* NUL-terminated */
    uint64_t count;
    double share; /* count / feature count */
};

/* One feature (a CSV column with at least one value). For a numeric feature the
 * min..sample_size fields are set, for a categorical one the categories fields; the others are
 * zero/NULL (min, max, mean and std NaN). */
struct mw_built_feature {
    char *name;
    enum mw_built_type type;
    size_t column;    /* 0-based index in the CSV header */
    uint64_t count;   /* non-missing values */
    uint64_t missing; /* missing values; count + missing = the profile's rows */
    /* numeric */
    double min, max, mean;   /* over non-missing values */
    double std;              /* population standard deviation (ddof 0) of the non-missing values,
                                by Welford's streaming algorithm (on values minus the first,
                                for a large mean); 0 for a single value or a constant */
    size_t n_cuts;           /* 0..MW_PROFILE_BUILD_MAX_CUTS; 0 for a constant */
    double *cuts;            /* n_cuts, strictly increasing, each in (min, max); may be NULL
                                when n_cuts is 0 */
    uint64_t *region_counts; /* n_cuts + 1: values in [min, c_1), ..., [c_k, max]; they sum to
                                count */
    double *region_sums;     /* n_cuts + 1: the sum of the values in each region (may be
                                non-finite when the values' sum overflows) */
    size_t n_deciles;        /* 0..bins-1 */
    double *deciles;         /* n_deciles, strictly increasing, each one of the cuts (the same
                                double); may be NULL when n_deciles is 0 */
    size_t sample_size;      /* values the cuts come from; == count when exact */
    /* categorical */
    size_t n_categories;
    struct mw_built_category *categories; /* by count, descending; ties by value */
    uint64_t other_count;                 /* values not kept as a category */
    double other;                         /* other_count / count */
    uint64_t distinct_lower_bound;        /* distinct values: exact unless sketched, then a lower
                                             bound (the table size + 1) */
    bool sketched;                        /* more distinct values than the counting table held */
};

struct mw_built_profile {
    char *model;
    char *version;
    int64_t created_ms;
    uint64_t rows; /* data rows, header excluded */
    size_t n_features;
    struct mw_built_feature *features; /* in CSV column order */
    unsigned passes;                   /* times the file was read (2 or 3) */
    /* Remarks for the user: why a column is categorical, that one was left out for having no
     * value, that values were too long for a category... */
    size_t n_notes;
    char **notes;
};

/* Fill `o` with the defaults (10 bins, a grid of 100, 50 categories, nothing forced or
 * ignored). */
void mw_profile_build_options_init(struct mw_profile_build_options *o);

/*
 * Build the profile of the CSV file at `path` (a regular file; "-" is refused). On success
 * returns 0 and stores a new profile in *out (the caller frees it with mw_built_profile_destroy).
 * On failure *out is NULL and `err` (err_size bytes, may be 0) holds one line without a
 * trailing newline: "data.csv:1042: expected 12 fields, got 11". Errors: MW_EINVAL (bad
 * options or model name, stdin or not a regular file, an unknown column in the options, no
 * feature column left, too many), MW_EPARSE (malformed CSV, no header, no data row, a '|' in a
 * feature name, no column with a value), MW_EIO (cannot open or read, or the file changed
 * between passes), MW_ENOMEM.
 */
int mw_profile_build(const char *path, const struct mw_profile_build_options *o,
                     struct mw_built_profile **out, char *err, size_t err_size);

/* As mw_profile_build, from `fd` (borrowed: a regular file, read from its first byte, left
 * open), named `name` in messages. */
int mw_profile_build_fd(int fd, const char *name, const struct mw_profile_build_options *o,
                        struct mw_built_profile **out, char *err, size_t err_size);

/* Free a profile. Accepts NULL. */
void mw_built_profile_destroy(struct mw_built_profile *p);

/*
 * The profile as the JSON document the aggregator stores: format (2), model, version,
 * created_ms, rows, features keyed by name in column order; numeric: type, count, missing, min,
 * max, mean, std, cuts, region_counts, region_sums, deciles; categorical: type, count, missing,
 * categories {value: share}, other. A non-finite mean, std or region sum is null. Returns a new
 * reference (json_decref it), or NULL when out of memory.
 */
json_t *mw_built_profile_to_json(const struct mw_built_profile *p);

#endif
