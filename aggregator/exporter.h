/*
 * exporter.h — the latest closed window of every model as Prometheus gauges on /metrics.
 *
 * Every refresh interval the exporter reads (window_read.h), for each model and version, the
 * newest fine window that is closed — final under the model's watermark, or ended at least
 * http.signals_delay ago by the wall clock (schema.h) — computes its signals (signals_service,
 * _slo, _cost, _perf, and _drift against the version's profile), and keeps the numbers the
 * gauges need. Scrapes render that snapshot, so they cost no Redis round trip
 * and existing Prometheus rules and Grafana dashboards can use the signals:
 *
 *   modelwatch_model_requests{model,version}            modelwatch_model_error_rate{...}
 *   modelwatch_model_availability{...}                  modelwatch_model_latency_attainment
 *   modelwatch_model_latency_seconds{model,version,quantile}  (a summary: quantiles only)
 *   modelwatch_model_cost_per_1k{...}                   modelwatch_model_window_start_seconds
 *   modelwatch_model_accuracy / _roc_auc / _log_loss / _f1 / _mae / _rmse / _mape
 *   modelwatch_model_label_coverage
 *   modelwatch_model_drift_psi{model,version,feature}   (and _js_distance, _ks, _ks_p_value,
 *                                                        _wasserstein, _wasserstein_normed,
 *                                                        _chi2_p_value, _unseen_share,
 *                                                        _missing_rate, _out_of_range_rate,
 *                                                        _type_violation_rate, _verdict)
 *   modelwatch_metrics_series_omitted{kind}             what the bounds below left out
 *
 * In base units: seconds, and ratios in 0..1. Bounded by metrics.max_model_versions entries
 * and, per entry, metrics.drift_features and metrics.drift_top_k features.
 */
#ifndef MW_AGGREGATOR_EXPORTER_H
#define MW_AGGREGATOR_EXPORTER_H

#include "aggregator_config.h"
#include "prom.h"
#include "signals_drift.h"
#include "store.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct mw_exporter;

/* Start refreshing every `interval_ms` and register a collector on `reg`. */
int mw_exporter_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg,
                       struct mw_store *store, struct mw_prom_registry *reg, uint64_t interval_ms,
                       struct mw_exporter **out);
/* Stop; frees once the loop has closed the timer and pending replies are in. Accepts NULL. */
void mw_exporter_destroy(struct mw_exporter *e);

/* ---- internal, exposed for tests ---------------------------------------------------------- */

/* The window gauges of one (model, version), in base units; NaN where a gauge has no sample. */
struct mw__export_window {
    double requests, error_rate, availability, latency_attainment, start_s, cost_per_1k;
    double label_coverage, accuracy, f1, roc_auc, log_loss, mae, rmse, mape;
    double latency_s[4]; /* p50, p90, p95, p99 */
};

struct mw__export_feature {
    char *name;                            /* owned */
    struct mw_drift_feature_signal signal; /* signal.feature is `name` */
};

struct mw__export_entry {
    char *model, *version; /* owned */
    bool has_window;
    struct mw__export_window window;
    bool has_drift;
    size_t n_features;
    struct mw__export_feature *features; /* owned */
};

/* What a refresh builds and a scrape renders. Zero-initialised is empty. */
struct mw__export_snapshot {
    size_t n, cap;
    struct mw__export_entry *entries;
};

/* A new entry for (model, version) (copied) at the end of `s`, or NULL when out of memory. The
 * pointer is valid until the next addition. */
struct mw__export_entry *mw__export_entry_add(struct mw__export_snapshot *s, const char *model,
                                              const char *version);
/* Set an entry's drift to a copy of `ds` (feature names copied). Returns 0 or MW_ENOMEM. */
int mw__export_entry_set_drift(struct mw__export_entry *e, const struct mw_drift_signals *ds);
/* Free what `s` holds and empty it. Accepts NULL. */
void mw__export_snapshot_free(struct mw__export_snapshot *s);

/* Bound a refresh's snapshot in place, as a refresh does before it is published: entries in
 * (model, version) order, at most metrics.max_model_versions of them; per entry the drift of
 * the allowed features that drifted most (by verdict level, then PSI, then name). Says how many
 * entries and features were left out. */
void mw__exporter_bound(const struct mw_aggregator_config *cfg, struct mw__export_snapshot *s,
                        size_t *omitted_entries, size_t *omitted_features);
/* A drift verdict as a number: drift 2, possible 1, none 0, insufficient data -1; false (no
 * number) for unknown. */
bool mw__exporter_verdict_level(enum mw_drift_verdict verdict, double *level);

#endif
