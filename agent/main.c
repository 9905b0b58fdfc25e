/* main.c — modelwatch-agent: flags, config, signals, loop. Everything else is in the agent
 * library so tests can run an agent in-process. */
#include "agent.h"
#include "cli.h"
#include "log.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct mw_cli_program program = {
    .name = "modelwatch-agent",
    .summary = "Sidecar that captures model predictions and ships them to Kafka.",
    .default_config = "/etc/modelwatch/agent.yaml",
    .table = mw_agent_config_table,
};

static const char *config_path;

/* Blocks of 128 KiB and more (the spool's read buffer, librdkafka's copy of each batch in
 * flight, zstd's workspace) are mmapped and returned to the system when freed. glibc's default
 * raises this threshold to the largest block freed so far, after which such blocks come from
 * the heap, and the heap keeps every page a burst touched: at 100 % payload sampling that was
 * about 1 MiB of the agent's peak RSS. A few batches a second make the extra mmap/munmap calls
 * negligible. GLIBC_TUNABLES=glibc.malloc.mmap_threshold=N still wins when given. */
static void bound_malloc_retention(void)
{
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (tunables && strstr(tunables, "malloc.mmap_threshold"))
        return;
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

/* SIGHUP: read the file again and apply what can change live; a bad file changes nothing. */
static void on_reload_signal(uv_signal_t *sig, int signum)
{
    struct mw_agent *agent = sig->data;
    struct mw_agent_config fresh;
    struct mw_cfg_error err;
    (void)signum;
    memset(&fresh, 0, sizeof fresh);
    if (mw_config_load_file(mw_agent_config_table, &fresh, config_path, &err) != 0 ||
        mw_agent_config_validate(&fresh, config_path, err.message, sizeof err.message) != 0) {
        char quoted[1200];
        MW_LOG_ERROR("agent", "reload refused: invalid configuration", "error=%s",
                     mw_log_quote(err.message, quoted, sizeof quoted));
    } else {
        mw_agent_reload(agent, &fresh);
    }
    mw_config_free(mw_agent_config_table, &fresh);
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
    struct mw_agent *agent = sig->data;
    MW_LOG_INFO("agent", "stopping", "signal=%s", strsignal(signum));
    mw_agent_shutdown(agent);
}

int main(int argc, char **argv)
{
    bound_malloc_retention();
    struct mw_cli cli;
    int status = mw_cli_parse(&program, argc, argv, &cli);
    if (status >= 0)
        return status;
    struct mw_agent_config cfg;
    memset(&cfg, 0, sizeof cfg);
    /* Load without --check-config/--dump-config first: the checks across keys come before
     * either says the file is fine. */
    struct mw_cli load = cli;
    load.check_config = load.dump_config = false;
    status = mw_cli_load_config(&program, &load, &cfg, (const char *const *)&cfg.log_level);
    if (status >= 0) {
        mw_config_free(mw_agent_config_table, &cfg);
        return status;
    }
    char err[1024];
    if (mw_agent_config_validate(&cfg, cli.config_path, err, sizeof err) != 0) {
        fprintf(stderr, "%s: invalid configuration: %s\n", program.name, err);
        mw_config_free(mw_agent_config_table, &cfg);
        return 2;
    }
    if (cli.check_config || cli.dump_config) {
        mw_config_free(mw_agent_config_table, &cfg);
        memset(&cfg, 0, sizeof cfg);
        status = mw_cli_load_config(&program, &cli, &cfg, (const char *const *)&cfg.log_level);
        mw_config_free(mw_agent_config_table, &cfg);
        return status;
    }
    mw_log_set_format((enum mw_log_format)cfg.log_format);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    struct mw_agent *agent = NULL;
    if (mw_agent_create(loop, &cfg, &agent) != 0) {
        mw_config_free(mw_agent_config_table, &cfg);
        return 1;
    }
    config_path = cli.config_path;
    uv_signal_t sigterm, sigint, sighup;
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_init(loop, &sighup);
    sigterm.data = sigint.data = sighup.data = agent;
    uv_signal_start_oneshot(&sigterm, on_stop_signal, SIGTERM);
    uv_signal_start_oneshot(&sigint, on_stop_signal, SIGINT);
    uv_signal_start(&sighup, on_reload_signal, SIGHUP);
    /* Signal watchers must not keep the loop alive: it ends when the agent's handles close. */
    uv_unref((uv_handle_t *)&sigterm);
    uv_unref((uv_handle_t *)&sigint);
    uv_unref((uv_handle_t *)&sighup);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_signal_t *sigs[] = {&sigint, &sigterm, &sighup};
    for (size_t i = 0; i < 3; i++)
        if (!uv_is_closing((uv_handle_t *)sigs[i]))
            uv_close((uv_handle_t *)sigs[i], NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    int rc = mw_agent_destroy(agent);
    uv_loop_close(loop);
    mw_config_free(mw_agent_config_table, &cfg);
    return rc ? 1 : 0;
}
