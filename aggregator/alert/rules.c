/*
 * rules.c — rule files (rules.h): common/config.c's table loads and type-checks the YAML, then
 * the checks across fields run over the loaded struct, with lines looked up in a key index of
 * the same text (yaml_lines.h), and the rules are compiled (signal, comparison, thresholds,
 * templates) into the set.
 */
#include "rules.h"

#include "alloc.h"
#include "error.h"
#include "yaml_lines.h"

#include <errno.h>
#include <fnmatch.h>
#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RULE_FILE_BYTES (1u << 20)
#define NAME_MAX_BYTES 128

/* ---------------------------------------------------------------------------------------- */
/* The catalogue                                                                             */

#define MW__SIGNAL_INFO(id, name, flags, unit, desc) {name, flags, unit, desc},
static const struct mw_signal_info signal_infos[] = {MW_SIGNAL_MAP(MW__SIGNAL_INFO)};
#undef MW__SIGNAL_INFO

const struct mw_signal_info *mw_signal_info(enum mw_signal s)
{
    return (unsigned)s < MW_SIGNAL_COUNT ? &signal_infos[s] : NULL;
}

int mw_signal_parse(const char *name, enum mw_signal *out)
{
    for (int i = 0; name && i < MW_SIGNAL_COUNT; i++) {
        if (!strcmp(signal_infos[i].name, name)) {
            *out = (enum mw_signal)i;
            return 0;
        }
    }
    return MW_ENOTFOUND;
}

static const char *const severity_names[] = {"critical", "error", "warning", "info", NULL};

const char *mw_severity_name(enum mw_severity s)
{
    return (unsigned)s < 4 ? severity_names[s] : "?";
}

/* Drift verdicts a threshold may name, at the levels /metrics exports. */
static const struct {
    const char *name;
    double level;
} verdict_levels[] = {{"none", 0}, {"possible", 1}, {"drift", 2}};

/* ---------------------------------------------------------------------------------------- */
/* The file's tables                                                                         */

struct rule_cfg {
    char *name;
    char *signal;
    char *model;
    char *version;
    char *feature;
    int resolution;
    int comparison;
    char *threshold;
    char *resolve_threshold;
    int64_t for_ms;
    int64_t keep_firing_for_ms;
    int64_t delay_ms;
    int64_t min_samples;
    int severity;
    int64_t long_window_ms;
    int64_t short_window_ms;
    double factor;
    int64_t flap_max_changes;
    int64_t flap_period_ms;
    struct mw_cfg_strmap labels;
    char *summary;
    char *description;
    char *runbook_url;
    char *dashboard_url;
};

struct group_cfg {
    char *name;
    int64_t interval_ms;
    struct mw_cfg_list rules;
};

struct file_cfg {
    struct mw_cfg_list groups;
};

static const char *check_signal(const void *value)
{
    static _Thread_local char why[160];
    const char *name = *(char *const *)value;
    enum mw_signal s;
    if (!name || !mw_signal_parse(name, &s))
        return NULL;
    snprintf(why, sizeof why, "unknown signal \"%.48s\" (config/rules/README.md lists the signals)",
             name);
    return why;
}

/* A threshold: a finite number, or a drift verdict's name. */
static int parse_threshold(const char *text, double *out, bool *is_verdict)
{
    char *end;
    *is_verdict = false;
    for (size_t i = 0; i < sizeof verdict_levels / sizeof verdict_levels[0]; i++) {
        if (!strcmp(text, verdict_levels[i].name)) {
            *out = verdict_levels[i].level;
            *is_verdict = true;
            return 0;
        }
    }
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || !isfinite(v) || text[0] == ' ')
        return MW_EINVAL;
    *out = v;
    return 0;
}

static const char *check_threshold(const void *value)
{
    const char *text = *(char *const *)value;
    double v;
    bool verdict;
    if (!text || !parse_threshold(text, &v, &verdict))
        return NULL;
    return "expected a finite number (or, for drift_verdict, none, possible or drift)";
}

static const char *check_glob(const void *value)
{
    const char *text = *(char *const *)value;
    if (text && !*text)
        return "empty pattern (use \"*\" for any)";
    if (text && strlen(text) > 256)
        return "pattern longer than 256 bytes";
    return NULL;
}

static const char *const resolution_choices[] = {"1m", "1h", "fine", "coarse", NULL};
static const char *const comparison_choices[] = {">", ">=", "<", "<=", "==", "!=", NULL};

#define R(member) offsetof(struct rule_cfg, member)
static const struct mw_cfg_field rule_table[] = {
    {.key = "name",
     .type = MW_CFG_STRING,
     .offset = R(name),
     .required = true,
     .desc = "Alert name, unique in the file (the label alertname)"},
    {.key = "signal",
     .type = MW_CFG_STRING,
     .offset = R(signal),
     .required = true,
     .check = check_signal,
     .desc = "Signal from the catalogue (rules.h)"},
    {.key = "model",
     .type = MW_CFG_STRING,
     .offset = R(model),
     .def = "*",
     .check = check_glob,
     .desc = "Glob on model names"},
    {.key = "version",
     .type = MW_CFG_STRING,
     .offset = R(version),
     .def = "*",
     .check = check_glob,
     .desc = "Glob on versions"},
    {.key = "feature",
     .type = MW_CFG_STRING,
     .offset = R(feature),
     .check = check_glob,
     .desc = "Glob on feature names (drift signals)"},
    {.key = "resolution",
     .type = MW_CFG_ENUM,
     .offset = R(resolution),
     .def = "1m",
     .choices = resolution_choices,
     .desc = "Window: 1m (fine) or 1h (coarse)"},
    {.key = "comparison",
     .type = MW_CFG_ENUM,
     .offset = R(comparison),
     .required = true,
     .choices = comparison_choices,
     .desc = "How the value compares with the threshold"},
    {.key = "threshold",
     .type = MW_CFG_STRING,
     .offset = R(threshold),
     .check = check_threshold,
     .desc = "Threshold (not for burn_rate)"},
    {.key = "resolve_threshold",
     .type = MW_CFG_STRING,
     .offset = R(resolve_threshold),
     .check = check_threshold,
     .desc = "Hysteresis: firing holds while value <cmp> this"},
    {.key = "for",
     .type = MW_CFG_DURATION,
     .offset = R(for_ms),
     .def = "0",
     .min = 0,
     .max = 30 * 86400000.0,
     .desc = "Event time the breach must last"},
    {.key = "keep_firing_for",
     .type = MW_CFG_DURATION,
     .offset = R(keep_firing_for_ms),
     .def = "0",
     .min = 0,
     .max = 30 * 86400000.0,
     .desc = "Keep firing after the last breach"},
    {.key = "delay",
     .type = MW_CFG_DURATION,
     .offset = R(delay_ms),
     .def = "0",
     .min = 0,
     .max = 7 * 86400000.0,
     .desc = "Event time a final window waits before this rule judges it (late data, labels)"},
    {.key = "min_samples",
     .type = MW_CFG_INT,
     .offset = R(min_samples),
     .def = "0",
     .min = 0,
     .max = 1e12,
     .desc = "Fewer values behind a window: no verdict"},
    {.key = "severity",
     .type = MW_CFG_ENUM,
     .offset = R(severity),
     .required = true,
     .choices = severity_names,
     .desc = "critical, error, warning or info"},
    {.key = "long_window",
     .type = MW_CFG_DURATION,
     .offset = R(long_window_ms),
     .min = 60000,
     .max = 30 * 86400000.0,
     .desc = "burn_rate: the long window"},
    {.key = "short_window",
     .type = MW_CFG_DURATION,
     .offset = R(short_window_ms),
     .min = 60000,
     .max = 30 * 86400000.0,
     .desc = "burn_rate: the short window"},
    {.key = "factor",
     .type = MW_CFG_DOUBLE,
     .offset = R(factor),
     .min = 0.001,
     .max = 1e6,
     .desc = "burn_rate: the burn rate both windows must exceed"},
    {.key = "flap_max_changes",
     .type = MW_CFG_INT,
     .offset = R(flap_max_changes),
     .def = "4",
     .min = 1,
     .max = MW_FLAP_MAX_CHANGES,
     .desc = "More changes than this within ..."},
    {.key = "flap_period",
     .type = MW_CFG_DURATION,
     .offset = R(flap_period_ms),
     .def = "1h",
     .min = 60000,
     .max = 7 * 86400000.0,
     .desc = "... this period: flapping"},
    {.key = "labels", .type = MW_CFG_STRMAP, .offset = R(labels), .desc = "Extra labels"},
    {.key = "annotations.summary",
     .type = MW_CFG_STRING,
     .offset = R(summary),
     .required = true,
     .check = mw_template_check,
     .desc = "One line for the page (template)"},
    {.key = "annotations.description",
     .type = MW_CFG_STRING,
     .offset = R(description),
     .check = mw_template_check,
     .desc = "More detail (template)"},
    {.key = "annotations.runbook_url",
     .type = MW_CFG_STRING,
     .offset = R(runbook_url),
     .check = mw_template_check,
     .desc = "What to do (template)"},
    {.key = "annotations.dashboard_url",
     .type = MW_CFG_STRING,
     .offset = R(dashboard_url),
     .check = mw_template_check,
     .desc = "Where to look (template)"},
    MW_CFG_END,
};
#undef R

#define G(member) offsetof(struct group_cfg, member)
static const struct mw_cfg_field group_table[] = {
    {.key = "name",
     .type = MW_CFG_STRING,
     .offset = G(name),
     .required = true,
     .desc = "Group name, unique in the file"},
    {.key = "interval",
     .type = MW_CFG_DURATION,
     .offset = G(interval_ms),
     .def = "1m",
     .min = 1000,
     .max = 86400000,
     .desc = "Period of wall-clock rules (absence)"},
    {.key = "rules",
     .type = MW_CFG_LIST,
     .offset = G(rules),
     .sub = rule_table,
     .elem_size = sizeof(struct rule_cfg),
     .desc = "The rules"},
    MW_CFG_END,
};
#undef G

static const struct mw_cfg_field file_table[] = {
    {.key = "groups",
     .type = MW_CFG_LIST,
     .offset = offsetof(struct file_cfg, groups),
     .sub = group_table,
     .elem_size = sizeof(struct group_cfg),
     .desc = "Rule groups"},
    MW_CFG_END,
};

/* ---------------------------------------------------------------------------------------- */
/* Checks across fields                                                                      */

struct checker {
    const char *name; /* file name for messages */
    struct mw_yaml_lines lines;
    struct mw_cfg_error *err;
    char prefix[64]; /* "groups[0].rules[2]." */
};

/* "FILE:LINE: PREFIXKEY: ..." with the line of the key, or of the rule when it is absent. */
__attribute__((format(printf, 3, 4))) static int fail_at(struct checker *c, const char *key,
                                                         const char *fmt, ...)
{
    char item[64];
    size_t line = mw_yaml_lines_find2(&c->lines, c->prefix, key);
    if (!line) {
        snprintf(item, sizeof item, "%s", c->prefix);
        size_t len = strlen(item);
        if (len && item[len - 1] == '.')
            item[len - 1] = '\0';
        line = mw_yaml_lines_find(&c->lines, item);
    }
    char full_key[MW_LABEL_NAME_MAX + 160];
    snprintf(full_key, sizeof full_key, "%s%s", c->prefix, key);
    va_list ap;
    va_start(ap, fmt);
    int rc = mw_yaml_lines_vformat(c->err, c->name, line, full_key, fmt, ap);
    va_end(ap);
    return rc;
}

static bool present(const struct checker *c, const char *key)
{
    return mw_yaml_lines_find2(&c->lines, c->prefix, key) != 0;
}

static bool rule_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (!len || len > NAME_MAX_BYTES)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr("_.:-", *p)))
            return false;
    return true;
}

static bool reserved_label(const char *name)
{
    static const char *const reserved[] = {"alertname", "severity", "signal",
                                           "model",     "version",  "feature"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcmp(reserved[i], name))
            return true;
    return false;
}

static int check_labels(struct checker *c, const struct rule_cfg *rc)
{
    char key[MW_LABEL_NAME_MAX + 16];
    if (rc->labels.n > MW_LABELS_MAX - 6)
        return fail_at(c, "labels", "more than %d labels", MW_LABELS_MAX - 6);
    for (size_t i = 0; i < rc->labels.n; i++) {
        snprintf(key, sizeof key, "labels.%.*s", MW_LABEL_NAME_MAX, rc->labels.keys[i]);
        if (!mw_label_name_valid(rc->labels.keys[i]))
            return fail_at(c, key, "invalid label name (use [A-Za-z_][A-Za-z0-9_]*)");
        if (reserved_label(rc->labels.keys[i]))
            return fail_at(c, key, "the rule sets this label itself");
        if (strlen(rc->labels.values[i]) > MW_LABEL_VALUE_MAX)
            return fail_at(c, key, "value longer than %d bytes", MW_LABEL_VALUE_MAX);
    }
    return 0;
}

/* Side of the threshold the resolve threshold must lie on: "at most" for > and >=. */
static int check_resolve(struct checker *c, const struct rule_cfg *rc, double threshold,
                         double resolve)
{
    enum mw_cmp cmp = (enum mw_cmp)rc->comparison;
    if (cmp == MW_CMP_EQ || cmp == MW_CMP_NE)
        return fail_at(c, "resolve_threshold", "no hysteresis with comparison \"%s\"",
                       mw_cmp_name(cmp));
    bool above = cmp == MW_CMP_GT || cmp == MW_CMP_GE;
    if ((above && resolve > threshold) || (!above && resolve < threshold))
        return fail_at(c, "resolve_threshold",
                       "%s is on the wrong side of threshold %g (with comparison \"%s\" it must "
                       "be at %s the threshold)",
                       rc->resolve_threshold, threshold, mw_cmp_name(cmp),
                       above ? "most" : "least");
    return 0;
}

static int check_burn(struct checker *c, const struct rule_cfg *rc)
{
    static const char *const needed[] = {"long_window", "short_window", "factor"};
    static const char *const refused[] = {"threshold", "resolution"};
    for (size_t i = 0; i < 3; i++)
        if (!present(c, needed[i]))
            return fail_at(c, needed[i], "required key missing (signal burn_rate)");
    for (size_t i = 0; i < 2; i++)
        if (present(c, refused[i]))
            return fail_at(c, refused[i],
                           "not for burn_rate (it takes long_window, "
                           "short_window and factor)");
    if (rc->short_window_ms >= rc->long_window_ms)
        return fail_at(c, "short_window", "must be shorter than long_window");
    if (rc->comparison != MW_CMP_GT && rc->comparison != MW_CMP_GE)
        return fail_at(c, "comparison", "burn_rate takes \">\" or \">=\"");
    return 0;
}

/* Everything the table cannot check about one rule. *threshold, *resolve are set. */
static bool delay_known(const struct mw_rule *rules, size_t n, int64_t delay_ms)
{
    for (size_t i = 0; i < n; i++)
        if (rules[i].delay_ms == delay_ms)
            return true;
    return delay_ms == 0; /* every rule set has the undelayed cursor */
}

static size_t distinct_delays(const struct mw_rule *rules, size_t n)
{
    size_t count = 1; /* 0 */
    for (size_t i = 0; i < n; i++)
        if (rules[i].delay_ms != 0 && !delay_known(rules, i, rules[i].delay_ms))
            count++;
    return count;
}

static int check_rule(struct checker *c, const struct rule_cfg *rc, double *threshold,
                      double *resolve)
{
    enum mw_signal sig;
    bool verdict = false, resolve_verdict = false;
    int err;
    mw_signal_parse(rc->signal, &sig); /* checked by the table */
    const struct mw_signal_info *info = mw_signal_info(sig);
    if (!rule_name_valid(rc->name))
        return fail_at(c, "name", "invalid name (1 to %d characters from [A-Za-z0-9_.:-])",
                       NAME_MAX_BYTES);
    if (present(c, "feature") && !(info->flags & (MW_SIGNAL_FEATURE | MW_SIGNAL_VERDICT)))
        return fail_at(c, "feature", "signal %s is not per feature", info->name);
    if (info->flags & MW_SIGNAL_PIPELINE) {
        if (present(c, "model") || present(c, "version"))
            return fail_at(c, present(c, "model") ? "model" : "version",
                           "signal %s is of the pipeline, not of a model", info->name);
    }
    if (present(c, "min_samples") && !(info->flags & MW_SIGNAL_COUNTED))
        return fail_at(c, "min_samples", "signal %s has no sample count", info->name);
    if ((info->flags & (MW_SIGNAL_WALL | MW_SIGNAL_BURN)) && present(c, "delay"))
        return fail_at(c, "delay", "signal %s is not judged per final window", info->name);
    if ((info->flags & MW_SIGNAL_WALL) && present(c, "resolution"))
        return fail_at(c, "resolution", "signal %s runs on the wall clock, every interval",
                       info->name);
    if (info->flags & MW_SIGNAL_BURN) {
        if ((err = check_burn(c, rc)))
            return err;
        *threshold = rc->factor;
    } else {
        static const char *const burn_only[] = {"long_window", "short_window", "factor"};
        for (size_t i = 0; i < 3; i++)
            if (present(c, burn_only[i]))
                return fail_at(c, burn_only[i], "only for signal burn_rate");
        if (!rc->threshold)
            return fail_at(c, "threshold", "required key missing");
        parse_threshold(rc->threshold, threshold, &verdict);
    }
    if (sig == MW_SIGNAL_ABSENCE && rc->comparison != MW_CMP_GT &&
        rc->comparison != MW_CMP_GE)
        return fail_at(c, "comparison", "%s takes \">\" or \">=\" (seconds without data)",
                       info->name);
    *resolve = *threshold;
    if (rc->resolve_threshold) {
        parse_threshold(rc->resolve_threshold, resolve, &resolve_verdict);
        if ((err = check_resolve(c, rc, *threshold, *resolve)))
            return err;
    }
    if ((verdict || resolve_verdict) && sig != MW_SIGNAL_DRIFT_VERDICT)
        return fail_at(c, verdict ? "threshold" : "resolve_threshold",
                       "a verdict name is a threshold for drift_verdict only");
    return check_labels(c, rc);
}

/* ---------------------------------------------------------------------------------------- */
/* Compiling                                                                                 */

static void rule_free(struct mw_rule *r)
{
    mw_free(r->name);
    mw_free(r->group);
    mw_free(r->model);
    mw_free(r->version);
    mw_free(r->feature);
    mw_labels_free(&r->labels);
    mw_template_free(r->summary);
    mw_template_free(r->description);
    mw_template_free(r->runbook_url);
    mw_template_free(r->dashboard_url);
    memset(r, 0, sizeof *r);
}

static int compile_template(const char *text, struct mw_template **out)
{
    char why[256];
    if (!text)
        return 0;
    return mw_template_parse(text, out, why, sizeof why); /* checked when loaded */
}

static int compile_rule(const struct rule_cfg *rc, const struct group_cfg *gc, double threshold,
                        double resolve, struct mw_rule *r)
{
    int err = 0;
    memset(r, 0, sizeof *r);
    mw_signal_parse(rc->signal, &r->signal);
    r->resolution = rc->resolution % 2 ? MW_RESOLUTION_COARSE : MW_RESOLUTION_FINE;
    r->long_window_ms = rc->long_window_ms;
    r->short_window_ms = rc->short_window_ms;
    r->cond = (struct mw_rule_cond){
        .cmp = (enum mw_cmp)rc->comparison,
        .threshold = threshold,
        .resolve_threshold = resolve,
        .for_ms = rc->for_ms,
        .keep_firing_for_ms = rc->keep_firing_for_ms,
        .min_samples = rc->min_samples,
        .flap_max_changes = (int)rc->flap_max_changes,
        .flap_period_ms = rc->flap_period_ms,
    };
    r->severity = (enum mw_severity)rc->severity;
    r->interval_ms = gc->interval_ms;
    r->delay_ms = rc->delay_ms;
    r->name = mw_strdup(rc->name);
    r->group = mw_strdup(gc->name);
    r->model = mw_strdup(rc->model);
    r->version = mw_strdup(rc->version);
    const struct mw_signal_info *info = mw_signal_info(r->signal);
    if (rc->feature)
        r->feature = mw_strdup(rc->feature);
    else if (info->flags & MW_SIGNAL_FEATURE)
        r->feature = mw_strdup("*");
    if (!r->name || !r->group || !r->model || !r->version ||
        (!r->feature && (rc->feature || (info->flags & MW_SIGNAL_FEATURE))))
        err = MW_ENOMEM;
    for (size_t i = 0; !err && i < rc->labels.n; i++)
        err = mw_labels_set(&r->labels, rc->labels.keys[i], rc->labels.values[i]);
    if (!err)
        err = compile_template(rc->summary, &r->summary);
    if (!err)
        err = compile_template(rc->description, &r->description);
    if (!err)
        err = compile_template(rc->runbook_url, &r->runbook_url);
    if (!err)
        err = compile_template(rc->dashboard_url, &r->dashboard_url);
    if (err)
        rule_free(r);
    return err;
}

/* Check every rule of the loaded file and append the compiled rules to `set`. */
static int check_and_compile(struct checker *c, const struct file_cfg *fc, struct mw_rule_set *set,
                             const char *file)
{
    size_t n_rules = 0, done = 0;
    int err = 0;
    const struct group_cfg *groups = fc->groups.items;
    for (size_t g = 0; g < fc->groups.n; g++)
        n_rules += groups[g].rules.n;
    char *file_copy = mw_strdup(file);
    char **files = file_copy ? mw_realloc(set->files, (set->n_files + 1) * sizeof *files) : NULL;
    struct mw_rule *rules =
        files ? mw_realloc(set->rules, (set->n + n_rules + 1) * sizeof *rules) : NULL;
    if (files)
        set->files = files;
    if (rules)
        set->rules = rules;
    if (!rules) {
        mw_free(file_copy);
        snprintf(c->err->message, sizeof c->err->message, "%s: out of memory", c->name);
        return MW_ENOMEM;
    }
    for (size_t g = 0; !err && g < fc->groups.n; g++) {
        snprintf(c->prefix, sizeof c->prefix, "groups[%zu].", g);
        for (size_t h = 0; !err && h < g; h++) {
            char first[64];
            snprintf(first, sizeof first, "groups[%zu]", h);
            if (!strcmp(groups[h].name, groups[g].name))
                err = fail_at(c, "name", "group \"%s\" is already defined on line %zu",
                              groups[g].name, mw_yaml_lines_find(&c->lines, first));
        }
        const struct rule_cfg *rcs = groups[g].rules.items;
        for (size_t i = 0; !err && i < groups[g].rules.n; i++) {
            double threshold = 0, resolve = 0;
            snprintf(c->prefix, sizeof c->prefix, "groups[%zu].rules[%zu].", g, i);
            err = check_rule(c, &rcs[i], &threshold, &resolve);
            for (size_t k = 0; !err && k < done; k++)
                if (!strcmp(rules[set->n + k].name, rcs[i].name))
                    err = fail_at(c, "name", "rule \"%s\" is already defined on line %zu",
                                  rcs[i].name, rules[set->n + k].line);
            if (!err && !delay_known(rules, set->n + done, rcs[i].delay_ms) &&
                distinct_delays(rules, set->n + done) >= MW_RULES_MAX_DELAYS)
                err = fail_at(c, "delay", "at most %d different delays across the rule files "
                              "(each is evaluated on its own cursor)", MW_RULES_MAX_DELAYS);
            if (!err)
                err = compile_rule(&rcs[i], &groups[g], threshold, resolve, &rules[set->n + done]);
            if (err == MW_ENOMEM)
                snprintf(c->err->message, sizeof c->err->message, "%s: out of memory", c->name);
            if (!err) {
                char item[64];
                snprintf(item, sizeof item, "groups[%zu].rules[%zu]", g, i);
                rules[set->n + done].line = mw_yaml_lines_find(&c->lines, item);
                rules[set->n + done].file = file_copy;
                done++;
            }
        }
    }
    if (err) {
        for (size_t k = 0; k < done; k++)
            rule_free(&rules[set->n + k]);
        mw_free(file_copy);
        return err;
    }
    set->files[set->n_files++] = file_copy;
    set->n += done;
    return 0;
}

int mw_rules_load_string(struct mw_rule_set *set, const char *text, const char *name,
                         struct mw_cfg_error *err)
{
    struct file_cfg fc;
    struct checker c = {.name = name ? name : "<string>", .err = err};
    int rc = mw_config_load_string(file_table, &fc, text, c.name, err);
    if (!rc) {
        rc = mw_yaml_lines_build(&c.lines, text, strlen(text));
        if (rc)
            snprintf(err->message, sizeof err->message, "%s: out of memory", c.name);
    }
    if (!rc)
        rc = check_and_compile(&c, &fc, set, c.name);
    mw_yaml_lines_free(&c.lines);
    mw_config_free(file_table, &fc);
    return rc;
}

int mw_rules_load_file(struct mw_rule_set *set, const char *path, struct mw_cfg_error *err)
{
    struct mw_buf text;
    char chunk[4096];
    size_t n;
    int rc = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err->message, sizeof err->message, "%s: cannot open: %s", path, strerror(errno));
        return MW_EIO;
    }
    mw_buf_init(&text, MAX_RULE_FILE_BYTES);
    while (!rc && (n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        rc = mw_buf_append(&text, chunk, n);
    if (rc == MW_EFULL) {
        snprintf(err->message, sizeof err->message, "%s: larger than %u bytes", path,
                 MAX_RULE_FILE_BYTES);
        rc = MW_ECONFIG;
    } else if (rc) {
        snprintf(err->message, sizeof err->message, "%s: out of memory", path);
    } else if (ferror(fp)) {
        snprintf(err->message, sizeof err->message, "%s: cannot read", path);
        rc = MW_EIO;
    } else if (text.data && memchr(text.data, '\0', text.len)) {
        snprintf(err->message, sizeof err->message, "%s: contains a NUL byte", path);
        rc = MW_ECONFIG;
    }
    fclose(fp);
    if (!rc)
        rc = mw_rules_load_string(set, text.data ? text.data : "", path, err);
    mw_buf_free(&text);
    return rc;
}

/* A directory of the pattern that does not exist matches nothing (a typo must read "no rule
 * file matches", not "cannot read a directory"); any other unreadable directory stops. */
static int glob_error(const char *path, int error)
{
    (void)path;
    return error != ENOENT && error != ENOTDIR;
}

int mw_rules_load_glob(struct mw_rule_set *set, const char *pattern, struct mw_cfg_error *err)
{
    glob_t g;
    int rc = glob(pattern, 0, glob_error, &g);
    if (rc == GLOB_NOMATCH) {
        snprintf(err->message, sizeof err->message, "%s: no rule file matches", pattern);
        return MW_ECONFIG;
    }
    if (rc) {
        snprintf(err->message, sizeof err->message, "%s: %s", pattern,
                 rc == GLOB_NOSPACE ? "out of memory" : "cannot read a directory");
        return rc == GLOB_NOSPACE ? MW_ENOMEM : MW_EIO;
    }
    for (size_t i = 0; !rc && i < g.gl_pathc; i++)
        rc = mw_rules_load_file(set, g.gl_pathv[i], err);
    globfree(&g);
    return rc;
}

void mw_rule_set_free(struct mw_rule_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++)
        rule_free(&set->rules[i]);
    for (size_t i = 0; i < set->n_files; i++)
        mw_free(set->files[i]);
    mw_free(set->rules);
    mw_free(set->files);
    *set = (struct mw_rule_set){0};
}

/* ---------------------------------------------------------------------------------------- */
/* Applying a rule                                                                           */

bool mw_rule_selects(const struct mw_rule *r, const char *model, const char *version,
                     const char *feature)
{
    if (!(mw_signal_info(r->signal)->flags & MW_SIGNAL_PIPELINE)) {
        if (fnmatch(r->model, model ? model : "", 0) ||
            fnmatch(r->version, version ? version : "", 0))
            return false;
    }
    if (!r->feature || !feature)
        return !r->feature && !feature;
    return fnmatch(r->feature, feature, 0) == 0;
}

const char *mw_signal_subject_label(enum mw_signal s)
{
    switch (s) {
    case MW_SIGNAL_AGENT_DROPS:
    case MW_SIGNAL_SPOOL_USE:
        return "agent";
    case MW_SIGNAL_CONSUMER_LAG:
        return "partition";
    default:
        return NULL;
    }
}

int mw_rule_alert_labels(const struct mw_rule *r, const char *model, const char *version,
                         const char *feature, struct mw_labels *out)
{
    if (mw_signal_info(r->signal)->flags & MW_SIGNAL_PIPELINE) {
        /* About the pipeline: the subject (an agent, a partition) instead of a model. */
        const char *subject = mw_signal_subject_label(r->signal);
        model = version = NULL;
        if (subject && feature && *feature) {
            int err = mw_labels_set(out, subject, feature);
            if (err) {
                mw_labels_free(out);
                return err;
            }
        }
        feature = NULL;
    }
    int err = mw_labels_set(out, "alertname", r->name);
    if (!err)
        err = mw_labels_set(out, "severity", mw_severity_name(r->severity));
    if (!err)
        err = mw_labels_set(out, "signal", mw_signal_info(r->signal)->name);
    if (!err && model)
        err = mw_labels_set(out, "model", model);
    if (!err && version && *version)
        err = mw_labels_set(out, "version", version);
    if (!err && feature)
        err = mw_labels_set(out, "feature", feature);
    for (size_t i = 0; !err && i < r->labels.n; i++)
        err = mw_labels_set(out, r->labels.items[i].name, r->labels.items[i].value);
    if (err)
        mw_labels_free(out);
    return err;
}

/* "1h30m", "5m", "0s". */
static void duration_text(int64_t ms, char *out, size_t size)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < 5 && used < size; i++) {
        int64_t n = ms / units[i].ms;
        ms %= units[i].ms;
        if (n)
            used +=
                (size_t)snprintf(out + used, size - used, "%lld%s", (long long)n, units[i].unit);
    }
    if (!out[0])
        snprintf(out, size, "0s");
}

void mw_rule_window_text(const struct mw_rule *r, char *out, size_t size)
{
    if (mw_signal_info(r->signal)->flags & MW_SIGNAL_BURN) {
        char l[32], s[32];
        duration_text(r->long_window_ms, l, sizeof l);
        duration_text(r->short_window_ms, s, sizeof s);
        snprintf(out, size, "%s/%s", l, s);
    } else if (mw_signal_info(r->signal)->flags & MW_SIGNAL_WALL) {
        duration_text(r->interval_ms, out, size);
    } else {
        snprintf(out, size, "%s", r->resolution == MW_RESOLUTION_COARSE ? "1h" : "1m");
    }
}

int mw_rule_annotations(const struct mw_rule *r, const struct mw_labels *labels,
                        const struct mw_rule_state *st, const char *runbook_base,
                        struct mw_labels *out)
{
    char window[64], for_text[32];
    mw_rule_window_text(r, window, sizeof window);
    duration_text(r->cond.for_ms, for_text, sizeof for_text);
    struct mw_template_ctx ctx = {
        .labels = labels,
        .has_value = st && st->has_value,
        .value = st ? st->value : NAN,
        .threshold = r->cond.threshold,
        .resolve_threshold = r->cond.resolve_threshold,
        .samples = st ? st->samples : 0,
        .window = window,
        .for_text = for_text,
        .rule = r->name,
        .group = r->group,
        .signal = mw_signal_info(r->signal)->name,
        .runbook_base = runbook_base,
    };
    const struct {
        const char *name;
        const struct mw_template *t;
    } parts[] = {{"summary", r->summary},
                 {"description", r->description},
                 {"runbook_url", r->runbook_url},
                 {"dashboard_url", r->dashboard_url}};
    struct mw_buf text;
    int err = 0;
    mw_buf_init(&text, MW_TEMPLATE_MAX_BYTES);
    for (size_t i = 0; !err && i < sizeof parts / sizeof parts[0]; i++) {
        if (!parts[i].t)
            continue;
        mw_buf_reset(&text);
        err = mw_template_render(parts[i].t, &ctx, &text);
        if (err == MW_EFULL) /* a long label value: the page still goes out, cut */
            err = 0;
        if (!err)
            err = mw_labels_set(out, parts[i].name, text.data ? text.data : "");
    }
    mw_buf_free(&text);
    if (err)
        mw_labels_free(out);
    return err;
}
