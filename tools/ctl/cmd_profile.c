/* cmd_profile.c — `profile build` (offline, tools/profile_build.c), `profile push` and
 * `profile show`. */
#include "ctl.h"
#include "profile_build.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PROFILE_FILE_BYTES (64u * 1024 * 1024)
#define TOP_CATEGORIES_SHOWN 3 /* -o wide: TOP_CATEGORIES_WIDE */
#define TOP_CATEGORIES_WIDE 12

/* strtol with checks: the whole string, within [min, max]. Prints the error. */
static bool parse_long(const char *what, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "modelwatch-ctl: %s %s: expected an integer in %ld..%ld\n", what, s, min,
                max);
        return false;
    }
    *out = v;
    return true;
}

/* Write text to path through a temporary file and a rename, so a reader never sees half a
 * profile. */
static int write_file_atomically(const char *path, const char *text)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= sizeof tmp) {
        fprintf(stderr, "modelwatch-ctl: %s: path too long\n", path);
        return 1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "modelwatch-ctl: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "modelwatch-ctl: %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

int ctl_cmd_profile_build(const struct options *o, const char *csv_path)
{
    struct mw_profile_build_options po;
    mw_profile_build_options_init(&po);
    po.model = o->model;
    po.version = o->version;
    long v;
    if (!o->model || !o->version) {
        fprintf(stderr, "modelwatch-ctl: profile build needs --model and --version\n");
        return 2;
    }
    if (o->bins) {
        if (!parse_long("--bins", o->bins, MW_PROFILE_MIN_BINS, MW_PROFILE_MAX_BINS, &v))
            return 2;
        po.n_bins = (int)v;
    }
    if (o->grid_bins) {
        if (!parse_long("--grid-bins", o->grid_bins, MW_PROFILE_MIN_GRID_BINS,
                        MW_PROFILE_MAX_GRID_BINS, &v))
            return 2;
        po.n_grid_bins = (int)v;
    }
    if (po.n_grid_bins < po.n_bins) {
        fprintf(stderr, "modelwatch-ctl: --grid-bins %d: must be at least --bins (%d)\n",
                po.n_grid_bins, po.n_bins);
        return 2;
    }
    if (o->max_categories) {
        if (!parse_long("--max-categories", o->max_categories, 1, MW_PROFILE_MAX_MAX_CATEGORIES,
                        &v))
            return 2;
        po.max_categories = (size_t)v;
    }
    po.categorical = o->categorical;
    po.n_categorical = o->n_categorical;
    po.ignore = o->ignore;
    po.n_ignore = o->n_ignore;
    po.label = o->label;

    struct mw_built_profile *profile = NULL;
    char err[1024];
    if (mw_profile_build(csv_path, &po, &profile, err, sizeof err) != 0) {
        fprintf(stderr, "modelwatch-ctl: %s\n", err);
        return 1;
    }
    size_t n_numeric = 0;
    for (size_t i = 0; i < profile->n_features; i++)
        n_numeric += profile->features[i].type == MW_BUILT_NUMERIC;
    for (size_t i = 0; i < profile->n_notes; i++)
        fprintf(stderr, "modelwatch-ctl: note: %s\n", profile->notes[i]);
    json_t *doc = mw_built_profile_to_json(profile);
    char *text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    int rc = 0;
    if (!text) {
        fprintf(stderr, "modelwatch-ctl: out of memory writing the profile\n");
        rc = 1;
    } else if (o->output) {
        rc = write_file_atomically(o->output, text);
        if (rc == 0)
            printf("wrote profile %s %s to %s: %" PRIu64 " rows, %zu features (%zu numeric, "
                   "%zu categorical)\n",
                   profile->model, profile->version, o->output, profile->rows, profile->n_features,
                   n_numeric, profile->n_features - n_numeric);
    } else if (puts(text) == EOF || fflush(stdout) != 0) {
        fprintf(stderr, "modelwatch-ctl: writing the profile: %s\n", strerror(errno));
        rc = 1;
    }
    free(text);
    mw_built_profile_destroy(profile);
    return rc;
}

/* Read a whole file of at most MAX_PROFILE_FILE_BYTES; the caller frees the result. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "modelwatch-ctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *data = malloc(cap + 1);
    while (data) {
        n += fread(data + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap >= MAX_PROFILE_FILE_BYTES) {
            fprintf(stderr, "modelwatch-ctl: %s: larger than %u bytes\n", path,
                    MAX_PROFILE_FILE_BYTES);
            free(data);
            data = NULL;
            break;
        }
        cap *= 2;
        char *grown = realloc(data, cap + 1);
        if (!grown) {
            fprintf(stderr, "modelwatch-ctl: %s: out of memory\n", path);
            free(data);
        }
        data = grown;
    }
    bool failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed) {
        fprintf(stderr, "modelwatch-ctl: %s: read error\n", path);
        free(data);
        return NULL;
    }
    if (data) {
        data[n] = '\0';
        *len = n;
    }
    return data;
}

int ctl_cmd_profile_push(const struct options *o, const char *file)
{
    size_t len = 0;
    char *text = read_file(file, &len);
    if (!text)
        return 1;
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    int rc = 1;
    if (!doc) {
        fprintf(stderr, "modelwatch-ctl: %s:%d: invalid JSON: %s\n", file, jerr.line, jerr.text);
        goto out;
    }
    const char *model = json_string_value(json_object_get(doc, "model"));
    const char *version = json_string_value(json_object_get(doc, "version"));
    json_t *features = json_object_get(doc, "features");
    if (!model || !*model || !version || !*version || !json_is_object(features)) {
        fprintf(stderr,
                "modelwatch-ctl: %s: not a profile (needs \"model\", \"version\" and "
                "\"features\"; build one with `modelwatch-ctl profile build`)\n",
                file);
        goto out;
    }
    struct path p = {0};
    ctl_model_path(&p, model, "/profiles/");
    ctl_path_add_escaped(&p, version);
    if (!ctl_path_ok(&p))
        goto out;
    json_t *answer = ctl_request(o, "PUT", p.text, text, len);
    if (!answer)
        goto out;
    json_decref(answer);
    printf("pushed profile %s %s (%zu features)\n", model, version, json_object_size(features));
    rc = 0;
out:
    json_decref(doc);
    free(text);
    return rc;
}

/* "fr 31.0%, de 22.0%, it 9.0%, +47 more, other 2.0%" from a categories object: the n_top
 * largest (at most TOP_CATEGORIES_WIDE). */
static void format_top_categories(const json_t *f, size_t n_top, char *out, size_t size)
{
    const json_t *cats = json_object_get(f, "categories");
    const char *top[TOP_CATEGORIES_WIDE] = {0};
    double top_share[TOP_CATEGORIES_WIDE] = {0};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)cats, key, v)
    {
        double share = json_number_value(v);
        for (size_t i = 0; i < n_top; i++) {
            if (top[i] && share <= top_share[i])
                continue;
            memmove(top + i + 1, top + i, (n_top - 1 - i) * sizeof *top);
            memmove(top_share + i + 1, top_share + i, (n_top - 1 - i) * sizeof *top_share);
            top[i] = key;
            top_share[i] = share;
            break;
        }
    }
    size_t len = 0, n = json_object_size(cats), shown = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n_top && top[i] && len < size; i++, shown++)
        len += (size_t)snprintf(out + len, size - len, "%s%s %.1f%%", i ? ", " : "", top[i],
                                100 * top_share[i]);
    if (n > shown && len < size)
        len += (size_t)snprintf(out + len, size - len, "%s+%zu more", shown ? ", " : "", n - shown);
    const json_t *other = json_object_get(f, "other");
    if (json_is_number(other) && json_number_value(other) > 0 && len < size)
        snprintf(out + len, size - len, "%sother %.1f%%", len ? ", " : "",
                 100 * json_number_value(other));
}

static void print_profile_table(const json_t *doc, bool wide)
{
    char created[32];
    ctl_format_time((int64_t)json_integer_value(json_object_get(doc, "created_ms")), created,
                    sizeof created);
    const json_t *features = json_object_get(doc, "features");
    printf("profile %s %s, created %s, %" JSON_INTEGER_FORMAT " rows, %zu features\n",
           json_string_value(json_object_get(doc, "model")),
           json_string_value(json_object_get(doc, "version")), created,
           json_integer_value(json_object_get(doc, "rows")), json_object_size(features));
    int w = ctl_name_width(features);
    printf("%-*s %-11s %10s %8s %11s %11s %11s  %s\n", w, "FEATURE", "TYPE", "COUNT", "MISSING",
           "MIN", "MAX", "MEAN", "BINS / TOP CATEGORIES");
    const char *name;
    json_t *f;
    json_object_foreach((json_t *)features, name, f)
    {
        const char *type = json_string_value(json_object_get(f, "type"));
        printf("%-*s %-11s %10" JSON_INTEGER_FORMAT " %8" JSON_INTEGER_FORMAT, w, name,
               type ? type : "?", json_integer_value(json_object_get(f, "count")),
               json_integer_value(json_object_get(f, "missing")));
        if (type && strcmp(type, "numeric") == 0) {
            static const char *const stats[] = {"min", "max", "mean"};
            for (size_t i = 0; i < 3; i++) {
                const json_t *x = json_object_get(f, stats[i]);
                if (json_is_number(x))
                    printf(" %11.6g", json_number_value(x));
                else
                    printf(" %11s", "-");
            }
            size_t n_cuts = json_array_size(json_object_get(f, "cuts"));
            size_t n_deciles = json_array_size(json_object_get(f, "deciles"));
            printf("  %zu regions, %zu PSI bins\n", n_cuts + 1, n_deciles + 3);
        } else {
            char top[1024];
            format_top_categories(f, wide ? TOP_CATEGORIES_WIDE : TOP_CATEGORIES_SHOWN, top,
                                  sizeof top);
            printf(" %11s %11s %11s  %s\n", "-", "-", "-", top);
        }
    }
}

/* GET one profile; NULL after printing why. */
static json_t *get_profile(const struct options *o, const char *model, const char *version)
{
    struct path p = {0};
    ctl_model_path(&p, model, "/profiles/");
    ctl_path_add_escaped(&p, version);
    return ctl_path_ok(&p) ? ctl_get(o, p.text) : NULL;
}

int ctl_cmd_profile_show(const struct options *o, const char *model)
{
    json_t *doc = NULL;
    json_t *list = NULL;
    if (o->version) {
        doc = get_profile(o, model, o->version);
    } else {
        /* No version: list the versions and show the newest by created_ms. */
        struct path p = {0};
        ctl_model_path(&p, model, "/profiles");
        if (!ctl_path_ok(&p) || !(list = ctl_get(o, p.text)))
            return 1;
        json_t *versions = json_object_get(list, "versions");
        if (json_array_size(versions) == 0) {
            fprintf(stderr, "modelwatch-ctl: no profile stored for model %s\n", model);
            json_decref(list);
            return 1;
        }
        size_t i;
        json_t *v;
        json_int_t newest_ms = 0;
        json_array_foreach(versions, i, v)
        {
            if (!json_is_string(v))
                continue;
            json_t *candidate = get_profile(o, model, json_string_value(v));
            if (!candidate) {
                json_decref(doc);
                json_decref(list);
                return 1;
            }
            json_int_t ms = json_integer_value(json_object_get(candidate, "created_ms"));
            if (!doc || ms > newest_ms) {
                json_decref(doc);
                doc = candidate;
                newest_ms = ms;
            } else {
                json_decref(candidate);
            }
        }
    }
    if (!doc) {
        json_decref(list);
        return 1;
    }
    if (o->format == CTL_JSON) {
        json_decref(list);
        return ctl_print_json(doc);
    }
    if (list) {
        size_t i;
        json_t *v;
        printf("versions:");
        json_array_foreach(json_object_get(list, "versions"), i, v)
            printf(" %s", json_string_value(v) ? json_string_value(v) : "?");
        printf(" (showing the newest)\n");
    }
    print_profile_table(doc, o->format == CTL_WIDE);
    json_decref(doc);
    json_decref(list);
    return 0;
}
