/* test_route.c — matchers, the routing tree (continue, nesting, inheritance, errors with
 * FILE:LINE: KEY), aggregation group timers (group_wait, group_interval batching,
 * repeat_interval, resolves sent once), inhibition, and silences (matching, expiry, and the
 * resolve of an alert paged before its silence began). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "alert/inhibit.h"
#include "alert/route.h"
#include "alert/silence.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

#define S 1000LL

struct test_cfg {
    struct mw_route_cfg route;
    struct mw_cfg_list inhibit_rules;
};

static const struct mw_cfg_field test_table[] = {
    MW_ROUTE_CFG_FIELDS("route.", offsetof(struct test_cfg, route)),
    MW_INHIBIT_CFG_FIELD("inhibit_rules", offsetof(struct test_cfg, inhibit_rules)),
    MW_CFG_END,
};

static const char *const receivers[] = {"default",    "pager", "fraud-pager", "ml-slack",
                                        "data-slack", "never", "tickets",     NULL};

/* Load routing and inhibition from YAML text; returns the build's code (err says why). */
static int load(const char *text, struct mw_route **route, struct mw_inhibitor *inh,
                struct mw_cfg_error *err)
{
    struct test_cfg cfg;
    *route = NULL;
    *inh = (struct mw_inhibitor){0};
    int rc = mw_config_load_string(test_table, &cfg, text, "alerting.yaml", err);
    if (!rc)
        rc = mw_route_build(&cfg.route, "route", "alerting.yaml", text, receivers, route, err);
    if (!rc)
        rc = mw_inhibitor_build(&cfg.inhibit_rules, "inhibit_rules", "alerting.yaml", text, inh,
                                err);
    if (rc) {
        mw_route_free(*route);
        *route = NULL;
    }
    mw_config_free(test_table, &cfg);
    return rc;
}

/* Labels from "a=1,b=2". */
static struct mw_labels labels_of(const char *text)
{
    struct mw_labels l = {0};
    char copy[512], *save = NULL;
    snprintf(copy, sizeof copy, "%s", text);
    for (char *pair = strtok_r(copy, ",", &save); pair; pair = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(pair, '=');
        assert_non_null(eq);
        *eq = '\0';
        assert_int_equal(mw_labels_set(&l, pair, eq + 1), 0);
    }
    return l;
}

static void put(struct mw_dispatch *d, const char *labels, int64_t at_ms, bool resolved)
{
    struct mw_alert a = {.labels = labels_of(labels), .starts_at_ms = at_ms};
    assert_int_equal(mw_labels_set(&a.annotations, "summary", labels), 0);
    if (resolved)
        a.ends_at_ms = at_ms;
    assert_int_equal(mw_dispatch_put(d, &a, at_ms), 0);
    mw_alert_free(&a);
}

/* Advance to at_ms; the notifications, each as "receiver key F:alertname/model,... R:..." */
static size_t advance(struct mw_dispatch *d, int64_t at_ms, const struct mw_silences *silences,
                      char out[][512], size_t max)
{
    struct mw_notifications ns = {0};
    assert_int_equal(mw_dispatch_advance(d, at_ms, silences, &ns), 0);
    assert_true(ns.n <= max);
    for (size_t i = 0; i < ns.n; i++) {
        const struct mw_notification *n = &ns.items[i];
        size_t used = (size_t)snprintf(out[i], 512, "%s %s%s F:", n->receiver, n->group_key,
                                       n->repeat ? " repeat" : "");
        for (size_t j = 0; j < n->n_firing; j++)
            used += (size_t)snprintf(out[i] + used, 512 - used, "%s%s/%s", j ? "," : "",
                                     mw_labels_get(&n->firing[j].labels, "alertname"),
                                     mw_labels_get(&n->firing[j].labels, "model"));
        used += (size_t)snprintf(out[i] + used, 512 - used, " R:");
        for (size_t j = 0; j < n->n_resolved; j++)
            used += (size_t)snprintf(out[i] + used, 512 - used, "%s%s/%s", j ? "," : "",
                                     mw_labels_get(&n->resolved[j].labels, "alertname"),
                                     mw_labels_get(&n->resolved[j].labels, "model"));
        if (n->n_held)
            snprintf(out[i] + used, 512 - used, " held:%zu", n->n_held);
    }
    size_t n = ns.n;
    mw_notifications_free(&ns);
    return n;
}

/* ---------------------------------------------------------------------------------------- */

static void test_matchers(void **state)
{
    (void)state;
    struct mw_labels l = labels_of("model=fraud-eu,severity=critical,team=ml");
    static const struct {
        const char *text;
        bool matches;
    } cases[] = {
        {"model=\"fraud-eu\"", true},
        {"model = fraud-eu", true}, /* unquoted, blanks around the operator */
        {"model!=\"fraud-eu\"", false},
        {"model=~\"fraud\"", false}, /* anchored: the whole value */
        {"model=~\"fraud.*\"", true},
        {"model=~\"churn|fraud-eu\"", true},
        {"model!~\"fraud.*\"", false},
        {"severity=~\"warning|critical\"", true},
        {"region=\"\"", true}, /* absent reads as "" */
        {"region!=\"\"", false},
        {"region=~\".*\"", true},
        {"region=~\".+\"", false},
        {"team=\"m\\\"l\"", false},
        {"team=\"ml\"  ", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mw_matcher m;
        char why[256];
        assert_int_equal(mw_matcher_parse(cases[i].text, &m, why, sizeof why), 0);
        if (mw_matcher_matches(&m, &l) != cases[i].matches) {
            print_error("%s: expected %d\n", cases[i].text, cases[i].matches);
            fail();
        }
        mw_matcher_free(&m);
    }
    struct mw_matcher m;
    char why[256];
    assert_int_equal(mw_matcher_parse("x=\"a\\\\b\\nc\"", &m, why, sizeof why), 0);
    assert_string_equal(m.value, "a\\b\nc");
    mw_matcher_free(&m);
    static const char *const bad[][2] = {
        {"model", "expected =, !=, =~ or !~"},
        {"=\"x\"", "expected a label name"},
        {"model=~\"(\"", "invalid regular expression"},
        {"model=\"x", "unterminated quoted value"},
        {"model=\"x\" y", "text after the quoted value"},
        {"model=a\"b", "must be quoted"},
        {"model==x", "must be quoted"},
        {"model=\"\\t\"", "unknown escape"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        int rc = mw_matcher_parse(bad[i][0], &m, why, sizeof why);
        if (rc != MW_ECONFIG || !strstr(why, bad[i][1])) {
            print_error("%s: rc %d why \"%s\"\n", bad[i][0], rc, why);
            fail();
        }
    }
    mw_labels_free(&l);
}

/* regcomp expands `X+` to `XX*`, so a hundred stacked `+` (or nested repeated groups) asked
 * for gigabytes: the aggregator ran out of memory on one matcher from its configuration or the
 * silences API. Such patterns are refused before compiling; ordinary ones still work. */
static void test_matcher_regex_that_expands_exponentially_is_refused(void **state)
{
    (void)state;
    char text[400], why[256];
    struct mw_matcher m;
    int n = snprintf(text, sizeof text, "signal=~\"drift");
    for (int i = 0; i < 100; i++)
        text[n++] = '+';
    snprintf(text + n, sizeof text - (size_t)n, "_verdict\"");
    const char *nested = "x=~\"((((((((((((((((((((((a)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+\"";
    const char *const refused[] = {text, nested, "x=~\"a{1000}{1000}\"", "x=~\"(a{200}){200}\""};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        why[0] = '\0';
        int rc = mw_matcher_parse(refused[i], &m, why, sizeof why);
        if (rc != MW_ECONFIG || !strstr(why, "too complex")) {
            print_error("%s: rc %d why \"%s\"\n", refused[i], rc, why);
            fail();
        }
    }
    struct mw_labels l = {0};
    assert_int_equal(mw_labels_set(&l, "model", "churn-eu-12"), 0);
    assert_int_equal(
        mw_matcher_parse("model=~\"churn-(eu|us)-[0-9]{1,3}|fraud.*\"", &m, why, sizeof why), 0);
    assert_true(mw_matcher_matches(&m, &l));
    mw_matcher_free(&m);
    assert_int_equal(mw_matcher_parse("model=~\"[a-z]+(-[a-z0-9]+)*\"", &m, why, sizeof why), 0);
    assert_true(mw_matcher_matches(&m, &l));
    mw_matcher_free(&m);
    mw_labels_free(&l);
}

static const char tree[] = "route:\n"                                    /* 1 */
                           "  receiver: default\n"                       /* 2 */
                           "  group_by: [alertname, model]\n"            /* 3 */
                           "  group_wait: 30s\n"                         /* 4 */
                           "  routes:\n"                                 /* 5 */
                           "    - matchers: ['severity=\"critical\"']\n" /* 6 */
                           "      receiver: pager\n"                     /* 7 */
                           "      group_wait: 0\n"                       /* 8 */
                           "      routes:\n"                             /* 9 */
                           "        - matchers: ['model=\"fraud\"']\n"   /* 10 */
                           "          receiver: fraud-pager\n"           /* 11 */
                           "          group_by: ['...']\n"               /* 12 */
                           "    - matchers: ['team=\"ml\"']\n"           /* 13 */
                           "      receiver: ml-slack\n"                  /* 14 */
                           "      continue: true\n"                      /* 15 */
                           "      repeat_interval: 1h\n"                 /* 16 */
                           "    - matchers: ['team=~\"ml|data\"']\n"     /* 17 */
                           "      receiver: data-slack\n"                /* 18 */
                           "    - matchers: ['team=\"ml\"']\n"           /* 19 */
                           "      receiver: never\n";                    /* 20 */

static void check_routes(const struct mw_route *root, const char *labels, const char *expected)
{
    const struct mw_route *out[8];
    char got[256] = "";
    struct mw_labels l = labels_of(labels);
    size_t n = mw_route_match(root, &l, out, 8), used = 0;
    for (size_t i = 0; i < n; i++)
        used +=
            (size_t)snprintf(got + used, sizeof got - used, "%s%s", i ? " " : "", out[i]->receiver);
    if (strcmp(got, expected)) {
        print_error("%s: routes \"%s\", expected \"%s\"\n", labels, got, expected);
        fail();
    }
    mw_labels_free(&l);
}

static void test_routing_tree(void **state)
{
    (void)state;
    struct mw_route *root;
    struct mw_inhibitor inh;
    struct mw_cfg_error err;
    assert_int_equal(load(tree, &root, &inh, &err), 0);
    check_routes(root, "severity=critical,model=fraud", "fraud-pager");
    check_routes(root, "severity=critical,model=churn", "pager");
    check_routes(root, "severity=warning,team=ml", "ml-slack data-slack"); /* continue, stop */
    check_routes(root, "severity=warning,team=data", "data-slack");
    check_routes(root, "severity=critical,team=ml", "pager"); /* first match, no continue */
    check_routes(root, "severity=warning", "default");
    check_routes(root, "", "default");

    /* Defaults and inheritance. */
    assert_string_equal(root->key, "route");
    assert_int_equal(root->group_wait_ms, 30 * S);
    assert_int_equal(root->group_interval_ms, 300 * S);
    assert_int_equal(root->repeat_interval_ms, 4 * 3600 * S);
    const struct mw_route *pager = &root->routes[0], *fraud = &pager->routes[0];
    assert_string_equal(fraud->key, "route.routes[0].routes[0]");
    assert_int_equal(pager->group_wait_ms, 0);
    assert_int_equal(fraud->group_wait_ms, 0); /* from its parent, not the root */
    assert_int_equal(pager->n_group_by, 2);
    assert_true(fraud->group_by_all);
    assert_int_equal(root->routes[1].repeat_interval_ms, 3600 * S);
    assert_true(root->routes[1].continue_matching);
    assert_int_equal(root->routes[2].repeat_interval_ms, 4 * 3600 * S);
    mw_route_free(root);
    mw_inhibitor_free(&inh);
}

static void test_routing_errors_name_line_and_key(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"route:\n  group_by: [model]\n", "alerting.yaml:1: route.receiver: required key missing"},
        {"route:\n  receiver: default\n  matchers: ['a=\"b\"']\n",
         "alerting.yaml:3: route.matchers: the root route takes every alert"},
        {"route:\n  receiver: default\n  routes:\n    - receiver: pager\n"
         "    - matchers: ['severity=\"critical\"', 'model==x']\n",
         "alerting.yaml:5: route.routes[1].matchers[1]: a value starting with = or ~ must be "
         "quoted"},
        {"route:\n  receiver: default\n  routes:\n    - receiver: pagr\n",
         "alerting.yaml:4: route.routes[0].receiver: no receiver named \"pagr\""},
        {"route:\n  receiver: default\n  group_by: [model, 'bad-label']\n",
         "alerting.yaml:3: route.group_by[1]: invalid label name \"bad-label\""},
        {"route:\n  receiver: default\n  group_interval: 0\n",
         "alerting.yaml:3: route.group_interval: must be above zero"},
        {"route:\n  receiver: default\n  group_wait: soon\n",
         "alerting.yaml:3: route.group_wait: invalid duration"},
        {"route:\n  receiver: default\n  routes:\n    - receiver: pager\n      contnue: true\n",
         "alerting.yaml:5: route.routes[0].contnue: unknown key"},
        {"route:\n  receiver: default\n"
         "inhibit_rules:\n  - source_matchers: ['a=\"b\"']\n    target_matchers: ['c=~\"[\"']\n",
         "alerting.yaml:5: inhibit_rules[0].target_matchers[0]: invalid regular expression"},
        {"route:\n  receiver: default\n"
         "inhibit_rules:\n  - source_matchers: ['a=\"b\"']\n",
         "alerting.yaml:4: inhibit_rules[0].target_matchers: required key missing"},
        {"route:\n  receiver: default\n"
         "inhibit_rules:\n  - source_matchers: ['a=\"b\"']\n    target_matchers: ['c=d']\n"
         "    equal: [model, '9']\n",
         "alerting.yaml:6: inhibit_rules[0].equal[1]: invalid label name \"9\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mw_route *root;
        struct mw_inhibitor inh;
        struct mw_cfg_error err = {{0}};
        int rc = load(cases[i][0], &root, &inh, &err);
        if (rc != MW_ECONFIG || strncmp(err.message, cases[i][1], strlen(cases[i][1]))) {
            print_error("case %zu: rc %d\n  got      %s\n  expected %s...\n", i, rc, err.message,
                        cases[i][1]);
            fail();
        }
        assert_null(root);
        assert_int_equal(inh.n, 0);
    }
}

static const char simple[] = "route:\n"
                             "  receiver: default\n"
                             "  group_by: [alertname, model]\n";

static void test_group_timers(void **state)
{
    (void)state;
    struct mw_route *root;
    struct mw_inhibitor inh;
    struct mw_cfg_error err;
    struct mw_dispatch *d;
    char out[4][512];
    assert_int_equal(load(simple, &root, &inh, &err), 0);
    assert_int_equal(mw_dispatch_create(root, NULL, &d), 0);
    assert_true(mw_dispatch_next_ms(d) == INT64_MAX);

    put(d, "alertname=X,model=m,version=v1", 0, false);
    assert_int_equal(mw_dispatch_next_ms(d), 30 * S);
    assert_int_equal(advance(d, 29 * S, NULL, out, 4), 0);
    assert_int_equal(advance(d, 30 * S, NULL, out, 4), 1); /* group_wait */
    assert_string_equal(out[0], "default route{alertname=\"X\",model=\"m\"} F:X/m R:");

    /* A second alert of the group waits for the next group_interval tick (30 s + 5 m). */
    put(d, "alertname=X,model=m,version=v2", 60 * S, false);
    assert_int_equal(advance(d, 329 * S, NULL, out, 4), 0);
    assert_int_equal(advance(d, 330 * S, NULL, out, 4), 1);
    assert_string_equal(out[0], "default route{alertname=\"X\",model=\"m\"} F:X/m,X/m R:");

    /* Unchanged: nothing until repeat_interval (4 h) after the last notification, at the
     * tick 30 s + 49 x 5 m = 330 s + 4 h. */
    assert_int_equal(advance(d, 14729 * S, NULL, out, 4), 0);
    assert_int_equal(advance(d, 14730 * S, NULL, out, 4), 1);
    assert_string_equal(out[0], "default route{alertname=\"X\",model=\"m\"} repeat F:X/m,X/m R:");

    /* A resolve goes out at the next tick with what still fires; once. */
    put(d, "alertname=X,model=m,version=v1", 15000 * S, true);
    assert_int_equal(advance(d, 15030 * S, NULL, out, 4), 1);
    assert_string_equal(out[0], "default route{alertname=\"X\",model=\"m\"} F:X/m R:X/m");
    assert_int_equal(advance(d, 15330 * S, NULL, out, 4), 0);
    put(d, "alertname=X,model=m,version=v2", 15400 * S, true);
    assert_int_equal(advance(d, 15630 * S, NULL, out, 4), 1);
    assert_string_equal(out[0], "default route{alertname=\"X\",model=\"m\"} F: R:X/m");
    assert_int_equal(mw_dispatch_n_groups(d), 0); /* nothing left: the group went away */
    /* The same resolve again finds no group: nothing is sent twice. */
    put(d, "alertname=X,model=m,version=v2", 15700 * S, true);
    assert_int_equal(advance(d, 20000 * S, NULL, out, 4), 0);
    assert_int_equal(mw_dispatch_n_groups(d), 0);
    mw_dispatch_destroy(d);
    mw_route_free(root);
}

/* Fired and resolved within group_wait: nobody is paged, and no resolve is sent. */
static void test_flap_inside_group_wait_pages_nobody(void **state)
{
    (void)state;
    struct mw_route *root;
    struct mw_inhibitor inh;
    struct mw_cfg_error err;
    struct mw_dispatch *d;
    char out[4][512];
    assert_int_equal(load(simple, &root, &inh, &err), 0);
    assert_int_equal(mw_dispatch_create(root, NULL, &d), 0);
    put(d, "alertname=X,model=m", 0, false);
    put(d, "alertname=X,model=m", 10 * S, true);
    assert_int_equal(advance(d, 3600 * S, NULL, out, 4), 0);
    assert_int_equal(mw_dispatch_n_groups(d), 0);
    mw_dispatch_destroy(d);
    mw_route_free(root);
}

/* Groups split by group_by; `continue` sends one alert to two receivers; a clock jump does
 * not loop over every missed tick. */
static void test_groups_and_continue(void **state)
{
    (void)state;
    struct mw_route *root;
    struct mw_inhibitor inh;
    struct mw_cfg_error err;
    struct mw_dispatch *d;
    char out[8][512];
    assert_int_equal(load(tree, &root, &inh, &err), 0);
    assert_int_equal(mw_dispatch_create(root, NULL, &d), 0);
    put(d, "alertname=X,model=a,team=ml", 0, false);
    put(d, "alertname=X,model=b,team=ml", 0, false);
    put(d, "alertname=Y,model=fraud,severity=critical,version=v1", 0, false);
    put(d, "alertname=Y,model=fraud,severity=critical,version=v2", 0, false);
    /* fraud-pager: group_wait 0 inherited from pager, group_by "..." */
    assert_int_equal(advance(d, 0, NULL, out, 8), 2);
    assert_string_equal(out[0],
                        "fraud-pager route.routes[0].routes[0]{alertname=\"Y\","
                        "model=\"fraud\",severity=\"critical\",version=\"v1\"} F:Y/fraud R:");
    assert_int_equal(advance(d, 30 * S, NULL, out, 8), 4);
    assert_string_equal(out[0], "ml-slack route.routes[1]{alertname=\"X\",model=\"a\"} F:X/a R:");
    assert_string_equal(out[1], "data-slack route.routes[2]{alertname=\"X\",model=\"a\"} F:X/a R:");
    assert_string_equal(out[2], "ml-slack route.routes[1]{alertname=\"X\",model=\"b\"} F:X/b R:");
    assert_string_equal(out[3], "data-slack route.routes[2]{alertname=\"X\",model=\"b\"} F:X/b R:");
    assert_int_equal(mw_dispatch_n_groups(d), 6);
    /* A year later: one repeat per group, not a year of ticks. */
    assert_int_equal(advance(d, 365 * 86400 * S, NULL, out, 8), 6);
    mw_dispatch_destroy(d);
    mw_route_free(root);
}

static const char inhibiting[] = "route:\n"
                                 "  receiver: default\n"
                                 "  group_by: [alertname, model]\n"
                                 "inhibit_rules:\n"
                                 "  - source_matchers: ['alertname=\"ModelAbsent\"']\n"
                                 "    target_matchers: ['signal=~\"drift_verdict|psi|accuracy\"']\n"
                                 "    equal: [model]\n"
                                 "  - source_matchers: ['severity=\"critical\"']\n"
                                 "    target_matchers: ['severity=~\"warning|critical\"']\n"
                                 "    equal: [model, region]\n";

static void test_inhibition(void **state)
{
    (void)state;
    struct mw_route *root;
    struct mw_inhibitor inh;
    struct mw_cfg_error err;
    struct mw_dispatch *d;
    char out[8][512];
    assert_int_equal(load(inhibiting, &root, &inh, &err), 0);
    assert_int_equal(inh.n, 2);
    assert_int_equal(mw_dispatch_create(root, &inh, &d), 0);
    put(d, "alertname=ModelAbsent,model=m,severity=error", 0, false);
    put(d, "alertname=Drift,model=m,signal=drift_verdict,severity=info", 0, false);
    put(d, "alertname=Drift,model=other,signal=drift_verdict,severity=info", 0, false);
    assert_int_equal(advance(d, 30 * S, NULL, out, 8), 2);
    assert_string_equal(out[0], "default route{alertname=\"ModelAbsent\",model=\"m\"} "
                                "F:ModelAbsent/m R:");
    assert_string_equal(out[1], "default route{alertname=\"Drift\",model=\"other\"} "
                                "F:Drift/other R:");
    /* The source resolves: the target is no longer inhibited and goes out. */
    put(d, "alertname=ModelAbsent,model=m,severity=error", 100 * S, true);
    assert_int_equal(advance(d, 330 * S, NULL, out, 8), 2);
    assert_string_equal(out[0], "default route{alertname=\"ModelAbsent\",model=\"m\"} "
                                "F: R:ModelAbsent/m");
    assert_string_equal(out[1], "default route{alertname=\"Drift\",model=\"m\"} F:Drift/m R:");
    mw_dispatch_destroy(d);

    /* Direct checks: an alert matching source and target does not inhibit itself; `equal`
     * labels absent on both sides are equal; different values are not. */
    struct mw_labels crit = labels_of("severity=critical,model=m");
    struct mw_labels warn = labels_of("severity=warning,model=m");
    struct mw_labels warn_eu = labels_of("severity=warning,model=m,region=eu");
    struct mw_labels warn_other = labels_of("severity=warning,model=n");
    const struct mw_labels *firing[] = {&crit};
    assert_false(mw_inhibited(&inh, &crit, firing, 1));
    assert_true(mw_inhibited(&inh, &warn, firing, 1));
    assert_false(mw_inhibited(&inh, &warn_eu, firing, 1));
    assert_false(mw_inhibited(&inh, &warn_other, firing, 1));
    assert_false(mw_inhibited(&inh, &warn, firing, 0));
    assert_false(mw_inhibited(NULL, &warn, firing, 1));
    struct mw_labels crit2 = labels_of("severity=critical,model=m,version=v2");
    const struct mw_labels *both[] = {&crit, &crit2};
    assert_true(mw_inhibited(&inh, &crit, both, 2)); /* another critical alert of m does */
    mw_labels_free(&crit);
    mw_labels_free(&crit2);
    mw_labels_free(&warn);
    mw_labels_free(&warn_eu);
    mw_labels_free(&warn_other);
    mw_inhibitor_free(&inh);
    mw_route_free(root);
}

/* Regression: resolved alerts were dropped from their group's array during the flush, which
 * shifted the array under the inhibition sources the later groups of the same advance read:
 * a source (Src/m2 here) went missing and its target was paged. */
static void test_inhibition_sources_stable_within_one_advance(void **state)
{
    (void)state;
    struct mw_route *root;
    struct mw_inhibitor inh;
    struct mw_cfg_error err;
    struct mw_dispatch *d;
    char out[8][512];
    assert_int_equal(load("route:\n  receiver: default\n  group_by: [alertname]\n"
                          "inhibit_rules:\n"
                          "  - source_matchers: ['alertname=\"Src\"']\n"
                          "    target_matchers: ['alertname=\"Tgt\"']\n"
                          "    equal: [model]\n",
                          &root, &inh, &err),
                     0);
    assert_int_equal(mw_dispatch_create(root, &inh, &d), 0);
    put(d, "alertname=Src,model=m1", 0, false);
    put(d, "alertname=Src,model=mR", 0, false);
    put(d, "alertname=Src,model=m2", 0, false);
    put(d, "alertname=Src,model=m3", 0, false);
    assert_int_equal(advance(d, 30 * S, NULL, out, 8), 1);
    put(d, "alertname=Src,model=mR", 100 * S, true);
    put(d, "alertname=Tgt,model=m2", 100 * S, false); /* its group flushes at 130 s */
    assert_int_equal(advance(d, 330 * S, NULL, out, 8), 1);
    assert_string_equal(out[0], "default route{alertname=\"Src\"} F:Src/m1,Src/m2,Src/m3 R:Src/mR");
    assert_int_equal(mw_dispatch_n_groups(d), 2);
    mw_dispatch_destroy(d);
    mw_inhibitor_free(&inh);
    mw_route_free(root);
}

static struct mw_silence make_silence(const char *id, const char *matcher, int64_t start_ms,
                                      int64_t end_ms)
{
    struct mw_silence s;
    char why[256];
    const char *m[] = {matcher};
    assert_int_equal(
        mw_silence_init(&s, id, m, 1, start_ms, end_ms, "alice", "maintenance", why, sizeof why),
        0);
    return s;
}

static void test_silence_model(void **state)
{
    (void)state;
    struct mw_silences set = {0};
    struct mw_silence s = make_silence("s1", "model=\"m\"", 100 * S, 200 * S);
    assert_int_equal(mw_silence_state_at(&s, 99 * S), MW_SILENCE_PENDING);
    assert_int_equal(mw_silence_state_at(&s, 100 * S), MW_SILENCE_ACTIVE);
    assert_int_equal(mw_silence_state_at(&s, 199 * S), MW_SILENCE_ACTIVE);
    assert_int_equal(mw_silence_state_at(&s, 200 * S), MW_SILENCE_EXPIRED);
    assert_string_equal(mw_silence_state_name(MW_SILENCE_EXPIRED), "expired");
    struct mw_labels m = labels_of("model=m,severity=critical"), n = labels_of("model=n");
    assert_true(mw_silence_mutes(&s, &m, 150 * S));
    assert_false(mw_silence_mutes(&s, &m, 50 * S));
    assert_false(mw_silence_mutes(&s, &m, 250 * S));
    assert_false(mw_silence_mutes(&s, &n, 150 * S));
    assert_int_equal(mw_silences_add(&set, &s), 0);
    assert_null(s.id); /* moved */
    struct mw_silence dup = make_silence("s1", "model=\"x\"", 0, 1);
    assert_int_equal(mw_silences_add(&set, &dup), MW_EINVAL);
    mw_silence_free(&dup);
    struct mw_silence later = make_silence("s2", "severity=~\"crit.*\"", 300 * S, 400 * S);
    assert_int_equal(mw_silences_add(&set, &later), 0);
    assert_string_equal(mw_silences_match(&set, &m, 150 * S)->id, "s1");
    assert_string_equal(mw_silences_match(&set, &m, 350 * S)->id, "s2");
    assert_null(mw_silences_match(&set, &m, 250 * S));
    /* Expiry: an active one ends now; a pending one never starts; twice is not found. */
    assert_int_equal(mw_silences_expire(&set, "s1", 120 * S), 0);
    assert_null(mw_silences_match(&set, &m, 150 * S));
    assert_int_equal(mw_silences_expire(&set, "s1", 130 * S), MW_ENOTFOUND);
    assert_int_equal(mw_silences_expire(&set, "s2", 130 * S), 0);
    assert_null(mw_silences_match(&set, &m, 350 * S));
    assert_int_equal(mw_silences_expire(&set, "nope", 130 * S), MW_ENOTFOUND);
    assert_int_equal(mw_silences_gc(&set, 130 * S + 10 * S, 5 * S), 2);
    assert_int_equal(set.n, 0);

    static const struct {
        const char *matcher;
        int64_t start, end;
        const char *who, *comment, *why;
    } bad[] = {
        {"model=~\".*\"", 0, 1, "a", "c", "every one matches the empty string"},
        {"region=\"\"", 0, 1, "a", "c", "every one matches the empty string"},
        {"model=\"m\"", 5, 5, "a", "c", "ends_at: must be after starts_at"},
        {"model=\"m\"", 0, 1, "", "c", "created_by"},
        {"model=\"m\"", 0, 1, "a", "", "comment"},
        {"model==", 0, 1, "a", "c", "matchers[0]:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[256] = "";
        const char *ms[] = {bad[i].matcher};
        assert_int_equal(mw_silence_init(&s, "x", ms, 1, bad[i].start, bad[i].end, bad[i].who,
                                         bad[i].comment, why, sizeof why),
                         MW_EINVAL);
        if (!strstr(why, bad[i].why)) {
            print_error("case %zu: \"%s\"\n", i, why);
            fail();
        }
    }
    char why[256];
    assert_int_equal(mw_silence_init(&s, "x", NULL, 0, 0, 1, "a", "c", why, sizeof why), MW_EINVAL);
    mw_labels_free(&m);
    mw_labels_free(&n);
    mw_silences_free(&set);
}

/* A silence mutes new firing notifications; the resolve of an alert paged before the silence
 * began is still delivered; an alert that fired only under the silence is never sent. */
static void test_silences_in_notifications(void **state)
{
    (void)state;
    struct mw_route *root;
    struct mw_inhibitor inh;
    struct mw_cfg_error err;
    struct mw_dispatch *d;
    struct mw_silences set = {0};
    char out[4][512];
    assert_int_equal(load("route:\n  receiver: default\n  group_by: [model]\n", &root, &inh, &err),
                     0);
    assert_int_equal(mw_dispatch_create(root, NULL, &d), 0);

    put(d, "alertname=A,model=m", 0, false);
    assert_int_equal(advance(d, 30 * S, &set, out, 4), 1); /* paged */
    assert_string_equal(out[0], "default route{model=\"m\"} F:A/m R:");

    struct mw_silence s = make_silence("s1", "alertname=~\"A|C\"", 100 * S, 100000 * S);
    assert_int_equal(mw_silences_add(&set, &s), 0);
    put(d, "alertname=B,model=m", 200 * S, false); /* not silenced */
    put(d, "alertname=C,model=m", 200 * S, false); /* silenced from the start */
    assert_int_equal(advance(d, 330 * S, &set, out, 4), 1);
    assert_string_equal(out[0], "default route{model=\"m\"} F:B/m R: held:1");
    /* Nothing changes: no repeat of the silenced one, and B repeats on schedule only. */
    assert_int_equal(advance(d, 3600 * S, &set, out, 4), 0);

    /* A resolves under the silence: its resolve is delivered. C resolves: never paged, never
     * resolved. */
    put(d, "alertname=A,model=m", 4000 * S, true);
    put(d, "alertname=C,model=m", 4000 * S, true);
    assert_int_equal(advance(d, 4230 * S, &set, out, 4), 1);
    assert_string_equal(out[0], "default route{model=\"m\"} F:B/m R:A/m");

    /* An alert that fires under the silence is sent when the silence expires. */
    put(d, "alertname=C,model=m", 5000 * S, false);
    assert_int_equal(advance(d, 5130 * S, &set, out, 4), 0);
    assert_int_equal(mw_silences_expire(&set, "s1", 5200 * S), 0);
    assert_int_equal(advance(d, 5430 * S, &set, out, 4), 1);
    assert_string_equal(out[0], "default route{model=\"m\"} F:B/m,C/m R:");

    mw_silences_free(&set);
    mw_dispatch_destroy(d);
    mw_route_free(root);
}

/* A silence over the only alert of a paged group: nothing repeats, the group stays (held)
 * until the alert resolves, and then the resolve goes out. */
static void test_held_group_resolves(void **state)
{
    (void)state;
    struct mw_route *root;
    struct mw_inhibitor inh;
    struct mw_cfg_error err;
    struct mw_dispatch *d;
    struct mw_silences set = {0};
    char out[4][512];
    assert_int_equal(load("route:\n  receiver: default\n  group_by: [model]\n"
                          "  repeat_interval: 10m\n",
                          &root, &inh, &err),
                     0);
    assert_int_equal(mw_dispatch_create(root, NULL, &d), 0);
    put(d, "alertname=A,model=m", 0, false);
    assert_int_equal(advance(d, 30 * S, &set, out, 4), 1);
    struct mw_silence s = make_silence("s1", "model=\"m\"", 60 * S, 100000 * S);
    assert_int_equal(mw_silences_add(&set, &s), 0);
    assert_int_equal(advance(d, 7200 * S, &set, out, 4), 0); /* no repeats while silenced */
    assert_int_equal(mw_dispatch_n_groups(d), 1);
    put(d, "alertname=A,model=m", 7300 * S, true);
    assert_int_equal(advance(d, 7530 * S, &set, out, 4), 1);
    assert_string_equal(out[0], "default route{model=\"m\"} F: R:A/m");
    assert_int_equal(mw_dispatch_n_groups(d), 0);
    mw_silences_free(&set);
    mw_dispatch_destroy(d);
    mw_route_free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matchers),
        cmocka_unit_test(test_matcher_regex_that_expands_exponentially_is_refused),
        cmocka_unit_test(test_routing_tree),
        cmocka_unit_test(test_routing_errors_name_line_and_key),
        cmocka_unit_test(test_group_timers),
        cmocka_unit_test(test_flap_inside_group_wait_pages_nobody),
        cmocka_unit_test(test_groups_and_continue),
        cmocka_unit_test(test_inhibition),
        cmocka_unit_test(test_inhibition_sources_stable_within_one_advance),
        cmocka_unit_test(test_silence_model),
        cmocka_unit_test(test_silences_in_notifications),
        cmocka_unit_test(test_held_group_resolves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
