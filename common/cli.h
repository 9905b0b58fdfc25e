/*
 * cli.h — the command line both binaries share: --config FILE, --check-config, --dump-config,
 * --version, --help, and loading the config table with errors that name file, line and key.
 */
#ifndef MW_COMMON_CLI_H
#define MW_COMMON_CLI_H

#include "config.h"

#include <stdbool.h>

struct mw_cli {
    const char *config_path;
    bool check_config;
    bool dump_config;
};

/* What a binary tells the shared command line about itself. */
struct mw_cli_program {
    const char *name;           /* "modelwatch-agent" */
    const char *summary;        /* one line for --help */
    const char *default_config; /* used when --config is absent */
    const struct mw_cfg_field *table;
    /* Optional: what the table cannot check (files the configuration names, say), run once the
     * table has loaded, before --check-config says ok and before a normal start alike; it may
     * adjust `cfg` (resolve relative paths). 0, or nonzero with "FILE:LINE: KEY: ..." in err. */
    int (*validate)(void *cfg, const char *config_path, char *err, size_t errsize);
};

/*
 * Parse argv. Returns -1 to go on running, or an exit status: 0 after --help/--version,
 * 2 on a bad flag (usage printed to stderr).
 */
int mw_cli_parse(const struct mw_cli_program *prog, int argc, char **argv, struct mw_cli *out);

/*
 * Load the config at cli->config_path into `cfg` and apply the log level held at *log_level
 * (the address of the config's log_level string; NULL when it has none). Handles --check-config
 * (checks that every file the configuration names can be read, then prints "FILE: ok") and
 * --dump-config (secrets printed as <redacted>). Returns -1 to go on running, or an exit status
 * (0 after check/dump, 2 when the config is invalid — the message names file, line and key).
 */
int mw_cli_load_config(const struct mw_cli_program *prog, const struct mw_cli *cli, void *cfg,
                       const char *const *log_level);

#endif
