/*
 * config.h — declarative YAML configuration (libyaml).
 *
 * Each binary describes its configuration once, as a table of mw_cfg_field (Fluent Bit's
 * config_map, Redis's createIntConfig): key, type, offset of the value in the binary's config
 * struct, default, bounds, whether it can change on SIGHUP, and a description. That one table
 * drives parsing, validation, defaults, --check-config and --dump-config.
 *
 * Values may take text from the environment: `${VAR}` is replaced by VAR's value, `${VAR:-text}`
 * by VAR's value or, when VAR is unset or empty, by `text`; `$$` stands for one `$`, and a `$`
 * before anything else is kept. The loader expands every scalar value once, before any field
 * sees it, so every key of every binary (and every rule file) takes it alike. An unset VAR
 * without a default is an error naming the file, line, key and variable.
 *
 * A field marked `secret` (or a STRMAP entry its `secret_entry` accepts) is printed as
 * <redacted> by mw_config_dump: credentials may come from the environment, and --dump-config
 * output ends up in tickets and chat. Paths to files holding secrets are not secrets.
 *
 * A field marked with a `path` kind (or a STRMAP entry `path_entry` accepts) names a file or
 * directory the binary will read; mw_config_check_paths checks each one the file sets.
 *
 * Keys are dotted paths through nested YAML mappings ("kafka.topic" is `kafka: {topic: ...}`).
 * Unknown keys, wrong types, values out of bounds and missing required keys are errors whose
 * message names the file, the line and the key:
 *
 *     config/agent.yaml:12: kafka.topik: unknown key
 *     config/agent.yaml:7: batch.max_age: invalid duration "fast" (use e.g. 500ms, 1s, 5m)
 */
#ifndef MW_COMMON_CONFIG_H
#define MW_COMMON_CONFIG_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mw_cfg_type {
    MW_CFG_STRING,   /* char *, owned by the config struct (freed by mw_config_free) */
    MW_CFG_INT,      /* int64_t */
    MW_CFG_DOUBLE,   /* double */
    MW_CFG_BOOL,     /* bool; YAML true/false/yes/no/on/off */
    MW_CFG_DURATION, /* int64_t milliseconds; "250ms", "1s", "1.5s", "5m", "2h", "1d" */
    MW_CFG_SIZE,     /* uint64_t bytes; "512", "64KiB", "16MiB", "2GiB", "10MB", "1kB" */
    MW_CFG_ENUM,     /* int: index into `choices` */
    MW_CFG_STRMAP,   /* struct mw_cfg_strmap: free-form mapping of scalars (pass-through
                        properties such as librdkafka's); keys below it are not checked */
    MW_CFG_STRLIST,  /* struct mw_cfg_strlist: sequence of scalars */
    MW_CFG_LIST,     /* struct mw_cfg_list: sequence of mappings, each parsed with `sub` into
                        an element of `elem_size` bytes */
};

struct mw_cfg_strmap {
    size_t n;
    char **keys;
    char **values;
};

struct mw_cfg_strlist {
    size_t n;
    char **items;
};

struct mw_cfg_list {
    size_t n;
    void *items; /* n elements of the field's elem_size bytes each */
};

/* What a STRING field (or STRMAP entry) names on disk, for mw_config_check_paths. */
enum mw_cfg_path {
    MW_CFG_PATH_NONE = 0,
    MW_CFG_PATH_FILE,       /* a file that must exist and be readable */
    MW_CFG_PATH_DIR,        /* a directory that must exist and be readable */
    MW_CFG_PATH_FILE_OR_DIR /* either (librdkafka's ssl.ca.location) */
};

struct mw_cfg_field {
    const char *key; /* dotted path, relative to the list element for `sub` tables */
    enum mw_cfg_type type;
    size_t offset;   /* offsetof(struct my_config, member) */
    const char *def; /* default as YAML scalar text; NULL = zero/empty */
    double min;      /* bounds for INT, DOUBLE, DURATION (ms), SIZE (bytes), STRLIST/LIST (count) */
    double max;      /* min == max == 0 means unbounded */
    bool required;
    bool reloadable;                /* may change on SIGHUP */
    const char *const *choices;     /* ENUM: NULL-terminated names */
    const struct mw_cfg_field *sub; /* LIST: table for each element, terminated by {0} */
    size_t elem_size;               /* LIST: sizeof one element */
    const char *desc;               /* one line for --help-config and the example file */
    /* Optional check of a scalar value after it parsed: NULL when fine, else why not (static
     * text), reported as FILE:LINE: KEY: why. For rules the type and bounds cannot say. */
    const char *(*check)(const void *value);
    /* Optional rule relating this field to others, checked once its whole table has loaded:
     * returns false and writes why into `why` when `obj` (the whole config struct, or list
     * element) breaks it. Reported as FILE:LINE: KEY: why at the line that set this key, or as
     * FILE: KEY: why when it kept its default. Of broken rules on keys the file set, the one on
     * the key set last is reported (where the conflict shows), so a rule put on each key it
     * relates points at a line the user wrote. */
    bool (*relate)(const void *obj, char *why, size_t why_size);
    /* The value is a credential: mw_config_dump prints it as <redacted> (when not empty). */
    bool secret;
    /* STRING: a URL whose userinfo ("user:password@", or a token as "token@") is a
     * credential: mw_config_dump prints the password, or the whole userinfo, as <redacted>. */
    bool secret_userinfo;
    /* STRMAP: which entries are credentials, by entry name (NULL: none). */
    bool (*secret_entry)(const char *name);
    /* STRING: what the value names on disk, checked by mw_config_check_paths ("" = nothing). */
    enum mw_cfg_path path;
    /* STRMAP: what an entry names on disk, by entry name and value (NULL: nothing). */
    enum mw_cfg_path (*path_entry)(const char *name, const char *value);
};

/* A table ends with an entry whose key is NULL. */
#define MW_CFG_END                                                                                 \
    {                                                                                              \
        .key = NULL                                                                                \
    }

struct mw_cfg_error {
    char message[512]; /* "file:line: key: what is wrong" */
};

/* Set every field of `obj` to its default. Returns 0 or MW_ECONFIG (a bad default: a bug). */
int mw_config_defaults(const struct mw_cfg_field *table, void *obj, struct mw_cfg_error *err);

/*
 * Load `path` into `obj`: defaults first, then the file's values. On error returns MW_ECONFIG
 * (or MW_EIO when the file cannot be read, MW_ENOMEM) with err->message set, and `obj` holds
 * whatever was loaded so far: release it with mw_config_free() either way.
 */
int mw_config_load_file(const struct mw_cfg_field *table, void *obj, const char *path,
                        struct mw_cfg_error *err);

/* As mw_config_load_file, from text; `name` stands for the file name in messages. */
int mw_config_load_string(const struct mw_cfg_field *table, void *obj, const char *text,
                          const char *name, struct mw_cfg_error *err);

/* Free what the loader allocated in `obj` (strings, maps, lists). Accepts NULL obj. */
void mw_config_free(const struct mw_cfg_field *table, void *obj);

/* Append the effective configuration as YAML (for --dump-config). Returns 0 or MW_EFULL. */
int mw_config_dump(const struct mw_cfg_field *table, const void *obj, struct mw_buf *out);

/*
 * Check that every file and directory the configuration file at `path` names, in a field with a
 * `path` kind, exists and is readable now (opened, then closed; relative names from the working
 * directory, as the binary opens them), with `${VAR}` expanded as the loader does. Call it on a
 * file mw_config_load_file accepted. Returns 0, or MW_ECONFIG with "FILE:LINE: KEY: cannot read
 * PATH: why" in err (MW_EIO / MW_ENOMEM as the loader).
 */
int mw_config_check_paths(const struct mw_cfg_field *table, const char *path,
                          struct mw_cfg_error *err);

/* The text printed for a secret by mw_config_dump. */
#define MW_CFG_REDACTED "<redacted>"

/* Parse helpers, also used by the binaries for flags. Return 0 or MW_EINVAL. */
int mw_config_parse_duration_ms(const char *text, int64_t *out_ms);
int mw_config_parse_size_bytes(const char *text, uint64_t *out_bytes);

/* Value of `key` in a string map, or NULL. */
const char *mw_config_strmap_get(const struct mw_cfg_strmap *map, const char *key);

#endif
