/* template.c — parsing and rendering of annotation templates (template.h). */
#include "template.h"

#include "alloc.h"
#include "error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum var {
    VAR_TEXT, /* a literal part */
    VAR_LABEL,
    VAR_VALUE,
    VAR_THRESHOLD,
    VAR_RESOLVE_THRESHOLD,
    VAR_SAMPLES,
    VAR_WINDOW,
    VAR_FOR,
    VAR_RULE,
    VAR_GROUP,
    VAR_SIGNAL,
    VAR_RUNBOOK_BASE,
};

enum filter { FILTER_NONE, FILTER_PERCENT, FILTER_DURATION, FILTER_FIXED2 };

static const struct {
    const char *name;
    enum var var;
    bool numeric;
} variables[] = {
    {"$value", VAR_VALUE, true},
    {"$threshold", VAR_THRESHOLD, true},
    {"$resolve_threshold", VAR_RESOLVE_THRESHOLD, true},
    {"$samples", VAR_SAMPLES, true},
    {"$window", VAR_WINDOW, false},
    {"$for", VAR_FOR, false},
    {"$rule", VAR_RULE, false},
    {"$group", VAR_GROUP, false},
    {"$signal", VAR_SIGNAL, false},
    {"$runbook_base", VAR_RUNBOOK_BASE, false},
};

static const char *const filter_names[] = {NULL, "percent", "duration", "fixed2"};

#define KNOWN_VARIABLES                                                                            \
    "$labels.NAME, $value, $threshold, $resolve_threshold, $samples, $window, $for, $rule, "       \
    "$group, $signal, $runbook_base"

struct part {
    enum var var;
    enum filter filter;
    char *text; /* VAR_TEXT: the text; VAR_LABEL: the label's name */
};

struct mw_template {
    size_t n;
    struct part *parts;
};

void mw_template_free(struct mw_template *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        mw_free(t->parts[i].text);
    mw_free(t->parts);
    mw_free(t);
}

static int add_part(struct mw_template *t, enum var var, enum filter filter, const char *text,
                    size_t len)
{
    struct part *parts = mw_realloc(t->parts, (t->n + 1) * sizeof *parts);
    if (!parts)
        return MW_ENOMEM;
    t->parts = parts;
    char *copy = mw_strndup(text, len);
    if (!copy)
        return MW_ENOMEM;
    parts[t->n++] = (struct part){.var = var, .filter = filter, .text = copy};
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* [start, end) without surrounding blanks. */
static void trim(const char **start, const char **end)
{
    while (*start < *end && is_space(**start))
        (*start)++;
    while (*end > *start && is_space((*end)[-1]))
        (*end)--;
}

__attribute__((format(printf, 3, 4))) static int bad(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return MW_ECONFIG;
}

/* One {{ ... }} expression, [s, e) trimmed. */
static int parse_expr(struct mw_template *t, const char *s, const char *e, char *why, size_t size)
{
    trim(&s, &e);
    int len = (int)(e - s);
    if (s == e)
        return bad(why, size, "empty {{ }}");
    if (*s == '"') { /* a string literal, for text that would otherwise open a variable */
        if (e - s < 2 || e[-1] != '"' || memchr(s + 1, '"', (size_t)(e - s - 2)))
            return bad(why, size, "bad string literal {{ %.*s }}", len, s);
        return add_part(t, VAR_TEXT, FILTER_NONE, s + 1, (size_t)(e - s - 2));
    }
    const char *bar = memchr(s, '|', (size_t)(e - s));
    const char *ve = bar ? bar : e, *fs = bar ? bar + 1 : e, *fe = e;
    trim(&s, &ve);
    trim(&fs, &fe);
    enum filter filter = FILTER_NONE;
    if (bar) {
        for (int i = 1; i < 4 && filter == FILTER_NONE; i++)
            if ((size_t)(fe - fs) == strlen(filter_names[i]) &&
                !memcmp(fs, filter_names[i], (size_t)(fe - fs)))
                filter = (enum filter)i;
        if (filter == FILTER_NONE)
            return bad(why, size, "unknown filter \"%.*s\" (use percent, duration or fixed2)",
                       (int)(fe - fs), fs);
    }
    size_t vlen = (size_t)(ve - s);
    static const char label_prefix[] = "$labels.";
    if (vlen > sizeof label_prefix - 1 && !memcmp(s, label_prefix, sizeof label_prefix - 1)) {
        const char *name = s + sizeof label_prefix - 1;
        char copy[MW_LABEL_NAME_MAX + 1];
        size_t nlen = (size_t)(ve - name);
        if (nlen > MW_LABEL_NAME_MAX)
            return bad(why, size, "label name too long in {{ %.*s }}", len, s);
        memcpy(copy, name, nlen);
        copy[nlen] = '\0';
        if (!mw_label_name_valid(copy))
            return bad(why, size, "invalid label name \"%s\" in {{ %.*s }}", copy, len, s);
        if (filter != FILTER_NONE)
            return bad(why, size, "filter %s applies to numbers, not to $labels",
                       filter_names[filter]);
        return add_part(t, VAR_LABEL, filter, name, nlen);
    }
    for (size_t i = 0; i < sizeof variables / sizeof variables[0]; i++) {
        if (strlen(variables[i].name) != vlen || memcmp(variables[i].name, s, vlen))
            continue;
        if (filter != FILTER_NONE && !variables[i].numeric)
            return bad(why, size, "filter %s applies to numbers, not to %s", filter_names[filter],
                       variables[i].name);
        return add_part(t, variables[i].var, filter, "", 0);
    }
    if (*s != '$')
        return bad(why, size, "{{ %.*s }} is not a variable (use " KNOWN_VARIABLES ")", len, s);
    return bad(why, size, "unknown variable %.*s (use " KNOWN_VARIABLES ")", (int)vlen, s);
}

int mw_template_parse(const char *text, struct mw_template **out, char *why, size_t why_size)
{
    *out = NULL;
    if (!text)
        return bad(why, why_size, "no text");
    if (strlen(text) > MW_TEMPLATE_MAX_BYTES)
        return bad(why, why_size, "longer than %d bytes", MW_TEMPLATE_MAX_BYTES);
    struct mw_template *t = mw_calloc(1, sizeof *t);
    if (!t)
        return MW_ENOMEM;
    int rc = 0;
    const char *p = text;
    while (!rc && *p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            rc = add_part(t, VAR_TEXT, FILTER_NONE, p, strlen(p));
            break;
        }
        if (open > p)
            rc = add_part(t, VAR_TEXT, FILTER_NONE, p, (size_t)(open - p));
        const char *close = rc ? NULL : strstr(open + 2, "}}");
        if (!rc && !close)
            rc = bad(why, why_size, "\"{{\" without \"}}\"");
        if (!rc)
            rc = parse_expr(t, open + 2, close, why, why_size);
        p = close ? close + 2 : p;
    }
    if (rc) {
        if (rc == MW_ENOMEM)
            snprintf(why, why_size, "out of memory");
        mw_template_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

const char *mw_template_check(const void *value)
{
    static _Thread_local char why[256];
    const char *text = *(char *const *)value;
    struct mw_template *t;
    if (!text)
        return NULL;
    if (mw_template_parse(text, &t, why, sizeof why))
        return why;
    mw_template_free(t);
    return NULL;
}

/* "1h30m", "45s", "2d3h"; seconds are rounded. */
static void format_duration(double seconds, char *out, size_t size)
{
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e12) {
        snprintf(out, size, "%g s", seconds);
        return;
    }
    uint64_t s = (uint64_t)llround(seconds);
    static const struct {
        const char *unit;
        uint64_t seconds;
    } units[] = {{"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 4 && used < size; i++) {
        uint64_t n = s / units[i].seconds;
        s %= units[i].seconds;
        if (n)
            used += (size_t)snprintf(out + used, size - used, "%llu%s", (unsigned long long)n,
                                     units[i].unit);
    }
    if (!out[0])
        snprintf(out, size, "0s");
}

static void format_number(double v, enum filter filter, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "n/a");
        return;
    }
    switch (filter) {
    case FILTER_PERCENT:
        snprintf(out, size, "%.4g%%", v * 100);
        break;
    case FILTER_DURATION:
        format_duration(v, out, size);
        break;
    case FILTER_FIXED2:
        snprintf(out, size, "%.2f", v);
        break;
    case FILTER_NONE:
        snprintf(out, size, "%.4g", v);
        break;
    }
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

int mw_template_render(const struct mw_template *t, const struct mw_template_ctx *ctx,
                       struct mw_buf *out)
{
    char number[64];
    int rc = 0;
    for (size_t i = 0; t && !rc && i < t->n; i++) {
        const struct part *p = &t->parts[i];
        const char *s = NULL;
        double v = NAN;
        switch (p->var) {
        case VAR_TEXT:
            s = p->text;
            break;
        case VAR_LABEL:
            s = or_empty(mw_labels_get(ctx->labels, p->text));
            break;
        case VAR_VALUE:
            v = ctx->has_value ? ctx->value : NAN;
            break;
        case VAR_THRESHOLD:
            v = ctx->threshold;
            break;
        case VAR_RESOLVE_THRESHOLD:
            v = ctx->resolve_threshold;
            break;
        case VAR_SAMPLES:
            v = (double)ctx->samples;
            break;
        case VAR_WINDOW:
            s = or_empty(ctx->window);
            break;
        case VAR_FOR:
            s = or_empty(ctx->for_text);
            break;
        case VAR_RULE:
            s = or_empty(ctx->rule);
            break;
        case VAR_GROUP:
            s = or_empty(ctx->group);
            break;
        case VAR_SIGNAL:
            s = or_empty(ctx->signal);
            break;
        case VAR_RUNBOOK_BASE:
            s = or_empty(ctx->runbook_base);
            break;
        }
        if (!s) {
            format_number(v, p->filter, number, sizeof number);
            s = number;
        }
        rc = mw_buf_append_str(out, s);
    }
    return rc;
}
