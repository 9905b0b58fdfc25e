/* pipeline_signals.c — the pipeline rules' values (pipeline_signals.h). */
#include "alert/pipeline_signals.h"

#include "alloc.h"
#include "error.h"
#include "hash.h"

#include <math.h>
#include <string.h>

static bool same_agent(const void *item, const void *key)
{
    return strcmp(((const struct mw_agent_sample *)item)->agent, key) == 0;
}

void mw_pipeline_memory_init(struct mw_pipeline_memory *m)
{
    memset(m, 0, sizeof *m);
    mw_table_init(&m->agents, same_agent);
}

void mw_pipeline_memory_free(struct mw_pipeline_memory *m)
{
    for (size_t i = 0; i < m->n; i++) {
        mw_free(m->samples[i].agent);
        mw_free(m->samples[i].boot);
    }
    mw_free(m->samples);
    mw_table_free(&m->agents);
    mw_pipeline_memory_init(m);
}

/* Events dropped per second since `prev`, or NaN when it cannot be said. */
static double drop_rate(const struct mw_agent_sample *prev, const struct mw_agent_sample *cur)
{
    if (!prev || cur->sealed_at_ms < prev->sealed_at_ms)
        return NAN;
    bool same_boot = strcmp(prev->boot, cur->boot) == 0;
    if (cur->sealed_at_ms == prev->sealed_at_ms)
        return same_boot ? 0 : NAN;
    double increase = same_boot ? (double)cur->dropped_total - (double)prev->dropped_total
                                : (double)cur->dropped_total; /* a restart resets the counter */
    if (increase < 0)
        increase = (double)cur->dropped_total;
    return increase / ((double)(cur->sealed_at_ms - prev->sealed_at_ms) / 1000.0);
}

static void put(struct mw_pipeline_reading *out, size_t *n, enum mw_signal sig, const char *subject,
                enum mw_sample_kind kind, double value)
{
    if (kind == MW_SAMPLE_VALUE && isnan(value))
        kind = MW_SAMPLE_NO_VALUE;
    out[(*n)++] = (struct mw_pipeline_reading){sig, subject, kind, value};
}

static int remember(struct mw_pipeline_memory *fresh, const struct mw_pipeline_readings *r)
{
    fresh->samples = mw_calloc(r->n_agents ? r->n_agents : 1, sizeof *fresh->samples);
    if (!fresh->samples)
        return MW_ENOMEM;
    for (size_t i = 0; i < r->n_agents; i++) {
        struct mw_agent_sample *s = &fresh->samples[fresh->n];
        *s = r->agents[i];
        s->agent = mw_strdup(r->agents[i].agent);
        s->boot = mw_strdup(r->agents[i].boot);
        if (!s->agent || !s->boot) {
            mw_free(s->agent);
            mw_free(s->boot);
            return MW_ENOMEM;
        }
        fresh->n++;
        if (mw_table_insert(&fresh->agents, mw_hash_str(MW_HASH_INIT, s->agent), s) != 0)
            return MW_ENOMEM;
    }
    return 0;
}

int mw_pipeline_signals(const struct mw_pipeline_readings *r, struct mw_pipeline_memory *m,
                        int64_t now_ms, struct mw_pipeline_reading **out, size_t *n_out)
{
    size_t n = 0;
    struct mw_pipeline_reading *rd = mw_calloc(2 * r->n_agents + r->n_lags + 1, sizeof *rd);
    struct mw_pipeline_memory fresh;
    mw_pipeline_memory_init(&fresh);
    if (!rd || remember(&fresh, r) != 0) {
        mw_free(rd);
        mw_pipeline_memory_free(&fresh);
        return MW_ENOMEM;
    }
    for (size_t i = 0; i < r->n_agents; i++) {
        const struct mw_agent_sample *cur = &r->agents[i];
        if (now_ms - cur->sealed_at_ms > MW_PIPELINE_AGENT_STALE_MS) {
            put(rd, &n, MW_SIGNAL_AGENT_DROPS, cur->agent, MW_SAMPLE_GONE, 0);
            put(rd, &n, MW_SIGNAL_SPOOL_USE, cur->agent, MW_SAMPLE_GONE, 0);
            continue;
        }
        const struct mw_agent_sample *prev =
            mw_table_find(&m->agents, mw_hash_str(MW_HASH_INIT, cur->agent), cur->agent);
        put(rd, &n, MW_SIGNAL_AGENT_DROPS, cur->agent, MW_SAMPLE_VALUE, drop_rate(prev, cur));
        double use = cur->spool_max_bytes ? (double)cur->spool_bytes / (double)cur->spool_max_bytes
                                          : NAN;
        put(rd, &n, MW_SIGNAL_SPOOL_USE, cur->agent, MW_SAMPLE_VALUE, use);
    }
    for (size_t i = 0; i < r->n_lags; i++) {
        const struct mw_lag_sample *l = &r->lags[i];
        bool stale = now_ms - l->at_ms > MW_PIPELINE_LAG_STALE_MS;
        put(rd, &n, MW_SIGNAL_CONSUMER_LAG, l->partition, stale ? MW_SAMPLE_GONE : MW_SAMPLE_VALUE,
            (double)l->lag);
    }
    put(rd, &n, MW_SIGNAL_DLQ_RATE, "", MW_SAMPLE_VALUE, (double)r->dlq_records / 60.0);
    mw_pipeline_memory_free(m);
    *m = fresh;
    *out = rd;
    *n_out = n;
    return 0;
}
