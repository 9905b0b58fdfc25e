/* window_apply.c — a Batch as exactly-once Redis scripts, one per model. */
#include "window_apply.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "names.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: 1 dedup bitmap, 2..1+R index sets (one per resolution), then the window hashes.
 * ARGV: 1 sequence, 2 dedup ttl ms, 3 number of resolutions R, then per window hash:
 *       resolution slot (1-based), member, start ms, ttl ms, number of fields N, N field/incr. */
const char MW_APPLY_SCRIPT[] =
    "if redis.call('SETBIT', KEYS[1], ARGV[1], 1) == 1 then return 0 end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "local r = tonumber(ARGV[3])\n"
    "local a = 4\n"
    "for k = 2 + r, #KEYS do\n"
    "  local idx = KEYS[1 + tonumber(ARGV[a])]\n"
    "  local member, start, ttl = ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])\n"
    "  local n = tonumber(ARGV[a + 4])\n"
    "  a = a + 5\n"
    "  redis.call('ZADD', idx, start, member)\n"
    "  redis.call('PEXPIRE', idx, ttl)\n"
    "  for j = 1, n do\n"
    "    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])\n"
    "    a = a + 2\n"
    "  end\n"
    "  redis.call('PEXPIRE', KEYS[k], ttl)\n"
    "end\n"
    "return 1\n";

/* Counters of one (version, resolution, window) being prepared, as field/increment pairs. */
struct window_fields {
    char *version;
    size_t spec;
    int64_t start_ms;
    struct mw_redis_cmd fields; /* alternating name, increment */
};

/* Every window one model touches in this batch. */
struct model_plan {
    const char *model;
    struct window_fields *windows;
    size_t n_windows;
};

static struct window_fields *find_window(struct model_plan *mp, const char *version, size_t spec,
                                         int64_t start_ms)
{
    for (size_t i = 0; i < mp->n_windows; i++) {
        struct window_fields *w = &mp->windows[i];
        if (w->spec == spec && w->start_ms == start_ms && strcmp(w->version, version) == 0)
            return w;
    }
    struct window_fields *grown = mw_realloc(mp->windows, (mp->n_windows + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    mp->windows = grown;
    struct window_fields *w = &mp->windows[mp->n_windows];
    w->version = mw_strdup(version);
    if (!w->version)
        return NULL;
    w->spec = spec;
    w->start_ms = start_ms;
    mw_redis_cmd_init(&w->fields);
    mp->n_windows++;
    return w;
}

static int add_field(struct window_fields *w, const char *name, int64_t incr)
{
    if (incr == 0)
        return 0;
    int rc = mw_redis_cmd_add(&w->fields, name);
    return rc ? rc : mw_redis_cmd_addf(&w->fields, "%" PRId64, incr);
}

static int add_counters(struct window_fields *w, const Modelwatch__V1__ModelCounters *mc)
{
    int rc = add_field(w, "count", (int64_t)mc->count);
    rc = rc ? rc : add_field(w, "errors", (int64_t)mc->error_count);
    rc = rc ? rc : add_field(w, "tokens_in", (int64_t)mc->input_tokens);
    rc = rc ? rc : add_field(w, "tokens_out", (int64_t)mc->output_tokens);
    rc = rc ? rc : add_field(w, "feedback", (int64_t)mc->feedback_count);
    char name[96];
    for (size_t i = 0; !rc && i < mc->n_errors; i++) {
        snprintf(name, sizeof name, "err:%.80s", mc->errors[i]->code);
        rc = add_field(w, name, (int64_t)mc->errors[i]->count);
    }
    const Modelwatch__V1__LatencyHistogram *h = mc->latency;
    for (size_t i = 0; !rc && h && i < h->n_bucket_index; i++) {
        snprintf(name, sizeof name, "lat:%" PRIu32, h->bucket_index[i]);
        rc = add_field(w, name, (int64_t)h->bucket_count[i]);
    }
    if (!rc && h)
        rc = add_field(w, "lat_sum_us", (int64_t)h->sum_us);
    return rc;
}

static struct model_plan *find_model(struct model_plan **plans, size_t *n, const char *model)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*plans)[i].model, model) == 0)
            return &(*plans)[i];
    struct model_plan *grown = mw_realloc(*plans, (*n + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    *plans = grown;
    struct model_plan *mp = &grown[*n];
    memset(mp, 0, sizeof *mp);
    mp->model = model;
    (*n)++;
    return mp;
}

static int plan_counters(struct model_plan **plans, size_t *n_plans,
                         const Modelwatch__V1__ModelCounters *mc,
                         const struct mw_window_spec *specs, size_t n_specs)
{
    struct model_plan *mp = find_model(plans, n_plans, mc->model);
    if (!mp)
        return MW_ENOMEM;
    for (size_t s = 0; s < n_specs; s++) {
        if (specs[s].width_ms % mc->bucket_width_ms != 0)
            return MW_EINVAL;
        int64_t start = mw_clock_window_start(mc->bucket_start_ms, specs[s].width_ms);
        struct window_fields *w = find_window(mp, mc->version ? mc->version : "", s, start);
        if (!w)
            return MW_ENOMEM;
        int rc = add_counters(w, mc);
        if (rc)
            return rc;
    }
    return 0;
}

static int plan_records(struct model_plan **plans, size_t *n_plans,
                        const Modelwatch__V1__Record *rec, const struct mw_window_spec *specs,
                        size_t n_specs)
{
    if (rec->body_case != MODELWATCH__V1__RECORD__BODY_EVENT)
        return 0;
    const Modelwatch__V1__PredictionEvent *ev = rec->event;
    if (!mw_model_name_valid(ev->model) || !mw_version_valid(ev->version))
        return 0; /* the agent already refuses these; a record cannot name a new model */
    struct model_plan *mp = find_model(plans, n_plans, ev->model);
    if (!mp)
        return MW_ENOMEM;
    for (size_t s = 0; s < n_specs; s++) {
        int64_t start = mw_clock_window_start(ev->event_time_ms, specs[s].width_ms);
        struct window_fields *w = find_window(mp, ev->version ? ev->version : "", s, start);
        if (!w)
            return MW_ENOMEM;
        int rc = add_field(w, "records", 1);
        if (rc)
            return rc;
    }
    return 0;
}

/* Fold repeated field names of a window into one increment each, so a batch's commands grow
 * with the distinct fields it touches, not with its records. */
static void fold_fields(struct mw_redis_cmd *f)
{
    size_t out = 0;
    for (size_t i = 0; i + 1 < f->argc; i += 2) {
        size_t j = 0;
        for (; j < out; j += 2)
            if (strcmp(f->argv[j], f->argv[i]) == 0)
                break;
        if (j < out) {
            int64_t sum = strtoll(f->argv[j + 1], NULL, 10) + strtoll(f->argv[i + 1], NULL, 10);
            mw_redis_cmd_setf(f, j + 1, "%" PRId64, sum);
            continue;
        }
        if (j != i) {
            char *name = f->argv[out], *val = f->argv[out + 1];
            f->argv[out] = f->argv[i];
            f->argv[out + 1] = f->argv[i + 1];
            f->argv[i] = name;
            f->argv[i + 1] = val;
            size_t l0 = f->argvlen[out], l1 = f->argvlen[out + 1];
            f->argvlen[out] = f->argvlen[i];
            f->argvlen[out + 1] = f->argvlen[i + 1];
            f->argvlen[i] = l0;
            f->argvlen[i + 1] = l1;
        }
        out += 2;
    }
    while (f->argc > out)
        mw_free(f->argv[--f->argc]);
}

static int build_eval(const struct model_plan *mp, const Modelwatch__V1__Batch *b,
                      const struct mw_window_spec *specs, size_t n_specs,
                      int64_t dedup_retention_ms, struct mw_redis_cmd *cmd)
{
    const char *m = mp->model;
    int rc = mw_redis_cmd_add(cmd, "EVAL");
    rc = rc ? rc : mw_redis_cmd_add(cmd, MW_APPLY_SCRIPT);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%zu", 1 + n_specs + mp->n_windows);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "mw:{%s}:dedup:%s:%s", m, b->identity->agent_id,
                                     b->identity->boot_id);
    for (size_t s = 0; !rc && s < n_specs; s++)
        rc = mw_redis_cmd_addf(cmd, "mw:{%s}:idx:%" PRId64, m, specs[s].width_ms / 1000);
    for (size_t i = 0; !rc && i < mp->n_windows; i++) {
        const struct window_fields *w = &mp->windows[i];
        rc = mw_redis_cmd_addf(cmd, "mw:{%s}:w:%" PRId64 ":%" PRId64 ":%s", m,
                               specs[w->spec].width_ms / 1000, w->start_ms, w->version);
    }
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRIu64, b->sequence);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, dedup_retention_ms);
    rc = rc ? rc : mw_redis_cmd_addf(cmd, "%zu", n_specs);
    for (size_t i = 0; !rc && i < mp->n_windows; i++) {
        const struct window_fields *w = &mp->windows[i];
        /* Keep a window for its retention counted from its end. */
        int64_t ttl_ms = specs[w->spec].retention_ms + specs[w->spec].width_ms;
        rc = mw_redis_cmd_addf(cmd, "%zu", w->spec + 1);
        rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64 ":%s", w->start_ms, w->version);
        rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, w->start_ms);
        rc = rc ? rc : mw_redis_cmd_addf(cmd, "%" PRId64, ttl_ms);
        rc = rc ? rc : mw_redis_cmd_addf(cmd, "%zu", w->fields.argc / 2);
        for (size_t f = 0; !rc && f < w->fields.argc; f++)
            rc = mw_redis_cmd_add(cmd, w->fields.argv[f]);
    }
    return rc;
}

static void free_model_plans(struct model_plan *plans, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t w = 0; w < plans[i].n_windows; w++) {
            mw_free(plans[i].windows[w].version);
            mw_redis_cmd_free(&plans[i].windows[w].fields);
        }
        mw_free(plans[i].windows);
    }
    mw_free(plans);
}

int mw_apply_plan_build(const Modelwatch__V1__Batch *b, const struct mw_window_spec *specs,
                        size_t n_specs, int64_t dedup_retention_ms, struct mw_apply_plan *out)
{
    struct model_plan *plans = NULL;
    size_t n_plans = 0;
    int rc = 0;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; !rc && b->snapshot && i < b->snapshot->n_models; i++)
        rc = plan_counters(&plans, &n_plans, b->snapshot->models[i], specs, n_specs);
    for (size_t i = 0; !rc && i < b->n_records; i++)
        rc = plan_records(&plans, &n_plans, b->records[i], specs, n_specs);
    if (rc)
        goto out;
    out->cmds = mw_calloc(n_plans + 1, sizeof *out->cmds);
    if (!out->cmds) {
        rc = MW_ENOMEM;
        goto out;
    }
    for (size_t i = 0; !rc && i < n_plans; i++) {
        for (size_t w = 0; w < plans[i].n_windows; w++)
            fold_fields(&plans[i].windows[w].fields);
        mw_redis_cmd_init(&out->cmds[i]);
        out->n_cmds++;
        rc = build_eval(&plans[i], b, specs, n_specs, dedup_retention_ms, &out->cmds[i]);
    }
    if (!rc && n_plans) {
        struct mw_redis_cmd *sadd = &out->cmds[out->n_cmds++];
        mw_redis_cmd_init(sadd);
        rc = mw_redis_cmd_add(sadd, "SADD");
        rc = rc ? rc : mw_redis_cmd_add(sadd, "mw:models");
        for (size_t i = 0; !rc && i < n_plans; i++)
            rc = mw_redis_cmd_add(sadd, plans[i].model);
    }
out:
    free_model_plans(plans, n_plans);
    if (rc)
        mw_apply_plan_free(out);
    return rc;
}

void mw_apply_plan_free(struct mw_apply_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->n_cmds; i++)
        mw_redis_cmd_free(&plan->cmds[i]);
    mw_free(plan->cmds);
    plan->cmds = NULL;
    plan->n_cmds = 0;
}
