/*
 * alerting.c — the alerting half of the aggregator on the loop (alerting.h): lease, passes of
 * evaluation over the windows that became final, dispatch, delivery and the notification log.
 *
 * Every asynchronous step carries the epoch it started in; taking or losing the lease starts a
 * new epoch, and a reply from an older one is dropped, so nothing evaluated under one lease
 * leaks into the state restored under the next.
 */
#include "alert/alerting.h"
#include "alert/pipeline_signals.h"

#include "alert/alert_api.h"
#include "alert/alert_config.h"
#include "alert/alert_store.h"
#include "alert/delivery.h"
#include "alert/evaluator.h"
#include "alert/route.h"
#include "alert/silence.h"
#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "hash.h"
#include "log.h"
#include "schema.h"
#include "table.h"
#include "window_read.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMP "alerting"
#define FINE_CHUNK_WINDOWS 120 /* fine windows of one model read and evaluated at once */
#define COARSE_CHUNK_WINDOWS 6 /* coarse ones (whole hashes with drift state: larger) */
#define SEEN_WRITE_MS 60000    /* how often a model's last-seen time is written while it moves */
#define DELIVERY_GRACE_MS 2000

/* ---- state kept per model ------------------------------------------------------------------- */

struct cursor {
    char *model;
    int64_t width_ms;
    int64_t delay_ms; /* the `delay` of the rules it serves */
    int64_t start_ms; /* the last start evaluated */
};

struct seen {
    char *model;
    int64_t watermark_ms;
    int64_t wall_ms; /* when the watermark last moved (wall clock) */
    int64_t written_ms;
    bool dirty;
};

struct task {
    char *model;
    int64_t width_ms;
    int64_t delay_ms;
    int64_t next_ms; /* first start to read */
    int64_t last_ms; /* last final start */
};

struct mw_alerting {
    uv_loop_t *loop;
    const struct mw_aggregator_config *cfg;
    struct mw_store *store;
    struct mw_alert_api *api;
    char holder[160];
    struct mw_alert_config ac;
    struct mw_evaluator *ev;
    struct mw_dispatch *dispatch;
    struct mw_silences silences;
    struct mw_delivery *delivery;
    char external_url[512];
    char runbook_base[512];
    uv_timer_t lease_timer, tick_timer, dispatch_timer;
    int n_open_handles;
    bool shut_down;
    bool leader;
    uint64_t epoch;
    enum { PHASE_IDLE, PHASE_RESTORING, PHASE_PASS } phase;
    bool lease_in_flight;
    bool silences_in_flight;
    /* per model: cursors (by model + width) and when each was last seen */
    struct mw_table cursors, seens;
    size_t n_cursors, n_seens;
    struct cursor **cursor_list;
    struct seen **seen_list;
    /* the notification log, by group key */
    struct mw_table nlog;
    size_t n_nlog;
    struct mw_nlog_entry **nlog_list;
    /* the pass under way */
    struct task *tasks;
    size_t n_tasks, next_task;
    /* pipeline rules: the previous evaluation's agent samples, and when the next is due */
    struct mw_pipeline_memory pipeline;
    int64_t pipeline_next_ms;
    /* counters for /metrics */
    uint64_t windows_evaluated, passes, pages, resolves, notifications_sent,
        notifications_suppressed, lease_acquired, lease_lost, write_failures;
};

/* ---- small tables ---------------------------------------------------------------------------- */

struct model_width {
    const char *model;
    int64_t width_ms;
    int64_t delay_ms;
};

static uint64_t model_width_hash(const char *model, int64_t width_ms, int64_t delay_ms)
{
    uint64_t h = mw_hash_bytes(mw_hash_str(MW_HASH_INIT, model), &width_ms, sizeof width_ms);
    return mw_hash_bytes(h, &delay_ms, sizeof delay_ms);
}

static bool cursor_equal(const void *item, const void *key)
{
    const struct cursor *c = item;
    const struct model_width *k = key;
    return c->width_ms == k->width_ms && c->delay_ms == k->delay_ms &&
           strcmp(c->model, k->model) == 0;
}

static bool seen_equal(const void *item, const void *key)
{
    return strcmp(((const struct seen *)item)->model, key) == 0;
}

static bool nlog_equal(const void *item, const void *key)
{
    return strcmp(((const struct mw_nlog_entry *)item)->group_key, key) == 0;
}

/* Make room for element n of a list grown at powers of two from 16. */
static int grow(void *list_ptr, size_t n, size_t elem)
{
    void **list = list_ptr;
    if (n != 0 && (n < 16 || (n & (n - 1)) != 0))
        return 0;
    void *grown = mw_realloc(*list, (n ? 2 * n : 16) * elem);
    if (!grown)
        return MW_ENOMEM;
    *list = grown;
    return 0;
}

static struct cursor *cursor_get(struct mw_alerting *a, const char *model, int64_t width_ms,
                                 int64_t delay_ms, bool create)
{
    struct model_width k = {model, width_ms, delay_ms};
    uint64_t h = model_width_hash(model, width_ms, delay_ms);
    struct cursor *c = mw_table_find(&a->cursors, h, &k);
    if (c || !create)
        return c;
    c = mw_calloc(1, sizeof *c);
    if (!c || !(c->model = mw_strdup(model)) ||
        grow(&a->cursor_list, a->n_cursors, sizeof *a->cursor_list) ||
        mw_table_insert(&a->cursors, h, c)) {
        if (c)
            mw_free(c->model);
        mw_free(c);
        return NULL;
    }
    c->width_ms = width_ms;
    c->delay_ms = delay_ms;
    c->start_ms = INT64_MIN;
    a->cursor_list[a->n_cursors++] = c;
    return c;
}

static struct seen *seen_get(struct mw_alerting *a, const char *model, bool create)
{
    uint64_t h = mw_hash_str(MW_HASH_INIT, model);
    struct seen *s = mw_table_find(&a->seens, h, model);
    if (s || !create)
        return s;
    s = mw_calloc(1, sizeof *s);
    if (!s || !(s->model = mw_strdup(model)) ||
        grow(&a->seen_list, a->n_seens, sizeof *a->seen_list) || mw_table_insert(&a->seens, h, s)) {
        if (s)
            mw_free(s->model);
        mw_free(s);
        return NULL;
    }
    a->seen_list[a->n_seens++] = s;
    return s;
}

static struct mw_nlog_entry *nlog_find(const struct mw_alerting *a, const char *group_key)
{
    return mw_table_find(&a->nlog, mw_hash_str(MW_HASH_INIT, group_key), group_key);
}

/* Take `e` into the log (replacing nothing: the caller checked). 0 or MW_ENOMEM. */
static int nlog_add(struct mw_alerting *a, struct mw_nlog_entry *e)
{
    if (grow(&a->nlog_list, a->n_nlog, sizeof *a->nlog_list) ||
        mw_table_insert(&a->nlog, mw_hash_str(MW_HASH_INIT, e->group_key), e))
        return MW_ENOMEM;
    a->nlog_list[a->n_nlog++] = e;
    return 0;
}

static void free_tasks(struct mw_alerting *a)
{
    for (size_t i = 0; i < a->n_tasks; i++)
        mw_free(a->tasks[i].model);
    mw_free(a->tasks);
    a->tasks = NULL;
    a->n_tasks = a->next_task = 0;
}

/* Drop everything the lease holder keeps in memory; with `fresh`, start a new evaluator. */
static void clear_state(struct mw_alerting *a, bool fresh)
{
    for (size_t i = 0; i < a->n_cursors; i++) {
        mw_free(a->cursor_list[i]->model);
        mw_free(a->cursor_list[i]);
    }
    for (size_t i = 0; i < a->n_seens; i++) {
        mw_free(a->seen_list[i]->model);
        mw_free(a->seen_list[i]);
    }
    for (size_t i = 0; i < a->n_nlog; i++)
        mw_nlog_entry_free(a->nlog_list[i]);
    mw_free(a->cursor_list);
    mw_free(a->seen_list);
    mw_free(a->nlog_list);
    a->cursor_list = NULL;
    a->seen_list = NULL;
    a->nlog_list = NULL;
    a->n_cursors = a->n_seens = a->n_nlog = 0;
    mw_table_free(&a->cursors);
    mw_table_free(&a->seens);
    mw_table_free(&a->nlog);
    mw_table_init(&a->cursors, cursor_equal);
    mw_table_init(&a->seens, seen_equal);
    mw_table_init(&a->nlog, nlog_equal);
    free_tasks(a);
    mw_pipeline_memory_free(&a->pipeline);
    a->pipeline_next_ms = 0;
    mw_dispatch_destroy(a->dispatch);
    a->dispatch = NULL;
    mw_silences_free(&a->silences);
    /* A fresh evaluator: the instances were the old lease's. */
    struct mw_evaluator *ev = NULL;
    struct mw_evaluator_options opts = {
        .cfg = a->cfg, .runbook_base = a->runbook_base, .external_url = a->external_url};
    if (fresh && mw_evaluator_create(&opts, &ev) != 0)
        ev = NULL; /* keep the old one (emptied below) rather than none */
    if (ev || !fresh) {
        mw_evaluator_destroy(a->ev);
        a->ev = ev;
    } else {
        for (size_t i = 0; i < mw_evaluator_count(a->ev); i++)
            mw_evaluator_at(a->ev, i)->removed = true;
        mw_evaluator_gc(a->ev, false);
    }
    if (a->ev)
        mw_evaluator_set_rules(a->ev, &a->ac.rules);
}

/* ---- leadership ------------------------------------------------------------------------------ */

static void start_restore(struct mw_alerting *a);
static void start_pass(struct mw_alerting *a);
static void schedule_dispatch(struct mw_alerting *a);

static void lose_leadership(struct mw_alerting *a, const char *why)
{
    if (!a->leader)
        return;
    MW_LOG_WARN(COMP, "no longer evaluating and delivering", "holder=%s reason=\"%s\"", a->holder,
                why);
    a->leader = false;
    a->epoch++;
    a->phase = PHASE_IDLE;
    a->lease_lost++;
    uv_timer_stop(&a->dispatch_timer);
    clear_state(a, true);
}

struct op {
    struct mw_alerting *a;
    uint64_t epoch;
};

static struct op *new_op(struct mw_alerting *a)
{
    struct op *op = mw_malloc(sizeof *op);
    if (op)
        *op = (struct op){a, a->epoch};
    return op;
}

/* Whether a reply still belongs to the current lease and the alerting is running. */
static bool current(const struct op *op)
{
    return !op->a->shut_down && op->epoch == op->a->epoch;
}

static void on_lease(redisReply *reply, void *arg)
{
    struct mw_alerting *a = arg;
    a->lease_in_flight = false;
    if (a->shut_down)
        return;
    bool ours = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        MW_LOG_ERROR(COMP, "lease script failed", "error=\"%s\"", reply->str);
    if (ours && !a->leader) {
        a->leader = true;
        a->epoch++;
        a->lease_acquired++;
        MW_LOG_INFO(COMP, "took the lease: evaluating and delivering", "holder=%s ttl_ms=%lld",
                    a->holder, (long long)a->cfg->alerting.lease_ttl_ms);
        start_restore(a);
    } else if (!ours && a->leader) {
        lose_leadership(a, reply ? "the lease is held by another replica" : "Redis unavailable");
    }
}

static void send_lease(struct mw_alerting *a)
{
    if (a->lease_in_flight || a->shut_down)
        return;
    struct mw_redis_cmd cmd;
    if (mw_alert_lease_cmd(&cmd, a->holder, a->cfg->alerting.lease_ttl_ms) == 0 &&
        mw_store_command(a->store, &cmd, on_lease, a) == 0)
        a->lease_in_flight = true;
    else if (a->leader)
        lose_leadership(a, "Redis unavailable");
    mw_redis_cmd_free(&cmd);
}

static void on_lease_timer(uv_timer_t *t)
{
    send_lease(t->data);
}

bool mw_alerting_is_leader(const struct mw_alerting *a)
{
    return a && a->leader;
}

/* ---- fenced writes --------------------------------------------------------------------------- */

typedef void (*written_fn)(struct mw_alerting *a, bool ok, void *arg);

struct write_op {
    struct op op;
    written_fn done;
    void *arg;
};

static void on_written(redisReply *reply, void *arg)
{
    struct write_op *w = arg;
    struct mw_alerting *a = w->op.a;
    bool ok = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    if (current(&w->op)) {
        if (!ok) {
            a->write_failures++;
            if (reply && reply->type == REDIS_REPLY_ERROR)
                MW_LOG_ERROR(COMP, "state write failed", "error=\"%s\"", reply->str);
            lose_leadership(a, reply ? "the lease is held by another replica"
                                     : "Redis unavailable: state not written");
        }
        if (w->done)
            w->done(a, ok && a->leader, w->arg);
    } else if (w->done) {
        w->done(a, false, w->arg);
    }
    mw_free(w);
}

/* Send a fenced write; `done` (may be NULL) is called exactly once, also when it cannot be
 * sent. Frees w's command. */
static void send_write(struct mw_alerting *a, struct mw_alert_write *w, written_fn done, void *arg)
{
    struct write_op *op = mw_malloc(sizeof *op);
    int rc = op ? 0 : MW_ENOMEM;
    if (op)
        *op = (struct write_op){{a, a->epoch}, done, arg};
    if (!rc)
        rc = mw_store_command(a->store, &w->cmd, on_written, op);
    mw_alert_write_free(w);
    if (rc) {
        mw_free(op);
        a->write_failures++;
        lose_leadership(a, "Redis unavailable: state not written");
        if (done)
            done(a, false, arg);
    }
}

/* Add every dirty instance's state (or its deletion) to `w`. */
static int add_dirty_instances(struct mw_alerting *a, struct mw_alert_write *w)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < mw_evaluator_count(a->ev); i++) {
        struct mw_alert_inst *inst = mw_evaluator_at(a->ev, i);
        if (!inst->dirty)
            continue;
        char field[MW_SCHEMA_KEY_MAX * 2];
        if (mw_schema_alert_instance_field(field, sizeof field, inst->rule_id, inst->model,
                                           inst->version, inst->feature) != 0) {
            inst->dirty = false;
            continue;
        }
        if (inst->removed) {
            rc = mw_alert_write_hdel(w, MW_ALERT_KEY_RULES, field);
        } else {
            char *json = mw_alert_inst_encode(inst);
            rc = json ? mw_alert_write_hset(w, MW_ALERT_KEY_RULES, field, json) : MW_ENOMEM;
            mw_free(json);
        }
        inst->dirty = rc != 0;
    }
    return rc;
}

static int add_dirty_seens(struct mw_alerting *a, struct mw_alert_write *w)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < a->n_seens; i++) {
        struct seen *s = a->seen_list[i];
        if (!s->dirty)
            continue;
        char field[MW_SCHEMA_KEY_MAX], value[64];
        if (mw_schema_alert_seen_field(field, sizeof field, s->model) != 0)
            continue;
        snprintf(value, sizeof value, "%lld %lld", (long long)s->watermark_ms,
                 (long long)s->wall_ms);
        rc = mw_alert_write_hset(w, MW_ALERT_KEY_CURSORS, field, value);
        if (!rc) {
            s->dirty = false;
            s->written_ms = s->wall_ms;
        }
    }
    return rc;
}

/* ---- dispatch -------------------------------------------------------------------------------- */

/* The alert of an instance as the dispatcher takes it (labels and annotations borrowed: the
 * dispatcher copies them). */
static struct mw_alert alert_of(const struct mw_alert_inst *inst, bool resolved, int64_t now_ms)
{
    struct mw_alert al = {.labels = inst->labels,
                          .annotations = inst->annotations,
                          .starts_at_ms = inst->st.active_since_ms};
    if (resolved) {
        al.ends_at_ms = inst->st.state == MW_ALERT_RESOLVED && inst->st.resolved_at_ms
                            ? inst->st.resolved_at_ms
                            : now_ms;
        if (al.ends_at_ms <= 0)
            al.ends_at_ms = 1;
    }
    return al;
}

static void put_alert(struct mw_alerting *a, const struct mw_alert *al, int64_t at_ms)
{
    if (!a->dispatch || !al->labels.n)
        return;
    int rc = mw_dispatch_put(a->dispatch, al, at_ms);
    if (rc) {
        char quoted[200];
        MW_LOG_ERROR(COMP, "alert not routed", "alertname=%s error=%s",
                     mw_log_quote(mw_labels_get(&al->labels, "alertname"), quoted, sizeof quoted),
                     mw_err_name(rc));
    }
}

/* A notification being delivered: what its result must record. */
struct in_flight {
    struct mw_alerting *a;
    uint64_t epoch;
    char *group_key;
    enum mw_notify_status status;
    size_t n_alerts; /* the firing alerts it carried */
    struct mw_nlog_alert *alerts;
};

static void in_flight_free(struct in_flight *f)
{
    if (!f)
        return;
    mw_free(f->group_key);
    mw_nlog_alerts_free(f->alerts, f->n_alerts);
    mw_free(f);
}

static void write_nlog(struct mw_alerting *a, const struct mw_nlog_entry *e)
{
    struct mw_alert_write w;
    char *json = mw_nlog_entry_encode(e);
    int rc = json ? mw_alert_write_init(&w, a->holder) : MW_ENOMEM;
    if (!rc)
        rc = mw_alert_write_hset(&w, MW_ALERT_KEY_NLOG, e->group_key, json);
    mw_free(json);
    if (rc) {
        if (json)
            mw_alert_write_free(&w);
        MW_LOG_ERROR(COMP, "notification log not written", "error=%s", mw_err_name(rc));
        return;
    }
    send_write(a, &w, NULL, NULL);
}

static const char *outcome_word(enum mw_delivery_outcome o)
{
    switch (o) {
    case MW_DELIVERY_DELIVERED:
        return "delivered";
    case MW_DELIVERY_FAILED:
        return "failed";
    case MW_DELIVERY_DROPPED:
        return "dropped";
    case MW_DELIVERY_SUPERSEDED:
        return "superseded";
    }
    return "?";
}

static void on_delivery_result(const struct mw_delivery_result *r, void *arg)
{
    struct mw_alerting *a = arg;
    struct in_flight *f = r->user;
    if (!f)
        return;
    struct mw_nlog_entry *e = NULL;
    if (!a->shut_down && f->epoch == a->epoch && a->leader)
        e = nlog_find(a, f->group_key);
    if (e && r->outcome != MW_DELIVERY_SUPERSEDED) {
        if (e->last_id == r->id) {
            snprintf(e->last_result, sizeof e->last_result, "%s", outcome_word(r->outcome));
            e->last_attempts = r->attempts;
            e->last_http_status = r->last_http_status;
            e->last_finished_ms = r->finished_wall_ms;
        }
        if (r->outcome == MW_DELIVERY_DELIVERED) {
            mw_nlog_alerts_free(e->delivered, e->n_delivered);
            e->has_delivered = true;
            e->delivered_status = f->status;
            e->delivered_at_ms = r->finished_wall_ms;
            e->delivered = f->alerts;
            e->n_delivered = f->n_alerts;
            f->alerts = NULL;
            f->n_alerts = 0;
        }
        write_nlog(a, e);
    }
    in_flight_free(f);
}

/* Labels of `b` the same in every alert: common labels / annotations. */
static size_t common_of(const struct mw_labels *const *sets, size_t n, struct mw_notify_label *out,
                        size_t max)
{
    size_t k = 0;
    if (!n)
        return 0;
    for (size_t i = 0; i < sets[0]->n && k < max; i++) {
        const struct mw_label *l = &sets[0]->items[i];
        bool all = true;
        for (size_t j = 1; all && j < n; j++) {
            const char *v = mw_labels_get(sets[j], l->name);
            all = v && strcmp(v, l->value) == 0;
        }
        if (all)
            out[k++] = (struct mw_notify_label){l->name, l->value};
    }
    return k;
}

static bool same_fingerprints(const struct mw_notification *n, const struct mw_nlog_entry *e)
{
    if (n->n_firing != e->n_delivered)
        return false;
    for (size_t i = 0; i < n->n_firing; i++) {
        bool found = false;
        for (size_t j = 0; !found && j < e->n_delivered; j++)
            found = mw_labels_equal(&n->firing[i].labels, &e->delivered[j].labels);
        if (!found)
            return false;
    }
    return true;
}

/* Whether the receiver already has what `n` says (the log's last delivered notification). */
static bool already_delivered(const struct mw_alerting *a, const struct mw_notification *n,
                              enum mw_notify_status status, int64_t now_ms)
{
    const struct mw_nlog_entry *e = nlog_find(a, n->group_key);
    if (!e || !e->has_delivered)
        return status == MW_NOTIFY_RESOLVED; /* nothing was delivered: nothing to resolve */
    if (status == MW_NOTIFY_RESOLVED)
        return e->delivered_status == MW_NOTIFY_RESOLVED;
    return e->delivered_status == MW_NOTIFY_FIRING && n->n_resolved == 0 &&
           same_fingerprints(n, e) && now_ms - e->delivered_at_ms < n->route->repeat_interval_ms;
}

static int copy_nlog_alerts(const struct mw_alert *src, size_t n, struct mw_nlog_alert **out)
{
    *out = mw_calloc(n + 1, sizeof **out);
    if (!*out)
        return MW_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        (*out)[i].starts_at_ms = src[i].starts_at_ms;
        if (mw_labels_copy(&(*out)[i].labels, &src[i].labels) ||
            mw_labels_copy(&(*out)[i].annotations, &src[i].annotations)) {
            mw_nlog_alerts_free(*out, n);
            *out = NULL;
            return MW_ENOMEM;
        }
    }
    return 0;
}

/* Adapt one notification to the receivers' view and submit it. */
static int submit(struct mw_alerting *a, const struct mw_notification *n,
                  enum mw_notify_status status, struct in_flight *f, uint64_t *id)
{
    size_t n_alerts = n->n_firing + n->n_resolved;
    size_t n_labels = 0, n_values = 0;
    const struct mw_alert **alerts = mw_calloc(n_alerts + 1, sizeof *alerts);
    const struct mw_labels **label_sets = mw_calloc(n_alerts + 1, sizeof *label_sets);
    const struct mw_labels **ann_sets = mw_calloc(n_alerts + 1, sizeof *ann_sets);
    struct mw_notify_alert *na = mw_calloc(n_alerts + 1, sizeof *na);
    int rc = alerts && label_sets && ann_sets && na ? 0 : MW_ENOMEM;
    for (size_t i = 0; !rc && i < n_alerts; i++) {
        alerts[i] = i < n->n_firing ? &n->firing[i] : &n->resolved[i - n->n_firing];
        label_sets[i] = &alerts[i]->labels;
        ann_sets[i] = &alerts[i]->annotations;
        n_labels += alerts[i]->labels.n + alerts[i]->annotations.n;
        n_values += MW_ALERT_MAX_VALUES;
    }
    n_labels += 2 * MW_LABELS_MAX + n->group_labels.n;
    struct mw_notify_label *pool = rc ? NULL : mw_calloc(n_labels + 1, sizeof *pool);
    struct mw_notify_value *vpool = rc ? NULL : mw_calloc(n_values + 1, sizeof *vpool);
    if (!rc && (!pool || !vpool))
        rc = MW_ENOMEM;
    size_t at = 0, vat = 0;
    for (size_t i = 0; !rc && i < n_alerts; i++) {
        const struct mw_alert *al = alerts[i];
        struct mw_notify_alert *x = &na[i];
        x->status = al->ends_at_ms ? MW_NOTIFY_RESOLVED : MW_NOTIFY_FIRING;
        x->starts_at_ms = al->starts_at_ms;
        x->ends_at_ms = al->ends_at_ms;
        x->labels.items = pool + at;
        for (size_t j = 0; j < al->labels.n; j++)
            pool[at++] =
                (struct mw_notify_label){al->labels.items[j].name, al->labels.items[j].value};
        x->labels.n = al->labels.n;
        x->annotations.items = pool + at;
        for (size_t j = 0; j < al->annotations.n; j++)
            pool[at++] = (struct mw_notify_label){al->annotations.items[j].name,
                                                  al->annotations.items[j].value};
        x->annotations.n = al->annotations.n;
        const struct mw_alert_inst *inst =
            mw_evaluator_find_fingerprint(a->ev, mw_labels_hash(&al->labels), &al->labels);
        if (inst) {
            x->values = vpool + vat;
            for (size_t j = 0; j < inst->n_values; j++)
                vpool[vat++] =
                    (struct mw_notify_value){inst->values[j].name, inst->values[j].value};
            x->n_values = inst->n_values;
            x->generator_url = inst->generator_url;
        }
    }
    struct mw_notify_group g = {
        .group_key = n->group_key,
        .receiver = n->receiver,
        .status = status,
        .external_url = a->external_url,
        .alerts = na,
        .n_alerts = n_alerts,
    };
    if (!rc) {
        g.group_labels.items = pool + at;
        for (size_t j = 0; j < n->group_labels.n; j++)
            pool[at++] = (struct mw_notify_label){n->group_labels.items[j].name,
                                                  n->group_labels.items[j].value};
        g.group_labels.n = n->group_labels.n;
        g.common_labels.items = pool + at;
        g.common_labels.n = common_of(label_sets, n_alerts, pool + at, MW_LABELS_MAX);
        at += g.common_labels.n;
        g.common_annotations.items = pool + at;
        g.common_annotations.n = common_of(ann_sets, n_alerts, pool + at, MW_LABELS_MAX);
        at += g.common_annotations.n;
        rc = mw_delivery_submit(a->delivery, &g, f, id);
    }
    mw_free(alerts);
    mw_free(label_sets);
    mw_free(ann_sets);
    mw_free(na);
    mw_free(pool);
    mw_free(vpool);
    return rc;
}

struct notify_op {
    struct mw_alerting *a;
    struct mw_notifications ns; /* one notification, moved here */
    enum mw_notify_status status;
};

/* The log says "sending": now submit. */
static void on_nlog_sending(struct mw_alerting *a, bool ok, void *arg)
{
    struct notify_op *op = arg;
    const struct mw_notification *n = &op->ns.items[0];
    struct in_flight *f = NULL;
    if (ok && a->delivery)
        f = mw_calloc(1, sizeof *f);
    if (f) {
        *f = (struct in_flight){.a = a, .epoch = a->epoch, .status = op->status};
        f->group_key = mw_strdup(n->group_key);
        if (!f->group_key || copy_nlog_alerts(n->firing, n->n_firing, &f->alerts) != 0) {
            in_flight_free(f);
            f = NULL;
        } else {
            f->n_alerts = n->n_firing;
        }
    }
    if (f) {
        uint64_t id = 0;
        int rc = submit(a, n, op->status, f, &id);
        struct mw_nlog_entry *e = nlog_find(a, n->group_key);
        if (rc) {
            char quoted[300];
            MW_LOG_ERROR(COMP, "notification not submitted", "group=%s receiver=%s error=%s",
                         mw_log_quote(n->group_key, quoted, sizeof quoted), n->receiver,
                         mw_err_name(rc));
            in_flight_free(f);
            if (e) {
                snprintf(e->last_result, sizeof e->last_result, "%s",
                         rc == MW_EFULL ? "dropped" : "failed");
                write_nlog(a, e);
            }
        } else {
            a->notifications_sent++;
            if (e)
                e->last_id = id;
        }
    }
    mw_notifications_free(&op->ns);
    mw_free(op);
}

static void handle_notification(struct mw_alerting *a, struct mw_notification *n, int64_t now_ms)
{
    enum mw_notify_status status =
        n->n_firing + n->n_held > 0 ? MW_NOTIFY_FIRING : MW_NOTIFY_RESOLVED;
    char quoted[300];
    if (already_delivered(a, n, status, now_ms)) {
        a->notifications_suppressed++;
        MW_LOG_DEBUG(COMP, "notification already delivered", "group=%s status=%s",
                     mw_log_quote(n->group_key, quoted, sizeof quoted),
                     status == MW_NOTIFY_FIRING ? "firing" : "resolved");
        return;
    }
    MW_LOG_INFO(COMP, "notification",
                "group=%s receiver=%s status=%s firing=%zu resolved=%zu "
                "held=%zu repeat=%d",
                mw_log_quote(n->group_key, quoted, sizeof quoted), n->receiver,
                status == MW_NOTIFY_FIRING ? "firing" : "resolved", n->n_firing, n->n_resolved,
                n->n_held, n->repeat);
    struct mw_nlog_entry *e = nlog_find(a, n->group_key);
    if (!e) {
        e = mw_calloc(1, sizeof *e);
        if (!e || !(e->group_key = mw_strdup(n->group_key)) ||
            !(e->receiver = mw_strdup(n->receiver)) || nlog_add(a, e) != 0) {
            mw_nlog_entry_free(e);
            MW_LOG_ERROR(COMP, "out of memory: notification dropped", "group=%s", quoted);
            return;
        }
    }
    e->last_status = status;
    e->last_at_ms = now_ms;
    snprintf(e->last_result, sizeof e->last_result, "%s", a->delivery ? "sending" : "no_receiver");
    e->last_attempts = 0;
    e->last_http_status = 0;
    e->last_finished_ms = 0;
    e->last_n_firing = n->n_firing;
    e->last_n_resolved = n->n_resolved;
    e->last_id = 0;
    struct notify_op *op = mw_calloc(1, sizeof *op);
    struct mw_notification *moved = mw_malloc(sizeof *moved);
    if (!op || !moved) {
        mw_free(op);
        mw_free(moved);
        return;
    }
    *moved = *n;
    *n = (struct mw_notification){0};
    op->a = a;
    op->ns = (struct mw_notifications){.n = 1, .items = moved};
    op->status = status;
    struct mw_alert_write w;
    char *json = mw_nlog_entry_encode(e);
    int rc = json ? mw_alert_write_init(&w, a->holder) : MW_ENOMEM;
    if (!rc)
        rc = mw_alert_write_hset(&w, MW_ALERT_KEY_NLOG, e->group_key, json);
    mw_free(json);
    if (rc) {
        if (json)
            mw_alert_write_free(&w);
        on_nlog_sending(a, false, op);
        return;
    }
    send_write(a, &w, on_nlog_sending, op);
}

static void run_dispatch(struct mw_alerting *a)
{
    if (!a->dispatch || !a->leader || a->phase == PHASE_RESTORING)
        return;
    int64_t now = mw_clock_wall_ms();
    struct mw_notifications ns = {0};
    int rc = mw_dispatch_advance(a->dispatch, now, &a->silences, &ns);
    if (rc)
        MW_LOG_ERROR(COMP, "dispatch failed", "error=%s", mw_err_name(rc));
    for (size_t i = 0; i < ns.n && a->leader; i++)
        handle_notification(a, &ns.items[i], now);
    mw_notifications_free(&ns);
    schedule_dispatch(a);
}

static void on_dispatch_timer(uv_timer_t *t)
{
    run_dispatch(t->data);
}

static void schedule_dispatch(struct mw_alerting *a)
{
    if (!a->dispatch || a->shut_down || !a->leader)
        return;
    int64_t next = mw_dispatch_next_ms(a->dispatch);
    if (next == INT64_MAX) {
        uv_timer_stop(&a->dispatch_timer);
        return;
    }
    int64_t wait = next - mw_clock_wall_ms();
    uv_timer_start(&a->dispatch_timer, on_dispatch_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

/* Put the pages and resolves of a persisted chunk. */
static void apply_transitions(struct mw_alerting *a, const struct mw_eval_transitions *t)
{
    int64_t now = mw_clock_wall_ms();
    for (size_t i = 0; i < t->n; i++) {
        const struct mw_alert_inst *inst = t->items[i].inst;
        bool resolve = t->items[i].change == MW_EVAL_RESOLVE;
        char quoted[200];
        const char *subject = inst->rule ? mw_signal_subject_label(inst->rule->signal) : NULL;
        if (subject) /* a pipeline alert: about an agent or a partition */
            MW_LOG_INFO(COMP, resolve ? "alert resolved" : "alert firing",
                        "alertname=%s %s=%s value=%g",
                        mw_log_quote(mw_labels_get(&inst->labels, "alertname"), quoted,
                                     sizeof quoted),
                        subject, inst->feature ? inst->feature : "", inst->st.value);
        else
            MW_LOG_INFO(COMP, resolve ? "alert resolved" : "alert firing",
                        "alertname=%s model=%s version=%s feature=%s value=%g samples=%" PRIu64,
                        mw_log_quote(mw_labels_get(&inst->labels, "alertname"), quoted,
                                     sizeof quoted),
                        inst->model, inst->version, inst->feature ? inst->feature : "",
                        inst->st.value, inst->st.samples);
        if (resolve)
            a->resolves++;
        else
            a->pages++;
        struct mw_alert al = alert_of(inst, resolve, now);
        put_alert(a, &al, now);
    }
    schedule_dispatch(a);
}

/* ---- silences -------------------------------------------------------------------------------- */

static void on_silences(redisReply *reply, void *arg)
{
    struct op *op = arg;
    struct mw_alerting *a = op->a;
    a->silences_in_flight = false;
    if (current(op) && reply && reply->type == REDIS_REPLY_ARRAY) {
        struct mw_silences fresh = {0};
        int64_t now = mw_clock_wall_ms();
        struct mw_alert_write w;
        bool gc = a->leader && mw_alert_write_init(&w, a->holder) == 0;
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            struct mw_silence s;
            char why[200];
            const redisReply *v = reply->element[i + 1];
            if (!v->str || mw_silence_decode(v->str, v->len, &s, why, sizeof why) != 0)
                continue;
            if (gc && s.ends_at_ms < now - a->cfg->alerting.retention_ms) {
                mw_alert_write_hdel(&w, MW_ALERT_KEY_SILENCES, s.id);
                mw_silence_free(&s);
                continue;
            }
            if (mw_silences_add(&fresh, &s) != 0)
                mw_silence_free(&s);
        }
        mw_silences_free(&a->silences);
        a->silences = fresh;
        if (gc && w.n_ops)
            send_write(a, &w, NULL, NULL);
        else if (gc)
            mw_alert_write_free(&w);
    }
    mw_free(op);
}

static void refresh_silences(struct mw_alerting *a)
{
    if (a->silences_in_flight || !a->leader)
        return;
    struct op *op = new_op(a);
    const char *argv[] = {"HGETALL", MW_SCHEMA_ALERT_SILENCES_KEY};
    if (op && mw_store_commandv(a->store, on_silences, op, 2, argv) == 0)
        a->silences_in_flight = true;
    else
        mw_free(op);
}

void mw_alerting_silences_changed(struct mw_alerting *a)
{
    if (a && !a->shut_down)
        refresh_silences(a);
}

/* ---- evaluation: one chunk of one (model, width) ----------------------------------------------
 */

struct count_entry {
    char *version;
    struct mw_eval_count c;
};

struct chunk {
    struct op op;
    struct task *task;
    int64_t from_ms, to_ms;
    bool counts, profiles;
    int pending;
    int rc;
    struct count_entry *fine, *coarse;
    size_t n_fine, n_coarse;
    struct mw_eval_transitions transitions;
};

static void chunk_free(struct chunk *c)
{
    for (size_t i = 0; i < c->n_fine; i++)
        mw_free(c->fine[i].version);
    for (size_t i = 0; i < c->n_coarse; i++)
        mw_free(c->coarse[i].version);
    mw_free(c->fine);
    mw_free(c->coarse);
    mw_eval_transitions_free(&c->transitions);
    mw_free(c);
}

static void run_next_task(struct mw_alerting *a);
static void finish_pass(struct mw_alerting *a);

static int by_version_start(const void *x, const void *y)
{
    const struct count_entry *a = x, *b = y;
    int d = strcmp(a->version, b->version);
    if (d)
        return d;
    return a->c.start_ms < b->c.start_ms ? -1 : a->c.start_ms > b->c.start_ms;
}

/* Copy one counts read (fine or coarse) into the chunk, sorted by version then start. */
static int copy_counts(struct chunk *c, const struct mw_window_set *set)
{
    bool fine = set->width_ms == c->op.a->cfg->windows.fine_ms;
    struct count_entry **list = fine ? &c->fine : &c->coarse;
    size_t *n = fine ? &c->n_fine : &c->n_coarse;
    *list = mw_calloc(set->n + 1, sizeof **list);
    if (!*list)
        return MW_ENOMEM;
    for (size_t i = 0; i < set->n; i++) {
        const struct mw_window *w = &set->windows[i];
        struct count_entry *e = &(*list)[*n];
        if (!(e->version = mw_strdup(w->version)))
            return MW_ENOMEM;
        e->c = (struct mw_eval_count){w->start_ms, (double)w->count, (double)w->errors};
        (*n)++;
    }
    qsort(*list, *n, sizeof **list, by_version_start);
    return 0;
}

/* The entries of `version` in a list sorted by version then start: [*from, *from + n). */
static size_t version_range(const struct count_entry *list, size_t n, const char *version,
                            size_t *from)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(list[mid].version, version) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < n && strcmp(list[end].version, version) == 0)
        end++;
    *from = lo;
    return end - lo;
}

static void chunk_persisted(struct mw_alerting *a, bool ok, void *arg)
{
    struct chunk *c = arg;
    if (ok && current(&c->op)) {
        apply_transitions(a, &c->transitions);
        mw_evaluator_gc(a->ev, false);
        struct cursor *cur =
            cursor_get(a, c->task->model, c->task->width_ms, c->task->delay_ms, false);
        if (cur)
            cur->start_ms = c->to_ms;
        c->task->next_ms = c->to_ms + c->task->width_ms;
        chunk_free(c);
        run_next_task(a);
        return;
    }
    chunk_free(c);
}

static void on_chunk_windows(int rc, const struct mw_window_set *set, void *arg)
{
    struct chunk *c = arg;
    struct mw_alerting *a = c->op.a;
    if (!current(&c->op) || !a->leader) {
        chunk_free(c);
        return;
    }
    if (rc || c->rc) {
        MW_LOG_WARN(COMP, "windows not read: evaluation of this model waits", "model=%s error=%s",
                    c->task->model, mw_err_name(rc ? rc : c->rc));
        chunk_free(c);
        a->phase = PHASE_IDLE; /* the next tick starts again from the cursors */
        free_tasks(a);
        return;
    }
    /* One group per start: the set is sorted by start, then version. */
    size_t max_versions = set->n ? set->n : 1;
    struct mw_eval_source *sources = mw_calloc(max_versions, sizeof *sources);
    struct mw_eval_counts *counts = mw_calloc(max_versions, sizeof *counts);
    struct mw_eval_count *flat = NULL;
    size_t n_flat = c->n_fine + c->n_coarse;
    flat = mw_calloc(n_flat + 1, sizeof *flat);
    int err = sources && counts && flat ? 0 : MW_ENOMEM;
    for (size_t i = 0; i < n_flat; i++)
        flat[i] = i < c->n_fine ? c->fine[i].c : c->coarse[i - c->n_fine].c;
    for (size_t i = 0; !err && i < set->n;) {
        size_t j = i;
        while (j < set->n && set->windows[j].start_ms == set->windows[i].start_ms)
            j++;
        for (size_t k = i; k < j; k++) {
            const struct mw_window *w = &set->windows[k];
            sources[k - i].window = w;
            sources[k - i].counts = NULL;
            if (c->counts) {
                size_t ff, cf;
                size_t nf = version_range(c->fine, c->n_fine, w->version, &ff);
                size_t nc = version_range(c->coarse, c->n_coarse, w->version, &cf);
                counts[k - i] = (struct mw_eval_counts){.n_fine = nf,
                                                        .fine = flat + ff,
                                                        .n_coarse = nc,
                                                        .coarse = flat + c->n_fine + cf};
                sources[k - i].counts = &counts[k - i];
            }
        }
        struct mw_eval_group g = {.model = set->model,
                                  .width_ms = set->width_ms,
                                  .delay_ms = c->task->delay_ms,
                                  .start_ms = set->windows[i].start_ms,
                                  .n = j - i,
                                  .sources = sources};
        err = mw_evaluator_step_group(a->ev, &g, &c->transitions);
        a->windows_evaluated += j - i;
        i = j;
    }
    mw_free(sources);
    mw_free(counts);
    mw_free(flat);
    if (err) {
        MW_LOG_ERROR(COMP, "evaluation failed", "model=%s error=%s", c->task->model,
                     mw_err_name(err));
        chunk_free(c);
        lose_leadership(a, "out of memory while evaluating");
        return;
    }
    /* Persist the states and the cursor in one fenced write, then act. */
    struct cursor *cur = cursor_get(a, c->task->model, c->task->width_ms, c->task->delay_ms, true);
    struct mw_alert_write w;
    char field[MW_SCHEMA_KEY_MAX], value[32];
    err = cur ? mw_alert_write_init(&w, a->holder) : MW_ENOMEM;
    if (!err) {
        err = add_dirty_instances(a, &w);
        if (!err && mw_schema_alert_cursor_field(field, sizeof field, c->task->model,
                                                 c->task->width_ms, c->task->delay_ms) == 0) {
            snprintf(value, sizeof value, "%lld", (long long)c->to_ms);
            err = mw_alert_write_hset(&w, MW_ALERT_KEY_CURSORS, field, value);
        }
        if (err)
            mw_alert_write_free(&w);
    }
    if (err) {
        chunk_free(c);
        lose_leadership(a, "out of memory while writing states");
        return;
    }
    send_write(a, &w, chunk_persisted, c);
}

/* Which reads the rules of this (model, width) need. */
static void needs_of(const struct mw_alerting *a, const char *model, int64_t width_ms,
                     bool *profiles, bool *counts, int64_t *longest_ms)
{
    *profiles = *counts = false;
    *longest_ms = 0;
    for (size_t i = 0; i < a->ac.rules.n; i++) {
        const struct mw_rule *r = &a->ac.rules.rules[i];
        unsigned flags = mw_signal_info(r->signal)->flags;
        if (fnmatch(r->model, model, 0) != 0 || (flags & (MW_SIGNAL_WALL | MW_SIGNAL_PIPELINE)))
            continue;
        if (flags & MW_SIGNAL_BURN) {
            if (width_ms == a->cfg->windows.fine_ms) {
                *counts = true;
                if (r->long_window_ms > *longest_ms)
                    *longest_ms = r->long_window_ms;
                if (r->short_window_ms > *longest_ms)
                    *longest_ms = r->short_window_ms;
            }
            continue;
        }
        int64_t rw = r->resolution == MW_RESOLUTION_COARSE ? a->cfg->windows.coarse_ms
                                                           : a->cfg->windows.fine_ms;
        if (rw == width_ms && (flags & (MW_SIGNAL_FEATURE | MW_SIGNAL_VERDICT)))
            *profiles = true;
    }
}

static void read_chunk_windows(struct chunk *c)
{
    struct mw_alerting *a = c->op.a;
    struct mw_window_range q = {.model = c->task->model,
                                .width_ms = c->task->width_ms,
                                .from_ms = c->from_ms,
                                .to_ms = c->to_ms,
                                .flags = c->profiles ? MW_WINDOW_READ_PROFILE : 0};
    int rc = mw_window_read_range(a->store, a->cfg, &q, on_chunk_windows, c);
    if (rc) {
        chunk_free(c);
        a->phase = PHASE_IDLE;
        free_tasks(a);
    }
}

static void on_counts_then_windows(int rc, const struct mw_window_set *set, void *arg)
{
    struct chunk *c = arg;
    struct mw_alerting *a = c->op.a;
    if (!rc && current(&c->op))
        rc = copy_counts(c, set);
    if (rc && !c->rc)
        c->rc = rc;
    if (--c->pending > 0)
        return;
    if (!current(&c->op) || !a->leader) {
        chunk_free(c);
        return;
    }
    if (c->rc) {
        MW_LOG_WARN(COMP, "window counts not read: evaluation of this model waits",
                    "model=%s error=%s", c->task->model, mw_err_name(c->rc));
        chunk_free(c);
        a->phase = PHASE_IDLE;
        free_tasks(a);
        return;
    }
    read_chunk_windows(c);
}

static void start_task_chunk(struct mw_alerting *a, struct task *t)
{
    int64_t span =
        t->width_ms == a->cfg->windows.fine_ms ? FINE_CHUNK_WINDOWS : COARSE_CHUNK_WINDOWS;
    struct chunk *c = mw_calloc(1, sizeof *c);
    if (!c) {
        lose_leadership(a, "out of memory");
        return;
    }
    c->op = (struct op){a, a->epoch};
    c->task = t;
    c->from_ms = t->next_ms;
    c->to_ms = t->next_ms + (span - 1) * t->width_ms;
    if (c->to_ms > t->last_ms)
        c->to_ms = t->last_ms;
    int64_t longest;
    needs_of(a, t->model, t->width_ms, &c->profiles, &c->counts, &longest);
    if (!c->counts) {
        read_chunk_windows(c);
        return;
    }
    /* Counts first (copied), then the windows, evaluated in their read's callback. */
    struct mw_window_range fine = {.model = t->model,
                                   .width_ms = a->cfg->windows.fine_ms,
                                   .from_ms = c->from_ms - MW_SLO_FINE_LOOKBACK_MAX_MS,
                                   .to_ms = c->to_ms,
                                   .flags = MW_WINDOW_READ_COUNTS};
    struct mw_window_range coarse = fine;
    coarse.width_ms = a->cfg->windows.coarse_ms;
    coarse.from_ms = c->from_ms - (longest > 0 ? longest : 0) - a->cfg->windows.coarse_ms;
    c->pending = 2;
    int rc = mw_window_read_range(a->store, a->cfg, &fine, on_counts_then_windows, c);
    if (rc) {
        chunk_free(c);
        a->phase = PHASE_IDLE;
        free_tasks(a);
        return;
    }
    rc = mw_window_read_range(a->store, a->cfg, &coarse, on_counts_then_windows, c);
    if (rc) {
        c->rc = rc;
        c->pending--; /* the fine read's answer ends the chunk (as failed) */
    }
}

static void run_next_task(struct mw_alerting *a)
{
    if (!a->leader || a->shut_down)
        return;
    while (a->next_task < a->n_tasks) {
        struct task *t = &a->tasks[a->next_task];
        if (t->next_ms <= t->last_ms) {
            start_task_chunk(a, t);
            return;
        }
        a->next_task++;
    }
    finish_pass(a);
}

/* ---- a pass ---------------------------------------------------------------------------------- */

static void pass_persisted(struct mw_alerting *a, bool ok, void *arg)
{
    struct mw_eval_transitions *t = arg;
    if (ok && a->leader) {
        apply_transitions(a, t);
        mw_evaluator_gc(a->ev, false);
    }
    mw_eval_transitions_free(t);
    mw_free(t);
    if (a->leader)
        a->phase = PHASE_IDLE;
    run_dispatch(a);
}

/* The shortest interval of the pipeline rules, or 0 when there are none. */
static int64_t pipeline_interval(const struct mw_alerting *a)
{
    int64_t shortest = 0;
    for (size_t i = 0; i < a->ac.rules.n; i++) {
        const struct mw_rule *r = &a->ac.rules.rules[i];
        if ((mw_signal_info(r->signal)->flags & MW_SIGNAL_PIPELINE) &&
            (!shortest || r->interval_ms < shortest))
            shortest = r->interval_ms;
    }
    return shortest;
}

/* The pipeline rules with what the replicas reported; appends to `t`. */
static int step_pipeline(struct mw_alerting *a, const struct mw_pipeline_readings *r,
                         int64_t now, struct mw_eval_transitions *t)
{
    struct mw_pipeline_reading *readings = NULL;
    size_t n = 0;
    int rc = mw_pipeline_signals(r, &a->pipeline, now, &readings, &n);
    if (!rc)
        rc = mw_evaluator_step_pipeline(a->ev, readings, n, now, t);
    mw_free(readings);
    mw_pipeline_health_forget_agents(a->store, r, now - MW_PIPELINE_AGENT_FORGET_MS);
    return rc;
}

/* Wall-clock rules: absence, and the pipeline rules when `r` holds their readings; then the
 * last-seen times, in one write. */
static void evaluate_wall_clock(struct mw_alerting *a, const struct mw_pipeline_readings *r)
{
    int64_t now = mw_clock_wall_ms();
    struct mw_eval_transitions *t = mw_calloc(1, sizeof *t);
    int rc = t ? 0 : MW_ENOMEM;
    for (size_t i = 0; !rc && i < a->n_seens; i++)
        rc = mw_evaluator_step_absence(a->ev, a->seen_list[i]->model, a->seen_list[i]->wall_ms, now,
                                       t);
    if (!rc && r)
        rc = step_pipeline(a, r, now, t);
    struct mw_alert_write w;
    if (!rc && (rc = mw_alert_write_init(&w, a->holder)) == 0) {
        rc = add_dirty_instances(a, &w);
        if (!rc)
            rc = add_dirty_seens(a, &w);
        if (rc)
            mw_alert_write_free(&w);
    }
    if (rc) {
        mw_eval_transitions_free(t);
        mw_free(t);
        lose_leadership(a, "out of memory");
        return;
    }
    refresh_silences(a);
    if (!w.n_ops) {
        mw_alert_write_free(&w);
        pass_persisted(a, true, t);
        return;
    }
    send_write(a, &w, pass_persisted, t);
}

static void on_pipeline_read(int rc, struct mw_pipeline_readings *r, void *arg)
{
    struct op *op = arg;
    struct mw_alerting *a = op->a;
    bool live = current(op) && a->leader;
    mw_free(op);
    if (!live) {
        mw_pipeline_readings_free(r);
        mw_free(r);
        return;
    }
    if (rc)
        MW_LOG_WARN(COMP, "cannot read the pipeline's health: pipeline rules wait",
                    "error=%s", mw_err_name(rc));
    evaluate_wall_clock(a, r);
    mw_pipeline_readings_free(r);
    mw_free(r);
}

/* After the windows: the wall-clock rules, reading the pipeline's health first when the
 * pipeline rules are due. */
static void finish_pass(struct mw_alerting *a)
{
    free_tasks(a);
    a->passes++;
    int64_t now = mw_clock_wall_ms(), every = pipeline_interval(a);
    if (every && now >= a->pipeline_next_ms) {
        a->pipeline_next_ms = now + every;
        struct op *op = new_op(a);
        if (op && mw_pipeline_health_read(a->store, now, on_pipeline_read, op) == 0)
            return;
        mw_free(op);
    }
    evaluate_wall_clock(a, NULL);
}

static int add_task(struct mw_alerting *a, const char *model, int64_t width_ms, int64_t delay_ms,
                    int64_t next_ms, int64_t last_ms)
{
    if (grow(&a->tasks, a->n_tasks, sizeof *a->tasks))
        return MW_ENOMEM;
    struct task *t = &a->tasks[a->n_tasks];
    *t = (struct task){
        .model = mw_strdup(model), .width_ms = width_ms, .delay_ms = delay_ms, .next_ms = next_ms,
        .last_ms = last_ms};
    if (!t->model)
        return MW_ENOMEM;
    a->n_tasks++;
    return 0;
}

struct watermarks {
    struct op op;
    size_t n;
    char **models;
    int64_t *wm;
    bool *has;
};

static void watermarks_free(struct watermarks *w)
{
    for (size_t i = 0; i < w->n; i++)
        mw_free(w->models[i]);
    mw_free(w->models);
    mw_free(w->wm);
    mw_free(w->has);
    mw_free(w);
}

static void on_watermark_each(size_t i, const redisReply *reply, void *arg)
{
    struct watermarks *w = arg;
    if (i >= w->n || !reply)
        return;
    if (reply->type == REDIS_REPLY_STRING) {
        w->wm[i] = strtoll(reply->str, NULL, 10);
        w->has[i] = true;
    } else if (reply->type == REDIS_REPLY_INTEGER) {
        w->wm[i] = reply->integer;
        w->has[i] = true;
    }
}

/* Every model's watermark is in: note what moved, plan the windows to evaluate. */
/* The task of one cursor: the windows of `model` at resolution `res` that became final for
 * the rules with `delay_ms` since the cursor (a window waits `delay_ms` of event time after it
 * is final for them). */
static int plan_cursor(struct mw_alerting *a, const char *model, int res, int64_t delay_ms,
                       int64_t watermark_ms)
{
    int64_t width =
        res == MW_RESOLUTION_COARSE ? a->cfg->windows.coarse_ms : a->cfg->windows.fine_ms;
    int64_t lateness = a->cfg->windows.allowed_lateness_ms;
    int64_t last = mw_schema_final_start_max(width, watermark_ms - delay_ms, lateness);
    struct cursor *cur = cursor_get(a, model, width, delay_ms, true);
    if (!cur)
        return MW_ENOMEM;
    int64_t next;
    if (cur->start_ms == INT64_MIN) /* first sight at this width: catch up on what is retained */
        next = mw_schema_final_start_max(
            width, watermark_ms - delay_ms - a->cfg->alerting.catch_up_ms, lateness);
    else
        next = cur->start_ms + width;
    return next <= last ? add_task(a, model, width, delay_ms, next, last) : 0;
}

static void on_watermarks(int rc, void *arg)
{
    struct watermarks *w = arg;
    struct mw_alerting *a = w->op.a;
    if (!current(&w->op) || !a->leader) {
        watermarks_free(w);
        return;
    }
    (void)rc; /* a model whose watermark did not come back is simply not evaluated now */
    int64_t now = mw_clock_wall_ms();
    int err = 0;
    for (size_t i = 0; !err && i < w->n; i++) {
        if (!w->has[i])
            continue;
        const char *model = w->models[i];
        struct seen *s = seen_get(a, model, true);
        if (!s) {
            err = MW_ENOMEM;
            break;
        }
        if (s->wall_ms == 0 || w->wm[i] != s->watermark_ms) {
            s->watermark_ms = w->wm[i];
            s->wall_ms = now;
            if (now - s->written_ms >= SEEN_WRITE_MS)
                s->dirty = true;
        }
        unsigned widths = mw_alert_config_widths(&a->ac, model);
        for (int res = 0; !err && res < 2; res++) {
            if (!(widths & (1u << res)))
                continue;
            int64_t delays[MW_ALERT_MAX_DELAYS];
            size_t n_delays = mw_alert_config_delays(&a->ac, model, (enum mw_resolution)res,
                                                     delays, MW_ALERT_MAX_DELAYS);
            for (size_t d = 0; !err && d < n_delays; d++)
                err = plan_cursor(a, model, res, delays[d], w->wm[i]);
        }
    }
    watermarks_free(w);
    if (err) {
        lose_leadership(a, "out of memory");
        return;
    }
    run_next_task(a);
}

static void on_models(redisReply *reply, void *arg)
{
    struct op *op = arg;
    struct mw_alerting *a = op->a;
    if (!current(op) || !a->leader) {
        mw_free(op);
        return;
    }
    mw_free(op);
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        a->phase = PHASE_IDLE;
        return;
    }
    struct watermarks *w = mw_calloc(1, sizeof *w);
    size_t n = reply->elements;
    struct mw_redis_cmd *cmds = mw_calloc(n + 1, sizeof *cmds);
    int rc = w && cmds ? 0 : MW_ENOMEM;
    if (!rc) {
        w->op = (struct op){a, a->epoch};
        w->models = mw_calloc(n + 1, sizeof *w->models);
        w->wm = mw_calloc(n + 1, sizeof *w->wm);
        w->has = mw_calloc(n + 1, sizeof *w->has);
        rc = w->models && w->wm && w->has ? 0 : MW_ENOMEM;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        const redisReply *e = reply->element[i];
        char key[MW_SCHEMA_KEY_MAX];
        if (!e->str || mw_schema_watermark_key(key, sizeof key, e->str) != 0)
            continue;
        mw_redis_cmd_init(&cmds[w->n]);
        if (!(w->models[w->n] = mw_strdup(e->str)) || mw_redis_cmd_add(&cmds[w->n], "GET") ||
            mw_redis_cmd_add(&cmds[w->n], key)) {
            mw_redis_cmd_free(&cmds[w->n]);
            mw_free(w->models[w->n]);
            rc = MW_ENOMEM;
            break;
        }
        w->n++;
    }
    if (!rc && w->n == 0) {
        for (size_t i = 0; i < n; i++)
            mw_redis_cmd_free(&cmds[i]);
        mw_free(cmds);
        watermarks_free(w);
        finish_pass(a);
        return;
    }
    if (!rc)
        rc = mw_store_exec_each(a->store, cmds, w->n, on_watermark_each, on_watermarks, w);
    for (size_t i = 0; cmds && i < n; i++)
        mw_redis_cmd_free(&cmds[i]);
    mw_free(cmds);
    if (rc) {
        if (w)
            watermarks_free(w);
        a->phase = PHASE_IDLE;
    }
}

static void start_pass(struct mw_alerting *a)
{
    if (!a->leader || a->phase != PHASE_IDLE || a->shut_down)
        return;
    struct op *op = new_op(a);
    const char *argv[] = {"SMEMBERS", MW_SCHEMA_MODELS_KEY};
    if (!op)
        return;
    a->phase = PHASE_PASS;
    if (mw_store_commandv(a->store, on_models, op, 2, argv) != 0) {
        mw_free(op);
        a->phase = PHASE_IDLE;
    }
}

static void on_tick(uv_timer_t *t)
{
    struct mw_alerting *a = t->data;
    if (a->leader && a->phase == PHASE_IDLE && a->ac.rules.n)
        start_pass(a);
}

/* ---- restore --------------------------------------------------------------------------------- */

struct restore {
    struct op op;
    int failed;
};

static void restore_rules(struct mw_alerting *a, const redisReply *reply)
{
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *v = reply->element[i + 1];
        struct mw_alert_inst *inst = NULL;
        if (!v->str || mw_alert_inst_decode(v->str, v->len, &inst) != 0) {
            MW_LOG_WARN(COMP, "unreadable alert state skipped", "field_bytes=%zu",
                        reply->element[i]->len);
            continue;
        }
        mw_evaluator_adopt(a->ev, inst);
    }
}

static void restore_cursors(struct mw_alerting *a, const redisReply *reply)
{
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *f = reply->element[i], *v = reply->element[i + 1];
        char kind, model[MW_SCHEMA_KEY_MAX];
        int64_t width = 0, delay = 0;
        if (!f->str || !v->str ||
            mw_schema_alert_cursors_field_parse(f->str, &kind, &width, &delay, model,
                                                sizeof model) != 0)
            continue;
        if (kind == 'c') {
            struct cursor *c = cursor_get(a, model, width, delay, true);
            if (c)
                c->start_ms = strtoll(v->str, NULL, 10);
        } else {
            struct seen *s = seen_get(a, model, true);
            long long wm = 0, wall = 0;
            if (s && sscanf(v->str, "%lld %lld", &wm, &wall) == 2) {
                s->watermark_ms = wm;
                s->wall_ms = s->written_ms = wall;
            }
        }
    }
}

static void restore_nlog(struct mw_alerting *a, const redisReply *reply, struct mw_alert_write *gc)
{
    int64_t now = mw_clock_wall_ms();
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *f = reply->element[i], *v = reply->element[i + 1];
        struct mw_nlog_entry *e = NULL;
        if (!f->str || !v->str || mw_nlog_entry_decode(f->str, v->str, v->len, &e) != 0)
            continue;
        bool quiet = !e->has_delivered || e->delivered_status == MW_NOTIFY_RESOLVED;
        if (quiet && now - e->last_at_ms > a->cfg->alerting.retention_ms) {
            mw_alert_write_hdel(gc, MW_ALERT_KEY_NLOG, f->str);
            mw_nlog_entry_free(e);
            continue;
        }
        if (nlog_add(a, e) != 0)
            mw_nlog_entry_free(e);
    }
}

/* The longest group_wait of the routes an alert with `labels` takes. */
static int64_t group_wait_of(const struct mw_route *root, const struct mw_labels *labels)
{
    const struct mw_route *routes[MW_ROUTE_MAX_MATCHES];
    size_t n = mw_route_match(root, labels, routes, MW_ROUTE_MAX_MATCHES);
    int64_t longest = 0;
    for (size_t i = 0; i < n; i++)
        if (routes[i]->group_wait_ms > longest)
            longest = routes[i]->group_wait_ms;
    return longest;
}

static bool delivered_firing(const struct mw_alerting *a, const struct mw_labels *labels)
{
    for (size_t i = 0; i < a->n_nlog; i++) {
        const struct mw_nlog_entry *e = a->nlog_list[i];
        if (!e->has_delivered || e->delivered_status != MW_NOTIFY_FIRING)
            continue;
        for (size_t j = 0; j < e->n_delivered; j++)
            if (mw_labels_equal(&e->delivered[j].labels, labels))
                return true;
    }
    return false;
}

/* Rebuild the dispatcher from the log and the states (alerting.h, "restore"). */
static void rebuild_dispatch(struct mw_alerting *a)
{
    if (!a->ac.route)
        return;
    if (mw_dispatch_create(a->ac.route, &a->ac.inhibitor, &a->dispatch) != 0) {
        lose_leadership(a, "out of memory");
        return;
    }
    int64_t now = mw_clock_wall_ms();
    /* 1. What the receivers were last told is firing, as notified back then. */
    for (size_t i = 0; i < a->n_nlog; i++) {
        const struct mw_nlog_entry *e = a->nlog_list[i];
        if (!e->has_delivered || e->delivered_status != MW_NOTIFY_FIRING)
            continue;
        int64_t when = e->delivered_at_ms < now ? e->delivered_at_ms : now;
        for (size_t j = 0; j < e->n_delivered; j++) {
            const struct mw_nlog_alert *d = &e->delivered[j];
            struct mw_alert al = {.labels = d->labels,
                                  .annotations = d->annotations,
                                  .starts_at_ms = d->starts_at_ms};
            put_alert(a, &al, when - group_wait_of(a->ac.route, &d->labels));
        }
    }
    struct mw_notifications ns = {0};
    mw_dispatch_advance(a->dispatch, now, &a->silences, &ns);
    for (size_t i = 0; i < ns.n; i++)
        handle_notification(a, &ns.items[i], now); /* the log recognises them: none is sent */
    mw_notifications_free(&ns);
    /* 2. What fires now; 3. what was delivered firing and is no longer. */
    for (size_t i = 0; i < mw_evaluator_count(a->ev); i++) {
        const struct mw_alert_inst *inst = mw_evaluator_at(a->ev, i);
        if (!inst->labels.n)
            continue;
        bool firing = inst->st.state == MW_ALERT_FIRING && inst->rule;
        if (firing || delivered_firing(a, &inst->labels)) {
            struct mw_alert al = alert_of(inst, !firing, now);
            put_alert(a, &al, now);
        }
    }
    for (size_t i = 0; i < a->n_nlog; i++) {
        const struct mw_nlog_entry *e = a->nlog_list[i];
        if (!e->has_delivered || e->delivered_status != MW_NOTIFY_FIRING)
            continue;
        for (size_t j = 0; j < e->n_delivered; j++) {
            const struct mw_nlog_alert *d = &e->delivered[j];
            if (mw_evaluator_find_fingerprint(a->ev, mw_labels_hash(&d->labels), &d->labels))
                continue;
            struct mw_alert al = {.labels = d->labels,
                                  .annotations = d->annotations,
                                  .starts_at_ms = d->starts_at_ms,
                                  .ends_at_ms = now};
            put_alert(a, &al, now);
        }
    }
}

static void on_restored(int rc, void *arg)
{
    struct restore *r = arg;
    struct mw_alerting *a = r->op.a;
    if (!current(&r->op) || !a->leader) {
        mw_free(r);
        return;
    }
    if (rc || r->failed) {
        mw_free(r);
        lose_leadership(a, "Redis unavailable while restoring the alerting state");
        return;
    }
    mw_free(r);
    /* Instances whose rule is gone: resolve what they paged, then forget them. */
    struct mw_alert_write gc;
    if (mw_alert_write_init(&gc, a->holder) != 0) {
        lose_leadership(a, "out of memory");
        return;
    }
    for (size_t i = 0; i < mw_evaluator_count(a->ev); i++) {
        struct mw_alert_inst *inst = mw_evaluator_at(a->ev, i);
        if (!inst->rule) {
            inst->removed = true;
            inst->dirty = true;
        }
    }
    a->phase = PHASE_IDLE;
    rebuild_dispatch(a);
    if (!a->leader) {
        mw_alert_write_free(&gc);
        return;
    }
    add_dirty_instances(a, &gc);
    mw_evaluator_gc(a->ev, true);
    if (gc.n_ops)
        send_write(a, &gc, NULL, NULL);
    else
        mw_alert_write_free(&gc);
    MW_LOG_INFO(COMP, "alerting state restored",
                "instances=%zu groups=%zu notification_log=%zu "
                "silences=%zu",
                mw_evaluator_count(a->ev), mw_dispatch_n_groups(a->dispatch), a->n_nlog,
                a->silences.n);
    schedule_dispatch(a);
    start_pass(a);
}

static void on_restore_each(size_t i, const redisReply *reply, void *arg)
{
    struct restore *r = arg;
    struct mw_alerting *a = r->op.a;
    if (!current(&r->op))
        return;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        r->failed = 1;
        return;
    }
    if (i == 0) {
        restore_rules(a, reply);
    } else if (i == 1) {
        restore_cursors(a, reply);
    } else if (i == 2) {
        struct mw_alert_write gc;
        if (mw_alert_write_init(&gc, a->holder) == 0) {
            restore_nlog(a, reply, &gc);
            if (gc.n_ops)
                send_write(a, &gc, NULL, NULL);
            else
                mw_alert_write_free(&gc);
        }
    } else if (i == 3) {
        for (size_t k = 0; k + 1 < reply->elements; k += 2) {
            struct mw_silence s;
            char why[200];
            const redisReply *v = reply->element[k + 1];
            if (v->str && mw_silence_decode(v->str, v->len, &s, why, sizeof why) == 0 &&
                mw_silences_add(&a->silences, &s) != 0)
                mw_silence_free(&s);
        }
    }
}

static void start_restore(struct mw_alerting *a)
{
    clear_state(a, true);
    a->phase = PHASE_RESTORING;
    uv_timer_stop(&a->dispatch_timer);
    static const char *const keys[] = {MW_SCHEMA_ALERT_RULES_KEY, MW_SCHEMA_ALERT_CURSORS_KEY,
                                       MW_SCHEMA_ALERT_NLOG_KEY, MW_SCHEMA_ALERT_SILENCES_KEY};
    struct mw_redis_cmd cmds[4];
    int rc = 0;
    for (size_t i = 0; i < 4; i++) {
        mw_redis_cmd_init(&cmds[i]);
        rc |= mw_redis_cmd_add(&cmds[i], "HGETALL");
        rc |= mw_redis_cmd_add(&cmds[i], keys[i]);
    }
    struct restore *r = mw_calloc(1, sizeof *r);
    if (!r)
        rc = MW_ENOMEM;
    if (!rc) {
        r->op = (struct op){a, a->epoch};
        rc = mw_store_exec_each(a->store, cmds, 4, on_restore_each, on_restored, r);
    }
    for (size_t i = 0; i < 4; i++)
        mw_redis_cmd_free(&cmds[i]);
    if (rc) {
        mw_free(r);
        lose_leadership(a, "Redis unavailable while restoring the alerting state");
    }
}

/* ---- /metrics -------------------------------------------------------------------------------- */

static void collect(struct mw_prom_writer *w, void *arg)
{
    struct mw_alerting *a = arg;
    static const char *const state_labels[] = {"alertname", "rule",     "model", "version",
                                               "feature",   "severity", NULL};
    mw_prom_write_family(w, "modelwatch_alert_state",
                         "State of each alert instance on the replica that evaluates: 0 "
                         "inactive, 1 pending, 2 firing, 3 resolved",
                         MW_PROM_GAUGE);
    for (size_t i = 0; a->leader && i < mw_evaluator_count(a->ev); i++) {
        const struct mw_alert_inst *inst = mw_evaluator_at(a->ev, i);
        if (!inst->labels.n || inst->removed)
            continue;
        const char *severity = mw_labels_get(&inst->labels, "severity");
        const char *values[] = {mw_labels_get(&inst->labels, "alertname"),
                                inst->rule_id,
                                inst->model,
                                inst->version,
                                inst->feature ? inst->feature : "",
                                severity ? severity : "",
                                NULL};
        mw_prom_write_sample(w, "modelwatch_alert_state", state_labels, values,
                             (double)inst->st.state);
    }
    mw_prom_write_family(w, "modelwatch_alerting_leader",
                         "1 on the replica that holds the alerting lease (evaluates and delivers)",
                         MW_PROM_GAUGE);
    mw_prom_write_sample(w, "modelwatch_alerting_leader", NULL, NULL, a->leader ? 1 : 0);
    const struct {
        const char *name, *help;
        uint64_t v;
    } counters[] = {
        {"modelwatch_alert_windows_evaluated_total", "Final windows the rules were evaluated on",
         a->windows_evaluated},
        {"modelwatch_alert_pages_total", "Alerts that started firing", a->pages},
        {"modelwatch_alert_resolves_total", "Alerts that resolved", a->resolves},
        {"modelwatch_alert_notifications_total", "Notifications submitted to delivery",
         a->notifications_sent},
        {"modelwatch_alert_notifications_suppressed_total",
         "Notifications the log showed were already delivered (after a restart or takeover)",
         a->notifications_suppressed},
        {"modelwatch_alert_lease_acquired_total", "Times this replica took the alerting lease",
         a->lease_acquired},
        {"modelwatch_alert_lease_lost_total", "Times this replica lost the alerting lease",
         a->lease_lost},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        mw_prom_write_family(w, counters[i].name, counters[i].help, MW_PROM_COUNTER);
        mw_prom_write_sample(w, counters[i].name, NULL, NULL, (double)counters[i].v);
    }
    if (!a->delivery)
        return;
    static const char *const recv_label[] = {"receiver", NULL};
    const struct {
        const char *name, *help;
        size_t off;
        enum mw_prom_type type;
    } dc[] = {
        {"modelwatch_alert_delivery_submitted_total", "Notifications queued for a receiver",
         offsetof(struct mw_delivery_counters, submitted), MW_PROM_COUNTER},
        {"modelwatch_alert_delivery_delivered_total", "Notifications a receiver accepted",
         offsetof(struct mw_delivery_counters, delivered), MW_PROM_COUNTER},
        {"modelwatch_alert_delivery_failed_total",
         "Notifications rejected, or out of attempts or time",
         offsetof(struct mw_delivery_counters, failed), MW_PROM_COUNTER},
        {"modelwatch_alert_delivery_retries_total", "Delivery attempts after the first",
         offsetof(struct mw_delivery_counters, retried), MW_PROM_COUNTER},
        {"modelwatch_alert_delivery_dropped_total",
         "Notifications dropped: queue full, or shut down before delivery",
         offsetof(struct mw_delivery_counters, dropped), MW_PROM_COUNTER},
        {"modelwatch_alert_delivery_superseded_total",
         "Notifications replaced by a newer one of their group before any attempt",
         offsetof(struct mw_delivery_counters, superseded), MW_PROM_COUNTER},
        {"modelwatch_alert_delivery_queued", "Notifications waiting, retrying or in flight",
         offsetof(struct mw_delivery_counters, queued), MW_PROM_GAUGE},
    };
    for (size_t k = 0; k < sizeof dc / sizeof dc[0]; k++) {
        mw_prom_write_family(w, dc[k].name, dc[k].help, dc[k].type);
        for (size_t i = 0; i < mw_delivery_n_receivers(a->delivery); i++) {
            struct mw_delivery_counters c;
            if (mw_delivery_counters(a->delivery, i, &c) != 0)
                continue;
            const char *values[] = {mw_delivery_receiver_name(a->delivery, i), NULL};
            uint64_t v;
            memcpy(&v, (const char *)&c + dc[k].off, sizeof v);
            mw_prom_write_sample(w, dc[k].name, recv_label, values, (double)v);
        }
    }
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void set_urls(struct mw_alerting *a, const struct mw_aggregator_config *cfg)
{
    snprintf(a->runbook_base, sizeof a->runbook_base, "%s",
             cfg->alerting.runbook_base_url ? cfg->alerting.runbook_base_url : "");
    if (cfg->alerting.external_url && *cfg->alerting.external_url)
        snprintf(a->external_url, sizeof a->external_url, "%s", cfg->alerting.external_url);
    else
        snprintf(a->external_url, sizeof a->external_url, "http://%s:%lld", cfg->http.host,
                 (long long)cfg->http.port);
    size_t len = strlen(a->external_url);
    while (len > 0 && a->external_url[len - 1] == '/')
        a->external_url[--len] = '\0';
}

static void make_holder_id(struct mw_alerting *a)
{
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    uint64_t salt =
        mw_hash_mix(mw_clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)mw_clock_wall_ms());
    snprintf(a->holder, sizeof a->holder, "%s:%d:%016" PRIx64, host, (int)getpid(), salt);
}

int mw_alerting_create(uv_loop_t *loop, const struct mw_aggregator_config *cfg,
                       struct mw_store *store, struct mw_http_server *http,
                       struct mw_prom_registry *metrics, struct mw_alerting **out)
{
    struct mw_alerting *a = mw_calloc(1, sizeof *a);
    if (!a)
        return MW_ENOMEM;
    a->loop = loop;
    a->cfg = cfg;
    a->store = store;
    mw_table_init(&a->cursors, cursor_equal);
    mw_table_init(&a->seens, seen_equal);
    mw_table_init(&a->nlog, nlog_equal);
    make_holder_id(a);
    set_urls(a, cfg);
    struct mw_cfg_error err;
    int rc = mw_alert_config_compile(cfg, NULL, false, &a->ac, &err);
    if (rc) {
        MW_LOG_ERROR(COMP, "alerting configuration refused", "error=\"%s\"", err.message);
        mw_free(a);
        return rc;
    }
    clear_state(a, true);
    if (!a->ev) {
        mw_alert_config_free(&a->ac);
        mw_free(a);
        return MW_ENOMEM;
    }
    if (cfg->receivers.n) {
        char why[512];
        struct mw_delivery_options dopts = {.on_result = on_delivery_result, .arg = a};
        rc = mw_delivery_create(loop, &cfg->receivers, &dopts, &a->delivery, why, sizeof why);
        if (rc) {
            MW_LOG_ERROR(COMP, "receivers refused", "error=\"%s\"", why);
            mw_evaluator_destroy(a->ev);
            mw_alert_config_free(&a->ac);
            mw_free(a);
            return rc;
        }
    }
    rc = mw_store_add_script(store, MW_ALERT_STATE_SCRIPT, MW_ALERT_STATE_SCRIPT_LEN,
                             MW_ALERT_STATE_SCRIPT_SHA1);
    if (!rc)
        rc = mw_alert_api_create(http, cfg, store, a, &a->api);
    if (!rc && metrics)
        rc = mw_prom_add_collector(metrics, collect, a);
    uv_timer_t *timers[] = {&a->lease_timer, &a->tick_timer, &a->dispatch_timer};
    for (size_t i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = a;
        a->n_open_handles++;
    }
    *out = a;
    if (rc) {
        MW_LOG_ERROR(COMP, "cannot start alerting", "error=%s", mw_err_name(rc));
        return rc; /* the caller shuts down and destroys */
    }
    uint64_t renew = (uint64_t)cfg->alerting.lease_ttl_ms / 3;
    uv_timer_start(&a->lease_timer, on_lease_timer, 0, renew ? renew : 1);
    uv_timer_start(&a->tick_timer, on_tick, (uint64_t)cfg->alerting.evaluation_interval_ms,
                   (uint64_t)cfg->alerting.evaluation_interval_ms);
    MW_LOG_INFO(COMP, "started", "rules=%zu receivers=%zu holder=%s", a->ac.rules.n,
                cfg->receivers.n, a->holder);
    return 0;
}

int mw_alerting_reload(struct mw_alerting *a, const struct mw_aggregator_config *fresh,
                       const char *config_path)
{
    struct mw_alert_config ac;
    struct mw_cfg_error err;
    int rc = mw_alert_config_compile(fresh, config_path, false, &ac, &err);
    if (rc) {
        MW_LOG_ERROR(COMP, "reload refused: the old rules stay", "error=\"%s\"", err.message);
        return rc;
    }
    bool was_leader = a->leader;
    if (was_leader) {
        /* Under the new rules, from what Redis holds: the simplest state that is right. */
        a->epoch++;
        a->phase = PHASE_IDLE;
        uv_timer_stop(&a->dispatch_timer);
        mw_dispatch_destroy(a->dispatch);
        a->dispatch = NULL;
    }
    mw_alert_config_free(&a->ac);
    a->ac = ac;
    set_urls(a, fresh);
    if (mw_evaluator_set_urls(a->ev, a->runbook_base, a->external_url) != 0)
        MW_LOG_WARN(COMP, "reload: links keep their old base", "error=%s", mw_err_name(MW_ENOMEM));
    mw_evaluator_set_rules(a->ev, &a->ac.rules);
    MW_LOG_INFO(COMP, "rules reloaded", "rules=%zu file=%s", a->ac.rules.n,
                config_path ? config_path : "");
    if (was_leader)
        start_restore(a);
    return 0;
}

static void ignore_reply(redisReply *reply, void *arg)
{
    (void)reply;
    (void)arg;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct mw_alerting *a = h->data;
    a->n_open_handles--;
}

void mw_alerting_shutdown(struct mw_alerting *a)
{
    if (!a || a->shut_down)
        return;
    a->shut_down = true;
    if (a->leader) {
        struct mw_redis_cmd cmd;
        if (mw_alert_release_cmd(&cmd, a->holder) == 0)
            mw_store_command(a->store, &cmd, ignore_reply, NULL);
        mw_redis_cmd_free(&cmd);
        a->leader = false;
    }
    a->epoch++;
    uv_timer_t *timers[] = {&a->lease_timer, &a->tick_timer, &a->dispatch_timer};
    for (size_t i = 0; i < 3; i++) {
        if (!uv_is_closing((uv_handle_t *)timers[i])) {
            uv_timer_stop(timers[i]);
            uv_close((uv_handle_t *)timers[i], on_handle_closed);
        }
    }
    mw_delivery_shutdown(a->delivery, DELIVERY_GRACE_MS, NULL, NULL);
    a->delivery = NULL;
}

void mw_alerting_destroy(struct mw_alerting *a)
{
    if (!a)
        return;
    clear_state(a, false);
    mw_alert_api_destroy(a->api);
    mw_alert_config_free(&a->ac);
    mw_table_free(&a->cursors);
    mw_table_free(&a->seens);
    mw_table_free(&a->nlog);
    mw_free(a);
}
