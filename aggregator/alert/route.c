/*
 * route.c — matchers, the routing tree and the aggregation groups (route.h).
 *
 * The dispatcher keeps, per group, the alerts routed to it and a small notification log: the
 * fingerprints of the alerts whose firing was sent and that have not been sent resolved, and
 * when the group last notified. A flush (group_wait after the group appeared, then every
 * group_interval) compares the group's alerts with that log to decide what is due.
 */
#include "route.h"

#include "alloc.h"
#include "error.h"
#include "hash.h"
#include "inhibit.h"
#include "regex_cost.h"
#include "silence.h"
#include "yaml_lines.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* Matchers                                                                                  */

#define MATCHER_VALUE_MAX 1024
/* Most nodes regcomp may build for one matcher's regular expression (regex_cost.h): about a
 * megabyte, for patterns that have no business being larger. */
#define MATCHER_REGEX_MAX_NODES 10000

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int bad(char *why, size_t size, const char *text)
{
    snprintf(why, size, "%s", text);
    return MW_ECONFIG;
}

/* The value at p: "quoted with \" \\ \n escapes" or the unquoted rest, trimmed. */
static int parse_value(const char *p, char *out, size_t size, char *why, size_t why_size)
{
    size_t n = 0;
    if (*p != '"') {
        size_t len = strlen(p);
        while (len && is_blank(p[len - 1]))
            len--;
        if (memchr(p, '"', len))
            return bad(why, why_size, "a value with a quote must be quoted");
        if (*p == '=' || *p == '~')
            return bad(why, why_size, "a value starting with = or ~ must be quoted");
        if (len >= size)
            return bad(why, why_size, "value too long");
        memcpy(out, p, len);
        out[len] = '\0';
        return 0;
    }
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\') {
            p++;
            if (*p == 'n')
                c = '\n';
            else if (*p == '"' || *p == '\\')
                c = *p;
            else
                return bad(why, why_size, "unknown escape in value (use \\\", \\\\ or \\n)");
        }
        if (n + 1 >= size)
            return bad(why, why_size, "value too long");
        out[n++] = c;
    }
    if (*p != '"')
        return bad(why, why_size, "unterminated quoted value");
    for (p++; is_blank(*p); p++)
        ;
    if (*p)
        return bad(why, why_size, "text after the quoted value");
    out[n] = '\0';
    return 0;
}

int mw_matcher_parse(const char *text, struct mw_matcher *out, char *why, size_t why_size)
{
    char name[MW_LABEL_NAME_MAX + 1], value[MATCHER_VALUE_MAX + 1];
    memset(out, 0, sizeof *out);
    const char *p = text ? text : "";
    while (is_blank(*p))
        p++;
    size_t n = 0;
    while (p[n] && (p[n] == '_' || (p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
                    (p[n] >= '0' && p[n] <= '9')))
        n++;
    if (n == 0 || n > MW_LABEL_NAME_MAX)
        return bad(why, why_size,
                   "expected a label name, then =, !=, =~ or !~ and a value, as "
                   "in severity=\"critical\"");
    memcpy(name, p, n);
    name[n] = '\0';
    if (!mw_label_name_valid(name))
        return bad(why, why_size, "invalid label name");
    for (p += n; is_blank(*p); p++)
        ;
    enum mw_match_op op;
    if (!strncmp(p, "=~", 2))
        op = MW_MATCH_RE, p += 2;
    else if (!strncmp(p, "!~", 2))
        op = MW_MATCH_NRE, p += 2;
    else if (!strncmp(p, "!=", 2))
        op = MW_MATCH_NE, p += 2;
    else if (*p == '=')
        op = MW_MATCH_EQ, p += 1;
    else
        return bad(why, why_size, "expected =, !=, =~ or !~ after the label name");
    while (is_blank(*p))
        p++;
    int rc = parse_value(p, value, sizeof value, why, why_size);
    if (rc)
        return rc;
    if (op == MW_MATCH_RE || op == MW_MATCH_NRE) {
        char anchored[MATCHER_VALUE_MAX + 8];
        snprintf(anchored, sizeof anchored, "^(%s)$", value);
        if (mw_regex_cost(anchored, MATCHER_REGEX_MAX_NODES) > MATCHER_REGEX_MAX_NODES) {
            snprintf(why, why_size,
                     "regular expression \"%.64s\" too complex: its repetitions expand past %d "
                     "nodes",
                     value, MATCHER_REGEX_MAX_NODES);
            return MW_ECONFIG;
        }
        int re_rc = regcomp(&out->re, anchored, REG_EXTENDED | REG_NOSUB);
        if (re_rc) {
            char msg[128];
            regerror(re_rc, &out->re, msg, sizeof msg);
            snprintf(why, why_size, "invalid regular expression \"%.64s\": %s", value, msg);
            return MW_ECONFIG;
        }
        out->has_re = true;
    }
    out->op = op;
    out->name = mw_strdup(name);
    out->value = mw_strdup(value);
    if (!out->name || !out->value) {
        mw_matcher_free(out);
        return MW_ENOMEM;
    }
    return 0;
}

void mw_matcher_free(struct mw_matcher *m)
{
    if (!m)
        return;
    if (m->has_re)
        regfree(&m->re);
    mw_free(m->name);
    mw_free(m->value);
    memset(m, 0, sizeof *m);
}

bool mw_matcher_matches(const struct mw_matcher *m, const struct mw_labels *labels)
{
    const char *v = mw_labels_get(labels, m->name);
    if (!v)
        v = "";
    switch (m->op) {
    case MW_MATCH_EQ:
        return !strcmp(v, m->value);
    case MW_MATCH_NE:
        return strcmp(v, m->value) != 0;
    case MW_MATCH_RE:
        return regexec(&m->re, v, 0, NULL, 0) == 0;
    case MW_MATCH_NRE:
        return regexec(&m->re, v, 0, NULL, 0) != 0;
    }
    return false;
}

int mw_matchers_parse(const char *const *texts, size_t n, struct mw_matchers *out, size_t *bad_at,
                      char *why, size_t why_size)
{
    *out = (struct mw_matchers){0};
    if (!n)
        return 0;
    out->items = mw_calloc(n, sizeof *out->items);
    if (!out->items)
        return MW_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int rc = mw_matcher_parse(texts[i], &out->items[i], why, why_size);
        if (rc) {
            *bad_at = i;
            mw_matchers_free(out);
            return rc;
        }
        out->n = i + 1;
    }
    return 0;
}

void mw_matchers_free(struct mw_matchers *ms)
{
    if (!ms)
        return;
    for (size_t i = 0; i < ms->n; i++)
        mw_matcher_free(&ms->items[i]);
    mw_free(ms->items);
    *ms = (struct mw_matchers){0};
}

bool mw_matchers_match(const struct mw_matchers *ms, const struct mw_labels *labels)
{
    for (size_t i = 0; ms && i < ms->n; i++)
        if (!mw_matcher_matches(&ms->items[i], labels))
            return false;
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* The routing tree                                                                          */

const char *mw_route_check_duration(const void *value)
{
    const char *text = *(char *const *)value;
    int64_t ms;
    if (!text || !mw_config_parse_duration_ms(text, &ms))
        return NULL;
    return "invalid duration (use e.g. 0, 30s, 5m, 4h)";
}

const struct mw_cfg_field mw_route_cfg_table[] = {
    MW_ROUTE_CFG_FIELDS("", 0),
    MW_CFG_END,
};

struct builder {
    const char *file;
    const char *text;
    const char *const *receivers;
    struct mw_cfg_error *err;
};

static void route_clear(struct mw_route *r)
{
    for (size_t i = 0; i < r->n_routes; i++)
        route_clear(&r->routes[i]);
    mw_free(r->routes);
    for (size_t i = 0; i < r->n_group_by; i++)
        mw_free(r->group_by[i]);
    mw_free(r->group_by);
    mw_matchers_free(&r->matchers);
    mw_free(r->key);
    mw_free(r->receiver);
    memset(r, 0, sizeof *r);
}

void mw_route_free(struct mw_route *root)
{
    if (!root)
        return;
    route_clear(root);
    mw_free(root);
}

static int nomem(struct builder *b)
{
    snprintf(b->err->message, sizeof b->err->message, "%s: out of memory",
             b->file ? b->file : "<config>");
    return MW_ENOMEM;
}

static int duration(struct builder *b, const char *text, int64_t inherited, const char *key,
                    const char *field, bool positive, int64_t *out)
{
    char where[256];
    *out = inherited;
    if (!text)
        return 0;
    mw_config_parse_duration_ms(text, out); /* checked when loaded */
    snprintf(where, sizeof where, "%s.%s", key, field);
    if (positive && *out <= 0)
        return mw_yaml_lines_fail(b->err, b->file, b->text, where, key, "must be above zero");
    return 0;
}

static bool receiver_known(const struct builder *b, const char *name)
{
    if (!b->receivers)
        return true;
    for (const char *const *r = b->receivers; *r; r++)
        if (!strcmp(*r, name))
            return true;
    return false;
}

static int group_by(struct builder *b, const struct mw_route_cfg *c, const struct mw_route *parent,
                    const char *key, struct mw_route *r)
{
    char where[256];
    const char *const *names = (const char *const *)c->group_by.items;
    size_t n = c->group_by.n;
    if (!n && parent) { /* inherit */
        r->group_by_all = parent->group_by_all;
        names = (const char *const *)parent->group_by;
        n = parent->n_group_by;
    }
    if (n && !(r->group_by = mw_calloc(n, sizeof *r->group_by)))
        return nomem(b);
    for (size_t i = 0; i < n; i++) {
        snprintf(where, sizeof where, "%s.group_by[%zu]", key, i);
        if (!strcmp(names[i], "...")) {
            r->group_by_all = true;
            continue;
        }
        if (!mw_label_name_valid(names[i]))
            return mw_yaml_lines_fail(b->err, b->file, b->text, where, key,
                                      "invalid label name \"%.64s\" (or \"...\" for all)",
                                      names[i]);
        if (!(r->group_by[r->n_group_by++] = mw_strdup(names[i])))
            return nomem(b);
    }
    return 0;
}

static int build_route(struct builder *b, const struct mw_route_cfg *c,
                       const struct mw_route *parent, const char *key, int depth,
                       struct mw_route *r)
{
    char where[256];
    size_t bad_at;
    char why[256];
    int rc;
    if (depth > MW_ROUTE_MAX_DEPTH)
        return mw_yaml_lines_fail(b->err, b->file, b->text, key, NULL,
                                  "routes nested deeper than %d", MW_ROUTE_MAX_DEPTH);
    if (!(r->key = mw_strdup(key)))
        return nomem(b);
    const char *receiver = c->receiver ? c->receiver : parent ? parent->receiver : NULL;
    snprintf(where, sizeof where, "%s.receiver", key);
    if (!receiver || !*receiver)
        return mw_yaml_lines_fail(b->err, b->file, b->text, where, key,
                                  "required key missing at the root");
    if (!receiver_known(b, receiver))
        return mw_yaml_lines_fail(b->err, b->file, b->text, where, key,
                                  "no receiver named \"%.64s\"", receiver);
    if (!(r->receiver = mw_strdup(receiver)))
        return nomem(b);
    if (!parent && c->matchers.n) {
        snprintf(where, sizeof where, "%s.matchers", key);
        return mw_yaml_lines_fail(b->err, b->file, b->text, where, key,
                                  "the root route takes every alert: no matchers");
    }
    rc = mw_matchers_parse((const char *const *)c->matchers.items, c->matchers.n, &r->matchers,
                           &bad_at, why, sizeof why);
    if (rc == MW_ECONFIG) {
        snprintf(where, sizeof where, "%s.matchers[%zu]", key, bad_at);
        return mw_yaml_lines_fail(b->err, b->file, b->text, where, key, "%s", why);
    }
    if (rc)
        return nomem(b);
    if ((rc = group_by(b, c, parent, key, r)))
        return rc;
    rc = duration(b, c->group_wait, parent ? parent->group_wait_ms : MW_ROUTE_DEFAULT_GROUP_WAIT_MS,
                  key, "group_wait", false, &r->group_wait_ms);
    if (!rc)
        rc = duration(b, c->group_interval,
                      parent ? parent->group_interval_ms : MW_ROUTE_DEFAULT_GROUP_INTERVAL_MS, key,
                      "group_interval", true, &r->group_interval_ms);
    if (!rc)
        rc = duration(b, c->repeat_interval,
                      parent ? parent->repeat_interval_ms : MW_ROUTE_DEFAULT_REPEAT_INTERVAL_MS,
                      key, "repeat_interval", true, &r->repeat_interval_ms);
    if (rc)
        return rc;
    r->continue_matching = c->continue_matching;
    if (!parent && c->continue_matching) {
        snprintf(where, sizeof where, "%s.continue", key);
        return mw_yaml_lines_fail(b->err, b->file, b->text, where, key,
                                  "the root route has no siblings to continue to");
    }
    if (c->routes.n && !(r->routes = mw_calloc(c->routes.n, sizeof *r->routes)))
        return nomem(b);
    const struct mw_route_cfg *kids = c->routes.items;
    for (size_t i = 0; i < c->routes.n; i++) {
        char child[256];
        snprintf(child, sizeof child, "%s.routes[%zu]", key, i);
        r->n_routes = i + 1;
        if ((rc = build_route(b, &kids[i], r, child, depth + 1, &r->routes[i])))
            return rc;
    }
    return 0;
}

int mw_route_build(const struct mw_route_cfg *cfg, const char *key, const char *file,
                   const char *text, const char *const *receivers, struct mw_route **out,
                   struct mw_cfg_error *err)
{
    struct builder b = {.file = file, .text = text, .receivers = receivers, .err = err};
    *out = mw_calloc(1, sizeof **out);
    if (!*out)
        return nomem(&b);
    int rc = build_route(&b, cfg, NULL, key ? key : "route", 0, *out);
    if (rc) {
        mw_route_free(*out);
        *out = NULL;
    }
    return rc;
}

/* Collect the routes that take `labels` below matching route `r`. */
static void match_below(const struct mw_route *r, const struct mw_labels *labels,
                        const struct mw_route **out, size_t max, size_t *n)
{
    bool taken = false;
    for (size_t i = 0; i < r->n_routes; i++) {
        const struct mw_route *kid = &r->routes[i];
        if (!mw_matchers_match(&kid->matchers, labels))
            continue;
        match_below(kid, labels, out, max, n);
        taken = true;
        if (!kid->continue_matching)
            break;
    }
    if (!taken && *n < max)
        out[(*n)++] = r;
}

size_t mw_route_match(const struct mw_route *root, const struct mw_labels *labels,
                      const struct mw_route **out, size_t max)
{
    size_t n = 0;
    if (root)
        match_below(root, labels, out, max, &n);
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Aggregation groups                                                                        */

struct entry {
    struct mw_alert alert;
    uint64_t fingerprint;
};

struct group {
    char *key;
    uint64_t key_hash;
    const struct mw_route *route;
    struct mw_labels group_labels;
    size_t n, cap;
    struct entry *alerts;
    size_t n_notified;
    uint64_t *notified; /* firing sent, resolve not yet sent */
    int64_t next_flush_ms;
    bool flushed_now; /* during mw_dispatch_advance: a timer of it ran */
    bool has_notified;
    int64_t last_notify_ms;
};

struct mw_dispatch {
    const struct mw_route *root;
    const struct mw_inhibitor *inhibitor;
    size_t n, cap;
    struct group **groups; /* in creation order */
};

void mw_alert_free(struct mw_alert *a)
{
    if (!a)
        return;
    mw_labels_free(&a->labels);
    mw_labels_free(&a->annotations);
}

static int alert_copy(struct mw_alert *dst, const struct mw_alert *src)
{
    *dst = (struct mw_alert){.starts_at_ms = src->starts_at_ms, .ends_at_ms = src->ends_at_ms};
    if (mw_labels_copy(&dst->labels, &src->labels) ||
        mw_labels_copy(&dst->annotations, &src->annotations)) {
        mw_alert_free(dst);
        return MW_ENOMEM;
    }
    return 0;
}

static void notification_free(struct mw_notification *n)
{
    for (size_t i = 0; i < n->n_firing; i++)
        mw_alert_free(&n->firing[i]);
    for (size_t i = 0; i < n->n_resolved; i++)
        mw_alert_free(&n->resolved[i]);
    mw_free(n->firing);
    mw_free(n->resolved);
    mw_free(n->group_key);
    mw_labels_free(&n->group_labels);
}

void mw_notifications_free(struct mw_notifications *ns)
{
    if (!ns)
        return;
    for (size_t i = 0; i < ns->n; i++)
        notification_free(&ns->items[i]);
    mw_free(ns->items);
    *ns = (struct mw_notifications){0};
}

static void group_free(struct group *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        mw_alert_free(&g->alerts[i].alert);
    mw_free(g->alerts);
    mw_free(g->notified);
    mw_labels_free(&g->group_labels);
    mw_free(g->key);
    mw_free(g);
}

int mw_dispatch_create(const struct mw_route *root, const struct mw_inhibitor *inhibitor,
                       struct mw_dispatch **out)
{
    *out = mw_calloc(1, sizeof **out);
    if (!*out)
        return MW_ENOMEM;
    (*out)->root = root;
    (*out)->inhibitor = inhibitor;
    return 0;
}

void mw_dispatch_destroy(struct mw_dispatch *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        group_free(d->groups[i]);
    mw_free(d->groups);
    mw_free(d);
}

size_t mw_dispatch_n_groups(const struct mw_dispatch *d)
{
    return d ? d->n : 0;
}

int64_t mw_dispatch_next_ms(const struct mw_dispatch *d)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; d && i < d->n; i++)
        if (d->groups[i]->next_flush_ms < next)
            next = d->groups[i]->next_flush_ms;
    return next;
}

/* The group labels of `labels` under route `r`, and the group key: route key + labels. */
static int group_identity(const struct mw_route *r, const struct mw_labels *labels,
                          struct mw_labels *group_labels, struct mw_buf *key)
{
    int rc = 0;
    if (r->group_by_all)
        rc = mw_labels_copy(group_labels, labels);
    for (size_t i = 0; !rc && !r->group_by_all && i < r->n_group_by; i++) {
        const char *v = mw_labels_get(labels, r->group_by[i]);
        if (v)
            rc = mw_labels_set(group_labels, r->group_by[i], v);
    }
    if (!rc)
        rc = mw_buf_printf(key, "%s{", r->key);
    for (size_t i = 0; !rc && i < group_labels->n; i++)
        rc = mw_buf_printf(key, "%s%s=\"%s\"", i ? "," : "", group_labels->items[i].name,
                           group_labels->items[i].value);
    if (!rc)
        rc = mw_buf_append_str(key, "}");
    return rc;
}

static struct group *find_group(const struct mw_dispatch *d, uint64_t h, const char *key)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->groups[i]->key_hash == h && !strcmp(d->groups[i]->key, key))
            return d->groups[i];
    return NULL;
}

static int new_group(struct mw_dispatch *d, const struct mw_route *r, struct mw_labels *labels,
                     struct mw_buf *key, int64_t now_ms, struct group **out)
{
    if (d->n >= MW_DISPATCH_MAX_GROUPS)
        return MW_EFULL;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        struct group **groups = mw_realloc(d->groups, cap * sizeof *groups);
        if (!groups)
            return MW_ENOMEM;
        d->groups = groups;
        d->cap = cap;
    }
    struct group *g = mw_calloc(1, sizeof *g);
    if (!g)
        return MW_ENOMEM;
    g->route = r;
    g->key_hash = mw_hash_str(MW_HASH_INIT, key->data);
    g->key = mw_buf_detach(key, NULL);
    g->group_labels = *labels;
    *labels = (struct mw_labels){0};
    g->next_flush_ms = now_ms + r->group_wait_ms;
    d->groups[d->n++] = g;
    *out = g;
    return 0;
}

static int group_put(struct group *g, const struct mw_alert *alert, uint64_t fp)
{
    struct mw_alert copy;
    for (size_t i = 0; i < g->n; i++) {
        if (g->alerts[i].fingerprint == fp &&
            mw_labels_equal(&g->alerts[i].alert.labels, &alert->labels)) {
            if (alert_copy(&copy, alert))
                return MW_ENOMEM;
            mw_alert_free(&g->alerts[i].alert);
            g->alerts[i].alert = copy;
            return 0;
        }
    }
    if (g->n >= MW_DISPATCH_MAX_ALERTS_PER_GROUP)
        return MW_EFULL;
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 8;
        struct entry *alerts = mw_realloc(g->alerts, cap * sizeof *alerts);
        if (!alerts)
            return MW_ENOMEM;
        g->alerts = alerts;
        g->cap = cap;
    }
    if (alert_copy(&g->alerts[g->n].alert, alert))
        return MW_ENOMEM;
    g->alerts[g->n++].fingerprint = fp;
    return 0;
}

int mw_dispatch_put(struct mw_dispatch *d, const struct mw_alert *alert, int64_t now_ms)
{
    const struct mw_route *routes[MW_ROUTE_MAX_MATCHES];
    size_t n = mw_route_match(d->root, &alert->labels, routes, MW_ROUTE_MAX_MATCHES);
    uint64_t fp = mw_labels_hash(&alert->labels);
    int rc = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        struct mw_labels group_labels = {0};
        struct mw_buf key;
        struct group *g;
        mw_buf_init(&key, 64 * 1024);
        rc = group_identity(routes[i], &alert->labels, &group_labels, &key);
        if (rc == MW_EFULL)
            rc = MW_ENOMEM; /* a key beyond 64 KiB: labels are bounded well below */
        g = rc ? NULL : find_group(d, mw_hash_str(MW_HASH_INIT, key.data), key.data);
        if (!rc && !g && alert->ends_at_ms == 0)
            rc = new_group(d, routes[i], &group_labels, &key, now_ms, &g);
        if (!rc && g)
            rc = group_put(g, alert, fp);
        mw_labels_free(&group_labels);
        mw_buf_free(&key);
    }
    return rc;
}

static bool was_notified(const struct group *g, uint64_t fp)
{
    for (size_t i = 0; i < g->n_notified; i++)
        if (g->notified[i] == fp)
            return true;
    return false;
}

/* Every firing alert the dispatcher holds, for inhibition (pointers into the groups). */
static int firing_alerts(const struct mw_dispatch *d, const struct mw_labels ***out, size_t *n)
{
    size_t total = 0;
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < d->n; i++)
        total += d->groups[i]->n;
    if (!total || !d->inhibitor || !d->inhibitor->n)
        return 0;
    *out = mw_calloc(total, sizeof **out);
    if (!*out)
        return MW_ENOMEM;
    for (size_t i = 0; i < d->n; i++)
        for (size_t j = 0; j < d->groups[i]->n; j++)
            if (d->groups[i]->alerts[j].alert.ends_at_ms == 0)
                (*out)[(*n)++] = &d->groups[i]->alerts[j].alert.labels;
    return 0;
}

struct flush_ctx {
    const struct mw_dispatch *d;
    const struct mw_silences *silences;
    const struct mw_labels **firing;
    size_t n_firing;
};

static bool muted(const struct flush_ctx *fc, const struct mw_labels *labels, int64_t at_ms)
{
    if (mw_silences_match(fc->silences, labels, at_ms))
        return true;
    return fc->d->inhibitor && mw_inhibited(fc->d->inhibitor, labels, fc->firing, fc->n_firing);
}

static int append_alert(struct mw_alert **list, size_t *n, const struct mw_alert *a)
{
    struct mw_alert *grown = mw_realloc(*list, (*n + 1) * sizeof *grown);
    if (!grown)
        return MW_ENOMEM;
    *list = grown;
    if (alert_copy(&grown[*n], a))
        return MW_ENOMEM;
    (*n)++;
    return 0;
}

static int add_notification(struct mw_notifications *out, struct mw_notification *n)
{
    struct mw_notification *items = mw_realloc(out->items, (out->n + 1) * sizeof *items);
    if (!items)
        return MW_ENOMEM;
    out->items = items;
    items[out->n++] = *n;
    return 0;
}

/*
 * One timer of group g at at_ms: decide what is due, emit it, update the log. The log becomes
 * the firing alerts just sent plus those paged earlier and muted now, so that their resolves
 * are still delivered. Resolved alerts stay in the group (not in the log, so never sent
 * twice) until prune(): the inhibition sources point into the groups' arrays meanwhile.
 */
static int flush(const struct flush_ctx *fc, struct group *g, int64_t at_ms,
                 struct mw_notifications *out)
{
    struct mw_notification n = {.route = g->route, .receiver = g->route->receiver, .at_ms = at_ms};
    uint64_t *log = g->n ? mw_calloc(g->n, sizeof *log) : NULL;
    size_t n_log = 0;
    bool changed = false;
    int rc = g->n && !log ? MW_ENOMEM : 0;
    for (size_t i = 0; !rc && i < g->n; i++) {
        const struct entry *e = &g->alerts[i];
        bool notified = was_notified(g, e->fingerprint);
        if (e->alert.ends_at_ms != 0) {
            if (notified) {
                rc = append_alert(&n.resolved, &n.n_resolved, &e->alert);
                changed = true;
            }
        } else if (muted(fc, &e->alert.labels, at_ms)) {
            if (notified) {
                log[n_log++] = e->fingerprint;
                n.n_held++;
            }
        } else {
            rc = append_alert(&n.firing, &n.n_firing, &e->alert);
            log[n_log++] = e->fingerprint;
            changed |= !notified;
        }
    }
    bool repeat = !changed && n.n_firing && g->has_notified &&
                  at_ms - g->last_notify_ms >= g->route->repeat_interval_ms;
    if (!rc && (changed || repeat)) {
        n.repeat = repeat;
        n.group_key = mw_strdup(g->key);
        if (!n.group_key || mw_labels_copy(&n.group_labels, &g->group_labels))
            rc = MW_ENOMEM;
        if (!rc)
            rc = add_notification(out, &n);
        if (!rc) {
            n = (struct mw_notification){0}; /* now out's */
            g->has_notified = true;
            g->last_notify_ms = at_ms;
        }
    }
    if (!rc) {
        /* The log is now the firing alerts whose firing was sent, this time or before (when
         * nothing was sent, that is the old log less the alerts that resolved). */
        mw_free(g->notified);
        g->notified = log;
        g->n_notified = n_log;
        log = NULL;
    }
    notification_free(&n);
    mw_free(log);
    return rc;
}

/* Drop the resolved alerts of a group that has flushed since they resolved. */
static void prune(struct group *g)
{
    size_t kept = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->alerts[i].alert.ends_at_ms != 0)
            mw_alert_free(&g->alerts[i].alert);
        else
            g->alerts[kept++] = g->alerts[i];
    }
    g->n = kept;
}

int mw_dispatch_advance(struct mw_dispatch *d, int64_t now_ms, const struct mw_silences *silences,
                        struct mw_notifications *out)
{
    struct flush_ctx fc = {.d = d, .silences = silences};
    int rc = firing_alerts(d, &fc.firing, &fc.n_firing);
    for (size_t i = 0; !rc && i < d->n; i++) {
        struct group *g = d->groups[i];
        bool flushed = false;
        while (!rc && g->next_flush_ms <= now_ms) {
            flushed = true;
            rc = flush(&fc, g, g->next_flush_ms, out);
            g->next_flush_ms += g->route->group_interval_ms;
            /* Far behind (a clock jump): the ticks in between could only repeat; keep one. */
            int64_t behind = now_ms - g->next_flush_ms;
            if (behind > g->route->group_interval_ms)
                g->next_flush_ms +=
                    behind / g->route->group_interval_ms * g->route->group_interval_ms;
        }
        g->flushed_now = flushed;
    }
    mw_free(fc.firing);
    /* Only now that no flush reads the inhibition sources: drop what was handled. */
    for (size_t i = 0; i < d->n;) {
        struct group *g = d->groups[i];
        if (g->flushed_now)
            prune(g);
        g->flushed_now = false;
        if (g->n == 0 && g->n_notified == 0) {
            group_free(g);
            memmove(d->groups + i, d->groups + i + 1, (d->n - i - 1) * sizeof *d->groups);
            d->n--;
            continue;
        }
        i++;
    }
    return rc;
}
