/* profile.c — parse and validate a reference profile (JSON, via jansson). */
#include "profile.h"

#include "alloc.h"
#include "error.h"

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
    mw_free(f->edges);
    mw_free(f->proportions);
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

static int parse_numeric(struct mw_profile_feature *f, json_t *obj, char *err, size_t errsize)
{
    char where[256];
    json_t *edges = json_object_get(obj, "edges"), *props = json_object_get(obj, "proportions");
    size_t n = json_array_size(edges);
    if (!json_is_array(edges) || n == 0 || n > MW_PROFILE_MAX_EDGES)
        return fail(err, errsize, "features.%s.edges: expected 1 to %d numbers", f->name,
                    MW_PROFILE_MAX_EDGES);
    if (!json_is_array(props) || json_array_size(props) != n + 1)
        return fail(err, errsize,
                    "features.%s.proportions: expected %zu shares (one per region "
                    "the %zu edges make)",
                    f->name, n + 1, n);
    f->n_edges = n;
    f->edges = mw_calloc(n, sizeof *f->edges);
    f->proportions = mw_calloc(n + 1, sizeof *f->proportions);
    if (!f->edges || !f->proportions)
        return MW_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        snprintf(where, sizeof where, "features.%s.edges[%zu]", f->name, i);
        if (get_number(json_array_get(edges, i), where, &f->edges[i], err, errsize))
            return MW_EPARSE;
        if (i && !(f->edges[i] > f->edges[i - 1]))
            return fail(err, errsize, "%s: edges must be strictly increasing", where);
    }
    for (size_t i = 0; i <= n; i++) {
        snprintf(where, sizeof where, "features.%s.proportions[%zu]", f->name, i);
        if (get_share(json_array_get(props, i), where, &f->proportions[i], err, errsize))
            return MW_EPARSE;
    }
    const char *keys[] = {"min", "max", "mean"};
    double *vals[] = {&f->min, &f->max, &f->mean};
    for (size_t i = 0; i < 3; i++) {
        snprintf(where, sizeof where, "features.%s.%s", f->name, keys[i]);
        if (get_number(json_object_get(obj, keys[i]), where, vals[i], err, errsize))
            return MW_EPARSE;
    }
    json_t *std = json_object_get(obj, "std");
    f->std = json_is_number(std) && json_number_value(std) >= 0 ? json_number_value(std) : NAN;
    return 0;
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

static int parse_document(struct mw_profile *p, json_t *doc, char *err, size_t errsize)
{
    const char *model = json_string_value(json_object_get(doc, "model"));
    const char *version = json_string_value(json_object_get(doc, "version"));
    json_t *features = json_object_get(doc, "features");
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
    return 0;
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

const struct mw_profile_feature *mw_profile_find(const struct mw_profile *p, const char *name)
{
    struct mw_profile_feature key = {.name = (char *)name};
    return bsearch(&key, p->features, p->n_features, sizeof key, compare_feature);
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
