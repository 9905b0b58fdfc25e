/* alert_store.c — JSON documents of the alerting state and alert_state.lua's commands
 * (alert_store.h). */
#include "alert/alert_store.h"

#include "alloc.h"
#include "buf.h"
#include "error.h"
#include "schema.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------------------------------- */

static json_t *number(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static int64_t get_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

static const char *get_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *labels_json(const struct mw_labels *l)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < l->n; i++)
        json_object_set_new(o, l->items[i].name, json_string(l->items[i].value));
    return o;
}

static int labels_from(const json_t *o, struct mw_labels *out)
{
    const char *name;
    json_t *v;
    if (o && !json_is_object(o))
        return MW_EPARSE;
    json_object_foreach((json_t *)o, name, v)
    {
        if (!json_is_string(v))
            return MW_EPARSE;
        int rc = mw_labels_set(out, name, json_string_value(v));
        if (rc)
            return rc == MW_ENOMEM ? rc : MW_EPARSE;
    }
    return 0;
}

static char *dump(json_t *doc)
{
    if (!doc)
        return NULL;
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(doc);
    if (!text)
        return NULL;
    char *out = mw_strdup(text);
    free(text);
    return out;
}

/* ---- instances ------------------------------------------------------------------------------- */

char *mw_alert_inst_encode(const struct mw_alert_inst *inst)
{
    const struct mw_rule_state *st = &inst->st;
    json_t *changes = json_array();
    for (int i = 0; changes && i < st->n_changes; i++)
        json_array_append_new(changes, json_integer(st->change_ms[i]));
    json_t *state = json_object();
    if (state) {
        json_object_set_new(state, "state", json_string(mw_alert_state_name(st->state)));
        json_object_set_new(state, "flapping", json_boolean(st->flapping));
        json_object_set_new(state, "stepped", json_boolean(st->stepped));
        json_object_set_new(state, "last_end_ms", json_integer(st->last_end_ms));
        json_object_set_new(state, "active_since_ms", json_integer(st->active_since_ms));
        json_object_set_new(state, "fired_at_ms", json_integer(st->fired_at_ms));
        json_object_set_new(state, "last_hold_end_ms", json_integer(st->last_hold_end_ms));
        json_object_set_new(state, "resolved_at_ms", json_integer(st->resolved_at_ms));
        json_object_set_new(state, "value", st->has_value ? number(st->value) : json_null());
        json_object_set_new(state, "samples", json_integer((json_int_t)st->samples));
        json_object_set_new(state, "changes", changes);
        changes = NULL;
    }
    json_decref(changes);
    json_t *values = json_object();
    for (size_t i = 0; values && i < inst->n_values; i++)
        json_object_set_new(values, inst->values[i].name, number(inst->values[i].value));
    json_t *doc = json_object();
    if (!doc || !state || !values) {
        json_decref(doc);
        json_decref(state);
        json_decref(values);
        return NULL;
    }
    json_object_set_new(doc, "rule", json_string(inst->rule_id));
    json_object_set_new(doc, "model", json_string(inst->model));
    json_object_set_new(doc, "version", json_string(inst->version));
    json_object_set_new(doc, "feature", inst->feature ? json_string(inst->feature) : json_null());
    json_object_set_new(doc, "st", state);
    json_object_set_new(doc, "labels", labels_json(&inst->labels));
    json_object_set_new(doc, "annotations", labels_json(&inst->annotations));
    json_object_set_new(doc, "values", values);
    if (inst->generator_url)
        json_object_set_new(doc, "generator_url", json_string(inst->generator_url));
    return dump(doc);
}

static int state_from(const json_t *o, struct mw_rule_state *st)
{
    const char *name = get_str(o, "state");
    mw_rule_state_init(st);
    if (!name)
        return MW_EPARSE;
    bool found = false;
    for (int s = MW_ALERT_INACTIVE; s <= MW_ALERT_RESOLVED; s++) {
        if (strcmp(mw_alert_state_name((enum mw_alert_state)s), name) == 0) {
            st->state = (enum mw_alert_state)s;
            found = true;
        }
    }
    if (!found)
        return MW_EPARSE;
    st->flapping = json_is_true(json_object_get(o, "flapping"));
    st->stepped = json_is_true(json_object_get(o, "stepped"));
    st->last_end_ms = get_int(o, "last_end_ms");
    st->active_since_ms = get_int(o, "active_since_ms");
    st->fired_at_ms = get_int(o, "fired_at_ms");
    st->last_hold_end_ms = get_int(o, "last_hold_end_ms");
    st->resolved_at_ms = get_int(o, "resolved_at_ms");
    const json_t *value = json_object_get(o, "value");
    st->has_value = json_is_number(value);
    st->value = st->has_value ? json_number_value(value) : NAN;
    st->samples = (uint64_t)get_int(o, "samples");
    const json_t *changes = json_object_get(o, "changes");
    size_t n = json_array_size(changes);
    if (n > MW_FLAP_MAX_CHANGES + 1)
        return MW_EPARSE;
    for (size_t i = 0; i < n; i++)
        st->change_ms[i] = json_integer_value(json_array_get(changes, i));
    st->n_changes = (int)n;
    return 0;
}

int mw_alert_inst_decode(const char *json, size_t len, struct mw_alert_inst **out)
{
    *out = NULL;
    json_t *doc = json_loadb(json, len, 0, NULL);
    if (!doc)
        return MW_EPARSE;
    int rc = MW_EPARSE;
    const char *rule = get_str(doc, "rule"), *model = get_str(doc, "model");
    const char *version = get_str(doc, "version"), *feature = get_str(doc, "feature");
    struct mw_alert_inst *inst = NULL;
    if (!rule || !model || !version)
        goto out;
    inst = mw_alert_inst_new(rule, model, version, feature);
    if (!inst) {
        rc = MW_ENOMEM;
        goto out;
    }
    if ((rc = state_from(json_object_get(doc, "st"), &inst->st)) != 0 ||
        (rc = labels_from(json_object_get(doc, "labels"), &inst->labels)) != 0 ||
        (rc = labels_from(json_object_get(doc, "annotations"), &inst->annotations)) != 0)
        goto out;
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(doc, "values"), name, v)
    {
        if (inst->n_values == MW_ALERT_MAX_VALUES)
            break;
        struct mw_alert_value *av = &inst->values[inst->n_values++];
        snprintf(av->name, sizeof av->name, "%s", name);
        av->value = json_is_number(v) ? json_number_value(v) : NAN;
    }
    const char *url = get_str(doc, "generator_url");
    if (url && !(inst->generator_url = mw_strdup(url))) {
        rc = MW_ENOMEM;
        goto out;
    }
    inst->fingerprint = inst->labels.n ? mw_labels_hash(&inst->labels) : 0;
    *out = inst;
    inst = NULL;
    rc = 0;
out:
    mw_alert_inst_free(inst);
    json_decref(doc);
    return rc;
}

/* ---- the notification log -------------------------------------------------------------------- */

static const char *status_name(enum mw_notify_status s)
{
    return s == MW_NOTIFY_FIRING ? "firing" : "resolved";
}

static enum mw_notify_status status_of(const char *s)
{
    return s && strcmp(s, "resolved") == 0 ? MW_NOTIFY_RESOLVED : MW_NOTIFY_FIRING;
}

void mw_nlog_alerts_free(struct mw_nlog_alert *alerts, size_t n)
{
    for (size_t i = 0; alerts && i < n; i++) {
        mw_labels_free(&alerts[i].labels);
        mw_labels_free(&alerts[i].annotations);
    }
    mw_free(alerts);
}

void mw_nlog_entry_free(struct mw_nlog_entry *e)
{
    if (!e)
        return;
    mw_free(e->group_key);
    mw_free(e->receiver);
    mw_nlog_alerts_free(e->delivered, e->n_delivered);
    mw_free(e);
}

char *mw_nlog_entry_encode(const struct mw_nlog_entry *e)
{
    json_t *last =
        json_pack("{s:s, s:I, s:s, s:i, s:I, s:I, s:I, s:I}", "status", status_name(e->last_status),
                  "at_ms", (json_int_t)e->last_at_ms, "result", e->last_result, "attempts",
                  e->last_attempts, "http_status", (json_int_t)e->last_http_status, "finished_ms",
                  (json_int_t)e->last_finished_ms, "firing", (json_int_t)e->last_n_firing,
                  "resolved", (json_int_t)e->last_n_resolved);
    json_t *doc = json_object();
    if (!last || !doc) {
        json_decref(last);
        json_decref(doc);
        return NULL;
    }
    json_object_set_new(doc, "receiver", json_string(e->receiver ? e->receiver : ""));
    json_object_set_new(doc, "last", last);
    if (e->has_delivered) {
        json_t *alerts = json_array();
        for (size_t i = 0; alerts && i < e->n_delivered; i++) {
            const struct mw_nlog_alert *a = &e->delivered[i];
            json_array_append_new(alerts,
                                  json_pack("{s:o, s:o, s:I}", "labels", labels_json(&a->labels),
                                            "annotations", labels_json(&a->annotations),
                                            "starts_at_ms", (json_int_t)a->starts_at_ms));
        }
        json_object_set_new(doc, "delivered",
                            json_pack("{s:s, s:I, s:o}", "status", status_name(e->delivered_status),
                                      "at_ms", (json_int_t)e->delivered_at_ms, "alerts",
                                      alerts ? alerts : json_array()));
    }
    return dump(doc);
}

int mw_nlog_entry_decode(const char *group_key, const char *json, size_t len,
                         struct mw_nlog_entry **out)
{
    *out = NULL;
    json_t *doc = json_loadb(json, len, 0, NULL);
    if (!doc)
        return MW_EPARSE;
    int rc = MW_ENOMEM;
    struct mw_nlog_entry *e = mw_calloc(1, sizeof *e);
    if (!e || !(e->group_key = mw_strdup(group_key)) ||
        !(e->receiver = mw_strdup(get_str(doc, "receiver") ? get_str(doc, "receiver") : "")))
        goto out;
    const json_t *last = json_object_get(doc, "last");
    e->last_status = status_of(get_str(last, "status"));
    e->last_at_ms = get_int(last, "at_ms");
    snprintf(e->last_result, sizeof e->last_result, "%s",
             get_str(last, "result") ? get_str(last, "result") : "");
    e->last_attempts = (int)get_int(last, "attempts");
    e->last_http_status = (long)get_int(last, "http_status");
    e->last_finished_ms = get_int(last, "finished_ms");
    e->last_n_firing = (size_t)get_int(last, "firing");
    e->last_n_resolved = (size_t)get_int(last, "resolved");
    const json_t *d = json_object_get(doc, "delivered");
    if (json_is_object(d)) {
        const json_t *alerts = json_object_get(d, "alerts");
        size_t n = json_array_size(alerts);
        e->has_delivered = true;
        e->delivered_status = status_of(get_str(d, "status"));
        e->delivered_at_ms = get_int(d, "at_ms");
        e->delivered = mw_calloc(n + 1, sizeof *e->delivered);
        if (!e->delivered)
            goto out;
        for (size_t i = 0; i < n; i++) {
            const json_t *a = json_array_get(alerts, i);
            struct mw_nlog_alert *na = &e->delivered[e->n_delivered++];
            na->starts_at_ms = get_int(a, "starts_at_ms");
            if ((rc = labels_from(json_object_get(a, "labels"), &na->labels)) != 0 ||
                (rc = labels_from(json_object_get(a, "annotations"), &na->annotations)) != 0)
                goto out;
        }
    }
    *out = e;
    e = NULL;
    rc = 0;
out:
    mw_nlog_entry_free(e);
    json_decref(doc);
    return rc;
}

/* ---- silences -------------------------------------------------------------------------------- */

void mw_matcher_text(const struct mw_matcher *m, char *out, size_t size)
{
    static const char *const ops[] = {"=", "!=", "=~", "!~"};
    struct mw_buf b;
    mw_buf_init(&b, size ? size - 1 : 0);
    mw_buf_printf(&b, "%s%s\"", m->name, ops[m->op]);
    for (const char *p = m->value; *p; p++) {
        if (*p == '"' || *p == '\\')
            mw_buf_append(&b, "\\", 1);
        mw_buf_append(&b, p, 1);
    }
    mw_buf_append(&b, "\"", 1);
    snprintf(out, size, "%.*s", (int)b.len, b.data ? b.data : "");
    mw_buf_free(&b);
}

char *mw_silence_encode(const struct mw_silence *s)
{
    json_t *matchers = json_array();
    for (size_t i = 0; matchers && i < s->matchers.n; i++) {
        char text[2 * MW_LABEL_VALUE_MAX];
        mw_matcher_text(&s->matchers.items[i], text, sizeof text);
        json_array_append_new(matchers, json_string(text));
    }
    if (!matchers)
        return NULL;
    return dump(json_pack("{s:s, s:o, s:I, s:I, s:s, s:s}", "id", s->id, "matchers", matchers,
                          "starts_at_ms", (json_int_t)s->starts_at_ms, "ends_at_ms",
                          (json_int_t)s->ends_at_ms, "created_by", s->created_by, "comment",
                          s->comment));
}

int mw_silence_decode(const char *json, size_t len, struct mw_silence *out, char *why,
                      size_t why_size)
{
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, 0, &jerr);
    if (!doc) {
        snprintf(why, why_size, "not JSON: %s", jerr.text);
        return MW_EPARSE;
    }
    const json_t *ms = json_object_get(doc, "matchers");
    size_t n = json_array_size(ms);
    const char *texts[MW_SILENCE_MAX_MATCHERS];
    int rc = 0;
    if (!json_is_array(ms) || n == 0 || n > MW_SILENCE_MAX_MATCHERS) {
        snprintf(why, why_size, "matchers: 1 to %d matcher strings", MW_SILENCE_MAX_MATCHERS);
        rc = MW_EPARSE;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        texts[i] = json_string_value(json_array_get(ms, i));
        if (!texts[i]) {
            snprintf(why, why_size, "matchers[%zu]: a string such as alertname=\"X\"", i);
            rc = MW_EPARSE;
        }
    }
    const json_t *starts = json_object_get(doc, "starts_at_ms");
    const json_t *ends = json_object_get(doc, "ends_at_ms");
    if (!rc && (!json_is_integer(starts) || !json_is_integer(ends))) {
        snprintf(why, why_size, "starts_at_ms, ends_at_ms: epoch milliseconds");
        rc = MW_EPARSE;
    }
    if (!rc)
        rc = mw_silence_init(out, get_str(doc, "id") ? get_str(doc, "id") : "", texts, n,
                             json_integer_value(starts), json_integer_value(ends),
                             get_str(doc, "created_by") ? get_str(doc, "created_by") : "",
                             get_str(doc, "comment") ? get_str(doc, "comment") : "", why, why_size);
    json_decref(doc);
    return rc;
}

/* ---- commands -------------------------------------------------------------------------------- */

static int script_head(struct mw_redis_cmd *c, int n_keys, const char *op, const char *holder)
{
    static const char *const keys[] = {MW_SCHEMA_ALERT_LEASE_KEY, MW_SCHEMA_ALERT_RULES_KEY,
                                       MW_SCHEMA_ALERT_CURSORS_KEY, MW_SCHEMA_ALERT_NLOG_KEY,
                                       MW_SCHEMA_ALERT_SILENCES_KEY};
    mw_redis_cmd_init(c);
    int rc = mw_redis_cmd_add(c, "EVALSHA");
    rc = rc ? rc : mw_redis_cmd_add(c, MW_ALERT_STATE_SCRIPT_SHA1);
    rc = rc ? rc : mw_redis_cmd_add_int(c, n_keys);
    for (int i = 0; !rc && i < n_keys; i++)
        rc = mw_redis_cmd_add(c, keys[i]);
    rc = rc ? rc : mw_redis_cmd_add(c, op);
    rc = rc ? rc : mw_redis_cmd_add(c, holder);
    return rc;
}

int mw_alert_lease_cmd(struct mw_redis_cmd *c, const char *holder, int64_t ttl_ms)
{
    int rc = script_head(c, 1, "lease", holder);
    return rc ? rc : mw_redis_cmd_add_int(c, ttl_ms);
}

int mw_alert_release_cmd(struct mw_redis_cmd *c, const char *holder)
{
    return script_head(c, 1, "release", holder);
}

int mw_alert_write_init(struct mw_alert_write *w, const char *holder)
{
    w->n_ops = 0;
    return script_head(&w->cmd, 5, "write", holder);
}

int mw_alert_write_hset(struct mw_alert_write *w, enum mw_alert_key key, const char *field,
                        const char *value)
{
    int rc = mw_redis_cmd_add(&w->cmd, "H");
    rc = rc ? rc : mw_redis_cmd_add_int(&w->cmd, key);
    rc = rc ? rc : mw_redis_cmd_add(&w->cmd, field);
    rc = rc ? rc : mw_redis_cmd_add(&w->cmd, value);
    w->n_ops += !rc;
    return rc;
}

int mw_alert_write_hdel(struct mw_alert_write *w, enum mw_alert_key key, const char *field)
{
    int rc = mw_redis_cmd_add(&w->cmd, "D");
    rc = rc ? rc : mw_redis_cmd_add_int(&w->cmd, key);
    rc = rc ? rc : mw_redis_cmd_add(&w->cmd, field);
    w->n_ops += !rc;
    return rc;
}

void mw_alert_write_free(struct mw_alert_write *w)
{
    mw_redis_cmd_free(&w->cmd);
    w->n_ops = 0;
}
