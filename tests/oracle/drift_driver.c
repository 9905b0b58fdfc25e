/*
 * drift_driver.c — runs modelwatch's drift statistics on test cases for the oracle test.
 *
 * Reads one JSON array of cases on stdin and writes one JSON array of results, in the same
 * order, on stdout; test_drift_oracle.py generates the cases and compares the results with
 * numpy/scipy. Every case is an object with "op" and the op's arguments:
 *
 *   edges_unique  edges                        -> rc, edges
 *   bin_index     edges, x[]                   -> index[] (-1 for MW_GRID_NONE)
 *   grid_slot     cuts, ref_min, ref_max, x[]  -> slot[] (-1 for MW_GRID_NONE)
 *   psi           ref_p, counts, epsilon       -> value
 *   js | ks       ref_p, counts                -> value
 *   chi2          ref_p, counts                -> rc, statistic, p_value
 *   wasserstein_points  ref_x, ref_w, cur_x, cur_w -> value
 *   chi2_sf       x[], df[]                    -> value[]
 *   gamma_q       a[], x[]                     -> value[]
 *   ks_p_value    d[], n_ref[], n_cur[]        -> value[]
 *   rate          kind (rate | unseen | missing | out_of_range), part, total -> value
 *   out_of_range  x, ref_min, ref_max          -> value (bool)
 *
 * JSON has no NaN or infinity, so doubles travel either as numbers or as the strings "nan",
 * "inf" and "-inf", both ways; counts are (weighted) doubles too. An array argument that is null
 * or absent is passed as NULL, with its length taken from "n_bins" (psi, js, ks, chi2), "n_cuts"
 * (grid_slot) or "n_ref" / "n_cur" (wasserstein_points) if given, else from the arrays (the
 * counts or ref_p; ref_x or ref_w; cur_x or cur_w). A malformed case
 * gets {"error": "..."}; the exit status is 0 when every case was well formed, 1 otherwise, and
 * 2 when stdin is not a JSON array.
 */
#include "alloc.h"
#include "chi2.h"
#include "drift.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Far above any case the test generates; keeps a bad input from asking for gigabytes. */
#define MAX_ARRAY_LEN (1u << 22)

/* Owned copies of a case's array arguments, freed together. */
struct case_arrays {
    double *doubles[4];
};

static void case_arrays_free(struct case_arrays *a)
{
    for (size_t i = 0; i < sizeof a->doubles / sizeof a->doubles[0]; i++)
        mw_free(a->doubles[i]);
}

/* A double from a JSON number or "nan" / "inf" / "-inf"; false for anything else. */
static bool get_double(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (!s)
        return false;
    if (strcmp(s, "nan") == 0)
        *out = NAN;
    else if (strcmp(s, "inf") == 0)
        *out = INFINITY;
    else if (strcmp(s, "-inf") == 0)
        *out = -INFINITY;
    else
        return false;
    return true;
}

/* The JSON form of a double (a new reference): a number when finite, else a string. */
static json_t *put_double(double v)
{
    if (isnan(v))
        return json_string("nan");
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    return json_real(v);
}

static bool get_number_field(const json_t *c, const char *key, double *out)
{
    return get_double(json_object_get(c, key), out);
}

/* Field `key` as a newly allocated double array (owned by the caller) into *out, its length into
 * *len. Null or absent: *out = NULL, *len = 0. False if malformed or on allocation failure. */
static bool get_double_array(const json_t *c, const char *key, double **out, size_t *len)
{
    const json_t *arr = json_object_get(c, key);
    *out = NULL;
    *len = 0;
    if (!arr || json_is_null(arr))
        return true;
    size_t n = json_array_size(arr);
    if (!json_is_array(arr) || n > MAX_ARRAY_LEN)
        return false;
    double *v = mw_malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!get_double(json_array_get(arr, i), &v[i])) {
            mw_free(v);
            return false;
        }
    }
    *out = v;
    *len = n;
    return true;
}

/* Field `key` as a non-negative length into *out; false when absent or not one. */
static bool get_length(const json_t *c, const char *key, size_t *out)
{
    const json_t *v = json_object_get(c, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (size_t)json_integer_value(v);
    return true;
}

/* The length of one array argument given as a pair (x, w) that may be NULL: `key` if given (it
 * must not exceed a present array), else that of the arrays present, which must agree. */
static bool pair_length(const json_t *c, const char *key, const double *x, size_t n_x,
                        const double *w, size_t n_w, size_t *n)
{
    if (get_length(c, key, n))
        return (!x || *n <= n_x) && (!w || *n <= n_w);
    if (x && w && n_x != n_w)
        return false;
    *n = x ? n_x : n_w;
    return true;
}

static json_t *double_array_json(const double *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, put_double(v[i]));
    return arr;
}

/* Elementwise f(u[i], v[i]) over two equally long arrays `ukey` and `vkey`. */
static json_t *run_pairwise(const json_t *c, const char *ukey, const char *vkey,
                            double (*f)(double, double), const char **err)
{
    struct case_arrays a = {0};
    size_t nu, nv;
    json_t *res = NULL;
    if (!get_double_array(c, ukey, &a.doubles[0], &nu) ||
        !get_double_array(c, vkey, &a.doubles[1], &nv) || nu != nv) {
        *err = "bad or mismatched arrays";
        goto out;
    }
    double *values = mw_malloc((nu ? nu : 1) * sizeof *values);
    if (!values) {
        *err = "out of memory";
        goto out;
    }
    for (size_t i = 0; i < nu; i++)
        values[i] = f(a.doubles[0][i], a.doubles[1][i]);
    res = json_pack("{s:o}", "value", double_array_json(values, nu));
    mw_free(values);
out:
    case_arrays_free(&a);
    return res;
}

/* mw_drift_ks_p_value(d[i], n_ref[i], n_cur[i]) over three equally long arrays. */
static json_t *run_ks_p_value(const json_t *c, const char **err)
{
    struct case_arrays a = {0};
    size_t n_d, n_ref, n_cur;
    json_t *res = NULL;
    if (!get_double_array(c, "d", &a.doubles[0], &n_d) ||
        !get_double_array(c, "n_ref", &a.doubles[1], &n_ref) ||
        !get_double_array(c, "n_cur", &a.doubles[2], &n_cur) || n_d != n_ref || n_d != n_cur) {
        *err = "bad or mismatched arrays";
        goto out;
    }
    double *values = mw_malloc((n_d ? n_d : 1) * sizeof *values);
    if (!values) {
        *err = "out of memory";
        goto out;
    }
    for (size_t i = 0; i < n_d; i++)
        values[i] = mw_drift_ks_p_value(a.doubles[0][i], a.doubles[1][i], a.doubles[2][i]);
    res = json_pack("{s:o}", "value", double_array_json(values, n_d));
    mw_free(values);
out:
    case_arrays_free(&a);
    return res;
}

/* Ops over ref_p and the window's weighted counts. */
static json_t *run_binned(const json_t *c, const char *op, const char **err)
{
    struct case_arrays a = {0};
    size_t n_ref, n_counts, n_bins;
    json_t *res = NULL;
    if (!get_double_array(c, "ref_p", &a.doubles[0], &n_ref) ||
        !get_double_array(c, "counts", &a.doubles[1], &n_counts)) {
        *err = "bad arrays";
        goto out;
    }
    if (!pair_length(c, "n_bins", a.doubles[1], n_counts, a.doubles[0], n_ref, &n_bins)) {
        *err = "array lengths differ, or n_bins exceeds them";
        goto out;
    }
    const double *ref_p = a.doubles[0];
    const double *counts = a.doubles[1];
    if (strcmp(op, "psi") == 0) {
        double eps;
        if (!get_number_field(c, "epsilon", &eps)) {
            *err = "bad epsilon";
            goto out;
        }
        res = json_pack("{s:o}", "value", put_double(mw_drift_psi(ref_p, counts, n_bins, eps)));
    } else if (strcmp(op, "js") == 0) {
        res = json_pack("{s:o}", "value", put_double(mw_drift_js_distance(ref_p, counts, n_bins)));
    } else if (strcmp(op, "ks") == 0) {
        res = json_pack("{s:o}", "value", put_double(mw_drift_ks_binned(ref_p, counts, n_bins)));
    } else {
        double stat, p;
        int rc = mw_drift_chi2(ref_p, counts, n_bins, &stat, &p);
        res = json_pack("{s:i,s:o,s:o}", "rc", rc, "statistic", put_double(stat), "p_value",
                        put_double(p));
    }
out:
    case_arrays_free(&a);
    return res;
}

/* mw_drift_wasserstein_points over ref_x, ref_w, cur_x, cur_w. */
static json_t *run_wasserstein_points(const json_t *c, const char **err)
{
    struct case_arrays a = {0};
    size_t n_ref_x, n_ref_w, n_cur_x, n_cur_w, n_ref, n_cur;
    json_t *res = NULL;
    if (!get_double_array(c, "ref_x", &a.doubles[0], &n_ref_x) ||
        !get_double_array(c, "ref_w", &a.doubles[1], &n_ref_w) ||
        !get_double_array(c, "cur_x", &a.doubles[2], &n_cur_x) ||
        !get_double_array(c, "cur_w", &a.doubles[3], &n_cur_w)) {
        *err = "bad arrays";
        goto out;
    }
    if (!pair_length(c, "n_ref", a.doubles[0], n_ref_x, a.doubles[1], n_ref_w, &n_ref) ||
        !pair_length(c, "n_cur", a.doubles[2], n_cur_x, a.doubles[3], n_cur_w, &n_cur)) {
        *err = "array lengths differ, or n_ref / n_cur exceeds them";
        goto out;
    }
    double w = mw_drift_wasserstein_points(a.doubles[0], a.doubles[1], n_ref, a.doubles[2],
                                           a.doubles[3], n_cur);
    res = json_pack("{s:o}", "value", put_double(w));
out:
    case_arrays_free(&a);
    return res;
}

/* mw_grid_slot(cuts, n_cuts, ref_min, ref_max, x[i]) over the array x. */
static json_t *run_grid_slot(const json_t *c, const char **err)
{
    struct case_arrays a = {0};
    size_t n_cuts_given, n_cuts, n_x;
    double ref_min, ref_max;
    json_t *res = NULL;
    if (!get_double_array(c, "cuts", &a.doubles[0], &n_cuts_given) ||
        !get_double_array(c, "x", &a.doubles[1], &n_x)) {
        *err = "bad cuts or x";
        goto out;
    }
    if (!pair_length(c, "n_cuts", a.doubles[0], n_cuts_given, NULL, 0, &n_cuts)) {
        *err = "n_cuts exceeds the cuts";
        goto out;
    }
    if (!get_number_field(c, "ref_min", &ref_min) || !get_number_field(c, "ref_max", &ref_max)) {
        *err = "bad ref_min or ref_max";
        goto out;
    }
    json_t *slots = json_array();
    for (size_t i = 0; slots && i < n_x; i++) {
        size_t s = mw_grid_slot(a.doubles[0], n_cuts, ref_min, ref_max, a.doubles[1][i]);
        json_array_append_new(slots, json_integer(s == MW_GRID_NONE ? -1 : (json_int_t)s));
    }
    res = json_pack("{s:o}", "slot", slots);
out:
    case_arrays_free(&a);
    return res;
}

static json_t *run_edges(const json_t *c, const char *op, const char **err)
{
    struct case_arrays a = {0};
    size_t n_edges;
    json_t *res = NULL;
    if (!get_double_array(c, "edges", &a.doubles[0], &n_edges)) {
        *err = "bad edges";
        goto out;
    }
    double *edges = a.doubles[0];
    if (strcmp(op, "edges_unique") == 0) {
        size_t n_unique = 0;
        int rc = mw_drift_edges_unique(edges, n_edges, &n_unique);
        res = json_pack("{s:i,s:o}", "rc", rc, "edges",
                        double_array_json(edges, rc ? n_edges : n_unique));
    } else {
        size_t n_x;
        if (!get_double_array(c, "x", &a.doubles[1], &n_x)) {
            *err = "bad x";
            goto out;
        }
        json_t *idx = json_array();
        for (size_t i = 0; idx && i < n_x; i++) {
            size_t b = mw_grid_region(edges, n_edges, a.doubles[1][i]);
            json_array_append_new(idx, json_integer(b == MW_GRID_NONE ? -1 : (json_int_t)b));
        }
        res = json_pack("{s:o}", "index", idx);
    }
out:
    case_arrays_free(&a);
    return res;
}

static json_t *run_rate(const json_t *c, const char **err)
{
    const char *kind = json_string_value(json_object_get(c, "kind"));
    const json_t *part = json_object_get(c, "part"), *total = json_object_get(c, "total");
    if (!kind || !json_is_integer(part) || !json_is_integer(total) ||
        json_integer_value(part) < 0 || json_integer_value(total) < 0) {
        *err = "bad rate arguments";
        return NULL;
    }
    uint64_t p = (uint64_t)json_integer_value(part), t = (uint64_t)json_integer_value(total);
    double v;
    if (strcmp(kind, "rate") == 0)
        v = mw_drift_rate(p, t);
    else if (strcmp(kind, "unseen") == 0)
        v = mw_drift_unseen_share(p, t);
    else if (strcmp(kind, "missing") == 0)
        v = mw_drift_missing_rate(p, t);
    else if (strcmp(kind, "out_of_range") == 0)
        v = mw_drift_out_of_range_rate(p, t);
    else {
        *err = "unknown rate kind";
        return NULL;
    }
    return json_pack("{s:o}", "value", put_double(v));
}

static json_t *run_case(const json_t *c, const char **err)
{
    const char *op = json_string_value(json_object_get(c, "op"));
    *err = "unknown op";
    if (!op)
        return NULL;
    if (strcmp(op, "psi") == 0 || strcmp(op, "js") == 0 || strcmp(op, "ks") == 0 ||
        strcmp(op, "chi2") == 0)
        return run_binned(c, op, err);
    if (strcmp(op, "edges_unique") == 0 || strcmp(op, "bin_index") == 0)
        return run_edges(c, op, err);
    if (strcmp(op, "grid_slot") == 0)
        return run_grid_slot(c, err);
    if (strcmp(op, "wasserstein_points") == 0)
        return run_wasserstein_points(c, err);
    if (strcmp(op, "chi2_sf") == 0)
        return run_pairwise(c, "x", "df", mw_chi2_sf, err);
    if (strcmp(op, "gamma_q") == 0)
        return run_pairwise(c, "a", "x", mw_gamma_q, err);
    if (strcmp(op, "ks_p_value") == 0)
        return run_ks_p_value(c, err);
    if (strcmp(op, "rate") == 0)
        return run_rate(c, err);
    if (strcmp(op, "out_of_range") == 0) {
        double x, lo, hi;
        if (!get_number_field(c, "x", &x) || !get_number_field(c, "ref_min", &lo) ||
            !get_number_field(c, "ref_max", &hi)) {
            *err = "bad out_of_range arguments";
            return NULL;
        }
        return json_pack("{s:b}", "value", mw_drift_out_of_range(x, lo, hi));
    }
    return NULL;
}

int main(void)
{
    json_error_t jerr;
    json_t *cases = json_loadf(stdin, 0, &jerr);
    if (!json_is_array(cases)) {
        fprintf(stderr, "drift_driver: stdin is not a JSON array: %s (line %d)\n", jerr.text,
                jerr.line);
        json_decref(cases);
        return 2;
    }
    json_t *results = json_array();
    int status = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const char *err = NULL;
        json_t *res = run_case(json_array_get(cases, i), &err);
        if (!res) {
            res = json_pack("{s:s}", "error", err ? err : "failed");
            status = 1;
        }
        json_array_append_new(results, res);
    }
    if (json_dumpf(results, stdout, JSON_COMPACT | JSON_REAL_PRECISION(17)) != 0)
        status = 1;
    fputc('\n', stdout);
    json_decref(results);
    json_decref(cases);
    return status;
}
