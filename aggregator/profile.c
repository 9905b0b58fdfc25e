/* profile.c — parse and validate a reference profile (JSON, via jansson). */
#include "profile.h"

#include "alloc.h"
#include "error.h"
#include "hash.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
    return MW_EPARSE;
}

static void free_feature(struct mw_profile_feature *f)
{
    mw_free(f->name);
    mw_free(f->cuts);
    mw_free(f->slot_p);
    mw_free(f->slot_mean);
    mw_free(f->ref_x);
    mw_free(f->psi_bin);
    mw_free(f->psi_p);
    for (size_t i = 0; i < f->n_categories; i++)
        mw_free(f->categories[i]);
    mw_free(f->categories);
    mw_free(f->category_p);
}

void mw_profile_free(struct mw_profile *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_features; i++)
        free_feature(&p->features[i]);
    mw_free(p->features);
    mw_table_free(&p->feature_index);
    mw_free(p->model);
    mw_free(p->version);
    mw_free(p);
}

/* A finite number from `v`, or fail. */
static int get_number(json_t *v, const char *where, double *out, char *err, size_t errsize)
{
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return fail(err, errsize, "%s: expected a finite number", where);
    *out = json_number_value(v);
    return 0;
}

static int get_share(json_t *v, const char *where, double *out, char *err, size_t errsize)
{
    int rc = get_number(v, where, out, err, errsize);
    if (!rc && (*out < 0 || *out > 1))
        return fail(err, errsize, "%s: a share must be within [0, 1]", where);
    return rc;
}

/* An array of at most `max` elements at obj[key], or fail naming it. */
static int get_array(json_t *obj, const char *feature, const char *key, size_t want, size_t max,
                     json_t **out, char *err, size_t errsize)
{
    json_t *a = json_object_get(obj, key);
    if (!json_is_array(a) || json_array_size(a) > max ||
        (want != SIZE_MAX && json_array_size(a) != want)) {
        if (want != SIZE_MAX)
            return fail(err, errsize, "features.%s.%s: expected an array of %zu numbers", feature,
                        key, want);
        return fail(err, errsize, "features.%s.%s: expected an array of at most %zu numbers",
                    feature, key, max);
    }
    *out = a;
    return 0;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int parse_range(struct mw_profile_feature *f, json_t *obj, char *err, size_t errsize)
{
    char where[256];
    const char *keys[] = {"min", "max", "mean"};
    double *vals[] = {&f->min, &f->max, &f->mean};
    for (size_t i = 0; i < 3; i++) {
        snprintf(where, sizeof where, "features.%s.%s", f->name, keys[i]);
        if (get_number(json_object_get(obj, keys[i]), where, vals[i], err, errsize))
            return MW_EPARSE;
    }
    if (f->min > f->max)
        return fail(err, errsize, "features.%s: min is above max", f->name);
    json_t *std = json_object_get(obj, "std");
    f->std = json_is_number(std) && json_number_value(std) >= 0 ? json_number_value(std) : NAN;
    return 0;
}

static int parse_cuts(struct mw_profile_feature *f, json_t *cuts, char *err, size_t errsize)
{
    char where[256];
    for (size_t i = 0; i < f->n_cuts; i++) {
        snprintf(where, sizeof where, "features.%s.cuts[%zu]", f->name, i);
        if (get_number(json_array_get(cuts, i), where, &f->cuts[i], err, errsize))
            return MW_EPARSE;
        if (i && !(f->cuts[i] > f->cuts[i - 1]))
            return fail(err, errsize, "%s: cuts must be strictly increasing", where);
        if (!(f->cuts[i] > f->min && f->cuts[i] < f->max))
            return fail(err, errsize, "%s: a cut must lie strictly between min and max", where);
    }
    return 0;
}

/* The reference as weighted points (the slots that hold mass, in order), once per profile:
 * every window's Wasserstein distance walks them. */
static int reference_points(struct mw_profile_feature *f)
{
    size_t n_slots = f->n_cuts + 3;
    f->ref_x = mw_calloc(2 * n_slots, sizeof *f->ref_x);
    if (!f->ref_x)
        return MW_ENOMEM;
    f->ref_w = f->ref_x + n_slots;
    f->n_ref_points = 0;
    for (size_t s = 0; s < n_slots; s++) {
        if (f->slot_p[s] > 0) {
            f->ref_x[f->n_ref_points] = f->slot_mean[s];
            f->ref_w[f->n_ref_points++] = f->slot_p[s];
        }
    }
    return 0;
}

/* Reference shares and mass positions of the slots, from the regions' counts and sums. */
static int parse_regions(struct mw_profile_feature *f, json_t *counts, json_t *sums, char *err,
                         size_t errsize)
{
    char where[256];
    size_t n_regions = f->n_cuts + 1;
    double total = 0;
    for (size_t r = 0; r < n_regions; r++) {
        json_t *c = json_array_get(counts, r);
        if (!json_is_integer(c) || json_integer_value(c) < 0)
            return fail(err, errsize, "features.%s.region_counts[%zu]: expected a count >= 0",
                        f->name, r);
        double count = (double)json_integer_value(c), sum = 0;
        snprintf(where, sizeof where, "features.%s.region_sums[%zu]", f->name, r);
        if (get_number(json_array_get(sums, r), where, &sum, err, errsize))
            return MW_EPARSE;
        double lo = r == 0 ? f->min : f->cuts[r - 1], hi = r == f->n_cuts ? f->max : f->cuts[r];
        /* Rounding may put a region's mean a hair outside it; the slots must stay in order. */
        double mean = count > 0 ? fmin(fmax(sum / count, lo), hi) : lo + (hi - lo) / 2;
        f->slot_p[r + 1] = count;
        f->slot_mean[r + 1] = mean;
        total += count;
    }
    if (!(total > 0))
        return fail(err, errsize, "features.%s.region_counts: no reference value", f->name);
    if (f->count && total != (double)f->count)
        return fail(err, errsize, "features.%s.region_counts: they sum to %.0f, count is %" PRIu64,
                    f->name, total, f->count);
    for (size_t r = 1; r <= n_regions; r++)
        f->slot_p[r] /= total;
    f->slot_mean[0] = f->slot_mean[n_regions + 1] = NAN;
    return reference_points(f);
}

/* The PSI bins: below the range, the regions the deciles cut [min, max] into, above. */
static int parse_deciles(struct mw_profile_feature *f, json_t *deciles, char *err, size_t errsize)
{
    char where[256];
    size_t n = json_array_size(deciles), n_slots = f->n_cuts + 3;
    double prev = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double d = 0;
        snprintf(where, sizeof where, "features.%s.deciles[%zu]", f->name, i);
        if (get_number(json_array_get(deciles, i), where, &d, err, errsize))
            return MW_EPARSE;
        if (!(d > prev))
            return fail(err, errsize, "%s: deciles must be strictly increasing", where);
        if (!bsearch(&d, f->cuts, f->n_cuts, sizeof d, compare_double))
            return fail(err, errsize, "%s: every decile must also be one of the cuts", where);
        prev = d;
    }
    f->n_psi_bins = n + 3;
    f->psi_bin = mw_calloc(n_slots, sizeof *f->psi_bin);
    f->psi_p = mw_calloc(f->n_psi_bins, sizeof *f->psi_p);
    if (!f->psi_bin || !f->psi_p)
        return MW_ENOMEM;
    /* Slot s >= 1 starts at min or at cut s - 1: its bin is 1 + the deciles at or below that. */
    size_t below = 0;
    for (size_t s = 1; s + 1 < n_slots; s++) {
        double start = s == 1 ? f->min : f->cuts[s - 2];
        while (below < n && json_number_value(json_array_get(deciles, below)) <= start)
            below++;
        f->psi_bin[s] = 1 + below;
    }
    f->psi_bin[n_slots - 1] = n + 2;
    for (size_t s = 0; s < n_slots; s++)
        f->psi_p[f->psi_bin[s]] += f->slot_p[s];
    return 0;
}

static int parse_numeric(struct mw_profile_feature *f, json_t *obj, char *err, size_t errsize)
{
    json_t *cuts = NULL, *counts = NULL, *sums = NULL, *deciles = NULL;
    int rc = parse_range(f, obj, err, errsize);
    rc = rc ? rc
            : get_array(obj, f->name, "cuts", SIZE_MAX, MW_PROFILE_MAX_CUTS, &cuts, err, errsize);
    if (rc)
        return rc;
    f->n_cuts = json_array_size(cuts);
    rc = get_array(obj, f->name, "region_counts", f->n_cuts + 1, SIZE_MAX, &counts, err, errsize);
    rc = rc ? rc
            : get_array(obj, f->name, "region_sums", f->n_cuts + 1, SIZE_MAX, &sums, err, errsize);
    rc = rc ? rc : get_array(obj, f->name, "deciles", SIZE_MAX, f->n_cuts, &deciles, err, errsize);
    if (rc)
        return rc;
    f->cuts = mw_calloc(f->n_cuts + 1, sizeof *f->cuts);
    f->slot_p = mw_calloc(f->n_cuts + 3, sizeof *f->slot_p);
    f->slot_mean = mw_calloc(f->n_cuts + 3, sizeof *f->slot_mean);
    if (!f->cuts || !f->slot_p || !f->slot_mean)
        return MW_ENOMEM;
    rc = parse_cuts(f, cuts, err, errsize);
    rc = rc ? rc : parse_regions(f, counts, sums, err, errsize);
    return rc ? rc : parse_deciles(f, deciles, err, errsize);
}

struct category {
    const char *name;
    double p;
};

static int compare_category(const void *a, const void *b)
{
    return strcmp(((const struct category *)a)->name, ((const struct category *)b)->name);
}

static int parse_categorical(struct mw_profile_feature *f, json_t *obj, char *err, size_t errsize)
{
    char where[256];
    json_t *cats = json_object_get(obj, "categories");
    if (!json_is_object(cats) || json_object_size(cats) > MW_PROFILE_MAX_CATEGORIES)
        return fail(err, errsize,
                    "features.%s.categories: expected an object of at most %d "
                    "category shares",
                    f->name, MW_PROFILE_MAX_CATEGORIES);
    size_t n = json_object_size(cats);
    struct category *tmp = mw_calloc(n + 1, sizeof *tmp);
    f->categories = mw_calloc(n + 1, sizeof *f->categories);
    f->category_p = mw_calloc(n + 1, sizeof *f->category_p);
    if (!tmp || !f->categories || !f->category_p) {
        mw_free(tmp);
        return MW_ENOMEM;
    }
    const char *key;
    json_t *v;
    size_t i = 0;
    int rc = 0;
    json_object_foreach(cats, key, v)
    {
        snprintf(where, sizeof where, "features.%s.categories.%s", f->name, key);
        tmp[i].name = key;
        if ((rc = get_share(v, where, &tmp[i].p, err, errsize)) != 0)
            break;
        i++;
    }
    if (!rc) {
        qsort(tmp, n, sizeof *tmp, compare_category);
        for (i = 0; i < n; i++) {
            f->categories[i] = mw_strdup(tmp[i].name);
            f->category_p[i] = tmp[i].p;
            f->n_categories++;
        }
        json_t *other = json_object_get(obj, "other");
        f->other_p = 0;
        if (other) {
            snprintf(where, sizeof where, "features.%s.other", f->name);
            rc = get_share(other, where, &f->other_p, err, errsize);
        }
    }
    mw_free(tmp);
    return rc;
}

static int parse_feature(struct mw_profile_feature *f, const char *name, json_t *obj, char *err,
                         size_t errsize)
{
    f->name = mw_strdup(name);
    if (!f->name)
        return MW_ENOMEM;
    if (!*name || strchr(name, '|'))
        return fail(err, errsize, "features.%s: a feature name must be non-empty and free of '|'",
                    name);
    if (!json_is_object(obj))
        return fail(err, errsize, "features.%s: expected an object", name);
    const char *type = json_string_value(json_object_get(obj, "type"));
    json_t *count = json_object_get(obj, "count"), *missing = json_object_get(obj, "missing");
    f->count = json_is_integer(count) ? (uint64_t)json_integer_value(count) : 0;
    f->missing = json_is_integer(missing) ? (uint64_t)json_integer_value(missing) : 0;
    if (type && strcmp(type, "numeric") == 0) {
        f->numeric = true;
        return parse_numeric(f, obj, err, errsize);
    }
    if (type && strcmp(type, "categorical") == 0)
        return parse_categorical(f, obj, err, errsize);
    return fail(err, errsize, "features.%s.type: expected \"numeric\" or \"categorical\"", name);
}

static int compare_feature(const void *a, const void *b)
{
    return strcmp(((const struct mw_profile_feature *)a)->name,
                  ((const struct mw_profile_feature *)b)->name);
}

/* A feature name as the read paths hold it: bytes inside a longer field name. */
struct name_span {
    const char *text;
    size_t len;
};

static bool feature_named(const void *item, const void *key)
{
    const struct mw_profile_feature *f = item;
    const struct name_span *name = key;
    return strncmp(f->name, name->text, name->len) == 0 && f->name[name->len] == '\0';
}

static int index_features(struct mw_profile *p)
{
    mw_table_init(&p->feature_index, feature_named);
    for (size_t i = 0; i < p->n_features; i++) {
        const char *name = p->features[i].name;
        int rc = mw_table_insert(&p->feature_index, mw_hash_bytes(MW_HASH_INIT, name, strlen(name)),
                                 &p->features[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_document(struct mw_profile *p, json_t *doc, char *err, size_t errsize)
{
    const char *model = json_string_value(json_object_get(doc, "model"));
    const char *version = json_string_value(json_object_get(doc, "version"));
    json_t *features = json_object_get(doc, "features");
    json_t *format = json_object_get(doc, "format");
    if (!json_is_integer(format) || json_integer_value(format) != MW_PROFILE_FORMAT)
        return fail(err, errsize,
                    "format: expected %d (build the profile again with `modelwatch-ctl profile "
                    "build`)",
                    MW_PROFILE_FORMAT);
    if (!model || !*model)
        return fail(err, errsize, "model: expected a non-empty string");
    if (!version)
        return fail(err, errsize, "version: expected a string");
    if (!json_is_object(features) || json_object_size(features) == 0 ||
        json_object_size(features) > MW_PROFILE_MAX_FEATURES)
        return fail(err, errsize, "features: expected an object of 1 to %d features",
                    MW_PROFILE_MAX_FEATURES);
    p->model = mw_strdup(model);
    p->version = mw_strdup(version);
    json_t *created = json_object_get(doc, "created_ms"), *rows = json_object_get(doc, "rows");
    p->created_ms = json_is_integer(created) ? (int64_t)json_integer_value(created) : 0;
    p->rows = json_is_integer(rows) ? (uint64_t)json_integer_value(rows) : 0;
    p->features = mw_calloc(json_object_size(features), sizeof *p->features);
    if (!p->model || !p->version || !p->features)
        return MW_ENOMEM;
    const char *name;
    json_t *obj;
    json_object_foreach(features, name, obj)
    {
        int rc = parse_feature(&p->features[p->n_features++], name, obj, err, errsize);
        if (rc)
            return rc;
    }
    qsort(p->features, p->n_features, sizeof *p->features, compare_feature);
    return index_features(p);
}

int mw_profile_parse(const char *json, size_t len, struct mw_profile **out, char *err,
                     size_t errsize)
{
    json_error_t jerr;
    *out = NULL;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return fail(err, errsize, "invalid JSON at line %d: %s", jerr.line, jerr.text);
    struct mw_profile *p = mw_calloc(1, sizeof *p);
    if (p)
        p->tag = mw_hash_mix(mw_hash_bytes(MW_HASH_INIT, json, len));
    int rc = p ? (json_is_object(doc) ? parse_document(p, doc, err, errsize)
                                      : fail(err, errsize, "expected a JSON object"))
               : MW_ENOMEM;
    json_decref(doc);
    if (rc) {
        if (rc == MW_ENOMEM)
            snprintf(err, errsize, "out of memory");
        mw_profile_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

const struct mw_profile_feature *mw_profile_find_n(const struct mw_profile *p, const char *name,
                                                   size_t len)
{
    struct name_span key = {name, len};
    return mw_table_find(&p->feature_index, mw_hash_bytes(MW_HASH_INIT, name, len), &key);
}

const struct mw_profile_feature *mw_profile_find(const struct mw_profile *p, const char *name)
{
    return mw_profile_find_n(p, name, strlen(name));
}

static int compare_name(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

long mw_profile_category(const struct mw_profile_feature *f, const char *value)
{
    char **hit =
        bsearch(value, f->categories, f->n_categories, sizeof *f->categories, compare_name);
    return hit ? (long)(hit - f->categories) : -1;
}
