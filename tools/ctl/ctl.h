/*
 * ctl.h — what the parts of modelwatch-ctl share: the parsed command line, requests to the
 * aggregator's API (http.c), printing (output.c) and the commands (cmd_*.c), which main.c
 * parses and dispatches.
 *
 * Every command that reads the API prints a table by default, a wider one with -o wide, or
 * with -o json the API's data as it came (without the envelope). Exit status: 0, 1 when the
 * work failed (the reason is on stderr), 2 for a usage error.
 */
#ifndef MW_TOOLS_CTL_H
#define MW_TOOLS_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MAX_PATH_BYTES 2048

enum ctl_format { CTL_TABLE, CTL_WIDE, CTL_JSON };

struct options {
    const char *api;
    const char *version; /* the model version (--version V after a command) */
    const char *resolution;
    enum ctl_format format;
    /* Times as epoch ms, resolved by main.c from --since/--until/--at/--window (RFC 3339, Unix
     * seconds or ms, or relative to now: 2h, 30m, 1d); has_* when given. */
    int64_t since_ms, until_ms, at_ms, window_ms;
    bool has_since, has_until, has_at, has_window;
    const char *input; /* profile build --input FILE */
    /* profile build */
    const char *model;
    const char *bins;
    const char *grid_bins;
    const char *max_categories;
    const char **categorical; /* argc slots, n_categorical used */
    size_t n_categorical;
    const char **ignore;
    size_t n_ignore;
    const char *label;
    const char *output; /* profile build -o FILE */
    /* alerts, silence */
    const char *state;
    const char *duration;
    const char *comment;
    const char *author;
    const char *token_file;
    char token[512]; /* read from token_file for silence writes */
};

/* ---- http.c ---- */

/* A request path under construction: fixed text, URL-escaped parts and query parameters. */
struct path {
    char text[MAX_PATH_BYTES];
    size_t len;
    bool too_long;
    bool has_query;
};

/*
 * `method` api + path, with `body` (JSON, body_len bytes) when not NULL. Returns the data of a
 * 2xx answer's envelope (a new reference), or NULL after printing why: the transport error, the
 * HTTP status with the API's errorType and error, or an answer that is not the API's envelope.
 */
json_t *ctl_request(const struct options *o, const char *method, const char *path, const char *body,
                    size_t body_len);
json_t *ctl_get(const struct options *o, const char *path);
void ctl_path_add(struct path *p, const char *s);
void ctl_path_add_escaped(struct path *p, const char *s);
/* Adds ?name=value or &name=value; nothing when value is NULL. */
void ctl_path_param(struct path *p, const char *name, const char *value);
/* The same with an epoch-ms time, when `has`. */
void ctl_path_param_ms(struct path *p, const char *name, bool has, int64_t ms);
/* "/api/v1/models/{model}" followed by `rest` (not escaped). */
void ctl_model_path(struct path *p, const char *model, const char *rest);
/* False after printing that the path is too long. */
bool ctl_path_ok(const struct path *p);

/* ---- output.c ---- */

/* Print `doc` indented and drop the reference; returns 0. */
int ctl_print_json(json_t *doc);
/* "2026-12-01 17:00:00Z" */
void ctl_format_time(int64_t ms, char *buf, size_t size);
/* printf `fmt` of a number, or "-" in 10 columns. */
void ctl_print_number(const json_t *v, const char *fmt);
/* A number or "-" right-aligned in `width`; `percent` scales by 100 and appends %. */
void ctl_print_cell(const json_t *v, int width, int precision, bool percent);
/* Width of a FEATURE column for the object's keys or the array's "feature" members. */
int ctl_name_width(const json_t *features);
/*
 * A time given on the command line into epoch ms: RFC 3339, Unix seconds or ms (read as the
 * API reads them, common/clock.h), "now", or a duration before now ("2h", "30m", "1d",
 * "90s"). Returns false after printing an error that names `flag`.
 */
bool ctl_parse_time_arg(const char *flag, const char *text, int64_t now_ms, int64_t *out_ms);

/* ---- the API token ---- */

/* Whether a token file is named (--token-file or $MODELWATCH_API_TOKEN_FILE). */
bool ctl_has_token_file(const struct options *o);
/* Read the bearer token API writes need into o->token (http.c sends it); false after saying
 * why on stderr. */
bool ctl_load_token(struct options *o);

/* ---- commands ---- */

int ctl_cmd_models(const struct options *o);
int ctl_cmd_windows(const struct options *o, const char *model);
int ctl_cmd_slo(const struct options *o, const char *model);
int ctl_cmd_drift(const struct options *o, const char *model);
int ctl_cmd_profile_build(const struct options *o, const char *csv_path);
int ctl_cmd_profile_push(const struct options *o, const char *file);
int ctl_cmd_profile_show(const struct options *o, const char *model);
int ctl_cmd_rules_check(int n_files, char **files);
int ctl_cmd_alerts(const struct options *o);
int ctl_cmd_silence_add(struct options *o, int n_matchers, char **matchers);
int ctl_cmd_silence_list(const struct options *o);
int ctl_cmd_silence_expire(struct options *o, const char *id);

#endif
