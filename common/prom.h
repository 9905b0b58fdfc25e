/*
 * prom.h — Prometheus text exposition (format 0.0.4) for /metrics.
 *
 * A registry holds metric families (counter, gauge or histogram, fixed label names) and their
 * series. Static series are updated in place from the owning loop thread; values that only exist
 * at scrape time (per-model window signals) come from collectors called while rendering. The
 * output passes `promtool check metrics`: HELP and TYPE for every family, counters named
 * *_total, `le` only on histogram buckets and `quantile` only on summaries, label values escaped
 * (and made valid UTF-8, which Prometheus requires of the whole scrape), families rendered once
 * each in registration order.
 *
 * Not thread-safe: update and render from one thread (the binary's event loop).
 */
#ifndef MW_COMMON_PROM_H
#define MW_COMMON_PROM_H

#include "buf.h"

#include <stddef.h>
#include <stdint.h>

enum mw_prom_type {
    MW_PROM_COUNTER,
    MW_PROM_GAUGE,
    MW_PROM_HISTOGRAM, /* static: mw_prom_histogram_add; collectors: _bucket/_sum/_count samples */
    MW_PROM_SUMMARY,   /* collectors only: `quantile` samples, optional _sum/_count */
};

struct mw_prom_registry;
struct mw_prom_family;
struct mw_prom_series;
struct mw_prom_writer;

struct mw_prom_registry *mw_prom_registry_create(void);
void mw_prom_registry_destroy(struct mw_prom_registry *reg); /* accepts NULL */

/*
 * Register a counter or gauge family. `label_names` is NULL-terminated (NULL for none). The
 * registry owns the family. Returns NULL on an invalid name (not [a-zA-Z_:][a-zA-Z0-9_:]*, a
 * counter not ending in _total, a duplicate, a reserved label), another type, or out of memory.
 */
struct mw_prom_family *mw_prom_family_add(struct mw_prom_registry *reg, const char *name,
                                          const char *help, enum mw_prom_type type,
                                          const char *const *label_names);

/*
 * Register a histogram family with the `n_bounds` finite, strictly increasing upper bounds
 * `bounds` (copied; +Inf is implicit). Each series renders name_bucket{...,le="B"} (cumulative),
 * name_bucket{...,le="+Inf"}, name_sum and name_count. Returns NULL as mw_prom_family_add does,
 * and for bad bounds or a label named `le`.
 */
struct mw_prom_family *mw_prom_histogram_add(struct mw_prom_registry *reg, const char *name,
                                             const char *help, const char *const *label_names,
                                             const double *bounds, size_t n_bounds);

/* The series for these label values (as many as the family has names; NULL when it has none),
 * created at 0 on first use. Owned by the family; stable for the registry's life. NULL only when
 * out of memory. */
struct mw_prom_series *mw_prom_series_get(struct mw_prom_family *fam,
                                          const char *const *label_values);
/* The existing series for these label values, or NULL: never creates one (for callers that
 * bound their cardinality before creating). */
struct mw_prom_series *mw_prom_series_find(const struct mw_prom_family *fam,
                                           const char *const *label_values);
/* Number of series of the family (0 for NULL). */
size_t mw_prom_family_size(const struct mw_prom_family *fam);
/* Position of the series in its family's creation order: 0, 1, ... (stable; lets an owner keep
 * per-series state in an array of its own). */
size_t mw_prom_series_index(const struct mw_prom_series *s);

void mw_prom_series_add(struct mw_prom_series *s, double delta); /* accepts NULL */
void mw_prom_series_set(struct mw_prom_series *s, double value); /* accepts NULL */
double mw_prom_series_value(const struct mw_prom_series *s);     /* 0 for NULL; count of a
                                                                    histogram */

/* Histogram series: `n` observations of `value` go to the first bucket whose bound is >= value
 * (+Inf for larger ones) and to _count. The sum is kept apart (mw_prom_histogram_add_sum) so
 * pre-bucketed data can bring its exact sum. NaN, and series of other types, are ignored. */
void mw_prom_histogram_count(struct mw_prom_series *s, double value, uint64_t n);
/* Add to _sum; negative or NaN deltas are ignored (the sum of a histogram only grows here). */
void mw_prom_histogram_add_sum(struct mw_prom_series *s, double delta);
/* One observation: count and sum. */
void mw_prom_histogram_observe(struct mw_prom_series *s, double value);
/* Cumulative count of bucket `i` (0..n_bounds; n_bounds is +Inf) and the sum; 0 when absent. */
uint64_t mw_prom_histogram_bucket(const struct mw_prom_series *s, size_t i);
double mw_prom_histogram_sum(const struct mw_prom_series *s);

/* A label-less family with its one series, in a single call. Returns the series or NULL. */
struct mw_prom_series *mw_prom_simple(struct mw_prom_registry *reg, const char *name,
                                      const char *help, enum mw_prom_type type);

/* Collectors run during mw_prom_render, after the static families, in registration order. */
typedef void (*mw_prom_collect_fn)(struct mw_prom_writer *w, void *arg);
int mw_prom_add_collector(struct mw_prom_registry *reg, mw_prom_collect_fn fn, void *arg);

/* Inside a collector: start a family, then write its samples. label_names/label_values are
 * parallel and NULL-terminated (NULL for none). NaN and ±Inf are written as Prometheus does.
 * A sample's name is its family's (NULL means that), or for a histogram the family's name with
 * _bucket, _sum or _count, for a summary with _sum or _count; `le` labels only on _bucket
 * samples, `quantile` only on a summary's quantile samples. */
void mw_prom_write_family(struct mw_prom_writer *w, const char *name, const char *help,
                          enum mw_prom_type type);
void mw_prom_write_sample(struct mw_prom_writer *w, const char *name,
                          const char *const *label_names, const char *const *label_values,
                          double value);

/* Copy `in` into `out` (`size` >= 4 bytes) as valid UTF-8: each invalid byte becomes U+FFFD, and
 * the copy is cut at a character boundary to fit. For owners that key series by text they did
 * not check, so two raw values never render as the same series. Returns the length written. */
size_t mw_prom_utf8_copy(const char *in, char *out, size_t size);

/* Render everything into `out` (appended). Returns 0 or MW_EFULL / MW_ENOMEM. */
int mw_prom_render(struct mw_prom_registry *reg, struct mw_buf *out);

#endif
