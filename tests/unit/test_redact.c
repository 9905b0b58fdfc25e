/* test_redact.c — feature drop and HMAC-SHA256 pseudonyms: values checked against OpenSSL's
 * one-shot HMAC and RFC 4231, raw values absent from the packed message, key file errors, the
 * `models:` config sub-table and the checks across rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arena.h"
#include "config.h"
#include "error.h"
#include "model_rules.h"
#include "redact.h"
#include "telemetry.pb-c.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY "Jefe" /* RFC 4231 test case 2 */

struct fixture {
    char dir[64];
    char key_path[96];   /* holds KEY, no newline */
    char empty_path[96]; /* exists, 0 bytes */
    struct mw_arena arena;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/mw-test-redact-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->key_path, sizeof fx->key_path, "%s/key", fx->dir);
    snprintf(fx->empty_path, sizeof fx->empty_path, "%s/empty", fx->dir);
    write_file(fx->key_path, KEY);
    write_file(fx->empty_path, "");
    if (mw_arena_init(&fx->arena, 1u << 16))
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    unlink(fx->key_path);
    unlink(fx->empty_path);
    rmdir(fx->dir);
    mw_arena_free(&fx->arena);
    free(fx);
    return 0;
}

static void *arena_alloc(void *ctx, size_t n)
{
    return mw_arena_alloc(ctx, n);
}

static void *failing_alloc(void *ctx, size_t n)
{
    (void)ctx;
    (void)n;
    return NULL;
}

/* Independent reference: OpenSSL's one-shot HMAC, hex-encoded. */
static void reference_hmac(const char *data, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    assert_non_null(HMAC(EVP_sha256(), KEY, (int)strlen(KEY), (const unsigned char *)data,
                         strlen(data), md, &len));
    assert_int_equal(len, 32);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static struct mw_cfg_strlist strlist(char **items, size_t n)
{
    return (struct mw_cfg_strlist){.n = n, .items = items};
}

static struct mw_model_rule rule(const char *name)
{
    return (struct mw_model_rule){.name = (char *)name, .sample_rate = 1, .keep_errors = true};
}

/* ---------------------------------------------------------------------------------------- */
/* Test events                                                                               */

struct test_event {
    Modelwatch__V1__PredictionEvent ev;
    Modelwatch__V1__Feature f[6];
    Modelwatch__V1__Feature *fp[6];
    char ssn[16], email[32], country[4];
};

static void numeric(Modelwatch__V1__Feature *f, const char *name, double v)
{
    modelwatch__v1__feature__init(f);
    f->name = (char *)name;
    f->value_case = MODELWATCH__V1__FEATURE__VALUE_NUMERIC;
    f->numeric = v;
}

static void categorical(Modelwatch__V1__Feature *f, const char *name, char *v)
{
    modelwatch__v1__feature__init(f);
    f->name = (char *)name;
    f->value_case = MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL;
    f->categorical = v;
}

/* age=42 (numeric), ssn, email, country (categorical), income (missing), score=0.1 (numeric). */
static void make_event(struct test_event *t, const char *model)
{
    modelwatch__v1__prediction_event__init(&t->ev);
    t->ev.model = (char *)model;
    t->ev.prediction_id = (char *)"req-17";
    snprintf(t->ssn, sizeof t->ssn, "123-45-6789");
    snprintf(t->email, sizeof t->email, "alice@example.com");
    snprintf(t->country, sizeof t->country, "fr");
    numeric(&t->f[0], "age", 42);
    categorical(&t->f[1], "ssn", t->ssn);
    categorical(&t->f[2], "email", t->email);
    categorical(&t->f[3], "country", t->country);
    modelwatch__v1__feature__init(&t->f[4]);
    t->f[4].name = (char *)"income";
    t->f[4].has_missing = 1;
    t->f[4].missing = 1;
    numeric(&t->f[5], "score", 0.1);
    for (size_t i = 0; i < 6; i++)
        t->fp[i] = &t->f[i];
    t->ev.features = t->fp;
    t->ev.n_features = 6;
}

static const Modelwatch__V1__Feature *feature(const Modelwatch__V1__PredictionEvent *ev,
                                              const char *name)
{
    for (size_t i = 0; i < ev->n_features; i++) {
        if (strcmp(ev->features[i]->name, name) == 0)
            return ev->features[i];
    }
    return NULL;
}

/* Pack ev inside a ClientMessage, as it would leave the pod. Caller frees. */
static uint8_t *pack(Modelwatch__V1__PredictionEvent *ev, size_t *len)
{
    Modelwatch__V1__ClientMessage msg = MODELWATCH__V1__CLIENT_MESSAGE__INIT;
    msg.body_case = MODELWATCH__V1__CLIENT_MESSAGE__BODY_EVENT;
    msg.event = ev;
    *len = modelwatch__v1__client_message__get_packed_size(&msg);
    uint8_t *buf = malloc(*len);
    assert_int_equal(modelwatch__v1__client_message__pack(&msg, buf), *len);
    return buf;
}

static bool contains(const uint8_t *buf, size_t len, const void *needle, size_t n)
{
    return memmem(buf, len, needle, n) != NULL;
}

/* The "churn" rule used by most tests: drop ssn, hash email, age, income and score. */
static char *churn_drop[] = {(char *)"ssn"};
static char *churn_hash[] = {(char *)"email", (char *)"age", (char *)"income", (char *)"score"};

static struct mw_redactor *make_churn(struct fixture *fx)
{
    struct mw_model_rule r = rule("churn");
    r.redact.drop = strlist(churn_drop, 1);
    r.redact.hash = strlist(churn_hash, 4);
    struct mw_redactor *red = NULL;
    char err[256];
    assert_int_equal(mw_redact_create(&r, 1, fx->key_path, &red, err, sizeof err), 0);
    return red;
}

/* ---------------------------------------------------------------------------------------- */
/* Pseudonyms and event redaction                                                            */

static void test_pseudonym_matches_rfc4231_case_2(void **state)
{
    struct fixture *fx = *state;
    struct mw_redactor *r = make_churn(fx);
    char out[MW_REDACT_HEX_LEN + 1];
    const char *data = "what do ya want for nothing?";
    for (int i = 0; i < 3; i++) { /* the reused context gives the same answer every time */
        assert_int_equal(mw_redact_pseudonym(r, data, strlen(data), out), 0);
        assert_string_equal(out,
                            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
    mw_redact_destroy(r);
}

static void test_event_dropped_hashed_missing_and_kept_features(void **state)
{
    struct fixture *fx = *state;
    struct mw_redactor *r = make_churn(fx);
    struct test_event t;
    make_event(&t, "churn");
    bool changed = false;
    assert_true(mw_redact_has_rules(r, "churn"));
    assert_int_equal(mw_redact_event(r, &t.ev, arena_alloc, &fx->arena, &changed), 0);
    assert_true(changed);
    assert_int_equal(t.ev.n_features, 5);
    assert_null(feature(&t.ev, "ssn"));
    char want[65];
    const Modelwatch__V1__Feature *f = feature(&t.ev, "email");
    reference_hmac("alice@example.com", want);
    assert_int_equal(f->value_case, MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL);
    assert_string_equal(f->categorical, want);
    f = feature(&t.ev, "age"); /* numeric, canonicalised as %.17g */
    reference_hmac("42", want);
    assert_int_equal(f->value_case, MODELWATCH__V1__FEATURE__VALUE_CATEGORICAL);
    assert_string_equal(f->categorical, want);
    f = feature(&t.ev, "score");
    reference_hmac("0.10000000000000001", want);
    assert_string_equal(f->categorical, want);
    f = feature(&t.ev, "income"); /* missing stays missing */
    assert_int_equal(f->value_case, MODELWATCH__V1__FEATURE__VALUE__NOT_SET);
    assert_true(f->has_missing && f->missing);
    f = feature(&t.ev, "country"); /* no rule: untouched, same position order */
    assert_string_equal(f->categorical, "fr");
    assert_string_equal(t.ev.features[0]->name, "age");
    assert_string_equal(t.ev.features[2]->name, "country");
    mw_redact_destroy(r);
}

static void test_raw_values_absent_from_packed_message(void **state)
{
    struct fixture *fx = *state;
    struct mw_redactor *r = make_churn(fx);
    struct test_event t;
    make_event(&t, "churn");
    size_t len;
    uint8_t *before = pack(&t.ev, &len);
    double age = 42, score = 0.1;
    /* the check can see them when they are there */
    assert_true(contains(before, len, "123-45-6789", 11));
    assert_true(contains(before, len, &age, sizeof age));
    free(before);
    assert_int_equal(mw_redact_event(r, &t.ev, arena_alloc, &fx->arena, NULL), 0);
    uint8_t *after = pack(&t.ev, &len);
    assert_false(contains(after, len, "123-45-6789", 11));
    assert_false(contains(after, len, "alice@example.com", 17));
    assert_false(contains(after, len, "alice", 5));
    assert_false(contains(after, len, &age, sizeof age));
    assert_false(contains(after, len, &score, sizeof score));
    assert_true(contains(after, len, "fr", 2));
    /* and it still decodes */
    Modelwatch__V1__ClientMessage *m = modelwatch__v1__client_message__unpack(NULL, len, after);
    assert_non_null(m);
    assert_int_equal(m->event->n_features, 5);
    modelwatch__v1__client_message__free_unpacked(m, NULL);
    free(after);
    mw_redact_destroy(r);
}

static void test_allocation_failure_drops_instead_of_leaking(void **state)
{
    struct fixture *fx = *state;
    struct mw_redactor *r = make_churn(fx);
    struct test_event t;
    make_event(&t, "churn");
    bool changed = false;
    assert_int_equal(mw_redact_event(r, &t.ev, failing_alloc, NULL, &changed), MW_ENOMEM);
    assert_true(changed);
    /* ssn, email, age, score gone; country and the missing income remain */
    assert_int_equal(t.ev.n_features, 2);
    assert_non_null(feature(&t.ev, "country"));
    assert_non_null(feature(&t.ev, "income"));
    size_t len;
    uint8_t *after = pack(&t.ev, &len);
    assert_false(contains(after, len, "alice@example.com", 17));
    free(after);
    mw_redact_destroy(r);
}

static void test_model_without_rules_untouched(void **state)
{
    struct fixture *fx = *state;
    struct mw_redactor *r = make_churn(fx);
    struct test_event t;
    make_event(&t, "ranker");
    bool changed = true;
    assert_false(mw_redact_has_rules(r, "ranker"));
    assert_false(mw_redact_has_rules(NULL, "churn"));
    assert_int_equal(mw_redact_event(r, &t.ev, arena_alloc, &fx->arena, &changed), 0);
    assert_false(changed);
    assert_int_equal(t.ev.n_features, 6);
    assert_string_equal(feature(&t.ev, "email")->categorical, "alice@example.com");
    mw_redact_destroy(r);
}

/* The "*" rule's lists apply to every model; a model's own rule adds to them; drop wins. */
static void test_default_rule_is_additive_and_drop_wins(void **state)
{
    struct fixture *fx = *state;
    char *def_hash[] = {(char *)"email", (char *)"ssn"};
    char *own_drop[] = {(char *)"ssn"};
    struct mw_model_rule rules[] = {rule("*"), rule("churn"), rule("ranker")};
    rules[0].redact.hash = strlist(def_hash, 2);
    rules[1].redact.drop = strlist(own_drop, 1);
    rules[2].sample_rate = 0.5; /* a rule that only changes sampling */
    struct mw_redactor *r = NULL;
    assert_int_equal(mw_redact_create(rules, 3, fx->key_path, &r, NULL, 0), 0);
    char want[65];
    reference_hmac("alice@example.com", want);
    const char *models[] = {"churn", "ranker", "other"};
    for (size_t m = 0; m < 3; m++) {
        struct test_event t;
        make_event(&t, models[m]);
        assert_true(mw_redact_has_rules(r, models[m]));
        assert_int_equal(mw_redact_event(r, &t.ev, arena_alloc, &fx->arena, NULL), 0);
        assert_string_equal(feature(&t.ev, "email")->categorical, want);
        const Modelwatch__V1__Feature *ssn = feature(&t.ev, "ssn");
        if (m == 0) {
            assert_null(ssn); /* churn drops what the default hashes */
        } else {
            reference_hmac("123-45-6789", want);
            assert_string_equal(ssn->categorical, want);
            reference_hmac("alice@example.com", want);
        }
    }
    mw_redact_destroy(r);
}

/* ---------------------------------------------------------------------------------------- */
/* Key file errors                                                                           */

static void test_missing_key_file_is_an_error_naming_it(void **state)
{
    struct fixture *fx = *state;
    struct mw_model_rule r = rule("churn");
    r.redact.hash = strlist(churn_hash, 1);
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/no-such-key", fx->dir);
    struct mw_redactor *red = NULL;
    assert_int_equal(mw_redact_create(&r, 1, path, &red, err, sizeof err), MW_EIO);
    assert_null(red);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(mw_redact_create(&r, 1, fx->dir, &red, err, sizeof err), MW_EIO);
    assert_non_null(strstr(err, fx->dir)); /* a directory is not a key */
}

static void test_empty_key_file_is_an_error_naming_it(void **state)
{
    struct fixture *fx = *state;
    struct mw_redactor *r = NULL;
    char err[256];
    assert_int_equal(mw_redact_create(NULL, 0, fx->empty_path, &r, err, sizeof err), MW_ECONFIG);
    assert_null(r);
    char want[256];
    snprintf(want, sizeof want, "redaction_key_file: \"%s\" is empty", fx->empty_path);
    assert_string_equal(err, want);
}

static void test_hash_rule_without_key_file_is_an_error(void **state)
{
    (void)state;
    struct mw_model_rule rules[] = {rule("*"), rule("churn")};
    rules[1].redact.hash = strlist(churn_hash, 2);
    struct mw_redactor *r = NULL;
    char err[256];
    assert_int_equal(mw_redact_create(rules, 2, NULL, &r, err, sizeof err), MW_ECONFIG);
    assert_null(r);
    assert_string_equal(err,
                        "models[1].redact.hash: hashing needs redaction_key_file (the HMAC key)");
    assert_int_equal(mw_redact_create(rules, 2, "", &r, err, sizeof err), MW_ECONFIG);
    /* dropping alone needs no key */
    rules[1].redact.hash = strlist(NULL, 0);
    rules[1].redact.drop = strlist(churn_drop, 1);
    assert_int_equal(mw_redact_create(rules, 2, NULL, &r, err, sizeof err), 0);
    char out[MW_REDACT_HEX_LEN + 1];
    assert_int_equal(mw_redact_pseudonym(r, "x", 1, out), MW_EINVAL);
    mw_redact_destroy(r);
}

/* ---------------------------------------------------------------------------------------- */
/* Rules: checks across rules and the config sub-table                                       */

static void expect_rules_error(const struct mw_model_rule *rules, size_t n, const char *want)
{
    char err[256];
    assert_int_equal(mw_model_rules_check(rules, n, err, sizeof err), MW_ECONFIG);
    assert_string_equal(err, want);
}

static void test_rules_check_errors_name_the_rule_and_key(void **state)
{
    (void)state;
    struct mw_model_rule rules[] = {rule("*"), rule("fraud"), rule("churn"), rule("churn")};
    char err[256];
    assert_int_equal(mw_model_rules_check(rules, 3, err, sizeof err), 0);
    expect_rules_error(rules, 4, "models[3].name: duplicate rule for \"churn\"");
    rules[1].name = (char *)"fraud model";
    expect_rules_error(rules, 3,
                       "models[1].name: \"fraud model\" is neither \"*\" nor a model name "
                       "(1 to 128 characters from [A-Za-z0-9._-])");
    rules[1].name = (char *)"fraud";
    char *both[] = {(char *)"zip", (char *)"email"};
    rules[2].redact.drop = strlist(both, 2);
    rules[2].redact.hash = strlist(both + 1, 1);
    expect_rules_error(rules, 3,
                       "models[2].redact.hash: feature \"email\" is also in redact.drop "
                       "(drop or hash, not both)");
    rules[2].redact.hash = strlist(NULL, 0);
    rules[0].sample_rate = 1.5;
    expect_rules_error(rules, 3, "models[0].sample_rate: 1.5 is not in [0, 1]");
    rules[0].sample_rate = 1;
    rules[1].max_events_per_second = -1;
    expect_rules_error(rules, 3, "models[1].max_events_per_second: -1 is not a finite number >= 0");
    rules[1].max_events_per_second = 0;
    char *empty[] = {(char *)""};
    rules[1].redact.drop = strlist(empty, 1);
    expect_rules_error(rules, 3, "models[1].redact.drop: item 0: empty feature name");
}

struct test_config {
    struct mw_cfg_list models;
};

static const struct mw_cfg_field test_table[] = {
    {.key = "models",
     .type = MW_CFG_LIST,
     .offset = offsetof(struct test_config, models),
     .sub = mw_model_rule_table,
     .elem_size = sizeof(struct mw_model_rule),
     .max = 1024,
     .reloadable = true,
     .desc = "per-model rules"},
    MW_CFG_END,
};

static void test_config_table_loads_rules_with_defaults(void **state)
{
    (void)state;
    static const char yaml[] = "models:\n"
                               "  - name: \"*\"\n"
                               "    sample_rate: 0.1\n"
                               "  - name: churn\n"
                               "    keep_errors: false\n"
                               "    keep_slower_than: 1.5s\n"
                               "    max_events_per_second: 200\n"
                               "    redact:\n"
                               "      drop: [ssn]\n"
                               "      hash: [email, customer_id]\n";
    struct test_config c;
    struct mw_cfg_error err;
    assert_int_equal(mw_config_load_string(test_table, &c, yaml, "agent.yaml", &err), 0);
    assert_int_equal(c.models.n, 2);
    const struct mw_model_rule *r = c.models.items;
    assert_string_equal(r[0].name, "*");
    assert_true(r[0].sample_rate == 0.1);
    assert_true(r[0].keep_errors);
    assert_int_equal(r[0].keep_slower_than_ms, 0);
    assert_true(r[0].max_events_per_second == 0);
    assert_int_equal(r[0].redact.drop.n + r[0].redact.hash.n, 0);
    assert_string_equal(r[1].name, "churn");
    assert_true(r[1].sample_rate == 1);
    assert_false(r[1].keep_errors);
    assert_int_equal(r[1].keep_slower_than_ms, 1500);
    assert_true(r[1].max_events_per_second == 200);
    assert_int_equal(r[1].redact.drop.n, 1);
    assert_string_equal(r[1].redact.drop.items[0], "ssn");
    assert_int_equal(r[1].redact.hash.n, 2);
    assert_string_equal(r[1].redact.hash.items[1], "customer_id");
    char msg[256];
    assert_int_equal(mw_model_rules_check(r, c.models.n, msg, sizeof msg), 0);
    mw_config_free(test_table, &c);
}

static void test_config_table_errors_name_file_line_and_key(void **state)
{
    (void)state;
    static const struct {
        const char *yaml;
        const char *message;
    } cases[] = {
        {"models:\n  - name: a\n  - name: b\n    sample_rate: 1.5\n",
         "agent.yaml:4: models[1].sample_rate"},
        {"models:\n  - sample_rate: 0.5\n", "agent.yaml:2: models[0].name"},
        {"models:\n  - name: a\n    redact: {hash: email}\n", "models[0].redact.hash"},
        {"models:\n  - name: a\n    sampel_rate: 1\n", "models[0].sampel_rate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct test_config c;
        struct mw_cfg_error err;
        assert_int_equal(mw_config_load_string(test_table, &c, cases[i].yaml, "agent.yaml", &err),
                         MW_ECONFIG);
        if (!strstr(err.message, cases[i].message))
            print_error("case %zu: %s\n", i, err.message);
        assert_non_null(strstr(err.message, cases[i].message));
        mw_config_free(test_table, &c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pseudonym_matches_rfc4231_case_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_dropped_hashed_missing_and_kept_features, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_raw_values_absent_from_packed_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failure_drops_instead_of_leaking, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_model_without_rules_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_rule_is_additive_and_drop_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_file_is_an_error_naming_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_empty_key_file_is_an_error_naming_it, setup, teardown),
        cmocka_unit_test(test_hash_rule_without_key_file_is_an_error),
        cmocka_unit_test(test_rules_check_errors_name_the_rule_and_key),
        cmocka_unit_test(test_config_table_loads_rules_with_defaults),
        cmocka_unit_test(test_config_table_errors_name_file_line_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
