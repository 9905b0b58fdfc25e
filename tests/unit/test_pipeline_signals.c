/*
 * test_pipeline_signals.c — the pipeline rules' values from what replicas report
 * (alert/pipeline_signals.h, pipeline_health.h's parsers) and their alerts (the evaluator's
 * pipeline step): drop rates worked out by hand across evaluations and an agent restart, spool
 * use, stale agents and partitions read as gone, and an AgentDropping alert that pages naming
 * its agent and clears when the agent is gone.
 */
#include "alert/evaluator.h"
#include "alert/pipeline_signals.h"

#include "alloc.h"
#include "config.h"
#include "error.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MINUTE 60000LL
#define T0 1767225600000LL

static void agent(struct mw_pipeline_readings *r, const char *id, const char *boot,
                  int64_t sealed_at, uint64_t dropped, uint64_t spool, uint64_t spool_max)
{
    char value[256];
    snprintf(value, sizeof value, "%s|%lld|7|%llu|%llu|%llu", boot, (long long)sealed_at,
             (unsigned long long)dropped, (unsigned long long)spool,
             (unsigned long long)spool_max);
    r->agents = realloc(r->agents, (r->n_agents + 1) * sizeof *r->agents);
    assert_int_equal(mw_agent_sample_parse(id, value, &r->agents[r->n_agents]), 0);
    r->n_agents++;
}

static const struct mw_pipeline_reading *find(const struct mw_pipeline_reading *rd, size_t n,
                                              enum mw_signal sig, const char *subject)
{
    for (size_t i = 0; i < n; i++)
        if (rd[i].signal == sig && strcmp(rd[i].subject, subject) == 0)
            return &rd[i];
    fail_msg("no reading of signal %d for %s", (int)sig, subject);
    return NULL;
}

static void free_readings(struct mw_pipeline_readings *r)
{
    for (size_t i = 0; i < r->n_agents; i++) {
        mw_free(r->agents[i].agent);
        mw_free(r->agents[i].boot);
    }
    free(r->agents);
    r->agents = NULL;
    r->n_agents = 0;
}

static void test_parse(void **state)
{
    (void)state;
    struct mw_agent_sample a;
    assert_int_equal(mw_agent_sample_parse("pod-1", "b1|1767225600000|12|40|1024|4096", &a), 0);
    assert_string_equal(a.agent, "pod-1");
    assert_string_equal(a.boot, "b1");
    assert_true(a.sealed_at_ms == T0 && a.sequence == 12 && a.dropped_total == 40 &&
                a.spool_bytes == 1024 && a.spool_max_bytes == 4096);
    mw_free(a.agent);
    mw_free(a.boot);
    const char *bad[] = {"", "b1", "b1|x|1|2|3|4", "b1|1|2|3|4", "b1|1|2|3|4|5|6", "b1|1|-2|3|4|5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mw_agent_sample_parse("pod", bad[i], &a), MW_EPARSE);
    struct mw_lag_sample l;
    assert_int_equal(mw_lag_sample_parse("3", "1500|1767225600000|host:12", &l), 0);
    assert_true(l.lag == 1500 && l.at_ms == T0);
    assert_string_equal(l.partition, "3");
    mw_free(l.partition);
    assert_int_equal(mw_lag_sample_parse("3", "lots", &l), MW_EPARSE);
}

static void test_values(void **state)
{
    (void)state;
    struct mw_pipeline_memory m;
    mw_pipeline_memory_init(&m);
    struct mw_pipeline_readings r = {0};
    struct mw_pipeline_reading *rd;
    size_t n;
    /* First sight: no drop rate yet; spool use from the sample. */
    agent(&r, "a", "b1", T0, 100, 1024, 4096);
    r.dlq_records = 30;
    assert_int_equal(mw_pipeline_signals(&r, &m, T0 + 1000, &rd, &n), 0);
    assert_int_equal(find(rd, n, MW_SIGNAL_AGENT_DROPS, "a")->kind, MW_SAMPLE_NO_VALUE);
    assert_true(find(rd, n, MW_SIGNAL_SPOOL_USE, "a")->value == 0.25);
    assert_true(find(rd, n, MW_SIGNAL_DLQ_RATE, "")->value == 0.5);
    mw_free(rd);
    free_readings(&r);
    /* 60 s later, 220 dropped in 40 s of seals: 5.5 per second. */
    agent(&r, "a", "b1", T0 + 40000, 320, 0, 4096);
    assert_int_equal(mw_pipeline_signals(&r, &m, T0 + 61000, &rd, &n), 0);
    const struct mw_pipeline_reading *d = find(rd, n, MW_SIGNAL_AGENT_DROPS, "a");
    assert_int_equal(d->kind, MW_SAMPLE_VALUE);
    assert_true(d->value == 5.5);
    mw_free(rd);
    free_readings(&r);
    /* Nothing sealed since: nothing dropped since. */
    agent(&r, "a", "b1", T0 + 40000, 320, 0, 4096);
    assert_int_equal(mw_pipeline_signals(&r, &m, T0 + 121000, &rd, &n), 0);
    assert_true(find(rd, n, MW_SIGNAL_AGENT_DROPS, "a")->value == 0);
    mw_free(rd);
    free_readings(&r);
    /* A restart: the new process's 80 drops are the increase, over 20 s. */
    agent(&r, "a", "b2", T0 + 60000, 80, 0, 0);
    assert_int_equal(mw_pipeline_signals(&r, &m, T0 + 181000, &rd, &n), 0);
    assert_true(find(rd, n, MW_SIGNAL_AGENT_DROPS, "a")->value == 4);
    assert_int_equal(find(rd, n, MW_SIGNAL_SPOOL_USE, "a")->kind, MW_SAMPLE_NO_VALUE);
    mw_free(rd);
    free_readings(&r);
    /* Silent for more than 5 minutes: gone. A partition not reported for a minute: gone. */
    agent(&r, "a", "b2", T0 + 60000, 80, 0, 4096);
    struct mw_lag_sample lags[2] = {{.partition = "0", .lag = 9, .at_ms = T0 + 400000},
                                    {.partition = "1", .lag = 7, .at_ms = T0 + 290000}};
    r.lags = lags;
    r.n_lags = 2;
    assert_int_equal(mw_pipeline_signals(&r, &m, T0 + 60000 + 300001, &rd, &n), 0);
    assert_int_equal(find(rd, n, MW_SIGNAL_AGENT_DROPS, "a")->kind, MW_SAMPLE_GONE);
    assert_int_equal(find(rd, n, MW_SIGNAL_SPOOL_USE, "a")->kind, MW_SAMPLE_GONE);
    assert_true(find(rd, n, MW_SIGNAL_CONSUMER_LAG, "0")->kind == MW_SAMPLE_VALUE &&
                find(rd, n, MW_SIGNAL_CONSUMER_LAG, "0")->value == 9);
    assert_int_equal(find(rd, n, MW_SIGNAL_CONSUMER_LAG, "1")->kind, MW_SAMPLE_GONE);
    mw_free(rd);
    r.lags = NULL;
    r.n_lags = 0;
    free_readings(&r);
    mw_pipeline_memory_free(&m);
}

static const char *const DROP_RULES = "groups:\n"
                                      "  - name: p\n"
                                      "    interval: 1m\n"
                                      "    rules:\n"
                                      "      - name: AgentDropping\n"
                                      "        signal: agent_drops\n"
                                      "        comparison: \">\"\n"
                                      "        threshold: 0\n"
                                      "        for: 1m\n"
                                      "        severity: warning\n"
                                      "        annotations:\n"
                                      "          summary: \"{{ $labels.agent }} drops\"\n";

static void test_alert(void **state)
{
    (void)state;
    struct mw_aggregator_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct mw_rule_set rules;
    struct mw_cfg_error err;
    memset(&rules, 0, sizeof rules);
    if (mw_rules_load_string(&rules, DROP_RULES, "rules.yaml", &err) != 0)
        fail_msg("%s", err.message);
    struct mw_evaluator *ev;
    struct mw_evaluator_options opts = {.cfg = &cfg, .external_url = "http://mw"};
    assert_int_equal(mw_evaluator_create(&opts, &ev), 0);
    mw_evaluator_set_rules(ev, &rules);
    struct mw_eval_transitions t = {0};
    struct mw_pipeline_reading healthy = {MW_SIGNAL_AGENT_DROPS, "pod-7", MW_SAMPLE_VALUE, 0};
    struct mw_pipeline_reading dropping = {MW_SIGNAL_AGENT_DROPS, "pod-7", MW_SAMPLE_VALUE, 2.5};
    assert_int_equal(mw_evaluator_step_pipeline(ev, &healthy, 1, T0, &t), 0);
    assert_int_equal(mw_evaluator_count(ev), 0);
    assert_int_equal(mw_evaluator_step_pipeline(ev, &dropping, 1, T0 + MINUTE, &t), 0);
    assert_int_equal(t.n, 0); /* pending: `for` is 1m */
    /* Within the interval: not stepped again. */
    assert_int_equal(mw_evaluator_step_pipeline(ev, &dropping, 1, T0 + MINUTE + 1000, &t), 0);
    assert_int_equal(t.n, 0);
    assert_int_equal(mw_evaluator_step_pipeline(ev, &dropping, 1, T0 + 2 * MINUTE, &t), 0);
    assert_int_equal(t.n, 1);
    struct mw_alert_inst *inst = t.items[0].inst;
    assert_int_equal(t.items[0].change, MW_EVAL_PAGE);
    assert_string_equal(mw_labels_get(&inst->labels, "agent"), "pod-7");
    assert_null(mw_labels_get(&inst->labels, "model"));
    assert_string_equal(mw_labels_get(&inst->annotations, "summary"), "pod-7 drops");
    assert_string_equal(inst->generator_url, "http://mw/metrics");
    /* The agent is no longer reported at all: its alert clears. */
    t.n = 0;
    assert_int_equal(mw_evaluator_step_pipeline(ev, NULL, 0, T0 + 3 * MINUTE, &t), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.items[0].change, MW_EVAL_RESOLVE);
    assert_int_equal(inst->st.state, MW_ALERT_RESOLVED);
    mw_eval_transitions_free(&t);
    mw_evaluator_destroy(ev);
    mw_rule_set_free(&rules);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_alert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
