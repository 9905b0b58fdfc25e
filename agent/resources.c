/*
 * resources.c — sample the pod's cgroup v2 CPU and memory use for the MetricsSnapshot.
 *
 * Two small files are read per sample (cpu.stat and memory.current) into stack buffers, so a
 * sample allocates nothing. Everything read is parsed strictly (digits only, range-checked);
 * anything unexpected makes the sample "unavailable" rather than wrong, and is logged once.
 */
#include "resources.h"

#include "alloc.h"
#include "clock.h"
#include "error.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COMP "resources"
/* cpu.stat holds a dozen short lines; anything larger than this is not a cgroup file. */
#define MAX_STAT_FILE_BYTES 4096

struct mw_resources {
    char *dir;                 /* cgroup directory, owned; NULL when none was found */
    int detect_rc;             /* why dir is NULL */
    bool warned;               /* the one "unavailable" warning has been logged */
    bool have_baseline;        /* cpu_usage_usec holds a valid previous reading */
    uint64_t cpu_usage_usec;   /* usage_usec at the start of the current interval */
    int64_t interval_start_ms; /* start of the current interval */
};

/* Log, once per sampler, why resource use is not reported. */
static void warn_once(struct mw_resources *r, const char *file, const char *why)
{
    if (r->warned)
        return;
    r->warned = true;
    char qdir[PATH_MAX + 8];
    char qwhy[256];
    MW_LOG_WARN(COMP, "cgroup v2 not readable, resource use will not be reported",
                "dir=%s file=%s reason=%s", mw_log_quote(r->dir ? r->dir : "", qdir, sizeof qdir),
                file, mw_log_quote(why, qwhy, sizeof qwhy));
}

/*
 * Read the whole of a small file into buf[size] as a NUL-terminated string. Returns 0,
 * MW_EIO (errno kept for the caller) or MW_ETOOBIG when it does not fit.
 */
static int read_small_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return MW_EIO;
    size_t len = 0;
    int rc = 0;
    for (;;) {
        if (len == size - 1) {
            rc = MW_ETOOBIG; /* full buffer: the file is larger than any cgroup file we read */
            break;
        }
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = MW_EIO;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    int saved_errno = errno;
    close(fd);
    errno = saved_errno;
    buf[len] = '\0';
    return rc;
}

/*
 * Parse a decimal unsigned 64-bit number at s: digits only (no sign, no leading space), no
 * overflow. *end is set after the digits. Returns 0 or MW_EPARSE.
 */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return MW_EPARSE;
    errno = 0;
    char *stop;
    unsigned long long v = strtoull(s, &stop, 10);
    if (errno == ERANGE || stop == s)
        return MW_EPARSE;
    *end = stop;
    *out = (uint64_t)v;
    return 0;
}

/* Find "usage_usec <n>" as a whole line of cpu.stat. Returns 0 or MW_EPARSE. */
static int parse_cpu_stat(const char *text, uint64_t *usage_usec)
{
    static const char key[] = "usage_usec ";
    const char *line = text;
    while (*line) {
        const char *eol = strchr(line, '\n');
        if (!eol)
            eol = line + strlen(line);
        if ((size_t)(eol - line) > sizeof key - 1 && memcmp(line, key, sizeof key - 1) == 0) {
            const char *after;
            if (parse_u64(line + sizeof key - 1, &after, usage_usec) || after != eol)
                return MW_EPARSE;
            return 0;
        }
        line = *eol ? eol + 1 : eol;
    }
    return MW_EPARSE;
}

/* memory.current is one number and a newline. Returns 0 or MW_EPARSE. */
static int parse_memory_current(const char *text, uint64_t *bytes)
{
    const char *after;
    if (parse_u64(text, &after, bytes))
        return MW_EPARSE;
    if (after[0] == '\n')
        after++;
    return *after == '\0' ? 0 : MW_EPARSE;
}

/* Read and parse one file of the cgroup; on failure log once (naming the file) and return
 * the error. */
static int read_value(struct mw_resources *r, const char *name,
                      int (*parse)(const char *, uint64_t *), uint64_t *out, bool log)
{
    char path[PATH_MAX];
    char text[MAX_STAT_FILE_BYTES];
    int n = snprintf(path, sizeof path, "%s/%s", r->dir, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        if (log)
            warn_once(r, name, "path too long");
        return MW_ETOOBIG;
    }
    int rc = read_small_file(path, text, sizeof text);
    if (rc == 0)
        rc = parse(text, out);
    if (rc && log) {
        const char *why = rc == MW_EIO       ? strerror(errno)
                          : rc == MW_ETOOBIG ? "file too large"
                                             : "malformed";
        warn_once(r, name, why);
    }
    return rc;
}

/* Copy a mountinfo field into out[size], undoing the kernel's octal escapes ("\040" is a
 * space). Returns 0 or MW_ETOOBIG. */
static int unescape_field(const char *s, size_t len, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            c = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        }
        if (o + 1 >= size)
            return MW_ETOOBIG;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* Fields 4 (root) and 5 (mount point) of a mountinfo line, if its filesystem is cgroup2.
 * Returns 0, MW_ENOTFOUND (another filesystem) or MW_EPARSE / MW_ETOOBIG. */
static int parse_mountinfo_line(const char *line, char *root, char *mount, size_t size)
{
    const char *sep = strstr(line, " - ");
    if (!sep)
        return MW_EPARSE;
    static const char fstype[] = "cgroup2 ";
    if (strncmp(sep + 3, fstype, sizeof fstype - 1) != 0)
        return MW_ENOTFOUND;
    const char *field = line;
    for (int i = 1; i < 4; i++) {
        field = strchr(field, ' ');
        if (!field || field >= sep)
            return MW_EPARSE;
        field++;
    }
    const char *root_end = strchr(field, ' ');
    if (!root_end || root_end >= sep)
        return MW_EPARSE;
    const char *mount_start = root_end + 1;
    const char *mount_end = strchr(mount_start, ' ');
    if (!mount_end || mount_end >= sep)
        return MW_EPARSE;
    int rc = unescape_field(field, (size_t)(root_end - field), root, size);
    if (rc == 0)
        rc = unescape_field(mount_start, (size_t)(mount_end - mount_start), mount, size);
    return rc;
}

/* The "0::<path>" line of /proc/<pid>/cgroup, into out[size]. */
static int find_cgroup_path(const char *proc_cgroup_path, char *out, size_t size)
{
    FILE *f = fopen(proc_cgroup_path, "re");
    if (!f)
        return MW_EIO;
    char line[PATH_MAX + 16];
    int rc = MW_ENOTFOUND;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "0::", 3) != 0)
            continue;
        size_t len = strcspn(line + 3, "\n");
        if (line[3 + len] != '\n' && !feof(f)) {
            rc = MW_ETOOBIG; /* cut by fgets */
        } else if (len == 0 || line[3] != '/') {
            rc = MW_EPARSE;
        } else if (len >= size) {
            rc = MW_ETOOBIG;
        } else {
            memcpy(out, line + 3, len);
            out[len] = '\0';
            rc = 0;
        }
        break;
    }
    fclose(f);
    return rc;
}

int mw__resources_detect(const char *proc_cgroup_path, const char *mountinfo_path, char *out,
                         size_t size)
{
    char cgroup[PATH_MAX];
    int rc = find_cgroup_path(proc_cgroup_path, cgroup, sizeof cgroup);
    if (rc)
        return rc;

    FILE *f = fopen(mountinfo_path, "re");
    if (!f)
        return MW_EIO;
    char line[2 * PATH_MAX];
    char root[PATH_MAX];
    char mount[PATH_MAX];
    rc = MW_ENOTFOUND;
    while (fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n') && !feof(f)) {
            /* A line longer than any path we could use: skip the rest of it. */
            int c;
            while ((c = fgetc(f)) != EOF && c != '\n')
                ;
            continue;
        }
        if (parse_mountinfo_line(line, root, mount, sizeof root))
            continue;
        /* The cgroup path is relative to the namespace root; a mount of a sub-tree (root
         * other than "/") only holds the cgroups below its root. */
        size_t root_len = strlen(root);
        const char *rest = cgroup;
        if (strcmp(root, "/") != 0) {
            if (strncmp(cgroup, root, root_len) != 0 ||
                (cgroup[root_len] != '/' && cgroup[root_len] != '\0'))
                continue;
            rest = cgroup + root_len;
        }
        if (strcmp(rest, "/") == 0)
            rest = "";
        int n = snprintf(out, size, "%s%s", mount, rest);
        rc = n < 0 || (size_t)n >= size ? MW_ETOOBIG : 0;
        break;
    }
    fclose(f);
    return rc;
}

struct mw_resources *mw_resources_create(const char *cgroup_dir)
{
    struct mw_resources *r = mw_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (cgroup_dir) {
        r->dir = mw_strdup(cgroup_dir);
        if (!r->dir)
            goto fail;
    } else {
        char detected[PATH_MAX];
        r->detect_rc = mw__resources_detect("/proc/self/cgroup", "/proc/self/mountinfo", detected,
                                            sizeof detected);
        if (r->detect_rc == 0) {
            r->dir = mw_strdup(detected);
            if (!r->dir)
                goto fail;
        }
    }
    r->interval_start_ms = mw_clock_wall_ms();
    /* Baseline for the first interval; a failure here is reported by the first sample. */
    if (r->dir)
        r->have_baseline =
            read_value(r, "cpu.stat", parse_cpu_stat, &r->cpu_usage_usec, false) == 0;
    return r;
fail:
    mw_free(r);
    return NULL;
}

void mw_resources_destroy(struct mw_resources *r)
{
    if (!r)
        return;
    mw_free(r->dir);
    mw_free(r);
}

const char *mw_resources_dir(const struct mw_resources *r)
{
    return r ? r->dir : NULL;
}

int mw_resources_sample(struct mw_resources *r, int64_t now_ms, Modelwatch__V1__ResourceUsage *out)
{
    if (!r || !out)
        return MW_EINVAL;
    modelwatch__v1__resource_usage__init(out);
    out->has_interval_start_ms = true;
    /* A wall clock stepped backwards must not make an interval of negative length. */
    out->interval_start_ms = r->interval_start_ms <= now_ms ? r->interval_start_ms : now_ms;
    out->has_interval_end_ms = true;
    out->interval_end_ms = now_ms;
    out->has_cgroup_available = true;
    out->cgroup_available = false;
    /* gpu_seconds stays absent (0): GPU use is not measured yet. */
    r->interval_start_ms = now_ms;

    if (!r->dir) {
        warn_once(r, "/proc/self/cgroup",
                  r->detect_rc == MW_ENOTFOUND ? "no cgroup v2 hierarchy"
                                               : mw_strerror(r->detect_rc));
        return 0;
    }
    uint64_t usage_usec = 0;
    uint64_t memory_bytes = 0;
    if (read_value(r, "cpu.stat", parse_cpu_stat, &usage_usec, true) ||
        read_value(r, "memory.current", parse_memory_current, &memory_bytes, true)) {
        /* Whatever comes back later is measured from a fresh baseline. */
        r->have_baseline = false;
        return 0;
    }
    /* A counter that went down belongs to a recreated cgroup: its growth is unknown. */
    uint64_t delta_usec =
        r->have_baseline && usage_usec >= r->cpu_usage_usec ? usage_usec - r->cpu_usage_usec : 0;
    r->cpu_usage_usec = usage_usec;
    r->have_baseline = true;

    out->cgroup_available = true;
    out->has_cpu_seconds = true;
    out->cpu_seconds = (double)delta_usec / 1e6;
    out->has_memory_bytes = true;
    out->memory_bytes = memory_bytes;
    return 0;
}
