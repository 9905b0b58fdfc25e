/* main.c — modelwatch-aggregator: flags, config, signals, loop. Everything else is in the
 * aggregator library so tests can run one in-process. */
#include "aggregator.h"
#include "alert/alert_config.h"
#include "cli.h"
#include "log.h"

#include <signal.h>
#include <string.h>

static int validate(void *cfg, const char *config_path, char *err, size_t errsize)
{
    return mw_alert_config_check(cfg, config_path, err, errsize);
}

static const struct mw_cli_program program = {
    .name = "modelwatch-aggregator",
    .summary = "Turns modelwatch telemetry from Kafka into windowed model signals in Redis.",
    .default_config = "/etc/modelwatch/aggregator.yaml",
    .table = mw_aggregator_config_table,
    .validate = validate,
};

struct reload_ctx {
    struct mw_aggregator *agg;
    const char *config_path;
};

/* SIGHUP: read the file again; what can change live (the alerting rules, routing and
 * inhibition) is taken, the rest stays as started. */
static void on_reload_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    struct reload_ctx *rc = sig->data;
    struct mw_aggregator_config fresh;
    struct mw_cfg_error err;
    char why[1024];
    memset(&fresh, 0, sizeof fresh);
    if (mw_config_load_file(mw_aggregator_config_table, &fresh, rc->config_path, &err) != 0) {
        char quoted[600];
        MW_LOG_ERROR("aggregator", "reload refused: configuration invalid", "error=%s",
                     mw_log_quote(err.message, quoted, sizeof quoted));
    } else if (validate(&fresh, rc->config_path, why, sizeof why) != 0) {
        char quoted[1100];
        MW_LOG_ERROR("aggregator", "reload refused: configuration invalid", "error=%s",
                     mw_log_quote(why, quoted, sizeof quoted));
    } else {
        MW_LOG_INFO("aggregator", "reloading", "config=%s", rc->config_path);
        mw_aggregator_reload(rc->agg, &fresh, rc->config_path);
    }
    mw_config_free(mw_aggregator_config_table, &fresh);
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
    MW_LOG_INFO("aggregator", "stopping", "signal=%s", strsignal(signum));
    mw_aggregator_shutdown(sig->data);
}

int main(int argc, char **argv)
{
    struct mw_cli cli;
    int status = mw_cli_parse(&program, argc, argv, &cli);
    if (status >= 0)
        return status;
    struct mw_aggregator_config cfg;
    memset(&cfg, 0, sizeof cfg);
    status = mw_cli_load_config(&program, &cli, &cfg, (const char *const *)&cfg.log_level);
    if (status >= 0) {
        mw_config_free(mw_aggregator_config_table, &cfg);
        return status;
    }
    mw_log_set_format((enum mw_log_format)cfg.log_format);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    struct mw_aggregator *agg = NULL;
    if (mw_aggregator_create(loop, &cfg, &agg) != 0) {
        mw_config_free(mw_aggregator_config_table, &cfg);
        return 1;
    }
    uv_signal_t sigterm, sigint, sighup;
    struct reload_ctx reload = {agg, cli.config_path};
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sighup);
    sigterm.data = sigint.data = agg;
    sighup.data = &reload;
    uv_signal_start_oneshot(&sigterm, on_stop_signal, SIGTERM);
    uv_signal_start_oneshot(&sigint, on_stop_signal, SIGINT);
    uv_signal_start(&sighup, on_reload_signal, SIGHUP);
    /* Signal watchers must not keep the loop alive: it ends when the aggregator's handles close. */
    uv_unref((uv_handle_t *)&sigterm);
    uv_unref((uv_handle_t *)&sigint);
    uv_unref((uv_handle_t *)&sighup);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
    uv_close((uv_handle_t *)&sighup, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    mw_aggregator_destroy(agg);
    uv_loop_close(loop);
    mw_config_free(mw_aggregator_config_table, &cfg);
    return 0;
}
