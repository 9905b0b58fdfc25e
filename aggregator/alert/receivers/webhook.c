/*
 * webhook.c — a POST in Alertmanager's webhook JSON (version "4"), so whatever already consumes
 * Alertmanager's webhooks (chat bridges, ticketing, custom automation) works unchanged:
 *
 *   {"version": "4", "groupKey": ..., "truncatedAlerts": 0, "status": "firing",
 *    "receiver": ..., "groupLabels": {...}, "commonLabels": {...}, "commonAnnotations": {...},
 *    "externalURL": ..., "alerts": [{"status", "labels", "annotations", "startsAt", "endsAt",
 *    "generatorURL", "fingerprint"}, ...]}
 *
 * Each alert also carries "values" (the numbers behind it) when it has any: a field Alertmanager
 * does not send, which JSON consumers that do not know it ignore.
 *
 * With hmac_key_file set, the header `signature_header: sha256=<hex>` carries HMAC-SHA256 of the
 * exact body bytes under the file's exact bytes, so the consumer can check who sent it.
 *
 * Answers: 2xx delivered; 429 and 5xx and network errors retried; any other status rejected.
 */
#include "alert/receiver.h"
#include "alert/receiver_int.h"

#include "alloc.h"
#include "error.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define HMAC_KEY_MAX 4096

struct webhook {
    char *url;
    char *signature_header;
    size_t max_alerts; /* 0 = all */
    bool sign;
    unsigned char key[HMAC_KEY_MAX];
    size_t key_len;
};

static void wh_destroy(void *ctx)
{
    struct webhook *wh = ctx;
    if (!wh)
        return;
    OPENSSL_cleanse(wh->key, sizeof wh->key);
    mw_free(wh->url);
    mw_free(wh->signature_header);
    mw_free(wh);
}

static int wh_init(const struct mw_receiver_config *cfg, void **ctx, char *err, size_t errsize)
{
    *ctx = NULL;
    struct webhook *wh = mw_calloc(1, sizeof *wh);
    if (!wh)
        return MW_ENOMEM;
    wh->url = mw_strdup(cfg->url);
    wh->signature_header =
        mw_strdup(cfg->signature_header && *cfg->signature_header ? cfg->signature_header
                                                                  : "X-Modelwatch-Signature");
    wh->max_alerts = cfg->max_alerts > 0 ? (size_t)cfg->max_alerts : 0;
    if (!wh->url || !wh->signature_header) {
        wh_destroy(wh);
        return MW_ENOMEM;
    }
    if (!*wh->url) {
        snprintf(err, errsize, "receiver %s: url: required for type webhook", cfg->name);
        wh_destroy(wh);
        return MW_ECONFIG;
    }
    if (cfg->hmac_key_file && *cfg->hmac_key_file) {
        int rc =
            mw__receiver_read_secret(cfg->hmac_key_file, "hmac_key_file", false, (char *)wh->key,
                                     sizeof wh->key, &wh->key_len, err, errsize);
        if (rc) {
            wh_destroy(wh);
            return rc;
        }
        wh->sign = true;
    }
    *ctx = wh;
    return 0;
}

static const char *status_name(enum mw_notify_status status)
{
    return status == MW_NOTIFY_FIRING ? "firing" : "resolved";
}

static json_t *alert_json(const struct mw_notify_alert *a)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    char fingerprint[17];
    snprintf(fingerprint, sizeof fingerprint, "%016llx",
             (unsigned long long)mw_notify_fingerprint(&a->labels));
    int rc = json_object_set_new(obj, "status", json_string(status_name(a->status)));
    rc |= json_object_set_new(obj, "labels", mw__receiver_json_labels(&a->labels));
    rc |= json_object_set_new(obj, "annotations", mw__receiver_json_labels(&a->annotations));
    rc |= json_object_set_new(obj, "startsAt", mw__receiver_json_time(a->starts_at_ms));
    rc |= json_object_set_new(obj, "endsAt", mw__receiver_json_time(a->ends_at_ms));
    rc |= json_object_set_new(obj, "generatorURL", mw__receiver_json_string(a->generator_url));
    rc |= json_object_set_new(obj, "fingerprint", json_string(fingerprint));
    if (a->n_values)
        rc |= json_object_set_new(obj, "values", mw__receiver_json_values(a->values, a->n_values));
    if (rc) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static int wh_encode(void *ctx, const struct mw_notify_group *n, struct mw_receiver_request *out)
{
    struct webhook *wh = ctx;
    if (!n || !n->group_key)
        return MW_EINVAL;
    size_t n_sent = n->n_alerts;
    if (wh->max_alerts && n_sent > wh->max_alerts)
        n_sent = wh->max_alerts;
    size_t truncated = n->truncated_alerts + (n->n_alerts - n_sent);
    int rc = 0;
    json_t *msg = json_object();
    json_t *alerts = json_array();
    if (!msg || !alerts) {
        json_decref(alerts);
        rc = MW_ENOMEM;
        goto out;
    }
    rc |= json_object_set_new(msg, "version", json_string("4"));
    rc |= json_object_set_new(msg, "groupKey", mw__receiver_json_string(n->group_key));
    rc |= json_object_set_new(msg, "truncatedAlerts", json_integer((json_int_t)truncated));
    rc |= json_object_set_new(msg, "status", json_string(status_name(n->status)));
    rc |= json_object_set_new(msg, "receiver", mw__receiver_json_string(n->receiver));
    rc |= json_object_set_new(msg, "groupLabels", mw__receiver_json_labels(&n->group_labels));
    rc |= json_object_set_new(msg, "commonLabels", mw__receiver_json_labels(&n->common_labels));
    rc |= json_object_set_new(msg, "commonAnnotations",
                              mw__receiver_json_labels(&n->common_annotations));
    rc |= json_object_set_new(msg, "externalURL", mw__receiver_json_string(n->external_url));
    rc |= json_object_set_new(msg, "alerts", alerts);
    for (size_t i = 0; !rc && i < n_sent; i++)
        rc |= json_array_append_new(alerts, alert_json(&n->alerts[i]));
    if (rc) {
        rc = MW_ENOMEM;
        goto out;
    }
    if ((rc = mw__receiver_json_body(msg, out)))
        goto out;
    if (!(out->url = mw_strdup(wh->url))) {
        rc = MW_ENOMEM;
        goto out;
    }
    if ((rc = mw__receiver_add_header(out, "Content-Type", "application/json")))
        goto out;
    if (wh->sign) {
        char hex[65], value[72];
        if ((rc =
                 mw__receiver_hmac_sha256_hex(wh->key, wh->key_len, out->body, out->body_len, hex)))
            goto out;
        snprintf(value, sizeof value, "sha256=%s", hex);
        rc = mw__receiver_add_header(out, wh->signature_header, value);
    }

out:
    if (rc)
        mw_receiver_request_free(out);
    json_decref(msg);
    return rc;
}

static enum mw_receiver_verdict wh_classify(void *ctx, const struct mw_http_client_response *resp)
{
    (void)ctx;
    return mw__receiver_http_verdict(resp);
}

const struct mw_receiver_ops mw_receiver_webhook_ops = {
    .type = "webhook",
    .init = wh_init,
    .encode = wh_encode,
    .classify = wh_classify,
    .destroy = wh_destroy,
};
