/*
 * signals_perf.h — model quality in a window, once labels have joined predictions: label
 * coverage and delay, and binary, multi-class and regression metrics (perf_metrics.h defines
 * them and their fields). A family without joined pairs has no metrics (has_* false).
 */
#ifndef MW_AGGREGATOR_SIGNALS_PERF_H
#define MW_AGGREGATOR_SIGNALS_PERF_H

#include "perf_metrics.h"
#include "schema.h"

#include <stdbool.h>
#include <stdint.h>

/* One class of a multi-class model: precision, recall, F1 and support (tp + fn). */
struct mw_perf_class_signal {
    char name[MW_PERF_CLASS_NAME_MAX];
    struct mw_perf_prf prf;
    uint64_t support;
};

struct mw_perf_signals {
    struct mw_perf_coverage_metrics labels;
    bool has_binary;
    struct mw_perf_binary_metrics binary;
    bool has_multiclass;
    struct mw_perf_multiclass_metrics multiclass;
    uint32_t n_classes; /* the named classes, in order of first appearance */
    struct mw_perf_class_signal classes[MW_PERF_MAX_CLASSES];
    bool has_regression;
    struct mw_perf_regression_metrics regression;
};

/* Compute the performance of `w` into *out (self-contained: nothing borrowed). Returns 0 or
 * MW_ENOMEM. */
int mw_perf_signals_compute(const struct mw_window *w, struct mw_perf_signals *out);

#endif
