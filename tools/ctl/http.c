/* http.c — modelwatch-ctl's requests to the aggregator's API (libcurl): URLs built from
 * escaped parts, answers unwrapped from the API's envelope. */
#include "ctl.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE_BYTES (64u * 1024 * 1024)

struct response {
    char *data;
    size_t len;
};

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

/* The data of a success envelope (a new reference), or NULL after printing why the answer is
 * not one. */
static json_t *envelope_data(json_t *doc, const char *method, const char *url)
{
    json_t *data = json_object_get(doc, "data");
    if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "status")) ||
        strcmp(json_string_value(json_object_get(doc, "status")), "success") != 0 || !data) {
        fprintf(stderr, "modelwatch-ctl: %s %s: not an answer of the modelwatch API\n", method,
                url);
        return NULL;
    }
    return json_incref(data);
}

/* Print an error answer: its status, the API's errorType and message (or the body). */
static void print_error(long status, json_t *doc, const struct response *r, const char *method,
                        const char *url)
{
    const char *type = json_string_value(json_object_get(doc, "errorType"));
    const char *msg = json_string_value(json_object_get(doc, "error"));
    fprintf(stderr, "modelwatch-ctl: %s %s: HTTP %ld%s%s: %s\n", method, url, status,
            type ? " " : "", type ? type : "",
            msg       ? msg
            : r->data ? r->data
                      : "");
}

json_t *ctl_request(const struct options *o, const char *method, const char *path, const char *body,
                    size_t body_len)
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
    json_t *data = NULL;
    if (status < 200 || status > 299)
        print_error(status, doc, &r, method, url);
    else if (!doc)
        fprintf(stderr, "modelwatch-ctl: %s %s: invalid JSON: %s\n", method, url,
                r.len ? err.text : "empty answer");
    else
        data = envelope_data(doc, method, url);
    json_decref(doc);
    free(r.data);
    return data;
}

json_t *ctl_get(const struct options *o, const char *path)
{
    return ctl_request(o, "GET", path, NULL, 0);
}

void ctl_path_add(struct path *p, const char *s)
{
    size_t n = strlen(s);
    if (p->too_long || p->len + n >= sizeof p->text) {
        p->too_long = true;
        return;
    }
    memcpy(p->text + p->len, s, n + 1);
    p->len += n;
}

void ctl_path_add_escaped(struct path *p, const char *s)
{
    char *escaped = curl_easy_escape(NULL, s, 0);
    if (!escaped) {
        p->too_long = true;
        return;
    }
    ctl_path_add(p, escaped);
    curl_free(escaped);
}

/* Adds ?name=value or &name=value; nothing when value is NULL. */
void ctl_path_param(struct path *p, const char *name, const char *value)
{
    if (!value)
        return;
    ctl_path_add(p, p->has_query ? "&" : "?");
    p->has_query = true;
    ctl_path_add(p, name);
    ctl_path_add(p, "=");
    ctl_path_add_escaped(p, value);
}

/* "/api/v1/models/{model}" followed by `rest` (not escaped). */
void ctl_model_path(struct path *p, const char *model, const char *rest)
{
    ctl_path_add(p, "/api/v1/models/");
    ctl_path_add_escaped(p, model);
    ctl_path_add(p, rest);
}

bool ctl_path_ok(const struct path *p)
{
    if (p->too_long)
        fprintf(stderr, "modelwatch-ctl: request path longer than %d bytes\n", MAX_PATH_BYTES);
    return !p->too_long;
}

void ctl_path_param_ms(struct path *p, const char *name, bool has, int64_t ms)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, ms);
    if (has)
        ctl_path_param(p, name, text);
}
