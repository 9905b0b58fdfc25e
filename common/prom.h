/*
 * prom.h — Prometheus text exposition (format 0.0.4) for /metrics.
 *
 * A registry holds metric families (counter or gauge, fixed label names) and their series.
 * Static series are updated in place from the owning loop thread; values that only exist at
 * scrape time (per-model window signals) come from collectors called while rendering. The output
 * passes `promtool check metrics`: HELP and TYPE for every family, counters named *_total,
 * label values escaped, families rendered once each in registration order.
 *
 * Not thread-safe: update and render from one thread (the binary's event loop).
 */
#ifndef MW_COMMON_PROM_H
#define MW_COMMON_PROM_H

#include "buf.h"

#include <stddef.h>

enum mw_prom_type {
    MW_PROM_COUNTER,
    MW_PROM_GAUGE,
};

struct mw_prom_registry;
struct mw_prom_family;
struct mw_prom_series;
struct mw_prom_writer;

struct mw_prom_registry *mw_prom_registry_create(void);
void mw_prom_registry_destroy(struct mw_prom_registry *reg); /* accepts NULL */

/*
 * Register a family. `label_names` is NULL-terminated (NULL for none). The registry owns the
 * family. Returns NULL on an invalid name (not [a-zA-Z_:][a-zA-Z0-9_:]*, a counter not ending
 * in _total, a duplicate) or out of memory.
 */
struct mw_prom_family *mw_prom_family_add(struct mw_prom_registry *reg, const char *name,
                                          const char *help, enum mw_prom_type type,
                                          const char *const *label_names);

/* The series for these label values (as many as the family has names; NULL when it has none),
 * created at 0 on first use. Owned by the family; stable for the registry's life. NULL only when
 * out of memory. */
struct mw_prom_series *mw_prom_series_get(struct mw_prom_family *fam,
                                          const char *const *label_values);

void mw_prom_series_add(struct mw_prom_series *s, double delta); /* accepts NULL */
void mw_prom_series_set(struct mw_prom_series *s, double value); /* accepts NULL */
double mw_prom_series_value(const struct mw_prom_series *s);     /* 0 for NULL */

/* A label-less family with its one series, in a single call. Returns the series or NULL. */
struct mw_prom_series *mw_prom_simple(struct mw_prom_registry *reg, const char *name,
                                      const char *help, enum mw_prom_type type);

/* Collectors run during mw_prom_render, after the static families, in registration order. */
typedef void (*mw_prom_collect_fn)(struct mw_prom_writer *w, void *arg);
int mw_prom_add_collector(struct mw_prom_registry *reg, mw_prom_collect_fn fn, void *arg);

/* Inside a collector: start a family, then write its samples. label_names/label_values are
 * parallel and NULL-terminated (NULL for none). NaN and ±Inf are written as Prometheus does. */
void mw_prom_write_family(struct mw_prom_writer *w, const char *name, const char *help,
                          enum mw_prom_type type);
void mw_prom_write_sample(struct mw_prom_writer *w, const char *name,
                          const char *const *label_names, const char *const *label_values,
                          double value);

/* Render everything into `out` (appended). Returns 0 or MW_EFULL / MW_ENOMEM. */
int mw_prom_render(struct mw_prom_registry *reg, struct mw_buf *out);

#endif
