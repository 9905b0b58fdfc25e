/* process_metrics.c — process_* series read from /proc, and modelwatch_build_info
 * (process_metrics.h). */
#include "process_metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Fields of /proc/self/stat after the command name, 1-based as proc(5) numbers them. */
#define STAT_UTIME 14
#define STAT_STIME 15
#define STAT_STARTTIME 22
#define STAT_VSIZE 23
#define STAT_RSS 24

/* Seconds since the epoch at which the machine booted (/proc/stat btime), or -1. */
static double boot_time_seconds(void)
{
    char line[256];
    double btime = -1;
    FILE *f = fopen("/proc/stat", "re");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0)
            btime = strtod(line + 6, NULL);
    fclose(f);
    return btime;
}

/* Read /proc/self/stat's numeric fields 3..STAT_RSS into fields[]. The command name (field 2)
 * may hold spaces and parentheses: parsing starts after its last ')'. */
static bool read_stat_fields(unsigned long long *fields)
{
    char text[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    if (!f)
        return false;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strrchr(text, ')');
    if (!p)
        return false;
    p++;
    for (int field = 3; field <= STAT_RSS; field++) {
        while (*p == ' ')
            p++;
        if (field == 3) { /* the state letter */
            p = strchr(p, ' ');
            if (!p)
                return false;
            continue;
        }
        char *end;
        fields[field] = strtoull(p, &end, 10);
        if (end == p)
            return false;
        p = end;
    }
    return true;
}

static void read_stat(struct mw_process_sample *out)
{
    unsigned long long fields[STAT_RSS + 1] = {0};
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    double btime = boot_time_seconds();
    if (ticks <= 0 || page <= 0 || btime < 0 || !read_stat_fields(fields))
        return;
    out->cpu_seconds = (double)(fields[STAT_UTIME] + fields[STAT_STIME]) / (double)ticks;
    out->virtual_bytes = (double)fields[STAT_VSIZE];
    out->resident_bytes = (double)fields[STAT_RSS] * (double)page;
    out->start_time_seconds = btime + (double)fields[STAT_STARTTIME] / (double)ticks;
    out->has_stat = true;
}

static void read_fds(struct mw_process_sample *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        size_t n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        if (n > 0) { /* less the descriptor reading the directory */
            out->open_fds = (double)(n - 1);
            out->has_fds = true;
        }
    }
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        out->max_fds = lim.rlim_cur == RLIM_INFINITY ? -1 : (double)lim.rlim_cur;
        out->has_max_fds = lim.rlim_cur != RLIM_INFINITY;
    }
}

void mw_process_sample_read(struct mw_process_sample *out)
{
    *out = (struct mw_process_sample){0};
    read_stat(out);
    read_fds(out);
}

static void emit(struct mw_prom_writer *w, const char *name, const char *help,
                 enum mw_prom_type type, double value)
{
    mw_prom_write_family(w, name, help, type);
    mw_prom_write_sample(w, name, NULL, NULL, value);
}

static void collect(struct mw_prom_writer *w, void *arg)
{
    const char *program = arg;
    struct mw_process_sample s;
    mw_process_sample_read(&s);
    if (s.has_stat) {
        emit(w, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
             MW_PROM_COUNTER, s.cpu_seconds);
        emit(w, "process_resident_memory_bytes", "Resident memory size in bytes.", MW_PROM_GAUGE,
             s.resident_bytes);
        emit(w, "process_virtual_memory_bytes", "Virtual memory size in bytes.", MW_PROM_GAUGE,
             s.virtual_bytes);
        emit(w, "process_start_time_seconds",
             "Start time of the process since unix epoch in seconds.", MW_PROM_GAUGE,
             s.start_time_seconds);
    }
    if (s.has_fds)
        emit(w, "process_open_fds", "Number of open file descriptors.", MW_PROM_GAUGE, s.open_fds);
    if (s.has_max_fds)
        emit(w, "process_max_fds", "Maximum number of open file descriptors.", MW_PROM_GAUGE,
             s.max_fds);
    static const char *const names[] = {"version", "program", NULL};
    const char *values[] = {MW_VERSION, program, NULL};
    mw_prom_write_family(w, "modelwatch_build_info",
                         "1, labelled with the version of the running modelwatch binary",
                         MW_PROM_GAUGE);
    mw_prom_write_sample(w, "modelwatch_build_info", names, values, 1);
}

int mw_process_metrics_register(struct mw_prom_registry *reg, const char *program)
{
    return mw_prom_add_collector(reg, collect, (void *)program);
}
