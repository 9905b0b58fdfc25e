/* cli.c — shared flag parsing and config loading for the modelwatch binaries. */
#include "cli.h"

#include "log.h"

#include <getopt.h>
#include <stdio.h>

static void usage(const struct mw_cli_program *prog, FILE *to)
{
    fprintf(to,
            "usage: %s [--config FILE] [--check-config] [--dump-config] [--version] [--help]\n"
            "%s\n\n"
            "  -c, --config FILE   configuration file (default %s)\n"
            "      --check-config  validate the configuration and the files it names, and exit\n"
            "      --dump-config   print the effective configuration as YAML (secrets as\n"
            "                      <redacted>) and exit\n"
            "  -V, --version       print the version and exit\n"
            "  -h, --help          print this help and exit\n",
            prog->name, prog->summary, prog->default_config);
}

int mw_cli_parse(const struct mw_cli_program *prog, int argc, char **argv, struct mw_cli *out)
{
    enum { OPT_CHECK = 256, OPT_DUMP };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"dump-config", no_argument, NULL, OPT_DUMP},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    out->config_path = prog->default_config;
    out->check_config = false;
    out->dump_config = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            out->config_path = optarg;
            break;
        case OPT_CHECK:
            out->check_config = true;
            break;
        case OPT_DUMP:
            out->dump_config = true;
            break;
        case 'V':
            printf("%s %s\n", prog->name, MW_VERSION);
            return 0;
        case 'h':
            usage(prog, stdout);
            return 0;
        default:
            usage(prog, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog->name, argv[optind]);
        usage(prog, stderr);
        return 2;
    }
    return -1;
}

int mw_cli_load_config(const struct mw_cli_program *prog, const struct mw_cli *cli, void *cfg,
                       const char *const *log_level)
{
    struct mw_cfg_error err;
    if (mw_config_load_file(prog->table, cfg, cli->config_path, &err) != 0) {
        fprintf(stderr, "%s: invalid configuration: %s\n", prog->name, err.message);
        return 2;
    }
    enum mw_log_level level;
    if (log_level && *log_level) {
        if (mw_log_level_parse(*log_level, &level) != 0) {
            fprintf(stderr,
                    "%s: invalid configuration: %s: log_level: unknown level \"%s\" "
                    "(use debug, info, warn or error)\n",
                    prog->name, cli->config_path, *log_level);
            return 2;
        }
        mw_log_set_level(level);
    }
    if (prog->validate) {
        char why[1024];
        why[0] = '\0';
        if (prog->validate(cfg, cli->config_path, why, sizeof why) != 0) {
            fprintf(stderr, "%s: invalid configuration: %s\n", prog->name, why);
            return 2;
        }
    }
    if (cli->check_config && mw_config_check_paths(prog->table, cli->config_path, &err) != 0) {
        fprintf(stderr, "%s: invalid configuration: %s\n", prog->name, err.message);
        return 2;
    }
    if (cli->check_config) {
        printf("%s: ok\n", cli->config_path);
        return 0;
    }
    if (cli->dump_config) {
        struct mw_buf out;
        mw_buf_init(&out, 1u << 20);
        int rc = mw_config_dump(prog->table, cfg, &out);
        if (rc == 0)
            fwrite(out.data, 1, out.len, stdout);
        mw_buf_free(&out);
        return rc ? 1 : 0;
    }
    return -1;
}
