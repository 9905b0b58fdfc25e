/*
 * log.h — logging to stderr, as logfmt lines or JSON lines (`log.format`).
 *
 *     MW_LOG_WARN("spool", "segment checksum mismatch", "file=%s offset=%zu", path, off);
 *
 * prints
 *
 *     ts=2026-11-26T18:25:54.123Z level=warn comp=spool msg="segment checksum mismatch" file=...
 *
 * The level is checked before anything is formatted. The trailing fields are a printf format
 * of space-separated key=value pairs; values that may hold spaces or quotes should go through
 * mw_log_quote(). Never log secrets or payloads.
 *
 * With the JSON format the same line is one JSON object, with the same fields in the same
 * order; values that read as JSON numbers are numbers, the others strings:
 *
 *     {"ts":"2026-11-26T18:25:54.123Z","level":"warn","comp":"spool","msg":"...","file":...}
 */
#ifndef MW_COMMON_LOG_H
#define MW_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum mw_log_level {
    MW_LOG_LEVEL_DEBUG = 0,
    MW_LOG_LEVEL_INFO = 1,
    MW_LOG_LEVEL_WARN = 2,
    MW_LOG_LEVEL_ERROR = 3,
};

enum mw_log_format {
    MW_LOG_FORMAT_LOGFMT = 0,
    MW_LOG_FORMAT_JSON = 1,
};

/* "logfmt", "json", NULL: the choices of the `log.format` key. */
extern const char *const mw_log_format_names[];

/* The `log.format` entry of a binary's config table, for a config struct `cfg_struct` whose int
 * member `member` holds an enum mw_log_format (config.h must be included). */
#define MW_LOG_FORMAT_CFG_FIELD(cfg_struct, member)                                                \
    {                                                                                              \
        .key = "log.format", .type = MW_CFG_ENUM, .offset = offsetof(cfg_struct, member),          \
        .def = "logfmt", .choices = mw_log_format_names,                                           \
        .desc = "Log lines as logfmt or json (one object per line, the same fields)"               \
    }

extern enum mw_log_level mw__log_threshold;

void mw_log_set_format(enum mw_log_format format);

void mw_log_set_level(enum mw_log_level level);
/* Parse "debug", "info", "warn" or "error". Returns 0 or MW_EINVAL. */
int mw_log_level_parse(const char *text, enum mw_log_level *out);
const char *mw_log_level_name(enum mw_log_level level);

/* Write one line. `fields_fmt` may be NULL or "". Use the MW_LOG_* macros instead. */
void mw__log(enum mw_log_level level, const char *comp, const char *msg, const char *fields_fmt,
             ...) __attribute__((format(printf, 4, 5)));

/* Quote `value` for a logfmt field into buf ("a b" -> "\"a b\""; plain tokens unchanged).
 * Returns buf. */
const char *mw_log_quote(const char *value, char *buf, size_t size);

#define MW_LOG(level, comp, msg, ...)                                                              \
    do {                                                                                           \
        if ((level) >= mw__log_threshold)                                                          \
            mw__log((level), (comp), (msg), __VA_ARGS__);                                          \
    } while (0)

#define MW_LOG_DEBUG(comp, msg, ...) MW_LOG(MW_LOG_LEVEL_DEBUG, comp, msg, __VA_ARGS__)
#define MW_LOG_INFO(comp, msg, ...) MW_LOG(MW_LOG_LEVEL_INFO, comp, msg, __VA_ARGS__)
#define MW_LOG_WARN(comp, msg, ...) MW_LOG(MW_LOG_LEVEL_WARN, comp, msg, __VA_ARGS__)
#define MW_LOG_ERROR(comp, msg, ...) MW_LOG(MW_LOG_LEVEL_ERROR, comp, msg, __VA_ARGS__)

#endif
