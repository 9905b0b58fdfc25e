/* alert_config.c — compiling the alerting sections of the configuration (alert_config.h). */
#include "alert/alert_config.h"

#include "alert/receiver.h"
#include "alert/yaml_lines.h"
#include "alloc.h"
#include "error.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

int mw_alert_config_resolve_paths(struct mw_aggregator_config *cfg, const char *config_path)
{
    const char *slash = config_path ? strrchr(config_path, '/') : NULL;
    if (!slash)
        return 0; /* the config file is in the working directory: relative is right already */
    size_t dir_len = (size_t)(slash - config_path) + 1;
    for (size_t i = 0; i < cfg->rule_files.n; i++) {
        const char *p = cfg->rule_files.items[i];
        if (!p || p[0] == '/')
            continue;
        size_t size = dir_len + strlen(p) + 1;
        char *abs = mw_malloc(size);
        if (!abs)
            return MW_ENOMEM;
        snprintf(abs, size, "%.*s%s", (int)dir_len, config_path, p);
        mw_free(cfg->rule_files.items[i]);
        cfg->rule_files.items[i] = abs;
    }
    return 0;
}

void mw_alert_config_free(struct mw_alert_config *ac)
{
    if (!ac)
        return;
    mw_rule_set_free(&ac->rules);
    mw_route_free(ac->route);
    mw_inhibitor_free(&ac->inhibitor);
    *ac = (struct mw_alert_config){0};
}

/* "receivers[2].url: required for type webhook" -> FILE:LINE: receivers[2].url: required ... */
static int receivers_error(struct mw_cfg_error *err, const char *file, const char *why)
{
    char key[128] = "receivers", near[64] = "receivers";
    const char *colon = strstr(why, ": ");
    const char *rest = why;
    if (colon && (size_t)(colon - why) < sizeof key) {
        snprintf(key, sizeof key, "%.*s", (int)(colon - why), why);
        rest = colon + 2;
        const char *dot = strchr(key, '.');
        snprintf(near, sizeof near, "%.*s", (int)(dot ? dot - key : (long)strlen(key)), key);
    }
    return mw_yaml_lines_fail(err, file, NULL, key, near, "%s", rest);
}

static int check_receivers(const struct mw_aggregator_config *cfg, const char *file, bool create,
                           struct mw_cfg_error *err)
{
    char why[400];
    if (mw_receivers_config_check(&cfg->receivers, why, sizeof why) != 0)
        return receivers_error(err, file, why);
    const struct mw_receiver_config *items = cfg->receivers.items;
    for (size_t i = 0; create && i < cfg->receivers.n; i++) {
        struct mw_receiver *r = NULL;
        int rc = mw_receiver_create(&items[i], &r, why, sizeof why);
        mw_receiver_destroy(r);
        if (rc == MW_ENOMEM) {
            snprintf(err->message, sizeof err->message, "%s: out of memory", file);
            return rc;
        }
        if (rc) {
            /* "routing_key_file: cannot read ..." names the key: point at its line. */
            char key[96], near[48];
            const char *rest = why;
            size_t id_len = strspn(why, "abcdefghijklmnopqrstuvwxyz_.");
            snprintf(near, sizeof near, "receivers[%zu]", i);
            snprintf(key, sizeof key, "%s", near);
            if (id_len > 0 && id_len < 40 && strncmp(why + id_len, ": ", 2) == 0) {
                snprintf(key, sizeof key, "%s.%.*s", near, (int)id_len, why);
                rest = why + id_len + 2;
            }
            mw_yaml_lines_fail(err, file, NULL, key, near, "%s", rest);
            return rc;
        }
    }
    return 0;
}

int mw_alert_config_compile(const struct mw_aggregator_config *cfg, const char *config_path,
                            bool check_receivers_now, struct mw_alert_config *out,
                            struct mw_cfg_error *err)
{
    const char *file = config_path ? config_path : "<config>";
    *out = (struct mw_alert_config){0};
    int rc = 0;
    for (size_t i = 0; !rc && i < cfg->rule_files.n; i++)
        rc = mw_rules_load_glob(&out->rules, cfg->rule_files.items[i], err);
    if (!rc)
        rc = check_receivers(cfg, file, check_receivers_now, err);
    const char **names = NULL;
    if (!rc && (cfg->route.receiver || cfg->receivers.n)) {
        const struct mw_receiver_config *items = cfg->receivers.items;
        names = mw_calloc(cfg->receivers.n + 1, sizeof *names);
        if (!names) {
            snprintf(err->message, sizeof err->message, "%s: out of memory", file);
            rc = MW_ENOMEM;
        }
        for (size_t i = 0; !rc && i < cfg->receivers.n; i++)
            names[i] = items[i].name;
        if (!rc)
            rc = mw_route_build(&cfg->route, "route", file, NULL, names, &out->route, err);
    }
    mw_free(names);
    if (!rc)
        rc = mw_inhibitor_build(&cfg->inhibit_rules, "inhibit_rules", file, NULL, &out->inhibitor,
                                err);
    if (rc)
        mw_alert_config_free(out);
    return rc;
}

unsigned mw_alert_config_widths(const struct mw_alert_config *ac, const char *model)
{
    unsigned widths = 0;
    for (size_t i = 0; i < ac->rules.n; i++) {
        const struct mw_rule *r = &ac->rules.rules[i];
        unsigned flags = mw_signal_info(r->signal)->flags;
        if (flags & (MW_SIGNAL_WALL | MW_SIGNAL_PIPELINE))
            continue;
        if (fnmatch(r->model, model, 0) != 0)
            continue;
        widths |= (flags & MW_SIGNAL_BURN) ? 1u << MW_RESOLUTION_FINE : 1u << r->resolution;
    }
    return widths;
}

size_t mw_alert_config_delays(const struct mw_alert_config *ac, const char *model,
                              enum mw_resolution res, int64_t *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < ac->rules.n; i++) {
        const struct mw_rule *r = &ac->rules.rules[i];
        unsigned flags = mw_signal_info(r->signal)->flags;
        if ((flags & (MW_SIGNAL_WALL | MW_SIGNAL_PIPELINE)) || fnmatch(r->model, model, 0) != 0)
            continue;
        enum mw_resolution rr = (flags & MW_SIGNAL_BURN) ? MW_RESOLUTION_FINE : r->resolution;
        if (rr != res)
            continue;
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++)
            seen = out[k] == r->delay_ms;
        if (!seen && n < max)
            out[n++] = r->delay_ms;
    }
    return n;
}

int mw_alert_config_check(struct mw_aggregator_config *cfg, const char *config_path, char *err,
                          size_t errsize)
{
    struct mw_cfg_error e;
    struct mw_alert_config ac;
    int rc = mw_alert_config_resolve_paths(cfg, config_path);
    if (rc) {
        snprintf(err, errsize, "%s: out of memory", config_path ? config_path : "<config>");
        return rc;
    }
    rc = mw_alert_config_compile(cfg, config_path, true, &ac, &e);
    if (rc) {
        snprintf(err, errsize, "%s", e.message);
        return rc;
    }
    mw_alert_config_free(&ac);
    return 0;
}
