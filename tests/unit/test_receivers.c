/*
 * test_receivers.c — what the receivers put on the wire, checked against the rules of the APIs
 * rather than against the code: PagerDuty Events v2 (dedup_key, summary limit, 512 KB limit,
 * severities, links), Alertmanager's webhook v4 shape, the HMAC signature recomputed here with
 * OpenSSL's EVP_MAC (not the HMAC() the code uses), the fingerprint recomputed from the labels,
 * how answers are classified, the backoff bounds, and the `receivers:` config section.
 */
#include "alert/delivery.h"
#include "alert/receiver.h"

#include "alloc.h"
#include "config.h"
#include "error.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define ROUTING_KEY "R0UT1NGKEY0123456789abcdefABCDEF"

struct fixture {
    char dir[64];
    char key_path[128];
    char hmac_path[128];
    struct mw_receiver *pd;
    struct mw_receiver *wh;
};

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static const unsigned char HMAC_KEY[] = "s3cret\nkey with a newline\n";

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mw-test-receivers-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->key_path, sizeof f->key_path, "%s/routing_key", f->dir);
    snprintf(f->hmac_path, sizeof f->hmac_path, "%s/hmac_key", f->dir);
    write_file(f->key_path, ROUTING_KEY "\n", strlen(ROUTING_KEY) + 1);
    write_file(f->hmac_path, HMAC_KEY, sizeof HMAC_KEY - 1);
    char err[256];
    struct mw_receiver_config pd = {.name = "oncall",
                                    .type = MW_RECEIVER_PAGERDUTY,
                                    .url = "http://127.0.0.1:9/base/",
                                    .routing_key_file = f->key_path};
    assert_int_equal(mw_receiver_create(&pd, &f->pd, err, sizeof err), 0);
    struct mw_receiver_config wh = {.name = "hook",
                                    .type = MW_RECEIVER_WEBHOOK,
                                    .url = "http://127.0.0.1:9/hook",
                                    .hmac_key_file = f->hmac_path,
                                    .signature_header = "X-Modelwatch-Signature",
                                    .max_alerts = 2};
    assert_int_equal(mw_receiver_create(&wh, &f->wh, err, sizeof err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mw_receiver_destroy(f->pd);
    mw_receiver_destroy(f->wh);
    unlink(f->key_path);
    unlink(f->hmac_path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- a notification to encode ---------------------------------------------------------------- */

static const struct mw_notify_label LATENCY_LABELS[] = {
    {"alertname", "LatencyP99High"}, {"model", "churn"},        {"version", "v4"},
    {"namespace", "ml-prod"},        {"signal", "latency_p99"}, {"severity", "warning"},
};
static const struct mw_notify_label ERRORS_LABELS[] = {
    {"alertname", "ErrorRateHigh"}, {"model", "churn"},       {"version", "v4"},
    {"namespace", "ml-prod"},       {"signal", "error_rate"}, {"severity", "critical"},
};
static const struct mw_notify_label COMMON[] = {
    {"model", "churn"}, {"version", "v4"}, {"namespace", "ml-prod"}};
static const struct mw_notify_label GROUP[] = {{"model", "churn"}};
static const struct mw_notify_value VALUES[] = {
    {"value", 0.093}, {"threshold", 0.01}, {"samples", 12000}};

struct note {
    struct mw_notify_alert alerts[3];
    struct mw_notify_label ann[2][3];
    struct mw_notify_group n;
};

static void make_note(struct note *x, const char *group_key, const char *summary,
                      enum mw_notify_status status)
{
    memset(x, 0, sizeof *x);
    x->ann[0][0] = (struct mw_notify_label){"summary", summary};
    x->ann[0][1] = (struct mw_notify_label){"runbook_url", "https://runbooks.example/latency"};
    x->ann[1][0] = (struct mw_notify_label){"summary", "error rate 9.3% on churn v4"};
    x->ann[1][1] = (struct mw_notify_label){"runbook_url", "https://runbooks.example/errors"};
    x->alerts[0] = (struct mw_notify_alert){
        .status = status,
        .labels = {LATENCY_LABELS, 6},
        .annotations = {x->ann[0], 2},
        .values = VALUES,
        .n_values = 3,
        .starts_at_ms = 1767225600000, /* 2026-01-01T00:00:00Z */
        .ends_at_ms = status == MW_NOTIFY_RESOLVED ? 1767229200000 : 0,
        .generator_url = "http://mw.example/api/v1/models/churn/windows?start=1767225600000"};
    x->alerts[1] = x->alerts[0];
    x->alerts[1].labels = (struct mw_notify_labels){ERRORS_LABELS, 6};
    x->alerts[1].annotations = (struct mw_notify_labels){x->ann[1], 2};
    x->alerts[1].starts_at_ms = 1767225540000;
    x->alerts[2] = x->alerts[0];
    x->n = (struct mw_notify_group){.group_key = group_key,
                                    .receiver = "oncall",
                                    .status = status,
                                    .group_labels = {GROUP, 1},
                                    .common_labels = {COMMON, 3},
                                    .alerts = x->alerts,
                                    .n_alerts = 1,
                                    .external_url = "http://mw.example"};
}

static json_t *encode(struct mw_receiver *r, const struct mw_notify_group *n,
                      struct mw_receiver_request *req)
{
    memset(req, 0, sizeof *req);
    assert_int_equal(r->ops->encode(r->ctx, n, req), 0);
    assert_non_null(req->body);
    assert_int_equal(strlen(req->body), req->body_len);
    json_error_t jerr;
    json_t *root = json_loadb(req->body, req->body_len, 0, &jerr);
    assert_non_null(root);
    return root;
}

static const char *str(json_t *obj, const char *path_fmt, ...)
{
    char path[128];
    va_list ap;
    va_start(ap, path_fmt);
    vsnprintf(path, sizeof path, path_fmt, ap);
    va_end(ap);
    json_t *v = obj;
    for (char *part = path, *dot; v && part; part = dot ? dot + 1 : NULL) {
        dot = strchr(part, '.');
        if (dot)
            *dot = '\0';
        v = json_is_array(v) ? json_array_get(v, strtoul(part, NULL, 10))
                             : json_object_get(v, part);
    }
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void sha256_hex(const char *text, char hex[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_true(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
    assert_true(EVP_DigestUpdate(ctx, text, strlen(text)));
    assert_true(EVP_DigestFinal_ex(ctx, md, &len));
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* ---- PagerDuty --------------------------------------------------------------------------------
 */

static void test_pagerduty_trigger_fields(void **state)
{
    struct fixture *f = *state;
    struct note x;
    make_note(&x, "{}/{model=\"churn\"}:latency", "p99 latency 2.4 s over 1.0 s on churn v4",
              MW_NOTIFY_FIRING);
    struct mw_receiver_request req;
    json_t *ev = encode(f->pd, &x.n, &req);
    assert_string_equal(req.url, "http://127.0.0.1:9/base/v2/enqueue");
    assert_string_equal(req.headers[0], "Content-Type: application/json");
    assert_string_equal(str(ev, "routing_key"), ROUTING_KEY); /* trailing newline trimmed */
    assert_string_equal(str(ev, "event_action"), "trigger");
    char want[65];
    sha256_hex(x.n.group_key, want);
    assert_string_equal(str(ev, "dedup_key"), want);
    assert_string_equal(str(ev, "payload.summary"), "p99 latency 2.4 s over 1.0 s on churn v4");
    assert_string_equal(str(ev, "payload.source"), "churn");
    assert_string_equal(str(ev, "payload.severity"), "warning");
    assert_string_equal(str(ev, "payload.timestamp"), "2026-01-01T00:00:00.000Z");
    assert_string_equal(str(ev, "payload.component"), "churn");
    assert_string_equal(str(ev, "payload.group"), "ml-prod");
    assert_string_equal(str(ev, "payload.class"), "latency_p99");
    assert_string_equal(str(ev, "payload.custom_details.alerts.0.labels.version"), "v4");
    assert_string_equal(str(ev, "payload.custom_details.alerts.0.annotations.summary"),
                        "p99 latency 2.4 s over 1.0 s on churn v4");
    json_t *value = json_object_get(
        json_object_get(
            json_array_get(
                json_object_get(json_object_get(json_object_get(ev, "payload"), "custom_details"),
                                "alerts"),
                0),
            "values"),
        "value");
    assert_true(json_is_real(value) && json_real_value(value) == 0.093);
    assert_string_equal(str(ev, "links.0.href"), "https://runbooks.example/latency");
    assert_string_equal(str(ev, "links.1.href"), x.alerts[0].generator_url);
    assert_string_equal(str(ev, "client"), "modelwatch");
    assert_string_equal(str(ev, "client_url"), "http://mw.example");
    json_decref(ev);
    mw_receiver_request_free(&req);
}

/* Same group -> same dedup_key, whatever the alerts say and whether it fires or resolves;
 * another group -> another key. A resolve carries what the API needs and no payload. */
static void test_pagerduty_dedup_key_stable(void **state)
{
    struct fixture *f = *state;
    struct note a, b, resolved, other;
    make_note(&a, "route-1/{model=\"churn\"}", "first", MW_NOTIFY_FIRING);
    make_note(&b, "route-1/{model=\"churn\"}", "second, different text", MW_NOTIFY_FIRING);
    b.n.n_alerts = 2;
    make_note(&resolved, "route-1/{model=\"churn\"}", "first", MW_NOTIFY_RESOLVED);
    make_note(&other, "route-1/{model=\"fraud\"}", "first", MW_NOTIFY_FIRING);
    struct mw_receiver_request ra, rb, rr, ro;
    json_t *ja = encode(f->pd, &a.n, &ra), *jb = encode(f->pd, &b.n, &rb);
    json_t *jr = encode(f->pd, &resolved.n, &rr), *jo = encode(f->pd, &other.n, &ro);
    assert_string_equal(str(ja, "dedup_key"), str(jb, "dedup_key"));
    assert_string_equal(str(ja, "dedup_key"), str(jr, "dedup_key"));
    assert_string_not_equal(str(ja, "dedup_key"), str(jo, "dedup_key"));
    assert_int_equal(strlen(str(ja, "dedup_key")), 64);
    assert_string_equal(str(jr, "event_action"), "resolve");
    assert_null(json_object_get(jr, "payload"));
    assert_int_equal(json_object_size(jr), 3); /* routing_key, event_action, dedup_key */
    /* Two alerts: the summary says so, the most severe firing alert sets the severity, the
     * earliest start is the timestamp. */
    assert_string_equal(str(jb, "payload.summary"), "[FIRING:2] second, different text");
    assert_string_equal(str(jb, "payload.severity"), "critical");
    assert_string_equal(str(jb, "payload.timestamp"), "2025-12-31T23:59:00.000Z");
    json_decref(ja);
    json_decref(jb);
    json_decref(jr);
    json_decref(jo);
    mw_receiver_request_free(&ra);
    mw_receiver_request_free(&rb);
    mw_receiver_request_free(&rr);
    mw_receiver_request_free(&ro);
}

static void check_summary(struct fixture *f, const char *summary, const char *want_prefix,
                          size_t want_chars, bool want_ellipsis)
{
    struct note x;
    make_note(&x, "g", summary, MW_NOTIFY_FIRING);
    struct mw_receiver_request req;
    json_t *ev = encode(f->pd, &x.n, &req); /* json_loadb accepted it: valid UTF-8 */
    const char *got = str(ev, "payload.summary");
    assert_non_null(got);
    assert_int_equal(utf8_chars(got), want_chars);
    assert_int_equal(strncmp(got, want_prefix, strlen(want_prefix)), 0);
    size_t len = strlen(got);
    bool ellipsis = len >= 3 && strcmp(got + len - 3, "\xe2\x80\xa6") == 0;
    assert_int_equal(ellipsis, want_ellipsis);
    json_decref(ev);
    mw_receiver_request_free(&req);
}

static void test_pagerduty_summary_limit(void **state)
{
    struct fixture *f = *state;
    char *text = malloc(8192);
    assert_non_null(text);
    /* 1024 characters fit as they are; 1025 are cut to 1023 and an ellipsis. */
    memset(text, 'a', 1024);
    text[1024] = '\0';
    check_summary(f, text, "aaaa", 1024, false);
    memset(text, 'b', 2000);
    text[2000] = '\0';
    check_summary(f, text, "bbbb", 1024, true);
    /* Two-byte and four-byte characters are never split. */
    text[0] = '\0';
    for (int i = 0; i < 1500; i++)
        strcat(text, "\xc3\xa9"); /* é */
    check_summary(f, text, "\xc3\xa9", 1024, true);
    text[0] = '\0';
    strcat(text, "x");
    for (int i = 0; i < 1100; i++)
        strcat(text, "\xf0\x9f\x94\xa5"); /* U+1F525 */
    check_summary(f, text, "x\xf0\x9f\x94\xa5", 1024, true);
    /* Bytes that are not UTF-8 become U+FFFD instead of breaking the JSON. */
    check_summary(f, "bad \xff\xfe byte", "bad \xef\xbf\xbd\xef\xbf\xbd byte", 11, false);
    free(text);
}

/* An event over 512 KB loses custom_details (a note says so) and keeps everything else. */
static void test_pagerduty_512k_drops_custom_details(void **state)
{
    struct fixture *f = *state;
    size_t big_len = 600 * 1024;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    memset(big, 'd', big_len);
    big[big_len] = '\0';
    struct note x;
    make_note(&x, "g-big", "huge description", MW_NOTIFY_FIRING);
    x.ann[0][2] = (struct mw_notify_label){"description", big};
    x.alerts[0].annotations.n = 3;
    struct mw_receiver_request req;
    json_t *ev = encode(f->pd, &x.n, &req);
    assert_true(req.body_len <= 512 * 1024);
    assert_null(strstr(req.body, "dddddddd"));
    assert_non_null(str(ev, "payload.custom_details.error"));
    assert_string_equal(str(ev, "payload.summary"), "huge description");
    assert_string_equal(str(ev, "payload.severity"), "warning");
    assert_string_equal(str(ev, "links.0.href"), "https://runbooks.example/latency");
    json_decref(ev);
    mw_receiver_request_free(&req);

    /* Just under the limit: kept whole. */
    big[400 * 1024] = '\0';
    ev = encode(f->pd, &x.n, &req);
    assert_non_null(strstr(req.body, "dddddddd"));
    assert_null(str(ev, "payload.custom_details.error"));
    json_decref(ev);
    mw_receiver_request_free(&req);
    free(big);
}

static void test_severity_mapping(void **state)
{
    (void)state;
    struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"critical", "critical"},
        {"CRITICAL", "critical"},
        {"page", "critical"},
        {"error", "error"},
        {"high", "error"},
        {"warning", "warning"},
        {"warn", "warning"},
        {"ticket", "warning"},
        {"info", "info"},
        {"low", "info"},
        {"bogus", "error"},
        {NULL, "error"},
        {"", "error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(mw_notify_severity_name(mw_notify_severity_parse(cases[i].text)),
                            cases[i].want);
}

static void test_pagerduty_severity_from_group(void **state)
{
    struct fixture *f = *state;
    struct note x;
    make_note(&x, "g", "s", MW_NOTIFY_FIRING);
    x.n.n_alerts = 2;
    x.alerts[1].status = MW_NOTIFY_RESOLVED; /* the critical one resolved: warning remains */
    struct mw_receiver_request req;
    json_t *ev = encode(f->pd, &x.n, &req);
    assert_string_equal(str(ev, "payload.severity"), "warning");
    assert_string_equal(str(ev, "payload.summary"), "s");
    json_decref(ev);
    mw_receiver_request_free(&req);
}

static void test_pagerduty_classify(void **state)
{
    struct fixture *f = *state;
    struct {
        int err;
        long status;
        enum mw_receiver_verdict want;
    } cases[] = {
        {0, 202, MW_RECEIVER_DELIVERED},    {0, 400, MW_RECEIVER_REJECTED},
        {0, 401, MW_RECEIVER_REJECTED},     {0, 404, MW_RECEIVER_REJECTED},
        {0, 429, MW_RECEIVER_RETRY},        {0, 500, MW_RECEIVER_RETRY},
        {0, 503, MW_RECEIVER_RETRY},        {MW_ETRANSPORT, 0, MW_RECEIVER_RETRY},
        {MW_ECLOSED, 0, MW_RECEIVER_RETRY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mw_http_client_response resp = {
            .err = cases[i].err, .status = cases[i].status, .body = "", .retry_after_ms = -1};
        assert_int_equal(f->pd->ops->classify(f->pd->ctx, &resp), cases[i].want);
        assert_int_equal(f->wh->ops->classify(f->wh->ctx, &resp), cases[i].want);
    }
}

static void test_pagerduty_key_file_errors(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct mw_receiver *r = NULL;
    struct mw_receiver_config missing = {.name = "x",
                                         .type = MW_RECEIVER_PAGERDUTY,
                                         .url = "",
                                         .routing_key_file = "/nonexistent/routing_key"};
    assert_int_equal(mw_receiver_create(&missing, &r, err, sizeof err), MW_EIO);
    assert_null(r);
    assert_non_null(strstr(err, "/nonexistent/routing_key"));
    char empty[160];
    snprintf(empty, sizeof empty, "%s/empty", f->dir);
    write_file(empty, "\n", 1);
    struct mw_receiver_config blank = missing;
    blank.routing_key_file = empty;
    assert_int_equal(mw_receiver_create(&blank, &r, err, sizeof err), MW_ECONFIG);
    assert_non_null(strstr(err, "empty"));
    unlink(empty);
    /* The default base URL is PagerDuty's. */
    struct mw_receiver_config dflt = missing;
    dflt.routing_key_file = f->key_path;
    assert_int_equal(mw_receiver_create(&dflt, &r, err, sizeof err), 0);
    struct note x;
    make_note(&x, "g", "s", MW_NOTIFY_FIRING);
    struct mw_receiver_request req;
    json_t *ev = encode(r, &x.n, &req);
    assert_string_equal(req.url, "https://events.pagerduty.com/v2/enqueue");
    json_decref(ev);
    mw_receiver_request_free(&req);
    mw_receiver_destroy(r);
}

/* ---- webhook ----------------------------------------------------------------------------------
 */

/* Prometheus's labelSetToFingerprint, written out from its definition. */
static uint64_t fingerprint(const struct mw_notify_label *labels, size_t n)
{
    const struct mw_notify_label *sorted[16];
    for (size_t i = 0; i < n; i++)
        sorted[i] = &labels[i];
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(sorted[j - 1]->name, sorted[j]->name) > 0; j--) {
            const struct mw_notify_label *t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = sorted[i]->name; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
        for (const char *p = sorted[i]->value; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

static void test_webhook_v4_shape(void **state)
{
    struct fixture *f = *state;
    struct note x;
    make_note(&x, "route-1/{model=\"churn\"}", "summary text", MW_NOTIFY_FIRING);
    x.n.receiver = "hook";
    x.n.n_alerts = 3;
    x.alerts[2].status = MW_NOTIFY_RESOLVED;
    x.alerts[2].ends_at_ms = 1767229200000;
    x.n.truncated_alerts = 1;
    struct mw_notify_label common_ann[] = {{"runbook_url", "https://runbooks.example/x"}};
    x.n.common_annotations = (struct mw_notify_labels){common_ann, 1};
    struct mw_receiver_request req;
    json_t *m = encode(f->wh, &x.n, &req);
    assert_string_equal(req.url, "http://127.0.0.1:9/hook");
    assert_string_equal(str(m, "version"), "4");
    assert_string_equal(str(m, "groupKey"), "route-1/{model=\"churn\"}");
    assert_string_equal(str(m, "status"), "firing");
    assert_string_equal(str(m, "receiver"), "hook");
    assert_string_equal(str(m, "groupLabels.model"), "churn");
    assert_string_equal(str(m, "commonLabels.namespace"), "ml-prod");
    assert_string_equal(str(m, "commonAnnotations.runbook_url"), "https://runbooks.example/x");
    assert_string_equal(str(m, "externalURL"), "http://mw.example");
    /* max_alerts = 2: one more left out here, one left out by the router. */
    json_t *alerts = json_object_get(m, "alerts");
    assert_int_equal(json_array_size(alerts), 2);
    assert_int_equal(json_integer_value(json_object_get(m, "truncatedAlerts")), 2);
    assert_string_equal(str(m, "alerts.0.status"), "firing");
    assert_string_equal(str(m, "alerts.0.labels.alertname"), "LatencyP99High");
    assert_string_equal(str(m, "alerts.0.annotations.summary"), "summary text");
    assert_string_equal(str(m, "alerts.0.startsAt"), "2026-01-01T00:00:00.000Z");
    assert_string_equal(str(m, "alerts.0.endsAt"), "0001-01-01T00:00:00Z");
    assert_string_equal(str(m, "alerts.0.generatorURL"), x.alerts[0].generator_url);
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)fingerprint(LATENCY_LABELS, 6));
    assert_string_equal(str(m, "alerts.0.fingerprint"), want);
    snprintf(want, sizeof want, "%016llx", (unsigned long long)fingerprint(ERRORS_LABELS, 6));
    assert_string_equal(str(m, "alerts.1.fingerprint"), want);
    /* Every key Alertmanager sends, and no other top-level key. */
    const char *keys[] = {"version",     "groupKey",    "truncatedAlerts", "status",
                          "receiver",    "groupLabels", "commonLabels",    "commonAnnotations",
                          "externalURL", "alerts"};
    assert_int_equal(json_object_size(m), sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(json_object_get(m, keys[i]));
    json_decref(m);
    mw_receiver_request_free(&req);

    /* Resolved: endsAt set. */
    make_note(&x, "g", "s", MW_NOTIFY_RESOLVED);
    m = encode(f->wh, &x.n, &req);
    assert_string_equal(str(m, "status"), "resolved");
    assert_string_equal(str(m, "alerts.0.endsAt"), "2026-01-01T01:00:00.000Z");
    json_decref(m);
    mw_receiver_request_free(&req);
}

static void test_webhook_hmac_matches_openssl(void **state)
{
    struct fixture *f = *state;
    struct note x;
    make_note(&x, "g", "sign me", MW_NOTIFY_FIRING);
    struct mw_receiver_request req;
    json_t *m = encode(f->wh, &x.n, &req);
    json_decref(m);
    const char *sig = NULL;
    for (size_t i = 0; i < req.n_headers; i++) {
        if (strncmp(req.headers[i], "X-Modelwatch-Signature: ", 24) == 0)
            sig = req.headers[i] + 24;
    }
    assert_non_null(sig);
    /* Independently: EVP_MAC over the body, keyed with the file's exact bytes. */
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    assert_true(EVP_MAC_init(ctx, HMAC_KEY, sizeof HMAC_KEY - 1, params));
    assert_true(EVP_MAC_update(ctx, (const unsigned char *)req.body, req.body_len));
    unsigned char md[32];
    size_t md_len = 0;
    assert_true(EVP_MAC_final(ctx, md, &md_len, sizeof md));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    char want[80] = "sha256=";
    for (size_t i = 0; i < md_len; i++)
        snprintf(want + 7 + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(sig, want);
    mw_receiver_request_free(&req);

    /* Without a key file, no signature header. */
    struct mw_receiver *plain = NULL;
    char err[128];
    struct mw_receiver_config cfg = {
        .name = "plain", .type = MW_RECEIVER_WEBHOOK, .url = "http://127.0.0.1:9/p"};
    assert_int_equal(mw_receiver_create(&cfg, &plain, err, sizeof err), 0);
    m = encode(plain, &x.n, &req);
    json_decref(m);
    assert_int_equal(req.n_headers, 1);
    mw_receiver_request_free(&req);
    mw_receiver_destroy(plain);
}

/* ---- backoff ------------------------------------------------------------------------------------
 */

static void test_backoff_bounds(void **state)
{
    (void)state;
    uint64_t rng = 12345;
    for (int attempt = 1; attempt <= 12; attempt++) {
        uint64_t cap = 100;
        for (int i = 1; i < attempt; i++)
            cap = cap * 2 > 5000 ? 5000 : cap * 2;
        uint64_t lo = UINT64_MAX, hi = 0;
        double sum = 0;
        enum { N = 20000 };
        for (int i = 0; i < N; i++) {
            uint64_t w = mw_delivery_backoff_ms(100, 5000, attempt, -1, 60000, &rng);
            assert_true(w <= cap);
            lo = w < lo ? w : lo;
            hi = w > hi ? w : hi;
            sum += (double)w;
        }
        /* Full jitter: uniform over [0, cap]. */
        assert_true(lo <= cap / 50);
        assert_true(hi >= cap - cap / 50);
        double mean = sum / N;
        assert_true(mean > cap * 0.45 && mean < cap * 0.55);
    }
    /* Retry-After is a floor, itself bounded by retry_after_max. */
    for (int i = 0; i < 1000; i++) {
        uint64_t w = mw_delivery_backoff_ms(100, 5000, 1, 3000, 60000, &rng);
        assert_in_range(w, 3000, 3000);
        w = mw_delivery_backoff_ms(100, 5000, 8, 3000, 60000, &rng);
        assert_in_range(w, 3000, 5000);
        w = mw_delivery_backoff_ms(100, 5000, 1, 600000, 20000, &rng);
        assert_int_equal(w, 20000);
        w = mw_delivery_backoff_ms(100, 5000, 1, 0, 20000, &rng);
        assert_in_range(w, 0, 100);
    }
    /* No overflow however many attempts. */
    assert_true(mw_delivery_backoff_ms(1000, 60000, 1000, -1, 0, &rng) <= 60000);
}

/* ---- configuration
 * ------------------------------------------------------------------------------- */

struct test_config {
    struct mw_cfg_list receivers;
};

static const struct mw_cfg_field test_table[] = {
    MW_RECEIVERS_CFG_FIELD(struct test_config, receivers),
    MW_CFG_END,
};

static void test_config_section(void **state)
{
    (void)state;
    struct test_config cfg;
    struct mw_cfg_error err;
    const char *text = "receivers:\n"
                       "  - name: oncall\n"
                       "    type: pagerduty\n"
                       "    routing_key_file: /run/secrets/pd\n"
                       "    retry:\n"
                       "      initial: 250ms\n"
                       "      max_attempts: 5\n"
                       "  - name: chat\n"
                       "    type: webhook\n"
                       "    url: https://hooks.example/alerts\n"
                       "    hmac_key_file: /run/secrets/hook\n"
                       "    max_in_flight: 2\n";
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(mw_config_load_string(test_table, &cfg, text, "agg.yaml", &err), 0);
    assert_int_equal(cfg.receivers.n, 2);
    const struct mw_receiver_config *r = cfg.receivers.items;
    assert_string_equal(r[0].name, "oncall");
    assert_int_equal(r[0].type, MW_RECEIVER_PAGERDUTY);
    assert_int_equal(r[0].retry.initial_ms, 250);
    assert_int_equal(r[0].retry.max_attempts, 5);
    assert_int_equal(r[0].retry.max_ms, 60000);
    assert_int_equal(r[0].timeout_ms, 10000);
    assert_int_equal(r[0].queue_max, 1024);
    assert_int_equal(r[0].queue_max_bytes, 64 * 1024 * 1024);
    assert_int_equal(r[1].type, MW_RECEIVER_WEBHOOK);
    assert_int_equal(r[1].max_in_flight, 2);
    assert_string_equal(r[1].signature_header, "X-Modelwatch-Signature");
    char msg[256];
    assert_int_equal(mw_receivers_config_check(&cfg.receivers, msg, sizeof msg), 0);
    mw_config_free(test_table, &cfg);

    const struct {
        const char *yaml;
        const char *want;
    } bad[] = {
        {"receivers:\n  - name: a\n    type: email\n", "agg.yaml:3"},
        {"receivers:\n  - name: a\n    type: webhook\n    url: ftp://x\n", "http"},
        {"receivers:\n  - name: a\n    type: webhook\n    url: http://x\n    colour: red\n",
         "colour"},
        {"receivers:\n  - type: webhook\n    url: http://x\n", "name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&cfg, 0, sizeof cfg);
        assert_int_not_equal(mw_config_load_string(test_table, &cfg, bad[i].yaml, "agg.yaml", &err),
                             0);
        assert_non_null(strstr(err.message, bad[i].want));
        mw_config_free(test_table, &cfg);
    }

    const struct {
        const char *yaml;
        const char *want;
    } unchecked[] = {
        {"receivers:\n  - name: a\n    type: pagerduty\n", "receivers[0].routing_key_file"},
        {"receivers:\n  - name: a\n    type: webhook\n", "receivers[0].url"},
        {"receivers:\n  - name: a\n    type: webhook\n    url: http://x\n"
         "  - name: a\n    type: webhook\n    url: http://y\n",
         "receivers[1].name"},
    };
    for (size_t i = 0; i < sizeof unchecked / sizeof unchecked[0]; i++) {
        memset(&cfg, 0, sizeof cfg);
        assert_int_equal(
            mw_config_load_string(test_table, &cfg, unchecked[i].yaml, "agg.yaml", &err), 0);
        assert_int_equal(mw_receivers_config_check(&cfg.receivers, msg, sizeof msg), MW_ECONFIG);
        assert_non_null(strstr(msg, unchecked[i].want));
        mw_config_free(test_table, &cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pagerduty_trigger_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagerduty_dedup_key_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagerduty_summary_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagerduty_512k_drops_custom_details, setup, teardown),
        cmocka_unit_test(test_severity_mapping),
        cmocka_unit_test_setup_teardown(test_pagerduty_severity_from_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagerduty_classify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pagerduty_key_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_v4_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_hmac_matches_openssl, setup, teardown),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_config_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
