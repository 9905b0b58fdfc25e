/*
 * fuzz_aggregator_config.c — modelwatch-aggregator's YAML configuration: the table-driven
 * loader (common/config.c with the aggregator's table, receivers included), then the alerting
 * sections compiled as at start-up and on SIGHUP (receivers checked, the route tree and the
 * inhibition rules built), and --dump-config. Rule files are files of their own, with their
 * own target (fuzz_alert_rules); the globs naming them are not followed here.
 */
#include "aggregator_config.h"
#include "alert/alert_config.h"
#include "buf.h"
#include "config.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static void compile_alerting(struct mw_aggregator_config *cfg)
{
    struct mw_cfg_strlist rule_files = cfg->rule_files;
    struct mw_alert_config ac;
    struct mw_cfg_error err = {0};
    cfg->rule_files = (struct mw_cfg_strlist){0};
    if (mw_alert_config_compile(cfg, "aggregator.yaml", false, &ac, &err) == 0)
        mw_alert_config_free(&ac);
    else if (!err.message[0])
        abort(); /* a refusal always says what and where */
    cfg->rule_files = rule_files;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_fuzz_quiet();
    char *text = malloc(size + 1); /* the loader takes a C string, as read from a file */
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct mw_aggregator_config cfg;
    struct mw_cfg_error err = {0};
    memset(&cfg, 0, sizeof cfg);
    if (mw_config_load_string(mw_aggregator_config_table, &cfg, text, "aggregator.yaml", &err) ==
        0) {
        compile_alerting(&cfg);
        struct mw_buf dump;
        mw_buf_init(&dump, 1u << 20);
        mw_config_dump(mw_aggregator_config_table, &cfg, &dump);
        mw_buf_free(&dump);
    } else if (!err.message[0]) {
        abort();
    }
    mw_config_free(mw_aggregator_config_table, &cfg);
    free(text);
    return 0;
}
