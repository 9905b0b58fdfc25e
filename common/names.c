/* names.c — the model-name and version rules shared by the agent and the aggregator. */
#include "names.h"

#include <string.h>

bool mw_model_name_valid(const char *name)
{
    if (!name || !*name)
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= MW_MODEL_NAME_MAX)
            return false;
    }
    return true;
}

bool mw_version_valid(const char *version)
{
    if (!version)
        return true;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)version; *p; p++, n++) {
        if (*p < 0x20 || *p == 0x7f || n >= MW_VERSION_MAX)
            return false;
    }
    return true;
}
