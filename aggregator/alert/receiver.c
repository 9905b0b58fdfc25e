/*
 * receiver.c — the receiver registry, the `receivers:` configuration table, and the helpers both
 * receivers share (secrets from files, SHA-256/HMAC, the JSON pieces of a notification).
 */
#include "receiver.h"
#include "receiver_int.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "hash.h"
#include "prom.h"

#include <errno.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- labels, severity, fingerprint -------------------------------------------------------- */

const char *mw_notify_labels_get(const struct mw_notify_labels *labels, const char *name)
{
    for (size_t i = 0; labels && i < labels->n; i++) {
        if (labels->items[i].name && strcmp(labels->items[i].name, name) == 0)
            return labels->items[i].value;
    }
    return NULL;
}

enum mw_notify_severity mw_notify_severity_parse(const char *text)
{
    static const struct {
        const char *word;
        enum mw_notify_severity severity;
    } words[] = {
        {"critical", MW_NOTIFY_CRITICAL}, {"page", MW_NOTIFY_CRITICAL},
        {"fatal", MW_NOTIFY_CRITICAL},    {"error", MW_NOTIFY_ERROR},
        {"high", MW_NOTIFY_ERROR},        {"major", MW_NOTIFY_ERROR},
        {"warning", MW_NOTIFY_WARNING},   {"warn", MW_NOTIFY_WARNING},
        {"ticket", MW_NOTIFY_WARNING},    {"minor", MW_NOTIFY_WARNING},
        {"info", MW_NOTIFY_INFO},         {"low", MW_NOTIFY_INFO},
        {"none", MW_NOTIFY_INFO},
    };
    for (size_t i = 0; text && i < sizeof words / sizeof words[0]; i++) {
        if (strcasecmp(text, words[i].word) == 0)
            return words[i].severity;
    }
    return MW_NOTIFY_ERROR;
}

const char *mw_notify_severity_name(enum mw_notify_severity severity)
{
    switch (severity) {
    case MW_NOTIFY_CRITICAL:
        return "critical";
    case MW_NOTIFY_WARNING:
        return "warning";
    case MW_NOTIFY_INFO:
        return "info";
    case MW_NOTIFY_ERROR:
    default:
        return "error";
    }
}

static int compare_labels(const void *a, const void *b)
{
    const struct mw_notify_label *x = *(const struct mw_notify_label *const *)a;
    const struct mw_notify_label *y = *(const struct mw_notify_label *const *)b;
    return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

uint64_t mw_notify_fingerprint(const struct mw_notify_labels *labels)
{
    if (!labels || labels->n == 0)
        return 0;
    const struct mw_notify_label **sorted = mw_malloc(labels->n * sizeof *sorted);
    if (!sorted)
        return 0;
    for (size_t i = 0; i < labels->n; i++)
        sorted[i] = &labels->items[i];
    qsort(sorted, labels->n, sizeof *sorted, compare_labels);
    uint64_t h = MW_HASH_INIT;
    for (size_t i = 0; i < labels->n; i++) {
        h = mw_hash_str(h, sorted[i]->name ? sorted[i]->name : "");
        h = mw_hash_byte(h, 0xff);
        h = mw_hash_str(h, sorted[i]->value ? sorted[i]->value : "");
        h = mw_hash_byte(h, 0xff);
    }
    mw_free(sorted);
    return h;
}

/* ---- requests and verdicts ---------------------------------------------------------------------
 */

void mw_receiver_request_free(struct mw_receiver_request *req)
{
    if (!req)
        return;
    mw_free(req->url);
    for (size_t i = 0; i < req->n_headers; i++)
        mw_free(req->headers[i]);
    mw_free(req->body);
    memset(req, 0, sizeof *req);
}

const char *mw_receiver_verdict_name(enum mw_receiver_verdict verdict)
{
    switch (verdict) {
    case MW_RECEIVER_DELIVERED:
        return "delivered";
    case MW_RECEIVER_RETRY:
        return "retry";
    case MW_RECEIVER_REJECTED:
    default:
        return "rejected";
    }
}

/* ---- configuration
 * ------------------------------------------------------------------------------- */

#define F(member) offsetof(struct mw_receiver_config, member)

static const char *const receiver_types[] = {"pagerduty", "webhook", NULL};

static const char *check_url(const void *value)
{
    const char *url = *(char *const *)value;
    if (!url || !*url)
        return NULL; /* defaults and requirements are the type's business */
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return "expected an http:// or https:// URL";
    return NULL;
}

const struct mw_cfg_field mw_receiver_config_table[] = {
    {.key = "name",
     .type = MW_CFG_STRING,
     .offset = F(name),
     .required = true,
     .desc = "Name routes refer to; unique"},
    {.key = "type",
     .type = MW_CFG_ENUM,
     .offset = F(type),
     .choices = receiver_types,
     .required = true,
     .desc = "pagerduty (Events API v2) or webhook (Alertmanager's webhook JSON, version 4)"},
    {.key = "url",
     .type = MW_CFG_STRING,
     .offset = F(url),
     .def = "",
     .secret_userinfo = true,
     .check = check_url,
     .desc = "pagerduty: base URL, events go to <url>/v2/enqueue (empty = "
             "https://events.pagerduty.com); webhook: the URL to POST to (required)"},
    {.key = "routing_key_file",
     .type = MW_CFG_STRING,
     .offset = F(routing_key_file),
     .def = "",
     .path = MW_CFG_PATH_FILE,
     .desc = "pagerduty: file holding the integration's routing key (required; never logged)"},
    {.key = "hmac_key_file",
     .type = MW_CFG_STRING,
     .offset = F(hmac_key_file),
     .def = "",
     .path = MW_CFG_PATH_FILE,
     .desc = "webhook: file whose exact bytes key an HMAC-SHA256 of each body (empty = unsigned)"},
    {.key = "signature_header",
     .type = MW_CFG_STRING,
     .offset = F(signature_header),
     .def = "X-Modelwatch-Signature",
     .desc = "webhook: header carrying sha256=<hex of the HMAC> when hmac_key_file is set"},
    {.key = "max_alerts",
     .type = MW_CFG_INT,
     .offset = F(max_alerts),
     .def = "0",
     .min = 0,
     .max = 100000,
     .desc = "webhook: most alerts in one message, the rest counted in truncatedAlerts (0 = all)"},
    {.key = "timeout",
     .type = MW_CFG_DURATION,
     .offset = F(timeout_ms),
     .def = "10s",
     .min = 100,
     .max = 300000,
     .desc = "Longest one request may take, connection included"},
    {.key = "connect_timeout",
     .type = MW_CFG_DURATION,
     .offset = F(connect_timeout_ms),
     .def = "5s",
     .min = 100,
     .max = 60000,
     .desc = "Longest the TCP and TLS handshakes may take"},
    {.key = "queue_max",
     .type = MW_CFG_INT,
     .offset = F(queue_max),
     .def = "1024",
     .min = 1,
     .max = 1000000,
     .desc = "Notifications waiting or in flight for this receiver; beyond it new ones are "
             "dropped and counted"},
    {.key = "queue_max_bytes",
     .type = MW_CFG_SIZE,
     .offset = F(queue_max_bytes),
     .def = "64MiB",
     .min = 1048576,
     .max = 4294967296.0,
     .desc = "Bytes of encoded notifications waiting or in flight for this receiver; beyond it "
             "new ones are dropped and counted"},
    {.key = "max_in_flight",
     .type = MW_CFG_INT,
     .offset = F(max_in_flight),
     .def = "4",
     .min = 1,
     .max = 256,
     .desc = "Requests to this receiver at the same time"},
    {.key = "retry.initial",
     .type = MW_CFG_DURATION,
     .offset = F(retry.initial_ms),
     .def = "1s",
     .min = 1,
     .max = 600000,
     .desc = "Backoff cap before the first retry; each retry waits a random time up to the cap, "
             "which doubles per attempt (full jitter)"},
    {.key = "retry.max",
     .type = MW_CFG_DURATION,
     .offset = F(retry.max_ms),
     .def = "60s",
     .min = 1,
     .max = 3600000,
     .desc = "Largest backoff cap"},
    {.key = "retry.max_attempts",
     .type = MW_CFG_INT,
     .offset = F(retry.max_attempts),
     .def = "12",
     .min = 1,
     .max = 1000,
     .desc = "Attempts per notification, the first included, before it fails"},
    {.key = "retry.max_age",
     .type = MW_CFG_DURATION,
     .offset = F(retry.max_age_ms),
     .def = "30m",
     .min = 1000,
     .max = 86400000,
     .desc = "A notification not delivered this long after it was submitted fails"},
    {.key = "retry.retry_after_max",
     .type = MW_CFG_DURATION,
     .offset = F(retry.retry_after_max_ms),
     .def = "5m",
     .min = 0,
     .max = 3600000,
     .desc = "Longest wait a receiver's Retry-After header is granted"},
    MW_CFG_END,
};

#undef F

int mw_receivers_config_check(const struct mw_cfg_list *receivers, char *err, size_t errsize)
{
    const struct mw_receiver_config *items = receivers ? receivers->items : NULL;
    size_t n = receivers ? receivers->n : 0;
    for (size_t i = 0; i < n; i++) {
        const struct mw_receiver_config *r = &items[i];
        for (size_t j = 0; j < i; j++) {
            if (strcmp(items[j].name, r->name) == 0) {
                snprintf(err, errsize,
                         "receivers[%zu].name: \"%s\" is already the name of "
                         "receivers[%zu]",
                         i, r->name, j);
                return MW_ECONFIG;
            }
        }
        if (r->type == MW_RECEIVER_PAGERDUTY && (!r->routing_key_file || !*r->routing_key_file)) {
            snprintf(err, errsize, "receivers[%zu].routing_key_file: required for type pagerduty",
                     i);
            return MW_ECONFIG;
        }
        if (r->type == MW_RECEIVER_WEBHOOK && (!r->url || !*r->url)) {
            snprintf(err, errsize, "receivers[%zu].url: required for type webhook", i);
            return MW_ECONFIG;
        }
        if (r->retry.max_ms < r->retry.initial_ms) {
            snprintf(err, errsize, "receivers[%zu].retry.max: smaller than retry.initial", i);
            return MW_ECONFIG;
        }
    }
    return 0;
}

/* ---- registry ---------------------------------------------------------------------------------
 */

const struct mw_receiver_ops *mw_receiver_ops_for(enum mw_receiver_type type)
{
    switch (type) {
    case MW_RECEIVER_PAGERDUTY:
        return &mw_receiver_pagerduty_ops;
    case MW_RECEIVER_WEBHOOK:
        return &mw_receiver_webhook_ops;
    default:
        return NULL;
    }
}

int mw_receiver_create(const struct mw_receiver_config *cfg, struct mw_receiver **out, char *err,
                       size_t errsize)
{
    *out = NULL;
    const struct mw_receiver_ops *ops = mw_receiver_ops_for((enum mw_receiver_type)cfg->type);
    if (!ops) {
        snprintf(err, errsize, "receiver %s: unknown type %d", cfg->name, cfg->type);
        return MW_EINVAL;
    }
    struct mw_receiver *r = mw_calloc(1, sizeof *r);
    if (!r || !(r->name = mw_strdup(cfg->name))) {
        mw_free(r);
        snprintf(err, errsize, "receiver %s: out of memory", cfg->name);
        return MW_ENOMEM;
    }
    r->ops = ops;
    int rc = ops->init(cfg, &r->ctx, err, errsize);
    if (rc) {
        mw_free(r->name);
        mw_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void mw_receiver_destroy(struct mw_receiver *r)
{
    if (!r)
        return;
    r->ops->destroy(r->ctx);
    mw_free(r->name);
    mw_free(r);
}

/* ---- secrets and digests ----------------------------------------------------------------------
 */

int mw__receiver_read_secret(const char *path, const char *what, bool trim, char *buf, size_t size,
                             size_t *len, char *err, size_t errsize)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        snprintf(err, errsize, "%s: cannot read \"%s\": %s", what, path, strerror(errno));
        return MW_EIO;
    }
    size_t n = fread(buf, 1, size, f);
    int saved_errno = errno;
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        OPENSSL_cleanse(buf, size);
        snprintf(err, errsize, "%s: cannot read \"%s\": %s", what, path, strerror(saved_errno));
        return MW_EIO;
    }
    if (n >= size) {
        OPENSSL_cleanse(buf, size);
        snprintf(err, errsize, "%s: \"%s\" is larger than %zu bytes: not a key file?", what, path,
                 size - 1);
        return MW_ECONFIG;
    }
    while (trim && n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (n == 0) {
        snprintf(err, errsize, "%s: \"%s\" is empty", what, path);
        return MW_ECONFIG;
    }
    *len = n;
    return 0;
}

static void to_hex(const unsigned char *bytes, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    hex[2 * n] = '\0';
}

int mw__receiver_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
        return MW_EIO;
    to_hex(md, md_len, hex);
    return 0;
}

int mw__receiver_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t len,
                                 char hex[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, md, &md_len) || md_len != 32)
        return MW_EIO;
    to_hex(md, md_len, hex);
    return 0;
}

/* ---- JSON pieces ----------------------------------------------------------------------------- */

json_t *mw__receiver_json_string(const char *text)
{
    if (!text)
        text = "";
    /* Every bad byte may become the 3-byte U+FFFD. */
    size_t size = strlen(text) * 3 + 4;
    char *clean = mw_malloc(size);
    if (!clean)
        return NULL;
    size_t n = mw_prom_utf8_copy(text, clean, size);
    json_t *s = json_stringn(clean, n);
    mw_free(clean);
    return s;
}

json_t *mw__receiver_json_labels(const struct mw_notify_labels *labels)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && labels && i < labels->n; i++) {
        const struct mw_notify_label *l = &labels->items[i];
        if (!l->name)
            continue;
        json_t *v = mw__receiver_json_string(l->value);
        json_t *k = mw__receiver_json_string(l->name); /* keys must be valid UTF-8 too */
        if (!v || !k || json_object_set_new(obj, json_string_value(k), v) != 0) {
            json_decref(k);
            json_decref(obj);
            return NULL;
        }
        json_decref(k);
    }
    return obj;
}

json_t *mw__receiver_json_values(const struct mw_notify_value *values, size_t n)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < n; i++) {
        double x = values[i].value;
        json_t *v = isnan(x)   ? json_string("NaN")
                    : isinf(x) ? json_string(x > 0 ? "+Inf" : "-Inf")
                               : json_real(x);
        json_t *k = mw__receiver_json_string(values[i].name);
        if (!v || !k || json_object_set_new(obj, json_string_value(k), v) != 0) {
            json_decref(k);
            json_decref(obj);
            return NULL;
        }
        json_decref(k);
    }
    return obj;
}

json_t *mw__receiver_json_time(int64_t unix_ms)
{
    if (unix_ms == 0)
        return json_string("0001-01-01T00:00:00Z");
    char text[40];
    return json_string(mw_clock_format_rfc3339(unix_ms, text, sizeof text));
}

int mw__receiver_json_body(json_t *root, struct mw_receiver_request *out)
{
    size_t size = json_dumpb(root, NULL, 0, JSON_COMPACT);
    if (size == 0)
        return MW_ENOMEM;
    char *body = mw_malloc(size + 1);
    if (!body)
        return MW_ENOMEM;
    if (json_dumpb(root, body, size, JSON_COMPACT) != size) {
        mw_free(body);
        return MW_ENOMEM;
    }
    body[size] = '\0';
    mw_free(out->body);
    out->body = body;
    out->body_len = size;
    return 0;
}

int mw__receiver_add_header(struct mw_receiver_request *out, const char *name, const char *value)
{
    if (out->n_headers >= MW_RECEIVER_MAX_HEADERS)
        return MW_EFULL;
    size_t size = strlen(name) + strlen(value) + 3;
    char *line = mw_malloc(size);
    if (!line)
        return MW_ENOMEM;
    snprintf(line, size, "%s: %s", name, value);
    out->headers[out->n_headers++] = line;
    out->headers[out->n_headers] = NULL;
    return 0;
}

enum mw_receiver_verdict mw__receiver_http_verdict(const struct mw_http_client_response *resp)
{
    if (resp->err)
        return MW_RECEIVER_RETRY;
    if (resp->status >= 200 && resp->status < 300)
        return MW_RECEIVER_DELIVERED;
    if (resp->status == 429 || resp->status >= 500)
        return MW_RECEIVER_RETRY;
    return MW_RECEIVER_REJECTED;
}
