/* window_read.c — windows from Redis as struct mw_window, for every reader (window_read.h).
 *
 * One read: GET the model's watermark and the index range (for the latest closed windows the
 * range waits for the watermark, which bounds it), then HGETALL (or HMGET count errors) every
 * selected window and GET every version's profile, all pipelined. Every reply holds one unit
 * of `pending`; the read completes when the last one is in. Window hashes are copied out of
 * their replies, which hiredis frees when the reply callback returns. */
#include "window_read.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "names.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROFILE_ERROR_BYTES 256

struct read;

/* One window selected from the index. */
struct slot {
    struct read *r;
    int64_t start_ms;
    char *version;
    bool exists;
    char *blob; /* the copied fields: name and value pointers, then their text */
    struct mw_window window;
};

struct profile_slot {
    struct read *r;
    char *version;
    struct mw_profile *profile;
    char error[PROFILE_ERROR_BYTES];
    bool has_error;
};

struct read {
    struct mw_store *store;
    const struct mw_aggregator_config *cfg;
    char model[MW_MODEL_NAME_MAX + 1];
    char *version; /* NULL: every version */
    int64_t width_ms, from_ms, to_ms;
    bool newest_first;
    bool latest_closed; /* the range's end waits for the watermark; one window per version */
    size_t scan_max, limit;
    unsigned flags;
    int64_t watermark_ms;
    size_t pending;
    int rc;
    struct slot *slots;
    size_t n_slots;
    struct profile_slot *profiles;
    size_t n_profiles;
    mw_window_read_fn cb;
    void *arg;
};

static void free_read(struct read *r)
{
    for (size_t i = 0; i < r->n_slots; i++) {
        mw_window_clear(&r->slots[i].window);
        mw_free(r->slots[i].version);
        mw_free(r->slots[i].blob);
    }
    for (size_t i = 0; i < r->n_profiles; i++) {
        mw_profile_free(r->profiles[i].profile);
        mw_free(r->profiles[i].version);
    }
    mw_free(r->slots);
    mw_free(r->profiles);
    mw_free(r->version);
    mw_free(r);
}

static void fail(struct read *r, int rc)
{
    if (!r->rc)
        r->rc = rc;
}

static const struct profile_slot *profile_of(const struct read *r, const char *version)
{
    for (size_t i = 0; i < r->n_profiles; i++)
        if (strcmp(r->profiles[i].version, version) == 0)
            return &r->profiles[i];
    return NULL;
}

/* Everything is in: parse, answer, free. */
static void complete(struct read *r)
{
    struct mw_window *windows = NULL;
    struct mw_window_profile *profiles = NULL;
    struct mw_window_set set = {
        .model = r->model, .width_ms = r->width_ms, .watermark_ms = r->watermark_ms};
    if (!r->rc) {
        windows = mw_calloc(r->n_slots + 1, sizeof *windows);
        profiles = mw_calloc(r->n_profiles + 1, sizeof *profiles);
        if (!windows || !profiles)
            fail(r, MW_ENOMEM);
    }
    for (size_t i = 0; !r->rc && i < r->n_profiles; i++) {
        const struct profile_slot *p = &r->profiles[i];
        profiles[i] = (struct mw_window_profile){
            .version = p->version, .profile = p->profile, .error = p->has_error ? p->error : NULL};
    }
    set.profiles = profiles;
    set.n_profiles = r->n_profiles;
    for (size_t i = 0; !r->rc && i < r->n_slots; i++) {
        struct slot *s = &r->slots[i];
        if (!s->exists) {
            set.n_missing++;
            continue;
        }
        struct mw_window *w = &s->window;
        if (!(r->flags & MW_WINDOW_READ_COUNTS) && mw_window_parse(w) != 0) {
            fail(r, MW_ENOMEM);
            break;
        }
        const struct profile_slot *p = profile_of(r, s->version);
        w->model = r->model;
        w->version = s->version;
        w->start_ms = s->start_ms;
        w->width_ms = r->width_ms;
        w->final = mw_schema_window_final(s->start_ms, r->width_ms, r->watermark_ms,
                                          r->cfg->windows.allowed_lateness_ms);
        w->profile = p ? p->profile : NULL;
        windows[set.n++] = *w;
    }
    set.windows = windows;
    r->cb(r->rc, r->rc ? NULL : &set, r->arg);
    mw_free(windows);
    mw_free(profiles);
    free_read(r);
}

static void done_one(struct read *r)
{
    if (--r->pending == 0)
        complete(r);
}

static void send_command(struct read *r, mw_store_reply_fn fn, void *arg, size_t argc,
                         const char *const *argv)
{
    int rc = mw_store_commandv(r->store, fn, arg, argc, argv);
    if (rc)
        fail(r, rc);
    else
        r->pending++;
}

/* ---- windows and profiles ------------------------------------------------------------------- */

/* Copy a HGETALL reply's pairs into s->blob and point s->window.fields at them. */
static int copy_fields(struct slot *s, const redisReply *reply)
{
    size_t n = reply->elements / 2, text = 0;
    for (size_t i = 0; i < 2 * n; i++)
        text += reply->element[i]->len + 1;
    s->blob = mw_malloc(2 * n * sizeof(char *) + text + 1);
    if (!s->blob)
        return MW_ENOMEM;
    const char **names = (const char **)s->blob, **values = names + n;
    char *at = s->blob + 2 * n * sizeof(char *);
    for (size_t i = 0; i < 2 * n; i++) {
        const redisReply *e = reply->element[i];
        if (e->str)
            memcpy(at, e->str, e->len);
        at[e->len] = '\0';
        (i % 2 ? values : names)[i / 2] = at;
        at += e->len + 1;
    }
    s->window.fields = (struct mw_window_fields){.n = n, .names = names, .values = values};
    return 0;
}

static void on_window(redisReply *reply, void *arg)
{
    struct slot *s = arg;
    struct read *r = s->r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        fail(r, MW_EREDIS);
    } else if (r->flags & MW_WINDOW_READ_COUNTS) { /* HMGET count errors */
        for (size_t i = 0; i < reply->elements && i < 2; i++) {
            const redisReply *e = reply->element[i];
            if (e->type == REDIS_REPLY_STRING) {
                *(i == 0 ? &s->window.count : &s->window.errors) = strtoll(e->str, NULL, 10);
                s->exists = true;
            }
        }
    } else if (reply->elements > 0) {
        s->exists = true;
        if (copy_fields(s, reply) != 0)
            fail(r, MW_ENOMEM);
    }
    done_one(r);
}

static void on_profile(redisReply *reply, void *arg)
{
    struct profile_slot *p = arg;
    if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL))
        fail(p->r, MW_EREDIS);
    else if (reply->type == REDIS_REPLY_STRING &&
             mw_profile_parse(reply->str, reply->len, &p->profile, p->error, sizeof p->error) != 0)
        p->has_error = true;
    done_one(p->r);
}

static void fetch_window(struct read *r, struct slot *s)
{
    char key[MW_SCHEMA_KEY_MAX];
    if (mw_schema_window_key(key, sizeof key, r->model, r->width_ms, s->start_ms, s->version)) {
        fail(r, MW_ETOOBIG);
        return;
    }
    if (r->flags & MW_WINDOW_READ_COUNTS) {
        const char *argv[] = {"HMGET", key, MW_FIELD_COUNT, MW_FIELD_ERRORS};
        send_command(r, on_window, s, 4, argv);
    } else {
        const char *argv[] = {"HGETALL", key};
        send_command(r, on_window, s, 2, argv);
    }
}

/* A profile slot for `version` unless there is one. */
static void want_profile(struct read *r, const char *version)
{
    if (profile_of(r, version))
        return;
    struct profile_slot *p = &r->profiles[r->n_profiles];
    *p = (struct profile_slot){.r = r, .version = mw_strdup(version)};
    if (!p->version) {
        fail(r, MW_ENOMEM);
        return;
    }
    r->n_profiles++;
    char key[MW_SCHEMA_KEY_MAX];
    if (mw_schema_profile_key(key, sizeof key, r->model, version)) {
        fail(r, MW_ETOOBIG);
        return;
    }
    const char *argv[] = {"GET", key};
    send_command(r, on_profile, p, 2, argv);
}

/* ---- the index ------------------------------------------------------------------------------ */

struct member {
    int64_t start_ms;
    const char *version; /* borrowed from the reply */
};

static int oldest_first(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    if (x->start_ms != y->start_ms)
        return x->start_ms < y->start_ms ? -1 : 1;
    return strcmp(x->version, y->version);
}

static int newest_first(const void *a, const void *b)
{
    return oldest_first(b, a);
}

static bool seen_version(const struct member *selected, size_t n, const char *version)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(selected[i].version, version) == 0)
            return true;
    return false;
}

/* The index members to read, in the query's order, into `out` (reply->elements slots). */
static size_t select_members(const struct read *r, const redisReply *reply, struct member *out)
{
    size_t n = 0, kept = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type == REDIS_REPLY_STRING &&
            mw_schema_index_member_parse(e->str, &out[n].start_ms, &out[n].version) == 0)
            n++;
    }
    qsort(out, n, sizeof *out, r->newest_first ? newest_first : oldest_first);
    for (size_t i = 0; i < n; i++) {
        if (r->limit && kept == r->limit)
            break;
        if (r->version && strcmp(out[i].version, r->version) != 0)
            continue;
        if (r->latest_closed && seen_version(out, kept, out[i].version))
            continue;
        out[kept++] = out[i];
    }
    return kept;
}

static void on_index(redisReply *reply, void *arg)
{
    struct read *r = arg;
    struct member *members = NULL;
    size_t n = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        fail(r, MW_EREDIS);
        goto out;
    }
    members = mw_calloc(reply->elements + 1, sizeof *members);
    r->slots = mw_calloc(reply->elements + 1, sizeof *r->slots);
    r->profiles = mw_calloc(reply->elements + 2, sizeof *r->profiles);
    if (!members || !r->slots || !r->profiles) {
        fail(r, MW_ENOMEM);
        goto out;
    }
    n = select_members(r, reply, members);
    for (size_t i = 0; i < n && !r->rc; i++) {
        struct slot *s = &r->slots[r->n_slots];
        *s = (struct slot){.r = r, .start_ms = members[i].start_ms};
        s->version = mw_strdup(members[i].version);
        if (!s->version) {
            fail(r, MW_ENOMEM);
            break;
        }
        r->n_slots++;
        fetch_window(r, s);
        if (r->flags & MW_WINDOW_READ_PROFILE)
            want_profile(r, s->version);
    }
    if (!r->rc && r->version && (r->flags & MW_WINDOW_READ_PROFILE))
        want_profile(r, r->version);
out:
    mw_free(members);
    done_one(r);
}

/* A bound of a score range: INT64_MIN and INT64_MAX leave it open. */
static void format_score(char *out, size_t size, int64_t v)
{
    if (v == INT64_MIN || v == INT64_MAX)
        snprintf(out, size, "%s", v == INT64_MIN ? "-inf" : "+inf");
    else
        snprintf(out, size, "%" PRId64, v);
}

static void send_index(struct read *r)
{
    char key[MW_SCHEMA_KEY_MAX], from[32], to[32], count[32];
    if (mw_schema_index_key(key, sizeof key, r->model, r->width_ms)) {
        fail(r, MW_ETOOBIG);
        return;
    }
    format_score(from, sizeof from, r->from_ms);
    format_score(to, sizeof to, r->to_ms);
    snprintf(count, sizeof count, "%zu", r->scan_max);
    const char *argv[7];
    size_t argc = 0;
    argv[argc++] = r->newest_first ? "ZREVRANGEBYSCORE" : "ZRANGEBYSCORE";
    argv[argc++] = key;
    argv[argc++] = r->newest_first ? to : from;
    argv[argc++] = r->newest_first ? from : to;
    if (r->scan_max) {
        argv[argc++] = "LIMIT";
        argv[argc++] = "0";
        argv[argc++] = count;
    }
    send_command(r, on_index, r, argc, argv);
}

static void on_watermark(redisReply *reply, void *arg)
{
    struct read *r = arg;
    if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL &&
                   reply->type != REDIS_REPLY_INTEGER))
        fail(r, MW_EREDIS);
    else if (reply->type == REDIS_REPLY_STRING)
        r->watermark_ms = strtoll(reply->str, NULL, 10);
    else if (reply->type == REDIS_REPLY_INTEGER)
        r->watermark_ms = reply->integer;
    if (r->latest_closed && !r->rc) {
        const struct mw_aggregator_config *cfg = r->cfg;
        r->to_ms = mw_schema_closed_start_max(r->width_ms, r->watermark_ms,
                                              cfg->windows.allowed_lateness_ms, mw_clock_wall_ms(),
                                              cfg->http.signals_delay_ms);
        send_index(r);
    }
    done_one(r);
}

/* ---- starting a read ------------------------------------------------------------------------ */

static int start(struct read *r)
{
    char key[MW_SCHEMA_KEY_MAX];
    int rc = mw_schema_watermark_key(key, sizeof key, r->model);
    const char *argv[] = {"GET", key};
    rc = rc ? rc : mw_store_commandv(r->store, on_watermark, r, 2, argv);
    if (rc) {
        free_read(r);
        return rc;
    }
    r->pending = 1;
    if (!r->latest_closed)
        send_index(r); /* replies come in order: the watermark is known before the index */
    return 0;
}

static struct read *new_read(struct mw_store *store, const struct mw_aggregator_config *cfg,
                             const char *model, const char *version, mw_window_read_fn cb,
                             void *arg)
{
    struct read *r = mw_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    *r = (struct read){.store = store, .cfg = cfg, .cb = cb, .arg = arg};
    snprintf(r->model, sizeof r->model, "%s", model);
    if (version && !(r->version = mw_strdup(version))) {
        mw_free(r);
        return NULL;
    }
    return r;
}

int mw_window_read_range(struct mw_store *store, const struct mw_aggregator_config *cfg,
                         const struct mw_window_range *q, mw_window_read_fn cb, void *arg)
{
    if (strlen(q->model) > MW_MODEL_NAME_MAX)
        return MW_ETOOBIG;
    struct read *r = new_read(store, cfg, q->model, q->version, cb, arg);
    if (!r)
        return MW_ENOMEM;
    r->width_ms = q->width_ms;
    r->from_ms = q->from_ms;
    r->to_ms = q->to_ms;
    r->newest_first = q->newest_first;
    r->scan_max = q->scan_max;
    r->limit = q->limit;
    r->flags = q->flags;
    return start(r);
}

int mw_window_read_latest_closed(struct mw_store *store, const struct mw_aggregator_config *cfg,
                                 const char *model, int64_t width_ms, unsigned flags,
                                 mw_window_read_fn cb, void *arg)
{
    if (strlen(model) > MW_MODEL_NAME_MAX)
        return MW_ETOOBIG;
    struct read *r = new_read(store, cfg, model, NULL, cb, arg);
    if (!r)
        return MW_ENOMEM;
    r->width_ms = width_ms;
    r->from_ms = INT64_MIN;
    r->newest_first = true;
    r->latest_closed = true;
    r->scan_max = MW_WINDOW_READ_SCAN_CLOSED;
    r->flags = flags;
    return start(r);
}
