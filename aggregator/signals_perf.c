/* signals_perf.c — a window's performance fields as metrics (signals_perf.h). */
#include "signals_perf.h"

#include "alloc.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

static bool has_prefix(const char *name, const char *prefix)
{
    return strncmp(name, prefix, strlen(prefix)) == 0;
}

static int binary(const struct mw_window_fields *f, struct mw_perf_signals *out)
{
    struct mw_perf_binary *acc = NULL;
    if (mw_perf_binary_create(MW_PERF_THRESHOLD_DEFAULT, MW_PERF_AUC_BINS_DEFAULT, &acc) != 0)
        return MW_ENOMEM;
    for (size_t i = 0; i < f->n; i++)
        if (has_prefix(f->names[i], MW_FIELD_PERF_BINARY_PREFIX))
            mw_perf_binary_add_field(acc, f->names[i], f->values[i]);
    mw_perf_binary_compute(acc, &out->binary);
    mw_perf_binary_destroy(acc);
    out->has_binary = out->binary.n > 0;
    return 0;
}

static int multiclass(const struct mw_window_fields *f, struct mw_perf_signals *out)
{
    struct mw_perf_multiclass *acc = mw_calloc(1, sizeof *acc);
    if (!acc)
        return MW_ENOMEM;
    mw_perf_multiclass_reset(acc);
    for (size_t i = 0; i < f->n; i++)
        if (has_prefix(f->names[i], MW_FIELD_PERF_MULTICLASS_PREFIX))
            mw_perf_multiclass_add_field(acc, f->names[i], f->values[i]);
    mw_perf_multiclass_compute(acc, &out->multiclass);
    out->has_multiclass = out->multiclass.n > 0;
    for (uint32_t slot = 0; out->has_multiclass && slot < acc->n_classes; slot++) {
        struct mw_perf_class_signal *c = &out->classes[out->n_classes++];
        snprintf(c->name, sizeof c->name, "%s", acc->names[slot]);
        c->prf = mw_perf_multiclass_class(acc, slot, &c->support);
    }
    mw_free(acc);
    return 0;
}

static void regression(const struct mw_window_fields *f, struct mw_perf_signals *out)
{
    struct mw_perf_regression acc;
    mw_perf_regression_reset(&acc);
    for (size_t i = 0; i < f->n; i++)
        if (has_prefix(f->names[i], MW_FIELD_PERF_REGRESSION_PREFIX))
            mw_perf_regression_add_field(&acc, f->names[i], f->values[i]);
    mw_perf_regression_compute(&acc, &out->regression);
    out->has_regression = out->regression.n > 0;
}

static int coverage(const struct mw_window_fields *f, struct mw_perf_signals *out)
{
    struct mw_perf_coverage *acc = mw_calloc(1, sizeof *acc);
    if (!acc)
        return MW_ENOMEM;
    mw_perf_coverage_reset(acc);
    for (size_t i = 0; i < f->n; i++)
        if (has_prefix(f->names[i], MW_FIELD_PERF_COVERAGE_PREFIX))
            mw_perf_coverage_add_field(acc, f->names[i], f->values[i]);
    mw_perf_coverage_compute(acc, &out->labels);
    mw_free(acc);
    return 0;
}

int mw_perf_signals_compute(const struct mw_window *w, struct mw_perf_signals *out)
{
    memset(out, 0, sizeof *out);
    int rc = coverage(&w->fields, out);
    rc = rc ? rc : binary(&w->fields, out);
    rc = rc ? rc : multiclass(&w->fields, out);
    if (!rc)
        regression(&w->fields, out);
    return rc;
}
