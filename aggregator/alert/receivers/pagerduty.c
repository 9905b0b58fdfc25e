/*
 * pagerduty.c — PagerDuty Events API v2 (POST <base>/v2/enqueue).
 *
 * One alert group is one PagerDuty alert: its dedup_key is the hex SHA-256 of the group key, so
 * every trigger of a group lands on the same incident and its resolve closes it. A firing group
 * sends `trigger` with the page an engineer acts on (summary, severity, source, component =
 * model, group = namespace, class = signal, custom_details with every alert's labels, values and
 * annotations, links to the runbook and the window in the API); a resolved group sends `resolve`,
 * which needs nothing but the dedup_key.
 *
 * Limits PagerDuty enforces, kept here: summary at most 1024 characters (cut to 1023 and an
 * ellipsis, on a UTF-8 character boundary), and an event at most 512 KB, beyond which
 * custom_details is replaced by a note saying it was dropped.
 *
 * Answers: 202 delivered; 400 (a malformed event) and other 4xx rejected for good; 429, 5xx and
 * network errors retried. The routing key is read once from its file and never logged.
 */
#include "alert/receiver.h"
#include "alert/receiver_int.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "error.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_BASE_URL "https://events.pagerduty.com"
#define ENQUEUE_PATH "/v2/enqueue"
#define ROUTING_KEY_MAX 256
#define SUMMARY_MAX_CHARS 1024
#define SUMMARY_MAX_SOURCE_BYTES (16u * 1024u * 1024u) /* longer summary text is an error */
#define EVENT_MAX_BYTES (512u * 1024u)
#define ELLIPSIS "\xe2\x80\xa6" /* U+2026 */
#define DETAILS_DROPPED                                                                            \
    "custom_details were dropped because the event exceeded PagerDuty's 512 KB limit; the "        \
    "links and the modelwatch API have the full picture"

struct pagerduty {
    char *url;
    char routing_key[ROUTING_KEY_MAX];
};

static int pd_init(const struct mw_receiver_config *cfg, void **ctx, char *err, size_t errsize)
{
    *ctx = NULL;
    struct pagerduty *pd = mw_calloc(1, sizeof *pd);
    if (!pd)
        return MW_ENOMEM;
    const char *base = cfg->url && *cfg->url ? cfg->url : DEFAULT_BASE_URL;
    size_t base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    size_t size = base_len + sizeof ENQUEUE_PATH;
    if (!(pd->url = mw_malloc(size))) {
        mw_free(pd);
        return MW_ENOMEM;
    }
    snprintf(pd->url, size, "%.*s%s", (int)base_len, base, ENQUEUE_PATH);
    size_t key_len = 0;
    int rc =
        mw__receiver_read_secret(cfg->routing_key_file, "routing_key_file", true, pd->routing_key,
                                 sizeof pd->routing_key, &key_len, err, errsize);
    if (rc) {
        mw_free(pd->url);
        mw_free(pd);
        return rc;
    }
    *ctx = pd;
    return 0;
}

static void pd_destroy(void *ctx)
{
    struct pagerduty *pd = ctx;
    if (!pd)
        return;
    OPENSSL_cleanse(pd->routing_key, sizeof pd->routing_key);
    mw_free(pd->url);
    mw_free(pd);
}

/* A label of the group: the common labels first, then the first alert's. */
static const char *group_label(const struct mw_notify_group *n, const char *name)
{
    const char *v = mw_notify_labels_get(&n->common_labels, name);
    if (!v && n->n_alerts)
        v = mw_notify_labels_get(&n->alerts[0].labels, name);
    return v && *v ? v : NULL;
}

/* The first firing alert (the alert the page is about), else the first alert, else NULL. */
static const struct mw_notify_alert *lead_alert(const struct mw_notify_group *n)
{
    for (size_t i = 0; i < n->n_alerts; i++) {
        if (n->alerts[i].status == MW_NOTIFY_FIRING)
            return &n->alerts[i];
    }
    return n->n_alerts ? &n->alerts[0] : NULL;
}

/* An annotation of the group: the common annotations first, then the lead alert's. */
static const char *group_annotation(const struct mw_notify_group *n, const char *name)
{
    const char *v = mw_notify_labels_get(&n->common_annotations, name);
    const struct mw_notify_alert *lead = lead_alert(n);
    if ((!v || !*v) && lead)
        v = mw_notify_labels_get(&lead->annotations, name);
    return v && *v ? v : NULL;
}

/* The most severe severity among the firing alerts (a group holding one critical alert pages
 * as critical); the group's label when none fires. */
static enum mw_notify_severity group_severity(const struct mw_notify_group *n)
{
    enum mw_notify_severity best = MW_NOTIFY_INFO;
    bool any = false;
    for (size_t i = 0; i < n->n_alerts; i++) {
        if (n->alerts[i].status != MW_NOTIFY_FIRING)
            continue;
        const char *text = mw_notify_labels_get(&n->alerts[i].labels, "severity");
        enum mw_notify_severity s =
            mw_notify_severity_parse(text ? text : group_label(n, "severity"));
        if (!any || s < best)
            best = s;
        any = true;
    }
    return any ? best : mw_notify_severity_parse(group_label(n, "severity"));
}

static size_t count_firing(const struct mw_notify_group *n)
{
    size_t k = 0;
    for (size_t i = 0; i < n->n_alerts; i++)
        k += n->alerts[i].status == MW_NOTIFY_FIRING;
    return k;
}

/* The summary line: the lead alert's summary annotation (or the alert name), "[FIRING:n] " in
 * front when the group holds several, made valid UTF-8 and cut to SUMMARY_MAX_CHARS characters
 * with an ellipsis. */
static json_t *summary_json(const struct mw_notify_group *n)
{
    const char *text = group_annotation(n, "summary");
    if (!text)
        text = group_label(n, "alertname");
    if (!text)
        text = "modelwatch alert";
    size_t n_firing = count_firing(n) + (n->status == MW_NOTIFY_FIRING ? n->truncated_alerts : 0);
    json_t *clean = mw__receiver_json_string(text);
    if (!clean)
        return NULL;
    struct mw_buf b;
    mw_buf_init(&b, SUMMARY_MAX_SOURCE_BYTES);
    int rc = 0;
    if (n_firing > 1)
        rc = mw_buf_printf(&b, "[FIRING:%zu] ", n_firing);
    if (!rc)
        rc = mw_buf_append_str(&b, json_string_value(clean));
    json_decref(clean);
    if (rc) {
        mw_buf_free(&b);
        return NULL;
    }
    /* Count characters (bytes that do not continue a sequence: the text is valid UTF-8 now) and
     * find where the 1024th would start if it must be cut. */
    size_t chars = 0, cut_at = 0;
    for (size_t i = 0; i < b.len; i++) {
        if (((unsigned char)b.data[i] & 0xc0) != 0x80) {
            if (chars == SUMMARY_MAX_CHARS - 1)
                cut_at = i;
            chars++;
        }
    }
    if (chars > SUMMARY_MAX_CHARS) {
        b.len = cut_at;
        rc = mw_buf_append_str(&b, ELLIPSIS);
    }
    json_t *s = rc ? NULL : json_stringn(b.data, b.len);
    mw_buf_free(&b);
    return s;
}

static json_t *alert_details(const struct mw_notify_alert *a)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    int rc = 0;
    rc |= json_object_set_new(obj, "status",
                              json_string(a->status == MW_NOTIFY_FIRING ? "firing" : "resolved"));
    rc |= json_object_set_new(obj, "labels", mw__receiver_json_labels(&a->labels));
    rc |= json_object_set_new(obj, "annotations", mw__receiver_json_labels(&a->annotations));
    rc |= json_object_set_new(obj, "values", mw__receiver_json_values(a->values, a->n_values));
    rc |= json_object_set_new(obj, "startsAt", mw__receiver_json_time(a->starts_at_ms));
    if (a->ends_at_ms)
        rc |= json_object_set_new(obj, "endsAt", mw__receiver_json_time(a->ends_at_ms));
    if (a->generator_url)
        rc |= json_object_set_new(obj, "generatorURL", mw__receiver_json_string(a->generator_url));
    if (rc) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* What an engineer reads below the summary: counts, the group's labels and every alert. */
static json_t *custom_details(const struct mw_notify_group *n)
{
    json_t *obj = json_object();
    json_t *alerts = json_array();
    if (!obj || !alerts) {
        json_decref(obj);
        json_decref(alerts);
        return NULL;
    }
    size_t n_firing = count_firing(n);
    int rc = 0;
    rc |= json_object_set_new(obj, "firing", json_integer((json_int_t)n_firing));
    rc |= json_object_set_new(obj, "resolved", json_integer((json_int_t)(n->n_alerts - n_firing)));
    rc |=
        json_object_set_new(obj, "truncated_alerts", json_integer((json_int_t)n->truncated_alerts));
    rc |= json_object_set_new(obj, "group_labels", mw__receiver_json_labels(&n->group_labels));
    rc |= json_object_set_new(obj, "common_labels", mw__receiver_json_labels(&n->common_labels));
    rc |= json_object_set_new(obj, "alerts", alerts);
    for (size_t i = 0; !rc && i < n->n_alerts; i++)
        rc |= json_array_append_new(alerts, alert_details(&n->alerts[i]));
    if (rc) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int add_link(json_t *links, const char *href, const char *text)
{
    if (!href)
        return 0;
    json_t *link = json_object();
    if (!link)
        return -1;
    int rc = json_object_set_new(link, "href", mw__receiver_json_string(href));
    rc |= json_object_set_new(link, "text", json_string(text));
    rc |= json_array_append_new(links, link);
    return rc;
}

static json_t *links_json(const struct mw_notify_group *n)
{
    json_t *links = json_array();
    if (!links)
        return NULL;
    const struct mw_notify_alert *lead = lead_alert(n);
    int rc = add_link(links, group_annotation(n, "runbook_url"), "Runbook");
    rc |= add_link(links,
                   lead && lead->generator_url && *lead->generator_url ? lead->generator_url : NULL,
                   "Window in the modelwatch API");
    rc |= add_link(links, group_annotation(n, "dashboard_url"), "Dashboard");
    if (rc) {
        json_decref(links);
        return NULL;
    }
    return links;
}

/* Earliest start among the firing alerts: when the problem was first seen. */
static int64_t group_start_ms(const struct mw_notify_group *n)
{
    int64_t start = 0;
    for (size_t i = 0; i < n->n_alerts; i++) {
        const struct mw_notify_alert *a = &n->alerts[i];
        if (a->status == MW_NOTIFY_FIRING && a->starts_at_ms && (!start || a->starts_at_ms < start))
            start = a->starts_at_ms;
    }
    return start ? start : mw_clock_wall_ms();
}

static int pd_encode(void *ctx, const struct mw_notify_group *n, struct mw_receiver_request *out)
{
    struct pagerduty *pd = ctx;
    if (!n || !n->group_key)
        return MW_EINVAL;
    char dedup_key[65];
    int rc = mw__receiver_sha256_hex(n->group_key, strlen(n->group_key), dedup_key);
    if (rc)
        return rc;
    bool trigger = n->status == MW_NOTIFY_FIRING;
    json_t *event = json_object();
    json_t *payload = NULL;
    if (!event)
        return MW_ENOMEM;
    rc = json_object_set_new(event, "routing_key", json_string(pd->routing_key));
    rc |= json_object_set_new(event, "event_action", json_string(trigger ? "trigger" : "resolve"));
    rc |= json_object_set_new(event, "dedup_key", json_string(dedup_key));
    if (trigger) {
        payload = json_object();
        const char *model = group_label(n, "model");
        const char *source = group_label(n, "source");
        rc |= !payload;
        rc |= json_object_set_new(event, "payload", json_incref(payload));
        rc |= json_object_set_new(payload, "summary", summary_json(n));
        rc |= json_object_set_new(payload, "source",
                                  mw__receiver_json_string(source  ? source
                                                           : model ? model
                                                                   : "modelwatch"));
        rc |= json_object_set_new(payload, "severity",
                                  json_string(mw_notify_severity_name(group_severity(n))));
        rc |= json_object_set_new(payload, "timestamp", mw__receiver_json_time(group_start_ms(n)));
        if (model)
            rc |= json_object_set_new(payload, "component", mw__receiver_json_string(model));
        if (group_label(n, "namespace"))
            rc |= json_object_set_new(payload, "group",
                                      mw__receiver_json_string(group_label(n, "namespace")));
        if (group_label(n, "signal"))
            rc |= json_object_set_new(payload, "class",
                                      mw__receiver_json_string(group_label(n, "signal")));
        rc |= json_object_set_new(payload, "custom_details", custom_details(n));
        rc |= json_object_set_new(event, "links", links_json(n));
        rc |= json_object_set_new(event, "client", json_string("modelwatch"));
        if (n->external_url && *n->external_url)
            rc |=
                json_object_set_new(event, "client_url", mw__receiver_json_string(n->external_url));
    }
    if (rc) {
        rc = MW_ENOMEM;
        goto out;
    }
    if ((rc = mw__receiver_json_body(event, out)))
        goto out;
    if (out->body_len > EVENT_MAX_BYTES && payload) {
        json_t *note = json_pack("{s:s}", "error", DETAILS_DROPPED);
        if (!note || json_object_set_new(payload, "custom_details", note) != 0) {
            rc = MW_ENOMEM;
            goto out;
        }
        if ((rc = mw__receiver_json_body(event, out)))
            goto out;
    }
    if (out->body_len > EVENT_MAX_BYTES) {
        rc = MW_ETOOBIG;
        goto out;
    }
    if (!(out->url = mw_strdup(pd->url))) {
        rc = MW_ENOMEM;
        goto out;
    }
    rc = mw__receiver_add_header(out, "Content-Type", "application/json");

out:
    /* The body holds the routing key: wipe it before freeing on any failure. */
    if (rc && out->body)
        OPENSSL_cleanse(out->body, out->body_len);
    if (rc)
        mw_receiver_request_free(out);
    json_decref(payload);
    json_decref(event);
    return rc;
}

static enum mw_receiver_verdict pd_classify(void *ctx, const struct mw_http_client_response *resp)
{
    (void)ctx;
    return mw__receiver_http_verdict(resp);
}

const struct mw_receiver_ops mw_receiver_pagerduty_ops = {
    .type = "pagerduty",
    .init = pd_init,
    .encode = pd_encode,
    .classify = pd_classify,
    .destroy = pd_destroy,
};
