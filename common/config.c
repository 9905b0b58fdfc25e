/*
 * config.c — the table-driven YAML configuration loader, validator and dumper.
 *
 * Loading happens in two steps. libyaml's event API turns the text into a small tree of nodes
 * that remember their line; the tree is then walked against the binary's mw_cfg_field table:
 * each key resolves to a field (or to a prefix of dotted field keys, which must be a mapping),
 * is converted, bounds-checked and stored at the field's offset. Errors are written once, into
 * mw_cfg_error, as "file:line: key: what is wrong".
 *
 * No input can make the loader misbehave: aliases are refused (no cycles, no billion laughs),
 * nesting is capped, inputs are capped at MAX_CONFIG_BYTES, and on every error path `obj` stays
 * consistent so that mw_config_free() releases exactly what was stored.
 */
#include "config.h"

#include "alloc.h"
#include "config_expand.h"
#include "error.h"

#include <yaml.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONFIG_BYTES (1u << 20) /* a config file larger than this is a mistake */
#define MAX_DEPTH 64                /* YAML nesting accepted; bounds the recursion */
#define MAX_KEY_TEXT 256            /* a key as shown in messages ("rules[2].rate") */
#define MAX_SHOWN 48                /* bytes of a bad value quoted in a message */
#define DEFAULTS_NAME "(defaults)"  /* stands for the file name when a default is bad */

/* ---------------------------------------------------------------------------------------- */
/* Error messages                                                                            */

struct reason {
    char text[320]; /* what is wrong, without file, line or key */
};

static int vfail(struct mw_cfg_error *err, int rc, const char *name, size_t line, const char *fmt,
                 va_list ap)
{
    int used;
    if (line)
        used = snprintf(err->message, sizeof err->message, "%s:%zu: ", name, line);
    else
        used = snprintf(err->message, sizeof err->message, "%s: ", name);
    if (used >= 0 && (size_t)used < sizeof err->message)
        vsnprintf(err->message + used, sizeof err->message - (size_t)used, fmt, ap);
    /* Keys and values come from the file: keep the message on one printable line. */
    for (char *p = err->message; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return rc;
}

/* Write "name[:line]: <fmt>" into err and return rc. line 0 means "no line". */
__attribute__((format(printf, 5, 6))) static int
fail(struct mw_cfg_error *err, int rc, const char *name, size_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, rc, name, line, fmt, ap);
    va_end(ap);
    return rc;
}

__attribute__((format(printf, 2, 3))) static int reason_set(struct reason *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
    return MW_ECONFIG;
}

/* Copy `text` for quoting in a message: at most MAX_SHOWN bytes, then "...". Returns out. */
static const char *show(const char *text, char *out, size_t size)
{
    size_t len = strlen(text);
    size_t n = len > MAX_SHOWN ? MAX_SHOWN : len;
    snprintf(out, size, "%.*s%s", (int)n, text, len > n ? "..." : "");
    return out;
}

/* ---------------------------------------------------------------------------------------- */
/* The YAML tree                                                                             */

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ, NODE_ALIAS };

struct node {
    enum node_kind kind;
    size_t line;        /* 1-based */
    bool is_null;       /* plain, untagged "", "~", "null", "Null" or "NULL" */
    char *text;         /* SCALAR: NUL-terminated copy of the value */
    size_t len;         /* SCALAR: bytes in text (may hold NULs) */
    struct node **kids; /* MAP: key, value, key, value...; SEQ: the items */
    size_t n_kids;
    size_t cap_kids;
};

/* Parse state: the libyaml parser, and where messages go. */
struct reader {
    yaml_parser_t parser;
    const char *name;
    const char *text;
    size_t len;
    struct mw_cfg_error *err;
};

static void node_free(struct node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        node_free(n->kids[i]);
    mw_free(n->kids);
    if (n->text) /* a value may be a credential, from the file or the environment */
        explicit_bzero(n->text, n->len);
    mw_free(n->text);
    mw_free(n);
}

static const char *node_desc(const struct node *n, char *buf, size_t size)
{
    char shown[MAX_SHOWN + 4];
    switch (n->kind) {
    case NODE_MAP:
        return "a mapping";
    case NODE_SEQ:
        return "a sequence";
    case NODE_ALIAS:
        return "an alias";
    case NODE_SCALAR:
        break;
    }
    snprintf(buf, size, "\"%s\"", show(n->text, shown, sizeof shown));
    return buf;
}

static size_t line_of_offset(const char *text, size_t len, size_t offset)
{
    size_t line = 1;
    for (size_t i = 0; i < offset && i < len; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

static int parser_fail(struct reader *rd)
{
    const yaml_parser_t *p = &rd->parser;
    if (p->error == YAML_MEMORY_ERROR)
        return fail(rd->err, MW_ENOMEM, rd->name, 0, "out of memory while parsing YAML");
    size_t line = p->problem_mark.line + 1;
    if (p->error == YAML_READER_ERROR)
        line = line_of_offset(rd->text, rd->len, p->problem_offset);
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->context)
        return fail(rd->err, MW_ECONFIG, rd->name, line, "%s (%s on line %zu)", problem, p->context,
                    (size_t)p->context_mark.line + 1);
    return fail(rd->err, MW_ECONFIG, rd->name, line, "%s", problem);
}

static int next_event(struct reader *rd, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&rd->parser, ev))
        return parser_fail(rd);
    return 0;
}

static bool is_null_text(const char *text)
{
    return !strcmp(text, "") || !strcmp(text, "~") || !strcmp(text, "null") ||
           !strcmp(text, "Null") || !strcmp(text, "NULL");
}

static int node_set_scalar(struct reader *rd, struct node *n, const yaml_event_t *ev)
{
    n->kind = NODE_SCALAR;
    n->len = ev->data.scalar.length;
    n->text = mw_strndup((const char *)ev->data.scalar.value, n->len);
    if (!n->text)
        return fail(rd->err, MW_ENOMEM, rd->name, 0, "out of memory");
    n->is_null = ev->data.scalar.plain_implicit &&
                 ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && is_null_text(n->text);
    return 0;
}

static int node_add_kid(struct reader *rd, struct node *n, struct node *kid)
{
    if (n->n_kids == n->cap_kids) {
        size_t cap = n->cap_kids ? 2 * n->cap_kids : 8;
        struct node **kids = mw_realloc(n->kids, cap * sizeof *kids);
        if (!kids)
            return fail(rd->err, MW_ENOMEM, rd->name, 0, "out of memory");
        n->kids = kids;
        n->cap_kids = cap;
    }
    n->kids[n->n_kids++] = kid;
    return 0;
}

static int build_node(struct reader *rd, yaml_event_t *ev, int depth, struct node **out);

/* Read the children of collection `n` up to its end event. */
static int build_kids(struct reader *rd, struct node *n, int depth)
{
    for (;;) {
        yaml_event_t ev;
        int rc = next_event(rd, &ev);
        if (rc)
            return rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        struct node *kid;
        rc = build_node(rd, &ev, depth + 1, &kid);
        if (rc)
            return rc;
        rc = node_add_kid(rd, n, kid);
        if (rc) {
            node_free(kid);
            return rc;
        }
    }
}

/*
 * Build the node that starts with event `ev` (which this consumes on every path), reading the
 * events of its children. On success the caller owns *out (node_free).
 */
static int build_node(struct reader *rd, yaml_event_t *ev, int depth, struct node **out)
{
    int rc = 0;
    struct node *n = mw_calloc(1, sizeof *n);
    if (!n)
        rc = fail(rd->err, MW_ENOMEM, rd->name, 0, "out of memory");
    else if (ev->type == YAML_SCALAR_EVENT)
        rc = node_set_scalar(rd, n, ev);
    else if (ev->type == YAML_ALIAS_EVENT)
        n->kind = NODE_ALIAS;
    else if (ev->type == YAML_SEQUENCE_START_EVENT)
        n->kind = NODE_SEQ;
    else if (ev->type == YAML_MAPPING_START_EVENT)
        n->kind = NODE_MAP;
    else
        rc = fail(rd->err, MW_ECONFIG, rd->name, ev->start_mark.line + 1, "unexpected YAML");
    if (n)
        n->line = ev->start_mark.line + 1;
    yaml_event_delete(ev);
    if (!rc && (n->kind == NODE_SEQ || n->kind == NODE_MAP)) {
        if (depth >= MAX_DEPTH)
            rc = fail(rd->err, MW_ECONFIG, rd->name, n->line, "nested deeper than %d levels",
                      MAX_DEPTH);
        else
            rc = build_kids(rd, n, depth);
    }
    if (rc) {
        node_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

/* Expect an event of `type` and drop it. */
static int skip_event(struct reader *rd, yaml_event_type_t type)
{
    yaml_event_t ev;
    int rc = next_event(rd, &ev);
    if (rc)
        return rc;
    if (ev.type != type)
        rc = fail(rd->err, MW_ECONFIG, rd->name, ev.start_mark.line + 1,
                  "only one YAML document is allowed");
    yaml_event_delete(&ev);
    return rc;
}

/* Parse the single document of the stream into *root (NULL for an empty stream). */
static int read_document(struct reader *rd, struct node **root)
{
    yaml_event_t ev;
    int rc = skip_event(rd, YAML_STREAM_START_EVENT);
    if (!rc)
        rc = next_event(rd, &ev);
    if (rc)
        return rc;
    yaml_event_type_t type = ev.type;
    yaml_event_delete(&ev);
    if (type == YAML_STREAM_END_EVENT)
        return 0;
    rc = next_event(rd, &ev); /* the document's root node */
    if (!rc)
        rc = build_node(rd, &ev, 0, root);
    if (!rc)
        rc = skip_event(rd, YAML_DOCUMENT_END_EVENT);
    if (!rc)
        rc = skip_event(rd, YAML_STREAM_END_EVENT);
    if (rc) {
        node_free(*root);
        *root = NULL;
    }
    return rc;
}

/* Parse `len` bytes of YAML into a tree (NULL when empty); the caller frees it with node_free. */
static int parse_tree(const char *text, size_t len, const char *name, struct mw_cfg_error *err,
                      struct node **root)
{
    struct reader rd = {.name = name, .text = text, .len = len, .err = err};
    *root = NULL;
    if (len > MAX_CONFIG_BYTES)
        return fail(err, MW_ECONFIG, name, 0, "larger than %u bytes", MAX_CONFIG_BYTES);
    if (!yaml_parser_initialize(&rd.parser))
        return fail(err, MW_ENOMEM, name, 0, "out of memory");
    yaml_parser_set_input_string(&rd.parser, (const unsigned char *)text, len);
    int rc = read_document(&rd, root);
    yaml_parser_delete(&rd.parser);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* ${VAR} expansion (config_expand.h), once over the tree, before any field sees a value       */

/* Expand scalar `n`, named `key` in messages, in place. */
static int expand_scalar(struct node *n, const char *name, const char *key,
                         struct mw_cfg_error *err)
{
    char why[300];
    char *text;
    size_t len;
    if (!mw__config_expand_needed(n->text, n->len))
        return 0;
    int rc = mw__config_expand(n->text, n->len, &text, &len, why, sizeof why);
    if (rc == MW_ENOMEM)
        return fail(err, rc, name, 0, "out of memory");
    if (rc)
        return fail(err, rc, name, n->line, "%s: %s", *key ? key : "(top level)", why);
    mw_free(n->text);
    n->text = text;
    n->len = len;
    return 0;
}

/* Expand every scalar value under `n`, whose dotted path is `key` ("" at the top): mapping
 * keys stay as written, values and sequence items are expanded. */
static int expand_tree(struct node *n, const char *name, const char *key,
                       struct mw_cfg_error *err)
{
    char sub[MAX_KEY_TEXT];
    int rc = 0;
    if (n->kind == NODE_SCALAR)
        return expand_scalar(n, name, key, err);
    for (size_t i = 0; !rc && n->kind == NODE_MAP && i + 1 < n->n_kids; i += 2) {
        const struct node *k = n->kids[i];
        snprintf(sub, sizeof sub, "%s%s%s", key, *key ? "." : "",
                 k->kind == NODE_SCALAR ? k->text : "?");
        rc = expand_tree(n->kids[i + 1], name, sub, err);
    }
    for (size_t i = 0; !rc && n->kind == NODE_SEQ && i < n->n_kids; i++) {
        snprintf(sub, sizeof sub, "%s[%zu]", key, i);
        rc = expand_tree(n->kids[i], name, sub, err);
    }
    return rc;
}

/* Parse a configuration text into an expanded tree (NULL when empty). */
static int parse_config_tree(const char *text, size_t len, const char *name,
                             struct mw_cfg_error *err, struct node **root)
{
    int rc = parse_tree(text, len, name, err, root);
    if (!rc && *root)
        rc = expand_tree(*root, name, "", err);
    if (rc) {
        node_free(*root);
        *root = NULL;
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Scalar parsing and formatting                                                             */

struct unit {
    const char *name;
    uint64_t factor;
    bool alias; /* accepted, never printed */
};

/* Largest first: formatting picks the first unit that divides the value exactly. */
static const struct unit duration_units[] = {
    {"d", 86400000, false}, {"h", 3600000, false}, {"m", 60000, false},
    {"s", 1000, false},     {"ms", 1, false},      {NULL, 0, false},
};

static const struct unit size_units[] = {
    {"TiB", 1ull << 40, false},
    {"GiB", 1ull << 30, false},
    {"MiB", 1ull << 20, false},
    {"KiB", 1ull << 10, false},
    {"TB", 1000000000000ull, false},
    {"GB", 1000000000ull, false},
    {"MB", 1000000ull, false},
    {"kB", 1000ull, false},
    {"KB", 1000ull, true},
    {"B", 1, true},
    {NULL, 0, false},
};

static uint64_t unit_factor(const struct unit *units, const char *name)
{
    for (; units->name; units++)
        if (!strcmp(units->name, name))
            return units->factor;
    return 0;
}

struct decimal {
    uint64_t whole;
    double frac; /* the digits after the point, in [0, 1] */
    bool has_frac;
};

/* Parse `digits [. digits]` at the start of text; *end is set past it. 0 or MW_EINVAL. */
static int parse_decimal(const char *text, struct decimal *d, const char **end)
{
    const char *p = text;
    *d = (struct decimal){0};
    if (!isdigit((unsigned char)*p))
        return MW_EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        uint64_t digit = (uint64_t)(*p - '0');
        if (d->whole > (UINT64_MAX - digit) / 10)
            return MW_EINVAL;
        d->whole = d->whole * 10 + digit;
    }
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return MW_EINVAL;
        double scale = 0.1;
        for (; isdigit((unsigned char)*p); p++, scale /= 10)
            d->frac += (*p - '0') * scale;
        d->has_frac = true;
    }
    *end = p;
    return 0;
}

/* d * factor rounded to an integer, if it is at most `limit`. 0 or MW_EINVAL. */
static int scale_decimal(const struct decimal *d, uint64_t factor, uint64_t limit, uint64_t *out)
{
    if (d->whole > limit / factor)
        return MW_EINVAL;
    uint64_t value = d->whole * factor;
    double part = floor(d->frac * (double)factor + 0.5);
    if (part > (double)(limit - value))
        return MW_EINVAL;
    *out = value + (uint64_t)part;
    return 0;
}

int mw_config_parse_duration_ms(const char *text, int64_t *out_ms)
{
    struct decimal d;
    const char *unit;
    uint64_t ms;
    if (!text || !out_ms)
        return MW_EINVAL;
    if (!strcmp(text, "0")) {
        *out_ms = 0;
        return 0;
    }
    if (parse_decimal(text, &d, &unit))
        return MW_EINVAL;
    uint64_t factor = unit_factor(duration_units, unit);
    if (!factor || scale_decimal(&d, factor, INT64_MAX, &ms))
        return MW_EINVAL;
    *out_ms = (int64_t)ms;
    return 0;
}

int mw_config_parse_size_bytes(const char *text, uint64_t *out_bytes)
{
    struct decimal d;
    const char *unit;
    if (!text || !out_bytes)
        return MW_EINVAL;
    if (parse_decimal(text, &d, &unit))
        return MW_EINVAL;
    if (!*unit) {
        if (d.has_frac)
            return MW_EINVAL;
        *out_bytes = d.whole;
        return 0;
    }
    uint64_t factor = unit_factor(size_units, unit);
    if (!factor)
        return MW_EINVAL;
    return scale_decimal(&d, factor, UINT64_MAX, out_bytes);
}

/* Shortest exact text for `value` in the largest unit that divides it ("1500ms", "5m"). */
static void format_units(const struct unit *units, uint64_t value, char *out, size_t size)
{
    if (value == 0) {
        snprintf(out, size, "0");
        return;
    }
    for (; units->name; units++) {
        if (!units->alias && value % units->factor == 0) {
            snprintf(out, size, "%" PRIu64 "%s", value / units->factor, units->name);
            return;
        }
    }
    snprintf(out, size, "%" PRIu64, value);
}

static void format_duration(int64_t ms, char *out, size_t size)
{
    if (ms < 0)
        snprintf(out, size, "%" PRId64 "ms", ms);
    else
        format_units(duration_units, (uint64_t)ms, out, size);
}

/* Shortest text that strtod reads back as exactly `value`. */
static void format_double(double value, char *out, size_t size)
{
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(out, size, "%.*g", precision, value);
        if (strtod(out, NULL) == value)
            return;
    }
}

/* Parse a base-10 integer; *out_of_range tells a valid but too large number from junk. */
static int parse_int64(const char *text, int64_t *out, bool *out_of_range)
{
    char *end;
    *out_of_range = false;
    if (!isdigit((unsigned char)text[0]) && text[0] != '-' && text[0] != '+')
        return MW_EINVAL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (end == text || *end)
        return MW_EINVAL;
    if (errno == ERANGE) {
        *out_of_range = true;
        return MW_EINVAL;
    }
    *out = value;
    return 0;
}

static int parse_double(const char *text, double *out)
{
    char *end;
    if (!*text || isspace((unsigned char)text[0]))
        return MW_EINVAL;
    errno = 0;
    double value = strtod(text, &end);
    if (end == text || *end || !isfinite(value))
        return MW_EINVAL;
    *out = value;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    static const char *const truthy[] = {"true", "yes", "on"};
    static const char *const falsy[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(text, truthy[i]) || !strcasecmp(text, falsy[i])) {
            *out = !strcasecmp(text, truthy[i]);
            return 0;
        }
    }
    return MW_EINVAL;
}

/* ---------------------------------------------------------------------------------------- */
/* Fields: storage, bounds and conversion of scalars                                         */

static void *field_ptr(void *obj, const struct mw_cfg_field *f)
{
    return (char *)obj + f->offset;
}

static size_t field_size(enum mw_cfg_type type)
{
    switch (type) {
    case MW_CFG_STRING:
        return sizeof(char *);
    case MW_CFG_INT:
    case MW_CFG_DURATION:
        return sizeof(int64_t);
    case MW_CFG_DOUBLE:
        return sizeof(double);
    case MW_CFG_BOOL:
        return sizeof(bool);
    case MW_CFG_SIZE:
        return sizeof(uint64_t);
    case MW_CFG_ENUM:
        return sizeof(int);
    case MW_CFG_STRMAP:
        return sizeof(struct mw_cfg_strmap);
    case MW_CFG_STRLIST:
        return sizeof(struct mw_cfg_strlist);
    case MW_CFG_LIST:
        return sizeof(struct mw_cfg_list);
    }
    return 0;
}

static const char *type_noun(enum mw_cfg_type type)
{
    switch (type) {
    case MW_CFG_STRING:
        return "a string";
    case MW_CFG_INT:
        return "an integer";
    case MW_CFG_DOUBLE:
        return "a number";
    case MW_CFG_BOOL:
        return "a boolean";
    case MW_CFG_DURATION:
        return "a duration";
    case MW_CFG_SIZE:
        return "a size";
    case MW_CFG_ENUM:
        return "a name";
    case MW_CFG_STRMAP:
        return "a mapping";
    case MW_CFG_STRLIST:
        return "a sequence";
    case MW_CFG_LIST:
        return "a sequence of mappings";
    }
    return "a value";
}

static bool bounded(const struct mw_cfg_field *f)
{
    return f->min != 0 || f->max != 0;
}

static void format_bound(const struct mw_cfg_field *f, double bound, char *out, size_t size)
{
    bool integral = bound >= 0 && bound < 0x1p63;
    if (f->type == MW_CFG_DURATION && integral)
        format_duration((int64_t)bound, out, size);
    else if (f->type == MW_CFG_SIZE && integral)
        format_units(size_units, (uint64_t)bound, out, size);
    else if (f->type == MW_CFG_DOUBLE)
        snprintf(out, size, "%g", bound);
    else
        snprintf(out, size, "%.0f", bound);
}

/* Check `value` (written as `text`) against the field's bounds. */
static int check_bounds(const struct mw_cfg_field *f, double value, const char *text,
                        struct reason *r)
{
    char shown[MAX_SHOWN + 4], bound[64];
    if (!bounded(f))
        return 0;
    if (value < f->min) {
        format_bound(f, f->min, bound, sizeof bound);
        return reason_set(r, "%s is below the minimum %s", show(text, shown, sizeof shown), bound);
    }
    if (value > f->max) {
        format_bound(f, f->max, bound, sizeof bound);
        return reason_set(r, "%s is above the maximum %s", show(text, shown, sizeof shown), bound);
    }
    return 0;
}

static int check_count(const struct mw_cfg_field *f, size_t n, struct reason *r)
{
    if (!bounded(f))
        return 0;
    if ((double)n < f->min)
        return reason_set(r, "has %zu item%s, fewer than the minimum %.0f", n, n == 1 ? "" : "s",
                          f->min);
    if ((double)n > f->max)
        return reason_set(r, "has %zu item%s, more than the maximum %.0f", n, n == 1 ? "" : "s",
                          f->max);
    return 0;
}

static int convert_string(const char *text, char **dst, struct reason *r)
{
    char *copy = mw_strdup(text);
    if (!copy) {
        reason_set(r, "out of memory");
        return MW_ENOMEM;
    }
    mw_free(*dst);
    *dst = copy;
    return 0;
}

static int convert_int(const struct mw_cfg_field *f, const char *text, int64_t *dst,
                       struct reason *r)
{
    char shown[MAX_SHOWN + 4];
    int64_t value;
    bool out_of_range;
    if (parse_int64(text, &value, &out_of_range)) {
        if (out_of_range)
            return reason_set(r, "integer \"%s\" is out of range", show(text, shown, sizeof shown));
        return reason_set(r, "expected an integer, got \"%s\"", show(text, shown, sizeof shown));
    }
    int rc = check_bounds(f, (double)value, text, r);
    if (!rc)
        *dst = value;
    return rc;
}

static int convert_double(const struct mw_cfg_field *f, const char *text, double *dst,
                          struct reason *r)
{
    char shown[MAX_SHOWN + 4];
    double value;
    if (parse_double(text, &value))
        return reason_set(r, "expected a finite number, got \"%s\"",
                          show(text, shown, sizeof shown));
    int rc = check_bounds(f, value, text, r);
    if (!rc)
        *dst = value;
    return rc;
}

static int convert_bool(const char *text, bool *dst, struct reason *r)
{
    char shown[MAX_SHOWN + 4];
    if (parse_bool(text, dst))
        return reason_set(r, "expected a boolean (true/false, yes/no, on/off), got \"%s\"",
                          show(text, shown, sizeof shown));
    return 0;
}

static int convert_duration(const struct mw_cfg_field *f, const char *text, int64_t *dst,
                            struct reason *r)
{
    char shown[MAX_SHOWN + 4];
    int64_t ms;
    if (mw_config_parse_duration_ms(text, &ms))
        return reason_set(r, "invalid duration \"%s\" (use e.g. 500ms, 1s, 5m)",
                          show(text, shown, sizeof shown));
    int rc = check_bounds(f, (double)ms, text, r);
    if (!rc)
        *dst = ms;
    return rc;
}

static int convert_size(const struct mw_cfg_field *f, const char *text, uint64_t *dst,
                        struct reason *r)
{
    char shown[MAX_SHOWN + 4];
    uint64_t bytes;
    if (mw_config_parse_size_bytes(text, &bytes))
        return reason_set(r, "invalid size \"%s\" (use e.g. 512, 64KiB, 16MiB, 1GB)",
                          show(text, shown, sizeof shown));
    int rc = check_bounds(f, (double)bytes, text, r);
    if (!rc)
        *dst = bytes;
    return rc;
}

static int convert_enum(const struct mw_cfg_field *f, const char *text, int *dst, struct reason *r)
{
    char shown[MAX_SHOWN + 4], names[200] = "";
    size_t used = 0;
    for (int i = 0; f->choices[i]; i++) {
        if (!strcasecmp(text, f->choices[i])) {
            *dst = i;
            return 0;
        }
        if (used < sizeof names)
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                                     f->choices[i]);
    }
    return reason_set(r, "invalid value \"%s\" (choose one of: %s)",
                      show(text, shown, sizeof shown), names);
}

/*
 * Convert `text` for the scalar field `f` and store it at `dst` (a STRING's old value is
 * freed). Nothing is stored on failure: MW_ECONFIG with the reason in r, or MW_ENOMEM.
 */
static int convert_scalar(const struct mw_cfg_field *f, const char *text, void *dst,
                          struct reason *r)
{
    switch (f->type) {
    case MW_CFG_STRING:
        return convert_string(text, dst, r);
    case MW_CFG_INT:
        return convert_int(f, text, dst, r);
    case MW_CFG_DOUBLE:
        return convert_double(f, text, dst, r);
    case MW_CFG_BOOL:
        return convert_bool(text, dst, r);
    case MW_CFG_DURATION:
        return convert_duration(f, text, dst, r);
    case MW_CFG_SIZE:
        return convert_size(f, text, dst, r);
    case MW_CFG_ENUM:
        return convert_enum(f, text, dst, r);
    default:
        return reason_set(r, "not a scalar field");
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Freeing                                                                                   */

static void strmap_clear(struct mw_cfg_strmap *map)
{
    for (size_t i = 0; i < map->n; i++) {
        mw_free(map->keys[i]);
        mw_free(map->values[i]);
    }
    mw_free(map->keys);
    mw_free(map->values);
    *map = (struct mw_cfg_strmap){0};
}

static void strlist_clear(struct mw_cfg_strlist *list)
{
    for (size_t i = 0; i < list->n; i++)
        mw_free(list->items[i]);
    mw_free(list->items);
    *list = (struct mw_cfg_strlist){0};
}

static void list_clear(const struct mw_cfg_field *f, struct mw_cfg_list *list)
{
    for (size_t i = 0; f->sub && i < list->n; i++)
        mw_config_free(f->sub, (char *)list->items + i * f->elem_size);
    mw_free(list->items);
    *list = (struct mw_cfg_list){0};
}

/* Overwrite the credentials of field `f` at `dst` before their memory is freed. */
static void wipe_secrets(const struct mw_cfg_field *f, void *dst)
{
    if (f->type == MW_CFG_STRING && f->secret && *(char **)dst)
        explicit_bzero(*(char **)dst, strlen(*(char **)dst));
    const struct mw_cfg_strmap *map = dst;
    for (size_t i = 0; f->type == MW_CFG_STRMAP && f->secret_entry && i < map->n; i++)
        if (map->keys[i] && map->values[i] && f->secret_entry(map->keys[i]))
            explicit_bzero(map->values[i], strlen(map->values[i]));
}

static void field_clear(const struct mw_cfg_field *f, void *dst)
{
    wipe_secrets(f, dst);
    switch (f->type) {
    case MW_CFG_STRING:
        mw_free(*(char **)dst);
        *(char **)dst = NULL;
        break;
    case MW_CFG_STRMAP:
        strmap_clear(dst);
        break;
    case MW_CFG_STRLIST:
        strlist_clear(dst);
        break;
    case MW_CFG_LIST:
        list_clear(f, dst);
        break;
    default:
        memset(dst, 0, field_size(f->type));
        break;
    }
}

void mw_config_free(const struct mw_cfg_field *table, void *obj)
{
    if (!table || !obj)
        return;
    for (const struct mw_cfg_field *f = table; f->key; f++)
        field_clear(f, field_ptr(obj, f));
}

/* ---------------------------------------------------------------------------------------- */
/* Applying YAML nodes to fields                                                             */

/* Where values come from: the file name for messages, and where messages go. */
struct source {
    const char *name;
    struct mw_cfg_error *err;
};

/* One table being applied to one object (the top level, or one element of a LIST). */
struct scope {
    const struct source *src;
    const struct mw_cfg_field *table;
    void *obj;
    size_t *set_line; /* per field: the line that set it, 0 = not set */
    const char *disp; /* shown before keys in messages: "" or "rules[2]." */
};

static int walk_map(struct scope *sc, const struct node *map, const char *prefix, size_t plen);
static int apply_node(const struct source *src, const struct mw_cfg_field *f, void *dst,
                      const struct node *v, const char *key);

static int nomem(const struct source *src)
{
    return fail(src->err, MW_ENOMEM, src->name, 0, "out of memory");
}

struct key_ref {
    const struct node *key;
    size_t index; /* position in the mapping */
};

static int compare_text(const struct node *a, const struct node *b)
{
    int diff = memcmp(a->text, b->text, a->len < b->len ? a->len : b->len);
    if (diff || a->len == b->len)
        return diff;
    return a->len < b->len ? -1 : 1;
}

/* Orders keys by text, then by position, so that equal keys sit together in document order. */
static int compare_key_refs(const void *a, const void *b)
{
    const struct key_ref *ra = a, *rb = b;
    int diff = compare_text(ra->key, rb->key);
    if (diff)
        return diff;
    return ra->index < rb->index ? -1 : ra->index > rb->index;
}

/*
 * Find the repeated key of `map` that comes first in the document (*dup) and the earlier key it
 * repeats (*first); both NULL when keys are unique. All keys must be scalars. Sorting keeps this
 * O(n log n): a pairwise scan of a 1 MiB flat mapping would take minutes. 0 or MW_ENOMEM.
 */
static int find_duplicate(const struct node *map, const struct node **dup,
                          const struct node **first)
{
    size_t n = map->n_kids / 2, dup_index = SIZE_MAX;
    *dup = *first = NULL;
    if (n < 2)
        return 0;
    struct key_ref *refs = mw_calloc(n, sizeof *refs);
    if (!refs)
        return MW_ENOMEM;
    for (size_t i = 0; i < n; i++)
        refs[i] = (struct key_ref){.key = map->kids[2 * i], .index = i};
    qsort(refs, n, sizeof *refs, compare_key_refs);
    for (size_t i = 1; i < n; i++) {
        bool repeat = !compare_text(refs[i - 1].key, refs[i].key);
        bool starts_run = i == 1 || compare_text(refs[i - 2].key, refs[i].key);
        if (repeat && starts_run && refs[i].index < dup_index) {
            dup_index = refs[i].index;
            *dup = refs[i].key;
            *first = refs[i - 1].key;
        }
    }
    mw_free(refs);
    return 0;
}

/* Check that the keys of mapping `map` (named `key` in messages) are unique scalars. */
static int check_keys(const struct source *src, const struct node *map, const char *key)
{
    const struct node *dup, *first;
    for (size_t i = 0; i < map->n_kids; i += 2) {
        const struct node *k = map->kids[i];
        if (k->kind != NODE_SCALAR)
            return fail(src->err, MW_ECONFIG, src->name, k->line, "%s: keys must be scalars",
                        *key ? key : "(top level)");
        if (strlen(k->text) != k->len)
            return fail(src->err, MW_ECONFIG, src->name, k->line, "%s: key contains a NUL",
                        *key ? key : "(top level)");
    }
    if (find_duplicate(map, &dup, &first))
        return nomem(src);
    if (dup)
        return fail(src->err, MW_ECONFIG, src->name, dup->line,
                    "%s%s%s: duplicate key (first on line %zu)", key, *key ? "." : "", dup->text,
                    first->line);
    return 0;
}

static int expect_scalar(const struct source *src, const struct node *v, const char *key,
                         const char *noun)
{
    char desc[MAX_SHOWN + 8];
    if (v->kind == NODE_ALIAS)
        return fail(src->err, MW_ECONFIG, src->name, v->line, "%s: aliases are not supported", key);
    if (v->kind != NODE_SCALAR)
        return fail(src->err, MW_ECONFIG, src->name, v->line, "%s: expected %s, got %s", key, noun,
                    node_desc(v, desc, sizeof desc));
    if (strlen(v->text) != v->len)
        return fail(src->err, MW_ECONFIG, src->name, v->line, "%s: value contains a NUL", key);
    return 0;
}

/* A collection field takes its node kind, or a null scalar (`key:` alone) for "empty". */
static int expect_collection(const struct source *src, const struct node *v, const char *key,
                             enum node_kind kind, enum mw_cfg_type type)
{
    char desc[MAX_SHOWN + 8];
    if (v->kind == kind || (v->kind == NODE_SCALAR && v->is_null))
        return 0;
    if (v->kind == NODE_ALIAS)
        return fail(src->err, MW_ECONFIG, src->name, v->line, "%s: aliases are not supported", key);
    return fail(src->err, MW_ECONFIG, src->name, v->line, "%s: expected %s, got %s", key,
                type_noun(type), node_desc(v, desc, sizeof desc));
}

static int apply_scalar(const struct source *src, const struct mw_cfg_field *f, void *dst,
                        const struct node *v, const char *key)
{
    struct reason r;
    int rc = expect_scalar(src, v, key, type_noun(f->type));
    if (rc)
        return rc;
    if (v->is_null) {
        if (f->type != MW_CFG_STRING || f->required)
            return fail(src->err, MW_ECONFIG, src->name, v->line, "%s: missing value", key);
        field_clear(f, dst);
        return 0;
    }
    rc = convert_scalar(f, v->text, dst, &r);
    if (rc == MW_ENOMEM)
        return nomem(src);
    if (rc)
        return fail(src->err, rc, src->name, v->line, "%s: %s", key, r.text);
    const char *why = f->check ? f->check(dst) : NULL;
    if (why)
        return fail(src->err, MW_ECONFIG, src->name, v->line, "%s: %s", key, why);
    return 0;
}

/* Copy the scalar entry i of mapping `v` into map->keys/values[i]. */
static int strmap_add(const struct source *src, struct mw_cfg_strmap *map, const struct node *v,
                      size_t i, const char *key)
{
    const struct node *k = v->kids[2 * i], *val = v->kids[2 * i + 1];
    char entry[MAX_KEY_TEXT];
    snprintf(entry, sizeof entry, "%s.%s", key, k->text);
    int rc = expect_scalar(src, val, entry, "a scalar value");
    if (rc)
        return rc;
    map->keys[i] = mw_strdup(k->text);
    map->values[i] = mw_strdup(val->text);
    map->n = i + 1;
    if (!map->keys[i] || !map->values[i])
        return nomem(src);
    return 0;
}

static int apply_strmap(const struct source *src, const struct mw_cfg_field *f,
                        struct mw_cfg_strmap *dst, const struct node *v, const char *key)
{
    struct mw_cfg_strmap map = {0};
    int rc = expect_collection(src, v, key, NODE_MAP, f->type);
    if (!rc && v->kind == NODE_MAP)
        rc = check_keys(src, v, key);
    if (rc || v->kind != NODE_MAP) {
        if (!rc)
            strmap_clear(dst);
        return rc;
    }
    size_t n = v->n_kids / 2;
    map.keys = mw_calloc(n, sizeof *map.keys);
    map.values = mw_calloc(n, sizeof *map.values);
    if (!map.keys || !map.values)
        rc = nomem(src);
    for (size_t i = 0; !rc && i < n; i++)
        rc = strmap_add(src, &map, v, i, key);
    if (rc) {
        strmap_clear(&map);
        return rc;
    }
    strmap_clear(dst);
    *dst = map;
    return 0;
}

static int apply_strlist(const struct source *src, const struct mw_cfg_field *f,
                         struct mw_cfg_strlist *dst, const struct node *v, const char *key)
{
    struct mw_cfg_strlist list = {0};
    struct reason r;
    char item[MAX_KEY_TEXT];
    int rc = expect_collection(src, v, key, NODE_SEQ, f->type);
    size_t n = v->kind == NODE_SEQ ? v->n_kids : 0;
    if (!rc && check_count(f, n, &r))
        rc = fail(src->err, MW_ECONFIG, src->name, v->line, "%s: %s", key, r.text);
    if (!rc && n && !(list.items = mw_calloc(n, sizeof *list.items)))
        rc = nomem(src);
    for (size_t i = 0; !rc && i < n; i++) {
        snprintf(item, sizeof item, "%s[%zu]", key, i);
        rc = expect_scalar(src, v->kids[i], item, "a string");
        if (!rc && !(list.items[list.n++] = mw_strdup(v->kids[i]->text)))
            rc = nomem(src);
    }
    if (rc) {
        strlist_clear(&list);
        return rc;
    }
    strlist_clear(dst);
    *dst = list;
    return 0;
}

static int check_required(const struct scope *sc, size_t line)
{
    for (size_t i = 0; sc->table[i].key; i++)
        if (sc->table[i].required && !sc->set_line[i])
            return fail(sc->src->err, MW_ECONFIG, sc->src->name, line, "%s%s: required key missing",
                        sc->disp, sc->table[i].key);
    return 0;
}

/* A broken `relate` rule of the table (see config.h): among keys the file set, the one set last
 * (where the conflict shows); otherwise the first among keys left at their default. */
static int check_relations(const struct scope *sc)
{
    char why[320], last_why[320];
    size_t last = SIZE_MAX;
    for (size_t i = 0; sc->table[i].key; i++) {
        const struct mw_cfg_field *f = &sc->table[i];
        if (!f->relate || !sc->set_line[i] ||
            (last != SIZE_MAX && sc->set_line[i] < sc->set_line[last]))
            continue;
        why[0] = '\0';
        if (!f->relate(sc->obj, why, sizeof why)) {
            last = i;
            memcpy(last_why, why, sizeof why);
        }
    }
    if (last != SIZE_MAX)
        return fail(sc->src->err, MW_ECONFIG, sc->src->name, sc->set_line[last], "%s%s: %s",
                    sc->disp, sc->table[last].key, last_why);
    for (size_t i = 0; sc->table[i].key; i++) {
        const struct mw_cfg_field *f = &sc->table[i];
        why[0] = '\0';
        if (f->relate && !sc->set_line[i] && !f->relate(sc->obj, why, sizeof why))
            return fail(sc->src->err, MW_ECONFIG, sc->src->name, 0, "%s%s: %s", sc->disp, f->key,
                        why);
    }
    return 0;
}

static size_t table_len(const struct mw_cfg_field *table)
{
    size_t n = 0;
    while (table[n].key)
        n++;
    return n;
}

/*
 * Apply mapping `map` (or null: all defaults) to `obj` with `table`, then check its required
 * keys; `disp` prefixes keys in messages and `line` is the line for missing keys (0: none).
 */
static int apply_table(const struct source *src, const struct mw_cfg_field *table, void *obj,
                       const struct node *map, const char *disp, size_t line)
{
    struct scope sc = {.src = src, .table = table, .obj = obj, .disp = disp};
    sc.set_line = mw_calloc(table_len(table) + 1, sizeof *sc.set_line);
    if (!sc.set_line)
        return nomem(src);
    int rc = map && map->kind == NODE_MAP ? walk_map(&sc, map, "", 0) : 0;
    if (!rc)
        rc = check_required(&sc, line);
    if (!rc)
        rc = check_relations(&sc);
    mw_free(sc.set_line);
    return rc;
}

static int list_element(const struct source *src, const struct mw_cfg_field *f, void *elem,
                        const struct node *e, const char *key, size_t i)
{
    char disp[MAX_KEY_TEXT], desc[MAX_SHOWN + 8];
    snprintf(disp, sizeof disp, "%s[%zu].", key, i);
    int rc = mw_config_defaults(f->sub, elem, src->err);
    if (rc)
        return rc;
    if (e->kind == NODE_ALIAS)
        return fail(src->err, MW_ECONFIG, src->name, e->line, "%s[%zu]: aliases are not supported",
                    key, i);
    if (e->kind != NODE_MAP && !(e->kind == NODE_SCALAR && e->is_null))
        return fail(src->err, MW_ECONFIG, src->name, e->line, "%s[%zu]: expected a mapping, got %s",
                    key, i, node_desc(e, desc, sizeof desc));
    return apply_table(src, f->sub, elem, e, disp, e->line);
}

static int apply_list(const struct source *src, const struct mw_cfg_field *f,
                      struct mw_cfg_list *dst, const struct node *v, const char *key)
{
    struct mw_cfg_list list = {0};
    struct reason r;
    int rc = expect_collection(src, v, key, NODE_SEQ, f->type);
    size_t n = v->kind == NODE_SEQ ? v->n_kids : 0;
    if (!rc && check_count(f, n, &r))
        rc = fail(src->err, MW_ECONFIG, src->name, v->line, "%s: %s", key, r.text);
    if (!rc && n && !(list.items = mw_calloc(n, f->elem_size)))
        rc = nomem(src);
    if (!rc)
        list.n = n; /* zeroed elements: safe to free from here on */
    for (size_t i = 0; !rc && i < n; i++)
        rc = list_element(src, f, (char *)list.items + i * f->elem_size, v->kids[i], key, i);
    if (rc) {
        list_clear(f, &list);
        return rc;
    }
    list_clear(f, dst);
    *dst = list;
    return 0;
}

/* Store node `v` into field `f` at `dst`; `key` names it in messages. */
static int apply_node(const struct source *src, const struct mw_cfg_field *f, void *dst,
                      const struct node *v, const char *key)
{
    switch (f->type) {
    case MW_CFG_STRMAP:
        return apply_strmap(src, f, dst, v, key);
    case MW_CFG_STRLIST:
        return apply_strlist(src, f, dst, v, key);
    case MW_CFG_LIST:
        return apply_list(src, f, dst, v, key);
    default:
        return apply_scalar(src, f, dst, v, key);
    }
}

/* Index of the field whose key is exactly prefix + name, or -1. */
static long find_field(const struct mw_cfg_field *table, const char *prefix, size_t plen,
                       const char *name, size_t nlen)
{
    for (long i = 0; table[i].key; i++) {
        const char *key = table[i].key;
        if (strlen(key) == plen + nlen && !memcmp(key, prefix, plen) &&
            !memcmp(key + plen, name, nlen))
            return i;
    }
    return -1;
}

/* A field key that starts with prefix + name + ".", or NULL. */
static const char *find_prefix(const struct mw_cfg_field *table, const char *prefix, size_t plen,
                               const char *name, size_t nlen)
{
    for (size_t i = 0; table[i].key; i++) {
        const char *key = table[i].key;
        if (strlen(key) > plen + nlen && key[plen + nlen] == '.' && !memcmp(key, prefix, plen) &&
            !memcmp(key + plen, name, nlen))
            return key;
    }
    return NULL;
}

static int set_field(struct scope *sc, long idx, const struct node *k, const struct node *v,
                     const char *key)
{
    const struct mw_cfg_field *f = &sc->table[idx];
    if (sc->set_line[idx])
        return fail(sc->src->err, MW_ECONFIG, sc->src->name, k->line,
                    "%s: duplicate key (first on line %zu)", key, sc->set_line[idx]);
    int rc = apply_node(sc->src, f, field_ptr(sc->obj, f), v, key);
    if (!rc)
        sc->set_line[idx] = k->line;
    return rc;
}

/* Resolve one key of a mapping at `prefix` (a dotted path ending in '.', or ""). */
static int walk_pair(struct scope *sc, const struct node *k, const struct node *v,
                     const char *prefix, size_t plen)
{
    char key[MAX_KEY_TEXT], desc[MAX_SHOWN + 8];
    snprintf(key, sizeof key, "%s%.*s%s", sc->disp, (int)plen, prefix, k->text);
    long idx = find_field(sc->table, prefix, plen, k->text, k->len);
    if (idx >= 0)
        return set_field(sc, idx, k, v, key);
    const char *path = find_prefix(sc->table, prefix, plen, k->text, k->len);
    if (!path)
        return fail(sc->src->err, MW_ECONFIG, sc->src->name, k->line, "%s: unknown key", key);
    if (v->kind == NODE_MAP)
        return walk_map(sc, v, path, plen + k->len + 1);
    if (v->kind == NODE_SCALAR && v->is_null)
        return 0;
    return fail(sc->src->err, MW_ECONFIG, sc->src->name, v->line, "%s: expected a mapping, got %s",
                key, node_desc(v, desc, sizeof desc));
}

static int walk_map(struct scope *sc, const struct node *map, const char *prefix, size_t plen)
{
    char where[MAX_KEY_TEXT];
    snprintf(where, sizeof where, "%s%.*s", sc->disp, (int)plen, prefix);
    size_t wlen = strlen(where);
    if (wlen && where[wlen - 1] == '.')
        where[wlen - 1] = '\0';
    int rc = check_keys(sc->src, map, where);
    for (size_t i = 0; !rc && i + 1 < map->n_kids; i += 2)
        rc = walk_pair(sc, map->kids[i], map->kids[i + 1], prefix, plen);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Defaults and loading                                                                      */

static int check_field_def(const struct mw_cfg_field *f, struct mw_cfg_error *err)
{
    if (field_size(f->type) == 0)
        return fail(err, MW_ECONFIG, DEFAULTS_NAME, 0, "%s: unknown field type", f->key);
    if (f->type == MW_CFG_ENUM && !f->choices)
        return fail(err, MW_ECONFIG, DEFAULTS_NAME, 0, "%s: enum without choices", f->key);
    if (f->type == MW_CFG_LIST && (!f->sub || !f->elem_size))
        return fail(err, MW_ECONFIG, DEFAULTS_NAME, 0, "%s: list without sub or elem_size", f->key);
    return 0;
}

/* Collection defaults are YAML text too ("[a, b]", "{k: v}"); parse and apply them. */
static int apply_yaml_default(const struct mw_cfg_field *f, void *dst, struct mw_cfg_error *err)
{
    struct source src = {.name = DEFAULTS_NAME, .err = err};
    struct node *root;
    int rc = parse_tree(f->def, strlen(f->def), DEFAULTS_NAME, err, &root);
    if (!rc && root)
        rc = apply_node(&src, f, dst, root, f->key);
    node_free(root);
    return rc;
}

static int apply_default(const struct mw_cfg_field *f, void *dst, struct mw_cfg_error *err)
{
    struct reason r;
    int rc = check_field_def(f, err);
    if (rc || !f->def)
        return rc;
    if (f->type == MW_CFG_STRMAP || f->type == MW_CFG_STRLIST || f->type == MW_CFG_LIST)
        return apply_yaml_default(f, dst, err);
    rc = convert_scalar(f, f->def, dst, &r);
    if (rc == MW_ENOMEM)
        return fail(err, rc, DEFAULTS_NAME, 0, "out of memory");
    if (rc)
        return fail(err, rc, DEFAULTS_NAME, 0, "%s: %s", f->key, r.text);
    return 0;
}

/*
 * `obj` is taken as uninitialised: every field is zeroed first (nothing is freed, so free a
 * loaded object with mw_config_free before reusing it), which keeps mw_config_free safe on
 * `obj` whatever happens next.
 */
int mw_config_defaults(const struct mw_cfg_field *table, void *obj, struct mw_cfg_error *err)
{
    struct mw_cfg_error scratch;
    if (!err)
        err = &scratch;
    err->message[0] = '\0';
    if (!table || !obj)
        return fail(err, MW_EINVAL, DEFAULTS_NAME, 0, "no table or object");
    for (const struct mw_cfg_field *f = table; f->key; f++)
        memset(field_ptr(obj, f), 0, field_size(f->type));
    for (const struct mw_cfg_field *f = table; f->key; f++) {
        int rc = apply_default(f, field_ptr(obj, f), err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Parse `text` and apply it over the defaults already in `obj`. */
static int load_text(const struct mw_cfg_field *table, void *obj, const char *text, size_t len,
                     const char *name, struct mw_cfg_error *err)
{
    struct source src = {.name = name, .err = err};
    struct node *root;
    char desc[MAX_SHOWN + 8];
    int rc = parse_config_tree(text, len, name, err, &root);
    if (rc)
        return rc;
    if (root && root->kind != NODE_MAP && !(root->kind == NODE_SCALAR && root->is_null))
        rc = fail(err, MW_ECONFIG, name, root->line, "the top level must be a mapping, got %s",
                  node_desc(root, desc, sizeof desc));
    else
        rc = apply_table(&src, table, obj, root, "", 0);
    node_free(root);
    return rc;
}

int mw_config_load_string(const struct mw_cfg_field *table, void *obj, const char *text,
                          const char *name, struct mw_cfg_error *err)
{
    struct mw_cfg_error scratch;
    if (!err)
        err = &scratch;
    if (!name)
        name = "<string>";
    int rc = mw_config_defaults(table, obj, err);
    if (rc)
        return rc;
    if (!text)
        return fail(err, MW_EINVAL, name, 0, "no text");
    return load_text(table, obj, text, strlen(text), name, err);
}

/* Read all of `path` into `buf` (bounded by its max_bytes). */
static int read_file(const char *path, struct mw_buf *buf, struct mw_cfg_error *err)
{
    char chunk[4096];
    size_t n;
    int rc = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return fail(err, MW_EIO, path, 0, "cannot open: %s", strerror(errno));
    while (!rc && (n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        rc = mw_buf_append(buf, chunk, n);
    int read_errno = errno;
    if (rc == MW_EFULL)
        rc = fail(err, MW_ECONFIG, path, 0, "larger than %zu bytes", buf->max_bytes);
    else if (rc)
        rc = fail(err, rc, path, 0, "out of memory");
    else if (ferror(fp))
        rc = fail(err, MW_EIO, path, 0, "cannot read: %s", strerror(read_errno));
    fclose(fp);
    return rc;
}

int mw_config_load_file(const struct mw_cfg_field *table, void *obj, const char *path,
                        struct mw_cfg_error *err)
{
    struct mw_cfg_error scratch;
    struct mw_buf text;
    if (!err)
        err = &scratch;
    int rc = mw_config_defaults(table, obj, err);
    if (rc)
        return rc;
    if (!path)
        return fail(err, MW_EINVAL, "<file>", 0, "no path");
    mw_buf_init(&text, MAX_CONFIG_BYTES);
    rc = read_file(path, &text, err);
    if (!rc)
        rc = load_text(table, obj, text.data ? text.data : "", text.len, path, err);
    mw_buf_free(&text);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* The files a configuration names (--check-config)                                          */

/* Open `value` as `kind` wants it and close it again. `key` and `line` name it in messages. */
static int check_one_path(const struct source *src, enum mw_cfg_path kind, const char *value,
                          const char *key, size_t line)
{
    struct stat st;
    if (kind == MW_CFG_PATH_NONE || !*value)
        return 0;
    /* O_NONBLOCK: a FIFO named by mistake must not hang the check. */
    int fd = open(value, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return fail(src->err, MW_ECONFIG, src->name, line, "%s: cannot read %s: %s", key, value,
                    strerror(errno));
    int rc = fstat(fd, &st);
    int stat_errno = errno;
    close(fd);
    if (rc != 0)
        return fail(src->err, MW_ECONFIG, src->name, line, "%s: cannot read %s: %s", key, value,
                    strerror(stat_errno));
    if (kind == MW_CFG_PATH_FILE && S_ISDIR(st.st_mode))
        return fail(src->err, MW_ECONFIG, src->name, line, "%s: %s is a directory, not a file",
                    key, value);
    if (kind == MW_CFG_PATH_DIR && !S_ISDIR(st.st_mode))
        return fail(src->err, MW_ECONFIG, src->name, line, "%s: %s is not a directory", key,
                    value);
    return 0;
}

static int check_paths_in(const struct source *src, const struct mw_cfg_field *table,
                          const struct node *map, const char *prefix, size_t plen,
                          const char *disp);

/* The paths one field set to node `v` names; `key` names the field in messages. */
static int check_field_paths(const struct source *src, const struct mw_cfg_field *f,
                             const struct node *v, const char *key)
{
    char sub[MAX_KEY_TEXT + 32]; /* the key, an index and a dot */
    int rc = 0;
    if (f->type == MW_CFG_STRING && v->kind == NODE_SCALAR && !v->is_null)
        return check_one_path(src, f->path, v->text, key, v->line);
    for (size_t i = 0; !rc && f->type == MW_CFG_STRMAP && f->path_entry && v->kind == NODE_MAP &&
                       i + 1 < v->n_kids;
         i += 2) {
        const struct node *name = v->kids[i], *value = v->kids[i + 1];
        if (value->kind != NODE_SCALAR || value->is_null)
            continue;
        snprintf(sub, sizeof sub, "%s.%s", key, name->text);
        rc = check_one_path(src, f->path_entry(name->text, value->text), value->text, sub,
                            value->line);
    }
    for (size_t i = 0; !rc && f->type == MW_CFG_LIST && f->sub && v->kind == NODE_SEQ &&
                       i < v->n_kids;
         i++) {
        snprintf(sub, sizeof sub, "%s[%zu].", key, i);
        if (v->kids[i]->kind == NODE_MAP)
            rc = check_paths_in(src, f->sub, v->kids[i], "", 0, sub);
    }
    return rc;
}

/* Walk mapping `map` at `prefix` (as walk_map does) and check the paths its fields name. */
static int check_paths_in(const struct source *src, const struct mw_cfg_field *table,
                          const struct node *map, const char *prefix, size_t plen,
                          const char *disp)
{
    char key[MAX_KEY_TEXT];
    int rc = 0;
    for (size_t i = 0; !rc && i + 1 < map->n_kids; i += 2) {
        const struct node *k = map->kids[i], *v = map->kids[i + 1];
        if (k->kind != NODE_SCALAR)
            continue;
        snprintf(key, sizeof key, "%s%.*s%s", disp, (int)plen, prefix, k->text);
        long idx = find_field(table, prefix, plen, k->text, k->len);
        if (idx >= 0) {
            rc = check_field_paths(src, &table[idx], v, key);
            continue;
        }
        const char *path = find_prefix(table, prefix, plen, k->text, k->len);
        if (path && v->kind == NODE_MAP)
            rc = check_paths_in(src, table, v, path, plen + k->len + 1, disp);
    }
    return rc;
}

int mw_config_check_paths(const struct mw_cfg_field *table, const char *path,
                          struct mw_cfg_error *err)
{
    struct mw_cfg_error scratch;
    struct mw_buf text;
    struct node *root = NULL;
    if (!err)
        err = &scratch;
    if (!table || !path)
        return fail(err, MW_EINVAL, "<file>", 0, "no table or path");
    struct source src = {.name = path, .err = err};
    mw_buf_init(&text, MAX_CONFIG_BYTES);
    int rc = read_file(path, &text, err);
    if (!rc)
        rc = parse_config_tree(text.data ? text.data : "", text.len, path, err, &root);
    if (!rc && root && root->kind == NODE_MAP)
        rc = check_paths_in(&src, table, root, "", 0, "");
    node_free(root);
    mw_buf_free(&text);
    return rc;
}

const char *mw_config_strmap_get(const struct mw_cfg_strmap *map, const char *key)
{
    if (!map || !key)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key))
            return map->values[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Dumping                                                                                   */

struct emitter {
    struct mw_buf *out;
    int rc; /* the first error; later writes are skipped */
};

__attribute__((format(printf, 2, 3))) static void emit(struct emitter *em, const char *fmt, ...)
{
    va_list ap;
    if (em->rc)
        return;
    va_start(ap, fmt);
    em->rc = mw_buf_vprintf(em->out, fmt, ap);
    va_end(ap);
}

static void emit_raw(struct emitter *em, const char *s, size_t n)
{
    if (!em->rc)
        em->rc = mw_buf_append(em->out, s, n);
}

/* Decode one UTF-8 sequence at p: its length (1-4) with *cp set, or 0 if it is invalid. */
static size_t utf8_decode(const unsigned char *p, uint32_t *cp)
{
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC0 ? 2 : 0;
    if (!n || p[0] >= 0xF8)
        return 0;
    uint32_t value = p[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        value = (value << 6) | (p[i] & 0x3Fu);
    }
    if (value < min_cp[n] || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF))
        return 0;
    *cp = value;
    return n;
}

/* Code points YAML readers refuse raw or take as line breaks: written as \uXXXX. */
static bool needs_escape(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF ||
           cp == 0xFFFE || cp == 0xFFFF;
}

static bool is_reserved_word(const char *s)
{
    static const char *const words[] = {"~",  "null", "true", "false", "yes",
                                        "no", "on",   "off",  "y",     "n"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcasecmp(s, words[i]))
            return true;
    return false;
}

/* Whether `s` must be double-quoted to read back as the same string. Errs towards quoting. */
static bool needs_quotes(const char *s)
{
    size_t len = strlen(s);
    if (!len || strchr("-?:,[]{}#&*!|>'\"%@`<=.+~ ", s[0]) || isdigit((unsigned char)s[0]))
        return true;
    if (s[len - 1] == ' ' || s[len - 1] == ':' || strstr(s, ": ") || strstr(s, " #") ||
        is_reserved_word(s))
        return true;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        uint32_t cp;
        size_t n = *p < 0x80 ? 1 : utf8_decode(p, &cp);
        if (*p < 0x20 || *p == 0x7F || !n || (n > 1 && needs_escape(cp)))
            return true;
        p += n;
    }
    return false;
}

static void emit_quoted(struct emitter *em, const char *s)
{
    emit_raw(em, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        uint32_t cp = 0;
        size_t n = *p < 0x80 ? 1 : utf8_decode(p, &cp);
        if (*p == '"' || *p == '\\')
            emit(em, "\\%c", *p);
        else if (*p == '\n')
            emit_raw(em, "\\n", 2);
        else if (*p == '\t')
            emit_raw(em, "\\t", 2);
        else if (*p < 0x20 || *p == 0x7F || !n)
            emit(em, "\\x%02X", *p); /* invalid UTF-8 cannot round-trip: closest we can do */
        else if (n > 1 && needs_escape(cp))
            emit(em, "\\u%04X", (unsigned)cp);
        else
            emit_raw(em, (const char *)p, n);
        p += n ? n : 1;
    }
    emit_raw(em, "\"", 1);
}

static void emit_string(struct emitter *em, const char *s)
{
    if (needs_quotes(s))
        emit_quoted(em, s);
    else
        emit_raw(em, s, strlen(s));
}

/* A value as the loader will read it back: the loader expands `${` and `$$`, so each `$`
 * before `{` or `$` is written doubled ("${X}" -> "$${X}", "$$" -> "$$$"). Keys are not
 * expanded and go through emit_string as they are. */
static void emit_value(struct emitter *em, const char *s)
{
    size_t len = strlen(s);
    if (!mw__config_expand_needed(s, len)) {
        emit_string(em, s);
        return;
    }
    char *escaped = mw_malloc(2 * len + 1);
    if (!escaped) {
        em->rc = MW_ENOMEM;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '$' && (s[i + 1] == '{' || s[i + 1] == '$'))
            escaped[n++] = '$';
        escaped[n++] = s[i];
    }
    escaped[n] = '\0';
    emit_string(em, escaped);
    mw_free(escaped);
}

/* "key: value" for a free-form key; very long keys use the explicit "? key" form. Values of
 * entries `secret_entry` names are credentials, never printed. */
static void emit_strmap(struct emitter *em, const struct mw_cfg_strmap *map, int indent,
                        bool (*secret_entry)(const char *name))
{
    for (size_t i = 0; i < map->n; i++) {
        bool explicit_key = strlen(map->keys[i]) > 200; /* YAML caps simple keys at 1024 */
        emit(em, "%*s%s", indent, "", explicit_key ? "? " : "");
        emit_string(em, map->keys[i]);
        if (explicit_key)
            emit(em, "\n%*s", indent, "");
        emit_raw(em, ": ", 2);
        bool secret = secret_entry && secret_entry(map->keys[i]) && *map->values[i];
        emit_value(em, secret ? MW_CFG_REDACTED : map->values[i]);
        emit_raw(em, "\n", 1);
    }
}

static void emit_level(struct emitter *em, const struct mw_cfg_field *table, const void *obj,
                       const char *prefix, size_t plen, int indent);

static void emit_list(struct emitter *em, const struct mw_cfg_field *f,
                      const struct mw_cfg_list *list, int indent)
{
    for (size_t i = 0; i < list->n && !em->rc; i++) {
        size_t start = em->out->len;
        emit_level(em, f->sub, (const char *)list->items + i * f->elem_size, "", 0, indent + 2);
        if (em->rc)
            return;
        if (em->out->len == start)
            emit(em, "%*s- {}\n", indent, "");
        else
            em->out->data[start + (size_t)indent] = '-'; /* "    a: 1" -> "  - a: 1" */
    }
}

static void emit_collection(struct emitter *em, const struct mw_cfg_field *f, const void *src,
                            int indent)
{
    if (f->type == MW_CFG_STRMAP) {
        const struct mw_cfg_strmap *map = src;
        emit_raw(em, map->n ? "\n" : " {}\n", map->n ? 1 : 4);
        emit_strmap(em, map, indent + 2, f->secret_entry);
    } else if (f->type == MW_CFG_STRLIST) {
        const struct mw_cfg_strlist *list = src;
        emit_raw(em, list->n ? "\n" : " []\n", list->n ? 1 : 4);
        for (size_t i = 0; i < list->n; i++) {
            emit(em, "%*s- ", indent + 2, "");
            emit_value(em, list->items[i]);
            emit_raw(em, "\n", 1);
        }
    } else {
        const struct mw_cfg_list *list = src;
        emit_raw(em, list->n && f->sub ? "\n" : " []\n", list->n && f->sub ? 1 : 4);
        if (f->sub)
            emit_list(em, f, list, indent + 2);
    }
}

/* `url` with the credential in its userinfo replaced: "https://u:<redacted>@h/p", or
 * "https://<redacted>@h/p" for a userinfo without a password (a token). */
static void emit_url_redacted(struct emitter *em, const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *authority = scheme_end ? scheme_end + 3 : url;
    size_t authority_len = strcspn(authority, "/?#");
    const char *at = NULL;
    for (const char *p = authority; p < authority + authority_len; p++)
        if (*p == '@')
            at = p; /* the last '@' ends the userinfo */
    if (!at) {
        emit_value(em, url);
        return;
    }
    const char *colon = memchr(authority, ':', (size_t)(at - authority));
    size_t kept = (size_t)((colon ? colon + 1 : authority) - url);
    char *text = mw_malloc(strlen(url) + sizeof MW_CFG_REDACTED);
    if (!text) {
        em->rc = MW_ENOMEM;
        return;
    }
    sprintf(text, "%.*s%s%s", (int)kept, url, MW_CFG_REDACTED, at);
    emit_value(em, text);
    mw_free(text);
}

static void emit_scalar_value(struct emitter *em, const struct mw_cfg_field *f, const void *src)
{
    char text[64];
    switch (f->type) {
    case MW_CFG_STRING:
        if (*(char *const *)src && f->secret && **(char *const *)src)
            emit_string(em, MW_CFG_REDACTED);
        else if (*(char *const *)src && f->secret_userinfo)
            emit_url_redacted(em, *(char *const *)src);
        else if (*(char *const *)src)
            emit_value(em, *(char *const *)src);
        else
            emit_raw(em, "~", 1);
        return;
    case MW_CFG_INT:
        snprintf(text, sizeof text, "%" PRId64, *(const int64_t *)src);
        break;
    case MW_CFG_DOUBLE:
        format_double(*(const double *)src, text, sizeof text);
        break;
    case MW_CFG_BOOL:
        snprintf(text, sizeof text, "%s", *(const bool *)src ? "true" : "false");
        break;
    case MW_CFG_DURATION:
        format_duration(*(const int64_t *)src, text, sizeof text);
        break;
    case MW_CFG_SIZE:
        format_units(size_units, *(const uint64_t *)src, text, sizeof text);
        break;
    default:
        snprintf(text, sizeof text, "~");
        break;
    }
    emit_raw(em, text, strlen(text));
}

static void emit_enum(struct emitter *em, const struct mw_cfg_field *f, int index)
{
    for (int i = 0; f->choices && f->choices[i]; i++) {
        if (i == index) {
            emit_string(em, f->choices[i]);
            return;
        }
    }
    emit(em, "~ # invalid index %d", index);
}

static void emit_field(struct emitter *em, const struct mw_cfg_field *f, const void *obj,
                       const char *name, int indent)
{
    const void *src = (const char *)obj + f->offset;
    emit(em, "%*s%s:", indent, "", name);
    if (f->type == MW_CFG_STRMAP || f->type == MW_CFG_STRLIST || f->type == MW_CFG_LIST) {
        emit_collection(em, f, src, indent);
        return;
    }
    emit_raw(em, " ", 1);
    if (f->type == MW_CFG_ENUM)
        emit_enum(em, f, *(const int *)src);
    else
        emit_scalar_value(em, f, src);
    emit_raw(em, "\n", 1);
}

/* Whether a field before index i already opened the mapping for the first n bytes of key. */
static bool opened_before(const struct mw_cfg_field *table, size_t i, const char *key, size_t n)
{
    for (size_t j = 0; j < i; j++)
        if (!strncmp(table[j].key, key, n))
            return true;
    return false;
}

/* Write the fields under `prefix` (a dotted path ending in '.', or ""), in table order. */
static void emit_level(struct emitter *em, const struct mw_cfg_field *table, const void *obj,
                       const char *prefix, size_t plen, int indent)
{
    for (size_t i = 0; table[i].key && !em->rc; i++) {
        const char *key = table[i].key;
        if (strncmp(key, prefix, plen))
            continue;
        const char *rest = key + plen;
        const char *dot = strchr(rest, '.');
        if (!dot) {
            emit_field(em, &table[i], obj, rest, indent);
            continue;
        }
        size_t seg = (size_t)(dot - rest);
        if (opened_before(table, i, key, plen + seg + 1))
            continue;
        emit(em, "%*s%.*s:\n", indent, "", (int)seg, rest);
        emit_level(em, table, obj, key, plen + seg + 1, indent + 2);
    }
}

int mw_config_dump(const struct mw_cfg_field *table, const void *obj, struct mw_buf *out)
{
    struct emitter em = {.out = out, .rc = 0};
    if (!table || !obj || !out)
        return MW_EINVAL;
    emit_level(&em, table, obj, "", 0, 0);
    return em.rc;
}
