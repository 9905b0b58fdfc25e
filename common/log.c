/* log.c — logfmt lines to stderr, one write(2) per line so concurrent lines never interleave. */
#include "log.h"

#include "clock.h"
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum mw_log_level mw__log_threshold = MW_LOG_LEVEL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void mw_log_set_level(enum mw_log_level level)
{
    mw__log_threshold = level;
}

int mw_log_level_parse(const char *text, enum mw_log_level *out)
{
    for (int i = 0; text && i < 4; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum mw_log_level)i;
            return 0;
        }
    }
    return MW_EINVAL;
}

const char *mw_log_level_name(enum mw_log_level level)
{
    return (unsigned)level < 4 ? level_names[level] : "unknown";
}

const char *mw_log_quote(const char *value, char *buf, size_t size)
{
    if (size == 0)
        return "";
    if (!value)
        value = "";
    bool plain = *value != '\0' && strpbrk(value, " \"=\\\t\n") == NULL;
    if (plain) {
        snprintf(buf, size, "%s", value);
        return buf;
    }
    size_t out = 0;
    buf[out++] = '"';
    for (const char *p = value; *p && out + 3 < size; p++) {
        if (*p == '"' || *p == '\\') {
            buf[out++] = '\\';
            buf[out++] = *p;
        } else if (*p == '\n') {
            buf[out++] = '\\';
            buf[out++] = 'n';
        } else {
            buf[out++] = *p;
        }
    }
    if (out < size - 1)
        buf[out++] = '"';
    buf[out] = '\0';
    return buf;
}

void mw__log(enum mw_log_level level, const char *comp, const char *msg, const char *fields_fmt,
             ...)
{
    char line[2048];
    char ts[32];
    char quoted[512];
    int len = snprintf(line, sizeof line, "ts=%s level=%s comp=%s msg=%s",
                       mw_clock_format_rfc3339(mw_clock_wall_ms(), ts, sizeof ts),
                       mw_log_level_name(level), comp, mw_log_quote(msg, quoted, sizeof quoted));
    if (len < 0)
        return;
    if (fields_fmt && *fields_fmt && (size_t)len < sizeof line - 2) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fields_fmt);
        int more = vsnprintf(line + len, sizeof line - (size_t)len, fields_fmt, ap);
        va_end(ap);
        if (more > 0)
            len += more;
    }
    if ((size_t)len >= sizeof line - 1)
        len = (int)sizeof line - 2;
    line[len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, (size_t)len);
    (void)ignored;
}
