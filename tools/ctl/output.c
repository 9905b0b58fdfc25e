/* output.c — how modelwatch-ctl prints: JSON as the API gives it, times, numbers and cells of
 * tables. */
#include "ctl.h"

#include "clock.h"
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int ctl_print_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    json_decref(doc);
    return 0;
}

void ctl_format_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

void ctl_print_number(const json_t *v, const char *fmt)
{
    if (json_is_number(v))
        printf(fmt, json_number_value(v));
    else
        printf("%10s", "-");
}

/* A number or "-" for null/absent, right-aligned in `width`. `percent` scales by 100 and
 * appends %. */
void ctl_print_cell(const json_t *v, int width, int precision, bool percent)
{
    if (!json_is_number(v)) {
        printf(" %*s", width, "-");
        return;
    }
    double x = json_number_value(v) * (percent ? 100 : 1);
    if (percent)
        printf(" %*.*f%%", width - 1, precision, x);
    else
        printf(" %*.*f", width, precision, x);
}

/* Width of the FEATURE column: the longest name of the object's keys or array's "feature"
 * members, within 7..40. */
int ctl_name_width(const json_t *features)
{
    size_t width = 7, i;
    const char *key;
    json_t *v;
    if (json_is_object(features)) {
        json_object_foreach((json_t *)features, key, v)
        {
            size_t n = strlen(key);
            width = n > width ? n : width;
        }
    } else {
        json_array_foreach(features, i, v)
        {
            const char *name = json_string_value(json_object_get(v, "feature"));
            size_t n = name ? strlen(name) : 0;
            width = n > width ? n : width;
        }
    }
    return (int)(width > 40 ? 40 : width);
}

bool ctl_parse_time_arg(const char *flag, const char *text, int64_t now_ms, int64_t *out_ms)
{
    int64_t ago_ms;
    if (strcmp(text, "now") == 0) {
        *out_ms = now_ms;
        return true;
    }
    if (mw_clock_parse_time(text, out_ms) == 0)
        return true;
    /* A duration ends in its unit, so it never reads as a number of seconds or ms. */
    if (mw_config_parse_duration_ms(text, &ago_ms) == 0 && ago_ms <= now_ms) {
        *out_ms = now_ms - ago_ms;
        return true;
    }
    fprintf(stderr,
            "modelwatch-ctl: %s %s: expected a time: RFC 3339 (2026-12-01T17:00:00Z), Unix "
            "seconds or milliseconds, now, or a duration before now (30m, 2h, 1d)\n",
            flag, text);
    return false;
}
