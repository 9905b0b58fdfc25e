/*
 * fuzz_agent_config.c — modelwatch-agent's YAML configuration, as --check-config reads it:
 * the table-driven loader (common/config.c with the agent's table), the checks across keys,
 * and --dump-config of what was loaded.
 */
#include "agent_config.h"
#include "buf.h"
#include "config.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_fuzz_quiet();
    char *text = malloc(size + 1); /* the loader takes a C string, as read from a file */
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct mw_agent_config cfg;
    struct mw_cfg_error err = {0};
    memset(&cfg, 0, sizeof cfg);
    if (mw_config_load_string(mw_agent_config_table, &cfg, text, "agent.yaml", &err) == 0) {
        char why[512];
        if (mw_agent_config_validate(&cfg, "agent.yaml", why, sizeof why) == 0) {
            struct mw_buf dump;
            mw_buf_init(&dump, 1u << 20);
            mw_config_dump(mw_agent_config_table, &cfg, &dump);
            mw_buf_free(&dump);
        }
    } else if (!err.message[0]) {
        abort(); /* a refusal always says what and where */
    }
    mw_config_free(mw_agent_config_table, &cfg);
    free(text);
    return 0;
}
