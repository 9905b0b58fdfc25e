/* cmd_windows.c — `models`, `windows` and `slo`: what the aggregator has seen, window by
 * window, and the burn rates of the availability objective. */
#include "ctl.h"

#include <stdio.h>
#include <string.h>

/* A model's profile versions joined by commas ("-" for none); false after printing why the
 * request failed. */
static bool profile_versions(const struct options *o, const char *model, char *out, size_t size)
{
    struct path p = {0};
    ctl_model_path(&p, model, "/profiles");
    json_t *doc = ctl_path_ok(&p) ? ctl_get(o, p.text) : NULL;
    if (!doc)
        return false;
    size_t i, len = 0;
    json_t *v;
    snprintf(out, size, "-");
    json_array_foreach(json_object_get(doc, "versions"), i, v)
    {
        if (len < size)
            len +=
                (size_t)snprintf(out + len, size - len, "%s%s", i ? "," : "", json_string_value(v));
    }
    json_decref(doc);
    return true;
}

int ctl_cmd_models(const struct options *o)
{
    json_t *doc = ctl_get(o, "/api/v1/models");
    if (!doc)
        return 1;
    if (o->format == CTL_JSON)
        return ctl_print_json(doc);
    json_t *models = json_object_get(doc, "models");
    size_t i;
    json_t *m;
    int rc = 0;
    printf(o->format == CTL_WIDE ? "%-32s %s\n" : "%s\n", "MODEL", "PROFILES");
    json_array_foreach(models, i, m)
    {
        const char *name = json_string_value(m);
        char versions[512];
        if (o->format != CTL_WIDE)
            printf("%s\n", name);
        else if (profile_versions(o, name, versions, sizeof versions))
            printf("%-32s %s\n", name, versions);
        else
            rc = 1;
    }
    json_decref(doc);
    return rc;
}

static void print_window_row(const json_t *w, bool wide)
{
    char start[32];
    ctl_format_time((int64_t)json_integer_value(json_object_get(w, "start_ms")), start,
                    sizeof start);
    const json_t *lat = json_object_get(w, "latency_us");
    printf("%-21s %-10s %10" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT " ", start,
           json_string_value(json_object_get(w, "version")),
           json_integer_value(json_object_get(w, "count")),
           json_integer_value(json_object_get(w, "errors")));
    const json_t *rate = json_object_get(w, "error_rate");
    if (json_is_number(rate))
        printf("%9.3f%%", 100.0 * json_number_value(rate));
    else
        printf("%10s", "-");
    static const char *const qs[] = {"p50", "p90", "p99"};
    for (size_t i = 0; i < 3; i++)
        ctl_print_number(json_object_get(lat, qs[i]), " %10.0f");
    printf(" %8" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(w, "records")));
    if (wide) {
        const json_t *slo = json_object_get(w, "slo");
        ctl_print_number(json_object_get(lat, "p95"), " %10.0f");
        ctl_print_number(json_object_get(lat, "mean"), " %10.0f");
        printf(" %8" JSON_INTEGER_FORMAT " %6" JSON_INTEGER_FORMAT,
               json_integer_value(json_object_get(w, "feedback")),
               json_integer_value(json_object_get(w, "late")));
        ctl_print_cell(json_object_get(slo, "availability"), 9, 3, true);
        ctl_print_cell(json_object_get(json_object_get(w, "cost"), "per_1k_predictions"), 10, 4,
                       false);
        printf(" %s", json_is_true(json_object_get(w, "final")) ? "final" : "open");
    }
    printf("\n");
}

int ctl_cmd_windows(const struct options *o, const char *model)
{
    struct path p = {0};
    ctl_model_path(&p, model, "/windows?limit=10000");
    p.has_query = true;
    ctl_path_param(&p, "version", o->version);
    ctl_path_param(&p, "resolution", o->resolution);
    ctl_path_param_ms(&p, "from", o->has_since, o->since_ms);
    ctl_path_param_ms(&p, "to", o->has_until, o->until_ms);
    if (!ctl_path_ok(&p))
        return 1;
    json_t *doc = ctl_get(o, p.text);
    if (!doc)
        return 1;
    if (o->format == CTL_JSON)
        return ctl_print_json(doc);
    bool wide = o->format == CTL_WIDE;
    printf("model %s, %" JSON_INTEGER_FORMAT " s windows\n", model,
           json_integer_value(json_object_get(doc, "resolution_s")));
    printf("%-21s %-10s %10s %8s %10s %10s %10s %10s %8s", "WINDOW START", "VERSION", "REQUESTS",
           "ERRORS", "ERROR%", "P50_US", "P90_US", "P99_US", "SAMPLED");
    if (wide)
        printf(" %10s %10s %8s %6s %9s %10s %s", "P95_US", "MEAN_US", "FEEDBACK", "LATE", "AVAIL%",
               "COST/1K", "STATE");
    printf("\n");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(doc, "windows"), i, w) print_window_row(w, wide);
    json_decref(doc);
    return 0;
}

/* The burn-rate pairs: long and short lookback, threshold, both rates, burning or not. */
static void print_burn_rates(const json_t *doc)
{
    printf("%-5s %-5s %9s %12s %12s %s\n", "LONG", "SHORT", "THRESHOLD", "LONG_BURN", "SHORT_BURN",
           "BURNING");
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(doc, "burn_rates"), i, b)
    {
        printf("%-5s %-5s %9.1f", json_string_value(json_object_get(b, "long")),
               json_string_value(json_object_get(b, "short")),
               json_number_value(json_object_get(b, "threshold")));
        ctl_print_cell(json_object_get(b, "long_burn_rate"), 12, 3, false);
        ctl_print_cell(json_object_get(b, "short_burn_rate"), 12, 3, false);
        printf(" %s\n", json_is_true(json_object_get(b, "burning")) ? "yes" : "no");
    }
}

int ctl_cmd_slo(const struct options *o, const char *model)
{
    struct path p = {0};
    ctl_model_path(&p, model, "/slo");
    ctl_path_param(&p, "version", o->version);
    ctl_path_param_ms(&p, "at", o->has_at, o->at_ms);
    if (!ctl_path_ok(&p))
        return 1;
    json_t *doc = ctl_get(o, p.text);
    if (!doc)
        return 1;
    if (o->format == CTL_JSON)
        return ctl_print_json(doc);
    char at[32];
    ctl_format_time((int64_t)json_integer_value(json_object_get(doc, "at_ms")), at, sizeof at);
    const char *version = json_string_value(json_object_get(doc, "version"));
    printf("slo of %s %s at %s, availability target %.3f%%\n", model,
           version ? version : "(every version)", at,
           100 * json_number_value(json_object_get(doc, "availability_target")));
    if (o->format == CTL_WIDE) {
        printf("%-8s %11s\n", "LOOKBACK", "ERROR_RATE%");
        const char *name;
        json_t *rate;
        json_object_foreach(json_object_get(doc, "error_rate"), name, rate)
        {
            printf("%-8s", name);
            ctl_print_cell(rate, 11, 4, true);
            printf("\n");
        }
    }
    print_burn_rates(doc);
    json_decref(doc);
    return 0;
}
