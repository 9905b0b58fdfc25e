/*
 * config_expand.h — `${VAR}` expansion of configuration values (internal to common/config.c).
 *
 * Containers and systemd hand settings and secrets to a process through its environment; the
 * configuration names them instead of holding them:
 *
 *     ${VAR}           VAR's value ("" when VAR is set but empty)
 *     ${VAR:-text}     VAR's value, or `text` when VAR is unset or empty
 *     $$               one `$`
 *     $ before anything else stays as it is ("cost$", "$value")
 *
 * VAR is a shell name ([A-Za-z_][A-Za-z0-9_]*). The default is taken as written, up to the
 * first `}`. The expanded value is not expanded again.
 */
#ifndef MW_COMMON_CONFIG_EXPAND_H
#define MW_COMMON_CONFIG_EXPAND_H

#include <stdbool.h>
#include <stddef.h>

/* Largest expanded value accepted (an environment variable can be large; a value cannot). */
#define MW_CONFIG_EXPAND_MAX_BYTES (1u << 20)

/* Whether `text` (len bytes) holds anything to expand: `${` or `$$`. */
bool mw__config_expand_needed(const char *text, size_t len);

/*
 * Expand `text` (len bytes; it may hold NULs, kept as they are) with the process environment.
 * On success *out is a new NUL-terminated string of *out_len bytes (mw_free) and 0 is
 * returned. Otherwise MW_ECONFIG with `why` naming the variable or the malformed reference
 * (never a variable's value), or MW_ENOMEM.
 */
int mw__config_expand(const char *text, size_t len, char **out, size_t *out_len, char *why,
                      size_t why_size);

#endif
