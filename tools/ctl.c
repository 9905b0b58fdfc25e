/*
 * ctl.c — modelwatch-ctl, the command line for people: reads the aggregator's HTTP API and
 * prints readable tables.
 *
 *   modelwatch-ctl [--api URL] models
 *   modelwatch-ctl [--api URL] windows MODEL [--version V] [--resolution SECONDS]
 *                                            [--from MS] [--to MS] [--json]
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RESPONSE_BYTES (64u * 1024 * 1024)

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
    int json;
};

static void usage(FILE *to)
{
    fprintf(to,
            "usage: modelwatch-ctl [--api URL] COMMAND [ARGS]\n"
            "Commands:\n"
            "  models                      list the models the aggregator has seen\n"
            "  windows MODEL [--version V] [--resolution SECONDS] [--from MS] [--to MS]\n"
            "                              per-window service signals of one model\n"
            "Options:\n"
            "  --api URL    the aggregator's API (default http://127.0.0.1:9465, or $MODELWATCH_API)\n"
            "  --json       print the API's JSON instead of a table\n");
}

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

/* GET api + path; returns the parsed JSON or NULL after printing why. */
static json_t *get_json(const struct options *o, const char *path)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%s", o->api, path);
    struct response r = {0};
    CURL *curl = curl_easy_init();
    if (!curl)
        return NULL;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
        fprintf(stderr, "modelwatch-ctl: %s: %s\n", url, curl_easy_strerror(rc));
        free(r.data);
        return NULL;
    }
    json_error_t err;
    json_t *doc = r.data ? json_loads(r.data, 0, &err) : NULL;
    if (status != 200) {
        json_t *msg = doc ? json_object_get(doc, "error") : NULL;
        fprintf(stderr, "modelwatch-ctl: %s: HTTP %ld: %s\n", url, status,
                msg ? json_string_value(msg) : (r.data ? r.data : ""));
        json_decref(doc);
        doc = NULL;
    } else if (!doc) {
        fprintf(stderr, "modelwatch-ctl: %s: invalid JSON: %s\n", url, err.text);
    }
    free(r.data);
    return doc;
}

static int print_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2));
    if (text)
        puts(text);
    free(text);
    json_decref(doc);
    return 0;
}

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
    char path[1024];
    char *escaped = curl_easy_escape(NULL, model, 0);
    int n = snprintf(path, sizeof path, "/api/v1/models/%s/windows?limit=10000", escaped);
    curl_free(escaped);
    const struct {
        const char *name;
        const char *value;
    } params[] = {{"version", o->version}, {"resolution", o->resolution}, {"from", o->from},
                  {"to", o->to}};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        if (!params[i].value || n < 0 || (size_t)n >= sizeof path)
            continue;
        char *v = curl_easy_escape(NULL, params[i].value, 0);
        n += snprintf(path + n, sizeof path - (size_t)n, "&%s=%s", params[i].name, v);
        curl_free(v);
    }
    json_t *doc = get_json(o, path);
    if (!doc)
        return 1;
    if (o->json)
        return print_json(doc);
    printf("model %s, %" JSON_INTEGER_FORMAT " s windows\n", model,
           json_integer_value(json_object_get(doc, "resolution_s")));
    printf("%-21s %-10s %10s %8s %10s %10s %10s %10s %8s\n", "WINDOW START", "VERSION",
           "REQUESTS", "ERRORS", "ERROR%", "P50_US", "P90_US", "P99_US", "SAMPLED");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(doc, "windows"), i, w) print_window_row(w);
    json_decref(doc);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"api", required_argument, NULL, 'a'},        {"version", required_argument, NULL, 'v'},
        {"resolution", required_argument, NULL, 'r'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},         {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
    struct options o = {.api = getenv("MODELWATCH_API")};
    if (!o.api || !*o.api)
        o.api = "http://127.0.0.1:9465";
    int c;
    while ((c = getopt_long(argc, argv, "+a:v:r:f:t:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'a': o.api = optarg; break;
        case 'v': o.version = optarg; break;
        case 'r': o.resolution = optarg; break;
        case 'f': o.from = optarg; break;
        case 't': o.to = optarg; break;
        case 'j': o.json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind++];
    /* Options may also follow the command's arguments. */
    const char *model = optind < argc && argv[optind][0] != '-' ? argv[optind++] : NULL;
    while ((c = getopt_long(argc, argv, "a:v:r:f:t:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'a': o.api = optarg; break;
        case 'v': o.version = optarg; break;
        case 'r': o.resolution = optarg; break;
        case 'f': o.from = optarg; break;
        case 't': o.to = optarg; break;
        case 'j': o.json = 1; break;
        default: usage(stderr); return 2;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 2;
    if (strcmp(cmd, "models") == 0) {
        rc = cmd_models(&o);
    } else if (strcmp(cmd, "windows") == 0 && model) {
        rc = cmd_windows(&o, model);
    } else {
        fprintf(stderr, "modelwatch-ctl: unknown command or missing argument: %s\n", cmd);
        usage(stderr);
    }
    curl_global_cleanup();
    return rc;
}
