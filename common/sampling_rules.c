/* sampling_rules.c — the sampling rules a client applies before it encodes (sampling_rules.h). */
#include "sampling_rules.h"

#include "alloc.h"
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest name a line may carry: model names are at most 128 bytes (names.h). */
#define NAME_MAX_BYTES 128

double mw_sampler_unit(const char *prediction_id)
{
    uint64_t h = mw_hash_mix(mw_hash_str(MW_HASH_INIT, prediction_id ? prediction_id : ""));
    return (double)(h >> 11) * 0x1.0p-53;
}

/* ---------------------------------------------------------------------------------------- */
/* Writing (the agent)                                                                       */

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_rules(int fd, const struct mw_sampling_rule *rules, size_t n,
                       int64_t count_bucket_ms)
{
    char line[NAME_MAX_BYTES + 96];
    int len = snprintf(line, sizeof line, "%s\n", MW_SAMPLING_RULES_MAGIC);
    if (write_all(fd, line, (size_t)len) != 0)
        return -1;
    if (count_bucket_ms > 0) {
        len = snprintf(line, sizeof line, "count %lld\n", (long long)count_bucket_ms);
        if (write_all(fd, line, (size_t)len) != 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        len = snprintf(line, sizeof line, "%s %.17g %d %llu\n", rules[i].name, rules[i].rate,
                       rules[i].keep_errors ? 1 : 0, (unsigned long long)rules[i].slower_than_us);
        if (len < 0 || (size_t)len >= sizeof line) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (write_all(fd, line, (size_t)len) != 0)
            return -1;
    }
    return 0;
}

int mw_sampling_rules_write(const char *path, const struct mw_sampling_rule *rules, size_t n,
                            int64_t count_bucket_ms)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = write_rules(fd, rules, n, count_bucket_ms);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        errno = saved;
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading (the client)                                                                      */

static int compare_rules(const void *a, const void *b)
{
    return strcmp(((const struct mw_sampling_rule *)a)->name,
                  ((const struct mw_sampling_rule *)b)->name);
}

/* One rule line "<name> <rate> <0|1> <us>" of `text` (NUL-terminated, no newline). */
static int parse_rule(char *text, struct mw_sampling_rule *r, char **name)
{
    char *save = NULL;
    char *fields[5];
    int n = 0;
    for (char *tok = strtok_r(text, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
        if (n < 5)
            fields[n++] = tok;
        else
            return -1;
    if (n != 4 || strlen(fields[0]) > NAME_MAX_BYTES)
        return -1;
    char *end = NULL;
    errno = 0;
    double rate = strtod(fields[1], &end);
    if (*end || errno || !(rate >= 0 && rate <= 1))
        return -1;
    if (strcmp(fields[2], "0") != 0 && strcmp(fields[2], "1") != 0)
        return -1;
    if (fields[3][0] < '0' || fields[3][0] > '9')
        return -1;
    unsigned long long us = strtoull(fields[3], &end, 10);
    if (*end || errno)
        return -1;
    *name = fields[0];
    r->rate = rate;
    r->keep_errors = fields[2][0] == '1';
    r->slower_than_us = us;
    return 0;
}

/* Lines of text[0..len), NUL-terminated in place in `copy`; returns the count. */
static size_t split_lines(char *copy, char **lines, size_t max)
{
    size_t n = 0;
    char *p = copy;
    while (*p && n < max) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    return n;
}

/* The optional line "count <milliseconds>"; 1 when `text` is one, 0 when it is not a count
 * line at all, -1 when it is one with a bad width. */
static int parse_count(const char *text, int64_t *bucket_ms)
{
    if (strncmp(text, "count ", 6) != 0)
        return 0;
    const char *digits = text + 6;
    if (*digits < '1' || *digits > '9')
        return -1;
    char *end = NULL;
    errno = 0;
    long long ms = strtoll(digits, &end, 10);
    if (*end || errno || ms > MW_SAMPLING_COUNT_BUCKET_MAX_MS)
        return -1;
    *bucket_ms = ms;
    return 1;
}

static struct mw_sampling_rules *build(char **names, struct mw_sampling_rule *parsed, size_t n,
                                       char *err, size_t errsize)
{
    size_t name_bytes = 0;
    for (size_t i = 0; i < n; i++)
        name_bytes += strlen(names[i]) + 1;
    struct mw_sampling_rules *out =
        mw_malloc(sizeof *out + n * sizeof out->rule[0] + name_bytes);
    if (!out) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    char *store = (char *)&out->rule[n];
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        out->rule[i] = parsed[i];
        size_t len = strlen(names[i]) + 1;
        memcpy(store, names[i], len);
        out->rule[i].name = store;
        store += len;
    }
    qsort(out->rule, n, sizeof out->rule[0], compare_rules);
    for (size_t i = 1; i < n; i++)
        if (strcmp(out->rule[i - 1].name, out->rule[i].name) == 0) {
            snprintf(err, errsize, "two rules for \"%s\"", out->rule[i].name);
            mw_free(out);
            return NULL;
        }
    return out;
}

struct mw_sampling_rules *mw_sampling_rules_parse(const char *text, size_t len, char *err,
                                                  size_t errsize)
{
    if (len > MW_SAMPLING_RULES_MAX_BYTES || memchr(text, '\0', len)) {
        snprintf(err, errsize, "not a rules file (too large, or binary)");
        return NULL;
    }
    char *copy = mw_malloc(len + 1);
    char **lines = mw_malloc((MW_SAMPLING_RULES_MAX + 2) * sizeof *lines);
    struct mw_sampling_rule *parsed = mw_malloc(MW_SAMPLING_RULES_MAX * sizeof *parsed);
    char **names = mw_malloc(MW_SAMPLING_RULES_MAX * sizeof *names);
    struct mw_sampling_rules *out = NULL;
    if (!copy || !lines || !parsed || !names) {
        snprintf(err, errsize, "out of memory");
        goto done;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    size_t n_lines = split_lines(copy, lines, MW_SAMPLING_RULES_MAX + 2);
    if (n_lines == 0 || strcmp(lines[0], MW_SAMPLING_RULES_MAGIC) != 0) {
        snprintf(err, errsize, "line 1: not \"%s\"", MW_SAMPLING_RULES_MAGIC);
        goto done;
    }
    size_t n = 0, first_rule = 1;
    int64_t count_bucket_ms = 0;
    int count_line = n_lines > 1 ? parse_count(lines[1], &count_bucket_ms) : 0;
    if (count_line < 0) {
        snprintf(err, errsize, "line 2: not \"count <milliseconds 1..%d>\"",
                 MW_SAMPLING_COUNT_BUCKET_MAX_MS);
        goto done;
    }
    first_rule += (size_t)count_line;
    for (size_t i = first_rule; i < n_lines; i++) {
        if (lines[i][0] == '\0' && i == n_lines - 1)
            break; /* the newline that ends the last line */
        if (n == MW_SAMPLING_RULES_MAX) {
            snprintf(err, errsize, "more than %d rules", MW_SAMPLING_RULES_MAX);
            goto done;
        }
        if (parse_rule(lines[i], &parsed[n], &names[n]) != 0) {
            snprintf(err, errsize, "line %zu: not \"<model> <rate 0..1> <0|1> <microseconds>\"",
                     i + 1);
            goto done;
        }
        n++;
    }
    out = build(names, parsed, n, err, errsize);
    if (out)
        out->count_bucket_ms = count_bucket_ms;
done:
    mw_free(copy);
    mw_free(lines);
    mw_free(parsed);
    mw_free(names);
    return out;
}

struct mw_sampling_rules *mw_sampling_rules_read(const char *path, char *err, size_t errsize)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        snprintf(err, errsize, "%s: %s", path, strerror(saved));
        errno = saved;
        return NULL;
    }
    char *text = mw_malloc(MW_SAMPLING_RULES_MAX_BYTES + 1);
    size_t len = 0;
    ssize_t got = 0;
    while (text && len <= MW_SAMPLING_RULES_MAX_BYTES &&
           (got = read(fd, text + len, MW_SAMPLING_RULES_MAX_BYTES + 1 - len)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            break;
        len += (size_t)got;
    }
    int saved = errno;
    close(fd);
    struct mw_sampling_rules *out = NULL;
    if (!text)
        snprintf(err, errsize, "out of memory");
    else if (got < 0)
        snprintf(err, errsize, "%s: %s", path, strerror(saved));
    else
        out = mw_sampling_rules_parse(text, len, err, errsize);
    mw_free(text);
    if (!out)
        errno = EINVAL;
    return out;
}

const struct mw_sampling_rule *mw_sampling_rules_find(const struct mw_sampling_rules *rules,
                                                      const char *model)
{
    size_t lo = 0, hi = rules->n;
    const struct mw_sampling_rule *any = NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(model, rules->rule[mid].name);
        if (c == 0)
            return &rules->rule[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    /* "*" sorts before every valid model name (they begin with a letter or digit) */
    if (rules->n && strcmp(rules->rule[0].name, "*") == 0)
        any = &rules->rule[0];
    return any;
}

bool mw_sampling_rule_omits(const struct mw_sampling_rule *rule, const char *prediction_id,
                            bool is_error, uint64_t latency_us)
{
    if (!rule || (rule->keep_errors && is_error) ||
        (rule->slower_than_us && latency_us > rule->slower_than_us))
        return false;
    return !(mw_sampler_unit(prediction_id) < rule->rate);
}
