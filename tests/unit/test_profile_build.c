/* test_profile_build.c — CSV → reference profile (tools/profile_build.c), format 2: quantile
 * cuts of the fine grid and the PSI deciles (exact below the sample cap, within the stated
 * bound above it), deciles a bitwise subset of the cuts, quantiles equal to min or max left
 * out, exact region counts and sums, --bins and --grid-bins, the standard deviation (also of a
 * large mean with a small spread), constant and empty columns, categorical top-K and other
 * (exact and sketched), missing tokens, forced categorical, ignored and label columns, RFC 4180
 * quoting and CRLF, every CSV error with its line number, the JSON document, and a
 * 1,000,000-row file in bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "drift.h" /* the aggregator's: bins must be the ones it computes */
#include "error.h"
#include "profile.h" /* the aggregator's parser: every built profile must pass it */
#include "profile_build.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[256];

static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/mw-profile-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return rmdir(tmp_dir);
}

static void path_of(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", tmp_dir, name);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static struct mw_profile_build_options opts(void)
{
    struct mw_profile_build_options o;
    mw_profile_build_options_init(&o);
    o.model = "churn";
    o.version = "v3";
    o.created_ms = 1795717980000;
    return o;
}

/* Build a profile from CSV text; returns the MW_E* code, the profile in *out (or NULL) and the
 * message in err. */
static int build_text(const char *text, const struct mw_profile_build_options *o,
                      struct mw_built_profile **out, char *err, size_t err_size)
{
    char path[512];
    path_of("data.csv", path, sizeof path);
    write_file(path, text, strlen(text));
    int rc = mw_profile_build(path, o, out, err, err_size);
    unlink(path);
    return rc;
}

static struct mw_built_profile *build_ok(const char *text, const struct mw_profile_build_options *o)
{
    struct mw_built_profile *p = NULL;
    char err[512];
    int rc = build_text(text, o, &p, err, sizeof err);
    if (rc)
        fail_msg("build failed (%d): %s", rc, err);
    assert_non_null(p);
    return p;
}

static const struct mw_built_feature *feature(const struct mw_built_profile *p, const char *name)
{
    for (size_t i = 0; i < p->n_features; i++)
        if (strcmp(p->features[i].name, name) == 0)
            return &p->features[i];
    fail_msg("no feature %s", name);
    return NULL;
}

/* CSV text of one numeric column "x" with the values 1..n in a scrambled order. */
static char *column_1_to_n(unsigned n)
{
    size_t cap = 16 + (size_t)n * 12;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "x\n");
    for (unsigned i = 0; i < n; i++) {
        unsigned v = (unsigned)(((uint64_t)i * 7919u) % n) + 1; /* 7919 is prime: a permutation */
        len += (size_t)snprintf(text + len, cap - len, "%u\n", v);
    }
    return text;
}

/* Index of x among the n doubles of v, bit for bit, or -1. */
static long find_bits(const double *v, size_t n, double x)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&v[i], &x, sizeof x) == 0)
            return (long)i;
    return -1;
}

/* What holds for every numeric feature: cuts strictly increasing inside (min, max), deciles
 * strictly increasing and each one of the cuts (the same bits), region counts summing to
 * count. */
static void assert_regions_consistent(const struct mw_built_feature *f)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= f->n_cuts; i++)
        total += f->region_counts[i];
    assert_true(total == f->count);
    assert_true(f->n_cuts <= MW_PROFILE_BUILD_MAX_CUTS);
    for (size_t i = 0; i < f->n_cuts; i++) {
        assert_true(f->cuts[i] > f->min && f->cuts[i] < f->max);
        assert_true(i == 0 || f->cuts[i - 1] < f->cuts[i]);
        assert_false(signbit(f->cuts[i]) && f->cuts[i] == 0);
    }
    for (size_t j = 0; j < f->n_deciles; j++) {
        assert_true(j == 0 || f->deciles[j - 1] < f->deciles[j]);
        assert_true(find_bits(f->cuts, f->n_cuts, f->deciles[j]) >= 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Numeric                                                                                   */

/* 1..10000 with the default grid (100) and bins (10): cut i is numpy.quantile(1..10000,
 * i/100) = 1 + 99.99 i, so region r holds 100 r + 1 .. 100 r + 100 exactly. */
static void test_cuts_of_1_to_10000_are_exact(void **state)
{
    (void)state;
    char *text = column_1_to_n(10000);
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok(text, &o);
    const struct mw_built_feature *f = feature(p, "x");
    assert_int_equal(f->type, MW_BUILT_NUMERIC);
    assert_true(f->count == 10000 && f->missing == 0 && p->rows == 10000);
    assert_int_equal(f->sample_size, 10000);
    /* 99 fine quantiles; the deciles j/10 are the same doubles as 10j/100: no more cuts. */
    assert_int_equal(f->n_cuts, 99);
    for (int i = 1; i <= 99; i++)
        assert_true(fabs(f->cuts[i - 1] - (1 + 9999.0 * i / 100)) < 1e-9);
    for (size_t r = 0; r <= f->n_cuts; r++) {
        assert_true(f->region_counts[r] == 100);
        assert_true(f->region_sums[r] == 10000.0 * (double)r + 5050); /* exact integers */
    }
    assert_int_equal(f->n_deciles, 9);
    for (int j = 1; j <= 9; j++) /* decile j is cut 10 j, bit for bit */
        assert_int_equal(find_bits(f->cuts, f->n_cuts, f->deciles[j - 1]), 10 * j - 1);
    assert_regions_consistent(f);
    assert_true(f->min == 1 && f->max == 10000 && f->mean == 5000.5);
    /* Population std of 1..n: sqrt((n^2 - 1) / 12) = numpy.std(np.arange(1, 10001)). */
    assert_true(fabs(f->std - 2886.751331514372) <= 1e-12 * 2886.751331514372);
    assert_int_equal(p->passes, 2);
    mw_built_profile_destroy(p);
    free(text);
}

/* Above the sample cap, each quantile's rank is within the bound of profile_build.h: with m
 * samples, eps + 1/m; eps = 0.03 for m = 10,000 fails with probability 2 exp(-18) < 4e-8 per
 * quantile. The regions are still exact. */
static void test_sampled_cuts_within_bound_and_deterministic(void **state)
{
    (void)state;
    const unsigned n = 200000, m = 10000;
    char *text = column_1_to_n(n);
    struct mw_profile_build_options o = opts();
    o.sample_cap = m;
    o.n_bins = 20;
    struct mw_built_profile *p = build_ok(text, &o);
    struct mw_built_profile *again = build_ok(text, &o);
    const struct mw_built_feature *f = feature(p, "x"), *g = feature(again, "x");
    assert_int_equal(f->sample_size, m);
    assert_int_equal(f->n_cuts, 99); /* j/20 = 5j/100: the same doubles */
    assert_int_equal(f->n_deciles, 19);
    assert_int_equal(g->n_cuts, 99);
    double worst = 0;
    for (int i = 1; i <= 99; i++) {
        double q = i / 100.0;
        double share_below = ceil(f->cuts[i - 1] - 1) / n; /* values 1..n below the cut */
        worst = fmax(worst, fabs(share_below - q));
        assert_true(fabs(share_below - q) <= 0.03 + 1.0 / m);
        assert_true(f->cuts[i - 1] == g->cuts[i - 1]); /* fixed seed: same profile */
    }
    for (int j = 1; j <= 19; j++)
        assert_true(f->deciles[j - 1] == f->cuts[5 * j - 1]);
    print_message("# worst rank error with m = %u: %.4f\n", m, worst);
    assert_regions_consistent(f);
    /* Exact regions: values 1..n, so region r holds the integers in [c_r, c_{r+1}). */
    for (size_t r = 0; r <= f->n_cuts; r++) {
        double lo = r == 0 ? 1 : ceil(f->cuts[r - 1]);
        double hi = r == f->n_cuts ? n : ceil(f->cuts[r]) - 1;
        assert_true(f->region_counts[r] == (uint64_t)(hi - lo + 1));
        assert_true(f->region_sums[r] == (lo + hi) * (hi - lo + 1) / 2);
    }
    mw_built_profile_destroy(p);
    mw_built_profile_destroy(again);
    free(text);
}

/*
 * Regression guard for the std of a large mean with a small spread: 1e12 + (1..1000) in a
 * scrambled order (every value exact in double). Plain Welford's running mean rounds at the
 * scale of 1e12 and ends 7e-9 relative off; on values shifted by the first one it is exact.
 */
static void test_std_of_large_mean_small_spread(void **state)
{
    (void)state;
    const unsigned n = 1000;
    size_t cap = 16 + (size_t)n * 24;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "x\n");
    for (unsigned i = 0; i < n; i++) {
        unsigned v = (unsigned)(((uint64_t)i * 7919u) % n) + 1;
        len += (size_t)snprintf(text + len, cap - len, "%u%012u\n", 1u, v);
    }
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok(text, &o);
    const struct mw_built_feature *f = feature(p, "x");
    double want = sqrt((1000.0 * 1000.0 - 1.0) / 12.0); /* 288.67499025720952 */
    assert_true(f->min == 1e12 + 1 && f->max == 1e12 + 1000);
    assert_true(fabs(f->std - want) <= 1e-12 * want);
    mw_built_profile_destroy(p);
    free(text);
}

/* A constant column has no cut: one region with every value. Quantiles equal to max are no
 * cut either. */
static void test_constant_column_has_no_cut(void **state)
{
    (void)state;
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok("c,d\n7,1\n7,2\n7,NA\n7,2\n7,2\n", &o);
    const struct mw_built_feature *c = feature(p, "c"), *d = feature(p, "d");
    assert_int_equal(c->n_cuts, 0);
    assert_int_equal(c->n_deciles, 0);
    assert_true(c->region_counts[0] == 5 && c->region_sums[0] == 35);
    assert_true(c->std == 0.0);
    assert_regions_consistent(c);
    /* d's std: mean 1.75, variance (0.75^2 + 3 * 0.25^2) / 4 = 0.1875 */
    assert_true(fabs(d->std - 0.4330127018922193) <= 1e-15);
    /* d = {1, 2, 2, 2}: Q(q) = 1 + 3q up to q = 1/3, then 2 = max: the grid gives 33 cuts
     * (1.03 .. 1.99), the deciles 1.3, 1.6, 1.9 (Q(0.4) .. Q(0.9) are the max). */
    assert_true(d->count == 4 && d->missing == 1);
    assert_int_equal(d->n_cuts, 33);
    assert_true(fabs(d->cuts[0] - 1.03) < 1e-12 && fabs(d->cuts[32] - 1.99) < 1e-12);
    assert_int_equal(d->n_deciles, 3);
    assert_true(fabs(d->deciles[0] - 1.3) < 1e-12 && fabs(d->deciles[2] - 1.9) < 1e-12);
    assert_true(d->region_counts[0] == 1 && d->region_sums[0] == 1);
    assert_true(d->region_counts[33] == 3 && d->region_sums[33] == 6);
    for (size_t r = 1; r < 33; r++)
        assert_true(d->region_counts[r] == 0 && d->region_sums[r] == 0);
    assert_regions_consistent(d);
    mw_built_profile_destroy(p);
}

/* 30 % zeros: Q(0.1) = Q(0.2) = 0 = min is no decile (nor cut); the zeros are region 0. */
static void test_quantiles_equal_to_min_are_left_out(void **state)
{
    (void)state;
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok("z\n0\n5\n0\n1\n7\n2\n0\n3\n6\n4\n", &o);
    const struct mw_built_feature *z = feature(p, "z");
    /* sorted 0 0 0 1 2 3 4 5 6 7: Q(0.3) = 0.7, then Q(0.4) = 1.6 ... Q(0.9) = 6.1 */
    assert_int_equal(z->n_deciles, 7);
    assert_true(fabs(z->deciles[0] - 0.7) < 1e-12 && fabs(z->deciles[6] - 6.1) < 1e-12);
    /* Q(i/100) = 0 for i <= 22 (9i/100 < 2): the grid starts at Q(0.23) = 0.07. */
    assert_int_equal(z->n_cuts, 99 - 22);
    assert_true(fabs(z->cuts[0] - 0.07) < 1e-12);
    assert_true(z->region_counts[0] == 3 && z->region_sums[0] == 0);
    assert_regions_consistent(z);
    mw_built_profile_destroy(p);

    /* A quantile of -0.0 (numpy gives -0.0 for {-1, -0, -0, 1} at q = 0.5) is written +0.0. */
    p = build_ok("z\n-1\n-0\n-0\n1\n", &o);
    z = feature(p, "z");
    long zero = find_bits(z->cuts, z->n_cuts, 0.0);
    assert_true(zero >= 0);
    assert_true(find_bits(z->deciles, z->n_deciles, 0.0) >= 0);
    assert_true(z->region_counts[zero + 1] == 2); /* -0 and -0 are >= the cut 0 */
    assert_regions_consistent(z);
    mw_built_profile_destroy(p);
    /* The one quantile of --grid-bins 2 --bins 2 is -0.0 there: a cut of +0.0. */
    o.n_bins = o.n_grid_bins = 2;
    p = build_ok("z\n-1\n-0\n-0\n1\n", &o);
    z = feature(p, "z");
    assert_int_equal(z->n_cuts, 1);
    assert_int_equal(z->n_deciles, 1);
    assert_true(z->cuts[0] == 0 && !signbit(z->cuts[0]) && !signbit(z->deciles[0]));
    mw_built_profile_destroy(p);
}

/* Region sums are compensated: 10,000 times 0.1 (the double) is 1000.0000000000000555 exactly,
 * 1000.0 rounded; a plain running sum ends at 1000.0000000001588. */
static void test_region_sums_are_compensated(void **state)
{
    (void)state;
    size_t cap = 16 + 10000 * 4;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "x\n");
    for (int i = 0; i < 10000; i++)
        len += (size_t)snprintf(text + len, cap - len, "0.1\n");
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok(text, &o);
    const struct mw_built_feature *x = feature(p, "x");
    assert_int_equal(x->n_cuts, 0);
    assert_true(x->region_counts[0] == 10000);
    assert_true(x->region_sums[0] == 1000.0);
    mw_built_profile_destroy(p);
    free(text);
}

static void test_bins_and_grid_bins_options(void **state)
{
    (void)state;
    char *text = column_1_to_n(1000);
    struct mw_profile_build_options o = opts();
    o.n_bins = 4;
    struct mw_built_profile *p = build_ok(text, &o);
    const struct mw_built_feature *f = feature(p, "x");
    assert_int_equal(f->n_deciles, 3);
    assert_int_equal(f->n_cuts, 99); /* j/4 = 25j/100 */
    assert_true(fabs(f->deciles[1] - 500.5) < 1e-12);
    assert_regions_consistent(f);
    mw_built_profile_destroy(p);

    o.n_bins = 100;
    p = build_ok(text, &o);
    assert_int_equal(feature(p, "x")->n_deciles, 99);
    assert_int_equal(feature(p, "x")->n_cuts, 99);
    mw_built_profile_destroy(p);

    /* 7 bins on a grid of 10: no quantile in common, 9 + 6 cuts. */
    o.n_bins = 7;
    o.n_grid_bins = 10;
    p = build_ok(text, &o);
    f = feature(p, "x");
    assert_int_equal(f->n_cuts, 15);
    assert_int_equal(f->n_deciles, 6);
    for (int j = 1; j <= 6; j++)
        assert_true(fabs(f->deciles[j - 1] - (1 + 999.0 * j / 7)) < 1e-9);
    assert_regions_consistent(f);
    mw_built_profile_destroy(p);

    /* The grid equal to the bins: the cuts are the deciles. */
    o.n_bins = o.n_grid_bins = 5;
    p = build_ok(text, &o);
    f = feature(p, "x");
    assert_int_equal(f->n_cuts, 4);
    assert_int_equal(f->n_deciles, 4);
    assert_memory_equal(f->cuts, f->deciles, 4 * sizeof *f->cuts);
    mw_built_profile_destroy(p);
    free(text);

    /* The most cuts: --grid-bins 1000 --bins 99 on 100,000 distinct values, 999 + 98. */
    text = column_1_to_n(100000);
    o.n_bins = 99;
    o.n_grid_bins = MW_PROFILE_MAX_GRID_BINS;
    p = build_ok(text, &o);
    f = feature(p, "x");
    assert_int_equal(f->n_cuts, 999 + 98);
    assert_true(f->n_cuts <= MW_PROFILE_BUILD_MAX_CUTS);
    assert_int_equal(f->n_deciles, 98);
    assert_regions_consistent(f);
    mw_built_profile_destroy(p);
    free(text);
}

/* Whether one of the profile's notes contains `text`. */
static bool has_note(const struct mw_built_profile *p, const char *text)
{
    for (size_t i = 0; i < p->n_notes; i++)
        if (strstr(p->notes[i], text))
            return true;
    return false;
}

/* A column without a value says nothing about a distribution (a numeric one would have no
 * min, max nor region): it is left out, with a note. */
static void test_empty_column_is_left_out(void **state)
{
    (void)state;
    struct mw_profile_build_options o = opts();
    const char *cat[] = {"c"};
    o.categorical = cat;
    o.n_categorical = 1;
    struct mw_built_profile *p = build_ok("a,b,c\n1,,NA\n2,NA,\n", &o);
    assert_int_equal(p->n_features, 1);
    assert_string_equal(p->features[0].name, "a");
    assert_true(has_note(p, "column \"b\" has no values (every row is missing): left out"));
    assert_true(has_note(p, "column \"c\" has no values"));
    mw_built_profile_destroy(p);

    struct mw_built_profile *none = NULL;
    char err[512];
    o = opts();
    assert_int_equal(build_text("a,b\n,\nNA,null\n", &o, &none, err, sizeof err), MW_EPARSE);
    assert_null(none);
    assert_non_null(strstr(err, ": no column has a single value"));
}

/* ---------------------------------------------------------------------------------------- */
/* Missing values and types                                                                  */

static void test_missing_tokens(void **state)
{
    (void)state;
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok("x,y\n"
                                          "1,a\n"
                                          ",\n"
                                          "NA,na\n"
                                          "NaN,nan\n"
                                          "null,NULL\n"
                                          "Null,nUlL\n"
                                          "\"\",\"\"\n"
                                          "2,N/A\n"
                                          "3,none\n",
                                          &o);
    const struct mw_built_feature *x = feature(p, "x"), *y = feature(p, "y");
    assert_int_equal(x->type, MW_BUILT_NUMERIC);
    assert_true(x->count == 3 && x->missing == 6);
    assert_true(x->min == 1 && x->max == 3 && x->mean == 2);
    /* The std of {1, 2, 3}: missing values are left out. */
    assert_true(fabs(x->std - 0.816496580927726) <= 1e-15);
    assert_int_equal(y->type, MW_BUILT_CATEGORICAL); /* "N/A" and "none" are values */
    assert_true(isnan(y->std));
    assert_true(y->count == 3 && y->missing == 6);
    assert_int_equal(y->n_categories, 3);
    mw_built_profile_destroy(p);
}

static void test_type_inference(void **state)
{
    (void)state;
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok("a,b,c,d,e\n"
                                          "1,1e3,-0.5,1,inf\n"
                                          "2,2E-3,+4,x,1\n"
                                          "3, 7,.5,2,2\n",
                                          &o);
    assert_int_equal(feature(p, "a")->type, MW_BUILT_NUMERIC);
    assert_int_equal(feature(p, "b")->type, MW_BUILT_CATEGORICAL); /* " 7" is text */
    assert_int_equal(feature(p, "c")->type, MW_BUILT_NUMERIC);
    const struct mw_built_feature *d = feature(p, "d"), *e = feature(p, "e");
    assert_int_equal(d->type, MW_BUILT_CATEGORICAL);
    assert_true(has_note(p, "column \"d\" is categorical: \"x\" on line 3 is not a number"));
    assert_int_equal(e->type, MW_BUILT_CATEGORICAL); /* not finite */
    assert_true(feature(p, "c")->min == -0.5);
    mw_built_profile_destroy(p);
}

static void test_forced_categorical_ignore_and_label(void **state)
{
    (void)state;
    struct mw_profile_build_options o = opts();
    const char *cat[] = {"zip"};
    const char *ign[] = {"id"};
    o.categorical = cat;
    o.n_categorical = 1;
    o.ignore = ign;
    o.n_ignore = 1;
    o.label = "churned";
    struct mw_built_profile *p = build_ok("id,zip,age,churned\n"
                                          "1,01000,30,1\n"
                                          "2,75001,40,0\n"
                                          "3,01000,NA,0\n",
                                          &o);
    assert_int_equal(p->n_features, 2);
    assert_string_equal(p->features[0].name, "zip");
    assert_string_equal(p->features[1].name, "age");
    const struct mw_built_feature *zip = feature(p, "zip");
    assert_int_equal(zip->type, MW_BUILT_CATEGORICAL);
    assert_int_equal(zip->n_categories, 2);
    assert_string_equal(zip->categories[0].value, "01000"); /* kept as text, not 1000 */
    assert_true(fabs(zip->categories[0].share - 2.0 / 3) < 1e-15);
    assert_int_equal(zip->column, 1);
    mw_built_profile_destroy(p);

    /* A column named in the options must exist. */
    const char *bad[] = {"nope"};
    o.ignore = bad;
    char err[512];
    assert_int_equal(build_text("id,zip,age,churned\n1,2,3,4\n", &o, &p, err, sizeof err),
                     MW_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err, "--ignore nope: no such column"));

    /* Nothing left. */
    struct mw_profile_build_options o2 = opts();
    o2.ignore = ign;
    o2.n_ignore = 1;
    assert_int_equal(build_text("id\n1\n", &o2, &p, err, sizeof err), MW_EINVAL);
}

/* ---------------------------------------------------------------------------------------- */
/* Categorical                                                                               */

/* Category ci occurs i + 1 times, i = 0..99, interleaved. */
static char *categories_text(void)
{
    size_t cap = 64 + 5050 * 8;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "c\n");
    for (int round = 0; round < 100; round++)
        for (int i = round; i < 100; i++)
            len += (size_t)snprintf(text + len, cap - len, "c%d\n", i);
    return text;
}

static void test_categorical_top_k_and_other(void **state)
{
    (void)state;
    char *text = categories_text();
    struct mw_profile_build_options o = opts();
    o.max_categories = 10;
    struct mw_built_profile *p = build_ok(text, &o);
    const struct mw_built_feature *f = feature(p, "c");
    assert_int_equal(f->type, MW_BUILT_CATEGORICAL);
    assert_true(f->count == 5050);
    assert_false(f->sketched);
    assert_true(f->distinct_lower_bound == 100);
    assert_int_equal(f->n_categories, 10);
    double sum = f->other;
    for (int i = 0; i < 10; i++) {
        char want[16];
        snprintf(want, sizeof want, "c%d", 99 - i);
        assert_string_equal(f->categories[i].value, want);
        assert_true(f->categories[i].count == (uint64_t)(100 - i));
        sum += f->categories[i].share;
    }
    assert_true(f->other_count == 4095); /* 1 + ... + 90 */
    assert_true(fabs(sum - 1) < 1e-12);
    mw_built_profile_destroy(p);

    /* The default keeps 50; ties are ordered by value. */
    o.max_categories = 50;
    p = build_ok("c\nb\na\nb\na\nc\n", &o);
    f = feature(p, "c");
    assert_string_equal(f->categories[0].value, "a");
    assert_string_equal(f->categories[1].value, "b");
    assert_string_equal(f->categories[2].value, "c");
    assert_true(f->other == 0);
    mw_built_profile_destroy(p);
    free(text);
}

/* More distinct values than the table holds: the space-saving sketch finds the heavy
 * categories and the third pass makes their shares exact. */
static void test_categorical_sketch_gives_exact_shares(void **state)
{
    (void)state;
    const int heavy[] = {1000, 900, 800, 700, 600};
    size_t cap = 64 + 20000 * 12;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "c\n");
    int left[5];
    memcpy(left, heavy, sizeof left);
    for (int i = 0; i < 5000; i++) { /* singletons interleaved with the heavy ones */
        len += (size_t)snprintf(text + len, cap - len, "u%d\n", i);
        for (int h = 0; h < 5; h++)
            if (left[h] > 0 && i % 5 < 4) {
                len += (size_t)snprintf(text + len, cap - len, "h%d\n", h);
                left[h]--;
            }
    }
    struct mw_profile_build_options o = opts();
    o.max_categories = 5;
    o.exact_categories = 100;
    struct mw_built_profile *p = build_ok(text, &o);
    const struct mw_built_feature *f = feature(p, "c");
    assert_true(f->sketched);
    assert_int_equal(p->passes, 3);
    assert_true(f->count == 5000 + 4000);
    assert_int_equal(f->n_categories, 5);
    for (int h = 0; h < 5; h++) {
        char want[16];
        snprintf(want, sizeof want, "h%d", h);
        assert_string_equal(f->categories[h].value, want);
        assert_true(f->categories[h].count == (uint64_t)heavy[h]);
        assert_true(f->categories[h].share == heavy[h] / 9000.0);
    }
    assert_true(f->other_count == 5000);
    mw_built_profile_destroy(p);
    free(text);
}

static void test_long_and_non_utf8_values_count_as_other(void **state)
{
    (void)state;
    char text[1024];
    char longv[MW_PROFILE_MAX_CATEGORY_BYTES + 2];
    memset(longv, 'z', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    snprintf(text, sizeof text, "c\na\n%s\n\xff\xfe\na\n", longv);
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok(text, &o);
    const struct mw_built_feature *f = feature(p, "c");
    assert_int_equal(f->n_categories, 1);
    assert_true(f->count == 4 && f->other_count == 2);
    assert_true(has_note(p, "1 values longer than 256 bytes count as other"));
    assert_true(has_note(p, "1 values that are not UTF-8 count as other"));
    mw_built_profile_destroy(p);
}

/* ---------------------------------------------------------------------------------------- */
/* CSV syntax                                                                                */

static void test_quoted_fields_and_crlf(void **state)
{
    (void)state;
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok("\xEF\xBB\xBF"
                                          "name,\"x, y\",q\r\n"
                                          "\"a, b\",1,\"say \"\"hi\"\"\"\r\n"
                                          "\"multi\r\nline\",2,\"\"\"\"\r\n"
                                          "\r\n"
                                          "plain,\"3\",x\r\n"
                                          "\"a, b\",4,", /* no final newline, empty last field */
                                          &o);
    assert_true(p->rows == 4);
    const struct mw_built_feature *name = feature(p, "name"), *x = feature(p, "x, y"),
                                  *q = feature(p, "q");
    assert_int_equal(name->n_categories, 3);
    assert_string_equal(name->categories[0].value, "a, b");
    assert_string_equal(name->categories[1].value, "multi\r\nline");
    assert_string_equal(name->categories[2].value, "plain");
    assert_int_equal(x->type, MW_BUILT_NUMERIC);
    assert_true(x->count == 4 && x->max == 4);
    assert_true(q->count == 3 && q->missing == 1);
    assert_string_equal(q->categories[0].value, "\"");
    assert_string_equal(q->categories[1].value, "say \"hi\"");
    mw_built_profile_destroy(p);
}

/* Build `text` and expect MW_EPARSE with exactly `want` as the message, after the path. */
static void expect_error(const char *text, int want_rc, const char *want)
{
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = NULL;
    char err[512], path[512], full[1024];
    int rc = build_text(text, &o, &p, err, sizeof err);
    path_of("data.csv", path, sizeof path);
    snprintf(full, sizeof full, "%s%s", path, want);
    if (rc != want_rc || strcmp(err, full) != 0)
        fail_msg("rc %d (want %d), message \"%s\", want \"%s\"", rc, want_rc, err, full);
    assert_null(p);
}

static void test_csv_errors_name_the_line(void **state)
{
    (void)state;
    expect_error("a,b,c\n1,2,3\n4,5\n", MW_EPARSE, ":3: expected 3 fields, got 2");
    expect_error("a,b,c\n1,2,3\n4,5,6,7\n", MW_EPARSE, ":3: expected 3 fields, got 4");
    /* Lines count the newlines inside quotes and the blank lines. */
    expect_error("a,b\n\"x\ny\",1\n\n2,3\n4\n", MW_EPARSE, ":6: expected 2 fields, got 1");
    expect_error("a,b\r\n1,2\r\n3\r\n", MW_EPARSE, ":3: expected 2 fields, got 1");
    expect_error("a,b\n1,2\n3,\"open\n4,5\n", MW_EPARSE,
                 ":3: unterminated quoted field (the file ends inside quotes)");
    expect_error("a,,c\n1,2,3\n", MW_EPARSE, ":1: column 2 has an empty name");
    expect_error("a,b,a\n1,2,3\n", MW_EPARSE, ":1: duplicate column name \"a\" (columns 1 and 3)");
    expect_error("a,b\n\"1\"x,2\n", MW_EPARSE,
                 ":2: unexpected character after a closing quote (a quote inside a quoted "
                 "field is written \"\")");
    expect_error("", MW_EPARSE, ": empty file: expected a header row");
    expect_error("\n\n", MW_EPARSE, ": empty file: expected a header row");
    expect_error("a,b\n", MW_EPARSE, ": no data rows after the header");
}

static void test_over_long_record(void **state)
{
    (void)state;
    size_t n = MW_PROFILE_MAX_RECORD_BYTES + 100;
    char *text = malloc(n + 64);
    assert_non_null(text);
    int len = snprintf(text, 64, "a,b\n1,2\n3,");
    memset(text + len, '9', n);
    memcpy(text + len + n, "\n5,6\n", 6);
    char want[128];
    snprintf(want, sizeof want, ":3: record longer than %d bytes", MW_PROFILE_MAX_RECORD_BYTES);
    expect_error(text, MW_EPARSE, want);
    /* Just under the limit is fine. */
    memcpy(text + len + 1000, "\n5,6\n", 6);
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = build_ok(text, &o);
    assert_true(p->rows == 3);
    mw_built_profile_destroy(p);
    free(text);
}

static void test_refuses_stdin_pipes_and_bad_options(void **state)
{
    (void)state;
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p = NULL;
    char err[512];
    assert_int_equal(mw_profile_build("-", &o, &p, err, sizeof err), MW_EINVAL);
    assert_non_null(strstr(err, "standard input"));
    char fifo[512];
    path_of("pipe.csv", fifo, sizeof fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int rc = mw_profile_build(fifo, &o, &p, err, sizeof err);
    unlink(fifo);
    assert_int_equal(rc, MW_EINVAL);
    assert_non_null(strstr(err, "not a regular file"));
    assert_int_equal(mw_profile_build("/nonexistent/x.csv", &o, &p, err, sizeof err), MW_EIO);
    assert_non_null(strstr(err, "/nonexistent/x.csv: No such file"));

    o.n_bins = 1;
    assert_int_equal(build_text("a\n1\n", &o, &p, err, sizeof err), MW_EINVAL);
    o.n_bins = 101;
    assert_int_equal(build_text("a\n1\n", &o, &p, err, sizeof err), MW_EINVAL);
    o = opts();
    o.n_grid_bins = 1;
    assert_int_equal(build_text("a\n1\n", &o, &p, err, sizeof err), MW_EINVAL);
    assert_string_equal(err, "--grid-bins 1: must be 2..1000");
    o.n_grid_bins = 1001;
    assert_int_equal(build_text("a\n1\n", &o, &p, err, sizeof err), MW_EINVAL);
    o.n_grid_bins = 9; /* fewer than the 10 bins */
    assert_int_equal(build_text("a\n1\n", &o, &p, err, sizeof err), MW_EINVAL);
    assert_string_equal(err, "--grid-bins 9: must be at least --bins (10)");
    o = opts();
    o.max_categories = 0;
    assert_int_equal(build_text("a\n1\n", &o, &p, err, sizeof err), MW_EINVAL);
    o = opts();
    o.version = "";
    assert_int_equal(build_text("a\n1\n", &o, &p, err, sizeof err), MW_EINVAL);
    o.version = "v\n3";
    assert_int_equal(build_text("a\n1\n", &o, &p, err, sizeof err), MW_EINVAL);
    o = opts();
    o.model = "churn model"; /* the aggregator's rule: [A-Za-z0-9._-] */
    assert_int_equal(build_text("a\n1\n", &o, &p, err, sizeof err), MW_EINVAL);
    assert_non_null(strstr(err, "--model churn model: 1 to 128 characters from [A-Za-z0-9._-]"));
    assert_null(p);
    mw_built_profile_destroy(NULL);
}

/* Feature names the aggregator refuses are refused here, unless the column is ignored. */
static void test_feature_name_rules(void **state)
{
    (void)state;
    expect_error("a,b|c\n1,2\n", MW_EPARSE,
                 ":1: column 2 (\"b|c\"): a feature name cannot contain '|' (rename the column, "
                 "or --ignore it)");
    struct mw_profile_build_options o = opts();
    const char *ign[] = {"b|c"};
    o.ignore = ign;
    o.n_ignore = 1;
    struct mw_built_profile *p = build_ok("a,b|c\n1,2\n", &o);
    assert_int_equal(p->n_features, 1);
    mw_built_profile_destroy(p);

    /* At most MW_PROFILE_BUILD_MAX_FEATURES features. */
    const size_t n = MW_PROFILE_BUILD_MAX_FEATURES + 1;
    char *text = malloc(n * 16 + 16);
    assert_non_null(text);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, 16, "%sf%zu", i ? "," : "", i);
    len += (size_t)snprintf(text + len, 16, "\n");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, 16, "%s1", i ? "," : "");
    snprintf(text + len, 16, "\n");
    char err[512];
    o = opts();
    assert_int_equal(build_text(text, &o, &p, err, sizeof err), MW_EINVAL);
    assert_non_null(strstr(err, ": 1025 feature columns, a profile holds at most 1024"));
    const char *one[] = {"f0"}; /* one column fewer is fine */
    o.ignore = one;
    o.n_ignore = 1;
    p = build_ok(text, &o);
    assert_int_equal(p->n_features, MW_PROFILE_BUILD_MAX_FEATURES);
    mw_built_profile_destroy(p);
    free(text);
}

/* ---------------------------------------------------------------------------------------- */
/* JSON                                                                                      */

static void test_json_document(void **state)
{
    (void)state;
    struct mw_profile_build_options o = opts();
    struct mw_built_profile *p =
        build_ok("age,country,k\n20,fr,5\n30,de,5\nNA,fr,5\n40,fr,5\n", &o);
    json_t *doc = mw_built_profile_to_json(p);
    assert_non_null(doc);
    assert_int_equal(json_integer_value(json_object_get(doc, "format")), 2);
    assert_string_equal(json_string_value(json_object_get(doc, "model")), "churn");
    assert_string_equal(json_string_value(json_object_get(doc, "version")), "v3");
    assert_true(json_integer_value(json_object_get(doc, "created_ms")) == 1795717980000);
    assert_true(json_integer_value(json_object_get(doc, "rows")) == 4);
    json_t *features = json_object_get(doc, "features");
    assert_int_equal(json_object_size(features), 3);
    json_t *age = json_object_get(features, "age");
    assert_string_equal(json_string_value(json_object_get(age, "type")), "numeric");
    assert_int_equal(json_integer_value(json_object_get(age, "count")), 3);
    assert_int_equal(json_integer_value(json_object_get(age, "missing")), 1);
    assert_true(json_real_value(json_object_get(age, "mean")) == 30);
    /* {20, 30, 40}: sqrt(200 / 3), ddof 0 */
    assert_true(fabs(json_real_value(json_object_get(age, "std")) - 8.16496580927726) <= 1e-14);
    assert_null(json_object_get(age, "edges")); /* format 1's, gone */
    assert_null(json_object_get(age, "proportions"));
    /* {20, 30, 40}: Q(q) = 20 + 20 q, 99 cuts; 20 in region 0, 30 in 50 (Q(0.5) = 30), 40 in
     * 99. */
    json_t *cuts = json_object_get(age, "cuts"), *counts = json_object_get(age, "region_counts");
    json_t *sums = json_object_get(age, "region_sums"), *deciles = json_object_get(age, "deciles");
    assert_int_equal(json_array_size(cuts), 99);
    assert_int_equal(json_array_size(counts), 100);
    assert_int_equal(json_array_size(sums), 100);
    assert_int_equal(json_array_size(deciles), 9);
    for (size_t r = 0; r < 100; r++) {
        json_int_t want = r == 0 || r == 50 || r == 99;
        assert_true(json_is_integer(json_array_get(counts, r)));
        assert_true(json_integer_value(json_array_get(counts, r)) == want);
        double want_sum = r == 0 ? 20 : r == 50 ? 30 : r == 99 ? 40 : 0;
        assert_true(json_real_value(json_array_get(sums, r)) == want_sum);
    }
    for (size_t j = 0; j < 9; j++) /* decile j is cut 10 j + 9, the same double */
        assert_true(json_real_value(json_array_get(deciles, j)) ==
                    json_real_value(json_array_get(cuts, 10 * j + 9)));
    json_t *country = json_object_get(features, "country");
    assert_string_equal(json_string_value(json_object_get(country, "type")), "categorical");
    assert_null(json_object_get(country, "std"));
    json_t *cats = json_object_get(country, "categories");
    assert_true(json_real_value(json_object_get(cats, "fr")) == 0.75);
    assert_true(json_real_value(json_object_get(cats, "de")) == 0.25);
    assert_true(json_real_value(json_object_get(country, "other")) == 0);
    /* Column order is kept when printed. */
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_non_null(strstr(text, "{\"format\":2,\"model\":\"churn\","));
    assert_non_null(strstr(text, "\"features\":{\"age\""));
    assert_non_null(strstr(text,
                           "\"k\":{\"type\":\"numeric\",\"count\":4,\"missing\":0,\"min\":5.0,"
                           "\"max\":5.0,\"mean\":5.0,\"std\":0.0,\"cuts\":[],"
                           "\"region_counts\":[4],\"region_sums\":[20.0],\"deciles\":[]}"));
    free(text);
    json_decref(doc);
    mw_built_profile_destroy(p);
}

/* The contract with the aggregator: the limits agree, at the largest grid every cut survives
 * the JSON round trip bit for bit (%.17g), and a value lands in the region drift.h's
 * mw_grid_region gives it over the cuts. */
static void test_regions_agree_with_the_aggregator(void **state)
{
    (void)state;
    assert_int_equal(MW_PROFILE_BUILD_MAX_FEATURES, MW_PROFILE_MAX_FEATURES);
    assert_true(MW_PROFILE_MAX_MAX_CATEGORIES <= MW_PROFILE_MAX_CATEGORIES);
    assert_int_equal(MW_PROFILE_BUILD_MAX_CUTS, 1098);
    assert_true(MW_PROFILE_BUILD_MAX_CUTS <= MW_PROFILE_MAX_CUTS);

    size_t cap = 64 + 20000 * 40;
    char *text = malloc(cap);
    assert_non_null(text);
    size_t len = (size_t)snprintf(text, cap, "x,k,const,cat,zip\n");
    for (unsigned i = 0; i < 20000; i++)
        len += (size_t)snprintf(text + len, cap - len, "%u.5,%u,3,c%u,%s\n",
                                (unsigned)((i * 7919u) % 20000), i % 7, i % 1500,
                                i % 10 ? "\"a,b\"" : "NA");
    struct mw_profile_build_options o = opts();
    o.n_bins = MW_PROFILE_MAX_BINS;
    o.n_grid_bins = MW_PROFILE_MAX_GRID_BINS;
    o.max_categories = MW_PROFILE_MAX_MAX_CATEGORIES;
    struct mw_built_profile *built = build_ok(text, &o);
    json_t *doc = mw_built_profile_to_json(built);
    char *json = json_dumps(doc, JSON_COMPACT);
    assert_non_null(json);
    json_error_t jerr;
    json_t *parsed = json_loads(json, 0, &jerr);
    assert_non_null(parsed);
    json_t *features = json_object_get(parsed, "features");
    assert_int_equal(json_object_size(features), 5);
    /* The aggregator's parser takes the largest profile as built. */
    struct mw_profile *agg = NULL;
    char err[256] = "";
    if (mw_profile_parse(json, strlen(json), &agg, err, sizeof err) != 0)
        fail_msg("the aggregator refuses a built profile: %s", err);
    assert_int_equal(mw_profile_find(agg, "x")->n_cuts, 999);
    assert_int_equal(mw_profile_find(agg, "x")->n_psi_bins, 99 + 3);
    mw_profile_free(agg);

    const struct mw_built_feature *x = feature(built, "x");
    assert_int_equal(x->n_cuts, 999); /* j/100 = 10j/1000: the deciles add none */
    assert_int_equal(x->n_deciles, 99);
    json_t *px = json_object_get(features, "x");
    json_t *cuts = json_object_get(px, "cuts"), *deciles = json_object_get(px, "deciles");
    assert_int_equal(json_array_size(cuts), x->n_cuts);
    for (size_t i = 0; i < x->n_cuts; i++)
        assert_true(json_real_value(json_array_get(cuts, i)) == x->cuts[i]);
    for (size_t j = 0; j < x->n_deciles; j++)
        assert_true(json_real_value(json_array_get(deciles, j)) == x->deciles[j]);
    /* The aggregator's bin index puts each value where profile build counted it. */
    uint64_t *counts = calloc(x->n_cuts + 1, sizeof *counts);
    assert_non_null(counts);
    for (unsigned v = 0; v < 20000; v++)
        counts[mw_grid_region(x->cuts, x->n_cuts, v + 0.5)]++;
    for (size_t i = 0; i <= x->n_cuts; i++)
        assert_true(counts[i] == x->region_counts[i]);
    free(counts);

    const struct mw_built_feature *k = feature(built, "k"); /* 0..6: 5 cuts at the integers */
    assert_int_equal(k->n_cuts, 5);
    assert_true(k->cuts[0] == 1 && k->cuts[4] == 5);
    assert_regions_consistent(k);
    assert_int_equal(feature(built, "const")->n_cuts, 0);
    json_t *cat = json_object_get(features, "cat");
    assert_int_equal(json_object_size(json_object_get(cat, "categories")), 1000);
    json_t *zip = json_object_get(features, "zip");
    assert_true(json_integer_value(json_object_get(zip, "missing")) == 2000);
    assert_non_null(json_object_get(json_object_get(zip, "categories"), "a,b"));

    json_decref(parsed);
    free(json);
    json_decref(doc);
    mw_built_profile_destroy(built);
    free(text);
}

/* ---------------------------------------------------------------------------------------- */
/* Bounded memory                                                                            */

#if defined(__SANITIZE_ADDRESS__)
/* Under AddressSanitizer the resident set also holds the shadow memory, the redzones and the
 * quarantine of freed blocks, a multiple of what the code allocates, so the bound applies to
 * the peak of live heap bytes instead, followed through the allocator's hooks (declared here:
 * GCC does not ship sanitizer/allocator_interface.h). */
size_t __sanitizer_get_current_allocated_bytes(void);
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
static size_t peak_heap_bytes;

static void track_heap_peak(const volatile void *block, size_t n_bytes)
{
    (void)block;
    (void)n_bytes;
    size_t live_bytes = __sanitizer_get_current_allocated_bytes();
    if (live_bytes > peak_heap_bytes)
        peak_heap_bytes = live_bytes;
}

static void ignore_free(const volatile void *block)
{
    (void)block;
}

#define PEAK_MEMORY "peak live heap"
static long peak_memory_kib(void)
{
    static int hooked;
    if (!hooked) {
        hooked = 1;
        __sanitizer_install_malloc_and_free_hooks(track_heap_peak, ignore_free);
        track_heap_peak(NULL, 0);
    }
    return (long)(peak_heap_bytes / 1024);
}
#else
#define PEAK_MEMORY "peak RSS"
static long peak_memory_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}
#endif

/* 1,000,000 rows (about 40 MB): uniform, integer, a skewed categorical column with 500,000
 * distinct values (sketched), an id column ignored. Peak RSS (under AddressSanitizer, the
 * peak of live heap bytes) stays below 64 MiB. */
static void test_million_rows_in_bounded_memory(void **state)
{
    (void)state;
    const unsigned n = 1000000;
    char path[512];
    path_of("big.csv", path, sizeof path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("id,x,k,city\n", f);
    uint64_t rng = 42;
    for (unsigned i = 0; i < n; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(rng >> 11) / 9007199254740992.0;
        if (i % 2 == 0) /* half the rows in 5 cities, half unique */
            fprintf(f, "%u,%.6f,%u,c%u\n", i, u, i % 1000, i % 10 / 2);
        else
            fprintf(f, "%u,%.6f,%u,u%u\n", i, u, i % 1000, i);
    }
    assert_int_equal(fclose(f), 0);
    long before_kib = peak_memory_kib();

    struct mw_profile_build_options o = opts();
    const char *ign[] = {"id"};
    o.ignore = ign;
    o.n_ignore = 1;
    struct mw_built_profile *p = NULL;
    char err[512];
    int rc = mw_profile_build(path, &o, &p, err, sizeof err);
    unlink(path);
    if (rc)
        fail_msg("%s", err);
    long peak_kib = peak_memory_kib();
    print_message("# %s %ld KiB before, %ld KiB after building from 1,000,000 rows\n",
                  PEAK_MEMORY, before_kib, peak_kib);
    assert_true(peak_kib < 64 * 1024);

    assert_true(p->rows == n);
    const struct mw_built_feature *x = feature(p, "x"), *k = feature(p, "k"),
                                  *city = feature(p, "city");
    assert_int_equal(x->sample_size, MW_PROFILE_SAMPLE_CAP);
    assert_int_equal(x->n_cuts, 99);
    assert_int_equal(x->n_deciles, 9);
    for (int i = 1; i <= 9; i++) /* uniform on [0, 1): decile ~ i/10, within 0.01 + sampling */
        assert_true(fabs(x->deciles[i - 1] - i / 10.0) < 0.01 + 1e-3);
    assert_regions_consistent(x);
    /* Each fine region holds ~1 % of the rows (sd of a region's share ~3e-4 at m = 100,000),
     * and its sum is ~its count times its midpoint. */
    for (size_t r = 0; r <= x->n_cuts; r++) {
        double lo = r == 0 ? x->min : x->cuts[r - 1], hi = r == x->n_cuts ? x->max : x->cuts[r];
        assert_true(fabs((double)x->region_counts[r] / n - 0.01) < 0.003);
        assert_true(fabs(x->region_sums[r] / (double)x->region_counts[r] - (lo + hi) / 2) <
                    (hi - lo) / 10);
    }
    assert_true(k->min == 0 && k->max == 999);
    assert_regions_consistent(k);
    assert_true(city->sketched);
    assert_int_equal(p->passes, 3);
    assert_int_equal(city->n_categories, 50);
    for (int c = 0; c < 5; c++) {
        char want[16];
        snprintf(want, sizeof want, "c%d", c);
        assert_string_equal(city->categories[c].value, want);
        assert_true(city->categories[c].count == n / 10);
    }
    for (size_t c = 5; c < city->n_categories; c++) /* the rest: singletons, exact count 1 */
        assert_true(city->categories[c].count == 1);
    assert_true(city->other_count == n / 2 - 45);
    mw_built_profile_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuts_of_1_to_10000_are_exact),
        cmocka_unit_test(test_sampled_cuts_within_bound_and_deterministic),
        cmocka_unit_test(test_std_of_large_mean_small_spread),
        cmocka_unit_test(test_constant_column_has_no_cut),
        cmocka_unit_test(test_quantiles_equal_to_min_are_left_out),
        cmocka_unit_test(test_region_sums_are_compensated),
        cmocka_unit_test(test_bins_and_grid_bins_options),
        cmocka_unit_test(test_empty_column_is_left_out),
        cmocka_unit_test(test_missing_tokens),
        cmocka_unit_test(test_type_inference),
        cmocka_unit_test(test_forced_categorical_ignore_and_label),
        cmocka_unit_test(test_categorical_top_k_and_other),
        cmocka_unit_test(test_categorical_sketch_gives_exact_shares),
        cmocka_unit_test(test_long_and_non_utf8_values_count_as_other),
        cmocka_unit_test(test_quoted_fields_and_crlf),
        cmocka_unit_test(test_csv_errors_name_the_line),
        cmocka_unit_test(test_over_long_record),
        cmocka_unit_test(test_refuses_stdin_pipes_and_bad_options),
        cmocka_unit_test(test_feature_name_rules),
        cmocka_unit_test(test_json_document),
        cmocka_unit_test(test_regions_agree_with_the_aggregator),
        cmocka_unit_test(test_million_rows_in_bounded_memory),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
