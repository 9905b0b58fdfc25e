/*
 * apply_plan.c — mw-apply-plan: the aggregator's apply plan of a batch described in JSON,
 * written as raw RESP, so tests and benchmarks can run apply.lua on a real redis-server with
 * exactly the arguments the aggregator would send.
 *
 *   mw-apply-plan < batch.json > commands.resp      (stdout: the commands, one per line of
 *                                                    stderr's JSON: {"commands": n})
 *
 * batch.json: a batch as batch_json.h describes it, plus
 *    "options": {"now_ms", "watermark_ms", "fine_ms", "coarse_ms", "bucket_ms", "shards",
 *                "horizon_ms", "labels_models": [globs], "thresholds": {"model": t}},
 *    "profile": {...a profile document, for every model...} (optional)
 */
#include "batch_decode.h"
#include "batch_json.h"
#include "clock.h"
#include "profile.h"
#include "window_apply.h"

#include <fnmatch.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *options;
static struct mw_profile *profile;

static int64_t opt_int(const char *key, int64_t def)
{
    json_t *v = json_object_get(options, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static const struct mw_profile *lookup(void *ctx, const char *model, const char *version)
{
    (void)ctx;
    (void)model;
    (void)version;
    return profile;
}

static void policy(void *ctx, const char *model, struct mw_label_policy *out)
{
    (void)ctx;
    json_t *globs = json_object_get(options, "labels_models");
    if (json_is_array(globs)) {
        out->expects_labels = false;
        size_t i;
        json_t *g;
        json_array_foreach(globs, i, g) if (fnmatch(json_string_value(g), model, 0) == 0)
            out->expects_labels = true;
    }
    json_t *t = json_object_get(json_object_get(options, "thresholds"), model);
    if (json_is_number(t))
        out->binary_threshold = json_number_value(t);
}

int main(void)
{
    json_error_t jerr;
    json_t *spec = json_loadf(stdin, 0, &jerr);
    if (!spec) {
        fprintf(stderr, "mw-apply-plan: %s (line %d)\n", jerr.text, jerr.line);
        return 2;
    }
    options = json_object_get(spec, "options");
    json_t *pj = json_object_get(spec, "profile");
    int status = 0;
    Modelwatch__V1__Batch *batch = NULL;
    struct mw_apply_plan plan = {0};
    if (pj) {
        char *text = json_dumps(pj, JSON_COMPACT);
        char err[256];
        int rc = mw_profile_parse(text, strlen(text), &profile, err, sizeof err);
        free(text);
        if (rc != 0) {
            fprintf(stderr, "mw-apply-plan: profile: %s\n", err);
            status = 2;
            goto out;
        }
    }
    batch = mw_batch_json(spec);
    if (!batch) {
        fprintf(stderr, "mw-apply-plan: out of memory\n");
        status = 1;
        goto out;
    }
    struct mw_window_spec specs[] = {
        {opt_int("fine_ms", 60000), 172800000, true},
        {opt_int("coarse_ms", 3600000), 2592000000, true},
    };
    struct mw_apply_options opt = {
        .specs = specs,
        .n_specs = 2,
        .dedup_retention_ms = 604800000,
        .watermark_ms = opt_int("watermark_ms", INT64_MIN),
        .allowed_lateness_ms = 300000,
        .out_of_orderness_ms = opt_int("out_of_orderness_ms", 300000),
        .label_horizon_ms = opt_int("horizon_ms", 14 * 86400000LL),
        .profile = profile ? lookup : NULL,
        .label_policy = policy,
        .now_ms = opt_int("now_ms", 0),
        .pending_bucket_ms = opt_int("bucket_ms", 0),
        .pending_shards = (uint32_t)opt_int("shards", 0),
    };
    /* Bounded as the aggregator bounds every batch it decodes, at the batch's clock. */
    const int64_t widths[] = {specs[0].width_ms, specs[1].width_ms};
    struct mw_batch_bounds bounds = {.now_ms = opt.now_ms ? opt.now_ms : mw_clock_wall_ms(),
                                     .max_skew_ms = 60000,
                                     .windows_ms = widths,
                                     .n_windows = 2};
    static struct mw_batch_tally tally;
    mw_batch_bound(batch, &bounds, &tally);
    int rc = mw_apply_plan_build(batch, &opt, &plan);
    if (rc) {
        fprintf(stderr, "mw-apply-plan: plan: %d\n", rc);
        status = 1;
        goto out;
    }
    for (size_t i = 0; i < plan.n_cmds; i++) {
        char *out;
        int n = redisFormatCommandArgv(&out, (int)plan.cmds[i].argc,
                                       (const char **)plan.cmds[i].argv, plan.cmds[i].argvlen);
        bool written = n >= 0 && fwrite(out, 1, (size_t)n, stdout) == (size_t)n;
        if (n >= 0)
            redisFreeCommand(out);
        if (!written) {
            status = 1;
            goto out;
        }
    }
    fprintf(stderr, "{\"commands\": %zu, \"models\": %zu}\n", plan.n_cmds, plan.n_models);
out:
    mw_apply_plan_free(&plan);
    mw_batch_json_free(batch);
    mw_profile_free(profile);
    json_decref(spec);
    return status;
}
