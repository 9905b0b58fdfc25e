/*
 * test_config.c — unit tests for common/config.c, the table-driven YAML configuration loader.
 *
 * One example table (an agent-like config with nested keys, a pass-through string map and a list
 * of rule mappings) is loaded from text; the tests check values, defaults and the exact
 * "file:line: key: what is wrong" messages, that --dump-config output loads back to the same
 * values, and that junk input and allocation failures give an error, never a crash or a leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "buf.h"
#include "config.h"
#include "error.h"
#include "kafka_conf.h"

#define NAME "agent.yaml"

/* ---------------------------------------------------------------------------------------- */
/* The example table                                                                         */

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const severities[] = {"page", "ticket", NULL};

struct rule {
    char *name;
    double rate;
    int64_t window_ms;
    int severity;
    char *model;
    struct mw_cfg_strlist labels;
};

static const struct mw_cfg_field rule_table[] = {
    {.key = "name",
     .type = MW_CFG_STRING,
     .offset = offsetof(struct rule, name),
     .required = true,
     .desc = "rule name"},
    {.key = "rate",
     .type = MW_CFG_DOUBLE,
     .offset = offsetof(struct rule, rate),
     .def = "0.5",
     .min = 0,
     .max = 1,
     .desc = "threshold"},
    {.key = "window",
     .type = MW_CFG_DURATION,
     .offset = offsetof(struct rule, window_ms),
     .def = "5m",
     .desc = "evaluation window"},
    {.key = "severity",
     .type = MW_CFG_ENUM,
     .offset = offsetof(struct rule, severity),
     .def = "ticket",
     .choices = severities,
     .desc = "who gets told"},
    {.key = "match.model",
     .type = MW_CFG_STRING,
     .offset = offsetof(struct rule, model),
     .def = "*",
     .desc = "model name pattern"},
    {.key = "labels",
     .type = MW_CFG_STRLIST,
     .offset = offsetof(struct rule, labels),
     .desc = "extra labels"},
    MW_CFG_END,
};

struct cfg {
    struct mw_cfg_strlist brokers;
    char *topic;
    struct mw_cfg_strmap props;
    int64_t max_records;
    int64_t max_age_ms;
    uint64_t max_bytes;
    double sample_rate;
    bool redact;
    int log_level;
    char *name;
    struct mw_cfg_list rules;
};

static const struct mw_cfg_field table[] = {
    {.key = "kafka.brokers",
     .type = MW_CFG_STRLIST,
     .offset = offsetof(struct cfg, brokers),
     .min = 1,
     .max = 16,
     .required = true,
     .desc = "bootstrap brokers"},
    {.key = "kafka.topic",
     .type = MW_CFG_STRING,
     .offset = offsetof(struct cfg, topic),
     .def = "modelwatch.telemetry",
     .desc = "topic"},
    {.key = "kafka.properties",
     .type = MW_CFG_STRMAP,
     .offset = offsetof(struct cfg, props),
     .desc = "librdkafka properties"},
    {.key = "batch.max_records",
     .type = MW_CFG_INT,
     .offset = offsetof(struct cfg, max_records),
     .def = "1000",
     .min = 1,
     .max = 1000000,
     .reloadable = true,
     .desc = "records per batch"},
    {.key = "batch.max_age",
     .type = MW_CFG_DURATION,
     .offset = offsetof(struct cfg, max_age_ms),
     .def = "1s",
     .min = 10,
     .max = 300000,
     .reloadable = true,
     .desc = "seal after"},
    {.key = "batch.max_bytes",
     .type = MW_CFG_SIZE,
     .offset = offsetof(struct cfg, max_bytes),
     .def = "1MiB",
     .min = 1024,
     .max = 1073741824.0,
     .desc = "bytes per batch"},
    {.key = "sample_rate",
     .type = MW_CFG_DOUBLE,
     .offset = offsetof(struct cfg, sample_rate),
     .def = "1.0",
     .min = 0,
     .max = 1,
     .desc = "fraction captured"},
    {.key = "redact",
     .type = MW_CFG_BOOL,
     .offset = offsetof(struct cfg, redact),
     .def = "true",
     .desc = "redact inputs"},
    {.key = "log.level",
     .type = MW_CFG_ENUM,
     .offset = offsetof(struct cfg, log_level),
     .def = "info",
     .choices = log_levels,
     .desc = "log threshold"},
    {.key = "name",
     .type = MW_CFG_STRING,
     .offset = offsetof(struct cfg, name),
     .desc = "instance name"},
    {.key = "rules",
     .type = MW_CFG_LIST,
     .offset = offsetof(struct cfg, rules),
     .max = 8,
     .sub = rule_table,
     .elem_size = sizeof(struct rule),
     .desc = "alert rules"},
    MW_CFG_END,
};

/* A config using every type, with strings that need quoting when dumped. */
static const char rich_yaml[] = "# agent config\n"
                                "kafka:\n"
                                "  brokers: [\"b1:9092\", b2:9092]\n"
                                "  topic: \"needs: quoting #really\"\n"
                                "  properties:\n"
                                "    socket.timeout.ms: 3000\n"
                                "    enable.idempotence: true\n"
                                "    \"weird key\": \"  spaced  \"\n"
                                "    empty: \"\"\n"
                                "    multi: \"line1\\nline2\\ttab \\\"q\\\" \\\\\"\n"
                                "batch:\n"
                                "  max_records: 42\n"
                                "  max_age: 1.5s\n"
                                "  max_bytes: 64KiB\n"
                                "sample_rate: 0.1\n"
                                "redact: No\n"
                                "log: {level: WARN}\n"
                                "name: \"yes\"\n"
                                "rules:\n"
                                "  - name: p99\n"
                                "    rate: 0.25\n"
                                "    window: 90s\n"
                                "    severity: page\n"
                                "    match:\n"
                                "      model: fraud-*\n"
                                "    labels: [a, \"b c\", \"\", \"~\"]\n"
                                "  - name: \"\\u00fcn\\u00efcode \\u2713 - [x]\"\n"
                                "  - {name: '#3', rate: 1e-3, window: 2h}\n";

static int load(const char *text, struct cfg *c, struct mw_cfg_error *err)
{
    return mw_config_load_string(table, c, text, NAME, err);
}

/* Load `text`, expect rc and exactly `message`, free. */
static void expect_error(const char *text, int want_rc, const char *want_message)
{
    struct cfg c;
    struct mw_cfg_error err;
    int rc = load(text, &c, &err);
    mw_config_free(table, &c);
    if (rc != want_rc || strcmp(err.message, want_message))
        print_error("input:\n%s\nmessage: %s\n", text, err.message);
    assert_int_equal(rc, want_rc);
    assert_string_equal(err.message, want_message);
}

struct error_case {
    const char *yaml;
    const char *message;
};

static void expect_errors(const struct error_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(cases[i].yaml, MW_ECONFIG, cases[i].message);
}

#define BROKERS "kafka:\n  brokers: [a]\n" /* the required key, lines 1-2 */

/* ---------------------------------------------------------------------------------------- */
/* Values, defaults, nesting                                                                 */

static void test_defaults_applied(void **state)
{
    (void)state;
    struct cfg c;
    struct mw_cfg_error err;
    assert_int_equal(load(BROKERS, &c, &err), 0);
    assert_int_equal(c.brokers.n, 1);
    assert_string_equal(c.brokers.items[0], "a");
    assert_string_equal(c.topic, "modelwatch.telemetry");
    assert_int_equal(c.props.n, 0);
    assert_int_equal(c.max_records, 1000);
    assert_int_equal(c.max_age_ms, 1000);
    assert_int_equal(c.max_bytes, 1 << 20);
    assert_true(c.sample_rate == 1.0);
    assert_true(c.redact);
    assert_int_equal(c.log_level, 1);
    assert_null(c.name);
    assert_int_equal(c.rules.n, 0);
    mw_config_free(table, &c);
    assert_null(c.topic);
    assert_null(c.brokers.items);
}

static void test_defaults_only(void **state)
{
    (void)state;
    struct cfg c;
    struct mw_cfg_error err;
    assert_int_equal(mw_config_defaults(table, &c, &err), 0);
    assert_string_equal(c.topic, "modelwatch.telemetry");
    assert_int_equal(c.max_bytes, 1 << 20);
    mw_config_free(table, &c);
    mw_config_free(table, NULL);
}

static void test_nested_keys(void **state)
{
    (void)state;
    struct cfg c;
    struct mw_cfg_error err;
    const char *yaml = "kafka:\n"
                       "  brokers:\n"
                       "    - k1:9092\n"
                       "    - k2:9092\n"
                       "  topic: t\n"
                       "batch: {max_records: 7, max_age: 250ms, max_bytes: 10MB}\n"
                       "log:\n"
                       "  level: debug\n"
                       "kafka.properties: {acks: all}\n"; /* a dotted key at the top works too */
    assert_int_equal(load(yaml, &c, &err), 0);
    assert_int_equal(c.brokers.n, 2);
    assert_string_equal(c.brokers.items[1], "k2:9092");
    assert_string_equal(c.topic, "t");
    assert_int_equal(c.max_records, 7);
    assert_int_equal(c.max_age_ms, 250);
    assert_int_equal(c.max_bytes, 10000000);
    assert_int_equal(c.log_level, 0);
    assert_string_equal(mw_config_strmap_get(&c.props, "acks"), "all");
    mw_config_free(table, &c);
}

static void test_all_types(void **state)
{
    (void)state;
    struct cfg c;
    struct mw_cfg_error err;
    assert_int_equal(load(rich_yaml, &c, &err), 0);
    assert_string_equal(c.topic, "needs: quoting #really");
    assert_int_equal(c.max_records, 42);
    assert_int_equal(c.max_age_ms, 1500);
    assert_int_equal(c.max_bytes, 65536);
    assert_true(c.sample_rate == 0.1);
    assert_false(c.redact);
    assert_int_equal(c.log_level, 2); /* enum names match case-insensitively */
    assert_string_equal(c.name, "yes");
    assert_int_equal(c.rules.n, 3);
    const struct rule *rules = c.rules.items;
    assert_string_equal(rules[0].name, "p99");
    assert_true(rules[0].rate == 0.25);
    assert_int_equal(rules[0].window_ms, 90000);
    assert_int_equal(rules[0].severity, 0);
    assert_string_equal(rules[0].model, "fraud-*");
    assert_int_equal(rules[0].labels.n, 4);
    assert_string_equal(rules[0].labels.items[2], "");
    /* defaults are applied to each element */
    assert_true(rules[1].rate == 0.5);
    assert_int_equal(rules[1].window_ms, 300000);
    assert_int_equal(rules[1].severity, 1);
    assert_string_equal(rules[1].model, "*");
    assert_string_equal(rules[1].name, "\xc3\xbcn\xc3\xaf"
                                       "code \xe2\x9c\x93 - [x]");
    assert_int_equal(rules[2].window_ms, 7200000);
    assert_true(rules[2].rate == 1e-3);
    mw_config_free(table, &c);
}

static void test_strmap_pass_through(void **state)
{
    (void)state;
    struct cfg c;
    struct mw_cfg_error err;
    assert_int_equal(load(rich_yaml, &c, &err), 0);
    assert_int_equal(c.props.n, 5);
    assert_string_equal(mw_config_strmap_get(&c.props, "socket.timeout.ms"), "3000");
    assert_string_equal(mw_config_strmap_get(&c.props, "enable.idempotence"), "true");
    assert_string_equal(mw_config_strmap_get(&c.props, "weird key"), "  spaced  ");
    assert_string_equal(mw_config_strmap_get(&c.props, "empty"), "");
    assert_string_equal(mw_config_strmap_get(&c.props, "multi"), "line1\nline2\ttab \"q\" \\");
    assert_null(mw_config_strmap_get(&c.props, "socket"));
    assert_null(mw_config_strmap_get(NULL, "x"));
    mw_config_free(table, &c);
}

static void test_empty_inputs_are_defaults(void **state)
{
    (void)state;
    static const struct mw_cfg_field small[] = {
        {.key = "a.b", .type = MW_CFG_INT, .offset = 0, .def = "5"},
        MW_CFG_END,
    };
    const char *inputs[] = {"", "# only a comment\n", "---\n", "a:\n", "~\n", "{}\n"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        int64_t value = -1;
        struct mw_cfg_error err;
        assert_int_equal(mw_config_load_string(small, &value, inputs[i], "e.yaml", &err), 0);
        assert_int_equal(value, 5);
    }
}

static void test_later_value_replaces_default_string(void **state)
{
    (void)state;
    struct cfg c;
    struct mw_cfg_error err;
    assert_int_equal(load(BROKERS "kafka.topic: other\nname: ~\n", &c, &err), 0);
    assert_string_equal(c.topic, "other");
    assert_null(c.name);
    mw_config_free(table, &c);
}

/* ---------------------------------------------------------------------------------------- */
/* Errors                                                                                    */

static void test_unknown_key(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {BROKERS "  topik: x\n", NAME ":3: kafka.topik: unknown key"},
        {BROKERS "bach:\n  max_records: 1\n", NAME ":3: bach: unknown key"},
        {BROKERS "batch:\n  max_records: 1\n  nested: {x: 1}\n",
         NAME ":5: batch.nested: unknown key"},
        {BROKERS "kafka.topic.x: 1\n", NAME ":3: kafka.topic.x: unknown key"},
        {BROKERS "rules:\n  - name: a\n    nmae: b\n", NAME ":5: rules[0].nmae: unknown key"},
    };
    expect_errors(cases, sizeof cases / sizeof cases[0]);
}

static void test_bad_type(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {BROKERS "batch:\n  max_records: ten\n",
         NAME ":4: batch.max_records: expected an integer, got \"ten\""},
        {BROKERS "batch:\n  max_records: 1.5\n",
         NAME ":4: batch.max_records: expected an integer, got \"1.5\""},
        {BROKERS "batch:\n  max_records: 99999999999999999999\n",
         NAME ":4: batch.max_records: integer \"99999999999999999999\" is out of range"},
        {BROKERS "batch:\n  max_records: {a: 1}\n",
         NAME ":4: batch.max_records: expected an integer, got a mapping"},
        {BROKERS "batch:\n  max_records:\n", NAME ":4: batch.max_records: missing value"},
        {BROKERS "name: [a]\n", NAME ":3: name: expected a string, got a sequence"},
        {BROKERS "sample_rate: .inf\n",
         NAME ":3: sample_rate: expected a finite number, got \".inf\""},
        {BROKERS "sample_rate: nan\n",
         NAME ":3: sample_rate: expected a finite number, got \"nan\""},
        {BROKERS "sample_rate: 1e999\n",
         NAME ":3: sample_rate: expected a finite number, got \"1e999\""},
        {"kafka: 5\n", NAME ":1: kafka: expected a mapping, got \"5\""},
        {"kafka: [a]\n", NAME ":1: kafka: expected a mapping, got a sequence"},
        {"kafka:\n  brokers: a\n", NAME ":2: kafka.brokers: expected a sequence, got \"a\""},
        {"kafka:\n  brokers: [a, [b]]\n",
         NAME ":2: kafka.brokers[1]: expected a string, got a sequence"},
        {BROKERS "  properties: [a]\n",
         NAME ":3: kafka.properties: expected a mapping, got a sequence"},
        {BROKERS "  properties:\n    acks: {x: 1}\n",
         NAME ":4: kafka.properties.acks: expected a scalar value, got a mapping"},
        {BROKERS "rules: {name: a}\n",
         NAME ":3: rules: expected a sequence of mappings, got a mapping"},
        {BROKERS "rules:\n  - name: a\n  - b\n",
         NAME ":5: rules[1]: expected a mapping, got \"b\""},
        {"- a\n- b\n", NAME ":1: the top level must be a mapping, got a sequence"},
        {"hello\n", NAME ":1: the top level must be a mapping, got \"hello\""},
        {BROKERS "? [a]\n: b\n", NAME ":3: (top level): keys must be scalars"},
        {BROKERS "  topic: *x\n", NAME ":3: kafka.topic: aliases are not supported"},
        {"kafka:\n  brokers: &b [a]\n  properties:\n    x: *b\n",
         NAME ":4: kafka.properties.x: aliases are not supported"},
        {"a: 1\n---\nb: 2\n", NAME ":2: only one YAML document is allowed"},
    };
    expect_errors(cases, sizeof cases / sizeof cases[0]);
}

static void test_out_of_bounds(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {BROKERS "batch:\n  max_records: 0\n",
         NAME ":4: batch.max_records: 0 is below the minimum 1"},
        {BROKERS "batch:\n  max_records: 1000001\n",
         NAME ":4: batch.max_records: 1000001 is above the maximum 1000000"},
        {BROKERS "batch:\n  max_age: 10m\n", NAME ":4: batch.max_age: 10m is above the maximum 5m"},
        {BROKERS "batch:\n  max_age: 5ms\n",
         NAME ":4: batch.max_age: 5ms is below the minimum 10ms"},
        {BROKERS "batch:\n  max_bytes: 2GiB\n",
         NAME ":4: batch.max_bytes: 2GiB is above the maximum 1GiB"},
        {BROKERS "batch:\n  max_bytes: 1000\n",
         NAME ":4: batch.max_bytes: 1000 is below the minimum 1KiB"},
        {BROKERS "sample_rate: 1.5\n", NAME ":3: sample_rate: 1.5 is above the maximum 1"},
        {BROKERS "sample_rate: -0.1\n", NAME ":3: sample_rate: -0.1 is below the minimum 0"},
        {"kafka:\n  brokers: []\n",
         NAME ":2: kafka.brokers: has 0 items, fewer than the minimum 1"},
        {BROKERS "rules: [{name: a}, {name: a}, {name: a}, {name: a}, {name: a}, {name: a},"
                 " {name: a}, {name: a}, {name: a}]\n",
         NAME ":3: rules: has 9 items, more than the maximum 8"},
    };
    expect_errors(cases, sizeof cases / sizeof cases[0]);
}

static void test_bad_duration_size_bool_enum(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {BROKERS "batch:\n  max_age: fast\n",
         NAME ":4: batch.max_age: invalid duration \"fast\" (use e.g. 500ms, 1s, 5m)"},
        {BROKERS "batch:\n  max_age: 500\n",
         NAME ":4: batch.max_age: invalid duration \"500\" (use e.g. 500ms, 1s, 5m)"},
        {BROKERS "batch:\n  max_age: -1s\n",
         NAME ":4: batch.max_age: invalid duration \"-1s\" (use e.g. 500ms, 1s, 5m)"},
        {BROKERS "batch:\n  max_bytes: big\n",
         NAME ":4: batch.max_bytes: invalid size \"big\" (use e.g. 512, 64KiB, 16MiB, 1GB)"},
        {BROKERS "batch:\n  max_bytes: 1.5\n",
         NAME ":4: batch.max_bytes: invalid size \"1.5\" (use e.g. 512, 64KiB, 16MiB, 1GB)"},
        {BROKERS "redact: maybe\n",
         NAME ":3: redact: expected a boolean (true/false, yes/no, on/off), got \"maybe\""},
        {BROKERS "log:\n  level: loud\n",
         NAME ":4: log.level: invalid value \"loud\" (choose one of: debug, info, warn, error)"},
        {BROKERS "rules:\n  - name: a\n    severity: sms\n",
         NAME ":5: rules[0].severity: invalid value \"sms\" (choose one of: page, ticket)"},
    };
    expect_errors(cases, sizeof cases / sizeof cases[0]);
}

static void test_bool_spellings(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"true", true},   {"TRUE", true}, {"yes", true},  {"On", true},
                 {"false", false}, {"No", false},  {"off", false}, {"OFF", false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[128];
        struct cfg c;
        struct mw_cfg_error err;
        snprintf(yaml, sizeof yaml, BROKERS "redact: %s\n", cases[i].text);
        assert_int_equal(load(yaml, &c, &err), 0);
        assert_int_equal(c.redact, cases[i].value);
        mw_config_free(table, &c);
    }
}

static void test_missing_required_key(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {"", NAME ": kafka.brokers: required key missing"},
        {"kafka:\n  topic: x\n", NAME ": kafka.brokers: required key missing"},
        {BROKERS "rules:\n  - name: a\n  - rate: 0.1\n",
         NAME ":5: rules[1].name: required key missing"},
        {BROKERS "rules:\n  - name: ~\n", NAME ":4: rules[0].name: missing value"},
    };
    expect_errors(cases, sizeof cases / sizeof cases[0]);
}

static void test_list_element_error_names_index_and_line(void **state)
{
    (void)state;
    expect_error(BROKERS "rules:\n"
                         "  - name: a\n"
                         "    rate: 0.5\n"
                         "  - name: b\n"
                         "    rate: lots\n",
                 MW_ECONFIG, NAME ":7: rules[1].rate: expected a finite number, got \"lots\"");
    expect_error(BROKERS "rules:\n"
                         "  - name: a\n"
                         "  - name: b\n"
                         "    match:\n"
                         "      model: [x]\n",
                 MW_ECONFIG, NAME ":7: rules[1].match.model: expected a string, got a sequence");
    expect_error(BROKERS "rules:\n  - name: a\n    labels: [x, {y: 1}]\n", MW_ECONFIG,
                 NAME ":5: rules[0].labels[1]: expected a string, got a mapping");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {BROKERS "  brokers: [b]\n", NAME ":3: kafka.brokers: duplicate key (first on line 2)"},
        {BROKERS "kafka.brokers: [b]\n", NAME ":3: kafka.brokers: duplicate key (first on line 2)"},
        {BROKERS "batch: {}\nbatch: {}\n", NAME ":4: batch: duplicate key (first on line 3)"},
        {BROKERS "  properties:\n    acks: 1\n    acks: all\n",
         NAME ":5: kafka.properties.acks: duplicate key (first on line 4)"},
        {BROKERS "rules:\n  - name: a\n    name: b\n",
         NAME ":5: rules[0].name: duplicate key (first on line 4)"},
        {BROKERS "log: {level: info, x: 1, level: warn}\n",
         NAME ":3: log.level: duplicate key (first on line 3)"},
    };
    expect_errors(cases, sizeof cases / sizeof cases[0]);
}

/* Regression: a pairwise duplicate scan made a big flat mapping take minutes. */
static void test_large_mapping_duplicate_check_is_fast(void **state)
{
    (void)state;
    enum { N_KEYS = 40000 };
    struct mw_buf yaml;
    mw_buf_init(&yaml, 1 << 20);
    assert_int_equal(mw_buf_append_str(&yaml, BROKERS "  properties:\n"), 0);
    for (int i = 0; i < N_KEYS; i++)
        assert_int_equal(mw_buf_printf(&yaml, "    p%d: %d\n", i, i), 0);
    struct cfg c;
    struct mw_cfg_error err;
    assert_int_equal(load(yaml.data, &c, &err), 0);
    assert_int_equal(c.props.n, N_KEYS);
    assert_string_equal(mw_config_strmap_get(&c.props, "p39999"), "39999");
    mw_config_free(table, &c);
    assert_int_equal(mw_buf_append_str(&yaml, "    p7: again\n    p3: again\n"), 0);
    assert_int_equal(load(yaml.data, &c, &err), MW_ECONFIG);
    assert_string_equal(err.message, NAME ":40004: kafka.properties.p7: duplicate key "
                                          "(first on line 11)");
    mw_config_free(table, &c);
    mw_buf_free(&yaml);
}

static void test_syntax_error_names_line(void **state)
{
    (void)state;
    static const struct error_case cases[] = {
        {BROKERS "batch:\n  max_records: 1\n max_age: 1s\n",
         NAME ":5: did not find expected key (while parsing a block mapping on line 1)"},
        {BROKERS "name: \"unterminated\n",
         NAME ":4: found unexpected end of stream (while scanning a quoted scalar on line 3)"},
        {BROKERS "name: [a, b\n",
         NAME ":4: did not find expected ',' or ']' (while parsing a flow sequence on line 3)"},
        {BROKERS "\tname: x\n",
         NAME ":3: found character that cannot start any token (while scanning for the next "
              "token on line 3)"},
        {BROKERS "name: \x01\n", NAME ":3: control characters are not allowed"},
    };
    expect_errors(cases, sizeof cases / sizeof cases[0]);
}

static void test_deep_nesting_is_refused(void **state)
{
    (void)state;
    char yaml[512];
    size_t n = 0;
    n += (size_t)snprintf(yaml + n, sizeof yaml - n, "name: ");
    for (int i = 0; i < 100; i++)
        yaml[n++] = '[';
    for (int i = 0; i < 100; i++)
        yaml[n++] = ']';
    yaml[n] = '\0';
    expect_error(yaml, MW_ECONFIG, NAME ":1: nested deeper than 64 levels");
}

static void test_missing_file(void **state)
{
    (void)state;
    struct cfg c;
    struct mw_cfg_error err;
    int rc = mw_config_load_file(table, &c, "/nonexistent-dir/missing.yaml", &err);
    assert_int_equal(rc, MW_EIO);
    assert_string_equal(err.message,
                        "/nonexistent-dir/missing.yaml: cannot open: No such file or directory");
    assert_string_equal(c.topic, "modelwatch.telemetry"); /* defaults still set, still freeable */
    mw_config_free(table, &c);
    rc = mw_config_load_file(table, &c, "/", &err);
    assert_int_equal(rc, MW_EIO);
    assert_string_equal(err.message, "/: cannot read: Is a directory");
    mw_config_free(table, &c);
}

static void write_temp(char *path, const char *text)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/test_config_XXXXXX";
    struct cfg c;
    struct mw_cfg_error err;
    write_temp(path, rich_yaml);
    assert_int_equal(mw_config_load_file(table, &c, path, &err), 0);
    assert_int_equal(c.rules.n, 3);
    mw_config_free(table, &c);
    unlink(path);

    char bad[] = "/tmp/test_config_XXXXXX";
    char want[600];
    write_temp(bad, BROKERS "  topik: x\n");
    assert_int_equal(mw_config_load_file(table, &c, bad, &err), MW_ECONFIG);
    snprintf(want, sizeof want, "%s:3: kafka.topik: unknown key", bad);
    assert_string_equal(err.message, want);
    mw_config_free(table, &c);
    unlink(bad);
}

static void test_bad_default_is_reported(void **state)
{
    (void)state;
    static const struct mw_cfg_field broken[] = {
        {.key = "t", .type = MW_CFG_DURATION, .offset = 0, .def = "fast"},
        MW_CFG_END,
    };
    static const struct mw_cfg_field broken_list[] = {
        {.key = "l", .type = MW_CFG_STRLIST, .offset = 0, .def = "[a, {b: c}]"},
        MW_CFG_END,
    };
    int64_t value;
    struct mw_cfg_strlist list;
    struct mw_cfg_error err;
    assert_int_equal(mw_config_defaults(broken, &value, &err), MW_ECONFIG);
    assert_string_equal(err.message,
                        "(defaults): t: invalid duration \"fast\" (use e.g. 500ms, 1s, 5m)");
    assert_int_equal(mw_config_defaults(broken_list, &list, &err), MW_ECONFIG);
    assert_string_equal(err.message, "(defaults):1: l[1]: expected a string, got a mapping");
    mw_config_free(broken_list, &list);
}

static void test_collection_defaults(void **state)
{
    (void)state;
    struct both {
        struct mw_cfg_strlist list;
        struct mw_cfg_strmap map;
    } value;
    static const struct mw_cfg_field fields[] = {
        {.key = "l",
         .type = MW_CFG_STRLIST,
         .offset = offsetof(struct both, list),
         .def = "[a, b]"},
        {.key = "m", .type = MW_CFG_STRMAP, .offset = offsetof(struct both, map), .def = "{k: v}"},
        MW_CFG_END,
    };
    struct mw_cfg_error err;
    assert_int_equal(mw_config_load_string(fields, &value, "l: [c]\n", "x.yaml", &err), 0);
    assert_int_equal(value.list.n, 1); /* the file's list replaces the default */
    assert_string_equal(value.list.items[0], "c");
    assert_string_equal(mw_config_strmap_get(&value.map, "k"), "v");
    mw_config_free(fields, &value);
}

/* ---------------------------------------------------------------------------------------- */
/* Parse helpers                                                                             */

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {
        {"0", 0},
        {"0s", 0},
        {"250ms", 250},
        {"1s", 1000},
        {"1.5s", 1500},
        {"5m", 300000},
        {"2h", 7200000},
        {"1d", 86400000},
        {"0.5ms", 1},
        {"90s", 90000},
        {"9223372036854775807ms", INT64_MAX},
    };
    static const char *const bad[] = {
        "",
        "500",
        "00",
        "1",
        "fast",
        "s",
        "1 s",
        "-1s",
        "1.s",
        ".5s",
        "1S",
        "1sec",
        "1e3ms",
        "1.5",
        "9223372036854775808ms",
        "106751991167301d",
        "99999999999999999999999s",
        " 1s",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(mw_config_parse_duration_ms(good[i].text, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms;
        if (mw_config_parse_duration_ms(bad[i], &ms) != MW_EINVAL)
            fail_msg("duration \"%s\" was accepted", bad[i]);
    }
    assert_int_equal(mw_config_parse_duration_ms(NULL, NULL), MW_EINVAL);
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {
        {"0", 0},
        {"512", 512},
        {"512B", 512},
        {"64KiB", 65536},
        {"16MiB", 16777216},
        {"2GiB", 2147483648ull},
        {"1TiB", 1099511627776ull},
        {"10MB", 10000000},
        {"1kB", 1000},
        {"1KB", 1000},
        {"1GB", 1000000000},
        {"1.5KiB", 1536},
        {"18446744073709551615", UINT64_MAX},
    };
    static const char *const bad[] = {
        "",
        "big",
        "-1",
        "1.5",
        "1 KiB",
        "1kib",
        "1XB",
        "KiB",
        "18446744073709551616",
        "16777216TiB",
        " 1",
        "1e3",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t bytes = 1;
        assert_int_equal(mw_config_parse_size_bytes(good[i].text, &bytes), 0);
        assert_true(bytes == good[i].bytes);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t bytes;
        if (mw_config_parse_size_bytes(bad[i], &bytes) != MW_EINVAL)
            fail_msg("size \"%s\" was accepted", bad[i]);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Dump                                                                                      */

/* Dump `c` into a fresh string (the caller frees it with mw_free). */
static char *dump(const struct cfg *c)
{
    struct mw_buf buf;
    mw_buf_init(&buf, 1 << 20);
    assert_int_equal(mw_config_dump(table, c, &buf), 0);
    assert_non_null(buf.data);
    return mw_buf_detach(&buf, NULL);
}

static void assert_strlist_equal(const struct mw_cfg_strlist *a, const struct mw_cfg_strlist *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_string_equal(a->items[i], b->items[i]);
}

/* Equal strings, or both NULL (a STRING set to ~). */
static void assert_same_string(const char *a, const char *b)
{
    assert_true((a == NULL) == (b == NULL));
    if (a)
        assert_string_equal(a, b);
}

static void assert_cfg_equal(const struct cfg *a, const struct cfg *b)
{
    assert_strlist_equal(&a->brokers, &b->brokers);
    assert_same_string(a->topic, b->topic);
    assert_int_equal(a->props.n, b->props.n);
    for (size_t i = 0; i < a->props.n; i++)
        assert_string_equal(a->props.values[i], mw_config_strmap_get(&b->props, a->props.keys[i]));
    assert_int_equal(a->max_records, b->max_records);
    assert_int_equal(a->max_age_ms, b->max_age_ms);
    assert_true(a->max_bytes == b->max_bytes);
    assert_true(a->sample_rate == b->sample_rate);
    assert_int_equal(a->redact, b->redact);
    assert_int_equal(a->log_level, b->log_level);
    assert_same_string(a->name, b->name);
    assert_int_equal(a->rules.n, b->rules.n);
    for (size_t i = 0; i < a->rules.n; i++) {
        const struct rule *ra = (const struct rule *)a->rules.items + i;
        const struct rule *rb = (const struct rule *)b->rules.items + i;
        assert_string_equal(ra->name, rb->name);
        assert_true(ra->rate == rb->rate);
        assert_int_equal(ra->window_ms, rb->window_ms);
        assert_int_equal(ra->severity, rb->severity);
        assert_same_string(ra->model, rb->model);
        assert_strlist_equal(&ra->labels, &rb->labels);
    }
}

static void test_dump_round_trip(void **state)
{
    (void)state;
    struct cfg first, second;
    struct mw_cfg_error err;
    assert_int_equal(load(rich_yaml, &first, &err), 0);
    char *text = dump(&first);
    if (load(text, &second, &err) != 0)
        fail_msg("dump does not load back: %s\n%s", err.message, text);
    assert_cfg_equal(&first, &second);
    char *again = dump(&second);
    assert_string_equal(text, again); /* stable */
    /* nested mappings, units and quoting as documented */
    assert_non_null(strstr(text, "kafka:\n  brokers:\n    - b1:9092\n"));
    assert_non_null(strstr(text, "  topic: \"needs: quoting #really\"\n"));
    assert_non_null(strstr(text, "    socket.timeout.ms: \"3000\"\n"));
    assert_non_null(strstr(text, "  max_age: 1500ms\n"));
    assert_non_null(strstr(text, "  max_bytes: 64KiB\n"));
    assert_non_null(strstr(text, "redact: false\n"));
    assert_non_null(strstr(text, "log:\n  level: warn\n"));
    assert_non_null(strstr(text, "name: \"yes\"\n"));
    assert_non_null(strstr(text, "rules:\n  - name: p99\n    rate: 0.25\n    window: 90s\n"));
    assert_non_null(strstr(text, "    match:\n      model: fraud-*\n"));
    mw_free(text);
    mw_free(again);
    mw_config_free(table, &first);
    mw_config_free(table, &second);
}

static void test_dump_defaults_round_trip(void **state)
{
    (void)state;
    struct cfg first, second;
    struct mw_cfg_error err;
    assert_int_equal(load(BROKERS, &first, &err), 0);
    char *text = dump(&first);
    assert_non_null(strstr(text, "name: ~\n"));
    assert_non_null(strstr(text, "rules: []\n"));
    assert_non_null(strstr(text, "  properties: {}\n"));
    assert_non_null(strstr(text, "  max_age: 1s\n"));
    assert_non_null(strstr(text, "  max_bytes: 1MiB\n"));
    assert_int_equal(load(text, &second, &err), 0);
    assert_cfg_equal(&first, &second);
    mw_free(text);
    mw_config_free(table, &first);
    mw_config_free(table, &second);
}

static void test_dump_reports_full_buffer(void **state)
{
    (void)state;
    struct cfg c;
    struct mw_cfg_error err;
    struct mw_buf buf;
    assert_int_equal(load(rich_yaml, &c, &err), 0);
    mw_buf_init(&buf, 64);
    assert_int_equal(mw_config_dump(table, &c, &buf), MW_EFULL);
    mw_buf_free(&buf);
    mw_config_free(table, &c);
}

/* ---------------------------------------------------------------------------------------- */
/* Robustness                                                                                */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Load junk: an error with a message, or values whose dump loads back to the same dump. */
static void check_junk(const char *text)
{
    struct cfg c;
    struct mw_cfg_error err;
    err.message[0] = '\0';
    int rc = load(text, &c, &err);
    if (rc) {
        if (rc != MW_ECONFIG || !err.message[0])
            fail_msg("rc %d, message \"%s\" for input:\n%s", rc, err.message, text);
        mw_config_free(table, &c);
        return;
    }
    char *first = dump(&c);
    struct cfg again;
    if (load(first, &again, &err))
        fail_msg("dump does not load back: %s\ninput:\n%s\ndump:\n%s", err.message, text, first);
    assert_cfg_equal(&c, &again);
    char *second = dump(&again);
    assert_string_equal(first, second);
    mw_free(first);
    mw_free(second);
    mw_config_free(table, &c);
    mw_config_free(table, &again);
}

static void test_fuzz_truncated_and_mutated(void **state)
{
    (void)state;
    static const char specials[] = ":-[]{}&*!|>'\"#\n \t.,?%@`~0a\\\x01\xff\xc3";
    size_t len = strlen(rich_yaml);
    char *text = malloc(len + 1);
    assert_non_null(text);
    for (size_t cut = 0; cut <= len; cut++) { /* every truncation */
        memcpy(text, rich_yaml, cut);
        text[cut] = '\0';
        check_junk(text);
    }
    for (int round = 0; round < 400; round++) { /* a few random byte edits each */
        memcpy(text, rich_yaml, len + 1);
        for (uint32_t edits = 1 + rng() % 4; edits; edits--)
            text[rng() % len] = specials[rng() % (sizeof specials - 1)];
        check_junk(text);
    }
    free(text);
}

static void test_fuzz_token_soup(void **state)
{
    (void)state;
    static const char *const tokens[] = {
        "kafka",     "brokers", "topic",  "properties", "batch",       "max_age",
        "max_bytes", "rules",   "name",   "rate",       "labels",      "match",
        "model",     "log",     "level",  "redact",     "sample_rate", "kafka.brokers",
        ":",         ": ",      "\n",     "  ",         "- ",          "[",
        "]",         "{",       "}",      ",",          "&a ",         "*a",
        "\"",        "'",       "#",      "?",          "~",           "1s",
        "10",        "0.5",     "1KiB",   "yes",        "x",           "---\n",
        "|\n",       ">-\n",    "!!str ", "\\",         "\t",          "info",
        "page",
    };
    char text[512];
    for (int round = 0; round < 600; round++) {
        size_t n = 0;
        if (round % 2) /* the required key, so that some soups load and get dumped */
            n += (size_t)snprintf(text, sizeof text, "%s", BROKERS);
        for (uint32_t k = rng() % 40; k; k--) {
            const char *tok = tokens[rng() % (sizeof tokens / sizeof tokens[0])];
            size_t tl = strlen(tok);
            if (n + tl >= sizeof text)
                break;
            memcpy(text + n, tok, tl);
            n += tl;
        }
        text[n] = '\0';
        check_junk(text);
    }
}

/* An allocator that fails once `alloc_budget` allocations have succeeded. */
static long alloc_budget = -1;

static bool alloc_allowed(void)
{
    if (alloc_budget < 0)
        return true;
    if (alloc_budget == 0)
        return false;
    alloc_budget--;
    return true;
}

static void *failing_malloc(size_t size)
{
    return alloc_allowed() ? malloc(size) : NULL;
}

static void *failing_calloc(size_t n, size_t size)
{
    return alloc_allowed() ? calloc(n, size) : NULL;
}

static void *failing_realloc(void *ptr, size_t size)
{
    return alloc_allowed() ? realloc(ptr, size) : NULL;
}

static void test_allocation_failures(void **state)
{
    (void)state;
    for (long budget = 0;; budget++) {
        struct cfg c;
        struct mw_cfg_error err;
        struct mw_buf buf;
        mw_buf_init(&buf, 1 << 20);
        alloc_budget = budget;
        mw_replace_allocator(failing_malloc, failing_calloc, failing_realloc, free);
        int rc = load(rich_yaml, &c, &err);
        int dump_rc = rc ? 0 : mw_config_dump(table, &c, &buf);
        mw_replace_allocator(NULL, NULL, NULL, NULL);
        mw_config_free(table, &c);
        mw_buf_free(&buf);
        if (rc == 0 && dump_rc == 0)
            break;
        if (rc) {
            assert_int_equal(rc, MW_ENOMEM);
            assert_string_not_equal(err.message, "");
        } else {
            assert_int_equal(dump_rc, MW_ENOMEM);
        }
        assert_true(budget < 100000);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* ${VAR} expansion                                                                          */

static void set_test_env(void)
{
    setenv("MW_T_TOPIC", "from env", 1);
    setenv("MW_T_N", "77", 1);
    setenv("MW_T_EMPTY", "", 1);
    setenv("MW_T_DOLLAR", "${MW_T_TOPIC}", 1); /* a value is not expanded again */
    unsetenv("MW_T_UNSET");
}

static void test_env_expansion(void **state)
{
    (void)state;
    struct cfg c;
    struct mw_cfg_error err;
    set_test_env();
    int rc = load("kafka:\n"
                  "  brokers: [\"${MW_T_TOPIC}:9092\", plain]\n"
                  "  topic: ${MW_T_TOPIC}\n"
                  "  properties:\n"
                  "    sasl.password: '${MW_T_N}${MW_T_N}'\n"
                  "batch: {max_records: \"${MW_T_N}\"}\n"
                  "name: \"a$$b ${MW_T_UNSET:-dflt} ${MW_T_EMPTY:-was empty}[${MW_T_EMPTY}] $x "
                  "${MW_T_DOLLAR} cost$\"\n"
                  "rules:\n"
                  "  - name: ${MW_T_UNSET:-}r${MW_T_N}\n",
                  &c, &err);
    if (rc)
        print_error("%s\n", err.message);
    assert_int_equal(rc, 0);
    assert_string_equal(c.brokers.items[0], "from env:9092");
    assert_string_equal(c.brokers.items[1], "plain");
    assert_string_equal(c.topic, "from env");
    assert_string_equal(mw_config_strmap_get(&c.props, "sasl.password"), "7777");
    assert_int_equal(c.max_records, 77);
    assert_string_equal(c.name, "a$b dflt was empty[] $x ${MW_T_TOPIC} cost$");
    assert_string_equal(((struct rule *)c.rules.items)[0].name, "r77");
    mw_config_free(table, &c);
}

/* What the dump prints loads back to the same values, `$` included (the loader expands `${`
 * and `$$`, so the dump must escape them). */
static void test_dump_escapes_dollars(void **state)
{
    (void)state;
    struct cfg c, again;
    struct mw_cfg_error err;
    struct mw_buf out;
    set_test_env();
    assert_int_equal(load(BROKERS "  topic: \"$${MW_T_TOPIC} $$$$ $x cost$\"\n"
                               "  properties: {p: \"a$${b}\"}\n"
                               "name: \"$${MW_T_UNSET}\"\n",
                          &c, &err),
                     0);
    assert_string_equal(c.topic, "${MW_T_TOPIC} $$ $x cost$");
    assert_string_equal(c.name, "${MW_T_UNSET}");
    mw_buf_init(&out, 1 << 16);
    assert_int_equal(mw_config_dump(table, &c, &out), 0);
    assert_int_equal(mw_buf_append(&out, "", 1), 0);
    int rc = load(out.data, &again, &err);
    if (rc)
        print_error("%s\n%s\n", err.message, out.data);
    assert_int_equal(rc, 0);
    assert_string_equal(again.topic, c.topic);
    assert_string_equal(again.name, c.name);
    assert_string_equal(mw_config_strmap_get(&again.props, "p"), "a${b}");
    mw_buf_free(&out);
    mw_config_free(table, &c);
    mw_config_free(table, &again);
}

static void test_env_expansion_errors(void **state)
{
    (void)state;
    set_test_env();
    static const struct error_case cases[] = {
        {BROKERS "name: ${MW_T_UNSET}\n",
         NAME ":3: name: environment variable MW_T_UNSET is not set (set it, or write "
              "${MW_T_UNSET:-default})"},
        {BROKERS "rules:\n  - name: x\n  - {name: \"a ${MW_T_UNSET} b\"}\n",
         NAME ":5: rules[1].name: environment variable MW_T_UNSET is not set (set it, or write "
              "${MW_T_UNSET:-default})"},
        {"kafka:\n  brokers: [a, \"${MW_T_UNSET}\"]\n",
         NAME ":2: kafka.brokers[1]: environment variable MW_T_UNSET is not set (set it, or "
              "write ${MW_T_UNSET:-default})"},
        {BROKERS "name: ${1X}\n",
         NAME ":3: name: malformed variable reference at byte 1 (use ${NAME}, "
              "${NAME:-default}, or $$ for a literal $)"},
        {BROKERS "name: ab${MW T}\n",
         NAME ":3: name: malformed variable reference at byte 3 (use ${NAME}, "
              "${NAME:-default}, or $$ for a literal $)"},
        {BROKERS "name: ${MW_T_N\n", NAME ":3: name: ${MW_T_N has no closing }"},
        {BROKERS "name: ${}\n",
         NAME ":3: name: malformed variable reference at byte 1 (use ${NAME}, "
              "${NAME:-default}, or $$ for a literal $)"},
        /* an expanded value is checked as if written: the line is the value's */
        {BROKERS "batch:\n  max_records: ${MW_T_TOPIC}\n",
         NAME ":4: batch.max_records: expected an integer, got \"from env\""},
    };
    expect_errors(cases, sizeof cases / sizeof cases[0]);
}

/* ---------------------------------------------------------------------------------------- */
/* Secrets and the files a configuration names                                               */

struct secret_cfg {
    char *password;
    char *password_file;
    char *user;
    struct mw_cfg_strmap props;
    struct mw_cfg_list receivers; /* struct secret_receiver */
};

struct secret_receiver {
    char *key_file;
    char *url;
};

static bool prop_is_secret(const char *name)
{
    return strstr(name, "password") != NULL && strstr(name, "_file") == NULL;
}

static enum mw_cfg_path prop_path(const char *name, const char *value)
{
    (void)value;
    return strstr(name, "location") ? MW_CFG_PATH_FILE : MW_CFG_PATH_NONE;
}

static const struct mw_cfg_field secret_receiver_table[] = {
    {.key = "key_file",
     .type = MW_CFG_STRING,
     .offset = offsetof(struct secret_receiver, key_file),
     .path = MW_CFG_PATH_FILE},
    {.key = "url",
     .type = MW_CFG_STRING,
     .offset = offsetof(struct secret_receiver, url),
     .secret_userinfo = true},
    MW_CFG_END,
};

static const struct mw_cfg_field secret_table[] = {
    {.key = "redis.password",
     .type = MW_CFG_STRING,
     .offset = offsetof(struct secret_cfg, password),
     .secret = true},
    {.key = "redis.password_file",
     .type = MW_CFG_STRING,
     .offset = offsetof(struct secret_cfg, password_file),
     .path = MW_CFG_PATH_FILE},
    {.key = "redis.user", .type = MW_CFG_STRING, .offset = offsetof(struct secret_cfg, user)},
    {.key = "kafka.properties",
     .type = MW_CFG_STRMAP,
     .offset = offsetof(struct secret_cfg, props),
     .secret_entry = prop_is_secret,
     .path_entry = prop_path},
    {.key = "receivers",
     .type = MW_CFG_LIST,
     .offset = offsetof(struct secret_cfg, receivers),
     .sub = secret_receiver_table,
     .elem_size = sizeof(struct secret_receiver)},
    MW_CFG_END,
};

static void test_dump_redacts_secrets(void **state)
{
    (void)state;
    struct secret_cfg c;
    struct mw_cfg_error err;
    struct mw_buf out;
    setenv("MW_T_SECRET", "hunter2-from-env", 1);
    int rc = mw_config_load_string(secret_table, &c,
                                   "redis:\n"
                                   "  password: ${MW_T_SECRET}\n"
                                   "  password_file: /run/secrets/redis\n"
                                   "  user: alice\n"
                                   "kafka:\n"
                                   "  properties:\n"
                                   "    sasl.password: hunter2-in-text\n"
                                   "    sasl.password_file: /run/secrets/kafka\n"
                                   "    sasl.username: bob\n"
                                   "    ssl.key.password: \"\"\n",
                                   NAME, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(c.password, "hunter2-from-env"); /* the binary still gets the value */
    mw_buf_init(&out, 1 << 16);
    assert_int_equal(mw_config_dump(secret_table, &c, &out), 0);
    assert_int_equal(mw_buf_append(&out, "", 1), 0);
    assert_null(strstr(out.data, "hunter2"));
    assert_string_equal(out.data, "redis:\n"
                                  "  password: \"<redacted>\"\n"
                                  "  password_file: /run/secrets/redis\n"
                                  "  user: alice\n"
                                  "kafka:\n"
                                  "  properties:\n"
                                  "    sasl.password: \"<redacted>\"\n"
                                  "    sasl.password_file: /run/secrets/kafka\n"
                                  "    sasl.username: bob\n"
                                  "    ssl.key.password: \"\"\n"
                                  "receivers: []\n");
    mw_buf_free(&out);
    mw_config_free(secret_table, &c);
}

static void test_dump_redacts_url_credentials(void **state)
{
    (void)state;
    struct secret_cfg c;
    struct mw_cfg_error err;
    struct mw_buf out;
    int rc = mw_config_load_string(secret_table, &c,
                                   "receivers:\n"
                                   "  - url: https://alice:pa55@hooks.example.com/x?y=1\n"
                                   "  - url: https://tok3n@api.example.com:8443/a@b\n"
                                   "  - url: http://127.0.0.1:9/hook\n"
                                   "  - url: https://u:p@q@h.example.com/\n",
                                   NAME, &err);
    assert_int_equal(rc, 0);
    mw_buf_init(&out, 1 << 16);
    assert_int_equal(mw_config_dump(secret_table, &c, &out), 0);
    assert_int_equal(mw_buf_append(&out, "", 1), 0);
    assert_null(strstr(out.data, "pa55"));
    assert_null(strstr(out.data, "tok3n"));
    assert_non_null(strstr(out.data, "    url: https://alice:<redacted>@hooks.example.com/x?y=1\n"));
    assert_non_null(strstr(out.data, "    url: https://<redacted>@api.example.com:8443/a@b\n"));
    assert_non_null(strstr(out.data, "    url: http://127.0.0.1:9/hook\n"));
    assert_non_null(strstr(out.data, "    url: https://u:<redacted>@h.example.com/\n"));
    mw_buf_free(&out);
    mw_config_free(secret_table, &c);
}

static void write_config_file(char *path, const char *text)
{
    write_temp(path, text);
}

static void expect_paths_error(const char *text, const char *want_suffix)
{
    char path[] = "/tmp/test_config_paths_XXXXXX";
    char want[700];
    struct secret_cfg c;
    struct mw_cfg_error err;
    write_config_file(path, text);
    /* the loader takes it (paths are not opened while loading) */
    assert_int_equal(mw_config_load_file(secret_table, &c, path, &err), 0);
    mw_config_free(secret_table, &c);
    int rc = mw_config_check_paths(secret_table, path, &err);
    snprintf(want, sizeof want, "%s%s", path, want_suffix);
    if (rc != MW_ECONFIG || strcmp(err.message, want))
        print_error("got: %s\nwant: %s\n", err.message, want);
    assert_int_equal(rc, MW_ECONFIG);
    assert_string_equal(err.message, want);
    unlink(path);
}

static void test_check_paths(void **state)
{
    (void)state;
    char key[] = "/tmp/test_config_key_XXXXXX";
    char dir[] = "/tmp/test_config_dir_XXXXXX";
    char text[1024], path[] = "/tmp/test_config_paths_XXXXXX";
    struct mw_cfg_error err;
    write_temp(key, "k\n");
    assert_non_null(mkdtemp(dir));
    setenv("MW_T_KEY", key, 1);
    snprintf(text, sizeof text,
             "redis:\n  password_file: ${MW_T_KEY}\n"
             "kafka:\n  properties:\n    ssl.key.location: %s\n    sasl.username: /nonexistent\n"
             "receivers:\n  - key_file: %s\n  - url: /nonexistent\n",
             key, key);
    write_config_file(path, text);
    assert_int_equal(mw_config_check_paths(secret_table, path, &err), 0);
    unlink(path);

    expect_paths_error("redis:\n  password_file: /nonexistent/redis\n",
                       ":2: redis.password_file: cannot read /nonexistent/redis: No such file "
                       "or directory");
    snprintf(text, sizeof text, "redis:\n  password_file: %s\n", dir);
    char want[300];
    snprintf(want, sizeof want, ":2: redis.password_file: %s is a directory, not a file", dir);
    expect_paths_error(text, want);
    expect_paths_error("kafka:\n  properties:\n    a: b\n    ssl.ca.location: /nonexistent/ca\n",
                       ":4: kafka.properties.ssl.ca.location: cannot read /nonexistent/ca: No "
                       "such file or directory");
    snprintf(text, sizeof text,
             "receivers:\n  - key_file: %s\n  - url: x\n    key_file: /nonexistent/pd\n", key);
    expect_paths_error(text, ":4: receivers[1].key_file: cannot read /nonexistent/pd: No such "
                             "file or directory");
    unlink(key);
    rmdir(dir);
}

static void test_kafka_property_kinds(void **state)
{
    (void)state;
    assert_true(mw_kafka_property_secret("sasl.password"));
    assert_true(mw_kafka_property_secret("ssl.key.password"));
    assert_true(mw_kafka_property_secret("ssl.keystore.password"));
    assert_true(mw_kafka_property_secret("sasl.oauthbearer.client.secret"));
    assert_true(mw_kafka_property_secret("ssl.key.pem"));
    assert_false(mw_kafka_property_secret("sasl.password_file"));
    assert_false(mw_kafka_property_secret("sasl.username"));
    assert_false(mw_kafka_property_secret("bootstrap.servers"));
    assert_int_equal(mw_kafka_property_path("sasl.password_file", "/x"), MW_CFG_PATH_FILE);
    assert_int_equal(mw_kafka_property_path("ssl.key.location", "/x"), MW_CFG_PATH_FILE);
    assert_int_equal(mw_kafka_property_path("ssl.ca.location", "/x"), MW_CFG_PATH_FILE_OR_DIR);
    assert_int_equal(mw_kafka_property_path("ssl.ca.location", "probe"), MW_CFG_PATH_NONE);
    assert_int_equal(mw_kafka_property_path("sasl.password", "/x"), MW_CFG_PATH_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_applied),
        cmocka_unit_test(test_defaults_only),
        cmocka_unit_test(test_nested_keys),
        cmocka_unit_test(test_all_types),
        cmocka_unit_test(test_strmap_pass_through),
        cmocka_unit_test(test_empty_inputs_are_defaults),
        cmocka_unit_test(test_later_value_replaces_default_string),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_bad_type),
        cmocka_unit_test(test_out_of_bounds),
        cmocka_unit_test(test_bad_duration_size_bool_enum),
        cmocka_unit_test(test_bool_spellings),
        cmocka_unit_test(test_missing_required_key),
        cmocka_unit_test(test_list_element_error_names_index_and_line),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_large_mapping_duplicate_check_is_fast),
        cmocka_unit_test(test_syntax_error_names_line),
        cmocka_unit_test(test_deep_nesting_is_refused),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_bad_default_is_reported),
        cmocka_unit_test(test_collection_defaults),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_dump_defaults_round_trip),
        cmocka_unit_test(test_dump_reports_full_buffer),
        cmocka_unit_test(test_fuzz_truncated_and_mutated),
        cmocka_unit_test(test_fuzz_token_soup),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_env_expansion_errors),
        cmocka_unit_test(test_dump_escapes_dollars),
        cmocka_unit_test(test_dump_redacts_secrets),
        cmocka_unit_test(test_dump_redacts_url_credentials),
        cmocka_unit_test(test_check_paths),
        cmocka_unit_test(test_kafka_property_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
