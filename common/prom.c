/*
 * prom.c — Prometheus text exposition (format 0.0.4).
 *
 * A registry keeps its families in registration order; each family keeps its series in creation
 * order (for rendering) and in a chained hash table keyed by the label values (for lookup, so a
 * registry with thousands of series stays cheap to update). A series is one allocation holding
 * its label values and its pre-escaped label text `{a="x",b="y"}`, so rendering does no escaping
 * for static series.
 *
 * A histogram series keeps its per-bucket (not cumulative) counts in the same allocation and
 * renders them cumulatively, with the bounds formatted once per family in their shortest
 * round-tripping spelling, so every replica writes the same `le` text for the same bound.
 *
 * Collectors write families that only exist at scrape time. Their output is grouped per family
 * name while they run (two per-model collectors may both write `mw_drift_psi`), then appended
 * after the static families, each family once, in first-written order: the exposition format
 * requires every family's samples to be contiguous under a single HELP/TYPE.
 */
#include "prom.h"

#include "alloc.h"
#include "error.h"
#include "hash.h"
#include "table.h"
#include "log.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNTER_SUFFIX "_total"
/* Bound on one series' rendered label text; keeps a hostile label value from growing a buffer
 * without limit. */
#define MAX_LABEL_TEXT_BYTES (64u * 1024u)

struct mw_prom_series {
    uint64_t hash;
    double value; /* a histogram's count */
    double sum;   /* histograms */
    const struct mw_prom_family *fam;
    uint64_t *buckets; /* histograms: n_bounds + 1 per-bucket counts, +Inf last */
    size_t index;      /* in the family's creation order */
    bool counter;
    const char *labels_text; /* "" or `{name="escaped value",...}` */
    const char *values[];    /* the family's n_labels raw values */
};

struct mw_prom_family {
    struct mw_prom_family *next;
    char *name;
    char *help;
    enum mw_prom_type type;
    char **label_names; /* n_labels entries */
    size_t n_labels;
    struct mw_prom_series **order; /* creation order, for rendering */
    size_t n_series;
    size_t cap_series;
    struct mw_table by_values; /* series keyed by their label values */
    double *bounds;            /* histograms: n_bounds finite upper bounds, increasing */
    char **bound_text;
    size_t n_bounds;
};

struct collector {
    mw_prom_collect_fn fn;
    void *arg;
};

struct mw_prom_registry {
    struct mw_prom_family *first;
    struct mw_prom_family *last;
    struct collector *collectors;
    size_t n_collectors;
    size_t cap_collectors;
};

/* A family written by collectors during one render: its HELP/TYPE header then its samples. */
struct dyn_family {
    char *name;
    enum mw_prom_type type;
    bool skip; /* invalid, or clashes with a static family: its samples are dropped */
    struct mw_buf text;
};

struct mw_prom_writer {
    const struct mw_prom_registry *reg;
    struct dyn_family *fams;
    size_t n_fams;
    size_t cap_fams;
    size_t cur;          /* index of the family being written; SIZE_MAX for none */
    size_t budget_bytes; /* what the output buffer can still take */
    size_t used_bytes;   /* summed over fams[].text */
    size_t n_dropped;    /* samples refused (bad names, no family) */
    size_t n_refused;    /* families refused (bad names, clash with a static family) */
    int rc;              /* first error; later writes are ignored */
};

/* ---- names and text ---------------------------------------------------------------------- */

static bool is_name_char(char c, bool first, bool colon_ok)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (c == ':')
        return colon_ok;
    return !first && c >= '0' && c <= '9';
}

static bool valid_metric_name(const char *name)
{
    if (!name || !*name)
        return false;
    for (size_t i = 0; name[i]; i++) {
        if (!is_name_char(name[i], i == 0, true))
            return false;
    }
    return true;
}

/* Label names are like metric names without ':'; names starting with "__" are reserved. */
static bool valid_label_name(const char *name)
{
    if (!name || !*name || strncmp(name, "__", 2) == 0)
        return false;
    for (size_t i = 0; name[i]; i++) {
        if (!is_name_char(name[i], i == 0, false))
            return false;
    }
    return true;
}

static bool valid_family(const char *name, enum mw_prom_type type)
{
    if (!valid_metric_name(name))
        return false;
    if (type == MW_PROM_GAUGE || type == MW_PROM_HISTOGRAM || type == MW_PROM_SUMMARY)
        return true;
    if (type != MW_PROM_COUNTER)
        return false;
    size_t len = strlen(name);
    size_t suffix_len = sizeof COUNTER_SUFFIX - 1;
    return len > suffix_len && strcmp(name + len - suffix_len, COUNTER_SUFFIX) == 0;
}

/* `le` belongs to histogram buckets and `quantile` to summaries: anywhere else Prometheus and
 * promtool take them for what they are not. The caller says which of the two this label set
 * may hold. */
static bool valid_label_names(const char *const *names, size_t n, bool le_ok, bool quantile_ok)
{
    for (size_t i = 0; i < n; i++) {
        if (!valid_label_name(names[i]) || (!le_ok && strcmp(names[i], "le") == 0) ||
            (!quantile_ok && strcmp(names[i], "quantile") == 0))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[i], names[j]) == 0)
                return false;
        }
    }
    return true;
}

static size_t count_strings(const char *const *strings)
{
    size_t n = 0;
    while (strings && strings[n])
        n++;
    return n;
}

#define REPLACEMENT_CHAR "\xef\xbf\xbd" /* U+FFFD */

/* Length of the well-formed UTF-8 sequence at `p` (1 to 4 bytes), or 0 when there is none:
 * a stray continuation byte, an overlong form, a surrogate, beyond U+10FFFF, or cut short (the
 * terminating NUL is not a continuation byte, so reading stops there). */
static size_t utf8_sequence(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

size_t mw_prom_utf8_copy(const char *in, char *out, size_t size)
{
    size_t at = 0;
    const unsigned char *p = (const unsigned char *)(in ? in : "");
    if (size == 0)
        return 0;
    while (*p) {
        size_t n = utf8_sequence(p);
        const char *from = n ? (const char *)p : REPLACEMENT_CHAR;
        size_t len = n ? n : sizeof REPLACEMENT_CHAR - 1;
        if (at + len >= size)
            break;
        memcpy(out + at, from, len);
        at += len;
        p += n ? n : 1;
    }
    out[at] = '\0';
    return at;
}

/* Append `s` escaped: backslash and newline always, the double quote when `quote` (label
 * values; HELP text leaves quotes alone). Bytes that are not well-formed UTF-8 become U+FFFD:
 * Prometheus refuses a whole scrape over one bad label value. */
static int append_escaped(struct mw_buf *out, const char *s, bool quote)
{
    const unsigned char *run = (const unsigned char *)s;
    const unsigned char *p = run;
    for (;;) {
        const char *esc = NULL;
        if (*p == '\\') {
            esc = "\\\\";
        } else if (*p == '\n') {
            esc = "\\n";
        } else if (*p == '"' && quote) {
            esc = "\\\"";
        } else if (*p >= 0x80) {
            size_t n = utf8_sequence(p);
            if (n) {
                p += n;
                continue;
            }
            esc = REPLACEMENT_CHAR;
        } else if (*p != '\0') {
            p++;
            continue;
        }
        int rc = mw_buf_append(out, run, (size_t)(p - run));
        if (!rc && esc)
            rc = mw_buf_append_str(out, esc);
        if (rc || *p == '\0')
            return rc;
        run = ++p;
    }
}

/* `{n1="v1",n2="v2"}` for parallel NULL-terminated arrays; nothing when there are no labels. */
static int append_labels(struct mw_buf *out, const char *const *names, const char *const *values,
                         size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = mw_buf_append_str(out, i == 0 ? "{" : ",");
        if (!rc)
            rc = mw_buf_append_str(out, names[i]);
        if (!rc)
            rc = mw_buf_append_str(out, "=\"");
        if (!rc)
            rc = append_escaped(out, values[i] ? values[i] : "", true);
        if (!rc)
            rc = mw_buf_append_str(out, "\"");
    }
    if (!rc && n)
        rc = mw_buf_append_str(out, "}");
    return rc;
}

/* Prometheus' spelling of a sample value: integers up to 2^53 in plain digits, other finite
 * values with 17 significant digits (round-trips a double), NaN, +Inf and -Inf. */
static void format_value(double v, char *buf, size_t size)
{
    if (isnan(v))
        snprintf(buf, size, "NaN");
    else if (isinf(v))
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    else if (v == 0.0)
        snprintf(buf, size, "0"); /* also -0 */
    else if (v == trunc(v) && fabs(v) <= 9007199254740992.0)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.17g", v);
}

/* The shortest spelling of `v` that reads back as the same double (for `le` bounds). */
static void format_bound(double v, char *buf, size_t size)
{
    char best[40] = "";
    for (int precision = 1; precision <= 17; precision++) {
        char text[40];
        snprintf(text, sizeof text, "%.*g", precision, v);
        if (strtod(text, NULL) == v && (!best[0] || strlen(text) < strlen(best)))
            memcpy(best, text, sizeof best);
    }
    snprintf(buf, size, "%s", best);
}

static const char *type_name(enum mw_prom_type type)
{
    switch (type) {
    case MW_PROM_COUNTER:
        return "counter";
    case MW_PROM_HISTOGRAM:
        return "histogram";
    case MW_PROM_SUMMARY:
        return "summary";
    default:
        return "gauge";
    }
}

static int append_header(struct mw_buf *out, const char *name, const char *help,
                         enum mw_prom_type type)
{
    int rc = mw_buf_printf(out, "# HELP %s ", name);
    if (!rc)
        rc = append_escaped(out, help ? help : "", false);
    if (!rc)
        rc = mw_buf_printf(out, "\n# TYPE %s %s\n", name, type_name(type));
    return rc;
}

static int append_sample(struct mw_buf *out, const char *name, const char *labels_text,
                         double value)
{
    char num[40];
    format_value(value, num, sizeof num);
    return mw_buf_printf(out, "%s%s %s\n", name, labels_text, num);
}

/* ---- registry and families --------------------------------------------------------------- */

struct mw_prom_registry *mw_prom_registry_create(void)
{
    return mw_calloc(1, sizeof(struct mw_prom_registry));
}

static void family_free(struct mw_prom_family *fam)
{
    if (!fam)
        return;
    for (size_t i = 0; i < fam->n_series; i++)
        mw_free(fam->order[i]);
    for (size_t i = 0; i < fam->n_labels; i++)
        mw_free(fam->label_names[i]);
    mw_free(fam->label_names);
    for (size_t i = 0; fam->bound_text && i < fam->n_bounds; i++)
        mw_free(fam->bound_text[i]);
    mw_free(fam->bound_text);
    mw_free(fam->bounds);
    mw_free(fam->order);
    mw_table_free(&fam->by_values);
    mw_free(fam->help);
    mw_free(fam->name);
    mw_free(fam);
}

void mw_prom_registry_destroy(struct mw_prom_registry *reg)
{
    if (!reg)
        return;
    struct mw_prom_family *fam = reg->first;
    while (fam) {
        struct mw_prom_family *next = fam->next;
        family_free(fam);
        fam = next;
    }
    mw_free(reg->collectors);
    mw_free(reg);
}

static const struct mw_prom_family *find_family(const struct mw_prom_registry *reg,
                                                const char *name)
{
    for (const struct mw_prom_family *f = reg->first; f; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

static bool same_values(const void *item, const void *key);

static struct mw_prom_family *family_new(const char *name, const char *help, enum mw_prom_type type,
                                         const char *const *label_names, size_t n_labels)
{
    struct mw_prom_family *fam = mw_calloc(1, sizeof *fam);
    if (!fam)
        return NULL;
    fam->type = type;
    fam->name = mw_strdup(name);
    fam->help = mw_strdup(help ? help : "");
    fam->label_names = mw_calloc(n_labels, sizeof *fam->label_names);
    mw_table_init(&fam->by_values, same_values);
    if (!fam->name || !fam->help || !fam->label_names)
        goto fail;
    for (; fam->n_labels < n_labels; fam->n_labels++) {
        fam->label_names[fam->n_labels] = mw_strdup(label_names[fam->n_labels]);
        if (!fam->label_names[fam->n_labels])
            goto fail;
    }
    return fam;
fail:
    family_free(fam);
    return NULL;
}

static void refused(const char *name)
{
    char quoted[128];
    MW_LOG_WARN("prom", "metric family refused", "name=%s",
                mw_log_quote(name ? name : "", quoted, sizeof quoted));
}

static void append_family(struct mw_prom_registry *reg, struct mw_prom_family *fam)
{
    if (reg->last)
        reg->last->next = fam;
    else
        reg->first = fam;
    reg->last = fam;
}

struct mw_prom_family *mw_prom_family_add(struct mw_prom_registry *reg, const char *name,
                                          const char *help, enum mw_prom_type type,
                                          const char *const *label_names)
{
    size_t n_labels = count_strings(label_names);
    if (!reg || (type != MW_PROM_COUNTER && type != MW_PROM_GAUGE) || !valid_family(name, type) ||
        !valid_label_names(label_names, n_labels, false, false) || find_family(reg, name)) {
        refused(name);
        return NULL;
    }
    struct mw_prom_family *fam = family_new(name, help, type, label_names, n_labels);
    if (!fam)
        return NULL;
    append_family(reg, fam);
    return fam;
}

static bool valid_bounds(const double *bounds, size_t n)
{
    if (!bounds || n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return false;
    }
    return true;
}

struct mw_prom_family *mw_prom_histogram_add(struct mw_prom_registry *reg, const char *name,
                                             const char *help, const char *const *label_names,
                                             const double *bounds, size_t n_bounds)
{
    size_t n_labels = count_strings(label_names);
    if (!reg || !valid_family(name, MW_PROM_HISTOGRAM) ||
        !valid_label_names(label_names, n_labels, false, false) ||
        !valid_bounds(bounds, n_bounds) || find_family(reg, name)) {
        refused(name);
        return NULL;
    }
    struct mw_prom_family *fam = family_new(name, help, MW_PROM_HISTOGRAM, label_names, n_labels);
    if (!fam)
        return NULL;
    fam->bounds = mw_calloc(n_bounds, sizeof *fam->bounds);
    fam->bound_text = mw_calloc(n_bounds, sizeof *fam->bound_text);
    if (!fam->bounds || !fam->bound_text) {
        family_free(fam);
        return NULL;
    }
    fam->n_bounds = n_bounds;
    for (size_t i = 0; i < n_bounds; i++) {
        char text[40];
        fam->bounds[i] = bounds[i];
        format_bound(bounds[i], text, sizeof text);
        fam->bound_text[i] = mw_strdup(text);
        if (!fam->bound_text[i]) {
            family_free(fam);
            return NULL;
        }
    }
    append_family(reg, fam);
    return fam;
}

/* ---- series ------------------------------------------------------------------------------ */

static uint64_t hash_values(const char *const *values, size_t n)
{
    uint64_t h = MW_HASH_INIT;
    for (size_t i = 0; i < n; i++)
        h = mw_hash_byte(mw_hash_str(h, values[i]), 0xff);
    return h;
}

/* mw_table equality: a series against a label-value tuple of its family. */
static bool same_values(const void *item, const void *key)
{
    const struct mw_prom_series *s = item;
    const char *const *values = key;
    for (size_t i = 0; i < s->fam->n_labels; i++) {
        if (strcmp(s->values[i], values[i]) != 0)
            return false;
    }
    return true;
}

/* One allocation: the struct, the value pointers, a histogram's bucket counts, the value strings
 * and the label text. */
static struct mw_prom_series *series_new(const struct mw_prom_family *fam,
                                         const char *const *values, uint64_t hash)
{
    struct mw_buf text;
    mw_buf_init(&text, MAX_LABEL_TEXT_BYTES);
    if (append_labels(&text, (const char *const *)fam->label_names, values, fam->n_labels)) {
        mw_buf_free(&text);
        return NULL;
    }
    size_t n_counts = fam->type == MW_PROM_HISTOGRAM ? fam->n_bounds + 1 : 0;
    size_t size = sizeof(struct mw_prom_series) + fam->n_labels * sizeof(char *) +
                  n_counts * sizeof(uint64_t) + text.len + 1;
    for (size_t i = 0; i < fam->n_labels; i++)
        size += strlen(values[i]) + 1;
    struct mw_prom_series *s = mw_calloc(1, size);
    if (s) {
        /* values[] holds pointers, so the counts that follow it are 8-byte aligned */
        s->buckets = n_counts ? (uint64_t *)&s->values[fam->n_labels] : NULL;
        char *p = (char *)&s->values[fam->n_labels] + n_counts * sizeof(uint64_t);
        for (size_t i = 0; i < fam->n_labels; i++) {
            size_t len = strlen(values[i]) + 1;
            memcpy(p, values[i], len);
            s->values[i] = p;
            p += len;
        }
        memcpy(p, text.len ? text.data : "", text.len + 1);
        s->labels_text = p;
        s->hash = hash;
        s->fam = fam;
        s->counter = fam->type == MW_PROM_COUNTER || fam->type == MW_PROM_HISTOGRAM;
    }
    mw_buf_free(&text);
    return s;
}

static int append_to_order(struct mw_prom_family *fam, struct mw_prom_series *s)
{
    if (fam->n_series == fam->cap_series) {
        size_t cap = fam->cap_series ? fam->cap_series * 2 : 8;
        struct mw_prom_series **order = mw_realloc(fam->order, cap * sizeof *order);
        if (!order)
            return MW_ENOMEM;
        fam->order = order;
        fam->cap_series = cap;
    }
    s->index = fam->n_series;
    fam->order[fam->n_series++] = s;
    return 0;
}

/* Label values must be non-NULL, one per label name; a family without labels takes NULL (its
 * single series). Returns NULL for a NULL family or missing values as well as out of memory. */
struct mw_prom_series *mw_prom_series_get(struct mw_prom_family *fam,
                                          const char *const *label_values)
{
    if (!fam || (fam->n_labels && !label_values))
        return NULL;
    for (size_t i = 0; i < fam->n_labels; i++) {
        if (!label_values[i])
            return NULL;
    }
    uint64_t hash = hash_values(label_values, fam->n_labels);
    struct mw_prom_series *s = mw_table_find(&fam->by_values, hash, label_values);
    if (s)
        return s;
    s = series_new(fam, label_values, hash);
    if (!s || append_to_order(fam, s)) {
        mw_free(s);
        return NULL;
    }
    if (mw_table_insert(&fam->by_values, hash, s) != 0) {
        fam->n_series--; /* it was appended last */
        mw_free(s);
        return NULL;
    }
    return s;
}

struct mw_prom_series *mw_prom_series_find(const struct mw_prom_family *fam,
                                           const char *const *label_values)
{
    if (!fam || (fam->n_labels && !label_values))
        return NULL;
    for (size_t i = 0; i < fam->n_labels; i++) {
        if (!label_values[i])
            return NULL;
    }
    return mw_table_find(&fam->by_values, hash_values(label_values, fam->n_labels), label_values);
}

size_t mw_prom_family_size(const struct mw_prom_family *fam)
{
    return fam ? fam->n_series : 0;
}

size_t mw_prom_series_index(const struct mw_prom_series *s)
{
    return s ? s->index : 0;
}

/* Counters only go up: a negative or NaN delta on a counter is ignored. A histogram changes
 * only through the histogram calls. */
void mw_prom_series_add(struct mw_prom_series *s, double delta)
{
    if (!s || s->buckets || (s->counter && !(delta >= 0.0)))
        return;
    s->value += delta;
}

void mw_prom_series_set(struct mw_prom_series *s, double value)
{
    if (s && !s->buckets)
        s->value = value;
}

void mw_prom_histogram_count(struct mw_prom_series *s, double value, uint64_t n)
{
    if (!s || !s->buckets || isnan(value))
        return;
    const struct mw_prom_family *fam = s->fam;
    size_t lo = 0, hi = fam->n_bounds; /* first bound >= value; n_bounds is +Inf */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (fam->bounds[mid] >= value)
            hi = mid;
        else
            lo = mid + 1;
    }
    s->buckets[lo] += n;
    s->value += (double)n;
}

void mw_prom_histogram_add_sum(struct mw_prom_series *s, double delta)
{
    if (s && s->buckets && delta >= 0.0)
        s->sum += delta;
}

void mw_prom_histogram_observe(struct mw_prom_series *s, double value)
{
    mw_prom_histogram_count(s, value, 1);
    mw_prom_histogram_add_sum(s, value);
}

uint64_t mw_prom_histogram_bucket(const struct mw_prom_series *s, size_t i)
{
    if (!s || !s->buckets || i > s->fam->n_bounds)
        return 0;
    uint64_t total = 0;
    for (size_t b = 0; b <= i; b++)
        total += s->buckets[b];
    return total;
}

double mw_prom_histogram_sum(const struct mw_prom_series *s)
{
    return s && s->buckets ? s->sum : 0.0;
}

double mw_prom_series_value(const struct mw_prom_series *s)
{
    return s ? s->value : 0.0;
}

struct mw_prom_series *mw_prom_simple(struct mw_prom_registry *reg, const char *name,
                                      const char *help, enum mw_prom_type type)
{
    struct mw_prom_family *fam = mw_prom_family_add(reg, name, help, type, NULL);
    return fam ? mw_prom_series_get(fam, NULL) : NULL;
}

int mw_prom_add_collector(struct mw_prom_registry *reg, mw_prom_collect_fn fn, void *arg)
{
    if (!reg || !fn)
        return MW_EINVAL;
    if (reg->n_collectors == reg->cap_collectors) {
        size_t cap = reg->cap_collectors ? reg->cap_collectors * 2 : 4;
        struct collector *c = mw_realloc(reg->collectors, cap * sizeof *c);
        if (!c)
            return MW_ENOMEM;
        reg->collectors = c;
        reg->cap_collectors = cap;
    }
    reg->collectors[reg->n_collectors++] = (struct collector){fn, arg};
    return 0;
}

/* ---- collectors' writer ------------------------------------------------------------------ */

static struct dyn_family *find_dyn(struct mw_prom_writer *w, const char *name, size_t *index)
{
    for (size_t i = 0; i < w->n_fams; i++) {
        if (strcmp(w->fams[i].name, name) == 0) {
            *index = i;
            return &w->fams[i];
        }
    }
    return NULL;
}

static struct dyn_family *new_dyn(struct mw_prom_writer *w, const char *name,
                                  enum mw_prom_type type)
{
    if (w->n_fams == w->cap_fams) {
        size_t cap = w->cap_fams ? w->cap_fams * 2 : 8;
        struct dyn_family *fams = mw_realloc(w->fams, cap * sizeof *fams);
        if (!fams)
            return NULL;
        w->fams = fams;
        w->cap_fams = cap;
    }
    struct dyn_family *d = &w->fams[w->n_fams];
    d->name = mw_strdup(name);
    if (!d->name)
        return NULL;
    d->type = type;
    d->skip = false;
    mw_buf_init(&d->text, w->budget_bytes);
    w->n_fams++;
    return d;
}

/* Account for what was just appended to family `d` (from `len_before`), keeping the sum of all
 * families within the output's budget; on failure drop the partial line and latch the error. */
static void dyn_account(struct mw_prom_writer *w, struct dyn_family *d, size_t len_before, int rc)
{
    if (!rc && w->used_bytes + (d->text.len - len_before) > w->budget_bytes)
        rc = MW_EFULL;
    if (rc) {
        d->text.len = len_before; /* keep only whole lines */
        if (d->text.data)
            d->text.data[len_before] = '\0';
        w->rc = rc;
        return;
    }
    w->used_bytes += d->text.len - len_before;
}

void mw_prom_write_family(struct mw_prom_writer *w, const char *name, const char *help,
                          enum mw_prom_type type)
{
    if (!w || w->rc)
        return;
    size_t index;
    struct dyn_family *d = name ? find_dyn(w, name, &index) : NULL;
    if (d) {
        /* The same family again: more samples under its one header. Another type is refused
         * by leaving no current family, so the samples that follow are dropped. */
        w->cur = d->type == type ? index : SIZE_MAX;
        return;
    }
    bool ok = valid_family(name, type) && !find_family(w->reg, name);
    d = new_dyn(w, ok ? name : "", type);
    if (!d) {
        w->rc = MW_ENOMEM;
        return;
    }
    w->cur = w->n_fams - 1;
    d->skip = !ok;
    if (!ok) {
        w->n_refused++;
        return;
    }
    size_t before = d->text.len;
    dyn_account(w, d, before, append_header(&d->text, name, help, type));
}

static bool has_label(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0)
            return true;
    }
    return false;
}

/* Whether a sample called `name` with these labels belongs in family `d`: counters and gauges
 * take their own name; a histogram name_bucket (with `le`), name_sum and name_count; a summary
 * its own name (with `quantile`), name_sum and name_count. */
static bool sample_fits(const struct dyn_family *d, const char *name, const char *const *names,
                        size_t n)
{
    size_t len = strlen(d->name);
    const char *suffix = !name ? "" : strncmp(name, d->name, len) == 0 ? name + len : NULL;
    if (!suffix)
        return false;
    bool bucket = strcmp(suffix, "_bucket") == 0;
    bool total = strcmp(suffix, "_sum") == 0 || strcmp(suffix, "_count") == 0;
    bool plain = *suffix == '\0';
    bool le_ok = d->type == MW_PROM_HISTOGRAM && bucket;
    bool quantile_ok = d->type == MW_PROM_SUMMARY && plain;
    if (!valid_label_names(names, n, le_ok, quantile_ok))
        return false;
    switch (d->type) {
    case MW_PROM_HISTOGRAM:
        return (bucket && has_label(names, n, "le")) || total;
    case MW_PROM_SUMMARY:
        return (plain && has_label(names, n, "quantile")) || total;
    default:
        return plain;
    }
}

/* The sample must fit its family (sample_fits); label names must be valid. Anything else is
 * dropped and counted, so one bad collector cannot break the whole scrape. */
void mw_prom_write_sample(struct mw_prom_writer *w, const char *name,
                          const char *const *label_names, const char *const *label_values,
                          double value)
{
    if (!w || w->rc)
        return;
    struct dyn_family *d = w->cur == SIZE_MAX ? NULL : &w->fams[w->cur];
    size_t n = count_strings(label_names);
    if (!d || d->skip || (n && !label_values) || !sample_fits(d, name, label_names, n)) {
        w->n_dropped++;
        return;
    }
    size_t before = d->text.len;
    int rc = mw_buf_append_str(&d->text, name ? name : d->name);
    if (!rc)
        rc = append_labels(&d->text, label_names, label_values, n);
    if (!rc)
        rc = append_sample(&d->text, "", "", value);
    dyn_account(w, d, before, rc);
}

static void writer_free(struct mw_prom_writer *w)
{
    for (size_t i = 0; i < w->n_fams; i++) {
        mw_free(w->fams[i].name);
        mw_buf_free(&w->fams[i].text);
    }
    mw_free(w->fams);
}

/* ---- rendering --------------------------------------------------------------------------- */

/* name_bucket{labels...,le="B"} cumulative counts, then _sum and _count. */
static int render_histogram_series(const struct mw_prom_family *f, const struct mw_prom_series *s,
                                   struct mw_buf *out)
{
    const char *labels = s->labels_text;
    size_t open_len = *labels ? strlen(labels) - 1 : 0; /* without the closing brace */
    uint64_t cumulative = 0;
    int rc = 0;
    for (size_t b = 0; b <= f->n_bounds && !rc; b++) {
        char num[40];
        cumulative += s->buckets[b];
        format_value((double)cumulative, num, sizeof num);
        rc = mw_buf_printf(out, "%s_bucket%.*s%sle=\"%s\"} %s\n", f->name, (int)open_len,
                           *labels ? labels : "", *labels ? "," : "{",
                           b < f->n_bounds ? f->bound_text[b] : "+Inf", num);
    }
    char sum[40], count[40];
    format_value(s->sum, sum, sizeof sum);
    format_value(s->value, count, sizeof count);
    rc = rc ? rc : mw_buf_printf(out, "%s_sum%s %s\n", f->name, labels, sum);
    return rc ? rc : mw_buf_printf(out, "%s_count%s %s\n", f->name, labels, count);
}

static int render_static(const struct mw_prom_registry *reg, struct mw_buf *out)
{
    for (const struct mw_prom_family *f = reg->first; f; f = f->next) {
        int rc = append_header(out, f->name, f->help, f->type);
        for (size_t i = 0; i < f->n_series && !rc; i++) {
            if (f->type == MW_PROM_HISTOGRAM)
                rc = render_histogram_series(f, f->order[i], out);
            else
                rc = append_sample(out, f->name, f->order[i]->labels_text, f->order[i]->value);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int render_collected(struct mw_prom_registry *reg, struct mw_buf *out)
{
    struct mw_prom_writer w = {
        .reg = reg,
        .cur = SIZE_MAX,
        .budget_bytes = out->max_bytes > out->len ? out->max_bytes - out->len : 0,
    };
    for (size_t i = 0; i < reg->n_collectors && !w.rc; i++) {
        w.cur = SIZE_MAX; /* a collector must start its own family */
        reg->collectors[i].fn(&w, reg->collectors[i].arg);
    }
    int rc = w.rc;
    for (size_t i = 0; i < w.n_fams && !rc; i++) {
        if (!w.fams[i].skip)
            rc = mw_buf_append(out, w.fams[i].text.data, w.fams[i].text.len);
    }
    if (w.n_dropped || w.n_refused)
        MW_LOG_WARN("prom", "collector output dropped", "families=%zu samples=%zu", w.n_refused,
                    w.n_dropped);
    writer_free(&w);
    return rc;
}

/* On error `out` is left as it was on entry. */
int mw_prom_render(struct mw_prom_registry *reg, struct mw_buf *out)
{
    if (!reg || !out)
        return MW_EINVAL;
    size_t len_before = out->len;
    int rc = render_static(reg, out);
    if (!rc)
        rc = render_collected(reg, out);
    if (rc) {
        out->len = len_before;
        if (out->data)
            out->data[len_before] = '\0';
    }
    return rc;
}
