/*
 * ctl.c — modelwatch-ctl, the command line for people: builds reference profiles from CSV
 * files, reads the aggregator's HTTP API and prints readable tables.
 *
 *   modelwatch-ctl [--api URL] models
 *   modelwatch-ctl [--api URL] windows MODEL [--version V] [--resolution SECONDS]
 *                                            [--from MS] [--to MS] [--json]
 *   modelwatch-ctl profile build --model M --version V [--bins N] [--grid-bins N]
 *                                [--max-categories N]
 *                                [--categorical COL]... [--ignore COL]... [--label COL]
 *                                [-o FILE] (FILE.csv | --input FILE.csv)
 *   modelwatch-ctl [--api URL] profile push FILE.json [--token-file FILE]
 *   modelwatch-ctl [--api URL] profile show MODEL [--version V] [--json]
 *   modelwatch-ctl [--api URL] drift MODEL [--version V] [--window START_MS]
 *                                          [--resolution SECONDS] [--json]
 *   modelwatch-ctl rules check FILE...
 *   modelwatch-ctl [--api URL] alerts [--state firing|pending|active|all] [--json]
 *   modelwatch-ctl [--api URL] silence add MATCHER... --duration D [--comment C]
 *                                          [--author A] [--token-file FILE]
 *   modelwatch-ctl [--api URL] silence list [--json]
 *   modelwatch-ctl [--api URL] silence expire ID [--token-file FILE]
 *
 * `profile build` and `rules check` work offline (tools/profile_build.c and
 * aggregator/alert/rules.c do the work); every other command is one or a few requests to the API
 * (libcurl, jansson). Exit status: 0, 1 when the work failed (the reason is on stderr), 2 for a
 * usage error.
 */
#include "alert/rules.h"
#include "profile_build.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESPONSE_BYTES (64u * 1024 * 1024)
#define MAX_PROFILE_FILE_BYTES (64u * 1024 * 1024)
#define MAX_PATH_BYTES 2048
#define TOP_CATEGORIES_SHOWN 3

struct response {
    char *data;
    size_t len;
};

struct options {
    const char *api;
    const char *version;
    const char *resolution;
    const char *from;
    const char *to;
    const char *window;
    const char *input; /* profile build --input FILE */
    int json;
    /* profile build */
    const char *model;
    const char *bins;
    const char *grid_bins;
    const char *max_categories;
    const char **categorical; /* argc slots, n_categorical used */
    size_t n_categorical;
    const char **ignore;
    size_t n_ignore;
    const char *label;
    const char *output;
    /* alerts, silence */
    const char *state;
    const char *duration;
    const char *comment;
    const char *author;
    const char *token_file;
    char token[512]; /* read from token_file for silence writes */
};

static void usage(FILE *to)
{
    fprintf(
        to,
        "usage: modelwatch-ctl [--api URL] COMMAND [ARGS]\n"
        "Commands:\n"
        "  models                      list the models the aggregator has seen\n"
        "  windows MODEL [--version V] [--resolution SECONDS] [--from MS] [--to MS]\n"
        "                              per-window service signals of one model\n"
        "  profile build --model M --version V [--bins N] [--grid-bins N]\n"
        "                [--max-categories N] [--categorical COL]... [--ignore COL]...\n"
        "                [--label COL] [-o FILE] (FILE.csv | --input FILE.csv)\n"
        "                              compute a reference profile from a CSV file with a\n"
        "                              header row (JSON on stdout, or in FILE): per numeric\n"
        "                              column the counts and sums between the quantiles\n"
        "                              i/N of --grid-bins (2..1000, default 100, at least\n"
        "                              --bins) and j/N of --bins (the PSI bins, 2..100,\n"
        "                              default 10); 50 categories per column by default\n"
        "  profile push FILE.json      store a profile in the aggregator (model and version\n"
        "                              come from the document), with --token-file's token\n"
        "  profile show MODEL [--version V]\n"
        "                              a stored profile (without --version: the newest)\n"
        "  drift MODEL [--version V] [--window START_MS] [--resolution SECONDS]\n"
        "                              drift of each feature against the profile, for one\n"
        "                              window (default: the latest), with the aggregator's\n"
        "                              verdicts\n"
        "  rules check FILE...         load alert rule files as the aggregator does and\n"
        "                              report the first error of each (FILE:LINE: KEY: ...)\n"
        "  alerts [--state S]          active alerts (S: firing, pending, active = both,\n"
        "                              the default, or all)\n"
        "  silence add MATCHER... --duration D [--comment C] [--author A]\n"
        "                              silence the alerts matching every matcher\n"
        "                              (name=\"v\", name!=\"v\", name=~\"re\", name!~\"re\")\n"
        "                              for D (30m, 2h, 1d); prints the silence's id\n"
        "  silence list                silences, active, pending and expired\n"
        "  silence expire ID           end a silence now\n"
        "Options:\n"
        "  --api URL    the aggregator's API (default http://127.0.0.1:9465, or "
        "$MODELWATCH_API)\n"
        "  --json       print the API's JSON instead of a table\n"
        "  --token-file FILE  bearer token for writes (default\n"
        "               $MODELWATCH_API_TOKEN_FILE): the aggregator's alerting.api_token_file\n");
}

/* ---------------------------------------------------------------------------------------- */
/* HTTP                                                                                      */

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
    struct response *r = arg;
    size_t add = size * n;
    if (r->len + add > MAX_RESPONSE_BYTES)
        return 0;
    char *grown = realloc(r->data, r->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->len, ptr, add);
    r->data = grown;
    r->len += add;
    r->data[r->len] = '\0';
    return add;
}

/*
 * `method` (GET or PUT) api + path, with `body` (JSON, body_len bytes) for PUT. Returns the
 * parsed JSON of a 2xx answer (an empty answer gives an empty object), or NULL after printing
 * why: the transport error, or the HTTP status with the API's {"error": ...} message.
 */
static json_t *request_json(const struct options *o, const char *method, const char *path,
                            const char *body, size_t body_len)
{
    char url[MAX_PATH_BYTES + 512];
    snprintf(url, sizeof url, "%s%s", o->api, path);
    struct response r = {0};
    struct curl_slist *headers = NULL;
    CURL *curl = curl_easy_init();
    if (!curl) {
        fprintf(stderr, "modelwatch-ctl: cannot initialise libcurl\n");
        return NULL;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    if (o->token[0]) {
        char auth[sizeof o->token + 32];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
        headers = curl_slist_append(headers, auth);
    }
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    if (headers)
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        fprintf(stderr, "modelwatch-ctl: %s %s: %s\n", method, url, curl_easy_strerror(rc));
        free(r.data);
        return NULL;
    }
    json_error_t err;
    json_t *doc = r.len ? json_loadb(r.data, r.len, 0, &err) : NULL;
    if (status < 200 || status > 299) {
        json_t *msg = doc ? json_object_get(doc, "error") : NULL;
        fprintf(stderr, "modelwatch-ctl: %s %s: HTTP %ld: %s\n", method, url, status,
                json_is_string(msg) ? json_string_value(msg) : (r.data ? r.data : ""));
        json_decref(doc);
        doc = NULL;
    } else if (!r.len) {
        doc = json_object();
    } else if (!doc) {
        fprintf(stderr, "modelwatch-ctl: %s %s: invalid JSON: %s\n", method, url, err.text);
    }
    free(r.data);
    return doc;
}

static json_t *get_json(const struct options *o, const char *path)
{
    return request_json(o, "GET", path, NULL, 0);
}

/* A request path under construction: fixed text, URL-escaped parts and query parameters. */
struct path {
    char text[MAX_PATH_BYTES];
    size_t len;
    bool too_long;
    bool has_query;
};

static void path_add(struct path *p, const char *s)
{
    size_t n = strlen(s);
    if (p->too_long || p->len + n >= sizeof p->text) {
        p->too_long = true;
        return;
    }
    memcpy(p->text + p->len, s, n + 1);
    p->len += n;
}

static void path_add_escaped(struct path *p, const char *s)
{
    char *escaped = curl_easy_escape(NULL, s, 0);
    if (!escaped) {
        p->too_long = true;
        return;
    }
    path_add(p, escaped);
    curl_free(escaped);
}

/* Adds ?name=value or &name=value; nothing when value is NULL. */
static void path_param(struct path *p, const char *name, const char *value)
{
    if (!value)
        return;
    path_add(p, p->has_query ? "&" : "?");
    p->has_query = true;
    path_add(p, name);
    path_add(p, "=");
    path_add_escaped(p, value);
}

/* "/api/v1/models/{model}" followed by `rest` (not escaped). */
static void model_path(struct path *p, const char *model, const char *rest)
{
    path_add(p, "/api/v1/models/");
    path_add_escaped(p, model);
    path_add(p, rest);
}

static bool path_ok(const struct path *p)
{
    if (p->too_long)
        fprintf(stderr, "modelwatch-ctl: request path longer than %d bytes\n", MAX_PATH_BYTES);
    return !p->too_long;
}

/* ---------------------------------------------------------------------------------------- */
/* Printing                                                                                  */

static int print_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text)
        puts(text);
    free(text);
    json_decref(doc);
    return 0;
}

static void format_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%SZ", &tm);
}

static void print_number(const json_t *v, const char *fmt)
{
    if (json_is_number(v))
        printf(fmt, json_number_value(v));
    else
        printf("%10s", "-");
}

/* A number or "-" for null/absent, right-aligned in `width`. `percent` scales by 100 and
 * appends %. */
static void print_cell(const json_t *v, int width, int precision, bool percent)
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
static int name_width(const json_t *features)
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

/* ---------------------------------------------------------------------------------------- */
/* models, windows                                                                           */

static int cmd_models(const struct options *o)
{
    json_t *doc = get_json(o, "/api/v1/models");
    if (!doc)
        return 1;
    if (o->json)
        return print_json(doc);
    json_t *models = json_object_get(doc, "models");
    size_t i;
    json_t *m;
    printf("MODEL\n");
    json_array_foreach(models, i, m) printf("%s\n", json_string_value(m));
    json_decref(doc);
    return 0;
}

static void print_window_row(const json_t *w)
{
    char start[32];
    format_time((int64_t)json_integer_value(json_object_get(w, "start_ms")), start, sizeof start);
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
        print_number(json_object_get(lat, qs[i]), " %10.0f");
    printf(" %8" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(w, "records")));
}

static int cmd_windows(const struct options *o, const char *model)
{
    struct path p = {0};
    model_path(&p, model, "/windows?limit=10000");
    p.has_query = true;
    path_param(&p, "version", o->version);
    path_param(&p, "resolution", o->resolution);
    path_param(&p, "from", o->from);
    path_param(&p, "to", o->to);
    if (!path_ok(&p))
        return 1;
    json_t *doc = get_json(o, p.text);
    if (!doc)
        return 1;
    if (o->json)
        return print_json(doc);
    printf("model %s, %" JSON_INTEGER_FORMAT " s windows\n", model,
           json_integer_value(json_object_get(doc, "resolution_s")));
    printf("%-21s %-10s %10s %8s %10s %10s %10s %10s %8s\n", "WINDOW START", "VERSION", "REQUESTS",
           "ERRORS", "ERROR%", "P50_US", "P90_US", "P99_US", "SAMPLED");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(doc, "windows"), i, w) print_window_row(w);
    json_decref(doc);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* profile build                                                                             */

/* strtol with checks: the whole string, within [min, max]. Prints the error. */
static bool parse_long(const char *what, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "modelwatch-ctl: %s %s: expected an integer in %ld..%ld\n", what, s, min,
                max);
        return false;
    }
    *out = v;
    return true;
}

/* Write text to path through a temporary file and a rename, so a reader never sees half a
 * profile. */
static int write_file_atomically(const char *path, const char *text)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        fprintf(stderr, "modelwatch-ctl: %s: path too long\n", path);
        return 1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "modelwatch-ctl: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "modelwatch-ctl: %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

static int cmd_profile_build(const struct options *o, const char *csv_path)
{
    struct mw_profile_build_options po;
    mw_profile_build_options_init(&po);
    po.model = o->model;
    po.version = o->version;
    long v;
    if (!o->model || !o->version) {
        fprintf(stderr, "modelwatch-ctl: profile build needs --model and --version\n");
        return 2;
    }
    if (o->bins) {
        if (!parse_long("--bins", o->bins, MW_PROFILE_MIN_BINS, MW_PROFILE_MAX_BINS, &v))
            return 2;
        po.n_bins = (int)v;
    }
    if (o->grid_bins) {
        if (!parse_long("--grid-bins", o->grid_bins, MW_PROFILE_MIN_GRID_BINS,
                        MW_PROFILE_MAX_GRID_BINS, &v))
            return 2;
        po.n_grid_bins = (int)v;
    }
    if (po.n_grid_bins < po.n_bins) {
        fprintf(stderr, "modelwatch-ctl: --grid-bins %d: must be at least --bins (%d)\n",
                po.n_grid_bins, po.n_bins);
        return 2;
    }
    if (o->max_categories) {
        if (!parse_long("--max-categories", o->max_categories, 1, MW_PROFILE_MAX_MAX_CATEGORIES,
                        &v))
            return 2;
        po.max_categories = (size_t)v;
    }
    po.categorical = o->categorical;
    po.n_categorical = o->n_categorical;
    po.ignore = o->ignore;
    po.n_ignore = o->n_ignore;
    po.label = o->label;

    struct mw_built_profile *profile = NULL;
    char err[1024];
    if (mw_profile_build(csv_path, &po, &profile, err, sizeof err) != 0) {
        fprintf(stderr, "modelwatch-ctl: %s\n", err);
        return 1;
    }
    size_t n_numeric = 0;
    for (size_t i = 0; i < profile->n_features; i++)
        n_numeric += profile->features[i].type == MW_BUILT_NUMERIC;
    for (size_t i = 0; i < profile->n_notes; i++)
        fprintf(stderr, "modelwatch-ctl: note: %s\n", profile->notes[i]);
    json_t *doc = mw_built_profile_to_json(profile);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    int rc = 0;
    if (!text) {
        fprintf(stderr, "modelwatch-ctl: out of memory writing the profile\n");
        rc = 1;
    } else if (o->output) {
        rc = write_file_atomically(o->output, text);
        if (rc == 0)
            printf("wrote profile %s %s to %s: %" PRIu64 " rows, %zu features (%zu numeric, "
                   "%zu categorical)\n",
                   profile->model, profile->version, o->output, profile->rows, profile->n_features,
                   n_numeric, profile->n_features - n_numeric);
    } else if (puts(text) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "modelwatch-ctl: writing the profile: %s\n", strerror(errno));
        rc = 1;
    }
    free(text);
    mw_built_profile_destroy(profile);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* rules check                                                                               */

/* Load each rule file on its own, as the aggregator would (aggregator/alert/rules.h); print
 * what each holds, or its first error. 0 when every file is good, else 1. */
static int cmd_rules_check(int n_files, char **files)
{
    int rc = 0;
    for (int i = 0; i < n_files; i++) {
        struct mw_rule_set set = {0};
        struct mw_cfg_error err = {{0}};
        if (mw_rules_load_file(&set, files[i], &err) != 0) {
            fprintf(stderr, "modelwatch-ctl: %s\n", err.message);
            rc = 1;
        } else {
            size_t n_groups = 0;
            for (size_t r = 0; r < set.n; r++)
                n_groups += r == 0 || strcmp(set.rules[r].group, set.rules[r - 1].group) != 0;
            printf("%s: ok, %zu rule%s in %zu group%s\n", files[i], set.n, set.n == 1 ? "" : "s",
                   n_groups, n_groups == 1 ? "" : "s");
        }
        mw_rule_set_free(&set);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* profile push, profile show                                                                */

/* Read a whole file of at most MAX_PROFILE_FILE_BYTES; the caller frees the result. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "modelwatch-ctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *data = malloc(cap + 1);
    while (data) {
        n += fread(data + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= MAX_PROFILE_FILE_BYTES) {
            fprintf(stderr, "modelwatch-ctl: %s: larger than %u bytes\n", path,
                    MAX_PROFILE_FILE_BYTES);
            free(data);
            data = NULL;
            break;
        }
        cap *= 2;
        char *grown = realloc(data, cap + 1);
        if (!grown) {
            fprintf(stderr, "modelwatch-ctl: %s: out of memory\n", path);
            free(data);
        }
        data = grown;
    }
    bool failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        fprintf(stderr, "modelwatch-ctl: %s: read error\n", path);
        free(data);
        return NULL;
    }
    if (data) {
        data[n] = '\0';
        *len = n;
    }
    return data;
}

static int cmd_profile_push(const struct options *o, const char *file)
{
    size_t len = 0;
    char *text = read_file(file, &len);
    if (!text)
        return 1;
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    int rc = 1;
    if (!doc) {
        fprintf(stderr, "modelwatch-ctl: %s:%d: invalid JSON: %s\n", file, jerr.line, jerr.text);
        goto out;
    }
    const char *model = json_string_value(json_object_get(doc, "model"));
    const char *version = json_string_value(json_object_get(doc, "version"));
    json_t *features = json_object_get(doc, "features");
    if (!model || !*model || !version || !*version || !json_is_object(features)) {
        fprintf(stderr,
                "modelwatch-ctl: %s: not a profile (needs \"model\", \"version\" and "
                "\"features\"; build one with `modelwatch-ctl profile build`)\n",
                file);
        goto out;
    }
    struct path p = {0};
    model_path(&p, model, "/profiles/");
    path_add_escaped(&p, version);
    if (!path_ok(&p))
        goto out;
    json_t *answer = request_json(o, "PUT", p.text, text, len);
    if (!answer)
        goto out;
    json_decref(answer);
    printf("pushed profile %s %s (%zu features)\n", model, version, json_object_size(features));
    rc = 0;
out:
    json_decref(doc);
    free(text);
    return rc;
}

/* "fr 31.0%, de 22.0%, it 9.0%, +47 more, other 2.0%" from a categories object. */
static void format_top_categories(const json_t *f, char *out, size_t size)
{
    const json_t *cats = json_object_get(f, "categories");
    const char *top[TOP_CATEGORIES_SHOWN] = {0};
    double top_share[TOP_CATEGORIES_SHOWN] = {0};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)cats, key, v)
    {
        double share = json_number_value(v);
        for (size_t i = 0; i < TOP_CATEGORIES_SHOWN; i++) {
            if (top[i] && share <= top_share[i])
                continue;
            memmove(top + i + 1, top + i, (TOP_CATEGORIES_SHOWN - 1 - i) * sizeof *top);
            memmove(top_share + i + 1, top_share + i,
                    (TOP_CATEGORIES_SHOWN - 1 - i) * sizeof *top_share);
            top[i] = key;
            top_share[i] = share;
            break;
        }
    }
    size_t len = 0, n = json_object_size(cats), shown = 0;
    out[0] = '\0';
    for (size_t i = 0; i < TOP_CATEGORIES_SHOWN && top[i] && len < size; i++, shown++)
        len += (size_t)snprintf(out + len, size - len, "%s%s %.1f%%", i ? ", " : "", top[i],
                                100 * top_share[i]);
    if (n > shown && len < size)
        len += (size_t)snprintf(out + len, size - len, "%s+%zu more", shown ? ", " : "", n - shown);
    const json_t *other = json_object_get(f, "other");
    if (json_is_number(other) && json_number_value(other) > 0 && len < size)
        snprintf(out + len, size - len, "%sother %.1f%%", len ? ", " : "",
                 100 * json_number_value(other));
}

static void print_profile_table(const json_t *doc)
{
    char created[32];
    format_time((int64_t)json_integer_value(json_object_get(doc, "created_ms")), created,
                sizeof created);
    const json_t *features = json_object_get(doc, "features");
    printf("profile %s %s, created %s, %" JSON_INTEGER_FORMAT " rows, %zu features\n",
           json_string_value(json_object_get(doc, "model")),
           json_string_value(json_object_get(doc, "version")), created,
           json_integer_value(json_object_get(doc, "rows")), json_object_size(features));
    int w = name_width(features);
    printf("%-*s %-11s %10s %8s %11s %11s %11s  %s\n", w, "FEATURE", "TYPE", "COUNT", "MISSING",
           "MIN", "MAX", "MEAN", "BINS / TOP CATEGORIES");
    const char *name;
    json_t *f;
    json_object_foreach((json_t *)features, name, f)
    {
        const char *type = json_string_value(json_object_get(f, "type"));
        printf("%-*s %-11s %10" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT, w, name,
               type ? type : "?", json_integer_value(json_object_get(f, "count")),
               json_integer_value(json_object_get(f, "missing")));
        if (type && strcmp(type, "numeric") == 0) {
            static const char *const stats[] = {"min", "max", "mean"};
            for (size_t i = 0; i < 3; i++) {
                const json_t *x = json_object_get(f, stats[i]);
                if (json_is_number(x))
                    printf(" %11.6g", json_number_value(x));
                else
                    printf(" %11s", "-");
            }
            size_t n_cuts = json_array_size(json_object_get(f, "cuts"));
            size_t n_deciles = json_array_size(json_object_get(f, "deciles"));
            printf("  %zu regions, %zu PSI bins\n", n_cuts + 1, n_deciles + 3);
        } else {
            char top[512];
            format_top_categories(f, top, sizeof top);
            printf(" %11s %11s %11s  %s\n", "-", "-", "-", top);
        }
    }
}

/* GET one profile; NULL after printing why. */
static json_t *get_profile(const struct options *o, const char *model, const char *version)
{
    struct path p = {0};
    model_path(&p, model, "/profiles/");
    path_add_escaped(&p, version);
    return path_ok(&p) ? get_json(o, p.text) : NULL;
}

static int cmd_profile_show(const struct options *o, const char *model)
{
    json_t *doc = NULL;
    json_t *list = NULL;
    if (o->version) {
        doc = get_profile(o, model, o->version);
    } else {
        /* No version: list the versions and show the newest by created_ms. */
        struct path p = {0};
        model_path(&p, model, "/profiles");
        if (!path_ok(&p) || !(list = get_json(o, p.text)))
            return 1;
        json_t *versions = json_object_get(list, "versions");
        if (json_array_size(versions) == 0) {
            fprintf(stderr, "modelwatch-ctl: no profile stored for model %s\n", model);
            json_decref(list);
            return 1;
        }
        size_t i;
        json_t *v;
        json_int_t newest_ms = 0;
        json_array_foreach(versions, i, v)
        {
            if (!json_is_string(v))
                continue;
            json_t *candidate = get_profile(o, model, json_string_value(v));
            if (!candidate) {
                json_decref(doc);
                json_decref(list);
                return 1;
            }
            json_int_t ms = json_integer_value(json_object_get(candidate, "created_ms"));
            if (!doc || ms > newest_ms) {
                json_decref(doc);
                doc = candidate;
                newest_ms = ms;
            } else {
                json_decref(candidate);
            }
        }
    }
    if (!doc) {
        json_decref(list);
        return 1;
    }
    if (o->json) {
        json_decref(list);
        return print_json(doc);
    }
    if (list) {
        size_t i;
        json_t *v;
        printf("versions:");
        json_array_foreach(json_object_get(list, "versions"), i, v)
            printf(" %s", json_string_value(v) ? json_string_value(v) : "?");
        printf(" (showing the newest)\n");
    }
    print_profile_table(doc);
    json_decref(doc);
    json_decref(list);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* drift                                                                                     */

static int cmd_drift(const struct options *o, const char *model)
{
    struct path p = {0};
    model_path(&p, model, "/drift");
    path_param(&p, "version", o->version);
    path_param(&p, "window", o->window);
    path_param(&p, "resolution", o->resolution);
    if (!path_ok(&p))
        return 1;
    json_t *doc = get_json(o, p.text);
    if (!doc)
        return 1;
    if (o->json)
        return print_json(doc);
    char start[32] = "-";
    const json_t *start_ms = json_object_get(doc, "window_start_ms");
    if (json_is_integer(start_ms))
        format_time((int64_t)json_integer_value(start_ms), start, sizeof start);
    const char *version = json_string_value(json_object_get(doc, "version"));
    const char *profile_version = json_string_value(json_object_get(doc, "profile_version"));
    printf("drift of %s %s against profile %s, window %s (%" JSON_INTEGER_FORMAT " s, %s)\n", model,
           version ? version : "-", profile_version ? profile_version : "-", start,
           json_integer_value(json_object_get(doc, "resolution_s")),
           json_is_true(json_object_get(doc, "final")) ? "final" : "still open");
    const json_t *features = json_object_get(doc, "features");
    if (json_array_size(features) == 0) {
        printf("no feature values in this window\n");
        json_decref(doc);
        return 0;
    }
    printf("PSI and JS on the reference deciles plus below/above its range; KS_D on its "
           "percentiles;\nP_VALUE: Kolmogorov-Smirnov (numeric) or chi-squared (categorical) on "
           "the values observed;\nW_NORMED: Wasserstein-1 in reference standard deviations.\n");
    int w = name_width(features);
    printf("%-*s %-11s %9s %9s %8s %8s %8s %10s %9s %9s %9s  %s\n", w, "FEATURE", "TYPE",
           "OBSERVED", "MISSING%", "PSI", "JS", "KS_D", "P_VALUE", "W_NORMED", "OUTSIDE%",
           "UNSEEN%", "VERDICT");
    static const char *const verdicts[] = {"drift", "possible", "none", "insufficient_data",
                                           "unknown"};
    size_t i, n_verdict[5] = {0};
    json_t *f;
    json_array_foreach(features, i, f)
    {
        const char *type = json_string_value(json_object_get(f, "type"));
        bool numeric = type && strcmp(type, "numeric") == 0;
        const char *name = json_string_value(json_object_get(f, "feature"));
        const char *verdict = json_string_value(json_object_get(f, "verdict"));
        for (size_t k = 0; verdict && k < 5; k++)
            n_verdict[k] += strcmp(verdict, verdicts[k]) == 0;
        printf("%-*s %-11s", w, name ? name : "?", type ? type : "?");
        print_cell(json_object_get(f, "observed"), 9, 0, false);
        print_cell(json_object_get(f, "missing_rate"), 9, 2, true);
        print_cell(json_object_get(f, "psi"), 8, 4, false);
        print_cell(json_object_get(f, "js_distance"), 8, 4, false);
        print_cell(json_object_get(f, "ks"), 8, 4, false);
        print_cell(json_object_get(f, numeric ? "ks_p_value" : "chi2_p_value"), 10, 4, false);
        print_cell(json_object_get(f, "wasserstein_normed"), 9, 4, false);
        print_cell(json_object_get(f, "out_of_range_rate"), 9, 2, true);
        print_cell(json_object_get(f, "unseen_share"), 9, 2, true);
        printf("  %s\n", verdict ? verdict : "-");
    }
    printf("%zu features:", json_array_size(features));
    for (size_t k = 0; k < 5; k++)
        printf("%s %zu %s", k ? "," : "", n_verdict[k], verdicts[k]);
    printf("\n");
    const char *verdict = json_string_value(json_object_get(doc, "verdict"));
    if (verdict)
        printf("model verdict (the aggregator's thresholds, tests Bonferroni-corrected): %s\n",
               verdict);
    json_decref(doc);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* alerts, silences                                                                          */

static int cmd_alerts(const struct options *o)
{
    struct path p = {0};
    path_add(&p, "/api/v1/alerts");
    path_param(&p, "state", o->state);
    json_t *doc = path_ok(&p) ? get_json(o, p.text) : NULL;
    if (!doc)
        return 1;
    if (o->json)
        return print_json(doc);
    json_t *alerts = json_object_get(doc, "alerts");
    size_t i;
    json_t *a;
    if (json_array_size(alerts) == 0)
        printf("no alerts\n");
    else
        printf("%-8s %-26s %-16s %-10s %-12s %-8s %12s %-20s %s\n", "STATE", "ALERTNAME", "MODEL",
               "VERSION", "FEATURE", "SEVERITY", "VALUE", "SINCE (EVENT TIME)", "SILENCED BY");
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
        format_time((int64_t)json_integer_value(json_object_get(a, "active_since_ms")), since,
                    sizeof since);
        const char *silenced = json_string_value(json_object_get(a, "silenced_by"));
        printf("%-8s %-26s %-16s %-10s %-12s %-8s", json_string_value(json_object_get(a, "state")),
               v[0], v[1], v[2], v[3], v[4]);
        print_number(json_object_get(a, "value"), " %12.6g");
        printf(" %-20s %s\n", since, silenced ? silenced : "-");
        const char *summary =
            json_string_value(json_object_get(json_object_get(a, "annotations"), "summary"));
        if (summary)
            printf("         %s\n", summary);
    }
    json_decref(doc);
    return 0;
}

/* Whether a token file is named: an aggregator with alerting.api_token_file wants its token on
 * every write, one without it takes profile pushes as they are. */
static bool has_token_file(const struct options *o)
{
    const char *file = o->token_file ? o->token_file : getenv("MODELWATCH_API_TOKEN_FILE");
    return file && *file;
}

/* The bearer token for writes, from --token-file or $MODELWATCH_API_TOKEN_FILE. */
static bool load_token(struct options *o)
{
    const char *file = o->token_file ? o->token_file : getenv("MODELWATCH_API_TOKEN_FILE");
    if (!file || !*file) {
        fprintf(stderr, "modelwatch-ctl: silence writes need the API token: --token-file FILE "
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

static int cmd_silence_add(struct options *o, int n_matchers, char **matchers)
{
    if (!o->duration) {
        fprintf(stderr, "modelwatch-ctl: silence add needs --duration (e.g. 2h)\n");
        return 2;
    }
    if (!load_token(o))
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
    json_t *answer = request_json(o, "POST", "/api/v1/silences", text, strlen(text));
    free(text);
    if (!answer)
        return 1;
    if (o->json)
        return print_json(answer);
    printf("%s\n", json_string_value(json_object_get(answer, "id")));
    json_decref(answer);
    return 0;
}

static int cmd_silence_list(const struct options *o)
{
    json_t *doc = get_json(o, "/api/v1/silences");
    if (!doc)
        return 1;
    if (o->json)
        return print_json(doc);
    json_t *list = json_object_get(doc, "silences");
    size_t i;
    json_t *s;
    if (json_array_size(list) == 0)
        printf("no silences\n");
    else
        printf("%-36s %-8s %-20s %-20s %-16s %s\n", "ID", "STATE", "STARTS", "ENDS", "CREATED BY",
               "MATCHERS / COMMENT");
    json_array_foreach(list, i, s)
    {
        char starts[32], ends[32];
        format_time((int64_t)json_integer_value(json_object_get(s, "starts_at_ms")), starts,
                    sizeof starts);
        format_time((int64_t)json_integer_value(json_object_get(s, "ends_at_ms")), ends,
                    sizeof ends);
        printf("%-36s %-8s %-20s %-20s %-16s", json_string_value(json_object_get(s, "id")),
               json_string_value(json_object_get(s, "state")), starts, ends,
               json_string_value(json_object_get(s, "created_by")));
        size_t k;
        json_t *m;
        json_array_foreach(json_object_get(s, "matchers"), k, m)
            printf(" %s", json_string_value(m));
        printf("\n%-36s %s\n", "", json_string_value(json_object_get(s, "comment")));
    }
    json_decref(doc);
    return 0;
}

static int cmd_silence_expire(struct options *o, const char *id)
{
    if (!load_token(o))
        return 1;
    struct path p = {0};
    path_add(&p, "/api/v1/silences/");
    path_add_escaped(&p, id);
    json_t *answer = path_ok(&p) ? request_json(o, "DELETE", p.text, NULL, 0) : NULL;
    if (!answer)
        return 1;
    json_decref(answer);
    printf("expired %s\n", id);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Command line                                                                              */

enum {
    OPT_MODEL = 256,
    OPT_BINS,
    OPT_GRID_BINS,
    OPT_MAX_CATEGORIES,
    OPT_CATEGORICAL,
    OPT_IGNORE,
    OPT_LABEL,
    OPT_WINDOW,
    OPT_INPUT,
    OPT_STATE,
    OPT_DURATION,
    OPT_COMMENT,
    OPT_AUTHOR,
    OPT_TOKEN_FILE,
};

static const struct option long_options[] = {
    {"api", required_argument, NULL, 'a'},
    {"version", required_argument, NULL, 'v'},
    {"resolution", required_argument, NULL, 'r'},
    {"from", required_argument, NULL, 'f'},
    {"to", required_argument, NULL, 't'},
    {"json", no_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {"output", required_argument, NULL, 'o'},
    {"model", required_argument, NULL, OPT_MODEL},
    {"bins", required_argument, NULL, OPT_BINS},
    {"grid-bins", required_argument, NULL, OPT_GRID_BINS},
    {"max-categories", required_argument, NULL, OPT_MAX_CATEGORIES},
    {"categorical", required_argument, NULL, OPT_CATEGORICAL},
    {"ignore", required_argument, NULL, OPT_IGNORE},
    {"label", required_argument, NULL, OPT_LABEL},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"input", required_argument, NULL, OPT_INPUT},
    {"state", required_argument, NULL, OPT_STATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"comment", required_argument, NULL, OPT_COMMENT},
    {"author", required_argument, NULL, OPT_AUTHOR},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {NULL, 0, NULL, 0},
};

/* The options each command takes ('a' and 'h' go everywhere). */
struct command {
    const char *name;
    int n_args; /* positional arguments */
    const char *arg_names;
    const int *options; /* 0-terminated */
};

static const int windows_opts[] = {'v', 'r', 'f', 't', 'j', 0};
static const int build_opts[] = {
    OPT_MODEL,       'v',        OPT_BINS,  OPT_GRID_BINS, OPT_MAX_CATEGORIES, /* the profile */
    OPT_CATEGORICAL, OPT_IGNORE, OPT_LABEL, 'o',           OPT_INPUT,          0};
static const int show_opts[] = {'v', 'j', 0};
static const int drift_opts[] = {'v', OPT_WINDOW, 'r', 'j', 0};
static const int no_opts[] = {'j', 0};
static const int push_opts[] = {0};
static const int profile_push_opts[] = {OPT_TOKEN_FILE, 0};
static const int alerts_opts[] = {OPT_STATE, 'j', 0};
static const int silence_add_opts[] = {OPT_DURATION,   OPT_COMMENT, OPT_AUTHOR,
                                       OPT_TOKEN_FILE, 'j',         0};
static const int silence_expire_opts[] = {OPT_TOKEN_FILE, 0};

static const struct command commands[] = {
    {"models", 0, "", no_opts},
    {"windows", 1, "MODEL", windows_opts},
    {"profile build", 1, "FILE.csv", build_opts},
    {"profile push", 1, "FILE.json", profile_push_opts},
    {"profile show", 1, "MODEL", show_opts},
    {"drift", 1, "MODEL", drift_opts},
    {"rules check", -1, "FILE...", push_opts}, /* -1: one or more */
    {"alerts", 0, "", alerts_opts},
    {"silence add", -1, "MATCHER...", silence_add_opts},
    {"silence list", 0, "", no_opts},
    {"silence expire", 1, "ID", silence_expire_opts},
};

static const char *option_name(int c)
{
    for (const struct option *o = long_options; o->name; o++)
        if (o->val == c)
            return o->name;
    return "?";
}

/* The options that may come before the command, as in `modelwatch-ctl --api URL models`. */
static const int global_opts[] = {'v', 'r', 'f', 't', 'j', 0};

/*
 * Parse the options of `cmd` (NULL: the global options before the command, stopping at the
 * first argument) in argv[1..argc-1]; for a command, GNU getopt permutes its positional
 * arguments to the end, so options may follow them. --api and --help go everywhere. Returns 0
 * with *first_arg at the first positional argument, or 2 after printing a usage error.
 */
static int parse_options(int argc, char **argv, const struct command *cmd, struct options *o,
                         int *first_arg)
{
    int c;
    const int *allowed_opts = cmd ? cmd->options : global_opts;
    optind = 0; /* GNU: full re-initialisation */
    while ((c = getopt_long(argc, argv, cmd ? "a:v:r:f:t:jho:" : "+a:v:r:f:t:jh", long_options,
                            NULL)) != -1) {
        if (c == '?')
            return 2;
        if (c == 'h') {
            usage(stdout);
            exit(0);
        }
        bool allowed = c == 'a';
        for (const int *p = allowed_opts; *p && !allowed; p++)
            allowed = *p == c;
        if (!allowed) {
            fprintf(stderr, "modelwatch-ctl: %s does not take --%s\n",
                    cmd ? cmd->name : "the command line before the command", option_name(c));
            return 2;
        }
        switch (c) {
        case 'a':
            o->api = optarg;
            break;
        case 'v':
            o->version = optarg;
            break;
        case 'r':
            o->resolution = optarg;
            break;
        case 'f':
            o->from = optarg;
            break;
        case 't':
            o->to = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'o':
            o->output = optarg;
            break;
        case OPT_MODEL:
            o->model = optarg;
            break;
        case OPT_BINS:
            o->bins = optarg;
            break;
        case OPT_GRID_BINS:
            o->grid_bins = optarg;
            break;
        case OPT_MAX_CATEGORIES:
            o->max_categories = optarg;
            break;
        case OPT_CATEGORICAL:
            o->categorical[o->n_categorical++] = optarg;
            break;
        case OPT_IGNORE:
            o->ignore[o->n_ignore++] = optarg;
            break;
        case OPT_LABEL:
            o->label = optarg;
            break;
        case OPT_WINDOW:
            o->window = optarg;
            break;
        case OPT_INPUT:
            o->input = optarg;
            break;
        case OPT_STATE:
            o->state = optarg;
            break;
        case OPT_DURATION:
            o->duration = optarg;
            break;
        case OPT_COMMENT:
            o->comment = optarg;
            break;
        case OPT_AUTHOR:
            o->author = optarg;
            break;
        case OPT_TOKEN_FILE:
            o->token_file = optarg;
            break;
        default:
            return 2;
        }
    }
    *first_arg = optind;
    return 0;
}

/* Local checks of numeric query values, so a typo gets a clear message rather than an HTTP
 * 400. */
static bool check_query_numbers(const struct options *o)
{
    long long v;
    char *end;
    const struct {
        const char *name, *value;
        long long min;
    } checks[] = {{"--window", o->window, 0}, {"--resolution", o->resolution, 1}};
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (!checks[i].value)
            continue;
        errno = 0;
        v = strtoll(checks[i].value, &end, 10);
        if (errno || end == checks[i].value || *end || v < checks[i].min) {
            fprintf(stderr, "modelwatch-ctl: %s %s: expected an integer >= %lld\n", checks[i].name,
                    checks[i].value, checks[i].min);
            return false;
        }
    }
    return true;
}

int main(int argc, char **argv)
{
    struct options o = {.api = getenv("MODELWATCH_API")};
    if (!o.api || !*o.api)
        o.api = "http://127.0.0.1:9465";
    o.categorical = calloc((size_t)argc, sizeof *o.categorical);
    o.ignore = calloc((size_t)argc, sizeof *o.ignore);
    if (!o.categorical || !o.ignore)
        return 1;

    /* Global options come before the command: find the command word first. */
    int cmd_at;
    if (parse_options(argc, argv, NULL, &o, &cmd_at)) {
        usage(stderr);
        return 2;
    }
    if (cmd_at >= argc) {
        usage(stderr);
        return 2;
    }
    char name[64];
    snprintf(name, sizeof name, "%s", argv[cmd_at]);
    if ((strcmp(name, "profile") == 0 || strcmp(name, "rules") == 0 ||
         strcmp(name, "silence") == 0) &&
        cmd_at + 1 < argc) {
        snprintf(name, sizeof name, "%s %s", argv[cmd_at], argv[cmd_at + 1]);
        cmd_at++;
    }
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        if (strncmp(name, "profile", 7) == 0)
            fprintf(stderr, "modelwatch-ctl: profile takes build, push or show\n");
        else if (strncmp(name, "rules", 5) == 0)
            fprintf(stderr, "modelwatch-ctl: rules takes check\n");
        else if (strncmp(name, "silence", 7) == 0)
            fprintf(stderr, "modelwatch-ctl: silence takes add, list or expire\n");
        else
            fprintf(stderr, "modelwatch-ctl: unknown command: %s\n", name);
        usage(stderr);
        return 2;
    }
    /* The command's own options and arguments: argv[cmd_at] plays argv[0]. */
    int first_arg;
    int sub_argc = argc - cmd_at;
    char **sub_argv = argv + cmd_at;
    if (parse_options(sub_argc, sub_argv, cmd, &o, &first_arg))
        return 2;
    int n_args = sub_argc - first_arg;
    /* `profile build --input FILE` names the CSV as an option rather than an argument. */
    bool input_option = o.input && n_args == 0 && strcmp(cmd->name, "profile build") == 0;
    bool variadic = cmd->n_args < 0 && n_args > 0;
    if (n_args != cmd->n_args && !input_option && !variadic) {
        fprintf(stderr, "modelwatch-ctl: %s takes %s%s\n", cmd->name,
                cmd->n_args < 0 ? "one or more arguments, "
                : cmd->n_args   ? "one argument, "
                                : "no arguments",
                cmd->arg_names);
        usage(stderr);
        return 2;
    }
    const char *arg = n_args ? sub_argv[first_arg] : o.input;
    if (!check_query_numbers(&o))
        return 2;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (strcmp(cmd->name, "models") == 0)
        rc = cmd_models(&o);
    else if (strcmp(cmd->name, "windows") == 0)
        rc = cmd_windows(&o, arg);
    else if (strcmp(cmd->name, "profile build") == 0)
        rc = cmd_profile_build(&o, arg);
    else if (strcmp(cmd->name, "profile push") == 0)
        rc = has_token_file(&o) && !load_token(&o) ? 1 : cmd_profile_push(&o, arg);
    else if (strcmp(cmd->name, "profile show") == 0)
        rc = cmd_profile_show(&o, arg);
    else if (strcmp(cmd->name, "rules check") == 0)
        rc = cmd_rules_check(n_args, sub_argv + first_arg);
    else if (strcmp(cmd->name, "alerts") == 0)
        rc = cmd_alerts(&o);
    else if (strcmp(cmd->name, "silence add") == 0)
        rc = cmd_silence_add(&o, n_args, sub_argv + first_arg);
    else if (strcmp(cmd->name, "silence list") == 0)
        rc = cmd_silence_list(&o);
    else if (strcmp(cmd->name, "silence expire") == 0)
        rc = cmd_silence_expire(&o, arg);
    else
        rc = cmd_drift(&o, arg);
    curl_global_cleanup();
    free(o.categorical);
    free(o.ignore);
    return rc;
}
