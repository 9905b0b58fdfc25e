/*
 * process_metrics.h — the series every Prometheus client library exports about its process,
 * and modelwatch's build, for both binaries' /metrics:
 *
 *   process_cpu_seconds_total        user + system CPU time (/proc/self/stat utime + stime)
 *   process_resident_memory_bytes    resident set size (/proc/self/stat rss x page size)
 *   process_virtual_memory_bytes     virtual memory size (/proc/self/stat vsize)
 *   process_open_fds                 entries of /proc/self/fd
 *   process_max_fds                  the soft limit of open files (RLIMIT_NOFILE)
 *   process_start_time_seconds       start time since the Unix epoch (/proc/self/stat
 *                                    starttime after /proc/stat btime)
 *   modelwatch_build_info{version,program}  1
 *
 * Names, types and units are client_golang's, so dashboards and alerts written for any
 * Prometheus-instrumented process work unchanged. Read at each scrape; a /proc file that
 * cannot be read leaves its series out of that scrape rather than report a wrong 0.
 */
#ifndef MW_COMMON_PROCESS_METRICS_H
#define MW_COMMON_PROCESS_METRICS_H

#include "prom.h"

#include <stdbool.h>
#include <stdint.h>

/* Add the collector to `reg` for the binary named `program` (static text, e.g.
 * "modelwatch-agent"). Returns 0, MW_EINVAL or MW_ENOMEM. */
int mw_process_metrics_register(struct mw_prom_registry *reg, const char *program);

/* What one reading of /proc found; fields that could not be read are flagged false. */
struct mw_process_sample {
    bool has_stat; /* cpu, memory and start time */
    double cpu_seconds;
    double resident_bytes;
    double virtual_bytes;
    double start_time_seconds;
    bool has_fds;
    double open_fds;
    bool has_max_fds;
    double max_fds;
};

/* Read the calling process's numbers. Exposed for tests. */
void mw_process_sample_read(struct mw_process_sample *out);

#endif
