/* cmd_alerts.c — `alerts` and `silence add|list|expire`. */
#include "ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* -o wide: the rule, whether it flaps, the samples judged and when it fired. */
static void print_alert_wide(const json_t *a)
{
    char fired[32] = "-";
    const json_t *fired_ms = json_object_get(a, "fired_at_ms");
    if (json_is_integer(fired_ms))
        ctl_format_time((int64_t)json_integer_value(fired_ms), fired, sizeof fired);
    printf(" %-24s %-8s %8" JSON_INTEGER_FORMAT " %-20s",
           json_string_value(json_object_get(a, "rule")),
           json_is_true(json_object_get(a, "flapping")) ? "yes" : "no",
           json_integer_value(json_object_get(a, "samples")), fired);
}

int ctl_cmd_alerts(const struct options *o)
{
    struct path p = {0};
    ctl_path_add(&p, "/api/v1/alerts");
    ctl_path_param(&p, "state", o->state);
    json_t *doc = ctl_path_ok(&p) ? ctl_get(o, p.text) : NULL;
    if (!doc)
        return 1;
    if (o->format == CTL_JSON)
        return ctl_print_json(doc);
    json_t *alerts = json_object_get(doc, "alerts");
    size_t i;
    json_t *a;
    if (json_array_size(alerts) == 0)
        printf("no alerts\n");
    else
        printf("%-8s %-26s %-16s %-10s %-12s %-8s %12s %-20s %-36s%s\n", "STATE", "ALERTNAME",
               "MODEL", "VERSION", "FEATURE", "SEVERITY", "VALUE", "SINCE (EVENT TIME)",
               "SILENCED BY",
               o->format == CTL_WIDE ? " RULE                     FLAPPING  SAMPLES FIRED AT" : "");
    json_array_foreach(alerts, i, a)
    {
        const json_t *labels = json_object_get(a, "labels");
        const char *cols[] = {"alertname", "model", "version", "feature", "severity"};
        const char *v[5];
        for (size_t k = 0; k < 5; k++) {
            v[k] = json_string_value(json_object_get(labels, cols[k]));
            v[k] = v[k] && *v[k] ? v[k] : "-";
        }
        char since[32];
        ctl_format_time((int64_t)json_integer_value(json_object_get(a, "active_since_ms")), since,
                        sizeof since);
        const char *silenced = json_string_value(json_object_get(a, "silenced_by"));
        printf("%-8s %-26s %-16s %-10s %-12s %-8s", json_string_value(json_object_get(a, "state")),
               v[0], v[1], v[2], v[3], v[4]);
        ctl_print_number(json_object_get(a, "value"), " %12.6g");
        printf(" %-20s %-36s", since, silenced ? silenced : "-");
        if (o->format == CTL_WIDE)
            print_alert_wide(a);
        printf("\n");
        const char *summary =
            json_string_value(json_object_get(json_object_get(a, "annotations"), "summary"));
        if (summary)
            printf("         %s\n", summary);
    }
    json_decref(doc);
    return 0;
}

bool ctl_has_token_file(const struct options *o)
{
    const char *file = o->token_file ? o->token_file : getenv("MODELWATCH_API_TOKEN_FILE");
    return file && *file;
}

bool ctl_load_token(struct options *o)
{
    const char *file = o->token_file ? o->token_file : getenv("MODELWATCH_API_TOKEN_FILE");
    if (!file || !*file) {
        fprintf(stderr, "modelwatch-ctl: writes need the API token: --token-file FILE "
                        "or $MODELWATCH_API_TOKEN_FILE\n");
        return false;
    }
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "modelwatch-ctl: %s: %s\n", file, strerror(errno));
        return false;
    }
    size_t n = fread(o->token, 1, sizeof o->token - 1, f);
    fclose(f);
    o->token[n] = '\0';
    while (n > 0 && (o->token[n - 1] == '\n' || o->token[n - 1] == '\r' || o->token[n - 1] == ' ' ||
                     o->token[n - 1] == '\t'))
        o->token[--n] = '\0';
    if (n == 0 || strpbrk(o->token, "\r\n")) {
        fprintf(stderr, "modelwatch-ctl: %s: not a token (empty, or several lines)\n", file);
        return false;
    }
    return true;
}

int ctl_cmd_silence_add(struct options *o, int n_matchers, char **matchers)
{
    if (!o->duration) {
        fprintf(stderr, "modelwatch-ctl: silence add needs --duration (e.g. 2h)\n");
        return 2;
    }
    if (!ctl_load_token(o))
        return 1;
    json_t *list = json_array();
    for (int i = 0; i < n_matchers; i++)
        json_array_append_new(list, json_string(matchers[i]));
    const char *author = o->author ? o->author : getenv("USER");
    json_t *body = json_pack("{s:o, s:s, s:s, s:s}", "matchers", list, "duration", o->duration,
                             "created_by", author && *author ? author : "modelwatch-ctl", "comment",
                             o->comment ? o->comment : "silenced with modelwatch-ctl");
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return 1;
    json_t *answer = ctl_request(o, "POST", "/api/v1/silences", text, strlen(text));
    free(text);
    if (!answer)
        return 1;
    if (o->format == CTL_JSON)
        return ctl_print_json(answer);
    printf("%s\n", json_string_value(json_object_get(answer, "id")));
    json_decref(answer);
    return 0;
}

int ctl_cmd_silence_list(const struct options *o)
{
    json_t *doc = ctl_get(o, "/api/v1/silences");
    if (!doc)
        return 1;
    if (o->format == CTL_JSON)
        return ctl_print_json(doc);
    json_t *list = json_object_get(doc, "silences");
    size_t i;
    json_t *s;
    if (json_array_size(list) == 0)
        printf("no silences\n");
    else
        printf("%-36s %-8s %-20s %-20s %s%-16s %s\n", "ID", "STATE", "STARTS", "ENDS",
               o->format == CTL_WIDE ? "FOR      " : "", "CREATED BY", "MATCHERS / COMMENT");
    json_array_foreach(list, i, s)
    {
        char starts[32], ends[32];
        ctl_format_time((int64_t)json_integer_value(json_object_get(s, "starts_at_ms")), starts,
                        sizeof starts);
        ctl_format_time((int64_t)json_integer_value(json_object_get(s, "ends_at_ms")), ends,
                        sizeof ends);
        printf("%-36s %-8s %-20s %-20s ", json_string_value(json_object_get(s, "id")),
               json_string_value(json_object_get(s, "state")), starts, ends);
        if (o->format == CTL_WIDE) {
            json_int_t minutes = (json_integer_value(json_object_get(s, "ends_at_ms")) -
                                  json_integer_value(json_object_get(s, "starts_at_ms"))) /
                                 60000;
            printf("%3" JSON_INTEGER_FORMAT "h%02" JSON_INTEGER_FORMAT "m  ", minutes / 60,
                   minutes % 60);
        }
        printf("%-16s", json_string_value(json_object_get(s, "created_by")));
        size_t k;
        json_t *m;
        json_array_foreach(json_object_get(s, "matchers"), k, m)
            printf(" %s", json_string_value(m));
        printf("\n%-36s %s\n", "", json_string_value(json_object_get(s, "comment")));
    }
    json_decref(doc);
    return 0;
}

int ctl_cmd_silence_expire(struct options *o, const char *id)
{
    if (!ctl_load_token(o))
        return 1;
    struct path p = {0};
    ctl_path_add(&p, "/api/v1/silences/");
    ctl_path_add_escaped(&p, id);
    json_t *answer = ctl_path_ok(&p) ? ctl_request(o, "DELETE", p.text, NULL, 0) : NULL;
    if (!answer)
        return 1;
    json_decref(answer);
    printf("expired %s\n", id);
    return 0;
}
