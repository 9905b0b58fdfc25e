/*
 * main.c — modelwatch-ctl's command line: the table of commands (each with its arguments,
 * options and help), option parsing, and dispatch to the commands (cmd_*.c).
 *
 *   modelwatch-ctl [--api URL] [-o table|wide|json] COMMAND [ARGS] [OPTIONS]
 *   modelwatch-ctl --version | --help | COMMAND --help
 *
 * Before the command, --version prints the program's version; after it, --version V names a
 * model version, as it always has.
 */
#include "ctl.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

enum {
    OPT_MODEL = 256,
    OPT_BINS,
    OPT_GRID_BINS,
    OPT_MAX_CATEGORIES,
    OPT_CATEGORICAL,
    OPT_IGNORE,
    OPT_LABEL,
    OPT_WINDOW,
    OPT_INPUT,
    OPT_STATE,
    OPT_DURATION,
    OPT_COMMENT,
    OPT_AUTHOR,
    OPT_TOKEN_FILE,
    OPT_SINCE,
    OPT_UNTIL,
    OPT_AT,
    OPT_PROGRAM_VERSION,
};

static const struct option long_options[] = {
    {"api", required_argument, NULL, 'a'},
    {"version", required_argument, NULL, 'v'},
    {"resolution", required_argument, NULL, 'r'},
    {"since", required_argument, NULL, OPT_SINCE},
    {"from", required_argument, NULL, OPT_SINCE},
    {"until", required_argument, NULL, OPT_UNTIL},
    {"to", required_argument, NULL, OPT_UNTIL},
    {"at", required_argument, NULL, OPT_AT},
    {"json", no_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {"output", required_argument, NULL, 'o'},
    {"model", required_argument, NULL, OPT_MODEL},
    {"bins", required_argument, NULL, OPT_BINS},
    {"grid-bins", required_argument, NULL, OPT_GRID_BINS},
    {"max-categories", required_argument, NULL, OPT_MAX_CATEGORIES},
    {"categorical", required_argument, NULL, OPT_CATEGORICAL},
    {"ignore", required_argument, NULL, OPT_IGNORE},
    {"label", required_argument, NULL, OPT_LABEL},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"input", required_argument, NULL, OPT_INPUT},
    {"state", required_argument, NULL, OPT_STATE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"comment", required_argument, NULL, OPT_COMMENT},
    {"author", required_argument, NULL, OPT_AUTHOR},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {NULL, 0, NULL, 0},
};

/* Before the command --version takes no value: it asks for the program's version. */
static const struct option global_long_options[] = {
    {"api", required_argument, NULL, 'a'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_PROGRAM_VERSION},
    {"output", required_argument, NULL, 'o'},
    {"json", no_argument, NULL, 'j'},
    {NULL, 0, NULL, 0},
};

/* What each option means, for a command's --help. */
static const struct {
    int val;
    const char *text;
} option_help[] = {
    {'v', "--version V        the model version"},
    {'r', "--resolution S     window width in seconds: one of the aggregator's (60, 3600)"},
    {OPT_SINCE, "--since TIME       the first window start (default: 24 h ago); --from"},
    {OPT_UNTIL, "--until TIME       the last window start (default: now); --to"},
    {OPT_AT, "--at TIME          the end of the lookbacks (default: now)"},
    {OPT_WINDOW, "--window TIME      the window's start (default: the newest window)"},
    {OPT_STATE, "--state S          firing, pending, active (both: the default) or all"},
    {OPT_DURATION, "--duration D       how long the silence lasts: 30m, 2h, 1d"},
    {OPT_COMMENT, "--comment C        why (shown with the silence)"},
    {OPT_AUTHOR, "--author A         who (default $USER)"},
    {OPT_TOKEN_FILE, "--token-file FILE  bearer token for API writes (default\n"
                     "                     $MODELWATCH_API_TOKEN_FILE): alerting.api_token_file"},
    {OPT_MODEL, "--model M          the profile's model"},
    {OPT_BINS, "--bins N           PSI bins, 2..100 (default 10)"},
    {OPT_GRID_BINS, "--grid-bins N      quantile grid, 2..1000 (default 100, at least --bins)"},
    {OPT_MAX_CATEGORIES, "--max-categories N categories kept per column (default 50)"},
    {OPT_CATEGORICAL, "--categorical COL  treat COL as categorical (repeatable)"},
    {OPT_IGNORE, "--ignore COL       leave COL out (repeatable)"},
    {OPT_LABEL, "--label COL        the label column"},
    {OPT_INPUT, "--input FILE.csv   the CSV file, instead of the argument"},
};

struct command {
    const char *name;
    int n_args; /* positional arguments; -1: one or more */
    const char *synopsis;
    const char *summary; /* what it does, for the command list and its --help */
    const int *options;  /* 0-terminated; --api and --help go everywhere */
    bool formats;        /* takes -o table|wide|json (and --json) */
};

static const int windows_opts[] = {'v', 'r', OPT_SINCE, OPT_UNTIL, 0};
static const int slo_opts[] = {'v', OPT_AT, 0};
static const int build_opts[] = {
    OPT_MODEL,       'v',        OPT_BINS,  OPT_GRID_BINS, OPT_MAX_CATEGORIES, /* the profile */
    OPT_CATEGORICAL, OPT_IGNORE, OPT_LABEL, 'o',           OPT_INPUT,          0};
static const int show_opts[] = {'v', 0};
static const int drift_opts[] = {'v', OPT_WINDOW, 'r', 0};
static const int no_opts[] = {0};
static const int alerts_opts[] = {OPT_STATE, 0};
static const int silence_add_opts[] = {OPT_DURATION, OPT_COMMENT, OPT_AUTHOR, OPT_TOKEN_FILE, 0};
static const int silence_expire_opts[] = {OPT_TOKEN_FILE, 0};
static const int profile_push_opts[] = {OPT_TOKEN_FILE, 0};

static const struct command commands[] = {
    {"models", 0, "", "list the models the aggregator knows", no_opts, true},
    {"windows", 1, "MODEL [--version V] [--resolution S] [--since TIME] [--until TIME]",
     "per-window requests, errors, latency and sampling of one model", windows_opts, true},
    {"slo", 1, "MODEL [--version V] [--at TIME]",
     "error rates over 5m..3d and the four multi-window burn-rate pairs", slo_opts, true},
    {"drift", 1, "MODEL [--version V] [--window TIME] [--resolution S]",
     "drift of each feature against the reference profile in one window, with the "
     "aggregator's verdicts",
     drift_opts, true},
    {"profile build", 1,
     "--model M --version V [--bins N] [--grid-bins N] [--max-categories N]\n"
     "      [--categorical COL]... [--ignore COL]... [--label COL] [-o FILE] (FILE.csv | --input "
     "FILE.csv)",
     "compute a reference profile from a CSV file with a header row (JSON on stdout, or in "
     "FILE)",
     build_opts, false},
    {"profile push", 1, "FILE.json [--token-file FILE]",
     "store a profile in the aggregator (model and version come from the document)",
     profile_push_opts, false},
    {"profile show", 1, "MODEL [--version V]", "a stored profile (without --version: the newest)",
     show_opts, true},
    {"rules check", -1, "FILE...",
     "load alert rule files as the aggregator does and report the first error of each", no_opts,
     false},
    {"alerts", 0, "[--state S]", "alerts, newest first, and the silences muting them", alerts_opts,
     true},
    {"silence add", -1, "MATCHER... --duration D [--comment C] [--author A] [--token-file FILE]",
     "silence the alerts matching every matcher (name=\"v\", name!=\"v\", name=~\"re\", "
     "name!~\"re\"); prints the silence's id",
     silence_add_opts, true},
    {"silence list", 0, "", "silences: pending, active and expired", no_opts, true},
    {"silence expire", 1, "ID [--token-file FILE]", "end a silence now", silence_expire_opts,
     false},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *to)
{
    fprintf(to, "usage: modelwatch-ctl [--api URL] [-o table|wide|json] COMMAND [ARGS]\n"
                "       modelwatch-ctl --version | --help | COMMAND --help\n"
                "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(to, "  %-15s %s\n", commands[i].name, commands[i].summary);
    fprintf(to,
            "Options:\n"
            "  --api URL          the aggregator's API (default http://127.0.0.1:9465, or "
            "$MODELWATCH_API)\n"
            "  -o, --output FMT   table (default), wide (more columns) or json (the API's "
            "data); --json\n"
            "TIME: RFC 3339 (2026-12-01T17:00:00Z), Unix seconds (below 1e11) or ms, now, or a\n"
            "duration before now (30m, 2h, 1d).\n");
}

static void command_help(const struct command *cmd)
{
    printf("usage: modelwatch-ctl %s %s\n%s.\n", cmd->name, cmd->synopsis, cmd->summary);
    printf("Options:\n  --api URL          the aggregator's API (default $MODELWATCH_API or "
           "http://127.0.0.1:9465)\n");
    if (cmd->formats)
        printf("  -o, --output FMT   table (default), wide (more columns) or json (the API's "
               "data); --json\n");
    for (const int *p = cmd->options; *p; p++) {
        if (*p == 'o')
            printf("  -o FILE            write the profile to FILE (atomically)\n");
        for (size_t i = 0; i < sizeof option_help / sizeof option_help[0]; i++)
            if (option_help[i].val == *p)
                printf("  %s\n", option_help[i].text);
    }
    bool times = false;
    for (const int *p = cmd->options; *p; p++)
        times |= *p == OPT_SINCE || *p == OPT_AT || *p == OPT_WINDOW;
    if (times)
        printf("TIME: RFC 3339 (2026-12-01T17:00:00Z), Unix seconds (below 1e11, fraction "
               "allowed) or ms,\nnow, or a duration before now (30m, 2h, 1d).\n");
}

static const char *option_name(int c)
{
    for (const struct option *o = long_options; o->name; o++)
        if (o->val == c)
            return o->name;
    return "?";
}

/* The times as given, resolved once the command line is read. */
struct time_args {
    const char *since, *until, *at, *window;
};

static bool set_format(struct options *o, const char *text)
{
    static const char *const names[] = {"table", "wide", "json"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(text, names[i]) == 0) {
            o->format = (enum ctl_format)i;
            return true;
        }
    }
    fprintf(stderr, "modelwatch-ctl: -o %s: expected table, wide or json\n", text);
    return false;
}

/* One option of a command (or, cmd NULL, before the command) into `o`. Returns 0 or 2. */
static int take_option(int c, const struct command *cmd, struct options *o, struct time_args *t)
{
    bool allowed = c == 'a' || ((c == 'o' || c == 'j') && (!cmd || cmd->formats));
    for (const int *p = cmd ? cmd->options : no_opts; *p && !allowed; p++)
        allowed = *p == c;
    if (!allowed) {
        fprintf(stderr, "modelwatch-ctl: %s does not take --%s\n",
                cmd ? cmd->name : "the command line before the command", option_name(c));
        return 2;
    }
    switch (c) {
    case 'a':
        o->api = optarg;
        break;
    case 'v':
        o->version = optarg;
        break;
    case 'r':
        o->resolution = optarg;
        break;
    case 'j':
        o->format = CTL_JSON;
        break;
    case 'o':
        if (cmd && !cmd->formats)
            o->output = optarg; /* profile build: the file */
        else if (!set_format(o, optarg))
            return 2;
        break;
    case OPT_SINCE:
        t->since = optarg;
        break;
    case OPT_UNTIL:
        t->until = optarg;
        break;
    case OPT_AT:
        t->at = optarg;
        break;
    case OPT_WINDOW:
        t->window = optarg;
        break;
    case OPT_MODEL:
        o->model = optarg;
        break;
    case OPT_BINS:
        o->bins = optarg;
        break;
    case OPT_GRID_BINS:
        o->grid_bins = optarg;
        break;
    case OPT_MAX_CATEGORIES:
        o->max_categories = optarg;
        break;
    case OPT_CATEGORICAL:
        o->categorical[o->n_categorical++] = optarg;
        break;
    case OPT_IGNORE:
        o->ignore[o->n_ignore++] = optarg;
        break;
    case OPT_LABEL:
        o->label = optarg;
        break;
    case OPT_INPUT:
        o->input = optarg;
        break;
    case OPT_STATE:
        o->state = optarg;
        break;
    case OPT_DURATION:
        o->duration = optarg;
        break;
    case OPT_COMMENT:
        o->comment = optarg;
        break;
    case OPT_AUTHOR:
        o->author = optarg;
        break;
    case OPT_TOKEN_FILE:
        o->token_file = optarg;
        break;
    default:
        return 2;
    }
    return 0;
}

/*
 * Parse the options of `cmd` (NULL: the global options before the command, stopping at the
 * first argument) in argv[1..argc-1]; for a command, GNU getopt permutes its positional
 * arguments to the end, so options may follow them. --help prints the command's help (or the
 * usage) and exits 0; --version before the command prints the program's version and exits 0.
 * Returns 0 with *first_arg at the first positional argument, or 2 after printing a usage error.
 */
static int parse_options(int argc, char **argv, const struct command *cmd, struct options *o,
                         struct time_args *t, int *first_arg)
{
    int c;
    optind = 0; /* GNU: full re-initialisation */
    while ((c = getopt_long(argc, argv, cmd ? "a:v:r:o:jh" : "+a:o:jh",
                            cmd ? long_options : global_long_options, NULL)) != -1) {
        if (c == '?')
            return 2;
        if (c == 'h') {
            if (cmd)
                command_help(cmd);
            else
                usage(stdout);
            exit(0);
        }
        if (c == OPT_PROGRAM_VERSION) {
            printf("modelwatch-ctl %s\n", MW_VERSION);
            exit(0);
        }
        int rc = take_option(c, cmd, o, t);
        if (rc)
            return rc;
    }
    *first_arg = optind;
    return 0;
}

/* The times of the command line into epoch ms; false after printing which one is wrong. */
static bool resolve_times(const struct time_args *t, struct options *o)
{
    int64_t now = mw_clock_wall_ms();
    bool ok = true;
    if (t->since)
        ok &= o->has_since = ctl_parse_time_arg("--since", t->since, now, &o->since_ms);
    if (t->until)
        ok &= o->has_until = ctl_parse_time_arg("--until", t->until, now, &o->until_ms);
    if (t->at)
        ok &= o->has_at = ctl_parse_time_arg("--at", t->at, now, &o->at_ms);
    if (t->window)
        ok &= o->has_window = ctl_parse_time_arg("--window", t->window, now, &o->window_ms);
    if (ok && o->has_since && o->has_until && o->since_ms > o->until_ms) {
        fprintf(stderr, "modelwatch-ctl: --since is after --until\n");
        ok = false;
    }
    return ok;
}

/* A local check of --resolution, so a typo gets a clear message rather than an HTTP 400. */
static bool check_resolution(const struct options *o)
{
    if (!o->resolution)
        return true;
    char *end;
    errno = 0;
    long long v = strtoll(o->resolution, &end, 10);
    if (errno || end == o->resolution || *end || v < 1) {
        fprintf(stderr, "modelwatch-ctl: --resolution %s: expected a number of seconds >= 1\n",
                o->resolution);
        return false;
    }
    return true;
}

/* The command named at argv[*at] (two words for profile, rules and silence); NULL after
 * printing why there is none. Advances *at to the command's last word. */
static const struct command *find_command(int argc, char **argv, int *at)
{
    char name[64];
    snprintf(name, sizeof name, "%s", argv[*at]);
    bool two_words =
        strcmp(name, "profile") == 0 || strcmp(name, "rules") == 0 || strcmp(name, "silence") == 0;
    if (two_words && *at + 1 < argc) {
        snprintf(name, sizeof name, "%s %s", argv[*at], argv[*at + 1]);
        ++*at;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    if (strncmp(name, "profile", 7) == 0)
        fprintf(stderr, "modelwatch-ctl: profile takes build, push or show\n");
    else if (strncmp(name, "rules", 5) == 0)
        fprintf(stderr, "modelwatch-ctl: rules takes check\n");
    else if (strncmp(name, "silence", 7) == 0)
        fprintf(stderr, "modelwatch-ctl: silence takes add, list or expire\n");
    else
        fprintf(stderr, "modelwatch-ctl: unknown command: %s\n", name);
    return NULL;
}

static int run(const struct command *cmd, struct options *o, int n_args, char **args)
{
    const char *arg = n_args ? args[0] : o->input;
    const char *name = cmd->name;
    if (strcmp(name, "models") == 0)
        return ctl_cmd_models(o);
    if (strcmp(name, "windows") == 0)
        return ctl_cmd_windows(o, arg);
    if (strcmp(name, "slo") == 0)
        return ctl_cmd_slo(o, arg);
    if (strcmp(name, "drift") == 0)
        return ctl_cmd_drift(o, arg);
    if (strcmp(name, "profile build") == 0)
        return ctl_cmd_profile_build(o, arg);
    if (strcmp(name, "profile push") == 0) /* the token when one is named: an aggregator with
                                                alerting.api_token_file wants it on writes */
        return ctl_has_token_file(o) && !ctl_load_token(o) ? 1 : ctl_cmd_profile_push(o, arg);
    if (strcmp(name, "profile show") == 0)
        return ctl_cmd_profile_show(o, arg);
    if (strcmp(name, "rules check") == 0)
        return ctl_cmd_rules_check(n_args, args);
    if (strcmp(name, "alerts") == 0)
        return ctl_cmd_alerts(o);
    if (strcmp(name, "silence add") == 0)
        return ctl_cmd_silence_add(o, n_args, args);
    if (strcmp(name, "silence list") == 0)
        return ctl_cmd_silence_list(o);
    return ctl_cmd_silence_expire(o, arg);
}

int main(int argc, char **argv)
{
    struct options o = {.api = getenv("MODELWATCH_API")};
    struct time_args times = {0};
    if (!o.api || !*o.api)
        o.api = "http://127.0.0.1:9465";
    o.categorical = calloc((size_t)argc, sizeof *o.categorical);
    o.ignore = calloc((size_t)argc, sizeof *o.ignore);
    if (!o.categorical || !o.ignore)
        return 1;
    int rc = 2, cmd_at, first_arg;
    const struct command *cmd = NULL;
    /* Global options come before the command: find the command word first. */
    if (parse_options(argc, argv, NULL, &o, &times, &cmd_at) || cmd_at >= argc ||
        !(cmd = find_command(argc, argv, &cmd_at))) {
        usage(stderr);
        goto out;
    }
    /* The command's own options and arguments: argv[cmd_at] plays argv[0]. */
    int sub_argc = argc - cmd_at;
    char **sub_argv = argv + cmd_at;
    if (parse_options(sub_argc, sub_argv, cmd, &o, &times, &first_arg))
        goto out;
    int n_args = sub_argc - first_arg;
    /* `profile build --input FILE` names the CSV as an option rather than an argument. */
    bool input_option = o.input && n_args == 0 && strcmp(cmd->name, "profile build") == 0;
    bool variadic = cmd->n_args < 0 && n_args > 0;
    if (n_args != cmd->n_args && !input_option && !variadic) {
        fprintf(stderr, "modelwatch-ctl: %s takes %s\nusage: modelwatch-ctl %s %s\n", cmd->name,
                cmd->n_args < 0 ? "one or more arguments"
                : cmd->n_args   ? "one argument"
                                : "no arguments",
                cmd->name, cmd->synopsis);
        goto out;
    }
    if (!resolve_times(&times, &o) || !check_resolution(&o))
        goto out;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = run(cmd, &o, n_args, sub_argv + first_arg);
    curl_global_cleanup();
out:
    free(o.categorical);
    free(o.ignore);
    return rc;
}
