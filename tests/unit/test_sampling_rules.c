/* test_sampling_rules.c — the rules file the agent publishes for its clients
 * (common/sampling_rules.c) and the client's following of it (agent/client/client_sampling.c):
 * what is written reads back the same; a bad file is refused with its line; a client omits a
 * payload exactly when the agent's own sampler (agent/sampler.c) drops it by the rate; a
 * client follows a changed file, and a removed one, at its next look. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alloc.h"
#include "client_sampling.h"
#include "sampler.h"
#include "sampling_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct mw_sampling_rule three_rules[] = {
    {.name = "churn", .rate = 0.1, .keep_errors = true, .slower_than_us = 5000},
    {.name = "*", .rate = 0.25, .keep_errors = false, .slower_than_us = 0},
    {.name = "fraud-v2.x_y", .rate = 1.0 / 3.0, .keep_errors = false, .slower_than_us = 1},
};

static void temp_path(char *out, size_t size, const char *what)
{
    snprintf(out, size, "/tmp/mw-test-sampling-%d-%s", (int)getpid(), what);
}

static void test_written_rules_read_back_the_same(void **state)
{
    (void)state;
    char path[256], err[256];
    temp_path(path, sizeof path, "roundtrip.sampling");
    assert_int_equal(mw_sampling_rules_write(path, three_rules, 3, 0), 0);
    struct mw_sampling_rules *r = mw_sampling_rules_read(path, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->n, 3);
    /* sorted by name: "*" first */
    assert_string_equal(r->rule[0].name, "*");
    assert_string_equal(r->rule[1].name, "churn");
    assert_string_equal(r->rule[2].name, "fraud-v2.x_y");
    assert_true(r->rule[1].rate == 0.1 && r->rule[1].keep_errors && r->rule[1].slower_than_us == 5000);
    assert_true(r->rule[2].rate == 1.0 / 3.0); /* %.17g reads back the same double */
    assert_true(r->rule[0].rate == 0.25 && !r->rule[0].keep_errors);
    assert_ptr_equal(mw_sampling_rules_find(r, "churn"), &r->rule[1]);
    assert_ptr_equal(mw_sampling_rules_find(r, "other"), &r->rule[0]);
    assert_int_equal(r->count_bucket_ms, 0); /* no count line: clients send heads */
    mw_free(r);
    unlink(path);

    /* with the count line: clients may count, in buckets that wide */
    assert_int_equal(mw_sampling_rules_write(path, three_rules, 3, 60000), 0);
    r = mw_sampling_rules_read(path, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->count_bucket_ms, 60000);
    assert_int_equal(r->n, 3);
    assert_string_equal(r->rule[1].name, "churn");
    mw_free(r);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[64];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "count 60000\n");
    fclose(f);
    unlink(path);

    /* no "*": a model without its own rule has none (the agent keeps all) */
    assert_int_equal(mw_sampling_rules_write(path, three_rules, 1, 0), 0);
    r = mw_sampling_rules_read(path, err, sizeof err);
    assert_non_null(r);
    assert_null(mw_sampling_rules_find(r, "other"));
    assert_non_null(mw_sampling_rules_find(r, "churn"));
    mw_free(r);
    /* no rules at all */
    assert_int_equal(mw_sampling_rules_write(path, NULL, 0, 0), 0);
    r = mw_sampling_rules_read(path, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->n, 0);
    assert_null(mw_sampling_rules_find(r, "churn"));
    mw_free(r);
    unlink(path);
}

static void expect_refused(const char *text, const char *message)
{
    char err[256] = "";
    struct mw_sampling_rules *r = mw_sampling_rules_parse(text, strlen(text), err, sizeof err);
    if (r)
        fail_msg("accepted: %s", text);
    if (!strstr(err, message))
        fail_msg("error \"%s\" does not say \"%s\"", err, message);
}

static void test_a_bad_file_is_refused_with_its_line(void **state)
{
    (void)state;
    expect_refused("", "line 1");
    expect_refused("modelwatch-sampling 2\nchurn 0.1 1 0\n", "line 1");
    expect_refused("modelwatch-sampling 1\nchurn 0.1 1\n", "line 2");
    expect_refused("modelwatch-sampling 1\nchurn 0.1 1 0 extra\n", "line 2");
    expect_refused("modelwatch-sampling 1\n* 0.5 0 0\nchurn 1.5 1 0\n", "line 3");
    expect_refused("modelwatch-sampling 1\nchurn nan 1 0\n", "line 2");
    expect_refused("modelwatch-sampling 1\nchurn 0.1 2 0\n", "line 2");
    expect_refused("modelwatch-sampling 1\nchurn 0.1 1 -5\n", "line 2");
    expect_refused("modelwatch-sampling 1\nchurn 0.1 1 5x\n", "line 2");
    expect_refused("modelwatch-sampling 1\n\nchurn 0.1 1 5\n", "line 2");
    expect_refused("modelwatch-sampling 1\nchurn 0.1 1 0\nchurn 0.2 1 0\n", "two rules for \"churn\"");
    expect_refused("modelwatch-sampling 1\ncount 0\nchurn 0.1 1 0\n", "line 2: not \"count");
    expect_refused("modelwatch-sampling 1\ncount 60s\n", "line 2: not \"count");
    expect_refused("modelwatch-sampling 1\ncount -1\n", "line 2: not \"count");
    expect_refused("modelwatch-sampling 1\ncount 3600001\n", "line 2: not \"count");
    /* only as the second line */
    expect_refused("modelwatch-sampling 1\nchurn 0.1 1 0\ncount 60000\n", "line 3");
    const char with_nul[] = "modelwatch-sampling 1\nchu\0rn 0.1 1 0\n";
    char err[256];
    assert_null(mw_sampling_rules_parse(with_nul, sizeof with_nul - 1, err, sizeof err));
    /* one rule past the limit */
    size_t cap = 64 + (size_t)(MW_SAMPLING_RULES_MAX + 1) * 24;
    char *many = malloc(cap);
    assert_non_null(many);
    size_t len = (size_t)sprintf(many, "%s\n", MW_SAMPLING_RULES_MAGIC);
    for (int i = 0; i <= MW_SAMPLING_RULES_MAX; i++)
        len += (size_t)sprintf(many + len, "m%d 0.5 0 0\n", i);
    assert_null(mw_sampling_rules_parse(many, len, err, sizeof err));
    assert_non_null(strstr(err, "more than"));
    /* exactly the limit is taken */
    len = (size_t)sprintf(many, "%s\n", MW_SAMPLING_RULES_MAGIC);
    for (int i = 0; i < MW_SAMPLING_RULES_MAX; i++)
        len += (size_t)sprintf(many + len, "m%d 0.5 0 0\n", i);
    struct mw_sampling_rules *r = mw_sampling_rules_parse(many, len, err, sizeof err);
    assert_non_null(r);
    assert_int_equal(r->n, MW_SAMPLING_RULES_MAX);
    mw_free(r);
    free(many);
    /* a missing file says so with ENOENT */
    assert_null(mw_sampling_rules_read("/nonexistent/dir/x.sampling", err, sizeof err));
}

/* The client's decision is the agent's rate decision: for every event, it omits the payload
 * exactly when the agent's sampler drops it by the rate (no cap in these rules). */
static void test_client_omits_exactly_what_the_sampler_drops_by_rate(void **state)
{
    (void)state;
    struct mw_model_rule model_rules[] = {
        {.name = "churn", .sample_rate = 0.1, .keep_errors = true, .keep_slower_than_ms = 5},
        {.name = "*", .sample_rate = 0.25},
        {.name = "fraud", .sample_rate = 1.0 / 3.0, .keep_slower_than_ms = 1},
        {.name = "none", .sample_rate = 0},
        {.name = "all", .sample_rate = 1},
    };
    const size_t n = sizeof model_rules / sizeof model_rules[0];
    struct mw_sampler *sampler = NULL;
    char err[256];
    assert_int_equal(mw_sampler_create(model_rules, n, NULL, &sampler, err, sizeof err), 0);
    struct mw_sampling_rule published[5];
    for (size_t i = 0; i < n; i++)
        published[i] = (struct mw_sampling_rule){
            .name = model_rules[i].name,
            .rate = model_rules[i].sample_rate,
            .keep_errors = model_rules[i].keep_errors,
            .slower_than_us = (uint64_t)model_rules[i].keep_slower_than_ms * 1000u};
    char path[256];
    temp_path(path, sizeof path, "decide.sampling");
    assert_int_equal(mw_sampling_rules_write(path, published, n, 0), 0);
    struct mw_sampling_rules *rules = mw_sampling_rules_read(path, err, sizeof err);
    assert_non_null(rules);
    unlink(path);
    static const char *const models[] = {"churn", "fraud", "other", "none", "all"};
    size_t omitted = 0, agreed = 0;
    for (int i = 0; i < 200000; i++) {
        char id[32];
        snprintf(id, sizeof id, "p-%d", i);
        const char *model = models[i % 5];
        bool is_error = i % 7 == 0;
        uint64_t latency_us = (uint64_t)(i * 37) % 9000;
        double weight = 0;
        enum mw_sample_reason why;
        mw_sampler_keep_event(sampler, model, id, is_error, latency_us, 0, &weight, &why);
        bool omits = mw_sampling_rule_omits(mw_sampling_rules_find(rules, model), id, is_error,
                                            latency_us);
        if (omits != (why == MW_SAMPLE_DROPPED_RATE))
            fail_msg("event %s of %s: client omits=%d, sampler says %s", id, model, omits,
                     mw_sample_reason_name(why));
        omitted += omits;
        agreed++;
    }
    assert_int_equal(agreed, 200000);
    assert_true(omitted > 90000 && omitted < 150000); /* the rules do omit */
    mw_free(rules);
    mw_sampler_destroy(sampler);
}

static struct mw_event ev_of(const char *model, const char *id, int status, uint64_t lat)
{
    return (struct mw_event){.model = model, .prediction_id = id, .status = status,
                             .latency_us = lat};
}

/* An id the 0.25 rate does not select and one it does (mw_sampler_unit is pinned). */
static void two_ids(char *unselected, char *selected)
{
    unselected[0] = selected[0] = '\0';
    for (int i = 0; !unselected[0] || !selected[0]; i++) {
        char id[32];
        snprintf(id, sizeof id, "id-%d", i);
        strcpy(mw_sampler_unit(id) < 0.25 ? selected : unselected, id);
    }
}

static void test_client_follows_the_file(void **state)
{
    (void)state;
    char sock[256], path[300];
    temp_path(sock, sizeof sock, "agent.sock");
    snprintf(path, sizeof path, "%s%s", sock, MW_SAMPLING_RULES_SUFFIX);
    unlink(path);
    char no[32], yes[32];
    two_ids(no, yes);
    struct mw_event unselected = ev_of("m", no, MW_STATUS_OK, 10);
    struct mw_event selected = ev_of("m", yes, MW_STATUS_OK, 10);
    struct mw_event error = ev_of("m", no, MW_STATUS_ERROR, 10);

    struct mw_client_sampling s;
    assert_int_equal(mw_client_sampling_init(&s, sock), 0);
    assert_false(mw_client_sampling_omits(&s, &unselected)); /* no file: everything whole */

    const struct mw_sampling_rule quarter[] = {{.name = "*", .rate = 0.25, .keep_errors = true}};
    assert_int_equal(mw_sampling_rules_write(path, quarter, 1, 0), 0);
    uint64_t now = 10ull * 1000 * 1000 * 1000;
    mw_client_sampling_refresh(&s, now);
    assert_true(mw_client_sampling_omits(&s, &unselected));
    assert_false(mw_client_sampling_omits(&s, &selected));
    assert_false(mw_client_sampling_omits(&s, &error));

    /* a reload that keeps everything: followed at the next look, not before */
    const struct mw_sampling_rule all[] = {{.name = "*", .rate = 1}};
    assert_int_equal(mw_sampling_rules_write(path, all, 1, 0), 0);
    mw_client_sampling_refresh(&s, now + 500ull * 1000 * 1000);
    assert_true(mw_client_sampling_omits(&s, &unselected));
    mw_client_sampling_refresh(&s, now + 1100ull * 1000 * 1000);
    assert_false(mw_client_sampling_omits(&s, &unselected));

    /* rules for another model only: this one keeps everything */
    const struct mw_sampling_rule other[] = {{.name = "other", .rate = 0}};
    assert_int_equal(mw_sampling_rules_write(path, other, 1, 0), 0);
    mw_client_sampling_refresh(&s, now + 2200ull * 1000 * 1000);
    assert_false(mw_client_sampling_omits(&s, &unselected));
    struct mw_event of_other = ev_of("other", yes, MW_STATUS_OK, 10);
    assert_true(mw_client_sampling_omits(&s, &of_other));

    /* a file that does not parse counts as none */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("modelwatch-sampling 1\nother zero 0 0\n", f);
    fclose(f);
    mw_client_sampling_refresh(&s, now + 3300ull * 1000 * 1000);
    assert_false(mw_client_sampling_omits(&s, &of_other));

    /* an agent killed before it removed its file, and another bound the socket since (maybe
     * one that predates the file): rules older than the socket are stale */
    assert_int_equal(mw_sampling_rules_write(path, quarter, 1, 0), 0);
    mw_client_sampling_refresh(&s, now + 4400ull * 1000 * 1000);
    assert_true(mw_client_sampling_omits(&s, &unselected));
    usleep(20000);
    FILE *sock_file = fopen(sock, "w");
    assert_non_null(sock_file);
    fclose(sock_file);
    mw_client_sampling_refresh(&s, now + 5500ull * 1000 * 1000);
    assert_false(mw_client_sampling_omits(&s, &unselected));
    /* the agent that bound it publishes its rules after binding: taken */
    usleep(20000);
    assert_int_equal(mw_sampling_rules_write(path, quarter, 1, 0), 0);
    mw_client_sampling_refresh(&s, now + 6600ull * 1000 * 1000);
    assert_true(mw_client_sampling_omits(&s, &unselected));
    unlink(sock);

    /* the agent stopped: the file is gone, every event whole */
    assert_int_equal(mw_sampling_rules_write(path, quarter, 1, 0), 0);
    mw_client_sampling_refresh(&s, now + 7700ull * 1000 * 1000);
    assert_true(mw_client_sampling_omits(&s, &unselected));
    unlink(path);
    mw_client_sampling_refresh(&s, now + 8800ull * 1000 * 1000);
    assert_false(mw_client_sampling_omits(&s, &unselected));
    mw_client_sampling_free(&s);

    /* not ipc://: nothing to follow */
    assert_int_equal(mw_client_sampling_init(&s, NULL), 0);
    mw_client_sampling_refresh(&s, now);
    assert_false(mw_client_sampling_omits(&s, &unselected));
    mw_client_sampling_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_written_rules_read_back_the_same),
        cmocka_unit_test(test_a_bad_file_is_refused_with_its_line),
        cmocka_unit_test(test_client_omits_exactly_what_the_sampler_drops_by_rate),
        cmocka_unit_test(test_client_follows_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
