/* pipeline_health.c — the pipeline's own signals in Redis (pipeline_health.h). */
#include "pipeline_health.h"

#include "alloc.h"
#include "error.h"
#include "hash.h"
#include "log.h"
#include "redis_cmd.h"
#include "schema.h"
#include "store.h"
#include "table.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_MS 60000
/* Noted agents kept in memory at most; past it the table is rebuilt from the dirty ones. */
#define NOTED_AGENTS_MAX 4096

/* The newest sample of one agent this replica has seen. */
struct noted_agent {
    char *agent;
    char boot[64];
    int64_t sealed_at_ms;
    uint64_t sequence, dropped_total, spool_bytes, spool_max_bytes;
    bool dirty; /* newer than what this replica last wrote */
};

struct mw_pipeline_health {
    struct mw_store *store;
    struct mw_table agents; /* of struct noted_agent, by agent id */
    struct noted_agent **list;
    size_t n, cap;
};

static bool same_agent(const void *item, const void *key)
{
    return strcmp(((const struct noted_agent *)item)->agent, key) == 0;
}

int mw_pipeline_health_create(struct mw_store *store, struct mw_pipeline_health **out)
{
    struct mw_pipeline_health *h = mw_calloc(1, sizeof *h);
    if (!h)
        return MW_ENOMEM;
    h->store = store;
    mw_table_init(&h->agents, same_agent);
    int rc = mw_store_add_script(store, MW_PIPELINE_HEALTH_SCRIPT, MW_PIPELINE_HEALTH_SCRIPT_LEN,
                                 MW_PIPELINE_HEALTH_SCRIPT_SHA1);
    if (rc) {
        mw_pipeline_health_destroy(h);
        return rc;
    }
    *out = h;
    return 0;
}

static void forget_noted(struct mw_pipeline_health *h)
{
    for (size_t i = 0; i < h->n; i++) {
        mw_free(h->list[i]->agent);
        mw_free(h->list[i]);
    }
    h->n = 0;
    mw_table_free(&h->agents);
    mw_table_init(&h->agents, same_agent);
}

void mw_pipeline_health_destroy(struct mw_pipeline_health *h)
{
    if (!h)
        return;
    forget_noted(h);
    mw_free(h->list);
    mw_free(h);
}

static struct noted_agent *noted(struct mw_pipeline_health *h, const char *agent)
{
    uint64_t hash = mw_hash_str(MW_HASH_INIT, agent);
    struct noted_agent *a = mw_table_find(&h->agents, hash, agent);
    if (a)
        return a;
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 16;
        struct noted_agent **grown = mw_realloc(h->list, cap * sizeof *grown);
        if (!grown)
            return NULL;
        h->list = grown;
        h->cap = cap;
    }
    a = mw_calloc(1, sizeof *a);
    if (!a || !(a->agent = mw_strdup(agent)) || mw_table_insert(&h->agents, hash, a) != 0) {
        if (a)
            mw_free(a->agent);
        mw_free(a);
        return NULL;
    }
    a->sealed_at_ms = INT64_MIN;
    h->list[h->n++] = a;
    return a;
}

/* Whether (boot, sequence, sealed_at) is newer than what `a` holds: the rule of
 * pipeline_health.lua, so a replica writes only what the script would keep. */
static bool newer(const struct noted_agent *a, const char *boot, uint64_t sequence,
                  int64_t sealed_at_ms)
{
    if (strcmp(a->boot, boot) == 0)
        return sequence > a->sequence;
    return sealed_at_ms >= a->sealed_at_ms;
}

void mw_pipeline_health_note_batch(struct mw_pipeline_health *h, const Modelwatch__V1__Batch *b)
{
    const Modelwatch__V1__Identity *id = b ? b->identity : NULL;
    const Modelwatch__V1__AgentHealth *ah = b && b->snapshot ? b->snapshot->agent : NULL;
    if (!h || !id || !ah || !id->agent_id || !*id->agent_id || !id->boot_id ||
        strlen(id->boot_id) >= sizeof ((struct noted_agent *)0)->boot ||
        strchr(id->boot_id, '|') || !b->has_sequence || !b->has_sealed_at_ms)
        return;
    struct noted_agent *a = noted(h, id->agent_id);
    if (!a || !newer(a, id->boot_id, b->sequence, b->sealed_at_ms))
        return;
    snprintf(a->boot, sizeof a->boot, "%s", id->boot_id);
    a->sequence = b->sequence;
    a->sealed_at_ms = b->sealed_at_ms;
    a->dropped_total = ah->dropped_total;
    a->spool_bytes = ah->spool_bytes;
    a->spool_max_bytes = ah->spool_max_bytes;
    a->dirty = true;
}

static void ignore_reply(redisReply *reply, void *arg)
{
    (void)arg;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        MW_LOG_WARN("pipeline", "cannot write a pipeline health reading", "error=%s", reply->str);
}

void mw_pipeline_health_note_dlq(struct mw_pipeline_health *h, int64_t now_ms)
{
    char key[MW_SCHEMA_KEY_MAX], ttl[24];
    if (!h || mw_schema_pipeline_dlq_key(key, sizeof key, now_ms / MINUTE_MS * MINUTE_MS) != 0)
        return;
    snprintf(ttl, sizeof ttl, "%d", MW_SCHEMA_PIPELINE_DLQ_TTL_S);
    const char *incr[] = {"INCR", key};
    const char *expire[] = {"EXPIRE", key, ttl};
    if (mw_store_commandv(h->store, ignore_reply, NULL, 2, incr) == 0)
        mw_store_commandv(h->store, ignore_reply, NULL, 3, expire);
}

static int agent_cmd(struct mw_redis_cmd *c, const struct noted_agent *a)
{
    int rc = mw_redis_cmd_add(c, "EVALSHA");
    rc = rc ? rc : mw_redis_cmd_add(c, MW_PIPELINE_HEALTH_SCRIPT_SHA1);
    rc = rc ? rc : mw_redis_cmd_add(c, "1");
    rc = rc ? rc : mw_redis_cmd_add(c, MW_SCHEMA_PIPELINE_AGENTS_KEY);
    rc = rc ? rc : mw_redis_cmd_add(c, a->agent);
    rc = rc ? rc : mw_redis_cmd_add(c, a->boot);
    rc = rc ? rc : mw_redis_cmd_add_int(c, a->sealed_at_ms);
    rc = rc ? rc : mw_redis_cmd_addf(c, "%" PRIu64, a->sequence);
    rc = rc ? rc : mw_redis_cmd_addf(c, "%" PRIu64, a->dropped_total);
    rc = rc ? rc : mw_redis_cmd_addf(c, "%" PRIu64, a->spool_bytes);
    rc = rc ? rc : mw_redis_cmd_addf(c, "%" PRIu64, a->spool_max_bytes);
    return rc;
}

static int lag_cmd(struct mw_redis_cmd *c, const struct mw_consumer_partition *parts, size_t n,
                   const char *holder, int64_t now_ms)
{
    int rc = mw_redis_cmd_add(c, "HSET");
    rc = rc ? rc : mw_redis_cmd_add(c, MW_SCHEMA_PIPELINE_LAG_KEY);
    for (size_t i = 0; !rc && i < n; i++) {
        if (parts[i].high_watermark < 0)
            continue; /* nothing fetched yet: unknown */
        int64_t lag = parts[i].high_watermark - (parts[i].position >= 0 ? parts[i].position : 0);
        rc = mw_redis_cmd_addf(c, "%" PRId32, parts[i].partition);
        rc = rc ? rc : mw_redis_cmd_addf(c, "%" PRId64 "|%" PRId64 "|%s", lag > 0 ? lag : 0,
                                         now_ms, holder);
    }
    return rc;
}

void mw_pipeline_health_flush(struct mw_pipeline_health *h,
                              const struct mw_consumer_partition *parts, size_t n,
                              const char *holder, int64_t now_ms)
{
    if (!h)
        return;
    struct mw_redis_cmd *cmds = mw_calloc(h->n + 1, sizeof *cmds);
    if (!cmds)
        return;
    size_t n_cmds = 0;
    int rc = 0;
    for (size_t i = 0; !rc && i < h->n; i++) {
        if (!h->list[i]->dirty)
            continue;
        mw_redis_cmd_init(&cmds[n_cmds]);
        rc = agent_cmd(&cmds[n_cmds++], h->list[i]);
    }
    size_t held = 0;
    for (size_t i = 0; i < n; i++)
        held += parts[i].high_watermark >= 0;
    if (!rc && held) {
        mw_redis_cmd_init(&cmds[n_cmds]);
        rc = lag_cmd(&cmds[n_cmds++], parts, n, holder, now_ms);
    }
    /* One by one, each with its own reply: a reading that fails is logged as such (and
     * replaced by the next), never as a failure of the data path. */
    bool sent = !rc && n_cmds;
    for (size_t i = 0; sent && i < n_cmds; i++)
        sent = mw_store_command(h->store, &cmds[i], ignore_reply, NULL) == 0;
    if (sent) {
        for (size_t i = 0; i < h->n; i++)
            h->list[i]->dirty = false;
        if (h->n > NOTED_AGENTS_MAX)
            forget_noted(h); /* agents come and go with their pods: start over, all written */
    }
    for (size_t i = 0; i < n_cmds; i++)
        mw_redis_cmd_free(&cmds[i]);
    mw_free(cmds);
}

/* ---- reading ------------------------------------------------------------------------------- */

void mw_pipeline_readings_free(struct mw_pipeline_readings *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_agents; i++) {
        mw_free(r->agents[i].agent);
        mw_free(r->agents[i].boot);
    }
    for (size_t i = 0; i < r->n_lags; i++)
        mw_free(r->lags[i].partition);
    mw_free(r->agents);
    mw_free(r->lags);
    memset(r, 0, sizeof *r);
}

/* The next '|'-separated part of *p as a number; advances *p past the '|'. */
static bool next_number(const char **p, bool is_signed, int64_t *s, uint64_t *u)
{
    const char *at = *p;
    char *end = NULL;
    if (!is_signed && at[0] == '-')
        return false;
    if (is_signed)
        *s = strtoll(at, &end, 10);
    else
        *u = strtoull(at, &end, 10);
    if (end == at || (*end != '|' && *end != '\0'))
        return false;
    *p = *end ? end + 1 : end;
    return true;
}

int mw_agent_sample_parse(const char *agent, const char *value, struct mw_agent_sample *out)
{
    memset(out, 0, sizeof *out);
    const char *bar = strchr(value, '|');
    if (!bar)
        return MW_EPARSE;
    const char *p = bar + 1;
    int64_t ignored;
    uint64_t unused;
    if (!next_number(&p, true, &out->sealed_at_ms, &unused) ||
        !next_number(&p, false, &ignored, &out->sequence) ||
        !next_number(&p, false, &ignored, &out->dropped_total) ||
        !next_number(&p, false, &ignored, &out->spool_bytes) ||
        !next_number(&p, false, &ignored, &out->spool_max_bytes) || *p)
        return MW_EPARSE;
    out->agent = mw_strdup(agent);
    out->boot = mw_strndup(value, (size_t)(bar - value));
    if (!out->agent || !out->boot) {
        mw_free(out->agent);
        mw_free(out->boot);
        return MW_ENOMEM;
    }
    return 0;
}

int mw_lag_sample_parse(const char *partition, const char *value, struct mw_lag_sample *out)
{
    memset(out, 0, sizeof *out);
    const char *p = value;
    uint64_t unused;
    if (!next_number(&p, true, &out->lag, &unused) || !next_number(&p, true, &out->at_ms, &unused))
        return MW_EPARSE; /* the holder's name follows */
    out->partition = mw_strdup(partition);
    return out->partition ? 0 : MW_ENOMEM;
}

struct read_op {
    mw_pipeline_read_fn cb;
    void *arg;
    struct mw_pipeline_readings *r;
    int rc;
};

static int take_agents(struct mw_pipeline_readings *r, const redisReply *reply)
{
    r->agents = mw_calloc(reply->elements / 2 + 1, sizeof *r->agents);
    if (!r->agents)
        return MW_ENOMEM;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (!k->str || !v->str)
            continue;
        int rc = mw_agent_sample_parse(k->str, v->str, &r->agents[r->n_agents]);
        if (rc == MW_ENOMEM)
            return rc;
        if (rc)
            MW_LOG_WARN("pipeline", "unreadable agent health sample", "agent=%s", k->str);
        else
            r->n_agents++;
    }
    return 0;
}

static int take_lags(struct mw_pipeline_readings *r, const redisReply *reply)
{
    r->lags = mw_calloc(reply->elements / 2 + 1, sizeof *r->lags);
    if (!r->lags)
        return MW_ENOMEM;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (!k->str || !v->str)
            continue;
        int rc = mw_lag_sample_parse(k->str, v->str, &r->lags[r->n_lags]);
        if (rc == MW_ENOMEM)
            return rc;
        r->n_lags += rc == 0;
    }
    return 0;
}

static void on_read_reply(size_t i, const redisReply *reply, void *arg)
{
    struct read_op *op = arg;
    if (op->rc)
        return;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        op->rc = MW_EREDIS;
        return;
    }
    if (i == 0 && reply->type == REDIS_REPLY_ARRAY)
        op->rc = take_agents(op->r, reply);
    else if (i == 1 && reply->type == REDIS_REPLY_ARRAY)
        op->rc = take_lags(op->r, reply);
    else if (i == 2 && reply->type == REDIS_REPLY_STRING)
        op->r->dlq_records = strtoull(reply->str, NULL, 10);
}

static void on_read_done(int rc, void *arg)
{
    struct read_op *op = arg;
    rc = rc ? rc : op->rc;
    if (rc) {
        mw_pipeline_readings_free(op->r);
        mw_free(op->r);
        op->r = NULL;
    }
    op->cb(rc, op->r, op->arg);
    mw_free(op);
}

int mw_pipeline_health_read(struct mw_store *store, int64_t now_ms, mw_pipeline_read_fn cb,
                            void *arg)
{
    struct read_op *op = mw_calloc(1, sizeof *op);
    struct mw_pipeline_readings *r = mw_calloc(1, sizeof *r);
    struct mw_redis_cmd cmds[3];
    char dlq_key[MW_SCHEMA_KEY_MAX];
    for (size_t i = 0; i < 3; i++)
        mw_redis_cmd_init(&cmds[i]);
    int rc = op && r ? 0 : MW_ENOMEM;
    if (!rc) {
        r->dlq_minute_start_ms = now_ms / MINUTE_MS * MINUTE_MS - MINUTE_MS;
        rc = mw_schema_pipeline_dlq_key(dlq_key, sizeof dlq_key, r->dlq_minute_start_ms);
    }
    rc = rc ? rc : mw_redis_cmd_add(&cmds[0], "HGETALL");
    rc = rc ? rc : mw_redis_cmd_add(&cmds[0], MW_SCHEMA_PIPELINE_AGENTS_KEY);
    rc = rc ? rc : mw_redis_cmd_add(&cmds[1], "HGETALL");
    rc = rc ? rc : mw_redis_cmd_add(&cmds[1], MW_SCHEMA_PIPELINE_LAG_KEY);
    rc = rc ? rc : mw_redis_cmd_add(&cmds[2], "GET");
    rc = rc ? rc : mw_redis_cmd_add(&cmds[2], dlq_key);
    if (!rc) {
        *op = (struct read_op){.cb = cb, .arg = arg, .r = r};
        rc = mw_store_exec_each(store, cmds, 3, on_read_reply, on_read_done, op);
    }
    for (size_t i = 0; i < 3; i++)
        mw_redis_cmd_free(&cmds[i]);
    if (rc) {
        mw_free(op);
        mw_free(r);
    }
    return rc;
}

void mw_pipeline_health_forget_agents(struct mw_store *store, const struct mw_pipeline_readings *r,
                                      int64_t before_ms)
{
    struct mw_redis_cmd c;
    mw_redis_cmd_init(&c);
    int rc = mw_redis_cmd_add(&c, "HDEL");
    rc = rc ? rc : mw_redis_cmd_add(&c, MW_SCHEMA_PIPELINE_AGENTS_KEY);
    size_t n = 0;
    for (size_t i = 0; !rc && i < r->n_agents; i++) {
        if (r->agents[i].sealed_at_ms < before_ms) {
            rc = mw_redis_cmd_add(&c, r->agents[i].agent);
            n++;
        }
    }
    if (!rc && n)
        mw_store_command(store, &c, ignore_reply, NULL);
    mw_redis_cmd_free(&c);
}
