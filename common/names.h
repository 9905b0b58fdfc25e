/*
 * names.h — what a model name may be.
 *
 * Model names become part of Redis keys inside a `{model}` hash tag, Prometheus label values
 * and URL paths, so both ends hold them to one rule: 1 to 128 characters from [A-Za-z0-9._-].
 * Versions and prediction ids are free text but bounded in length.
 */
#ifndef MW_COMMON_NAMES_H
#define MW_COMMON_NAMES_H

#include <stdbool.h>

#define MW_MODEL_NAME_MAX 128
#define MW_VERSION_MAX 128

bool mw_model_name_valid(const char *name);
/* A version: at most MW_VERSION_MAX bytes, no control characters ("" is fine). */
bool mw_version_valid(const char *version);

#endif
