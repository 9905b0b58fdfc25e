/*
 * receiver.h — where notifications go: the one small interface every receiver implements, the
 * notification it is handed, and the `receivers:` section of the aggregator's configuration.
 *
 * The router hands delivery a notification of one alert group (struct mw_notify_group, all of it
 * borrowed); delivery asks the receiver named in it to encode it once into an HTTP request
 * (URL, headers, body), sends that request as often as the receiver's answers say it should
 * (classify), and reports the result. A receiver is one file under receivers/ with a table of
 * callbacks, as Fluent Bit's output plugins are:
 *
 *   init      read its settings and secrets (key files) once
 *   encode    notification -> request; pure, no I/O, so payloads are testable without a network
 *   classify  an HTTP answer (or a transport error) -> delivered, retry, or rejected for good
 *   destroy   free what init made
 *
 * Adding a receiver is adding a file and a line in receiver.c's table.
 */
#ifndef MW_ALERT_RECEIVER_H
#define MW_ALERT_RECEIVER_H

#include "config.h"
#include "http_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- a notification of one alert group --------------------------------------------------- */

enum mw_notify_status {
    MW_NOTIFY_FIRING = 0,
    MW_NOTIFY_RESOLVED = 1,
};

/* PagerDuty's four severities, most severe first. */
enum mw_notify_severity {
    MW_NOTIFY_CRITICAL = 0,
    MW_NOTIFY_ERROR = 1,
    MW_NOTIFY_WARNING = 2,
    MW_NOTIFY_INFO = 3,
};

struct mw_notify_label {
    const char *name;
    const char *value;
};

struct mw_notify_labels {
    const struct mw_notify_label *items;
    size_t n;
};

/* A number behind an alert: "value", "threshold", "samples", "burn_rate_1h", ... */
struct mw_notify_value {
    const char *name;
    double value;
};

struct mw_notify_alert {
    enum mw_notify_status status;
    /* alertname, model, version, namespace, signal, severity, feature, ... */
    struct mw_notify_labels labels;
    /* summary, description, runbook_url, dashboard_url, ... (templated already) */
    struct mw_notify_labels annotations;
    const struct mw_notify_value *values;
    size_t n_values;
    int64_t starts_at_ms;      /* Unix ms; event time of the window that started it */
    int64_t ends_at_ms;        /* Unix ms; 0 while firing */
    const char *generator_url; /* API URL of the window behind the alert; may be NULL */
};

/*
 * Everything a receiver needs to say about one group, as Alertmanager's webhook carries it. All
 * pointers are borrowed: encode() copies what it keeps. `status` is firing while any alert of
 * the group fires.
 */
struct mw_notify_group {
    const char *group_key; /* stable identity of the group (route + group_by values) */
    const char *receiver;  /* name of a configured receiver */
    enum mw_notify_status status;
    struct mw_notify_labels group_labels;
    struct mw_notify_labels common_labels;
    struct mw_notify_labels common_annotations;
    const struct mw_notify_alert *alerts;
    size_t n_alerts;
    size_t truncated_alerts; /* alerts the router left out already */
    const char *external_url;
};

/* Value of label `name`, or NULL. */
const char *mw_notify_labels_get(const struct mw_notify_labels *labels, const char *name);

/* "critical", "error", "warning" or "info" (also page/fatal, high/major, warn/ticket/minor,
 * low/none, any case) -> severity; anything else, or NULL, is MW_NOTIFY_ERROR. */
enum mw_notify_severity mw_notify_severity_parse(const char *text);
const char *mw_notify_severity_name(enum mw_notify_severity severity);

/* Prometheus's label-set fingerprint (64-bit FNV-1a over the labels sorted by name, each name
 * and value followed by 0xff), so a webhook consumer sees the same fingerprint Alertmanager
 * would give. Returns 0 for an empty set or when memory runs out. */
uint64_t mw_notify_fingerprint(const struct mw_notify_labels *labels);

/* ---- what a receiver produces and decides --------------------------------------------------- */

#define MW_RECEIVER_MAX_HEADERS 8

/* One HTTP request, owned: free with mw_receiver_request_free(). */
struct mw_receiver_request {
    char *url;
    char *headers[MW_RECEIVER_MAX_HEADERS + 1]; /* "Name: value", NULL-terminated */
    size_t n_headers;
    char *body;
    size_t body_len;
};

void mw_receiver_request_free(struct mw_receiver_request *req); /* accepts NULL */

enum mw_receiver_verdict {
    MW_RECEIVER_DELIVERED, /* the receiver took it */
    MW_RECEIVER_RETRY,     /* try again later (429, 5xx, network, timeout) */
    MW_RECEIVER_REJECTED,  /* the receiver refused it; sending it again would not help */
};

const char *mw_receiver_verdict_name(enum mw_receiver_verdict verdict);

/* ---- configuration: one element of `receivers:` -----------------------------------------------
 */

enum mw_receiver_type {
    MW_RECEIVER_PAGERDUTY = 0,
    MW_RECEIVER_WEBHOOK = 1,
};

struct mw_receiver_config {
    char *name;
    int type;               /* enum mw_receiver_type */
    char *url;              /* pagerduty: base URL ("" = PagerDuty's); webhook: the URL */
    char *routing_key_file; /* pagerduty: file holding the integration's routing key */
    char *hmac_key_file;    /* webhook: file whose bytes key the HMAC-SHA256 signature */
    char *signature_header; /* webhook: header that carries "sha256=<hex>" */
    int64_t max_alerts;     /* webhook: most alerts per message, the rest counted (0 = all) */
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    int64_t queue_max;        /* notifications waiting or in flight; more are dropped and counted */
    uint64_t queue_max_bytes; /* and their encoded bodies, in bytes */
    int64_t max_in_flight;    /* concurrent requests to this receiver */
    struct {
        int64_t initial_ms; /* backoff cap of the first retry; doubles each attempt */
        int64_t max_ms;     /* largest backoff cap */
        int64_t max_attempts;
        int64_t max_age_ms;         /* give up on a notification this long after it came */
        int64_t retry_after_max_ms; /* longest Retry-After honoured */
    } retry;
};

/* The table for one element of `receivers:` (a MW_CFG_LIST of struct mw_receiver_config). */
extern const struct mw_cfg_field mw_receiver_config_table[];

/* The field to put in a binary's table:
 *   MW_RECEIVERS_CFG_FIELD(struct mw_aggregator_config, receivers) */
#define MW_RECEIVERS_CFG_FIELD(config_type, member)                                                \
    {                                                                                              \
        .key = "receivers", .type = MW_CFG_LIST, .offset = offsetof(config_type, member),          \
        .sub = mw_receiver_config_table, .elem_size = sizeof(struct mw_receiver_config),           \
        .max = 64,                                                                                 \
        .desc = "Where alert notifications go: PagerDuty Events API v2 or an Alertmanager-style "  \
                "webhook, each with its own queue and retries"                                     \
    }

/* What the table cannot say: unique names, a routing_key_file for pagerduty, a url for webhook.
 * Returns 0 or MW_ECONFIG with "receivers[i].key: why" in err. */
int mw_receivers_config_check(const struct mw_cfg_list *receivers, char *err, size_t errsize);

/* ---- the interface ------------------------------------------------------------------------------
 */

struct mw_receiver_ops {
    const char *type; /* "pagerduty", "webhook": the config's `type` */
    /* Read `cfg` (borrowed; it may be freed after init returns) and any key files. Returns 0,
     * MW_ECONFIG / MW_EIO with a message in err (naming files, never secrets), or MW_ENOMEM. */
    int (*init)(const struct mw_receiver_config *cfg, void **ctx, char *err, size_t errsize);
    /* Encode `n` (borrowed) into `out` (zeroed by the caller, owned by it after). Returns 0,
     * MW_ETOOBIG (cannot be made small enough), MW_EINVAL or MW_ENOMEM. */
    int (*encode)(void *ctx, const struct mw_notify_group *n, struct mw_receiver_request *out);
    enum mw_receiver_verdict (*classify)(void *ctx, const struct mw_http_client_response *resp);
    void (*destroy)(void *ctx); /* accepts NULL */
};

extern const struct mw_receiver_ops mw_receiver_pagerduty_ops;
extern const struct mw_receiver_ops mw_receiver_webhook_ops;

/* The ops for a config's type. */
const struct mw_receiver_ops *mw_receiver_ops_for(enum mw_receiver_type type);

/* A configured receiver: its ops and their context. */
struct mw_receiver {
    const struct mw_receiver_ops *ops;
    void *ctx;
    char *name;
};

/* Create the receiver `cfg` describes. Returns 0 or what init returns, with err set. The caller
 * owns *out and frees it with mw_receiver_destroy(). */
int mw_receiver_create(const struct mw_receiver_config *cfg, struct mw_receiver **out, char *err,
                       size_t errsize);
void mw_receiver_destroy(struct mw_receiver *r); /* accepts NULL */

#endif
