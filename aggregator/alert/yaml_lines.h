/*
 * yaml_lines.h — where each key of a YAML document is, by the dotted path common/config.c
 * names keys with ("groups[0].rules[2].threshold").
 *
 * common/config.c reports what its table can check (unknown keys, types, bounds) with
 * file:line: key. Checks across fields (a resolve threshold on the wrong side of the
 * threshold, a matcher that does not parse) run after loading, on the loaded struct, which no
 * longer knows lines; they look the line up here so their messages read exactly like the
 * loader's. The index also tells whether a key was written at all, which a default cannot.
 */
#ifndef MW_ALERT_YAML_LINES_H
#define MW_ALERT_YAML_LINES_H

#include "config.h"
#include "table.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct mw_yaml_lines {
    struct mw_table paths; /* struct yaml_line_entry items */
    void *entries;         /* owned array of entries */
    size_t n, cap;
};

/*
 * Index every mapping key and sequence item of the YAML `text` (len bytes). A document that
 * does not parse yields an index of what came before the error (the loader reports that
 * error). Returns 0 or MW_ENOMEM; free with mw_yaml_lines_free either way.
 */
int mw_yaml_lines_build(struct mw_yaml_lines *idx, const char *text, size_t len);

/* 1-based line of the key (or sequence item) at `path`, or 0 when the document has none. */
size_t mw_yaml_lines_find(const struct mw_yaml_lines *idx, const char *path);

/* As mw_yaml_lines_find for `prefix` + `key` ("groups[0].rules[2]." + "for"). */
size_t mw_yaml_lines_find2(const struct mw_yaml_lines *idx, const char *prefix, const char *key);

void mw_yaml_lines_free(struct mw_yaml_lines *idx); /* accepts NULL */

/*
 * Write "FILE:LINE: KEY: <message>" into err, with the line of `key` in `text` or, when text
 * is NULL, in the file at `file` (read again: this runs on error paths only); with the line
 * of `near_key` when the document has no `key`; "FILE: KEY: ..." when neither is found.
 * Returns MW_ECONFIG.
 */
/* Write "FILE:LINE: KEY: <fmt>" (line 0: "FILE: KEY: ...") into err, on one printable line.
 * Returns MW_ECONFIG. */
int mw_yaml_lines_vformat(struct mw_cfg_error *err, const char *file, size_t line, const char *key,
                          const char *fmt, va_list ap);

int mw_yaml_lines_fail(struct mw_cfg_error *err, const char *file, const char *text,
                       const char *key, const char *near_key, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
